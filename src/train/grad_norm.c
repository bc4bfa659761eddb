/* grad_norm.c -- BatchNormalization and LayerNormalization for training.
 *
 * BatchNormalization in a training step normalises with the statistics of the
 * replica's slice of the batch (like DataParallel without synchronised BatchNorm); the
 * running statistics are then updated once per step from the whole batch's mean and
 * variance, combined exactly from the slices (commit), with the node's momentum and
 * the unbiased variance, as PyTorch does. Evaluation uses the running statistics, and
 * the saved model is the plain inference form. */
#include <math.h>
#include <stdlib.h>

#include "kernels/norm/norm.h"
#include "train/grad_kernels.h"
#include "train/grad_util.h"

/* ------------------------------------------------------------------ BatchNormalization */

/* State: mean[C], var[C] (population), inv_std[C] as doubles, then the count. */
static pl_status bn_layout(tr_ctx *c, int64_t *n, int64_t *ch, int64_t *inner) {
    for (int i = 0; i < 3; i++) PL_TRY(gu_need_f32(c, i));
    const pl_tensor *X = c->op.in[0];
    if (X->ndim < 2)
        return pl_op_error(&c->op, PL_ERR_INPUT, "input has %d dims, expected at least 2", X->ndim);
    if (c->op.opset < 9 && pl_attr_int(c->op.node, "spatial", 1) == 0)
        return pl_op_error(&c->op, PL_ERR_UNSUPPORTED, "training with spatial=0 is not supported");
    *n = X->dims[0];
    *ch = X->dims[1];
    *inner = 1;
    for (int d = 2; d < X->ndim; d++) *inner *= X->dims[d];
    for (int i = 1; i <= 4; i++)
        if (pl_numel(c->op.in[i]) != *ch)
            return pl_op_error(&c->op, PL_ERR_MODEL, "input %d must hold %lld values", i,
                               (long long)*ch);
    return PL_OK;
}

pl_status grad_bn_fwd(tr_ctx *c) {
    int64_t n, ch, inner;
    PL_TRY(bn_layout(c, &n, &ch, &inner));
    const float *x = gu_f(c->op.in[0]), *scale = gu_f(c->op.in[1]), *bias = gu_f(c->op.in[2]);
    float *y = gu_f(c->op.out[0]);
    const double eps = pl_attr_float(c->op.node, "epsilon", 1e-5f);
    const tr_kernels *kn = tr_kern();
    if (!c->training) {
        const pl_tensor *M = c->op.in[3], *V = c->op.in[4];
        for (int64_t k = 0; k < ch; k++) {
            const double inv = 1.0 / sqrt(pl_get_f64(V, k) + eps);
            const float a = (float)(scale[k] * inv),
                        b = (float)(bias[k] - pl_get_f64(M, k) * scale[k] * inv);
            for (int64_t i = 0; i < n; i++)
                kn->axpb(x + (i * ch + k) * inner, a, b, y + (i * ch + k) * inner, inner);
        }
    } else {
        double *st = tr_state(c, (size_t)(3 * ch + 1) * sizeof(double));
        if (!st) return tr_nomem(c);
        double *mean = st, *var = st + ch, *inv = st + 2 * ch;
        const double cnt = (double)(n * inner);
        st[3 * ch] = cnt;
        for (int64_t k = 0; k < ch; k++) {
            /* sums shifted by the channel's first value, for a stable variance */
            const float shift = n * inner > 0 ? x[k * inner] : 0.0f;
            double s1 = 0, s2 = 0;
            for (int64_t i = 0; i < n; i++) {
                double a, b;
                kn->shifted_sums(x + (i * ch + k) * inner, inner, shift, &a, &b);
                s1 += a;
                s2 += b;
            }
            const double d = cnt > 0 ? s1 / cnt : 0.0;
            mean[k] = shift + d;
            var[k] = cnt > 0 ? s2 / cnt - d * d : 0.0;
            if (var[k] < 0) var[k] = 0;
            inv[k] = 1.0 / sqrt(var[k] + eps);
            const float a = (float)(scale[k] * inv[k]),
                        b = (float)(bias[k] - mean[k] * scale[k] * inv[k]);
            for (int64_t i = 0; i < n; i++)
                kn->axpb(x + (i * ch + k) * inner, a, b, y + (i * ch + k) * inner, inner);
        }
    }
    /* optional outputs: running mean/var as they are, saved batch mean/var */
    for (int o = 1; o < c->op.nout && o <= 4; o++) {
        pl_tensor *t = c->op.out[o];
        if (!t) continue;
        const double *st = c->training ? *c->state : NULL;
        for (int64_t k = 0; k < ch && k < pl_numel(t); k++) {
            double v =
                o <= 2 ? pl_get_f64(c->op.in[o + 2], k) : (st ? st[(o == 3 ? 0 : ch) + k] : 0.0);
            pl_set_f64(t, k, v);
        }
    }
    return PL_OK;
}

pl_status grad_bn_bwd(tr_ctx *c) {
    if (!c->gout[0]) return PL_OK;
    int64_t n, ch, inner;
    PL_TRY(bn_layout(c, &n, &ch, &inner));
    const double *st = *c->state;
    if (!st) return pl_op_error(&c->op, PL_ERR_INTERNAL, "backward without a training forward");
    const double *mean = st, *inv = st + 2 * ch;
    const float *x = gu_f(c->op.in[0]), *scale = gu_f(c->op.in[1]), *dy = gu_f(c->gout[0]);
    float *dx = gu_f(c->gin[0]), *dscale = gu_f(c->gin[1]), *dbias = gu_f(c->gin[2]);
    const double cnt = (double)(n * inner);
    const tr_kernels *kn = tr_kern();
    for (int64_t k = 0; k < ch; k++) {
        double sg = 0, sgx = 0;
        const double m = mean[k], iv = inv[k];
        for (int64_t i = 0; i < n; i++) {
            double a, b;
            kn->grad_sums(x + (i * ch + k) * inner, dy + (i * ch + k) * inner, inner, (float)m, &a,
                          &b);
            sg += a;
            sgx += b;
        }
        sgx *= iv; /* sum of g * xhat */
        if (dbias) dbias[k] += (float)sg;
        if (dscale) dscale[k] += (float)sgx;
        if (dx && cnt > 0) {
            const float f = (float)(scale[k] * iv), mg = (float)(sg / cnt),
                        k2 = (float)(iv * sgx / cnt);
            for (int64_t i = 0; i < n; i++)
                kn->bn_dx(x + (i * ch + k) * inner, dy + (i * ch + k) * inner,
                          dx + (i * ch + k) * inner, inner, f, mg, (float)m, k2);
        }
    }
    return PL_OK;
}

/* The whole batch's mean and variance from the slices' (count-weighted), then
 * running = momentum * running + (1 - momentum) * batch, variance unbiased. */
pl_status grad_bn_commit(const pl_node *nd, int opset, pl_tensor *const *in, void *const *states,
                         const int64_t *rows, int nrep) {
    (void)opset;
    pl_tensor *M = in[3], *V = in[4];
    if (!M || !V || !M->data || !V->data) return PL_OK;
    const int64_t ch = pl_numel(M);
    const double momentum = pl_attr_float(nd, "momentum", 0.9f);
    for (int64_t k = 0; k < ch; k++) {
        double total = 0, s1 = 0, s2 = 0;
        for (int r = 0; r < nrep; r++) {
            const double *st = states[r];
            if (!st || rows[r] <= 0) continue;
            const double cnt = st[3 * ch], m = st[k], v = st[ch + k];
            total += cnt;
            s1 += cnt * m;
            s2 += cnt * (v + m * m);
        }
        if (total <= 0) continue;
        const double mean = s1 / total;
        double var = s2 / total - mean * mean;
        if (var < 0) var = 0;
        if (total > 1) var *= total / (total - 1);
        pl_set_f64(M, k, momentum * pl_get_f64(M, k) + (1 - momentum) * mean);
        pl_set_f64(V, k, momentum * pl_get_f64(V, k) + (1 - momentum) * var);
    }
    return PL_OK;
}

/* ------------------------------------------------------------------ LayerNormalization */

static pl_status ln_layout(tr_ctx *c, int64_t *rows, int64_t *cols) {
    for (int i = 0; i < 3; i++)
        if (pl_has_in(&c->op, i)) PL_TRY(gu_need_f32(c, i));
    const pl_tensor *X = c->op.in[0];
    int axis;
    PL_TRY(pl_op_axis(&c->op, pl_attr_int(c->op.node, "axis", -1), X->ndim, &axis));
    *rows = 1;
    *cols = 1;
    for (int d = 0; d < X->ndim; d++) {
        if (d < axis)
            *rows *= X->dims[d];
        else
            *cols *= X->dims[d];
    }
    if (pl_numel(c->op.in[1]) != *cols || (pl_has_in(&c->op, 2) && pl_numel(c->op.in[2]) != *cols))
        return pl_op_error(&c->op, PL_ERR_UNSUPPORTED,
                           "training needs Scale and B of the normalised shape");
    return PL_OK;
}

pl_status grad_ln_fwd(tr_ctx *c) {
    int64_t rows, cols;
    PL_TRY(ln_layout(c, &rows, &cols));
    const double eps = pl_attr_float(c->op.node, "epsilon", 1e-5f);
    float *st = tr_state(c, (size_t)(2 * rows + 1) * sizeof(float));
    if (!st) return tr_nomem(c);
    const float *bias = pl_has_in(&c->op, 2) ? gu_f(c->op.in[2]) : NULL;
    pl_f32_layernorm_ref(rows, cols, gu_f(c->op.in[0]), gu_f(c->op.in[1]), bias, eps,
                         gu_f(c->op.out[0]), st, st + rows);
    if (c->op.nout > 1 && c->op.out[1])
        for (int64_t r = 0; r < rows && r < pl_numel(c->op.out[1]); r++)
            pl_set_f64(c->op.out[1], r, st[r]);
    if (c->op.nout > 2 && c->op.out[2])
        for (int64_t r = 0; r < rows && r < pl_numel(c->op.out[2]); r++)
            pl_set_f64(c->op.out[2], r, st[rows + r]);
    return PL_OK;
}

pl_status grad_ln_bwd(tr_ctx *c) {
    if (!c->gout[0]) return PL_OK;
    int64_t rows, cols;
    PL_TRY(ln_layout(c, &rows, &cols));
    const float *st = *c->state;
    if (!st) return pl_op_error(&c->op, PL_ERR_INTERNAL, "backward without a forward");
    const float *x = gu_f(c->op.in[0]), *scale = gu_f(c->op.in[1]), *dy = gu_f(c->gout[0]);
    float *dx = gu_f(c->gin[0]), *dscale = gu_f(c->gin[1]),
          *dbias = c->op.nin > 2 ? gu_f(c->gin[2]) : NULL;
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols, *gr = dy + r * cols;
        const float m = st[r], iv = st[rows + r];
        double a = 0, b = 0; /* sums of g*scale and g*scale*xhat */
        for (int64_t j = 0; j < cols; j++) {
            const float xh = (xr[j] - m) * iv, gs = gr[j] * scale[j];
            a += gs;
            b += gs * xh;
            if (dscale) dscale[j] += gr[j] * xh;
            if (dbias) dbias[j] += gr[j];
        }
        if (dx) {
            float *dr = dx + r * cols;
            const float ma = (float)(a / (double)cols), mb = (float)(b / (double)cols);
            for (int64_t j = 0; j < cols; j++) {
                const float xh = (xr[j] - m) * iv;
                dr[j] += iv * (gr[j] * scale[j] - ma - xh * mb);
            }
        }
    }
    return PL_OK;
}
