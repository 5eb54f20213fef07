/* Predictions of the int8 runtime on uint8 images (regain/rt.h): the
 * pieces regain infer and regain eval share with the tests. */
#include "rt/rt_internal.h"

#include <stdlib.h>

void rg_rt_normalize(const rg_rt *rt, const uint8_t *pixels, size_t n, float *x)
{
    float mean = rt->m->mean, std = rt->m->std;
    for (size_t i = 0; i < n; i++) x[i] = ((float)pixels[i] / 255.0f - mean) / std;
}

rg_status rg_rt_predict(const rg_rt *rt, void *arena, const uint8_t *images, int32_t n, int32_t h, int32_t w,
                        int32_t c, int32_t *pred, rg_error *err)
{
    const rg_rgm *m = rt->m;
    const rg_rgm_tensor *ti = &m->tensors[m->input];
    if (h != ti->h || w != ti->w || c != ti->c)
        return rg_fail(err, RG_ERR_SHAPE, "rt: images are %dx%dx%d, the model takes %dx%dx%d", (int)h, (int)w, (int)c,
                       (int)ti->h, (int)ti->w, (int)ti->c);
    size_t in_n = rg_rt_tensor_bytes(m, m->input), out_n = rg_rt_tensor_bytes(m, m->output);
    float *x = malloc(sizeof(float) * in_n), *y = malloc(sizeof(float) * out_n);
    if (!x || !y) {
        free(x);
        free(y);
        return rg_fail(err, RG_ERR_NOMEM, "rt: out of memory");
    }
    for (int32_t i = 0; i < n; i++) {
        rg_rt_normalize(rt, images + (size_t)i * in_n, in_n, x);
        rg_rt_invoke_float(rt, arena, x, y);
        int32_t best = 0;
        for (size_t k = 1; k < out_n; k++)
            if (y[k] > y[best]) best = (int32_t)k;
        pred[i] = best;
    }
    free(x);
    free(y);
    return RG_OK;
}
