/* Integer reference convolutions (dense and depthwise), NHWC int8, per-channel
 * requantization. The specification for the int8 runtime's fast kernels:
 * formulas in include/regain/quant_kernels.h and docs/quantization.md. */
#include "quant/ref_check.h"

rg_status rg_qref_check_conv(const char *op, const rg_q_conv_params *p, rg_error *err)
{
    rg_status st;
    if ((st = rg_qref_check_dim(op, "batch", p->batch, err)) || (st = rg_qref_check_dim(op, "in_h", p->in_h, err)) ||
        (st = rg_qref_check_dim(op, "in_w", p->in_w, err)) || (st = rg_qref_check_dim(op, "in_c", p->in_c, err)) ||
        (st = rg_qref_check_dim(op, "out_h", p->out_h, err)) ||
        (st = rg_qref_check_dim(op, "out_w", p->out_w, err)) ||
        (st = rg_qref_check_dim(op, "out_c", p->out_c, err)) || (st = rg_qref_check_dim(op, "k_h", p->k_h, err)) ||
        (st = rg_qref_check_dim(op, "k_w", p->k_w, err)) ||
        (st = rg_qref_check_dim(op, "stride_h", p->stride_h, err)) ||
        (st = rg_qref_check_dim(op, "stride_w", p->stride_w, err)) ||
        (st = rg_qref_check_dim(op, "dilation_h", p->dilation_h, err)) ||
        (st = rg_qref_check_dim(op, "dilation_w", p->dilation_w, err)))
        return st;
    if (p->pad_top < 0 || p->pad_left < 0)
        return rg_fail(err, RG_ERR_SHAPE, "%s: pad_top %d / pad_left %d must be >= 0", op, (int)p->pad_top,
                       (int)p->pad_left);
    /* the last window must start inside the padded input */
    int64_t last_h = (int64_t)(p->out_h - 1) * p->stride_h - p->pad_top;
    int64_t last_w = (int64_t)(p->out_w - 1) * p->stride_w - p->pad_left;
    if (last_h >= p->in_h || last_w >= p->in_w)
        return rg_fail(err, RG_ERR_SHAPE, "%s: out_h %d / out_w %d too large for input %dx%d, stride %dx%d, pad %d,%d",
                       op, (int)p->out_h, (int)p->out_w, (int)p->in_h, (int)p->in_w, (int)p->stride_h,
                       (int)p->stride_w, (int)p->pad_top, (int)p->pad_left);
    if ((st = rg_qref_check_zp(op, "in_zp", p->in_zp, err)) || (st = rg_qref_check_zp(op, "out_zp", p->out_zp, err)) ||
        (st = rg_qref_check_act(op, p->act_min, p->act_max, err)) ||
        (st = rg_qref_check_requant(op, p->multipliers, p->shifts, p->scales, p->out_c, err)))
        return st;
    return RG_OK;
}

rg_status rg_q_conv2d_s8(const rg_q_conv_params *p, const int8_t *x, const int8_t *w, const int32_t *bias,
                         int8_t *y, rg_error *err)
{
    rg_status st = rg_qref_check_conv("conv2d_s8", p, err);
    if (st) return st;
    const int32_t ci = p->in_c, co = p->out_c;
    for (int32_t n = 0; n < p->batch; n++)
        for (int32_t oh = 0; oh < p->out_h; oh++)
            for (int32_t ow = 0; ow < p->out_w; ow++)
                for (int32_t oc = 0; oc < co; oc++) {
                    int64_t acc = bias ? bias[oc] : 0;
                    for (int32_t kh = 0; kh < p->k_h; kh++) {
                        int32_t ih = oh * p->stride_h - p->pad_top + kh * p->dilation_h;
                        if (ih < 0 || ih >= p->in_h) continue; /* padding reads real 0 */
                        for (int32_t kw = 0; kw < p->k_w; kw++) {
                            int32_t iw = ow * p->stride_w - p->pad_left + kw * p->dilation_w;
                            if (iw < 0 || iw >= p->in_w) continue;
                            const int8_t *xp = x + (((int64_t)n * p->in_h + ih) * p->in_w + iw) * ci;
                            const int8_t *wp = w + (((int64_t)oc * p->k_h + kh) * p->k_w + kw) * ci;
                            for (int32_t c = 0; c < ci; c++) acc += ((int32_t)xp[c] - p->in_zp) * (int32_t)wp[c];
                        }
                    }
                    int64_t r32 = rg_qref_requant(p->scales, p->multipliers, p->shifts, oc, rg_qref_sat32(acc), p->out_zp, p->act_min, p->act_max);
                    y[(((int64_t)n * p->out_h + oh) * p->out_w + ow) * co + oc] =
                        (int8_t)rg_qref_clamp(r32, p->act_min, p->act_max);
                }
    return RG_OK;
}

rg_status rg_q_depthwise_s8(const rg_q_conv_params *p, const int8_t *x, const int8_t *w, const int32_t *bias,
                            int8_t *y, rg_error *err)
{
    rg_status st = rg_qref_check_conv("depthwise_s8", p, err);
    if (st) return st;
    if (p->out_c != p->in_c)
        return rg_fail(err, RG_ERR_SHAPE, "depthwise_s8: out_c %d must equal in_c %d (channel multiplier 1)",
                       (int)p->out_c, (int)p->in_c);
    const int32_t ch = p->in_c;
    for (int32_t n = 0; n < p->batch; n++)
        for (int32_t oh = 0; oh < p->out_h; oh++)
            for (int32_t ow = 0; ow < p->out_w; ow++)
                for (int32_t c = 0; c < ch; c++) {
                    int64_t acc = bias ? bias[c] : 0;
                    for (int32_t kh = 0; kh < p->k_h; kh++) {
                        int32_t ih = oh * p->stride_h - p->pad_top + kh * p->dilation_h;
                        if (ih < 0 || ih >= p->in_h) continue;
                        for (int32_t kw = 0; kw < p->k_w; kw++) {
                            int32_t iw = ow * p->stride_w - p->pad_left + kw * p->dilation_w;
                            if (iw < 0 || iw >= p->in_w) continue;
                            int32_t xv = x[(((int64_t)n * p->in_h + ih) * p->in_w + iw) * ch + c];
                            acc += (xv - p->in_zp) * (int32_t)w[((int64_t)c * p->k_h + kh) * p->k_w + kw];
                        }
                    }
                    int64_t r32 = rg_qref_requant(p->scales, p->multipliers, p->shifts, c, rg_qref_sat32(acc), p->out_zp, p->act_min, p->act_max);
                    y[(((int64_t)n * p->out_h + oh) * p->out_w + ow) * ch + c] =
                        (int8_t)rg_qref_clamp(r32, p->act_min, p->act_max);
                }
    return RG_OK;
}
