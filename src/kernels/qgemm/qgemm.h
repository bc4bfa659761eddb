/* qgemm.h -- the INT8 GEMM engine: u8 activations x s8 weights, exact 32-bit
 * accumulation, packed weights, a fused requantisation epilogue, threaded.
 *
 * It computes, for output channel m < M and column (pixel / row) p < P,
 *
 *   acc[m][p] = sum_k (a[k][p] - za) * (w[m][k] - zw[m])        (int32, wraps)
 *
 * from the raw product sum_k a*w and the precomputed corrections (row sums of w, column
 * sums of a when some zw != 0), then the epilogue:
 *
 *   I32:  out = acc + bias_i32[m]
 *   F32:  y = fmaf((float)(acc + bias_i32[m]), scale[m], fbias[m]); y = fmaf(res, rscale, y);
 *         y = min(max(y, lo), hi); out = y
 *   U8/S8: as F32 with lo/hi also clamped to [qmin - zp, qmax - zp], then
 *         out = nearbyintf(y) + zp (round half to even)
 * (absent terms are skipped; every level does exactly these float operations, so all
 * levels give bit-identical results -- the vector levels round before clamping, in
 * integers, where rounding is monotone and cannot overflow, which gives the same values).
 *
 * Activations are packed per run into the "A panel": K rounded up to 4 (Kp), P rounded
 * up to 32 (Pp), laid out [Kp/4][Pp][4] -- four consecutive k of one column side by side,
 * the operand of one vpdpbusd lane, u8 elements on every level (the AVX2 dense tiles
 * widen them to int16 in registers for an exact vpmaddwd; the AVX2 sparse rows use
 * vpmaddubsw on weight groups proven not to saturate, see pl_q8_pack_w).
 * s8 activations are packed as u8 by flipping the sign bit (za + 128).
 *
 * Weights are packed once (pl_q8_pack_w) for the level in force, dense (row tiles of MR)
 * or block-sparse: per row, the list of non-zero groups of 4 consecutive k. */
#ifndef PL_KERNELS_QGEMM_H
#define PL_KERNELS_QGEMM_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/cpu.h"
#include "core/status.h"
#include "core/threadpool.h"

typedef enum pl_q8_out { PL_Q8_OUT_I32 = 0, PL_Q8_OUT_F32, PL_Q8_OUT_U8, PL_Q8_OUT_S8 } pl_q8_out;

typedef struct pl_q8_epilogue {
    pl_q8_out out;
    const int32_t *bias_i32; /* M values or NULL */
    const float *scale;      /* M values (F32/U8/S8) */
    const float *fbias;      /* M values or NULL, added after scaling */
    const float *res;        /* float residual laid out like the output, or NULL */
    float rscale;
    float lo, hi; /* activation clamp in output units (-inf/+inf: none) */
    int32_t zp;   /* U8/S8 output zero point */
    /* Set by pl_q8_gemm for the level kernels (callers leave them zero): per row, the
     * zero-point and bias terms (pl_q8_row_offset; zeros past M, to a row tile's end)
     * and whether its u8 / s8 output may round before clamping (row_fast[m], the "fast"
     * form, see qgemm_avx512.c; pl_q8_row_rounds_first), fast when every row may, and
     * the integer clamps ilo / ihi of that form (zero point included). */
    const int32_t *row_off;
    const uint8_t *row_fast;
    bool fast;
    int32_t ilo, ihi;
} pl_q8_epilogue;

/* Whether a u8 / s8 output of row m may round before clamping (the vector levels' "fast"
 * epilogue: rounding is monotone, so clamping the rounded value in integers gives ref.c's
 * values) -- it needs y = scale * v + fbias not to overflow int32 when rounded. Either
 * |scale| <= 0.25 and |fbias| <= 2^28 (|y| < 2^30 for any int32 v), or the row's own
 * bound: v = sum a * w - za * rowsum + bias with a in [0, 255], so |v| <= 255 * wabs +
 * |za * rowsum| + |bias| =: V; if V < 2^31 (v does not wrap), |scale| * V + |fbias|
 * <= 2^30. Pruned rows with large per-channel scales pass by the second. */
static inline bool pl_q8_row_fast(const int64_t *wabs, const int32_t *rowsum, int64_t m, int32_t za,
                                  const int32_t *bias_i32, float scale, float fbias) {
    const double s = scale < 0 ? -(double)scale : (double)scale;
    const double b = fbias < 0 ? -(double)fbias : (double)fbias;
    if (s <= 0.25 && b <= 268435456.0) return true;
    if (!(s <= 1e30) || !(b <= 1e30)) return false; /* NaN, inf */
    double v = 255.0 * (double)wabs[m], t = (double)za * (double)rowsum[m];
    v += t < 0 ? -t : t;
    if (bias_i32) v += bias_i32[m] < 0 ? -(double)bias_i32[m] : (double)bias_i32[m];
    return v < 2147483648.0 && s * v + b <= 1073741824.0;
}

/* The clamp of a float / u8 / s8 output in output units (zero point excluded): e->lo,
 * e->hi, narrowed for u8 / s8 to the type's range less the zero point. */
static inline void pl_q8_out_range(const pl_q8_epilogue *e, float *lo, float *hi) {
    *lo = e->lo;
    *hi = e->hi;
    if (e->out == PL_Q8_OUT_U8 || e->out == PL_Q8_OUT_S8) {
        const bool u8 = e->out == PL_Q8_OUT_U8;
        const float qlo = (u8 ? 0.0f : -128.0f) - (float)e->zp, qhi = (u8 ? 255.0f : 127.0f) - (float)e->zp;
        *lo = *lo > qlo ? *lo : qlo;
        *hi = *hi < qhi ? *hi : qhi;
    }
}

/* The integer clamps of the fast form (rounded, zero point included). */
static inline void pl_q8_int_range(const pl_q8_epilogue *e, int32_t *ilo, int32_t *ihi) {
    float lo, hi;
    pl_q8_out_range(e, &lo, &hi);
    *ilo = (int32_t)nearbyintf(lo) + e->zp;
    *ihi = (int32_t)nearbyintf(hi) + e->zp;
}

/* The kernel level a packing is for. */
typedef enum pl_q8_level { PL_Q8_REF = 0, PL_Q8_AVX2 = 1, PL_Q8_VNNI = 2 } pl_q8_level;

/* Packed weights (owned; free with pl_q8_w_free). */
typedef struct pl_q8_w {
    pl_q8_level level;
    bool sparse;
    int64_t M, K, Kp;
    int mr;          /* dense row tile */
    void *data;      /* dense: [ceil(M/mr)][Kp/4][mr][4] s8 (AVX2: int16) */
    int32_t *rowsum; /* M: sum_k w[m][k] (the packed, signed weights) */
    int64_t *wabs;   /* M: sum_k |w[m][k]| (bounds a row's sums, see pl_q8_row_fast) */
    int32_t *zw;     /* M: weight zero points (of the signed weights) */
    bool any_zw;     /* some zw != 0: the kernel needs column sums of a */
    /* sparse: row m's entries are idx[ptr[m] .. ptr[m+1]) (group numbers g, the 4 s8
     * weights of entry j at vals[4 * j]); one entry per non-zero group, except on AVX2,
     * where a group with a weight pair that vpmaddubsw could saturate (same sign and
     * |w0| + |w1| > 128, qsplit.h) is two entries of the same g, (w0, 0, w2, 0) and
     * (0, w1, 0, w3), or one permuted entry and a marker (qsplit.h) */
    int64_t *ptr;
    int32_t *idx;
    void *vals;
    int64_t nnz_groups; /* non-zero groups */
    int64_t nent;       /* entries (>= nnz_groups) */
} pl_q8_w;

/* The level pl_cpu_isa() allows for int8 (VNNI needs avx512_vnni). */
pl_q8_level pl_q8_level_now(void);
const char *pl_q8_level_name(pl_q8_level l);

/* Fraction of the groups of 4 consecutive k (per row) that are all zero in w. w is
 * M x K, row stride ldw; zero means equal to the row's zero point. */
double pl_q8_group_sparsity(const int8_t *w, int64_t M, int64_t K, int64_t ldw,
                            const int32_t *zw);

/* Packs w (M x K signed, row stride ldw; zw: M zero points or NULL for all 0) for
 * `level`, dense or block-sparse. Errors: out of memory, bad sizes. */
pl_status pl_q8_pack_w(pl_q8_w *pw, const int8_t *w, int64_t M, int64_t K, int64_t ldw,
                       const int32_t *zw, pl_q8_level level, bool sparse);
void pl_q8_w_free(pl_q8_w *pw);

/* Row m's terms of the corrected sum besides the raw products and the column term
 * -zw[m] * asum[p]: -za * rowsum[m] + zw[m] * za * K + bias[m] (int32, wrapping). */
static inline int32_t pl_q8_row_offset(const pl_q8_w *pw, int64_t m, int32_t za,
                                       const int32_t *bias_i32) {
    uint32_t o = 0u - (uint32_t)za * (uint32_t)pw->rowsum[m];
    if (pw->zw[m]) o += (uint32_t)pw->zw[m] * (uint32_t)za * (uint32_t)pw->K;
    if (bias_i32) o += (uint32_t)bias_i32[m];
    return (int32_t)o;
}

/* Whether row m's output may take the fast form: u8 / s8, no residual, no weight zero
 * point (the form skips the column term) and pl_q8_row_fast's bound. */
static inline bool pl_q8_row_rounds_first(const pl_q8_w *pw, int64_t m, int32_t za,
                                          const pl_q8_epilogue *e) {
    return (e->out == PL_Q8_OUT_U8 || e->out == PL_Q8_OUT_S8) && !e->res && !pw->zw[m] &&
           pl_q8_row_fast(pw->wabs, pw->rowsum, m, za, e->bias_i32, e->scale[m],
                          e->fbias ? e->fbias[m] : 0.0f);
}

/* A panel geometry for P columns and Kp rows. */
static inline int64_t pl_q8_pp(int64_t P) { return (P + 31) / 32 * 32; }
/* Bytes of the A panel (the column sums, when wanted, are Pp int32 more, elsewhere). */
size_t pl_q8_panel_bytes(pl_q8_level level, int64_t Kp, int64_t P);

/* Convolution geometry for im2col packing (one image, one group). */
typedef struct pl_q8_conv_geom {
    int ndim;                          /* spatial dims, 1..3 */
    int64_t C;                         /* input channels of the group */
    int64_t in[3], out[3], k[3], stride[3], pad[3], dil[3];
} pl_q8_conv_geom;

/* Packs the A panel of a convolution: k = tap * C + c (tap: the kernel position in C
 * order; weights must be packed in the same order), p = output position;
 * x is [C][in...] u8 (xor 0x80 applied when s8), taps outside read as pad (the zero
 * point). asum (Pp int32 or NULL) gets sum_k a[k][p]. Threaded over groups of k. */
pl_status pl_q8_im2col(pl_q8_level level, const pl_q8_conv_geom *g, const uint8_t *x, uint8_t flip,
                       uint8_t pad, void *panel, int32_t *asum, pl_threadpool *pool);
/* Packs the A panel of a matrix product: column p = row p of x (P x K, row stride ldx),
 * k along the row. */
pl_status pl_q8_pack_rows(pl_q8_level level, const uint8_t *x, int64_t P, int64_t K, int64_t ldx,
                          uint8_t flip, void *panel, int32_t *asum, pl_threadpool *pool);

/* The per-call part of the level kernels' epilogue (row offsets, which rows may round
 * first, the integer clamps), made ahead for weights pw and activation zero point za:
 * *x = *e with row_off / row_fast pointing into off (pl_q8_epi_rows(M) values) and rf
 * (as many). pl_q8_gemm makes it per call when e->row_off is NULL and takes it as given
 * otherwise (the caller passes the same pw and za). Not for pl_q8_dwconv. */
static inline int64_t pl_q8_epi_rows(int64_t M) { return (M + 15) / 16 * 16 + 16; }
void pl_q8_epi_prepare(const pl_q8_w *pw, int32_t za, const pl_q8_epilogue *e, int32_t *off,
                       uint8_t *rf, pl_q8_epilogue *x);

/* out element (m, p) is at out + m * ldm + p * ldp (in elements of the output type). */
pl_status pl_q8_gemm(const pl_q8_w *pw, const void *panel, const int32_t *asum, int64_t P,
                     int32_t za, const pl_q8_epilogue *e, void *out, int64_t ldm, int64_t ldp,
                     pl_threadpool *pool);

/* ---- implicit-GEMM KxK convolution (VNNI, qconv.c): no A panel ----
 *
 * The image is laid out once per run as its stride phases with the padding, channels
 * interleaved by 4: [s * s phases][C / 4][Hq][Wq][4] u8 (by pl_q8_iconv_run). Tap t of
 * output column p = (oh, ow) then sits at byte tapoff[t] + q * cstride + (oh * Wq + ow) * 4
 * for channel quad q, so the tile loads the 4 bytes of a weight group straight from the
 * image (masked loads, one per run of the 16 columns that stays in one output row)
 * instead of from an im2col copy. Weights are packed as for pl_q8_im2col (k = tap * C +
 * c). */
#define PL_Q8_ICONV_MAXTAPS 64
typedef struct pl_q8_iconv {
    const uint8_t *x;  /* the built image (made by pl_q8_iconv_run) */
    int64_t cq;        /* channel quads C / 4 */
    int64_t cstride;   /* bytes between channel quads */
    int64_t Wq, OW;    /* row length of a phase plane, output columns per row */
    int ntaps;
    int64_t tapoff[PL_Q8_ICONV_MAXTAPS]; /* bytes from x to tap t's column 0 */
} pl_q8_iconv;

/* Whether the implicit path runs geometry g at `level` with weights pw and input flip:
 * VNNI, 2-D, C a multiple of 4, strides 1 or 2, at least 5 output columns (at most 4
 * row runs per 16 columns), dense weights without zero points, u8 input (flip 0). */
bool pl_q8_iconv_ok(pl_q8_level level, const pl_q8_conv_geom *g, const pl_q8_w *pw, uint8_t flip);
/* Scratch bytes of the built image (with a 64-byte margin before and after). */
size_t pl_q8_iconv_bytes(const pl_q8_conv_geom *g);
/* The convolution of x ([C][H][W] u8, one image, one group) with pw, epilogue e, into
 * out ([M][OH * OW] of e->out's type, row stride ldm), scratch of pl_q8_iconv_bytes(g);
 * pad is the value outside the image (the zero point). Threaded. */
pl_status pl_q8_iconv_run(const pl_q8_w *pw, const pl_q8_conv_geom *g, const uint8_t *x, uint8_t pad,
                          int32_t za, const pl_q8_epilogue *e, void *out, int64_t ldm, void *scratch,
                          pl_threadpool *pool);
/* The level kernels (qgemm_avx512.c): tile mt at columns [p0, p0 + n), n <= 32, with the
 * epilogue (e prepared, pl_q8_epi_prepare), and one column's raw sums (acc[r]). */
void pl_q8_iconv_tile_vnni(const pl_q8_w *pw, int64_t mt, const pl_q8_iconv *ic, int64_t p0,
                           int64_t n, int32_t za, const pl_q8_epilogue *e, void *out, int64_t ldm);
void pl_q8_iconv_gemv_vnni(const pl_q8_w *pw, int64_t mt, const pl_q8_iconv *ic, int64_t p,
                           int32_t *acc);

/* The plain reference of the whole computation (unpacked operands): a is K x P (row
 * stride lda) u8, w is M x K s8, zw per row (NULL: 0). For tests. */
void pl_q8_gemm_ref(const uint8_t *a, int64_t lda, int32_t za, const int8_t *w, int64_t ldw,
                    const int32_t *zw, int64_t M, int64_t K, int64_t P, const pl_q8_epilogue *e,
                    void *out, int64_t ldm, int64_t ldp);

/* ---- depthwise convolution (one input channel per output channel) ---- */

/* Raw sums of one 2-D channel plane (g->C == 1): acc[oh * OW + ow] = sum over the taps of
 * a * w[kh * KW + kw], a = the input value or `pad` outside the image (the zero point,
 * so that pl_q8_dwconv's zero-point terms cancel it). ref.c is the definition; the
 * AVX2 / AVX-512 twins (qdw_rows.inc) run row-wise so that compilers vectorize them. */
void pl_q8_dw_raw_ref(const pl_q8_conv_geom *g, const uint8_t *x, uint8_t pad, const int8_t *w,
                      int32_t *acc);
/* scratch: pl_q8_dw_scratch_bytes(g) bytes */
void pl_q8_dw_raw_avx2(const pl_q8_conv_geom *g, const uint8_t *x, uint8_t pad, const int8_t *w,
                       int32_t *acc, void *scratch);
void pl_q8_dw_raw_avx512(const pl_q8_conv_geom *g, const uint8_t *x, uint8_t pad, const int8_t *w,
                         int32_t *acc, void *scratch);
/* The fast twins handle strides 1 and 2 (equal in both dims); pl_q8_dwconv checks. The
 * scratch holds the s * s phase planes (each rounded up to 64 bytes) and the Hq * Wq + 16
 * sums after them: the twins' blocks of 16 read up to 15 bytes past a plane's used
 * part (into the next plane or the sums) and write up to 15 sums past N. */
static inline size_t pl_q8_dw_scratch_bytes(const pl_q8_conv_geom *g) {
    const int64_t s = g->stride[0];
    const int64_t Hq = g->out[0] + ((g->k[0] - 1) * g->dil[0]) / s;
    const int64_t Wq = g->out[1] + ((g->k[1] - 1) * g->dil[1]) / s;
    return (size_t)((Hq * Wq + 63) / 64 * 64 * s * s + 4 * Hq * Wq + 64);
}

/* A depthwise 2-D convolution of C channels: channel c of x ([C][H][W] u8, s8 flipped by
 * the caller) with the weights packed in pw[c] (M = 1, K = taps, no weight zero points),
 * the epilogue e with scale / bias_i32 / fbias indexed by channel, into out
 * ([C][OH][OW] of e->out's type). Threaded over channels. Errors: weights with zero
 * points (use the GEMM), out of memory. */
pl_status pl_q8_dwconv(const pl_q8_w *pw, int64_t C, const pl_q8_conv_geom *g, const uint8_t *x,
                       int32_t za, const pl_q8_epilogue *e, void *out, pl_threadpool *pool);

/* ---- internal: per-level kernels (qgemm_avx2.c, qgemm_avx512.c, ref.c) ---- */

/* Raw products for rows [m0, m0 + mr) (one dense row tile, index mt) and columns
 * [p0, p0 + np) (np <= 32, p0 a multiple of 32): acc[r][j] = sum_k a*w, row stride 32. */
typedef void (*pl_q8_tile_fn)(const pl_q8_w *pw, int64_t mt, const void *panel, int64_t Pp,
                              int64_t p0, int32_t *acc);
/* Raw products of one sparse row m for columns [p0, p0 + 32 * nb): acc[j]. */
typedef void (*pl_q8_srow_fn)(const pl_q8_w *pw, int64_t m, const void *panel, int64_t Pp,
                              int64_t p0, int nb, int32_t *acc);
/* The epilogue of n outputs of row m from raw sums (acc[j] for column p0 + j). */
typedef void (*pl_q8_epi_fn)(const pl_q8_w *pw, int64_t m, const int32_t *acc,
                             const int32_t *asum, int32_t za, int64_t p0, int64_t n,
                             const pl_q8_epilogue *e, void *out, int64_t ldm, int64_t ldp);

/* Optional: a dense tile with the epilogue applied in registers, for outputs with
 * contiguous rows (ldp == 1); n <= 32 columns from p0. */
typedef void (*pl_q8_tile_epi_fn)(const pl_q8_w *pw, int64_t mt, const void *panel, int64_t Pp,
                                  int64_t p0, int64_t n, const int32_t *asum, int32_t za,
                                  const pl_q8_epilogue *e, void *out, int64_t ldm);

/* Optional: one sparse row (as pl_q8_srow_fn) with the epilogue in registers, n
 * contiguous outputs. */
typedef void (*pl_q8_srow_epi_fn)(const pl_q8_w *pw, int64_t m, const void *panel, int64_t Pp,
                                  int64_t p0, int nb, int64_t n, const int32_t *asum, int32_t za,
                                  const pl_q8_epilogue *e, void *out, int64_t ldm);

/* Optional: the raw sums of the rows of dense tile mt at the one column p: acc[r]. Used
 * for chunks of at most PL_Q8_GEMV_MAX columns (2, or 8 when K is large enough that the
 * per-column epilogue calls do not dominate). */
typedef void (*pl_q8_gemv_fn)(const pl_q8_w *pw, int64_t mt, const void *panel, int64_t Pp,
                              int64_t p, int32_t *acc);
#define PL_Q8_GEMV_MAX 8

/* Optional: the epilogue of dense tile mt (raw sums acc[r][j], row stride 32) for an
 * output with ldm == 1 (rows contiguous) and columns at stride ldp. */
typedef void (*pl_q8_epi_t_fn)(const pl_q8_w *pw, int64_t mt, const int32_t *acc,
                               const int32_t *asum, int32_t za, int64_t p0, int64_t n,
                               const pl_q8_epilogue *e, void *out, int64_t ldp);

typedef struct pl_q8_impl {
    pl_q8_level level;
    int mr;
    pl_q8_tile_fn tile;
    pl_q8_srow_fn srow;
    pl_q8_epi_fn epi;
    pl_q8_tile_epi_fn tile_epi;   /* or NULL */
    pl_q8_srow_epi_fn srow_epi;   /* or NULL */
    pl_q8_gemv_fn gemv;           /* or NULL */
    pl_q8_tile_epi_fn tile16_epi; /* or NULL: tile_epi for n <= 16 columns */
    pl_q8_epi_t_fn epi_t;         /* or NULL: the epilogue of a tile for ldm == 1 */
} pl_q8_impl;

const pl_q8_impl *pl_q8_impl_ref(void);
const pl_q8_impl *pl_q8_impl_avx2(void);
const pl_q8_impl *pl_q8_impl_vnni(void);

/* The scalar epilogue (ref.c), also used by the fast levels for strided outputs. */
void pl_q8_epi_scalar(const pl_q8_w *pw, int64_t m, const int32_t *acc, const int32_t *asum,
                      int32_t za, int64_t p0, int64_t n, const pl_q8_epilogue *e, void *out,
                      int64_t ldm, int64_t ldp);



/* ---- element-wise: the sum of two quantized tensors (QLinearAdd) ---- */

typedef struct pl_q8_add_params {
    float ra, rb;  /* a_scale / y_scale, b_scale / y_scale */
    float fixed;   /* zy - (ra * za + rb * zb), the zero points folded in */
    float lo, hi;  /* clamp before rounding, in output units (zero point included) */
} pl_q8_add_params;

/* y[i] = nearbyintf(min(max(fmaf(a, ra, fmaf(b, rb, fixed)), lo), hi)), u8 in and out,
 * same shapes, threaded: ONNX Runtime's QLinearAdd arithmetic (so results match it bit
 * for bit). Every level gives identical results. */
void pl_q8_add_u8(const uint8_t *a, const uint8_t *b, uint8_t *y, int64_t n,
                  const pl_q8_add_params *p, pl_threadpool *pool);
typedef void (*pl_q8_add_fn)(const uint8_t *a, const uint8_t *b, uint8_t *y, int64_t n,
                             const pl_q8_add_params *p);
void pl_q8_add_u8_ref(const uint8_t *a, const uint8_t *b, uint8_t *y, int64_t n, const pl_q8_add_params *p);
void pl_q8_add_u8_avx2(const uint8_t *a, const uint8_t *b, uint8_t *y, int64_t n, const pl_q8_add_params *p);
void pl_q8_add_u8_avx512(const uint8_t *a, const uint8_t *b, uint8_t *y, int64_t n, const pl_q8_add_params *p);
/* ---- element-wise: a table lookup on 8-bit values (QLut) ---- */

/* y[i] = t[x[i]] for i < n, threaded; every level gives identical results (the table is
 * the whole computation). */
void pl_q8_lut(const uint8_t *x, uint8_t *y, int64_t n, const uint8_t t[256], pl_threadpool *pool);
typedef void (*pl_q8_lut_fn)(const uint8_t *x, uint8_t *y, int64_t n, const uint8_t t[256]);
void pl_q8_lut_ref(const uint8_t *x, uint8_t *y, int64_t n, const uint8_t t[256]);
/* 16 vpshufb lookups (one per high nibble) per 32 bytes */
void pl_q8_lut_avx2(const uint8_t *x, uint8_t *y, int64_t n, const uint8_t t[256]);
/* AVX-512 VBMI (vpermi2b, two 128-entry halves); only where pl_cpu()->avx512_vbmi */
void pl_q8_lut_vbmi(const uint8_t *x, uint8_t *y, int64_t n, const uint8_t t[256]);

/* 2-D max pooling of one plane x [H][W] into y [OH][OW] (kernel k, stride s, leading
 * pads pad; padding ignored). flip 0x80 for int8 data (compared as signed). tmp holds
 * H * OW bytes. An output whose window holds no input gets the type's minimum. */
void pl_q8_maxpool2d(const uint8_t *x, int64_t H, int64_t W, uint8_t *y, int64_t OH, int64_t OW,
                     const int64_t k[2], const int64_t s[2], const int64_t pad[2], uint8_t flip,
                     uint8_t *tmp);
/* t[i] = max over j < k of (x[i * s + j] ^ flip), i < n, s 1 or 2 (the row pass of the
 * pooling; reads x[0 .. (n - 1) * s + k - 1] only). */
void pl_q8_maxrow_avx512(const uint8_t *x, int64_t n, int64_t k, int64_t s, uint8_t flip,
                         uint8_t *t);
/* The same with AVX2 (any k, s 1 or 2; reads the same bytes). */
void pl_q8_maxrow_avx2(const uint8_t *x, int64_t n, int64_t k, int64_t s, uint8_t flip, uint8_t *t);
/* Interleaves 4 rows of n bytes into d[4 * p + t] = r[t][p] (the u8 A panel). */
void pl_q8_interleave4_avx512(const uint8_t *const r[4], int64_t n, uint8_t *d);
void pl_q8_interleave4_avx2(const uint8_t *const r[4], int64_t n, uint8_t *d);
/* The u8 interleave of every second byte: d[4 * p + t] = r[t][2 * p] (stride-2 convs). */
void pl_q8_interleave4_s2_avx512(const uint8_t *const r[4], int64_t n, uint8_t *d);
/* Row r < nrows of n bytes: dst + r * ds gets src + r * ss (inline vector copies). */
void pl_q8_copy_rows_avx512(const uint8_t *src, int64_t ss, uint8_t *dst, int64_t ds,
                            int64_t nrows, int64_t n);
/* dst[p] = src[2 * p] for p < n, 32-bit elements (reads src[0 .. 2n - 2] only). */
void pl_q8_gather_dw_s2_avx512(const uint32_t *src, int64_t n, uint32_t *dst);
void pl_q8_gather_dw_s2_avx2(const uint32_t *src, int64_t n, uint32_t *dst);
/* dst[p] = src[2 * p] ^ flip for p < n (reads src[0 .. 2n - 2] only). */
void pl_q8_copy_s2_avx512(const uint8_t *src, int64_t n, uint8_t *dst, uint8_t flip);
void pl_q8_copy_s2_avx2(const uint8_t *src, int64_t n, uint8_t *dst, uint8_t flip);
#endif
