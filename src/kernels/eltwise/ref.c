/* ref.c -- reference element-wise kernels (plain C, libm). These are the truth that
 * faster ISA versions are tested against, so they favour accuracy over speed; the
 * switch is outside the loops so that the simple kinds still vectorise. */
#include "kernels/eltwise/eltwise.h"

#include <math.h>

/* Release builds use -O2, where GCC only vectorises loops whose trip count is a known
 * multiple of the vector width; these kernels are variable-length loops. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("tree-vectorize", "vect-cost-model=dynamic")
#endif

static const char *const act_names[PL_ACT_COUNT] = {
    [PL_ACT_IDENTITY] = "identity",
    [PL_ACT_RELU] = "relu",
    [PL_ACT_LEAKY_RELU] = "leaky_relu",
    [PL_ACT_CLIP] = "clip",
    [PL_ACT_SIGMOID] = "sigmoid",
    [PL_ACT_HARD_SIGMOID] = "hard_sigmoid",
    [PL_ACT_HARD_SWISH] = "hard_swish",
    [PL_ACT_TANH] = "tanh",
    [PL_ACT_GELU] = "gelu",
    [PL_ACT_GELU_TANH] = "gelu_tanh",
    [PL_ACT_SOFTPLUS] = "softplus",
    [PL_ACT_SOFTSIGN] = "softsign",
    [PL_ACT_ELU] = "elu",
    [PL_ACT_SELU] = "selu",
    [PL_ACT_CELU] = "celu",
    [PL_ACT_THRESHOLDED_RELU] = "thresholded_relu",
    [PL_ACT_SHRINK] = "shrink",
    [PL_ACT_MISH] = "mish",
    [PL_ACT_ABS] = "abs",
    [PL_ACT_NEG] = "neg",
    [PL_ACT_RECIPROCAL] = "reciprocal",
    [PL_ACT_SQRT] = "sqrt",
    [PL_ACT_EXP] = "exp",
    [PL_ACT_LOG] = "log",
    [PL_ACT_CEIL] = "ceil",
    [PL_ACT_FLOOR] = "floor",
    [PL_ACT_ROUND] = "round",
    [PL_ACT_SIGN] = "sign",
    [PL_ACT_SIN] = "sin",
    [PL_ACT_COS] = "cos",
    [PL_ACT_TAN] = "tan",
    [PL_ACT_ASIN] = "asin",
    [PL_ACT_ACOS] = "acos",
    [PL_ACT_ATAN] = "atan",
    [PL_ACT_SINH] = "sinh",
    [PL_ACT_COSH] = "cosh",
    [PL_ACT_ASINH] = "asinh",
    [PL_ACT_ACOSH] = "acosh",
    [PL_ACT_ATANH] = "atanh",
    [PL_ACT_ERF] = "erf",
};

const char *pl_act_name(int kind) {
    return kind >= 0 && kind < PL_ACT_COUNT && act_names[kind] ? act_names[kind] : "unknown";
}

/* softplus(x) = log(1 + e^x), written so that it neither overflows for large x nor
 * loses the small result for very negative x. */
static inline float softplus_f32(float v) {
    return v > 0 ? v + log1pf(expf(-v)) : log1pf(expf(v));
}
static inline double softplus_f64(double v) {
    return v > 0 ? v + log1p(exp(-v)) : log1p(exp(v));
}

/* The body is written once and instantiated for float (M(f) = f##f) and double. */
#define ACT_BODY(T, M, SOFTPLUS)                                                             \
    const T zero = 0, one = 1;                                                               \
    size_t i;                                                                                \
    switch (kind) {                                                                          \
    case PL_ACT_RELU:                                                                        \
        for (i = 0; i < n; i++) y[i] = x[i] < zero ? zero : x[i];                            \
        break;                                                                               \
    case PL_ACT_LEAKY_RELU:                                                                  \
        for (i = 0; i < n; i++) y[i] = x[i] < zero ? alpha * x[i] : x[i];                    \
        break;                                                                               \
    case PL_ACT_CLIP: /* min(max(x, lo), hi): all hi when lo > hi; NaN passes */             \
        for (i = 0; i < n; i++) {                                                            \
            T v = x[i] < alpha ? alpha : x[i];                                               \
            y[i] = v > beta ? beta : v;                                                      \
        }                                                                                    \
        break;                                                                               \
    case PL_ACT_SIGMOID:                                                                     \
        for (i = 0; i < n; i++) {                                                            \
            T v = x[i];                                                                      \
            if (v >= zero) y[i] = one / (one + M(exp)(-v));                                  \
            else {                                                                           \
                T e = M(exp)(v);                                                             \
                y[i] = e / (one + e);                                                        \
            }                                                                                \
        }                                                                                    \
        break;                                                                               \
    case PL_ACT_HARD_SIGMOID:                                                                \
        for (i = 0; i < n; i++) {                                                            \
            T v = alpha * x[i] + beta;                                                       \
            v = v < zero ? zero : v;                                                         \
            y[i] = v > one ? one : v;                                                        \
        }                                                                                    \
        break;                                                                               \
    case PL_ACT_HARD_SWISH:                                                                  \
        for (i = 0; i < n; i++) {                                                            \
            T v = x[i] * (T)(1.0 / 6.0) + (T)0.5;                                            \
            v = v < zero ? zero : v;                                                         \
            v = v > one ? one : v;                                                           \
            y[i] = x[i] * v;                                                                 \
        }                                                                                    \
        break;                                                                               \
    case PL_ACT_TANH:                                                                        \
        for (i = 0; i < n; i++) y[i] = M(tanh)(x[i]);                                        \
        break;                                                                               \
    case PL_ACT_GELU:                                                                        \
        for (i = 0; i < n; i++)                                                              \
            y[i] = (T)0.5 * x[i] * (one + M(erf)(x[i] * (T)0.70710678118654752440));         \
        break;                                                                               \
    case PL_ACT_GELU_TANH:                                                                   \
        for (i = 0; i < n; i++) {                                                            \
            T v = x[i];                                                                      \
            T u = (T)0.79788456080286535588 * (v + (T)0.044715 * v * v * v);                 \
            y[i] = (T)0.5 * v * (one + M(tanh)(u));                                          \
        }                                                                                    \
        break;                                                                               \
    case PL_ACT_SOFTPLUS:                                                                    \
        for (i = 0; i < n; i++) y[i] = SOFTPLUS(x[i]);                                       \
        break;                                                                               \
    case PL_ACT_SOFTSIGN:                                                                    \
        for (i = 0; i < n; i++) y[i] = x[i] / (one + M(fabs)(x[i]));                         \
        break;                                                                               \
    case PL_ACT_ELU:                                                                         \
        for (i = 0; i < n; i++) y[i] = x[i] < zero ? alpha * M(expm1)(x[i]) : x[i];          \
        break;                                                                               \
    case PL_ACT_SELU:                                                                        \
        for (i = 0; i < n; i++)                                                              \
            y[i] = x[i] > zero ? beta * x[i] : beta * (alpha * M(exp)(x[i]) - alpha);        \
        break;                                                                               \
    case PL_ACT_CELU:                                                                        \
        for (i = 0; i < n; i++)                                                              \
            y[i] = x[i] < zero ? alpha * M(expm1)(x[i] / alpha) : x[i];                      \
        break;                                                                               \
    case PL_ACT_THRESHOLDED_RELU:                                                            \
        for (i = 0; i < n; i++) y[i] = x[i] > alpha ? x[i] : zero;                           \
        break;                                                                               \
    case PL_ACT_SHRINK:                                                                      \
        for (i = 0; i < n; i++) {                                                            \
            T v = x[i];                                                                      \
            y[i] = v < -beta ? v + alpha : (v > beta ? v - alpha : zero);                    \
        }                                                                                    \
        break;                                                                               \
    case PL_ACT_MISH:                                                                        \
        for (i = 0; i < n; i++) y[i] = x[i] * M(tanh)(SOFTPLUS(x[i]));                       \
        break;                                                                               \
    case PL_ACT_ABS:                                                                         \
        for (i = 0; i < n; i++) y[i] = M(fabs)(x[i]);                                        \
        break;                                                                               \
    case PL_ACT_NEG:                                                                         \
        for (i = 0; i < n; i++) y[i] = -x[i];                                                \
        break;                                                                               \
    case PL_ACT_RECIPROCAL:                                                                  \
        for (i = 0; i < n; i++) y[i] = one / x[i];                                           \
        break;                                                                               \
    case PL_ACT_SQRT:                                                                        \
        for (i = 0; i < n; i++) y[i] = M(sqrt)(x[i]);                                        \
        break;                                                                               \
    case PL_ACT_EXP:                                                                         \
        for (i = 0; i < n; i++) y[i] = M(exp)(x[i]);                                         \
        break;                                                                               \
    case PL_ACT_LOG:                                                                         \
        for (i = 0; i < n; i++) y[i] = M(log)(x[i]);                                         \
        break;                                                                               \
    case PL_ACT_CEIL:                                                                        \
        for (i = 0; i < n; i++) y[i] = M(ceil)(x[i]);                                        \
        break;                                                                               \
    case PL_ACT_FLOOR:                                                                       \
        for (i = 0; i < n; i++) y[i] = M(floor)(x[i]);                                       \
        break;                                                                               \
    case PL_ACT_ROUND:                                                                       \
        for (i = 0; i < n; i++) y[i] = M(nearbyint)(x[i]);                                   \
        break;                                                                               \
    case PL_ACT_SIGN:                                                                        \
        for (i = 0; i < n; i++) y[i] = x[i] > zero ? one : (x[i] < zero ? -one : x[i]);      \
        break;                                                                               \
    case PL_ACT_SIN:                                                                         \
        for (i = 0; i < n; i++) y[i] = M(sin)(x[i]);                                         \
        break;                                                                               \
    case PL_ACT_COS:                                                                         \
        for (i = 0; i < n; i++) y[i] = M(cos)(x[i]);                                         \
        break;                                                                               \
    case PL_ACT_TAN:                                                                         \
        for (i = 0; i < n; i++) y[i] = M(tan)(x[i]);                                         \
        break;                                                                               \
    case PL_ACT_ASIN:                                                                        \
        for (i = 0; i < n; i++) y[i] = M(asin)(x[i]);                                        \
        break;                                                                               \
    case PL_ACT_ACOS:                                                                        \
        for (i = 0; i < n; i++) y[i] = M(acos)(x[i]);                                        \
        break;                                                                               \
    case PL_ACT_ATAN:                                                                        \
        for (i = 0; i < n; i++) y[i] = M(atan)(x[i]);                                        \
        break;                                                                               \
    case PL_ACT_SINH:                                                                        \
        for (i = 0; i < n; i++) y[i] = M(sinh)(x[i]);                                        \
        break;                                                                               \
    case PL_ACT_COSH:                                                                        \
        for (i = 0; i < n; i++) y[i] = M(cosh)(x[i]);                                        \
        break;                                                                               \
    case PL_ACT_ASINH:                                                                       \
        for (i = 0; i < n; i++) y[i] = M(asinh)(x[i]);                                       \
        break;                                                                               \
    case PL_ACT_ACOSH:                                                                       \
        for (i = 0; i < n; i++) y[i] = M(acosh)(x[i]);                                       \
        break;                                                                               \
    case PL_ACT_ATANH:                                                                       \
        for (i = 0; i < n; i++) y[i] = M(atanh)(x[i]);                                       \
        break;                                                                               \
    case PL_ACT_ERF:                                                                         \
        for (i = 0; i < n; i++) y[i] = M(erf)(x[i]);                                         \
        break;                                                                               \
    default:                                                                                 \
        if (y != x)                                                                          \
            for (i = 0; i < n; i++) y[i] = x[i];                                             \
        break;                                                                               \
    }

#define MF(fn) fn##f
#define MD(fn) fn

void pl_ref_act_f32(int kind, float alpha, float beta, const float *x, float *y, size_t n) {
    ACT_BODY(float, MF, softplus_f32)
}

void pl_ref_act_f64(int kind, double alpha, double beta, const double *x, double *y, size_t n) {
    ACT_BODY(double, MD, softplus_f64)
}
