/* Fake quantization (quantize-dequantize) for QAT with the straight-through
 * estimator and LSQ step-size gradients. Contracts in
 * include/regain/fake_quant.h; derivations in docs/quantization.md. */
#include "regain/fake_quant.h"
#include "kernels/kernels.h"
#include "quant/qround.h"

#include <math.h>

rg_status rg_fq_forward(const float *x, size_t n, rg_qparams p, int32_t qmin, int32_t qmax, float *y, rg_error *err)
{
    rg_status st = rg_q_params_check(p, qmin, qmax, "fake quantization", err);
    if (st) return st;
    /* the kernel the QAT op runs (kernels/fq_ref.c defines it, every table
     * gives its bits) */
    rg_kernels()->fq_forward(x, n, p.scale, p.zero_point, qmin, qmax, y);
    return RG_OK;
}

/* round(x / s) + zp before clamping, in float (|x/s| may exceed int32) */
static float unclamped(float x, rg_qparams p)
{
    return rg_q_roundf(x / p.scale) + (float)p.zero_point;
}

void rg_fq_backward_ste(const float *x, const float *dy, size_t n, rg_qparams p, int32_t qmin, int32_t qmax,
                        float *dx)
{
    for (size_t i = 0; i < n; i++) {
        float v = unclamped(x[i], p);
        dx[i] = (v >= (float)qmin && v <= (float)qmax) ? dy[i] : 0.0f;
    }
}

void rg_fq_backward_lsq(const float *x, const float *dy, size_t n, rg_qparams p, int32_t qmin, int32_t qmax,
                        float g, float *dx, double *dscale)
{
    double ds = 0.0;
    for (size_t i = 0; i < n; i++) {
        float v = unclamped(x[i], p), d = dy[i];
        double dyds;
        if (v < (float)qmin) {
            dyds = (double)(qmin - p.zero_point);
            dx[i] = 0.0f;
        } else if (v > (float)qmax) {
            dyds = (double)(qmax - p.zero_point);
            dx[i] = 0.0f;
        } else {
            /* y = s * round(x/s) with round passed straight through:
             * dy/ds = round(x/s) + s * (-x/s^2) */
            dyds = (double)(v - (float)p.zero_point) - (double)x[i] / (double)p.scale;
            dx[i] = d;
        }
        ds += (double)d * dyds;
    }
    *dscale += (double)g * ds;
}

float rg_fq_lsq_grad_scale(size_t n, int32_t qp)
{
    if (n < 1 || qp < 1) return 1.0f;
    return (float)(1.0 / sqrt((double)n * (double)qp));
}

rg_status rg_fq_forward_channels(const float *w, int32_t channels, size_t per_channel, const float *scales,
                                 int32_t qmin, int32_t qmax, float *y, rg_error *err)
{
    if (channels < 1) return rg_fail(err, RG_ERR_ARG, "fake quantization: channels %d must be >= 1", (int)channels);
    for (int32_t c = 0; c < channels; c++) {
        rg_qparams p = {scales[c], 0};
        rg_status st = rg_fq_forward(w + (size_t)c * per_channel, per_channel, p, qmin, qmax,
                                     y + (size_t)c * per_channel, err);
        if (st) return rg_error_prefix(err, "channel %d", (int)c);
    }
    return RG_OK;
}

void rg_fq_backward_ste_channels(const float *w, const float *dy, int32_t channels, size_t per_channel,
                                 const float *scales, int32_t qmin, int32_t qmax, float *dw)
{
    for (int32_t c = 0; c < channels; c++) {
        size_t o = (size_t)c * per_channel;
        rg_fq_backward_ste(w + o, dy + o, per_channel, (rg_qparams){scales[c], 0}, qmin, qmax, dw + o);
    }
}

void rg_fq_backward_lsq_channels(const float *w, const float *dy, int32_t channels, size_t per_channel,
                                 const float *scales, int32_t qmin, int32_t qmax, float g, float *dw,
                                 double *dscales)
{
    for (int32_t c = 0; c < channels; c++) {
        size_t o = (size_t)c * per_channel;
        rg_fq_backward_lsq(w + o, dy + o, per_channel, (rg_qparams){scales[c], 0}, qmin, qmax, g, dw + o,
                           &dscales[c]);
    }
}
