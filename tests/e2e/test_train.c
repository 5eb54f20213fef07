/* End to end through the library: train on a slice of Fashion-MNIST and
 * reach a stated accuracy; bit-identical weights whatever the thread and
 * loader-worker counts; a run killed (a child process that _exits from a hook)
 * and resumed ends bit-identical to an uninterrupted one, for SGD, with the
 * weight average and with AdamW; best.safetensors re-evaluated from the file
 * reproduces the accuracy metrics.csv recorded for it.
 *
 * Needs the Fashion-MNIST files at RG_FASHION_MNIST_DIR (Debian package
 * fashion-mnist). Run time: about 75 s on two cores shared with other work
 * (load average 6), most of it the accuracy run. */
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
#include "regain/distill.h"
#include "regain/safetensors.h"
#include "regain/trainer.h"


static void in_root(char *buf, size_t size, const char *name)
{
    if ((size_t)snprintf(buf, size, "%s/%s", rgt_root, name) >= size) fail_msg("path too long");
}

static int file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 0;
}

static void expect_file(const char *dir, const char *name)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    if (!file_exists(p)) fail_msg("%s is missing or empty", p);
}

/* ---- comparing checkpoints ---------------------------------------------------------- */

static rg_st_file *open_st(const char *path)
{
    rg_error err = {0};
    rg_st_file *f = NULL;
    if (rg_st_read(path, &f, &err) != RG_OK) fail_msg("%s", err.msg);
    return f;
}

static int count_prefix(const rg_st_file *f, const char *prefix)
{
    int n = 0;
    for (int32_t i = 0; i < rg_st_count(f); i++) n += strncmp(rg_st_at(f, i)->name, prefix, strlen(prefix)) == 0;
    return n;
}

/* Number of tensors of a whose bytes differ from b's; fails if the two files
 * do not hold the same tensor names and shapes. */
static int tensors_differing(const rg_st_file *a, const rg_st_file *b, const char *what)
{
    assert_int_equal(rg_st_count(a), rg_st_count(b));
    int differ = 0;
    for (int32_t i = 0; i < rg_st_count(a); i++) {
        const rg_st_tensor *ta = rg_st_at(a, i), *tb = rg_st_find(b, ta->name);
        if (!tb) fail_msg("%s: tensor %s is in one file only", what, ta->name);
        assert_int_equal(ta->ndim, tb->ndim);
        for (int32_t d = 0; d < ta->ndim; d++) assert_true(ta->shape[d] == tb->shape[d]);
        assert_int_equal(ta->nbytes, tb->nbytes);
        differ += memcmp(ta->raw, tb->raw, ta->nbytes) != 0;
    }
    return differ;
}

/* Every tensor (parameters, BN buffers, optimizer moments, EMA) bit for bit. */
static void expect_same_tensors(const char *pa, const char *pb)
{
    rg_st_file *a = open_st(pa), *b = open_st(pb);
    for (int32_t i = 0; i < rg_st_count(a); i++) {
        const rg_st_tensor *ta = rg_st_at(a, i), *tb = rg_st_find(b, ta->name);
        if (!tb) fail_msg("%s: tensor %s is missing from %s", pa, ta->name, pb);
        if (ta->nbytes != tb->nbytes || memcmp(ta->raw, tb->raw, ta->nbytes) != 0)
            fail_msg("tensor %s differs between %s and %s", ta->name, pa, pb);
    }
    assert_int_equal(tensors_differing(a, b, pa), 0);
    static const char *const same_meta[] = {"regain.epoch", "regain.optim_steps", "regain.best_top1",
                                            "regain.best_epoch", "regain.spec"};
    for (size_t k = 0; k < sizeof same_meta / sizeof same_meta[0]; k++) {
        const char *va = rg_st_meta_get(a, same_meta[k]), *vb = rg_st_meta_get(b, same_meta[k]);
        assert_non_null(va);
        assert_non_null(vb);
        if (strcmp(va, vb)) fail_msg("metadata %s differs: '%s' and '%s'", same_meta[k], va, vb);
    }
    /* the same configuration, but for the thread counts it ran with */
    rg_train_config ca, cb;
    rg_error err = {0};
    rg_train_config_default(&ca);
    rg_train_config_default(&cb);
    assert_int_equal(rg_train_config_parse(&ca, rg_st_meta_get(a, "regain.train_config"), pa, &err), RG_OK);
    assert_int_equal(rg_train_config_parse(&cb, rg_st_meta_get(b, "regain.train_config"), pb, &err), RG_OK);
    cb.threads = ca.threads;
    cb.workers = ca.workers;
    assert_memory_equal(&ca, &cb, sizeof ca);
    rg_st_free(a);
    rg_st_free(b);
}

/* metrics.csv minus the timing columns (seconds, images_per_s). */
static char *metrics_without_timing(const char *dir, int *lines)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/metrics.csv", dir);
    size_t n;
    char *text = rgt_read_file(p, &n), *out = calloc(n + 1, 1), *o = out;
    assert_non_null(out);
    *lines = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        int commas = 0;
        for (char *c = line; *c && commas < 7; c++) {
            if (*c == ',') commas++;
            if (commas < 7) *o++ = *c;
        }
        *o++ = '\n';
        (*lines)++;
    }
    free(text);
    return out;
}

/* ---- hooks --------------------------------------------------------------------------- */

typedef struct {
    int epochs_seen;
    int kill_after_epoch;  /* _exit from epoch_end after this 1-based epoch (0: never) */
    int kill_in_epoch;     /* _exit from progress in this 0-based epoch ... */
    int kill_at_batch;     /* ... after this many batches */
    int stop_in_epoch;     /* the stop hook says stop in this 0-based epoch ... */
    int stop_at_batch;     /* ... after this many batches (0: never) */
    int stop_now;
    char note[1024];       /* every note, one per line */
} hook_state;

#define KILLED 42

static void on_epoch(void *user, const rg_epoch_metrics *m)
{
    hook_state *h = user;
    h->epochs_seen++;
    if (h->kill_after_epoch && m->epoch == h->kill_after_epoch) _exit(KILLED);
}

static void on_progress(void *user, const rg_train_progress *p)
{
    hook_state *h = user;
    if (h->kill_at_batch && p->epoch == h->kill_in_epoch && p->batch == h->kill_at_batch) _exit(KILLED);
    if (h->stop_at_batch && p->epoch == h->stop_in_epoch && p->batch == h->stop_at_batch) h->stop_now = 1;
}

static int on_stop(void *user) { return ((hook_state *)user)->stop_now; }

static void on_note(void *user, const char *msg)
{
    hook_state *h = user;
    size_t len = strlen(h->note);
    snprintf(h->note + len, sizeof h->note - len, "%s\n", msg);
}

static void train_ok(const rg_train_config *c, const char *dir, int resume, hook_state *h, rg_train_result *res)
{
    rg_error err = {0};
    rg_train_hooks hooks = {h, on_progress, on_epoch, on_note, on_stop};
    if (rg_train_run(c, dir, resume, &hooks, res, &err) != RG_OK) fail_msg("training into %s: %s", dir, err.msg);
}


/* ---- a: accuracy of a short run, and the run directory ------------------------------- */

/* mbv2-tiny, 2000 training images, 3 epochs of batch 32 (189 steps), SGD
 * Nesterov lr 0.05 with half an epoch of warm-up, no augmentation. It reaches
 * about 77% test top-1 on the first 1000 test images (chance is 10%); the
 * test asserts >= 60%, a margin of 17 points. */
static rg_train_config accuracy_config(void)
{
    rg_train_config c;
    rg_train_config_default(&c);
    c.train_limit = 2000;
    c.test_limit = 1000;
    c.epochs = 3;
    c.batch = 32;
    c.lr = 0.05f;
    c.warmup_epochs = 0.5f;
    c.crop_pad = 0;
    c.hflip = 0;
    c.threads = 1;
    c.workers = 1;
    c.seed = 1;
    return c;
}
#define MIN_TOP1 0.60

static char acc_dir[600];
static rg_train_result acc_res;
static int acc_done;

static void run_accuracy(void)
{
    if (acc_done) return;
    rgt_require_fashion_mnist();
    in_root(acc_dir, sizeof acc_dir, "accuracy");
    rg_train_config c = accuracy_config();
    hook_state h = {0};
    train_ok(&c, acc_dir, 0, &h, &acc_res);
    assert_int_equal(h.epochs_seen, 3);
    acc_done = 1;
}

static void test_accuracy(void **state)
{
    (void)state;
    run_accuracy();
    rg_train_config c = accuracy_config();
    assert_int_equal(acc_res.epochs_run, 3);
    assert_int_equal(acc_res.final.n, 1000);
    assert_int_equal(acc_res.final.classes, 10);
    if (acc_res.final.top1 < MIN_TOP1 || acc_res.best_top1 < MIN_TOP1)
        fail_msg("test top-1 %.2f%% (best %.2f%% at epoch %d) is below %.0f%%", 100 * acc_res.final.top1,
                 100 * acc_res.best_top1, acc_res.best_epoch, 100 * MIN_TOP1);
    assert_true(acc_res.best_epoch >= 1 && acc_res.best_epoch <= 3);
    /* the confusion matrix adds up to the result */
    int64_t total = 0, diag = 0;
    for (int32_t i = 0; i < 10; i++)
        for (int32_t j = 0; j < 10; j++) {
            total += acc_res.final.confusion[i * 10 + j];
            if (i == j) diag += acc_res.final.confusion[i * 10 + j];
        }
    assert_int_equal(total, 1000);
    assert_int_equal(diag, acc_res.final.correct);

    /* The run directory. */
    expect_file(acc_dir, "last.safetensors");
    expect_file(acc_dir, "best.safetensors");
    expect_file(acc_dir, "metrics.csv");
    expect_file(acc_dir, "config.txt");
    int lines;
    char *m = metrics_without_timing(acc_dir, &lines);
    assert_int_equal(lines, 1 + 3); /* header + one line per epoch */
    static const char head[] = "epoch,lr,train_loss,train_top1,test_loss,test_top1,val_top1\n1,";
    assert_true(strncmp(m, head, strlen(head)) == 0);
    assert_non_null(strstr(m, "\n2,"));
    assert_non_null(strstr(m, "\n3,"));
    free(m);

    /* config.txt is the configuration given, and parses back to it. */
    char p[1024];
    size_t n;
    snprintf(p, sizeof p, "%s/config.txt", acc_dir);
    char *text = rgt_read_file(p, &n), *want = rg_train_config_format(&c);
    assert_string_equal(text, want);
    rg_train_config back;
    rg_error err = {0};
    rg_train_config_default(&back);
    assert_int_equal(rg_train_config_parse(&back, text, p, &err), RG_OK);
    char *again = rg_train_config_format(&back);
    assert_string_equal(again, want);
    free(again);
    free(want);
    free(text);

    /* last holds the training state after 3 epochs; best the weights only */
    snprintf(p, sizeof p, "%s/last.safetensors", acc_dir);
    rg_st_file *last = open_st(p);
    assert_string_equal(rg_st_meta_get(last, "regain.epoch"), "3");
    assert_string_equal(rg_st_meta_get(last, "regain.kind"), "training-state");
    assert_string_equal(rg_st_meta_get(last, "regain.optim_steps"), "189");
    assert_true(count_prefix(last, "optim.m.") > 0);
    assert_int_equal(count_prefix(last, "optim.v."), 0);
    assert_int_equal(count_prefix(last, "ema."), 0);
    snprintf(p, sizeof p, "%s/best.safetensors", acc_dir);
    rg_st_file *best = open_st(p);
    assert_string_equal(rg_st_meta_get(best, "regain.kind"), "weights");
    assert_int_equal(count_prefix(best, "optim."), 0);
    char be[16];
    snprintf(be, sizeof be, "%d", acc_res.best_epoch);
    assert_string_equal(rg_st_meta_get(best, "regain.epoch"), be);
    rg_st_free(last);
    rg_st_free(best);
}

/* ---- d: best.safetensors re-evaluated from the file ----------------------------------- */

static void test_best_reevaluated(void **state)
{
    (void)state;
    run_accuracy();
    rg_train_config c = accuracy_config();
    char p[1024];
    snprintf(p, sizeof p, "%s/best.safetensors", acc_dir);
    rg_error err = {0};
    rg_graph *g = NULL;
    rg_st_file *f = NULL;
    if (rg_checkpoint_load(p, 0, &g, &f, &err) != RG_OK) fail_msg("%s", err.msg);
    /* normalization as recorded */
    float mean, std;
    assert_int_equal(sscanf(rg_st_meta_get(f, "regain.normalize"), "%f,%f", &mean, &std), 2);
    assert_true(mean == c.mean && std == c.std);
    rg_st_free(f);

    rg_dataset full = {0}, test = {0};
    assert_int_equal(rg_dataset_load("fashion-mnist", "test", &full, &err), RG_OK);
    assert_int_equal(rg_dataset_head(&full, c.test_limit, &test, &err), RG_OK);
    rg_dataset_free(&full);
    /* an inference plan, at another batch size than training used */
    if (rg_graph_plan(g, 100, RG_PLAN_EVAL, &err) != RG_OK) fail_msg("%s", err.msg);
    rg_eval_result r;
    if (rg_evaluate(g, &test, mean, std, &r, &err) != RG_OK) fail_msg("%s", err.msg);
    assert_int_equal(r.n, c.test_limit);

    /* the line of metrics.csv for the best epoch */
    snprintf(p, sizeof p, "%s/metrics.csv", acc_dir);
    size_t n;
    char *text = rgt_read_file(p, &n);
    char prefix[16];
    snprintf(prefix, sizeof prefix, "\n%d,", acc_res.best_epoch);
    const char *line = strstr(text, prefix);
    assert_non_null(line);
    int epoch;
    double lr, tl, ttop, test_loss, test_top1;
    assert_int_equal(sscanf(line + 1, "%d,%lf,%lf,%lf,%lf,%lf", &epoch, &lr, &tl, &ttop, &test_loss, &test_top1), 6);
    free(text);
    if (!(r.top1 == acc_res.best_top1) || fabs(r.top1 - test_top1) > 5e-7)
        fail_msg("best.safetensors evaluates to %.6f, metrics.csv says %.6f (best_top1 %.6f) for epoch %d", r.top1,
                 test_top1, acc_res.best_top1, epoch);
    /* the loss agrees to the printed precision, up to summation order */
    assert_true(fabs(r.loss - test_loss) < 1e-5);
    rg_eval_result_free(&r);
    rg_dataset_free(&test);
    rg_graph_free(g);
}

/* ---- b: thread and worker counts do not change the result ---------------------------- */

static void test_threads_deterministic(void **state)
{
    (void)state;
    rgt_require_fashion_mnist();
    rg_train_config c;
    rg_train_config_default(&c);
    /* 300 images in batches of 64: the last batch is short, so weight-gradient
     * products run over K = 44 * 784 and other lengths that are not multiples
     * of 32, where a threaded OpenBLAS sgemm sums in a thread-dependent order
     * (what kernels/gemm.h exists to avoid). */
    c.train_limit = 300;
    c.test_limit = 256;
    c.epochs = 2;
    c.batch = 64;
    c.lr = 0.05f;
    c.label_smoothing = 0.1f; /* augmentation (crop 2, flip) stays on: keyed per sample */
    c.seed = 7;
    char d1[600], d2[600], p1[700], p2[700];
    in_root(d1, sizeof d1, "threads1");
    in_root(d2, sizeof d2, "threads2");
    rg_train_result r1, r2;
    hook_state h = {0};
    c.threads = 1;
    c.workers = 0;
    train_ok(&c, d1, 0, &h, &r1);
    c.threads = 2;
    c.workers = 3;
    train_ok(&c, d2, 0, &h, &r2);
    assert_int_equal(h.epochs_seen, 4);

    snprintf(p1, sizeof p1, "%s/last.safetensors", d1);
    snprintf(p2, sizeof p2, "%s/last.safetensors", d2);
    rg_st_file *a = open_st(p1);
    assert_true(count_prefix(a, "optim.m.") > 0);
    assert_true(rg_st_count(a) > 100); /* mbv2-tiny: params, buffers and moments */
    rg_st_free(a);
    /* config.txt records the thread counts, so compare the training state only */
    rg_st_file *fa = open_st(p1), *fb = open_st(p2);
    assert_int_equal(tensors_differing(fa, fb, p1), 0);
    assert_string_equal(rg_st_meta_get(fa, "regain.optim_steps"), "10"); /* 2 epochs x 5 batches */
    rg_st_free(fa);
    rg_st_free(fb);
    snprintf(p1, sizeof p1, "%s/best.safetensors", d1);
    snprintf(p2, sizeof p2, "%s/best.safetensors", d2);
    fa = open_st(p1);
    fb = open_st(p2);
    assert_int_equal(tensors_differing(fa, fb, p1), 0);
    rg_st_free(fa);
    rg_st_free(fb);

    int l1, l2;
    char *m1 = metrics_without_timing(d1, &l1), *m2 = metrics_without_timing(d2, &l2);
    assert_int_equal(l1, 3);
    assert_string_equal(m1, m2);
    free(m1);
    free(m2);
    assert_true(r1.final.top1 == r2.final.top1);
    assert_true(r1.final.loss == r2.final.loss);
    assert_memory_equal(r1.final.confusion, r2.final.confusion, 100 * sizeof(int64_t));
    rg_train_result_free(&r1);
    rg_train_result_free(&r2);
}

/* ---- c: killed and resumed equals uninterrupted --------------------------------------- */

/* The small network of rgt_tiny_spec keeps these runs to a few seconds; its
 * dropout masks are keyed by the global step, so a resume that got the step
 * wrong would show. */
static rg_train_config resume_config(const char *optim)
{
    rg_train_config c;
    rg_train_config_default(&c);
    in_root(c.model, sizeof c.model, "tiny.spec");
    if (!file_exists(c.model)) rgt_write_file(c.model, rgt_tiny_spec, strlen(rgt_tiny_spec));
    c.train_limit = 300; /* 5 batches of 64, the last one short */
    c.test_limit = 200;
    c.epochs = 3;
    c.batch = 64;
    c.warmup_epochs = 1.0f;
    c.label_smoothing = 0.1f;
    c.seed = 11;
    c.threads = 2;
    c.workers = 2;
    snprintf(c.optim, sizeof c.optim, "%s", optim);
    if (!strcmp(optim, "adamw")) {
        c.lr = 0.003f;
        c.wd = 0.05f;
    }
    return c;
}

/* The interrupted run B is a separate process: fork, then exec this program
 * again in its --interrupted-run mode (below), which trains the
 * configuration saved in cfg_path into run_dir and _exits from a hook. (A
 * child that merely forks would inherit an OpenMP runtime that libgomp does
 * not support across fork: its first parallel region hangs.) Returns the
 * child's wait status. */
static int run_interrupted(const rg_train_config *c, const char *cfg_path, const char *run_dir, hook_state kill)
{
    char *text = rg_train_config_format(c);
    assert_non_null(text);
    rgt_write_file(cfg_path, text, strlen(text));
    free(text);
    char a[16], b[16], e[16];
    snprintf(a, sizeof a, "%d", kill.kill_after_epoch);
    snprintf(b, sizeof b, "%d", kill.kill_in_epoch);
    snprintf(e, sizeof e, "%d", kill.kill_at_batch);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl("/proc/self/exe", "e2e_test_train", "--interrupted-run", cfg_path, run_dir, a, b, e, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

static int interrupted_run_main(char **argv)
{
    size_t n;
    FILE *fp = fopen(argv[2], "rb");
    if (!fp) return 2;
    char text[8192];
    n = fread(text, 1, sizeof text - 1, fp);
    fclose(fp);
    text[n] = 0;
    rg_train_config c;
    rg_error err = {0};
    rg_train_config_default(&c);
    if (rg_train_config_parse(&c, text, argv[2], &err) != RG_OK) {
        fprintf(stderr, "interrupted run: %s\n", err.msg);
        return 2;
    }
    hook_state kill = {.kill_after_epoch = atoi(argv[4]), .kill_in_epoch = atoi(argv[5]),
                       .kill_at_batch = atoi(argv[6])};
    rg_train_hooks hooks = {&kill, on_progress, on_epoch, on_note, NULL};
    rg_train_result res;
    if (rg_train_run(&c, argv[3], 0, &hooks, &res, &err) != RG_OK) fprintf(stderr, "interrupted run: %s\n", err.msg);
    return 1; /* not killed: the hook never fired */
}

/* Runs c uninterrupted into A; runs it again into B in a child process that
 * is killed from a hook as `kill` says, resumes B here, and compares. */
static void check_resume(const char *name, rg_train_config c, hook_state kill, int epoch_on_disk)
{
    char da[600], db[600], pa[700], pb[700], ra[32], rb[32], rc[32];
    snprintf(ra, sizeof ra, "%s-a", name);
    snprintf(rb, sizeof rb, "%s-b", name);
    snprintf(rc, sizeof rc, "%s.cfg", name);
    in_root(da, sizeof da, ra);
    in_root(db, sizeof db, rb);
    snprintf(pa, sizeof pa, "%s/last.safetensors", da);
    snprintf(pb, sizeof pb, "%s/last.safetensors", db);

    rg_train_result res;
    hook_state h = {0};
    train_ok(&c, da, 0, &h, &res);
    assert_int_equal(res.epochs_run, 3);
    rg_train_result_free(&res);

    char cfg_path[700];
    in_root(cfg_path, sizeof cfg_path, rc);
    int status = run_interrupted(&c, cfg_path, db, kill);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != KILLED)
        fail_msg("%s: the child training run was not killed from its hook (status 0x%x)", name, status);

    /* What the kill left: the checkpoint of the last completed epoch,
     * different from the final weights. */
    rg_st_file *fa = open_st(pa), *fb = open_st(pb);
    char want[64];
    snprintf(want, sizeof want, "%d", epoch_on_disk);
    assert_string_equal(rg_st_meta_get(fb, "regain.epoch"), want);
    assert_true(tensors_differing(fa, fb, pa) > 0);
    /* the state that has to survive is there */
    assert_true(count_prefix(fa, "optim.m.") > 0);
    assert_int_equal(count_prefix(fa, "optim.v.") > 0, !strcmp(c.optim, "adamw"));
    assert_int_equal(count_prefix(fa, "ema.") > 0, c.ema > 0);
    rg_st_free(fa);
    rg_st_free(fb);

    /* Resume with other thread and loader-worker counts and an unrelated cfg
     * (the configuration is read from the checkpoint; cfg only gives threads
     * and workers): the result must not depend on them either. */
    rg_train_config other;
    rg_train_config_default(&other);
    other.threads = c.threads == 1 ? 2 : 1;
    other.workers = c.workers ? 0 : 3;
    other.epochs = 50;
    other.lr = 9.0f;
    h = (hook_state){0};
    train_ok(&other, db, 1, &h, &res);
    assert_int_equal(res.epochs_run, 3 - epoch_on_disk);
    assert_int_equal(h.epochs_seen, 3 - epoch_on_disk);
    snprintf(want, sizeof want, "after epoch %d of 3", epoch_on_disk);
    if (!strstr(h.note, want)) fail_msg("resume note \"%s\" lacks \"%s\"", h.note, want);
    rg_train_result_free(&res);

    expect_same_tensors(pa, pb);
    snprintf(pa, sizeof pa, "%s/best.safetensors", da);
    snprintf(pb, sizeof pb, "%s/best.safetensors", db);
    expect_same_tensors(pa, pb);
    int la, lb;
    char *ma = metrics_without_timing(da, &la), *mb = metrics_without_timing(db, &lb);
    assert_int_equal(la, 4);
    assert_string_equal(ma, mb);
    free(ma);
    free(mb);
}

static void test_resume_sgd(void **state)
{
    (void)state;
    rgt_require_fashion_mnist();
    /* killed right after epoch 1 was saved */
    check_resume("sgd", resume_config("sgd"), (hook_state){.kill_after_epoch = 1}, 1);
}

static void test_resume_sgd_ema_mid_epoch(void **state)
{
    (void)state;
    rgt_require_fashion_mnist();
    rg_train_config c = resume_config("sgd");
    c.ema = 0.9f;
    c.val_split = 500; /* selection on held-out images */
    /* killed in the middle of epoch 2: its partial work is lost and redone */
    check_resume("ema", c, (hook_state){.kill_in_epoch = 1, .kill_at_batch = 3}, 1);
}

static void test_resume_adamw(void **state)
{
    (void)state;
    rgt_require_fashion_mnist();
    rg_train_config c = resume_config("adamw");
    c.ema = 0.9f;
    /* killed after epoch 2: one epoch left */
    check_resume("adamw", c, (hook_state){.kill_after_epoch = 2}, 2);
}

/* Trains c into dir with a stop asked for after batch 3 of epoch 2; the
 * run must report the stop, whose message goes to err. */
static void stop_in_epoch_2(const rg_train_config *c, const char *dir, rg_error *err)
{
    hook_state h = {.stop_in_epoch = 1, .stop_at_batch = 3};
    rg_train_hooks hooks = {&h, on_progress, on_epoch, on_note, on_stop};
    rg_train_result res;
    assert_int_equal(rg_train_run(c, dir, 0, &hooks, &res, err), RG_ERR_STOPPED);
}

/* A stop asked for in the middle of an epoch (Ctrl-C): the state after that
 * step is saved with the part of the epoch done, and the resumed run goes
 * on from the next batch and ends bit-identical to an uninterrupted one.
 * `stopped` is what the stop's message must say, `sampler_state` the
 * sampler's tensors the checkpoint must hold (the epoch's choice). */
static void check_stop_mid_epoch(const char *name, rg_train_config c, const char *stopped, const char *sampler_state)
{
    char da[600], db[600], pa[700], pb[700], ra[32], rb[32];
    snprintf(ra, sizeof ra, "%s-a", name);
    snprintf(rb, sizeof rb, "%s-b", name);
    in_root(da, sizeof da, ra);
    in_root(db, sizeof db, rb);
    rg_train_result res;
    hook_state h = {0};
    train_ok(&c, da, 0, &h, &res);
    rg_train_result_free(&res);

    rg_error err = {0};
    stop_in_epoch_2(&c, db, &err);
    if (!strstr(err.msg, stopped)) fail_msg("%s: %s", name, err.msg);
    snprintf(pb, sizeof pb, "%s/last.safetensors", db);
    rg_st_file *fb = open_st(pb);
    assert_string_equal(rg_st_meta_get(fb, "regain.epoch"), "1");
    const char *part = rg_st_meta_get(fb, "regain.epoch_part");
    assert_true(part && !strncmp(part, "3,", 2));
    for (const char *t = sampler_state; *t; t += strlen(t) + 1)
        if (!rg_st_find(fb, t)) fail_msg("%s: the stopped run's checkpoint has no %s", name, t);
    rg_st_free(fb);

    rg_train_config other;
    rg_train_config_default(&other);
    other.threads = 1;
    other.workers = 0;
    h = (hook_state){0};
    train_ok(&other, db, 1, &h, &res);
    assert_int_equal(res.epochs_run, 2);
    rg_train_result_free(&res);
    if (!strstr(h.note, "after epoch 1 of 3 and 3 batches of epoch 2")) fail_msg("resume note: %s", h.note);
    snprintf(pa, sizeof pa, "%s/last.safetensors", da);
    expect_same_tensors(pa, pb);
    snprintf(pa, sizeof pa, "%s/best.safetensors", da);
    snprintf(pb, sizeof pb, "%s/best.safetensors", db);
    expect_same_tensors(pa, pb);
    int la, lb;
    char *ma = metrics_without_timing(da, &la), *mb = metrics_without_timing(db, &lb);
    assert_string_equal(ma, mb);
    free(ma);
    free(mb);
    /* the checkpoint of epoch 2 (the stopped one) is the uninterrupted run's */
    snprintf(pb, sizeof pb, "%s/last.safetensors", db);
    fb = open_st(pb);
    assert_null(rg_st_meta_get(fb, "regain.epoch_part"));
    assert_null(rg_st_find(fb, "sample.subset"));
    rg_st_free(fb);
}

/* Augmentation, mixing and the weight average; then a run whose samples are
 * chosen per epoch from per-sample records that the epoch changes (label
 * noise, a self-paced curriculum, per-class selection with label correction
 * and refreshed predictions): its checkpoint holds the epoch's subset and
 * labels as well. */
static void test_stop_mid_epoch(void **state)
{
    (void)state;
    rgt_require_fashion_mnist();
    rg_train_config c = resume_config("sgd");
    c.ema = 0.9f;
    c.mixup = 0.4f;
    snprintf(c.augment, sizeof c.augment, "trivialaugment");
    check_stop_mid_epoch("stop", c, "stopped in epoch 2 of 3 after batch 3 of 5; the run resumes there", "");

    c = resume_config("sgd");
    c.train_limit = 600;
    c.label_noise = 0.2f;
    snprintf(c.curriculum, sizeof c.curriculum, "self");
    c.select_keep = 0.7f;
    c.select_warmup = 1;
    c.select_per_class = 1;
    c.select_relabel = 0.5f;
    c.select_refresh = 1;
    check_stop_mid_epoch("stop-sampled", c, "stopped in epoch 2 of 3 after batch 3 of", "sample.subset\0sample.label\0");

    /* the part of the epoch without its samples: refused on resume */
    char dir[600], path[700];
    in_root(dir, sizeof dir, "stop-damaged");
    snprintf(path, sizeof path, "%s/last.safetensors", dir);
    rg_error err = {0};
    stop_in_epoch_2(&c, dir, &err);
    rg_st_file *f = open_st(path);
    int32_t n = 0;
    rg_st_tensor *t = calloc((size_t)rg_st_count(f), sizeof *t);
    assert_non_null(t);
    for (int32_t i = 0; i < rg_st_count(f); i++) {
        rg_st_tensor x = *rg_st_at(f, i);
        if (strcmp(x.name, "sample.subset") && strcmp(x.name, "sample.label")) t[n++] = x;
    }
    assert_int_equal(n, rg_st_count(f) - 2);
    rgt_rewrite_checkpoint(path, f, t, n);
    free(t);
    rg_st_free(f);
    rg_train_config other;
    rg_train_config_default(&other);
    rg_train_result res;
    assert_int_equal(rg_train_run(&other, dir, 1, NULL, &res, &err), RG_ERR_FORMAT);
    if (!strstr(err.msg, "last.safetensors: regain.epoch_part without the epoch's samples (sample.subset)"))
        fail_msg("%s", err.msg);
}

/* Mixup and CutMix train on soft targets; with a teacher, which then sees the
 * mixed images, and with a policy, a killed run resumes bit-identically. */
static void test_resume_mixing(void **state)
{
    (void)state;
    rgt_require_fashion_mnist();
    rg_train_config c = resume_config("sgd");
    c.mixup = 0.4f;
    c.cutmix = 1.0f;
    snprintf(c.augment, sizeof c.augment, "trivialaugment");
    check_resume("mixing", c, (hook_state){.kill_in_epoch = 1, .kill_at_batch = 2}, 1);
}

/* ---- d: distillation: resumable, adapters trained and left out of deployment ------------ */

/* A teacher of the tiny network trained for one epoch, then a student taught
 * by it with every loss on: logit KD, DKD, a feature hint (through its
 * adapter) and attention transfer. Killed after epoch 1 and resumed, it
 * must end bit-identical, adapters and their moments included. */
static void test_resume_distill(void **state)
{
    (void)state;
    rgt_require_fashion_mnist();
    char tdir[400];
    in_root(tdir, sizeof tdir, "distill-teacher");
    rg_train_config t = resume_config("sgd");
    t.epochs = 1;
    t.seed = 5;
    rg_train_result res;
    hook_state h = {0};
    train_ok(&t, tdir, 0, &h, &res);
    rg_train_result_free(&res);

    rg_train_config c = resume_config("sgd");
    snprintf(c.teacher, sizeof c.teacher, "%s/best.safetensors", tdir);
    c.kd_alpha = 0.5f;
    c.dkd_alpha = 1.0f;
    c.dkd_beta = 2.0f;
    c.dkd_warmup = 2;
    snprintf(c.hints, sizeof c.hints, "b1:b1");
    snprintf(c.at, sizeof c.at, "stem:b1");
    check_resume("distill", c, (hook_state){.kill_after_epoch = 1}, 1);
    /* logit losses only, unaugmented: the teacher's outputs come from the
     * cache filled once, in a fresh run and in a resumed one alike */
    rg_train_config k = c;
    k.hints[0] = k.at[0] = 0;
    k.crop_pad = k.hflip = 0;
    check_resume("distill-cached", k, (hook_state){.kill_in_epoch = 1, .kill_at_batch = 2}, 1);
    char metrics[700];
    in_root(metrics, sizeof metrics, "distill-cached-a/metrics.csv");
    size_t n;
    char *text = rgt_read_file(metrics, &n);
    assert_non_null(strstr(text, ",teacher_s\n"));
    free(text);

    /* the adapter trained: its weights moved from where they started */
    char pa[700];
    in_root(pa, sizeof pa, "distill-a/last.safetensors");
    rg_st_file *last = open_st(pa);
    const rg_st_tensor *w = rg_st_find(last, "distill.hint0.adapter.weight");
    assert_non_null(w);
    assert_non_null(rg_st_find(last, "distill.hint0.optim.m.adapter.weight"));
    rg_graph *g;
    rg_error err = {0};
    assert_int_equal(rg_model_build(c.model, 28, 28, 1, 10, &g, &err), RG_OK);
    rg_distill_config dc;
    rg_train_config_distill(&c, &dc);
    rg_optim_config oc = {.kind = RG_OPTIM_SGD, .momentum = 0.9f};
    rg_distiller *d;
    if (rg_distiller_create(&dc, g, c.batch, 10, &oc, (uint64_t)c.seed, &d, &err)) fail_msg("%s", err.msg);
    rg_graph *adapters[RG_DISTILL_MAX_PAIRS];
    rg_optim *optims[RG_DISTILL_MAX_PAIRS];
    assert_int_equal(rg_distiller_parts(d, adapters, optims, RG_DISTILL_MAX_PAIRS), 1);
    const rg_param *wp = &adapters[0]->params[rg_graph_find_param(adapters[0], "adapter.weight")];
    assert_int_equal(w->nbytes, wp->count * sizeof(float));
    assert_true(memcmp(w->raw, adapters[0]->param_data + wp->offset, w->nbytes) != 0);
    rg_distiller_free(d);
    rg_graph_free(g);
    rg_st_free(last);

    /* the deployable checkpoint holds the student alone */
    in_root(pa, sizeof pa, "distill-a/best.safetensors");
    rg_st_file *best = open_st(pa);
    assert_int_equal(count_prefix(best, "distill."), 0);
    assert_int_equal(count_prefix(best, "optim."), 0);
    rg_st_free(best);
}

/* A teacher no better than its student gets a warning at the end. */
static void test_distill_weak_teacher_warns(void **state)
{
    (void)state;
    rgt_require_fashion_mnist();
    char tdir[400], sdir[600];
    in_root(tdir, sizeof tdir, "weak-teacher");
    in_root(sdir, sizeof sdir, "weak-student");
    rg_train_config t = resume_config("sgd");
    t.epochs = 1;
    t.lr = 1e-6f; /* learns nothing: about chance */
    t.warmup_epochs = 0;
    rg_train_result res;
    hook_state h = {0};
    train_ok(&t, tdir, 0, &h, &res);
    rg_train_result_free(&res);
    rg_train_config c = resume_config("sgd");
    c.epochs = 2;
    snprintf(c.teacher, sizeof c.teacher, "%s/best.safetensors", tdir);
    c.kd_alpha = 0.1f;
    h = (hook_state){0};
    train_ok(&c, sdir, 0, &h, &res);
    assert_true(res.teacher_top1 >= 0.0 && res.teacher_top1 < res.best_top1);
    rg_train_result_free(&res);
    if (!strstr(h.note, "warning: the teacher")) fail_msg("no warning about the weak teacher; last note: %s", h.note);
}

/* ---- fixture ---------------------------------------------------------------------------- */

static int teardown(void **state)
{
    rg_train_result_free(&acc_res);
    return rgt_root_teardown(state);
}

int main(int argc, char **argv)
{
    if (argc == 7 && !strcmp(argv[1], "--interrupted-run")) return interrupted_run_main(argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accuracy),
        cmocka_unit_test(test_best_reevaluated),
        cmocka_unit_test(test_threads_deterministic),
        cmocka_unit_test(test_resume_sgd),
        cmocka_unit_test(test_resume_sgd_ema_mid_epoch),
        cmocka_unit_test(test_resume_adamw),
        cmocka_unit_test(test_resume_mixing),
        cmocka_unit_test(test_stop_mid_epoch),
        cmocka_unit_test(test_resume_distill),
        cmocka_unit_test(test_distill_weak_teacher_warns),
    };
    return cmocka_run_group_tests(tests, rgt_root_setup, teardown);
}
