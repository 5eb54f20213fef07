/* The int8 runtime's kernel tables (rt/kernels/qk.h) against the integer
 * reference kernels (regain/quant_kernels.h), tolerance 0: every output
 * byte must be equal.
 *
 * Every table this CPU can run is tested directly (ref, avx2, avx512vnni),
 * so one run covers each instruction-set path. Shapes are drawn to hit the
 * awkward cases: channel counts that are not multiples of the vector width
 * (1, 3, 15, 17, 33, 100), k not a multiple of the packing group, row counts
 * that leave partial tiles, padding, strides, dilation, nonzero zero points;
 * requantization parameters include the extremes (shift -31 and 30,
 * multiplier 0, 2^30 and 2^31 - 1) and biases up to the largest the fast
 * path accepts, so left shifts saturate, outputs clamp and the rounding of
 * negative values is exercised; a bias beyond that bound must make the
 * layer fall back to the reference and still agree.
 */
#include "test_support.h"

#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "regain/cpu.h"
#include "regain/rng.h"
#include "rt/kernels/qk.h"

static rg_rng rng;

static int32_t rnd(int32_t lo, int32_t hi) /* uniform in [lo, hi] */
{
    return lo + (int32_t)rg_rng_below(&rng, (uint32_t)(hi - lo + 1));
}

static int8_t *rand_s8(size_t n, int32_t lo, int32_t hi)
{
    int8_t *p = malloc(n ? n : 1);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++) p[i] = (int8_t)rnd(lo, hi);
    return p;
}

/* The tables this CPU can run, the reference first. */
static int tables(const rg_qk_table **t)
{
    int n = 0;
    rg_isa best = rg_cpu_isa_supported();
    t[n++] = &rg_qk_ref;
    if (best >= RG_ISA_AVX2) t[n++] = &rg_qk_avx2;
    if (best >= RG_ISA_AVX512_VNNI) t[n++] = &rg_qk_vnni;
    else printf("this CPU has no AVX-512 VNNI: the vnni table is not tested here\n");
    return n;
}

/* Per-channel requantization: typical pairs, or (extreme != 0) a mix with
 * the range's ends. */
static void rand_requant(int32_t n, int extreme, int32_t *m, int32_t *s)
{
    static const int32_t shifts[] = {-31, -30, -20, -1, 0, 1, 7, 29, 30};
    static const int32_t mults[] = {0, 1 << 30, INT32_MAX, 1518500250};
    for (int32_t c = 0; c < n; c++) {
        m[c] = (1 << 30) + (int32_t)rg_rng_below(&rng, 1u << 30);
        s[c] = rnd(-12, 0);
        if (extreme && rg_rng_below(&rng, 2)) {
            if (rg_rng_below(&rng, 2)) m[c] = mults[rg_rng_below(&rng, 4)];
            s[c] = shifts[rg_rng_below(&rng, 9)];
        }
    }
}

/* A bias for a channel whose weights sum (absolute) to sum_abs: mode 0
 * small, 1 medium, 2 up to the largest the fast kernels accept, 3 beyond it
 * (the reference takes over). */
static int32_t rand_bias(int mode, int64_t sum_abs)
{
    int64_t lim = mode == 0 ? 1 << 12 : mode == 1 ? 1 << 22 : INT32_MAX - 255 * sum_abs;
    if (lim < 0) lim = 0;
    if (mode == 3) return INT32_MIN; /* |bias| alone is above INT32_MAX */
    int64_t v = (int64_t)(rg_rng_u64(&rng) % (uint64_t)(2 * lim + 1)) - lim;
    if (mode == 2 && rg_rng_below(&rng, 2)) v = rg_rng_below(&rng, 2) ? lim : -lim; /* the bound itself */
    return (int32_t)v;
}

static void expect_same(const char *table, const char *what, const int8_t *got, const int8_t *want, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (got[i] != want[i]) fail_msg("%s %s: byte %zu of %zu is %d, reference %d", table, what, i, n, got[i], want[i]);
}

/* ---- matrix product (pointwise, fully connected) ---- */

/* 1 / 0: the layers the next checks prepare must (not) take the short
 * rounding (rt/kernels/qk.h, rshort); -1: either. */
static int expect_short = -1;

/* Right shifts of 1 to 3 only (ties of the rounding are frequent) */
static void short_requant(int32_t n, int32_t *m, int32_t *s)
{
    for (int32_t c = 0; c < n; c++) {
        m[c] = (1 << 30) + (int32_t)rg_rng_below(&rng, 1u << 30);
        s[c] = -rnd(1, 3);
    }
}

/* fp32 scales (regain/quant.h rg_q_requant_fp32): powers of two (ties of
 * the rounding everywhere), typical small scales, zero, and scales large
 * enough to clamp most outputs. */
static void rand_scales(int32_t n, float *sc)
{
    for (int32_t c = 0; c < n; c++) {
        switch (rg_rng_below(&rng, 5)) {
        case 0: sc[c] = 1.0f / (float)(1 << rnd(1, 6)); break;
        case 1: sc[c] = rg_rng_below(&rng, 8) ? 3.0f : 0.0f; break;
        default: sc[c] = 1e-4f + 0.02f * rg_rng_uniform(&rng); break;
        }
    }
}

/* 1: the checks below give their layers fp32 scales (test_fp32) */
static int use_fp32 = 0;

static void check_gemm(const rg_qk_table *const *t, int nt, int32_t rows, int32_t k, int32_t n, int bias_mode,
                       int extreme)
{
    int8_t *x = rand_s8((size_t)rows * k, -128, 127), *w = rand_s8((size_t)n * k, -127, 127);
    int32_t *bias = malloc(sizeof(int32_t) * n), *m = malloc(sizeof(int32_t) * n), *s = malloc(sizeof(int32_t) * n);
    for (int32_t o = 0; o < n; o++) {
        int64_t sa = 0;
        for (int32_t i = 0; i < k; i++) sa += abs(w[(size_t)o * k + i]);
        /* one channel beyond the bound is enough to send the layer back */
        bias[o] = rand_bias(bias_mode == 3 && o != n - 1 ? 2 : bias_mode, sa);
    }
    if (extreme == 2) short_requant(n, m, s);
    else rand_requant(n, extreme, m, s);
    int32_t lo = rnd(-128, 20), hi = rnd(lo, 127);
    if (rg_rng_below(&rng, 3) == 0) lo = -128, hi = 127;
    rg_q_fc_params p = {.batch = rows, .in_features = k, .out_features = n, .in_zp = rnd(-128, 127),
                        .out_zp = rnd(-128, 127), .act_min = lo, .act_max = hi, .multipliers = m, .shifts = s};
    float *sc = malloc(sizeof(float) * n);
    rand_scales(n, sc);
    if (use_fp32) p.scales = sc;
    const int32_t *b = rg_rng_below(&rng, 8) ? bias : NULL;
    int8_t *want = malloc((size_t)rows * n), *got = malloc((size_t)rows * n);
    rg_error err;
    assert_int_equal(rg_q_pointwise_s8(&p, x, w, b, want, &err), RG_OK);
    for (int it = 0; it < nt; it++) {
        size_t size = rg_qk_gemm_size(t[it], k, n);
        void *buf = malloc(size);
        rg_qk_gemm L;
        if (rg_qk_gemm_prepare(t[it], &p, w, b, buf, size, &L, &err)) fail_msg("%s", err.msg);
        if (t[it]->nr && expect_short >= 0) assert_int_equal(L.rshort, expect_short);
        if (t[it]->nr) assert_int_equal(L.fast, bias_mode == 3 && b ? 0 : 1);
        assert_int_equal(L.fp32, use_fp32);
        void *scratch = malloc(rg_qk_gemm_scratch(&L) + 1);
        memset(got, 0x55, (size_t)rows * n);
        rg_qk_gemm_run(&L, rows, x, got, scratch);
        char what[128];
        snprintf(what, sizeof what, "gemm rows %d k %d n %d bias %d extreme %d", (int)rows, (int)k, (int)n, bias_mode,
                 extreme);
        expect_same(t[it]->name, what, got, want, (size_t)rows * n);
        free(buf), free(scratch);
    }
    free(x), free(w), free(bias), free(m), free(s), free(sc), free(want), free(got);
}

static void test_gemm(void **state)
{
    (void)state;
    const rg_qk_table *t[3];
    int nt = tables(t);
    const int32_t ks[] = {1, 2, 3, 4, 5, 15, 16, 17, 33, 100, 320};
    const int32_t ns[] = {1, 3, 8, 15, 16, 17, 33, 64, 100};
    const int32_t rowss[] = {1, 4, 5, 7, 13, 49};
    for (size_t a = 0; a < sizeof ks / sizeof *ks; a++)
        for (size_t c = 0; c < sizeof ns / sizeof *ns; c++)
            for (size_t r = 0; r < sizeof rowss / sizeof *rowss; r++)
                check_gemm(t, nt, rowss[r], ks[a], ns[c], (int)((a + c + r) % 3), (int)(r % 2));
}

/* Largest accumulators, both signs, every extreme pair; and layers beyond the
 * bound (reference fallback). */
static void test_gemm_extremes(void **state)
{
    (void)state;
    const rg_qk_table *t[3];
    int nt = tables(t);
    for (int rep = 0; rep < 40; rep++) check_gemm(t, nt, rnd(1, 20), rnd(1, 40), rnd(1, 40), 2, 1);
    for (int rep = 0; rep < 10; rep++) check_gemm(t, nt, rnd(1, 20), rnd(1, 40), rnd(1, 40), 3, 1);
}

/* ---- convolutions ---- */

static rg_q_conv_params rand_conv(int32_t batch, int32_t h, int32_t w, int32_t ci, int32_t co, int32_t k,
                                  int32_t stride, int32_t pad, int32_t dil, int32_t *m, int32_t *s, int extreme)
{
    rand_requant(co, extreme, m, s);
    int32_t lo = rnd(-128, 0), hi = rnd(lo, 127);
    rg_q_conv_params p = {.batch = batch, .in_h = h, .in_w = w, .in_c = ci, .out_c = co, .k_h = k, .k_w = k,
                          .stride_h = stride, .stride_w = stride, .dilation_h = dil, .dilation_w = dil,
                          .pad_top = pad, .pad_left = pad, .in_zp = rnd(-128, 127), .out_zp = rnd(-128, 127),
                          .act_min = lo, .act_max = hi, .multipliers = m, .shifts = s};
    p.out_h = rg_q_out_size(h, k, stride, dil, pad, pad);
    p.out_w = rg_q_out_size(w, k, stride, dil, pad, pad);
    return p;
}

static void check_dw(const rg_qk_table *const *t, int nt, rg_q_conv_params p, int bias_mode)
{
    if (p.out_h < 1 || p.out_w < 1) return;
    const int32_t c = p.in_c, taps = p.k_h * p.k_w;
    size_t nx = (size_t)p.batch * p.in_h * p.in_w * c, ny = (size_t)p.batch * p.out_h * p.out_w * c;
    int8_t *x = rand_s8(nx, -128, 127), *w = rand_s8((size_t)c * taps, -127, 127);
    int32_t *bias = malloc(sizeof(int32_t) * c);
    for (int32_t ch = 0; ch < c; ch++) {
        int64_t sa = 0;
        for (int32_t i = 0; i < taps; i++) sa += abs(w[(size_t)ch * taps + i]);
        bias[ch] = rand_bias(bias_mode, sa);
    }
    int8_t *want = malloc(ny), *got = malloc(ny);
    rg_error err;
    if (rg_q_depthwise_s8(&p, x, w, bias, want, &err)) fail_msg("%s", err.msg);
    for (int it = 0; it < nt; it++) {
        size_t size = rg_qk_dw_size(t[it], &p);
        void *buf = malloc(size);
        rg_qk_dw L;
        if (rg_qk_dw_prepare(t[it], &p, w, bias, buf, size, &L, &err)) fail_msg("%s", err.msg);
        if (t[it]->nr && expect_short >= 0) assert_int_equal(L.rshort, expect_short);
        if (t[it]->nr) assert_int_equal(L.fast, bias_mode == 3 ? 0 : 1);
        memset(got, 0x55, ny);
        size_t ns = rg_qk_dw_scratch(&L);
        uint8_t *scratch = malloc(ns + 1);
        for (size_t i = 0; i < ns; i++) scratch[i] = (uint8_t)(i * 37 + 11); /* any content */
        rg_qk_dw_run(&L, x, got, ns ? scratch : NULL);
        free(scratch);
        char what[160];
        snprintf(what, sizeof what, "depthwise n%d %dx%dx%d k%d s%d pad%d dil%d", (int)p.batch, (int)p.in_h,
                 (int)p.in_w, (int)c, (int)p.k_h, (int)p.stride_h, (int)p.pad_top, (int)p.dilation_h);
        expect_same(t[it]->name, what, got, want, ny);
        free(buf);
    }
    free(x), free(w), free(bias), free(want), free(got);
}

static void test_depthwise(void **state)
{
    (void)state;
    const rg_qk_table *t[3];
    int nt = tables(t);
    const int32_t cs[] = {1, 3, 15, 16, 17, 33, 100};
    const int32_t hs[] = {1, 2, 7, 10};
    int32_t m[128], s[128];
    int i = 0;
    for (size_t a = 0; a < sizeof cs / sizeof *cs; a++)
        for (size_t b = 0; b < sizeof hs / sizeof *hs; b++)
            for (int32_t stride = 1; stride <= 2; stride++, i++) {
                int32_t h = hs[b], w = hs[(b + 1) % 4];
                /* mostly the 3x3 pad-1 blocks of MobileNetV2, some others */
                int32_t k = i % 5 == 4 ? 5 : i % 7 == 6 ? 1 : 3, pad = k / 2, dil = i % 9 == 8 ? 2 : 1;
                if (i % 6 == 5) pad = 0;
                rg_q_conv_params p = rand_conv(1 + i % 2, h, w, cs[a], cs[a], k, stride, pad, dil, m, s, i % 2);
                check_dw(t, nt, p, i % 3);
            }
    for (int rep = 0; rep < 6; rep++) {
        rg_q_conv_params p = rand_conv(1, rnd(1, 6), rnd(1, 6), rnd(1, 40), 0, 3, rnd(1, 2), 1, 1, m, s, 1);
        p.out_c = p.in_c;
        rand_requant(p.out_c, 1, m, s);
        check_dw(t, nt, p, rep < 3 ? 2 : 3);
    }
    /* MobileNetV2's own blocks: 16 channels gathered four columns at a
     * time, 64-channel groups at stride 1 and 2, padding 0 */
    static const int32_t blocks[][5] = {{16, 28, 28, 1, 1}, {16, 9, 11, 1, 1}, {64, 15, 15, 2, 1},
                                        {80, 7, 7, 1, 1}, {128, 9, 6, 2, 0}, {96, 14, 14, 2, 1}};
    for (size_t b = 0; b < sizeof blocks / sizeof *blocks; b++) {
        const int32_t *q = blocks[b];
        rg_q_conv_params p = rand_conv(2, q[1], q[2], q[0], q[0], 3, q[3], q[4], 1, m, s, (int)b % 2);
        check_dw(t, nt, p, (int)b % 3);
    }
    /* dilated in height only (the row-pair kernels need dilation_w 1 only) */
    for (int32_t c = 15; c <= 70; c += 55) {
        rg_q_conv_params p = rand_conv(2, 9, 7, c, c, 3, 1, 1, 1, m, s, 0);
        p.dilation_h = 2;
        p.out_h = rg_q_out_size(p.in_h, 3, 1, 2, 1, 1);
        check_dw(t, nt, p, 1);
    }
}

static void check_conv(const rg_qk_table *const *t, int nt, rg_q_conv_params p, int bias_mode)
{
    if (p.out_h < 1 || p.out_w < 1) return;
    const int32_t kk = p.k_h * p.k_w * p.in_c;
    size_t nx = (size_t)p.batch * p.in_h * p.in_w * p.in_c, ny = (size_t)p.batch * p.out_h * p.out_w * p.out_c;
    int8_t *x = rand_s8(nx, -128, 127), *w = rand_s8((size_t)p.out_c * kk, -127, 127);
    int32_t *bias = malloc(sizeof(int32_t) * p.out_c);
    for (int32_t o = 0; o < p.out_c; o++) {
        int64_t sa = 0;
        for (int32_t i = 0; i < kk; i++) sa += abs(w[(size_t)o * kk + i]);
        bias[o] = rand_bias(bias_mode, sa);
    }
    int8_t *want = malloc(ny), *got = malloc(ny);
    rg_error err;
    if (rg_q_conv2d_s8(&p, x, w, bias, want, &err)) fail_msg("%s", err.msg);
    for (int it = 0; it < nt; it++) {
        size_t size = rg_qk_conv_size(t[it], &p);
        void *buf = malloc(size);
        rg_qk_conv L;
        if (rg_qk_conv_prepare(t[it], &p, w, bias, buf, size, &L, &err)) fail_msg("%s", err.msg);
        if (t[it]->nr && expect_short >= 0) assert_int_equal(L.gemm.rshort, expect_short);
        /* few taps take the table's direct kernel where it has one */
        assert_int_equal(L.direct, t[it]->conv_direct && kk <= RG_QK_DIRECT_MAX && p.dilation_w == 1 && L.gemm.fast);
        void *scratch = malloc(rg_qk_conv_scratch(&L) + 1);
        memset(got, 0x55, ny);
        rg_qk_conv_run(&L, x, got, scratch);
        char what[160];
        snprintf(what, sizeof what, "conv n%d %dx%dx%d -> %d k%d s%d pad%d dil%d", (int)p.batch, (int)p.in_h,
                 (int)p.in_w, (int)p.in_c, (int)p.out_c, (int)p.k_h, (int)p.stride_h, (int)p.pad_top,
                 (int)p.dilation_h);
        expect_same(t[it]->name, what, got, want, ny);
        free(buf), free(scratch);
    }
    free(x), free(w), free(bias), free(want), free(got);
}

static void test_conv(void **state)
{
    (void)state;
    const rg_qk_table *t[3];
    int nt = tables(t);
    int32_t m[64], s[64];
    /* the stem of mbv2-tiny (28x28x1 -> 16, 3x3, stride 1 and 2), then odd shapes */
    check_conv(t, nt, rand_conv(1, 28, 28, 1, 16, 3, 1, 1, 1, m, s, 0), 0);
    check_conv(t, nt, rand_conv(2, 28, 28, 1, 16, 3, 2, 1, 1, m, s, 0), 1);
    /* the direct kernel's limits: 64 taps (rows of whole quads), 63 (a partial last quad), 65 (im2col) */
    check_conv(t, nt, rand_conv(1, 6, 5, 4, 17, 4, 1, 2, 1, m, s, 1), 2);
    check_conv(t, nt, rand_conv(1, 5, 6, 7, 33, 3, 2, 1, 1, m, s, 1), 3);
    check_conv(t, nt, rand_conv(1, 5, 5, 65, 16, 1, 2, 0, 1, m, s, 0), 1);
    const int32_t cis[] = {1, 3, 8, 17}, cos[] = {1, 3, 16, 17, 33};
    int i = 0;
    for (size_t a = 0; a < 4; a++)
        for (size_t b = 0; b < 5; b++, i++) {
            int32_t k = i % 4 == 3 ? 5 : i % 5 == 4 ? 1 : 3;
            check_conv(t, nt, rand_conv(1 + i % 2, rnd(1, 9), rnd(1, 9), cis[a], cos[b], k, 1 + i % 2, k / 2,
                                        i % 7 == 6 ? 2 : 1, m, s, i % 2),
                       i % 4);
        }
}

/* ---- add, global average pool, clamp ---- */

static void test_add(void **state)
{
    (void)state;
    const rg_qk_table *t[3];
    int nt = tables(t);
    const int64_t ns[] = {0, 1, 7, 8, 15, 16, 17, 100, 1000};
    rg_error err;
    for (int rep = 0; rep < 160; rep++) {
        rg_q_add_params p;
        rg_qparams a = {0.001f + 0.2f * rg_rng_uniform(&rng), rnd(-128, 127)};
        rg_qparams b = {0.001f + 0.2f * rg_rng_uniform(&rng), rnd(-128, 127)};
        rg_qparams o = {0.002f + 0.3f * rg_rng_uniform(&rng), rnd(-128, 127)};
        if (rg_q_add_prepare(a, b, o, (rg_q_activation)(rep % 3), &p, &err)) fail_msg("%s", err.msg);
        if (rep >= 60) { /* right shifts only, any multiplier, left shifts around the split rescale's
                          * range [9, 22] (rt/kernels/qk_vnni.c): every rounding case of its formula */
            int32_t mm[3], ss[3];
            rand_requant(3, 1, mm, ss);
            p.in1_multiplier = mm[0], p.in1_shift = -rnd(0, 31);
            p.in2_multiplier = mm[1], p.in2_shift = rep % 5 ? -rnd(0, 12) : -rnd(28, 31);
            p.out_multiplier = mm[2], p.out_shift = ss[2];
            p.left_shift = rnd(8, 22);
        } else if (rep % 4 == 3) { /* any valid parameters, not only prepared ones: saturating shifts */
            int32_t mm[3], ss[3];
            rand_requant(3, 1, mm, ss);
            p.in1_multiplier = mm[0], p.in1_shift = ss[0];
            p.in2_multiplier = mm[1], p.in2_shift = ss[1];
            p.out_multiplier = mm[2], p.out_shift = ss[2];
            p.left_shift = rnd(0, 22);
        }
        if (rep % 5 == 1) { /* the fp32 rule: scales of every size, halves (ties) among them */
            p.in1_scale = rep % 3 ? a.scale / o.scale : 0.5f;
            p.in2_scale = rep % 7 ? b.scale / o.scale : 0.25f;
        }
        assert_int_equal(rg_qk_check_add(&p, &err), RG_OK);
        int64_t n = rep >= 60 ? 1000 + rep % 17 : ns[rep % 9];
        int8_t *x1 = rand_s8((size_t)n, -128, 127), *x2 = rand_s8((size_t)n, -128, 127);
        int8_t *want = malloc((size_t)n + 1), *got = malloc((size_t)n + 1);
        assert_int_equal(rg_q_add_s8(&p, x1, x2, n, want, &err), RG_OK);
        for (int it = 0; it < nt; it++) {
            memset(got, 0x55, (size_t)n + 1);
            t[it]->add(&p, x1, x2, n, got);
            expect_same(t[it]->name, "add", got, want, (size_t)n);
            assert_int_equal(got[n], 0x55); /* nothing written past the end */
        }
        free(x1), free(x2), free(want), free(got);
    }
    rg_q_add_params bad = {.left_shift = 23, .in1_multiplier = 1 << 30, .in2_multiplier = 1 << 30,
                           .out_multiplier = 1 << 30, .act_min = -128, .act_max = 127};
    assert_int_equal(rg_qk_check_add(&bad, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "left_shift"));
    bad.left_shift = 20;
    bad.in1_scale = 0.5f; /* one scale without the other */
    assert_int_equal(rg_qk_check_add(&bad, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "in2_scale"));
    bad.in2_scale = NAN;
    assert_int_equal(rg_qk_check_add(&bad, &err), RG_ERR_ARG);
}

static void test_gap_clamp(void **state)
{
    (void)state;
    const rg_qk_table *t[3];
    int nt = tables(t);
    const int32_t cs[] = {1, 3, 15, 16, 17, 33, 80, 100};
    rg_error err;
    for (int rep = 0; rep < 62; rep++) {
        int32_t h = rnd(1, 9), w = rnd(1, 9), c = cs[rep % 8], batch = 1 + rep % 2;
        /* large windows (the VNNI division in double needs h*w < 2^22; at
         * 2^22 it takes the reference's steps) */
        if (rep >= 48) h = rnd(1, 300), w = rnd(1, 300), c = rnd(1, 20), batch = 1;
        if (rep == 61) h = 2048, w = 2048, c = 1;
        rg_q_gap_params p;
        rg_qparams in = {0.01f + rg_rng_uniform(&rng), rnd(-128, 127)}, out = {0.01f + rg_rng_uniform(&rng), rnd(-128, 127)};
        if (rg_q_gap_prepare(batch, h, w, c, in, out, &p, &err)) fail_msg("%s", err.msg);
        if (rep % 3 == 2) {
            rand_requant(1, 1, &p.multiplier, &p.shift);
            p.act_min = rnd(-128, 0), p.act_max = rnd(p.act_min, 127);
        }
        assert_int_equal(rg_qk_check_gap(&p, &err), RG_OK);
        size_t nx = (size_t)batch * h * w * c, ny = (size_t)batch * c;
        int8_t *x = rand_s8(nx, -128, 127), *want = malloc(ny), *got = malloc(ny);
        assert_int_equal(rg_q_gap_s8(&p, x, want, &err), RG_OK);
        for (int it = 0; it < nt; it++) {
            memset(got, 0x55, ny);
            t[it]->gap(&p, x, got);
            expect_same(t[it]->name, "gap", got, want, ny);
        }
        free(x), free(want), free(got);
    }
    for (int rep = 0; rep < 20; rep++) {
        int64_t n = rnd(0, 200);
        int32_t lo = rnd(-128, 127), hi = rnd(lo, 127);
        int8_t *x = rand_s8((size_t)n, -128, 127), *want = malloc((size_t)n + 1), *got = malloc((size_t)n + 1);
        assert_int_equal(rg_q_clamp_s8(x, n, lo, hi, want, &err), RG_OK);
        for (int it = 0; it < nt; it++) {
            memset(got, 0x55, (size_t)n + 1);
            t[it]->clamp(x, n, lo, hi, got);
            expect_same(t[it]->name, "clamp", got, want, (size_t)n);
            assert_int_equal(got[n], 0x55);
        }
        free(x), free(want), free(got);
    }
}

/* ---- dispatch and preparation errors ---- */

static void test_dispatch(void **state)
{
    (void)state;
    rg_isa best = rg_cpu_isa_supported();
    assert_ptr_equal(rg_qk_table_for(RG_ISA_REF), &rg_qk_ref);
    assert_ptr_equal(rg_qk_table_for(RG_ISA_AVX2), &rg_qk_avx2);
    assert_ptr_equal(rg_qk_table_for(RG_ISA_AVX512), &rg_qk_avx2); /* no int8 AVX-512 without VNNI */
    assert_ptr_equal(rg_qk_table_for(RG_ISA_AVX512_VNNI), &rg_qk_vnni);
    rg_cpu_set_isa(RG_ISA_REF);
    assert_ptr_equal(rg_qk_kernels(), &rg_qk_ref);
    rg_cpu_set_isa(RG_ISA_AVX512_VNNI); /* clamped to the CPU */
    assert_ptr_equal(rg_qk_kernels(), rg_qk_table_for(best));
    assert_int_equal(rg_isa_parse("avx512vnni"), RG_ISA_AVX512_VNNI);
    assert_string_equal(rg_isa_name(RG_ISA_AVX512_VNNI), "avx512vnni");
}

static void test_prepare_errors(void **state)
{
    (void)state;
    rg_error err;
    int32_t m[4] = {1 << 30, 1 << 30, 1 << 30, 1 << 30}, s[4] = {-3, -3, -3, 40};
    int8_t w[16] = {0};
    int64_t buf[512];
    rg_qk_gemm L;
    rg_q_fc_params p = {.batch = 1, .in_features = 4, .out_features = 3, .in_zp = 0, .out_zp = 0, .act_min = -128,
                        .act_max = 127, .multipliers = m, .shifts = s};
    const rg_qk_table *t = rg_qk_table_for(RG_ISA_AVX2);
    assert_int_equal(rg_qk_gemm_prepare(t, &p, w, NULL, buf, 1, &L, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "prepared buffer"));
    p.out_features = 4; /* channel 3 has shift 40 */
    assert_int_equal(rg_qk_gemm_prepare(t, &p, w, NULL, buf, sizeof buf, &L, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "channel 3"));
    p.out_features = 3;
    p.in_zp = 200;
    assert_int_equal(rg_qk_gemm_prepare(t, &p, w, NULL, buf, sizeof buf, &L, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "in_zp"));
    rg_q_conv_params cp = {.batch = 1, .in_h = 4, .in_w = 4, .in_c = 2, .out_h = 4, .out_w = 4, .out_c = 3,
                           .k_h = 3, .k_w = 3, .stride_h = 1, .stride_w = 1, .dilation_h = 1, .dilation_w = 1,
                           .pad_top = 1, .pad_left = 1, .act_min = -128, .act_max = 127, .multipliers = m, .shifts = s};
    rg_qk_dw D;
    assert_int_equal(rg_qk_dw_prepare(t, &cp, w, NULL, buf, sizeof buf, &D, &err), RG_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "out_c"));
    cp.out_h = 9;
    rg_qk_conv C;
    assert_int_equal(rg_qk_conv_prepare(t, &cp, w, NULL, buf, sizeof buf, &C, &err), RG_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "out_h"));
}

/* The short rounding (rshort) on every kernel that has it: right shifts of
 * 1 to 3 (ties everywhere), biases within the bound (taken) and at the fast
 * kernels' limit (refused: r + 2^(e-1) could leave int32). */
static void test_short_rounding(void **state)
{
    (void)state;
    const rg_qk_table *t[3];
    int nt = tables(t);
    int32_t m[128], s[128];
    for (int rep = 0; rep < 24; rep++) {
        int bias_mode = rep % 4 == 3 ? 2 : rep % 2;
        expect_short = bias_mode == 2 ? -1 : 1; /* at the limit: only when the bias leaves room */
        check_gemm(t, nt, rnd(1, 30), rnd(1, 100), rnd(1, 70), bias_mode, 2);
        int32_t c = rnd(1, 100);
        rg_q_conv_params p = rand_conv(1 + rep % 2, rnd(1, 9), rnd(1, 9), c, c, 3, 1 + rep % 2, 1, 1, m, s, 0);
        short_requant(c, m, s);
        check_dw(t, nt, p, bias_mode);
        p = rand_conv(1, rnd(1, 9), rnd(1, 9), rnd(1, 3), rnd(1, 40), 3, 1 + rep % 2, 1, 1, m, s, 0);
        short_requant(p.out_c, m, s);
        check_conv(t, nt, p, bias_mode);
    }
    /* one channel that does not shift right: the layer keeps the long rounding */
    expect_short = 0;
    rg_q_conv_params p = rand_conv(1, 6, 6, 20, 20, 3, 1, 1, 1, m, s, 0);
    short_requant(20, m, s);
    s[7] = 0;
    check_dw(t, nt, p, 0);
    expect_short = -1;
}

/* fp32 requantization on every kernel: products of every shape the tiles
 * split, 3x3 depthwise (the ring) and wider kernels (the per-tap code), the
 * direct stem and im2col convolutions, all against the reference's
 * rg_q_requant_fp32 bit for bit. */
static void test_fp32(void **state)
{
    (void)state;
    const rg_qk_table *t[3];
    int nt = tables(t);
    int32_t m[128], s[128];
    float sc[128];
    use_fp32 = 1;
    for (int rep = 0; rep < 30; rep++) {
        check_gemm(t, nt, rnd(1, 30), rnd(1, 100), rnd(1, 100), rep % 3, 0);
        int32_t c = rnd(1, 100), k = rep % 5 == 4 ? 5 : 3;
        rg_q_conv_params p = rand_conv(1 + rep % 2, rnd(1, 9), rnd(1, 9), c, c, k, 1 + rep % 2, k / 2, 1, m, s, 0);
        rand_scales(c, sc);
        p.scales = sc;
        check_dw(t, nt, p, rep % 3);
        p = rand_conv(1, rnd(1, 9), rnd(1, 9), rep % 2 ? rnd(1, 3) : rnd(4, 20), rnd(1, 40), 3, 1 + rep % 2, 1, 1, m,
                      s, 0);
        rand_scales(p.out_c, sc);
        p.scales = sc;
        check_conv(t, nt, p, rep % 3);
    }
    use_fp32 = 0;
}

/* The runtime's input quantization: every table's (rg_qk_quantize) gives
 * rg_q_quantize_value's bits: ties of the rounding on both signs, values
 * that saturate, infinities, NaN, -0, odd lengths. */
static void test_quantize(void **state)
{
    (void)state;
    const rg_qk_table *t[3];
    int nt = tables(t);
    enum { N = 1000 };
    float x[N];
    int8_t want[N + 1], got[N + 1];
    for (int rep = 0; rep < 20; rep++) {
        rg_qparams q = {0.001f + 0.1f * rg_rng_uniform(&rng), rnd(-128, 127)};
        if (rep == 0) q.scale = 0.25f; /* exact ties x / scale = k + 0.5 */
        for (int i = 0; i < N; i++) {
            switch (i % 7) {
            case 0: x[i] = ((float)rnd(-300, 300) + 0.5f) * q.scale; break;  /* ties (where exact) */
            case 1: x[i] = 40.0f * (rg_rng_uniform(&rng) - 0.5f); break;
            case 2: x[i] = (float)rnd(-200, 200) * q.scale; break;
            case 3: x[i] = 1e30f * (rg_rng_uniform(&rng) - 0.5f); break;
            default: x[i] = 3.0f * (rg_rng_uniform(&rng) - 0.5f); break;
            }
        }
        x[5] = (float)INFINITY, x[12] = -(float)INFINITY, x[19] = (float)NAN, x[26] = -0.0f;
        int n = N - rep * 7;
        for (int i = 0; i < n; i++) want[i] = (int8_t)rg_q_quantize_value(x[i], q, -128, 127);
        for (int it = 0; it < nt; it++) {
            memset(got, 0x55, sizeof got);
            rg_qk_quantize(t[it], x, (size_t)n, q, got);
            expect_same(t[it]->name, "quantize", got, want, (size_t)n);
            assert_int_equal(got[n], 0x55);
        }
    }
}

int main(void)
{
    rng = rg_rng_keyed(2026, 11, 29);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm),      cmocka_unit_test(test_gemm_extremes), cmocka_unit_test(test_short_rounding), cmocka_unit_test(test_fp32), cmocka_unit_test(test_quantize), cmocka_unit_test(test_depthwise),
        cmocka_unit_test(test_conv),      cmocka_unit_test(test_add),           cmocka_unit_test(test_gap_clamp),
        cmocka_unit_test(test_dispatch),  cmocka_unit_test(test_prepare_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
