/* The experiment store, read-only, into an rg_report (see report.h and
 * store/schema.h for the tables). */
#include "regain/report.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store/schema.h"

/* A writer holds the store's lock for one short transaction at a time. */
#define BUSY_TIMEOUT_MS 10000
/* The largest confusion matrix accepted (classes). */
#define MAX_CLASSES 4096

typedef struct {
    sqlite3 *db;
    const char *path, *experiment;
    rg_error *err;
    int version; /* the store's schema version */
} loader;

/* ---- errors ----------------------------------------------------------------------- */

static rg_status sql_fail(loader *L, const char *what)
{
    int code = sqlite3_extended_errcode(L->db) & 0xff;
    rg_status st = RG_ERR_IO;
    if (code == SQLITE_NOTADB || code == SQLITE_CORRUPT || code == SQLITE_ERROR) st = RG_ERR_FORMAT;
    else if (code == SQLITE_NOMEM) st = RG_ERR_NOMEM;
    const char *hint = code == SQLITE_BUSY || code == SQLITE_LOCKED ? " (the store stayed locked by a writer)" : "";
    return rg_fail(L->err, st, "%s: %s: %s%s", L->path, what, sqlite3_errmsg(L->db), hint);
}

static rg_status seed_fail(loader *L, const char *run, int64_t seed, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static rg_status seed_fail(loader *L, const char *run, int64_t seed, const char *fmt, ...)
{
    char what[RG_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return rg_fail(L->err, RG_ERR_FORMAT, "%s: experiment '%s', run '%s' seed %lld: %s", L->path, L->experiment,
                   run, (long long)seed, what);
}

/* ---- small helpers ---------------------------------------------------------------- */

static char *dup_text(const char *s, rg_error *err)
{
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *p = rg_malloc(n, err);
    if (p) memcpy(p, s, n);
    return p;
}

/* Column i as a new string; NULL for SQL NULL. *ok is cleared on allocation failure. */
static char *col_text(sqlite3_stmt *s, int i, int *ok, rg_error *err)
{
    const char *t = (const char *)sqlite3_column_text(s, i);
    if (!t) return NULL;
    char *p = dup_text(t, err);
    if (!p) *ok = 0;
    return p;
}

static double col_real(sqlite3_stmt *s, int i)
{
    return sqlite3_column_type(s, i) == SQLITE_NULL ? NAN : sqlite3_column_double(s, i);
}

static rg_status prepare(loader *L, const char *sql, sqlite3_stmt **st, const char *what)
{
    if (sqlite3_prepare_v2(L->db, sql, -1, st, NULL) != SQLITE_OK) return sql_fail(L, what);
    return RG_OK;
}

static void *grow(void *p, int32_t n, size_t elem, rg_error *err)
{
    /* n is the new count; growing one at a time is fine at these sizes
     * (tens of runs), and realloc keeps it simple. */
    void *q = realloc(p, (size_t)n * elem);
    if (!q) rg_fail(err, RG_ERR_NOMEM, "out of memory reading the experiment store");
    return q;
}

/* An accuracy column: a fraction in [0, 1] in the store, percent here. */
static rg_status accuracy(loader *L, sqlite3_stmt *s, int i, const char *run, int64_t seed, const char *field,
                          double *out)
{
    double v = col_real(s, i);
    if (!isnan(v) && (v < 0.0 || v > 1.0))
        return seed_fail(L, run, seed, "%s is %g, outside [0, 1]", field, v);
    *out = 100.0 * v;
    return RG_OK;
}

/* ---- opening ---------------------------------------------------------------------- */

static rg_status open_store(loader *L)
{
    struct stat sb;
    if (stat(L->path, &sb) != 0) {
        if (errno == ENOENT)
            return rg_fail(L->err, RG_ERR_NOTFOUND, "%s: no experiment store here (`regain run RECIPE` creates it)",
                           L->path);
        return rg_fail(L->err, RG_ERR_IO, "%s: %s", L->path, strerror(errno));
    }
    if (!S_ISREG(sb.st_mode)) return rg_fail(L->err, RG_ERR_IO, "%s: not a regular file", L->path);
    if (sqlite3_open_v2(L->path, &L->db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        if (!L->db) return rg_fail(L->err, RG_ERR_NOMEM, "%s: out of memory opening the store", L->path);
        return sql_fail(L, "cannot open the experiment store");
    }
    sqlite3_busy_timeout(L->db, BUSY_TIMEOUT_MS);
    sqlite3_stmt *s;
    rg_status st = prepare(L, "PRAGMA user_version", &s, "not a readable SQLite database");
    if (st) return st;
    int rc = sqlite3_step(s);
    int version = rc == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
    sqlite3_finalize(s);
    if (rc != SQLITE_ROW) return sql_fail(L, "not a readable SQLite database");
    if (version == 0)
        return rg_fail(L->err, RG_ERR_FORMAT, "%s: not a regain experiment store (no schema version)", L->path);
    /* older versions lack columns the report reads only from version 2 on
     * (comparisons.reference) and 5 on (environment.blas_core), or does not
     * read (runs.imported_from) */
    if (version < 1 || version > RG_STORE_SCHEMA_VERSION)
        return rg_fail(L->err, RG_ERR_FORMAT,
                       "%s: experiment store schema version %d, but this regain reads versions 1 to %d", L->path,
                       version, RG_STORE_SCHEMA_VERSION);
    L->version = version;
    return RG_OK;
}

/* The experiment's id, or RG_ERR_NOTFOUND listing the known experiments. */
static rg_status find_experiment(loader *L, rg_report *r, int64_t *id)
{
    sqlite3_stmt *s;
    rg_status st = prepare(L, "SELECT id, recipe_path, updated_at FROM experiments WHERE name = ?", &s,
                           "reading the experiments");
    if (st) return st;
    sqlite3_bind_text(s, 1, L->experiment, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s), ok = 1;
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(s, 0);
        r->recipe_path = col_text(s, 1, &ok, L->err);
        r->updated_at = col_text(s, 2, &ok, L->err);
    }
    sqlite3_finalize(s);
    if (rc == SQLITE_ROW) return ok ? RG_OK : RG_ERR_NOMEM;
    if (rc != SQLITE_DONE) return sql_fail(L, "reading the experiments");

    char known[300] = "";
    size_t used = 0;
    if (prepare(L, "SELECT name FROM experiments ORDER BY name", &s, "reading the experiments") == RG_OK) {
        while (sqlite3_step(s) == SQLITE_ROW && used < sizeof known - 1) {
            int n = snprintf(known + used, sizeof known - used, "%s%s", used ? ", " : "",
                             (const char *)sqlite3_column_text(s, 0));
            used = n < 0 ? used : used + (size_t)n;
        }
        sqlite3_finalize(s);
    }
    if (used >= sizeof known - 1) strcpy(known + sizeof known - 5, "...");
    return rg_fail(L->err, RG_ERR_NOTFOUND, "%s: no experiment '%s' in this store (%s%s)", L->path, L->experiment,
                   used ? "it has: " : "it has none yet", known);
}

/* ---- runs ------------------------------------------------------------------------- */

/* Parses a confusion matrix (a JSON array of rows, each an array of
 * non-negative integer counts, as many rows as columns) and adds it into
 * run->confusion. */
static rg_status add_confusion(loader *L, rg_report_run *run, int64_t seed, const char *json)
{
    cJSON *m = cJSON_Parse(json);
    rg_status st = RG_OK;
    if (!m || !cJSON_IsArray(m)) {
        st = seed_fail(L, run->name, seed, "final_metrics.confusion is not a JSON array");
        goto done;
    }
    int k = cJSON_GetArraySize(m);
    if (k < 1 || k > MAX_CLASSES) {
        st = seed_fail(L, run->name, seed, "final_metrics.confusion has %d rows (expected 1 to %d)", k, MAX_CLASSES);
        goto done;
    }
    if (run->classes && run->classes != k) {
        st = seed_fail(L, run->name, seed, "final_metrics.confusion has %d classes but another seed has %d", k,
                       run->classes);
        goto done;
    }
    if (!run->confusion) {
        run->confusion = rg_calloc((size_t)k * (size_t)k, sizeof *run->confusion, L->err);
        if (!run->confusion) {
            st = RG_ERR_NOMEM;
            goto done;
        }
        run->classes = k;
    }
    int i = 0;
    const cJSON *row;
    cJSON_ArrayForEach(row, m)
    {
        if (!cJSON_IsArray(row) || cJSON_GetArraySize(row) != k) {
            st = seed_fail(L, run->name, seed, "final_metrics.confusion row %d is not an array of %d counts", i, k);
            goto done;
        }
        int j = 0;
        const cJSON *cell;
        cJSON_ArrayForEach(cell, row)
        {
            double v = cJSON_IsNumber(cell) ? cell->valuedouble : -1.0;
            if (!(v >= 0.0 && v <= 9007199254740992.0) || v != floor(v)) {
                st = seed_fail(L, run->name, seed,
                               "final_metrics.confusion[%d][%d] is not a non-negative integer count", i, j);
                goto done;
            }
            run->confusion[(size_t)i * k + j] += (int64_t)v;
            j++;
        }
        i++;
    }
done:
    cJSON_Delete(m);
    return st;
}

static rg_report_run *find_run(rg_report *r, const char *name)
{
    for (int32_t i = 0; i < r->n_runs; i++)
        if (!strcmp(r->runs[i].name, name)) return &r->runs[i];
    return NULL;
}

/* The per-epoch curves of run (all its seeds), averaged per epoch over the
 * seeds that recorded each value. */
typedef struct {
    double sum[4];
    int32_t cnt[4], n;
} epoch_acc;

static rg_status load_epochs(loader *L, rg_report_run *run, const int64_t *row_ids)
{
    enum { MAX_EPOCH = 100000 };   /* beyond any real run; bounds the table below */
    sqlite3_stmt *s;
    rg_status st = prepare(L,
                           "SELECT epoch, train_loss, train_top1, test_loss, test_top1 FROM epoch_metrics "
                           "WHERE run_id = ? ORDER BY epoch",
                           &s, "reading epoch_metrics");
    if (st) return st;
    epoch_acc *acc = NULL;
    int32_t n_acc = 0;
    for (int32_t k = 0; k < run->n_seeds && !st; k++) {
        int64_t seed = run->seeds[k].seed;
        sqlite3_reset(s);
        sqlite3_bind_int64(s, 1, row_ids[k]);
        int rc = SQLITE_DONE;
        while (!st && (rc = sqlite3_step(s)) == SQLITE_ROW) {
            int64_t e = sqlite3_column_int64(s, 0);
            if (e < 0 || e > MAX_EPOCH) {
                st = seed_fail(L, run->name, seed, "epoch_metrics has epoch %lld", (long long)e);
                break;
            }
            if (e >= n_acc) {
                epoch_acc *p = realloc(acc, (size_t)(e + 1) * sizeof *p);
                if (!p) {
                    st = rg_fail(L->err, RG_ERR_NOMEM, "out of memory reading epoch_metrics");
                    break;
                }
                memset(p + n_acc, 0, (size_t)(e + 1 - n_acc) * sizeof *p);
                acc = p;
                n_acc = (int32_t)e + 1;
            }
            double v[4] = {col_real(s, 1), 0, col_real(s, 3), 0};
            if ((st = accuracy(L, s, 2, run->name, seed, "epoch_metrics.train_top1", &v[1])) ||
                (st = accuracy(L, s, 4, run->name, seed, "epoch_metrics.test_top1", &v[3])))
                break;
            acc[e].n++;
            for (int f = 0; f < 4; f++)
                if (!isnan(v[f])) acc[e].sum[f] += v[f], acc[e].cnt[f]++;
        }
        if (!st && rc != SQLITE_DONE) st = sql_fail(L, "reading epoch_metrics");
    }
    sqlite3_finalize(s);
    int32_t used = 0;
    for (int32_t e = 0; e < n_acc; e++) used += acc[e].n > 0;
    if (!st && used) {
        run->epochs = rg_calloc((size_t)used, sizeof *run->epochs, L->err);
        if (!run->epochs) st = RG_ERR_NOMEM;
        for (int32_t e = 0; e < n_acc && !st; e++) {
            if (!acc[e].n) continue;
            rg_report_epoch *o = &run->epochs[run->n_epochs++];
            double m[4];
            for (int f = 0; f < 4; f++) m[f] = acc[e].cnt[f] ? acc[e].sum[f] / acc[e].cnt[f] : NAN;
            *o = (rg_report_epoch){.epoch = e, .n = acc[e].n, .train_loss = m[0], .train_top1 = m[1],
                                   .test_loss = m[2], .test_top1 = m[3]};
        }
    }
    free(acc);
    return st;
}

enum { ANY_CPU = -2 };

/* Mean of one field over the seeds that recorded it, of those that ran on
 * CPU `cpu` (ANY_CPU: of all). */
static double seed_mean(const rg_report_run *run, size_t offset, int32_t cpu)
{
    double s = 0.0;
    int32_t n = 0;
    for (int32_t k = 0; k < run->n_seeds; k++) {
        double v = *(const double *)((const char *)&run->seeds[k] + offset);
        if (!isnan(v) && (cpu == ANY_CPU || run->seeds[k].cpu == cpu)) s += v, n++;
    }
    return n ? s / n : NAN;
}

/* The index in r->cpus of the CPU (model, features), added when new; -1
 * when neither is recorded. *st is set when out of memory. */
static int32_t cpu_index(loader *L, rg_report *r, const char *model, const char *features, rg_status *st)
{
    if (!model && !features) return -1;
    for (int32_t i = 0; i < r->n_cpus; i++)
        if (!strcmp(r->cpus[i].model ? r->cpus[i].model : "", model ? model : "") &&
            !strcmp(r->cpus[i].features ? r->cpus[i].features : "", features ? features : ""))
            return i;
    rg_report_cpu *p = grow(r->cpus, r->n_cpus + 1, sizeof *p, L->err);
    if (!p) {
        *st = RG_ERR_NOMEM;
        return -1;
    }
    r->cpus = p;
    rg_report_cpu *c = &r->cpus[r->n_cpus];
    *c = (rg_report_cpu){.model = dup_text(model, L->err), .features = dup_text(features, L->err)};
    r->n_cpus++;
    if ((model && !c->model) || (features && !c->features)) *st = RG_ERR_NOMEM;
    return r->n_cpus - 1;
}

/* Reads every run row of the experiment: finished ones become seeds of
 * their run name, the others are counted. */
static rg_status load_runs(loader *L, rg_report *r, int64_t exp_id)
{
    sqlite3_stmt *s;
    rg_status st = prepare(L,
                           "SELECT r.id, r.name, r.seed, r.status, r.wall_s, f.run_id, f.test_top1, f.test_loss, "
                           "f.best_top1, f.best_epoch, f.params, f.macs, f.model_bytes, f.latency_ms, f.train_s, "
                           "f.confusion, e.cpu_model, e.cpu_features FROM runs r "
                           "LEFT JOIN final_metrics f ON f.run_id = r.id LEFT JOIN environment e ON e.run_id = r.id "
                           "WHERE r.experiment_id = ? ORDER BY r.id",
                           &s, "reading the runs");
    if (st) return st;
    sqlite3_bind_int64(s, 1, exp_id);
    /* Store row ids of each run name's seeds, parallel to runs[i].seeds. */
    int64_t **ids = NULL;
    int rc = SQLITE_DONE;
    while (!st && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(s, 1);
        const char *status = (const char *)sqlite3_column_text(s, 3);
        int64_t seed = sqlite3_column_int64(s, 2);
        if (!name || !status) continue;
        if (strcmp(status, "done") != 0) {
            if (!strcmp(status, "failed")) r->n_failed++;
            else if (!strcmp(status, "running")) r->n_running++;
            else r->n_pending++;
            continue;
        }
        if (sqlite3_column_type(s, 5) == SQLITE_NULL || sqlite3_column_type(s, 6) == SQLITE_NULL) {
            st = seed_fail(L, name, seed, "the run is done but final_metrics has no test_top1");
            break;
        }
        rg_report_run *run = find_run(r, name);
        if (!run) {
            rg_report_run *p = grow(r->runs, r->n_runs + 1, sizeof *p, L->err);
            int64_t **q = p ? grow(ids, r->n_runs + 1, sizeof *q, L->err) : NULL;
            if (p) r->runs = p;
            if (q) ids = q;
            if (!p || !q) {
                st = RG_ERR_NOMEM;
                break;
            }
            ids[r->n_runs] = NULL;
            run = &r->runs[r->n_runs++];
            *run = (rg_report_run){0};
            if (!(run->name = dup_text(name, L->err))) {
                st = RG_ERR_NOMEM;
                break;
            }
        }
        int32_t ri = (int32_t)(run - r->runs);
        rg_report_seed *sp = grow(run->seeds, run->n_seeds + 1, sizeof *sp, L->err);
        int64_t *ip = sp ? grow(ids[ri], run->n_seeds + 1, sizeof *ip, L->err) : NULL;
        if (sp) run->seeds = sp;
        if (ip) ids[ri] = ip;
        if (!sp || !ip) {
            st = RG_ERR_NOMEM;
            break;
        }
        ids[ri][run->n_seeds] = sqlite3_column_int64(s, 0);
        rg_report_seed *o = &run->seeds[run->n_seeds++];
        *o = (rg_report_seed){.seed = seed,
                              .test_loss = col_real(s, 7),
                              .best_epoch = sqlite3_column_type(s, 9) == SQLITE_NULL ? -1 : sqlite3_column_int(s, 9),
                              .params = col_real(s, 10),
                              .macs = col_real(s, 11),
                              .model_bytes = col_real(s, 12),
                              .latency_ms = col_real(s, 13),
                              .train_s = col_real(s, 14)};
        if (isnan(o->train_s)) o->train_s = col_real(s, 4);
        o->cpu = cpu_index(L, r, (const char *)sqlite3_column_text(s, 16), (const char *)sqlite3_column_text(s, 17),
                           &st);
        if (o->cpu >= 0) r->cpus[o->cpu].n_seeds++;
        if (st) break;
        if ((st = accuracy(L, s, 6, name, seed, "final_metrics.test_top1", &o->test_top1)) ||
            (st = accuracy(L, s, 8, name, seed, "final_metrics.best_top1", &o->best_top1)))
            break;
        const char *conf = (const char *)sqlite3_column_text(s, 15);
        if (conf && (st = add_confusion(L, run, seed, conf))) break;
    }
    if (!st && rc != SQLITE_DONE) st = sql_fail(L, "reading the runs");
    sqlite3_finalize(s);

    for (int32_t i = 0; i < r->n_runs && !st; i++) {
        rg_report_run *run = &r->runs[i];
        /* Seeds in ascending order, their row ids along with them. */
        for (int32_t a = 1; a < run->n_seeds; a++)
            for (int32_t b = a; b > 0 && run->seeds[b - 1].seed > run->seeds[b].seed; b--) {
                rg_report_seed t = run->seeds[b];
                run->seeds[b] = run->seeds[b - 1], run->seeds[b - 1] = t;
                int64_t u = ids[i][b];
                ids[i][b] = ids[i][b - 1], ids[i][b - 1] = u;
            }
        st = load_epochs(L, run, ids[i]);
    }
    if (ids)
        for (int32_t i = 0; i < r->n_runs; i++) free(ids[i]);
    free(ids);
    return st;
}

static rg_status summarize_runs(rg_report *r, rg_error *err)
{
    r->timing_cpu = -1;
    for (int32_t i = 0; i < r->n_cpus; i++)
        if (r->timing_cpu < 0 || r->cpus[i].n_seeds > r->cpus[r->timing_cpu].n_seeds) r->timing_cpu = i;
    for (int32_t i = 0; i < r->n_runs; i++) {
        rg_report_run *run = &r->runs[i];
        double *top1 = rg_malloc((size_t)run->n_seeds * sizeof *top1, err);
        if (!top1) return RG_ERR_NOMEM;
        for (int32_t k = 0; k < run->n_seeds; k++) top1[k] = run->seeds[k].test_top1;
        rg_stats_summarize(top1, (size_t)run->n_seeds, &run->top1);
        free(top1);
        /* An accuracy lies in [0, 100]: with two or three seeds the t
         * interval can reach past either end, which says nothing more. */
        if (run->top1.lo < 0) run->top1.lo = 0;
        if (run->top1.hi > 100) run->top1.hi = 100;
        run->params = seed_mean(run, offsetof(rg_report_seed, params), ANY_CPU);
        run->macs = seed_mean(run, offsetof(rg_report_seed, macs), ANY_CPU);
        run->model_bytes = seed_mean(run, offsetof(rg_report_seed, model_bytes), ANY_CPU);
        /* Times measured on different CPUs do not average: an AVX2 machine
         * and an AVX-512 one sold under one model name differ twofold. */
        int32_t on = r->n_cpus > 1 ? r->timing_cpu : ANY_CPU;
        if (on != ANY_CPU) {
            run->timed_elsewhere = 1;
            for (int32_t k = 0; k < run->n_seeds; k++) run->timed_elsewhere &= run->seeds[k].cpu != on;
            if (run->timed_elsewhere) on = ANY_CPU;
        }
        run->latency_ms = seed_mean(run, offsetof(rg_report_seed, latency_ms), on);
        run->train_s = seed_mean(run, offsetof(rg_report_seed, train_s), on);
    }
    /* A teacher is what the others are measured against, so the best run
     * is the best of the rest (a teacher only when every run is one). */
    r->best = -1;
    for (int32_t pass = 0; pass < 2 && r->best < 0; pass++)
        for (int32_t i = 0; i < r->n_runs; i++)
            if ((pass || !r->runs[i].is_teacher) &&
                (r->best < 0 || r->runs[i].top1.mean > r->runs[r->best].top1.mean))
                r->best = i;
    return RG_OK;
}

/* The run name a configuration's KEY refers to ("KEY = @NAME:best"), as
 * a pointer into text and its length; NULL when KEY names no run. */
static const char *teacher_run(const char *text, const char *key, size_t *len)
{
    char pat[32];
    snprintf(pat, sizeof pat, "\n%s = @", key);
    const char *p = strstr(text, pat);
    if (!p) return NULL;
    p += strlen(pat);
    *len = strcspn(p, ":\n");
    return p;
}

/* Marks the runs another run of the experiment distills from. */
static rg_status mark_teachers(loader *L, rg_report *r, int64_t exp_id)
{
    static const char *const keys[] = {"teacher", "teacher2", "teacher3"};
    sqlite3_stmt *s;
    rg_status st = prepare(L, "SELECT DISTINCT config_text FROM runs WHERE experiment_id = ?", &s,
                           "reading the configurations");
    if (st) return st;
    sqlite3_bind_int64(s, 1, exp_id);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *text = (const char *)sqlite3_column_text(s, 0);
        for (size_t k = 0; text && k < sizeof keys / sizeof *keys; k++) {
            size_t len;
            const char *name = teacher_run(text, keys[k], &len);
            for (int32_t i = 0; name && i < r->n_runs; i++)
                if (strlen(r->runs[i].name) == len && !memcmp(r->runs[i].name, name, len))
                    r->runs[i].is_teacher = 1;
        }
    }
    if (rc != SQLITE_DONE) st = sql_fail(L, "reading the configurations");
    sqlite3_finalize(s);
    return st;
}

/* ---- comparisons and environment --------------------------------------------------- */

/* Pairs baseline and treatment seeds (both sorted) and compares them. */
static rg_status compare(loader *L, rg_report *r, rg_report_comparison *c)
{
    const rg_report_run *b = find_run(r, c->baseline), *t = find_run(r, c->treatment);
    int32_t cap = b && t ? (b->n_seeds < t->n_seeds ? b->n_seeds : t->n_seeds) : 0;
    double *xb = NULL, *xt = NULL;
    if (cap) {
        c->seeds = rg_malloc((size_t)cap * sizeof *c->seeds, L->err);
        xb = rg_malloc((size_t)cap * sizeof *xb, L->err);
        xt = rg_malloc((size_t)cap * sizeof *xt, L->err);
        if (!c->seeds || !xb || !xt) {
            free(xb), free(xt);
            return RG_ERR_NOMEM;
        }
        for (int32_t i = 0, j = 0; i < b->n_seeds && j < t->n_seeds;) {
            if (b->seeds[i].seed < t->seeds[j].seed) i++;
            else if (b->seeds[i].seed > t->seeds[j].seed) j++;
            else {
                c->seeds[c->n_pairs] = b->seeds[i].seed;
                xb[c->n_pairs] = b->seeds[i].test_top1;
                xt[c->n_pairs++] = t->seeds[j].test_top1;
                i++, j++;
            }
        }
    }
    rg_status st = rg_stats_paired(xb, xt, c->n_pairs, &c->diff, L->err);
    free(xb), free(xt);
    return st;
}

/* The share of the reference-baseline gap the treatment closes. */
static void gap_share(rg_report *r, rg_report_comparison *c)
{
    const rg_report_run *t = c->reference ? find_run(r, c->reference) : NULL, *b = find_run(r, c->baseline);
    /* a reference no better than the baseline leaves no gap to close */
    if (t && b && t->n_seeds && b->n_seeds && t->top1.mean > b->top1.mean)
        c->gap_closed = c->diff.mean / (t->top1.mean - b->top1.mean);
}

/* The comparison's reference run: the recipe's `reference`, else the run
 * named by the treatment's `teacher` key ("teacher = @NAME:best" in its
 * configuration text); then the gap it closes. */
static rg_status reference_gap(loader *L, rg_report *r, rg_report_comparison *c, int64_t exp_id)
{
    c->gap_closed = NAN;
    if (c->reference) {
        gap_share(r, c);
        return RG_OK;
    }
    sqlite3_stmt *s;
    rg_status st = prepare(L, "SELECT config_text FROM runs WHERE experiment_id = ? AND name = ? LIMIT 1", &s,
                           "reading a configuration");
    if (st) return st;
    sqlite3_bind_int64(s, 1, exp_id);
    sqlite3_bind_text(s, 2, c->treatment, -1, SQLITE_STATIC);
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0)) {
        size_t len;
        const char *p = teacher_run((const char *)sqlite3_column_text(s, 0), "teacher", &len);
        if (p) {
            c->reference = rg_malloc(len + 1, L->err);
            if (!c->reference) st = RG_ERR_NOMEM;
            else memcpy(c->reference, p, len), c->reference[len] = 0;
        }
    }
    sqlite3_finalize(s);
    if (!st) gap_share(r, c);
    return st;
}

static rg_status load_comparisons(loader *L, rg_report *r, int64_t exp_id)
{
    sqlite3_stmt *s;
    rg_status st = prepare(L,
                           L->version >= RG_STORE_SINCE_REFERENCE
                               ? "SELECT name, baseline, treatment, reference FROM comparisons "
                                 "WHERE experiment_id = ? ORDER BY rowid"
                               : "SELECT name, baseline, treatment, NULL FROM comparisons "
                                 "WHERE experiment_id = ? ORDER BY rowid",
                           &s, "reading the comparisons");
    if (st) return st;
    sqlite3_bind_int64(s, 1, exp_id);
    int rc = SQLITE_DONE;
    while (!st && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        rg_report_comparison *p = grow(r->comparisons, r->n_comparisons + 1, sizeof *p, L->err);
        if (!p) {
            st = RG_ERR_NOMEM;
            break;
        }
        r->comparisons = p;
        rg_report_comparison *c = &r->comparisons[r->n_comparisons++];
        *c = (rg_report_comparison){0};
        int ok = 1;
        c->name = col_text(s, 0, &ok, L->err);
        c->baseline = col_text(s, 1, &ok, L->err);
        c->treatment = col_text(s, 2, &ok, L->err);
        c->reference = col_text(s, 3, &ok, L->err);
        if (!ok) st = RG_ERR_NOMEM;
        else if (!c->name || !c->baseline || !c->treatment)
            st = rg_fail(L->err, RG_ERR_FORMAT, "%s: experiment '%s': a comparison has a NULL name", L->path,
                         L->experiment);
        else st = compare(L, r, c);
        if (!st) st = reference_gap(L, r, c, exp_id);
    }
    if (!st && rc != SQLITE_DONE) st = sql_fail(L, "reading the comparisons");
    sqlite3_finalize(s);
    return st;
}

static rg_status load_envs(loader *L, rg_report *r, int64_t exp_id)
{
    sqlite3_stmt *s;
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT e.git_commit, e.compiler, e.cpu_model, e.cpu_features, e.hostname, e.regain_version, %s, "
             "e.threads, COUNT(*) FROM environment e JOIN runs r ON r.id = e.run_id "
             "WHERE r.experiment_id = ? AND r.status = 'done' GROUP BY 1, 2, 3, 4, 5, 6, 7, 8 ORDER BY MIN(r.id)",
             L->version >= RG_STORE_SINCE_BLAS_CORE ? "e.blas_core" : "NULL");
    rg_status st = prepare(L, sql, &s, "reading the environment");
    if (st) return st;
    sqlite3_bind_int64(s, 1, exp_id);
    int rc = SQLITE_DONE;
    while (!st && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        rg_report_env *p = grow(r->envs, r->n_envs + 1, sizeof *p, L->err);
        if (!p) {
            st = RG_ERR_NOMEM;
            break;
        }
        r->envs = p;
        rg_report_env *e = &r->envs[r->n_envs++];
        int ok = 1;
        *e = (rg_report_env){.git_commit = col_text(s, 0, &ok, L->err),
                             .compiler = col_text(s, 1, &ok, L->err),
                             .cpu_model = col_text(s, 2, &ok, L->err),
                             .cpu_features = col_text(s, 3, &ok, L->err),
                             .hostname = col_text(s, 4, &ok, L->err),
                             .regain_version = col_text(s, 5, &ok, L->err),
                             .blas_core = col_text(s, 6, &ok, L->err),
                             .threads = sqlite3_column_type(s, 7) == SQLITE_NULL ? -1 : sqlite3_column_int(s, 7),
                             .n_runs = sqlite3_column_int(s, 8)};
        if (!ok) st = RG_ERR_NOMEM;
    }
    if (!st && rc != SQLITE_DONE) st = sql_fail(L, "reading the environment");
    sqlite3_finalize(s);
    return st;
}

/* ---- entry points ------------------------------------------------------------------- */

rg_status rg_report_load(const char *store_path, const char *experiment, rg_report *out, rg_error *err)
{
    *out = (rg_report){0};
    loader L = {.path = store_path, .experiment = experiment, .err = err};
    int64_t exp_id = 0;
    rg_status st = open_store(&L);
    if (!st) st = find_experiment(&L, out, &exp_id);
    /* One read transaction: a writer committing meanwhile cannot make the
     * runs, curves and comparisons disagree. */
    if (!st && sqlite3_exec(L.db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) st = sql_fail(&L, "starting a read");
    if (!st) st = load_runs(&L, out, exp_id);
    if (!st && out->n_runs == 0) {
        int32_t other = out->n_pending + out->n_running + out->n_failed;
        st = rg_fail(err, RG_ERR_NOTFOUND,
                     "%s: experiment '%s' has no finished run yet (%d pending, %d running, %d failed)%s", store_path,
                     experiment, out->n_pending, out->n_running, out->n_failed,
                     other ? "" : "; run its recipe with `regain run`");
    }
    if (!st) st = mark_teachers(&L, out, exp_id);
    if (!st) st = summarize_runs(out, err);
    if (!st) st = load_comparisons(&L, out, exp_id);
    if (!st) st = load_envs(&L, out, exp_id);
    if (!st && !(out->experiment = dup_text(experiment, err))) st = RG_ERR_NOMEM;
    if (!st && !(out->store_path = dup_text(store_path, err))) st = RG_ERR_NOMEM;
    if (L.db) sqlite3_close(L.db);  /* ends the read transaction */
    if (st) rg_report_free(out);
    return st;
}

void rg_report_free(rg_report *r)
{
    if (!r) return;
    for (int32_t i = 0; i < r->n_runs; i++) {
        free(r->runs[i].name);
        free(r->runs[i].seeds);
        free(r->runs[i].epochs);
        free(r->runs[i].confusion);
    }
    for (int32_t i = 0; i < r->n_comparisons; i++) {
        free(r->comparisons[i].name);
        free(r->comparisons[i].baseline);
        free(r->comparisons[i].treatment);
        free(r->comparisons[i].seeds);
        free(r->comparisons[i].reference);
    }
    for (int32_t i = 0; i < r->n_envs; i++) {
        rg_report_env *e = &r->envs[i];
        free(e->git_commit), free(e->compiler), free(e->cpu_model), free(e->cpu_features);
        free(e->hostname), free(e->regain_version), free(e->blas_core);
    }
    for (int32_t i = 0; i < r->n_cpus; i++) free(r->cpus[i].model), free(r->cpus[i].features);
    free(r->runs), free(r->comparisons), free(r->envs), free(r->cpus);
    free(r->experiment), free(r->store_path), free(r->recipe_path), free(r->updated_at);
    *r = (rg_report){0};
}
