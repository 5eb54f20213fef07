/* Post-training quantization helpers (contract in regain/ptq.h). */
#include "regain/ptq.h"
#include "regain/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    rg_obs_kind kind;
} observers[] = {{"minmax", RG_OBS_MINMAX},
                 {"moving-average", RG_OBS_MOVING_AVG},
                 {"percentile", RG_OBS_PERCENTILE},
                 {"mse", RG_OBS_MSE},
                 {"entropy", RG_OBS_ENTROPY}};
#define N_OBSERVERS (sizeof observers / sizeof observers[0])

const char *rg_obs_kind_name(rg_obs_kind kind)
{
    for (size_t i = 0; i < N_OBSERVERS; i++)
        if (observers[i].kind == kind) return observers[i].name;
    return "?";
}

rg_status rg_obs_kind_parse(const char *name, rg_obs_kind *kind, rg_error *err)
{
    for (size_t i = 0; i < N_OBSERVERS; i++)
        if (!strcmp(observers[i].name, name)) {
            *kind = observers[i].kind;
            return RG_OK;
        }
    return rg_fail(err, RG_ERR_ARG, "'%s' is not an observer (minmax, moving-average, percentile, mse, entropy)", name);
}

void rg_ptq_normalize(const uint8_t *px, size_t n, float mean, float std, float *out)
{
    for (size_t i = 0; i < n; i++) out[i] = ((float)px[i] / 255.0f - mean) / std;
}

rg_status rg_ptq_calibration(const rg_dataset *ds, int32_t n, uint64_t seed, float mean, float std, float **images,
                             int32_t *count, rg_error *err)
{
    *images = NULL;
    *count = 0;
    if (n < 1) return rg_fail(err, RG_ERR_ARG, "calibration: %d images: need at least 1", n);
    int32_t k = n < ds->n ? n : ds->n;
    size_t image = rg_dataset_sample_bytes(ds);
    uint32_t *perm = rg_malloc(sizeof(uint32_t) * (size_t)ds->n, err);
    float *out = rg_malloc(sizeof(float) * image * (size_t)k, err);
    if (!perm || !out) {
        free(perm);
        free(out);
        return RG_ERR_NOMEM;
    }
    rg_rng r = rg_rng_keyed(seed, 0x9a11b, 0);
    rg_rng_permutation(&r, perm, (uint32_t)ds->n);
    for (int32_t i = 0; i < k; i++)
        rg_ptq_normalize(ds->pixels + (size_t)perm[i] * image, image, mean, std, out + (size_t)i * image);
    free(perm);
    *images = out;
    *count = k;
    return RG_OK;
}

rg_status rg_qmodel_evaluate(const rg_qmodel *m, const rg_dataset *ds, float mean, float std, int32_t batch,
                             void (*progress)(void *user, int32_t done, int32_t total), void *user,
                             rg_eval_result *r, rg_error *err)
{
    memset(r, 0, sizeof *r);
    const rg_qtensor *to = &m->tensors[m->output];
    int32_t classes = to->h * to->w * to->c;
    if (ds->n_classes > classes)
        return rg_fail(err, RG_ERR_SHAPE, "%s: labels go up to %d but the int8 model has %d outputs", ds->source,
                       ds->n_classes - 1, classes);
    size_t image = rg_dataset_sample_bytes(ds);
    float *x = rg_malloc(sizeof(float) * image * (size_t)batch, err);
    float *logits = rg_malloc(sizeof(float) * (size_t)classes * (size_t)batch, err);
    int8_t *arena = rg_malloc(rg_qmodel_arena_bytes(m, batch), err);
    r->confusion = rg_calloc((size_t)classes * classes, sizeof *r->confusion, err);
    rg_status st = x && logits && arena && r->confusion ? RG_OK : RG_ERR_NOMEM;
    r->classes = classes;
    for (int32_t at = 0; at < ds->n && !st; at += batch) {
        int32_t nb = ds->n - at < batch ? ds->n - at : batch;
        rg_ptq_normalize(ds->pixels + (size_t)at * image, image * (size_t)nb, mean, std, x);
        if ((st = rg_qmodel_run_float(m, arena, x, nb, logits, err))) break;
        for (int32_t i = 0; i < nb; i++) rg_eval_count(r, logits + (size_t)i * classes, ds->labels[at + i]);
        if (progress) progress(user, at + nb, ds->n);
    }
    r->loss = NAN;
    r->top1 = r->n ? (double)r->correct / (double)r->n : 0.0;
    free(x);
    free(logits);
    free(arena);
    if (st) rg_eval_result_free(r);
    return st;
}
