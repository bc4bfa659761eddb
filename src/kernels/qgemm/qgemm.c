/* qgemm.c -- the INT8 GEMM engine's level-independent part: weight packing (dense row
 * tiles or block-sparse rows), A-panel packing (im2col of u8 images, rows of u8
 * matrices), and the threaded driver that runs a level's tile kernel and epilogue. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/qgemm/qgemm.h"
#include "kernels/qgemm/qsplit.h"

pl_q8_level pl_q8_level_now(void) {
    pl_isa isa = pl_cpu_isa();
    if (isa >= PL_ISA_AVX512 && pl_cpu()->avx512_vnni && pl_cpu()->avx512bw) return PL_Q8_VNNI;
    if (isa >= PL_ISA_AVX2) return PL_Q8_AVX2;
    return PL_Q8_REF;
}

const char *pl_q8_level_name(pl_q8_level l) {
    return l == PL_Q8_VNNI ? "vnni" : l == PL_Q8_AVX2 ? "avx2" : "ref";
}

static const pl_q8_impl *impl_of(pl_q8_level l) {
    if (l == PL_Q8_VNNI) return pl_q8_impl_vnni();
    if (l == PL_Q8_AVX2) return pl_q8_impl_avx2();
    return pl_q8_impl_ref();
}

/* Packed weight element size: the AVX2 dense tiles keep int16 weights (vpmaddwd against
 * the widened u8 panel); every other packing is s8. The A panel is u8 on every level. */
static size_t w_elem_size(pl_q8_level l, bool sparse) { return l == PL_Q8_AVX2 && !sparse ? 2 : 1; }

/* The AVX2 sparse rows multiply with vpmaddubsw (u8 x s8, adjacent products summed into a
 * saturating int16): with activations in [0, 255] a weight pair cannot saturate when its
 * positive weights and its negative weights' magnitudes each sum to at most 128
 * (pl_q8_pair_fits: 255 * 128 = 32640). A group with a pair past that is split exactly
 * into (w0, 0, w2, 0) + (0, w1, 0, w3): every pair then holds one product, at most
 * 255 * 128 in magnitude. Returns whether group w[0..3] needs the split. */
static bool avx2_split(const int8_t w[4]) {
    return !pl_q8_pair_fits(w[0], w[1]) || !pl_q8_pair_fits(w[2], w[3]);
}

double pl_q8_group_sparsity(const int8_t *w, int64_t M, int64_t K, int64_t ldw,
                            const int32_t *zw) {
    const int64_t G = (K + 3) / 4;
    if (M <= 0 || G <= 0) return 0;
    int64_t zero = 0;
    for (int64_t m = 0; m < M; m++) {
        const int8_t *r = w + m * ldw;
        int32_t z = zw ? zw[m] : 0;
        for (int64_t g = 0; g < G; g++) {
            bool nz = false;
            for (int64_t k = 4 * g; k < 4 * g + 4 && k < K; k++) nz |= r[k] != z;
            zero += !nz;
        }
    }
    return (double)zero / (double)(M * G);
}

void pl_q8_w_free(pl_q8_w *pw) {
    if (!pw) return;
    free(pw->data);
    free(pw->rowsum);
    free(pw->wabs);
    free(pw->zw);
    free(pw->ptr);
    free(pw->idx);
    free(pw->vals);
    memset(pw, 0, sizeof *pw);
}

static void put_elem(void *base, size_t es, int64_t i, int v) {
    if (es == 2) ((int16_t *)base)[i] = (int16_t)v;
    else ((int8_t *)base)[i] = (int8_t)v;
}

pl_status pl_q8_pack_w(pl_q8_w *pw, const int8_t *w, int64_t M, int64_t K, int64_t ldw,
                       const int32_t *zw, pl_q8_level level, bool sparse) {
    memset(pw, 0, sizeof *pw);
    if (M < 0 || K < 0 || ldw < K || (M > 0 && K > 0 && !w))
        return pl_error(PL_ERR_ARGUMENT, "int8 gemm: bad weight sizes %lld x %lld (stride %lld)",
                        (long long)M, (long long)K, (long long)ldw);
    const pl_q8_impl *im = impl_of(level);
    pw->level = level;
    pw->sparse = sparse;
    pw->M = M;
    pw->K = K;
    pw->Kp = (K + 3) / 4 * 4;
    pw->mr = im->mr;
    const int64_t G = pw->Kp / 4;
    const size_t es = w_elem_size(level, sparse);
    pw->rowsum = calloc((size_t)(M > 0 ? M : 1), sizeof(int32_t));
    pw->zw = calloc((size_t)(M > 0 ? M : 1), sizeof(int32_t));
    pw->wabs = calloc((size_t)(M > 0 ? M : 1), sizeof(int64_t));
    if (!pw->rowsum || !pw->zw || !pw->wabs) goto oom;
    for (int64_t m = 0; m < M; m++) {
        int64_t s = 0, sa = 0;
        for (int64_t k = 0; k < K; k++) {
            s += w[m * ldw + k];
            sa += abs(w[m * ldw + k]);
        }
        pw->rowsum[m] = (int32_t)s;
        pw->wabs[m] = sa;
        pw->zw[m] = zw ? zw[m] : 0;
        pw->any_zw |= pw->zw[m] != 0;
    }
    if (!sparse) {
        const int64_t mt = (M + pw->mr - 1) / pw->mr;
        pw->data = calloc((size_t)(mt * G * pw->mr * 4 > 0 ? mt * G * pw->mr * 4 : 1), es);
        if (!pw->data) goto oom;
        for (int64_t m = 0; m < M; m++) {
            const int64_t t = m / pw->mr, r = m % pw->mr;
            for (int64_t k = 0; k < K; k++)
                put_elem(pw->data, es, ((t * G + k / 4) * pw->mr + r) * 4 + k % 4, w[m * ldw + k]);
        }
        return PL_OK;
    }
    pw->ptr = calloc((size_t)M + 1, sizeof(int64_t));
    if (!pw->ptr) goto oom;
    /* two passes: count the entries (a split group is two), then fill them */
    for (int pass = 0; pass < 2; pass++) {
        int64_t nnz = 0, j = 0;
        for (int64_t m = 0; m < M; m++) {
            for (int64_t g = 0; g < G; g++) {
                int8_t q[4] = {0, 0, 0, 0};
                bool nz = false;
                for (int64_t k = 4 * g; k < 4 * g + 4 && k < K; k++) {
                    q[k % 4] = w[m * ldw + k];
                    nz |= q[k % 4] != 0;
                }
                if (!nz) continue;
                nnz++;
                const bool split = level == PL_Q8_AVX2 && avx2_split(q);
                if (pass == 1) {
                    int8_t *v = (int8_t *)pw->vals + j * 4;
                    pw->idx[j] = (int32_t)g;
                    for (int t = 0; t < 4; t++) v[t] = split && t % 2 ? 0 : q[t];
                    if (split) {
                        pw->idx[j + 1] = (int32_t)g;
                        for (int t = 0; t < 4; t++) v[4 + t] = t % 2 ? q[t] : 0;
                    }
                }
                j += split ? 2 : 1;
            }
            if (pass == 0) pw->ptr[m + 1] = j;
        }
        if (pass == 0) {
            pw->nnz_groups = nnz;
            pw->nent = j;
            pw->idx = malloc((size_t)(j > 0 ? j : 1) * sizeof(int32_t));
            pw->vals = calloc((size_t)(j > 0 ? j * 4 : 1), 1);
            if (!pw->idx || !pw->vals) goto oom;
        }
    }
    pl_q8_avx2_classify(pw);
    return PL_OK;
oom:
    pl_q8_w_free(pw);
    return pl_error(PL_ERR_NOMEM, "int8 gemm: out of memory packing %lld x %lld weights",
                    (long long)M, (long long)K);
}

size_t pl_q8_panel_bytes(pl_q8_level level, int64_t Kp, int64_t P) {
    (void)level;
    return (size_t)Kp * (size_t)pl_q8_pp(P);
}

/* ------------------------------------------------------------------ A panels */

typedef struct pack_job {
    pl_q8_level level;
    const pl_q8_conv_geom *g;
    const uint8_t *x;
    int64_t P, Pp, K, Kp, ldx;
    uint8_t flip, pad;
    void *panel;
    int32_t *asum;
    int ntasks;
    _Atomic int failed;
    /* stride-1 KxK convolutions: the image with its padding, channels interleaved by 4
     * ([C/4][Hp][Wp][4] elements of the panel type), built once per run */
    void *xpad;
    int64_t Hp, Wp;
    /* 2-D convolutions whose channel count is not a multiple of 4: the padded image split
     * into its stride phases ([C][sh][sw][Hq][Wq] u8, flip applied), then a zero row */
    uint8_t *xph;
    int64_t Hq, Wq;
} pack_job;

/* Row k of the im2col matrix (P values) into row; returns row, or a pointer straight
 * into x when the row is a plain channel (1x1, stride 1, no padding). */
static const uint8_t *conv_row(const pack_job *j, int64_t k, uint8_t *row) {
    const pl_q8_conv_geom *g = j->g;
    /* k = tap * C + c: four consecutive k are four channels at one tap, so channel
     * blocks of 4 pruned together are whole zero groups */
    const int64_t c = k % g->C;
    int64_t t = k / g->C, kk[3] = {0, 0, 0};
    for (int d = g->ndim - 1; d >= 0; d--) {
        kk[d] = t % g->k[d];
        t /= g->k[d];
    }
    int64_t insz = 1;
    for (int d = 0; d < g->ndim; d++) insz *= g->in[d];
    const uint8_t *xc = j->x + c * insz;
    bool plain = j->flip == 0;
    for (int d = 0; d < g->ndim; d++)
        plain &= g->k[d] == 1 && g->stride[d] == 1 && g->pad[d] == 0 && g->in[d] == g->out[d];
    if (plain) return xc;
    /* Treat the spatial dims as (outer..., last): the last dim is the inner loop. */
    const int nd = g->ndim;
    const int64_t W = g->in[nd - 1], OW = g->out[nd - 1], sw = g->stride[nd - 1];
    const int64_t offw = kk[nd - 1] * g->dil[nd - 1] - g->pad[nd - 1];
    int64_t outer = 1;
    for (int d = 0; d < nd - 1; d++) outer *= g->out[d];
    for (int64_t o = 0; o < outer; o++) {
        /* input offset of the outer dims, or -1 when outside */
        int64_t rem = o, off = 0, mul = W;
        bool inside = true;
        for (int d = nd - 2; d >= 0; d--) {
            int64_t od = rem % g->out[d];
            rem /= g->out[d];
            int64_t id = od * g->stride[d] + kk[d] * g->dil[d] - g->pad[d];
            if (id < 0 || id >= g->in[d]) inside = false;
            off += id * mul;
            mul *= g->in[d];
        }
        uint8_t *dst = row + o * OW;
        if (!inside) {
            memset(dst, j->pad, (size_t)OW);
            continue;
        }
        const uint8_t *src = xc + off;
        /* valid ow range: 0 <= ow*sw + offw < W */
        int64_t lo = offw >= 0 ? 0 : (-offw + sw - 1) / sw;
        int64_t hi = W - offw <= 0 ? 0 : (W - offw - 1) / sw + 1;
        if (hi > OW) hi = OW;
        if (lo > hi) lo = hi;
        if (lo > 0) memset(dst, j->pad, (size_t)lo);
        if (sw == 1) {
            for (int64_t ow = lo; ow < hi; ow++) dst[ow] = src[ow + offw] ^ j->flip;
        } else if (sw == 2 && j->level == PL_Q8_VNNI) {
            pl_q8_copy_s2_avx512(src + lo * 2 + offw, hi - lo, dst + lo, j->flip);
        } else if (sw == 2 && j->level == PL_Q8_AVX2 && hi - lo >= 64) {
            pl_q8_copy_s2_avx2(src + lo * 2 + offw, hi - lo, dst + lo, j->flip);
        } else {
            for (int64_t ow = lo; ow < hi; ow++) dst[ow] = src[ow * sw + offw] ^ j->flip;
        }
        if (hi < OW) memset(dst + hi, j->pad, (size_t)(OW - hi));
    }
    return row;
}

/* Interleaves 4 rows (NULL: zeros) into the panel at group kg. */
static void interleave(const pack_job *j, int64_t kg, const uint8_t *const r[4]) {
    static const uint8_t zeros[64];
    uint8_t *d = (uint8_t *)j->panel + kg * j->Pp * 4;
    const uint8_t *r0 = r[0] ? r[0] : zeros, *r1 = r[1], *r2 = r[2], *r3 = r[3];
    if (r1 && r2 && r3 && j->level == PL_Q8_VNNI) {
        pl_q8_interleave4_avx512(r, j->P, d);
    } else if (r[0] && r1 && r2 && r3 && j->level == PL_Q8_AVX2) {
        pl_q8_interleave4_avx2(r, j->P, d);
    } else if (r1 && r2 && r3) {
        for (int64_t p = 0; p < j->P; p++) {
            d[p * 4] = r0[p];
            d[p * 4 + 1] = r1[p];
            d[p * 4 + 2] = r2[p];
            d[p * 4 + 3] = r3[p];
        }
    } else {
        for (int64_t p = 0; p < j->P; p++)
            for (int t = 0; t < 4; t++) d[p * 4 + t] = r[t] ? r[t][p] : 0;
    }
    memset(d + j->P * 4, 0, (size_t)(j->Pp - j->P) * 4);
}

/* Writes n interleaved columns (4 rows at r[0..3], each advancing by `step` bytes per
 * column) at column p of group kg. */
static void put4(const pack_job *j, int64_t kg, int64_t p, const uint8_t *const r[4], int64_t n,
                 int64_t step) {
    uint8_t *d = (uint8_t *)j->panel + (kg * j->Pp + p) * 4;
    if (step == 1 && j->level == PL_Q8_VNNI) {
        pl_q8_interleave4_avx512(r, n, d);
        return;
    }
    if (step == 2 && j->level == PL_Q8_VNNI) {
        pl_q8_interleave4_s2_avx512(r, n, d);
        return;
    }
    if (step == 1 && j->level == PL_Q8_AVX2) {
        pl_q8_interleave4_avx2(r, n, d);
        return;
    }
    if (step == 2 && j->level == PL_Q8_AVX2 && n >= 64) { /* compact each row, then interleave */
        uint8_t tb[4][256];
        const uint8_t *rt[4] = {tb[0], tb[1], tb[2], tb[3]};
        for (int64_t i = 0; i < n; i += 256) {
            const int64_t c = n - i < 256 ? n - i : 256;
            for (int t = 0; t < 4; t++) pl_q8_copy_s2_avx2(r[t] + 2 * i, c, tb[t], 0);
            pl_q8_interleave4_avx2(rt, c, d + 4 * i);
        }
        return;
    }
    for (int64_t i = 0; i < n; i++)
        for (int t = 0; t < 4; t++) d[i * 4 + t] = r[t][i * step];
}

static void fill4(const pack_job *j, int64_t kg, int64_t p, int64_t n) {
    if (n > 0) memset((uint8_t *)j->panel + (kg * j->Pp + p) * 4, j->pad, (size_t)(4 * n));
}

/* Group kg of a 2-D convolution whose channel count is a multiple of 4: four channels
 * at one tap, written straight into the panel row by row (no row buffer). */
static void conv2d_group(const pack_job *j, int64_t kg) {
    const pl_q8_conv_geom *g = j->g;
    const int64_t k0 = kg * 4, c0 = k0 % g->C, tap = k0 / g->C;
    const int64_t kh = tap / g->k[1], kw = tap % g->k[1];
    const int64_t H = g->in[0], W = g->in[1], OH = g->out[0], OW = g->out[1], sw = g->stride[1];
    const int64_t offw = kw * g->dil[1] - g->pad[1];
    int64_t lo = offw >= 0 ? 0 : (-offw + sw - 1) / sw;
    int64_t hi = W - offw <= 0 ? 0 : (W - offw - 1) / sw + 1;
    if (hi > OW) hi = OW;
    if (lo > hi) lo = hi;
    const bool plain = g->k[0] == 1 && g->k[1] == 1 && g->stride[0] == 1 && sw == 1 &&
                       g->pad[0] == 0 && g->pad[1] == 0 && OH == H && OW == W;
    for (int64_t oh = 0; plain && oh < 1; oh++) { /* a 1x1 conv: whole planes at once */
        const uint8_t *r[4];
        for (int t = 0; t < 4; t++) r[t] = j->x + (c0 + t) * H * W;
        put4(j, kg, 0, r, H * W, 1);
    }
    for (int64_t oh = 0; !plain && oh < OH; oh++) {
        const int64_t ih = oh * g->stride[0] + kh * g->dil[0] - g->pad[0];
        const int64_t p = oh * OW;
        if (ih < 0 || ih >= H) {
            fill4(j, kg, p, OW);
            continue;
        }
        const uint8_t *r[4];
        for (int t = 0; t < 4; t++) r[t] = j->x + ((c0 + t) * H + ih) * W + lo * sw + offw;
        fill4(j, kg, p, lo);
        put4(j, kg, p + lo, r, hi - lo, sw);
        fill4(j, kg, p + hi, OW - hi);
    }
    const int64_t P = OH * OW;
    memset((uint8_t *)j->panel + (kg * j->Pp + P) * 4, 0, (size_t)(j->Pp - P) * 4);
}

/* Channel quad cq of the padded interleaved image: row r of it is input row
 * r - pad[0], columns c - pad[1]; outside the image, the pad value. */
static void xpad_task(void *ctx, int task, int thread) {
    (void)thread;
    pack_job *j = ctx;
    const pl_q8_conv_geom *g = j->g;
    const int64_t H = g->in[0], W = g->in[1], Hp = j->Hp, Wp = j->Wp, cq = task;
    const int64_t lo = g->pad[1] < Wp ? g->pad[1] : Wp;
    const int64_t hi = g->pad[1] + W < Wp ? g->pad[1] + W : Wp;
    for (int64_t r = 0; r < Hp; r++) {
        const int64_t ih = r - g->pad[0];
        void *d = (char *)j->xpad + (size_t)((cq * Hp + r) * Wp * 4);
        /* put4 / fill4 on a one-row view of the padded image */
        const pack_job t = {.level = j->level, .pad = j->pad, .panel = d, .Pp = 0};
        if (ih < 0 || ih >= H || hi <= lo) {
            fill4(&t, 0, 0, Wp);
            continue;
        }
        const uint8_t *rr[4];
        for (int c = 0; c < 4; c++) rr[c] = j->x + ((cq * 4 + c) * H + ih) * W + (lo - g->pad[1]);
        fill4(&t, 0, 0, lo);
        put4(&t, 0, lo, rr, hi - lo, 1);
        fill4(&t, 0, hi, Wp - hi);
    }
}

/* Group kg of a stride-1 or stride-2 convolution from the padded image: each output
 * row is one copy of OW interleaved columns (stride 1) or of every second one. */
static void conv2d_xpad_group(const pack_job *j, int64_t kg) {
    const pl_q8_conv_geom *g = j->g;
    const int64_t k0 = kg * 4, cq = (k0 % g->C) / 4, tap = k0 / g->C;
    const int64_t kh = tap / g->k[1], kw = tap % g->k[1];
    const int64_t OH = g->out[0], OW = g->out[1], P = OH * OW, sh = g->stride[0], sw = g->stride[1];
    const char *src = (const char *)j->xpad +
                      (size_t)(((cq * j->Hp + kh * g->dil[0]) * j->Wp + kw * g->dil[1]) * 4);
    char *dst = (char *)j->panel + (size_t)(kg * j->Pp * 4);
    if (sh == 1 && sw == 1 && j->level == PL_Q8_VNNI) {
        pl_q8_copy_rows_avx512((const uint8_t *)src, j->Wp * 4, (uint8_t *)dst, OW * 4, OH, OW * 4);
        memset(dst + (size_t)(P * 4), 0, (size_t)((j->Pp - P) * 4));
        return;
    }
    for (int64_t oh = 0; oh < OH; oh++) {
        const char *s = src + (size_t)(oh * sh * j->Wp * 4);
        char *d = dst + (size_t)(oh * OW * 4);
        if (sw == 1) {
            memcpy(d, s, (size_t)(OW * 4));
        } else if (j->level == PL_Q8_VNNI) {
            pl_q8_gather_dw_s2_avx512((const uint32_t *)(const void *)s, OW, (uint32_t *)(void *)d);
        } else {
            pl_q8_gather_dw_s2_avx2((const uint32_t *)(const void *)s, OW, (uint32_t *)(void *)d);
        }
    }
    memset(dst + (size_t)(P * 4), 0, (size_t)((j->Pp - P) * 4));
}

/* Phase plane `task` (channel c, row phase ph, column phase pw) of the padded image:
 * row rq, column cq is padded position (rq * sh + ph, cq * sw + pw), the input pixel
 * there (xor flip) or the pad value. */
static void xph_task(void *ctx, int task, int thread) {
    (void)thread;
    const pack_job *j = ctx;
    const pl_q8_conv_geom *g = j->g;
    const int64_t sh = g->stride[0], sw = g->stride[1], H = g->in[0], W = g->in[1];
    const int64_t c = task / (sh * sw), ph = task % (sh * sw) / sw, pw = task % sw;
    const int64_t Hq = j->Hq, Wq = j->Wq;
    /* columns cq with 0 <= cq * sw + pw - pad1 < W */
    const int64_t a = g->pad[1] - pw;
    int64_t lo = a <= 0 ? 0 : (a + sw - 1) / sw, hi = (W + a) <= 0 ? 0 : (W + a + sw - 1) / sw;
    if (hi > Wq) hi = Wq;
    if (lo > hi) lo = hi;
    for (int64_t rq = 0; rq < Hq; rq++) {
        uint8_t *d = j->xph + ((int64_t)task * Hq + rq) * Wq;
        const int64_t ih = rq * sh + ph - g->pad[0];
        if (ih < 0 || ih >= H || hi == lo) {
            memset(d, j->pad, (size_t)Wq);
            continue;
        }
        const uint8_t *src = j->x + (c * H + ih) * W + lo * sw - a;
        memset(d, j->pad, (size_t)lo);
        const int64_t n = hi - lo;
        if (sw == 1 && !j->flip) {
            memcpy(d + lo, src, (size_t)n);
        } else if (sw == 1) {
            for (int64_t i = 0; i < n; i++) d[lo + i] = src[i] ^ j->flip;
        } else if (j->level == PL_Q8_VNNI) {
            pl_q8_copy_s2_avx512(src, n, d + lo, j->flip);
        } else if (j->level == PL_Q8_AVX2 && n >= 64) {
            pl_q8_copy_s2_avx2(src, n, d + lo, j->flip);
        } else {
            for (int64_t i = 0; i < n; i++) d[lo + i] = src[2 * i] ^ j->flip;
        }
        memset(d + hi, j->pad, (size_t)(Wq - hi));
    }
}

/* Group kg from the phase planes: each of its four (tap, channel) rows of an output
 * row is a contiguous run of OW bytes, interleaved straight into the panel. */
static void conv2d_xph_group(const pack_job *j, int64_t kg) {
    const pl_q8_conv_geom *g = j->g;
    const int64_t sh = g->stride[0], sw = g->stride[1], OH = g->out[0], OW = g->out[1];
    const uint8_t *zero = j->xph + g->C * sh * sw * j->Hq * j->Wq;
    const uint8_t *base[4];
    int64_t step[4];
    for (int t = 0; t < 4; t++) {
        const int64_t k = kg * 4 + t;
        if (k >= j->K) { /* the panel's padding rows: zeros (the column sums count them) */
            base[t] = zero;
            step[t] = 0;
            continue;
        }
        const int64_t c = k % g->C, tap = k / g->C;
        const int64_t oh0 = tap / g->k[1] * g->dil[0], ow0 = tap % g->k[1] * g->dil[1];
        const int64_t plane = c * sh * sw + (oh0 % sh) * sw + ow0 % sw;
        base[t] = j->xph + (plane * j->Hq + oh0 / sh) * j->Wq + ow0 / sw;
        step[t] = j->Wq;
    }
    for (int64_t oh = 0; oh < OH; oh++) {
        const uint8_t *r[4];
        for (int t = 0; t < 4; t++) r[t] = base[t] + oh * step[t];
        put4(j, kg, oh * OW, r, OW, 1);
    }
    const int64_t P = OH * OW;
    memset((uint8_t *)j->panel + (kg * j->Pp + P) * 4, 0, (size_t)(j->Pp - P) * 4);
}

/* Groups [g0, g1) of a matrix's panel: column p of group kg is the 4 bytes
 * x[p][4kg .. 4kg + 3], one 32-bit word (instead of a strided byte gather per k and a
 * 4-row interleave); row by row so that the reads run along x's rows. */
static void mat_groups(const pack_job *j, int64_t g0, int64_t g1) {
    const uint32_t f = (uint32_t)j->flip * 0x01010101u;
    const int64_t gfull = j->K / 4 < g1 ? j->K / 4 : g1; /* groups [g0, gfull) are whole */
    for (int64_t p = 0; p < j->P; p++) {
        const uint8_t *xr = j->x + p * j->ldx;
        uint32_t *d = (uint32_t *)j->panel + p;
        for (int64_t kg = g0; kg < gfull; kg++) {
            uint32_t v;
            memcpy(&v, xr + 4 * kg, 4);
            d[kg * j->Pp] = v ^ f;
        }
        for (int64_t kg = gfull > g0 ? gfull : g0; kg < g1; kg++) { /* the last, partial group */
            uint8_t b[4] = {0, 0, 0, 0};
            for (int64_t k = 4 * kg; k < j->K && k < 4 * kg + 4; k++) b[k - 4 * kg] = xr[k] ^ j->flip;
            memcpy(&d[kg * j->Pp], b, 4);
        }
    }
    for (int64_t kg = g0; kg < g1; kg++)
        memset((uint8_t *)j->panel + (kg * j->Pp + j->P) * 4, 0, (size_t)(j->Pp - j->P) * 4);
}

static void pack_task(void *ctx, int task, int thread) {
    (void)thread;
    pack_job *j = ctx;
    const int64_t G = j->Kp / 4;
    const int64_t g0 = G * task / j->ntasks, g1 = G * (task + 1) / j->ntasks;
    if (!j->g) {
        mat_groups(j, g0, g1);
        return;
    }
    if (j->xpad) {
        for (int64_t kg = g0; kg < g1; kg++) conv2d_xpad_group(j, kg);
        return;
    }
    if (j->xph) {
        for (int64_t kg = g0; kg < g1; kg++) conv2d_xph_group(j, kg);
        return;
    }
    if (j->g && j->g->ndim == 2 && j->g->C % 4 == 0 && j->flip == 0) {
        for (int64_t kg = g0; kg < g1; kg++) conv2d_group(j, kg);
        return;
    }
    uint8_t *buf = malloc((size_t)(j->P > 0 ? j->P : 1) * 4);
    if (!buf) {
        j->failed = 1;
        return;
    }
    for (int64_t kg = g0; kg < g1; kg++) {
        const uint8_t *r[4];
        for (int t = 0; t < 4; t++) {
            int64_t k = kg * 4 + t;
            r[t] = k >= j->K ? NULL : conv_row(j, k, buf + t * j->P);
        }
        interleave(j, kg, r);
    }
    free(buf);
}

/* Column sums of the packed panel, threaded over column ranges. */
static void asum_task(void *ctx, int task, int thread) {
    (void)thread;
    const pack_job *j = ctx;
    const int64_t G = j->Kp / 4;
    const int64_t p0 = j->Pp * task / j->ntasks, p1 = j->Pp * (task + 1) / j->ntasks;
    for (int64_t p = p0; p < p1; p++) j->asum[p] = 0;
    for (int64_t kg = 0; kg < G; kg++)
        for (int64_t p = p0; p < p1; p++) {
            const uint8_t *d = (const uint8_t *)j->panel + (kg * j->Pp + p) * 4;
            j->asum[p] += d[0] + d[1] + d[2] + d[3];
        }
}

static pl_status run_pack(pack_job *j, pl_threadpool *pool) {
    const int64_t G = j->Kp / 4;
    int nt = pl_threadpool_size(pool) * 8; /* small tasks even out the threads */
    if (nt > G) nt = (int)G;
    if (nt < 1) nt = 1;
    j->ntasks = nt;
    const pl_q8_conv_geom *g = j->g;
    /* a KxK 2-D convolution of stride 1 or 2: pad and interleave the image once, then
     * every tap's rows are copies (instead of one interleave per tap and output row) */
    if (g && g->ndim == 2 && g->C % 4 == 0 && j->flip == 0 && g->stride[0] >= 1 &&
        g->stride[0] <= 2 && g->stride[1] >= 1 && g->stride[1] <= 2 && g->k[0] * g->k[1] > 1 &&
        j->level != PL_Q8_REF) {
        j->Hp = (g->out[0] - 1) * g->stride[0] + (g->k[0] - 1) * g->dil[0] + 1;
        j->Wp = (g->out[1] - 1) * g->stride[1] + (g->k[1] - 1) * g->dil[1] + 1;
        j->xpad = malloc((size_t)(g->C * j->Hp * j->Wp) + 64);
        if (j->xpad) {
            pl_threadpool_run(pool, xpad_task, j, (int)(g->C / 4));
            pl_threadpool_run(pool, pack_task, j, nt);
            free(j->xpad);
            j->xpad = NULL;
        } else {
            pl_threadpool_run(pool, pack_task, j, nt); /* the direct way needs no buffer */
        }
    } else if (g && g->ndim == 2 && g->C % 4 != 0 && g->stride[0] >= 1 && g->stride[0] <= 2 &&
               g->stride[1] >= 1 && g->stride[1] <= 2 && j->level != PL_Q8_REF) {
        /* any other channel count (the 3-channel first layer): phase planes, then rows
         * interleaved from them (instead of an im2col row buffer per k) */
        j->Hq = g->out[0] + (g->k[0] - 1) * g->dil[0] / g->stride[0];
        j->Wq = g->out[1] + (g->k[1] - 1) * g->dil[1] / g->stride[1];
        const int64_t planes = g->C * g->stride[0] * g->stride[1];
        j->xph = malloc((size_t)(planes * j->Hq * j->Wq + g->out[1]) + 64);
        if (j->xph) {
            memset(j->xph + planes * j->Hq * j->Wq, 0, (size_t)g->out[1]);
            pl_threadpool_run(pool, xph_task, j, (int)planes);
            pl_threadpool_run(pool, pack_task, j, nt);
            free(j->xph);
            j->xph = NULL;
        } else {
            pl_threadpool_run(pool, pack_task, j, nt);
        }
    } else {
        pl_threadpool_run(pool, pack_task, j, nt);
    }
    if (j->asum) {
        nt = pl_threadpool_size(pool);
        j->ntasks = nt;
        pl_threadpool_run(pool, asum_task, j, nt);
    }
    if (j->failed) return pl_error(PL_ERR_NOMEM, "int8 gemm: out of memory packing activations");
    return PL_OK;
}

pl_status pl_q8_im2col(pl_q8_level level, const pl_q8_conv_geom *g, const uint8_t *x, uint8_t flip,
                       uint8_t pad, void *panel, int32_t *asum, pl_threadpool *pool) {
    int64_t P = 1, K = g->C;
    for (int d = 0; d < g->ndim; d++) {
        P *= g->out[d];
        K *= g->k[d];
    }
    pack_job j = {.level = level, .g = g, .x = x, .P = P, .Pp = pl_q8_pp(P), .K = K,
                  .Kp = (K + 3) / 4 * 4, .flip = flip, .pad = pad, .panel = panel, .asum = asum};
    return run_pack(&j, pool);
}

pl_status pl_q8_pack_rows(pl_q8_level level, const uint8_t *x, int64_t P, int64_t K, int64_t ldx,
                          uint8_t flip, void *panel, int32_t *asum, pl_threadpool *pool) {
    pack_job j = {.level = level, .x = x, .P = P, .Pp = pl_q8_pp(P), .K = K, .Kp = (K + 3) / 4 * 4,
                  .ldx = ldx, .flip = flip, .panel = panel, .asum = asum};
    return run_pack(&j, pool);
}

/* ------------------------------------------------------------------ the driver */

typedef struct gemm_job {
    const pl_q8_w *pw;
    const pl_q8_impl *im;
    const void *panel;
    const int32_t *asum;
    int64_t P, Pp;
    int32_t za;
    const pl_q8_epilogue *e;
    void *out;
    int64_t ldm, ldp;
    int64_t row_units, col_chunks, chunks_per_task, rows_per_unit;
} gemm_job;

static void gemm_task(void *ctx, int task, int thread) {
    (void)thread;
    const gemm_job *j = ctx;
    const int64_t ncol_tasks = (j->col_chunks + j->chunks_per_task - 1) / j->chunks_per_task;
    const int64_t ru = task / ncol_tasks, ct = task % ncol_tasks;
    const int64_t c0 = ct * j->chunks_per_task;
    int64_t c1 = c0 + j->chunks_per_task;
    if (c1 > j->col_chunks) c1 = j->col_chunks;
    const pl_q8_w *pw = j->pw;
    _Alignas(64) int32_t acc[16 * 32 * 4];
    if (!pw->sparse) {
        /* columns outer, row tiles inner: the 32-column slice of the A panel stays in
         * L1/L2 while the weight tiles stream past it */
        const int64_t nt = (pw->M + pw->mr - 1) / pw->mr;
        const int64_t t0 = ru * j->rows_per_unit;
        const int64_t t1 = t0 + j->rows_per_unit < nt ? t0 + j->rows_per_unit : nt;
        for (int64_t cc = c0; cc < c1; cc++) {
            const int64_t p0 = cc * 32;
            const int64_t n = j->P - p0 < 32 ? j->P - p0 : 32;
            /* a narrow last chunk: columns one by one (gemv), a 16-column tile, or a
             * 16-column tile and a few gemv columns, instead of a 32-column tile that
             * is mostly padding (P = 49 = 32 + 16 + 1, P = 196 = 6 * 32 + 4) */
            const bool fuse = j->ldp == 1 && j->im->tile16_epi;
            const int64_t gmax = pw->Kp >= 1024 ? PL_Q8_GEMV_MAX : 2;
            int64_t p1 = p0; /* gemv columns [p1, p0 + n) */
            if (j->im->gemv && n <= gmax)
                p1 = p0;
            else if (fuse && n <= 16)
                p1 = p0 + n;
            else if (fuse && j->im->gemv && n <= 16 + gmax)
                p1 = p0 + 16;
            else
                p1 = p0 + n;
            const bool narrow = p1 < p0 + n || (fuse && n <= 16);
            for (int64_t mt = t0; mt < t1; mt++) {
                if (narrow) {
                    if (p1 > p0)
                        j->im->tile16_epi(pw, mt, j->panel, j->Pp, p0, p1 - p0, j->asum, j->za,
                                          j->e, j->out, j->ldm);
                    const int64_t m0 = mt * pw->mr;
                    const int64_t mrows = pw->M - m0 < pw->mr ? pw->M - m0 : pw->mr;
                    for (int64_t p = p1; p < p0 + n; p++) {
                        j->im->gemv(pw, mt, j->panel, j->Pp, p, acc);
                        for (int64_t r = 0; r < mrows; r++)
                            j->im->epi(pw, m0 + r, acc + r, j->asum, j->za, p, 1, j->e, j->out,
                                       j->ldm, j->ldp);
                    }
                    continue;
                }
                if (j->im->tile_epi && j->ldp == 1) {
                    j->im->tile_epi(pw, mt, j->panel, j->Pp, p0, n, j->asum, j->za, j->e, j->out,
                                    j->ldm);
                    continue;
                }
                const int64_t m0 = mt * pw->mr;
                const int64_t mrows = pw->M - m0 < pw->mr ? pw->M - m0 : pw->mr;
                j->im->tile(pw, mt, j->panel, j->Pp, p0, acc);
                if (j->im->epi_t && j->ldm == 1) { /* a [P][M] output: vectors along m */
                    j->im->epi_t(pw, mt, acc, j->asum, j->za, p0, n, j->e, j->out, j->ldp);
                    continue;
                }
                for (int64_t r = 0; r < mrows; r++)
                    j->im->epi(pw, m0 + r, acc + r * 32, j->asum, j->za, p0, n, j->e, j->out, j->ldm,
                               j->ldp);
            }
        }
        return;
    }
    const int64_t m0 = ru * j->rows_per_unit;
    int64_t m1 = m0 + j->rows_per_unit;
    if (m1 > pw->M) m1 = pw->M;
    const int64_t p0 = c0 * 32;
    const int nb = (int)(c1 - c0);
    int64_t n = j->P - p0;
    if (n > nb * 32) n = nb * 32;
    for (int64_t m = m0; m < m1; m++) {
        if (j->im->srow_epi && j->ldp == 1) {
            j->im->srow_epi(pw, m, j->panel, j->Pp, p0, nb, n, j->asum, j->za, j->e, j->out,
                            j->ldm);
            continue;
        }
        j->im->srow(pw, m, j->panel, j->Pp, p0, nb, acc);
        j->im->epi(pw, m, acc, j->asum, j->za, p0, n, j->e, j->out, j->ldm, j->ldp);
    }
}

/* The per-layer part of the level kernels' epilogue, once per call instead of once per
 * tile or row: each row's offset (pl_q8_row_offset) and whether it may round before the
 * clamps (pl_q8_row_rounds_first: rounding is monotone, so clamping the rounded value
 * at round(lo), round(hi) gives ref.c's result), with the integer clamps of that form.
 * off holds M rounded up to 16, plus 16, values and rf as many flags (a row tile may
 * read past M: zeros there). Ops with constant parameters make it at prepare. */
void pl_q8_epi_prepare(const pl_q8_w *pw, int32_t za, const pl_q8_epilogue *e, int32_t *off,
                       uint8_t *rf, pl_q8_epilogue *x) {
    const int64_t M = pw->M, Mp = pl_q8_epi_rows(M);
    bool fast = true;
    for (int64_t m = 0; m < Mp; m++) {
        if (m >= M) {
            off[m] = 0;
            rf[m] = 0;
            continue;
        }
        off[m] = pl_q8_row_offset(pw, m, za, e->bias_i32);
        rf[m] = pl_q8_row_rounds_first(pw, m, za, e);
        fast &= rf[m];
    }
    *x = *e;
    x->row_off = off;
    x->row_fast = rf;
    x->fast = fast;
    x->ilo = x->ihi = 0;
    if (e->out == PL_Q8_OUT_U8 || e->out == PL_Q8_OUT_S8) pl_q8_int_range(e, &x->ilo, &x->ihi);
}

pl_status pl_q8_gemm(const pl_q8_w *pw, const void *panel, const int32_t *asum, int64_t P,
                     int32_t za, const pl_q8_epilogue *e, void *out, int64_t ldm, int64_t ldp,
                     pl_threadpool *pool) {
    if (pw->any_zw && !asum)
        return pl_error(PL_ERR_ARGUMENT, "int8 gemm: weights with zero points need column sums");
    if ((pw->level == PL_Q8_VNNI && !(pl_cpu()->avx512_vnni && pl_cpu()->avx512bw)) ||
        (pw->level == PL_Q8_AVX2 && pl_cpu()->best < PL_ISA_AVX2))
        return pl_error(PL_ERR_UNSUPPORTED, "int8 gemm: weights packed for %s, which this CPU lacks",
                        pl_q8_level_name(pw->level));
    if (pw->M <= 0 || P <= 0) return PL_OK;
    pl_q8_epilogue ex;
    int32_t off_stack[2560], *off = NULL;
    uint8_t rf_stack[2560];
    if ((pw->level == PL_Q8_VNNI || pw->level == PL_Q8_AVX2) && !e->row_off) {
        const int64_t Mp = pl_q8_epi_rows(pw->M);
        off = Mp <= 2560 ? off_stack : malloc((sizeof(int32_t) + 1) * (size_t)Mp);
        if (!off) return pl_error(PL_ERR_NOMEM, "int8 gemm: out of memory");
        pl_q8_epi_prepare(pw, za, e, off, off == off_stack ? rf_stack : (uint8_t *)(off + Mp), &ex);
        e = &ex;
    }
    gemm_job j = {.pw = pw, .im = impl_of(pw->level), .panel = panel, .asum = asum, .P = P,
                  .Pp = pl_q8_pp(P), .za = za, .e = e, .out = out, .ldm = ldm, .ldp = ldp};
    j.col_chunks = j.Pp / 32;
    const int nth = pl_threadpool_size(pool);
    if (!pw->sparse) {
        /* tasks: a few column chunks each with all row tiles, split along rows only when
         * there are too few column tasks for the threads */
        const int64_t nt = (pw->M + pw->mr - 1) / pw->mr;
        /* enough tasks (about 16 per thread) that the last ones even out the threads:
         * with 13 tasks on 2 threads one thread idles for 7% of the layer */
        j.chunks_per_task = nth > 1 && j.col_chunks < 32 * nth ? 1 : 2;
        const int64_t ncol = (j.col_chunks + j.chunks_per_task - 1) / j.chunks_per_task;
        int64_t splits = nth > 1 ? (16 * nth + ncol - 1) / ncol : 1;
        if (splits > nt) splits = nt;
        if (splits < 1) splits = 1;
        j.rows_per_unit = (nt + splits - 1) / splits;
        j.row_units = (nt + j.rows_per_unit - 1) / j.rows_per_unit;
    } else {
        /* columns per task, measured best of 32/64/128 (A-panel reuse against L1/L2 misses);
         * AVX2 256 (of 64..256: its 64-column passes over a u8 panel gain more from
         * spreading the per-row costs than from L1 reuse) */
        j.chunks_per_task = pw->level == PL_Q8_AVX2 ? 8 : 2;
        if (j.chunks_per_task > j.col_chunks) j.chunks_per_task = j.col_chunks;
        const int64_t ncol = (j.col_chunks + j.chunks_per_task - 1) / j.chunks_per_task;
        int64_t want = 8 * nth / ncol + 1; /* row units */
        j.rows_per_unit = (pw->M + want - 1) / want;
        if (j.rows_per_unit < 1) j.rows_per_unit = 1;
        j.row_units = (pw->M + j.rows_per_unit - 1) / j.rows_per_unit;
    }
    const int64_t ntasks = j.row_units * ((j.col_chunks + j.chunks_per_task - 1) / j.chunks_per_task);
    if (ntasks > 0x7fffffff) {
        if (off && off != off_stack) free(off);
        return pl_error(PL_ERR_ARGUMENT, "int8 gemm: too many tiles");
    }
    pl_threadpool_run(pool, gemm_task, &j, (int)ntasks);
    if (off && off != off_stack) free(off);
    return PL_OK;
}

/* ------------------------------------------------------------------ depthwise */

typedef struct dw_job {
    const pl_q8_w *pw;
    const pl_q8_conv_geom *g;
    const uint8_t *x;
    int32_t za;
    const pl_q8_epilogue *e;
    void *out;
    int64_t C, P, in_x, per_task;
    size_t es;
    _Atomic int failed;
} dw_job;

static void dw_task(void *ctx, int task, int thread) {
    (void)thread;
    dw_job *j = ctx;
    const pl_q8_level l = j->pw[0].level;
    const pl_q8_impl *im = impl_of(l);
    int32_t *acc =
        malloc(sizeof(int32_t) * (size_t)(j->P + 16) + pl_q8_dw_scratch_bytes(j->g) + 64);
    if (!acc) {
        j->failed = 1;
        return;
    }
    void *scratch = (void *)(((uintptr_t)(acc + j->P + 16) + 63) & ~(uintptr_t)63);
    const int64_t c0 = task * j->per_task, c1 = c0 + j->per_task < j->C ? c0 + j->per_task : j->C;
    for (int64_t c = c0; c < c1; c++) {
        const pl_q8_w *pw = &j->pw[c];
        int8_t w[64];
        for (int64_t k = 0; k < pw->K; k++) /* the taps back from the packed row 0 */
            w[k] = l == PL_Q8_AVX2
                       ? (int8_t)((const int16_t *)pw->data)[(k / 4 * pw->mr) * 4 + k % 4]
                       : ((const int8_t *)pw->data)[(k / 4 * pw->mr) * 4 + k % 4];
        const uint8_t *xc = j->x + c * j->in_x;
        if (l == PL_Q8_VNNI)
            pl_q8_dw_raw_avx512(j->g, xc, (uint8_t)j->za, w, acc, scratch);
        else if (l == PL_Q8_AVX2)
            pl_q8_dw_raw_avx2(j->g, xc, (uint8_t)j->za, w, acc, scratch);
        else
            pl_q8_dw_raw_ref(j->g, xc, (uint8_t)j->za, w, acc);
        pl_q8_epilogue e = *j->e;
        if (e.scale) e.scale += c;
        if (e.bias_i32) e.bias_i32 += c;
        if (e.fbias) e.fbias += c;
        if (e.res) e.res += c * j->P;
        im->epi(pw, 0, acc, NULL, j->za, 0, j->P, &e, (char *)j->out + (size_t)(c * j->P) * j->es,
                j->P, 1);
    }
    free(acc);
}

pl_status pl_q8_dwconv(const pl_q8_w *pw, int64_t C, const pl_q8_conv_geom *g, const uint8_t *x,
                       int32_t za, const pl_q8_epilogue *e, void *out, pl_threadpool *pool) {
    if (g->ndim != 2 || g->C != 1 || g->k[0] * g->k[1] > 64 || g->stride[0] != g->stride[1] ||
        g->stride[0] < 1 || g->stride[0] > 2)
        return pl_error(PL_ERR_ARGUMENT,
                        "int8 depthwise: not a 2-D depthwise convolution of stride 1 or 2");
    for (int64_t c = 0; c < C; c++)
        if (pw[c].any_zw || pw[c].sparse || pw[c].M != 1 || pw[c].K != g->k[0] * g->k[1])
            return pl_error(PL_ERR_ARGUMENT,
                            "int8 depthwise: weights must be dense without zero points");
    dw_job j = {.pw = pw,
                .g = g,
                .x = x,
                .za = za,
                .e = e,
                .out = out,
                .C = C,
                .P = g->out[0] * g->out[1],
                .in_x = g->in[0] * g->in[1],
                .es = e->out == PL_Q8_OUT_U8 || e->out == PL_Q8_OUT_S8 ? 1 : 4};
    const int64_t want = 8 * (int64_t)pl_threadpool_size(pool);
    j.per_task = (C + want - 1) / want;
    if (j.per_task < 1) j.per_task = 1;
    const int64_t nt = (C + j.per_task - 1) / j.per_task;
    if (nt > 0) pl_threadpool_run(pool, dw_task, &j, (int)nt);
    if (j.failed) return pl_error(PL_ERR_NOMEM, "int8 depthwise: out of memory");
    return PL_OK;
}

/* ------------------------------------------------------------------ QLinearAdd */

typedef struct add_job {
    const uint8_t *a, *b;
    uint8_t *y;
    int64_t n, chunk;
    const pl_q8_add_params *p;
    pl_q8_add_fn fn;
} add_job;

static void add_task(void *ctx, int task, int thread) {
    (void)thread;
    const add_job *j = ctx;
    const int64_t i0 = task * j->chunk;
    const int64_t n = j->n - i0 < j->chunk ? j->n - i0 : j->chunk;
    j->fn(j->a + i0, j->b + i0, j->y + i0, n, j->p);
}

void pl_q8_add_u8(const uint8_t *a, const uint8_t *b, uint8_t *y, int64_t n,
                  const pl_q8_add_params *p, pl_threadpool *pool) {
    const pl_q8_level l = pl_q8_level_now();
    add_job j = {a, b, y, n, 16384, p,
                 l == PL_Q8_VNNI ? pl_q8_add_u8_avx512 : l == PL_Q8_AVX2 ? pl_q8_add_u8_avx2 : pl_q8_add_u8_ref};
    const int64_t nt = (n + j.chunk - 1) / j.chunk;
    if (nt > 0) pl_threadpool_run(pool, add_task, &j, (int)nt);
}

/* ------------------------------------------------------------------ table lookup */

typedef struct lut_job {
    const uint8_t *x;
    uint8_t *y;
    int64_t n, chunk;
    const uint8_t *t;
    pl_q8_lut_fn fn;
} lut_job;

static void lut_task(void *ctx, int task, int thread) {
    (void)thread;
    const lut_job *j = ctx;
    const int64_t i0 = task * j->chunk;
    j->fn(j->x + i0, j->y + i0, j->n - i0 < j->chunk ? j->n - i0 : j->chunk, j->t);
}

void pl_q8_lut(const uint8_t *x, uint8_t *y, int64_t n, const uint8_t t[256], pl_threadpool *pool) {
    const pl_q8_level l = pl_q8_level_now();
    lut_job j = {x, y, n, 32768, t,
                 l == PL_Q8_VNNI && pl_cpu()->avx512_vbmi ? pl_q8_lut_vbmi
                 : l >= PL_Q8_AVX2                     ? pl_q8_lut_avx2
                                                       : pl_q8_lut_ref};
    const int64_t nt = (n + j.chunk - 1) / j.chunk;
    if (nt > 0) pl_threadpool_run(pool, lut_task, &j, (int)nt);
}
