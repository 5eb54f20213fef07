/* regain — lowering a float graph to an int8 model (PROTOTYPE).
 *
 * rg_quant_lower takes a trained float graph, folds each batch norm into the
 * convolution before it (the formula of rg_graph_fold), fuses ReLU/ReLU6
 * into that convolution's output clamp, calibrates the activation ranges by
 * running calibration images through the float graph with one observer per
 * quantization point, and produces an int8 model: a list of integer ops
 * (regain/quant_kernels.h) over int8 tensors with their parameters.
 * rg_qmodel_run executes it with the integer reference kernels.
 *
 *     rg_lower_config cfg = rg_lower_default();
 *     rg_qmodel *m;
 *     rg_quant_lower(g, calib_images, 256, &cfg, &m, &err);   // replans g
 *     size_t bytes = rg_qmodel_arena_bytes(m, batch);
 *     int8_t *arena = malloc(bytes);
 *     rg_qmodel_run_float(m, arena, images, batch, logits, &err);
 *     rg_qmodel_free(m);
 *
 * Supported float ops: conv (dense, depthwise) [+ bn] [+ relu/relu6], add,
 * relu/relu6 alone (a clamp), max/avg pool, global average pool, linear,
 * dropout (identity). Others (hswish, sigmoid, mul, concat, slice, shuffle,
 * a batch norm not after a convolution) give RG_ERR_UNSUPPORTED.
 *
 * Prototype limits: every tensor gets its own slot in the arena (no
 * liveness planning); no file format; quantization points are fixed
 * (every op output), with no cross-layer equalization or bias correction.
 */
#ifndef REGAIN_QUANT_MODEL_H
#define REGAIN_QUANT_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "regain/graph.h"
#include "regain/observer.h"
#include "regain/quant.h"
#include "regain/quant_kernels.h"

typedef enum {
    RG_QOP_CONV = 0,
    RG_QOP_DEPTHWISE = 1,
    RG_QOP_FC = 2,
    RG_QOP_ADD = 3,
    RG_QOP_AVGPOOL = 4,
    RG_QOP_MAXPOOL = 5,
    RG_QOP_GAP = 6,
    RG_QOP_CLAMP = 7
} rg_qop_kind;

typedef struct {
    int32_t h, w, c;     /* per image, NHWC */
    rg_qparams q;
    int32_t value;       /* the float graph's value it stands for */
    size_t offset;       /* per-image byte offset in the arena (times the batch) */
} rg_qtensor;

typedef struct {
    rg_qop_kind kind;
    char name[RG_NAME_MAX];     /* the float node's name */
    int32_t in[2], out;         /* tensor ids; in[1] is -1 except for add */
    /* conv, depthwise, fc: geometry, int8 weights (OHWI / [c,kh,kw] / [out,in]),
     * int32 bias, requantization per output channel, output clamp */
    int32_t k_h, k_w, stride, pad;
    int32_t out_c;
    int8_t *weights;
    int32_t *bias;
    float *w_scales;            /* [out_c] (per tensor: all equal) */
    int32_t *multipliers, *shifts;
    int32_t act_min, act_max;   /* conv, fc, clamp, pools */
    rg_q_add_params add;
    rg_q_gap_params gap;        /* batch set at run time */
} rg_qop;

typedef struct {
    rg_qtensor *tensors;
    int32_t n_tensors;
    rg_qop *ops;
    int32_t n_ops;
    int32_t input, output;      /* tensor ids */
    size_t image_bytes;         /* arena bytes per image */
} rg_qmodel;

typedef struct {
    rg_obs_config observer;     /* activations (default: min/max) */
    int per_channel;            /* weights: 1 per output channel (default), 0 per tensor */
    int32_t batch;              /* calibration batch (default 32) */
} rg_lower_config;

rg_lower_config rg_lower_default(void);

/* Lowers g (finished, with trained parameters and BN statistics) using
 * n_calib calibration images (NHWC floats of g's input shape). Replans g for
 * training-mode memory (every activation kept) with cfg->batch, and runs it
 * in evaluation mode (BN running statistics). *out owns everything it points
 * to. Errors: RG_ERR_UNSUPPORTED naming the node, RG_ERR_ARG for a bad
 * config or a range that cannot be quantized, RG_ERR_NOMEM. */
rg_status rg_quant_lower(rg_graph *g, const float *calib, int32_t n_calib, const rg_lower_config *cfg,
                         rg_qmodel **out, rg_error *err);

/* Bytes of arena rg_qmodel_run needs for batch images. */
size_t rg_qmodel_arena_bytes(const rg_qmodel *m, int32_t batch);

/* The tensor t of the last run in arena (batch images, NHWC int8). */
int8_t *rg_qmodel_tensor(const rg_qmodel *m, int8_t *arena, int32_t batch, int32_t t);

/* Runs the int8 model on batch images already quantized with the input
 * tensor's parameters (in: batch * h*w*c int8), writing the output tensor
 * (out: batch * out c int8). arena: rg_qmodel_arena_bytes(m, batch) bytes. */
rg_status rg_qmodel_run(const rg_qmodel *m, int8_t *arena, const int8_t *in, int32_t batch, int8_t *out,
                        rg_error *err);

/* The same from float images: quantizes the input, runs, dequantizes the
 * output (logits). */
rg_status rg_qmodel_run_float(const rg_qmodel *m, int8_t *arena, const float *in, int32_t batch, float *out,
                              rg_error *err);

void rg_qmodel_free(rg_qmodel *m);

#endif
