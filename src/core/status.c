/* Status codes, error messages and the one place allocation goes through. */
#include "regain/status.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <string.h>

rg_status rg_fail(rg_error *err, rg_status code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

rg_status rg_error_prefix(rg_error *err, const char *fmt, ...)
{
    if (!err) return RG_ERR_ARG;
    char prefix[RG_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char old[RG_ERR_MSG_MAX];
    memcpy(old, err->msg, sizeof old);
    snprintf(err->msg, sizeof err->msg, "%.200s: %.300s", prefix, old);
    return err->code;
}

const char *rg_status_name(rg_status code)
{
    switch (code) {
    case RG_OK: return "ok";
    case RG_ERR_ARG: return "invalid argument";
    case RG_ERR_IO: return "I/O error";
    case RG_ERR_FORMAT: return "format error";
    case RG_ERR_SPEC: return "model spec error";
    case RG_ERR_SHAPE: return "shape error";
    case RG_ERR_NOMEM: return "out of memory";
    case RG_ERR_UNSUPPORTED: return "unsupported";
    case RG_ERR_NOTFOUND: return "not found";
    case RG_ERR_STOPPED: return "stopped on request";
    }
    return "unknown error";
}

void *rg_malloc(size_t size, rg_error *err)
{
    void *p = malloc(size ? size : 1);
    if (!p) rg_fail(err, RG_ERR_NOMEM, "out of memory allocating %zu bytes", size);
    return p;
}

void *rg_calloc(size_t count, size_t size, rg_error *err)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) rg_fail(err, RG_ERR_NOMEM, "out of memory allocating %zu x %zu bytes", count, size);
    return p;
}

/* size rounded up to a multiple of align (a power of two; at least one);
 * 0 when that does not fit a size_t. */
static size_t round_up(size_t size, size_t align)
{
    return size > SIZE_MAX - align ? 0 : size ? (size + align - 1) & ~(align - 1) : align;
}

/* round_up(size, align) bytes aligned to align; NULL with err filled when
 * that is impossible. */
static void *alloc_rounded(size_t size, size_t align, rg_error *err)
{
    void *p = NULL;
    size_t rounded = round_up(size, align);
    if (!rounded || posix_memalign(&p, align, rounded) != 0) {
        rg_fail(err, RG_ERR_NOMEM, "out of memory allocating %zu bytes", size);
        return NULL;
    }
    return p;
}

void *rg_alloc_aligned(size_t size, rg_error *err) { return alloc_rounded(size, 64, err); }

/* 2 MiB: the x86-64 huge page. */
#define HUGE_PAGE ((size_t)2 << 20)

void *rg_alloc_streamed(size_t size, rg_error *err)
{
    void *p = alloc_rounded(size, HUGE_PAGE, err);
#ifdef MADV_HUGEPAGE
    /* a hint: where transparent huge pages are off, nothing changes */
    if (p) (void)madvise(p, round_up(size, HUGE_PAGE), MADV_HUGEPAGE);
#endif
    return p;
}

void rg_free_aligned(void *p) { free(p); }
