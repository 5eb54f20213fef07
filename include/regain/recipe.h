/* regain — recipes: one INI file declares an experiment (docs/experiments.md).
 *
 *     [experiment]
 *     name = fashion-mnist
 *     seeds = 1, 2, 3
 *
 *     [defaults]                 ; trainer keys shared by every run
 *     epochs = 15
 *
 *     [run baseline]
 *     [run finetuned]
 *     extends = baseline         ; inherit baseline's keys, then override
 *     init = @baseline           ; baseline's best checkpoint, same seed
 *     lr = 0.01
 *
 *     [compare finetune]
 *     baseline = baseline
 *     treatment = finetuned
 *
 *     [profile quick]            ; regain run --quick
 *     epochs = 2
 *
 * Parsing (rg_recipe_parse) checks the syntax: sections, names, duplicate
 * sections and keys. Resolving (rg_recipe_resolve) applies defaults, extends
 * and a profile, validates every value through the trainer's configuration
 * (rg_train_config_set), resolves @references to other runs and orders the
 * runs so that every run comes after the runs it depends on. Every error
 * names the file and line: "recipe.ini:12: lr: 'fast' is not a number".
 */
#ifndef REGAIN_RECIPE_H
#define REGAIN_RECIPE_H

#include <stdint.h>

#include "regain/status.h"
#include "regain/trainer.h"

#define RG_RECIPE_NAME_MAX 64
#define RG_RECIPE_MAX_REFS 8

typedef struct {
    char *key, *value;
    int32_t line;
} rg_recipe_kv;

/* One section: [experiment], [defaults], [run NAME], [compare NAME] or
 * [profile NAME], with its keys in file order. */
typedef struct {
    char name[RG_RECIPE_NAME_MAX];
    int32_t line;
    rg_recipe_kv *kv;
    int32_t n_kv, cap_kv;
} rg_recipe_section;

typedef struct {
    char origin[512];       /* the file name used in messages */
    char *text;             /* the recipe text as read */
    int has_experiment, has_defaults;
    rg_recipe_section experiment, defaults;
    rg_recipe_section *runs, *compares, *profiles;
    int32_t n_runs, n_compares, n_profiles;
} rg_recipe;

/* Parses recipe text; origin names it in messages. On success *out is a new
 * recipe (rg_recipe_free). Errors are RG_ERR_FORMAT "origin:line: problem". */
rg_status rg_recipe_parse(const char *text, const char *origin, rg_recipe **out, rg_error *err);
/* Reads and parses the file at path (at most 1 MiB). */
rg_status rg_recipe_load(const char *path, rg_recipe **out, rg_error *err);
void rg_recipe_free(rg_recipe *r);
/* The value of key in a section, or NULL. */
const rg_recipe_kv *rg_recipe_get(const rg_recipe_section *s, const char *key);

/* ---- resolution -------------------------------------------------------------------------- */

/* A reference "@NAME" or "@NAME:last" in a key that takes a checkpoint. */
typedef struct {
    char key[32];           /* e.g. "init" */
    int32_t run;            /* index into rg_resolved_recipe.runs */
    char artifact[8];       /* best | last */
    int32_t line;
} rg_recipe_ref;

typedef struct {
    char name[RG_RECIPE_NAME_MAX];
    char kind[16];          /* train (later kinds: one entry in src/exp/kinds.c) */
    int32_t line;           /* of [run NAME] */
    rg_train_config cfg;    /* resolved; a referencing key holds "@NAME:best"; seed 0 */
    rg_recipe_ref refs[RG_RECIPE_MAX_REFS];
    int32_t n_refs;
} rg_resolved_run;

typedef struct {
    char name[RG_RECIPE_NAME_MAX], baseline[RG_RECIPE_NAME_MAX], treatment[RG_RECIPE_NAME_MAX];
    char reference[RG_RECIPE_NAME_MAX]; /* optional: "" none */
} rg_resolved_compare;

typedef struct {
    const rg_recipe *recipe;
    char name[128];         /* the experiment name; "<name>-<profile>" under a profile unless it sets name */
    char profile[RG_RECIPE_NAME_MAX];
    char store[512];        /* default runs/regain.db */
    char runs_dir[512];     /* default runs/<name> */
    int64_t *seeds;
    int32_t n_seeds;
    rg_resolved_run *runs;  /* dependency order: every run after the runs it references */
    int32_t n_runs;
    rg_resolved_compare *compares;
    int32_t n_compares;
} rg_resolved_recipe;

/* Resolves r under profile (NULL or "" for none) into *out (free with
 * rg_resolved_free; it points into r, which must outlive it). */
rg_status rg_recipe_resolve(const rg_recipe *r, const char *profile, rg_resolved_recipe **out, rg_error *err);
void rg_resolved_free(rg_resolved_recipe *x);
/* Index of run `name`, or -1. */
int32_t rg_resolved_find(const rg_resolved_recipe *x, const char *name);

/* The text a run's content hash covers: "kind = K" and the trainer
 * configuration (rg_train_config_format) without the keys that do not change
 * results (threads, workers) and with the given seed; references stay
 * symbolic ("init = @baseline:best"). Caller frees; NULL when out of memory. */
char *rg_resolved_config_text(const rg_resolved_run *run, int64_t seed);

#endif
