/* Evaluation: accuracy, mean loss and the confusion matrix of a graph on a
 * dataset, in eval mode (running BN statistics, no dropout). Inputs go
 * through the same loader as training (no shuffling, no augmentation), so
 * normalization is identical bit for bit. */
#include "regain/loader.h"
#include "regain/trainer.h"

#include <stdlib.h>
#include <string.h>

rg_status rg_evaluate(rg_graph *g, const rg_dataset *ds, float mean, float std, rg_eval_result *r, rg_error *err)
{
    memset(r, 0, sizeof *r);
    if (!g->arena) return rg_fail(err, RG_ERR_ARG, "evaluate: the graph has no plan");
    rg_shape in = g->values[g->input].shape, out = g->values[g->output].shape;
    if (in.h != ds->h || in.w != ds->w || in.c != ds->c)
        return rg_fail(err, RG_ERR_SHAPE, "%s: images are %dx%dx%d but the model takes %dx%dx%d", ds->source, ds->h,
                       ds->w, ds->c, in.h, in.w, in.c);
    int32_t classes = out.h * out.w * out.c;
    if (ds->n_classes > classes)
        return rg_fail(err, RG_ERR_SHAPE, "%s: labels go up to %d but the model has %d outputs", ds->source,
                       ds->n_classes - 1, classes);
    r->classes = classes;
    r->confusion = rg_calloc((size_t)classes * classes, sizeof *r->confusion, err);
    float *losses = rg_calloc((size_t)g->planned_batch, sizeof *losses, err);
    rg_loader_config lc = {.batch = g->planned_batch, .mean = mean, .std = std, .workers = 0};
    rg_loader *ld = NULL;
    rg_status st = RG_ERR_NOMEM;
    if (!r->confusion || !losses || (st = rg_loader_create(ds, &lc, &ld, err))) goto done;
    rg_loader_start_epoch(ld, 0);
    const float *x;
    const int32_t *y;
    int32_t count;
    double loss_sum = 0.0;
    rg_exec ctx = {0};
    size_t per = (size_t)in.h * in.w * in.c;
    while (rg_loader_next(ld, &x, &y, NULL, &count)) {
        if ((st = rg_graph_set_batch(g, count, err))) goto done;
        memcpy(rg_graph_input(g), x, (size_t)count * per * sizeof(float));
        rg_graph_forward(g, &ctx);
        const float *logits = rg_graph_output(g);
        rg_xent_forward_backward(logits, y, count, classes, 0.0f, NULL, losses);
        for (int32_t i = 0; i < count; i++) {
            rg_eval_count(r, logits + (size_t)i * classes, y[i]);
            loss_sum += losses[i];
        }
    }
    r->loss = r->n ? loss_sum / (double)r->n : 0.0;
    r->top1 = r->n ? (double)r->correct / (double)r->n : 0.0;
    st = rg_graph_set_batch(g, g->planned_batch, err);
done:
    rg_loader_free(ld);
    free(losses);
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
