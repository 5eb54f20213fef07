/* Integer reference fully connected layer and pointwise convolution (the
 * same product over rows: a 1x1 convolution in NHWC is a matrix product over
 * batch*h*w pixels). */
#include "quant/ref_check.h"

static rg_status fc(const char *op, const rg_q_fc_params *p, const int8_t *x, const int8_t *w, const int32_t *bias,
                    int8_t *y, rg_error *err)
{
    rg_status st;
    if ((st = rg_qref_check_dim(op, "batch", p->batch, err)) ||
        (st = rg_qref_check_dim(op, "in_features", p->in_features, err)) ||
        (st = rg_qref_check_dim(op, "out_features", p->out_features, err)) ||
        (st = rg_qref_check_zp(op, "in_zp", p->in_zp, err)) || (st = rg_qref_check_zp(op, "out_zp", p->out_zp, err)) ||
        (st = rg_qref_check_act(op, p->act_min, p->act_max, err)) ||
        (st = rg_qref_check_requant(op, p->multipliers, p->shifts, p->scales, p->out_features, err)))
        return st;
    const int32_t k = p->in_features, m = p->out_features;
    for (int32_t r = 0; r < p->batch; r++) {
        const int8_t *xr = x + (int64_t)r * k;
        for (int32_t o = 0; o < m; o++) {
            const int8_t *wr = w + (int64_t)o * k;
            int64_t acc = bias ? bias[o] : 0;
            for (int32_t i = 0; i < k; i++) acc += ((int32_t)xr[i] - p->in_zp) * (int32_t)wr[i];
            int64_t r32 = rg_qref_requant(p->scales, p->multipliers, p->shifts, o, rg_qref_sat32(acc), p->out_zp, p->act_min, p->act_max);
            y[(int64_t)r * m + o] = (int8_t)rg_qref_clamp(r32, p->act_min, p->act_max);
        }
    }
    return RG_OK;
}

rg_status rg_q_fc_s8(const rg_q_fc_params *p, const int8_t *x, const int8_t *w, const int32_t *bias, int8_t *y,
                     rg_error *err)
{
    return fc("fc_s8", p, x, w, bias, y, err);
}

rg_status rg_q_pointwise_s8(const rg_q_fc_params *p, const int8_t *x, const int8_t *w, const int32_t *bias,
                            int8_t *y, rg_error *err)
{
    return fc("pointwise_s8", p, x, w, bias, y, err);
}
