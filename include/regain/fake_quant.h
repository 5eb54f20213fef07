/* regain — fake quantization for quantization-aware training.
 *
 * In QAT the float graph computes with values that have been rounded to the
 * int8 grid and mapped back ("quantize-dequantize"), so that training sees
 * the error the integer model will make:
 *
 *   q = clamp(round(x / s) + zp, qmin, qmax),   y = s * (q - zp)
 *
 * with exactly the rounding of the integer path (rg_q_quantize_value:
 * x / s in float, half away from zero), so a fake-quantized tensor holds the
 * same int8 values the lowered model will.
 *
 * round has zero gradient almost everywhere, so backward uses the
 * straight-through estimator (Bengio et al. 2013): dy/dx = 1 where the value
 * was not clipped (qmin <= round(x/s) + zp <= qmax) and 0 where it was.
 * With learned step sizes (LSQ, Esser et al. 2020) the scale is a parameter:
 *
 *   dy/ds = round(x/s) - x/s   inside,   qmin - zp   below,   qmax - zp above
 *
 * and its gradient is multiplied by g = 1 / sqrt(N * Qp) (N values share the
 * scale, Qp the largest positive level) to keep its step comparable with the
 * weights'. Derivations: docs/quantization.md.
 *
 *     rg_fq_forward(x, n, p, -128, 127, y, &err);
 *     ...
 *     double ds = 0;
 *     rg_fq_backward_lsq(x, dy, n, p, -128, 127, rg_fq_lsq_grad_scale(n, 127), dx, &ds);
 */
#ifndef REGAIN_FAKE_QUANT_H
#define REGAIN_FAKE_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "regain/quant.h"
#include "regain/status.h"

/* y[i] = s * (clamp(round(x[i] / s) + zp, qmin, qmax) - zp) for n values
 * (y may be x). Errors: bad p or [qmin, qmax] (rg_q_params_check). */
rg_status rg_fq_forward(const float *x, size_t n, rg_qparams p, int32_t qmin, int32_t qmax, float *y, rg_error *err);

/* Straight-through estimator: dx[i] = dy[i] where qmin <= round(x[i]/s) + zp
 * <= qmax, else 0 (the rounded value decides, as PyTorch's fake_quantize).
 * Writes dx (may be dy). p must have passed rg_q_params_check. */
void rg_fq_backward_ste(const float *x, const float *dy, size_t n, rg_qparams p, int32_t qmin, int32_t qmax,
                        float *dx);

/* LSQ: dx as rg_fq_backward_ste, and adds g * sum_i dy[i] * dy_i/ds to
 * *dscale (double, summed in index order). */
void rg_fq_backward_lsq(const float *x, const float *dy, size_t n, rg_qparams p, int32_t qmin, int32_t qmax,
                        float g, float *dx, double *dscale);

/* LSQ's gradient scale g = 1 / sqrt(n * qp) (n >= 1, qp >= 1, else 1). */
float rg_fq_lsq_grad_scale(size_t n, int32_t qp);

/* Per-channel weights (symmetric, zero point 0): `channels` rows of
 * `per_channel` values, row c with scale scales[c]. Same formulas per row.
 * Errors: a bad scale (naming the channel), channels < 1. */
rg_status rg_fq_forward_channels(const float *w, int32_t channels, size_t per_channel, const float *scales,
                                 int32_t qmin, int32_t qmax, float *y, rg_error *err);
void rg_fq_backward_ste_channels(const float *w, const float *dy, int32_t channels, size_t per_channel,
                                 const float *scales, int32_t qmin, int32_t qmax, float *dw);
/* dscales[c] += g * sum over row c (g typically 1 / sqrt(per_channel * qmax)). */
void rg_fq_backward_lsq_channels(const float *w, const float *dy, int32_t channels, size_t per_channel,
                                 const float *scales, int32_t qmin, int32_t qmax, float g, float *dw,
                                 double *dscales);

#endif
