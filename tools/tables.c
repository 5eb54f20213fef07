/* Result tables: accuracy, per-class accuracy and the confusion matrix. */
#include "cli.h"
#include "regain/data.h"

#include <stdio.h>
#include <string.h>

void cli_print_eval(FILE *f, const rg_eval_result *r, double wall_s)
{
    char dur[32], nb[32];
    cli_format_duration(wall_s, dur, sizeof dur);
    fprintf(f, "\n  top-1 accuracy   %6.2f %%   (%lld of %lld)\n", 100.0 * r->top1, (long long)r->correct,
            (long long)r->n);
    fprintf(f, "  mean loss        %8.4f\n", r->loss);
    if (wall_s >= 0) fprintf(f, "  wall time        %8s\n", dur);
    fprintf(f, "\n  %-12s %8s %8s\n", "class", "images", "top-1 %");
    fprintf(f, "  %-12s %8s %8s\n", "------------", "------", "-------");
    for (int32_t c = 0; c < r->classes; c++) {
        int64_t row = 0;
        for (int32_t k = 0; k < r->classes; k++) row += r->confusion[(size_t)c * r->classes + k];
        if (!row) continue;
        fprintf(f, "  %-12s %8lld %8.2f\n", rg_class_name(r->classes, c, nb, sizeof nb), (long long)row,
                100.0 * (double)r->confusion[(size_t)c * r->classes + c] / (double)row);
    }
    fprintf(f, "\n  confusion matrix (rows: true class, columns: predicted)\n  %-12s", "");
    for (int32_t k = 0; k < r->classes; k++) fprintf(f, " %5d", k);
    fprintf(f, "\n");
    for (int32_t c = 0; c < r->classes; c++) {
        fprintf(f, "  %d %-10.10s", c, rg_class_name(r->classes, c, nb, sizeof nb));
        for (int32_t k = 0; k < r->classes; k++)
            fprintf(f, " %5lld", (long long)r->confusion[(size_t)c * r->classes + k]);
        fprintf(f, "\n");
    }
}
