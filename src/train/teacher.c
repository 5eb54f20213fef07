/* Frozen teachers: load, plan once in evaluation mode, run, average. */
#include "train/teacher.h"
#include "regain/checkpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

rg_status rg_teachers_load(rg_teachers *t, const rg_distill_config *c, int32_t h, int32_t w, int32_t ch,
                           int32_t classes, rg_error *err)
{
    memset(t, 0, sizeof *t);
    t->classes = classes;
    for (int32_t k = 0; k < RG_DISTILL_MAX_TEACHERS; k++) {
        const char *path = c->teachers[k];
        if (!path[0]) continue;
        const char *key = k == 0 ? "teacher" : k == 1 ? "teacher2" : "teacher3";
        rg_graph *g;
        rg_st_file *f;
        rg_status st = rg_checkpoint_load(path, 1, &g, &f, err);
        if (st) return rg_error_prefix(err, "%s", key);
        snprintf(t->path[t->n], sizeof t->path[0], "%s", path);
        const char *crc = rg_st_meta_get(f, "regain.crc32");
        snprintf(t->crc[t->n], sizeof t->crc[0], "%s", crc ? crc : "");
        t->g[t->n++] = g;
        /* the teacher reads the student's batches as they are */
        float mean, std;
        int normalized = rg_st_meta_get(f, "regain.normalize") != NULL;
        rg_checkpoint_normalization(f, &mean, &std);
        rg_st_free(f);
        if (c->std > 0.0f && normalized && (mean != c->mean || std != c->std))
            return rg_fail(err, RG_ERR_ARG,
                           "%s %s: the teacher learned inputs normalized with mean %.9g and std %.9g, but this run "
                           "normalizes with %.9g and %.9g (set mean and std as the teacher's run did)",
                           key, path, (double)mean, (double)std, (double)c->mean, (double)c->std);
        rg_shape in = g->values[g->input].shape, out = g->values[g->output].shape;
        if (in.h != h || in.w != w || in.c != ch)
            return rg_fail(err, RG_ERR_SHAPE, "%s %s: the teacher takes %dx%dx%d images but the data is %dx%dx%d",
                           key, path, in.h, in.w, in.c, h, w, ch);
        if (out.h * out.w * out.c != classes)
            return rg_fail(err, RG_ERR_SHAPE, "%s %s: the teacher has %d outputs but the student has %d", key, path,
                           out.h * out.w * out.c, classes);
    }
    return RG_OK;
}

rg_status rg_teachers_plan(rg_teachers *t, int32_t batch, rg_error *err)
{
    t->batch = batch;
    free(t->member_probs);
    t->member_probs = rg_calloc((size_t)batch * t->classes, sizeof(float), err);
    if (!t->member_probs) return RG_ERR_NOMEM;
    for (int32_t k = 0; k < t->n; k++) {
        rg_status st = rg_graph_plan(t->g[k], batch, RG_PLAN_EVAL, err);
        if (!st) st = rg_graph_fold(t->g[k], err);
        if (st) return rg_error_prefix(err, "teacher %s", t->path[k]);
    }
    return RG_OK;
}

void rg_teachers_forward(rg_teachers *t, const float *x, int32_t n, float T, float *probs)
{
    size_t count = (size_t)n * t->classes;
    rg_exec ctx = {0};
    for (int32_t k = 0; k < t->n; k++) {
        rg_graph *g = t->g[k];
        rg_error e;
        rg_graph_set_batch(g, n, &e); /* n <= batch: cannot fail */
        rg_shape in = g->values[g->input].shape;
        memcpy(rg_graph_input(g), x, (size_t)n * in.h * in.w * in.c * sizeof(float));
        rg_graph_forward(g, &ctx);
        if (t->n == 1) {
            rg_softmax_temperature(rg_graph_output(g), n, t->classes, T, probs);
            return;
        }
        /* the ensemble: the mean of the members' probabilities, summed in
         * member order */
        float *p = k == 0 ? probs : t->member_probs;
        rg_softmax_temperature(rg_graph_output(g), n, t->classes, T, p);
        if (k > 0)
            for (size_t i = 0; i < count; i++) probs[i] += p[i];
    }
    for (size_t i = 0; i < count; i++) probs[i] /= (float)t->n;
}

void rg_teachers_free(rg_teachers *t)
{
    for (int32_t k = 0; k < t->n; k++) rg_graph_free(t->g[k]);
    free(t->member_probs);
    memset(t, 0, sizeof *t);
}
