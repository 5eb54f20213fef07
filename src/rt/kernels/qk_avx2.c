/* int8 kernels with AVX2, bit-exact with the integer reference
 * (rt/kernels/qk.h explains how). AVX2 has no byte dot product that cannot
 * saturate (vpmaddubsw saturates to int16), so the matrix product widens:
 * activations + 128 and weights as int16, pairs summed exactly by vpmaddwd.
 * Compiled with -mavx2 (CMakeLists.txt, *_avx2.c). */
#include "rt/kernels/qk.h"

#include <immintrin.h>
#include <string.h>

#define MR 4 /* activation rows a tile */
#define NP 2 /* panels of 8 channels a tile: 4 x 2 accumulators */

/* rg_q_mul_by_multiplier on 8 lanes, clamp to [lo, hi] (bounds minus the
 * output zero point), add the zero point. Same steps as qk_vnni.c. */
static inline __m256i requant(__m256i acc, __m256i m, __m256i lsh, __m256i rsh, __m256i lo, __m256i hi,
                              __m256i zp)
{
    const __m256i one = _mm256_set1_epi32(1);
    __m256i s = _mm256_sllv_epi32(acc, lsh);
    __m256i exact = _mm256_cmpeq_epi32(_mm256_srav_epi32(s, lsh), acc);
    __m256i sat = _mm256_blendv_epi8(_mm256_set1_epi32(INT32_MAX), _mm256_set1_epi32(INT32_MIN),
                                     _mm256_srai_epi32(acc, 31)); /* whole-lane mask from the sign */
    s = _mm256_blendv_epi8(sat, s, exact);
    const __m256i nudge = _mm256_set1_epi64x(INT64_C(1) << 30);
    __m256i ev = _mm256_add_epi64(_mm256_mul_epi32(s, m), nudge);
    __m256i od = _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(s, 32), _mm256_srli_epi64(m, 32)), nudge);
    ev = _mm256_srli_epi64(ev, 31);
    od = _mm256_slli_epi64(od, 1);
    __m256i r = _mm256_blend_epi32(ev, od, 0xAA);
    __m256i mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, rsh), one);
    __m256i rem = _mm256_and_si256(r, mask);
    __m256i thr = _mm256_add_epi32(_mm256_srai_epi32(mask, 1), _mm256_srli_epi32(r, 31));
    __m256i up = _mm256_cmpgt_epi32(rem, thr); /* -1 where rounding up */
    r = _mm256_sub_epi32(_mm256_srav_epi32(r, rsh), up);
    r = _mm256_min_epi32(_mm256_max_epi32(r, lo), hi);
    return _mm256_add_epi32(r, zp);
}

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
                                                      int32_t p0, const int np, int8_t *y)
{
    const int32_t kpad = L->kpad, groups = kpad / 2, n = L->n;
    const int16_t *wp = (const int16_t *)L->wpack + (size_t)p0 * (size_t)groups * 16;
    __m256i acc[MR][NP];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < np; j++) acc[i][j] = _mm256_setzero_si256();
    for (int32_t g = 0; g < groups; g++) {
        __m256i b[NP];
        for (int j = 0; j < np; j++)
            b[j] = _mm256_loadu_si256((const __m256i *)(const void *)(wp + ((size_t)j * groups + g) * 16));
        for (int i = 0; i < MR; i++) {
            int32_t a2;
            memcpy(&a2, xs + (size_t)i * kpad + 2 * (size_t)g, 4);
            __m256i a = _mm256_set1_epi32(a2);
            for (int j = 0; j < np; j++) acc[i][j] = _mm256_add_epi32(acc[i][j], _mm256_madd_epi16(a, b[j]));
        }
    }
    const __m256i lo = _mm256_set1_epi32(L->act_min - L->out_zp), hi = _mm256_set1_epi32(L->act_max - L->out_zp);
    const __m256i zp = _mm256_set1_epi32(L->out_zp);
    for (int j = 0; j < np; j++) {
        int32_t c0 = (p0 + j) * 8;
        const __m256i *q = (const __m256i *)(const void *)(L->qbias + c0);
        __m256i bias = _mm256_loadu_si256(q), m = _mm256_loadu_si256((const __m256i *)(const void *)(L->qmult + c0));
        __m256i lsh = _mm256_loadu_si256((const __m256i *)(const void *)(L->qlsh + c0));
        __m256i rsh = _mm256_loadu_si256((const __m256i *)(const void *)(L->qrsh + c0));
        for (int i = 0; i < MR; i++) {
            if (i >= rows) break;
            __m256i r = requant(_mm256_add_epi32(acc[i][j], bias), m, lsh, rsh, lo, hi, zp);
            store8(y + (size_t)i * n + c0, r, n - c0);
        }
    }
}

static void gemm(const rg_qk_gemm *L, int32_t rows, const int8_t *x, int8_t *y, void *scratch)
{
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
        for (; p + NP <= panels; p += NP) tile(L, xs, mr, p, NP, yr);
        for (; p < panels; p++) tile(L, xs, mr, p, 1, yr);
    }
}

static void depthwise(const rg_qk_dw *L, const int8_t *x, int8_t *y)
{
    const rg_q_conv_params *p = &L->p;
    const int32_t c = p->in_c, cpad = L->cpad;
    const __m256i xzp = _mm256_set1_epi32(p->in_zp), zp = _mm256_set1_epi32(p->out_zp);
    const __m256i lo = _mm256_set1_epi32(p->act_min - p->out_zp), hi = _mm256_set1_epi32(p->act_max - p->out_zp);
    for (int32_t n = 0; n < p->batch; n++)
        for (int32_t oh = 0; oh < p->out_h; oh++)
            for (int32_t ow = 0; ow < p->out_w; ow++) {
                int8_t *yp = y + (((size_t)n * p->out_h + oh) * p->out_w + ow) * c;
                int32_t ih0 = oh * p->stride_h - p->pad_top, iw0 = ow * p->stride_w - p->pad_left;
                for (int32_t c0 = 0; c0 < c; c0 += 8) {
                    int32_t cn = c - c0;
                    __m256i acc = _mm256_loadu_si256((const __m256i *)(const void *)(L->qbias + c0));
                    for (int32_t kh = 0; kh < p->k_h; kh++) {
                        int32_t ih = ih0 + kh * p->dilation_h;
                        if (ih < 0 || ih >= p->in_h) continue;
                        const int8_t *xr = x + ((size_t)n * p->in_h + ih) * p->in_w * c + c0;
                        const int32_t *wr = L->wtap + (size_t)kh * p->k_w * cpad + c0;
                        for (int32_t kw = 0; kw < p->k_w; kw++) {
                            int32_t iw = iw0 + kw * p->dilation_w;
                            if (iw < 0 || iw >= p->in_w) continue;
                            __m256i xv = load_x(xr + (size_t)iw * c, cn, xzp);
                            __m256i wv = _mm256_loadu_si256((const __m256i *)(const void *)(wr + (size_t)kw * cpad));
                            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(xv, wv));
                        }
                    }
                    __m256i m = _mm256_loadu_si256((const __m256i *)(const void *)(L->qmult + c0));
                    __m256i lsh = _mm256_loadu_si256((const __m256i *)(const void *)(L->qlsh + c0));
                    __m256i rsh = _mm256_loadu_si256((const __m256i *)(const void *)(L->qrsh + c0));
                    store8(yp + c0, requant(acc, m, lsh, rsh, lo, hi, zp), cn);
                }
            }
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

static void add(const rg_q_add_params *p, const int8_t *a, const int8_t *b, int64_t n, int8_t *y)
{
    const __m256i z1 = _mm256_set1_epi32(p->in1_zp), z2 = _mm256_set1_epi32(p->in2_zp);
    const __m256i ls = _mm256_set1_epi32(p->left_shift), zero = _mm256_setzero_si256();
    const __m256i m1 = _mm256_set1_epi32(p->in1_multiplier), m2 = _mm256_set1_epi32(p->in2_multiplier);
    const __m256i mo = _mm256_set1_epi32(p->out_multiplier);
    const __m256i l1 = _mm256_set1_epi32(p->in1_shift > 0 ? p->in1_shift : 0),
                  r1 = _mm256_set1_epi32(p->in1_shift > 0 ? 0 : -p->in1_shift);
    const __m256i l2 = _mm256_set1_epi32(p->in2_shift > 0 ? p->in2_shift : 0),
                  r2 = _mm256_set1_epi32(p->in2_shift > 0 ? 0 : -p->in2_shift);
    const __m256i lo_ = _mm256_set1_epi32(p->out_shift > 0 ? p->out_shift : 0),
                  ro = _mm256_set1_epi32(p->out_shift > 0 ? 0 : -p->out_shift);
    const __m256i nlo = _mm256_set1_epi32(INT32_MIN), nhi = _mm256_set1_epi32(INT32_MAX);
    const __m256i lo = _mm256_set1_epi32(p->act_min - p->out_zp), hi = _mm256_set1_epi32(p->act_max - p->out_zp);
    const __m256i zp = _mm256_set1_epi32(p->out_zp);
    for (int64_t i = 0; i < n; i += 8) {
        int32_t cn = (int32_t)(n - i < 8 ? n - i : 8);
        __m256i va = _mm256_sllv_epi32(load_x(a + i, cn, z1), ls);
        __m256i vb = _mm256_sllv_epi32(load_x(b + i, cn, z2), ls);
        __m256i s1 = requant(va, m1, l1, r1, nlo, nhi, zero);
        __m256i s2 = requant(vb, m2, l2, r2, nlo, nhi, zero);
        store8(y + i, requant(adds32(s1, s2), mo, lo_, ro, lo, hi, zp), cn);
    }
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
