/* regain qat: quantization-aware fine-tuning of a float checkpoint. The
 * float run's configuration (model, data, normalization, batch, ...) is read
 * from the checkpoint, the QAT options are put on top, and the trainer runs
 * with init = the checkpoint (docs/quantization.md, section 13). */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "regain/safetensors.h"

static void help(void)
{
    printf("usage: regain qat CHECKPOINT --out RUN_DIR [--epochs N] [--lr LR] [--bits 8|4] [--per-tensor]\n"
           "                  [--lsq] [--freeze-bn E] [--freeze-observers E] [--self-distill] [--KEY VALUE ...]\n"
           "\n"
           "Fine-tunes the float model of CHECKPOINT (a regain training checkpoint)\n"
           "with fake quantization: weights int8 per output channel (or per tensor,\n"
           "or 4-bit with --bits 4: W4A8), activations int8 per tensor, batch norms\n"
           "folded. The accuracy it reports is the int8 model's: the fake-quantized\n"
           "graph is integer-exact. The run is an ordinary training run (resume it\n"
           "with regain train --resume RUN_DIR).\n"
           "\n"
           "  --epochs N             QAT epochs (default 3)\n"
           "  --lr LR                peak learning rate (default: the float run's / 20)\n"
           "  --bits 8|4             weight bits (default 8)\n"
           "  --per-tensor           one weight scale per tensor\n"
           "  --lsq                  learned step sizes (LSQ)\n"
           "  --freeze-bn E          epoch (0-based) from which batch norms use running statistics\n"
           "                         (default: the last epoch; never with --lsq; -1 = never)\n"
           "  --freeze-observers E   epoch from which activation ranges are frozen (default: the last)\n"
           "  --self-distill         distil from the float model (teacher = CHECKPOINT, kd_alpha 0.5)\n"
           "  --KEY VALUE            any training key (regain train --help)\n"
           "\n"
           "example: regain qat runs/mbv2/best.safetensors --epochs 3 --lsq --out runs/mbv2-qat\n");
}

static void on_epoch(void *user, const rg_epoch_metrics *m)
{
    (void)user;
    fprintf(stderr, "epoch %3d  lr %.4g  train loss %.4f  train %.2f%%  test (int8) %.2f%%%s\n", m->epoch, m->lr,
            m->train_loss, 100 * m->train_top1, 100 * m->test_top1, m->is_best ? "  *best" : "");
}

static void on_note(void *user, const char *msg)
{
    (void)user;
    fprintf(stderr, "%s\n", msg);
}

int cmd_qat(int argc, char **argv)
{
    rg_error err = {0};
    const char *ck = NULL, *out = NULL;
    int epochs_set = 0, lr_set = 0, fbn_set = 0, fobs_set = 0, self_distill = 0, overwrite = 0;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            help();
            return EXIT_OK;
        }
    if (argc < 2 || !strncmp(argv[1], "--", 2)) return cli_usage_error("qat", "missing the float CHECKPOINT");
    ck = argv[1];
    rg_st_file *f;
    if (rg_st_read(ck, &f, &err)) return cli_fail(&err);
    const char *text = rg_st_meta_get(f, "regain.train_config");
    if (!text) {
        rg_st_free(f);
        return cli_usage_error("qat", "%s holds no training configuration (regain.train_config): not a regain run's "
                                      "checkpoint", ck);
    }
    rg_train_config cfg;
    rg_train_config_default(&cfg);
    rg_status st = rg_train_config_parse(&cfg, text, ck, &err);
    rg_st_free(f);
    if (st) return cli_fail(&err);
    if (cfg.qat) return cli_usage_error("qat", "%s is already a QAT run's checkpoint", ck);
    /* the float run's own teachers, curriculum and schedule are not the fine-tuning's */
    cfg.teacher[0] = cfg.teacher2[0] = cfg.teacher3[0] = cfg.hints[0] = cfg.at[0] = 0;
    cfg.kd_alpha = 0.0f;
    cfg.warmup_epochs = 0.0f;
    snprintf(cfg.curriculum, sizeof cfg.curriculum, "none");
    cfg.ema = 0.0f;
    cfg.qat = 1;
    float float_lr = cfg.lr;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--per-tensor")) cfg.qat_per_tensor = 1;
        else if (!strcmp(a, "--lsq")) cfg.qat_lsq = 1;
        else if (!strcmp(a, "--self-distill")) self_distill = 1;
        else if (!strcmp(a, "--overwrite")) overwrite = 1;
        else if (strncmp(a, "--", 2) != 0) return cli_usage_error("qat", "unexpected argument '%s'", a);
        else if (i + 1 >= argc) return cli_usage_error("qat", "option %s needs a value", a);
        else {
            const char *v = argv[++i];
            char key[64];
            if (!strcmp(a, "--out")) {
                out = v;
                continue;
            }
            if (!strcmp(a, "--bits")) snprintf(key, sizeof key, "qat_weight_bits");
            else if (!strcmp(a, "--freeze-bn")) snprintf(key, sizeof key, "qat_freeze_bn"), fbn_set = 1;
            else if (!strcmp(a, "--freeze-observers")) snprintf(key, sizeof key, "qat_freeze_observers"), fobs_set = 1;
            else {
                snprintf(key, sizeof key, "%s", a + 2);
                for (char *c = key; *c; c++)
                    if (*c == '-') *c = '_';
                epochs_set |= !strcmp(key, "epochs");
                lr_set |= !strcmp(key, "lr");
            }
            if (rg_train_config_set(&cfg, key, v, &err)) return cli_usage_error("qat", "%s", err.msg);
        }
    }
    if (!out) return cli_usage_error("qat", "missing --out RUN_DIR");
    if (!epochs_set) cfg.epochs = 3;
    if (!lr_set) cfg.lr = float_lr / 20.0f;
    /* statistics and ranges move while the weights adapt, and are frozen for
     * the last epoch; except batch norms under LSQ: with them frozen,
     * training with learned scales degraded or diverged in our tests
     * (docs/quantization.md, "LSQ and the freeze") */
    if (!fbn_set) cfg.qat_freeze_bn = cfg.qat_lsq ? -1 : cfg.epochs > 1 ? cfg.epochs - 1 : 0;
    if (!fobs_set) cfg.qat_freeze_observers = cfg.epochs > 1 ? cfg.epochs - 1 : 0;
    if ((size_t)snprintf(cfg.init, sizeof cfg.init, "%s", ck) >= sizeof cfg.init)
        return cli_usage_error("qat", "checkpoint path is too long");
    if (self_distill) {
        snprintf(cfg.teacher, sizeof cfg.teacher, "%s", ck);
        if (cfg.kd_alpha == 0.0f) cfg.kd_alpha = 0.5f;
    }
    if (rg_train_config_validate(&cfg, &err)) return cli_usage_error("qat", "%s", err.msg);
    char last[700];
    snprintf(last, sizeof last, "%s/last.safetensors", out);
    if (!overwrite && access(last, F_OK) == 0)
        return cli_usage_error("qat", "%s already holds a run: continue it with regain train --resume %s, or replace "
                                      "it with --overwrite", out, out);
    fprintf(stderr, "QAT of %s (%s, %d-bit weights%s%s) for %d epochs, lr %g -> %s\n", ck, cfg.model,
            cfg.qat_weight_bits, cfg.qat_per_tensor ? " per tensor" : "", cfg.qat_lsq ? ", LSQ" : "", cfg.epochs,
            cfg.lr, out);
    rg_train_hooks hooks = {NULL, NULL, on_epoch, on_note, NULL};
    rg_train_result res;
    if ((st = rg_train_run(&cfg, out, 0, &hooks, &res, &err))) return cli_fail(&err);
    printf("\nQAT run %s: best selection accuracy %.2f%% at epoch %d\n", out, 100.0 * res.best_top1, res.best_epoch);
    printf("final int8 (integer-exact fake-quantized) model on the test set:\n");
    cli_print_eval(stdout, &res.final, res.wall_s);
    rg_train_result_free(&res);
    return EXIT_OK;
}
