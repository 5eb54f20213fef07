/* Integer reference elementwise add with rescaling (TFLite's int8 add): the
 * two inputs have their own scales, so each is brought to a common scale
 * (2 * the larger input scale, with 20 bits of headroom) before summing,
 * then the sum is rescaled to the output. Derivation: docs/quantization.md. */
#include "quant/ref_check.h"

#ifndef RG_FREESTANDING /* host only: the exported microcontroller copy keeps the kernel */
#include <math.h>

rg_status rg_q_add_prepare(rg_qparams in1, rg_qparams in2, rg_qparams out, rg_q_activation act,
                           rg_q_add_params *p, rg_error *err)
{
    rg_status st;
    if ((st = rg_q_params_check(in1, RG_Q_ACT_MIN, RG_Q_ACT_MAX, "add: input 1", err)) ||
        (st = rg_q_params_check(in2, RG_Q_ACT_MIN, RG_Q_ACT_MAX, "add: input 2", err)) ||
        (st = rg_q_params_check(out, RG_Q_ACT_MIN, RG_Q_ACT_MAX, "add: output", err)))
        return st;
    p->left_shift = 20;
    double twice_max = 2.0 * fmax((double)in1.scale, (double)in2.scale);
    double m1 = (double)in1.scale / twice_max, m2 = (double)in2.scale / twice_max;
    double mo = twice_max / ((double)(1 << p->left_shift) * (double)out.scale);
    if ((st = rg_q_multiplier(m1, &p->in1_multiplier, &p->in1_shift, err)) ||
        (st = rg_q_multiplier(m2, &p->in2_multiplier, &p->in2_shift, err)) ||
        (st = rg_q_multiplier(mo, &p->out_multiplier, &p->out_shift, err)))
        return rg_error_prefix(err, "add");
    p->in1_zp = in1.zero_point;
    p->in2_zp = in2.zero_point;
    p->out_zp = out.zero_point;
    return rg_q_activation_range(act, out, &p->act_min, &p->act_max, err);
}
#endif

rg_status rg_q_add_s8(const rg_q_add_params *p, const int8_t *a, const int8_t *b, int64_t n, int8_t *y,
                      rg_error *err)
{
    const char *op = "add_s8";
    rg_status st;
    if ((st = rg_qref_check_zp(op, "in1_zp", p->in1_zp, err)) || (st = rg_qref_check_zp(op, "in2_zp", p->in2_zp, err)) ||
        (st = rg_qref_check_zp(op, "out_zp", p->out_zp, err)) || (st = rg_qref_check_act(op, p->act_min, p->act_max, err)) ||
        (st = rg_q_multiplier_check(p->in1_multiplier, p->in1_shift, "add_s8: input 1", err)) ||
        (st = rg_q_multiplier_check(p->in2_multiplier, p->in2_shift, "add_s8: input 2", err)) ||
        (st = rg_q_multiplier_check(p->out_multiplier, p->out_shift, "add_s8: output", err)))
        return st;
    if (p->left_shift < 0 || p->left_shift > 22)
        return rg_fail(err, RG_ERR_ARG, "add_s8: left_shift %d outside [0, 22]", (int)p->left_shift);
    if (n < 0) return rg_fail(err, RG_ERR_SHAPE, "add_s8: n %lld must be >= 0", (long long)n);
    const float s1 = p->in1_scale, s2 = p->in2_scale;
    if (s1 != 0.0f || s2 != 0.0f) {
        /* fp32: both finite and > 0 */
        if (!(s1 > 0.0f && rg_q_scale_valid(s1)) || !(s2 > 0.0f && rg_q_scale_valid(s2)))
            return rg_fail(err, RG_ERR_ARG, "add_s8: in1_scale %g / in2_scale %g must both be finite and > 0 (or both 0)",
                           (double)s1, (double)s2);
        for (int64_t i = 0; i < n; i++) {
            /* volatile: each product rounded on its own, never fused into the sum */
            volatile float u = (float)((int32_t)a[i] - p->in1_zp) * s1, w = (float)((int32_t)b[i] - p->in2_zp) * s2;
            y[i] = (int8_t)rg_q_round_fp32(u + w, p->out_zp, p->act_min, p->act_max);
        }
        return RG_OK;
    }
    for (int64_t i = 0; i < n; i++) {
        /* |x - zp| <= 255 and 255 * 2^22 < 2^31: no overflow */
        int32_t v1 = ((int32_t)a[i] - p->in1_zp) * (1 << p->left_shift);
        int32_t v2 = ((int32_t)b[i] - p->in2_zp) * (1 << p->left_shift);
        int32_t s1 = rg_q_mul_by_multiplier(v1, p->in1_multiplier, p->in1_shift);
        int32_t s2 = rg_q_mul_by_multiplier(v2, p->in2_multiplier, p->in2_shift);
        int64_t sum = (int64_t)s1 + s2;
        int64_t r = (int64_t)rg_q_mul_by_multiplier(rg_qref_sat32(sum), p->out_multiplier, p->out_shift) + p->out_zp;
        y[i] = (int8_t)rg_qref_clamp(r, p->act_min, p->act_max);
    }
    return RG_OK;
}
