/* Fake quantization (regain/fake_quant.h): the forward holds exactly the
 * integer path's values; the straight-through and LSQ gradients against
 * central finite differences where a derivative exists:
 *   - clipped values: y = s * (qmax - zp) (or qmin) is smooth in x and s, so
 *     finite differences give dy/dx = 0 and dy/ds = qmax - zp exactly;
 *   - unclipped values: y = s * round(x / s) is piecewise constant in x and
 *     s * k on each piece in s, so away from a rounding step the finite
 *     difference in s is round(x/s) (the true derivative); LSQ passes the
 *     rounding straight through, adding s * d(x/s)/ds = -x/s, so
 *     lsq = fd - x/s; and the STE's dy/dx = 1 is the finite difference of
 *     the same surrogate, y = s * (x/s), which the test evaluates.
 * Points within 1e-3 of a rounding step or the clamp edge, or whose rounding
 * changes within the difference's interval, are skipped (the derivative does
 * not exist there). */
#include "test_support.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "regain/fake_quant.h"
#include "regain/quant.h"
#include "regain/rng.h"

static float fq1(float x, rg_qparams p, int32_t qmin, int32_t qmax)
{
    float y;
    CHECK(rg_fq_forward(&x, 1, p, qmin, qmax, &y, &E));
    return y;
}

/* distance of x/s to the nearest rounding step (a half-integer) */
static double step_distance(double u)
{
    return fabs(u - floor(u) - 0.5);
}

static void test_forward_matches_integer_path(void **state)
{
    (void)state;
    rg_rng r = rg_rng_keyed(31, 0, 0);
    enum { N = 10000 };
    float x[N], y[N], back[N];
    int8_t q[N];
    rg_qparams p = {0.037f, -17};
    for (int i = 0; i < N; i++) x[i] = 6.0f * rg_rng_normal(&r);
    CHECK(rg_fq_forward(x, N, p, -128, 127, y, &E));
    CHECK(rg_q_quantize(x, N, p, -128, 127, q, &E));
    rg_q_dequantize(q, N, p, back);
    assert_memory_equal(y, back, sizeof y);
    /* idempotent: a fake-quantized tensor is on the grid already */
    CHECK(rg_fq_forward(y, N, p, -128, 127, back, &E));
    assert_memory_equal(y, back, sizeof y);
    /* in place */
    CHECK(rg_fq_forward(x, N, p, -128, 127, x, &E));
    assert_memory_equal(x, y, sizeof y);
    rg_error err = {0};
    assert_int_equal(rg_fq_forward(x, N, (rg_qparams){0.0f, 0}, -128, 127, y, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "fake quantization: scale 0"));
    assert_int_equal(rg_fq_forward(x, N, (rg_qparams){0.1f, 300}, -128, 127, y, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "zero point 300"));
}

static void test_ste_and_lsq(void **state)
{
    (void)state;
    rg_rng r = rg_rng_keyed(32, 0, 0);
    const int32_t qmin = -128, qmax = 127;
    int checked_in = 0, checked_out = 0;
    for (int t = 0; t < 4000; t++) {
        rg_qparams p = {0.01f + 0.1f * rg_rng_uniform(&r), (int32_t)rg_rng_below(&r, 101) - 50};
        float x = p.scale * 180.0f * (2.0f * rg_rng_uniform(&r) - 1.0f); /* about half clipped */
        float dy = rg_rng_normal(&r);
        double u = (double)x / p.scale, v = round(u) + p.zero_point;
        if (step_distance(u) < 1e-3) continue;
        if (fabs(v - qmin) < 2 || fabs(v - qmax) < 2) continue;
        float dx;
        double ds = 0.0;
        rg_fq_backward_lsq(&x, &dy, 1, p, qmin, qmax, 1.0f, &dx, &ds);
        float dx_ste;
        rg_fq_backward_ste(&x, &dy, 1, p, qmin, qmax, &dx_ste);
        assert_true(dx == dx_ste);
        /* finite differences in double around the float point */
        double hs = 1e-3 * p.scale, hx = 1e-4 * p.scale;
        rg_qparams sp = p, sm = p;
        sp.scale = (float)(p.scale + hs);
        sm.scale = (float)(p.scale - hs);
        /* the rounding must not step inside the difference's interval */
        if (roundf(x / sp.scale) != roundf(x / p.scale) || roundf(x / sm.scale) != roundf(x / p.scale)) continue;
        double fd_s = ((double)fq1(x, sp, qmin, qmax) - fq1(x, sm, qmin, qmax)) / ((double)sp.scale - sm.scale);
        int clipped = v < qmin || v > qmax;
        if (clipped) {
            double want = (v < qmin ? qmin : qmax) - p.zero_point;
            assert_true(fabs(fd_s - want) <= 1e-3 * fabs(want) + 1e-3);
            assert_true(fabs(ds - dy * want) <= 1e-6 * fabs(dy * want) + 1e-6);
            double fd_x = ((double)fq1(x + (float)hx, p, qmin, qmax) - fq1(x - (float)hx, p, qmin, qmax)) / (2 * hx);
            assert_true(fd_x == 0.0);
            assert_true(dx == 0.0f);
            checked_out++;
        } else {
            /* the true derivative in s is round(x/s) = v - zp on this piece */
            assert_true(fabs(fd_s - (v - p.zero_point)) <= 2e-2);
            double lsq_want = fd_s - (double)x / p.scale;
            if (fabs(ds - dy * lsq_want) > 2e-2 * (fabs(dy) + 1e-3))
                fail_msg("lsq ds %g, finite differences %g (x %g, s %g, zp %d)", ds, dy * lsq_want, x, p.scale,
                         p.zero_point);
            /* STE: the surrogate with the rounding removed, y = s * (x/s), has dy/dx = 1 */
            double fd_x = (((double)x + hx) - ((double)x - hx)) / (2 * hx);
            assert_true(fabs((double)dx - dy * fd_x) <= 1e-6 * fabs(dy));
            checked_in++;
        }
    }
    print_message("checked %d unclipped and %d clipped points\n", checked_in, checked_out);
    assert_true(checked_in > 500 && checked_out > 500);
}

/* Summed over a tensor: ds = g * sum dy_i * dyi/ds with g = 1/sqrt(N Qp). */
static void test_lsq_sum_and_grad_scale(void **state)
{
    (void)state;
    assert_true(fabsf(rg_fq_lsq_grad_scale(100, 127) - (float)(1.0 / sqrt(12700.0))) < 1e-9f);
    assert_true(rg_fq_lsq_grad_scale(0, 127) == 1.0f);
    /* by hand: s = 0.5, zp = 0, q in [-4, 3]:
     *   x = 0.6: x/s = 1.2 -> round 1: dy/ds = 1 - 1.2 = -0.2, dx = dy
     *   x = 5.0: 10 -> clipped at 3: dy/ds = 3, dx = 0
     *   x = -3.0: -6 -> clipped at -4: dy/ds = -4, dx = 0
     *   x = -0.8: -1.6 -> -2: dy/ds = -2 + 1.6 = -0.4, dx = dy
     * with dy = (1, 2, 3, 4): sum = -0.2 + 6 - 12 - 1.6 = -7.8; times g = 0.5 */
    const float x[4] = {0.6f, 5.0f, -3.0f, -0.8f}, dy[4] = {1, 2, 3, 4};
    float dx[4];
    double ds = 1.0; /* accumulates */
    rg_fq_backward_lsq(x, dy, 4, (rg_qparams){0.5f, 0}, -4, 3, 0.5f, dx, &ds);
    assert_true(fabs(ds - (1.0 - 3.9)) < 1e-6);
    const float want_dx[4] = {1, 0, 0, 4};
    assert_memory_equal(dx, want_dx, sizeof dx);
    /* per channel: the same per row */
    const float w[8] = {0.6f, 5.0f, -3.0f, -0.8f, 0.6f, 5.0f, -3.0f, -0.8f}, dyy[8] = {1, 2, 3, 4, 1, 2, 3, 4};
    const float scales[2] = {0.5f, 0.25f};
    float dw[8], y[8];
    double dsc[2] = {0, 0};
    rg_fq_backward_lsq_channels(w, dyy, 2, 4, scales, -4, 3, 1.0f, dw, dsc);
    assert_true(fabs(dsc[0] - (-7.8)) < 1e-6);
    /* row 1, s = 0.25: 0.6 -> 2.4 -> 2: 2 - 2.4 = -0.4; 5 -> 3; -3 -> -4; -0.8 -> -3.2 -> -3: -3 + 3.2 = 0.2
     * sum = -0.4 + 6 - 12 + 0.8 = -5.6 */
    assert_true(fabs(dsc[1] - (-5.6)) < 1e-6);
    float dw2[8];
    rg_fq_backward_ste_channels(w, dyy, 2, 4, scales, -4, 3, dw2);
    assert_memory_equal(dw, dw2, sizeof dw);
    CHECK(rg_fq_forward_channels(w, 2, 4, scales, -4, 3, y, &E));
    const float want_y[8] = {0.5f, 1.5f, -2.0f, -1.0f, 0.5f, 0.75f, -1.0f, -0.75f};
    assert_memory_equal(y, want_y, sizeof y);
    rg_error err = {0};
    const float bad[2] = {0.5f, -1.0f};
    assert_int_equal(rg_fq_forward_channels(w, 2, 4, bad, -4, 3, y, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "channel 1"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_matches_integer_path),
        cmocka_unit_test(test_ste_and_lsq),
        cmocka_unit_test(test_lsq_sum_and_grad_scale),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
