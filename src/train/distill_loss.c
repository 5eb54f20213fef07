/* Distillation losses: logit KD, decoupled KD, feature MSE, attention
 * transfer. Derivations in docs/distillation.md; every gradient is checked
 * against finite differences in tests/grad/test_grad_distill.c. Sums are in
 * double and in a fixed order, so results do not depend on threads. */
#include "regain/distill.h"

#include <math.h>
#include <string.h>

static double row_max(const float *z, int32_t classes, double scale)
{
    double m = scale * z[0];
    for (int32_t c = 1; c < classes; c++)
        if (scale * z[c] > m) m = scale * z[c];
    return m;
}

/* log sum_c exp(z_c / T) over the classes, skipping class `skip` (-1: none) */
static double log_sum_exp(const float *z, int32_t classes, double inv_t, int32_t skip)
{
    double m = -INFINITY;
    for (int32_t c = 0; c < classes; c++)
        if (c != skip && inv_t * z[c] > m) m = inv_t * z[c];
    double s = 0.0;
    for (int32_t c = 0; c < classes; c++)
        if (c != skip) s += exp(inv_t * z[c] - m);
    return m + log(s);
}

void rg_softmax_temperature(const float *logits, int32_t n, int32_t classes, float T, float *probs)
{
    double inv_t = 1.0 / T;
    for (int32_t i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * classes;
        float *p = probs + (size_t)i * classes;
        double m = row_max(z, classes, inv_t), s = 0.0;
        for (int32_t c = 0; c < classes; c++) s += exp(inv_t * z[c] - m);
        for (int32_t c = 0; c < classes; c++) p[c] = (float)(exp(inv_t * z[c] - m) / s);
    }
}

/* L_i = -sum_c pt_c log ps_c with ps = softmax(z / T); dL_i/dz_c = (ps_c - pt_c) / T. */
float rg_kd_loss(const float *student_logits, const float *teacher_probs, int32_t n, int32_t classes, float T,
                 float weight, float *dlogits)
{
    double inv_t = 1.0 / T, t2 = (double)T * T, total = 0.0;
    for (int32_t i = 0; i < n; i++) {
        const float *z = student_logits + (size_t)i * classes, *pt = teacher_probs + (size_t)i * classes;
        double lse = log_sum_exp(z, classes, inv_t, -1), loss = 0.0;
        for (int32_t c = 0; c < classes; c++) {
            double logp = inv_t * z[c] - lse;
            loss -= pt[c] * logp;
            if (dlogits) dlogits[(size_t)i * classes + c] += (float)(weight * t2 * (exp(logp) - pt[c]) * inv_t / n);
        }
        total += loss;
    }
    return n ? (float)(t2 * total / n) : 0.0f;
}

/* x log(x / y), 0 when x = 0 */
static double xlogxy(double x, double logx, double logy) { return x > 0.0 ? x * (logx - logy) : 0.0; }

float rg_dkd_loss(const float *student_logits, const float *teacher_probs, const int32_t *labels, int32_t n,
                  int32_t classes, float T, float alpha, float beta, float weight, float *dlogits, float *tckd,
                  float *nckd)
{
    double inv_t = 1.0 / T, t2 = (double)T * T, sum_tc = 0.0, sum_nc = 0.0;
    for (int32_t i = 0; i < n; i++) {
        const float *z = student_logits + (size_t)i * classes, *pt = teacher_probs + (size_t)i * classes;
        int32_t y = labels[i];
        double lse = log_sum_exp(z, classes, inv_t, -1), lse_nt = log_sum_exp(z, classes, inv_t, y);
        /* student binary (target, rest) in logs, accurate when either is tiny */
        double log_s1 = inv_t * z[y] - lse, log_s2 = lse_nt - lse;
        /* the teacher's: its non-target mass summed directly, not 1 - pt_y */
        double t1 = pt[y], t2nt = 0.0;
        for (int32_t c = 0; c < classes; c++)
            if (c != y) t2nt += pt[c];
        double tc = xlogxy(t1, log(t1 > 0 ? t1 : 1), log_s1) + xlogxy(t2nt, log(t2nt > 0 ? t2nt : 1), log_s2);
        double nc = 0.0;
        for (int32_t c = 0; c < classes && t2nt > 0.0; c++) {
            if (c == y) continue;
            double q = pt[c] / t2nt;
            nc += xlogxy(q, log(q > 0 ? q : 1), inv_t * z[c] - lse_nt);
        }
        sum_tc += tc;
        sum_nc += nc;
        if (!dlogits) continue;
        /* With u = z / T and qs_j = exp(u_j - lse_nt), the student's
         * distribution over the non-targets:
         *   dTCKD/du_y = -t1 s2 + t2 s1,
         *   dTCKD/du_j = t1 ps_j - t2 s1 qs_j (j != y),
         *   dNCKD/du_j = qs_j - qt_j (j != y), 0 for y.
         * Written with s1 and s2 from their logs and no ratio of them, the
         * target's term keeps its precision when the student is sure
         * (ps_y rounds to 1) and nothing overflows at a small T. */
        double s1 = exp(log_s1), s2 = exp(log_s2), scale = weight * t2 * inv_t / n;
        for (int32_t c = 0; c < classes; c++) {
            double g;
            if (c == y) {
                g = alpha * (-t1 * s2 + t2nt * s1);
            } else {
                double qs = exp(inv_t * z[c] - lse_nt);
                g = alpha * (t1 * exp(inv_t * z[c] - lse) - t2nt * s1 * qs);
                if (t2nt > 0.0) g += beta * (qs - pt[c] / t2nt);
            }
            dlogits[(size_t)i * classes + c] += (float)(scale * g);
        }
    }
    if (!n) return 0.0f;
    if (tckd) *tckd = (float)(t2 * sum_tc / n);
    if (nckd) *nckd = (float)(t2 * sum_nc / n);
    return (float)(t2 * (alpha * sum_tc + beta * sum_nc) / n);
}

float rg_mse_loss(const float *a, const float *b, size_t count, float weight, float *da)
{
    double total = 0.0, k = 2.0 * weight / (double)count;
    for (size_t i = 0; i < count; i++) {
        double d = (double)a[i] - b[i];
        total += d * d;
        if (da) da[i] += (float)(k * d);
    }
    return count ? (float)(total / (double)count) : 0.0f;
}

/* ---- attention transfer --------------------------------------------------------------- */

/* The smaller of the two maps' sizes, and each side's pooling factor. */
static void at_sizes(rg_shape s, rg_shape t, int32_t *h, int32_t *w, int32_t *ks, int32_t *kt)
{
    *h = s.h < t.h ? s.h : t.h;
    *w = s.w < t.w ? s.w : t.w;
    *ks = s.h / *h;
    *kt = t.h / *h;
}

size_t rg_at_scratch_floats(rg_shape student, rg_shape teacher)
{
    int32_t h, w, ks, kt;
    at_sizes(student, teacher, &h, &w, &ks, &kt);
    return 2 * (size_t)student.n * (size_t)h * (size_t)w;
}

/* Attention map of one image pooled by k: q(y, x) = mean over the k x k
 * window and the channels of f^2, then scaled to unit norm; returns the norm
 * before scaling. */
static double attention(const float *f, rg_shape s, int32_t k, int32_t h, int32_t w, float *q)
{
    double norm2 = 0.0, inv = 1.0 / ((double)s.c * k * k);
    for (int32_t y = 0; y < h; y++)
        for (int32_t x = 0; x < w; x++) {
            double a = 0.0;
            for (int32_t dy = 0; dy < k; dy++)
                for (int32_t dx = 0; dx < k; dx++) {
                    const float *p = f + ((size_t)(y * k + dy) * s.w + (size_t)(x * k + dx)) * s.c;
                    for (int32_t c = 0; c < s.c; c++) a += (double)p[c] * p[c];
                }
            a *= inv;
            q[y * w + x] = (float)a;
            norm2 += a * a;
        }
    double norm = sqrt(norm2), scale = 1.0 / (norm > 1e-12 ? norm : 1e-12);
    for (int32_t j = 0; j < h * w; j++) q[j] = (float)(q[j] * scale);
    return norm;
}

float rg_at_loss(const float *fs, rg_shape ss, const float *ft, rg_shape ts, float weight, float *dfs,
                 float *scratch)
{
    int32_t h, w, ks, kt;
    at_sizes(ss, ts, &h, &w, &ks, &kt);
    int32_t hw = h * w;
    size_t per_s = (size_t)ss.h * ss.w * ss.c, per_t = (size_t)ts.h * ts.w * ts.c;
    double total = 0.0, count = (double)ss.n * hw;
    float *qs = scratch, *qt = scratch + (size_t)ss.n * hw;
    for (int32_t i = 0; i < ss.n; i++) {
        float *q_s = qs + (size_t)i * hw, *q_t = qt + (size_t)i * hw;
        double norm = attention(fs + i * per_s, ss, ks, h, w, q_s);
        attention(ft + i * per_t, ts, kt, h, w, q_t);
        double dot = 0.0;
        for (int32_t j = 0; j < hw; j++) {
            double d = (double)q_s[j] - q_t[j];
            total += d * d;
            dot += (double)q_s[j] * (2.0 * d);
        }
        if (!dfs || norm <= 1e-12) continue;
        /* dL/dq = 2 d / count; through q = a / |a|: da = (dq - q (q . dq)) / |a|;
         * through pooling and the channel mean: df_c = da * 2 f_c / (C k^2) */
        double k_a = weight / (count * norm), k_f = 2.0 / ((double)ss.c * ks * ks);
        for (int32_t y = 0; y < ss.h; y++)
            for (int32_t x = 0; x < ss.w; x++) {
                int32_t j = (y / ks) * w + x / ks;
                double d = (double)q_s[j] - q_t[j];
                double da = k_a * (2.0 * d - q_s[j] * dot);
                const float *p = fs + i * per_s + ((size_t)y * ss.w + x) * ss.c;
                float *g = dfs + i * per_s + ((size_t)y * ss.w + x) * ss.c;
                for (int32_t c = 0; c < ss.c; c++) g[c] += (float)(da * k_f * p[c]);
            }
    }
    return count > 0 ? (float)(total / count) : 0.0f;
}
