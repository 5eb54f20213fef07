/* The fake-quantized graph and its lowered int8 model agree exactly
 * (regain/qat.h, docs/quantization.md section 13, "exactness"): at every
 * quantization point, the fake-quant graph's value y (evaluation mode)
 * gives the code q = round(y / s) + z, and the integer model holds the same
 * int8 code, both op by op given the same int8 inputs (teacher forcing: the
 * fake-quant graph's own codes fed to the integer op) and end to end. The
 * fake-quant graph is integer-exact (fake-quantized int32 biases, the
 * fixed-point requantization after convolutions and linear layers, the
 * integer rounding of average pools); a mismatch is reported with the float
 * value before quantization and whether it sat within TIE_TOL of a rounding
 * boundary, which is where a plain fake-quant graph would differ.
 *
 * Checked on random inputs for a graph with every op kind (dense, depthwise
 * and pointwise convolutions with batch norms and relu/relu6, add, max and
 * average pooling, standalone relu, global average pooling, linear) and for
 * mbv2-tiny, with int8 per-channel, per-tensor, W4A8 and learned (LSQ)
 * scales, after training-mode passes that set the ranges and BN statistics. */
#include "test_support.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "regain/graph.h"
#include "regain/qat.h"
#include "regain/quant_model.h"
#include "regain/rng.h"
#include "regain/zoo.h"

#define TIE_TOL 0.02

enum { BATCH = 16 };

typedef struct {
    long codes, mismatched, off_tie, max_diff;
    long ops_checked;
} tally;

static void random_images(float *x, size_t n, uint64_t seed)
{
    rg_rng r = rg_rng_keyed(seed, 0, 0);
    for (size_t i = 0; i < n; i++) x[i] = 1.5f * rg_rng_normal(&r) + 0.3f;
}

static void perturb_bn(rg_graph *g, uint64_t seed)
{
    rg_rng r = rg_rng_keyed(seed, 9, 0);
    for (int32_t i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i].op != RG_OP_BN) continue;
        const rg_param *gm = &g->params[g->nodes[i].param[0]], *bt = &g->params[g->nodes[i].param[1]];
        for (size_t k = 0; k < gm->count; k++) g->param_data[gm->offset + k] = 1.0f + 0.3f * rg_rng_normal(&r);
        for (size_t k = 0; k < bt->count; k++) g->param_data[bt->offset + k] = 0.3f * rg_rng_normal(&r);
    }
    for (int32_t p = 0; p < g->n_params; p++)
        if (strstr(g->params[p].name, "fc.weight"))
            for (size_t k = 0; k < g->params[p].count; k++) g->param_data[g->params[p].offset + k] *= 30.0f;
}

/* A graph with every op kind the int8 model has. */
static rg_graph *every_op_graph(void)
{
    rg_graph *g;
    int32_t v, a, b;
    CHECK(rg_graph_create(12, 12, 2, &g, &E));
    rg_conv_attr dense = {.kh = 3, .kw = 3, .stride = 1, .pad = 1, .groups = 1, .cout = 6};
    rg_conv_attr dw = {.kh = 3, .kw = 3, .stride = 1, .pad = 1, .groups = 6, .cout = 6};
    rg_conv_attr pw = {.kh = 1, .kw = 1, .stride = 1, .pad = 0, .groups = 1, .cout = 6};
    CHECK(rg_graph_add_conv(g, "c1", g->input, dense, &v, &E));
    CHECK(rg_graph_add_bn(g, "c1.bn", v, &v, &E));
    CHECK(rg_graph_add_unary(g, RG_OP_RELU6, "c1.relu", v, &a, &E));
    CHECK(rg_graph_add_conv(g, "dw", a, dw, &v, &E));
    CHECK(rg_graph_add_bn(g, "dw.bn", v, &v, &E));
    CHECK(rg_graph_add_unary(g, RG_OP_RELU, "dw.relu", v, &v, &E));
    CHECK(rg_graph_add_conv(g, "pw", v, pw, &v, &E));
    CHECK(rg_graph_add_bn(g, "pw.bn", v, &b, &E));
    CHECK(rg_graph_add_binary(g, RG_OP_ADD, "add", a, b, &v, &E));
    CHECK(rg_graph_add_pool(g, RG_OP_MAXPOOL, "mp", v, 2, 2, 0, &v, &E));
    CHECK(rg_graph_add_pool(g, RG_OP_AVGPOOL, "ap", v, 3, 1, 1, &v, &E));
    CHECK(rg_graph_add_unary(g, RG_OP_RELU, "ap.relu", v, &v, &E));
    rg_conv_attr plain = {.kh = 3, .kw = 3, .stride = 2, .pad = 1, .groups = 1, .cout = 8, .has_bias = 1};
    CHECK(rg_graph_add_conv(g, "c2", v, plain, &v, &E));
    CHECK(rg_graph_add_unary(g, RG_OP_GAP, "gap", v, &v, &E));
    CHECK(rg_graph_add_linear(g, "fc", v, 10, 1, &v, &E));
    CHECK(rg_graph_finish(g, v, &E));
    return g;
}

/* Observes ranges and settles BN statistics with training passes (weights
 * fake-quantized as in QAT), then freezes everything. */
static void settle(rg_graph *g, rg_qat *q, const float *imgs, int32_t n, int lsq)
{
    size_t per = rg_shape_count(g->values[g->input].shape);
    rg_qat_set_epoch(q, 0);
    rg_exec ctx = {.training = 1, .seed = 1};
    for (int step = 0; step < 12; step++) {
        int32_t at = (step * BATCH) % (n - BATCH);
        memcpy(rg_graph_input(g), imgs + (size_t)at * per, sizeof(float) * BATCH * per);
        ctx.step = (uint64_t)step;
        rg_qat_begin(q);
        rg_graph_forward(g, &ctx);
        rg_qat_end(q, 0);
    }
    rg_qat_set_epoch(q, 1000);
    if (lsq) { /* learned scales move away from the max rule */
        rg_rng r = rg_rng_keyed(77, 0, 0);
        for (int32_t p = 0; p < g->n_params; p++)
            if (strstr(g->params[p].name, ".qscale"))
                for (size_t k = 0; k < g->params[p].count; k++)
                    g->param_data[g->params[p].offset + k] *= 1.0f + 0.15f * (rg_rng_uniform(&r) - 0.5f);
    }
}

static int near_tie(float x, rg_qparams p)
{
    double u = (double)x / (double)p.scale + p.zero_point;
    double frac = u - floor(u);
    return fabs(frac - 0.5) < TIE_TOL;
}

/* Teacher-forced comparison of every op of m against g's values. */
static void compare_ops(rg_graph *g, const rg_qmodel *m, int32_t batch, tally *t)
{
    int8_t *arena = malloc(rg_qmodel_arena_bytes(m, batch));
    int8_t *codes = malloc(rg_qmodel_arena_bytes(m, batch));
    assert_non_null(arena);
    for (int32_t k = 0; k < m->n_tensors; k++) {
        const rg_qtensor *qt = &m->tensors[k];
        size_t n = (size_t)batch * qt->h * qt->w * qt->c;
        CHECK(rg_q_quantize(rg_graph_act(g, qt->value), n, qt->q, -128, 127, rg_qmodel_tensor(m, codes, batch, k), &E));
    }
    for (int32_t i = 0; i < m->n_ops; i++) {
        const rg_qop *o = &m->ops[i];
        memcpy(arena, codes, rg_qmodel_arena_bytes(m, batch));
        rg_qmodel sub = *m;
        sub.ops = (rg_qop *)o;
        sub.n_ops = 1;
        sub.input = o->in[0];
        sub.output = o->out;
        const rg_qtensor *ot = &m->tensors[o->out];
        size_t n = (size_t)batch * ot->h * ot->w * ot->c;
        int8_t *got = malloc(n);
        CHECK(rg_qmodel_run(&sub, arena, rg_qmodel_tensor(m, codes, batch, o->in[0]), batch, got, &E));
        const int8_t *want = rg_qmodel_tensor(m, codes, batch, o->out);
        /* the float value before the fake quantization */
        int32_t prod = g->values[ot->value].producer;
        const float *pre = g->nodes[prod].op == RG_OP_FAKE_QUANT ? rg_graph_act(g, g->nodes[prod].in[0]) : NULL;
        for (size_t j = 0; j < n; j++) {
            t->codes++;
            if (got[j] == want[j]) continue;
            t->mismatched++;
            long d = labs((long)got[j] - (long)want[j]);
            t->max_diff = d > t->max_diff ? d : t->max_diff;
            if (!pre || !near_tie(pre[j], ot->q)) {
                t->off_tie++;
                print_message("%s: element %zu int8 %d fake-quant %d (x %g, s %g, z %d)\n", o->name, j, got[j],
                              want[j], pre ? pre[j] : 0.0, (double)ot->q.scale, ot->q.zero_point);
            }
        }
        free(got);
        t->ops_checked++;
    }
    free(arena);
    free(codes);
}

static void check_graph(rg_graph *g, int32_t bits, int per_tensor, int lsq, const char *label)
{
    int32_t n_img = 96;
    size_t per = rg_shape_count(g->values[g->input].shape);
    float *imgs = malloc(sizeof(float) * per * (size_t)n_img);
    random_images(imgs, per * (size_t)n_img, 11);
    rg_qat_config qc = rg_qat_default();
    qc.weight_bits = bits;
    qc.per_tensor = per_tensor;
    qc.lsq = lsq;
    qc.momentum = 0.1f;
    rg_qat *q;
    CHECK(rg_qat_prepare(g, &qc, &q, &E));
    CHECK(rg_graph_plan(g, BATCH, RG_PLAN_TRAIN, &E));
    settle(g, q, imgs, n_img, lsq);
    /* the fake-quant graph on held-out images, in evaluation mode */
    float *test = malloc(sizeof(float) * per * BATCH);
    random_images(test, per * BATCH, 12);
    memcpy(rg_graph_input(g), test, sizeof(float) * per * BATCH);
    rg_exec ev = {.training = 0};
    rg_qat_begin(q);
    rg_graph_forward(g, &ev);
    rg_qmodel *m;
    CHECK(rg_qat_lower(q, g, imgs, 32, &m, &E));
    rg_qmodel_plan_arena(m, 1); /* every tensor its own slot: all of them are compared */
    tally t = {0};
    compare_ops(g, m, BATCH, &t);
    /* end to end */
    int8_t *arena = malloc(rg_qmodel_arena_bytes(m, BATCH));
    const rg_qtensor *ot = &m->tensors[m->output];
    size_t nout = (size_t)BATCH * ot->h * ot->w * ot->c;
    float *logits = malloc(sizeof(float) * nout);
    CHECK(rg_qmodel_run_float(m, arena, test, BATCH, logits, &E));
    int8_t *want = malloc(nout), *got = malloc(nout);
    CHECK(rg_q_quantize(rg_graph_output(g), nout, ot->q, -128, 127, want, &E));
    CHECK(rg_q_quantize(logits, nout, ot->q, -128, 127, got, &E));
    long same = 0, top1 = 0;
    int32_t classes = (int32_t)(nout / BATCH);
    for (size_t j = 0; j < nout; j++) same += got[j] == want[j];
    for (int32_t b = 0; b < BATCH; b++) {
        int32_t ag = 0, aw = 0;
        for (int32_t c = 1; c < classes; c++) {
            if (got[b * classes + c] > got[b * classes + ag]) ag = c;
            if (want[b * classes + c] > want[b * classes + aw]) aw = c;
        }
        top1 += ag == aw;
    }
    print_message("%s: %ld ops, %ld codes, %ld differ (all by %ld, %ld off a tie); end to end %ld/%zu output codes "
                  "equal, top-1 %ld/%d\n", label, t.ops_checked, t.codes, t.mismatched, t.max_diff, t.off_tie, same,
                  nout, top1, BATCH);
    /* the lowered weights are the trained fake-quantized ones: W'' f / s */
    int32_t qmax = bits == 4 ? 7 : 127;
    rg_qat_begin(q);
    for (int32_t i = 0; i < m->n_ops; i++) {
        const rg_qop *o = &m->ops[i];
        if (o->kind != RG_QOP_CONV && o->kind != RG_QOP_DEPTHWISE && o->kind != RG_QOP_FC) continue;
        int32_t node = rg_graph_find_node(g, o->name);
        const rg_param *wp = &g->params[g->nodes[node].param[0]];
        size_t per_c = wp->count / (size_t)o->out_c;
        int32_t bn = -1;
        for (int32_t j = node + 1; j < g->n_nodes; j++)
            if (g->nodes[j].n_in && g->nodes[j].in[0] == g->nodes[node].out) bn = g->nodes[j].op == RG_OP_BN ? j : -1;
        int hit_max = 0;
        for (int32_t c = 0; c < o->out_c; c++) {
            float f = 1.0f;
            if (bn >= 0) {
                const rg_node *b = &g->nodes[bn];
                f = g->param_data[g->params[b->param[0]].offset + c] /
                    sqrtf(g->buffer_data[g->buffers[b->buffer[1]].offset + c] + b->a.bn.eps);
            }
            for (size_t k = 0; k < per_c; k++) {
                int8_t code = o->weights[(size_t)c * per_c + k];
                double u = (double)g->param_data[wp->offset + c * per_c + k] * f / o->w_scales[c];
                if (fabs(u - code) > 1e-3) print_message("%s c %d k %zu code %d u %g\n", o->name, c, k, code, u);
                assert_true(fabs(u - code) < 1e-3);
                assert_true(code >= -qmax && code <= qmax);
                hit_max |= abs(code) == qmax;
            }
        }
        if (!lsq) assert_true(hit_max); /* max rule: the largest weight lands on qmax */
    }
    assert_true(t.ops_checked == m->n_ops && t.codes > 1000);
    assert_int_equal(t.off_tie, 0);
    assert_int_equal(t.mismatched, 0); /* integer-exact: not even at ties */
    assert_int_equal(same, (long)nout);
    assert_int_equal(top1, BATCH);
    rg_qat_end(q, 0);
    free(want);
    free(got);
    free(logits);
    free(arena);
    rg_qmodel_free(m);
    rg_qat_free(q);
    free(test);
    free(imgs);
}

static rg_graph *every_op(uint64_t seed)
{
    rg_graph *g = every_op_graph();
    rg_graph_init_params(g, seed);
    perturb_bn(g, seed);
    return g;
}

static void test_every_op_int8(void **state)
{
    (void)state;
    rg_graph *g = every_op(1);
    check_graph(g, 8, 0, 0, "every op, int8 per channel");
    rg_graph_free(g);
}

static void test_every_op_per_tensor(void **state)
{
    (void)state;
    rg_graph *g = every_op(2);
    check_graph(g, 8, 1, 0, "every op, int8 per tensor");
    rg_graph_free(g);
}

static void test_every_op_w4a8(void **state)
{
    (void)state;
    rg_graph *g = every_op(3);
    check_graph(g, 4, 0, 0, "every op, W4A8");
    rg_graph_free(g);
}

static void test_every_op_lsq(void **state)
{
    (void)state;
    rg_graph *g = every_op(4);
    check_graph(g, 8, 0, 1, "every op, LSQ");
    rg_graph_free(g);
}

static void test_mbv2_tiny(void **state)
{
    (void)state;
    rg_graph *g;
    CHECK(rg_zoo_build("mbv2-tiny", 28, 28, 1, 10, &g, &E));
    rg_graph_init_params(g, 5);
    perturb_bn(g, 5);
    check_graph(g, 8, 0, 0, "mbv2-tiny, int8");
    rg_graph_free(g);
}

static void test_mbv2_tiny_w4a8_lsq(void **state)
{
    (void)state;
    rg_graph *g;
    CHECK(rg_zoo_build("mbv2-tiny", 28, 28, 1, 10, &g, &E));
    rg_graph_init_params(g, 6);
    perturb_bn(g, 6);
    check_graph(g, 4, 0, 1, "mbv2-tiny, W4A8 LSQ");
    rg_graph_free(g);
}

/* Bad uses: errors name the field or the node. */
static void test_errors(void **state)
{
    (void)state;
    rg_graph *g = every_op(7);
    rg_qat_config qc = rg_qat_default();
    rg_qat *q = NULL;
    qc.weight_bits = 6;
    assert_int_equal(rg_qat_prepare(g, &qc, &q, &E), RG_ERR_ARG);
    assert_non_null(strstr(E.msg, "qat_weight_bits"));
    qc = rg_qat_default();
    qc.freeze_bn = -3;
    assert_int_equal(rg_qat_prepare(g, &qc, &q, &E), RG_ERR_ARG);
    assert_non_null(strstr(E.msg, "qat_freeze_bn"));
    qc = rg_qat_default();
    CHECK(rg_qat_prepare(g, &qc, &q, &E));
    rg_qat *q2 = NULL;
    assert_int_equal(rg_qat_prepare(g, &qc, &q2, &E), RG_ERR_ARG);
    assert_non_null(strstr(E.msg, "already prepared"));
    /* lowering before any range was observed */
    CHECK(rg_graph_plan(g, 4, RG_PLAN_TRAIN, &E));
    float img[4 * 12 * 12 * 2] = {0};
    rg_qmodel *m = NULL;
    assert_int_equal(rg_qat_lower(q, g, img, 4, &m, &E), RG_ERR_ARG);
    assert_non_null(strstr(E.msg, "no range yet"));
    rg_qat_free(q);
    rg_graph_free(g);
    /* an op with no int8 lowering */
    int32_t v;
    CHECK(rg_graph_create(4, 4, 1, &g, &E));
    CHECK(rg_graph_add_unary(g, RG_OP_HSWISH, "hs", g->input, &v, &E));
    CHECK(rg_graph_finish(g, v, &E));
    assert_int_equal(rg_qat_prepare(g, &qc, &q, &E), RG_ERR_UNSUPPORTED);
    assert_non_null(strstr(E.msg, "hs"));
    rg_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_op_int8), cmocka_unit_test(test_every_op_per_tensor),
        cmocka_unit_test(test_every_op_w4a8), cmocka_unit_test(test_every_op_lsq),
        cmocka_unit_test(test_mbv2_tiny),     cmocka_unit_test(test_mbv2_tiny_w4a8_lsq),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
