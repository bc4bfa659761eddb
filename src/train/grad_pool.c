/* grad_pool.c -- pooling for training. MaxPool's forward records, per output, which
 * input element won (first of ties), and its backward routes the gradient there;
 * AveragePool spreads each output's gradient evenly over the taps it averaged;
 * the Global forms do the same over whole planes. 1 to 3 spatial dims. */
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "ops/conv_common.h"
#include "train/grad_kernels.h"
#include "train/grad_util.h"

typedef struct pool_geo {
    int64_t planes;
    int64_t in[3], out[3], k[3], s[3], d[3], pb[3], pe[3];
    int64_t P, Q;
} pool_geo;

static pl_status pool_geometry(tr_ctx *c, pool_geo *g) {
    PL_TRY(gu_need_f32(c, 0));
    const pl_tensor *X = c->op.in[0];
    const int nsp = X->ndim - 2;
    if (nsp < 1 || nsp > 3)
        return pl_op_error(&c->op, PL_ERR_UNSUPPORTED,
                           "training supports 1 to 3 spatial dims, input has %d", nsp);
    int64_t kernel[CVF_MAX_SP];
    PL_TRY(cvf_ints_attr(&c->op, "kernel_shape", nsp, 1, 1, (int64_t)1 << 31, kernel));
    const int64_t ceil_mode = pl_attr_int(c->op.node, "ceil_mode", 0);
    cvf_window w;
    PL_TRY(cvf_window_setup(&c->op, X, kernel, ceil_mode != 0, &w));
    g->planes = X->dims[0] * X->dims[1];
    g->P = g->Q = 1;
    for (int d = 0; d < 3; d++) {
        int sd = d - (3 - nsp);
        g->in[d] = sd >= 0 ? w.in[sd] : 1;
        g->out[d] = sd >= 0 ? w.out[sd] : 1;
        g->k[d] = sd >= 0 ? w.kernel[sd] : 1;
        g->s[d] = sd >= 0 ? w.stride[sd] : 1;
        g->d[d] = sd >= 0 ? w.dilation[sd] : 1;
        g->pb[d] = sd >= 0 ? w.pad_begin[sd] : 0;
        g->pe[d] = sd >= 0 ? w.pad_end[sd] : 0;
        g->P *= g->out[d];
        g->Q *= g->in[d];
    }
    return PL_OK;
}

/* ------------------------------------------------------------------ MaxPool */

pl_status grad_maxpool_fwd(tr_ctx *c) {
    pool_geo g;
    PL_TRY(pool_geometry(c, &g));
    const float *x = gu_f(c->op.in[0]);
    float *y = gu_f(c->op.out[0]);
    const int64_t n = g.planes * g.P;
    int32_t *arg = NULL;
    if (c->training) {
        if (g.Q > INT32_MAX)
            return pl_op_error(&c->op, PL_ERR_UNSUPPORTED, "planes too large for training");
        arg = tr_state(c, (size_t)(n ? n : 1) * sizeof(int32_t));
        if (!arg) return tr_nomem(c);
    }
    const int64_t OD = g.out[0], OH = g.out[1], OW = g.out[2];
    /* the common 2x2 / stride 2 window fully inside the input */
    if (g.in[0] == 1 && g.k[1] == 2 && g.k[2] == 2 && g.s[1] == 2 && g.s[2] == 2 && g.d[1] == 1 &&
        g.d[2] == 1 && g.pb[1] == 0 && g.pb[2] == 0 && 2 * OH <= g.in[1] && 2 * OW <= g.in[2] &&
        g.out[0] == 1) {
        tr_kern()->maxpool2x2(x, y, arg, g.planes, g.in[1], g.in[2], OH, OW);
        goto indices;
    }
    const bool simple2d = g.k[0] == 1 && g.in[0] == 1 && g.d[1] == 1 && g.d[2] == 1;
    for (int64_t pl = 0; pl < g.planes; pl++) {
        const float *xp = x + pl * g.Q;
        float *yp = y + pl * g.P;
        int32_t *ap = arg ? arg + pl * g.P : NULL;
        for (int64_t od = 0; od < OD; od++)
            for (int64_t oh = 0; oh < OH; oh++)
                for (int64_t ow = 0; ow < OW; ow++) {
                    float best = -INFINITY;
                    int64_t bi = -1;
                    const int64_t h0 = oh * g.s[1] - g.pb[1], w0 = ow * g.s[2] - g.pb[2];
                    if (simple2d) {
                        int64_t hs = h0 < 0 ? 0 : h0,
                                he = h0 + g.k[1] > g.in[1] ? g.in[1] : h0 + g.k[1];
                        int64_t ws = w0 < 0 ? 0 : w0,
                                we = w0 + g.k[2] > g.in[2] ? g.in[2] : w0 + g.k[2];
                        for (int64_t ih = hs; ih < he; ih++)
                            for (int64_t iw = ws; iw < we; iw++) {
                                float v = xp[ih * g.in[2] + iw];
                                if (v > best || bi < 0) {
                                    best = v;
                                    bi = ih * g.in[2] + iw;
                                }
                            }
                    } else {
                        const int64_t d0 = od * g.s[0] - g.pb[0];
                        for (int64_t kd = 0; kd < g.k[0]; kd++) {
                            int64_t id = d0 + kd * g.d[0];
                            if (id < 0 || id >= g.in[0]) continue;
                            for (int64_t kh = 0; kh < g.k[1]; kh++) {
                                int64_t ih = h0 + kh * g.d[1];
                                if (ih < 0 || ih >= g.in[1]) continue;
                                for (int64_t kw = 0; kw < g.k[2]; kw++) {
                                    int64_t iw = w0 + kw * g.d[2];
                                    if (iw < 0 || iw >= g.in[2]) continue;
                                    int64_t off = (id * g.in[1] + ih) * g.in[2] + iw;
                                    if (xp[off] > best || bi < 0) {
                                        best = xp[off];
                                        bi = off;
                                    }
                                }
                            }
                        }
                    }
                    int64_t o = (od * OH + oh) * OW + ow;
                    yp[o] = best;
                    if (ap) ap[o] = (int32_t)bi;
                }
    }
indices:
    if (c->op.nout > 1 && c->op.out[1]) { /* the optional Indices output (C order) */
        pl_tensor *I = c->op.out[1];
        for (int64_t i = 0; i < n; i++) {
            int64_t pl = i / (g.P ? g.P : 1);
            pl_set_i64(I, i, arg && arg[i] >= 0 ? pl * g.Q + arg[i] : -1);
        }
    }
    return PL_OK;
}

pl_status grad_maxpool_bwd(tr_ctx *c) {
    if (!c->gin[0] || !c->gout[0]) return PL_OK;
    pool_geo g;
    PL_TRY(pool_geometry(c, &g));
    const int32_t *arg = *c->state;
    if (!arg) return pl_op_error(&c->op, PL_ERR_INTERNAL, "backward without a training forward");
    const float *dy = gu_f(c->gout[0]);
    float *dx = gu_f(c->gin[0]);
    for (int64_t pl = 0; pl < g.planes; pl++)
        for (int64_t o = 0; o < g.P; o++) {
            int32_t a = arg[pl * g.P + o];
            if (a >= 0) dx[pl * g.Q + a] += dy[pl * g.P + o];
        }
    return PL_OK;
}

/* ------------------------------------------------------------------ AveragePool */

/* Calls fn for each output with its window's valid taps and divisor. */
static pl_status avgpool_walk(tr_ctx *c, const pool_geo *g, const float *x, float *y,
                              const float *dy, float *dx) {
    const int64_t cip = pl_attr_int(c->op.node, "count_include_pad", 0);
    const int64_t OD = g->out[0], OH = g->out[1], OW = g->out[2];
    for (int64_t pl = 0; pl < g->planes; pl++) {
        const float *xp = x ? x + pl * g->Q : NULL;
        float *dxp = dx ? dx + pl * g->Q : NULL;
        for (int64_t od = 0; od < OD; od++)
            for (int64_t oh = 0; oh < OH; oh++)
                for (int64_t ow = 0; ow < OW; ow++) {
                    const int64_t o = pl * g->P + (od * OH + oh) * OW + ow;
                    const int64_t s0 = od * g->s[0] - g->pb[0], s1 = oh * g->s[1] - g->pb[1],
                                  s2 = ow * g->s[2] - g->pb[2];
                    int64_t count = 0;
                    double sum = 0;
                    for (int pass = 0; pass < 2; pass++) {
                        float gv = 0.0f;
                        if (pass == 1) {
                            if (!dxp || count == 0) break;
                            gv = dy[o] / (float)count;
                        }
                        for (int64_t kd = 0; kd < g->k[0]; kd++) {
                            int64_t id = s0 + kd * g->d[0];
                            bool pd = id >= -g->pb[0] && id < g->in[0] + g->pe[0],
                                 in0 = id >= 0 && id < g->in[0];
                            for (int64_t kh = 0; kh < g->k[1]; kh++) {
                                int64_t ih = s1 + kh * g->d[1];
                                bool ph = ih >= -g->pb[1] && ih < g->in[1] + g->pe[1],
                                     in1 = ih >= 0 && ih < g->in[1];
                                for (int64_t kw = 0; kw < g->k[2]; kw++) {
                                    int64_t iw = s2 + kw * g->d[2];
                                    bool pw = iw >= -g->pb[2] && iw < g->in[2] + g->pe[2],
                                         in2 = iw >= 0 && iw < g->in[2];
                                    bool inside = in0 && in1 && in2;
                                    if (pass == 0) {
                                        if (cip ? (pd && ph && pw) : inside) count++;
                                        if (inside && xp)
                                            sum += xp[(id * g->in[1] + ih) * g->in[2] + iw];
                                    } else if (inside) {
                                        dxp[(id * g->in[1] + ih) * g->in[2] + iw] += gv;
                                    }
                                }
                            }
                        }
                    }
                    if (y) y[o] = count ? (float)(sum / (double)count) : 0.0f;
                }
    }
    return PL_OK;
}

pl_status grad_avgpool_fwd(tr_ctx *c) {
    pool_geo g;
    PL_TRY(pool_geometry(c, &g));
    return avgpool_walk(c, &g, gu_f(c->op.in[0]), gu_f(c->op.out[0]), NULL, NULL);
}

pl_status grad_avgpool_bwd(tr_ctx *c) {
    if (!c->gin[0] || !c->gout[0]) return PL_OK;
    pool_geo g;
    PL_TRY(pool_geometry(c, &g));
    return avgpool_walk(c, &g, NULL, NULL, gu_f(c->gout[0]), gu_f(c->gin[0]));
}

/* ------------------------------------------------------------------ Global pools */

static void global_view(const pl_tensor *X, int64_t *planes, int64_t *q) {
    *planes = X->ndim >= 2 ? X->dims[0] * X->dims[1] : 1;
    *q = 1;
    for (int d = 2; d < X->ndim; d++) *q *= X->dims[d];
}

pl_status grad_gap_bwd(tr_ctx *c) {
    PL_TRY(gu_need_f32(c, 0));
    if (!c->gin[0] || !c->gout[0]) return PL_OK;
    int64_t planes, q;
    global_view(c->op.in[0], &planes, &q);
    const float *dy = gu_f(c->gout[0]);
    float *dx = gu_f(c->gin[0]);
    for (int64_t p = 0; p < planes; p++) {
        const float v = dy[p] / (float)(q ? q : 1);
        for (int64_t i = 0; i < q; i++) dx[p * q + i] += v;
    }
    return PL_OK;
}

pl_status grad_gmp_fwd(tr_ctx *c) {
    PL_TRY(gu_need_f32(c, 0));
    int64_t planes, q;
    global_view(c->op.in[0], &planes, &q);
    if (q > INT32_MAX)
        return pl_op_error(&c->op, PL_ERR_UNSUPPORTED, "planes too large for training");
    const float *x = gu_f(c->op.in[0]);
    float *y = gu_f(c->op.out[0]);
    int32_t *arg =
        c->training ? tr_state(c, (size_t)(planes ? planes : 1) * sizeof(int32_t)) : NULL;
    if (c->training && !arg) return tr_nomem(c);
    for (int64_t p = 0; p < planes; p++) {
        float best = -INFINITY;
        int64_t bi = -1;
        for (int64_t i = 0; i < q; i++)
            if (x[p * q + i] > best || bi < 0) {
                best = x[p * q + i];
                bi = i;
            }
        y[p] = best;
        if (arg) arg[p] = (int32_t)bi;
    }
    return PL_OK;
}

pl_status grad_gmp_bwd(tr_ctx *c) {
    if (!c->gin[0] || !c->gout[0]) return PL_OK;
    int64_t planes, q;
    global_view(c->op.in[0], &planes, &q);
    const int32_t *arg = *c->state;
    if (!arg) return pl_op_error(&c->op, PL_ERR_INTERNAL, "backward without a training forward");
    const float *dy = gu_f(c->gout[0]);
    float *dx = gu_f(c->gin[0]);
    for (int64_t p = 0; p < planes; p++)
        if (arg[p] >= 0) dx[p * q + arg[p]] += dy[p];
    return PL_OK;
}
