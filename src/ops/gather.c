/* gather.c -- index-driven reads: Gather, GatherElements, GatherND. Every index is
 * checked before it is used; an out-of-range index is a PL_ERR_INPUT. */
#include <stdlib.h>

#include "ops/tensor_misc.h"

/* ------------------------------------------------------------------ Gather */

static pl_status gather_check(pl_op_ctx *c, int *axis, int *ondim, int64_t *odims) {
    PL_TRY(tm_begin(c, 2, 2));
    PL_TRY(tm_check_index(c, 1));
    const pl_tensor *x = c->in[0], *ind = c->in[1];
    if (x->ndim < 1) return pl_op_error(c, PL_ERR_MODEL, "data must have at least 1 dim");
    PL_TRY(pl_op_axis(c, pl_attr_int(c->node, "axis", 0), x->ndim, axis));
    int r = x->ndim - 1 + ind->ndim, k = 0;
    if (r > PL_MAX_DIMS)
        return pl_op_error(c, PL_ERR_UNSUPPORTED, "output would have %d dims, at most %d supported",
                           r, PL_MAX_DIMS);
    for (int d = 0; d < *axis; d++) odims[k++] = x->dims[d];
    for (int d = 0; d < ind->ndim; d++) odims[k++] = ind->dims[d];
    for (int d = *axis + 1; d < x->ndim; d++) odims[k++] = x->dims[d];
    *ondim = r;
    return tm_check_shape(c, r, odims);
}

pl_status gather_infer(pl_op_ctx *c) {
    int axis, r;
    int64_t od[PL_MAX_DIMS];
    PL_TRY(gather_check(c, &axis, &r, od));
    pl_op_set_out(c, 0, c->in[0]->dtype, r, od);
    return PL_OK;
}

pl_status gather_run(pl_op_ctx *c) {
    int axis, r;
    int64_t od[PL_MAX_DIMS];
    PL_TRY(gather_check(c, &axis, &r, od));
    pl_tensor *o = c->out[0];
    if (!o) return PL_OK;
    const pl_tensor *x = c->in[0], *ind = c->in[1];
    int64_t n = pl_numel(ind), dim = x->dims[axis];
    for (int64_t j = 0; j < n; j++) {
        int64_t k = tm_idx(ind, j);
        if (k < -dim || k >= dim)
            return pl_op_error(c, PL_ERR_INPUT,
                               "index %lld is out of range for axis %d of size %lld", (long long)k,
                               axis, (long long)dim);
    }
    if (pl_numel(o) == 0) return PL_OK;
    int64_t outer = tm_prod(x->dims, 0, axis), inner = tm_prod(x->dims, axis + 1, x->ndim);
    size_t es = pl_dtype_size(x->dtype), blk = (size_t)inner * es;
    const char *src = (const char *)x->data;
    char *dst = (char *)o->data;
    for (int64_t a = 0; a < outer; a++) {
        const char *base = src + (size_t)(a * dim) * blk;
        for (int64_t j = 0; j < n; j++) {
            int64_t k = tm_idx(ind, j);
            if (k < 0) k += dim;
            if (inner == 1)
                tm_copy1(dst, base + (size_t)k * es, es);
            else
                memcpy(dst, base + (size_t)k * blk, blk);
            dst += blk;
        }
    }
    return tm_own_strings(c, o);
}

/* ------------------------------------------------------------------ GatherElements */

static pl_status gel_check(pl_op_ctx *c, int *axis) {
    PL_TRY(tm_begin(c, 2, 2));
    PL_TRY(tm_check_index(c, 1));
    const pl_tensor *x = c->in[0], *ind = c->in[1];
    if (x->ndim < 1) return pl_op_error(c, PL_ERR_MODEL, "data must have at least 1 dim");
    if (ind->ndim != x->ndim)
        return pl_op_error(c, PL_ERR_MODEL, "indices have %d dims, data has %d", ind->ndim,
                           x->ndim);
    return pl_op_axis(c, pl_attr_int(c->node, "axis", 0), x->ndim, axis);
}

pl_status gel_infer(pl_op_ctx *c) {
    int axis;
    PL_TRY(gel_check(c, &axis));
    pl_op_set_out(c, 0, c->in[0]->dtype, c->in[1]->ndim, c->in[1]->dims);
    return PL_OK;
}

pl_status gel_run(pl_op_ctx *c) {
    int axis;
    PL_TRY(gel_check(c, &axis));
    pl_tensor *o = c->out[0];
    if (!o) return PL_OK;
    const pl_tensor *x = c->in[0], *ind = c->in[1];
    int64_t *offs;
    PL_TRY(tm_elements_offsets(c, x, ind, axis, &offs));
    int64_t n = pl_numel(ind);
    size_t es = pl_dtype_size(x->dtype);
    const char *src = (const char *)x->data;
    char *dst = (char *)o->data;
    if (es == 4) {
        for (int64_t i = 0; i < n; i++) memcpy(dst + i * 4, src + offs[i] * 4, 4);
    } else {
        for (int64_t i = 0; i < n; i++)
            tm_copy1(dst + (size_t)i * es, src + (size_t)offs[i] * es, es);
    }
    free(offs);
    return tm_own_strings(c, o);
}

/* ------------------------------------------------------------------ GatherND */

static pl_status gnd_check(pl_op_ctx *c, int *bdims, int *ondim, int64_t *odims) {
    PL_TRY(tm_begin(c, 2, 2));
    PL_TRY(tm_check_index(c, 1));
    const pl_tensor *x = c->in[0], *ind = c->in[1];
    int r = x->ndim, q = ind->ndim;
    int64_t b = c->opset >= 12 ? pl_attr_int(c->node, "batch_dims", 0) : 0;
    if (r < 1 || q < 1) return pl_op_error(c, PL_ERR_MODEL, "data and indices need at least 1 dim");
    if (b < 0 || b >= q || b >= r)
        return pl_op_error(c, PL_ERR_MODEL, "batch_dims %lld is invalid for ranks %d and %d",
                           (long long)b, r, q);
    int64_t k = ind->dims[q - 1];
    if (k > r - b)
        return pl_op_error(c, PL_ERR_MODEL,
                           "indices' last dim %lld exceeds data rank %d - batch_dims %lld",
                           (long long)k, r, (long long)b);
    for (int d = 0; d < b; d++)
        if (ind->dims[d] != x->dims[d])
            return pl_op_error(c, PL_ERR_INPUT, "batch dim %d differs: data %lld, indices %lld", d,
                               (long long)x->dims[d], (long long)ind->dims[d]);
    int n = 0;
    for (int d = 0; d < q - 1; d++) odims[n++] = ind->dims[d];
    for (int d = (int)(b + k); d < r; d++) {
        if (n >= PL_MAX_DIMS)
            return pl_op_error(c, PL_ERR_UNSUPPORTED, "output would have more than %d dims",
                               PL_MAX_DIMS);
        odims[n++] = x->dims[d];
    }
    *bdims = (int)b;
    *ondim = n;
    return tm_check_shape(c, n, odims);
}

pl_status gnd_infer(pl_op_ctx *c) {
    int b, n;
    int64_t od[PL_MAX_DIMS];
    PL_TRY(gnd_check(c, &b, &n, od));
    pl_op_set_out(c, 0, c->in[0]->dtype, n, od);
    return PL_OK;
}

pl_status gnd_run(pl_op_ctx *c) {
    int b, n;
    int64_t od[PL_MAX_DIMS];
    PL_TRY(gnd_check(c, &b, &n, od));
    pl_tensor *o = c->out[0];
    if (!o) return PL_OK;
    const pl_tensor *x = c->in[0], *ind = c->in[1];
    int r = x->ndim, q = ind->ndim;
    int k = (int)ind->dims[q - 1];
    int64_t st[PL_MAX_DIMS];
    pl_strides(r, x->dims, st);
    int64_t nb = tm_prod(x->dims, 0, b), bstride = tm_prod(x->dims, b, r);
    int64_t m = tm_prod(ind->dims, b, q - 1), slice = tm_prod(x->dims, b + k, r);
    size_t es = pl_dtype_size(x->dtype), blk = (size_t)slice * es;
    const char *src = (const char *)x->data;
    char *dst = (char *)o->data;
    for (int64_t bi = 0; bi < nb; bi++)
        for (int64_t t = 0; t < m; t++) {
            int64_t off = bi * bstride, p = (bi * m + t) * k;
            for (int j = 0; j < k; j++) {
                int64_t v = tm_idx(ind, p + j), dim = x->dims[b + j];
                if (v < -dim || v >= dim)
                    return tm_abort(
                        o, pl_op_error(c, PL_ERR_INPUT,
                                       "index %lld is out of range for axis %d of size %lld",
                                       (long long)v, b + j, (long long)dim));
                off += (v < 0 ? v + dim : v) * st[b + j];
            }
            if (blk) memcpy(dst, src + (size_t)off * es, blk);
            dst += blk;
        }
    return tm_own_strings(c, o);
}
