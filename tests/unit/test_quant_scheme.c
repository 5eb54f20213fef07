/* The int8 scheme (regain/quant.h): parameters from ranges, quantize and
 * dequantize, symmetric weights, int32 biases, and bad inputs. Expected
 * values are worked out by hand in the comments. */
#include "test_support.h"
#include "quant/qround.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "regain/quant.h"
#include "regain/rng.h"

static void test_params_from_range(void **state)
{
    (void)state;
    rg_qparams p;
    /* [0, 6] (ReLU6): scale 6/255, real 0 at -128 */
    CHECK(rg_q_params_from_range(0.0f, 6.0f, -128, 127, &p, &E));
    assert_true(p.scale == 6.0f / 255.0f);
    assert_int_equal(p.zero_point, -128);
    /* [2, 5] is widened to [0, 5] */
    CHECK(rg_q_params_from_range(2.0f, 5.0f, -128, 127, &p, &E));
    assert_true(p.scale == 5.0f / 255.0f);
    assert_int_equal(p.zero_point, -128);
    /* [-3, -1] is widened to [-3, 0]: real 0 at 127 */
    CHECK(rg_q_params_from_range(-3.0f, -1.0f, -128, 127, &p, &E));
    assert_true(p.scale == 3.0f / 255.0f);
    assert_int_equal(p.zero_point, 127);
    /* [-1, 3]: scale 4/255, zp = -128 - round(-63.75) = -128 + 64 = -64 */
    CHECK(rg_q_params_from_range(-1.0f, 3.0f, -128, 127, &p, &E));
    assert_true(p.scale == 4.0f / 255.0f);
    assert_int_equal(p.zero_point, -64);
    /* [0, 0]: the scale is floored at FLT_EPSILON (as PyTorch) */
    CHECK(rg_q_params_from_range(0.0f, 0.0f, -128, 127, &p, &E));
    assert_true(p.scale == FLT_EPSILON);
    assert_int_equal(p.zero_point, -128);
    /* any range: real 0 is exact, and the ends are represented within scale/2 */
    rg_rng r = rg_rng_keyed(3, 0, 0);
    for (int i = 0; i < 10000; i++) {
        float lo = -10.0f * rg_rng_uniform(&r) * (i % 4 == 0 ? 0.0f : 1.0f);
        float hi = 10.0f * rg_rng_uniform(&r) * (i % 4 == 1 ? 0.0f : 1.0f) + 1e-3f;
        CHECK(rg_q_params_from_range(lo, hi, -128, 127, &p, &E));
        assert_int_equal(rg_q_quantize_value(0.0f, p, -128, 127), p.zero_point);
        int8_t q;
        float back;
        CHECK(rg_q_quantize((float[]){0.0f}, 1, p, -128, 127, &q, &E));
        rg_q_dequantize(&q, 1, p, &back);
        assert_true(back == 0.0f);
        float rep_lo = p.scale * (float)(-128 - p.zero_point), rep_hi = p.scale * (float)(127 - p.zero_point);
        assert_true(rep_lo <= 0.0f && rep_hi >= 0.0f);
        assert_true(fabsf(rep_lo - fminf(lo, 0.0f)) <= p.scale * 0.5001f);
        assert_true(fabsf(rep_hi - hi) <= p.scale * 0.5001f);
    }
}

static void test_quantize_rounding(void **state)
{
    (void)state;
    rg_qparams p = {1.0f, 0};
    /* half away from zero (TFLite's std::round), not half to even */
    assert_int_equal(rg_q_quantize_value(2.5f, p, -128, 127), 3);
    assert_int_equal(rg_q_quantize_value(-2.5f, p, -128, 127), -3);
    assert_int_equal(rg_q_quantize_value(0.5f, p, -128, 127), 1);
    assert_int_equal(rg_q_quantize_value(-0.5f, p, -128, 127), -1);
    assert_int_equal(rg_q_quantize_value(2.4999f, p, -128, 127), 2);
    assert_int_equal(rg_q_quantize_value(1000.0f, p, -128, 127), 127);
    assert_int_equal(rg_q_quantize_value(-1000.0f, p, -128, 127), -128);
    assert_int_equal(rg_q_quantize_value(1e30f, p, -128, 127), 127);
    assert_int_equal(rg_q_quantize_value(INFINITY, p, -128, 127), 127);
    assert_int_equal(rg_q_quantize_value(-INFINITY, p, -128, 127), -128);
    p.zero_point = 7;
    assert_int_equal(rg_q_quantize_value(NAN, p, -128, 127), 7);
    /* scale 0.1, zp -3: 1.26 / 0.1 = 12.6 -> 13, + (-3) = 10; back 1.3 */
    p = (rg_qparams){0.1f, -3};
    float x[3] = {1.26f, -0.04f, -20.0f}, y[3];
    int8_t q[3];
    CHECK(rg_q_quantize(x, 3, p, -128, 127, q, &E));
    assert_int_equal(q[0], 10);
    assert_int_equal(q[1], -3);
    assert_int_equal(q[2], -128);
    rg_q_dequantize(q, 3, p, y);
    assert_true(fabsf(y[0] - 1.3f) < 1e-6f);
    assert_true(y[1] == 0.0f);
    assert_true(fabsf(y[2] - (-12.5f)) < 1e-5f);
}

static void test_weights(void **state)
{
    (void)state;
    /* two channels: max |w| 1.27 -> scale 0.01; max |w| 0.254 -> scale 0.002 */
    const float w[6] = {1.27f, -0.5f, 0.004f, -0.254f, 0.1f, 0.001f};
    int8_t q[6];
    float s[2];
    CHECK(rg_q_quantize_weights(w, 2, 3, 1, q, s, &E));
    assert_true(s[0] == 1.27f / 127.0f);
    assert_true(s[1] == 0.254f / 127.0f);
    const int8_t want[6] = {127, -50, 0, -127, 50, 1}; /* 0.004/0.01 = 0.4 -> 0; 0.001/0.002 = 0.5 -> 1 */
    assert_memory_equal(q, want, 6);
    /* per tensor: one scale 0.01 */
    CHECK(rg_q_quantize_weights(w, 2, 3, 0, q, s, &E));
    assert_true(s[0] == 1.27f / 127.0f);
    const int8_t want_t[6] = {127, -50, 0, -25, 10, 0};
    assert_memory_equal(q, want_t, 6);
    /* -128 is never produced, even for the most negative value */
    const float neg[2] = {-1.0f, 0.3f};
    CHECK(rg_q_quantize_weights(neg, 1, 2, 1, q, s, &E));
    assert_int_equal(q[0], -127);
    /* an all-zero channel: scale floored, q 0 */
    const float z[3] = {0, 0, 0};
    CHECK(rg_q_quantize_weights(z, 1, 3, 1, q, s, &E));
    assert_true(s[0] == FLT_EPSILON);
    assert_int_equal(q[0], 0);
    rg_error err = {0};
    const float bad[4] = {0.1f, 0.2f, 0.3f, NAN};
    assert_int_equal(rg_q_quantize_weights(bad, 2, 2, 1, q, s, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "channel 1 element 1"));
    assert_int_equal(rg_q_quantize_weights(w, 0, 3, 1, q, s, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "channels 0"));
}

static void test_bias(void **state)
{
    (void)state;
    /* s_in 0.5, s_w {0.01, 0.25}: bias scales 0.005 and 0.125 */
    const float b[2] = {1.0f, -0.3125f}, ws[2] = {0.01f, 0.25f};
    int32_t q[2], sat = -1;
    CHECK(rg_q_quantize_bias(b, 2, 0.5f, ws, 1, q, &sat, &E));
    assert_int_equal(q[0], 200);   /* 1 / 0.005 */
    assert_int_equal(q[1], -3);    /* -0.3125 / 0.125 = -2.5 exactly -> -3 (away from zero) */
    assert_int_equal(sat, 0);
    CHECK(rg_q_quantize_bias(b, 2, 0.5f, ws, 0, q, &sat, &E));
    assert_int_equal(q[1], -63);   /* per tensor: -0.3125 / 0.005 = -62.5 -> -63 */
    const float big[1] = {1e9f}, tiny_ws[1] = {1e-6f};
    CHECK(rg_q_quantize_bias(big, 1, 1e-3f, tiny_ws, 1, q, &sat, &E));
    assert_int_equal(q[0], INT32_MAX);
    assert_int_equal(sat, 1);
    rg_error err = {0};
    assert_int_equal(rg_q_quantize_bias(b, 2, 0.0f, ws, 1, q, NULL, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "input scale"));
    const float bad_ws[2] = {0.01f, -1.0f};
    assert_int_equal(rg_q_quantize_bias(b, 2, 0.5f, bad_ws, 1, q, NULL, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "channel 1"));
    const float bad_b[2] = {INFINITY, 0};
    assert_int_equal(rg_q_quantize_bias(bad_b, 2, 0.5f, ws, 1, q, NULL, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "channel 0"));
}

/* The inline rounding of the QAT loops (quant/qround.h) is C's roundf and
 * round, bit for bit (sign of zero included), on edge cases and on random
 * bit patterns across the whole range. */
static void test_inline_rounding(void **state)
{
    (void)state;
    const float edges[] = {0.0f, -0.0f, 0.5f, -0.5f, 1.5f, -1.5f, 2.5f, 0.49999997f, -0.49999997f,
                           8388607.5f, -8388607.5f, 8388608.0f, 16777217.0f, 1e30f, -1e30f, 1e-45f,
                           -1e-45f, INFINITY, -INFINITY, 0.99999994f, 4194303.5f};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
        float a = rg_q_roundf(edges[i]), b = roundf(edges[i]);
        assert_memory_equal(&a, &b, sizeof a);
        double c = rg_q_round((double)edges[i]), d = round((double)edges[i]);
        assert_memory_equal(&c, &d, sizeof c);
    }
    assert_true(isnan(rg_q_roundf(NAN)) && isnan(rg_q_round(NAN)));
    const double dedges[] = {4503599627370495.5, -4503599627370495.5, 0.49999999999999994, 2147483647.5};
    for (size_t i = 0; i < sizeof dedges / sizeof dedges[0]; i++) {
        double c = rg_q_round(dedges[i]), d = round(dedges[i]);
        assert_memory_equal(&c, &d, sizeof c);
    }
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 2000000; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        uint32_t bits = (uint32_t)s;
        float x;
        memcpy(&x, &bits, sizeof x);
        if (i % 2) x = (float)((int32_t)(s >> 40) - 8388608) / 16.0f; /* dense near the integers */
        if (isnan(x)) continue;
        float a = rg_q_roundf(x), b = roundf(x);
        if (memcmp(&a, &b, sizeof a)) fail_msg("rg_q_roundf(%a) = %a, roundf gives %a", (double)x, (double)a, (double)b);
        double xd;
        memcpy(&xd, &s, sizeof xd);
        if (isnan(xd)) continue;
        double c = rg_q_round(xd), d = round(xd);
        if (memcmp(&c, &d, sizeof c)) fail_msg("rg_q_round(%a) = %a, round gives %a", xd, c, d);
    }
}

static void test_bad_ranges_and_params(void **state)
{
    (void)state;
    rg_qparams p;
    rg_error err = {0};
    assert_int_equal(rg_q_params_from_range(NAN, 1.0f, -128, 127, &p, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "finite"));
    assert_int_equal(rg_q_params_from_range(-1.0f, INFINITY, -128, 127, &p, &err), RG_ERR_ARG);
    assert_int_equal(rg_q_params_from_range(2.0f, 1.0f, -128, 127, &p, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "lo 2 is above hi 1"));
    assert_int_equal(rg_q_params_from_range(0.0f, 1.0f, 5, 5, &p, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "qmin 5"));
    assert_int_equal(rg_q_params_from_range(-FLT_MAX, FLT_MAX, -128, 127, &p, &err), RG_ERR_ARG);
    assert_int_equal(rg_q_params_symmetric(-1.0f, 127, &p, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "absmax -1"));
    assert_int_equal(rg_q_params_symmetric(NAN, 127, &p, &err), RG_ERR_ARG);
    assert_int_equal(rg_q_params_symmetric(1.0f, 0, &p, &err), RG_ERR_ARG);
    assert_int_equal(rg_q_params_check((rg_qparams){0.0f, 0}, -128, 127, "conv1 input", &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "conv1 input: scale 0"));
    assert_int_equal(rg_q_params_check((rg_qparams){-0.5f, 0}, -128, 127, "x", &err), RG_ERR_ARG);
    assert_int_equal(rg_q_params_check((rg_qparams){NAN, 0}, -128, 127, "x", &err), RG_ERR_ARG);
    assert_int_equal(rg_q_params_check((rg_qparams){1e-40f, 0}, -128, 127, "x", &err), RG_ERR_ARG); /* subnormal */
    assert_int_equal(rg_q_params_check((rg_qparams){0.1f, 128}, -128, 127, "x", &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "zero point 128"));
    int8_t q[1];
    assert_int_equal(rg_q_quantize((float[]){1.0f}, 1, (rg_qparams){0.0f, 0}, -128, 127, q, &err), RG_ERR_ARG);
    assert_int_equal(rg_q_quantize((float[]){1.0f}, 1, (rg_qparams){1.0f, 0}, -128, 255, q, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "not within int8"));
    int32_t lo, hi;
    assert_int_equal(rg_q_activation_range((rg_q_activation)9, (rg_qparams){0.1f, 0}, &lo, &hi, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "unknown kind 9"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params_from_range), cmocka_unit_test(test_quantize_rounding),
        cmocka_unit_test(test_weights),           cmocka_unit_test(test_bias),
        cmocka_unit_test(test_bad_ranges_and_params), cmocka_unit_test(test_inline_rounding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
