/* Shared by regain quantize and regain quant-report (cmd_quantize.c). */
#ifndef REGAIN_TOOLS_QUANT_CLI_H
#define REGAIN_TOOLS_QUANT_CLI_H

#include "regain/graph.h"
#include "regain/ptq.h"
#include "regain/quant_model.h"
#include "regain/safetensors.h"

typedef struct {
    const char *ckpt, *data, *out;
    int32_t calib, batch, limit, threads;
    uint64_t seed;
    rg_lower_config lower;
    int requant_fp32;         /* --requant fp32 (rg_qmodel_use_fp32 after lowering) */
} cli_quant_opts;

typedef struct {
    rg_graph *g;
    rg_st_file *f;
    float mean, std;          /* input normalization from the checkpoint */
    float *calib;             /* n_calib normalized training images */
    int32_t n_calib;
    rg_qmodel *m;
} cli_quant_ctx;

extern const char *const cli_quant_options_help;
/* Parses the common options; returns -1 to go on, else the exit code. */
int cli_quant_parse(const char *cmd, int argc, char **argv, cli_quant_opts *o, const char *usage);
/* Loads the checkpoint and the calibration subset. */
rg_status cli_quant_prepare(const cli_quant_opts *o, cli_quant_ctx *c, rg_error *err);
/* Lowers c->g into c->m with progress lines on stderr. */
rg_status cli_quant_lower(const cli_quant_opts *o, cli_quant_ctx *c, rg_error *err);
void cli_quant_ctx_free(cli_quant_ctx *c);

#endif
