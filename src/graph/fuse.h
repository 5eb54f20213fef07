/* Operator fusion run by the planner (graph/fuse.c). */
#ifndef REGAIN_GRAPH_FUSE_H
#define REGAIN_GRAPH_FUSE_H

#include "regain/graph.h"

/* The only node reading value v, or -1 when v has other readers or none or
 * is the graph's output. */
int32_t rg_graph_sole_reader(const rg_graph *g, int32_t v);
/* Links the fusable chains for a plan of this mode (rg_node.fuse_next/prev). */
void rg_graph_fuse(rg_graph *g, rg_plan_mode mode);
/* First and last node of the chain holding `node` (the node itself if none),
 * and the value the chain writes. */
int32_t rg_graph_chain_head(const rg_graph *g, int32_t node);
int32_t rg_graph_chain_output(const rg_graph *g, int32_t node);
/* The node that writes value v: the head of its producer's chain. */
int32_t rg_graph_value_written_at(const rg_graph *g, int32_t v);
/* The node whose backward pass reads v's gradient last (the backward runs
 * nodes in reverse, so the lowest index): the node that writes v, or, for
 * the chain output of a batch norm paired with a convolution that computes
 * its input gradient (ops/bn.h), that convolution. */
int32_t rg_graph_grad_last_reader(const rg_graph *g, int32_t v);
/* owner[v]: the value whose gradient memory v's gradient uses in a
 * training plan: v itself, or the output gradient of an add that writes
 * v's gradient first and hands that memory over (a residual add's inputs
 * receive its output gradient unchanged, or masked by its fused relu: no
 * copy), followed through chains of such adds. */
void rg_graph_grad_owners(const rg_graph *g, int32_t *owner);
/* Drops the folded weights of rg_graph_fold. */
void rg_graph_unfold(rg_graph *g);
/* A shallow copy of g whose nodes (a fresh array, free copy->nodes) carry
 * the evaluation plan's fusion, for reports on an unplanned graph. */
rg_status rg_graph_with_eval_fusion(const rg_graph *g, rg_graph *copy, rg_error *err);

#endif
