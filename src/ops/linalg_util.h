/* linalg_util.h -- small helpers shared by the matrix, softmax, quantisation and loss
 * ops (matmul.c, softmax.c, quant.c, loss.c, einsum.c). */
#ifndef PL_OPS_LINALG_UTIL_H
#define PL_OPS_LINALG_UTIL_H

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

#endif
