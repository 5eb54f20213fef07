/* The report: the store read into memory, the four files written from it,
 * and the SVG charts on their own. The stores are built here with SQL on
 * the real schema (tests/support/report_fixture.h).
 *
 * Well-formedness is checked with a small tag matcher: every element opened
 * is closed in order (void elements and "/>" aside), attributes are
 * name="value" with distinct names, every '&' starts an entity, and nothing
 * refers to http:// or https://. */
#include "test_support.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "exp/hash.h"
#include "regain/report.h"
#include "regain/store.h"
#include "report/render.h"
#include "report/svg.h"
#include "report_fixture.h"

/* ---- well-formedness ------------------------------------------------------------- */

static int is_void(const char *name, size_t n)
{
    static const char *const v[] = {"meta", "br", "hr", "img", "input", "link", "col", "wbr", NULL};
    for (const char *const *p = v; *p; p++)
        if (strlen(*p) == n && !strncmp(*p, name, n)) return 1;
    return 0;
}

/* Fails the test unless the attributes in [p, end) are name="value" pairs
 * with distinct names. */
static void assert_attributes(const char *p, const char *end, const char *what)
{
    enum { MAX = 32 };
    const char *names[MAX];
    size_t lens[MAX], count = 0;
    for (;;) {
        while (p < end && (*p == ' ' || *p == '\n' || *p == '/')) p++;
        if (p >= end) return;
        const char *name = p;
        while (p < end && (isalnum((unsigned char)*p) || *p == '-' || *p == ':' || *p == '_')) p++;
        size_t n = (size_t)(p - name);
        if (!n || p >= end || *p != '=' || p[1] != '"')
            fail_msg("%s: malformed attribute: %.40s", what, name);
        const char *close = memchr(p + 2, '"', (size_t)(end - p - 2));
        if (!close) fail_msg("%s: unterminated attribute value: %.40s", what, name);
        for (size_t i = 0; i < count; i++)
            if (lens[i] == n && !strncmp(names[i], name, n)) fail_msg("%s: attribute %.*s twice", what, (int)n, name);
        if (count == MAX) fail_msg("%s: too many attributes", what);
        names[count] = name, lens[count++] = n;
        p = close + 1;
    }
}

/* Fails the test unless every tag of doc is closed in order and every
 * '&' starts an entity. Contents of <style> are skipped. */
static void assert_well_formed(const char *doc, const char *what)
{
    enum { DEPTH = 64 };
    const char *stack[DEPTH];
    size_t len[DEPTH];
    int depth = 0;
    for (const char *p = doc; *p;) {
        if (*p == '&') {
            const char *q = p + 1;
            while (isalnum((unsigned char)*q) || *q == '#') q++;
            if (q == p + 1 || *q != ';') fail_msg("%s: bare '&' at offset %ld: %.40s", what, (long)(p - doc), p);
            p = q + 1;
            continue;
        }
        if (*p != '<') {
            if (*p == '>') fail_msg("%s: bare '>' at offset %ld: %.40s", what, (long)(p - doc), p > doc + 20 ? p - 20 : p);
            p++;
            continue;
        }
        if (!strncmp(p, "<!", 2)) {
            p = strchr(p, '>');
            assert_non_null(p);
            p++;
            continue;
        }
        const char *end = strchr(p, '>');
        if (!end) fail_msg("%s: unterminated tag at offset %ld", what, (long)(p - doc));
        /* No '<' inside a tag: attribute values must be escaped. */
        const char *lt = memchr(p + 1, '<', (size_t)(end - p - 1));
        if (lt) fail_msg("%s: '<' inside a tag at offset %ld: %.60s", what, (long)(p - doc), p);
        int closing = p[1] == '/';
        const char *name = p + 1 + closing;
        size_t n = strcspn(name, " \t\n/>");
        assert_attributes(name + n, end, what);
        if (closing) {
            if (!depth) fail_msg("%s: </%.*s> closes nothing", what, (int)n, name);
            depth--;
            if (len[depth] != n || strncmp(stack[depth], name, n))
                fail_msg("%s: </%.*s> closes <%.*s> at offset %ld", what, (int)n, name, (int)len[depth],
                         stack[depth], (long)(p - doc));
        } else if (end[-1] != '/' && !is_void(name, n)) {
            if (depth == DEPTH) fail_msg("%s: nesting deeper than %d", what, DEPTH);
            stack[depth] = name, len[depth++] = n;
            if (n == 5 && !strncmp(name, "style", 5)) {
                end = strstr(end, "</style>");
                assert_non_null(end);
                p = end;
                continue;
            }
        }
        p = end + 1;
    }
    if (depth) fail_msg("%s: <%.*s> is never closed", what, (int)len[depth - 1], stack[depth - 1]);
    if (strstr(doc, "http://") || strstr(doc, "https://")) fail_msg("%s: refers to http(s)://", what);
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

/* ---- files ------------------------------------------------------------------------ */

static char dir[512], store[600], out[600];

static int setup(void **state)
{
    (void)state;
    rgt_tmpdir(dir, sizeof dir);
    snprintf(store, sizeof store, "%s/regain.db", dir);
    snprintf(out, sizeof out, "%s/out/report", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rgt_rmtree(dir);
    return 0;
}

static char *read_out(const char *name)
{
    char path[800];
    size_t n;
    snprintf(path, sizeof path, "%s/%s", out, name);
    return rgt_read_file(path, &n);
}

/* ---- loading ---------------------------------------------------------------------- */

static void test_load_demo(void **state)
{
    (void)state;
    rgt_demo_store(store);
    rg_report r;
    rg_error err = {0};
    if (rg_report_load(store, "demo", &r, &err)) fail_msg("%s", err.msg);
    assert_int_equal(r.n_runs, 2);
    assert_string_equal(r.runs[0].name, "baseline");
    assert_string_equal(r.runs[1].name, "distilled");
    assert_int_equal(r.best, 1);
    for (int i = 0; i < 2; i++) {
        const rg_report_run *run = &r.runs[i];
        assert_int_equal(run->n_seeds, 3);
        double m = 0;
        for (int s = 0; s < 3; s++) {
            assert_int_equal(run->seeds[s].seed, s + 1);
            assert_true(fabs(run->seeds[s].test_top1 - 100 * rgt_demo_top1(i, s)) < 1e-9);
            m += 100 * rgt_demo_top1(i, s) / 3;
        }
        assert_true(fabs(run->top1.mean - m) < 1e-9);
        assert_true(run->top1.lo < m && m < run->top1.hi);
        assert_true(fabs(run->params - 120000) < 1e-9);
        assert_true(fabs(run->model_bytes - 480000) < 1e-9);
        assert_true(fabs(run->latency_ms - 1.5) < 1e-9);
        /* Curves: 4 epochs; the last epoch's mean is the final accuracy. */
        assert_int_equal(run->n_epochs, 4);
        assert_int_equal(run->epochs[3].epoch, 4);
        assert_int_equal(run->epochs[3].n, 3);
        assert_true(fabs(run->epochs[3].test_top1 - m) < 1e-3);
        /* Confusion: summed over 3 seeds of 1000 images per class. */
        assert_int_equal(run->classes, 10);
        int64_t row = 0;
        for (int j = 0; j < 10; j++) row += run->confusion[6 * 10 + j];
        assert_int_equal(row, 3000);
    }
    assert_int_equal(r.n_comparisons, 1);
    const rg_report_comparison *c = &r.comparisons[0];
    assert_string_equal(c->name, "distillation");
    assert_int_equal(c->n_pairs, 3);
    /* Differences 0.89, 0.86, 0.95 pp: mean 0.9, sd 0.0458257569, the
     * paired t interval 0.9 -+ 4.3026527297 * 0.0458257569 / sqrt 3 =
     * [0.7861625090, 1.0138374910] (t(0.975, 2) = 0.95 / sqrt(2 * 0.975 *
     * 0.025), the closed form for 2 degrees of freedom). */
    assert_int_equal(c->diff.method, RG_PAIRED_T);
    assert_true(fabs(c->diff.mean - 0.9) < 1e-9);
    assert_true(fabs(c->diff.lo - 0.7861625090) < 1e-9);
    assert_true(fabs(c->diff.hi - 1.0138374910) < 1e-9);
    assert_int_equal(c->diff.verdict, RG_VERDICT_GAIN);
    assert_int_equal(r.n_envs, 1);
    assert_int_equal(r.envs[0].n_runs, 6);
    assert_string_equal(r.envs[0].compiler, "gcc 12.2.0");
    assert_string_equal(r.recipe_path, "recipes/demo.ini");
    rg_report_free(&r);
}

/* Experiment "kd", seeds 1 and 2: base (90 %), teacher (94 %), kd distilled
 * from teacher (91 and 93 %: +2 pp, half the gap), clean (96 %). */
static sqlite3 *kd_store(void)
{
    sqlite3 *db = rgt_store_new(store, "kd");
    for (int s = 1; s <= 2; s++) {
        rgt_store_run(db, "base", s, 0.90, 1000, NAN, 2);
        rgt_store_run(db, "teacher", s, 0.94, 4000, NAN, 2);
        rgt_store_run(db, "kd", s, s == 1 ? 0.91 : 0.93, 1000, NAN, 2);
        rgt_store_run(db, "clean", s, 0.96, 1000, NAN, 2);
    }
    rgt_sql(db, "UPDATE runs SET config_text = 'kind = train\nmodel = x\nteacher = @teacher:best\nkd_alpha = 0.9\n' "
                "WHERE name = 'kd'");
    return db;
}

/* The share of a reference-baseline gap a treatment closes, in the table
 * and in the JSON: the reference is the recipe's (comparisons.reference),
 * else a distilled treatment's teacher run. */
static void test_gap_closed(void **state)
{
    (void)state;
    sqlite3 *db = kd_store();
    rgt_sql(db, "INSERT INTO comparisons(experiment_id, name, baseline, treatment, reference) VALUES"
                "(1, 'kd-distillation', 'base', 'kd', NULL), (1, 'other', 'teacher', 'base', NULL), "
                "(1, 'recovery', 'base', 'kd', 'clean')");
    sqlite3_close(db);
    rg_report r;
    rg_error err = {0};
    if (rg_report_load(store, "kd", &r, &err)) fail_msg("%s", err.msg);
    assert_int_equal(r.n_comparisons, 3);
    /* gain 2 pp of a 4 pp gap */
    assert_string_equal(r.comparisons[0].reference, "teacher");
    assert_true(fabs(r.comparisons[0].gap_closed - 0.5) < 1e-9);
    assert_null(r.comparisons[1].reference);
    assert_true(isnan(r.comparisons[1].gap_closed));
    /* the recipe's reference wins over the teacher: 2 pp of 6 */
    assert_string_equal(r.comparisons[2].reference, "clean");
    assert_true(fabs(r.comparisons[2].gap_closed - 2.0 / 6.0) < 1e-9);
    /* a teacher worse than the baseline: no gap, no fraction */
    sqlite3 *db2;
    assert_int_equal(sqlite3_open(store, &db2), SQLITE_OK);
    rgt_sql(db2, "UPDATE final_metrics SET test_top1 = 0.85 WHERE run_id IN (SELECT id FROM runs WHERE name = 'teacher')");
    sqlite3_close(db2);
    rg_report r2;
    if (rg_report_load(store, "kd", &r2, &err)) fail_msg("%s", err.msg);
    assert_string_equal(r2.comparisons[0].reference, "teacher");
    assert_true(isnan(r2.comparisons[0].gap_closed));
    rg_report_free(&r2);
    rg_table t;
    rg_table_comparisons(&r, &t);
    assert_string_equal(t.cell[0 * t.cols + 8], "50 % of teacher");
    assert_string_equal(t.cell[1 * t.cols + 8], RG_NA);
    assert_string_equal(t.cell[2 * t.cols + 8], "33 % of clean");
    rg_table_free(&t);
    char *json = rg_report_json(&r);
    assert_non_null(strstr(json, "\"reference\":\t\"teacher\",\n\t\t\t\"gap_closed\":\t0.5"));
    free(json);
    rg_report_free(&r);
}

/* The best run is the best of the students: a run another run distills
 * from (teacher, teacher2 or teacher3) is a reference, named apart. */
static void test_best_leaves_out_teachers(void **state)
{
    (void)state;
    sqlite3 *db = kd_store();
    rg_report r;
    rg_error err = {0};
    sqlite3_close(db);
    if (rg_report_load(store, "kd", &r, &err)) fail_msg("%s", err.msg);
    assert_string_equal(r.runs[r.best].name, "clean");  /* 96 % beats the teacher's 94 */
    assert_true(r.runs[1].is_teacher && !r.runs[0].is_teacher && !r.runs[3].is_teacher);
    rg_report_free(&r);

    /* clean as a second teacher: kd (92 %) is the best student, though
     * both teachers are above it */
    assert_int_equal(sqlite3_open(store, &db), SQLITE_OK);
    rgt_sql(db, "UPDATE runs SET config_text = config_text || 'teacher2 = @clean\n' WHERE name = 'kd'");
    sqlite3_close(db);
    if (rg_report_load(store, "kd", &r, &err)) fail_msg("%s", err.msg);
    assert_string_equal(r.runs[r.best].name, "kd");
    assert_true(r.runs[3].is_teacher);
    if (rg_report_write(&r, out, &err)) fail_msg("%s", err.msg);
    char *md = read_out("report.md"), *html = read_out("report.html"), *json = rg_report_json(&r);
    assert_non_null(strstr(md, "**Best run: kd**"));
    assert_non_null(strstr(md, "not candidates for the best run: teacher 94.00 \xc2\xb1 0.00 %, clean 96.00"));
    assert_non_null(strstr(html, "not candidates for the best run: teacher"));
    assert_non_null(strstr(json, "\"best_run\":\t\"kd\""));
    assert_non_null(strstr(json, "\"name\":\t\"clean\",\n\t\t\t\"n_seeds\":\t2,\n\t\t\t\"teacher\":\ttrue"));
    free(md), free(html), free(json);
    rg_report_free(&r);
}

/* A store of schema version 1 (no comparisons.reference, no
 * runs.imported_from): the report reads it as having no references (a
 * teacher's gap still counts); opened read-only, the store lists its runs
 * as run here and leaves the file alone; opened for writing, it upgrades
 * it in place through every version, keeping every row. */
static void test_schema_version_1(void **state)
{
    (void)state;
    sqlite3 *db = kd_store();
    rgt_sql(db, "INSERT INTO comparisons(experiment_id, name, baseline, treatment) VALUES(1, 'kd', 'base', 'kd')");
    rgt_sql(db, "ALTER TABLE comparisons DROP COLUMN reference; ALTER TABLE runs DROP COLUMN imported_from; "
                "ALTER TABLE environment DROP COLUMN blas_core; DROP TABLE file_hashes; "
                "CREATE TABLE file_hashes(path TEXT PRIMARY KEY, size INTEGER NOT NULL, "
                "mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL); "
                "INSERT INTO file_hashes VALUES('/x', 1, 2, 'abc'); PRAGMA user_version = 1");
    sqlite3_close(db);
    rg_report r;
    rg_error err = {0};
    if (rg_report_load(store, "kd", &r, &err)) fail_msg("%s", err.msg);
    assert_int_equal(r.n_comparisons, 1);
    assert_string_equal(r.comparisons[0].reference, "teacher");
    assert_true(fabs(r.comparisons[0].gap_closed - 0.5) < 1e-9);
    assert_true(r.n_envs > 0);
    assert_null(r.envs[0].blas_core); /* not recorded before version 5 */
    rg_report_free(&r);
    rg_store *s;
    if (rg_store_open(store, 1, &s, &err)) fail_msg("%s", err.msg);
    rg_store_run_info *rows;
    int32_t n;
    if (rg_store_list_runs(s, NULL, &rows, &n, &err)) fail_msg("%s", err.msg);
    assert_int_equal(n, 8);
    assert_string_equal(rows[0].imported_from, "");
    free(rows);
    rg_store_run row;
    if (rg_store_get_run(s, 1, "kd", 1, &row, &err)) fail_msg("%s", err.msg);
    assert_true(row.id > 0);
    assert_int_equal(row.imported, 0);
    rg_store_close(s);
    assert_int_equal(rgt_user_version(store), 1);
    if (rg_store_open(store, 0, &s, &err)) fail_msg("%s", err.msg);
    rg_store_close(s);
    assert_int_equal(rgt_user_version(store), RG_STORE_SCHEMA_VERSION);
    assert_int_equal(sqlite3_open(store, &db), SQLITE_OK);
    rgt_sql(db, "UPDATE comparisons SET reference = 'teacher'; UPDATE runs SET imported_from = NULL; "
                "UPDATE environment SET blas_core = NULL");
    /* the cached checksum has no stamp now (never matched), and a new one has */
    assert_int_equal(rgt_sql_int(db, "SELECT count(*) FROM file_hashes WHERE ctime_ns = -1 AND inode = -1"), 1);
    rgt_sql(db, "INSERT INTO file_hashes(path, size, mtime_ns, ctime_ns, inode, sha256) VALUES('/y', 1, 2, 3, 4, 'd')");
    sqlite3_close(db);
    if (rg_report_load(store, "kd", &r, &err)) fail_msg("%s", err.msg);
    assert_int_equal(r.n_runs, 4);
    assert_string_equal(r.comparisons[0].reference, "teacher");
    assert_true(fabs(r.comparisons[0].gap_closed - 0.5) < 1e-9);
    rg_report_free(&r);
}

/* ---- throughput for the runner's estimates ------------------------------------------ */

/* A run of model with `threads` in its environment (0: none, as while it
 * runs) and these epoch rates. */
static void rates_run(sqlite3 *db, const char *name, const char *config, int threads, const double *ips, int n)
{
    rgt_sql(db,
            "INSERT INTO runs(experiment_id, name, seed, config_hash, config_text, status) "
            "VALUES(1, %Q, 1, 'h', %Q, %Q)",
            name, config, threads ? "done" : "running");
    long long id = (long long)sqlite3_last_insert_rowid(db);
    for (int e = 0; e < n; e++)
        rgt_sql(db, "INSERT INTO epoch_metrics(run_id, epoch, images_per_s) VALUES(%lld, %d, %f)", id, e + 1, ips[e]);
    if (threads) rgt_sql(db, "INSERT INTO environment(run_id, threads) VALUES(%lld, %d)", id, threads);
}

static double rates_macs(void *user, const char *model)
{
    (void)user;
    return !strcmp(model, "small") ? 1e6 : !strcmp(model, "big") ? 1e8 : !strcmp(model, "last") ? 2e6 : 0.0;
}

/* Medians per model, of the runs that finished with the thread count asked
 * for (0: of every run) and, when asked, on one kind of CPU; a model line
 * that ends the configuration counts. */
static void test_store_rates(void **state)
{
    (void)state;
    sqlite3 *db = rgt_store_new(store, "rates");
    rates_run(db, "a", "epochs = 3\nmodel = small\nseed = 1\n", 2, (double[]){1600, 1700, 1650}, 3);
    rates_run(db, "b", "epochs = 2\nmodel = small\n", 1, (double[]){480, 470}, 2);
    rates_run(db, "c", "epochs = 1\nmodel = small\n", 0, (double[]){900}, 1);
    rates_run(db, "d", "epochs = 1\nmodel = big\n", 1, (double[]){120}, 1);
    rates_run(db, "e", "epochs = 1\nmodel = last", 2, (double[]){300}, 1);
    rates_run(db, "f", "epochs = 1\nmodel = small-x\n", 2, (double[]){5}, 1);
    sqlite3_close(db);
    rg_store *s;
    rg_error err = {0};
    if (rg_store_open(store, 1, &s, &err)) fail_msg("%s", err.msg);
    double ips, macs;
    if (rg_store_rates(s, "small", 2, NULL, rates_macs, NULL, &ips, &macs, &err)) fail_msg("%s", err.msg);
    assert_true(fabs(ips - 1650) < 1e-9);
    assert_true(fabs(macs - (1e6 * 1650 + 2e6 * 300) / 2) < 1e-3);
    /* every run: 470 480 900 1600 1650 1700 */
    if (rg_store_rates(s, "small", 0, NULL, NULL, NULL, &ips, &macs, &err)) fail_msg("%s", err.msg);
    assert_true(fabs(ips - 1250) < 1e-9);
    assert_true(macs == 0.0);
    if (rg_store_rates(s, "big", 1, NULL, rates_macs, NULL, &ips, &macs, &err)) fail_msg("%s", err.msg);
    assert_true(fabs(ips - 120) < 1e-9);
    assert_true(fabs(macs - (1e6 * 475 + 1e8 * 120) / 2) < 1e-3);
    if (rg_store_rates(s, "big", 2, NULL, rates_macs, NULL, &ips, &macs, &err)) fail_msg("%s", err.msg);
    assert_true(ips == 0.0);
    if (rg_store_rates(s, "last", 2, NULL, NULL, NULL, &ips, &macs, &err)) fail_msg("%s", err.msg);
    assert_true(fabs(ips - 300) < 1e-9);
    if (rg_store_rates(s, "small", 4, NULL, rates_macs, NULL, &ips, &macs, &err)) fail_msg("%s", err.msg);
    assert_true(ips == 0.0 && macs == 0.0);
    rg_store_close(s);

    /* a run from another machine (imported results): only its CPU's rates
     * when asked for, among all of them otherwise */
    assert_int_equal(sqlite3_open(store, &db), SQLITE_OK);
    rates_run(db, "g", "epochs = 1\nmodel = small\n", 2, (double[]){200}, 1);
    rgt_sql(db, "UPDATE environment SET cpu_model = 'Other CPU', cpu_features = 'avx2' WHERE run_id = "
                "(SELECT id FROM runs WHERE name = 'g')");
    sqlite3_close(db);
    if (rg_store_open(store, 1, &s, &err)) fail_msg("%s", err.msg);
    if (rg_store_rates(s, "small", 2, "Other CPU\navx2", NULL, NULL, &ips, &macs, &err)) fail_msg("%s", err.msg);
    assert_true(fabs(ips - 200) < 1e-9);
    if (rg_store_rates(s, "small", 0, "Other CPU\navx2", NULL, NULL, &ips, &macs, &err)) fail_msg("%s", err.msg);
    assert_true(fabs(ips - 200) < 1e-9);
    if (rg_store_rates(s, "small", 2, "Other CPU\navx512f", NULL, NULL, &ips, &macs, &err)) fail_msg("%s", err.msg);
    assert_true(ips == 0.0);
    /* 200 1600 1650 1700 */
    if (rg_store_rates(s, "small", 2, NULL, NULL, NULL, &ips, &macs, &err)) fail_msg("%s", err.msg);
    assert_true(fabs(ips - 1625) < 1e-9);
    rg_store_close(s);
}

/* The checksum cache answers for a file whose stamp is unchanged, and not
 * for new contents given the old size and mtime (as `cp -p` leaves them). */
static void test_file_checksum_cache(void **state)
{
    (void)state;
    char path[700], cached[65], fresh[65];
    snprintf(path, sizeof path, "%s/data.bin", dir);
    rgt_write_file(path, "first", 5);
    struct stat before;
    assert_int_equal(stat(path, &before), 0);
    rg_store *s;
    rg_error err = {0};
    if (rg_store_open(store, 0, &s, &err)) fail_msg("%s", err.msg);
    if (rg_exp_file_sha256(s, path, cached, NULL, &err)) fail_msg("%s", err.msg);
    if (rg_exp_file_sha256(NULL, path, fresh, NULL, &err)) fail_msg("%s", err.msg);
    assert_string_equal(cached, fresh);
    rg_store_close(s);

    /* the stamp unchanged: the recorded checksum is the answer, whatever it is */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(store, &db), SQLITE_OK);
    rgt_sql(db, "UPDATE file_hashes SET sha256 = '%064d'", 0);
    sqlite3_close(db);
    if (rg_store_open(store, 0, &s, &err)) fail_msg("%s", err.msg);
    if (rg_exp_file_sha256(s, path, cached, NULL, &err)) fail_msg("%s", err.msg);
    assert_string_equal(cached, "0000000000000000000000000000000000000000000000000000000000000000");

    /* same size, same mtime, other contents: read again */
    rgt_write_file(path, "other", 5);
    const struct timespec times[2] = {before.st_atim, before.st_mtim};
    assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
    struct stat after;
    assert_int_equal(stat(path, &after), 0);
    assert_true(after.st_size == before.st_size && after.st_mtim.tv_sec == before.st_mtim.tv_sec &&
                after.st_mtim.tv_nsec == before.st_mtim.tv_nsec);
    if (rg_exp_file_sha256(s, path, cached, NULL, &err)) fail_msg("%s", err.msg);
    if (rg_exp_file_sha256(NULL, path, fresh, NULL, &err)) fail_msg("%s", err.msg);
    assert_string_equal(cached, fresh);
    rg_store_close(s);

    /* a version-3 store (no stamps), open read-only as `regain run` plans:
     * no cache, and no error */
    assert_int_equal(sqlite3_open(store, &db), SQLITE_OK);
    rgt_sql(db, "ALTER TABLE file_hashes DROP COLUMN ctime_ns; ALTER TABLE file_hashes DROP COLUMN inode; "
                "PRAGMA user_version = 3");
    sqlite3_close(db);
    if (rg_store_open(store, 1, &s, &err)) fail_msg("%s", err.msg);
    if (rg_exp_file_sha256(s, path, cached, NULL, &err)) fail_msg("%s", err.msg);
    assert_string_equal(cached, fresh);
    rg_store_close(s);
}

/* Unfinished runs are counted and left out; a comparison with a run that
 * has no finished seed has no pairs and no verdict. */
static void test_load_unfinished(void **state)
{
    (void)state;
    sqlite3 *db = rgt_store_new(store, "exp");
    rgt_store_run(db, "a", 1, 0.8, 1000, NAN, 2);
    rgt_store_run(db, "a", 2, 0.82, 1000, NAN, 2);
    rgt_sql(db, "INSERT INTO runs(experiment_id, name, seed, config_hash, config_text, status) VALUES"
                "(1, 'b', 1, 'h', '', 'running'), (1, 'b', 2, 'h', '', 'failed'), (1, 'c', 1, 'h', '', 'pending')");
    rgt_sql(db, "INSERT INTO comparisons(experiment_id, name, baseline, treatment) VALUES(1, 'a vs b', 'a', 'b')");
    sqlite3_close(db);
    rg_report r;
    rg_error err = {0};
    if (rg_report_load(store, "exp", &r, &err)) fail_msg("%s", err.msg);
    assert_int_equal(r.n_runs, 1);
    assert_int_equal(r.n_running, 1);
    assert_int_equal(r.n_failed, 1);
    assert_int_equal(r.n_pending, 1);
    assert_true(isnan(r.runs[0].latency_ms));
    assert_int_equal(r.comparisons[0].n_pairs, 0);
    assert_int_equal(r.comparisons[0].diff.method, RG_PAIRED_NONE);
    assert_int_equal(r.comparisons[0].diff.verdict, RG_VERDICT_UNTESTED);
    /* The report still renders, saying what is missing. */
    if (rg_report_write(&r, out, &err)) fail_msg("%s", err.msg);
    char *md = read_out("report.md"), *html = read_out("report.html");
    assert_non_null(strstr(md, "3 runs of this experiment are not finished (1 pending, 1 running, 1 failed)"));
    assert_non_null(strstr(md, "| a vs b | a | b | " RG_NA " | " RG_NA " | " RG_NA " | 0 | not tested |"));
    assert_non_null(strstr(html, "No run recorded its latency."));
    assert_well_formed(html, "report.html");
    free(md), free(html);
    rg_report_free(&r);
}

/* ---- writing ---------------------------------------------------------------------- */

static void test_write_demo(void **state)
{
    (void)state;
    rgt_demo_store(store);
    rg_report r;
    rg_error err = {0};
    if (rg_report_load(store, "demo", &r, &err) || rg_report_write(&r, out, &err)) fail_msg("%s", err.msg);

    char *html = read_out("report.html");
    assert_well_formed(html, "report.html");
    assert_null(strstr(html, "<script"));
    assert_non_null(strstr(html, "Content-Security-Policy"));
    /* bars, accuracy and loss curves, two trade-offs, heat map */
    assert_int_equal(count(html, "<svg"), 6);
    assert_int_equal(count(html, "</svg>"), 6);
    assert_non_null(strstr(html, "Ankle boot"));
    assert_non_null(strstr(html, "<span class=\"badge gain\">gain</span>"));
    assert_non_null(strstr(html, "88.12 \xc2\xb1 "));

    char *md = read_out("report.md");
    assert_non_null(strstr(md, "| distillation | baseline | distilled | +0.90 | [+0.79, +1.01] | 0.0009 | 3 | gain |"));
    assert_non_null(strstr(md, "| **distilled** |"));
    /* the environment names the kernels OpenBLAS ran */
    assert_non_null(strstr(md, "| avx2 fma | Haswell | 2 | 0.1 |"));
    assert_non_null(strstr(md, "## Confusion matrix of distilled"));
    assert_non_null(strstr(md, "| T-shirt/top |"));
    /* one kind of CPU: no note on it, no CPU column per seed */
    assert_null(strstr(md, "depend on the CPU"));
    assert_non_null(strstr(md, "| latency | training time |\n"));

    /* results.json holds the numbers the report was made from. */
    char *js = read_out("results.json");
    cJSON *root = cJSON_Parse(js);
    assert_non_null(root);
    assert_string_equal(cJSON_GetObjectItem(root, "best_run")->valuestring, "distilled");
    const cJSON *runs = cJSON_GetObjectItem(root, "runs");
    assert_int_equal(cJSON_GetArraySize(runs), 2);
    const cJSON *base = cJSON_GetArrayItem(runs, 0);
    const cJSON *t1 = cJSON_GetObjectItem(base, "test_top1_pct");
    assert_true(fabs(cJSON_GetObjectItem(t1, "mean")->valuedouble - r.runs[0].top1.mean) < 1e-9);
    assert_true(fabs(cJSON_GetObjectItem(t1, "sd")->valuedouble - r.runs[0].top1.sd) < 1e-9);
    assert_true(fabs(cJSON_GetArrayItem(cJSON_GetObjectItem(t1, "ci95"), 0)->valuedouble - r.runs[0].top1.lo) < 1e-9);
    const cJSON *seed2 = cJSON_GetArrayItem(cJSON_GetObjectItem(base, "seeds"), 1);
    assert_int_equal(cJSON_GetObjectItem(seed2, "seed")->valueint, 2);
    assert_true(fabs(cJSON_GetObjectItem(seed2, "test_top1_pct")->valuedouble - 87.90) < 1e-9);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(base, "epochs")), 4);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(base, "confusion")), 10);
    const cJSON *cmp = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "comparisons"), 0);
    assert_string_equal(cJSON_GetObjectItem(cmp, "verdict")->valuestring, "gain");
    assert_string_equal(cJSON_GetObjectItem(cmp, "method")->valuestring, "paired t-test");
    const cJSON *d = cJSON_GetObjectItem(cmp, "difference_pp");
    assert_true(fabs(cJSON_GetObjectItem(d, "mean")->valuedouble - 0.9) < 1e-9);
    assert_true(fabs(cJSON_GetObjectItem(cmp, "t")->valuedouble - 34.0168025708) < 1e-8); /* 0.9 / (sd / sqrt 3) */
    cJSON_Delete(root);

    /* results.csv: a header and one line per (run, seed). */
    char *csv = read_out("results.csv");
    assert_int_equal(count(csv, "\n"), 7);
    assert_non_null(strstr(csv, "demo,baseline,2,87.9,0.31,"));
    free(html), free(md), free(js), free(csv);

    /* The same store gives the same files, byte for byte. */
    char *first = read_out("report.html");
    if (rg_report_write(&r, out, &err)) fail_msg("%s", err.msg);
    char *second = read_out("report.html");
    assert_string_equal(first, second);
    free(first), free(second);
    rg_report_free(&r);
}

/* Seeds timed on two kinds of CPU (the same model name, with and without
 * AVX-512): a run's latency and training time are the means of its seeds
 * on the CPU most seeds ran on, a run with none there is marked, and every
 * file says which CPU each seed ran on. */
static void test_timing_cpus(void **state)
{
    (void)state;
    sqlite3 *db = rgt_store_new(store, "cpus");
    long long small3 = 0, away = 0;
    for (int s = 1; s <= 3; s++) {
        long long id = rgt_store_run(db, "small", s, 0.90, 1000, s == 3 ? 3.0 : 0.9 + 0.2 * s, 2);
        if (s == 3) small3 = id;
    }
    rgt_store_run(db, "big", 1, 0.92, 2000, 2.0, 2);
    rgt_store_run(db, "big", 2, 0.92, 2000, 2.2, 2);
    away = rgt_store_run(db, "away", 1, 0.91, 1000, 0.5, 2);
    rgt_sql(db, "UPDATE final_metrics SET train_s = 100 WHERE run_id = %lld", small3);
    rgt_sql(db, "UPDATE environment SET cpu_features = 'avx2 fma avx512f' WHERE run_id IN (%lld, %lld)", small3, away);
    sqlite3_close(db);

    rg_report r;
    rg_error err = {0};
    if (rg_report_load(store, "cpus", &r, &err) || rg_report_write(&r, out, &err)) fail_msg("%s", err.msg);
    assert_int_equal(r.n_cpus, 2);
    assert_int_equal(r.timing_cpu, 0);   /* 4 seeds against 2 */
    assert_string_equal(r.cpus[1].features, "avx2 fma avx512f");
    assert_int_equal(r.cpus[1].n_seeds, 2);
    const rg_report_run *small = &r.runs[0], *big = &r.runs[1], *aw = &r.runs[2];
    assert_int_equal(small->seeds[2].cpu, 1);
    assert_int_equal(small->seeds[0].cpu, 0);
    assert_true(fabs(small->latency_ms - 1.2) < 1e-9);   /* seeds 1 and 2: 1.1 and 1.3 */
    assert_true(fabs(small->train_s - 25.1) < 1e-9);     /* seed 3's 100 s left out */
    assert_int_equal(small->timed_elsewhere, 0);
    assert_true(fabs(big->latency_ms - 2.1) < 1e-9);
    assert_int_equal(aw->timed_elsewhere, 1);            /* its only seed ran on the other CPU */
    assert_true(fabs(aw->latency_ms - 0.5) < 1e-9);

    char *md = read_out("report.md"), *html = read_out("report.html"), *js = read_out("results.json"),
         *csv = read_out("results.csv");
    assert_non_null(strstr(md, "> Latency and training time depend on the CPU, and these seeds ran on 2 kinds: CPU 1, "
                               "Test CPU @ 2.0GHz with avx2 fma (4 seeds); CPU 2, Test CPU @ 2.0GHz with avx2 fma "
                               "avx512f (2 seeds)."));
    assert_non_null(strstr(md, "\xe2\x80\xa0 marks the run with no seed there"));
    assert_non_null(strstr(md, "| 0.5 ms \xe2\x80\xa0 | 25.1 s \xe2\x80\xa0 |"));
    assert_non_null(strstr(md, "| 1.2 ms | 25.1 s |"));
    assert_non_null(strstr(md, "| latency | training time | CPU |"));
    assert_non_null(strstr(md, "| 3 ms | 1.7 min | 2 |"));   /* small, seed 3 */
    assert_non_null(strstr(md, "| avx2 fma avx512f |"));
    assert_well_formed(html, "report.html");
    assert_non_null(strstr(html, "<p class=\"warn\">Latency and training time depend on the CPU"));
    assert_non_null(strstr(html, "without the runs marked"));

    cJSON *root = cJSON_Parse(js);
    assert_non_null(root);
    const cJSON *cpus = cJSON_GetObjectItem(root, "cpus");
    assert_int_equal(cJSON_GetArraySize(cpus), 2);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(cpus, 1), "features")->valuestring, "avx2 fma avx512f");
    const cJSON *runs = cJSON_GetObjectItem(root, "runs");
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(runs, 0), "timed_on_cpu")->valueint, 1);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(runs, 2), "timed_on_cpu")));
    const cJSON *seed3 = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(runs, 0), "seeds"), 2);
    assert_int_equal(cJSON_GetObjectItem(seed3, "cpu")->valueint, 2);
    cJSON_Delete(root);
    assert_non_null(strstr(csv, ",latency_ms,train_s,cpu_model,cpu_features\n"));
    assert_non_null(strstr(csv, ",3,100,Test CPU @ 2.0GHz,avx2 fma avx512f\n"));
    free(md), free(html), free(js), free(csv);
    rg_report_free(&r);
}

/* Names with markup characters are escaped in every file. */
static void test_escaping(void **state)
{
    (void)state;
    const char *name = "a<b>&\"c'|d,e";
    sqlite3 *db = rgt_store_new(store, "x<y>");
    rgt_store_run(db, name, 1, 0.7, 5000, 0.2, 2);
    rgt_store_run(db, "plain", 1, 0.6, 500, 0.1, 2);
    rgt_sql(db, "INSERT INTO comparisons(experiment_id, name, baseline, treatment) VALUES(1, %Q, 'plain', %Q)", name, name);
    sqlite3_close(db);
    rg_report r;
    rg_error err = {0};
    if (rg_report_load(store, "x<y>", &r, &err) || rg_report_write(&r, out, &err)) fail_msg("%s", err.msg);
    char *html = read_out("report.html"), *md = read_out("report.md"), *csv = read_out("results.csv");
    assert_well_formed(html, "report.html");
    assert_null(strstr(html, "<b>"));
    assert_non_null(strstr(html, "a&lt;b&gt;&amp;&quot;c&#39;|d,e"));
    assert_non_null(strstr(html, "<h1>x&lt;y&gt;</h1>"));
    assert_non_null(strstr(md, "a\\<b\\>\\&\"c'\\|d,e"));
    assert_non_null(strstr(csv, "x<y>,\"a<b>&\"\"c'|d,e\",1,70,"));
    free(html), free(md), free(csv);
    rg_report_free(&r);
}

/* The least a store can hold: one run, one seed, no curves, no confusion
 * matrix, no latency, no environment, no comparison. Every part of the
 * report says what is missing instead of drawing an empty chart. */
static void test_minimal_store(void **state)
{
    (void)state;
    sqlite3 *db = rgt_store_new(store, "bare");
    rgt_sql(db, "INSERT INTO runs(experiment_id, name, seed, config_hash, config_text, status) "
                "VALUES(1, 'only', 7, 'h', '', 'done')");
    rgt_sql(db, "INSERT INTO final_metrics(run_id, test_top1) VALUES(1, 0.5)");
    sqlite3_close(db);
    rg_report r;
    rg_error err = {0};
    if (rg_report_load(store, "bare", &r, &err) || rg_report_write(&r, out, &err)) fail_msg("%s", err.msg);
    assert_int_equal(r.n_runs, 1);
    assert_true(isnan(r.runs[0].top1.sd) && isnan(r.runs[0].params));
    char *html = read_out("report.html"), *md = read_out("report.md"), *js = read_out("results.json");
    assert_well_formed(html, "report.html");
    assert_int_equal(count(html, "<svg"), 0);
    assert_non_null(strstr(html, "The recipe names no comparisons."));
    assert_non_null(strstr(html, "The store has no per-epoch metrics for these runs."));
    assert_non_null(strstr(html, "No run recorded its model size."));
    assert_null(strstr(html, "Confusion matrix"));
    assert_non_null(strstr(md, "| **only** | **50.00** | **\xe2\x80\x94** | **1** |"));
    cJSON *j = cJSON_Parse(js);
    assert_non_null(j);
    const cJSON *run = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "runs"), 0);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(run, "test_top1_pct"), "sd")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(run, "confusion")));
    cJSON_Delete(j);
    free(html), free(md), free(js);
    rg_report_free(&r);
}

/* Many runs: the curves' legend lists them all inside the chart. */
static void test_many_runs(void **state)
{
    (void)state;
    sqlite3 *db = rgt_store_new(store, "many");
    for (int i = 0; i < 24; i++) {
        char name[32];
        snprintf(name, sizeof name, "run-%02d", i);
        rgt_store_run(db, name, 1, 0.5 + 0.01 * i, 1000.0 * (i + 1), 0.1 * (i + 1), 2);
    }
    sqlite3_close(db);
    rg_report r;
    rg_error err = {0};
    if (rg_report_load(store, "many", &r, &err) || rg_report_write(&r, out, &err)) fail_msg("%s", err.msg);
    assert_int_equal(r.best, 23);
    char *html = read_out("report.html");
    assert_well_formed(html, "report.html");
    /* 26 legend entries of 20 units from y = 30: the chart is taller than
     * the default 340 and the last entry lies inside it. */
    const char *curves = strstr(html, "aria-label=\"top-1 accuracy per epoch\"");
    assert_non_null(curves);
    const char *tag = curves;
    while (tag > html && strncmp(tag, "<svg", 4)) tag--;
    const char *vb = strstr(tag, "viewBox=\"0 0 760 ");
    assert_true(vb && vb < curves);
    int h = atoi(vb + strlen("viewBox=\"0 0 760 "));
    assert_true(h >= 16 + 20 * 26 + 40);
    free(html);
    rg_report_free(&r);
}

/* ---- charts ----------------------------------------------------------------------- */

static void test_svg_lines(void **state)
{
    (void)state;
    double x[5] = {1, 2, 3, 4, 5}, y[5] = {50, 60, NAN, 80, 85};
    rg_svg_series s[2] = {{.x = x, .y = y, .n = 5, .color = 0, .tooltip = "a<b"},
                          {.x = x, .y = y, .n = 5, .color = 1, .dashed = 1}};
    rg_svg_legend lg[1] = {{.label = "run & co"}};
    rg_svg_axes ax = {.aria = "acc \"per\" epoch", .x_label = "epoch", .y_label = "top-1 (%)", .x_integer = 1};
    rg_text t = {0};
    rg_svg_lines(&t, &ax, s, 2, lg, 1);
    assert_false(t.failed);
    assert_well_formed(t.data, "line chart");
    assert_non_null(strstr(t.data, "aria-label=\"acc &quot;per&quot; epoch\""));
    assert_non_null(strstr(t.data, "<title>a&lt;b</title>"));
    assert_non_null(strstr(t.data, ">run &amp; co</text>"));
    /* The NaN breaks the line: two pieces, so two M commands per series. */
    const char *d = strstr(t.data, "<path d=\"M");
    assert_non_null(d);
    d = strstr(d + 1, "<path d=\"M");   /* the first path is the axis frame */
    assert_non_null(d);
    const char *e = strchr(d + 9, '"');
    int moves = 0;
    for (const char *p = d + 9; p < e; p++) moves += *p == 'M';
    assert_int_equal(moves, 2);
    /* Ticks: y 50..85 gets nice ticks 50, 60, 70, 80, 90; x whole epochs. */
    assert_non_null(strstr(t.data, ">50</text>"));
    assert_non_null(strstr(t.data, ">90</text>"));
    assert_null(strstr(t.data, ">1.5</text>"));
    /* 4 dots for the solid series' 4 points, none for the dashed one */
    assert_int_equal(count(t.data, "<circle"), 4);
    rg_text_free(&t);
}

static void test_svg_scatter_bars_heatmap(void **state)
{
    (void)state;
    rg_svg_point p[3] = {{.label = "small", .x = 10, .y = 80, .y_err = 0.5},
                         {.label = "big", .x = 1000, .y = 90, .y_err = 0.2, .color = 1},
                         {.label = "bad", .x = 500, .y = 70, .color = 2}};
    size_t front[2] = {0, 1};
    rg_svg_axes ax = {.aria = "scatter", .x_label = "size", .y_label = "acc", .x_log = 1};
    rg_text t = {0};
    rg_svg_scatter(&t, &ax, p, 3, front, 2);
    assert_well_formed(t.data, "scatter");
    /* Rings mark the 2 points on the front; log ticks 10, 100, 1000 */
    assert_int_equal(count(t.data, "r=\"9\""), 2);
    assert_non_null(strstr(t.data, ">100</text>"));
    assert_non_null(strstr(t.data, ">Pareto front</text>"));
    rg_text_free(&t);

    rg_svg_bar b[3] = {{.label = "kd", .value = 0.9, .lo = 0.4, .hi = 1.3, .tone = 1},
                       {.label = "qat", .value = -0.5, .lo = -0.9, .hi = -0.1, .tone = -1},
                       {.label = "none yet", .value = NAN, .lo = NAN, .hi = NAN}};
    rg_svg_axes bx = {.aria = "gains", .x_label = "pp"};
    rg_svg_bars(&t, &bx, b, 3);
    assert_well_formed(t.data, "bars");
    assert_int_equal(count(t.data, "<rect"), 2);
    assert_non_null(strstr(t.data, "fill=\"#59a14f\""));
    assert_non_null(strstr(t.data, "fill=\"#e15759\""));
    assert_non_null(strstr(t.data, ">+0.90  [+0.40, +1.30]</text>"));
    assert_non_null(strstr(t.data, ">no pairs</text>"));
    rg_text_free(&t);

    int64_t m[4] = {90, 10, 0, 100};
    const char *labels[2] = {"cat & dog", "<bird>"};
    rg_svg_heatmap(&t, "confusion", m, 2, labels);
    assert_well_formed(t.data, "heat map");
    assert_int_equal(count(t.data, "<rect"), 4);
    assert_non_null(strstr(t.data, ">90.0</text>"));
    assert_non_null(strstr(t.data, ">100.0</text>"));
    assert_non_null(strstr(t.data, "true cat &amp; dog, predicted &lt;bird&gt;: 10 (10.0 %)"));
    /* the full diagonal is darkest, the empty cell white */
    assert_non_null(strstr(t.data, "fill=\"#084594\""));
    assert_non_null(strstr(t.data, "fill=\"#f7fbff\""));
    rg_text_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_load_demo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_unfinished, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gap_closed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_best_leaves_out_teachers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_version_1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_rates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_checksum_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_demo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timing_cpus, setup, teardown),
        cmocka_unit_test_setup_teardown(test_escaping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_minimal_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_runs, setup, teardown),
        cmocka_unit_test(test_svg_lines),
        cmocka_unit_test(test_svg_scatter_bars_heatmap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
