/* Lowering a float graph to an int8 model (PROTOTYPE; contract in
 * include/regain/quant_model.h).
 *
 * Three passes:
 *   1. structure: walk the nodes in order; a convolution absorbs the batch
 *      norm and the ReLU/ReLU6 that are its sole readers; every op output
 *      becomes an int8 tensor, observed unless its parameters are inherited
 *      (pools, clamps keep their input's) or aliased (dropout);
 *   2. calibration: run the float graph (evaluation mode) over the images
 *      and feed each observed value to its observer;
 *   3. parameters: ranges to (scale, zero point), weights per channel,
 *      biases at s_in * s_w, multipliers, clamps.
 */
#include "regain/quant_model.h"
#include "ops/conv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

rg_lower_config rg_lower_default(void)
{
    rg_lower_config c = {.observer = rg_obs_default(RG_OBS_MINMAX), .per_channel = 1, .batch = 32};
    return c;
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

static int32_t sole_reader(const rg_graph *g, int32_t v)
{
    if (v == g->output) return -1;
    int32_t reader = -1;
    for (int32_t j = 1; j < g->n_nodes; j++)
        for (int32_t k = 0; k < g->nodes[j].n_in; k++)
            if (g->nodes[j].in[k] == v) {
                if (reader >= 0) return -1;
                reader = j;
            }
    return reader;
}

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
    o->in[0] = o->in[1] = o->out = -1;
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
            int32_t r = sole_reader(g, n->out);
            if (r > 0 && g->nodes[r].op == RG_OP_BN) {
                b->fused[2 * idx] = r;
                done[r] = 1;
                last = r;
                r = sole_reader(g, g->nodes[r].out);
            }
            if (r > 0 && (g->nodes[r].op == RG_OP_RELU || g->nodes[r].op == RG_OP_RELU6)) {
                b->fused[2 * idx + 1] = r;
                done[r] = 1;
                last = r;
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
            if ((st = input_tensor(b, n, 0, &o->in[0], err)) || (st = input_tensor(b, n, 1, &o->in[1], err))) break;
            st = add_tensor(b, n->out, -1, &o->out, err);
            break;
        case RG_OP_RELU:
        case RG_OP_RELU6:
            if ((st = add_op(b, RG_QOP_CLAMP, n, &o, err))) break;
            b->fused[2 * (b->m->n_ops - 1) + 1] = i;
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

/* ---- pass 2: calibration ---- */

static rg_status calibrate(builder *b, rg_graph *g, const float *calib, int32_t n_calib, const rg_lower_config *cfg,
                           rg_observer **obs, rg_error *err)
{
    rg_qmodel *m = b->m;
    rg_status st = rg_graph_plan(g, cfg->batch, RG_PLAN_TRAIN, err);
    if (st) return st;
    for (int32_t t = 0; t < m->n_tensors; t++) {
        if (b->inherit[t] >= 0) continue;
        if (!rg_graph_value_stored(g, m->tensors[t].value))
            return rg_fail(err, RG_ERR_UNSUPPORTED, "lower: value %d is not stored by the plan", (int)m->tensors[t].value);
        if ((st = rg_obs_create(&cfg->observer, &obs[t], err))) return st;
    }
    const rg_shape in = g->values[g->input].shape;
    size_t image = (size_t)in.h * in.w * in.c;
    rg_exec ctx = {.training = 0};
    for (int32_t at = 0; at < n_calib; at += cfg->batch) {
        int32_t nb = n_calib - at < cfg->batch ? n_calib - at : cfg->batch;
        if ((st = rg_graph_set_batch(g, nb, err))) return st;
        memcpy(rg_graph_input(g), calib + (size_t)at * image, sizeof(float) * image * (size_t)nb);
        rg_graph_forward(g, &ctx);
        for (int32_t t = 0; t < m->n_tensors; t++) {
            if (!obs[t]) continue;
            const rg_qtensor *q = &m->tensors[t];
            size_t count = (size_t)nb * q->h * q->w * q->c;
            if ((st = rg_obs_observe(obs[t], rg_graph_act(g, q->value), count, err)))
                return rg_error_prefix(err, "lower: calibrating value %d", (int)q->value);
        }
    }
    return RG_OK;
}

/* ---- pass 3: parameters ---- */

static const float *param(const rg_graph *g, int32_t id)
{
    return id >= 0 ? g->param_data + g->params[id].offset : NULL;
}

static rg_status weights_op(const rg_graph *g, rg_qop *o, const rg_node *n, int32_t bn, const rg_lower_config *cfg,
                            rg_qmodel *m, rg_error *err)
{
    int32_t cout = o->out_c;
    size_t per = (size_t)g->params[n->param[0]].count / (size_t)cout;
    float *folded = NULL;
    const float *w = param(g, n->param[0]), *bias = param(g, n->param[1]);
    if (bn >= 0) { /* the batch norm folded exactly as the float inference plan folds it */
        rg_node copy = *n;
        copy.fuse_next = bn;
        folded = rg_malloc(sizeof(float) * rg_conv_folded_floats(g, &copy), err);
        if (!folded) return RG_ERR_NOMEM;
        rg_conv_fold(g, &copy, folded);
        w = folded;
        bias = folded + per * (size_t)cout;
    }
    rg_status st = RG_OK;
    o->weights = rg_malloc(per * (size_t)cout, err);
    o->bias = rg_calloc((size_t)cout, sizeof(int32_t), err);
    o->w_scales = rg_malloc(sizeof(float) * (size_t)cout, err);
    o->multipliers = rg_malloc(sizeof(int32_t) * (size_t)cout, err);
    o->shifts = rg_malloc(sizeof(int32_t) * (size_t)cout, err);
    if (!o->weights || !o->bias || !o->w_scales || !o->multipliers || !o->shifts) st = RG_ERR_NOMEM;
    if (!st) st = rg_q_quantize_weights(w, cout, per, cfg->per_channel, o->weights, o->w_scales, err);
    if (!st && !cfg->per_channel)
        for (int32_t c = 1; c < cout; c++) o->w_scales[c] = o->w_scales[0];
    const rg_qparams in = m->tensors[o->in[0]].q, out = m->tensors[o->out].q;
    if (!st && bias) st = rg_q_quantize_bias(bias, cout, in.scale, o->w_scales, 1, o->bias, NULL, err);
    if (!st) st = rg_q_requant_params(in.scale, o->w_scales, cout, out.scale, cout, o->multipliers, o->shifts, err);
    free(folded);
    if (st) return rg_error_prefix(err, "lower: %s", o->name);
    return RG_OK;
}

static rg_q_activation act_of(const rg_graph *g, int32_t node)
{
    if (node < 0) return RG_Q_ACT_NONE;
    return g->nodes[node].op == RG_OP_RELU6 ? RG_Q_ACT_RELU6 : RG_Q_ACT_RELU;
}

static rg_status parameters(builder *b, const rg_graph *g, const rg_lower_config *cfg, rg_observer **obs,
                            rg_error *err)
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
    size_t off = 0;
    for (int32_t t = 0; t < m->n_tensors; t++) {
        m->tensors[t].offset = off;
        off += ((size_t)m->tensors[t].h * m->tensors[t].w * m->tensors[t].c + 63) & ~(size_t)63;
    }
    m->image_bytes = off;
    for (int32_t i = 0; i < m->n_ops; i++) {
        rg_qop *o = &m->ops[i];
        const rg_node *n = &g->nodes[rg_graph_find_node(g, o->name)];
        const rg_qtensor *in = &m->tensors[o->in[0]], *out = &m->tensors[o->out];
        int32_t act = b->fused[2 * i + 1];
        switch (o->kind) {
        case RG_QOP_CONV:
        case RG_QOP_DEPTHWISE:
        case RG_QOP_FC:
            if ((st = weights_op(g, o, n, b->fused[2 * i], cfg, m, err))) return st;
            if ((st = rg_q_activation_range(act_of(g, act), out->q, &o->act_min, &o->act_max, err))) return st;
            break;
        case RG_QOP_ADD:
            if ((st = rg_q_add_prepare(in->q, m->tensors[o->in[1]].q, out->q, RG_Q_ACT_NONE, &o->add, err)))
                return rg_error_prefix(err, "lower: %s", o->name);
            break;
        case RG_QOP_CLAMP:
            if ((st = rg_q_activation_range(act_of(g, act), out->q, &o->act_min, &o->act_max, err))) return st;
            break;
        case RG_QOP_GAP:
            if ((st = rg_q_gap_prepare(1, in->h, in->w, in->c, in->q, out->q, &o->gap, err)))
                return rg_error_prefix(err, "lower: %s", o->name);
            break;
        case RG_QOP_AVGPOOL:
        case RG_QOP_MAXPOOL: break;
        }
    }
    return RG_OK;
}

rg_status rg_quant_lower(rg_graph *g, const float *calib, int32_t n_calib, const rg_lower_config *cfg,
                         rg_qmodel **out, rg_error *err)
{
    *out = NULL;
    if (n_calib < 1) return rg_fail(err, RG_ERR_ARG, "lower: n_calib %d must be >= 1", (int)n_calib);
    if (cfg->batch < 1) return rg_fail(err, RG_ERR_ARG, "lower: batch %d must be >= 1", (int)cfg->batch);
    builder b = {.g = g};
    b.m = rg_calloc(1, sizeof *b.m, err);
    b.tensor_of = rg_malloc(sizeof(int32_t) * (size_t)g->n_values, err);
    if (!b.m || !b.tensor_of) {
        free(b.m);
        free(b.tensor_of);
        return RG_ERR_NOMEM;
    }
    for (int32_t v = 0; v < g->n_values; v++) b.tensor_of[v] = -1;
    rg_observer **obs = NULL;
    rg_status st = build(&b, err);
    if (!st) {
        obs = rg_calloc((size_t)b.m->n_tensors, sizeof *obs, err);
        st = obs ? calibrate(&b, g, calib, n_calib, cfg, obs, err) : RG_ERR_NOMEM;
    }
    if (!st) st = parameters(&b, g, cfg, obs, err);
    if (obs)
        for (int32_t t = 0; t < b.m->n_tensors; t++) rg_obs_free(obs[t]);
    free(obs);
    free(b.tensor_of);
    free(b.inherit);
    free(b.fused);
    if (st) {
        rg_qmodel_free(b.m);
        return st;
    }
    *out = b.m;
    return RG_OK;
}
