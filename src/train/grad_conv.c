/* grad_conv.c -- Conv for training: forward and backward as matrix products over
 * im2col columns, run by tr_gemm (packed SGEMM, or BF16).
 *
 * Image by image, the columns form a matrix col [C*KK][P] (KK taps per channel, P output
 * positions); per group g:
 *   forward   Y_g  [Mg][P]  = W_g [Mg][Kg] x col_g [Kg][P]       (+ bias, in the GEMM)
 *   weights   dW_g [Mg][Kg] += dY_g [Mg][P] x col_g^T
 *   inputs    dcol_g [Kg][P] = W_g^T x dY_g, scattered back by col2im
 * The GEMMs write straight into the NCHW tensors, and one image's columns stay in
 * cache between im2col and the GEMM that reads them; the backward recomputes them
 * rather than keeping every image's columns from the forward. 1x1 convolutions with
 * stride 1 and no padding use the input itself as the column matrix. 1 to 3 spatial
 * dims. */
#include <stdlib.h>

#include "ops/conv_common.h"
#include "train/grad_kernels.h"
#include "train/grad_util.h"

typedef tr_conv_geo conv_geo;

static int64_t floordiv(int64_t a, int64_t b) {
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

static pl_status conv_geometry(tr_ctx *c, conv_geo *g, int64_t *lohi_buf) {
    PL_TRY(gu_need_f32(c, 0));
    PL_TRY(gu_need_f32(c, 1));
    if (pl_has_in(&c->op, 2)) PL_TRY(gu_need_f32(c, 2));
    const pl_tensor *X = c->op.in[0], *W = c->op.in[1];
    const int nsp = X->ndim - 2;
    if (nsp < 1 || nsp > 3)
        return pl_op_error(&c->op, PL_ERR_UNSUPPORTED,
                           "training supports 1 to 3 spatial dims, input has %d", nsp);
    if (W->ndim != X->ndim)
        return pl_op_error(&c->op, PL_ERR_MODEL, "weight rank differs from the input's");
    int64_t kernel[CVF_MAX_SP];
    for (int d = 0; d < nsp; d++) kernel[d] = W->dims[d + 2];
    cvf_window win;
    PL_TRY(cvf_window_setup(&c->op, X, kernel, false, &win));
    g->N = X->dims[0];
    g->C = X->dims[1];
    g->M = W->dims[0];
    g->G = pl_attr_int(c->op.node, "group", 1);
    if (g->G < 1 || g->C % g->G || g->M % g->G || W->dims[1] != g->C / g->G)
        return pl_op_error(&c->op, PL_ERR_MODEL,
                           "weight shape does not fit the input and group %lld", (long long)g->G);
    g->Cg = g->C / g->G;
    g->Mg = g->M / g->G;
    g->P = g->Q = g->KK = 1;
    for (int d = 0; d < 3; d++) {
        int sd = d - (3 - nsp);
        g->in[d] = sd >= 0 ? win.in[sd] : 1;
        g->out[d] = sd >= 0 ? win.out[sd] : 1;
        g->k[d] = sd >= 0 ? win.kernel[sd] : 1;
        g->s[d] = sd >= 0 ? win.stride[sd] : 1;
        g->d[d] = sd >= 0 ? win.dilation[sd] : 1;
        g->p[d] = sd >= 0 ? win.pad_begin[sd] : 0;
        g->P *= g->out[d];
        g->Q *= g->in[d];
        g->KK *= g->k[d];
    }
    g->Kg = g->Cg * g->KK;
    g->direct = g->KK == 1 && g->P == g->Q;
    for (int d = 0; d < 3; d++)
        if (g->s[d] != 1 || g->p[d] != 0) g->direct = false;
    if (g->k[2] > 64)
        return pl_op_error(&c->op, PL_ERR_UNSUPPORTED, "kernel width %lld is too large",
                           (long long)g->k[2]);
    g->wlo = lohi_buf;
    g->whi = lohi_buf + 64;
    for (int64_t kw = 0; kw < g->k[2]; kw++) {
        int64_t off = kw * g->d[2] - g->p[2]; /* input column = ow * s + off */
        int64_t lo = off >= 0 ? 0 : floordiv(-off + g->s[2] - 1, g->s[2]);
        int64_t hi = floordiv(g->in[2] - 1 - off, g->s[2]) + 1;
        if (lo > g->out[2]) lo = g->out[2];
        if (hi > g->out[2]) hi = g->out[2];
        if (hi < lo) hi = lo;
        g->wlo[kw] = lo;
        g->whi[kw] = hi;
    }
    return PL_OK;
}

/* W_g (Mg x Kg) of every group, prepared once for all the images. */
static pl_status prepare_weights(tr_ctx *c, const conv_geo *g, const float *w, bool transpose,
                                 tr_gemm_a *pa) {
    const int64_t rows = transpose ? g->Kg : g->Mg, cols = transpose ? g->Mg : g->Kg;
    const size_t each = (tr_gemm_prepare_size(c, rows, cols) + 63) & ~(size_t)63;
    uint8_t *buf = tr_scratch_slot(c, TR_SCRATCH_PACK, each * (size_t)g->G);
    if (!buf) return tr_nomem(c);
    for (int64_t gi = 0; gi < g->G; gi++)
        PL_TRY(tr_gemm_prepare(c, transpose, rows, cols, w + gi * g->Mg * g->Kg, g->Kg,
                               buf + each * (size_t)gi, &pa[gi]));
    return PL_OK;
}

/* Up to this many groups get prepared weights; more (depthwise) use plain calls. */
#define PREP_GROUPS 16

pl_status grad_conv_fwd(tr_ctx *c) {
    int64_t lohi[128];
    conv_geo g;
    PL_TRY(conv_geometry(c, &g, lohi));
    const float *x = gu_f(c->op.in[0]), *w = gu_f(c->op.in[1]);
    const float *bias = pl_has_in(&c->op, 2) ? gu_f(c->op.in[2]) : NULL;
    float *y = gu_f(c->op.out[0]);
    if (g.N == 0 || g.M == 0 || g.P == 0) return PL_OK;
    pl_sgemm_epilogue epi = {0};
    float *col = NULL;
    if (!g.direct && !(col = tr_scratch(c, (size_t)(g.C * g.KK * g.P) * sizeof(float))))
        return tr_nomem(c);
    tr_gemm_a pa[PREP_GROUPS];
    const bool prep = g.G <= PREP_GROUPS && g.N > 1;
    if (prep) PL_TRY(prepare_weights(c, &g, w, false, pa));
    for (int64_t n = 0; n < g.N; n++) {
        const float *xn = x + n * g.C * g.Q, *cn = xn;
        if (!g.direct) {
            tr_kern()->im2col(&g, xn, col, g.P);
            cn = col;
        }
        for (int64_t gi = 0; gi < g.G; gi++) {
            epi.row_bias = bias ? bias + gi * g.Mg : NULL;
            float *yg = y + (n * g.M + gi * g.Mg) * g.P;
            const float *bg = cn + gi * g.Kg * g.P;
            if (prep)
                PL_TRY(tr_gemm_with(c, &pa[gi], g.P, false, bg, g.P, 1.0f, 0.0f, yg, g.P,
                                    bias ? &epi : NULL));
            else
                PL_TRY(tr_gemm(c, false, false, g.Mg, g.P, g.Kg, 1.0f, w + gi * g.Mg * g.Kg, g.Kg,
                               bg, g.P, 0.0f, yg, g.P, bias ? &epi : NULL));
        }
    }
    return PL_OK;
}

pl_status grad_conv_bwd(tr_ctx *c) {
    if (!c->gout[0]) return PL_OK;
    int64_t lohi[128];
    conv_geo g;
    PL_TRY(conv_geometry(c, &g, lohi));
    const float *x = gu_f(c->op.in[0]), *w = gu_f(c->op.in[1]), *dy = gu_f(c->gout[0]);
    float *gx = gu_f(c->gin[0]), *gw = gu_f(c->gin[1]);
    float *gb = c->op.nin > 2 ? gu_f(c->gin[2]) : NULL;
    if (g.N == 0 || g.M == 0 || g.P == 0) return PL_OK;
    if (gb)
        for (int64_t n = 0; n < g.N; n++)
            for (int64_t m = 0; m < g.M; m++) {
                const float *r = dy + (n * g.M + m) * g.P;
                float s[8] = {0};
                int64_t p = 0;
                for (; p + 8 <= g.P; p += 8)
                    for (int k = 0; k < 8; k++) s[k] += r[p + k];
                for (; p < g.P; p++) s[0] += r[p];
                gb[m] += ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
            }
    if (!gx && !gw) return PL_OK;
    const int64_t colsz = g.direct ? 0 : g.C * g.KK * g.P;
    float *col = NULL;
    if (colsz && !(col = tr_scratch(c, (size_t)colsz * sizeof(float)))) return tr_nomem(c);
    tr_gemm_a pa[PREP_GROUPS];
    const bool prep = gx && g.G <= PREP_GROUPS && g.N > 1;
    if (prep) PL_TRY(prepare_weights(c, &g, w, true, pa));
    for (int64_t n = 0; n < g.N; n++) {
        const float *dyn = dy + n * g.M * g.P, *xn = x + n * g.C * g.Q;
        if (gw) {
            const float *cn = xn;
            if (!g.direct) {
                tr_kern()->im2col(&g, xn, col, g.P);
                cn = col;
            }
            for (int64_t gi = 0; gi < g.G; gi++)
                PL_TRY(tr_gemm(c, false, true, g.Mg, g.Kg, g.P, 1.0f, dyn + gi * g.Mg * g.P, g.P,
                               cn + gi * g.Kg * g.P, g.P, 1.0f, gw + gi * g.Mg * g.Kg, g.Kg, NULL));
        }
        if (gx) {
            float *gxn = gx + n * g.C * g.Q;
            for (int64_t gi = 0; gi < g.G; gi++) {
                /* 1x1: accumulate straight into dx; else columns, then col2im */
                float *dst = g.direct ? gxn + gi * g.Kg * g.Q : col + gi * g.Kg * g.P;
                const float *dyg = dyn + gi * g.Mg * g.P;
                const float beta = g.direct ? 1.0f : 0.0f;
                if (prep)
                    PL_TRY(
                        tr_gemm_with(c, &pa[gi], g.P, false, dyg, g.P, 1.0f, beta, dst, g.P, NULL));
                else
                    PL_TRY(tr_gemm(c, true, false, g.Kg, g.P, g.Mg, 1.0f, w + gi * g.Mg * g.Kg,
                                   g.Kg, dyg, g.P, beta, dst, g.P, NULL));
            }
            if (!g.direct) tr_kern()->col2im(&g, col, g.P, gxn);
        }
    }
    return PL_OK;
}
