/* regain — quantization-aware training (QAT).
 *
 * rg_qat_prepare turns a finished float graph into a fake-quantized one, in
 * place, at exactly the quantization points of the int8 model
 * (regain/quant_model.h):
 *
 *   - activations: an RG_OP_FAKE_QUANT node (asymmetric int8 per tensor)
 *     after the input, after every convolution chain conv [+ bn]
 *     [+ relu/relu6], after add, global average pool and linear; average
 *     pools and standalone relu/relu6 get a fake-quant node TIED to their
 *     input's parameters (the int8 model keeps the input's parameters
 *     there); max pool and dropout need none (the max of grid values is on
 *     the grid; dropout is the identity in inference);
 *   - weights of convolutions and linear layers: symmetric per output
 *     channel (or per tensor), [-127, 127] with 8 bits, [-7, 7] with 4
 *     (W4A8), fake-quantized on the parameter block itself around each
 *     step (rg_qat_begin / rg_qat_end): begin saves the float ("master")
 *     weights and writes their fake-quantized copy, forward and backward
 *     run on it, end restores the master weights and passes the gradient
 *     straight through (zero where a weight was clipped).
 *
 * Batch-norm folding during QAT (Jacob et al. 2018; Krishnamoorthi 2018,
 * section 3.2), in PyTorch's ConvBn form: a convolution followed by a batch
 * norm gets the weights
 *
 *   W'' = fq(W * f) / f,    f[c] = gamma[c] / sqrt(running_var[c] + eps)
 *
 * so that conv(x, W'') followed by the batch norm is conv(x, fq(W f))
 * rescaled: early in training the batch norm normalizes with batch
 * statistics (it sees the quantized weights' output); from epoch
 * `freeze_bn` on it is frozen (running statistics, not updated), and
 * training then computes exactly conv(x, fq(W f)) + folded bias, the folded
 * weights inference uses.
 *
 * Activation ranges come from moving-average min/max observers, frozen from
 * epoch `freeze_observers` on. With LSQ (Esser et al. 2020) every
 * activation point and every weight tensor also has a learned scale
 * parameter ("<node>.qscale", per channel for per-channel weights) in the
 * graph's parameter block, so the optimizer trains it; while the observers
 * run it follows them, and it is learned once they freeze (the zero point
 * stays the observers' last).
 *
 * Everything QAT needs to resume lives in the graph: ranges in buffers
 * ("<fq node>.qrange": lo, hi, seen, zero point), LSQ scales in parameters,
 * frozen flags derived from the epoch. A checkpoint of the graph therefore
 * carries the quantization state and a resumed run is bit-identical.
 *
 *     rg_qat_config qc = rg_qat_default();
 *     qc.lsq = 1;
 *     rg_qat *q;
 *     rg_qat_prepare(g, &qc, &q, &err);      // before planning
 *     rg_graph_plan(g, batch, RG_PLAN_TRAIN, &err);
 *     for (epoch ...) {
 *         rg_qat_set_epoch(q, epoch);
 *         for (batch ...) {
 *             rg_qat_begin(q);  forward; loss; backward;  rg_qat_end(q, 1);
 *             optimizer step;
 *         }
 *         rg_qat_begin(q);  evaluate;  rg_qat_end(q, 0);
 *     }
 *     rg_qat_lower(q, g, calib, n, &model, &err);   // the int8 model, same parameters
 */
#ifndef REGAIN_QAT_H
#define REGAIN_QAT_H

#include <stdint.h>

#include "regain/graph.h"
#include "regain/quant.h"
#include "regain/quant_model.h"
#include "regain/status.h"

typedef struct {
    int32_t weight_bits;       /* 8 ([-127, 127]) or 4 ([-7, 7], W4A8); activations are always 8 */
    int per_tensor;            /* 1: one weight scale per tensor; 0: per output channel (default) */
    int lsq;                   /* 1: learned step sizes */
    int32_t freeze_bn;         /* epoch (0-based) from which batch norms use running statistics; -1 never */
    int32_t freeze_observers;  /* epoch from which activation ranges stop moving; -1 never */
    float momentum;            /* observers' averaging constant (default 0.01) */
} rg_qat_config;

typedef struct rg_qat rg_qat;

/* 8-bit per-channel weights, no LSQ, freeze_bn 2, freeze_observers 3, momentum 0.01. */
rg_qat_config rg_qat_default(void);

/* Checks a configuration. Errors (RG_ERR_ARG) name the field (qat_weight_bits,
 * qat_freeze_bn, qat_freeze_observers, qat_momentum). */
rg_status rg_qat_check_config(const rg_qat_config *cfg, rg_error *err);

/* Inserts the quantization points into g (finished, not yet planned; a plan
 * must be made afterwards), adds their buffers (and LSQ parameters,
 * initialized from the current weights) and returns the controller. g's
 * existing parameters and buffers keep their values. Errors:
 * RG_ERR_UNSUPPORTED naming the node for ops with no int8 lowering
 * (hswish, sigmoid, mul, concat, slice, shuffle, a batch norm not after a
 * convolution, grouped non-depthwise convolution), RG_ERR_ARG for a bad
 * config or a graph already prepared. */
rg_status rg_qat_prepare(rg_graph *g, const rg_qat_config *cfg, rg_qat **out, rg_error *err);
void rg_qat_free(rg_qat *q);

/* Freezes batch norms and observers according to the epoch (0-based). */
void rg_qat_set_epoch(rg_qat *q, int32_t epoch);

/* Writes the fake-quantized (and, for convolutions with a batch norm,
 * BN-folding) weights into the parameter block, saving the master weights. */
void rg_qat_begin(rg_qat *q);
/* Restores the master weights; with grads set, turns the gradients of the
 * fake-quantized weights into the master weights' (straight-through, zero
 * where clipped) and adds the LSQ weight-scale gradients. */
void rg_qat_end(rg_qat *q, int grads);

/* The quantization parameters fake-quant node `node` of g uses now. Returns
 * 0 when it has none yet (no range observed: the node passes values
 * through). */
int rg_qat_node_params(const rg_graph *g, int32_t node, rg_qparams *p);

/* The weight scales of weight layer `node` (a convolution or linear node of
 * g) as rg_qat_begin computes them now: out_c floats (per tensor: all
 * equal). Errors: not a quantized weight layer. */
rg_status rg_qat_weight_scales(const rg_qat *q, int32_t node, float *scales, rg_error *err);

/* The configuration q was prepared with. */
const rg_qat_config *rg_qat_config_of(const rg_qat *q);

/* The largest weight integer (127 or 7). */
int32_t rg_qat_weight_qmax(const rg_qat *q);

/* Lowers the fake-quantized graph to an int8 model holding exactly the
 * parameters training used: activation scales and zero points of the
 * fake-quant nodes, the weight scales of rg_qat_weight_scales, weights
 * folded with the batch norms' running statistics (as the frozen training
 * graph computes them). calib (n_calib >= 1 images) only drives the
 * prototype lowering's structure pass; its ranges are replaced. Errors as
 * rg_quant_lower, plus RG_ERR_ARG when a quantization point has no range
 * yet (never trained). g is left as it is (a copy without its fake-quant
 * nodes is lowered), with its master weights in place. The model's
 * tensors' `value` fields name values of g: the fake-quant nodes' outputs
 * (a max pool's own output), so the two can be compared point by point. */
rg_status rg_qat_lower(rg_qat *q, rg_graph *g, const float *calib, int32_t n_calib, rg_qmodel **out,
                       rg_error *err);

/* The fake-quant node that quantizes value v of g's float structure: the
 * node reading v_out, where v_out is the output of the node named `name` in
 * g. -1 if none. */
int32_t rg_qat_fq_after(const rg_graph *g, const char *name);

#endif
