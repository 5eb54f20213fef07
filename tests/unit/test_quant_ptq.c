/* Post-training quantization pieces on a small MobileNetV2-like graph:
 * observers selectable, per-channel against per-tensor weights, the
 * liveness-planned int8 arena, concat rescaling, ReLU6-safe cross-layer
 * equalization (the float network must not change, clipping included),
 * empirical bias correction, and the int8 model file. */
#include "test_support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "regain/adaround.h"
#include "regain/bias_correct.h"
#include "regain/equalize.h"
#include "regain/graph.h"
#include "regain/quant_doctor.h"
#include "regain/quant_model.h"
#include "regain/rng.h"
#include "regain/safetensors.h"

enum { H = 8, W = 8, C = 3, IMG = H * W * C, CLASSES = 10, N_CALIB = 64, N_TEST = 16 };

static void conv(rg_graph *g, const char *name, int32_t *v, int32_t k, int32_t cout, int32_t groups, int bn,
                 rg_op_type act)
{
    char nm[64];
    rg_conv_attr a = {.kh = k, .kw = k, .stride = 1, .pad = k / 2, .groups = groups, .cout = cout, .has_bias = !bn};
    CHECK(rg_graph_add_conv(g, name, *v, a, v, &E));
    if (bn) {
        snprintf(nm, sizeof nm, "%s.bn", name);
        CHECK(rg_graph_add_bn(g, nm, *v, v, &E));
    }
    if (act != RG_OP_INPUT) {
        snprintf(nm, sizeof nm, "%s.act", name);
        CHECK(rg_graph_add_unary(g, act, nm, *v, v, &E));
    }
}

/* stem 3x3 (relu6) -> expand 1x1 (relu6) -> dw 3x3 (relu6) -> project 1x1,
 * residual add, two 1x1 branches (relu / none) concatenated, gap, fc. BN
 * statistics and affine parameters spread out; the depthwise channels'
 * weights scaled over two decades (the usual trouble); pre-activations
 * large enough that ReLU6 clips. */
static rg_graph *small_net(uint64_t seed, double dw_spread)
{
    rg_graph *g;
    CHECK(rg_graph_create(H, W, C, &g, &E));
    int32_t v = g->input, res, b2, b3;
    conv(g, "stem", &v, 3, 8, 1, 1, RG_OP_RELU6);
    res = v;
    conv(g, "exp", &v, 1, 16, 1, 1, RG_OP_RELU6);
    conv(g, "dw", &v, 3, 16, 16, 1, RG_OP_RELU6);
    conv(g, "proj", &v, 1, 8, 1, 1, RG_OP_INPUT);
    CHECK(rg_graph_add_binary(g, RG_OP_ADD, "res", res, v, &v, &E));
    b2 = b3 = v;
    conv(g, "b2", &b2, 1, 4, 1, 0, RG_OP_RELU);
    conv(g, "b3", &b3, 1, 6, 1, 0, RG_OP_INPUT);
    int32_t ins[2] = {b2, b3};
    CHECK(rg_graph_add_concat(g, "cat", ins, 2, &v, &E));
    CHECK(rg_graph_add_unary(g, RG_OP_GAP, "gap", v, &v, &E));
    CHECK(rg_graph_add_linear(g, "fc", v, CLASSES, 1, &v, &E));
    CHECK(rg_graph_finish(g, v, &E));
    rg_graph_init_params(g, seed);
    rg_rng r = rg_rng_keyed(seed, 1, 0);
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const rg_node *n = &g->nodes[i];
        if (n->op == RG_OP_BN) {
            const rg_param *gm = &g->params[n->param[0]], *bt = &g->params[n->param[1]];
            const rg_param *mu = &g->buffers[n->buffer[0]], *var = &g->buffers[n->buffer[1]];
            for (size_t k = 0; k < gm->count; k++) {
                g->param_data[gm->offset + k] = 1.5f + 0.5f * rg_rng_normal(&r);
                g->param_data[bt->offset + k] = 1.0f + 1.0f * rg_rng_normal(&r);
                g->buffer_data[mu->offset + k] = 0.3f * rg_rng_normal(&r);
                g->buffer_data[var->offset + k] = 0.2f + 2.0f * rg_rng_uniform(&r);
            }
        }
        if (n->op == RG_OP_CONV && !strcmp(n->name, "dw")) {
            const rg_param *w = &g->params[n->param[0]];
            size_t per = w->count / 16;
            for (int32_t c = 0; c < 16; c++) {
                float f = (float)pow(10.0, dw_spread * (2.0 * rg_rng_uniform(&r) - 1.0));
                for (size_t k = 0; k < per; k++) g->param_data[w->offset + (size_t)c * per + k] *= f;
            }
        }
    }
    int32_t fc = rg_graph_find_param(g, "fc.weight");
    for (size_t k = 0; k < g->params[fc].count; k++) g->param_data[g->params[fc].offset + k] *= 30.0f;
    return g;
}

static float *images(int32_t n, uint64_t seed)
{
    float *x = malloc(sizeof(float) * (size_t)n * IMG);
    rg_rng r = rg_rng_keyed(seed, 2, 0);
    for (size_t i = 0; i < (size_t)n * IMG; i++) x[i] = 1.5f * rg_rng_normal(&r);
    return x;
}

static double sqnr_db(const float *ref, const float *got, size_t n)
{
    double s = 0, e = 0;
    for (size_t i = 0; i < n; i++) {
        s += (double)ref[i] * ref[i];
        e += ((double)ref[i] - got[i]) * ((double)ref[i] - got[i]);
    }
    return 10.0 * log10(s / (e > 0 ? e : 1e-30));
}

static rg_qmodel *lower(rg_graph *g, const float *calib, rg_lower_config cfg)
{
    rg_qmodel *m;
    CHECK(rg_quant_lower(g, calib, N_CALIB, &cfg, &m, &E));
    return m;
}

/* Float logits of the lowered model's float version. */
static void ref_logits(const rg_qmodel *m, const float *x, int32_t n, float *out)
{
    float *fa = malloc(sizeof(float) * rg_qmodel_float_arena_floats(m, n));
    CHECK(rg_qmodel_run_ref(m, fa, x, n, &E));
    memcpy(out, rg_qmodel_ftensor(m, fa, n, m->output), sizeof(float) * (size_t)n * CLASSES);
    free(fa);
}

static void int8_logits(const rg_qmodel *m, const float *x, int32_t n, float *out)
{
    int8_t *arena = malloc(rg_qmodel_arena_bytes(m, n));
    CHECK(rg_qmodel_run_float(m, arena, x, n, out, &E));
    free(arena);
}

static int32_t op_named(const rg_qmodel *m, const char *name)
{
    for (int32_t i = 0; i < m->n_ops; i++)
        if (!strcmp(m->ops[i].name, name)) return i;
    fail_msg("no op %s", name);
    return -1;
}

/* The float version of the lowered model is the graph (to float rounding). */
static void test_float_model_matches_graph(void **state)
{
    (void)state;
    rg_graph *g = small_net(3, 1.0);
    float *calib = images(N_CALIB, 10), *test = images(N_TEST, 11);
    rg_qmodel *m = lower(g, calib, rg_lower_default());
    float ref[N_TEST * CLASSES], want[N_TEST * CLASSES];
    ref_logits(m, test, N_TEST, ref);
    CHECK(rg_graph_plan(g, N_TEST, RG_PLAN_EVAL, &E));
    memcpy(rg_graph_input(g), test, sizeof(float) * N_TEST * IMG);
    rg_exec ev = {.training = 0};
    rg_graph_forward(g, &ev);
    memcpy(want, rg_graph_output(g), sizeof want);
    for (int i = 0; i < N_TEST * CLASSES; i++) assert_true(fabsf(ref[i] - want[i]) <= 1e-3f * (1.0f + fabsf(want[i])));
    rg_qmodel_free(m);
    rg_graph_free(g);
    free(calib);
    free(test);
}

/* Each observer kind gives its own ranges; percentile and MSE clip, min/max
 * never does. */
static void test_observers_selectable(void **state)
{
    (void)state;
    rg_graph *g = small_net(4, 1.0);
    float *calib = images(N_CALIB, 12);
    float scales[5];
    for (int k = 0; k <= RG_OBS_ENTROPY; k++) {
        rg_lower_config cfg = rg_lower_default();
        cfg.observer = rg_obs_default((rg_obs_kind)k);
        rg_qmodel *m = lower(g, calib, cfg);
        scales[k] = m->tensors[m->ops[op_named(m, "res")].out].q.scale;
        rg_qmodel_free(m);
    }
    print_message("residual scale: minmax %g, moving avg %g, percentile %g, mse %g, entropy %g\n", scales[0],
                  scales[1], scales[2], scales[3], scales[4]);
    assert_true(scales[RG_OBS_PERCENTILE] < scales[RG_OBS_MINMAX]);
    assert_true(scales[RG_OBS_MSE] <= scales[RG_OBS_MINMAX]);
    assert_true(scales[RG_OBS_MOVING_AVG] != scales[RG_OBS_MINMAX]);
    rg_lower_config bad = rg_lower_default();
    bad.observer.kind = (rg_obs_kind)99;
    rg_qmodel *m;
    assert_int_equal(rg_quant_lower(g, calib, N_CALIB, &bad, &m, &E), RG_ERR_ARG);
    assert_null(m);
    bad = rg_lower_default();
    assert_int_equal(rg_quant_lower(g, calib, 0, &bad, &m, &E), RG_ERR_ARG);
    bad.equalize = 1;
    bad.equalize_iters = 0;
    assert_int_equal(rg_quant_lower(g, calib, N_CALIB, &bad, &m, &E), RG_ERR_ARG);
    assert_non_null(strstr(E.msg, "equalize_iters"));
    rg_graph_free(g);
    free(calib);
}

/* With depthwise channel ranges spread over two decades, one weight scale
 * per channel keeps far more signal than one per tensor. */
static void test_per_channel_beats_per_tensor(void **state)
{
    (void)state;
    rg_graph *g = small_net(5, 1.5);
    float *calib = images(N_CALIB, 13), *test = images(N_TEST, 14);
    double db[2];
    for (int pc = 0; pc < 2; pc++) {
        rg_lower_config cfg = rg_lower_default();
        cfg.per_channel = pc;
        cfg.all_tensors = 1;
        rg_qmodel *m = lower(g, calib, cfg);
        /* the depthwise layer's own output */
        float *fa = malloc(sizeof(float) * rg_qmodel_float_arena_floats(m, N_TEST));
        int8_t *arena = malloc(rg_qmodel_arena_bytes(m, N_TEST));
        int8_t *qin = malloc(N_TEST * IMG), qout[N_TEST * CLASSES];
        CHECK(rg_qmodel_run_ref(m, fa, test, N_TEST, &E));
        CHECK(rg_q_quantize(test, N_TEST * IMG, m->tensors[m->input].q, -128, 127, qin, &E));
        CHECK(rg_qmodel_run(m, arena, qin, N_TEST, qout, &E));
        int32_t t = m->ops[op_named(m, "dw")].out;
        size_t n = (size_t)N_TEST * m->tensors[t].h * m->tensors[t].w * m->tensors[t].c;
        float *deq = malloc(sizeof(float) * n);
        rg_q_dequantize(rg_qmodel_tensor(m, arena, N_TEST, t), n, m->tensors[t].q, deq);
        db[pc] = sqnr_db(rg_qmodel_ftensor(m, fa, N_TEST, t), deq, n);
        free(fa);
        free(arena);
        free(qin);
        free(deq);
        rg_qmodel_free(m);
    }
    print_message("depthwise output SQNR: per-tensor %.1f dB, per-channel %.1f dB\n", db[0], db[1]);
    assert_true(db[1] > db[0] + 6.0);
    rg_graph_free(g);
    free(calib);
    free(test);
}

/* The liveness plan: smaller than one slot per tensor, no two tensors
 * alive at the same time share bytes, and the int8 outputs are the same
 * bits as with one slot per tensor. */
static void test_liveness_arena(void **state)
{
    (void)state;
    rg_graph *g = small_net(6, 1.0);
    float *calib = images(N_CALIB, 15), *test = images(N_TEST, 16);
    rg_qmodel *m = lower(g, calib, rg_lower_default());
    print_message("arena %zu bytes per image, %zu unplanned\n", m->image_bytes, m->tensor_bytes);
    assert_true(m->image_bytes < m->tensor_bytes);
    int32_t nt = m->n_tensors, first[64], last[64];
    assert_true(nt <= 64);
    for (int32_t t = 0; t < nt; t++) {
        first[t] = m->n_ops;
        last[t] = -1;
    }
    first[m->input] = -1;
    for (int32_t i = 0; i < m->n_ops; i++) {
        if (first[m->ops[i].out] > i) first[m->ops[i].out] = i;
        if (last[m->ops[i].out] < i) last[m->ops[i].out] = i;
        for (int32_t k = 0; k < m->ops[i].n_in; k++)
            if (last[m->ops[i].in[k]] < i) last[m->ops[i].in[k]] = i;
    }
    last[m->output] = m->n_ops;
    int shared = 0;
    for (int32_t a = 0; a < nt; a++)
        for (int32_t b = a + 1; b < nt; b++) {
            const rg_qtensor *ta = &m->tensors[a], *tb = &m->tensors[b];
            size_t sa = (size_t)ta->h * ta->w * ta->c, sb = (size_t)tb->h * tb->w * tb->c;
            int bytes_meet = ta->offset < tb->offset + sb && tb->offset < ta->offset + sa;
            int lives_meet = !(last[a] < first[b] || last[b] < first[a]);
            if (bytes_meet && lives_meet) fail_msg("tensors %d and %d overlap while both alive", a, b);
            shared += bytes_meet;
        }
    assert_true(shared > 0);
    assert_true(m->ops[0].out >= 0 && m->tensors[m->input].offset + IMG <= m->image_bytes);
    int8_t *qin = malloc(N_TEST * IMG), a1[N_TEST * CLASSES], a2[N_TEST * CLASSES];
    CHECK(rg_q_quantize(test, N_TEST * IMG, m->tensors[m->input].q, -128, 127, qin, &E));
    int8_t *arena = malloc(rg_qmodel_arena_bytes(m, N_TEST));
    memset(arena, 0x5a, rg_qmodel_arena_bytes(m, N_TEST));
    CHECK(rg_qmodel_run(m, arena, qin, N_TEST, a1, &E));
    free(arena);
    rg_qmodel_plan_arena(m, 1);
    assert_int_equal(m->image_bytes, m->tensor_bytes);
    arena = malloc(rg_qmodel_arena_bytes(m, N_TEST));
    CHECK(rg_qmodel_run(m, arena, qin, N_TEST, a2, &E));
    assert_memory_equal(a1, a2, sizeof a1);
    free(arena);
    free(qin);
    rg_qmodel_free(m);
    rg_graph_free(g);
    free(calib);
    free(test);
}

/* Concat of a ReLU branch and a signed branch (different scales): the int8
 * concat follows the float one, each part rescaled. */
static void test_concat_rescaled(void **state)
{
    (void)state;
    rg_graph *g = small_net(7, 0.5);
    float *calib = images(N_CALIB, 17), *test = images(N_TEST, 18);
    rg_lower_config cfg = rg_lower_default();
    cfg.all_tensors = 1;
    rg_qmodel *m = lower(g, calib, cfg);
    const rg_qop *cat = &m->ops[op_named(m, "cat")];
    assert_int_equal(cat->kind, RG_QOP_CONCAT);
    assert_int_equal(cat->n_in, 2);
    assert_true(m->tensors[cat->in[0]].q.scale != m->tensors[cat->out].q.scale);
    float *fa = malloc(sizeof(float) * rg_qmodel_float_arena_floats(m, N_TEST));
    int8_t *arena = malloc(rg_qmodel_arena_bytes(m, N_TEST));
    int8_t *qin = malloc(N_TEST * IMG), qout[N_TEST * CLASSES];
    CHECK(rg_qmodel_run_ref(m, fa, test, N_TEST, &E));
    CHECK(rg_q_quantize(test, N_TEST * IMG, m->tensors[m->input].q, -128, 127, qin, &E));
    CHECK(rg_qmodel_run(m, arena, qin, N_TEST, qout, &E));
    /* each input requantized: within one output step (plus the input's own
     * rounding) of its value at the output's scale */
    for (int32_t k = 0; k < 2; k++) {
        const rg_qtensor *ti = &m->tensors[cat->in[k]], *to = &m->tensors[cat->out];
        const int8_t *xi = rg_qmodel_tensor(m, arena, N_TEST, cat->in[k]);
        const int8_t *y = rg_qmodel_tensor(m, arena, N_TEST, cat->out);
        int32_t at = k == 0 ? 0 : m->tensors[cat->in[0]].c;
        for (size_t r = 0; r < (size_t)N_TEST * to->h * to->w; r++)
            for (int32_t c = 0; c < ti->c; c++) {
                double real = ti->q.scale * (xi[r * ti->c + c] - ti->q.zero_point);
                double want = to->q.zero_point + real / to->q.scale;
                want = want < -128 ? -128 : want > 127 ? 127 : want;
                assert_true(fabs(y[r * to->c + at + c] - want) <= 1.0);
            }
    }
    int32_t t = cat->out;
    size_t n = (size_t)N_TEST * m->tensors[t].h * m->tensors[t].w * m->tensors[t].c;
    float *deq = malloc(sizeof(float) * n);
    rg_q_dequantize(rg_qmodel_tensor(m, arena, N_TEST, t), n, m->tensors[t].q, deq);
    double db = sqnr_db(rg_qmodel_ftensor(m, fa, N_TEST, t), deq, n);
    print_message("concat SQNR %.1f dB\n", db);
    assert_true(db > 20.0);
    free(deq);
    free(fa);
    free(arena);
    free(qin);
    rg_qmodel_free(m);
    rg_graph_free(g);
    free(calib);
    free(test);
}

static double range_ratio(const rg_qop *o, size_t per)
{
    float lo = INFINITY, hi = 0;
    for (int32_t c = 0; c < o->out_c; c++) {
        float mx = 0;
        for (size_t k = 0; k < per; k++) mx = fmaxf(mx, fabsf(o->fw[(size_t)c * per + k]));
        lo = fminf(lo, mx);
        hi = fmaxf(hi, mx);
    }
    return hi / lo;
}

/* Equalization leaves the float network unchanged, ReLU6 clipping included:
 * the expand and depthwise layers clip (their outputs reach 6), and after
 * equalization their clips are per channel (6 / s_c). Dropping the
 * per-channel clips (what a ReLU6 -> per-tensor clip would do) changes the
 * outputs: the test can tell. */
static void test_equalize_float_equivalence(void **state)
{
    (void)state;
    rg_graph *g = small_net(8, 1.0);
    float *calib = images(N_CALIB, 19), *test = images(N_TEST, 20);
    rg_lower_config cfg = rg_lower_default();
    cfg.all_tensors = 1;
    rg_qmodel *m0 = lower(g, calib, cfg);
    cfg.equalize = 1;
    rg_qmodel *m1 = lower(g, calib, cfg);
    /* the clip is hit in the original */
    float *fa = malloc(sizeof(float) * rg_qmodel_float_arena_floats(m0, N_TEST));
    CHECK(rg_qmodel_run_ref(m0, fa, test, N_TEST, &E));
    const char *clipped[] = {"exp", "dw"};
    for (int k = 0; k < 2; k++) {
        int32_t t = m0->ops[op_named(m0, clipped[k])].out;
        size_t n = (size_t)N_TEST * m0->tensors[t].h * m0->tensors[t].w * m0->tensors[t].c, at6 = 0;
        const float *y = rg_qmodel_ftensor(m0, fa, N_TEST, t);
        for (size_t i = 0; i < n; i++) at6 += y[i] == 6.0f;
        print_message("%s: %zu of %zu outputs clipped at 6\n", clipped[k], at6, n);
        assert_true(at6 > n / 200);
        const rg_qop *o = &m1->ops[op_named(m1, clipped[k])];
        assert_non_null(o->clip);
        assert_non_null(o->act_max_c);
        float lo = INFINITY, hi = 0;
        for (int32_t c = 0; c < o->out_c; c++) {
            lo = fminf(lo, o->clip[c]);
            hi = fmaxf(hi, o->clip[c]);
        }
        assert_true(hi > lo * 1.5f);
    }
    /* ranges equalized: the depthwise layer's channel spread shrinks */
    double r0 = range_ratio(&m0->ops[op_named(m0, "dw")], 9), r1 = range_ratio(&m1->ops[op_named(m1, "dw")], 9);
    print_message("depthwise channel range ratio %.1f -> %.1f\n", r0, r1);
    assert_true(r1 < r0 / 4);
    float a[N_TEST * CLASSES], b[N_TEST * CLASSES], c[N_TEST * CLASSES];
    ref_logits(m0, test, N_TEST, a);
    ref_logits(m1, test, N_TEST, b);
    double worst = 0;
    for (int i = 0; i < N_TEST * CLASSES; i++) worst = fmax(worst, fabs(a[i] - b[i]) / (1.0 + fabs(a[i])));
    print_message("equalized float model: largest relative difference %.3g\n", worst);
    assert_true(worst < 1e-4);
    /* every inner tensor too: same up to the per-channel scale, so compare
     * the model's output and the residual (after project: unscaled) */
    float *fb = malloc(sizeof(float) * rg_qmodel_float_arena_floats(m1, N_TEST));
    CHECK(rg_qmodel_run_ref(m1, fb, test, N_TEST, &E));
    int32_t t = m0->ops[op_named(m0, "res")].out;
    size_t n = (size_t)N_TEST * m0->tensors[t].h * m0->tensors[t].w * m0->tensors[t].c;
    for (size_t i = 0; i < n; i++) {
        float x = rg_qmodel_ftensor(m0, fa, N_TEST, t)[i], y = rg_qmodel_ftensor(m1, fb, N_TEST, t)[i];
        assert_true(fabsf(x - y) <= 1e-4f * (1.0f + fabsf(x)));
    }
    /* negative control: a per-tensor clip at 6 instead of the per-channel ones */
    for (int k = 0; k < 2; k++) {
        rg_qop *o = &m1->ops[op_named(m1, clipped[k])];
        free(o->clip);
        o->clip = NULL;
        o->f_hi = 6.0f;
    }
    ref_logits(m1, test, N_TEST, c);
    double off = 0;
    for (int i = 0; i < N_TEST * CLASSES; i++) off = fmax(off, fabs(a[i] - c[i]) / (1.0 + fabs(a[i])));
    print_message("with ReLU6 clipping at 6 instead: largest relative difference %.3g\n", off);
    assert_true(off > 1e-2);
    /* the int8 equalized model still follows the float one */
    rg_qmodel_free(m1);
    cfg.per_channel = 0;
    m1 = lower(g, calib, cfg);
    ref_logits(m1, test, N_TEST, b);
    int8_logits(m1, test, N_TEST, c);
    print_message("equalized, per-tensor int8 logits SQNR %.1f dB\n", sqnr_db(b, c, N_TEST * CLASSES));
    assert_true(sqnr_db(b, c, N_TEST * CLASSES) > 20.0);
    free(fa);
    free(fb);
    rg_qmodel_free(m0);
    rg_qmodel_free(m1);
    rg_graph_free(g);
    free(calib);
    free(test);
}

/* A fully connected layer whose weights all sit 0.45 of a step above a
 * level (so they all round down: a biased error), on inputs with mean
 * 0.5: without correction every output is shifted; the correction removes
 * the shift. */
static void test_bias_correction(void **state)
{
    (void)state;
    enum { IN = 64, OUT = 16, N = 128 };
    rg_graph *g;
    CHECK(rg_graph_create(1, 1, IN, &g, &E));
    int32_t v;
    CHECK(rg_graph_add_linear(g, "fc", g->input, OUT, 1, &v, &E));
    CHECK(rg_graph_finish(g, v, &E));
    const rg_param *w = &g->params[rg_graph_find_param(g, "fc.weight")];
    const float step = 0.01f;
    rg_rng r = rg_rng_keyed(9, 0, 0);
    for (int32_t o = 0; o < OUT; o++)
        for (int32_t i = 0; i < IN; i++) {
            float q = i == 0 ? 127.0f : (float)((int)rg_rng_below(&r, 121) - 60) + 0.45f;
            g->param_data[w->offset + (size_t)o * IN + i] = q * step;
        }
    float *x = malloc(sizeof(float) * N * IN);
    for (size_t i = 0; i < (size_t)N * IN; i++) x[i] = rg_rng_uniform(&r);
    double mean_err[2];
    for (int bc = 0; bc < 2; bc++) {
        rg_lower_config cfg = rg_lower_default();
        cfg.bias_correct = bc;
        rg_qmodel *m;
        CHECK(rg_quant_lower(g, x, N / 2, &cfg, &m, &E));
        float ref[N * OUT], got[N * OUT];
        /* held-out half; the float reference is the uncorrected layer */
        float *fa = malloc(sizeof(float) * rg_qmodel_float_arena_floats(m, N / 2));
        int8_t *arena = malloc(rg_qmodel_arena_bytes(m, N / 2));
        CHECK(rg_qmodel_run_float(m, arena, x + (size_t)(N / 2) * IN, N / 2, got, &E));
        for (int32_t s = 0; s < N / 2; s++)
            for (int32_t o = 0; o < OUT; o++) {
                double acc = g->param_data[g->params[rg_graph_find_param(g, "fc.bias")].offset + o];
                for (int32_t i = 0; i < IN; i++)
                    acc += (double)g->param_data[w->offset + (size_t)o * IN + i] * x[(size_t)(N / 2 + s) * IN + i];
                ref[s * OUT + o] = (float)acc;
            }
        double e = 0;
        for (int32_t i = 0; i < N / 2 * OUT; i++) e += got[i] - ref[i];
        mean_err[bc] = fabs(e / (N / 2 * OUT));
        free(fa);
        free(arena);
        rg_qmodel_free(m);
    }
    print_message("mean output error: %.4f without, %.4f with bias correction\n", mean_err[0], mean_err[1]);
    assert_true(mean_err[0] > 0.05);
    assert_true(mean_err[1] < 0.2 * mean_err[0]);
    rg_bias_correct_config bad = {.batch = 0};
    rg_qmodel *m;
    rg_lower_config cfg = rg_lower_default();
    CHECK(rg_quant_lower(g, x, N, &cfg, &m, &E));
    assert_int_equal(rg_quant_bias_correct(m, x, N, &bad, &E), RG_ERR_ARG);
    bad.batch = 8;
    assert_int_equal(rg_quant_bias_correct(m, x, 0, &bad, &E), RG_ERR_ARG);
    rg_qmodel_free(m);
    rg_graph_free(g);
    free(x);
}

/* AdaRound on a fully connected layer with correlated inputs: the learned
 * rounding reconstructs the layer's output (held-out inputs, float
 * activations) better than rounding to nearest, and every weight stays on
 * the grid of the unchanged scales. */
static void test_adaround(void **state)
{
    (void)state;
    enum { IN = 32, OUT = 8, N = 256 };
    rg_graph *g;
    CHECK(rg_graph_create(1, 1, IN, &g, &E));
    int32_t v;
    CHECK(rg_graph_add_linear(g, "fc", g->input, OUT, 1, &v, &E));
    CHECK(rg_graph_finish(g, v, &E));
    const rg_param *w = &g->params[rg_graph_find_param(g, "fc.weight")];
    rg_rng r = rg_rng_keyed(12, 0, 0);
    for (size_t k = 0; k < w->count; k++) g->param_data[w->offset + k] = 0.1f * rg_rng_normal(&r);
    float *x = malloc(sizeof(float) * N * IN);
    for (int32_t s = 0; s < N; s++) {
        float z1 = rg_rng_normal(&r), z2 = rg_rng_normal(&r);
        for (int32_t i = 0; i < IN; i++)
            x[(size_t)s * IN + i] = 1.0f + z1 * (i % 2 ? 1.0f : 0.5f) + z2 * (i < IN / 2 ? 0.8f : -0.3f) +
                                    0.2f * rg_rng_normal(&r);
    }
    double mse[2];
    float scales[2][OUT];
    for (int ar = 0; ar < 2; ar++) {
        rg_lower_config cfg = rg_lower_default();
        cfg.adaround = ar;
        cfg.per_channel = 1;
        rg_qmodel *m;
        CHECK(rg_quant_lower(g, x, N / 2, &cfg, &m, &E));
        float wq[IN * OUT];
        CHECK(rg_qmodel_dequantized_weights(m, 0, wq, &E));
        memcpy(scales[ar], m->ops[0].w_scales, sizeof scales[ar]);
        for (int32_t c = 0; ar && c < OUT; c++)
            for (int32_t i = 0; i < IN; i++) {
                float q = m->ops[0].fw[c * IN + i] / scales[ar][c];
                assert_true(fabsf(q - roundf(q)) < 1e-3f); /* on the grid */
            }
        double e = 0;
        for (int32_t s = N / 2; s < N; s++)
            for (int32_t c = 0; c < OUT; c++) {
                double d = 0;
                for (int32_t i = 0; i < IN; i++)
                    d += ((double)wq[c * IN + i] - g->param_data[w->offset + (size_t)c * IN + i]) * x[(size_t)s * IN + i];
                e += d * d;
            }
        mse[ar] = e / (N / 2 * OUT);
        rg_qmodel_free(m);
    }
    print_message("output MSE of the weight quantization: nearest %.3g, AdaRound %.3g\n", mse[0], mse[1]);
    for (int32_t c = 0; c < OUT; c++) assert_true(fabsf(scales[0][c] - scales[1][c]) <= 1e-6f * scales[0][c]);
    assert_true(mse[1] < 0.7 * mse[0]);
    rg_adaround_config bad = rg_adaround_default();
    bad.iters = 0;
    rg_qmodel *m;
    rg_lower_config cfg = rg_lower_default();
    CHECK(rg_quant_lower(g, x, N, &cfg, &m, &E));
    assert_int_equal(rg_quant_adaround(m, x, N, &bad, &E), RG_ERR_ARG);
    assert_non_null(strstr(E.msg, "iters 0"));
    rg_qmodel_free(m);
    rg_graph_free(g);
    free(x);
}

/* The doctor: one row per op, finite SQNR, the depthwise layer's channel
 * spread flagged, and per-tensor weights recommended against. */
static void test_doctor(void **state)
{
    (void)state;
    rg_graph *g = small_net(10, 1.0);
    float *calib = images(N_CALIB, 21);
    rg_lower_config cfg = rg_lower_default();
    cfg.per_channel = 0;
    rg_qmodel *m = lower(g, calib, cfg);
    size_t bytes = m->image_bytes;
    rg_qdoc_config dc = rg_qdoc_default();
    rg_qdoc_layer *rows;
    int32_t n;
    CHECK(rg_quant_doctor(m, calib, N_CALIB, &dc, &rows, &n, &E));
    assert_int_equal(n, m->n_ops + 1);
    assert_int_equal(m->image_bytes, bytes); /* plan restored */
    assert_int_equal(rows[0].op, -1);
    assert_string_equal(rows[0].name, "input");
    assert_true(rows[0].sqnr_db > 35.0); /* 8 bits over the input's range */
    int32_t dw = op_named(m, "dw") + 1;
    assert_true(rows[dw].flags & RG_QDOC_WIDE_CHANNELS);
    assert_string_equal(rows[dw].remedy, "per-channel weights (drop --per-tensor)");
    /* min/max on the images it calibrated on never clips them */
    for (int32_t i = 0; i < n; i++) {
        assert_true(isfinite(rows[i].sqnr_db));
        assert_true(rows[i].clipped == 0.0);
    }
    free(rows);
    /* a percentile observer at 99 % clips: the doctor sees it and says so */
    rg_qmodel_free(m);
    cfg.observer = rg_obs_default(RG_OBS_PERCENTILE);
    cfg.observer.percentile = 99.0;
    m = lower(g, calib, cfg);
    CHECK(rg_quant_doctor(m, calib, N_CALIB, &dc, &rows, &n, &E));
    int clipped = 0;
    for (int32_t i = 0; i < n; i++)
        if (rows[i].flags & RG_QDOC_CLIPPED) {
            clipped++;
            assert_true(rows[i].clipped > dc.clipped_ratio);
            if (rows[i].flags & (RG_QDOC_LOW_SQNR | RG_QDOC_BIG_DROP))
                assert_string_equal(rows[i].remedy, "less clipping: --observer minmax or mse");
        }
    print_message("percentile 99: %d rows clipped\n", clipped);
    assert_true(clipped > 0);
    free(rows);
    dc.batch = 0;
    assert_int_equal(rg_quant_doctor(m, calib, N_CALIB, &dc, &rows, &n, &E), RG_ERR_ARG);
    rg_qmodel_free(m);
    rg_graph_free(g);
    free(calib);
}

/* The safetensors writer's non-F32 tensors (I8 new, I32), from raw bytes,
 * read back with their dtypes; a non-F32 tensor without raw is refused. */
static void test_safetensors_int_dtypes(void **state)
{
    (void)state;
    char dir[512], path[600];
    rgt_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/i.safetensors", dir);
    static const int8_t q[5] = {-127, -1, 0, 1, 127};
    static const int32_t b[3] = {-70000, 0, 123456};
    rg_st_tensor t[3] = {{.name = "q", .ndim = 1, .shape = {5}, .dtype = RG_ST_I8, .raw = q},
                         {.name = "b", .ndim = 2, .shape = {1, 3}, .dtype = RG_ST_I32, .raw = b},
                         {.name = "f", .ndim = 1, .shape = {1}, .data = (const float[]){0.5f}}};
    CHECK(rg_st_write(path, t, 3, NULL, 0, &E));
    rg_st_file *f;
    CHECK(rg_st_read(path, &f, &E));
    const rg_st_tensor *rq = rg_st_find(f, "q"), *rb = rg_st_find(f, "b"), *rf = rg_st_find(f, "f");
    assert_int_equal(rq->dtype, RG_ST_I8);
    assert_int_equal(rq->nbytes, 5);
    assert_memory_equal(rq->raw, q, 5);
    assert_int_equal(rb->dtype, RG_ST_I32);
    assert_memory_equal(rb->raw, b, sizeof b);
    assert_true(rf->data[0] == 0.5f);
    rg_st_free(f);
    t[0].raw = NULL;
    assert_int_equal(rg_st_write(path, t, 3, NULL, 0, &E), RG_ERR_UNSUPPORTED);
    assert_non_null(strstr(E.msg, "'q'"));
    rgt_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_float_model_matches_graph), cmocka_unit_test(test_observers_selectable),
        cmocka_unit_test(test_per_channel_beats_per_tensor), cmocka_unit_test(test_liveness_arena),
        cmocka_unit_test(test_concat_rescaled), cmocka_unit_test(test_equalize_float_equivalence),
        cmocka_unit_test(test_bias_correction), cmocka_unit_test(test_adaround), cmocka_unit_test(test_doctor),
        cmocka_unit_test(test_safetensors_int_dtypes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
