/* report.md: the report's tables in Markdown (render.h). */
#include "report/render.h"

#include <math.h>
#include <stdio.h>

static void md_table(rg_text *o, const rg_table *t)
{
    if (t->failed) {
        o->failed = 1;
        return;
    }
    for (int32_t c = 0; c < t->cols; c++) {
        rg_text_put(o, "| ");
        rg_text_md(o, t->head[c]);
        rg_text_put(o, " ");
    }
    rg_text_put(o, "|\n");
    for (int32_t c = 0; c < t->cols; c++) rg_text_put(o, t->align[c] == 'r' ? "| --: " : "| :-- ");
    rg_text_put(o, "|\n");
    for (int32_t r = 0; r < t->rows; r++) {
        const char *em = r == t->highlight ? "**" : "";
        for (int32_t c = 0; c < t->cols; c++) {
            rg_text_printf(o, "| %s", em);
            rg_text_md(o, t->cell[(size_t)r * t->cols + c]);
            rg_text_printf(o, "%s ", em);
        }
        rg_text_put(o, "|\n");
    }
    rg_text_put(o, "\n");
}

void rg_report_markdown(const rg_report *r, rg_text *o)
{
    const rg_report_run *best = &r->runs[r->best];
    char b[256];
    rg_table t;

    rg_text_put(o, "# ");
    rg_text_md(o, r->experiment);
    rg_text_put(o, " \xe2\x80\x94 experiment report\n\nFinished runs from the store ");
    rg_text_md(o, r->store_path);
    if (r->recipe_path) {
        rg_text_put(o, ", recipe ");
        rg_text_md(o, r->recipe_path);
    }
    if (r->updated_at) {
        rg_text_put(o, ", experiment last updated ");
        rg_text_md(o, r->updated_at);
    }
    rg_text_put(o, ".\n\n**Best run: ");
    rg_text_md(o, best->name);
    rg_text_printf(o, "** \xe2\x80\x94 top-1 %s %% over %d seed%s.\n\n", rg_report_top1(best, b, sizeof b),
                   best->n_seeds, best->n_seeds == 1 ? "" : "s");
    if (rg_report_teachers(r, b, sizeof b)) rg_text_printf(o, "%s\n\n", b);
    if (rg_report_unfinished(r, b, sizeof b)) rg_text_printf(o, "> %s\n\n", b);

    rg_text_put(o, "## Summary\n\n"
                   "Final test top-1 accuracy of each run over its seeds: mean \xc2\xb1 sample standard deviation, "
                   "and the 95 % confidence interval of the mean (Student t). Sizes, latency and training time are "
                   "means over the seeds. The best run is in bold.\n\n");
    rg_table_summary(r, &t);
    md_table(o, &t);
    rg_table_free(&t);
    rg_text note = {0};
    if (rg_report_timing_note(r, &note) && note.data) {
        rg_text_put(o, "> ");
        rg_text_md(o, note.data);
        rg_text_put(o, "\n\n");
    }
    o->failed |= note.failed;
    rg_text_free(&note);

    rg_text_put(o, "## Comparisons\n\n");
    if (!r->n_comparisons) {
        rg_text_put(o, "The recipe names no comparisons.\n\n");
    } else {
        char note[640];
        rg_text_printf(o, "%s\n\n", rg_report_comparisons_note(note, sizeof note, "*", ""));
        rg_table_comparisons(r, &t);
        md_table(o, &t);
        rg_table_free(&t);
    }

    rg_text_put(o, "## Per seed\n\n");
    rg_table_seeds(r, &t);
    md_table(o, &t);
    rg_table_free(&t);

    if (best->classes) {
        rg_text_put(o, "## Confusion matrix of ");
        rg_text_md(o, best->name);
        rg_text_printf(o,
                       "\n\nThe best run, summed over its %d seed%s: the accuracy of each class and the class it is "
                       "most often mistaken for, then the whole matrix (rows: true class; columns: predicted class; "
                       "each cell in %% of its row, so the diagonal is the accuracy of the class).\n\n",
                       best->n_seeds, best->n_seeds == 1 ? "" : "s");
        rg_table_classes(best, &t);
        md_table(o, &t);
        rg_table_free(&t);
        rg_table_confusion(best, &t);
        if (t.cols) md_table(o, &t);
        else rg_text_printf(o, "(%d classes: too many for a table; report.html has the heat map.)\n\n", best->classes);
        rg_table_free(&t);
    }

    rg_text_put(o, "## Environment\n\n");
    if (!r->n_envs) {
        rg_text_put(o, "The store has no environment record for these runs.\n\n");
    } else {
        rg_table_environment(r, &t);
        md_table(o, &t);
        rg_table_free(&t);
    }
    rg_text_put(o, "---\nWritten by `regain report`; report.html has the same tables with charts, results.json and "
                   "results.csv every number. docs/report.md describes the statistics.\n");
}
