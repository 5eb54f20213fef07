/* Parameter validation for the integer reference kernels: every field a
 * kernel reads is checked before the first memory access. */
#include "quant/ref_check.h"

#ifndef RG_FREESTANDING
#include <stdio.h>
#endif

int32_t rg_q_out_size(int32_t in, int32_t k, int32_t stride, int32_t dilation, int32_t pad_before,
                      int32_t pad_after)
{
    if (in < 1 || k < 1 || stride < 1 || dilation < 1 || pad_before < 0 || pad_after < 0) return 0;
    int64_t span = (int64_t)in + pad_before + pad_after - (int64_t)dilation * (k - 1) - 1;
    if (span < 0) return 0;
    return (int32_t)(span / stride + 1);
}

rg_status rg_qref_check_dim(const char *op, const char *field, int32_t v, rg_error *err)
{
    if (v < 1) return rg_fail(err, RG_ERR_SHAPE, "%s: %s %d must be >= 1", op, field, (int)v);
    return RG_OK;
}

rg_status rg_qref_check_zp(const char *op, const char *field, int32_t zp, rg_error *err)
{
    if (zp < RG_Q_ACT_MIN || zp > RG_Q_ACT_MAX)
        return rg_fail(err, RG_ERR_ARG, "%s: %s %d outside [-128, 127]", op, field, (int)zp);
    return RG_OK;
}

rg_status rg_qref_check_act(const char *op, int32_t lo, int32_t hi, rg_error *err)
{
    if (lo < RG_Q_ACT_MIN || hi > RG_Q_ACT_MAX || lo > hi)
        return rg_fail(err, RG_ERR_ARG, "%s: act_min %d / act_max %d must satisfy -128 <= act_min <= act_max <= 127",
                       op, (int)lo, (int)hi);
    return RG_OK;
}

rg_status rg_qref_check_requant(const char *op, const int32_t *m, const int32_t *s, const float *scales, int32_t n,
                                rg_error *err)
{
    if (scales) { /* fp32 requantization: the multipliers are not used */
        for (int32_t c = 0; c < n; c++)
            if (!rg_q_scale_valid(scales[c]))
                return rg_fail(err, RG_ERR_ARG, "%s: scales[%d] = %g must be finite and >= 0", op, (int)c,
                               (double)scales[c]);
        return RG_OK;
    }
    if (!m || !s) return rg_fail(err, RG_ERR_ARG, "%s: multipliers and shifts are required", op);
    for (int32_t c = 0; c < n; c++) {
#ifdef RG_FREESTANDING /* no stdio on a microcontroller: the message names the op only */
        const char *what = op;
#else
        char what[96];
        snprintf(what, sizeof what, "%s: channel %d", op, (int)c);
#endif
        rg_status st = rg_q_multiplier_check(m[c], s[c], what, err);
        if (st) return st;
    }
    return RG_OK;
}
