/* sgemm.h -- the fast float32 GEMM engine: packed, cache-blocked, threaded, with a
 * fused epilogue. Row-major, same conventions as pl_ref_sgemm (gemm.h):
 *
 *   C[m][n] = act( alpha * sum_k op(A)[m][k] * op(B)[k][n] + beta * C[m][n]
 *                  + row_bias[m] + col_bias[n] + residual[m][n] )
 *
 * op(A) is A (M x K, element (m,k) at A[m*lda + k]) or, with trans_a, the transpose of a
 * K x M matrix (element (m,k) at A[k*lda + m]); likewise op(B) is K x N or, with
 * trans_b, the transpose of an N x K matrix. When beta == 0, C is not read.
 *
 * Either operand may be packed once (weights, at session creation) with
 * pl_sgemm_pack_a / pl_sgemm_pack_b into a caller-owned buffer and then passed as
 * packed_a / packed_b instead of the raw matrix. A packed buffer holds the layout of the
 * kernel level (pl_cpu_isa()) in force when it was packed; runs then use that level.
 *
 * Kernels (avx512.c: 14x32 tiles, avx2.c: 6x16, plain C: 4x16) are picked at run time
 * from pl_cpu_isa(); every level gives the same results up to rounding. */
#ifndef PL_KERNELS_SGEMM_H
#define PL_KERNELS_SGEMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/cpu.h"
#include "core/status.h"
#include "core/threadpool.h"

/* Activation applied last in the epilogue. */
typedef enum pl_sgemm_act {
    PL_SGEMM_ACT_NONE = 0,
    PL_SGEMM_ACT_RELU,       /* max(x, 0) */
    PL_SGEMM_ACT_CLIP,       /* min(max(x, act_min), act_max); ReLU6 = clip(0, 6) */
    PL_SGEMM_ACT_LEAKY_RELU, /* x >= 0 ? x : act_alpha * x */
    PL_SGEMM_ACT_SIGMOID,    /* 1 / (1 + exp(-x)) */
    PL_SGEMM_ACT_HARDSWISH,  /* x * clip(x + 3, 0, 6) / 6 */
    PL_SGEMM_ACT_GELU_ERF,   /* 0.5 x (1 + erf(x / sqrt 2)) */
    PL_SGEMM_ACT_GELU_TANH,  /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
    PL_SGEMM_ACT_COUNT
} pl_sgemm_act;

/* Work done on each C tile once its sum over K is complete, while it is still in
 * cache. All pointers are borrowed and may be NULL (= absent). */
typedef struct pl_sgemm_epilogue {
    const float *row_bias; /* M values, added to every row m (Conv bias in NCHW) */
    const float *col_bias; /* N values, added to every column n (Gemm/Linear bias) */
    const float *residual; /* M x N, row stride ld_residual; must not overlap C (to
                            * add C itself, use beta = 1) */
    int64_t ld_residual;
    pl_sgemm_act act;
    float act_alpha;        /* LEAKY_RELU slope */
    float act_min, act_max; /* CLIP bounds */
} pl_sgemm_epilogue;

/* Produces columns [n0, n0 + n) of row k of op(B) into dst[0 .. n) (n <= a few
 * thousand). Lets a convolution hand over im2col rows as they are needed instead of
 * materialising the im2col matrix (implicit GEMM). Called from the pool's threads at
 * once, so it must only read shared state, and it must not call pl_sgemm_run (the
 * thread's packing scratch is in use). */
typedef void (*pl_sgemm_b_rows_fn)(void *ctx, int64_t k, int64_t n0, int64_t n, float *dst);

typedef struct pl_sgemm_args {
    int64_t M, N, K;
    float alpha, beta;
    /* A: raw (A, lda, trans_a) unless packed_a is set. */
    const float *A;
    int64_t lda;
    bool trans_a;
    const void *packed_a;
    /* B: raw (B, ldb, trans_b) unless packed_b is set. */
    const float *B;
    int64_t ldb;
    bool trans_b;
    const void *packed_b;
    /* Or B produced row by row (B and packed_b NULL, trans_b ignored). */
    pl_sgemm_b_rows_fn b_rows;
    void *b_rows_ctx;
    float *C;
    int64_t ldc;
    const pl_sgemm_epilogue *epilogue; /* NULL: none */
    pl_threadpool *pool;               /* NULL: the calling thread only */
    int max_threads;                   /* 0: every thread of the pool */
} pl_sgemm_args;

/* Runs the GEMM described by `args`. Returns PL_ERR_ARGUMENT (with a message) for
 * negative sizes, strides too small, NULL matrices, or packed buffers that do not match
 * M/N/K or each other; PL_ERR_NOMEM if scratch memory cannot be had. M, N or K == 0
 * is fine (K == 0 gives beta*C plus the epilogue). */
pl_status pl_sgemm_run(const pl_sgemm_args *args);

/* Drop-in for pl_ref_sgemm, optionally threaded over `pool` (may be NULL). */
pl_status pl_sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                   const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                   int64_t ldc, pl_threadpool *pool);

/* Bytes needed to pack op(A) (M x K) or op(B) (K x N) for the current kernel level;
 * 0 if the sizes are negative or too large. The buffer must be 8-byte aligned (malloc
 * is fine); the data inside is aligned to 64 bytes by the packer. */
size_t pl_sgemm_packed_a_size(int64_t M, int64_t K);
size_t pl_sgemm_packed_b_size(int64_t K, int64_t N);

/* Packs op(A) / op(B) into `buf` (of at least the size above). The buffer is
 * position-independent (it may be copied or memory-mapped) and read-only afterwards,
 * so several threads may run with it at once. */
pl_status pl_sgemm_pack_a(bool trans_a, int64_t M, int64_t K, const float *A, int64_t lda,
                          void *buf, size_t buf_size);
pl_status pl_sgemm_pack_b(bool trans_b, int64_t K, int64_t N, const float *B, int64_t ldb,
                          void *buf, size_t buf_size);

/* The same, for runs whose other dimension is known (N for A, M for B; <= 0 = unknown):
 * packs in the layout that runs fastest with it. When N is small next to M (a 7x7
 * feature map under a 2048-channel convolution, a matrix-vector product) the engine
 * computes C^T = B^T A^T so that the long dimension fills the vector lanes, and the
 * weights must then be packed the other way round. Runs with any other N still work. */
pl_status pl_sgemm_pack_a_hint(bool trans_a, int64_t M, int64_t K, const float *A, int64_t lda,
                               int64_t n_hint, void *buf, size_t buf_size);
pl_status pl_sgemm_pack_b_hint(bool trans_b, int64_t K, int64_t N, const float *B, int64_t ldb,
                               int64_t m_hint, void *buf, size_t buf_size);

/* Applies the epilogue (without alpha/beta) to an M x N block of C in place; the same
 * code the GEMM uses, exposed for ops that produce C some other way (e.g. direct
 * convolutions) and for tests. row_bias/col_bias/residual are indexed from (0, 0). */
void pl_sgemm_apply_epilogue(float *C, int64_t ldc, int64_t M, int64_t N,
                             const pl_sgemm_epilogue *epi);

/* ---- internal: the interface between the driver (sgemm.c) and the ISA files ---- */

#define PL_SGEMM_MR_MAX 16

/* Micro-kernel: C[0..mr)[0..nr) = alpha * Apanel * Bpanel (+ beta * C when beta != 0),
 * over kc steps. a: packed A sliver, kc groups of MR floats (zero-padded rows);
 * b: kc rows of B, row k at b + k*ldb with at least nr valid floats (a packed sliver
 * has ldb == NR and is zero-padded to NR); c: row stride ldc. mr is fixed per
 * function (one per row count), nr in 1..NR. */
typedef void (*pl_sgemm_ukernel)(int64_t kc, const float *a, const float *b, int64_t ldb, float *c,
                                 int64_t ldc, int nr, float alpha, float beta);

/* Micro-kernel for full MR-row tiles that also packs B on the way: reads B in place
 * (row k at b + k*ldb, nr valid floats), computes like pl_sgemm_ukernel, and writes the
 * zero-padded sliver to bpack (kc x NR) for the tiles below it to reuse. Used on the
 * first sliver of a block, so B is read from memory once and never in a separate pass. */
typedef void (*pl_sgemm_ukernel_pack)(int64_t kc, const float *a, const float *b, int64_t ldb,
                                      float *bpack, float *c, int64_t ldc, int nr, float alpha,
                                      float beta);

/* Packs rows [0, mc) x k-range [0, kc) of op(A) (A already offset to the block) into
 * ceil(mc/MR) slivers of kc x MR floats, sliver s at dst + s*kc*MR, element (i, k) of
 * sliver s at [k*MR + i]; rows past mc are zero. */
typedef void (*pl_sgemm_pack_a_fn)(bool trans, const float *A, int64_t lda, int64_t mc, int64_t kc,
                                   float *dst);
/* Packs k-range [0, kc) x columns [0, nc) of op(B) into ceil(nc/NR) slivers of kc x NR,
 * sliver t at dst + t*kc*NR, element (k, j) at [k*NR + j]; columns past nc are zero. */
typedef void (*pl_sgemm_pack_b_fn)(bool trans, const float *B, int64_t ldb, int64_t nc, int64_t kc,
                                   float *dst);
/* Applies the epilogue to an mr x nr tile at C; bias/residual pointers are already
 * offset to the tile (row_bias[i], col_bias[j], res[i*ldr + j]). */
typedef void (*pl_sgemm_epi_fn)(float *c, int64_t ldc, int64_t mr, int64_t nr,
                                const float *row_bias, const float *col_bias, const float *res,
                                int64_t ldr, const pl_sgemm_epilogue *epi);

typedef struct pl_sgemm_impl {
    pl_isa isa;
    int mr, nr;
    /* ukernel[mr - 1][v]: v = 0 when nr <= NR/2 is enough (one vector column), else 1. */
    pl_sgemm_ukernel ukernel[PL_SGEMM_MR_MAX][2];
    /* The same with a transposing store: tile element (i, j) goes to c[j*ldc + i] (and
     * beta reads it from there). Used to compute C^T = B^T A^T. */
    pl_sgemm_ukernel ukernel_t[PL_SGEMM_MR_MAX][2];
    /* ukernel_pack[v][ct] for full MR-row tiles; NULL entries: pack B separately. */
    pl_sgemm_ukernel_pack ukernel_pack[2][2];
    pl_sgemm_pack_a_fn pack_a;
    pl_sgemm_pack_b_fn pack_b;
    pl_sgemm_epi_fn epilogue;
} pl_sgemm_impl;

/* Filled by the ISA files; each returns NULL when its file was built without its ISA. */
const pl_sgemm_impl *pl_sgemm_impl_avx512(void);
const pl_sgemm_impl *pl_sgemm_impl_avx2(void);
/* Generic C helpers the ISA files may fall back to. */
void pl_sgemm_pack_a_generic(int MR, bool trans, const float *A, int64_t lda, int64_t mc,
                             int64_t kc, float *dst);
void pl_sgemm_pack_b_generic(int NR, bool trans, const float *B, int64_t ldb, int64_t nc,
                             int64_t kc, float *dst);
void pl_sgemm_epilogue_generic(float *c, int64_t ldc, int64_t mr, int64_t nr, const float *row_bias,
                               const float *col_bias, const float *res, int64_t ldr,
                               const pl_sgemm_epilogue *epi);

#endif
