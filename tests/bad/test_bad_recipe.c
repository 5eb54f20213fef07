/* regain run / regain runs on bad input, run as the sanitizer build
 * ($REGAIN_CLI_SAN): malformed recipes, bad options, files that are not
 * experiment stores. Each gives the documented exit code (2 bad command
 * line, 3 I/O error, 4 malformed file, 5 not found), a message naming the
 * file (and line) and the problem, and no sanitizer report. Nothing here
 * trains. */
#include "test_support.h"

#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char out[1 << 16];

/* "cd ROOT && regain-san ARGS": exit code, words, no sanitizer report */
#define expect_cli(...) rgt_expect_cli("REGAIN_CLI_SAN", out, sizeof out, __VA_ARGS__)

#define EXP "[experiment]\nname = e\nstore = s.db\n"   /* lines 1-3 */

static void test_malformed_recipes(void **state)
{
    (void)state;
    rgt_write_text("r1.ini", EXP "[run a]\nlrr = 0.1\n");
    expect_cli(4, "r1.ini:5:", "unknown key 'lrr'", "run r1.ini");
    rgt_write_text("r2.ini", EXP "[run a]\nlr = fast\n");
    expect_cli(4, "r2.ini:5: lr: 'fast' is not a number", NULL, "run r2.ini --dry-run");
    rgt_write_text("r3.ini", EXP "[run a]\ninit = @b\n[run b]\ninit = @a\n");
    expect_cli(4, "r3.ini:", "dependency cycle", "run r3.ini");
    rgt_write_text("r4.ini", EXP "[run a]\nextends = nobody\n");
    expect_cli(4, "r4.ini:5: extends:", "no [run nobody]", "run r4.ini");
    rgt_write_text("r5.ini", EXP "[run a]\ninit = @ghost:last\n");
    expect_cli(4, "r5.ini:5: init:", "ghost", "run r5.ini");
    rgt_write_text("r6.ini", EXP "[sweep a]\n");
    expect_cli(4, "r6.ini:4:", "unknown section [sweep]", "run r6.ini");
    rgt_write_text("empty.ini", "");
    expect_cli(4, "empty.ini", "no [experiment] section", "run empty.ini");
    /* a NUL byte, a line of 200 000 characters, a file over 1 MiB */
    rgt_write_file(rgt_in_root("nul.ini"), "[experiment]\n\0name = x\n", 24);
    expect_cli(4, "nul.ini", "NUL byte", "run nul.ini");
    size_t n = 200000;
    char *big = malloc(2 * 1024 * 1024);
    assert_non_null(big);
    int len = snprintf(big, 64, "%s[run a]\nmodel = ", EXP);
    memset(big + len, 'm', n);
    big[len + (int)n] = '\n';
    rgt_write_file(rgt_in_root("long.ini"), big, (size_t)len + n + 1);
    expect_cli(4, "long.ini:5: model:", "longer than", "run long.ini");
    memset(big, ';', 2 * 1024 * 1024);
    rgt_write_file(rgt_in_root("huge.ini"), big, 2 * 1024 * 1024);
    expect_cli(4, "huge.ini", NULL, "run huge.ini");
    free(big);
    expect_cli(3, "missing.ini", NULL, "run missing.ini");
}

static void test_bad_options(void **state)
{
    (void)state;
    rgt_write_text("ok.ini", EXP "[run a]\nepochs = 1\n[profile quick]\nepochs = 1\n");
    expect_cli(2, "missing the recipe", NULL, "run");
    expect_cli(2, "one recipe only", NULL, "run ok.ini ok.ini");
    expect_cli(2, "unknown option '--fast'", NULL, "run ok.ini --fast 1");
    expect_cli(2, "--jobs", "'0'", "run ok.ini --jobs 0");
    expect_cli(2, "--threads", "'many'", "run ok.ini --threads many");
    expect_cli(2, "needs a value", NULL, "run ok.ini --only");
    expect_cli(2, "choose one", NULL, "run ok.ini --quick --profile slow");
    expect_cli(2, "no [profile slow] (profiles: quick)", NULL, "run ok.ini --profile slow --dry-run");
    expect_cli(2, "--only zz", "no [run zz]", "run ok.ini --only zz --dry-run");
    expect_cli(2, "--status", "'finished'", "runs --status finished");
    expect_cli(2, "unexpected argument", NULL, "runs extra");
    /* inputs that do not exist are found before anything runs */
    rgt_write_text("nodata.ini", EXP "[run a]\ndata = no/such/dir\n");
    expect_cli(5, "no/such/dir", NULL, "run nodata.ini --dry-run");
    rgt_write_text("noinit.ini", EXP "[run a]\ninit = no/such.safetensors\n");
    expect_cli(5, "run a: init:", "no/such.safetensors", "run noinit.ini --dry-run");
}

static void make_db(const char *name, const char *sql)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(rgt_in_root(name), &db), SQLITE_OK);
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) fail_msg("%s", msg);
    sqlite3_close(db);
}

static void test_bad_stores(void **state)
{
    (void)state;
    rgt_write_text("ok.ini", EXP "[run a]\nepochs = 1\n");
    rgt_write_text("garbage.db", "this is not an SQLite database, not at all; it is long enough to have a header..........");
    expect_cli(4, "garbage.db", "not a database", "runs --store garbage.db");
    expect_cli(4, "garbage.db", "not a database", "run ok.ini --store garbage.db --dry-run");
    make_db("other.db", "CREATE TABLE t(x);");
    expect_cli(4, "other.db", "not a regain experiment store", "runs --store other.db");
    expect_cli(4, "other.db", "not a regain experiment store", "run ok.ini --store other.db");
    make_db("future.db", "CREATE TABLE t(x); PRAGMA user_version = 99;");
    expect_cli(4, "future.db", "newer than this regain's", "runs --store future.db --json");
    expect_cli(5, "none.db", "no experiment store", "runs --store none.db");
    mkdir(rgt_in_root("dir.db"), 0777);
    expect_cli(3, "dir.db", "not a regular file", "runs --store dir.db");
    /* a new store (created by a dry run? no: a dry run writes nothing) */
    expect_cli(0, "1 of 1 runs to do", NULL, "run ok.ini --store fresh.db --dry-run");
    struct stat sb;
    assert_int_not_equal(stat(rgt_in_root("fresh.db"), &sb), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malformed_recipes),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_bad_stores),
    };
    return cmocka_run_group_tests(tests, rgt_root_setup, rgt_root_teardown);
}
