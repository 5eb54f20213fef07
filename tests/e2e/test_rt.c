/* The int8 runtime (regain/rt.h) against the lowering prototype's reference
 * execution (rg_qmodel_run): mbv2-tiny and a small graph with every other
 * op kind are lowered, written to .rgm, loaded back, prepared on every
 * kernel table this CPU runs, and run on random int8 images. The outputs
 * must match rg_qmodel_run byte for byte (the fast kernels are bit-exact),
 * with the arena filled with garbage first (a tensor the plan overlaps with
 * a live one would show). The plan itself is checked geometrically: no two
 * tensors alive at the same op overlap, except a clamp over its own dying
 * input. An equalized mbv2-tiny (per-channel clamps) is checked the same
 * way, and exported from the CLI with --equalize. The accuracy regain
 * quantize reports through the runtime (rg_qmodel_evaluate_rt) equals the
 * reference executor's, confusion matrix and all. */
#include "test_support.h"
#include "qmodel_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "regain/checkpoint.h"
#include "regain/cpu.h"
#include "regain/data.h"
#include "regain/graph.h"
#include "regain/ptq.h"
#include "regain/quant_model.h"
#include "regain/rng.h"
#include "regain/rt.h"
#include "regain/rt_qmodel.h"
#include "regain/zoo.h"
#include "rt/kernels/qk.h"

enum { N_IMAGES = 12 };

/* calibrated on 64 images: real ones (normalized) when given, else noise */
static rg_qmodel *lower(rg_graph *g, int32_t image, const float *real)
{
    float *calib = malloc(sizeof(float) * 64 * (size_t)image);
    if (real) memcpy(calib, real, sizeof(float) * 64 * (size_t)image);
    else rgt_random_floats(calib, 64 * (size_t)image, 11);
    rgt_settle(g, calib, 64, image);
    rg_lower_config cfg = rg_lower_default();
    cfg.batch = 16;
    rg_qmodel *m;
    CHECK(rg_quant_lower(g, calib, 64, &cfg, &m, &E));
    free(calib);
    return m;
}

static void check_plan(const rg_rgm *m, const rg_rt *rt)
{
    rg_rt_plan_stats s;
    rg_rt_plan_stats_get(rt, &s);
    assert_true(s.arena <= s.naive);
    assert_true(s.arena >= s.lower_bound);
    assert_true(s.tflm_greedy >= s.lower_bound);
    assert_true(rg_rt_arena_size(rt) >= s.arena + s.scratch);
    for (int32_t a = 0; a < m->n_tensors; a++) {
        int32_t fa, la;
        rg_rt_tensor_life(rt, a, &fa, &la);
        if (fa == -2) continue;
        size_t oa = rg_rt_tensor_offset(rt, a), sa = (size_t)m->tensors[a].h * m->tensors[a].w * m->tensors[a].c;
        assert_true(oa + sa <= s.arena);
        for (int32_t b = a + 1; b < m->n_tensors; b++) {
            int32_t fb, lb;
            rg_rt_tensor_life(rt, b, &fb, &lb);
            if (fb == -2 || la < fb || lb < fa) continue;
            size_t ob = rg_rt_tensor_offset(rt, b), sb = (size_t)m->tensors[b].h * m->tensors[b].w * m->tensors[b].c;
            if (oa < ob + sb && ob < oa + sa) {
                /* only a clamp writing over its input, which dies there */
                int ok = 0;
                for (int32_t i = 0; i < m->n_ops; i++) {
                    const rg_rgm_op *o = &m->ops[i];
                    if ((o->kind == RG_RT_CLAMP || o->kind == RG_RT_LUT) &&
                        ((o->in[0] == a && o->out == b) || (o->in[0] == b && o->out == a)))
                        ok = rg_rt_tensor_in_place(rt, o->out) && oa == ob;
                }
                if (!ok) print_error("tensors %d and %d overlap while both alive\n", (int)a, (int)b);
                assert_true(ok);
            }
        }
    }
}

/* Every intermediate tensor, table against table: the reference table (the
 * integer reference kernels themselves, as rg_qmodel_run uses them) records
 * each op's output, the fast tables must reproduce each; the first op that
 * differs is named. (rg_qmodel_run's own arena is not used for this: it
 * need not keep every tensor.) */
typedef struct {
    const rg_rgm *m;
    int8_t **ref; /* per op, recorded by the reference table */
    int record, mismatches;
} trace_state;

static void trace_op(void *user, int32_t op, const int8_t *y)
{
    trace_state *s = user;
    const rg_rgm_tensor *t = &s->m->tensors[s->m->ops[op].out];
    size_t n = (size_t)t->h * t->w * t->c;
    if (s->record) {
        s->ref[op] = malloc(n);
        memcpy(s->ref[op], y, n);
    } else if (memcmp(y, s->ref[op], n) != 0) {
        if (!s->mismatches) print_error("op %d (%s) differs from the reference table\n", (int)op, s->m->ops[op].name);
        s->mismatches++;
    }
}

/* Lowers, round-trips through a file, and compares the runtime with
 * rg_qmodel_run on every table. Returns the number of in-place tensors. */
static int check_model(rg_qmodel *qm, const char *label)
{
    char dir[256], path[300];
    rgt_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/model.rgm", dir);
    CHECK(rg_rgm_write_qmodel(qm, 0.3f, 0.35f, path, &E));
    rg_rgm *m;
    CHECK(rg_rgm_load(path, &m, &E));
    assert_int_equal(m->n_ops, qm->n_ops);
    assert_true(m->mean == 0.3f && m->std == 0.35f);

    /* write -> load -> write gives the same bytes */
    void *b1, *b2;
    size_t s1, s2;
    rg_rgm *direct;
    CHECK(rg_rgm_from_qmodel(qm, 0.3f, 0.35f, &direct, &E));
    CHECK(rg_rgm_serialize(direct, &b1, &s1, &E));
    CHECK(rg_rgm_serialize(m, &b2, &s2, &E));
    assert_int_equal(s1, s2);
    assert_memory_equal(b1, b2, s1);
    free(b1);
    free(b2);
    rg_rgm_free(direct);

    const rg_qtensor *ti = &qm->tensors[qm->input], *to = &qm->tensors[qm->output];
    size_t in_n = (size_t)ti->h * ti->w * ti->c, out_n = (size_t)to->h * to->w * to->c;
    int8_t *x = malloc(in_n * N_IMAGES), *want = malloc(out_n * N_IMAGES), *got = malloc(out_n);
    rg_rng r = rg_rng_keyed(42, 0, 0);
    for (size_t i = 0; i < in_n * N_IMAGES; i++) x[i] = (int8_t)((int)rg_rng_below(&r, 256) - 128);
    int8_t *qarena = malloc(rg_qmodel_arena_bytes(qm, N_IMAGES));
    CHECK(rg_qmodel_run(qm, qarena, x, N_IMAGES, want, &E));
    /* the float entry against rg_qmodel_run_float */
    float *fx = malloc(sizeof(float) * in_n), *fwant = malloc(sizeof(float) * out_n),
          *fgot = malloc(sizeof(float) * out_n);
    rgt_random_floats(fx, in_n, 99);
    CHECK(rg_qmodel_run_float(qm, qarena, fx, 1, fwant, &E));

    const rg_isa levels[] = {RG_ISA_REF, RG_ISA_AVX2, RG_ISA_AVX512_VNNI};
    int in_place = 0;
    trace_state ts = {m, calloc((size_t)m->n_ops, sizeof(int8_t *)), 0, 0};
    for (int l = 0; l < 3; l++) {
        if (levels[l] > rg_cpu_isa_supported()) {
            print_message("%s: table for ISA level %d skipped (CPU)\n", label, (int)levels[l]);
            continue;
        }
        const rg_qk_table *t = rg_qk_table_for(levels[l]);
        rg_rt *rt;
        CHECK(rg_rt_prepare(m, t, &rt, &E));
        check_plan(m, rt);
        rg_rt_plan_stats s;
        rg_rt_plan_stats_get(rt, &s);
        print_message("%s on %s: arena %zu (+%zu scratch), TFLM greedy %zu, naive %zu, lower bound %zu\n", label,
                      t->name, s.arena, s.scratch, s.tflm_greedy, s.naive, s.lower_bound);
        size_t an = rg_rt_arena_size(rt);
        uint8_t *arena = rg_alloc_aligned(an, &E);
        for (int i = 0; i < N_IMAGES; i++) {
            for (size_t k = 0; k < an; k++) arena[k] = (uint8_t)(0xA5 ^ (k * 31 + (size_t)i * 7));
            rg_rt_invoke(rt, arena, x + (size_t)i * in_n, got);
            assert_memory_equal(got, want + (size_t)i * out_n, out_n);
        }
        /* layer by layer against the reference table (the first one run) */
        ts.record = l == 0;
        assert_true(ts.record || ts.ref[0]);
        rg_rt_invoke_trace(rt, arena, x, got, trace_op, &ts);
        assert_int_equal(ts.mismatches, 0);
        rg_rt_invoke_float(rt, arena, fx, fgot);
        assert_memory_equal(fgot, fwant, sizeof(float) * out_n);
        in_place = 0;
        for (int32_t t2 = 0; t2 < m->n_tensors; t2++) in_place += rg_rt_tensor_in_place(rt, t2);
        rg_free_aligned(arena);
        rg_rt_free(rt);
    }
    for (int32_t i = 0; i < m->n_ops; i++) free(ts.ref[i]);
    free(ts.ref);
    free(fx), free(fwant), free(fgot);
    free(x), free(want), free(got), free(qarena);
    rg_rgm_free(m);
    rgt_rmtree(dir);
    return in_place;
}

static void test_mbv2_tiny(void **state)
{
    (void)state;
    rg_graph *g;
    CHECK(rg_zoo_build("mbv2-tiny", 28, 28, 1, 10, &g, &E));
    rg_qmodel *qm = lower(g, 28 * 28, NULL);
    check_model(qm, "mbv2-tiny");
    rg_qmodel_free(qm);
    rg_graph_free(g);
}

/* fp32 requantization (.rgm version 3 scales): every table against the
 * integer reference, the file round trip, the float entry; and the rule is
 * really the other one: inner tensors differ from the fixed-point model's
 * (ties and last-bit differences of the two roundings). */
static void test_mbv2_tiny_fp32(void **state)
{
    (void)state;
    rg_graph *g;
    CHECK(rg_zoo_build("mbv2-tiny", 28, 28, 1, 10, &g, &E));
    rg_qmodel *fixed = lower(g, 28 * 28, NULL), *qm = lower(g, 28 * 28, NULL);
    CHECK(rg_qmodel_use_fp32(qm, &E));
    check_model(qm, "mbv2-tiny fp32");
    rg_qmodel_plan_arena(fixed, 1);
    rg_qmodel_plan_arena(qm, 1);
    const rg_qtensor *ti = &qm->tensors[qm->input];
    size_t in_n = (size_t)ti->h * ti->w * ti->c;
    int8_t *x = malloc(in_n * 4), *a1 = malloc(rg_qmodel_arena_bytes(fixed, 4)), *a2 = malloc(rg_qmodel_arena_bytes(qm, 4));
    int8_t out1[40], out2[40];
    rg_rng r = rg_rng_keyed(7, 0, 0);
    for (size_t i = 0; i < in_n * 4; i++) x[i] = (int8_t)((int)rg_rng_below(&r, 256) - 128);
    CHECK(rg_qmodel_run(fixed, a1, x, 4, out1, &E));
    CHECK(rg_qmodel_run(qm, a2, x, 4, out2, &E));
    size_t differ = 0, total = 0;
    for (int32_t t = 0; t < qm->n_tensors; t++) {
        const rg_qtensor *q = &qm->tensors[t];
        size_t n = (size_t)q->h * q->w * q->c * 4;
        const int8_t *p1 = rg_qmodel_tensor(fixed, a1, 4, t), *p2 = rg_qmodel_tensor(qm, a2, 4, t);
        for (size_t i = 0; i < n; i++) differ += p1[i] != p2[i];
        total += n;
    }
    print_message("fp32 against fixed-point requantization: %zu of %zu int8 values differ\n", differ, total);
    assert_true(differ > 0);
    /* the same model: last-bit differences, which spread through the layers
     * below (about 6 % of all values here, on noise inputs) */
    assert_true(differ < total / 5);
    free(x), free(a1), free(a2);
    rg_qmodel_free(fixed);
    rg_qmodel_free(qm);
    rg_graph_free(g);
}

/* Equalized: the ReLU6 layers carry per-channel clamps (.rgm version 2),
 * which now export and run bit-exact; the clamps change the outputs (so the
 * comparison would catch a runtime that skipped them). */
static void test_mbv2_tiny_equalized(void **state)
{
    (void)state;
    rg_graph *g;
    rg_qmodel *qm = rgt_mbv2_tiny_equalized(&g); /* tests/support/qmodel_fixture.h */
    int32_t with_c = 0, binding = 0;
    for (int32_t i = 0; i < qm->n_ops; i++) {
        const rg_qop *o = &qm->ops[i];
        if (!o->act_max_c) continue;
        with_c++;
        for (int32_t c = 0; c < o->out_c; c++) binding += o->act_max_c[c] < o->act_max;
    }
    print_message("equalized mbv2-tiny: %d ops with per-channel clamps, %d channels below the layer's clamp\n",
                  (int)with_c, (int)binding);
    assert_true(with_c > 0 && binding > 0);
    check_model(qm, "mbv2-tiny equalized");
    /* without the per-channel clamps the reference gives other outputs */
    const rg_qtensor *ti = &qm->tensors[qm->input], *to = &qm->tensors[qm->output];
    size_t in_n = (size_t)ti->h * ti->w * ti->c * N_IMAGES, out_n = (size_t)to->c * N_IMAGES;
    int8_t *x = malloc(in_n), *y1 = malloc(out_n), *y2 = malloc(out_n), *arena = malloc(rg_qmodel_arena_bytes(qm, N_IMAGES));
    rg_rng r = rg_rng_keyed(43, 0, 0);
    for (size_t i = 0; i < in_n; i++) x[i] = (int8_t)((int)rg_rng_below(&r, 256) - 128);
    CHECK(rg_qmodel_run(qm, arena, x, N_IMAGES, y1, &E));
    int32_t **saved = calloc((size_t)qm->n_ops, sizeof *saved);
    for (int32_t i = 0; i < qm->n_ops; i++) saved[i] = qm->ops[i].act_max_c, qm->ops[i].act_max_c = NULL;
    CHECK(rg_qmodel_run(qm, arena, x, N_IMAGES, y2, &E));
    for (int32_t i = 0; i < qm->n_ops; i++) qm->ops[i].act_max_c = saved[i];
    assert_memory_not_equal(y1, y2, out_n);
    free(saved), free(x), free(y1), free(y2), free(arena);
    rg_qmodel_free(qm);
    rg_graph_free(g);
}

/* conv, conv + add, a standalone ReLU (a clamp, in place), max and average
 * pooling, global average pooling, a linear layer */
static void test_every_kind(void **state)
{
    (void)state;
    rg_graph *g = rgt_every_kind_graph();
    rg_qmodel *qm = lower(g, 12 * 12 * 3, NULL);
    int kinds[RG_QOP_CLAMP + 1] = {0};
    for (int32_t i = 0; i < qm->n_ops; i++) kinds[qm->ops[i].kind]++;
    for (int k = 0; k <= RG_QOP_CLAMP; k++) assert_true(kinds[k] > 0);
    assert_true(check_model(qm, "every-kind") >= 1);
    rg_qmodel_free(qm);
    rg_graph_free(g);
}

/* From a trained checkpoint to a .rgm through the CLI (train, export-rgm),
 * then regain eval on the .rgm equals rg_qmodel_run on the same lowering
 * done here (same checkpoint, same calibration images), image for image, on
 * a slice of the Fashion-MNIST test set; rt-info and infer run on it, and
 * a damaged file is refused. */
static void test_eval_matches_qmodel(void **state)
{
    (void)state;
    enum { N = 300, CALIB = 64 };
    rgt_require_fashion_mnist();
    char out[1 << 16];
    rgt_write_text("tiny.spec", rgt_tiny_spec);
    rgt_expect_cli("REGAIN_CLI", out, sizeof out, 0, NULL, NULL,
                   "train --model tiny.spec --epochs 1 --train_limit 1500 --test_limit 100 --batch 32 --out run --threads 1");
    rgt_expect_cli("REGAIN_CLI", out, sizeof out, 0, "int8 ops", NULL,
                   "export-rgm run/best.safetensors --calib %d --out tiny.rgm", CALIB);
    char ckpt[600], path[600];
    snprintf(ckpt, sizeof ckpt, "%s", rgt_in_root("run/best.safetensors"));
    snprintf(path, sizeof path, "%s", rgt_in_root("tiny.rgm"));

    rg_dataset train, test;
    CHECK(rg_dataset_load("fashion-mnist", "train", &train, &E));
    CHECK(rg_dataset_load("fashion-mnist", "test", &test, &E));
    rg_rgm *m;
    rg_rt *rt;
    CHECK(rg_rgm_load(path, &m, &E));
    CHECK(rg_rt_prepare(m, NULL, &rt, &E));
    void *arena = rg_alloc_aligned(rg_rt_arena_size(rt), &E);
    int32_t pred[N];
    CHECK(rg_rt_predict(rt, arena, test.pixels, N, 28, 28, 1, pred, &E));

    /* the same lowering in this process */
    rg_graph *g;
    rg_st_file *f;
    CHECK(rg_checkpoint_load(ckpt, 1, &g, &f, &E));
    float *calib = malloc(sizeof(float) * CALIB * 784), *x = malloc(sizeof(float) * N * 784), logits[N * 10];
    rg_rt_normalize(rt, train.pixels, (size_t)CALIB * 784, calib);
    rg_rt_normalize(rt, test.pixels, (size_t)N * 784, x);
    rg_lower_config cfg = rg_lower_default();
    rg_qmodel *qm;
    CHECK(rg_quant_lower(g, calib, CALIB, &cfg, &qm, &E));
    int8_t *qa = malloc(rg_qmodel_arena_bytes(qm, N));
    CHECK(rg_qmodel_run_float(qm, qa, x, N, logits, &E));
    int correct = 0;
    for (int i = 0; i < N; i++) {
        int best = 0;
        for (int k = 1; k < 10; k++)
            if (logits[i * 10 + k] > logits[i * 10 + best]) best = k;
        assert_int_equal(pred[i], best);
        correct += best == test.labels[i];
    }
    assert_true(correct > N / 5); /* a (briefly) trained model, not chance (measured: 95 / 300) */
    /* what regain quantize reports (the runtime on all threads) is the
     * reference evaluation, confusion matrix and all */
    rg_dataset head;
    CHECK(rg_dataset_head(&test, N, &head, &E));
    rg_eval_result fast, ref;
    CHECK(rg_qmodel_evaluate_rt(qm, &head, m->mean, m->std, NULL, NULL, &fast, &E));
    CHECK(rg_qmodel_evaluate(qm, &head, m->mean, m->std, 64, NULL, NULL, &ref, &E));
    assert_int_equal(fast.n, N);
    assert_int_equal(fast.correct, correct);
    assert_int_equal(ref.correct, correct);
    assert_memory_equal(fast.confusion, ref.confusion, sizeof(int64_t) * 10 * 10);
    rg_eval_result_free(&fast);
    rg_eval_result_free(&ref);
    rg_dataset_free(&head);

    rgt_expect_cli("REGAIN_CLI", out, sizeof out, 0, "top-1 accuracy", NULL, "eval tiny.rgm --data fashion-mnist --limit %d",
                   N);
    const char *at = strstr(out, "% (");
    assert_non_null(at);
    int c2 = -1, n2 = -1;
    assert_int_equal(sscanf(at, "%% (%d / %d)", &c2, &n2), 2);
    print_message("eval on %d images: %d correct (rg_qmodel_run: %d)\n", N, c2, correct);
    assert_int_equal(n2, N);
    assert_int_equal(c2, correct);
    rgt_expect_cli("REGAIN_CLI", out, sizeof out, 0, "TFLite Micro greedy", "lower bound", "rt-info tiny.rgm");
    rgt_expect_cli("REGAIN_CLI", out, sizeof out, 0, "predicted", "top-1", "infer tiny.rgm --count 5");
    /* equalized: per-channel clamps in the file, and it runs */
    rgt_expect_cli("REGAIN_CLI", out, sizeof out, 0, "int8 ops", NULL,
                   "export-rgm run/best.safetensors --calib %d --equalize --out eq.rgm", CALIB);
    rgt_expect_cli("REGAIN_CLI", out, sizeof out, 0, "per-channel clamp", ".rgm version 3", "rt-info eq.rgm");
    rgt_expect_cli("REGAIN_CLI", out, sizeof out, 0, "top-1 accuracy", NULL, "eval eq.rgm --data fashion-mnist --limit 50");
    /* a damaged file: exit 4 (malformed input), the file and the problem named */
    size_t size;
    uint8_t *bytes = rgt_read_file(path, &size);
    char cut[600];
    snprintf(cut, sizeof cut, "%s", rgt_in_root("cut.rgm"));
    rgt_write_file(cut, bytes, size - 7);
    rgt_expect_cli("REGAIN_CLI", out, sizeof out, 4, "cut.rgm", "truncated", "eval cut.rgm");
    rgt_expect_cli("REGAIN_CLI", out, sizeof out, 4, "cut.rgm", "truncated", "rt-info cut.rgm");
    free(bytes);
    free(x);
    free(calib);
    free(qa);
    rg_free_aligned(arena);
    rg_rt_free(rt);
    rg_rgm_free(m);
    rg_qmodel_free(qm);
    rg_graph_free(g);
    rg_st_free(f);
    rg_dataset_free(&train);
    rg_dataset_free(&test);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_kind),
        cmocka_unit_test(test_mbv2_tiny),
        cmocka_unit_test(test_mbv2_tiny_equalized),
        cmocka_unit_test(test_mbv2_tiny_fp32),
        cmocka_unit_test(test_eval_matches_qmodel),
    };
    return cmocka_run_group_tests(tests, rgt_root_setup, rgt_root_teardown);
}
