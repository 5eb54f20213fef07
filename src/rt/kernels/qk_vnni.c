/* int8 kernels with AVX-512 VNNI (vpdpbusd), bit-exact with the integer
 * reference (rt/kernels/qk.h explains how). Compiled with -mavx512vnni
 * (CMakeLists.txt, *_vnni.c); only called when the CPU has it. */
#include "rt/kernels/qk.h"

#include <immintrin.h>
#include <stddef.h>
#include <string.h>

#define MR 4 /* activation rows a tile: 4 x 4 accumulators (more make GCC spill in the loop) */
#define NP 4 /* panels of 16 channels a tile */

/* rg_q_mul_by_multiplier on 16 lanes: lsh, rsh the left and right shifts,
 * mask = 2^rsh - 1, half = mask >> 1 (per channel, from prepare). With
 * lsh_any 0 (a constant at each call) the left shift is known to be 0. */
static inline __attribute__((always_inline)) __m512i mbm(__m512i x, __m512i m, __m512i lsh, __m512i rsh,
                                                        __m512i mask, __m512i half, const int lsh_any)
{
    __m512i s = x;
    if (lsh_any) {
        /* x * 2^left saturated to int32: the shift is exact iff shifting
         * back gives x; otherwise saturate toward x's sign */
        s = _mm512_sllv_epi32(x, lsh);
        __mmask16 exact = _mm512_cmpeq_epi32_mask(_mm512_srav_epi32(s, lsh), x);
        __mmask16 neg = _mm512_movepi32_mask(x);
        __m512i sat = _mm512_mask_blend_epi32(neg, _mm512_set1_epi32(INT32_MAX), _mm512_set1_epi32(INT32_MIN));
        s = _mm512_mask_blend_epi32(exact, sat, s);
    }
    /* srdhm(s, m) = floor((s*m + 2^30) / 2^31): equal to gemmlowp's signed
     * nudge then truncation for every product (m >= 0 rules out the one
     * saturating case). Even lanes and odd lanes as 64-bit products. */
    const __m512i nudge = _mm512_set1_epi64(INT64_C(1) << 30);
    __m512i ev = _mm512_add_epi64(_mm512_mul_epi32(s, m), nudge);
    __m512i od = _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(s, 32), _mm512_srli_epi64(m, 32)), nudge);
    ev = _mm512_srli_epi64(ev, 31); /* bits 31..62 into the low half */
    od = _mm512_slli_epi64(od, 1);  /* bits 31..62 into the high half */
    __m512i r = _mm512_mask_blend_epi32(0xAAAA, ev, od);
    /* rdbpot(r, rsh): arithmetic shift, plus one when the remainder is above
     * half the divisor (above half + 1 for negatives: ties away from zero);
     * rem - [r < 0] > half is that test */
    __m512i rem = _mm512_add_epi32(_mm512_and_si512(r, mask), _mm512_srai_epi32(r, 31));
    __mmask16 up = _mm512_cmpgt_epi32_mask(rem, half);
    r = _mm512_srav_epi32(r, rsh);
    return _mm512_mask_add_epi32(r, up, r, _mm512_set1_epi32(1));
}

/* mbm with the short rounding (rt/kernels/qk.h, rg_qk_gemm.rshort):
 * right shifts only, modd the next channel's multiplier at even lanes,
 * rnd 2^(rsh-1). */
static inline __attribute__((always_inline)) __m512i mbm_short(__m512i x, __m512i m, __m512i modd, __m512i rsh,
                                                              __m512i rnd)
{
    const __m512i nudge = _mm512_set1_epi64(INT64_C(1) << 30);
    __m512i ev = _mm512_add_epi64(_mm512_mul_epi32(x, m), nudge);
    __m512i od = _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(x, 32), modd), nudge);
    __m512i r = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(ev, 31), _mm512_slli_epi64(od, 1));
    __m512i t = _mm512_sub_epi32(_mm512_add_epi32(r, rnd), _mm512_srli_epi32(r, 31));
    return _mm512_srav_epi32(t, rsh);
}

/* fp32 requantization (rt/kernels/qk.h, rg_qk_gemm.fp32): rg_q_requant_fp32
 * but the zero point, the conversions rounding to nearest even (MXCSR's
 * default, as the reference's) */
static inline __m512i rq_fp32(__m512i acc, __m512 scale, float lo, float hi)
{
    __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), scale);
    v = _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(lo)), _mm512_set1_ps(hi));
    return _mm512_cvtps_epi32(v);
}

/* The requantization of a prepared layer L (rg_qk_gemm or rg_qk_dw) for
 * the 16 channels from c, without the zero point: mode 3 fp32, mode 2 the
 * short rounding, else mbm with lsh_any = mode. */
#define RQ(L, c, acc, mode)                                                                                      \
    ((mode) == 3   ? rq_fp32((acc), _mm512_loadu_ps((L)->qscale + (c)), (L)->qlo, (L)->qhi)                    \
     : (mode) == 2 ? mbm_short((acc), LD((L)->qmult + (c)), LD((L)->qmodd + (c)), LD((L)->qrsh + (c)),           \
                               LD((L)->qrnd + (c)))                                                              \
                   : mbm((acc), LD((L)->qmult + (c)), LD((L)->qlsh + (c)), LD((L)->qrsh + (c)),                \
                         LD((L)->qmask + (c)), LD((L)->qhalf + (c)), (mode)))

/* mbm, clamped to [lo, hi] (the bounds minus the output zero point), plus
 * the zero point: the order in which nothing can overflow. */
static inline __attribute__((always_inline)) __m512i requant(__m512i acc, __m512i m, __m512i lsh, __m512i rsh,
                                                            __m512i mask, __m512i half, const int lsh_any,
                                                            __m512i lo, __m512i hi, __m512i zp)
{
    __m512i r = mbm(acc, m, lsh, rsh, mask, half, lsh_any);
    return _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(r, lo), hi), zp);
}

static inline __mmask16 lanes(int32_t n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u); }

/* The low bytes of 16 int32 lanes to p (keep: which). The register form of
 * vpmovdb then a byte store: the memory form is far slower on Zen 4. */
static inline void store16(int8_t *p, __mmask16 keep, __m512i v)
{
    __m128i b = _mm512_cvtepi32_epi8(v);
    if (keep == 0xFFFF) _mm_storeu_si128((__m128i *)(void *)p, b);
    else _mm_mask_storeu_epi8(p, keep, b);
}

#define LD(p) _mm512_loadu_si512((const void *)(p))

/* The epilogue of one row of a tile: requantize np vectors from channel
 * c0 and store them. One vector: clamp in int32 and narrow on the store.
 * Several: narrow four at once: saturating packs to int16, + zero point
 * (saturating), packs to int8, clamp. The saturations cannot change a
 * result: anything they touch is far outside [act_min, act_max].
 * vpackssdw/vpacksswb work per 128-bit lane, so a dword transpose restores
 * the channel order. */
static inline __attribute__((always_inline)) void store_row(const rg_qk_gemm *L, __m512i a0, __m512i a1,
                                                           __m512i a2, __m512i a3, int32_t c0, const int np,
                                                           const int rq_mode, int8_t *yr)
{
    const int32_t n = L->n;
    __m512i r[4] = {a0, a1, a2, a3};
    for (int j = 0; j < 4; j++) {
        if (j >= np) {
            r[j] = _mm512_setzero_si512();
            continue;
        }
        int32_t c = c0 + 16 * j;
        r[j] = RQ(L, c, _mm512_add_epi32(r[j], LD(L->qbias + c)), rq_mode);
    }
    if (np == 1) {
        const __m512i lo = _mm512_set1_epi32(L->act_min - L->out_zp), hi = _mm512_set1_epi32(L->act_max - L->out_zp);
        __m512i v = _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(r[0], lo), hi), _mm512_set1_epi32(L->out_zp));
        store16(yr + c0, lanes(n - c0), v);
        return;
    }
    const int32_t valid = n - c0 < np * 16 ? n - c0 : np * 16;
    const __mmask64 keep = valid >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << valid) - 1);
    const __m512i zp16 = _mm512_set1_epi16((short)L->out_zp);
    const __m512i lo8 = _mm512_set1_epi8((char)L->act_min), hi8 = _mm512_set1_epi8((char)L->act_max);
    const __m512i perm = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    __m512i a = _mm512_adds_epi16(_mm512_packs_epi32(r[0], r[1]), zp16);
    __m512i b = _mm512_adds_epi16(_mm512_packs_epi32(r[2], r[3]), zp16);
    __m512i v = _mm512_min_epi8(_mm512_max_epi8(_mm512_packs_epi16(a, b), lo8), hi8);
    _mm512_mask_storeu_epi8(yr + c0, keep, _mm512_permutexvar_epi32(perm, v));
}

/* One tile: MR activation rows (xr[i], read 4 bytes at a time and flipped
 * to u8 = x + 128; rows past `rows` repeat a valid row and are not stored)
 * times np panels of 16 channels from panel p0. np and rq_mode are
 * constants at each call so the accumulators stay in registers. */
static inline __attribute__((always_inline)) void tile(const rg_qk_gemm *L, const uint8_t *const *xr,
                                                      int32_t rows, int32_t p0, const int np, const int rq_mode,
                                                      int8_t *y)
{
    const int32_t groups = L->kpad / 4, n = L->n;
    const int8_t *wp = (const int8_t *)L->wpack + (size_t)p0 * (size_t)groups * 64;
    /* Named accumulators: with an array GCC copies them between registers
     * and the stack on every step of the loop. */
    const __m512i z = _mm512_setzero_si512();
    __m512i c00 = z, c01 = z, c02 = z, c03 = z, c10 = z, c11 = z, c12 = z, c13 = z;
    __m512i c20 = z, c21 = z, c22 = z, c23 = z, c30 = z, c31 = z, c32 = z, c33 = z;
    const uint8_t *x0 = xr[0], *x1 = xr[1], *x2 = xr[2], *x3 = xr[3];
    const int8_t *w0 = wp, *w1 = wp + (size_t)groups * 64, *w2 = wp + (size_t)2 * groups * 64,
                 *w3 = wp + (size_t)3 * groups * 64;
#define ROW(xp, a0, a1, a2, a3)                                                                                    \
    do {                                                                                                         \
        uint32_t a4;                                                                                             \
        memcpy(&a4, (xp) + 4 * (size_t)g, 4);                                                                    \
        __m512i a = _mm512_set1_epi32((int32_t)(a4 ^ 0x80808080u));                                              \
        a0 = _mm512_dpbusd_epi32(a0, a, b0);                                                                     \
        if (np > 1) a1 = _mm512_dpbusd_epi32(a1, a, b1);                                                         \
        if (np > 2) a2 = _mm512_dpbusd_epi32(a2, a, b2);                                                         \
        if (np > 3) a3 = _mm512_dpbusd_epi32(a3, a, b3);                                                         \
    } while (0)
    for (int32_t g = 0; g < groups; g++) {
        __m512i b0 = LD(w0 + (size_t)g * 64), b1 = z, b2 = z, b3 = z;
        if (np > 1) b1 = LD(w1 + (size_t)g * 64);
        if (np > 2) b2 = LD(w2 + (size_t)g * 64);
        if (np > 3) b3 = LD(w3 + (size_t)g * 64);
        ROW(x0, c00, c01, c02, c03);
        ROW(x1, c10, c11, c12, c13);
        ROW(x2, c20, c21, c22, c23);
        ROW(x3, c30, c31, c32, c33);
    }
#undef ROW
    const int32_t c0 = p0 * 16;
    if (rows > 0) store_row(L, c00, c01, c02, c03, c0, np, rq_mode, y);
    if (rows > 1) store_row(L, c10, c11, c12, c13, c0, np, rq_mode, y + (size_t)n);
    if (rows > 2) store_row(L, c20, c21, c22, c23, c0, np, rq_mode, y + (size_t)2 * n);
    if (rows > 3) store_row(L, c30, c31, c32, c33, c0, np, rq_mode, y + (size_t)3 * n);
}

static void gemm(const rg_qk_gemm *Lp, int32_t rows, const int8_t *x, int8_t *y, void *scratch)
{
    const rg_qk_gemm Lc = *Lp, *L = &Lc; /* a local copy: int8 stores cannot alias it */
    const int32_t k = L->k, kpad = L->kpad, n = L->n, panels = L->npad / 16;
    uint8_t *xs = scratch;
    for (int32_t r0 = 0; r0 < rows; r0 += MR) {
        int32_t mr = rows - r0 < MR ? rows - r0 : MR;
        const uint8_t *xr[MR];
        if (k == kpad) /* rows read in place */
            for (int32_t i = 0; i < MR; i++) xr[i] = (const uint8_t *)x + (size_t)(r0 + (i < mr ? i : 0)) * k;
        else /* k padded with 0 (zero weights there): copies in scratch */
            for (int32_t i = 0; i < MR; i++) {
                uint8_t *d = xs + (size_t)i * kpad;
                memcpy(d, x + (size_t)(r0 + (i < mr ? i : 0)) * k, (size_t)k);
                memset(d + k, 0, (size_t)(kpad - k));
                xr[i] = d;
            }
        int8_t *yr = y + (size_t)r0 * n;
        int32_t p = 0;
        if (L->fp32) {
            for (; p + NP <= panels; p += NP) tile(L, xr, mr, p, NP, 3, yr);
            for (; p + 2 <= panels; p += 2) tile(L, xr, mr, p, 2, 3, yr);
            for (; p < panels; p++) tile(L, xr, mr, p, 1, 3, yr);
        } else if (L->rshort) {
            for (; p + NP <= panels; p += NP) tile(L, xr, mr, p, NP, 2, yr);
            for (; p + 2 <= panels; p += 2) tile(L, xr, mr, p, 2, 2, yr);
            for (; p < panels; p++) tile(L, xr, mr, p, 1, 2, yr);
        } else if (L->lsh_any) {
            for (; p + NP <= panels; p += NP) tile(L, xr, mr, p, NP, 1, yr);
            for (; p + 2 <= panels; p += 2) tile(L, xr, mr, p, 2, 1, yr);
            for (; p < panels; p++) tile(L, xr, mr, p, 1, 1, yr);
        } else {
            for (; p + NP <= panels; p += NP) tile(L, xr, mr, p, NP, 0, yr);
            for (; p + 2 <= panels; p += 2) tile(L, xr, mr, p, 2, 0, yr);
            for (; p < panels; p++) tile(L, xr, mr, p, 1, 0, yr);
        }
    }
}

/* 16 channels of one pixel as int32 lanes, x - zp (masked past c). */
static inline __m512i load_x(const int8_t *p, __mmask16 keep, __m512i zp)
{
    return _mm512_sub_epi32(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(keep, p)), zp);
}

/* One output pixel's 16 channels from c0. A window inside the input sums
 * x w from the bias with the zero point folded in (no subtraction per tap);
 * a window over the border sums (x - zp) w over its valid taps only, as
 * the reference. vpdpwssd multiplies the int32 lane's low 16 bits (x, or
 * x - zp: |.| <= 255) by the weight and its high 16 (the sign) by the
 * weight's zero high half: exactly x * w, accumulated. KH, KW (3, 3) are
 * constants for the common kernel, 0 for any other (then read from L). */
static inline __attribute__((always_inline)) void dw_pixel(const rg_qk_dw *L, const int8_t *xn, int32_t ih0,
                                                          int32_t iw0, int32_t c0, __mmask16 keep,
                                                          const int inside, const int KH, const int KW,
                                                          const int rq_mode, int8_t *yp, __m512i xzp, __m512i lo,
                                                          __m512i hi, __m512i zp)
{
    const int32_t c = L->p.in_c, cpad = L->cpad, in_w = L->p.in_w, in_h = L->p.in_h;
    const int32_t kh_n = KH ? KH : L->p.k_h, kw_n = KW ? KW : L->p.k_w;
    const int32_t dh = KH ? 1 : L->p.dilation_h, dw = KW ? 1 : L->p.dilation_w;
    /* one accumulator per kernel row (up to 3): vpdpwssd's latency would
     * otherwise chain all the taps of a pixel */
    __m512i part[3] = {LD((inside ? L->qbias_zp : L->qbias) + c0), _mm512_setzero_si512(), _mm512_setzero_si512()};
    for (int32_t kh = 0; kh < kh_n; kh++) {
        int32_t ih = ih0 + kh * dh;
        if (!inside && (ih < 0 || ih >= in_h)) continue; /* padding reads real 0 */
        const int8_t *xr = xn + (size_t)ih * in_w * c + c0;
        const int32_t *wr = L->wtap + (size_t)kh * kw_n * cpad + c0;
        __m512i a = part[kh % 3];
        for (int32_t kw = 0; kw < kw_n; kw++) {
            int32_t iw = iw0 + kw * dw;
            if (!inside && (iw < 0 || iw >= in_w)) continue;
            __m512i xv = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(keep, xr + (ptrdiff_t)iw * c));
            if (!inside) xv = _mm512_sub_epi32(xv, xzp);
            a = _mm512_dpwssd_epi32(a, xv, LD(wr + (size_t)kw * cpad));
        }
        part[kh % 3] = a;
    }
    /* int32 sums wrap, so the order of the partial sums does not matter */
    __m512i acc = _mm512_add_epi32(_mm512_add_epi32(part[0], part[1]), part[2]);
    __m512i r = RQ(L, c0, acc, rq_mode);
    store16(yp + c0, keep, _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(r, lo), hi), zp));
}

/* 64 full channels of one output pixel from c0: four independent chains,
 * unmasked loads, and the matrix product's narrowing epilogue (one store
 * for 64 outputs). */
static inline __attribute__((always_inline)) void dw_quad(const rg_qk_dw *L, const int8_t *xn, int32_t ih0,
                                                         int32_t iw0, int32_t c0, const int inside, const int KH,
                                                         const int KW, const int rq_mode, int8_t *yp, __m512i xzp)
{
    const int32_t c = L->p.in_c, cpad = L->cpad, in_w = L->p.in_w, in_h = L->p.in_h;
    const int32_t kh_n = KH ? KH : L->p.k_h, kw_n = KW ? KW : L->p.k_w;
    const int32_t dh = KH ? 1 : L->p.dilation_h, dw = KW ? 1 : L->p.dilation_w;
    const int32_t *b0 = (inside ? L->qbias_zp : L->qbias) + c0;
    __m512i acc[4] = {LD(b0), LD(b0 + 16), LD(b0 + 32), LD(b0 + 48)};
    for (int32_t kh = 0; kh < kh_n; kh++) {
        int32_t ih = ih0 + kh * dh;
        if (!inside && (ih < 0 || ih >= in_h)) continue;
        const int8_t *xr = xn + (size_t)ih * in_w * c + c0;
        const int32_t *wr = L->wtap + (size_t)kh * kw_n * cpad + c0;
        for (int32_t kw = 0; kw < kw_n; kw++) {
            int32_t iw = iw0 + kw * dw;
            if (!inside && (iw < 0 || iw >= in_w)) continue;
            const int8_t *xp = xr + (ptrdiff_t)iw * c;
            const int32_t *wp = wr + (size_t)kw * cpad;
            for (int j = 0; j < 4; j++) {
                __m512i xv = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(xp + 16 * j)));
                if (!inside) xv = _mm512_sub_epi32(xv, xzp);
                acc[j] = _mm512_dpwssd_epi32(acc[j], xv, LD(wp + 16 * j));
            }
        }
    }
    __m512i r[4];
    for (int j = 0; j < 4; j++) r[j] = RQ(L, c0 + 16 * j, acc[j], rq_mode);
    const __m512i zp16 = _mm512_set1_epi16((short)L->p.out_zp);
    const __m512i lo8 = _mm512_set1_epi8((char)L->p.act_min), hi8 = _mm512_set1_epi8((char)L->p.act_max);
    const __m512i perm = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    __m512i a = _mm512_adds_epi16(_mm512_packs_epi32(r[0], r[1]), zp16);
    __m512i b = _mm512_adds_epi16(_mm512_packs_epi32(r[2], r[3]), zp16);
    __m512i v = _mm512_min_epi8(_mm512_max_epi8(_mm512_packs_epi16(a, b), lo8), hi8);
    _mm512_storeu_si512((void *)(yp + c0), _mm512_permutexvar_epi32(perm, v));
}

static inline __attribute__((always_inline)) void dw_impl(const rg_qk_dw *Lp, const int8_t *x, int8_t *y,
                                                         const int KH, const int KW, const int rq_mode)
{
    const rg_qk_dw L = *Lp; /* a local copy: int8 stores cannot alias it */
    const rg_q_conv_params *p = &L.p;
    const int32_t c = p->in_c;
    const int32_t span_h = (p->k_h - 1) * p->dilation_h, span_w = (p->k_w - 1) * p->dilation_w;
    const __m512i xzp = _mm512_set1_epi32(p->in_zp), zp = _mm512_set1_epi32(p->out_zp);
    const __m512i lo = _mm512_set1_epi32(p->act_min - p->out_zp), hi = _mm512_set1_epi32(p->act_max - p->out_zp);
    for (int32_t n = 0; n < p->batch; n++) {
        const int8_t *xn = x + (size_t)n * p->in_h * p->in_w * c;
        for (int32_t oh = 0; oh < p->out_h; oh++)
            for (int32_t ow = 0; ow < p->out_w; ow++) {
                int8_t *yp = y + (((size_t)n * p->out_h + oh) * p->out_w + ow) * c;
                int32_t ih0 = oh * p->stride_h - p->pad_top, iw0 = ow * p->stride_w - p->pad_left;
                int inside = ih0 >= 0 && ih0 + span_h < p->in_h && iw0 >= 0 && iw0 + span_w < p->in_w;
                int32_t c0 = 0;
                if (inside) {
                    for (; c0 + 64 <= c; c0 += 64) dw_quad(&L, xn, ih0, iw0, c0, 1, KH, KW, rq_mode, yp, xzp);
                    for (; c0 < c; c0 += 16)
                        dw_pixel(&L, xn, ih0, iw0, c0, lanes(c - c0), 1, KH, KW, rq_mode, yp, xzp, lo, hi, zp);
                } else {
                    for (; c0 + 64 <= c; c0 += 64) dw_quad(&L, xn, ih0, iw0, c0, 0, KH, KW, rq_mode, yp, xzp);
                    for (; c0 < c; c0 += 16)
                        dw_pixel(&L, xn, ih0, iw0, c0, lanes(c - c0), 0, KH, KW, rq_mode, yp, xzp, lo, hi, zp);
                }
            }
    }
}

/* ---- depthwise on gathered rows (rt/kernels/qk.h, rg_qk_dw) ----
 *
 * A ring of span_h + 1 input rows in scratch, each gathered once: for
 * output column ow and channel c the int32 whose byte kw is x[ow*stride -
 * pad + kw*dilation] + 128 (zp + 128 outside the row; byte 3 past k_w is
 * 0 against a zero weight). An output pixel's kernel row is then one
 * vpdpbusd against the row's 4 weights, the same for every window; the
 * bias holds -(128 + zp) sum w, so padding counts (zp - zp) w = 0 as the
 * reference's skipped taps. */

/* kernel rows the ring path takes (taller kernels: the per-tap code) */
#define RING_MAX 8

static int32_t dw_ring(const rg_qk_dw *L)
{
    return (L->p.k_h - 1) * L->p.dilation_h + 1;
}

static size_t dw_scratch(const rg_qk_dw *L)
{
    if (L->p.k_w > 4 || L->p.k_h > RING_MAX) return 0;
    return (size_t)dw_ring(L) * (size_t)L->p.out_w * (size_t)L->cpad * sizeof(int32_t);
}

/* 16 channels from c0 of input column iw of row xr as int32 lanes (u8),
 * zp's byte outside the row; lanes past c read 0 */
static inline __m512i dw_col(const rg_qk_dw *L, const int8_t *xr, int32_t iw, int32_t c0, __m512i zpb)
{
    if (iw < 0 || iw >= L->p.in_w) return zpb;
    int32_t left = L->p.in_c - c0;
    const int8_t *src = xr + (size_t)iw * L->p.in_c + c0;
    __m128i v = left >= 16 ? _mm_loadu_si128((const __m128i *)(const void *)src) : _mm_maskz_loadu_epi8(lanes(left), src);
    return _mm512_cvtepu8_epi32(v);
}

/* Three taps a, b, c (64 bytes each: four groups of 16 channels, group j
 * in 128-bit lane j) into the ring's layout: group j's 16 int32 [a_i, b_i,
 * c_i, 0] (as x + 128: flip) stored at dst + 16 j. Byte unpacks within
 * the lanes, then a 4 x 4 transpose of the lanes: 12 shuffles for four
 * groups, where dw_col's loads, widenings, shifts and ors take 11 a group. */
static inline void dw_gather3x4(__m512i a, __m512i b, __m512i c, __m512i flip, int32_t *dst)
{
    const __m512i z = _mm512_setzero_si512();
    __m512i ab0 = _mm512_unpacklo_epi8(a, b), ab1 = _mm512_unpackhi_epi8(a, b);
    __m512i c0 = _mm512_unpacklo_epi8(c, z), c1 = _mm512_unpackhi_epi8(c, z);
    /* r_q, lane j: channels 4q .. 4q + 3 of group j */
    __m512i r0 = _mm512_unpacklo_epi16(ab0, c0), r1 = _mm512_unpackhi_epi16(ab0, c0);
    __m512i r2 = _mm512_unpacklo_epi16(ab1, c1), r3 = _mm512_unpackhi_epi16(ab1, c1);
    __m512i s0 = _mm512_shuffle_i32x4(r0, r1, 0x44), s1 = _mm512_shuffle_i32x4(r2, r3, 0x44);
    __m512i s2 = _mm512_shuffle_i32x4(r0, r1, 0xEE), s3 = _mm512_shuffle_i32x4(r2, r3, 0xEE);
    _mm512_storeu_si512((void *)dst, _mm512_xor_si512(_mm512_shuffle_i32x4(s0, s1, 0x88), flip));
    _mm512_storeu_si512((void *)(dst + 16), _mm512_xor_si512(_mm512_shuffle_i32x4(s0, s1, 0xDD), flip));
    _mm512_storeu_si512((void *)(dst + 32), _mm512_xor_si512(_mm512_shuffle_i32x4(s2, s3, 0x88), flip));
    _mm512_storeu_si512((void *)(dst + 48), _mm512_xor_si512(_mm512_shuffle_i32x4(s2, s3, 0xDD), flip));
}

static inline __attribute__((always_inline)) void dw_gather_row(const rg_qk_dw *L, const int8_t *xn, int32_t ih,
                                                                int32_t *dst, const int KW)
{
    const rg_q_conv_params *p = &L->p;
    const int32_t cpad = L->cpad, kw_n = KW ? KW : p->k_w;
    const __m512i zpb = _mm512_set1_epi32(p->in_zp & 0xFF);
    /* the +128 of the taps that exist, after the bytes are in place */
    const __m512i flip = _mm512_set1_epi32((int32_t)(0x80808080u >> (8 * (4 - kw_n))));
    if (ih < 0 || ih >= p->in_h) {
        __m512i pad = _mm512_xor_si512(_mm512_set1_epi32((int32_t)((uint32_t)(p->in_zp & 0xFF) * 0x01010101u &
                                                                   (0xFFFFFFFFu >> (8 * (4 - kw_n))))),
                                       flip);
        for (size_t i = 0; i < (size_t)p->out_w * cpad; i += 16) _mm512_storeu_si512((void *)(dst + i), pad);
        return;
    }
    const int8_t *xr = xn + (size_t)ih * p->in_w * p->in_c;
    const int32_t c = p->in_c;
    /* three taps, dilation 1, all inside the row: four groups of 16
     * channels at a time (dw_gather3x4) */
    const int three = kw_n == 3 && p->dilation_w == 1;
    for (int32_t ow = 0; ow < p->out_w; ow++) {
        int32_t iw0 = ow * p->stride_w - p->pad_left, c0 = 0;
        int inside = three && iw0 >= 0 && iw0 + 2 < p->in_w;
        /* 16 channels, stride 1: four output columns, whose taps are
         * consecutive columns (64 contiguous bytes a tap) */
        if (inside && c == 16 && cpad == 16 && p->stride_w == 1 && ow + 3 < p->out_w && iw0 + 5 < p->in_w) {
            const int8_t *t = xr + (size_t)iw0 * 16;
            dw_gather3x4(LD(t), LD(t + 16), LD(t + 32), flip, dst + (size_t)ow * 16);
            ow += 3;
            continue;
        }
        if (inside) {
            const int8_t *t = xr + (size_t)iw0 * c;
            for (; c0 + 64 <= c; c0 += 64)
                dw_gather3x4(LD(t + c0), LD(t + c + c0), LD(t + 2 * c + c0), flip, dst + (size_t)ow * cpad + c0);
        }
        for (; c0 < cpad; c0 += 16) {
            __m512i v = dw_col(L, xr, iw0, c0, zpb);
            if (kw_n > 1) v = _mm512_or_si512(v, _mm512_slli_epi32(dw_col(L, xr, iw0 + p->dilation_w, c0, zpb), 8));
            if (kw_n > 2)
                v = _mm512_or_si512(v, _mm512_slli_epi32(dw_col(L, xr, iw0 + 2 * p->dilation_w, c0, zpb), 16));
            if (kw_n > 3)
                v = _mm512_or_si512(v, _mm512_slli_epi32(dw_col(L, xr, iw0 + 3 * p->dilation_w, c0, zpb), 24));
            _mm512_storeu_si512((void *)(dst + (size_t)ow * cpad + c0), _mm512_xor_si512(v, flip));
        }
    }
}

static inline __attribute__((always_inline)) void dw_rows_impl(const rg_qk_dw *Lp, const int8_t *x, int8_t *y,
                                                              int32_t *ring, const int KH, const int KW,
                                                              const int rq_mode)
{
    const rg_qk_dw L = *Lp; /* a local copy: int8 stores cannot alias it */
    const rg_q_conv_params *p = &L.p;
    const int32_t c = p->in_c, cpad = L.cpad, kh_n = KH ? KH : p->k_h;
    const int32_t R = dw_ring(&L), dh = p->dilation_h;
    const size_t rowsz = (size_t)p->out_w * (size_t)cpad;
    const __m512i lo = _mm512_set1_epi32(p->act_min - p->out_zp), hi = _mm512_set1_epi32(p->act_max - p->out_zp);
    const __m512i zp = _mm512_set1_epi32(p->out_zp);
    const __m512i zp16 = _mm512_set1_epi16((short)p->out_zp);
    const __m512i lo8 = _mm512_set1_epi8((char)p->act_min), hi8 = _mm512_set1_epi8((char)p->act_max);
    const __m512i perm = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    for (int32_t n = 0; n < p->batch; n++) {
        const int8_t *xn = x + (size_t)n * p->in_h * p->in_w * c;
        int32_t built = 0; /* padded rows below `built` are gathered (the last R kept) */
        for (int32_t oh = 0; oh < p->out_h; oh++) {
            int32_t r0 = oh * p->stride_h, need = r0 + (kh_n - 1) * dh + 1;
            if (built < r0) built = r0;
            for (; built < need; built++) dw_gather_row(&L, xn, built - p->pad_top, ring + (size_t)(built % R) * rowsz, KW);
            /* the kernel rows' ring rows, once per output row (no division per pixel) */
            const int32_t *rows[RING_MAX];
            for (int32_t kh = 0; kh < kh_n; kh++) rows[kh] = ring + (size_t)((r0 + kh * dh) % R) * rowsz;
            int8_t *yr = y + ((size_t)n * p->out_h + oh) * p->out_w * c;
            for (int32_t ow = 0; ow < p->out_w; ow++) {
                const size_t at = (size_t)ow * cpad;
                int8_t *yp = yr + (size_t)ow * c;
                int32_t c0 = 0;
                /* 64 channels: four chains, one packed store */
                for (; c0 + 64 <= c; c0 += 64) {
                    __m512i a[4];
                    for (int j = 0; j < 4; j++) a[j] = LD(L.qbias_u8 + c0 + 16 * j);
                    for (int32_t kh = 0; kh < kh_n; kh++) {
                        const int32_t *xr = rows[kh] + at + c0;
                        const int32_t *wr = L.wrow + (size_t)kh * cpad + c0;
                        for (int j = 0; j < 4; j++) a[j] = _mm512_dpbusd_epi32(a[j], LD(xr + 16 * j), LD(wr + 16 * j));
                    }
                    __m512i r[4];
                    for (int j = 0; j < 4; j++) {
                        int32_t cc = c0 + 16 * j;
                        r[j] = RQ(&L, cc, a[j], rq_mode);
                    }
                    __m512i u = _mm512_adds_epi16(_mm512_packs_epi32(r[0], r[1]), zp16);
                    __m512i v = _mm512_adds_epi16(_mm512_packs_epi32(r[2], r[3]), zp16);
                    __m512i b = _mm512_min_epi8(_mm512_max_epi8(_mm512_packs_epi16(u, v), lo8), hi8);
                    _mm512_storeu_si512((void *)(yp + c0), _mm512_permutexvar_epi32(perm, b));
                }
                for (; c0 < c; c0 += 16) {
                    __m512i a0 = LD(L.qbias_u8 + c0), a1 = _mm512_setzero_si512();
                    for (int32_t kh = 0; kh < kh_n; kh++) {
                        const int32_t *xr = rows[kh] + at + c0;
                        if (kh % 2) a1 = _mm512_dpbusd_epi32(a1, LD(xr), LD(L.wrow + (size_t)kh * cpad + c0));
                        else a0 = _mm512_dpbusd_epi32(a0, LD(xr), LD(L.wrow + (size_t)kh * cpad + c0));
                    }
                    __m512i r = RQ(&L, c0, _mm512_add_epi32(a0, a1), rq_mode);
                    r = _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(r, lo), hi), zp);
                    store16(yp + c0, lanes(c - c0), r);
                }
            }
        }
    }
}

static void depthwise(const rg_qk_dw *L, const int8_t *x, int8_t *y, void *scratch)
{
    if (L->p.k_w <= 4 && L->p.k_h <= RING_MAX) {
        /* MobileNets' 3x3: constant loops */
        if (L->fp32) {
            if (L->p.k_h == 3 && L->p.k_w == 3) dw_rows_impl(L, x, y, scratch, 3, 3, 3);
            else dw_rows_impl(L, x, y, scratch, 0, 0, 3);
        } else if (L->p.k_h == 3 && L->p.k_w == 3 && L->rshort) dw_rows_impl(L, x, y, scratch, 3, 3, 2);
        else if (L->p.k_h == 3 && L->p.k_w == 3 && !L->lsh_any) dw_rows_impl(L, x, y, scratch, 3, 3, 0);
        else dw_rows_impl(L, x, y, scratch, 0, 0, 1);
        return;
    }
    /* wide kernels: the per-tap code */
    if (L->fp32) dw_impl(L, x, y, 0, 0, 3);
    else dw_impl(L, x, y, 0, 0, 1);
}

/* The direct convolution (rt/kernels/qk.h, rg_qk_conv): the image padded
 * as u8 x + 128 into scratch (in_zp + 128 in the padding), then per output
 * pixel and 16 output channels one vpdpbusd per 4 taps of each kernel row,
 * from the product's bias (which holds -(128 + in_zp) sum w). */
static inline __attribute__((always_inline)) void direct_impl(const rg_qk_conv *L, const int8_t *x, int8_t *y,
                                                             uint8_t *xp, const int rq_mode, const int KH,
                                                             const int RQ4)
{
    const rg_q_conv_params *p = &L->p;
    const rg_qk_gemm *G = &L->gemm;
    const int32_t npad = G->npad, oc = p->out_c, ci = p->in_c, ph = L->ph, pw = L->pw;
    const int32_t kh_n = KH ? KH : p->k_h, rq = RQ4 ? RQ4 : L->rquads;
    const __m512i lo = _mm512_set1_epi32(p->act_min - p->out_zp), hi = _mm512_set1_epi32(p->act_max - p->out_zp);
    const __m512i ozp = _mm512_set1_epi32(p->out_zp);
    const uint8_t zpb = (uint8_t)(p->in_zp + 128);
    const size_t prow = (size_t)pw * ci; /* bytes a padded row */
    memset(xp + (size_t)ph * prow, 0, 3); /* read past the last taps (weight 0) */
    for (int32_t n = 0; n < p->batch; n++) {
        const int8_t *xn = x + (size_t)n * p->in_h * p->in_w * ci;
        for (int32_t r = 0; r < ph; r++) {
            int32_t ih = r - p->pad_top;
            uint8_t *d = xp + (size_t)r * prow;
            if (ih < 0 || ih >= p->in_h) {
                memset(d, zpb, prow);
                continue;
            }
            /* the left padding, the row (contiguous: in_w * ci values), the right padding */
            size_t left = (size_t)p->pad_left * ci, len = (size_t)p->in_w * ci;
            if (left + len > prow) len = prow - left; /* a window never reaches past the last column */
            memset(d, zpb, left);
            const int8_t *s = xn + (size_t)ih * p->in_w * ci;
            const __m512i flip = _mm512_set1_epi8((char)0x80);
            for (size_t k = 0; k < len; k += 64) {
                __mmask64 keep = len - k >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << (len - k)) - 1);
                _mm512_mask_storeu_epi8(d + left + k, keep, _mm512_xor_si512(_mm512_maskz_loadu_epi8(keep, s + k), flip));
            }
            memset(d + left + len, zpb, prow - left - len);
        }
        for (int32_t oh = 0; oh < p->out_h; oh++)
            for (int32_t ow = 0; ow < p->out_w; ow++) {
                const uint8_t *win = xp + (size_t)oh * p->stride_h * prow + (size_t)ow * p->stride_w * ci;
                int8_t *yp = y + (((size_t)n * p->out_h + oh) * p->out_w + ow) * oc;
                for (int32_t c0 = 0; c0 < oc; c0 += 16) {
                    /* one chain a kernel row (up to 3): vpdpbusd's latency */
                    __m512i a[3] = {LD(G->qbias + c0), _mm512_setzero_si512(), _mm512_setzero_si512()};
                    for (int32_t kh = 0; kh < kh_n; kh++) {
                        const uint8_t *t = win + (size_t)kh * p->dilation_h * prow;
                        const int32_t *wr = L->wquad + (size_t)kh * rq * npad + c0;
                        for (int32_t q = 0; q < rq; q++) {
                            int32_t v;
                            memcpy(&v, t + 4 * q, 4);
                            a[kh % 3] = _mm512_dpbusd_epi32(a[kh % 3], _mm512_set1_epi32(v), LD(wr + (size_t)q * npad));
                        }
                    }
                    __m512i acc = _mm512_add_epi32(_mm512_add_epi32(a[0], a[1]), a[2]);
                    __m512i r = RQ(G, c0, acc, rq_mode);
                    r = _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(r, lo), hi), ozp);
                    store16(yp + c0, lanes(oc - c0), r);
                }
            }
    }
}

static void conv_direct(const rg_qk_conv *L, const int8_t *x, int8_t *y, void *scratch)
{
    /* 3x3 over one input channel (a grayscale stem): constant loops */
    if (L->gemm.fp32) {
        if (L->p.k_h == 3 && L->rquads == 1) direct_impl(L, x, y, scratch, 3, 3, 1);
        else direct_impl(L, x, y, scratch, 3, 0, 0);
    } else if (L->p.k_h == 3 && L->rquads == 1 && L->gemm.rshort) direct_impl(L, x, y, scratch, 2, 3, 1);
    else if (L->p.k_h == 3 && L->rquads == 1 && !L->gemm.lsh_any) direct_impl(L, x, y, scratch, 0, 3, 1);
    else if (L->gemm.lsh_any) direct_impl(L, x, y, scratch, 1, 0, 0);
    else direct_impl(L, x, y, scratch, 0, 0, 0);
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

/* The requantization vectors of one per-tensor (multiplier, shift). */
typedef struct {
    __m512i m, lsh, rsh, mask, half;
} qvec;

static qvec qvec_of(int32_t m, int32_t shift)
{
    int32_t right = shift > 0 ? 0 : -shift, mask = (int32_t)((INT64_C(1) << right) - 1);
    return (qvec){_mm512_set1_epi32(m), _mm512_set1_epi32(shift > 0 ? shift : 0), _mm512_set1_epi32(right),
                  _mm512_set1_epi32(mask), _mm512_set1_epi32(mask >> 1)};
}

static inline __attribute__((always_inline)) void add_impl(const rg_q_add_params *p, const int8_t *a,
                                                           const int8_t *b, int64_t n, int8_t *y, const int lsh_any)
{
    const __m512i z1 = _mm512_set1_epi32(p->in1_zp), z2 = _mm512_set1_epi32(p->in2_zp);
    const __m512i ls = _mm512_set1_epi32(p->left_shift);
    const qvec q1 = qvec_of(p->in1_multiplier, p->in1_shift), q2 = qvec_of(p->in2_multiplier, p->in2_shift);
    const qvec qo = qvec_of(p->out_multiplier, p->out_shift);
    const __m512i lo = _mm512_set1_epi32(p->act_min - p->out_zp), hi = _mm512_set1_epi32(p->act_max - p->out_zp);
    const __m512i zp = _mm512_set1_epi32(p->out_zp);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 keep = lanes((int32_t)(n - i < 16 ? n - i : 16));
        /* |x - zp| <= 255, << at most 22: no overflow, as the reference */
        __m512i va = _mm512_sllv_epi32(load_x(a + i, keep, z1), ls);
        __m512i vb = _mm512_sllv_epi32(load_x(b + i, keep, z2), ls);
        __m512i s1 = mbm(va, q1.m, q1.lsh, q1.rsh, q1.mask, q1.half, lsh_any);
        __m512i s2 = mbm(vb, q2.m, q2.lsh, q2.rsh, q2.mask, q2.half, lsh_any);
        __m512i r = requant(adds32(s1, s2), qo.m, qo.lsh, qo.rsh, qo.mask, qo.half, lsh_any, lo, hi, zp);
        store16(y + i, keep, r);
    }
}

/* An input's rescale for the add, rg_q_mul_by_multiplier((x - zp) << ls,
 * m, -e), without 64-bit products. With v = x - zp (|v| <= 255) and k =
 * 31 - ls: srdhm(v 2^ls, m) = floor((v m + 2^(k-1)) / 2^k), and with m =
 * mh 2^k + ml (0 <= ml < 2^k) that is v mh + ((v ml + 2^(k-1)) >> k), both
 * products inside int32 when 9 <= ls <= 22. The rounding right shift by e
 * is (r + 2^(e-1) - [r < 0]) >> e (|r| < 2^30 + 2^8, so no overflow for
 * e <= 30): gemmlowp's remainder test, ties away from zero. */
typedef struct {
    __m512i zp, mh, ml, halfk, rnd;
    __m128i k, e;
    int has_e;
} in_scale;

static int in_scale_ok(int32_t ls, int32_t shift)
{
    return ls >= 9 && ls <= 22 && shift <= 0 && shift >= -30;
}

static in_scale in_scale_of(int32_t zp, int32_t ls, int32_t m, int32_t shift)
{
    int32_t k = 31 - ls, e = -shift;
    return (in_scale){_mm512_set1_epi32(zp), _mm512_set1_epi32(m >> k), _mm512_set1_epi32(m & ((1 << k) - 1)),
                      _mm512_set1_epi32(1 << (k - 1)), _mm512_set1_epi32(e > 0 ? 1 << (e - 1) : 0),
                      _mm_cvtsi32_si128(k), _mm_cvtsi32_si128(e), e > 0};
}

static inline __m512i in_rescale(const int8_t *x, __mmask16 keep, const in_scale *q)
{
    __m512i v = load_x(x, keep, q->zp);
    __m512i lo = _mm512_sra_epi32(_mm512_add_epi32(_mm512_mullo_epi32(v, q->ml), q->halfk), q->k);
    __m512i r = _mm512_add_epi32(_mm512_mullo_epi32(v, q->mh), lo);
    __m512i t = _mm512_add_epi32(r, q->rnd);
    if (q->has_e) t = _mm512_add_epi32(t, _mm512_srai_epi32(r, 31));
    return _mm512_sra_epi32(t, q->e);
}

static inline __attribute__((always_inline)) void add_split(const rg_q_add_params *p, const int8_t *a,
                                                            const int8_t *b, int64_t n, int8_t *y, const int lsh_any)
{
    const in_scale q1 = in_scale_of(p->in1_zp, p->left_shift, p->in1_multiplier, p->in1_shift);
    const in_scale q2 = in_scale_of(p->in2_zp, p->left_shift, p->in2_multiplier, p->in2_shift);
    const qvec qo = qvec_of(p->out_multiplier, p->out_shift);
    const __m512i lo = _mm512_set1_epi32(p->act_min - p->out_zp), hi = _mm512_set1_epi32(p->act_max - p->out_zp);
    const __m512i zp = _mm512_set1_epi32(p->out_zp);
    const __m512i rnd = _mm512_set1_epi32(p->out_shift < 0 ? (int32_t)(INT64_C(1) << (-p->out_shift - 1)) : 0);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 keep = lanes((int32_t)(n - i < 16 ? n - i : 16));
        /* |s1|, |s2| < 2^30: the sum needs no saturation */
        __m512i sum = _mm512_add_epi32(in_rescale(a + i, keep, &q1), in_rescale(b + i, keep, &q2));
        __m512i r;
        if (lsh_any == 2) {
            r = mbm_short(sum, qo.m, qo.m, qo.rsh, rnd);
            r = _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(r, lo), hi), zp);
        } else
            r = requant(sum, qo.m, qo.lsh, qo.rsh, qo.mask, qo.half, lsh_any, lo, hi, zp);
        store16(y + i, keep, r);
    }
}

/* The add's fp32 rule (regain/quant_kernels.h, rg_q_add_params.in1_scale):
 * the two products rounded on their own, then summed. The empty asm keeps
 * GCC from fusing a product and the sum into one FMA (it contracts vector
 * arithmetic written with intrinsics too), which would round once where the
 * reference rounds twice. */
static void add_fp32(const rg_q_add_params *p, const int8_t *a, const int8_t *b, int64_t n, int8_t *y)
{
    const __m512i z1 = _mm512_set1_epi32(p->in1_zp), z2 = _mm512_set1_epi32(p->in2_zp);
    const __m512i zo = _mm512_set1_epi32(p->out_zp);
    const __m512 s1 = _mm512_set1_ps(p->in1_scale), s2 = _mm512_set1_ps(p->in2_scale);
    const __m512 lo = _mm512_set1_ps((float)(p->act_min - p->out_zp)), hi = _mm512_set1_ps((float)(p->act_max - p->out_zp));
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 keep = lanes((int32_t)(n - i < 16 ? n - i : 16));
        __m512 u = _mm512_mul_ps(_mm512_cvtepi32_ps(load_x(a + i, keep, z1)), s1);
        __m512 w = _mm512_mul_ps(_mm512_cvtepi32_ps(load_x(b + i, keep, z2)), s2);
        __asm__("" : "+v"(u), "+v"(w));
        __m512 v = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(u, w), lo), hi);
        store16(y + i, keep, _mm512_add_epi32(_mm512_cvtps_epi32(v), zo));
    }
}

static void add(const rg_q_add_params *p, const int8_t *a, const int8_t *b, int64_t n, int8_t *y)
{
    if (p->in1_scale > 0.0f) {
        add_fp32(p, a, b, n, y);
        return;
    }
    if (in_scale_ok(p->left_shift, p->in1_shift) && in_scale_ok(p->left_shift, p->in2_shift)) {
        /* the output's short rounding (rt/kernels/qk.h): |s1 + s2| <= 510
         * 2^ls + 2, so r + 2^(e-1) stays in int32 when this bound holds */
        int64_t r_max = 510 * (INT64_C(1) << p->left_shift) + 3;
        if (p->out_shift <= -1 && r_max + (INT64_C(1) << (-p->out_shift - 1)) <= INT32_MAX)
            add_split(p, a, b, n, y, 2);
        else if (p->out_shift > 0) add_split(p, a, b, n, y, 1);
        else add_split(p, a, b, n, y, 0);
        return;
    }
    /* prepared adds shift right only (input multipliers < 1) */
    if (p->in1_shift > 0 || p->in2_shift > 0 || p->out_shift > 0) add_impl(p, a, b, n, y, 1);
    else add_impl(p, a, b, n, y, 0);
}

static void gap(const rg_q_gap_params *p, const int8_t *x, int8_t *y)
{
    const int64_t hw = (int64_t)p->h * p->w;
    const __m512i zp = _mm512_set1_epi32(p->in_zp);
    const qvec q = qvec_of(p->multiplier, p->shift);
    const __m512d dhw = _mm512_set1_pd((double)hw);
    const __m512i half = _mm512_set1_epi32((int32_t)(hw / 2)), ozp = _mm512_set1_epi32(p->out_zp);
    const __m512i lo = _mm512_set1_epi32(p->act_min), hi = _mm512_set1_epi32(p->act_max);
    for (int32_t n = 0; n < p->batch; n++)
        for (int32_t c0 = 0; c0 < p->c; c0 += 16) {
            __mmask16 keep = lanes(p->c - c0);
            __m512i acc = _mm512_setzero_si512();
            const int8_t *xp = x + (size_t)n * hw * p->c + c0;
            for (int64_t i = 0; i < hw; i++) acc = _mm512_add_epi32(acc, load_x(xp + i * p->c, keep, zp));
            int8_t *yp = y + (size_t)n * p->c + c0;
            if (hw >= (1 << 22)) { /* the division below needs hw < 2^22: the reference's steps */
                int32_t sums[16];
                _mm512_storeu_si512(sums, acc);
                int32_t cn = p->c - c0 < 16 ? p->c - c0 : 16;
                for (int32_t j = 0; j < cn; j++) {
                    int32_t v = rg_q_mul_by_multiplier(sums[j], p->multiplier, p->shift);
                    v = (int32_t)(v > 0 ? (v + hw / 2) / hw : (v - hw / 2) / hw);
                    int64_t o = (int64_t)v + p->out_zp;
                    yp[j] = (int8_t)(o < p->act_min ? p->act_min : o > p->act_max ? p->act_max : o);
                }
                continue;
            }
            /* the rescale, then the rounded division (v +- hw/2) / hw
             * truncated: in double the quotient of two integers below 2^32
             * and 2^22 is within 2^-22 of the true one, closer than any
             * non-integer quotient (>= 1/hw away) comes to an integer, so
             * truncating it gives the integer division's result */
            __m512i v = mbm(acc, q.m, q.lsh, q.rsh, q.mask, q.half, 1);
            __mmask16 pos = _mm512_cmpgt_epi32_mask(v, _mm512_setzero_si512());
            __m512d lo8 = _mm512_cvtepi32_pd(_mm512_castsi512_si256(v));
            __m512d hi8 = _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(v, 1));
            __m512d hlo = _mm512_cvtepi32_pd(_mm512_castsi512_si256(half));
            /* v + hw/2 or v - hw/2 in double (exact) */
            __m512d nlo = _mm512_mask_add_pd(_mm512_sub_pd(lo8, hlo), (__mmask8)pos, lo8, hlo);
            __m512d nhi = _mm512_mask_add_pd(_mm512_sub_pd(hi8, hlo), (__mmask8)(pos >> 8), hi8, hlo);
            __m256i qlo = _mm512_cvttpd_epi32(_mm512_div_pd(nlo, dhw));
            __m256i qhi = _mm512_cvttpd_epi32(_mm512_div_pd(nhi, dhw));
            __m512i r = _mm512_inserti64x4(_mm512_castsi256_si512(qlo), qhi, 1);
            r = _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(r, ozp), lo), hi);
            store16(yp, keep, r);
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

/* rg_q_quantize_value(x, q, -128, 127) on 16 floats: the same float
 * operations (x / scale, rounded half away from zero, + zero point, the
 * clamp in float), so the same bits; NaN gives the zero point. */
static void quantize(const float *x, size_t n, rg_qparams q, int8_t *y)
{
    const __m512 s = _mm512_set1_ps(q.scale), zp = _mm512_set1_ps((float)q.zero_point);
    const __m512 lo = _mm512_set1_ps(-128.0f), hi = _mm512_set1_ps(127.0f), half = _mm512_set1_ps(0.5f);
    const __m512 one = _mm512_set1_ps(1.0f);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 keep = lanes((int32_t)(n - i < 16 ? n - i : 16));
        __m512 d = _mm512_div_ps(_mm512_maskz_loadu_ps(keep, x + i), s);
        /* roundf: truncate, then one away from zero when |d - trunc| >= 0.5
         * (exact: d - trunc(d) is representable) */
        __m512 t = _mm512_roundscale_ps(d, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
        __mmask16 up = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(d, t)), half, _CMP_GE_OQ);
        __m512 away = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(one),
                                                          _mm512_and_si512(_mm512_castps_si512(d),
                                                                           _mm512_set1_epi32(INT32_MIN))));
        t = _mm512_mask_add_ps(t, up, t, away);
        __m512 r = _mm512_add_ps(t, zp);
        r = _mm512_min_ps(_mm512_max_ps(r, lo), hi); /* r <= -128: -128; r >= 127: 127 */
        __m512i v = _mm512_cvttps_epi32(r);
        __mmask16 nan = _mm512_cmp_ps_mask(d, d, _CMP_UNORD_Q);
        v = _mm512_mask_mov_epi32(v, nan, _mm512_set1_epi32(q.zero_point));
        store16(y + i, keep, v);
    }
}

const rg_qk_table rg_qk_vnni = {
    .name = "avx512vnni", .nr = 16, .kr = 4, .wbytes = 1, .mr = MR, .cvec = 16,
    .gemm = gemm, .conv_direct = conv_direct, .depthwise = depthwise, .dw_scratch = dw_scratch, .add = add,
    .gap = gap, .clamp = clamp, .quantize = quantize,
};
