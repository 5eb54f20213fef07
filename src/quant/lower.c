/* Lowering a float graph to an int8 model (contract in
 * include/regain/quant_model.h).
 *
 * Passes:
 *   1. structure: walk the nodes in order; a convolution absorbs the batch
 *      norm and the ReLU/ReLU6 that are its sole readers; every op output
 *      becomes an int8 tensor, observed unless its parameters are inherited
 *      (pools, clamps keep their input's) or aliased (dropout);
 *   2. float weights: each weight op gets its folded float weights and bias
 *      (fw, fb): the float model that the int8 one approximates;
 *   3. optional cross-layer equalization of fw/fb (equalize.c);
 *   4. calibration: run the float model over the images and feed each
 *      observed tensor to its observer;
 *   5. parameters: ranges to (scale, zero point); optional AdaRound
 *      (adaround.c) and bias correction (bias_correct.c); weights per channel or per tensor, biases at
 *      s_in * s_w, multipliers, clamps; the arena planned by liveness.
 */
#include "regain/quant_model.h"
#include "graph/fuse.h"
#include "ops/conv.h"
#include "regain/adaround.h"
#include "regain/bias_correct.h"
#include "regain/equalize.h"

#include <float.h>
#include <math.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

rg_lower_config rg_lower_default(void)
{
    rg_lower_config c = {.observer = rg_obs_default(RG_OBS_MINMAX), .per_channel = 1, .batch = 32,
                         .equalize_iters = 8};
    return c;
}

const char *rg_qop_kind_name(rg_qop_kind kind)
{
    static const char *const names[] = {"conv", "depthwise", "fc", "add", "avgpool", "maxpool", "gap", "clamp",
                                        "concat", "split", "shuffle", "mul", "lut"};
    return (unsigned)kind < sizeof names / sizeof names[0] ? names[kind] : "?";
}

void rg_qmodel_free(rg_qmodel *m)
{
    if (!m) return;
    for (int32_t i = 0; i < m->n_ops; i++) {
        rg_qop *o = &m->ops[i];
        free(o->weights);
        free(o->bias);
        free(o->w_scales);
        free(o->multipliers);
        free(o->shifts);
        free(o->scales);
        free(o->fw);
        free(o->fb);
        free(o->clip);
        free(o->act_max_c);
    }
    free(m->ops);
    free(m->tensors);
    free(m);
}

/* ---- pass 1: structure ---- */

typedef struct {
    rg_qmodel *m;
    int32_t *tensor_of;   /* [n_values]: tensor id of a float value, -1 if none */
    int32_t *inherit;     /* [tensors]: tensor whose parameters it copies, -1: observed */
    int32_t *fused;       /* [n_ops]: (bn node, act node) per op, or -1 */
    int32_t cap_t, cap_o;
    const rg_graph *g;
} builder;

static rg_status add_tensor(builder *b, int32_t value, int32_t inherit, int32_t *id, rg_error *err)
{
    rg_qmodel *m = b->m;
    if (m->n_tensors == b->cap_t) {
        int32_t cap = b->cap_t ? 2 * b->cap_t : 32;
        rg_qtensor *t = realloc(m->tensors, sizeof *t * (size_t)cap);
        int32_t *in = realloc(b->inherit, sizeof *in * (size_t)cap);
        if (t) m->tensors = t;
        if (in) b->inherit = in;
        if (!t || !in) return rg_fail(err, RG_ERR_NOMEM, "lower: out of memory");
        b->cap_t = cap;
    }
    const rg_shape s = b->g->values[value].shape;
    rg_qtensor *t = &m->tensors[m->n_tensors];
    memset(t, 0, sizeof *t);
    t->h = s.h;
    t->w = s.w;
    t->c = s.c;
    t->value = value;
    b->inherit[m->n_tensors] = inherit;
    b->tensor_of[value] = m->n_tensors;
    *id = m->n_tensors++;
    return RG_OK;
}

static rg_status add_op(builder *b, rg_qop_kind kind, const rg_node *n, rg_qop **op, rg_error *err)
{
    rg_qmodel *m = b->m;
    if (m->n_ops == b->cap_o) {
        int32_t cap = b->cap_o ? 2 * b->cap_o : 32;
        rg_qop *o = realloc(m->ops, sizeof *o * (size_t)cap);
        int32_t *f = realloc(b->fused, sizeof *f * 2 * (size_t)cap);
        if (o) m->ops = o;
        if (f) b->fused = f;
        if (!o || !f) return rg_fail(err, RG_ERR_NOMEM, "lower: out of memory");
        b->cap_o = cap;
    }
    rg_qop *o = &m->ops[m->n_ops];
    memset(o, 0, sizeof *o);
    o->kind = kind;
    snprintf(o->name, sizeof o->name, "%s", n->name);
    for (int k = 0; k < RG_MAX_INPUTS; k++) o->in[k] = -1;
    o->out = -1;
    o->n_in = 1;
    o->f_lo = -INFINITY;
    o->f_hi = INFINITY;
    o->act_min = RG_Q_ACT_MIN;
    o->act_max = RG_Q_ACT_MAX;
    b->fused[2 * m->n_ops] = b->fused[2 * m->n_ops + 1] = -1;
    m->n_ops++;
    *op = o;
    return RG_OK;
}

static rg_status input_tensor(builder *b, const rg_node *n, int32_t k, int32_t *t, rg_error *err)
{
    *t = b->tensor_of[n->in[k]];
    if (*t < 0) return rg_fail(err, RG_ERR_UNSUPPORTED, "lower: node %s reads a value with no int8 tensor", n->name);
    return RG_OK;
}

static rg_status build(builder *b, rg_error *err)
{
    const rg_graph *g = b->g;
    int32_t t;
    rg_status st = add_tensor(b, g->input, -1, &t, err);
    if (st) return st;
    b->m->input = t;
    uint8_t *done = calloc((size_t)g->n_nodes, 1);
    if (!done) return rg_fail(err, RG_ERR_NOMEM, "lower: out of memory");
    for (int32_t i = 1; i < g->n_nodes && !st; i++) {
        if (done[i]) continue;
        const rg_node *n = &g->nodes[i];
        rg_qop *o = NULL;
        int32_t last = i; /* the node whose output the op writes */
        switch (n->op) {
        case RG_OP_CONV: {
            int dw = rg_conv_is_depthwise(g, n);
            if (n->a.conv.groups != 1 && !dw) {
                st = rg_fail(err, RG_ERR_UNSUPPORTED, "lower: %s: grouped convolution (groups %d)", n->name,
                             (int)n->a.conv.groups);
                break;
            }
            if ((st = add_op(b, dw ? RG_QOP_DEPTHWISE : RG_QOP_CONV, n, &o, err))) break;
            int32_t idx = b->m->n_ops - 1;
            int32_t r = rg_graph_sole_reader(g, n->out);
            if (r > 0 && g->nodes[r].op == RG_OP_BN) {
                b->fused[2 * idx] = r;
                done[r] = 1;
                last = r;
                r = rg_graph_sole_reader(g, g->nodes[r].out);
            }
            if (r > 0 && (g->nodes[r].op == RG_OP_RELU || g->nodes[r].op == RG_OP_RELU6)) {
                b->fused[2 * idx + 1] = r;
                done[r] = 1;
                last = r;
                o->f_lo = 0.0f;
                if (g->nodes[r].op == RG_OP_RELU6) o->f_hi = 6.0f;
            }
            o->k_h = n->a.conv.kh;
            o->k_w = n->a.conv.kw;
            o->stride = n->a.conv.stride;
            o->pad = n->a.conv.pad;
            o->out_c = n->a.conv.cout;
            if ((st = input_tensor(b, n, 0, &o->in[0], err))) break;
            st = add_tensor(b, g->nodes[last].out, -1, &o->out, err);
            break;
        }
        case RG_OP_LINEAR:
            if ((st = add_op(b, RG_QOP_FC, n, &o, err))) break;
            o->out_c = n->a.linear.out_features;
            if ((st = input_tensor(b, n, 0, &o->in[0], err))) break;
            st = add_tensor(b, n->out, -1, &o->out, err);
            break;
        case RG_OP_ADD:
            if ((st = add_op(b, RG_QOP_ADD, n, &o, err))) break;
            o->n_in = 2;
            if ((st = input_tensor(b, n, 0, &o->in[0], err)) || (st = input_tensor(b, n, 1, &o->in[1], err))) break;
            st = add_tensor(b, n->out, -1, &o->out, err);
            break;
        case RG_OP_CONCAT:
            if ((st = add_op(b, RG_QOP_CONCAT, n, &o, err))) break;
            o->n_in = n->n_in;
            for (int32_t k = 0; k < n->n_in && !st; k++) st = input_tensor(b, n, k, &o->in[k], err);
            if (!st) st = add_tensor(b, n->out, -1, &o->out, err);
            break;
        case RG_OP_RELU:
        case RG_OP_RELU6:
            if ((st = add_op(b, RG_QOP_CLAMP, n, &o, err))) break;
            b->fused[2 * (b->m->n_ops - 1) + 1] = i;
            o->f_lo = 0.0f;
            if (n->op == RG_OP_RELU6) o->f_hi = 6.0f;
            if ((st = input_tensor(b, n, 0, &o->in[0], err))) break;
            st = add_tensor(b, n->out, o->in[0], &o->out, err);
            break;
        case RG_OP_MAXPOOL:
        case RG_OP_AVGPOOL:
            if ((st = add_op(b, n->op == RG_OP_MAXPOOL ? RG_QOP_MAXPOOL : RG_QOP_AVGPOOL, n, &o, err))) break;
            o->k_h = o->k_w = n->a.pool.k;
            o->stride = n->a.pool.stride;
            o->pad = n->a.pool.pad;
            if ((st = input_tensor(b, n, 0, &o->in[0], err))) break;
            st = add_tensor(b, n->out, o->in[0], &o->out, err);
            break;
        case RG_OP_GAP:
            if ((st = add_op(b, RG_QOP_GAP, n, &o, err))) break;
            if ((st = input_tensor(b, n, 0, &o->in[0], err))) break;
            st = add_tensor(b, n->out, -1, &o->out, err);
            break;
        case RG_OP_DROPOUT: /* identity at inference: the same tensor */
            b->tensor_of[n->out] = b->tensor_of[n->in[0]];
            break;
        default:
            st = rg_fail(err, RG_ERR_UNSUPPORTED, "lower: %s: op %s has no int8 lowering yet", n->name,
                         rg_op_name(n->op));
        }
    }
    free(done);
    if (st) return st;
    b->m->output = b->tensor_of[g->output];
    if (b->m->output < 0) return rg_fail(err, RG_ERR_UNSUPPORTED, "lower: the graph's output has no int8 tensor");
    return RG_OK;
}

/* ---- pass 2: float weights ---- */

static const float *param(const rg_graph *g, int32_t id)
{
    return id >= 0 ? g->param_data + g->params[id].offset : NULL;
}

size_t rg_qmodel_weight_count(const rg_qmodel *m, int32_t op)
{
    const rg_qop *o = &m->ops[op];
    const rg_qtensor *in = &m->tensors[o->in[0]];
    switch (o->kind) {
    case RG_QOP_CONV: return (size_t)o->out_c * o->k_h * o->k_w * in->c;
    case RG_QOP_DEPTHWISE: return (size_t)o->out_c * o->k_h * o->k_w;
    case RG_QOP_FC: return (size_t)o->out_c * in->h * in->w * in->c;
    default: return 0;
    }
}

/* fw, fb of a weight op: the node's parameters with its batch norm folded
 * exactly as the float inference plan folds it. */
static rg_status float_weights(const rg_graph *g, rg_qmodel *m, int32_t i, int32_t bn, rg_error *err)
{
    rg_qop *o = &m->ops[i];
    const rg_node *n = &g->nodes[rg_graph_find_node(g, o->name)];
    size_t count = rg_qmodel_weight_count(m, i);
    if ((size_t)g->params[n->param[0]].count != count)
        return rg_fail(err, RG_ERR_UNSUPPORTED, "lower: %s: weight has %zu floats, expected %zu", o->name,
                       (size_t)g->params[n->param[0]].count, count);
    o->fw = rg_malloc(sizeof(float) * count, err);
    o->fb = rg_calloc((size_t)o->out_c, sizeof(float), err);
    if (!o->fw || !o->fb) return RG_ERR_NOMEM;
    const float *w = param(g, n->param[0]), *bias = param(g, n->param[1]);
    float *folded = NULL;
    if (bn >= 0) {
        rg_node copy = *n;
        copy.fuse_next = bn;
        folded = rg_malloc(sizeof(float) * rg_conv_folded_floats(g, &copy), err);
        if (!folded) return RG_ERR_NOMEM;
        rg_conv_fold(g, &copy, folded);
        w = folded;
        bias = folded + count;
    }
    memcpy(o->fw, w, sizeof(float) * count);
    if (bias) memcpy(o->fb, bias, sizeof(float) * (size_t)o->out_c);
    free(folded);
    return RG_OK;
}

/* ---- calibration ---- */

static void progress(const rg_lower_config *cfg, const char *stage, int32_t done, int32_t total)
{
    if (cfg->progress) cfg->progress(cfg->progress_user, stage, done, total);
}

static rg_status calibrate(builder *b, const float *calib, int32_t n_calib, const rg_lower_config *cfg,
                           rg_observer **obs, rg_error *err)
{
    rg_qmodel *m = b->m;
    rg_status st;
    /* The network's input keeps its whole range (min/max), whatever the
     * observer: its range is the data's, known and bounded, and a clipping
     * observer on images with a large uniform background clips the objects
     * (the entropy observer did, on Fashion-MNIST: -33 points). */
    const rg_obs_config input_obs = rg_obs_default(RG_OBS_MINMAX);
    for (int32_t t = 0; t < m->n_tensors; t++) {
        if (b->inherit[t] >= 0) continue;
        if ((st = rg_obs_create(t == m->input ? &input_obs : &cfg->observer, &obs[t], err))) return st;
    }
    const rg_qtensor *ti = &m->tensors[m->input];
    size_t image = (size_t)ti->h * ti->w * ti->c;
    float *farena = rg_malloc(sizeof(float) * rg_qmodel_float_arena_floats(m, cfg->batch), err);
    if (!farena) return RG_ERR_NOMEM;
    st = RG_OK;
    for (int32_t at = 0; at < n_calib && !st; at += cfg->batch) {
        int32_t nb = n_calib - at < cfg->batch ? n_calib - at : cfg->batch;
        if ((st = rg_qmodel_run_ref(m, farena, calib + (size_t)at * image, nb, err))) break;
        for (int32_t t = 0; t < m->n_tensors && !st; t++) {
            if (!obs[t]) continue;
            const rg_qtensor *q = &m->tensors[t];
            size_t count = (size_t)nb * q->h * q->w * q->c;
            if ((st = rg_obs_observe(obs[t], rg_qmodel_ftensor(m, farena, nb, t), count, err)))
                st = rg_error_prefix(err, "lower: calibrating value %d", (int)q->value);
        }
        progress(cfg, "calibrate", at + nb, n_calib);
    }
    free(farena);
    return st;
}

/* ---- parameters ---- */

rg_status rg_qmodel_dequantized_weights(const rg_qmodel *m, int32_t op, float *out, rg_error *err)
{
    const rg_qop *o = &m->ops[op];
    size_t count = rg_qmodel_weight_count(m, op);
    if (!count || !o->fw) return rg_fail(err, RG_ERR_ARG, "qmodel: %s has no weights", o->name);
    size_t per = count / (size_t)o->out_c;
    int8_t *q = rg_malloc(count, err);
    float *scales = rg_malloc(sizeof(float) * (size_t)o->out_c, err);
    rg_status st = q && scales ? RG_OK : RG_ERR_NOMEM;
    if (!st) st = rg_q_quantize_weights(o->fw, o->out_c, per, m->per_channel, q, scales, err);
    if (!st)
        for (int32_t c = 0; c < o->out_c; c++) {
            float s = scales[m->per_channel ? c : 0];
            for (size_t k = 0; k < per; k++) out[(size_t)c * per + k] = s * (float)q[(size_t)c * per + k];
        }
    free(q);
    free(scales);
    return st;
}

/* o's fp32 scales from its tensors and weight scales (rg_qmodel_use_fp32) */
static rg_status op_scales(const rg_qmodel *m, rg_qop *o, rg_error *err)
{
    if (!o->scales && !(o->scales = rg_malloc(sizeof(float) * (size_t)o->out_c, err))) return RG_ERR_NOMEM;
    double s_in = m->tensors[o->in[0]].q.scale, s_out = m->tensors[o->out].q.scale;
    for (int32_t c = 0; c < o->out_c; c++) {
        double v = s_in * (double)o->w_scales[c] / s_out;
        if (!isfinite(v) || v < 0.0 || v > FLT_MAX)
            return rg_fail(err, RG_ERR_ARG, "%s: fp32 requantization scale %g of channel %d is not a finite float >= 0",
                           o->name, v, (int)c);
        o->scales[c] = (float)v;
    }
    return RG_OK;
}

/* an add's fp32 scales: each input's scale over the output's */
static void add_scales(const rg_qmodel *m, rg_qop *o)
{
    double s_out = m->tensors[o->out].q.scale;
    o->add.in1_scale = (float)(m->tensors[o->in[0]].q.scale / s_out);
    o->add.in2_scale = (float)(m->tensors[o->in[1]].q.scale / s_out);
}

rg_status rg_qmodel_use_fp32(rg_qmodel *m, rg_error *err)
{
    m->requant_fp32 = 1;
    for (int32_t i = 0; i < m->n_ops; i++) {
        rg_qop *o = &m->ops[i];
        if (o->kind == RG_QOP_ADD) add_scales(m, o);
        if (o->kind != RG_QOP_CONV && o->kind != RG_QOP_DEPTHWISE && o->kind != RG_QOP_FC) continue;
        if (!o->w_scales) return rg_fail(err, RG_ERR_ARG, "%s: no weight scales (not a lowered layer)", o->name);
        rg_status st = op_scales(m, o, err);
        if (st) return st;
    }
    return RG_OK;
}

rg_status rg_qmodel_requantize_op(rg_qmodel *m, int32_t i, rg_error *err)
{
    rg_qop *o = &m->ops[i];
    const rg_qtensor *in = &m->tensors[o->in[0]], *out = &m->tensors[o->out];
    rg_status st = RG_OK;
    rg_q_activation act = o->f_lo == 0.0f ? (o->f_hi == 6.0f ? RG_Q_ACT_RELU6 : RG_Q_ACT_RELU) : RG_Q_ACT_NONE;
    switch (o->kind) {
    case RG_QOP_CONV:
    case RG_QOP_DEPTHWISE:
    case RG_QOP_FC: {
        int32_t cout = o->out_c;
        size_t count = rg_qmodel_weight_count(m, i), per = count / (size_t)cout;
        if (!o->weights) {
            o->weights = rg_malloc(count, err);
            o->bias = rg_calloc((size_t)cout, sizeof(int32_t), err);
            o->w_scales = rg_malloc(sizeof(float) * (size_t)cout, err);
            o->multipliers = rg_malloc(sizeof(int32_t) * (size_t)cout, err);
            o->shifts = rg_malloc(sizeof(int32_t) * (size_t)cout, err);
            if (!o->weights || !o->bias || !o->w_scales || !o->multipliers || !o->shifts) return RG_ERR_NOMEM;
        }
        st = rg_q_quantize_weights(o->fw, cout, per, m->per_channel, o->weights, o->w_scales, err);
        if (!st && !m->per_channel)
            for (int32_t c = 1; c < cout; c++) o->w_scales[c] = o->w_scales[0];
        if (!st) st = rg_q_quantize_bias(o->fb, cout, in->q.scale, o->w_scales, 1, o->bias, NULL, err);
        if (!st)
            st = rg_q_requant_params(in->q.scale, o->w_scales, cout, out->q.scale, cout, o->multipliers, o->shifts,
                                     err);
        if (!st && m->requant_fp32) st = op_scales(m, o, err);
        if (!st) st = rg_q_activation_range(act, out->q, &o->act_min, &o->act_max, err);
        if (!st && o->clip) {
            /* the per-channel upper clamp of an equalized ReLU6 layer (see
             * docs/quantization.md, "ReLU6-safe equalization") */
            if (!o->act_max_c && !(o->act_max_c = rg_malloc(sizeof(int32_t) * (size_t)cout, err)))
                return RG_ERR_NOMEM;
            for (int32_t c = 0; c < cout; c++) {
                double q = (double)out->q.zero_point + round((double)o->clip[c] / out->q.scale);
                o->act_max_c[c] = q > o->act_max ? o->act_max : q < o->act_min ? o->act_min : (int32_t)q;
            }
        }
        break;
    }
    case RG_QOP_ADD:
        st = rg_q_add_prepare(in->q, m->tensors[o->in[1]].q, out->q, RG_Q_ACT_NONE, &o->add, err);
        if (!st && m->requant_fp32) add_scales(m, o);
        break;
    case RG_QOP_CONCAT:
        for (int32_t k = 0; k < o->n_in && !st; k++)
            st = rg_q_multiplier((double)m->tensors[o->in[k]].q.scale / out->q.scale, &o->cat_multipliers[k],
                                 &o->cat_shifts[k], err);
        break;
    case RG_QOP_CLAMP:
        st = rg_q_activation_range(act, out->q, &o->act_min, &o->act_max, err);
        break;
    case RG_QOP_GAP:
        st = rg_q_gap_prepare(1, in->h, in->w, in->c, in->q, out->q, &o->gap, err);
        break;
    case RG_QOP_AVGPOOL:
    case RG_QOP_MAXPOOL: break;
    case RG_QOP_SPLIT:
    case RG_QOP_SHUFFLE:
        /* data movement: the output is the input's values, bit for bit */
        if (out->q.scale != in->q.scale || out->q.zero_point != in->q.zero_point)
            st = rg_fail(err, RG_ERR_ARG, "%s: output parameters must equal the input's",
                         rg_qop_kind_name(o->kind));
        break;
    case RG_QOP_MUL:
        st = rg_q_mul_prepare(in->q, m->tensors[o->in[1]].q, out->q, RG_Q_ACT_NONE, &o->mul, err);
        break;
    case RG_QOP_LUT:
        st = rg_q_lut_build(o->lut_fn, in->q, out->q, o->lut, err);
        break;
    }
    if (st) return rg_error_prefix(err, "lower: %s", o->name);
    return RG_OK;
}

static rg_status tensor_params(builder *b, rg_observer **obs, rg_error *err)
{
    rg_qmodel *m = b->m;
    rg_status st;
    for (int32_t t = 0; t < m->n_tensors; t++) {
        if (b->inherit[t] >= 0) {
            m->tensors[t].q = m->tensors[b->inherit[t]].q;
            continue;
        }
        float lo, hi;
        if ((st = rg_obs_range(obs[t], &lo, &hi, err)) ||
            (st = rg_q_params_from_range(lo, hi, RG_Q_ACT_MIN, RG_Q_ACT_MAX, &m->tensors[t].q, err)))
            return rg_error_prefix(err, "lower: value %d", (int)m->tensors[t].value);
    }
    return RG_OK;
}

rg_status rg_quant_lower(rg_graph *g, const float *calib, int32_t n_calib, const rg_lower_config *cfg,
                         rg_qmodel **out, rg_error *err)
{
    *out = NULL;
    if (n_calib < 1) return rg_fail(err, RG_ERR_ARG, "lower: n_calib %d must be >= 1", (int)n_calib);
    if (cfg->batch < 1) return rg_fail(err, RG_ERR_ARG, "lower: batch %d must be >= 1", (int)cfg->batch);
    if (cfg->equalize && cfg->equalize_iters < 1)
        return rg_fail(err, RG_ERR_ARG, "lower: equalize_iters %d must be >= 1", (int)cfg->equalize_iters);
    builder b = {.g = g};
    b.m = rg_calloc(1, sizeof *b.m, err);
    b.tensor_of = rg_malloc(sizeof(int32_t) * (size_t)g->n_values, err);
    if (!b.m || !b.tensor_of) {
        free(b.m);
        free(b.tensor_of);
        return RG_ERR_NOMEM;
    }
    b.m->per_channel = cfg->per_channel != 0;
    for (int32_t v = 0; v < g->n_values; v++) b.tensor_of[v] = -1;
    rg_observer **obs = NULL;
    /* the graph keeps every value (callers compare inner values with the
     * int8 tensors), as before */
    rg_status st = rg_graph_plan(g, cfg->batch, RG_PLAN_TRAIN, err);
    if (!st) st = build(&b, err);
    rg_qmodel *m = b.m;
    if (!st) {
        size_t off = 0;
        for (int32_t t = 0; t < m->n_tensors; t++) {
            m->tensors[t].foffset = off;
            off += (size_t)m->tensors[t].h * m->tensors[t].w * m->tensors[t].c;
        }
        m->image_floats = off;
    }
    for (int32_t i = 0; i < m->n_ops && !st; i++)
        if (m->ops[i].kind == RG_QOP_CONV || m->ops[i].kind == RG_QOP_DEPTHWISE || m->ops[i].kind == RG_QOP_FC)
            st = float_weights(g, m, i, b.fused[2 * i], err);
    if (!st && cfg->equalize) st = rg_quant_equalize(m, cfg->equalize_iters, NULL, err);
    if (!st) {
        obs = rg_calloc((size_t)m->n_tensors, sizeof *obs, err);
        st = obs ? calibrate(&b, calib, n_calib, cfg, obs, err) : RG_ERR_NOMEM;
    }
    if (!st) st = tensor_params(&b, obs, err);
    if (!st && cfg->adaround) {
        rg_adaround_config ac = rg_adaround_default();
        ac.progress = cfg->progress;
        ac.progress_user = cfg->progress_user;
        st = rg_quant_adaround(m, calib, n_calib, &ac, err);
    }
    if (!st && cfg->bias_correct) {
        rg_bias_correct_config bc = {.batch = cfg->batch, .progress = cfg->progress, .progress_user = cfg->progress_user};
        st = rg_quant_bias_correct(m, calib, n_calib, &bc, err);
    }
    for (int32_t i = 0; i < m->n_ops && !st; i++) st = rg_qmodel_requantize_op(m, i, err);
    if (!st) rg_qmodel_plan_arena(m, cfg->all_tensors);
    if (obs)
        for (int32_t t = 0; t < m->n_tensors; t++) rg_obs_free(obs[t]);
    free(obs);
    free(b.tensor_of);
    free(b.inherit);
    free(b.fused);
    if (st) {
        rg_qmodel_free(m);
        return st;
    }
    *out = m;
    return RG_OK;
}
