/* Experiment stores for the report tests, built with plain SQL on the
 * store's own schema (store/schema.h), so that the report is tested without
 * training anything. Header-only (static inline) so that each test program
 * that needs it just includes it. */
#ifndef REGAIN_TEST_REPORT_FIXTURE_H
#define REGAIN_TEST_REPORT_FIXTURE_H

#include <math.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/schema.h"
#include "test_support.h"

/* Runs SQL formatted by sqlite3_vmprintf (printf plus %Q, a quoted string
 * literal, which is why there is no printf format attribute); fails the
 * test on error. */
static inline void rgt_sql(sqlite3 *db, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *sql = sqlite3_vmprintf(fmt, ap);
    va_end(ap);
    char *msg = NULL;
    if (!sql || sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("SQL failed: %s\n%s", msg ? msg : "out of memory", sql ? sql : "");
    sqlite3_free(sql);
}

/* The first column of the first row that sql returns; -1 without one. */
static inline int rgt_sql_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    int v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* PRAGMA user_version of the store at path. */
static inline int rgt_user_version(const char *path)
{
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK) fail_msg("cannot open %s", path);
    int v = rgt_sql_int(db, "PRAGMA user_version");
    sqlite3_close(db);
    return v;
}

/* A new store at path (WAL, schema, version) with experiment `exp`
 * (id 1). Close with sqlite3_close. */
static inline sqlite3 *rgt_store_new(const char *path, const char *exp)
{
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK) fail_msg("cannot create %s", path);
    rgt_sql(db, "PRAGMA journal_mode=WAL");
    rgt_sql(db, "%s", rg_store_schema_sql);
    rgt_sql(db, "PRAGMA user_version=%d", RG_STORE_SCHEMA_VERSION);
    rgt_sql(db,
            "INSERT INTO experiments(id, name, recipe_path, recipe_text, created_at, updated_at) "
            "VALUES(1, %Q, 'recipes/demo.ini', '', '2025-01-01T00:00:00Z', '2025-01-02T03:04:05Z')",
            exp);
    return db;
}

/* A 10x10 confusion matrix as JSON, 1000 images per class, the diagonal
 * near top1 (class 6, "Shirt", the hardest, as in Fashion-MNIST). */
static inline char *rgt_confusion_json(double top1)
{
    static char buf[2048];
    size_t used = 0;
    used += (size_t)snprintf(buf + used, sizeof buf - used, "[");
    for (int i = 0; i < 10; i++) {
        double acc = fmin(0.995, i == 6 ? top1 - 0.2 : i == 1 || i == 8 ? top1 + 0.08 : top1 + 0.02);
        int diag = (int)lround(1000 * acc), rest = 1000 - diag;
        int next = rest * 2 / 3, prev = rest - next;
        used += (size_t)snprintf(buf + used, sizeof buf - used, "%s[", i ? "," : "");
        for (int j = 0; j < 10; j++) {
            int v = j == i ? diag : j == (i + 1) % 10 ? next : j == (i + 9) % 10 ? prev : 0;
            used += (size_t)snprintf(buf + used, sizeof buf - used, "%s%d", j ? "," : "", v);
        }
        used += (size_t)snprintf(buf + used, sizeof buf - used, "]");
    }
    snprintf(buf + used, sizeof buf - used, "]");
    return buf;
}

/* A finished run of experiment 1: final metrics, `epochs` epochs of curves
 * rising to top1, a confusion matrix and an environment row. Returns the
 * run's row id. */
static inline long long rgt_store_run(sqlite3 *db, const char *name, long long seed, double top1, double params,
                                      double latency_ms, int epochs)
{
    rgt_sql(db,
            "INSERT INTO runs(experiment_id, name, seed, config_hash, config_text, status, wall_s) "
            "VALUES(1, %Q, %lld, 'h', 'model = x', 'done', %f)",
            name, seed, 30.0 + params / 10000.0);
    long long id = (long long)sqlite3_last_insert_rowid(db);
    for (int e = 1; e <= epochs; e++) {
        double f = (double)e / epochs, acc = top1 - 0.25 * (1 - f) * (1 - f);
        rgt_sql(db,
                "INSERT INTO epoch_metrics(run_id, epoch, lr, train_loss, train_top1, test_loss, test_top1, seconds) "
                "VALUES(%lld, %d, 0.1, %f, %f, %f, %f, 10)",
                id, e, 1.6 * (1 - f) + 0.25, fmin(1.0, acc + 0.02 * f), 1.4 * (1 - f) + 0.32, acc);
    }
    char lat[64] = "NULL";
    if (!isnan(latency_ms)) snprintf(lat, sizeof lat, "%.6f", latency_ms);
    rgt_sql(db,
            "INSERT INTO final_metrics(run_id, test_top1, test_loss, best_top1, best_epoch, params, macs, "
            "model_bytes, latency_ms, train_s, confusion) VALUES(%lld, %.6f, 0.31, %.6f, %d, %.0f, %.0f, %.0f, %s, "
            "%f, %Q)",
            id, top1, fmin(1.0, top1 + 0.001), epochs, params, params * 25, params * 4, lat,
            25.0 + params / 10000.0, rgt_confusion_json(top1));
    rgt_sql(db,
            "INSERT INTO environment(run_id, git_commit, compiler, cpu_model, cpu_features, threads, seed, hostname, "
            "regain_version, blas_core) VALUES(%lld, '3c20a3f0123456789', 'gcc 12.2.0', 'Test CPU @ 2.0GHz', "
            "'avx2 fma', 2, %lld, 'host', '0.1', 'Haswell')",
            id, seed);
    return id;
}

/* The standard demo store: experiment "demo", runs "baseline" and
 * "distilled" with seeds 1, 2, 3 (top-1 below), 4 epochs each, and the
 * comparison "distillation" (baseline vs distilled). Differences: +0.89,
 * +0.86, +0.95 pp. */
static inline double rgt_demo_top1(int distilled, int seed_index)
{
    static const double top1[2][3] = {{0.8812, 0.8790, 0.8835}, {0.8901, 0.8876, 0.8930}};
    return top1[distilled][seed_index];
}

static inline void rgt_demo_store(const char *path)
{
    sqlite3 *db = rgt_store_new(path, "demo");
    for (int s = 0; s < 3; s++) {
        rgt_store_run(db, "baseline", s + 1, rgt_demo_top1(0, s), 120000, 1.5, 4);
        rgt_store_run(db, "distilled", s + 1, rgt_demo_top1(1, s), 120000, 1.5, 4);
    }
    rgt_sql(db, "INSERT INTO comparisons(experiment_id, name, baseline, treatment) VALUES(1, 'distillation', 'baseline', 'distilled')");
    sqlite3_close(db);
}

#endif
