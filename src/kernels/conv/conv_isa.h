/* conv_isa.h -- internal: the per-ISA inner kernels of the fast convolutions
 * (conv_avx512.c, conv_avx2.c, conv_generic.c), filled into one table per level.
 * Plain arrays only. */
#ifndef PL_KERNELS_CONV_ISA_H
#define PL_KERNELS_CONV_ISA_H

#include <stdbool.h>
#include <stdint.h>

#include "core/cpu.h"

#define CF_MR_MAX 16

/* Epilogue a micro-kernel applies to its tile before the store (last K block): row i
 * gets bias[i] (NULL: none), then res[i*ldr + j] (NULL: none), then is clamped to
 * [lo, hi] (ReLU, ReLU6, Clip; +-inf for none). */
typedef struct cf_tile_epi {
    const float *bias;
    const float *res;
    int64_t ldr;
    float lo, hi;
    bool stream; /* full, 64-byte aligned rows may bypass the caches (non-temporal) */
} cf_tile_epi;

/* C[0..r)[0..nr) = (accumulate ? C : 0) + A * B over kc steps, then the epilogue e
 * (NULL: none). a: packed A sliver, kc groups of MR floats; b: row k at b + k*ldb, nr
 * valid floats (a packed sliver has ldb == NR and is zero-padded). Rows r..MR-1 of the
 * sliver are ignored. */
typedef void (*cf_ukernel)(int64_t kc, const float *a, const float *b, int64_t ldb, float *c,
                           int64_t ldc, int nr, int accumulate, const cf_tile_epi *e);

/* A run of B sliver columns (output pixels of one output row): lanes [lane, lane + len),
 * all within one vector of vl lanes, read src + koff[k] + off + (l - lane) in row k. */
typedef struct cf_bseg {
    int lane, len;
    int64_t off;
    int vec;        /* lane / vl */
    uint32_t mask;  /* the lanes within that vector */
    int64_t base;   /* off - lane % vl: where lane 0 of the vector would read */
} cf_bseg;

/* Packs nsv slivers of kc rows, ld lanes each (NR for B slivers, MR for A slivers of
 * pixels): sliver v (segments seg[first[v]] .. seg[first[v+1]-1]) at dst + v*sstride,
 * row k at + k*ld, lanes no segment covers 0. Walks k outermost, so each input row is
 * read front to back (sstride should not be a multiple of 4 KiB: the stores of one row
 * would all fall in one L1 set). */
typedef void (*cf_pack_b)(const float *src, const int64_t *koff, int64_t kc, int nsv,
                          const cf_bseg *seg, const int *first, float *dst, int ld,
                          int64_t sstride);

/* Stores an mr x nr tile t (row stride ldt) transposed: y[j*ldy + i] = clamp(t[i][j] +
 * bias[j] + res[j*ldy + i], lo, hi) (bias, res may be NULL). */
typedef void (*cf_store_t)(const float *t, int ldt, int mr, int nr, float *y, int64_t ldy,
                           const float *bias, const float *res, float lo, float hi);

/* One output plane of a direct (depthwise) convolution or pooling from prepared input
 * planes: y[oy*OW + ox] = op over taps t of x[tap_off[t] + oy*ldx + ox], where
 *   DW:  bias + sum_t w[t] * x
 *   MAX: max_t x
 *   AVG: (sum_t x) * scale_y[oy] * scale_x[ox]
 * (The prepared planes hold padding, so every read is in bounds.) */
typedef void (*cf_dw_plane)(const float *x, const int64_t *tap_off, const float *w, int ntaps,
                            float bias, int64_t OH, int64_t OW, int64_t ldx, float *y);
typedef void (*cf_max_plane)(const float *x, const int64_t *tap_off, int ntaps, int64_t OH,
                             int64_t OW, int64_t ldx, float *y);
typedef void (*cf_avg_plane)(const float *x, const int64_t *tap_off, int ntaps, int64_t OH,
                             int64_t OW, int64_t ldx, const float *scale_y,
                             const float *scale_x, float *y);

/* Max pooling 3x3, stride 2, dilation 1 of one H x W plane read in place (no padded
 * copy): y[oy*OW + ox] = max of x[iy][ix] over iy = 2 oy - PT + 0..2, ix = 2 ox - PL +
 * 0..2 inside the plane (-inf when none is). */
typedef void (*cf_max3s2_plane)(const float *x, int64_t H, int64_t W, int64_t PT, int64_t PL,
                                int64_t OH, int64_t OW, float *y);

/* A direct depthwise convolution of one plane without preparation (strides 1 and 2):
 * vectors of vl output columns; for chunk j (columns j*vl..) and tap column kx, the
 * input column of lane 0 is ix0[j*KW + kx] and mask[j*KW + kx] says which lanes (stride
 * 1) or which of the 2*vl loaded floats (stride 2) lie inside the row. Rows outside the
 * input read zero_row (W zeros). The result is clamped to [lo, hi]. */
typedef struct cf_dw_geom {
    int64_t H, W, OH, OW, KH, KW, SH, SW, PT, PL, DH, DW;
    int64_t nch;
    const int64_t *ix0;
    const uint32_t *mask;
    const float *zero_row;
    float lo, hi;
} cf_dw_geom;

typedef void (*cf_dw_direct)(const cf_dw_geom *g, const float *x, const float *w, float bias,
                             float *y);

/* Winograd F(4x4, 3x3). A vector of vl tiles is described by segments: lanes [lane,
 * lane + len) are consecutive tiles of one tile row; the 6x6 input patch of lane l is
 * element (i, j) at src + tap_off[6i + j] + in + (l - lane), its 4x4 output block starts
 * at y + out + 4 (l - lane) (row stride OW) and has `rows` valid rows and 4 valid
 * columns, except the segment's last tile: last_cols. */
typedef struct cf_wseg {
    int lane, len, rows, last_cols;
    int64_t in, out;
} cf_wseg;

/* Input transform of one channel for one vector of tiles: dst[xi*ld + l] = (B^T d B)[xi]
 * (lanes outside every segment get 0). */
typedef void (*cf_wino_in)(const float *src, const int64_t *tap_off, const cf_wseg *seg,
                           int nseg, float *dst, int64_t ld);
/* Output transform of one output channel for one vector of tiles: y = clamp(A^T m A +
 * bias + res, lo, hi) with m[xi*ld + l]; res (may be NULL) is read at y's offsets. */
typedef void (*cf_wino_out)(const float *m, int64_t ld, const cf_wseg *seg, int nseg,
                            float bias, const float *res, float *y, int64_t OW, float lo,
                            float hi);

/* The plain-C Winograd transforms over vl lanes (used by levels without their own). */
void cf_wino_in_c(int vl, const float *src, const int64_t *tap_off, const cf_wseg *seg, int nseg,
                  float *dst, int64_t ld);
void cf_wino_out_c(int vl, const float *m, int64_t ld, const cf_wseg *seg, int nseg, float bias,
                   const float *res, float *y, int64_t OW, float lo, float hi);
/* Stores lane l's 4x4 output tile o of segment s (clamp(o + bias + res, lo, hi)). */
void cf_wino_store_tile(const float o[16], const cf_wseg *s, int l, float bias, const float *res, float *y,
                        int64_t OW, float lo, float hi);

/* A convolution with few input taps (K = Cg * KH * KW small: MobileNetV2's stem, short-K
 * 1x1 layers) computed directly, pixels in the vector lanes and a few output channels
 * broadcast from the weights: n consecutive output pixels of one run (an output row, or a
 * whole plane when rows follow each other in the prepared grid) for M channels:
 *   y[m*ldy + j] = clamp(bias[m] + res[m*ldy + j] + sum_k w[k*ldw + m] * x[koff[k] + j], lo, hi)
 * (bias, res may be NULL). w is zero-padded to ldw >= M + CF_DIRECT_PAD. */
#define CF_DIRECT_PAD 8
typedef void (*cf_direct_run)(const float *x, const int64_t *koff, int64_t K, const float *w,
                              int64_t ldw, int64_t M, const float *bias, const float *res,
                              int64_t ldy, int64_t n, float lo, float hi, float *y);

/* Splits n groups of s consecutive floats (s = 2 or 4): dst[r][j] = src[j*s + r]. */
typedef void (*cf_deint)(const float *src, int64_t n, int s, float *const *dst);

typedef struct cf_kernels {
    pl_isa isa;
    int mr, nr;
    int vl; /* floats per vector of the direct kernels */
    cf_ukernel ukernel[CF_MR_MAX][2]; /* [r - 1][nr > NR/2] */
    cf_pack_b pack_b;
    cf_store_t store_t;
    cf_dw_plane dw_plane;
    cf_dw_direct dw_direct;
    cf_deint deint;
    cf_wino_in wino_in;
    cf_wino_out wino_out;
    cf_max_plane max_plane;
    cf_avg_plane avg_plane;
    cf_max3s2_plane max3s2; /* NULL: pooling goes through max_plane */
    cf_direct_run direct_run; /* NULL: no direct small-K mode */
} cf_kernels;

/* NULL when the file was built without its ISA. */
const cf_kernels *cf_kernels_avx512(void);
const cf_kernels *cf_kernels_avx2(void);
const cf_kernels *cf_kernels_generic(void);

/* The table for a level (falls back to lower levels). */
const cf_kernels *cf_kernels_for(pl_isa isa);

#endif
