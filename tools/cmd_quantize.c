/* regain quantize: post-training quantization of a checkpoint to int8, and
 * the option parsing and calibration set shared with regain quant-report. */
#include "cli.h"
#include "quant_cli.h"
#include "regain/checkpoint.h"
#include "regain/data.h"
#include "regain/equalize.h"
#include "regain/rng.h"
#include "regain/rt_qmodel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *const cli_quant_options_help =
    "  --calib N           calibration images, a seeded subset of the training set (default 512)\n"
    "  --observer KIND     activation ranges: minmax (default), moving-average, percentile, mse, entropy\n"
    "  --percentile P      percentile observer's p in (50, 100] (default 99.99)\n"
    "  --per-tensor        one weight scale per layer (default: one per output channel)\n"
    "  --equalize          cross-layer equalization (ReLU6-safe) before calibration\n"
    "  --bias-correct      empirical bias correction of the weight quantization error\n"
    "  --adaround          learned weight rounding (AdaRound) on the calibration images\n"
    "  --requant RULE      fixed (default: integer multipliers, TFLite's reference kernels and CMSIS-NN) or\n"
    "                      fp32 (float scales, as XNNPACK and ONNX Runtime; faster on x86): conv, depthwise, fc, add\n"
    "  --data DIR          dataset (default fashion-mnist)\n"
    "  --seed N            seed of the calibration subset (default 0)\n"
    "  --batch N           images per pass (default 64)\n"
    "  --threads N         threads of the float evaluation (default: all)\n";

/* Returns -1 to go on, or the exit code. */
int cli_quant_parse(const char *cmd, int argc, char **argv, cli_quant_opts *o, const char *usage)
{
    memset(o, 0, sizeof *o);
    o->data = "fashion-mnist";
    o->calib = 512;
    o->batch = 64;
    o->lower = rg_lower_default();
    double percentile = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            return EXIT_OK;
        }
        if (!strcmp(a, "--per-tensor")) o->lower.per_channel = 0;
        else if (!strcmp(a, "--equalize")) o->lower.equalize = 1;
        else if (!strcmp(a, "--bias-correct")) o->lower.bias_correct = 1;
        else if (!strcmp(a, "--adaround")) o->lower.adaround = 1;
        else if (strncmp(a, "--", 2) != 0) {
            if (o->ckpt) return cli_usage_error(cmd, "only one checkpoint, got '%s' and '%s'", o->ckpt, a);
            o->ckpt = a;
        } else {
            if (i + 1 >= argc) return cli_usage_error(cmd, "option %s needs a value", a);
            const char *v = argv[++i];
            char *end;
            long n = strtol(v, &end, 10);
            int is_num = *v && !*end;
            if (!strcmp(a, "--calib")) {
                if (!is_num || n < 1 || n > 1000000)
                    return cli_usage_error(cmd, "--calib must be a number of images >= 1, got '%s'", v);
                o->calib = (int32_t)n;
            } else if (!strcmp(a, "--observer")) {
                rg_obs_kind kind;
                rg_error e = {0};
                if (rg_obs_kind_parse(v, &kind, &e)) return cli_usage_error(cmd, "--observer: %s", e.msg);
                o->lower.observer = rg_obs_default(kind);
            } else if (!strcmp(a, "--percentile")) {
                percentile = strtod(v, &end);
                if (!*v || *end || !(percentile > 50 && percentile <= 100))
                    return cli_usage_error(cmd, "--percentile must be in (50, 100], got '%s'", v);
            } else if (!strcmp(a, "--requant")) {
                if (strcmp(v, "fixed") && strcmp(v, "fp32"))
                    return cli_usage_error(cmd, "--requant must be fixed or fp32, got '%s'", v);
                o->requant_fp32 = !strcmp(v, "fp32");
            } else if (!strcmp(a, "--data")) o->data = v;
            else if (!strcmp(a, "--out")) o->out = v;
            else if (!strcmp(a, "--seed") && is_num && n >= 0) o->seed = (uint64_t)n;
            else if (!strcmp(a, "--batch") && is_num && n >= 1 && n <= 4096) o->batch = (int32_t)n;
            else if (!strcmp(a, "--limit") && is_num && n >= 0) o->limit = (int32_t)n;
            else if (!strcmp(a, "--threads") && is_num && n >= 0 && n <= 1024) o->threads = (int32_t)n;
            else return cli_usage_error(cmd, "unknown option or bad value: %s %s", a, v);
        }
    }
    if (percentile > 0) {
        if (o->lower.observer.kind != RG_OBS_PERCENTILE)
            return cli_usage_error(cmd, "--percentile needs --observer percentile");
        o->lower.observer.percentile = percentile;
    }
    if (!o->ckpt) return cli_usage_error(cmd, "missing the checkpoint to quantize");
    o->lower.batch = o->batch;
    return -1;
}

static void progress(void *user, const char *stage, int32_t done, int32_t total)
{
    int32_t *last = user;
    int32_t quarter = (int32_t)(4LL * done / (total > 0 ? total : 1));
    if (done == total || quarter > *last) {
        fprintf(stderr, "  %-13s %6d / %d %s\n", stage, (int)done, (int)total,
                strcmp(stage, "adaround") ? "images" : "layers");
        *last = done == total ? -1 : quarter;
    }
}

rg_status cli_quant_prepare(const cli_quant_opts *o, cli_quant_ctx *c, rg_error *err)
{
    memset(c, 0, sizeof *c);
    rg_status st = rg_checkpoint_load(o->ckpt, 1, &c->g, &c->f, err);
    if (st) return st;
    rg_checkpoint_normalization(c->f, &c->mean, &c->std);
    rg_dataset train = {0};
    if ((st = rg_dataset_load(o->data, "train", &train, err))) return st;
    const rg_shape in = c->g->values[c->g->input].shape;
    if (train.h != in.h || train.w != in.w || train.c != in.c) {
        /* the message quotes the dataset: written before it is freed */
        st = rg_fail(err, RG_ERR_SHAPE, "%s: images are %dx%dx%d, the model takes %dx%dx%d", train.source, (int)train.h,
                     (int)train.w, (int)train.c, (int)in.h, (int)in.w, (int)in.c);
        rg_dataset_free(&train);
        return st;
    }
    st = rg_ptq_calibration(&train, o->calib, o->seed, c->mean, c->std, &c->calib, &c->n_calib, err);
    rg_dataset_free(&train);
    return st;
}

void cli_quant_ctx_free(cli_quant_ctx *c)
{
    rg_qmodel_free(c->m);
    rg_graph_free(c->g);
    rg_st_free(c->f);
    free(c->calib);
    memset(c, 0, sizeof *c);
}

rg_status cli_quant_lower(const cli_quant_opts *o, cli_quant_ctx *c, rg_error *err)
{
    rg_lower_config cfg = o->lower;
    int32_t last = -1;
    cfg.progress = progress;
    cfg.progress_user = &last;
    fprintf(stderr, "quantizing %s: %d calibration images, observer %s, %s weights%s%s%s\n", o->ckpt,
            (int)c->n_calib, rg_obs_kind_name(cfg.observer.kind), cfg.per_channel ? "per-channel" : "per-tensor",
            cfg.equalize ? ", equalization" : "", cfg.adaround ? ", AdaRound" : "",
            cfg.bias_correct ? ", bias correction" : "");
    rg_status st = rg_quant_lower(c->g, c->calib, c->n_calib, &cfg, &c->m, err);
    if (!st && o->requant_fp32) st = rg_qmodel_use_fp32(c->m, err);
    return st;
}

static void eval_progress(void *user, int32_t done, int32_t total) { progress(user, "evaluate", done, total); }

int cmd_quantize(int argc, char **argv)
{
    static const char *const usage_head =
        "usage: regain quantize CHECKPOINT [--calib N] [--observer KIND] [--per-tensor] [--equalize]\n"
        "                       [--bias-correct] [--adaround] [--requant fixed|fp32] [--data DIR] [--limit N]\n"
        "                       [--out FILE] [...]\n"
        "\n"
        "Post-training quantization to int8: calibrates activation ranges on a seeded subset of\n"
        "the training set, lowers the model (batch norms folded, activations fused), evaluates\n"
        "the int8 model with the int8 runtime (the integer reference kernels' bits) on the\n"
        "test set and prints float top-1, int8 top-1 and their difference. Progress goes to\n"
        "stderr.\n"
        "\n";
    char usage[4096];
    snprintf(usage, sizeof usage, "%s%s%s", usage_head, cli_quant_options_help,
             "  --limit N           evaluate on the first N test images only (default: all)\n"
             "  --out FILE          write the int8 model for the runtime (.rgm: regain rt-info, infer, eval, export)\n");
    cli_quant_opts o;
    int rc = cli_quant_parse("quantize", argc, argv, &o, usage);
    if (rc >= 0) return rc;
    rg_set_threads(o.threads);
    rg_error err = {0};
    cli_quant_ctx c;
    rg_dataset test = {0}, head = {0};
    rg_eval_result fr = {0}, qr = {0};
    double t0 = cli_now_s();
    rg_status st = cli_quant_prepare(&o, &c, &err);
    if (!st) st = rg_dataset_load(o.data, "test", &test, &err);
    if (!st && o.limit > 0 && o.limit < test.n) {
        st = rg_dataset_head(&test, o.limit, &head, &err);
        if (!st) {
            rg_dataset_free(&test);
            test = head;
        }
    }
    /* float first: lowering replans the graph */
    if (!st) st = rg_graph_plan(c.g, o.batch, RG_PLAN_EVAL, &err);
    if (!st) {
        fprintf(stderr, "evaluating the float model on %d test images\n", (int)test.n);
        st = rg_evaluate(c.g, &test, c.mean, c.std, &fr, &err);
    }
    if (!st) st = cli_quant_lower(&o, &c, &err);
    if (!st) {
        fprintf(stderr, "evaluating the int8 model on %d test images\n", (int)test.n);
        int32_t last = -1;
        st = rg_qmodel_evaluate_rt(c.m, &test, c.mean, c.std, eval_progress, &last, &qr, &err);
    }
    if (!st && o.out) st = rg_rgm_write_qmodel(c.m, c.mean, c.std, o.out, &err);
    if (!st) {
        double q1 = qr.top1;
        printf("%s on %s (test split, %d images)\n\n", o.ckpt, test.source, (int)test.n);
        printf("  calibration   %d images (seed %llu), observer %s\n", (int)c.n_calib, (unsigned long long)o.seed,
               rg_obs_kind_name(o.lower.observer.kind));
        printf("  weights       %s%s%s%s\n", o.lower.per_channel ? "per-channel" : "per-tensor",
               o.lower.equalize ? ", equalized" : "", o.lower.adaround ? ", AdaRound" : "",
               o.lower.bias_correct ? ", bias-corrected" : "");
        printf("  requantize    %s\n", o.requant_fp32 ? "fp32 scales" : "fixed-point multipliers");
        printf("  int8 arena    %zu bytes per image (liveness plan; %zu unplanned)\n\n", c.m->image_bytes,
               c.m->tensor_bytes);
        printf("  %-8s %9s\n", "model", "top-1 %");
        printf("  %-8s %9s\n", "--------", "---------");
        printf("  %-8s %9.2f\n", "float", 100.0 * fr.top1);
        printf("  %-8s %9.2f\n", "int8", 100.0 * q1);
        printf("  %-8s %+9.2f\n", "diff", 100.0 * (q1 - fr.top1));
        if (o.out) printf("\n  wrote %s\n", o.out);
        char dur[32];
        cli_format_duration(cli_now_s() - t0, dur, sizeof dur);
        printf("\n  wall time     %s\n", dur);
    }
    rg_eval_result_free(&fr);
    rg_eval_result_free(&qr);
    rg_dataset_free(&test);
    cli_quant_ctx_free(&c);
    return st ? cli_fail(&err) : EXIT_OK;
}
