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

/* A further network saved beside the model under a name prefix, with its
 * optimizer's moments: the distiller's hint adapters, which training needs
 * to resume but a deployed model does not ("distill.hint0.adapter.weight",
 * "distill.hint0.optim.m.adapter.weight"). */
typedef struct {
    const char *prefix;
    const rg_graph *g;
    rg_optim *opt;           /* NULL: weights only */
} rg_checkpoint_part;

/* What a training-state checkpoint holds besides the model: further
 * networks (parts), and caller tensors (F32, names not clashing with the
 * graph's: e.g. the trainer's per-sample curriculum state "sample.loss"). */
typedef struct {
    const rg_checkpoint_part *parts;
    int32_t n_parts;
    const rg_st_tensor *tensors;
    int32_t n_tensors;
} rg_checkpoint_extras;

/* rg_checkpoint_save plus the extras (NULL: none). */
rg_status rg_checkpoint_save_with(const char *path, const rg_graph *g, const rg_optim *opt, const rg_ema *ema,
                                  const rg_checkpoint_extras *extras, const rg_st_meta *meta, int32_t n_meta,
                                  rg_error *err);
/* Restores one part's weights and optimizer state (steps: the model's) from
 * an open checkpoint; a missing or mis-shaped tensor is an error naming it. */
rg_status rg_checkpoint_load_part(const rg_st_file *f, const rg_checkpoint_part *part, rg_error *err);

/* The input normalization the trainer recorded ("regain.normalize" =
 * "mean,std"); the trainer's defaults when the file has none or it is not
 * two finite numbers with std > 0. */
void rg_checkpoint_normalization(const rg_st_file *f, float *mean, float *std);

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
