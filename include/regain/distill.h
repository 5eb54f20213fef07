/* regain — knowledge distillation: a frozen teacher teaches the student.
 *
 * Two layers. The losses are plain functions over arrays (shapes beside each
 * one); each returns its value and adds weight * dL/d(input) into a gradient
 * the caller owns, so several losses combine by calling them in turn. The
 * distiller strings them together for the trainer: it loads the teachers
 * (one checkpoint, or several averaged as an ensemble), taps the named
 * layers of both networks, owns the hint adapters and their optimizer, and
 * turns one student forward pass into the combined loss and gradients.
 *
 *     rg_distill_config dc;                      // from the trainer's keys
 *     rg_distiller *d;
 *     rg_distiller_create(&dc, student, batch, classes, &optim_cfg, seed, &d, &err);  // before planning
 *     rg_graph_plan(student, batch, RG_PLAN_TRAIN, &err);
 *     for each batch x, y:
 *         rg_graph_forward(student, &ctx);
 *         ce = rg_xent_forward_backward(logits, y, n, classes, eps, dlogits, NULL);
 *         rg_distiller_loss(d, x, y, indices, n, epoch, logits, dlogits, ce, &parts);
 *         ... copy dlogits into the output gradient, rg_graph_backward ...
 *         rg_distiller_update(d, lr);            // the adapters' step
 *
 * The formulas, and why each is scaled the way it is, are in
 * docs/distillation.md.
 */
#ifndef REGAIN_DISTILL_H
#define REGAIN_DISTILL_H

#include <stdint.h>

#include "regain/data.h"
#include "regain/graph.h"
#include "regain/safetensors.h"
#include "regain/train.h"

/* ---- losses --------------------------------------------------------------------------- */

/* Class probabilities at temperature T: p = softmax(z / T), n x classes. */
void rg_softmax_temperature(const float *logits, int32_t n, int32_t classes, float T, float *probs);

/* Logit distillation (Hinton et al. 2015), in its original cross-entropy
 * form: L = T^2 * mean_i sum_c -pt_ic log softmax(zs_i / T)_c, with teacher
 * probabilities pt already at temperature T (n x classes, rows summing to
 * 1). The KL divergence KL(pt || ps) differs from it by the teacher's
 * entropy only, a constant for the student, so the gradients are the same.
 * Adds weight * dL/dzs into dlogits when not NULL. Returns L. */
float rg_kd_loss(const float *student_logits, const float *teacher_probs, int32_t n, int32_t classes, float T,
                 float weight, float *dlogits);

/* Decoupled distillation (DKD, Zhao et al. 2022) with the hard labels y:
 * L = T^2 * mean_i (alpha * TCKD_i + beta * NCKD_i), where TCKD is the KL
 * divergence between the teacher's and the student's binary (target,
 * rest) probabilities and NCKD the KL divergence between their
 * distributions over the non-target classes, all at temperature T. A sample
 * whose teacher puts all its mass on the target has no NCKD term. Adds
 * weight * dL/dzs into dlogits when not NULL; *tckd and *nckd (optional)
 * receive T^2 * mean TCKD and T^2 * mean NCKD. Returns L. */
float rg_dkd_loss(const float *student_logits, const float *teacher_probs, const int32_t *labels, int32_t n,
                  int32_t classes, float T, float alpha, float beta, float weight, float *dlogits, float *tckd,
                  float *nckd);

/* Mean squared error L = mean_k (a_k - b_k)^2 over count elements (feature
 * hints); adds weight * dL/da into da when not NULL. Returns L. */
float rg_mse_loss(const float *a, const float *b, size_t count, float weight, float *da);

/* Attention transfer (Zagoruyko and Komodakis 2017) between a student
 * feature map fs (n x hs x ws x cs, NHWC) and a teacher map ft (n x ht x wt
 * x ct). The attention map of a feature map is a(i, y, x) = mean_c f^2; the
 * larger of the two maps is average-pooled to the smaller size (the sizes
 * must divide), then each image's map is scaled to unit L2 norm, giving q.
 * L = mean over images and positions of (qs - qt)^2 (the paper's beta/2 is
 * the caller's weight). Adds weight * dL/dfs into dfs when not NULL.
 * scratch holds rg_at_scratch_floats(...) floats. Returns L. */
size_t rg_at_scratch_floats(rg_shape student, rg_shape teacher);
float rg_at_loss(const float *fs, rg_shape ss, const float *ft, rg_shape ts, float weight, float *dfs,
                 float *scratch);

/* ---- the distiller -------------------------------------------------------------------- */

#define RG_DISTILL_MAX_TEACHERS 3
#define RG_DISTILL_MAX_PAIRS 4

typedef struct {
    char teachers[RG_DISTILL_MAX_TEACHERS][512]; /* checkpoint paths, "" = unused */
    float T;                    /* temperature of KD and DKD */
    float kd_alpha;             /* KD weight; the hard-label loss gets 1 - kd_alpha */
    float dkd_alpha, dkd_beta;  /* DKD term weights (0, 0 = off) */
    int32_t dkd_warmup;         /* epochs over which DKD ramps in linearly (0 = none) */
    char hints[256];            /* "student_layer:teacher_layer[,...]" (FitNets) */
    float hint_weight;
    char at[256];               /* "student_layer:teacher_layer[,...]" (attention transfer) */
    float at_weight;            /* beta of the paper; the loss is beta/2 * sum over pairs */
    float mean, std;            /* the student's input normalization, which every teacher
                                   must share (std 0 = not checked) */
} rg_distill_config;

/* Whether c asks for any distillation (a teacher is named). */
int rg_distill_enabled(const rg_distill_config *c);
/* Checks c alone: teachers named when a loss is on and the other way round,
 * weights in range, pair lists well formed ("s:t" separated by commas).
 * Errors name the key. */
rg_status rg_distill_validate(const rg_distill_config *c, rg_error *err);

typedef struct rg_distiller rg_distiller;

/* Loads the teachers (eval mode, frozen: weights averaged by EMA when the
 * checkpoint has them), checks their input and class counts against the
 * student, resolves the layer names of hints and attention pairs in both
 * networks (rg_graph_find_layer) and taps them, and builds the hint
 * adapters: a learned 1x1 convolution and batch norm from the student
 * layer's channels to the teacher's, after average pooling when the student
 * layer is larger. Call before the student is planned. The adapters train with
 * their own optimizer of configuration oc and are initialized from seed.
 * errors name the key, the layer and the file. */
rg_status rg_distiller_create(const rg_distill_config *c, rg_graph *student, int32_t batch, int32_t classes,
                              const rg_optim_config *oc, uint64_t seed, rg_distiller **out, rg_error *err);
void rg_distiller_free(rg_distiller *d);

/* The teachers' data checksums (their "regain.crc32"), comma-separated, in
 * buf: a resumed run checks that it is taught by the same files. */
const char *rg_distiller_teacher_sums(const rg_distiller *d, char *buf, size_t size);

/* Teacher logits for every image of ds, computed once in dataset order and
 * reused when the student sees unaugmented images (the trainer's choice):
 * the teacher's forward pass then leaves the training step. Only when no
 * hint or attention pair needs teacher features. */
rg_status rg_distiller_cache_logits(rg_distiller *d, const rg_dataset *ds, float mean, float std, rg_error *err);

/* Whether the teachers' outputs come from that cache. */
int rg_distiller_cached(const rg_distiller *d);

/* Top-1 of the teacher (ensemble) on ds, for the warning when it is not
 * better than the student. */
rg_status rg_distiller_teacher_top1(rg_distiller *d, const rg_dataset *ds, float mean, float std, double *top1,
                                    rg_error *err);

typedef struct {
    double total, ce, kd, dkd, hint, at; /* the weighted parts; total includes (1 - kd_alpha) * ce */
    double teacher_s;                    /* seconds in the teachers' forward passes */
} rg_distill_parts;

/* One training step's distillation. x: the student's input batch (n images,
 * as fed to the student); y: hard labels; indices: dataset indices of the
 * images (used with the logit cache; may be NULL otherwise); epoch: 0-based
 * (the DKD warm-up). The student has run forward on x; logits are its
 * outputs and dlogits holds the hard-label loss gradient of value ce.
 * Runs the teachers on x, scales dlogits by 1 - kd_alpha and adds the KD
 * and DKD gradients; computes hint and attention losses and registers their
 * gradients on the student's tapped layers (rg_graph_set_extra_grad), to be
 * added by the next rg_graph_backward. Fills parts. */
void rg_distiller_loss(rg_distiller *d, const float *x, const int32_t *y, const int32_t *indices, int32_t n,
                       int32_t epoch, const float *logits, float *dlogits, float ce, rg_distill_parts *parts);
/* After the student's backward pass: one optimizer step of the hint
 * adapters at learning rate lr. */
void rg_distiller_update(rg_distiller *d, float lr);

/* The adapters' weights and optimizer state, for a training-state
 * checkpoint: tensors under "distill.hint<k>." (deployable checkpoints leave
 * them out: adapters exist only for training). n_parts receives how many. */
int32_t rg_distiller_parts(const rg_distiller *d, rg_graph **graphs, rg_optim **optims, int32_t max);

#endif
