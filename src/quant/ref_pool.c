/* Integer reference pooling: average and max over windows, global average
 * (TFLite's int8 Mean over H*W) and the standalone clamp. Pooling keeps the
 * input's quantization parameters: max and mean commute with the affine map
 * real = s * (q - zp) (up to the rounding of the mean). */
#include "quant/ref_check.h"

static rg_status check_pool(const char *op, const rg_q_pool_params *p, rg_error *err)
{
    rg_status st;
    if ((st = rg_qref_check_dim(op, "batch", p->batch, err)) || (st = rg_qref_check_dim(op, "in_h", p->in_h, err)) ||
        (st = rg_qref_check_dim(op, "in_w", p->in_w, err)) || (st = rg_qref_check_dim(op, "c", p->c, err)) ||
        (st = rg_qref_check_dim(op, "out_h", p->out_h, err)) ||
        (st = rg_qref_check_dim(op, "out_w", p->out_w, err)) || (st = rg_qref_check_dim(op, "k_h", p->k_h, err)) ||
        (st = rg_qref_check_dim(op, "k_w", p->k_w, err)) ||
        (st = rg_qref_check_dim(op, "stride_h", p->stride_h, err)) ||
        (st = rg_qref_check_dim(op, "stride_w", p->stride_w, err)) ||
        (st = rg_qref_check_act(op, p->act_min, p->act_max, err)))
        return st;
    if (p->pad_top < 0 || p->pad_left < 0 || p->pad_top >= p->k_h || p->pad_left >= p->k_w)
        return rg_fail(err, RG_ERR_SHAPE, "%s: pad_top %d / pad_left %d must be in [0, kernel)", op,
                       (int)p->pad_top, (int)p->pad_left);
    int64_t last_h = (int64_t)(p->out_h - 1) * p->stride_h - p->pad_top;
    int64_t last_w = (int64_t)(p->out_w - 1) * p->stride_w - p->pad_left;
    if (last_h >= p->in_h || last_w >= p->in_w)
        return rg_fail(err, RG_ERR_SHAPE, "%s: out_h %d / out_w %d too large for input %dx%d", op, (int)p->out_h,
                       (int)p->out_w, (int)p->in_h, (int)p->in_w);
    return RG_OK;
}

/* The window of output (oh, ow) clipped to the input: [h0, h1) x [w0, w1). */
static void window(const rg_q_pool_params *p, int32_t oh, int32_t ow, int32_t *h0, int32_t *h1, int32_t *w0,
                   int32_t *w1)
{
    int32_t hs = oh * p->stride_h - p->pad_top, ws = ow * p->stride_w - p->pad_left;
    *h0 = hs < 0 ? 0 : hs;
    *w0 = ws < 0 ? 0 : ws;
    *h1 = hs + p->k_h > p->in_h ? p->in_h : hs + p->k_h;
    *w1 = ws + p->k_w > p->in_w ? p->in_w : ws + p->k_w;
}

/* a / b rounded half away from zero (b > 0), as TFLite's pooling and Mean */
static int32_t div_round(int64_t a, int32_t b)
{
    return (int32_t)(a > 0 ? (a + b / 2) / b : (a - b / 2) / b);
}

rg_status rg_q_avgpool_s8(const rg_q_pool_params *p, const int8_t *x, int8_t *y, rg_error *err)
{
    rg_status st = check_pool("avgpool_s8", p, err);
    if (st) return st;
    for (int32_t n = 0; n < p->batch; n++)
        for (int32_t oh = 0; oh < p->out_h; oh++)
            for (int32_t ow = 0; ow < p->out_w; ow++) {
                int32_t h0, h1, w0, w1;
                window(p, oh, ow, &h0, &h1, &w0, &w1);
                int32_t count = (h1 - h0) * (w1 - w0);
                for (int32_t c = 0; c < p->c; c++) {
                    int32_t acc = 0;
                    for (int32_t h = h0; h < h1; h++)
                        for (int32_t w = w0; w < w1; w++)
                            acc += x[(((int64_t)n * p->in_h + h) * p->in_w + w) * p->c + c];
                    y[(((int64_t)n * p->out_h + oh) * p->out_w + ow) * p->c + c] =
                        (int8_t)rg_qref_clamp(div_round(acc, count), p->act_min, p->act_max);
                }
            }
    return RG_OK;
}

rg_status rg_q_maxpool_s8(const rg_q_pool_params *p, const int8_t *x, int8_t *y, rg_error *err)
{
    rg_status st = check_pool("maxpool_s8", p, err);
    if (st) return st;
    for (int32_t n = 0; n < p->batch; n++)
        for (int32_t oh = 0; oh < p->out_h; oh++)
            for (int32_t ow = 0; ow < p->out_w; ow++) {
                int32_t h0, h1, w0, w1;
                window(p, oh, ow, &h0, &h1, &w0, &w1);
                for (int32_t c = 0; c < p->c; c++) {
                    int32_t m = -128;
                    for (int32_t h = h0; h < h1; h++)
                        for (int32_t w = w0; w < w1; w++) {
                            int32_t v = x[(((int64_t)n * p->in_h + h) * p->in_w + w) * p->c + c];
                            if (v > m) m = v;
                        }
                    y[(((int64_t)n * p->out_h + oh) * p->out_w + ow) * p->c + c] =
                        (int8_t)rg_qref_clamp(m, p->act_min, p->act_max);
                }
            }
    return RG_OK;
}

#ifndef RG_FREESTANDING /* host only: the exported microcontroller copy keeps the kernel */
rg_status rg_q_gap_prepare(int32_t batch, int32_t h, int32_t w, int32_t c, rg_qparams in, rg_qparams out,
                           rg_q_gap_params *p, rg_error *err)
{
    rg_status st;
    if ((st = rg_q_params_check(in, RG_Q_ACT_MIN, RG_Q_ACT_MAX, "global average pool: input", err)) ||
        (st = rg_q_params_check(out, RG_Q_ACT_MIN, RG_Q_ACT_MAX, "global average pool: output", err)))
        return st;
    p->batch = batch;
    p->h = h;
    p->w = w;
    p->c = c;
    p->in_zp = in.zero_point;
    p->out_zp = out.zero_point;
    p->act_min = RG_Q_ACT_MIN;
    p->act_max = RG_Q_ACT_MAX;
    if ((st = rg_q_multiplier((double)in.scale / (double)out.scale, &p->multiplier, &p->shift, err)))
        return rg_error_prefix(err, "global average pool");
    return RG_OK;
}
#endif

rg_status rg_q_gap_s8(const rg_q_gap_params *p, const int8_t *x, int8_t *y, rg_error *err)
{
    const char *op = "gap_s8";
    rg_status st;
    if ((st = rg_qref_check_dim(op, "batch", p->batch, err)) || (st = rg_qref_check_dim(op, "h", p->h, err)) ||
        (st = rg_qref_check_dim(op, "w", p->w, err)) || (st = rg_qref_check_dim(op, "c", p->c, err)) ||
        (st = rg_qref_check_zp(op, "in_zp", p->in_zp, err)) || (st = rg_qref_check_zp(op, "out_zp", p->out_zp, err)) ||
        (st = rg_qref_check_act(op, p->act_min, p->act_max, err)) ||
        (st = rg_q_multiplier_check(p->multiplier, p->shift, "gap_s8", err)))
        return st;
    int64_t hw = (int64_t)p->h * p->w;
    if (hw > (1 << 23)) /* 255 * 2^23 < 2^31: the int32 sum cannot overflow */
        return rg_fail(err, RG_ERR_SHAPE, "gap_s8: h*w %lld above 2^23", (long long)hw);
    for (int32_t n = 0; n < p->batch; n++)
        for (int32_t c = 0; c < p->c; c++) {
            int32_t acc = 0;
            for (int64_t i = 0; i < hw; i++) acc += (int32_t)x[((int64_t)n * hw + i) * p->c + c] - p->in_zp;
            acc = rg_q_mul_by_multiplier(acc, p->multiplier, p->shift);
            acc = div_round(acc, (int32_t)hw);
            y[(int64_t)n * p->c + c] = (int8_t)rg_qref_clamp((int64_t)acc + p->out_zp, p->act_min, p->act_max);
        }
    return RG_OK;
}

rg_status rg_q_clamp_s8(const int8_t *x, int64_t n, int32_t lo, int32_t hi, int8_t *y, rg_error *err)
{
    rg_status st = rg_qref_check_act("clamp_s8", lo, hi, err);
    if (st) return st;
    if (n < 0) return rg_fail(err, RG_ERR_SHAPE, "clamp_s8: n %lld must be >= 0", (long long)n);
    for (int64_t i = 0; i < n; i++) y[i] = (int8_t)rg_qref_clamp(x[i], lo, hi);
    return RG_OK;
}
