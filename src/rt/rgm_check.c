/* Validation of an int8 model (regain/rt.h): everything the runtime relies
 * on, checked once, so that a model that passes cannot make a kernel read or
 * write out of bounds. Used by the loader (after the file layout checks) and
 * by the writer (a model that would not load is never written). */
#include "regain/rt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rt/kernels/qk.h"

/* Bounds well above any edge model, low enough that no size product below
 * overflows 64 bits (or, per image, 32). */
#define MAX_DIM 32768
#define MAX_ELEMS ((int64_t)1 << 26)
#define MAX_KERNEL 32
#define MAX_STRIDE 16

static const char *kind_names[RG_RT_N_KINDS] = {"conv", "depthwise", "fc", "add", "avgpool", "maxpool", "gap", "clamp"};

const char *rg_rt_kind_name(rg_rt_kind k)
{
    return (unsigned)k < RG_RT_N_KINDS ? kind_names[k] : "?";
}

static int64_t elems(const rg_rgm_tensor *t)
{
    return (int64_t)t->h * t->w * t->c;
}

static rg_status check_tensor(const rg_rgm_tensor *t, int32_t i, rg_error *err)
{
    if (t->h < 1 || t->h > MAX_DIM || t->w < 1 || t->w > MAX_DIM || t->c < 1 || t->c > MAX_DIM)
        return rg_fail(err, RG_ERR_FORMAT, "tensor %d: shape %dx%dx%d outside [1, %d]", (int)i, (int)t->h, (int)t->w,
                       (int)t->c, MAX_DIM);
    if (elems(t) > MAX_ELEMS)
        return rg_fail(err, RG_ERR_FORMAT, "tensor %d: %lld elements above 2^26", (int)i, (long long)elems(t));
    if (!isfinite(t->q.scale) || !(t->q.scale > 0) || t->q.scale > 1e30f)
        return rg_fail(err, RG_ERR_FORMAT, "tensor %d: scale %g must be finite and > 0", (int)i, (double)t->q.scale);
    if (t->q.zero_point < -128 || t->q.zero_point > 127)
        return rg_fail(err, RG_ERR_FORMAT, "tensor %d: zero_point %d outside [-128, 127]", (int)i,
                       (int)t->q.zero_point);
    return RG_OK;
}

static rg_status check_act(const rg_rgm_op *o, rg_error *err)
{
    if (o->act_min < -128 || o->act_max > 127 || o->act_min > o->act_max)
        return rg_fail(err, RG_ERR_FORMAT, "act_min %d / act_max %d: need -128 <= act_min <= act_max <= 127",
                       (int)o->act_min, (int)o->act_max);
    return RG_OK;
}

static rg_status check_requant(const rg_rgm_op *o, int32_t n, rg_error *err)
{
    if (!o->weights || !o->multipliers || !o->shifts)
        return rg_fail(err, RG_ERR_FORMAT, "weights, multipliers and shifts are required");
    for (int32_t c = 0; c < n; c++) {
        if (o->multipliers[c] < 0)
            return rg_fail(err, RG_ERR_FORMAT, "multipliers[%d] = %d is negative", (int)c, (int)o->multipliers[c]);
        if (o->shifts[c] < -31 || o->shifts[c] > 30)
            return rg_fail(err, RG_ERR_FORMAT, "shifts[%d] = %d outside [-31, 30]", (int)c, (int)o->shifts[c]);
    }
    return RG_OK;
}

static rg_status check_window(const rg_rgm_op *o, const rg_rgm_tensor *in, const rg_rgm_tensor *out, rg_error *err)
{
    if (o->k_h < 1 || o->k_h > MAX_KERNEL || o->k_w < 1 || o->k_w > MAX_KERNEL)
        return rg_fail(err, RG_ERR_FORMAT, "kernel %dx%d outside [1, %d]", (int)o->k_h, (int)o->k_w, MAX_KERNEL);
    if (o->stride < 1 || o->stride > MAX_STRIDE)
        return rg_fail(err, RG_ERR_FORMAT, "stride %d outside [1, %d]", (int)o->stride, MAX_STRIDE);
    if (o->pad < 0 || o->pad >= (o->k_h > o->k_w ? o->k_h : o->k_w))
        return rg_fail(err, RG_ERR_FORMAT, "pad %d outside [0, kernel - 1]", (int)o->pad);
    int32_t oh = rg_q_out_size(in->h, o->k_h, o->stride, 1, o->pad, o->pad);
    int32_t ow = rg_q_out_size(in->w, o->k_w, o->stride, 1, o->pad, o->pad);
    if (out->h != oh || out->w != ow)
        return rg_fail(err, RG_ERR_FORMAT, "output %dx%d, but the window gives %dx%d", (int)out->h, (int)out->w,
                       (int)oh, (int)ow);
    return RG_OK;
}

static rg_status check_op(const rg_rgm *m, const rg_rgm_op *o, rg_error *err)
{
    const rg_rgm_tensor *in = &m->tensors[o->in[0]], *out = &m->tensors[o->out];
    rg_status st;
    switch (o->kind) {
    case RG_RT_CONV:
    case RG_RT_DEPTHWISE:
        if ((st = check_window(o, in, out, err)) || (st = check_act(o, err))) return st;
        if (o->out_c != out->c)
            return rg_fail(err, RG_ERR_FORMAT, "out_c %d but the output tensor has %d channels", (int)o->out_c,
                           (int)out->c);
        if (o->kind == RG_RT_DEPTHWISE && in->c != out->c)
            return rg_fail(err, RG_ERR_FORMAT, "depthwise: %d input channels, %d output channels", (int)in->c,
                           (int)out->c);
        if (o->kind == RG_RT_CONV && (int64_t)o->out_c * o->k_h * o->k_w * in->c > MAX_ELEMS)
            return rg_fail(err, RG_ERR_FORMAT, "conv: weights above 2^26 values");
        return check_requant(o, o->out_c, err);
    case RG_RT_FC:
        if ((st = check_act(o, err))) return st;
        if (out->h != 1 || out->w != 1 || out->c != o->out_c)
            return rg_fail(err, RG_ERR_FORMAT, "fc: output %dx%dx%d, expected 1x1x%d (out_c)", (int)out->h,
                           (int)out->w, (int)out->c, (int)o->out_c);
        if (elems(in) * o->out_c > MAX_ELEMS) return rg_fail(err, RG_ERR_FORMAT, "fc: weights above 2^26 values");
        return check_requant(o, o->out_c, err);
    case RG_RT_ADD: {
        const rg_rgm_tensor *b = &m->tensors[o->in[1]];
        if (in->h != out->h || in->w != out->w || in->c != out->c || b->h != out->h || b->w != out->w ||
            b->c != out->c)
            return rg_fail(err, RG_ERR_FORMAT, "add: input shapes %dx%dx%d and %dx%dx%d, output %dx%dx%d", (int)in->h,
                           (int)in->w, (int)in->c, (int)b->h, (int)b->w, (int)b->c, (int)out->h, (int)out->w,
                           (int)out->c);
        return rg_qk_check_add(&o->add, err);
    }
    case RG_RT_AVGPOOL:
    case RG_RT_MAXPOOL:
        if ((st = check_window(o, in, out, err)) || (st = check_act(o, err))) return st;
        if (in->c != out->c)
            return rg_fail(err, RG_ERR_FORMAT, "pool: %d input channels, %d output channels", (int)in->c,
                           (int)out->c);
        return RG_OK;
    case RG_RT_GAP: {
        if (out->h != 1 || out->w != 1 || out->c != in->c)
            return rg_fail(err, RG_ERR_FORMAT, "gap: output %dx%dx%d, expected 1x1x%d", (int)out->h, (int)out->w,
                           (int)out->c, (int)in->c);
        rg_q_gap_params p = {.batch = 1, .h = in->h, .w = in->w, .c = in->c, .in_zp = in->q.zero_point,
                             .out_zp = out->q.zero_point, .multiplier = o->gap_multiplier, .shift = o->gap_shift,
                             .act_min = o->act_min, .act_max = o->act_max};
        return rg_qk_check_gap(&p, err);
    }
    case RG_RT_CLAMP:
        if (in->h != out->h || in->w != out->w || in->c != out->c)
            return rg_fail(err, RG_ERR_FORMAT, "clamp: input and output shapes differ");
        return check_act(o, err);
    default: break;
    }
    return rg_fail(err, RG_ERR_FORMAT, "kind %d unknown", (int)o->kind);
}

rg_status rg_rgm_check(const rg_rgm *m, rg_error *err)
{
    if (m->n_tensors < 1 || m->n_tensors > 65536)
        return rg_fail(err, RG_ERR_FORMAT, "n_tensors %d outside [1, 65536]", (int)m->n_tensors);
    if (m->n_ops < 1 || m->n_ops > 65536)
        return rg_fail(err, RG_ERR_FORMAT, "n_ops %d outside [1, 65536]", (int)m->n_ops);
    if (m->input < 0 || m->input >= m->n_tensors)
        return rg_fail(err, RG_ERR_FORMAT, "input tensor %d outside [0, %d)", (int)m->input, (int)m->n_tensors);
    if (m->output < 0 || m->output >= m->n_tensors || m->output == m->input)
        return rg_fail(err, RG_ERR_FORMAT, "output tensor %d outside [0, %d) or the input", (int)m->output,
                       (int)m->n_tensors);
    if (!isfinite(m->mean) || !isfinite(m->std) || !(m->std > 0))
        return rg_fail(err, RG_ERR_FORMAT, "normalization mean %g / std %g: need finite values, std > 0",
                       (double)m->mean, (double)m->std);
    rg_status st;
    for (int32_t t = 0; t < m->n_tensors; t++)
        if ((st = check_tensor(&m->tensors[t], t, err))) return st;
    /* every tensor written once, by one op, before any op reads it */
    uint8_t *defined = calloc((size_t)m->n_tensors, 1);
    if (!defined) return rg_fail(err, RG_ERR_NOMEM, "out of memory checking the model");
    defined[m->input] = 1;
    st = RG_OK;
    for (int32_t i = 0; i < m->n_ops && !st; i++) {
        const rg_rgm_op *o = &m->ops[i];
        if ((unsigned)o->kind >= RG_RT_N_KINDS) {
            st = rg_fail(err, RG_ERR_FORMAT, "op %d: kind %d unknown", (int)i, (int)o->kind);
            break;
        }
        int32_t n_in = o->kind == RG_RT_ADD ? 2 : 1;
        for (int k = 0; k < 2 && !st; k++) {
            int32_t t = o->in[k];
            if (k >= n_in) {
                if (t != -1) st = rg_fail(err, RG_ERR_FORMAT, "op %d (%s): in[1] = %d, must be -1", (int)i, o->name, (int)t);
            } else if (t < 0 || t >= m->n_tensors) {
                st = rg_fail(err, RG_ERR_FORMAT, "op %d (%s): in[%d] = %d outside [0, %d)", (int)i, o->name, k, (int)t,
                             (int)m->n_tensors);
            } else if (!defined[t]) {
                st = rg_fail(err, RG_ERR_FORMAT, "op %d (%s): in[%d] = tensor %d read before it is written", (int)i,
                             o->name, k, (int)t);
            }
        }
        if (st) break;
        if (o->out < 0 || o->out >= m->n_tensors) {
            st = rg_fail(err, RG_ERR_FORMAT, "op %d (%s): out = %d outside [0, %d)", (int)i, o->name, (int)o->out,
                         (int)m->n_tensors);
            break;
        }
        if (defined[o->out]) {
            st = rg_fail(err, RG_ERR_FORMAT, "op %d (%s): out = tensor %d is written twice", (int)i, o->name,
                         (int)o->out);
            break;
        }
        defined[o->out] = 1;
        if ((st = check_op(m, o, err))) {
            /* the kernels' own checks say RG_ERR_ARG: here it is the model that is malformed */
            if (st != RG_ERR_NOMEM) st = RG_ERR_FORMAT;
            if (err) err->code = st;
            rg_error_prefix(err, "op %d (%s)", (int)i, o->name);
        }
    }
    if (!st && !defined[m->output])
        st = rg_fail(err, RG_ERR_FORMAT, "output tensor %d is never written", (int)m->output);
    free(defined);
    return st;
}

size_t rg_rgm_param_bytes(const rg_rgm *m)
{
    size_t total = 0;
    for (int32_t i = 0; i < m->n_ops; i++) {
        const rg_rgm_op *o = &m->ops[i];
        const rg_rgm_tensor *in = &m->tensors[o->in[0]];
        size_t w = 0;
        switch (o->kind) {
        case RG_RT_CONV: w = (size_t)o->out_c * o->k_h * o->k_w * in->c; break;
        case RG_RT_DEPTHWISE: w = (size_t)o->out_c * o->k_h * o->k_w; break;
        case RG_RT_FC: w = (size_t)elems(in) * o->out_c; break;
        default: continue;
        }
        total += w + (size_t)o->out_c * 4 * (o->bias ? 3 : 2);
    }
    return total;
}

int64_t rg_rgm_op_macs(const rg_rgm *m, int32_t i)
{
    const rg_rgm_op *o = &m->ops[i];
    const rg_rgm_tensor *in = &m->tensors[o->in[0]], *out = &m->tensors[o->out];
    switch (o->kind) {
    case RG_RT_CONV: return elems(out) * o->k_h * o->k_w * in->c;
    case RG_RT_DEPTHWISE: return elems(out) * o->k_h * o->k_w;
    case RG_RT_FC: return elems(in) * o->out_c;
    default: return 0;
    }
}
