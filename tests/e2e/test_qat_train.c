/* Quantization-aware training through the trainer (qat = 1, init = a float
 * checkpoint), on a slice of Fashion-MNIST with a tiny network:
 *   - QAT int8 fine-tuned for 2 epochs keeps the float model's accuracy
 *     (within 2 points; over seeds 3 to 5, on 2000 test images: 0.25 to
 *     0.7 below float 70.8 % built with gcc, 0.35 to 1.25 below 71.05 %
 *     with clang), and W4A8 (LSQ) stays within 10 (measured 3.5 to 7.2
 *     points below). On 2000 training
 *     images instead of 5000 the float model is short-trained and both
 *     swing by 4 points from seed to seed;
 *   - the checkpoint carries the quantization state, and the int8 model
 *     lowered from it (rg_qat_lower) scores exactly the test accuracy the
 *     trainer reported for the fake-quantized model (integer-exact QAT);
 *   - a QAT run (LSQ, self-distillation from the float model) killed after
 *     an epoch and resumed ends bit-identical to an uninterrupted one
 *     (ranges, LSQ scales, frozen batch norms);
 *   - bad QAT keys are rejected with errors naming them.
 * Needs Fashion-MNIST at RG_FASHION_MNIST_DIR. Run time: about 2 minutes on two shared cores. */
#include "test_support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "regain/checkpoint.h"
#include "regain/data.h"
#include "regain/qat.h"
#include "regain/safetensors.h"
#include "regain/spec.h"
#include "regain/trainer.h"

static const char tiny_spec[] = "input h=28 w=28 c=1\n"
                                "conv name=stem c=8 k=3 s=2 bn act=relu6\n"
                                "ir name=b1 t=2 c=8 s=1\n"
                                "conv name=head c=32 k=1 bn act=relu6\n"
                                "gap\n"
                                "dropout p=0.1\n"
                                "fc name=fc n=10\n";

static void in_root(char *buf, size_t size, const char *name)
{
    if ((size_t)snprintf(buf, size, "%s/%s", rgt_root, name) >= size) fail_msg("path too long");
}

static int file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 0;
}

typedef struct {
    int kill_after_epoch;
} hook_state;

#define KILLED 42

static void on_epoch(void *user, const rg_epoch_metrics *m)
{
    hook_state *h = user;
    if (h && h->kill_after_epoch && m->epoch == h->kill_after_epoch) _exit(KILLED);
}

static void train_ok(const rg_train_config *c, const char *dir, int resume, rg_train_result *res)
{
    rg_error err = {0};
    rg_train_hooks hooks = {NULL, NULL, on_epoch, NULL, NULL};
    if (rg_train_run(c, dir, resume, &hooks, res, &err) != RG_OK) fail_msg("training into %s: %s", dir, err.msg);
}

static rg_train_config base_config(void)
{
    rg_train_config c;
    rg_train_config_default(&c);
    in_root(c.model, sizeof c.model, "tiny.spec");
    if (!file_exists(c.model)) rgt_write_file(c.model, tiny_spec, strlen(tiny_spec));
    c.train_limit = 5000;
    c.test_limit = 2000;
    c.batch = 32;
    c.crop_pad = 0;
    c.hflip = 0;
    c.threads = 2;
    c.workers = 1;
    c.seed = 3;
    return c;
}

/* The float model: 4 epochs. */
static char float_dir[400], float_ck[512];
static double float_top1 = -1.0;

static void run_float(void)
{
    if (float_top1 >= 0) return;
    char p[600];
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte.gz", RG_FASHION_MNIST_DIR);
    if (!file_exists(p)) fail_msg("%s is missing: install the fashion-mnist package (scripts/install-deps)", p);
    in_root(float_dir, sizeof float_dir, "float");
    rg_train_config c = base_config();
    c.epochs = 4;
    c.lr = 0.1f;
    c.warmup_epochs = 0.5f;
    rg_train_result res;
    train_ok(&c, float_dir, 0, &res);
    float_top1 = res.final.top1;
    rg_train_result_free(&res);
    snprintf(float_ck, sizeof float_ck, "%s/last.safetensors", float_dir);
    print_message("float: %.2f%%\n", 100.0 * float_top1);
}

static rg_train_config qat_config(void)
{
    rg_train_config c = base_config();
    c.epochs = 2;
    /* a fine-tuning rate, 1/50 of the float run's: the second epoch trains
     * with frozen batch norms, and at 0.01 that epoch lost up to 11 points
     * of training accuracy (docs/quantization.md, "The freeze and the
     * learning rate") */
    c.lr = 0.002f;
    c.warmup_epochs = 0.0f;
    snprintf(c.init, sizeof c.init, "%s", float_ck);
    c.qat = 1;
    c.qat_freeze_bn = 1;
    c.qat_freeze_observers = 1;
    c.qat_momentum = 0.05f;
    return c;
}

/* Rebuilds the QAT graph of a run from its checkpoint, lowers it and scores
 * the int8 model on the test images the trainer evaluated. */
static double int8_top1(const char *ck, const rg_train_config *c)
{
    rg_st_file *f;
    CHECK(rg_st_read(ck, &f, &E));
    rg_graph *g;
    CHECK(rg_spec_build(rg_st_meta_get(f, "regain.spec"), ck, &g, &E));
    rg_qat_config qc;
    rg_train_config_qat(c, &qc);
    rg_qat *q;
    CHECK(rg_qat_prepare(g, &qc, &q, &E));
    CHECK(rg_checkpoint_load_weights(f, g, 0, &E)); /* the quantization state too */
    rg_st_free(f);
    rg_qat_set_epoch(q, c->epochs);
    CHECK(rg_graph_plan(g, 32, RG_PLAN_TRAIN, &E));
    rg_dataset test;
    CHECK(rg_dataset_load("fashion-mnist", "test", &test, &E));
    int32_t n = c->test_limit, per = test.h * test.w * test.c;
    float *x = malloc(sizeof(float) * (size_t)n * per);
    for (size_t i = 0; i < (size_t)n * per; i++) x[i] = ((float)test.pixels[i] / 255.0f - c->mean) / c->std;
    rg_qmodel *m;
    CHECK(rg_qat_lower(q, g, x, 64, &m, &E));
    /* the weights are on the trained grid: [-7, 7] for W4A8 */
    int32_t qmax = c->qat_weight_bits == 4 ? 7 : 127, largest = 0;
    for (int32_t i = 0; i < m->n_ops; i++) {
        const rg_qop *o = &m->ops[i];
        if (o->kind != RG_QOP_CONV && o->kind != RG_QOP_DEPTHWISE && o->kind != RG_QOP_FC) continue;
        size_t nw = g->params[g->nodes[rg_graph_find_node(g, o->name)].param[0]].count;
        for (size_t k = 0; k < nw; k++) largest = abs(o->weights[k]) > largest ? abs(o->weights[k]) : largest;
    }
    assert_int_equal(largest, qmax);
    int8_t *arena = malloc(rg_qmodel_arena_bytes(m, 50));
    float logits[50 * 10];
    int32_t correct = 0;
    for (int32_t at = 0; at < n; at += 50) {
        CHECK(rg_qmodel_run_float(m, arena, x + (size_t)at * per, 50, logits, &E));
        for (int32_t b = 0; b < 50; b++) {
            int32_t best = 0;
            for (int32_t k = 1; k < 10; k++)
                if (logits[b * 10 + k] > logits[b * 10 + best]) best = k;
            correct += best == test.labels[at + b];
        }
    }
    free(arena);
    free(x);
    rg_qmodel_free(m);
    rg_dataset_free(&test);
    rg_qat_free(q);
    rg_graph_free(g);
    return (double)correct / n;
}

static int count_suffix(const char *path, const char *suffix)
{
    rg_st_file *f;
    CHECK(rg_st_read(path, &f, &E));
    int k = 0;
    for (int32_t i = 0; i < rg_st_count(f); i++) {
        const char *nm = rg_st_at(f, i)->name;
        size_t a = strlen(nm), b = strlen(suffix);
        k += a >= b && !strcmp(nm + a - b, suffix);
    }
    rg_st_free(f);
    return k;
}

static void test_qat_int8(void **state)
{
    (void)state;
    run_float();
    char dir[600], ck[1100];
    in_root(dir, sizeof dir, "qat8");
    rg_train_config c = qat_config();
    rg_train_result res;
    train_ok(&c, dir, 0, &res);
    double top1 = res.final.top1;
    rg_train_result_free(&res);
    snprintf(ck, sizeof ck, "%s/last.safetensors", dir);
    assert_true(count_suffix(ck, ".qrange") >= 6); /* the ranges travel with the model */
    double i8 = int8_top1(ck, &c);
    print_message("QAT int8: fake-quant %.2f%%, lowered int8 %.2f%% (float %.2f%%)\n", 100 * top1, 100 * i8,
                  100 * float_top1);
    assert_true(top1 >= float_top1 - 0.02);
    assert_true(i8 == top1); /* the int8 model is the fake-quantized one */
}

static void test_qat_w4a8_lsq(void **state)
{
    (void)state;
    run_float();
    char dir[600], ck[1100];
    in_root(dir, sizeof dir, "qat4");
    rg_train_config c = qat_config();
    c.qat_weight_bits = 4;
    c.qat_lsq = 1;
    /* batch norms stay on batch statistics: frozen, training with learned
     * scales degrades (docs/quantization.md, "LSQ and the freeze") */
    c.qat_freeze_bn = -1;
    c.lr = 0.01f; /* with batch statistics throughout, 4-bit weights recover more at 1/10 of the float rate */
    rg_train_result res;
    train_ok(&c, dir, 0, &res);
    double top1 = res.final.top1;
    rg_train_result_free(&res);
    snprintf(ck, sizeof ck, "%s/last.safetensors", dir);
    double i8 = int8_top1(ck, &c);
    print_message("QAT W4A8 LSQ: fake-quant %.2f%%, lowered %.2f%% (float %.2f%%)\n", 100 * top1,
                  100 * i8, 100 * float_top1);
    assert_true(count_suffix(ck, ".qscale") >= 6); /* learned scales */
    /* 4-bit weights cost this 8-channel network several points, and how
     * many varies with the run: 3.5, 5.1 and 7.2 points below the float
     * model over seeds 3, 4 and 5 (the int8 run above stays within 1) */
    assert_true(top1 >= float_top1 - 0.10);
    assert_true(i8 == top1);
}

/* ---- killed and resumed equals uninterrupted ---- */

static int interrupted_run_main(char **argv)
{
    size_t n;
    char *text = rgt_read_file(argv[2], &n);
    rg_train_config c;
    rg_error err = {0};
    rg_train_config_default(&c);
    if (rg_train_config_parse(&c, text, argv[2], &err) != RG_OK) return 2;
    hook_state kill = {.kill_after_epoch = 1};
    rg_train_hooks hooks = {&kill, NULL, on_epoch, NULL, NULL};
    rg_train_result res;
    rg_train_run(&c, argv[3], 0, &hooks, &res, &err);
    return 1;
}

static void expect_same_tensors(const char *pa, const char *pb)
{
    rg_st_file *a, *b;
    CHECK(rg_st_read(pa, &a, &E));
    CHECK(rg_st_read(pb, &b, &E));
    assert_int_equal(rg_st_count(a), rg_st_count(b));
    for (int32_t i = 0; i < rg_st_count(a); i++) {
        const rg_st_tensor *ta = rg_st_at(a, i), *tb = rg_st_find(b, ta->name);
        if (!tb) fail_msg("%s: tensor %s is missing from %s", pa, ta->name, pb);
        if (ta->nbytes != tb->nbytes || memcmp(ta->raw, tb->raw, ta->nbytes) != 0)
            fail_msg("tensor %s differs between %s and %s", ta->name, pa, pb);
    }
    rg_st_free(a);
    rg_st_free(b);
}

static void test_qat_resume(void **state)
{
    (void)state;
    run_float();
    rg_train_config c = qat_config();
    c.train_limit = 300;
    c.test_limit = 200;
    c.epochs = 3;
    c.batch = 64;
    c.qat_lsq = 1;
    c.qat_freeze_bn = 1;
    c.qat_freeze_observers = 2;
    /* self-distillation from the float model rides along */
    snprintf(c.teacher, sizeof c.teacher, "%s", float_ck);
    c.kd_alpha = 0.5f;
    char da[600], db[600], cfg[600], pa[700], pb[700];
    in_root(da, sizeof da, "resume-a");
    in_root(db, sizeof db, "resume-b");
    in_root(cfg, sizeof cfg, "resume.cfg");
    rg_train_result res;
    train_ok(&c, da, 0, &res);
    rg_train_result_free(&res);
    char *text = rg_train_config_format(&c);
    rgt_write_file(cfg, text, strlen(text));
    free(text);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl("/proc/self/exe", "e2e_test_qat_train", "--interrupted-run", cfg, db, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == KILLED);
    rg_train_config other;
    rg_train_config_default(&other);
    other.threads = 1;
    train_ok(&other, db, 1, &res);
    assert_int_equal(res.epochs_run, 2);
    rg_train_result_free(&res);
    snprintf(pa, sizeof pa, "%s/last.safetensors", da);
    snprintf(pb, sizeof pb, "%s/last.safetensors", db);
    assert_true(count_suffix(pa, ".qscale") > 0 && count_suffix(pa, ".qrange") > 0);
    expect_same_tensors(pa, pb);
}

/* ---- the command line ---- */

static void test_cli(void **state)
{
    (void)state;
    run_float();
    const char *cli = rgt_env("REGAIN_CLI");
    char cmd[3000], out[8192], dir[600];
    in_root(dir, sizeof dir, "cli-qat");
    snprintf(cmd, sizeof cmd,
             "'%s' qat '%s' --epochs 1 --train-limit 300 --test-limit 200 --threads 2 --workers 0 --lsq --out '%s'",
             cli, float_ck, dir);
    int code = rgt_run(cmd, out, sizeof out);
    if (code != 0) fail_msg("%s: exit %d\n%s", cmd, code, out);
    assert_non_null(strstr(out, "int8"));
    snprintf(cmd, sizeof cmd, "%s/last.safetensors", dir);
    assert_true(count_suffix(cmd, ".qscale") > 0);
    /* bad uses: exit 2 (usage) or 3 (I/O), with the reason */
    snprintf(cmd, sizeof cmd, "'%s' qat", cli);
    assert_int_equal(rgt_run(cmd, out, sizeof out), 2);
    assert_non_null(strstr(out, "CHECKPOINT"));
    snprintf(cmd, sizeof cmd, "'%s' qat '%s' --bits 6 --out '%s'", cli, float_ck, dir);
    assert_int_equal(rgt_run(cmd, out, sizeof out), 2);
    assert_non_null(strstr(out, "qat_weight_bits"));
    snprintf(cmd, sizeof cmd, "'%s' qat '%s'", cli, float_ck);
    assert_int_equal(rgt_run(cmd, out, sizeof out), 2);
    assert_non_null(strstr(out, "--out"));
    snprintf(cmd, sizeof cmd, "'%s' qat '%s/missing.safetensors' --out '%s'", cli, rgt_root, dir);
    assert_int_equal(rgt_run(cmd, out, sizeof out), 3);
    snprintf(cmd, sizeof cmd, "'%s' qat '%s/last.safetensors' --out '%s'", cli, dir, dir);
    assert_int_equal(rgt_run(cmd, out, sizeof out), 2);
    assert_non_null(strstr(out, "already a QAT run"));
}

/* ---- bad keys ---- */

static void expect_bad(const char *key, const char *value, const char *want)
{
    rg_train_config c;
    rg_train_config_default(&c);
    rg_error err = {0};
    rg_status st = rg_train_config_set(&c, key, value, &err);
    if (st == RG_OK) st = rg_train_config_validate(&c, &err);
    if (st == RG_OK) fail_msg("%s = %s was accepted", key, value);
    if (!strstr(err.msg, want)) fail_msg("%s = %s: error '%s' lacks '%s'", key, value, err.msg, want);
}

static void test_bad_keys(void **state)
{
    (void)state;
    expect_bad("qat", "maybe", "qat");
    expect_bad("qat_weight_bits", "3", "qat_weight_bits");
    expect_bad("qat_weight_bits", "6", "qat_weight_bits"); /* in range, but only 4 and 8 */
    expect_bad("qat_lsq", "1", "qat_lsq: set without qat = 1");
    expect_bad("qat_per_tensor", "1", "qat_per_tensor");
    expect_bad("qat_freeze_bn", "-2", "qat_freeze_bn");
    expect_bad("qat_freeze_observers", "x", "qat_freeze_observers");
    expect_bad("qat_momentum", "0", "qat_momentum");
    /* qat_weight_bits 6 with qat = 1 */
    rg_train_config c;
    rg_train_config_default(&c);
    c.qat = 1;
    c.qat_weight_bits = 6;
    rg_error err = {0};
    assert_int_equal(rg_train_config_validate(&c, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "qat_weight_bits"));
}

int main(int argc, char **argv)
{
    if (argc >= 4 && !strcmp(argv[1], "--interrupted-run")) return interrupted_run_main(argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_keys),
        cmocka_unit_test(test_qat_int8),
        cmocka_unit_test(test_qat_w4a8_lsq),
        cmocka_unit_test(test_qat_resume),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests(tests, rgt_root_setup, rgt_root_teardown);
}
