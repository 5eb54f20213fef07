/* int8 kernels with AVX-512 VNNI (vpdpbusd), bit-exact with the integer
 * reference (rt/kernels/qk.h explains how). Compiled with -mavx512vnni
 * (CMakeLists.txt, *_vnni.c); only called when the CPU has it. */
#include "rt/kernels/qk.h"

#include <immintrin.h>
#include <string.h>

#define MR 6 /* activation rows a tile: 6 x 4 accumulators + 4 weights < 32 zmm */
#define NP 4 /* panels of 16 channels a tile */

/* rg_q_mul_by_multiplier on 16 lanes, then clamp to [lo, hi] (bounds minus
 * the output zero point) and add the zero point. */
static inline __m512i requant(__m512i acc, __m512i m, __m512i lsh, __m512i rsh, __m512i lo, __m512i hi,
                              __m512i zp)
{
    const __m512i one = _mm512_set1_epi32(1);
    /* x * 2^left saturated to int32: the shift is exact iff shifting back
     * gives x; otherwise saturate toward x's sign */
    __m512i s = _mm512_sllv_epi32(acc, lsh);
    __mmask16 exact = _mm512_cmpeq_epi32_mask(_mm512_srav_epi32(s, lsh), acc);
    __mmask16 neg = _mm512_cmplt_epi32_mask(acc, _mm512_setzero_si512());
    __m512i sat = _mm512_mask_blend_epi32(neg, _mm512_set1_epi32(INT32_MAX), _mm512_set1_epi32(INT32_MIN));
    s = _mm512_mask_blend_epi32(exact, sat, s);
    /* srdhm(s, m) = floor((s*m + 2^30) / 2^31): equal to gemmlowp's signed
     * nudge then truncation for every product (m >= 0 rules out the one
     * saturating case). Even lanes and odd lanes as 64-bit products. */
    const __m512i nudge = _mm512_set1_epi64(INT64_C(1) << 30);
    __m512i ev = _mm512_add_epi64(_mm512_mul_epi32(s, m), nudge);
    __m512i od = _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(s, 32), _mm512_srli_epi64(m, 32)), nudge);
    ev = _mm512_srli_epi64(ev, 31); /* bits 31..62 into the low half */
    od = _mm512_slli_epi64(od, 1);  /* bits 31..62 into the high half */
    __m512i r = _mm512_mask_blend_epi32(0xAAAA, ev, od);
    /* rdbpot(r, rsh): arithmetic shift, plus one when the remainder is
     * above half (half + 1 for negatives: ties away from zero) */
    __m512i mask = _mm512_sub_epi32(_mm512_sllv_epi32(one, rsh), one);
    __m512i rem = _mm512_and_si512(r, mask);
    __m512i thr = _mm512_add_epi32(_mm512_srai_epi32(mask, 1), _mm512_srli_epi32(r, 31));
    __mmask16 up = _mm512_cmpgt_epi32_mask(rem, thr);
    r = _mm512_srav_epi32(r, rsh);
    r = _mm512_mask_add_epi32(r, up, r, one);
    r = _mm512_min_epi32(_mm512_max_epi32(r, lo), hi);
    return _mm512_add_epi32(r, zp);
}

static inline __mmask16 lanes(int32_t n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u); }

/* One tile: MR rows (of xs, u8 = x + 128, rows past `rows` zero) times np
 * panels of 16 channels starting at panel p0. np is a constant at each call
 * so the accumulators stay in registers. */
static inline __attribute__((always_inline)) void tile(const rg_qk_gemm *L, const uint8_t *xs, int32_t rows,
                                                      int32_t p0, const int np, int8_t *y)
{
    const int32_t kpad = L->kpad, groups = kpad / 4, n = L->n;
    const int8_t *wp = (const int8_t *)L->wpack + (size_t)p0 * (size_t)groups * 64;
    __m512i acc[MR][NP];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < np; j++) acc[i][j] = _mm512_setzero_si512();
    for (int32_t g = 0; g < groups; g++) {
        __m512i b[NP];
        for (int j = 0; j < np; j++) b[j] = _mm512_loadu_si512(wp + ((size_t)j * groups + g) * 64);
        for (int i = 0; i < MR; i++) {
            int32_t a4;
            memcpy(&a4, xs + (size_t)i * kpad + 4 * (size_t)g, 4);
            __m512i a = _mm512_set1_epi32(a4);
            for (int j = 0; j < np; j++) acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], a, b[j]);
        }
    }
    const __m512i lo = _mm512_set1_epi32(L->act_min - L->out_zp), hi = _mm512_set1_epi32(L->act_max - L->out_zp);
    const __m512i zp = _mm512_set1_epi32(L->out_zp);
    for (int j = 0; j < np; j++) {
        int32_t c0 = (p0 + j) * 16;
        __mmask16 keep = lanes(n - c0);
        __m512i bias = _mm512_loadu_si512(L->qbias + c0), m = _mm512_loadu_si512(L->qmult + c0);
        __m512i lsh = _mm512_loadu_si512(L->qlsh + c0), rsh = _mm512_loadu_si512(L->qrsh + c0);
        for (int i = 0; i < MR; i++) {
            if (i >= rows) break;
            __m512i r = requant(_mm512_add_epi32(acc[i][j], bias), m, lsh, rsh, lo, hi, zp);
            _mm512_mask_cvtepi32_storeu_epi8(y + (size_t)i * n + c0, keep, r);
        }
    }
}

static void gemm(const rg_qk_gemm *L, int32_t rows, const int8_t *x, int8_t *y, void *scratch)
{
    const int32_t k = L->k, kpad = L->kpad, n = L->n, panels = L->npad / 16;
    uint8_t *xs = scratch;
    for (int32_t r0 = 0; r0 < rows; r0 += MR) {
        int32_t mr = rows - r0 < MR ? rows - r0 : MR;
        /* x + 128 as u8 (flipping the sign bit); the k padding and missing
         * rows are 0 (their weights, or their stores, are absent) */
        for (int32_t i = 0; i < MR; i++) {
            uint8_t *d = xs + (size_t)i * kpad;
            if (i < mr) {
                const uint8_t *s = (const uint8_t *)x + (size_t)(r0 + i) * k;
                for (int32_t c = 0; c < k; c++) d[c] = (uint8_t)(s[c] ^ 0x80u);
                for (int32_t c = k; c < kpad; c++) d[c] = 0;
            } else
                memset(d, 0, (size_t)kpad);
        }
        int8_t *yr = y + (size_t)r0 * n;
        int32_t p = 0;
        for (; p + NP <= panels; p += NP) tile(L, xs, mr, p, NP, yr);
        for (; p + 2 <= panels; p += 2) tile(L, xs, mr, p, 2, yr);
        for (; p < panels; p++) tile(L, xs, mr, p, 1, yr);
    }
}

/* 16 channels of one pixel as int32 lanes, x - zp (masked past c). */
static inline __m512i load_x(const int8_t *p, __mmask16 keep, __m512i zp)
{
    return _mm512_sub_epi32(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(keep, p)), zp);
}

static void depthwise(const rg_qk_dw *L, const int8_t *x, int8_t *y)
{
    const rg_q_conv_params *p = &L->p;
    const int32_t c = p->in_c, cpad = L->cpad;
    const __m512i xzp = _mm512_set1_epi32(p->in_zp), zp = _mm512_set1_epi32(p->out_zp);
    const __m512i lo = _mm512_set1_epi32(p->act_min - p->out_zp), hi = _mm512_set1_epi32(p->act_max - p->out_zp);
    for (int32_t n = 0; n < p->batch; n++)
        for (int32_t oh = 0; oh < p->out_h; oh++)
            for (int32_t ow = 0; ow < p->out_w; ow++) {
                int8_t *yp = y + (((size_t)n * p->out_h + oh) * p->out_w + ow) * c;
                int32_t ih0 = oh * p->stride_h - p->pad_top, iw0 = ow * p->stride_w - p->pad_left;
                for (int32_t c0 = 0; c0 < c; c0 += 16) {
                    __mmask16 keep = lanes(c - c0);
                    __m512i acc = _mm512_loadu_si512(L->qbias + c0);
                    for (int32_t kh = 0; kh < p->k_h; kh++) {
                        int32_t ih = ih0 + kh * p->dilation_h;
                        if (ih < 0 || ih >= p->in_h) continue; /* padding reads real 0 */
                        const int8_t *xr = x + ((size_t)n * p->in_h + ih) * p->in_w * c + c0;
                        const int32_t *wr = L->wtap + (size_t)kh * p->k_w * cpad + c0;
                        for (int32_t kw = 0; kw < p->k_w; kw++) {
                            int32_t iw = iw0 + kw * p->dilation_w;
                            if (iw < 0 || iw >= p->in_w) continue;
                            __m512i xv = load_x(xr + (size_t)iw * c, keep, xzp);
                            /* |x - zp| <= 255 in the low 16 bits, sign in the
                             * high ones times the weight's zero high half */
                            acc = _mm512_add_epi32(acc, _mm512_madd_epi16(xv, _mm512_loadu_si512(wr + (size_t)kw * cpad)));
                        }
                    }
                    __m512i r = requant(acc, _mm512_loadu_si512(L->qmult + c0), _mm512_loadu_si512(L->qlsh + c0),
                                        _mm512_loadu_si512(L->qrsh + c0), lo, hi, zp);
                    _mm512_mask_cvtepi32_storeu_epi8(yp + c0, keep, r);
                }
            }
}

/* int32 a + b saturated (overflow iff both operands' signs differ from the
 * wrapped sum's) */
static inline __m512i adds32(__m512i a, __m512i b)
{
    __m512i s = _mm512_add_epi32(a, b);
    __mmask16 ovf = _mm512_movepi32_mask(_mm512_and_si512(_mm512_xor_si512(a, s), _mm512_xor_si512(b, s)));
    __mmask16 neg = _mm512_movepi32_mask(a);
    __m512i sat = _mm512_mask_blend_epi32(neg, _mm512_set1_epi32(INT32_MAX), _mm512_set1_epi32(INT32_MIN));
    return _mm512_mask_blend_epi32(ovf, s, sat);
}

static void add(const rg_q_add_params *p, const int8_t *a, const int8_t *b, int64_t n, int8_t *y)
{
    const __m512i z1 = _mm512_set1_epi32(p->in1_zp), z2 = _mm512_set1_epi32(p->in2_zp);
    const __m512i ls = _mm512_set1_epi32(p->left_shift), zero = _mm512_setzero_si512();
    const __m512i m1 = _mm512_set1_epi32(p->in1_multiplier), m2 = _mm512_set1_epi32(p->in2_multiplier);
    const __m512i mo = _mm512_set1_epi32(p->out_multiplier);
    const __m512i l1 = _mm512_set1_epi32(p->in1_shift > 0 ? p->in1_shift : 0),
                  r1 = _mm512_set1_epi32(p->in1_shift > 0 ? 0 : -p->in1_shift);
    const __m512i l2 = _mm512_set1_epi32(p->in2_shift > 0 ? p->in2_shift : 0),
                  r2 = _mm512_set1_epi32(p->in2_shift > 0 ? 0 : -p->in2_shift);
    const __m512i lo_ = _mm512_set1_epi32(p->out_shift > 0 ? p->out_shift : 0),
                  ro = _mm512_set1_epi32(p->out_shift > 0 ? 0 : -p->out_shift);
    /* intermediate requantizations are not clamped: bounds of the int32 range */
    const __m512i nlo = _mm512_set1_epi32(INT32_MIN), nhi = _mm512_set1_epi32(INT32_MAX);
    const __m512i lo = _mm512_set1_epi32(p->act_min - p->out_zp), hi = _mm512_set1_epi32(p->act_max - p->out_zp);
    const __m512i zp = _mm512_set1_epi32(p->out_zp);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 keep = lanes((int32_t)(n - i < 16 ? n - i : 16));
        __m512i va = _mm512_sllv_epi32(load_x(a + i, keep, z1), ls);
        __m512i vb = _mm512_sllv_epi32(load_x(b + i, keep, z2), ls);
        __m512i s1 = requant(va, m1, l1, r1, nlo, nhi, zero);
        __m512i s2 = requant(vb, m2, l2, r2, nlo, nhi, zero);
        __m512i r = requant(adds32(s1, s2), mo, lo_, ro, lo, hi, zp);
        _mm512_mask_cvtepi32_storeu_epi8(y + i, keep, r);
    }
}

static void gap(const rg_q_gap_params *p, const int8_t *x, int8_t *y)
{
    const int64_t hw = (int64_t)p->h * p->w;
    const __m512i zp = _mm512_set1_epi32(p->in_zp);
    for (int32_t n = 0; n < p->batch; n++)
        for (int32_t c0 = 0; c0 < p->c; c0 += 16) {
            __mmask16 keep = lanes(p->c - c0);
            __m512i acc = _mm512_setzero_si512();
            const int8_t *xp = x + (size_t)n * hw * p->c + c0;
            for (int64_t i = 0; i < hw; i++) acc = _mm512_add_epi32(acc, load_x(xp + i * p->c, keep, zp));
            int32_t sums[16];
            _mm512_storeu_si512(sums, acc);
            /* per channel: the rescale and the rounded division, as the
             * reference (c values per image: not worth vectorizing) */
            int32_t cn = p->c - c0 < 16 ? p->c - c0 : 16;
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
    const __m512i vlo = _mm512_set1_epi8((char)lo), vhi = _mm512_set1_epi8((char)hi);
    for (int64_t i = 0; i < n; i += 64) {
        int64_t m = n - i < 64 ? n - i : 64;
        __mmask64 keep = m == 64 ? ~(__mmask64)0 : (((__mmask64)1 << m) - 1);
        __m512i v = _mm512_maskz_loadu_epi8(keep, x + i);
        _mm512_mask_storeu_epi8(y + i, keep, _mm512_min_epi8(_mm512_max_epi8(v, vlo), vhi));
    }
}

const rg_qk_table rg_qk_vnni = {
    .name = "avx512vnni", .nr = 16, .kr = 4, .wbytes = 1, .mr = MR, .cvec = 16,
    .gemm = gemm, .depthwise = depthwise, .add = add, .gap = gap, .clamp = clamp,
};
