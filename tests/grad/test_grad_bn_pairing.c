/* Batch norms paired with their convolutions in training (ops/bn.h): the
 * fused execution against the plain one, and its thread-count independence.
 *
 * In a training plan a convolution whose output only a batch norm reads is
 * paired with it (it takes the batch norm's moments as it writes its output
 * and, pointwise or depthwise, computes the batch norm's input gradient
 * itself), and a convolution that alone reads a batch norm's chain output
 * is fed by it (it applies batch norm and relu6 to its
 * input as it reads it and takes the gradient sums), as are a residual
 * add (alone or fused with relu) and a global average pooling (the head). A tapped value is never
 * fused, so tapping every value of the same network gives the plain
 * execution of the ops, which the finite-difference checks of
 * test_grad_ops.c hold to the definition. Here:
 * - the small MobileNetV2-style network below, which has every pairing
 *   (direct, pointwise and depthwise convolutions, stride 1 and 2, fed
 *   direct convolution c2 and pointwise ones, both
 *   pairings on one convolution and on one batch norm, residual adds with
 *   and without relu, one of two batch norms feeding an add), runs
 *   fused and plain from the same weights and inputs, for two steps (the
 *   second sees running statistics and gradients left by the first); every
 *   output, parameter gradient, input gradient and running statistic must
 *   agree within a relative L2 error of 1e-5 (the fused weight-gradient
 *   products sum their rows in other blocks; everything else computes the
 *   same operations: measured about 1e-7);
 *   the residual adds hand their output gradient's memory to both inputs
 *   (graph/fuse.h), which the plain run's tapped values never do;
 * - the same with every batch norm frozen (QAT late in training: running
 *   statistics, so the pairings step aside and the plain ops run on the
 *   paired plan's buffers);
 * - the fused network gives bit-identical results on 1 and 2 threads, with
 *   a plan for 8 images running a short batch of 5;
 * - a pass that asks for no input gradient (rg_exec.no_input_grad, as the
 *   trainer does) gives every other result bit-identical, and the input's
 *   gradient is not computed (its memory, shared by liveness, holds what
 *   an earlier gradient left there).
 * A fused path that dropped an image's moments or gradient sums, used the
 * wrong rows, or read a gradient buffer after the plan let another
 * gradient reuse it fails here.
 */
#include "test_support.h"

#include "regain/graph.h"
#include "regain/spec.h"
#include "graph/fuse.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const SPEC = "input h=28 w=26 c=3\n"
                                "conv name=stem c=8 k=3 s=1 bn act=relu6\n"
                                "conv name=c2 c=8 k=3 s=2 bn act=relu6\n"
                                "ir name=b1 t=1 c=8 s=1\n"
                                "ir name=b2 t=3 c=12 s=2\n"
                                "ir name=b3 t=2 c=12 s=1\n"
                                "basic name=r1 c=16 s=2\n"
                                "basic name=r2 c=16 s=1\n"
                                "conv name=head c=96 k=1 s=1 bn act=relu6\n"
                                "gap\n"
                                "fc name=fc n=5\n";

typedef struct {
    float *out, *grad, *in_grad, *buffers;
    size_t n_out, n_grad, n_in, n_buf;
} snapshot;

static float frand(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return (float)(*s >> 8) / (float)(1u << 24) * 2.0f - 1.0f;
}

static size_t count(rg_graph *g, int32_t v)
{
    rg_shape s = g->values[v].shape;
    s.n = g->batch;
    return rg_shape_count(s);
}

static float *copy_of(const float *p, size_t n)
{
    float *c = malloc(n * sizeof *c + 1);
    assert_non_null(c);
    memcpy(c, p, n * sizeof *c);
    return c;
}

/* The passes' rg_exec.no_input_grad. */
static int skip_input_grad;

/* Inputs of adds whose gradient is the add's output gradient's memory
 * (graph/fuse.h: rg_graph_grad_owners), in graph g's plan. */
static int handed_over(const rg_graph *g)
{
    int n = 0;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const rg_node *a = &g->nodes[i];
        if (a->op != RG_OP_ADD) continue;
        size_t out = g->values[rg_graph_chain_output(g, i)].grad_off;
        for (int32_t k = 0; k < a->n_in; k++) n += g->values[a->in[k]].grad_off == out;
    }
    return n;
}

static int last_handed_over;

/* Builds the network of `spec` (every value tapped when `plain`, batch norms
 * frozen when `frozen`), plans it for
 * `planned` images, runs two training steps of `batch` images on `threads`
 * threads, and keeps what the second step left (and, in
 * last_handed_over, handed_over() of its plan). */
static snapshot run_spec(const char *spec, int plain, int frozen, int32_t planned, int32_t batch, int threads, int *pairs,
                        int *feeds)
{
    rg_graph *g = NULL;
    CHECK(rg_spec_build(spec, "pairing", &g, &E));
    if (plain)
        for (int32_t v = 0; v < g->n_values; v++) CHECK(rg_graph_tap(g, v, &E));
    rg_graph_init_params(g, 11);
    /* gamma and beta away from 1 and 0, so they matter */
    uint32_t seed = 5;
    for (int32_t p = 0; p < g->n_params; p++)
        if (strstr(g->params[p].name, "bn."))
            for (size_t i = 0; i < g->params[p].count; i++)
                g->param_data[g->params[p].offset + i] += 0.3f * frand(&seed);
    CHECK(rg_graph_plan(g, planned, RG_PLAN_TRAIN, &E));
    CHECK(rg_graph_set_batch(g, batch, &E));
    last_handed_over = handed_over(g);
    *pairs = *feeds = 0;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        *pairs += g->nodes[i].op == RG_OP_BN && g->nodes[i].bn_pair;
        *feeds += g->nodes[i].op == RG_OP_BN && g->nodes[i].bn_feed;
        if (g->nodes[i].op == RG_OP_BN) g->nodes[i].a.bn.frozen = frozen;
    }
    int saved_threads = omp_get_max_threads();
    omp_set_num_threads(threads);
    for (int step = 0; step < 2; step++) {
        rg_exec ctx = {.training = 1, .seed = 3, .step = (uint64_t)step, .no_input_grad = skip_input_grad};
        float *x = rg_graph_input(g);
        for (size_t i = 0; i < count(g, g->input); i++) x[i] = 2.0f * frand(&seed);
        rg_graph_forward(g, &ctx);
        float *og = rg_graph_output_grad(g);
        for (size_t i = 0; i < count(g, g->output); i++) og[i] = frand(&seed);
        rg_graph_backward(g, &ctx);
    }
    omp_set_num_threads(saved_threads);
    snapshot s;
    s.n_out = count(g, g->output);
    s.n_in = count(g, g->input);
    s.n_grad = g->param_floats;
    s.n_buf = g->buffer_floats;
    s.out = copy_of(rg_graph_output(g), s.n_out);
    s.in_grad = copy_of(rg_graph_grad(g, g->input), s.n_in);
    s.grad = copy_of(g->grad_data, s.n_grad);
    s.buffers = copy_of(g->buffer_data, s.n_buf);
    rg_graph_free(g);
    return s;
}

static snapshot run(int plain, int frozen, int32_t planned, int32_t batch, int threads, int *pairs, int *feeds)
{
    return run_spec(SPEC, plain, frozen, planned, batch, threads, pairs, feeds);
}

static void snapshot_free(snapshot *s)
{
    free(s->out);
    free(s->grad);
    free(s->in_grad);
    free(s->buffers);
}

static double rel_l2(const float *a, const float *b, size_t n)
{
    double d = 0.0, r = 0.0;
    for (size_t i = 0; i < n; i++) {
        d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        r += (double)b[i] * b[i];
    }
    return r > 0.0 ? sqrt(d / r) : sqrt(d);
}

static void expect_close(const char *what, const float *a, const float *b, size_t n)
{
    double e = rel_l2(a, b, n);
    printf("%-18s relative L2 error %.2e\n", what, e);
    if (!(e <= 1e-5)) fail_msg("%s: fused and plain differ by %.3e (relative L2)", what, e);
}

/* Fused against plain from the same weights and inputs; returns the fused
 * network's pairings and feeds. */
static void expect_fused_matches_plain(int frozen, int *pairs, int *feeds)
{
    int plain_pairs, plain_feeds;
    snapshot f = run(0, frozen, 6, 6, 2, pairs, feeds);
    /* every residual add hands its output gradient to both inputs (b1, b3,
     * r1, r2: the inputs' other readers run before the last read of the
     * other input's gradient); tapped values never */
    assert_int_equal(last_handed_over, 8);
    snapshot p = run(1, frozen, 6, 6, 2, &plain_pairs, &plain_feeds);
    assert_int_equal(last_handed_over, 0);
    assert_int_equal(plain_pairs, 0);
    assert_int_equal(plain_feeds, 0);
    expect_close("output", f.out, p.out, f.n_out);
    expect_close("parameter grads", f.grad, p.grad, f.n_grad);
    expect_close("input grad", f.in_grad, p.in_grad, f.n_in);
    expect_close("running stats", f.buffers, p.buffers, f.n_buf);
    snapshot_free(&f);
    snapshot_free(&p);
}

static void test_fused_matches_plain(void **state)
{
    (void)state;
    int pairs, feeds;
    expect_fused_matches_plain(0, &pairs, &feeds);
    /* paired: stem, c2, b1.dw, b1.project, b2..b3 expand/dw/project, r1
     * and r2's two 3x3 convolutions, head (r1's strided 1x1 shortcut runs
     * by im2col, unpaired); fed: stem -> c2 (direct, stride 2), c2 -> b1.dw
     * and b1's add (two readers), b1.dw -> b1.project, b1.project -> the
     * add, per t > 1 block expand -> dw and dw -> project, b2.project ->
     * b3.expand and b3's add, b3.project -> the add, r1 and r2's first
     * batch norm -> their second convolution, r1's second and shortcut
     * batch norms -> its add (fed twice), r2's second -> its add, and head
     * -> gap */
    assert_int_equal(pairs, 15);
    assert_int_equal(feeds, 16);
}

static void test_fused_matches_plain_frozen(void **state)
{
    (void)state;
    int pairs, feeds;
    expect_fused_matches_plain(1, &pairs, &feeds);
}

/* Output, parameter gradients and running statistics bit for bit. */
static void expect_identical(const snapshot *a, const snapshot *b)
{
    assert_memory_equal(a->out, b->out, a->n_out * sizeof(float));
    assert_memory_equal(a->grad, b->grad, a->n_grad * sizeof(float));
    assert_memory_equal(a->buffers, b->buffers, a->n_buf * sizeof(float));
}

static void test_fused_threads_identical(void **state)
{
    (void)state;
    int pairs, feeds;
    snapshot a = run(0, 0, 8, 5, 1, &pairs, &feeds), b = run(0, 0, 8, 5, 2, &pairs, &feeds);
    expect_identical(&a, &b);
    assert_memory_equal(a.in_grad, b.in_grad, a.n_in * sizeof(float));
    snapshot_free(&a);
    snapshot_free(&b);
}

static void test_no_input_grad(void **state)
{
    (void)state;
    int pairs, feeds;
    snapshot a = run(0, 0, 8, 8, 2, &pairs, &feeds);
    skip_input_grad = 1;
    snapshot b = run(0, 0, 8, 8, 2, &pairs, &feeds);
    skip_input_grad = 0;
    expect_identical(&a, &b);
    assert_memory_not_equal(a.in_grad, b.in_grad, a.n_in * sizeof(float));
    snapshot_free(&a);
    snapshot_free(&b);
}

/* Two graphs where handing an add's output gradient over to an input
 * would be wrong, checked fused against plain (the plain run's tapped
 * values hand nothing over):
 * - s1 = a + b, where a's other reader r runs its backward (adding into
 *   a's gradient) before b's batch norm reads b's gradient for the last
 *   time: a may take s1's memory, b may not;
 * - s1 = relu(a + b) feeding s2 = s1 + r: s1's memory is then s2's, which
 *   r's batch norm has not read yet when s1 masks it in place, so s1 hands
 *   nothing over.
 * Without either guard in graph/fuse.c the fused parameter gradients are
 * off by about 1e-2 (checked when the guards were written). */
static void test_hand_over_guards(void **state)
{
    (void)state;
    static const struct {
        const char *spec;
        int handed;
    } cases[] = {
        {"input h=8 w=8 c=4\nconv name=a c=4 k=3 bn act=relu\nconv name=b in=a c=4 k=3 bn\n"
         "conv name=r in=a c=4 k=3 bn act=relu\nadd name=s1 in=a,b\nmul name=m in=s1,r\ngap\nfc n=3\n",
         1},
        {"input h=8 w=8 c=4\nconv name=a c=4 k=3 bn act=relu\nconv name=b in=a c=4 k=3 bn\n"
         "conv name=r in=a c=4 k=3 bn\nadd name=s1 in=a,b\nrelu name=s1r\nadd name=s2 in=s1r,r\ngap\nfc n=3\n",
         2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int pairs, feeds;
        snapshot f = run_spec(cases[i].spec, 0, 0, 4, 4, 2, &pairs, &feeds);
        int handed = last_handed_over;
        snapshot p = run_spec(cases[i].spec, 1, 0, 4, 4, 2, &pairs, &feeds);
        expect_close("parameter grads", f.grad, p.grad, f.n_grad);
        expect_close("input grad", f.in_grad, p.in_grad, f.n_in);
        assert_int_equal(handed, cases[i].handed);
        snapshot_free(&f);
        snapshot_free(&p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fused_matches_plain),
        cmocka_unit_test(test_fused_matches_plain_frozen),
        cmocka_unit_test(test_fused_threads_identical),
        cmocka_unit_test(test_no_input_grad),
        cmocka_unit_test(test_hand_over_guards),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
