/* Observers (regain/observer.h): exact extremes and moving averages worked
 * by hand; histogram percentiles against sorted data; MSE and entropy ranges
 * against what they promise on data with outliers; exact bookkeeping when
 * the histogram grows; bad inputs. */
#include "test_support.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "regain/observer.h"
#include "regain/quant.h"
#include "regain/rng.h"

static rg_observer *make(rg_obs_kind kind)
{
    rg_obs_config c = rg_obs_default(kind);
    rg_observer *o;
    CHECK(rg_obs_create(&c, &o, &E));
    return o;
}

static int cmpf(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static void test_minmax(void **state)
{
    (void)state;
    rg_observer *o = make(RG_OBS_MINMAX);
    float lo, hi;
    rg_error err = {0};
    assert_int_equal(rg_obs_range(o, &lo, &hi, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "no values"));
    CHECK(rg_obs_observe(o, (float[]){0.5f, -1.0f, 2.0f}, 3, &E));
    CHECK(rg_obs_observe(o, (float[]){3.0f, 0.0f}, 2, &E));
    CHECK(rg_obs_observe(o, NULL, 0, &E));
    CHECK(rg_obs_range(o, &lo, &hi, &E));
    assert_true(lo == -1.0f && hi == 3.0f);
    assert_int_equal(rg_obs_count(o), 5);
    /* a NaN is rejected, naming its index, and changes nothing */
    assert_int_equal(rg_obs_observe(o, (float[]){100.0f, NAN}, 2, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "value 1"));
    CHECK(rg_obs_range(o, &lo, &hi, &E));
    assert_true(hi == 3.0f);
    assert_int_equal(rg_obs_count(o), 5);
    assert_int_equal(rg_obs_observe(o, (float[]){INFINITY}, 1, &err), RG_ERR_ARG);
    rg_obs_free(o);
}

static void test_moving_average(void **state)
{
    (void)state;
    rg_obs_config c = rg_obs_default(RG_OBS_MOVING_AVG);
    c.momentum = 0.5;
    rg_observer *o;
    CHECK(rg_obs_create(&c, &o, &E));
    /* first batch sets (-1, 2); then (-3, 4): -1 + 0.5*(-3+1) = -2, 2 + 0.5*(4-2) = 3;
     * then (0, 1): -2 + 0.5*2 = -1, 3 + 0.5*(1-3) = 2 */
    CHECK(rg_obs_observe(o, (float[]){-1.0f, 2.0f, 0.0f}, 3, &E));
    CHECK(rg_obs_observe(o, (float[]){4.0f, -3.0f}, 2, &E));
    float lo, hi;
    CHECK(rg_obs_range(o, &lo, &hi, &E));
    assert_true(lo == -2.0f && hi == 3.0f);
    CHECK(rg_obs_observe(o, (float[]){0.0f, 1.0f}, 2, &E));
    CHECK(rg_obs_range(o, &lo, &hi, &E));
    assert_true(lo == -1.0f && hi == 2.0f);
    rg_obs_free(o);
}

/* Normal data fed in batches whose range grows (the histogram merges
 * several times): percentiles within two bins of the sorted data's. */
static void test_percentile(void **state)
{
    (void)state;
    enum { N = 200000 };
    float *x = malloc(sizeof(float) * N), *s = malloc(sizeof(float) * N);
    rg_rng r = rg_rng_keyed(21, 0, 0);
    for (int i = 0; i < N; i++) x[i] = rg_rng_normal(&r) * 2.0f + 0.5f;
    memcpy(s, x, sizeof(float) * N);
    qsort(s, N, sizeof(float), cmpf);
    const double ps[] = {99.0, 99.9, 99.99, 100.0};
    for (size_t t = 0; t < 4; t++) {
        rg_obs_config c = rg_obs_default(RG_OBS_PERCENTILE);
        c.percentile = ps[t];
        rg_observer *o;
        CHECK(rg_obs_create(&c, &o, &E));
        /* batches of growing size: the first sees a narrow range */
        size_t at = 0, b = 10;
        while (at < N) {
            size_t m = at + b > N ? N - at : b;
            CHECK(rg_obs_observe(o, x + at, m, &E));
            at += m;
            b *= 3;
        }
        float lo, hi;
        CHECK(rg_obs_range(o, &lo, &hi, &E));
        double qh = ps[t] / 100.0, ql = 1.0 - qh;
        float want_hi = s[(size_t)fmin(qh * N, N - 1)], want_lo = s[(size_t)(ql * N)];
        float bin = (s[N - 1] - fminf(s[0], 0.0f)) / 2048.0f * 3.0f; /* the grid may be up to 3x coarser */
        if (fabsf(hi - want_hi) > 2 * bin || fabsf(lo - want_lo) > 2 * bin)
            fail_msg("percentile %g: [%g, %g], sorted data [%g, %g] (bin %g)", ps[t], lo, hi, want_lo, want_hi, bin);
        if (ps[t] == 100.0) assert_true(hi == s[N - 1] && lo == s[0]); /* clipped to the exact extremes */
        rg_obs_free(o);
    }
    free(x);
    free(s);
}

static double data_mse(const float *x, size_t n, float lo, float hi, int bits)
{
    int32_t qmin = -(1 << (bits - 1)), qmax = (1 << (bits - 1)) - 1;
    rg_qparams p;
    CHECK(rg_q_params_from_range(lo, hi, qmin, qmax, &p, &E));
    double e = 0;
    for (size_t i = 0; i < n; i++) {
        float back = p.scale * (float)(rg_q_quantize_value(x[i], p, qmin, qmax) - p.zero_point);
        e += ((double)back - x[i]) * ((double)back - x[i]);
    }
    return e / (double)n;
}

/* MSE: the range it picks is (nearly) as good on the raw data as the best
 * of a brute-force search over symmetric shrinkings of [min, max]; with 4
 * bits on normal data it clips well inside the extremes (the optimum is
 * about 2.5 sigma), with 8 bits and two far outliers it keeps them (cutting
 * them would cost more than the coarser grid does). */
static void test_mse(void **state)
{
    (void)state;
    enum { N = 100000 };
    float *x = malloc(sizeof(float) * N);
    rg_rng r = rg_rng_keyed(22, 0, 0);
    for (int bits = 4; bits <= 8; bits += 4)
        for (int dist = 0; dist < 3; dist++) {
            for (int i = 0; i < N; i++) {
                float u = rg_rng_uniform(&r);
                x[i] = dist == 0   ? rg_rng_normal(&r)
                       : dist == 1 ? (u < 0.5f ? 1.0f : -1.0f) * -logf(1.0f - rg_rng_uniform(&r)) /* Laplace */
                                   : fmaxf(rg_rng_normal(&r), 0.0f) * 3.0f;                     /* after a ReLU */
            }
            if (dist == 0) {
                x[17] = 60.0f;
                x[99] = -40.0f;
            }
            rg_obs_config c = rg_obs_default(RG_OBS_MSE);
            c.num_bits = bits;
            rg_observer *o, *mm = make(RG_OBS_MINMAX);
            CHECK(rg_obs_create(&c, &o, &E));
            for (size_t at = 0; at < N; at += 5000) {
                CHECK(rg_obs_observe(o, x + at, 5000, &E));
                CHECK(rg_obs_observe(mm, x + at, 5000, &E));
            }
            float lo, hi, mlo, mhi;
            CHECK(rg_obs_range(o, &lo, &hi, &E));
            CHECK(rg_obs_range(mm, &mlo, &mhi, &E));
            double got = data_mse(x, N, lo, hi, bits), best = INFINITY;
            for (int i = 1; i <= 200; i++) {
                float a = (float)i / 200.0f;
                double e = data_mse(x, N, a * fminf(mlo, 0.0f), a * mhi, bits);
                if (e < best) best = e;
            }
            print_message("bits %d dist %d: mse range [%g, %g] of [%g, %g]: %g, brute force %g, min/max %g\n", bits, dist,
                          lo, hi, mlo, mhi, got, best, data_mse(x, N, mlo, mhi, bits));
            assert_true(got <= best * 1.05);
            if (bits == 4 && dist == 0) assert_true(hi < 4.0f && hi > 1.5f && lo > -4.0f && lo < -1.5f);
            rg_obs_free(o);
            rg_obs_free(mm);
        }
    free(x);
}

/* Entropy (KL): clips the tail of normal data with outliers, symmetric
 * [-T, T]; one-sided data (after a ReLU) gets [0, T]. */
static void test_entropy(void **state)
{
    (void)state;
    enum { N = 100000 };
    float *x = malloc(sizeof(float) * N);
    rg_rng r = rg_rng_keyed(23, 0, 0);
    for (int i = 0; i < N; i++) x[i] = rg_rng_normal(&r);
    x[17] = 60.0f;
    x[99] = -40.0f;
    rg_observer *ent = make(RG_OBS_ENTROPY);
    for (size_t at = 0; at < N; at += 1000) CHECK(rg_obs_observe(ent, x + at, 1000, &E));
    float lo, hi;
    CHECK(rg_obs_range(ent, &lo, &hi, &E));
    print_message("entropy range [%g, %g]\n", lo, hi);
    assert_true(lo == -hi);
    assert_true(hi > 2.0f && hi < 20.0f);
    rg_obs_free(ent);
    for (int i = 0; i < N; i++) x[i] = fmaxf(rg_rng_normal(&r), 0.0f);
    x[5] = 50.0f;
    ent = make(RG_OBS_ENTROPY);
    CHECK(rg_obs_observe(ent, x, N, &E));
    CHECK(rg_obs_range(ent, &lo, &hi, &E));
    print_message("entropy one-sided [%g, %g]\n", lo, hi);
    assert_true(lo == 0.0f && hi > 2.0f && hi < 20.0f);
    rg_obs_free(ent);
    free(x);
}

/* The histogram merges exactly: every value counted once however the data
 * is batched, and all-zero batches before the first non-zero are kept. */
static void test_histogram_bookkeeping(void **state)
{
    (void)state;
    rg_obs_config c = rg_obs_default(RG_OBS_PERCENTILE);
    c.percentile = 75.0;
    rg_observer *o;
    CHECK(rg_obs_create(&c, &o, &E));
    float zeros[300] = {0};
    CHECK(rg_obs_observe(o, zeros, 300, &E));
    float lo, hi;
    CHECK(rg_obs_range(o, &lo, &hi, &E));
    assert_true(lo == 0.0f && hi == 0.0f);
    /* then 100 values at 10 and 100 at -1000: 75% of the mass is <= 0 ... */
    float a[100], b[100];
    for (int i = 0; i < 100; i++) {
        a[i] = 10.0f;
        b[i] = -1000.0f;
    }
    CHECK(rg_obs_observe(o, a, 100, &E));
    CHECK(rg_obs_observe(o, b, 100, &E)); /* grows the grid 100x to the left */
    assert_int_equal(rg_obs_count(o), 500);
    CHECK(rg_obs_range(o, &lo, &hi, &E));
    /* 500 values: 100 at -1000, 300 at 0, 100 at 10. The 25th percentile
     * (125th value) is in the bin of 0, the 75th (375th) too. */
    double w = 1010.0 / 2047.0 * 2.0; /* the bin width is at most about this */
    assert_true(fabs(lo) <= w && fabs(hi) <= w);
    rg_obs_free(o);
}

static void test_channel_minmax_and_bad_config(void **state)
{
    (void)state;
    const float w[6] = {1, -2, 3, -0.5f, 0.25f, 0};
    float lo[2], hi[2];
    CHECK(rg_obs_channel_minmax(w, 2, 3, lo, hi, &E));
    assert_true(lo[0] == -2 && hi[0] == 3 && lo[1] == -0.5f && hi[1] == 0.25f);
    rg_error err = {0};
    const float bad[4] = {0, 0, 0, NAN};
    assert_int_equal(rg_obs_channel_minmax(bad, 2, 2, lo, hi, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "channel 1 element 1"));
    assert_int_equal(rg_obs_channel_minmax(w, 0, 3, lo, hi, &err), RG_ERR_ARG);
    rg_observer *o;
    rg_obs_config c = rg_obs_default(RG_OBS_MOVING_AVG);
    c.momentum = 0.0;
    assert_int_equal(rg_obs_create(&c, &o, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "momentum 0"));
    assert_null(o);
    c = rg_obs_default(RG_OBS_PERCENTILE);
    c.percentile = 101;
    assert_int_equal(rg_obs_create(&c, &o, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "percentile 101"));
    c = rg_obs_default(RG_OBS_MSE);
    c.bins = 4;
    assert_int_equal(rg_obs_create(&c, &o, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "bins 4"));
    c = rg_obs_default(RG_OBS_ENTROPY);
    c.num_bits = 1;
    assert_int_equal(rg_obs_create(&c, &o, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "num_bits 1"));
    c = rg_obs_default(RG_OBS_ENTROPY);
    c.bins = 256;
    assert_int_equal(rg_obs_create(&c, &o, &err), RG_ERR_ARG);
    c.kind = (rg_obs_kind)42;
    assert_int_equal(rg_obs_create(&c, &o, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "unknown kind 42"));
    rg_obs_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minmax),
        cmocka_unit_test(test_moving_average),
        cmocka_unit_test(test_percentile),
        cmocka_unit_test(test_mse),
        cmocka_unit_test(test_entropy),
        cmocka_unit_test(test_histogram_bookkeeping),
        cmocka_unit_test(test_channel_minmax_and_bad_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
