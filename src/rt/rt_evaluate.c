/* The accuracy of a lowered int8 model through the runtime: what regain
 * quantize and quantize runs report. The runtime's kernels give the integer
 * reference's bits (tests/unit/test_int8_kernels.c, tests/e2e/test_rt.c),
 * about a hundred times faster than the reference executor; a model with
 * an op the runtime lacks is evaluated by the reference (rg_qmodel_evaluate). */
#include "regain/rt_qmodel.h"
#include "regain/ptq.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 256 /* images normalized and run at a time */

rg_status rg_qmodel_evaluate_rt(const rg_qmodel *m, const rg_dataset *ds, float mean, float std,
                                void (*progress)(void *user, int32_t done, int32_t total), void *user,
                                rg_eval_result *r, rg_error *err)
{
    memset(r, 0, sizeof *r);
    rg_rgm *rgm = NULL;
    rg_error e = {0};
    rg_status st = rg_rgm_from_qmodel(m, mean, std, &rgm, &e);
    if (st == RG_ERR_UNSUPPORTED) return rg_qmodel_evaluate(m, ds, mean, std, 64, progress, user, r, err);
    if (st) {
        *err = e;
        return st;
    }
    const rg_rgm_tensor *ti = &rgm->tensors[rgm->input], *to = &rgm->tensors[rgm->output];
    int32_t classes = to->h * to->w * to->c;
    rg_rt *rt = NULL;
    void *arena = NULL;
    float *x = NULL, *y = NULL;
    rg_rt_options o = {8, omp_get_max_threads()};
    if (ti->h != ds->h || ti->w != ds->w || ti->c != ds->c)
        st = rg_fail(err, RG_ERR_SHAPE, "%s: images are %dx%dx%d but the int8 model takes %dx%dx%d", ds->source,
                     ds->h, ds->w, ds->c, ti->h, ti->w, ti->c);
    else if (ds->n_classes > classes)
        st = rg_fail(err, RG_ERR_SHAPE, "%s: labels go up to %d but the int8 model has %d outputs", ds->source,
                     ds->n_classes - 1, classes);
    else st = rg_rt_prepare_opts(rgm, NULL, &o, &rt, err);
    size_t image = rg_dataset_sample_bytes(ds);
    if (!st) {
        arena = rg_alloc_aligned(rg_rt_arena_size(rt), err);
        x = rg_malloc(sizeof(float) * image * CHUNK, err);
        y = rg_malloc(sizeof(float) * (size_t)classes * CHUNK, err);
        r->confusion = rg_calloc((size_t)classes * classes, sizeof *r->confusion, err);
        if (!arena || !x || !y || !r->confusion) st = RG_ERR_NOMEM;
    }
    r->classes = classes;
    for (int32_t at = 0; at < ds->n && !st; at += CHUNK) {
        int32_t nb = ds->n - at < CHUNK ? ds->n - at : CHUNK;
        rg_rt_normalize(rt, ds->pixels + (size_t)at * image, image * (size_t)nb, x);
        rg_rt_invoke_batch_float(rt, arena, nb, x, y);
        for (int32_t i = 0; i < nb; i++) rg_eval_count(r, y + (size_t)i * classes, ds->labels[at + i]);
        if (progress) progress(user, at + nb, ds->n);
    }
    r->loss = NAN;
    r->top1 = r->n ? (double)r->correct / (double)r->n : 0.0;
    rg_free_aligned(arena);
    free(x);
    free(y);
    rg_rt_free(rt);
    rg_rgm_free(rgm);
    if (st) rg_eval_result_free(r);
    return st;
}
