/* The plan: which (run, seed) items this invocation covers, in what order,
 * which of them the store already holds (content hash), and what the rest
 * will cost. Nothing here writes. */
#include "exp/plan.h"
#include "exp/hash.h"
#include "exp/kinds.h"
#include "regain/augment.h"
#include "regain/bench.h"
#include "regain/checkpoint.h"
#include "regain/mix.h"
#include "regain/trainer.h"
#include "regain/spec.h"
#include "regain/zoo.h"
#include "regain/cpu.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Forward MACs of training images per second assumed when the store has no
 * throughput on record and the model cannot be timed: between mbv2-tiny
 * (about 1,650 images/s, 14 GMAC/s) and resnet20-w2 (about 250 images/s,
 * 31 GMAC/s) on two cores. */
#define DEFAULT_MAC_RATE 2e10

/* Fashion-MNIST's sizes, assumed for estimates of any data set. */
#define EST_TRAIN_IMAGES 60000
#define EST_TEST_IMAGES 10000

/* ---- files and locks ------------------------------------------------------------------------ */

int rg_exp_lock(const char *run_dir, int shared, int *busy, rg_error *err)
{
    *busy = 0;
    char path[1200];
    snprintf(path, sizeof path, "%s/.lock", run_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) {
        rg_fail(err, RG_ERR_IO, "%s: cannot open the lock file: %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, (shared ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK) *busy = 1;
        else rg_fail(err, RG_ERR_IO, "%s: cannot lock: %s", path, strerror(e));
        return -1;
    }
    return fd;
}

int rg_exp_locked(const char *run_dir)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/.lock", run_dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    int held = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    close(fd);
    return held;
}

/* ---- content hash ------------------------------------------------------------------------------ */

/* The value of key in "key = value" lines. */
static int config_value(const char *text, const char *key, char *buf, size_t size)
{
    size_t kl = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, key, kl) || strncmp(p + kl, " = ", 3)) continue;
        const char *v = p + kl + 3;
        size_t len = strcspn(v, "\n");
        if (len >= size) return 0;
        memcpy(buf, v, len);
        buf[len] = 0;
        return 1;
    }
    return 0;
}

static rg_status data_hash(rg_experiment *x, rg_store *s, const char *data, char hex[65], rg_error *err)
{
    rg_exp_priv *p = x->priv;
    for (int32_t i = 0; i < p->n_data; i++)
        if (!strcmp(p->data[i].key, data)) {
            memcpy(hex, p->data[i].hex, 65);
            return RG_OK;
        }
    rg_sha256 *h;
    rg_status st = rg_sha256_begin(&h, err);
    if (st) return st;
    st = rg_exp_hash_data(s, data, h, err);
    rg_sha256_final(h, hex);
    if (st) return st;
    rg_exp_memo *m = realloc(p->data, (size_t)(p->n_data + 1) * sizeof *m);
    if (!m) return rg_fail(err, RG_ERR_NOMEM, "out of memory");
    p->data = m;
    snprintf(m[p->n_data].key, sizeof m->key, "%s", data);
    memcpy(m[p->n_data].hex, hex, 65);
    p->n_data++;
    return RG_OK;
}

static void add_line(rg_sha256 *h, const char *a, const char *b, const char *c)
{
    rg_sha256_update(h, a, strlen(a));
    rg_sha256_update(h, " ", 1);
    rg_sha256_update(h, b, strlen(b));
    rg_sha256_update(h, " ", 1);
    rg_sha256_update(h, c, strlen(c));
    rg_sha256_update(h, "\n", 1);
}

rg_status rg_exp_item_hash(rg_experiment *x, rg_store *s, int64_t experiment, int32_t item, rg_train_config *cfg,
                           char hex[65], rg_error *err)
{
    const rg_exp_item *it = &x->items[item];
    const rg_resolved_run *run = &x->res->runs[it->run];
    const rg_exp_kind *kind = rg_exp_kind_find(run->kind);
    const int32_t *deps = ((rg_exp_priv *)x->priv)->deps + (size_t)item * RG_RECIPE_MAX_REFS;
    *cfg = run->cfg;
    cfg->seed = it->seed;
    rg_sha256 *h;
    rg_status st = rg_sha256_begin(&h, err);
    if (st) return st;
    rg_sha256_update(h, it->config_text, strlen(it->config_text));
    rg_sha256_update(h, "[inputs]\n", 9);
    char sum[65];
    if (!(st = data_hash(x, s, cfg->data, sum, err))) add_line(h, "data", cfg->data, sum);
    /* a model spec file counts by its content, not its name */
    struct stat sb;
    if (!st && (strchr(cfg->model, '/') || stat(cfg->model, &sb) == 0) &&
        !(st = rg_exp_file_sha256(s, cfg->model, sum, NULL, err)))
        add_line(h, "model", cfg->model, sum);
    /* checkpoints: another run's artifact, or a file named directly */
    for (const char *const *k = kind->artifact_keys; !st && k && *k; k++) {
        char value[1024];
        if (!config_value(it->config_text, *k, value, sizeof value) || !value[0]) continue;
        if (value[0] != '@') {
            if (!(st = rg_exp_file_sha256(s, value, sum, NULL, err))) add_line(h, *k, value, sum);
            else rg_error_prefix(err, "run %s: %s", it->name, *k);
            continue;
        }
        for (int32_t r = 0; !st && r < run->n_refs; r++) {
            if (strcmp(run->refs[r].key, *k)) continue;
            const rg_exp_item *dep = &x->items[deps[r]];
            rg_store_run row = {0};
            rg_store_artifact a;
            if (s && experiment && (st = rg_store_get_run(s, experiment, dep->name, dep->seed, &row, err))) break;
            if (!row.id || strcmp(row.status, "done") || strcmp(row.hash, dep->hash)) {
                st = rg_fail(err, RG_ERR_NOTFOUND, "run %s seed %lld: %s: run %s has not finished", it->name,
                             (long long)it->seed, *k, dep->name);
                break;
            }
            if ((st = rg_store_get_artifact(s, row.id, run->refs[r].artifact, &a, err))) break;
            /* an imported run's checkpoint may be absent until the run is
             * restored (plan_restores); one on disk must be what was recorded */
            if (!row.imported || access(a.path, F_OK) == 0) {
                if ((st = rg_exp_file_sha256(s, a.path, sum, NULL, err))) break;
                if (strcmp(sum, a.sha256)) {
                    st = rg_fail(err, RG_ERR_FORMAT, "%s: changed since run %s wrote it (SHA-256 differs)", a.path,
                                 dep->name);
                    break;
                }
            }
            /* The run counts by its content hash, not its file's: training
             * is deterministic, so a run done again (restored, or resumed
             * elsewhere) stands for the same weights, although the file's
             * bytes differ in their recorded timings. */
            add_line(h, *k, value, dep->hash);
            rg_error e = {0};
            if (rg_train_config_set(cfg, *k, a.path, &e)) st = rg_fail(err, RG_ERR_ARG, "run %s: %s", it->name, e.msg);
        }
    }
    /* other input files count by their content */
    for (const char *const *k = kind->file_keys; !st && k && *k; k++) {
        char value[1024];
        if (!config_value(it->config_text, *k, value, sizeof value) || !value[0]) continue;
        if (!(st = rg_exp_file_sha256(s, value, sum, NULL, err))) add_line(h, *k, value, sum);
        else rg_error_prefix(err, "run %s: %s", it->name, *k);
    }
    rg_sha256_final(h, hex);
    return st;
}

int rg_exp_run_reusable(rg_store *s, const rg_store_run *row, const char *hash)
{
    if (!row->id || strcmp(row->status, "done") || strcmp(row->hash, hash)) return RG_EXP_REUSE_NO;
    /* every artifact the run recorded (training: best and last; quantize:
     * int8) must still be there, unchanged */
    static const char *const kinds[] = {"best", "last", "int8"};
    int found = 0, missing = 0;
    for (int i = 0; i < 3; i++) {
        rg_error err = {0};
        rg_store_artifact a;
        char sum[65];
        int64_t bytes;
        rg_status st = rg_store_get_artifact(s, row->id, kinds[i], &a, &err);
        if (st == RG_ERR_NOTFOUND) continue;
        if (!st && row->imported && access(a.path, F_OK) != 0) {
            missing++;
            continue;
        }
        if (st || rg_exp_file_sha256(s, a.path, sum, &bytes, &err) || bytes != a.bytes || strcmp(sum, a.sha256))
            return RG_EXP_REUSE_NO;
        found++;
    }
    if (missing) return RG_EXP_REUSE_RESULTS;
    return found > 0 ? RG_EXP_REUSE_FILES : RG_EXP_REUSE_NO;
}

rg_status rg_exp_find_donor(rg_store *s, const char *hash, const char *kind, int64_t experiment, rg_store_run *row,
                            char *donor, size_t cap, rg_error *err)
{
    for (int32_t skip = 0;; skip++) {
        rg_status st = rg_store_find_donor(s, hash, kind, experiment, skip, row, donor, cap, err);
        if (st || !row->id || rg_exp_run_reusable(s, row, hash) == RG_EXP_REUSE_FILES) return st;
    }
}

/* ---- cost estimates ------------------------------------------------------------------------------ */

static uint64_t model_macs(const char *model)
{
    rg_error err = {0};
    rg_graph *g = NULL;
    struct stat sb;
    rg_status st = strchr(model, '/') || stat(model, &sb) == 0 ? rg_spec_build_file(model, &g, &err)
                                                               : rg_zoo_build(model, 28, 28, 1, 10, &g, &err);
    rg_graph_stats s;
    uint64_t macs = !st && !rg_graph_stats_compute(g, &s, &err) ? s.macs : 0;
    rg_graph_free(g);
    return macs;
}

static double macs_cb(void *user, const char *model)
{
    (void)user;
    return (double)model_macs(model);
}

/* The model of the run that key ("@RUN") references, or NULL. */
static const char *ref_model(const rg_resolved_run *run, const rg_resolved_recipe *res, const char *key)
{
    for (int32_t k = 0; k < run->n_refs; k++)
        if (!strcmp(run->refs[k].key, key)) return res->runs[run->refs[k].run].cfg.model;
    return NULL;
}

/* A checkpoint's forward MACs an image (0 when it does not load) and the
 * model name its trainer recorded ("regain.model"; empty when none). */
static uint64_t checkpoint_macs(const char *path, char *model, size_t cap)
{
    rg_error err = {0};
    rg_graph *g = NULL;
    rg_st_file *f = NULL;
    rg_graph_stats s;
    uint64_t macs = 0;
    model[0] = '\0';
    if (!rg_checkpoint_load(path, 0, &g, &f, &err) && !rg_graph_stats_compute(g, &s, &err)) {
        macs = s.macs;
        const char *m = rg_st_meta_get(f, "regain.model");
        if (m && strlen(m) < cap) snprintf(model, cap, "%s", m);
    }
    rg_st_free(f);
    rg_graph_free(g);
    return macs;
}

pid_t rg_exp_fork(void)
{
    fflush(NULL);
    pid_t parent = getpid(), pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(1);
    }
    return pid;
}

int32_t rg_exp_threads_per_run(const rg_experiment *x)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int32_t all = x->opt.threads > 0 ? x->opt.threads : (int32_t)(cores > 0 ? cores : 1);
    return all / x->opt.jobs > 0 ? all / x->opt.jobs : 1;
}

/* Training images/s of a few steps of model at batch on the items'
 * threads, timed once per invocation in a child process; 0 when it cannot
 * be built (a spec for other image sizes). The child keeps OpenMP out of
 * this process: `regain run --jobs` forks its runs from here, and GNU
 * OpenMP's thread pool does not survive a fork (a child's first parallel
 * region with two or more threads hung). */
static double timed_rate(rg_experiment *x, const char *model, int32_t batch)
{
    rg_exp_priv *p = x->priv;
    for (int32_t i = 0; i < p->n_rates; i++)
        if (p->rates[i].batch == batch && !strcmp(p->rates[i].model, model)) return p->rates[i].images_per_s;
    double ips = 0.0;
    int fds[2];
    if (pipe(fds) == 0) {
        pid_t pid = rg_exp_fork();
        if (pid == 0) {
            close(fds[0]);
            rg_bench_config bc = {.model = model, .train = 1, .batch = batch > 0 ? batch : 128,
                                  .threads = rg_exp_threads_per_run(x), .steps = 2, .warmup = 1, .seed = 1};
            rg_bench_result br;
            rg_error err = {0};
            double v = rg_bench_run(&bc, &br, &err) ? 0.0 : br.images_per_s;
            _exit(write(fds[1], &v, sizeof v) == (ssize_t)sizeof v ? 0 : 1);
        }
        close(fds[1]);
        if (pid > 0) {
            double v;
            if (read(fds[0], &v, sizeof v) == (ssize_t)sizeof v && v > 0) ips = v;
            while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) continue;
        }
        close(fds[0]);
    }
    if (p->n_rates < RG_EXP_MAX_RATES && strlen(model) < sizeof p->rates[0].model) {
        rg_exp_rate *r = &p->rates[p->n_rates++];
        snprintf(r->model, sizeof r->model, "%s", model);
        r->batch = batch;
        r->images_per_s = ips;
    }
    return ips;
}

/* Training images/s of model (macs forward MACs an image): the store's
 * record on this machine's kind of CPU at the items' thread count; else a
 * few steps timed now; else the record at other thread counts, then on
 * other CPUs, or the MAC rate of the models on record; else the default
 * MAC rate. A record at another thread count, or of runs that shared the
 * cores, can be several times off (1 thread beside another run against 2
 * alone: 470 against 1,650 images/s for mbv2-tiny), and one from another
 * CPU too (resnet20-w2 at 2 threads: about 300 images/s with AVX-512, 160
 * on an AVX2 machine). */
static double training_rate(rg_experiment *x, rg_store *s, const char *model, uint64_t macs, int32_t batch,
                            rg_est_rate *source)
{
    double ips = 0.0, mac_rate = 0.0;
    rg_error err = {0};
    char cpu[512];
    snprintf(cpu, sizeof cpu, "%s\n%s", rg_cpu_model(), rg_cpu_features());
    int32_t threads = rg_exp_threads_per_run(x);
    *source = RG_EST_RECORDED;
    if (s) rg_store_rates(s, model, threads, cpu, macs_cb, NULL, &ips, &mac_rate, &err);
    if (ips > 0) return ips;
    *source = RG_EST_TIMED;
    if ((ips = timed_rate(x, model, batch)) > 0) return ips;
    *source = RG_EST_RECORDED;
    if (s) rg_store_rates(s, model, 0, cpu, macs_cb, NULL, &ips, &mac_rate, &err);
    if (s && ips <= 0) rg_store_rates(s, model, threads, NULL, macs_cb, NULL, &ips, &mac_rate, &err);
    if (s && ips <= 0) rg_store_rates(s, model, 0, NULL, macs_cb, NULL, &ips, &mac_rate, &err);
    if (ips > 0) return ips;
    if (!macs) return 0.0;
    if (mac_rate <= 0) {
        *source = RG_EST_ASSUMED;
        mac_rate = x->default_rate;
    }
    return mac_rate / (double)macs;
}

/* Seconds of teacher forward passes per training image per epoch: the
 * teachers run in eval mode, about a third of a training step of their own
 * model, on every augmented image (cached once when nothing augments). A
 * teacher is another run of the recipe ("@RUN") or a checkpoint file (the
 * model its trainer recorded); either way its model's training rate as
 * for any run (training_rate), the default MAC rate when a checkpoint
 * names no model. */
static double teacher_s_per_image(rg_experiment *x, rg_store *s, const rg_resolved_run *run)
{
    const rg_train_config *c = &run->cfg;
    const char *keys[3] = {"teacher", "teacher2", "teacher3"};
    const char *vals[3] = {c->teacher, c->teacher2, c->teacher3};
    double sec = 0.0;
    for (int i = 0; i < 3; i++) {
        if (!vals[i][0]) continue;
        char recorded[128];
        const char *model;
        uint64_t macs;
        if (vals[i][0] == '@') {
            model = ref_model(run, x->res, keys[i]);
            macs = model ? model_macs(model) : 0;
        } else {
            macs = checkpoint_macs(vals[i], recorded, sizeof recorded);
            model = recorded[0] ? recorded : NULL;
        }
        if (!macs) continue;
        rg_est_rate source;
        double ips = model ? training_rate(x, s, model, macs, c->batch, &source) : 0.0;
        sec += (ips > 0 ? 1.0 / ips : (double)macs / x->default_rate) / 3.0;
    }
    return sec;
}

static void estimate(rg_experiment *x, rg_store *s, rg_exp_item *it)
{
    const rg_train_config *c = &x->res->runs[it->run].cfg;
    it->macs = model_macs(c->model);
    double ips = training_rate(x, s, c->model, it->macs, c->batch, &it->est_rate);
    if (ips <= 0) ips = 500.0;
    double train = EST_TRAIN_IMAGES - c->val_split;
    if (c->train_limit > 0 && c->train_limit < train) train = c->train_limit;
    double test = c->test_limit > 0 && c->test_limit < EST_TEST_IMAGES ? c->test_limit : EST_TEST_IMAGES;
    /* evaluation is a forward pass: about a third of a training step; plus
     * loading the data and measuring latency */
    it->est_s = c->epochs * (train + (test + c->val_split) / 3.0) / ips + 3.0;
    double teach = teacher_s_per_image(x, s, &x->res->runs[it->run]);
    if (teach > 0) {
        /* the trainer's own test for caching the teachers' outputs */
        rg_augment_config aug;
        rg_mix_config mix;
        rg_error err = {0};
        int augmented = rg_train_augment_config(c, &aug, &mix, &err) || rg_augment_active(&aug) || rg_mix_active(&mix);
        it->est_s += (augmented ? c->epochs : 1) * train * teach;
    }
    /* post-training quantization: calibration and an int8 evaluation by the
     * integer reference, measured at about 100 images/s for mbv2-tiny */
    if (!strcmp(x->res->runs[it->run].kind, "quantize"))
        it->est_s = (c->ptq_calib + test) / 3.0 / ips + test * (double)it->macs / 8.8e8 + 5.0;
}

/* ---- opening ---------------------------------------------------------------------------------------- */

static rg_status select_items(rg_experiment *x, rg_error *err)
{
    const rg_resolved_recipe *res = x->res;
    char *keep = calloc((size_t)res->n_runs + 1, 1);
    if (!keep) return rg_fail(err, RG_ERR_NOMEM, "out of memory");
    for (int32_t i = 0; i < res->n_runs; i++) keep[i] = x->opt.n_only == 0;
    for (int32_t o = 0; o < x->opt.n_only; o++) {
        int32_t r = rg_resolved_find(res, x->opt.only[o]);
        if (r < 0) {
            free(keep);
            return rg_fail(err, RG_ERR_ARG, "%s: --only %s: no [run %s] in the recipe", res->recipe->origin,
                           x->opt.only[o], x->opt.only[o]);
        }
        keep[r] = 1;
    }
    /* what the kept runs depend on: the runs are in dependency order, so one
     * backward sweep closes the set */
    for (int32_t i = res->n_runs - 1; i >= 0; i--)
        if (keep[i])
            for (int32_t k = 0; k < res->runs[i].n_refs; k++) keep[res->runs[i].refs[k].run] = 1;
    /* the seeds asked for, each one of the recipe's */
    for (int32_t o = 0; o < x->opt.n_seeds; o++) {
        int found = 0;
        for (int32_t sd = 0; sd < res->n_seeds; sd++) found |= res->seeds[sd] == x->opt.seeds[o];
        if (!found) {
            free(keep);
            return rg_fail(err, RG_ERR_ARG, "%s: --seed %lld: not one of the recipe's seeds", res->recipe->origin,
                           (long long)x->opt.seeds[o]);
        }
    }
    int32_t n = 0;
    for (int32_t i = 0; i < res->n_runs; i++) n += keep[i];
    size_t total = (size_t)n * (size_t)res->n_seeds;
    rg_exp_priv *p = x->priv;
    x->items = rg_calloc(total + 1, sizeof *x->items, err);
    p->deps = rg_calloc((total + 1) * RG_RECIPE_MAX_REFS, sizeof *p->deps, err);
    if (!x->items || !p->deps) {
        free(keep);
        return RG_ERR_NOMEM;
    }
    rg_status st = RG_OK;
    for (int32_t sd = 0; !st && sd < res->n_seeds; sd++) {
        int asked = x->opt.n_seeds == 0;
        for (int32_t o = 0; o < x->opt.n_seeds; o++) asked |= x->opt.seeds[o] == res->seeds[sd];
        if (!asked) continue;
        int32_t first = x->n_items;
        for (int32_t r = 0; !st && r < res->n_runs; r++) {
            if (!keep[r]) continue;
            rg_exp_item *it = &x->items[x->n_items];
            it->run = r;
            snprintf(it->name, sizeof it->name, "%s", res->runs[r].name);
            it->seed = res->seeds[sd];
            it->test_top1 = -1.0;
            if ((size_t)snprintf(it->run_dir, sizeof it->run_dir, "%s/%s/seed%lld", res->runs_dir, it->name,
                                 (long long)it->seed) >= sizeof it->run_dir)
                st = rg_fail(err, RG_ERR_ARG, "%s: runs_dir is too long", res->recipe->origin);
            if (!st && !(it->config_text = rg_resolved_config_text(&res->runs[r], it->seed)))
                st = rg_fail(err, RG_ERR_NOMEM, "out of memory");
            int32_t *deps = p->deps + (size_t)x->n_items * RG_RECIPE_MAX_REFS;
            for (int32_t k = 0; k < RG_RECIPE_MAX_REFS; k++) deps[k] = -1;
            for (int32_t k = 0; !st && k < res->runs[r].n_refs; k++)
                for (int32_t j = first; j < x->n_items; j++)
                    if (x->items[j].run == res->runs[r].refs[k].run) deps[k] = j;
            x->n_items++;
        }
    }
    free(keep);
    return st;
}

/* A run under way (resumed, or running elsewhere) has its recorded epochs
 * behind it: the estimate keeps the share of epochs still to do. */
static void left_to_do(const rg_experiment *x, rg_exp_item *it, const rg_store_run *row)
{
    int32_t epochs = x->res->runs[it->run].cfg.epochs;
    if (epochs > 0 && row->epochs_done > 0 && row->epochs_done <= epochs)
        it->est_s *= (double)(epochs - row->epochs_done) / (double)epochs;
}

/* Plans item i against the store (s may be NULL: nothing recorded). */
static rg_status plan_item(rg_experiment *x, rg_store *s, int64_t experiment, int32_t i, rg_error *err)
{
    rg_exp_item *it = &x->items[i];
    const int32_t *deps = ((rg_exp_priv *)x->priv)->deps + (size_t)i * RG_RECIPE_MAX_REFS;
    estimate(x, s, it);
    for (int32_t k = 0; k < RG_RECIPE_MAX_REFS; k++)
        if (deps[k] >= 0 && x->items[deps[k]].plan != RG_PLAN_CACHED) {
            it->plan = RG_PLAN_AFTER_DEPS;
            return RG_OK;
        }
    rg_train_config cfg;
    rg_status st = rg_exp_item_hash(x, s, experiment, i, &cfg, it->hash, err);
    if (st) return st;
    rg_store_run row = {0};
    if (s && experiment && (st = rg_store_get_run(s, experiment, it->name, it->seed, &row, err))) return st;
    char last[1200];
    snprintf(last, sizeof last, "%s/last.safetensors", it->run_dir);
    int reusable = s ? rg_exp_run_reusable(s, &row, it->hash) : RG_EXP_REUSE_NO;
    if (reusable) {
        it->plan = RG_PLAN_CACHED;
        it->results_only = reusable == RG_EXP_REUSE_RESULTS;
        it->test_top1 = row.test_top1;
        return RG_OK;
    }
    if (rg_exp_locked(it->run_dir)) {
        it->plan = RG_PLAN_ELSEWHERE;
        left_to_do(x, it, &row);
        return RG_OK;
    }
    rg_store_run donor;
    if (s && (st = rg_exp_find_donor(s, it->hash, x->res->runs[it->run].kind, experiment, &donor, it->reused_from,
                                     sizeof it->reused_from, err)))
        return st;
    if (s && donor.id) {
        it->plan = RG_PLAN_REUSE;
        it->test_top1 = donor.test_top1;
    } else if (row.id && !strcmp(row.status, "running") && !strcmp(row.hash, it->hash) && access(last, F_OK) == 0) {
        it->plan = RG_PLAN_RESUME;
        left_to_do(x, it, &row);
    } else it->plan = RG_PLAN_RUN;
    return RG_OK;
}

/* Imported runs may come without their checkpoints: one that a run still
 * to do depends on runs again first (training is deterministic: it writes
 * the files the record describes), unless the checkpoint that run names is
 * here (carried with `runs import --files`; its content was checked against
 * the record when the dependent's hash was made). Items come in dependency
 * order, so one backward sweep reaches the dependencies of restored runs
 * too. */
static rg_status plan_restores(rg_experiment *x, rg_store *s, int64_t experiment, rg_error *err)
{
    for (int32_t i = x->n_items - 1; i >= 0; i--) {
        rg_exp_item *it = &x->items[i];
        if (it->plan == RG_PLAN_CACHED || it->plan == RG_PLAN_REUSE || it->plan == RG_PLAN_ELSEWHERE) continue;
        const int32_t *deps = ((rg_exp_priv *)x->priv)->deps + (size_t)i * RG_RECIPE_MAX_REFS;
        const rg_resolved_run *run = &x->res->runs[it->run];
        for (int32_t k = 0; k < RG_RECIPE_MAX_REFS; k++) {
            if (deps[k] < 0) continue;
            rg_exp_item *d = &x->items[deps[k]];
            if (d->plan != RG_PLAN_CACHED || !d->results_only) continue;
            rg_store_run row;
            rg_store_artifact a;
            rg_status st = rg_store_get_run(s, experiment, d->name, d->seed, &row, err);
            if (!st && row.id) {
                rg_error e = {0};
                st = rg_store_get_artifact(s, row.id, run->refs[k].artifact, &a, &e);
                if (st == RG_ERR_NOTFOUND) st = RG_OK;
                else if (st) *err = e;
                else if (access(a.path, F_OK) == 0) continue;
            }
            if (st) return st;
            d->plan = RG_PLAN_RESTORE;
            /* a run being restored stays one: it waits for its own
             * dependencies all the same */
            if (it->plan != RG_PLAN_RESTORE) it->plan = RG_PLAN_AFTER_DEPS;
        }
    }
    return RG_OK;
}

rg_status rg_exp_open(const char *recipe_path, const rg_exp_options *opt, rg_experiment **out, rg_error *err)
{
    *out = NULL;
    rg_experiment *x = rg_calloc(1, sizeof *x, err);
    if (!x || !(x->priv = rg_calloc(1, sizeof(rg_exp_priv), err))) {
        free(x);
        return RG_ERR_NOMEM;
    }
    x->opt = *opt;
    if (x->opt.jobs < 1) x->opt.jobs = 1;
    x->default_rate = DEFAULT_MAC_RATE;
    rg_status st = rg_recipe_load(recipe_path, &x->recipe, err);
    if (!st) st = rg_recipe_resolve(x->recipe, opt->profile, &x->res, err);
    if (!st) {
        const char *store = opt->store && *opt->store ? opt->store : x->res->store;
        if (strlen(store) >= sizeof x->store_path) st = rg_fail(err, RG_ERR_ARG, "%s: store path is too long", store);
        else snprintf(x->store_path, sizeof x->store_path, "%s", store);
    }
    if (!st) st = select_items(x, err);
    rg_store *s = NULL;
    int64_t experiment = 0;
    if (!st) {
        rg_error e = {0};
        st = rg_store_open(x->store_path, 1, &s, &e);
        if (st == RG_ERR_NOTFOUND) st = RG_OK;
        else if (st) *err = e;
        if (s && rg_store_find_experiment(s, x->res->name, &experiment, &e)) experiment = 0;
    }
    for (int32_t i = 0; !st && i < x->n_items; i++) st = plan_item(x, s, experiment, i, err);
    if (!st && s) st = plan_restores(x, s, experiment, err);
    rg_store_close(s);
    if (st) {
        rg_exp_close(x);
        return st;
    }
    *out = x;
    return RG_OK;
}

void rg_exp_close(rg_experiment *x)
{
    if (!x) return;
    rg_exp_priv *p = x->priv;
    for (int32_t i = 0; i < x->n_items; i++) free(x->items[i].config_text);
    free(x->items);
    if (p) {
        free(p->deps);
        free(p->data);
        free(p);
    }
    rg_resolved_free(x->res);
    rg_recipe_free(x->recipe);
    free(x);
}
