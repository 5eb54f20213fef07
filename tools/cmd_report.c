/* regain report: an experiment's report from the experiment store. */
#include "cli.h"
#include "regain/report.h"

#include <stdio.h>
#include <string.h>

static const char *help_text =
    "usage: regain report EXPERIMENT [--store runs/regain.db] [--out DIR]\n"
    "\n"
    "Writes the report of EXPERIMENT (the name in its recipe) from the experiment\n"
    "store into DIR (default runs/EXPERIMENT/report):\n"
    "  report.md     summary over seeds, paired comparisons with confidence\n"
    "                intervals, p-values and verdicts, per-seed results,\n"
    "                confusion matrix of the best run, environment\n"
    "  report.html   the same with charts (self-contained: open it anywhere)\n"
    "  results.json  every number, for scripts\n"
    "  results.csv   one line per finished (run, seed)\n"
    "The store is only read, so a report can be made while runs go on.\n"
    "docs/report.md explains every table, chart and statistic.\n";

int cmd_report(int argc, char **argv)
{
    const char *experiment = NULL, *store = "runs/regain.db", *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(help_text, stdout);
            return EXIT_OK;
        }
        if (!strcmp(argv[i], "--store") || !strcmp(argv[i], "--out")) {
            if (i + 1 >= argc || !argv[i + 1][0]) return cli_usage_error("report", "%s needs a path", argv[i]);
            if (!strcmp(argv[i], "--store")) store = argv[++i];
            else out = argv[++i];
        } else if (argv[i][0] == '-') {
            return cli_usage_error("report", "unknown option '%s'", argv[i]);
        } else if (experiment) {
            return cli_usage_error("report", "one experiment at a time ('%s' and '%s')", experiment, argv[i]);
        } else {
            experiment = argv[i];
        }
    }
    if (!experiment || !experiment[0]) return cli_usage_error("report", "which experiment? (regain report EXPERIMENT)");
    char dir[4096];
    if (!out) {
        /* The name comes from a recipe; it must not steer the default path elsewhere. */
        if (strchr(experiment, '/') || !strcmp(experiment, ".."))
            return cli_usage_error("report", "experiment '%s' needs an explicit --out DIR", experiment);
        if ((size_t)snprintf(dir, sizeof dir, "runs/%s/report", experiment) >= sizeof dir)
            return cli_usage_error("report", "experiment name too long");
        out = dir;
    }
    rg_error err = {0};
    rg_report rep;
    if (rg_report_load(store, experiment, &rep, &err)) return cli_fail(&err);
    rg_status st = rg_report_write(&rep, out, &err);
    if (!st) {
        int32_t seeds = 0;
        for (int32_t i = 0; i < rep.n_runs; i++) seeds += rep.runs[i].n_seeds;
        printf("report of '%s': %d run%s, %d finished seed%s, %d comparison%s\n", experiment, rep.n_runs,
               rep.n_runs == 1 ? "" : "s", seeds, seeds == 1 ? "" : "s", rep.n_comparisons,
               rep.n_comparisons == 1 ? "" : "s");
        for (const char *const *f = rg_report_files; *f; f++) printf("  %s/%s\n", out, *f);
    }
    rg_report_free(&rep);
    return st ? cli_fail(&err) : EXIT_OK;
}
