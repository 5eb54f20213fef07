/* Atomic file replacement (temp + fsync + rename + directory fsync) and
 * bounded whole-file reads. See include/regain/fileio.h for the contract. */
#include "regain/fileio.h"
#include "io/sync.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

struct rg_atomic_file {
    char *path;   /* the target */
    char *tmp;    /* "<path>.tmp.<pid>.<tid>" */
    FILE *fp;     /* open on tmp until commit/abort */
    int failed;   /* a write failed: commit must not publish the file */
};

/* ---- helpers ------------------------------------------------------------ */

static char *dup_string(const char *s, rg_error *err)
{
    size_t n = strlen(s) + 1;
    char *p = rg_malloc(n, err);
    if (p) memcpy(p, s, n);
    return p;
}

/* Releases everything f owns and removes the temporary file if it is still
 * there. errno is preserved so callers can report the original failure. */
static void discard(rg_atomic_file *f)
{
    int saved = errno;
    if (f->fp) fclose(f->fp);
    if (f->tmp) unlink(f->tmp);
    free(f->tmp);
    free(f->path);
    free(f);
    errno = saved;
}

int rg_sync_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    if (!slash) {
        dir = strdup(".");
    } else if (slash == path) {
        dir = strdup("/");
    } else {
        dir = strndup(path, (size_t)(slash - path));
    }
    if (!dir) {
        errno = ENOMEM;
        return -1;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    if (rc != 0 && (errno == EINVAL || errno == ENOTSUP)) rc = 0;
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

/* ---- atomic writes ------------------------------------------------------ */

rg_status rg_atomic_open(const char *path, rg_atomic_file **out, rg_error *err)
{
    if (out) *out = NULL;
    if (!path || !*path || !out) return rg_fail(err, RG_ERR_ARG, "rg_atomic_open: empty path or NULL out");

    rg_atomic_file *f = rg_calloc(1, sizeof *f, err);
    if (!f) return RG_ERR_NOMEM;
    f->path = dup_string(path, err);
    size_t tmp_size = strlen(path) + 32;
    f->tmp = f->path ? rg_malloc(tmp_size, err) : NULL;
    if (!f->tmp) {
        free(f->path);
        free(f);
        return RG_ERR_NOMEM;
    }
    /* The thread id keeps two threads of this process apart when they
     * write the same target. */
    snprintf(f->tmp, tmp_size, "%s.tmp.%ld.%ld", path, (long)getpid(), (long)syscall(SYS_gettid));

    /* O_EXCL so we never write through a symlink or into a file someone else
     * has open. A leftover with our pid and thread id can only come from a
     * dead process (ids are reused, e.g. pid 1 in every container run):
     * replace it once. */
    int fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno == EEXIST && unlink(f->tmp) == 0)
        fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) {
        rg_fail(err, RG_ERR_IO, "%s: cannot create temporary file %s: %s", path, f->tmp, strerror(errno));
        free(f->tmp);
        f->tmp = NULL; /* not ours: do not unlink it */
        discard(f);
        return RG_ERR_IO;
    }
    f->fp = fdopen(fd, "wb");
    if (!f->fp) {
        rg_fail(err, RG_ERR_IO, "%s: cannot open temporary file %s: %s", path, f->tmp, strerror(errno));
        close(fd);
        discard(f);
        return RG_ERR_IO;
    }
    *out = f;
    return RG_OK;
}

rg_status rg_atomic_write(rg_atomic_file *f, const void *data, size_t size, rg_error *err)
{
    if (!f) return rg_fail(err, RG_ERR_ARG, "rg_atomic_write: NULL file");
    if (f->failed) return rg_fail(err, RG_ERR_IO, "%s: an earlier write failed", f->path);
    if (size == 0) return RG_OK;
    if (!data) return rg_fail(err, RG_ERR_ARG, "%s: rg_atomic_write: NULL data", f->path);
    errno = 0;
    if (fwrite(data, 1, size, f->fp) != size) {
        f->failed = 1;
        return rg_fail(err, RG_ERR_IO, "%s: cannot write %s: %s", f->path, f->tmp,
                       strerror(errno ? errno : EIO));
    }
    return RG_OK;
}

rg_status rg_atomic_commit(rg_atomic_file *f, rg_error *err)
{
    if (!f) return rg_fail(err, RG_ERR_ARG, "rg_atomic_commit: NULL file");
    if (f->failed) {
        rg_fail(err, RG_ERR_IO, "%s: an earlier write failed; file not replaced", f->path);
        discard(f);
        return RG_ERR_IO;
    }
    /* Data must be on disk before the rename makes it visible, otherwise a
     * crash could publish a file of the right name with missing blocks. */
    const char *step = "flush";
    if (fflush(f->fp) != 0) goto fail;
    step = "fsync";
    if (fsync(fileno(f->fp)) != 0) goto fail;
    step = "close";
    {
        FILE *fp = f->fp;
        f->fp = NULL;
        if (fclose(fp) != 0) goto fail;
    }
    step = "rename";
    if (rename(f->tmp, f->path) != 0) goto fail;

    /* The temporary name no longer exists: nothing to remove from here on. */
    free(f->tmp);
    f->tmp = NULL;
    if (rg_sync_parent_dir(f->path) != 0) {
        rg_fail(err, RG_ERR_IO, "%s: written, but cannot fsync its directory: %s", f->path, strerror(errno));
        discard(f);
        return RG_ERR_IO;
    }
    discard(f);
    return RG_OK;

fail:
    rg_fail(err, RG_ERR_IO, "%s: cannot %s %s: %s", f->path, step,
            strcmp(step, "rename") == 0 ? "temporary file over it" : f->tmp,
            strerror(errno ? errno : EIO));
    discard(f);
    return RG_ERR_IO;
}

void rg_atomic_abort(rg_atomic_file *f)
{
    if (f) discard(f);
}

rg_status rg_write_file_atomic(const char *path, const void *data, size_t size, rg_error *err)
{
    rg_atomic_file *f;
    rg_status st = rg_atomic_open(path, &f, err);
    if (st != RG_OK) return st;
    st = rg_atomic_write(f, data, size, err);
    if (st != RG_OK) {
        rg_atomic_abort(f);
        return st;
    }
    return rg_atomic_commit(f, err);
}

int rg_is_temp_name(const char *name)
{
    const char *p = NULL; /* the last ".tmp." */
    for (const char *q = strstr(name, ".tmp."); q; q = strstr(q + 1, ".tmp.")) p = q;
    if (!p || p == name) return 0;
    p += 5;
    for (int part = 0; part < 2; part++) {
        if (*p < '0' || *p > '9') return 0;
        while (*p >= '0' && *p <= '9') p++;
        if (part == 0 && *p++ != '.') return 0;
    }
    return *p == 0;
}

int rg_remove_stale_temps(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!rg_is_temp_name(e->d_name)) continue;
        char path[4096];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= sizeof path) continue;
        struct stat sb;
        if (lstat(path, &sb) == 0 && S_ISREG(sb.st_mode) && unlink(path) == 0) removed++;
    }
    closedir(d);
    return removed;
}

/* ---- whole-file reads --------------------------------------------------- */

rg_status rg_read_file(const char *path, size_t max_size, void **data, size_t *size, rg_error *err)
{
    if (data) *data = NULL;
    if (size) *size = 0;
    if (!path || !data || !size) return rg_fail(err, RG_ERR_ARG, "rg_read_file: NULL argument");

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return rg_fail(err, RG_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        rg_fail(err, RG_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return RG_ERR_IO;
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return rg_fail(err, RG_ERR_IO, "%s: cannot read: not a regular file", path);
    }
    if ((uintmax_t)sb.st_size > (uintmax_t)max_size) {
        close(fd);
        return rg_fail(err, RG_ERR_FORMAT, "%s: file is too large (%jd bytes, limit %zu)", path,
                       (intmax_t)sb.st_size, max_size);
    }
    size_t n = (size_t)sb.st_size;
    char *buf = rg_malloc(n + 1, err);
    if (!buf) {
        close(fd);
        return RG_ERR_NOMEM;
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            rg_fail(err, RG_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
            free(buf);
            close(fd);
            return RG_ERR_IO;
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (got != n) {
        free(buf);
        return rg_fail(err, RG_ERR_IO, "%s: file shrank while being read (%zu of %zu bytes)", path, got, n);
    }
    buf[n] = 0;
    *data = buf;
    *size = n;
    return RG_OK;
}
