/* The float version of a lowered model: the same op list run in float with
 * the ops' float weights (contract in include/regain/quant_model.h). It is
 * what calibration observes, what bias correction compares the quantized
 * weights against, and the reference of the quantization doctor. Plain
 * loops, in a fixed order (results do not depend on threads). */
#include "regain/quant_model.h"

#include <math.h>
#include <string.h>

size_t rg_qmodel_float_arena_floats(const rg_qmodel *m, int32_t batch)
{
    return m->image_floats * (size_t)(batch > 0 ? batch : 0);
}

float *rg_qmodel_ftensor(const rg_qmodel *m, float *farena, int32_t batch, int32_t t)
{
    return farena + m->tensors[t].foffset * (size_t)batch;
}

static float clampf(float v, float lo, float hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Applies the op's output clamps to y [rows, c] (unless raw). */
static void clamp_out(const rg_qop *o, float *y, size_t rows, int32_t c, int raw)
{
    if (raw) return;
    for (size_t r = 0; r < rows; r++)
        for (int32_t k = 0; k < c; k++) {
            float hi = o->clip && o->clip[k] < o->f_hi ? o->clip[k] : o->f_hi;
            y[r * (size_t)c + k] = clampf(y[r * (size_t)c + k], o->f_lo, hi);
        }
}

static void conv_f(const rg_qop *o, const rg_qtensor *in, const rg_qtensor *out, int32_t batch, const float *x,
                   const float *w, float *y)
{
    const int dw = o->kind == RG_QOP_DEPTHWISE;
    for (int32_t n = 0; n < batch; n++)
        for (int32_t oy = 0; oy < out->h; oy++)
            for (int32_t ox = 0; ox < out->w; ox++) {
                float *yo = y + (((size_t)n * out->h + oy) * out->w + ox) * out->c;
                for (int32_t c = 0; c < out->c; c++) yo[c] = o->fb[c];
                for (int32_t ky = 0; ky < o->k_h; ky++) {
                    int32_t iy = oy * o->stride - o->pad + ky;
                    if (iy < 0 || iy >= in->h) continue;
                    for (int32_t kx = 0; kx < o->k_w; kx++) {
                        int32_t ix = ox * o->stride - o->pad + kx;
                        if (ix < 0 || ix >= in->w) continue;
                        const float *xi = x + (((size_t)n * in->h + iy) * in->w + ix) * in->c;
                        if (dw) {
                            for (int32_t c = 0; c < out->c; c++)
                                yo[c] += w[((size_t)c * o->k_h + ky) * o->k_w + kx] * xi[c];
                        } else {
                            for (int32_t c = 0; c < out->c; c++) {
                                const float *wc = w + (((size_t)c * o->k_h + ky) * o->k_w + kx) * in->c;
                                float s = 0.0f;
                                for (int32_t k = 0; k < in->c; k++) s += wc[k] * xi[k];
                                yo[c] += s;
                            }
                        }
                    }
                }
            }
}

static void pool_f(const rg_qop *o, const rg_qtensor *in, const rg_qtensor *out, int32_t batch, const float *x,
                   float *y)
{
    for (int32_t n = 0; n < batch; n++)
        for (int32_t oy = 0; oy < out->h; oy++)
            for (int32_t ox = 0; ox < out->w; ox++)
                for (int32_t c = 0; c < out->c; c++) {
                    float acc = o->kind == RG_QOP_MAXPOOL ? -INFINITY : 0.0f;
                    int32_t count = 0;
                    for (int32_t ky = 0; ky < o->k_h; ky++) {
                        int32_t iy = oy * o->stride - o->pad + ky;
                        if (iy < 0 || iy >= in->h) continue;
                        for (int32_t kx = 0; kx < o->k_w; kx++) {
                            int32_t ix = ox * o->stride - o->pad + kx;
                            if (ix < 0 || ix >= in->w) continue;
                            float v = x[(((size_t)n * in->h + iy) * in->w + ix) * in->c + c];
                            if (o->kind == RG_QOP_MAXPOOL) acc = v > acc ? v : acc;
                            else acc += v;
                            count++;
                        }
                    }
                    if (o->kind == RG_QOP_AVGPOOL) acc = count ? acc / (float)count : 0.0f;
                    y[(((size_t)n * out->h + oy) * out->w + ox) * out->c + c] = acc;
                }
}

rg_status rg_qmodel_run_ref_op(const rg_qmodel *m, int32_t op, float *farena, int32_t batch, const float *w,
                               int raw, rg_error *err)
{
    if (op < 0 || op >= m->n_ops) return rg_fail(err, RG_ERR_ARG, "qmodel: op %d out of range", (int)op);
    const rg_qop *o = &m->ops[op];
    const rg_qtensor *in = &m->tensors[o->in[0]], *out = &m->tensors[o->out];
    const float *x = rg_qmodel_ftensor(m, farena, batch, o->in[0]);
    float *y = rg_qmodel_ftensor(m, farena, batch, o->out);
    size_t rows = (size_t)batch * out->h * out->w, n = rows * (size_t)out->c;
    if (!w) w = o->fw;
    if (!w && (o->kind == RG_QOP_CONV || o->kind == RG_QOP_DEPTHWISE || o->kind == RG_QOP_FC))
        return rg_fail(err, RG_ERR_ARG, "qmodel: %s has no float weights (a model loaded from a file)", o->name);
    switch (o->kind) {
    case RG_QOP_CONV:
    case RG_QOP_DEPTHWISE:
        conv_f(o, in, out, batch, x, w, y);
        clamp_out(o, y, rows, out->c, raw);
        break;
    case RG_QOP_FC: {
        size_t nin = (size_t)in->h * in->w * in->c;
        for (int32_t b = 0; b < batch; b++)
            for (int32_t c = 0; c < o->out_c; c++) {
                float s = 0.0f;
                for (size_t k = 0; k < nin; k++) s += w[(size_t)c * nin + k] * x[(size_t)b * nin + k];
                y[(size_t)b * o->out_c + c] = s + o->fb[c];
            }
        clamp_out(o, y, (size_t)batch, o->out_c, raw);
        break;
    }
    case RG_QOP_ADD: {
        const float *x2 = rg_qmodel_ftensor(m, farena, batch, o->in[1]);
        for (size_t i = 0; i < n; i++) y[i] = x[i] + x2[i];
        break;
    }
    case RG_QOP_CONCAT: {
        int32_t at = 0;
        for (int32_t k = 0; k < o->n_in; k++) {
            const rg_qtensor *ti = &m->tensors[o->in[k]];
            const float *xi = rg_qmodel_ftensor(m, farena, batch, o->in[k]);
            for (size_t r = 0; r < rows; r++)
                memcpy(y + r * (size_t)out->c + at, xi + r * (size_t)ti->c, sizeof(float) * (size_t)ti->c);
            at += ti->c;
        }
        break;
    }
    case RG_QOP_CLAMP:
        for (size_t i = 0; i < n; i++) y[i] = raw ? x[i] : clampf(x[i], o->f_lo, o->f_hi);
        break;
    case RG_QOP_AVGPOOL:
    case RG_QOP_MAXPOOL:
        pool_f(o, in, out, batch, x, y);
        break;
    case RG_QOP_GAP: {
        size_t hw = (size_t)in->h * in->w;
        for (int32_t b = 0; b < batch; b++)
            for (int32_t c = 0; c < in->c; c++) {
                double s = 0.0;
                for (size_t p = 0; p < hw; p++) s += x[((size_t)b * hw + p) * in->c + c];
                y[(size_t)b * in->c + c] = (float)(s / (double)hw);
            }
        break;
    }
    case RG_QOP_SPLIT:
        for (size_t r = 0; r < rows; r++)
            memcpy(y + r * (size_t)out->c, x + r * (size_t)in->c + o->ch_begin, sizeof(float) * (size_t)out->c);
        break;
    case RG_QOP_SHUFFLE: {
        int32_t per = out->c / o->groups;
        for (size_t r = 0; r < rows; r++)
            for (int32_t g = 0; g < o->groups; g++)
                for (int32_t j = 0; j < per; j++)
                    y[r * (size_t)out->c + (size_t)j * o->groups + g] = x[r * (size_t)out->c + (size_t)g * per + j];
        break;
    }
    case RG_QOP_MUL: {
        const rg_qtensor *bt = &m->tensors[o->in[1]];
        const float *x2 = rg_qmodel_ftensor(m, farena, batch, o->in[1]);
        size_t hw = (size_t)out->h * out->w, bhw = (size_t)bt->h * bt->w;
        for (int32_t b = 0; b < batch; b++)
            for (size_t p = 0; p < hw; p++)
                for (int32_t c = 0; c < out->c; c++)
                    y[((size_t)b * hw + p) * out->c + c] = x[((size_t)b * hw + p) * out->c + c] *
                                                           x2[((size_t)b * bhw + (bhw == 1 ? 0 : p)) * out->c + c];
        break;
    }
    case RG_QOP_LUT:
        for (size_t i = 0; i < n; i++) y[i] = raw ? x[i] : (float)rg_q_lut_fn_eval(o->lut_fn, (double)x[i]);
        break;
    default: return rg_fail(err, RG_ERR_ARG, "qmodel: op %s has unknown kind %d", o->name, (int)o->kind);
    }
    return RG_OK;
}

rg_status rg_qmodel_run_ref(const rg_qmodel *m, float *farena, const float *in, int32_t batch, rg_error *err)
{
    if (batch < 1) return rg_fail(err, RG_ERR_ARG, "qmodel: batch %d must be >= 1", (int)batch);
    const rg_qtensor *ti = &m->tensors[m->input];
    memcpy(rg_qmodel_ftensor(m, farena, batch, m->input), in, sizeof(float) * (size_t)batch * ti->h * ti->w * ti->c);
    for (int32_t i = 0; i < m->n_ops; i++) {
        rg_status st = rg_qmodel_run_ref_op(m, i, farena, batch, NULL, 0, err);
        if (st) return st;
    }
    return RG_OK;
}
