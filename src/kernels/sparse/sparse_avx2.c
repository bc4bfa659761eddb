/* sparse_avx2.c -- AVX2 sparse x dense product (f32_spmm__avx2): for one output
 * row and a block of up to 8 vectors (64 columns), every nonzero of the row is a
 * broadcast of its value times vector loads of its B row, accumulated in registers; the
 * epilogue (biases, residual, ReLU/Clip) runs in registers before the store, other
 * activations on the stored row segment. Partial vectors use masked loads and stores. */
#include "kernels/sparse/sparse.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#include <math.h>

#define ALWAYS_INLINE inline __attribute__((always_inline))
#define VMAX 8 /* vectors per column block: 8 accumulator chains hide FMA and load latency */

typedef struct epi_regs {
    bool any, clamp, post;
    float lo, hi;
} epi_regs;

/* One row m (relative to the first: the epilogue's index), columns [j0, j0 + 8(V-1) + nt): V vectors, the last one masked.
 * KOFF: B rows through koff (else k * ldb). */
static ALWAYS_INLINE void row_block(const int V, const bool KOFF, const float *val,
                                    const int32_t *idx, int64_t np, const float *B,
                                    const int64_t *koff, int64_t ldb, __m256i tail, int nt,
                                    float *y, const pl_sgemm_epilogue *epi, const epi_regs *er,
                                    int64_t m, int64_t j0) {
    __m256 acc[VMAX];
#pragma GCC unroll 8
    for (int i = 0; i < V; i++) acc[i] = _mm256_setzero_ps();
    const float *Bj = B + j0;
    for (int64_t p = 0; p < np; p++) {
        const float *b = Bj + (KOFF ? koff[idx[p]] : (int64_t)idx[p] * ldb);
        const __m256 v = _mm256_set1_ps(val[p]);
#pragma GCC unroll 8
        for (int i = 0; i < V - 1; i++) acc[i] = _mm256_fmadd_ps(v, _mm256_loadu_ps(b + 8 * i), acc[i]);
        acc[V - 1] = _mm256_fmadd_ps(v, _mm256_maskload_ps(b + 8 * (V - 1), tail), acc[V - 1]);
    }
    if (er->any) {
        if (epi->row_bias) {
            const __m256 rb = _mm256_set1_ps(epi->row_bias[m]);
#pragma GCC unroll 8
            for (int i = 0; i < V; i++) acc[i] = _mm256_add_ps(acc[i], rb);
        }
        if (epi->col_bias) {
            const float *cb = epi->col_bias + j0;
#pragma GCC unroll 8
            for (int i = 0; i < V - 1; i++) acc[i] = _mm256_add_ps(acc[i], _mm256_loadu_ps(cb + 8 * i));
            acc[V - 1] = _mm256_add_ps(acc[V - 1], _mm256_maskload_ps(cb + 8 * (V - 1), tail));
        }
        if (epi->residual) {
            const float *r = epi->residual + m * epi->ld_residual + j0;
#pragma GCC unroll 8
            for (int i = 0; i < V - 1; i++) acc[i] = _mm256_add_ps(acc[i], _mm256_loadu_ps(r + 8 * i));
            acc[V - 1] = _mm256_add_ps(acc[V - 1], _mm256_maskload_ps(r + 8 * (V - 1), tail));
        }
        if (er->clamp) {
            const __m256 lo = _mm256_set1_ps(er->lo), hi = _mm256_set1_ps(er->hi);
#pragma GCC unroll 8
            for (int i = 0; i < V; i++) acc[i] = _mm256_min_ps(_mm256_max_ps(acc[i], lo), hi);
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < V - 1; i++) _mm256_storeu_ps(y + 8 * i, acc[i]);
    _mm256_maskstore_ps(y + 8 * (V - 1), tail, acc[V - 1]);
    if (er->post) {
        pl_sgemm_epilogue e = {0};
        e.act = epi->act;
        e.act_alpha = epi->act_alpha;
        e.act_min = epi->act_min;
        e.act_max = epi->act_max;
        pl_sgemm_apply_epilogue(y, 0, 1, 8 * (V - 1) + nt, &e);
    }
}

#define ROW_ANY_BODY(KOFF)                                                                         \
    int64_t j0 = 0;                                                                                \
    for (; j0 + 8 * VMAX <= n; j0 += 8 * VMAX)                                                   \
        row_block(VMAX, KOFF, val, idx, np, B, koff, ldb, _mm256_set1_epi32(-1), 8, y + j0, epi, er, m, j0);         \
    const int64_t r = n - j0;                                                                      \
    if (r <= 0) return;                                                                            \
    const int V = (int)((r + 7) / 8);                                                              \
    const int tn = (int)(r - 8 * (V - 1));                                                         \
    const __m256i t = _mm256_cmpgt_epi32(_mm256_set1_epi32(tn), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)); \
    switch (V) {                                                                                   \
    case 1: row_block(1, KOFF, val, idx, np, B, koff, ldb, t, tn, y + j0, epi, er, m, j0); break;      \
    case 2: row_block(2, KOFF, val, idx, np, B, koff, ldb, t, tn, y + j0, epi, er, m, j0); break;      \
    case 3: row_block(3, KOFF, val, idx, np, B, koff, ldb, t, tn, y + j0, epi, er, m, j0); break;      \
    case 4: row_block(4, KOFF, val, idx, np, B, koff, ldb, t, tn, y + j0, epi, er, m, j0); break;      \
    case 5: row_block(5, KOFF, val, idx, np, B, koff, ldb, t, tn, y + j0, epi, er, m, j0); break;      \
    case 6: row_block(6, KOFF, val, idx, np, B, koff, ldb, t, tn, y + j0, epi, er, m, j0); break;      \
    case 7: row_block(7, KOFF, val, idx, np, B, koff, ldb, t, tn, y + j0, epi, er, m, j0); break;      \
    default: row_block(8, KOFF, val, idx, np, B, koff, ldb, t, tn, y + j0, epi, er, m, j0); break;     \
    }

static void row_koff(const float *val, const int32_t *idx, int64_t np, const float *B,
                     const int64_t *koff, int64_t ldb, int64_t n, float *y,
                     const pl_sgemm_epilogue *epi, const epi_regs *er, int64_t m) {
    ROW_ANY_BODY(true)
}
static void row_ldb(const float *val, const int32_t *idx, int64_t np, const float *B,
                    const int64_t *koff, int64_t ldb, int64_t n, float *y,
                    const pl_sgemm_epilogue *epi, const epi_regs *er, int64_t m) {
    ROW_ANY_BODY(false)
}

static void spmm_avx2(const pl_sparse_w *w, int64_t m0, int64_t m1, const float *B,
                        const int64_t *koff, int64_t ldb, int64_t n, float *Y, int64_t ldy,
                        const pl_sgemm_epilogue *epi) {
    static const pl_sgemm_epilogue none = {0};
    if (!epi) epi = &none;
    epi_regs er = {false, false, false, -INFINITY, INFINITY};
    er.any = epi->row_bias || epi->col_bias || epi->residual || epi->act != PL_SGEMM_ACT_NONE;
    if (epi->act == PL_SGEMM_ACT_RELU) er.clamp = true, er.lo = 0.0f;
    else if (epi->act == PL_SGEMM_ACT_CLIP) er.clamp = true, er.lo = epi->act_min, er.hi = epi->act_max;
    else if (epi->act != PL_SGEMM_ACT_NONE) er.post = true;
    for (int64_t m = m0; m < m1; m++) {
        const int64_t p0 = w->row_ptr[m], np = w->row_ptr[m + 1] - p0;
        float *y = Y + (m - m0) * ldy;
        if (koff && koff == w->bound_koff) /* offsets precomputed: idx holds them, ldb 1 */
            row_ldb(w->val + p0, w->off + p0, np, B, NULL, 1, n, y, epi, &er, m - m0);
        else if (koff) row_koff(w->val + p0, w->idx + p0, np, B, koff, ldb, n, y, epi, &er, m - m0);
        else row_ldb(w->val + p0, w->idx + p0, np, B, koff, ldb, n, y, epi, &er, m - m0);
    }
}

pl_sparse_mm_fn pl_sparse_mm_avx2(void) { return spmm_avx2; }

#else
pl_sparse_mm_fn pl_sparse_mm_avx2(void) { return NULL; }
#endif
