/* The pieces of training, each on its own: the softmax cross-entropy (value
 * by hand, gradient against central finite differences in double), arg-max
 * counting, SGD and AdamW against updates computed by hand on a tiny graph,
 * the learning-rate schedules, the weight average, and the configuration
 * (every key survives format -> parse exactly; bad keys and values are
 * rejected with messages that name them). */
#include "test_support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "regain/graph.h"
#include "regain/spec.h"
#include "regain/train.h"
#include "regain/trainer.h"

static void expect_msg(const rg_error *err, const char *a, const char *b)
{
    if (a && !strstr(err->msg, a)) fail_msg("message \"%s\" lacks \"%s\"", err->msg, a);
    if (b && !strstr(err->msg, b)) fail_msg("message \"%s\" lacks \"%s\"", err->msg, b);
}

/* |got - want| <= abs + rel * |want|, with the values in the failure message. */
static void expect_near(double got, double want, double abs_tol, double rel_tol, const char *what, int idx)
{
    if (!(fabs(got - want) <= abs_tol + rel_tol * fabs(want)))
        fail_msg("%s[%d]: got %.9g, want %.9g (diff %.3g)", what, idx, got, want, fabs(got - want));
}

/* ---- loss ---------------------------------------------------------------------------- */

/* Reference loss of one sample in double, straight from the definition
 * L = -sum_c q_c log softmax(z)_c with q = (1 - eps) onehot(y) + eps / C. */
static double ref_xent(const double *z, int32_t y, int32_t classes, double eps)
{
    double zmax = z[0];
    for (int32_t c = 1; c < classes; c++) zmax = fmax(zmax, z[c]);
    double s = 0.0;
    for (int32_t c = 0; c < classes; c++) s += exp(z[c] - zmax);
    double lse = zmax + log(s), loss = 0.0;
    for (int32_t c = 0; c < classes; c++) {
        double q = eps / classes + (c == y ? 1.0 - eps : 0.0);
        loss -= q * (z[c] - lse);
    }
    return loss;
}

static void test_xent_by_hand(void **state)
{
    (void)state;
    /* z = (0, ln 2, ln 3): softmax = (1/6, 2/6, 3/6). */
    const float z[3] = {0.0f, (float)log(2.0), (float)log(3.0)};
    const int32_t y2 = 2;
    float d[3], per[1];
    float loss = rg_xent_forward_backward(z, &y2, 1, 3, 0.0f, d, per);
    /* -log(1/2) */
    expect_near(loss, log(2.0), 1e-6, 0, "loss", 0);
    expect_near(per[0], log(2.0), 1e-6, 0, "per_sample", 0);
    const double p[3] = {1.0 / 6, 2.0 / 6, 3.0 / 6};
    expect_near(d[0], p[0], 1e-6, 0, "dlogits", 0);
    expect_near(d[1], p[1], 1e-6, 0, "dlogits", 1);
    expect_near(d[2], p[2] - 1.0, 1e-6, 0, "dlogits", 2);

    /* Smoothing 0.3 over 3 classes: q = (0.1, 0.1, 0.8). */
    loss = rg_xent_forward_backward(z, &y2, 1, 3, 0.3f, d, NULL);
    double want = -(0.1 * log(1.0 / 6) + 0.1 * log(2.0 / 6) + 0.8 * log(3.0 / 6));
    expect_near(loss, want, 1e-6, 0, "smoothed loss", 0);
    expect_near(d[0], p[0] - 0.1, 1e-6, 0, "smoothed dlogits", 0);
    expect_near(d[1], p[1] - 0.1, 1e-6, 0, "smoothed dlogits", 1);
    expect_near(d[2], p[2] - 0.8, 1e-6, 0, "smoothed dlogits", 2);

    /* Two samples: the mean, and gradients divided by n = 2. Sample 1 has a
     * fourth class of negligible probability (e^-100); sample 2 is uniform
     * over the 4 classes (loss ln 4). */
    const float z2[8] = {0, (float)log(2.0), (float)log(3.0), -100, 5, 5, 5, 5};
    const int32_t y[2] = {1, 3};
    float d2[8], per2[2];
    loss = rg_xent_forward_backward(z2, y, 2, 4, 0.0f, d2, per2);
    expect_near(per2[0], log(3.0), 1e-6, 0, "per_sample", 0);
    expect_near(per2[1], log(4.0), 1e-6, 0, "per_sample", 1);
    expect_near(loss, (log(3.0) + log(4.0)) / 2, 1e-6, 0, "mean loss", 0);
    expect_near(d2[1], (2.0 / 6 - 1.0) / 2, 1e-6, 0, "dlogits/n", 1);
    expect_near(d2[3], 0.0, 1e-7, 0, "dlogits/n", 3);
    expect_near(d2[7], (0.25 - 1.0) / 2, 1e-6, 0, "dlogits/n", 7);

    /* Huge logits do not overflow: softmax is shifted by the maximum. */
    const float big[2] = {1000.0f, -1000.0f};
    const int32_t y0 = 0, y1 = 1;
    loss = rg_xent_forward_backward(big, &y0, 1, 2, 0.0f, d, NULL);
    assert_true(isfinite(loss) && loss >= 0.0f && loss < 1e-6f);
    loss = rg_xent_forward_backward(big, &y1, 1, 2, 0.0f, d, NULL);
    expect_near(loss, 2000.0, 1e-3, 0, "huge loss", 0);
    expect_near(d[0], 1.0, 1e-6, 0, "huge dlogits", 0);
    expect_near(d[1], -1.0, 1e-6, 0, "huge dlogits", 1);

    /* Soft targets (mixup): t = (0.3, 0, 0.7) with smoothing 0.3 gives
     * q = 0.7 t + 0.1 = (0.31, 0.1, 0.59); one-hot targets give the hard loss. */
    const float t[3] = {0.3f, 0.0f, 0.7f}, onehot[3] = {0, 0, 1};
    loss = rg_xent_soft_forward_backward(z, t, 1, 3, 0.3f, d, per);
    want = -(0.31 * log(1.0 / 6) + 0.1 * log(2.0 / 6) + 0.59 * log(3.0 / 6));
    expect_near(loss, want, 1e-6, 0, "soft loss", 0);
    expect_near(per[0], want, 1e-6, 0, "soft per_sample", 0);
    expect_near(d[0], p[0] - 0.31, 1e-6, 0, "soft dlogits", 0);
    expect_near(d[2], p[2] - 0.59, 1e-6, 0, "soft dlogits", 2);
    expect_near(rg_xent_soft_forward_backward(z2, onehot, 1, 3, 0.0f, NULL, NULL),
                rg_xent_forward_backward(z2, &y2, 1, 3, 0.0f, NULL, NULL), 1e-7, 0, "one-hot soft", 0);

    /* n = 0: loss 0, nothing written. */
    d[0] = 123.0f;
    assert_true(rg_xent_forward_backward(z, &y2, 0, 3, 0.1f, d, NULL) == 0.0f);
    assert_true(d[0] == 123.0f);
}

/* Analytic gradient against central differences of the double reference. */
static void check_xent_gradient(float smoothing)
{
    enum { N = 5, C = 7 };
    float z[N * C], d[N * C], per[N];
    int32_t y[N];
    for (int32_t i = 0; i < N * C; i++) z[i] = (float)(sin(1.7 * i + 0.3) * 3.0);
    for (int32_t i = 0; i < N; i++) y[i] = (3 * i + 1) % C;
    float loss = rg_xent_forward_backward(z, y, N, C, smoothing, d, per);
    double mean = 0.0;
    for (int32_t i = 0; i < N; i++) {
        double zd[C];
        for (int32_t c = 0; c < C; c++) zd[c] = z[i * C + c];
        double ref = ref_xent(zd, y[i], C, smoothing);
        expect_near(per[i], ref, 1e-6, 1e-6, "per_sample", i);
        mean += ref / N;
        for (int32_t c = 0; c < C; c++) {
            const double h = 1e-5;
            double save = zd[c];
            zd[c] = save + h;
            double lp = ref_xent(zd, y[i], C, smoothing);
            zd[c] = save - h;
            double lm = ref_xent(zd, y[i], C, smoothing);
            zd[c] = save;
            double fd = (lp - lm) / (2 * h) / N; /* of the mean over N */
            expect_near(d[i * C + c], fd, 1e-7, 1e-5, "dlogits vs finite difference", i * C + c);
        }
    }
    expect_near(loss, mean, 1e-6, 1e-6, "mean loss", 0);
    /* Each row of p - q sums to zero. */
    for (int32_t i = 0; i < N; i++) {
        double s = 0.0;
        for (int32_t c = 0; c < C; c++) s += d[i * C + c];
        expect_near(s, 0.0, 1e-7, 0, "row sum of dlogits", i);
    }
}

static void test_xent_gradient(void **state)
{
    (void)state;
    check_xent_gradient(0.0f);
    check_xent_gradient(0.1f);
    check_xent_gradient(0.5f);
}

static void test_count_correct(void **state)
{
    (void)state;
    const float z[4 * 3] = {0.1f, 0.9f, 0.0f,   /* argmax 1 */
                            2.0f, -1.0f, 1.0f,  /* argmax 0 */
                            1.0f, 1.0f, 0.0f,   /* tie: the first maximum (0) wins */
                            -3.0f, -2.0f, -1.0f /* argmax 2 */};
    const int32_t all[4] = {1, 0, 0, 2}, none[4] = {0, 1, 1, 0}, some[4] = {1, 2, 1, 2};
    assert_int_equal(rg_count_correct(z, all, 4, 3), 4);
    assert_int_equal(rg_count_correct(z, none, 4, 3), 0);
    assert_int_equal(rg_count_correct(z, some, 4, 3), 2);
    assert_int_equal(rg_count_correct(z, all, 0, 3), 0);
    assert_int_equal(rg_count_correct(z + 3, all + 1, 3, 3), 3);
}

/* ---- optimizers ------------------------------------------------------------------------ */

/* input 4x4x2 -> conv c (3x3, pad 1, 2 outputs, bias) -> bn -> fc (3, bias):
 * six parameters, of which c.bias, bn.weight, bn.bias and fc.bias are no_decay. */
static rg_graph *tiny_graph(void)
{
    rg_error err = {0};
    rg_graph *g = NULL;
    int32_t v;
    assert_int_equal(rg_graph_create(4, 4, 2, &g, &err), RG_OK);
    rg_conv_attr a = {.kh = 3, .kw = 3, .stride = 1, .pad = 1, .groups = 1, .cout = 2, .has_bias = 1};
    assert_int_equal(rg_graph_add_conv(g, "c", g->input, a, &v, &err), RG_OK);
    assert_int_equal(rg_graph_add_bn(g, "bn", v, &v, &err), RG_OK);
    assert_int_equal(rg_graph_add_linear(g, "fc", v, 3, 1, &v, &err), RG_OK);
    assert_int_equal(rg_graph_finish(g, v, &err), RG_OK);
    assert_int_equal(g->n_params, 6);
    static const char *const no_decay[] = {"c.bias", "bn.weight", "bn.bias", "fc.bias"};
    for (size_t i = 0; i < 4; i++) {
        int32_t id = rg_graph_find_param(g, no_decay[i]);
        assert_true(id >= 0);
        assert_true(g->params[id].no_decay);
    }
    assert_false(g->params[rg_graph_find_param(g, "c.weight")].no_decay);
    assert_false(g->params[rg_graph_find_param(g, "fc.weight")].no_decay);
    for (int32_t i = 0; i < g->n_params; i++) {
        const rg_param *p = &g->params[i];
        for (size_t k = 0; k < p->count; k++)
            g->param_data[p->offset + k] = (float)(0.5 * sin(0.37 * (double)(p->offset + k) + 1.0));
    }
    return g;
}

/* A gradient that changes from step to step (and changes sign). */
static float grad_at(size_t k, int step) { return (float)(0.3 * cos(0.71 * (double)k + 1.3 * step) + 0.05 * step); }

typedef struct {
    double *w, *m, *v;
} ref_state;

/* Runs `steps` updates of cfg on a fresh tiny graph with learning rates
 * lrs[], and the same updates in double by hand; compares weights and moments
 * after every step. */
static void check_optimizer(const rg_optim_config *cfg, const float *lrs, int steps)
{
    rg_graph *g = tiny_graph();
    rg_error err = {0};
    rg_optim o;
    assert_int_equal(rg_optim_init(&o, cfg, g, &err), RG_OK);
    assert_int_equal(o.floats, g->param_floats);
    size_t n = g->param_floats;
    ref_state r = {calloc(n, sizeof(double)), calloc(n, sizeof(double)), calloc(n, sizeof(double))};
    assert_true(r.w && r.m && r.v);
    for (size_t k = 0; k < n; k++) r.w[k] = g->param_data[k];
    for (int s = 0; s < steps; s++) {
        for (size_t k = 0; k < n; k++) g->grad_data[k] = grad_at(k, s);
        rg_optim_step(&o, g, lrs[s]);
        assert_int_equal(o.t, (uint64_t)s + 1);
        double lr = lrs[s], t = s + 1;
        for (int32_t i = 0; i < g->n_params; i++) {
            const rg_param *p = &g->params[i];
            double wd = p->no_decay && !cfg->decay_all ? 0.0 : cfg->weight_decay;
            for (size_t j = p->offset; j < p->offset + p->count; j++) {
                double gr = g->grad_data[j];
                if (cfg->kind == RG_OPTIM_SGD) {
                    /* PyTorch SGD: g' = g + wd w; b = mu b + g'; w -= lr (nesterov ? g' + mu b : b) */
                    double g2 = gr + wd * r.w[j], mu = cfg->momentum;
                    if (mu > 0) {
                        r.m[j] = mu * r.m[j] + g2;
                        g2 = cfg->nesterov ? g2 + mu * r.m[j] : r.m[j];
                    }
                    r.w[j] -= lr * g2;
                } else {
                    /* AdamW: decoupled decay, then the bias-corrected Adam step */
                    double b1 = cfg->beta1, b2 = cfg->beta2;
                    r.w[j] -= lr * wd * r.w[j];
                    r.m[j] = b1 * r.m[j] + (1 - b1) * gr;
                    r.v[j] = b2 * r.v[j] + (1 - b2) * gr * gr;
                    double mh = r.m[j] / (1 - pow(b1, t)), vh = r.v[j] / (1 - pow(b2, t));
                    r.w[j] -= lr * mh / (sqrt(vh) + cfg->eps);
                }
                expect_near(g->param_data[j], r.w[j], 1e-6, 2e-6, p->name, (int)(j - p->offset));
                if (cfg->kind == RG_OPTIM_ADAMW || cfg->momentum > 0)
                    expect_near(o.m[j], r.m[j], 1e-6, 2e-6, "moment m", (int)j);
                if (cfg->kind == RG_OPTIM_ADAMW) expect_near(o.v[j], r.v[j], 1e-9, 2e-6, "moment v", (int)j);
            }
        }
    }
    free(r.w);
    free(r.m);
    free(r.v);
    rg_optim_free(&o);
    assert_null(o.m);
    rg_graph_free(g);
}

static void test_sgd(void **state)
{
    (void)state;
    const float lrs[4] = {0.1f, 0.05f, 0.2f, 0.01f};
    rg_optim_config c = {.kind = RG_OPTIM_SGD};
    check_optimizer(&c, lrs, 4); /* plain SGD */
    c.momentum = 0.9f;
    check_optimizer(&c, lrs, 4); /* heavy ball */
    c.nesterov = 1;
    check_optimizer(&c, lrs, 4);
    c.weight_decay = 0.1f;       /* large, so that skipping it or not shows */
    check_optimizer(&c, lrs, 4);
    c.decay_all = 1;
    check_optimizer(&c, lrs, 4);
    c = (rg_optim_config){.kind = RG_OPTIM_SGD, .weight_decay = 0.05f};
    check_optimizer(&c, lrs, 3); /* decay without momentum */

    /* A direct spot check of one step: w = 0.5, g = 0.2, wd 0.1, mu 0.9,
     * Nesterov, lr 0.1: g' = 0.25, b = 0.25, w = 0.5 - 0.1 * (0.25 + 0.225). */
    rg_graph *g = tiny_graph();
    rg_error err = {0};
    rg_optim o;
    c = (rg_optim_config){.kind = RG_OPTIM_SGD, .momentum = 0.9f, .nesterov = 1, .weight_decay = 0.1f};
    assert_int_equal(rg_optim_init(&o, &c, g, &err), RG_OK);
    const rg_param *cw = &g->params[rg_graph_find_param(g, "c.weight")];
    const rg_param *bnw = &g->params[rg_graph_find_param(g, "bn.weight")];
    memset(g->grad_data, 0, g->param_floats * sizeof(float));
    g->param_data[cw->offset] = 0.5f;
    g->grad_data[cw->offset] = 0.2f;
    g->param_data[bnw->offset] = 0.5f;
    g->grad_data[bnw->offset] = 0.2f;
    rg_optim_step(&o, g, 0.1f);
    expect_near(g->param_data[cw->offset], 0.5 - 0.1 * 0.475, 1e-7, 0, "c.weight", 0);
    expect_near(g->param_data[bnw->offset], 0.5 - 0.1 * (0.2 + 0.9 * 0.2), 1e-7, 0, "bn.weight (no decay)", 0);
    rg_optim_free(&o);
    rg_graph_free(g);
}

static void test_adamw(void **state)
{
    (void)state;
    const float lrs[4] = {0.01f, 0.02f, 0.005f, 0.01f};
    rg_optim_config c = {.kind = RG_OPTIM_ADAMW, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
    check_optimizer(&c, lrs, 4);
    c.weight_decay = 0.5f;
    check_optimizer(&c, lrs, 4);
    c.decay_all = 1;
    c.beta1 = 0.5f;
    c.beta2 = 0.9f;
    c.eps = 1e-3f;
    check_optimizer(&c, lrs, 4);

    /* The first step by hand: with bias correction m^ = g and v^ = g^2, so
     * every weight moves by lr * g / (|g| + eps) ~ lr * sign(g), after the
     * decoupled decay w *= 1 - lr * wd (decay not scaled by 1/sqrt(v)). */
    rg_graph *g = tiny_graph();
    rg_error err = {0};
    rg_optim o;
    c = (rg_optim_config){.kind = RG_OPTIM_ADAMW, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.1f};
    assert_int_equal(rg_optim_init(&o, &c, g, &err), RG_OK);
    const rg_param *fw = &g->params[rg_graph_find_param(g, "fc.weight")];
    const rg_param *fb = &g->params[rg_graph_find_param(g, "fc.bias")];
    memset(g->grad_data, 0, g->param_floats * sizeof(float));
    g->param_data[fw->offset] = 2.0f;
    g->grad_data[fw->offset] = 1e-3f;
    g->param_data[fb->offset] = 2.0f;
    g->grad_data[fb->offset] = -4.0f;
    rg_optim_step(&o, g, 0.1f);
    expect_near(g->param_data[fw->offset], 2.0 * (1 - 0.1 * 0.1) - 0.1 * 1e-3 / (1e-3 + 1e-8), 1e-6, 0, "fc.weight",
                0);
    expect_near(g->param_data[fb->offset], 2.0 + 0.1, 1e-6, 0, "fc.bias (no decay)", 0);
    rg_optim_free(&o);
    rg_graph_free(g);
}

static void test_optim_bad_config(void **state)
{
    (void)state;
    rg_graph *g = tiny_graph();
    rg_error err = {0};
    rg_optim o;
    rg_optim_config c = {.kind = RG_OPTIM_SGD, .momentum = 1.0f};
    assert_int_equal(rg_optim_init(&o, &c, g, &err), RG_ERR_ARG);
    expect_msg(&err, "momentum", NULL);
    c = (rg_optim_config){.kind = RG_OPTIM_SGD, .weight_decay = -1.0f};
    assert_int_equal(rg_optim_init(&o, &c, g, &err), RG_ERR_ARG);
    c = (rg_optim_config){.kind = RG_OPTIM_ADAMW, .beta1 = 1.0f, .beta2 = 0.999f, .eps = 1e-8f};
    assert_int_equal(rg_optim_init(&o, &c, g, &err), RG_ERR_ARG);
    expect_msg(&err, "beta1", NULL);
    c = (rg_optim_config){.kind = RG_OPTIM_ADAMW, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 0.0f};
    assert_int_equal(rg_optim_init(&o, &c, g, &err), RG_ERR_ARG);
    c = (rg_optim_config){.kind = (rg_optim_kind)7};
    assert_int_equal(rg_optim_init(&o, &c, g, &err), RG_ERR_ARG);
    expect_msg(&err, "optimizer", NULL);
    rg_graph_free(g);
}

/* ---- schedules --------------------------------------------------------------------------- */

static void test_cosine(void **state)
{
    (void)state;
    rg_schedule s = {.kind = RG_SCHED_COSINE, .base_lr = 0.1f, .total_steps = 110, .warmup_steps = 10,
                     .min_lr = 0.001f};
    expect_near(rg_schedule_lr(&s, 0), 0.0, 1e-9, 0, "cosine step", 0);     /* warm-up starts at 0 */
    expect_near(rg_schedule_lr(&s, 5), 0.05, 1e-8, 0, "cosine step", 5);    /* halfway up */
    expect_near(rg_schedule_lr(&s, 9), 0.09, 1e-8, 0, "cosine step", 9);
    expect_near(rg_schedule_lr(&s, 10), 0.1, 1e-8, 0, "cosine step", 10);   /* end of warm-up: the peak */
    expect_near(rg_schedule_lr(&s, 60), 0.0505, 1e-8, 0, "cosine step", 60); /* middle: (base + min) / 2 */
    expect_near(rg_schedule_lr(&s, 35), 0.001 + 0.099 * 0.5 * (1 + cos(M_PI / 4)), 1e-8, 0, "cosine step", 35);
    expect_near(rg_schedule_lr(&s, 109), 0.001 + 0.099 * 0.5 * (1 + cos(M_PI * 99 / 100)), 1e-8, 0, "cosine step",
                109);
    expect_near(rg_schedule_lr(&s, 110), 0.001, 1e-9, 0, "cosine step", 110); /* the end: the floor */
    expect_near(rg_schedule_lr(&s, 500), 0.001, 1e-9, 0, "cosine step", 500); /* and after */
    /* Monotone non-increasing after the warm-up. */
    for (int64_t k = 11; k <= 110; k++) assert_true(rg_schedule_lr(&s, k) <= rg_schedule_lr(&s, k - 1));

    /* Warm-up from a fraction of the peak; no warm-up at all. */
    s.warmup_start = 0.1f;
    expect_near(rg_schedule_lr(&s, 0), 0.01, 1e-8, 0, "warmup_start", 0);
    expect_near(rg_schedule_lr(&s, 5), 0.1 * (0.1 + 0.9 * 0.5), 1e-8, 0, "warmup_start", 5);
    s = (rg_schedule){.kind = RG_SCHED_COSINE, .base_lr = 0.2f, .total_steps = 100};
    expect_near(rg_schedule_lr(&s, 0), 0.2, 1e-8, 0, "no warm-up", 0);
    expect_near(rg_schedule_lr(&s, 50), 0.1, 1e-8, 0, "no warm-up", 50);
    expect_near(rg_schedule_lr(&s, 100), 0.0, 1e-9, 0, "no warm-up", 100);
}

static void test_step_and_constant(void **state)
{
    (void)state;
    rg_schedule s = {.kind = RG_SCHED_STEP, .base_lr = 0.1f, .total_steps = 100, .step_every = 30, .gamma = 0.1f};
    expect_near(rg_schedule_lr(&s, 0), 0.1, 1e-8, 0, "step", 0);
    expect_near(rg_schedule_lr(&s, 29), 0.1, 1e-8, 0, "step", 29);
    expect_near(rg_schedule_lr(&s, 30), 0.01, 1e-9, 0, "step", 30);
    expect_near(rg_schedule_lr(&s, 59), 0.01, 1e-9, 0, "step", 59);
    expect_near(rg_schedule_lr(&s, 60), 0.001, 1e-10, 0, "step", 60);
    expect_near(rg_schedule_lr(&s, 99), 1e-4, 1e-11, 0, "step", 99);
    /* The steps count from the end of the warm-up. */
    s.warmup_steps = 5;
    expect_near(rg_schedule_lr(&s, 0), 0.0, 1e-9, 0, "step+warmup", 0);
    expect_near(rg_schedule_lr(&s, 4), 0.08, 1e-8, 0, "step+warmup", 4);
    expect_near(rg_schedule_lr(&s, 5), 0.1, 1e-8, 0, "step+warmup", 5);
    expect_near(rg_schedule_lr(&s, 34), 0.1, 1e-8, 0, "step+warmup", 34);
    expect_near(rg_schedule_lr(&s, 35), 0.01, 1e-9, 0, "step+warmup", 35);

    s = (rg_schedule){.kind = RG_SCHED_CONSTANT, .base_lr = 0.03f, .total_steps = 10, .warmup_steps = 2};
    expect_near(rg_schedule_lr(&s, 1), 0.015, 1e-9, 0, "constant", 1);
    expect_near(rg_schedule_lr(&s, 2), 0.03, 1e-9, 0, "constant", 2);
    expect_near(rg_schedule_lr(&s, 1000), 0.03, 1e-9, 0, "constant", 1000);
}

/* ---- EMA ----------------------------------------------------------------------------------- */

static void test_ema(void **state)
{
    (void)state;
    rg_graph *g = tiny_graph();
    rg_error err = {0};
    assert_true(g->buffer_floats > 0);
    for (size_t k = 0; k < g->buffer_floats; k++) g->buffer_data[k] = (float)k;
    size_t np = g->param_floats, nb = g->buffer_floats;
    float *w0 = malloc(np * sizeof(float)), *b0 = malloc(nb * sizeof(float));
    assert_true(w0 && b0);
    memcpy(w0, g->param_data, np * sizeof(float));
    memcpy(b0, g->buffer_data, nb * sizeof(float));

    rg_ema e;
    assert_int_equal(rg_ema_init(&e, 0.9f, g, &err), RG_OK);
    assert_memory_equal(e.params, w0, np * sizeof(float));
    assert_memory_equal(e.buffers, b0, nb * sizeof(float));

    /* Two updates towards new weights: avg = d avg + (1 - d) cur. */
    for (size_t k = 0; k < np; k++) g->param_data[k] = w0[k] + 1.0f;
    for (size_t k = 0; k < nb; k++) g->buffer_data[k] = b0[k] * 2.0f + 1.0f;
    rg_ema_update(&e, g);
    rg_ema_update(&e, g);
    for (size_t k = 0; k < np; k++) /* 0.81 w0 + 0.19 (w0 + 1) */
        expect_near(e.params[k], w0[k] + 0.19, 1e-6, 1e-6, "ema params", (int)k);
    for (size_t k = 0; k < nb; k++)
        expect_near(e.buffers[k], 0.81 * b0[k] + 0.19 * (2.0 * b0[k] + 1.0), 1e-6, 1e-6, "ema buffers", (int)k);

    /* Swap: the graph evaluates the average; swapping back restores it. */
    float *avg = malloc(np * sizeof(float));
    assert_non_null(avg);
    memcpy(avg, e.params, np * sizeof(float));
    rg_ema_swap(&e, g);
    assert_memory_equal(g->param_data, avg, np * sizeof(float));
    for (size_t k = 0; k < np; k++) assert_true(e.params[k] == w0[k] + 1.0f);
    for (size_t k = 0; k < nb; k++) assert_true(e.buffers[k] == b0[k] * 2.0f + 1.0f);
    rg_ema_swap(&e, g);
    assert_memory_equal(e.params, avg, np * sizeof(float));
    for (size_t k = 0; k < np; k++) assert_true(g->param_data[k] == w0[k] + 1.0f);

    /* decay 0 follows the weights exactly */
    rg_ema_free(&e);
    assert_int_equal(rg_ema_init(&e, 0.0f, g, &err), RG_OK);
    for (size_t k = 0; k < np; k++) g->param_data[k] = 3.0f;
    rg_ema_update(&e, g);
    for (size_t k = 0; k < np; k++) assert_true(e.params[k] == 3.0f);
    rg_ema_free(&e);
    assert_null(e.params);

    assert_int_equal(rg_ema_init(&e, 1.0f, g, &err), RG_ERR_ARG);
    expect_msg(&err, "EMA", NULL);
    assert_int_equal(rg_ema_init(&e, -0.5f, g, &err), RG_ERR_ARG);
    assert_int_equal(rg_ema_init(&e, NAN, g, &err), RG_ERR_ARG);
    free(w0);
    free(b0);
    free(avg);
    rg_graph_free(g);
}

/* ---- configuration ---------------------------------------------------------------------------- */

/* A value for every key, each different from the default; the range edges
 * are included on purpose (a float just inside a bound must survive the
 * format -> parse round trip, or a run could never be resumed). */
static const struct {
    const char *key, *value;
} every_key[] = {
    {"model", "my model.spec"},
    {"data", "/data/some dir/fmnist#2"}, /* a "#" inside a value is not a comment */
    {"init", "runs/some run/best.safetensors"},
    {"epochs", "7"},
    {"batch", "33"},
    {"optim", "adamw"},
    {"lr", "0.0123456789"},
    {"momentum", "0.9999"},
    {"nesterov", "no"},
    {"wd", "1e-4"},
    {"decay_all", "yes"},
    {"beta1", "0.8"},
    {"beta2", "0.9999999"},
    {"adam_eps", "1e-12"},
    {"schedule", "step"},
    {"warmup_epochs", "0.5"},
    {"min_lr", "1e-5"},
    {"step_epochs", "3"},
    {"gamma", "0.3"},
    {"label_smoothing", "0.999"},
    {"ema", "0.999999"},
    {"val_split", "100"},
    {"train_limit", "2000"},
    {"test_limit", "500"},
    {"crop_pad", "0"},
    {"hflip", "off"},
    {"mean", "-0.1"},
    {"std", "1e-6"},
    {"seed", "9007199254740991"},
    {"teacher", "runs/teacher one/best.safetensors"},
    {"teacher2", "t2.safetensors"},
    {"teacher3", "t3.safetensors"},
    {"kd_alpha", "1"},
    {"kd_temperature", "0.01"},
    {"dkd_alpha", "1000"},
    {"dkd_beta", "8"},
    {"dkd_warmup", "20"},
    {"hints", "b3:l2.1,b5:l3"},
    {"hint_weight", "1e6"},
    {"at", "b7:l3"},
    {"at_weight", "0"},
    {"ptq_calib", "1000000"},
    {"ptq_observer", "entropy"},
    {"ptq_per_tensor", "yes"},
    {"ptq_equalize", "yes"},
    {"ptq_bias_correct", "yes"},
    {"ptq_adaround", "yes"},
    {"ptq_requant_fp32", "1"},
    {"threads", "3"},
    {"workers", "5"},
    {"label_noise", "0.4"},
    {"label_noise_kind", "asymmetric"},
    {"label_noise_map", "0:6, 6:0"},
    {"curriculum", "teacher"},
    {"curriculum_teacher", "runs/some run/best.safetensors"},
    {"curriculum_scores", "scores file.txt"},
    {"curriculum_score", "confidence"},
    {"curriculum_order", "hard"},
    {"pacing", "root"},
    {"pacing_start", "0.3"},
    {"pacing_full_epoch", "4"},
    {"pacing_steps", "3"},
    {"select_keep", "0.6"},
    {"select_warmup", "2"},
    {"select_ramp_epochs", "5"},
    {"select_per_class", "1"},
    {"select_relabel", "0.9"},
    {"select_refresh", "1"},
    {"augment", "trivialaugment + cutout:size=4"},
    {"erasing", "1"},
    {"mixup", "100"},
    {"cutmix", "0.5"},
    {"qat", "1"},
    {"qat_weight_bits", "4"},
    {"qat_per_tensor", "on"},
    {"qat_lsq", "yes"},
    {"qat_freeze_bn", "-1"},
    {"qat_freeze_observers", "7"},
    {"qat_momentum", "0.25"},
};
#define N_EVERY (sizeof every_key / sizeof every_key[0])

static void test_config_round_trip(void **state)
{
    (void)state;
    rg_error err = {0};
    /* The table covers exactly the documented keys. */
    size_t n_keys = 0;
    for (const rg_config_key_help *k = rg_train_config_keys(); k->key; k++, n_keys++) {
        size_t i = 0;
        while (i < N_EVERY && strcmp(every_key[i].key, k->key)) i++;
        if (i == N_EVERY) fail_msg("key '%s' is not covered by this test", k->key);
        assert_non_null(k->help);
    }
    /* each key's stated default is its default (the help prints it) */
    rg_train_config def0;
    rg_train_config_default(&def0);
    char *def0_text = rg_train_config_format(&def0);
    for (const rg_config_key_help *k = rg_train_config_keys(); k->key; k++) {
        rg_train_config one = def0;
        if (rg_train_config_set(&one, k->key, k->default_value, &err) != RG_OK)
            fail_msg("set %s = its default '%s': %s", k->key, k->default_value, err.msg);
        char *t = rg_train_config_format(&one);
        if (strcmp(t, def0_text)) fail_msg("%s: '%s' is not its default", k->key, k->default_value);
        free(t);
    }
    free(def0_text);
    assert_int_equal(n_keys, N_EVERY);

    rg_train_config def, c, back;
    rg_train_config_default(&def);
    c = def;
    char *def_text = rg_train_config_format(&def);
    assert_non_null(def_text);
    /* a key added after runs were recorded is formatted only when set, so
     * that the store's hashes of the runs that do not use it stay the same */
    assert_null(strstr(def_text, "select_per_class"));
    assert_null(strstr(def_text, "select_relabel"));
    assert_null(strstr(def_text, "select_refresh"));
    assert_null(strstr(def_text, "ptq_requant_fp32"));
    for (size_t i = 0; i < N_EVERY; i++) {
        rg_train_config one = def;
        if (rg_train_config_set(&one, every_key[i].key, every_key[i].value, &err) != RG_OK)
            fail_msg("set %s = %s: %s", every_key[i].key, every_key[i].value, err.msg);
        char *t = rg_train_config_format(&one);
        assert_non_null(t);
        if (!strcmp(t, def_text)) fail_msg("%s = %s does not change the configuration", every_key[i].key,
                                           every_key[i].value);
        free(t);
        assert_int_equal(rg_train_config_set(&c, every_key[i].key, every_key[i].value, &err), RG_OK);
    }
    /* a few fields checked directly */
    assert_string_equal(c.model, "my model.spec");
    assert_int_equal(c.epochs, 7);
    assert_int_equal(c.nesterov, 0);
    assert_int_equal(c.decay_all, 1);
    assert_int_equal(c.hflip, 0);
    assert_true(c.lr == 0.0123456789f);
    assert_true(c.seed == 9007199254740991LL);

    char *text = rg_train_config_format(&c);
    assert_non_null(text);
    /* one "key = value" line per key, in the documented order */
    size_t lines = 0;
    const rg_config_key_help *k = rg_train_config_keys();
    for (const char *p = text; *p; lines++) {
        assert_true(lines < N_EVERY);
        size_t kl = strlen(k[lines].key);
        assert_true(strncmp(p, k[lines].key, kl) == 0 && strncmp(p + kl, " = ", 3) == 0);
        p = strchr(p, '\n');
        assert_non_null(p);
        p++;
    }
    assert_int_equal(lines, N_EVERY);

    back = def;
    if (rg_train_config_parse(&back, text, "round-trip", &err) != RG_OK) fail_msg("parse: %s", err.msg);
    /* Exact: every byte of the struct (both start from the defaults, so
     * padding and bytes after string terminators agree too). */
    assert_memory_equal(&back, &c, sizeof c);
    char *text2 = rg_train_config_format(&back);
    assert_string_equal(text2, text);
    free(text2);

    /* The defaults round-trip as well, also parsed on top of other values
     * (but for the keys formatted only when set: a text reads on top of the
     * defaults, as every reader of one does). */
    back = c;
    back.select_per_class = def.select_per_class;
    back.select_relabel = def.select_relabel;
    back.select_refresh = def.select_refresh;
    back.ptq_requant_fp32 = def.ptq_requant_fp32;
    assert_int_equal(rg_train_config_parse(&back, def_text, "defaults", &err), RG_OK);
    text2 = rg_train_config_format(&back);
    assert_string_equal(text2, def_text);
    free(text2);
    assert_int_equal(rg_train_config_validate(&def, &err), RG_OK);

    /* Comments, blank lines, spaces and a missing final newline. */
    back = def;
    assert_int_equal(rg_train_config_parse(&back, "# a run\n\n  epochs=4   # short\n\tlr = 0.5\nmodel = resnet20",
                                           "inline", &err),
                     RG_OK);
    assert_int_equal(back.epochs, 4);
    assert_true(back.lr == 0.5f);
    assert_string_equal(back.model, "resnet20");
    free(text);
    free(def_text);
}

static void expect_set_fails(const char *key, const char *value, const char *word)
{
    rg_train_config c, before;
    rg_train_config_default(&c);
    before = c;
    rg_error err = {0};
    rg_status st = rg_train_config_set(&c, key, value, &err);
    if (st != RG_ERR_ARG) fail_msg("set %s = '%s': status %s, expected an argument error", key, value, rg_status_name(st));
    expect_msg(&err, key, word);
    /* a rejected value leaves the configuration as it was */
    assert_memory_equal(&c, &before, sizeof c);
}

static void test_config_rejects(void **state)
{
    (void)state;
    expect_set_fails("bogus", "1", "unknown key");
    expect_set_fails("Epochs", "1", "unknown key");
    expect_set_fails("", "1", "unknown key");
    /* strings the saved configuration could not give back */
    expect_set_fails("data", "a #b", "comment");
    expect_set_fails("data", "#b", "comment");
    expect_set_fails("data", "a\nepochs = 3", "line break");
    expect_set_fails("init", "x.safetensors ", "white space");
    /* bad integers */
    expect_set_fails("epochs", "abc", "not an integer");
    expect_set_fails("epochs", "3.5", "not an integer");
    expect_set_fails("epochs", "", "not an integer");
    expect_set_fails("batch", "12abc", "not an integer");
    expect_set_fails("seed", "99999999999999999999", "not an integer");
    /* out of range */
    expect_set_fails("epochs", "0", "out of range");
    expect_set_fails("batch", "-1", "out of range");
    expect_set_fails("batch", "4294967297", "out of range"); /* would wrap to 1 as int32 */
    expect_set_fails("seed", "-1", "out of range");
    expect_set_fails("crop_pad", "65", "out of range");
    expect_set_fails("lr", "-0.1", "out of range");
    expect_set_fails("momentum", "1", "out of range");
    expect_set_fails("gamma", "1.5", "out of range");
    expect_set_fails("std", "0", "out of range");
    expect_set_fails("ema", "1", "out of range");
    expect_set_fails("label_smoothing", "1", "out of range");
    /* bad numbers */
    expect_set_fails("lr", "abc", "not a number");
    expect_set_fails("lr", "0.1x", "not a number");
    expect_set_fails("lr", "nan", "not a number");
    expect_set_fails("lr", "inf", "not a number");
    expect_set_fails("lr", "1e400", "not a number");
    expect_set_fails("wd", "", "not a number");
    /* bad booleans */
    expect_set_fails("nesterov", "2", "not a boolean");
    expect_set_fails("hflip", "maybe", "not a boolean");
    expect_set_fails("decay_all", "", "not a boolean");
    expect_set_fails("hflip", "TRUE ", "not a boolean");
    /* too long a string */
    char longv[300];
    memset(longv, 'x', sizeof longv - 1);
    longv[sizeof longv - 1] = 0;
    expect_set_fails("model", longv, "longer");

    /* Booleans accept the documented spellings. */
    rg_train_config c;
    rg_train_config_default(&c);
    rg_error err = {0};
    static const char *const yes[] = {"1", "true", "yes", "on"}, *const no[] = {"0", "false", "no", "off"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(rg_train_config_set(&c, "hflip", no[i], &err), RG_OK);
        assert_int_equal(c.hflip, 0);
        assert_int_equal(rg_train_config_set(&c, "hflip", yes[i], &err), RG_OK);
        assert_int_equal(c.hflip, 1);
    }

    /* Cross-key checks. */
    rg_train_config_default(&c);
    snprintf(c.optim, sizeof c.optim, "rmsprop");
    assert_int_equal(rg_train_config_validate(&c, &err), RG_ERR_ARG);
    expect_msg(&err, "optim", "rmsprop");
    rg_train_config_default(&c);
    snprintf(c.schedule, sizeof c.schedule, "linear");
    assert_int_equal(rg_train_config_validate(&c, &err), RG_ERR_ARG);
    expect_msg(&err, "schedule", "linear");
    rg_train_config_default(&c);
    c.epochs = 2;
    c.warmup_epochs = 3.0f;
    assert_int_equal(rg_train_config_validate(&c, &err), RG_ERR_ARG);
    expect_msg(&err, "warmup_epochs", NULL);
}

static void expect_parse_fails(const char *text, const char *where, const char *word)
{
    rg_train_config c;
    rg_train_config_default(&c);
    rg_error err = {0};
    rg_status st = rg_train_config_parse(&c, text, "run.cfg", &err);
    if (st == RG_OK) fail_msg("parsing \"%s\" succeeded", text);
    expect_msg(&err, where, word);
}

static void test_config_parse_errors(void **state)
{
    (void)state;
    expect_parse_fails("epochs = 3\n\nbatch 64\n", "run.cfg:3:", "key = value");
    expect_parse_fails("# header\nbogus = 1\n", "run.cfg:2:", "unknown key 'bogus'");
    expect_parse_fails("epochs = 3\nlr = 0.1\nmodel = x\nepochs = many\n", "run.cfg:4:", "epochs: 'many' is not an integer");
    expect_parse_fails("hflip = perhaps", "run.cfg:1:", "not a boolean");
    expect_parse_fails("\n\n\n\n\ngamma = 7\n", "run.cfg:6:", "out of range");
    /* a line longer than the parser's buffer */
    char *big = malloc(3000);
    assert_non_null(big);
    memcpy(big, "epochs = 3\nmodel = ", 19);
    memset(big + 19, 'm', 2000);
    big[2019] = 0;
    expect_parse_fails(big, "run.cfg:2:", "too long");
    free(big);
}

/* The huge-page setting of this machine's kernel: the bracketed choice of
 * /sys/kernel/mm/transparent_hugepage/enabled, "" when unknown. */
static void thp_setting(char *out, size_t n)
{
    char line[128] = "";
    out[0] = '\0';
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (!f) return;
    if (fgets(line, sizeof line, f)) {
        char *a = strchr(line, '['), *b = a ? strchr(a, ']') : NULL;
        if (a && b && (size_t)(b - a) < n) {
            memcpy(out, a + 1, (size_t)(b - a - 1));
            out[b - a - 1] = '\0';
        }
    }
    fclose(f);
}

/* kB of huge pages backing the mapping that holds p (/proc/self/smaps), -1
 * when not found. */
static long huge_kb_at(const void *p)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return -1;
    char line[512];
    int inside = 0;
    long kb = -1;
    uintptr_t a = (uintptr_t)p;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) inside = a >= lo && a < hi; /* a mapping's first line */
        else if (inside && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1) break;
    }
    fclose(f);
    return kb;
}

/* A training plan's arena is streamed through many times a step, so it
 * comes from rg_alloc_streamed: 2 MiB aligned and marked for transparent
 * huge pages (mbv2-tiny trains 3 % faster); an inference plan's stays on
 * plain pages. The allocator refuses sizes it cannot round up instead of
 * wrapping around to a small block. */
static void test_plan_arena(void **state)
{
    (void)state;
    rg_graph *g = NULL;
    CHECK(rg_spec_build("input h=28 w=28 c=1\nconv name=c c=64 k=3 bn act=relu\ngap\nfc name=fc n=10\n", "arena",
                        &g, &E));
    CHECK(rg_graph_plan(g, 32, RG_PLAN_TRAIN, &E));
    assert_true(g->arena_floats * sizeof(float) > ((size_t)8 << 20));
    assert_int_equal((uintptr_t)g->arena % ((uintptr_t)2 << 20), 0);
    char thp[16];
    thp_setting(thp, sizeof thp);
    long kb = huge_kb_at(g->arena);
    /* the kernel may find no free huge page: informative, not asserted */
    printf("transparent huge pages: [%s]; the training arena has %ld kB of them\n", thp, kb);
    if (strcmp(thp, "never") != 0) assert_true(kb >= 0); /* the mapping is found */
    CHECK(rg_graph_plan(g, 32, RG_PLAN_EVAL, &E));
    assert_non_null(g->arena);
    memset(g->arena, 1, g->arena_floats * sizeof(float));
    /* in madvise mode only what asks gets huge pages: not an inference plan */
    if (strcmp(thp, "madvise") == 0) assert_int_equal(huge_kb_at(g->arena), 0);
    rg_graph_free(g);

    void *p = rg_alloc_streamed(0, &E);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % ((uintptr_t)2 << 20), 0);
    rg_free_aligned(p);
    rg_error err = {0};
    assert_null(rg_alloc_streamed(SIZE_MAX - 5, &err));
    assert_int_equal(err.code, RG_ERR_NOMEM);
    expect_msg(&err, "out of memory", NULL);
    err = (rg_error){0};
    assert_null(rg_alloc_aligned(SIZE_MAX - 5, &err));
    assert_int_equal(err.code, RG_ERR_NOMEM);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xent_by_hand),
        cmocka_unit_test(test_xent_gradient),
        cmocka_unit_test(test_count_correct),
        cmocka_unit_test(test_sgd),
        cmocka_unit_test(test_adamw),
        cmocka_unit_test(test_optim_bad_config),
        cmocka_unit_test(test_cosine),
        cmocka_unit_test(test_step_and_constant),
        cmocka_unit_test(test_ema),
        cmocka_unit_test(test_config_round_trip),
        cmocka_unit_test(test_config_rejects),
        cmocka_unit_test(test_config_parse_errors),
        cmocka_unit_test(test_plan_arena),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
