/* Shared by the planner (plan.c) and the runner (runner.c): an item's
 * content hash and checkpoint paths, the checks that decide whether a stored
 * run can stand for it, and the run-directory lock. */
#ifndef REGAIN_EXP_PLAN_H
#define REGAIN_EXP_PLAN_H

#include "regain/experiment.h"

#include <sys/types.h>

typedef struct {
    char key[512], hex[65];
} rg_exp_memo;

/* A training throughput timed on the spot for the estimates. */
typedef struct {
    char model[256];
    int32_t batch;
    double images_per_s;    /* 0: the model could not be timed */
} rg_exp_rate;

#define RG_EXP_MAX_RATES 16

typedef struct {
    int32_t *deps;          /* RG_RECIPE_MAX_REFS per item: item indices, -1 unused */
    rg_exp_memo *data;      /* data set checksums of this invocation */
    int32_t n_data;
    rg_exp_rate rates[RG_EXP_MAX_RATES];
    int32_t n_rates;
} rg_exp_priv;

/* The item's trainer configuration (seed set, references replaced by the
 * checkpoint paths the store records for the runs they name) and content
 * hash. The runs referenced must be done in the store with the hashes their
 * items have now; otherwise an error says which. */
rg_status rg_exp_item_hash(rg_experiment *x, rg_store *s, int64_t experiment, int32_t item, rg_train_config *cfg,
                           char hex[65], rg_error *err);

/* Whether a stored run can stand for an item with this hash: done, the same
 * hash, and its checkpoints on disk with the recorded size and SHA-256
 * (RG_EXP_REUSE_FILES); or imported without its checkpoints, which only a
 * run depending on it misses (RG_EXP_REUSE_RESULTS). A checkpoint on disk
 * that differs from the record makes it RG_EXP_REUSE_NO. */
enum { RG_EXP_REUSE_NO = 0, RG_EXP_REUSE_FILES, RG_EXP_REUSE_RESULTS };
int rg_exp_run_reusable(rg_store *s, const rg_store_run *row, const char *hash);
/* The most recently finished run of another experiment that can stand for
 * an item with this hash and kind, files included (rg_exp_run_reusable):
 * donors whose files are gone or changed are passed over for older ones.
 * row->id is 0 when there is none; donor gets "EXPERIMENT/RUN". */
rg_status rg_exp_find_donor(rg_store *s, const char *hash, const char *kind, int64_t experiment, rg_store_run *row,
                            char *donor, size_t cap, rg_error *err);


/* fork() for a child of this process (buffered output flushed first): in
 * the child, which dies with its parent, it returns 0. The parent's store
 * connection is copied into the child; SQLite's rule is that a child must
 * not use it, and the children here never do: they open their own, and
 * leave through _exit, so the copy is not even closed (a close could
 * checkpoint the parent's write-ahead log and remove it). */
pid_t rg_exp_fork(void);

/* The run directory's lock (RUN_DIR/.lock, flock), exclusive to run it or
 * shared (`shared` set) to read its files while no process runs it: -1
 * with *busy set when another process holds it so, -1 with an error
 * otherwise; the descriptor (close it to release) on success. The
 * directory must exist. */
int rg_exp_lock(const char *run_dir, int shared, int *busy, rg_error *err);
/* Whether another process holds the lock now (no lock taken). */
int rg_exp_locked(const char *run_dir);

#endif
