/* Model specs and the zoo: hand-written specs build with the expected shapes,
 * names, parameters and multiply-accumulates; composite blocks expand as
 * documented (ir with t, with e and SE; basic with and without the
 * down-sampling shortcut; dwsep; both shuffle units; se); `in=` references
 * resolve; every listed zoo model builds; the benchmark networks have the
 * counts of docs/benchmark-models.md; the evaluation plan's memory reuse
 * neither grows the arena nor changes results; and evaluation mode treats
 * the images of a batch independently.
 *
 * Expected counts below are worked out by hand from the block definitions
 * (spec.h, docs/model-spec.md), not copied from a run. */
#include "test_support.h"

#include "regain/graph.h"
#include "regain/infer.h"
#include "regain/rng.h"
#include "regain/spec.h"
#include "regain/zoo.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static rg_graph *build(const char *text)
{
    rg_graph *g = NULL;
    CHECK(rg_spec_build(text, "test.spec", &g, &E));
    assert_non_null(g);
    return g;
}

/* Per-image output shape of the node named `name` (fails if there is none). */
static rg_shape node_shape(const rg_graph *g, const char *name)
{
    int32_t i = rg_graph_find_node(g, name);
    if (i < 0) fail_msg("no node '%s'", name);
    return g->values[g->nodes[i].out].shape;
}

static void expect_shape(const rg_graph *g, const char *name, int32_t h, int32_t w, int32_t c)
{
    rg_shape s = node_shape(g, name);
    if (s.h != h || s.w != w || s.c != c)
        fail_msg("%s: shape %dx%dx%d, expected %dx%dx%d", name, s.h, s.w, s.c, h, w, c);
}

static void expect_node(const rg_graph *g, const char *name, rg_op_type op)
{
    int32_t i = rg_graph_find_node(g, name);
    if (i < 0) fail_msg("no node '%s'", name);
    if (g->nodes[i].op != op)
        fail_msg("node '%s' is a %s, expected %s", name, rg_op_name(g->nodes[i].op), rg_op_name(op));
}

static void expect_no_node(const rg_graph *g, const char *name)
{
    if (rg_graph_find_node(g, name) >= 0) fail_msg("unexpected node '%s'", name);
}

/* A parameter with the given dims (ndim from the count of dims given). */
static void expect_param(const rg_graph *g, const char *name, int32_t ndim, int32_t d0, int32_t d1, int32_t d2,
                         int32_t d3)
{
    int32_t i = rg_graph_find_param(g, name);
    if (i < 0) fail_msg("no parameter '%s'", name);
    const rg_param *p = &g->params[i];
    int32_t want[4] = {d0, d1, d2, d3};
    assert_int_equal(p->ndim, ndim);
    for (int32_t k = 0; k < ndim; k++)
        if (p->dims[k] != want[k]) fail_msg("%s: dim %d is %d, expected %d", name, k, p->dims[k], want[k]);
}

static void expect_counts(const rg_graph *g, size_t params, uint64_t macs)
{
    rg_graph_stats st;
    CHECK(rg_graph_stats_compute(g, &st, &E));
    if (st.params != params || st.macs != macs)
        fail_msg("params %zu, MACs %llu; expected %zu, %llu", st.params, (unsigned long long)st.macs, params,
                 (unsigned long long)macs);
}

static void expect_output(const rg_graph *g, int32_t h, int32_t w, int32_t c)
{
    rg_shape s = g->values[g->output].shape;
    if (s.h != h || s.w != w || s.c != c)
        fail_msg("output %dx%dx%d, expected %dx%dx%d", s.h, s.w, s.c, h, w, c);
}

/* ---- a hand-written network -------------------------------------------------- */

static const char *const NET = "# a bit of everything\n"
                               "input h=9 w=7 c=3\n"
                               "conv name=stem c=12 k=3 s=1 bn act=relu6   # 9x7x12\n"
                               "ir name=b1 t=1 c=12 s=1                    # no expansion, residual\n"
                               "ir name=b2 t=2 c=16 s=2 se=0.25            # 5x4x16\n"
                               "ir name=b3 e=24 c=16 k=5 act=hswish        # residual\n"
                               "\n"
                               "basic name=r1 c=16                         # identity shortcut\n"
                               "basic name=r2 c=24 s=2                     # 3x2x24, 1x1 shortcut\n"
                               "dwsep name=d1 c=24\n"
                               "shuffle_unit name=su1 c=24                 # split\n"
                               "shuffle_unit name=su2 c=32 s=2             # 2x1x32\n"
                               "se name=se1 r=0.25\n"
                               "pw name=side c=32 in=su2 bn act=relu\n"
                               "add name=sum in=se1,side\n"
                               "gap\n"
                               "fc name=fc n=10\n";

static void test_hand_spec(void **state)
{
    (void)state;
    rg_graph *g = build(NET);
    assert_string_equal(g->spec, NET); /* the graph keeps its text */

    expect_shape(g, "stem", 9, 7, 12);
    expect_shape(g, "stem.relu6", 9, 7, 12);
    expect_shape(g, "b1.add", 9, 7, 12);
    /* stride 2 on odd sizes: (9 + 2 - 3) / 2 + 1 = 5, (7 + 2 - 3) / 2 + 1 = 4 */
    expect_shape(g, "b2.dw", 5, 4, 24);
    expect_shape(g, "b2.project.bn", 5, 4, 16);
    expect_shape(g, "b3.dw", 5, 4, 24);
    expect_shape(g, "b3.add", 5, 4, 16);
    expect_shape(g, "r1.relu", 5, 4, 16);
    expect_shape(g, "r2.conv1", 3, 2, 24);
    expect_shape(g, "r2.down", 3, 2, 24);
    expect_shape(g, "d1.pw.relu", 3, 2, 24);
    expect_shape(g, "su1.left", 3, 2, 12);
    expect_shape(g, "su1.shuffle", 3, 2, 24);
    expect_shape(g, "su2.ldw", 2, 1, 24);
    expect_shape(g, "su2.shuffle", 2, 1, 32);
    expect_shape(g, "se1.gap", 1, 1, 32);
    expect_shape(g, "se1.reduce", 1, 1, 8);
    expect_shape(g, "se1.scale", 2, 1, 32);
    expect_shape(g, "side.relu", 2, 1, 32);
    expect_shape(g, "sum", 2, 1, 32);
    expect_output(g, 1, 1, 10);

    /* parameter names and layouts (OHWI conv weights) */
    expect_param(g, "stem.weight", 4, 12, 3, 3, 3);
    expect_param(g, "stem.bn.weight", 1, 12, 0, 0, 0);
    expect_param(g, "b1.dw.weight", 4, 12, 3, 3, 1);
    expect_param(g, "b1.dw.bn.weight", 1, 12, 0, 0, 0);
    expect_param(g, "b1.dw.bn.bias", 1, 12, 0, 0, 0);
    assert_true(rg_graph_find_buffer(g, "b1.dw.bn.running_mean") >= 0);
    assert_true(rg_graph_find_buffer(g, "b1.dw.bn.running_var") >= 0);
    assert_int_equal(rg_graph_find_param(g, "b1.expand.weight"), -1);
    assert_int_equal(rg_graph_find_param(g, "stem.bias"), -1); /* no bias before BN */
    expect_param(g, "b2.expand.weight", 4, 24, 1, 1, 12);
    expect_param(g, "b2.se.reduce.weight", 4, 8, 1, 1, 24); /* make_divisible(24 / 4) = 8 */
    expect_param(g, "b2.se.reduce.bias", 1, 8, 0, 0, 0);
    expect_param(g, "b2.se.expand.weight", 4, 24, 1, 1, 8);
    expect_param(g, "b2.project.weight", 4, 16, 1, 1, 24);
    expect_param(g, "b3.dw.weight", 4, 24, 5, 5, 1);
    expect_param(g, "r2.down.weight", 4, 24, 1, 1, 16);
    assert_int_equal(rg_graph_find_param(g, "r1.down.weight"), -1);
    expect_param(g, "su2.lpw.weight", 4, 16, 1, 1, 24);
    expect_param(g, "side.weight", 4, 32, 1, 1, 32);
    expect_param(g, "fc.weight", 2, 10, 32, 0, 0);
    expect_param(g, "fc.bias", 1, 10, 0, 0, 0);

    /* activations as asked */
    expect_node(g, "b3.expand.hswish", RG_OP_HSWISH);
    expect_node(g, "b3.dw.hswish", RG_OP_HSWISH);
    expect_node(g, "b2.dw.relu6", RG_OP_RELU6);
    expect_node(g, "b2.se.expand.sigmoid", RG_OP_SIGMOID);
    expect_no_node(g, "b2.add"); /* stride 2: no residual */
    expect_no_node(g, "b2.project.relu6");
    /* unnamed lines get "<kind><counter>" */
    expect_node(g, "gap1", RG_OP_GAP);

    /* `in=` reads the named line's output, not the previous line's */
    int32_t side = rg_graph_find_node(g, "side"), su2 = rg_graph_find_node(g, "su2.shuffle");
    assert_int_equal(g->nodes[side].in[0], g->nodes[su2].out);
    int32_t sum = rg_graph_find_node(g, "sum");
    assert_int_equal(g->nodes[sum].in[0], g->nodes[rg_graph_find_node(g, "se1.scale")].out);
    assert_int_equal(g->nodes[sum].in[1], g->nodes[rg_graph_find_node(g, "side.relu")].out);
    rg_graph_free(g);
}

/* Every plain kind, and `in=` with one, two and three names and `input`. */
static void test_plain_ops_and_in(void **state)
{
    (void)state;
    rg_graph *g = build("input h=8 w=6 c=4\n"
                        "conv name=a c=6 k=3 s=1 p=0 g=2 bias=1   # 6x4x6, two groups, bias\n"
                        "dw name=b k=3 p=1 bn act=relu6            # groups = channels\n"
                        "pw name=c c=5 act=sigmoid\n"
                        "conv name=x0 c=3 k=5 s=1 p=2 in=input     # a branch from the input\n"
                        "maxpool name=mp k=3 s=1 p=0 in=x0         # 6x4x3\n"
                        "concat name=cat in=a,c,mp                 # 6 + 5 + 3 = 14\n"
                        "slice name=sl offset=2 count=12\n"
                        "shuffle name=sh g=3\n"
                        "bn name=n1\n"
                        "hswish name=hs\n"
                        "relu name=re\n"
                        "gap name=gp\n"
                        "sigmoid name=gate\n"
                        "mul name=m in=sh,gate                     # channel broadcast\n"
                        "avgpool name=ap k=2                        # s defaults to k: 3x2\n"
                        "relu6 name=r6\n"
                        "dropout name=dr p=0.2\n"
                        "fc name=fc n=7 bias=0\n");
    expect_shape(g, "a", 6, 4, 6);
    expect_param(g, "a.weight", 4, 6, 3, 3, 2);
    expect_param(g, "a.bias", 1, 6, 0, 0, 0);
    expect_shape(g, "b", 6, 4, 6);
    expect_param(g, "b.weight", 4, 6, 3, 3, 1);
    expect_node(g, "b.bn", RG_OP_BN);
    expect_node(g, "b.relu6", RG_OP_RELU6);
    expect_shape(g, "c.sigmoid", 6, 4, 5);
    expect_param(g, "c.bias", 1, 5, 0, 0, 0); /* no bn: bias by default */
    expect_shape(g, "x0", 8, 6, 3);
    assert_int_equal(g->nodes[rg_graph_find_node(g, "x0")].in[0], g->input);
    expect_shape(g, "mp", 6, 4, 3);
    expect_shape(g, "cat", 6, 4, 14);
    const rg_node *cat = &g->nodes[rg_graph_find_node(g, "cat")];
    assert_int_equal(cat->n_in, 3);
    assert_int_equal(cat->in[0], g->nodes[rg_graph_find_node(g, "a")].out);
    assert_int_equal(cat->in[1], g->nodes[rg_graph_find_node(g, "c.sigmoid")].out);
    assert_int_equal(cat->in[2], g->nodes[rg_graph_find_node(g, "mp")].out);
    expect_shape(g, "sl", 6, 4, 12);
    assert_int_equal(g->nodes[rg_graph_find_node(g, "sl")].a.slice.offset, 2);
    assert_int_equal(g->nodes[rg_graph_find_node(g, "sh")].a.shuffle.groups, 3);
    expect_shape(g, "gate", 1, 1, 12);
    expect_shape(g, "m", 6, 4, 12);
    expect_shape(g, "ap", 3, 2, 12);
    expect_node(g, "dr", RG_OP_DROPOUT);
    assert_true(fabsf(g->nodes[rg_graph_find_node(g, "dr")].a.dropout.p - 0.2f) < 1e-6f);
    expect_output(g, 1, 1, 7);
    assert_int_equal(rg_graph_find_param(g, "fc.bias"), -1);
    /* params: a 6*3*3*2 + 6 = 114; b 54 + 12 = 66; c 30 + 5 = 35; x0 3*5*5*4 + 3 = 303;
     * n1 24; fc 7 * (3*2*12) = 504 */
    /* MACs: a 24*6*18 = 2592; b 24*6*9 = 1296; c 24*5*6 = 720; x0 48*300 = 14400; fc 504 */
    expect_counts(g, 114 + 66 + 35 + 303 + 24 + 504, 2592 + 1296 + 720 + 14400 + 504);
    rg_graph_free(g);
}

/* ---- composite blocks, one at a time --------------------------------------------- */

static void test_ir_t(void **state)
{
    (void)state;
    rg_graph *g = build("input h=8 w=8 c=4\nir name=b t=2 c=4\n");
    /* expand 4->8: 32 + BN 16; dw 3x3x8: 72 + 16; project 8->4: 32 + 8 */
    expect_counts(g, 32 + 16 + 72 + 16 + 32 + 8, 64 * 32 + 64 * 72 + 64 * 32);
    const char *nodes[] = {"b.expand", "b.expand.bn", "b.expand.relu6", "b.dw", "b.dw.bn", "b.dw.relu6",
                           "b.project", "b.project.bn", "b.add"};
    for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++) {
        assert_string_equal(g->nodes[i + 1].name, nodes[i]); /* in this order, after the input */
        expect_shape(g, nodes[i], 8, 8, i < 6 ? 8 : 4);
    }
    assert_int_equal(g->n_nodes, 10);
    expect_node(g, "b.add", RG_OP_ADD);
    expect_output(g, 8, 8, 4);
    rg_graph_free(g);

    /* t = 1: no expansion; channels change: no residual */
    g = build("input h=8 w=8 c=4\nir name=b t=1 c=6\n");
    expect_no_node(g, "b.expand");
    expect_no_node(g, "b.add");
    expect_counts(g, 36 + 8 + 24 + 12, 64 * 36 + 64 * 24);
    expect_output(g, 8, 8, 6);
    rg_graph_free(g);
}

static void test_ir_e_se(void **state)
{
    (void)state;
    rg_graph *g = build("input h=8 w=8 c=8\nbneck name=b e=16 c=12 s=2 k=5 se=0.25 act=hswish\n");
    /* hidden 16: expand 8->16 128 + 32; dw 5x5x16 400 + 32; SE squeeze
     * make_divisible(4) = 8: reduce 16->8 128 + 8, expand 8->16 128 + 16;
     * project 16->12 192 + 24. Output (8 + 4 - 5) / 2 + 1 = 4. */
    expect_counts(g, 160 + 432 + 136 + 144 + 216, 64 * 128 + 16 * 400 + 128 + 128 + 16 * 192);
    expect_shape(g, "b.dw", 4, 4, 16);
    expect_shape(g, "b.se.gap", 1, 1, 16);
    expect_shape(g, "b.se.reduce.relu", 1, 1, 8);
    expect_shape(g, "b.se.expand.sigmoid", 1, 1, 16);
    expect_node(g, "b.se.scale", RG_OP_MUL);
    expect_node(g, "b.expand.hswish", RG_OP_HSWISH);
    expect_no_node(g, "b.add");
    expect_output(g, 4, 4, 12);
    rg_graph_free(g);

    /* e equal to the input channels: no expansion conv, residual kept */
    g = build("input h=5 w=5 c=8\nmbconv name=m e=8 c=8\n");
    expect_no_node(g, "m.expand");
    expect_node(g, "m.add", RG_OP_ADD);
    rg_graph_free(g);
}

static void test_basic(void **state)
{
    (void)state;
    rg_graph *g = build("input h=6 w=6 c=8\nbasic name=r c=8\n");
    /* two 3x3 8->8 convs + BN: 2 * (576 + 16) */
    expect_counts(g, 2 * (576 + 16), 2 * 36 * 576);
    expect_no_node(g, "r.down");
    expect_node(g, "r.conv1.relu", RG_OP_RELU);
    expect_no_node(g, "r.conv2.relu");
    const rg_node *add = &g->nodes[rg_graph_find_node(g, "r.add")];
    assert_int_equal(add->in[1], g->input); /* identity shortcut */
    expect_node(g, "r.relu", RG_OP_RELU);
    assert_int_equal(g->output, g->nodes[rg_graph_find_node(g, "r.relu")].out);
    rg_graph_free(g);

    g = build("input h=7 w=7 c=8\nbasic name=r c=16 s=2\n");
    /* conv1 8->16 1152 + 32, conv2 16->16 2304 + 32, down 1x1 8->16 s2 128 + 32; output 4x4 */
    expect_counts(g, 1184 + 2336 + 160, 16 * 1152 + 16 * 2304 + 16 * 128);
    expect_shape(g, "r.down.bn", 4, 4, 16);
    expect_output(g, 4, 4, 16);
    rg_graph_free(g);
}

static void test_dwsep(void **state)
{
    (void)state;
    rg_graph *g = build("input h=6 w=6 c=8\ndwsep name=d c=12 s=2\n");
    expect_counts(g, 72 + 16 + 96 + 24, 9 * 72 + 9 * 96);
    expect_shape(g, "d.dw.relu", 3, 3, 8);
    expect_shape(g, "d.pw.relu", 3, 3, 12);
    rg_graph_free(g);
}

static void test_shuffle_units(void **state)
{
    (void)state;
    rg_graph *g = build("input h=6 w=6 c=8\nshuffle_unit name=u c=8\n");
    /* right half (4 channels): pw 16 + 8, dw 36 + 8, pw 16 + 8 */
    expect_counts(g, 92, 36 * (16 + 36 + 16));
    expect_node(g, "u.left", RG_OP_SLICE);
    expect_node(g, "u.right", RG_OP_SLICE);
    assert_int_equal(g->nodes[rg_graph_find_node(g, "u.right")].a.slice.offset, 4);
    expect_shape(g, "u.cat", 6, 6, 8);
    expect_node(g, "u.shuffle", RG_OP_SHUFFLE);
    expect_no_node(g, "u.ldw");
    expect_output(g, 6, 6, 8);
    rg_graph_free(g);

    g = build("input h=6 w=6 c=8\nshuffle_unit name=u c=16 s=2\n");
    /* left: dw 8 (72 + 16), pw 8->8 (64 + 16); right: pw 8->8, dw 8 s2, pw 8->8 */
    expect_counts(g, 88 + 80 + 80 + 88 + 80, 9 * (72 + 64 + 72 + 64) + 36 * 64);
    expect_no_node(g, "u.left");
    expect_shape(g, "u.lpw", 3, 3, 8);
    expect_shape(g, "u.dw", 3, 3, 8);
    expect_output(g, 3, 3, 16);
    rg_graph_free(g);
}

static void test_se(void **state)
{
    (void)state;
    rg_graph *g = build("input h=4 w=4 c=16\nse name=s r=0.5\n");
    expect_counts(g, 128 + 8 + 128 + 16, 128 + 128);
    expect_output(g, 4, 4, 16);
    const rg_node *scale = &g->nodes[rg_graph_find_node(g, "s.scale")];
    assert_int_equal(scale->in[0], g->input);
    rg_graph_free(g);
}

/* ---- the zoo ------------------------------------------------------------------------ */

static void test_zoo_listed_build(void **state)
{
    (void)state;
    const char *const *names = rg_zoo_listed();
    int n = 0;
    for (; names[n]; n++) {
        rg_graph *g = NULL;
        memset(&E, 0, sizeof E);
        if (rg_zoo_build(names[n], 28, 28, 1, 10, &g, &E) != RG_OK) fail_msg("%s: %s", names[n], E.msg);
        expect_output(g, 1, 1, 10);
        /* one image through the evaluation plan gives finite logits */
        rg_graph_init_params(g, 1);
        CHECK(rg_graph_plan(g, 1, RG_PLAN_EVAL, &E));
        float *x = rg_graph_input(g);
        for (int i = 0; i < 28 * 28; i++) x[i] = (float)(i % 29) / 29.0f;
        rg_exec ctx = {0};
        rg_graph_forward(g, &ctx);
        for (int k = 0; k < 10; k++)
            if (!isfinite(rg_graph_output(g)[k])) fail_msg("%s: logit %d is not finite", names[n], k);
        rg_graph_free(g);
    }
    assert_true(n >= 10);

    /* every family builds at its base size (as spec text too) */
    for (const rg_zoo_family *f = rg_zoo_families(); f->name; f++) {
        char *spec = NULL;
        CHECK(rg_zoo_spec(f->name, 10, &spec, &E));
        assert_non_null(strstr(spec, "input h=28 w=28 c=1"));
        rg_graph *g = NULL;
        memset(&E, 0, sizeof E);
        if (rg_spec_build(spec, f->name, &g, &E) != RG_OK) fail_msg("%s: %s", f->name, E.msg);
        expect_output(g, 1, 1, 10);
        free(spec);
        rg_graph_free(g);
    }
    /* other input sizes and class counts */
    rg_graph *g = NULL;
    CHECK(rg_zoo_build("mobilenetv2-w0.35-d0.5", 32, 32, 3, 100, &g, &E));
    expect_output(g, 1, 1, 100);
    assert_int_equal(g->values[g->input].shape.c, 3);
    rg_graph_free(g);
}

static void zoo_counts(const char *name, size_t params, uint64_t macs)
{
    rg_graph *g = NULL;
    CHECK(rg_zoo_build(name, 28, 28, 1, 10, &g, &E));
    rg_graph_stats st;
    CHECK(rg_graph_stats_compute(g, &st, &E));
    if (st.params != params || st.macs != macs)
        fail_msg("%s: %zu parameters and %llu MACs, docs/benchmark-models.md says %zu and %llu", name, st.params,
                 (unsigned long long)st.macs, params, (unsigned long long)macs);
    rg_graph_free(g);
}

static void test_benchmark_counts(void **state)
{
    (void)state;
    zoo_counts("mbv2-tiny", 132938, 8762976);
    zoo_counts("resnet20", 272186, 31021952);
    zoo_counts("resnet20-w2", 1084010, 123860736);
}

/* ---- plans and evaluation mode ----------------------------------------------------------- */

static void random_state(rg_graph *g, uint64_t seed)
{
    rg_graph_init_params(g, seed);
    rg_rng r = rg_rng_keyed(seed, 9, 0);
    /* non-trivial BN affine and running statistics, so evaluation mode is not the identity */
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const rg_node *n = &g->nodes[i];
        if (n->op != RG_OP_BN) continue;
        const rg_param *gp = &g->params[n->param[0]], *bp = &g->params[n->param[1]];
        const rg_param *mp = &g->buffers[n->buffer[0]], *vp = &g->buffers[n->buffer[1]];
        for (size_t k = 0; k < gp->count; k++) {
            g->param_data[gp->offset + k] = 0.5f + rg_rng_uniform(&r);
            g->param_data[bp->offset + k] = 0.2f * rg_rng_normal(&r);
            g->buffer_data[mp->offset + k] = 0.2f * rg_rng_normal(&r);
            g->buffer_data[vp->offset + k] = 0.5f + rg_rng_uniform(&r);
        }
    }
}

/* Image i of a fixed random set, written to dst (its own stream per image). */
static void image(const rg_graph *g, int32_t i, float *dst)
{
    rg_shape s = g->values[g->input].shape;
    rg_rng r = rg_rng_keyed(6, 10, (uint64_t)i);
    for (size_t k = 0; k < (size_t)s.h * s.w * s.c; k++) dst[k] = rg_rng_uniform(&r);
}

static void fill_images(rg_graph *g, int32_t n)
{
    rg_shape s = g->values[g->input].shape;
    for (int32_t i = 0; i < n; i++) image(g, i, rg_graph_input(g) + (size_t)i * s.h * s.w * s.c);
}

static void test_eval_plan_peak(void **state)
{
    (void)state;
    const char *models[] = {"mbv2-tiny", "resnet20", "shufflenetv2-w0.5", "mobilenetv3-small-w0.5"};
    for (size_t m = 0; m < sizeof models / sizeof models[0]; m++) {
        rg_graph *g = NULL;
        CHECK(rg_zoo_build(models[m], 28, 28, 1, 10, &g, &E));
        for (int32_t batch = 1; batch <= 8; batch *= 8) {
            CHECK(rg_graph_plan(g, batch, RG_PLAN_TRAIN, &E));
            size_t train = g->act_floats;
            CHECK(rg_graph_plan(g, batch, RG_PLAN_EVAL, &E));
            size_t eval = g->act_floats;
            if (eval > train) fail_msg("%s batch %d: eval plan %zu floats > train plan %zu", models[m], batch, eval, train);
            /* liveness reuse pays off on any real network */
            assert_true(eval < train);
            if (batch == 1) {
                rg_graph_stats st;
                CHECK(rg_graph_stats_compute(g, &st, &E));
                assert_int_equal(st.peak_act_bytes, eval * sizeof(float));
            }
        }
        rg_graph_free(g);
    }
}

/* Evaluation mode: a batch gives each image the result it gets alone, and
 * the memory-reusing, batch-norm-folding evaluation plan gives what the
 * training plan (every value in its own slot, batch norm applied after the
 * convolution) gives, up to float rounding. */
static void eval_consistency_of(rg_graph *g, const char *model)
{
    const int32_t N = 3;
    random_state(g, 5);
    rg_exec ctx = {.training = 0, .seed = 1, .step = 1};
    float batch_out[3 * 10], train_out[3 * 10];

    CHECK(rg_graph_plan(g, N, RG_PLAN_EVAL, &E));
    fill_images(g, N);
    rg_graph_forward(g, &ctx);
    memcpy(batch_out, rg_graph_output(g), sizeof batch_out);

    CHECK(rg_graph_plan(g, N, RG_PLAN_TRAIN, &E));
    fill_images(g, N);
    rg_graph_forward(g, &ctx);
    memcpy(train_out, rg_graph_output(g), sizeof train_out);
    /* the eval plan folds batch norms into the convolutions (graph/fuse.c),
     * which rounds differently from normalizing after them: float noise only */
    for (int k = 0; k < N * 10; k++)
        if (!(fabsf(train_out[k] - batch_out[k]) <= 1e-5f * (1.0f + fabsf(train_out[k]))))
            fail_msg("%s: logit %d is %.9g with the eval plan, %.9g with the train plan", model, k, batch_out[k],
                     train_out[k]);

    /* a smaller batch on the same plan (an epoch's last batch): the first image */
    CHECK(rg_graph_plan(g, N, RG_PLAN_EVAL, &E));
    CHECK(rg_graph_set_batch(g, 1, &E));
    image(g, 0, rg_graph_input(g));
    rg_graph_forward(g, &ctx);
    for (int k = 0; k < 10; k++)
        if (!(fabsf(rg_graph_output(g)[k] - batch_out[k]) <= 1e-5f * (1.0f + fabsf(batch_out[k]))))
            fail_msg("%s: logit %d: %.9g as a batch of 1 of 3, %.9g in the batch of 3", model, k,
                     rg_graph_output(g)[k], batch_out[k]);

    /* one image at a time (the plan reuses the input's memory: refill it each time) */
    CHECK(rg_graph_plan(g, 1, RG_PLAN_EVAL, &E));
    for (int32_t i = 0; i < N; i++) {
        image(g, i, rg_graph_input(g));
        rg_graph_forward(g, &ctx);
        const float *y = rg_graph_output(g);
        for (int k = 0; k < 10; k++) {
            float a = y[k], b = batch_out[i * 10 + k];
            /* the matrix products block rows by shape, so another batch size
             * may round differently: allow float noise */
            if (!(fabsf(a - b) <= 1e-5f * (1.0f + fabsf(b))))
                fail_msg("%s: image %d logit %d: %.9g alone, %.9g in a batch", model, i, k, a, b);
        }
    }
}

static void eval_consistency(const char *model)
{
    rg_graph *g = NULL;
    CHECK(rg_zoo_build(model, 28, 28, 1, 10, &g, &E));
    eval_consistency_of(g, model);
    rg_graph_free(g);
}

static int fused_away(const rg_graph *g, const char *name)
{
    int32_t i = rg_graph_find_node(g, name);
    if (i < 0) fail_msg("no node '%s'", name);
    return g->nodes[i].fuse_prev != 0;
}

/* The evaluation plan runs a residual add as the epilogue of the pointwise
 * convolution + batch norm it reads (graph/fuse.c), with its activation,
 * when the add's other input is computed before that convolution; not
 * when it is computed after, nor after a dense convolution; and the
 * results are those of the training plan, which runs every node. */
static void test_eval_fuses_residual_add(void **state)
{
    (void)state;
    rg_graph *g = build("input h=6 w=5 c=8\n"
                        "conv name=a c=8 k=3 bn act=relu\n"
                        "pw name=p c=8 bn\n"
                        "add name=early in=p,a\n" /* a before p: fused, with the relu */
                        "relu name=early_relu\n"
                        "pw name=q c=8 bn\n"
                        "pw name=r c=8 in=early_relu bn act=relu6\n"
                        "add name=late in=q,r\n"           /* r after q: not fused */
                        "conv name=d c=8 k=3 bn\n"
                        "add name=dense in=d,late\n"       /* a 3x3 convolution: not fused */
                        "gap\n"
                        "fc n=10\n");
    CHECK(rg_graph_plan(g, 2, RG_PLAN_EVAL, &E));
    assert_true(fused_away(g, "p.bn") && fused_away(g, "early") && fused_away(g, "early_relu"));
    assert_true(fused_away(g, "q.bn") && !fused_away(g, "late"));
    assert_true(fused_away(g, "d.bn") && !fused_away(g, "dense"));
    CHECK(rg_graph_plan(g, 2, RG_PLAN_TRAIN, &E));
    assert_false(fused_away(g, "early")); /* training runs the add itself */
    eval_consistency_of(g, "residual adds");
    rg_graph_free(g);
}

/* One pass of a graph planned on one thread, run on `threads`: the logits
 * into out (4 x 10), and in training the parameter gradients (of the loss
 * sum(logits)) into grad. */
static void pass_on(rg_graph *g, int training, int threads, float *out, float *grad)
{
    omp_set_num_threads(threads);
    rg_exec ctx = {.training = training, .seed = 1, .step = 1};
    fill_images(g, 4);
    rg_graph_forward(g, &ctx);
    memcpy(out, rg_graph_output(g), sizeof(float) * 4 * 10);
    if (!training) return;
    for (int k = 0; k < 4 * 10; k++) rg_graph_output_grad(g)[k] = 1.0f;
    rg_graph_backward(g, &ctx);
    memcpy(grad, g->grad_data, sizeof(float) * g->param_floats);
}

/* More threads at run time than when the plan was made (the caller raised
 * omp_set_num_threads): the ops' per-thread buffers were sized for the
 * planned threads and the scratch behind them holds other data (an
 * evaluation chain's folded weights): the same bits as on the one thread
 * of the plan, in evaluation and in training. */
static void test_threads_after_plan(void **state)
{
    (void)state;
    const char *models[] = {"resnet20", "mbv2-tiny"};
    int saved = omp_get_max_threads();
    for (size_t m = 0; m < sizeof models / sizeof models[0]; m++)
        for (int training = 0; training <= 1; training++) {
            rg_graph *g = NULL;
            CHECK(rg_zoo_build(models[m], 28, 28, 1, 10, &g, &E));
            random_state(g, 13);
            float one[4 * 10], four[4 * 10];
            float *g1 = malloc(sizeof(float) * g->param_floats), *g4 = malloc(sizeof(float) * g->param_floats);
            omp_set_num_threads(1);
            CHECK(rg_graph_plan(g, 4, training ? RG_PLAN_TRAIN : RG_PLAN_EVAL, &E));
            pass_on(g, training, 1, one, g1);
            pass_on(g, training, 4, four, g4);
            if (memcmp(one, four, sizeof one) != 0)
                fail_msg("%s (%s): the logits differ on 4 threads from the 1 the plan was made for", models[m],
                         training ? "training" : "evaluation");
            if (training && memcmp(g1, g4, sizeof(float) * g->param_floats) != 0)
                fail_msg("%s: the gradients differ on 4 threads from the 1 the plan was made for", models[m]);
            free(g1);
            free(g4);
            rg_graph_free(g);
        }
    omp_set_num_threads(saved);
}

/* Inference sessions (regain/infer.h): every thread count gives the same
 * bits for the same micro-batch size, and any cut of the batch gives what
 * the training plan in evaluation mode gives, up to float rounding. */
static void test_infer_session(void **state)
{
    (void)state;
    const char *models[] = {"mbv2-tiny", "resnet20", "shufflenetv2-w0.5", "mobilenetv3-small-w0.5"};
    enum { N = 7 };
    for (size_t m = 0; m < sizeof models / sizeof models[0]; m++) {
        rg_graph *g = NULL;
        CHECK(rg_zoo_build(models[m], 28, 28, 1, 10, &g, &E));
        random_state(g, 11);
        float images[N * 28 * 28], want[N * 10], one[N * 10], two[N * 10], autom[N * 10];
        for (int32_t i = 0; i < N; i++) image(g, i, images + (size_t)i * 28 * 28);
        CHECK(rg_graph_plan(g, N, RG_PLAN_TRAIN, &E));
        memcpy(rg_graph_input(g), images, sizeof images);
        rg_exec ctx = {.training = 0};
        rg_graph_forward(g, &ctx);
        memcpy(want, rg_graph_output(g), sizeof want);

        rg_infer *s = NULL;
        CHECK(rg_infer_create(g, 1, 3, &s, &E));
        rg_infer_run(s, images, N, one);
        rg_infer_free(s);
        CHECK(rg_infer_create(g, 2, 3, &s, &E));
        rg_infer_run(s, images, N, two);
        rg_infer_free(s);
        CHECK(rg_infer_create(g, 2, 0, &s, &E));
        assert_true(rg_infer_micro_batch(s) >= 1);
        rg_infer_run(s, images, N, autom);
        rg_infer_free(s);
        for (int k = 0; k < N * 10; k++) {
            if (one[k] != two[k]) fail_msg("%s: logit %d: %.9g on 1 thread, %.9g on 2", models[m], k, one[k], two[k]);
            if (!(fabsf(one[k] - want[k]) <= 1e-5f * (1.0f + fabsf(want[k]))) ||
                !(fabsf(autom[k] - want[k]) <= 1e-5f * (1.0f + fabsf(want[k]))))
                fail_msg("%s: logit %d: session %.9g / %.9g, graph %.9g", models[m], k, one[k], autom[k], want[k]);
        }
        rg_graph_free(g);
    }
    /* a session is a snapshot: later weight changes reach the next session only */
    rg_error e = {0};
    rg_infer *s = NULL;
    rg_graph *g = NULL;
    CHECK(rg_zoo_build("mbv2-tiny", 28, 28, 1, 10, &g, &E));
    random_state(g, 3);
    float img[28 * 28], before[10], after[10], fresh[10];
    image(g, 0, img);
    CHECK(rg_infer_create(g, 1, 1, &s, &E));
    rg_infer_run(s, img, 1, before);
    int32_t gamma = rg_graph_find_param(g, "stem.bn.weight");
    assert_true(gamma >= 0);
    for (size_t k = 0; k < g->params[gamma].count; k++) g->param_data[g->params[gamma].offset + k] *= 3.0f;
    rg_infer_run(s, img, 1, after);
    assert_memory_equal(before, after, sizeof before);
    rg_infer_free(s);
    CHECK(rg_infer_create(g, 1, 1, &s, &E));
    rg_infer_run(s, img, 1, fresh);
    assert_true(memcmp(before, fresh, sizeof fresh) != 0);
    rg_infer_free(s);
    s = NULL;
    assert_int_equal(rg_infer_create(g, 1, -1, &s, &e), RG_ERR_ARG);
    assert_null(s);
    assert_non_null(strstr(e.msg, "micro-batch"));
    rg_graph_free(g);
}

static void test_eval_batch_independence(void **state)
{
    (void)state;
    eval_consistency("mbv2-tiny");
    eval_consistency("mobilenetv3-small-w0.5"); /* SE gates, dropout (inactive) */
    eval_consistency("shufflenetv2-w0.5");      /* split, concat, shuffle */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_spec),
        cmocka_unit_test(test_plain_ops_and_in),
        cmocka_unit_test(test_ir_t),
        cmocka_unit_test(test_ir_e_se),
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_dwsep),
        cmocka_unit_test(test_shuffle_units),
        cmocka_unit_test(test_se),
        cmocka_unit_test(test_zoo_listed_build),
        cmocka_unit_test(test_benchmark_counts),
        cmocka_unit_test(test_eval_plan_peak),
        cmocka_unit_test(test_eval_batch_independence),
        cmocka_unit_test(test_eval_fuses_residual_add),
        cmocka_unit_test(test_threads_after_plan), cmocka_unit_test(test_infer_session),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
