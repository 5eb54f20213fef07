/* Integer reference kernels (regain/quant_kernels.h) against two independent
 * computations written here:
 *   exact:  the TFLite formula re-derived in this file (int64 accumulator,
 *           requantization with 128-bit integers and exact doubles), which
 *           must agree bit for bit;
 *   float:  the layer computed in double from the dequantized inputs,
 *           weights and bias, then quantized with the output's parameters,
 *           which must agree within 1 LSB (the integer path rounds twice).
 * Shapes, strides, paddings, zero points and scales are drawn at random, and
 * the output scale is fitted to the float outputs so that the whole int8
 * range is used (and clamps and saturation happen). */
#include "test_support.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "regain/quant.h"
#include "regain/quant_kernels.h"
#include "regain/rng.h"

/* ---- independent requantization ---- */

static int32_t ref_srdhm(int32_t a, int32_t b)
{
    __int128 num = (__int128)2 * a * b + ((__int128)1 << 31), den = (__int128)1 << 32;
    __int128 q = num / den;
    if (num % den != 0 && num < 0) q -= 1;
    return q > INT32_MAX ? INT32_MAX : (int32_t)q;
}

static int32_t ref_mul(int64_t x, int32_t m, int32_t s)
{
    if (x > INT32_MAX) x = INT32_MAX;
    if (x < INT32_MIN) x = INT32_MIN;
    int64_t y = x * ((int64_t)1 << (s > 0 ? s : 0));
    if (y > INT32_MAX) y = INT32_MAX;
    if (y < INT32_MIN) y = INT32_MIN;
    return (int32_t)llround((double)ref_srdhm((int32_t)y, m) / ldexp(1.0, s > 0 ? 0 : -s));
}

static int32_t clampi(int64_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : v > hi ? hi : (int32_t)v;
}

static int8_t rnd_i8(rg_rng *r, int lo, int hi)
{
    return (int8_t)(lo + (int)rg_rng_below(r, (uint32_t)(hi - lo + 1)));
}

static int32_t worst_lsb;

static void expect_close(const char *what, int8_t got, double real, rg_qparams out, int32_t lo, int32_t hi)
{
    double q = round(real / out.scale) + out.zero_point;
    int32_t want = clampi((int64_t)fmax(fmin(q, 1e9), -1e9), lo, hi);
    int32_t d = abs((int32_t)got - want);
    if (d > worst_lsb) worst_lsb = d;
    if (d > 1) fail_msg("%s: int8 %d, float reference %d (real %g)", what, got, want, real);
}

/* ---- convolution ---- */

typedef struct {
    int32_t batch, h, w, ci, co, k_h, k_w, stride, dilation, pad, depthwise;
} conv_case;

static void run_conv(const conv_case *cc, uint64_t seed)
{
    rg_rng r = rg_rng_keyed(seed, 1, 0);
    int32_t oh = rg_q_out_size(cc->h, cc->k_h, cc->stride, cc->dilation, cc->pad, cc->pad);
    int32_t ow = rg_q_out_size(cc->w, cc->k_w, cc->stride, cc->dilation, cc->pad, cc->pad);
    assert_true(oh > 0 && ow > 0);
    int32_t co = cc->depthwise ? cc->ci : cc->co, kin = cc->depthwise ? 1 : cc->ci;
    size_t nx = (size_t)cc->batch * cc->h * cc->w * cc->ci, nw = (size_t)co * cc->k_h * cc->k_w * kin;
    size_t ny = (size_t)cc->batch * oh * ow * co;
    int8_t *x = malloc(nx), *w = malloc(nw), *y = malloc(ny);
    int32_t *bias = malloc(sizeof(int32_t) * co), *m = malloc(sizeof(int32_t) * co), *s = malloc(sizeof(int32_t) * co);
    float *ws = malloc(sizeof(float) * co);
    double *real = malloc(sizeof(double) * ny);
    int64_t *acc = malloc(sizeof(int64_t) * ny);
    rg_qparams in = {0.01f + 0.05f * rg_rng_uniform(&r), (int32_t)rnd_i8(&r, -128, 127)};
    for (size_t i = 0; i < nx; i++) x[i] = rnd_i8(&r, -128, 127);
    for (size_t i = 0; i < nw; i++) w[i] = rnd_i8(&r, -127, 127);
    for (int32_t c = 0; c < co; c++) {
        ws[c] = 0.001f + 0.02f * rg_rng_uniform(&r);
        bias[c] = (int32_t)rg_rng_below(&r, 20001) - 10000;
    }
    /* exact accumulators and float outputs */
    double lo = 0, hi = 0;
    for (int32_t n = 0; n < cc->batch; n++)
        for (int32_t i = 0; i < oh; i++)
            for (int32_t j = 0; j < ow; j++)
                for (int32_t o = 0; o < co; o++) {
                    int64_t a = bias[o];
                    double fr = (double)bias[o] * ((double)in.scale * ws[o]);
                    for (int32_t kh = 0; kh < cc->k_h; kh++)
                        for (int32_t kw = 0; kw < cc->k_w; kw++) {
                            int32_t ih = i * cc->stride - cc->pad + kh * cc->dilation;
                            int32_t iw = j * cc->stride - cc->pad + kw * cc->dilation;
                            if (ih < 0 || iw < 0 || ih >= cc->h || iw >= cc->w) continue;
                            for (int32_t c = 0; c < kin; c++) {
                                int32_t ic = cc->depthwise ? o : c;
                                int32_t xv = x[(((size_t)n * cc->h + ih) * cc->w + iw) * cc->ci + ic];
                                int32_t wv = w[(((size_t)o * cc->k_h + kh) * cc->k_w + kw) * kin + c];
                                a += (int64_t)(xv - in.zero_point) * wv;
                                fr += ((double)in.scale * (xv - in.zero_point)) * ((double)ws[o] * wv);
                            }
                        }
                    size_t idx = (((size_t)n * oh + i) * ow + j) * co + o;
                    acc[idx] = a;
                    real[idx] = fr;
                    if (fr < lo) lo = fr;
                    if (fr > hi) hi = fr;
                }
    /* output range a little inside the real one: the extremes clamp */
    rg_qparams out;
    CHECK(rg_q_params_from_range((float)(lo * 0.9), (float)(hi * 0.9), -128, 127, &out, &E));
    CHECK(rg_q_requant_params(in.scale, ws, co, out.scale, co, m, s, &E));
    int32_t amin, amax;
    CHECK(rg_q_activation_range(seed % 3 == 0 ? RG_Q_ACT_RELU6 : seed % 3 == 1 ? RG_Q_ACT_RELU : RG_Q_ACT_NONE, out,
                                &amin, &amax, &E));
    rg_q_conv_params p = {.batch = cc->batch, .in_h = cc->h, .in_w = cc->w, .in_c = cc->ci, .out_h = oh, .out_w = ow,
                          .out_c = co, .k_h = cc->k_h, .k_w = cc->k_w, .stride_h = cc->stride, .stride_w = cc->stride,
                          .dilation_h = cc->dilation, .dilation_w = cc->dilation, .pad_top = cc->pad,
                          .pad_left = cc->pad, .in_zp = in.zero_point, .out_zp = out.zero_point, .act_min = amin,
                          .act_max = amax, .multipliers = m, .shifts = s};
    if (cc->depthwise)
        CHECK(rg_q_depthwise_s8(&p, x, w, bias, y, &E));
    else
        CHECK(rg_q_conv2d_s8(&p, x, w, bias, y, &E));
    for (size_t i = 0; i < ny; i++) {
        int32_t o = (int32_t)(i % (size_t)co);
        int32_t want = clampi((int64_t)ref_mul(acc[i], m[o], s[o]) + out.zero_point, amin, amax);
        if (y[i] != want) fail_msg("conv %s output %zu: %d, TFLite formula %d", cc->depthwise ? "dw" : "dense", i, y[i], want);
        /* the float reference clamps the same way: ReLU/ReLU6 are clamps */
        expect_close("conv vs float", y[i], real[i], out, amin, amax);
    }
    /* pointwise: the fully connected kernel over pixels gives the same bits */
    if (!cc->depthwise && cc->k_h == 1 && cc->k_w == 1 && cc->stride == 1 && cc->pad == 0) {
        int8_t *y2 = malloc(ny);
        rg_q_fc_params f = {.batch = cc->batch * cc->h * cc->w, .in_features = cc->ci, .out_features = co,
                            .in_zp = in.zero_point, .out_zp = out.zero_point, .act_min = amin, .act_max = amax,
                            .multipliers = m, .shifts = s};
        CHECK(rg_q_pointwise_s8(&f, x, w, bias, y2, &E));
        assert_memory_equal(y, y2, ny);
        free(y2);
    }
    free(x); free(w); free(y); free(bias); free(m); free(s); free(ws); free(real); free(acc);
}

static void test_conv_dense(void **state)
{
    (void)state;
    const conv_case cases[] = {
        {1, 5, 5, 3, 4, 3, 3, 1, 1, 1, 0},  {2, 7, 6, 5, 7, 3, 3, 2, 1, 1, 0}, {1, 8, 8, 4, 3, 5, 5, 1, 1, 2, 0},
        {1, 9, 9, 2, 5, 3, 3, 1, 2, 2, 0},  {3, 6, 6, 16, 9, 1, 1, 1, 1, 0, 0}, {1, 4, 4, 33, 17, 1, 1, 1, 1, 0, 0},
        {1, 10, 10, 3, 8, 3, 3, 2, 1, 0, 0}, {1, 6, 7, 3, 2, 2, 3, 3, 1, 1, 0}, {2, 5, 5, 8, 8, 1, 1, 2, 1, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (uint64_t seed = 1; seed <= 3; seed++) run_conv(&cases[i], seed * 100 + i);
}

static void test_conv_depthwise(void **state)
{
    (void)state;
    const conv_case cases[] = {
        {1, 6, 6, 8, 0, 3, 3, 1, 1, 1, 1}, {2, 7, 7, 5, 0, 3, 3, 2, 1, 1, 1}, {1, 9, 8, 3, 0, 5, 5, 1, 1, 2, 1},
        {1, 9, 9, 17, 0, 3, 3, 1, 2, 2, 1}, {1, 4, 4, 6, 0, 3, 3, 2, 1, 0, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (uint64_t seed = 1; seed <= 3; seed++) run_conv(&cases[i], seed * 1000 + i);
}

static void test_fc(void **state)
{
    (void)state;
    rg_rng r = rg_rng_keyed(5, 0, 0);
    for (int t = 0; t < 8; t++) {
        int32_t b = 1 + (int32_t)rg_rng_below(&r, 4), k = 1 + (int32_t)rg_rng_below(&r, 100);
        int32_t o = 1 + (int32_t)rg_rng_below(&r, 20);
        int per_channel = t % 2;
        int8_t *x = malloc((size_t)b * k), *w = malloc((size_t)o * k), *y = malloc((size_t)b * o);
        int32_t *bias = malloc(sizeof(int32_t) * o), *m = malloc(sizeof(int32_t) * o), *s = malloc(sizeof(int32_t) * o);
        float *wf = malloc(sizeof(float) * o * k), *ws = malloc(sizeof(float) * o), *bf = malloc(sizeof(float) * o);
        double *real = malloc(sizeof(double) * b * o);
        rg_qparams in = {0.02f + 0.03f * rg_rng_uniform(&r), (int32_t)rnd_i8(&r, -100, 100)};
        for (int32_t i = 0; i < b * k; i++) x[i] = rnd_i8(&r, -128, 127);
        /* float weights and bias quantized by the library's own functions */
        for (int32_t i = 0; i < o * k; i++) wf[i] = 0.1f * rg_rng_normal(&r) * (1.0f + (float)(i / k));
        for (int32_t i = 0; i < o; i++) bf[i] = 0.2f * rg_rng_normal(&r);
        CHECK(rg_q_quantize_weights(wf, o, (size_t)k, per_channel, w, ws, &E));
        CHECK(rg_q_quantize_bias(bf, o, in.scale, ws, per_channel, bias, NULL, &E));
        double lo = 0, hi = 0;
        for (int32_t i = 0; i < b; i++)
            for (int32_t j = 0; j < o; j++) {
                float wsc = ws[per_channel ? j : 0];
                double a = (double)bias[j] * ((double)in.scale * wsc);
                for (int32_t l = 0; l < k; l++)
                    a += ((double)in.scale * (x[i * k + l] - in.zero_point)) * ((double)wsc * w[j * k + l]);
                real[i * o + j] = a;
                lo = fmin(lo, a);
                hi = fmax(hi, a);
            }
        rg_qparams out;
        CHECK(rg_q_params_from_range((float)lo, (float)hi, -128, 127, &out, &E));
        CHECK(rg_q_requant_params(in.scale, ws, per_channel ? o : 1, out.scale, o, m, s, &E));
        rg_q_fc_params p = {.batch = b, .in_features = k, .out_features = o, .in_zp = in.zero_point,
                            .out_zp = out.zero_point, .act_min = -128, .act_max = 127, .multipliers = m, .shifts = s};
        CHECK(rg_q_fc_s8(&p, x, w, bias, y, &E));
        for (int32_t i = 0; i < b; i++)
            for (int32_t j = 0; j < o; j++) {
                int64_t a = bias[j];
                for (int32_t l = 0; l < k; l++) a += (int64_t)(x[i * k + l] - in.zero_point) * w[j * k + l];
                assert_int_equal(y[i * o + j], clampi((int64_t)ref_mul(a, m[j], s[j]) + out.zero_point, -128, 127));
                expect_close("fc vs float", y[i * o + j], real[i * o + j], out, -128, 127);
            }
        /* no bias: the same as a zero bias */
        int8_t *y2 = malloc((size_t)b * o);
        memset(bias, 0, sizeof(int32_t) * o);
        CHECK(rg_q_fc_s8(&p, x, w, bias, y, &E));
        CHECK(rg_q_fc_s8(&p, x, w, NULL, y2, &E));
        assert_memory_equal(y, y2, (size_t)b * o);
        free(y2);
        free(x); free(w); free(y); free(bias); free(m); free(s); free(wf); free(ws); free(bf); free(real);
    }
}

/* ---- fp32 requantization ---- */

/* rg_q_requant_fp32 on values worked out by hand: ties go to the even
 * integer on both signs, the clamp comes before the zero point, a huge
 * product clamps instead of overflowing; and a layer with scales gives, for
 * every output, the rule applied to its accumulator. */
static void test_requant_fp32(void **state)
{
    (void)state;
    /* acc * 0.5: 3 -> 1.5 -> 2, 5 -> 2.5 -> 2, -3 -> -2, -5 -> -2, 7 -> 4 */
    const int32_t accs[] = {3, 5, -3, -5, 7, 1, -1, 0};
    const int32_t want[] = {2, 2, -2, -2, 4, 0, 0, 0};
    for (size_t i = 0; i < sizeof accs / sizeof accs[0]; i++)
        assert_int_equal(rg_q_requant_fp32(accs[i], 0.5f, 0, -128, 127), want[i]);
    assert_int_equal(rg_q_requant_fp32(10, 0.25f, 3, -128, 127), 3 + 2);    /* 2.5 -> 2, + zp */
    assert_int_equal(rg_q_requant_fp32(1000, 1.0f, 3, -128, 127), 127);     /* 997 clamped, then + 3 */
    assert_int_equal(rg_q_requant_fp32(-1000, 1.0f, -5, -20, 127), -20);
    assert_int_equal(rg_q_requant_fp32(INT32_MAX, 1e30f, 0, -128, 127), 127); /* no int overflow */
    assert_int_equal(rg_q_requant_fp32(INT32_MIN, 1e30f, 0, -128, 127), -128);
    assert_int_equal(rg_q_requant_fp32(12345, 0.0f, 7, -128, 127), 7);
    /* 16777217 is not a float: (float)acc rounds to 16777216 first */
    assert_int_equal(rg_q_requant_fp32(16777217, 0x1p-24f, 0, -128, 127), 1);

    rg_rng r = rg_rng_keyed(6, 0, 0);
    int8_t x[3 * 40], w[7 * 40], y[3 * 7];
    int32_t bias[7];
    float sc[7];
    for (int i = 0; i < 3 * 40; i++) x[i] = rnd_i8(&r, -128, 127);
    for (int i = 0; i < 7 * 40; i++) w[i] = rnd_i8(&r, -127, 127);
    for (int i = 0; i < 7; i++) bias[i] = (int32_t)rg_rng_below(&r, 20000) - 10000;
    for (int i = 0; i < 7; i++) sc[i] = i == 0 ? 0.5f : i == 1 ? 0.0f : 1e-4f + 0.01f * rg_rng_uniform(&r);
    rg_q_fc_params p = {.batch = 3, .in_features = 40, .out_features = 7, .in_zp = -3, .out_zp = 11,
                        .act_min = -100, .act_max = 120, .scales = sc};
    CHECK(rg_q_fc_s8(&p, x, w, bias, y, &E));
    for (int i = 0; i < 3; i++)
        for (int o = 0; o < 7; o++) {
            int32_t a = bias[o];
            for (int l = 0; l < 40; l++) a += (x[i * 40 + l] + 3) * w[o * 40 + l];
            assert_int_equal(y[i * 7 + o], rg_q_requant_fp32(a, sc[o], 11, -100, 120));
        }
    /* the multipliers are not needed, bad scales are refused by name */
    rg_error err = {0};
    sc[4] = NAN;
    assert_int_equal(rg_q_fc_s8(&p, x, w, bias, y, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "scales[4]"));
    sc[4] = -0.5f;
    assert_int_equal(rg_q_pointwise_s8(&p, x, w, bias, y, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "scales[4]"));
    sc[4] = INFINITY;
    assert_int_equal(rg_q_fc_s8(&p, x, w, bias, y, &err), RG_ERR_ARG);

    /* the add: (a - z1) s1 + (b - z2) s2, each product rounded, ties to even:
     * (3 - 1) * 0.75 + (0 - 2) * 0.5 = 0.5 -> 0; (4 - 1) * 0.75 + 0 = 2.25
     * -> 2; (5 - 1) * 0.75 + (5 - 2) * 0.5 = 4.5 -> 4; clamped at 10 - 3 */
    rg_q_add_params ap = {.in1_zp = 1, .in2_zp = 2, .out_zp = 3, .left_shift = 20, .in1_multiplier = 1 << 30,
                          .in2_multiplier = 1 << 30, .out_multiplier = 1 << 30, .act_min = -128, .act_max = 10,
                          .in1_scale = 0.75f, .in2_scale = 0.5f};
    const int8_t xa[4] = {3, 4, 5, 100}, xb[4] = {0, 2, 5, 100};
    int8_t ya[4];
    CHECK(rg_q_add_s8(&ap, xa, xb, 4, ya, &E));
    assert_int_equal(ya[0], 0 + 3);
    assert_int_equal(ya[1], 2 + 3);
    assert_int_equal(ya[2], 4 + 3);
    assert_int_equal(ya[3], 10);
}

/* ---- add ---- */

static void test_add(void **state)
{
    (void)state;
    /* the worked example of docs/quantization.md */
    rg_q_add_params ex;
    CHECK(rg_q_add_prepare((rg_qparams){0.02f, -10}, (rg_qparams){0.05f, 5}, (rg_qparams){0.06f, 3}, RG_Q_ACT_NONE,
                           &ex, &E));
    assert_int_equal(ex.in1_multiplier, 1717986854);
    assert_int_equal(ex.in1_shift, -2);
    assert_int_equal(ex.in2_multiplier, 1 << 30);
    assert_int_equal(ex.in2_shift, 0);
    assert_int_equal(ex.out_multiplier, 1789569773);
    assert_int_equal(ex.out_shift, -19);
    int8_t ea = 50, eb = 20, ey;
    CHECK(rg_q_add_s8(&ex, &ea, &eb, 1, &ey, &E));
    assert_int_equal(ey, 36);
    rg_rng r = rg_rng_keyed(6, 0, 0);
    enum { N = 4096 };
    int8_t a[N], b[N], y[N];
    for (int t = 0; t < 20; t++) {
        rg_qparams p1 = {0.005f + 0.1f * rg_rng_uniform(&r), (int32_t)rnd_i8(&r, -128, 127)};
        rg_qparams p2 = {0.005f + 0.1f * rg_rng_uniform(&r), (int32_t)rnd_i8(&r, -128, 127)};
        if (t == 0) p2 = p1; /* equal parameters: the common residual case */
        double lo = p1.scale * (-128 - p1.zero_point) + p2.scale * (-128 - p2.zero_point);
        double hi = p1.scale * (127 - p1.zero_point) + p2.scale * (127 - p2.zero_point);
        rg_qparams out;
        CHECK(rg_q_params_from_range((float)(lo * 0.8), (float)(hi * 0.8), -128, 127, &out, &E));
        rg_q_activation act = t % 3 == 2 ? RG_Q_ACT_RELU : RG_Q_ACT_NONE;
        rg_q_add_params p;
        CHECK(rg_q_add_prepare(p1, p2, out, act, &p, &E));
        assert_int_equal(p.left_shift, 20);
        for (int i = 0; i < N; i++) {
            a[i] = rnd_i8(&r, -128, 127);
            b[i] = rnd_i8(&r, -128, 127);
        }
        CHECK(rg_q_add_s8(&p, a, b, N, y, &E));
        for (int i = 0; i < N; i++) {
            /* TFLite's formula, re-derived */
            int32_t s1 = ref_mul((int64_t)(a[i] - p1.zero_point) * (1 << 20), p.in1_multiplier, p.in1_shift);
            int32_t s2 = ref_mul((int64_t)(b[i] - p2.zero_point) * (1 << 20), p.in2_multiplier, p.in2_shift);
            int32_t want = clampi((int64_t)ref_mul((int64_t)s1 + s2, p.out_multiplier, p.out_shift) + out.zero_point,
                                  p.act_min, p.act_max);
            if (y[i] != want) fail_msg("add %d: %d, TFLite formula %d", i, y[i], want);
            double real = (double)p1.scale * (a[i] - p1.zero_point) + (double)p2.scale * (b[i] - p2.zero_point);
            expect_close("add vs float", y[i], real, out, p.act_min, p.act_max);
        }
    }
}

/* ---- pooling ---- */

static void test_pool(void **state)
{
    (void)state;
    rg_rng r = rg_rng_keyed(11, 0, 0);
    const int32_t shapes[][6] = {/* h, w, c, k, stride, pad */
                                 {6, 6, 3, 2, 2, 0}, {7, 7, 5, 3, 2, 1}, {5, 8, 4, 3, 1, 1}, {9, 9, 2, 3, 3, 0}};
    for (size_t t = 0; t < 4; t++) {
        const int32_t *sh = shapes[t];
        int32_t oh = rg_q_out_size(sh[0], sh[3], sh[4], 1, sh[5], sh[5]);
        int32_t ow = rg_q_out_size(sh[1], sh[3], sh[4], 1, sh[5], sh[5]);
        int32_t nb = 2, c = sh[2];
        size_t nx = (size_t)nb * sh[0] * sh[1] * c, ny = (size_t)nb * oh * ow * c;
        int8_t *x = malloc(nx), *ya = malloc(ny), *ym = malloc(ny);
        for (size_t i = 0; i < nx; i++) x[i] = rnd_i8(&r, -128, 127);
        rg_q_pool_params p = {.batch = nb, .in_h = sh[0], .in_w = sh[1], .c = c, .out_h = oh, .out_w = ow,
                              .k_h = sh[3], .k_w = sh[3], .stride_h = sh[4], .stride_w = sh[4], .pad_top = sh[5],
                              .pad_left = sh[5], .act_min = -100, .act_max = 120};
        CHECK(rg_q_avgpool_s8(&p, x, ya, &E));
        CHECK(rg_q_maxpool_s8(&p, x, ym, &E));
        for (int32_t n = 0; n < nb; n++)
            for (int32_t i = 0; i < oh; i++)
                for (int32_t j = 0; j < ow; j++)
                    for (int32_t ch = 0; ch < c; ch++) {
                        double sum = 0;
                        int count = 0, mx = -1000;
                        for (int32_t a = 0; a < sh[3]; a++)
                            for (int32_t b = 0; b < sh[3]; b++) {
                                int32_t ih = i * sh[4] - sh[5] + a, iw = j * sh[4] - sh[5] + b;
                                if (ih < 0 || iw < 0 || ih >= sh[0] || iw >= sh[1]) continue;
                                int v = x[(((size_t)n * sh[0] + ih) * sh[1] + iw) * c + ch];
                                sum += v;
                                count++;
                                if (v > mx) mx = v;
                            }
                        size_t o = (((size_t)n * oh + i) * ow + j) * c + ch;
                        /* the mean of integers rounded half away from zero, in exact double */
                        assert_int_equal(ya[o], clampi(llround(sum / count), -100, 120));
                        assert_int_equal(ym[o], clampi(mx, -100, 120));
                    }
        free(x); free(ya); free(ym);
    }
}

static void test_gap(void **state)
{
    (void)state;
    rg_rng r = rg_rng_keyed(12, 0, 0);
    for (int t = 0; t < 10; t++) {
        int32_t nb = 2, h = 1 + (int32_t)rg_rng_below(&r, 8), w = 1 + (int32_t)rg_rng_below(&r, 8), c = 5;
        rg_qparams in = {0.01f + 0.1f * rg_rng_uniform(&r), (int32_t)rnd_i8(&r, -128, 127)};
        rg_qparams out = t == 0 ? in : (rg_qparams){in.scale * (0.3f + rg_rng_uniform(&r)), (int32_t)rnd_i8(&r, -50, 50)};
        rg_q_gap_params p;
        CHECK(rg_q_gap_prepare(nb, h, w, c, in, out, &p, &E));
        size_t nx = (size_t)nb * h * w * c;
        int8_t *x = malloc(nx), y[10];
        for (size_t i = 0; i < nx; i++) x[i] = rnd_i8(&r, -128, 127);
        CHECK(rg_q_gap_s8(&p, x, y, &E));
        for (int32_t n = 0; n < nb; n++)
            for (int32_t ch = 0; ch < c; ch++) {
                int64_t acc = 0;
                for (int32_t i = 0; i < h * w; i++) acc += x[((size_t)n * h * w + i) * c + ch] - in.zero_point;
                int32_t v = ref_mul(acc, p.multiplier, p.shift);
                int32_t want = clampi(llround((double)v / (h * w)) + out.zero_point, -128, 127);
                assert_int_equal(y[n * c + ch], want);
                double real = (double)in.scale * (double)acc / (h * w);
                expect_close("gap vs float", y[n * c + ch], real, out, -128, 127);
                /* equal parameters: exactly the rounded integer mean */
                if (t == 0) assert_int_equal(y[n * c + ch], clampi(llround((double)acc / (h * w)) + in.zero_point, -128, 127));
            }
        free(x);
    }
}

static void test_clamp_and_activation_range(void **state)
{
    (void)state;
    int32_t lo, hi;
    /* scale 6/255 with zero point -128: 6.0 is 127, 0.0 is -128 */
    rg_qparams out = {6.0f / 255.0f, -128};
    CHECK(rg_q_activation_range(RG_Q_ACT_RELU6, out, &lo, &hi, &E));
    assert_int_equal(lo, -128);
    assert_int_equal(hi, 127);
    out = (rg_qparams){0.1f, -20};
    CHECK(rg_q_activation_range(RG_Q_ACT_RELU6, out, &lo, &hi, &E));
    assert_int_equal(lo, -20);
    assert_int_equal(hi, 40); /* -20 + round(6 / 0.1) */
    CHECK(rg_q_activation_range(RG_Q_ACT_RELU, out, &lo, &hi, &E));
    assert_int_equal(lo, -20);
    assert_int_equal(hi, 127);
    CHECK(rg_q_activation_range(RG_Q_ACT_NONE, out, &lo, &hi, &E));
    assert_int_equal(lo, -128);
    assert_int_equal(hi, 127);
    int8_t x[5] = {-128, -21, -20, 40, 127}, y[5];
    CHECK(rg_q_clamp_s8(x, 5, -20, 40, y, &E));
    const int8_t want[5] = {-20, -20, -20, 40, 40};
    assert_memory_equal(y, want, 5);
    CHECK(rg_q_clamp_s8(x, 5, -20, 40, x, &E)); /* in place */
    assert_memory_equal(x, want, 5);
}

/* Bad parameters are rejected with the field named, before any access. */
static void test_bad_params(void **state)
{
    (void)state;
    int32_t m[2] = {1 << 30, 1 << 30}, s[2] = {0, 0};
    int8_t x[64] = {0}, w[64] = {0}, y[64];
    rg_q_conv_params p = {.batch = 1, .in_h = 4, .in_w = 4, .in_c = 2, .out_h = 4, .out_w = 4, .out_c = 2, .k_h = 3,
                          .k_w = 3, .stride_h = 1, .stride_w = 1, .dilation_h = 1, .dilation_w = 1, .pad_top = 1,
                          .pad_left = 1, .act_min = -128, .act_max = 127, .multipliers = m, .shifts = s};
    CHECK(rg_q_conv2d_s8(&p, x, w, NULL, y, &E));
    rg_error err = {0};
    rg_q_conv_params q = p;
    q.stride_h = 0;
    assert_int_equal(rg_q_conv2d_s8(&q, x, w, NULL, y, &err), RG_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "stride_h 0"));
    q = p;
    q.out_h = 6;
    assert_int_equal(rg_q_conv2d_s8(&q, x, w, NULL, y, &err), RG_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "out_h 6"));
    q = p;
    q.in_zp = 200;
    assert_int_equal(rg_q_conv2d_s8(&q, x, w, NULL, y, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "in_zp 200"));
    q = p;
    q.act_min = 10;
    q.act_max = 5;
    assert_int_equal(rg_q_conv2d_s8(&q, x, w, NULL, y, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "act_min 10"));
    s[1] = 31;
    assert_int_equal(rg_q_conv2d_s8(&p, x, w, NULL, y, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "channel 1: shift 31"));
    s[1] = 0;
    m[0] = -5;
    assert_int_equal(rg_q_depthwise_s8(&p, x, w, NULL, y, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "channel 0: multiplier -5"));
    m[0] = 1 << 30;
    q = p;
    q.out_c = 1;
    assert_int_equal(rg_q_depthwise_s8(&q, x, w, NULL, y, &err), RG_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "out_c 1 must equal in_c 2"));
    q = p;
    q.multipliers = NULL;
    assert_int_equal(rg_q_conv2d_s8(&q, x, w, NULL, y, &err), RG_ERR_ARG);
    rg_q_pool_params pp = {.batch = 1, .in_h = 4, .in_w = 4, .c = 1, .out_h = 2, .out_w = 2, .k_h = 2, .k_w = 2,
                           .stride_h = 2, .stride_w = 2, .pad_top = 2, .act_min = -128, .act_max = 127};
    assert_int_equal(rg_q_avgpool_s8(&pp, x, y, &err), RG_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "pad_top 2"));
    rg_q_add_params ap;
    rg_qparams good = {0.1f, 0}, bad = {0.0f, 0};
    assert_int_equal(rg_q_add_prepare(good, bad, good, RG_Q_ACT_NONE, &ap, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "add: input 2: scale 0"));
    rg_q_gap_params gp;
    assert_int_equal(rg_q_gap_prepare(1, 2, 2, 1, good, (rg_qparams){NAN, 0}, &gp, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "output"));
    assert_int_equal(rg_q_clamp_s8(x, 4, 5, 4, y, &err), RG_ERR_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_dense), cmocka_unit_test(test_conv_depthwise),
        cmocka_unit_test(test_fc),         cmocka_unit_test(test_requant_fp32), cmocka_unit_test(test_add),
        cmocka_unit_test(test_pool),       cmocka_unit_test(test_gap),
        cmocka_unit_test(test_clamp_and_activation_range), cmocka_unit_test(test_bad_params),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    print_message("largest distance to the float reference: %d LSB\n", worst_lsb);
    return rc;
}
