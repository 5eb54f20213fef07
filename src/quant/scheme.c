/* The int8 scheme: quantization parameters from a range, quantize,
 * dequantize, symmetric per-channel weights, int32 biases.
 * Contracts in include/regain/quant.h; derivations in docs/quantization.md. */
#include "regain/quant.h"
#include "quant/qround.h"


#include <float.h>
#include <math.h>

static int range_ok(int32_t qmin, int32_t qmax)
{
    return qmin < qmax && (int64_t)qmax - (int64_t)qmin <= 65535;
}

rg_status rg_q_params_from_range(float lo, float hi, int32_t qmin, int32_t qmax, rg_qparams *out,
                                 rg_error *err)
{
    if (!isfinite(lo) || !isfinite(hi))
        return rg_fail(err, RG_ERR_ARG, "quantization range: lo %g and hi %g must be finite", (double)lo,
                       (double)hi);
    if (lo > hi)
        return rg_fail(err, RG_ERR_ARG, "quantization range: lo %g is above hi %g", (double)lo, (double)hi);
    if (!range_ok(qmin, qmax))
        return rg_fail(err, RG_ERR_ARG, "quantization range: qmin %d must be below qmax %d (span <= 65535)",
                       (int)qmin, (int)qmax);
    /* real 0 must be an integer exactly: zero padding and the ReLU floor
     * are then exact, and an all-zero tensor stays zero */
    if (lo > 0.0f) lo = 0.0f;
    if (hi < 0.0f) hi = 0.0f;
    /* float32 as PyTorch computes it, so that its observers are a golden */
    float scale = (hi - lo) / (float)(qmax - qmin);
    if (!(scale >= FLT_EPSILON)) scale = FLT_EPSILON;
    if (!isfinite(scale))
        return rg_fail(err, RG_ERR_ARG, "quantization range: [%g, %g] is too wide for float", (double)lo,
                       (double)hi);
    float zp = (float)qmin - rg_q_roundf(lo / scale);
    int32_t z = zp < (float)qmin ? qmin : zp > (float)qmax ? qmax : (int32_t)zp;
    out->scale = scale;
    out->zero_point = z;
    return RG_OK;
}

rg_status rg_q_params_symmetric(float absmax, int32_t qmax, rg_qparams *out, rg_error *err)
{
    if (!isfinite(absmax) || absmax < 0.0f)
        return rg_fail(err, RG_ERR_ARG, "symmetric quantization: absmax %g must be finite and >= 0",
                       (double)absmax);
    if (qmax < 1) return rg_fail(err, RG_ERR_ARG, "symmetric quantization: qmax %d must be >= 1", (int)qmax);
    float scale = absmax / (float)qmax;
    if (!(scale >= FLT_EPSILON)) scale = FLT_EPSILON;
    out->scale = scale;
    out->zero_point = 0;
    return RG_OK;
}

rg_status rg_q_params_check(rg_qparams p, int32_t qmin, int32_t qmax, const char *what, rg_error *err)
{
    if (!what) what = "tensor";
    if (!range_ok(qmin, qmax))
        return rg_fail(err, RG_ERR_ARG, "%s: qmin %d must be below qmax %d", what, (int)qmin, (int)qmax);
    if (!isfinite(p.scale) || !(p.scale > 0.0f) || !isnormal(p.scale) || !isfinite(1.0f / p.scale))
        return rg_fail(err, RG_ERR_ARG, "%s: scale %g must be finite, positive and normal", what,
                       (double)p.scale);
    if (p.zero_point < qmin || p.zero_point > qmax)
        return rg_fail(err, RG_ERR_ARG, "%s: zero point %d outside [%d, %d]", what, (int)p.zero_point,
                       (int)qmin, (int)qmax);
    return RG_OK;
}

int32_t rg_q_quantize_value(float x, rg_qparams p, int32_t qmin, int32_t qmax)
{
    return rg_q_quantize_code(x, p, qmin, qmax);
}

rg_status rg_q_quantize(const float *x, size_t n, rg_qparams p, int32_t qmin, int32_t qmax, int8_t *q,
                        rg_error *err)
{
    if (qmin < -128 || qmax > 127)
        return rg_fail(err, RG_ERR_ARG, "quantize: [qmin %d, qmax %d] is not within int8", (int)qmin,
                       (int)qmax);
    rg_status st = rg_q_params_check(p, qmin, qmax, "quantize", err);
    if (st) return st;
    for (size_t i = 0; i < n; i++) q[i] = (int8_t)rg_q_quantize_value(x[i], p, qmin, qmax);
    return RG_OK;
}

void rg_q_dequantize(const int8_t *q, size_t n, rg_qparams p, float *x)
{
    for (size_t i = 0; i < n; i++) x[i] = p.scale * (float)((int32_t)q[i] - p.zero_point);
}

rg_status rg_q_quantize_weights(const float *w, int32_t channels, size_t per_channel, int per_channel_scales,
                                int8_t *q, float *scales, rg_error *err)
{
    if (channels < 1) return rg_fail(err, RG_ERR_ARG, "weights: channels %d must be >= 1", (int)channels);
    float tensor_max = 0.0f;
    for (int32_t c = 0; c < channels; c++) {
        const float *row = w + (size_t)c * per_channel;
        float m = 0.0f;
        for (size_t i = 0; i < per_channel; i++) {
            if (!isfinite(row[i]))
                return rg_fail(err, RG_ERR_ARG, "weights: channel %d element %zu is %g (not finite)", (int)c, i,
                               (double)row[i]);
            float a = fabsf(row[i]);
            if (a > m) m = a;
        }
        if (per_channel_scales) {
            rg_qparams p = {1.0f, 0};
            rg_q_params_symmetric(m, RG_Q_W_MAX, &p, err);
            scales[c] = p.scale;
        }
        if (m > tensor_max) tensor_max = m;
    }
    if (!per_channel_scales) {
        rg_qparams p = {1.0f, 0};
        rg_q_params_symmetric(tensor_max, RG_Q_W_MAX, &p, err);
        scales[0] = p.scale;
    }
    for (int32_t c = 0; c < channels; c++) {
        rg_qparams p = {scales[per_channel_scales ? c : 0], 0};
        for (size_t i = 0; i < per_channel; i++)
            q[(size_t)c * per_channel + i] =
                (int8_t)rg_q_quantize_value(w[(size_t)c * per_channel + i], p, RG_Q_W_MIN, RG_Q_W_MAX);
    }
    return RG_OK;
}

rg_status rg_q_quantize_bias(const float *b, int32_t channels, float in_scale, const float *w_scales,
                             int per_channel_scales, int32_t *q, int32_t *saturated, rg_error *err)
{
    if (channels < 1) return rg_fail(err, RG_ERR_ARG, "bias: channels %d must be >= 1", (int)channels);
    rg_status st = rg_q_params_check((rg_qparams){in_scale, 0}, -1, 1, "bias: input scale", err);
    if (st) return st;
    int32_t sat = 0;
    for (int32_t c = 0; c < channels; c++) {
        float ws = w_scales[per_channel_scales ? c : 0];
        if (rg_q_params_check((rg_qparams){ws, 0}, -1, 1, "bias: weight scale", err))
            return rg_error_prefix(err, "channel %d", (int)c);
        if (!isfinite(b[c]))
            return rg_fail(err, RG_ERR_ARG, "bias: channel %d is %g (not finite)", (int)c, (double)b[c]);
        float s = in_scale * ws; /* float product, as TFLite */
        if (!(s > 0.0f) || !isfinite(s))
            return rg_fail(err, RG_ERR_ARG, "bias: channel %d scale %g * %g is not a positive float", (int)c,
                           (double)in_scale, (double)ws);
        double r = rg_q_round((double)b[c] / (double)s);
        if (r > (double)INT32_MAX) {
            r = (double)INT32_MAX;
            sat++;
        } else if (r < -(double)INT32_MAX) {
            r = -(double)INT32_MAX;
            sat++;
        }
        q[c] = (int32_t)r;
    }
    if (saturated) *saturated = sat;
    return RG_OK;
}

rg_status rg_q_activation_range(rg_q_activation act, rg_qparams out, int32_t *lo, int32_t *hi, rg_error *err)
{
    rg_status st = rg_q_params_check(out, RG_Q_ACT_MIN, RG_Q_ACT_MAX, "activation output", err);
    if (st) return st;
    int32_t l = RG_Q_ACT_MIN, h = RG_Q_ACT_MAX;
    switch (act) {
    case RG_Q_ACT_NONE: break;
    case RG_Q_ACT_RELU6: {
        int32_t six = rg_q_quantize_value(6.0f, out, RG_Q_ACT_MIN, RG_Q_ACT_MAX);
        if (six < h) h = six;
    } /* fall through */
    case RG_Q_ACT_RELU:
        if (out.zero_point > l) l = out.zero_point;
        break;
    default: return rg_fail(err, RG_ERR_ARG, "activation: unknown kind %d", (int)act);
    }
    *lo = l;
    *hi = h;
    return RG_OK;
}
