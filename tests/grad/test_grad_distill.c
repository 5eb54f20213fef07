/* Gradient checks of the distillation losses (train/distill_loss.c) and of
 * the graph's taps (a loss on an inner value, graph/run.c), against central
 * differences in double of the loss computed in float.
 *
 * The losses are smooth, so the four-point difference (truncation O(h^4))
 * with h = 1e-2 on logits or features of magnitude ~1 leaves float rounding
 * of the loss (~1e-7 relative, over a step of 1e-2: ~1e-5 of the loss) as
 * the error. Accepted: |a - n| <= 2e-3 * max(|a|, |n|) + 2e-3 * rms(a). A
 * gradient wrong by a factor (a missing 1/T, T^2 or 1/n, a sign, a dropped
 * term) is off by far more; every checked gradient is non-zero.
 *
 * Besides: logit KD at T = 1 equals the cross-entropy against the teacher's
 * probabilities, DKD equals its two KL divergences written out, and the
 * loss values match their definitions computed independently here. */
#include "regain/distill.h"
#include "regain/graph.h"
#include "regain/rng.h"
#include "regain/train.h"
#include "test_support.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TOL 2e-3

static void fill(float *x, size_t n, uint64_t seed, float lo, float hi)
{
    rg_rng r = rg_rng_keyed(seed, 0, 0);
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * rg_rng_uniform(&r);
}

/* rows of probabilities: softmax of random logits */
static void fill_probs(float *p, int32_t n, int32_t classes, uint64_t seed, float spread)
{
    float *z = malloc((size_t)n * classes * sizeof *z);
    fill(z, (size_t)n * classes, seed, -spread, spread);
    rg_softmax_temperature(z, n, classes, 1.0f, p);
    free(z);
}

typedef double (*loss_fn)(void *ctx, const float *x);

/* Compares the analytic gradient `a` of f at x (n floats) with four-point differences. */
static void check_gradient(const char *what, loss_fn f, void *ctx, float *x, size_t n, const float *a)
{
    double rms = 0.0;
    for (size_t i = 0; i < n; i++) rms += (double)a[i] * a[i];
    rms = sqrt(rms / (double)n);
    if (!(rms > 0.0)) fail_msg("%s: the analytic gradient is zero", what);
    const float h = 1e-2f;
    for (size_t i = 0; i < n; i++) {
        float x0 = x[i];
        double v[4];
        const float steps[4] = {-2 * h, -h, h, 2 * h};
        for (int k = 0; k < 4; k++) {
            x[i] = x0 + steps[k];
            v[k] = f(ctx, x);
        }
        x[i] = x0;
        double num = (v[0] - 8 * v[1] + 8 * v[2] - v[3]) / (12.0 * h);
        double err = fabs(num - a[i]), bound = TOL * fmax(fabs(num), fabs(a[i])) + TOL * rms;
        if (err > bound) fail_msg("%s: coordinate %zu: analytic %.7g, numeric %.7g", what, i, (double)a[i], num);
    }
}

/* ---- logit losses ------------------------------------------------------------------ */

typedef struct {
    const float *pt;
    const int32_t *y;
    int32_t n, classes;
    float T, alpha, beta;
} logit_ctx;

static double kd_at(void *c, const float *z)
{
    logit_ctx *k = c;
    return rg_kd_loss(z, k->pt, k->n, k->classes, k->T, 1.0f, NULL);
}

static double dkd_at(void *c, const float *z)
{
    logit_ctx *k = c;
    return rg_dkd_loss(z, k->pt, k->y, k->n, k->classes, k->T, k->alpha, k->beta, 1.0f, NULL, NULL, NULL);
}

static void test_kd_gradient(void **state)
{
    (void)state;
    enum { N = 5, C = 7 };
    float z[N * C], pt[N * C], dz[N * C];
    for (int t = 0; t < 3; t++) {
        float T = (float[]){1.0f, 2.5f, 4.0f}[t];
        fill(z, N * C, 11 + t, -3, 3);
        fill_probs(pt, N, C, 21 + t, 2);
        logit_ctx k = {pt, NULL, N, C, T, 0, 0};
        memset(dz, 0, sizeof dz);
        /* weight 0.7 scales the gradient and only the gradient */
        float l = rg_kd_loss(z, pt, N, C, T, 0.7f, dz);
        assert_float_equal(l, kd_at(&k, z), 1e-6);
        for (int i = 0; i < N * C; i++) dz[i] /= 0.7f;
        check_gradient("kd", kd_at, &k, z, N * C, dz);
    }
}

/* KD at T = 1, alpha = 1 is the cross-entropy against the teacher's probabilities. */
static void test_kd_is_soft_cross_entropy(void **state)
{
    (void)state;
    enum { N = 4, C = 10 };
    float z[N * C], pt[N * C], dz[N * C] = {0};
    fill(z, N * C, 3, -4, 4);
    fill_probs(pt, N, C, 4, 3);
    double ce = 0.0;
    for (int i = 0; i < N; i++) {
        double m = -INFINITY, s = 0.0;
        for (int c = 0; c < C; c++) m = fmax(m, z[i * C + c]);
        for (int c = 0; c < C; c++) s += exp(z[i * C + c] - m);
        for (int c = 0; c < C; c++) ce -= pt[i * C + c] * (z[i * C + c] - m - log(s));
    }
    ce /= N;
    float l = rg_kd_loss(z, pt, N, C, 1.0f, 1.0f, dz);
    assert_true(fabs(l - ce) < 1e-6 * fmax(1.0, fabs(ce)));
    /* and its gradient is the soft cross-entropy's: softmax(z) - pt over N */
    float p[N * C];
    rg_softmax_temperature(z, N, C, 1.0f, p);
    for (int i = 0; i < N * C; i++) assert_true(fabs(dz[i] - (p[i] - pt[i]) / N) < 1e-6);
    /* with hard one-hot teacher probabilities it is the ordinary cross-entropy */
    int32_t y[N] = {3, 0, 9, 5};
    float onehot[N * C] = {0};
    for (int i = 0; i < N; i++) onehot[i * C + y[i]] = 1.0f;
    float hard = rg_xent_forward_backward(z, y, N, C, 0.0f, NULL, NULL);
    assert_true(fabs(rg_kd_loss(z, onehot, N, C, 1.0f, 1.0f, NULL) - hard) < 1e-6);
}

static double kl(const double *p, const double *q, int n)
{
    double s = 0.0;
    for (int i = 0; i < n; i++)
        if (p[i] > 0) s += p[i] * log(p[i] / q[i]);
    return s;
}

static void test_dkd_gradient_and_value(void **state)
{
    (void)state;
    enum { N = 6, C = 5 };
    float z[N * C], pt[N * C], dz[N * C];
    int32_t y[N] = {0, 4, 2, 2, 1, 3};
    for (int t = 0; t < 2; t++) {
        float T = t ? 4.0f : 1.0f;
        fill(z, N * C, 31 + t, -3, 3);
        fill_probs(pt, N, C, 41 + t, 2);
        logit_ctx k = {pt, y, N, C, T, 1.0f, 8.0f};
        memset(dz, 0, sizeof dz);
        float tckd, nckd;
        float l = rg_dkd_loss(z, pt, y, N, C, T, 1.0f, 8.0f, 1.0f, dz, &tckd, &nckd);
        check_gradient("dkd", dkd_at, &k, z, N * C, dz);
        /* the definition, written out: binary KL and non-target KL at T, times T^2 */
        double want_tc = 0.0, want_nc = 0.0;
        for (int i = 0; i < N; i++) {
            double ps[C], m = -INFINITY, s = 0.0;
            for (int c = 0; c < C; c++) m = fmax(m, z[i * C + c] / T);
            for (int c = 0; c < C; c++) s += exp(z[i * C + c] / T - m);
            for (int c = 0; c < C; c++) ps[c] = exp(z[i * C + c] / T - m) / s;
            double bt[2] = {pt[i * C + y[i]], 1.0 - pt[i * C + y[i]]}, bs[2] = {ps[y[i]], 1.0 - ps[y[i]]};
            want_tc += kl(bt, bs, 2);
            double qt[C - 1], qs[C - 1];
            int j = 0;
            for (int c = 0; c < C; c++)
                if (c != y[i]) qt[j] = pt[i * C + c] / bt[1], qs[j++] = ps[c] / bs[1];
            want_nc += kl(qt, qs, C - 1);
        }
        want_tc *= (double)T * T / N;
        want_nc *= (double)T * T / N;
        assert_true(fabs(tckd - want_tc) < 1e-4 * fmax(1.0, want_tc));
        assert_true(fabs(nckd - want_nc) < 1e-4 * fmax(1.0, want_nc));
        assert_true(fabs(l - (want_tc + 8.0 * want_nc)) < 1e-4 * fmax(1.0, l));
    }
    /* the teacher sure of the target: no NCKD, and its gradient stays finite */
    float sure[C] = {0, 0, 1, 0, 0}, zz[C] = {1, -1, 0.5f, 2, 0}, g[C] = {0};
    int32_t yy = 2;
    float nc = -1;
    rg_dkd_loss(zz, sure, &yy, 1, C, 2.0f, 1.0f, 8.0f, 1.0f, g, NULL, &nc);
    assert_float_equal(nc, 0.0f, 0.0);
    for (int c = 0; c < C; c++) assert_true(isfinite(g[c]));

    /* A sure student: at T = 1 and a margin of 40 its target probability
     * rounds to 1 in double, yet the target's gradient is
     * -t1 s2 + t2 s1 = -(0.9)(2 e^-40) + 0.1, about 0.1, and every row of
     * the gradient sums to 0. At T = 0.01 the margin over T is 800: the
     * gradient must stay finite. */
    float zs[C] = {40, 0, 0, 0, 0}, ts[C] = {0.9f, 0.025f, 0.025f, 0.025f, 0.025f};
    int32_t y0 = 0;
    for (int t = 0; t < 2; t++) {
        float T = t ? 0.01f : 1.0f;
        memset(g, 0, sizeof g);
        rg_dkd_loss(zs, ts, &y0, 1, C, T, 1.0f, 0.0f, 1.0f, g, NULL, NULL);
        double sum = 0.0;
        for (int c = 0; c < C; c++) {
            assert_true(isfinite(g[c]));
            sum += g[c];
        }
        /* dL/dz = T^2 / T dL/du = T dL/du; at T = 0.01, s2 = 4 e^-4000 is 0 */
        double t2nt = (double)ts[1] + ts[2] + ts[3] + ts[4], s2 = t ? 0.0 : 4.0 * exp(-40.0) / (1.0 + 4.0 * exp(-40.0));
        double want = T * (-(double)ts[0] * s2 + t2nt * (1.0 - s2));
        assert_true(fabs(g[0] - want) < 1e-6 * T);
        assert_true(fabs(sum) < 1e-6 * T);
    }
}

/* ---- feature losses ------------------------------------------------------------------ */

typedef struct {
    const float *b, *ft;
    size_t count;
    rg_shape ss, ts;
    float *scratch;
} feat_ctx;

static double mse_at(void *c, const float *a)
{
    feat_ctx *k = c;
    return rg_mse_loss(a, k->b, k->count, 1.0f, NULL);
}

static void test_mse_gradient(void **state)
{
    (void)state;
    enum { N = 40 };
    float a[N], b[N], da[N] = {0};
    fill(a, N, 5, -2, 2);
    fill(b, N, 6, -2, 2);
    feat_ctx k = {.b = b, .count = N};
    double want = 0.0;
    for (int i = 0; i < N; i++) want += ((double)a[i] - b[i]) * ((double)a[i] - b[i]) / N;
    assert_true(fabs(rg_mse_loss(a, b, N, 1.0f, da) - want) < 1e-6);
    check_gradient("mse", mse_at, &k, a, N, da);
}

static double at_at(void *c, const float *fs)
{
    feat_ctx *k = c;
    return rg_at_loss(fs, k->ss, k->ft, k->ts, 1.0f, NULL, k->scratch);
}

static void check_at(rg_shape ss, rg_shape ts, uint64_t seed)
{
    size_t ns = rg_shape_count(ss), nt = rg_shape_count(ts);
    float *fs = malloc(ns * sizeof *fs), *ft = malloc(nt * sizeof *ft), *dfs = calloc(ns, sizeof *dfs);
    float *scratch = malloc(rg_at_scratch_floats(ss, ts) * sizeof *scratch);
    fill(fs, ns, seed, -1.5f, 1.5f);
    fill(ft, nt, seed + 1, 0.0f, 2.0f);
    feat_ctx k = {.ft = ft, .ss = ss, .ts = ts, .scratch = scratch};
    float l = rg_at_loss(fs, ss, ft, ts, 1.0f, dfs, scratch);
    assert_true(l > 0.0f);
    check_gradient("attention transfer", at_at, &k, fs, ns, dfs);
    /* the same maps give zero loss: attention of a scaled copy is the same */
    if (ss.h == ts.h && ss.c == ts.c) {
        for (size_t i = 0; i < ns; i++) ft[i] = 3.0f * fs[i];
        assert_true(rg_at_loss(fs, ss, ft, ts, 1.0f, NULL, scratch) < 1e-10);
    }
    free(fs);
    free(ft);
    free(dfs);
    free(scratch);
}

static void test_at_gradient(void **state)
{
    (void)state;
    check_at((rg_shape){2, 4, 4, 3}, (rg_shape){2, 4, 4, 5}, 50);  /* same size, channels differ */
    check_at((rg_shape){2, 4, 4, 3}, (rg_shape){2, 4, 4, 3}, 51);
    check_at((rg_shape){3, 6, 6, 2}, (rg_shape){3, 3, 3, 4}, 52);  /* student pooled by 2 */
    check_at((rg_shape){2, 2, 2, 3}, (rg_shape){2, 6, 6, 2}, 53);  /* teacher pooled by 3 */
}

/* ---- taps: a loss on an inner value through the graph ---------------------------------- */

typedef struct {
    rg_graph *g;
    int32_t tap;
    const float *r, *e; /* L = <output, r> + <tap value, e> */
} tap_ctx;

/* floats of value v over the graph's batch */
static size_t batch_count(const rg_graph *g, int32_t v)
{
    rg_shape s = g->values[v].shape;
    s.n = g->batch;
    return rg_shape_count(s);
}

static double tap_loss(void *c, const float *x)
{
    tap_ctx *k = c;
    size_t in = batch_count(k->g, k->g->input), out = batch_count(k->g, k->g->output), vs = batch_count(k->g, k->tap);
    memcpy(rg_graph_input(k->g), x, in * sizeof(float));
    rg_exec ctx = {.training = 1};
    rg_graph_forward(k->g, &ctx);
    double l = 0.0;
    const float *o = rg_graph_output(k->g), *v = rg_graph_act(k->g, k->tap);
    for (size_t i = 0; i < out; i++) l += (double)o[i] * k->r[i];
    for (size_t i = 0; i < vs; i++) l += (double)v[i] * k->e[i];
    return l;
}

/* conv -> BN -> relu6 -> conv -> gap: the tap sits on the relu6 value, which
 * BN+relu6 fusion would otherwise leave unstored, and then on the BN value
 * inside the chain. */
static void check_tap(const char *layer)
{
    rg_graph *g;
    int32_t v;
    CHECK(rg_graph_create(5, 5, 3, &g, &E));
    rg_conv_attr a = {.kh = 3, .kw = 3, .stride = 1, .pad = 1, .groups = 1, .cout = 4};
    CHECK(rg_graph_add_conv(g, "c1", g->input, a, &v, &E));
    CHECK(rg_graph_add_bn(g, "c1.bn", v, &v, &E));
    CHECK(rg_graph_add_unary(g, RG_OP_RELU6, "c1.relu6", v, &v, &E));
    a.cout = 6;
    CHECK(rg_graph_add_conv(g, "c2", v, a, &v, &E));
    rg_graph_add_pool(g, RG_OP_GAP, "gap", v, 0, 0, 0, &v, &E);
    CHECK(rg_graph_finish(g, v, &E));
    rg_graph_init_params(g, 9);
    /* batch-norm output in [1.5, 4.5]: the finite differences cross no relu6 kink */
    const rg_param *gamma = &g->params[rg_graph_find_param(g, "c1.bn.weight")];
    const rg_param *beta = &g->params[rg_graph_find_param(g, "c1.bn.bias")];
    for (size_t i = 0; i < gamma->count; i++) g->param_data[gamma->offset + i] = 0.5f;
    for (size_t i = 0; i < beta->count; i++) g->param_data[beta->offset + i] = 3.0f;
    int32_t tap = rg_graph_find_layer(g, layer);
    assert_true(tap > 0);
    CHECK(rg_graph_tap(g, tap, &E));
    CHECK(rg_graph_plan(g, 2, RG_PLAN_TRAIN, &E));
    assert_true(rg_graph_value_stored(g, tap));
    size_t nx = batch_count(g, g->input), no = batch_count(g, g->output), nv = batch_count(g, tap);
    float *x = malloc(nx * sizeof *x), *r = malloc(no * sizeof *r), *e = malloc(nv * sizeof *e);
    float *dx = malloc(nx * sizeof *dx);
    fill(x, nx, 60, 0.1f, 1.0f);
    fill(r, no, 61, -1, 1);
    fill(e, nv, 62, -1, 1);
    tap_ctx k = {g, tap, r, e};
    rg_graph_set_extra_grad(g, tap, e);
    for (int pass = 0; pass < 2; pass++) { /* twice: nothing left over from a pass */
        tap_loss(&k, x);
        memcpy(rg_graph_output_grad(g), r, no * sizeof(float));
        rg_exec ctx = {.training = 1};
        rg_graph_backward(g, &ctx);
    }
    memcpy(dx, rg_graph_grad(g, g->input), nx * sizeof(float));
    check_gradient(layer, tap_loss, &k, x, nx, dx);
    /* without the extra gradient the input gradient differs */
    rg_graph_set_extra_grad(g, tap, NULL);
    tap_loss(&k, x);
    memcpy(rg_graph_output_grad(g), r, no * sizeof(float));
    rg_exec ctx = {.training = 1};
    rg_graph_backward(g, &ctx);
    double diff = 0.0;
    for (size_t i = 0; i < nx; i++) diff += fabs(rg_graph_grad(g, g->input)[i] - dx[i]);
    assert_true(diff > 1e-3);
    free(x);
    free(r);
    free(e);
    free(dx);
    rg_graph_free(g);
}

static void test_tap_gradient(void **state)
{
    (void)state;
    check_tap("c1");     /* the relu6 output: the block's last node */
    check_tap("c1.bn");  /* inside the BN + relu6 chain */
}

/* Layer names: a block name stands for its last node's output. */
static void test_find_layer(void **state)
{
    (void)state;
    rg_graph *g;
    int32_t v, bn, relu;
    CHECK(rg_graph_create(4, 4, 1, &g, &E));
    rg_conv_attr a = {.kh = 1, .kw = 1, .stride = 1, .pad = 0, .groups = 1, .cout = 2};
    CHECK(rg_graph_add_conv(g, "b1.conv", g->input, a, &v, &E));
    CHECK(rg_graph_add_bn(g, "b1.conv.bn", v, &bn, &E));
    CHECK(rg_graph_add_unary(g, RG_OP_RELU, "b1.relu", bn, &relu, &E));
    CHECK(rg_graph_add_unary(g, RG_OP_RELU, "b10", relu, &v, &E));
    CHECK(rg_graph_finish(g, v, &E));
    assert_int_equal(rg_graph_find_layer(g, "b1"), relu);      /* a block: its last node's output */
    assert_int_equal(rg_graph_find_layer(g, "b1.conv"), bn);  /* conv name: after its batch norm */
    assert_int_equal(rg_graph_find_layer(g, "b10"), v);       /* "b1" is not a prefix of "b10" in the name sense */
    assert_int_equal(rg_graph_find_layer(g, "b2"), -1);
    assert_int_equal(rg_graph_find_layer(g, "b1."), -1);
    rg_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kd_gradient),    cmocka_unit_test(test_kd_is_soft_cross_entropy),
        cmocka_unit_test(test_dkd_gradient_and_value), cmocka_unit_test(test_mse_gradient),
        cmocka_unit_test(test_at_gradient),    cmocka_unit_test(test_tap_gradient),
        cmocka_unit_test(test_find_layer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
