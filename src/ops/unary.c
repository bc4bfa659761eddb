/* unary.c -- one-input math ops: Abs Neg Reciprocal Sqrt Exp Log Ceil Floor Round Sign
 * Sin Cos Tan Asin Acos Atan Sinh Cosh Asinh Acosh Atanh Erf, the float predicates
 * IsNaN IsInf, and the drivers shared with activation.c. */
#include "ops/unary.h"

#include <math.h>
#include <string.h>

#include "ops/binary.h"

/* Release builds use -O2, where GCC only vectorises loops whose trip count is a known
 * multiple of the vector width; these kernels are variable-length loops. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("tree-vectorize", "vect-cost-model=dynamic")
#endif

static unsigned dtype_class(pl_dtype t) {
    if (pl_dtype_is_float(t)) return UNARY_FLOAT;
    if (pl_dtype_is_int(t)) return pl_dtype_is_signed(t) ? UNARY_SINT : UNARY_UINT;
    return 0;
}

pl_status unary_infer(pl_op_ctx *c, int min_in, int max_in, unsigned classes) {
    PL_TRY(pl_op_check_arity(c, min_in, max_in));
    const pl_tensor *x = c->in[0];
    if (!(dtype_class(x->dtype) & classes))
        return pl_op_error(c, PL_ERR_UNSUPPORTED, "input 0 has type %s, which this op does not take",
                           pl_dtype_name(x->dtype));
    if (x->ndim > PL_MAX_DIMS)
        return pl_op_error(c, PL_ERR_MODEL, "input 0 has %d dims, at most %d supported", x->ndim,
                           PL_MAX_DIMS);
    if (!binary_shapes_known(c, 1)) return PL_NEED_VALUE;
    pl_op_same_as(c, 0, 0);
    return PL_OK;
}

/* float16 / bfloat16 go through float32 in blocks that stay in L1. */
#define HALF_BLOCK 512

pl_status unary_float_run(pl_op_ctx *c, int kind, double alpha, double beta) {
    if (c->nout < 1 || !c->out[0]) return PL_OK;
    const pl_tensor *x = c->in[0];
    pl_tensor *y = c->out[0];
    int64_t n = pl_numel(x);
    if (n != pl_numel(y) || x->dtype != y->dtype)
        return pl_op_error(c, PL_ERR_INTERNAL, "output does not match the input");
    switch (x->dtype) {
    case PL_F32:
        pl_ref_act_f32(kind, (float)alpha, (float)beta, (const float *)x->data, (float *)y->data,
                       (size_t)n);
        return PL_OK;
    case PL_F64:
        pl_ref_act_f64(kind, alpha, beta, (const double *)x->data, (double *)y->data, (size_t)n);
        return PL_OK;
    case PL_F16:
    case PL_BF16: {
        bool h = x->dtype == PL_F16;
        const uint16_t *src = (const uint16_t *)x->data;
        uint16_t *dst = (uint16_t *)y->data;
        float buf[HALF_BLOCK];
        for (int64_t i = 0; i < n; i += HALF_BLOCK) {
            int64_t m = n - i < HALF_BLOCK ? n - i : HALF_BLOCK;
            for (int64_t j = 0; j < m; j++)
                buf[j] = h ? pl_f16_to_f32(src[i + j]) : pl_bf16_to_f32(src[i + j]);
            pl_ref_act_f32(kind, (float)alpha, (float)beta, buf, buf, (size_t)m);
            for (int64_t j = 0; j < m; j++)
                dst[i + j] = h ? pl_f32_to_f16(buf[j]) : pl_f32_to_bf16(buf[j]);
        }
        return PL_OK;
    }
    default:
        return pl_op_error(c, PL_ERR_UNSUPPORTED, "input 0 has type %s, which this op does not take",
                           pl_dtype_name(x->dtype));
    }
}

/* double -> int64 without undefined behaviour: NaN -> 0, saturating. */
static inline int64_t sat_i64(double v) {
    if (v != v) return 0;
    if (v >= 9.2233720368547758e18) return INT64_MAX;
    if (v <= -9.2233720368547758e18) return INT64_MIN;
    return (int64_t)v;
}

static inline double shrink_d(double v, const unary_params *p) {
    return v < -p->beta ? v + p->alpha : (v > p->beta ? v - p->alpha : 0.0);
}

/* Integer results wrap (Abs/Neg of the minimum value give the minimum value). */
#define SINT_UNARY(T)                                                                        \
    {                                                                                        \
        const T *x = (const T *)c->in[0]->data;                                              \
        T *y = (T *)c->out[0]->data;                                                         \
        switch (kind) {                                                                      \
        case PL_ACT_ABS:                                                                     \
            for (int64_t i = 0; i < n; i++) y[i] = x[i] < 0 ? (T)(0 - (uint64_t)x[i]) : x[i]; \
            break;                                                                           \
        case PL_ACT_NEG:                                                                     \
            for (int64_t i = 0; i < n; i++) y[i] = (T)(0 - (uint64_t)x[i]);                  \
            break;                                                                           \
        case PL_ACT_SIGN:                                                                    \
            for (int64_t i = 0; i < n; i++) y[i] = (T)((x[i] > 0) - (x[i] < 0));             \
            break;                                                                           \
        case PL_ACT_RELU:                                                                    \
            for (int64_t i = 0; i < n; i++) y[i] = x[i] < 0 ? 0 : x[i];                      \
            break;                                                                           \
        case PL_ACT_CLIP:                                                                    \
            for (int64_t i = 0; i < n; i++) {                                                \
                int64_t v = x[i] < p->ilo ? p->ilo : x[i];                                   \
                y[i] = (T)(v > p->ihi ? p->ihi : v);                                         \
            }                                                                                \
            break;                                                                           \
        case PL_ACT_SHRINK:                                                                  \
            for (int64_t i = 0; i < n; i++) y[i] = (T)sat_i64(shrink_d((double)x[i], p));    \
            break;                                                                           \
        default:                                                                             \
            return bad_kind(c);                                                              \
        }                                                                                    \
        return PL_OK;                                                                        \
    }

#define UINT_UNARY(T)                                                                        \
    {                                                                                        \
        const T *x = (const T *)c->in[0]->data;                                              \
        T *y = (T *)c->out[0]->data;                                                         \
        switch (kind) {                                                                      \
        case PL_ACT_ABS:                                                                     \
        case PL_ACT_RELU:                                                                    \
            memcpy(y, x, (size_t)n * sizeof(T));                                             \
            break;                                                                           \
        case PL_ACT_NEG:                                                                     \
            for (int64_t i = 0; i < n; i++) y[i] = (T)(0 - (uint64_t)x[i]);                  \
            break;                                                                           \
        case PL_ACT_SIGN:                                                                    \
            for (int64_t i = 0; i < n; i++) y[i] = (T)(x[i] != 0);                           \
            break;                                                                           \
        case PL_ACT_CLIP:                                                                    \
            for (int64_t i = 0; i < n; i++) {                                                \
                uint64_t v = x[i] < p->ulo ? p->ulo : x[i];                                  \
                y[i] = (T)(v > p->uhi ? p->uhi : v);                                         \
            }                                                                                \
            break;                                                                           \
        case PL_ACT_SHRINK:                                                                  \
            for (int64_t i = 0; i < n; i++) {                                                \
                double v = shrink_d((double)x[i], p);                                        \
                y[i] = v <= 0 ? 0 : (T)sat_i64(v);                                           \
            }                                                                                \
            break;                                                                           \
        default:                                                                             \
            return bad_kind(c);                                                              \
        }                                                                                    \
        return PL_OK;                                                                        \
    }

static pl_status bad_kind(pl_op_ctx *c) {
    return pl_op_error(c, PL_ERR_UNSUPPORTED, "type %s is not supported by this op",
                       pl_dtype_name(c->in[0]->dtype));
}

pl_status unary_int_run(pl_op_ctx *c, int kind, const unary_params *p) {
    if (c->nout < 1 || !c->out[0]) return PL_OK;
    int64_t n = pl_numel(c->in[0]);
    if (n != pl_numel(c->out[0]) || c->in[0]->dtype != c->out[0]->dtype)
        return pl_op_error(c, PL_ERR_INTERNAL, "output does not match the input");
    switch (c->in[0]->dtype) {
    case PL_I8: SINT_UNARY(int8_t)
    case PL_I16: SINT_UNARY(int16_t)
    case PL_I32: SINT_UNARY(int32_t)
    case PL_I64: SINT_UNARY(int64_t)
    case PL_U8: UINT_UNARY(uint8_t)
    case PL_U16: UINT_UNARY(uint16_t)
    case PL_U32: UINT_UNARY(uint32_t)
    case PL_U64: UINT_UNARY(uint64_t)
    default: return bad_kind(c);
    }
}

pl_status unary_any_run(pl_op_ctx *c, int kind, const unary_params *p) {
    if (pl_dtype_is_float(c->in[0]->dtype)) return unary_float_run(c, kind, p->alpha, p->beta);
    return unary_int_run(c, kind, p);
}

/* ------------------------------------------------------------------ ops */

#define FLOAT_OP(name, KIND)                                                                 \
    pl_status unary_##name##_infer(pl_op_ctx *c) { return unary_infer(c, 1, 1, UNARY_FLOAT); } \
    pl_status unary_##name##_run(pl_op_ctx *c) { return unary_float_run(c, KIND, 0, 0); }

FLOAT_OP(reciprocal, PL_ACT_RECIPROCAL)
FLOAT_OP(sqrt, PL_ACT_SQRT)
FLOAT_OP(exp, PL_ACT_EXP)
FLOAT_OP(log, PL_ACT_LOG)
FLOAT_OP(ceil, PL_ACT_CEIL)
FLOAT_OP(floor, PL_ACT_FLOOR)
FLOAT_OP(round, PL_ACT_ROUND)
FLOAT_OP(sin, PL_ACT_SIN)
FLOAT_OP(cos, PL_ACT_COS)
FLOAT_OP(tan, PL_ACT_TAN)
FLOAT_OP(asin, PL_ACT_ASIN)
FLOAT_OP(acos, PL_ACT_ACOS)
FLOAT_OP(atan, PL_ACT_ATAN)
FLOAT_OP(sinh, PL_ACT_SINH)
FLOAT_OP(cosh, PL_ACT_COSH)
FLOAT_OP(asinh, PL_ACT_ASINH)
FLOAT_OP(acosh, PL_ACT_ACOSH)
FLOAT_OP(atanh, PL_ACT_ATANH)
FLOAT_OP(erf, PL_ACT_ERF)

static const unary_params no_params;

pl_status unary_abs_infer(pl_op_ctx *c) {
    return unary_infer(c, 1, 1, UNARY_FLOAT | UNARY_SINT | UNARY_UINT);
}
pl_status unary_abs_run(pl_op_ctx *c) { return unary_any_run(c, PL_ACT_ABS, &no_params); }
pl_status unary_neg_infer(pl_op_ctx *c) { return unary_infer(c, 1, 1, UNARY_FLOAT | UNARY_SINT); }
pl_status unary_neg_run(pl_op_ctx *c) { return unary_any_run(c, PL_ACT_NEG, &no_params); }
pl_status unary_sign_infer(pl_op_ctx *c) {
    return unary_infer(c, 1, 1, UNARY_FLOAT | UNARY_SINT | UNARY_UINT);
}
pl_status unary_sign_run(pl_op_ctx *c) { return unary_any_run(c, PL_ACT_SIGN, &no_params); }

/* IsNaN / IsInf: float in, bool out. */
pl_status unary_isnan_infer(pl_op_ctx *c) {
    PL_TRY(unary_infer(c, 1, 1, UNARY_FLOAT));
    pl_op_set_out(c, 0, PL_BOOL, c->in[0]->ndim, c->in[0]->dims);
    return PL_OK;
}

pl_status unary_isnan_run(pl_op_ctx *c) {
    if (c->nout < 1 || !c->out[0]) return PL_OK;
    const pl_tensor *x = c->in[0];
    uint8_t *y = (uint8_t *)c->out[0]->data;
    int64_t n = pl_numel(x);
    if (x->dtype == PL_F32) {
        const float *d = (const float *)x->data;
        for (int64_t i = 0; i < n; i++) y[i] = d[i] != d[i];
    } else {
        for (int64_t i = 0; i < n; i++) y[i] = isnan(pl_get_f64(x, i)) != 0;
    }
    return PL_OK;
}

pl_status unary_isinf_infer(pl_op_ctx *c) { return unary_isnan_infer(c); }

pl_status unary_isinf_run(pl_op_ctx *c) {
    if (c->nout < 1 || !c->out[0]) return PL_OK;
    const pl_tensor *x = c->in[0];
    uint8_t *y = (uint8_t *)c->out[0]->data;
    bool neg = pl_attr_int(c->node, "detect_negative", 1) != 0;
    bool pos = pl_attr_int(c->node, "detect_positive", 1) != 0;
    int64_t n = pl_numel(x);
    for (int64_t i = 0; i < n; i++) {
        double v = x->dtype == PL_F32 ? ((const float *)x->data)[i] : pl_get_f64(x, i);
        y[i] = (pos && v == INFINITY) || (neg && v == -INFINITY);
    }
    return PL_OK;
}
