/* The quantization code under AddressSanitizer and UndefinedBehaviorSanitizer
 * with extreme but legal inputs (saturation, the largest shifts, int8
 * extremes everywhere, observers fed 1e38 and 1e-38) and with bad
 * parameters, which must be refused before any memory is touched. */
#include "test_support.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "regain/fake_quant.h"
#include "regain/observer.h"
#include "regain/quant.h"
#include "regain/quant_kernels.h"

static void test_fixed_point_extremes(void **state)
{
    (void)state;
    const int32_t xs[] = {INT32_MIN, INT32_MIN + 1, -1, 0, 1, INT32_MAX};
    const int32_t ms[] = {0, 1, 1 << 30, INT32_MAX};
    for (size_t i = 0; i < 6; i++)
        for (size_t j = 0; j < 4; j++)
            for (int32_t s = RG_Q_SHIFT_MIN; s <= RG_Q_SHIFT_MAX; s++) {
                int32_t y = rg_q_mul_by_multiplier(xs[i], ms[j], s);
                (void)y;
            }
    for (int32_t e = 0; e <= 31; e++) {
        (void)rg_q_rdbpot(INT32_MIN, e);
        (void)rg_q_rdbpot(INT32_MAX, e);
    }
    assert_int_equal(rg_q_srdhm(INT32_MIN, INT32_MIN), INT32_MAX);
    int32_t m, s;
    CHECK(rg_q_multiplier(DBL_MIN, &m, &s, &E));
    assert_int_equal(m, 0);
    CHECK(rg_q_multiplier(ldexp(1.0, 30) * 0.9, &m, &s, &E));
    assert_int_equal(s, 30);
    /* just below 2^30, f rounds up to 1 and the shift would be 31: refused */
    assert_int_equal(rg_q_multiplier(ldexp(1.0, 30) * (1 - 1e-12), &m, &s, NULL), RG_ERR_ARG);
}

/* All-extreme int8 inputs with the largest multiplier: the accumulator and
 * the requantized value saturate without overflowing. */
static void test_kernels_saturate(void **state)
{
    (void)state;
    enum { C = 64, K = 7 };
    int8_t *x = malloc(K * K * C), *w = malloc(C * K * K * C), y[C];
    memset(x, -128, K * K * C);
    memset(w, 127, C * K * K * C);
    int32_t m[C], s[C], bias[C];
    for (int c = 0; c < C; c++) {
        m[c] = INT32_MAX;
        s[c] = RG_Q_SHIFT_MAX;
        bias[c] = INT32_MAX;
    }
    rg_q_conv_params p = {.batch = 1, .in_h = K, .in_w = K, .in_c = C, .out_h = 1, .out_w = 1, .out_c = C,
                          .k_h = K, .k_w = K, .stride_h = 1, .stride_w = 1, .dilation_h = 1, .dilation_w = 1,
                          .in_zp = 127, .out_zp = 127, .act_min = -128, .act_max = 127, .multipliers = m, .shifts = s};
    CHECK(rg_q_conv2d_s8(&p, x, w, bias, y, &E));
    p.in_c = p.out_c = C;
    CHECK(rg_q_depthwise_s8(&p, x, w, bias, y, &E));
    rg_q_fc_params f = {.batch = 1, .in_features = K * K * C, .out_features = C, .in_zp = 127, .out_zp = -128,
                        .act_min = -128, .act_max = 127, .multipliers = m, .shifts = s};
    CHECK(rg_q_fc_s8(&f, x, w, bias, y, &E));
    rg_q_add_params a = {.in1_zp = 127, .in2_zp = 127, .out_zp = 127, .left_shift = 20, .in1_multiplier = INT32_MAX,
                         .in1_shift = 0, .in2_multiplier = INT32_MAX, .in2_shift = 0, .out_multiplier = INT32_MAX,
                         .out_shift = 30, .act_min = -128, .act_max = 127};
    CHECK(rg_q_add_s8(&a, x, x, K * K * C, x, &E));
    rg_q_gap_params g = {.batch = 1, .h = K, .w = K, .c = C, .in_zp = 127, .out_zp = 127, .multiplier = INT32_MAX,
                         .shift = 30, .act_min = -128, .act_max = 127};
    CHECK(rg_q_gap_s8(&g, x, y, &E));
    free(x);
    free(w);
}

static void test_observers_extreme_ranges(void **state)
{
    (void)state;
    for (int kind = RG_OBS_MINMAX; kind <= RG_OBS_ENTROPY; kind++) {
        rg_obs_config c = rg_obs_default((rg_obs_kind)kind);
        rg_observer *o;
        CHECK(rg_obs_create(&c, &o, &E));
        const float tiny[3] = {1e-38f, -1e-38f, 0.0f}, huge[3] = {3e38f, -3e38f, 1.0f};
        CHECK(rg_obs_observe(o, tiny, 3, &E));
        CHECK(rg_obs_observe(o, huge, 3, &E)); /* the grid grows by ~1e76 */
        CHECK(rg_obs_observe(o, tiny, 3, &E));
        float lo, hi;
        CHECK(rg_obs_range(o, &lo, &hi, &E));
        assert_true(isfinite(lo) && isfinite(hi) && lo <= hi);
        rg_obs_free(o);
    }
}

static void test_bad_parameters(void **state)
{
    (void)state;
    rg_error err = {0};
    /* NULL data pointers are never read when the parameters are refused */
    rg_q_conv_params p = {0};
    assert_int_equal(rg_q_conv2d_s8(&p, NULL, NULL, NULL, NULL, &err), RG_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "batch 0"));
    rg_q_pool_params pp = {.batch = 1, .in_h = -3};
    assert_int_equal(rg_q_maxpool_s8(&pp, NULL, NULL, &err), RG_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "in_h -3"));
    rg_q_gap_params g = {.batch = 1, .h = 1 << 12, .w = 1 << 12, .c = 1, .multiplier = 1 << 30};
    assert_int_equal(rg_q_gap_s8(&g, NULL, NULL, &err), RG_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "h*w"));
    rg_q_add_params a = {.left_shift = 40, .in1_multiplier = 1, .in2_multiplier = 1, .out_multiplier = 1,
                         .act_min = -128, .act_max = 127};
    assert_int_equal(rg_q_add_s8(&a, NULL, NULL, 1, NULL, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "left_shift 40"));
    rg_qparams q;
    assert_int_equal(rg_q_params_from_range(-INFINITY, 0.0f, -128, 127, &q, &err), RG_ERR_ARG);
    assert_int_equal(rg_fq_forward(NULL, 1, (rg_qparams){INFINITY, 0}, -128, 127, NULL, &err), RG_ERR_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed_point_extremes),
        cmocka_unit_test(test_kernels_saturate),
        cmocka_unit_test(test_observers_extreme_ranges),
        cmocka_unit_test(test_bad_parameters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
