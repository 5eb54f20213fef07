/* Validation of an int8 model (regain/rt.h): everything the runtime relies
 * on, checked once, so that a model that passes cannot make a kernel read or
 * write out of bounds. Used by the loader (after the file layout checks) and
 * by the writer (a model that would not load is never written). */
#include "regain/rt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt/kernels/qk.h"

/* Bounds well above any edge model, low enough that no size product below
 * overflows 64 bits (or, per image, 32). */
#define MAX_DIM 32768
#define MAX_ELEMS ((int64_t)1 << 26)
#define MAX_KERNEL 32
#define MAX_STRIDE 16

static const char *kind_names[RG_RT_N_KINDS] = {"conv", "depthwise", "fc",      "add", "avgpool", "maxpool", "gap",
                                                 "clamp", "concat",    "split",   "shuffle", "mul", "lut"};

const char *rg_rt_kind_name(rg_rt_kind k)
{
    return (unsigned)k < RG_RT_N_KINDS ? kind_names[k] : "?";
}

const char *rg_rgm_requant_name(const rg_rgm *m)
{
    for (int32_t i = 0; i < m->n_ops; i++)
        if (m->ops[i].scales || m->ops[i].add.in1_scale > 0.0f) return "fp32";
    return "fixed";
}

int32_t rg_rgm_op_n_in(const rg_rgm_op *o)
{
    switch (o->kind) {
    case RG_RT_ADD:
    case RG_RT_MUL: return 2;
    /* clamped so that a loop over the inputs stays inside in[] even before
     * rg_rgm_check has rejected a bad count */
    case RG_RT_CONCAT: return o->n_in < 1 ? 1 : o->n_in > RG_RGM_MAX_IN ? RG_RGM_MAX_IN : o->n_in;
    default: return 1;
    }
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
    for (int32_t c = 0; o->scales && c < n; c++)
        if (!rg_q_scale_valid(o->scales[c]))
            return rg_fail(err, RG_ERR_FORMAT, "scales[%d] = %g must be finite and >= 0", (int)c, (double)o->scales[c]);
    for (int32_t c = 0; c < n; c++) {
        if (o->multipliers[c] < 0)
            return rg_fail(err, RG_ERR_FORMAT, "multipliers[%d] = %d is negative", (int)c, (int)o->multipliers[c]);
        if (o->shifts[c] < -31 || o->shifts[c] > 30)
            return rg_fail(err, RG_ERR_FORMAT, "shifts[%d] = %d outside [-31, 30]", (int)c, (int)o->shifts[c]);
    }
    return RG_OK;
}

/* the per-channel clamp (conv, depthwise, fc): within the op's own range */
static rg_status check_act_c(const rg_rgm_op *o, rg_error *err)
{
    if (!o->act_max_c) return RG_OK;
    for (int32_t c = 0; c < o->out_c; c++)
        if (o->act_max_c[c] < o->act_min || o->act_max_c[c] > o->act_max)
            return rg_fail(err, RG_ERR_FORMAT, "act_max_c[%d] = %d outside [act_min %d, act_max %d]", (int)c,
                           (int)o->act_max_c[c], (int)o->act_min, (int)o->act_max);
    return RG_OK;
}

static int same_params(const rg_rgm_tensor *a, const rg_rgm_tensor *b)
{
    return a->q.scale == b->q.scale && a->q.zero_point == b->q.zero_point;
}

static rg_status check_same_hw(const char *what, const rg_rgm_tensor *in, const rg_rgm_tensor *out, rg_error *err)
{
    if (in->h != out->h || in->w != out->w)
        return rg_fail(err, RG_ERR_FORMAT, "%s: input %dx%d, output %dx%d (must match)", what, (int)in->h, (int)in->w,
                       (int)out->h, (int)out->w);
    return RG_OK;
}

static rg_status check_multiplier(const char *field, int32_t m, int32_t s, rg_error *err)
{
    if (m < 0) return rg_fail(err, RG_ERR_FORMAT, "%s_multiplier %d is negative", field, (int)m);
    if (s < -31 || s > 30) return rg_fail(err, RG_ERR_FORMAT, "%s_shift %d outside [-31, 30]", field, (int)s);
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

/* The version 2 fields of the kinds that do not use them are zero, so that
 * a file has one encoding of a model (and a stray value is not ignored). */
static rg_status check_unused(const rg_rgm_op *o, rg_error *err)
{
    const char *kind = rg_rt_kind_name(o->kind);
    for (int32_t k = o->kind == RG_RT_CONCAT ? o->n_in : 0; k < RG_RGM_MAX_IN; k++)
        if (o->cat_multipliers[k] || o->cat_shifts[k])
            return rg_fail(err, RG_ERR_FORMAT, "cat[%d] multiplier / shift set for a %s op without that input", (int)k,
                           kind);
    if (o->kind != RG_RT_ADD && (o->add.in1_scale != 0.0f || o->add.in2_scale != 0.0f))
        return rg_fail(err, RG_ERR_FORMAT, "add in1_scale / in2_scale set for a %s op (add only)", kind);
    if (o->kind != RG_RT_SPLIT && o->ch_begin)
        return rg_fail(err, RG_ERR_FORMAT, "ch_begin %d set for a %s op (split only)", (int)o->ch_begin, kind);
    if (o->kind != RG_RT_SHUFFLE && o->groups)
        return rg_fail(err, RG_ERR_FORMAT, "groups %d set for a %s op (shuffle only)", (int)o->groups, kind);
    if (o->kind != RG_RT_MUL && (o->mul_multiplier || o->mul_shift))
        return rg_fail(err, RG_ERR_FORMAT, "mul_multiplier / mul_shift set for a %s op (mul only)", kind);
    if (o->kind != RG_RT_LUT && o->lut_fn)
        return rg_fail(err, RG_ERR_FORMAT, "lut_fn %d set for a %s op (lut only)", (int)o->lut_fn, kind);
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
        if ((st = check_requant(o, o->out_c, err))) return st;
        return check_act_c(o, err);
    case RG_RT_FC:
        if ((st = check_act(o, err))) return st;
        if (out->h != 1 || out->w != 1 || out->c != o->out_c)
            return rg_fail(err, RG_ERR_FORMAT, "fc: output %dx%dx%d, expected 1x1x%d (out_c)", (int)out->h,
                           (int)out->w, (int)out->c, (int)o->out_c);
        if (elems(in) * o->out_c > MAX_ELEMS) return rg_fail(err, RG_ERR_FORMAT, "fc: weights above 2^26 values");
        if ((st = check_requant(o, o->out_c, err))) return st;
        return check_act_c(o, err);
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
    case RG_RT_CONCAT: {
        int32_t c = 0;
        for (int32_t k = 0; k < o->n_in; k++) {
            const rg_rgm_tensor *t = &m->tensors[o->in[k]];
            char field[32];
            snprintf(field, sizeof field, "cat[%d]", (int)k);
            if ((st = check_same_hw("concat", t, out, err)) ||
                (st = check_multiplier(field, o->cat_multipliers[k], o->cat_shifts[k], err)))
                return st;
            c += t->c;
        }
        if (c != out->c)
            return rg_fail(err, RG_ERR_FORMAT, "concat: inputs have %d channels in all, the output %d", (int)c,
                           (int)out->c);
        return RG_OK;
    }
    case RG_RT_SPLIT:
        if ((st = check_same_hw("split", in, out, err))) return st;
        if (o->ch_begin < 0 || o->ch_begin > in->c - out->c)
            return rg_fail(err, RG_ERR_FORMAT, "split: ch_begin %d: channels [%d, %d) outside the input's %d",
                           (int)o->ch_begin, (int)o->ch_begin, (int)(o->ch_begin + out->c), (int)in->c);
        if (!same_params(in, out))
            return rg_fail(err, RG_ERR_FORMAT, "split: output scale / zero point differ from the input's");
        return RG_OK;
    case RG_RT_SHUFFLE:
        if ((st = check_same_hw("shuffle", in, out, err))) return st;
        if (in->c != out->c) return rg_fail(err, RG_ERR_FORMAT, "shuffle: input and output channels differ");
        if (o->groups < 1 || o->groups > in->c || in->c % o->groups)
            return rg_fail(err, RG_ERR_FORMAT, "shuffle: groups %d does not divide the %d channels", (int)o->groups,
                           (int)in->c);
        if (!same_params(in, out))
            return rg_fail(err, RG_ERR_FORMAT, "shuffle: output scale / zero point differ from the input's");
        return RG_OK;
    case RG_RT_MUL: {
        const rg_rgm_tensor *b = &m->tensors[o->in[1]];
        if (in->h != out->h || in->w != out->w || in->c != out->c || b->c != out->c ||
            !((b->h == 1 && b->w == 1) || (b->h == out->h && b->w == out->w)))
            return rg_fail(err, RG_ERR_FORMAT,
                           "mul: input shapes %dx%dx%d and %dx%dx%d, output %dx%dx%d (the second input is the "
                           "output's shape or 1x1xC)",
                           (int)in->h, (int)in->w, (int)in->c, (int)b->h, (int)b->w, (int)b->c, (int)out->h,
                           (int)out->w, (int)out->c);
        if ((st = check_multiplier("mul", o->mul_multiplier, o->mul_shift, err))) return st;
        return check_act(o, err);
    }
    case RG_RT_LUT:
        if (in->h != out->h || in->w != out->w || in->c != out->c)
            return rg_fail(err, RG_ERR_FORMAT, "lut: input and output shapes differ");
        if (o->lut_fn < 1 || o->lut_fn > RG_Q_LUT_FN_MAX)
            return rg_fail(err, RG_ERR_FORMAT, "lut_fn %d unknown (1 hswish, 2 sigmoid)", (int)o->lut_fn);
        if (!o->lut) return rg_fail(err, RG_ERR_FORMAT, "lut: the table is required");
        return RG_OK;
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
        if (o->kind == RG_RT_CONCAT && (o->n_in < 2 || o->n_in > RG_RGM_MAX_IN)) {
            st = rg_fail(err, RG_ERR_FORMAT, "op %d (%s): n_in %d outside [2, %d]", (int)i, o->name, (int)o->n_in,
                         RG_RGM_MAX_IN);
            break;
        }
        /* in[2], in[3] beyond a concat's inputs are not read (older code
         * fills only in[0], in[1]): only in[1] must say -1 when unused */
        int32_t n_in = rg_rgm_op_n_in(o);
        for (int k = 0; k < (n_in > 2 ? n_in : 2) && !st; k++) {
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
        if ((st = check_unused(o, err)) || (st = check_op(m, o, err))) {
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
        case RG_RT_LUT: total += 256; continue;
        default: continue;
        }
        /* requantization: the fp32 scales when there are (a deployment keeps only those), else
         * multipliers and shifts */
        total += w + (size_t)o->out_c * ((o->bias ? 4 : 0) + (o->scales ? 4 : 8)) +
                 (o->act_max_c ? (size_t)o->out_c * 4 : 0);
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
