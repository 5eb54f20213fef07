/* The int8 runtime (regain/rt.h): prepare a validated model for one kernel
 * table (weights packed once, arena planned), then run images with no
 * allocation and no checks left to do: rg_rgm_check and the kernels'
 * prepare functions have validated every parameter. */
#include "rt/rt_internal.h"
#include "rt/rt_ref_ops.h"

#include <stdlib.h>
#include <string.h>

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
                              .multipliers = o->multipliers, .shifts = o->shifts};
}

static rg_q_fc_params fc_params(const rg_rgm *m, const rg_rgm_op *o, int32_t rows, int32_t k)
{
    const rg_rgm_tensor *in = &m->tensors[o->in[0]], *out = &m->tensors[o->out];
    return (rg_q_fc_params){.batch = rows, .in_features = k, .out_features = o->out_c, .in_zp = in->q.zero_point,
                            .out_zp = out->q.zero_point, .act_min = o->act_min, .act_max = o->act_max,
                            .multipliers = o->multipliers, .shifts = o->shifts};
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

rg_status rg_rt_prepare(const rg_rgm *m, const rg_qk_table *t, rg_rt **out, rg_error *err)
{
    *out = NULL;
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
    rt->scratch_off = rg_rt_align(rt->stats.arena);
    rt->arena = rt->scratch_off + rt->stats.scratch;
    if (rt->arena == 0) rt->arena = 64;
    *out = rt;
    return RG_OK;
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

/* Runs every op; the input tensor is in place in the arena. */
static void run(const rg_rt *rt, int8_t *a, rg_rt_trace_fn trace, void *user)
{
    const rg_rgm *m = rt->m;
    void *scratch = a + rt->scratch_off;
    for (int32_t i = 0; i < m->n_ops; i++) {
        const rg_rgm_op *o = &m->ops[i];
        const rt_op *r = &rt->ops[i];
        const int8_t *x = a + rt->off[o->in[0]];
        int8_t *y = a + rt->off[o->out];
        switch (r->path) {
        case PATH_GEMM:
        case PATH_FC: rg_qk_gemm_run(&r->g, (int32_t)r->n, x, y, scratch); break;
        case PATH_CONV: rg_qk_conv_run(&r->c, x, y, scratch); break;
        case PATH_DW: rg_qk_dw_run(&r->d, x, y); break;
        case PATH_ADD: rt->t->add(&o->add, x, a + rt->off[o->in[1]], r->n, y); break;
        case PATH_CLAMP: rt->t->clamp(x, r->n, o->act_min, o->act_max, y); break;
        case PATH_GAP: rt->t->gap(&r->gap, x, y); break;
        /* pooling has no fast kernel yet: the reference. Its checks cannot
         * fail here: rg_rgm_check requires the output size the window gives
         * and pad < kernel, which is what the reference checks. */
        case PATH_AVGPOOL: rg_q_avgpool_s8(&r->pool, x, y, NULL); break;
        case PATH_MAXPOOL: rg_q_maxpool_s8(&r->pool, x, y, NULL); break;
        case PATH_REF: {
            const int8_t *xs[RG_RGM_MAX_IN];
            for (int32_t k = 0; k < rg_rgm_op_n_in(o); k++) xs[k] = a + rt->off[o->in[k]];
            rg_rt_ref_op(m, o, xs, y, 1);
            break;
        }
        }
        rg_rt_clamp_channels(m, o, y, 1); /* equalized ReLU6 layers (nothing otherwise) */
        if (trace) trace(user, i, y);
    }
}

void rg_rt_invoke(const rg_rt *rt, void *arena, const int8_t *in, int8_t *out)
{
    const rg_rgm *m = rt->m;
    int8_t *a = arena;
    memcpy(a + rt->off[m->input], in, rg_rt_tensor_bytes(m, m->input));
    run(rt, a, NULL, NULL);
    memcpy(out, a + rt->off[m->output], rg_rt_tensor_bytes(m, m->output));
}

void rg_rt_invoke_trace(const rg_rt *rt, void *arena, const int8_t *in, int8_t *out, rg_rt_trace_fn trace,
                        void *user)
{
    const rg_rgm *m = rt->m;
    int8_t *a = arena;
    memcpy(a + rt->off[m->input], in, rg_rt_tensor_bytes(m, m->input));
    run(rt, a, trace, user);
    memcpy(out, a + rt->off[m->output], rg_rt_tensor_bytes(m, m->output));
}

void rg_rt_invoke_float(const rg_rt *rt, void *arena, const float *in, float *out)
{
    const rg_rgm *m = rt->m;
    int8_t *a = arena;
    const rg_rgm_tensor *ti = &m->tensors[m->input], *to = &m->tensors[m->output];
    int8_t *x = a + rt->off[m->input];
    size_t n = rg_rt_tensor_bytes(m, m->input);
    for (size_t i = 0; i < n; i++) x[i] = (int8_t)rg_q_quantize_value(in[i], ti->q, -128, 127);
    run(rt, a, NULL, NULL);
    rg_q_dequantize(a + rt->off[m->output], rg_rt_tensor_bytes(m, m->output), to->q, out);
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
