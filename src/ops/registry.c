/* The op table: op type -> implementation. */
#include "ops/op.h"

#include <stddef.h>

static const rg_op_def rg_op_input = {.name = "input"};

const rg_op_def *rg_op_def_get(rg_op_type op)
{
    static const rg_op_def *const table[RG_OP_COUNT] = {
        [RG_OP_INPUT] = &rg_op_input,   [RG_OP_CONV] = &rg_op_conv,
        [RG_OP_BN] = &rg_op_bn,         [RG_OP_RELU] = &rg_op_relu,
        [RG_OP_RELU6] = &rg_op_relu6,   [RG_OP_HSWISH] = &rg_op_hswish,
        [RG_OP_SIGMOID] = &rg_op_sigmoid, [RG_OP_ADD] = &rg_op_add,
        [RG_OP_MUL] = &rg_op_mul,       [RG_OP_CONCAT] = &rg_op_concat,
        [RG_OP_SLICE] = &rg_op_slice,   [RG_OP_SHUFFLE] = &rg_op_shuffle,
        [RG_OP_MAXPOOL] = &rg_op_maxpool, [RG_OP_AVGPOOL] = &rg_op_avgpool,
        [RG_OP_GAP] = &rg_op_gap,       [RG_OP_LINEAR] = &rg_op_linear,
        [RG_OP_DROPOUT] = &rg_op_dropout, [RG_OP_FAKE_QUANT] = &rg_op_fake_quant,
    };
    if ((int)op < 0 || op >= RG_OP_COUNT) return NULL;
    return table[op];
}

const char *rg_op_name(rg_op_type op)
{
    const rg_op_def *d = rg_op_def_get(op);
    return d ? d->name : "?";
}
