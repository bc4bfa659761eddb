/* slice.c -- Slice and Split: taking parts of a tensor along axes. */
#include <stdlib.h>

#include "ops/tensor_misc.h"

/* ------------------------------------------------------------------ Slice */

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) {
    return v < lo ? lo : v > hi ? hi : v;
}

/* Reads starts/ends/axes/steps (attributes before opset 10, inputs from 10) and turns
 * them into the output shape plus a strided view of the input. */
static pl_status slice_view(pl_op_ctx *c, int64_t *odims, int64_t *ss, int64_t *soff) {
    int64_t starts[PL_MAX_DIMS], ends[PL_MAX_DIMS], axes[PL_MAX_DIMS], steps[PL_MAX_DIMS];
    int ns = 0, ne = 0, na = -1, nst = -1;
    if (c->opset < 10) {
        PL_TRY(tm_begin(c, 1, 1));
        size_t n1 = 0, n2 = 0, n3 = 0;
        const int64_t *s = pl_attr_ints(c->node, "starts", &n1);
        const int64_t *e = pl_attr_ints(c->node, "ends", &n2);
        const int64_t *a = pl_attr_ints(c->node, "axes", &n3);
        if (!s || !e)
            return pl_op_error(c, PL_ERR_MODEL, "attributes 'starts' and 'ends' are required");
        if (n1 > PL_MAX_DIMS || n2 > PL_MAX_DIMS || n3 > PL_MAX_DIMS)
            return pl_op_error(c, PL_ERR_MODEL, "too many values in starts/ends/axes");
        for (size_t i = 0; i < n1; i++) starts[i] = s[i];
        for (size_t i = 0; i < n2; i++) ends[i] = e[i];
        ns = (int)n1, ne = (int)n2;
        if (a) {
            for (size_t i = 0; i < n3; i++) axes[i] = a[i];
            na = (int)n3;
        }
    } else {
        PL_TRY(tm_begin(c, 3, 5));
        for (int i = 1; i < c->nin; i++) {
            if (!pl_has_in(c, i)) continue;
            PL_TRY(tm_check_index(c, i));
            if (c->in[i]->ndim != 1)
                return pl_op_error(c, PL_ERR_MODEL, "input %d has %d dims, expected 1", i,
                                   c->in[i]->ndim);
        }
        PL_TRY(pl_op_input_ints(c, 1, starts, PL_MAX_DIMS, &ns));
        PL_TRY(pl_op_input_ints(c, 2, ends, PL_MAX_DIMS, &ne));
        if (pl_has_in(c, 3)) PL_TRY(pl_op_input_ints(c, 3, axes, PL_MAX_DIMS, &na));
        if (pl_has_in(c, 4)) PL_TRY(pl_op_input_ints(c, 4, steps, PL_MAX_DIMS, &nst));
    }
    if (ne != ns) return pl_op_error(c, PL_ERR_MODEL, "%d starts but %d ends", ns, ne);
    if (na >= 0 && na != ns) return pl_op_error(c, PL_ERR_MODEL, "%d starts but %d axes", ns, na);
    if (nst >= 0 && nst != ns)
        return pl_op_error(c, PL_ERR_MODEL, "%d starts but %d steps", ns, nst);
    const pl_tensor *x = c->in[0];
    int r = x->ndim;
    int64_t st[PL_MAX_DIMS], start[PL_MAX_DIMS], step[PL_MAX_DIMS];
    bool seen[PL_MAX_DIMS] = {false};
    pl_strides(r, x->dims, st);
    for (int d = 0; d < r; d++) {
        start[d] = 0;
        step[d] = 1;
        odims[d] = x->dims[d];
    }
    for (int i = 0; i < ns; i++) {
        int a;
        PL_TRY(pl_op_axis(c, na >= 0 ? axes[i] : i, r, &a));
        if (seen[a]) return pl_op_error(c, PL_ERR_MODEL, "axis %d is sliced twice", a);
        seen[a] = true;
        int64_t k = nst >= 0 ? steps[i] : 1, dim = x->dims[a], s = starts[i], e = ends[i], n;
        if (k == 0) return pl_op_error(c, PL_ERR_MODEL, "step for axis %d is 0", a);
        if (k == INT64_MIN) k = -INT64_MAX;
        if (s < 0) s += dim;
        if (e < 0) e += dim;
        if (dim == 0 || (k < 0 && s < 0)) {
            /* A negative step starting before the first element selects nothing, as in
             * numpy and the ONNX reference (the spec text would clamp start to 0). */
            n = 0;
        } else if (k > 0) {
            s = clamp64(s, 0, dim);
            e = clamp64(e, 0, dim);
            n = e > s ? (e - s - 1) / k + 1 : 0;
        } else {
            s = clamp64(s, 0, dim - 1);
            e = clamp64(e, -1, dim - 1);
            n = s > e ? (s - e - 1) / (-k) + 1 : 0;
        }
        odims[a] = n;
        start[a] = n > 0 ? s : 0;
        step[a] = k;
    }
    *soff = 0;
    for (int d = 0; d < r; d++) {
        *soff += start[d] * st[d];
        ss[d] = st[d] * (odims[d] > 1 ? step[d] : 1);
    }
    return PL_OK;
}

pl_status slice_infer(pl_op_ctx *c) {
    int64_t od[PL_MAX_DIMS], ss[PL_MAX_DIMS], off;
    PL_TRY(slice_view(c, od, ss, &off));
    pl_op_set_out(c, 0, c->in[0]->dtype, c->in[0]->ndim, od);
    return PL_OK;
}

pl_status slice_run(pl_op_ctx *c) {
    int64_t od[PL_MAX_DIMS], ss[PL_MAX_DIMS], off;
    PL_TRY(slice_view(c, od, ss, &off));
    pl_tensor *o = c->out[0];
    if (!o) return PL_OK;
    const pl_tensor *x = c->in[0];
    if (pl_numel(o) == 0) return PL_OK;
    tm_strided_copy(o->data, x->data, pl_dtype_size(x->dtype), x->ndim, od, ss, off);
    return tm_own_strings(c, o);
}

/* ------------------------------------------------------------------ Split */

/* sizes: c->nout entries (caller frees). */
static pl_status split_sizes(pl_op_ctx *c, int *axis_out, int64_t **sizes_out) {
    *sizes_out = NULL;
    PL_TRY(tm_begin(c, 1, c->opset >= 13 ? 2 : 1));
    const pl_tensor *x = c->in[0];
    int axis;
    if (x->ndim < 1) return pl_op_error(c, PL_ERR_MODEL, "cannot split a scalar");
    PL_TRY(pl_op_axis(c, pl_attr_int(c->node, "axis", 0), x->ndim, &axis));
    int n = c->nout;
    if (n < 1) return pl_op_error(c, PL_ERR_MODEL, "has no outputs");
    int64_t dim = x->dims[axis];
    const int64_t *given = NULL;
    size_t ngiven = 0;
    const pl_tensor *st = NULL;
    if (c->opset < 13) {
        given = pl_attr_ints(c->node, "split", &ngiven);
    } else if (pl_has_in(c, 1)) {
        PL_TRY(tm_check_index(c, 1));
        st = c->in[1];
        if (!st->data) return PL_NEED_VALUE;
        ngiven = (size_t)pl_numel(st);
    }
    if (st && ngiven == 0) st = NULL; /* an empty split input: not given */
    int64_t *sz = (int64_t *)malloc(sizeof(int64_t) * (size_t)n);
    if (!sz) return pl_op_error(c, PL_ERR_NOMEM, "out of memory");
    pl_status s = PL_OK;
    if (given || st) {
        if (ngiven != (size_t)n) {
            s = pl_op_error(c, PL_ERR_MODEL, "split has %zu values for %d outputs", ngiven, n);
            goto done;
        }
        int64_t sum = 0;
        for (int i = 0; i < n; i++) {
            sz[i] = given ? given[i] : tm_idx(st, i);
            if (sz[i] < 0 || sz[i] > dim - sum) {
                s = pl_op_error(c, PL_ERR_INPUT, "split sizes do not add up to dim %lld",
                                (long long)dim);
                goto done;
            }
            sum += sz[i];
        }
        if (sum != dim) {
            s = pl_op_error(c, PL_ERR_INPUT, "split sizes add up to %lld, dim is %lld",
                            (long long)sum, (long long)dim);
            goto done;
        }
    } else if (pl_attr_find(c->node, "num_outputs")) {
        int64_t k = pl_attr_int(c->node, "num_outputs", 0);
        if (k != n) {
            s = pl_op_error(c, PL_ERR_MODEL, "num_outputs %lld but %d outputs", (long long)k, n);
            goto done;
        }
        int64_t chunk = (dim + n - 1) / n, left = dim;
        for (int i = 0; i < n; i++) {
            sz[i] = left < chunk ? left : chunk;
            left -= sz[i];
        }
    } else {
        if (dim % n != 0) {
            s = pl_op_error(c, PL_ERR_INPUT, "dim %lld cannot be split into %d equal parts",
                            (long long)dim, n);
            goto done;
        }
        for (int i = 0; i < n; i++) sz[i] = dim / n;
    }
done:
    if (s != PL_OK) {
        free(sz);
        return s;
    }
    *axis_out = axis;
    *sizes_out = sz;
    return PL_OK;
}

pl_status split_infer(pl_op_ctx *c) {
    int axis;
    int64_t *sz;
    PL_TRY(split_sizes(c, &axis, &sz));
    const pl_tensor *x = c->in[0];
    int64_t dims[PL_MAX_DIMS];
    memcpy(dims, x->dims, sizeof(int64_t) * (size_t)x->ndim);
    for (int i = 0; i < c->nout; i++) {
        dims[axis] = sz[i];
        pl_op_set_out(c, i, x->dtype, x->ndim, dims);
    }
    free(sz);
    return PL_OK;
}

pl_status split_run(pl_op_ctx *c) {
    int axis;
    int64_t *sz;
    PL_TRY(split_sizes(c, &axis, &sz));
    const pl_tensor *x = c->in[0];
    int64_t outer = tm_prod(x->dims, 0, axis), dim = x->dims[axis],
            inner = tm_prod(x->dims, axis + 1, x->ndim), off = 0;
    size_t es = pl_dtype_size(x->dtype);
    pl_status s = PL_OK;
    for (int i = 0; i < c->nout; i++) {
        pl_tensor *o = c->out[i];
        if (o && sz[i] > 0 && s == PL_OK) {
            size_t blk = (size_t)(sz[i] * inner) * es;
            for (int64_t a = 0; a < outer; a++)
                memcpy((char *)o->data + a * blk,
                       (const char *)x->data + (size_t)((a * dim + off) * inner) * es, blk);
            s = tm_own_strings(c, o);
        }
        off += sz[i];
    }
    free(sz);
    return s;
}
