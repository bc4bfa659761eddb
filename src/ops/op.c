/* op.c -- helpers shared by every operator's shape inference. */
#include <stdarg.h>
#include <stdio.h>

#include "ops/op.h"

pl_status pl_op_error(const pl_op_ctx *c, pl_status code, const char *fmt, ...) {
    char msg[PL_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return pl_error(code, "node '%s' (%s): %s", c->node->name, c->node->op_type, msg);
}

pl_status pl_op_check_arity(const pl_op_ctx *c, int min_in, int max_in) {
    if (c->nin < min_in)
        return pl_op_error(c, PL_ERR_MODEL, "has %d inputs, needs at least %d", c->nin, min_in);
    if (max_in >= 0 && c->nin > max_in)
        return pl_op_error(c, PL_ERR_MODEL, "has %d inputs, takes at most %d", c->nin, max_in);
    for (int i = 0; i < min_in; i++)
        if (!c->in[i]) return pl_op_error(c, PL_ERR_MODEL, "required input %d is missing", i);
    return PL_OK;
}

pl_status pl_op_check_dtype(const pl_op_ctx *c, int i, const pl_dtype *allowed) {
    if (!pl_has_in(c, i)) return PL_OK;
    pl_dtype t = c->in[i]->dtype;
    for (const pl_dtype *a = allowed; *a != PL_UNDEF; a++)
        if (*a == t) return PL_OK;
    return pl_op_error(c, PL_ERR_UNSUPPORTED, "input %d has type %s, which this op does not take",
                       i, pl_dtype_name(t));
}

pl_status pl_op_check_float(const pl_op_ctx *c, int i) {
    static const pl_dtype fl[] = {PL_F32, PL_F64, PL_F16, PL_BF16, PL_UNDEF};
    return pl_op_check_dtype(c, i, fl);
}

pl_status pl_op_check_same_dtype(const pl_op_ctx *c, int i, int j) {
    if (!pl_has_in(c, i) || !pl_has_in(c, j)) return PL_OK;
    if (c->in[i]->dtype != c->in[j]->dtype)
        return pl_op_error(c, PL_ERR_MODEL, "input %d is %s but input %d is %s", i,
                           pl_dtype_name(c->in[i]->dtype), j, pl_dtype_name(c->in[j]->dtype));
    return PL_OK;
}

pl_status pl_op_input_ints(const pl_op_ctx *c, int i, int64_t *vals, int max, int *count) {
    const pl_tensor *t = c->in[i];
    if (!t) return pl_op_error(c, PL_ERR_MODEL, "input %d is missing", i);
    if (t->dtype != PL_I64 && t->dtype != PL_I32)
        return pl_op_error(c, PL_ERR_MODEL, "input %d must be int64 or int32, not %s", i,
                           pl_dtype_name(t->dtype));
    if (!t->data) return PL_NEED_VALUE;
    int64_t n = pl_numel(t);
    if (n > max)
        return pl_op_error(c, PL_ERR_UNSUPPORTED, "input %d has %lld values, at most %d supported",
                           i, (long long)n, max);
    for (int64_t k = 0; k < n; k++) vals[k] = pl_get_i64(t, k);
    *count = (int)n;
    return PL_OK;
}

pl_status pl_op_input_scalar(const pl_op_ctx *c, int i, double *v) {
    const pl_tensor *t = c->in[i];
    if (!t) return pl_op_error(c, PL_ERR_MODEL, "input %d is missing", i);
    if (!t->data) return PL_NEED_VALUE;
    if (pl_numel(t) != 1)
        return pl_op_error(c, PL_ERR_MODEL, "input %d must hold one value, has %lld", i,
                           (long long)pl_numel(t));
    *v = pl_get_f64(t, 0);
    return PL_OK;
}

pl_status pl_op_input_known(const pl_op_ctx *c, int i) {
    const pl_tensor *t = c->in[i];
    if (t->ndim < 0 || t->ndim > PL_MAX_DIMS) {
        if (t->ndim < 0 && c->planning) return PL_NEED_VALUE;
        return pl_op_error(c, PL_ERR_MODEL, "input %d has invalid rank %d", i, t->ndim);
    }
    for (int d = 0; d < t->ndim; d++)
        if (t->dims[d] < 0) {
            if (c->planning) return PL_NEED_VALUE;
            return pl_op_error(c, PL_ERR_MODEL, "input %d has negative dimension %lld", i,
                               (long long)t->dims[d]);
        }
    if (pl_numel(t) < 0) return pl_op_error(c, PL_ERR_MODEL, "input %d has too many elements", i);
    return PL_OK;
}

pl_status pl_op_axis(const pl_op_ctx *c, int64_t axis, int rank, int *out) {
    if (axis < -(int64_t)rank || axis >= rank)
        return pl_op_error(c, PL_ERR_MODEL, "axis %lld is out of range for rank %d",
                           (long long)axis, rank);
    *out = (int)(axis < 0 ? axis + rank : axis);
    return PL_OK;
}

pl_status pl_op_broadcast(const pl_op_ctx *c, int n, const pl_tensor *const *ts, int *ndim,
                          int64_t *dims) {
    int r = 0;
    for (int k = 0; k < n; k++)
        if (ts[k] && ts[k]->ndim > r) r = ts[k]->ndim;
    for (int d = 0; d < r; d++) dims[d] = 1;
    for (int k = 0; k < n; k++) {
        const pl_tensor *t = ts[k];
        if (!t) continue;
        int off = r - t->ndim;
        for (int d = 0; d < t->ndim; d++) {
            int64_t a = dims[off + d], b = t->dims[d];
            if (a == b || b == 1) continue;
            if (a == 1) {
                dims[off + d] = b;
                continue;
            }
            char s1[128], s2[128];
            pl_tensor tmp = {.ndim = r};
            for (int q = 0; q < r; q++) tmp.dims[q] = dims[q];
            return pl_op_error(c, PL_ERR_INPUT, "shapes %s and %s cannot be broadcast together",
                               pl_shape_str(&tmp, s1, sizeof s1), pl_shape_str(t, s2, sizeof s2));
        }
    }
    *ndim = r;
    return PL_OK;
}

void pl_broadcast_strides(const pl_tensor *t, int ndim, const int64_t *dims, int64_t *strides) {
    int64_t own[PL_MAX_DIMS];
    pl_strides(t->ndim, t->dims, own);
    int off = ndim - t->ndim;
    for (int d = 0; d < ndim; d++) {
        if (d < off) strides[d] = 0;
        else strides[d] = (t->dims[d - off] == 1 && dims[d] != 1) ? 0 : own[d - off];
    }
}

void pl_op_set_out(pl_op_ctx *c, int i, pl_dtype dtype, int ndim, const int64_t *dims) {
    if (i < c->nout && c->out[i]) pl_tensor_set_shape(c->out[i], dtype, ndim, dims);
}

void pl_op_same_as(pl_op_ctx *c, int i, int j) {
    pl_op_set_out(c, i, c->in[j]->dtype, c->in[j]->ndim, c->in[j]->dims);
}
