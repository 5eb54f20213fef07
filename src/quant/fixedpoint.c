/* Fixed-point requantization with gemmlowp's rounding, bit for bit as
 * TFLite's reference kernels compute it. Contracts in
 * include/regain/quant.h; a worked example in docs/quantization.md. */
#include "regain/quant.h"

/* RG_FREESTANDING: the copy `regain export --c` ships for microcontrollers
 * keeps only what the kernels run (no libm; multipliers are computed on the
 * host at export time). */
#ifndef RG_FREESTANDING
#include <math.h>

rg_status rg_q_multiplier(double real_multiplier, int32_t *multiplier, int32_t *shift, rg_error *err)
{
    if (!isfinite(real_multiplier) || real_multiplier < 0.0)
        return rg_fail(err, RG_ERR_ARG, "requantization multiplier %g must be finite and >= 0", real_multiplier);
    if (real_multiplier == 0.0) {
        *multiplier = 0;
        *shift = 0;
        return RG_OK;
    }
    int e;
    double f = frexp(real_multiplier, &e); /* real = f * 2^e, f in [0.5, 1) */
    int64_t m = (int64_t)round(f * 2147483648.0);
    if (m == (INT64_C(1) << 31)) { /* f rounded up to 1.0 */
        m /= 2;
        e++;
    }
    if (e < RG_Q_SHIFT_MIN) { /* every product rounds to 0: flush, as TFLite */
        *multiplier = 0;
        *shift = 0;
        return RG_OK;
    }
    if (e > RG_Q_SHIFT_MAX)
        return rg_fail(err, RG_ERR_ARG, "requantization multiplier %g is too large (shift %d > %d)",
                       real_multiplier, e, RG_Q_SHIFT_MAX);
    *multiplier = (int32_t)m;
    *shift = e;
    return RG_OK;
}
#endif

rg_status rg_q_multiplier_check(int32_t multiplier, int32_t shift, const char *what, rg_error *err)
{
    if (!what) what = "requantization";
    if (multiplier < 0)
        return rg_fail(err, RG_ERR_ARG, "%s: multiplier %d must be >= 0", what, (int)multiplier);
    if (shift < RG_Q_SHIFT_MIN || shift > RG_Q_SHIFT_MAX)
        return rg_fail(err, RG_ERR_ARG, "%s: shift %d outside [%d, %d]", what, (int)shift, RG_Q_SHIFT_MIN,
                       RG_Q_SHIFT_MAX);
    return RG_OK;
}

/* rg_q_srdhm, rg_q_rdbpot and rg_q_mul_by_multiplier are static inline in
 * regain/quant.h: the QAT and reference loops call them per element. */

#ifndef RG_FREESTANDING
rg_status rg_q_requant_params(float in_scale, const float *w_scales, int32_t n_w_scales, float out_scale,
                              int32_t out_channels, int32_t *multipliers, int32_t *shifts, rg_error *err)
{
    if (out_channels < 1)
        return rg_fail(err, RG_ERR_ARG, "requantization: out_channels %d must be >= 1", (int)out_channels);
    if (n_w_scales != 1 && n_w_scales != out_channels)
        return rg_fail(err, RG_ERR_ARG, "requantization: %d weight scales for %d channels (need 1 or %d)",
                       (int)n_w_scales, (int)out_channels, (int)out_channels);
    rg_status st = rg_q_params_check((rg_qparams){in_scale, 0}, -1, 1, "requantization: input scale", err);
    if (!st) st = rg_q_params_check((rg_qparams){out_scale, 0}, -1, 1, "requantization: output scale", err);
    if (st) return st;
    for (int32_t c = 0; c < out_channels; c++) {
        float ws = w_scales[n_w_scales == 1 ? 0 : c];
        if (rg_q_params_check((rg_qparams){ws, 0}, -1, 1, "requantization: weight scale", err))
            return rg_error_prefix(err, "channel %d", (int)c);
        double real = (double)in_scale * (double)ws / (double)out_scale;
        if (rg_q_multiplier(real, &multipliers[c], &shifts[c], err))
            return rg_error_prefix(err, "channel %d", (int)c);
    }
    return RG_OK;
}
#endif
