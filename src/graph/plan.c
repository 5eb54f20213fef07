/* Memory planning: every activation, gradient, per-node saved state and the
 * shared scratch get an offset in one arena, computed once per batch size.
 *
 * Training keeps every activation until the backward pass, so activations
 * simply get consecutive slots; gradients, each alive only for a stretch of
 * the backward pass, share memory by liveness (plan_gradients). Inference places values by liveness with the
 * greedy-by-size heuristic TFLite Micro uses: sort values by size, largest
 * first, and put each at the lowest offset where it overlaps no already
 * placed value that is alive at the same time.
 */
#include "regain/graph.h"
#include "graph/fuse.h"
#include "ops/op.h"

#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN_FLOATS 16 /* 64 bytes */

static size_t align_up(size_t x) { return (x + ALIGN_FLOATS - 1) & ~(size_t)(ALIGN_FLOATS - 1); }

typedef struct {
    int32_t v;
    size_t size;
    int32_t first, last;
    size_t off;
} placement;

static int by_size_desc(const void *a, const void *b)
{
    const placement *x = a, *y = b;
    if (x->size != y->size) return x->size < y->size ? 1 : -1;
    return x->v - y->v;
}

/* Greedy-by-size placement of live ranges; returns the peak in floats. */
static size_t place_by_liveness(placement *p, int32_t n)
{
    qsort(p, (size_t)n, sizeof *p, by_size_desc);
    size_t peak = 0;
    for (int32_t i = 0; i < n; i++) {
        size_t off = 0;
        /* Try offsets at 0 and right after each conflicting placed block,
         * lowest first; a candidate works when it overlaps no live block. */
        for (;;) {
            size_t next = SIZE_MAX;
            int clash = 0;
            for (int32_t j = 0; j < i; j++) {
                if (p[j].last < p[i].first || p[i].last < p[j].first) continue;
                if (p[j].off < off + p[i].size && off < p[j].off + p[j].size) {
                    clash = 1;
                    size_t end = p[j].off + p[j].size;
                    if (end < next) next = end;
                }
            }
            if (!clash) break;
            off = next;
        }
        p[i].off = off;
        if (off + p[i].size > peak) peak = off + p[i].size;
    }
    return peak;
}

/* Gradients by liveness over the backward pass, which runs the nodes in
 * reverse: a value's gradient is first written by the backward of its last
 * reader (zeroed just before, see run.c) and last read by the backward of its
 * producer. In backward time t = n_nodes - 1 - node, it lives on
 * [n - 1 - last_use, n - 1 - producer]; the output's gradient, written by the
 * caller before the pass, lives from t = 0 (a fused activation's until its
 * batch norm's backward). Placed greedy-by-size after the
 * activations, which all stay for the backward pass. */
static rg_status plan_gradients(rg_graph *g, int32_t batch, size_t *total, rg_error *err)
{
    placement *p = rg_calloc((size_t)g->n_values, sizeof *p, err);
    if (!p) return RG_ERR_NOMEM;
    int32_t last = g->n_nodes - 1;
    for (int32_t v = 0; v < g->n_values; v++) {
        rg_shape s = g->values[v].shape;
        s.n = batch;
        size_t size = rg_graph_value_stored(g, v) ? align_up(rg_shape_count(s)) : 0;
        int32_t first = v == g->output ? 0 : last - g->values[v].last_use;
        /* a fused activation's gradient is read by its batch norm's backward,
         * and a paired batch norm's by its convolution's */
        p[v] = (placement){v, size, first, last - rg_graph_grad_last_reader(g, v), 0};
    }
    /* a gradient in its owner's memory (rg_graph_grad_owners) keeps that
     * memory alive for its own stretch too */
    int32_t *owner = rg_calloc((size_t)g->n_values, sizeof *owner, err);
    if (!owner) {
        free(p);
        return RG_ERR_NOMEM;
    }
    rg_graph_grad_owners(g, owner);
    for (int32_t v = 0; v < g->n_values; v++) {
        int32_t o = owner[v];
        if (o == v) continue;
        if (p[v].first < p[o].first) p[o].first = p[v].first;
        if (p[v].last > p[o].last) p[o].last = p[v].last;
        p[v].size = 0;
    }
    size_t peak = place_by_liveness(p, g->n_values);
    for (int32_t i = 0; i < g->n_values; i++) g->values[p[i].v].grad_off = *total + p[i].off;
    for (int32_t v = 0; v < g->n_values; v++) g->values[v].grad_off = g->values[owner[v]].grad_off;
    free(owner);
    free(p);
    *total += peak;
    return RG_OK;
}

rg_status rg_graph_plan(rg_graph *g, int32_t batch, rg_plan_mode mode, rg_error *err)
{
    if (batch <= 0 || batch > (1 << 20)) return rg_fail(err, RG_ERR_ARG, "batch size %d is not valid", batch);
    if (g->output < 0) return rg_fail(err, RG_ERR_ARG, "graph is not finished");
    rg_free_aligned(g->arena);
    g->arena = NULL;
    g->batch = g->planned_batch = batch;
    g->plan_threads = omp_get_max_threads();
    g->mode = mode;
    rg_graph_fuse(g, mode);
    rg_graph_unfold(g);
    free(g->grad_fresh);
    g->grad_fresh = rg_calloc((size_t)g->n_values, 1, err);
    if (!g->grad_fresh) return RG_ERR_NOMEM;

    size_t total = 0;
    if (mode == RG_PLAN_TRAIN) {
        for (int32_t v = 0; v < g->n_values; v++) {
            rg_shape s = g->values[v].shape;
            s.n = batch;
            g->values[v].act_off = total;
            if (rg_graph_value_stored(g, v)) total += align_up(rg_shape_count(s));
        }
        g->act_floats = total;
        rg_status st = plan_gradients(g, batch, &total, err);
        if (st) return st;
    } else {
        placement *p = rg_calloc((size_t)g->n_values, sizeof *p, err);
        if (!p) return RG_ERR_NOMEM;
        for (int32_t v = 0; v < g->n_values; v++) {
            rg_shape s = g->values[v].shape;
            s.n = batch;
            size_t size = rg_graph_value_stored(g, v) ? align_up(rg_shape_count(s)) : 0;
            /* a tapped value outlives the pass: the caller reads it after */
            int32_t last = g->tapped && g->tapped[v] ? g->n_nodes : g->values[v].last_use;
            p[v] = (placement){v, size, rg_graph_value_written_at(g, v), last, 0};
        }
        total = place_by_liveness(p, g->n_values);
        for (int32_t i = 0; i < g->n_values; i++) {
            g->values[p[i].v].act_off = p[i].off;
            g->values[p[i].v].grad_off = SIZE_MAX;
        }
        free(p);
        g->act_floats = total;
    }

    /* The shared scratch, then each node's saved state. */
    size_t scratch = 0;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        rg_node *n = &g->nodes[i];
        const rg_op_def *d = rg_op_def_get(n->op);
        n->scratch_floats = d->scratch_floats ? d->scratch_floats(g, n, batch) : 0;
        if (n->scratch_floats > scratch) scratch = n->scratch_floats;
    }
    g->scratch_off = total;
    g->scratch_floats = align_up(scratch);
    total += g->scratch_floats;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const rg_op_def *d = rg_op_def_get(g->nodes[i].op);
        g->nodes[i].saved_off = total;
        if (d->saved_floats) total += align_up(d->saved_floats(g, &g->nodes[i], batch));
    }

    /* Training walks every activation and gradient of the step from memory
     * several times: huge pages, about 3 % faster on mbv2-tiny (2.8 to
     * 4.1 % on 2 threads), 1 to 2 % on resnet20. An inference plan
     * reuses a few buffers that stay in cache, and measured 2 % slower on
     * them (mbv2-tiny, batch 256): plain pages. */
    size_t bytes = (total + ALIGN_FLOATS) * sizeof(float);
    g->arena = mode == RG_PLAN_TRAIN ? rg_alloc_streamed(bytes, err) : rg_alloc_aligned(bytes, err);
    if (!g->arena) {
        g->arena_floats = 0;
        return rg_fail(err, RG_ERR_NOMEM, "out of memory planning %zu MiB of activations for batch %d",
                       total * sizeof(float) >> 20, batch);
    }
    memset(g->arena, 0, total * sizeof(float));
    g->arena_floats = total;
    return RG_OK;
}

rg_status rg_graph_set_batch(rg_graph *g, int32_t batch, rg_error *err)
{
    if (!g->arena) return rg_fail(err, RG_ERR_ARG, "graph has no plan");
    if (batch < 1 || batch > g->planned_batch)
        return rg_fail(err, RG_ERR_ARG, "batch %d exceeds the planned batch %d", batch, g->planned_batch);
    g->batch = batch;
    return RG_OK;
}

float *rg_graph_act(rg_graph *g, int32_t value) { return g->arena + g->values[value].act_off; }

float *rg_graph_grad(rg_graph *g, int32_t value)
{
    size_t off = g->values[value].grad_off;
    return off == SIZE_MAX ? NULL : g->arena + off;
}

float *rg_graph_input(rg_graph *g) { return rg_graph_act(g, g->input); }
float *rg_graph_output(rg_graph *g) { return rg_graph_act(g, g->output); }
float *rg_graph_output_grad(rg_graph *g) { return rg_graph_grad(g, g->output); }

rg_status rg_graph_stats_compute(const rg_graph *g_in, rg_graph_stats *st, rg_error *err)
{
    /* the figures of an evaluation plan, whatever plan g has now */
    rg_graph fused;
    if (rg_graph_with_eval_fusion(g_in, &fused, err)) return RG_ERR_NOMEM;
    const rg_graph *g = &fused;
    memset(st, 0, sizeof *st);
    for (int32_t i = 0; i < g->n_params; i++) st->params += g->params[i].count;
    for (int32_t i = 0; i < g->n_buffers; i++) st->buffers += g->buffers[i].count;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const rg_op_def *d = rg_op_def_get(g->nodes[i].op);
        if (d->macs) st->macs += d->macs(g, &g->nodes[i]);
    }
    placement *p = rg_calloc((size_t)g->n_values, sizeof *p, err);
    if (!p) {
        free(fused.nodes);
        return RG_ERR_NOMEM;
    }
    for (int32_t v = 0; v < g->n_values; v++)
        p[v] = (placement){v, rg_graph_value_stored(g, v) ? align_up(rg_shape_count(g->values[v].shape)) : 0,
                           rg_graph_value_written_at(g, v), g->values[v].last_use, 0};
    st->peak_act_bytes = place_by_liveness(p, g->n_values) * sizeof(float);
    free(p);
    free(fused.nodes);
    return RG_OK;
}
