/* Batched inference with one arena per thread (regain/infer.h). */
#include "regain/infer.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_BUDGET ((size_t)1 << 20) /* bytes of activations one micro-batch may use */
#define MAX_MICRO 32

struct rg_infer {
    rg_graph *g;           /* planned for micro_batch; its arena is replica 0's */
    int32_t micro_batch, threads;
    rg_graph *replicas;    /* threads shallow copies of *g, each with its own arena */
    size_t in_floats, out_floats; /* per image */
};

rg_status rg_infer_create(rg_graph *g, int32_t threads, int32_t micro_batch, rg_infer **out, rg_error *err)
{
    *out = NULL;
    if (micro_batch < 0 || micro_batch > (1 << 16))
        return rg_fail(err, RG_ERR_ARG, "micro-batch %d is not valid", micro_batch);
    if (micro_batch == 0) {
        rg_graph_stats st;
        rg_status s = rg_graph_stats_compute(g, &st, err);
        if (s) return s;
        size_t per_image = st.peak_act_bytes ? st.peak_act_bytes : 1;
        micro_batch = (int32_t)(CACHE_BUDGET / per_image);
        if (micro_batch < 1) micro_batch = 1;
        if (micro_batch > MAX_MICRO) micro_batch = MAX_MICRO;
    }
    rg_infer *s = rg_calloc(1, sizeof *s, err);
    if (!s) return RG_ERR_NOMEM;
    s->g = g;
    s->micro_batch = micro_batch;
    s->threads = threads > 0 ? threads : omp_get_max_threads();
    rg_status st = rg_graph_plan(g, micro_batch, RG_PLAN_EVAL, err);
    if (!st) st = rg_graph_fold(g, err); /* the session's snapshot of the weights */
    if (!st && !(s->replicas = rg_calloc((size_t)s->threads, sizeof *s->replicas, err))) st = RG_ERR_NOMEM;
    for (int32_t t = 0; !st && t < s->threads; t++) {
        /* same plan, own arena: offsets live in the shared values array */
        s->replicas[t] = *g;
        if (t == 0) continue;
        s->replicas[t].profile_s = NULL;
        s->replicas[t].arena = rg_alloc_aligned(g->arena_floats * sizeof(float) + 64, err);
        if (!s->replicas[t].arena) st = RG_ERR_NOMEM;
    }
    if (st) {
        rg_infer_free(s);
        return st;
    }
    rg_shape in = g->values[g->input].shape, o = g->values[g->output].shape;
    s->in_floats = (size_t)in.h * in.w * in.c;
    s->out_floats = (size_t)o.h * o.w * o.c;
    *out = s;
    return RG_OK;
}

static void run_micro(rg_graph *r, const float *images, int32_t n, float *logits, size_t in_floats, size_t out_floats)
{
    rg_exec ctx = {0};
    r->batch = n;
    memcpy(rg_graph_input(r), images, (size_t)n * in_floats * sizeof(float));
    rg_graph_forward(r, &ctx);
    memcpy(logits, rg_graph_output(r), (size_t)n * out_floats * sizeof(float));
}

void rg_infer_run(rg_infer *s, const float *images, int32_t n, float *logits)
{
    int32_t m = s->micro_batch, pieces = (n + m - 1) / m;
    /* a profile (regain bench --profile) times the first thread's pieces */
    s->replicas[0].profile_s = s->g->profile_s;
    if (pieces <= 1 || s->threads == 1) {
        /* one piece, or one thread: the ops' own threads share each layer */
        for (int32_t p = 0; p < pieces; p++) {
            int32_t i0 = p * m, k = n - i0 < m ? n - i0 : m;
            run_micro(&s->replicas[0], images + (size_t)i0 * s->in_floats, k, logits + (size_t)i0 * s->out_floats,
                      s->in_floats, s->out_floats);
        }
        return;
    }
    /* The ops' parallel loops inside run on one thread here (nested regions
     * are inactive), and so does OpenBLAS (kernels/gemm.c). */
#pragma omp parallel for schedule(dynamic, 1) num_threads(s->threads)
    for (int32_t p = 0; p < pieces; p++) {
        int32_t i0 = p * m, k = n - i0 < m ? n - i0 : m;
        run_micro(&s->replicas[omp_get_thread_num()], images + (size_t)i0 * s->in_floats, k,
                  logits + (size_t)i0 * s->out_floats, s->in_floats, s->out_floats);
    }
}

int32_t rg_infer_micro_batch(const rg_infer *s) { return s->micro_batch; }

void rg_infer_free(rg_infer *s)
{
    if (!s) return;
    for (int32_t t = 1; s->replicas && t < s->threads; t++) rg_free_aligned(s->replicas[t].arena);
    free(s->replicas);
    free(s);
}
