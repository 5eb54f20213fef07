/* Forward and backward passes: walk the nodes in order (reverse for backward)
 * and call each op through the op table. */
#include "regain/graph.h"
#include "ops/op.h"

#include <string.h>

static size_t align_up(size_t x) { return (x + 15) & ~(size_t)15; }

/* Builds the call record of every node; saved-state offsets follow the order
 * used by rg_graph_plan. */
static void run(rg_graph *g, const rg_exec *ctx, int backward)
{
    float *saved = g->arena + g->scratch_off + g->scratch_floats;
    float *saved_at[g->n_nodes > 0 ? g->n_nodes : 1];
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const rg_op_def *d = rg_op_def_get(g->nodes[i].op);
        saved_at[i] = saved;
        if (d->saved_floats) saved += align_up(d->saved_floats(g, &g->nodes[i], g->planned_batch));
    }
    for (int32_t k = 0; k < g->n_nodes; k++) {
        int32_t i = backward ? g->n_nodes - 1 - k : k;
        rg_node *n = &g->nodes[i];
        const rg_op_def *d = rg_op_def_get(n->op);
        rg_op_call c = {g, n, i, ctx, g->arena + g->scratch_off, saved_at[i]};
        if (backward) {
            if (d->backward) d->backward(&c);
        } else if (d->forward) {
            d->forward(&c);
        }
    }
}

void rg_graph_forward(rg_graph *g, const rg_exec *ctx) { run(g, ctx, 0); }

void rg_graph_backward(rg_graph *g, const rg_exec *ctx)
{
    if (g->mode != RG_PLAN_TRAIN) return;
    memset(g->grad_data, 0, g->param_floats * sizeof(float));
    /* Zero every value's gradient but the output's, which the caller wrote. */
    for (int32_t v = 0; v < g->n_values; v++) {
        if (v == g->output) continue;
        rg_shape s = g->values[v].shape;
        s.n = g->batch;
        memset(rg_graph_grad(g, v), 0, rg_shape_count(s) * sizeof(float));
    }
    run(g, ctx, 1);
}
