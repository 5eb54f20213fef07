/* regain — training: loss, optimizers, schedules, weight averaging.
 *
 * The pieces a training loop is made of, each usable alone (the trainer in
 * trainer.h strings them together):
 *
 *     float loss = rg_xent_forward_backward(logits, labels, n, classes, 0.1f, dlogits, NULL);
 *     rg_graph_backward(g, &ctx);
 *     float lr = rg_schedule_lr(&sched, step);
 *     rg_optim_step(&opt, g, lr);
 *     rg_ema_update(&ema, g);
 */
#ifndef REGAIN_TRAIN_H
#define REGAIN_TRAIN_H

#include <stdint.h>

#include "regain/graph.h"

/* ---- loss ---------------------------------------------------------------------- */

/* Softmax cross-entropy with label smoothing eps, averaged over n samples:
 * target q = (1 - eps) * onehot(y) + eps / classes. Writes dL/dlogits (already
 * divided by n) into dlogits when not NULL, each sample's loss into
 * per_sample when not NULL. Returns the mean loss. Summation is ordered. */
float rg_xent_forward_backward(const float *logits, const int32_t *labels, int32_t n, int32_t classes,
                               float smoothing, float *dlogits, float *per_sample);

/* The same with soft targets (n x classes, rows summing to 1: mixup and
 * CutMix mix two labels): q = (1 - eps) * targets + eps / classes. */
float rg_xent_soft_forward_backward(const float *logits, const float *targets, int32_t n, int32_t classes,
                                    float smoothing, float *dlogits, float *per_sample);
/* Number of samples whose arg-max logit equals the label. */
int32_t rg_count_correct(const float *logits, const int32_t *labels, int32_t n, int32_t classes);

/* ---- optimizers ---------------------------------------------------------------- */

typedef enum { RG_OPTIM_SGD = 0, RG_OPTIM_ADAMW = 1 } rg_optim_kind;

typedef struct {
    rg_optim_kind kind;
    float momentum;       /* SGD */
    int nesterov;         /* SGD */
    float beta1, beta2;   /* AdamW */
    float eps;            /* AdamW */
    float weight_decay;   /* SGD: L2 added to the gradient (PyTorch SGD); AdamW: decoupled */
    int decay_all;        /* 0: BN parameters and biases are not decayed (default) */
} rg_optim_config;

typedef struct {
    rg_optim_config cfg;
    size_t floats;        /* = graph param_floats */
    float *m, *v;         /* moments: SGD momentum buffer in m; AdamW first/second in m, v */
    uint64_t t;           /* steps taken (AdamW bias correction) */
} rg_optim;

rg_status rg_optim_init(rg_optim *o, const rg_optim_config *cfg, const rg_graph *g, rg_error *err);
/* One update of g's parameters from g->grad_data with learning rate lr.
 * Elementwise, so the result does not depend on the thread count. */
void rg_optim_step(rg_optim *o, rg_graph *g, float lr);
void rg_optim_free(rg_optim *o);

/* ---- learning-rate schedules ------------------------------------------------------ */

typedef enum { RG_SCHED_COSINE = 0, RG_SCHED_STEP = 1, RG_SCHED_CONSTANT = 2 } rg_sched_kind;

typedef struct {
    rg_sched_kind kind;
    float base_lr;
    int64_t total_steps;   /* whole run */
    int64_t warmup_steps;  /* linear warm-up from base_lr * warmup_start to base_lr */
    float warmup_start;    /* fraction of base_lr at step 0 of the warm-up (default 0) */
    float min_lr;          /* cosine floor */
    int64_t step_every;    /* step schedule: multiply by gamma every step_every steps */
    float gamma;
} rg_schedule;

/* Learning rate at (0-based) step. Cosine: min + (base - min) * (1 + cos(pi *
 * (step - warmup) / (total - warmup))) / 2 after the warm-up. */
float rg_schedule_lr(const rg_schedule *s, int64_t step);

/* ---- exponential moving average of the weights ------------------------------------- */

typedef struct {
    float decay;           /* e.g. 0.999; 0 = off */
    float *params;         /* averaged copy of param_data */
    float *buffers;        /* averaged copy of buffer_data (BN statistics) */
    size_t param_floats, buffer_floats;
} rg_ema;

rg_status rg_ema_init(rg_ema *e, float decay, const rg_graph *g, rg_error *err);
/* ema = decay * ema + (1 - decay) * current, for parameters and BN buffers. */
void rg_ema_update(rg_ema *e, const rg_graph *g);
/* Exchanges the graph's weights with the averaged ones (call twice to undo). */
void rg_ema_swap(rg_ema *e, rg_graph *g);
void rg_ema_free(rg_ema *e);

#endif
