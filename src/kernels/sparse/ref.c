/* ref.c -- the plain-C reference of the sparse product (the truth for tests, and the
 * kernel of the ref level). Sums over k in increasing order, like the fast kernels. */
#include <string.h>

#include "kernels/sparse/sparse.h"

/* Y and the epilogue relative to row m0 (pl_sparse_mm_rel). */
void pl_sparse_mm_ref(const pl_sparse_w *w, int64_t m0, int64_t m1, const float *B,
                      const int64_t *koff, int64_t ldb, int64_t n, float *Y, int64_t ldy,
                      const pl_sgemm_epilogue *epi) {
    if (!w || m1 <= m0 || n <= 0) return;
    enum { NB = 256 };
    float acc[NB];
    for (int64_t m = m0; m < m1; m++) {
        const int64_t p0 = w->row_ptr[m], p1 = w->row_ptr[m + 1];
        for (int64_t j0 = 0; j0 < n; j0 += NB) {
            const int64_t nb = n - j0 < NB ? n - j0 : NB;
            for (int64_t j = 0; j < nb; j++) acc[j] = 0.0f;
            for (int64_t p = p0; p < p1; p++) {
                const int64_t k = w->idx[p];
                const float v = w->val[p];
                const float *b = B + (koff ? koff[k] : k * ldb) + j0;
                for (int64_t j = 0; j < nb; j++) acc[j] += v * b[j];
            }
            float *y = Y + (m - m0) * ldy + j0;
            memcpy(y, acc, sizeof(float) * (size_t)nb);
        }
        if (epi) {
            pl_sgemm_epilogue e = *epi;
            e.row_bias = epi->row_bias ? epi->row_bias + (m - m0) : NULL;
            e.residual = epi->residual ? epi->residual + (m - m0) * epi->ld_residual : NULL;
            pl_sgemm_apply_epilogue(Y + (m - m0) * ldy, ldy, 1, n, &e);
        }
    }
}
