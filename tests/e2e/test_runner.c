/* The experiment runner end to end, through the regain command ($REGAIN_CLI)
 * on tiny runs (mbv2-tiny, one to three epochs of 256 to 512 Fashion-MNIST
 * images):
 *   - dependency order and fine-tuning: a run that starts from another run's
 *     checkpoint runs after it and starts from its weights;
 *   - caching: a second `regain run` runs nothing; changing one key re-runs
 *     that run and its dependents only;
 *   - kill and resume: `regain run` killed (SIGKILL) in its second epoch
 *     resumes, and ends bit-identical to an uninterrupted run;
 *   - a process killed inside the store's final transaction leaves the store
 *     intact (integrity_check) with the run not done, and the run resumes;
 *   - a failing run is recorded with its error, its dependents are skipped,
 *     the other runs still run;
 *   - two `regain run` processes on one store run every run exactly once;
 *   - results exported from one store and imported into another count as
 *     done there; an imported run a new run depends on is restored first,
 *     with the same weights; bad results files are refused, naming the
 *     file and the field, and leave the store as it was;
 *   - an unfinished run exported with its files resumes on a wiped machine
 *     and ends bit-identical; a carried checkpoint spares a restore; bad
 *     carried files are refused;
 *   - a recipe split by seed (--seed) over two stores merges into a third.
 * Run time: about 30 s on two cores. */
#include "test_support.h"

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "regain/checkpoint.h"
#include "regain/experiment.h"
#include "regain/safetensors.h"
#include "regain/zoo.h"

static char out[1 << 17];

/* "cd ROOT && regain ARGS" must exit 0; its output is in `out`. */
static void regain_ok(const char *args) { rgt_expect_cli("REGAIN_CLI", out, sizeof out, 0, NULL, NULL, "%s", args); }

/* The counts of the summary line "runs: N ran, N resumed, N cached, ...". */
typedef struct {
    int ran, resumed, cached, reused, other, failed, skipped;
} counts;

static counts summary(const char *text)
{
    counts c = {0};
    const char *p = strstr(text, "\nruns: "); /* a line of its own: messages say "table runs: " */
    if (!p || sscanf(p + 1,
                     "runs: %d ran, %d resumed, %d cached, %d reused from other experiments, %d by another process, "
                     "%d failed, %d skipped",
                     &c.ran, &c.resumed, &c.cached, &c.reused, &c.other, &c.failed, &c.skipped) != 7)
        fail_msg("no summary line in:\n%s", text);
    return c;
}

/* Starts "regain ARGV..." in ROOT with output to log; returns the pid. */
static pid_t spawn(const char *log, const char *a1, const char *a2, const char *a3, const char *a4)
{
    const char *cli = rgt_env("REGAIN_CLI");
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) fail_msg("fork failed");
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || chdir(rgt_root) != 0) _exit(126);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(cli, "regain", a1, a2, a3, a4, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static int wait_exit(pid_t pid)
{
    int st;
    if (waitpid(pid, &st, 0) != pid) fail_msg("waitpid failed");
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- store and checkpoint inspection ------------------------------------------------------------ */

static sqlite3 *open_db(const char *name)
{
    sqlite3 *db;
    if (sqlite3_open_v2(rgt_in_root(name), &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) fail_msg("cannot open %s", name);
    return db;
}

static void exec_sql(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) fail_msg("%s: %s", sql, msg ? msg : "?");
}

/* The first row of sql's answer, stepped to (the caller finalizes). */
static sqlite3_stmt *query_row(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    if (sqlite3_step(st) != SQLITE_ROW) fail_msg("%s: no row", sql);
    return st;
}

static int64_t query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = query_row(db, sql);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static double query_double(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = query_row(db, sql);
    double v = sqlite3_column_double(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void query_text(sqlite3 *db, const char *sql, char *buf, size_t size)
{
    sqlite3_stmt *st = query_row(db, sql);
    const unsigned char *t = sqlite3_column_text(st, 0);
    snprintf(buf, size, "%s", t ? (const char *)t : "");
    sqlite3_finalize(st);
}

static void expect_intact(sqlite3 *db)
{
    char ok[64];
    query_text(db, "PRAGMA integrity_check", ok, sizeof ok);
    assert_string_equal(ok, "ok");
}

/* `regain runs --json` as {run name -> object} lookups. */
static cJSON *runs_json(const char *store)
{
    char args[700];
    snprintf(args, sizeof args, "runs --store %s --json", store);
    regain_ok(args);
    cJSON *j = cJSON_Parse(out);
    if (!cJSON_IsArray(j)) fail_msg("regain runs --json is not a JSON array:\n%s", out);
    return j;
}

static const char *field(const cJSON *runs, const char *run, const char *key)
{
    const cJSON *o;
    cJSON_ArrayForEach(o, runs)
    {
        if (strcmp(cJSON_GetObjectItem(o, "run")->valuestring, run)) continue;
        const cJSON *v = cJSON_GetObjectItem(o, key);
        if (!cJSON_IsString(v)) fail_msg("run %s: %s is not a string", run, key);
        return v->valuestring;
    }
    fail_msg("no run %s in the JSON", run);
    return NULL;
}

static rg_st_file *open_st(const char *name)
{
    rg_error err = {0};
    rg_st_file *f = NULL;
    if (rg_st_read(rgt_in_root(name), &f, &err) != RG_OK) fail_msg("%s", err.msg);
    return f;
}

/* Largest absolute difference of the trainable weights (not BN statistics,
 * optimizer or EMA tensors) between two checkpoints of one model. */
static double weight_distance(const char *a_name, const char *b_name)
{
    rg_st_file *a = open_st(a_name), *b = open_st(b_name);
    double worst = 0.0;
    int compared = 0;
    for (int32_t i = 0; i < rg_st_count(a); i++) {
        const rg_st_tensor *ta = rg_st_at(a, i), *tb = rg_st_find(b, ta->name);
        if (strstr(ta->name, "running_") || !strncmp(ta->name, "optim.", 6) || !strncmp(ta->name, "ema.", 4)) continue;
        if (!tb || tb->nbytes != ta->nbytes) fail_msg("%s: tensor %s differs in shape", b_name, ta->name);
        const float *x = (const float *)ta->raw, *y = (const float *)tb->raw;
        for (size_t k = 0; k < ta->nbytes / sizeof(float); k++) worst = fmax(worst, fabs((double)x[k] - y[k]));
        compared++;
    }
    assert_true(compared > 10);
    rg_st_free(a);
    rg_st_free(b);
    return worst;
}

/* Every tensor of two checkpoints bit for bit. */
static void expect_identical(const char *a_name, const char *b_name)
{
    rg_st_file *a = open_st(a_name), *b = open_st(b_name);
    assert_int_equal(rg_st_count(a), rg_st_count(b));
    for (int32_t i = 0; i < rg_st_count(a); i++) {
        const rg_st_tensor *ta = rg_st_at(a, i), *tb = rg_st_find(b, ta->name);
        if (!tb || ta->nbytes != tb->nbytes || memcmp(ta->raw, tb->raw, ta->nbytes))
            fail_msg("%s and %s differ in tensor %s", a_name, b_name, ta->name);
    }
    rg_st_free(a);
    rg_st_free(b);
}

#define TINY "model = mbv2-tiny\nepochs = 1\ntrain_limit = 256\ntest_limit = 256\n"

/* ---- dependency order, fine-tuning, caching ---------------------------------------------------------- */

static const char *cache_recipe =
    "[experiment]\nname = cache\nstore = c.db\n"
    "[defaults]\n" TINY
    "[run b]\n"            /* declared first, but needs a */
    "init = @a\n"
    "lr = 1e-9\n"          /* so small that b ends with a's weights */
    "[run a]\n"
    "lr = %s\n"
    "%s"
    "[compare ab]\nbaseline = a\ntreatment = b\n";

static void write_cache_recipe(const char *lr, const char *more)
{
    char text[1024];
    snprintf(text, sizeof text, cache_recipe, lr, more);
    rgt_write_text("cache.ini", text);
}

static void test_caching_and_dependencies(void **state)
{
    (void)state;
    write_cache_recipe("0.05", "[run c]\n");
    regain_ok("run cache.ini --dry-run");
    assert_non_null(strstr(out, "run (after deps)"));
    assert_non_null(strstr(out, "3 of 3 runs to do"));
    regain_ok("run cache.ini");
    counts c = summary(out);
    assert_int_equal(c.ran, 3);
    cJSON *first = runs_json("c.db");
    assert_int_equal(cJSON_GetArraySize(first), 3);
    /* b ran after a finished, and started from a's best weights */
    assert_true(strcmp(field(first, "a", "finished_at"), field(first, "b", "started_at")) <= 0);
    double same = weight_distance("runs/cache/a/seed1/best.safetensors", "runs/cache/b/seed1/last.safetensors");
    double other = weight_distance("runs/cache/a/seed1/best.safetensors", "runs/cache/c/seed1/last.safetensors");
    if (!(same < 1e-5) || !(other > 1e-3)) fail_msg("weights: b-a %g (want ~0), c-a %g (want > 0)", same, other);
    sqlite3 *db = open_db("c.db");
    assert_int_equal(query_int(db, "SELECT count(*) FROM runs WHERE status = 'done'"), 3);
    assert_int_equal(query_int(db, "SELECT count(*) FROM comparisons WHERE baseline = 'a' AND treatment = 'b'"), 1);
    assert_int_equal(query_int(db, "SELECT count(*) FROM artifacts"), 6);
    assert_int_equal(query_int(db, "SELECT count(*) FROM epoch_metrics WHERE test_top1 BETWEEN 0 AND 1"), 3);
    assert_int_equal(query_int(db, "SELECT count(*) FROM final_metrics WHERE params = 132938 AND macs = 8762976 AND "
                                   "model_bytes > 4 * 132938 AND latency_ms > 0 AND confusion LIKE '[[%'"),
                     3);
    assert_int_equal(query_int(db, "SELECT count(*) FROM environment WHERE length(cpu_model) > 0 AND seed = 1"), 3);
    sqlite3_close(db);

    /* the same recipe again: nothing runs */
    regain_ok("run cache.ini");
    c = summary(out);
    assert_int_equal(c.ran + c.resumed, 0);
    assert_int_equal(c.cached, 3);

    /* one key of a changes: a and b (its dependent) run again, c does not */
    write_cache_recipe("0.04", "[run c]\n");
    regain_ok("run cache.ini");
    c = summary(out);
    assert_int_equal(c.ran, 2);
    assert_int_equal(c.cached, 1);
    cJSON *second = runs_json("c.db");
    assert_string_not_equal(field(first, "a", "config_hash"), field(second, "a", "config_hash"));
    assert_string_not_equal(field(first, "b", "config_hash"), field(second, "b", "config_hash"));
    assert_string_equal(field(first, "c", "config_hash"), field(second, "c", "config_hash"));
    assert_string_equal(field(first, "c", "finished_at"), field(second, "c", "finished_at"));
    assert_string_not_equal(field(first, "a", "finished_at"), field(second, "a", "finished_at"));
    cJSON_Delete(first);
    cJSON_Delete(second);
    /* the listing filters */
    regain_ok("runs --store c.db --name b --status done");
    assert_non_null(strstr(out, "cache"));
    assert_null(strstr(out, " c "));
    /* a runs again alone with another key: b, which started from the old
     * a, is no longer reported as finished until it runs again */
    write_cache_recipe("0.03", "[run c]\n");
    regain_ok("run cache.ini --only a");
    assert_int_equal(summary(out).ran, 1);
    db = open_db("c.db");
    assert_int_equal(query_int(db, "SELECT count(*) FROM runs WHERE name = 'b' AND status = 'pending'"), 1);
    assert_int_equal(query_int(db, "SELECT count(*) FROM runs WHERE status = 'done'"), 2);
    sqlite3_close(db);
    regain_ok("run cache.ini");
    c = summary(out);
    assert_int_equal(c.ran, 1);
    assert_int_equal(c.cached, 2);
    /* a run taken out of the recipe leaves the store (nothing runs) */
    write_cache_recipe("0.03", "");
    regain_ok("run cache.ini");
    assert_int_equal(summary(out).cached, 2);
    db = open_db("c.db");
    assert_int_equal(query_int(db, "SELECT count(*) FROM runs"), 2);
    assert_int_equal(query_int(db, "SELECT count(*) FROM final_metrics"), 2);
    sqlite3_close(db);
}

/* ---- reuse across experiments ------------------------------------------------------------------------- */

/* A run another experiment of the store has done with the same content hash
 * is copied, not run again: its files (under this experiment's run
 * directory) and records; runs that depend on it start from the copy. A
 * donor whose files changed is passed over. */
static void test_reuse_across_experiments(void **state)
{
    (void)state;
    rgt_write_text("donor.ini", "[experiment]\nname = donor\nstore = r.db\n[defaults]\n" TINY "[run base]\nlr = 0.05\n");
    const char *taker = "[experiment]\nname = %s\nstore = r.db\n[defaults]\n" TINY
                        "[run float]\nlr = 0.05\n[run tuned]\ninit = @float\nlr = 1e-9\n[run other]\nlr = 0.04\n";
    char text[1024];
    snprintf(text, sizeof text, taker, "taker");
    rgt_write_text("taker.ini", text);
    snprintf(text, sizeof text, taker, "taker2");
    rgt_write_text("taker2.ini", text);

    regain_ok("run donor.ini");
    assert_int_equal(summary(out).ran, 1);
    regain_ok("run taker.ini --dry-run");
    assert_non_null(strstr(out, "from donor/base"));
    assert_non_null(strstr(out, "2 of 3 runs to do"));
    regain_ok("run taker.ini");
    counts c = summary(out);
    assert_int_equal(c.reused, 1);
    assert_int_equal(c.ran, 2);

    sqlite3 *db = open_db("r.db");
    expect_intact(db);
    /* the same hash, metrics and artifact checksums; the copy's paths are its own */
    assert_int_equal(query_int(db, "SELECT count(*) FROM runs d JOIN runs t ON t.config_hash = d.config_hash "
                                   "WHERE d.name = 'base' AND t.name = 'float' AND t.status = 'done' "
                                   "AND t.finished_at = d.finished_at"),
                     1);
    assert_int_equal(query_int(db, "SELECT count(*) FROM final_metrics f JOIN runs r ON r.id = f.run_id "
                                   "JOIN final_metrics g JOIN runs d ON d.id = g.run_id "
                                   "WHERE r.name = 'float' AND d.name = 'base' AND f.test_top1 = g.test_top1 "
                                   "AND f.confusion = g.confusion"),
                     1);
    assert_int_equal(query_int(db, "SELECT count(*) FROM epoch_metrics e JOIN runs r ON r.id = e.run_id "
                                   "WHERE r.name = 'float'"),
                     1);
    assert_int_equal(query_int(db, "SELECT count(*) FROM artifacts a JOIN runs r ON r.id = a.run_id "
                                   "JOIN artifacts b JOIN runs d ON d.id = b.run_id WHERE r.name = 'float' AND "
                                   "d.name = 'base' AND a.kind = b.kind AND a.sha256 = b.sha256 AND "
                                   "a.path LIKE 'runs/taker/float/seed1/%'"),
                     2);
    assert_int_equal(query_int(db, "SELECT count(*) FROM environment e JOIN runs r ON r.id = e.run_id "
                                   "WHERE r.name = 'float'"),
                     1);
    sqlite3_close(db);
    /* tuned started from the copy of base's best weights */
    double d = weight_distance("runs/donor/base/seed1/best.safetensors", "runs/taker/tuned/seed1/last.safetensors");
    if (!(d < 1e-5)) fail_msg("tuned is %g away from the donor's weights", d);

    /* again: all three are this experiment's own now */
    regain_ok("run taker.ini");
    assert_int_equal(summary(out).cached, 3);

    /* a donor whose checkpoint changed is passed over for an intact one */
    char best[1200];
    snprintf(best, sizeof best, "%s/runs/donor/base/seed1/best.safetensors", rgt_root);
    assert_int_equal(unlink(best), 0);
    regain_ok("run taker2.ini --dry-run");
    assert_non_null(strstr(out, "from taker/float"));
    assert_null(strstr(out, "from donor/base"));
    regain_ok("run taker2.ini");
    c = summary(out);
    assert_int_equal(c.reused, 3);
    assert_int_equal(c.ran, 0);

    /* the newest donor broken (taker2's copy): an older intact one stands in */
    snprintf(best, sizeof best, "%s/runs/taker2/float/seed1/best.safetensors", rgt_root);
    assert_int_equal(unlink(best), 0);
    snprintf(text, sizeof text, taker, "taker3");
    rgt_write_text("taker3.ini", text);
    regain_ok("run taker3.ini --dry-run");
    if (!strstr(out, "from taker/float")) fail_msg("the intact donor taker/float is not used:\n%s", out);
    regain_ok("run taker3.ini");
    assert_int_equal(summary(out).reused, 3);
}

/* ---- kill and resume ------------------------------------------------------------------------------------ */

static const char *kill_recipe = "[experiment]\nname = %s\nstore = %s\n"
                                 "[defaults]\nmodel = mbv2-tiny\nepochs = 3\ntrain_limit = 512\ntest_limit = 128\n"
                                 "[run a]\n";

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Whether store `db_name` answers `sql` with a count above 0 (0 while it
 * is busy or not there yet). */
static int store_has(const char *db_name, const char *sql)
{
    sqlite3 *db;
    int64_t n = 0;
    if (sqlite3_open_v2(rgt_in_root(db_name), &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return n > 0;
}

/* Waits until the checkpoint `last` (under the test root) of the run that
 * process pid runs appears, in its second epoch, and, when db_name is not
 * NULL, the store answers `sql` with a count above 0 (the trainer writes
 * the checkpoint before the runner records the epoch). */
static void wait_for_checkpoint(pid_t pid, const char *last, const char *db_name, const char *sql)
{
    char path[700];
    snprintf(path, sizeof path, "%s", rgt_in_root(last));
    struct stat sb;
    const char *also = db_name ? " and recorded epoch" : "";
    double t0 = now_s();
    while (stat(path, &sb) != 0 || (db_name && !store_has(db_name, sql))) {
        if (now_s() - t0 > 120) {
            kill(pid, SIGKILL);
            fail_msg("no checkpoint%s after 120 s", also);
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) fail_msg("regain run ended before its first checkpoint%s", also);
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
}

/* `regain run RECIPE`, killed (SIGKILL) as soon as wait_for_checkpoint
 * returns. */
static void run_killed_after(const char *recipe, const char *log, const char *last, const char *db_name,
                             const char *sql)
{
    pid_t pid = spawn(rgt_in_root(log), "run", recipe, NULL, NULL);
    wait_for_checkpoint(pid, last, db_name, sql);
    kill(pid, SIGKILL);
    assert_int_equal(wait_exit(pid), 128 + SIGKILL);
}

static void test_kill_and_resume(void **state)
{
    (void)state;
    char text[512];
    snprintf(text, sizeof text, kill_recipe, "killed", "k.db");
    rgt_write_text("kill.ini", text);
    /* last.safetensors appears when epoch 1 ends */
    run_killed_after("kill.ini", "kill.log", "runs/killed/a/seed1/last.safetensors", NULL, NULL);
    sqlite3 *db = open_db("k.db");
    expect_intact(db);
    char status[32];
    query_text(db, "SELECT status FROM runs", status, sizeof status);
    assert_string_equal(status, "running");
    sqlite3_close(db);
    /* what a kill during a checkpoint's write leaves, and a file of the
     * user's that only looks alike */
    rgt_write_text("runs/killed/a/seed1/last.safetensors.tmp.99999.99999", "half");
    rgt_write_text("runs/killed/a/seed1/notes.tmp.txt", "mine");

    regain_ok("run kill.ini");
    assert_non_null(strstr(out, "resuming after epoch"));
    counts c = summary(out);
    assert_int_equal(c.resumed, 1);
    assert_int_equal(access(rgt_in_root("runs/killed/a/seed1/last.safetensors.tmp.99999.99999"), F_OK), -1);
    assert_int_equal(access(rgt_in_root("runs/killed/a/seed1/notes.tmp.txt"), F_OK), 0);
    db = open_db("k.db");
    assert_int_equal(query_int(db, "SELECT count(*) FROM epoch_metrics"), 3);
    assert_int_equal(query_int(db, "SELECT count(*) FROM runs WHERE status = 'done' AND wall_s > 0"), 1);
    sqlite3_close(db);

    /* the same run uninterrupted, elsewhere: the same weights, bit for bit */
    snprintf(text, sizeof text, kill_recipe, "whole", "w.db");
    rgt_write_text("whole.ini", text);
    regain_ok("run whole.ini");
    assert_int_equal(summary(out).ran, 1);
    expect_identical("runs/killed/a/seed1/last.safetensors", "runs/whole/a/seed1/last.safetensors");
    expect_identical("runs/killed/a/seed1/best.safetensors", "runs/whole/a/seed1/best.safetensors");
}

/* Ctrl-C (SIGINT): the run stops after its current step with its state
 * saved in the middle of the epoch, `regain run` exits with 130, and the
 * next one resumes from the next batch and ends bit for bit as an
 * uninterrupted run. With --jobs, a signal to the parent alone reaches the
 * runs through it. */
static void test_stop_and_resume(void **state)
{
    (void)state;
    char text[512];
    snprintf(text, sizeof text, kill_recipe, "stopped", "s.db");
    rgt_write_text("stop.ini", text);
    pid_t pid = spawn(rgt_in_root("stop.log"), "run", "stop.ini", NULL, NULL);
    wait_for_checkpoint(pid, "runs/stopped/a/seed1/last.safetensors", "s.db", "SELECT count(*) FROM epoch_metrics");
    sqlite3 *db = open_db("s.db");
    double wall_epoch1 = query_double(db, "SELECT wall_s FROM runs");
    sqlite3_close(db);
    kill(pid, SIGINT);
    assert_int_equal(wait_exit(pid), 130);
    size_t n;
    char *log = rgt_read_file(rgt_in_root("stop.log"), &n);
    if (!strstr(log, "a seed 1: stopped: stopped in epoch") || !strstr(log, "goes on where it stopped"))
        fail_msg("stop.log:\n%s", log);
    free(log);
    db = open_db("s.db");
    char status[32];
    query_text(db, "SELECT status FROM runs", status, sizeof status);
    assert_string_equal(status, "running");
    /* the time up to the stop is counted, not only up to epoch 1's end */
    assert_true(query_double(db, "SELECT wall_s FROM runs") > wall_epoch1);
    sqlite3_close(db);
    rg_st_file *f = NULL;
    rg_error err = {0};
    assert_int_equal(rg_st_read(rgt_in_root("runs/stopped/a/seed1/last.safetensors"), &f, &err), RG_OK);
    assert_non_null(rg_st_meta_get(f, "regain.epoch_part"));
    rg_st_free(f);

    regain_ok("run stop.ini");
    if (!strstr(out, "resuming after epoch") || !strstr(out, "batches of epoch")) fail_msg("%s", out);
    assert_int_equal(summary(out).resumed, 1);
    snprintf(text, sizeof text, kill_recipe, "unstopped", "u.db");
    rgt_write_text("unstopped.ini", text);
    regain_ok("run unstopped.ini");
    expect_identical("runs/stopped/a/seed1/last.safetensors", "runs/unstopped/a/seed1/last.safetensors");
    expect_identical("runs/stopped/a/seed1/best.safetensors", "runs/unstopped/a/seed1/best.safetensors");

    /* --jobs 2: the signal to the parent goes on to the runs' processes.
     * b has twice a's epochs, so that it is still running when a's first
     * checkpoint appears (with equal lengths a busy machine let b finish
     * before the signal) */
    rgt_write_text("stop2.ini", "[experiment]\nname = stop2\nstore = s2.db\n[defaults]\nmodel = mbv2-tiny\n"
                                "epochs = 3\ntrain_limit = 512\ntest_limit = 128\n[run a]\n[run b]\nlr = 0.05\n"
                                "epochs = 6\n");
    pid = spawn(rgt_in_root("stop2.log"), "run", "stop2.ini", "--jobs", "2");
    wait_for_checkpoint(pid, "runs/stop2/a/seed1/last.safetensors", NULL, NULL);
    kill(pid, SIGINT);
    assert_int_equal(wait_exit(pid), 130);
    log = rgt_read_file(rgt_in_root("stop2.log"), &n);
    counts c = summary(log);
    free(log);
    assert_int_equal(c.ran + c.failed, 0);
    regain_ok("run stop2.ini");
    c = summary(out);
    assert_int_equal(c.resumed + c.ran, 2);
    assert_int_equal(c.failed, 0);
}

/* ---- a kill inside the store's final transaction ------------------------------------------------------------ */

static void die_inside(const char *point)
{
    if (!strcmp(point, "finish:artifacts")) raise(SIGKILL);
}

static void test_kill_inside_store_write(void **state)
{
    (void)state;
    rgt_write_text("fault.ini", "[experiment]\nname = fault\nstore = f.db\n[defaults]\n" TINY "[run a]\n");
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        /* the runner in this child; the hook kills it between the writes of
         * the transaction that marks the run done */
        if (chdir(rgt_root) != 0) _exit(126);
        rg_store_set_fault_hook(die_inside);
        rg_error err = {0};
        rg_exp_options o = {.jobs = 1};
        rg_experiment *x;
        if (rg_exp_open("fault.ini", &o, &x, &err) || rg_exp_execute(x, NULL, &err)) _exit(2);
        _exit(0);   /* not reached: the hook kills the process */
    }
    assert_int_equal(wait_exit(pid), 128 + SIGKILL);
    sqlite3 *db = open_db("f.db");
    expect_intact(db);
    char status[32];
    query_text(db, "SELECT status FROM runs", status, sizeof status);
    assert_string_equal(status, "running");
    /* nothing of the interrupted transaction is visible */
    assert_int_equal(query_int(db, "SELECT count(*) FROM final_metrics"), 0);
    assert_int_equal(query_int(db, "SELECT count(*) FROM artifacts"), 0);
    assert_int_equal(query_int(db, "SELECT count(*) FROM environment"), 0);
    sqlite3_close(db);
    /* the next run completes it from its checkpoint (all epochs were done) */
    regain_ok("run fault.ini");
    assert_int_equal(summary(out).resumed, 1);
    db = open_db("f.db");
    expect_intact(db);
    assert_int_equal(query_int(db, "SELECT count(*) FROM runs r JOIN final_metrics f ON f.run_id = r.id "
                                   "JOIN environment e ON e.run_id = r.id WHERE r.status = 'done'"),
                     1);
    assert_int_equal(query_int(db, "SELECT count(*) FROM artifacts"), 2);
    sqlite3_close(db);
}

/* ---- cost estimates ---------------------------------------------------------------------------------------- */

/* The plan of a recipe in the test root (rg_exp_open: nothing runs but the
 * timing of models the store has no throughput for). */
static rg_experiment *plan_of(const char *recipe)
{
    rg_error err = {0};
    rg_exp_options o = {.jobs = 1};
    rg_experiment *x = NULL;
    char cwd[1024];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(rgt_root), 0);
    rg_status st = rg_exp_open(recipe, &o, &x, &err);
    assert_int_equal(chdir(cwd), 0);
    if (st) fail_msg("rg_exp_open %s: %s", recipe, err.msg);
    return x;
}

/* A distillation run costs its teacher's forward passes on top of its own
 * training: every epoch when images are augmented, once when nothing is
 * and the teacher's outputs are cached. A teacher given as a checkpoint
 * file costs what the same model costs as a run of the recipe (the model
 * its trainer recorded). Nothing runs but a few timed training steps of
 * each model: only the plan. */
static void test_estimate_counts_teacher(void **state)
{
    (void)state;
    rg_graph *t = NULL;
    CHECK(rg_zoo_build("resnet20", 28, 28, 1, 10, &t, &E));
    rg_st_meta meta[] = {{"regain.model", "resnet20"}};
    CHECK(rg_checkpoint_save(rgt_in_root("t.safetensors"), t, NULL, NULL, meta, 1, &E));
    rg_graph_free(t);
    rgt_write_text("est.ini", "[experiment]\nname = est\nstore = est.db\n[defaults]\nmodel = mbv2-tiny\nepochs = 4\n"
                              "train_limit = 20000\ntest_limit = 256\ncrop_pad = 0\nhflip = 0\n"
                              "[run t]\nmodel = resnet20\n[run plain]\n[run kd]\nteacher = @t\nkd_alpha = 0.9\n"
                              "[run kd-crop]\nteacher = @t\nkd_alpha = 0.9\ncrop_pad = 2\n"
                              "[run kd-file]\nteacher = t.safetensors\nkd_alpha = 0.9\n");
    rg_experiment *x = plan_of("est.ini");
    double teacher = -1, plain = -1, kd = -1, kd_crop = -1, kd_file = -1;
    for (int32_t i = 0; i < x->n_items; i++) {
        const char *name = x->res->runs[x->items[i].run].name;
        /* no store: each model's training steps were timed on the spot */
        assert_int_equal(x->items[i].est_rate, RG_EST_TIMED);
        if (!strcmp(name, "t")) teacher = x->items[i].est_s;
        if (!strcmp(name, "plain")) plain = x->items[i].est_s;
        if (!strcmp(name, "kd")) kd = x->items[i].est_s;
        if (!strcmp(name, "kd-crop")) kd_crop = x->items[i].est_s;
        if (!strcmp(name, "kd-file")) kd_file = x->items[i].est_s;
    }
    rg_exp_close(x);
    if (fabs(kd_file - kd) > 1e-9 * kd) fail_msg("teacher file estimated %.3f s, as a run %.3f s", kd_file, kd);
    /* The teacher's passes over the 20,000 images: a third of a training
     * step of resnet20 each, at the training rate its own run t was
     * estimated with (4 epochs of 20,000 images and a third of 256 test
     * images, plus 3 s). Derived from the same timed rate, not compared
     * with another timing, so that a loaded machine cannot break it. */
    assert_true(teacher > 3.0 && plain > 0);
    double teacher_ips = 4.0 * (20000.0 + 256.0 / 3.0) / (teacher - 3.0);
    double once = kd - plain, every_epoch = kd_crop - plain, want = 20000.0 / teacher_ips / 3.0;
    if (!(fabs(once - want) < 1e-6 * want)) fail_msg("teacher passes estimated %.4f s, want %.4f s", once, want);
    assert_true(fabs(every_epoch - 4.0 * once) < 1e-6 * every_epoch);
}

/* A run to resume is estimated for the epochs it has left: seed 1, killed
 * after its first epochs, against seed 2 of the same run, not started, in
 * one plan (the same throughput). */
static void test_estimate_of_a_resume(void **state)
{
    (void)state;
    rgt_write_text("left.ini", "[experiment]\nname = left\nstore = l.db\nseeds = 1, 2\n[defaults]\n"
                               "model = mbv2-tiny\nepochs = 3\ntrain_limit = 512\ntest_limit = 128\n[run a]\n");
    const char *epochs = "SELECT count(*) FROM epoch_metrics e JOIN runs r ON r.id = e.run_id WHERE r.seed = 1";
    run_killed_after("left.ini", "left.log", "runs/left/a/seed1/last.safetensors", "l.db", epochs);
    sqlite3 *db = open_db("l.db");
    int done = (int)query_int(db, epochs);
    sqlite3_close(db);
    assert_true(done >= 1 && done < 3);
    rg_experiment *x = plan_of("left.ini");
    assert_int_equal(x->n_items, 2);
    const rg_exp_item *killed = x->items[0].seed == 1 ? &x->items[0] : &x->items[1];
    const rg_exp_item *fresh = killed == &x->items[0] ? &x->items[1] : &x->items[0];
    assert_int_equal(killed->plan, RG_PLAN_RESUME);
    assert_int_equal(fresh->plan, RG_PLAN_RUN);
    double want = fresh->est_s * (3 - done) / 3.0;
    if (fabs(killed->est_s - want) > 1e-9 * want)
        fail_msg("resume estimated %.3f s, want %.3f (%d of 3 epochs done)", killed->est_s, want, done);
    rg_exp_close(x);
}

/* ---- a run that fails ---------------------------------------------------------------------------------------- */

static void test_failed_run(void **state)
{
    (void)state;
    rgt_write_text("broken.spec", "input h=28 w=28 c=1\nconv name=x c=4 k=3 s=1 bn act=sparkle\n");
    rgt_write_text("fail.ini", "[experiment]\nname = fail\nstore = x.db\n[defaults]\n" TINY
                           "[run broken]\nmodel = broken.spec\n[run after]\ninit = @broken\n[run fine]\n");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' run fail.ini", rgt_root, rgt_env("REGAIN_CLI"));
    int code = rgt_run(cmd, out, sizeof out);
    if (code != 1) fail_msg("exit code %d, expected 1:\n%s", code, out);
    counts c = summary(out);
    /* the others still run; what depends on the failed run is skipped */
    assert_int_equal(c.failed, 1);
    assert_int_equal(c.skipped, 1);
    assert_int_equal(c.ran, 1);
    assert_non_null(strstr(out, "broken.spec"));
    assert_non_null(strstr(out, "needs run broken seed 1"));
    sqlite3 *db = open_db("x.db");
    char text[512];
    query_text(db, "SELECT status || ' ' || error FROM runs WHERE name = 'broken'", text, sizeof text);
    if (strncmp(text, "failed ", 7) || !strstr(text, "broken.spec")) fail_msg("broken: %s", text);
    query_text(db, "SELECT status FROM runs WHERE name = 'after'", text, sizeof text);
    assert_string_equal(text, "pending");
    sqlite3_close(db);
}

/* ---- two processes, one store ---------------------------------------------------------------------------------- */

static void test_concurrent_runs(void **state)
{
    (void)state;
    rgt_write_text("conc.ini", "[experiment]\nname = conc\nstore = two.db\n[defaults]\n" TINY
                           "[run a]\n[run b]\nlr = 0.05\n[run c]\nlr = 0.02\n[run d]\ninit = @a\n");
    char log1[700], log2[700];
    snprintf(log1, sizeof log1, "%s", rgt_in_root("one.log"));
    snprintf(log2, sizeof log2, "%s", rgt_in_root("two.log"));
    pid_t p1 = spawn(log1, "run", "conc.ini", NULL, NULL);
    pid_t p2 = spawn(log2, "run", "conc.ini", "--jobs", "2");
    int c1 = wait_exit(p1), c2 = wait_exit(p2);
    size_t n;
    char *o1 = rgt_read_file(log1, &n), *o2 = rgt_read_file(log2, &n);
    if (c1 || c2) fail_msg("exit codes %d and %d:\n%s\n---\n%s", c1, c2, o1, o2);
    counts a = summary(o1), b = summary(o2);
    /* every run performed exactly once, by one process or the other */
    if (a.ran + b.ran != 4 || a.ran + a.cached + a.other != 4 || b.ran + b.cached + b.other != 4)
        fail_msg("runs performed: %d + %d (want 4 in all):\n%s\n---\n%s", a.ran, b.ran, o1, o2);
    free(o1);
    free(o2);
    sqlite3 *db = open_db("two.db");
    expect_intact(db);
    assert_int_equal(query_int(db, "SELECT count(*) FROM runs WHERE status = 'done'"), 4);
    assert_int_equal(query_int(db, "SELECT count(*) FROM final_metrics"), 4);
    assert_int_equal(query_int(db, "SELECT count(*) FROM experiments"), 1);
    sqlite3_close(db);
}

/* Runs forked by --jobs with two threads each, from a process that timed
 * the model for its estimate (nothing on record in a new store): the timing
 * runs in a child of its own, since GNU OpenMP's threads do not survive a
 * fork (the runs hung before it did). */
static void test_jobs_after_timing(void **state)
{
    (void)state;
    rgt_write_text("jobs.ini", "[experiment]\nname = jobs\nstore = jobs.db\n[defaults]\n" TINY
                               "batch = 64\n[run a]\n[run b]\nlr = 0.05\n");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cd '%s' && timeout 120 '%s' run jobs.ini --jobs 2 --threads 4", rgt_root,
             rgt_env("REGAIN_CLI"));
    int code = rgt_run(cmd, out, sizeof out);
    if (code) fail_msg("exit code %d (124: it hung):\n%s", code, out);
    assert_int_equal(summary(out).ran, 2);

    /* started with SIGCHLD ignored (the kernel then reaps children unseen,
     * and the runner waited for them forever) */
    rgt_write_text("jobs2.ini", "[experiment]\nname = jobs2\nstore = jobs2.db\n[defaults]\n" TINY
                                "batch = 64\n[run a]\n[run b]\nlr = 0.05\n");
    snprintf(cmd, sizeof cmd, "cd '%s' && timeout 120 bash -c \"trap '' CHLD; exec '%s' run jobs2.ini --jobs 2\"",
             rgt_root, rgt_env("REGAIN_CLI"));
    code = rgt_run(cmd, out, sizeof out);
    if (code || summary(out).ran != 2) fail_msg("SIGCHLD ignored: exit code %d (124: it hung):\n%s", code, out);
}

/* ---- moving results between stores ------------------------------------------------------------------ */

static const char *move_recipe = "[experiment]\nname = move\nstore = m1.db\n[defaults]\n" TINY
                                 "[run a]\nlr = 0.05\n[run b]\ninit = @a\nlr = 1e-9\n[run c]\nlr = 0.04\n"
                                 "[compare ab]\nbaseline = a\ntreatment = b\n";

/* "regain ARGS" must fail with exit code `code` and name both words. */
static void regain_refused(int code, const char *word1, const char *word2, const char *args)
{
    rgt_expect_cli("REGAIN_CLI", out, sizeof out, code, word1, word2, "%s", args);
}

static void test_export_import(void **state)
{
    (void)state;
    rgt_write_text("move.ini", move_recipe);
    regain_ok("run move.ini");
    assert_int_equal(summary(out).ran, 3);
    regain_ok("runs export move --store m1.db --out move.json");
    assert_non_null(strstr(out, "3 finished runs"));
    /* the other machine has the results file, not the checkpoints */
    char from[700], to[700];
    snprintf(from, sizeof from, "%s", rgt_in_root("runs/move"));
    snprintf(to, sizeof to, "%s", rgt_in_root("move-machine1"));
    assert_int_equal(rename(from, to), 0);

    regain_ok("runs import move.json --store m2.db");
    assert_non_null(strstr(out, "3 runs imported, 0 already here"));
    sqlite3 *a = open_db("m1.db"), *b = open_db("m2.db");
    expect_intact(b);
    /* every recorded row came along, every number bit for bit (17 digits) */
    static const char *const same_sql[] = {
        "SELECT count(*) || ' ' || (SELECT count(*) FROM comparisons) FROM runs WHERE status = 'done'",
        "SELECT group_concat(x, '|') FROM (SELECT r.name || r.seed || r.kind || r.config_hash || r.config_text || "
        "r.run_dir || r.started_at || r.finished_at || printf('%.17g', r.wall_s) AS x FROM runs r ORDER BY r.name)",
        "SELECT group_concat(x, '|') FROM (SELECT r.name || printf(' %d %.17g %.17g %.17g %.17g %.17g %.17g %.17g', "
        "e.epoch, e.lr, e.train_loss, e.train_top1, e.test_loss, e.test_top1, e.seconds, e.images_per_s) AS x "
        "FROM epoch_metrics e JOIN runs r ON r.id = e.run_id ORDER BY r.name, e.epoch)",
        "SELECT group_concat(x, '|') FROM (SELECT r.name || printf(' %.17g %.17g %.17g %d %d %d %d %.17g %.17g ', "
        "f.test_top1, f.test_loss, f.best_top1, f.best_epoch, f.params, f.macs, f.model_bytes, f.latency_ms, "
        "f.train_s) || f.confusion AS x FROM final_metrics f JOIN runs r ON r.id = f.run_id ORDER BY r.name)",
        "SELECT group_concat(x, '|') FROM (SELECT r.name || a.kind || a.path || a.sha256 || a.bytes AS x "
        "FROM artifacts a JOIN runs r ON r.id = a.run_id ORDER BY r.name, a.kind)",
        "SELECT group_concat(x, '|') FROM (SELECT r.name || v.git_commit || v.compiler || v.cpu_model || "
        "v.cpu_features || v.threads || v.seed || v.hostname || v.regain_version AS x "
        "FROM environment v JOIN runs r ON r.id = v.run_id ORDER BY r.name)",
        "SELECT group_concat(name || baseline || treatment, '|') FROM comparisons",
    };
    static char ta[16384], tb[16384];
    for (size_t i = 0; i < sizeof same_sql / sizeof same_sql[0]; i++) {
        query_text(a, same_sql[i], ta, sizeof ta);
        query_text(b, same_sql[i], tb, sizeof tb);
        if (!ta[0] || strcmp(ta, tb)) fail_msg("%s\nbefore: %s\nafter:  %s", same_sql[i], ta, tb);
    }
    assert_int_equal(query_int(b, "SELECT count(*) FROM runs WHERE imported_from = 'move.json'"), 3);
    sqlite3_close(a);
    regain_ok("runs --store m2.db");
    assert_non_null(strstr(out, "imported"));
    /* they count as done: nothing runs, and the report reports them */
    regain_ok("run move.ini --store m2.db --dry-run");
    assert_non_null(strstr(out, "cached (imported)"));
    assert_non_null(strstr(out, "0 of 3 runs to do"));
    regain_ok("report move --store m2.db --out move-report");
    size_t len;
    char *report = rgt_read_file(rgt_in_root("move-report/results.json"), &len);
    cJSON *rj = cJSON_Parse(report);
    free(report);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(rj, "runs")), 3);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(rj, "comparisons")), 1);
    cJSON_Delete(rj);
    /* importing again changes nothing */
    regain_ok("runs import move.json --store m2.db");
    assert_non_null(strstr(out, "0 runs imported, 3 already here"));

    /* a new run starts from a's checkpoint: a runs again first and gives
     * back the same weights; b, whose hash counts a by its content hash,
     * stays cached */
    char text[1024];
    snprintf(text, sizeof text, "%s[run d]\ninit = @a\n", move_recipe);
    rgt_write_text("move.ini", text);
    regain_ok("run move.ini --store m2.db --dry-run");
    assert_non_null(strstr(out, "run (restore)"));
    assert_non_null(strstr(out, "2 of 4 runs to do"));
    regain_ok("run move.ini --store m2.db");
    counts c = summary(out);
    assert_int_equal(c.ran, 2);
    assert_int_equal(c.cached, 2);
    expect_identical("move-machine1/a/seed1/best.safetensors", "runs/move/a/seed1/best.safetensors");
    assert_int_equal(query_int(b, "SELECT count(*) FROM runs WHERE imported_from IS NOT NULL"), 2);
    sqlite3_close(b);

    /* a chain of imported runs on a third machine: e starts from b, which
     * starts from a; both come back first (b counted as done before) */
    snprintf(from, sizeof from, "%s", rgt_in_root("runs/move"));
    snprintf(to, sizeof to, "%s", rgt_in_root("move-machine2"));
    assert_int_equal(rename(from, to), 0);
    regain_ok("runs import move.json --store m4.db");
    snprintf(text, sizeof text, "%s[run e]\ninit = @b\n", move_recipe);
    rgt_write_text("move.ini", text);
    regain_ok("run move.ini --store m4.db --dry-run");
    if (!strstr(out, "3 of 4 runs to do")) fail_msg("a, b and e to do:\n%s", out);
    regain_ok("run move.ini --store m4.db");
    c = summary(out);
    assert_int_equal(c.ran, 3);
    assert_int_equal(c.cached, 1);
    expect_identical("move-machine1/b/seed1/best.safetensors", "runs/move/b/seed1/best.safetensors");

    /* bad files: refused with the file and the field named, store unchanged */
    rgt_write_text("bad1.json", "{\"format\": \"regain results\", \"version\": 1, \"runs\": [");
    regain_refused(4, "bad1.json", "not valid JSON", "runs import bad1.json --store m3.db");
    rgt_write_text("bad2.json", "{\"format\": \"other\", \"version\": 1, \"runs\": []}");
    regain_refused(4, "bad2.json", "'format'", "runs import bad2.json --store m3.db");
    rgt_write_text("bad3.json", "{\"format\": \"regain results\", \"version\": 7, \"runs\": []}");
    regain_refused(4, "bad3.json", "'version' 7", "runs import bad3.json --store m3.db");
    size_t n;
    char *good = rgt_read_file(rgt_in_root("move.json"), &n);
    cJSON *j = cJSON_Parse(good);
    free(good);
    cJSON *run1 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "runs"), 1);
    cJSON_ReplaceItemInObject(cJSON_GetArrayItem(cJSON_GetObjectItem(run1, "epoch_metrics"), 0), "lr",
                              cJSON_CreateString("fast"));
    char *bad = cJSON_Print(j);
    rgt_write_text("bad4.json", bad);
    free(bad);
    regain_refused(4, "bad4.json", "runs[1].epoch_metrics[0].lr: not a number", "runs import bad4.json --store m3.db");
    cJSON_ReplaceItemInObject(cJSON_GetArrayItem(cJSON_GetObjectItem(run1, "epoch_metrics"), 0), "lr",
                              cJSON_CreateNumber(0.1));
    cJSON_AddNumberToObject(run1, "speed", 3);
    bad = cJSON_Print(j);
    rgt_write_text("bad5.json", bad);
    free(bad);
    regain_refused(4, "bad5.json", "runs[1]: unknown field 'speed'", "runs import bad5.json --store m3.db");
    cJSON_DeleteItemFromObject(run1, "speed");
    /* an integral seed beyond what converts (undefined behaviour before) */
    cJSON *seed = cJSON_DetachItemFromObject(run1, "seed");
    cJSON_AddNumberToObject(run1, "seed", 1e300);
    bad = cJSON_Print(j);
    rgt_write_text("bad7.json", bad);
    free(bad);
    regain_refused(4, "bad7.json", "runs[1]: 'seed' is out of range", "runs import bad7.json --store m3.db");
    cJSON_DeleteItemFromObject(run1, "seed");
    cJSON_AddItemToObject(run1, "seed", seed);
    cJSON_DeleteItemFromObject(run1, "config_text");
    bad = cJSON_Print(j);
    rgt_write_text("bad6.json", bad);
    free(bad);
    regain_refused(4, "bad6.json", "runs[1]: NOT NULL constraint failed: runs.config_text",
                   "runs import bad6.json --store m3.db");
    cJSON_Delete(j);
    /* the failed imports wrote nothing (run 0 of bad6.json was fine) */
    sqlite3 *m3 = open_db("m3.db");
    assert_int_equal(query_int(m3, "SELECT count(*) FROM runs"), 0);
    assert_int_equal(query_int(m3, "SELECT count(*) FROM experiments"), 0);
    sqlite3_close(m3);
    regain_refused(2, "--out", NULL, "runs export move --store m2.db");
    regain_refused(5, "nosuch", NULL, "runs export nosuch --store m2.db --out x.json");
}

/* Runs that travel with their checkpoints (runs export/import --files): an
 * unfinished run moves to a wiped machine and resumes there, ending bit for
 * bit as an uninterrupted run; a finished run's carried checkpoint spares a
 * dependent's restore; a run a process holds is left out; carried files
 * that are not what the record says are refused. */
static const char *carry_recipe = "[experiment]\nname = %s\nstore = %s\n"
                                  "[defaults]\nmodel = mbv2-tiny\nepochs = 3\ntrain_limit = 512\ntest_limit = 128\n"
                                  "[run a]\n[run b]\ninit = @a\nepochs = 1\nlr = 1e-9\n%s";

static void write_carry_recipe(const char *file, const char *name, const char *store, const char *more)
{
    char text[700];
    snprintf(text, sizeof text, carry_recipe, name, store, more);
    rgt_write_text(file, text);
}

/* Renames a directory under the test root: a machine wiped, its files kept aside. */
static void move_aside(const char *from_name, const char *to_name)
{
    char from[700], to[700];
    snprintf(from, sizeof from, "%s", rgt_in_root(from_name));
    snprintf(to, sizeof to, "%s", rgt_in_root(to_name));
    assert_int_equal(rename(from, to), 0);
}

static void test_carry_checkpoints(void **state)
{
    (void)state;
    write_carry_recipe("carry.ini", "carried", "cr1.db", "");
    pid_t pid = spawn(rgt_in_root("carry.log"), "run", "carry.ini", NULL, NULL);
    wait_for_checkpoint(pid, "runs/carried/a/seed1/last.safetensors", "cr1.db",
                        "SELECT count(*) FROM epoch_metrics");
    /* while a process holds the run, its files are not carried */
    regain_ok("runs export carried --store cr1.db --out busy.json --files busy-files");
    assert_non_null(strstr(out, "0 unfinished"));
    assert_non_null(strstr(out, "a process is running them now (runs/carried/a/seed1)"));
    kill(pid, SIGKILL);
    assert_int_equal(wait_exit(pid), 128 + SIGKILL);

    regain_refused(2, "--files-of", NULL, "runs export carried --store cr1.db --out c.json --files-of a");
    regain_refused(2, "a:weights", "best, last or int8",
                   "runs export carried --store cr1.db --out c.json --files cf --files-of a:weights");
    regain_ok("runs export carried --store cr1.db --out carry.json --files carry-files");
    assert_non_null(strstr(out, "0 finished runs of experiment carried, 1 unfinished"));
    move_aside("runs/carried", "carry-machine1");

    /* without the files, the unfinished run is left out */
    regain_ok("runs import carry.json --store cr2.db");
    assert_non_null(strstr(out, "0 runs imported"));
    assert_non_null(strstr(out, "1 unfinished runs left out"));
    /* a carried file that is not what the record says: nothing imported,
     * and the files put in place before it are removed again */
    size_t n;
    char *text = rgt_read_file(rgt_in_root("carry.json"), &n);
    cJSON *j = cJSON_Parse(text);
    free(text);
    const cJSON *files = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "runs"), 0), "files");
    assert_true(cJSON_GetArraySize(files) >= 3); /* config, metrics, best, last */
    char victim[700], keep[720];
    snprintf(victim, sizeof victim, "carry-files/%s",
             cJSON_GetObjectItem(cJSON_GetArrayItem(files, cJSON_GetArraySize(files) - 1), "sha256")->valuestring);
    snprintf(keep, sizeof keep, "%s.kept", victim);
    move_aside(victim, keep);
    regain_refused(5, "carry.json", "missing", "runs import carry.json --files carry-files --store cr3.db");
    rgt_write_text(victim, "not the file\n");
    regain_refused(4, victim, "not what the record says", "runs import carry.json --files carry-files --store cr3.db");
    sqlite3 *db = open_db("cr3.db");
    assert_int_equal(query_int(db, "SELECT count(*) FROM runs"), 0);
    sqlite3_close(db);
    for (int k = 0; k < cJSON_GetArraySize(files); k++) {
        char put[700];
        snprintf(put, sizeof put, "runs/carried/a/seed1/%s",
                 cJSON_GetObjectItem(cJSON_GetArrayItem(files, k), "name")->valuestring);
        if (access(rgt_in_root(put), F_OK) == 0) fail_msg("%s left behind by a failed import", put);
    }
    assert_int_equal(remove(rgt_in_root(victim)), 0);
    move_aside(keep, victim);
    /* files go only under the current directory */
    cJSON *run0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "runs"), 0);
    cJSON_ReplaceItemInObject(run0, "run_dir", cJSON_CreateString("runs/../../outside"));
    char *bad = cJSON_Print(j);
    rgt_write_text("carry-bad.json", bad);
    free(bad);
    regain_refused(4, "runs/../../outside", "only under the current directory",
                   "runs import carry-bad.json --files carry-files --store cr3.db");
    cJSON_ReplaceItemInObject(run0, "run_dir", cJSON_CreateString("runs/carried/a/seed1"));

    /* not into a run directory a process holds (a `regain run` training it) */
    mkdir(rgt_in_root("runs/carried"), 0777);
    mkdir(rgt_in_root("runs/carried/a"), 0777);
    mkdir(rgt_in_root("runs/carried/a/seed1"), 0777);
    int held = open(rgt_in_root("runs/carried/a/seed1/.lock"), O_RDWR | O_CREAT, 0666);
    assert_true(held >= 0 && flock(held, LOCK_EX | LOCK_NB) == 0);
    regain_refused(3, "runs/carried/a/seed1 is in use by another process", NULL,
                   "runs import carry.json --files carry-files --store cr3.db");
    close(held);
    assert_int_equal(access(rgt_in_root("runs/carried/a/seed1/last.safetensors"), F_OK), -1);

    /* with them, it resumes where it stopped, and ends as an uninterrupted run */
    regain_ok("runs import carry.json --files carry-files --store cr2.db");
    assert_non_null(strstr(out, "1 runs imported"));
    regain_ok("run carry.ini --store cr2.db");
    assert_non_null(strstr(out, "resuming after epoch"));
    counts c = summary(out);
    assert_int_equal(c.resumed, 1);
    assert_int_equal(c.ran, 1);
    db = open_db("cr2.db");
    assert_int_equal(query_int(db, "SELECT count(*) FROM epoch_metrics e JOIN runs r ON r.id = e.run_id "
                                   "WHERE r.name = 'a'"),
                     3);
    assert_int_equal(query_int(db, "SELECT count(*) FROM runs WHERE status = 'done' AND imported_from IS NULL"), 2);
    sqlite3_close(db);
    write_carry_recipe("whole-carry.ini", "whole-carry", "cw.db", "");
    regain_ok("run whole-carry.ini");
    expect_identical("runs/carried/a/seed1/last.safetensors", "runs/whole-carry/a/seed1/last.safetensors");
    expect_identical("runs/carried/a/seed1/best.safetensors", "runs/whole-carry/a/seed1/best.safetensors");

    /* a finished run's best checkpoint travels: a new run that starts from
     * it needs no restore of a, though a's last checkpoint stays behind */
    regain_ok("runs export carried --store cr2.db --out done.json --files done-files --files-of a:best");
    assert_non_null(strstr(out, "2 finished runs of experiment carried, 0 unfinished; 1 files"));
    /* a carried checkpoint recorded outside its run's directory is refused */
    text = rgt_read_file(rgt_in_root("done.json"), &n);
    cJSON *d = cJSON_Parse(text);
    free(text);
    cJSON *arts = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(d, "runs"), 0), "artifacts");
    const cJSON *best = cJSON_GetArrayItem(arts, 0);
    assert_string_equal(cJSON_GetObjectItem(best, "kind")->valuestring, "best");
    cJSON_ReplaceItemInObject((cJSON *)best, "path", cJSON_CreateString("elsewhere/best.safetensors"));
    bad = cJSON_Print(d);
    rgt_write_text("done-bad.json", bad);
    free(bad);
    cJSON_Delete(d);
    regain_refused(4, "elsewhere/best.safetensors", "not a file of the run's directory",
                   "runs import done-bad.json --files done-files --store cr3.db");
    move_aside("runs/carried", "carry-machine2");
    /* into a new store in a directory not there yet */
    regain_ok("runs import done.json --files done-files --store new-dir/cr4.db");
    assert_non_null(strstr(out, "2 runs imported, 0 already here; 1 files put in place"));
    write_carry_recipe("carry.ini", "carried", "cr1.db", "[run d]\ninit = @a\nepochs = 1\n");
    regain_ok("run carry.ini --store new-dir/cr4.db --dry-run");
    if (strstr(out, "restore") || !strstr(out, "1 of 3 runs to do")) fail_msg("only d to do:\n%s", out);
    regain_ok("run carry.ini --store new-dir/cr4.db");
    c = summary(out);
    assert_int_equal(c.ran, 1);
    assert_int_equal(c.cached, 2);
    expect_identical("carry-machine2/a/seed1/best.safetensors", "runs/carried/a/seed1/best.safetensors");
    cJSON_Delete(j);
}

/* A recipe split by seed over two stores (two machines) and merged into a
 * third; a run of some seeds leaves the others' rows alone. */
static void test_split_by_seed(void **state)
{
    (void)state;
    rgt_write_text("split.ini", "[experiment]\nname = split\nseeds = 1, 2\n[defaults]\n" TINY "[run a]\n");
    regain_ok("run split.ini --seed 1 --store s1.db");
    assert_non_null(strstr(out, "1 runs x 1 seeds"));
    assert_int_equal(summary(out).ran, 1);
    regain_ok("run split.ini --seed 2 --store s2.db");
    assert_int_equal(summary(out).ran, 1);
    regain_ok("runs export split --store s1.db --out split1.json");
    regain_ok("runs export split --store s2.db --out split2.json");
    regain_ok("runs import split1.json split2.json --store s3.db");
    assert_non_null(strstr(out, "split2.json: 1 runs imported"));
    regain_ok("run split.ini --store s3.db --dry-run");
    assert_non_null(strstr(out, "0 of 2 runs to do"));
    /* seed 1 again on the first store: seed 2, imported, stays */
    regain_ok("runs import split2.json --store s1.db");
    regain_ok("run split.ini --seed 1 --store s1.db");
    assert_int_equal(summary(out).cached, 1);
    sqlite3 *db = open_db("s1.db");
    assert_int_equal(query_int(db, "SELECT count(*) FROM runs WHERE status = 'done'"), 2);
    sqlite3_close(db);
    regain_refused(2, "--seed 3", "not one of the recipe's seeds", "run split.ini --seed 3 --store s1.db");
    regain_refused(2, "--seed", "not an integer", "run split.ini --seed one --store s1.db");
}

/* A second store used with the same recipe finds checkpoints it has no
 * record of in a run's directory: the run is refused and its files are left
 * as they were, not removed for a fresh start. */
static void test_other_store_files(void **state)
{
    (void)state;
    rgt_write_text("other.ini", "[experiment]\nname = other\n[defaults]\n" TINY "[run a]\n[run b]\nlr = 0.05\n");
    regain_ok("run other.ini --store o1.db");
    assert_int_equal(summary(out).ran, 2);
    size_t n_before, n_after;
    char *before = rgt_read_file(rgt_in_root("runs/other/a/seed1/best.safetensors"), &n_before);
    assert_int_equal(remove(rgt_in_root("runs/other/b/seed1/last.safetensors")), 0);
    assert_int_equal(remove(rgt_in_root("runs/other/b/seed1/best.safetensors")), 0);
    regain_refused(1, "runs/other/a/seed1 holds checkpoints of a run that o2.db has no record of", NULL,
                   "run other.ini --store o2.db");
    counts c = summary(out);
    assert_int_equal(c.failed, 1);
    assert_int_equal(c.ran, 1); /* b's directory held no checkpoint */
    char *after = rgt_read_file(rgt_in_root("runs/other/a/seed1/best.safetensors"), &n_after);
    assert_true(n_before == n_after && !memcmp(before, after, n_before));
    free(before);
    free(after);
    /* the first store still finds its run cached */
    regain_ok("run other.ini --store o1.db --only a");
    assert_int_equal(summary(out).cached, 1);
    /* a copy of a checkpoint the store records (an adoption killed before
     * its commit leaves one) is the store's own: a fresh start replaces it */
    rgt_write_text("other.ini", "[experiment]\nname = other\n[defaults]\n" TINY
                                "[run a]\n[run b]\nlr = 0.05\n[run c]\nlr = 0.02\n");
    assert_int_equal(mkdir(rgt_in_root("runs/other/c"), 0777), 0);
    assert_int_equal(mkdir(rgt_in_root("runs/other/c/seed1"), 0777), 0);
    before = rgt_read_file(rgt_in_root("runs/other/a/seed1/best.safetensors"), &n_before);
    rgt_write_file(rgt_in_root("runs/other/c/seed1/best.safetensors"), before, n_before);
    free(before);
    regain_ok("run other.ini --store o1.db --only c");
    assert_int_equal(summary(out).ran, 1);
    /* a checkpoint that cannot be read cannot be told to be the store's:
     * it is kept, and the message says it could not be read */
    rgt_write_text("other.ini", "[experiment]\nname = other\n[defaults]\n" TINY
                                "[run a]\n[run b]\nlr = 0.05\n[run c]\nlr = 0.02\n[run d]\nlr = 0.03\n");
    assert_int_equal(mkdir(rgt_in_root("runs/other/d"), 0777), 0);
    assert_int_equal(mkdir(rgt_in_root("runs/other/d/seed1"), 0777), 0);
    assert_int_equal(mkdir(rgt_in_root("runs/other/d/seed1/last.safetensors"), 0777), 0);
    regain_refused(1, "cannot tell which run wrote runs/other/d/seed1/last.safetensors", "not a regular file",
                   "run other.ini --store o1.db --only d");
    assert_int_equal(summary(out).failed, 1);
    struct stat sb;
    assert_int_equal(stat(rgt_in_root("runs/other/d/seed1/last.safetensors"), &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
}

/* A store that refuses a write (a full disk, here a trigger, since the
 * tests run as root and permissions stop nothing): the run fails with a
 * message naming the store and the table, and says when even the failure
 * could not be recorded. */
static void test_store_write_fails(void **state)
{
    (void)state;
    rgt_write_text("sw.ini", "[experiment]\nname = sw\n[defaults]\n" TINY "[run a]\n[run b]\nlr = 0.05\n");
    regain_ok("run sw.ini --store sw.db --only a");
    sqlite3 *db = open_db("sw.db");
    exec_sql(db, "CREATE TRIGGER full_metrics BEFORE INSERT ON epoch_metrics "
                 "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;"
                 "CREATE TRIGGER full_failure BEFORE UPDATE OF status ON runs WHEN NEW.status = 'failed' "
                 "BEGIN SELECT RAISE(ABORT, 'still full'); END;");
    sqlite3_close(db);
    regain_refused(1, "sw.db: cannot write to table epoch_metrics: database or disk is full",
                   "the store could not record the failure", "run sw.ini --store sw.db --only b");
    assert_int_equal(summary(out).failed, 1);
    /* its row stayed 'running': once the store takes writes, the run
     * resumes from its checkpoint, and the epoch lost is recorded */
    db = open_db("sw.db");
    exec_sql(db, "DROP TRIGGER full_metrics; DROP TRIGGER full_failure;");
    sqlite3_close(db);
    regain_ok("run sw.ini --store sw.db");
    counts c = summary(out);
    assert_int_equal(c.cached, 1);
    assert_int_equal(c.resumed, 1);
    db = open_db("sw.db");
    expect_intact(db);
    assert_int_equal(query_int(db, "SELECT count(*) FROM runs WHERE status = 'done'"), 2);
    assert_int_equal(query_int(db, "SELECT count(*) FROM epoch_metrics"), 2);
    sqlite3_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_caching_and_dependencies),
        cmocka_unit_test(test_reuse_across_experiments),
        cmocka_unit_test(test_kill_and_resume),
        cmocka_unit_test(test_stop_and_resume),
        cmocka_unit_test(test_kill_inside_store_write),
        cmocka_unit_test(test_failed_run),
        cmocka_unit_test(test_concurrent_runs),
        cmocka_unit_test(test_jobs_after_timing),
        cmocka_unit_test(test_estimate_counts_teacher),
        cmocka_unit_test(test_estimate_of_a_resume),
        cmocka_unit_test(test_export_import),
        cmocka_unit_test(test_carry_checkpoints),
        cmocka_unit_test(test_split_by_seed),
        cmocka_unit_test(test_other_store_files),
        cmocka_unit_test(test_store_write_fails),
    };
    return cmocka_run_group_tests(tests, rgt_root_setup, rgt_root_teardown);
}
