/* Gradients of quantization-aware training (regain/qat.h) against finite
 * differences, in double loss sums L = sum(out * R):
 *   - the frozen batch norm (QAT's late phase: running statistics in a
 *     training pass) after a convolution, for the input, the convolution
 *     weights and gamma/beta;
 *   - the fake-quantized, BN-folded weights W'' = fq(W f) / f: the gradient
 *     rg_qat_end hands to the master weights is the true gradient with
 *     respect to W'' (straight-through estimator);
 *   - LSQ weight scales: where no weight integer changes under the
 *     perturbation, the finite difference in s is sum dL/dW'' * q / f, and
 *     LSQ's gradient must equal it minus sum dL/dW'' * (W f / s) / f, times
 *     LSQ's gradient scale;
 *   - the fake-quant op with a learned activation scale, the same way.
 * Activation fake-quant nodes with no range yet pass values through, which
 * isolates the weight path. */
#include "test_support.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "regain/fake_quant.h"
#include "regain/graph.h"
#include "regain/qat.h"
#include "regain/rng.h"

enum { B = 2, HH = 6, WW = 6, CIN = 3, COUT = 4, OUTF = 5 };

static rg_graph *small_graph(uint64_t seed)
{
    rg_graph *g;
    int32_t v;
    CHECK(rg_graph_create(HH, WW, CIN, &g, &E));
    rg_conv_attr a = {.kh = 3, .kw = 3, .stride = 1, .pad = 1, .groups = 1, .cout = COUT};
    CHECK(rg_graph_add_conv(g, "c1", g->input, a, &v, &E));
    CHECK(rg_graph_add_bn(g, "c1.bn", v, &v, &E));
    CHECK(rg_graph_add_unary(g, RG_OP_RELU6, "c1.relu", v, &v, &E));
    CHECK(rg_graph_add_unary(g, RG_OP_GAP, "gap", v, &v, &E));
    CHECK(rg_graph_add_linear(g, "fc", v, OUTF, 1, &v, &E));
    CHECK(rg_graph_finish(g, v, &E));
    rg_graph_init_params(g, seed);
    rg_rng r = rg_rng_keyed(seed, 1, 0);
    const rg_node *bn = &g->nodes[rg_graph_find_node(g, "c1.bn")];
    for (int32_t c = 0; c < COUT; c++) {
        g->param_data[g->params[bn->param[0]].offset + c] = 0.7f + 0.5f * rg_rng_uniform(&r);
        g->param_data[g->params[bn->param[1]].offset + c] = 0.3f * rg_rng_normal(&r);
        g->buffer_data[g->buffers[bn->buffer[0]].offset + c] = 0.2f * rg_rng_normal(&r);
        g->buffer_data[g->buffers[bn->buffer[1]].offset + c] = 0.5f + rg_rng_uniform(&r);
    }
    int32_t fc = rg_graph_find_param(g, "fc.weight");
    for (size_t k = 0; k < g->params[fc].count; k++) g->param_data[g->params[fc].offset + k] *= 30.0f;
    return g;
}

static double loss(rg_graph *g, const rg_exec *ctx, const float *R)
{
    rg_graph_forward(g, ctx);
    const float *y = rg_graph_output(g);
    double L = 0.0;
    for (int i = 0; i < B * OUTF; i++) L += (double)y[i] * R[i];
    return L;
}

static void setup_input(rg_graph *g, float *R, uint64_t seed)
{
    rg_rng r = rg_rng_keyed(seed, 2, 0);
    float *x = rg_graph_input(g);
    for (int i = 0; i < B * HH * WW * CIN; i++) x[i] = 2.0f * rg_rng_normal(&r);
    for (int i = 0; i < B * OUTF; i++) R[i] = rg_rng_normal(&r);
}

static void backward(rg_graph *g, const rg_exec *ctx, const float *R)
{
    loss(g, ctx, R);
    memcpy(rg_graph_output_grad(g), R, sizeof(float) * B * OUTF);
    rg_graph_backward(g, ctx);
}

/* Central difference of L in *p (relu6 kinks make a few coordinates
 * unreliable: the caller allows a small share of misses). */
static double numeric(rg_graph *g, const rg_exec *ctx, const float *R, float *p, float h)
{
    float p0 = *p;
    *p = p0 + h;
    double lp = loss(g, ctx, R);
    *p = p0 - h;
    double lm = loss(g, ctx, R);
    *p = p0;
    return (lp - lm) / (2.0 * (double)h);
}

static int close_enough(double a, double n)
{
    return fabs(a - n) <= 2e-2 * fmax(1.0, fmax(fabs(a), fabs(n)));
}

/* Frozen batch norm: a training pass normalizing with running statistics. */
static void test_frozen_bn(void **state)
{
    (void)state;
    rg_graph *g = small_graph(3);
    g->nodes[rg_graph_find_node(g, "c1.bn")].a.bn.frozen = 1;
    CHECK(rg_graph_plan(g, B, RG_PLAN_TRAIN, &E));
    float R[B * OUTF];
    setup_input(g, R, 3);
    rg_exec ctx = {.training = 1, .seed = 1};
    int32_t mean = rg_graph_find_buffer(g, "c1.bn.running_mean");
    float m0 = g->buffer_data[g->buffers[mean].offset];
    backward(g, &ctx, R);
    assert_true(g->buffer_data[g->buffers[mean].offset] == m0); /* not updated */
    float *grad = malloc(sizeof(float) * g->param_floats);
    memcpy(grad, g->grad_data, sizeof(float) * g->param_floats);
    const char *names[] = {"c1.weight", "c1.bn.weight", "c1.bn.bias", "fc.weight"};
    int checked = 0, missed = 0;
    for (int t = 0; t < 4; t++) {
        const rg_param *p = &g->params[rg_graph_find_param(g, names[t])];
        for (size_t k = 0; k < p->count; k += 1 + p->count / 24) {
            double n = numeric(g, &ctx, R, &g->param_data[p->offset + k], 1e-3f);
            checked++;
            if (!close_enough(grad[p->offset + k], n)) missed++;
        }
    }
    /* the input's gradient */
    float *dx = rg_graph_grad(g, g->input);
    float *dxa = malloc(sizeof(float) * B * HH * WW * CIN);
    backward(g, &ctx, R);
    memcpy(dxa, dx, sizeof(float) * B * HH * WW * CIN);
    for (int i = 0; i < B * HH * WW * CIN; i += 7) {
        double n = numeric(g, &ctx, R, &rg_graph_input(g)[i], 1e-3f);
        checked++;
        if (!close_enough(dxa[i], n)) missed++;
    }
    assert_true(checked > 40);
    assert_true(missed * 20 <= checked); /* relu6 kinks: at most 5 % */
    free(dxa);
    free(grad);
    rg_graph_free(g);
}

/* The master weights' gradient is dL/dW'' of the fake-quantized folded weights. */
static void weight_path(int32_t bits, int lsq)
{
    rg_graph *g = small_graph(5);
    rg_qat_config qc = rg_qat_default();
    qc.weight_bits = bits;
    qc.lsq = lsq;
    qc.freeze_bn = 0;
    rg_qat *q;
    CHECK(rg_qat_prepare(g, &qc, &q, &E));
    CHECK(rg_graph_plan(g, B, RG_PLAN_TRAIN, &E));
    rg_qat_set_epoch(q, 0);
    float R[B * OUTF];
    setup_input(g, R, 5);
    /* evaluation mode: no observer runs, so activations pass through */
    rg_exec ctx = {.training = 0};
    int32_t conv = rg_graph_find_node(g, "c1"), fcn = rg_graph_find_node(g, "fc");
    const rg_param *wp = &g->params[g->nodes[conv].param[0]];
    rg_qat_begin(q);
    /* W'' * f / s is an integer in range: training uses the folded weights inference will */
    float s[COUT];
    CHECK(rg_qat_weight_scales(q, conv, s, &E));
    const rg_node *bn = &g->nodes[rg_graph_find_node(g, "c1.bn")];
    size_t per = wp->count / COUT;
    for (int32_t c = 0; c < COUT; c++) {
        float gamma = g->param_data[g->params[bn->param[0]].offset + c];
        float var = g->buffer_data[g->buffers[bn->buffer[1]].offset + c];
        float f = gamma / sqrtf(var + bn->a.bn.eps);
        for (size_t k = 0; k < per; k++) {
            double code = (double)g->param_data[wp->offset + c * per + k] * f / s[c];
            assert_true(fabs(code - round(code)) < 1e-3);
            assert_true(fabs(code) <= (bits == 4 ? 7.0 : 127.0) + 1e-3);
        }
    }
    backward(g, &ctx, R);
    float *dW = malloc(sizeof(float) * g->param_floats);
    memcpy(dW, g->grad_data, sizeof(float) * g->param_floats);
    /* finite differences in W'' itself (the block holds W'' while active) */
    int checked = 0, missed = 0;
    for (size_t k = 0; k < wp->count; k += 5) {
        double n = numeric(g, &ctx, R, &g->param_data[wp->offset + k], 1e-3f);
        checked++;
        if (!close_enough(dW[wp->offset + k], n)) missed++;
    }
    rg_qat_end(q, 1);
    /* straight through: max-scaled weights are never clipped */
    if (!lsq)
        for (size_t k = 0; k < wp->count; k++) assert_true(g->grad_data[wp->offset + k] == dW[wp->offset + k]);
    assert_true(missed * 20 <= checked);

    if (lsq) {
        /* LSQ scale of the fc layer (no batch norm: f = 1), channel by channel */
        int32_t sp = rg_graph_find_param(g, "fc.qscale");
        assert_true(sp >= 0);
        float *scale = &g->param_data[g->params[sp].offset];
        float gs_lsq[OUTF];
        memcpy(gs_lsq, &g->grad_data[g->params[sp].offset], sizeof gs_lsq);
        const rg_param *fw = &g->params[g->nodes[fcn].param[0]];
        size_t fper = fw->count / OUTF;
        float gsc = rg_fq_lsq_grad_scale(fper, bits == 4 ? 7 : 127);
        int compared = 0;
        for (int32_t c = 0; c < OUTF; c++) {
            float s0 = scale[c], h = 1e-4f * s0;
            int flips = 0;
            for (size_t k = 0; k < fper; k++) {
                float w = g->param_data[fw->offset + c * fper + k];
                rg_qparams pp = {s0 + h, 0}, pm = {s0 - h, 0};
                int32_t qmax = bits == 4 ? 7 : 127;
                flips += rg_q_quantize_value(w, pp, -qmax, qmax) != rg_q_quantize_value(w, pm, -qmax, qmax);
            }
            if (flips) continue;
            scale[c] = s0 + h;
            rg_qat_begin(q);
            double lp = loss(g, &ctx, R);
            rg_qat_end(q, 0);
            scale[c] = s0 - h;
            rg_qat_begin(q);
            double lm = loss(g, &ctx, R);
            rg_qat_end(q, 0);
            scale[c] = s0;
            double fd = (lp - lm) / ((double)(s0 + h) - (double)(s0 - h));
            double corr = 0.0; /* sum dL/dW'' * w / s over the channel */
            for (size_t k = 0; k < fper; k++) {
                float w = g->param_data[fw->offset + c * fper + k];
                int32_t qmax = bits == 4 ? 7 : 127;
                double u = round((double)w / s0);
                if (u >= -qmax && u <= qmax) corr += (double)dW[fw->offset + c * fper + k] * (double)w / s0;
                else corr += 0.0;
            }
            /* compared before the subtraction: fd and corr nearly cancel at 8 bits */
            double got = (double)gs_lsq[c] / gsc + corr;
            assert_true(fabs(got - fd) <= 2e-3 * (fabs(fd) + fabs(corr)) + 1e-4);
            compared++;
        }
        assert_true(compared >= 2);
    }
    free(dW);
    rg_qat_free(q);
    rg_graph_free(g);
}

static void test_weight_ste_int8(void **state)
{
    (void)state;
    weight_path(8, 0);
}
static void test_weight_ste_w4(void **state)
{
    (void)state;
    weight_path(4, 0);
}
static void test_weight_lsq_int8(void **state)
{
    (void)state;
    weight_path(8, 1);
}
static void test_weight_lsq_w4(void **state)
{
    (void)state;
    weight_path(4, 1);
}

/* The activation fake-quant op with a learned scale: STE for the input,
 * LSQ for the scale (finite difference where no integer changes). */
static void test_activation_lsq(void **state)
{
    (void)state;
    rg_graph *g = small_graph(7);
    rg_qat_config qc = rg_qat_default();
    qc.lsq = 1;
    qc.freeze_observers = 1;
    rg_qat *q;
    CHECK(rg_qat_prepare(g, &qc, &q, &E));
    CHECK(rg_graph_plan(g, B, RG_PLAN_TRAIN, &E));
    float R[B * OUTF];
    setup_input(g, R, 7);
    rg_exec tr = {.training = 1, .seed = 1};
    rg_qat_set_epoch(q, 0);
    loss(g, &tr, R); /* observe once */
    rg_qat_set_epoch(q, 1);
    rg_exec ev = {.training = 0};
    /* only the GAP's point stays quantized: the others are reset to pass through */
    int32_t gapq = rg_qat_fq_after(g, "gap");
    assert_true(gapq > 0);
    for (int32_t i = 1; i < g->n_nodes; i++)
        if (g->nodes[i].op == RG_OP_FAKE_QUANT && g->nodes[i].buffer[0] >= 0 && i != gapq)
            g->buffer_data[g->buffers[g->nodes[i].buffer[0]].offset + 2] = 0.0f;
    float *scale = &g->param_data[g->params[g->nodes[gapq].param[0]].offset];
    rg_qparams p;
    assert_true(rg_qat_node_params(g, gapq, &p));
    assert_true(p.scale == *scale);
    backward(g, &ev, R);
    double lsq = g->grad_data[g->params[g->nodes[gapq].param[0]].offset];
    /* the GAP output and dL/d(gap output) */
    int32_t gv = g->nodes[gapq].in[0];
    float x[B * COUT], dy[B * COUT];
    memcpy(x, rg_graph_act(g, gv), sizeof x);
    /* dL/d(fq output) = W_fc^T R (inner gradients are not kept after the pass) */
    const float *fw = g->param_data + g->params[rg_graph_find_param(g, "fc.weight")].offset;
    for (int b = 0; b < B; b++)
        for (int c = 0; c < COUT; c++) {
            double d = 0.0;
            for (int o = 0; o < OUTF; o++) d += (double)R[b * OUTF + o] * fw[o * COUT + c];
            dy[b * COUT + c] = (float)d;
        }
    double ref = 0.0;
    rg_fq_backward_lsq(x, dy, B * COUT, p, -128, 127, rg_fq_lsq_grad_scale(COUT, 127), (float[B * COUT]){0}, &ref);
    assert_true(fabs(lsq - ref) <= 1e-5 * fmax(1.0, fabs(ref)));
    /* finite difference with the integers fixed */
    float s0 = *scale, h = 1e-4f * s0;
    int flips = 0;
    for (int i = 0; i < B * COUT; i++)
        flips += rg_q_quantize_value(x[i], (rg_qparams){s0 + h, p.zero_point}, -128, 127) !=
                 rg_q_quantize_value(x[i], (rg_qparams){s0 - h, p.zero_point}, -128, 127);
    assert_int_equal(flips, 0);
    {
        double fd = numeric(g, &ev, R, scale, h), corr = 0.0;
        for (int i = 0; i < B * COUT; i++) { /* the -x/s term exists only where not clipped */
            float u = roundf(x[i] / s0) + (float)p.zero_point;
            if (u >= -128.0f && u <= 127.0f) corr += (double)dy[i] * x[i] / s0;
        }
        double got = lsq / rg_fq_lsq_grad_scale(COUT, 127) + corr;
        assert_true(fabs(got - fd) <= 2e-3 * (fabs(fd) + fabs(corr)) + 1e-4);
    }
    rg_qat_free(q);
    rg_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frozen_bn),       cmocka_unit_test(test_weight_ste_int8),
        cmocka_unit_test(test_weight_ste_w4),   cmocka_unit_test(test_weight_lsq_int8),
        cmocka_unit_test(test_weight_lsq_w4),   cmocka_unit_test(test_activation_lsq),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
