/* Evaluation: accuracy, mean loss and the confusion matrix of a graph on a
 * dataset, and the logits of chosen samples, in eval mode (running BN
 * statistics, no dropout). Inputs go through the same loader as training
 * (no shuffling, no augmentation), so normalization is identical bit for
 * bit. */
#include "regain/loader.h"
#include "regain/trainer.h"

#include <stdlib.h>
#include <string.h>

static rg_status check_shapes(const rg_graph *g, const rg_dataset *ds, int32_t *classes, rg_error *err)
{
    if (!g->arena) return rg_fail(err, RG_ERR_ARG, "evaluate: the graph has no plan");
    rg_shape in = g->values[g->input].shape, out = g->values[g->output].shape;
    if (in.h != ds->h || in.w != ds->w || in.c != ds->c)
        return rg_fail(err, RG_ERR_SHAPE, "%s: images are %dx%dx%d but the model takes %dx%dx%d", ds->source, ds->h,
                       ds->w, ds->c, in.h, in.w, in.c);
    *classes = out.h * out.w * out.c;
    if (ds->n_classes > *classes)
        return rg_fail(err, RG_ERR_SHAPE, "%s: labels go up to %d but the model has %d outputs", ds->source,
                       ds->n_classes - 1, *classes);
    return RG_OK;
}

/* In batches of the planned size; the graph's batch is restored at the end. */
rg_status rg_predict(rg_graph *g, const rg_dataset *ds, const int32_t *indices, int32_t m, float mean, float std,
                     rg_logits_fn fn, void *user, rg_error *err)
{
    int32_t classes;
    rg_status st = check_shapes(g, ds, &classes, err);
    if (st) return st;
    rg_loader_config lc = {.batch = g->planned_batch, .mean = mean, .std = std, .workers = 0};
    rg_loader *ld = NULL;
    if ((st = rg_loader_create(ds, &lc, &ld, err))) return st;
    if (indices) st = rg_loader_start_epoch_subset(ld, 0, indices, m > 0 ? m : 0, err);
    else rg_loader_start_epoch(ld, 0);
    const float *x;
    const int32_t *y, *idx;
    int32_t count;
    rg_exec ctx = {0};
    size_t per = rg_shape_count(g->values[g->input].shape);
    while (!st && rg_loader_next(ld, &x, &y, &idx, &count)) {
        if ((st = rg_graph_set_batch(g, count, err))) break;
        memcpy(rg_graph_input(g), x, (size_t)count * per * sizeof(float));
        rg_graph_forward(g, &ctx);
        fn(user, idx, y, rg_graph_output(g), count, classes);
    }
    rg_loader_free(ld);
    rg_status reset = rg_graph_set_batch(g, g->planned_batch, st ? NULL : err);
    return st ? st : reset;
}

typedef struct {
    rg_eval_result *r;
    float *losses;
    double loss_sum;
} eval_state;

static void count_batch(void *user, const int32_t *indices, const int32_t *labels, const float *logits, int32_t count,
                        int32_t classes)
{
    (void)indices;
    eval_state *e = user;
    rg_xent_forward_backward(logits, labels, count, classes, 0.0f, NULL, e->losses);
    for (int32_t i = 0; i < count; i++) {
        rg_eval_count(e->r, logits + (size_t)i * classes, labels[i]);
        e->loss_sum += e->losses[i];
    }
}

rg_status rg_evaluate(rg_graph *g, const rg_dataset *ds, float mean, float std, rg_eval_result *r, rg_error *err)
{
    memset(r, 0, sizeof *r);
    rg_status st = check_shapes(g, ds, &r->classes, err);
    if (st) return st;
    eval_state e = {r, NULL, 0.0};
    r->confusion = rg_calloc((size_t)r->classes * r->classes, sizeof *r->confusion, err);
    e.losses = rg_calloc((size_t)g->planned_batch, sizeof *e.losses, err);
    if (!r->confusion || !e.losses) st = RG_ERR_NOMEM;
    if (!st) st = rg_predict(g, ds, NULL, 0, mean, std, count_batch, &e, err);
    r->loss = r->n ? e.loss_sum / (double)r->n : 0.0;
    r->top1 = r->n ? (double)r->correct / (double)r->n : 0.0;
    free(e.losses);
    if (st) rg_eval_result_free(r);
    return st;
}

void rg_eval_count(rg_eval_result *r, const float *logits, int32_t label)
{
    int32_t best = 0;
    for (int32_t c = 1; c < r->classes; c++)
        if (logits[c] > logits[best]) best = c;
    r->confusion[(size_t)label * r->classes + best]++;
    r->correct += best == label;
    r->n++;
}

void rg_eval_result_free(rg_eval_result *r)
{
    free(r->confusion);
    r->confusion = NULL;
}
