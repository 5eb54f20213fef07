/* What the report's tables hold (render.h): one place for columns and
 * number formats, shared by report.md and report.html. */
#include "report/render.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "regain/data.h"

static void init(rg_table *t, int32_t rows, const char *const *head, const char *align)
{
    *t = (rg_table){.rows = rows, .highlight = -1, .tone_col = -1};
    while (t->cols < RG_TABLE_MAX_COLS && head[t->cols]) {
        snprintf(t->head[t->cols], sizeof t->head[t->cols], "%s", head[t->cols]);
        t->align[t->cols] = align[t->cols];
        t->cols++;
    }
    if (rows && !(t->cell = calloc((size_t)rows * t->cols, sizeof *t->cell))) t->failed = 1;
    if (rows && !(t->tone = calloc((size_t)rows, sizeof *t->tone))) t->failed = 1;
}

static void set(rg_table *t, int32_t row, int32_t col, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void set(rg_table *t, int32_t row, int32_t col, const char *fmt, ...)
{
    if (t->failed) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!s) {
        t->failed = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    t->cell[(size_t)row * t->cols + col] = s;
}

void rg_table_free(rg_table *t)
{
    if (t->cell)
        for (size_t i = 0; i < (size_t)t->rows * t->cols; i++) free(t->cell[i]);
    free(t->cell);
    free(t->tone);
    *t = (rg_table){0};
}

const char *rg_report_class(const rg_report_run *run, int32_t c, char *buf, size_t size)
{
    return rg_class_name(run->classes, c, buf, size);
}

const char *rg_report_top1(const rg_report_run *run, char *buf, size_t size)
{
    if (isnan(run->top1.sd)) snprintf(buf, size, "%.2f", run->top1.mean);
    else snprintf(buf, size, "%.2f \xc2\xb1 %.2f", run->top1.mean, run->top1.sd);
    return buf;
}

const char *rg_report_unfinished(const rg_report *r, char *buf, size_t size)
{
    int32_t n = r->n_pending + r->n_running + r->n_failed;
    if (!n) return NULL;
    snprintf(buf, size,
             "%d run%s of this experiment %s not finished (%d pending, %d running, %d failed) and %s left out.", n,
             n == 1 ? "" : "s", n == 1 ? "is" : "are", r->n_pending, r->n_running, r->n_failed,
             n == 1 ? "is" : "are");
    return buf;
}

int rg_report_timing_note(const rg_report *r, rg_text *o)
{
    if (r->n_cpus < 2) return 0;
    int32_t elsewhere = 0;
    for (int32_t i = 0; i < r->n_runs; i++) elsewhere += r->runs[i].timed_elsewhere;
    rg_text_printf(o, "Latency and training time depend on the CPU, and these seeds ran on %d kinds: ", r->n_cpus);
    for (int32_t i = 0; i < r->n_cpus; i++) {
        const rg_report_cpu *c = &r->cpus[i];
        rg_text_printf(o, "%sCPU %d, %s with %s (%d seed%s)", i ? "; " : "", i + 1, c->model ? c->model : "unnamed",
                       c->features ? c->features : "no recorded features", c->n_seeds, c->n_seeds == 1 ? "" : "s");
    }
    rg_text_printf(o, ". The summary's latency and training time are means over the seeds of CPU %d, the kind most "
                      "seeds ran on",
                   r->timing_cpu + 1);
    if (elsewhere)
        rg_text_printf(o, "; \xe2\x80\xa0 marks %s with no seed there, whose figures come from another CPU and "
                          "do not compare with the rest",
                       elsewhere == 1 ? "the run" : "the runs");
    rg_text_put(o, ". The per-seed table names each seed's CPU.");
    return 1;
}

const char *rg_report_teachers(const rg_report *r, char *buf, size_t size)
{
    if (r->runs[r->best].is_teacher) return NULL;
    size_t at = 0;
    int32_t n = 0;
    for (int32_t i = 0; i < r->n_runs && at < size; i++) {
        if (!r->runs[i].is_teacher) continue;
        char v[64];
        at += (size_t)snprintf(buf + at, size - at, "%s%s %s %%",
                               n++ ? ", " : "Teachers are references, not candidates for the best run: ",
                               r->runs[i].name, rg_report_top1(&r->runs[i], v, sizeof v));
    }
    if (!n) return NULL;
    if (at < size) snprintf(buf + at, size - at, ".");
    return buf;
}

const char *rg_report_comparisons_note(char *buf, size_t size, const char *em, const char *whisker)
{
    snprintf(buf, size,
             "Each comparison pairs the two runs seed by seed. Difference: treatment \xe2\x88\x92 baseline in "
             "percentage points (pp) of top-1, with its 95 %% confidence interval%s and a two-sided p-value from a "
             "paired t-test (n \xe2\x88\x92 1 degrees of freedom: with 3 seeds the interval is wide). Verdict: "
             "%sgain%s when the interval lies above 0, %sloss%s when below, otherwise %sno detectable difference%s; "
             "%snot tested%s with fewer than two pairs.",
             whisker, em, em, em, em, em, em, em, em);
    return buf;
}

/* "[lo, hi]" with the given decimals, or a dash. */
static const char *interval(double lo, double hi, const char *fmt, char *buf, size_t size)
{
    if (isnan(lo) || isnan(hi)) snprintf(buf, size, RG_NA);
    else snprintf(buf, size, fmt, lo, hi);
    return buf;
}

static const char *latency(double ms, char *buf, size_t size)
{
    if (isnan(ms)) snprintf(buf, size, RG_NA);
    else snprintf(buf, size, "%.3g ms", ms);
    return buf;
}

void rg_table_summary(const rg_report *r, rg_table *t)
{
    static const char *const head[] = {"run", "top-1 % (mean \xc2\xb1 sd)", "95 % CI", "seeds", "parameters",
                                       "MACs", "model size", "latency", "training time", NULL};
    init(t, r->n_runs, head, "lrrrrrrrr");
    t->highlight = r->best;
    for (int32_t i = 0; i < r->n_runs; i++) {
        const rg_report_run *run = &r->runs[i];
        char b[64];
        set(t, i, 0, "%s", run->name);
        set(t, i, 1, "%s", rg_report_top1(run, b, sizeof b));
        set(t, i, 2, "%s", interval(run->top1.lo, run->top1.hi, "[%.2f, %.2f]", b, sizeof b));
        set(t, i, 3, "%d", run->n_seeds);
        set(t, i, 4, "%s", rg_fmt_count(run->params, b, sizeof b));
        set(t, i, 5, "%s", rg_fmt_count(run->macs, b, sizeof b));
        set(t, i, 6, "%s", rg_fmt_bytes(run->model_bytes, b, sizeof b));
        /* a dagger: timed on another CPU than the rest (rg_report_timing_note) */
        const char *mark = run->timed_elsewhere ? " \xe2\x80\xa0" : "";
        set(t, i, 7, "%s%s", latency(run->latency_ms, b, sizeof b), mark);
        set(t, i, 8, "%s%s", rg_fmt_seconds(run->train_s, b, sizeof b), mark);
    }
}

void rg_table_comparisons(const rg_report *r, rg_table *t)
{
    /* the test is named in the note above the table (and in results.json):
     * a column of it repeated "paired t-test", or "too few pairs" beside
     * pairs < 2 and "not tested" */
    static const char *const head[] = {"comparison", "baseline", "treatment", "difference (pp)", "95 % CI",
                                       "p-value", "pairs", "verdict", "gap closed", NULL};
    init(t, r->n_comparisons, head, "lllrrrrlr");
    t->tone_col = 7;
    for (int32_t i = 0; i < r->n_comparisons && !t->failed; i++) {
        const rg_report_comparison *c = &r->comparisons[i];
        char b[64];
        set(t, i, 0, "%s", c->name);
        set(t, i, 1, "%s", c->baseline);
        set(t, i, 2, "%s", c->treatment);
        if (isnan(c->diff.mean)) set(t, i, 3, RG_NA);
        else set(t, i, 3, "%+.2f", c->diff.mean);
        set(t, i, 4, "%s", interval(c->diff.lo, c->diff.hi, "[%+.2f, %+.2f]", b, sizeof b));
        set(t, i, 5, "%s", rg_fmt_p(c->diff.p, b, sizeof b));
        set(t, i, 6, "%d", c->n_pairs);
        set(t, i, 7, "%s", rg_verdict_name(c->diff.verdict));
        if (isnan(c->gap_closed)) set(t, i, 8, RG_NA);
        else set(t, i, 8, "%.0f %% of %s", 100.0 * c->gap_closed, c->reference);
        t->tone[i] = c->diff.verdict == RG_VERDICT_GAIN ? 1 : c->diff.verdict == RG_VERDICT_LOSS ? -1 : 0;
    }
}

void rg_table_seeds(const rg_report *r, rg_table *t)
{
    const char *head[] = {"run", "seed", "top-1 %", "best top-1 %", "best epoch", "test loss",
                          "latency", "training time", "CPU", NULL};
    if (r->n_cpus < 2) head[8] = NULL;   /* the CPU column only when the seeds ran on several kinds */
    int32_t rows = 0;
    for (int32_t i = 0; i < r->n_runs; i++) rows += r->runs[i].n_seeds;
    init(t, rows, head, "lrrrrrrrr");
    int32_t row = 0;
    for (int32_t i = 0; i < r->n_runs && !t->failed; i++)
        for (int32_t k = 0; k < r->runs[i].n_seeds; k++, row++) {
            const rg_report_seed *s = &r->runs[i].seeds[k];
            char b[64];
            set(t, row, 0, "%s", r->runs[i].name);
            set(t, row, 1, "%lld", (long long)s->seed);
            set(t, row, 2, "%s", rg_fmt_fixed(s->test_top1, 2, b, sizeof b));
            set(t, row, 3, "%s", rg_fmt_fixed(s->best_top1, 2, b, sizeof b));
            if (s->best_epoch < 0) set(t, row, 4, RG_NA);
            else set(t, row, 4, "%d", s->best_epoch);
            set(t, row, 5, "%s", rg_fmt_fixed(s->test_loss, 4, b, sizeof b));
            set(t, row, 6, "%s", latency(s->latency_ms, b, sizeof b));
            set(t, row, 7, "%s", rg_fmt_seconds(s->train_s, b, sizeof b));
            if (r->n_cpus < 2) continue;
            if (s->cpu < 0) set(t, row, 8, RG_NA);
            else set(t, row, 8, "%d", s->cpu + 1);
        }
}

void rg_table_confusion(const rg_report_run *run, rg_table *t)
{
    int32_t k = run->classes;
    if (k + 2 > RG_TABLE_MAX_COLS) {   /* too wide for a table: the heat map shows it */
        *t = (rg_table){.highlight = -1, .tone_col = -1};
        return;
    }
    const char *head[RG_TABLE_MAX_COLS + 1] = {"true class"};
    char align[RG_TABLE_MAX_COLS + 1] = "l";
    char names[RG_TABLE_MAX_COLS][24];
    for (int32_t j = 0; j < k; j++) {
        head[j + 1] = rg_report_class(run, j, names[j], sizeof names[j]);
        align[j + 1] = 'r';
    }
    head[k + 1] = "images";
    align[k + 1] = 'r';
    head[k + 2] = NULL;
    init(t, k, head, align);
    for (int32_t i = 0; i < k && !t->failed; i++) {
        int64_t row = 0;
        for (int32_t j = 0; j < k; j++) row += run->confusion[(size_t)i * k + j];
        char b[24];
        set(t, i, 0, "%s", rg_report_class(run, i, b, sizeof b));
        for (int32_t j = 0; j < k; j++) {
            if (!row) set(t, i, j + 1, RG_NA);
            else set(t, i, j + 1, "%.1f", 100.0 * (double)run->confusion[(size_t)i * k + j] / (double)row);
        }
        set(t, i, k + 1, "%lld", (long long)row);
    }
}

void rg_table_classes(const rg_report_run *run, rg_table *t)
{
    static const char *const head[] = {"class", "images", "top-1 %", "confused with", NULL};
    int32_t k = run->classes;
    init(t, k, head, "lrrl");
    for (int32_t i = 0; i < k && !t->failed; i++) {
        const int64_t *row = run->confusion + (size_t)i * k;
        int64_t n = 0;
        int32_t worst = -1;
        for (int32_t j = 0; j < k; j++) {
            n += row[j];
            if (j != i && row[j] > 0 && (worst < 0 || row[j] > row[worst])) worst = j;
        }
        char b[24];
        set(t, i, 0, "%s", rg_report_class(run, i, b, sizeof b));
        set(t, i, 1, "%lld", (long long)n);
        if (!n) set(t, i, 2, RG_NA);
        else set(t, i, 2, "%.1f", 100.0 * (double)row[i] / (double)n);
        if (worst < 0) set(t, i, 3, RG_NA);
        else set(t, i, 3, "%s (%.1f %%)", rg_report_class(run, worst, b, sizeof b), 100.0 * (double)row[worst] / (double)n);
    }
}

void rg_table_environment(const rg_report *r, rg_table *t)
{
    static const char *const head[] = {"commit", "compiler", "CPU", "instruction sets", "OpenBLAS", "threads",
                                       "regain", "runs", NULL};
    init(t, r->n_envs, head, "lllllrlr");
    for (int32_t i = 0; i < r->n_envs && !t->failed; i++) {
        const rg_report_env *e = &r->envs[i];
        set(t, i, 0, "%.12s", e->git_commit ? e->git_commit : RG_NA);
        set(t, i, 1, "%s", e->compiler ? e->compiler : RG_NA);
        set(t, i, 2, "%s", e->cpu_model ? e->cpu_model : RG_NA);
        set(t, i, 3, "%s", e->cpu_features ? e->cpu_features : RG_NA);
        set(t, i, 4, "%s", e->blas_core ? e->blas_core : RG_NA);
        if (e->threads < 0) set(t, i, 5, RG_NA);
        else set(t, i, 5, "%d", e->threads);
        set(t, i, 6, "%s", e->regain_version ? e->regain_version : RG_NA);
        set(t, i, 7, "%d", e->n_runs);
    }
}
