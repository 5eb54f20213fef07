/* Executing a lowered int8 model with the integer reference kernels
 * (PROTOTYPE; contract in include/regain/quant_model.h). Each tensor has
 * its own slot of batch * size bytes in the caller's arena. */
#include "regain/quant_model.h"

#include <string.h>

size_t rg_qmodel_arena_bytes(const rg_qmodel *m, int32_t batch)
{
    return m->image_bytes * (size_t)(batch > 0 ? batch : 0);
}

int8_t *rg_qmodel_tensor(const rg_qmodel *m, int8_t *arena, int32_t batch, int32_t t)
{
    return arena + m->tensors[t].offset * (size_t)batch;
}

static rg_status run_op(const rg_qmodel *m, const rg_qop *o, int8_t *arena, int32_t batch, rg_error *err)
{
    const rg_qtensor *in = &m->tensors[o->in[0]], *out = &m->tensors[o->out];
    const int8_t *x = rg_qmodel_tensor(m, arena, batch, o->in[0]);
    int8_t *y = rg_qmodel_tensor(m, arena, batch, o->out);
    switch (o->kind) {
    case RG_QOP_CONV:
    case RG_QOP_DEPTHWISE: {
        rg_q_conv_params p = {.batch = batch, .in_h = in->h, .in_w = in->w, .in_c = in->c, .out_h = out->h,
                              .out_w = out->w, .out_c = out->c, .k_h = o->k_h, .k_w = o->k_w, .stride_h = o->stride,
                              .stride_w = o->stride, .dilation_h = 1, .dilation_w = 1, .pad_top = o->pad,
                              .pad_left = o->pad, .in_zp = in->q.zero_point, .out_zp = out->q.zero_point,
                              .act_min = o->act_min, .act_max = o->act_max, .multipliers = o->multipliers,
                              .shifts = o->shifts};
        return o->kind == RG_QOP_CONV ? rg_q_conv2d_s8(&p, x, o->weights, o->bias, y, err)
                                      : rg_q_depthwise_s8(&p, x, o->weights, o->bias, y, err);
    }
    case RG_QOP_FC: {
        rg_q_fc_params p = {.batch = batch, .in_features = in->h * in->w * in->c, .out_features = o->out_c,
                            .in_zp = in->q.zero_point, .out_zp = out->q.zero_point, .act_min = o->act_min,
                            .act_max = o->act_max, .multipliers = o->multipliers, .shifts = o->shifts};
        return rg_q_fc_s8(&p, x, o->weights, o->bias, y, err);
    }
    case RG_QOP_ADD:
        return rg_q_add_s8(&o->add, x, rg_qmodel_tensor(m, arena, batch, o->in[1]),
                           (int64_t)batch * out->h * out->w * out->c, y, err);
    case RG_QOP_CLAMP:
        return rg_q_clamp_s8(x, (int64_t)batch * out->h * out->w * out->c, o->act_min, o->act_max, y, err);
    case RG_QOP_AVGPOOL:
    case RG_QOP_MAXPOOL: {
        rg_q_pool_params p = {.batch = batch, .in_h = in->h, .in_w = in->w, .c = in->c, .out_h = out->h,
                              .out_w = out->w, .k_h = o->k_h, .k_w = o->k_w, .stride_h = o->stride,
                              .stride_w = o->stride, .pad_top = o->pad, .pad_left = o->pad, .act_min = o->act_min,
                              .act_max = o->act_max};
        return o->kind == RG_QOP_AVGPOOL ? rg_q_avgpool_s8(&p, x, y, err) : rg_q_maxpool_s8(&p, x, y, err);
    }
    case RG_QOP_GAP: {
        rg_q_gap_params p = o->gap;
        p.batch = batch;
        return rg_q_gap_s8(&p, x, y, err);
    }
    }
    return rg_fail(err, RG_ERR_ARG, "qmodel: op %s has unknown kind %d", o->name, (int)o->kind);
}

rg_status rg_qmodel_run(const rg_qmodel *m, int8_t *arena, const int8_t *in, int32_t batch, int8_t *out,
                        rg_error *err)
{
    if (batch < 1) return rg_fail(err, RG_ERR_ARG, "qmodel: batch %d must be >= 1", (int)batch);
    const rg_qtensor *ti = &m->tensors[m->input], *to = &m->tensors[m->output];
    memcpy(rg_qmodel_tensor(m, arena, batch, m->input), in, (size_t)batch * ti->h * ti->w * ti->c);
    for (int32_t i = 0; i < m->n_ops; i++) {
        rg_status st = run_op(m, &m->ops[i], arena, batch, err);
        if (st) return rg_error_prefix(err, "qmodel: %s", m->ops[i].name);
    }
    memcpy(out, rg_qmodel_tensor(m, arena, batch, m->output), (size_t)batch * to->h * to->w * to->c);
    return RG_OK;
}

rg_status rg_qmodel_run_float(const rg_qmodel *m, int8_t *arena, const float *in, int32_t batch, float *out,
                              rg_error *err)
{
    if (batch < 1) return rg_fail(err, RG_ERR_ARG, "qmodel: batch %d must be >= 1", (int)batch);
    const rg_qtensor *ti = &m->tensors[m->input], *to = &m->tensors[m->output];
    int8_t *x = rg_qmodel_tensor(m, arena, batch, m->input);
    rg_status st = rg_q_quantize(in, (size_t)batch * ti->h * ti->w * ti->c, ti->q, RG_Q_ACT_MIN, RG_Q_ACT_MAX, x, err);
    if (st) return st;
    for (int32_t i = 0; i < m->n_ops; i++) {
        st = run_op(m, &m->ops[i], arena, batch, err);
        if (st) return rg_error_prefix(err, "qmodel: %s", m->ops[i].name);
    }
    rg_q_dequantize(rg_qmodel_tensor(m, arena, batch, m->output), (size_t)batch * to->h * to->w * to->c, to->q, out);
    return RG_OK;
}
