/* regain — checkpoints in the safetensors format.
 *
 * A safetensors file (https://github.com/huggingface/safetensors) is
 *
 *     u64 little-endian N | N bytes of JSON header | data section
 *
 * where the header maps each tensor name to
 *     {"dtype": "F32", "shape": [16, 3, 3, 3], "data_offsets": [begin, end]}
 * (offsets relative to the start of the data section) plus an optional
 * "__metadata__" object of string values. Files written here load in Python
 * (`safetensors.torch.load_file`) and other ecosystems unchanged:
 *   - tensors are F32, little-endian, laid out contiguously in the order
 *     given, with no gaps;
 *   - the header is padded with spaces so that the data starts at a multiple
 *     of 8 bytes;
 *   - "__metadata__" holds the caller's key/value pairs and "regain.crc32",
 *     the zlib crc32 of the whole data section as 8 lowercase hex digits, so
 *     that a flipped bit is reported instead of silently trained on.
 *
 * Reading validates everything before anything is returned (see rg_st_read),
 * and keeps the whole file in memory: checkpoints of compact CNNs are small.
 *
 *     rg_st_tensor t[] = {{.name = "conv1.w", .ndim = 4, .shape = {16, 3, 3, 3}, .data = w},
 *                         {.name = "conv1.b", .ndim = 1, .shape = {16}, .data = b}};
 *     rg_st_meta m[] = {{"regain.model", "cnn-s"}};
 *     rg_st_write("ckpt.safetensors", t, 2, m, 1, &err);
 *
 *     rg_st_file *f;
 *     if (rg_st_read("ckpt.safetensors", &f, &err) != RG_OK) return err.code;
 *     st = rg_st_copy(f, "conv1.w", 4, (int64_t[]){16, 3, 3, 3}, w, &err);
 *     rg_st_free(f);
 */
#ifndef REGAIN_SAFETENSORS_H
#define REGAIN_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "regain/status.h"

#define RG_ST_MAX_DIMS 8
/* Largest header accepted on read: far above any real checkpoint, low enough
 * that a corrupt length field cannot make us allocate gigabytes. */
#define RG_ST_MAX_HEADER (100u * 1024u * 1024u)

/* Element types. F32 is 0 so that a zero-initialized rg_st_tensor is F32.
 * Values are appended at the end only. */
typedef enum {
    RG_ST_F32 = 0,
    RG_ST_I32 = 1,
    RG_ST_I64 = 2,
    RG_ST_U8 = 3,
    RG_ST_I8 = 4
} rg_st_dtype;

typedef struct {
    const char *name;           /* non-empty, unique within a file, UTF-8 */
    int32_t ndim;               /* 0..8; 0 is a scalar (one element) */
    int64_t shape[RG_ST_MAX_DIMS];
    const float *data;          /* F32: product(shape) elements; NULL for other dtypes */
    rg_st_dtype dtype;          /* read: the file's dtype; write: F32 from data, the others from raw */
    const void *raw;            /* read: the tensor's bytes for any dtype (aligned to 64); write: the
                                 * bytes of a non-F32 tensor (little-endian) */
    size_t nbytes;              /* read only: size of raw in bytes */
} rg_st_tensor;

typedef struct {
    const char *key;
    const char *value;          /* any UTF-8 text: quotes, newlines and all */
} rg_st_meta;

/* Writes n tensors and n_meta metadata pairs to path, atomically (a temporary
 * file renamed over path, see fileio.h), so an existing checkpoint is either
 * kept or fully replaced. Adds "regain.crc32" to the metadata. Tensor names
 * must be non-empty, unique, valid UTF-8 and not "__metadata__"; metadata keys
 * must be unique, valid UTF-8 and not "regain.crc32"; values valid UTF-8.
 * Returns RG_ERR_ARG for a bad argument (the message names the tensor or
 * key), RG_ERR_UNSUPPORTED for a non-F32 tensor without raw bytes, RG_ERR_IO
 * for a file system error. */
rg_status rg_st_write(const char *path, const rg_st_tensor *tensors, int32_t n,
                      const rg_st_meta *meta, int32_t n_meta, rg_error *err);

/* A loaded file: header parsed, data in memory. Owns every pointer it hands
 * out (names, data, metadata); they live until rg_st_free. */
typedef struct rg_st_file rg_st_file;

/* Loads path and validates it completely: the file holds at least the 8-byte
 * length; the header length is at most RG_ST_MAX_HEADER and fits in the file;
 * the header is valid UTF-8 JSON (no raw control characters, no "\u0000") and
 * an object, optionally followed by whitespace padding; every tensor has a
 * non-empty unique name, a known dtype (F32, I32, I64, U8, I8), a shape of at most
 * 8 non-negative integers, data_offsets [begin, end] with begin <= end <= data
 * size and end - begin == product(shape) * dtype size (overflow-checked);
 * the tensors neither overlap nor leave gaps and cover the data section
 * exactly; metadata keys are unique and values are strings; and, when
 * "regain.crc32" is present, the crc32 of the data section matches it.
 * On success *out owns the file; on error *out is NULL and err->msg starts
 * with the path and names the tensor or field and the problem. Codes:
 * RG_ERR_IO (cannot read), RG_ERR_FORMAT (malformed or corrupted),
 * RG_ERR_UNSUPPORTED (a valid safetensors dtype regain does not read, or more
 * than 8 dimensions), RG_ERR_NOMEM. */
rg_status rg_st_read(const char *path, rg_st_file **out, rg_error *err);

/* Number of tensors in f. */
int32_t rg_st_count(const rg_st_file *f);

/* The i-th tensor in header order (for files written by rg_st_write, the
 * order they were given in); NULL if i is out of range. Data is aligned to
 * 64 bytes whatever its offset in the file. */
const rg_st_tensor *rg_st_at(const rg_st_file *f, int32_t i);

/* The tensor called name, or NULL if there is none (O(log n)). */
const rg_st_tensor *rg_st_find(const rg_st_file *f, const char *name);

/* The metadata value for key, or NULL if absent. */
const char *rg_st_meta_get(const rg_st_file *f, const char *key);

/* Number of metadata pairs (including "regain.crc32" when present). */
int32_t rg_st_meta_count(const rg_st_file *f);

/* The i-th metadata pair in header order; NULL if i is out of range. */
const rg_st_meta *rg_st_meta_at(const rg_st_file *f, int32_t i);

/* Releases f and everything it handed out. NULL is a no-op. */
void rg_st_free(rg_st_file *f);

/* Copies the F32 tensor called name into dst (product(shape) floats, owned by
 * the caller) after checking that its shape is exactly (ndim, shape).
 * Returns RG_ERR_NOTFOUND if absent, RG_ERR_UNSUPPORTED if not F32,
 * RG_ERR_SHAPE if the shapes differ; messages name the file, the tensor and
 * both shapes. */
rg_status rg_st_copy(const rg_st_file *f, const char *name, int32_t ndim, const int64_t *shape,
                     float *dst, rg_error *err);

#endif
