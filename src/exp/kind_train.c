/* The train kind: rg_train_run into the run directory, every epoch's
 * metrics into the store as it ends, then the final record: test accuracy
 * and loss of the final weights, size, MACs, batch-1 latency, checkpoints
 * with their SHA-256, environment. */
#include "exp/environment.h"
#include "exp/hash.h"
#include "exp/kinds.h"
#include "regain/checkpoint.h"
#include "regain/experiment.h"
#include "regain/stats.h"

#include <cjson/cJSON.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---- per-epoch records ----------------------------------------------------------------- */

typedef struct {
    rg_exp_job *job;
    int warned;
} train_ctx;

static void on_progress(void *user, const rg_train_progress *p)
{
    const rg_train_hooks *h = ((train_ctx *)user)->job->hooks;
    if (h && h->progress) h->progress(h->user, p);
}

static void on_note(void *user, const char *msg)
{
    const rg_train_hooks *h = ((train_ctx *)user)->job->hooks;
    if (h && h->note) h->note(h->user, msg);
}

static int on_stop(void *user)
{
    const rg_train_hooks *h = ((train_ctx *)user)->job->hooks;
    return h && h->stop && h->stop(h->user);
}

static void on_epoch(void *user, const rg_epoch_metrics *m)
{
    train_ctx *c = user;
    rg_error err = {0};
    /* A failed insert loses nothing: the final record re-reads metrics.csv. */
    double wall = c->job->prior_wall_s + now_s() - c->job->start_s;
    if (rg_store_put_epoch(c->job->store, c->job->run_id, m, wall, &err) && !c->warned) {
        c->warned = 1;
        on_note(user, err.msg);
    }
    const rg_train_hooks *h = c->job->hooks;
    if (h && h->epoch_end) h->epoch_end(h->user, m);
}

/* metrics.csv (every epoch, across resumes) -> epoch records. */
static rg_status read_metrics(const char *run_dir, rg_epoch_metrics **out, int32_t *n, rg_error *err)
{
    *out = NULL;
    *n = 0;
    char path[1200];
    snprintf(path, sizeof path, "%s/metrics.csv", run_dir);
    FILE *f = fopen(path, "r");
    if (!f) return rg_fail(err, RG_ERR_IO, "%s: cannot read", path);
    char line[512];
    int32_t cap = 0;
    rg_status st = RG_OK;
    while (!st && fgets(line, sizeof line, f)) {
        rg_epoch_metrics m = {0};
        if (sscanf(line, "%d,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf", &m.epoch, &m.lr, &m.train_loss, &m.train_top1,
                   &m.test_loss, &m.test_top1, &m.val_top1, &m.seconds, &m.images_per_s) != 9)
            continue;   /* the header */
        if (*n == cap) {
            cap = cap ? 2 * cap : 32;
            rg_epoch_metrics *p = realloc(*out, (size_t)cap * sizeof *p);
            if (!p) {
                st = rg_fail(err, RG_ERR_NOMEM, "out of memory");
                break;
            }
            *out = p;
        }
        (*out)[(*n)++] = m;
    }
    fclose(f);
    return st;
}

/* ---- the deployable model ------------------------------------------------------------------ */

double rg_exp_latency_ms(void (*pass)(void *user), void *user, int32_t threads)
{
    enum { WARM = 3, MIN_REPS = 25, MAX_REPS = 2000 };
    const double MIN_S = 0.5;
    double t[MAX_REPS];
    int reps = 0;
    rg_set_threads(1);
    for (int i = 0; i < WARM; i++) pass(user);
    for (double start = now_s(); reps < MAX_REPS && (reps < MIN_REPS || now_s() - start < MIN_S); reps++) {
        double t0 = now_s();
        pass(user);
        t[reps] = now_s() - t0;
    }
    rg_set_threads(threads);
    return 1000.0 * rg_stats_median(t, (size_t)reps);
}

static void forward_pass(void *graph)
{
    rg_exec ctx = {0};
    rg_graph_forward(graph, &ctx);
}

/* Size, MACs and the median of batch-1, single-thread forward latencies of
 * the model in checkpoint path (its EMA weights when it has them). */
static rg_status measure(const char *path, int32_t threads, rg_store_final *f, rg_error *err)
{
    rg_graph *g;
    rg_status st = rg_checkpoint_load(path, 1, &g, NULL, err);
    if (st) return st;
    rg_graph_stats s;
    if (!(st = rg_graph_stats_compute(g, &s, err)) && !(st = rg_graph_plan(g, 1, RG_PLAN_EVAL, err))) {
        f->params = (int64_t)s.params;
        f->macs = (int64_t)s.macs;
        /* what an fp32 deployment stores: weights and BN statistics */
        f->model_bytes = (int64_t)(s.params + s.buffers) * (int64_t)sizeof(float);
        float *in = rg_graph_input(g);
        size_t count = rg_shape_count(g->values[g->input].shape);
        for (size_t i = 0; i < count; i++) in[i] = (float)(i % 7) * 0.25f - 0.5f;
        f->latency_ms = rg_exp_latency_ms(forward_pass, g, threads);
    }
    rg_graph_free(g);
    return st;
}

char *rg_exp_confusion_json(const rg_eval_result *r)
{
    cJSON *rows = cJSON_CreateArray();
    for (int32_t i = 0; rows && i < r->classes; i++) {
        cJSON *row = cJSON_CreateArray();
        if (!row) break;
        for (int32_t j = 0; j < r->classes; j++)
            cJSON_AddItemToArray(row, cJSON_CreateNumber((double)r->confusion[(size_t)i * r->classes + j]));
        cJSON_AddItemToArray(rows, row);
    }
    char *text = rows ? cJSON_PrintUnformatted(rows) : NULL;
    cJSON_Delete(rows);
    return text;
}

rg_status rg_exp_artifact(rg_store *s, const char *run_dir, const char *kind, const char *file, rg_store_artifact *a,
                          rg_error *err)
{
    memset(a, 0, sizeof *a);
    snprintf(a->kind, sizeof a->kind, "%s", kind);
    snprintf(a->path, sizeof a->path, "%s/%s", run_dir, file);
    return rg_exp_file_sha256(s, a->path, a->sha256, &a->bytes, err);
}

/* ---- the run ---------------------------------------------------------------------------------- */

rg_status rg_exp_run_train(rg_exp_job *job, rg_error *err)
{
    train_ctx ctx = {job, 0};
    rg_train_hooks hooks = {&ctx, on_progress, on_epoch, on_note, on_stop};
    rg_train_result res;
    rg_status st = rg_train_run(&job->cfg, job->run_dir, job->resume, &hooks, &res, err);
    if (st) return st;
    rg_store_final f = {.test_top1 = res.final.top1, .test_loss = res.final.loss, .best_top1 = res.best_top1,
                        .best_epoch = res.best_epoch};
    rg_store_artifact arts[2];
    rg_epoch_metrics *epochs = NULL;
    int32_t n_epochs = 0;
    char *confusion = rg_exp_confusion_json(&res.final);
    f.confusion_json = confusion;
    if (!confusion) st = rg_fail(err, RG_ERR_NOMEM, "out of memory");
    if (!st) st = read_metrics(job->run_dir, &epochs, &n_epochs, err);
    for (int32_t i = 0; i < n_epochs; i++) f.train_s += epochs[i].seconds;
    if (!st) st = rg_exp_artifact(job->store, job->run_dir, "best", "best.safetensors", &arts[0], err);
    if (!st) st = rg_exp_artifact(job->store, job->run_dir, "last", "last.safetensors", &arts[1], err);
    if (!st) st = measure(arts[1].path, job->cfg.threads, &f, err);
    if (!st) {
        rg_exp_env e;
        rg_exp_env_collect(&e);
        rg_store_env env = {e.git_commit, e.compiler, e.cpu_model, e.cpu_features, e.hostname, RG_VERSION,
                            e.blas_core, omp_get_max_threads(), job->cfg.seed};
        st = rg_store_finish_run(job->store, job->run_id, epochs, n_epochs, &f, arts, 2, &env,
                                 job->prior_wall_s + now_s() - job->start_s, err);
    }
    free(confusion);
    free(epochs);
    rg_train_result_free(&res);
    return st;
}
