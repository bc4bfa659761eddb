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
 * through koff). Runs with another koff or none are unaffected. At AVX-512, a matrix that
 * is not `wide` (set wide before binding) whose koff[1] - koff[0] is 1..256 (a 1x1
 * convolution on planes of at most 256 floats: 14x14, 7x7) also gets the chunked order
 * (pl_sparse_set_chunks, 256 columns; PILLAR_SP_KC=0 turns it off, another value sets
 * the width). */
pl_status pl_sparse_bind_koff(pl_sparse_w *w, const int64_t *koff);

/* Splits every row's nonzeros at multiples of kc input rows (k in [c*kc, (c+1)*kc): chunk
 * c), for the AVX-512 kernel's blocked order: columns in blocks of 64, and for each block
 * the rows of the call chunk by chunk, the partial sums kept in Y between chunks, so that
 * a chunk's 64-column slab of B and the rows' partial sums stay in L1/L2 while the rows
 * run over it (the plain order streams each nonzero's B row from L2). Keeps a
 * chunk-major copy of the nonzeros (8 bytes each). Applies to runs with the koff bound
 * when it was called (pl_sparse_bind_koff first), else to runs with koff NULL; Y must
 * not overlap B or the residual (as always).
 * The sum over k keeps its order (partial sums are stored and reloaded exactly), so
 * results do not change. kc <= 0 turns it off. PL_ERR_ARGUMENT (NULL w), PL_ERR_NOMEM. */
pl_status pl_sparse_set_chunks(pl_sparse_w *w, int64_t kc);

/* Estimated seconds for pl_sparse_mm over the whole matrix with n columns, one thread,
 * at the kernel level of w (a cost model from bench measurements: per nonzero-vector
 * FMA, per row and per column-block overheads). For choosing sparse vs dense. */
double pl_sparse_mm_cost(const pl_sparse_w *w, int64_t n);

/* ---- shifted-tap form (shift.c, shift_avx512.c) ----
 * For convolutions whose kernel is 3 taps wide, over prepared planes whose row pitch and
 * plane size are multiples of 16 floats (3x3 on 14-wide planes: pitch 16; stride 2 over
 * phase planes of pitch 16 or 32): the taps of one kernel row differ only by a shift of
 * 0, 1 or 2 columns (their offsets' remainder mod 16). Each output row is
 * summed per shift group (all loads aligned: the offsets without the shift), the
 * accumulators shifted down a column between groups (Y[j] = Z0[j] + Z1[j+1] + Z2[j+2]),
 * and the reduction is split in chunks of input rows whose B rows stay in L1, the partial
 * sums kept in Y between chunks. Measured 1.44x the plain kernel on ResNet-50's 256-channel
 * 14x14 3x3 layer at 90% zeros (aligned loads alone or chunks alone: no gain; the whole
 * convolution 1.3x at 14x14 and at 28x28, whose rows conv_sparse.c pads to 32). The sum
 * order differs from pl_sparse_mm (by chunk and shift group), so results agree with it up
 * to float rounding. */
typedef struct pl_sparse_shift {
    int64_t M, nchunks;
    int nsh;      /* 3: the shifted-tap form; 1: channel chunks only (pl_sparse_chunk_pack) */
    int32_t *gs;  /* [nchunks][M][4]: the row's nonzeros of shift 2, 1, 0 in that chunk are
                   * [gs[0], gs[1]), [gs[1], gs[2]), [gs[2], gs[3]) */
    float *val;   /* nnz values, in gs order */
    int32_t *off; /* nnz B offsets without the shift (koff[k] - shift) */
    pl_isa isa;
} pl_sparse_shift;

/* Regroups w with the B offsets koff (koff[k] >= 0 and < 2^31), the shift of row k being
 * koff[k] % 16, which must be 0, 1 or 2 (3x3 stride 1 over planes of pitch 16: the tap's
 * kw; stride 2 over phase planes of pitch 16: 0 for kw = 0 and 1, 1 for kw = 2), the
 * reduction split every chunk_k input rows (chunk_k >= 1). PL_ERR_ARGUMENT /
 * PL_ERR_UNSUPPORTED (a shift above 2) / PL_ERR_NOMEM. Free with pl_sparse_shift_destroy. */
pl_status pl_sparse_shift_pack(const pl_sparse_w *w, const int64_t *koff, int64_t chunk_k,
                               pl_sparse_shift **out);
void pl_sparse_shift_destroy(pl_sparse_shift *s); /* NULL is a no-op */

/* The channel-chunk form alone (nsh = 1, no shift groups: every nonzero in the shift-0
 * group at B offset koff[k], koff[k] >= 0 and < 2^31, any row order, chunk_k >= 1): for
 * KxK convolutions whose planes do not suit the shifted-tap form (7x7 outputs, strided,
 * 56-wide planes), keeping a chunk of input rows in L1 while all output rows of a task
 * use it. The kernels below then read B at koff[k] .. koff[k] + n and Y needs
 * pl_sparse_shift_cols(s, n) columns. */
pl_status pl_sparse_chunk_pack(const pl_sparse_w *w, const int64_t *koff, int64_t chunk_k,
                               pl_sparse_shift **out);

/* Vectors of 16 floats a row of Y needs for n columns: ceil((n + 2) / 16). */
int64_t pl_sparse_shift_vecs(int64_t n);
/* Floats a row of Y needs for n columns under s: 16 * ceil((n + nsh - 1) / 16). */
int64_t pl_sparse_shift_cols(const pl_sparse_shift *s, int64_t n);

/* Y[(m - m0)*ldy + j] = sum over the nonzeros (m, k) of W[m][k] * B[koff[k] + j], for m in
 * [m0, m1) and j in [0, n), no epilogue. Y is scratch of at least (m1 - m0) rows of ldy >=
 * 16 * pl_sparse_shift_vecs(n) floats; columns n .. ldy hold junk afterwards. B is read at
 * koff[k] - shift .. koff[k] - shift + n + 2, never further. 1 <= n <= 254 (chunk form:
 * Y of pl_sparse_shift_cols(s, n) floats a row, B read at koff[k] .. koff[k] + n, and
 * 1 <= n <= 256). */
void pl_sparse_shift_mm(const pl_sparse_shift *s, int64_t m0, int64_t m1, const float *B,
                        int64_t n, float *Y, int64_t ldy);
/* The plain-C twin (the same sum order), for tests and the ref level. */
void pl_sparse_shift_mm_ref(const pl_sparse_shift *s, int64_t m0, int64_t m1, const float *B,
                            int64_t n, float *Y, int64_t ldy);
typedef void (*pl_sparse_shift_fn)(const pl_sparse_shift *s, int64_t m0, int64_t m1,
                                   const float *B, int64_t n, float *Y, int64_t ldy);
pl_sparse_shift_fn pl_sparse_shift_mm_avx512(void); /* NULL without AVX-512 */

/* ---- internal: between the driver (pack.c) and the kernel files ---- */

struct pl_sparse_w {
    int64_t M, K, nnz;
    int64_t *row_ptr; /* M + 1: nonzeros of row m are [row_ptr[m], row_ptr[m+1]) */
    int32_t *idx;     /* nnz column indices k, increasing within a row */
    float *val;       /* nnz values */
    pl_isa isa;
    const int64_t *bound_koff; /* pl_sparse_bind_koff: off[p] = bound_koff[idx[p]] */
    int32_t *off;
    pl_sparse_shift *shift; /* the shifted-tap form, when the convolution made one (owned) */
    /* pl_sparse_set_chunks: chunk width and count (0: plain order); the nonzeros again,
     * chunk-major (chunk c of row m is [cptr[c*M + m], cptr[c*M + m + 1]) of cval/coff),
     * coff holding B offsets (bound_koff's, when coff_bound) or column indices */
    int64_t kc, nch;
    int64_t *cptr;
    float *cval;
    int32_t *coff;
    bool coff_bound;
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
