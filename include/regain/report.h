/* regain — the report of an experiment: what the runs in the store gained.
 *
 * The experiment store (SQLite, written by `regain run`) holds one row per
 * (run name, seed) with per-epoch and final metrics. The report reads it
 * (read-only, so it can run while runs are still being written), groups the
 * finished runs by name, summarizes each name over its seeds, compares the
 * pairs of runs the recipe names seed by seed (stats.h), and writes into a
 * directory:
 *
 *     report.md      Markdown tables: summary, comparisons, per seed, confusion, environment
 *     report.html    the same with SVG charts; self-contained (inline CSS and SVG,
 *                    no script, no network: a Content-Security-Policy forbids it)
 *     results.json   every number of the report, for scripts
 *     results.csv    one line per finished (run, seed)
 *
 *     rg_report rep;
 *     if (rg_report_load("runs/regain.db", "fashion-mnist", &rep, &err) ||
 *         rg_report_write(&rep, "runs/fashion-mnist/report", &err)) ...
 *     rg_report_free(&rep);
 *
 * Accuracies are in percent here (the store keeps fractions), differences
 * in percentage points. Values the store does not have are NaN (shown as
 * "—"). docs/report.md describes every table and chart.
 */
#ifndef REGAIN_REPORT_H
#define REGAIN_REPORT_H

#include <stdint.h>

#include "regain/stats.h"
#include "regain/status.h"

/* One epoch of a run name, averaged over the seeds that reached it. */
typedef struct {
    int32_t epoch;
    int32_t n;              /* seeds averaged */
    double train_loss, train_top1, test_loss, test_top1;
} rg_report_epoch;

/* One finished (run name, seed). */
typedef struct {
    int64_t seed;
    double test_top1, test_loss, best_top1;   /* top-1 in % */
    int32_t best_epoch;                       /* -1 when not recorded */
    double params, macs, model_bytes, latency_ms, train_s;
    int32_t cpu;            /* index into rg_report.cpus; -1 when its environment was not recorded */
} rg_report_seed;

/* A run name with its finished seeds (sorted by seed). */
typedef struct {
    char *name;
    int32_t n_seeds;
    rg_report_seed *seeds;
    rg_summary top1;        /* final test top-1 (%) over the seeds; interval clipped to [0, 100] */
    /* Means over the seeds that recorded them (NaN when none did); latency
     * and training time over the seeds timed on the report's timing CPU
     * only, when the seeds ran on more than one kind of CPU. */
    double params, macs, model_bytes, latency_ms, train_s;
    int32_t timed_elsewhere;    /* 1 when the seeds ran on several kinds of CPU and none of this run's
                                   on the timing CPU: its latency and training time are from others
                                   and do not compare with the other runs' */
    int32_t n_epochs;
    rg_report_epoch *epochs;
    int32_t is_teacher;     /* 1 when another run of the experiment distills from it
                               (its teacher, teacher2 or teacher3 is @NAME): a reference,
                               not a candidate for the best run */
    int32_t classes;        /* 0 when no seed recorded a confusion matrix */
    int64_t *confusion;     /* classes x classes, rows = true label, summed over seeds */
} rg_report_run;

/* A comparison the recipe names: treatment against baseline, paired by seed. */
typedef struct {
    char *name, *baseline, *treatment;
    int32_t n_pairs;
    int64_t *seeds;         /* the seeds both finished, ascending */
    rg_paired diff;         /* treatment - baseline, percentage points */
    /* The reference run: the recipe's `reference` for this comparison, else,
     * when the treatment is distilled from a teacher run of this experiment
     * (its `teacher` key refers to it), that run; and the fraction of the
     * reference-baseline gap the treatment closes, diff.mean / (reference
     * mean - baseline mean), NaN when the reference is not better than the
     * baseline. NULL and NaN otherwise. */
    char *reference;
    double gap_closed;
} rg_report_comparison;

/* One kind of CPU the seeds ran on: its model and instruction sets, as
 * the environment records them (the same model name can hide machines
 * with and without AVX-512, whose times differ twofold). */
typedef struct {
    char *model, *features;
    int32_t n_seeds;        /* finished (run, seed) rows that ran on it */
} rg_report_cpu;

/* One distinct environment the runs were recorded in. */
typedef struct {
    char *git_commit, *compiler, *cpu_model, *cpu_features, *hostname, *regain_version;
    char *blas_core;        /* OpenBLAS's kernels; NULL in stores from before schema version 5 */
    int32_t threads;        /* -1 when not recorded */
    int32_t n_runs;         /* finished (run, seed) rows that recorded it */
} rg_report_env;

typedef struct {
    char *experiment;
    char *store_path;
    char *recipe_path;      /* NULL when not recorded */
    char *updated_at;       /* the experiment's last update, as the store has it */
    int32_t n_runs;
    rg_report_run *runs;    /* in the order the names first appear in the store */
    int32_t n_comparisons;
    rg_report_comparison *comparisons;
    int32_t n_envs;
    rg_report_env *envs;
    int32_t n_cpus;
    rg_report_cpu *cpus;    /* in the order the runs first ran on them */
    int32_t timing_cpu;     /* the CPU most seeds ran on (the first of a tie), whose seeds alone give
                               the runs' latency and training time when there are several; -1 with none */
    int32_t best;           /* index of the run with the highest mean top-1, teachers
                               left out unless every run is one */
    int32_t n_pending, n_running, n_failed;   /* (run, seed) rows not finished */
} rg_report;

/* Reads experiment from the store at store_path, read-only, into *out.
 *
 * Errors (err names the file and the experiment): no such file
 * (RG_ERR_NOTFOUND), not a SQLite database or a schema version other than
 * RG_STORE_SCHEMA_VERSION (RG_ERR_FORMAT), an unknown experiment (the
 * message lists the known ones) or one with no finished run
 * (RG_ERR_NOTFOUND), a malformed value such as a confusion matrix that is
 * not a square JSON array of non-negative counts or an accuracy outside
 * [0, 1] (RG_ERR_FORMAT, naming the run and seed). A store that stays
 * locked longer than a few seconds gives RG_ERR_IO. On failure *out is
 * zeroed. Release with rg_report_free. */
rg_status rg_report_load(const char *store_path, const char *experiment, rg_report *out, rg_error *err);

/* Releases what *r owns and zeroes it; safe on a zeroed report. */
void rg_report_free(rg_report *r);

/* The files rg_report_write writes, NULL-terminated. */
extern const char *const rg_report_files[];

/* Creates out_dir (and its parents) if needed and writes the files of
 * rg_report_files into it, each atomically (fileio.h). The content depends
 * only on *r: the same store gives the same files. Errors are RG_ERR_IO
 * naming the directory or file, or RG_ERR_NOMEM. */
rg_status rg_report_write(const rg_report *r, const char *out_dir, rg_error *err);

#endif
