/* Fixed-point requantization (regain/quant.h) against values worked out by
 * hand and against independent re-derivations written here with 128-bit
 * integers and exact doubles (not the gemmlowp formulation the library
 * uses):
 *   srdhm(a, b)  = floor(a*b / 2^31 + 1/2)            (ties toward +inf)
 *   rdbpot(x, e) = round-half-away(x / 2^e)            (exact in double)
 *   mul(x, m, s) = rdbpot(srdhm(x * 2^max(s,0), m), max(-s,0)) */
#include "test_support.h"

#include <math.h>
#include <string.h>

#include "regain/quant.h"
#include "regain/rng.h"

static int32_t ref_srdhm(int32_t a, int32_t b)
{
    __int128 num = (__int128)2 * a * b + ((__int128)1 << 31); /* 2ab/2^32 + 1/2 = (2ab + 2^31) / 2^32 */
    __int128 den = (__int128)1 << 32;
    __int128 q = num / den;
    if (num % den != 0 && num < 0) q -= 1; /* floor */
    if (q > INT32_MAX) q = INT32_MAX;
    return (int32_t)q;
}

static int32_t ref_rdbpot(int32_t x, int32_t e)
{
    return (int32_t)llround((double)x / ldexp(1.0, e));
}

static int32_t ref_mul(int32_t x, int32_t m, int32_t s)
{
    int64_t y = (int64_t)x * ((int64_t)1 << (s > 0 ? s : 0));
    if (y > INT32_MAX) y = INT32_MAX;
    if (y < INT32_MIN) y = INT32_MIN;
    return ref_rdbpot(ref_srdhm((int32_t)y, m), s > 0 ? 0 : -s);
}

static void expect_multiplier(double real, int32_t want_m, int32_t want_s)
{
    int32_t m = -1, s = -99;
    CHECK(rg_q_multiplier(real, &m, &s, &E));
    if (m != want_m || s != want_s)
        fail_msg("multiplier(%.17g) = (%d, %d), expected (%d, %d)", real, m, s, want_m, want_s);
}

static void test_multiplier_known(void **state)
{
    (void)state;
    expect_multiplier(0.5, 1 << 30, 0);              /* 0.5 = 2^30/2^31 * 2^0 */
    expect_multiplier(1.0, 1 << 30, 1);              /* 1 = 0.5 * 2^1 */
    expect_multiplier(0.75, 1610612736, 0);          /* 0.75 * 2^31 */
    expect_multiplier(0.25, 1 << 30, -1);
    expect_multiplier(3.0, 1610612736, 2);           /* 0.75 * 2^2 */
    expect_multiplier(0.0, 0, 0);
    /* f = 1 - 2^-40 rounds to 2^31 as Q31: renormalized to (2^30, shift + 1) */
    expect_multiplier(1.0 - ldexp(1.0, -40), 1 << 30, 1);
    /* just below 1 but representable: 1 - 2^-31 -> 2^31 - 1 */
    expect_multiplier(1.0 - ldexp(1.0, -31), INT32_MAX, 0);
    /* 1/3: round(2^31 * 2/3) = 1431655765, shift -1 */
    expect_multiplier(1.0 / 3.0, 1431655765, -1);
    /* tiny: 2^-32 = 0.5 * 2^-31 is the smallest kept; 2^-33 flushes to 0 */
    expect_multiplier(ldexp(1.0, -32), 1 << 30, -31);
    expect_multiplier(ldexp(1.0, -33), 0, 0);
    expect_multiplier(1e-20, 0, 0);
    /* largest: 2^29 has shift 30 */
    expect_multiplier(ldexp(1.0, 29), 1 << 30, 30);
}

static void test_multiplier_round_trip(void **state)
{
    (void)state;
    rg_rng r = rg_rng_keyed(7, 0, 0);
    double worst = 0.0;
    for (int i = 0; i < 20000; i++) {
        /* log-uniform over [1e-9, 1e8] */
        double real = pow(10.0, -9.0 + 17.0 * (double)rg_rng_uniform(&r));
        int32_t m, s;
        CHECK(rg_q_multiplier(real, &m, &s, &E));
        assert_true(m >= (1 << 30) && m <= INT32_MAX);
        double back = (double)m * ldexp(1.0, s - 31);
        double rel = fabs(back - real) / real;
        if (rel > worst) worst = rel;
    }
    /* rounding m in [2^30, 2^31) to an integer errs by at most 2^-31 relative */
    assert_true(worst <= ldexp(1.0, -31) * 1.0000001);
    assert_true(worst < 1e-9);
}

static void test_multiplier_rejects(void **state)
{
    (void)state;
    int32_t m, s;
    rg_error err = {0};
    assert_int_equal(rg_q_multiplier(NAN, &m, &s, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "multiplier"));
    assert_int_equal(rg_q_multiplier(INFINITY, &m, &s, &err), RG_ERR_ARG);
    assert_int_equal(rg_q_multiplier(-0.5, &m, &s, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, ">= 0"));
    assert_int_equal(rg_q_multiplier(ldexp(1.0, 30), &m, &s, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "shift 31"));
    assert_int_equal(rg_q_multiplier_check(1 << 30, 31, "conv1", &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "conv1: shift 31"));
    assert_int_equal(rg_q_multiplier_check(1 << 30, -32, "conv1", &err), RG_ERR_ARG);
    assert_int_equal(rg_q_multiplier_check(-1, 0, "conv1", &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "multiplier -1"));
    CHECK(rg_q_multiplier_check(1 << 30, -31, "conv1", &E));
    CHECK(rg_q_multiplier_check(INT32_MAX, 30, "conv1", &E));
}

static void test_srdhm(void **state)
{
    (void)state;
    /* the one overflow: (-2^31)^2 * 2 / 2^32 = 2^31 does not fit */
    assert_int_equal(rg_q_srdhm(INT32_MIN, INT32_MIN), INT32_MAX);
    assert_int_equal(rg_q_srdhm(INT32_MIN, INT32_MAX), -INT32_MAX);  /* -(2^31-1) exactly */
    assert_int_equal(rg_q_srdhm(INT32_MAX, INT32_MAX), INT32_MAX - 1); /* (2^31-1)^2/2^31 = 2^31 - 2 + 2^-31 */
    /* 0.5 * x with m = 2^30: ties (odd x) round toward +inf */
    assert_int_equal(rg_q_srdhm(5, 1 << 30), 3);   /* 2.5 -> 3 */
    assert_int_equal(rg_q_srdhm(-5, 1 << 30), -2); /* -2.5 -> -2 */
    assert_int_equal(rg_q_srdhm(-3, 1 << 30), -1); /* -1.5 -> -1 */
    assert_int_equal(rg_q_srdhm(-7, 3 << 28), -3); /* -7*0.375 = -2.625 -> -3 */
    assert_int_equal(rg_q_srdhm(100, 0), 0);
    rg_rng r = rg_rng_keyed(8, 0, 0);
    const int32_t edge[] = {0, 1, -1, 2, -2, INT32_MAX, INT32_MIN, INT32_MIN + 1, 1 << 30, -(1 << 30), 12345, -12345};
    for (size_t i = 0; i < 12; i++)
        for (size_t j = 0; j < 12; j++) assert_int_equal(rg_q_srdhm(edge[i], edge[j]), ref_srdhm(edge[i], edge[j]));
    for (int i = 0; i < 200000; i++) {
        int32_t a = (int32_t)rg_rng_u64(&r), b = (int32_t)rg_rng_u64(&r);
        if (i % 3 == 0) a >>= (int)rg_rng_below(&r, 31); /* small magnitudes too */
        if (rg_q_srdhm(a, b) != ref_srdhm(a, b))
            fail_msg("srdhm(%d, %d) = %d, reference %d", a, b, rg_q_srdhm(a, b), ref_srdhm(a, b));
    }
}

static void test_rdbpot(void **state)
{
    (void)state;
    /* halves round away from zero, negative ones included */
    assert_int_equal(rg_q_rdbpot(-1, 1), -1);  /* -0.5 -> -1 */
    assert_int_equal(rg_q_rdbpot(1, 1), 1);    /* 0.5 -> 1 */
    assert_int_equal(rg_q_rdbpot(-3, 1), -2);  /* -1.5 -> -2 */
    assert_int_equal(rg_q_rdbpot(3, 1), 2);
    assert_int_equal(rg_q_rdbpot(-5, 2), -1);  /* -1.25 -> -1 */
    assert_int_equal(rg_q_rdbpot(-6, 2), -2);  /* -1.5 -> -2 */
    assert_int_equal(rg_q_rdbpot(-7, 2), -2);  /* -1.75 -> -2 */
    assert_int_equal(rg_q_rdbpot(6, 2), 2);
    assert_int_equal(rg_q_rdbpot(-12, 3), -2); /* -1.5 -> -2 */
    assert_int_equal(rg_q_rdbpot(-11, 3), -1); /* -1.375 -> -1 */
    assert_int_equal(rg_q_rdbpot(42, 0), 42);
    assert_int_equal(rg_q_rdbpot(INT32_MIN, 31), -1);
    assert_int_equal(rg_q_rdbpot(INT32_MAX, 31), 1);
    assert_int_equal(rg_q_rdbpot(-(1 << 30), 31), -1); /* -0.5 -> -1 */
    assert_int_equal(rg_q_rdbpot((1 << 30) - 1, 31), 0);
    rg_rng r = rg_rng_keyed(9, 0, 0);
    for (int i = 0; i < 200000; i++) {
        int32_t x = (int32_t)rg_rng_u64(&r);
        if (i % 2) x >>= (int)rg_rng_below(&r, 31);
        int32_t e = (int32_t)rg_rng_below(&r, 32);
        if (rg_q_rdbpot(x, e) != ref_rdbpot(x, e))
            fail_msg("rdbpot(%d, %d) = %d, reference %d", x, e, rg_q_rdbpot(x, e), ref_rdbpot(x, e));
    }
}

static void test_mul_by_multiplier(void **state)
{
    (void)state;
    /* worked example of docs/quantization.md: M = 0.0123 -> (1690499128, -6);
     * acc 12345: 12345 * 0.0123 = 151.84 -> 152 */
    int32_t m, s;
    CHECK(rg_q_multiplier(0.0123, &m, &s, &E));
    assert_int_equal(m, 1690499128);
    assert_int_equal(s, -6);
    assert_int_equal(rg_q_srdhm(12345, m), 9718);
    assert_int_equal(rg_q_mul_by_multiplier(12345, m, s), 152);
    assert_int_equal(rg_q_mul_by_multiplier(-12345, m, s), -152);
    /* multipliers above 1 shift left first */
    CHECK(rg_q_multiplier(3.0, &m, &s, &E));
    assert_int_equal(rg_q_mul_by_multiplier(7, m, s), 21);
    /* (2^30 - 1) * 4 saturates to 2^31 - 1, then * 0.75 = 1610612735.25 */
    assert_int_equal(rg_q_mul_by_multiplier(INT32_MAX / 2, m, s), 1610612735);
    rg_rng r = rg_rng_keyed(10, 0, 0);
    for (int i = 0; i < 100000; i++) {
        double real = pow(10.0, -7.0 + 9.0 * (double)rg_rng_uniform(&r));
        CHECK(rg_q_multiplier(real, &m, &s, &E));
        int32_t x = (int32_t)(rg_rng_u64(&r) >> 40) - (1 << 23); /* |x| < 2^23, as accumulators are */
        int32_t got = rg_q_mul_by_multiplier(x, m, s);
        assert_int_equal(got, ref_mul(x, m, s));
        /* and it approximates x * real to within one unit (two roundings) */
        assert_true(fabs((double)got - (double)x * real) <= 1.0 + fabs((double)x * real) * 1e-9);
    }
}

static void test_requant_params(void **state)
{
    (void)state;
    const float ws[3] = {0.01f, 0.02f, 0.005f};
    int32_t m[3], s[3];
    CHECK(rg_q_requant_params(0.5f, ws, 3, 0.25f, 3, m, s, &E));
    for (int c = 0; c < 3; c++) {
        int32_t wm, wsft;
        CHECK(rg_q_multiplier((double)0.5f * (double)ws[c] / (double)0.25f, &wm, &wsft, &E));
        assert_int_equal(m[c], wm);
        assert_int_equal(s[c], wsft);
    }
    CHECK(rg_q_requant_params(0.5f, ws, 1, 0.25f, 3, m, s, &E)); /* per tensor: repeated */
    assert_int_equal(m[2], m[0]);
    assert_int_equal(s[2], s[0]);
    rg_error err = {0};
    assert_int_equal(rg_q_requant_params(0.5f, ws, 2, 0.25f, 3, m, s, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "2 weight scales for 3 channels"));
    assert_int_equal(rg_q_requant_params(0.0f, ws, 3, 0.25f, 3, m, s, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "input scale"));
    assert_int_equal(rg_q_requant_params(0.5f, ws, 3, -1.0f, 3, m, s, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "output scale"));
    const float bad[3] = {0.01f, NAN, 0.01f};
    assert_int_equal(rg_q_requant_params(0.5f, bad, 3, 0.25f, 3, m, s, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "channel 1"));
    const float huge[1] = {1e30f};
    assert_int_equal(rg_q_requant_params(1e5f, huge, 1, 1e-5f, 3, m, s, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "too large"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_multiplier_known),  cmocka_unit_test(test_multiplier_round_trip),
        cmocka_unit_test(test_multiplier_rejects), cmocka_unit_test(test_srdhm),
        cmocka_unit_test(test_rdbpot),            cmocka_unit_test(test_mul_by_multiplier),
        cmocka_unit_test(test_requant_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
