/* int8 kernels with AVX2, bit-exact with the integer reference
 * (rt/kernels/qk.h explains how). AVX2 has no byte dot product that cannot
 * saturate (vpmaddubsw saturates to int16), so the matrix product widens:
 * activations + 128 and weights as int16, pairs summed exactly by vpmaddwd.
 * Compiled with -mavx2 (CMakeLists.txt, *_avx2.c). */
#include "rt/kernels/qk.h"

#include <immintrin.h>
#include <stddef.h>
#include <string.h>

#define MR 3 /* activation rows a tile: 3 x 2 accumulators in 16 ymm without spills */
#define NP 2 /* panels of 8 channels a tile */

#define LD(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))

/* rg_q_mul_by_multiplier on 8 lanes: the steps of qk_vnni.c's mbm (mask =
 * 2^rsh - 1, half = mask >> 1; lsh_any 0: no left shift anywhere). */
static inline __attribute__((always_inline)) __m256i mbm(__m256i x, __m256i m, __m256i lsh, __m256i rsh,
                                                        __m256i mask, __m256i half, const int lsh_any)
{
    __m256i s = x;
    if (lsh_any) {
        s = _mm256_sllv_epi32(x, lsh);
        __m256i exact = _mm256_cmpeq_epi32(_mm256_srav_epi32(s, lsh), x);
        __m256i sat = _mm256_blendv_epi8(_mm256_set1_epi32(INT32_MAX), _mm256_set1_epi32(INT32_MIN),
                                         _mm256_srai_epi32(x, 31)); /* whole-lane mask from the sign */
        s = _mm256_blendv_epi8(sat, s, exact);
    }
    const __m256i nudge = _mm256_set1_epi64x(INT64_C(1) << 30);
    __m256i ev = _mm256_add_epi64(_mm256_mul_epi32(s, m), nudge);
    __m256i od = _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(s, 32), _mm256_srli_epi64(m, 32)), nudge);
    ev = _mm256_srli_epi64(ev, 31);
    od = _mm256_slli_epi64(od, 1);
    __m256i r = _mm256_blend_epi32(ev, od, 0xAA);
    __m256i rem = _mm256_add_epi32(_mm256_and_si256(r, mask), _mm256_srai_epi32(r, 31));
    __m256i up = _mm256_cmpgt_epi32(rem, half); /* -1 where rounding up */
    return _mm256_sub_epi32(_mm256_srav_epi32(r, rsh), up);
}

/* mbm clamped to [lo, hi] (bounds minus the output zero point), plus the
 * zero point. */
static inline __attribute__((always_inline)) __m256i requant(__m256i acc, __m256i m, __m256i lsh, __m256i rsh,
                                                            __m256i mask, __m256i half, const int lsh_any,
                                                            __m256i lo, __m256i hi, __m256i zp)
{
    __m256i r = mbm(acc, m, lsh, rsh, mask, half, lsh_any);
    return _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(r, lo), hi), zp);
}

/* fp32 requantization, as qk_vnni.c's rq_fp32 */
static inline __m256i rq_fp32(__m256i acc, __m256 scale, float lo, float hi)
{
    __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), scale);
    v = _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(lo)), _mm256_set1_ps(hi));
    return _mm256_cvtps_epi32(v);
}

/* Layer L's requantization of the 8 channels from c, without the zero
 * point: mode 3 fp32, else mbm with lsh_any = mode. */
#define RQ(L, c, acc, mode)                                                                                      \
    ((mode) == 3 ? rq_fp32((acc), _mm256_loadu_ps((L)->qscale + (c)), (L)->qlo, (L)->qhi)                      \
                 : mbm((acc), LD((L)->qmult + (c)), LD((L)->qlsh + (c)), LD((L)->qrsh + (c)), LD((L)->qmask + (c)), \
                       LD((L)->qhalf + (c)), (mode)))

/* The first n (1..8) of 8 int32 lanes in [-128, 127] as int8. */
static inline void store8(int8_t *y, __m256i r, int32_t n)
{
    __m128i p16 = _mm_packs_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
    __m128i p8 = _mm_packs_epi16(p16, p16);
    if (n >= 8) _mm_storel_epi64((__m128i *)(void *)y, p8);
    else {
        int8_t tmp[16];
        _mm_storeu_si128((__m128i *)(void *)tmp, p8);
        memcpy(y, tmp, (size_t)n);
    }
}

/* 8 channels of int8 as int32 lanes minus zp; n < 8 reads only n bytes. */
static inline __m256i load_x(const int8_t *p, int32_t n, __m256i zp)
{
    __m128i v;
    if (n >= 8) v = _mm_loadl_epi64((const __m128i *)(const void *)p);
    else {
        int8_t tmp[8] = {0};
        memcpy(tmp, p, (size_t)n);
        v = _mm_loadl_epi64((const __m128i *)(const void *)tmp);
    }
    return _mm256_sub_epi32(_mm256_cvtepi8_epi32(v), zp);
}

static inline __attribute__((always_inline)) void tile(const rg_qk_gemm *L, const int16_t *xs, int32_t rows,
                                                      int32_t p0, const int np, const int rq_mode, int8_t *y)
{
    const int32_t kpad = L->kpad, groups = kpad / 2, n = L->n;
    const int16_t *wp = (const int16_t *)L->wpack + (size_t)p0 * (size_t)groups * 16;
    __m256i acc[MR][NP];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < np; j++) acc[i][j] = _mm256_setzero_si256();
    for (int32_t g = 0; g < groups; g++) {
        __m256i b[NP];
        for (int j = 0; j < np; j++) b[j] = LD(wp + ((size_t)j * groups + g) * 16);
        for (int i = 0; i < MR; i++) {
            int32_t a2;
            memcpy(&a2, xs + (size_t)i * kpad + 2 * (size_t)g, 4);
            __m256i a = _mm256_set1_epi32(a2);
            for (int j = 0; j < np; j++) acc[i][j] = _mm256_add_epi32(acc[i][j], _mm256_madd_epi16(a, b[j]));
        }
    }
    /* Epilogue as qk_vnni.c's: requantize two vectors, saturating packs to
     * int16, + zero point, packs to int8, clamp; a dword permutation puts
     * the per-128-bit-lane packs back in channel order. */
    const int32_t c0 = p0 * 8, valid = n - c0 < np * 8 ? n - c0 : np * 8;
    const __m256i zp16 = _mm256_set1_epi16((short)L->out_zp);
    const __m128i lo8 = _mm_set1_epi8((char)L->act_min), hi8 = _mm_set1_epi8((char)L->act_max);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int i = 0; i < MR; i++) {
        if (i >= rows) break;
        __m256i r[2];
        for (int j = 0; j < 2; j++) {
            if (j >= np) {
                r[j] = _mm256_setzero_si256();
                continue;
            }
            int32_t c = c0 + 8 * j;
            r[j] = RQ(L, c, _mm256_add_epi32(acc[i][j], LD(L->qbias + c)), rq_mode);
        }
        __m256i a = _mm256_adds_epi16(_mm256_packs_epi32(r[0], r[1]), zp16);
        __m256i v = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(a, a), perm);
        __m128i b8 = _mm_min_epi8(_mm_max_epi8(_mm256_castsi256_si128(v), lo8), hi8);
        int8_t *dst = y + (size_t)i * n + c0;
        if (valid == 16) _mm_storeu_si128((__m128i *)(void *)dst, b8);
        else {
            int8_t tmp[16];
            _mm_storeu_si128((__m128i *)(void *)tmp, b8);
            memcpy(dst, tmp, (size_t)valid);
        }
    }
}

static void gemm(const rg_qk_gemm *Lp, int32_t rows, const int8_t *x, int8_t *y, void *scratch)
{
    const rg_qk_gemm Lc = *Lp, *L = &Lc; /* a local copy: int8 stores cannot alias it */
    const int32_t k = L->k, kpad = L->kpad, n = L->n, panels = L->npad / 8;
    int16_t *xs = scratch;
    for (int32_t r0 = 0; r0 < rows; r0 += MR) {
        int32_t mr = rows - r0 < MR ? rows - r0 : MR;
        for (int32_t i = 0; i < MR; i++) {
            int16_t *d = xs + (size_t)i * kpad;
            if (i < mr) {
                const uint8_t *s = (const uint8_t *)x + (size_t)(r0 + i) * k;
                for (int32_t c = 0; c < k; c++) d[c] = (int16_t)(uint8_t)(s[c] ^ 0x80u); /* x + 128 */
                for (int32_t c = k; c < kpad; c++) d[c] = 0;
            } else
                memset(d, 0, (size_t)kpad * sizeof *d);
        }
        int8_t *yr = y + (size_t)r0 * n;
        int32_t p = 0;
        if (L->fp32) {
            for (; p + NP <= panels; p += NP) tile(L, xs, mr, p, NP, 3, yr);
            for (; p < panels; p++) tile(L, xs, mr, p, 1, 3, yr);
        } else if (L->lsh_any) {
            for (; p + NP <= panels; p += NP) tile(L, xs, mr, p, NP, 1, yr);
            for (; p < panels; p++) tile(L, xs, mr, p, 1, 1, yr);
        } else {
            for (; p + NP <= panels; p += NP) tile(L, xs, mr, p, NP, 0, yr);
            for (; p < panels; p++) tile(L, xs, mr, p, 1, 0, yr);
        }
    }
}

/* One output pixel's 8 channels from c0 (qk_vnni.c's dw_pixel, with
 * vpmaddwd + vpaddd in place of vpdpwssd). */
static inline __attribute__((always_inline)) void dw_pixel(const rg_qk_dw *L, const int8_t *xn, int32_t ih0,
                                                          int32_t iw0, int32_t c0, const int inside, const int KH,
                                                          const int KW, const int rq_mode, int8_t *yp, __m256i xzp,
                                                          __m256i lo, __m256i hi, __m256i zp)
{
    const int32_t c = L->p.in_c, cpad = L->cpad, in_w = L->p.in_w, in_h = L->p.in_h, cn = c - c0;
    const int32_t kh_n = KH ? KH : L->p.k_h, kw_n = KW ? KW : L->p.k_w;
    const int32_t dh = KH ? 1 : L->p.dilation_h, dw = KW ? 1 : L->p.dilation_w;
    const __m256i zero = _mm256_setzero_si256();
    __m256i acc = LD((inside ? L->qbias_zp : L->qbias) + c0);
    for (int32_t kh = 0; kh < kh_n; kh++) {
        int32_t ih = ih0 + kh * dh;
        if (!inside && (ih < 0 || ih >= in_h)) continue; /* padding reads real 0 */
        const int8_t *xr = xn + (size_t)ih * in_w * c + c0;
        const int32_t *wr = L->wtap + (size_t)kh * kw_n * cpad + c0;
        for (int32_t kw = 0; kw < kw_n; kw++) {
            int32_t iw = iw0 + kw * dw;
            if (!inside && (iw < 0 || iw >= in_w)) continue;
            __m256i xv = load_x(xr + (ptrdiff_t)iw * c, cn, inside ? zero : xzp);
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(xv, LD(wr + (size_t)kw * cpad)));
        }
    }
    __m256i r = RQ(L, c0, acc, rq_mode);
    store8(yp + c0, _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(r, lo), hi), zp), cn);
}

static inline __attribute__((always_inline)) void dw_impl(const rg_qk_dw *Lp, const int8_t *x, int8_t *y,
                                                         const int KH, const int KW, const int rq_mode)
{
    const rg_qk_dw L = *Lp; /* a local copy: int8 stores cannot alias it */
    const rg_q_conv_params *p = &L.p;
    const int32_t c = p->in_c;
    const int32_t span_h = (p->k_h - 1) * p->dilation_h, span_w = (p->k_w - 1) * p->dilation_w;
    const __m256i xzp = _mm256_set1_epi32(p->in_zp), zp = _mm256_set1_epi32(p->out_zp);
    const __m256i lo = _mm256_set1_epi32(p->act_min - p->out_zp), hi = _mm256_set1_epi32(p->act_max - p->out_zp);
    for (int32_t n = 0; n < p->batch; n++) {
        const int8_t *xn = x + (size_t)n * p->in_h * p->in_w * c;
        for (int32_t oh = 0; oh < p->out_h; oh++)
            for (int32_t ow = 0; ow < p->out_w; ow++) {
                int8_t *yp = y + (((size_t)n * p->out_h + oh) * p->out_w + ow) * c;
                int32_t ih0 = oh * p->stride_h - p->pad_top, iw0 = ow * p->stride_w - p->pad_left;
                int inside = ih0 >= 0 && ih0 + span_h < p->in_h && iw0 >= 0 && iw0 + span_w < p->in_w;
                if (inside)
                    for (int32_t c0 = 0; c0 < c; c0 += 8) dw_pixel(&L, xn, ih0, iw0, c0, 1, KH, KW, rq_mode, yp, xzp, lo, hi, zp);
                else
                    for (int32_t c0 = 0; c0 < c; c0 += 8) dw_pixel(&L, xn, ih0, iw0, c0, 0, KH, KW, rq_mode, yp, xzp, lo, hi, zp);
            }
    }
}

static void depthwise(const rg_qk_dw *L, const int8_t *x, int8_t *y, void *scratch)
{
    (void)scratch;
    int k33 = L->p.k_h == 3 && L->p.k_w == 3 && L->p.dilation_h == 1 && L->p.dilation_w == 1;
    if (L->fp32) {
        if (k33) dw_impl(L, x, y, 3, 3, 3);
        else dw_impl(L, x, y, 0, 0, 3);
    } else if (k33 && !L->lsh_any) dw_impl(L, x, y, 3, 3, 0);
    else if (k33) dw_impl(L, x, y, 3, 3, 1);
    else dw_impl(L, x, y, 0, 0, 1); /* other kernels: the general code */
}

static inline __m256i adds32(__m256i a, __m256i b)
{
    __m256i s = _mm256_add_epi32(a, b);
    __m256i ovf = _mm256_and_si256(_mm256_xor_si256(a, s), _mm256_xor_si256(b, s)); /* sign bit */
    __m256i sat = _mm256_blendv_epi8(_mm256_set1_epi32(INT32_MAX), _mm256_set1_epi32(INT32_MIN),
                                     _mm256_srai_epi32(a, 31));
    return _mm256_castps_si256(
        _mm256_blendv_ps(_mm256_castsi256_ps(s), _mm256_castsi256_ps(sat), _mm256_castsi256_ps(ovf)));
}

/* The requantization vectors of one per-tensor (multiplier, shift). */
typedef struct {
    __m256i m, lsh, rsh, mask, half;
} qvec;

static qvec qvec_of(int32_t m, int32_t shift)
{
    int32_t right = shift > 0 ? 0 : -shift, mask = (int32_t)((INT64_C(1) << right) - 1);
    return (qvec){_mm256_set1_epi32(m), _mm256_set1_epi32(shift > 0 ? shift : 0), _mm256_set1_epi32(right),
                  _mm256_set1_epi32(mask), _mm256_set1_epi32(mask >> 1)};
}

static inline __attribute__((always_inline)) void add_impl(const rg_q_add_params *p, const int8_t *a,
                                                           const int8_t *b, int64_t n, int8_t *y, const int lsh_any)
{
    const __m256i z1 = _mm256_set1_epi32(p->in1_zp), z2 = _mm256_set1_epi32(p->in2_zp);
    const __m256i ls = _mm256_set1_epi32(p->left_shift);
    const qvec q1 = qvec_of(p->in1_multiplier, p->in1_shift), q2 = qvec_of(p->in2_multiplier, p->in2_shift);
    const qvec qo = qvec_of(p->out_multiplier, p->out_shift);
    const __m256i lo = _mm256_set1_epi32(p->act_min - p->out_zp), hi = _mm256_set1_epi32(p->act_max - p->out_zp);
    const __m256i zp = _mm256_set1_epi32(p->out_zp);
    for (int64_t i = 0; i < n; i += 8) {
        int32_t cn = (int32_t)(n - i < 8 ? n - i : 8);
        __m256i va = _mm256_sllv_epi32(load_x(a + i, cn, z1), ls);
        __m256i vb = _mm256_sllv_epi32(load_x(b + i, cn, z2), ls);
        __m256i s1 = mbm(va, q1.m, q1.lsh, q1.rsh, q1.mask, q1.half, lsh_any);
        __m256i s2 = mbm(vb, q2.m, q2.lsh, q2.rsh, q2.mask, q2.half, lsh_any);
        store8(y + i, requant(adds32(s1, s2), qo.m, qo.lsh, qo.rsh, qo.mask, qo.half, lsh_any, lo, hi, zp), cn);
    }
}

/* The add's fp32 rule, as qk_vnni.c's add_fp32 (the empty asm: no FMA) */
static void add_fp32(const rg_q_add_params *p, const int8_t *a, const int8_t *b, int64_t n, int8_t *y)
{
    const __m256i z1 = _mm256_set1_epi32(p->in1_zp), z2 = _mm256_set1_epi32(p->in2_zp);
    const __m256i zo = _mm256_set1_epi32(p->out_zp);
    const __m256 s1 = _mm256_set1_ps(p->in1_scale), s2 = _mm256_set1_ps(p->in2_scale);
    const __m256 lo = _mm256_set1_ps((float)(p->act_min - p->out_zp)), hi = _mm256_set1_ps((float)(p->act_max - p->out_zp));
    for (int64_t i = 0; i < n; i += 8) {
        int32_t cn = (int32_t)(n - i < 8 ? n - i : 8);
        __m256 u = _mm256_mul_ps(_mm256_cvtepi32_ps(load_x(a + i, cn, z1)), s1);
        __m256 w = _mm256_mul_ps(_mm256_cvtepi32_ps(load_x(b + i, cn, z2)), s2);
        __asm__("" : "+x"(u), "+x"(w));
        __m256 v = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(u, w), lo), hi);
        store8(y + i, _mm256_add_epi32(_mm256_cvtps_epi32(v), zo), cn);
    }
}

static void add(const rg_q_add_params *p, const int8_t *a, const int8_t *b, int64_t n, int8_t *y)
{
    if (p->in1_scale > 0.0f) {
        add_fp32(p, a, b, n, y);
        return;
    }
    if (p->in1_shift > 0 || p->in2_shift > 0 || p->out_shift > 0) add_impl(p, a, b, n, y, 1);
    else add_impl(p, a, b, n, y, 0);
}

static void gap(const rg_q_gap_params *p, const int8_t *x, int8_t *y)
{
    const int64_t hw = (int64_t)p->h * p->w;
    const __m256i zp = _mm256_set1_epi32(p->in_zp);
    for (int32_t n = 0; n < p->batch; n++)
        for (int32_t c0 = 0; c0 < p->c; c0 += 8) {
            int32_t cn = p->c - c0 < 8 ? p->c - c0 : 8;
            __m256i acc = _mm256_setzero_si256();
            const int8_t *xp = x + (size_t)n * hw * p->c + c0;
            for (int64_t i = 0; i < hw; i++) acc = _mm256_add_epi32(acc, load_x(xp + i * p->c, cn, zp));
            int32_t sums[8];
            _mm256_storeu_si256((__m256i *)(void *)sums, acc);
            for (int32_t j = 0; j < cn; j++) {
                int32_t v = rg_q_mul_by_multiplier(sums[j], p->multiplier, p->shift);
                v = (int32_t)(v > 0 ? (v + hw / 2) / hw : (v - hw / 2) / hw);
                int64_t o = (int64_t)v + p->out_zp;
                y[(size_t)n * p->c + c0 + j] = (int8_t)(o < p->act_min ? p->act_min : o > p->act_max ? p->act_max : o);
            }
        }
}

static void clamp(const int8_t *x, int64_t n, int32_t lo, int32_t hi, int8_t *y)
{
    const __m256i vlo = _mm256_set1_epi8((char)lo), vhi = _mm256_set1_epi8((char)hi);
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(x + i));
        _mm256_storeu_si256((__m256i *)(void *)(y + i), _mm256_min_epi8(_mm256_max_epi8(v, vlo), vhi));
    }
    for (; i < n; i++) y[i] = (int8_t)(x[i] < lo ? lo : x[i] > hi ? hi : x[i]);
}

const rg_qk_table rg_qk_avx2 = {
    .name = "avx2", .nr = 8, .kr = 2, .wbytes = 2, .mr = MR, .cvec = 8,
    .gemm = gemm, .depthwise = depthwise, .add = add, .gap = gap, .clamp = clamp,
};
