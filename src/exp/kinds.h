/* Run kinds: what a [run] section does. A kind is one entry in the table of
 * kinds.c: its name (the `kind` key), the keys that may name another run's
 * checkpoint ("@NAME"), and the function that performs one run for one seed.
 * Distillation and quantization runs are added as further entries. */
#ifndef REGAIN_EXP_KINDS_H
#define REGAIN_EXP_KINDS_H

#include "regain/recipe.h"
#include "regain/store.h"
#include "regain/trainer.h"

/* One run for one seed, in the process that performs it. */
typedef struct {
    const rg_resolved_run *run;
    rg_train_config cfg;        /* seed, threads and checkpoint paths filled in */
    const char *run_dir;
    int resume;                 /* continue from run_dir/last.safetensors */
    rg_store *store;
    int64_t run_id;
    const rg_train_hooks *hooks;/* progress and notes for the user */
    double prior_wall_s;        /* wall time of earlier, interrupted attempts */
    double start_s;             /* monotonic start of this attempt */
} rg_exp_job;

typedef struct {
    const char *name;
    const char *const *artifact_keys;   /* NULL-terminated */
    /* Performs the run and records it as done in the store (or returns an
     * error; the caller then marks it failed). */
    rg_status (*run)(rg_exp_job *job, rg_error *err);
    /* NULL-terminated keys naming other input files (not checkpoints, so no
     * references): hashed by content like the data */
    const char *const *file_keys;
} rg_exp_kind;

/* The kind called name, or NULL. */
const rg_exp_kind *rg_exp_kind_find(const char *name);
/* "train, ..." for messages. */
const char *rg_exp_kind_list(void);

/* The train kind (kind_train.c). */
rg_status rg_exp_run_train(rg_exp_job *job, rg_error *err);
/* The quantize kind (kind_quantize.c): post-training quantization of the
 * `init` checkpoint; its top-1 is the int8 model's. */
rg_status rg_exp_run_quantize(rg_exp_job *job, rg_error *err);

/* Shared by the kinds (kind_train.c): the confusion matrix as the store's
 * JSON (caller frees; NULL when out of memory), and the artifact of this
 * kind, the file run_dir/file, with its SHA-256. */
char *rg_exp_confusion_json(const rg_eval_result *r);
rg_status rg_exp_artifact(rg_store *s, const char *run_dir, const char *kind, const char *file, rg_store_artifact *a,
                          rg_error *err);
/* A run's latency: the median time of pass(user) in milliseconds, on one
 * thread, after 3 warm-up calls, over at least 25 calls and half a second
 * (25 passes of a 0.4 ms model, 10 ms, gave medians 50 % apart on a shared
 * host). Restores `threads` afterwards. */
double rg_exp_latency_ms(void (*pass)(void *user), void *user, int32_t threads);

#endif
