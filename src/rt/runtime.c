/* The int8 runtime (regain/rt.h): prepare a validated model for one kernel
 * table (weights packed once, arena planned), then run images with no
 * allocation and no checks left to do: rg_rgm_check and the kernels'
 * prepare functions have validated every parameter. */
#include "rt/rt_internal.h"
#include "rt/rt_ref_ops.h"

#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static int is_pointwise(const rg_rgm_op *o)
{
    return o->kind == RG_RT_CONV && o->k_h == 1 && o->k_w == 1 && o->stride == 1 && o->pad == 0;
}

static rg_q_conv_params conv_params(const rg_rgm *m, const rg_rgm_op *o)
{
    const rg_rgm_tensor *in = &m->tensors[o->in[0]], *out = &m->tensors[o->out];
    return (rg_q_conv_params){.batch = 1, .in_h = in->h, .in_w = in->w, .in_c = in->c, .out_h = out->h,
                              .out_w = out->w, .out_c = out->c, .k_h = o->k_h, .k_w = o->k_w,
                              .stride_h = o->stride, .stride_w = o->stride, .dilation_h = 1, .dilation_w = 1,
                              .pad_top = o->pad, .pad_left = o->pad, .in_zp = in->q.zero_point,
                              .out_zp = out->q.zero_point, .act_min = o->act_min, .act_max = o->act_max,
                              .multipliers = o->multipliers, .shifts = o->shifts, .scales = o->scales};
}

static rg_q_fc_params fc_params(const rg_rgm *m, const rg_rgm_op *o, int32_t rows, int32_t k)
{
    const rg_rgm_tensor *in = &m->tensors[o->in[0]], *out = &m->tensors[o->out];
    return (rg_q_fc_params){.batch = rows, .in_features = k, .out_features = o->out_c, .in_zp = in->q.zero_point,
                            .out_zp = out->q.zero_point, .act_min = o->act_min, .act_max = o->act_max,
                            .multipliers = o->multipliers, .shifts = o->shifts, .scales = o->scales};
}

/* Bytes of packed weights op i needs (and its path). */
static size_t packed_bytes(const rg_rt *rt, int32_t i, rt_path *path)
{
    const rg_rgm *m = rt->m;
    const rg_rgm_op *o = &m->ops[i];
    const rg_rgm_tensor *in = &m->tensors[o->in[0]];
    switch (o->kind) {
    case RG_RT_CONV:
        if (is_pointwise(o)) {
            *path = PATH_GEMM;
            return rg_qk_gemm_size(rt->t, in->c, o->out_c);
        } else {
            rg_q_conv_params p = conv_params(m, o);
            *path = PATH_CONV;
            return rg_qk_conv_size(rt->t, &p);
        }
    case RG_RT_DEPTHWISE: {
        rg_q_conv_params p = conv_params(m, o);
        *path = PATH_DW;
        return rg_qk_dw_size(rt->t, &p);
    }
    case RG_RT_FC: *path = PATH_FC; return rg_qk_gemm_size(rt->t, in->h * in->w * in->c, o->out_c);
    case RG_RT_ADD: *path = PATH_ADD; return 0;
    case RG_RT_AVGPOOL: *path = PATH_AVGPOOL; return 0;
    case RG_RT_MAXPOOL: *path = PATH_MAXPOOL; return 0;
    case RG_RT_GAP: *path = PATH_GAP; return 0;
    case RG_RT_CLAMP: *path = PATH_CLAMP; return 0;
    default: *path = PATH_REF; return 0;
    }
}

static rg_status prepare_op(rg_rt *rt, int32_t i, uint8_t *buf, size_t size, size_t *scratch, rg_error *err)
{
    const rg_rgm *m = rt->m;
    const rg_rgm_op *o = &m->ops[i];
    const rg_rgm_tensor *in = &m->tensors[o->in[0]], *out = &m->tensors[o->out];
    rt_op *r = &rt->ops[i];
    rg_status st = RG_OK;
    *scratch = 0;
    switch (r->path) {
    case PATH_GEMM:
    case PATH_FC: {
        int32_t rows = r->path == PATH_GEMM ? in->h * in->w : 1;
        int32_t k = r->path == PATH_GEMM ? in->c : in->h * in->w * in->c;
        rg_q_fc_params p = fc_params(m, o, rows, k);
        r->n = rows;
        st = rg_qk_gemm_prepare(rt->t, &p, o->weights, o->bias, buf, size, &r->g, err);
        if (!st) *scratch = rg_qk_gemm_scratch(&r->g);
        break;
    }
    case PATH_CONV: {
        rg_q_conv_params p = conv_params(m, o);
        st = rg_qk_conv_prepare(rt->t, &p, o->weights, o->bias, buf, size, &r->c, err);
        if (!st) *scratch = rg_qk_conv_scratch(&r->c);
        break;
    }
    case PATH_DW: {
        rg_q_conv_params p = conv_params(m, o);
        st = rg_qk_dw_prepare(rt->t, &p, o->weights, o->bias, buf, size, &r->d, err);
        if (!st) *scratch = rg_qk_dw_scratch(&r->d);
        break;
    }
    case PATH_ADD:
    case PATH_CLAMP: r->n = (int64_t)out->h * out->w * out->c; break;
    case PATH_AVGPOOL:
    case PATH_MAXPOOL:
        r->pool = (rg_q_pool_params){.batch = 1, .in_h = in->h, .in_w = in->w, .c = in->c, .out_h = out->h,
                                     .out_w = out->w, .k_h = o->k_h, .k_w = o->k_w, .stride_h = o->stride,
                                     .stride_w = o->stride, .pad_top = o->pad, .pad_left = o->pad,
                                     .act_min = o->act_min, .act_max = o->act_max};
        break;
    case PATH_GAP:
        r->gap = (rg_q_gap_params){.batch = 1, .h = in->h, .w = in->w, .c = in->c, .in_zp = in->q.zero_point,
                                   .out_zp = out->q.zero_point, .multiplier = o->gap_multiplier,
                                   .shift = o->gap_shift, .act_min = o->act_min, .act_max = o->act_max};
        st = rg_qk_check_gap(&r->gap, err);
        break;
    case PATH_REF: break; /* rg_rgm_check validated them */
    }
    if (st) return rg_error_prefix(err, "rt: op %d (%s)", (int)i, o->name);
    return RG_OK;
}

rg_status rg_rt_prepare_opts(const rg_rgm *m, const rg_qk_table *t, const rg_rt_options *o, rg_rt **out,
                             rg_error *err)
{
    *out = NULL;
    if (o->micro_batch < 1 || o->micro_batch > 4096)
        return rg_fail(err, RG_ERR_ARG, "rt: micro_batch %d is not in [1, 4096]", (int)o->micro_batch);
    if (o->threads < 1 || o->threads > 256)
        return rg_fail(err, RG_ERR_ARG, "rt: threads %d is not in [1, 256]", (int)o->threads);
    rg_status st = rg_rgm_check(m, err);
    if (st) return rg_error_prefix(err, "rt: model");
    rg_rt *rt = calloc(1, sizeof *rt);
    if (!rt) return rg_fail(err, RG_ERR_NOMEM, "rt: out of memory");
    rt->m = m;
    rt->t = t ? t : rg_qk_kernels();
    rt->ops = calloc((size_t)m->n_ops, sizeof *rt->ops);
    size_t *at = calloc((size_t)m->n_ops + 1, sizeof *at);
    if (!rt->ops || !at) {
        free(at);
        rg_rt_free(rt);
        return rg_fail(err, RG_ERR_NOMEM, "rt: out of memory");
    }
    for (int32_t i = 0; i < m->n_ops; i++) at[i + 1] = at[i] + rg_rt_align(packed_bytes(rt, i, &rt->ops[i].path));
    rt->packed_size = at[m->n_ops];
    rt->packed = rg_alloc_aligned(rt->packed_size ? rt->packed_size : 64, err);
    if (!rt->packed) st = RG_ERR_NOMEM;
    size_t scratch = 0;
    for (int32_t i = 0; i < m->n_ops && !st; i++) {
        size_t s;
        st = prepare_op(rt, i, (uint8_t *)rt->packed + at[i], at[i + 1] - at[i], &s, err);
        if (s > scratch) scratch = s;
    }
    free(at);
    if (!st) st = rg_rt_plan(rt, err);
    if (st) {
        rg_rt_free(rt);
        return st;
    }
    rt->stats.scratch = rg_rt_align(scratch);
    /* a slot: the plan's offsets times the micro-batch (every tensor of mb
     * images in mb times its aligned size), then the scratch */
    rt->mb = o->micro_batch;
    rt->threads = o->threads;
    rt->scratch_off = rg_rt_align(rt->stats.arena) * (size_t)rt->mb;
    rt->slot = rg_rt_align(rt->scratch_off + rt->stats.scratch);
    if (rt->slot == 0) rt->slot = 64;
    rt->arena = rt->slot * (size_t)rt->threads;
    *out = rt;
    return RG_OK;
}

rg_status rg_rt_prepare(const rg_rgm *m, const rg_qk_table *t, rg_rt **out, rg_error *err)
{
    const rg_rt_options one = {1, 1};
    return rg_rt_prepare_opts(m, t, &one, out, err);
}

rg_rt_options rg_rt_options_get(const rg_rt *rt)
{
    return (rg_rt_options){rt->mb, rt->threads};
}

size_t rg_rt_arena_size(const rg_rt *rt)
{
    return rt->arena;
}

size_t rg_rt_packed_size(const rg_rt *rt)
{
    return rt->packed_size;
}

const char *rg_rt_table_name(const rg_rt *rt)
{
    return rt->t->name;
}

/* Runs every op on b <= mb images in one slot a; the input tensor is in
 * place. Tensor t of the b images is at off[t] * mb: the plan scaled. */
static void run(const rg_rt *rt, int8_t *a, int32_t b, rg_rt_trace_fn trace, void *user)
{
    const rg_rgm *m = rt->m;
    const size_t mb = (size_t)rt->mb;
    void *scratch = a + rt->scratch_off;
    for (int32_t i = 0; i < m->n_ops; i++) {
        const rg_rgm_op *o = &m->ops[i];
        const rt_op *r = &rt->ops[i];
        const int8_t *x = a + rt->off[o->in[0]] * mb;
        int8_t *y = a + rt->off[o->out] * mb;
        switch (r->path) {
        case PATH_GEMM:
        case PATH_FC: rg_qk_gemm_run(&r->g, (int32_t)r->n * b, x, y, scratch); break;
        case PATH_CONV: {
            rg_qk_conv c = r->c;
            c.p.batch = b;
            rg_qk_conv_run(&c, x, y, scratch);
            break;
        }
        case PATH_DW: {
            rg_qk_dw d = r->d;
            d.p.batch = b;
            rg_qk_dw_run(&d, x, y, scratch);
            break;
        }
        case PATH_ADD: rt->t->add(&o->add, x, a + rt->off[o->in[1]] * mb, r->n * b, y); break;
        case PATH_CLAMP: rt->t->clamp(x, r->n * b, o->act_min, o->act_max, y); break;
        case PATH_GAP: {
            rg_q_gap_params g = r->gap;
            g.batch = b;
            rt->t->gap(&g, x, y);
            break;
        }
        /* pooling has no fast kernel yet: the reference. Its checks cannot
         * fail here: rg_rgm_check requires the output size the window gives
         * and pad < kernel, which is what the reference checks. */
        case PATH_AVGPOOL:
        case PATH_MAXPOOL: {
            rg_q_pool_params p = r->pool;
            p.batch = b;
            if (r->path == PATH_AVGPOOL) rg_q_avgpool_s8(&p, x, y, NULL);
            else rg_q_maxpool_s8(&p, x, y, NULL);
            break;
        }
        case PATH_REF: {
            const int8_t *xs[RG_RGM_MAX_IN];
            for (int32_t k = 0; k < rg_rgm_op_n_in(o); k++) xs[k] = a + rt->off[o->in[k]] * mb;
            rg_rt_ref_op(m, o, xs, y, b);
            break;
        }
        }
        rg_rt_clamp_channels(m, o, y, b); /* equalized ReLU6 layers (nothing otherwise) */
        if (trace) trace(user, i, y);
    }
}

void rg_rt_invoke(const rg_rt *rt, void *arena, const int8_t *in, int8_t *out)
{
    rg_rt_invoke_trace(rt, arena, in, out, NULL, NULL);
}

void rg_rt_invoke_trace(const rg_rt *rt, void *arena, const int8_t *in, int8_t *out, rg_rt_trace_fn trace,
                        void *user)
{
    const rg_rgm *m = rt->m;
    int8_t *a = arena;
    memcpy(a + rt->off[m->input] * (size_t)rt->mb, in, rg_rt_tensor_bytes(m, m->input));
    run(rt, a, 1, trace, user);
    memcpy(out, a + rt->off[m->output] * (size_t)rt->mb, rg_rt_tensor_bytes(m, m->output));
}

/* What a batch call reads and writes: int8 (in8, out8) or float (inf,
 * outf: quantized on the way in, dequantized on the way out). */
typedef struct {
    const int8_t *in8;
    const float *inf;
    int8_t *out8;
    float *outf;
} io;

/* Images [lo, hi) through one slot, micro-batch by micro-batch. */
static void run_share(const rg_rt *rt, int8_t *slot, int32_t lo, int32_t hi, const io *d)
{
    const rg_rgm *m = rt->m;
    const size_t in_n = rg_rt_tensor_bytes(m, m->input), out_n = rg_rt_tensor_bytes(m, m->output);
    const size_t mb = (size_t)rt->mb;
    const rg_qparams qi = m->tensors[m->input].q, qo = m->tensors[m->output].q;
    int8_t *x = slot + rt->off[m->input] * mb;
    const int8_t *y = slot + rt->off[m->output] * mb;
    for (int32_t i = lo; i < hi; i += rt->mb) {
        int32_t b = hi - i < rt->mb ? hi - i : rt->mb;
        size_t nx = (size_t)b * in_n, ny = (size_t)b * out_n;
        if (d->in8) memcpy(x, d->in8 + (size_t)i * in_n, nx);
        else
            rg_qk_quantize(rt->t, d->inf + (size_t)i * in_n, nx, qi, x);
        run(rt, slot, b, NULL, NULL);
        if (d->out8) memcpy(d->out8 + (size_t)i * out_n, y, ny);
        else rg_q_dequantize(y, ny, qo, d->outf + (size_t)i * out_n);
    }
}

static void invoke_batch(const rg_rt *rt, void *arena, int32_t n, const io *d)
{
    int8_t *a = arena;
    /* threads with at least one micro-batch each; every image is computed
     * alone, so how they are shared changes no bit */
    int32_t chunks = (n + rt->mb - 1) / rt->mb, nt = rt->threads < chunks ? rt->threads : chunks;
    if (nt <= 1) {
        if (n > 0) run_share(rt, a, 0, n, d);
        return;
    }
#ifdef _OPENMP
#pragma omp parallel num_threads(nt)
    {
        int32_t t = (int32_t)omp_get_thread_num(), got = (int32_t)omp_get_num_threads();
        /* contiguous shares in whole micro-batches; a smaller team than
         * asked (nested or limited OpenMP) shares all the images alike */
        int32_t lo = (int32_t)((int64_t)chunks * t / got) * rt->mb;
        int32_t hi = (int32_t)((int64_t)chunks * (t + 1) / got) * rt->mb;
        if (hi > n) hi = n;
        if (lo < hi) run_share(rt, a + (size_t)t * rt->slot, lo, hi, d);
    }
#else
    run_share(rt, a, 0, n, d);
#endif
}

void rg_rt_invoke_batch(const rg_rt *rt, void *arena, int32_t n, const int8_t *in, int8_t *out)
{
    const io d = {.in8 = in, .out8 = out};
    invoke_batch(rt, arena, n, &d);
}

void rg_rt_invoke_batch_float(const rg_rt *rt, void *arena, int32_t n, const float *in, float *out)
{
    const io d = {.inf = in, .outf = out};
    invoke_batch(rt, arena, n, &d);
}

void rg_rt_invoke_float(const rg_rt *rt, void *arena, const float *in, float *out)
{
    const io d = {.inf = in, .outf = out};
    run_share(rt, arena, 0, 1, &d);
}

void rg_rt_plan_stats_get(const rg_rt *rt, rg_rt_plan_stats *s)
{
    *s = rt->stats;
}

size_t rg_rt_tensor_offset(const rg_rt *rt, int32_t t)
{
    return rt->off[t];
}

void rg_rt_tensor_life(const rg_rt *rt, int32_t t, int32_t *first, int32_t *last)
{
    *first = rt->first[t];
    *last = rt->last[t];
}

int rg_rt_tensor_in_place(const rg_rt *rt, int32_t t)
{
    return rt->group[t] != t;
}

void rg_rt_free(rg_rt *rt)
{
    if (!rt) return;
    rg_free_aligned(rt->packed);
    free(rt->ops);
    free(rt->first);
    free(rt->last);
    free(rt->group);
    free(rt->off);
    free(rt);
}
