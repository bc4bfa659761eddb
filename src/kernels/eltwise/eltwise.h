/* eltwise.h -- element-wise float kernels: activations and unary math functions over
 * plain arrays. One entry point per precision takes the function as a `kind`, so the
 * same call can later serve as a fused epilogue of conv/gemm kernels.
 *
 * Parameters (alpha, beta) per kind; unused ones are ignored:
 *   LEAKY_RELU alpha=slope        CLIP alpha=min beta=max       HARD_SIGMOID alpha, beta
 *   ELU alpha                     SELU alpha, beta=gamma        CELU alpha
 *   THRESHOLDED_RELU alpha        SHRINK alpha=bias beta=lambd
 * Every kernel allows y == x (in place). */
#ifndef PL_KERNELS_ELTWISE_H
#define PL_KERNELS_ELTWISE_H

#include <stddef.h>

typedef enum pl_act_kind {
    PL_ACT_IDENTITY = 0,
    /* activations */
    PL_ACT_RELU,
    PL_ACT_LEAKY_RELU,
    PL_ACT_CLIP,
    PL_ACT_SIGMOID,
    PL_ACT_HARD_SIGMOID,
    PL_ACT_HARD_SWISH,
    PL_ACT_TANH,
    PL_ACT_GELU,      /* exact: 0.5 x (1 + erf(x / sqrt 2)) */
    PL_ACT_GELU_TANH, /* tanh approximation */
    PL_ACT_SOFTPLUS,
    PL_ACT_SOFTSIGN,
    PL_ACT_ELU,
    PL_ACT_SELU,
    PL_ACT_CELU,
    PL_ACT_THRESHOLDED_RELU,
    PL_ACT_SHRINK,
    PL_ACT_MISH,
    /* unary math */
    PL_ACT_ABS,
    PL_ACT_NEG,
    PL_ACT_RECIPROCAL,
    PL_ACT_SQRT,
    PL_ACT_EXP,
    PL_ACT_LOG,
    PL_ACT_CEIL,
    PL_ACT_FLOOR,
    PL_ACT_ROUND, /* half to even */
    PL_ACT_SIGN,
    PL_ACT_SIN,
    PL_ACT_COS,
    PL_ACT_TAN,
    PL_ACT_ASIN,
    PL_ACT_ACOS,
    PL_ACT_ATAN,
    PL_ACT_SINH,
    PL_ACT_COSH,
    PL_ACT_ASINH,
    PL_ACT_ACOSH,
    PL_ACT_ATANH,
    PL_ACT_ERF,
    PL_ACT_COUNT
} pl_act_kind;

/* y[i] = f(x[i]) for i < n. An unknown kind copies x to y. */
void pl_ref_act_f32(int kind, float alpha, float beta, const float *x, float *y, size_t n);
void pl_ref_act_f64(int kind, double alpha, double beta, const double *x, double *y, size_t n);

/* Lower-case name of a kind ("relu", "leaky_relu", ...), for messages and tests. */
const char *pl_act_name(int kind);

#endif
