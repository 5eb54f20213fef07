/* Integer reference multiply with broadcast (TFLite's int8 Mul): the
 * product of the two zero-point-corrected inputs, rescaled once by
 * s1 * s2 / s_out. Derivation and a worked example: docs/quantization.md.
 * Freestanding: the microcontroller export compiles it. */
#include "quant/ref_check.h"

rg_status rg_q_mul_s8(const rg_q_mul_params *p, const int8_t *a, const int8_t *b, int32_t batch, int64_t hw,
                      int32_t c, int64_t b_hw, int8_t *y, rg_error *err)
{
    const char *op = "mul_s8";
    rg_status st;
    if ((st = rg_qref_check_zp(op, "in1_zp", p->in1_zp, err)) || (st = rg_qref_check_zp(op, "in2_zp", p->in2_zp, err)) ||
        (st = rg_qref_check_zp(op, "out_zp", p->out_zp, err)) || (st = rg_qref_check_act(op, p->act_min, p->act_max, err)) ||
        (st = rg_q_multiplier_check(p->multiplier, p->shift, op, err)) || (st = rg_qref_check_dim(op, "batch", batch, err)) ||
        (st = rg_qref_check_dim(op, "c", c, err)))
        return st;
    if (hw < 1) return rg_fail(err, RG_ERR_SHAPE, "%s: hw %lld must be >= 1", op, (long long)hw);
    if (b_hw != 1 && b_hw != hw)
        return rg_fail(err, RG_ERR_SHAPE, "%s: b_hw %lld must be 1 (broadcast) or hw %lld", op, (long long)b_hw,
                       (long long)hw);
    for (int32_t n = 0; n < batch; n++)
        for (int64_t r = 0; r < hw; r++) {
            const int8_t *ar = a + ((int64_t)n * hw + r) * c;
            const int8_t *br = b + ((int64_t)n * b_hw + (b_hw == 1 ? 0 : r)) * c;
            int8_t *yr = y + ((int64_t)n * hw + r) * c;
            for (int32_t k = 0; k < c; k++) {
                /* |a - zp| <= 255: the product fits easily in int32 */
                int32_t acc = ((int32_t)ar[k] - p->in1_zp) * ((int32_t)br[k] - p->in2_zp);
                int64_t v = (int64_t)p->out_zp + rg_q_mul_by_multiplier(acc, p->multiplier, p->shift);
                yr[k] = (int8_t)rg_qref_clamp(v, p->act_min, p->act_max);
            }
        }
    return RG_OK;
}
