/* The distiller: teachers, layer taps, hint adapters and the combined loss
 * of one training step (contract in regain/distill.h). */
#include "regain/distill.h"
#include "regain/loader.h"
#include "train/teacher.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    char student[RG_NAME_MAX], teacher[RG_NAME_MAX];
    int32_t sv, tv;          /* tapped values */
    rg_shape ss, ts;         /* per-image shapes (n = 1) */
    float *dstudent;         /* the student layer's extra-gradient buffer (shared by pairs on one layer) */
} layer_pair;

typedef struct {
    layer_pair p;
    rg_graph *adapter;       /* [avgpool] -> 1x1 conv -> BN: student channels -> teacher channels */
    rg_optim opt;
    float *target;           /* the teacher layer, pooled to the adapter's output size when larger */
} hint;

struct rg_distiller {
    rg_distill_config cfg;
    rg_graph *student;
    rg_teachers teachers;
    int32_t classes, batch;
    float *probs;            /* batch x classes: the teachers' probabilities at T */
    float *cache;            /* n_train x classes probabilities, or NULL */
    int32_t cache_n;
    hint hints[RG_DISTILL_MAX_PAIRS];
    int32_t n_hints;
    layer_pair at[RG_DISTILL_MAX_PAIRS];
    int32_t n_at;
    float *at_scratch;
    float *extra[2 * RG_DISTILL_MAX_PAIRS]; /* one per distinct tapped student layer */
    int32_t extra_value[2 * RG_DISTILL_MAX_PAIRS], n_extra;
    size_t extra_per[2 * RG_DISTILL_MAX_PAIRS];   /* floats per image */
};

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int rg_distill_enabled(const rg_distill_config *c) { return c->teachers[0][0] != 0; }

/* Parses "s:t[,s:t...]" into pairs; *n receives the count. */
static rg_status parse_pairs(const char *key, const char *text, layer_pair *pairs, int32_t *n, rg_error *err)
{
    *n = 0;
    const char *p = text;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *colon = memchr(p, ':', len);
        if (*n == RG_DISTILL_MAX_PAIRS)
            return rg_fail(err, RG_ERR_ARG, "%s: more than %d layer pairs", key, RG_DISTILL_MAX_PAIRS);
        size_t ls = colon ? (size_t)(colon - p) : 0, lt = colon ? len - ls - 1 : 0;
        if (!colon || !ls || !lt || ls >= RG_NAME_MAX || lt >= RG_NAME_MAX || memchr(colon + 1, ':', lt))
            return rg_fail(err, RG_ERR_ARG, "%s: '%.*s' is not a layer pair student_layer:teacher_layer", key,
                           (int)len, p);
        layer_pair *lp = &pairs[(*n)++];
        memset(lp, 0, sizeof *lp);
        memcpy(lp->student, p, ls);
        memcpy(lp->teacher, colon + 1, lt);
        p = end ? end + 1 : p + len;
        if (end && !*p) return rg_fail(err, RG_ERR_ARG, "%s: '%s' ends with a comma", key, text);
    }
    return RG_OK;
}

rg_status rg_distill_validate(const rg_distill_config *c, rg_error *err)
{
    layer_pair pairs[RG_DISTILL_MAX_PAIRS];
    int32_t n_hints, n_at;
    rg_status st;
    if ((st = parse_pairs("hints", c->hints, pairs, &n_hints, err)) ||
        (st = parse_pairs("at", c->at, pairs, &n_at, err)))
        return st;
    for (int32_t k = 1; k < RG_DISTILL_MAX_TEACHERS; k++)
        if (c->teachers[k][0] && !c->teachers[k - 1][0])
            return rg_fail(err, RG_ERR_ARG, "teacher%d: given without teacher%s", k + 1, k == 1 ? "" : "2");
    int losses = c->kd_alpha > 0 || c->dkd_alpha > 0 || c->dkd_beta > 0 || (n_hints && c->hint_weight > 0) ||
                 (n_at && c->at_weight > 0);
    if (rg_distill_enabled(c) && !losses)
        return rg_fail(err, RG_ERR_ARG,
                       "teacher: a teacher is given but no distillation loss is on (set kd_alpha, dkd_alpha/dkd_beta, "
                       "hints or at)");
    if (!rg_distill_enabled(c) && (c->kd_alpha > 0 || c->dkd_alpha > 0 || c->dkd_beta > 0 || n_hints || n_at))
        return rg_fail(err, RG_ERR_ARG, "teacher: distillation losses are set but no teacher checkpoint is given");
    if (!(c->T > 0) || !isfinite(c->T)) return rg_fail(err, RG_ERR_ARG, "kd_temperature: must be > 0");
    return RG_OK;
}

/* The tapped values of a pair in both networks; errors name the key and the layer. */
static rg_status resolve_pair(const char *key, layer_pair *p, rg_graph *s, rg_graph *t, const char *teacher_path,
                              rg_error *err)
{
    p->sv = rg_graph_find_layer(s, p->student);
    if (p->sv < 0) return rg_fail(err, RG_ERR_ARG, "%s: the student has no layer '%s'", key, p->student);
    p->tv = rg_graph_find_layer(t, p->teacher);
    if (p->tv < 0)
        return rg_fail(err, RG_ERR_ARG, "%s: the teacher %s has no layer '%s'", key, teacher_path, p->teacher);
    p->ss = s->values[p->sv].shape;
    p->ts = t->values[p->tv].shape;
    p->ss.n = p->ts.n = 1;
    /* the larger map is pooled to the smaller: the sizes must divide, alike in both directions */
    rg_shape a = p->ss.h >= p->ts.h ? p->ss : p->ts, b = p->ss.h >= p->ts.h ? p->ts : p->ss;
    if (a.h % b.h || a.w % b.w || a.h / b.h != a.w / b.w)
        return rg_fail(err, RG_ERR_SHAPE, "%s: %s:%s: the layers are %dx%d and %dx%d, which no square pooling matches",
                       key, p->student, p->teacher, p->ss.h, p->ss.w, p->ts.h, p->ts.w);
    rg_status st = rg_graph_tap(s, p->sv, err);
    return st ? st : rg_graph_tap(t, p->tv, err);
}

/* One extra-gradient buffer per distinct student layer. */
static rg_status extra_buffer(rg_distiller *d, layer_pair *p, rg_error *err)
{
    for (int32_t i = 0; i < d->n_extra; i++)
        if (d->extra_value[i] == p->sv) {
            p->dstudent = d->extra[i];
            return RG_OK;
        }
    float *buf = rg_calloc((size_t)d->batch * rg_shape_count(p->ss), sizeof(float), err);
    if (!buf) return RG_ERR_NOMEM;
    d->extra[d->n_extra] = buf;
    d->extra_per[d->n_extra] = rg_shape_count(p->ss);
    d->extra_value[d->n_extra++] = p->sv;
    rg_graph_set_extra_grad(d->student, p->sv, buf);
    p->dstudent = buf;
    return RG_OK;
}

static rg_status build_adapter(rg_distiller *d, hint *h, int32_t k, const rg_optim_config *oc, uint64_t seed,
                               rg_error *err)
{
    rg_shape s = h->p.ss, t = h->p.ts;
    rg_graph *g;
    rg_status st = rg_graph_create(s.h, s.w, s.c, &g, err);
    if (st) return st;
    h->adapter = g;
    int32_t v = g->input;
    if (s.h > t.h && (st = rg_graph_add_pool(g, RG_OP_AVGPOOL, "adapter.pool", v, s.h / t.h, s.h / t.h, 0, &v, err)))
        return st;
    /* the batch norm keeps the regression stable: with it the convolution's
     * scale does not matter, and the large hint weights the literature uses
     * (100) would otherwise make the adapter's steps diverge */
    rg_conv_attr a = {.kh = 1, .kw = 1, .stride = 1, .pad = 0, .groups = 1, .cout = t.c, .has_bias = 0};
    if ((st = rg_graph_add_conv(g, "adapter", v, a, &v, err)) || (st = rg_graph_add_bn(g, "adapter.bn", v, &v, err)) ||
        (st = rg_graph_finish(g, v, err)))
        return st;
    rg_graph_init_params(g, seed ^ (0x68696e74ull + (uint64_t)k)); /* "hint" + k: its own stream */
    if ((st = rg_graph_plan(g, d->batch, RG_PLAN_TRAIN, err)) || (st = rg_optim_init(&h->opt, oc, g, err)))
        return st;
    rg_shape o = g->values[g->output].shape;
    h->target = rg_calloc((size_t)d->batch * o.h * o.w * o.c, sizeof(float), err);
    return h->target ? RG_OK : RG_ERR_NOMEM;
}

const char *rg_distiller_teacher_sums(const rg_distiller *d, char *buf, size_t size)
{
    size_t at = 0;
    buf[0] = 0;
    for (int32_t k = 0; k < d->teachers.n && at < size; k++)
        at += (size_t)snprintf(buf + at, size - at, "%s%s", k ? "," : "", d->teachers.crc[k]);
    return buf;
}

rg_status rg_distiller_create(const rg_distill_config *c, rg_graph *student, int32_t batch, int32_t classes,
                              const rg_optim_config *oc, uint64_t seed, rg_distiller **out, rg_error *err)
{
    *out = NULL;
    rg_status st = rg_distill_validate(c, err);
    if (st) return st;
    rg_distiller *d = rg_calloc(1, sizeof *d, err);
    if (!d) return RG_ERR_NOMEM;
    d->cfg = *c;
    d->student = student;
    d->classes = classes;
    d->batch = batch;
    rg_shape in = student->values[student->input].shape;
    if ((st = rg_teachers_load(&d->teachers, c, in.h, in.w, in.c, classes, err))) goto fail;
    rg_graph *t = d->teachers.g[0];
    layer_pair pairs[RG_DISTILL_MAX_PAIRS];
    if ((st = parse_pairs("hints", c->hints, pairs, &d->n_hints, err))) goto fail;
    for (int32_t k = 0; k < d->n_hints; k++) {
        d->hints[k].p = pairs[k];
        if ((st = resolve_pair("hints", &d->hints[k].p, student, t, c->teachers[0], err))) goto fail;
    }
    if ((st = parse_pairs("at", c->at, d->at, &d->n_at, err))) goto fail;
    size_t at_scratch = 1;
    for (int32_t k = 0; k < d->n_at; k++) {
        if ((st = resolve_pair("at", &d->at[k], student, t, c->teachers[0], err))) goto fail;
        rg_shape ss = d->at[k].ss, ts = d->at[k].ts;
        ss.n = ts.n = batch;
        size_t need = rg_at_scratch_floats(ss, ts);
        if (need > at_scratch) at_scratch = need;
        if ((st = extra_buffer(d, &d->at[k], err))) goto fail;
    }
    for (int32_t k = 0; k < d->n_hints; k++)
        if ((st = extra_buffer(d, &d->hints[k].p, err)) || (st = build_adapter(d, &d->hints[k], k, oc, seed, err)))
            goto fail;
    if ((st = rg_teachers_plan(&d->teachers, batch, err))) goto fail;
    d->at_scratch = rg_calloc(at_scratch, sizeof(float), err);
    d->probs = rg_calloc((size_t)batch * classes, sizeof(float), err);
    if (!d->at_scratch || !d->probs) {
        st = RG_ERR_NOMEM;
        goto fail;
    }
    *out = d;
    return RG_OK;
fail:
    rg_distiller_free(d);
    return st;
}

void rg_distiller_free(rg_distiller *d)
{
    if (!d) return;
    rg_teachers_free(&d->teachers);
    for (int32_t k = 0; k < d->n_hints; k++) {
        rg_optim_free(&d->hints[k].opt);
        rg_graph_free(d->hints[k].adapter);
        free(d->hints[k].target);
    }
    for (int32_t i = 0; i < d->n_extra; i++) {
        rg_graph_set_extra_grad(d->student, d->extra_value[i], NULL);
        free(d->extra[i]);
    }
    free(d->at_scratch);
    free(d->probs);
    free(d->cache);
    free(d);
}

/* Runs the teachers over ds in dataset order, unaugmented, calling visit
 * with each batch's probabilities at temperature T. */
static rg_status over_dataset(rg_distiller *d, const rg_dataset *ds, float mean, float std, float T,
                              void (*visit)(rg_distiller *, const float *, const int32_t *, const int32_t *, int32_t,
                                            void *),
                              void *user, rg_error *err)
{
    rg_loader_config lc = {.batch = d->batch, .mean = mean, .std = std, .workers = 0};
    rg_loader *ld;
    rg_status st = rg_loader_create(ds, &lc, &ld, err);
    if (st) return st;
    rg_loader_start_epoch(ld, 0);
    const float *x;
    const int32_t *y, *idx;
    int32_t count;
    while (rg_loader_next(ld, &x, &y, &idx, &count)) {
        rg_teachers_forward(&d->teachers, x, count, T, d->probs);
        visit(d, d->probs, y, idx, count, user);
    }
    rg_loader_free(ld);
    return RG_OK;
}

static void store_probs(rg_distiller *d, const float *p, const int32_t *y, const int32_t *idx, int32_t n, void *u)
{
    (void)y, (void)u;
    for (int32_t i = 0; i < n; i++)
        memcpy(d->cache + (size_t)idx[i] * d->classes, p + (size_t)i * d->classes, d->classes * sizeof(float));
}

rg_status rg_distiller_cache_logits(rg_distiller *d, const rg_dataset *ds, float mean, float std, rg_error *err)
{
    if (d->n_hints || d->n_at) return RG_OK; /* features cannot be cached */
    free(d->cache);
    d->cache = rg_calloc((size_t)ds->n * d->classes, sizeof(float), err);
    if (!d->cache) return RG_ERR_NOMEM;
    d->cache_n = ds->n;
    rg_status st = over_dataset(d, ds, mean, std, d->cfg.T, store_probs, NULL, err);
    if (st) {
        free(d->cache);
        d->cache = NULL;
    }
    return st;
}

int rg_distiller_cached(const rg_distiller *d) { return d->cache != NULL; }

static void count_correct(rg_distiller *d, const float *p, const int32_t *y, const int32_t *idx, int32_t n, void *u)
{
    (void)idx;
    int64_t *correct = u;
    for (int32_t i = 0; i < n; i++) {
        const float *q = p + (size_t)i * d->classes;
        int32_t best = 0;
        for (int32_t c = 1; c < d->classes; c++)
            if (q[c] > q[best]) best = c;
        *correct += best == y[i];
    }
}

rg_status rg_distiller_teacher_top1(rg_distiller *d, const rg_dataset *ds, float mean, float std, double *top1,
                                    rg_error *err)
{
    int64_t correct = 0;
    rg_status st = over_dataset(d, ds, mean, std, 1.0f, count_correct, &correct, err);
    *top1 = ds->n ? (double)correct / ds->n : 0.0;
    return st;
}

/* Average pooling of n NHWC images by k (the teacher's map to the adapter's size). */
static void avg_pool(const float *in, rg_shape s, int32_t n, int32_t k, float *out)
{
    int32_t ho = s.h / k, wo = s.w / k;
    float inv = 1.0f / (float)(k * k);
    for (int32_t i = 0; i < n; i++)
        for (int32_t y = 0; y < ho; y++)
            for (int32_t x = 0; x < wo; x++) {
                float *o = out + (((size_t)i * ho + y) * wo + x) * s.c;
                for (int32_t c = 0; c < s.c; c++) {
                    float sum = 0.0f;
                    for (int32_t dy = 0; dy < k; dy++)
                        for (int32_t dx = 0; dx < k; dx++)
                            sum += in[(((size_t)i * s.h + y * k + dy) * s.w + x * k + dx) * s.c + c];
                    o[c] = sum * inv;
                }
            }
}

static double hint_loss(rg_distiller *d, hint *h, int32_t n)
{
    rg_graph *a = h->adapter, *t = d->teachers.g[0];
    rg_error e;
    rg_graph_set_batch(a, n, &e); /* n <= the planned batch */
    size_t per_s = rg_shape_count(h->p.ss);
    memcpy(rg_graph_input(a), rg_graph_act(d->student, h->p.sv), (size_t)n * per_s * sizeof(float));
    rg_exec ctx = {.training = 1};
    rg_graph_forward(a, &ctx);
    rg_shape o = a->values[a->output].shape;
    size_t count = (size_t)n * o.h * o.w * o.c;
    const float *target = rg_graph_act(t, h->p.tv);
    if (h->p.ts.h > o.h) {
        avg_pool(target, h->p.ts, n, h->p.ts.h / o.h, h->target);
        target = h->target;
    }
    float *dout = rg_graph_output_grad(a);
    memset(dout, 0, count * sizeof(float));
    double loss = rg_mse_loss(rg_graph_output(a), target, count, d->cfg.hint_weight, dout);
    rg_graph_backward(a, &ctx);
    const float *din = rg_graph_grad(a, a->input);
    for (size_t i = 0; i < (size_t)n * per_s; i++) h->p.dstudent[i] += din[i];
    return d->cfg.hint_weight * loss;
}

void rg_distiller_loss(rg_distiller *d, const float *x, const int32_t *y, const int32_t *indices, int32_t n,
                       int32_t epoch, const float *logits, float *dlogits, float ce, rg_distill_parts *parts)
{
    const rg_distill_config *c = &d->cfg;
    memset(parts, 0, sizeof *parts);
    size_t count = (size_t)n * d->classes;
    double t0 = now_s();
    if (d->cache && indices) {
        for (int32_t i = 0; i < n; i++)
            memcpy(d->probs + (size_t)i * d->classes, d->cache + (size_t)indices[i] * d->classes,
                   d->classes * sizeof(float));
    } else {
        rg_teachers_forward(&d->teachers, x, n, c->T, d->probs);
    }
    parts->teacher_s = now_s() - t0;

    float keep = 1.0f - c->kd_alpha;
    for (size_t i = 0; i < count; i++) dlogits[i] *= keep;
    parts->ce = (double)keep * ce;
    if (c->kd_alpha > 0)
        parts->kd = c->kd_alpha * rg_kd_loss(logits, d->probs, n, d->classes, c->T, c->kd_alpha, dlogits);
    if (c->dkd_alpha > 0 || c->dkd_beta > 0) {
        /* DKD's warm-up (Zhao et al.): its weight grows linearly over the first epochs */
        float ramp = c->dkd_warmup > 0 && epoch + 1 < c->dkd_warmup ? (float)(epoch + 1) / (float)c->dkd_warmup : 1.0f;
        parts->dkd = ramp * rg_dkd_loss(logits, d->probs, y, n, d->classes, c->T, c->dkd_alpha, c->dkd_beta, ramp,
                                        dlogits, NULL, NULL);
    }
    for (int32_t i = 0; i < d->n_extra; i++) memset(d->extra[i], 0, (size_t)n * d->extra_per[i] * sizeof(float));
    for (int32_t k = 0; k < d->n_hints; k++) parts->hint += hint_loss(d, &d->hints[k], n);
    for (int32_t k = 0; k < d->n_at; k++) {
        layer_pair *p = &d->at[k];
        rg_shape ss = p->ss, ts = p->ts;
        ss.n = ts.n = n;
        float w = 0.5f * c->at_weight;
        parts->at += w * rg_at_loss(rg_graph_act(d->student, p->sv), ss, rg_graph_act(d->teachers.g[0], p->tv), ts, w,
                                    p->dstudent, d->at_scratch);
    }
    parts->total = parts->ce + parts->kd + parts->dkd + parts->hint + parts->at;
}

void rg_distiller_update(rg_distiller *d, float lr)
{
    for (int32_t k = 0; k < d->n_hints; k++) rg_optim_step(&d->hints[k].opt, d->hints[k].adapter, lr);
}

int32_t rg_distiller_parts(const rg_distiller *d, rg_graph **graphs, rg_optim **optims, int32_t max)
{
    int32_t n = 0;
    for (int32_t k = 0; k < d->n_hints && n < max; k++, n++) {
        graphs[n] = d->hints[k].adapter;
        optims[n] = (rg_optim *)&d->hints[k].opt;
    }
    return n;
}
