/* regain — the experiment store: one SQLite file that records experiments,
 * runs, their resolved configurations, per-epoch and final metrics, artifacts
 * with their checksums, and the environment each run ran in.
 *
 * The tables are in src/store/schema.c and described in docs/experiments.md;
 * the runner (experiment.h) writes them, `regain runs` and `regain report`
 * read them. Any SQLite client can read the file too.
 *
 * Safety: the store is opened in WAL mode with a busy timeout, so several
 * `regain run` processes (and readers) can use one store at once. Every
 * change that must be seen whole (a run claimed, a run finished with its
 * metrics, artifacts and environment) is one transaction: a process killed at
 * any moment leaves either the old rows or the new ones.
 *
 *     rg_store *s;
 *     if (rg_store_open("runs/regain.db", 0, &s, &err) != RG_OK) return err.code;
 *     ...
 *     rg_store_close(s);
 *
 * Errors name the store file and the problem (RG_ERR_IO for SQLite I/O and
 * locking failures, RG_ERR_FORMAT for a file that is not a regain store).
 */
#ifndef REGAIN_STORE_H
#define REGAIN_STORE_H

#include <stdint.h>

#include "regain/status.h"
#include "regain/trainer.h"

typedef struct rg_store rg_store;
typedef struct sqlite3 sqlite3;

/* Opens the store at path. Unless read_only, a missing file (and its
 * directory) is created with the schema; an existing file must be a regain
 * store of this schema version (PRAGMA user_version). With read_only a
 * missing file is RG_ERR_NOTFOUND and nothing is ever written. */
rg_status rg_store_open(const char *path, int read_only, rg_store **out, rg_error *err);
void rg_store_close(rg_store *s);
const char *rg_store_path(const rg_store *s);
/* The connection, for read-only queries of other modules (the report). */
sqlite3 *rg_store_db(rg_store *s);

/* BEGIN IMMEDIATE (waits for other writers up to the busy timeout) / COMMIT /
 * ROLLBACK. */
rg_status rg_store_begin(rg_store *s, rg_error *err);
rg_status rg_store_commit(rg_store *s, rg_error *err);
void rg_store_rollback(rg_store *s);

/* ---- experiments and comparisons --------------------------------------------------------- */

/* Inserts or updates the experiment `name` (recipe path and text as last run)
 * and returns its id. */
rg_status rg_store_put_experiment(rg_store *s, const char *name, const char *recipe_path, const char *recipe_text,
                                  int64_t *id, rg_error *err);
/* The id of experiment `name`; RG_ERR_NOTFOUND when the store has none. */
rg_status rg_store_find_experiment(rg_store *s, const char *name, int64_t *id, rg_error *err);
/* Replaces the experiment's comparisons with these n (treatment against
 * baseline, paired by seed; reference: the run whose gap to the baseline
 * the treatment is measured against, NULL or "" for none). */
typedef struct {
    const char *name, *baseline, *treatment, *reference;
} rg_store_comparison;
rg_status rg_store_set_comparisons(rg_store *s, int64_t experiment, const rg_store_comparison *c, int32_t n,
                                   rg_error *err);

/* ---- runs -------------------------------------------------------------------------------- */

typedef struct {
    int64_t id;             /* 0: no row */
    char status[16];        /* pending | running | done | failed */
    char hash[65];
    char run_dir[1024];
    double wall_s;
    char error[RG_ERR_MSG_MAX];
    double test_top1;       /* final_metrics.test_top1, < 0 when none */
    int imported;           /* imported from a results file (rg_store_import): its checkpoints may be absent */
    int32_t epochs_done;    /* epochs with metrics on record */
} rg_store_run;

/* The row of (experiment, name, seed); row->id is 0 when there is none. */
rg_status rg_store_get_run(rg_store *s, int64_t experiment, const char *name, int64_t seed, rg_store_run *row,
                           rg_error *err);
/* Records a run that this invocation plans, as 'pending', unless a row for
 * (experiment, name, seed) exists already. */
rg_status rg_store_add_pending(rg_store *s, int64_t experiment, const char *name, int64_t seed, const char *kind,
                               const char *config_text, const char *run_dir, rg_error *err);
/* Sets the finished run (experiment, name, seed) back to 'pending': a run
 * it started from runs again with another configuration, so its results
 * no longer follow from the recipe. No row, or one not 'done': nothing. */
rg_status rg_store_mark_stale(rg_store *s, int64_t experiment, const char *name, int64_t seed, rg_error *err);
/* Marks the run 'running' with this hash and configuration and returns its
 * id. Fresh (resume = 0): creates or resets the row (started_at now, wall
 * time 0) and deletes its metrics, artifacts and environment. Resume: keeps
 * the row's start, wall time and epoch metrics. Call inside a transaction. */
rg_status rg_store_start_run(rg_store *s, int64_t experiment, const char *name, int64_t seed, const char *kind,
                             const char *hash, const char *config_text, const char *run_dir, int resume,
                             int64_t *id, rg_error *err);
/* Another experiment's finished run with the same content hash and kind,
 * whose experiment is not `experiment`: the skip-th of them (0: the most
 * recently finished). row->id is 0 when there is none; donor gets
 * "EXPERIMENT/RUN". */
rg_status rg_store_find_donor(rg_store *s, const char *hash, const char *kind, int64_t experiment, int32_t skip,
                              rg_store_run *row, char *donor, size_t cap, rg_error *err);
/* Makes (experiment, name, seed) a done copy of run `from` (another
 * experiment's run with the same content hash): the row's configuration,
 * hash, status, times and wall time, and its epoch and final metrics,
 * environment and artifacts, whose paths under from's run directory are
 * rewritten to lie under run_dir (the caller copies the files there). Call
 * inside a transaction. */
rg_status rg_store_adopt_run(rg_store *s, int64_t from, int64_t experiment, const char *name, int64_t seed,
                             const char *run_dir, rg_error *err);
/* Deletes a run with its metrics, artifacts and environment records. */
rg_status rg_store_delete_run(rg_store *s, int64_t id, rg_error *err);
/* Marks the run 'failed' with a message; wall_s is its total wall time. */
rg_status rg_store_fail_run(rg_store *s, int64_t id, const char *message, double wall_s, rg_error *err);
/* Inserts (or replaces) one epoch's metrics (accuracies in [0, 1]; a
 * negative val_top1 is stored as NULL) and sets the run's wall time so far
 * (a resumed run adds to it). */
rg_status rg_store_put_epoch(rg_store *s, int64_t id, const rg_epoch_metrics *m, double wall_s, rg_error *err);
/* The run's wall time so far (a run stopped in the middle of an epoch). */
rg_status rg_store_set_wall(rg_store *s, int64_t id, double wall_s, rg_error *err);

typedef struct {
    char kind[16];          /* best | last */
    char path[1024];
    char sha256[65];
    int64_t bytes;
} rg_store_artifact;

typedef struct {
    const char *git_commit, *compiler, *cpu_model, *cpu_features, *hostname, *regain_version;
    const char *blas_core; /* the kernels OpenBLAS ran (regain/cpu.h: rg_blas_core) */
    int32_t threads;
    int64_t seed;
} rg_store_env;

typedef struct {
    double test_top1, test_loss, best_top1;
    int32_t best_epoch;
    int64_t params, macs, model_bytes;
    double latency_ms, train_s;
    const char *confusion_json;   /* JSON array of rows (true label) of counts per predicted label */
} rg_store_final;

/* Finishes a run in one transaction: the epoch metrics (inserted where
 * missing: the per-epoch inserts of a killed process may lack the last one),
 * final metrics, artifacts and environment, then status 'done' with its wall
 * time. A process killed inside leaves the run as it was ('running'). */
rg_status rg_store_finish_run(rg_store *s, int64_t id, const rg_epoch_metrics *epochs, int32_t n_epochs,
                              const rg_store_final *f, const rg_store_artifact *artifacts, int32_t n_artifacts,
                              const rg_store_env *env, double wall_s, rg_error *err);
/* The artifact `kind` of run id; RG_ERR_NOTFOUND when it has none. */
rg_status rg_store_get_artifact(rg_store *s, int64_t run_id, const char *kind, rg_store_artifact *a, rg_error *err);
/* *known = whether a run of any experiment records an artifact with this
 * SHA-256. */
rg_status rg_store_knows_artifact(rg_store *s, const char *sha256, int *known, rg_error *err);

/* ---- throughput (for cost estimates) ------------------------------------------------------- */

/* Median training images/s of the epochs recorded for model (the `model`
 * key of the runs' configuration), and the mean over all models of their
 * median forward MACs/s given each model's MACs by the callback (NULL:
 * skipped). threads > 0: only runs that finished with that many threads
 * (a run's rate depends on its threads, and on what ran beside it); 0: all.
 * cpu (NULL: any) "MODEL\nFEATURES": only runs whose environment records
 * that CPU model and those features (results imported from another
 * machine carry its rates). 0 where nothing is recorded. */
rg_status rg_store_rates(rg_store *s, const char *model, int32_t threads, const char *cpu,
                         double (*model_macs)(void *user, const char *model), void *user, double *images_per_s,
                         double *macs_per_s, rg_error *err);

/* ---- file checksums ------------------------------------------------------------------------ */

/* What identifies one version of a file without reading it. The mtime
 * alone is not enough: `cp -p` or `touch -r` give new contents an old
 * mtime. The ctime, which no program can set, and the inode change too. */
typedef struct {
    int64_t size, mtime_ns, ctime_ns, inode;
} rg_file_stamp;

/* SHA-256 of a file as recorded for (path, stamp); *found = 0 when not
 * recorded. */
rg_status rg_store_get_file_hash(rg_store *s, const char *path, const rg_file_stamp *stamp, char sha256[65],
                                 int *found, rg_error *err);
rg_status rg_store_put_file_hash(rg_store *s, const char *path, const rg_file_stamp *stamp, const char *sha256,
                                 rg_error *err);

/* ---- listing --------------------------------------------------------------------------------- */

typedef struct {
    char experiment[128], name[64], kind[16], status[16], hash[65];
    int64_t id, seed;
    char run_dir[1024], started_at[32], finished_at[32], error[256];
    double wall_s;          /* < 0 when unknown */
    int has_final;
    double test_top1, test_loss, best_top1, latency_ms, train_s;
    int32_t best_epoch;
    int64_t params, macs, model_bytes;
    char imported_from[256]; /* the results file it was imported from; "" when run here */
} rg_store_run_info;

typedef struct {
    const char *experiment, *name, *status;   /* NULL: any */
} rg_store_filter;

/* Runs matching the filter, ordered by experiment, recipe order of first
 * insertion and seed. *rows is malloc'd (caller frees). */
rg_status rg_store_list_runs(rg_store *s, const rg_store_filter *f, rg_store_run_info **rows, int32_t *n,
                             rg_error *err);

/* ---- moving results between stores ------------------------------------------------------------ */

/* Results travel without their checkpoints, as a JSON file that is small
 * and readable enough to keep in version control: a run split over several
 * machines (or sessions) is merged by exporting each store and importing the
 * files into one. Format: docs/experiments.md, "Moving results". The
 * checkpoints themselves travel through the hooks below (the runner's
 * rg_exp_export and rg_exp_import), which know the run directories.
 *
 * Hooks see each run as its JSON object (cJSON). on_export may add fields
 * to it, or leave the run out (*keep = 0); on_import is called inside the
 * import's transaction after the run's rows went in, and an error from it
 * imports nothing. */
struct cJSON;
typedef struct {
    int unfinished;   /* export: runs still 'running' too, with the rows they have */
    rg_status (*on_export)(void *user, struct cJSON *run, int *keep, rg_error *err);
    /* import: runs "running" in the file are imported only with this hook */
    rg_status (*on_import)(void *user, const struct cJSON *run, rg_error *err);
    void *user;
} rg_store_transfer_hooks;

/* rg_store_export writes experiment `name` (its recipe and comparisons) and
 * its finished runs with their configuration, hash, epoch and final
 * metrics, artifact checksums and environment, ordered by run and seed, to
 * path (atomically); *n_runs gets their number. hooks may be NULL. */
rg_status rg_store_export(rg_store *s, const char *name, const char *path, const rg_store_transfer_hooks *hooks,
                          int32_t *n_runs, rg_error *err);

typedef struct {
    int32_t imported;   /* new here, or replacing a pending or failed row */
    int32_t present;    /* already done here with the same content hash */
    int32_t kept;       /* done, running or imported here with another hash: the store's own row is kept */
    int32_t unfinished; /* unfinished runs left out: no on_import hook to bring their files */
} rg_store_import_counts;

/* Imports a file rg_store_export wrote, in one transaction: the experiment
 * (created when the store has none of that name; its recipe and
 * comparisons are taken only then) and each run the store does not hold as
 * done, marked imported from path. Errors name the file and the field.
 * hooks may be NULL. */
rg_status rg_store_import(rg_store *s, const char *path, const rg_store_transfer_hooks *hooks,
                          rg_store_import_counts *counts, rg_error *err);

/* ---- fault injection (tests) ------------------------------------------------------------------ */

/* When set, called with a point name ("finish:final_metrics", ...) between
 * the writes of a transaction, so that a test can kill the process there. */
void rg_store_set_fault_hook(void (*hook)(const char *point));

#endif
