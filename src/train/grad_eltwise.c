/* grad_eltwise.c -- backward of activations, element-wise math and the broadcasting
 * arithmetic ops, and Dropout in training mode. Forward passes are the inference ops'
 * except Dropout's. Gradients of broadcast operands are summed over the broadcast
 * axes. */
#include <math.h>
#include <stdlib.h>

#include "train/grad_kernels.h"
#include "train/grad_util.h"

/* ------------------------------------------------------------------ unary */

/* The common shape of a unary backward: gx[i] += gy[i] * f'(x[i], y[i]). */
#define UNARY_BWD(fname, EXPR)                                                                     \
    pl_status fname(tr_ctx *c) {                                                                   \
        PL_TRY(gu_need_f32(c, 0));                                                                 \
        if (!c->gin[0] || !c->gout[0]) return PL_OK;                                               \
        const float *x = gu_f(c->op.in[0]), *y = gu_f(c->op.out[0]), *g = gu_f(c->gout[0]);        \
        float *gx = gu_f(c->gin[0]);                                                               \
        const int64_t n = pl_numel(c->op.in[0]);                                                   \
        (void)x;                                                                                   \
        (void)y;                                                                                   \
        for (int64_t i = 0; i < n; i++) gx[i] += g[i] * (EXPR);                                    \
        return PL_OK;                                                                              \
    }

pl_status grad_identity_bwd(tr_ctx *c) {
    if (!c->gin[0] || !c->gout[0]) return PL_OK;
    gu_add(gu_f(c->gin[0]), gu_f(c->gout[0]), pl_numel(c->gout[0]));
    return PL_OK;
}

pl_status grad_relu_fwd(tr_ctx *c) {
    PL_TRY(gu_need_f32(c, 0));
    tr_kern()->relu_fwd(gu_f(c->op.in[0]), gu_f(c->op.out[0]), pl_numel(c->op.in[0]));
    return PL_OK;
}

pl_status grad_relu_bwd(tr_ctx *c) {
    PL_TRY(gu_need_f32(c, 0));
    if (!c->gin[0] || !c->gout[0]) return PL_OK;
    tr_kern()->relu_bwd(gu_f(c->op.in[0]), gu_f(c->gout[0]), gu_f(c->gin[0]),
                        pl_numel(c->op.in[0]));
    return PL_OK;
}

UNARY_BWD(grad_sigmoid_bwd, y[i] * (1.0f - y[i]))
UNARY_BWD(grad_tanh_bwd, 1.0f - y[i] * y[i])
UNARY_BWD(grad_erf_bwd, 1.1283791670955126f * expf(-x[i] * x[i]))
UNARY_BWD(grad_exp_bwd, y[i])
UNARY_BWD(grad_log_bwd, 1.0f / x[i])
UNARY_BWD(grad_sqrt_bwd, y[i] > 0.0f ? 0.5f / y[i] : 0.0f)
UNARY_BWD(grad_neg_bwd, -1.0f)
UNARY_BWD(grad_abs_bwd, x[i] > 0.0f ? 1.0f : (x[i] < 0.0f ? -1.0f : 0.0f))
UNARY_BWD(grad_reciprocal_bwd, -y[i] * y[i])
UNARY_BWD(grad_softplus_bwd, 1.0f / (1.0f + expf(-x[i])))

pl_status grad_leakyrelu_bwd(tr_ctx *c) {
    PL_TRY(gu_need_f32(c, 0));
    if (!c->gin[0] || !c->gout[0]) return PL_OK;
    const float alpha = pl_attr_float(c->op.node, "alpha", 0.01f);
    const float *x = gu_f(c->op.in[0]), *g = gu_f(c->gout[0]);
    float *gx = gu_f(c->gin[0]);
    const int64_t n = pl_numel(c->op.in[0]);
    for (int64_t i = 0; i < n; i++) {
        const float gv = g[i];
        gx[i] += x[i] > 0.0f ? gv : alpha * gv;
    }
    return PL_OK;
}

/* Gelu (opset 20): exact 0.5 x (1 + erf(x / sqrt 2)) or the tanh approximation. */
pl_status grad_gelu_bwd(tr_ctx *c) {
    PL_TRY(gu_need_f32(c, 0));
    if (!c->gin[0] || !c->gout[0]) return PL_OK;
    const char *approx = pl_attr_str(c->op.node, "approximate", "none");
    const float *x = gu_f(c->op.in[0]), *g = gu_f(c->gout[0]);
    float *gx = gu_f(c->gin[0]);
    const int64_t n = pl_numel(c->op.in[0]);
    if (!strcmp(approx, "tanh")) {
        const double k = 0.7978845608028654, a = 0.044715;
        for (int64_t i = 0; i < n; i++) {
            double v = x[i], u = k * (v + a * v * v * v), t = tanh(u);
            double d = 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * k * (1 + 3 * a * v * v);
            gx[i] += g[i] * (float)d;
        }
    } else if (!strcmp(approx, "none")) {
        for (int64_t i = 0; i < n; i++) {
            double v = x[i];
            double d = 0.5 * (1 + erf(v * 0.7071067811865476)) +
                       v * exp(-0.5 * v * v) * 0.3989422804014327;
            gx[i] += g[i] * (float)d;
        }
    } else {
        return pl_op_error(&c->op, PL_ERR_UNSUPPORTED,
                           "attribute 'approximate' = '%s' is not supported", approx);
    }
    return PL_OK;
}

/* Clip: the gradient passes where min <= x <= max (bounds from attributes before
 * opset 11, optional inputs 1 and 2 after). */
pl_status grad_clip_bwd(tr_ctx *c) {
    PL_TRY(gu_need_f32(c, 0));
    if (!c->gin[0] || !c->gout[0]) return PL_OK;
    float lo = -INFINITY, hi = INFINITY;
    if (c->op.opset < 11) {
        lo = pl_attr_float(c->op.node, "min", -INFINITY);
        hi = pl_attr_float(c->op.node, "max", INFINITY);
    } else {
        if (pl_has_in(&c->op, 1) && pl_numel(c->op.in[1]) >= 1)
            lo = (float)pl_get_f64(c->op.in[1], 0);
        if (pl_has_in(&c->op, 2) && pl_numel(c->op.in[2]) >= 1)
            hi = (float)pl_get_f64(c->op.in[2], 0);
    }
    const float *x = gu_f(c->op.in[0]), *g = gu_f(c->gout[0]);
    float *gx = gu_f(c->gin[0]);
    const int64_t n = pl_numel(c->op.in[0]);
    for (int64_t i = 0; i < n; i++) {
        const float gv = g[i];
        gx[i] += x[i] >= lo && x[i] <= hi ? gv : 0.0f;
    }
    return PL_OK;
}

/* Cast between float32 values is the identity; other casts carry no gradient. */
pl_status grad_cast_bwd(tr_ctx *c) {
    if (!c->gin[0] || !c->gout[0]) return PL_OK;
    if (c->op.in[0]->dtype != PL_F32 || c->op.out[0]->dtype != PL_F32) return PL_OK;
    gu_add(gu_f(c->gin[0]), gu_f(c->gout[0]), pl_numel(c->gout[0]));
    return PL_OK;
}

/* ------------------------------------------------------------------ binary */

/* Gradient of y = a (op) b for both operands, broadcast. The exponent of Pow is not
 * differentiated (diff bit 1 is clear). */
typedef enum bin_kind { BIN_ADD, BIN_SUB, BIN_MUL, BIN_DIV, BIN_POW } bin_kind;

static pl_status binary_bwd(tr_ctx *c, bin_kind kind) {
    PL_TRY(gu_need_f32(c, 0));
    if (kind != BIN_POW) PL_TRY(gu_need_f32(c, 1));
    if (!c->gout[0]) return PL_OK;
    float *ga = gu_f(c->gin[0]), *gb = kind == BIN_POW ? NULL : gu_f(c->gin[1]);
    if (!ga && !gb) return PL_OK;
    const pl_tensor *A = c->op.in[0], *B = c->op.in[1], *Y = c->op.out[0];
    const float *a = gu_f(A), *b = B->dtype == PL_F32 ? gu_f(B) : NULL, *g = gu_f(c->gout[0]);
    const pl_tensor *ops[3] = {NULL, A, B};
    gu_walk w;
    gu_walk_init(&w, Y->ndim, Y->dims, 3, ops);
    const int64_t n = pl_numel(Y);
    if (n == 0) return PL_OK;
    switch (kind) {
    case BIN_ADD:
        if (ga) GU_WALK(&w, n, ga[o1] += g[i]);
        if (gb) GU_WALK(&w, n, gb[o2] += g[i]);
        break;
    case BIN_SUB:
        if (ga) GU_WALK(&w, n, ga[o1] += g[i]);
        if (gb) GU_WALK(&w, n, gb[o2] -= g[i]);
        break;
    case BIN_MUL:
        if (ga) GU_WALK(&w, n, ga[o1] += g[i] * b[o2]);
        if (gb) GU_WALK(&w, n, gb[o2] += g[i] * a[o1]);
        break;
    case BIN_DIV:
        if (ga) GU_WALK(&w, n, ga[o1] += g[i] / b[o2]);
        if (gb) GU_WALK(&w, n, gb[o2] -= g[i] * a[o1] / (b[o2] * b[o2]));
        break;
    case BIN_POW:
        if (b) {
            GU_WALK(&w, n, ga[o1] += g[i] * b[o2] * powf(a[o1], b[o2] - 1.0f));
        } else {
            GU_WALK(&w, n, {
                double e = pl_get_f64(B, o2);
                ga[o1] += g[i] * (float)(e * pow(a[o1], e - 1.0));
            });
        }
        break;
    }
    return PL_OK;
}

pl_status grad_add_bwd(tr_ctx *c) {
    return binary_bwd(c, BIN_ADD);
}
pl_status grad_sub_bwd(tr_ctx *c) {
    return binary_bwd(c, BIN_SUB);
}
pl_status grad_mul_bwd(tr_ctx *c) {
    return binary_bwd(c, BIN_MUL);
}
pl_status grad_div_bwd(tr_ctx *c) {
    return binary_bwd(c, BIN_DIV);
}
pl_status grad_pow_bwd(tr_ctx *c) {
    return binary_bwd(c, BIN_POW);
}

/* ------------------------------------------------------------------ Dropout */

static double dropout_ratio(const tr_ctx *c) {
    if (c->op.opset < 12) return pl_attr_float(c->op.node, "ratio", 0.5f);
    if (pl_has_in(&c->op, 1) && c->op.in[1]->data && pl_numel(c->op.in[1]) >= 1)
        return pl_get_f64(c->op.in[1], 0);
    return 0.5;
}

static uint64_t dropout_hash(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Training mode drops each element with probability `ratio` and scales the rest by
 * 1 / (1 - ratio). The draw for an element depends only on the step seed, the node and
 * the element's index in the whole batch, so it does not depend on how the batch is
 * split over threads. The trainer decides the mode (steps train, evaluation does not);
 * a training_mode input is ignored. */
pl_status grad_dropout_fwd(tr_ctx *c) {
    PL_TRY(gu_need_f32(c, 0));
    const pl_tensor *X = c->op.in[0];
    pl_tensor *Y = c->op.out[0], *M = c->op.nout > 1 ? c->op.out[1] : NULL;
    const int64_t n = pl_numel(X);
    const double ratio = dropout_ratio(c);
    if (!(ratio >= 0.0 && ratio <= 1.0))
        return pl_op_error(&c->op, PL_ERR_MODEL, "ratio %g is not in [0, 1]", ratio);
    const float *x = gu_f(X);
    float *y = Y ? gu_f(Y) : NULL;
    if (!c->training || ratio == 0.0) {
        if (y) memcpy(y, x, (size_t)n * sizeof(float));
        if (M)
            for (int64_t i = 0; i < n; i++) pl_set_f64(M, i, 1.0);
        return PL_OK;
    }
    uint8_t *mask = tr_state(c, (size_t)n);
    if (!mask) return tr_nomem(c);
    const int64_t per = X->ndim > 0 && X->dims[0] > 0 ? n / X->dims[0] : n;
    const uint64_t base = (uint64_t)(c->row0 * per);
    const uint32_t cut = ratio >= 1.0 ? 0xffffffffu : (uint32_t)(ratio * 4294967296.0);
    const float scale = ratio >= 1.0 ? 0.0f : (float)(1.0 / (1.0 - ratio));
    for (int64_t i = 0; i < n; i++) {
        uint32_t u =
            (uint32_t)(dropout_hash(c->seed ^ ((base + (uint64_t)i) * 0xd1342543de82ef95ull)) >>
                       32);
        mask[i] = ratio < 1.0 && u >= cut;
        if (y) y[i] = mask[i] ? x[i] * scale : 0.0f;
    }
    if (M)
        for (int64_t i = 0; i < n; i++) pl_set_f64(M, i, mask[i]);
    return PL_OK;
}

pl_status grad_dropout_bwd(tr_ctx *c) {
    if (!c->gin[0] || !c->gout[0]) return PL_OK;
    const double ratio = dropout_ratio(c);
    const int64_t n = pl_numel(c->op.in[0]);
    const float *g = gu_f(c->gout[0]);
    float *gx = gu_f(c->gin[0]);
    if (!c->training || ratio == 0.0) {
        gu_add(gx, g, n);
        return PL_OK;
    }
    const uint8_t *mask = *c->state;
    if (!mask) return pl_op_error(&c->op, PL_ERR_INTERNAL, "backward without a training forward");
    const float scale = ratio >= 1.0 ? 0.0f : (float)(1.0 / (1.0 - ratio));
    for (int64_t i = 0; i < n; i++)
        if (mask[i]) gx[i] += g[i] * scale;
    return PL_OK;
}
