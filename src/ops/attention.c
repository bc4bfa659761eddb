/* attention.c -- PillarAttention, the internal op that the attention fusion pass
 * (src/graph/fuse_attention.c) puts in place of a transformer's multi-head attention
 * core. It never comes from a file.
 *
 *   inputs:  Q, K, V float32 [B, S, H*D] (the projections, heads side by side),
 *            optional mask float32 of S values (shape [1, ..., 1, S]), added to every
 *            row of the scores (as the bias of the unfused scores MatMul)
 *   attrs:   num_heads H, scale (float, default 1)
 *   output:  [B, S, H*D]: for every batch b and head h, with Qh = Q[b, :, hD:(h+1)D],
 *            O[b, :, hD:(h+1)D] = softmax(scale * Qh Kh^T + mask) Vh
 *
 * Replaces Reshape, Transpose (x3), MatMul, Softmax, MatMul, Transpose, Reshape: the
 * GEMMs read the heads in place through row strides (no transposes, no copies), the
 * S x S scores of one head stay in a per-thread buffer, and the heads are shared out
 * over the session's threads. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/threadpool.h"
#include "kernels/gemm/sgemm.h"
#include "kernels/softmax/softmax.h"
#include "ops/op.h"

pl_status attention_infer(pl_op_ctx *c) {
    static const pl_dtype f32[] = {PL_F32, PL_UNDEF};
    PL_TRY(pl_op_check_arity(c, 3, 4));
    for (int i = 0; i < 4; i++)
        if (pl_has_in(c, i)) PL_TRY(pl_op_check_dtype(c, i, f32));
    for (int i = 0; i < 4; i++)
        if (pl_has_in(c, i)) PL_TRY(pl_op_input_known(c, i));
    const pl_tensor *q = c->in[0];
    if (q->ndim != 3)
        return pl_op_error(c, PL_ERR_MODEL, "Q has %d dims, expected 3 ([batch, seq, heads*dim])",
                           q->ndim);
    for (int i = 1; i < 3; i++)
        if (!pl_tensor_same_shape(c->in[i], q))
            return pl_op_error(c, PL_ERR_MODEL, "%s does not have the shape of Q",
                               i == 1 ? "K" : "V");
    int64_t H = pl_attr_int(c->node, "num_heads", 0);
    if (H <= 0 || q->dims[2] % H != 0)
        return pl_op_error(c, PL_ERR_MODEL, "num_heads %lld does not divide the width %lld",
                           (long long)H, (long long)q->dims[2]);
    if (pl_has_in(c, 3)) {
        const pl_tensor *m = c->in[3];
        bool ok = m->ndim >= 1 && m->dims[m->ndim - 1] == q->dims[1];
        for (int d = 0; ok && d + 1 < m->ndim; d++) ok = m->dims[d] == 1;
        if (!ok)
            return pl_op_error(c, PL_ERR_MODEL,
                               "the mask must hold %lld values along its last axis",
                               (long long)q->dims[1]);
    }
    pl_op_same_as(c, 0, 0);
    return PL_OK;
}

/* One scores buffer of S x S floats per pool thread, 64-byte aligned. */
static size_t scores_floats(int64_t S) {
    return ((size_t)(S * S) + 15) / 16 * 16;
}

/* The scratch bytes of a run: every thread's scores buffer, plus the alignment slack. */
static size_t scratch_bytes(const pl_op_ctx *c, int64_t S) {
    return 64 + (size_t)pl_threadpool_size(c->pool) * scores_floats(S) * sizeof(float);
}

pl_status attention_prepare(pl_op_ctx *c) {
    int64_t S = c->in[0]->dims[1];
    c->scratch_size = scratch_bytes(c, S);
    snprintf(c->kernel, sizeof c->kernel, "fused %lld heads",
             (long long)pl_attr_int(c->node, "num_heads", 0));
    return PL_OK;
}

void attention_release(void *state) {
    (void)state;
}

typedef struct att_job {
    const float *q, *k, *v, *mask;
    float *o;
    int64_t S, W, D, H;
    float scale;
    float *scores; /* per thread */
    _Atomic int failed;
} att_job;

/* Task = one (batch, head): scores = scale Qh Kh^T + mask, softmax by rows, Oh = P Vh. */
static void att_task(void *ctx, int task, int thread) {
    att_job *j = ctx;
    int64_t b = task / j->H, h = task % j->H;
    int64_t off = b * j->S * j->W + h * j->D;
    float *sc = j->scores + (size_t)thread * scores_floats(j->S);
    pl_sgemm_epilogue e;
    memset(&e, 0, sizeof e);
    e.col_bias = j->mask;
    pl_sgemm_args g;
    memset(&g, 0, sizeof g);
    g.M = j->S, g.N = j->S, g.K = j->D;
    g.alpha = j->scale;
    g.A = j->q + off, g.lda = j->W;
    g.B = j->k + off, g.ldb = j->W, g.trans_b = true;
    g.C = sc, g.ldc = j->S;
    g.epilogue = j->mask ? &e : NULL;
    if (pl_sgemm_run(&g) != PL_OK) {
        j->failed = 1;
        return;
    }
    pl_softmax_rows_f32(sc, sc, j->S, j->S, false);
    memset(&g, 0, sizeof g);
    g.M = j->S, g.N = j->D, g.K = j->S;
    g.alpha = 1.0f;
    g.A = sc, g.lda = j->S;
    g.B = j->v + off, g.ldb = j->W;
    g.C = j->o + off, g.ldc = j->W;
    if (pl_sgemm_run(&g) != PL_OK) j->failed = 1;
}

pl_status attention_run(pl_op_ctx *c) {
    const pl_tensor *q = c->in[0];
    int64_t B = q->dims[0], S = q->dims[1], W = q->dims[2];
    int64_t H = pl_attr_int(c->node, "num_heads", 1);
    if (B == 0 || S == 0 || W == 0) return PL_OK;
    if (B * H > INT32_MAX)
        return pl_op_error(c, PL_ERR_UNSUPPORTED, "too many heads (%lld)", (long long)(B * H));
    size_t need = scratch_bytes(c, S);
    void *own = NULL, *buf = c->scratch;
    if (!buf || c->scratch_size < need) {
        own = malloc(need);
        if (!own) return pl_op_error(c, PL_ERR_NOMEM, "no memory for %zu bytes of scores", need);
        buf = own;
    }
    att_job j = {.q = q->data,
                 .k = c->in[1]->data,
                 .v = c->in[2]->data,
                 .mask = pl_has_in(c, 3) ? c->in[3]->data : NULL,
                 .o = c->out[0]->data,
                 .S = S,
                 .W = W,
                 .D = W / H,
                 .H = H,
                 .scale = pl_attr_float(c->node, "scale", 1.0f),
                 .scores = (float *)(((uintptr_t)buf + 63) & ~(uintptr_t)63)};
    j.failed = 0;
    pl_threadpool_run(c->pool, att_task, &j, (int)(B * H));
    free(own);
    if (j.failed) return pl_op_error(c, PL_ERR_NOMEM, "out of memory in the attention GEMMs");
    return PL_OK;
}
