/* The microcontroller export (regain/export_c.h): an int8 model as C99
 * source. model.c is generated here; the kernels, the self-check program
 * and the board files are the project's own files, embedded at build time
 * (deploy/export_files.h) and written out unchanged.
 *
 * The generated code mirrors the runtime (src/rt/runtime.c) op for op: the
 * same kernel parameters, pointwise convolutions as the fully connected
 * kernel over pixels, and the arena offsets of the runtime's plan
 * (rg_rt_tensor_offset), so a clamp or a table lookup the planner put in
 * place runs in place here too. The ops without a fast kernel (concat,
 * split, shuffle, mul, lookup tables, rt_ref_ops.c) and the per-channel
 * clamp of equalized layers call the same reference kernels the runtime
 * calls, with the same arguments. The reference kernels need no scratch,
 * so the arena is the plan's activation peak alone. */
#include "regain/export_c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deploy/export_files.h"
#include "regain/fileio.h"
#include "regain/rng.h"
#include "report/text.h"

#define MAX_INPUTS 64

rg_export_c_options rg_export_c_default(void)
{
    return (rg_export_c_options){.n_inputs = 2, .inputs = NULL, .seed = 1, .name = NULL};
}

static size_t tensor_bytes(const rg_rgm *m, int32_t t)
{
    return (size_t)m->tensors[t].h * (size_t)m->tensors[t].w * (size_t)m->tensors[t].c;
}

static int is_pointwise(const rg_rgm_op *o)
{
    return o->kind == RG_RT_CONV && o->k_h == 1 && o->k_w == 1 && o->stride == 1 && o->pad == 0;
}

/* A name safe inside a C comment and a string literal. */
static void put_name(rg_text *t, const char *s)
{
    for (const char *p = s; *p; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
                 c == '-' || c == ':' || c == '[' || c == ']';
        rg_text_putn(t, ok ? &c : "_", 1);
    }
}

static void put_i32(rg_text *t, int32_t v)
{
    if (v == INT32_MIN) rg_text_put(t, "(-2147483647 - 1)"); /* the literal 2147483648 is not an int */
    else rg_text_printf(t, "%ld", (long)v);
}

static void emit_s8(rg_text *t, const char *name, int32_t op, const int8_t *v, size_t n)
{
    rg_text_printf(t, "static const int8_t %s%d[%zu] = {", name, (int)op, n);
    for (size_t i = 0; i < n; i++) rg_text_printf(t, "%s%d%s", i % 24 ? " " : "\n    ", (int)v[i], i + 1 < n ? "," : "");
    rg_text_put(t, "\n};\n");
}

static void emit_s32(rg_text *t, const char *name, int32_t op, const int32_t *v, size_t n)
{
    rg_text_printf(t, "static const int32_t %s%d[%zu] = {", name, (int)op, n);
    for (size_t i = 0; i < n; i++) {
        rg_text_put(t, i % 10 ? " " : "\n    ");
        put_i32(t, v[i]);
        if (i + 1 < n) rg_text_put(t, ",");
    }
    rg_text_put(t, "\n};\n");
}

/* fp32 scales as hexadecimal float literals: the compiler reads back the
 * exact bits */
static void emit_f32(rg_text *t, const char *name, int32_t op, const float *v, size_t n)
{
    rg_text_printf(t, "static const float %s%d[%zu] = {", name, (int)op, n);
    for (size_t i = 0; i < n; i++) rg_text_printf(t, "%s%af%s", i % 6 ? " " : "\n    ", (double)v[i], i + 1 < n ? "," : "");
    rg_text_put(t, "\n};\n");
}

/* Weights, bias and requantization arrays of op i (the fp32 scales when the
 * op has them, else multipliers and shifts); returns their bytes. */
static size_t emit_params(rg_text *t, const rg_rgm_op *o, int32_t i, size_t weights)
{
    emit_s8(t, "w", i, o->weights, weights);
    size_t bytes = weights + (o->scales ? 4 : 8) * (size_t)o->out_c;
    if (o->bias) {
        emit_s32(t, "b", i, o->bias, (size_t)o->out_c);
        bytes += 4 * (size_t)o->out_c;
    }
    if (o->scales) {
        emit_f32(t, "f", i, o->scales, (size_t)o->out_c);
        return bytes;
    }
    emit_s32(t, "m", i, o->multipliers, (size_t)o->out_c);
    emit_s32(t, "s", i, o->shifts, (size_t)o->out_c);
    return bytes;
}

/* The requantization fields of op i's parameter initializer. */
static const char *requant_fields(const rg_rgm_op *o, int32_t i, char *buf, size_t size)
{
    if (o->scales) snprintf(buf, size, ".scales = f%d", (int)i);
    else snprintf(buf, size, ".multipliers = m%d, .shifts = s%d", (int)i, (int)i);
    return buf;
}

/* The per-output-channel upper clamp of an equalized conv / depthwise / fc
 * (act_max_c), in place on its output after the kernel, as the runtime
 * applies it (rg_rt_clamp_channels); nothing when the op has none. */
static void emit_clamp_channels(const rg_rgm *m, const rg_rgm_op *o, int32_t i, size_t y, rg_text *decl,
                                rg_text *body, size_t *bytes)
{
    if (!o->act_max_c) return;
    const rg_rgm_tensor *out = &m->tensors[o->out];
    emit_s32(decl, "hc", i, o->act_max_c, (size_t)o->out_c);
    rg_text_put(decl, "\n");
    *bytes += 4 * (size_t)o->out_c;
    rg_text_printf(body, "    if (rg_q_clamp_channels_s8(a + %zu, %d, %d, hc%d, a + %zu, NULL)) return %d;\n", y,
                   (int)(out->h * out->w), (int)out->c, (int)i, y, (int)i + 1);
}

/* The kinds emit_op writes: every kind of .rgm version 2. A kind the
 * runtime gains later is refused by name (RG_ERR_UNSUPPORTED) before
 * anything is written, until it has its case in emit_op. */
static int supported(rg_rt_kind k)
{
    switch (k) {
    case RG_RT_CONV:
    case RG_RT_DEPTHWISE:
    case RG_RT_FC:
    case RG_RT_ADD:
    case RG_RT_AVGPOOL:
    case RG_RT_MAXPOOL:
    case RG_RT_GAP:
    case RG_RT_CLAMP:
    case RG_RT_CONCAT:
    case RG_RT_SPLIT:
    case RG_RT_SHUFFLE:
    case RG_RT_MUL:
    case RG_RT_LUT: return 1;
    default: return 0;
    }
}

static rg_status unsupported(const rg_rgm *m, int32_t i, rg_error *err)
{
    const rg_rgm_op *o = &m->ops[i];
    return rg_fail(err, RG_ERR_UNSUPPORTED, "op %d (%s): kind %s (%d) is not supported by the C export", (int)i, o->name,
                   rg_rt_kind_name(o->kind), (int)o->kind);
}

/* Declarations (decl) and the kernel call (body) of op i. Adds the bytes of
 * its constant arrays and parameters to *bytes. */
static rg_status emit_op(const rg_rgm *m, const rg_rt *rt, int32_t i, rg_text *decl, rg_text *body, size_t *bytes,
                         rg_error *err)
{
    const rg_rgm_op *o = &m->ops[i];
    const rg_rgm_tensor *in = &m->tensors[o->in[0]], *out = &m->tensors[o->out];
    size_t x = rg_rt_tensor_offset(rt, o->in[0]), y = rg_rt_tensor_offset(rt, o->out);
    size_t n_out = tensor_bytes(m, o->out);
    rg_text_printf(body, "    /* %d: %s ", (int)i, rg_rt_kind_name(o->kind));
    put_name(body, o->name);
    rg_text_put(body, ",");
    for (int32_t k = 0; k < rg_rgm_op_n_in(o); k++) {
        const rg_rgm_tensor *tk = &m->tensors[o->in[k]];
        rg_text_printf(body, "%s %dx%dx%d", k ? " +" : "", (int)tk->h, (int)tk->w, (int)tk->c);
    }
    rg_text_printf(body, " -> %dx%dx%d */\n", (int)out->h, (int)out->w, (int)out->c);
    char bias[32] = "NULL", rq[64];
    if (o->bias) snprintf(bias, sizeof bias, "b%d", (int)i);
    switch (o->kind) {
    case RG_RT_CONV:
    case RG_RT_DEPTHWISE:
        if (is_pointwise(o)) {
            *bytes += emit_params(decl, o, i, (size_t)o->out_c * in->c);
            rg_text_printf(decl,
                           "static const rg_q_fc_params p%d = {.batch = %d, .in_features = %d, .out_features = %d, "
                           ".in_zp = %d, .out_zp = %d,\n    .act_min = %d, .act_max = %d, %s};\n\n",
                           (int)i, (int)(in->h * in->w), (int)in->c, (int)o->out_c, (int)in->q.zero_point,
                           (int)out->q.zero_point, (int)o->act_min, (int)o->act_max, requant_fields(o, i, rq, sizeof rq));
            rg_text_printf(body, "    if (rg_q_pointwise_s8(&p%d, a + %zu, w%d, %s, a + %zu, NULL)) return %d;\n", (int)i,
                           x, (int)i, bias, y, (int)i + 1);
        } else {
            int dw = o->kind == RG_RT_DEPTHWISE;
            *bytes += emit_params(decl, o, i, (size_t)o->out_c * o->k_h * o->k_w * (dw ? 1 : in->c));
            rg_text_printf(decl,
                           "static const rg_q_conv_params p%d = {.batch = 1, .in_h = %d, .in_w = %d, .in_c = %d, "
                           ".out_h = %d, .out_w = %d, .out_c = %d,\n    .k_h = %d, .k_w = %d, .stride_h = %d, "
                           ".stride_w = %d, .dilation_h = 1, .dilation_w = 1, .pad_top = %d, .pad_left = %d,\n"
                           "    .in_zp = %d, .out_zp = %d, .act_min = %d, .act_max = %d, %s};\n\n",
                           (int)i, (int)in->h, (int)in->w, (int)in->c, (int)out->h, (int)out->w, (int)out->c,
                           (int)o->k_h, (int)o->k_w, (int)o->stride, (int)o->stride, (int)o->pad, (int)o->pad,
                           (int)in->q.zero_point, (int)out->q.zero_point, (int)o->act_min, (int)o->act_max,
                           requant_fields(o, i, rq, sizeof rq));
            rg_text_printf(body, "    if (rg_q_%s_s8(&p%d, a + %zu, w%d, %s, a + %zu, NULL)) return %d;\n",
                           dw ? "depthwise" : "conv2d", (int)i, x, (int)i, bias, y, (int)i + 1);
        }
        break;
    case RG_RT_FC:
        *bytes += emit_params(decl, o, i, (size_t)o->out_c * tensor_bytes(m, o->in[0]));
        rg_text_printf(decl,
                       "static const rg_q_fc_params p%d = {.batch = 1, .in_features = %zu, .out_features = %d, "
                       ".in_zp = %d, .out_zp = %d,\n    .act_min = %d, .act_max = %d, %s};\n\n",
                       (int)i, tensor_bytes(m, o->in[0]), (int)o->out_c, (int)in->q.zero_point, (int)out->q.zero_point,
                       (int)o->act_min, (int)o->act_max, requant_fields(o, i, rq, sizeof rq));
        rg_text_printf(body, "    if (rg_q_fc_s8(&p%d, a + %zu, w%d, %s, a + %zu, NULL)) return %d;\n", (int)i, x,
                       (int)i, bias, y, (int)i + 1);
        break;
    case RG_RT_ADD: {
        const rg_q_add_params *p = &o->add;
        rg_text_printf(decl,
                       "static const rg_q_add_params p%d = {.in1_zp = %d, .in2_zp = %d, .out_zp = %d, .left_shift = %d,\n"
                       "    .in1_multiplier = %ld, .in1_shift = %d, .in2_multiplier = %ld, .in2_shift = %d,\n"
                       "    .out_multiplier = %ld, .out_shift = %d, .act_min = %d, .act_max = %d,\n"
                       "    .in1_scale = %af, .in2_scale = %af};\n\n",
                       (int)i, (int)p->in1_zp, (int)p->in2_zp, (int)p->out_zp, (int)p->left_shift,
                       (long)p->in1_multiplier, (int)p->in1_shift, (long)p->in2_multiplier, (int)p->in2_shift,
                       (long)p->out_multiplier, (int)p->out_shift, (int)p->act_min, (int)p->act_max,
                       (double)p->in1_scale, (double)p->in2_scale);
        rg_text_printf(body, "    if (rg_q_add_s8(&p%d, a + %zu, a + %zu, %zu, a + %zu, NULL)) return %d;\n", (int)i, x,
                       rg_rt_tensor_offset(rt, o->in[1]), n_out, y, (int)i + 1);
        break;
    }
    case RG_RT_AVGPOOL:
    case RG_RT_MAXPOOL:
        rg_text_printf(decl,
                       "static const rg_q_pool_params p%d = {.batch = 1, .in_h = %d, .in_w = %d, .c = %d, .out_h = %d, "
                       ".out_w = %d,\n    .k_h = %d, .k_w = %d, .stride_h = %d, .stride_w = %d, .pad_top = %d, "
                       ".pad_left = %d, .act_min = %d, .act_max = %d};\n\n",
                       (int)i, (int)in->h, (int)in->w, (int)in->c, (int)out->h, (int)out->w, (int)o->k_h, (int)o->k_w,
                       (int)o->stride, (int)o->stride, (int)o->pad, (int)o->pad, (int)o->act_min, (int)o->act_max);
        rg_text_printf(body, "    if (rg_q_%s_s8(&p%d, a + %zu, a + %zu, NULL)) return %d;\n",
                       o->kind == RG_RT_AVGPOOL ? "avgpool" : "maxpool", (int)i, x, y, (int)i + 1);
        break;
    case RG_RT_GAP:
        rg_text_printf(decl,
                       "static const rg_q_gap_params p%d = {.batch = 1, .h = %d, .w = %d, .c = %d, .in_zp = %d, "
                       ".out_zp = %d,\n    .multiplier = %ld, .shift = %d, .act_min = %d, .act_max = %d};\n\n",
                       (int)i, (int)in->h, (int)in->w, (int)in->c, (int)in->q.zero_point, (int)out->q.zero_point,
                       (long)o->gap_multiplier, (int)o->gap_shift, (int)o->act_min, (int)o->act_max);
        rg_text_printf(body, "    if (rg_q_gap_s8(&p%d, a + %zu, a + %zu, NULL)) return %d;\n", (int)i, x, y,
                       (int)i + 1);
        break;
    case RG_RT_CLAMP:
        rg_text_printf(body, "    if (rg_q_clamp_s8(a + %zu, %zu, %d, %d, a + %zu, NULL)) return %d;\n", x, n_out,
                       (int)o->act_min, (int)o->act_max, y, (int)i + 1);
        break;
    case RG_RT_CONCAT: {
        /* each input requantized to the output (a copy where the parameters
         * agree); the inputs' arena addresses in a local array */
        rg_text_printf(decl, "static const rg_q_concat_params p%d = {.n_in = %d, .out_zp = %d,\n    .c = {", (int)i,
                       (int)o->n_in, (int)out->q.zero_point);
        for (int32_t k = 0; k < o->n_in; k++) rg_text_printf(decl, "%s%d", k ? ", " : "", (int)m->tensors[o->in[k]].c);
        rg_text_put(decl, "}, .in_zp = {");
        for (int32_t k = 0; k < o->n_in; k++)
            rg_text_printf(decl, "%s%d", k ? ", " : "", (int)m->tensors[o->in[k]].q.zero_point);
        rg_text_put(decl, "},\n    .multiplier = {");
        for (int32_t k = 0; k < o->n_in; k++) {
            rg_text_put(decl, k ? ", " : "");
            put_i32(decl, o->cat_multipliers[k]);
        }
        rg_text_put(decl, "}, .shift = {");
        for (int32_t k = 0; k < o->n_in; k++) rg_text_printf(decl, "%s%d", k ? ", " : "", (int)o->cat_shifts[k]);
        rg_text_put(decl, "}};\n\n");
        rg_text_put(body, "    {\n        const int8_t *const x[] = {");
        for (int32_t k = 0; k < o->n_in; k++)
            rg_text_printf(body, "%sa + %zu", k ? ", " : "", rg_rt_tensor_offset(rt, o->in[k]));
        rg_text_printf(body, "};\n        if (rg_q_concat_s8(&p%d, x, %d, a + %zu, NULL)) return %d;\n    }\n", (int)i,
                       (int)(out->h * out->w), y, (int)i + 1);
        break;
    }
    case RG_RT_SPLIT:
        rg_text_printf(body, "    if (rg_q_split_s8(a + %zu, %d, %d, %d, %d, a + %zu, NULL)) return %d;\n", x,
                       (int)(out->h * out->w), (int)in->c, (int)o->ch_begin, (int)out->c, y, (int)i + 1);
        break;
    case RG_RT_SHUFFLE:
        rg_text_printf(body, "    if (rg_q_shuffle_s8(a + %zu, %d, %d, %d, a + %zu, NULL)) return %d;\n", x,
                       (int)(out->h * out->w), (int)out->c, (int)o->groups, y, (int)i + 1);
        break;
    case RG_RT_MUL: {
        const rg_rgm_tensor *b = &m->tensors[o->in[1]];
        rg_text_printf(decl,
                       "static const rg_q_mul_params p%d = {.in1_zp = %d, .in2_zp = %d, .out_zp = %d, "
                       ".multiplier = %ld,\n    .shift = %d, .act_min = %d, .act_max = %d};\n\n",
                       (int)i, (int)in->q.zero_point, (int)b->q.zero_point, (int)out->q.zero_point,
                       (long)o->mul_multiplier, (int)o->mul_shift, (int)o->act_min, (int)o->act_max);
        /* b: the same shape, or one value per channel broadcast over the pixels */
        rg_text_printf(body, "    if (rg_q_mul_s8(&p%d, a + %zu, a + %zu, 1, %d, %d, %d, a + %zu, NULL)) return %d;\n",
                       (int)i, x, rg_rt_tensor_offset(rt, o->in[1]), (int)(out->h * out->w), (int)out->c,
                       (int)(b->h * b->w), y, (int)i + 1);
        break;
    }
    case RG_RT_LUT:
        emit_s8(decl, "t", i, o->lut, 256);
        rg_text_put(decl, "\n");
        *bytes += 256;
        rg_text_printf(body, "    if (rg_q_lut_s8(t%d, a + %zu, %zu, a + %zu, NULL)) return %d;\n", (int)i, x, n_out, y,
                       (int)i + 1);
        break;
    default: return unsupported(m, i, err);
    }
    emit_clamp_channels(m, o, i, y, decl, body, bytes);
    rg_text_printf(body, "    if (fn) fn(user, %d, a + %zu, %zu);\n", (int)i, y, n_out);
    return RG_OK;
}

static void put_header_comment(rg_text *t, const char *what, const char *name)
{
    rg_text_printf(t, "/* %s of ", what);
    put_name(t, name);
    rg_text_put(t, ", generated by `regain export --c`: do not edit. */\n");
}

static rg_status gen_model_h(const rg_rgm *m, size_t arena, const char *name, rg_text *t)
{
    const rg_rgm_tensor *ti = &m->tensors[m->input], *to = &m->tensors[m->output];
    put_header_comment(t, "The int8 model", name);
    rg_text_printf(t,
                   "#ifndef MODEL_H\n#define MODEL_H\n\n#include <stdint.h>\n\n"
                   "#define MODEL_NAME \"");
    put_name(t, name);
    rg_text_printf(t,
                   "\"\n"
                   "#define MODEL_INPUT_H %d\n#define MODEL_INPUT_W %d\n#define MODEL_INPUT_C %d\n"
                   "#define MODEL_INPUT_BYTES %zu\n#define MODEL_OUTPUT_BYTES %zu\n"
                   "#define MODEL_ARENA_BYTES %zu\n#define MODEL_N_LAYERS %d\n\n"
                   "/* Quantization of the input and the output: real = scale * (q - zero_point).\n"
                   " * The input is the image normalized as in training, x = (pixel / 255 - mean) / std,\n"
                   " * then q = clamp(round(x / scale) + zero_point, -128, 127). */\n"
                   "#define MODEL_INPUT_MEAN %.9ef\n#define MODEL_INPUT_STD %.9ef\n"
                   "#define MODEL_INPUT_SCALE %.9ef\n#define MODEL_INPUT_ZERO_POINT %d\n"
                   "#define MODEL_OUTPUT_SCALE %.9ef\n#define MODEL_OUTPUT_ZERO_POINT %d\n\n"
                   "/* Runs one image: in (MODEL_INPUT_BYTES, NHWC int8) -> out (MODEL_OUTPUT_BYTES).\n"
                   " * Uses the static arena (not reentrant). Returns 0, or 1 + the index of a layer\n"
                   " * whose kernel refused its parameters (never, for an exported model). */\n"
                   "int model_invoke(const int8_t *in, int8_t *out);\n\n"
                   "/* The same, calling fn(user, layer, y, n) after every layer with its output\n"
                   " * (n bytes, valid until a later layer overwrites it); fn may be NULL. */\n"
                   "typedef void (*model_layer_fn)(void *user, int32_t layer, const int8_t *y, int32_t n);\n"
                   "int model_invoke_layers(const int8_t *in, int8_t *out, model_layer_fn fn, void *user);\n\n"
                   "/* Layer names, as in the model file. */\n"
                   "extern const char *const model_layer_names[MODEL_N_LAYERS];\n\n#endif\n",
                   (int)ti->h, (int)ti->w, (int)ti->c, tensor_bytes(m, m->input), tensor_bytes(m, m->output), arena,
                   (int)m->n_ops, (double)m->mean, (double)m->std, (double)ti->q.scale, (int)ti->q.zero_point,
                   (double)to->q.scale, (int)to->q.zero_point);
    return RG_OK;
}

static rg_status gen_model_c(const rg_rgm *m, const rg_rt *rt, const char *name, rg_text *t, size_t *bytes,
                             rg_error *err)
{
    rg_text decl = {0}, body = {0};
    rg_status st = RG_OK;
    for (int32_t i = 0; i < m->n_ops && !st; i++) st = emit_op(m, rt, i, &decl, &body, bytes, err);
    if (!st) {
        put_header_comment(t, "The weights and the layer sequence", name);
        rg_text_put(t,
                    "#include \"model.h\"\n\n#include <stddef.h>\n#include <string.h>\n\n"
                    "#include \"regain/quant_kernels.h\"\n\n"
                    "/* activations, placed by the runtime's memory planner (liveness) */\n"
                    "static int8_t model_arena[MODEL_ARENA_BYTES];\n\n"
                    "const char *const model_layer_names[MODEL_N_LAYERS] = {");
        for (int32_t i = 0; i < m->n_ops; i++) {
            rg_text_put(t, i % 4 ? " \"" : "\n    \"");
            put_name(t, m->ops[i].name);
            rg_text_put(t, i + 1 < m->n_ops ? "\"," : "\"");
        }
        rg_text_put(t, "\n};\n\n");
        rg_text_putn(t, decl.data ? decl.data : "", decl.len);
        rg_text_printf(t,
                       "int model_invoke_layers(const int8_t *in, int8_t *out, model_layer_fn fn, void *user)\n{\n"
                       "    int8_t *const a = model_arena;\n"
                       "    memcpy(a + %zu, in, MODEL_INPUT_BYTES);\n",
                       rg_rt_tensor_offset(rt, m->input));
        rg_text_putn(t, body.data ? body.data : "", body.len);
        rg_text_printf(t,
                       "    memcpy(out, a + %zu, MODEL_OUTPUT_BYTES);\n    return 0;\n}\n\n"
                       "int model_invoke(const int8_t *in, int8_t *out)\n{\n"
                       "    return model_invoke_layers(in, out, NULL, NULL);\n}\n",
                       rg_rt_tensor_offset(rt, m->output));
        if (decl.failed || body.failed) st = rg_fail(err, RG_ERR_NOMEM, "out of memory generating model.c");
    }
    rg_text_free(&decl);
    rg_text_free(&body);
    return st;
}

static void put_s8_rows(rg_text *t, const int8_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) rg_text_printf(t, "%s%d%s", i % 24 ? " " : "\n    ", (int)v[i], i + 1 < n ? "," : "");
}

/* golden.h and golden.c from the runtime's outputs: outs [n_in][out bytes],
 * layers[i]: op i's output for input 0. */
static void gen_golden(const rg_rgm *m, const char *name, int32_t n_in, const int8_t *ins, const int8_t *outs,
                       int8_t *const *layers, rg_text *h, rg_text *c, size_t *bytes)
{
    size_t in_n = tensor_bytes(m, m->input), out_n = tensor_bytes(m, m->output);
    put_header_comment(h, "Golden vectors (the host runtime's results)", name);
    rg_text_printf(h,
                   "#ifndef GOLDEN_H\n#define GOLDEN_H\n\n#include <stdint.h>\n\n#include \"model.h\"\n\n"
                   "#define GOLDEN_N_INPUTS %d\n\n"
                   "extern const int8_t golden_inputs[GOLDEN_N_INPUTS][MODEL_INPUT_BYTES];\n"
                   "extern const int8_t golden_outputs[GOLDEN_N_INPUTS][MODEL_OUTPUT_BYTES];\n\n"
                   "/* every layer's output for golden_inputs[0] */\n"
                   "typedef struct {\n    int32_t size;\n    const int8_t *data;\n} golden_layer;\n"
                   "extern const golden_layer golden_layers[MODEL_N_LAYERS];\n\n#endif\n",
                   (int)n_in);
    put_header_comment(c, "Golden vectors (the host runtime's results)", name);
    rg_text_put(c, "#include \"golden.h\"\n\nconst int8_t golden_inputs[GOLDEN_N_INPUTS][MODEL_INPUT_BYTES] = {");
    for (int32_t k = 0; k < n_in; k++) {
        rg_text_put(c, "{");
        put_s8_rows(c, ins + (size_t)k * in_n, in_n);
        rg_text_put(c, k + 1 < n_in ? "},\n" : "}");
    }
    rg_text_put(c, "};\n\nconst int8_t golden_outputs[GOLDEN_N_INPUTS][MODEL_OUTPUT_BYTES] = {");
    for (int32_t k = 0; k < n_in; k++) {
        rg_text_put(c, "{");
        put_s8_rows(c, outs + (size_t)k * out_n, out_n);
        rg_text_put(c, k + 1 < n_in ? "},\n" : "}");
    }
    rg_text_put(c, "};\n\n");
    *bytes = (size_t)n_in * (in_n + out_n);
    for (int32_t i = 0; i < m->n_ops; i++) {
        size_t n = tensor_bytes(m, m->ops[i].out);
        rg_text_printf(c, "static const int8_t l%d[%zu] = {", (int)i, n);
        put_s8_rows(c, layers[i], n);
        rg_text_put(c, "\n};\n");
        *bytes += n;
    }
    rg_text_put(c, "\nconst golden_layer golden_layers[MODEL_N_LAYERS] = {");
    for (int32_t i = 0; i < m->n_ops; i++)
        rg_text_printf(c, "%s{%zu, l%d}%s", i % 6 ? " " : "\n    ", tensor_bytes(m, m->ops[i].out), (int)i,
                       i + 1 < m->n_ops ? "," : "");
    rg_text_put(c, "\n};\n");
}

typedef struct {
    const rg_rgm *m;
    int8_t **layers;
} trace_rec;

static void record(void *user, int32_t op, const int8_t *y)
{
    trace_rec *r = user;
    memcpy(r->layers[op], y, tensor_bytes(r->m, r->m->ops[op].out));
}

/* Writes data as dir/rel, making rel's folders first. */
static rg_status write_under(const char *dir, const char *rel, const void *data, size_t size, rg_error *err)
{
    size_t n = strlen(dir) + strlen(rel) + 2;
    char *path = malloc(n);
    if (!path) return rg_fail(err, RG_ERR_NOMEM, "out of memory");
    snprintf(path, n, "%s/%s", dir, rel);
    rg_status st = rg_make_parent_dirs(path, err);
    if (!st) st = rg_write_file_atomic(path, data, size, err);
    free(path);
    return st;
}

static rg_status write_text(const char *dir, const char *rel, const rg_text *t, rg_error *err)
{
    if (t->failed) return rg_fail(err, RG_ERR_NOMEM, "out of memory generating %s", rel);
    return write_under(dir, rel, t->data ? t->data : "", t->len, err);
}

rg_status rg_export_c(const rg_rgm *m, const char *dir, const rg_export_c_options *opt, rg_export_c_stats *stats,
                      rg_error *err)
{
    rg_export_c_options o = opt ? *opt : rg_export_c_default();
    const char *name = o.name ? o.name : "model";
    if (o.n_inputs < 1 || o.n_inputs > MAX_INPUTS)
        return rg_fail(err, RG_ERR_ARG, "export: n_inputs %d outside [1, %d]", (int)o.n_inputs, MAX_INPUTS);
    if (!dir || !*dir) return rg_fail(err, RG_ERR_ARG, "export: no output directory");
    rg_status st = rg_rgm_check(m, err);
    if (st) return rg_error_prefix(err, "%s", name);
    for (int32_t i = 0; i < m->n_ops; i++)
        if (!supported(m->ops[i].kind)) {
            unsupported(m, i, err);
            return rg_error_prefix(err, "%s", name);
        }

    rg_rt *rt = NULL;
    if ((st = rg_rt_prepare(m, NULL, &rt, err))) return rg_error_prefix(err, "%s", name);
    rg_rt_plan_stats ps;
    rg_rt_plan_stats_get(rt, &ps);
    size_t in_n = tensor_bytes(m, m->input), out_n = tensor_bytes(m, m->output);
    void *arena = rg_alloc_aligned(rg_rt_arena_size(rt), err);
    int8_t *ins = malloc(in_n * (size_t)o.n_inputs), *outs = malloc(out_n * (size_t)o.n_inputs);
    int8_t **layers = calloc((size_t)m->n_ops, sizeof *layers);
    rg_text mh = {0}, mc = {0}, gh = {0}, gc = {0};
    size_t const_bytes = 0, golden_bytes = 0;
    if (!arena || !ins || !outs || !layers) st = rg_fail(err, RG_ERR_NOMEM, "export: out of memory");
    for (int32_t i = 0; i < m->n_ops && !st; i++)
        if (!(layers[i] = malloc(tensor_bytes(m, m->ops[i].out)))) st = rg_fail(err, RG_ERR_NOMEM, "export: out of memory");
    if (!st) {
        /* the goldens: the host runtime on the given or random inputs */
        if (o.inputs) memcpy(ins, o.inputs, in_n * (size_t)o.n_inputs);
        else {
            rg_rng r = rg_rng_keyed(o.seed, 0x65787063, 0);
            for (size_t k = 0; k < in_n * (size_t)o.n_inputs; k++) ins[k] = (int8_t)((int)rg_rng_below(&r, 256) - 128);
        }
        trace_rec rec = {m, layers};
        rg_rt_invoke_trace(rt, arena, ins, outs, record, &rec);
        for (int32_t k = 1; k < o.n_inputs; k++) rg_rt_invoke(rt, arena, ins + (size_t)k * in_n, outs + (size_t)k * out_n);
        gen_model_h(m, ps.arena, name, &mh);
        st = gen_model_c(m, rt, name, &mc, &const_bytes, err);
    }
    if (!st) {
        gen_golden(m, name, o.n_inputs, ins, outs, layers, &gh, &gc, &golden_bytes);
        st = rg_make_dirs(dir, err);
    }
    int32_t n_files = 0;
    if (!st && !(st = write_text(dir, "model.h", &mh, err))) n_files++;
    if (!st && !(st = write_text(dir, "model.c", &mc, err))) n_files++;
    if (!st && !(st = write_text(dir, "golden.h", &gh, err))) n_files++;
    if (!st && !(st = write_text(dir, "golden.c", &gc, err))) n_files++;
    for (int k = 0; k < rg_export_c_n_files && !st; k++) {
        const rg_export_file *f = &rg_export_c_files[k];
        if (!(st = write_under(dir, f->path, f->data, f->size, err))) n_files++;
    }
    if (!st && stats)
        *stats = (rg_export_c_stats){.const_bytes = const_bytes, .arena_bytes = ps.arena, .golden_bytes = golden_bytes,
                                     .n_layers = m->n_ops, .n_files = n_files};
    for (int32_t i = 0; layers && i < m->n_ops; i++) free(layers[i]);
    free(layers);
    free(ins);
    free(outs);
    rg_free_aligned(arena);
    rg_rt_free(rt);
    rg_text_free(&mh);
    rg_text_free(&mc);
    rg_text_free(&gh);
    rg_text_free(&gc);
    return st;
}
