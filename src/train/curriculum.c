/* Curriculum pieces: pacing functions, the selection ramp, orders, and
 * difficulty scores from a file or a teacher checkpoint (see curriculum.h). */
#include "regain/curriculum.h"
#include "regain/checkpoint.h"
#include "regain/loader.h"
#include "regain/rng.h"
#include "regain/train.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Key of the fixed random order ("CU"). */
#define ORDER_KEY 0x4355u

/* ---- pacing ----------------------------------------------------------------------- */

/* A fraction given as a float (0.2f = 0.200000003) back to the decimal it
 * was written as (6 digits), so that 0.2 of 100 samples is 20, not 21. */
static double decimal(float f) { return round((double)f * 1e6) / 1e6; }

/* ceil(x) but for rounding noise: 40.0000001 is 40 */
static double ceil_exact(double x) { return ceil(x - 1e-7); }

double rg_pacing_fraction(const rg_pacing *p, int32_t epoch)
{
    const double s = decimal(p->start);
    double t = p->full_epoch <= 1 ? 1.0 : (double)epoch / (double)(p->full_epoch - 1);
    if (t > 1.0) t = 1.0;
    if (t < 0.0) t = 0.0;
    double f = 1.0;
    switch (p->kind) {
    case RG_PACE_LINEAR: f = s + (1.0 - s) * t; break;
    case RG_PACE_ROOT: f = sqrt(s * s + (1.0 - s * s) * t); break;
    case RG_PACE_GEOMETRIC: f = t >= 1.0 ? 1.0 : pow(s, 1.0 - t); break;
    case RG_PACE_STEP: {
        int32_t k = p->steps > 0 ? p->steps : 1;
        f = s + (1.0 - s) * floor(t * k) / k;
        break;
    }
    }
    return f < s ? s : f > 1.0 ? 1.0 : f;
}

int32_t rg_selection_count(double fraction, int32_t n)
{
    if (n <= 0) return 0;
    double k = ceil_exact(fraction * (double)n);
    return k < 1.0 ? 1 : k > (double)n ? n : (int32_t)k;
}

int32_t rg_pacing_count(const rg_pacing *p, int32_t epoch, int32_t n)
{
    return rg_selection_count(rg_pacing_fraction(p, epoch), n);
}

rg_status rg_pacing_check(const rg_pacing *p, rg_error *err)
{
    if ((unsigned)p->kind > RG_PACE_STEP) return rg_fail(err, RG_ERR_ARG, "pacing: %d is not a pacing function", (int)p->kind);
    if (!(p->start > 0.0f && p->start <= 1.0f))
        return rg_fail(err, RG_ERR_ARG, "pacing_start: %g must be in (0, 1]", (double)p->start);
    if (p->full_epoch < 1) return rg_fail(err, RG_ERR_ARG, "pacing_full_epoch: %d must be >= 1", p->full_epoch);
    if (p->steps < 1) return rg_fail(err, RG_ERR_ARG, "pacing_steps: %d must be >= 1", p->steps);
    return RG_OK;
}

double rg_select_keep_fraction(float keep, int32_t warmup, int32_t ramp, int32_t epoch)
{
    if (epoch < warmup || !(keep < 1.0f)) return 1.0;
    double t = ramp <= 0 ? 1.0 : (double)(epoch - warmup + 1) / (double)ramp;
    if (t > 1.0) t = 1.0;
    return 1.0 - (1.0 - decimal(keep)) * t;
}

/* ---- order -------------------------------------------------------------------------- */

typedef struct {
    double key;        /* sort key, smaller first */
    uint32_t tie;      /* position in the fixed random order */
    int32_t index;
} rank_item;

static int by_key(const void *a, const void *b)
{
    const rank_item *x = a, *y = b;
    if (x->key < y->key) return -1;
    if (x->key > y->key) return 1;
    return x->tie < y->tie ? -1 : x->tie > y->tie;
}

/* The fixed random order: pos[i] = position of sample i. */
static rg_status random_positions(int32_t n, uint64_t seed, uint32_t *pos, rg_error *err)
{
    uint32_t *perm = rg_malloc((size_t)(n > 0 ? n : 1) * sizeof *perm, err);
    if (!perm) return RG_ERR_NOMEM;
    rg_rng r = rg_rng_keyed(seed, ORDER_KEY, 0);
    rg_rng_permutation(&r, perm, (uint32_t)n);
    for (int32_t j = 0; j < n; j++) pos[perm[j]] = (uint32_t)j;
    free(perm);
    return RG_OK;
}

rg_status rg_curriculum_rank(const float *scores, int32_t n, rg_curriculum_order order, uint64_t seed, int32_t *rank,
                             rg_error *err)
{
    if (n < 0) return rg_fail(err, RG_ERR_ARG, "curriculum: %d samples", n);
    if (order != RG_ORDER_RANDOM && !scores)
        return rg_fail(err, RG_ERR_ARG, "curriculum_order: easy and hard orders need difficulty scores");
    if ((unsigned)order > RG_ORDER_RANDOM) return rg_fail(err, RG_ERR_ARG, "curriculum_order: %d is not an order", (int)order);
    rank_item *it = rg_malloc((size_t)(n > 0 ? n : 1) * sizeof *it, err);
    uint32_t *pos = it ? rg_malloc((size_t)(n > 0 ? n : 1) * sizeof *pos, err) : NULL;
    rg_status st = pos ? random_positions(n, seed, pos, err) : RG_ERR_NOMEM;
    if (!st) {
        for (int32_t i = 0; i < n; i++) {
            double s = order == RG_ORDER_RANDOM ? 0.0 : isnan(scores[i]) ? INFINITY : (double)scores[i];
            it[i] = (rank_item){order == RG_ORDER_HARD ? -s : s, pos[i], i};
        }
        qsort(it, (size_t)n, sizeof *it, by_key);
        for (int32_t i = 0; i < n; i++) rank[i] = it[i].index;
    }
    free(it);
    free(pos);
    return st;
}

static int by_int(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

void rg_curriculum_pick(const int32_t *rank, int32_t k, int32_t *subset)
{
    if (k <= 0) return;
    memcpy(subset, rank, (size_t)k * sizeof *subset);
    qsort(subset, (size_t)k, sizeof *subset, by_int);
}

/* ---- scores from a file --------------------------------------------------------------- */

static int parse_float(const char *s, char **end, float *out)
{
    errno = 0;
    double v = strtod(s, end);
    if (*end == s || errno == ERANGE) return 0;
    *out = (float)v;
    return isfinite(v) && isfinite(*out);
}

rg_status rg_curriculum_read_scores(const char *path, int32_t n, float *scores, rg_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f) return rg_fail(err, RG_ERR_IO, "%s: cannot read the scores file: %s", path, strerror(errno));
    uint8_t *seen = rg_calloc((size_t)(n > 0 ? n : 1), 1, err);
    if (!seen) {
        fclose(f);
        return RG_ERR_NOMEM;
    }
    char line[512];
    int32_t lineno = 0, count = 0, form = 0; /* form: 1 = one score per line, 2 = "index score" */
    rg_status st = RG_OK;
    while (!st && fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n' && !feof(f)) {
            st = rg_fail(err, RG_ERR_FORMAT, "%s:%d: line is longer than %zu characters", path, lineno, sizeof line - 2);
            break;
        }
        while (len > 0 && isspace((unsigned char)line[len - 1])) line[--len] = 0;
        char *p = line;
        while (isspace((unsigned char)*p)) p++;
        if (!*p || *p == '#') continue;
        char *end;
        float a, b;
        if (!parse_float(p, &end, &a)) {
            st = rg_fail(err, RG_ERR_FORMAT, "%s:%d: '%.40s' is not a finite number", path, lineno, p);
            break;
        }
        char *q = end;
        while (isspace((unsigned char)*q)) q++;
        int this_form = *q ? 2 : 1;
        if (form && this_form != form) {
            st = rg_fail(err, RG_ERR_FORMAT, "%s:%d: mixes the two forms ('score' and 'index score' lines)", path,
                         lineno);
            break;
        }
        form = this_form;
        if (form == 1) {
            if (count >= n) {
                st = rg_fail(err, RG_ERR_FORMAT, "%s:%d: more scores than the %d training samples", path, lineno, n);
                break;
            }
            scores[count++] = a;
            continue;
        }
        /* "index score": the index must be a whole number */
        errno = 0;
        long long idx = strtoll(p, &end, 10);
        if (errno || (!isspace((unsigned char)*end))) {
            st = rg_fail(err, RG_ERR_FORMAT, "%s:%d: '%.40s': the index is not an integer", path, lineno, p);
            break;
        }
        if (idx < 0 || idx >= n) {
            st = rg_fail(err, RG_ERR_FORMAT, "%s:%d: index %lld is outside [0, %d)", path, lineno, idx, n);
            break;
        }
        if (!parse_float(q, &end, &b)) {
            st = rg_fail(err, RG_ERR_FORMAT, "%s:%d: '%.40s' is not a finite number", path, lineno, q);
            break;
        }
        while (isspace((unsigned char)*end)) end++;
        if (*end) {
            st = rg_fail(err, RG_ERR_FORMAT, "%s:%d: unexpected '%.40s' after the score", path, lineno, end);
            break;
        }
        if (seen[idx]) {
            st = rg_fail(err, RG_ERR_FORMAT, "%s:%d: index %lld is given twice", path, lineno, idx);
            break;
        }
        seen[idx] = 1;
        scores[idx] = b;
        count++;
    }
    if (!st && ferror(f)) st = rg_fail(err, RG_ERR_IO, "%s: read error", path);
    if (!st && count != n) {
        if (form == 2) {
            int32_t missing = 0;
            while (missing < n && seen[missing]) missing++;
            st = rg_fail(err, RG_ERR_FORMAT, "%s:%d: %d of the %d training samples have a score (index %d has none)",
                         path, lineno, count, n, missing);
        } else {
            st = rg_fail(err, RG_ERR_FORMAT, "%s:%d: %d scores for %d training samples", path, lineno, count, n);
        }
    }
    free(seen);
    fclose(f);
    return st;
}

/* ---- scores from a teacher ------------------------------------------------------------- */

rg_status rg_curriculum_teacher_scores(const char *path, const rg_dataset *ds, rg_score_kind kind, float mean,
                                       float std, int32_t batch, float *scores, rg_error *err)
{
    rg_graph *g = NULL;
    rg_st_file *f = NULL;
    rg_status st = rg_checkpoint_load(path, 1, &g, &f, err);
    if (st) return rg_error_prefix(err, "curriculum_teacher");
    /* the teacher's own normalization when it recorded one */
    if (rg_st_meta_get(f, "regain.normalize")) rg_checkpoint_normalization(f, &mean, &std);
    rg_st_free(f);
    rg_shape in = g->values[g->input].shape, out = g->values[g->output].shape;
    const int32_t classes = out.h * out.w * out.c;
    if (in.h != ds->h || in.w != ds->w || in.c != ds->c)
        st = rg_fail(err, RG_ERR_SHAPE, "curriculum_teacher %s: the model takes %dx%dx%d images but the data has %dx%dx%d",
                     path, in.h, in.w, in.c, ds->h, ds->w, ds->c);
    else if (classes < ds->n_classes)
        st = rg_fail(err, RG_ERR_SHAPE, "curriculum_teacher %s: the model has %d outputs but the data has %d classes", path,
                     classes, ds->n_classes);
    if (batch < 1) batch = 1;
    if (batch > ds->n) batch = ds->n > 0 ? ds->n : 1;
    if (!st) st = rg_graph_plan(g, batch, RG_PLAN_EVAL, err);
    float *loss = st ? NULL : rg_malloc((size_t)batch * sizeof *loss, err);
    rg_loader *ld = NULL;
    rg_loader_config lc = {.batch = batch, .mean = mean, .std = std, .workers = 0};
    if (!st && !loss) st = RG_ERR_NOMEM;
    if (!st) st = rg_loader_create(ds, &lc, &ld, err);
    if (!st) {
        rg_loader_start_epoch(ld, 0);
        const float *x;
        const int32_t *y, *idx;
        int32_t count;
        size_t per = (size_t)in.h * in.w * in.c;
        rg_exec ctx = {0};
        while (!st && rg_loader_next(ld, &x, &y, &idx, &count)) {
            if ((st = rg_graph_set_batch(g, count, err))) break;
            memcpy(rg_graph_input(g), x, (size_t)count * per * sizeof(float));
            rg_graph_forward(g, &ctx);
            rg_xent_forward_backward(rg_graph_output(g), y, count, classes, 0.0f, NULL, loss);
            /* confidence of the label = exp(-loss) without smoothing */
            for (int32_t j = 0; j < count; j++)
                scores[idx[j]] = kind == RG_SCORE_CONFIDENCE ? (float)(1.0 - exp(-(double)loss[j])) : loss[j];
        }
    }
    rg_loader_free(ld);
    free(loss);
    rg_graph_free(g);
    return st;
}
