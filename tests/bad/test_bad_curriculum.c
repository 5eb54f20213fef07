/* Curriculum, label-noise and selection inputs that must be refused, run on
 * the sanitizer build: scores files (each problem named FILE:LINE), every
 * bad value of every key (named by the key), and at run time a teacher that
 * is missing or not a checkpoint, a scores file of the wrong length and an
 * asymmetric map naming a class the data does not have. */
#include "test_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "regain/curriculum.h"
#include "regain/trainer.h"

static char out[1 << 14];

/* ---- scores files ------------------------------------------------------------------------- */

static void expect_scores(const char *name, const char *text, int32_t n, rg_status code, const char *w1,
                          const char *w2)
{
    rgt_write_text(name, text);
    float s[8];
    rg_error err = {0};
    rg_status st = rg_curriculum_read_scores(rgt_in_root(name), n, s, &err);
    if (st != code) fail_msg("%s: status %d, expected %d (%s)", name, st, code, err.msg);
    if (!strstr(err.msg, name)) fail_msg("%s: the message '%s' does not name the file", name, err.msg);
    if (w1 && !strstr(err.msg, w1)) fail_msg("%s: '%s' lacks '%s'", name, err.msg, w1);
    if (w2 && !strstr(err.msg, w2)) fail_msg("%s: '%s' lacks '%s'", name, err.msg, w2);
}

static void test_bad_scores_files(void **state)
{
    (void)state;
    expect_scores("nan.txt", "1\nabc\n2\n", 3, RG_ERR_FORMAT, "nan.txt:2:", "not a finite number");
    expect_scores("inf.txt", "1\n2\ninf\n", 3, RG_ERR_FORMAT, "inf.txt:3:", "not a finite number");
    expect_scores("nan2.txt", "nan\n2\n3\n", 3, RG_ERR_FORMAT, "nan2.txt:1:", "not a finite number");
    expect_scores("huge.txt", "1\n1e999\n", 2, RG_ERR_FORMAT, "huge.txt:2:", NULL);
    expect_scores("few.txt", "1\n2\n", 3, RG_ERR_FORMAT, "few.txt:2:", "2 scores for 3 training samples");
    expect_scores("many.txt", "1\n2\n3\n4\n", 3, RG_ERR_FORMAT, "many.txt:4:", "more scores than the 3");
    expect_scores("range.txt", "0 1\n3 2\n", 3, RG_ERR_FORMAT, "range.txt:2:", "index 3 is outside [0, 3)");
    expect_scores("neg.txt", "-1 1\n", 3, RG_ERR_FORMAT, "neg.txt:1:", "outside");
    expect_scores("twice.txt", "0 1\n1 2\n0 3\n", 3, RG_ERR_FORMAT, "twice.txt:3:", "index 0 is given twice");
    expect_scores("missing.txt", "0 1\n2 3\n", 3, RG_ERR_FORMAT, "missing.txt:", "index 1 has none");
    expect_scores("mixed.txt", "0 1\n2\n", 3, RG_ERR_FORMAT, "mixed.txt:2:", "mixes the two forms");
    expect_scores("mixed2.txt", "2\n1 1\n", 3, RG_ERR_FORMAT, "mixed2.txt:2:", "mixes the two forms");
    expect_scores("frac.txt", "1.5 2\n", 3, RG_ERR_FORMAT, "frac.txt:1:", "index is not an integer");
    expect_scores("trail.txt", "0 1 x\n", 3, RG_ERR_FORMAT, "trail.txt:1:", "unexpected 'x'");
    expect_scores("score.txt", "0 abc\n", 3, RG_ERR_FORMAT, "score.txt:1:", "not a finite number");
    expect_scores("empty.txt", "", 3, RG_ERR_FORMAT, "empty.txt", "0 scores for 3");
    char *long_line = malloc(2000);
    memset(long_line, '1', 1999);
    long_line[1999] = 0;
    expect_scores("long.txt", long_line, 3, RG_ERR_FORMAT, "long.txt:1:", "longer than");
    free(long_line);
    float s[2];
    rg_error err = {0};
    assert_int_equal(rg_curriculum_read_scores(rgt_in_root("absent.txt"), 2, s, &err), RG_ERR_IO);
    assert_non_null(strstr(err.msg, "absent.txt"));
}

/* ---- keys ------------------------------------------------------------------------------------ */

/* Sets key = value on the defaults (plus extra "k=v;k=v" settings), then
 * validates; the error must name want_key and hold word. */
static void expect_key(const char *key, const char *value, const char *extra, const char *want_key,
                       const char *word)
{
    rg_train_config c;
    rg_train_config_default(&c);
    rg_error err = {0};
    char buf[512];
    snprintf(buf, sizeof buf, "%s", extra ? extra : "");
    for (char *kv = strtok(buf, ";"); kv; kv = strtok(NULL, ";")) {
        char *eq = strchr(kv, '=');
        assert_non_null(eq);
        *eq = 0;
        if (rg_train_config_set(&c, kv, eq + 1, &err)) fail_msg("setup %s: %s", kv, err.msg);
    }
    rg_status st = rg_train_config_set(&c, key, value, &err);
    if (!st) st = rg_train_config_validate(&c, &err);
    if (!st) fail_msg("%s = %s was accepted", key, value);
    if (strncmp(err.msg, want_key, strlen(want_key)) || !strstr(err.msg, word))
        fail_msg("%s = %s: message '%s' should start with '%s' and hold '%s'", key, value, err.msg, want_key, word);
}

static void test_bad_keys(void **state)
{
    (void)state;
    expect_key("label_noise", "abc", NULL, "label_noise", "not a number");
    expect_key("label_noise", "1.5", NULL, "label_noise", "out of range");
    expect_key("label_noise", "-0.1", NULL, "label_noise", "out of range");
    expect_key("label_noise_kind", "uniform", NULL, "label_noise_kind", "symmetric, asymmetric");
    expect_key("label_noise_map", "0-6", "label_noise_kind=asymmetric", "label_noise_map", "FROM:TO");
    expect_key("label_noise_map", "0:6,0:5", "label_noise_kind=asymmetric", "label_noise_map", "mapped twice");
    expect_key("label_noise_map", "0:300", "label_noise_kind=asymmetric", "label_noise_map", "outside");
    expect_key("label_noise_map", "0:6", NULL, "label_noise_map", "only asymmetric");
    expect_key("curriculum", "teachers", NULL, "curriculum", "none, teacher, self, file");
    expect_key("curriculum", "teacher", NULL, "curriculum_teacher", "needs a checkpoint");
    expect_key("curriculum", "file", NULL, "curriculum_scores", "needs a scores file");
    expect_key("curriculum_teacher", "t.safetensors", NULL, "curriculum_teacher", "not teacher");
    expect_key("curriculum_scores", "s.txt", "curriculum=self", "curriculum_scores", "not file");
    expect_key("curriculum_score", "margin", NULL, "curriculum_score", "loss, confidence");
    expect_key("curriculum_order", "shuffled", NULL, "curriculum_order", "easy, hard, random");
    expect_key("pacing", "exponential", NULL, "pacing", "linear, root, geometric, step");
    expect_key("pacing_start", "0", NULL, "pacing_start", "(0, 1]");
    expect_key("pacing_start", "1.2", NULL, "pacing_start", "out of range");
    expect_key("pacing_full_epoch", "16", NULL, "pacing_full_epoch", "exceeds epochs");
    expect_key("pacing_full_epoch", "-1", NULL, "pacing_full_epoch", "out of range");
    expect_key("pacing_full_epoch", "x", NULL, "pacing_full_epoch", "not an integer");
    expect_key("pacing_steps", "0", NULL, "pacing_steps", "out of range");
    expect_key("select_keep", "0", NULL, "select_keep", "(0, 1]");
    expect_key("select_keep", "1.5", NULL, "select_keep", "out of range");
    expect_key("select_warmup", "15", "select_keep=0.6", "select_warmup", "no epoch to select");
    expect_key("select_warmup", "-2", NULL, "select_warmup", "out of range");
    expect_key("select_ramp_epochs", "-1", NULL, "select_ramp_epochs", "out of range");
    expect_key("select_relabel", "1.5", "select_keep=0.6", "select_relabel", "out of range");
    expect_key("select_relabel", "0.9", NULL, "select_relabel", "select_keep is 1");
    expect_key("select_relabel", "0.9", "select_keep=0.6;mixup=0.2", "select_relabel", "mixup and CutMix");
    expect_key("select_refresh", "1", "select_keep=0.6", "select_refresh", "select_relabel is 0");
    expect_key("select_refresh", "maybe", NULL, "select_refresh", "not a boolean");
    /* each is also refused by the command line, with the key named */
    rgt_expect_cli("REGAIN_CLI_SAN", out, sizeof out, 2, "curriculum", "none, teacher, self, file",
                   "train --curriculum teachers");
    rgt_expect_cli("REGAIN_CLI_SAN", out, sizeof out, 2, "select_keep", "(0, 1]", "train --select-keep 0");
}

/* ---- at run time ------------------------------------------------------------------------------- */

static void expect_run_error(rg_train_config *c, const char *name, const char *w1, const char *w2)
{
    rg_train_result res;
    rg_error err = {0};
    rg_status st = rg_train_run(c, rgt_in_root(name), 0, NULL, &res, &err);
    if (st == RG_OK) fail_msg("%s: training was accepted", name);
    if (!strstr(err.msg, w1) || (w2 && !strstr(err.msg, w2)))
        fail_msg("%s: message '%s' lacks '%s' / '%s'", name, err.msg, w1, w2 ? w2 : "");
}

static void test_bad_at_run_time(void **state)
{
    (void)state;
    char p[600];
    struct stat sb;
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte.gz", RG_FASHION_MNIST_DIR);
    if (stat(p, &sb) != 0) fail_msg("%s is missing: install the fashion-mnist package", p);
    rg_train_config c;
    rg_train_config_default(&c);
    c.train_limit = 50;
    c.test_limit = 20;
    c.epochs = 1;
    c.batch = 16;
    c.workers = 0;
    snprintf(c.curriculum, sizeof c.curriculum, "teacher");
    snprintf(c.curriculum_teacher, sizeof c.curriculum_teacher, "%s", rgt_in_root("no-such.safetensors"));
    expect_run_error(&c, "t1", "curriculum_teacher", "no-such.safetensors");
    rgt_write_text("not-a-checkpoint.safetensors", "hello");
    snprintf(c.curriculum_teacher, sizeof c.curriculum_teacher, "%s", rgt_in_root("not-a-checkpoint.safetensors"));
    expect_run_error(&c, "t2", "curriculum_teacher", "not-a-checkpoint.safetensors");
    snprintf(c.curriculum, sizeof c.curriculum, "file");
    c.curriculum_teacher[0] = 0;
    rgt_write_text("short.txt", "1\n2\n3\n");
    snprintf(c.curriculum_scores, sizeof c.curriculum_scores, "%s", rgt_in_root("short.txt"));
    expect_run_error(&c, "f1", "short.txt:3:", "3 scores for 50 training samples");
    snprintf(c.curriculum, sizeof c.curriculum, "none");
    c.curriculum_scores[0] = 0;
    c.label_noise = 0.2f;
    snprintf(c.label_noise_kind, sizeof c.label_noise_kind, "asymmetric");
    snprintf(c.label_noise_map, sizeof c.label_noise_map, "3:12");
    expect_run_error(&c, "m1", "label_noise_map", "outside [0, 10)");
}

/* ---- recipes --------------------------------------------------------------------------------- */

#define EXP "[experiment]\nname = e\nstore = s.db\n" /* lines 1-3 */

static void test_recipe_references(void **state)
{
    (void)state;
    /* curriculum_teacher takes another run's checkpoint: b runs after a */
    rgt_write_text("ok.ini", EXP "[run b]\ncurriculum = teacher\ncurriculum_teacher = @a\n[run a]\nepochs = 1\n");
    rgt_expect_cli("REGAIN_CLI_SAN", out, sizeof out, 0, "after deps", NULL, "run ok.ini --dry-run");
    const char *a = strstr(out, "\na "), *b = strstr(out, "\nb ");
    if (!a || !b || a > b) fail_msg("run a is not planned before run b:\n%s", out);
    /* a scores file is an input named directly, not a run's artifact */
    rgt_write_text("r1.ini", EXP "[run a]\n[run b]\ncurriculum = file\ncurriculum_scores = @a\n");
    rgt_expect_cli("REGAIN_CLI_SAN", out, sizeof out, 4, "r1.ini:7: curriculum_scores:",
                   "only a checkpoint key (init, teacher, teacher2, teacher3, curriculum_teacher)", "run r1.ini --dry-run");
    /* and counts by its content: a missing one stops the plan */
    rgt_write_text("r2.ini", EXP "[run a]\ncurriculum = file\ncurriculum_scores = gone.txt\n");
    rgt_expect_cli("REGAIN_CLI_SAN", out, sizeof out, 5, "curriculum_scores", "gone.txt", "run r2.ini --dry-run");
    rgt_write_text("r3.ini", EXP "[run a]\ncurriculum = self\npacing = fast\n");
    rgt_expect_cli("REGAIN_CLI_SAN", out, sizeof out, 4, "r3.ini", "pacing: 'fast'", "run r3.ini --dry-run");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_scores_files),
        cmocka_unit_test(test_bad_keys),
        cmocka_unit_test(test_bad_at_run_time),
        cmocka_unit_test(test_recipe_references),
    };
    return cmocka_run_group_tests(tests, rgt_root_setup, rgt_root_teardown);
}
