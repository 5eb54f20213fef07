/* Recipes: parsing, resolution (defaults, extends, profiles, references),
 * dependency order, the hashed configuration text, and every error case with
 * the file and line it must name. */
#include "test_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "regain/recipe.h"

static rg_recipe *parse_ok(const char *text)
{
    rg_error err = {0};
    rg_recipe *r = NULL;
    if (rg_recipe_parse(text, "t.ini", &r, &err) != RG_OK) fail_msg("parse failed: %s", err.msg);
    return r;
}

static rg_resolved_recipe *resolve_ok(const rg_recipe *r, const char *profile)
{
    rg_error err = {0};
    rg_resolved_recipe *x = NULL;
    if (rg_recipe_resolve(r, profile, &x, &err) != RG_OK) fail_msg("resolve failed: %s", err.msg);
    return x;
}

/* Parsing or resolving text (under profile) must fail with a message that
 * starts with `where` and holds `what`. */
static void expect_error(const char *text, const char *profile, const char *where, const char *what)
{
    rg_error err = {0};
    rg_recipe *r = NULL;
    rg_resolved_recipe *x = NULL;
    rg_status st = rg_recipe_parse(text, "t.ini", &r, &err);
    if (st == RG_OK) {
        st = rg_recipe_resolve(r, profile, &x, &err);
        rg_resolved_free(x);
        rg_recipe_free(r);
    }
    if (st == RG_OK) fail_msg("accepted, expected \"%s ... %s\":\n%s", where, what, text);
    if (strncmp(err.msg, where, strlen(where)) != 0 || !strstr(err.msg, what))
        fail_msg("message \"%s\", expected \"%s ... %s\"", err.msg, where, what);
}

#define EXP "[experiment]\nname = e\n"   /* lines 1-2 */

/* ---- a complete recipe ----------------------------------------------------------------- */

static const char *full =
    "; a comment\n"                          /* 1 */
    "[experiment]\n"                         /* 2 */
    "name = fm   # inline comment\n"         /* 3 */
    "seeds = 3, 1 2\n"                       /* 4 */
    "\n"                                     /* 5 */
    "[defaults]\n"                           /* 6 */
    "epochs = 15\n"                          /* 7 */
    "data = dir#1\n"                         /* 8: '#' inside a value stays */
    "workers = 3\n"                          /* 9 */
    "\n"                                     /* 10 */
    "[run finetuned]\n"                      /* 11: before what it needs */
    "extends = baseline\n"                   /* 12 */
    "init = @baseline\n"                     /* 13 */
    "lr = 0.01\n"                            /* 14 */
    "[run baseline]\n"                       /* 15 */
    "wd = 1e-4\n"                            /* 16 */
    "[run teacher]\n"                        /* 17 */
    "model = resnet20-w2\n"                  /* 18 */
    "[run from-last]\n"                      /* 19 */
    "init = @finetuned:last\n"               /* 20 */
    "[compare ft]\n"                         /* 21 */
    "baseline = baseline\n"                  /* 22 */
    "treatment = finetuned\n"                /* 23 */
    "reference = teacher\n"                  /* 24 */
    "[profile quick]\n"                      /* 25 */
    "epochs = 2\n"                           /* 26 */
    "seeds = 7\n";                           /* 27 */

static void test_full_recipe(void **state)
{
    (void)state;
    rg_recipe *r = parse_ok(full);
    assert_int_equal(r->n_runs, 4);
    assert_int_equal(r->n_profiles, 1);
    rg_resolved_recipe *x = resolve_ok(r, NULL);
    assert_string_equal(x->name, "fm");
    assert_string_equal(x->store, "runs/regain.db");
    assert_string_equal(x->runs_dir, "runs/fm");
    assert_int_equal(x->n_seeds, 3);
    assert_true(x->seeds[0] == 3 && x->seeds[1] == 1 && x->seeds[2] == 2);
    /* dependency order: baseline before finetuned before from-last; teacher
     * (independent) keeps its place after the runs declared before it */
    assert_int_equal(x->n_runs, 4);
    assert_string_equal(x->runs[0].name, "baseline");
    assert_string_equal(x->runs[1].name, "finetuned");
    assert_string_equal(x->runs[2].name, "teacher");
    assert_string_equal(x->runs[3].name, "from-last");
    const rg_resolved_run *ft = &x->runs[1];
    /* extends: baseline's wd, defaults' epochs and data, its own lr */
    assert_float_equal(ft->cfg.wd, 1e-4f, 0);
    assert_float_equal(ft->cfg.lr, 0.01f, 0);
    assert_int_equal(ft->cfg.epochs, 15);
    assert_string_equal(ft->cfg.data, "dir#1");
    assert_string_equal(ft->kind, "train");
    assert_int_equal(ft->n_refs, 1);
    assert_int_equal(ft->refs[0].run, 0);
    assert_string_equal(ft->refs[0].artifact, "best");
    assert_int_equal(ft->refs[0].line, 13);
    assert_string_equal(ft->cfg.init, "@baseline:best");
    assert_string_equal(x->runs[3].cfg.init, "@finetuned:last");
    assert_int_equal(x->runs[3].refs[0].run, 1);
    /* the teacher keeps the default lr and its own model */
    assert_string_equal(x->runs[2].cfg.model, "resnet20-w2");
    assert_float_equal(x->runs[2].cfg.lr, 0.1f, 0);
    assert_int_equal(x->n_compares, 1);
    assert_string_equal(x->compares[0].baseline, "baseline");
    assert_string_equal(x->compares[0].treatment, "finetuned");
    assert_string_equal(x->compares[0].reference, "teacher");
    rg_resolved_free(x);
    rg_recipe_free(r);
}

static void test_profile(void **state)
{
    (void)state;
    rg_recipe *r = parse_ok(full);
    rg_resolved_recipe *x = resolve_ok(r, "quick");
    /* results apart from the full runs', the profile's seeds and epochs */
    assert_string_equal(x->name, "fm-quick");
    assert_string_equal(x->runs_dir, "runs/fm-quick");
    assert_int_equal(x->n_seeds, 1);
    assert_true(x->seeds[0] == 7);
    for (int32_t i = 0; i < x->n_runs; i++) assert_int_equal(x->runs[i].cfg.epochs, 2);
    assert_float_equal(x->runs[1].cfg.lr, 0.01f, 0);
    rg_resolved_free(x);
    rg_recipe_free(r);

    /* [experiment] names the runs' directory: the profile gets its own
     * beside it, unless it names one itself */
    static const char *const texts[] = {
        "[experiment]\nname = fm\nruns_dir = out/fm/\n[run a]\n[profile quick]\nepochs = 1\n",
        "[experiment]\nname = fm\nruns_dir = out/fm\n[run a]\n[profile quick]\nruns_dir = q\n"};
    static const char *const want[] = {"out/fm-quick", "q"};
    for (int k = 0; k < 2; k++) {
        r = parse_ok(texts[k]);
        x = resolve_ok(r, "quick");
        assert_string_equal(x->runs_dir, want[k]);
        rg_resolved_free(x);
        x = resolve_ok(r, NULL);
        assert_string_equal(x->runs_dir, k ? "out/fm" : "out/fm/");
        rg_resolved_free(x);
        rg_recipe_free(r);
    }
}

static void test_config_text(void **state)
{
    (void)state;
    rg_recipe *r = parse_ok(full);
    rg_resolved_recipe *x = resolve_ok(r, NULL);
    rg_resolved_run run = x->runs[1];
    char *a = rg_resolved_config_text(&run, 2);
    run.cfg.threads = 7;
    run.cfg.workers = 1;
    char *b = rg_resolved_config_text(&run, 2);
    char *c = rg_resolved_config_text(&run, 3);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_true(strncmp(a, "kind = train\n", 13) == 0);
    assert_non_null(strstr(a, "\nseed = 2\n"));
    assert_non_null(strstr(a, "\ninit = @baseline:best\n"));
    assert_non_null(strstr(a, "\nlr = 0.00999999978\n"));
    /* threads and workers do not change results, so not the hash either */
    assert_null(strstr(a, "threads"));
    assert_null(strstr(a, "workers"));
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    free(a);
    free(b);
    free(c);
    rg_resolved_free(x);
    rg_recipe_free(r);
}

static void test_defaults_when_absent(void **state)
{
    (void)state;
    rg_recipe *r = parse_ok(EXP "store = x/s.db\nruns_dir = out\n[run only]\nkind = train\n");
    rg_resolved_recipe *x = resolve_ok(r, "");
    assert_int_equal(x->n_seeds, 1);
    assert_true(x->seeds[0] == 1);
    assert_string_equal(x->store, "x/s.db");
    assert_string_equal(x->runs_dir, "out");
    assert_int_equal(x->runs[0].cfg.epochs, 15);   /* the trainer's default */
    assert_int_equal(rg_resolved_find(x, "only"), 0);
    assert_int_equal(rg_resolved_find(x, "other"), -1);
    rg_resolved_free(x);
    rg_recipe_free(r);
}

/* ---- syntax errors ------------------------------------------------------------------------ */

static void test_syntax_errors(void **state)
{
    (void)state;
    expect_error("lr = 1\n" EXP, NULL, "t.ini:1:", "before any section");
    expect_error(EXP "[runs a]\n", NULL, "t.ini:3:", "unknown section [runs]");
    expect_error(EXP "[run]\n", NULL, "t.ini:3:", "needs a name");
    expect_error(EXP "[run a/b]\n", NULL, "t.ini:3:", "not a valid run name");
    expect_error(EXP "[run a]\n[run a]\n", NULL, "t.ini:4:", "repeats the section of line 3");
    expect_error(EXP "[experiment]\n", NULL, "t.ini:3:", "repeats the section of line 1");
    expect_error(EXP "[defaults] x\n", NULL, "t.ini:3:", "alone on its line");
    expect_error(EXP "[defaults\n", NULL, "t.ini:3:", "alone on its line");
    expect_error(EXP "[defaults extra]\n", NULL, "t.ini:3:", "takes no name");
    expect_error(EXP "[run a]\nlr = 1\nlr = 2\n", NULL, "t.ini:5:", "set twice (first at line 4)");
    expect_error(EXP "[run a]\njust words\n", NULL, "t.ini:4:", "expected 'key = value'");
    expect_error(EXP "[run a]\nlearning-rate = 1\n", NULL, "t.ini:4:", "not a key name");
    expect_error("[run a]\n", NULL, "t.ini:", "no [experiment] section");
}

/* ---- experiment keys ------------------------------------------------------------------------ */

static void test_experiment_errors(void **state)
{
    (void)state;
    expect_error("[experiment]\nseeds = 1\n[run a]\n", NULL, "t.ini:1:", "needs a name");
    expect_error("[experiment]\nname = a b\n[run a]\n", NULL, "t.ini:2:", "name: 'a b'");
    expect_error(EXP "colour = blue\n[run a]\n", NULL, "t.ini:3:", "unknown key in [experiment]");
    expect_error(EXP "seeds = 1, x\n[run a]\n", NULL, "t.ini:3:", "seeds: '1, x' is not a list of integers");
    expect_error(EXP "seeds = 1, -2\n[run a]\n", NULL, "t.ini:3:", "is not a list of integers");
    expect_error(EXP "seeds = 4, 4\n[run a]\n", NULL, "t.ini:3:", "4 appears twice");
    expect_error(EXP "seeds = ,\n[run a]\n", NULL, "t.ini:3:", "empty list");
    expect_error(EXP "store =\n[run a]\n", NULL, "t.ini:3:", "store: must be a path");
    expect_error(EXP, NULL, "t.ini:", "no [run NAME] section");
}

/* ---- run keys ---------------------------------------------------------------------------------- */

static void test_run_key_errors(void **state)
{
    (void)state;
    expect_error(EXP "[run a]\nlrr = 1\n", NULL, "t.ini:4:", "unknown key 'lrr'");
    expect_error(EXP "[run a]\nlr = fast\n", NULL, "t.ini:4: lr: 'fast' is not a number", "");
    expect_error(EXP "[run a]\nepochs = 0\n", NULL, "t.ini:4: epochs:", "out of range");
    expect_error(EXP "[run a]\nnesterov = maybe\n", NULL, "t.ini:4: nesterov:", "not a boolean");
    expect_error(EXP "[defaults]\nbatch = 1.5\n[run a]\n", NULL, "t.ini:4: batch:", "not an integer");
    expect_error(EXP "[run a]\nseed = 3\n", NULL, "t.ini:4: seed:", "seeds");
    expect_error(EXP "[defaults]\nthreads = 3\n[run a]\n", NULL, "t.ini:4: threads:", "--threads");
    expect_error(EXP "[run a]\nkind = distill\n", NULL, "t.ini:4: kind:", "not a run kind");
    /* cross-key checks name the run's section */
    expect_error(EXP "[run a]\nepochs = 2\nwarmup_epochs = 5\n", NULL, "t.ini:3: run a:", "warmup_epochs");
    expect_error(EXP "[run a]\noptim = lion\n", NULL, "t.ini:3: run a:", "not an optimizer");
}

static void test_extends_errors(void **state)
{
    (void)state;
    expect_error(EXP "[run a]\nextends = b\n", NULL, "t.ini:4: extends:", "no [run b]");
    expect_error(EXP "[run a]\nextends = b\n[run b]\nextends = a\n", NULL, "t.ini:", "extends: cycle");
    expect_error(EXP "[run a]\nextends = a\n", NULL, "t.ini:4: extends:", "cycle a -> a");
    expect_error(EXP "[defaults]\nextends = a\n[run a]\n", NULL, "t.ini:4: extends:", "only a [run]");
}

static void test_reference_errors(void **state)
{
    (void)state;
    expect_error(EXP "[run a]\ninit = @ghost\n", NULL, "t.ini:4: init:", "refers to no [run ghost]");
    expect_error(EXP "[run a]\n[run b]\ninit = @a:middle\n", NULL, "t.ini:5: init:", "'best' and 'last'");
    expect_error(EXP "[run a]\n[run b]\ninit = @\n", NULL, "t.ini:5: init:", "not a reference");
    expect_error(EXP "[run a]\n[run b]\nmodel = @a\n", NULL, "t.ini:5: model:", "only a checkpoint key");
    expect_error(EXP "[run a]\ninit = @a\n", NULL, "t.ini:4: init:", "dependency cycle a -> a");
    expect_error(EXP "[run a]\ninit = @b\n[run b]\ninit = @c\n[run c]\ninit = @a\n", NULL, "t.ini:",
                 "dependency cycle a -> b -> c -> a");
}

static void test_compare_errors(void **state)
{
    (void)state;
    expect_error(EXP "[run a]\n[compare x]\nbaseline = a\n", NULL, "t.ini:4:", "needs both");
    expect_error(EXP "[run a]\n[compare x]\nbaseline = a\ntreatment = b\n", NULL, "t.ini:6: treatment:", "no [run b]");
    expect_error(EXP "[run a]\n[compare x]\ncontrol = a\n", NULL, "t.ini:5: control:", "unknown key");
    expect_error(EXP "[run a]\n[compare x]\nbaseline = a\ntreatment = a\n", NULL, "t.ini:4:", "with itself");
    expect_error(EXP "[run a]\n[run b]\n[compare x]\nbaseline = a\ntreatment = b\nreference = c\n", NULL,
                 "t.ini:8: reference:", "no [run c]");
    expect_error(EXP "[run a]\n[run b]\n[compare x]\nbaseline = a\ntreatment = b\nreference = a\n", NULL,
                 "t.ini:5:", "reference: 'a' is the comparison's own baseline");
    expect_error(EXP "[run a]\n[run b]\n[compare x]\nbaseline = a\ntreatment = b\nreference = b\n", NULL,
                 "t.ini:5:", "own treatment");
}

static void test_profile_errors(void **state)
{
    (void)state;
    const char *text = EXP "[run a]\n[profile quick]\nepochs = 1\n";
    rg_error err = {0};
    rg_recipe *r = parse_ok(text);
    rg_resolved_recipe *x = NULL;
    assert_int_equal(rg_recipe_resolve(r, "fast", &x, &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "no [profile fast] (profiles: quick)"));
    rg_recipe_free(r);
    /* a profile is checked even when not selected, its references too */
    expect_error(EXP "[run a]\n[profile quick]\ninit = @nosuch\n", NULL, "t.ini:5: init:", "refers to no [run nosuch]");
    expect_error(EXP "[run a]\n[profile quick]\ninit = @a:first\n", NULL, "t.ini:5: init:", "'best' and 'last'");
    expect_error(EXP "[run a]\n[profile quick]\nepochs = soon\n", NULL, "t.ini:5: epochs:", "not an integer");
    expect_error(EXP "[run a]\n[profile quick]\nkind = train\n", NULL, "t.ini:5: kind:", "cannot change");
    expect_error(EXP "[run a]\n[profile quick]\nseed = 1\n", NULL, "t.ini:5: seed:", "seeds");
    expect_error(EXP "[run a]\n[profile quick]\nseeds = one\n", "quick", "t.ini:5: seeds:", "not a list");
}

/* ---- distillation twins ------------------------------------------------------------------- */

/* Each distillation run is compared with its twin: the recipe's run with the
 * same configuration but for the distillation keys, or a run added for it. */
static void test_distillation_twins(void **state)
{
    (void)state;
    rg_recipe *r = parse_ok(EXP "[defaults]\nepochs = 3\n"
                                "[run base]\n"
                                "[run teacher]\nmodel = resnet20\n"
                                "[run kd]\nteacher = @teacher\nkd_alpha = 0.9\nkd_temperature = 2\n"
                                "[run long-kd]\nepochs = 5\nteacher = @teacher\nteacher2 = @base\nkd_alpha = 0.5\n"
                                "[run ft]\ninit = @base\nlr = 0.01\n"
                                "[run ft-kd]\nextends = ft\nteacher = @teacher\nhints = b3:l2\n"
                                "[compare mine]\nbaseline = ft\ntreatment = ft-kd\n");
    rg_resolved_recipe *x = resolve_ok(r, NULL);
    /* base, teacher, kd, long-kd-no-kd, long-kd, ft, ft-kd */
    assert_int_equal(x->n_runs, 7);
    int32_t twin = rg_resolved_find(x, "long-kd-no-kd"), lk = rg_resolved_find(x, "long-kd");
    assert_true(twin >= 0 && twin == lk - 1);
    assert_int_equal(x->runs[twin].cfg.epochs, 5);
    assert_string_equal(x->runs[twin].cfg.teacher, "");
    assert_string_equal(x->runs[twin].cfg.teacher2, "");
    assert_float_equal(x->runs[twin].cfg.kd_alpha, 0.0f, 0.0);
    assert_int_equal(x->runs[twin].n_refs, 0);
    /* references still point at the right runs after the insertion */
    int32_t ftkd = rg_resolved_find(x, "ft-kd");
    for (int32_t k = 0; k < x->runs[ftkd].n_refs; k++) {
        const char *to = x->runs[x->runs[ftkd].refs[k].run].name;
        assert_string_equal(to, !strcmp(x->runs[ftkd].refs[k].key, "init") ? "base" : "teacher");
    }
    assert_string_equal(x->runs[x->runs[lk].refs[1].run].name, "base");
    /* comparisons: the recipe's own, then one per distillation run without one */
    assert_int_equal(x->n_compares, 3);
    assert_string_equal(x->compares[0].name, "mine");
    assert_string_equal(x->compares[1].name, "kd-distillation");
    assert_string_equal(x->compares[1].baseline, "base");
    assert_string_equal(x->compares[1].treatment, "kd");
    assert_string_equal(x->compares[2].baseline, "long-kd-no-kd");
    assert_string_equal(x->compares[2].treatment, "long-kd");
    rg_resolved_free(x);
    rg_recipe_free(r);

    /* a twin's name taken by a run that is not the twin */
    expect_error(EXP "[run t]\n[run a]\nteacher = @t\nkd_alpha = 1\nepochs = 2\n[run a-no-kd]\nepochs = 3\n", NULL,
                 "t.ini:4: run a:", "would be named a-no-kd");
    /* the added comparison's name taken by a comparison of other runs */
    expect_error(EXP "[run t]\n[run b]\n[run a]\nteacher = @t\nkd_alpha = 1\n"
                     "[compare a-distillation]\nbaseline = t\ntreatment = b\n",
                 NULL, "t.ini:5: run a:", "would be named a-distillation");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_recipe),      cmocka_unit_test(test_profile),
        cmocka_unit_test(test_config_text),      cmocka_unit_test(test_defaults_when_absent),
        cmocka_unit_test(test_syntax_errors),    cmocka_unit_test(test_experiment_errors),
        cmocka_unit_test(test_run_key_errors),   cmocka_unit_test(test_extends_errors),
        cmocka_unit_test(test_reference_errors), cmocka_unit_test(test_compare_errors),
        cmocka_unit_test(test_profile_errors),   cmocka_unit_test(test_distillation_twins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
