/* grad_linalg.c -- Gemm and MatMul (forward and backward through tr_gemm, so that they
 * use the packed SGEMM or the BF16 path) and the backward of Softmax / LogSoftmax. */
#include <math.h>
#include <stdlib.h>

#include "train/grad_util.h"

/* Adds the gradients of Y = alpha op(A) op(B) (M x N, row stride ldy) to gA and gB
 * (either may be NULL), each in its operand's storage layout. */
static pl_status mm_bwd(tr_ctx *c, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                        const float *A, int64_t lda, const float *B, int64_t ldb, const float *dY,
                        int64_t ldy, float *gA, float *gB) {
    if (gA) {
        if (!ta)
            PL_TRY(tr_gemm(c, false, !tb, M, K, N, alpha, dY, ldy, B, ldb, 1.0f, gA, lda, NULL));
        else
            PL_TRY(tr_gemm(c, tb, true, K, M, N, alpha, B, ldb, dY, ldy, 1.0f, gA, lda, NULL));
    }
    if (gB) {
        if (!tb)
            PL_TRY(tr_gemm(c, !ta, false, K, N, M, alpha, A, lda, dY, ldy, 1.0f, gB, ldb, NULL));
        else
            PL_TRY(tr_gemm(c, true, ta, N, K, M, alpha, dY, ldy, A, lda, 1.0f, gB, ldb, NULL));
    }
    return PL_OK;
}

/* ------------------------------------------------------------------ Gemm */

typedef struct gemm_geo {
    bool ta, tb;
    float alpha, beta;
    int64_t M, N, K;
} gemm_geo;

static pl_status gemm_geometry(tr_ctx *c, gemm_geo *g) {
    for (int i = 0; i < 3; i++)
        if (pl_has_in(&c->op, i)) PL_TRY(gu_need_f32(c, i));
    const pl_tensor *A = c->op.in[0], *B = c->op.in[1];
    if (A->ndim != 2 || B->ndim != 2)
        return pl_op_error(&c->op, PL_ERR_MODEL, "Gemm inputs must be matrices");
    g->ta = pl_attr_int(c->op.node, "transA", 0) != 0;
    g->tb = pl_attr_int(c->op.node, "transB", 0) != 0;
    g->alpha = pl_attr_float(c->op.node, "alpha", 1.0f);
    g->beta = pl_attr_float(c->op.node, "beta", 1.0f);
    g->M = g->ta ? A->dims[1] : A->dims[0];
    g->K = g->ta ? A->dims[0] : A->dims[1];
    g->N = g->tb ? B->dims[0] : B->dims[1];
    return PL_OK;
}

pl_status grad_gemm_fwd(tr_ctx *c) {
    gemm_geo g;
    PL_TRY(gemm_geometry(c, &g));
    const pl_tensor *A = c->op.in[0], *B = c->op.in[1],
                    *C = pl_has_in(&c->op, 2) ? c->op.in[2] : NULL;
    pl_tensor *Y = c->op.out[0];
    float *y = gu_f(Y);
    pl_sgemm_epilogue epi = {0};
    const pl_sgemm_epilogue *ep = NULL;
    float gbeta = 0.0f;
    if (C && g.beta != 0.0f) {
        const int64_t cn = pl_numel(C);
        bool row_vec = cn == g.N && (C->ndim == 1 || (C->ndim == 2 && C->dims[0] == 1));
        if (row_vec && g.beta == 1.0f) {
            epi.col_bias = gu_f(C);
            ep = &epi;
        } else if (cn == g.M && g.M != g.N && C->ndim == 2 && C->dims[1] == 1 && g.beta == 1.0f) {
            epi.row_bias = gu_f(C);
            ep = &epi;
        } else {
            const pl_tensor *ops[1] = {C};
            gu_walk w;
            gu_walk_init(&w, Y->ndim, Y->dims, 1, ops);
            const float *cv = gu_f(C);
            const int64_t n = pl_numel(Y);
            if (n) GU_WALK(&w, n, y[i] = g.beta * cv[o0]);
            gbeta = 1.0f;
        }
    }
    return tr_gemm(c, g.ta, g.tb, g.M, g.N, g.K, g.alpha, gu_f(A), A->dims[1], gu_f(B), B->dims[1],
                   gbeta, y, g.N, ep);
}

pl_status grad_gemm_bwd(tr_ctx *c) {
    if (!c->gout[0]) return PL_OK;
    gemm_geo g;
    PL_TRY(gemm_geometry(c, &g));
    const pl_tensor *A = c->op.in[0], *B = c->op.in[1];
    const float *dy = gu_f(c->gout[0]);
    PL_TRY(mm_bwd(c, g.ta, g.tb, g.M, g.N, g.K, g.alpha, gu_f(A), A->dims[1], gu_f(B), B->dims[1],
                  dy, g.N, gu_f(c->gin[0]), gu_f(c->gin[1])));
    if (c->op.nin > 2 && c->gin[2]) {
        const pl_tensor *C = c->op.in[2], *Y = c->op.out[0];
        float *gc = gu_f(c->gin[2]);
        const int64_t cn = pl_numel(C);
        if (cn == g.N && g.M > 0 && (C->ndim == 1 || (C->ndim == 2 && C->dims[0] == 1))) {
            /* the common bias [N]: column sums of dY */
            for (int64_t m = 0; m < g.M; m++) {
                const float *row = dy + m * g.N;
                for (int64_t j = 0; j < g.N; j++) gc[j] += g.beta * row[j];
            }
        } else {
            const pl_tensor *ops[1] = {C};
            gu_walk w;
            gu_walk_init(&w, Y->ndim, Y->dims, 1, ops);
            const int64_t n = pl_numel(Y);
            if (n) GU_WALK(&w, n, gc[o0] += g.beta * dy[i]);
        }
    }
    return PL_OK;
}

/* ------------------------------------------------------------------ MatMul */

/* numpy matmul geometry: A [..., M, K] (or [K]), B [..., K, N] (or [K]); batch dims
 * broadcast. */
typedef struct mm_geo {
    int64_t M, N, K;
    int nb;                                   /* batch dims of the output */
    int64_t bdims[PL_MAX_DIMS];               /* output batch dims */
    int64_t sa[PL_MAX_DIMS], sb[PL_MAX_DIMS]; /* batch strides of A and B, in matrices */
    int64_t batches;
    bool b_shared; /* B has no batch: one GEMM over all rows of A */
} mm_geo;

static pl_status matmul_geometry(tr_ctx *c, mm_geo *g) {
    PL_TRY(gu_need_f32(c, 0));
    PL_TRY(gu_need_f32(c, 1));
    const pl_tensor *A = c->op.in[0], *B = c->op.in[1];
    if (A->ndim < 1 || B->ndim < 1) return pl_op_error(&c->op, PL_ERR_MODEL, "MatMul of a scalar");
    pl_tensor a = {.dtype = PL_F32}, b = {.dtype = PL_F32};
    /* batch-only views */
    const int ra = A->ndim, rb = B->ndim;
    g->M = ra >= 2 ? A->dims[ra - 2] : 1;
    g->K = A->dims[ra - 1];
    g->N = rb >= 2 ? B->dims[rb - 1] : 1;
    a.ndim = ra > 2 ? ra - 2 : 0;
    b.ndim = rb > 2 ? rb - 2 : 0;
    for (int d = 0; d < a.ndim; d++) a.dims[d] = A->dims[d];
    for (int d = 0; d < b.ndim; d++) b.dims[d] = B->dims[d];
    g->nb = a.ndim > b.ndim ? a.ndim : b.ndim;
    for (int d = 0; d < g->nb; d++) {
        int da = d - (g->nb - a.ndim), db = d - (g->nb - b.ndim);
        int64_t x = da >= 0 ? a.dims[da] : 1, y = db >= 0 ? b.dims[db] : 1;
        if (x != y && x != 1 && y != 1)
            return pl_op_error(&c->op, PL_ERR_INPUT, "batch dims do not broadcast");
        g->bdims[d] = x == 1 ? y : x;
    }
    pl_broadcast_strides(&a, g->nb, g->bdims, g->sa);
    pl_broadcast_strides(&b, g->nb, g->bdims, g->sb);
    g->batches = pl_dims_numel(g->nb, g->bdims);
    g->b_shared = pl_dims_numel(b.ndim, b.dims) == 1;
    return PL_OK;
}

/* Offsets (in matrices) of A and B for output batch index bi. */
static void mm_offsets(const mm_geo *g, int64_t bi, int64_t *oa, int64_t *ob) {
    *oa = *ob = 0;
    for (int d = g->nb - 1; d >= 0; d--) {
        int64_t i = bi % g->bdims[d];
        bi /= g->bdims[d];
        *oa += i * g->sa[d];
        *ob += i * g->sb[d];
    }
}

pl_status grad_matmul_fwd(tr_ctx *c) {
    mm_geo g;
    PL_TRY(matmul_geometry(c, &g));
    const float *a = gu_f(c->op.in[0]), *b = gu_f(c->op.in[1]);
    float *y = gu_f(c->op.out[0]);
    if (g.b_shared) {
        /* A's batch is contiguous when it is not broadcast */
        int64_t abatch = pl_numel(c->op.in[0]) / (g.M * g.K > 0 ? g.M * g.K : 1);
        if (abatch == g.batches)
            return tr_gemm(c, false, false, g.batches * g.M, g.N, g.K, 1.0f, a, g.K, b, g.N, 0.0f,
                           y, g.N, NULL);
    }
    for (int64_t bi = 0; bi < g.batches; bi++) {
        int64_t oa, ob;
        mm_offsets(&g, bi, &oa, &ob);
        PL_TRY(tr_gemm(c, false, false, g.M, g.N, g.K, 1.0f, a + oa * g.M * g.K, g.K,
                       b + ob * g.K * g.N, g.N, 0.0f, y + bi * g.M * g.N, g.N, NULL));
    }
    return PL_OK;
}

pl_status grad_matmul_bwd(tr_ctx *c) {
    if (!c->gout[0]) return PL_OK;
    mm_geo g;
    PL_TRY(matmul_geometry(c, &g));
    const float *a = gu_f(c->op.in[0]), *b = gu_f(c->op.in[1]), *dy = gu_f(c->gout[0]);
    float *ga = gu_f(c->gin[0]), *gb = gu_f(c->gin[1]);
    if (g.b_shared) {
        int64_t abatch = pl_numel(c->op.in[0]) / (g.M * g.K > 0 ? g.M * g.K : 1);
        if (abatch == g.batches)
            return mm_bwd(c, false, false, g.batches * g.M, g.N, g.K, 1.0f, a, g.K, b, g.N, dy, g.N,
                          ga, gb);
    }
    for (int64_t bi = 0; bi < g.batches; bi++) {
        int64_t oa, ob;
        mm_offsets(&g, bi, &oa, &ob);
        PL_TRY(mm_bwd(c, false, false, g.M, g.N, g.K, 1.0f, a + oa * g.M * g.K, g.K,
                      b + ob * g.K * g.N, g.N, dy + bi * g.M * g.N, g.N,
                      ga ? ga + oa * g.M * g.K : NULL, gb ? gb + ob * g.K * g.N : NULL));
    }
    return PL_OK;
}

/* ------------------------------------------------------------------ Softmax */

/* [outer, n, inner] view of the softmax axis: opset < 13 flattens everything from the
 * axis on (default 1), later opsets use the one axis (default -1). */
static pl_status softmax_view(const tr_ctx *c, int64_t *outer, int64_t *n, int64_t *inner) {
    const pl_tensor *X = c->op.in[0];
    const int r = X->ndim;
    int axis;
    const bool old = c->op.opset < 13;
    PL_TRY(pl_op_axis(&c->op, pl_attr_int(c->op.node, "axis", old ? 1 : -1), r > 0 ? r : 1, &axis));
    *outer = 1;
    *n = 1;
    *inner = 1;
    for (int d = 0; d < r; d++) {
        if (d < axis)
            *outer *= X->dims[d];
        else if (d == axis || old)
            *n *= X->dims[d];
        else
            *inner *= X->dims[d];
    }
    return PL_OK;
}

static pl_status softmax_bwd(tr_ctx *c, bool logmode) {
    PL_TRY(gu_need_f32(c, 0));
    if (!c->gin[0] || !c->gout[0]) return PL_OK;
    int64_t outer, n, inner;
    PL_TRY(softmax_view(c, &outer, &n, &inner));
    const float *y = gu_f(c->op.out[0]), *g = gu_f(c->gout[0]);
    float *gx = gu_f(c->gin[0]);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const int64_t base = o * n * inner + i;
            double s = 0;
            if (logmode) {
                for (int64_t j = 0; j < n; j++) s += g[base + j * inner];
                for (int64_t j = 0; j < n; j++) {
                    int64_t k = base + j * inner;
                    gx[k] += g[k] - expf(y[k]) * (float)s;
                }
            } else {
                for (int64_t j = 0; j < n; j++)
                    s += (double)g[base + j * inner] * y[base + j * inner];
                for (int64_t j = 0; j < n; j++) {
                    int64_t k = base + j * inner;
                    gx[k] += y[k] * (g[k] - (float)s);
                }
            }
        }
    return PL_OK;
}

pl_status grad_softmax_bwd(tr_ctx *c) {
    return softmax_bwd(c, false);
}
pl_status grad_logsoftmax_bwd(tr_ctx *c) {
    return softmax_bwd(c, true);
}
