/* regain — the trainer: one call trains a model from a configuration.
 *
 * A configuration is a set of named keys (the same names on the command line,
 * as --key value, and in recipe files, as key = value). The trainer loads the
 * data, builds the model, trains with the loader prefetching in worker
 * threads, evaluates every epoch, and writes into the run directory:
 *
 *     last.safetensors   weights + optimizer + EMA + config, every epoch (resume from it)
 *     best.safetensors   the weights with the best selection accuracy so far
 *     metrics.csv        one line per epoch
 *     config.txt         the resolved configuration, key = value
 *
 * Every file is replaced atomically. A run killed at any moment resumes from
 * last.safetensors (rg_train_run with resume = 1) and ends with weights
 * bit-identical to an uninterrupted run: every random draw is keyed by
 * (seed, epoch, sample) or (seed, step), and every reduction is ordered.
 *
 * The library never prints: progress and epoch results go to hooks.
 */
#ifndef REGAIN_TRAINER_H
#define REGAIN_TRAINER_H

#include <stdint.h>

#include "regain/augment.h"
#include "regain/data.h"
#include "regain/distill.h"
#include "regain/graph.h"
#include "regain/mix.h"
#include "regain/qat.h"
#include "regain/train.h"

typedef struct {
    char model[256];        /* zoo name (zoo.h) or path to a model spec file */
    char data[512];         /* "fashion-mnist" or a directory of IDX files */
    char init[512];         /* checkpoint whose weights start the training (fine-tuning); "" = random */
    int32_t epochs, batch;
    char optim[16];         /* sgd | adamw */
    float lr, momentum, wd, beta1, beta2, adam_eps;
    int32_t nesterov;
    int32_t decay_all;      /* 1: weight decay on BN parameters and biases too */
    char schedule[16];      /* cosine | step | constant */
    float warmup_epochs, min_lr, gamma;
    int32_t step_epochs;    /* step schedule: gamma every step_epochs */
    float label_smoothing;
    float ema;              /* EMA decay, 0 = off */
    int32_t val_split;      /* images held out of the training set for selection */
    int32_t train_limit;    /* use only the first N training images (0 = all) */
    int32_t test_limit;     /* evaluate only the first N test images (0 = all) */
    int32_t crop_pad;       /* random crop with zero padding (0 = off) */
    int32_t hflip;          /* random horizontal flip */
    float mean, std;        /* input normalization */
    int64_t seed;
    /* distillation (distill.h, docs/distillation.md) */
    char teacher[512], teacher2[512], teacher3[512]; /* teacher checkpoints; several: an ensemble */
    float kd_alpha, kd_temperature;
    float dkd_alpha, dkd_beta;
    int32_t dkd_warmup;
    char hints[256];        /* "student_layer:teacher_layer,..." */
    float hint_weight;
    char at[256];           /* attention transfer pairs, same form */
    float at_weight;
    int32_t threads;        /* 0 = all cores; does not change results */
    int32_t workers;        /* loader threads; does not change results */
    /* label noise, curriculum and loss-based selection (curriculum.h, docs/curriculum.md) */
    float label_noise;          /* fraction of training labels corrupted, 0 = off */
    char label_noise_kind[16];  /* symmetric | asymmetric */
    char label_noise_map[256];  /* asymmetric: "FROM:TO,..."; "" = Fashion-MNIST pairs */
    char curriculum[16];        /* none | teacher | self | file */
    char curriculum_teacher[512];   /* checkpoint scoring the training set (curriculum = teacher) */
    char curriculum_scores[512];    /* scores file (curriculum = file) */
    char curriculum_score[16];  /* teacher score: loss | confidence */
    char curriculum_order[16];  /* easy | hard | random */
    char pacing[16];            /* linear | root | geometric | step */
    float pacing_start;         /* fraction of the data in epoch 1 */
    int32_t pacing_full_epoch;  /* 1-based epoch from which all data is in; 0 = ceil(epochs / 2) */
    int32_t pacing_steps;       /* step pacing: increments */
    float select_keep;          /* final keep fraction of small-loss selection; 1 = off */
    int32_t select_warmup;      /* epochs on all data before selecting */
    int32_t select_ramp_epochs; /* epochs over which the keep fraction falls from 1 to select_keep */
    int32_t select_per_class;   /* 1: keep the fraction of each class (by its label as given), not of all */
    float select_relabel;       /* label correction: a sample selection drops is trained on with the model's
                                   predicted class when that class's probability is at least this; 0 = off */
    int32_t select_refresh;     /* label correction: 1 = after each epoch, predict the samples it did not train on
                                   again (eval mode), so their correction uses the current model */
    /* augmentation beyond crop_pad/hflip (docs/augmentation.md) */
    char augment[256];      /* augmentation spec, e.g. "randaugment:n=2,m=9"; "" = none */
    float erasing;          /* random erasing probability (torchvision defaults otherwise); 0 = off */
    float mixup, cutmix;    /* Beta(alpha, alpha) of batch mixup / CutMix; 0 = off */
    /* quantization-aware training (regain/qat.h, docs/quantization.md section 13) */
    int32_t qat;                /* 1: fake-quantize the model (usually with init = a float checkpoint) */
    int32_t qat_weight_bits;    /* 8, or 4 (W4A8) */
    int32_t qat_per_tensor;     /* one weight scale per tensor instead of per output channel */
    int32_t qat_lsq;            /* learned step sizes */
    int32_t qat_freeze_bn;      /* epoch (0-based) from which batch norms use running statistics; -1 never */
    int32_t qat_freeze_observers; /* epoch from which activation ranges are frozen; -1 never */
    float qat_momentum;         /* the range observers' averaging constant */
    /* post-training quantization of `init` (kind = quantize runs; regain/ptq.h) */
    int32_t ptq_calib;          /* calibration images */
    char ptq_observer[16];      /* minmax | moving-average | percentile | mse | entropy */
    int32_t ptq_per_tensor, ptq_equalize, ptq_bias_correct, ptq_adaround;
    int32_t ptq_requant_fp32;   /* conv, depthwise, fc requantize with fp32 scales */
} rg_train_config;

/* The defaults (the benchmark recipe: SGD 0.1 Nesterov, wd 5e-4, cosine,
 * batch 128, crop 2 + flip, 15 epochs, mbv2-tiny on fashion-mnist). */
void rg_train_config_default(rg_train_config *c);
/* Sets one key from text; errors name the key and the expected type/range. */
rg_status rg_train_config_set(rg_train_config *c, const char *key, const char *value, rg_error *err);
/* Checks cross-key constraints (e.g. lr > 0, known optimizer). */
rg_status rg_train_config_validate(const rg_train_config *c, rg_error *err);
/* "key = value" lines, one per key, in a fixed order (caller frees). */
char *rg_train_config_format(const rg_train_config *c);
/* Reads "key = value" lines (as written by rg_train_config_format) on top of
 * *c; origin names the text in errors ("origin:line: ..."). */
rg_status rg_train_config_parse(rg_train_config *c, const char *text, const char *origin, rg_error *err);
/* Where a comment starts in line: the first of `marks` ("#" here, ";#" in
 * recipes) at the start of the line or after white space, so that "dir#1"
 * stays a value; NULL when there is none. The one rule for configuration
 * texts and recipes. */
const char *rg_config_comment(const char *line, const char *marks);
/* The QAT part of a configuration. */
void rg_train_config_qat(const rg_train_config *c, rg_qat_config *q);
/* The distillation part of a configuration. */
void rg_train_config_distill(const rg_train_config *c, rg_distill_config *d);
/* The loader's augmentation and mixing from c: crop_pad and hflip, then the
 * augment spec on top, then erasing (an error when the spec has erasing
 * too); errors name the key ("augment: ...", "erasing: ..."). */
rg_status rg_train_augment_config(const rg_train_config *c, rg_augment_config *aug, rg_mix_config *mix,
                                  rg_error *err);
/* Help text of every key: NULL-terminated array of {key, meaning, default
 * value as the configuration text writes it}. */
typedef struct {
    const char *key, *help, *default_value;
} rg_config_key_help;
const rg_config_key_help *rg_train_config_keys(void);

/* ---- evaluation --------------------------------------------------------------------- */

typedef struct {
    int32_t classes;
    int64_t n, correct;
    double loss, top1;      /* mean loss, accuracy in [0, 1] */
    int64_t *confusion;     /* classes x classes, row = true label, column = prediction */
} rg_eval_result;

/* Evaluates g (eval mode) on ds in batches of g's planned batch, inputs
 * normalized with (mean, std). The graph must be planned. */
rg_status rg_evaluate(rg_graph *g, const rg_dataset *ds, float mean, float std, rg_eval_result *r, rg_error *err);
/* Counts one prediction, the first maximum of logits[r->classes], against
 * its label into r (n, correct, confusion; top1 is left to the caller). */
void rg_eval_count(rg_eval_result *r, const float *logits, int32_t label);
/* The logits of g (eval mode) on the samples indices[m] of ds (indices NULL:
 * all of ds, in order), unaugmented, normalized with (mean, std), handed to
 * fn batch by batch in the order given: fn(user, the batch's dataset
 * indices and labels, logits [count x classes], count, classes). The graph
 * must be planned. */
typedef void (*rg_logits_fn)(void *user, const int32_t *indices, const int32_t *labels, const float *logits,
                             int32_t count, int32_t classes);
rg_status rg_predict(rg_graph *g, const rg_dataset *ds, const int32_t *indices, int32_t m, float mean, float std,
                     rg_logits_fn fn, void *user, rg_error *err);
void rg_eval_result_free(rg_eval_result *r);

/* ---- training ----------------------------------------------------------------------- */

typedef struct {
    int32_t epoch, epochs;  /* 0-based epoch */
    int32_t batch, batches; /* batches done in this epoch, of */
    double loss;            /* running mean training loss of the epoch */
    double images_per_s;    /* this epoch so far */
    double elapsed_s, eta_s;/* whole run */
} rg_train_progress;

typedef struct {
    int32_t epoch;          /* 1-based for display */
    double lr, train_loss, train_top1, test_loss, test_top1, val_top1; /* val_top1 < 0 without a split */
    double seconds, images_per_s;
    double teacher_s;       /* of seconds, in the teachers' forward passes (distillation) */
    int is_best;
    int64_t samples;        /* training samples used this epoch (curriculum, selection) */
    double noisy_kept;      /* fraction of them with a label corrupted by label_noise */
} rg_epoch_metrics;

typedef struct {
    void *user;
    void (*progress)(void *user, const rg_train_progress *p);   /* often; keep it cheap */
    void (*epoch_end)(void *user, const rg_epoch_metrics *m);
    void (*note)(void *user, const char *message);              /* one-line notices */
    /* asked after every step: nonzero stops the run there (RG_ERR_STOPPED),
     * with its state in last.safetensors to resume from; NULL: never */
    int (*stop)(void *user);
} rg_train_hooks;

typedef struct {
    int32_t epochs_run;     /* in this call (fewer than epochs after a resume) */
    double best_top1;       /* selection accuracy of best.safetensors */
    double teacher_top1;    /* distillation: the teachers' selection accuracy (-1 without) */
    int32_t best_epoch;
    double wall_s;          /* this call */
    rg_eval_result final;   /* test-set evaluation of the final weights (EMA when on) */
} rg_train_result;

/* Trains per cfg into run_dir (created if needed). With resume set, continues
 * from run_dir/last.safetensors; the configuration is then read from that
 * checkpoint and cfg is ignored except for threads and workers. */
rg_status rg_train_run(const rg_train_config *cfg, const char *run_dir, int resume, const rg_train_hooks *hooks,
                       rg_train_result *res, rg_error *err);
void rg_train_result_free(rg_train_result *res);

/* Builds the model named by cfg->model: a zoo name or a spec file path. */
rg_status rg_model_build(const char *model, int32_t h, int32_t w, int32_t c, int32_t classes, rg_graph **out,
                         rg_error *err);

/* Sets the number of OpenMP threads regain computes with (0 = all cores). */
void rg_set_threads(int32_t threads);

#endif
