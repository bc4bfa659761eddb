/* argmax.c -- ArgMax and ArgMin: int64 index of the largest / smallest element along
 * one axis (attributes axis, keepdims, select_last_index). NaN counts as larger and as
 * smaller than everything, so that, as in numpy, the first NaN wins both. */
#include <stdlib.h>
#include <string.h>

#include "ops/op.h"

/* Validates the node and gives the reduced axis. */
static pl_status arg_setup(const pl_op_ctx *c, int *axis) {
    PL_TRY(pl_op_check_arity(c, 1, 1));
    const pl_tensor *x = c->in[0];
    if (x->dtype == PL_STRING || pl_dtype_size(x->dtype) == 0)
        return pl_op_error(c, PL_ERR_UNSUPPORTED, "input type %s is not supported",
                           pl_dtype_name(x->dtype));
    PL_TRY(pl_op_input_known(c, 0));
    if (x->ndim == 0) return pl_op_error(c, PL_ERR_MODEL, "input is a scalar, needs rank >= 1");
    PL_TRY(pl_op_axis(c, pl_attr_int(c->node, "axis", 0), x->ndim, axis));
    if (x->dims[*axis] == 0)
        return pl_op_error(c, PL_ERR_INPUT, "axis %d has size 0: no element to pick", *axis);
    return PL_OK;
}

pl_status argmax_infer(pl_op_ctx *c) {
    int axis;
    PL_TRY(arg_setup(c, &axis));
    const pl_tensor *x = c->in[0];
    bool keep = pl_attr_int(c->node, "keepdims", 1) != 0;
    int64_t dims[PL_MAX_DIMS];
    int n = 0;
    for (int d = 0; d < x->ndim; d++) {
        if (d != axis) dims[n++] = x->dims[d];
        else if (keep) dims[n++] = 1;
    }
    pl_op_set_out(c, 0, PL_I64, n, dims);
    return PL_OK;
}

/* better(v, b): v replaces the current best b. */
#define ARG_MAX_FIRST(v, b) ((v) > (b) || ((v) != (v) && (b) == (b)))
#define ARG_MAX_LAST(v, b) ((v) >= (b) || (v) != (v))
#define ARG_MIN_FIRST(v, b) ((v) < (b) || ((v) != (v) && (b) == (b)))
#define ARG_MIN_LAST(v, b) ((v) <= (b) || (v) != (v))

#define ARG_LOOP(T, BETTER)                                                                 \
    do {                                                                                    \
        const T *xp = (const T *)xdata;                                                     \
        for (int64_t o = 0; o < outer; o++)                                                 \
            for (int64_t i = 0; i < inner; i++) {                                           \
                const T *p = xp + o * n * inner + i;                                        \
                T best = p[0];                                                              \
                int64_t bi = 0;                                                             \
                for (int64_t j = 1; j < n; j++) {                                           \
                    T v = p[j * inner];                                                     \
                    if (BETTER(v, best)) best = v, bi = j;                                  \
                }                                                                           \
                yp[o * inner + i] = bi;                                                     \
            }                                                                               \
    } while (0)

#define ARG_TYPED(T)                                                                        \
    do {                                                                                    \
        if (is_max && last) ARG_LOOP(T, ARG_MAX_LAST);                                      \
        else if (is_max) ARG_LOOP(T, ARG_MAX_FIRST);                                        \
        else if (last) ARG_LOOP(T, ARG_MIN_LAST);                                           \
        else ARG_LOOP(T, ARG_MIN_FIRST);                                                    \
    } while (0)

pl_status argmax_run(pl_op_ctx *c) {
    int axis;
    PL_TRY(arg_setup(c, &axis));
    const pl_tensor *x = c->in[0];
    if (!c->out[0]) return PL_OK;
    int64_t *yp = c->out[0]->data;
    bool is_max = strcmp(c->node->op_type, "ArgMax") == 0;
    bool last = pl_attr_int(c->node, "select_last_index", 0) != 0;
    int64_t n = x->dims[axis], outer = 1, inner = 1;
    for (int d = 0; d < axis; d++) outer *= x->dims[d];
    for (int d = axis + 1; d < x->ndim; d++) inner *= x->dims[d];
    if (outer * inner == 0) return PL_OK;

    const void *xdata = x->data;
    float *conv = NULL;
    switch (x->dtype) {
    case PL_F32: ARG_TYPED(float); break;
    case PL_F64: ARG_TYPED(double); break;
    case PL_I8: ARG_TYPED(int8_t); break;
    case PL_U8: case PL_BOOL: ARG_TYPED(uint8_t); break;
    case PL_I16: ARG_TYPED(int16_t); break;
    case PL_U16: ARG_TYPED(uint16_t); break;
    case PL_I32: ARG_TYPED(int32_t); break;
    case PL_U32: ARG_TYPED(uint32_t); break;
    case PL_I64: ARG_TYPED(int64_t); break;
    case PL_U64: ARG_TYPED(uint64_t); break;
    case PL_F16:
    case PL_BF16: {
        int64_t total = pl_numel(x);
        conv = malloc((size_t)total * sizeof *conv);
        if (!conv) return pl_op_error(c, PL_ERR_NOMEM, "out of memory");
        for (int64_t i = 0; i < total; i++) conv[i] = (float)pl_get_f64(x, i);
        xdata = conv;
        ARG_TYPED(float);
        free(conv);
        break;
    }
    default:
        return pl_op_error(c, PL_ERR_UNSUPPORTED, "input type %s is not supported",
                           pl_dtype_name(x->dtype));
    }
    return PL_OK;
}
