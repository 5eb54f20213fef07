/* Integer reference table lookup: an int8 -> int8 function tabulated at
 * lowering time (hard-swish, sigmoid; rg_q_lut_build), so that a device
 * does one load per value. Freestanding: the microcontroller export
 * compiles it. */
#include "quant/ref_check.h"

rg_status rg_q_lut_s8(const int8_t *table, const int8_t *x, int64_t n, int8_t *y, rg_error *err)
{
    if (!table) return rg_fail(err, RG_ERR_ARG, "lut_s8: table is required");
    if (n < 0) return rg_fail(err, RG_ERR_SHAPE, "lut_s8: n %lld must be >= 0", (long long)n);
    for (int64_t i = 0; i < n; i++) y[i] = table[(int32_t)x[i] + 128];
    return RG_OK;
}
