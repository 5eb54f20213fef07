/* Moving results between stores: an experiment's finished runs exported to
 * a JSON file and imported into another store (include/regain/store.h;
 * the format is in docs/experiments.md, "Moving results").
 *
 * Rows travel generically: every column of a table but the store-local ids,
 * as the schema lists them, so a column added to the schema later travels
 * without a change here. Importing binds a field only after finding its
 * name among the table's columns: nothing from the file reaches SQL text. */
#include "store/store_sql.h"

#include "regain/fileio.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FORMAT_NAME "regain results"
#define FORMAT_VERSION 1
/* A results file holds metrics, not checkpoints: a few MB even for
 * hundreds of runs. */
#define MAX_FILE_BYTES ((size_t)256 << 20)

/* The tables a run's rows live in besides `runs`, keyed in the file by
 * their table name; one-row tables are objects, the others arrays. */
static const struct {
    const char *table, *order;
    int many;
} run_tables[] = {
    {"epoch_metrics", "epoch", 1},
    {"final_metrics", NULL, 0},
    {"artifacts", "kind", 1},
    {"environment", NULL, 0},
};
#define N_RUN_TABLES (sizeof run_tables / sizeof run_tables[0])

/* Columns that mean something only inside one store. */
static int local_column(const char *table, const char *column)
{
    return !strcmp(column, "id") || !strcmp(column, "run_id") || !strcmp(column, "experiment_id") ||
           (!strcmp(table, "runs") && !strcmp(column, "imported_from"));
}

/* ---- export --------------------------------------------------------------------------------------- */

/* A number as JSON text that reads back as the same double: the shortest
 * of 15, 16 or 17 significant digits that does (cJSON's own printing
 * accepts a last-bit difference). JSON has no infinity: null. */
static cJSON *exact_number(double v)
{
    if (!isfinite(v)) return cJSON_CreateNull();
    char text[40];
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(text, sizeof text, "%.*g", digits, v);
        if (strtod(text, NULL) == v) break;
    }
    return cJSON_CreateRaw(text);
}

/* The current row as an object of its non-local columns. */
static cJSON *row_object(sqlite3_stmt *st, const char *table)
{
    cJSON *o = cJSON_CreateObject();
    for (int i = 0; o && i < sqlite3_column_count(st); i++) {
        const char *c = sqlite3_column_name(st, i);
        if (local_column(table, c)) continue;
        cJSON *v;
        switch (sqlite3_column_type(st, i)) {
        case SQLITE_INTEGER: {
            char text[24];
            snprintf(text, sizeof text, "%lld", (long long)sqlite3_column_int64(st, i));
            v = cJSON_CreateRaw(text);
            break;
        }
        case SQLITE_FLOAT: v = exact_number(sqlite3_column_double(st, i)); break;
        case SQLITE_NULL: v = cJSON_CreateNull(); break;
        default: v = cJSON_CreateString((const char *)sqlite3_column_text(st, i)); break;
        }
        if (!v || !cJSON_AddItemToObject(o, c, v)) {
            cJSON_Delete(v);
            cJSON_Delete(o);
            return NULL;
        }
    }
    return o;
}

/* The rows of `sql` (one int64 parameter) as objects: an array, or (one
 * row tables) the row's object or null. */
static rg_status rows_json(rg_store *s, const char *table, const char *sql, int64_t id, int many, cJSON **out,
                           rg_error *err)
{
    sqlite3_stmt *st;
    rg_status rc = store_query(s, &st, err, sql, "i", id);
    if (rc) return rc;
    *out = many ? cJSON_CreateArray() : NULL;
    int r;
    while (!rc && (r = sqlite3_step(st)) == SQLITE_ROW) {
        cJSON *o = row_object(st, table);
        if (!o) rc = rg_fail(err, RG_ERR_NOMEM, "out of memory exporting %s", table);
        else if (many) cJSON_AddItemToArray(*out, o);
        else {
            cJSON_Delete(*out);
            *out = o;
        }
    }
    if (!rc && r != SQLITE_DONE) rc = store_fail(s, err, "cannot read the runs to export");
    sqlite3_finalize(st);
    if (!rc && !*out && !(*out = cJSON_CreateNull())) rc = rg_fail(err, RG_ERR_NOMEM, "out of memory");
    if (rc) {
        cJSON_Delete(*out);
        *out = NULL;
    }
    return rc;
}

/* One row per run of the experiment, with its rows of the other tables. */
static rg_status runs_json(rg_store *s, int64_t experiment, const rg_store_transfer_hooks *hooks, cJSON *runs,
                           int32_t *n, rg_error *err)
{
    sqlite3_stmt *st;
    rg_status rc = store_query(s, &st, err,
                               hooks && hooks->unfinished
                                   ? "SELECT * FROM runs r WHERE experiment_id = ? AND status IN ('done', 'running') "
                                     "ORDER BY (SELECT min(id) FROM runs q WHERE q.experiment_id = r.experiment_id "
                                     "AND q.name = r.name), seed"
                                   : "SELECT * FROM runs r WHERE experiment_id = ? AND status = 'done' ORDER BY "
                                     "(SELECT min(id) FROM runs q WHERE q.experiment_id = r.experiment_id AND "
                                     "q.name = r.name), seed",
                               "i", experiment);
    if (rc) return rc;
    int r;
    while (!rc && (r = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        cJSON *o = row_object(st, "runs");
        if (!o) {
            rc = rg_fail(err, RG_ERR_NOMEM, "out of memory exporting runs");
            break;
        }
        cJSON_AddItemToArray(runs, o);
        for (size_t t = 0; !rc && t < N_RUN_TABLES; t++) {
            char sql[160];
            snprintf(sql, sizeof sql, "SELECT * FROM %s WHERE run_id = ?%s%s", run_tables[t].table,
                     run_tables[t].order ? " ORDER BY " : "", run_tables[t].order ? run_tables[t].order : "");
            cJSON *rows;
            if (!(rc = rows_json(s, run_tables[t].table, sql, id, run_tables[t].many, &rows, err)))
                cJSON_AddItemToObject(o, run_tables[t].table, rows);
        }
        int keep = 1;
        if (!rc && hooks && hooks->on_export) rc = hooks->on_export(hooks->user, o, &keep, err);
        if (!keep) cJSON_Delete(cJSON_DetachItemViaPointer(runs, o));
        else (*n)++;
    }
    if (!rc && r != SQLITE_DONE) rc = store_fail(s, err, "cannot read the runs to export");
    sqlite3_finalize(st);
    return rc;
}

rg_status rg_store_export(rg_store *s, const char *name, const char *path, const rg_store_transfer_hooks *hooks,
                          int32_t *n_runs, rg_error *err)
{
    *n_runs = 0;
    int64_t experiment;
    rg_status rc = rg_store_find_experiment(s, name, &experiment, err);
    if (rc) return rc;
    cJSON *root = cJSON_CreateObject(), *x = NULL, *cmp = NULL, *runs = cJSON_CreateArray();
    if (!root || !runs) rc = rg_fail(err, RG_ERR_NOMEM, "out of memory");
    if (!rc) {
        cJSON_AddStringToObject(root, "format", FORMAT_NAME);
        cJSON_AddNumberToObject(root, "version", FORMAT_VERSION);
        rc = rows_json(s, "experiments", "SELECT * FROM experiments WHERE id = ?", experiment, 0, &x, err);
    }
    if (!rc) {
        cJSON_AddItemToObject(root, "experiment", x);
        rc = rows_json(s, "comparisons", "SELECT * FROM comparisons WHERE experiment_id = ? ORDER BY name",
                       experiment, 1, &cmp, err);
    }
    if (!rc) {
        cJSON_AddItemToObject(root, "comparisons", cmp);
        cJSON_AddItemToObject(root, "runs", runs);
        runs = NULL;
        rc = runs_json(s, experiment, hooks, cJSON_GetObjectItem(root, "runs"), n_runs, err);
    }
    char *text = rc ? NULL : cJSON_Print(root);
    if (!rc && !text) rc = rg_fail(err, RG_ERR_NOMEM, "out of memory writing %s", path);
    if (!rc) {
        size_t len = strlen(text);
        text[len] = '\n'; /* cJSON_Print leaves no newline; its buffer ends in the NUL overwritten here */
        rc = rg_write_file_atomic(path, text, len + 1, err);
    }
    free(text);
    cJSON_Delete(root);
    cJSON_Delete(runs);
    return rc;
}

/* ---- import --------------------------------------------------------------------------------------- */

/* The columns of one table as the schema declares them, read once per
 * import (PRAGMA table_info). */
#define MAX_COLUMNS 32
typedef struct {
    const char *table;
    int32_t n;
    char name[MAX_COLUMNS][32];
    char type[MAX_COLUMNS]; /* 'i' integer, 'd' real, 't' text */
} table_columns;

typedef struct {
    rg_store *s;
    const char *path;   /* the file, for errors and runs.imported_from */
    const rg_store_transfer_hooks *hooks;
    rg_error *err;
    table_columns tables[8];
    int32_t n_tables;
} importer;

/* The declared type of table.column: 'i' integer, 'd' real, 't' text; 0
 * when the table has no such column (or its columns cannot be read). */
static char column_type(importer *im, const char *table, const char *column)
{
    table_columns *t = NULL;
    for (int32_t i = 0; i < im->n_tables && !t; i++)
        if (!strcmp(im->tables[i].table, table)) t = &im->tables[i];
    if (!t && im->n_tables < (int32_t)(sizeof im->tables / sizeof im->tables[0])) {
        t = &im->tables[im->n_tables++];
        memset(t, 0, sizeof *t);
        t->table = table;
        char sql[96];
        snprintf(sql, sizeof sql, "PRAGMA table_info(%s)", table);
        sqlite3_stmt *st;
        if (store_query(im->s, &st, im->err, sql, "")) return 0;
        while (t->n < MAX_COLUMNS && sqlite3_step(st) == SQLITE_ROW) {
            const char *decl = (const char *)sqlite3_column_text(st, 2);
            snprintf(t->name[t->n], sizeof t->name[0], "%s", (const char *)sqlite3_column_text(st, 1));
            t->type[t->n++] = decl && strstr(decl, "INT") ? 'i' : decl && strstr(decl, "REAL") ? 'd' : 't';
        }
        sqlite3_finalize(st);
    }
    for (int32_t i = 0; t && i < t->n; i++)
        if (!strcmp(t->name[i], column)) return t->type[i];
    return 0;
}

/* Inserts obj's fields as a row of table, with link = link_id first
 * (unless link is NULL) and imported_from = the file for runs; *rowid (if
 * not NULL) gets the new row's id. where names obj in the file
 * ("runs[3].epoch_metrics[1]"); fields that are child tables are skipped. */
static rg_status insert_row(importer *im, const char *table, const cJSON *obj, const char *link, int64_t link_id,
                            const char *where, int64_t *rowid)
{
    if (!cJSON_IsObject(obj)) return rg_fail(im->err, RG_ERR_FORMAT, "%s: %s: not an object", im->path, where);
    char cols[1024], marks[256];
    int len = 0, mlen = 0;
    int runs = !strcmp(table, "runs");
    if (link) {
        len = snprintf(cols, sizeof cols, "%s", link);
        mlen = snprintf(marks, sizeof marks, "?");
    }
    if (runs) {
        len += snprintf(cols + len, sizeof cols - (size_t)len, ", imported_from");
        mlen += snprintf(marks + mlen, sizeof marks - (size_t)mlen, ", ?");
    }
    const cJSON *f;
    cJSON_ArrayForEach(f, obj)
    {
        /* child tables, and the files list of an unfinished run (its hook's) */
        int child = runs && !strcmp(f->string, "files");
        for (size_t t = 0; runs && t < N_RUN_TABLES; t++) child |= !strcmp(f->string, run_tables[t].table);
        if (child) continue;
        if (local_column(table, f->string) || !column_type(im, table, f->string))
            return rg_fail(im->err, RG_ERR_FORMAT, "%s: %s: unknown field '%s' (not a column of %s)", im->path,
                           where, f->string, table);
        len += snprintf(cols + len, len < (int)sizeof cols ? sizeof cols - (size_t)len : 0, "%s%s",
                        len ? ", " : "", f->string);
        mlen += snprintf(marks + mlen, mlen < (int)sizeof marks ? sizeof marks - (size_t)mlen : 0, "%s?",
                         mlen ? ", " : "");
    }
    if (len >= (int)sizeof cols || mlen >= (int)sizeof marks)
        return rg_fail(im->err, RG_ERR_FORMAT, "%s: %s: too many fields", im->path, where);
    char sql[1400];
    snprintf(sql, sizeof sql, "INSERT INTO %s(%s) VALUES(%s)", table, cols, marks);
    sqlite3_stmt *st;
    rg_status rc = store_prepare(im->s, sql, &st, im->err);
    if (rc) return rc;
    int k = 1;
    if (link) sqlite3_bind_int64(st, k++, link_id);
    if (runs) sqlite3_bind_text(st, k++, im->path, -1, SQLITE_TRANSIENT);
    cJSON_ArrayForEach(f, obj)
    {
        char type = column_type(im, table, f->string);
        if (!type) continue; /* a child table */
        if (cJSON_IsNull(f)) sqlite3_bind_null(st, k);
        else if (cJSON_IsString(f) && type == 't') sqlite3_bind_text(st, k, f->valuestring, -1, SQLITE_TRANSIENT);
        else if (cJSON_IsNumber(f) && type == 'd') sqlite3_bind_double(st, k, f->valuedouble);
        else if (cJSON_IsNumber(f) && type == 'i' && f->valuedouble == floor(f->valuedouble) &&
                 fabs(f->valuedouble) < 9007199254740992.0)
            sqlite3_bind_int64(st, k, (sqlite3_int64)f->valuedouble);
        else {
            sqlite3_finalize(st);
            return rg_fail(im->err, RG_ERR_FORMAT, "%s: %s.%s: not %s", im->path, where, f->string,
                           type == 't' ? "a string" : type == 'i' ? "an integer" : "a number");
        }
        k++;
    }
    if (sqlite3_step(st) != SQLITE_DONE) {
        char what[320];
        snprintf(what, sizeof what, "cannot import %s of %s", where, im->path);
        /* a missing required field or a value the schema refuses */
        if ((sqlite3_errcode(im->s->db) & 0xff) == SQLITE_CONSTRAINT)
            rc = rg_fail(im->err, RG_ERR_FORMAT, "%s: %s: %s", im->path, where, sqlite3_errmsg(im->s->db));
        else rc = store_fail(im->s, im->err, what);
    } else if (rowid) {
        *rowid = sqlite3_last_insert_rowid(im->s->db);
    }
    sqlite3_finalize(st);
    return rc;
}

/* A string field of obj, or an error naming it. */
static rg_status string_field(importer *im, const cJSON *obj, const char *key, const char *where, const char **out)
{
    const cJSON *v = cJSON_GetObjectItem(obj, key);
    if (!cJSON_IsString(v))
        return rg_fail(im->err, RG_ERR_FORMAT, "%s: %s: '%s' is %s", im->path, where, key,
                       v ? "not a string" : "missing");
    *out = v->valuestring;
    return RG_OK;
}

/* The experiment of the file: the store's own of that name, else created
 * (with the file's comparisons). */
static rg_status import_experiment(importer *im, const cJSON *root, int64_t *id)
{
    const cJSON *x = cJSON_GetObjectItem(root, "experiment");
    const char *name;
    rg_status rc = cJSON_IsObject(x) ? string_field(im, x, "name", "experiment", &name)
                                     : rg_fail(im->err, RG_ERR_FORMAT, "%s: 'experiment' is missing", im->path);
    if (rc) return rc;
    rg_error e = {0};
    rc = rg_store_find_experiment(im->s, name, id, &e);
    if (rc != RG_ERR_NOTFOUND) {
        if (rc) *im->err = e;
        return rc;
    }
    const cJSON *f;
    rc = insert_row(im, "experiments", x, NULL, 0, "experiment", id);
    const cJSON *cmp = cJSON_GetObjectItem(root, "comparisons");
    if (!rc && cmp && !cJSON_IsArray(cmp))
        rc = rg_fail(im->err, RG_ERR_FORMAT, "%s: 'comparisons' is not an array", im->path);
    int i = 0;
    cJSON_ArrayForEach(f, cmp)
    {
        char where[48];
        snprintf(where, sizeof where, "comparisons[%d]", i++);
        if (!rc) rc = insert_row(im, "comparisons", f, "experiment_id", *id, where, NULL);
    }
    return rc;
}

/* One run of the file: inserted with its rows unless the store holds it
 * (done, or running now) already. */
static rg_status import_run(importer *im, int64_t experiment, const cJSON *run, int index,
                            rg_store_import_counts *c)
{
    char where[48];
    snprintf(where, sizeof where, "runs[%d]", index);
    const char *name, *hash, *status;
    rg_status rc = string_field(im, run, "name", where, &name);
    if (!rc) rc = string_field(im, run, "config_hash", where, &hash);
    if (!rc) rc = string_field(im, run, "status", where, &status);
    if (rc) return rc;
    const cJSON *seed = cJSON_GetObjectItem(run, "seed");
    /* 2^53: every integer up to it is exact in a double, and it converts */
    if (!cJSON_IsNumber(seed) || seed->valuedouble != floor(seed->valuedouble) ||
        fabs(seed->valuedouble) > 9007199254740992.0)
        return rg_fail(im->err, RG_ERR_FORMAT, "%s: %s: 'seed' is %s", im->path, where,
                       !seed ? "missing" : cJSON_IsNumber(seed) && seed->valuedouble == floor(seed->valuedouble)
                                               ? "out of range"
                                               : "not an integer");
    int unfinished = !strcmp(status, "running");
    if (strcmp(status, "done") && !unfinished)
        return rg_fail(im->err, RG_ERR_FORMAT, "%s: %s: status '%s': only finished and unfinished runs are imported",
                       im->path, where, status);
    /* an unfinished run is worth its row only with its files */
    if (unfinished && !(im->hooks && im->hooks->on_import)) {
        c->unfinished++;
        return RG_OK;
    }
    rg_store_run row;
    if ((rc = rg_store_get_run(im->s, experiment, name, (int64_t)seed->valuedouble, &row, im->err))) return rc;
    if (row.id && (!strcmp(row.status, "done") || !strcmp(row.status, "running"))) {
        if (!strcmp(row.status, "done") && !strcmp(row.hash, hash)) c->present++;
        else c->kept++;
        return RG_OK;
    }
    /* a pending or failed row gives way */
    if (row.id && (rc = rg_store_delete_run(im->s, row.id, im->err))) return rc;
    int64_t id;
    if ((rc = insert_row(im, "runs", run, "experiment_id", experiment, where, &id))) return rc;
    for (size_t t = 0; !rc && t < N_RUN_TABLES; t++) {
        const char *table = run_tables[t].table;
        const cJSON *rows = cJSON_GetObjectItem(run, table);
        char sub[96];
        if (!rows || cJSON_IsNull(rows)) continue;
        if (!run_tables[t].many) {
            snprintf(sub, sizeof sub, "%s.%s", where, table);
            rc = insert_row(im, table, rows, "run_id", id, sub, NULL);
            continue;
        }
        if (!cJSON_IsArray(rows))
            return rg_fail(im->err, RG_ERR_FORMAT, "%s: %s.%s: not an array", im->path, where, table);
        int i = 0;
        const cJSON *r;
        cJSON_ArrayForEach(r, rows)
        {
            snprintf(sub, sizeof sub, "%s.%s[%d]", where, table, i++);
            if (!rc) rc = insert_row(im, table, r, "run_id", id, sub, NULL);
        }
    }
    if (!rc && im->hooks && im->hooks->on_import) rc = im->hooks->on_import(im->hooks->user, run, im->err);
    if (!rc) c->imported++;
    return rc;
}

rg_status rg_store_import(rg_store *s, const char *path, const rg_store_transfer_hooks *hooks,
                          rg_store_import_counts *counts, rg_error *err)
{
    memset(counts, 0, sizeof *counts);
    void *text;
    size_t size;
    rg_status rc = rg_read_file(path, MAX_FILE_BYTES, &text, &size, err);
    if (rc) return rc;
    cJSON *root = cJSON_ParseWithLength(text, size);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        size_t off = at && at >= (const char *)text && at <= (const char *)text + size ? (size_t)(at - (char *)text) : 0;
        free(text);
        return rg_fail(err, RG_ERR_FORMAT, "%s: not valid JSON (near byte %zu)", path, off);
    }
    free(text);
    importer im = {.s = s, .path = path, .hooks = hooks, .err = err};
    const cJSON *fmt = cJSON_GetObjectItem(root, "format"), *ver = cJSON_GetObjectItem(root, "version");
    const cJSON *runs = cJSON_GetObjectItem(root, "runs");
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, FORMAT_NAME))
        rc = rg_fail(err, RG_ERR_FORMAT, "%s: 'format' is not \"%s\": not a file of regain runs export", path,
                     FORMAT_NAME);
    else if (!cJSON_IsNumber(ver) || ver->valuedouble != FORMAT_VERSION)
        rc = rg_fail(err, RG_ERR_FORMAT, "%s: 'version' %g: this regain reads version %d", path,
                     cJSON_IsNumber(ver) ? ver->valuedouble : -1.0, FORMAT_VERSION);
    else if (!cJSON_IsArray(runs))
        rc = rg_fail(err, RG_ERR_FORMAT, "%s: 'runs' is %s", path, runs ? "not an array" : "missing");
    if (!rc) rc = rg_store_begin(s, err);
    if (!rc) {
        int64_t experiment;
        rc = import_experiment(&im, root, &experiment);
        int i = 0;
        const cJSON *run;
        cJSON_ArrayForEach(run, runs)
        {
            if (!rc) rc = import_run(&im, experiment, run, i, counts);
            i++;
        }
        if (!rc) rc = rg_store_commit(s, err);
        else rg_store_rollback(s);
    }
    if (rc) memset(counts, 0, sizeof *counts);
    cJSON_Delete(root);
    return rc;
}
