/* The int8 scheme, observers and fake quantization against PyTorch 1.13
 * (tests/golden/quant/quant_goldens.safetensors, written by
 * scripts/golden/quant_goldens.py; see tests/golden/quant/README.md).
 *
 * Exact: quantization parameters from MinMaxObserver (scale bit for bit,
 * zero point), the int8 values of quantize_per_tensor / quantize_per_channel
 * (inputs kept away from rounding ties, where PyTorch's half-to-even and
 * regain's half-away-from-zero differ), fake-quantized values and the
 * straight-through gradient. Close: moving-average ranges (1e-6 relative:
 * PyTorch may evaluate m + c * (x - m) in another order) and LSQ scale
 * gradients (a sum of 2000 float terms in another order: 1e-4 relative). */
#include "test_support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "regain/fake_quant.h"
#include "regain/observer.h"
#include "regain/quant.h"
#include "regain/safetensors.h"

static rg_st_file *F;

static int setup(void **state)
{
    (void)state;
    char path[1024];
    snprintf(path, sizeof path, "%s/quant/quant_goldens.safetensors", rgt_env("REGAIN_GOLDEN_DIR"));
    rg_error err = {0};
    if (rg_st_read(path, &F, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rg_st_free(F);
    return 0;
}

static const rg_st_tensor *tensor(const char *name, rg_st_dtype dtype, size_t *count)
{
    const rg_st_tensor *t = rg_st_find(F, name);
    if (!t) fail_msg("golden tensor %s is missing", name);
    if (t->dtype != dtype) fail_msg("golden tensor %s has dtype %d, expected %d", name, (int)t->dtype, (int)dtype);
    size_t n = 1;
    for (int32_t i = 0; i < t->ndim; i++) n *= (size_t)t->shape[i];
    *count = n;
    return t;
}

static const float *f32(const char *name, size_t *count)
{
    return tensor(name, RG_ST_F32, count)->data;
}

static const int32_t *i32(const char *name, size_t *count)
{
    return tensor(name, RG_ST_I32, count)->raw;
}

static void test_per_tensor(void **state)
{
    (void)state;
    const char *cases[] = {"mixed", "relu6", "negative", "offset"};
    for (int c = 0; c < 4; c++) {
        char name[64];
        size_t n, k;
#define G(suffix) (snprintf(name, sizeof name, "pt.%s.%s", cases[c], suffix), name)
        const float *x = f32(G("x"), &n);
        const float *mm = f32(G("min_max"), &k);
        float scale = f32(G("scale"), &k)[0];
        int32_t zp = i32(G("zero_point"), &k)[0];
        const int32_t *q = i32(G("q"), &k);
        const float *dq = f32(G("dq"), &k);
        /* the observer's range */
        rg_obs_config cfg = rg_obs_default(RG_OBS_MINMAX);
        rg_observer *o;
        CHECK(rg_obs_create(&cfg, &o, &E));
        CHECK(rg_obs_observe(o, x, n / 2, &E));
        CHECK(rg_obs_observe(o, x + n / 2, n - n / 2, &E));
        float lo, hi;
        CHECK(rg_obs_range(o, &lo, &hi, &E));
        rg_obs_free(o);
        assert_true(lo == mm[0] && hi == mm[1]);
        /* the parameters, bit for bit */
        rg_qparams p;
        CHECK(rg_q_params_from_range(lo, hi, -128, 127, &p, &E));
        if (p.scale != scale || p.zero_point != zp)
            fail_msg("%s: (%.9g, %d), PyTorch (%.9g, %d)", cases[c], p.scale, p.zero_point, scale, zp);
        /* the values */
        int8_t *mine = malloc(n);
        float *back = malloc(sizeof(float) * n);
        CHECK(rg_q_quantize(x, n, p, -128, 127, mine, &E));
        rg_q_dequantize(mine, n, p, back);
        for (size_t i = 0; i < n; i++) {
            if (mine[i] != q[i]) fail_msg("%s: q[%zu] = %d, PyTorch %d (x %.9g)", cases[c], i, mine[i], q[i], x[i]);
            assert_true(fabsf(back[i] - dq[i]) <= 1e-6f * fabsf(dq[i]));
        }
        free(mine);
        free(back);
#undef G
    }
}

static void test_per_channel_weights(void **state)
{
    (void)state;
    size_t n, k;
    const float *w = f32("pc.w", &n);
    const float *scales = f32("pc.scales", &k);
    const int32_t *q = i32("pc.q", &k);
    assert_int_equal(k, n);
    int8_t *mine = malloc(n);
    float s[8];
    CHECK(rg_q_quantize_weights(w, 8, n / 8, 1, mine, s, &E));
    for (int c = 0; c < 8; c++)
        if (s[c] != scales[c]) fail_msg("channel %d scale %.9g, PyTorch %.9g", c, s[c], scales[c]);
    for (size_t i = 0; i < n; i++)
        if (mine[i] != q[i]) fail_msg("weight %zu: %d, PyTorch %d", i, mine[i], q[i]);
    /* the per-channel observer agrees with the scales too */
    float lo[8], hi[8];
    CHECK(rg_obs_channel_minmax(w, 8, n / 8, lo, hi, &E));
    for (int c = 0; c < 8; c++) {
        rg_qparams p;
        CHECK(rg_q_params_symmetric(fmaxf(-lo[c], hi[c]), 127, &p, &E));
        assert_true(p.scale == scales[c]);
    }
    free(mine);
}

static void test_moving_average(void **state)
{
    (void)state;
    size_t n, k;
    const float *x = f32("ma.x", &n);
    const float *ranges = f32("ma.ranges", &k);
    float scale = f32("ma.scale", &k)[0];
    int32_t zp = i32("ma.zero_point", &k)[0];
    rg_obs_config cfg = rg_obs_default(RG_OBS_MOVING_AVG);
    cfg.momentum = 0.1;
    rg_observer *o;
    CHECK(rg_obs_create(&cfg, &o, &E));
    float lo = 0, hi = 0;
    for (int b = 0; b < 6; b++) {
        CHECK(rg_obs_observe(o, x + b * 500, 500, &E));
        CHECK(rg_obs_range(o, &lo, &hi, &E));
        if (fabsf(lo - ranges[2 * b]) > 1e-6f * fabsf(ranges[2 * b]) ||
            fabsf(hi - ranges[2 * b + 1]) > 1e-6f * fabsf(ranges[2 * b + 1]))
            fail_msg("batch %d: [%.9g, %.9g], PyTorch [%.9g, %.9g]", b, lo, hi, ranges[2 * b], ranges[2 * b + 1]);
    }
    rg_obs_free(o);
    rg_qparams p;
    CHECK(rg_q_params_from_range(lo, hi, -128, 127, &p, &E));
    assert_true(fabsf(p.scale - scale) <= 1e-6f * scale);
    assert_int_equal(p.zero_point, zp);
}

static void test_fake_quant(void **state)
{
    (void)state;
    size_t n, k;
    const float *x = f32("fq.x", &n), *dy = f32("fq.dy", &k), *y = f32("fq.y", &k), *dx = f32("fq.dx", &k);
    rg_qparams p = {f32("fq.params", &k)[0], i32("fq.zero_point", &k)[0]};
    float *my = malloc(sizeof(float) * n), *mdx = malloc(sizeof(float) * n);
    CHECK(rg_fq_forward(x, n, p, -128, 127, my, &E));
    rg_fq_backward_ste(x, dy, n, p, -128, 127, mdx);
    for (size_t i = 0; i < n; i++) {
        if (my[i] != y[i]) fail_msg("fake quant y[%zu] = %.9g, PyTorch %.9g", i, my[i], y[i]);
        if (mdx[i] != dx[i]) fail_msg("STE dx[%zu] = %.9g, PyTorch %.9g", i, mdx[i], dx[i]);
    }
    /* LSQ, per tensor */
    const float *ly = f32("lsq.y", &k), *ldx = f32("lsq.dx", &k);
    float ldscale = f32("lsq.dscale", &k)[0], g = f32("lsq.grad_factor", &k)[0];
    assert_true(fabsf(g - rg_fq_lsq_grad_scale(n, 127)) <= 1e-7f * g);
    double ds = 0.0;
    p.zero_point = i32("lsq.zero_point", &k)[0];
    CHECK(rg_fq_forward(x, n, p, -128, 127, my, &E));
    rg_fq_backward_lsq(x, dy, n, p, -128, 127, g, mdx, &ds);
    for (size_t i = 0; i < n; i++) {
        assert_true(my[i] == ly[i]);
        assert_true(mdx[i] == ldx[i]);
    }
    if (fabs(ds - ldscale) > 1e-4 * fabs(ldscale)) fail_msg("LSQ dscale %.9g, PyTorch %.9g", ds, ldscale);
    free(my);
    free(mdx);
    /* LSQ, per channel */
    const float *w = f32("lsqc.w", &n), *dyw = f32("lsqc.dy", &k), *ws = f32("lsqc.scales", &k);
    const float *wy = f32("lsqc.y", &k), *wdw = f32("lsqc.dw", &k), *wds = f32("lsqc.dscales", &k);
    float gw = f32("lsqc.grad_factor", &k)[0];
    assert_true(fabsf(gw - rg_fq_lsq_grad_scale(n / 8, 127)) <= 1e-7f * gw);
    float *yy = malloc(sizeof(float) * n), *dw = malloc(sizeof(float) * n);
    double dsc[8] = {0};
    CHECK(rg_fq_forward_channels(w, 8, n / 8, ws, -127, 127, yy, &E));
    rg_fq_backward_lsq_channels(w, dyw, 8, n / 8, ws, -127, 127, gw, dw, dsc);
    int clipped = 0;
    for (size_t i = 0; i < n; i++) {
        if (yy[i] != wy[i]) fail_msg("per-channel fake quant y[%zu] = %.9g, PyTorch %.9g", i, yy[i], wy[i]);
        assert_true(dw[i] == wdw[i]);
        clipped += dw[i] == 0.0f && dyw[i] != 0.0f;
    }
    assert_true(clipped > 0); /* the golden exercises the clipped branch */
    for (int c = 0; c < 8; c++)
        if (fabs(dsc[c] - wds[c]) > 1e-4 * fabs(wds[c]) + 1e-7)
            fail_msg("channel %d LSQ dscale %.9g, PyTorch %.9g", c, dsc[c], wds[c]);
    free(yy);
    free(dw);
}

/* The entropy observer against an independent numpy implementation of the
 * algorithm as docs/quantization.md states it (same histogram grid, one
 * batch): the same threshold, to float rounding. */
static void test_entropy_threshold(void **state)
{
    (void)state;
    const char *cases[] = {"normal", "relu", "laplace"};
    size_t k;
    const float *want = f32("ent.thresholds", &k);
    assert_int_equal(k, 3);
    for (int c = 0; c < 3; c++) {
        char name[64];
        size_t n;
        snprintf(name, sizeof name, "ent.%s.x", cases[c]);
        const float *x = f32(name, &n);
        rg_obs_config cfg = rg_obs_default(RG_OBS_ENTROPY);
        rg_observer *o;
        CHECK(rg_obs_create(&cfg, &o, &E));
        CHECK(rg_obs_observe(o, x, n, &E));
        float lo, hi;
        CHECK(rg_obs_range(o, &lo, &hi, &E));
        rg_obs_free(o);
        print_message("entropy %s: [%g, %g], numpy threshold %g\n", cases[c], lo, hi, want[c]);
        if (fabsf(hi - want[c]) > 1e-6f * want[c]) fail_msg("entropy %s: threshold %.9g, numpy %.9g", cases[c], hi, want[c]);
        assert_true(c == 1 ? lo == 0.0f : lo == -hi);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_per_tensor),
        cmocka_unit_test(test_per_channel_weights),
        cmocka_unit_test(test_moving_average),
        cmocka_unit_test(test_fake_quant),
        cmocka_unit_test(test_entropy_threshold),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
