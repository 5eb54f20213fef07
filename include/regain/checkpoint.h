/* regain — checkpoints: a model and its training state in one safetensors file.
 *
 * Tensors: every parameter and BN buffer under its graph name ("stem.weight",
 * "stem.bn.running_mean"); optimizer moments as "optim.m.<name>" and
 * "optim.v.<name>"; the weight average as "ema.<name>". Metadata (strings):
 * "regain.format" = "checkpoint-1", "regain.spec" (the model spec text), and
 * whatever the caller adds (the trainer stores its configuration, epoch, step
 * and results). Any safetensors reader can open the file; regain rebuilds the
 * graph from the spec it holds. Files are written atomically.
 */
#ifndef REGAIN_CHECKPOINT_H
#define REGAIN_CHECKPOINT_H

#include "regain/graph.h"
#include "regain/safetensors.h"
#include "regain/train.h"

/* Writes g's parameters and buffers, and when not NULL the optimizer's moments
 * and the EMA weights, plus the caller's metadata. */
rg_status rg_checkpoint_save(const char *path, const rg_graph *g, const rg_optim *opt, const rg_ema *ema,
                             const rg_st_meta *meta, int32_t n_meta, rg_error *err);

/* The same, plus n_extra caller tensors (F32, names not clashing with the
 * graph's: e.g. the trainer's per-sample curriculum state "sample.loss"). */
rg_status rg_checkpoint_save_with(const char *path, const rg_graph *g, const rg_optim *opt, const rg_ema *ema,
                                  const rg_st_tensor *extra, int32_t n_extra, const rg_st_meta *meta, int32_t n_meta,
                                  rg_error *err);

/* Opens a checkpoint, rebuilds its graph from "regain.spec" and loads the
 * weights: the EMA weights when prefer_ema is set and the file has them,
 * otherwise the raw ones. *file (optional) receives the open file for reading
 * metadata; the caller frees it with rg_st_free. Every missing or mis-shaped
 * tensor is an error naming the file and the tensor. */
rg_status rg_checkpoint_load(const char *path, int prefer_ema, rg_graph **g, rg_st_file **file, rg_error *err);

/* Copies the weights and BN buffers of g (or, with ema set, their averaged
 * copies "ema.<name>") from an open checkpoint into g. */
rg_status rg_checkpoint_load_weights(const rg_st_file *f, rg_graph *g, int ema, rg_error *err);

/* Restores optimizer moments (and step count) and EMA weights from an open
 * checkpoint into already initialized opt / ema (either may be NULL). */
rg_status rg_checkpoint_load_state(const rg_st_file *f, const char *path, const rg_graph *g, rg_optim *opt,
                                   rg_ema *ema, rg_error *err);

#endif
