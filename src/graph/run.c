/* Forward and backward passes: walk the nodes in order (reverse for backward)
 * and call each op through the op table. */
#include "regain/graph.h"
#include "graph/fuse.h"
#include "ops/op.h"

#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void zero_gradient(rg_graph *g, int32_t v)
{
    rg_shape s = g->values[v].shape;
    s.n = g->batch;
    memset(rg_graph_grad(g, v), 0, rg_shape_count(s) * sizeof(float));
}

/* Gradients share memory by liveness (plan.c), so each is cleared when it
 * comes alive, just before the backward of its last reader (the first node
 * to write it): zeroed, or marked fresh when that node stores into fresh
 * gradients itself. */
static void start_gradients(rg_graph *g, const rg_node *n, const rg_op_def *d, int32_t node)
{
    /* an output nobody reads (other than the graph's) gets no gradient */
    int32_t o = n->out;
    if (o >= 0 && g->values[o].last_use == node && o != g->output && rg_graph_value_stored(g, o)) zero_gradient(g, o);
    for (int32_t k = 0; k < n->n_in; k++) {
        int32_t v = n->in[k];
        if (g->values[v].last_use != node || v == g->output || !rg_graph_value_stored(g, v)) continue;
        int count = 0; /* the same value twice among the inputs: zero it, once */
        for (int32_t j = 0; j < n->n_in; j++) count += n->in[j] == v;
        int first = 1;
        for (int32_t j = 0; j < k; j++) first &= n->in[j] != v;
        if (!first) continue;
        if (d->stores_fresh_din && count == 1) g->grad_fresh[v] = 1;
        else zero_gradient(g, v);
    }
}

/* After a node's backward its inputs' gradients hold its contribution. */
static void end_gradients(rg_graph *g, const rg_node *n)
{
    for (int32_t k = 0; k < n->n_in; k++) g->grad_fresh[n->in[k]] = 0;
}

/* A tapped value's extra gradient joins it once all its readers have added
 * theirs: just before the backward of the node that wrote it. */
static void add_extra_gradients(rg_graph *g, int32_t node)
{
    for (int32_t v = 0; v < g->n_values; v++) {
        const float *e = g->extra_grad[v];
        if (!e || rg_graph_value_written_at(g, v) != node) continue;
        rg_shape s = g->values[v].shape;
        s.n = g->batch;
        float *dv = rg_graph_grad(g, v);
        size_t count = rg_shape_count(s);
        for (size_t i = 0; i < count; i++) dv[i] += e[i];
    }
}

static void run(rg_graph *g, const rg_exec *ctx, int backward)
{
    for (int32_t k = 0; k < g->n_nodes; k++) {
        int32_t i = backward ? g->n_nodes - 1 - k : k;
        rg_node *n = &g->nodes[i];
        if (n->fuse_prev) continue; /* computed by the head of its chain (graph/fuse.c) */
        const rg_op_def *d = rg_op_def_get(n->op);
        rg_op_call c = {g, n, i, ctx, g->arena + g->scratch_off, g->arena + n->saved_off};
        double t0 = g->profile_s ? now_s() : 0.0;
        if (backward) {
            if (g->extra_grad) add_extra_gradients(g, i);
            start_gradients(g, n, d, i);
            if (d->backward) d->backward(&c);
            end_gradients(g, n);
        } else if (d->forward) {
            d->forward(&c);
        }
        if (g->profile_s) g->profile_s[2 * i + backward] += now_s() - t0;
    }
}

void rg_graph_forward(rg_graph *g, const rg_exec *ctx)
{
    /* an evaluation plan folds batch norms with their running statistics */
    rg_exec e = *ctx;
    if (g->mode == RG_PLAN_EVAL) e.training = 0;
    run(g, &e, 0);
}

void rg_graph_backward(rg_graph *g, const rg_exec *ctx)
{
    if (g->mode != RG_PLAN_TRAIN) return;
    memset(g->grad_data, 0, g->param_floats * sizeof(float));
    run(g, ctx, 1);
}
