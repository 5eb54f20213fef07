/* safetensors checkpoints: writer, validating reader, lookups.
 *
 * JSON is built and parsed with cJSON; this file only adds what cJSON does
 * not check and the format requires: UTF-8 validity, no raw control
 * characters, no duplicate keys (cJSON keeps both), integer-valued numbers,
 * and the layout rules of the data section. See include/regain/safetensors.h
 * for the contract. */
#include "regain/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "regain/fileio.h"

/* The format is little-endian; tensors are copied to and from memory as is. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "src/io/safetensors.c assumes a little-endian host"
#endif

#define META_KEY "__metadata__"
#define CRC_KEY "regain.crc32"
/* Largest integer a double (and so cJSON) holds exactly: beyond it a shape or
 * offset could be silently rounded. */
#define MAX_EXACT_INT 9007199254740992.0 /* 2^53 */

struct rg_st_file {
    char *path;
    int32_t n;
    rg_st_tensor *tensors;           /* header order */
    const rg_st_tensor **by_name;    /* sorted by name, for rg_st_find */
    int32_t n_meta;
    rg_st_meta *meta;                /* header order; key/value strings owned */
    unsigned char *data;             /* every tensor at a 64-byte aligned slot */
};

/* ---- dtypes ------------------------------------------------------------- */

static const struct {
    const char *name;
    rg_st_dtype dtype;
    size_t size;
} dtypes[] = {
    {"F32", RG_ST_F32, 4},
    {"I32", RG_ST_I32, 4},
    {"I64", RG_ST_I64, 8},
    {"U8", RG_ST_U8, 1},
    {"I8", RG_ST_I8, 1},
};

/* Valid safetensors dtypes that regain does not read: reported as
 * "unsupported" rather than "unknown" so the user knows the file is fine. */
static const char *const other_dtypes[] = {
    "F64", "F16", "BF16", "I16", "U16", "U32", "U64", "BOOL",
    "F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "C64",
};

static int find_dtype(const char *name)
{
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (strcmp(dtypes[i].name, name) == 0) return (int)i;
    return -1;
}

static const char *dtype_name(rg_st_dtype dtype)
{
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (dtypes[i].dtype == dtype) return dtypes[i].name;
    return "?";
}

static int is_other_dtype(const char *name)
{
    for (size_t i = 0; i < sizeof other_dtypes / sizeof other_dtypes[0]; i++)
        if (strcmp(other_dtypes[i], name) == 0) return 1;
    return 0;
}

/* ---- small helpers ------------------------------------------------------ */

/* Fills err with "<path>: <message>" and returns code. */
static rg_status fail_at(rg_error *err, rg_status code, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static rg_status fail_at(rg_error *err, rg_status code, const char *path, const char *fmt, ...)
{
    char msg[RG_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return rg_fail(err, code, "%s: %s", path, msg);
}

static char *dup_string(const char *s, rg_error *err)
{
    size_t n = strlen(s) + 1;
    char *p = rg_malloc(n, err);
    if (p) memcpy(p, s, n);
    return p;
}

/* "[16, 3, 3, 3]" into buf (always NUL-terminated). */
static const char *format_shape(char *buf, size_t size, int32_t ndim, const int64_t *shape)
{
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int32_t d = 0; d < ndim && used < size; d++)
        used += (size_t)snprintf(buf + used, size - used, "%s%" PRId64, d ? ", " : "", shape[d]);
    if (used < size) snprintf(buf + used, size - used, "]");
    return buf;
}

/* Offset of the first byte that is not valid UTF-8 (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), or n if all are valid. */
static size_t utf8_invalid_at(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint32_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp, min;
        if ((c & 0xE0) == 0xC0) {
            len = 2, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return i;
        }
        if (n - i < len) return i;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return i;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
        i += len;
    }
    return n;
}

static int utf8_valid(const char *s)
{
    size_t n = strlen(s);
    return utf8_invalid_at((const unsigned char *)s, n) == n;
}

/* zlib's crc32 takes a uInt length: feed large buffers in pieces. */
static uLong crc_update(uLong crc, const void *data, size_t size)
{
    const unsigned char *p = data;
    while (size > 0) {
        uInt chunk = size > (1u << 30) ? (1u << 30) : (uInt)size;
        crc = crc32(crc, p, chunk);
        p += chunk;
        size -= chunk;
    }
    return crc;
}

static int cmp_tensor_name(const void *a, const void *b)
{
    const rg_st_tensor *x = *(const rg_st_tensor *const *)a;
    const rg_st_tensor *y = *(const rg_st_tensor *const *)b;
    return strcmp(x->name, y->name);
}

static int cmp_meta_key(const void *a, const void *b)
{
    const rg_st_meta *x = *(const rg_st_meta *const *)a;
    const rg_st_meta *y = *(const rg_st_meta *const *)b;
    return strcmp(x->key, y->key);
}

/* Product of the dims times elem_size into *bytes; 0 if it does not fit in
 * uint64_t. A zero dimension makes the tensor empty whatever the others. */
static int tensor_bytes(int32_t ndim, const int64_t *shape, size_t elem_size, uint64_t *bytes)
{
    uint64_t total = elem_size;
    for (int32_t d = 0; d < ndim; d++)
        if (shape[d] == 0) {
            *bytes = 0;
            return 1;
        }
    for (int32_t d = 0; d < ndim; d++) {
        uint64_t dim = (uint64_t)shape[d];
        if (total > UINT64_MAX / dim) return 0;
        total *= dim;
    }
    *bytes = total;
    return 1;
}

/* ---- writing ------------------------------------------------------------ */

/* A cJSON number printed exactly: cJSON prints doubles, which would turn
 * large offsets into "1e+16" (rejected by strict readers). */
static cJSON *json_int(int64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRId64, v);
    return cJSON_CreateRaw(buf);
}

/* Checks every argument of rg_st_write; *data_size receives the total size
 * of the data section. */
/* Bytes of a tensor to write and where they are: F32 from data, the other
 * dtypes from raw. The dtype is checked by check_write_args. */
static size_t write_elem_size(const rg_st_tensor *t)
{
    for (size_t k = 0; k < sizeof dtypes / sizeof dtypes[0]; k++)
        if (dtypes[k].dtype == t->dtype) return dtypes[k].size;
    return 4;
}

static const void *write_ptr(const rg_st_tensor *t)
{
    return t->dtype == RG_ST_F32 ? (const void *)t->data : t->raw;
}

static rg_status check_write_args(const char *path, const rg_st_tensor *tensors, int32_t n,
                                  const rg_st_meta *meta, int32_t n_meta, uint64_t *data_size,
                                  rg_error *err)
{
    if (n < 0 || n_meta < 0 || (n > 0 && !tensors) || (n_meta > 0 && !meta))
        return fail_at(err, RG_ERR_ARG, path, "bad tensor or metadata list (n=%d, n_meta=%d)", n, n_meta);
    uint64_t total = 0;
    for (int32_t i = 0; i < n; i++) {
        const rg_st_tensor *t = &tensors[i];
        if (!t->name || !*t->name) return fail_at(err, RG_ERR_ARG, path, "tensor %d has an empty name", i);
        if (!utf8_valid(t->name))
            return fail_at(err, RG_ERR_ARG, path, "tensor %d: name is not valid UTF-8", i);
        if (strcmp(t->name, META_KEY) == 0)
            return fail_at(err, RG_ERR_ARG, path, "tensor %d: the name \"" META_KEY "\" is reserved", i);
        int di = -1;
        for (size_t k = 0; k < sizeof dtypes / sizeof dtypes[0]; k++)
            if (dtypes[k].dtype == t->dtype) di = (int)k;
        if (di < 0) return fail_at(err, RG_ERR_ARG, path, "tensor '%.80s': unknown dtype %d", t->name, (int)t->dtype);
        if (t->dtype != RG_ST_F32 && !t->raw)
            return fail_at(err, RG_ERR_UNSUPPORTED, path,
                           "tensor '%.80s': a %s tensor is written from raw (data is for F32 only)", t->name,
                           dtypes[di].name);
        if (t->ndim < 0 || t->ndim > RG_ST_MAX_DIMS)
            return fail_at(err, RG_ERR_ARG, path, "tensor '%.80s': ndim %d is outside 0..%d", t->name, t->ndim,
                           RG_ST_MAX_DIMS);
        for (int32_t d = 0; d < t->ndim; d++) {
            if (t->shape[d] < 0)
                return fail_at(err, RG_ERR_ARG, path, "tensor '%.80s': shape[%d] is negative (%" PRId64 ")",
                               t->name, d, t->shape[d]);
            if ((double)t->shape[d] > MAX_EXACT_INT) /* the reader could not take it back */
                return fail_at(err, RG_ERR_ARG, path, "tensor '%.80s': shape[%d] is too large (%" PRId64 ")",
                               t->name, d, t->shape[d]);
        }
        uint64_t bytes;
        if (!tensor_bytes(t->ndim, t->shape, dtypes[di].size, &bytes) || bytes > SIZE_MAX || total > UINT64_MAX - bytes)
            return fail_at(err, RG_ERR_ARG, path, "tensor '%.80s': shape is too large", t->name);
        if (bytes > 0 && !write_ptr(t)) return fail_at(err, RG_ERR_ARG, path, "tensor '%.80s': data is NULL", t->name);
        total += bytes;
    }
    for (int32_t i = 0; i < n_meta; i++) {
        if (!meta[i].key || !meta[i].value)
            return fail_at(err, RG_ERR_ARG, path, "metadata entry %d has a NULL key or value", i);
        if (!utf8_valid(meta[i].key) || !utf8_valid(meta[i].value))
            return fail_at(err, RG_ERR_ARG, path, "metadata '%.80s': key or value is not valid UTF-8", meta[i].key);
        if (strcmp(meta[i].key, CRC_KEY) == 0)
            return fail_at(err, RG_ERR_ARG, path, "metadata key \"" CRC_KEY "\" is reserved (it is computed)");
    }
    *data_size = total;
    return RG_OK;
}

/* Unique names and keys: sorted copies of the pointers, neighbours compared. */
static rg_status check_write_unique(const char *path, const rg_st_tensor *tensors, int32_t n,
                                    const rg_st_meta *meta, int32_t n_meta, rg_error *err)
{
    rg_status st = RG_OK;
    const rg_st_tensor **tp = rg_calloc((size_t)n, sizeof *tp, err);
    const rg_st_meta **mp = tp ? rg_calloc((size_t)n_meta, sizeof *mp, err) : NULL;
    if (!tp || !mp) {
        free(tp);
        return RG_ERR_NOMEM;
    }
    for (int32_t i = 0; i < n; i++) tp[i] = &tensors[i];
    for (int32_t i = 0; i < n_meta; i++) mp[i] = &meta[i];
    if (n > 1) qsort(tp, (size_t)n, sizeof *tp, cmp_tensor_name);
    if (n_meta > 1) qsort(mp, (size_t)n_meta, sizeof *mp, cmp_meta_key);
    for (int32_t i = 1; i < n && st == RG_OK; i++)
        if (strcmp(tp[i - 1]->name, tp[i]->name) == 0)
            st = fail_at(err, RG_ERR_ARG, path, "duplicate tensor name '%.80s'", tp[i]->name);
    for (int32_t i = 1; i < n_meta && st == RG_OK; i++)
        if (strcmp(mp[i - 1]->key, mp[i]->key) == 0)
            st = fail_at(err, RG_ERR_ARG, path, "duplicate metadata key '%.80s'", mp[i]->key);
    free(tp);
    free(mp);
    return st;
}

/* The header text (unpadded) in *text, owned by cJSON (cJSON_free). */
static rg_status build_header(const char *path, const rg_st_tensor *tensors, int32_t n,
                              const rg_st_meta *meta, int32_t n_meta, uint32_t crc, char **text,
                              rg_error *err)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *m = cJSON_CreateObject();
    int ok = root && m && cJSON_AddItemToObject(root, META_KEY, m);
    if (!ok) cJSON_Delete(m);
    for (int32_t i = 0; ok && i < n_meta; i++)
        ok = cJSON_AddStringToObject(m, meta[i].key, meta[i].value) != NULL;
    char crc_hex[9];
    snprintf(crc_hex, sizeof crc_hex, "%08" PRIx32, crc);
    ok = ok && cJSON_AddStringToObject(m, CRC_KEY, crc_hex) != NULL;

    int64_t offset = 0;
    for (int32_t i = 0; ok && i < n; i++) {
        const rg_st_tensor *t = &tensors[i];
        uint64_t bytes = 0;
        tensor_bytes(t->ndim, t->shape, write_elem_size(t), &bytes); /* checked in check_write_args */
        cJSON *e = cJSON_CreateObject();
        ok = e && cJSON_AddItemToObject(root, t->name, e);
        if (!ok) {
            cJSON_Delete(e);
            break;
        }
        /* Field order as other writers use it: dtype, shape, data_offsets. */
        cJSON *shape = NULL, *offs = NULL;
        ok = cJSON_AddStringToObject(e, "dtype", dtype_name(t->dtype)) != NULL && (shape = cJSON_AddArrayToObject(e, "shape")) &&
             (offs = cJSON_AddArrayToObject(e, "data_offsets"));
        for (int32_t d = 0; ok && d < t->ndim; d++) {
            cJSON *v = json_int(t->shape[d]);
            ok = v && cJSON_AddItemToArray(shape, v);
            if (!ok) cJSON_Delete(v);
        }
        int64_t ends[2] = {offset, offset + (int64_t)bytes};
        for (int k = 0; ok && k < 2; k++) {
            cJSON *v = json_int(ends[k]);
            ok = v && cJSON_AddItemToArray(offs, v);
            if (!ok) cJSON_Delete(v);
        }
        offset += (int64_t)bytes;
    }
    *text = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!*text) return fail_at(err, RG_ERR_NOMEM, path, "out of memory building the header");
    return RG_OK;
}

rg_status rg_st_write(const char *path, const rg_st_tensor *tensors, int32_t n,
                      const rg_st_meta *meta, int32_t n_meta, rg_error *err)
{
    if (!path || !*path) return rg_fail(err, RG_ERR_ARG, "rg_st_write: empty path");
    uint64_t data_size = 0;
    rg_status st = check_write_args(path, tensors, n, meta, n_meta, &data_size, err);
    if (st == RG_OK) st = check_write_unique(path, tensors, n, meta, n_meta, err);
    if (st != RG_OK) return st;

    uLong crc = crc32(0L, Z_NULL, 0);
    for (int32_t i = 0; i < n; i++) {
        uint64_t bytes = 0;
        tensor_bytes(tensors[i].ndim, tensors[i].shape, write_elem_size(&tensors[i]), &bytes);
        crc = crc_update(crc, write_ptr(&tensors[i]), (size_t)bytes);
    }

    char *text = NULL;
    st = build_header(path, tensors, n, meta, n_meta, (uint32_t)crc, &text, err);
    if (st != RG_OK) return st;

    /* Pad with spaces (JSON whitespace) so the data section starts at a
     * multiple of 8 bytes: readers may then map the file and use it in place. */
    size_t len = strlen(text);
    size_t padded = (len + 7) & ~(size_t)7;
    unsigned char prefix[8];
    for (int k = 0; k < 8; k++) prefix[k] = (unsigned char)((uint64_t)padded >> (8 * k));
    static const char spaces[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};

    rg_atomic_file *f = NULL;
    st = rg_atomic_open(path, &f, err);
    if (st == RG_OK) st = rg_atomic_write(f, prefix, sizeof prefix, err);
    if (st == RG_OK) st = rg_atomic_write(f, text, len, err);
    if (st == RG_OK) st = rg_atomic_write(f, spaces, padded - len, err);
    for (int32_t i = 0; st == RG_OK && i < n; i++) {
        uint64_t bytes = 0;
        tensor_bytes(tensors[i].ndim, tensors[i].shape, write_elem_size(&tensors[i]), &bytes);
        st = rg_atomic_write(f, write_ptr(&tensors[i]), (size_t)bytes, err);
    }
    cJSON_free(text);
    if (st != RG_OK) {
        rg_atomic_abort(f);
        return st;
    }
    return rg_atomic_commit(f, err);
}

/* ---- reading: header checks --------------------------------------------- */

/* What cJSON lets through but JSON (RFC 8259) forbids, and what would make a
 * name or value silently shorter: raw control characters (inside strings;
 * outside them only space, tab, CR, LF are whitespace) and the escape \u0000
 * (cJSON would decode it into a C string terminator). Returns NULL if the
 * header is clean, else the problem with its offset in *at. */
static const char *scan_header(const char *h, size_t n, size_t *at)
{
    int in_string = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        *at = i;
        if (c < 0x20) {
            if (in_string) return "raw control character inside a string";
            if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return "control character";
        } else if (in_string && c == '\\') {
            if (i + 5 < n && h[i + 1] == 'u' && memcmp(h + i + 2, "0000", 4) == 0)
                return "\\u0000 (NUL) inside a string";
            i++; /* skip the escaped character, which may be a quote */
        } else if (c == '"') {
            in_string = !in_string;
        }
    }
    return NULL;
}

/* A JSON number that is a non-negative integer held exactly by a double. */
static int json_uint(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!(d >= 0.0 && d <= MAX_EXACT_INT)) return 0; /* also rejects NaN */
    uint64_t u = (uint64_t)d;
    if ((double)u != d) return 0;
    *out = u;
    return 1;
}

/* Byte ranges in the data section, to check layout and to read in order. */
typedef struct {
    uint64_t begin, end;
    int32_t index;  /* into rg_st_file.tensors */
} span;

static int cmp_span(const void *a, const void *b)
{
    const span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* Parses one tensor entry into *t and *s. Names are checked by the caller. */
static rg_status parse_tensor(const char *path, const cJSON *e, uint64_t data_size, rg_st_tensor *t,
                              span *s, rg_error *err)
{
    const char *name = t->name;
    if (!cJSON_IsObject(e))
        return fail_at(err, RG_ERR_FORMAT, path, "tensor '%.80s': entry is not a JSON object", name);
    const cJSON *dtype = NULL, *shape = NULL, *offs = NULL;
    const cJSON *c;
    cJSON_ArrayForEach(c, e) {
        const cJSON **slot = strcmp(c->string, "dtype") == 0          ? &dtype
                             : strcmp(c->string, "shape") == 0        ? &shape
                             : strcmp(c->string, "data_offsets") == 0 ? &offs
                                                                      : NULL;
        if (!slot)
            return fail_at(err, RG_ERR_FORMAT, path, "tensor '%.80s': unknown field '%.40s'", name, c->string);
        if (*slot)
            return fail_at(err, RG_ERR_FORMAT, path, "tensor '%.80s': duplicate field '%s'", name, c->string);
        *slot = c;
    }
    if (!dtype || !shape || !offs)
        return fail_at(err, RG_ERR_FORMAT, path, "tensor '%.80s': missing field '%s'", name,
                       !dtype ? "dtype" : !shape ? "shape" : "data_offsets");

    /* dtype */
    if (!cJSON_IsString(dtype))
        return fail_at(err, RG_ERR_FORMAT, path, "tensor '%.80s': dtype is not a string", name);
    int di = find_dtype(dtype->valuestring);
    if (di < 0 && is_other_dtype(dtype->valuestring))
        return fail_at(err, RG_ERR_UNSUPPORTED, path,
                       "tensor '%.80s': dtype %s is not supported (regain reads F32, I32, I64, U8, I8)", name,
                       dtype->valuestring);
    if (di < 0)
        return fail_at(err, RG_ERR_FORMAT, path, "tensor '%.80s': unknown dtype '%.20s'", name, dtype->valuestring);
    t->dtype = dtypes[di].dtype;

    /* shape */
    if (!cJSON_IsArray(shape))
        return fail_at(err, RG_ERR_FORMAT, path, "tensor '%.80s': shape is not an array", name);
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > RG_ST_MAX_DIMS)
        return fail_at(err, RG_ERR_UNSUPPORTED, path, "tensor '%.80s': shape has %d dimensions, at most %d supported",
                       name, ndim, RG_ST_MAX_DIMS);
    t->ndim = ndim;
    int d = 0;
    cJSON_ArrayForEach(c, shape) {
        uint64_t v;
        if (!json_uint(c, &v)) {
            if (cJSON_IsNumber(c))
                return fail_at(err, RG_ERR_FORMAT, path, "tensor '%.80s': shape[%d] is %g, not a non-negative integer",
                               name, d, c->valuedouble);
            return fail_at(err, RG_ERR_FORMAT, path, "tensor '%.80s': shape[%d] is not a number", name, d);
        }
        t->shape[d++] = (int64_t)v;
    }

    /* data_offsets */
    uint64_t be[2];
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 || !json_uint(offs->child, &be[0]) ||
        !json_uint(offs->child->next, &be[1]))
        return fail_at(err, RG_ERR_FORMAT, path,
                       "tensor '%.80s': data_offsets is not a pair of non-negative integers [begin, end]", name);
    if (be[0] > be[1])
        return fail_at(err, RG_ERR_FORMAT, path, "tensor '%.80s': data_offsets [%" PRIu64 ", %" PRIu64
                       "] end before they begin", name, be[0], be[1]);
    if (be[1] > data_size)
        return fail_at(err, RG_ERR_FORMAT, path, "tensor '%.80s': data_offsets [%" PRIu64 ", %" PRIu64
                       "] out of range: the data section has %" PRIu64 " bytes (truncated file?)",
                       name, be[0], be[1], data_size);

    char sbuf[200];
    uint64_t bytes;
    if (!tensor_bytes(t->ndim, t->shape, dtypes[di].size, &bytes))
        return fail_at(err, RG_ERR_FORMAT, path, "tensor '%.80s': shape %s is too large (size overflows)", name,
                       format_shape(sbuf, sizeof sbuf, t->ndim, t->shape));
    if (be[1] - be[0] != bytes)
        return fail_at(err, RG_ERR_FORMAT, path, "tensor '%.80s': size mismatch: data_offsets [%" PRIu64 ", %" PRIu64
                       "] hold %" PRIu64 " bytes but shape %s of %s needs %" PRIu64, name, be[0], be[1],
                       be[1] - be[0], format_shape(sbuf, sizeof sbuf, t->ndim, t->shape), dtypes[di].name, bytes);
    t->nbytes = (size_t)bytes; /* <= data_size, which fits in memory */
    s->begin = be[0];
    s->end = be[1];
    return RG_OK;
}

static rg_status parse_metadata(const char *path, const cJSON *m, rg_st_file *f, rg_error *err)
{
    if (!cJSON_IsObject(m))
        return fail_at(err, RG_ERR_FORMAT, path, "\"" META_KEY "\" is not a JSON object");
    int count = cJSON_GetArraySize(m);
    f->meta = rg_calloc((size_t)count, sizeof *f->meta, err);
    if (!f->meta) return RG_ERR_NOMEM;
    const cJSON *c;
    cJSON_ArrayForEach(c, m) {
        if (!cJSON_IsString(c))
            return fail_at(err, RG_ERR_FORMAT, path, "metadata '%.80s': value is not a string", c->string);
        rg_st_meta *e = &f->meta[f->n_meta];
        e->key = dup_string(c->string, err);
        e->value = e->key ? dup_string(c->valuestring, err) : NULL;
        if (e->key) f->n_meta++; /* counted as soon as it owns something, for rg_st_free */
        if (!e->value) return RG_ERR_NOMEM;
    }
    /* cJSON keeps duplicate keys; a reader elsewhere would keep only one. */
    const rg_st_meta **sorted = rg_calloc((size_t)f->n_meta, sizeof *sorted, err);
    if (!sorted) return RG_ERR_NOMEM;
    for (int32_t i = 0; i < f->n_meta; i++) sorted[i] = &f->meta[i];
    if (f->n_meta > 1) qsort(sorted, (size_t)f->n_meta, sizeof *sorted, cmp_meta_key);
    rg_status st = RG_OK;
    for (int32_t i = 1; i < f->n_meta && st == RG_OK; i++)
        if (strcmp(sorted[i - 1]->key, sorted[i]->key) == 0)
            st = fail_at(err, RG_ERR_FORMAT, path, "metadata: duplicate key '%.80s'", sorted[i]->key);
    free(sorted);
    return st;
}

/* The tensors must tile the data section: sorted by offset, each begins where
 * the previous one ended, the first at 0 and the last at data_size. */
static rg_status check_layout(const char *path, const rg_st_file *f, span *spans, uint64_t data_size,
                              rg_error *err)
{
    if (f->n > 1) qsort(spans, (size_t)f->n, sizeof *spans, cmp_span);
    uint64_t expect = 0;
    for (int32_t i = 0; i < f->n; i++) {
        const char *name = f->tensors[spans[i].index].name;
        if (spans[i].begin < expect)
            return fail_at(err, RG_ERR_FORMAT, path, "tensor '%.80s': data_offsets [%" PRIu64 ", %" PRIu64
                           "] overlap tensor '%.80s'", name, spans[i].begin, spans[i].end,
                           f->tensors[spans[i - 1].index].name);
        if (spans[i].begin > expect)
            return fail_at(err, RG_ERR_FORMAT, path, "gap in the data section: bytes [%" PRIu64 ", %" PRIu64
                           ") before tensor '%.80s' belong to no tensor", expect, spans[i].begin, name);
        expect = spans[i].end;
    }
    if (expect != data_size)
        return fail_at(err, RG_ERR_FORMAT, path, "gap in the data section: bytes [%" PRIu64 ", %" PRIu64
                       ") at its end belong to no tensor", expect, data_size);
    return RG_OK;
}

/* Parses the header text into f (tensors, names, metadata) and spans. */
static rg_status parse_header(const char *path, const char *h, size_t n, uint64_t data_size, rg_st_file *f,
                              span **spans_out, rg_error *err)
{
    /* cJSON skips a byte-order mark; JSON (RFC 8259) and other safetensors
     * readers do not accept one. */
    if (n >= 3 && memcmp(h, "\xEF\xBB\xBF", 3) == 0)
        return fail_at(err, RG_ERR_FORMAT, path, "header is not valid JSON: it starts with a UTF-8 byte-order mark");
    size_t at = utf8_invalid_at((const unsigned char *)h, n);
    if (at != n) return fail_at(err, RG_ERR_FORMAT, path, "header is not valid UTF-8 (byte %zu)", at);
    const char *why = scan_header(h, n, &at);
    if (why) return fail_at(err, RG_ERR_FORMAT, path, "header is not valid JSON: %s at byte %zu", why, at);

    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(h, n, &end, 0);
    if (!root)
        return fail_at(err, RG_ERR_FORMAT, path, "header is not valid JSON (error near byte %zu)",
                       end && end >= h ? (size_t)(end - h) : (size_t)0);
    for (const char *p = end; p < h + n; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            cJSON_Delete(root);
            return fail_at(err, RG_ERR_FORMAT, path, "header is not valid JSON: trailing data at byte %zu",
                           (size_t)(p - h));
        }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return fail_at(err, RG_ERR_FORMAT, path, "header is not a JSON object");
    }

    rg_status st = RG_OK;
    const cJSON *c, *meta = NULL;
    int count = 0;
    cJSON_ArrayForEach(c, root) {
        if (strcmp(c->string, META_KEY) != 0) {
            count++;
        } else if (meta) {
            st = fail_at(err, RG_ERR_FORMAT, path, "duplicate \"" META_KEY "\"");
        } else {
            meta = c;
        }
    }
    span *spans = NULL;
    if (st == RG_OK && meta) st = parse_metadata(path, meta, f, err);
    if (st == RG_OK) {
        f->tensors = rg_calloc((size_t)count, sizeof *f->tensors, err);
        spans = f->tensors ? rg_calloc((size_t)count, sizeof *spans, err) : NULL;
        if (!spans) st = RG_ERR_NOMEM;
    }
    cJSON_ArrayForEach(c, root) {
        if (st != RG_OK) break;
        if (strcmp(c->string, META_KEY) == 0) continue;
        rg_st_tensor *t = &f->tensors[f->n];
        if (!*c->string) {
            st = fail_at(err, RG_ERR_FORMAT, path, "a tensor has an empty name");
            break;
        }
        char *name = dup_string(c->string, err);
        if (!name) {
            st = RG_ERR_NOMEM;
            break;
        }
        t->name = name;
        spans[f->n].index = f->n;
        f->n++; /* owns its name from here on, for rg_st_free */
        st = parse_tensor(path, c, data_size, t, &spans[f->n - 1], err);
    }
    cJSON_Delete(root);

    /* Duplicate names: cJSON keeps both entries. */
    if (st == RG_OK) {
        f->by_name = rg_calloc((size_t)f->n, sizeof *f->by_name, err);
        if (!f->by_name) st = RG_ERR_NOMEM;
    }
    if (st == RG_OK) {
        for (int32_t i = 0; i < f->n; i++) f->by_name[i] = &f->tensors[i];
        if (f->n > 1) qsort(f->by_name, (size_t)f->n, sizeof *f->by_name, cmp_tensor_name);
        for (int32_t i = 1; i < f->n && st == RG_OK; i++)
            if (strcmp(f->by_name[i - 1]->name, f->by_name[i]->name) == 0)
                st = fail_at(err, RG_ERR_FORMAT, path, "duplicate tensor name '%.80s'", f->by_name[i]->name);
    }
    if (st == RG_OK) st = check_layout(path, f, spans, data_size, err);
    if (st != RG_OK) {
        free(spans);
        return st;
    }
    *spans_out = spans;
    return RG_OK;
}

/* ---- reading: the file -------------------------------------------------- */

/* Reads exactly size bytes; a short read means the file changed under us. */
static rg_status read_exact(FILE *fp, void *buf, size_t size, const char *path, const char *what, rg_error *err)
{
    if (size == 0) return RG_OK;
    errno = 0;
    if (fread(buf, 1, size, fp) == size) return RG_OK;
    if (ferror(fp))
        return fail_at(err, RG_ERR_IO, path, "cannot read %s: %s", what, strerror(errno ? errno : EIO));
    return fail_at(err, RG_ERR_FORMAT, path, "truncated while reading %s (the file shrank?)", what);
}

/* Copies the data section into 64-byte aligned slots, one per tensor, so
 * that every dtype is aligned whatever its offset in the file, and checks the
 * crc32 when the header has one. spans are sorted by offset. */
static rg_status read_data(const char *path, FILE *fp, rg_st_file *f, const span *spans, rg_error *err)
{
    size_t total = 0;
    for (int32_t i = 0; i < f->n; i++) total += (f->tensors[i].nbytes + 63) & ~(size_t)63;
    f->data = rg_alloc_aligned(total, err);
    if (!f->data) return err ? rg_error_prefix(err, "%s: the data section", path) : RG_ERR_NOMEM;
    size_t slot = 0;
    for (int32_t i = 0; i < f->n; i++) {
        rg_st_tensor *t = &f->tensors[i];
        t->raw = f->data + slot;
        t->data = t->dtype == RG_ST_F32 ? (const float *)t->raw : NULL;
        slot += (t->nbytes + 63) & ~(size_t)63;
    }
    uLong crc = crc32(0L, Z_NULL, 0);
    for (int32_t i = 0; i < f->n; i++) {
        rg_st_tensor *t = &f->tensors[spans[i].index];
        unsigned char *dst = f->data + ((const unsigned char *)t->raw - f->data);
        rg_status st = read_exact(fp, dst, t->nbytes, path, "tensor data", err);
        if (st != RG_OK) return st;
        crc = crc_update(crc, t->raw, t->nbytes);
    }

    const char *want = rg_st_meta_get(f, CRC_KEY);
    if (!want) return RG_OK;
    char *endp = NULL;
    errno = 0;
    unsigned long v = strtoul(want, &endp, 16);
    if (strlen(want) != 8 || *endp || errno || strspn(want, "0123456789abcdefABCDEF") != 8)
        return fail_at(err, RG_ERR_FORMAT, path, "metadata '" CRC_KEY "' is malformed ('%.20s', want 8 hex digits)",
                       want);
    if ((uint32_t)v != (uint32_t)crc)
        return fail_at(err, RG_ERR_FORMAT, path,
                       "checksum mismatch: the file was modified or corrupted (data crc32 %08lx, header says %s)",
                       (unsigned long)crc, want);
    return RG_OK;
}

rg_status rg_st_read(const char *path, rg_st_file **out, rg_error *err)
{
    if (out) *out = NULL;
    if (!path || !out) return rg_fail(err, RG_ERR_ARG, "rg_st_read: NULL path or out");

    FILE *fp = fopen(path, "rb");
    if (!fp) return fail_at(err, RG_ERR_IO, path, "cannot open: %s", strerror(errno));
    rg_st_file *f = NULL;
    char *header = NULL;
    span *spans = NULL;
    rg_status st;
    struct stat sb;
    if (fstat(fileno(fp), &sb) != 0) {
        st = fail_at(err, RG_ERR_IO, path, "cannot stat: %s", strerror(errno));
        goto done;
    }
    if (!S_ISREG(sb.st_mode)) {
        st = fail_at(err, RG_ERR_IO, path, "cannot read: not a regular file");
        goto done;
    }
    uint64_t file_size = (uint64_t)sb.st_size;
    if (file_size < 8) {
        st = fail_at(err, RG_ERR_FORMAT, path, "file is %s: %" PRIu64 " bytes, too short for the 8-byte header length",
                     file_size == 0 ? "empty (truncated)" : "truncated", file_size);
        goto done;
    }
    unsigned char prefix[8];
    st = read_exact(fp, prefix, 8, path, "the header length", err);
    if (st != RG_OK) goto done;
    uint64_t hlen = 0;
    for (int k = 7; k >= 0; k--) hlen = (hlen << 8) | prefix[k];
    if (hlen > RG_ST_MAX_HEADER) {
        st = fail_at(err, RG_ERR_FORMAT, path,
                     "header length %" PRIu64 " is too large (limit %u bytes): not a safetensors file?", hlen,
                     RG_ST_MAX_HEADER);
        goto done;
    }
    if (hlen > file_size - 8) {
        st = fail_at(err, RG_ERR_FORMAT, path,
                     "header length %" PRIu64 " exceeds the %" PRIu64 " bytes that follow it: the file is truncated",
                     hlen, file_size - 8);
        goto done;
    }
    uint64_t data_size = file_size - 8 - hlen;
    if (data_size > SIZE_MAX / 2) {
        st = fail_at(err, RG_ERR_NOMEM, path, "data section of %" PRIu64 " bytes does not fit in memory", data_size);
        goto done;
    }
    header = rg_malloc((size_t)hlen + 1, err);
    if (!header) {
        st = err ? rg_error_prefix(err, "%s: the header", path) : RG_ERR_NOMEM;
        goto done;
    }
    st = read_exact(fp, header, (size_t)hlen, path, "the header", err);
    if (st != RG_OK) goto done;
    header[hlen] = 0;

    f = rg_calloc(1, sizeof *f, err);
    if (!f || !(f->path = dup_string(path, err))) {
        st = RG_ERR_NOMEM;
        goto done;
    }
    st = parse_header(path, header, (size_t)hlen, data_size, f, &spans, err);
    if (st == RG_OK) st = read_data(path, fp, f, spans, err);

done:
    fclose(fp);
    free(header);
    free(spans);
    if (st != RG_OK) {
        rg_st_free(f);
        return st;
    }
    *out = f;
    return RG_OK;
}

/* ---- lookups ------------------------------------------------------------ */

int32_t rg_st_count(const rg_st_file *f) { return f ? f->n : 0; }

const rg_st_tensor *rg_st_at(const rg_st_file *f, int32_t i)
{
    return f && i >= 0 && i < f->n ? &f->tensors[i] : NULL;
}

static int cmp_name_key(const void *key, const void *elem)
{
    return strcmp((const char *)key, (*(const rg_st_tensor *const *)elem)->name);
}

const rg_st_tensor *rg_st_find(const rg_st_file *f, const char *name)
{
    if (!f || !name || f->n == 0) return NULL;
    const rg_st_tensor *const *hit = bsearch(name, f->by_name, (size_t)f->n, sizeof *f->by_name, cmp_name_key);
    return hit ? *hit : NULL;
}

const char *rg_st_meta_get(const rg_st_file *f, const char *key)
{
    if (!f || !key) return NULL;
    for (int32_t i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta[i].key, key) == 0) return f->meta[i].value;
    return NULL;
}

int32_t rg_st_meta_count(const rg_st_file *f) { return f ? f->n_meta : 0; }

const rg_st_meta *rg_st_meta_at(const rg_st_file *f, int32_t i)
{
    return f && i >= 0 && i < f->n_meta ? &f->meta[i] : NULL;
}

void rg_st_free(rg_st_file *f)
{
    if (!f) return;
    for (int32_t i = 0; i < f->n; i++) free((char *)f->tensors[i].name);
    for (int32_t i = 0; i < f->n_meta; i++) {
        free((char *)f->meta[i].key);
        free((char *)f->meta[i].value);
    }
    free(f->tensors);
    free(f->by_name);
    free(f->meta);
    rg_free_aligned(f->data);
    free(f->path);
    free(f);
}

rg_status rg_st_copy(const rg_st_file *f, const char *name, int32_t ndim, const int64_t *shape, float *dst,
                     rg_error *err)
{
    if (!f || !name || ndim < 0 || ndim > RG_ST_MAX_DIMS || (ndim > 0 && !shape))
        return rg_fail(err, RG_ERR_ARG, "rg_st_copy: bad argument");
    const rg_st_tensor *t = rg_st_find(f, name);
    if (!t) return fail_at(err, RG_ERR_NOTFOUND, f->path, "tensor '%.80s' not found", name);
    if (t->dtype != RG_ST_F32)
        return fail_at(err, RG_ERR_UNSUPPORTED, f->path, "tensor '%.80s' is %s, expected F32", name,
                       dtype_name(t->dtype));
    int same = t->ndim == ndim;
    for (int32_t d = 0; same && d < ndim; d++) same = t->shape[d] == shape[d];
    if (!same) {
        char have[200], want[200];
        return fail_at(err, RG_ERR_SHAPE, f->path, "tensor '%.80s': shape %s in the file, expected %s", name,
                       format_shape(have, sizeof have, t->ndim, t->shape), format_shape(want, sizeof want, ndim, shape));
    }
    if (t->nbytes > 0) {
        if (!dst) return rg_fail(err, RG_ERR_ARG, "rg_st_copy: NULL dst");
        memcpy(dst, t->data, t->nbytes);
    }
    return RG_OK;
}
