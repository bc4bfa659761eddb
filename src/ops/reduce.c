/* reduce.c -- ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceProd, ReduceL1,
 * ReduceL2, ReduceLogSum, ReduceLogSumExp, ReduceSumSquare.
 *
 * Axes come from the 'axes' attribute (before opset 18; ReduceSum before 13) or from the
 * optional second input (after). Both places are accepted at any opset, the input
 * winning, so that slightly off-spec exporters still load. Empty axes reduce everything
 * unless noop_with_empty_axes is set, in which case no axis is reduced and each output
 * element is the reduction of one element (ReduceSumSquare squares, ReduceL1 takes |x|,
 * the others copy), as the ONNX reference does. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/reduce/reduce.h"
#include "ops/op.h"

#define RED_MAX_AXES 64

static pl_reduce_kind red_kind(const char *op) {
    static const struct {
        const char *name;
        pl_reduce_kind k;
    } tab[] = {
        {"ReduceSum", PL_RED_SUM},         {"ReduceMean", PL_RED_MEAN},
        {"ReduceMax", PL_RED_MAX},         {"ReduceMin", PL_RED_MIN},
        {"ReduceProd", PL_RED_PROD},       {"ReduceL1", PL_RED_L1},
        {"ReduceL2", PL_RED_L2},           {"ReduceLogSum", PL_RED_LOGSUM},
        {"ReduceLogSumExp", PL_RED_LOGSUMEXP}, {"ReduceSumSquare", PL_RED_SUMSQ},
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (strcmp(op, tab[i].name) == 0) return tab[i].k;
    return PL_RED_SUM;
}

/* Fills mask[0..rank) with the reduced axes. */
static pl_status red_axes(const pl_op_ctx *c, int rank, bool *mask) {
    int64_t axes[RED_MAX_AXES];
    int n = 0;
    if (pl_has_in(c, 1)) {
        PL_TRY(pl_op_input_ints(c, 1, axes, RED_MAX_AXES, &n));
    } else {
        size_t na = 0;
        const int64_t *a = pl_attr_ints(c->node, "axes", &na);
        if (na > RED_MAX_AXES)
            return pl_op_error(c, PL_ERR_MODEL, "attribute 'axes' has %zu values", na);
        for (size_t i = 0; i < na; i++) axes[i] = a[i];
        n = (int)na;
    }
    int64_t noop = pl_attr_int(c->node, "noop_with_empty_axes", 0);
    for (int d = 0; d < rank; d++) mask[d] = n == 0 && noop == 0;
    for (int i = 0; i < n; i++) {
        int ax;
        PL_TRY(pl_op_axis(c, axes[i], rank, &ax));
        mask[ax] = true;
    }
    return PL_OK;
}

static pl_status red_check(const pl_op_ctx *c) {
    PL_TRY(pl_op_check_arity(c, 1, 2));
    pl_dtype t = c->in[0]->dtype;
    if (t == PL_STRING || t == PL_UNDEF || pl_dtype_size(t) == 0)
        return pl_op_error(c, PL_ERR_UNSUPPORTED, "input type %s is not supported",
                           pl_dtype_name(t));
    return pl_op_input_known(c, 0);
}

pl_status reduce_infer(pl_op_ctx *c) {
    PL_TRY(red_check(c));
    const pl_tensor *x = c->in[0];
    bool mask[PL_MAX_DIMS];
    PL_TRY(red_axes(c, x->ndim, mask));
    bool keep = pl_attr_int(c->node, "keepdims", 1) != 0;
    int64_t dims[PL_MAX_DIMS];
    int n = 0;
    for (int d = 0; d < x->ndim; d++) {
        if (!mask[d]) dims[n++] = x->dims[d];
        else if (keep) dims[n++] = 1;
    }
    pl_op_set_out(c, 0, x->dtype, n, dims);
    return PL_OK;
}

static bool red_unsigned(pl_dtype t) {
    return t == PL_U8 || t == PL_U16 || t == PL_U32 || t == PL_U64 || t == PL_BOOL;
}

/* Smallest / largest value of an integer type, as an int64 bit pattern. */
static int64_t red_type_min(pl_dtype t) {
    switch (t) {
    case PL_I8: return INT8_MIN;
    case PL_I16: return INT16_MIN;
    case PL_I32: return INT32_MIN;
    case PL_I64: return INT64_MIN;
    default: return 0;
    }
}
static int64_t red_type_max(pl_dtype t) {
    switch (t) {
    case PL_I8: return INT8_MAX;
    case PL_I16: return INT16_MAX;
    case PL_I32: return INT32_MAX;
    case PL_I64: return INT64_MAX;
    case PL_U8: return UINT8_MAX;
    case PL_U16: return UINT16_MAX;
    case PL_U32: return UINT32_MAX;
    case PL_U64: return (int64_t)UINT64_MAX;
    case PL_BOOL: return 1;
    default: return 0;
    }
}

static void *red_alloc(int64_t n, size_t es) { return malloc((size_t)(n > 0 ? n : 1) * es); }

/* Non-float32/64 float types and the integer reductions that are not exact in integers
 * (L2, log-sum, log-sum-exp) go through double. */
static pl_status red_via_f64(const pl_op_ctx *c, const pl_reduce_shape *s, pl_reduce_kind k) {
    const pl_tensor *x = c->in[0];
    pl_tensor *y = c->out[0];
    double *xd = red_alloc(s->in_numel, sizeof *xd);
    double *yd = red_alloc(s->out_numel, sizeof *yd);
    double *ws = red_alloc((int64_t)pl_reduce_ws_count(s, k), sizeof *ws);
    if (!xd || !yd || !ws) {
        free(xd), free(yd), free(ws);
        return pl_op_error(c, PL_ERR_NOMEM, "out of memory");
    }
    for (int64_t i = 0; i < s->in_numel; i++) xd[i] = pl_get_f64(x, i);
    pl_reduce_f64_ref(s, k, xd, yd, ws);
    for (int64_t o = 0; o < s->out_numel; o++) pl_set_f64(y, o, yd[o]);
    free(xd), free(yd), free(ws);
    return PL_OK;
}

static pl_status red_via_i64(const pl_op_ctx *c, const pl_reduce_shape *s, pl_reduce_kind k) {
    const pl_tensor *x = c->in[0];
    pl_tensor *y = c->out[0];
    bool uns = red_unsigned(x->dtype);
    int64_t *xi = red_alloc(s->in_numel, sizeof *xi);
    int64_t *yi = red_alloc(s->out_numel, sizeof *yi);
    if (!xi || !yi) {
        free(xi), free(yi);
        return pl_op_error(c, PL_ERR_NOMEM, "out of memory");
    }
    for (int64_t i = 0; i < s->in_numel; i++) xi[i] = pl_get_i64(x, i);
    pl_reduce_i64_ref(s, k, uns, xi, yi);
    if (s->count == 0 && (k == PL_RED_MAX || k == PL_RED_MIN)) {
        int64_t v = k == PL_RED_MAX ? red_type_min(x->dtype) : red_type_max(x->dtype);
        for (int64_t o = 0; o < s->out_numel; o++) yi[o] = v;
    }
    for (int64_t o = 0; o < s->out_numel; o++) pl_set_i64(y, o, yi[o]);
    free(xi), free(yi);
    return PL_OK;
}

pl_status reduce_run(pl_op_ctx *c) {
    PL_TRY(red_check(c));
    const pl_tensor *x = c->in[0];
    pl_tensor *y = c->out[0];
    if (!y) return PL_OK;
    bool mask[PL_MAX_DIMS];
    PL_TRY(red_axes(c, x->ndim, mask));
    pl_reduce_kind k = red_kind(c->node->op_type);
    pl_reduce_shape s;
    pl_reduce_shape_init(&s, x->ndim, x->dims, mask);
    if (pl_numel(y) != s.out_numel)
        return pl_op_error(c, PL_ERR_INTERNAL, "output has %lld elements, expected %lld",
                           (long long)pl_numel(y), (long long)s.out_numel);
    if (s.out_numel == 0) return PL_OK;

    if (x->dtype == PL_F32 || x->dtype == PL_F64) {
        double *ws = red_alloc((int64_t)pl_reduce_ws_count(&s, k), sizeof *ws);
        if (!ws) return pl_op_error(c, PL_ERR_NOMEM, "out of memory");
        if (x->dtype == PL_F32) pl_reduce_f32_ref(&s, k, x->data, y->data, ws);
        else pl_reduce_f64_ref(&s, k, x->data, y->data, ws);
        free(ws);
        return PL_OK;
    }
    if (pl_dtype_is_float(x->dtype) || k == PL_RED_L2 || k == PL_RED_LOGSUM ||
        k == PL_RED_LOGSUMEXP)
        return red_via_f64(c, &s, k);
    return red_via_i64(c, &s, k);
}
