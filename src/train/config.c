/* Training configuration: one table describes every key (name, type, place,
 * range, help), and parsing, formatting and help all read that table. */
#include "regain/trainer.h"
#include "regain/ptq.h"
#include "regain/curriculum.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { K_INT, K_I64, K_FLOAT, K_STR, K_BOOL } key_type;

typedef struct {
    const char *name;
    key_type type;
    size_t off, size;
    double lo, hi;
    const char *help;
} key_def;

/* Keys formatted only when they differ from their default. The formatted
 * text is what the experiment store hashes to know a finished run, so a key
 * added after runs were recorded goes here: runs that do not use it keep
 * their text, and their results. */
static const char *const quiet_keys[] = {"select_per_class", "select_relabel", "select_refresh", "ptq_requant_fp32",
                                         NULL};

static int quiet(const char *name)
{
    for (const char *const *q = quiet_keys; *q; q++)
        if (!strcmp(*q, name)) return 1;
    return 0;
}

#define F(field) offsetof(rg_train_config, field), sizeof(((rg_train_config *)0)->field)
static const key_def keys[] = {
    {"model", K_STR, F(model), 0, 0, "zoo model name or model spec file"},
    {"data", K_STR, F(data), 0, 0, "fashion-mnist, or a directory holding the four IDX files"},
    {"init", K_STR, F(init), 0, 0, "checkpoint whose weights (its EMA when it has one) start the training; empty = random"},
    {"epochs", K_INT, F(epochs), 1, 100000, "training epochs"},
    {"batch", K_INT, F(batch), 1, 65536, "batch size"},
    {"optim", K_STR, F(optim), 0, 0, "sgd or adamw"},
    {"lr", K_FLOAT, F(lr), 0, 1000, "peak learning rate"},
    {"momentum", K_FLOAT, F(momentum), 0, 0.9999, "SGD momentum"},
    {"nesterov", K_BOOL, F(nesterov), 0, 1, "Nesterov momentum (SGD)"},
    {"wd", K_FLOAT, F(wd), 0, 10, "weight decay (L2 for SGD, decoupled for AdamW)"},
    {"decay_all", K_BOOL, F(decay_all), 0, 1, "also decay BN parameters and biases"},
    {"beta1", K_FLOAT, F(beta1), 0, 0.9999999, "AdamW beta1"},
    {"beta2", K_FLOAT, F(beta2), 0, 0.9999999, "AdamW beta2"},
    {"adam_eps", K_FLOAT, F(adam_eps), 1e-12, 1, "AdamW epsilon"},
    {"schedule", K_STR, F(schedule), 0, 0, "cosine, step or constant"},
    {"warmup_epochs", K_FLOAT, F(warmup_epochs), 0, 1000, "linear warm-up length in epochs"},
    {"min_lr", K_FLOAT, F(min_lr), 0, 1000, "cosine floor"},
    {"step_epochs", K_INT, F(step_epochs), 1, 100000, "step schedule: decay every N epochs"},
    {"gamma", K_FLOAT, F(gamma), 0, 1, "step schedule: decay factor"},
    {"label_smoothing", K_FLOAT, F(label_smoothing), 0, 0.999, "label smoothing epsilon"},
    {"ema", K_FLOAT, F(ema), 0, 0.999999, "weight EMA decay (0 = off); evaluated in place of the weights"},
    {"val_split", K_INT, F(val_split), 0, 100000000, "training images held out for model selection"},
    {"train_limit", K_INT, F(train_limit), 0, 100000000, "use only the first N training images (0 = all)"},
    {"test_limit", K_INT, F(test_limit), 0, 100000000, "evaluate on the first N test images (0 = all)"},
    {"crop_pad", K_INT, F(crop_pad), 0, 64, "random crop with this zero padding (0 = off)"},
    {"hflip", K_BOOL, F(hflip), 0, 1, "random horizontal flip"},
    {"mean", K_FLOAT, F(mean), -1000, 1000, "input normalization mean (pixels in [0, 1])"},
    {"std", K_FLOAT, F(std), 1e-6, 1000, "input normalization standard deviation"},
    {"seed", K_I64, F(seed), 0, 9007199254740991.0, "random seed"},
    {"teacher", K_STR, F(teacher), 0, 0, "distillation: teacher checkpoint (its EMA weights when it has them); empty = no distillation"},
    {"teacher2", K_STR, F(teacher2), 0, 0, "distillation: a second teacher; the ensemble averages the teachers' probabilities"},
    {"teacher3", K_STR, F(teacher3), 0, 0, "distillation: a third teacher of the ensemble"},
    {"kd_alpha", K_FLOAT, F(kd_alpha), 0, 1, "logit distillation weight; the hard-label loss gets 1 - kd_alpha"},
    {"kd_temperature", K_FLOAT, F(kd_temperature), 0.01, 100, "temperature of logit and decoupled distillation"},
    {"dkd_alpha", K_FLOAT, F(dkd_alpha), 0, 1000, "decoupled distillation: target-class (TCKD) weight"},
    {"dkd_beta", K_FLOAT, F(dkd_beta), 0, 1000, "decoupled distillation: non-target-class (NCKD) weight"},
    {"dkd_warmup", K_INT, F(dkd_warmup), 0, 100000, "decoupled distillation: epochs over which its weight ramps up"},
    {"hints", K_STR, F(hints), 0, 0, "feature hints: student_layer:teacher_layer pairs, comma separated"},
    {"hint_weight", K_FLOAT, F(hint_weight), 0, 1e6, "weight of the feature-hint loss (mean squared error)"},
    {"at", K_STR, F(at), 0, 0, "attention transfer: student_layer:teacher_layer pairs, comma separated"},
    {"at_weight", K_FLOAT, F(at_weight), 0, 1e7, "attention transfer beta (the loss is beta/2 times the sum over pairs)"},
    {"threads", K_INT, F(threads), 0, 1024, "compute threads (0 = all cores); results do not depend on it"},
    {"workers", K_INT, F(workers), 0, 64, "data loader threads; results do not depend on it"},
    /* docs/curriculum.md; cross-key checks in rg_sampler_check_config */
    {"label_noise", K_FLOAT, F(label_noise), 0, 1, "fraction of training labels corrupted (0 = off)"},
    {"label_noise_kind", K_STR, F(label_noise_kind), 0, 0, "symmetric (to any other class) or asymmetric (class map)"},
    {"label_noise_map", K_STR, F(label_noise_map), 0, 0, "asymmetric map FROM:TO,...; empty = Fashion-MNIST pairs 0<->6, 2<->4, 5<->7"},
    {"curriculum", K_STR, F(curriculum), 0, 0, "difficulty source: none, teacher, self (own loss) or file"},
    {"curriculum_teacher", K_STR, F(curriculum_teacher), 0, 0, "checkpoint scoring the training set (curriculum = teacher)"},
    {"curriculum_scores", K_STR, F(curriculum_scores), 0, 0, "scores file, one per line or 'index score' (curriculum = file)"},
    {"curriculum_score", K_STR, F(curriculum_score), 0, 0, "teacher score: loss or confidence (1 - p of the label)"},
    {"curriculum_order", K_STR, F(curriculum_order), 0, 0, "easy (curriculum), hard (anti-curriculum) or random (control)"},
    {"pacing", K_STR, F(pacing), 0, 0, "data growth: linear, root, geometric or step"},
    {"pacing_start", K_FLOAT, F(pacing_start), 0, 1, "fraction of the data in epoch 1"},
    {"pacing_full_epoch", K_INT, F(pacing_full_epoch), 0, 100000, "epoch (1-based) from which all data is used; 0 = half the epochs"},
    {"pacing_steps", K_INT, F(pacing_steps), 1, 10000, "step pacing: number of increments"},
    {"select_keep", K_FLOAT, F(select_keep), 0, 1, "small-loss selection: final fraction of samples kept (1 = off)"},
    {"select_warmup", K_INT, F(select_warmup), 0, 100000, "small-loss selection: epochs on all data first"},
    {"select_ramp_epochs", K_INT, F(select_ramp_epochs), 0, 100000, "small-loss selection: epochs for the keep fraction to fall from 1"},
    {"select_per_class", K_BOOL, F(select_per_class), 0, 1, "small-loss selection: keep the fraction of each class (by its label as given) instead of the fraction of all samples"},
    {"select_relabel", K_FLOAT, F(select_relabel), 0, 1, "label correction: a sample selection drops is trained on with the predicted class when its probability is at least this (0 = off)"},
    {"select_refresh", K_BOOL, F(select_refresh), 0, 1, "label correction: after each epoch, predict the samples it did not train on again (eval mode), so their correction uses the current model"},
    {"augment", K_STR, F(augment), 0, 0, "augmentation spec on top of crop_pad/hflip, e.g. randaugment:n=2,m=9 (docs/augmentation.md)"},
    {"erasing", K_FLOAT, F(erasing), 0, 1, "random erasing probability (0 = off)"},
    {"mixup", K_FLOAT, F(mixup), 0, 100, "mixup Beta alpha (0 = off)"},
    {"cutmix", K_FLOAT, F(cutmix), 0, 100, "CutMix Beta alpha (0 = off)"},
    {"qat", K_BOOL, F(qat), 0, 1, "quantization-aware training: fake-quantize weights and activations (docs/quantization.md)"},
    {"qat_weight_bits", K_INT, F(qat_weight_bits), 4, 8, "QAT weight bits: 8, or 4 (W4A8: 4-bit weights, 8-bit activations)"},
    {"qat_per_tensor", K_BOOL, F(qat_per_tensor), 0, 1, "QAT: one weight scale per tensor instead of per output channel"},
    {"qat_lsq", K_BOOL, F(qat_lsq), 0, 1, "QAT: learned step sizes (LSQ) for weights and activations"},
    {"qat_freeze_bn", K_INT, F(qat_freeze_bn), -1, 100000, "QAT: epoch (0-based) from which batch norms use running statistics (-1 = never)"},
    {"qat_freeze_observers", K_INT, F(qat_freeze_observers), -1, 100000, "QAT: epoch (0-based) from which activation ranges stop moving (-1 = never)"},
    {"qat_momentum", K_FLOAT, F(qat_momentum), 1e-6, 1, "QAT: averaging constant of the moving-average range observers"},
    {"ptq_calib", K_INT, F(ptq_calib), 1, 1000000, "kind = quantize: calibration images (a seeded subset of the training set)"},
    {"ptq_observer", K_STR, F(ptq_observer), 0, 0, "kind = quantize: minmax, moving-average, percentile, mse or entropy"},
    {"ptq_per_tensor", K_BOOL, F(ptq_per_tensor), 0, 1, "kind = quantize: one weight scale per layer instead of per channel"},
    {"ptq_equalize", K_BOOL, F(ptq_equalize), 0, 1, "kind = quantize: cross-layer equalization (ReLU6-safe)"},
    {"ptq_bias_correct", K_BOOL, F(ptq_bias_correct), 0, 1, "kind = quantize: empirical bias correction"},
    {"ptq_adaround", K_BOOL, F(ptq_adaround), 0, 1, "kind = quantize: learned weight rounding (AdaRound)"},
    {"ptq_requant_fp32", K_BOOL, F(ptq_requant_fp32), 0, 1, "kind = quantize: requantize conv, depthwise, fc and add with fp32 scales (regain quantize --requant fp32)"},
};
#define N_KEYS (sizeof keys / sizeof keys[0])

void rg_train_config_default(rg_train_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->model, sizeof c->model, "mbv2-tiny");
    snprintf(c->data, sizeof c->data, "fashion-mnist");
    c->epochs = 15;
    c->batch = 128;
    snprintf(c->optim, sizeof c->optim, "sgd");
    c->lr = 0.1f;
    c->momentum = 0.9f;
    c->nesterov = 1;
    c->wd = 5e-4f;
    c->beta1 = 0.9f;
    c->beta2 = 0.999f;
    c->adam_eps = 1e-8f;
    snprintf(c->schedule, sizeof c->schedule, "cosine");
    c->step_epochs = 30;
    c->gamma = 0.1f;
    c->crop_pad = 2;
    c->hflip = 1;
    c->kd_temperature = 4.0f;
    rg_qat_config q = rg_qat_default();
    c->qat_weight_bits = q.weight_bits;
    c->qat_freeze_bn = q.freeze_bn;
    c->qat_freeze_observers = q.freeze_observers;
    c->qat_momentum = q.momentum;
    c->ptq_calib = 512;
    snprintf(c->ptq_observer, sizeof c->ptq_observer, "minmax");
    c->hint_weight = 100.0f;
    c->at_weight = 1000.0f;
    c->mean = 0.2860f;
    c->std = 0.3530f;
    c->seed = 1;
    c->workers = 2;
    snprintf(c->label_noise_kind, sizeof c->label_noise_kind, "symmetric");
    snprintf(c->curriculum, sizeof c->curriculum, "none");
    snprintf(c->curriculum_score, sizeof c->curriculum_score, "loss");
    snprintf(c->curriculum_order, sizeof c->curriculum_order, "easy");
    snprintf(c->pacing, sizeof c->pacing, "linear");
    c->pacing_start = 0.25f;
    c->pacing_steps = 2;
    c->select_keep = 1.0f;
    c->select_warmup = 1;
}

static const key_def *find(const char *name)
{
    for (size_t i = 0; i < N_KEYS; i++)
        if (strcmp(keys[i].name, name) == 0) return &keys[i];
    return NULL;
}

rg_status rg_train_config_set(rg_train_config *c, const char *key, const char *value, rg_error *err)
{
    const key_def *k = find(key);
    if (!k) return rg_fail(err, RG_ERR_ARG, "unknown key '%s' (see 'regain train --help')", key);
    char *p = (char *)c + k->off;
    char *end;
    errno = 0;
    switch (k->type) {
    case K_STR:
        if (strlen(value) >= k->size)
            return rg_fail(err, RG_ERR_ARG, "%s: value is longer than %zu characters", key, k->size - 1);
        /* the value must read back the same from the configuration text a
         * checkpoint and config.txt keep, or a resumed run would differ */
        if (strpbrk(value, "\r\n") || rg_config_comment(value, "#"))
            return rg_fail(err, RG_ERR_ARG,
                           "%s: '%s' holds a line break, or a '#' first or after white space, which the saved "
                           "configuration would read as a comment",
                           key, value);
        if (*value && (isspace((unsigned char)value[0]) || isspace((unsigned char)value[strlen(value) - 1])))
            return rg_fail(err, RG_ERR_ARG, "%s: '%s' starts or ends with white space, which the saved configuration drops",
                           key, value);
        memcpy(p, value, strlen(value) + 1);
        return RG_OK;
    case K_BOOL:
        if (!strcmp(value, "1") || !strcmp(value, "true") || !strcmp(value, "yes") || !strcmp(value, "on"))
            *(int32_t *)p = 1;
        else if (!strcmp(value, "0") || !strcmp(value, "false") || !strcmp(value, "no") || !strcmp(value, "off"))
            *(int32_t *)p = 0;
        else
            return rg_fail(err, RG_ERR_ARG, "%s: '%s' is not a boolean (1/0, true/false, yes/no, on/off)", key, value);
        return RG_OK;
    case K_INT:
    case K_I64: {
        long long v = strtoll(value, &end, 10);
        if (errno || end == value || *end)
            return rg_fail(err, RG_ERR_ARG, "%s: '%s' is not an integer", key, value);
        if (v < k->lo || v > k->hi)
            return rg_fail(err, RG_ERR_ARG, "%s: %lld is out of range [%.0f, %.0f]", key, v, k->lo, k->hi);
        if (k->type == K_INT) *(int32_t *)p = (int32_t)v;
        else *(int64_t *)p = v;
        return RG_OK;
    }
    case K_FLOAT: {
        double v = strtod(value, &end);
        if (errno || end == value || *end || !isfinite(v))
            return rg_fail(err, RG_ERR_ARG, "%s: '%s' is not a number", key, value);
        /* The range is checked on the value as stored (a float), against
         * bounds rounded the same way: a double inside a bound can round to a
         * float outside it (1e-12 -> 9.99999996e-13, 0.999 -> 0.999000013),
         * and rg_train_config_format would then write a value that parse
         * rejects, so the run could not be resumed. */
        if ((float)v < (float)k->lo || (float)v > (float)k->hi)
            return rg_fail(err, RG_ERR_ARG, "%s: %g is out of range [%g, %g]", key, v, k->lo, k->hi);
        *(float *)p = (float)v;
        return RG_OK;
    }
    }
    return RG_ERR_ARG;
}

rg_status rg_train_config_validate(const rg_train_config *c, rg_error *err)
{
    if (strcmp(c->optim, "sgd") && strcmp(c->optim, "adamw"))
        return rg_fail(err, RG_ERR_ARG, "optim: '%s' is not an optimizer (sgd, adamw)", c->optim);
    if (strcmp(c->schedule, "cosine") && strcmp(c->schedule, "step") && strcmp(c->schedule, "constant"))
        return rg_fail(err, RG_ERR_ARG, "schedule: '%s' is not a schedule (cosine, step, constant)", c->schedule);
    if (!(c->lr > 0.0f)) return rg_fail(err, RG_ERR_ARG, "lr: must be > 0");
    if (!c->model[0]) return rg_fail(err, RG_ERR_ARG, "model: missing");
    if (!c->data[0]) return rg_fail(err, RG_ERR_ARG, "data: missing");
    rg_augment_config aug;
    rg_mix_config mix;
    rg_status st = rg_train_augment_config(c, &aug, &mix, err);
    if (st) return st;
    if (c->warmup_epochs > (float)c->epochs)
        return rg_fail(err, RG_ERR_ARG, "warmup_epochs (%g) exceeds epochs (%d)", c->warmup_epochs, c->epochs);
    if (c->qat) {
        rg_qat_config q;
        rg_train_config_qat(c, &q);
        if ((st = rg_qat_check_config(&q, err))) return st;
    } else if (c->qat_lsq || c->qat_per_tensor || c->qat_weight_bits != 8) {
        return rg_fail(err, RG_ERR_ARG, "%s: set without qat = 1", c->qat_lsq ? "qat_lsq"
                       : c->qat_per_tensor ? "qat_per_tensor" : "qat_weight_bits");
    }
    rg_distill_config d;
    rg_train_config_distill(c, &d);
    st = rg_distill_validate(&d, err);
    if (!st) st = rg_sampler_check_config(c, err);
    rg_obs_kind kind;
    if (!st && (st = rg_obs_kind_parse(c->ptq_observer, &kind, err))) rg_error_prefix(err, "ptq_observer");
    return st;
}

void rg_train_config_qat(const rg_train_config *c, rg_qat_config *q)
{
    *q = rg_qat_default();
    q->weight_bits = c->qat_weight_bits;
    q->per_tensor = c->qat_per_tensor;
    q->lsq = c->qat_lsq;
    q->freeze_bn = c->qat_freeze_bn;
    q->freeze_observers = c->qat_freeze_observers;
    q->momentum = c->qat_momentum;
}

void rg_train_config_distill(const rg_train_config *c, rg_distill_config *d)
{
    memset(d, 0, sizeof *d);
    snprintf(d->teachers[0], sizeof d->teachers[0], "%s", c->teacher);
    snprintf(d->teachers[1], sizeof d->teachers[1], "%s", c->teacher2);
    snprintf(d->teachers[2], sizeof d->teachers[2], "%s", c->teacher3);
    d->T = c->kd_temperature;
    d->kd_alpha = c->kd_alpha;
    d->dkd_alpha = c->dkd_alpha;
    d->dkd_beta = c->dkd_beta;
    d->dkd_warmup = c->dkd_warmup;
    snprintf(d->hints, sizeof d->hints, "%s", c->hints);
    d->hint_weight = c->hint_weight;
    snprintf(d->at, sizeof d->at, "%s", c->at);
    d->at_weight = c->at_weight;
    d->mean = c->mean;
    d->std = c->std;
}

static void format_value(const key_def *k, const rg_train_config *c, char *val, size_t size)
{
    const char *p = (const char *)c + k->off;
    switch (k->type) {
    case K_STR: snprintf(val, size, "%s", p); break;
    case K_BOOL:
    case K_INT: snprintf(val, size, "%d", *(const int32_t *)p); break;
    case K_I64: snprintf(val, size, "%lld", (long long)*(const int64_t *)p); break;
    /* %.9g round-trips every float exactly */
    case K_FLOAT: snprintf(val, size, "%.9g", (double)*(const float *)p); break;
    }
}

char *rg_train_config_format(const rg_train_config *c)
{
    size_t cap = 8192, len = 0;
    char *out = malloc(cap);
    if (!out) return NULL;
    out[0] = 0;
    rg_train_config d;
    rg_train_config_default(&d);
    for (size_t i = 0; i < N_KEYS; i++) {
        const char *p = (const char *)c + keys[i].off, *dp = (const char *)&d + keys[i].off;
        if (quiet(keys[i].name) && (keys[i].type == K_STR ? !strcmp(p, dp) : !memcmp(p, dp, keys[i].size))) continue;
        char val[600];
        format_value(&keys[i], c, val, sizeof val);
        size_t need = strlen(keys[i].name) + strlen(val) + 5;
        if (len + need > cap) {
            char *bigger = realloc(out, cap = 2 * cap + need);
            if (!bigger) {
                free(out);
                return NULL;
            }
            out = bigger;
        }
        len += (size_t)snprintf(out + len, cap - len, "%s = %s\n", keys[i].name, val);
    }
    return out;
}

const char *rg_config_comment(const char *line, const char *marks)
{
    for (const char *h = line; *h; h++)
        if (strchr(marks, *h) && (h == line || isspace((unsigned char)h[-1]))) return h;
    return NULL;
}

rg_status rg_train_config_parse(rg_train_config *c, const char *text, const char *origin, rg_error *err)
{
    int line = 0;
    const char *p = text;
    while (*p) {
        line++;
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        char buf[1024];
        if (len >= sizeof buf) return rg_fail(err, RG_ERR_FORMAT, "%s:%d: line is too long", origin, line);
        memcpy(buf, p, len);
        buf[len] = 0;
        p = nl ? nl + 1 : p + len;
        char *comment = (char *)rg_config_comment(buf, "#");
        if (comment) *comment = 0;
        char *s = buf;
        while (isspace((unsigned char)*s)) s++;
        if (!*s) continue;
        char *eq = strchr(s, '=');
        if (!eq) return rg_fail(err, RG_ERR_FORMAT, "%s:%d: expected 'key = value'", origin, line);
        char *ke = eq;
        while (ke > s && isspace((unsigned char)ke[-1])) ke--;
        *ke = 0;
        char *v = eq + 1;
        while (isspace((unsigned char)*v)) v++;
        char *ve = v + strlen(v);
        while (ve > v && isspace((unsigned char)ve[-1])) ve--;
        *ve = 0;
        rg_status st = rg_train_config_set(c, s, v, err);
        if (st) return rg_error_prefix(err, "%s:%d", origin, line);
    }
    return RG_OK;
}

const rg_config_key_help *rg_train_config_keys(void)
{
    static rg_config_key_help list[N_KEYS + 1];
    static char defaults[N_KEYS][600];
    rg_train_config d;
    rg_train_config_default(&d);
    for (size_t i = 0; i < N_KEYS; i++) {
        format_value(&keys[i], &d, defaults[i], sizeof defaults[i]);
        list[i] = (rg_config_key_help){keys[i].name, keys[i].help, defaults[i]};
    }
    list[N_KEYS] = (rg_config_key_help){NULL, NULL, NULL};
    return list;
}
