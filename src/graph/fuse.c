/* Operator fusion at planning time: batch norm + relu/relu6.
 *
 * In a MobileNet-style network most batch norms feed a relu6 and nothing
 * else. Fused, the batch norm writes relu6(bn(x)) straight into the
 * activation's output; the backward pass reads the activation's output to
 * mask the gradient (0 < y < 6) before the batch-norm backward. The batch
 * norm's own output is never stored: one activation and one gradient buffer
 * fewer per pair, and two passes over memory fewer each way.
 */
#include "graph/fuse.h"

void rg_graph_fuse(rg_graph *g)
{
    for (int32_t i = 0; i < g->n_nodes; i++) g->nodes[i].fused_with = 0;
    for (int32_t i = 1; i < g->n_nodes; i++) {
        rg_node *act = &g->nodes[i];
        if (act->op != RG_OP_RELU && act->op != RG_OP_RELU6) continue;
        int32_t v = act->in[0], p = g->values[v].producer;
        rg_node *bn = &g->nodes[p];
        if (bn->op != RG_OP_BN || bn->fused_with || v == g->output) continue;
        /* the batch norm's output must have no other reader */
        int readers = 0;
        for (int32_t j = 1; j < g->n_nodes; j++)
            for (int32_t k = 0; k < g->nodes[j].n_in; k++) readers += g->nodes[j].in[k] == v;
        if (readers != 1) continue;
        bn->fused_with = i;
        act->fused_with = p;
    }
}

int32_t rg_graph_value_written_at(const rg_graph *g, int32_t v)
{
    const rg_node *p = &g->nodes[g->values[v].producer];
    return p->fused_with && p->op != RG_OP_BN ? p->fused_with : g->values[v].producer;
}

int rg_graph_value_stored(const rg_graph *g, int32_t v)
{
    const rg_node *p = &g->nodes[g->values[v].producer];
    return !(p->op == RG_OP_BN && p->fused_with);
}
