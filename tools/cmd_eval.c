/* regain eval / regain info: read a checkpoint, evaluate or describe it. */
#include "cli.h"
#include "regain/checkpoint.h"
#include "regain/data.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int cmd_eval(int argc, char **argv)
{
    const char *ckpt = NULL, *data = "fashion-mnist", *split = "test";
    int32_t batch = 256, limit = 0, threads = 0;
    int raw = 0;
    /* an int8 model file goes to the integer runtime (tools/cmd_rt.c) */
    for (int i = 1; i < argc; i++) {
        size_t n = strlen(argv[i]);
        if (argv[i][0] != '-' && n > 4 && !strcmp(argv[i] + n - 4, ".rgm") && (i == 1 || argv[i - 1][0] != '-' ||
                                                                               !strcmp(argv[i - 1], "--raw")))
            return cmd_eval_rgm(argc, argv);
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: regain eval CHECKPOINT [--data fashion-mnist|DIR] [--split test|train]\n"
                   "                  [--batch N] [--limit N] [--threads N] [--raw]\n"
                   "\n"
                   "Evaluates a checkpoint (EMA weights when it has them, unless --raw) and prints\n"
                   "top-1 accuracy, per-class accuracy and the confusion matrix.\n"
                   "\n"
                   "regain eval MODEL.rgm [--data ...] [--split ...] [--limit N] runs an int8 model\n"
                   "file (regain export-rgm) with the integer runtime and prints its top-1 accuracy.\n");
            return EXIT_OK;
        }
        if (!strcmp(a, "--raw")) {
            raw = 1;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            if (ckpt) return cli_usage_error("eval", "only one checkpoint, got '%s' and '%s'", ckpt, a);
            ckpt = a;
            continue;
        }
        if (i + 1 >= argc) return cli_usage_error("eval", "option %s needs a value", a);
        const char *v = argv[++i];
        char *end;
        long n = strtol(v, &end, 10);
        int is_num = *v && !*end;
        if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--split")) split = v;
        else if (!strcmp(a, "--batch") && is_num && n >= 1 && n <= 65536) batch = (int32_t)n;
        else if (!strcmp(a, "--limit") && is_num && n >= 0) limit = (int32_t)n;
        else if (!strcmp(a, "--threads") && is_num && n >= 0 && n <= 1024) threads = (int32_t)n;
        else return cli_usage_error("eval", "unknown option or bad value: %s %s", a, v);
    }
    if (!ckpt) return cli_usage_error("eval", "missing the checkpoint to evaluate");
    rg_set_threads(threads);
    rg_error err = {0};
    rg_graph *g = NULL;
    rg_st_file *f = NULL;
    rg_dataset ds = {0}, head = {0};
    rg_eval_result r = {0};
    double t0 = cli_now_s();
    float mean, std;
    rg_status st = rg_checkpoint_load(ckpt, !raw, &g, &f, &err);
    if (!st) {
        rg_checkpoint_normalization(f, &mean, &std);
        st = rg_dataset_load(data, split, &ds, &err);
    }
    if (!st && limit > 0 && limit < ds.n) {
        st = rg_dataset_head(&ds, limit, &head, &err);
        if (!st) {
            rg_dataset_free(&ds);
            ds = head;
        }
    }
    if (!st) st = rg_graph_plan(g, batch, RG_PLAN_EVAL, &err);
    if (!st) st = rg_evaluate(g, &ds, mean, std, &r, &err);
    if (!st) {
        printf("%s on %s (%s split):\n", ckpt, ds.source, split);
        cli_print_eval(stdout, &r, cli_now_s() - t0);
    }
    rg_eval_result_free(&r);
    rg_dataset_free(&ds);
    rg_graph_free(g);
    rg_st_free(f);
    return st ? cli_fail(&err) : EXIT_OK;
}

int cmd_info(int argc, char **argv)
{
    const char *ckpt = NULL;
    int show_spec = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: regain info CHECKPOINT [--spec]\n\n"
                   "Describes a checkpoint: model, size, training progress and configuration;\n"
                   "--spec also prints the model spec it holds.\n");
            return EXIT_OK;
        }
        if (!strcmp(argv[i], "--spec")) show_spec = 1;
        else if (argv[i][0] == '-') return cli_usage_error("info", "unknown option '%s'", argv[i]);
        else if (ckpt) return cli_usage_error("info", "only one checkpoint");
        else ckpt = argv[i];
    }
    if (!ckpt) return cli_usage_error("info", "missing the checkpoint");
    rg_error err = {0};
    rg_graph *g;
    rg_st_file *f;
    if (rg_checkpoint_load(ckpt, 0, &g, &f, &err)) return cli_fail(&err);
    rg_graph_stats s;
    if (rg_graph_stats_compute(g, &s, &err)) {
        rg_graph_free(g);
        rg_st_free(f);
        return cli_fail(&err);
    }
    const char *v;
    printf("checkpoint      %s\n", ckpt);
    printf("model           %s\n", (v = rg_st_meta_get(f, "regain.model")) ? v : "(spec only)");
    printf("kind            %s\n", (v = rg_st_meta_get(f, "regain.kind")) ? v : "?");
    printf("parameters      %zu (%.1f KiB as float32)\n", s.params, (double)s.params * 4 / 1024);
    printf("MACs per image  %llu\n", (unsigned long long)s.macs);
    printf("activation peak %.1f KiB at batch 1\n", (double)s.peak_act_bytes / 1024);
    printf("tensors         %d\n", rg_st_count(f));
    if ((v = rg_st_meta_get(f, "regain.epoch"))) printf("epochs done     %s\n", v);
    if ((v = rg_st_meta_get(f, "regain.best_top1")) && strtod(v, NULL) >= 0)
        printf("best top-1      %.2f %% (epoch %s)\n", 100 * strtod(v, NULL),
               rg_st_meta_get(f, "regain.best_epoch") ? rg_st_meta_get(f, "regain.best_epoch") : "?");
    if ((v = rg_st_meta_get(f, "regain.dataset"))) printf("dataset         %s\n", v);
    if ((v = rg_st_meta_get(f, "regain.train_config"))) printf("\ntraining configuration:\n%s", v);
    if ((v = rg_st_meta_get(f, "regain.metrics_csv"))) printf("\nmetrics:\n%s", v);
    if (show_spec) printf("\nmodel spec:\n%s", rg_st_meta_get(f, "regain.spec"));
    rg_graph_free(g);
    rg_st_free(f);
    return EXIT_OK;
}
