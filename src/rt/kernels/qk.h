/* The int8 kernels of the integer runtime, one table per instruction set.
 *
 * The integer reference kernels (regain/quant_kernels.h, src/quant/) are the
 * specification; every kernel here computes the same bits, for every input
 * and every valid parameter (tests/unit/test_int8_kernels.c holds each table
 * to the reference with tolerance 0). Three tables:
 *
 *   rg_qk_ref    the reference kernels themselves (portable C);
 *   rg_qk_avx2   AVX2: activations + 128 widened to int16, vpmaddwd;
 *   rg_qk_vnni   AVX-512 VNNI: vpdpbusd on (activation + 128) as u8 x s8.
 *
 * rg_qk_kernels() picks one from rg_cpu_isa() (regain/cpu.h; REGAIN_ISA
 * lowers it): RG_ISA_AVX512_VNNI -> vnni, AVX2 or AVX-512 without VNNI ->
 * avx2, otherwise ref.
 *
 * Layers are prepared once, at load time, for one table: the weights are
 * packed into that table's layout and the requantization parameters laid
 * out per channel, into a buffer the caller provides (rg_qk_*_size). Running
 * a prepared layer allocates nothing; the matrix product and the dense
 * convolution need scratch memory of the size rg_qk_*_scratch reports.
 *
 * How exactness is kept (details in docs/performance.md):
 *   - sum (x - zp) w = sum (x + 128) w - (128 + zp) sum w: the second term
 *     is folded into the bias at prepare time, so the fast products run on
 *     x + 128 in [0, 255] (vpdpbusd's unsigned operand; for AVX2, int16
 *     whose pairwise products cannot overflow vpmaddwd's int32 sums);
 *   - the reference accumulates in 64 bits and saturates to int32; the fast
 *     kernels accumulate in int32, which gives the same bits whenever
 *     |bias| + 255 * sum |w| <= INT32_MAX for every channel (no sum can
 *     leave int32). Prepare checks that bound and a layer that fails it
 *     (never a real model) runs the reference kernel instead;
 *   - requantization is rg_q_mul_by_multiplier in SIMD: a saturating left
 *     shift, the rounding doubling high multiply as (a*m + 2^30) >> 31 in
 *     64-bit lanes (the same value as gemmlowp's nudge-and-truncate), the
 *     rounding right shift with gemmlowp's remainder test; the clamp is done
 *     before adding the output zero point, so nothing overflows. A layer
 *     with fp32 scales (rg_qk_gemm.fp32) requantizes with three vector
 *     float operations and the clamp instead: the 32 x 32 -> 64-bit
 *     products of the fixed-point rule (two per 16 outputs) bound its
 *     speed, and fp32 takes about a third of its time.
 *
 *     const rg_qk_table *t = rg_qk_kernels();
 *     rg_qk_gemm L;
 *     void *buf = malloc(rg_qk_gemm_size(t, k, n));           // at load
 *     rg_qk_gemm_prepare(t, &fc_params, w, bias, buf, rg_qk_gemm_size(t, k, n), &L, &err);
 *     void *scratch = malloc(rg_qk_gemm_scratch(&L));
 *     rg_qk_gemm_run(&L, rows, x, y, scratch);                // per inference
 */
#ifndef REGAIN_RT_KERNELS_QK_H
#define REGAIN_RT_KERNELS_QK_H

#include <stddef.h>
#include <stdint.h>

#include "regain/cpu.h"
#include "regain/quant_kernels.h"

typedef struct rg_qk_table rg_qk_table;

/* A prepared matrix product: y[r, o] = requant(bias[o] + sum_i (x[r, i] -
 * in_zp) w[o, i]) for r < rows, o < n: a pointwise convolution (rows =
 * pixels), a fully connected layer (rows = batch) or the product inside a
 * dense convolution. Fields are filled by rg_qk_gemm_prepare. */
typedef struct {
    int32_t k, n;                           /* in features, out channels */
    int32_t in_zp, out_zp, act_min, act_max;
    const int8_t *w;                        /* the specification's arrays, borrowed: */
    const int32_t *bias, *multipliers, *shifts; /* the reference runs on them */
    const rg_qk_table *table;
    int fast;                               /* 0: the bound above fails, the reference runs */
    int32_t kpad, npad;                     /* k, n rounded up to the table's groups */
    const void *wpack;                      /* the table's weight layout */
    const int32_t *qbias;                   /* [npad] bias - (128 + in_zp) sum w */
    const int32_t *qmult, *qlsh, *qrsh;     /* [npad] multiplier, max(shift, 0), max(-shift, 0) */
    const int32_t *qmask, *qhalf;           /* [npad] 2^rsh - 1 and its half: the rounding test */
    int lsh_any;                            /* some channel shifts left (else that step is skipped) */
    /* The short rounding: when every channel shifts right (by >= 1) and
     * the bound below holds, rdbpot(r, e) is (r + 2^(e-1) - [r < 0]) >> e,
     * 4 operations instead of gemmlowp's 6 (same bits: remainder test
     * rem > half + [r < 0] <=> rem + 2^(e-1) - [r < 0] >= 2^e), provided r
     * + 2^(e-1) stays in int32: |bias| + 255 sum |w| + 1 + 2^(e-1) <=
     * INT32_MAX for each channel (prepare checks it). */
    int rshort;
    const int32_t *qmodd, *qrnd;            /* [npad] next channel's multiplier at even channels; 2^(e-1) */
    /* fp32 requantization (the layer has float scales, regain/quant.h
     * rg_q_requant_fp32): the accumulator converted to float, times the
     * scale, clamped to [qlo, qhi] = [act_min, act_max] - out_zp, converted
     * back rounding to nearest even (the vector unit's default mode): the
     * reference's operations one for one. The multipliers are then unused. */
    int fp32;
    const float *scales;                    /* the specification's, borrowed (NULL unless fp32) */
    const float *qscale;                    /* [npad] */
    float qlo, qhi;
} rg_qk_gemm;

/* A prepared depthwise convolution (channel multiplier 1, any kernel size,
 * stride, padding and dilation), all p.batch images. Tables may keep rows
 * of the input in scratch (rg_qk_dw_scratch): for kernels up to 4 wide the
 * VNNI table gathers, once per input row and output column, the row's taps
 * of every channel as the 4 bytes of an int32 (x + 128, padding zp + 128),
 * so that a kernel row is one vpdpbusd against wrow for every window, the
 * border included (bias folded: qbias_u8). */
typedef struct {
    rg_q_conv_params p;                     /* copy; p.multipliers/shifts borrowed */
    const int8_t *w;                        /* [c, k_h, k_w] */
    const int32_t *bias;                    /* [c] or NULL */
    const rg_qk_table *table;
    int fast;
    int32_t cpad;
    const int32_t *wtap;                    /* [k_h*k_w][cpad] weights in the low 16 bits */
    const int32_t *qbias, *qmult, *qlsh, *qrsh, *qmask, *qhalf; /* [cpad], as rg_qk_gemm's */
    const int32_t *qbias_zp;                /* [cpad] bias - in_zp * sum w: windows inside the input */
    int lsh_any;
    const int32_t *wrow;                    /* [k_h][cpad] a kernel row's weights as 4 bytes (k_w <= 4) */
    const int32_t *qbias_u8;                /* [cpad] bias - (128 + in_zp) * sum w */
    int rshort;                             /* as rg_qk_gemm's */
    const int32_t *qmodd, *qrnd;
    int fp32;                               /* as rg_qk_gemm's (p.scales given) */
    const float *qscale;                    /* [cpad] */
    float qlo, qhi;
} rg_qk_dw;

/* A prepared dense convolution: im2col of a block of output pixels into
 * scratch, then the matrix product over k = k_h*k_w*in_c. A convolution
 * with few taps (k_h*k_w*in_c <= RG_QK_DIRECT_MAX, dilation_w 1: a
 * network's stem) runs the table's direct kernel instead when it has one:
 * the image, padded, as u8 x + 128 in scratch (in_zp + 128 in the
 * padding, which with the product's bias, bias - (128 + in_zp) sum w,
 * counts (zp - zp) w = 0, as the reference's skipped taps); per output
 * pixel and kernel row the row's k_w*in_c taps are contiguous there and are
 * read 4 at a time, each 4 broadcast against 16 output channels' 4 weights
 * (vpdpbusd; past the row's taps the weights are 0). No column block, no
 * per-tap bounds checks. */
#define RG_QK_DIRECT_MAX 64
typedef struct {
    rg_q_conv_params p;
    const int8_t *w;
    const int32_t *bias;
    rg_qk_gemm gemm;            /* its requantization vectors serve the direct kernel too */
    int direct;                 /* the direct kernel runs */
    int32_t rquads;             /* groups of 4 taps a kernel row: (k_w*in_c + 3) / 4 */
    int32_t ph, pw;             /* the padded image's height and width */
    const int32_t *wquad;       /* [k_h][rquads][npad] taps 4j .. 4j+3 of a row as bytes, low first */
} rg_qk_conv;

struct rg_qk_table {
    const char *name;
    /* Weight packing of the matrix product: panels of nr output channels,
     * groups of kr consecutive k, wbytes bytes a weight (1: int8, 2: int16);
     * element (o, i) at ((o/nr * kpad/kr + i/kr) * nr + o%nr) * kr + i%kr.
     * nr = 0: no packing (the reference). */
    int32_t nr, kr, wbytes;
    /* Rows of activations the product converts at a time (its scratch holds
     * mr rows of kpad values of wbytes bytes). */
    int32_t mr;
    /* Vector width for channels in the depthwise layout (cpad multiple). */
    int32_t cvec;
    void (*gemm)(const rg_qk_gemm *L, int32_t rows, const int8_t *x, int8_t *y, void *scratch);
    /* the direct convolution for few taps (NULL: im2col + gemm always) */
    void (*conv_direct)(const rg_qk_conv *L, const int8_t *x, int8_t *y, void *scratch);
    void (*depthwise)(const rg_qk_dw *L, const int8_t *x, int8_t *y, void *scratch);
    /* bytes of scratch the table's depthwise needs (NULL: none) */
    size_t (*dw_scratch)(const rg_qk_dw *L);
    void (*add)(const rg_q_add_params *p, const int8_t *a, const int8_t *b, int64_t n, int8_t *y);
    void (*gap)(const rg_q_gap_params *p, const int8_t *x, int8_t *y);
    void (*clamp)(const int8_t *x, int64_t n, int32_t lo, int32_t hi, int8_t *y);
    /* y[i] = rg_q_quantize_value(x[i], q, -128, 127): the runtime's float
     * input (NULL: the scalar function) */
    void (*quantize)(const float *x, size_t n, rg_qparams q, int8_t *y);
};

/* t's quantize, or rg_q_quantize_value value by value. */
void rg_qk_quantize(const rg_qk_table *t, const float *x, size_t n, rg_qparams q, int8_t *y);

extern const rg_qk_table rg_qk_ref, rg_qk_avx2, rg_qk_vnni;

/* The table for the instruction set in use (rg_cpu_isa()). */
const rg_qk_table *rg_qk_kernels(void);
/* The table for a given level (the best table not above it). */
const rg_qk_table *rg_qk_table_for(rg_isa isa);

/* Bytes of the buffer a prepared k x n product needs with table t. */
size_t rg_qk_gemm_size(const rg_qk_table *t, int32_t k, int32_t n);
/* Validates p (in_features = k, out_features = n; batch is ignored) as the
 * reference does, packs w [n, k] and folds bias [n] (or NULL) into buf
 * (size >= rg_qk_gemm_size; any alignment). w, bias, p->multipliers and
 * p->shifts are borrowed: they must outlive L. Errors: RG_ERR_ARG /
 * RG_ERR_SHAPE naming the field, RG_ERR_ARG when size is too small. */
rg_status rg_qk_gemm_prepare(const rg_qk_table *t, const rg_q_fc_params *p, const int8_t *w, const int32_t *bias,
                             void *buf, size_t size, rg_qk_gemm *L, rg_error *err);
/* Bytes of scratch rg_qk_gemm_run needs (0 is possible; NULL is then fine). */
size_t rg_qk_gemm_scratch(const rg_qk_gemm *L);
/* y [rows, n] from x [rows, k]; rows >= 0. Same bits as rg_q_fc_s8. */
void rg_qk_gemm_run(const rg_qk_gemm *L, int32_t rows, const int8_t *x, int8_t *y, void *scratch);

size_t rg_qk_dw_size(const rg_qk_table *t, const rg_q_conv_params *p);
/* Validates p as rg_q_depthwise_s8 does and prepares w [c, k_h, k_w]. */
rg_status rg_qk_dw_prepare(const rg_qk_table *t, const rg_q_conv_params *p, const int8_t *w, const int32_t *bias,
                           void *buf, size_t size, rg_qk_dw *L, rg_error *err);
/* Bytes of scratch rg_qk_dw_run needs (0 is possible; NULL is then fine). */
size_t rg_qk_dw_scratch(const rg_qk_dw *L);
/* Same bits as rg_q_depthwise_s8. */
void rg_qk_dw_run(const rg_qk_dw *L, const int8_t *x, int8_t *y, void *scratch);

size_t rg_qk_conv_size(const rg_qk_table *t, const rg_q_conv_params *p);
/* Validates p as rg_q_conv2d_s8 does and prepares w [out_c, k_h, k_w, in_c]. */
rg_status rg_qk_conv_prepare(const rg_qk_table *t, const rg_q_conv_params *p, const int8_t *w, const int32_t *bias,
                             void *buf, size_t size, rg_qk_conv *L, rg_error *err);
size_t rg_qk_conv_scratch(const rg_qk_conv *L);
/* Same bits as rg_q_conv2d_s8. */
void rg_qk_conv_run(const rg_qk_conv *L, const int8_t *x, int8_t *y, void *scratch);

/* Elementwise kernels: the parameters are validated once (at load) with
 * rg_qk_check_add / rg_qk_check_gap, the calls themselves check nothing. */
rg_status rg_qk_check_add(const rg_q_add_params *p, rg_error *err);
rg_status rg_qk_check_gap(const rg_q_gap_params *p, rg_error *err);

#endif
