/* regain run: a recipe end to end, with an overall progress line above the
 * epoch progress bar, and a table of the runs at the end. */
#include "cli.h"
#include "regain/experiment.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void help(void)
{
    printf("usage: regain run RECIPE [--quick | --profile P] [--only NAME]... [--seed N]... [--dry-run]\n"
           "                  [--jobs N] [--threads N] [--store DB]\n"
           "\n"
           "Runs every run of the recipe, once per seed, in dependency order, and records\n"
           "configurations, metrics, checkpoints and the environment in the experiment\n"
           "store (SQLite). A run already done with the same content hash (configuration,\n"
           "data files, model spec, starting checkpoints) is not run again; an interrupted\n"
           "run resumes from its last checkpoint. docs/experiments.md describes recipes.\n"
           "\n"
           "  --quick        the recipe's [profile quick] (same as --profile quick)\n"
           "  --profile P    apply [profile P]; results go to experiment NAME-P\n"
           "  --only NAME    run NAME and what it depends on (repeatable)\n"
           "  --seed N       only seed N of the recipe's seeds (repeatable); with --only, a\n"
           "                 way to split a recipe over machines (regain runs export/import)\n"
           "  --dry-run      print the plan and its estimated cost; run nothing\n"
           "  --jobs N       run up to N independent runs at once (processes)\n"
           "  --threads N    compute threads in all, split between jobs (0 = all cores)\n"
           "  --store DB     the experiment store (default: the recipe's, runs/regain.db)\n");
}

static const char *plan_name(rg_item_plan p)
{
    switch (p) {
    case RG_PLAN_RUN: return "run";
    case RG_PLAN_RESUME: return "resume";
    case RG_PLAN_CACHED: return "cached";
    case RG_PLAN_AFTER_DEPS: return "run (after deps)";
    case RG_PLAN_ELSEWHERE: return "running elsewhere";
    case RG_PLAN_REUSE: return "reuse";
    case RG_PLAN_RESTORE: return "run (restore)";
    }
    return "?";
}

static const char *outcome_name(rg_item_outcome o)
{
    switch (o) {
    case RG_OUT_NONE: return "not reached";
    case RG_OUT_RAN: return "ran";
    case RG_OUT_RESUMED: return "resumed";
    case RG_OUT_CACHED: return "cached";
    case RG_OUT_ELSEWHERE: return "by other";
    case RG_OUT_FAILED: return "FAILED";
    case RG_OUT_SKIPPED: return "skipped";
    case RG_OUT_REUSED: return "reused";
    case RG_OUT_STOPPED: return "stopped";
    }
    return "?";
}

/* ---- progress ---------------------------------------------------------------------------- */

typedef struct {
    cli_progress bar;
    int parallel;           /* jobs > 1: plain lines named by run, no bar */
    int on_screen;          /* tty: the overall line and the bar line are drawn */
    double last_draw;
} run_ui;

static void overall(const rg_exp_status *s, char *buf, size_t size)
{
    char el[32], eta[32];
    cli_format_duration(s->elapsed_s, el, sizeof el);
    cli_format_duration(s->eta_s, eta, sizeof eta);
    snprintf(buf, size, "run %d of %d: %s seed %lld  elapsed %s  ETA %s", s->index, s->total, s->item->name,
             (long long)s->item->seed, el, eta);
}

/* Removes the overall line and the bar from a terminal. */
static void clear_screen_lines(run_ui *ui)
{
    if (!ui->on_screen) return;
    fprintf(stderr, "\r\033[K\033[1A\r\033[K");
    ui->on_screen = 0;
}

static void draw_overall(run_ui *ui, const rg_exp_status *s)
{
    char line[512];
    overall(s, line, sizeof line);
    fprintf(stderr, "%s\n", line);
    ui->on_screen = 1;
}

/* A line that stays (epoch results, notes): above the overall line. */
static void print_line(run_ui *ui, const rg_exp_status *s, const char *text)
{
    if (ui->parallel) {
        fprintf(stderr, "[%s seed %lld] %s\n", s->item->name, (long long)s->item->seed, text);
        return;
    }
    if (ui->bar.tty) {
        clear_screen_lines(ui);
        fprintf(stderr, "%s\n", text);
        draw_overall(ui, s);
        return;
    }
    fprintf(stderr, "%s\n", text);
}

static void on_start(void *user, const rg_exp_status *s)
{
    run_ui *ui = user;
    char line[512];
    overall(s, line, sizeof line);
    const char *how = s->item->plan == RG_PLAN_RESUME ? " (resuming)" : "";
    if (ui->bar.tty && !ui->parallel) {
        clear_screen_lines(ui);
        draw_overall(ui, s);
        cli_progress_init(&ui->bar);
    } else {
        fprintf(stderr, "%s: starting%s\n", line, how);
    }
}

static void on_progress(void *user, const rg_exp_status *s, const rg_train_progress *p)
{
    run_ui *ui = user;
    if (ui->parallel) return;
    if (!ui->bar.tty) {
        cli_progress_update(&ui->bar, p);
        return;
    }
    double t = cli_now_s();
    if (t - ui->last_draw < 0.1 && p->batch != p->batches) return;
    ui->last_draw = t;
    char line[512];
    overall(s, line, sizeof line);
    fprintf(stderr, "\r\033[K\033[1A\r\033[K%s\n", line);
    ui->bar.last_draw = 0.0;   /* draw now: the line above was just redrawn */
    cli_progress_update(&ui->bar, p);
    ui->on_screen = 1;
}

static void on_epoch(void *user, const rg_exp_status *s, const rg_epoch_metrics *m)
{
    char text[512], dur[32];
    cli_format_duration(m->seconds, dur, sizeof dur);
    int n = snprintf(text, sizeof text, "epoch %3d  lr %.4g  train loss %.4f  train %.2f%%  test loss %.4f  test %.2f%%",
                     m->epoch, m->lr, m->train_loss, 100 * m->train_top1, m->test_loss, 100 * m->test_top1);
    if (m->val_top1 >= 0 && n > 0 && (size_t)n < sizeof text)
        n += snprintf(text + n, sizeof text - (size_t)n, "  val %.2f%%", 100 * m->val_top1);
    if (n > 0 && (size_t)n < sizeof text)
        snprintf(text + n, sizeof text - (size_t)n, "  %s  %.0f img/s%s", dur, m->images_per_s,
                 m->is_best ? "  *best" : "");
    print_line(user, s, text);
}

static void on_note(void *user, const rg_exp_status *s, const char *msg) { print_line(user, s, msg); }

static void on_end(void *user, const rg_exp_status *s)
{
    run_ui *ui = user;
    const rg_exp_item *it = s->item;
    char dur[32], text[1024];
    cli_format_duration(it->wall_s, dur, sizeof dur);
    if (it->outcome == RG_OUT_FAILED || it->outcome == RG_OUT_SKIPPED || it->outcome == RG_OUT_STOPPED)
        snprintf(text, sizeof text, "%s seed %lld: %s: %s", it->name, (long long)it->seed,
                 it->outcome == RG_OUT_FAILED ? "failed" : it->outcome == RG_OUT_SKIPPED ? "skipped" : "stopped",
                 it->error);
    else
        snprintf(text, sizeof text, "%s seed %lld: %s in %s, test top-1 %.2f%%", it->name, (long long)it->seed,
                 outcome_name(it->outcome), dur, 100.0 * it->test_top1);
    if (ui->bar.tty && !ui->parallel) clear_screen_lines(ui);
    fprintf(stderr, "%s\n", text);
}

/* ---- plan and results tables --------------------------------------------------------------- */

static void print_plan(const rg_experiment *x)
{
    double total = 0.0;
    int32_t to_run = 0, defaulted = 0, timed = 0;
    printf("%-20s %6s  %-18s %10s %12s\n", "run", "seed", "plan", "estimate", "MACs/image");
    for (int32_t i = 0; i < x->n_items; i++) {
        const rg_exp_item *it = &x->items[i];
        char est[32] = "-";
        if (it->plan != RG_PLAN_CACHED && it->plan != RG_PLAN_REUSE) {
            cli_format_duration(it->est_s, est, sizeof est);
            total += it->est_s;
            to_run++;
            defaulted |= it->est_rate == RG_EST_ASSUMED;
            timed |= it->est_rate == RG_EST_TIMED;
        }
        const char *plan = it->plan == RG_PLAN_CACHED && it->results_only ? "cached (imported)" : plan_name(it->plan);
        printf("%-20s %6lld  %-18s %10s %12llu", it->name, (long long)it->seed, plan, est,
               (unsigned long long)it->macs);
        if (it->plan == RG_PLAN_REUSE) printf("  from %s", it->reused_from);
        printf("\n");
    }
    char dur[32];
    cli_format_duration(total / x->opt.jobs, dur, sizeof dur);
    printf("\n%d of %d runs to do; estimated %s", to_run, x->n_items, dur);
    if (timed) printf(" (models with no throughput on record at %d threads a run: timed on a few steps now)",
                      rg_exp_threads_per_run(x));
    if (defaulted)
        printf(" (no throughput on record for some models: assumed %.0f GMAC/s of forward MACs per training image)",
               x->default_rate / 1e9);
    printf("\n");
}

static void print_results(const rg_experiment *x)
{
    int32_t count[RG_OUT_STOPPED + 1] = {0};
    printf("\n%-20s %6s  %-11s %11s %9s  %s\n", "run", "seed", "outcome", "test top-1", "wall", "hash");
    for (int32_t i = 0; i < x->n_items; i++) {
        const rg_exp_item *it = &x->items[i];
        count[it->outcome]++;
        char acc[32] = "-", dur[32] = "-";
        if (it->test_top1 >= 0) snprintf(acc, sizeof acc, "%.2f %%", 100.0 * it->test_top1);
        if (it->outcome == RG_OUT_RAN || it->outcome == RG_OUT_RESUMED) cli_format_duration(it->wall_s, dur, sizeof dur);
        printf("%-20s %6lld  %-11s %11s %9s  %.12s\n", it->name, (long long)it->seed, outcome_name(it->outcome), acc,
               dur, it->hash[0] ? it->hash : "-");
    }
    printf("\nruns: %d ran, %d resumed, %d cached, %d reused from other experiments, %d by another process, %d failed, "
           "%d skipped, %d stopped, %d not reached\n",
           count[RG_OUT_RAN], count[RG_OUT_RESUMED], count[RG_OUT_CACHED], count[RG_OUT_REUSED],
           count[RG_OUT_ELSEWHERE], count[RG_OUT_FAILED], count[RG_OUT_SKIPPED], count[RG_OUT_STOPPED],
           count[RG_OUT_NONE]);
    for (int32_t i = 0; i < x->n_items; i++)
        if (x->items[i].outcome == RG_OUT_FAILED || x->items[i].outcome == RG_OUT_SKIPPED)
            printf("  %s seed %lld: %s\n", x->items[i].name, (long long)x->items[i].seed, x->items[i].error);
}

/* ---- the command ------------------------------------------------------------------------------ */

static int parse_count(const char *v, int32_t lo, int32_t hi, int32_t *out)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n < lo || n > hi) return 0;
    *out = (int32_t)n;
    return 1;
}

int cmd_run(int argc, char **argv)
{
    const char *recipe = NULL, *only[64];
    int64_t seeds[64];
    rg_exp_options o = {.jobs = 1};
    int dry = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help();
            return EXIT_OK;
        }
        if (!strcmp(a, "--quick")) {
            if (o.profile && strcmp(o.profile, "quick"))
                return cli_usage_error("run", "--quick and --profile %s: choose one profile", o.profile);
            o.profile = "quick";
            continue;
        }
        if (!strcmp(a, "--dry-run")) {
            dry = 1;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            if (recipe) return cli_usage_error("run", "one recipe only, got '%s' and '%s'", recipe, a);
            recipe = a;
            continue;
        }
        if (i + 1 >= argc) return cli_usage_error("run", "option %s needs a value", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--profile")) {
            if (o.profile && strcmp(o.profile, v))
                return cli_usage_error("run", "profiles '%s' and '%s': choose one", o.profile, v);
            o.profile = v;
        } else if (!strcmp(a, "--only")) {
            if (o.n_only == (int32_t)(sizeof only / sizeof only[0])) return cli_usage_error("run", "too many --only");
            only[o.n_only++] = v;
        } else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            long long sd = strtoll(v, &end, 10);
            if (errno || end == v || *end) return cli_usage_error("run", "--seed: '%s' is not an integer", v);
            if (o.n_seeds == (int32_t)(sizeof seeds / sizeof seeds[0])) return cli_usage_error("run", "too many --seed");
            seeds[o.n_seeds++] = sd;
        } else if (!strcmp(a, "--store")) {
            o.store = v;
        } else if (!strcmp(a, "--jobs")) {
            if (!parse_count(v, 1, 256, &o.jobs)) return cli_usage_error("run", "--jobs: '%s' is not in 1..256", v);
        } else if (!strcmp(a, "--threads")) {
            if (!parse_count(v, 0, 1024, &o.threads))
                return cli_usage_error("run", "--threads: '%s' is not in 0..1024", v);
        } else {
            return cli_usage_error("run", "unknown option '%s'", a);
        }
    }
    if (!recipe) return cli_usage_error("run", "missing the recipe file");
    o.only = only;
    o.seeds = seeds;
    rg_error err = {0};
    rg_experiment *x;
    if (rg_exp_open(recipe, &o, &x, &err)) return cli_fail(&err);
    const rg_resolved_recipe *res = x->res;
    int32_t n_seeds = 0; /* items come seed by seed */
    for (int32_t i = 0; i < x->n_items; i++) n_seeds += i == 0 || x->items[i].seed != x->items[i - 1].seed;
    printf("experiment %s: %d runs x %d seeds -> %d items; store %s\n", res->name,
           n_seeds ? x->n_items / n_seeds : 0, n_seeds, x->n_items, x->store_path);
    if (dry) {
        print_plan(x);
        rg_exp_close(x);
        return EXIT_OK;
    }
    fflush(stdout);
    run_ui ui = {.parallel = x->opt.jobs > 1};
    cli_progress_init(&ui.bar);
    rg_exp_hooks hooks = {&ui, on_start, on_progress, on_epoch, on_note, on_end, cli_stop_asked};
    cli_stop_on_signals();
    rg_status st = rg_exp_execute(x, &hooks, &err);
    if (ui.bar.tty && !ui.parallel) clear_screen_lines(&ui);
    print_results(x);
    int failed = 0, stopped = 0;
    for (int32_t i = 0; i < x->n_items; i++) {
        failed += x->items[i].outcome == RG_OUT_FAILED || x->items[i].outcome == RG_OUT_SKIPPED;
        stopped += x->items[i].outcome == RG_OUT_STOPPED || x->items[i].outcome == RG_OUT_NONE;
    }
    printf("\nstore: %s   (regain runs --store %s --experiment %s)\n", x->store_path, x->store_path, res->name);
    if (!st && !failed && !stopped) printf("report: regain report %s\n", res->name);
    fflush(stdout);
    int code = EXIT_OK;
    if (st) code = cli_fail(&err);
    else if (failed) {
        fprintf(stderr, "regain: %d of %d runs did not finish (see above)\n", failed, x->n_items);
        code = EXIT_FAILURE_OTHER;
    } else if (stopped) {
        fprintf(stderr, "regain: stopped with %d of %d runs to do; `regain run %s` goes on where it stopped\n",
                stopped, x->n_items, recipe);
        code = EXIT_STOPPED;
    }
    rg_exp_close(x);
    return code;
}
