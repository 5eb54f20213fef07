/* Recipe resolution: defaults, extends and profile merged into one trainer
 * configuration per run, @references to other runs, dependency order. */
#include "regain/recipe.h"
#include "exp/kinds.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rg_resolved_free(rg_resolved_recipe *x)
{
    if (!x) return;
    free(x->seeds);
    free(x->runs);
    free(x->compares);
    free(x);
}

int32_t rg_resolved_find(const rg_resolved_recipe *x, const char *name)
{
    for (int32_t i = 0; i < x->n_runs; i++)
        if (!strcmp(x->runs[i].name, name)) return i;
    return -1;
}

static int32_t recipe_run(const rg_recipe *r, const char *name)
{
    for (int32_t i = 0; i < r->n_runs; i++)
        if (!strcmp(r->runs[i].name, name)) return i;
    return -1;
}

/* ---- experiment keys -------------------------------------------------------------------- */

static rg_status parse_seeds(const rg_recipe *r, const rg_recipe_kv *kv, rg_resolved_recipe *x, rg_error *err)
{
    free(x->seeds);
    x->seeds = NULL;
    x->n_seeds = 0;
    const char *p = kv->value;
    int32_t cap = 0;
    for (;;) {
        while (isspace((unsigned char)*p) || *p == ',') p++;
        if (!*p) break;
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno || v < 0 || v > 9007199254740991LL || (*end && !isspace((unsigned char)*end) && *end != ','))
            return rg_fail(err, RG_ERR_FORMAT, "%s:%d: seeds: '%s' is not a list of integers in [0, 2^53)", r->origin,
                           kv->line, kv->value);
        for (int32_t i = 0; i < x->n_seeds; i++)
            if (x->seeds[i] == v)
                return rg_fail(err, RG_ERR_FORMAT, "%s:%d: seeds: %lld appears twice", r->origin, kv->line, v);
        if (x->n_seeds == cap) {
            if (cap >= 1000) return rg_fail(err, RG_ERR_FORMAT, "%s:%d: seeds: more than 1000", r->origin, kv->line);
            cap = cap ? 2 * cap : 8;
            int64_t *s = realloc(x->seeds, (size_t)cap * sizeof *s);
            if (!s) return rg_fail(err, RG_ERR_NOMEM, "out of memory");
            x->seeds = s;
        }
        x->seeds[x->n_seeds++] = v;
        p = end;
    }
    if (!x->n_seeds) return rg_fail(err, RG_ERR_FORMAT, "%s:%d: seeds: empty list", r->origin, kv->line);
    return RG_OK;
}

/* name, seeds, store, runs_dir: from [experiment], or a profile (which may
 * not set description). *handled says whether key was one of them. */
static rg_status experiment_key(const rg_recipe *r, const rg_recipe_kv *kv, rg_resolved_recipe *x, int *handled,
                                rg_error *err)
{
    *handled = 1;
    if (!strcmp(kv->key, "name")) {
        if (!*kv->value || strlen(kv->value) >= RG_RECIPE_NAME_MAX)
            return rg_fail(err, RG_ERR_FORMAT, "%s:%d: name: must be 1 to %d characters", r->origin, kv->line,
                           RG_RECIPE_NAME_MAX - 1);
        for (const char *c = kv->value; *c; c++)
            if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-' && *c != '.')
                return rg_fail(err, RG_ERR_FORMAT, "%s:%d: name: '%s' may hold letters, digits, '_', '-', '.' only",
                               r->origin, kv->line, kv->value);
        snprintf(x->name, sizeof x->name, "%s", kv->value);
        return RG_OK;
    }
    if (!strcmp(kv->key, "seeds")) return parse_seeds(r, kv, x, err);
    if (!strcmp(kv->key, "store") || !strcmp(kv->key, "runs_dir")) {
        char *dst = !strcmp(kv->key, "store") ? x->store : x->runs_dir;
        if (!*kv->value || strlen(kv->value) >= sizeof x->store)
            return rg_fail(err, RG_ERR_FORMAT, "%s:%d: %s: must be a path of 1 to %zu characters", r->origin, kv->line,
                           kv->key, sizeof x->store - 1);
        snprintf(dst, sizeof x->store, "%s", kv->value);
        return RG_OK;
    }
    *handled = 0;
    return RG_OK;
}

/* ---- run keys --------------------------------------------------------------------------- */

/* A key's final value and the line it came from. */
typedef struct {
    const char *key, *value;
    int32_t line;
} merged_kv;

typedef struct {
    merged_kv *kv;
    int32_t n, cap;
} merged;

static rg_status merge(merged *m, const rg_recipe_kv *kv, rg_error *err)
{
    for (int32_t i = 0; i < m->n; i++)
        if (!strcmp(m->kv[i].key, kv->key)) {
            m->kv[i].value = kv->value;
            m->kv[i].line = kv->line;
            return RG_OK;
        }
    if (m->n == m->cap) {
        int32_t cap = m->cap ? 2 * m->cap : 32;
        merged_kv *p = realloc(m->kv, (size_t)cap * sizeof *p);
        if (!p) return rg_fail(err, RG_ERR_NOMEM, "out of memory");
        m->kv = p;
        m->cap = cap;
    }
    m->kv[m->n++] = (merged_kv){kv->key, kv->value, kv->line};
    return RG_OK;
}

/* Keys of a run that are not the trainer's, or that the recipe sets elsewhere. */
static rg_status check_reserved(const rg_recipe *r, const char *key, int32_t line, int in_run, rg_error *err)
{
    if (!strcmp(key, "seed"))
        return rg_fail(err, RG_ERR_FORMAT, "%s:%d: seed: set by 'seeds' in [experiment]", r->origin, line);
    if (!strcmp(key, "threads"))
        return rg_fail(err, RG_ERR_FORMAT, "%s:%d: threads: set with 'regain run --threads' (it does not change results)",
                       r->origin, line);
    if (!in_run && !strcmp(key, "extends"))
        return rg_fail(err, RG_ERR_FORMAT, "%s:%d: extends: only a [run] section extends another", r->origin, line);
    return RG_OK;
}

/* "@NAME" or "@NAME:best|last" -> ref. */
static rg_status parse_ref(const rg_recipe *r, const merged_kv *kv, rg_recipe_ref *ref, rg_error *err)
{
    const char *v = kv->value + 1;
    const char *colon = strchr(v, ':');
    size_t len = colon ? (size_t)(colon - v) : strlen(v);
    char name[RG_RECIPE_NAME_MAX];
    if (!len || len >= sizeof name)
        return rg_fail(err, RG_ERR_FORMAT, "%s:%d: %s: '%s' is not a reference (@RUN or @RUN:last)", r->origin,
                       kv->line, kv->key, kv->value);
    memcpy(name, v, len);
    name[len] = 0;
    const char *art = colon ? colon + 1 : "best";
    if (strcmp(art, "best") && strcmp(art, "last"))
        return rg_fail(err, RG_ERR_FORMAT, "%s:%d: %s: '%s': a run's artifacts are 'best' and 'last'", r->origin,
                       kv->line, kv->key, art);
    int32_t run = recipe_run(r, name);
    if (run < 0)
        return rg_fail(err, RG_ERR_FORMAT, "%s:%d: %s: '%s' refers to no [run %s] in the recipe", r->origin, kv->line,
                       kv->key, kv->value, name);
    snprintf(ref->key, sizeof ref->key, "%s", kv->key);
    snprintf(ref->artifact, sizeof ref->artifact, "%s", art);
    ref->run = run;   /* a recipe index until the runs are ordered */
    ref->line = kv->line;
    return RG_OK;
}

static int is_artifact_key(const rg_exp_kind *k, const char *key)
{
    for (const char *const *a = k->artifact_keys; a && *a; a++)
        if (!strcmp(*a, key)) return 1;
    return 0;
}

/* Sets one trainer key; errors read "origin:line: key: problem". */
static rg_status set_key(const rg_recipe *r, rg_train_config *cfg, const char *key, const char *value, int32_t line,
                         rg_error *err)
{
    rg_error e = {0};
    if (rg_train_config_set(cfg, key, value, &e) == RG_OK) return RG_OK;
    size_t kl = strlen(key);
    int named = !strncmp(e.msg, key, kl) && e.msg[kl] == ':';
    return rg_fail(err, RG_ERR_FORMAT, "%s:%d: %s%s%s", r->origin, line, named ? "" : key, named ? "" : ": ", e.msg);
}

/* Merges defaults, the extends chain (root first), the run and the profile
 * into out->cfg; records references. */
static rg_status resolve_run(const rg_recipe *r, int32_t index, const rg_recipe_section *profile, rg_resolved_run *out,
                             rg_error *err)
{
    const rg_recipe_section *run = &r->runs[index];
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", run->name);
    out->line = run->line;
    /* the chain: run, its parent, ... */
    int32_t chain[256], n_chain = 0;
    for (int32_t cur = index;;) {
        for (int32_t i = 0; i < n_chain; i++)
            if (chain[i] == cur) {
                const rg_recipe_kv *ext = rg_recipe_get(&r->runs[chain[n_chain - 1]], "extends");
                char names[1024] = "";
                size_t len = 0;
                for (int32_t j = i; j < n_chain && len < sizeof names; j++)
                    len += (size_t)snprintf(names + len, sizeof names - len, "%s -> ", r->runs[chain[j]].name);
                if (len < sizeof names) snprintf(names + len, sizeof names - len, "%s", r->runs[cur].name);
                return rg_fail(err, RG_ERR_FORMAT, "%s:%d: extends: cycle %s", r->origin, ext->line, names);
            }
        if (n_chain == (int32_t)(sizeof chain / sizeof chain[0]))
            return rg_fail(err, RG_ERR_FORMAT, "%s:%d: extends: chain longer than 256 runs", r->origin, run->line);
        chain[n_chain++] = cur;
        const rg_recipe_kv *ext = rg_recipe_get(&r->runs[cur], "extends");
        if (!ext) break;
        int32_t parent = recipe_run(r, ext->value);
        if (parent < 0)
            return rg_fail(err, RG_ERR_FORMAT, "%s:%d: extends: no [run %s] in the recipe", r->origin, ext->line,
                           ext->value);
        cur = parent;
    }
    merged m = {0};
    rg_status st = RG_OK;
    for (int32_t i = 0; !st && i < r->defaults.n_kv; i++) {
        if (!(st = check_reserved(r, r->defaults.kv[i].key, r->defaults.kv[i].line, 0, err)))
            st = merge(&m, &r->defaults.kv[i], err);
    }
    for (int32_t c = n_chain - 1; !st && c >= 0; c--) {
        const rg_recipe_section *s = &r->runs[chain[c]];
        for (int32_t i = 0; !st && i < s->n_kv; i++) {
            if (!strcmp(s->kv[i].key, "extends")) continue;
            if (!(st = check_reserved(r, s->kv[i].key, s->kv[i].line, 1, err))) st = merge(&m, &s->kv[i], err);
        }
    }
    /* the profile's trainer keys (check_profile has vetted them) */
    for (int32_t i = 0; !st && profile && i < profile->n_kv; i++) {
        const rg_recipe_kv *kv = &profile->kv[i];
        if (strcmp(kv->key, "name") && strcmp(kv->key, "seeds") && strcmp(kv->key, "store") &&
            strcmp(kv->key, "runs_dir"))
            st = merge(&m, kv, err);
    }
    /* the kind first: it says which keys take references */
    const char *kind = "train";
    int32_t kind_line = run->line;
    for (int32_t i = 0; i < m.n; i++)
        if (!strcmp(m.kv[i].key, "kind")) kind = m.kv[i].value, kind_line = m.kv[i].line;
    const rg_exp_kind *k = rg_exp_kind_find(kind);
    if (!st && !k)
        st = rg_fail(err, RG_ERR_FORMAT, "%s:%d: kind: '%s' is not a run kind (%s)", r->origin, kind_line, kind,
                     rg_exp_kind_list());
    if (!st) snprintf(out->kind, sizeof out->kind, "%s", kind);
    rg_train_config_default(&out->cfg);
    for (int32_t i = 0; !st && i < m.n; i++) {
        const merged_kv *kv = &m.kv[i];
        if (!strcmp(kv->key, "kind")) continue;
        if (kv->value[0] != '@') {
            st = set_key(r, &out->cfg, kv->key, kv->value, kv->line, err);
            continue;
        }
        if (!is_artifact_key(k, kv->key)) {
            char keys[256] = "";
            size_t len = 0;
            for (const char *const *a = k->artifact_keys; a && *a && len < sizeof keys; a++)
                len += (size_t)snprintf(keys + len, sizeof keys - len, "%s%s", a == k->artifact_keys ? "" : ", ", *a);
            st = rg_fail(err, RG_ERR_FORMAT, "%s:%d: %s: '%s': only a checkpoint key (%s) takes another run's artifact",
                         r->origin, kv->line, kv->key, kv->value, keys);
            continue;
        }
        if (out->n_refs == RG_RECIPE_MAX_REFS) {
            st = rg_fail(err, RG_ERR_FORMAT, "%s:%d: more than %d references in one run", r->origin, kv->line,
                         RG_RECIPE_MAX_REFS);
            continue;
        }
        rg_recipe_ref *ref = &out->refs[out->n_refs];
        if ((st = parse_ref(r, kv, ref, err))) continue;
        out->n_refs++;
        char sym[RG_RECIPE_NAME_MAX + 16];
        snprintf(sym, sizeof sym, "@%s:%s", r->runs[ref->run].name, ref->artifact);
        st = set_key(r, &out->cfg, kv->key, sym, kv->line, err);
    }
    free(m.kv);
    if (!st) {
        rg_error e = {0};
        if (rg_train_config_validate(&out->cfg, &e))
            st = rg_fail(err, RG_ERR_FORMAT, "%s:%d: run %s: %s", r->origin, run->line, run->name, e.msg);
    }
    return st;
}

/* ---- dependency order --------------------------------------------------------------------- */

/* Depth-first search from v; state 1 = on the path, 2 = finished. Appends
 * finished runs to order (dependencies first). */
static rg_status visit(const rg_recipe *r, const rg_resolved_run *runs, int32_t v, int8_t *state, int32_t *path,
                       int32_t depth, int32_t *order, int32_t *n_order, rg_error *err)
{
    state[v] = 1;
    path[depth] = v;
    for (int32_t i = 0; i < runs[v].n_refs; i++) {
        int32_t u = runs[v].refs[i].run;
        if (state[u] == 1) {
            char chain[1024] = "";
            size_t len = 0;
            int32_t start = depth;
            while (start > 0 && path[start] != u) start--;
            for (int32_t j = start; j <= depth && len < sizeof chain; j++)
                len += (size_t)snprintf(chain + len, sizeof chain - len, "%s -> ", runs[path[j]].name);
            if (len < sizeof chain) snprintf(chain + len, sizeof chain - len, "%s", runs[u].name);
            return rg_fail(err, RG_ERR_FORMAT, "%s:%d: %s: dependency cycle %s", r->origin, runs[v].refs[i].line,
                           runs[v].refs[i].key, chain);
        }
        if (state[u] == 0) {
            rg_status st = visit(r, runs, u, state, path, depth + 1, order, n_order, err);
            if (st) return st;
        }
    }
    state[v] = 2;
    order[(*n_order)++] = v;
    return RG_OK;
}

static rg_status order_runs(const rg_recipe *r, rg_resolved_recipe *x, rg_error *err)
{
    int32_t n = x->n_runs;
    int8_t *state = calloc((size_t)n + 1, 1);
    int32_t *path = calloc((size_t)n + 1, sizeof *path), *order = calloc((size_t)n + 1, sizeof *order);
    int32_t *where = calloc((size_t)n + 1, sizeof *where);
    rg_resolved_run *sorted = calloc((size_t)n + 1, sizeof *sorted);
    rg_status st = state && path && order && where && sorted ? RG_OK : rg_fail(err, RG_ERR_NOMEM, "out of memory");
    int32_t n_order = 0;
    /* recipe order, except that a run moves after what it needs */
    for (int32_t v = 0; !st && v < n; v++)
        if (!state[v]) st = visit(r, x->runs, v, state, path, 0, order, &n_order, err);
    if (!st) {
        for (int32_t i = 0; i < n; i++) {
            sorted[i] = x->runs[order[i]];
            where[order[i]] = i;
        }
        for (int32_t i = 0; i < n; i++)
            for (int32_t j = 0; j < sorted[i].n_refs; j++) sorted[i].refs[j].run = where[sorted[i].refs[j].run];
        free(x->runs);
        x->runs = sorted;
        sorted = NULL;
    }
    free(state);
    free(path);
    free(order);
    free(where);
    free(sorted);
    return st;
}

/* ---- comparisons ------------------------------------------------------------------------------ */

static rg_status resolve_compare(const rg_recipe *r, const rg_recipe_section *s, rg_resolved_compare *c, rg_error *err)
{
    snprintf(c->name, sizeof c->name, "%s", s->name);
    for (int32_t i = 0; i < s->n_kv; i++) {
        const rg_recipe_kv *kv = &s->kv[i];
        char *dst = !strcmp(kv->key, "baseline")    ? c->baseline
                    : !strcmp(kv->key, "treatment") ? c->treatment
                    : !strcmp(kv->key, "reference") ? c->reference
                                                    : NULL;
        if (!dst)
            return rg_fail(err, RG_ERR_FORMAT,
                           "%s:%d: %s: unknown key in [compare %s] (baseline, treatment, reference)", r->origin,
                           kv->line, kv->key, s->name);
        if (recipe_run(r, kv->value) < 0)
            return rg_fail(err, RG_ERR_FORMAT, "%s:%d: %s: no [run %s] in the recipe", r->origin, kv->line, kv->key,
                           kv->value);
        snprintf(dst, RG_RECIPE_NAME_MAX, "%s", kv->value);
    }
    if (!c->baseline[0] || !c->treatment[0])
        return rg_fail(err, RG_ERR_FORMAT, "%s:%d: [compare %s] needs both 'baseline' and 'treatment'", r->origin,
                       s->line, s->name);
    if (!strcmp(c->baseline, c->treatment))
        return rg_fail(err, RG_ERR_FORMAT, "%s:%d: [compare %s] compares run '%s' with itself", r->origin, s->line,
                       s->name, c->baseline);
    if (!strcmp(c->reference, c->baseline) || !strcmp(c->reference, c->treatment))
        return rg_fail(err, RG_ERR_FORMAT,
                       "%s:%d: [compare %s] reference: '%s' is the comparison's own %s; name the run whose gap to "
                       "the baseline the treatment should close",
                       r->origin, s->line, s->name, c->reference,
                       !strcmp(c->reference, c->baseline) ? "baseline" : "treatment");
    return RG_OK;
}

/* ---- distillation twins -------------------------------------------------------------------------- */

/* A distillation run is only worth what it gains over the same training
 * without the teacher. Each one is paired with its twin: the run of the
 * recipe whose configuration is the same but for the distillation keys, or,
 * when the recipe has none, one added here ("NAME-no-kd", run right before
 * it). A comparison twin -> run is added unless the recipe has it. */
static void without_distillation(rg_train_config *c)
{
    rg_train_config d;
    rg_train_config_default(&d);
    memcpy(c->teacher, d.teacher, sizeof c->teacher);
    memcpy(c->teacher2, d.teacher2, sizeof c->teacher2);
    memcpy(c->teacher3, d.teacher3, sizeof c->teacher3);
    memcpy(c->hints, d.hints, sizeof c->hints);
    memcpy(c->at, d.at, sizeof c->at);
    c->kd_alpha = d.kd_alpha;
    c->kd_temperature = d.kd_temperature;
    c->dkd_alpha = d.dkd_alpha;
    c->dkd_beta = d.dkd_beta;
    c->dkd_warmup = d.dkd_warmup;
    c->hint_weight = d.hint_weight;
    c->at_weight = d.at_weight;
}

static int is_teacher_key(const char *key) { return !strncmp(key, "teacher", 7); }

static rg_status add_twins(rg_resolved_recipe *x, rg_error *err)
{
    rg_status st = RG_OK;
    for (int32_t i = 0; !st && i < x->n_runs; i++) {
        if (!x->runs[i].cfg.teacher[0]) continue;
        rg_resolved_run twin = x->runs[i];
        without_distillation(&twin.cfg);
        twin.n_refs = 0;
        for (int32_t k = 0; k < x->runs[i].n_refs; k++)
            if (!is_teacher_key(x->runs[i].refs[k].key)) twin.refs[twin.n_refs++] = x->runs[i].refs[k];
        char *want = rg_resolved_config_text(&twin, 0);
        if (!want) return rg_fail(err, RG_ERR_NOMEM, "out of memory");
        int32_t found = -1;
        for (int32_t j = 0; found < 0 && j < x->n_runs; j++) {
            char *text = j == i ? NULL : rg_resolved_config_text(&x->runs[j], 0);
            if (text && !strcmp(text, want)) found = j;
            free(text);
        }
        free(want);
        if (found < 0) {
            /* a new run right before i: it needs only what i needs */
            rg_resolved_run *runs = realloc(x->runs, (size_t)(x->n_runs + 1) * sizeof *runs);
            if (!runs) return rg_fail(err, RG_ERR_NOMEM, "out of memory");
            x->runs = runs;
            snprintf(twin.name, sizeof twin.name, "%.*s-no-kd", (int)sizeof twin.name - 7, x->runs[i].name);
            if (rg_resolved_find(x, twin.name) >= 0)
                return rg_fail(err, RG_ERR_FORMAT, "%s:%d: run %s: its twin without distillation would be named %s, "
                               "which another run already is", x->recipe->origin, x->runs[i].line, x->runs[i].name,
                               twin.name);
            memmove(&x->runs[i + 1], &x->runs[i], (size_t)(x->n_runs - i) * sizeof *runs);
            x->runs[i] = twin;
            x->n_runs++;
            for (int32_t j = 0; j < x->n_runs; j++)
                for (int32_t k = 0; k < x->runs[j].n_refs; k++)
                    if (x->runs[j].refs[k].run >= i && !(j == i)) x->runs[j].refs[k].run++;
            found = i++;
        }
        const char *base = x->runs[found].name, *treat = x->runs[i].name;
        int have = 0;
        for (int32_t c = 0; c < x->n_compares; c++)
            have |= !strcmp(x->compares[c].baseline, base) && !strcmp(x->compares[c].treatment, treat);
        if (have) continue;
        char name[sizeof x->compares[0].name];
        snprintf(name, sizeof name, "%.*s-distillation", (int)sizeof name - 14, treat);
        for (int32_t c = 0; c < x->n_compares; c++)
            if (!strcmp(x->compares[c].name, name))
                return rg_fail(err, RG_ERR_FORMAT,
                               "%s:%d: run %s: its comparison with its twin would be named %s, which another "
                               "comparison already is",
                               x->recipe->origin, x->runs[i].line, treat, name);
        rg_resolved_compare *cs = realloc(x->compares, (size_t)(x->n_compares + 1) * sizeof *cs);
        if (!cs) return rg_fail(err, RG_ERR_NOMEM, "out of memory");
        x->compares = cs;
        rg_resolved_compare *c = &cs[x->n_compares++];
        *c = (rg_resolved_compare){0};
        snprintf(c->name, sizeof c->name, "%s", name);
        snprintf(c->baseline, sizeof c->baseline, "%s", base);
        snprintf(c->treatment, sizeof c->treatment, "%s", treat);
    }
    return st;
}

/* A profile that is not selected is still checked, so that a mistake shows
 * before the run that would use it. */
static rg_status check_profile(const rg_recipe *r, const rg_recipe_section *p, rg_error *err)
{
    rg_resolved_recipe scratch = {0};
    rg_train_config cfg;
    rg_train_config_default(&cfg);
    rg_status st = RG_OK;
    for (int32_t i = 0; !st && i < p->n_kv; i++) {
        const rg_recipe_kv *kv = &p->kv[i];
        int handled;
        if ((st = experiment_key(r, kv, &scratch, &handled, err)) || handled) continue;
        if (!strcmp(kv->key, "kind"))
            st = rg_fail(err, RG_ERR_FORMAT, "%s:%d: kind: a profile cannot change a run's kind", r->origin, kv->line);
        else if (!(st = check_reserved(r, kv->key, kv->line, 0, err)) && kv->value[0] != '@')
            st = set_key(r, &cfg, kv->key, kv->value, kv->line, err);
        else if (!st) {
            /* a reference must name a run of the recipe and an artifact */
            merged_kv m = {kv->key, kv->value, kv->line};
            rg_recipe_ref ref;
            st = parse_ref(r, &m, &ref, err);
        }
    }
    free(scratch.seeds);
    return st;
}

/* ---- the whole recipe ---------------------------------------------------------------------------- */

rg_status rg_recipe_resolve(const rg_recipe *r, const char *profile, rg_resolved_recipe **out, rg_error *err)
{
    *out = NULL;
    rg_resolved_recipe *x = rg_calloc(1, sizeof *x, err);
    if (!x) return RG_ERR_NOMEM;
    x->recipe = r;
    rg_status st = RG_OK;
    const rg_recipe_section *prof = NULL;
    if (profile && *profile) {
        for (int32_t i = 0; i < r->n_profiles; i++)
            if (!strcmp(r->profiles[i].name, profile)) prof = &r->profiles[i];
        if (!prof) {
            char list[512] = "";
            size_t len = 0;
            for (int32_t i = 0; i < r->n_profiles && len < sizeof list; i++)
                len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", r->profiles[i].name);
            st = rg_fail(err, RG_ERR_ARG, "%s: no [profile %s] (profiles: %s)", r->origin, profile,
                         r->n_profiles ? list : "none");
        } else {
            snprintf(x->profile, sizeof x->profile, "%s", profile);
        }
    }
    for (int32_t i = 0; !st && i < r->n_profiles; i++) st = check_profile(r, &r->profiles[i], err);
    /* [experiment] */
    for (int32_t i = 0; !st && i < r->experiment.n_kv; i++) {
        const rg_recipe_kv *kv = &r->experiment.kv[i];
        int handled;
        st = experiment_key(r, kv, x, &handled, err);
        if (!st && !handled && strcmp(kv->key, "description"))
            st = rg_fail(err, RG_ERR_FORMAT,
                         "%s:%d: %s: unknown key in [experiment] (name, seeds, store, runs_dir, description)", r->origin,
                         kv->line, kv->key);
    }
    if (!st && !x->name[0])
        st = rg_fail(err, RG_ERR_FORMAT, "%s:%d: [experiment] needs a name", r->origin, r->experiment.line);
    if (!st && prof) {
        /* a profile's results are kept apart from the full runs': its own
         * name and, when [experiment] names the runs' directory, its own
         * directory beside it (a quick run must never start over in, and
         * so delete, a full run's directory) */
        if (!rg_recipe_get(prof, "name")) {
            char name[sizeof x->name];
            snprintf(name, sizeof name, "%.63s-%.63s", x->name, prof->name);
            snprintf(x->name, sizeof x->name, "%s", name);
        }
        if (x->runs_dir[0] && !rg_recipe_get(prof, "runs_dir")) {
            size_t n = strlen(x->runs_dir);
            while (n > 1 && x->runs_dir[n - 1] == '/') x->runs_dir[--n] = 0;
            if (n + 1 + strlen(prof->name) >= sizeof x->runs_dir)
                st = rg_fail(err, RG_ERR_FORMAT, "%s: runs_dir with '-%s' added for the profile is too long",
                             r->origin, prof->name);
            else
                snprintf(x->runs_dir + n, sizeof x->runs_dir - n, "-%s", prof->name);
        }
        for (int32_t i = 0; !st && i < prof->n_kv; i++) {
            int handled;
            st = experiment_key(r, &prof->kv[i], x, &handled, err);
        }
    }
    if (!st && !x->n_seeds) {
        x->seeds = malloc(sizeof *x->seeds);
        if (!x->seeds) st = rg_fail(err, RG_ERR_NOMEM, "out of memory");
        else x->seeds[x->n_seeds++] = 1;
    }
    if (!st && !x->store[0]) snprintf(x->store, sizeof x->store, "runs/regain.db");
    if (!st && !x->runs_dir[0]) snprintf(x->runs_dir, sizeof x->runs_dir, "runs/%s", x->name);
    /* runs */
    if (!st && r->n_runs == 0)
        st = rg_fail(err, RG_ERR_FORMAT, "%s: no [run NAME] section: nothing to run", r->origin);
    if (!st && !(x->runs = rg_calloc((size_t)r->n_runs, sizeof *x->runs, err))) st = RG_ERR_NOMEM;
    for (int32_t i = 0; !st && i < r->n_runs; i++) {
        if (!(st = resolve_run(r, i, prof, &x->runs[i], err))) x->n_runs++;
    }
    if (!st) st = order_runs(r, x, err);
    /* comparisons */
    if (!st && r->n_compares && !(x->compares = rg_calloc((size_t)r->n_compares, sizeof *x->compares, err)))
        st = RG_ERR_NOMEM;
    for (int32_t i = 0; !st && i < r->n_compares; i++) {
        if (!(st = resolve_compare(r, &r->compares[i], &x->compares[i], err))) x->n_compares++;
    }
    if (!st) st = add_twins(x, err);
    if (st) {
        rg_resolved_free(x);
        return st;
    }
    *out = x;
    return RG_OK;
}

char *rg_resolved_config_text(const rg_resolved_run *run, int64_t seed)
{
    rg_train_config c = run->cfg;
    c.seed = seed;
    char *text = rg_train_config_format(&c);
    if (!text) return NULL;
    size_t cap = strlen(text) + strlen(run->kind) + 16;
    char *out = malloc(cap);
    if (!out) {
        free(text);
        return NULL;
    }
    size_t len = (size_t)snprintf(out, cap, "kind = %s\n", run->kind);
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t l = nl ? (size_t)(nl - p) + 1 : strlen(p);
        if (strncmp(p, "threads = ", 10) && strncmp(p, "workers = ", 10)) {
            memcpy(out + len, p, l);
            len += l;
        }
        p += l;
    }
    out[len] = 0;
    free(text);
    return out;
}
