/* regain — lowering a float graph to an int8 model, and running it.
 *
 * rg_quant_lower takes a trained float graph, folds each batch norm into the
 * convolution before it (the formula of rg_graph_fold), fuses ReLU/ReLU6
 * into that convolution's output clamp, and produces an int8 model: a list
 * of integer ops (regain/quant_kernels.h) over int8 tensors with their
 * parameters. On the way, optionally, it equalizes weight ranges across
 * consecutive layers (regain/equalize.h) and corrects the biases for the
 * weight quantization error (regain/bias_correct.h). Activation ranges are
 * calibrated by running calibration images through the float version of the
 * lowered model (rg_qmodel_run_ref) with one observer per quantization point.
 * rg_qmodel_run executes the int8 model with the integer reference kernels.
 *
 *     rg_lower_config cfg = rg_lower_default();
 *     cfg.observer = rg_obs_default(RG_OBS_PERCENTILE);
 *     cfg.equalize = 1;
 *     rg_qmodel *m;
 *     rg_quant_lower(g, calib_images, 256, &cfg, &m, &err);
 *     size_t bytes = rg_qmodel_arena_bytes(m, batch);   // planned by liveness
 *     int8_t *arena = malloc(bytes);
 *     rg_qmodel_run_float(m, arena, images, batch, logits, &err);
 *     rg_qmodel_free(m);
 *
 * Supported float ops: conv (dense, depthwise) [+ bn] [+ relu/relu6], add,
 * concat, relu/relu6 alone (a clamp), max/avg pool, global average pool,
 * linear, dropout (identity). Others (hswish, sigmoid, mul, slice, shuffle,
 * a batch norm not after a convolution) give RG_ERR_UNSUPPORTED.
 *
 * The arena is planned by liveness (greedy by size, as src/graph/plan.c does
 * for floats): tensors whose lifetimes do not overlap share bytes, so after a
 * run only the output (and the tensors still live at the end) can be read
 * back. rg_qmodel_plan_arena(m, 1) gives every tensor its own slot instead
 * (for inspecting inner tensors: the doctor, tests).
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
    RG_QOP_CLAMP = 7,
    RG_QOP_CONCAT = 8,   /* along channels, each input rescaled to the output's parameters */
    /* Not produced by the float lowering yet (ShuffleNet, squeeze-excitation,
     * MobileNetV3 blocks); models holding them are built directly and run
     * by rg_qmodel_run, rg_qmodel_run_ref and the .rgm runtime. */
    RG_QOP_SPLIT = 9,    /* channels [ch_begin, ch_begin + out c) of the input; same parameters */
    RG_QOP_SHUFFLE = 10, /* channel shuffle with `groups`; same parameters */
    RG_QOP_MUL = 11,     /* in[0] [h,w,c] times in[1] [h,w,c] or [1,1,c] (broadcast), rescaled (mul) */
    RG_QOP_LUT = 12      /* y = lut[x + 128]: lut_fn (hswish, sigmoid) tabulated for in/out parameters */
} rg_qop_kind;

#define RG_QOP_N_KINDS 13

/* Name of an op kind ("conv", "depthwise", ...), for reports. */
const char *rg_qop_kind_name(rg_qop_kind kind);

typedef struct {
    int32_t h, w, c;     /* per image, NHWC */
    rg_qparams q;
    int32_t value;       /* the float graph's value it stands for */
    size_t offset;       /* per-image byte offset in the arena (times the batch) */
    size_t foffset;      /* per-image float offset in a float arena (rg_qmodel_run_ref) */
} rg_qtensor;

typedef struct {
    rg_qop_kind kind;
    char name[RG_NAME_MAX];     /* the float node's name */
    int32_t in[RG_MAX_INPUTS], out;  /* tensor ids; in[1] is -1 except for add, mul and concat */
    int32_t n_in;               /* inputs used (2 for add and mul, 2..4 for concat, 1 otherwise) */
    /* conv, depthwise, fc: geometry, int8 weights (OHWI / [c,kh,kw] / [out,in]),
     * int32 bias, requantization per output channel, output clamp */
    int32_t k_h, k_w, stride, pad;
    int32_t out_c;
    int8_t *weights;
    int32_t *bias;
    float *w_scales;            /* [out_c] (per tensor: all equal) */
    int32_t *multipliers, *shifts;
    float *scales;              /* [out_c] fp32 requantization (the model's requant_fp32), else NULL */
    int32_t act_min, act_max;   /* conv, fc, clamp, pools */
    rg_q_add_params add;
    rg_q_gap_params gap;        /* batch set at run time */
    /* concat: input i is requantized to the output's parameters with
     * multiplier s_i / s_out (cat_multipliers[i], cat_shifts[i]) */
    int32_t cat_multipliers[RG_MAX_INPUTS], cat_shifts[RG_MAX_INPUTS];
    int32_t ch_begin;           /* split: first input channel */
    int32_t groups;             /* shuffle */
    rg_q_mul_params mul;        /* mul (rg_qmodel_requantize_op fills it) */
    rg_q_lut_fn lut_fn;         /* lut: the function tabulated */
    int8_t lut[256];            /* lut: the table (rg_qmodel_requantize_op builds it) */
    /* The float version of the op (rg_qmodel_run_ref): folded, equalized
     * weights (same layout as weights) and corrected bias [out_c]; the float
     * output clamp [f_lo, f_hi] (-inf/inf when none); after equalization of
     * a ReLU6 layer, the per-channel upper clamp clip[out_c] (float) and
     * act_max_c[out_c] (int8, applied after the per-tensor clamp); NULL
     * otherwise. */
    float *fw, *fb;
    float f_lo, f_hi;
    float *clip;
    int32_t *act_max_c;
} rg_qop;

typedef struct {
    rg_qtensor *tensors;
    int32_t n_tensors;
    rg_qop *ops;
    int32_t n_ops;
    int32_t input, output;      /* tensor ids */
    size_t image_bytes;         /* arena bytes per image (as planned) */
    size_t tensor_bytes;        /* sum of all tensors' bytes per image (unplanned) */
    size_t image_floats;        /* float arena per image for rg_qmodel_run_ref */
    int per_channel;            /* weights quantized per output channel */
    int requant_fp32;           /* conv, depthwise, fc and add requantize with float scales (rg_qmodel_use_fp32) */
} rg_qmodel;

typedef struct {
    rg_obs_config observer;     /* activations (default: min/max) */
    int per_channel;            /* weights: 1 per output channel (default), 0 per tensor */
    int32_t batch;              /* calibration batch (default 32) */
    int equalize;               /* cross-layer equalization before calibration (default 0) */
    int32_t equalize_iters;     /* sweeps over the layer pairs (default 8) */
    int bias_correct;           /* empirical bias correction on the calibration images (default 0) */
    int adaround;               /* learned weight rounding (regain/adaround.h defaults) (default 0) */
    int all_tensors;            /* arena: one slot per tensor instead of liveness (default 0) */
    /* Progress (optional): called after each calibration batch with the
     * stage ("calibrate", "bias-correct"), images done and total. */
    void (*progress)(void *user, const char *stage, int32_t done, int32_t total);
    void *progress_user;
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

/* Lays the int8 arena out again: all_tensors 1 gives each tensor its own
 * slot (every tensor readable after a run); 0 plans by liveness, greedy by
 * size: tensors sorted by size, largest first, each placed at the lowest
 * offset free during its lifetime (from the op that writes it to the last
 * op that reads it; the input from the start, the output to the end).
 * Sets image_bytes. */
void rg_qmodel_plan_arena(rg_qmodel *m, int all_tensors);

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

/* ---- the float version of the lowered model ------------------------------ */

/* Floats of a float arena for batch images: one slot per tensor. */
size_t rg_qmodel_float_arena_floats(const rg_qmodel *m, int32_t batch);
/* Tensor t of the last rg_qmodel_run_ref in a float arena. */
float *rg_qmodel_ftensor(const rg_qmodel *m, float *farena, int32_t batch, int32_t t);

/* Runs the lowered model in float (reference loops, the ops' float weights
 * fw/fb, float clamps, per-channel clips): the float network the int8 model
 * approximates, equal to the graph it came from to float rounding. in: batch
 * images; every tensor is left in farena. */
rg_status rg_qmodel_run_ref(const rg_qmodel *m, float *farena, const float *in, int32_t batch, rg_error *err);

/* One op of the float model on batch images: reads its inputs from farena,
 * writes its output there. w, when not NULL, replaces the op's float weights
 * (bias correction runs an op with dequantized weights); raw 1 skips the
 * output clamps (the pre-activation). */
rg_status rg_qmodel_run_ref_op(const rg_qmodel *m, int32_t op, float *farena, int32_t batch, const float *w,
                               int raw, rg_error *err);

/* Derives the op's int8 parameters from its float weights and the tensors'
 * parameters: weights (per channel or per tensor as m->per_channel), bias,
 * multipliers, clamps, the mul rescale, the lookup table (rg_quant_lower calls it for every op; call it again
 * after changing fw/fb or a tensor's parameters). */
rg_status rg_qmodel_requantize_op(rg_qmodel *m, int32_t op, rg_error *err);

/* Switches m's conv, depthwise and fc layers to fp32 requantization
 * (regain/quant.h rg_q_requant_fp32): each gets scales[c] = s_in * s_w[c] /
 * s_out, computed in double and rounded to float, the real multiplier its
 * integer multiplier approximates; each add gets in1_scale and in2_scale
 * (regain/quant_kernels.h rg_q_add_params). The multipliers stay (the .rgm
 * file keeps both). Works on any lowered model, PTQ or QAT; later
 * rg_qmodel_requantize_op calls keep the scales up to date. The default
 * (a model never switched) is the fixed-point rule of TFLite's reference
 * kernels and CMSIS-NN; fp32 is XNNPACK's, ONNX Runtime's and oneDNN's, and
 * about 20 % faster over mbv2-tiny on x86 (docs/quantization.md compares the two). */
rg_status rg_qmodel_use_fp32(rg_qmodel *m, rg_error *err);

/* The weights op would hold quantized then dequantized (same layout as fw),
 * per channel or per tensor as m->per_channel. out: as many floats as fw. */
rg_status rg_qmodel_dequantized_weights(const rg_qmodel *m, int32_t op, float *out, rg_error *err);

/* Floats in op's weights (0 for ops without weights). */
size_t rg_qmodel_weight_count(const rg_qmodel *m, int32_t op);

/* ---- files --------------------------------------------------------------- */


void rg_qmodel_free(rg_qmodel *m);

#endif
