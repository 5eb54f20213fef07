/* Fast kernels against the reference kernels (kernels/kernels.h).
 *
 * Every table the CPU can run (AVX2, AVX-512) is compared with the plain C
 * reference on random inputs and shapes chosen to hit the awkward cases:
 * channel counts that are not multiples of the vector width (tails), 1 and 3
 * channels, strides 1 and 2, padding 0/1/2, kernels 1x1, 3x3, 5x5, 7x7 and a
 * non-square 3x5, images smaller than the kernel.
 *
 * Tolerance: the fast kernels may fuse a multiply and an add and sum in
 * another order, so results differ from the reference by float rounding.
 * Each output must satisfy |fast - ref| <= 2e-5 * (scale + |ref|), scale the
 * largest |ref| of that output (a sum of up to a few thousand terms in
 * float). Activation and masking decisions must agree exactly except within
 * 1e-6 of a kink.
 *
 * The fake-quantization kernels (QAT) are exact: every table must give the
 * reference's bits, on values chosen at rounding ties and next to them,
 * at the clamps, at -0, infinities, NaN and values far out of range.
 */
#include "test_support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/gemm.h"
#include "kernels/kernels.h"
#include "regain/cpu.h"
#include "regain/quant.h"
#include "regain/rng.h"

#define TOL 2e-5

static rg_rng rng;

static float *random_floats(size_t n, float lo, float hi)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++) p[i] = lo + (hi - lo) * rg_rng_uniform(&rng);
    return p;
}

static float *copy(const float *src, size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    assert_non_null(p);
    memcpy(p, src, n * sizeof *p);
    return p;
}

static void expect_close(const char *table, const char *what, const float *got, const float *want, size_t n)
{
    double scale = 0.0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(want[i]));
    for (size_t i = 0; i < n; i++)
        if (!(fabs(got[i] - want[i]) <= TOL * (scale + fabs(want[i]))))
            fail_msg("%s %s[%zu]: got %.9g, reference %.9g (scale %.3g)", table, what, i, got[i], want[i], scale);
}

/* The fast tables this CPU can run. */
static int fast_tables(const rg_kernel_table **out)
{
    int n = 0;
    rg_isa best = rg_cpu_isa_supported();
    if (best >= RG_ISA_AVX2) out[n++] = &rg_kernels_avx2;
    if (best >= RG_ISA_AVX512) out[n++] = &rg_kernels_avx512;
    if (n == 0) printf("this CPU has no AVX2: only the reference kernels exist here\n");
    return n;
}

static const rg_act acts[] = {RG_ACT_NONE, RG_ACT_RELU, RG_ACT_RELU6, RG_ACT_HSWISH};

static void test_activations(void **state)
{
    (void)state;
    const rg_kernel_table *t[2];
    int nt = fast_tables(t);
    const size_t sizes[] = {1, 7, 16, 33, 1000};
    for (int k = 0; k < nt; k++)
        for (size_t a = 0; a < 4; a++)
            for (size_t s = 0; s < 5; s++) {
                size_t n = sizes[s];
                /* values across every kink: -3, 0, 3, 6, and exactly on them */
                float *x = random_floats(n, -8.0f, 8.0f), *dy = random_floats(n, -1.0f, 1.0f);
                if (n > 4) x[0] = 0.0f, x[1] = 6.0f, x[2] = -3.0f, x[3] = 3.0f;
                float *y0 = malloc(n * sizeof *y0), *y1 = malloc(n * sizeof *y1);
                float *dx0 = random_floats(n, -1.0f, 1.0f), *dx1 = copy(dx0, n);
                rg_kernels_ref.act_forward(acts[a], x, y0, n);
                t[k]->act_forward(acts[a], x, y1, n);
                expect_close(t[k]->name, "act forward", y1, y0, n);
                float *b = random_floats(n, -1.0f, 1.0f), *z0 = copy(x, n), *z1 = copy(x, n);
                for (size_t rows = 1; rows <= n; rows *= 7)
                    if (n % rows == 0) { /* as rows x channels */
                        rg_kernels_ref.bias_act(z0, rows, (int32_t)(n / rows), b, acts[a]);
                        t[k]->bias_act(z1, rows, (int32_t)(n / rows), b, acts[a]);
                        expect_close(t[k]->name, "bias_act", z1, z0, n);
                    }
                free(b), free(z0), free(z1);
                for (int store = 0; store < 2; store++) {
                    rg_kernels_ref.act_backward(acts[a], x, dy, dx0, n, store);
                    t[k]->act_backward(acts[a], x, dy, dx1, n, store);
                    expect_close(t[k]->name, "act backward", dx1, dx0, n);
                }
                free(x), free(dy), free(y0), free(y1), free(dx0), free(dx1);
            }
}

static void test_batch_norm(void **state)
{
    (void)state;
    const rg_kernel_table *t[2];
    int nt = fast_tables(t);
    /* past 128 and 64: the sums take several slices of channels (bn.inc) */
    const int32_t channels[] = {1, 3, 8, 16, 24, 40, 64, 100, 160, 300};
    const size_t rows_list[] = {1, 5, 49, 784};
    for (int k = 0; k < nt; k++)
        for (size_t ci = 0; ci < 10; ci++)
            for (size_t ri = 0; ri < 4; ri++) {
                int32_t C = channels[ci];
                size_t rows = rows_list[ri], n = rows * (size_t)C;
                float *x = random_floats(n, -2.0f, 3.0f), *dy = random_floats(n, -1.0f, 1.0f);
                float *mean = random_floats((size_t)C, -0.5f, 0.5f), *scale = random_floats((size_t)C, 0.5f, 2.0f);
                float *shift = random_floats((size_t)C, -1.0f, 4.0f), *k1 = random_floats((size_t)C, -1.0f, 1.0f);
                float *k2 = random_floats((size_t)C, -0.1f, 0.1f), *k3 = random_floats((size_t)C, -0.1f, 0.1f);
                float s0[300], s1[300], f0[300], f1[300];
                rg_kernels_ref.bn_sums(x, mean, rows, C, s0, s1);
                t[k]->bn_sums(x, mean, rows, C, f0, f1);
                expect_close(t[k]->name, "bn_sums s0", f0, s0, (size_t)C);
                expect_close(t[k]->name, "bn_sums s1", f1, s1, (size_t)C);
                for (size_t a = 0; a < 4; a++) {
                    float *y0 = malloc(n * sizeof *y0), *y1 = malloc(n * sizeof *y1);
                    rg_kernels_ref.bn_apply(x, scale, shift, rows, C, acts[a], y0);
                    t[k]->bn_apply(x, scale, shift, rows, C, acts[a], y1);
                    expect_close(t[k]->name, "bn_apply", y1, y0, n);
                    if (acts[a] != RG_ACT_HSWISH) { /* only relu/relu6 are fused into the backward */
                        rg_kernels_ref.bn_grad_sums(x, dy, scale, shift, acts[a], mean, rows, C, s0, s1);
                        t[k]->bn_grad_sums(x, dy, scale, shift, acts[a], mean, rows, C, f0, f1);
                        expect_close(t[k]->name, "bn_grad_sums s0", f0, s0, (size_t)C);
                        expect_close(t[k]->name, "bn_grad_sums s1", f1, s1, (size_t)C);
                        for (int store = 0; store < 2; store++) {
                            float *dx0 = random_floats(n, -1.0f, 1.0f), *dx1 = copy(dx0, n);
                            rg_kernels_ref.bn_grad_apply(x, dy, scale, shift, acts[a], mean, k1, k2, k3, rows, C, dx0,
                                                         store);
                            t[k]->bn_grad_apply(x, dy, scale, shift, acts[a], mean, k1, k2, k3, rows, C, dx1, store);
                            expect_close(t[k]->name, "bn_grad_apply", dx1, dx0, n);
                            free(dx0), free(dx1);
                        }
                    }
                    free(y0), free(y1);
                }
                free(x), free(dy), free(mean), free(scale), free(shift), free(k1), free(k2), free(k3);
            }
}

static void test_depthwise(void **state)
{
    (void)state;
    const rg_kernel_table *t[2];
    int nt = fast_tables(t);
    /* h, w, c, kh, kw, stride, pad */
    static const int32_t cases[][7] = {
        {28, 28, 16, 3, 3, 1, 1}, {28, 28, 96, 3, 3, 2, 1}, {14, 14, 24, 3, 3, 1, 1}, {7, 7, 40, 3, 3, 1, 1},
        {7, 7, 3, 3, 3, 2, 1},    {9, 11, 17, 5, 5, 1, 2},  {9, 9, 33, 5, 5, 2, 2},   {6, 6, 8, 7, 7, 1, 3},
        {5, 8, 20, 3, 5, 1, 1},   {8, 8, 1, 3, 3, 1, 0},    {2, 2, 24, 3, 3, 1, 1},   {10, 10, 16, 1, 1, 1, 0},
        {12, 12, 48, 3, 3, 2, 0}, {4, 4, 160, 3, 3, 1, 1},
    };
    for (int k = 0; k < nt; k++)
        for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
            const int32_t *c = cases[ci];
            rg_dw_geom g = {c[0], c[1], c[2], 0, 0, c[3], c[4], c[5], c[6]};
            g.ho = (g.h + 2 * g.pad - g.kh) / g.stride + 1;
            g.wo = (g.w + 2 * g.pad - g.kw) / g.stride + 1;
            size_t xn = (size_t)g.h * g.w * g.c, yn = (size_t)g.ho * g.wo * g.c, wn = (size_t)g.kh * g.kw * g.c;
            float *x = random_floats(xn, -1.0f, 1.0f), *wt = random_floats(wn, -1.0f, 1.0f);
            float *bias = random_floats((size_t)g.c, -1.0f, 1.0f), *dy = random_floats(yn, -1.0f, 1.0f);
            float *y0 = malloc(yn * sizeof *y0), *y1 = malloc(yn * sizeof *y1);
            char what[96];
            snprintf(what, sizeof what, "dw %dx%dx%d k%dx%d s%d p%d", g.h, g.w, g.c, g.kh, g.kw, g.stride, g.pad);
            for (int with_bias = 0; with_bias < 2; with_bias++)
                for (size_t a = 0; a < 4; a++) {
                    rg_kernels_ref.dw_forward(&g, x, wt, with_bias ? bias : NULL, acts[a], y0);
                    t[k]->dw_forward(&g, x, wt, with_bias ? bias : NULL, acts[a], y1);
                    expect_close(t[k]->name, what, y1, y0, yn);
                }
            for (int store = 0; store < 2; store++) {
                float *dx0 = random_floats(xn, -1.0f, 1.0f), *dx1 = copy(dx0, xn);
                rg_kernels_ref.dw_backward_data(&g, dy, wt, dx0, store);
                t[k]->dw_backward_data(&g, dy, wt, dx1, store);
                expect_close(t[k]->name, what, dx1, dx0, xn);
                free(dx0), free(dx1);
            }
            float *dw0 = random_floats(wn, 5.0f, 6.0f), *dw1 = random_floats(wn, 5.0f, 6.0f); /* overwritten */
            rg_kernels_ref.dw_backward_weight(&g, dy, x, dw0);
            t[k]->dw_backward_weight(&g, dy, x, dw1);
            expect_close(t[k]->name, what, dw1, dw0, wn);
            free(x), free(wt), free(bias), free(dy), free(y0), free(y1), free(dw0), free(dw1);
        }
}

static void test_gemm(void **state)
{
    (void)state;
    const rg_kernel_table *t[2];
    int nt = fast_tables(t);
    /* M, N, K: tiles, tails of rows and of columns, K of 1 */
    static const int32_t cases[][3] = {{784, 64, 16}, {49, 40, 160}, {7, 33, 5}, {1, 10, 256}, {13, 16, 1},
                                       {6, 48, 24},   {5, 7, 3},     {100, 320, 80}, {25, 24, 96},
                                       {9, 8, 12},    {8, 20, 7},    {12, 17, 9},   {19, 56, 7},
                                       {18, 31, 4},   {24, 12, 5},   {30, 40, 3}};
    for (int k = 0; k < nt; k++)
        for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
            int32_t M = cases[ci][0], N = cases[ci][1], K = cases[ci][2];
            int32_t lda = K + 3, ldb = N + 5, ldc = N + 2; /* leading dimensions wider than the matrices */
            size_t cn = (size_t)M * ldc;
            float *A = random_floats((size_t)M * lda, -1.0f, 1.0f), *B = random_floats((size_t)K * ldb, -1.0f, 1.0f);
            float *bias = random_floats((size_t)N, -1.0f, 1.0f);
            char what[64];
            snprintf(what, sizeof what, "gemm %dx%dx%d", M, N, K);
            for (int acc = 0; acc < 2; acc++)
                for (size_t a = 0; a < 4; a++) {
                    float *c0 = random_floats(cn, -1.0f, 1.0f), *c1 = copy(c0, cn);
                    /* with accumulate, bias and activation too: a fused residual add */
                    const float *b = a % 2 ? bias : NULL;
                    rg_kernels_ref.gemm_nn(M, N, K, A, lda, B, ldb, c0, ldc, acc, acc ? b : bias, acts[a]);
                    t[k]->gemm_nn(M, N, K, A, lda, B, ldb, c1, ldc, acc, acc ? b : bias, acts[a]);
                    expect_close(t[k]->name, what, c1, c0, cn); /* the padding columns must stay untouched too */
                    free(c0), free(c1);
                }
            /* a row gives the same bits alone as inside a tile */
            float *full = calloc(cn, sizeof *full), *row = calloc((size_t)ldc, sizeof *row);
            t[k]->gemm_nn(M, N, K, A, lda, B, ldb, full, ldc, 0, bias, RG_ACT_NONE);
            t[k]->gemm_nn(1, N, K, A + (size_t)(M - 1) * lda, lda, B, ldb, row, ldc, 0, bias, RG_ACT_NONE);
            assert_memory_equal(row, full + (size_t)(M - 1) * ldc, (size_t)N * sizeof(float));
            free(full), free(row), free(A), free(B), free(bias);
        }
}

/* The OpenBLAS products of kernels/gemm.h against a plain sum, on one row
 * (a matrix-vector product there) and on several, B plain and transposed,
 * beta 0 over a C holding NaN (cleared, not scaled) and beta 1. */
static void test_blas_products(void **state)
{
    (void)state;
    enum { N = 10, K = 37 };
    float *B = random_floats((size_t)N * K, -1.0f, 1.0f), *A = random_floats(3 * K, -1.0f, 1.0f);
    for (int trans_b = 0; trans_b < 2; trans_b++)
        for (int M = 1; M <= 3; M += 2)
            for (int beta = 0; beta < 2; beta++) {
                float want[3 * N], got[3 * N];
                for (int i = 0; i < M * N; i++) got[i] = beta ? 0.5f * (float)i : NAN;
                for (int i = 0; i < M; i++)
                    for (int j = 0; j < N; j++) {
                        double sum = beta ? got[i * N + j] : 0.0;
                        for (int k = 0; k < K; k++)
                            sum += (double)A[i * K + k] * (trans_b ? B[j * K + k] : B[k * N + j]);
                        want[i * N + j] = (float)sum;
                    }
                char what[64];
                snprintf(what, sizeof what, "rg_gemm_rows M=%d trans_b=%d beta=%d", M, trans_b, beta);
                rg_gemm_rows(trans_b, M, N, K, A, K, B, trans_b ? K : N, (float)beta, got, N);
                expect_close("blas", what, got, want, (size_t)M * N);
            }
    free(A), free(B);
}

static void test_dense_conv(void **state)
{
    (void)state;
    const rg_kernel_table *t[2];
    int nt = fast_tables(t);
    /* padded h, w, cin, cout, kh, kw, stride */
    static const int32_t cases[][7] = {{30, 30, 16, 16, 3, 3, 1}, {16, 16, 32, 64, 3, 3, 1}, {9, 9, 1, 16, 3, 3, 1},
                                       {8, 11, 3, 10, 3, 3, 1},   {9, 9, 17, 33, 5, 5, 1},  {6, 8, 8, 40, 1, 3, 1},
                                       {4, 4, 7, 5, 3, 3, 1},     {30, 30, 16, 32, 3, 3, 2}, {16, 15, 32, 64, 3, 3, 2},
                                       {13, 12, 5, 19, 1, 1, 2},  {11, 12, 3, 17, 5, 3, 3},  {7, 7, 20, 48, 3, 3, 1}};
    for (int k = 0; k < nt; k++)
        for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
            const int32_t *c = cases[ci];
            rg_conv_geom g = {c[0], c[1], c[2], (c[0] - c[4]) / c[6] + 1, (c[1] - c[5]) / c[6] + 1, c[3], c[4], c[5], c[6]};
            size_t xn = (size_t)g.hp * g.wp * g.cin, yn = (size_t)g.ho * g.wo * g.cout;
            size_t wn = (size_t)g.kh * g.kw * g.cin * g.cout;
            float *x = random_floats(xn, -1.0f, 1.0f), *w = random_floats(wn, -1.0f, 1.0f);
            float *bias = random_floats((size_t)g.cout, -1.0f, 1.0f), *dy = random_floats(yn, -1.0f, 1.0f);
            char what[96];
            snprintf(what, sizeof what, "conv %dx%dx%d->%d k%dx%d s%d", g.hp, g.wp, g.cin, g.cout, g.kh, g.kw, g.stride);
            for (int acc = 0; acc < 2; acc++)
                for (size_t a = 0; a < 4; a++) {
                    float *y0 = random_floats(yn, -1.0f, 1.0f), *y1 = copy(y0, yn);
                    rg_kernels_ref.conv_forward(&g, x, w, y0, acc, acc ? NULL : bias, acts[a]);
                    t[k]->conv_forward(&g, x, w, y1, acc, acc ? NULL : bias, acts[a]);
                    expect_close(t[k]->name, what, y1, y0, yn);
                    free(y0), free(y1);
                }
            float *d0 = random_floats(wn, -1.0f, 1.0f), *d1 = copy(d0, wn);
            rg_kernels_ref.conv_weight_grad(&g, x, dy, d0);
            t[k]->conv_weight_grad(&g, x, dy, d1);
            expect_close(t[k]->name, what, d1, d0, wn);
            free(x), free(w), free(bias), free(dy), free(d0), free(d1);
        }
}

/* Winograd F(2x2, 3x3) transforms: the input transform is additions only
 * and must give the reference's bits; the output transform adds the bias
 * and applies the activation (a multiply for hard-swish), within the
 * tolerance. Odd sizes leave tiles half outside the image; channel counts
 * leave vector tails; blocks start inside the grid. */
static void test_winograd_transforms(void **state)
{
    (void)state;
    const rg_kernel_table *t[2];
    int nt = fast_tables(t);
    /* padded h, w, channels, first tile, tiles */
    static const int32_t cases[][5] = {{30, 30, 16, 0, 196}, {9, 9, 40, 3, 13}, {16, 15, 24, 5, 30}, {4, 5, 3, 0, 2}};
    for (int k = 0; k < nt; k++)
        for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
            const int32_t *c = cases[ci];
            int32_t hp = c[0], wp = c[1], ch = c[2], t0 = c[3], n = c[4], ho = hp - 2, wo = wp - 2;
            int32_t tiles_w = (wo + 1) / 2;
            size_t xn = (size_t)hp * wp * ch, vn = (size_t)16 * n * ch, yn = (size_t)ho * wo * ch;
            float *x = random_floats(xn, -1.0f, 1.0f), *bias = random_floats((size_t)ch, -1.0f, 1.0f);
            float *v0 = random_floats(vn, -1.0f, 1.0f), *v1 = copy(v0, vn);
            rg_kernels_ref.wino_input(x, hp, wp, ch, tiles_w, t0, n, v0);
            t[k]->wino_input(x, hp, wp, ch, tiles_w, t0, n, v1);
            if (memcmp(v0, v1, vn * sizeof *v0)) fail_msg("%s wino_input %dx%dx%d: not the reference's bits", t[k]->name, hp, wp, ch);
            for (size_t a = 0; a < 5; a++) { /* the four activations, then accumulating */
                char what[96];
                snprintf(what, sizeof what, "wino_output %dx%dx%d tiles %d+%d act %zu", ho, wo, ch, t0, n, a);
                float *y0 = random_floats(yn, -1.0f, 1.0f), *y1 = copy(y0, yn);
                int acc = a == 4;
                rg_act act = acc ? RG_ACT_NONE : acts[a];
                rg_kernels_ref.wino_output(v0, tiles_w, t0, n, ho, wo, ch, acc, a & 1 ? bias : NULL, act, y0);
                t[k]->wino_output(v0, tiles_w, t0, n, ho, wo, ch, acc, a & 1 ? bias : NULL, act, y1);
                expect_close(t[k]->name, what, y1, y0, yn);
                free(y0), free(y1);
            }
            free(x), free(bias), free(v0), free(v1);
        }
}

/* The reference transforms against the direct definition: a whole 3x3
 * convolution by Winograd (weights transformed here, G g G^T, in double)
 * equals the reference direct convolution. */
static void test_winograd_reference(void **state)
{
    (void)state;
    enum { HP = 9, WP = 8, CI = 5, CO = 3 };
    rg_conv_geom g = {HP, WP, CI, HP - 2, WP - 2, CO, 3, 3, 1};
    int32_t tiles_w = (g.wo + 1) / 2, tiles = tiles_w * ((g.ho + 1) / 2);
    float *x = random_floats((size_t)HP * WP * CI, -1.0f, 1.0f), *w = random_floats(9 * CI * CO, -1.0f, 1.0f);
    float y0[(HP - 2) * (WP - 2) * CO], y1[(HP - 2) * (WP - 2) * CO];
    rg_kernels_ref.conv_forward(&g, x, w, y0, 0, NULL, RG_ACT_NONE); /* w is [kh][kw][ci][co] */
    float u[16][CI][CO], *v = malloc((size_t)16 * tiles * CI * sizeof *v), *m = calloc((size_t)16 * tiles * CO, sizeof *m);
    assert_non_null(v), assert_non_null(m);
    static const double G[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
    for (int ci = 0; ci < CI; ci++)
        for (int co = 0; co < CO; co++)
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++) {
                    double s = 0.0;
                    for (int a = 0; a < 3; a++)
                        for (int b = 0; b < 3; b++) s += G[i][a] * w[((a * 3 + b) * CI + ci) * CO + co] * G[j][b];
                    u[i * 4 + j][ci][co] = (float)s;
                }
    rg_kernels_ref.wino_input(x, HP, WP, CI, tiles_w, 0, tiles, v);
    for (int xi = 0; xi < 16; xi++)
        rg_kernels_ref.gemm_nn(tiles, CO, CI, v + (size_t)xi * tiles * CI, CI, &u[xi][0][0], CO,
                               m + (size_t)xi * tiles * CO, CO, 0, NULL, RG_ACT_NONE);
    rg_kernels_ref.wino_output(m, tiles_w, 0, tiles, g.ho, g.wo, CO, 0, NULL, RG_ACT_NONE, y1);
    expect_close("ref", "winograd convolution", y1, y0, sizeof y0 / sizeof *y0);
    /* accumulating adds the same convolution again */
    rg_kernels_ref.wino_output(m, tiles_w, 0, tiles, g.ho, g.wo, CO, 1, NULL, RG_ACT_NONE, y1);
    for (size_t i = 0; i < sizeof y0 / sizeof *y0; i++) y0[i] *= 2.0f;
    expect_close("ref", "winograd convolution, accumulated", y1, y0, sizeof y0 / sizeof *y0);
    free(x), free(w), free(v), free(m);
}

/* The reference depthwise kernel against the definition in double, so the
 * reference itself is pinned down. */
static void test_depthwise_reference(void **state)
{
    (void)state;
    rg_dw_geom g = {6, 5, 3, 0, 0, 3, 3, 2, 1};
    g.ho = (g.h + 2 - 3) / 2 + 1;
    g.wo = (g.w + 2 - 3) / 2 + 1;
    size_t xn = (size_t)g.h * g.w * g.c, yn = (size_t)g.ho * g.wo * g.c;
    float *x = random_floats(xn, -1.0f, 1.0f), *wt = random_floats(27, -1.0f, 1.0f), y[64];
    rg_kernels_ref.dw_forward(&g, x, wt, NULL, RG_ACT_NONE, y);
    for (int32_t oh = 0; oh < g.ho; oh++)
        for (int32_t ow = 0; ow < g.wo; ow++)
            for (int32_t ch = 0; ch < g.c; ch++) {
                double s = 0.0;
                for (int kh = 0; kh < 3; kh++)
                    for (int kw = 0; kw < 3; kw++) {
                        int ih = oh * 2 - 1 + kh, iw = ow * 2 - 1 + kw;
                        if (ih >= 0 && ih < g.h && iw >= 0 && iw < g.w)
                            s += (double)x[((size_t)ih * g.w + iw) * g.c + ch] * wt[(kh * 3 + kw) * g.c + ch];
                    }
                float got = y[((size_t)oh * g.wo + ow) * g.c + ch];
                if (fabs(got - s) > 1e-6 * (1.0 + fabs(s))) fail_msg("ref dw (%d,%d,%d): %.9g vs %.9g", oh, ow, ch, got, s);
            }
    (void)yn;
    free(x), free(wt);
}

/* Values for fake quantization with scale s: uniform over the code range
 * and past it, exact ties (k + 1/2) s and their float neighbours, -0,
 * infinities, NaN, huge values. */
static float *fq_values(size_t n, float s)
{
    float *x = random_floats(n, -300.0f * s, 300.0f * s);
    for (size_t i = 0; i < n; i++) {
        float k = floorf(-200.0f + 400.0f * (float)rg_rng_uniform(&rng));
        switch (i % 9) {
        case 1: x[i] = (k + 0.5f) * s; break;
        case 2: x[i] = nextafterf((k + 0.5f) * s, INFINITY); break;
        case 3: x[i] = nextafterf((k + 0.5f) * s, -INFINITY); break;
        default: break;
        }
    }
    const float special[] = {-0.0f, 0.0f, INFINITY, -INFINITY, NAN, 1e30f, -1e30f, 3e9f * s, -3e9f * s};
    for (size_t k = 0; k < sizeof special / sizeof *special && 7 * k + 5 < n; k++) x[7 * k + 5] = special[k];
    return x;
}

static void test_fake_quant(void **state)
{
    (void)state;
    const rg_kernel_table *t[2];
    int nt = fast_tables(t);
    const size_t sizes[] = {1, 5, 16, 17, 40, 333, 1000};
    for (int k = 0; k < nt; k++)
        for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
            size_t n = sizes[si];
            float s = 0.001f + 0.1f * (float)rg_rng_uniform(&rng);
            int32_t zp = (int32_t)(rg_rng_uniform(&rng) * 255.0) - 128;
            const int32_t ranges[][2] = {{-128, 127}, {-7, 7}, {zp, 127}};
            float *x = fq_values(n, s), *dy = random_floats(n, -1.0f, 1.0f), *d0 = random_floats(n, -1.0f, 1.0f);
            d0[0] = -0.0f;
            float *d1 = copy(d0, n), *y0 = random_floats(n, 0, 1), *y1 = random_floats(n, 0, 1);
            for (int r = 0; r < 3; r++) {
                int32_t qmin = ranges[r][0], qmax = ranges[r][1];
                rg_kernels_ref.fq_forward(x, n, s, zp, qmin, qmax, y0);
                t[k]->fq_forward(x, n, s, zp, qmin, qmax, y1);
                assert_memory_equal(y1, y0, n * sizeof *y0);
                rg_kernels_ref.fq_ste(x, dy, n, s, zp, qmin, qmax, d0);
                t[k]->fq_ste(x, dy, n, s, zp, qmin, qmax, d1);
                assert_memory_equal(d1, d0, n * sizeof *d0);
            }
            /* min and max: without NaN exact, with one both NaN */
            float lo0, hi0, lo1, hi1;
            for (size_t i = 0; i < n; i++)
                if (x[i] != x[i]) x[i] = 0.5f;
            rg_kernels_ref.minmax(x, n, &lo0, &hi0);
            t[k]->minmax(x, n, &lo1, &hi1);
            assert_memory_equal(&lo1, &lo0, sizeof lo0);
            assert_memory_equal(&hi1, &hi0, sizeof hi0);
            x[n / 2] = NAN;
            t[k]->minmax(x, n, &lo1, &hi1);
            assert_true(isnan(lo1) && isnan(hi1));
            free(x), free(dy), free(d0), free(d1), free(y0), free(y1);
        }
}

/* Requantization of accumulators: realistic scales and multipliers (right
 * and left shifts), accumulators on the grid and off it by ties. */
static void test_fake_quant_requant(void **state)
{
    (void)state;
    const rg_kernel_table *t[2];
    int nt = fast_tables(t);
    const int32_t channels[] = {1, 3, 8, 10, 16, 24, 33};
    for (int k = 0; k < nt; k++)
        for (size_t ci = 0; ci < sizeof channels / sizeof *channels; ci++) {
            int32_t c = channels[ci];
            size_t rows = 37, n = rows * (size_t)c;
            float in_scale = 0.02f + 0.03f * (float)rg_rng_uniform(&rng);
            float out_scale = ci % 2 ? 0.05f : 0.0004f; /* the second: multipliers above 1, left shifts */
            float ws[33], acc_scale[33];
            double inv[33];
            int32_t mult[33], shift[33];
            for (int32_t j = 0; j < c; j++) {
                ws[j] = 0.001f + 0.05f * (float)rg_rng_uniform(&rng);
                acc_scale[j] = in_scale * ws[j];
                inv[j] = 1.0 / (double)acc_scale[j];
            }
            rg_error e;
            CHECK(rg_q_requant_params(in_scale, ws, c, out_scale, c, mult, shift, &e));
            int32_t zp = (int32_t)(rg_rng_uniform(&rng) * 200.0) - 100;
            rg_fq_requant q = {inv, mult, shift, zp, ci % 3 ? -128 : zp, 127, out_scale};
            float *x = malloc(n * sizeof *x), *y0 = malloc(n * sizeof *y0), *y1 = malloc(n * sizeof *y1);
            assert_non_null(x), assert_non_null(y0), assert_non_null(y1);
            for (size_t i = 0; i < n; i++) {
                double a = floor((rg_rng_uniform(&rng) - 0.5) * (i % 5 ? 2e4 : 4e8));
                if (i % 7 == 1) a += 0.5;
                x[i] = (float)(a * acc_scale[i % (size_t)c]);
            }
            const float special[] = {-0.0f, INFINITY, -INFINITY, NAN, 1e30f, -1e30f};
            for (size_t j = 0; j < sizeof special / sizeof *special && 11 * j + 3 < n; j++) x[11 * j + 3] = special[j];
            rg_kernels_ref.fq_requant(x, rows, c, &q, y0);
            t[k]->fq_requant(x, rows, c, &q, y1);
            assert_memory_equal(y1, y0, n * sizeof *y0);
            free(x), free(y0), free(y1);
        }
}

/* The add: the inputs' codes, the int8 add (scales of either size,
 * with and without a fused relu), dequantized. */
static void test_fake_quant_add(void **state)
{
    (void)state;
    const rg_kernel_table *t[2];
    int nt = fast_tables(t);
    const size_t sizes[] = {1, 7, 16, 50, 1001};
    for (int k = 0; k < nt; k++)
        for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
            size_t n = sizes[si];
            rg_qparams a = {0.01f + 0.1f * (float)rg_rng_uniform(&rng), (int32_t)(rg_rng_uniform(&rng) * 255.0) - 128};
            rg_qparams b = {0.01f + 0.1f * (float)rg_rng_uniform(&rng), (int32_t)(rg_rng_uniform(&rng) * 255.0) - 128};
            rg_qparams o = {0.02f + 0.2f * (float)rg_rng_uniform(&rng), (int32_t)(rg_rng_uniform(&rng) * 255.0) - 128};
            rg_fq_add p = {a.scale, b.scale, o.scale, {0}};
            rg_error e;
            CHECK(rg_q_add_prepare(a, b, o, si % 2 ? RG_Q_ACT_RELU : RG_Q_ACT_NONE, &p.add, &e));
            float *xa = fq_values(n, a.scale), *xb = fq_values(n, b.scale);
            float *y0 = random_floats(n, 0, 1), *y1 = random_floats(n, 0, 1);
            rg_kernels_ref.fq_add(xa, xb, n, &p, y0);
            t[k]->fq_add(xa, xb, n, &p, y1);
            assert_memory_equal(y1, y0, n * sizeof *y0);
            free(xa), free(xb), free(y0), free(y1);
        }
}

static void test_isa_choice(void **state)
{
    (void)state;
    rg_isa best = rg_cpu_isa_supported();
    rg_cpu_set_isa(RG_ISA_REF);
    assert_int_equal(rg_cpu_isa(), RG_ISA_REF);
    assert_ptr_equal(rg_kernels(), &rg_kernels_ref);
    rg_cpu_set_isa(RG_ISA_AVX512); /* clamped to what the CPU has */
    assert_int_equal(rg_cpu_isa(), best < RG_ISA_AVX512 ? best : RG_ISA_AVX512);
    rg_cpu_set_isa(RG_ISA_AVX512_VNNI);
    assert_int_equal(rg_cpu_isa(), best);
    assert_int_equal(rg_isa_parse("avx2"), RG_ISA_AVX2);
    assert_int_equal(rg_isa_parse("sse9"), -1);
}

/* OpenBLAS's fallback on CPUs newer than its release: corrected to the
 * kernels the CPU can run, an AVX2 choice left alone (regain/cpu.h). */
static void test_blas_coretype(void **state)
{
    (void)state;
    assert_string_equal(rg_blas_coretype_for("Prescott", RG_ISA_AVX512_VNNI), "SkylakeX");
    assert_string_equal(rg_blas_coretype_for("Prescott", RG_ISA_AVX512), "SkylakeX");
    assert_string_equal(rg_blas_coretype_for("Prescott", RG_ISA_AVX2), "Haswell");
    assert_string_equal(rg_blas_coretype_for("Nehalem", RG_ISA_AVX2), "Haswell");
    assert_string_equal(rg_blas_coretype_for("Sandybridge", RG_ISA_AVX512), "SkylakeX"); /* AVX without FMA */
    assert_null(rg_blas_coretype_for("Prescott", RG_ISA_REF));                        /* nothing better to run */
    assert_null(rg_blas_coretype_for("Haswell", RG_ISA_AVX512_VNNI));
    assert_null(rg_blas_coretype_for("ZEN", RG_ISA_AVX512)); /* names compare without case */
    assert_null(rg_blas_coretype_for("SkylakeX", RG_ISA_AVX512_VNNI));
    assert_null(rg_blas_coretype_for("Cooperlake", RG_ISA_AVX512_VNNI));
    assert_null(rg_blas_coretype_for(NULL, RG_ISA_AVX2));
    /* this process: whatever OpenBLAS runs has a name */
    assert_true(strlen(rg_blas_core()) > 0);
}

int main(void)
{
    rng = rg_rng_keyed(2026, 11, 29);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_activations),        cmocka_unit_test(test_batch_norm),
        cmocka_unit_test(test_depthwise),          cmocka_unit_test(test_depthwise_reference),
        cmocka_unit_test(test_gemm),               cmocka_unit_test(test_blas_products),
        cmocka_unit_test(test_dense_conv),
        cmocka_unit_test(test_winograd_transforms), cmocka_unit_test(test_winograd_reference),
        cmocka_unit_test(test_fake_quant),         cmocka_unit_test(test_fake_quant_requant),
        cmocka_unit_test(test_fake_quant_add),
        cmocka_unit_test(test_isa_choice),          cmocka_unit_test(test_blas_coretype),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
