/* Preparing int8 layers for a kernel table (weight packing, bias folding,
 * per-channel requantization vectors), running them, and the reference
 * table. Contracts in rt/kernels/qk.h. */
#include "rt/kernels/qk.h"

#include <string.h>

#include "quant/ref_check.h"

/* ---- the reference table: the specification's kernels themselves ---- */

static rg_q_fc_params fc_params(const rg_qk_gemm *L, int32_t rows)
{
    return (rg_q_fc_params){.batch = rows, .in_features = L->k, .out_features = L->n, .in_zp = L->in_zp,
                            .out_zp = L->out_zp, .act_min = L->act_min, .act_max = L->act_max,
                            .multipliers = L->multipliers, .shifts = L->shifts, .scales = L->scales};
}

static void ref_gemm(const rg_qk_gemm *L, int32_t rows, const int8_t *x, int8_t *y, void *scratch)
{
    (void)scratch;
    if (rows < 1) return;
    rg_q_fc_params p = fc_params(L, rows);
    rg_q_fc_s8(&p, x, L->w, L->bias, y, NULL); /* validated at prepare */
}

static void ref_depthwise(const rg_qk_dw *L, const int8_t *x, int8_t *y, void *scratch)
{
    (void)scratch;
    rg_q_depthwise_s8(&L->p, x, L->w, L->bias, y, NULL);
}

static void ref_add(const rg_q_add_params *p, const int8_t *a, const int8_t *b, int64_t n, int8_t *y)
{
    rg_q_add_s8(p, a, b, n, y, NULL);
}

static void ref_gap(const rg_q_gap_params *p, const int8_t *x, int8_t *y) { rg_q_gap_s8(p, x, y, NULL); }

static void ref_clamp(const int8_t *x, int64_t n, int32_t lo, int32_t hi, int8_t *y)
{
    rg_q_clamp_s8(x, n, lo, hi, y, NULL);
}

const rg_qk_table rg_qk_ref = {
    .name = "ref", .nr = 0, .kr = 1, .wbytes = 1, .mr = 0, .cvec = 1,
    .gemm = ref_gemm, .depthwise = ref_depthwise, .add = ref_add, .gap = ref_gap, .clamp = ref_clamp,
};

const rg_qk_table *rg_qk_table_for(rg_isa isa)
{
#if defined(__x86_64__) || defined(__i386__)
    if (isa >= RG_ISA_AVX512_VNNI) return &rg_qk_vnni;
    if (isa >= RG_ISA_AVX2) return &rg_qk_avx2;
#else
    (void)isa;
#endif
    return &rg_qk_ref;
}

const rg_qk_table *rg_qk_kernels(void) { return rg_qk_table_for(rg_cpu_isa()); }

void rg_qk_quantize(const rg_qk_table *t, const float *x, size_t n, rg_qparams q, int8_t *y)
{
    if (t->quantize) t->quantize(x, n, q, y);
    else
        for (size_t i = 0; i < n; i++) y[i] = (int8_t)rg_q_quantize_value(x[i], q, -128, 127);
}

/* ---- layout helpers ---- */

static int32_t round_up(int32_t v, int32_t m) { return m > 1 ? (v + m - 1) / m * m : v; }

/* Offsets in a prepared buffer are kept multiples of 64 bytes from its start. */
static size_t align64(size_t v) { return (v + 63) & ~(size_t)63; }

/* The eight per-channel int32 vectors (bias, multiplier, left and right
 * shift, rounding mask and half mask; the next channel's multiplier at
 * even channels and 2^(right-1): the short rounding, qk.h) of npad
 * channels, and the fp32 scales as a ninth. */
#define NQ 9
static size_t requant_bytes(int32_t npad) { return align64((size_t)NQ * (size_t)npad * sizeof(int32_t)); }

/* Fills the requantization vectors (but the bias); channels >= n are
 * padding (all zero). With fp32 scales only those are filled (q + 8 npad,
 * as floats). Returns whether some channel shifts left. */
static int fill_requant(int32_t *q, int32_t n, int32_t npad, const int32_t *m, const int32_t *s, const float *scales)
{
    int lsh_any = 0;
    memset(q, 0, (size_t)NQ * (size_t)npad * sizeof *q);
    if (scales) {
        memcpy(q + 8 * npad, scales, (size_t)n * sizeof *scales);
        return 0;
    }
    for (int32_t c = 0; c < n; c++) {
        int32_t right = s[c] > 0 ? 0 : -s[c];
        q[npad + c] = m[c];
        q[2 * npad + c] = s[c] > 0 ? s[c] : 0;
        q[3 * npad + c] = right;
        q[4 * npad + c] = (int32_t)((INT64_C(1) << right) - 1); /* as rg_q_rdbpot */
        q[5 * npad + c] = q[4 * npad + c] >> 1;
        q[6 * npad + c] = c % 2 == 0 && c + 1 < n ? m[c + 1] : 0;
        q[7 * npad + c] = right > 0 ? (int32_t)(INT64_C(1) << (right - 1)) : 0;
        lsh_any |= s[c] > 0;
    }
    return lsh_any;
}

/* Whether no accumulator of a channel can leave int32: |bias| + 255 sum |w|
 * (|x - zp| <= 255) at most INT32_MAX. Then int32 arithmetic wrapping on
 * the way ends at the reference's exact sum, and the folded bias fits. */
static int channel_fits(int64_t bias, int64_t sum_abs_w)
{
    int64_t b = bias < 0 ? -bias : bias;
    return b + 255 * sum_abs_w <= INT32_MAX;
}

/* Whether a channel may take the short rounding (qk.h): it shifts right
 * (by at least 1) and r + 2^(right-1) cannot leave int32, r being the
 * doubling high product, at most |acc| + 1 <= |bias| + 255 sum |w| + 1. */
static int channel_short(int64_t bias, int64_t sum_abs_w, int32_t shift)
{
    int64_t b = bias < 0 ? -bias : bias;
    return shift <= -1 && b + 255 * sum_abs_w + 1 + (INT64_C(1) << (-shift - 1)) <= INT32_MAX;
}

/* ---- matrix product ---- */

size_t rg_qk_gemm_size(const rg_qk_table *t, int32_t k, int32_t n)
{
    if (k < 1 || n < 1) return 64;
    if (t->nr == 0) return 64;
    int32_t kpad = round_up(k, t->kr), npad = round_up(n, t->nr);
    return requant_bytes(npad) + align64((size_t)npad * (size_t)kpad * (size_t)t->wbytes);
}

rg_status rg_qk_gemm_prepare(const rg_qk_table *t, const rg_q_fc_params *p, const int8_t *w, const int32_t *bias,
                             void *buf, size_t size, rg_qk_gemm *L, rg_error *err)
{
    const char *op = "int8 gemm";
    rg_status st;
    if ((st = rg_qref_check_dim(op, "in_features", p->in_features, err)) ||
        (st = rg_qref_check_dim(op, "out_features", p->out_features, err)) ||
        (st = rg_qref_check_zp(op, "in_zp", p->in_zp, err)) || (st = rg_qref_check_zp(op, "out_zp", p->out_zp, err)) ||
        (st = rg_qref_check_act(op, p->act_min, p->act_max, err)) ||
        (st = rg_qref_check_requant(op, p->multipliers, p->shifts, p->scales, p->out_features, err)))
        return st;
    if (!w) return rg_fail(err, RG_ERR_ARG, "%s: weights are required", op);
    const int32_t k = p->in_features, n = p->out_features;
    size_t need = rg_qk_gemm_size(t, k, n);
    if (!buf || size < need)
        return rg_fail(err, RG_ERR_ARG, "%s: prepared buffer of %zu bytes, %zu needed", op, buf ? size : 0, need);
    memset(L, 0, sizeof *L);
    L->k = k;
    L->n = n;
    L->in_zp = p->in_zp;
    L->out_zp = p->out_zp;
    L->act_min = p->act_min;
    L->act_max = p->act_max;
    L->w = w;
    L->bias = bias;
    L->multipliers = p->multipliers;
    L->shifts = p->shifts;
    L->scales = p->scales;
    L->fp32 = p->scales != NULL;
    L->qlo = (float)(p->act_min - p->out_zp);
    L->qhi = (float)(p->act_max - p->out_zp);
    L->table = t;
    L->kpad = k;
    L->npad = n;
    if (t->nr == 0) return RG_OK; /* the reference needs nothing prepared */

    const int32_t kpad = round_up(k, t->kr), npad = round_up(n, t->nr), nr = t->nr, kr = t->kr;
    L->kpad = kpad;
    L->npad = npad;
    int32_t *q = buf;
    L->lsh_any = fill_requant(q, n, npad, p->multipliers, p->shifts, p->scales);
    L->fast = 1;
    L->rshort = !L->fp32;
    for (int32_t o = 0; o < n; o++) {
        int64_t sum = 0, sum_abs = 0;
        for (int32_t i = 0; i < k; i++) {
            int32_t v = w[(int64_t)o * k + i];
            sum += v;
            sum_abs += v < 0 ? -v : v;
        }
        int64_t b = bias ? bias[o] : 0;
        if (!channel_fits(b, sum_abs)) L->fast = 0;
        if (L->rshort && !channel_short(b, sum_abs, p->shifts[o])) L->rshort = 0;
        q[o] = (int32_t)(b - (128 + (int64_t)p->in_zp) * sum); /* fits when channel_fits */
    }
    L->qbias = q;
    L->qmult = q + npad;
    L->qlsh = q + 2 * npad;
    L->qrsh = q + 3 * npad;
    L->qmask = q + 4 * npad;
    L->qhalf = q + 5 * npad;
    L->qmodd = q + 6 * npad;
    L->qrnd = q + 7 * npad;
    L->qscale = (const float *)(const void *)(q + 8 * npad);
    char *pack = (char *)buf + requant_bytes(npad);
    memset(pack, 0, (size_t)npad * (size_t)kpad * (size_t)t->wbytes);
    const int32_t groups = kpad / kr;
    for (int32_t o = 0; o < n; o++)
        for (int32_t i = 0; i < k; i++) {
            size_t at = ((size_t)(o / nr) * (size_t)groups + (size_t)(i / kr)) * (size_t)nr * (size_t)kr +
                        (size_t)(o % nr) * (size_t)kr + (size_t)(i % kr);
            int8_t v = w[(int64_t)o * k + i];
            if (t->wbytes == 2) ((int16_t *)(void *)pack)[at] = v;
            else ((int8_t *)pack)[at] = v;
        }
    L->wpack = pack;
    return RG_OK;
}

size_t rg_qk_gemm_scratch(const rg_qk_gemm *L)
{
    return (size_t)L->table->mr * (size_t)L->kpad * (size_t)L->table->wbytes;
}

void rg_qk_gemm_run(const rg_qk_gemm *L, int32_t rows, const int8_t *x, int8_t *y, void *scratch)
{
    if (rows < 1) return;
    if (!L->fast || L->table->nr == 0) ref_gemm(L, rows, x, y, scratch);
    else L->table->gemm(L, rows, x, y, scratch);
}

/* ---- depthwise ---- */

static rg_status check_dw(const rg_q_conv_params *p, rg_error *err)
{
    rg_status st = rg_qref_check_conv("depthwise_s8", p, err);
    if (st) return st;
    if (p->out_c != p->in_c)
        return rg_fail(err, RG_ERR_SHAPE, "depthwise_s8: out_c %d must equal in_c %d (channel multiplier 1)",
                       (int)p->out_c, (int)p->in_c);
    return RG_OK;
}

size_t rg_qk_dw_size(const rg_qk_table *t, const rg_q_conv_params *p)
{
    if (t->nr == 0 || p->in_c < 1 || p->k_h < 1 || p->k_w < 1) return 64;
    int32_t cpad = round_up(p->in_c, t->cvec);
    return requant_bytes(cpad) + align64((size_t)p->k_h * (size_t)p->k_w * (size_t)cpad * sizeof(int32_t)) +
           2 * align64((size_t)cpad * sizeof(int32_t)) + align64((size_t)p->k_h * (size_t)cpad * sizeof(int32_t));
}

rg_status rg_qk_dw_prepare(const rg_qk_table *t, const rg_q_conv_params *p, const int8_t *w, const int32_t *bias,
                           void *buf, size_t size, rg_qk_dw *L, rg_error *err)
{
    rg_status st = check_dw(p, err);
    if (st) return st;
    if (!w) return rg_fail(err, RG_ERR_ARG, "depthwise: weights are required");
    size_t need = rg_qk_dw_size(t, p);
    if (!buf || size < need)
        return rg_fail(err, RG_ERR_ARG, "depthwise: prepared buffer of %zu bytes, %zu needed", buf ? size : 0, need);
    memset(L, 0, sizeof *L);
    L->p = *p;
    L->w = w;
    L->bias = bias;
    L->table = t;
    L->cpad = p->in_c;
    if (t->nr == 0) return RG_OK;
    const int32_t c = p->in_c, cpad = round_up(c, t->cvec), taps = p->k_h * p->k_w;
    L->cpad = cpad;
    int32_t *q = buf;
    L->lsh_any = fill_requant(q, c, cpad, p->multipliers, p->shifts, p->scales);
    L->fast = 1;
    L->fp32 = p->scales != NULL;
    L->rshort = !L->fp32;
    L->qlo = (float)(p->act_min - p->out_zp);
    L->qhi = (float)(p->act_max - p->out_zp);
    int32_t *wt = (int32_t *)(void *)((char *)buf + requant_bytes(cpad));
    memset(wt, 0, (size_t)taps * (size_t)cpad * sizeof *wt);
    int32_t *bzp = (int32_t *)(void *)((char *)wt + align64((size_t)taps * (size_t)cpad * sizeof *wt));
    memset(bzp, 0, (size_t)cpad * sizeof *bzp);
    int32_t *bu8 = (int32_t *)(void *)((char *)bzp + align64((size_t)cpad * sizeof *bzp));
    int32_t *wrow = (int32_t *)(void *)((char *)bu8 + align64((size_t)cpad * sizeof *bu8));
    memset(bu8, 0, (size_t)cpad * sizeof *bu8);
    memset(wrow, 0, (size_t)p->k_h * (size_t)cpad * sizeof *wrow);
    for (int32_t ch = 0; ch < c; ch++) {
        int64_t sum_abs = 0, sum = 0;
        for (int32_t tp = 0; tp < taps; tp++) {
            int32_t v = w[(int64_t)ch * taps + tp];
            sum_abs += v < 0 ? -v : v;
            sum += v;
            /* the low 16 bits hold the weight, the high 16 zero: vpmaddwd of
             * an int32 lane x (|x| < 2^15) with it is exactly x * w */
            wt[(int64_t)tp * cpad + ch] = (int32_t)(uint16_t)(int16_t)v;
            int32_t kh = tp / p->k_w, kw = tp % p->k_w;
            if (p->k_w <= 4) wrow[(size_t)kh * cpad + ch] |= (int32_t)((uint32_t)(uint8_t)v << (8 * kw));
        }
        int64_t b = bias ? bias[ch] : 0;
        if (!channel_fits(b, sum_abs)) L->fast = 0;
        if (L->rshort && !channel_short(b, sum_abs, p->shifts[ch])) L->rshort = 0;
        q[ch] = (int32_t)b;
        /* where every tap is inside the input, sum (x - zp) w = sum x w -
         * zp sum w; |bias - zp sum w| <= |bias| + 128 sum |w| fits when the
         * channel does */
        bzp[ch] = (int32_t)(b - (int64_t)p->in_zp * sum);
        bu8[ch] = (int32_t)(b - (128 + (int64_t)p->in_zp) * sum); /* |.| <= |b| + 255 sum |w| */
    }
    L->qbias_zp = bzp;
    L->qbias = q;
    L->qmult = q + cpad;
    L->qlsh = q + 2 * cpad;
    L->qrsh = q + 3 * cpad;
    L->qmask = q + 4 * cpad;
    L->qhalf = q + 5 * cpad;
    L->qmodd = q + 6 * cpad;
    L->qrnd = q + 7 * cpad;
    L->qscale = (const float *)(const void *)(q + 8 * cpad);
    L->wtap = wt;
    L->wrow = wrow;
    L->qbias_u8 = bu8;
    return RG_OK;
}

size_t rg_qk_dw_scratch(const rg_qk_dw *L)
{
    if (!L->fast || L->table->nr == 0 || !L->table->dw_scratch) return 0;
    return L->table->dw_scratch(L);
}

void rg_qk_dw_run(const rg_qk_dw *L, const int8_t *x, int8_t *y, void *scratch)
{
    if (!L->fast || L->table->nr == 0) ref_depthwise(L, x, y, NULL);
    else L->table->depthwise(L, x, y, scratch);
}

/* ---- dense convolution: im2col + the matrix product ---- */

/* Output pixels gathered per product: enough rows to amortize the weight
 * panels, few enough that the column block stays in L1/L2. */
#define CONV_BLOCK 64

static rg_status check_conv(const rg_q_conv_params *p, rg_error *err)
{
    return rg_qref_check_conv("conv2d_s8", p, err);
}

/* Whether t runs a convolution of k taps directly, and the bytes its
 * direct layout adds after the product's. */
static int direct_for(const rg_qk_table *t, const rg_q_conv_params *p, int64_t k)
{
    return t->conv_direct && t->nr > 0 && k >= 1 && k <= RG_QK_DIRECT_MAX && p->dilation_w == 1;
}

static size_t direct_bytes(const rg_qk_table *t, const rg_q_conv_params *p)
{
    int32_t npad = round_up(p->out_c, t->nr), rquads = (p->k_w * p->in_c + 3) / 4;
    return align64((size_t)p->k_h * (size_t)rquads * (size_t)npad * sizeof(int32_t));
}

size_t rg_qk_conv_size(const rg_qk_table *t, const rg_q_conv_params *p)
{
    int64_t k = (int64_t)p->k_h * p->k_w * p->in_c;
    if (k < 1 || k > INT32_MAX) return 64;
    size_t size = align64(rg_qk_gemm_size(t, (int32_t)k, p->out_c));
    if (direct_for(t, p, k) && p->out_c >= 1) size += direct_bytes(t, p);
    return size;
}

rg_status rg_qk_conv_prepare(const rg_qk_table *t, const rg_q_conv_params *p, const int8_t *w, const int32_t *bias,
                             void *buf, size_t size, rg_qk_conv *L, rg_error *err)
{
    rg_status st = check_conv(p, err);
    if (st) return st;
    int64_t k = (int64_t)p->k_h * p->k_w * p->in_c;
    if (k > (1 << 24)) return rg_fail(err, RG_ERR_SHAPE, "conv2d: k_h*k_w*in_c %lld above 2^24", (long long)k);
    if (!w) return rg_fail(err, RG_ERR_ARG, "conv2d: weights are required");
    memset(L, 0, sizeof *L);
    L->p = *p;
    L->w = w;
    L->bias = bias;
    rg_q_fc_params fp = {.batch = 1, .in_features = (int32_t)k, .out_features = p->out_c, .in_zp = p->in_zp,
                         .out_zp = p->out_zp, .act_min = p->act_min, .act_max = p->act_max,
                         .multipliers = p->multipliers, .shifts = p->shifts, .scales = p->scales};
    size_t gsize = align64(rg_qk_gemm_size(t, (int32_t)k, p->out_c));
    st = rg_qk_gemm_prepare(t, &fp, w, bias, buf, size < gsize ? size : gsize, &L->gemm, err);
    if (st) return rg_error_prefix(err, "conv2d");
    if (!direct_for(t, p, k) || !L->gemm.fast) return RG_OK;
    if (size < gsize + direct_bytes(t, p))
        return rg_fail(err, RG_ERR_ARG, "conv2d: prepared buffer of %zu bytes, %zu needed", size,
                       gsize + direct_bytes(t, p));
    const int32_t n = p->out_c, npad = L->gemm.npad, row = p->k_w * p->in_c, rquads = (row + 3) / 4;
    int32_t *wq = (int32_t *)(void *)((char *)buf + gsize);
    memset(wq, 0, (size_t)p->k_h * (size_t)rquads * (size_t)npad * sizeof *wq);
    for (int32_t o = 0; o < n; o++)
        for (int32_t kh = 0; kh < p->k_h; kh++)
            for (int32_t i = 0; i < row; i++) {
                /* OHWI: tap (kh, i = kw*in_c + c) of channel o */
                uint32_t v = (uint8_t)w[((int64_t)o * p->k_h + kh) * row + i];
                wq[((size_t)kh * rquads + (size_t)(i / 4)) * npad + o] |= (int32_t)(v << (8 * (i % 4)));
            }
    L->rquads = rquads;
    /* the padded image covers every window (the right and bottom padding as
     * far as the last window reaches) */
    L->ph = (p->out_h - 1) * p->stride_h + (p->k_h - 1) * p->dilation_h + 1;
    L->pw = (p->out_w - 1) * p->stride_w + p->k_w;
    L->wquad = wq;
    L->direct = 1;
    return RG_OK;
}

size_t rg_qk_conv_scratch(const rg_qk_conv *L)
{
    if (L->gemm.table->nr == 0) return 0;
    /* the padded u8 image, and 3 more bytes: a row's last 4 may read up to
     * 3 past its taps (weight 0) */
    if (L->direct) return align64((size_t)L->ph * (size_t)L->pw * (size_t)L->p.in_c + 3);
    return align64((size_t)CONV_BLOCK * (size_t)L->gemm.k) + rg_qk_gemm_scratch(&L->gemm);
}

/* Column block: rows of k_h*k_w*in_c values in OHWI's (kh, kw, c) order;
 * taps outside the input hold in_zp, which contributes (zp - zp) w = 0
 * exactly as the reference's skipped taps. */
static void im2col(const rg_q_conv_params *p, const int8_t *x, int64_t pix0, int32_t npix, int8_t *col)
{
    const int32_t ci = p->in_c;
    const int64_t k = (int64_t)p->k_h * p->k_w * ci;
    for (int32_t r = 0; r < npix; r++) {
        int64_t pix = pix0 + r;
        int32_t ow = (int32_t)(pix % p->out_w), oh = (int32_t)(pix / p->out_w % p->out_h);
        int64_t n = pix / ((int64_t)p->out_w * p->out_h);
        int8_t *dst = col + r * k;
        const int32_t iw0 = ow * p->stride_w - p->pad_left;
        /* a kernel row inside the input (dilation 1) is one contiguous run
         * of k_w * in_c bytes */
        const int row_inside = p->dilation_w == 1 && iw0 >= 0 && iw0 + p->k_w <= p->in_w;
        for (int32_t kh = 0; kh < p->k_h; kh++) {
            int32_t ih = oh * p->stride_h - p->pad_top + kh * p->dilation_h;
            if (ih >= 0 && ih < p->in_h && row_inside) {
                const int8_t *src = x + ((n * p->in_h + ih) * p->in_w + iw0) * ci;
                int32_t len = p->k_w * ci;
                if (len < 32)
                    for (int32_t c = 0; c < len; c++) dst[c] = src[c];
                else
                    memcpy(dst, src, (size_t)len);
                dst += len;
                continue;
            }
            for (int32_t kw = 0; kw < p->k_w; kw++, dst += ci) {
                int32_t iw = iw0 + kw * p->dilation_w;
                int inside = ih >= 0 && ih < p->in_h && iw >= 0 && iw < p->in_w;
                const int8_t *src = inside ? x + ((n * p->in_h + ih) * p->in_w + iw) * ci : x;
                if (ci < 16) /* the stem's few channels: no library call per tap */
                    for (int32_t c = 0; c < ci; c++) dst[c] = inside ? src[c] : (int8_t)p->in_zp;
                else if (inside) memcpy(dst, src, (size_t)ci);
                else memset(dst, p->in_zp, (size_t)ci);
            }
        }
    }
}

void rg_qk_conv_run(const rg_qk_conv *L, const int8_t *x, int8_t *y, void *scratch)
{
    const rg_q_conv_params *p = &L->p;
    if (L->gemm.table->nr == 0 || !L->gemm.fast) {
        rg_q_conv2d_s8(p, x, L->w, L->bias, y, NULL);
        return;
    }
    if (L->direct) {
        L->gemm.table->conv_direct(L, x, y, scratch);
        return;
    }
    int8_t *col = scratch;
    void *gs = (char *)scratch + align64((size_t)CONV_BLOCK * (size_t)L->gemm.k);
    int64_t total = (int64_t)p->batch * p->out_h * p->out_w;
    for (int64_t pix = 0; pix < total; pix += CONV_BLOCK) {
        int32_t npix = (int32_t)(total - pix < CONV_BLOCK ? total - pix : CONV_BLOCK);
        im2col(p, x, pix, npix, col);
        L->gemm.table->gemm(&L->gemm, npix, col, y + pix * p->out_c, gs);
    }
}

/* ---- elementwise ---- */

rg_status rg_qk_check_add(const rg_q_add_params *p, rg_error *err)
{
    return rg_q_add_s8(p, NULL, NULL, 0, NULL, err); /* n = 0: validation only */
}

rg_status rg_qk_check_gap(const rg_q_gap_params *p, rg_error *err)
{
    const char *op = "gap_s8";
    rg_status st;
    if ((st = rg_qref_check_dim(op, "batch", p->batch, err)) || (st = rg_qref_check_dim(op, "h", p->h, err)) ||
        (st = rg_qref_check_dim(op, "w", p->w, err)) || (st = rg_qref_check_dim(op, "c", p->c, err)) ||
        (st = rg_qref_check_zp(op, "in_zp", p->in_zp, err)) || (st = rg_qref_check_zp(op, "out_zp", p->out_zp, err)) ||
        (st = rg_qref_check_act(op, p->act_min, p->act_max, err)) ||
        (st = rg_q_multiplier_check(p->multiplier, p->shift, "gap_s8", err)))
        return st;
    if ((int64_t)p->h * p->w > (1 << 23))
        return rg_fail(err, RG_ERR_SHAPE, "gap_s8: h*w %lld above 2^23", (long long)p->h * p->w);
    return RG_OK;
}
