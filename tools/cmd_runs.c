/* regain runs: the runs of the experiment store, as a table or JSON; and
 * `regain runs export|import`, which move runs between stores, with their
 * checkpoints when asked. */
#include "cli.h"
#include "regain/experiment.h"
#include "regain/store.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
    printf("usage: regain runs [--experiment E] [--name RUN] [--status pending|running|done|failed]\n"
           "                   [--json] [--store DB]\n"
           "       regain runs export EXPERIMENT --out FILE.json [--files DIR [--files-of RUN[:KIND]]...]\n"
           "                          [--store DB]\n"
           "       regain runs import FILE.json... [--files DIR] [--store DB]\n"
           "\n"
           "Lists the runs recorded in the experiment store (default runs/regain.db):\n"
           "run, seed, status, test top-1, parameters, wall time and content hash;\n"
           "--json prints every recorded field for scripts. Runs imported from a\n"
           "results file show the status 'imported'.\n"
           "\n"
           "export writes an experiment's finished runs (configuration, hash, metrics,\n"
           "checkpoint checksums, environment; not the checkpoints) to a JSON file;\n"
           "import adds them to a store, where `regain run` counts them as done and\n"
           "`regain report` reports them. A run split over machines is merged this way.\n"
           "An imported run that a run still to do depends on runs again first, to\n"
           "give back its checkpoints.\n"
           "\n"
           "--files DIR carries checkpoints too, each under its SHA-256 in DIR: the\n"
           "finished runs' checkpoints that --files-of names (RUN, RUN:best, RUN:last,\n"
           "RUN:int8, or '*' for all), and all files of each unfinished run, which\n"
           "then travels too and resumes from its last epoch where it is imported\n"
           "with --files DIR. Imported files are checked against their SHA-256.\n");
}

static void print_table(const rg_store_run_info *r, int32_t n)
{
    printf("%-24s %-20s %6s %-8s %10s %10s %9s  %s\n", "experiment", "run", "seed", "status", "test top-1",
           "params", "wall", "hash");
    for (int32_t i = 0; i < n; i++) {
        char acc[32] = "-", params[32] = "-", wall[32] = "-";
        if (r[i].has_final && !isnan(r[i].test_top1)) snprintf(acc, sizeof acc, "%.2f %%", 100.0 * r[i].test_top1);
        if (r[i].has_final) snprintf(params, sizeof params, "%lld", (long long)r[i].params);
        if (r[i].wall_s >= 0 && strcmp(r[i].status, "pending")) cli_format_duration(r[i].wall_s, wall, sizeof wall);
        const char *status = r[i].imported_from[0] && !strcmp(r[i].status, "done") ? "imported" : r[i].status;
        printf("%-24s %-20s %6lld %-8s %10s %10s %9s  %.12s\n", r[i].experiment, r[i].name, (long long)r[i].seed,
               status, acc, params, wall, r[i].hash[0] ? r[i].hash : "-");
    }
    if (!n) printf("(no runs match)\n");
}

static void add_number(cJSON *o, const char *key, double v, int present)
{
    if (present && !isnan(v)) cJSON_AddNumberToObject(o, key, v);
    else cJSON_AddNullToObject(o, key);
}

static void add_text(cJSON *o, const char *key, const char *v)
{
    if (v[0]) cJSON_AddStringToObject(o, key, v);
    else cJSON_AddNullToObject(o, key);
}

static int print_json(const rg_store_run_info *r, int32_t n)
{
    cJSON *arr = cJSON_CreateArray();
    for (int32_t i = 0; arr && i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        if (!o) break;
        cJSON_AddItemToArray(arr, o);
        cJSON_AddStringToObject(o, "experiment", r[i].experiment);
        cJSON_AddStringToObject(o, "run", r[i].name);
        cJSON_AddNumberToObject(o, "seed", (double)r[i].seed);
        cJSON_AddStringToObject(o, "kind", r[i].kind);
        cJSON_AddStringToObject(o, "status", r[i].status);
        add_text(o, "config_hash", r[i].hash);
        add_text(o, "run_dir", r[i].run_dir);
        add_text(o, "started_at", r[i].started_at);
        add_text(o, "finished_at", r[i].finished_at);
        add_text(o, "error", r[i].error);
        add_text(o, "imported_from", r[i].imported_from);
        add_number(o, "wall_s", r[i].wall_s, r[i].wall_s >= 0);
        int f = r[i].has_final;
        add_number(o, "test_top1", r[i].test_top1, f);
        add_number(o, "test_loss", r[i].test_loss, f);
        add_number(o, "best_top1", r[i].best_top1, f);
        add_number(o, "best_epoch", r[i].best_epoch, f);
        add_number(o, "params", (double)r[i].params, f);
        add_number(o, "macs", (double)r[i].macs, f);
        add_number(o, "model_bytes", (double)r[i].model_bytes, f);
        add_number(o, "latency_ms", r[i].latency_ms, f);
        add_number(o, "train_s", r[i].train_s, f);
    }
    char *text = arr ? cJSON_Print(arr) : NULL;
    cJSON_Delete(arr);
    if (!text) {
        fprintf(stderr, "regain: out of memory\n");
        return EXIT_NO_MEMORY;
    }
    printf("%s\n", text);
    free(text);
    return EXIT_OK;
}

/* regain runs export EXPERIMENT --out FILE [--files DIR [--files-of RUN[:KIND]]...] [--store DB] */
static int runs_export(int argc, char **argv)
{
    const char *store = "runs/regain.db", *name = NULL, *path = NULL;
    const char *of[64];
    rg_exp_export_options o = {.files_of = of};
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help();
            return EXIT_OK;
        }
        if (strncmp(a, "--", 2) != 0) {
            if (name) return cli_usage_error("runs export", "unexpected argument '%s'", a);
            name = a;
            continue;
        }
        if (i + 1 >= argc) return cli_usage_error("runs export", "option %s needs a value", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--out")) path = v;
        else if (!strcmp(a, "--store")) store = v;
        else if (!strcmp(a, "--files")) o.files_dir = v;
        else if (!strcmp(a, "--files-of")) {
            if (o.n_files_of == (int32_t)(sizeof of / sizeof of[0]))
                return cli_usage_error("runs export", "more than %d --files-of", o.n_files_of);
            of[o.n_files_of++] = v;
        } else return cli_usage_error("runs export", "unknown option '%s'", a);
    }
    if (!name) return cli_usage_error("runs export", "name the experiment to export");
    if (!path) return cli_usage_error("runs export", "--out FILE.json is required");
    if (o.n_files_of && !o.files_dir) return cli_usage_error("runs export", "--files-of needs --files DIR");
    rg_error err = {0};
    rg_store *s;
    if (rg_store_open(store, 1, &s, &err)) return cli_fail(&err);
    rg_exp_export_counts c;
    rg_status st = rg_exp_export(s, name, path, &o, &c, &err);
    rg_store_close(s);
    if (st) return cli_fail(&err);
    printf("%s: %d finished runs of experiment %s", path, c.finished, name);
    if (o.files_dir) printf(", %d unfinished; %d files in %s", c.unfinished, c.files, o.files_dir);
    printf("\n");
    if (c.changed)
        fprintf(stderr, "regain: %d checkpoints changed since their runs recorded them: not carried\n", c.changed);
    if (c.busy)
        fprintf(stderr, "regain: %d unfinished runs left out: a process is running them now (%s); stop it and "
                "export again to carry them\n", c.busy, c.busy_dir);
    return EXIT_OK;
}

/* regain runs import FILE... [--files DIR] [--store DB] */
static int runs_import(int argc, char **argv)
{
    const char *store = "runs/regain.db", *files_dir = NULL;
    int32_t files = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            help();
            return EXIT_OK;
        }
        if (!strcmp(argv[i], "--store") || !strcmp(argv[i], "--files")) {
            if (i + 1 >= argc) return cli_usage_error("runs import", "option %s needs a value", argv[i]);
            if (!strcmp(argv[i], "--store")) store = argv[i + 1];
            else files_dir = argv[i + 1];
            i++;
        } else if (!strncmp(argv[i], "--", 2)) {
            return cli_usage_error("runs import", "unknown option '%s'", argv[i]);
        } else {
            files++;
        }
    }
    if (!files) return cli_usage_error("runs import", "name the results files to import");
    rg_error err = {0};
    rg_store *s;
    if (rg_store_open(store, 0, &s, &err)) return cli_fail(&err);
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--store") || !strcmp(argv[i], "--files")) {
            i++;
            continue;
        }
        rg_store_import_counts c;
        int32_t placed;
        if (rg_exp_import(s, argv[i], files_dir, &c, &placed, &err)) {
            rg_store_close(s);
            return cli_fail(&err);
        }
        printf("%s: %d runs imported, %d already here", argv[i], c.imported, c.present);
        if (c.kept) printf(", %d kept as this store has them (another configuration, or running)", c.kept);
        if (files_dir) printf("; %d files put in place", placed);
        if (c.unfinished) printf("; %d unfinished runs left out (import with --files DIR to resume them)", c.unfinished);
        printf("\n");
    }
    rg_store_close(s);
    return EXIT_OK;
}

int cmd_runs(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "export")) return runs_export(argc, argv);
    if (argc > 1 && !strcmp(argv[1], "import")) return runs_import(argc, argv);
    const char *store = "runs/regain.db";
    rg_store_filter f = {0};
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help();
            return EXIT_OK;
        }
        if (!strcmp(a, "--json")) {
            json = 1;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) return cli_usage_error("runs", "unexpected argument '%s'", a);
        if (i + 1 >= argc) return cli_usage_error("runs", "option %s needs a value", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--experiment")) f.experiment = v;
        else if (!strcmp(a, "--name")) f.name = v;
        else if (!strcmp(a, "--store")) store = v;
        else if (!strcmp(a, "--status")) {
            if (strcmp(v, "pending") && strcmp(v, "running") && strcmp(v, "done") && strcmp(v, "failed"))
                return cli_usage_error("runs", "--status: '%s' is not pending, running, done or failed", v);
            f.status = v;
        } else {
            return cli_usage_error("runs", "unknown option '%s'", a);
        }
    }
    rg_error err = {0};
    rg_store *s;
    if (rg_store_open(store, 1, &s, &err)) return cli_fail(&err);
    rg_store_run_info *rows;
    int32_t n;
    rg_status st = rg_store_list_runs(s, &f, &rows, &n, &err);
    rg_store_close(s);
    if (st) return cli_fail(&err);
    int code = EXIT_OK;
    if (json) code = print_json(rows, n);
    else print_table(rows, n);
    free(rows);
    return code;
}
