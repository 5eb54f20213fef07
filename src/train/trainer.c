/* The trainer: data, model, loop, evaluation, checkpoints, resume. */
#include "regain/trainer.h"
#include "regain/checkpoint.h"
#include "regain/distill.h"
#include "regain/curriculum.h"
#include "regain/fileio.h"
#include "regain/loader.h"
#include "regain/spec.h"
#include "regain/zoo.h"

#include <errno.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

void rg_set_threads(int32_t threads)
{
    int n = threads > 0 ? threads : omp_get_num_procs();
    /* OpenBLAS itself stays single-threaded: kernels/gemm.h splits matrix
     * products across these threads so that results do not depend on them */
    omp_set_num_threads(n);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

rg_status rg_model_build(const char *model, int32_t h, int32_t w, int32_t c, int32_t classes, rg_graph **out,
                         rg_error *err)
{
    struct stat sb;
    /* A path (or an existing file) is a spec file; anything else a zoo name. */
    if (strchr(model, '/') || stat(model, &sb) == 0) {
        rg_status st = rg_spec_build_file(model, out, err);
        if (st) return st;
        rg_shape in = (*out)->values[(*out)->input].shape;
        if (in.h != h || in.w != w || in.c != c) {
            rg_graph_free(*out);
            *out = NULL;
            return rg_fail(err, RG_ERR_SHAPE, "%s: the spec's input is %dx%dx%d but the data is %dx%dx%d", model,
                           in.h, in.w, in.c, h, w, c);
        }
        return RG_OK;
    }
    return rg_zoo_build(model, h, w, c, classes, out, err);
}

/* ---- state of one run ------------------------------------------------------------ */

/* The batches of an epoch done before a stop, and its running sums: a
 * checkpoint taken in the middle of an epoch holds them
 * (regain.epoch_part), and the resumed epoch goes on from there. */
typedef struct {
    int32_t batch; /* batches done; 0: the epoch has not started */
    int64_t seen, correct;
    double loss_sum, teacher_s, seconds;
} epoch_part;

typedef struct {
    rg_train_config cfg;
    const char *dir;
    rg_dataset train_full, train, val, test;
    int has_val;
    rg_graph *g;
    rg_optim opt;
    rg_ema ema;
    int use_ema;
    rg_loader *loader;
    rg_schedule sched;
    int32_t batches, start_epoch, best_epoch;
    double best;
    char *metrics;      /* metrics.csv text so far */
    float *dlogits;
    rg_distiller *distill;  /* NULL without a teacher */
    rg_qat *qat;            /* NULL without qat = 1 */
    int mixing;             /* mixup or CutMix: soft targets */
    float *soft;            /* batch x classes soft targets */
    double teacher_top1;    /* the teachers' selection accuracy, -1 without */
    double teacher_s, train_s;  /* this call: time in the teachers' forward passes, in training steps */
    rg_sampler *sampler;    /* label noise, curriculum, selection; NULL when off */
    float *sample_loss;     /* per-sample losses of a batch, when the sampler records them */
    epoch_part part;        /* of epoch start_epoch, done before a stop (batch 0: none) */
    double part_before;     /* that part as a fraction of its epoch, once the epoch started */
} run_state;

static void run_free(run_state *r)
{
    rg_loader_free(r->loader);
    rg_distiller_free(r->distill);
    rg_qat_free(r->qat);
    rg_optim_free(&r->opt);
    rg_ema_free(&r->ema);
    rg_graph_free(r->g);
    rg_dataset_free(&r->train_full);
    rg_dataset_free(&r->train);
    rg_dataset_free(&r->val);
    rg_dataset_free(&r->test);
    free(r->metrics);
    free(r->dlogits);
    free(r->soft);
    rg_sampler_free(r->sampler);
    free(r->sample_loss);
}

static rg_status path_in(const run_state *r, const char *file, char *buf, size_t size, rg_error *err)
{
    if ((size_t)snprintf(buf, size, "%s/%s", r->dir, file) >= size)
        return rg_fail(err, RG_ERR_ARG, "run directory path is too long");
    return RG_OK;
}

static rg_status load_data(run_state *r, rg_error *err)
{
    rg_train_config *c = &r->cfg;
    rg_status st;
    if ((st = rg_dataset_load(c->data, "train", &r->train_full, err)) ||
        (st = rg_dataset_load(c->data, "test", &r->test, err)))
        return st;
    rg_dataset base = r->train_full;
    if (c->val_split > 0) {
        if (c->val_split >= base.n)
            return rg_fail(err, RG_ERR_ARG, "val_split: %d is not smaller than the %d training images", c->val_split,
                           base.n);
        if ((st = rg_dataset_split(&base, c->val_split, (uint64_t)c->seed, &r->train, &r->val, err))) return st;
        r->has_val = 1;
    } else if ((st = rg_dataset_head(&base, base.n, &r->train, err))) {
        return st;
    }
    if (c->train_limit > 0 && c->train_limit < r->train.n) {
        rg_dataset t;
        if ((st = rg_dataset_head(&r->train, c->train_limit, &t, err))) return st;
        rg_dataset_free(&r->train);
        r->train = t;
    }
    if (c->test_limit > 0 && c->test_limit < r->test.n) {
        rg_dataset t;
        if ((st = rg_dataset_head(&r->test, c->test_limit, &t, err))) return st;
        rg_dataset_free(&r->test);
        r->test = t;
    }
    return RG_OK;
}

/* Reads the configuration and progress of an interrupted run. */
static rg_status load_resume_config(run_state *r, const rg_train_config *given, rg_st_file **ck, rg_error *err)
{
    char path[1100];
    rg_status st = path_in(r, "last.safetensors", path, sizeof path, err);
    if (st || (st = rg_st_read(path, ck, err))) return st;
    const char *text = rg_st_meta_get(*ck, "regain.train_config");
    const char *epoch = rg_st_meta_get(*ck, "regain.epoch"), *best = rg_st_meta_get(*ck, "regain.best_top1");
    const char *best_epoch = rg_st_meta_get(*ck, "regain.best_epoch");
    const char *metrics = rg_st_meta_get(*ck, "regain.metrics_csv");
    if (!text || !epoch || !best || !best_epoch || !metrics)
        return rg_fail(err, RG_ERR_FORMAT, "%s: not a training checkpoint (no regain.train_config/epoch metadata)",
                       path);
    const char *kind = rg_st_meta_get(*ck, "regain.kind");
    if (!kind || strcmp(kind, "training-state") != 0)
        return rg_fail(err, RG_ERR_FORMAT,
                       "%s: holds weights only (regain.kind is '%s'), not the optimizer state a run resumes from", path,
                       kind ? kind : "missing");
    rg_train_config_default(&r->cfg);
    if ((st = rg_train_config_parse(&r->cfg, text, path, err))) return st;
    r->cfg.threads = given->threads;
    r->cfg.workers = given->workers;
    char *end;
    r->start_epoch = (int32_t)strtol(epoch, &end, 10);
    if (*end || r->start_epoch < 0 || r->start_epoch > r->cfg.epochs)
        return rg_fail(err, RG_ERR_FORMAT, "%s: metadata regain.epoch '%s' is not valid", path, epoch);
    r->best = strtod(best, NULL);
    r->best_epoch = (int32_t)strtol(best_epoch, NULL, 10);
    const char *part = rg_st_meta_get(*ck, "regain.epoch_part");
    if (part) {
        epoch_part *p = &r->part;
        long long seen, correct;
        int used = 0;
        if (sscanf(part, "%d,%lld,%lld,%lf,%lf,%lf%n", &p->batch, &seen, &correct, &p->loss_sum, &p->teacher_s,
                   &p->seconds, &used) != 6 ||
            part[used] || p->batch < 1 || seen < 0 || correct < 0 || correct > seen || r->start_epoch >= r->cfg.epochs)
            return rg_fail(err, RG_ERR_FORMAT, "%s: metadata regain.epoch_part '%s' is not valid", path, part);
        p->seen = seen;
        p->correct = correct;
    }
    r->metrics = strdup(metrics);
    return r->metrics ? RG_OK : rg_fail(err, RG_ERR_NOMEM, "out of memory");
}

/* Copies the weights of the checkpoint named by the init key into the model:
 * the deployable ones (the weight average when the file has one). */
static rg_status load_init(run_state *r, rg_error *err)
{
    rg_st_file *f;
    rg_status st = rg_st_read(r->cfg.init, &f, err);
    if (st) return rg_error_prefix(err, "init");
    char name[RG_NAME_MAX + 16];
    snprintf(name, sizeof name, "ema.%s", r->g->n_params > 0 ? r->g->params[0].name : "");
    st = rg_checkpoint_load_weights(f, r->g, r->g->n_params > 0 && rg_st_find(f, name) != NULL, err);
    rg_st_free(f);
    return st ? rg_error_prefix(err, "init %s", r->cfg.init) : RG_OK;
}

/* ---- distillation ------------------------------------------------------------------ */

static rg_status setup_distillation(run_state *r, const rg_optim_config *oc, rg_error *err)
{
    rg_distill_config dc;
    rg_train_config_distill(&r->cfg, &dc);
    r->teacher_top1 = -1.0;
    if (!rg_distill_enabled(&dc)) return RG_OK;
    rg_shape out = r->g->values[r->g->output].shape;
    rg_status st = rg_distiller_create(&dc, r->g, r->cfg.batch, out.h * out.w * out.c, oc, (uint64_t)r->cfg.seed,
                                       &r->distill, err);
    if (st) return st;
    /* measured on the data that selects the student's weights, for the
     * warning when the teacher is no better than the student */
    return rg_distiller_teacher_top1(r->distill, r->has_val ? &r->val : &r->test, r->cfg.mean, r->cfg.std,
                                     &r->teacher_top1, err);
}

/* The hint adapters, saved under "distill.hint<k>." in training-state checkpoints only. */
static int32_t distill_parts(run_state *r, rg_checkpoint_part *parts)
{
    static const char *const prefixes[RG_DISTILL_MAX_PAIRS] = {"distill.hint0.", "distill.hint1.", "distill.hint2.",
                                                               "distill.hint3."};
    if (!r->distill) return 0;
    rg_graph *g[RG_DISTILL_MAX_PAIRS];
    rg_optim *o[RG_DISTILL_MAX_PAIRS];
    int32_t n = rg_distiller_parts(r->distill, g, o, RG_DISTILL_MAX_PAIRS);
    for (int32_t k = 0; k < n; k++) parts[k] = (rg_checkpoint_part){prefixes[k], g[k], o[k]};
    return n;
}

static rg_status setup(run_state *r, int resume, rg_st_file *ck, rg_error *err)
{
    rg_train_config *c = &r->cfg;
    rg_status st;
    if ((st = load_data(r, err))) return st;
    if ((st = rg_sampler_create(c, &r->train, resume ? ck : NULL, &r->sampler, err))) {
        /* a damaged per-sample state: name the checkpoint it came from */
        if (resume && st == RG_ERR_FORMAT) rg_error_prefix(err, "%s/last.safetensors", r->dir);
        return st;
    }
    /* a stop in an epoch saves the part done and the epoch's samples together */
    if (r->sampler && (r->part.batch > 0) != rg_sampler_resumes_epoch(r->sampler))
        return rg_fail(err, RG_ERR_FORMAT, "%s/last.safetensors: %s", r->dir,
                       r->part.batch > 0 ? "regain.epoch_part without the epoch's samples (sample.subset)"
                                         : "sample.subset without regain.epoch_part");
    if ((st = rg_model_build(c->model, r->train.h, r->train.w, r->train.c, r->train_full.n_classes, &r->g, err)))
        return st;
    rg_shape out = r->g->values[r->g->output].shape;
    if (out.h * out.w * out.c < r->train_full.n_classes)
        return rg_fail(err, RG_ERR_SHAPE, "model %s has %d outputs but the data has %d classes", c->model,
                       out.h * out.w * out.c, r->train_full.n_classes);
    rg_graph_init_params(r->g, (uint64_t)c->seed);
    /* Fine-tuning starts from another model's weights. A resumed run takes
     * every weight from its own checkpoint below, so it never reads init
     * again (the file may have changed or gone since). */
    if (!resume && c->init[0] && (st = load_init(r, err))) return st;
    /* QAT inserts its quantization points after the float weights are in
     * (a float checkpoint has no ranges), before a resumed run's state,
     * which holds them */
    if (c->qat) {
        rg_qat_config qc;
        rg_train_config_qat(c, &qc);
        if ((st = rg_qat_prepare(r->g, &qc, &r->qat, err))) return st;
    }
    rg_optim_config oc = {.kind = strcmp(c->optim, "adamw") == 0 ? RG_OPTIM_ADAMW : RG_OPTIM_SGD,
                          .momentum = c->momentum, .nesterov = c->nesterov, .beta1 = c->beta1, .beta2 = c->beta2,
                          .eps = c->adam_eps, .weight_decay = c->wd, .decay_all = c->decay_all};
    /* the distiller taps student layers, so it comes before the plan */
    if ((st = setup_distillation(r, &oc, err))) return st;
    /* a resumed run is taught by the files it started with (checkpoints
     * written before teacher checksums were recorded are not checked) */
    const char *was = resume && r->distill ? rg_st_meta_get(ck, "regain.teacher_crc32") : NULL;
    char sums[64];
    if (was && strcmp(was, rg_distiller_teacher_sums(r->distill, sums, sizeof sums)))
        return rg_fail(err, RG_ERR_ARG,
                       "%s/last.safetensors: the teacher files changed since this run started (data crc32 %s, "
                       "now %s): resuming would distill from other weights; start the run again",
                       r->dir, was, sums);
    if ((st = rg_graph_plan(r->g, c->batch, RG_PLAN_TRAIN, err))) return st;
    if ((st = rg_optim_init(&r->opt, &oc, r->g, err))) return st;
    r->use_ema = c->ema > 0.0f;
    if (r->use_ema && (st = rg_ema_init(&r->ema, c->ema, r->g, err))) return st;
    if (resume) {
        /* weights, BN statistics, moments and the average from the checkpoint */
        char path[1100];
        path_in(r, "last.safetensors", path, sizeof path, err);
        if ((st = rg_checkpoint_load_weights(ck, r->g, 0, err)) ||
            (st = rg_checkpoint_load_state(ck, path, r->g, &r->opt, r->use_ema ? &r->ema : NULL, err)))
            return st;
        rg_checkpoint_part parts[RG_DISTILL_MAX_PAIRS];
        int32_t n_parts = distill_parts(r, parts);
        for (int32_t k = 0; k < n_parts; k++)
            if ((st = rg_checkpoint_load_part(ck, &parts[k], err))) return st;
    } else {
        r->metrics = strdup("epoch,lr,train_loss,train_top1,test_loss,test_top1,val_top1,seconds,images_per_s,"
                            "samples,noisy_kept,teacher_s\n");
        if (!r->metrics) return rg_fail(err, RG_ERR_NOMEM, "out of memory");
        r->best = -1.0;
    }
    rg_loader_config lc = {.batch = c->batch, .shuffle = 1, .drop_last = 0, .mean = c->mean, .std = c->std,
                           .seed = (uint64_t)c->seed, .workers = c->workers, .prefetch = 0};
    if ((st = rg_train_augment_config(c, &lc.aug, &lc.mix, err))) return st;
    lc.augment = rg_augment_active(&lc.aug);
    if ((st = rg_loader_create(&r->train, &lc, &r->loader, err))) return st;
    /* unaugmented images: the teachers' outputs are the same every epoch */
    r->mixing = rg_mix_active(&lc.mix);
    if (r->distill && !lc.augment && !r->mixing && (st = rg_distiller_cache_logits(r->distill, &r->train, c->mean, c->std, err)))
        return st;
    r->batches = rg_loader_batches(r->loader);
    int64_t total = (int64_t)r->batches * c->epochs;
    r->sched = (rg_schedule){.kind = !strcmp(c->schedule, "cosine") ? RG_SCHED_COSINE
                                     : !strcmp(c->schedule, "step") ? RG_SCHED_STEP
                                                                    : RG_SCHED_CONSTANT,
                             .base_lr = c->lr, .total_steps = total,
                             .warmup_steps = (int64_t)(c->warmup_epochs * (float)r->batches + 0.5f),
                             .min_lr = c->min_lr, .step_every = (int64_t)c->step_epochs * r->batches,
                             .gamma = c->gamma};
    r->dlogits = rg_calloc((size_t)c->batch * (size_t)(out.h * out.w * out.c), sizeof(float), err);
    if (r->mixing && !(r->soft = rg_calloc((size_t)c->batch * (size_t)(out.h * out.w * out.c), sizeof(float), err)))
        return RG_ERR_NOMEM;
    if (rg_sampler_wants_losses(r->sampler) && !(r->sample_loss = rg_calloc((size_t)c->batch, sizeof(float), err)))
        return RG_ERR_NOMEM;
    return r->dlogits ? RG_OK : RG_ERR_NOMEM;
}

static rg_status append_metrics(run_state *r, const rg_epoch_metrics *m, rg_error *err)
{
    char line[512];
    int n = snprintf(line, sizeof line, "%d,%.6g,%.6f,%.6f,%.6f,%.6f,%.6f,%.3f,%.1f,%lld,%.6f,%.3f\n", m->epoch,
                     m->lr, m->train_loss, m->train_top1, m->test_loss, m->test_top1, m->val_top1, m->seconds,
                     m->images_per_s, (long long)m->samples, m->noisy_kept, m->teacher_s);
    size_t old = strlen(r->metrics);
    char *p = realloc(r->metrics, old + (size_t)n + 1);
    if (!p) return rg_fail(err, RG_ERR_NOMEM, "out of memory");
    memcpy(p + old, line, (size_t)n + 1);
    r->metrics = p;
    char path[1100];
    rg_status st = path_in(r, "metrics.csv", path, sizeof path, err);
    return st ? st : rg_write_file_atomic(path, r->metrics, strlen(r->metrics), err);
}

static rg_status save(run_state *r, const char *file, int32_t epochs_done, int with_state, rg_error *err)
{
    char path[1100], epoch[16], best[32], best_epoch[16];
    rg_status st = path_in(r, file, path, sizeof path, err);
    if (st) return st;
    char *config = rg_train_config_format(&r->cfg);
    if (!config) return rg_fail(err, RG_ERR_NOMEM, "out of memory");
    snprintf(epoch, sizeof epoch, "%d", epochs_done);
    snprintf(best, sizeof best, "%.17g", r->best);
    snprintf(best_epoch, sizeof best_epoch, "%d", r->best_epoch);
    char norm[64], sums[64], part[160];
    snprintf(norm, sizeof norm, "%.9g,%.9g", (double)r->cfg.mean, (double)r->cfg.std);
    rg_st_meta meta[11] = {{"regain.kind", with_state ? "training-state" : "weights"},
                           {"regain.model", r->cfg.model},
                           {"regain.train_config", config},
                           {"regain.epoch", epoch},
                           {"regain.best_top1", best},
                           {"regain.best_epoch", best_epoch},
                           {"regain.metrics_csv", r->metrics},
                           {"regain.dataset", r->train_full.source},
                           {"regain.normalize", norm}};
    int32_t n_meta = 9;
    if (with_state && r->distill)
        meta[n_meta++] = (rg_st_meta){"regain.teacher_crc32", rg_distiller_teacher_sums(r->distill, sums, sizeof sums)};
    if (with_state && r->part.batch > 0) {
        const epoch_part *p = &r->part;
        snprintf(part, sizeof part, "%d,%lld,%lld,%.17g,%.17g,%.17g", p->batch, (long long)p->seen,
                 (long long)p->correct, p->loss_sum, p->teacher_s, p->seconds);
        meta[n_meta++] = (rg_st_meta){"regain.epoch_part", part};
    }
    /* the hint adapters and the sampler's per-sample state travel with the training state */
    rg_checkpoint_part parts[RG_DISTILL_MAX_PAIRS];
    rg_st_tensor extra[6];
    rg_checkpoint_extras x = {parts, with_state ? distill_parts(r, parts) : 0, extra,
                              with_state ? rg_sampler_tensors(r->sampler, extra, 6, r->part.batch > 0) : 0};
    st = rg_checkpoint_save_with(path, r->g, with_state ? &r->opt : NULL, with_state && r->use_ema ? &r->ema : NULL,
                                 &x, meta, n_meta, err);
    free(config);
    return st;
}

/* Evaluates test (and val) with the weights that would be deployed. */
static rg_status evaluate_epoch(run_state *r, rg_eval_result *test, double *val_top1, rg_error *err)
{
    if (r->use_ema) rg_ema_swap(&r->ema, r->g);
    if (r->qat) rg_qat_begin(r->qat); /* the accuracy of the fake-quantized (= int8) model */
    rg_status st = rg_evaluate(r->g, &r->test, r->cfg.mean, r->cfg.std, test, err);
    *val_top1 = -1.0;
    if (!st && r->has_val) {
        rg_eval_result v;
        if (!(st = rg_evaluate(r->g, &r->val, r->cfg.mean, r->cfg.std, &v, err))) *val_top1 = v.top1;
        rg_eval_result_free(&v);
    }
    if (r->qat) rg_qat_end(r->qat, 0);
    if (r->use_ema) rg_ema_swap(&r->ema, r->g);
    return st;
}

/* Starts the loader on the epoch's samples (all, or the sampler's subset);
 * *nb receives the epoch's batch count. */
static rg_status start_epoch(run_state *r, int32_t epoch, int32_t *nb, rg_error *err)
{
    const int32_t *subset;
    int32_t m;
    rg_status st = rg_sampler_epoch(r->sampler, epoch, &subset, &m, err);
    if (!st) st = rg_loader_start_epoch_subset(r->loader, epoch, subset, m, err);
    *nb = rg_loader_batches(r->loader);
    return st;
}

/* The schedule's step for batch b of nb in epoch e. The schedule is laid
 * out over full-data epochs of r->batches steps; an epoch of fewer batches
 * (a curriculum or selection subset) walks the same per-epoch stretch of the
 * curve at its own pace, so the learning rate at a given fraction of an
 * epoch, and at the end of training, does not depend on the subset size.
 * With nb = r->batches this is e * r->batches + b exactly. */
static int64_t schedule_step(const run_state *r, int32_t epoch, int32_t b, int32_t nb)
{
    return (int64_t)epoch * r->batches + (nb > 0 ? (int64_t)b * r->batches / nb : 0);
}

static void record_predictions(void *sampler, const int32_t *indices, const int32_t *labels, const float *logits,
                               int32_t count, int32_t classes)
{
    (void)labels;
    rg_sampler_record_predictions(sampler, indices, logits, count, classes);
}

/* Label correction with select_refresh: the samples this epoch left out have
 * predictions from when they were last trained on, often from an early
 * model fitting their noisy label; predict them again with the model as it
 * is now (eval mode, as it would be evaluated), before the checkpoint saves
 * them. */
static rg_status refresh_predictions(run_state *r, rg_error *err)
{
    const int32_t *unseen;
    int32_t m = rg_sampler_unseen(r->sampler, &unseen);
    if (!m) return RG_OK;
    if (r->qat) rg_qat_begin(r->qat);
    rg_status st = rg_predict(r->g, &r->train, unseen, m, r->cfg.mean, r->cfg.std, record_predictions, r->sampler, err);
    if (r->qat) rg_qat_end(r->qat, 0);
    return st ? rg_error_prefix(err, "refreshing the dropped samples' predictions") : RG_OK;
}

/* A stop asked for in the middle of epoch `epoch`, after r->part.batch of
 * its nb batches: the training state goes to last.safetensors with the
 * part, and the run resumes from there. Each batch is a function of the
 * seed, the epoch and its index, so the resumed epoch ends as an
 * uninterrupted one. A sampler (curriculum, selection, label noise) saves
 * the epoch's samples with it: they were chosen from per-sample records
 * that the epoch has changed since. */
static rg_status stop_in_epoch(run_state *r, int32_t epoch, int32_t nb, rg_error *err)
{
    int32_t b = r->part.batch;
    rg_status st = save(r, "last.safetensors", epoch, 1, err);
    if (st) return st;
    return rg_fail(err, RG_ERR_STOPPED, "stopped in epoch %d of %d after batch %d of %d; the run resumes there",
                   epoch + 1, r->cfg.epochs, b, nb);
}

static rg_status train_epoch(run_state *r, int32_t epoch, const rg_train_hooks *hooks, double run_start,
                             int32_t first_epoch, rg_epoch_metrics *m, rg_error *err)
{
    rg_graph *g = r->g;
    rg_shape out = g->values[g->output].shape;
    int32_t classes = out.h * out.w * out.c;
    size_t per = rg_shape_count(g->values[g->input].shape);
    int32_t nb;
    rg_status st = start_epoch(r, epoch, &nb, err);
    if (st) return st;
    if (r->qat) rg_qat_set_epoch(r->qat, epoch);
    /* the part of the epoch a stop interrupted, done already */
    epoch_part done = r->part;
    r->part = (epoch_part){0};
    if (done.batch >= nb)
        return rg_fail(err, RG_ERR_FORMAT, "%s/last.safetensors: regain.epoch_part: batch %d is past the epoch's %d",
                       r->dir, done.batch, nb);
    rg_loader_skip(r->loader, done.batch);
    if (done.batch) r->part_before = (double)done.batch / nb;
    /* keys dropout masks: unique per step since nb <= r->batches */
    int64_t step = (int64_t)epoch * r->batches + done.batch;
    double t0 = now_s() - done.seconds, loss_sum = done.loss_sum, teacher_s = done.teacher_s;
    int64_t seen = done.seen, correct = done.correct;
    const float *x;
    const int32_t *y, *idx;
    const float *mixed;
    int32_t count, b = done.batch, mixed_classes = rg_loader_classes(r->loader);
    float lr = 0.0f;
    while (rg_loader_next_soft(r->loader, &x, &y, &mixed, &idx, &count)) {
        if ((st = rg_graph_set_batch(g, count, err))) return st;
        memcpy(rg_graph_input(g), x, (size_t)count * per * sizeof(float));
        rg_exec ctx = {.training = 1, .seed = (uint64_t)r->cfg.seed, .step = (uint64_t)step, .no_input_grad = 1};
        if (r->qat) rg_qat_begin(r->qat);
        rg_graph_forward(g, &ctx);
        const float *logits = rg_graph_output(g);
        float loss;
        if (mixed) {
            /* mixup / CutMix: soft targets, padded to the model's outputs */
            memset(r->soft, 0, (size_t)count * classes * sizeof(float));
            for (int32_t i = 0; i < count; i++)
                memcpy(r->soft + (size_t)i * classes, mixed + (size_t)i * mixed_classes, mixed_classes * sizeof(float));
            loss = rg_xent_soft_forward_backward(logits, r->soft, count, classes, r->cfg.label_smoothing, r->dlogits,
                                                 r->sample_loss);
        } else {
            loss = rg_xent_forward_backward(logits, y, count, classes, r->cfg.label_smoothing, r->dlogits,
                                            r->sample_loss);
        }
        if (rg_sampler_wants_logits(r->sampler)) rg_sampler_record_logits(r->sampler, idx, logits, count, classes);
        else rg_sampler_record(r->sampler, idx, r->sample_loss, count);
        if (r->distill) {
            rg_distill_parts parts;
            rg_distiller_loss(r->distill, x, y, idx, count, epoch, logits, r->dlogits, loss, &parts);
            loss = (float)parts.total;
            teacher_s += parts.teacher_s;
        }
        correct += rg_count_correct(logits, y, count, classes);
        memcpy(rg_graph_output_grad(g), r->dlogits, (size_t)count * classes * sizeof(float));
        rg_graph_backward(g, &ctx);
        if (r->qat) rg_qat_end(r->qat, 1); /* master weights back, gradients straight through */
        lr = rg_schedule_lr(&r->sched, schedule_step(r, epoch, b, nb));
        rg_optim_step(&r->opt, g, lr);
        if (r->distill) rg_distiller_update(r->distill, lr);
        if (r->use_ema) rg_ema_update(&r->ema, g);
        loss_sum += (double)loss * count;
        seen += count;
        step++;
        b++;
        if (hooks && hooks->progress) {
            double t = now_s(), el = t - t0;
            /* of this call's work: the part of its first epoch done before is not */
            double done_frac = (double)(epoch - first_epoch) + (double)b / nb - r->part_before;
            double total = (double)(r->cfg.epochs - first_epoch) - r->part_before;
            rg_train_progress p = {epoch, r->cfg.epochs, b, nb, loss_sum / (double)seen,
                                   el > 0 ? (double)seen / el : 0.0, t - run_start,
                                   done_frac > 0 ? (t - run_start) * (total - done_frac) / done_frac : 0.0};
            hooks->progress(hooks->user, &p);
        }
        if (b < nb && hooks && hooks->stop && hooks->stop(hooks->user)) {
            r->part = (epoch_part){b, seen, correct, loss_sum, teacher_s, now_s() - t0};
            return stop_in_epoch(r, epoch, nb, err);
        }
    }
    if ((st = rg_graph_set_batch(g, g->planned_batch, err))) return st;
    if (epoch + 1 < r->cfg.epochs && (st = refresh_predictions(r, err))) return st;
    m->epoch = epoch + 1;
    m->lr = lr;
    m->train_loss = seen ? loss_sum / (double)seen : 0.0;
    m->train_top1 = seen ? (double)correct / (double)seen : 0.0;
    m->seconds = now_s() - t0;
    m->images_per_s = m->seconds > 0 ? (double)seen / m->seconds : 0.0;
    m->teacher_s = teacher_s;
    m->samples = seen;
    if (r->sampler) rg_sampler_stats(r->sampler, &m->samples, &m->noisy_kept);
    return RG_OK;
}

rg_status rg_train_run(const rg_train_config *cfg, const char *run_dir, int resume, const rg_train_hooks *hooks,
                       rg_train_result *res, rg_error *err)
{
    memset(res, 0, sizeof *res);
    run_state r;
    memset(&r, 0, sizeof r);
    r.dir = run_dir;
    r.cfg = *cfg;
    rg_st_file *ck = NULL;
    double start = now_s();
    rg_status st = RG_OK;
    if (resume) st = load_resume_config(&r, cfg, &ck, err);
    else st = rg_make_dirs(run_dir, err);
    if (!st) st = rg_train_config_validate(&r.cfg, err);
    if (!st) {
        rg_set_threads(r.cfg.threads);
        st = setup(&r, resume, ck, err);
    }
    rg_st_free(ck);
    if (!st && !resume) {
        char path[1100], *text = rg_train_config_format(&r.cfg);
        if (!text) st = rg_fail(err, RG_ERR_NOMEM, "out of memory");
        if (!st) st = path_in(&r, "config.txt", path, sizeof path, err);
        if (!st) st = rg_write_file_atomic(path, text, strlen(text), err);
        free(text);
    }
    if (!st && r.distill && hooks && hooks->note) {
        char msg[256];
        snprintf(msg, sizeof msg, "teacher: %.2f%% top-1 on the %s set", 100.0 * r.teacher_top1,
                 r.has_val ? "validation" : "test");
        hooks->note(hooks->user, msg);
    }
    if (!st && resume && hooks && hooks->note) {
        char msg[256];
        int n = snprintf(msg, sizeof msg, "resuming after epoch %d of %d", r.start_epoch, r.cfg.epochs);
        if (r.part.batch > 0)
            snprintf(msg + n, sizeof msg - (size_t)n, " and %d batches of epoch %d", r.part.batch, r.start_epoch + 1);
        hooks->note(hooks->user, msg);
    }
    for (int32_t e = r.start_epoch; !st && e < r.cfg.epochs; e++) {
        rg_epoch_metrics m = {0};
        rg_eval_result test = {0};
        if ((st = train_epoch(&r, e, hooks, start, r.start_epoch, &m, err))) break;
        if ((st = evaluate_epoch(&r, &test, &m.val_top1, err))) break;
        m.test_loss = test.loss;
        m.test_top1 = test.top1;
        rg_eval_result_free(&test);
        double sel = r.has_val ? m.val_top1 : m.test_top1;
        if (sel > r.best) {
            r.best = sel;
            r.best_epoch = e + 1;
            m.is_best = 1;
        }
        if ((st = append_metrics(&r, &m, err))) break;
        if (m.is_best) {
            /* best holds the weights that were evaluated (the average when on) */
            if (r.use_ema) rg_ema_swap(&r.ema, r.g);
            st = save(&r, "best.safetensors", e + 1, 0, err);
            if (r.use_ema) rg_ema_swap(&r.ema, r.g);
            if (st) break;
        }
        if ((st = save(&r, "last.safetensors", e + 1, 1, err))) break;
        res->epochs_run++;
        r.teacher_s += m.teacher_s;
        r.train_s += m.seconds;
        if (hooks && hooks->epoch_end) hooks->epoch_end(hooks->user, &m);
    }
    if (!st) {
        double val;
        st = evaluate_epoch(&r, &res->final, &val, err);
        res->best_top1 = r.best;
        res->best_epoch = r.best_epoch;
        res->teacher_top1 = r.teacher_top1;
        if (r.distill && r.train_s > 0 && hooks && hooks->note) {
            char msg[256];
            snprintf(msg, sizeof msg, "teacher forward passes: %.0f%% of the training time%s", 100.0 * r.teacher_s / r.train_s,
                     rg_distiller_cached(r.distill) ? " (outputs cached: unaugmented images)" : "");
            hooks->note(hooks->user, msg);
        }
        if (r.distill && r.teacher_top1 <= r.best && hooks && hooks->note) {
            char msg[256];
            snprintf(msg, sizeof msg,
                     "warning: the teacher (%.2f%%) is not better than the student (%.2f%%) on the %s set: "
                     "distillation has nothing to pass on",
                     100.0 * r.teacher_top1, 100.0 * r.best, r.has_val ? "validation" : "test");
            hooks->note(hooks->user, msg);
        }
    }
    res->wall_s = now_s() - start;
    run_free(&r);
    return st;
}

void rg_train_result_free(rg_train_result *res) { rg_eval_result_free(&res->final); }
