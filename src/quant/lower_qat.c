/* Lowering a QAT graph with the parameters it trained with (contract in
 * include/regain/qat.h). The prototype lowering (lower.c) builds the int8
 * model's structure from a copy of the graph without its fake-quant nodes;
 * then every tensor takes its fake-quant node's parameters, and every
 * weight layer is requantized with the weight scales QAT used, from the
 * weights folded with the running statistics (rg_conv_fold, as the frozen
 * training graph computes them). */
#include "regain/qat.h"
#include "ops/conv.h"

#include <stdlib.h>
#include <string.h>

/* A copy of g without its fake-quant nodes (readers see their inputs). */
static rg_status strip(const rg_graph *g, rg_graph **out, rg_error *err)
{
    *out = NULL;
    rg_graph *c = rg_calloc(1, sizeof *c, err);
    if (!c) return RG_ERR_NOMEM;
    int32_t *vmap = rg_malloc(sizeof(int32_t) * (size_t)g->n_values, err);
    c->nodes = rg_calloc((size_t)g->n_nodes, sizeof *c->nodes, err);
    c->values = rg_calloc((size_t)g->n_values, sizeof *c->values, err);
    c->params = rg_malloc(sizeof *c->params * (size_t)(g->n_params ? g->n_params : 1), err);
    c->buffers = rg_malloc(sizeof *c->buffers * (size_t)(g->n_buffers ? g->n_buffers : 1), err);
    c->param_data = rg_alloc_aligned((g->param_floats + 1) * sizeof(float), err);
    c->grad_data = rg_alloc_aligned((g->param_floats + 1) * sizeof(float), err);
    c->buffer_data = rg_alloc_aligned((g->buffer_floats + 1) * sizeof(float), err);
    if (!vmap || !c->nodes || !c->values || !c->params || !c->buffers || !c->param_data || !c->grad_data ||
        !c->buffer_data) {
        free(vmap);
        rg_graph_free(c);
        return RG_ERR_NOMEM;
    }
    memcpy(c->params, g->params, sizeof *c->params * (size_t)g->n_params);
    memcpy(c->buffers, g->buffers, sizeof *c->buffers * (size_t)g->n_buffers);
    memcpy(c->param_data, g->param_data, sizeof(float) * g->param_floats);
    memset(c->grad_data, 0, sizeof(float) * g->param_floats);
    memcpy(c->buffer_data, g->buffer_data, sizeof(float) * g->buffer_floats);
    c->n_params = c->cap_params = g->n_params;
    c->n_buffers = c->cap_buffers = g->n_buffers;
    c->param_floats = g->param_floats;
    c->buffer_floats = g->buffer_floats;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const rg_node *n = &g->nodes[i];
        if (n->op == RG_OP_FAKE_QUANT) {
            vmap[n->out] = vmap[n->in[0]];
            continue;
        }
        rg_node *d = &c->nodes[c->n_nodes];
        *d = *n;
        d->fuse_next = d->fuse_prev = 0;
        if (d->op == RG_OP_BN) d->a.bn.frozen = 0;
        for (int32_t k = 0; k < d->n_in; k++) d->in[k] = vmap[n->in[k]];
        c->values[c->n_values] = g->values[n->out];
        c->values[c->n_values].producer = c->n_nodes;
        vmap[n->out] = c->n_values;
        d->out = c->n_values++;
        c->n_nodes++;
    }
    c->cap_nodes = c->n_nodes;
    c->cap_values = c->n_values;
    for (int32_t i = 0; i < c->n_nodes; i++) c->values[c->nodes[i].out].last_use = i;
    for (int32_t i = 0; i < c->n_nodes; i++)
        for (int32_t k = 0; k < c->nodes[i].n_in; k++) c->values[c->nodes[i].in[k]].last_use = i;
    c->input = vmap[g->input];
    c->output = vmap[g->output];
    c->values[c->output].last_use = c->n_nodes;
    free(vmap);
    *out = c;
    return RG_OK;
}

static int32_t sole_bn(const rg_graph *g, int32_t node)
{
    int32_t v = g->nodes[node].out, reader = -1;
    if (v == g->output) return -1;
    for (int32_t j = 1; j < g->n_nodes; j++)
        for (int32_t k = 0; k < g->nodes[j].n_in; k++)
            if (g->nodes[j].in[k] == v) {
                if (reader >= 0) return -1;
                reader = j;
            }
    return reader > 0 && g->nodes[reader].op == RG_OP_BN ? reader : -1;
}

/* The activation fused into the op whose output tensor is value v of c. */
static rg_q_activation act_at(const rg_graph *c, int32_t v)
{
    rg_op_type op = c->nodes[c->values[v].producer].op;
    return op == RG_OP_RELU6 ? RG_Q_ACT_RELU6 : op == RG_OP_RELU ? RG_Q_ACT_RELU : RG_Q_ACT_NONE;
}

static rg_status requantize_layer(const rg_qat *q, const rg_graph *g, const rg_graph *c, rg_qmodel *m, rg_qop *o,
                                  rg_error *err)
{
    int32_t node = rg_graph_find_node(c, o->name), gnode = rg_graph_find_node(g, o->name);
    const rg_node *n = &c->nodes[node];
    int32_t cout = o->out_c, qmax = rg_qat_weight_qmax(q);
    size_t per = c->params[n->param[0]].count / (size_t)cout;
    rg_status st = rg_qat_weight_scales(q, gnode, o->w_scales, err);
    if (st) return st;
    const float *w = c->param_data + c->params[n->param[0]].offset;
    const float *bias = n->param[1] >= 0 ? c->param_data + c->params[n->param[1]].offset : NULL;
    float *folded = NULL;
    int32_t bn = n->op == RG_OP_CONV ? sole_bn(c, node) : -1;
    if (bn >= 0) {
        rg_node copy = *n;
        copy.fuse_next = bn;
        folded = rg_malloc(sizeof(float) * rg_conv_folded_floats(c, &copy), err);
        if (!folded) return RG_ERR_NOMEM;
        rg_conv_fold(c, &copy, folded);
        w = folded;
        bias = folded + per * (size_t)cout;
    }
    for (int32_t ch = 0; ch < cout; ch++) {
        rg_qparams p = {o->w_scales[ch], 0};
        for (size_t k = 0; k < per; k++)
            o->weights[(size_t)ch * per + k] = (int8_t)rg_q_quantize_value(w[(size_t)ch * per + k], p, -qmax, qmax);
    }
    const rg_qparams in = m->tensors[o->in[0]].q, out = m->tensors[o->out].q;
    if (bias) st = rg_q_quantize_bias(bias, cout, in.scale, o->w_scales, 1, o->bias, NULL, err);
    else memset(o->bias, 0, sizeof(int32_t) * (size_t)cout);
    if (!st) st = rg_q_requant_params(in.scale, o->w_scales, cout, out.scale, cout, o->multipliers, o->shifts, err);
    if (!st) st = rg_q_activation_range(act_at(c, m->tensors[o->out].value), out, &o->act_min, &o->act_max, err);
    free(folded);
    return st;
}

static rg_status apply_params(const rg_qat *q, const rg_graph *g, const rg_graph *c, rg_qmodel *m, rg_error *err)
{
    for (int32_t t = 0; t < m->n_tensors; t++) {
        const rg_node *prod = &c->nodes[c->values[m->tensors[t].value].producer];
        int32_t fq = rg_qat_fq_after(g, prod->name);
        if (fq < 0) continue; /* max pool: its input's parameters, set below */
        if (!rg_qat_node_params(g, fq, &m->tensors[t].q))
            return rg_fail(err, RG_ERR_ARG, "qat lower: %s has no range yet (train first)", g->nodes[fq].name);
    }
    for (int32_t i = 0; i < m->n_ops; i++) {
        rg_qop *o = &m->ops[i];
        rg_qtensor *in = &m->tensors[o->in[0]], *out = &m->tensors[o->out];
        rg_status st = RG_OK;
        switch (o->kind) {
        case RG_QOP_CONV:
        case RG_QOP_DEPTHWISE:
        case RG_QOP_FC: st = requantize_layer(q, g, c, m, o, err); break;
        case RG_QOP_ADD: st = rg_q_add_prepare(in->q, m->tensors[o->in[1]].q, out->q, RG_Q_ACT_NONE, &o->add, err); break;
        case RG_QOP_GAP: st = rg_q_gap_prepare(1, in->h, in->w, in->c, in->q, out->q, &o->gap, err); break;
        case RG_QOP_CLAMP:
            out->q = in->q;
            st = rg_q_activation_range(act_at(c, out->value), out->q, &o->act_min, &o->act_max, err);
            break;
        case RG_QOP_AVGPOOL:
        case RG_QOP_MAXPOOL: out->q = in->q; break;
        case RG_QOP_CONCAT:
            st = rg_fail(err, RG_ERR_UNSUPPORTED, "concat: quantization-aware training does not rescale concat inputs yet");
            break;
        case RG_QOP_SPLIT:
        case RG_QOP_SHUFFLE:
        case RG_QOP_MUL:
        case RG_QOP_LUT:
            st = rg_fail(err, RG_ERR_UNSUPPORTED, "%s: not produced by the QAT lowering", rg_qop_kind_name(o->kind));
            break;
        }
        if (st) return rg_error_prefix(err, "qat lower: %s", o->name);
    }
    /* tensors name the QAT graph's values: fake-quant outputs (max pool and dropout outputs) */
    for (int32_t t = 0; t < m->n_tensors; t++) {
        const rg_node *prod = &c->nodes[c->values[m->tensors[t].value].producer];
        int32_t fq = rg_qat_fq_after(g, prod->name), node = rg_graph_find_node(g, prod->name);
        m->tensors[t].value = fq >= 0 ? g->nodes[fq].out : g->nodes[node].out;
    }
    return RG_OK;
}

rg_status rg_qat_lower(rg_qat *q, rg_graph *g, const float *calib, int32_t n_calib, rg_qmodel **out, rg_error *err)
{
    *out = NULL;
    rg_qat_end(q, 0); /* the master weights */
    rg_graph *c;
    rg_status st = strip(g, &c, err);
    if (st) return st;
    rg_lower_config cfg = rg_lower_default();
    cfg.per_channel = !rg_qat_config_of(q)->per_tensor;
    cfg.batch = n_calib < 32 ? n_calib : 32;
    rg_qmodel *m = NULL;
    st = rg_quant_lower(c, calib, n_calib, &cfg, &m, err);
    if (!st) st = apply_params(q, g, c, m, err);
    rg_graph_free(c);
    if (st) {
        rg_qmodel_free(m);
        return st;
    }
    *out = m;
    return RG_OK;
}
