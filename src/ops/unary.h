/* unary.h -- shared drivers of the one-input element-wise ops (unary.c, activation.c):
 * type checks, and running a pl_act kernel over any float type or an integer variant
 * of the few functions that are defined on integers. */
#ifndef PL_OPS_UNARY_H
#define PL_OPS_UNARY_H

#include "kernels/eltwise/eltwise.h"
#include "ops/op.h"

enum {
    UNARY_FLOAT = 1, /* float32/64, float16, bfloat16 */
    UNARY_SINT = 2,  /* int8..int64 */
    UNARY_UINT = 4,  /* uint8..uint64 */
};

/* Parameters of one call. Floats use alpha/beta; integer Clip uses the bounds of its
 * signedness (already in the type's range). */
typedef struct unary_params {
    double alpha, beta;
    int64_t ilo, ihi;
    uint64_t ulo, uhi;
} unary_params;

/* Checks one present input (arity min_in..max_in, extra inputs not checked) of a type
 * in `classes`, and gives output 0 its type and shape. */
pl_status unary_infer(pl_op_ctx *c, int min_in, int max_in, unsigned classes);
/* out[0] = f(in[0]) for a float input. */
pl_status unary_float_run(pl_op_ctx *c, int kind, double alpha, double beta);
/* The same for integer inputs; kind is one of ABS NEG SIGN RELU CLIP SHRINK. */
pl_status unary_int_run(pl_op_ctx *c, int kind, const unary_params *p);
/* Float or integer, by the input's type. */
pl_status unary_any_run(pl_op_ctx *c, int kind, const unary_params *p);

#endif
