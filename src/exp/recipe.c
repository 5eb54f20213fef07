/* Recipe files: the INI syntax (sections, key = value lines, comments).
 * What the keys mean is checked by rg_recipe_resolve (resolve.c). */
#include "regain/recipe.h"
#include "regain/fileio.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const rg_recipe_kv *rg_recipe_get(const rg_recipe_section *s, const char *key)
{
    for (int32_t i = 0; i < s->n_kv; i++)
        if (!strcmp(s->kv[i].key, key)) return &s->kv[i];
    return NULL;
}

static void section_free(rg_recipe_section *s)
{
    for (int32_t i = 0; i < s->n_kv; i++) {
        free(s->kv[i].key);
        free(s->kv[i].value);
    }
    free(s->kv);
}

void rg_recipe_free(rg_recipe *r)
{
    if (!r) return;
    section_free(&r->experiment);
    section_free(&r->defaults);
    for (int32_t i = 0; i < r->n_runs; i++) section_free(&r->runs[i]);
    for (int32_t i = 0; i < r->n_compares; i++) section_free(&r->compares[i]);
    for (int32_t i = 0; i < r->n_profiles; i++) section_free(&r->profiles[i]);
    free(r->runs);
    free(r->compares);
    free(r->profiles);
    free(r->text);
    free(r);
}

/* Names become directory names and SQL values: letters, digits, '_', '-',
 * '.', starting with a letter or digit. */
static int valid_name(const char *s)
{
    if (!isalnum((unsigned char)s[0]) || strlen(s) >= RG_RECIPE_NAME_MAX) return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.') return 0;
    return 1;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) e--;
    *e = 0;
    return s;
}

/* Cuts a comment: ';' or '#' at the start of the line or after white space
 * (so that "a#b" stays a value). */
static void strip_comment(char *s)
{
    char *comment = (char *)rg_config_comment(s, ";#");
    if (comment) *comment = 0;
}

static rg_status add_section(rg_recipe_section **list, int32_t *n, const char *name, int32_t line, const char *what,
                             const rg_recipe *r, rg_error *err)
{
    for (int32_t i = 0; i < *n; i++)
        if (!strcmp((*list)[i].name, name))
            return rg_fail(err, RG_ERR_FORMAT, "%s:%d: [%s %s] repeats the section of line %d", r->origin, line, what,
                           name, (*list)[i].line);
    rg_recipe_section *p = realloc(*list, (size_t)(*n + 1) * sizeof *p);
    if (!p) return rg_fail(err, RG_ERR_NOMEM, "out of memory reading %s", r->origin);
    *list = p;
    memset(&p[*n], 0, sizeof *p);
    snprintf(p[*n].name, sizeof p[*n].name, "%s", name);
    p[*n].line = line;
    (*n)++;
    return RG_OK;
}

static rg_status add_kv(rg_recipe_section *s, const char *key, const char *value, int32_t line, const rg_recipe *r,
                        rg_error *err)
{
    const rg_recipe_kv *old = rg_recipe_get(s, key);
    if (old) return rg_fail(err, RG_ERR_FORMAT, "%s:%d: %s: set twice (first at line %d)", r->origin, line, key, old->line);
    if (s->n_kv == s->cap_kv) {
        int32_t cap = s->cap_kv ? 2 * s->cap_kv : 8;
        rg_recipe_kv *p = realloc(s->kv, (size_t)cap * sizeof *p);
        if (!p) return rg_fail(err, RG_ERR_NOMEM, "out of memory reading %s", r->origin);
        s->kv = p;
        s->cap_kv = cap;
    }
    rg_recipe_kv *kv = &s->kv[s->n_kv];
    kv->key = strdup(key);
    kv->value = strdup(value);
    kv->line = line;
    if (!kv->key || !kv->value) {
        free(kv->key);
        free(kv->value);
        return rg_fail(err, RG_ERR_NOMEM, "out of memory reading %s", r->origin);
    }
    s->n_kv++;
    return RG_OK;
}

/* Handles "[...]": makes the section current. */
static rg_status parse_header(rg_recipe *r, char *inner, int32_t line, rg_recipe_section **cur, rg_error *err)
{
    char *s = trim(inner);
    char *sp = s;
    while (*sp && !isspace((unsigned char)*sp)) sp++;
    char *name = *sp ? trim(sp + 1) : sp;
    *sp = 0;
    const char *type = s;
    if (!strcmp(type, "experiment") || !strcmp(type, "defaults")) {
        if (*name) return rg_fail(err, RG_ERR_FORMAT, "%s:%d: [%s] takes no name", r->origin, line, type);
        int is_exp = !strcmp(type, "experiment");
        int *has = is_exp ? &r->has_experiment : &r->has_defaults;
        rg_recipe_section *sec = is_exp ? &r->experiment : &r->defaults;
        if (*has)
            return rg_fail(err, RG_ERR_FORMAT, "%s:%d: [%s] repeats the section of line %d", r->origin, line, type,
                           sec->line);
        *has = 1;
        sec->line = line;
        snprintf(sec->name, sizeof sec->name, "%s", type);
        *cur = sec;
        return RG_OK;
    }
    rg_recipe_section **list;
    int32_t *n;
    if (!strcmp(type, "run")) list = &r->runs, n = &r->n_runs;
    else if (!strcmp(type, "compare")) list = &r->compares, n = &r->n_compares;
    else if (!strcmp(type, "profile")) list = &r->profiles, n = &r->n_profiles;
    else
        return rg_fail(err, RG_ERR_FORMAT,
                       "%s:%d: unknown section [%s] (sections: experiment, defaults, run NAME, compare NAME, "
                       "profile NAME)",
                       r->origin, line, type);
    if (!*name) return rg_fail(err, RG_ERR_FORMAT, "%s:%d: [%s] needs a name: [%s NAME]", r->origin, line, type, type);
    if (!valid_name(name))
        return rg_fail(err, RG_ERR_FORMAT,
                       "%s:%d: '%s' is not a valid %s name (letters, digits, '_', '-', '.'; at most %d characters)",
                       r->origin, line, name, type, RG_RECIPE_NAME_MAX - 1);
    rg_status st = add_section(list, n, name, line, type, r, err);
    if (st) return st;
    *cur = &(*list)[*n - 1];
    return RG_OK;
}

rg_status rg_recipe_parse(const char *text, const char *origin, rg_recipe **out, rg_error *err)
{
    *out = NULL;
    rg_recipe *r = rg_calloc(1, sizeof *r, err);
    if (!r) return RG_ERR_NOMEM;
    snprintf(r->origin, sizeof r->origin, "%s", origin);
    r->text = strdup(text);
    char *copy = strdup(text);
    if (!r->text || !copy) {
        free(copy);
        rg_recipe_free(r);
        return rg_fail(err, RG_ERR_NOMEM, "out of memory reading %s", origin);
    }
    rg_recipe_section *cur = NULL;
    rg_status st = RG_OK;
    int32_t line = 0;
    for (char *p = copy; !st && *p;) {
        line++;
        char *nl = strchr(p, '\n');
        if (nl) *nl = 0;
        char *next = nl ? nl + 1 : p + strlen(p);
        strip_comment(p);
        char *s = trim(p);
        p = next;
        if (!*s) continue;
        if (*s == '[') {
            char *close = strchr(s, ']');
            if (!close || *trim(close + 1))
                st = rg_fail(err, RG_ERR_FORMAT, "%s:%d: a section header is '[type name]' alone on its line", origin,
                             line);
            else {
                *close = 0;
                st = parse_header(r, s + 1, line, &cur, err);
            }
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq) {
            st = rg_fail(err, RG_ERR_FORMAT, "%s:%d: expected 'key = value' or '[section]'", origin, line);
            continue;
        }
        *eq = 0;
        char *key = trim(s), *value = trim(eq + 1);
        int ok = *key != 0;
        for (const char *k = key; *k; k++) ok &= isalnum((unsigned char)*k) || *k == '_';
        if (!ok)
            st = rg_fail(err, RG_ERR_FORMAT, "%s:%d: '%s' is not a key name (letters, digits, '_')", origin, line, key);
        else if (!cur)
            st = rg_fail(err, RG_ERR_FORMAT, "%s:%d: %s: a key before any section (start with [experiment])", origin,
                         line, key);
        else
            st = add_kv(cur, key, value, line, r, err);
    }
    free(copy);
    if (!st && !r->has_experiment)
        st = rg_fail(err, RG_ERR_FORMAT, "%s: no [experiment] section (it names the experiment)", origin);
    if (st) {
        rg_recipe_free(r);
        return st;
    }
    *out = r;
    return RG_OK;
}

rg_status rg_recipe_load(const char *path, rg_recipe **out, rg_error *err)
{
    *out = NULL;
    void *data;
    size_t size;
    rg_status st = rg_read_file(path, (size_t)1 << 20, &data, &size, err);
    if (st) return st;
    if (strlen(data) != size) {
        free(data);
        return rg_fail(err, RG_ERR_FORMAT, "%s: not a text file (holds a NUL byte)", path);
    }
    st = rg_recipe_parse(data, path, out, err);
    free(data);
    return st;
}
