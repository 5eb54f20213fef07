/* Lowered int8 models shared by the runtime and export tests: the model
 * that uses every op kind of .rgm version 2 (built directly as an
 * rg_qmodel: the float lowering does not produce these ops) and mbv2-tiny
 * lowered with cross-layer equalization so that its per-channel clamps
 * bind. Header-only (static inline) so that each test program that needs
 * them just includes it. */
#ifndef REGAIN_TEST_QMODEL_FIXTURE_H
#define REGAIN_TEST_QMODEL_FIXTURE_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "regain/graph.h"
#include "regain/quant_model.h"
#include "regain/rng.h"
#include "regain/zoo.h"
#include "test_support.h"

/* ---- every version 2 op ---- */

/* tensors and ops of rgt_ops_model */
enum { RGT_OPS_N_T = 14, RGT_OPS_N_OPS = 13 };

static inline void rgt_ops_tensor(rg_qmodel *m, int32_t t, int32_t h, int32_t w, int32_t c, float scale, int32_t zp)
{
    m->tensors[t] = (rg_qtensor){.h = h, .w = w, .c = c, .q = {scale, zp}, .value = t};
}

static inline rg_qop *rgt_ops_op(rg_qmodel *m, int32_t i, rg_qop_kind kind, const char *name, int32_t in0,
                                 int32_t in1, int32_t out)
{
    rg_qop *o = &m->ops[i];
    o->kind = kind;
    snprintf(o->name, sizeof o->name, "%s", name);
    o->in[0] = in0;
    o->in[1] = in1;
    o->in[2] = o->in[3] = -1;
    o->n_in = in1 >= 0 ? 2 : 1;
    o->out = out;
    o->f_lo = -INFINITY;
    o->f_hi = INFINITY;
    return o;
}

static inline void rgt_ops_weights(rg_qop *o, size_t count, int32_t out_c, uint64_t seed, float gain)
{
    rg_rng r = rg_rng_keyed(seed, 0, 0);
    o->out_c = out_c;
    o->fw = malloc(sizeof(float) * count);
    o->fb = malloc(sizeof(float) * (size_t)out_c);
    for (size_t i = 0; i < count; i++) o->fw[i] = gain * rg_rng_normal(&r);
    for (int32_t c = 0; c < out_c; c++) o->fb[c] = 0.3f * rg_rng_normal(&r);
}

/* 6x6x4 -> pw conv (8, ReLU6 with per-channel clips) -> split 4 + 4 ->
 * hswish LUT on the first half; the second half squeezed (gap) and gated
 * (sigmoid LUT) -> mul (broadcast) -> concat with the second half ->
 * shuffle (2 groups) -> ReLU clamp -> mul with the concat (elementwise) ->
 * gap -> fc (5). Integer parameters from rg_qmodel_requantize_op, as the
 * lowering would derive them; every tensor kept by the reference arena
 * plan. Input tensor 0 (6x6x4), output 13 (5). Free with rg_qmodel_free. */
static inline rg_qmodel *rgt_ops_model(void)
{
    rg_qmodel *m = calloc(1, sizeof *m);
    m->tensors = calloc(RGT_OPS_N_T, sizeof *m->tensors);
    m->ops = calloc(RGT_OPS_N_OPS, sizeof *m->ops);
    m->n_tensors = RGT_OPS_N_T;
    m->n_ops = RGT_OPS_N_OPS;
    m->per_channel = 1;
    m->input = 0;
    m->output = 13;
    rgt_ops_tensor(m, 0, 6, 6, 4, 0.03f, -5);
    rgt_ops_tensor(m, 1, 6, 6, 8, 6.0f / 255, -128);
    rgt_ops_tensor(m, 2, 6, 6, 4, 6.0f / 255, -128);
    rgt_ops_tensor(m, 3, 6, 6, 4, 6.0f / 255, -128);
    rgt_ops_tensor(m, 4, 6, 6, 4, 0.03f, -100);
    rgt_ops_tensor(m, 5, 1, 1, 4, 0.012f, -128);
    rgt_ops_tensor(m, 6, 1, 1, 4, 1.0f / 256, -128);
    rgt_ops_tensor(m, 7, 6, 6, 4, 0.02f, -90);
    rgt_ops_tensor(m, 8, 6, 6, 8, 0.03f, -60);
    rgt_ops_tensor(m, 9, 6, 6, 8, 0.03f, -60);
    rgt_ops_tensor(m, 10, 6, 6, 8, 0.03f, -60);
    rgt_ops_tensor(m, 11, 6, 6, 8, 0.05f, -110);
    rgt_ops_tensor(m, 12, 1, 1, 8, 0.03f, -100);
    rgt_ops_tensor(m, 13, 1, 1, 5, 0.1f, 3);
    rg_qop *o = rgt_ops_op(m, 0, RG_QOP_CONV, "pw", 0, -1, 1);
    o->k_h = o->k_w = 1, o->stride = 1;
    rgt_ops_weights(o, 8 * 4, 8, 7, 0.6f);
    o->f_lo = 0.0f, o->f_hi = 6.0f;
    o->clip = malloc(sizeof(float) * 8);
    for (int c = 0; c < 8; c++) o->clip[c] = 0.6f + 0.55f * (float)c; /* 0.6 .. 4.45: below 6, they bind */
    rgt_ops_op(m, 1, RG_QOP_SPLIT, "split_a", 1, -1, 2)->ch_begin = 0;
    rgt_ops_op(m, 2, RG_QOP_SPLIT, "split_b", 1, -1, 3)->ch_begin = 4;
    rgt_ops_op(m, 3, RG_QOP_LUT, "hswish", 2, -1, 4)->lut_fn = RG_Q_LUT_HSWISH;
    rgt_ops_op(m, 4, RG_QOP_GAP, "squeeze", 3, -1, 5);
    rgt_ops_op(m, 5, RG_QOP_LUT, "gate", 5, -1, 6)->lut_fn = RG_Q_LUT_SIGMOID;
    rgt_ops_op(m, 6, RG_QOP_MUL, "excite", 4, 6, 7);
    rgt_ops_op(m, 7, RG_QOP_CONCAT, "cat", 7, 3, 8);
    rgt_ops_op(m, 8, RG_QOP_SHUFFLE, "shuffle", 8, -1, 9)->groups = 2;
    o = rgt_ops_op(m, 9, RG_QOP_CLAMP, "relu", 9, -1, 10);
    o->f_lo = 0.0f;
    rgt_ops_op(m, 10, RG_QOP_MUL, "square", 10, 8, 11);
    rgt_ops_op(m, 11, RG_QOP_GAP, "gap", 11, -1, 12);
    o = rgt_ops_op(m, 12, RG_QOP_FC, "fc", 12, -1, 13);
    rgt_ops_weights(o, 5 * 8, 5, 8, 0.5f);
    size_t off = 0;
    for (int32_t t = 0; t < RGT_OPS_N_T; t++) {
        m->tensors[t].foffset = off;
        off += (size_t)m->tensors[t].h * m->tensors[t].w * m->tensors[t].c;
    }
    m->image_floats = off;
    for (int32_t i = 0; i < RGT_OPS_N_OPS; i++) CHECK(rg_qmodel_requantize_op(m, i, &E));
    rg_qmodel_plan_arena(m, 1); /* every tensor readable after a run */
    return m;
}

/* ---- lowered graphs ---- */

static inline void rgt_random_floats(float *x, size_t n, uint64_t seed)
{
    rg_rng r = rg_rng_keyed(seed, 0, 0);
    for (size_t i = 0; i < n; i++) x[i] = rg_rng_normal(&r);
}

/* Random weights; BN gammas/betas perturbed and running statistics settled
 * by `steps` training-mode passes of `batch` images over data (n > batch
 * images of image floats), so ranges are uneven as in a trained net. */
static inline void rgt_settle_steps(rg_graph *g, const float *data, int32_t n, int32_t image, int32_t batch,
                                    int32_t steps)
{
    rg_graph_init_params(g, 5);
    rg_rng r = rg_rng_keyed(6, 0, 0);
    for (int32_t i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i].op != RG_OP_BN) continue;
        const rg_param *gm = &g->params[g->nodes[i].param[0]], *bt = &g->params[g->nodes[i].param[1]];
        for (size_t k = 0; k < gm->count; k++) g->param_data[gm->offset + k] = 1.0f + 0.3f * rg_rng_normal(&r);
        for (size_t k = 0; k < bt->count; k++) g->param_data[bt->offset + k] = 0.3f * rg_rng_normal(&r);
    }
    /* the last linear layer is tiny at init (N(0, 0.01)): scale it up so that
     * the logits separate classes */
    int32_t fc = rg_graph_find_param(g, "fc.weight");
    if (fc >= 0)
        for (size_t k = 0; k < g->params[fc].count; k++) g->param_data[g->params[fc].offset + k] *= 30.0f;
    CHECK(rg_graph_plan(g, batch, RG_PLAN_TRAIN, &E));
    rg_exec ctx = {.training = 1, .seed = 1};
    for (int32_t step = 0; step < steps; step++) {
        int32_t at = (step * batch) % (n - batch);
        memcpy(rg_graph_input(g), data + (size_t)at * image, sizeof(float) * (size_t)batch * (size_t)image);
        ctx.step = (uint64_t)step;
        rg_graph_forward(g, &ctx);
    }
}

/* rgt_settle_steps with 6 passes of 16 images */
static inline void rgt_settle(rg_graph *g, const float *data, int32_t n, int32_t image)
{
    rgt_settle_steps(g, data, n, image, 16, 6);
}

/* mbv2-tiny (28x28x1, 10 classes; *g receives the graph, freed by the
 * caller after the model) lowered with cross-layer equalization on 64
 * noise images: its ReLU6 layers carry per-channel clamps (act_max_c).
 * Batch norms with gains of 4 to 8 push many activations past 6, so that
 * the ReLU6 clips (and the per-channel clamps after equalization) bind, as
 * in a trained network. */
static inline rg_qmodel *rgt_mbv2_tiny_equalized(rg_graph **g)
{
    CHECK(rg_zoo_build("mbv2-tiny", 28, 28, 1, 10, g, &E));
    float *calib = malloc(sizeof(float) * 64 * 784);
    rgt_random_floats(calib, 64 * 784, 12);
    rgt_settle(*g, calib, 64, 784);
    rg_rng rg = rg_rng_keyed(7, 0, 0);
    for (int32_t i = 0; i < (*g)->n_nodes; i++) {
        if ((*g)->nodes[i].op != RG_OP_BN) continue;
        const rg_param *gm = &(*g)->params[(*g)->nodes[i].param[0]];
        for (size_t k = 0; k < gm->count; k++) (*g)->param_data[gm->offset + k] *= 4.0f + 4.0f * rg_rng_uniform(&rg);
    }
    rg_lower_config cfg = rg_lower_default();
    cfg.batch = 16;
    cfg.equalize = 1;
    rg_qmodel *qm;
    CHECK(rg_quant_lower(*g, calib, 64, &cfg, &qm, &E));
    free(calib);
    return qm;
}

/* A float graph with one of each op kind of .rgm version 1: conv, conv +
 * add, a standalone ReLU (a clamp, in place), max and average pooling,
 * depthwise, pointwise, global average pooling, a linear layer. */
static inline rg_graph *rgt_every_kind_graph(void)
{
    rg_graph *g;
    CHECK(rg_graph_create(12, 12, 3, &g, &E));
    int32_t a, b, v;
    CHECK(rg_graph_add_conv(g, "c1", g->input, (rg_conv_attr){3, 3, 1, 1, 1, 8, 1}, &a, &E));
    CHECK(rg_graph_add_conv(g, "c2", a, (rg_conv_attr){3, 3, 1, 1, 8, 8, 1}, &b, &E));
    CHECK(rg_graph_add_binary(g, RG_OP_ADD, "add", a, b, &v, &E));
    CHECK(rg_graph_add_unary(g, RG_OP_RELU, "relu", v, &v, &E));
    CHECK(rg_graph_add_pool(g, RG_OP_MAXPOOL, "mp", v, 2, 2, 0, &v, &E));
    CHECK(rg_graph_add_pool(g, RG_OP_AVGPOOL, "ap", v, 3, 1, 1, &v, &E));
    CHECK(rg_graph_add_conv(g, "dw", v, (rg_conv_attr){3, 3, 2, 1, 8, 8, 0}, &v, &E));
    CHECK(rg_graph_add_conv(g, "pw", v, (rg_conv_attr){1, 1, 1, 0, 1, 16, 1}, &v, &E));
    CHECK(rg_graph_add_unary(g, RG_OP_GAP, "gap", v, &v, &E));
    CHECK(rg_graph_add_linear(g, "fc", v, 5, 1, &v, &E));
    CHECK(rg_graph_finish(g, v, &E));
    return g;
}

#endif
