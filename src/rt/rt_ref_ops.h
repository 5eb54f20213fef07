/* The runtime's ops without a fast kernel: they run the integer reference
 * kernels (src/quant/ref_*.c) directly, so they compute the same bits as
 * rg_qmodel_run by construction. Internal to src/rt. */
#ifndef REGAIN_RT_REF_OPS_H
#define REGAIN_RT_REF_OPS_H

#include "regain/rt.h"

/* Runs op o (concat, split, shuffle, mul, lut) of a checked model m on
 * batch images: x[k] is input k (rg_rgm_op_n_in(o) of them), y the output,
 * each [batch, h, w, c]. Cannot fail: rg_rgm_check has validated every
 * parameter the kernels check. */
void rg_rt_ref_op(const rg_rgm *m, const rg_rgm_op *o, const int8_t *const *x, int8_t *y, int32_t batch);

/* The per-channel clamp of a conv / depthwise / fc with act_max_c, in place
 * on its output y (batch images); nothing when o->act_max_c is NULL. */
void rg_rt_clamp_channels(const rg_rgm *m, const rg_rgm_op *o, int8_t *y, int32_t batch);

#endif
