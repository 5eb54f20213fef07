/* The runner: performs the planned items in dependency order, one at a time
 * in this process or several at once in child processes (--jobs), claiming
 * each through its run directory's lock and the store. */
#include "exp/hash.h"
#include "exp/kinds.h"
#include "exp/plan.h"
#include "regain/fileio.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void sleep_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0 && errno == EINTR) {}
}

enum { WAITING = 0, RUNNING, FINISHED };

typedef struct {
    rg_experiment *x;
    rg_store *store;
    int64_t experiment;
    const rg_exp_hooks *hooks;
    int8_t *state;
    int8_t *seen_busy;      /* found locked by another process at least once */
    int8_t *resumed;
    pid_t *pid;
    int32_t *index;         /* position among the items that run, 1-based */
    double *t_start;
    double t0;
    int32_t started, total, running;
    double est_done, actual_done;   /* for the ETA's calibration */
    int32_t threads;        /* per item */
    /* the item this process is performing, for the training hooks */
    int32_t current;
    double current_eta;
} runner;

/* ---- progress ---------------------------------------------------------------------------------- */

static rg_exp_status status_of(runner *r, int32_t i)
{
    rg_experiment *x = r->x;
    double calib = r->est_done > 0 ? r->actual_done / r->est_done : 1.0;
    double rest = 0.0;
    for (int32_t j = 0; j < x->n_items; j++)
        if (r->state[j] == WAITING && x->items[j].plan != RG_PLAN_CACHED) rest += x->items[j].est_s;
    double cur = 0.0;
    for (int32_t j = 0; j < x->n_items; j++)
        if (r->state[j] == RUNNING) {
            double left = j == r->current && r->current_eta >= 0
                              ? r->current_eta
                              : calib * x->items[j].est_s - (now_s() - r->t_start[j]);
            if (left > cur) cur = left;
        }
    rg_exp_status s = {&x->items[i], r->index[i], r->total, now_s() - r->t0, cur + calib * rest / x->opt.jobs};
    return s;
}

static void train_progress(void *user, const rg_train_progress *p)
{
    runner *r = user;
    r->current_eta = p->eta_s;
    if (r->hooks && r->hooks->progress) {
        rg_exp_status s = status_of(r, r->current);
        r->hooks->progress(r->hooks->user, &s, p);
    }
}

static void train_epoch(void *user, const rg_epoch_metrics *m)
{
    runner *r = user;
    if (r->hooks && r->hooks->epoch_end) {
        rg_exp_status s = status_of(r, r->current);
        r->hooks->epoch_end(r->hooks->user, &s, m);
    }
}

static void train_note(void *user, const char *msg)
{
    runner *r = user;
    if (r->hooks && r->hooks->note) {
        rg_exp_status s = status_of(r, r->current);
        r->hooks->note(r->hooks->user, &s, msg);
    }
}

static int stop_asked(const runner *r) { return r->hooks && r->hooks->stop && r->hooks->stop(r->hooks->user); }

static int train_stop(void *user) { return stop_asked(user); }

/* The exit status of a --jobs child whose run stopped on request. */
enum { CHILD_STOPPED = 9 };

/* Items the progress line counts: those the plan expects to run. */
static int counts_as_work(rg_item_plan p) { return p != RG_PLAN_CACHED && p != RG_PLAN_REUSE; }

static void finish(runner *r, int32_t i, rg_item_outcome o, const char *error)
{
    rg_exp_item *it = &r->x->items[i];
    int was_running = r->state[i] == RUNNING;
    r->state[i] = FINISHED;
    it->outcome = o;
    if (error) snprintf(it->error, sizeof it->error, "%s", error);
    if (was_running) {
        r->running--;
        it->wall_s = now_s() - r->t_start[i];
        if (o == RG_OUT_RAN || o == RG_OUT_RESUMED) {
            r->est_done += it->est_s;
            r->actual_done += it->wall_s;
        }
    } else if (counts_as_work(it->plan) && r->total > r->started) {
        r->total--;   /* planned to run, but did not need to */
    }
    if (r->hooks && r->hooks->end && (was_running || o == RG_OUT_FAILED || o == RG_OUT_SKIPPED)) {
        rg_exp_status s = status_of(r, i);
        r->hooks->end(r->hooks->user, &s);
    }
}

/* ---- performing one item ------------------------------------------------------------------------- */

/* Appends " (what: why)" to err's message. */
static void add_to_message(rg_error *err, const char *what, const rg_error *why)
{
    size_t n = strlen(err->msg);
    snprintf(err->msg + n, sizeof err->msg - n, " (%s: %s)", what, why->msg);
}

/* In the process that performs it: the kind's run, and 'failed' on error. */
static rg_status perform(runner *r, rg_store *store, int32_t i, const rg_train_config *cfg, int64_t run_id,
                         double prior_wall, rg_error *err)
{
    rg_exp_item *it = &r->x->items[i];
    const rg_resolved_run *run = &r->x->res->runs[it->run];
    rg_train_hooks th = {r, train_progress, train_epoch, train_note, train_stop};
    r->current = i;
    r->current_eta = -1.0;
    rg_exp_job job = {.run = run, .cfg = *cfg, .run_dir = it->run_dir, .resume = r->resumed[i], .store = store,
                      .run_id = run_id, .hooks = &th, .prior_wall_s = prior_wall, .start_s = now_s()};
    job.cfg.threads = r->threads;
    rg_status st = rg_exp_kind_find(run->kind)->run(&job, err);
    rg_error e2 = {0};
    double wall = prior_wall + now_s() - job.start_s;
    /* stopped: the row stays 'running', and the next invocation resumes it
     * (its time so far counted). Failed: the row would stay 'running' too,
     * and the next invocation would resume the run instead of starting it
     * over: say so. */
    if (st == RG_ERR_STOPPED && rg_store_set_wall(store, run_id, wall, &e2))
        add_to_message(err, "its time so far could not be recorded", &e2);
    else if (st && st != RG_ERR_STOPPED && rg_store_fail_run(store, run_id, err->msg, wall, &e2))
        add_to_message(err, "and the store could not record the failure", &e2);
    return st;
}

/* Child process of --jobs: its own store connection (an SQLite connection
 * must not cross fork), and it dies with the parent so that a killed
 * `regain run` stops all its runs (the next one resumes them). */
static void child(runner *r, int32_t i, const rg_train_config *cfg, int64_t run_id, double prior_wall)
{
    rg_error err = {0};
    rg_store *s;
    if (rg_store_open(r->x->store_path, 0, &s, &err)) {
        fprintf(stderr, "regain: %s\n", err.msg);
        _exit(1);
    }
    rg_status st = perform(r, s, i, cfg, run_id, prior_wall, &err);
    rg_store_close(s);
    _exit(st == RG_ERR_STOPPED ? CHILD_STOPPED : st ? 1 : 0);
}

static int has_file(const char *dir, const char *name)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

/* Whether run_dir holds a checkpoint that is not this store's to delete:
 * one that no run of the store records (written through another store,
 * two stores, one recipe; or one since removed), or one that cannot be
 * read to tell. A copy of a recorded one (an adoption killed before its
 * commit) is the store's own. If so, says why in why. */
static int foreign_checkpoint(rg_store *s, const char *run_dir, const char *store_path, char *why, size_t size)
{
    static const char *const names[] = {"last.safetensors", "best.safetensors"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        char path[1200], sum[65];
        snprintf(path, sizeof path, "%s/%s", run_dir, names[k]);
        rg_error e = {0};
        int known = 0;
        if (access(path, F_OK) != 0) continue;
        if (rg_exp_file_sha256(NULL, path, sum, NULL, &e) || rg_store_knows_artifact(s, sum, &known, &e)) {
            snprintf(why, size, "cannot tell which run wrote %s (%s)", path, e.msg);
            return 1;
        }
        if (!known) {
            snprintf(why, size,
                     "%s holds checkpoints of a run that %s has no record of (written through another store, or "
                     "one since removed)",
                     run_dir, store_path);
            return 1;
        }
    }
    return 0;
}

static void remove_outputs(const char *run_dir)
{
    static const char *const files[] = {"last.safetensors", "best.safetensors", "metrics.csv", "config.txt"};
    for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
        char p[1200];
        snprintf(p, sizeof p, "%s/%s", run_dir, files[k]);
        unlink(p);
    }
}

/* Copies the files of a finished run's directory into run_dir: hard links
 * where the file system allows (the files are only ever replaced by
 * rename, never written in place, so a link never sees a later change),
 * else an atomic copy. Hidden files (the lock) and temporaries stay behind. */
static rg_status copy_run_files(const char *from, const char *to, rg_error *err)
{
    DIR *d = opendir(from);
    if (!d) return rg_fail(err, RG_ERR_IO, "%s: cannot read: %s", from, strerror(errno));
    rg_status st = RG_OK;
    struct dirent *e;
    while (!st && (e = readdir(d))) {
        if (e->d_name[0] == '.' || rg_is_temp_name(e->d_name)) continue;
        char src[1400], dst[1400];
        snprintf(src, sizeof src, "%s/%s", from, e->d_name);
        snprintf(dst, sizeof dst, "%s/%s", to, e->d_name);
        struct stat sb;
        if (stat(src, &sb) || !S_ISREG(sb.st_mode)) continue;
        unlink(dst);
        if (link(src, dst) == 0) continue;
        void *data;
        size_t size;
        st = rg_read_file(src, (size_t)sb.st_size + 1, &data, &size, err);
        if (!st) {
            st = rg_write_file_atomic(dst, data, size, err);
            free(data);
        }
    }
    closedir(d);
    return st;
}

/* Under item i's lock and inside a store transaction: if another experiment
 * of the store finished a run with the same content hash and kind, whose
 * files are intact, copies it (files and records) into item i and returns
 * 1. Otherwise the item runs as usual: 0 when nothing was written to the
 * store, -1 when the transaction must be rolled back. */
static int adopt(runner *r, int32_t i)
{
    rg_exp_item *it = &r->x->items[i];
    rg_store_run donor, row;
    rg_error e = {0};
    if (rg_exp_find_donor(r->store, it->hash, r->x->res->runs[it->run].kind, r->experiment, &donor, it->reused_from,
                          sizeof it->reused_from, &e) ||
        !donor.id)
        return 0;
    remove_outputs(it->run_dir);
    if (copy_run_files(donor.run_dir, it->run_dir, &e)) return 0;
    if (rg_store_adopt_run(r->store, donor.id, r->experiment, it->name, it->seed, it->run_dir, &e) ||
        rg_store_get_run(r->store, r->experiment, it->name, it->seed, &row, &e))
        return -1;
    /* the copies must be what the donor recorded */
    if (rg_exp_run_reusable(r->store, &row, it->hash) != RG_EXP_REUSE_FILES) return -1;
    it->test_top1 = row.test_top1;
    return 1;
}

/* Whether the store's row stands for item i: done with its hash, and with
 * its checkpoints unless only its results are asked for (an imported run
 * that no run still to do depends on). */
static int done_already(const runner *r, int32_t i, const rg_store_run *row)
{
    int reusable = rg_exp_run_reusable(r->store, row, r->x->items[i].hash);
    return reusable == RG_EXP_REUSE_FILES ||
           (reusable == RG_EXP_REUSE_RESULTS && r->x->items[i].plan != RG_PLAN_RESTORE);
}

/* Sets back to 'pending' the finished rows, of item i's seed, of the runs
 * that start from item i's run, directly or through others: they came from
 * a run that now runs with another configuration, and must not be reported
 * beside it until they run again (a whole run of the recipe reruns them;
 * their content hashes no longer match). Inside the transaction. */
static rg_status mark_dependents_stale(runner *r, int32_t i, rg_error *err)
{
    const rg_resolved_recipe *res = r->x->res;
    char *stale = calloc((size_t)res->n_runs, 1);
    if (!stale) return rg_fail(err, RG_ERR_NOMEM, "out of memory");
    stale[r->x->items[i].run] = 1;
    rg_status st = RG_OK;
    for (int changed = 1; changed && !st;) {
        changed = 0;
        for (int32_t j = 0; j < res->n_runs && !st; j++) {
            if (stale[j]) continue;
            for (int32_t k = 0; k < res->runs[j].n_refs; k++) stale[j] |= stale[res->runs[j].refs[k].run];
            if (!stale[j]) continue;
            changed = 1;
            st = rg_store_mark_stale(r->store, r->experiment, res->runs[j].name, r->x->items[i].seed, err);
        }
    }
    free(stale);
    return st;
}

typedef enum { T_DONE, T_STARTED, T_BUSY } try_result;

/* Tries to perform (or start) item i. Store errors are returned; anything
 * else about the item is its outcome. */
static rg_status try_item(runner *r, int32_t i, try_result *res, rg_error *err)
{
    rg_experiment *x = r->x;
    rg_exp_item *it = &x->items[i];
    *res = T_DONE;
    rg_train_config cfg;
    rg_error e = {0};
    if (rg_exp_item_hash(x, r->store, r->experiment, i, &cfg, it->hash, &e)) {
        finish(r, i, RG_OUT_FAILED, e.msg);
        return RG_OK;
    }
    rg_store_run row;
    rg_status st = rg_store_get_run(r->store, r->experiment, it->name, it->seed, &row, err);
    if (st) return st;
    if (done_already(r, i, &row)) {
        it->test_top1 = row.test_top1;
        finish(r, i, r->seen_busy[i] ? RG_OUT_ELSEWHERE : RG_OUT_CACHED, NULL);
        return RG_OK;
    }
    if (rg_make_dirs(it->run_dir, &e)) {
        finish(r, i, RG_OUT_FAILED, e.msg);
        return RG_OK;
    }
    int busy;
    int fd = rg_exp_lock(it->run_dir, 0, &busy, &e);
    if (fd < 0) {
        if (busy) {
            r->seen_busy[i] = 1;
            *res = T_BUSY;
        } else {
            finish(r, i, RG_OUT_FAILED, e.msg);
        }
        return RG_OK;
    }
    /* No one else writes the directory while we hold its lock: a temporary
     * file in it was left by a process killed mid-write. */
    rg_remove_stale_temps(it->run_dir);
    /* Under the lock, again: the process that held it may have finished it. */
    int64_t run_id = 0;
    if ((st = rg_store_begin(r->store, err))) {
        close(fd);
        return st;
    }
    st = rg_store_get_run(r->store, r->experiment, it->name, it->seed, &row, err);
    if (!st && done_already(r, i, &row)) {
        rg_store_rollback(r->store);
        close(fd);
        it->test_top1 = row.test_top1;
        finish(r, i, r->seen_busy[i] ? RG_OUT_ELSEWHERE : RG_OUT_CACHED, NULL);
        return RG_OK;
    }
    /* a run this store never started: no row, or the pending row without
     * a hash that planning adds */
    int never_started = !st && (!row.id || !row.hash[0]);
    char why[2048];
    if (never_started && foreign_checkpoint(r->store, it->run_dir, x->store_path, why, sizeof why)) {
        rg_store_rollback(r->store);
        close(fd);
        char msg[2560];
        snprintf(msg, sizeof msg,
                 "%s; left alone: use the store that wrote it (--store), or remove the directory to run it again",
                 why);
        finish(r, i, RG_OUT_FAILED, msg);
        return RG_OK;
    }
    int adopted = st ? 0 : adopt(r, i);
    if (adopted > 0) {
        st = rg_store_commit(r->store, err);
        close(fd);
        if (st) return st;
        finish(r, i, RG_OUT_REUSED, NULL);
        return RG_OK;
    }
    if (adopted < 0) { /* undo what adopt() wrote; the run starts below */
        rg_store_rollback(r->store);
        st = rg_store_begin(r->store, err);
        if (st) {
            close(fd);
            return st;
        }
    }
    r->resumed[i] = !st && row.id && !strcmp(row.status, "running") && !strcmp(row.hash, it->hash) &&
                    has_file(it->run_dir, "last.safetensors");
    double prior_wall = r->resumed[i] ? row.wall_s : 0.0;
    /* A fresh start must not find an older run's checkpoint to resume
     * from: removed before the new row is committed, so that a kill in
     * between cannot leave the new row with the old files. */
    if (!st && !r->resumed[i]) remove_outputs(it->run_dir);
    if (!st)
        st = rg_store_start_run(r->store, r->experiment, it->name, it->seed, x->res->runs[it->run].kind, it->hash,
                                it->config_text, it->run_dir, r->resumed[i], &run_id, err);
    /* with another configuration, the runs that start from this one are stale */
    if (!st && !r->resumed[i] && (!row.id || strcmp(row.hash, it->hash))) st = mark_dependents_stale(r, i, err);
    if (!st) st = rg_store_commit(r->store, err);
    else rg_store_rollback(r->store);
    if (st) {
        close(fd);
        return st;
    }
    r->state[i] = RUNNING;
    r->running++;
    r->index[i] = ++r->started;
    if (r->started > r->total) r->total = r->started;
    r->t_start[i] = now_s();
    if (r->hooks && r->hooks->start) {
        rg_exp_status s = status_of(r, i);
        r->hooks->start(r->hooks->user, &s);
    }
    if (x->opt.jobs == 1) {
        st = perform(r, r->store, i, &cfg, run_id, prior_wall, &e);
        close(fd);
        if (!st) {
            rg_store_get_run(r->store, r->experiment, it->name, it->seed, &row, &e);
            it->test_top1 = row.test_top1;
        }
        finish(r, i,
               st == RG_ERR_STOPPED ? RG_OUT_STOPPED
               : st                 ? RG_OUT_FAILED
               : r->resumed[i]      ? RG_OUT_RESUMED
                                    : RG_OUT_RAN,
               st ? e.msg : NULL);
        return RG_OK;
    }
    pid_t pid = rg_exp_fork();
    if (pid == 0) child(r, i, &cfg, run_id, prior_wall);
    close(fd);   /* the child holds the lock until it exits */
    if (pid < 0) {
        rg_error e2 = {0};
        rg_store_fail_run(r->store, run_id, "cannot start a process", 0.0, &e2);
        finish(r, i, RG_OUT_FAILED, strerror(errno));
        return RG_OK;
    }
    r->pid[i] = pid;
    *res = T_STARTED;
    return RG_OK;
}

/* Settles item i, whose process ended (status NULL: it could not be
 * waited for), from what the process recorded in the store. */
static void settle(runner *r, int32_t i, const int *status)
{
    rg_exp_item *it = &r->x->items[i];
    rg_store_run row = {0};
    rg_error e = {0};
    rg_status st = rg_store_get_run(r->store, r->experiment, it->name, it->seed, &row, &e);
    if (!st && row.id && !strcmp(row.status, "done")) {
        it->test_top1 = row.test_top1;
        finish(r, i, r->resumed[i] ? RG_OUT_RESUMED : RG_OUT_RAN, NULL);
        return;
    }
    if (!st && status && WIFEXITED(*status) && WEXITSTATUS(*status) == CHILD_STOPPED) {
        finish(r, i, RG_OUT_STOPPED, "stopped on request; the next regain run resumes it");
        return;
    }
    char msg[RG_ERR_MSG_MAX + 64];
    if (st) snprintf(msg, sizeof msg, "its result cannot be read from the store: %s", e.msg);
    else if (row.id && !strcmp(row.status, "failed")) snprintf(msg, sizeof msg, "%s", row.error);
    else if (!status) snprintf(msg, sizeof msg, "its process could not be waited for; run again to resume");
    else if (WIFSIGNALED(*status))
        snprintf(msg, sizeof msg, "its process died (signal %d); run again to resume", WTERMSIG(*status));
    else snprintf(msg, sizeof msg, "its process ended with status %d", WEXITSTATUS(*status));
    finish(r, i, RG_OUT_FAILED, msg);
}

/* Collects finished children; with block set, waits for one. */
static void reap(runner *r, int block)
{
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, block ? 0 : WNOHANG);
        if (pid < 0 && errno == ECHILD) {
            /* no child left to wait for (they were reaped elsewhere): the
             * running items are over, whatever the store says of them */
            for (int32_t i = 0; i < r->x->n_items; i++)
                if (r->state[i] == RUNNING) settle(r, i, NULL);
            return;
        }
        if (pid <= 0) return;
        for (int32_t i = 0; i < r->x->n_items; i++) {
            if (r->pid[i] != pid || r->state[i] != RUNNING) continue;
            settle(r, i, &status);
        }
        block = 0;
    }
}

/* ---- the whole experiment ------------------------------------------------------------------------------ */

static rg_status prune(runner *r, rg_error *err)
{
    rg_store_filter f = {.experiment = r->x->res->name};
    rg_store_run_info *rows;
    int32_t n;
    rg_status st = rg_store_list_runs(r->store, &f, &rows, &n, err);
    for (int32_t k = 0; !st && k < n; k++) {
        int keep = 0;
        for (int32_t i = 0; !keep && i < r->x->n_items; i++)
            keep = !strcmp(r->x->items[i].name, rows[k].name) && r->x->items[i].seed == rows[k].seed;
        if (!keep) st = rg_store_delete_run(r->store, rows[k].id, err);
    }
    free(rows);
    return st;
}

static rg_status record_experiment(runner *r, rg_error *err)
{
    rg_experiment *x = r->x;
    const rg_resolved_recipe *res = x->res;
    rg_status st = rg_store_begin(r->store, err);
    if (st) return st;
    st = rg_store_put_experiment(r->store, res->name, res->recipe->origin, res->recipe->text, &r->experiment, err);
    rg_store_comparison *c = calloc((size_t)res->n_compares + 1, sizeof *c);
    if (!st && !c) st = rg_fail(err, RG_ERR_NOMEM, "out of memory");
    for (int32_t i = 0; !st && i < res->n_compares; i++)
        c[i] = (rg_store_comparison){res->compares[i].name, res->compares[i].baseline, res->compares[i].treatment,
                                     res->compares[i].reference};
    if (!st) st = rg_store_set_comparisons(r->store, r->experiment, c, res->n_compares, err);
    free(c);
    /* The store holds the experiment as the recipe declares it: a whole run
     * (no --only) forgets runs and seeds the recipe no longer has, so that
     * they do not mix into the report. Their directories stay on disk. */
    if (!st && x->opt.n_only == 0 && x->opt.n_seeds == 0) st = prune(r, err);
    for (int32_t i = 0; !st && i < x->n_items; i++)
        st = rg_store_add_pending(r->store, r->experiment, x->items[i].name, x->items[i].seed,
                                  res->runs[x->items[i].run].kind, x->items[i].config_text, x->items[i].run_dir, err);
    if (st) {
        rg_store_rollback(r->store);
        return st;
    }
    return rg_store_commit(r->store, err);
}

rg_status rg_exp_execute(rg_experiment *x, const rg_exp_hooks *hooks, rg_error *err)
{
    runner r = {.x = x, .hooks = hooks, .t0 = now_s(), .current = -1, .current_eta = -1.0};
    size_t n = (size_t)x->n_items + 1;
    r.state = calloc(n, 1);
    r.seen_busy = calloc(n, 1);
    r.resumed = calloc(n, 1);
    r.pid = calloc(n, sizeof *r.pid);
    r.index = calloc(n, sizeof *r.index);
    r.t_start = calloc(n, sizeof *r.t_start);
    rg_status st = r.state && r.seen_busy && r.resumed && r.pid && r.index && r.t_start
                       ? RG_OK
                       : rg_fail(err, RG_ERR_NOMEM, "out of memory");
    /* the runs' processes are waited for: an ignored SIGCHLD inherited from
     * the caller would have the kernel reap them unseen */
    if (x->opt.jobs > 1) signal(SIGCHLD, SIG_DFL);
    for (int32_t i = 0; i < x->n_items; i++) r.total += counts_as_work(x->items[i].plan);
    if (!st) st = rg_store_open(x->store_path, 0, &r.store, err);
    if (!st) st = record_experiment(&r, err);
    if (!st) r.threads = x->opt.jobs == 1 ? x->opt.threads : rg_exp_threads_per_run(x);
    while (!st) {
        if (stop_asked(&r)) {
            /* no new run; those in progress stop after their current step
             * (a child that the signal did not reach is told) */
            for (int32_t i = 0; i < x->n_items; i++)
                if (r.state[i] == RUNNING && r.pid[i] > 0) kill(r.pid[i], SIGTERM);
            break;
        }
        int unfinished = 0, progressed = 0;
        for (int32_t i = 0; !st && i < x->n_items; i++) {
            if (r.state[i] != WAITING) {
                unfinished += r.state[i] == RUNNING;
                continue;
            }
            unfinished++;
            const int32_t *deps = ((rg_exp_priv *)x->priv)->deps + (size_t)i * RG_RECIPE_MAX_REFS;
            int ready = 1, failed = -1;
            for (int32_t k = 0; k < RG_RECIPE_MAX_REFS; k++) {
                if (deps[k] < 0) continue;
                if (r.state[deps[k]] != FINISHED) ready = 0;
                else if (x->items[deps[k]].outcome == RG_OUT_FAILED || x->items[deps[k]].outcome == RG_OUT_SKIPPED)
                    failed = deps[k];
            }
            if (failed >= 0) {
                char msg[256];
                snprintf(msg, sizeof msg, "needs run %s seed %lld, which did not finish", x->items[failed].name,
                         (long long)x->items[failed].seed);
                finish(&r, i, RG_OUT_SKIPPED, msg);
                progressed = 1;
                continue;
            }
            if (!ready || r.running >= x->opt.jobs) continue;
            try_result tr;
            st = try_item(&r, i, &tr, err);
            if (tr != T_BUSY) progressed = 1;
            /* one at a time: start again from the first item, which keeps
             * the order of the plan */
            if (x->opt.jobs == 1 && tr == T_DONE) break;
        }
        if (!unfinished) break;
        if (r.running) reap(&r, 0);
        if (!progressed) sleep_ms(100);
    }
    /* on an error, the runs already started still finish */
    while (r.running > 0) reap(&r, 1);
    rg_store_close(r.store);
    free(r.state);
    free(r.seen_busy);
    free(r.resumed);
    free(r.pid);
    free(r.index);
    free(r.t_start);
    return st;
}
