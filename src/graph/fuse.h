/* Operator fusion run by the planner (graph/fuse.c). */
#ifndef REGAIN_GRAPH_FUSE_H
#define REGAIN_GRAPH_FUSE_H

#include "regain/graph.h"

/* Marks every batch norm + relu/relu6 pair that can be fused (rg_node.fused_with). */
void rg_graph_fuse(rg_graph *g);
/* The node that writes value v: its producer, or for a fused activation's
 * output the batch norm that computes it. */
int32_t rg_graph_value_written_at(const rg_graph *g, int32_t v);

#endif
