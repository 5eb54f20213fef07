/* Teachers for distillation (train/teacher.c): frozen networks loaded from
 * checkpoints, run in evaluation mode on exactly the student's batch. */
#ifndef REGAIN_TRAIN_TEACHER_H
#define REGAIN_TRAIN_TEACHER_H

#include "regain/distill.h"

typedef struct {
    rg_graph *g[RG_DISTILL_MAX_TEACHERS];
    char path[RG_DISTILL_MAX_TEACHERS][512];
    char crc[RG_DISTILL_MAX_TEACHERS][16];  /* each file's "regain.crc32", "" if it has none */
    int32_t n, classes, batch;
    float *member_probs;   /* batch x classes: one member's share of an ensemble */
} rg_teachers;

/* Loads every non-empty path of c->teachers: its weight average when the
 * checkpoint has one, otherwise its weights. Each must take h x w x ch
 * images, give `classes` outputs and have been trained on inputs
 * normalized as c->mean and c->std say. Not planned yet (taps come first). */
rg_status rg_teachers_load(rg_teachers *t, const rg_distill_config *c, int32_t h, int32_t w, int32_t ch,
                           int32_t classes, rg_error *err);
/* Plans each teacher for `batch` images in evaluation mode and folds its
 * batch norms once (the weights never change). */
rg_status rg_teachers_plan(rg_teachers *t, int32_t batch, rg_error *err);
/* Runs every teacher on x (n <= batch images) and writes the ensemble's
 * probabilities at temperature T, the mean of the teachers' softmax(z/T),
 * into probs (n x classes). Tapped values of the teachers stay readable
 * until the next call. */
void rg_teachers_forward(rg_teachers *t, const float *x, int32_t n, float T, float *probs);
void rg_teachers_free(rg_teachers *t);

#endif
