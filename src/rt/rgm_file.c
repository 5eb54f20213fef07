/* The .rgm model file (regain/rt.h; layout in docs/runtime.md): writing,
 * and loading with every offset, size, count and id checked before use.
 *
 * All integers little-endian. Header (80 bytes):
 *    0 magic "RGM\x1a"          4 u32 version        8 u64 file_size
 *   16 u32 crc32 of bytes [20, file_size)           20 u32 header_size (80)
 *   24 u32 n_tensors           28 u32 n_ops         32 i32 input   36 i32 output
 *   40 f32 mean                44 f32 std
 *   48 u64 tensors_offset      56 u64 ops_offset    64 u64 blob_offset  72 u64 blob_size
 * then n_tensors tensor records (32 bytes), n_ops op records (320 bytes in
 * versions 2 and 3, 192 in version 1), and the blob (64-byte aligned):
 * weights, biases, multipliers, shifts, per-channel clamps, lookup tables,
 * fp32 scales, each array 64-byte aligned, referenced from the op records
 * by offset in the blob (NONE = all ones). Version 3 is written: version
 * 2's record with the scales' offset at byte 260 and an add's two f32
 * scales at 268 and 272 (reserved, zero, in version 2). Version 1 files
 * (the first eight kinds, no per-channel clamps) still load: their records
 * are the first 192 bytes of version 2's, with n_in (byte 148) and the
 * act_max_c offset (184) reserved as zeros. */
#include "regain/rt.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "regain/fileio.h"

#define HEADER_BYTES 80
#define TENSOR_BYTES 32
#define OP_BYTES_V1 192
#define OP_BYTES 320          /* versions 2 and 3 */
#define N_ARRAYS 7            /* weights, bias, multipliers, shifts, act_max_c, lut, scales */
#define V2_ARRAYS 6           /* no scales */
#define V1_KINDS 8
#define BLOB_ALIGN 64
#define NONE UINT64_MAX
#define MAX_FILE ((size_t)1 << 31)

static const uint8_t magic[4] = {'R', 'G', 'M', 0x1a};

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}
static void putf(uint8_t *p, float f)
{
    uint32_t v;
    memcpy(&v, &f, 4);
    put32(p, v);
}
static float getf(const uint8_t *p)
{
    uint32_t v = get32(p);
    float f;
    memcpy(&f, &v, 4);
    return f;
}

/* zlib's crc32 takes a uInt length: large ranges go in pieces. */
static uint32_t crc_of(const uint8_t *p, size_t n)
{
    uLong crc = crc32(0L, Z_NULL, 0);
    while (n) {
        uInt piece = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = crc32(crc, p, piece);
        p += piece;
        n -= piece;
    }
    return (uint32_t)crc;
}

static size_t align_up(size_t n)
{
    return (n + BLOB_ALIGN - 1) / BLOB_ALIGN * BLOB_ALIGN;
}

/* The arrays an op of this kind carries, and their byte sizes (offsets:
 * array_field). */
typedef struct {
    size_t bytes[N_ARRAYS]; /* 0 = absent */
} op_arrays;

static const char *const array_names[N_ARRAYS] = {"weights", "bias",  "multipliers", "shifts",
                                                  "act_max_c", "lut", "scales"};

/* where array k's offset sits in an op record */
static size_t array_field(int k)
{
    return k < V2_ARRAYS ? 152 + 8 * (size_t)k : 260;
}

static op_arrays arrays_of(const rg_rgm *m, const rg_rgm_op *o)
{
    op_arrays a = {{0}};
    const rg_rgm_tensor *in = &m->tensors[o->in[0]];
    size_t n = (size_t)o->out_c;
    switch (o->kind) {
    case RG_RT_CONV: a.bytes[0] = n * (size_t)o->k_h * o->k_w * in->c; break;
    case RG_RT_DEPTHWISE: a.bytes[0] = n * (size_t)o->k_h * o->k_w; break;
    case RG_RT_FC: a.bytes[0] = n * (size_t)in->h * in->w * in->c; break;
    case RG_RT_LUT: a.bytes[5] = 256; return a;
    default: return a;
    }
    a.bytes[1] = 4 * n;
    a.bytes[2] = 4 * n;
    a.bytes[3] = 4 * n;
    a.bytes[4] = 4 * n;
    a.bytes[6] = 4 * n;
    return a;
}

/* which arrays an op of its kind must have (the others are optional) */
static int array_required(int k)
{
    return k == 0 || k == 2 || k == 3 || k == 5;
}

static const void *array_ptr(const rg_rgm_op *o, int k)
{
    switch (k) {
    case 0: return o->weights;
    case 1: return o->bias;
    case 2: return o->multipliers;
    case 3: return o->shifts;
    case 4: return o->act_max_c;
    case 5: return o->lut;
    default: return o->scales;
    }
}

static void set_array(rg_rgm_op *o, int k, const void *p)
{
    switch (k) {
    case 0: o->weights = p; break;
    case 1: o->bias = p; break;
    case 2: o->multipliers = p; break;
    case 3: o->shifts = p; break;
    case 4: o->act_max_c = p; break;
    case 5: o->lut = p; break;
    default: o->scales = p; break;
    }
}

rg_status rg_rgm_serialize(const rg_rgm *m, void **data, size_t *size, rg_error *err)
{
    *data = NULL;
    *size = 0;
    rg_status st = rg_rgm_check(m, err);
    if (st) return rg_error_prefix(err, "rgm: model");
    size_t tensors_off = HEADER_BYTES, ops_off = tensors_off + (size_t)m->n_tensors * TENSOR_BYTES;
    size_t blob_off = align_up(ops_off + (size_t)m->n_ops * OP_BYTES), blob = 0;
    for (int32_t i = 0; i < m->n_ops; i++) {
        op_arrays a = arrays_of(m, &m->ops[i]);
        for (int k = 0; k < N_ARRAYS; k++)
            if (a.bytes[k] && array_ptr(&m->ops[i], k)) blob = align_up(blob + a.bytes[k]);
    }
    size_t total = blob_off + blob;
    if (total > MAX_FILE) return rg_fail(err, RG_ERR_ARG, "rgm: model of %zu bytes above 2 GiB", total);
    uint8_t *f = calloc(total, 1);
    if (!f) return rg_fail(err, RG_ERR_NOMEM, "rgm: out of memory for %zu bytes", total);
    memcpy(f, magic, 4);
    put32(f + 4, RG_RGM_VERSION);
    put64(f + 8, total);
    put32(f + 20, HEADER_BYTES);
    put32(f + 24, (uint32_t)m->n_tensors);
    put32(f + 28, (uint32_t)m->n_ops);
    put32(f + 32, (uint32_t)m->input);
    put32(f + 36, (uint32_t)m->output);
    putf(f + 40, m->mean);
    putf(f + 44, m->std);
    put64(f + 48, tensors_off);
    put64(f + 56, ops_off);
    put64(f + 64, blob_off);
    put64(f + 72, blob);
    for (int32_t t = 0; t < m->n_tensors; t++) {
        uint8_t *r = f + tensors_off + (size_t)t * TENSOR_BYTES;
        const rg_rgm_tensor *x = &m->tensors[t];
        put32(r, (uint32_t)x->h);
        put32(r + 4, (uint32_t)x->w);
        put32(r + 8, (uint32_t)x->c);
        putf(r + 12, x->q.scale);
        put32(r + 16, (uint32_t)x->q.zero_point);
    }
    size_t at = 0;
    for (int32_t i = 0; i < m->n_ops; i++) {
        const rg_rgm_op *o = &m->ops[i];
        uint8_t *r = f + ops_off + (size_t)i * OP_BYTES;
        put32(r, (uint32_t)o->kind);
        memcpy(r + 4, o->name, strnlen(o->name, RG_RGM_NAME_MAX - 1));
        const int32_t n_in = rg_rgm_op_n_in(o);
        int32_t in[RG_RGM_MAX_IN];
        for (int k = 0; k < RG_RGM_MAX_IN; k++) in[k] = k < n_in ? o->in[k] : -1;
        const int32_t fields[] = {in[0], in[1], o->out, o->k_h, o->k_w, o->stride, o->pad, o->out_c,
                                  o->act_min, o->act_max, o->add.in1_zp, o->add.in2_zp, o->add.out_zp,
                                  o->add.left_shift, o->add.in1_multiplier, o->add.in1_shift, o->add.in2_multiplier,
                                  o->add.in2_shift, o->add.out_multiplier, o->add.out_shift, o->add.act_min,
                                  o->add.act_max, o->gap_multiplier, o->gap_shift, n_in};
        for (size_t k = 0; k < sizeof fields / sizeof fields[0]; k++) put32(r + 52 + 4 * k, (uint32_t)fields[k]);
        const int32_t fields2[] = {in[2], in[3], o->cat_multipliers[0], o->cat_multipliers[1], o->cat_multipliers[2],
                                   o->cat_multipliers[3], o->cat_shifts[0], o->cat_shifts[1], o->cat_shifts[2],
                                   o->cat_shifts[3], o->ch_begin, o->groups, o->mul_multiplier, o->mul_shift,
                                   o->lut_fn};
        for (size_t k = 0; k < sizeof fields2 / sizeof fields2[0]; k++) put32(r + 200 + 4 * k, (uint32_t)fields2[k]);
        putf(r + 268, o->add.in1_scale); /* version 3: an add's fp32 scales (0: fixed-point) */
        putf(r + 272, o->add.in2_scale);
        op_arrays a = arrays_of(m, o);
        for (int k = 0; k < N_ARRAYS; k++) {
            const void *src = array_ptr(o, k);
            if (!a.bytes[k] || !src) {
                put64(r + array_field(k), NONE);
                continue;
            }
            put64(r + array_field(k), at);
            if (k == 0 || k == 5) { /* int8 */
                memcpy(f + blob_off + at, src, a.bytes[k]);
            } else if (k == 6) { /* float: its bits, little-endian */
                const float *v = src;
                for (size_t j = 0; j < a.bytes[k] / 4; j++) putf(f + blob_off + at + 4 * j, v[j]);
            } else {
                const int32_t *v = src;
                for (size_t j = 0; j < a.bytes[k] / 4; j++) put32(f + blob_off + at + 4 * j, (uint32_t)v[j]);
            }
            at = align_up(at + a.bytes[k]);
        }
    }
    put32(f + 16, crc_of(f + 20, total - 20));
    *data = f;
    *size = total;
    return RG_OK;
}

rg_status rg_rgm_write(const rg_rgm *m, const char *path, rg_error *err)
{
    void *data;
    size_t size;
    rg_status st = rg_rgm_serialize(m, &data, &size, err);
    if (st) return rg_error_prefix(err, "%s", path);
    st = rg_write_file_atomic(path, data, size, err);
    free(data);
    return st;
}

/* ---- loading ---- */

#define BAD(...) rg_fail(err, RG_ERR_FORMAT, __VA_ARGS__)

/* Layout checks: everything about where things are, before anything is read
 * through a pointer. */
static rg_status parse(uint8_t *f, size_t size, rg_rgm *m, rg_error *err)
{
    if (size < HEADER_BYTES) return BAD("file of %zu bytes is shorter than the %d-byte header (truncated)", size, HEADER_BYTES);
    if (memcmp(f, magic, 4) != 0) return BAD("magic: not an .rgm model file (bad magic bytes)");
    uint32_t version = get32(f + 4);
    if (version < 1 || version > RG_RGM_VERSION)
        return BAD("version: %u is not supported (this build reads versions 1 to %d)", version, RG_RGM_VERSION);
    const size_t op_bytes = version == 1 ? OP_BYTES_V1 : OP_BYTES;
    const int n_arrays = version == 1 ? 4 : version == 2 ? V2_ARRAYS : N_ARRAYS;
    m->version = (int32_t)version;
    uint64_t file_size = get64(f + 8);
    if (file_size != size)
        return BAD("file_size: the header says %llu bytes, the file has %zu (%s)", (unsigned long long)file_size, size,
                   file_size > size ? "truncated" : "trailing data");
    uint32_t crc = get32(f + 16), actual = crc_of(f + 20, size - 20);
    if (crc != actual) return BAD("crc32: checksum mismatch (stored %08x, computed %08x): the file is corrupted", crc, actual);
    if (get32(f + 20) != HEADER_BYTES) return BAD("header_size: %u, expected %d", get32(f + 20), HEADER_BYTES);
    uint32_t nt = get32(f + 24), no = get32(f + 28);
    if (nt < 1 || nt > 65536) return BAD("n_tensors: %u outside [1, 65536]", nt);
    if (no < 1 || no > 65536) return BAD("n_ops: %u outside [1, 65536]", no);
    uint64_t to = get64(f + 48), oo = get64(f + 56), bo = get64(f + 64), bs = get64(f + 72);
    /* sections in order, inside the file, not overlapping */
    if (to < HEADER_BYTES || to > size || (size - to) / TENSOR_BYTES < nt)
        return BAD("tensors_offset: %llu with %u tensors is outside the file", (unsigned long long)to, nt);
    if (oo < to + (uint64_t)nt * TENSOR_BYTES || oo > size || (size - oo) / op_bytes < no)
        return BAD("ops_offset: %llu with %u ops is outside the file or overlaps the tensors", (unsigned long long)oo, no);
    if (bo < oo + (uint64_t)no * op_bytes || bo > size || bo % BLOB_ALIGN)
        return BAD("blob_offset: %llu is outside the file, overlaps the ops or is not %d-aligned", (unsigned long long)bo,
                   BLOB_ALIGN);
    if (bs != size - bo)
        return BAD("blob_size: %llu, but %llu bytes follow blob_offset", (unsigned long long)bs,
                   (unsigned long long)(size - bo));
    m->n_tensors = (int32_t)nt;
    m->n_ops = (int32_t)no;
    m->input = (int32_t)get32(f + 32);
    m->output = (int32_t)get32(f + 36);
    m->mean = getf(f + 40);
    m->std = getf(f + 44);
    for (uint32_t t = 0; t < nt; t++) {
        const uint8_t *r = f + to + (size_t)t * TENSOR_BYTES;
        rg_rgm_tensor *x = &m->tensors[t];
        x->h = (int32_t)get32(r);
        x->w = (int32_t)get32(r + 4);
        x->c = (int32_t)get32(r + 8);
        x->q.scale = getf(r + 12);
        x->q.zero_point = (int32_t)get32(r + 16);
        for (int k = 20; k < TENSOR_BYTES; k++)
            if (r[k]) return BAD("tensor %u: reserved byte %d is not zero", t, k);
    }
    /* op fields; the arrays are attached only after the ids and shapes they
     * are sized by have been checked (rg_rgm_check below, in two passes) */
    for (uint32_t i = 0; i < no; i++) {
        const uint8_t *r = f + oo + (size_t)i * op_bytes;
        rg_rgm_op *o = &m->ops[i];
        o->kind = (rg_rt_kind)get32(r);
        if (get32(r) >= (version == 1 ? V1_KINDS : RG_RT_N_KINDS))
            return BAD("op %u: kind %u unknown (in version %u)", i, get32(r), version);
        memcpy(o->name, r + 4, RG_RGM_NAME_MAX);
        if (!memchr(o->name, 0, RG_RGM_NAME_MAX)) return BAD("op %u: name is not NUL-terminated", i);
        int32_t v[25];
        for (int k = 0; k < 25; k++) v[k] = (int32_t)get32(r + 52 + 4 * k);
        o->in[0] = v[0], o->in[1] = v[1], o->out = v[2];
        o->in[2] = o->in[3] = -1;
        o->k_h = v[3], o->k_w = v[4], o->stride = v[5], o->pad = v[6], o->out_c = v[7];
        o->act_min = v[8], o->act_max = v[9];
        o->add = (rg_q_add_params){v[10], v[11], v[12], v[13], v[14], v[15], v[16], v[17], v[18], v[19], v[20], v[21],
                                   version >= 3 ? getf(r + 268) : 0.0f, version >= 3 ? getf(r + 272) : 0.0f};
        o->gap_multiplier = v[22], o->gap_shift = v[23];
        int32_t nin = o->kind == RG_RT_ADD || o->kind == RG_RT_MUL ? 2 : 1;
        if (version == 1) {
            for (int k = 148; k < 152; k++)
                if (r[k]) return BAD("op %u (%s): reserved byte %d is not zero", i, o->name, k);
            for (int k = 184; k < OP_BYTES_V1; k++)
                if (r[k]) return BAD("op %u (%s): reserved byte %d is not zero", i, o->name, k);
        } else {
            for (int k = version == 2 ? 260 : 276; k < OP_BYTES; k++)
                if (r[k]) return BAD("op %u (%s): reserved byte %d is not zero", i, o->name, k);
            int32_t w[15];
            for (int k = 0; k < 15; k++) w[k] = (int32_t)get32(r + 200 + 4 * k);
            o->in[2] = w[0], o->in[3] = w[1];
            for (int k = 0; k < RG_RGM_MAX_IN; k++) o->cat_multipliers[k] = w[2 + k], o->cat_shifts[k] = w[6 + k];
            o->ch_begin = w[10], o->groups = w[11], o->mul_multiplier = w[12], o->mul_shift = w[13];
            o->lut_fn = w[14];
            o->n_in = v[24];
            if (o->kind == RG_RT_CONCAT ? (v[24] < 2 || v[24] > RG_RGM_MAX_IN) : v[24] != nin)
                return BAD("op %u (%s): n_in %d, a %s op takes %s", i, o->name, (int)v[24], rg_rt_kind_name(o->kind),
                           o->kind == RG_RT_CONCAT ? "2 to 4" : nin == 2 ? "2" : "1");
            nin = v[24];
        }
        if (o->kind != RG_RT_CONCAT) o->n_in = 0; /* only a concat's is read */
        for (int k = 0; k < (version == 1 ? 2 : RG_RGM_MAX_IN); k++)
            if (k < nin ? (o->in[k] < 0 || o->in[k] >= (int32_t)nt) : o->in[k] != -1)
                return BAD("op %u (%s): in[%d] = %d is not a valid tensor id", i, o->name, k, (int)o->in[k]);
        if (o->out < 0 || o->out >= (int32_t)nt)
            return BAD("op %u (%s): out = %d is not a valid tensor id", i, o->name, (int)o->out);
        if (o->kind <= RG_RT_FC && (o->out_c < 1 || o->out_c > 32768))
            return BAD("op %u (%s): out_c %d outside [1, 32768]", i, o->name, (int)o->out_c);
    }
    /* tensor shapes first (the array sizes depend on them) */
    for (uint32_t t = 0; t < nt; t++) {
        const rg_rgm_tensor *x = &m->tensors[t];
        if (x->h < 1 || x->h > 32768 || x->w < 1 || x->w > 32768 || x->c < 1 || x->c > 32768)
            return BAD("tensor %u: shape %dx%dx%d outside [1, 32768]", t, (int)x->h, (int)x->w, (int)x->c);
    }
    for (uint32_t i = 0; i < no; i++) {
        const uint8_t *r = f + oo + (size_t)i * op_bytes;
        rg_rgm_op *o = &m->ops[i];
        if (o->kind <= RG_RT_DEPTHWISE && (o->k_h < 1 || o->k_h > 32 || o->k_w < 1 || o->k_w > 32))
            return BAD("op %u (%s): kernel %dx%d outside [1, 32]", i, o->name, (int)o->k_h, (int)o->k_w);
        op_arrays a = arrays_of(m, o);
        for (int k = 0; k < n_arrays; k++) {
            uint64_t off = get64(r + array_field(k));
            const void *p = NULL;
            if (off != NONE) {
                if (!a.bytes[k])
                    return BAD("op %u (%s): %s_offset given for a %s op, which has none", i, o->name, array_names[k],
                               rg_rt_kind_name(o->kind));
                if (off % 4 || off > bs || bs - off < a.bytes[k])
                    return BAD("op %u (%s): %s_offset %llu + %zu bytes is outside the %llu-byte blob or unaligned", i,
                               o->name, array_names[k], (unsigned long long)off, a.bytes[k], (unsigned long long)bs);
                p = f + bo + off;
            } else if (a.bytes[k] && array_required(k)) {
                return BAD("op %u (%s): %s missing", i, o->name, array_names[k]);
            }
            set_array(o, k, p);
        }
    }
    return RG_OK;
}

static int little_endian(void)
{
    const uint32_t one = 1;
    uint8_t b;
    memcpy(&b, &one, 1);
    return b == 1;
}

rg_status rg_rgm_parse(const void *data, size_t size, const char *name, rg_rgm **out, rg_error *err)
{
    *out = NULL;
    if (!little_endian()) return rg_fail(err, RG_ERR_UNSUPPORTED, "%s: .rgm models need a little-endian host", name);
    if (size > MAX_FILE) return rg_fail(err, RG_ERR_FORMAT, "%s: file of %zu bytes above 2 GiB", name, size);
    rg_rgm *m = calloc(1, sizeof *m);
    uint8_t *copy = malloc(size ? size : 1);
    if (!m || !copy) {
        free(m);
        free(copy);
        return rg_fail(err, RG_ERR_NOMEM, "%s: out of memory", name);
    }
    memcpy(copy, data, size);
    m->storage = copy;
    rg_status st = RG_OK;
    if (size >= HEADER_BYTES) {
        uint32_t nt = get32(copy + 24), no = get32(copy + 28);
        if (nt <= 65536 && no <= 65536) {
            m->tensors = calloc(nt ? nt : 1, sizeof *m->tensors);
            m->ops = calloc(no ? no : 1, sizeof *m->ops);
            if (!m->tensors || !m->ops) st = rg_fail(err, RG_ERR_NOMEM, "out of memory");
        }
    }
    if (!st) st = parse(copy, size, m, err);
    if (!st) st = rg_rgm_check(m, err);
    if (st) {
        rg_error_prefix(err, "%s", name);
        rg_rgm_free(m);
        return st;
    }
    *out = m;
    return RG_OK;
}

rg_status rg_rgm_load(const char *path, rg_rgm **out, rg_error *err)
{
    void *data;
    size_t size;
    *out = NULL;
    rg_status st = rg_read_file(path, MAX_FILE, &data, &size, err);
    if (st) return st;
    /* parse copies; the read buffer is then dropped (one copy at a time
     * would do, but this keeps rg_rgm_parse the single entry for the fuzzer) */
    st = rg_rgm_parse(data, size, path, out, err);
    free(data);
    return st;
}

void rg_rgm_free(rg_rgm *m)
{
    if (!m) return;
    free(m->storage);
    free(m->tensors);
    free(m->ops);
    free(m);
}
