/* report.html: the report's tables and SVG charts in one self-contained
 * page (render.h). Everything is inline; a Content-Security-Policy that
 * allows inline styles and nothing else makes any outside reference a
 * browser error, which the browser test checks. */
#include "report/render.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "report/svg.h"

static const char css[] =
    ":root{--ink:#1f2933;--muted:#616e7c;--line:#e4e7eb;--bg:#f5f7fa;--accent:#4e79a7}\n"
    "*{box-sizing:border-box}\n"
    "body{margin:0;background:var(--bg);color:var(--ink);"
    "font:15px/1.55 system-ui,-apple-system,\"Segoe UI\",Roboto,\"Helvetica Neue\",Arial,sans-serif}\n"
    ".wrap{max-width:1200px;margin:0 auto;padding:0 24px}\n"
    "header{background:#1f2933;color:#fff;padding:30px 0 64px}\n"
    "header .kicker{font-size:12px;letter-spacing:.12em;text-transform:uppercase;color:#9aa5b1;margin:0 0 6px}\n"
    "header h1{margin:0 0 6px;font-size:30px;font-weight:700;letter-spacing:-.01em}\n"
    "header p{margin:0;color:#cbd2d9;font-size:14px}\n"
    ".cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(210px,1fr));gap:16px;margin-top:-44px}\n"
    ".card{background:#fff;border:1px solid var(--line);border-radius:12px;padding:16px 20px;"
    "box-shadow:0 1px 3px rgba(31,41,51,.08)}\n"
    ".card .k{font-size:12px;letter-spacing:.06em;text-transform:uppercase;color:var(--muted)}\n"
    ".card .v{font-size:22px;font-weight:700;margin-top:2px;overflow-wrap:anywhere;line-height:1.3}\n"
    ".card .s{font-size:13px;color:var(--muted)}\n"
    "section{background:#fff;border:1px solid var(--line);border-radius:12px;padding:22px 26px;margin:20px 0;"
    "box-shadow:0 1px 3px rgba(31,41,51,.05)}\n"
    "h2{font-size:20px;margin:0 0 4px}\n"
    "h3{font-size:15px;margin:18px 0 6px}\n"
    "p.note{color:var(--muted);margin:0 0 16px;font-size:14px;max-width:80ch}\n"
    ".warn{background:#fff8e6;border:1px solid #f0d58c;border-radius:8px;padding:10px 14px;margin:20px 0 0;"
    "font-size:14px}\n"
    ".scroll{overflow-x:auto}\n"
    "table{border-collapse:collapse;width:100%;font-size:14px;font-variant-numeric:tabular-nums}\n"
    "th{font-weight:600;color:var(--muted);font-size:12px;letter-spacing:.04em;text-transform:uppercase;"
    "border-bottom:2px solid var(--line);padding:8px 10px;white-space:nowrap;text-align:left}\n"
    "td{padding:8px 10px;border-bottom:1px solid var(--line);white-space:nowrap}\n"
    "tbody tr:hover td{background:#f8fafc}\n"
    ".r{text-align:right}\n"
    "tr.best td{background:#eef4fb;font-weight:600}\n"
    "td.name{font-weight:600;white-space:normal;min-width:8em}\n"
    "td.t{white-space:normal}\n"
    ".swatch{display:inline-block;width:10px;height:10px;border-radius:3px;margin-right:8px}\n"
    ".badge{display:inline-block;padding:2px 10px;border-radius:999px;font-size:12.5px;font-weight:600;"
    "white-space:nowrap}\n"
    ".badge.gain{background:#e3f4e8;color:#276749}\n"
    ".badge.loss{background:#fde8e8;color:#9b2c2c}\n"
    ".badge.none{background:#edf0f3;color:#52606d}\n"
    ".grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(460px,1fr));gap:8px 24px}\n"
    "figure{margin:8px 0 0}\n"
    ".split{display:flex;flex-wrap:wrap;gap:12px 32px;align-items:flex-start}\n"
    ".split>div{flex:1;min-width:300px;margin-top:8px}\n"
    "figcaption{font-size:13px;color:var(--muted);margin:2px 0 0}\n"
    "svg.chart{max-width:100%;height:auto;display:block}\n"
    "code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px;background:#f0f2f5;"
    "padding:1px 5px;border-radius:4px}\n"
    "dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;font-size:14px;margin:0}\n"
    "dt{color:var(--muted)}dd{margin:0}\n"
    "footer{color:var(--muted);font-size:13px;padding:8px 0 48px}\n";

/* ---- tables ----------------------------------------------------------------------- */

/* colors: when not NULL, the first column gets a swatch of the run's color
 * (colors[row] is a palette index). */
static void html_table(rg_text *o, const rg_table *t, const size_t *colors)
{
    if (t->failed) {
        o->failed = 1;
        return;
    }
    rg_text_put(o, "<div class=\"scroll\"><table>\n<thead><tr>");
    for (int32_t c = 0; c < t->cols; c++) {
        rg_text_printf(o, "<th%s>", t->align[c] == 'r' ? " class=\"r\"" : "");
        rg_text_html(o, t->head[c]);
        rg_text_put(o, "</th>");
    }
    rg_text_put(o, "</tr></thead>\n<tbody>\n");
    for (int32_t r = 0; r < t->rows; r++) {
        rg_text_put(o, r == t->highlight ? "<tr class=\"best\">" : "<tr>");
        for (int32_t c = 0; c < t->cols; c++) {
            const char *cell = t->cell[(size_t)r * t->cols + c];
            /* numbers stay on one line; names and words may wrap, so that a
             * wide table fits the page rather than scrolling */
            rg_text_printf(o, "<td class=\"%s\">", t->align[c] == 'r' ? "r" : c == 0 ? "name" : "t");
            if (c == 0 && colors) rg_text_printf(o, "<span class=\"swatch\" style=\"background:%s\"></span>", rg_svg_color(colors[r]));
            if (c == t->tone_col)
                rg_text_printf(o, "<span class=\"badge %s\">", t->tone[r] > 0 ? "gain" : t->tone[r] < 0 ? "loss" : "none");
            rg_text_html(o, cell);
            if (c == t->tone_col) rg_text_put(o, "</span>");
            rg_text_put(o, "</td>");
        }
        rg_text_put(o, "</tr>\n");
    }
    rg_text_put(o, "</tbody></table></div>\n");
}

/* ---- charts ----------------------------------------------------------------------- */

/* Curves of one measure per run: test solid, train dashed (field offsets
 * into rg_report_epoch). */
static void curves(rg_text *o, const rg_report *r, const char *aria, const char *ylabel, size_t test_off,
                   size_t train_off)
{
    size_t total = 0;
    for (int32_t i = 0; i < r->n_runs; i++) total += (size_t)r->runs[i].n_epochs;
    double *x = malloc((total ? total : 1) * sizeof *x), *yt = malloc((total ? total : 1) * sizeof *yt),
           *yr = malloc((total ? total : 1) * sizeof *yr);
    rg_svg_series *s = calloc((size_t)r->n_runs * 2, sizeof *s);
    rg_svg_legend *lg = calloc((size_t)r->n_runs + 2, sizeof *lg);
    char *tips = calloc((size_t)r->n_runs * 2, 160);
    if (!x || !yt || !yr || !s || !lg || !tips) {
        o->failed = 1;
        goto done;
    }
    size_t at = 0, ns = 0, nl = 0;
    for (int32_t i = 0; i < r->n_runs; i++) {
        const rg_report_run *run = &r->runs[i];
        for (int32_t e = 0; e < run->n_epochs; e++) {
            const char *ep = (const char *)&run->epochs[e];
            x[at + e] = run->epochs[e].epoch;
            yt[at + e] = *(const double *)(ep + test_off);
            yr[at + e] = *(const double *)(ep + train_off);
        }
        char *tip = tips + (size_t)i * 2 * 160;
        snprintf(tip, 160, "%s, test", run->name);
        snprintf(tip + 160, 160, "%s, train", run->name);
        s[ns++] = (rg_svg_series){.x = x + at, .y = yr + at, .n = (size_t)run->n_epochs, .color = (size_t)i,
                                  .dashed = 1, .tooltip = tip + 160};
        s[ns++] = (rg_svg_series){.x = x + at, .y = yt + at, .n = (size_t)run->n_epochs, .color = (size_t)i,
                                  .tooltip = tip};
        lg[nl++] = (rg_svg_legend){.label = run->name, .color = (size_t)i};
        at += (size_t)run->n_epochs;
    }
    lg[nl++] = (rg_svg_legend){.label = "test (solid)", .hex = "#52606d"};
    lg[nl++] = (rg_svg_legend){.label = "train (dashed)", .hex = "#52606d", .dashed = 1};
    rg_svg_axes ax = {.aria = aria, .x_label = "epoch", .y_label = ylabel, .x_integer = 1};
    rg_svg_lines(o, &ax, s, ns, lg, nl);
done:
    free(x), free(yt), free(yr), free(s), free(lg), free(tips);
}

/* Top-1 against a cost (field offset into rg_report_run), with the Pareto
 * front. Returns 0 (and draws nothing) when no run recorded the cost. */
static int tradeoff(rg_text *o, const rg_report *r, size_t cost_off, double unit, const char *xlabel,
                    const char *aria)
{
    double *cost = calloc((size_t)r->n_runs, sizeof *cost), *acc = calloc((size_t)r->n_runs, sizeof *acc);
    size_t *front = calloc((size_t)r->n_runs, sizeof *front);
    rg_svg_point *p = calloc((size_t)r->n_runs, sizeof *p);
    int drawn = 0;
    if (!cost || !acc || !front || !p) {
        o->failed = 1;
        goto done;
    }
    double lo = INFINITY, hi = -INFINITY;
    for (int32_t i = 0; i < r->n_runs; i++) {
        const rg_report_run *run = &r->runs[i];
        cost[i] = *(const double *)((const char *)run + cost_off) / unit;
        if (run->timed_elsewhere && cost_off == offsetof(rg_report_run, latency_ms)) cost[i] = NAN;
        acc[i] = run->top1.mean;
        p[i] = (rg_svg_point){.label = run->name, .x = cost[i], .y = acc[i],
                              .y_err = isnan(run->top1.sd) ? 0 : run->top1.sd, .color = (size_t)i};
        if (cost[i] > 0) lo = fmin(lo, cost[i]), hi = fmax(hi, cost[i]), drawn = 1;
    }
    if (drawn) {
        size_t nf = rg_stats_pareto(cost, acc, (size_t)r->n_runs, front);
        rg_svg_axes ax = {.aria = aria, .x_label = xlabel, .y_label = "top-1 accuracy (%)", .x_log = hi / lo > 20};
        rg_svg_scatter(o, &ax, p, (size_t)r->n_runs, front, nf);
    }
done:
    free(cost), free(acc), free(front), free(p);
    return drawn;
}

/* ---- page ------------------------------------------------------------------------- */

static void card(rg_text *o, const char *k, const char *v, const char *s)
{
    rg_text_put(o, "<div class=\"card\"><div class=\"k\">");
    rg_text_html(o, k);
    rg_text_put(o, "</div><div class=\"v\">");
    rg_text_html(o, v);
    rg_text_put(o, "</div><div class=\"s\">");
    rg_text_html(o, s);
    rg_text_put(o, "</div></div>\n");
}

static void section(rg_text *o, const char *id, const char *title, const char *note)
{
    rg_text_printf(o, "<section id=\"%s\"><h2>", id);
    rg_text_html(o, title);
    rg_text_put(o, "</h2>\n");
    if (note) {
        rg_text_put(o, "<p class=\"note\">");
        rg_text_html(o, note);
        rg_text_put(o, "</p>\n");
    }
}

static void header(rg_text *o, const rg_report *r)
{
    char b[256], v[128];
    int32_t seeds = 0, gains = 0, losses = 0;
    for (int32_t i = 0; i < r->n_runs; i++) seeds += r->runs[i].n_seeds;
    for (int32_t i = 0; i < r->n_comparisons; i++) {
        gains += r->comparisons[i].diff.verdict == RG_VERDICT_GAIN;
        losses += r->comparisons[i].diff.verdict == RG_VERDICT_LOSS;
    }
    rg_text_put(o, "<header><div class=\"wrap\"><p class=\"kicker\">regain \xc2\xb7 experiment report</p><h1>");
    rg_text_html(o, r->experiment);
    rg_text_put(o, "</h1><p>");
    rg_text_html(o, r->store_path);
    if (r->recipe_path) {
        rg_text_put(o, " \xc2\xb7 recipe ");
        rg_text_html(o, r->recipe_path);
    }
    if (r->updated_at) {
        rg_text_put(o, " \xc2\xb7 updated ");
        rg_text_html(o, r->updated_at);
    }
    rg_text_put(o, "</p></div></header>\n<main class=\"wrap\">\n<div class=\"cards\">\n");
    const rg_report_run *best = &r->runs[r->best];
    snprintf(b, sizeof b, "%s %% top-1 over %d seed%s", rg_report_top1(best, v, sizeof v), best->n_seeds,
             best->n_seeds == 1 ? "" : "s");
    card(o, "best run", best->name, b);
    snprintf(v, sizeof v, "%d", r->n_runs);
    snprintf(b, sizeof b, "%d finished (run, seed) pair%s", seeds, seeds == 1 ? "" : "s");
    card(o, "runs", v, b);
    snprintf(v, sizeof v, "%d", r->n_comparisons);
    snprintf(b, sizeof b, "%d gain%s, %d loss%s, %d undecided", gains, gains == 1 ? "" : "s", losses,
             losses == 1 ? "" : "es", r->n_comparisons - gains - losses);
    card(o, "comparisons", v, b);
    const char *size = rg_fmt_bytes(best->model_bytes, v, sizeof v);
    char pa[32], ma[32];
    snprintf(b, sizeof b, "%s parameters, %s MACs", rg_fmt_count(best->params, pa, sizeof pa),
             rg_fmt_count(best->macs, ma, sizeof ma));
    card(o, "best run's model", size, b);
    rg_text_put(o, "</div>\n");
    if (rg_report_teachers(r, b, sizeof b)) {
        rg_text_put(o, "<p class=\"note\">");
        rg_text_html(o, b);
        rg_text_put(o, "</p>\n");
    }
    if (rg_report_unfinished(r, b, sizeof b)) {
        rg_text_put(o, "<p class=\"warn\">");
        rg_text_html(o, b);
        rg_text_put(o, "</p>\n");
    }
}

void rg_report_html(const rg_report *r, rg_text *o)
{
    rg_table t;
    char b[640];
    size_t *colors = malloc(((size_t)r->n_runs + 1) * sizeof *colors);
    if (!colors) {
        o->failed = 1;
        return;
    }
    for (int32_t i = 0; i < r->n_runs; i++) colors[i] = (size_t)i;

    rg_text_put(o, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                   "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n"
                   "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>");
    rg_text_html(o, r->experiment);
    rg_text_printf(o, " \xe2\x80\x94 regain report</title>\n<style>\n%s</style>\n</head>\n<body>\n", css);
    header(o, r);

    section(o, "summary", "Summary",
            "Final test top-1 accuracy of each run over its seeds: mean \xc2\xb1 sample standard deviation and the "
            "95 % confidence interval of the mean (Student t). Sizes, latency and training time are means over the "
            "seeds. The best run is highlighted.");
    rg_table_summary(r, &t);
    html_table(o, &t, colors);
    rg_table_free(&t);
    rg_text note = {0};
    if (rg_report_timing_note(r, &note) && note.data) {
        rg_text_put(o, "<p class=\"warn\">");
        rg_text_html(o, note.data);
        rg_text_put(o, "</p>\n");
    }
    o->failed |= note.failed;
    rg_text_free(&note);
    rg_text_put(o, "</section>\n");

    rg_report_comparisons_note(b, sizeof b, "", " (the whisker)");
    section(o, "comparisons", "Comparisons", r->n_comparisons ? b : "The recipe names no comparisons.");
    if (r->n_comparisons) {
        rg_table_comparisons(r, &t);
        html_table(o, &t, NULL);
        rg_table_free(&t);
        rg_svg_bar *bars = calloc((size_t)r->n_comparisons, sizeof *bars);
        if (!bars) o->failed = 1;
        for (int32_t i = 0; bars && i < r->n_comparisons; i++) {
            const rg_report_comparison *c = &r->comparisons[i];
            bars[i] = (rg_svg_bar){.label = c->name, .value = c->diff.mean, .lo = c->diff.lo, .hi = c->diff.hi,
                                   .tone = c->diff.verdict == RG_VERDICT_GAIN   ? 1
                                           : c->diff.verdict == RG_VERDICT_LOSS ? -1
                                                                                : 0};
        }
        if (bars) {
            rg_text_put(o, "<figure>");
            rg_svg_axes ax = {.aria = "gain in top-1 per comparison with its confidence interval",
                              .x_label = "difference in top-1 (percentage points)"};
            rg_svg_bars(o, &ax, bars, (size_t)r->n_comparisons);
            rg_text_put(o, "<figcaption>Gain per comparison: bar = mean paired difference, whisker = 95 % confidence "
                           "interval; green a gain, red a loss, grey no detectable difference.</figcaption></figure>\n");
        }
        free(bars);
    }
    rg_text_put(o, "</section>\n");

    int have_epochs = 0;
    for (int32_t i = 0; i < r->n_runs; i++) have_epochs |= r->runs[i].n_epochs > 0;
    section(o, "curves", "Training curves",
            have_epochs ? "Per epoch, mean over the seeds of each run: test set solid, training set dashed."
                        : "The store has no per-epoch metrics for these runs.");
    if (have_epochs) {
        rg_text_put(o, "<figure>");
        curves(o, r, "top-1 accuracy per epoch", "top-1 accuracy (%)", offsetof(rg_report_epoch, test_top1),
               offsetof(rg_report_epoch, train_top1));
        rg_text_put(o, "<figcaption>Top-1 accuracy per epoch.</figcaption></figure>\n<figure>");
        curves(o, r, "loss per epoch", "loss", offsetof(rg_report_epoch, test_loss),
               offsetof(rg_report_epoch, train_loss));
        rg_text_put(o, "<figcaption>Loss per epoch (training loss includes label smoothing and other "
                       "regularizers the run used).</figcaption></figure>\n");
    }
    rg_text_put(o, "</section>\n");

    section(o, "tradeoffs", "Accuracy against cost",
            "Mean top-1 of each run (whiskers: \xc2\xb1 one standard deviation over seeds) against its model size and "
            "its latency. The dashed line joins the Pareto front: the runs no other run beats on both accuracy and "
            "cost (ringed).");
    int32_t elsewhere = 0;
    for (int32_t i = 0; i < r->n_runs; i++) elsewhere += r->runs[i].timed_elsewhere;
    rg_text_put(o, "<div class=\"grid2\">\n<figure>");
    if (tradeoff(o, r, offsetof(rg_report_run, model_bytes), 1024.0, "model size (KiB)",
                 "top-1 accuracy against model size"))
        rg_text_put(o, "<figcaption>Accuracy against model size.</figcaption>");
    else rg_text_put(o, "<p class=\"note\">No run recorded its model size.</p>");
    rg_text_put(o, "</figure>\n<figure>");
    if (tradeoff(o, r, offsetof(rg_report_run, latency_ms), 1.0, "latency (ms)", "top-1 accuracy against latency"))
        rg_text_put(o, elsewhere ? "<figcaption>Accuracy against latency (without the runs marked \xe2\x80\xa0 in the "
                                   "summary: no seed of theirs was timed on the summary's CPU).</figcaption>"
                                 : "<figcaption>Accuracy against latency.</figcaption>");
    else rg_text_put(o, "<p class=\"note\">No run recorded its latency.</p>");
    rg_text_put(o, "</figure>\n</div>\n</section>\n");

    const rg_report_run *best = &r->runs[r->best];
    if (best->classes) {
        snprintf(b, sizeof b, "Confusion matrix of %s", best->name);
        char note[256];
        snprintf(note, sizeof note,
                 "The best run, summed over its %d seed%s. Rows: true class; columns: predicted class; each cell "
                 "in %% of its row, so the diagonal is the accuracy of each class. Hover a cell for its count.",
                 best->n_seeds, best->n_seeds == 1 ? "" : "s");
        section(o, "confusion", b, note);
        const char **labels = calloc((size_t)best->classes, sizeof *labels);
        char (*names)[24] = calloc((size_t)best->classes, sizeof *names);
        if (!labels || !names) o->failed = 1;
        for (int32_t c = 0; labels && names && c < best->classes; c++)
            labels[c] = rg_report_class(best, c, names[c], sizeof names[c]);
        if (labels && names) {
            rg_text_put(o, "<div class=\"split\"><figure>");
            rg_svg_heatmap(o, b, best->confusion, best->classes, labels);
            rg_text_put(o, "</figure>\n<div>");
            rg_table_classes(best, &t);
            html_table(o, &t, NULL);
            rg_table_free(&t);
            rg_text_put(o, "</div></div>\n");
        }
        free(labels), free(names);
        rg_text_put(o, "</section>\n");
    }

    section(o, "seeds", "Per seed", "Every finished run: final and best test top-1, the epoch of the best, the "
                                    "final test loss and the training time.");
    rg_table_seeds(r, &t);
    html_table(o, &t, NULL);
    rg_table_free(&t);
    rg_text_put(o, "</section>\n");

    section(o, "environment", "Environment",
            r->n_envs ? "Where the runs were made: source commit, compiler, CPU, its instruction sets, the kernels "
                        "OpenBLAS ran and threads." :
                        "The store has no environment record for these runs.");
    if (r->n_envs) {
        rg_table_environment(r, &t);
        html_table(o, &t, NULL);
        rg_table_free(&t);
    }
    rg_text_put(o, "</section>\n");

    rg_text_put(o, "<footer>Written by <code>regain report</code>. report.md has the same tables; results.json and "
                   "results.csv every number. The statistics are described in docs/report.md.</footer>\n"
                   "</main>\n</body>\n</html>\n");
    free(colors);
}
