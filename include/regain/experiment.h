/* regain — the experiment runner: a recipe (recipe.h) run end to end into
 * the experiment store (store.h).
 *
 *     rg_exp_options o = {.jobs = 1};
 *     rg_experiment *x;
 *     if (rg_exp_open("recipes/fashion-mnist.ini", &o, &x, &err)) ...;   // parse, resolve, plan
 *     for (int32_t i = 0; i < x->n_items; i++) ... x->items[i].plan ...;  // what would run
 *     rg_status st = rg_exp_execute(x, &hooks, &err);                     // run it
 *     ... x->items[i].outcome ...
 *     rg_exp_close(x);
 *
 * An item is one run of the recipe for one seed. Items run in dependency
 * order; an item whose content hash (the resolved configuration, the data
 * set's files, the model spec file and every checkpoint it starts from)
 * matches a run the store holds as done is not run again. A run left
 * 'running' by a killed process resumes from its last checkpoint. Every run
 * directory has a lock file (flock): two processes never perform one run,
 * and one that finds a run locked waits for the other to finish it.
 */
#ifndef REGAIN_EXPERIMENT_H
#define REGAIN_EXPERIMENT_H

#include <stdint.h>

#include "regain/recipe.h"
#include "regain/status.h"
#include "regain/store.h"
#include "regain/trainer.h"

#define RG_VERSION "0.1.0"

/* What the plan expects of an item. */
typedef enum {
    RG_PLAN_RUN = 0,        /* runs from the start */
    RG_PLAN_RESUME,         /* an interrupted run continues from its last checkpoint */
    RG_PLAN_CACHED,         /* done with the same content hash: not run again */
    RG_PLAN_AFTER_DEPS,     /* a run it depends on runs first; its hash is known only then */
    RG_PLAN_ELSEWHERE,      /* another process is running it now */
    RG_PLAN_REUSE,          /* another experiment of the store has run it (same content hash): copied */
    RG_PLAN_RESTORE         /* imported without its checkpoints, which a run still to do needs: runs again */
} rg_item_plan;

/* Where an item's estimated throughput comes from (rg_exp_open). */
typedef enum {
    RG_EST_RECORDED = 0,    /* the store's records */
    RG_EST_TIMED,           /* a few training steps timed by rg_exp_open */
    RG_EST_ASSUMED          /* nothing on record and nothing timed: the default MAC rate */
} rg_est_rate;

/* What happened to an item in rg_exp_execute. */
typedef enum {
    RG_OUT_NONE = 0,        /* not reached */
    RG_OUT_RAN,             /* trained from the start */
    RG_OUT_RESUMED,         /* continued from its last checkpoint */
    RG_OUT_CACHED,          /* already done with the same hash */
    RG_OUT_ELSEWHERE,       /* done by another process meanwhile */
    RG_OUT_FAILED,          /* error (message in error) */
    RG_OUT_SKIPPED,         /* a run it depends on failed */
    RG_OUT_REUSED,          /* copied from another experiment's run with the same hash */
    RG_OUT_STOPPED          /* stopped on request (hooks.stop): the next regain run resumes it */
} rg_item_outcome;

typedef struct {
    int32_t run;            /* index into res->runs */
    char name[RG_RECIPE_NAME_MAX];
    int64_t seed;
    char run_dir[1024];
    char *config_text;      /* rg_resolved_config_text (owned) */
    /* plan */
    rg_item_plan plan;
    char hash[65];          /* "" when not known yet */
    double est_s;           /* estimated seconds to run (0 when cached) */
    rg_est_rate est_rate;   /* where the estimate's throughput comes from */
    uint64_t macs;          /* forward MACs per image (0 unknown) */
    char reused_from[RG_RECIPE_NAME_MAX * 2 + 32]; /* RG_PLAN_REUSE / RG_OUT_REUSED: "EXPERIMENT/RUN" */
    int results_only;       /* RG_PLAN_CACHED: imported results, the checkpoints are not here */
    /* outcome */
    rg_item_outcome outcome;
    double wall_s;          /* of this invocation's attempt */
    double test_top1;       /* final test accuracy in [0, 1], or < 0 */
    char error[RG_ERR_MSG_MAX];
} rg_exp_item;

typedef struct {
    const char *profile;            /* NULL or "": none */
    const char *const *only;        /* run names (and what they depend on); n_only = 0: all */
    int32_t n_only;
    const int64_t *seeds;           /* of the recipe's seeds, only these; n_seeds = 0: all */
    int32_t n_seeds;
    const char *store;              /* overrides the recipe's store */
    int32_t jobs;                   /* runs at once (processes); < 1 means 1 */
    int32_t threads;                /* compute threads in all (0 = all cores), split between jobs */
} rg_exp_options;

typedef struct {
    rg_recipe *recipe;
    rg_resolved_recipe *res;
    rg_exp_options opt;
    char store_path[512];
    rg_exp_item *items;             /* selected items in execution order (seed, then dependency order) */
    int32_t n_items;
    double default_rate;            /* forward MACs/s assumed without records (rg_exp_open) */
    void *priv;                     /* runner state */
} rg_experiment;

/* Compute threads each run gets: the options' threads (0: all cores)
 * divided between the jobs, at least 1. */
int32_t rg_exp_threads_per_run(const rg_experiment *x);

/* Parses and resolves the recipe and plans every selected item against the
 * store (read only; a missing store means that everything runs). Writes
 * nothing. Errors: the recipe's (file:line), an unknown --only name
 * (RG_ERR_ARG), an unreadable store. */
rg_status rg_exp_open(const char *recipe_path, const rg_exp_options *opt, rg_experiment **out, rg_error *err);

typedef struct {
    const rg_exp_item *item;
    int32_t index, total;           /* 1-based position among the items that run */
    double elapsed_s, eta_s;        /* the whole invocation */
} rg_exp_status;

/* Progress of rg_exp_execute. With jobs > 1, progress, epoch_end and note
 * are called in the child process that performs the item. */
typedef struct {
    void *user;
    void (*start)(void *user, const rg_exp_status *s);
    void (*progress)(void *user, const rg_exp_status *s, const rg_train_progress *p);
    void (*epoch_end)(void *user, const rg_exp_status *s, const rg_epoch_metrics *m);
    void (*note)(void *user, const rg_exp_status *s, const char *message);
    void (*end)(void *user, const rg_exp_status *s);   /* item->outcome is set */
    /* asked often, in the child processes of jobs > 1 too: nonzero stops
     * the experiment. Runs in progress stop after their current step with
     * their state saved (RG_OUT_STOPPED, resumed by the next regain run)
     * and no other run starts. NULL: never. */
    int (*stop)(void *user);
} rg_exp_hooks;

/* Runs every selected item (creating the store when missing) and sets each
 * item's outcome. A failing run does not stop the others (its dependents
 * are skipped); the return value is an error only when the experiment
 * itself cannot proceed (the store cannot be written). */
rg_status rg_exp_execute(rg_experiment *x, const rg_exp_hooks *hooks, rg_error *err);
void rg_exp_close(rg_experiment *x);

/* ---- moving runs between machines with their checkpoints ------------------------------------------ */

/* rg_exp_export writes experiment `experiment`'s results file as
 * rg_store_export does; with files_dir it also copies checkpoints there,
 * each under its SHA-256: the recorded artifacts of the finished runs that
 * files_of names ("RUN", "RUN:best|last|int8", or "*" for every run), and
 * every file of each unfinished run's directory, whose row then travels
 * too (status "running", with a `files` list), unless a process holds the
 * run now. */
typedef struct {
    const char *files_dir;          /* NULL: results only */
    const char *const *files_of;
    int32_t n_files_of;
} rg_exp_export_options;

typedef struct {
    int32_t finished, unfinished;   /* runs in the file */
    int32_t files;                  /* files put into files_dir */
    int32_t changed;                /* artifacts no longer what their record says: not carried */
    int32_t busy;                   /* unfinished runs left out: a process holds them */
    char busy_dir[512];             /* the first of them */
} rg_exp_export_counts;

rg_status rg_exp_export(rg_store *s, const char *experiment, const char *path, const rg_exp_export_options *o,
                        rg_exp_export_counts *c, rg_error *err);

/* rg_exp_import imports a results file as rg_store_import does; with
 * files_dir it puts each imported finished run's artifacts that the
 * directory holds at their recorded paths, and imports unfinished runs with
 * all their files into their run directories (resumed by the next `regain
 * run`). Every file is checked against its SHA-256 first; *files gets the
 * number put in place. */
rg_status rg_exp_import(rg_store *s, const char *path, const char *files_dir, rg_store_import_counts *c,
                        int32_t *files, rg_error *err);

#endif
