/* The regain command: shared pieces of the subcommands. Only this folder
 * prints for users and exits. */
#ifndef REGAIN_TOOLS_CLI_H
#define REGAIN_TOOLS_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "regain/status.h"
#include "regain/trainer.h"

/* Exit codes (documented in docs/cli.md). */
enum {
    EXIT_OK = 0,
    EXIT_FAILURE_OTHER = 1,
    EXIT_USAGE = 2,      /* bad command line */
    EXIT_IO = 3,         /* a file could not be read or written */
    EXIT_BAD_INPUT = 4,  /* a file is malformed: data, spec, checkpoint */
    EXIT_NOT_FOUND = 5,  /* unknown model, missing dataset */
    EXIT_NO_MEMORY = 6,
    EXIT_STOPPED = 130   /* stopped by SIGINT or SIGTERM; the work resumes (128 + SIGINT, as shells say) */
};

int cli_exit_code(rg_status st);
/* Prints "regain: <message>" to stderr and returns the exit code for st. */
int cli_fail(const rg_error *err);
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Reads a whole text file (at most 1 MiB) NUL-terminated; NULL on error. */
char *cli_read_text(const char *path, rg_error *err);

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_models(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_runs(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_bench(int argc, char **argv);
/* regain bench int8 (tools/cmd_bench_int8.c); argv[1] is "int8" */
int cmd_bench_int8(int argc, char **argv);
/* regain bench int8 MODEL (tools/cmd_bench_int8_model.c) */
int cmd_bench_int8_model(int argc, char **argv);
int cmd_augment_preview(int argc, char **argv);
int cmd_qat(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_quant_report(int argc, char **argv);
/* the int8 runtime (tools/cmd_rt.c); regain eval hands .rgm models to cmd_eval_rgm */
int cmd_export_rgm(int argc, char **argv);
int cmd_rt_info(int argc, char **argv);
int cmd_infer(int argc, char **argv);
int cmd_eval_rgm(int argc, char **argv);
/* regain export --c (tools/cmd_export.c) */
int cmd_export(int argc, char **argv);

/* Stopping on request (stop.c). After cli_stop_on_signals, the first
 * SIGINT or SIGTERM only asks to stop: cli_stop_asked turns nonzero, and
 * training stops after its current step with its state saved, to resume.
 * A second one stops the command at once (the steps since the last save
 * are lost). A child process (regain run --jobs) keeps asking on every
 * signal: its parent stops it, and it dies with the parent. */
void cli_stop_on_signals(void);
int cli_stop_asked(void *unused);

/* Result tables (tables.c). */
void cli_print_eval(FILE *f, const rg_eval_result *r, double wall_s);

/* Progress display (progress.c): a bar on a terminal, plain lines otherwise. */
typedef struct {
    int tty;
    double last_draw;
    int32_t last_quarter;
} cli_progress;
void cli_progress_init(cli_progress *p);
void cli_progress_update(cli_progress *p, const rg_train_progress *pr);
void cli_progress_clear(cli_progress *p);
void cli_format_duration(double s, char *buf, size_t size);
/* Seconds on the monotonic clock (for durations). */
double cli_now_s(void);

#endif
