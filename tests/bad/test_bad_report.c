/* `regain report` on bad input, run as the sanitizer build
 * ($REGAIN_CLI_SAN): a missing or foreign store, a schema version it does
 * not read, an unknown experiment, one with nothing finished, damaged values
 * in the store (confusion matrices, accuracies), an output directory that
 * cannot be made, and command-line mistakes. Each gives the documented exit
 * code (2 bad command line, 3 I/O error, 4 malformed input, 5 not found), a
 * message that names the file, experiment or run, no sanitizer report, and
 * no report files. Stores are built with SQL (report_fixture.h). */
#include "test_support.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "report_fixture.h"

static char out[1 << 16];

/* Runs "cd ROOT && $REGAIN_CLI_SAN report <args>" and checks the exit
 * code, that the output holds each non-NULL word, that no sanitizer spoke,
 * and that no report directory appeared under ROOT/out. */
static void expect_report(int want_code, const char *word1, const char *word2, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void expect_report(int want_code, const char *word1, const char *word2, const char *fmt, ...)
{
    char args[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    rgt_expect_cli("REGAIN_CLI_SAN", out, sizeof out, want_code, word1, word2, "report %s", args);
    struct stat sb;
    if (stat(rgt_in_root("out/report.html"), &sb) == 0) fail_msg("regain report %s: wrote a report anyway", args);
}

/* A demo store whose one row is then damaged by `sql`. */
static void damaged_store(const char *name, const char *sql)
{
    rgt_demo_store(rgt_in_root(name));
    sqlite3 *db;
    if (sqlite3_open(rgt_in_root(name), &db) != SQLITE_OK) fail_msg("cannot open %s", name);
    rgt_sql(db, "%s", sql);
    sqlite3_close(db);
}

static void test_missing_and_foreign_stores(void **state)
{
    (void)state;
    expect_report(5, "nothing.db", "no experiment store", "demo --store nothing.db --out out");
    expect_report(5, "runs/regain.db", NULL, "demo --out out");   /* the default store */

    rgt_write_file(rgt_in_root("junk.db"), "this is not a database, just text that is long enough to look like one",
                   71);
    expect_report(4, "junk.db", "not a readable SQLite database", "demo --store junk.db --out out");

    /* A SQLite database that is not a store (no schema version). */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(rgt_in_root("other.db"), &db), SQLITE_OK);
    rgt_sql(db, "CREATE TABLE t(x)");
    sqlite3_close(db);
    expect_report(4, "other.db", "not a regain experiment store", "demo --store other.db --out out");

    /* A store from a newer regain. */
    damaged_store("new.db", "PRAGMA user_version = 99");
    expect_report(4, "new.db", "schema version 99", "demo --store new.db --out out");

    /* Version right but a table missing. */
    damaged_store("notable.db", "DROP TABLE comparisons");
    expect_report(4, "notable.db", "comparisons", "demo --store notable.db --out out");

    mkdir(rgt_in_root("dir.db"), 0755);
    expect_report(3, "dir.db", "not a regular file", "demo --store dir.db --out out");
}

static void test_experiments(void **state)
{
    (void)state;
    rgt_demo_store(rgt_in_root("s.db"));
    expect_report(5, "no experiment 'nope'", "it has: demo", "nope --store s.db --out out");

    /* An experiment whose runs are all pending, running or failed. */
    sqlite3 *db = rgt_store_new(rgt_in_root("idle.db"), "idle");
    rgt_sql(db, "INSERT INTO runs(experiment_id, name, seed, config_hash, config_text, status) VALUES"
                "(1, 'a', 1, 'h', '', 'pending'), (1, 'a', 2, 'h', '', 'failed')");
    sqlite3_close(db);
    expect_report(5, "experiment 'idle' has no finished run yet", "1 pending, 0 running, 1 failed",
                  "idle --store idle.db --out out");
    db = rgt_store_new(rgt_in_root("empty.db"), "empty");
    sqlite3_close(db);
    expect_report(5, "empty.db", "no finished run", "empty --store empty.db --out out");
}

static void test_damaged_values(void **state)
{
    (void)state;
    /* Rows alternate baseline and distilled from seed 1: run_id 1 is the
     * baseline's seed 1, the first row read; run_id 3 its seed 2. */
    static const struct {
        const char *sql, *word;
        int seed;
    } cases[] = {
        {"UPDATE final_metrics SET confusion = '[[1,2],[3,4' WHERE run_id = 3", "not a JSON array", 2},
        {"UPDATE final_metrics SET confusion = '{\"a\": 1}' WHERE run_id = 3", "not a JSON array", 2},
        {"UPDATE final_metrics SET confusion = '[]' WHERE run_id = 3", "has 0 rows", 2},
        {"UPDATE final_metrics SET confusion = '[[1,2],[3]]' WHERE run_id = 1", "row 1 is not an array of 2", 1},
        {"UPDATE final_metrics SET confusion = '[[1,-2],[3,4]]' WHERE run_id = 1", "confusion[0][1]", 1},
        {"UPDATE final_metrics SET confusion = '[[1,2.5],[3,4]]' WHERE run_id = 1", "confusion[0][1]", 1},
        {"UPDATE final_metrics SET confusion = '[[1,\"x\"],[3,4]]' WHERE run_id = 1", "confusion[0][1]", 1},
        {"UPDATE final_metrics SET confusion = '[[1,0],[0,1]]' WHERE run_id = 3", "2 classes but another seed has 10", 2},
        {"UPDATE final_metrics SET test_top1 = 91.5 WHERE run_id = 3", "test_top1 is 91.5, outside [0, 1]", 2},
        {"UPDATE final_metrics SET test_top1 = NULL WHERE run_id = 3", "no test_top1", 2},
        {"DELETE FROM final_metrics WHERE run_id = 3", "no test_top1", 2},
        {"UPDATE epoch_metrics SET test_top1 = -0.5 WHERE run_id = 3 AND epoch = 2", "epoch_metrics.test_top1", 2},
        {"UPDATE epoch_metrics SET epoch = -4 WHERE run_id = 3 AND epoch = 2", "epoch_metrics has epoch -4", 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[32], who[64];
        snprintf(name, sizeof name, "d%zu.db", i);
        snprintf(who, sizeof who, "run 'baseline' seed %d", cases[i].seed);
        damaged_store(name, cases[i].sql);
        expect_report(4, who, cases[i].word, "demo --store %s --out out", name);
        if (!strstr(out, name)) fail_msg("the message does not name the store %s:\n%s", name, out);
    }
}

static void test_output_and_command_line(void **state)
{
    (void)state;
    rgt_demo_store(rgt_in_root("s.db"));
    /* A file where a directory of the output path should be. */
    rgt_write_file(rgt_in_root("file"), "x", 1);
    expect_report(3, "file", "cannot create directory", "demo --store s.db --out file/report");
    expect_report(3, "file", NULL, "demo --store s.db --out file");

    expect_report(2, "which experiment", NULL, "--store s.db");
    expect_report(2, "unknown option '--fast'", NULL, "demo --fast");
    expect_report(2, "--store needs a path", NULL, "demo --store");
    expect_report(2, "one experiment at a time", NULL, "demo other --store s.db");
    expect_report(2, "needs an explicit --out", NULL, "a/b --store s.db");

    /* And the same store does give a report: the failures above were the
     * mistakes, not the store. */
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' report demo --store s.db --out good", rgt_root, rgt_env("REGAIN_CLI_SAN"));
    int code = rgt_run(cmd, out, sizeof out);
    if (code != 0 || strstr(out, "Sanitizer")) fail_msg("regain report on a good store: exit %d\n%s", code, out);
    assert_non_null(strstr(out, "good/report.html"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_missing_and_foreign_stores, rgt_root_setup, rgt_root_teardown),
        cmocka_unit_test_setup_teardown(test_experiments, rgt_root_setup, rgt_root_teardown),
        cmocka_unit_test_setup_teardown(test_damaged_values, rgt_root_setup, rgt_root_teardown),
        cmocka_unit_test_setup_teardown(test_output_and_command_line, rgt_root_setup, rgt_root_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
