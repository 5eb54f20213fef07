/* The quantize run kind: post-training quantization of the checkpoint named
 * by `init` (normally another run's, `init = @float`), with the ptq_* keys.
 * The run's top-1 is the int8 model's on the test split; the int8 model is
 * its artifact. A quantize run has no epochs: it is quick and simply redone
 * when killed. */
#include "exp/environment.h"
#include "exp/hash.h"
#include "exp/kinds.h"
#include "regain/checkpoint.h"
#include "regain/experiment.h"
#include "regain/fileio.h"
#include "regain/ptq.h"
#include "regain/rt_qmodel.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void note(const rg_exp_job *job, const char *msg)
{
    if (job->hooks && job->hooks->note) job->hooks->note(job->hooks->user, msg);
}

/* The lowering options the ptq_* keys give. */
static rg_status lower_config(const rg_train_config *c, rg_lower_config *l, rg_error *err)
{
    *l = rg_lower_default();
    rg_obs_kind kind;
    rg_status st = rg_obs_kind_parse(c->ptq_observer, &kind, err);
    if (st) return rg_error_prefix(err, "ptq_observer");
    l->observer = rg_obs_default(kind);
    l->per_channel = !c->ptq_per_tensor;
    l->equalize = c->ptq_equalize;
    l->bias_correct = c->ptq_bias_correct;
    l->adaround = c->ptq_adaround;
    return RG_OK;
}

typedef struct {
    const rg_rt *rt;
    void *arena;
    float *in, *out;
} rt_pass_ctx;

static void rt_pass(void *user)
{
    rt_pass_ctx *p = user;
    rg_rt_invoke_float(p->rt, p->arena, p->in, p->out);
}

/* The batch-1 latency of the int8 model file at path on the runtime, float
 * image in, float logits out: what a deployment on this CPU would see. */
static rg_status measure_int8(const char *path, int32_t threads, double *ms, rg_error *err)
{
    rg_rgm *m = NULL;
    rg_rt *rt = NULL;
    rt_pass_ctx p = {0};
    rg_status st = rg_rgm_load(path, &m, err);
    if (!st) st = rg_rt_prepare(m, NULL, &rt, err);
    size_t n_in = 0;
    if (!st) {
        const rg_rgm_tensor *x = &m->tensors[m->input], *y = &m->tensors[m->output];
        n_in = (size_t)x->h * x->w * x->c;
        p = (rt_pass_ctx){.rt = rt, .arena = rg_alloc_aligned(rg_rt_arena_size(rt), err),
                          .in = rg_calloc(n_in, sizeof(float), err),
                          .out = rg_calloc((size_t)y->h * y->w * y->c, sizeof(float), err)};
        if (!p.arena || !p.in || !p.out) st = RG_ERR_NOMEM;
    }
    if (!st) {
        for (size_t i = 0; i < n_in; i++) p.in[i] = (float)(i % 7) * 0.25f - 0.5f;
        *ms = rg_exp_latency_ms(rt_pass, &p, threads);
    }
    rg_free_aligned(p.arena);
    free(p.in), free(p.out);
    rg_rt_free(rt);
    rg_rgm_free(m);
    return st;
}

rg_status rg_exp_run_quantize(rg_exp_job *job, rg_error *err)
{
    const rg_train_config *c = &job->cfg;
    if (!c->init[0]) return rg_fail(err, RG_ERR_ARG, "init: a quantize run needs the checkpoint to quantize");
    rg_lower_config lc;
    rg_status st = lower_config(c, &lc, err);
    if (st) return st;
    rg_set_threads(c->threads);
    double t0 = now_s();
    rg_graph *g = NULL;
    rg_st_file *f = NULL;
    rg_dataset train = {0}, test = {0};
    rg_qmodel *m = NULL;
    float *calib = NULL;
    int32_t n_calib = 0;
    rg_eval_result r = {0};
    char *confusion = NULL;
    float mean, std;
    if ((st = rg_checkpoint_load(c->init, 1, &g, &f, err))) return rg_error_prefix(err, "init");
    rg_checkpoint_normalization(f, &mean, &std); /* the one the network was trained with */
    if (!(st = rg_dataset_load(c->data, "train", &train, err)) && !(st = rg_dataset_load(c->data, "test", &test, err)) &&
        c->test_limit > 0 && c->test_limit < test.n) {
        rg_dataset head;
        if (!(st = rg_dataset_head(&test, c->test_limit, &head, err))) {
            rg_dataset_free(&test);
            test = head;
        }
    }
    if (!st) st = rg_ptq_calibration(&train, c->ptq_calib, (uint64_t)c->seed, mean, std, &calib, &n_calib, err);
    rg_graph_stats gs = {0};
    if (!st) st = rg_graph_stats_compute(g, &gs, err);
    if (!st) {
        char msg[1024];
        snprintf(msg, sizeof msg, "quantizing %s: %d calibration images, observer %s, %s weights%s%s%s%s", c->init,
                 (int)n_calib, rg_obs_kind_name(lc.observer.kind), lc.per_channel ? "per-channel" : "per-tensor",
                 lc.equalize ? ", equalization" : "", lc.bias_correct ? ", bias correction" : "",
                 lc.adaround ? ", AdaRound" : "", c->ptq_requant_fp32 ? ", fp32 requantization" : "");
        note(job, msg);
        st = rg_quant_lower(g, calib, n_calib, &lc, &m, err);
        if (!st && c->ptq_requant_fp32) st = rg_qmodel_use_fp32(m, err);
    }
    if (!st) st = rg_qmodel_evaluate_rt(m, &test, mean, std, NULL, NULL, &r, err);
    char path[1100];
    snprintf(path, sizeof path, "%s/int8.rgm", job->run_dir);
    if (!st && !(st = rg_make_dirs(job->run_dir, err))) st = rg_rgm_write_qmodel(m, mean, std, path, err);
    if (!st && !(confusion = rg_exp_confusion_json(&r))) st = rg_fail(err, RG_ERR_NOMEM, "out of memory");
    rg_store_artifact art;
    if (!st) st = rg_exp_artifact(job->store, job->run_dir, "int8", "int8.rgm", &art, err);
    double latency_ms = NAN;
    if (!st) st = measure_int8(path, c->threads, &latency_ms, err);
    if (!st) {
        size_t weights = 0;
        for (int32_t i = 0; i < m->n_ops; i++) weights += rg_qmodel_weight_count(m, i);
        /* test_loss is NaN: the int8 model gives no training loss */
        rg_store_final fin = {.test_top1 = r.top1, .test_loss = r.loss, .best_top1 = r.top1, .best_epoch = -1,
                              .params = (int64_t)gs.params, .macs = (int64_t)gs.macs,
                              .model_bytes = (int64_t)weights, .latency_ms = latency_ms, .train_s = now_s() - t0,
                              .confusion_json = confusion};
        rg_exp_env e;
        rg_exp_env_collect(&e);
        rg_store_env env = {e.git_commit, e.compiler, e.cpu_model, e.cpu_features, e.hostname, RG_VERSION,
                            e.blas_core, omp_get_max_threads(), c->seed};
        st = rg_store_finish_run(job->store, job->run_id, NULL, 0, &fin, &art, 1, &env,
                                 job->prior_wall_s + now_s() - job->start_s, err);
    }
    free(confusion);
    rg_eval_result_free(&r);
    free(calib);
    rg_qmodel_free(m);
    rg_dataset_free(&train);
    rg_dataset_free(&test);
    rg_st_free(f);
    rg_graph_free(g);
    return st;
}
