/* QAT under the address and undefined-behaviour sanitizers: bad
 * configurations and graphs are rejected with errors naming the field or
 * node, and a whole QAT cycle (prepare, training steps with LSQ and 4-bit
 * weights, evaluation, lowering, the int8 model's run) on a graph with
 * every op kind touches no memory it should not. */
#include "test_support.h"

#include <stdlib.h>
#include <string.h>

#include "regain/graph.h"
#include "regain/qat.h"
#include "regain/rng.h"

static rg_graph *every_op_graph(void)
{
    rg_graph *g;
    int32_t v, a, b;
    CHECK(rg_graph_create(8, 8, 2, &g, &E));
    rg_conv_attr dense = {.kh = 3, .kw = 3, .stride = 1, .pad = 1, .groups = 1, .cout = 4};
    rg_conv_attr dw = {.kh = 3, .kw = 3, .stride = 1, .pad = 1, .groups = 4, .cout = 4};
    rg_conv_attr pw = {.kh = 1, .kw = 1, .stride = 1, .pad = 0, .groups = 1, .cout = 4};
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
    CHECK(rg_graph_add_unary(g, RG_OP_GAP, "gap", v, &v, &E));
    CHECK(rg_graph_add_dropout(g, "drop", v, 0.2f, &v, &E));
    CHECK(rg_graph_add_linear(g, "fc", v, 5, 1, &v, &E));
    CHECK(rg_graph_finish(g, v, &E));
    rg_graph_init_params(g, 1);
    return g;
}

static void test_bad_config(void **state)
{
    (void)state;
    rg_graph *g = every_op_graph();
    rg_qat *q = NULL;
    struct {
        rg_qat_config c;
        const char *field;
    } bad[6];
    for (int i = 0; i < 6; i++) bad[i].c = rg_qat_default();
    bad[0].c.weight_bits = 2, bad[0].field = "qat_weight_bits";
    bad[1].c.weight_bits = 16, bad[1].field = "qat_weight_bits";
    bad[2].c.freeze_bn = -5, bad[2].field = "qat_freeze_bn";
    bad[3].c.freeze_observers = -2, bad[3].field = "qat_freeze_observers";
    bad[4].c.momentum = 0.0f, bad[4].field = "qat_momentum";
    bad[5].c.momentum = 1.5f, bad[5].field = "qat_momentum";
    for (int i = 0; i < 6; i++) {
        assert_int_equal(rg_qat_prepare(g, &bad[i].c, &q, &E), RG_ERR_ARG);
        assert_null(q);
        if (!strstr(E.msg, bad[i].field)) fail_msg("case %d: '%s' does not name %s", i, E.msg, bad[i].field);
    }
    /* the graph is untouched by the failures: it still prepares */
    rg_qat_config ok = rg_qat_default();
    CHECK(rg_qat_prepare(g, &ok, &q, &E));
    rg_qat *again = NULL;
    assert_int_equal(rg_qat_prepare(g, &ok, &again, &E), RG_ERR_ARG);
    assert_non_null(strstr(E.msg, "already prepared"));
    float s[4];
    assert_int_equal(rg_qat_weight_scales(q, rg_graph_find_node(g, "add"), s, &E), RG_ERR_ARG);
    rg_qat_free(q);
    rg_graph_free(g);
}

static void test_unsupported(void **state)
{
    (void)state;
    static const rg_op_type ops[] = {RG_OP_HSWISH, RG_OP_SIGMOID, RG_OP_BN};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        rg_graph *g;
        int32_t v;
        CHECK(rg_graph_create(4, 4, 2, &g, &E));
        if (ops[i] == RG_OP_BN) CHECK(rg_graph_add_bn(g, "lonely_bn", g->input, &v, &E));
        else CHECK(rg_graph_add_unary(g, ops[i], "odd_op", g->input, &v, &E));
        CHECK(rg_graph_finish(g, v, &E));
        rg_qat_config c = rg_qat_default();
        rg_qat *q = NULL;
        assert_int_equal(rg_qat_prepare(g, &c, &q, &E), RG_ERR_UNSUPPORTED);
        assert_non_null(strstr(E.msg, ops[i] == RG_OP_BN ? "lonely_bn" : "odd_op"));
        rg_graph_free(g);
    }
    /* a grouped convolution that is not depthwise */
    rg_graph *g;
    int32_t v;
    CHECK(rg_graph_create(4, 4, 4, &g, &E));
    rg_conv_attr grouped = {.kh = 1, .kw = 1, .stride = 1, .groups = 2, .cout = 4};
    CHECK(rg_graph_add_conv(g, "grouped", g->input, grouped, &v, &E));
    CHECK(rg_graph_finish(g, v, &E));
    rg_qat_config c = rg_qat_default();
    rg_qat *q = NULL;
    assert_int_equal(rg_qat_prepare(g, &c, &q, &E), RG_ERR_UNSUPPORTED);
    assert_non_null(strstr(E.msg, "grouped"));
    rg_graph_free(g);
}

static void cycle(int32_t bits, int lsq, int per_tensor)
{
    rg_graph *g = every_op_graph();
    rg_qat_config c = rg_qat_default();
    c.weight_bits = bits;
    c.lsq = lsq;
    c.per_tensor = per_tensor;
    c.freeze_bn = 1;
    c.freeze_observers = 1;
    rg_qat *q;
    CHECK(rg_qat_prepare(g, &c, &q, &E));
    enum { B = 3 };
    CHECK(rg_graph_plan(g, B, RG_PLAN_TRAIN, &E));
    size_t per = rg_shape_count(g->values[g->input].shape);
    float *x = malloc(sizeof(float) * per * 8);
    rg_rng r = rg_rng_keyed(5, 0, 0);
    for (size_t i = 0; i < per * 8; i++) x[i] = rg_rng_normal(&r);
    for (int epoch = 0; epoch < 2; epoch++) {
        rg_qat_set_epoch(q, epoch);
        for (int step = 0; step < 3; step++) {
            memcpy(rg_graph_input(g), x + (size_t)step * per, sizeof(float) * per * B);
            rg_exec ctx = {.training = 1, .seed = 2, .step = (uint64_t)(epoch * 3 + step)};
            rg_qat_begin(q);
            rg_graph_forward(g, &ctx);
            float *dy = rg_graph_output_grad(g);
            for (int i = 0; i < B * 5; i++) dy[i] = 0.1f * (float)(i % 3) - 0.1f;
            rg_graph_backward(g, &ctx);
            rg_qat_end(q, 1);
            for (size_t k = 0; k < g->param_floats; k++) g->param_data[k] -= 0.01f * g->grad_data[k];
        }
    }
    rg_exec ev = {.training = 0};
    memcpy(rg_graph_input(g), x, sizeof(float) * per * B);
    rg_qat_begin(q);
    rg_graph_forward(g, &ev);
    rg_qmodel *m;
    CHECK(rg_qat_lower(q, g, x, 8, &m, &E));
    int8_t *arena = malloc(rg_qmodel_arena_bytes(m, B));
    float logits[B * 5];
    CHECK(rg_qmodel_run_float(m, arena, x, B, logits, &E));
    /* the fake-quantized logits (g's output, from before lowering) equal the int8 model's */
    const float *y = rg_graph_output(g);
    for (int i = 0; i < B * 5; i++) assert_true(logits[i] == y[i]);
    free(arena);
    rg_qmodel_free(m);
    rg_qat_free(q);
    rg_graph_free(g);
    free(x);
}

static void test_cycle_int8(void **state)
{
    (void)state;
    cycle(8, 0, 0);
}

static void test_cycle_w4a8_lsq(void **state)
{
    (void)state;
    cycle(4, 1, 0);
}

static void test_cycle_per_tensor_lsq(void **state)
{
    (void)state;
    cycle(8, 1, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_config),     cmocka_unit_test(test_unsupported),
        cmocka_unit_test(test_cycle_int8),     cmocka_unit_test(test_cycle_w4a8_lsq),
        cmocka_unit_test(test_cycle_per_tensor_lsq),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
