/* Finite-difference gradient checks for the backward pass of every op.
 *
 * Each case builds a tiny graph around one op with the rg_graph_add_* calls
 * (input -> op, sometimes a few copy ops to give the op two distinct inputs),
 * fills the parameters, the buffers and the input with random values, and
 * takes the loss
 *
 *     L = sum_i output[i] * R[i]        (R fixed and random, so dL/dout = R)
 *
 * The backward pass receives R in rg_graph_output_grad(). Its gradients of
 * the input (rg_graph_grad(g, g->input)) and of every parameter tensor
 * (g->grad_data) are compared with central differences n on up to
 * MAX_COORDS randomly chosen coordinates of each tensor. L is accumulated in
 * double from the float outputs, and the step in the denominator is the one
 * actually taken in float32 (x + h is rounded).
 *
 * Shapes are deliberately awkward: odd heights and widths with stride 2
 * (7x5 inputs), grouped and depthwise convolutions, 1x1 kernels, padding 0
 * and 2, channel counts that are not multiples of 8, batches of 2 and 3, and
 * products long enough (> RG_GEMM_K_CHUNK rows) to take the chunked
 * weight-gradient path of kernels/gemm.h.
 *
 * Step. The two-point difference (L(x+h) - L(x-h)) / 2h is exact (up to
 * rounding) for any function that is a polynomial of degree <= 2 in the
 * perturbed coordinate. That covers conv, linear, pooling, add, mul (even
 * x * x), concat, slice, shuffle, gap and dropout (linear in each
 * coordinate), ReLU/ReLU6/maxpool (piecewise linear) and hard-swish
 * (piecewise quadratic), as long as x +- h stays on one piece: those cases
 * use H_EXACT = 0.05 and keep every input at least KINK_MARGIN = 0.1 (> h)
 * away from a kink (0, 6, +-3) and maxpool window values 0.25 (> 2h) apart,
 * so no tie or kink is crossed. BN and sigmoid are smooth but not
 * polynomial: they use the four-point difference (truncation O(h^4)) with
 * H_SMOOTH = 0.03, which beat the two-point one at any step on test_chain
 * (a small step drowns in rounding, a large one in truncation).
 *
 * Tolerance. What remains is float32 rounding of the forward pass: each
 * output that depends on the perturbed coordinate is off by a few ulps
 * (u = 6e-8) of its magnitude, and that error, times |R| ~ 1 and summed over
 * the affected outputs, is divided by the step. For one op that is ~1e-5 of
 * the gradient scale; through a few BN layers (test_chain) the rounding of
 * the whole forward pass adds up to ~1e-3. Measured worst cases of
 * |a - n| / (max(|a|, |n|) + rms) over 50 seeds (REGAIN_GRAD_SEED): 2.2e-4
 * for single ops, 3.2e-3 for the chain. We accept
 *
 *     |a - n| <= RTOL * max(|a|, |n|) + ATOL * rms(a over the tensor)
 *
 * with RTOL = ATOL = 1e-2: a relative check for coordinates with sizeable
 * gradients and an absolute floor, relative to the tensor's typical gradient,
 * for coordinates whose gradient is (nearly) zero. A backward that is wrong
 * by a few percent (a divisor of 3x3 instead of the in-bounds taps in
 * avgpool, a 3% scale error in the depthwise weight gradient of one channel,
 * a lost partial product, a lost accumulation) fails: each of 42 such
 * deliberate mutations of src/ops, src/kernels/gemm.c and src/graph/run.c
 * made this program fail. Every checked tensor must also have a non-zero
 * analytic gradient, so no case passes vacuously, and each case runs
 * forward + backward twice before reading the gradients, so gradients left
 * over from an earlier pass would show.
 *
 * Backward passes accumulate into their inputs' gradients (ops/op.h);
 * test_accumulate gives every op's input a second reader so that an op that
 * overwrote instead would be caught.
 *
 * Set REGAIN_GRAD_VERBOSE=1 to print the worst error of every tensor, and
 * REGAIN_GRAD_SEED=k to draw other random values (k = 0 is the default).
 */
#include "test_support.h"

#include "regain/graph.h"
#include "regain/rng.h"
#include "regain/spec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_COORDS 40
#define H_EXACT 0.05f
#define H_SMOOTH 0.03f
#define KINK_MARGIN 0.1f
#define RTOL 1e-2
#define ATOL 1e-2


/* ---- the graph under test ------------------------------------------------- */

typedef enum {
    IN_PLAIN,    /* uniform in [lo, hi] */
    IN_KINKS,    /* uniform in [lo, hi], then moved KINK_MARGIN away from each kink */
    IN_DISTINCT, /* distinct values 0.25 apart (maxpool: no ties, argmax stable under +-h) */
} input_kind;

typedef struct {
    const char *label;
    int32_t batch;
    int training;      /* ctx.training for every forward and the backward */
    float h;           /* finite-difference step */
    input_kind input;
    float lo, hi;      /* input range */
    float kinks[4];    /* IN_KINKS */
    int n_kinks;
    int32_t plan_batch; /* > batch: plan for this many, run `batch` (rg_graph_set_batch) */
    int fourth_order;   /* 4-point differences (smooth ops) */
    /* NaN in the input's gradient before the second backward: an op that
     * stores a fresh input gradient (ops/op.h) must write every position.
     * Only for a graph of one op, whose input gradient shares memory with
     * no other (gradients share memory by liveness, graph/plan.c). */
    int poison_input_grad;
} case_cfg;

static rg_graph *new_graph(int32_t h, int32_t w, int32_t c)
{
    rg_graph *g = NULL;
    CHECK(rg_graph_create(h, w, c, &g, &E));
    return g;
}

static size_t value_count(const rg_graph *g, int32_t v)
{
    rg_shape s = g->values[v].shape;
    s.n = g->batch;
    return rg_shape_count(s);
}

static void fill_uniform(rg_rng *r, float *d, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++) d[i] = lo + (hi - lo) * rg_rng_uniform(r);
}

static void fill_input(const case_cfg *cfg, rg_rng *r, float *x, size_t n)
{
    if (cfg->input == IN_DISTINCT) {
        uint32_t *perm = malloc(n * sizeof *perm);
        assert_non_null(perm);
        rg_rng_permutation(r, perm, (uint32_t)n);
        for (size_t i = 0; i < n; i++) x[i] = 0.25f * ((float)perm[i] - (float)n / 2.0f);
        free(perm);
        return;
    }
    fill_uniform(r, x, n, cfg->lo, cfg->hi);
    if (cfg->input != IN_KINKS) return;
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < cfg->n_kinks; k++) {
            float d = x[i] - cfg->kinks[k];
            if (fabsf(d) < KINK_MARGIN) x[i] = cfg->kinks[k] + (d < 0.0f ? -KINK_MARGIN : KINK_MARGIN);
        }
}

/* Forward at the current point; L = sum(out * R) in double. */
static double loss(rg_graph *g, const rg_exec *ctx, const float *R)
{
    rg_graph_forward(g, ctx);
    const float *y = rg_graph_output(g);
    size_t n = value_count(g, g->output);
    double L = 0.0;
    for (size_t i = 0; i < n; i++) L += (double)y[i] * (double)R[i];
    return L;
}

/* dL/dx at *x by central differences; *x is left perturbed. Two points
 *     (L(x+h) - L(x-h)) / 2h                               exact to degree 2
 * or, for smooth ops, four
 *     (8 (L(x+h) - L(x-h)) - (L(x+2h) - L(x-2h))) / 12h    exact to degree 4.
 * The step is the one actually taken in float32 (x + h is rounded). */
static double numeric(const case_cfg *cfg, rg_graph *g, const rg_exec *ctx, const float *R, float *x)
{
    float x0 = *x, xp = x0 + cfg->h, xm = x0 - cfg->h;
    *x = xp;
    double lp = loss(g, ctx, R);
    *x = xm;
    double lm = loss(g, ctx, R);
    double step2 = (double)xp - (double)xm; /* 2h */
    if (!cfg->fourth_order) return (lp - lm) / step2;
    *x = x0 + 2.0f * cfg->h;
    double lpp = loss(g, ctx, R);
    *x = x0 - 2.0f * cfg->h;
    double lmm = loss(g, ctx, R);
    return (8.0 * (lp - lm) - (lpp - lmm)) / (6.0 * step2);
}

/* Compares analytic gradient `ga` of tensor `x` (count floats) with central
 * differences on up to MAX_COORDS coordinates. */
static void check_tensor(const case_cfg *cfg, rg_graph *g, const rg_exec *ctx, const float *R, const char *name,
                         float *x, const float *ga, size_t count, rg_rng *r)
{
    double ss = 0.0;
    for (size_t i = 0; i < count; i++) ss += (double)ga[i] * ga[i];
    double rms = sqrt(ss / (double)count);
    if (!(rms > 0.0)) fail_msg("%s: %s: the analytic gradient is identically zero (or NaN)", cfg->label, name);

    uint32_t *perm = malloc(count * sizeof *perm);
    assert_non_null(perm);
    rg_rng_permutation(r, perm, (uint32_t)count);
    size_t m = count < MAX_COORDS ? count : MAX_COORDS;
    double worst = 0.0;
    for (size_t k = 0; k < m; k++) {
        size_t i = perm[k];
        float x0 = x[i];
        double num = numeric(cfg, g, ctx, R, &x[i]), a = ga[i];
        x[i] = x0;
        double big = fabs(a) > fabs(num) ? fabs(a) : fabs(num);
        double tol = RTOL * big + ATOL * rms, diff = fabs(a - num);
        if (!(diff <= tol)) {
            free(perm);
            fail_msg("%s: d/d %s[%zu]: analytic %.7g, numeric %.7g (|diff| %.3g > tolerance %.3g; rms %.3g)",
                     cfg->label, name, i, a, num, diff, tol, rms);
        }
        double rel = diff / (big + rms);
        if (rel > worst) worst = rel;
    }
    free(perm);
    const char *v = getenv("REGAIN_GRAD_VERBOSE");
    if (v && *v && *v != '0')
        printf("  %-28s %-24s %6zu coords, rms %9.3g, worst |a-n|/(max(|a|,|n|)+rms) %.2e\n", cfg->label, name, m,
               rms, worst);
}

/* Plans g (for cfg->plan_batch images if larger, running cfg->batch), fills
 * parameters, buffers, input and R from seed, runs forward + backward and
 * checks the input gradient and every parameter gradient. Frees g. */
static void run_case(const case_cfg *cfg, rg_graph *g, uint64_t seed)
{
    const char *extra = getenv("REGAIN_GRAD_SEED");
    if (extra && *extra) seed += 1000003u * strtoull(extra, NULL, 10);
    CHECK(rg_graph_plan(g, cfg->plan_batch > cfg->batch ? cfg->plan_batch : cfg->batch, RG_PLAN_TRAIN, &E));
    CHECK(rg_graph_set_batch(g, cfg->batch, &E));
    rg_rng r = rg_rng_keyed(seed, 1, 0);

    /* Parameters: N(0, 0.5^2), except BN gamma in [0.5, 1.5] (so that the
     * normalized output is neither vanishing nor huge). */
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const rg_node *n = &g->nodes[i];
        for (int s = 0; s < 2; s++) {
            if (n->param[s] < 0) continue;
            const rg_param *p = &g->params[n->param[s]];
            float *d = g->param_data + p->offset;
            if (n->op == RG_OP_BN && s == 0)
                fill_uniform(&r, d, p->count, 0.5f, 1.5f);
            else
                for (size_t k = 0; k < p->count; k++) d[k] = 0.5f * rg_rng_normal(&r);
        }
    }
    /* BN running statistics (used in evaluation mode): mean N(0, 0.5^2), var in [0.5, 2]. */
    for (int32_t b = 0; b < g->n_buffers; b++) {
        const rg_param *p = &g->buffers[b];
        float *d = g->buffer_data + p->offset;
        int is_var = strstr(p->name, "running_var") != NULL;
        for (size_t k = 0; k < p->count; k++) d[k] = is_var ? 0.5f + 1.5f * rg_rng_uniform(&r) : 0.5f * rg_rng_normal(&r);
    }

    size_t n_in = value_count(g, g->input), n_out = value_count(g, g->output);
    fill_input(cfg, &r, rg_graph_input(g), n_in);
    float *R = malloc(n_out * sizeof *R);
    float *gin = malloc(n_in * sizeof *gin);
    float *gpar = malloc((g->param_floats + 1) * sizeof *gpar);
    assert_true(R && gin && gpar);
    for (size_t i = 0; i < n_out; i++) R[i] = rg_rng_normal(&r);

    /* Two passes: the second must not see gradients left by the first
     * (rg_graph_backward zeroes every value and parameter gradient). */
    rg_exec ctx = {.training = cfg->training, .seed = 0x5eed, .step = 7};
    for (int pass = 0; pass < 2; pass++) {
        rg_graph_forward(g, &ctx);
        memcpy(rg_graph_output_grad(g), R, n_out * sizeof *R);
        for (size_t i = 0; cfg->poison_input_grad && pass == 1 && i < n_in; i++) rg_graph_grad(g, g->input)[i] = NAN;
        rg_graph_backward(g, &ctx);
    }
    memcpy(gin, rg_graph_grad(g, g->input), n_in * sizeof *gin);
    memcpy(gpar, g->grad_data, g->param_floats * sizeof *gpar);

    rg_rng pick = rg_rng_keyed(seed, 2, 0);
    check_tensor(cfg, g, &ctx, R, "input", rg_graph_input(g), gin, n_in, &pick);
    for (int32_t i = 0; i < g->n_params; i++) {
        const rg_param *p = &g->params[i];
        check_tensor(cfg, g, &ctx, R, p->name, g->param_data + p->offset, gpar + p->offset, p->count, &pick);
    }
    free(R);
    free(gin);
    free(gpar);
    rg_graph_free(g);
}

static case_cfg exact(const char *label, int32_t batch)
{
    return (case_cfg){.label = label, .batch = batch, .training = 1, .h = H_EXACT, .input = IN_PLAIN,
                      .lo = -2.0f, .hi = 2.0f};
}

static case_cfg smooth(const char *label, int32_t batch)
{
    case_cfg c = exact(label, batch);
    c.h = H_SMOOTH;
    c.fourth_order = 1;
    return c;
}

/* ---- convolution ------------------------------------------------------------ */

static void conv_case(const char *label, int32_t h, int32_t w, int32_t cin, rg_conv_attr a, int32_t batch,
                      uint64_t seed)
{
    rg_graph *g = new_graph(h, w, cin);
    int32_t y;
    CHECK(rg_graph_add_conv(g, "conv", g->input, a, &y, &E));
    CHECK(rg_graph_finish(g, y, &E));
    case_cfg cfg = exact(label, batch);
    cfg.poison_input_grad = 1;
    run_case(&cfg, g, seed);
}

/* Dense convolutions (the direct path; a stride splits the input gradient
 * into phases, ops/conv_direct.c). 3x3, stride 2 on an odd 7x5 input,
 * padding 1. */
static void test_conv_dense(void **state)
{
    (void)state;
    conv_case("conv 3x3 s2 p1", 7, 5, 3, (rg_conv_attr){.kh = 3, .kw = 3, .stride = 2, .pad = 1, .groups = 1, .cout = 5},
              2, 11);
    /* a kernel smaller than the stride: some phases have no tap (zeros) */
    conv_case("conv 2x2 s3 p1", 8, 7, 3, (rg_conv_attr){.kh = 2, .kw = 2, .stride = 3, .pad = 1, .groups = 1, .cout = 4},
              2, 14);
    /* stride 3 with a rectangular kernel; stride 2 without padding on an
     * even input (its last rows and columns read by no window) */
    conv_case("conv 5x3 s3 p1", 8, 7, 2, (rg_conv_attr){.kh = 5, .kw = 3, .stride = 3, .pad = 1, .groups = 1, .cout = 3},
              2, 15);
    conv_case("conv 3x3 s2 p0", 8, 6, 3, (rg_conv_attr){.kh = 3, .kw = 3, .stride = 2, .pad = 0, .groups = 1, .cout = 17},
              2, 16);
    /* a grayscale stem at batch 20: three weight-gradient groups of images */
    conv_case("conv 3x3 s2 p1 cin1", 28, 28, 1, (rg_conv_attr){.kh = 3, .kw = 3, .stride = 2, .pad = 1, .groups = 1, .cout = 8},
              20, 17);
    /* 3x3, stride 1, padding 1, 16 channels or more: the forward pass and
     * the input gradient by Winograd F(2x2, 3x3) (ops/conv_direct.c), the
     * weight gradient direct; 7x5 leaves half tiles at the bottom and the
     * right, 16 -> 17 channels unequal planes and a vector's tail */
    conv_case("conv 3x3 s1 p1 (Winograd)", 7, 5, 16,
              (rg_conv_attr){.kh = 3, .kw = 3, .stride = 1, .pad = 1, .groups = 1, .cout = 17}, 2, 18);
    /* a rectangular kernel and stride 1 */
    conv_case("conv 3x1 s1 p0", 6, 5, 4, (rg_conv_attr){.kh = 3, .kw = 1, .stride = 1, .pad = 0, .groups = 1, .cout = 3},
              3, 12);
    /* 2 x 33 x 65 = 4290 output positions: more than RG_GEMM_K_CHUNK, so the
     * weight gradient is summed from two partial products (kernels/gemm.h) */
    conv_case("conv 3x3 s1 p1 (K chunks)", 33, 65, 3,
              (rg_conv_attr){.kh = 3, .kw = 3, .stride = 1, .pad = 1, .groups = 1, .cout = 2}, 2, 13);
}

/* Two groups, padding 0, stride 2. */
static void test_conv_grouped(void **state)
{
    (void)state;
    conv_case("conv g2 3x3 s2 p0", 7, 5, 6, (rg_conv_attr){.kh = 3, .kw = 3, .stride = 2, .pad = 0, .groups = 2, .cout = 10},
              2, 21);
    /* groups with a depth multiplier (groups = cin, cout = 2 cin: not the depthwise path) */
    conv_case("conv g3 cout6 3x3 s1 p1", 5, 4, 3,
              (rg_conv_attr){.kh = 3, .kw = 3, .stride = 1, .pad = 1, .groups = 3, .cout = 6}, 2, 22);
}

/* Depthwise (groups = cin = cout): the direct path. */
static void test_conv_depthwise(void **state)
{
    (void)state;
    conv_case("dw 3x3 s2 p1", 7, 5, 5, (rg_conv_attr){.kh = 3, .kw = 3, .stride = 2, .pad = 1, .groups = 5, .cout = 5},
              3, 31);
    conv_case("dw 5x5 s1 p2 bias", 5, 7, 3,
              (rg_conv_attr){.kh = 5, .kw = 5, .stride = 1, .pad = 2, .groups = 3, .cout = 3, .has_bias = 1}, 2, 32);
    /* stride 1 with a fresh input gradient runs the forward kernel on the
     * flipped weight (ops/conv_depthwise.c): padding 0 makes its padding 2 */
    conv_case("dw 3x3 s1 p0", 6, 7, 18, (rg_conv_attr){.kh = 3, .kw = 3, .stride = 1, .pad = 0, .groups = 18, .cout = 18},
              2, 33);
}

/* 1x1, stride 1, no padding, one group: the single-sgemm path. */
static void test_conv_pointwise(void **state)
{
    (void)state;
    conv_case("pw 1x1", 7, 5, 7, (rg_conv_attr){.kh = 1, .kw = 1, .stride = 1, .pad = 0, .groups = 1, .cout = 3}, 3,
              41);
    conv_case("pw 1x1 bias", 3, 5, 5,
              (rg_conv_attr){.kh = 1, .kw = 1, .stride = 1, .pad = 0, .groups = 1, .cout = 9, .has_bias = 1}, 2, 42);
    /* 2 x 33 x 65 rows > RG_GEMM_K_CHUNK: chunked weight gradient */
    conv_case("pw 1x1 (K chunks)", 33, 65, 3, (rg_conv_attr){.kh = 1, .kw = 1, .stride = 1, .pad = 0, .groups = 1, .cout = 2},
              2, 43);
}

/* 1x1 with stride 2 (a ResNet down-sampling shortcut): im2col path. */
static void test_conv_strided_1x1(void **state)
{
    (void)state;
    conv_case("conv 1x1 s2", 7, 5, 6, (rg_conv_attr){.kh = 1, .kw = 1, .stride = 2, .pad = 0, .groups = 1, .cout = 5}, 2,
              51);
}

/* Bias, 5x5 kernel, padding 2, stride 2. */
static void test_conv_bias(void **state)
{
    (void)state;
    conv_case("conv 5x5 s2 p2 bias", 7, 5, 3,
              (rg_conv_attr){.kh = 5, .kw = 5, .stride = 2, .pad = 2, .groups = 1, .cout = 4, .has_bias = 1}, 3, 61);
}

/* ---- batch normalization ------------------------------------------------------ */

static void bn_case(const char *label, int training, uint64_t seed)
{
    rg_graph *g = new_graph(5, 7, 5);
    int32_t y;
    CHECK(rg_graph_add_bn(g, "bn", g->input, &y, &E));
    CHECK(rg_graph_finish(g, y, &E));
    case_cfg cfg = smooth(label, 2);
    cfg.training = training;
    /* an offset input: the mean matters */
    cfg.lo = -1.0f;
    cfg.hi = 3.0f;
    run_case(&cfg, g, seed);
}

/* Training: batch statistics. (The forward also moves the running statistics
 * on every call; the training-mode output does not read them.) */
static void test_bn_train(void **state)
{
    (void)state;
    bn_case("bn train", 1, 71);
}

/* Evaluation: the running statistics normalize, the op is affine. */
static void test_bn_eval(void **state)
{
    (void)state;
    bn_case("bn eval", 0, 72);
}

/* ---- activations ---------------------------------------------------------------- */

static void unary_case(rg_op_type op, case_cfg cfg, uint64_t seed)
{
    rg_graph *g = new_graph(7, 5, 3);
    int32_t y;
    CHECK(rg_graph_add_unary(g, op, "act", g->input, &y, &E));
    CHECK(rg_graph_finish(g, y, &E));
    run_case(&cfg, g, seed);
}

static void test_relu(void **state)
{
    (void)state;
    case_cfg c = exact("relu", 2);
    c.input = IN_KINKS;
    c.kinks[0] = 0.0f;
    c.n_kinks = 1;
    unary_case(RG_OP_RELU, c, 81);
}

static void test_relu6(void **state)
{
    (void)state;
    case_cfg c = exact("relu6", 2);
    c.input = IN_KINKS;
    c.lo = -2.0f;
    c.hi = 8.0f; /* both kinks and all three pieces */
    c.kinks[0] = 0.0f;
    c.kinks[1] = 6.0f;
    c.n_kinks = 2;
    unary_case(RG_OP_RELU6, c, 91);
}

static void test_hswish(void **state)
{
    (void)state;
    case_cfg c = exact("hswish", 3);
    c.input = IN_KINKS;
    c.lo = -5.0f;
    c.hi = 5.0f;
    c.kinks[0] = -3.0f;
    c.kinks[1] = 3.0f;
    c.n_kinks = 2;
    unary_case(RG_OP_HSWISH, c, 101);
}

static void test_sigmoid(void **state)
{
    (void)state;
    case_cfg c = smooth("sigmoid", 2);
    c.lo = -4.0f;
    c.hi = 4.0f;
    unary_case(RG_OP_SIGMOID, c, 111);
}

/* ---- add and mul ------------------------------------------------------------------- */

/* Two distinct operands of one input: channels [0, 4) and [4, 8) of x. */
static void two_halves(rg_graph *g, int32_t *a, int32_t *b)
{
    CHECK(rg_graph_add_slice(g, "lo", g->input, 0, 4, a, &E));
    CHECK(rg_graph_add_slice(g, "hi", g->input, 4, 4, b, &E));
}

static void test_add(void **state)
{
    (void)state;
    rg_graph *g = new_graph(7, 5, 8);
    int32_t a, b, y;
    two_halves(g, &a, &b);
    CHECK(rg_graph_add_binary(g, RG_OP_ADD, "add", a, b, &y, &E));
    CHECK(rg_graph_finish(g, y, &E));
    case_cfg c = exact("add", 2);
    run_case(&c, g, 121);
}

/* x + x: both contributions must accumulate into the one gradient (dx = 2 dy). */
static void test_add_self(void **state)
{
    (void)state;
    rg_graph *g = new_graph(7, 5, 3);
    int32_t y;
    CHECK(rg_graph_add_binary(g, RG_OP_ADD, "add", g->input, g->input, &y, &E));
    CHECK(rg_graph_finish(g, y, &E));
    case_cfg c = exact("add self", 3);
    run_case(&c, g, 122);
}

/* add + relu6 fused (graph/fuse.c), x + x: the gradient masked by the
 * fused activation's output and accumulated twice; kinks where 2x is 0 or 6. */
static void test_add_self_relu6(void **state)
{
    (void)state;
    rg_graph *g = new_graph(7, 5, 3);
    int32_t y, z;
    CHECK(rg_graph_add_binary(g, RG_OP_ADD, "add", g->input, g->input, &y, &E));
    CHECK(rg_graph_add_unary(g, RG_OP_RELU6, "act", y, &z, &E));
    CHECK(rg_graph_finish(g, z, &E));
    case_cfg c = exact("add self relu6", 2);
    c.input = IN_KINKS;
    c.lo = -2.0f;
    c.hi = 5.0f;
    c.kinks[0] = 0.0f;
    c.kinks[1] = 3.0f;
    c.n_kinks = 2;
    run_case(&c, g, 123);
}

/* Runs add(x[..., :4], x[..., 4:]) -> act fused, or plain with every value
 * tapped (taps keep fusion off), on the same input and output gradient;
 * returns the output and the input gradient, and whether the add was fused. */
static int add_act_run(rg_op_type act, int plain, float *out, float *in_grad)
{
    rg_graph *g = new_graph(7, 5, 8);
    int32_t a, b, y, z;
    two_halves(g, &a, &b);
    CHECK(rg_graph_add_binary(g, RG_OP_ADD, "add", a, b, &y, &E));
    CHECK(rg_graph_add_unary(g, act, "act", y, &z, &E));
    CHECK(rg_graph_finish(g, z, &E));
    if (plain)
        for (int32_t v = 0; v < g->n_values; v++) CHECK(rg_graph_tap(g, v, &E));
    CHECK(rg_graph_plan(g, 2, RG_PLAN_TRAIN, &E));
    rg_rng r = rg_rng_keyed(125, 1, 0);
    size_t n_in = value_count(g, g->input), n_out = value_count(g, g->output);
    fill_uniform(&r, rg_graph_input(g), n_in, -4.0f, 8.0f);
    rg_exec ctx = {.training = 1};
    rg_graph_forward(g, &ctx);
    for (size_t i = 0; i < n_out; i++) rg_graph_output_grad(g)[i] = rg_rng_normal(&r);
    rg_graph_backward(g, &ctx);
    memcpy(out, rg_graph_output(g), n_out * sizeof *out);
    memcpy(in_grad, rg_graph_grad(g, g->input), n_in * sizeof *in_grad);
    int fused = 0;
    for (int32_t i = 0; i < g->n_nodes; i++) fused |= g->nodes[i].op == RG_OP_ADD && g->nodes[i].fuse_next;
    rg_graph_free(g);
    return fused;
}

/* add + relu/relu6 fused against the plain ops: the same elementwise
 * operations, so the same bits (both inputs' gradients masked). */
static void test_add_act_fused(void **state)
{
    (void)state;
    const rg_op_type acts[] = {RG_OP_RELU, RG_OP_RELU6};
    enum { N_OUT = 2 * 7 * 5 * 4, N_IN = 2 * 7 * 5 * 8 };
    for (int k = 0; k < 2; k++) {
        float out[2][N_OUT], gin[2][N_IN];
        assert_int_equal(add_act_run(acts[k], 0, out[0], gin[0]), 1);
        assert_int_equal(add_act_run(acts[k], 1, out[1], gin[1]), 0);
        assert_memory_equal(out[0], out[1], sizeof out[0]);
        assert_memory_equal(gin[0], gin[1], sizeof gin[0]);
    }
}

static void test_mul(void **state)
{
    (void)state;
    rg_graph *g = new_graph(7, 5, 8);
    int32_t a, b, y;
    two_halves(g, &a, &b);
    CHECK(rg_graph_add_binary(g, RG_OP_MUL, "mul", a, b, &y, &E));
    CHECK(rg_graph_finish(g, y, &E));
    case_cfg c = exact("mul", 2);
    run_case(&c, g, 131);

    /* x * x (quadratic: central differences stay exact) */
    g = new_graph(5, 3, 5);
    CHECK(rg_graph_add_binary(g, RG_OP_MUL, "mul", g->input, g->input, &y, &E));
    CHECK(rg_graph_finish(g, y, &E));
    c = exact("mul self", 2);
    run_case(&c, g, 132);
}

/* (n,h,w,c) * (n,1,1,c): the squeeze-excitation gate, b = gap(x[..., 4:8]). */
static void test_mul_broadcast(void **state)
{
    (void)state;
    rg_graph *g = new_graph(7, 5, 8);
    int32_t a, b, gate, y;
    two_halves(g, &a, &b);
    CHECK(rg_graph_add_unary(g, RG_OP_GAP, "gap", b, &gate, &E));
    CHECK(rg_graph_add_binary(g, RG_OP_MUL, "mul", a, gate, &y, &E));
    CHECK(rg_graph_finish(g, y, &E));
    case_cfg c = exact("mul broadcast", 3);
    run_case(&c, g, 141);
}

/* ---- channel ops ------------------------------------------------------------------- */

static void test_concat2(void **state)
{
    (void)state;
    rg_graph *g = new_graph(7, 5, 7);
    int32_t a, b, y;
    CHECK(rg_graph_add_slice(g, "a", g->input, 0, 3, &a, &E));
    CHECK(rg_graph_add_slice(g, "b", g->input, 3, 4, &b, &E));
    int32_t ins[2] = {b, a}; /* reversed order, unequal widths */
    CHECK(rg_graph_add_concat(g, "cat", ins, 2, &y, &E));
    CHECK(rg_graph_finish(g, y, &E));
    case_cfg c = exact("concat 2", 2);
    run_case(&c, g, 151);
}

static void test_concat3(void **state)
{
    (void)state;
    rg_graph *g = new_graph(7, 5, 5);
    int32_t a, b, y;
    CHECK(rg_graph_add_slice(g, "a", g->input, 1, 2, &a, &E));
    CHECK(rg_graph_add_slice(g, "b", g->input, 3, 1, &b, &E));
    int32_t ins[3] = {a, g->input, b}; /* x reaches the output three ways */
    CHECK(rg_graph_add_concat(g, "cat", ins, 3, &y, &E));
    CHECK(rg_graph_finish(g, y, &E));
    case_cfg c = exact("concat 3", 3);
    run_case(&c, g, 152);
}

static void test_slice(void **state)
{
    (void)state;
    rg_graph *g = new_graph(7, 5, 7);
    int32_t y;
    CHECK(rg_graph_add_slice(g, "slice", g->input, 2, 3, &y, &E));
    CHECK(rg_graph_finish(g, y, &E));
    case_cfg c = exact("slice", 2);
    run_case(&c, g, 161);
}

static void test_shuffle(void **state)
{
    (void)state;
    /* 3 groups of 2 channels: a transposition that is not its own inverse */
    rg_graph *g = new_graph(7, 5, 6);
    int32_t y;
    CHECK(rg_graph_add_shuffle(g, "shuffle", g->input, 3, &y, &E));
    CHECK(rg_graph_finish(g, y, &E));
    case_cfg c = exact("shuffle g3", 2);
    run_case(&c, g, 171);

    g = new_graph(5, 3, 10);
    CHECK(rg_graph_add_shuffle(g, "shuffle", g->input, 2, &y, &E));
    CHECK(rg_graph_finish(g, y, &E));
    c = exact("shuffle g2", 3);
    run_case(&c, g, 172);
}

/* ---- pooling ---------------------------------------------------------------------- */

static void pool_case(rg_op_type op, case_cfg cfg, int32_t h, int32_t w, int32_t ch, int32_t k, int32_t s,
                      int32_t p, uint64_t seed)
{
    rg_graph *g = new_graph(h, w, ch);
    int32_t y;
    CHECK(rg_graph_add_pool(g, op, "pool", g->input, k, s, p, &y, &E));
    CHECK(rg_graph_finish(g, y, &E));
    run_case(&cfg, g, seed);
}

static void test_maxpool(void **state)
{
    (void)state;
    case_cfg c = exact("maxpool 3 s2 p1", 2);
    c.input = IN_DISTINCT;
    pool_case(RG_OP_MAXPOOL, c, 7, 5, 3, 3, 2, 1, 181); /* overlapping windows, padding */
    c.label = "maxpool 2 s2";
    pool_case(RG_OP_MAXPOOL, c, 7, 5, 5, 2, 2, 0, 182); /* odd sizes: last row/column unused */
}

static void test_avgpool(void **state)
{
    (void)state;
    case_cfg c = exact("avgpool 3 s2 p1", 2);
    pool_case(RG_OP_AVGPOOL, c, 7, 5, 3, 3, 2, 1, 191); /* border windows count fewer taps */
    c.label = "avgpool 5 s1 p2";
    c.batch = 3;
    pool_case(RG_OP_AVGPOOL, c, 5, 7, 2, 5, 1, 2, 192);
    c.label = "avgpool 2 s2";
    pool_case(RG_OP_AVGPOOL, c, 7, 5, 5, 2, 2, 0, 193);
}

static void test_gap(void **state)
{
    (void)state;
    rg_graph *g = new_graph(7, 5, 6);
    int32_t y;
    CHECK(rg_graph_add_unary(g, RG_OP_GAP, "gap", g->input, &y, &E));
    CHECK(rg_graph_finish(g, y, &E));
    case_cfg c = exact("gap", 3);
    run_case(&c, g, 201);
}

/* ---- linear and dropout ------------------------------------------------------------ */

static void test_linear(void **state)
{
    (void)state;
    /* a 4-d input, flattened in NHWC order */
    rg_graph *g = new_graph(3, 5, 3);
    int32_t y;
    CHECK(rg_graph_add_linear(g, "fc", g->input, 7, 1, &y, &E));
    CHECK(rg_graph_finish(g, y, &E));
    case_cfg c = exact("linear 3x5x3->7 bias", 3);
    run_case(&c, g, 211);

    /* (n,1,1,c) input, no bias */
    g = new_graph(1, 1, 9);
    CHECK(rg_graph_add_linear(g, "fc", g->input, 5, 0, &y, &E));
    CHECK(rg_graph_finish(g, y, &E));
    c = exact("linear 9->5", 2);
    run_case(&c, g, 212);

    /* a batch of 4200 > RG_GEMM_K_CHUNK images: chunked weight gradient */
    g = new_graph(1, 1, 3);
    CHECK(rg_graph_add_linear(g, "fc", g->input, 2, 1, &y, &E));
    CHECK(rg_graph_finish(g, y, &E));
    c = exact("linear 3->2 (K chunks)", 4200);
    run_case(&c, g, 213);
}

/* Training mode with a fixed (seed, step): the mask is the same in every
 * forward and in the backward, so the op is linear and finite differences
 * see the mask. */
static void test_dropout(void **state)
{
    (void)state;
    rg_graph *g = new_graph(7, 5, 6);
    int32_t y;
    CHECK(rg_graph_add_dropout(g, "drop", g->input, 0.3f, &y, &E));
    CHECK(rg_graph_finish(g, y, &E));

    /* The mask is really there (about 30% zeros) and scales kept values by 1/(1-p). */
    CHECK(rg_graph_plan(g, 3, RG_PLAN_TRAIN, &E));
    size_t n = value_count(g, g->input), zeros = 0;
    float *x = rg_graph_input(g);
    for (size_t i = 0; i < n; i++) x[i] = 1.0f;
    rg_exec ctx = {.training = 1, .seed = 0x5eed, .step = 7};
    rg_graph_forward(g, &ctx);
    const float *out = rg_graph_output(g);
    for (size_t i = 0; i < n; i++) {
        if (out[i] == 0.0f) zeros++;
        else assert_float_equal(out[i], 1.0f / 0.7f, 1e-6);
    }
    assert_in_range(zeros, n / 10, n / 2);

    case_cfg c = exact("dropout p0.3", 3);
    run_case(&c, g, 221);
}

/* ---- a chain: accumulation across consumers -------------------------------------- */

/* A small network from a spec (sigmoid activations only, so no kink is
 * crossed, and only two of them, so gradients stay well above the noise):
 * the stem output feeds both the inverted residual's expansion and its
 * residual add; BN in training mode couples all images of the batch. */
static void test_chain(void **state)
{
    (void)state;
    const char *spec = "input h=7 w=5 c=3\n"
                       "conv name=stem c=6 k=3 s=1 bn\n"
                       "ir name=b1 t=2 c=6 s=1 act=sigmoid\n"
                       "dw name=d1 k=3 s=2\n"
                       "gap\n"
                       "fc name=fc n=4\n";
    rg_graph *g = NULL;
    CHECK(rg_spec_build(spec, "chain", &g, &E));
    case_cfg c = smooth("chain (spec, bn train)", 3);
    run_case(&c, g, 231);

    /* the same on a plan for 5 images running a last, smaller batch of 3 */
    CHECK(rg_spec_build(spec, "chain", &g, &E));
    c.label = "chain (batch 3 of 5)";
    c.plan_batch = 5;
    run_case(&c, g, 232);
}

/* ---- the accumulation contract ------------------------------------------------ */

/* Backward passes must ADD to their inputs' gradients (a value read by several
 * nodes receives the sum). In the cases above the op is usually its input's
 * only reader, so an op that overwrote instead would pass. Here every op's
 * input x has a second reader that comes later in the graph, so its backward
 * runs first and an overwriting op would erase its contribution:
 *
 *     y = op(x);  a = fc_a(y);  b = fc_b(x);  output = concat(a, b)
 */
typedef enum {
    ACC_CONV, ACC_CONV_S1, ACC_CONV_2X2_S3, ACC_DW, ACC_PW, ACC_BN, ACC_RELU, ACC_RELU6, ACC_HSWISH, ACC_SIGMOID, ACC_ADD, ACC_MUL,
    ACC_MUL_BCAST, ACC_CONCAT, ACC_SLICE, ACC_SHUFFLE, ACC_MAXPOOL, ACC_AVGPOOL, ACC_GAP, ACC_LINEAR,
    ACC_DROPOUT, ACC_COUNT
} acc_op;

static const char *const acc_names[ACC_COUNT] = {
    "accumulate conv", "accumulate conv s1", "accumulate conv 2x2 s3", "accumulate dw", "accumulate pw", "accumulate bn", "accumulate relu",
    "accumulate relu6", "accumulate hswish", "accumulate sigmoid", "accumulate add", "accumulate mul",
    "accumulate mul bcast", "accumulate concat", "accumulate slice", "accumulate shuffle",
    "accumulate maxpool", "accumulate avgpool", "accumulate gap", "accumulate linear", "accumulate dropout"};

static int32_t acc_build(rg_graph *g, acc_op op)
{
    int32_t x = g->input, y = -1, t;
    int32_t both[2] = {x, x};
    switch (op) {
    case ACC_CONV:
        CHECK(rg_graph_add_conv(g, "op", x, (rg_conv_attr){.kh = 3, .kw = 3, .stride = 2, .pad = 1, .groups = 1, .cout = 5}, &y, &E));
        break;
    case ACC_CONV_S1:
        CHECK(rg_graph_add_conv(g, "op", x, (rg_conv_attr){.kh = 3, .kw = 3, .stride = 1, .pad = 1, .groups = 1, .cout = 5}, &y, &E));
        break;
    case ACC_CONV_2X2_S3:
        CHECK(rg_graph_add_conv(g, "op", x, (rg_conv_attr){.kh = 2, .kw = 2, .stride = 3, .pad = 0, .groups = 1, .cout = 5}, &y, &E));
        break;
    case ACC_DW:
        CHECK(rg_graph_add_conv(g, "op", x, (rg_conv_attr){.kh = 3, .kw = 3, .stride = 1, .pad = 1, .groups = 4, .cout = 4}, &y, &E));
        break;
    case ACC_PW:
        CHECK(rg_graph_add_conv(g, "op", x, (rg_conv_attr){.kh = 1, .kw = 1, .stride = 1, .pad = 0, .groups = 1, .cout = 3}, &y, &E));
        break;
    case ACC_BN: CHECK(rg_graph_add_bn(g, "op", x, &y, &E)); break;
    case ACC_RELU: CHECK(rg_graph_add_unary(g, RG_OP_RELU, "op", x, &y, &E)); break;
    case ACC_RELU6: CHECK(rg_graph_add_unary(g, RG_OP_RELU6, "op", x, &y, &E)); break;
    case ACC_HSWISH: CHECK(rg_graph_add_unary(g, RG_OP_HSWISH, "op", x, &y, &E)); break;
    case ACC_SIGMOID: CHECK(rg_graph_add_unary(g, RG_OP_SIGMOID, "op", x, &y, &E)); break;
    case ACC_ADD: CHECK(rg_graph_add_binary(g, RG_OP_ADD, "op", x, x, &y, &E)); break;
    case ACC_MUL: CHECK(rg_graph_add_binary(g, RG_OP_MUL, "op", x, x, &y, &E)); break;
    case ACC_MUL_BCAST:
        /* both operands of the multiply are read by others too: x by fc_b, the gate by "gate2" */
        CHECK(rg_graph_add_unary(g, RG_OP_GAP, "gate", x, &t, &E));
        CHECK(rg_graph_add_binary(g, RG_OP_MUL, "op", x, t, &y, &E));
        CHECK(rg_graph_add_binary(g, RG_OP_ADD, "gate2", t, t, &t, &E));
        CHECK(rg_graph_add_linear(g, "fc_g", t, 2, 0, &t, &E));
        CHECK(rg_graph_add_linear(g, "fc_y", y, 2, 0, &y, &E));
        both[0] = y;
        both[1] = t;
        CHECK(rg_graph_add_concat(g, "op_out", both, 2, &y, &E));
        break;
    case ACC_CONCAT: CHECK(rg_graph_add_concat(g, "op", both, 2, &y, &E)); break;
    case ACC_SLICE: CHECK(rg_graph_add_slice(g, "op", x, 1, 2, &y, &E)); break;
    case ACC_SHUFFLE: CHECK(rg_graph_add_shuffle(g, "op", x, 2, &y, &E)); break;
    case ACC_MAXPOOL: CHECK(rg_graph_add_pool(g, RG_OP_MAXPOOL, "op", x, 3, 2, 1, &y, &E)); break;
    case ACC_AVGPOOL: CHECK(rg_graph_add_pool(g, RG_OP_AVGPOOL, "op", x, 3, 2, 1, &y, &E)); break;
    case ACC_GAP: CHECK(rg_graph_add_unary(g, RG_OP_GAP, "op", x, &y, &E)); break;
    case ACC_LINEAR: CHECK(rg_graph_add_linear(g, "op", x, 5, 1, &y, &E)); break;
    case ACC_DROPOUT: CHECK(rg_graph_add_dropout(g, "op", x, 0.3f, &y, &E)); break;
    case ACC_COUNT: break;
    }
    return y;
}

static void test_accumulate(void **state)
{
    (void)state;
    for (int op = 0; op < ACC_COUNT; op++) {
        rg_graph *g = new_graph(5, 3, 4);
        int32_t y = acc_build(g, (acc_op)op), a, b, out;
        CHECK(rg_graph_add_linear(g, "fc_a", y, 4, 0, &a, &E));
        CHECK(rg_graph_add_linear(g, "fc_b", g->input, 3, 0, &b, &E));
        int32_t ins[2] = {a, b};
        CHECK(rg_graph_add_concat(g, "out", ins, 2, &out, &E));
        CHECK(rg_graph_finish(g, out, &E));
        case_cfg c = op == ACC_BN || op == ACC_SIGMOID ? smooth(acc_names[op], 2) : exact(acc_names[op], 2);
        if (op == ACC_MAXPOOL) {
            c.input = IN_DISTINCT;
        } else {
            c.input = IN_KINKS; /* every activation's kinks */
            c.lo = -5.0f;
            c.hi = 8.0f;
            c.kinks[0] = -3.0f;
            c.kinks[1] = 0.0f;
            c.kinks[2] = 3.0f;
            c.kinks[3] = 6.0f;
            c.n_kinks = 4;
        }
        run_case(&c, g, 300 + (uint64_t)op);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_dense),     cmocka_unit_test(test_conv_grouped),
        cmocka_unit_test(test_conv_depthwise), cmocka_unit_test(test_conv_pointwise),
        cmocka_unit_test(test_conv_strided_1x1), cmocka_unit_test(test_conv_bias),
        cmocka_unit_test(test_bn_train),       cmocka_unit_test(test_bn_eval),
        cmocka_unit_test(test_relu),           cmocka_unit_test(test_relu6),
        cmocka_unit_test(test_hswish),         cmocka_unit_test(test_sigmoid),
        cmocka_unit_test(test_add),            cmocka_unit_test(test_add_self),
        cmocka_unit_test(test_add_self_relu6), cmocka_unit_test(test_add_act_fused),
        cmocka_unit_test(test_mul),            cmocka_unit_test(test_mul_broadcast),
        cmocka_unit_test(test_concat2),        cmocka_unit_test(test_concat3),
        cmocka_unit_test(test_slice),          cmocka_unit_test(test_shuffle),
        cmocka_unit_test(test_maxpool),        cmocka_unit_test(test_avgpool),
        cmocka_unit_test(test_gap),            cmocka_unit_test(test_linear),
        cmocka_unit_test(test_dropout),        cmocka_unit_test(test_chain),
        cmocka_unit_test(test_accumulate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
