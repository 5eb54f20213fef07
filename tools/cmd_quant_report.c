/* regain quant-report: the quantization doctor, per layer. */
#include "cli.h"
#include "quant_cli.h"
#include "regain/quant_doctor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void flags_text(unsigned f, char *buf, size_t size)
{
    snprintf(buf, size, "%s%s%s%s%s", f & RG_QDOC_LOW_SQNR ? "L" : ".", f & RG_QDOC_BIG_DROP ? "D" : ".",
             f & RG_QDOC_WIDE_CHANNELS ? "W" : ".", f & RG_QDOC_BIASED ? "B" : ".", f & RG_QDOC_CLIPPED ? "C" : ".");
}

int cmd_quant_report(int argc, char **argv)
{
    static const char *const usage_head =
        "usage: regain quant-report CHECKPOINT [--calib N] [--observer KIND] [--per-tensor] [--equalize]\n"
        "                           [--bias-correct] [--data DIR] [...]\n"
        "\n"
        "The quantization doctor: lowers the model as 'regain quantize' would, runs the float and\n"
        "the int8 model on the calibration images and prints, per layer, the signal-to-quantization-\n"
        "noise ratio of its output (float against int8), what the layer itself loses (drop from its\n"
        "inputs), the per-channel weight ranges, flags and the remedy to try first.\n"
        "\n";
    char usage[4096];
    snprintf(usage, sizeof usage, "%s%s", usage_head, cli_quant_options_help);
    cli_quant_opts o;
    int rc = cli_quant_parse("quant-report", argc, argv, &o, usage);
    if (rc >= 0) return rc;
    if (o.out) return cli_usage_error("quant-report", "--out belongs to 'regain quantize'");
    rg_set_threads(o.threads);
    rg_error err = {0};
    cli_quant_ctx c;
    rg_qdoc_layer *rows = NULL;
    int32_t n_rows = 0;
    rg_qdoc_config dc = rg_qdoc_default();
    dc.batch = o.batch;
    rg_status st = cli_quant_prepare(&o, &c, &err);
    if (!st) st = cli_quant_lower(&o, &c, &err);
    if (!st) {
        fprintf(stderr, "comparing float and int8 activations on %d images\n", (int)c.n_calib);
        st = rg_quant_doctor(c.m, c.calib, c.n_calib, &dc, &rows, &n_rows, &err);
    }
    if (!st) {
        printf("%s: %d int8 ops, %s weights%s%s, observer %s, %d images\n\n", o.ckpt, (int)c.m->n_ops,
               c.m->per_channel ? "per-channel" : "per-tensor", o.lower.equalize ? ", equalized" : "",
               o.lower.bias_correct ? ", bias-corrected" : "", rg_obs_kind_name(o.lower.observer.kind),
               (int)c.n_calib);
        printf("  %-22s %-9s %8s %7s %6s %7s %9s %9s %8s %6s  %s\n", "layer", "op", "SQNR dB", "drop", "bias",
               "clip %", "w min", "w max", "w ratio", "flags", "remedy");
        printf("  %-22s %-9s %8s %7s %6s %7s %9s %9s %8s %6s  %s\n", "----------------------", "---------",
               "-------", "------", "-----", "------", "--------", "--------", "-------", "-----", "------");
        int flagged = 0;
        int32_t worst = -1;
        for (int32_t i = 0; i < n_rows; i++) {
            const rg_qdoc_layer *r = &rows[i];
            char fl[8], wmin[16] = "", wmax[16] = "", wr[16] = "";
            flags_text(r->flags, fl, sizeof fl);
            if (r->has_weights) {
                snprintf(wmin, sizeof wmin, "%.3g", (double)r->w_range_min);
                snprintf(wmax, sizeof wmax, "%.3g", (double)r->w_range_max);
                snprintf(wr, sizeof wr, "%.1f", (double)r->w_range_ratio);
            }
            printf("  %-22.22s %-9s %8.1f %7.1f %6.2f %7.2f %9s %9s %8s %6s  %s\n", r->name,
                   r->op < 0 ? "input" : rg_qop_kind_name(r->kind), r->sqnr_db, r->drop_db, r->err_bias,
                   100.0 * r->clipped, wmin, wmax, wr, fl, r->remedy);
            if (r->flags) flagged++;
            if (r->op >= 0 && (worst < 0 || r->drop_db > rows[worst].drop_db)) worst = i;
        }
        printf("\n  flags: L SQNR below %.0f dB, D loses more than %.0f dB against its inputs,\n"
               "         W weight channel ranges spread over %.0fx, B error biased (|mean| > %.1f RMS),\n"
               "         C more than %.1f %% of the float values beyond the int8 range (clipped)\n",
               dc.low_sqnr_db, dc.drop_db, dc.wide_ratio, dc.biased_ratio, 100.0 * dc.clipped_ratio);
        printf("  %d of %d rows flagged", flagged, (int)n_rows);
        if (worst >= 0)
            printf("; the largest loss is %s (%.1f dB): %s", rows[worst].name, rows[worst].drop_db,
                   rows[worst].remedy);
        printf("\n  output SQNR %.1f dB\n", n_rows ? rows[n_rows - 1].sqnr_db : 0.0);
    }
    free(rows);
    cli_quant_ctx_free(&c);
    return st ? cli_fail(&err) : EXIT_OK;
}
