/* cumsum.c -- CumSum: running sums along the axis given by input 1, with the
 * 'exclusive' (each output leaves out its own element) and 'reverse' (sum from the end)
 * attributes. Floats accumulate in double; integers in int64 with wrap-around. */
#include <stdlib.h>
#include <string.h>

#include "ops/op.h"

static pl_status cs_check(const pl_op_ctx *c) {
    PL_TRY(pl_op_check_arity(c, 2, 2));
    const pl_tensor *x = c->in[0];
    if (x->dtype == PL_STRING || x->dtype == PL_BOOL || pl_dtype_size(x->dtype) == 0)
        return pl_op_error(c, PL_ERR_UNSUPPORTED, "input type %s is not supported",
                           pl_dtype_name(x->dtype));
    const pl_tensor *a = c->in[1];
    if (a->ndim > 1 || (a->ndim == 1 && a->dims[0] != 1))
        return pl_op_error(c, PL_ERR_MODEL, "axis input must be a scalar");
    return pl_op_input_known(c, 0);
}

/* The axis, or PL_NEED_VALUE if not known yet. */
static pl_status cs_axis(const pl_op_ctx *c, int *axis) {
    int64_t v[1];
    int n = 0;
    PL_TRY(pl_op_input_ints(c, 1, v, 1, &n));
    if (n != 1) return pl_op_error(c, PL_ERR_MODEL, "axis input must hold one value, has %d", n);
    if (c->in[0]->ndim == 0) return pl_op_error(c, PL_ERR_MODEL, "input is a scalar, needs rank >= 1");
    return pl_op_axis(c, v[0], c->in[0]->ndim, axis);
}

pl_status cumsum_infer(pl_op_ctx *c) {
    PL_TRY(cs_check(c));
    int axis;
    pl_status st = cs_axis(c, &axis); /* validate when known; the shape does not need it */
    if (st != PL_OK && st != PL_NEED_VALUE) return st;
    pl_op_same_as(c, 0, 0);
    return PL_OK;
}

/* Visits the axis forwards or backwards for every (outer, inner) column at once, with
 * one accumulator per inner position, so the input is read in long contiguous rows. */
#define CS_LOOP(ACC, LOAD, STORE)                                                           \
    do {                                                                                    \
        for (int64_t o = 0; o < outer; o++) {                                               \
            for (int64_t i = 0; i < inner; i++) acc[i] = 0;                                 \
            for (int64_t s = 0; s < n; s++) {                                               \
                int64_t j = reverse ? n - 1 - s : s;                                        \
                int64_t base = (o * n + j) * inner;                                         \
                for (int64_t i = 0; i < inner; i++) {                                       \
                    ACC v = LOAD(base + i);                                                 \
                    if (exclusive) {                                                        \
                        STORE(base + i, acc[i]);                                            \
                        acc[i] = ADD(acc[i], v);                                            \
                    } else {                                                                \
                        acc[i] = ADD(acc[i], v);                                            \
                        STORE(base + i, acc[i]);                                            \
                    }                                                                       \
                }                                                                           \
            }                                                                               \
        }                                                                                   \
    } while (0)

pl_status cumsum_run(pl_op_ctx *c) {
    PL_TRY(cs_check(c));
    int axis;
    PL_TRY(cs_axis(c, &axis));
    const pl_tensor *x = c->in[0];
    pl_tensor *y = c->out[0];
    if (!y) return PL_OK;
    bool exclusive = pl_attr_int(c->node, "exclusive", 0) != 0;
    bool reverse = pl_attr_int(c->node, "reverse", 0) != 0;
    int64_t n = x->dims[axis], outer = 1, inner = 1;
    for (int d = 0; d < axis; d++) outer *= x->dims[d];
    for (int d = axis + 1; d < x->ndim; d++) inner *= x->dims[d];
    if (pl_numel(x) == 0) return PL_OK;

    if (pl_dtype_is_float(x->dtype)) {
        double *acc = malloc((size_t)inner * sizeof *acc);
        if (!acc) return pl_op_error(c, PL_ERR_NOMEM, "out of memory");
#define ADD(a, b) ((a) + (b))
        if (x->dtype == PL_F32) {
            const float *xp = x->data;
            float *yp = y->data;
#define LD(k) (double)xp[k]
#define ST(k, v) yp[k] = (float)(v)
            CS_LOOP(double, LD, ST);
#undef LD
#undef ST
        } else if (x->dtype == PL_F64) {
            const double *xp = x->data;
            double *yp = y->data;
#define LD(k) xp[k]
#define ST(k, v) yp[k] = (v)
            CS_LOOP(double, LD, ST);
#undef LD
#undef ST
        } else {
#define LD(k) pl_get_f64(x, k)
#define ST(k, v) pl_set_f64(y, k, v)
            CS_LOOP(double, LD, ST);
#undef LD
#undef ST
        }
#undef ADD
        free(acc);
        return PL_OK;
    }
    int64_t *acc = malloc((size_t)inner * sizeof *acc);
    if (!acc) return pl_op_error(c, PL_ERR_NOMEM, "out of memory");
#define ADD(a, b) (int64_t)((uint64_t)(a) + (uint64_t)(b))
#define LD(k) pl_get_i64(x, k)
#define ST(k, v) pl_set_i64(y, k, v)
    CS_LOOP(int64_t, LD, ST);
#undef LD
#undef ST
#undef ADD
    free(acc);
    return PL_OK;
}
