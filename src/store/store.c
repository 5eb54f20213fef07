/* The experiment store on SQLite (see include/regain/store.h and
 * docs/experiments.md). Every statement goes through prepare/bind/step with
 * errors turned into rg_error messages that name the store file. */
#include "regain/store.h"
#include "regain/fileio.h"
#include "store/schema.h"
#include "store/store_sql.h"

#include <math.h>
#include <stdarg.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void (*fault_hook)(const char *point);

void rg_store_set_fault_hook(void (*hook)(const char *point)) { fault_hook = hook; }

static void fault(const char *point)
{
    if (fault_hook) fault_hook(point);
}

/* ---- errors and statements ------------------------------------------------------------ */

rg_status store_fail(const rg_store *s, rg_error *err, const char *what)
{
    int code = sqlite3_extended_errcode(s->db);
    int prim = code & 0xff;
    rg_status st = prim == SQLITE_NOTADB || prim == SQLITE_CORRUPT ? RG_ERR_FORMAT
                   : prim == SQLITE_NOMEM                         ? RG_ERR_NOMEM
                                                                  : RG_ERR_IO;
    return rg_fail(err, st, "%s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
}

rg_status store_prepare(rg_store *s, const char *sql, sqlite3_stmt **stmt, rg_error *err)
{
    if (sqlite3_prepare_v2(s->db, sql, -1, stmt, NULL) != SQLITE_OK) {
        *stmt = NULL;
        return store_fail(s, err, "cannot prepare a query");
    }
    return RG_OK;
}

/* Binds "t" text, "i" int64, "d" double (NaN binds NULL), "n" NULL. */
static void bindv(sqlite3_stmt *st, const char *types, va_list ap)
{
    for (int i = 0; types[i]; i++) {
        switch (types[i]) {
        case 't': {
            const char *v = va_arg(ap, const char *);
            if (v) sqlite3_bind_text(st, i + 1, v, -1, SQLITE_TRANSIENT);
            else sqlite3_bind_null(st, i + 1);
            break;
        }
        case 'i': sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t)); break;
        case 'd': {
            double v = va_arg(ap, double);
            if (isnan(v)) sqlite3_bind_null(st, i + 1);
            else sqlite3_bind_double(st, i + 1, v);
            break;
        }
        default: sqlite3_bind_null(st, i + 1); break;
        }
    }
}

/* What a statement writes, for its error message: "to table T" for an
 * INSERT, UPDATE or DELETE, otherwise its first word ("BEGIN"). */
static void statement_target(const char *sql, char *buf, size_t size)
{
    static const char *const marks[] = {"UPDATE ", "INTO ", "DELETE FROM "};
    for (size_t k = 0; k < sizeof marks / sizeof marks[0]; k++) {
        const char *p = strstr(sql, marks[k]);
        if (!p) continue;
        p += strlen(marks[k]);
        size_t n = strcspn(p, " (");
        snprintf(buf, size, "to table %.*s", (int)n, p);
        return;
    }
    snprintf(buf, size, "(%.*s)", (int)strcspn(sql, " "), sql);
}

/* Runs a statement that returns no rows. */
rg_status store_exec(rg_store *s, rg_error *err, const char *sql, const char *types, ...)
{
    sqlite3_stmt *st;
    rg_status rc = store_prepare(s, sql, &st, err);
    if (rc) return rc;
    va_list ap;
    va_start(ap, types);
    bindv(st, types, ap);
    va_end(ap);
    int r = sqlite3_step(st);
    if (r != SQLITE_DONE && r != SQLITE_ROW) {
        char what[96], target[64];
        statement_target(sql, target, sizeof target);
        snprintf(what, sizeof what, "cannot write %s", target);
        rc = store_fail(s, err, what);
    }
    sqlite3_finalize(st);
    return rc;
}

/* Prepares and binds a query whose rows the caller steps through. */
rg_status store_query(rg_store *s, sqlite3_stmt **out, rg_error *err, const char *sql, const char *types, ...)
{
    rg_status rc = store_prepare(s, sql, out, err);
    if (rc) return rc;
    va_list ap;
    va_start(ap, types);
    bindv(*out, types, ap);
    va_end(ap);
    return RG_OK;
}

void store_col_text(sqlite3_stmt *st, int i, char *buf, size_t size)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    snprintf(buf, size, "%s", t ? (const char *)t : "");
}

double store_col_double(sqlite3_stmt *st, int i, double missing)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? missing : sqlite3_column_double(st, i);
}

/* ---- opening ------------------------------------------------------------------------------ */

static rg_status check_schema(rg_store *s, rg_error *err)
{
    sqlite3_stmt *st;
    rg_status rc = store_query(s, &st, err, "PRAGMA user_version", "");
    if (rc) return rc;
    int r = sqlite3_step(st);
    int version = r == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_finalize(st);
    if (r != SQLITE_ROW) return store_fail(s, err, "cannot read the schema version");
    s->version = version;
    if (version == RG_STORE_SCHEMA_VERSION) return RG_OK;
    if (version > RG_STORE_SCHEMA_VERSION)
        return rg_fail(err, RG_ERR_FORMAT, "%s: store schema version %d is newer than this regain's (%d)", s->path,
                       version, RG_STORE_SCHEMA_VERSION);
    if (version >= 1) {
        /* read-only users read no column a later version added; a writer
         * upgrades (inside the opening transaction: all or nothing) */
        if (s->read_only) return RG_OK;
        for (int v = version; v < RG_STORE_SCHEMA_VERSION; v++)
            if (sqlite3_exec(s->db, rg_store_schema_upgrades[v], NULL, NULL, NULL) != SQLITE_OK)
                return store_fail(s, err, "cannot upgrade the schema");
        s->version = RG_STORE_SCHEMA_VERSION;
        return RG_OK;
    }
    if (version != 0)
        return rg_fail(err, RG_ERR_FORMAT, "%s: store schema version %d is not %d", s->path, version,
                       RG_STORE_SCHEMA_VERSION);
    /* version 0: a new file, or some other SQLite database */
    if ((rc = store_query(s, &st, err, "SELECT count(*) FROM sqlite_master", ""))) return rc;
    r = sqlite3_step(st);
    int64_t objects = r == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    if (r != SQLITE_ROW) return store_fail(s, err, "cannot read the schema");
    if (objects > 0)
        return rg_fail(err, RG_ERR_FORMAT, "%s: an SQLite database, but not a regain experiment store", s->path);
    if (s->read_only) return rg_fail(err, RG_ERR_FORMAT, "%s: an empty database, not a regain store", s->path);
    if (sqlite3_exec(s->db, rg_store_schema_sql, NULL, NULL, NULL) != SQLITE_OK)
        return store_fail(s, err, "cannot create the tables");
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", RG_STORE_SCHEMA_VERSION);
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK) return store_fail(s, err, "cannot set the version");
    s->version = RG_STORE_SCHEMA_VERSION;
    return RG_OK;
}

rg_status rg_store_open(const char *path, int read_only, rg_store **out, rg_error *err)
{
    *out = NULL;
    rg_store *s = rg_calloc(1, sizeof *s, err);
    if (!s) return RG_ERR_NOMEM;
    if (strlen(path) >= sizeof s->path) {
        free(s);
        return rg_fail(err, RG_ERR_ARG, "store path is too long");
    }
    snprintf(s->path, sizeof s->path, "%s", path);
    s->read_only = read_only;
    struct stat sb;
    if (stat(path, &sb) != 0) {
        if (read_only) {
            free(s);
            return rg_fail(err, RG_ERR_NOTFOUND, "%s: no experiment store (run a recipe with 'regain run' first)",
                           path);
        }
        /* a new store: its directory too (runs/ on a fresh checkout) */
        rg_status st = rg_make_parent_dirs(path, err);
        if (st) {
            free(s);
            return st;
        }
    } else if (!S_ISREG(sb.st_mode)) {
        free(s);
        return rg_fail(err, RG_ERR_IO, "%s: not a regular file", path);
    }
    int flags = read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    if (sqlite3_open_v2(path, &s->db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        rg_status st = s->db ? store_fail(s, err, "cannot open") : rg_fail(err, RG_ERR_NOMEM, "out of memory");
        rg_store_close(s);
        return st;
    }
    /* Writers of other processes hold the lock for one short transaction at a
     * time; waiting a minute covers a loaded machine. */
    sqlite3_busy_timeout(s->db, 60000);
    rg_status st = RG_OK;
    if (!read_only) {
        /* WAL: readers never block the writer and a killed writer never
         * leaves a half-applied transaction (the WAL is replayed or dropped
         * on the next open). */
        sqlite3_stmt *q;
        if (!(st = store_query(s, &q, err, "PRAGMA journal_mode = WAL", ""))) {
            int r = sqlite3_step(q);
            char mode[16] = "";
            if (r == SQLITE_ROW) store_col_text(q, 0, mode, sizeof mode);
            sqlite3_finalize(q);
            if (r != SQLITE_ROW) st = store_fail(s, err, "cannot switch to WAL mode");
            else if (strcmp(mode, "wal") != 0)
                st = rg_fail(err, RG_ERR_IO, "%s: the file system does not support WAL mode (journal mode %s)",
                             path, mode);
        }
        if (!st && sqlite3_exec(s->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL) != SQLITE_OK)
            st = store_fail(s, err, "cannot set synchronous mode");
    }
    if (!st && sqlite3_exec(s->db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL) != SQLITE_OK)
        st = store_fail(s, err, "cannot enable foreign keys");
    /* Two processes creating one new store: the second waits here and then
     * finds the schema in place. */
    if (!st && !read_only) st = rg_store_begin(s, err);
    if (!st) {
        st = check_schema(s, err);
        if (!read_only) {
            if (st) rg_store_rollback(s);
            else st = rg_store_commit(s, err);
        }
    }
    if (st) {
        rg_store_close(s);
        return st;
    }
    *out = s;
    return RG_OK;
}

void rg_store_close(rg_store *s)
{
    if (!s) return;
    sqlite3_close(s->db);
    free(s);
}

const char *rg_store_path(const rg_store *s) { return s->path; }
sqlite3 *rg_store_db(rg_store *s) { return s->db; }

rg_status rg_store_begin(rg_store *s, rg_error *err)
{
    if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return store_fail(s, err, "cannot start a transaction");
    return RG_OK;
}

rg_status rg_store_commit(rg_store *s, rg_error *err)
{
    if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        rg_status st = store_fail(s, err, "cannot commit");
        rg_store_rollback(s);
        return st;
    }
    return RG_OK;
}

void rg_store_rollback(rg_store *s)
{
    if (!sqlite3_get_autocommit(s->db)) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

#define NOW "strftime('%Y-%m-%dT%H:%M:%fZ','now')"

/* ---- experiments ---------------------------------------------------------------------------- */

rg_status rg_store_find_experiment(rg_store *s, const char *name, int64_t *id, rg_error *err)
{
    sqlite3_stmt *st;
    rg_status rc = store_query(s, &st, err, "SELECT id FROM experiments WHERE name = ?", "t", name);
    if (rc) return rc;
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) *id = sqlite3_column_int64(st, 0);
    else if (r == SQLITE_DONE) rc = rg_fail(err, RG_ERR_NOTFOUND, "%s: no experiment '%s'", s->path, name);
    else rc = store_fail(s, err, "cannot read experiments");
    sqlite3_finalize(st);
    return rc;
}

rg_status rg_store_put_experiment(rg_store *s, const char *name, const char *recipe_path, const char *recipe_text,
                                  int64_t *id, rg_error *err)
{
    rg_status rc = store_exec(s, err,
                        "INSERT INTO experiments(name, recipe_path, recipe_text, created_at, updated_at) "
                        "VALUES(?, ?, ?, " NOW ", " NOW ") ON CONFLICT(name) DO UPDATE SET "
                        "recipe_path = excluded.recipe_path, recipe_text = excluded.recipe_text, "
                        "updated_at = excluded.updated_at",
                        "ttt", name, recipe_path, recipe_text);
    return rc ? rc : rg_store_find_experiment(s, name, id, err);
}

rg_status rg_store_set_comparisons(rg_store *s, int64_t experiment, const rg_store_comparison *c, int32_t n,
                                   rg_error *err)
{
    rg_status rc = store_exec(s, err, "DELETE FROM comparisons WHERE experiment_id = ?", "i", experiment);
    for (int32_t i = 0; !rc && i < n; i++)
        rc = store_exec(s, err,
                  "INSERT INTO comparisons(experiment_id, name, baseline, treatment, reference) VALUES(?, ?, ?, ?, ?)",
                  "itttt", experiment, c[i].name, c[i].baseline, c[i].treatment,
                  c[i].reference && c[i].reference[0] ? c[i].reference : NULL);
    return rc;
}

/* ---- runs ----------------------------------------------------------------------------------- */

/* The columns of a run row that rg_store_run holds, for a query's SELECT
 * list (imported_from is NULL in a read-only file from before it). */
static const char *run_columns(const rg_store *s)
{
#define EPOCHS_DONE "(SELECT count(*) FROM epoch_metrics e WHERE e.run_id = r.id)"
    return s->version >= RG_STORE_SINCE_IMPORTED
               ? "r.id, r.status, r.config_hash, r.run_dir, r.wall_s, r.error, f.test_top1, "
                 "r.imported_from IS NOT NULL, " EPOCHS_DONE
               : "r.id, r.status, r.config_hash, r.run_dir, r.wall_s, r.error, f.test_top1, 0, " EPOCHS_DONE;
#undef EPOCHS_DONE
}
#define RUN_COLUMNS 9

/* The run_columns() of a query's current row. */
static void run_row(sqlite3_stmt *st, rg_store_run *row)
{
    row->id = sqlite3_column_int64(st, 0);
    store_col_text(st, 1, row->status, sizeof row->status);
    store_col_text(st, 2, row->hash, sizeof row->hash);
    store_col_text(st, 3, row->run_dir, sizeof row->run_dir);
    row->wall_s = store_col_double(st, 4, 0.0);
    store_col_text(st, 5, row->error, sizeof row->error);
    row->test_top1 = store_col_double(st, 6, -1.0);
    row->imported = sqlite3_column_int(st, 7);
    row->epochs_done = sqlite3_column_int(st, 8);
}

rg_status rg_store_get_run(rg_store *s, int64_t experiment, const char *name, int64_t seed, rg_store_run *row,
                           rg_error *err)
{
    memset(row, 0, sizeof *row);
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT %s FROM runs r LEFT JOIN final_metrics f ON f.run_id = r.id "
             "WHERE r.experiment_id = ? AND r.name = ? AND r.seed = ?",
             run_columns(s));
    sqlite3_stmt *st;
    rg_status rc = store_query(s, &st, err, sql, "iti", experiment, name, seed);
    if (rc) return rc;
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        run_row(st, row);
    } else if (r != SQLITE_DONE) {
        rc = store_fail(s, err, "cannot read runs");
    }
    sqlite3_finalize(st);
    return rc;
}

rg_status rg_store_add_pending(rg_store *s, int64_t experiment, const char *name, int64_t seed, const char *kind,
                               const char *config_text, const char *run_dir, rg_error *err)
{
    return store_exec(s, err,
                "INSERT OR IGNORE INTO runs(experiment_id, name, seed, kind, config_hash, config_text, status, run_dir) "
                "VALUES(?, ?, ?, ?, '', ?, 'pending', ?)",
                "itittt", experiment, name, seed, kind, config_text, run_dir);
}

rg_status rg_store_mark_stale(rg_store *s, int64_t experiment, const char *name, int64_t seed, rg_error *err)
{
    return store_exec(s, err,
                      "UPDATE runs SET status = 'pending' WHERE experiment_id = ? AND name = ? AND seed = ? AND "
                      "status = 'done'",
                      "iti", experiment, name, seed);
}

rg_status rg_store_start_run(rg_store *s, int64_t experiment, const char *name, int64_t seed, const char *kind,
                             const char *hash, const char *config_text, const char *run_dir, int resume,
                             int64_t *id, rg_error *err)
{
    rg_status rc;
    if (resume)
        rc = store_exec(s, err,
                  /* an unfinished run imported with its files is this store's own once it resumes here */
                  "UPDATE runs SET status = 'running', error = NULL, finished_at = NULL, imported_from = NULL "
                  "WHERE experiment_id = ? AND name = ? AND seed = ?",
                  "iti", experiment, name, seed);
    else
        rc = store_exec(s, err,
                  "INSERT INTO runs(experiment_id, name, seed, kind, config_hash, config_text, status, run_dir, "
                  "started_at, wall_s) VALUES(?, ?, ?, ?, ?, ?, 'running', ?, " NOW ", 0) "
                  "ON CONFLICT(experiment_id, name, seed) DO UPDATE SET kind = excluded.kind, "
                  "config_hash = excluded.config_hash, config_text = excluded.config_text, status = 'running', "
                  "run_dir = excluded.run_dir, error = NULL, started_at = excluded.started_at, finished_at = NULL, "
                  "wall_s = 0, imported_from = NULL",
                  "ititttt", experiment, name, seed, kind, hash, config_text, run_dir);
    rg_store_run row;
    if (!rc) rc = rg_store_get_run(s, experiment, name, seed, &row, err);
    if (!rc && !row.id) rc = rg_fail(err, RG_ERR_IO, "%s: run %s seed %lld vanished", s->path, name, (long long)seed);
    if (rc) return rc;
    *id = row.id;
    if (resume) return RG_OK;
    static const char *const tables[] = {"epoch_metrics", "final_metrics", "artifacts", "environment"};
    for (size_t i = 0; !rc && i < sizeof tables / sizeof tables[0]; i++) {
        char sql[96];
        snprintf(sql, sizeof sql, "DELETE FROM %s WHERE run_id = ?", tables[i]);
        rc = store_exec(s, err, sql, "i", row.id);
    }
    return rc;
}

rg_status rg_store_find_donor(rg_store *s, const char *hash, const char *kind, int64_t experiment, int32_t skip,
                              rg_store_run *row, char *donor, size_t cap, rg_error *err)
{
    memset(row, 0, sizeof *row);
    if (cap) donor[0] = 0;
    char sql[640];
    snprintf(sql, sizeof sql,
             "SELECT %s, e.name || '/' || r.name FROM runs r JOIN experiments e ON e.id = r.experiment_id "
             "LEFT JOIN final_metrics f ON f.run_id = r.id "
             "WHERE r.config_hash = ? AND r.kind = ? AND r.status = 'done' AND r.experiment_id != ? "
             "ORDER BY r.finished_at DESC, r.id DESC LIMIT 1 OFFSET ?",
             run_columns(s));
    sqlite3_stmt *st;
    rg_status rc = store_query(s, &st, err, sql, "ttii", hash, kind, experiment, (int64_t)skip);
    if (rc) return rc;
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        run_row(st, row);
        if (cap) store_col_text(st, RUN_COLUMNS, donor, cap);
    } else if (r != SQLITE_DONE) {
        rc = store_fail(s, err, "cannot read runs");
    }
    sqlite3_finalize(st);
    return rc;
}

/* Copies table's rows of run `from` to run `to`: every column but run_id,
 * as the schema lists them (so columns added later come along). */
static rg_status copy_rows(rg_store *s, const char *table, int64_t from, int64_t to, rg_error *err)
{
    char cols[1024] = "", sql[2400], q[96];
    snprintf(q, sizeof q, "PRAGMA table_info(%s)", table);
    sqlite3_stmt *st;
    rg_status rc = store_query(s, &st, err, q, "");
    if (rc) return rc;
    size_t len = 0;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        const char *c = (const char *)sqlite3_column_text(st, 1);
        if (!c || !strcmp(c, "run_id")) continue;
        len += (size_t)snprintf(cols + len, len < sizeof cols ? sizeof cols - len : 0, "%s%s", len ? ", " : "", c);
    }
    /* a failed step is not the end of the columns */
    if (r != SQLITE_DONE) rc = store_fail(s, err, "cannot read the columns of a table");
    sqlite3_finalize(st);
    if (rc) return rc;
    if (len >= sizeof cols) return rg_fail(err, RG_ERR_FORMAT, "%s: table %s has too many columns", s->path, table);
    snprintf(sql, sizeof sql, "INSERT INTO %s(run_id, %s) SELECT ?, %s FROM %s WHERE run_id = ?", table, cols, cols,
             table);
    return store_exec(s, err, sql, "ii", to, from);
}

rg_status rg_store_adopt_run(rg_store *s, int64_t from, int64_t experiment, const char *name, int64_t seed,
                             const char *run_dir, rg_error *err)
{
    rg_status rc = store_exec(s, err,
                        "INSERT INTO runs(experiment_id, name, seed, kind, config_hash, config_text, status, run_dir, "
                        "error, started_at, finished_at, wall_s) "
                        "SELECT ?, ?, ?, kind, config_hash, config_text, 'done', ?, NULL, started_at, finished_at, "
                        "wall_s FROM runs WHERE id = ? "
                        "ON CONFLICT(experiment_id, name, seed) DO UPDATE SET kind = excluded.kind, "
                        "config_hash = excluded.config_hash, config_text = excluded.config_text, status = 'done', "
                        "run_dir = excluded.run_dir, error = NULL, started_at = excluded.started_at, "
                        "finished_at = excluded.finished_at, wall_s = excluded.wall_s, imported_from = NULL",
                        "ititi", experiment, name, seed, run_dir, from);
    rg_store_run row, donor;
    if (!rc) rc = rg_store_get_run(s, experiment, name, seed, &row, err);
    if (!rc && !row.id) rc = rg_fail(err, RG_ERR_IO, "%s: run %s seed %lld vanished", s->path, name, (long long)seed);
    sqlite3_stmt *st;
    if (!rc) rc = store_query(s, &st, err, "SELECT run_dir FROM runs WHERE id = ?", "i", from);
    if (rc) return rc;
    int found = sqlite3_step(st) == SQLITE_ROW;
    if (found) store_col_text(st, 0, donor.run_dir, sizeof donor.run_dir);
    sqlite3_finalize(st);
    if (!found) return rg_fail(err, RG_ERR_NOTFOUND, "%s: no run with id %lld to reuse", s->path, (long long)from);
    static const char *const tables[] = {"epoch_metrics", "final_metrics", "artifacts", "environment"};
    for (size_t i = 0; !rc && i < sizeof tables / sizeof tables[0]; i++) {
        char sql[96];
        snprintf(sql, sizeof sql, "DELETE FROM %s WHERE run_id = ?", tables[i]);
        rc = store_exec(s, err, sql, "i", row.id);
        if (!rc) rc = copy_rows(s, tables[i], from, row.id, err);
    }
    /* the artifacts are this run's copies: DONOR_DIR/x becomes RUN_DIR/x */
    if (!rc)
        rc = store_exec(s, err,
                  "UPDATE artifacts SET path = ? || substr(path, length(?) + 1) "
                  "WHERE run_id = ? AND substr(path, 1, length(?) + 1) = ? || '/'",
                  "ttitt", run_dir, donor.run_dir, row.id, donor.run_dir, donor.run_dir);
    return rc;
}

rg_status rg_store_delete_run(rg_store *s, int64_t id, rg_error *err)
{
    /* the other tables follow through ON DELETE CASCADE */
    return store_exec(s, err, "DELETE FROM runs WHERE id = ?", "i", id);
}

rg_status rg_store_fail_run(rg_store *s, int64_t id, const char *message, double wall_s, rg_error *err)
{
    return store_exec(s, err, "UPDATE runs SET status = 'failed', error = ?, finished_at = " NOW ", wall_s = ? WHERE id = ?",
                "tdi", message, wall_s, id);
}

static rg_status put_epoch(rg_store *s, int64_t id, const rg_epoch_metrics *m, const char *verb, rg_error *err)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "%s INTO epoch_metrics(run_id, epoch, lr, train_loss, train_top1, test_loss, test_top1, val_top1, "
             "seconds, images_per_s) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
             verb);
    return store_exec(s, err, sql, "iidddddddd", id, (int64_t)m->epoch, m->lr, m->train_loss, m->train_top1, m->test_loss,
                m->test_top1, m->val_top1 < 0 ? NAN : m->val_top1, m->seconds, m->images_per_s);
}

rg_status rg_store_put_epoch(rg_store *s, int64_t id, const rg_epoch_metrics *m, double wall_s, rg_error *err)
{
    rg_status rc = put_epoch(s, id, m, "INSERT OR REPLACE", err);
    return rc ? rc : rg_store_set_wall(s, id, wall_s, err);
}

rg_status rg_store_set_wall(rg_store *s, int64_t id, double wall_s, rg_error *err)
{
    return store_exec(s, err, "UPDATE runs SET wall_s = ? WHERE id = ?", "di", wall_s, id);
}

rg_status rg_store_finish_run(rg_store *s, int64_t id, const rg_epoch_metrics *epochs, int32_t n_epochs,
                              const rg_store_final *f, const rg_store_artifact *artifacts, int32_t n_artifacts,
                              const rg_store_env *env, double wall_s, rg_error *err)
{
    rg_status rc = rg_store_begin(s, err);
    if (rc) return rc;
    for (int32_t i = 0; !rc && i < n_epochs; i++) rc = put_epoch(s, id, &epochs[i], "INSERT OR IGNORE", err);
    fault("finish:epochs");
    if (!rc)
        rc = store_exec(s, err,
                  "INSERT OR REPLACE INTO final_metrics(run_id, test_top1, test_loss, best_top1, best_epoch, params, "
                  "macs, model_bytes, latency_ms, train_s, confusion) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                  "idddiiiiddt", id, f->test_top1, f->test_loss, f->best_top1, (int64_t)f->best_epoch, f->params,
                  f->macs, f->model_bytes, f->latency_ms, f->train_s, f->confusion_json);
    fault("finish:final_metrics");
    for (int32_t i = 0; !rc && i < n_artifacts; i++)
        rc = store_exec(s, err, "INSERT OR REPLACE INTO artifacts(run_id, kind, path, sha256, bytes) VALUES(?, ?, ?, ?, ?)",
                  "ittti", id, artifacts[i].kind, artifacts[i].path, artifacts[i].sha256, artifacts[i].bytes);
    fault("finish:artifacts");
    if (!rc)
        rc = store_exec(s, err,
                  "INSERT OR REPLACE INTO environment(run_id, git_commit, compiler, cpu_model, cpu_features, threads, "
                  "seed, hostname, regain_version, blas_core) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                  "ittttiittt", id, env->git_commit, env->compiler, env->cpu_model, env->cpu_features,
                  (int64_t)env->threads, env->seed, env->hostname, env->regain_version, env->blas_core);
    fault("finish:environment");
    if (!rc)
        rc = store_exec(s, err,
                  "UPDATE runs SET status = 'done', error = NULL, finished_at = " NOW ", wall_s = ? WHERE id = ?",
                  "di", wall_s, id);
    fault("finish:status");
    if (rc) {
        rg_store_rollback(s);
        return rc;
    }
    return rg_store_commit(s, err);
}

rg_status rg_store_get_artifact(rg_store *s, int64_t run_id, const char *kind, rg_store_artifact *a, rg_error *err)
{
    memset(a, 0, sizeof *a);
    sqlite3_stmt *st;
    rg_status rc =
        store_query(s, &st, err, "SELECT path, sha256, bytes FROM artifacts WHERE run_id = ? AND kind = ?", "it", run_id, kind);
    if (rc) return rc;
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        snprintf(a->kind, sizeof a->kind, "%s", kind);
        store_col_text(st, 0, a->path, sizeof a->path);
        store_col_text(st, 1, a->sha256, sizeof a->sha256);
        a->bytes = sqlite3_column_int64(st, 2);
    } else if (r == SQLITE_DONE) {
        rc = rg_fail(err, RG_ERR_NOTFOUND, "%s: run %lld has no '%s' artifact", s->path, (long long)run_id, kind);
    } else {
        rc = store_fail(s, err, "cannot read artifacts");
    }
    sqlite3_finalize(st);
    return rc;
}

rg_status rg_store_knows_artifact(rg_store *s, const char *sha256, int *known, rg_error *err)
{
    *known = 0;
    sqlite3_stmt *st;
    rg_status rc = store_query(s, &st, err, "SELECT 1 FROM artifacts WHERE sha256 = ? LIMIT 1", "t", sha256);
    if (rc) return rc;
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) *known = 1;
    else if (r != SQLITE_DONE) rc = store_fail(s, err, "cannot read artifacts");
    sqlite3_finalize(st);
    return rc;
}

/* ---- throughput ------------------------------------------------------------------------------- */

/* The median of the sorted values v[0, n). */
static double median_sorted(const double *v, int n) { return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]); }

rg_status rg_store_rates(rg_store *s, const char *model, int32_t threads, const char *cpu,
                         double (*model_macs)(void *user, const char *model), void *user, double *images_per_s,
                         double *macs_per_s, rg_error *err)
{
    *images_per_s = 0.0;
    *macs_per_s = 0.0;
    /* The model is the "model = ..." line of the stored configuration; the
     * epochs come sorted by model, then by rate, for the medians. */
    sqlite3_stmt *st;
    rg_status rc = store_query(
        s, &st, err,
        "SELECT CASE WHEN instr(tail, char(10)) > 0 THEN substr(tail, 1, instr(tail, char(10)) - 1) ELSE tail END "
        "AS name, ips FROM (SELECT substr(r.config_text, instr(r.config_text, char(10) || 'model = ') + 9) AS tail, "
        "e.images_per_s AS ips FROM epoch_metrics e JOIN runs r ON r.id = e.run_id "
        "LEFT JOIN environment v ON v.run_id = r.id "
        "WHERE e.images_per_s > 0 AND instr(r.config_text, char(10) || 'model = ') > 0 AND (?1 = 0 OR v.threads = ?1) "
        "AND (?2 = '' OR v.cpu_model || char(10) || v.cpu_features = ?2)) "
        "ORDER BY name, ips",
        "it", (int64_t)threads, cpu ? cpu : "");
    if (rc) return rc;
    double sum = 0.0, *v = NULL;
    int n_models = 0, n = 0, cap = 0, r;
    char name[256] = "";
    for (;;) {
        r = sqlite3_step(st);
        const char *next = r == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
        if (n && (!next || strcmp(next, name))) {
            /* the end of one model's epochs */
            double med = median_sorted(v, n);
            if (!strcmp(name, model)) *images_per_s = med;
            double m = model_macs ? model_macs(user, name) : 0.0;
            if (m > 0) {
                sum += m * med;
                n_models++;
            }
            n = 0;
        }
        if (r != SQLITE_ROW) break;
        if (!next || strlen(next) >= sizeof name) continue;
        snprintf(name, sizeof name, "%s", next);
        if (n == cap) {
            double *grown = realloc(v, (size_t)(cap = cap ? 2 * cap : 64) * sizeof *v);
            if (!grown) {
                rc = rg_fail(err, RG_ERR_NOMEM, "out of memory");
                break;
            }
            v = grown;
        }
        v[n++] = sqlite3_column_double(st, 1);
    }
    if (!rc && r != SQLITE_DONE) rc = store_fail(s, err, "cannot read epoch metrics");
    sqlite3_finalize(st);
    free(v);
    if (n_models) *macs_per_s = sum / n_models;
    return rc;
}

/* ---- file checksums ----------------------------------------------------------------------------- */

rg_status rg_store_get_file_hash(rg_store *s, const char *path, const rg_file_stamp *stamp, char sha256[65],
                                 int *found, rg_error *err)
{
    *found = 0;
    /* an older store open read-only keeps no stamps */
    if (s->version < RG_STORE_SINCE_FILE_STAMP) return RG_OK;
    sqlite3_stmt *st;
    rg_status rc = store_query(s, &st, err,
                               "SELECT sha256 FROM file_hashes WHERE path = ? AND size = ? AND mtime_ns = ? "
                               "AND ctime_ns = ? AND inode = ?",
                               "tiiii", path, stamp->size, stamp->mtime_ns, stamp->ctime_ns, stamp->inode);
    if (rc) return rc;
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        store_col_text(st, 0, sha256, 65);
        *found = strlen(sha256) == 64;
    } else if (r != SQLITE_DONE) {
        rc = store_fail(s, err, "cannot read file checksums");
    }
    sqlite3_finalize(st);
    return rc;
}

rg_status rg_store_put_file_hash(rg_store *s, const char *path, const rg_file_stamp *stamp, const char *sha256,
                                 rg_error *err)
{
    if (s->read_only) return RG_OK;
    return store_exec(s, err,
                      "INSERT OR REPLACE INTO file_hashes(path, size, mtime_ns, ctime_ns, inode, sha256) "
                      "VALUES(?, ?, ?, ?, ?, ?)",
                      "tiiiit", path, stamp->size, stamp->mtime_ns, stamp->ctime_ns, stamp->inode, sha256);
}

/* ---- listing ------------------------------------------------------------------------------------ */

rg_status rg_store_list_runs(rg_store *s, const rg_store_filter *f, rg_store_run_info **rows, int32_t *n,
                             rg_error *err)
{
    *rows = NULL;
    *n = 0;
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT x.name, r.name, r.kind, r.status, r.config_hash, r.id, r.seed, r.run_dir, r.started_at, "
             "r.finished_at, r.error, r.wall_s, f.run_id, f.test_top1, f.test_loss, f.best_top1, f.latency_ms, "
             "f.train_s, f.best_epoch, f.params, f.macs, f.model_bytes, %s "
             "FROM runs r JOIN experiments x ON x.id = r.experiment_id LEFT JOIN final_metrics f ON f.run_id = r.id "
             "WHERE (?1 IS NULL OR x.name = ?1) AND (?2 IS NULL OR r.name = ?2) AND (?3 IS NULL OR r.status = ?3) "
             "ORDER BY x.id, (SELECT min(id) FROM runs q WHERE q.experiment_id = r.experiment_id AND q.name = r.name), "
             "r.seed",
             s->version >= RG_STORE_SINCE_IMPORTED ? "r.imported_from" : "NULL");
    sqlite3_stmt *st;
    rg_status rc = store_query(s, &st, err, sql, "ttt", f ? f->experiment : NULL, f ? f->name : NULL,
                               f ? f->status : NULL);
    if (rc) return rc;
    int32_t cap = 0;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            rg_store_run_info *p = realloc(*rows, (size_t)cap * sizeof *p);
            if (!p) {
                rc = rg_fail(err, RG_ERR_NOMEM, "out of memory listing runs");
                break;
            }
            *rows = p;
        }
        rg_store_run_info *o = &(*rows)[(*n)++];
        memset(o, 0, sizeof *o);
        store_col_text(st, 0, o->experiment, sizeof o->experiment);
        store_col_text(st, 1, o->name, sizeof o->name);
        store_col_text(st, 2, o->kind, sizeof o->kind);
        store_col_text(st, 3, o->status, sizeof o->status);
        store_col_text(st, 4, o->hash, sizeof o->hash);
        o->id = sqlite3_column_int64(st, 5);
        o->seed = sqlite3_column_int64(st, 6);
        store_col_text(st, 7, o->run_dir, sizeof o->run_dir);
        store_col_text(st, 8, o->started_at, sizeof o->started_at);
        store_col_text(st, 9, o->finished_at, sizeof o->finished_at);
        store_col_text(st, 10, o->error, sizeof o->error);
        o->wall_s = store_col_double(st, 11, -1.0);
        o->has_final = sqlite3_column_type(st, 12) != SQLITE_NULL;
        o->test_top1 = store_col_double(st, 13, NAN);
        o->test_loss = store_col_double(st, 14, NAN);
        o->best_top1 = store_col_double(st, 15, NAN);
        o->latency_ms = store_col_double(st, 16, NAN);
        o->train_s = store_col_double(st, 17, NAN);
        o->best_epoch = sqlite3_column_int(st, 18);
        o->params = sqlite3_column_int64(st, 19);
        o->macs = sqlite3_column_int64(st, 20);
        o->model_bytes = sqlite3_column_int64(st, 21);
        store_col_text(st, 22, o->imported_from, sizeof o->imported_from);
    }
    if (!rc && r != SQLITE_DONE) rc = store_fail(s, err, "cannot list runs");
    sqlite3_finalize(st);
    if (rc) {
        free(*rows);
        *rows = NULL;
        *n = 0;
    }
    return rc;
}
