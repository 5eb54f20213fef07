/* Validation shared by the integer reference kernels (internal). */
#ifndef REGAIN_QUANT_REF_CHECK_H
#define REGAIN_QUANT_REF_CHECK_H

#include "regain/quant_kernels.h"

/* Each returns RG_OK or fails err with a message "<op>: <field> ..." */
rg_status rg_qref_check_dim(const char *op, const char *field, int32_t v, rg_error *err);
rg_status rg_qref_check_zp(const char *op, const char *field, int32_t zp, rg_error *err);
rg_status rg_qref_check_act(const char *op, int32_t lo, int32_t hi, rg_error *err);
/* multipliers and shifts (rg_q_multiplier_check each), or when scales is
 * not NULL the fp32 scales (finite, >= 0) instead */
rg_status rg_qref_check_requant(const char *op, const int32_t *m, const int32_t *s, const float *scales, int32_t n,
                                rg_error *err);
/* Everything rg_q_conv2d_s8 checks (depthwise adds out_c == in_c); shared
 * with the int8 runtime's kernels, which validate once at prepare time. */
rg_status rg_qref_check_conv(const char *op, const rg_q_conv_params *p, rg_error *err);

/* clamp(v, lo, hi); 64-bit so that "requantized + zero point" cannot
 * overflow on the way (TFLite's int32 sum would, at saturation) */
static inline int32_t rg_qref_clamp(int64_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : v > hi ? hi : (int32_t)v;
}

/* An int64 accumulator saturated to int32. TFLite accumulates in int32;
 * the two agree whenever TFLite's sum does not overflow (always, for
 * reductions up to 65536 terms and reasonable biases). */
static inline int32_t rg_qref_sat32(int64_t v)
{
    return v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
}

/* Channel c's requantized output plus the zero point, before the clamp
 * (the fp32 rule clamps itself): the scales when given, else the
 * multipliers. */
static inline int64_t rg_qref_requant(const float *scales, const int32_t *m, const int32_t *s, int32_t c, int32_t acc,
                                      int32_t zp, int32_t act_min, int32_t act_max)
{
    if (scales) return rg_q_requant_fp32(acc, scales[c], zp, act_min, act_max);
    return (int64_t)rg_q_mul_by_multiplier(acc, m[c], s[c]) + zp;
}

#endif
