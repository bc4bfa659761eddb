/* linalg_util.h -- small helpers shared by the matrix, softmax, quantisation and loss
 * ops (matmul.c, softmax.c, quant.c, loss.c, einsum.c). */
#ifndef PL_OPS_LINALG_UTIL_H
#define PL_OPS_LINALG_UTIL_H

#include "kernels/gemm/sgemm.h"
#include "ops/op.h"

/* PL_NEED_VALUE while planning if a present input's rank or a dimension is not known
 * yet; at run time such an input is an error. Also rejects ranks above PL_MAX_DIMS. */
pl_status linalg_shapes_known(const pl_op_ctx *c);

/* Allocates a float buffer of n elements (at least 1) holding t's elements converted
 * to float / double; *buf is NULL on failure (an error is set). The caller frees. */
pl_status linalg_load_f32(const pl_op_ctx *c, const pl_tensor *t, float **buf);
pl_status linalg_load_f64(const pl_op_ctx *c, const pl_tensor *t, double **buf);
/* Same for integer tensors, as int64 (sign- or zero-extended). */
pl_status linalg_load_i64(const pl_op_ctx *c, const pl_tensor *t, int64_t **buf);
/* Writes n converted elements into t (any numeric dtype). */
void linalg_store_f32(pl_tensor *t, const float *src, int64_t n);
void linalg_store_f64(pl_tensor *t, const double *src, int64_t n);

/* Product of dims[from..to), or -1 on overflow. */
int64_t linalg_prod(const int64_t *dims, int from, int to);

/* Round half to even, then saturate into [lo, hi]; NaN gives 0 before the offset
 * `add` is applied. Never undefined behaviour. */
int64_t linalg_round_sat(double v, double add, int64_t lo, int64_t hi);
/* Range of an integer dtype (false if `t` is not one of u8/i8/u16/i16/u32/i32). */
bool linalg_int_range(pl_dtype t, int64_t *lo, int64_t *hi);

/* Shape of a numpy-style matmul of a (..., M, K) by b (..., K, N): 1-D operands are
 * promoted (a to 1 x K, b to K x 1) and the promoted dimension dropped from the result;
 * batch dimensions broadcast. Used by MatMul, MatMulInteger and QLinearMatMul. */
typedef struct linalg_mm {
    int64_t M, N, K;
    int ndim;                     /* output rank */
    int64_t dims[PL_MAX_DIMS];    /* output shape */
    int nb;                       /* number of broadcast batch dims */
    int64_t bdims[PL_MAX_DIMS];   /* batch shape */
    int64_t batch;                /* product of the batch shape */
    int64_t astride[PL_MAX_DIMS]; /* element offset in a per batch index step (0: bcast) */
    int64_t bstride[PL_MAX_DIMS];
    bool b_shared; /* b has no batch dims: one b for every batch */
} linalg_mm;

/* Fills *s from the shapes of inputs ia and ib; names them in error messages. */
pl_status linalg_mm_shape(const pl_op_ctx *c, int ia, int ib, linalg_mm *s);
/* Element offsets of batch number `bi` (0 <= bi < s->batch) into a and b. */
void linalg_mm_offsets(const linalg_mm *s, int64_t bi, int64_t *aoff, int64_t *boff);

/* ---- matmul_sparse.c: MatMul / Gemm with a constant sparse float32 weight ---- */

typedef struct mm_sparse mm_sparse;

/* Decides, for Y[T x N] = A[T x K] W with W's element (k, n) at W[n*ldn + k*ldk], whether
 * the sparse path beats the dense packed SGEMM (cost model; `mode` 1 = always, 0 =
 * never, -1 = decide) and if so packs alpha * W^T into *out, names the kernel in
 * c->kernel and sets *scratch to the bytes of scratch run needs. *out stays NULL for
 * the dense path. */
pl_status mm_sparse_prepare(pl_op_ctx *c, const float *W, int64_t N, int64_t K, int64_t ldn,
                            int64_t ldk, int64_t T, float alpha, int mode, mm_sparse **out,
                            size_t *scratch);
/* Y (T x N, row stride N) = epilogue(alpha * op(A) W): A is T x K with row stride lda, or
 * with trans_a K x T; T must be the one sp was prepared for. The epilogue's col_bias / residual (row stride ld_residual) apply;
 * row_bias must be NULL. */
pl_status mm_sparse_run(pl_op_ctx *c, const mm_sparse *sp, int64_t T, const float *A, int64_t lda,
                        bool trans_a, float *Y, const pl_sgemm_epilogue *ep);
void mm_sparse_free(mm_sparse *sp);
/* Estimated seconds of the dense packed SGEMM for T x N x K on one thread. */
double mm_sparse_dense_cost(int64_t T, int64_t N, int64_t K);
/* The cost model's estimate for sp's sparse path, for benchmarks. */
double mm_sparse_cost(const mm_sparse *sp);
/* PILLAR_SPARSE from the environment: "0" never sparse, "1" always (when the weight is
 * a constant float32 matrix), unset or anything else: -1, decide by cost. */
int mm_sparse_mode(void);

#endif
