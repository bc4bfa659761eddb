/* matmul_sparse.c -- MatMul and Gemm with a constant, mostly-zero float32 weight.
 *
 * Y[T x N] = A[T x K] W[K x N] is computed as Y^T = W^T A^T: W^T is packed once as
 * compressed rows (kernels/sparse), A is transposed into scratch so that the tokens of
 * one input channel are contiguous, chunk by chunk of tokens (chunk c holds its K x tc
 * block contiguously: a chunk's B rows then fill whole cache lines and pages, measured
 * 13% faster than rows of all T tokens at K = 3072), and each task takes a band of
 * output channels:
 * the sparse kernel writes the band's Y^T rows into a small per-thread tile, which is
 * transposed into Y's columns and given the fused epilogue (bias, residual,
 * activation) while it is in cache. With T == 1 (a classifier at batch 1) there is
 * nothing to transpose and the product is a sparse matrix-vector product.
 *
 * The choice against the dense packed SGEMM is made in prepare from a cost model of
 * both (fitted with bench/sparse_mm_bench on Zen 4), with a margin so that a layer
 * never runs slower sparse than dense. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/threadpool.h"
#include "kernels/sparse/sparse.h"
#include "kernels/sparse/spmm_matmul.h"
#include "ops/linalg_util.h"

enum { SP_TILE_FLOATS = 8192 }; /* per-thread Y^T tile: 32 KB */

struct mm_sparse {
    pl_sparse_w *w; /* W^T: N rows x K cols, alpha folded in */
    int64_t N, K, T;
    int64_t band;   /* output channels per task */
    int64_t tchunk; /* tokens per task */
    int slots;      /* per-thread tiles in the scratch */
    size_t scratch; /* bytes: A^T and the tiles */
};

int mm_sparse_mode(void) {
    const char *e = getenv("PILLAR_SPARSE");
    if (e && !strcmp(e, "0")) return 0;
    if (e && !strcmp(e, "1")) return 1;
    return -1;
}

void mm_sparse_free(mm_sparse *sp) {
    if (!sp) return;
    pl_sparse_destroy(sp->w);
    free(sp);
}

/* The cost models, fitted with bench/sparse_mm_bench (one thread, CPU time, Zen 4 at
 * 3.6 GHz, BERT-base shapes and batch-1 classifiers). Dense: multiply-accumulates per
 * second of the packed SGEMM, lower for matrix-vector products, which are bound by
 * reading the weights. */
static double dense_mac_cost(pl_isa isa, int64_t T) {
    if (isa < PL_ISA_AVX2) return 1.0 / 4.7e9;
    double rate = isa >= PL_ISA_AVX512 ? 50e9 : 45e9;
    if (T < 4) rate *= (double)T / 4.0;
    return 1.0 / rate;
}

double mm_sparse_dense_cost(int64_t T, int64_t N, int64_t K) {
    return (double)T * (double)N * (double)K * dense_mac_cost(pl_cpu_isa(), T);
}

/* Sparse: cycles per nonzero and vector of tokens (more once A^T outgrows L2), per
 * nonzero, and per element of the two transposes; matrix-vector: per nonzero and row. */
static double sparse_cost(const pl_sparse_w *w, int64_t T, int64_t N, int64_t K) {
    const pl_isa isa = pl_sparse_isa(w);
    const double nnz = (double)pl_sparse_nnz(w), hz = 3.6e9;
    if (T == 1) return (nnz * (isa >= PL_ISA_AVX512 ? 2.0 : 3.6) + (double)N * 20) / hz;
    if (isa < PL_ISA_AVX2) return (nnz * (double)T * 1.4 + (double)T * (double)(N + K) * 1.5) / hz;
    const bool big = K * T * 4 > (1 << 20);
    const int64_t vl = isa >= PL_ISA_AVX512 ? 16 : 8;
    const double per_vec = isa >= PL_ISA_AVX512 ? (big ? 3.6 : 2.6) : (big ? 2.6 : 1.8);
    const double vecs = (double)((T + vl - 1) / vl);
    return (nnz * (vecs * per_vec + 1.0) + (double)T * (double)(N + K) * (vl == 16 ? 0.75 : 1.5)) /
           hz;
}

double mm_sparse_cost(const mm_sparse *sp) {
    return sp ? sparse_cost(sp->w, sp->T, sp->N, sp->K) : 0.0;
}

pl_status mm_sparse_prepare(pl_op_ctx *c, const float *W, int64_t N, int64_t K, int64_t ldn,
                            int64_t ldk, int64_t T, float alpha, int mode, mm_sparse **out,
                            size_t *scratch) {
    *out = NULL;
    *scratch = 0;
    const bool force = mode == 1;
    if (mode == 0 || T < 1 || N < 1 || K < 1 || K > INT32_MAX) return PL_OK;
    /* cheap test first: the fraction of zeros must make the sparse path plausible */
    int64_t nz = 0;
    for (int64_t n = 0; n < N; n++)
        for (int64_t k = 0; k < K; k++) nz += W[n * ldn + k * ldk] != 0.0f;
    double density = (double)nz / ((double)N * (double)K);
    if (!force && density > 0.6) return PL_OK;
    float *scaled = NULL;
    const float *src = W;
    int64_t sn = ldn, sk = ldk;
    if (alpha != 1.0f) { /* fold alpha (Gemm) or pillar_alpha (MatMul) into the weights */
        scaled = malloc(sizeof(float) * (size_t)(N * K));
        if (!scaled) return pl_op_error(c, PL_ERR_NOMEM, "out of memory packing sparse weights");
        for (int64_t n = 0; n < N; n++)
            for (int64_t k = 0; k < K; k++) scaled[n * K + k] = alpha * W[n * ldn + k * ldk];
        src = scaled;
        sn = K;
        sk = 1;
    }
    pl_sparse_w *w = NULL;
    pl_status st = pl_sparse_pack(src, N, K, sn, sk, &w);
    free(scaled);
    if (st != PL_OK) return st;
    double ts = sparse_cost(w, T, N, K), td = mm_sparse_dense_cost(T, N, K);
    if (!force && !(ts < 0.8 * td)) {
        pl_sparse_destroy(w);
        return PL_OK;
    }
    mm_sparse *sp = calloc(1, sizeof *sp);
    if (!sp) {
        pl_sparse_destroy(w);
        return pl_op_error(c, PL_ERR_NOMEM, "out of memory");
    }
    sp->w = w;
    sp->N = N;
    sp->K = K;
    sp->T = T;
    /* token chunks whose A^T columns fit in half of L2 (at least 2 vectors wide) */
    int64_t tc = T;
    if (K * T * 4 > (512 << 10)) {
        tc = ((512 << 10) / (4 * K)) & ~(int64_t)15;
        if (tc < 32) tc = 32;
        if (tc > T) tc = T;
    }
    sp->tchunk = tc;
    sp->band = T == 1 ? 64 : (SP_TILE_FLOATS / tc > 0 ? SP_TILE_FLOATS / tc : 1);
    if (sp->band > 64) sp->band = 64;
    sp->slots = pl_threadpool_size(c->pool);
    if (T > 1)
        *scratch = sp->scratch =
            sizeof(float) * ((size_t)(K * T) + (size_t)sp->slots * (size_t)(sp->band * tc));
    snprintf(c->kernel, sizeof c->kernel, "sparse %.0f%%", 100.0 * (1.0 - density));
    *out = sp;
    return PL_OK;
}

typedef struct sp_job {
    const mm_sparse *sp;
    const float *A;
    int64_t lda;
    float *AT, *tiles, *Y;
    const pl_sgemm_epilogue *ep;
    int nbands;
} sp_job;

/* A^T from A (T x K), chunk-major: chunk c (tokens [t0, t0 + tcc)) at AT + t0 * K,
 * its row k at + k * tcc. 64 input channels per task, all chunks. */
static void transpose_task(void *ctx, int task, int thread) {
    (void)thread;
    const sp_job *j = ctx;
    const int64_t T = j->sp->T, K = j->sp->K, k0 = (int64_t)task * 64,
                  k1 = k0 + 64 < K ? k0 + 64 : K;
    for (int64_t t0 = 0; t0 < T; t0 += j->sp->tchunk) {
        const int64_t tcc = t0 + j->sp->tchunk < T ? j->sp->tchunk : T - t0;
        pl_spmm_transpose(j->A + t0 * j->lda + k0, tcc, k1 - k0, j->lda,
                          j->AT + t0 * K + k0 * tcc, tcc);
    }
}

/* One band of output channels over one chunk of tokens: Y^T rows into the thread's
 * tile, then into Y's block with the epilogue. Tasks run chunk by chunk, so that the
 * chunk's columns of A^T stay in L2 while every band reads them. */
static void band_task(void *ctx, int task, int thread) {
    const sp_job *j = ctx;
    const mm_sparse *sp = j->sp;
    const int64_t T = sp->T, N = sp->N, n0 = (int64_t)(task % j->nbands) * sp->band;
    const int64_t t0 = (int64_t)(task / j->nbands) * sp->tchunk,
                  tc = t0 + sp->tchunk < T ? sp->tchunk : T - t0;
    const int64_t nb = n0 + sp->band < N ? sp->band : N - n0;
    /* A^T chunk-major (transpose_task), or A itself (K x T, rows of all T tokens) */
    const float *B = j->AT ? j->AT + t0 * sp->K : j->A + t0;
    const int64_t ldb = j->AT ? tc : j->lda;
    float *tile = j->tiles + (size_t)thread * (size_t)(sp->band * sp->tchunk);
    pl_sparse_mm_rel(sp->w, n0, n0 + nb, B, NULL, ldb, tc, tile, tc, NULL);
    float *Y = j->Y + t0 * N + n0;
    pl_spmm_transpose(tile, nb, tc, tc, Y, N);
    pl_sgemm_epilogue e = *j->ep;
    e.row_bias = NULL;
    if (e.col_bias) e.col_bias += n0;
    if (e.residual) e.residual += t0 * e.ld_residual + n0;
    pl_sgemm_apply_epilogue(Y, N, tc, nb, &e);
}

/* T == 1: a sparse matrix-vector product straight into Y. */
static void gemv_task(void *ctx, int task, int thread) {
    (void)thread;
    const sp_job *j = ctx;
    const mm_sparse *sp = j->sp;
    const int64_t n0 = (int64_t)task * sp->band, n1 = n0 + sp->band < sp->N ? n0 + sp->band : sp->N;
    pl_spmm_gemv(sp->w, n0, n1, j->A, j->lda, j->Y + n0);
    pl_sgemm_epilogue e = *j->ep;
    e.row_bias = NULL;
    if (e.col_bias) e.col_bias += n0;
    if (e.residual) e.residual += n0;
    pl_sgemm_apply_epilogue(j->Y + n0, sp->N, 1, n1 - n0, &e);
}

pl_status mm_sparse_run(pl_op_ctx *c, const mm_sparse *sp, int64_t T, const float *A, int64_t lda,
                        bool trans_a, float *Y, const pl_sgemm_epilogue *ep) {
    if (T != sp->T)
        return pl_op_error(c, PL_ERR_INTERNAL, "sparse matmul planned for %lld rows, run with %lld",
                           (long long)sp->T, (long long)T);
    pl_threadpool *pool = pl_threadpool_size(c->pool) <= sp->slots ? c->pool : NULL;
    const int nbands = (int)((sp->N + sp->band - 1) / sp->band);
    sp_job j = {.sp = sp, .A = A, .lda = lda, .Y = Y, .ep = ep, .nbands = nbands};
    if (sp->T == 1) {
        /* a is one row (stride 1) or, transposed, one column (stride lda) */
        j.lda = trans_a ? lda : 1;
        pl_threadpool_run(pool, gemv_task, &j, nbands);
        return PL_OK;
    }
    if (!c->scratch || c->scratch_size < sp->scratch)
        return pl_op_error(c, PL_ERR_INTERNAL, "sparse matmul: scratch of %zu bytes, need %zu",
                           c->scratch_size, sp->scratch);
    float *scr = c->scratch;
    if (trans_a) {
        j.AT = NULL; /* A is K x T already: its rows are the kernel's B rows */
        j.tiles = scr;
    } else {
        j.AT = scr;
        j.tiles = scr + sp->K * sp->T;
        pl_threadpool_run(pool, transpose_task, &j, (int)((sp->K + 63) / 64));
    }
    const int nchunks = (int)((sp->T + sp->tchunk - 1) / sp->tchunk);
    pl_threadpool_run(pool, band_task, &j, nbands * nchunks);
    return PL_OK;
}
