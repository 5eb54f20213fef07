/* regain — the integer-only runtime and its model file (.rgm).
 *
 * A lowered int8 model (regain/quant_model.h) is saved as a self-contained,
 * versioned, checksummed file (layout in docs/runtime.md) and run by a small
 * runtime on the fast int8 kernels (src/rt/kernels/qk.h; bit-exact with the
 * integer reference kernels, so with rg_qmodel_run). Loading validates
 * every field of the file before anything is used; preparing packs the
 * weights for one kernel table and plans the activation arena by liveness;
 * running allocates nothing: the caller gives one buffer of
 * rg_rt_arena_size bytes (several buffers allow concurrent runs of one
 * prepared model).
 *
 *     rg_rgm *m;
 *     rg_rt *rt;
 *     if (rg_rgm_load("model.rgm", &m, &err)) return err.code;
 *     if (rg_rt_prepare(m, NULL, &rt, &err)) ...;       // NULL: rg_qk_kernels()
 *     void *arena = malloc(rg_rt_arena_size(rt));
 *     rg_rt_invoke(rt, arena, image_s8, logits_s8);    // batch 1
 *     rg_rt_invoke_float(rt, arena, image_f32, logits_f32);
 *     rg_rt_free(rt); rg_rgm_free(m); free(arena);
 *
 * Batches: prepare with rg_rt_prepare_opts (micro-batch, threads); the
 * arena then holds one slot per thread (the plan's activations times the
 * micro-batch, plus the kernels' scratch) and rg_rt_invoke_batch runs any
 * number of images, each thread its own contiguous share, micro-batch by
 * micro-batch. Every image is computed alone by the same kernels, so the
 * results are the same bits for every thread count and micro-batch.
 */
#ifndef REGAIN_RT_H
#define REGAIN_RT_H

#include <stddef.h>
#include <stdint.h>

#include "regain/quant.h"
#include "regain/quant_kernels.h"
#include "regain/status.h"

#define RG_RGM_VERSION 3      /* written; versions 1 to 3 are read */
#define RG_RGM_NAME_MAX 48   /* op names, NUL included (longer ones are cut) */
#define RG_RGM_MAX_IN 4      /* inputs of an op (concat) */

/* Op kinds; the values are the file's (and match rg_qop_kind). Version 1
 * files hold kinds 0 to 7 only. */
typedef enum {
    RG_RT_CONV = 0,
    RG_RT_DEPTHWISE = 1,
    RG_RT_FC = 2,
    RG_RT_ADD = 3,
    RG_RT_AVGPOOL = 4,
    RG_RT_MAXPOOL = 5,
    RG_RT_GAP = 6,
    RG_RT_CLAMP = 7,
    RG_RT_CONCAT = 8,       /* version 2 on */
    RG_RT_SPLIT = 9,
    RG_RT_SHUFFLE = 10,
    RG_RT_MUL = 11,
    RG_RT_LUT = 12,
    RG_RT_N_KINDS = 13
} rg_rt_kind;

typedef struct {
    int32_t h, w, c;        /* NHWC, one image */
    rg_qparams q;
} rg_rgm_tensor;

typedef struct {
    rg_rt_kind kind;
    char name[RG_RGM_NAME_MAX];
    /* tensor ids: in[0], and in[1] for add and mul (else -1); concat reads
     * in[0 .. n_in-1]. in[2], in[3] are read only by a concat (see
     * rg_rgm_op_n_in); the file stores -1 in every unused slot. */
    int32_t in[RG_RGM_MAX_IN], out;
    int32_t n_in;               /* concat: 2 .. 4 inputs; ignored for other kinds */
    int32_t k_h, k_w, stride, pad, out_c;   /* conv, depthwise, pools (out_c: conv, dw, fc) */
    int32_t act_min, act_max;   /* conv, dw, fc, clamp, pools, gap, mul */
    /* conv [out_c, k_h, k_w, in_c], depthwise [c, k_h, k_w], fc [out_c, in]:
     * int8 weights, int32 bias, requantization [out_c]; NULL for others */
    const int8_t *weights;
    const int32_t *bias, *multipliers, *shifts;
    /* conv, dw, fc (version 2): a per-output-channel upper clamp [out_c]
     * applied after act_min/act_max (equalized ReLU6 layers), each in
     * [act_min, act_max]; NULL when none */
    const int32_t *act_max_c;
    /* conv, dw, fc (version 3): float scales [out_c], finite and >= 0: the
     * layer requantizes with them (regain/quant.h rg_q_requant_fp32) instead
     * of the multipliers, which the file still holds; NULL when none */
    const float *scales;
    rg_q_add_params add;        /* add */
    int32_t gap_multiplier, gap_shift;  /* gap (zero points from the tensors, clamp act_min/max) */
    /* version 2 kinds (zero points always from the tensors): */
    int32_t cat_multipliers[RG_RGM_MAX_IN], cat_shifts[RG_RGM_MAX_IN]; /* concat: s_k / s_out */
    int32_t ch_begin;           /* split: first input channel */
    int32_t groups;             /* shuffle: divides the channels */
    int32_t mul_multiplier, mul_shift;  /* mul: s1 * s2 / s_out; clamp act_min/act_max */
    int32_t lut_fn;             /* lut: RG_Q_LUT_* the table was built from */
    const int8_t *lut;          /* lut: 256 entries, y = lut[x + 128] */
} rg_rgm_op;

/* Inputs op o reads: 2 for add and mul, n_in for concat, 1 otherwise. */
int32_t rg_rgm_op_n_in(const rg_rgm_op *o);

/* A model as the file holds it. Pointers point into storage (a loaded file)
 * or are borrowed (rg_rgm_from_qmodel). */
typedef struct {
    rg_rgm_tensor *tensors;
    int32_t n_tensors;
    rg_rgm_op *ops;
    int32_t n_ops;
    int32_t input, output;      /* tensor ids */
    float mean, std;            /* input normalization: x = (pixel/255 - mean) / std */
    int32_t version;            /* the file's format version (0: built in memory) */
    void *storage;              /* the file's bytes (owned), or NULL */
} rg_rgm;

/* "fp32" when some layer of m requantizes with float scales, else "fixed". */
const char *rg_rgm_requant_name(const rg_rgm *m);

/* Writes m to path atomically (regain/fileio.h). Checks m as the loader
 * would first (a model the loader rejects is never written). */
rg_status rg_rgm_write(const rg_rgm *m, const char *path, rg_error *err);

/* Serializes m into a new malloc'd buffer (*data, *size): the file's bytes. */
rg_status rg_rgm_serialize(const rg_rgm *m, void **data, size_t *size, rg_error *err);

/* Reads and validates path. Every error is RG_ERR_FORMAT (or RG_ERR_IO /
 * RG_ERR_NOMEM) with a message naming the file and the field. */
rg_status rg_rgm_load(const char *path, rg_rgm **out, rg_error *err);

/* The same from bytes in memory (copied); name is used in messages. */
rg_status rg_rgm_parse(const void *data, size_t size, const char *name, rg_rgm **out, rg_error *err);

/* Checks a model in memory (what the loader checks after the layout). */
rg_status rg_rgm_check(const rg_rgm *m, rg_error *err);

void rg_rgm_free(rg_rgm *m);

/* Bytes of weights, biases, requantization parameters, per-channel clamps
 * and lookup tables (flash). */
size_t rg_rgm_param_bytes(const rg_rgm *m);
/* Multiply-accumulates of op i for one image. */
int64_t rg_rgm_op_macs(const rg_rgm *m, int32_t i);
const char *rg_rt_kind_name(rg_rt_kind k);

/* ---- the runtime ---- */

typedef struct rg_rt rg_rt;
struct rg_qk_table;

/* Prepares m for the kernel table t (NULL: rg_qk_kernels(), which follows
 * REGAIN_ISA): packs the weights (one allocation, owned by *out) and plans
 * the arena. m must outlive *out. */
rg_status rg_rt_prepare(const rg_rgm *m, const struct rg_qk_table *t, rg_rt **out, rg_error *err);

/* How a prepared model runs batches. micro_batch: images a thread runs
 * through the network together (1 to 4096; larger ones amortize the per-op
 * costs on small layers, smaller ones keep the activations in cache);
 * threads: OpenMP threads of rg_rt_invoke_batch (1 to 256). */
typedef struct {
    int32_t micro_batch;
    int32_t threads;
} rg_rt_options;

/* rg_rt_prepare for batches (rg_rt_prepare is this with {1, 1}). The arena
 * size is threads * (align64(micro_batch * plan) + scratch): it grows
 * linearly with both; the scratch does not depend on the micro-batch.
 * Errors as rg_rt_prepare, and RG_ERR_ARG for options out of range. */
rg_status rg_rt_prepare_opts(const rg_rgm *m, const struct rg_qk_table *t, const rg_rt_options *o, rg_rt **out,
                             rg_error *err);

/* Bytes of the buffer rg_rt_invoke needs: activations + kernel scratch
 * (per thread, times threads; see rg_rt_options). */
size_t rg_rt_arena_size(const rg_rt *rt);
/* The options the model was prepared with. */
rg_rt_options rg_rt_options_get(const rg_rt *rt);
/* Bytes of packed weights the prepared model holds. */
size_t rg_rt_packed_size(const rg_rt *rt);
const char *rg_rt_table_name(const rg_rt *rt);

/* Runs one image: in (input h*w*c int8, already quantized with the input
 * tensor's parameters) -> out (output c int8). arena: rg_rt_arena_size
 * bytes, any content, 64-byte aligned preferred. Allocates nothing. */
void rg_rt_invoke(const rg_rt *rt, void *arena, const int8_t *in, int8_t *out);

/* Runs n images (n >= 0): in [n, input h*w*c] -> out [n, output c], on the
 * threads and micro-batch of the options, in the one arena of
 * rg_rt_arena_size bytes. Allocates nothing; same bits as n calls of
 * rg_rt_invoke. Not reentrant on one arena. */
void rg_rt_invoke_batch(const rg_rt *rt, void *arena, int32_t n, const int8_t *in, int8_t *out);
/* The same from normalized float images to dequantized outputs (as
 * rg_rt_invoke_float, image by image). */
void rg_rt_invoke_batch_float(const rg_rt *rt, void *arena, int32_t n, const float *in, float *out);

/* The same from a normalized float image; out receives dequantized logits. */
void rg_rt_invoke_float(const rg_rt *rt, void *arena, const float *in, float *out);

/* rg_rt_invoke, calling trace(user, i, y) after op i with its output
 * tensor y (valid until a later op overwrites it): for tests and
 * debugging, to compare every intermediate tensor. */
typedef void (*rg_rt_trace_fn)(void *user, int32_t op, const int8_t *y);
void rg_rt_invoke_trace(const rg_rt *rt, void *arena, const int8_t *in, int8_t *out, rg_rt_trace_fn trace,
                        void *user);

/* The arena plan. Tensors live from the op that writes them (-1: the
 * input) to the last op that reads them (n_ops: the output). */
typedef struct {
    size_t arena;               /* activation bytes the plan uses (peak) */
    size_t scratch;             /* kernel scratch after the activations */
    size_t naive;               /* every tensor its own slot */
    size_t lower_bound;         /* max over ops of its inputs + output */
    size_t tflm_greedy;         /* TFLite Micro's greedy-by-size, no in-place */
} rg_rt_plan_stats;

void rg_rt_plan_stats_get(const rg_rt *rt, rg_rt_plan_stats *s);
/* Offset of tensor t in the arena, and its life [first, last] in ops. */
size_t rg_rt_tensor_offset(const rg_rt *rt, int32_t t);
void rg_rt_tensor_life(const rg_rt *rt, int32_t t, int32_t *first, int32_t *last);
/* 1 when tensor t shares its input's buffer (an in-place clamp). */
int rg_rt_tensor_in_place(const rg_rt *rt, int32_t t);

void rg_rt_free(rg_rt *rt);

/* Normalizes n uint8 pixels as the model was trained ((p/255 - mean) / std,
 * the loader's formula) into x. */
void rg_rt_normalize(const rg_rt *rt, const uint8_t *pixels, size_t n, float *x);

/* Predicted class (first maximum of the output) of every image of an NHWC
 * uint8 set (n images of the input's shape), one at a time through
 * rg_rt_invoke_float; pred: n entries. Errors: RG_ERR_SHAPE when the image
 * shape differs from the model's input, RG_ERR_NOMEM. */
rg_status rg_rt_predict(const rg_rt *rt, void *arena, const uint8_t *images, int32_t n, int32_t h, int32_t w,
                        int32_t c, int32_t *pred, rg_error *err);

#endif
