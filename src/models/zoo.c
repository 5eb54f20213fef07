/* The model zoo: families written as spec generators.
 *
 * All networks are adapted to small inputs (28x28 Fashion-MNIST) the way
 * CIFAR versions are: a 3x3 stride-1 stem and at most three stride-2 stages.
 * Width multipliers round channels with make_divisible(c * w, 8) (the
 * MobileNet rule); depth multipliers scale the repeats of each stage with
 * ceil(n * d). The benchmark networks ignore no detail of
 * docs/benchmark-models.md and have their own generators.
 */
#include "regain/zoo.h"
#include "regain/spec.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *buf;
    size_t len, cap;
    int oom;
} sbuf;

static void emit(sbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emit(sbuf *s, const char *fmt, ...)
{
    if (s->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        /* before the first allocation buf is NULL: size 0, no pointer arithmetic on it */
        int n = vsnprintf(s->buf ? s->buf + s->len : NULL, s->cap - s->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < s->cap - s->len) {
            s->len += (size_t)n;
            return;
        }
        size_t nc = s->cap * 2 + (size_t)(n > 0 ? n : 64) + 64;
        char *p = realloc(s->buf, nc);
        if (!p) {
            s->oom = 1;
            return;
        }
        s->buf = p;
        s->cap = nc;
    }
}

static int32_t div8(float v)
{
    int32_t r = (int32_t)(v + 4.0f) / 8 * 8;
    if (r < 8) r = 8;
    if (r < 0.9f * v) r += 8;
    return r;
}

static int32_t reps(int32_t n, float d)
{
    int32_t r = (int32_t)ceilf((float)n * d - 1e-6f);
    return r < 1 ? 1 : r;
}

typedef struct {
    float w, d;
    int32_t classes;
} mult;

/* ---- benchmark networks ------------------------------------------------------ */

static void gen_mbv2_tiny(sbuf *s, mult m)
{
    static const int32_t cfg[7][3] = {{1, 16, 1}, {4, 24, 2}, {4, 24, 1}, {4, 40, 2},
                                      {4, 40, 1}, {4, 80, 1}, {4, 80, 1}};
    int32_t stem = m.w == 1.0f ? 16 : div8(16 * m.w);
    emit(s, "conv name=stem c=%d k=3 s=1 bn act=relu6\n", stem);
    for (int i = 0; i < 7; i++) {
        int32_t c = m.w == 1.0f ? cfg[i][1] : div8((float)cfg[i][1] * m.w);
        emit(s, "ir name=b%d t=%d c=%d s=%d\n", i + 1, cfg[i][0], c, cfg[i][2]);
    }
    emit(s, "conv name=head c=%d k=1 bn act=relu6\n", m.w == 1.0f ? 256 : div8(256 * m.w));
}

/* CIFAR ResNet with 6n+2 layers (n BasicBlocks per stage), widths 16/32/64 x w. */
static void gen_resnet(sbuf *s, int32_t depth, mult m)
{
    int32_t n = (depth - 2) / 6, base = (int32_t)lroundf(16 * m.w);
    emit(s, "conv name=stem c=%d k=3 s=1 bn act=relu\n", base);
    for (int st = 0; st < 3; st++)
        for (int b = 0; b < reps(n, m.d); b++)
            emit(s, "basic name=l%d.%d c=%d s=%d\n", st + 1, b, base << st, (b == 0 && st > 0) ? 2 : 1);
}

/* ---- families ------------------------------------------------------------------ */

static void gen_mobilenetv1(sbuf *s, mult m)
{
    static const int32_t cfg[][3] = {{64, 1, 1}, {128, 2, 1}, {128, 1, 1}, {256, 2, 1}, {256, 1, 1},
                                     {512, 1, 1}, {512, 1, 2}, {1024, 1, 1}};
    emit(s, "conv name=stem c=%d k=3 s=1 bn act=relu\n", div8(32 * m.w));
    int k = 1;
    for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++)
        for (int r = 0; r < (cfg[i][2] > 1 ? reps(cfg[i][2], m.d) : 1); r++)
            emit(s, "dwsep name=b%d c=%d s=%d\n", k++, div8((float)cfg[i][0] * m.w), cfg[i][1]);
}

static void gen_mobilenetv2(sbuf *s, mult m)
{
    /* t, c, n, s — ImageNet table with the first two strides set to 1. */
    static const int32_t cfg[][4] = {{1, 16, 1, 1}, {6, 24, 2, 1}, {6, 32, 3, 2}, {6, 64, 4, 2},
                                     {6, 96, 3, 1}, {6, 160, 3, 1}, {6, 320, 1, 1}};
    emit(s, "conv name=stem c=%d k=3 s=1 bn act=relu6\n", div8(32 * m.w));
    int k = 1;
    for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++)
        for (int r = 0; r < reps(cfg[i][2], m.d); r++)
            emit(s, "ir name=b%d t=%d c=%d s=%d\n", k++, cfg[i][0], div8((float)cfg[i][1] * m.w),
                 r == 0 ? cfg[i][3] : 1);
    emit(s, "conv name=head c=%d k=1 bn act=relu6\n", m.w > 1.0f ? div8(1280 * m.w) : 1280);
}

static void gen_shufflenetv2(sbuf *s, mult m)
{
    /* Stage widths of the 0.5/1.0/1.5/2.0 models; other widths interpolate. */
    int32_t c2 = 2 * (int32_t)lroundf(116 * m.w / 2), rep[3] = {4, 8, 4};
    if (c2 < 8) c2 = 8;
    emit(s, "conv name=stem c=24 k=3 s=1 bn act=relu\n");
    for (int st = 0; st < 3; st++)
        for (int b = 0; b < reps(rep[st], m.d); b++)
            emit(s, "shuffle_unit name=s%d.%d c=%d s=%d\n", st + 2, b, c2 << st, (b == 0 && st > 0) ? 2 : 1);
    emit(s, "conv name=head c=%d k=1 bn act=relu\n", m.w > 1.5f ? 2048 : 1024);
}

static void gen_efficientnet_lite(sbuf *s, mult m)
{
    /* t, k, c, n, s — EfficientNet-B0 stages; "lite": ReLU6, no SE, stem and
     * head not scaled. First two strides set to 1 for 28x28 inputs. */
    static const int32_t cfg[][5] = {{1, 3, 16, 1, 1}, {6, 3, 24, 2, 1}, {6, 5, 40, 2, 2}, {6, 3, 80, 3, 2},
                                     {6, 5, 112, 3, 1}, {6, 5, 192, 4, 1}, {6, 3, 320, 1, 1}};
    emit(s, "conv name=stem c=32 k=3 s=1 bn act=relu6\n");
    int k = 1;
    size_t last = sizeof cfg / sizeof cfg[0] - 1;
    for (size_t i = 0; i <= last; i++) {
        /* lite keeps the first and last stage at one block */
        int32_t n = (i == 0 || i == last) ? cfg[i][3] : reps(cfg[i][3], m.d);
        for (int r = 0; r < n; r++)
            emit(s, "mbconv name=b%d t=%d k=%d c=%d s=%d\n", k++, cfg[i][0], cfg[i][1],
                 div8((float)cfg[i][2] * m.w), r == 0 ? cfg[i][4] : 1);
    }
    emit(s, "conv name=head c=1280 k=1 bn act=relu6\n");
}

/* MobileNetV3-Small style: bottlenecks (k, exp, c, se, hswish, s) with the
 * stride of the first and last stride-2 blocks set to 1 for 28x28 inputs.
 * The SE gate is a sigmoid (the paper uses hard-sigmoid). Writes its own head:
 * pw 576 + hswish, GAP, fc 1024 + hswish, dropout 0.2, fc. Depth < 1 drops
 * repeated blocks evenly; depth > 1 is capped at the table. */
static void gen_mobilenetv3_small(sbuf *s, mult m)
{
    static const int32_t cfg[][6] = {{3, 16, 16, 1, 0, 1},  {3, 72, 24, 0, 0, 2},  {3, 88, 24, 0, 0, 1},
                                     {5, 96, 40, 1, 1, 2},  {5, 240, 40, 1, 1, 1}, {5, 240, 40, 1, 1, 1},
                                     {5, 120, 48, 1, 1, 1}, {5, 144, 48, 1, 1, 1}, {5, 288, 96, 1, 1, 1},
                                     {5, 576, 96, 1, 1, 1}, {5, 576, 96, 1, 1, 1}};
    emit(s, "conv name=stem c=16 k=3 s=1 bn act=hswish\n");
    int k = 1;
    double acc = 0.0;
    for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++) {
        int repeat = cfg[i][5] == 1 && i > 0 && cfg[i][2] == cfg[i - 1][2];
        if (repeat) {
            acc += m.d < 1.0f ? m.d : 1.0;
            if (acc < 1.0) continue;
            acc -= 1.0;
        }
        emit(s, "bneck name=b%d e=%d c=%d k=%d s=%d act=%s%s\n", k++, div8((float)cfg[i][1] * m.w),
             div8((float)cfg[i][2] * m.w), cfg[i][0], cfg[i][5], cfg[i][4] ? "hswish" : "relu",
             cfg[i][3] ? " se=0.25" : "");
    }
    emit(s, "conv name=head c=%d k=1 bn act=hswish\ngap\n", div8(576 * m.w));
    emit(s, "fc name=hidden n=1024\nhswish name=hidden.hswish\ndropout name=drop p=0.2\nfc name=fc n=%d\n",
         m.classes);
}

typedef struct {
    const char *name;
    const char *description;
    void (*gen)(sbuf *, mult);
    int resnet_depth; /* > 0 for resnets (gen unused) */
    int own_head;     /* gen writes the classifier too; otherwise "gap, fc" is added */
} family;

static const family families[] = {
    {"mbv2-tiny", "benchmark student: 7 inverted residual blocks (MobileNetV2)", gen_mbv2_tiny, 0, 0},
    {"mobilenetv1", "depthwise-separable convolutions (MobileNetV1)", gen_mobilenetv1, 0, 0},
    {"mobilenetv2", "inverted residuals with linear bottlenecks (MobileNetV2)", gen_mobilenetv2, 0, 0},
    {"shufflenetv2", "channel split and shuffle units (ShuffleNetV2)", gen_shufflenetv2, 0, 0},
    {"efficientnet-lite", "MBConv, ReLU6, no squeeze-excitation (EfficientNet-lite0)", gen_efficientnet_lite, 0, 0},
    {"mobilenetv3-small", "bottlenecks with SE and hard-swish (MobileNetV3-Small style)", gen_mobilenetv3_small, 0, 1},
    {"resnet20", "teacher: CIFAR ResNet-20 (BasicBlocks 3x3)", NULL, 20, 0},
    {"resnet32", "teacher: CIFAR ResNet-32", NULL, 32, 0},
    {"resnet44", "teacher: CIFAR ResNet-44", NULL, 44, 0},
    {"resnet56", "teacher: CIFAR ResNet-56", NULL, 56, 0},
    {"resnet110", "teacher: CIFAR ResNet-110", NULL, 110, 0},
};
#define N_FAMILIES (sizeof families / sizeof families[0])

const rg_zoo_family *rg_zoo_families(void)
{
    static rg_zoo_family list[N_FAMILIES + 1];
    for (size_t i = 0; i < N_FAMILIES; i++) list[i] = (rg_zoo_family){families[i].name, families[i].description};
    list[N_FAMILIES] = (rg_zoo_family){NULL, NULL};
    return list;
}

const char *const *rg_zoo_listed(void)
{
    static const char *const names[] = {
        "mbv2-tiny", "resnet20", "resnet20-w2", "mobilenetv1-w0.25", "mobilenetv1-w0.5", "mobilenetv2-w0.35",
        "mobilenetv2-w0.5", "shufflenetv2-w0.5", "shufflenetv2", "efficientnet-lite-w0.5", "efficientnet-lite",
        "mobilenetv3-small-w0.5", "mobilenetv3-small", "resnet32", "resnet56", NULL};
    return names;
}

/* Splits "base[-wX][-dY]" into the family and multipliers. */
static rg_status parse_name(const char *name, const family **fam, mult *m, rg_error *err)
{
    char buf[128];
    if (!name || !*name) return rg_fail(err, RG_ERR_ARG, "empty model name");
    if (strlen(name) >= sizeof buf) return rg_fail(err, RG_ERR_NOTFOUND, "unknown model '%.60s...'", name);
    snprintf(buf, sizeof buf, "%s", name);
    m->w = m->d = 1.0f;
    for (int pass = 0; pass < 2; pass++) {
        char *dash = strrchr(buf, '-');
        if (!dash || (dash[1] != 'w' && dash[1] != 'd') || !dash[2]) break;
        char *end;
        float v = strtof(dash + 2, &end);
        if (*end) break; /* not a multiplier: part of the base name */
        if (!(v >= 0.1f && v <= 8.0f))
            return rg_fail(err, RG_ERR_ARG, "model '%s': multiplier %s must be in [0.1, 8]", name, dash + 1);
        if (dash[1] == 'w') m->w = v;
        else m->d = v;
        *dash = 0;
    }
    for (size_t i = 0; i < N_FAMILIES; i++)
        if (strcmp(buf, families[i].name) == 0) {
            *fam = &families[i];
            return RG_OK;
        }
    char known[512] = "";
    for (size_t i = 0; i < N_FAMILIES; i++) {
        strncat(known, " ", sizeof known - strlen(known) - 1);
        strncat(known, families[i].name, sizeof known - strlen(known) - 1);
    }
    return rg_fail(err, RG_ERR_NOTFOUND, "unknown model '%s' (families:%s; add -w<width> and/or -d<depth>)", name,
                   known);
}

rg_status rg_zoo_spec_for(const char *name, int32_t h, int32_t w, int32_t c, int32_t n_classes, char **spec,
                          rg_error *err)
{
    const family *f;
    mult m;
    rg_status st = parse_name(name, &f, &m, err);
    if (st) return st;
    if (n_classes < 1 || n_classes > 100000) return rg_fail(err, RG_ERR_ARG, "number of classes %d is not valid", n_classes);
    m.classes = n_classes;
    sbuf s = {0};
    emit(&s, "# %s (regain zoo)\ninput h=%d w=%d c=%d\n", name, h, w, c);
    if (f->resnet_depth) gen_resnet(&s, f->resnet_depth, m);
    else f->gen(&s, m);
    if (!f->own_head) emit(&s, "gap\nfc name=fc n=%d\n", n_classes);
    if (s.oom) {
        free(s.buf);
        return rg_fail(err, RG_ERR_NOMEM, "out of memory writing the spec of %s", name);
    }
    *spec = s.buf;
    return RG_OK;
}

rg_status rg_zoo_spec(const char *name, int32_t n_classes, char **spec, rg_error *err)
{
    return rg_zoo_spec_for(name, 28, 28, 1, n_classes, spec, err);
}

rg_status rg_zoo_build(const char *name, int32_t h, int32_t w, int32_t c, int32_t n_classes, rg_graph **out,
                       rg_error *err)
{
    char *spec;
    rg_status st = rg_zoo_spec_for(name, h, w, c, n_classes, &spec, err);
    if (st) return st;
    char origin[160];
    snprintf(origin, sizeof origin, "zoo:%s", name);
    st = rg_spec_build(spec, origin, out, err);
    free(spec);
    return st;
}
