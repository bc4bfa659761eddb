/* sparse_avx512.c -- AVX-512 sparse x dense product (f32_spmm__avx512): for one output
 * row and a block of up to 8 vectors (128 columns; 16 with w->wide), every nonzero of the
 * row is a broadcast of its value times vector loads of its B row, accumulated in
 * registers; the epilogue (biases, residual, ReLU/Clip) runs in registers before the
 * store, other activations on the stored row segment. Partial vectors use masks. */
#include "kernels/sparse/sparse.h"

#if defined(__AVX512F__) && defined(__AVX512VL__) && defined(__FMA__)
#include <immintrin.h>
#include <math.h>

#define ALWAYS_INLINE inline __attribute__((always_inline))
#define VMAX 16 /* most vectors per column block (8 for flat B, 16 for KxK convolutions) */

typedef struct epi_regs {
    bool any, clamp, post;
    float lo, hi;
} epi_regs;

/* The epilogue of one row segment of V vectors (the last one masked by tail), in
 * registers: row/column bias, residual, ReLU/Clip, then the store; other activations run
 * on the stored segment. epi_on false: store only (a partial sum). */
static ALWAYS_INLINE void finish_row(const int V, __m512 *acc, float *y, __mmask16 tail, bool epi_on,
                                     const pl_sgemm_epilogue *epi, const epi_regs *er, int64_t m,
                                     int64_t j0) {
    if (epi_on && er->any) {
        if (epi->row_bias) {
            const __m512 rb = _mm512_set1_ps(epi->row_bias[m]);
#pragma GCC unroll 16
            for (int i = 0; i < V; i++) acc[i] = _mm512_add_ps(acc[i], rb);
        }
        if (epi->col_bias) {
            const float *cb = epi->col_bias + j0;
#pragma GCC unroll 16
            for (int i = 0; i < V - 1; i++) acc[i] = _mm512_add_ps(acc[i], _mm512_loadu_ps(cb + 16 * i));
            acc[V - 1] = _mm512_add_ps(acc[V - 1], _mm512_maskz_loadu_ps(tail, cb + 16 * (V - 1)));
        }
        if (epi->residual) {
            const float *r = epi->residual + m * epi->ld_residual + j0;
#pragma GCC unroll 16
            for (int i = 0; i < V - 1; i++) acc[i] = _mm512_add_ps(acc[i], _mm512_loadu_ps(r + 16 * i));
            acc[V - 1] = _mm512_add_ps(acc[V - 1], _mm512_maskz_loadu_ps(tail, r + 16 * (V - 1)));
        }
        if (er->clamp) {
            const __m512 lo = _mm512_set1_ps(er->lo), hi = _mm512_set1_ps(er->hi);
#pragma GCC unroll 16
            for (int i = 0; i < V; i++) acc[i] = _mm512_min_ps(_mm512_max_ps(acc[i], lo), hi);
        }
    }
#pragma GCC unroll 16
    for (int i = 0; i < V - 1; i++) _mm512_storeu_ps(y + 16 * i, acc[i]);
    _mm512_mask_storeu_ps(y + 16 * (V - 1), tail, acc[V - 1]);
    if (epi_on && er->post) {
        pl_sgemm_epilogue e = {0};
        e.act = epi->act;
        e.act_alpha = epi->act_alpha;
        e.act_min = epi->act_min;
        e.act_max = epi->act_max;
        pl_sgemm_apply_epilogue(y, 0, 1, 16 * (V - 1) + __builtin_popcount(tail), &e);
    }
}

/* One row m (relative to the first: the epilogue's index), columns [j0, j0 + 16(V-1) + tail bits): V vectors, the last one masked.
 * KOFF: B rows through koff (else k * ldb). */
static ALWAYS_INLINE void row_block(const int V, const bool KOFF, const float *val,
                                    const int32_t *idx, int64_t np, const float *B,
                                    const int64_t *koff, int64_t ldb, __mmask16 tail,
                                    float *y, const pl_sgemm_epilogue *epi, const epi_regs *er,
                                    int64_t m, int64_t j0) {
    __m512 acc[VMAX];
#pragma GCC unroll 16
    for (int i = 0; i < V; i++) acc[i] = _mm512_setzero_ps();
    const float *Bj = B + j0;
    for (int64_t p = 0; p < np; p++) {
        const float *b = Bj + (KOFF ? koff[idx[p]] : (int64_t)idx[p] * ldb);
        const __m512 v = _mm512_set1_ps(val[p]);
#pragma GCC unroll 16
        for (int i = 0; i < V - 1; i++) acc[i] = _mm512_fmadd_ps(v, _mm512_loadu_ps(b + 16 * i), acc[i]);
        acc[V - 1] = _mm512_fmadd_ps(v, _mm512_maskz_loadu_ps(tail, b + 16 * (V - 1)), acc[V - 1]);
    }
    finish_row(V, acc, y, tail, true, epi, er, m, j0);
}

#define ROW_ANY_BODY(KOFF, VM)                                                                       \
    int64_t j0 = 0;                                                                                \
    for (; j0 + 16 * VM <= n; j0 += 16 * VM)                                                       \
        row_block(VM, KOFF, val, idx, np, B, koff, ldb, 0xffff, y + j0, epi, er, m, j0);         \
    const int64_t r = n - j0;                                                                      \
    if (r <= 0) return;                                                                            \
    const int V = (int)((r + 15) / 16);                                                            \
    const __mmask16 t = (__mmask16)(r % 16 ? (1u << (r % 16)) - 1u : 0xffffu);                     \
    switch (V) {                                                                                   \
    case 1: row_block(1, KOFF, val, idx, np, B, koff, ldb, t, y + j0, epi, er, m, j0); break;      \
    case 2: row_block(2, KOFF, val, idx, np, B, koff, ldb, t, y + j0, epi, er, m, j0); break;      \
    case 3: row_block(3, KOFF, val, idx, np, B, koff, ldb, t, y + j0, epi, er, m, j0); break;      \
    case 4: row_block(4, KOFF, val, idx, np, B, koff, ldb, t, y + j0, epi, er, m, j0); break;      \
    case 5: row_block(5, KOFF, val, idx, np, B, koff, ldb, t, y + j0, epi, er, m, j0); break;      \
    case 6: row_block(6, KOFF, val, idx, np, B, koff, ldb, t, y + j0, epi, er, m, j0); break;      \
    case 7: row_block(7, KOFF, val, idx, np, B, koff, ldb, t, y + j0, epi, er, m, j0); break;      \
    case 8: row_block(8, KOFF, val, idx, np, B, koff, ldb, t, y + j0, epi, er, m, j0); break;     \
    case 9: row_block(9, KOFF, val, idx, np, B, koff, ldb, t, y + j0, epi, er, m, j0); break;     \
    case 10: row_block(10, KOFF, val, idx, np, B, koff, ldb, t, y + j0, epi, er, m, j0); break;     \
    case 11: row_block(11, KOFF, val, idx, np, B, koff, ldb, t, y + j0, epi, er, m, j0); break;     \
    case 12: row_block(12, KOFF, val, idx, np, B, koff, ldb, t, y + j0, epi, er, m, j0); break;     \
    case 13: row_block(13, KOFF, val, idx, np, B, koff, ldb, t, y + j0, epi, er, m, j0); break;     \
    case 14: row_block(14, KOFF, val, idx, np, B, koff, ldb, t, y + j0, epi, er, m, j0); break;     \
    case 15: row_block(15, KOFF, val, idx, np, B, koff, ldb, t, y + j0, epi, er, m, j0); break;     \
    default: row_block(16, KOFF, val, idx, np, B, koff, ldb, t, y + j0, epi, er, m, j0); break;     \
    }

/* 8-vector blocks (8 accumulator chains hide FMA and load latency) measured best for
 * 1x1 convolutions and matrix products; 16 for KxK convolutions (w->wide: 3-4% faster on
 * ResNet-50's 3x3 layers, 3-4% slower on its 1x1 ones). */
#define ROW_FN(NAME, KOFF, VM)                                                                     \
    static void NAME(const float *val, const int32_t *idx, int64_t np, const float *B,            \
                     const int64_t *koff, int64_t ldb, int64_t n, float *y,                       \
                     const pl_sgemm_epilogue *epi, const epi_regs *er, int64_t m) {               \
        ROW_ANY_BODY(KOFF, VM)                                                                     \
    }
ROW_FN(row_koff, true, 8)
ROW_FN(row_ldb, false, 8)
ROW_FN(row_koff_wide, true, 16)
ROW_FN(row_ldb_wide, false, 16)

/* The blocked order (pl_sparse_set_chunks): one row's chunk [p0, p1) over V <= 4 vectors
 * of a 64-column block: acc = (first chunk ? 0 : Y) + its nonzeros; after the last chunk
 * the epilogue in registers (row_block's), then the store. Rows with no nonzeros in a
 * middle chunk are skipped by the caller. */
static ALWAYS_INLINE void chunk_row(const int V, const bool OFF, const float *val, const int32_t *idx,
                                    int64_t p0, int64_t p1, const float *B, int64_t ldb, float *y,
                                    __mmask16 tail, bool first, bool last, const pl_sgemm_epilogue *epi,
                                    const epi_regs *er, int64_t m, int64_t j0) {
    __m512 acc[4];
    if (first) {
#pragma GCC unroll 4
        for (int i = 0; i < V; i++) acc[i] = _mm512_setzero_ps();
    } else {
#pragma GCC unroll 4
        for (int i = 0; i < V - 1; i++) acc[i] = _mm512_loadu_ps(y + 16 * i);
        acc[V - 1] = _mm512_maskz_loadu_ps(tail, y + 16 * (V - 1));
    }
    for (int64_t p = p0; p < p1; p++) {
        const float *b = B + (OFF ? (int64_t)idx[p] : (int64_t)idx[p] * ldb);
        const __m512 v = _mm512_set1_ps(val[p]);
#pragma GCC unroll 4
        for (int i = 0; i < V - 1; i++) acc[i] = _mm512_fmadd_ps(v, _mm512_loadu_ps(b + 16 * i), acc[i]);
        acc[V - 1] = _mm512_fmadd_ps(v, _mm512_maskz_loadu_ps(tail, b + 16 * (V - 1)), acc[V - 1]);
    }
    finish_row(V, acc, y, tail, last, epi, er, m, j0);
}

/* Rows [m0, m1) of one column block [j0, j0 + 16 V), chunk by chunk (Y and the epilogue
 * relative to m0). */
static ALWAYS_INLINE void chunk_block(const int V, const bool OFF, const pl_sparse_w *w, int64_t m0,
                                      int64_t m1, const float *B, int64_t ldb, float *Y, int64_t ldy,
                                      __mmask16 tail, const pl_sgemm_epilogue *epi, const epi_regs *er,
                                      int64_t j0) {
    const int64_t M = w->M, nch = w->nch;
    for (int64_t c = 0; c < nch; c++) {
        const bool first = c == 0, last = c == nch - 1;
        const int64_t *cp = w->cptr + c * M;
        for (int64_t m = m0; m < m1; m++) {
            const int64_t p0 = cp[m], p1 = cp[m + 1];
            if (!first && !last && p0 == p1) continue;
            chunk_row(V, OFF, w->cval, w->coff, p0, p1, B + j0, ldb, Y + (m - m0) * ldy + j0, tail, first, last,
                      epi, er, m - m0, j0);
        }
    }
}

#define CHUNK_FN(NAME, OFF)                                                                        \
    static void NAME(const pl_sparse_w *w, int64_t m0, int64_t m1, const float *B, int64_t ldb,   \
                     int64_t n, float *Y, int64_t ldy, const pl_sgemm_epilogue *epi,               \
                     const epi_regs *er) {                                                         \
        for (int64_t j0 = 0; j0 < n; j0 += 64) {                                                   \
            const int64_t r = n - j0 < 64 ? n - j0 : 64;                                           \
            const __mmask16 t = (__mmask16)(r % 16 ? (1u << (r % 16)) - 1u : 0xffffu);             \
            switch ((r + 15) / 16) {                                                               \
            case 1: chunk_block(1, OFF, w, m0, m1, B, ldb, Y, ldy, t, epi, er, j0); break;         \
            case 2: chunk_block(2, OFF, w, m0, m1, B, ldb, Y, ldy, t, epi, er, j0); break;         \
            case 3: chunk_block(3, OFF, w, m0, m1, B, ldb, Y, ldy, t, epi, er, j0); break;         \
            default: chunk_block(4, OFF, w, m0, m1, B, ldb, Y, ldy, t, epi, er, j0); break;        \
            }                                                                                      \
        }                                                                                          \
    }
CHUNK_FN(chunks_off, true)
CHUNK_FN(chunks_ldb, false)

static void spmm_avx512(const pl_sparse_w *w, int64_t m0, int64_t m1, const float *B,
                        const int64_t *koff, int64_t ldb, int64_t n, float *Y, int64_t ldy,
                        const pl_sgemm_epilogue *epi) {
    static const pl_sgemm_epilogue none = {0};
    if (!epi) epi = &none;
    epi_regs er = {false, false, false, -INFINITY, INFINITY};
    er.any = epi->row_bias || epi->col_bias || epi->residual || epi->act != PL_SGEMM_ACT_NONE;
    if (epi->act == PL_SGEMM_ACT_RELU) er.clamp = true, er.lo = 0.0f;
    else if (epi->act == PL_SGEMM_ACT_CLIP) er.clamp = true, er.lo = epi->act_min, er.hi = epi->act_max;
    else if (epi->act != PL_SGEMM_ACT_NONE) er.post = true;
    if (w->cptr && (w->coff_bound ? koff && koff == w->bound_koff : !koff)) {
        if (koff) chunks_off(w, m0, m1, B, 1, n, Y, ldy, epi, &er);
        else chunks_ldb(w, m0, m1, B, ldb, n, Y, ldy, epi, &er);
        return;
    }
    for (int64_t m = m0; m < m1; m++) {
        const int64_t p0 = w->row_ptr[m], np = w->row_ptr[m + 1] - p0;
        float *y = Y + (m - m0) * ldy;
        if (koff && koff == w->bound_koff) /* offsets precomputed: idx holds them, ldb 1 */
            (w->wide ? row_ldb_wide : row_ldb)(w->val + p0, w->off + p0, np, B, NULL, 1, n, y, epi, &er, m - m0);
        else if (koff)
            (w->wide ? row_koff_wide : row_koff)(w->val + p0, w->idx + p0, np, B, koff, ldb, n, y, epi, &er, m - m0);
        else (w->wide ? row_ldb_wide : row_ldb)(w->val + p0, w->idx + p0, np, B, koff, ldb, n, y, epi, &er, m - m0);
    }
}

pl_sparse_mm_fn pl_sparse_mm_avx512(void) { return spmm_avx512; }

#else
pl_sparse_mm_fn pl_sparse_mm_avx512(void) { return NULL; }
#endif
