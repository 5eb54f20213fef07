/* regain train: options -> configuration -> trainer, with progress and a
 * final results table. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void help(void)
{
    printf("usage: regain train [--KEY VALUE ...] [--config FILE] [--out RUN_DIR] [--overwrite]\n"
           "       regain train --resume RUN_DIR [--threads N] [--workers N]\n"
           "\n"
           "Trains a model, evaluates it on the test set after every epoch, and keeps\n"
           "RUN_DIR/last.safetensors (resumable) and RUN_DIR/best.safetensors, with\n"
           "metrics.csv and config.txt. RUN_DIR defaults to runs/<model>-seed<seed>.\n"
           "A killed run continues with --resume and ends bit-identical; an existing\n"
           "run is only replaced with --overwrite. Ctrl-C (or SIGTERM) stops after the\n"
           "current step and saves the state there, to resume; a second one stops at once.\n"
           "\n"
           "keys (--key value, or key = value lines in --config FILE):\n");
    for (const rg_config_key_help *k = rg_train_config_keys(); k->key; k++)
        printf("  --%-20s %s (default %s)\n", k->key, k->help, k->default_value);
    printf("\nexample: regain train --model mbv2-tiny --epochs 15 --lr 0.1 --out runs/mbv2\n");
}

typedef struct {
    cli_progress bar;
} train_ui;

static void on_progress(void *user, const rg_train_progress *p)
{
    cli_progress_update(&((train_ui *)user)->bar, p);
}

static void on_epoch(void *user, const rg_epoch_metrics *m)
{
    train_ui *ui = user;
    cli_progress_clear(&ui->bar);
    char dur[32];
    cli_format_duration(m->seconds, dur, sizeof dur);
    fprintf(stderr, "epoch %3d  lr %.4g  train loss %.4f  train %.2f%%  test loss %.4f  test %.2f%%", m->epoch, m->lr,
            m->train_loss, 100 * m->train_top1, m->test_loss, 100 * m->test_top1);
    if (m->val_top1 >= 0) fprintf(stderr, "  val %.2f%%", 100 * m->val_top1);
    fprintf(stderr, "  %s  %.0f img/s%s\n", dur, m->images_per_s, m->is_best ? "  *best" : "");
}

static void on_note(void *user, const char *msg)
{
    (void)user;
    fprintf(stderr, "%s\n", msg);
}

int cmd_train(int argc, char **argv)
{
    rg_train_config cfg;
    rg_train_config_default(&cfg);
    rg_error err = {0};
    const char *out = NULL, *resume = NULL;
    int overwrite = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help();
            return EXIT_OK;
        }
        if (!strcmp(a, "--overwrite")) {
            overwrite = 1;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) return cli_usage_error("train", "unexpected argument '%s'", a);
        if (i + 1 >= argc) return cli_usage_error("train", "option %s needs a value", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--out")) {
            out = v;
        } else if (!strcmp(a, "--resume")) {
            resume = v;
        } else if (!strcmp(a, "--config")) {
            char *text = cli_read_text(v, &err);
            if (!text || rg_train_config_parse(&cfg, text, v, &err)) {
                free(text);
                return cli_fail(&err);
            }
            free(text);
        } else {
            char key[64];
            snprintf(key, sizeof key, "%s", a + 2);
            for (char *c = key; *c; c++)
                if (*c == '-') *c = '_';
            if (rg_train_config_set(&cfg, key, v, &err)) return cli_usage_error("train", "%s", err.msg);
        }
    }
    char dir[600];
    if (resume) snprintf(dir, sizeof dir, "%s", resume);
    else if (out) snprintf(dir, sizeof dir, "%s", out);
    else snprintf(dir, sizeof dir, "runs/%s-seed%lld", cfg.model, (long long)cfg.seed);
    if (!resume && rg_train_config_validate(&cfg, &err)) return cli_usage_error("train", "%s", err.msg);
    if (!resume && !overwrite) {
        /* never replace a run by accident: it may be one to resume */
        char last[700];
        snprintf(last, sizeof last, "%s/last.safetensors", dir);
        if (access(last, F_OK) == 0)
            return cli_usage_error("train", "%s already holds a run: continue it with --resume %s, or replace it with "
                                            "--overwrite",
                                   dir, dir);
    }

    train_ui ui;
    cli_progress_init(&ui.bar);
    rg_train_hooks hooks = {&ui, on_progress, on_epoch, on_note, cli_stop_asked};
    rg_train_result res;
    cli_stop_on_signals();
    if (!resume)
        fprintf(stderr, "training %s on %s for %d epochs (batch %d, %s lr %g, seed %lld) -> %s\n", cfg.model, cfg.data,
                cfg.epochs, cfg.batch, cfg.optim, cfg.lr, (long long)cfg.seed, dir);
    rg_status st = rg_train_run(&cfg, dir, resume != NULL, &hooks, &res, &err);
    cli_progress_clear(&ui.bar);
    if (st == RG_ERR_STOPPED) fprintf(stderr, "regain: %s: continue with regain train --resume %s\n", err.msg, dir);
    if (st) return st == RG_ERR_STOPPED ? EXIT_STOPPED : cli_fail(&err);
    printf("\nrun %s: %d epochs in this call; best selection accuracy %.2f%% at epoch %d\n", dir, res.epochs_run,
           100.0 * res.best_top1, res.best_epoch);
    printf("final weights on the test set:\n");
    cli_print_eval(stdout, &res.final, res.wall_s);
    rg_train_result_free(&res);
    return EXIT_OK;
}
