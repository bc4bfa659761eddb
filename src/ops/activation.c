/* activation.c -- activation functions: Relu LeakyRelu PRelu Sigmoid HardSigmoid
 * HardSwish Tanh Gelu Softplus Softsign Elu Selu Celu ThresholdedRelu Shrink Mish Clip.
 * The arithmetic lives in kernels/eltwise (shared with fused conv/gemm epilogues);
 * this file reads attributes and picks the kernel. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "ops/binary.h"
#include "ops/unary.h"

/* Release builds use -O2, where GCC only vectorises loops whose trip count is a known
 * multiple of the vector width; these kernels are variable-length loops. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("tree-vectorize", "vect-cost-model=dynamic")
#endif

#define ALL_NUMERIC (UNARY_FLOAT | UNARY_SINT | UNARY_UINT)

/* Float-only activation with attributes read by `params`. */
#define FLOAT_ACT(name, KIND, ALPHA, BETA)                                                   \
    pl_status activation_##name##_infer(pl_op_ctx *c) {                                      \
        return unary_infer(c, 1, 1, UNARY_FLOAT);                                            \
    }                                                                                        \
    pl_status activation_##name##_run(pl_op_ctx *c) {                                        \
        return unary_float_run(c, KIND, ALPHA, BETA);                                        \
    }

FLOAT_ACT(sigmoid, PL_ACT_SIGMOID, 0, 0)
FLOAT_ACT(tanh, PL_ACT_TANH, 0, 0)
FLOAT_ACT(softplus, PL_ACT_SOFTPLUS, 0, 0)
FLOAT_ACT(softsign, PL_ACT_SOFTSIGN, 0, 0)
FLOAT_ACT(hardswish, PL_ACT_HARD_SWISH, 0, 0)
FLOAT_ACT(mish, PL_ACT_MISH, 0, 0)
FLOAT_ACT(leakyrelu, PL_ACT_LEAKY_RELU, pl_attr_float(c->node, "alpha", 0.01f), 0)
FLOAT_ACT(hardsigmoid, PL_ACT_HARD_SIGMOID, pl_attr_float(c->node, "alpha", 0.2f),
          pl_attr_float(c->node, "beta", 0.5f))
FLOAT_ACT(elu, PL_ACT_ELU, pl_attr_float(c->node, "alpha", 1.0f), 0)
FLOAT_ACT(selu, PL_ACT_SELU, pl_attr_float(c->node, "alpha", 1.67326319217681884765625f),
          pl_attr_float(c->node, "gamma", 1.05070102214813232421875f))
FLOAT_ACT(celu, PL_ACT_CELU, pl_attr_float(c->node, "alpha", 1.0f), 0)
FLOAT_ACT(thresholdedrelu, PL_ACT_THRESHOLDED_RELU, pl_attr_float(c->node, "alpha", 1.0f), 0)

pl_status activation_relu_infer(pl_op_ctx *c) { return unary_infer(c, 1, 1, ALL_NUMERIC); }

pl_status activation_relu_run(pl_op_ctx *c) {
    static const unary_params none;
    return unary_any_run(c, PL_ACT_RELU, &none);
}

pl_status activation_shrink_infer(pl_op_ctx *c) { return unary_infer(c, 1, 1, ALL_NUMERIC); }

pl_status activation_shrink_run(pl_op_ctx *c) {
    unary_params p = {.alpha = pl_attr_float(c->node, "bias", 0.0f),
                      .beta = pl_attr_float(c->node, "lambd", 0.5f)};
    return unary_any_run(c, PL_ACT_SHRINK, &p);
}

static pl_status gelu_kind(pl_op_ctx *c, int *kind) {
    const char *a = pl_attr_str(c->node, "approximate", "none");
    if (strcmp(a, "none") == 0) *kind = PL_ACT_GELU;
    else if (strcmp(a, "tanh") == 0) *kind = PL_ACT_GELU_TANH;
    else
        return pl_op_error(c, PL_ERR_UNSUPPORTED, "attribute 'approximate' = '%s' is not supported",
                           a);
    return PL_OK;
}

pl_status activation_gelu_infer(pl_op_ctx *c) {
    int kind;
    PL_TRY(gelu_kind(c, &kind));
    return unary_infer(c, 1, 1, UNARY_FLOAT);
}

pl_status activation_gelu_run(pl_op_ctx *c) {
    int kind;
    PL_TRY(gelu_kind(c, &kind));
    return unary_float_run(c, kind, 0, 0);
}

/* ------------------------------------------------------------------ Clip */

/* Opset < 11: bounds are float attributes. From 11: optional scalar inputs 1 (min) and
 * 2 (max) of the input's type; integer types from 12. */
pl_status activation_clip_infer(pl_op_ctx *c) {
    if (c->opset < 11) return unary_infer(c, 1, 1, UNARY_FLOAT);
    PL_TRY(unary_infer(c, 1, 3, c->opset >= 12 ? ALL_NUMERIC : UNARY_FLOAT));
    for (int i = 1; i < 3; i++) {
        if (!pl_has_in(c, i)) continue;
        PL_TRY(pl_op_check_same_dtype(c, 0, i));
        if (c->in[i]->ndim >= 0 && pl_numel(c->in[i]) != 1)
            return pl_op_error(c, PL_ERR_MODEL, "input %d ('%s') must be a scalar, has %lld values",
                               i, i == 1 ? "min" : "max", (long long)pl_numel(c->in[i]));
    }
    return PL_OK;
}

pl_status activation_clip_run(pl_op_ctx *c) {
    pl_dtype t = c->in[0]->dtype;
    unary_params p = {0};
    if (c->opset < 11) {
        p.alpha = pl_attr_float(c->node, "min", -FLT_MAX);
        p.beta = pl_attr_float(c->node, "max", FLT_MAX);
        return unary_float_run(c, PL_ACT_CLIP, p.alpha, p.beta);
    }
    for (int i = 1; i < 3; i++)
        if (pl_has_in(c, i) && pl_numel(c->in[i]) != 1)
            return pl_op_error(c, PL_ERR_INPUT, "input %d must be a scalar", i);
    bool lo = pl_has_in(c, 1), hi = pl_has_in(c, 2);
    if (pl_dtype_is_float(t)) {
        p.alpha = lo ? pl_get_f64(c->in[1], 0) : -INFINITY;
        p.beta = hi ? pl_get_f64(c->in[2], 0) : INFINITY;
        return unary_float_run(c, PL_ACT_CLIP, p.alpha, p.beta);
    }
    /* Integers: compare in the input's own signedness, bounds are of the same type. */
    p.ilo = lo ? pl_get_i64(c->in[1], 0) : INT64_MIN;
    p.ihi = hi ? pl_get_i64(c->in[2], 0) : INT64_MAX;
    p.ulo = lo ? (uint64_t)pl_get_i64(c->in[1], 0) : 0;
    p.uhi = hi ? (uint64_t)pl_get_i64(c->in[2], 0) : UINT64_MAX;
    return unary_int_run(c, PL_ACT_CLIP, &p);
}

/* ------------------------------------------------------------------ PRelu */

#define F_PRELU(C, U, x, z) ((x) < 0 ? (x) * (z) : (x))
#define S_PRELU(C, U, x, z) ((x) < 0 ? (C)((U)(x) * (U)(z)) : (x))
#define U_PRELU(C, U, x, z) ((void)(z), (x))

FLOAT_KERNELS(prelu, TY_SAME, ST_SAME, F_PRELU)
INT_KERNELS(prelu, TY_SAME, S_PRELU, U_PRELU)
static const binary_kernel prelu_tab[DTYPE_SLOTS] = {FLOAT_SLOTS(prelu), INT_SLOTS(prelu)};

/* Opset < 7 applied a 1-D slope of size C along axis 1 (channels); later opsets use
 * numpy broadcasting. Returns the slope as a tensor to broadcast (a reshaped view of
 * input 1 in the old case). */
static const pl_tensor *prelu_slope(const pl_op_ctx *c, pl_tensor *view) {
    const pl_tensor *x = c->in[0], *s = c->in[1];
    if (c->opset >= 7 || s->ndim != 1 || x->ndim < 2 || s->dims[0] != x->dims[1] || s->dims[0] == 1)
        return s;
    *view = *s;
    view->ndim = x->ndim - 1;
    for (int d = 1; d < view->ndim; d++) view->dims[d] = 1;
    return view;
}

/* The slope broadcasts to X's shape (unidirectionally): the output is X's shape. */
pl_status activation_prelu_infer(pl_op_ctx *c) {
    PL_TRY(unary_infer(c, 2, 2, ALL_NUMERIC));
    PL_TRY(pl_op_check_same_dtype(c, 0, 1));
    if (!binary_shapes_known(c, 2)) return PL_NEED_VALUE;
    pl_tensor view;
    const pl_tensor *ts[2] = {c->in[0], prelu_slope(c, &view)};
    int nd;
    int64_t dims[PL_MAX_DIMS];
    PL_TRY(pl_op_broadcast(c, 2, ts, &nd, dims));
    const pl_tensor *x = c->in[0];
    bool same = nd == x->ndim;
    for (int d = 0; same && d < nd; d++) same = dims[d] == x->dims[d];
    if (!same) {
        char s1[128], s2[128];
        return pl_op_error(c, PL_ERR_MODEL, "slope of shape %s does not broadcast to X of shape %s",
                           pl_shape_str(c->in[1], s1, sizeof s1), pl_shape_str(x, s2, sizeof s2));
    }
    return PL_OK;
}

pl_status activation_prelu_run(pl_op_ctx *c) {
    if (c->nout < 1 || !c->out[0]) return PL_OK;
    pl_tensor view;
    return binary_apply(c->in[0], prelu_slope(c, &view), c->out[0],
                        binary_kernel_for(prelu_tab, c->in[0]->dtype));
}
