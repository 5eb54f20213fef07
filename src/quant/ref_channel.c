/* Integer reference kernels that move channels: split, shuffle, concat
 * (with requantization of each input) and the per-channel upper clamp.
 * Freestanding (memcpy only): the microcontroller export compiles them. */
#include "quant/ref_check.h"

#include <string.h>

static rg_status check_rows(const char *op, int64_t rows, rg_error *err)
{
    if (rows < 0) return rg_fail(err, RG_ERR_SHAPE, "%s: rows %lld must be >= 0", op, (long long)rows);
    return RG_OK;
}

rg_status rg_q_clamp_channels_s8(const int8_t *x, int64_t rows, int32_t c, const int32_t *hi, int8_t *y,
                                 rg_error *err)
{
    const char *op = "clamp_channels_s8";
    rg_status st;
    if ((st = check_rows(op, rows, err)) || (st = rg_qref_check_dim(op, "c", c, err))) return st;
    if (!hi) return rg_fail(err, RG_ERR_ARG, "%s: hi is required", op);
    for (int32_t k = 0; k < c; k++)
        if (hi[k] < RG_Q_ACT_MIN || hi[k] > RG_Q_ACT_MAX)
            return rg_fail(err, RG_ERR_ARG, "%s: hi[%d] = %d outside [-128, 127]", op, (int)k, (int)hi[k]);
    for (int64_t r = 0; r < rows; r++)
        for (int32_t k = 0; k < c; k++) {
            int32_t v = x[r * c + k];
            y[r * c + k] = (int8_t)(v > hi[k] ? hi[k] : v);
        }
    return RG_OK;
}

rg_status rg_q_split_s8(const int8_t *x, int64_t rows, int32_t in_c, int32_t begin, int32_t out_c, int8_t *y,
                        rg_error *err)
{
    const char *op = "split_s8";
    rg_status st;
    if ((st = check_rows(op, rows, err)) || (st = rg_qref_check_dim(op, "in_c", in_c, err)) ||
        (st = rg_qref_check_dim(op, "out_c", out_c, err)))
        return st;
    if (begin < 0 || begin > in_c - out_c)
        return rg_fail(err, RG_ERR_SHAPE, "%s: channels [%d, %d) outside the input's %d", op, (int)begin,
                       (int)begin + (int)out_c, (int)in_c);
    for (int64_t r = 0; r < rows; r++) memcpy(y + r * out_c, x + r * in_c + begin, (size_t)out_c);
    return RG_OK;
}

rg_status rg_q_shuffle_s8(const int8_t *x, int64_t rows, int32_t c, int32_t groups, int8_t *y, rg_error *err)
{
    const char *op = "shuffle_s8";
    rg_status st;
    if ((st = check_rows(op, rows, err)) || (st = rg_qref_check_dim(op, "c", c, err)) ||
        (st = rg_qref_check_dim(op, "groups", groups, err)))
        return st;
    if (c % groups)
        return rg_fail(err, RG_ERR_SHAPE, "%s: groups %d does not divide the %d channels", op, (int)groups, (int)c);
    int32_t per = c / groups;
    for (int64_t r = 0; r < rows; r++)
        for (int32_t g = 0; g < groups; g++)
            for (int32_t j = 0; j < per; j++) y[r * c + (int64_t)j * groups + g] = x[r * c + (int64_t)g * per + j];
    return RG_OK;
}

rg_status rg_q_concat_s8(const rg_q_concat_params *p, const int8_t *const *x, int64_t rows, int8_t *y,
                         rg_error *err)
{
    const char *op = "concat_s8";
    rg_status st;
    if ((st = check_rows(op, rows, err)) || (st = rg_qref_check_zp(op, "out_zp", p->out_zp, err))) return st;
    if (p->n_in < 1 || p->n_in > RG_Q_CONCAT_MAX)
        return rg_fail(err, RG_ERR_ARG, "%s: n_in %d outside [1, %d]", op, (int)p->n_in, RG_Q_CONCAT_MAX);
    int64_t out_c = 0;
    for (int32_t k = 0; k < p->n_in; k++) {
        if ((st = rg_qref_check_dim(op, "c", p->c[k], err)) || (st = rg_qref_check_zp(op, "in_zp", p->in_zp[k], err)) ||
            (st = rg_q_multiplier_check(p->multiplier[k], p->shift[k], "concat_s8: input", err)))
            return rg_error_prefix(err, "input %d", (int)k);
        out_c += p->c[k];
    }
    int64_t at = 0;
    for (int32_t k = 0; k < p->n_in; k++) {
        const int8_t *xk = x[k];
        const int32_t ck = p->c[k];
        /* M = 1 (2^30 * 2^(1 - 31)) with equal zero points is the identity */
        const int copy = p->multiplier[k] == (1 << 30) && p->shift[k] == 1 && p->in_zp[k] == p->out_zp;
        for (int64_t r = 0; r < rows; r++) {
            int8_t *yr = y + r * out_c + at;
            const int8_t *xr = xk + r * ck;
            if (copy) {
                memcpy(yr, xr, (size_t)ck);
                continue;
            }
            for (int32_t j = 0; j < ck; j++) {
                int64_t v = (int64_t)p->out_zp +
                            rg_q_mul_by_multiplier((int32_t)xr[j] - p->in_zp[k], p->multiplier[k], p->shift[k]);
                yr[j] = (int8_t)rg_qref_clamp(v, RG_Q_ACT_MIN, RG_Q_ACT_MAX);
            }
        }
        at += ck;
    }
    return RG_OK;
}
