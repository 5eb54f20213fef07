/* regain — status codes and error messages.
 *
 * Library functions never print and never exit: they return an rg_status and,
 * on failure, fill an rg_error whose message names the file (or spec line, or
 * field) and the problem. Only the command-line tool prints and exits.
 *
 *     rg_error err = {0};
 *     if (rg_idx_load("train-images.gz", &img, &err) != RG_OK)
 *         fprintf(stderr, "regain: %s\n", err.msg);
 *
 * Codes are appended at the end only: exit codes of the CLI derive from them.
 */
#ifndef REGAIN_STATUS_H
#define REGAIN_STATUS_H

#include <stddef.h>

typedef enum {
    RG_OK = 0,
    RG_ERR_ARG = 1,         /* invalid argument or option value */
    RG_ERR_IO = 2,          /* a file could not be opened, read or written */
    RG_ERR_FORMAT = 3,      /* a file's content is malformed (bad magic, truncated, checksum) */
    RG_ERR_SPEC = 4,        /* a model spec is malformed */
    RG_ERR_SHAPE = 5,       /* shapes are impossible or do not match */
    RG_ERR_NOMEM = 6,       /* an allocation failed */
    RG_ERR_UNSUPPORTED = 7, /* valid but not implemented (e.g. unknown dtype) */
    RG_ERR_NOTFOUND = 8,    /* a named thing (model, tensor, dataset) does not exist */
    RG_ERR_STOPPED = 9      /* stopped on request (a signal) before the work was done; it resumes */
} rg_status;

#define RG_ERR_MSG_MAX 512

typedef struct {
    rg_status code;
    char msg[RG_ERR_MSG_MAX];
} rg_error;

/* Records code and a printf-style message in err (which may be NULL) and
 * returns code, so that callers can write `return rg_fail(err, ...)`. */
rg_status rg_fail(rg_error *err, rg_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes err->msg with "context: " (e.g. a file name), keeping the code. */
rg_status rg_error_prefix(rg_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Short name of a status code ("format error", ...). */
const char *rg_status_name(rg_status code);

/* Checked allocation helpers: return NULL (and fill err with RG_ERR_NOMEM)
 * on failure. Memory from rg_alloc_aligned is 64-byte aligned and released
 * with rg_free_aligned. */
void *rg_malloc(size_t size, rg_error *err);
void *rg_calloc(size_t count, size_t size, rg_error *err);
void *rg_alloc_aligned(size_t size, rg_error *err);
/* The same for a large buffer that the work streams through again and
 * again (a training plan's activations): aligned to 2 MiB and marked for
 * transparent huge pages (madvise), so that walking it costs a TLB miss
 * every 2 MiB instead of every 4 KiB. Released with rg_free_aligned. */
void *rg_alloc_streamed(size_t size, rg_error *err);
void rg_free_aligned(void *p);

#endif
