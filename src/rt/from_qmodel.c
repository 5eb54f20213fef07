/* The adapter from rg_qmodel (the lowering prototype's model, still
 * changing) to rg_rgm: the only file of the runtime that reads rg_qmodel,
 * so that changes to it stay here. */
#include "regain/rt_qmodel.h"

#include <stdlib.h>
#include <string.h>

static rg_status kind_of(rg_qop_kind k, rg_rt_kind *out)
{
    switch (k) {
    case RG_QOP_CONV: *out = RG_RT_CONV; return RG_OK;
    case RG_QOP_DEPTHWISE: *out = RG_RT_DEPTHWISE; return RG_OK;
    case RG_QOP_FC: *out = RG_RT_FC; return RG_OK;
    case RG_QOP_ADD: *out = RG_RT_ADD; return RG_OK;
    case RG_QOP_AVGPOOL: *out = RG_RT_AVGPOOL; return RG_OK;
    case RG_QOP_MAXPOOL: *out = RG_RT_MAXPOOL; return RG_OK;
    case RG_QOP_GAP: *out = RG_RT_GAP; return RG_OK;
    case RG_QOP_CLAMP: *out = RG_RT_CLAMP; return RG_OK;
    case RG_QOP_CONCAT: *out = RG_RT_CONCAT; return RG_OK;
    case RG_QOP_SPLIT: *out = RG_RT_SPLIT; return RG_OK;
    case RG_QOP_SHUFFLE: *out = RG_RT_SHUFFLE; return RG_OK;
    case RG_QOP_MUL: *out = RG_RT_MUL; return RG_OK;
    case RG_QOP_LUT: *out = RG_RT_LUT; return RG_OK;
    default: return RG_ERR_UNSUPPORTED;
    }
}

rg_status rg_rgm_from_qmodel(const rg_qmodel *q, float mean, float std, rg_rgm **out, rg_error *err)
{
    *out = NULL;
    rg_rgm *m = calloc(1, sizeof *m);
    if (!m) return rg_fail(err, RG_ERR_NOMEM, "rgm: out of memory");
    m->tensors = calloc((size_t)(q->n_tensors > 0 ? q->n_tensors : 1), sizeof *m->tensors);
    m->ops = calloc((size_t)(q->n_ops > 0 ? q->n_ops : 1), sizeof *m->ops);
    if (!m->tensors || !m->ops) {
        rg_rgm_free(m);
        return rg_fail(err, RG_ERR_NOMEM, "rgm: out of memory");
    }
    m->n_tensors = q->n_tensors;
    m->n_ops = q->n_ops;
    m->input = q->input;
    m->output = q->output;
    m->mean = mean;
    m->std = std;
    for (int32_t t = 0; t < q->n_tensors; t++)
        m->tensors[t] = (rg_rgm_tensor){q->tensors[t].h, q->tensors[t].w, q->tensors[t].c, q->tensors[t].q};
    for (int32_t i = 0; i < q->n_ops; i++) {
        const rg_qop *s = &q->ops[i];
        rg_rgm_op *o = &m->ops[i];
        if (kind_of(s->kind, &o->kind)) {
            rg_rgm_free(m);
            return rg_fail(err, RG_ERR_UNSUPPORTED, "rgm: op %s: int8 op kind %d has no runtime kernel yet", s->name,
                           (int)s->kind);
        }
        /* names longer than the file's field are cut (they only label messages) */
        size_t len = strnlen(s->name, sizeof o->name - 1);
        memcpy(o->name, s->name, len);
        o->name[len] = 0;
        o->n_in = s->kind == RG_QOP_CONCAT ? s->n_in : 0;
        for (int k = 0; k < RG_RGM_MAX_IN; k++) o->in[k] = k < rg_rgm_op_n_in(o) ? s->in[k] : -1;
        o->out = s->out;
        o->k_h = s->k_h, o->k_w = s->k_w, o->stride = s->stride, o->pad = s->pad, o->out_c = s->out_c;
        o->act_min = s->act_min, o->act_max = s->act_max;
        if (s->kind == RG_QOP_CONV || s->kind == RG_QOP_DEPTHWISE || s->kind == RG_QOP_FC) {
            o->weights = s->weights;
            o->bias = s->bias;
            o->multipliers = s->multipliers;
            o->shifts = s->shifts;
            o->act_max_c = s->act_max_c; /* equalization's per-channel ReLU6 clip, or NULL */
            o->scales = s->scales;       /* fp32 requantization, or NULL */
        }
        if (s->kind == RG_QOP_ADD) o->add = s->add;
        if (s->kind == RG_QOP_CONCAT)
            for (int k = 0; k < RG_RGM_MAX_IN; k++)
                o->cat_multipliers[k] = s->cat_multipliers[k], o->cat_shifts[k] = s->cat_shifts[k];
        if (s->kind == RG_QOP_SPLIT) o->ch_begin = s->ch_begin;
        if (s->kind == RG_QOP_SHUFFLE) o->groups = s->groups;
        if (s->kind == RG_QOP_MUL && (s->mul.in1_zp != q->tensors[s->in[0]].q.zero_point ||
                                      s->mul.in2_zp != q->tensors[s->in[1]].q.zero_point ||
                                      s->mul.out_zp != q->tensors[s->out].q.zero_point)) {
            rg_rgm_free(m);
            return rg_fail(err, RG_ERR_ARG,
                           "rgm: op %s: mul zero points differ from its tensors' (requantize the op after changing "
                           "them)",
                           s->name);
        }
        if (s->kind == RG_QOP_MUL) {
            /* the zero points are the tensors' (rg_rgm_check holds the mul to them) */
            o->mul_multiplier = s->mul.multiplier, o->mul_shift = s->mul.shift;
            o->act_min = s->mul.act_min, o->act_max = s->mul.act_max;
        }
        if (s->kind == RG_QOP_LUT) {
            o->lut_fn = (int32_t)s->lut_fn;
            o->lut = s->lut;
        }
        if (s->kind == RG_QOP_GAP) {
            o->gap_multiplier = s->gap.multiplier;
            o->gap_shift = s->gap.shift;
            o->act_min = s->gap.act_min;
            o->act_max = s->gap.act_max;
        }
    }
    rg_status st = rg_rgm_check(m, err);
    if (st) {
        rg_rgm_free(m);
        return rg_error_prefix(err, "rgm: lowered model");
    }
    *out = m;
    return RG_OK;
}

rg_status rg_rgm_write_qmodel(const rg_qmodel *q, float mean, float std, const char *path, rg_error *err)
{
    rg_rgm *m;
    rg_status st = rg_rgm_from_qmodel(q, mean, std, &m, err);
    if (st) return st;
    st = rg_rgm_write(m, path, err);
    rg_rgm_free(m);
    return st;
}
