/* Model spec parser: text lines -> builder calls.
 *
 * Each line is tokenized into a kind and key=value pairs. Handlers take the
 * keys they know through the get_* helpers, which mark them used; a key left
 * unused afterwards is an error, so typos never pass silently. Composite
 * blocks (ir, basic, dwsep, shuffle_unit, se) expand here into plain ops.
 */
#include "regain/spec.h"
#include "regain/fileio.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KEYS 16
#define MAX_NAMES 4096

typedef struct {
    char *key, *val;
    int used;
} kv;

typedef struct {
    const char *origin;
    int line;
    const char *kind;
    kv keys[MAX_KEYS];
    int n_keys;
    rg_graph *g;
    int32_t cur;                /* output of the previous line */
    int counter;                /* for automatic names */
    struct {
        char name[RG_NAME_MAX];
        int32_t value;
    } names[MAX_NAMES];         /* line name -> output value */
    int n_names;
    int input_line;             /* line of the input layer (for "no layers after input") */
    rg_error *err;
} parser;

static rg_status perr(parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static rg_status perr(parser *p, const char *fmt, ...)
{
    char msg[RG_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return rg_fail(p->err, RG_ERR_SPEC, "%s:%d: %s: %s", p->origin, p->line, p->kind ? p->kind : "", msg);
}

/* Re-labels a builder error with the spec position, keeping its code. */
static rg_status wrap(parser *p, rg_status st)
{
    if (st == RG_OK) return st;
    rg_status code = p->err ? p->err->code : st;
    rg_error_prefix(p->err, "%s:%d", p->origin, p->line);
    return code;
}

static kv *find_key(parser *p, const char *key)
{
    for (int i = 0; i < p->n_keys; i++)
        if (strcmp(p->keys[i].key, key) == 0) {
            p->keys[i].used = 1;
            return &p->keys[i];
        }
    return NULL;
}

static rg_status get_int(parser *p, const char *key, int32_t def, int32_t lo, int32_t hi, int32_t *out)
{
    kv *k = find_key(p, key);
    if (!k) {
        if (def == INT32_MIN) return perr(p, "missing required key '%s'", key);
        *out = def;
        return RG_OK;
    }
    if (!k->val) return perr(p, "key '%s' needs a value (%s=N)", key, key);
    char *end;
    errno = 0;
    long v = strtol(k->val, &end, 10);
    if (errno || *end || end == k->val) return perr(p, "'%s=%s' is not an integer", key, k->val);
    if (v < lo || v > hi) return perr(p, "'%s=%ld' is out of range [%d, %d]", key, v, lo, hi);
    *out = (int32_t)v;
    return RG_OK;
}

static rg_status get_float(parser *p, const char *key, float def, float lo, float hi, float *out)
{
    kv *k = find_key(p, key);
    if (!k) {
        *out = def;
        return RG_OK;
    }
    if (!k->val) return perr(p, "key '%s' needs a value", key);
    char *end;
    float v = strtof(k->val, &end);
    if (*end || end == k->val) return perr(p, "'%s=%s' is not a number", key, k->val);
    if (!(v >= lo && v <= hi)) return perr(p, "'%s=%s' is out of range [%g, %g]", key, k->val, lo, hi);
    *out = v;
    return RG_OK;
}

static int get_flag(parser *p, const char *key)
{
    kv *k = find_key(p, key);
    return k && (!k->val || strcmp(k->val, "0") != 0);
}

static const char *get_str(parser *p, const char *key)
{
    kv *k = find_key(p, key);
    return k ? (k->val ? k->val : "") : NULL;
}

/* act=relu|relu6|hswish|sigmoid|none -> op type (RG_OP_INPUT for none). */
static rg_status get_act(parser *p, const char *def, rg_op_type *out)
{
    const char *a = get_str(p, "act");
    if (!a) a = def;
    static const struct {
        const char *name;
        rg_op_type op;
    } acts[] = {{"none", RG_OP_INPUT}, {"relu", RG_OP_RELU}, {"relu6", RG_OP_RELU6},
                {"hswish", RG_OP_HSWISH}, {"sigmoid", RG_OP_SIGMOID}};
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++)
        if (strcmp(a, acts[i].name) == 0) {
            *out = acts[i].op;
            return RG_OK;
        }
    return perr(p, "unknown activation '%s' (known: none relu relu6 hswish sigmoid)", a);
}

static int32_t lookup(parser *p, const char *name)
{
    for (int i = p->n_names - 1; i >= 0; i--)
        if (strcmp(p->names[i].name, name) == 0) return p->names[i].value;
    return -1;
}

/* in=A[,B...]: resolves up to max names; default is the previous output. */
static rg_status get_inputs(parser *p, int32_t *ins, int min, int max, int *count)
{
    const char *s = get_str(p, "in");
    if (!s) {
        if (min > 1) return perr(p, "needs in=A,B naming %d inputs", min);
        ins[0] = p->cur;
        *count = 1;
        return RG_OK;
    }
    char buf[512];
    /* A longer list used to be cut silently to the buffer, and a cut name
     * could then match another layer (in=a,...,bb read as in=a,b). */
    if (strlen(s) >= sizeof buf) return perr(p, "in= list is too long (%zu characters, at most %zu)", strlen(s), sizeof buf - 1);
    snprintf(buf, sizeof buf, "%s", s);
    int n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (n >= max) return perr(p, "takes at most %d inputs", max);
        int32_t v = strcmp(tok, "input") == 0 ? p->g->input : lookup(p, tok);
        if (v < 0) return perr(p, "in=%s: no earlier layer is named '%s'", s, tok);
        ins[n++] = v;
    }
    if (n < min) return perr(p, "needs %d inputs, got %d", min, n);
    *count = n;
    return RG_OK;
}

/* ---- op helpers used by the composite blocks ------------------------------- */

static rg_status act_node(parser *p, rg_op_type act, const char *base, int32_t in, int32_t *out)
{
    if (act == RG_OP_INPUT) {
        *out = in;
        return RG_OK;
    }
    char name[RG_NAME_MAX];
    snprintf(name, sizeof name, "%.70s.%s", base, rg_op_name(act));
    return wrap(p, rg_graph_add_unary(p->g, act, name, in, out, p->err));
}

/* conv [+ bn] [+ act] named base, base.bn, base.<act>. */
static rg_status conv_bn_act(parser *p, const char *base, int32_t in, int32_t cout, int32_t k, int32_t s,
                             int32_t pad, int32_t groups, int bn, int bias, rg_op_type act, int32_t *out)
{
    rg_conv_attr a = {k, k, s, pad, groups, cout, bias};
    int32_t v;
    rg_status st = wrap(p, rg_graph_add_conv(p->g, base, in, a, &v, p->err));
    if (st) return st;
    if (bn) {
        char name[RG_NAME_MAX];
        snprintf(name, sizeof name, "%.70s.bn", base);
        if ((st = wrap(p, rg_graph_add_bn(p->g, name, v, &v, p->err)))) return st;
    }
    return act_node(p, act, base, v, out);
}

static rg_status sub(parser *p, char *dst, const char *base, const char *suffix)
{
    if (strlen(base) + strlen(suffix) + 2 > RG_NAME_MAX - 24) return perr(p, "name '%s' is too long", base);
    snprintf(dst, RG_NAME_MAX, "%.60s.%.12s", base, suffix);
    return RG_OK;
}

/* Rounds channels to a multiple of 8, never below 90% of the request
 * (the make_divisible rule of MobileNet reference code). */
static int32_t make_divisible(float v)
{
    int32_t d = 8, r = (int32_t)(v + d / 2.0f) / d * d;
    if (r < d) r = d;
    if (r < 0.9f * v) r += d;
    return r;
}

/* Squeeze-excitation on x: gap -> 1x1 reduce + ReLU -> 1x1 expand -> sigmoid -> x * gate. */
static rg_status se_block(parser *p, const char *base, int32_t x, float ratio, int32_t *out)
{
    char n1[RG_NAME_MAX], n2[RG_NAME_MAX], n3[RG_NAME_MAX], n4[RG_NAME_MAX];
    rg_status st;
    if ((st = sub(p, n1, base, "gap")) || (st = sub(p, n2, base, "reduce")) || (st = sub(p, n3, base, "expand")) ||
        (st = sub(p, n4, base, "scale")))
        return st;
    int32_t c = p->g->values[x].shape.c, squeeze = make_divisible((float)c * ratio), v;
    if ((st = wrap(p, rg_graph_add_unary(p->g, RG_OP_GAP, n1, x, &v, p->err))) ||
        (st = conv_bn_act(p, n2, v, squeeze, 1, 1, 0, 1, 0, 1, RG_OP_RELU, &v)) ||
        (st = conv_bn_act(p, n3, v, c, 1, 1, 0, 1, 0, 1, RG_OP_SIGMOID, &v)))
        return st;
    return wrap(p, rg_graph_add_binary(p->g, RG_OP_MUL, n4, x, v, out, p->err));
}

/* ---- line handlers -------------------------------------------------------------- */

static rg_status do_conv(parser *p, const char *name, int32_t in, int kind_dw, int kind_pw, int32_t *out)
{
    int32_t cin = p->g->values[in].shape.c, c, k, s, pad, groups, bias;
    rg_op_type act;
    rg_status st;
    int bn = get_flag(p, "bn");
    if (kind_dw) {
        c = cin;
        if ((st = get_int(p, "k", 3, 1, 15, &k))) return st;
        groups = cin;
    } else {
        if ((st = get_int(p, "c", INT32_MIN, 1, 65536, &c))) return st;
        if (kind_pw) {
            k = 1;
        } else if ((st = get_int(p, "k", 3, 1, 15, &k))) {
            return st;
        }
        if ((st = get_int(p, "g", 1, 1, 65536, &groups))) return st;
    }
    if ((st = get_int(p, "s", 1, 1, 8, &s)) || (st = get_int(p, "p", k / 2, 0, 15, &pad)) ||
        (st = get_int(p, "bias", !bn, 0, 1, &bias)) || (st = get_act(p, "none", &act)))
        return st;
    return conv_bn_act(p, name, in, c, k, s, pad, groups, bn, bias, act, out);
}

/* Inverted residual (MobileNetV2), MBConv (EfficientNet-lite) and the
 * MobileNetV3 bottleneck: [pw expand + BN + act] -> dw k x k, s + BN + act ->
 * [SE] -> pw project + BN -> [+ input when s = 1 and channels match]. */
static rg_status do_ir(parser *p, const char *name, int32_t in, int32_t *out)
{
    int32_t cin = p->g->values[in].shape.c, t, e, c, s, k;
    float se;
    rg_op_type act;
    rg_status st;
    if ((st = get_int(p, "t", 0, 0, 64, &t)) || (st = get_int(p, "e", 0, 0, 65536, &e)) ||
        (st = get_int(p, "c", INT32_MIN, 1, 65536, &c)) || (st = get_int(p, "s", 1, 1, 2, &s)) ||
        (st = get_int(p, "k", 3, 1, 7, &k)) || (st = get_float(p, "se", 0.0f, 0.0f, 1.0f, &se)) ||
        (st = get_act(p, "relu6", &act)))
        return st;
    if (t && e) return perr(p, "give the expansion as t (ratio) or e (channels), not both");
    if (!t && !e) return perr(p, "missing the expansion: t=RATIO or e=CHANNELS");
    if (act == RG_OP_INPUT) return perr(p, "act=none is not allowed in an inverted residual");
    int32_t hidden = t ? cin * t : e, v = in;
    char n[RG_NAME_MAX];
    if (hidden != cin) {
        if ((st = sub(p, n, name, "expand")) || (st = conv_bn_act(p, n, v, hidden, 1, 1, 0, 1, 1, 0, act, &v)))
            return st;
    }
    if ((st = sub(p, n, name, "dw")) || (st = conv_bn_act(p, n, v, hidden, k, s, k / 2, hidden, 1, 0, act, &v)))
        return st;
    if (se > 0.0f && ((st = sub(p, n, name, "se")) || (st = se_block(p, n, v, se, &v)))) return st;
    if ((st = sub(p, n, name, "project")) ||
        (st = conv_bn_act(p, n, v, c, 1, 1, 0, 1, 1, 0, RG_OP_INPUT, &v)))
        return st;
    if (s == 1 && cin == c) {
        if ((st = sub(p, n, name, "add"))) return st;
        return wrap(p, rg_graph_add_binary(p->g, RG_OP_ADD, n, v, in, out, p->err));
    }
    *out = v;
    return RG_OK;
}

/* ResNet BasicBlock: conv3x3 s + BN + ReLU, conv3x3 + BN, + shortcut, ReLU.
 * The shortcut is identity, or 1x1 conv stride s + BN when the shape changes. */
static rg_status do_basic(parser *p, const char *name, int32_t in, int32_t *out)
{
    int32_t cin = p->g->values[in].shape.c, c, s, v, sc = in;
    rg_status st;
    char n[RG_NAME_MAX];
    if ((st = get_int(p, "c", INT32_MIN, 1, 65536, &c)) || (st = get_int(p, "s", 1, 1, 2, &s))) return st;
    if ((st = sub(p, n, name, "conv1")) || (st = conv_bn_act(p, n, in, c, 3, s, 1, 1, 1, 0, RG_OP_RELU, &v)) ||
        (st = sub(p, n, name, "conv2")) || (st = conv_bn_act(p, n, v, c, 3, 1, 1, 1, 1, 0, RG_OP_INPUT, &v)))
        return st;
    if (s != 1 || cin != c) {
        if ((st = sub(p, n, name, "down")) || (st = conv_bn_act(p, n, in, c, 1, s, 0, 1, 1, 0, RG_OP_INPUT, &sc)))
            return st;
    }
    if ((st = sub(p, n, name, "add")) || (st = wrap(p, rg_graph_add_binary(p->g, RG_OP_ADD, n, v, sc, &v, p->err))))
        return st;
    return act_node(p, RG_OP_RELU, name, v, out);
}

/* MobileNetV1 depthwise-separable block: dw 3x3 s + BN + act, pw c + BN + act. */
static rg_status do_dwsep(parser *p, const char *name, int32_t in, int32_t *out)
{
    int32_t cin = p->g->values[in].shape.c, c, s, v;
    rg_op_type act;
    rg_status st;
    char n[RG_NAME_MAX];
    if ((st = get_int(p, "c", INT32_MIN, 1, 65536, &c)) || (st = get_int(p, "s", 1, 1, 2, &s)) ||
        (st = get_act(p, "relu", &act)))
        return st;
    if ((st = sub(p, n, name, "dw")) || (st = conv_bn_act(p, n, in, cin, 3, s, 1, cin, 1, 0, act, &v)) ||
        (st = sub(p, n, name, "pw")))
        return st;
    return conv_bn_act(p, n, v, c, 1, 1, 0, 1, 1, 0, act, out);
}

/* ShuffleNetV2 unit. Basic (s = 1, cin = c): split channels in halves; the
 * second half goes through pw + BN + ReLU, dw 3x3 + BN, pw + BN + ReLU; concat
 * with the first half; shuffle 2. Down-sampling (s = 2, or cin != c): both
 * branches see the whole input: left dw 3x3 s + BN, pw + BN + ReLU; right as
 * above with stride s; concat; shuffle 2. */
static rg_status do_shuffle_unit(parser *p, const char *name, int32_t in, int32_t *out)
{
    int32_t cin = p->g->values[in].shape.c, c, s, left, right, v;
    rg_status st;
    char n[RG_NAME_MAX];
    if ((st = get_int(p, "c", INT32_MIN, 2, 65536, &c)) || (st = get_int(p, "s", 1, 1, 2, &s))) return st;
    if (c % 2) return perr(p, "c=%d must be even (two branches of c/2)", c);
    int32_t half = c / 2;
    if (s == 1 && cin == c) {
        if ((st = sub(p, n, name, "left")) ||
            (st = wrap(p, rg_graph_add_slice(p->g, n, in, 0, half, &left, p->err))) ||
            (st = sub(p, n, name, "right")) ||
            (st = wrap(p, rg_graph_add_slice(p->g, n, in, half, cin - half, &right, p->err))))
            return st;
    } else {
        if ((st = sub(p, n, name, "ldw")) || (st = conv_bn_act(p, n, in, cin, 3, s, 1, cin, 1, 0, RG_OP_INPUT, &v)) ||
            (st = sub(p, n, name, "lpw")) || (st = conv_bn_act(p, n, v, half, 1, 1, 0, 1, 1, 0, RG_OP_RELU, &left)))
            return st;
        right = in;
    }
    if ((st = sub(p, n, name, "pw1")) || (st = conv_bn_act(p, n, right, half, 1, 1, 0, 1, 1, 0, RG_OP_RELU, &v)) ||
        (st = sub(p, n, name, "dw")) || (st = conv_bn_act(p, n, v, half, 3, s, 1, half, 1, 0, RG_OP_INPUT, &v)) ||
        (st = sub(p, n, name, "pw2")) || (st = conv_bn_act(p, n, v, half, 1, 1, 0, 1, 1, 0, RG_OP_RELU, &v)))
        return st;
    int32_t both[2] = {left, v};
    if ((st = sub(p, n, name, "cat")) || (st = wrap(p, rg_graph_add_concat(p->g, n, both, 2, &v, p->err))) ||
        (st = sub(p, n, name, "shuffle")))
        return st;
    return wrap(p, rg_graph_add_shuffle(p->g, n, v, 2, out, p->err));
}

static rg_status handle_line(parser *p, const char *name, int32_t *out)
{
    const char *k = p->kind;
    int32_t ins[RG_MAX_INPUTS], nin;
    rg_status st;
    rg_graph *g = p->g;
    if (strcmp(k, "conv") == 0 || strcmp(k, "dw") == 0 || strcmp(k, "pw") == 0) {
        if ((st = get_inputs(p, ins, 1, 1, &nin))) return st;
        return do_conv(p, name, ins[0], k[0] == 'd', k[0] == 'p', out);
    }
    if (strcmp(k, "ir") == 0 || strcmp(k, "mbconv") == 0 || strcmp(k, "bneck") == 0) {
        if ((st = get_inputs(p, ins, 1, 1, &nin))) return st;
        return do_ir(p, name, ins[0], out);
    }
    if (strcmp(k, "basic") == 0) {
        if ((st = get_inputs(p, ins, 1, 1, &nin))) return st;
        return do_basic(p, name, ins[0], out);
    }
    if (strcmp(k, "dwsep") == 0) {
        if ((st = get_inputs(p, ins, 1, 1, &nin))) return st;
        return do_dwsep(p, name, ins[0], out);
    }
    if (strcmp(k, "shuffle_unit") == 0) {
        if ((st = get_inputs(p, ins, 1, 1, &nin))) return st;
        return do_shuffle_unit(p, name, ins[0], out);
    }
    if (strcmp(k, "se") == 0) {
        float r;
        if ((st = get_inputs(p, ins, 1, 1, &nin)) || (st = get_float(p, "r", 0.25f, 0.01f, 1.0f, &r))) return st;
        return se_block(p, name, ins[0], r, out);
    }
    if (strcmp(k, "bn") == 0) {
        if ((st = get_inputs(p, ins, 1, 1, &nin))) return st;
        return wrap(p, rg_graph_add_bn(g, name, ins[0], out, p->err));
    }
    static const struct {
        const char *kind;
        rg_op_type op;
    } unary[] = {{"relu", RG_OP_RELU}, {"relu6", RG_OP_RELU6}, {"hswish", RG_OP_HSWISH},
                 {"sigmoid", RG_OP_SIGMOID}, {"gap", RG_OP_GAP}};
    for (size_t i = 0; i < sizeof unary / sizeof unary[0]; i++)
        if (strcmp(k, unary[i].kind) == 0) {
            if ((st = get_inputs(p, ins, 1, 1, &nin))) return st;
            return wrap(p, rg_graph_add_unary(g, unary[i].op, name, ins[0], out, p->err));
        }
    if (strcmp(k, "add") == 0 || strcmp(k, "mul") == 0) {
        if ((st = get_inputs(p, ins, 2, 2, &nin))) return st;
        return wrap(p, rg_graph_add_binary(g, k[0] == 'a' ? RG_OP_ADD : RG_OP_MUL, name, ins[0], ins[1], out,
                                           p->err));
    }
    if (strcmp(k, "concat") == 0) {
        if ((st = get_inputs(p, ins, 2, RG_MAX_INPUTS, &nin))) return st;
        return wrap(p, rg_graph_add_concat(g, name, ins, nin, out, p->err));
    }
    if (strcmp(k, "slice") == 0) {
        int32_t off, cnt;
        if ((st = get_inputs(p, ins, 1, 1, &nin)) || (st = get_int(p, "offset", 0, 0, 65536, &off)) ||
            (st = get_int(p, "count", INT32_MIN, 1, 65536, &cnt)))
            return st;
        return wrap(p, rg_graph_add_slice(g, name, ins[0], off, cnt, out, p->err));
    }
    if (strcmp(k, "shuffle") == 0) {
        int32_t gr;
        if ((st = get_inputs(p, ins, 1, 1, &nin)) || (st = get_int(p, "g", 2, 1, 65536, &gr))) return st;
        return wrap(p, rg_graph_add_shuffle(g, name, ins[0], gr, out, p->err));
    }
    if (strcmp(k, "maxpool") == 0 || strcmp(k, "avgpool") == 0) {
        int32_t ks, s, pad;
        if ((st = get_inputs(p, ins, 1, 1, &nin)) || (st = get_int(p, "k", 2, 1, 64, &ks)) ||
            (st = get_int(p, "s", ks, 1, 64, &s)) || (st = get_int(p, "p", 0, 0, 32, &pad)))
            return st;
        return wrap(p, rg_graph_add_pool(g, k[0] == 'm' ? RG_OP_MAXPOOL : RG_OP_AVGPOOL, name, ins[0], ks, s, pad,
                                         out, p->err));
    }
    if (strcmp(k, "fc") == 0) {
        int32_t nout, bias;
        if ((st = get_inputs(p, ins, 1, 1, &nin)) || (st = get_int(p, "n", INT32_MIN, 1, 1 << 20, &nout)) ||
            (st = get_int(p, "bias", 1, 0, 1, &bias)))
            return st;
        return wrap(p, rg_graph_add_linear(g, name, ins[0], nout, bias, out, p->err));
    }
    if (strcmp(k, "dropout") == 0) {
        float pr;
        if ((st = get_inputs(p, ins, 1, 1, &nin)) || (st = get_float(p, "p", 0.5f, 0.0f, 0.99f, &pr))) return st;
        return wrap(p, rg_graph_add_dropout(g, name, ins[0], pr, out, p->err));
    }
    return perr(p, "unknown layer kind (known: input conv dw pw bn relu relu6 hswish sigmoid add mul concat slice "
                   "shuffle maxpool avgpool gap fc dropout ir mbconv bneck basic dwsep shuffle_unit se)");
}

/* Splits a line into kind and keys in place; returns 0 for blank lines. */
static rg_status tokenize(parser *p, char *line, int *has)
{
    char *hash = strchr(line, '#');
    if (hash) *hash = 0;
    p->n_keys = 0;
    p->kind = NULL;
    *has = 0;
    for (char *save = NULL, *tok = strtok_r(line, " \t\r", &save); tok; tok = strtok_r(NULL, " \t\r", &save)) {
        if (!p->kind) {
            p->kind = tok;
            *has = 1;
            continue;
        }
        if (p->n_keys >= MAX_KEYS) return perr(p, "too many keys (at most %d)", MAX_KEYS);
        kv *k = &p->keys[p->n_keys++];
        char *eq = strchr(tok, '=');
        k->key = tok;
        k->val = NULL;
        k->used = 0;
        if (eq) {
            *eq = 0;
            k->val = eq + 1;
            if (!*k->key) return perr(p, "'=%s' has no key", k->val);
        }
        for (int i = 0; i < p->n_keys - 1; i++)
            if (strcmp(p->keys[i].key, k->key) == 0) return perr(p, "key '%s' is given twice", k->key);
    }
    return RG_OK;
}

static rg_status check_name(parser *p, const char *name)
{
    if (!*name) return perr(p, "name= is empty");
    for (const char *c = name; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-' && *c != '.')
            return perr(p, "name '%s' may only hold letters, digits, '_', '-' and '.'", name);
    if (strlen(name) > 48) return perr(p, "name '%s' is longer than 48 characters", name);
    if (strcmp(name, "input") == 0 || lookup(p, name) >= 0) return perr(p, "name '%s' is already used", name);
    return RG_OK;
}

rg_status rg_spec_build(const char *text, const char *origin, rg_graph **out, rg_error *err)
{
    *out = NULL;
    parser *p = rg_calloc(1, sizeof *p, err);
    if (!p) return RG_ERR_NOMEM;
    p->origin = origin;
    p->err = err;
    size_t len = strlen(text);
    char *copy = rg_malloc(len + 1, err);
    if (!copy) {
        free(p);
        return RG_ERR_NOMEM;
    }
    memcpy(copy, text, len + 1);
    rg_status st = RG_OK;
    char *line = copy;
    while (line && st == RG_OK) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        p->line++;
        int has;
        if ((st = tokenize(p, line, &has)) || !has) {
            line = nl ? nl + 1 : NULL;
            continue;
        }
        if (!p->g) {
            if (strcmp(p->kind, "input") != 0) {
                st = perr(p, "the first layer must be 'input h=H w=W c=C'");
                break;
            }
            int32_t h, w, c;
            if ((st = get_int(p, "h", INT32_MIN, 1, 4096, &h)) || (st = get_int(p, "w", INT32_MIN, 1, 4096, &w)) ||
                (st = get_int(p, "c", INT32_MIN, 1, 4096, &c)) ||
                (st = wrap(p, rg_graph_create(h, w, c, &p->g, err))))
                break;
            p->cur = p->g->input;
            p->input_line = p->line;
        } else if (strcmp(p->kind, "input") == 0) {
            st = perr(p, "only one input line is allowed");
            break;
        } else {
            char name[RG_NAME_MAX];
            const char *given = get_str(p, "name");
            if (given) {
                if ((st = check_name(p, given))) break;
                snprintf(name, sizeof name, "%s", given);
            } else {
                do snprintf(name, sizeof name, "%.40s%d", p->kind, ++p->counter);
                while (lookup(p, name) >= 0 || rg_graph_find_node(p->g, name) >= 0);
            }
            int32_t v;
            if ((st = handle_line(p, name, &v))) break;
            if (p->n_names >= MAX_NAMES) {
                st = perr(p, "too many layers (at most %d)", MAX_NAMES);
                break;
            }
            snprintf(p->names[p->n_names].name, RG_NAME_MAX, "%s", name);
            p->names[p->n_names++].value = v;
            p->cur = v;
        }
        for (int i = 0; i < p->n_keys && st == RG_OK; i++)
            if (!p->keys[i].used) st = perr(p, "unknown key '%s'", p->keys[i].key);
        line = nl ? nl + 1 : NULL;
    }
    /* These two name a line like every other spec error ("origin:N:"): line 1,
     * where the input layer should be, and the input layer's line. */
    if (st == RG_OK && !p->g)
        st = rg_fail(err, RG_ERR_SPEC, "%s:1: the spec has no layers (the first must be 'input h=H w=W c=C')", origin);
    if (st == RG_OK && p->cur == p->g->input)
        st = rg_fail(err, RG_ERR_SPEC, "%s:%d: the spec has no layers after input", origin, p->input_line);
    /* finishing allocates the parameters: an out-of-memory error names the spec */
    if (st == RG_OK && (st = rg_graph_finish(p->g, p->cur, err)) != RG_OK) rg_error_prefix(err, "%s", origin);
    if (st == RG_OK) {
        p->g->spec = copy;
        memcpy(copy, text, len + 1);
        copy = NULL;
        *out = p->g;
        p->g = NULL;
    }
    rg_graph_free(p->g);
    free(copy);
    free(p);
    return st;
}

rg_status rg_spec_build_file(const char *path, rg_graph **out, rg_error *err)
{
    void *data;
    size_t size;
    rg_status st = rg_read_file(path, (size_t)1 << 20, &data, &size, err);
    if (st) return st;
    char *text = data;
    const char *nul = memchr(text, 0, size);
    if (nul) {
        /* name the line of the NUL byte, as every spec error names its line */
        int line = 1;
        for (const char *c = text; c < nul; c++) line += *c == '\n';
        free(data);
        return rg_fail(err, RG_ERR_SPEC, "%s:%d: not a text file (holds a NUL byte)", path, line);
    }
    char *z = realloc(data, size + 1);
    if (!z) {
        free(data);
        return rg_fail(err, RG_ERR_NOMEM, "out of memory reading %s", path);
    }
    z[size] = 0;
    st = rg_spec_build(z, path, out, err);
    free(z);
    return st;
}
