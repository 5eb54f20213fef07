/* regain — command-line entry point: dispatches to the subcommands. */
#include "cli.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "regain/cpu.h"
#include "regain/fileio.h"

static const char *usage_text =
    "regain — win back the accuracy small networks lose on edge devices\n"
    "\n"
    "usage: regain <command> [options]\n"
    "\n"
    "commands:\n"
    "  train            train a model (regain train --model mbv2-tiny --epochs 15)\n"
    "  eval             evaluate a checkpoint (or a .rgm int8 model) on a dataset's test split\n"
    "  info             describe a checkpoint\n"
    "  models           list the model zoo with parameters, MACs and activation memory\n"
    "  run              run a recipe: every run and seed, cached by content hash (recipes/)\n"
    "  runs             list the runs of the experiment store (table or --json)\n"
    "  report           an experiment's report: tables, charts, statistics (report.html)\n"
    "  bench            images/s, latency, memory and per-layer profile of a model\n"
    "  augment-preview  a PNG of one training batch before and after augmentation\n"
    "  qat              quantization-aware fine-tuning of a float checkpoint (int8, W4A8)\n"
    "  quantize         post-training int8 quantization: float vs int8 top-1 (--out: the int8 model)\n"
    "  quant-report     the quantization doctor: per-layer SQNR, weight ranges, remedies\n"
    "  export-rgm       lower a checkpoint to int8 and write the runtime's model file (.rgm)\n"
    "  rt-info          describe a .rgm model: arena, flash, per-layer table\n"
    "  infer            predictions of a .rgm model with the int8 runtime\n"
    "  export           a .rgm model as a C99 library for microcontrollers (--c DIR)\n"
    "\n"
    "'regain <command> --help' describes each command. Exit codes: 0 success,\n"
    "1 other failure, 2 bad command line, 3 I/O error, 4 malformed input file,\n"
    "5 not found, 6 out of memory, 130 stopped by Ctrl-C or SIGTERM (train and run\n"
    "save their state first, and resume where they stopped).\n";

int cli_exit_code(rg_status st)
{
    switch (st) {
    case RG_OK: return EXIT_OK;
    case RG_ERR_ARG: return EXIT_USAGE;
    case RG_ERR_IO: return EXIT_IO;
    case RG_ERR_FORMAT:
    case RG_ERR_SPEC:
    case RG_ERR_SHAPE:
    case RG_ERR_UNSUPPORTED: return EXIT_BAD_INPUT;
    case RG_ERR_NOTFOUND: return EXIT_NOT_FOUND;
    case RG_ERR_NOMEM: return EXIT_NO_MEMORY;
    case RG_ERR_STOPPED: return EXIT_STOPPED;
    }
    return EXIT_FAILURE_OTHER;
}

int cli_fail(const rg_error *err)
{
    fprintf(stderr, "regain: %s\n", err->msg[0] ? err->msg : rg_status_name(err->code));
    return cli_exit_code(err->code);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "regain %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see 'regain %s --help')\n", cmd);
    return EXIT_USAGE;
}

/* Settings that the OpenMP and OpenBLAS libraries read once, when they are
 * loaded, before main() runs: when one of them needs setting, regain sets
 * it and re-executes itself (once: the second process finds them set). If
 * that fails, it carries on with the libraries' own choices.
 *
 * OpenMP threads that wait for work spin for about 3 ms by default. On a
 * machine shared with other processes the spinning threads take the cores
 * the working ones need, and training runs several times slower (measured:
 * 40 against 150 images/s for mbv2-tiny with two other busy processes).
 * Sleeping at once costs a wake-up at each of the hundred or so barriers of
 * a training step (about 6 % of mbv2-tiny's step on an idle 2-core VM). A
 * short spin, GOMP_SPINCOUNT=1000 (libgomp's own short spin for more
 * threads than cores), wins most of that back when idle (4.5 %) and loses
 * about as much beside a busy process; 3000 gained no more when idle and
 * lost 12 % when busy (docs/training.md). The user's OMP_WAIT_POLICY stands.
 *
 * OpenBLAS falls back to SSE3 kernels on CPUs newer than its release
 * (regain/cpu.h); OPENBLAS_CORETYPE names the kernels this CPU can run. */
static void set_library_environment(char **argv)
{
    int changed = 0;
    if (!getenv("OMP_WAIT_POLICY"))
        changed |= setenv("OMP_WAIT_POLICY", "passive", 0) == 0 && setenv("GOMP_SPINCOUNT", "1000", 0) == 0;
    const char *coretype = rg_blas_coretype_advice();
    if (coretype) changed |= setenv("OPENBLAS_CORETYPE", coretype, 1) == 0;
    if (changed) execv("/proc/self/exe", argv);
}

char *cli_read_text(const char *path, rg_error *err)
{
    void *data;
    size_t size;
    if (rg_read_file(path, (size_t)1 << 20, &data, &size, err)) return NULL;
    char *text = realloc(data, size + 1);
    if (!text) {
        free(data);
        rg_fail(err, RG_ERR_NOMEM, "out of memory reading %s", path);
        return NULL;
    }
    text[size] = 0;
    if (strlen(text) != size) {
        free(text);
        rg_fail(err, RG_ERR_FORMAT, "%s: not a text file (holds a NUL byte)", path);
        return NULL;
    }
    return text;
}

int main(int argc, char **argv)
{
    set_library_environment(argv);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {{"train", cmd_train},
                {"eval", cmd_eval},
                {"info", cmd_info},
                {"models", cmd_models},
                {"run", cmd_run},
                {"runs", cmd_runs},
                {"report", cmd_report},
                {"bench", cmd_bench},
                {"augment-preview", cmd_augment_preview},
                {"qat", cmd_qat},
                {"quantize", cmd_quantize},
                {"quant-report", cmd_quant_report},
                {"export-rgm", cmd_export_rgm},
                {"rt-info", cmd_rt_info},
                {"infer", cmd_infer},
                {"export", cmd_export}};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (!strcmp(argv[1], cmds[i].name)) return cmds[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "regain: unknown command '%s'\n\n%s", argv[1], usage_text);
    return EXIT_USAGE;
}
