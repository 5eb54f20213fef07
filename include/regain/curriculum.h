/* regain — curriculum learning and loss-based sample selection.
 *
 * Which training samples an epoch uses. Three pieces, each usable alone, and
 * a sampler that strings them together for the trainer (docs/curriculum.md):
 *
 *   difficulty scores  one float per training sample, higher = harder: a
 *                      teacher checkpoint's per-sample loss or 1 - confidence,
 *                      the model's own recorded loss (self-paced), or a file;
 *   pacing             how many samples epoch e uses: a growing fraction from
 *                      `start` at epoch 1 to all data at epoch `full_epoch`;
 *   order              which ones: the easiest (curriculum), the hardest
 *                      (anti-curriculum), or a fixed random order (the
 *                      control of Wu, Dyer and Neyshabur, ICLR 2021).
 *
 * Loss-based selection (the small-loss trick of co-teaching, one network):
 * after `warmup` epochs each epoch keeps the keep-fraction of its samples with
 * the smallest loss recorded when they were last trained on, the fraction
 * ramping from 1 to `keep` over `ramp` epochs.
 *
 *     rg_pacing p = {.kind = RG_PACE_LINEAR, .start = 0.2f, .full_epoch = 5};
 *     int32_t k = rg_pacing_count(&p, epoch, n);         // samples this epoch
 *     rg_curriculum_rank(scores, n, RG_ORDER_EASY, seed, rank, &err);
 *     rg_curriculum_pick(rank, k, subset);               // ascending indices
 *     rg_loader_start_epoch_subset(ld, epoch, subset, k, &err);
 *
 * Epochs are 0-based in this API; full_epoch is 1-based (as metrics.csv
 * numbers epochs). All orders are deterministic: ties are broken by a fixed
 * random order keyed by (seed, 0x4355, 0), never by memory layout.
 */
#ifndef REGAIN_CURRICULUM_H
#define REGAIN_CURRICULUM_H

#include <stdint.h>

#include "regain/data.h"
#include "regain/graph.h"
#include "regain/safetensors.h"
#include "regain/status.h"
#include "regain/trainer.h"

/* ---- pacing ----------------------------------------------------------------------- */

typedef enum { RG_PACE_LINEAR = 0, RG_PACE_ROOT = 1, RG_PACE_GEOMETRIC = 2, RG_PACE_STEP = 3 } rg_pacing_kind;

typedef struct {
    rg_pacing_kind kind;
    float start;            /* fraction of the data in epoch 1, in (0, 1] */
    int32_t full_epoch;     /* 1-based epoch from which all data is used, >= 1 */
    int32_t steps;          /* step pacing: number of equal increments (>= 1) */
} rg_pacing;

/* Fraction of the data used in 0-based epoch e, with t = min(1, e / (F - 1))
 * (t = 1 when F = 1), s = start:
 *   linear     s + (1 - s) t
 *   root       sqrt(s^2 + (1 - s^2) t)
 *   geometric  s^(1 - t)                    (grows by a constant factor per epoch)
 *   step       s + (1 - s) floor(t * steps) / steps
 * Always in [s, 1], non-decreasing in e, and 1 from epoch F (1-based) on.
 * s is taken as the 6-digit decimal the float stands for (0.2f is 0.2). */
double rg_pacing_fraction(const rg_pacing *p, int32_t epoch);
/* Samples used in epoch e out of n: ceil(fraction * n) clamped to [1, n]
 * (0 when n <= 0). */
int32_t rg_pacing_count(const rg_pacing *p, int32_t epoch, int32_t n);
/* ceil(fraction * n) clamped to [1, n] (0 when n <= 0), ignoring rounding
 * noise below 1e-7: the count both pacing and selection use. */
int32_t rg_selection_count(double fraction, int32_t n);
/* Checks start, full_epoch, steps and kind; errors name the key (pacing_*). */
rg_status rg_pacing_check(const rg_pacing *p, rg_error *err);

/* Keep fraction of loss-based selection in 0-based epoch e: 1 before warmup
 * epochs, then 1 - (1 - keep) * min(1, (e - warmup + 1) / ramp) (ramp 0: at
 * once), as co-teaching's R(T) = 1 - tau min(T / T_k, 1) with tau = 1 - keep. */
double rg_select_keep_fraction(float keep, int32_t warmup, int32_t ramp, int32_t epoch);

/* ---- order -------------------------------------------------------------------------- */

typedef enum { RG_ORDER_EASY = 0, RG_ORDER_HARD = 1, RG_ORDER_RANDOM = 2 } rg_curriculum_order;

/* rank[0..n) = a permutation of 0..n-1: by increasing score (easy), by
 * decreasing score (hard) or the fixed random order keyed by (seed, 0x4355,
 * 0) (random; scores may then be NULL). Equal scores keep the random order.
 * NaN scores count as +infinity. RG_ERR_NOMEM or RG_ERR_ARG (n < 0, NULL
 * scores for easy/hard). */
rg_status rg_curriculum_rank(const float *scores, int32_t n, rg_curriculum_order order, uint64_t seed, int32_t *rank,
                             rg_error *err);

/* subset[0..k) = rank[0..k) sorted ascending: the samples an epoch uses, in
 * the canonical order the loader shuffles from. */
void rg_curriculum_pick(const int32_t *rank, int32_t k, int32_t *subset);

/* ---- difficulty scores ----------------------------------------------------------------- */

typedef enum { RG_SCORE_LOSS = 0, RG_SCORE_CONFIDENCE = 1 } rg_score_kind;

/* Reads n scores from a text file: one score per line (line i+1 is sample i)
 * or "index score" per line (every index in [0, n) exactly once, any order).
 * Blank lines and lines starting with '#' are skipped. Errors (RG_ERR_FORMAT)
 * read "FILE:LINE: problem": not a number, not finite, index out of range or
 * given twice, the two forms mixed, too few or too many scores; RG_ERR_IO
 * when the file cannot be read. */
rg_status rg_curriculum_read_scores(const char *path, int32_t n, float *scores, rg_error *err);

/* Scores every sample of ds with the model of the checkpoint at path (its EMA
 * weights when it has them), in eval mode: the cross-entropy of the label
 * (loss) or 1 - softmax probability of the label (confidence). Inputs are
 * normalized with the checkpoint's regain.normalize metadata when present,
 * otherwise (mean, std), in batches of `batch`. Errors name the checkpoint: not a checkpoint, input
 * shape or class count not matching ds. */
rg_status rg_curriculum_teacher_scores(const char *path, const rg_dataset *ds, rg_score_kind kind, float mean,
                                       float std, int32_t batch, float *scores, rg_error *err);

/* ---- the sampler: what the trainer uses ------------------------------------------------ */

typedef struct rg_sampler rg_sampler;

/* Batch of the sampler's teacher pass (a forward pass is bit-identical across
 * thread counts, not across batch sizes). */
#define RG_SAMPLER_TEACHER_BATCH 256

/* Checks the curriculum, label-noise and selection keys of c against each
 * other (called by rg_train_config_validate); errors name the key. */
rg_status rg_sampler_check_config(const rg_train_config *c, rg_error *err);

/* Sets up sampling for the training set *train (whose labels it corrupts in
 * place when label_noise > 0: deterministic from c->seed, so a resumed run
 * gets the same labels). Difficulty scores come from the teacher or file
 * (fresh run) or from the checkpoint `resume` (a resumed run: the sampler's
 * tensors saved by rg_sampler_tensors), so a resume never reads the teacher
 * or the file again. *out is NULL when c needs no sampler (no noise, no
 * curriculum, no selection). train must outlive the sampler. */
rg_status rg_sampler_create(const rg_train_config *c, rg_dataset *train, const rg_st_file *resume, rg_sampler **out,
                            rg_error *err);

/* The samples of 0-based epoch e: *subset (ascending dataset indices, owned by
 * the sampler, valid until the next call) and *m; *subset is NULL when the
 * epoch uses every sample. */
rg_status rg_sampler_epoch(rg_sampler *s, int32_t epoch, const int32_t **subset, int32_t *m, rg_error *err);

/* 1 when the sampler needs each trained sample's loss (self-paced curriculum
 * or selection); then call rg_sampler_record after every training step. */
int rg_sampler_wants_losses(const rg_sampler *s);
void rg_sampler_record(rg_sampler *s, const int32_t *indices, const float *loss, int32_t count);
/* 1 with label correction (select_relabel > 0): then call
 * rg_sampler_record_logits after every training step instead, which records
 * each sample's loss against its label as given (the selection's ranking),
 * its predicted class and that class's probability. An epoch then trains the
 * samples selection keeps on their given labels, and those it drops whose
 * recorded probability is at least select_relabel on their predicted class
 * (the training set's labels say which: rg_sampler_epoch writes them). */
int rg_sampler_wants_logits(const rg_sampler *s);
void rg_sampler_record_logits(rg_sampler *s, const int32_t *indices, const float *logits, int32_t count,
                              int32_t classes);

/* With select_refresh: the samples the last epoch did not train on (ascending,
 * owned by the sampler, valid until the next rg_sampler_epoch), whose
 * recorded predictions are stale; returns their count (0 without refresh).
 * The trainer predicts them in eval mode after the epoch and hands the
 * logits to rg_sampler_record_predictions, which updates the predicted
 * class and its probability only (the selection's losses stay those of
 * training). */
int32_t rg_sampler_unseen(rg_sampler *s, const int32_t **indices);
void rg_sampler_record_predictions(rg_sampler *s, const int32_t *indices, const float *logits, int32_t count,
                                   int32_t classes);

/* Samples used by the last rg_sampler_epoch, and the fraction of them whose
 * label, as trained on, differs from the true one (0 without noise). */
void rg_sampler_stats(const rg_sampler *s, int64_t *samples, double *noisy_fraction);

/* The state a resumed run needs ("sample.score", "sample.loss", and with
 * label correction "sample.pred", "sample.conf"), as tensors
 * to add to the training checkpoint: writes at most max (6 is enough) into
 * t, returns the count. With in_epoch (a stop in the middle of an epoch)
 * also the current epoch's choice: "sample.subset" (I32) and with label
 * correction "sample.label" (U8), which rg_sampler_create restores so that
 * the resumed run finishes that epoch on the same samples and labels.
 * Pointers stay valid until the next rg_sampler_record, rg_sampler_epoch
 * or free. */
int32_t rg_sampler_tensors(const rg_sampler *s, rg_st_tensor *t, int32_t max, int in_epoch);

/* 1 when rg_sampler_create restored a stopped epoch's choice, which the
 * next rg_sampler_epoch returns as it is. */
int rg_sampler_resumes_epoch(const rg_sampler *s);

void rg_sampler_free(rg_sampler *s);

#endif
