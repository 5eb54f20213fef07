/* The sampler: label noise, curriculum pacing and order, and loss-based
 * selection put together for the trainer (see curriculum.h). Everything an
 * epoch's choice depends on is either derived from the configuration (noise,
 * random order) or saved in the training checkpoint (scores, losses), so a
 * resumed run picks the same samples as an uninterrupted one. A run stopped
 * in the middle of an epoch saves that epoch's choice too (its subset, and
 * with label correction its labels): the records it was chosen from have
 * changed since, and the resumed run finishes the epoch on it. */
#include "regain/curriculum.h"
#include "regain/label_noise.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef enum { CUR_NONE = 0, CUR_TEACHER, CUR_SELF, CUR_FILE } cur_source;

struct rg_sampler {
    rg_dataset *train;
    int32_t n;
    uint64_t seed;
    cur_source source;
    rg_curriculum_order order;
    rg_score_kind score_kind;
    rg_pacing pacing;
    float keep;
    int32_t warmup, ramp;
    int per_class;          /* selection keeps the fraction of each class */
    float relabel;          /* label correction threshold; 0 = off */
    int refresh;            /* label correction: predict the dropped samples again after each epoch */
    uint8_t *clean;         /* labels before noise; NULL without noise */
    uint8_t *given;         /* label correction: the labels as given (after noise), which train's labels
                               return to before each epoch's correction; NULL when off */
    float *pred, *conf;     /* label correction: the predicted class and its probability when each sample
                               was last trained on (conf -1: never); NULL when off */
    uint8_t *mark;          /* label correction: per sample, 1 kept, 2 relabeled this epoch */
    float *score;           /* teacher or file scores; NULL otherwise */
    float *loss;            /* loss when each sample was last trained on (INFINITY: never); NULL when unused */
    int32_t *rank, *subset; /* n each */
    float *tmp;             /* n: selection keys */
    int64_t used;           /* samples of the current epoch: subset[0..used) */
    int resumed;            /* subset and labels are a stopped epoch's, restored: the next epoch call keeps them */
    double noisy;
};

/* ---- configuration ---------------------------------------------------------------- */

static int pick(const char *v, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(v, names[i])) return i;
    return -1;
}

static const char *const sources[] = {"none", "teacher", "self", "file"};
static const char *const orders[] = {"easy", "hard", "random"};
static const char *const pacings[] = {"linear", "root", "geometric", "step"};
static const char *const score_kinds[] = {"loss", "confidence"};
static const char *const noise_kinds[] = {"symmetric", "asymmetric"};
#define COUNT(a) ((int)(sizeof a / sizeof a[0]))

/* pacing_full_epoch 0 means half the epochs, rounded up */
static rg_pacing pacing_of(const rg_train_config *c)
{
    rg_pacing p = {(rg_pacing_kind)pick(c->pacing, pacings, COUNT(pacings)), c->pacing_start,
                   c->pacing_full_epoch > 0 ? c->pacing_full_epoch : (c->epochs + 1) / 2, c->pacing_steps};
    return p;
}

rg_status rg_sampler_check_config(const rg_train_config *c, rg_error *err)
{
    if (pick(c->label_noise_kind, noise_kinds, COUNT(noise_kinds)) < 0)
        return rg_fail(err, RG_ERR_ARG, "label_noise_kind: '%s' is not a kind of noise (symmetric, asymmetric)",
                       c->label_noise_kind);
    if (c->label_noise_map[0]) {
        int32_t map[RG_NOISE_MAX_CLASSES];
        rg_status st = rg_label_noise_parse_map(c->label_noise_map, RG_NOISE_MAX_CLASSES, map, err);
        if (st) return st;
        if (strcmp(c->label_noise_kind, "asymmetric"))
            return rg_fail(err, RG_ERR_ARG, "label_noise_map: only asymmetric noise takes a map (label_noise_kind is '%s')",
                           c->label_noise_kind);
    }
    int src = pick(c->curriculum, sources, COUNT(sources));
    if (src < 0)
        return rg_fail(err, RG_ERR_ARG, "curriculum: '%s' is not a source of difficulty (none, teacher, self, file)",
                       c->curriculum);
    if (pick(c->curriculum_order, orders, COUNT(orders)) < 0)
        return rg_fail(err, RG_ERR_ARG, "curriculum_order: '%s' is not an order (easy, hard, random)", c->curriculum_order);
    if (pick(c->curriculum_score, score_kinds, COUNT(score_kinds)) < 0)
        return rg_fail(err, RG_ERR_ARG, "curriculum_score: '%s' is not a score (loss, confidence)", c->curriculum_score);
    if (pick(c->pacing, pacings, COUNT(pacings)) < 0)
        return rg_fail(err, RG_ERR_ARG, "pacing: '%s' is not a pacing function (linear, root, geometric, step)", c->pacing);
    if (src == CUR_TEACHER && !c->curriculum_teacher[0])
        return rg_fail(err, RG_ERR_ARG, "curriculum_teacher: curriculum = teacher needs a checkpoint");
    if (src == CUR_FILE && !c->curriculum_scores[0])
        return rg_fail(err, RG_ERR_ARG, "curriculum_scores: curriculum = file needs a scores file");
    if (src != CUR_TEACHER && c->curriculum_teacher[0])
        return rg_fail(err, RG_ERR_ARG, "curriculum_teacher: set, but curriculum is '%s' (not teacher)", c->curriculum);
    if (src != CUR_FILE && c->curriculum_scores[0])
        return rg_fail(err, RG_ERR_ARG, "curriculum_scores: set, but curriculum is '%s' (not file)", c->curriculum);
    rg_pacing p = pacing_of(c);
    rg_status st = rg_pacing_check(&p, err);
    if (st) return st;
    if (p.full_epoch > c->epochs)
        return rg_fail(err, RG_ERR_ARG, "pacing_full_epoch: %d exceeds epochs (%d)", p.full_epoch, c->epochs);
    if (!(c->select_keep > 0.0f && c->select_keep <= 1.0f))
        return rg_fail(err, RG_ERR_ARG, "select_keep: %g must be in (0, 1] (1 = no selection)", (double)c->select_keep);
    if (c->select_keep < 1.0f && c->select_warmup >= c->epochs)
        return rg_fail(err, RG_ERR_ARG, "select_warmup: %d leaves no epoch to select in (epochs = %d)", c->select_warmup,
                       c->epochs);
    if (!(c->select_relabel >= 0.0f && c->select_relabel <= 1.0f))
        return rg_fail(err, RG_ERR_ARG, "select_relabel: %g must be in [0, 1] (0 = off)", (double)c->select_relabel);
    if (c->select_relabel > 0.0f && c->select_keep >= 1.0f)
        return rg_fail(err, RG_ERR_ARG, "select_relabel: corrects the labels of the samples selection drops, but "
                                        "select_keep is 1 (no selection)");
    if (c->select_per_class && c->select_keep >= 1.0f)
        return rg_fail(err, RG_ERR_ARG, "select_per_class: divides selection between the classes, but select_keep "
                                        "is 1 (no selection)");
    if (c->select_refresh && c->select_relabel <= 0.0f)
        return rg_fail(err, RG_ERR_ARG, "select_refresh: refreshes the predictions label correction uses, but "
                                        "select_relabel is 0 (off)");
    if (c->select_relabel > 0.0f && (c->mixup > 0.0f || c->cutmix > 0.0f))
        return rg_fail(err, RG_ERR_ARG, "select_relabel: needs each sample's own prediction, which mixup and CutMix "
                                        "blend (set mixup and cutmix to 0)");
    return RG_OK;
}

/* ---- setup ------------------------------------------------------------------------ */

void rg_sampler_free(rg_sampler *s)
{
    if (!s) return;
    free(s->clean);
    free(s->given);
    free(s->pred);
    free(s->conf);
    free(s->mark);
    free(s->score);
    free(s->loss);
    free(s->rank);
    free(s->subset);
    free(s->tmp);
    free(s);
}

static rg_status apply_noise(rg_sampler *s, const rg_train_config *c, rg_error *err)
{
    int32_t map[RG_NOISE_MAX_CLASSES];
    rg_label_noise_config nc = {.kind = strcmp(c->label_noise_kind, "asymmetric") ? RG_NOISE_SYMMETRIC
                                                                                   : RG_NOISE_ASYMMETRIC,
                                .fraction = c->label_noise, .seed = (uint64_t)c->seed};
    if (nc.kind == RG_NOISE_ASYMMETRIC && c->label_noise_map[0]) {
        rg_status st = rg_label_noise_parse_map(c->label_noise_map, s->train->n_classes, map, err);
        if (st) return st;
        nc.map = map;
    }
    if (!(s->clean = rg_malloc((size_t)(s->n > 0 ? s->n : 1), err))) return RG_ERR_NOMEM;
    return rg_label_noise_apply(s->train, &nc, s->clean, NULL, err);
}

static rg_status restore(const rg_st_file *f, const char *name, int32_t n, float *dst, rg_error *err)
{
    int64_t shape[1] = {n};
    rg_status st = rg_st_copy(f, name, 1, shape, dst, err);
    return st ? rg_error_prefix(err, "resuming the curriculum state") : RG_OK;
}

/* The choice of the epoch a stop interrupted, when the checkpoint has one:
 * "sample.subset" (I32, ascending dataset indices) and, with label
 * correction, "sample.label" (U8, the training set's labels that epoch). */
static rg_status restore_epoch(rg_sampler *s, const rg_st_file *f, rg_error *err)
{
    const rg_st_tensor *sub = rg_st_find(f, "sample.subset"), *lab = rg_st_find(f, "sample.label");
    if (!sub && !lab) return RG_OK;
    if (!sub || sub->dtype != RG_ST_I32 || sub->ndim != 1 || sub->shape[0] < 1 || sub->shape[0] > s->n)
        return rg_fail(err, RG_ERR_FORMAT,
                       "resuming the curriculum state: sample.subset is %s: expected I32 indices, 1 to %d of them",
                       sub ? "malformed" : "missing beside sample.label", (int)s->n);
    int32_t m = (int32_t)sub->shape[0];
    memcpy(s->subset, sub->raw, (size_t)m * sizeof *s->subset);
    for (int32_t j = 0; j < m; j++)
        if (s->subset[j] < 0 || s->subset[j] >= s->n || (j > 0 && s->subset[j] <= s->subset[j - 1]))
            return rg_fail(err, RG_ERR_FORMAT,
                           "resuming the curriculum state: sample.subset[%d] = %d is not an ascending index below %d",
                           (int)j, (int)s->subset[j], (int)s->n);
    if (!s->given != !lab || (lab && (lab->dtype != RG_ST_U8 || lab->ndim != 1 || lab->shape[0] != s->n)))
        return rg_fail(err, RG_ERR_FORMAT, "resuming the curriculum state: sample.label is %s",
                       !lab ? "missing (the run corrects labels)"
                            : !s->given ? "there, but the run does not correct labels"
                                        : "malformed: expected U8, one label per training sample");
    if (lab) {
        const uint8_t *l = lab->raw;
        for (int32_t i = 0; i < s->n; i++)
            if (l[i] >= s->train->n_classes)
                return rg_fail(err, RG_ERR_FORMAT, "resuming the curriculum state: sample.label[%d] = %d is not a class of %d",
                               (int)i, l[i], (int)s->train->n_classes);
        memcpy(s->train->labels, l, (size_t)s->n);
    }
    s->used = m;
    s->resumed = 1;
    return RG_OK;
}

rg_status rg_sampler_create(const rg_train_config *c, rg_dataset *train, const rg_st_file *resume, rg_sampler **out,
                            rg_error *err)
{
    *out = NULL;
    rg_status st = rg_sampler_check_config(c, err);
    if (st) return st;
    const cur_source src = (cur_source)pick(c->curriculum, sources, COUNT(sources));
    if (c->label_noise == 0.0f && src == CUR_NONE && c->select_keep >= 1.0f) return RG_OK;
    rg_sampler *s = rg_calloc(1, sizeof *s, err);
    if (!s) return RG_ERR_NOMEM;
    const size_t n = (size_t)(train->n > 0 ? train->n : 1);
    s->train = train;
    s->n = train->n;
    s->seed = (uint64_t)c->seed;
    s->source = src;
    s->order = (rg_curriculum_order)pick(c->curriculum_order, orders, COUNT(orders));
    s->score_kind = (rg_score_kind)pick(c->curriculum_score, score_kinds, COUNT(score_kinds));
    s->pacing = pacing_of(c);
    s->keep = c->select_keep;
    s->warmup = c->select_warmup;
    s->ramp = c->select_ramp_epochs;
    s->per_class = c->select_per_class;
    s->relabel = c->select_relabel;
    s->refresh = c->select_refresh;
    s->used = s->n;
    if (!(s->rank = rg_malloc(n * sizeof *s->rank, err)) || !(s->subset = rg_malloc(n * sizeof *s->subset, err)) ||
        !(s->tmp = rg_malloc(n * sizeof *s->tmp, err)))
        st = RG_ERR_NOMEM;
    if (!st && c->label_noise > 0.0f) st = apply_noise(s, c, err);
    /* fixed scores: only an easy or hard order reads them */
    int fixed = (src == CUR_TEACHER || src == CUR_FILE) && s->order != RG_ORDER_RANDOM;
    if (!st && fixed && !(s->score = rg_malloc(n * sizeof *s->score, err))) st = RG_ERR_NOMEM;
    if (!st && rg_sampler_wants_losses(s)) {
        if (!(s->loss = rg_malloc(n * sizeof *s->loss, err))) st = RG_ERR_NOMEM;
        for (int32_t i = 0; !st && i < s->n; i++) s->loss[i] = INFINITY;
    }
    if (!st && s->relabel > 0.0f) {
        if (!(s->given = rg_malloc(n, err)) || !(s->pred = rg_malloc(n * sizeof *s->pred, err)) ||
            !(s->conf = rg_malloc(n * sizeof *s->conf, err)) || !(s->mark = rg_malloc(n, err)))
            st = RG_ERR_NOMEM;
        for (int32_t i = 0; !st && i < s->n; i++) {
            s->given[i] = train->labels[i];
            s->pred[i] = 0.0f;
            s->conf[i] = -1.0f;
        }
    }
    if (!st && resume) {
        if (s->score) st = restore(resume, "sample.score", s->n, s->score, err);
        if (!st && s->loss) st = restore(resume, "sample.loss", s->n, s->loss, err);
        if (!st && s->pred) st = restore(resume, "sample.pred", s->n, s->pred, err);
        if (!st && s->conf) st = restore(resume, "sample.conf", s->n, s->conf, err);
        /* they become labels: a damaged file must not index past the classes */
        for (int32_t i = 0; !st && s->pred && i < s->n; i++) {
            float p = s->pred[i], q = s->conf[i];
            if (!(p >= 0.0f && p < (float)train->n_classes && p == floorf(p)) || !(q == -1.0f || (q >= 0.0f && q <= 1.0f)))
                st = rg_fail(err, RG_ERR_FORMAT,
                             "resuming the curriculum state: sample %d: sample.pred %g / sample.conf %g is not a "
                             "class of %d and a probability",
                             (int)i, (double)p, (double)q, (int)train->n_classes);
        }
        if (!st) st = restore_epoch(s, resume, err);
    } else if (!st && s->score && src == CUR_TEACHER) {
        st = rg_curriculum_teacher_scores(c->curriculum_teacher, train, s->score_kind, c->mean, c->std, RG_SAMPLER_TEACHER_BATCH,
                                          s->score,
                                          err);
    } else if (!st && s->score && src == CUR_FILE) {
        st = rg_curriculum_read_scores(c->curriculum_scores, s->n, s->score, err);
        if (st) rg_error_prefix(err, "curriculum_scores");
    }
    if (st) {
        rg_sampler_free(s);
        return st;
    }
    *out = s;
    return RG_OK;
}

/* ---- epochs ------------------------------------------------------------------------- */

int rg_sampler_wants_losses(const rg_sampler *s)
{
    return s && ((s->source == CUR_SELF && s->order != RG_ORDER_RANDOM) || s->keep < 1.0f);
}

void rg_sampler_record(rg_sampler *s, const int32_t *indices, const float *loss, int32_t count)
{
    if (!s || !s->loss) return;
    for (int32_t j = 0; j < count; j++) s->loss[indices[j]] = loss[j];
}

int rg_sampler_wants_logits(const rg_sampler *s) { return s && s->relabel > 0.0f; }

/* The predicted class of one sample's logits, and the softmax normalizer
 * relative to it: the class's probability is 1 / *sum. */
static int32_t predict(const float *l, int32_t classes, double *sum)
{
    int32_t best = 0;
    for (int32_t k = 1; k < classes; k++)
        if (l[k] > l[best]) best = k;
    *sum = 0.0;
    for (int32_t k = 0; k < classes; k++) *sum += exp((double)l[k] - (double)l[best]);
    return best;
}

void rg_sampler_record_logits(rg_sampler *s, const int32_t *indices, const float *logits, int32_t count,
                              int32_t classes)
{
    if (!rg_sampler_wants_logits(s)) return;
    for (int32_t j = 0; j < count; j++) {
        const float *l = logits + (size_t)j * classes;
        int32_t i = indices[j];
        double sum;
        int32_t best = predict(l, classes, &sum);
        /* the selection ranks by the loss against the label as given, not
         * the corrected one the sample may have been trained on */
        int32_t y = s->given[i] < classes ? s->given[i] : 0;
        s->loss[i] = (float)(log(sum) - ((double)l[y] - (double)l[best]));
        s->pred[i] = (float)best;
        s->conf[i] = (float)(1.0 / sum);
    }
}

int32_t rg_sampler_unseen(rg_sampler *s, const int32_t **indices)
{
    *indices = NULL;
    if (!s || !s->refresh || s->used >= s->n) return 0;
    /* the complement of the ascending subset, into rank (free between epochs) */
    int32_t m = 0, j = 0;
    for (int32_t i = 0; i < s->n; i++) {
        if (j < s->used && s->subset[j] == i) j++;
        else s->rank[m++] = i;
    }
    *indices = s->rank;
    return m;
}

void rg_sampler_record_predictions(rg_sampler *s, const int32_t *indices, const float *logits, int32_t count,
                                   int32_t classes)
{
    if (!rg_sampler_wants_logits(s)) return;
    for (int32_t j = 0; j < count; j++) {
        double sum;
        int32_t best = predict(logits + (size_t)j * classes, classes, &sum);
        s->pred[indices[j]] = (float)best;
        s->conf[indices[j]] = (float)(1.0 / sum);
    }
}

/* Per-class selection: of the candidates subset[rank[0..k)] (ranked by
 * loss, smallest first), the smallest-loss fraction `keep` of each class,
 * by the label as given: the labels the candidates are trained on, which
 * label correction changes only after selection. Global selection drops
 * the hard classes' clean samples with the noise, since their losses are
 * high too; keeping each class's share (the uniform selection of UNICON,
 * Karim et al. 2022) keeps them. Writes the kept samples to rank[0..) in
 * rank order and returns their count. */
static int32_t select_per_class(rg_sampler *s, double keep, int32_t k)
{
    const uint8_t *label = s->given ? s->given : s->train->labels;
    int32_t quota[256] = {0};
    for (int32_t j = 0; j < k; j++) quota[label[s->subset[j]]]++;
    for (int c = 0; c < 256; c++) quota[c] = rg_selection_count(keep, quota[c]);
    int32_t kept = 0;
    for (int32_t j = 0; j < k; j++) {
        int32_t i = s->subset[s->rank[j]];
        if (quota[label[i]] > 0) {
            quota[label[i]]--;
            s->rank[kept++] = i; /* kept <= j: the entries still to read stay intact */
        }
    }
    return kept;
}

/* The epoch trains on subset[0..k) with the training set's labels as they are now. */
static void finish_epoch(rg_sampler *s, int32_t k, const int32_t **subset, int32_t *m)
{
    s->used = k;
    int64_t noisy = 0;
    if (s->clean)
        for (int32_t j = 0; j < k; j++) noisy += s->train->labels[s->subset[j]] != s->clean[s->subset[j]];
    s->noisy = k > 0 ? (double)noisy / (double)k : 0.0;
    if (k < s->n) *subset = s->subset;
    *m = k;
}

int rg_sampler_resumes_epoch(const rg_sampler *s) { return s && s->resumed; }

rg_status rg_sampler_epoch(rg_sampler *s, int32_t epoch, const int32_t **subset, int32_t *m, rg_error *err)
{
    *subset = NULL;
    *m = s ? s->n : 0;
    if (!s) return RG_OK;
    if (s->resumed) {
        /* the stopped epoch's choice, restored */
        s->resumed = 0;
        finish_epoch(s, (int32_t)s->used, subset, m);
        return RG_OK;
    }
    rg_status st;
    int32_t k = s->n;
    /* candidates: the first k of the curriculum's order, or everything */
    if (s->source != CUR_NONE) {
        k = rg_pacing_count(&s->pacing, epoch, s->n);
        const float *scores = s->source == CUR_SELF ? s->loss : s->score;
        if ((st = rg_curriculum_rank(scores, s->n, s->order, s->seed, s->rank, err))) return st;
        rg_curriculum_pick(s->rank, k, s->subset);
    } else {
        for (int32_t i = 0; i < s->n; i++) s->subset[i] = i;
    }
    /* selection: of the candidates, those with the smallest recorded loss;
     * one never trained on has not been judged yet and is kept first */
    double keep = rg_select_keep_fraction(s->keep, s->warmup, s->ramp, epoch);
    if (s->mark) memset(s->mark, 0, (size_t)s->n);
    if (keep < 1.0 && k > 0) {
        int32_t kept = rg_selection_count(keep, k);
        for (int32_t j = 0; j < k; j++) {
            float l = s->loss[s->subset[j]];
            s->tmp[j] = isinf(l) ? -INFINITY : l;
        }
        if ((st = rg_curriculum_rank(s->tmp, k, RG_ORDER_EASY, s->seed, s->rank, err))) return st;
        if (s->per_class) kept = select_per_class(s, keep, k);
        else
            for (int32_t j = 0; j < kept; j++) s->rank[j] = s->subset[s->rank[j]];
        if (s->relabel > 0.0f) {
            /* label correction: the candidates left out whose prediction is
             * confident enough come back with it as their label */
            for (int32_t j = 0; j < kept; j++) s->mark[s->rank[j]] = 1;
            for (int32_t j = 0; j < k; j++) {
                int32_t i = s->subset[j];
                if (!s->mark[i] && s->conf[i] >= s->relabel) s->mark[i] = 2;
            }
            kept = 0;
            for (int32_t i = 0; i < s->n; i++)
                if (s->mark[i]) s->rank[kept++] = i;
        }
        rg_curriculum_pick(s->rank, kept, s->subset);
        k = kept;
    }
    if (s->relabel > 0.0f)
        for (int32_t i = 0; i < s->n; i++)
            s->train->labels[i] = s->mark[i] == 2 ? (uint8_t)s->pred[i] : s->given[i];
    finish_epoch(s, k, subset, m);
    return RG_OK;
}

void rg_sampler_stats(const rg_sampler *s, int64_t *samples, double *noisy_fraction)
{
    *samples = s ? s->used : 0;
    *noisy_fraction = s ? s->noisy : 0.0;
}

int32_t rg_sampler_tensors(const rg_sampler *s, rg_st_tensor *t, int32_t max, int in_epoch)
{
    int32_t k = 0;
    if (!s) return 0;
    if (in_epoch && k < max)
        t[k++] = (rg_st_tensor){
            .name = "sample.subset", .ndim = 1, .shape = {s->used}, .dtype = RG_ST_I32, .raw = s->subset};
    if (in_epoch && s->given && k < max)
        t[k++] = (rg_st_tensor){
            .name = "sample.label", .ndim = 1, .shape = {s->n}, .dtype = RG_ST_U8, .raw = s->train->labels};
    if (s->score && k < max) t[k++] = (rg_st_tensor){.name = "sample.score", .ndim = 1, .shape = {s->n}, .data = s->score};
    if (s->loss && k < max) t[k++] = (rg_st_tensor){.name = "sample.loss", .ndim = 1, .shape = {s->n}, .data = s->loss};
    if (s->pred && k < max) t[k++] = (rg_st_tensor){.name = "sample.pred", .ndim = 1, .shape = {s->n}, .data = s->pred};
    if (s->conf && k < max) t[k++] = (rg_st_tensor){.name = "sample.conf", .ndim = 1, .shape = {s->n}, .data = s->conf};
    return k;
}
