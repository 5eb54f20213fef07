/* regain bench int8: the int8 kernel tables (src/rt/kernels/qk.h) against
 * the integer reference on the layers of mbv2-tiny, layer by layer. */
#include "cli.h"
#include "regain/cpu.h"
#include "regain/rng.h"
#include "regain/stats.h"
#include "rt/kernels/qk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *help_text =
    "usage: regain bench int8 [--batch N] [--seconds S]\n"
    "       regain bench int8 MODEL [options]   (the whole runtime: regain bench int8 MODEL --help)\n"
    "\n"
    "Times every int8 kernel table this CPU runs (ref, avx2, avx512vnni) on the\n"
    "layers of mbv2-tiny (docs/benchmark-models.md), one thread, random int8\n"
    "data and requantization parameters. Prints per layer the median time of\n"
    "each table, the fast tables' GOPS (2 operations a multiply-accumulate)\n"
    "and speedup over the reference, then the whole network summed. Every\n"
    "fast output is also compared with the reference's (the tables are\n"
    "bit-exact; a difference is reported as an error).\n"
    "\n"
    "  --batch N     images (default 1)\n"
    "  --seconds S   time budget per layer and table (default 0.02)\n"
    "\n"
    "The figures are rough: a shared machine, short runs.\n";

typedef enum { L_CONV, L_DW, L_PW, L_ADD, L_GAP, L_FC } kind;

typedef struct {
    kind k;
    int32_t h, w, cin, cout, stride;
} layer;

/* mbv2-tiny at 28x28x1: stem, seven inverted residual blocks, head */
static int mbv2_tiny(layer *out)
{
    int n = 0;
    out[n++] = (layer){L_CONV, 28, 28, 1, 16, 1};
    static const int32_t blocks[7][4] = {{1, 16, 1, 1}, {4, 24, 2, 0}, {4, 24, 1, 1}, {4, 40, 2, 0},
                                         {4, 40, 1, 1}, {4, 80, 1, 0}, {4, 80, 1, 1}};
    int32_t hw = 28, cin = 16;
    for (int b = 0; b < 7; b++) {
        int32_t t = blocks[b][0], c = blocks[b][1], s = blocks[b][2], e = cin * t;
        if (t > 1) out[n++] = (layer){L_PW, hw, hw, cin, e, 1};
        out[n++] = (layer){L_DW, hw, hw, e, e, s};
        hw = s == 2 ? hw / 2 : hw;
        out[n++] = (layer){L_PW, hw, hw, e, c, 1};
        if (blocks[b][3]) out[n++] = (layer){L_ADD, hw, hw, c, c, 1};
        cin = c;
    }
    out[n++] = (layer){L_PW, hw, hw, cin, 256, 1};
    out[n++] = (layer){L_GAP, hw, hw, 256, 256, 1};
    out[n++] = (layer){L_FC, 1, 1, 256, 10, 1};
    return n;
}

/* One layer prepared for one table, with its buffers. */
typedef struct {
    const rg_qk_table *t;
    rg_qk_gemm g;
    rg_qk_dw d;
    rg_qk_conv c;
    void *buf, *scratch;
} prepared;

typedef struct {
    layer l;
    int32_t batch;
    int32_t *m, *s, *bias;
    int8_t *x, *x2, *w, *y;
    rg_q_conv_params cp;
    rg_q_fc_params fp;
    rg_q_add_params ap;
    rg_q_gap_params gp;
} work;

static int64_t macs(const work *wk)
{
    const layer *l = &wk->l;
    int64_t ho = (l->h + l->stride - 1) / l->stride, wo = (l->w + l->stride - 1) / l->stride;
    switch (l->k) {
    case L_CONV: return wk->batch * ho * wo * l->cout * 9 * l->cin;
    case L_DW: return wk->batch * ho * wo * l->cin * 9;
    case L_PW:
    case L_FC: return (int64_t)wk->batch * l->h * l->w * l->cin * l->cout;
    case L_ADD:
    case L_GAP: return (int64_t)wk->batch * l->h * l->w * l->cin; /* element operations */
    }
    return 0;
}

static size_t out_bytes(const work *wk)
{
    const layer *l = &wk->l;
    switch (l->k) {
    case L_CONV:
    case L_DW: return (size_t)wk->batch * wk->cp.out_h * wk->cp.out_w * l->cout;
    case L_PW:
    case L_FC: return (size_t)wk->fp.batch * l->cout;
    case L_ADD: return (size_t)wk->batch * l->h * l->w * l->cin;
    case L_GAP: return (size_t)wk->batch * l->cin;
    }
    return 0;
}

static void setup(work *wk, rg_rng *rng)
{
    const layer *l = &wk->l;
    int32_t n = l->cout;
    wk->m = malloc(sizeof(int32_t) * n);
    wk->s = malloc(sizeof(int32_t) * n);
    wk->bias = malloc(sizeof(int32_t) * n);
    for (int32_t c = 0; c < n; c++) {
        wk->m[c] = (1 << 30) + (int32_t)rg_rng_below(rng, 1u << 30);
        wk->s[c] = -7 - (int32_t)rg_rng_below(rng, 3);
        wk->bias[c] = (int32_t)rg_rng_below(rng, 4001) - 2000;
    }
    size_t nx = (size_t)wk->batch * l->h * l->w * l->cin, nw = (size_t)l->cout * l->cin * 9 + 1;
    wk->x = malloc(nx);
    wk->x2 = malloc(nx);
    wk->w = malloc(nw);
    for (size_t i = 0; i < nx; i++) wk->x[i] = (int8_t)(rg_rng_below(rng, 256) - 128);
    for (size_t i = 0; i < nx; i++) wk->x2[i] = (int8_t)(rg_rng_below(rng, 256) - 128);
    for (size_t i = 0; i < nw; i++) wk->w[i] = (int8_t)(rg_rng_below(rng, 255) - 127);
    int32_t ho = (l->h + l->stride - 1) / l->stride, wo = (l->w + l->stride - 1) / l->stride;
    wk->cp = (rg_q_conv_params){.batch = wk->batch, .in_h = l->h, .in_w = l->w, .in_c = l->cin, .out_h = ho,
                                .out_w = wo, .out_c = l->cout, .k_h = 3, .k_w = 3, .stride_h = l->stride,
                                .stride_w = l->stride, .dilation_h = 1, .dilation_w = 1, .pad_top = 1,
                                .pad_left = 1, .in_zp = -5, .out_zp = 3, .act_min = -128, .act_max = 127,
                                .multipliers = wk->m, .shifts = wk->s};
    wk->fp = (rg_q_fc_params){.batch = wk->batch * l->h * l->w, .in_features = l->cin, .out_features = l->cout,
                              .in_zp = -5, .out_zp = 3, .act_min = -128, .act_max = 127,
                              .multipliers = wk->m, .shifts = wk->s};
    wk->y = malloc(out_bytes(wk) + 64);
    rg_error err;
    rg_q_add_prepare((rg_qparams){0.05f, -3}, (rg_qparams){0.07f, 4}, (rg_qparams){0.09f, 1}, RG_Q_ACT_NONE,
                     &wk->ap, &err);
    rg_q_gap_prepare(wk->batch, l->h, l->w, l->cin, (rg_qparams){0.05f, -3}, (rg_qparams){0.02f, 2}, &wk->gp,
                     &err);
}

static void release(work *wk)
{
    free(wk->m), free(wk->s), free(wk->bias), free(wk->x), free(wk->x2), free(wk->w), free(wk->y);
}

static int prepare(const work *wk, prepared *p, rg_error *err)
{
    const layer *l = &wk->l;
    size_t size = 0, scratch = 0;
    rg_status st = RG_OK;
    switch (l->k) {
    case L_CONV:
        size = rg_qk_conv_size(p->t, &wk->cp);
        p->buf = malloc(size);
        st = rg_qk_conv_prepare(p->t, &wk->cp, wk->w, wk->bias, p->buf, size, &p->c, err);
        if (!st) scratch = rg_qk_conv_scratch(&p->c);
        break;
    case L_DW:
        size = rg_qk_dw_size(p->t, &wk->cp);
        p->buf = malloc(size);
        st = rg_qk_dw_prepare(p->t, &wk->cp, wk->w, wk->bias, p->buf, size, &p->d, err);
        if (!st) scratch = rg_qk_dw_scratch(&p->d);
        break;
    case L_PW:
    case L_FC:
        size = rg_qk_gemm_size(p->t, l->cin, l->cout);
        p->buf = malloc(size);
        st = rg_qk_gemm_prepare(p->t, &wk->fp, wk->w, wk->bias, p->buf, size, &p->g, err);
        if (!st) scratch = rg_qk_gemm_scratch(&p->g);
        break;
    case L_ADD:
    case L_GAP: break;
    }
    p->scratch = malloc(scratch + 64);
    return st;
}

static void run(const work *wk, const prepared *p, int8_t *y)
{
    const layer *l = &wk->l;
    switch (l->k) {
    case L_CONV: rg_qk_conv_run(&p->c, wk->x, y, p->scratch); break;
    case L_DW: rg_qk_dw_run(&p->d, wk->x, y, p->scratch); break;
    case L_PW:
    case L_FC: rg_qk_gemm_run(&p->g, wk->fp.batch, wk->x, y, p->scratch); break;
    case L_ADD: p->t->add(&wk->ap, wk->x, wk->x2, (int64_t)wk->batch * l->h * l->w * l->cin, y); break;
    case L_GAP: p->t->gap(&wk->gp, wk->x, y); break;
    }
}

/* Median seconds of one call over about `budget` seconds (at least 3 calls). */
static double time_layer(const work *wk, const prepared *p, double budget)
{
    enum { MAXN = 512 };
    double t[MAXN];
    int n = 0;
    run(wk, p, wk->y); /* warm the caches */
    double start = cli_now_s();
    while (n < MAXN && (n < 3 || cli_now_s() - start < budget)) {
        double t0 = cli_now_s();
        run(wk, p, wk->y);
        t[n++] = cli_now_s() - t0;
    }
    return rg_stats_median(t, (size_t)n);
}

static const char *kind_name(kind k)
{
    static const char *names[] = {"conv3x3", "dw3x3", "pw", "add", "gap", "fc"};
    return names[k];
}

int cmd_bench_int8(int argc, char **argv)
{
    if (argc > 2 && argv[2][0] != '-') return cmd_bench_int8_model(argc, argv);
    int32_t batch = 1;
    double budget = 0.02;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(help_text, stdout);
            return EXIT_OK;
        }
        if (i + 1 >= argc) return cli_usage_error("bench int8", "unknown option or missing value '%s'", a);
        const char *v = argv[++i];
        char *end;
        if (!strcmp(a, "--batch")) {
            long b = strtol(v, &end, 10);
            if (*v == 0 || *end || b < 1 || b > 4096)
                return cli_usage_error("bench int8", "--batch: '%s' is not an integer in [1, 4096]", v);
            batch = (int32_t)b;
        } else if (!strcmp(a, "--seconds")) {
            budget = strtod(v, &end);
            if (*v == 0 || *end || !(budget > 0.0 && budget <= 10.0))
                return cli_usage_error("bench int8", "--seconds: '%s' is not a number in (0, 10]", v);
        } else
            return cli_usage_error("bench int8", "unknown option '%s'", a);
    }
    const rg_qk_table *tables[3];
    int nt = 0;
    tables[nt++] = &rg_qk_ref;
    rg_isa best = rg_cpu_isa_supported();
    if (best >= RG_ISA_AVX2) tables[nt++] = &rg_qk_avx2;
    if (best >= RG_ISA_AVX512_VNNI) tables[nt++] = &rg_qk_vnni;

    layer layers[40];
    int nl = mbv2_tiny(layers);
    rg_rng rng = rg_rng_keyed(1, 2, 3);
    printf("int8 kernels on mbv2-tiny, batch %d, one thread, %s\n", batch, rg_cpu_description());
    printf("(rough figures: medians of short runs on a possibly shared machine)\n\n");
    printf("%-8s %-14s %10s", "layer", "shape", "MAC/op");
    for (int t = 0; t < nt; t++) printf(" %10s", tables[t]->name);
    for (int t = 1; t < nt; t++) printf(" %8s %7s", "GOPS", "speedup");
    printf("\n%35s", "");
    for (int t = 0; t < nt; t++) printf(" %10s", "us");
    for (int t = 1; t < nt; t++) printf(" %8s %7s", tables[t]->name, "");
    printf("\n");
    double total[3] = {0};
    int64_t total_mac = 0;
    int bad = 0;
    for (int i = 0; i < nl; i++) {
        work wk = {.l = layers[i], .batch = batch};
        setup(&wk, &rng);
        int64_t ops = macs(&wk);
        if (wk.l.k != L_ADD && wk.l.k != L_GAP) total_mac += ops;
        double us[3];
        size_t ny = out_bytes(&wk);
        int8_t *want = malloc(ny + 1), *got = malloc(ny + 1);
        for (int t = 0; t < nt; t++) {
            prepared p = {.t = tables[t]};
            rg_error err;
            if (prepare(&wk, &p, &err)) {
                fprintf(stderr, "bench int8: %s\n", err.msg);
                return EXIT_FAILURE_OTHER;
            }
            run(&wk, &p, t == 0 ? want : got);
            if (t > 0 && memcmp(want, got, ny)) {
                fprintf(stderr, "bench int8: %s differs from the reference on layer %d\n", tables[t]->name, i);
                bad = 1;
            }
            us[t] = time_layer(&wk, &p, budget) * 1e6;
            total[t] += us[t];
            free(p.buf), free(p.scratch);
        }
        char shape[32];
        if (wk.l.k == L_ADD || wk.l.k == L_GAP)
            snprintf(shape, sizeof shape, "%dx%dx%d", (int)wk.l.h, (int)wk.l.w, (int)wk.l.cin);
        else
            snprintf(shape, sizeof shape, "%dx%dx%d>%d%s", (int)wk.l.h, (int)wk.l.w, (int)wk.l.cin, (int)wk.l.cout,
                     wk.l.stride == 2 ? "/2" : "");
        printf("%-8s %-14s %10lld", kind_name(wk.l.k), shape, (long long)ops);
        for (int t = 0; t < nt; t++) printf(" %10.2f", us[t]);
        for (int t = 1; t < nt; t++) printf(" %8.1f %6.1fx", 2e-3 * (double)ops / us[t], us[0] / us[t]);
        printf("\n");
        free(want), free(got);
        release(&wk);
    }
    printf("%-8s %-14s %10lld", "total", "(MACs)", (long long)total_mac);
    for (int t = 0; t < nt; t++) printf(" %10.2f", total[t]);
    for (int t = 1; t < nt; t++) printf(" %8.1f %6.1fx", 2e-3 * (double)total_mac / total[t], total[0] / total[t]);
    printf("\n");
    return bad ? EXIT_FAILURE_OTHER : EXIT_OK;
}
