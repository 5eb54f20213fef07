/* IDX file readers (the MNIST / Fashion-MNIST format), raw or gzip.
 *
 * An IDX file is a 4-byte magic (0, 0, element type, number of dimensions),
 * one big-endian uint32 per dimension, then the elements. Files are read
 * through zlib's gz* interface, which passes non-gzip input through
 * unchanged, so both forms share one code path. Nothing is trusted: the
 * header is checked against plausible limits, and the payload buffer grows
 * with the bytes actually read rather than with the size the header claims.
 */
#include "regain/data.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define IDX_MAGIC_IMAGES 0x00000803u
#define IDX_MAGIC_LABELS 0x00000801u
#define IDX_TYPE_UBYTE 0x08u
#define IDX_MAX_DIMS 3u
/* First allocation for a payload; it doubles up to the expected size. */
#define IDX_FIRST_CHUNK ((size_t)1 << 22)
/* gzread takes an unsigned int length: read at most this much per call. */
#define IDX_MAX_READ ((size_t)1 << 30)

/* ---- Opening and reading ----------------------------------------------- */

static rg_status idx_open(const char *path, gzFile *out, rg_error *err)
{
    *out = NULL;
    if (!path || !*path) return rg_fail(err, RG_ERR_ARG, "IDX file path is empty");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return rg_fail(err, RG_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return rg_fail(err, RG_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return rg_fail(err, RG_ERR_IO, "%s: is a directory, not an IDX file", path);
    }
    /* gzdopen (not gzopen) so the checks above see the same file that is read. */
    gzFile gz = gzdopen(fd, "rb");
    if (!gz) {
        close(fd);
        return rg_fail(err, RG_ERR_NOMEM, "%s: cannot set up the zlib reader", path);
    }
    gzbuffer(gz, 1u << 17);
    *out = gz;
    return RG_OK;
}

/* zlib's messages start with the path it was given, "<fd:N>" for gzdopen:
 * drop that prefix, since our messages name the real path. */
static const char *zlib_reason(gzFile gz, int *errnum)
{
    const char *m = gzerror(gz, errnum);
    if (m && strncmp(m, "<fd:", 4) == 0) {
        const char *p = strstr(m, ">: ");
        if (p) m = p + 3;
    }
    return m && *m ? m : "unknown zlib error";
}

/* Reads up to len bytes into buf; *got receives how many. A clean end of
 * data is not an error (the caller compares *got with what it wanted); a
 * gzip stream that stops before its end sets *gz_cut instead of failing, so
 * the caller can report it as a truncation of what it was reading. Read
 * errors and corrupted gzip data fail with a message naming path. */
static rg_status idx_read(gzFile gz, const char *path, void *buf, size_t len, size_t *got,
                          int *gz_cut, rg_error *err)
{
    uint8_t *p = buf;
    size_t total = 0;
    *gz_cut = 0;
    while (total < len) {
        size_t want = len - total < IDX_MAX_READ ? len - total : IDX_MAX_READ;
        int r = gzread(gz, p + total, (unsigned)want);
        if (r > 0) {
            total += (size_t)r;
            continue;
        }
        int errnum = Z_OK;
        const char *why = zlib_reason(gz, &errnum);
        if (r == 0 && errnum == Z_OK) break; /* end of data */
        if (errnum == Z_BUF_ERROR) {         /* gzip stream ends early */
            *gz_cut = 1;
            break;
        }
        *got = total;
        if (errnum == Z_ERRNO)
            return rg_fail(err, RG_ERR_IO, "%s: read error: %s", path, strerror(errno));
        if (errnum == Z_MEM_ERROR)
            return rg_fail(err, RG_ERR_NOMEM, "%s: out of memory in zlib", path);
        return rg_fail(err, RG_ERR_FORMAT, "%s: corrupted gzip data (zlib: %s)", path, why);
    }
    *got = total;
    return RG_OK;
}

static uint32_t be32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

static const char *idx_type_name(unsigned t)
{
    switch (t) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "int16";
    case 0x0C: return "int32";
    case 0x0D: return "float32";
    case 0x0E: return "float64";
    }
    return NULL;
}

/* ---- Header ------------------------------------------------------------ */

/* Reads and checks the magic and the dimensions of an unsigned-byte IDX file
 * with ndims dimensions; `what` ("images", "labels") is for messages. */
static rg_status idx_read_header(gzFile gz, const char *path, uint32_t want_magic,
                                 const char *what, uint32_t *dims, rg_error *err)
{
    const unsigned ndims = want_magic & 0xffu;
    const size_t header_bytes = 4 + 4 * (size_t)ndims;
    uint8_t head[4 + 4 * IDX_MAX_DIMS];
    size_t got = 0;
    int cut = 0;
    rg_status st = idx_read(gz, path, head, 4, &got, &cut, err);
    if (st != RG_OK) return st;
    if (got < 4)
        return rg_fail(err, RG_ERR_FORMAT, "%s: truncated header: expected %zu bytes, found %zu%s",
                       path, header_bytes, got, got == 0 && !cut ? " (empty file)" : "");

    const uint32_t magic = be32(head);
    const unsigned type = head[2], nd = head[3];
    if (head[0] != 0 || head[1] != 0 || !idx_type_name(type) || nd == 0)
        return rg_fail(err, RG_ERR_FORMAT,
                       "%s: bad magic 0x%08x: not an IDX file (expected 0x%08x for %s)", path,
                       (unsigned)magic, (unsigned)want_magic, what);
    if (type != IDX_TYPE_UBYTE)
        return rg_fail(err, RG_ERR_UNSUPPORTED,
                       "%s: magic 0x%08x has element type 0x%02x (%s); only 0x08 (unsigned "
                       "byte) is supported",
                       path, (unsigned)magic, type, idx_type_name(type));
    if (nd != ndims)
        return rg_fail(err, RG_ERR_FORMAT,
                       "%s: bad magic 0x%08x (%u dimension%s): expected 0x%08x (%u dimension%s) "
                       "for %s",
                       path, (unsigned)magic, nd, nd == 1 ? "" : "s", (unsigned)want_magic, ndims,
                       ndims == 1 ? "" : "s", what);

    st = idx_read(gz, path, head + 4, 4 * (size_t)ndims, &got, &cut, err);
    if (st != RG_OK) return st;
    if (got < 4 * (size_t)ndims)
        return rg_fail(err, RG_ERR_FORMAT, "%s: truncated header: expected %zu bytes, found %zu",
                       path, header_bytes, 4 + got);
    for (unsigned i = 0; i < ndims; i++) dims[i] = be32(head + 4 + 4 * i);
    return RG_OK;
}

/* ---- Payload ----------------------------------------------------------- */

/* Reads exactly `expected` bytes of payload, then insists on the end of the
 * file. Reading past the payload also makes zlib check the gzip trailer
 * (CRC-32 and length), so a corrupted stream cannot slip through. */
static rg_status idx_read_payload(gzFile gz, const char *path, size_t expected,
                                  const char *what, uint8_t **out, rg_error *err)
{
    *out = NULL;
    size_t cap = expected < IDX_FIRST_CHUNK ? expected : IDX_FIRST_CHUNK;
    uint8_t *buf = rg_malloc(cap, err);
    if (!buf) return rg_error_prefix(err, "%s", path);
    size_t have = 0;
    int cut = 0;
    rg_status st = RG_OK;
    while (have < expected) {
        if (have == cap) {
            size_t next = cap <= expected / 2 ? cap * 2 : expected;
            uint8_t *grown = realloc(buf, next);
            if (!grown) {
                st = rg_fail(err, RG_ERR_NOMEM, "%s: out of memory reading %zu %s", path,
                             expected, what);
                goto fail;
            }
            buf = grown;
            cap = next;
        }
        size_t got = 0;
        st = idx_read(gz, path, buf + have, cap - have, &got, &cut, err);
        if (st != RG_OK) goto fail;
        have += got;
        if (have < cap) break; /* end of data (or of a cut gzip stream) */
    }
    if (have < expected) {
        st = rg_fail(err, RG_ERR_FORMAT, "%s: truncated: expected %zu %s, found %zu%s", path,
                     expected, what, have, cut ? " (gzip stream ends early)" : "");
        goto fail;
    }

    /* surplus bytes are counted up to a limit, not to the end of what may
     * be a huge (or highly compressed) stream */
    uint8_t extra_buf[4096];
    uint64_t extra = 0;
    const uint64_t count_limit = (uint64_t)1 << 20;
    for (;;) {
        size_t got = 0;
        st = idx_read(gz, path, extra_buf, sizeof extra_buf, &got, &cut, err);
        if (st != RG_OK) goto fail;
        extra += got;
        if (got < sizeof extra_buf || extra >= count_limit) break;
    }
    if (extra > 0) {
        st = rg_fail(err, RG_ERR_FORMAT, "%s: trailing data: %s%llu byte%s after the %zu %s", path,
                     extra >= count_limit ? "at least " : "", (unsigned long long)extra, extra == 1 ? "" : "s",
                     expected, what);
        goto fail;
    }
    if (cut) {
        st = rg_fail(err, RG_ERR_FORMAT,
                     "%s: truncated gzip stream: the data is complete but the gzip trailer "
                     "is missing",
                     path);
        goto fail;
    }
    *out = buf;
    return RG_OK;
fail:
    free(buf);
    return st;
}

/* ---- Public readers ---------------------------------------------------- */

rg_status rg_idx_read_images(const char *path, uint8_t **pixels, int32_t *n, int32_t *h,
                             int32_t *w, rg_error *err)
{
    if (!pixels || !n || !h || !w) return rg_fail(err, RG_ERR_ARG, "rg_idx_read_images: NULL output");
    *pixels = NULL;
    *n = *h = *w = 0;
    gzFile gz = NULL;
    rg_status st = idx_open(path, &gz, err);
    if (st != RG_OK) return st;

    uint32_t d[3] = {0, 0, 0};
    st = idx_read_header(gz, path, IDX_MAGIC_IMAGES, "images", d, err);
    if (st != RG_OK) goto done;
    if (d[0] == 0 || d[1] == 0 || d[2] == 0) {
        st = rg_fail(err, RG_ERR_FORMAT,
                     "%s: zero dimension: %u images of %u x %u (every dimension must be > 0)",
                     path, (unsigned)d[0], (unsigned)d[1], (unsigned)d[2]);
        goto done;
    }
    if (d[0] > RG_IDX_MAX_ITEMS || d[1] > RG_IDX_MAX_SIDE || d[2] > RG_IDX_MAX_SIDE) {
        st = rg_fail(err, RG_ERR_FORMAT,
                     "%s: implausible dimensions: %u images of %u x %u (limits: %u images, "
                     "%u pixels a side)",
                     path, (unsigned)d[0], (unsigned)d[1], (unsigned)d[2],
                     (unsigned)RG_IDX_MAX_ITEMS, (unsigned)RG_IDX_MAX_SIDE);
        goto done;
    }
    /* The limits keep n*h*w below 2^51; check anyway, size_t may be 32 bits. */
    size_t bytes;
    if (__builtin_mul_overflow((size_t)d[0], (size_t)d[1], &bytes) ||
        __builtin_mul_overflow(bytes, (size_t)d[2], &bytes)) {
        st = rg_fail(err, RG_ERR_FORMAT, "%s: dimensions %u x %u x %u overflow the address space",
                     path, (unsigned)d[0], (unsigned)d[1], (unsigned)d[2]);
        goto done;
    }
    if ((uint64_t)bytes > RG_IDX_MAX_BYTES) {
        st = rg_fail(err, RG_ERR_FORMAT,
                     "%s: implausible size: %u images of %u x %u are %zu pixel bytes (limit "
                     "%llu)",
                     path, (unsigned)d[0], (unsigned)d[1], (unsigned)d[2], bytes,
                     (unsigned long long)RG_IDX_MAX_BYTES);
        goto done;
    }
    st = idx_read_payload(gz, path, bytes, "pixel bytes", pixels, err);
    if (st != RG_OK) goto done;
    *n = (int32_t)d[0];
    *h = (int32_t)d[1];
    *w = (int32_t)d[2];
done:
    gzclose(gz);
    return st;
}

rg_status rg_idx_read_labels(const char *path, uint8_t **labels, int32_t *n, rg_error *err)
{
    if (!labels || !n) return rg_fail(err, RG_ERR_ARG, "rg_idx_read_labels: NULL output");
    *labels = NULL;
    *n = 0;
    gzFile gz = NULL;
    rg_status st = idx_open(path, &gz, err);
    if (st != RG_OK) return st;

    uint32_t d[1] = {0};
    st = idx_read_header(gz, path, IDX_MAGIC_LABELS, "labels", d, err);
    if (st != RG_OK) goto done;
    if (d[0] == 0) {
        st = rg_fail(err, RG_ERR_FORMAT, "%s: zero dimension: 0 labels (must be > 0)", path);
        goto done;
    }
    if (d[0] > RG_IDX_MAX_ITEMS) {
        st = rg_fail(err, RG_ERR_FORMAT, "%s: implausible dimension: %u labels (limit %u)", path,
                     (unsigned)d[0], (unsigned)RG_IDX_MAX_ITEMS);
        goto done;
    }
    st = idx_read_payload(gz, path, (size_t)d[0], "label bytes", labels, err);
    if (st != RG_OK) goto done;
    *n = (int32_t)d[0];
done:
    gzclose(gz);
    return st;
}
