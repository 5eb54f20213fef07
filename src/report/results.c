/* results.json (cJSON) and results.csv: every number of the report, for
 * scripts (render.h). Accuracies are in percent, differences in percentage
 * points; a value the store does not have is null in JSON and an empty
 * field in CSV. */
#include "report/render.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>

/* ---- JSON ------------------------------------------------------------------------- */

/* Every helper records a failed allocation in *f (cJSON signals one by a
 * NULL, and its Add* functions accept a NULL parent), so a partial document
 * is never written: rg_report_json returns NULL instead. */
static void num(int *f, cJSON *o, const char *key, double v)
{
    if (!(isnan(v) || isinf(v) ? cJSON_AddNullToObject(o, key) : cJSON_AddNumberToObject(o, key, v))) *f = 1;
}

static void str(int *f, cJSON *o, const char *key, const char *v)
{
    if (!(v ? cJSON_AddStringToObject(o, key, v) : cJSON_AddNullToObject(o, key))) *f = 1;
}

static cJSON *push(int *f, cJSON *array, cJSON *item)
{
    if (!item || !cJSON_AddItemToArray(array, item)) {
        cJSON_Delete(item);
        *f = 1;
        return NULL;
    }
    return item;
}

static cJSON *child(int *f, cJSON *o, const char *key, int array)
{
    cJSON *c = array ? cJSON_AddArrayToObject(o, key) : cJSON_AddObjectToObject(o, key);
    if (!c) *f = 1;
    return c;
}

static void interval(int *f, cJSON *o, const char *key, double lo, double hi)
{
    if (isnan(lo) || isnan(hi)) {
        num(f, o, key, NAN);
        return;
    }
    cJSON *a = child(f, o, key, 1);
    push(f, a, cJSON_CreateNumber(lo));
    push(f, a, cJSON_CreateNumber(hi));
}

static void add_run(int *f, cJSON *runs, const rg_report *r, const rg_report_run *run)
{
    cJSON *o = push(f, runs, cJSON_CreateObject());
    str(f, o, "name", run->name);
    num(f, o, "n_seeds", run->n_seeds);
    if (!cJSON_AddBoolToObject(o, "teacher", run->is_teacher)) *f = 1;
    cJSON *t = child(f, o, "test_top1_pct", 0);
    num(f, t, "mean", run->top1.mean);
    num(f, t, "sd", run->top1.sd);
    interval(f, t, "ci95", run->top1.lo, run->top1.hi);
    num(f, o, "params", run->params);
    num(f, o, "macs", run->macs);
    num(f, o, "model_bytes", run->model_bytes);
    num(f, o, "latency_ms", run->latency_ms);
    num(f, o, "train_s", run->train_s);
    /* the CPU the two times above come from (1-based, as in "cpus"); null when they average every seed's */
    num(f, o, "timed_on_cpu", r->n_cpus > 1 && !run->timed_elsewhere ? r->timing_cpu + 1 : NAN);
    cJSON *seeds = child(f, o, "seeds", 1);
    for (int32_t k = 0; k < run->n_seeds; k++) {
        const rg_report_seed *s = &run->seeds[k];
        cJSON *e = push(f, seeds, cJSON_CreateObject());
        num(f, e, "seed", (double)s->seed);
        num(f, e, "test_top1_pct", s->test_top1);
        num(f, e, "test_loss", s->test_loss);
        num(f, e, "best_top1_pct", s->best_top1);
        num(f, e, "best_epoch", s->best_epoch < 0 ? NAN : s->best_epoch);
        num(f, e, "params", s->params);
        num(f, e, "macs", s->macs);
        num(f, e, "model_bytes", s->model_bytes);
        num(f, e, "latency_ms", s->latency_ms);
        num(f, e, "train_s", s->train_s);
        num(f, e, "cpu", s->cpu < 0 ? NAN : s->cpu + 1);
    }
    cJSON *epochs = child(f, o, "epochs", 1);
    for (int32_t k = 0; k < run->n_epochs; k++) {
        const rg_report_epoch *ep = &run->epochs[k];
        cJSON *e = push(f, epochs, cJSON_CreateObject());
        num(f, e, "epoch", ep->epoch);
        num(f, e, "n_seeds", ep->n);
        num(f, e, "train_loss", ep->train_loss);
        num(f, e, "train_top1_pct", ep->train_top1);
        num(f, e, "test_loss", ep->test_loss);
        num(f, e, "test_top1_pct", ep->test_top1);
    }
    if (!run->classes) {
        num(f, o, "confusion", NAN);
        return;
    }
    cJSON *m = child(f, o, "confusion", 1);
    for (int32_t i = 0; i < run->classes; i++) {
        cJSON *row = push(f, m, cJSON_CreateArray());
        for (int32_t j = 0; j < run->classes; j++)
            push(f, row, cJSON_CreateNumber((double)run->confusion[(size_t)i * run->classes + j]));
    }
}

static void add_comparison(int *f, cJSON *cmps, const rg_report_comparison *c)
{
    cJSON *o = push(f, cmps, cJSON_CreateObject());
    str(f, o, "name", c->name);
    str(f, o, "baseline", c->baseline);
    str(f, o, "treatment", c->treatment);
    cJSON *seeds = child(f, o, "paired_seeds", 1);
    for (int32_t k = 0; k < c->n_pairs; k++) push(f, seeds, cJSON_CreateNumber((double)c->seeds[k]));
    cJSON *d = child(f, o, "difference_pp", 0);
    num(f, d, "mean", c->diff.mean);
    num(f, d, "sd", c->diff.sd);
    interval(f, d, "ci95", c->diff.lo, c->diff.hi);
    num(f, o, "t", c->diff.t);
    num(f, o, "p_value", c->diff.p);
    str(f, o, "method", rg_paired_method_name(c->diff.method));
    str(f, o, "verdict", rg_verdict_name(c->diff.verdict));
    if (c->reference) {
        str(f, o, "reference", c->reference);
        num(f, o, "gap_closed", c->gap_closed);
    }
}

char *rg_report_json(const rg_report *r)
{
    int failed = 0, *f = &failed;
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    str(f, root, "experiment", r->experiment);
    str(f, root, "store", r->store_path);
    str(f, root, "recipe", r->recipe_path);
    str(f, root, "updated_at", r->updated_at);
    num(f, root, "confidence_level", RG_STATS_LEVEL);
    str(f, root, "best_run", r->runs[r->best].name);
    cJSON *runs = child(f, root, "runs", 1);
    for (int32_t i = 0; i < r->n_runs; i++) add_run(f, runs, r, &r->runs[i]);
    cJSON *cmps = child(f, root, "comparisons", 1);
    for (int32_t i = 0; i < r->n_comparisons; i++) add_comparison(f, cmps, &r->comparisons[i]);
    cJSON *u = child(f, root, "unfinished", 0);
    num(f, u, "pending", r->n_pending);
    num(f, u, "running", r->n_running);
    num(f, u, "failed", r->n_failed);
    cJSON *envs = child(f, root, "environment", 1);
    for (int32_t i = 0; i < r->n_envs; i++) {
        const rg_report_env *e = &r->envs[i];
        cJSON *o = push(f, envs, cJSON_CreateObject());
        str(f, o, "git_commit", e->git_commit);
        str(f, o, "compiler", e->compiler);
        str(f, o, "cpu_model", e->cpu_model);
        str(f, o, "cpu_features", e->cpu_features);
        str(f, o, "hostname", e->hostname);
        str(f, o, "regain_version", e->regain_version);
        str(f, o, "blas_core", e->blas_core);
        num(f, o, "threads", e->threads < 0 ? NAN : e->threads);
        num(f, o, "n_runs", e->n_runs);
    }
    cJSON *cpus = child(f, root, "cpus", 1);
    for (int32_t i = 0; i < r->n_cpus; i++) {
        cJSON *o = push(f, cpus, cJSON_CreateObject());
        num(f, o, "cpu", i + 1);
        str(f, o, "model", r->cpus[i].model);
        str(f, o, "features", r->cpus[i].features);
        num(f, o, "n_seeds", r->cpus[i].n_seeds);
    }
    char *text = failed ? NULL : cJSON_Print(root);
    cJSON_Delete(root);
    return text;
}

/* ---- CSV -------------------------------------------------------------------------- */

static void field(rg_text *o, double v)
{
    if (!isnan(v)) rg_text_printf(o, ",%.10g", v);
    else rg_text_put(o, ",");
}

void rg_report_csv(const rg_report *r, rg_text *o)
{
    rg_text_put(o, "experiment,run,seed,test_top1_pct,test_loss,best_top1_pct,best_epoch,params,macs,model_bytes,"
                   "latency_ms,train_s,cpu_model,cpu_features\n");
    for (int32_t i = 0; i < r->n_runs; i++)
        for (int32_t k = 0; k < r->runs[i].n_seeds; k++) {
            const rg_report_seed *s = &r->runs[i].seeds[k];
            rg_text_csv(o, r->experiment);
            rg_text_put(o, ",");
            rg_text_csv(o, r->runs[i].name);
            rg_text_printf(o, ",%lld", (long long)s->seed);
            field(o, s->test_top1);
            field(o, s->test_loss);
            field(o, s->best_top1);
            field(o, s->best_epoch < 0 ? NAN : s->best_epoch);
            field(o, s->params);
            field(o, s->macs);
            field(o, s->model_bytes);
            field(o, s->latency_ms);
            field(o, s->train_s);
            const rg_report_cpu *c = s->cpu < 0 ? NULL : &r->cpus[s->cpu];
            rg_text_put(o, ",");
            if (c && c->model) rg_text_csv(o, c->model);
            rg_text_put(o, ",");
            if (c && c->features) rg_text_csv(o, c->features);
            rg_text_put(o, "\n");
        }
}
