/* spmm_matmul.c -- plain-C transposes and sparse matrix-vector product for the sparse
 * MatMul path, and the dispatch to the AVX-512 versions (spmm_matmul_avx512.c). */
#include "kernels/sparse/spmm_matmul.h"

/* In 8 x 8 blocks so that both sides move in whole cache lines. */
void pl_spmm_transpose_ref(const float *src, int64_t rows, int64_t cols, int64_t lds, float *dst,
                           int64_t ldd) {
    for (int64_t r0 = 0; r0 < rows; r0 += 8)
        for (int64_t c0 = 0; c0 < cols; c0 += 8) {
            const int64_t re = r0 + 8 < rows ? r0 + 8 : rows, ce = c0 + 8 < cols ? c0 + 8 : cols;
            for (int64_t c = c0; c < ce; c++)
                for (int64_t r = r0; r < re; r++) dst[c * ldd + r] = src[r * lds + c];
        }
}

/* Four partial sums hide the add latency; the order of the sum differs from the
 * matrix-matrix kernel's only by rounding. */
void pl_spmm_gemv_ref(const pl_sparse_w *w, int64_t m0, int64_t m1, const float *x, int64_t incx,
                      float *y) {
    for (int64_t m = m0; m < m1; m++) {
        const int64_t p1 = w->row_ptr[m + 1];
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        int64_t p = w->row_ptr[m];
        for (; p + 4 <= p1; p += 4) {
            s0 += w->val[p] * x[w->idx[p] * incx];
            s1 += w->val[p + 1] * x[w->idx[p + 1] * incx];
            s2 += w->val[p + 2] * x[w->idx[p + 2] * incx];
            s3 += w->val[p + 3] * x[w->idx[p + 3] * incx];
        }
        for (; p < p1; p++) s0 += w->val[p] * x[w->idx[p] * incx];
        y[m - m0] = (s0 + s1) + (s2 + s3);
    }
}

void pl_spmm_transpose(const float *src, int64_t rows, int64_t cols, int64_t lds, float *dst,
                       int64_t ldd) {
    pl_spmm_transpose_fn f = pl_cpu_isa() >= PL_ISA_AVX512 ? pl_spmm_transpose_avx512() : NULL;
    (f ? f : pl_spmm_transpose_ref)(src, rows, cols, lds, dst, ldd);
}

void pl_spmm_gemv(const pl_sparse_w *w, int64_t m0, int64_t m1, const float *x, int64_t incx,
                  float *y) {
    pl_spmm_gemv_fn f = pl_sparse_isa(w) >= PL_ISA_AVX512 ? pl_spmm_gemv_avx512() : NULL;
    (f ? f : pl_spmm_gemv_ref)(w, m0, m1, x, incx, y);
}
