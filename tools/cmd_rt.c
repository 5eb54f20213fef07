/* regain export-rgm / rt-info / infer, and regain eval on a .rgm model: the
 * int8 runtime (regain/rt.h) from the command line. */
#include "cli.h"
#include "regain/checkpoint.h"
#include "regain/data.h"
#include "regain/quant_model.h"
#include "regain/rt.h"
#include "regain/rt_qmodel.h"
#include "rt/kernels/qk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Reads an integer option value in [lo, hi]; 0 on success. */
static int int_value(const char *v, long lo, long hi, int32_t *out)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n < lo || n > hi) return -1;
    *out = (int32_t)n;
    return 0;
}

/* ---- export-rgm ---- */

int cmd_export_rgm(int argc, char **argv)
{
    const char *ckpt = NULL, *out = NULL, *data = "fashion-mnist";
    int32_t n_calib = 256;
    int raw = 0, per_tensor = 0, equalize = 0, fp32 = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: regain export-rgm CHECKPOINT --out MODEL.rgm [--calib N] [--data fashion-mnist|DIR]\n"
                   "                        [--per-tensor] [--equalize] [--requant fixed|fp32] [--raw]\n"
                   "\n"
                   "Lowers a trained checkpoint to int8 (batch norms folded, ReLUs fused,\n"
                   "activation ranges calibrated on the first N training images, default 256)\n"
                   "and writes the integer runtime's model file (docs/runtime.md). Weights are\n"
                   "quantized per output channel unless --per-tensor; the EMA weights are used\n"
                   "when the checkpoint has them, unless --raw. --equalize applies cross-layer\n"
                   "equalization first (ReLU6 layers then carry per-channel clamps). --requant fp32\n"
                   "requantizes conv, depthwise, fc and add layers with float scales instead of integer\n"
                   "multipliers (docs/quantization.md: faster on x86, not TFLite's reference rule).\n");
            return EXIT_OK;
        }
        if (!strcmp(a, "--raw")) raw = 1;
        else if (!strcmp(a, "--per-tensor")) per_tensor = 1;
        else if (!strcmp(a, "--equalize")) equalize = 1;
        else if (strncmp(a, "--", 2) != 0) {
            if (ckpt) return cli_usage_error("export-rgm", "only one checkpoint, got '%s' and '%s'", ckpt, a);
            ckpt = a;
        } else if (i + 1 >= argc) {
            return cli_usage_error("export-rgm", "option %s needs a value", a);
        } else {
            const char *v = argv[++i];
            if (!strcmp(a, "--out")) out = v;
            else if (!strcmp(a, "--data")) data = v;
            else if (!strcmp(a, "--requant")) {
                if (strcmp(v, "fixed") && strcmp(v, "fp32"))
                    return cli_usage_error("export-rgm", "--requant %s: need fixed or fp32", v);
                fp32 = !strcmp(v, "fp32");
            } else if (!strcmp(a, "--calib")) {
                if (int_value(v, 1, 100000, &n_calib))
                    return cli_usage_error("export-rgm", "--calib %s: need an integer in [1, 100000]", v);
            } else return cli_usage_error("export-rgm", "unknown option %s", a);
        }
    }
    if (!ckpt) return cli_usage_error("export-rgm", "missing the checkpoint");
    if (!out) return cli_usage_error("export-rgm", "missing --out MODEL.rgm");
    rg_error err = {0};
    rg_graph *g = NULL;
    rg_st_file *f = NULL;
    rg_dataset ds = {0};
    rg_qmodel *qm = NULL;
    float *calib = NULL;
    float mean = 0.0f, std = 1.0f;
    rg_status st = rg_checkpoint_load(ckpt, !raw, &g, &f, &err);
    if (!st) {
        rg_checkpoint_normalization(f, &mean, &std);
        st = rg_dataset_load(data, "train", &ds, &err);
    }
    if (!st) {
        rg_shape in = g->values[g->input].shape;
        if (ds.h != in.h || ds.w != in.w || ds.c != in.c)
            st = rg_fail(&err, RG_ERR_SHAPE, "%s: images are %dx%dx%d, the model takes %dx%dx%d", ds.source,
                         (int)ds.h, (int)ds.w, (int)ds.c, (int)in.h, (int)in.w, (int)in.c);
    }
    if (!st) {
        if (n_calib > ds.n) n_calib = ds.n;
        size_t n = (size_t)n_calib * ds.h * ds.w * ds.c;
        calib = malloc(sizeof(float) * n);
        if (!calib) st = rg_fail(&err, RG_ERR_NOMEM, "out of memory for %d calibration images", (int)n_calib);
        for (size_t i = 0; !st && i < n; i++) calib[i] = ((float)ds.pixels[i] / 255.0f - mean) / std;
    }
    rg_lower_config cfg = rg_lower_default();
    cfg.per_channel = !per_tensor;
    cfg.equalize = equalize;
    if (!st) st = rg_quant_lower(g, calib, n_calib, &cfg, &qm, &err);
    if (!st && fp32) st = rg_qmodel_use_fp32(qm, &err);
    if (!st) st = rg_rgm_write_qmodel(qm, mean, std, out, &err);
    if (!st) {
        rg_rgm *m;
        st = rg_rgm_load(out, &m, &err); /* what was written loads back */
        if (!st) {
            printf("%s: %d int8 ops, %d tensors, %zu bytes of parameters, calibrated on %d images of %s\n", out,
                   (int)m->n_ops, (int)m->n_tensors, rg_rgm_param_bytes(m), (int)n_calib, ds.source);
            rg_rgm_free(m);
        }
    }
    rg_qmodel_free(qm);
    free(calib);
    rg_dataset_free(&ds);
    rg_graph_free(g);
    rg_st_free(f);
    return st ? cli_fail(&err) : EXIT_OK;
}

/* ---- shared: load and prepare ---- */

static rg_status open_model(const char *path, rg_rgm **m, rg_rt **rt, void **arena, rg_error *err)
{
    *m = NULL, *rt = NULL, *arena = NULL;
    rg_status st = rg_rgm_load(path, m, err);
    if (!st) st = rg_rt_prepare(*m, NULL, rt, err);
    if (!st && !(*arena = rg_alloc_aligned(rg_rt_arena_size(*rt), err))) st = RG_ERR_NOMEM;
    return st;
}

static void close_model(rg_rgm *m, rg_rt *rt, void *arena)
{
    rg_free_aligned(arena);
    rg_rt_free(rt);
    rg_rgm_free(m);
}

/* ---- rt-info ---- */

int cmd_rt_info(int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: regain rt-info MODEL.rgm\n\n"
                   "Describes an int8 model file: arena (activation memory planned by liveness,\n"
                   "plus kernel scratch) against TFLite Micro's greedy plan, the naive sum and\n"
                   "the lower bound; flash (weights and parameters); and per layer the op,\n"
                   "shapes, weight bytes, activation bytes, multiply-accumulates and notes\n"
                   "(split channels, shuffle groups, lookup-table function, per-channel clamps).\n"
                   "The kernel table is the one this CPU runs (REGAIN_ISA lowers it).\n");
            return EXIT_OK;
        }
        if (argv[i][0] == '-') return cli_usage_error("rt-info", "unknown option '%s'", argv[i]);
        if (path) return cli_usage_error("rt-info", "only one model");
        path = argv[i];
    }
    if (!path) return cli_usage_error("rt-info", "missing the model file");
    rg_error err = {0};
    rg_rgm *m;
    rg_rt *rt;
    void *arena;
    if (open_model(path, &m, &rt, &arena, &err)) {
        int code = cli_fail(&err);
        close_model(m, rt, arena);
        return code;
    }
    rg_rt_plan_stats s;
    rg_rt_plan_stats_get(rt, &s);
    const rg_rgm_tensor *ti = &m->tensors[m->input], *to = &m->tensors[m->output];
    int64_t macs = 0;
    for (int32_t i = 0; i < m->n_ops; i++) macs += rg_rgm_op_macs(m, i);
    printf("model           %s (.rgm version %d)\n", path, (int)m->version);
    printf("input           %dx%dx%d int8 (scale %g, zero point %d); normalization mean %g std %g\n", (int)ti->h,
           (int)ti->w, (int)ti->c, (double)ti->q.scale, (int)ti->q.zero_point, (double)m->mean, (double)m->std);
    printf("output          %d int8 (scale %g, zero point %d)\n", (int)(to->h * to->w * to->c), (double)to->q.scale,
           (int)to->q.zero_point);
    printf("ops / tensors   %d / %d\n", (int)m->n_ops, (int)m->n_tensors);
    printf("requantization  %s\n", !strcmp(rg_rgm_requant_name(m), "fp32")
                                        ? "fp32 scales (conv, depthwise, fc, add)"
                                        : "fixed-point multipliers");
    printf("MACs per image  %lld\n", (long long)macs);
    printf("flash           %zu bytes (%.1f KiB) of weights, biases, requantization, clamps and tables\n",
           rg_rgm_param_bytes(m), (double)rg_rgm_param_bytes(m) / 1024);
    printf("kernels         %s (packed weights %zu bytes)\n", rg_rt_table_name(rt), rg_rt_packed_size(rt));
    printf("arena           %zu bytes (%.1f KiB): activations %zu + kernel scratch %zu\n", rg_rt_arena_size(rt),
           (double)rg_rt_arena_size(rt) / 1024, s.arena, s.scratch);
    printf("activation plan:\n");
    printf("  this runtime          %8zu bytes (liveness, in-place clamps and tables, best of two greedy orders)\n", s.arena);
    printf("  TFLite Micro greedy   %8zu bytes (greedy by size, no in-place)\n", s.tflm_greedy);
    printf("  naive (no reuse)      %8zu bytes\n", s.naive);
    printf("  lower bound           %8zu bytes (largest op: inputs + output)\n", s.lower_bound);
    printf("\n  #  op         name                         input       -> output       weights  act bytes        MACs  "
           "notes\n");
    for (int32_t i = 0; i < m->n_ops; i++) {
        const rg_rgm_op *o = &m->ops[i];
        const rg_rgm_tensor *a = &m->tensors[o->in[0]], *y = &m->tensors[o->out];
        size_t act = (size_t)a->h * a->w * a->c + (size_t)y->h * y->w * y->c;
        for (int32_t k = 1; k < rg_rgm_op_n_in(o); k++)
            act += (size_t)m->tensors[o->in[k]].h * m->tensors[o->in[k]].w * m->tensors[o->in[k]].c;
        size_t wb = 0;
        if (o->weights) {
            int64_t per = o->kind == RG_RT_CONV ? (int64_t)o->k_h * o->k_w * a->c
                          : o->kind == RG_RT_DEPTHWISE ? (int64_t)o->k_h * o->k_w
                                                       : (int64_t)a->h * a->w * a->c;
            wb = (size_t)(per * o->out_c);
        }
        char ins[32], outs[32];
        snprintf(ins, sizeof ins, "%dx%dx%d", (int)a->h, (int)a->w, (int)a->c);
        snprintf(outs, sizeof outs, "%dx%dx%d", (int)y->h, (int)y->w, (int)y->c);
        char notes[64] = "";
        switch (o->kind) {
        case RG_RT_CONCAT: snprintf(notes, sizeof notes, "%d inputs", (int)o->n_in); break;
        case RG_RT_SPLIT:
            snprintf(notes, sizeof notes, "channels [%d, %d)", (int)o->ch_begin, (int)(o->ch_begin + y->c));
            break;
        case RG_RT_SHUFFLE: snprintf(notes, sizeof notes, "%d groups", (int)o->groups); break;
        case RG_RT_MUL: {
            const rg_rgm_tensor *b = &m->tensors[o->in[1]];
            snprintf(notes, sizeof notes, b->h * b->w == 1 ? "x %dx%dx%d (broadcast)" : "x %dx%dx%d", (int)b->h,
                     (int)b->w, (int)b->c);
            break;
        }
        case RG_RT_LUT: snprintf(notes, sizeof notes, "%s table (256 B)", rg_q_lut_fn_name(o->lut_fn)); break;
        default:
            if (o->act_max_c) snprintf(notes, sizeof notes, "per-channel clamp");
            break;
        }
        printf("%3d  %-9s  %-27.27s  %-11s -> %-11s %8zu  %9zu  %10lld  %s\n", (int)i, rg_rt_kind_name(o->kind),
               o->name, ins, outs, wb, act, (long long)rg_rgm_op_macs(m, i), notes);
    }
    close_model(m, rt, arena);
    return EXIT_OK;
}

/* ---- infer / eval ---- */

typedef struct {
    const char *model, *data, *split;
    int32_t count;
} run_args;

static int parse_run_args(const char *cmd, int argc, char **argv, run_args *r, int *help)
{
    *help = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            *help = 1;
            return EXIT_OK;
        }
        if (strncmp(a, "--", 2) != 0) {
            if (r->model) return cli_usage_error(cmd, "only one model, got '%s' and '%s'", r->model, a);
            r->model = a;
            continue;
        }
        if (i + 1 >= argc) return cli_usage_error(cmd, "option %s needs a value", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--data")) r->data = v;
        else if (!strcmp(a, "--split")) r->split = v;
        else if (!strcmp(a, "--count") || !strcmp(a, "--limit")) {
            if (int_value(v, 0, 100000000, &r->count))
                return cli_usage_error(cmd, "%s %s: need an integer >= 0", a, v);
        } else if (!strcmp(a, "--batch") || !strcmp(a, "--threads")) {
            /* eval's checkpoint options: the runtime runs one image at a time */
        } else return cli_usage_error(cmd, "unknown option %s", a);
    }
    if (!r->model) return cli_usage_error(cmd, "missing the model file");
    return EXIT_OK;
}

static int run_predictions(const run_args *r, int eval)
{
    rg_error err = {0};
    rg_rgm *m;
    rg_rt *rt;
    void *arena;
    rg_dataset ds = {0};
    int32_t *pred = NULL;
    double t0 = 0, t1 = 0;
    rg_status st = open_model(r->model, &m, &rt, &arena, &err);
    if (!st) st = rg_dataset_load(r->data, r->split, &ds, &err);
    int32_t n = ds.n;
    if (!st && r->count > 0 && r->count < n) n = r->count;
    if (!st && !(pred = malloc(sizeof(int32_t) * (size_t)(n > 0 ? n : 1))))
        st = rg_fail(&err, RG_ERR_NOMEM, "out of memory");
    if (!st) {
        t0 = cli_now_s();
        st = rg_rt_predict(rt, arena, ds.pixels, n, ds.h, ds.w, ds.c, pred, &err);
        t1 = cli_now_s();
    }
    if (!st) {
        int32_t correct = 0;
        for (int32_t i = 0; i < n; i++) correct += pred[i] == ds.labels[i];
        if (!eval) {
            printf("image  label  predicted\n");
            for (int32_t i = 0; i < n; i++) printf("%5d  %5d  %9d%s\n", (int)i, (int)ds.labels[i], (int)pred[i],
                                                   pred[i] == ds.labels[i] ? "" : "  (wrong)");
        }
        printf("%s on %s (%s split, %d images, int8 runtime, %s kernels, %s requantization):\n", r->model,
               ds.source, r->split, (int)n, rg_rt_table_name(rt), rg_rgm_requant_name(m));
        printf("top-1 accuracy  %.2f %% (%d / %d)\n", n ? 100.0 * correct / n : 0.0, (int)correct, (int)n);
        printf("latency         %.3f ms per image (batch 1, one thread)\n", n ? 1e3 * (t1 - t0) / n : 0.0);
    }
    free(pred);
    rg_dataset_free(&ds);
    close_model(m, rt, arena);
    return st ? cli_fail(&err) : EXIT_OK;
}

int cmd_infer(int argc, char **argv)
{
    run_args r = {NULL, "fashion-mnist", "test", 10};
    int help, code = parse_run_args("infer", argc, argv, &r, &help);
    if (help) {
        printf("usage: regain infer MODEL.rgm [--data fashion-mnist|DIR] [--split test|train] [--count N]\n\n"
               "Runs the int8 runtime on the first N images (default 10; 0 = all) and prints\n"
               "each image's label and predicted class, then the accuracy and the latency.\n");
        return EXIT_OK;
    }
    return code ? code : run_predictions(&r, 0);
}

int cmd_eval_rgm(int argc, char **argv)
{
    run_args r = {NULL, "fashion-mnist", "test", 0};
    int help, code = parse_run_args("eval", argc, argv, &r, &help);
    return code ? code : run_predictions(&r, 1);
}
