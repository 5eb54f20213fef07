/* Checkpoints that travel with exported results (include/regain/experiment.h,
 * docs/experiments.md, "Moving results between stores").
 *
 * The store moves rows (src/store/transfer.c); this file moves the files
 * through the store's transfer hooks. Files go into one directory under
 * their SHA-256, so that the same file is stored once, a name cannot
 * escape the directory, and the importer checks every byte against the
 * record before it puts a file in place:
 *   - a finished run carries the artifacts its `artifacts` rows record
 *     (for the runs --files-of names), each copied only while it is still
 *     what the record says;
 *   - an unfinished run (status `running`) carries every file of its run
 *     directory, listed in the run's `files` field, so that `regain run`
 *     resumes it from its last epoch on the other machine. A run that a
 *     process holds now is left out: its files change under the copy. */
#include "regain/experiment.h"

#include "exp/hash.h"
#include "exp/plan.h"
#include "regain/fileio.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Checkpoints of the largest benchmark models are tens of MB; training
 * states of bigger models stay well below this. */
#define MAX_CARRIED_BYTES ((size_t)4 << 30)

static int is_sha256(const char *s)
{
    if (strlen(s) != 64) return 0;
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return 1;
}

static rg_status sha256_of(const void *data, size_t size, char hex[65], rg_error *err)
{
    rg_sha256 *h;
    rg_status st = rg_sha256_begin(&h, err);
    if (st) return st;
    rg_sha256_update(h, data, size);
    rg_sha256_final(h, hex);
    return RG_OK;
}

/* Writes data to path atomically, making its directory first. */
static rg_status put_file(const char *path, const void *data, size_t size, rg_error *err)
{
    rg_status st = rg_make_parent_dirs(path, err);
    return st ? st : rg_write_file_atomic(path, data, size, err);
}

/* ---- export ------------------------------------------------------------------------------------- */

typedef struct {
    const rg_exp_export_options *o;
    rg_exp_export_counts *c;
} exporter;

/* Whether --files-of names run `name`'s artifact `kind` ("RUN", "RUN:KIND" or "*"). */
static int files_wanted(const rg_exp_export_options *o, const char *name, const char *kind)
{
    for (int32_t i = 0; i < o->n_files_of; i++) {
        const char *w = o->files_of[i], *colon = strchr(w, ':');
        if (!strcmp(w, "*")) return 1;
        size_t len = colon ? (size_t)(colon - w) : strlen(w);
        if (strlen(name) == len && !strncmp(w, name, len) && (!colon || !strcmp(colon + 1, kind))) return 1;
    }
    return 0;
}

/* Copies file `path` into the files directory under its SHA-256, which it
 * must have when `expect` is not NULL; *hex gets it. *copied is 0 when the
 * file is not what expect says. */
static rg_status carry_file(exporter *x, const char *path, const char *expect, char hex[65], int *copied,
                            int64_t *bytes, rg_error *err)
{
    *copied = 0;
    void *data;
    size_t size;
    rg_status st = rg_read_file(path, MAX_CARRIED_BYTES, &data, &size, err);
    if (st) return st;
    if (!(st = sha256_of(data, size, hex, err)) && (!expect || !strcmp(expect, hex))) {
        char dst[1200];
        snprintf(dst, sizeof dst, "%s/%s", x->o->files_dir, hex);
        struct stat sb;
        /* named by content: one there already is this file */
        if (stat(dst, &sb) != 0 || (size_t)sb.st_size != size) st = put_file(dst, data, size, err);
        if (!st) {
            *copied = 1;
            *bytes = (int64_t)size;
            x->c->files++;
        }
    }
    free(data);
    return st;
}

/* A finished run: the recorded artifacts that --files-of asks for and that
 * are still on disk as recorded. */
static rg_status export_finished(exporter *x, const char *name, cJSON *run, rg_error *err)
{
    const cJSON *a;
    cJSON_ArrayForEach(a, cJSON_GetObjectItem(run, "artifacts"))
    {
        const cJSON *kind = cJSON_GetObjectItem(a, "kind"), *path = cJSON_GetObjectItem(a, "path"),
                    *sum = cJSON_GetObjectItem(a, "sha256");
        if (!cJSON_IsString(kind) || !cJSON_IsString(path) || !cJSON_IsString(sum)) continue;
        if (!files_wanted(x->o, name, kind->valuestring) || access(path->valuestring, F_OK) != 0) continue;
        char hex[65];
        int copied;
        int64_t bytes;
        rg_status st = carry_file(x, path->valuestring, sum->valuestring, hex, &copied, &bytes, err);
        if (st) return st;
        if (!copied) x->c->changed++;
    }
    return RG_OK;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* An unfinished run: every file of its directory (not the lock or other
 * hidden files, not temporaries), in the run's `files`, sorted by name. */
static rg_status export_unfinished(exporter *x, cJSON *run, const char *run_dir, int *keep, rg_error *err)
{
    char last[1200];
    snprintf(last, sizeof last, "%s/last.safetensors", run_dir);
    if (access(last, F_OK) != 0) { /* no epoch finished: nothing to resume from */
        *keep = 0;
        return RG_OK;
    }
    /* held shared while the files are copied: a `regain run` that would
     * start the run now finds it busy and comes back for it later */
    int busy;
    int lock = rg_exp_lock(run_dir, 1, &busy, err);
    if (lock < 0 && busy) {
        *keep = 0;
        if (!x->c->busy++) snprintf(x->c->busy_dir, sizeof x->c->busy_dir, "%s", run_dir);
        return RG_OK;
    }
    if (lock < 0) return err ? err->code : RG_ERR_IO;
    DIR *d = opendir(run_dir);
    if (!d) {
        close(lock);
        return rg_fail(err, RG_ERR_IO, "%s: cannot list the run directory", run_dir);
    }
    char *names[64];
    int32_t n = 0;
    rg_status st = RG_OK;
    struct dirent *e;
    while (!st && (e = readdir(d))) {
        char path[1200];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", run_dir, e->d_name);
        if (e->d_name[0] == '.' || rg_is_temp_name(e->d_name) || stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
            continue;
        if (n == (int32_t)(sizeof names / sizeof names[0]))
            st = rg_fail(err, RG_ERR_ARG, "%s: more than %d files in a run directory", run_dir, n);
        else if (!(names[n] = strdup(e->d_name))) st = rg_fail(err, RG_ERR_NOMEM, "out of memory");
        else n++;
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], by_name);
    cJSON *files = st ? NULL : cJSON_AddArrayToObject(run, "files");
    if (!st && !files) st = rg_fail(err, RG_ERR_NOMEM, "out of memory");
    for (int32_t i = 0; !st && i < n; i++) {
        char path[1200], hex[65];
        int copied;
        int64_t bytes;
        snprintf(path, sizeof path, "%s/%s", run_dir, names[i]);
        if ((st = carry_file(x, path, NULL, hex, &copied, &bytes, err))) break;
        cJSON *f = cJSON_CreateObject();
        char size[24];
        snprintf(size, sizeof size, "%lld", (long long)bytes);
        if (!f || !cJSON_AddStringToObject(f, "name", names[i]) || !cJSON_AddStringToObject(f, "sha256", hex) ||
            !cJSON_AddRawToObject(f, "bytes", size) || !cJSON_AddItemToArray(files, f)) {
            cJSON_Delete(f);
            st = rg_fail(err, RG_ERR_NOMEM, "out of memory");
        }
    }
    for (int32_t i = 0; i < n; i++) free(names[i]);
    close(lock);
    if (!st) x->c->unfinished++;
    return st;
}

static rg_status on_export(void *user, cJSON *run, int *keep, rg_error *err)
{
    exporter *x = user;
    const cJSON *name = cJSON_GetObjectItem(run, "name"), *status = cJSON_GetObjectItem(run, "status"),
                *dir = cJSON_GetObjectItem(run, "run_dir");
    if (!cJSON_IsString(name) || !cJSON_IsString(status) || !cJSON_IsString(dir)) return RG_OK;
    if (!strcmp(status->valuestring, "running")) return export_unfinished(x, run, dir->valuestring, keep, err);
    x->c->finished++;
    return export_finished(x, name->valuestring, run, err);
}

rg_status rg_exp_export(rg_store *s, const char *experiment, const char *path, const rg_exp_export_options *o,
                        rg_exp_export_counts *c, rg_error *err)
{
    memset(c, 0, sizeof *c);
    int32_t n;
    if (!o || !o->files_dir) {
        rg_status st = rg_store_export(s, experiment, path, NULL, &n, err);
        c->finished = st ? 0 : n;
        return st;
    }
    for (int32_t i = 0; i < o->n_files_of; i++) {
        const char *w = o->files_of[i], *colon = strchr(w, ':');
        if (colon && strcmp(colon + 1, "best") && strcmp(colon + 1, "last") && strcmp(colon + 1, "int8"))
            return rg_fail(err, RG_ERR_ARG, "--files-of %s: the checkpoint is best, last or int8", w);
    }
    rg_status st = rg_make_dirs(o->files_dir, err);
    if (st) return st;
    exporter x = {o, c};
    rg_store_transfer_hooks hooks = {.unfinished = 1, .on_export = on_export, .user = &x};
    st = rg_store_export(s, experiment, path, &hooks, &n, err);
    if (st) memset(c, 0, sizeof *c);
    return st;
}

/* ---- import ------------------------------------------------------------------------------------- */

typedef struct {
    const char *json, *dir;   /* the results file (for errors), the files directory */
    int32_t *files;
    /* the files this import created, removed again if it fails: the run
     * rows roll back, and checkpoints no row claims would stop a fresh
     * start of their runs (runner.c) */
    char **created;
    int32_t n_created, cap_created;
} importer;

/* Puts a carried file in place, remembering it when it is new. */
static rg_status place_file(importer *im, const char *path, const void *data, size_t size, rg_error *err)
{
    int existed = access(path, F_OK) == 0;
    if (!existed && im->n_created == im->cap_created) {
        int32_t cap = im->cap_created ? 2 * im->cap_created : 16;
        char **grown = realloc(im->created, (size_t)cap * sizeof *grown);
        if (!grown) return rg_fail(err, RG_ERR_NOMEM, "out of memory");
        im->created = grown;
        im->cap_created = cap;
    }
    char *copy = existed ? NULL : strdup(path);
    if (!existed && !copy) return rg_fail(err, RG_ERR_NOMEM, "out of memory");
    rg_status st = put_file(path, data, size, err);
    if (st) {
        free(copy);
        return st;
    }
    if (copy) im->created[im->n_created++] = copy;
    (*im->files)++;
    return RG_OK;
}

/* The content of <dir>/<sha256>, checked against it and its size; *data is
 * NULL (no error) when the directory does not hold it. */
static rg_status take_file(importer *im, const char *sha, int64_t bytes, const char *where, void **data, size_t *size,
                           rg_error *err)
{
    *data = NULL;
    char src[1200];
    snprintf(src, sizeof src, "%s/%s", im->dir, sha);
    if (access(src, F_OK) != 0) return RG_OK;
    rg_status st = rg_read_file(src, MAX_CARRIED_BYTES, data, size, err);
    char hex[65];
    if (!st) st = sha256_of(*data, *size, hex, err);
    if (!st && (strcmp(hex, sha) || (bytes >= 0 && (int64_t)*size != bytes)))
        st = rg_fail(err, RG_ERR_FORMAT, "%s: %s: %s: its content is not what the record says (SHA-256 or size "
                     "differs)", im->json, where, src);
    if (st) {
        free(*data);
        *data = NULL;
    }
    return st;
}

/* Whether run_dir is a relative path without "." or ".." parts: files from
 * a results file go only under the current directory, so that a file from
 * elsewhere cannot write over anything outside it. */
static int safe_run_dir(const char *run_dir)
{
    if (!run_dir[0] || run_dir[0] == '/') return 0;
    for (const char *p = run_dir; *p;) {
        size_t len = strcspn(p, "/");
        if (!len || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.')) return 0;
        p += len;
        if (*p) p++;
    }
    return 1;
}

/* A file name of a run directory: not empty, no '/', not hidden (the lock). */
static int plain_name(const char *name) { return name[0] && name[0] != '.' && !strchr(name, '/'); }

/* The string field key of obj, a SHA-256 when sha is set, or an error naming it. */
static rg_status text_field(importer *im, const cJSON *obj, const char *key, const char *where, int sha,
                            const char **out, rg_error *err)
{
    const cJSON *v = cJSON_GetObjectItem(obj, key);
    if (!cJSON_IsString(v) || (sha && !is_sha256(v->valuestring)))
        return rg_fail(err, RG_ERR_FORMAT, "%s: %s.%s: %s", im->json, where, key,
                       !v ? "missing" : !cJSON_IsString(v) ? "not a string" : "not a SHA-256 (64 hex digits)");
    *out = v->valuestring;
    return RG_OK;
}

static rg_status run_dir_field(importer *im, const cJSON *run, const char *where, const char **out, rg_error *err)
{
    rg_status st = text_field(im, run, "run_dir", where, 0, out, err);
    if (!st && !safe_run_dir(*out))
        st = rg_fail(err, RG_ERR_FORMAT, "%s: %s.run_dir: '%s': files are put only under the current directory (a "
                     "relative path without . or ..)", im->json, where, *out);
    return st;
}

static int64_t bytes_field(const cJSON *obj)
{
    const cJSON *v = cJSON_GetObjectItem(obj, "bytes");
    return cJSON_IsNumber(v) && v->valuedouble >= 0 ? (int64_t)v->valuedouble : -1;
}

/* Takes run_dir's lock, exclusive, for placing files in it (made first):
 * -1 with an error when it cannot, as when a `regain run` trains the run
 * now; the descriptor (close it to release) otherwise. */
static int lock_run_dir(importer *im, const char *run_dir, const char *where, rg_error *err)
{
    int busy = 0;
    int fd = rg_make_dirs(run_dir, err) ? -1 : rg_exp_lock(run_dir, 0, &busy, err);
    if (fd < 0 && busy)
        rg_fail(err, RG_ERR_IO, "%s: %s: %s is in use by another process (a `regain run` of it?); import again "
                "when it has stopped", im->json, where, run_dir);
    return fd;
}

/* A finished run: each recorded artifact the directory holds goes to its
 * recorded path; the others stay absent (the run is restored when a run
 * still to do needs one). */
static rg_status import_finished(importer *im, const cJSON *run, const char *where, rg_error *err)
{
    const char *run_dir = NULL;
    int i = 0, lock = -1;
    rg_status st = RG_OK;
    const cJSON *a;
    cJSON_ArrayForEach(a, cJSON_GetObjectItem(run, "artifacts"))
    {
        char at[200];
        snprintf(at, sizeof at, "%s.artifacts[%d]", where, i++);
        const char *path, *sha;
        st = text_field(im, a, "path", at, 0, &path, err);
        if (!st) st = text_field(im, a, "sha256", at, 1, &sha, err);
        void *data = NULL;
        size_t size;
        if (!st) st = take_file(im, sha, bytes_field(a), at, &data, &size, err);
        if (!st && !data) continue; /* not carried */
        /* a carried checkpoint goes only into the run's own directory */
        if (!st && !run_dir) st = run_dir_field(im, run, where, &run_dir, err);
        size_t n = run_dir ? strlen(run_dir) : 0;
        if (!st && (strncmp(path, run_dir, n) || path[n] != '/' || !plain_name(path + n + 1)))
            st = rg_fail(err, RG_ERR_FORMAT, "%s: %s.path: '%s' is not a file of the run's directory %s", im->json,
                         at, path, run_dir);
        if (!st && lock < 0 && (lock = lock_run_dir(im, run_dir, where, err)) < 0) st = err->code;
        if (!st) st = place_file(im, path, data, size, err);
        free(data);
        if (st) break;
    }
    if (lock >= 0) close(lock);
    return st;
}

/* An unfinished run: every file it lists must be in the directory, and goes
 * into its run directory, so that `regain run` resumes it. */
static rg_status import_unfinished(importer *im, const cJSON *run, const char *where, rg_error *err)
{
    const char *run_dir;
    rg_status st = run_dir_field(im, run, where, &run_dir, err);
    if (st) return st;
    const cJSON *files = cJSON_GetObjectItem(run, "files");
    if (!cJSON_IsArray(files))
        return rg_fail(err, RG_ERR_FORMAT, "%s: %s.files: %s (an unfinished run travels with its files)", im->json,
                       where, files ? "not an array" : "missing");
    int lock = lock_run_dir(im, run_dir, where, err);
    if (lock < 0) return err->code;
    int i = 0, has_last = 0;
    const cJSON *f;
    cJSON_ArrayForEach(f, files)
    {
        char at[200];
        snprintf(at, sizeof at, "%s.files[%d]", where, i++);
        const char *name, *sha;
        if ((st = text_field(im, f, "name", at, 0, &name, err)) || (st = text_field(im, f, "sha256", at, 1, &sha, err)))
            break;
        if (!plain_name(name)) {
            st = rg_fail(err, RG_ERR_FORMAT, "%s: %s.name: '%s' is not a file name of a run directory", im->json, at,
                         name);
            break;
        }
        has_last |= !strcmp(name, "last.safetensors");
        void *data;
        size_t size;
        if ((st = take_file(im, sha, bytes_field(f), at, &data, &size, err))) break;
        if (!data) {
            st = rg_fail(err, RG_ERR_NOTFOUND, "%s: %s: %s/%s: missing (import with the files directory that "
                         "`runs export --files` wrote)", im->json, at, im->dir, sha);
            break;
        }
        char dst[1200];
        snprintf(dst, sizeof dst, "%s/%s", run_dir, name);
        st = place_file(im, dst, data, size, err);
        free(data);
        if (st) break;
    }
    if (!st && !has_last)
        st = rg_fail(err, RG_ERR_FORMAT, "%s: %s.files: no last.safetensors to resume from", im->json, where);
    close(lock);
    return st;
}

static rg_status on_import(void *user, const cJSON *run, rg_error *err)
{
    importer *im = user;
    const cJSON *status = cJSON_GetObjectItem(run, "status"), *name = cJSON_GetObjectItem(run, "name");
    char where[160];
    snprintf(where, sizeof where, "run %s seed %g", cJSON_IsString(name) ? name->valuestring : "?",
             cJSON_GetNumberValue(cJSON_GetObjectItem(run, "seed")));
    if (cJSON_IsString(status) && !strcmp(status->valuestring, "running")) return import_unfinished(im, run, where, err);
    return import_finished(im, run, where, err);
}

rg_status rg_exp_import(rg_store *s, const char *path, const char *files_dir, rg_store_import_counts *c,
                        int32_t *files, rg_error *err)
{
    *files = 0;
    if (!files_dir) return rg_store_import(s, path, NULL, c, err);
    struct stat sb;
    if (stat(files_dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return rg_fail(err, RG_ERR_NOTFOUND, "%s: not a directory (--files)", files_dir);
    importer im = {.json = path, .dir = files_dir, .files = files};
    rg_store_transfer_hooks hooks = {.on_import = on_import, .user = &im};
    rg_status st = rg_store_import(s, path, &hooks, c, err);
    if (st) *files = 0;
    for (int32_t i = 0; i < im.n_created; i++) {
        if (st) unlink(im.created[i]);
        free(im.created[i]);
    }
    free(im.created);
    return st;
}
