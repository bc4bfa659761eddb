/* sparse.h -- float32 sparse-weight x dense-activation products (pruned Conv, Gemm,
 * MatMul): Y = epilogue(W B) with W an M x K matrix of mostly zeros, packed once.
 *
 * Layout (pack.c): compressed rows. Row m keeps its nonzeros in increasing k, each as a
 * 32-bit column index and a float value. The product vectorises over the n contiguous
 * columns of B and Y (output pixels of a convolution, tokens of a transposed MatMul):
 * for a block of columns of one output row, every nonzero (m, k) is a broadcast of
 * W[m][k] times a vector load of B row k, accumulated in registers; the epilogue
 * (bias, residual, activation) is applied before the store.
 *
 * B row k is B + koff[k] (koff given) or B + k*ldb (koff NULL): the koff form lets one
 * kernel serve 1x1 convolutions (koff[k] = k*H*W), implicit-GEMM KxK convolutions over
 * prepared input planes (koff[k] = the offset of tap k) and matrix products.
 *
 * Kernels: ref.c (plain C, the truth for tests), sparse_avx2.c, sparse_avx512.c. A
 * packed matrix records the level in force when it was packed (pl_cpu_isa()); runs use
 * that level. All levels give the same results up to float rounding (the order of the
 * sum over k is the same: increasing k; only FMA contraction differs). */
#ifndef PL_KERNELS_SPARSE_H
#define PL_KERNELS_SPARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/cpu.h"
#include "core/status.h"
#include "kernels/gemm/sgemm.h"

typedef struct pl_sparse_w pl_sparse_w; /* packed sparse weight matrix, M rows x K cols */

/* Fraction of the n values of w that are zero (+0 or -0); 0 for n <= 0. */
double pl_sparse_zero_fraction(const float *w, int64_t n);

/* Packs an M x K matrix, element (m,k) at W[m*ldm + k*ldk], keeping its nonzeros, in the
 * layout of the kernel level in force (pl_cpu_isa()). M, K >= 0 and K < 2^31;
 * PL_ERR_ARGUMENT for bad sizes or a NULL W (when M*K > 0), PL_ERR_NOMEM. Free with
 * pl_sparse_destroy. */
pl_status pl_sparse_pack(const float *W, int64_t M, int64_t K, int64_t ldm, int64_t ldk,
                         pl_sparse_w **out);
void pl_sparse_destroy(pl_sparse_w *w); /* NULL is a no-op */

int64_t pl_sparse_nnz(const pl_sparse_w *w);
int64_t pl_sparse_rows(const pl_sparse_w *w);
int64_t pl_sparse_cols(const pl_sparse_w *w);
/* Nonzeros in rows [m0, m1) (for balancing threads). */
int64_t pl_sparse_nnz_rows(const pl_sparse_w *w, int64_t m0, int64_t m1);
/* The level whose kernel runs this matrix. */
pl_isa pl_sparse_isa(const pl_sparse_w *w);

/* Y[m*ldy + j] = epilogue(sum_k W[m][k] * B[koff[k] + j]) for rows m in [m0, m1) and
 * columns j in [0, n). koff == NULL means koff[k] = k * ldb. The epilogue is
 * kernels/gemm/sgemm.h's pl_sgemm_epilogue (row_bias[m], col_bias[j],
 * residual[m*ld_residual + j], act); NULL = none. Indices m of row_bias and residual are
 * absolute (the same m as W's row), so a caller computing a row range passes the
 * epilogue of the whole matrix. Y must not overlap B or the residual. Single-threaded:
 * callers split rows and columns over their threads. Reads only the nonzeros' rows of
 * B. No checks (hot path): sizes are the caller's responsibility. */
void pl_sparse_mm(const pl_sparse_w *w, int64_t m0, int64_t m1, const float *B,
                  const int64_t *koff, int64_t ldb, int64_t n, float *Y, int64_t ldy,
                  const pl_sgemm_epilogue *epi);

/* The same with Y and the epilogue's row_bias and residual starting at row m0 (Y[(m -
 * m0)*ldy + j], row_bias[m - m0], residual[(m - m0)*ld_residual + j]): for computing a
 * row range into a small scratch tile. */
void pl_sparse_mm_rel(const pl_sparse_w *w, int64_t m0, int64_t m1, const float *B,
                      const int64_t *koff, int64_t ldb, int64_t n, float *Y, int64_t ldy,
                      const pl_sgemm_epilogue *epi);

/* The plain-C reference twin of pl_sparse_mm_rel (any packed level), for tests. */
void pl_sparse_mm_ref(const pl_sparse_w *w, int64_t m0, int64_t m1, const float *B,
                      const int64_t *koff, int64_t ldb, int64_t n, float *Y, int64_t ldy,
                      const pl_sgemm_epilogue *epi);

/* Precomputes the B offset of every nonzero for runs that pass this very koff array
 * (same pointer, contents unchanged while w lives): saves the kernel a dependent load
 * per nonzero. koff[k] must fit in 31 bits, else PL_ERR_UNSUPPORTED (runs still work,
 * through koff). Runs with another koff or none are unaffected. */
pl_status pl_sparse_bind_koff(pl_sparse_w *w, const int64_t *koff);

/* Estimated seconds for pl_sparse_mm over the whole matrix with n columns, one thread,
 * at the kernel level of w (a cost model from bench measurements: per nonzero-vector
 * FMA, per row and per column-block overheads). For choosing sparse vs dense. */
double pl_sparse_mm_cost(const pl_sparse_w *w, int64_t n);

/* ---- internal: between the driver (pack.c) and the kernel files ---- */

struct pl_sparse_w {
    int64_t M, K, nnz;
    int64_t *row_ptr; /* M + 1: nonzeros of row m are [row_ptr[m], row_ptr[m+1]) */
    int32_t *idx;     /* nnz column indices k, increasing within a row */
    float *val;       /* nnz values */
    pl_isa isa;
    const int64_t *bound_koff; /* pl_sparse_bind_koff: off[p] = bound_koff[idx[p]] */
    int32_t *off;
    bool wide; /* AVX-512 column blocks of up to 16 vectors, not 8 (set by conv_sparse.c
                * for KxK convolutions, where it measured 3-4% faster) */
};

/* Kernels take Y and the epilogue relative to row m0 (like pl_sparse_mm_rel). */
typedef void (*pl_sparse_mm_fn)(const pl_sparse_w *w, int64_t m0, int64_t m1, const float *B,
                                const int64_t *koff, int64_t ldb, int64_t n, float *Y,
                                int64_t ldy, const pl_sgemm_epilogue *epi);

/* NULL when the file was built without its ISA. */
pl_sparse_mm_fn pl_sparse_mm_avx512(void);
pl_sparse_mm_fn pl_sparse_mm_avx2(void);

#endif
