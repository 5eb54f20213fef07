/* The integer reference kernels of the channel, multiply and lookup-table
 * ops (regain/quant_kernels.h) against computations written here:
 *   exact:  split, shuffle, the per-channel clamp, a concat input with the
 *           output's parameters and the table lookup are data movement:
 *           compared with direct indexing, bit for bit;
 *   double: concat with rescaling, multiply and the lookup tables are
 *           re-derived in long double from the real values (dequantize,
 *           compute, quantize with the output's parameters) and must agree
 *           within 1 LSB (the integer requantization rounds twice, SRDHM
 *           then the right shift: a few per cent are one LSB off; the
 *           tables round once, so only exact ties may differ);
 *   worked: the numbers of docs/quantization.md §3, exactly. */
#include "test_support.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "regain/quant.h"
#include "regain/quant_kernels.h"
#include "regain/rng.h"

static void random_s8(int8_t *x, size_t n, uint64_t seed)
{
    rg_rng r = rg_rng_keyed(seed, 0, 0);
    for (size_t i = 0; i < n; i++) x[i] = (int8_t)((int)rg_rng_below(&r, 256) - 128);
}

/* clamp(round(v) + zp) in long double, round half away from zero */
static int32_t quantize_ld(long double v, rg_qparams q)
{
    long double r = roundl(v / (long double)q.scale) + q.zero_point;
    return r < -128 ? -128 : r > 127 ? 127 : (int32_t)r;
}

static void test_split_shuffle_clamp(void **state)
{
    (void)state;
    enum { ROWS = 37, C = 12 };
    int8_t x[ROWS * C], y[ROWS * C], z[ROWS * C];
    random_s8(x, sizeof x, 1);
    /* split: every begin and width */
    for (int32_t b = 0; b < C; b++)
        for (int32_t w = 1; b + w <= C; w++) {
            CHECK(rg_q_split_s8(x, ROWS, C, b, w, y, &E));
            for (int r = 0; r < ROWS; r++)
                for (int k = 0; k < w; k++) assert_int_equal(y[r * w + k], x[r * C + b + k]);
        }
    /* shuffle: the formula, and groups g then C/g is the identity */
    const int32_t groups[] = {1, 2, 3, 4, 6, 12};
    for (size_t gi = 0; gi < sizeof groups / sizeof groups[0]; gi++) {
        int32_t g = groups[gi], per = C / g;
        CHECK(rg_q_shuffle_s8(x, ROWS, C, g, y, &E));
        for (int r = 0; r < ROWS; r++)
            for (int32_t a = 0; a < g; a++)
                for (int32_t j = 0; j < per; j++) assert_int_equal(y[r * C + j * g + a], x[r * C + a * per + j]);
        CHECK(rg_q_shuffle_s8(y, ROWS, C, per, z, &E));
        assert_memory_equal(z, x, sizeof x);
    }
    /* per-channel clamp, in place */
    int32_t hi[C];
    for (int k = 0; k < C; k++) hi[k] = -100 + 20 * k;
    memcpy(y, x, sizeof x);
    CHECK(rg_q_clamp_channels_s8(y, ROWS, C, hi, y, &E));
    for (int r = 0; r < ROWS; r++)
        for (int k = 0; k < C; k++) assert_int_equal(y[r * C + k], x[r * C + k] < hi[k] ? x[r * C + k] : hi[k]);
    /* bad parameters name the kernel and the field */
    rg_error err = {0};
    assert_int_equal(rg_q_split_s8(x, ROWS, C, 8, 5, y, &err), RG_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "split_s8"));
    assert_int_equal(rg_q_shuffle_s8(x, ROWS, C, 5, y, &err), RG_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "groups 5"));
    hi[3] = 128;
    assert_int_equal(rg_q_clamp_channels_s8(x, ROWS, C, hi, y, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "hi[3]"));
}

static void test_concat(void **state)
{
    (void)state;
    enum { ROWS = 300 };
    const rg_qparams in[3] = {{0.05f, -10}, {0.013f, 40}, {0.1f, 3}}, out = {0.05f, -10};
    const int32_t c[3] = {5, 3, 7};
    rg_q_concat_params p;
    CHECK(rg_q_concat_prepare(3, in, c, out, &p, &E));
    assert_int_equal(p.multiplier[0], 1 << 30); /* M = 1: a copy */
    assert_int_equal(p.shift[0], 1);
    int8_t x0[ROWS * 5], x1[ROWS * 3], x2[ROWS * 7], y[ROWS * 15];
    random_s8(x0, sizeof x0, 2);
    random_s8(x1, sizeof x1, 3);
    random_s8(x2, sizeof x2, 4);
    const int8_t *xs[3] = {x0, x1, x2};
    CHECK(rg_q_concat_s8(&p, xs, ROWS, y, &E));
    int off = 0;
    for (int r = 0; r < ROWS; r++) {
        for (int k = 0; k < 5; k++) assert_int_equal(y[r * 15 + k], x0[r * 5 + k]);
        for (int i = 1; i < 3; i++)
            for (int k = 0; k < c[i]; k++) {
                int32_t q = xs[i][r * c[i] + k];
                long double real = (long double)in[i].scale * (q - in[i].zero_point);
                int32_t want = quantize_ld(real, out), got = y[r * 15 + (i == 1 ? 5 : 8) + k];
                assert_true(abs(got - want) <= 1);
                off += got != want;
            }
    }
    /* MBQM rounds twice for small |q - z| (SRDHM to an integer, then the
     * right shift): a few per cent land one LSB from the double result */
    print_message("concat: %d of %d rescaled values off by one LSB\n", off, ROWS * 10);
    assert_true(off < ROWS * 10 / 10);
    rg_error err = {0};
    p.n_in = 5;
    assert_int_equal(rg_q_concat_s8(&p, xs, ROWS, y, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "n_in 5"));
}

/* All 65536 pairs: a [256 pixels, 256 channels] with a[r, k] = r - 128 times
 * the per-channel gate b[k] = k - 128 (broadcast). */
static void test_mul(void **state)
{
    (void)state;
    const rg_qparams p1[] = {{0.05f, -10}, {0.0037f, 127}, {0.2f, -128}};
    const rg_qparams p2[] = {{0.02f, 3}, {1.0f / 256, -128}, {0.01f, 0}};
    const rg_qparams po[] = {{0.1f, 5}, {0.0021f, -7}, {0.3f, 20}};
    int8_t *a = malloc(65536), b[256], *y = malloc(65536), *y2 = malloc(65536), *bf = malloc(65536);
    for (int r = 0; r < 256; r++)
        for (int k = 0; k < 256; k++) a[r * 256 + k] = (int8_t)(r - 128);
    for (int k = 0; k < 256; k++) b[k] = (int8_t)(k - 128);
    for (int s = 0; s < 3; s++) {
        rg_q_mul_params p;
        CHECK(rg_q_mul_prepare(p1[s], p2[s], po[s], RG_Q_ACT_NONE, &p, &E));
        CHECK(rg_q_mul_s8(&p, a, b, 1, 256, 256, 1, y, &E));
        int off = 0;
        for (int r = 0; r < 256; r++)
            for (int k = 0; k < 256; k++) {
                long double real = (long double)p1[s].scale * (r - 128 - p1[s].zero_point) * (long double)p2[s].scale *
                                   (k - 128 - p2[s].zero_point);
                int32_t want = quantize_ld(real, po[s]), got = y[r * 256 + k];
                if (abs(got - want) > 1) fail_msg("mul set %d: %d x %d gives %d, double %d", s, r - 128, k - 128, got, want);
                off += got != want;
            }
        print_message("mul set %d: %d of 65536 products off by one LSB\n", s, off);
        assert_true(off < 65536 / 20);
        /* the same gate as a full tensor (b_hw = hw) gives the same bits */
        for (int r = 0; r < 256; r++) memcpy(bf + r * 256, b, 256);
        CHECK(rg_q_mul_s8(&p, a, bf, 1, 256, 256, 256, y2, &E));
        assert_memory_equal(y, y2, 65536);
    }
    /* batch: image n's gate applies to image n only */
    rg_q_mul_params p;
    CHECK(rg_q_mul_prepare(p1[0], p2[0], po[0], RG_Q_ACT_RELU, &p, &E));
    int8_t x2[2 * 4 * 3], g2[2 * 3], yb[2 * 4 * 3], y1[4 * 3];
    random_s8(x2, sizeof x2, 5);
    random_s8(g2, sizeof g2, 6);
    CHECK(rg_q_mul_s8(&p, x2, g2, 2, 4, 3, 1, yb, &E));
    for (int n = 0; n < 2; n++) {
        CHECK(rg_q_mul_s8(&p, x2 + n * 12, g2 + n * 3, 1, 4, 3, 1, y1, &E));
        assert_memory_equal(yb + n * 12, y1, 12);
    }
    for (int i = 0; i < 24; i++) assert_true(yb[i] >= po[0].zero_point); /* the ReLU clamp */
    rg_error err = {0};
    assert_int_equal(rg_q_mul_s8(&p, a, b, 1, 256, 256, 7, y, &err), RG_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "b_hw"));
    p.shift = 31;
    assert_int_equal(rg_q_mul_s8(&p, a, b, 1, 256, 256, 1, y, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "mul_s8"));
    free(a), free(y), free(y2), free(bf);
}

/* docs/quantization.md §3, "Multiply": the worked example */
static void test_mul_worked_example(void **state)
{
    (void)state;
    rg_q_mul_params p;
    CHECK(rg_q_mul_prepare((rg_qparams){0.05f, -10}, (rg_qparams){0.02f, 3}, (rg_qparams){0.1f, 5}, RG_Q_ACT_NONE,
                           &p, &E));
    print_message("mul example: multiplier %d shift %d\n", (int)p.multiplier, (int)p.shift);
    assert_int_equal(p.multiplier, 1374389504);
    assert_int_equal(p.shift, -6);
    int8_t a = 30, b = 53, y;
    CHECK(rg_q_mul_s8(&p, &a, &b, 1, 1, 1, 1, &y, &E));
    assert_int_equal(rg_q_mul_by_multiplier(2000, p.multiplier, p.shift), 20);
    assert_int_equal(y, 25);
}

static long double hswish_ld(long double x)
{
    long double r = fminl(fmaxl(x + 3, 0), 6);
    return x * r / 6;
}

static void test_lut(void **state)
{
    (void)state;
    const rg_qparams ins[] = {{0.05f, -10}, {0.0625f, 0}, {0.031f, 100}, {0.2f, -128}};
    const rg_qparams outs[] = {{0.04f, -20}, {1.0f / 256, -128}, {0.017f, -50}, {0.01f, 0}};
    int8_t x[256], y[256], table[256];
    for (int i = 0; i < 256; i++) x[i] = (int8_t)(i - 128);
    for (int fn = RG_Q_LUT_HSWISH; fn <= RG_Q_LUT_SIGMOID; fn++)
        for (int s = 0; s < 4; s++) {
            CHECK(rg_q_lut_build((rg_q_lut_fn)fn, ins[s], outs[s], table, &E));
            int off = 0;
            for (int q = -128; q < 128; q++) {
                long double xr = (long double)ins[s].scale * (q - ins[s].zero_point);
                long double f = fn == RG_Q_LUT_HSWISH ? hswish_ld(xr) : 1.0L / (1.0L + expl(-xr));
                int32_t want = quantize_ld(f, outs[s]);
                assert_true(abs(table[q + 128] - want) <= 1);
                off += table[q + 128] != want;
            }
            assert_true(off <= 2); /* only exact ties can round differently */
            /* the kernel is the table, exactly; in place too */
            CHECK(rg_q_lut_s8(table, x, 256, y, &E));
            for (int i = 0; i < 256; i++) assert_int_equal(y[i], table[i]);
            memcpy(y, x, 256);
            CHECK(rg_q_lut_s8(table, y, 256, y, &E));
            assert_memory_equal(y, table, 256);
        }
    /* worked examples of docs/quantization.md §3, "Lookup tables" */
    CHECK(rg_q_lut_build(RG_Q_LUT_HSWISH, ins[0], outs[0], table, &E));
    assert_int_equal(table[50 + 128], 55);   /* x = 3.0: hswish 3.0, 3.0 / 0.04 - 20 */
    assert_int_equal(table[-70 + 128], -20); /* x = -3.0: hswish 0 -> the zero point */
    assert_int_equal(table[-40 + 128], -29); /* x = -1.5: hswish -0.375 -> -9.375 -> -9 - 20 */
    CHECK(rg_q_lut_build(RG_Q_LUT_SIGMOID, ins[1], outs[1], table, &E));
    assert_int_equal(table[16 + 128], 59);   /* x = 1.0: 0.7310586 * 256 = 187.15 -> 187 - 128 */
    assert_int_equal(table[0 + 128], 0);     /* x = 0: 0.5 * 256 - 128 */
    rg_error err = {0};
    assert_int_equal(rg_q_lut_build((rg_q_lut_fn)7, ins[0], outs[0], table, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "function 7"));
    assert_int_equal(rg_q_lut_build(RG_Q_LUT_HSWISH, (rg_qparams){0.0f, 0}, outs[0], table, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "input"));
    assert_int_equal(rg_q_lut_s8(NULL, x, 4, y, &err), RG_ERR_ARG);
    assert_string_equal(rg_q_lut_fn_name(RG_Q_LUT_SIGMOID), "sigmoid");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_shuffle_clamp), cmocka_unit_test(test_concat),
        cmocka_unit_test(test_mul),                 cmocka_unit_test(test_mul_worked_example),
        cmocka_unit_test(test_lut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
