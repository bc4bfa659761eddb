/* concat.c -- ops that join or repeat tensors: Concat, Expand, Tile. */
#include "ops/tensor_misc.h"

/* ------------------------------------------------------------------ Concat */

static pl_status concat_check(pl_op_ctx *c, int *axis_out, int64_t *odims) {
    PL_TRY(tm_begin(c, 1, -1));
    for (int i = 0; i < c->nin; i++)
        if (!c->in[i]) return pl_op_error(c, PL_ERR_MODEL, "input %d is missing", i);
    const pl_tensor *x0 = c->in[0];
    int r = x0->ndim;
    if (r < 1) return pl_op_error(c, PL_ERR_MODEL, "cannot concatenate scalars");
    const pl_attr *a = pl_attr_find(c->node, "axis");
    if (!a && c->opset >= 4) return pl_op_error(c, PL_ERR_MODEL, "attribute 'axis' is missing");
    int axis;
    PL_TRY(pl_op_axis(c, pl_attr_int(c->node, "axis", 1), r, &axis));
    memcpy(odims, x0->dims, sizeof(int64_t) * (size_t)r);
    odims[axis] = 0;
    for (int i = 0; i < c->nin; i++) {
        const pl_tensor *x = c->in[i];
        PL_TRY(pl_op_check_same_dtype(c, 0, i));
        if (x->ndim != r)
            return pl_op_error(c, PL_ERR_INPUT, "input %d has %d dims, input 0 has %d", i, x->ndim,
                               r);
        for (int d = 0; d < r; d++)
            if (d != axis && x->dims[d] != x0->dims[d]) {
                char b1[128], b2[128];
                return pl_op_error(
                    c, PL_ERR_INPUT, "input %d has shape %s, incompatible with %s on axis %d", i,
                    pl_shape_str(x, b1, sizeof b1), pl_shape_str(x0, b2, sizeof b2), axis);
            }
        if (odims[axis] > INT64_MAX - x->dims[axis])
            return pl_op_error(c, PL_ERR_MODEL, "output size overflows");
        odims[axis] += x->dims[axis];
    }
    *axis_out = axis;
    return tm_check_shape(c, r, odims);
}

pl_status concat_infer(pl_op_ctx *c) {
    int axis;
    int64_t od[PL_MAX_DIMS];
    PL_TRY(concat_check(c, &axis, od));
    pl_op_set_out(c, 0, c->in[0]->dtype, c->in[0]->ndim, od);
    return PL_OK;
}

pl_status concat_run(pl_op_ctx *c) {
    int axis;
    int64_t od[PL_MAX_DIMS];
    PL_TRY(concat_check(c, &axis, od));
    pl_tensor *o = c->out[0];
    if (!o || pl_numel(o) == 0) return PL_OK;
    int r = o->ndim;
    int64_t outer = tm_prod(od, 0, axis), inner = tm_prod(od, axis + 1, r);
    size_t es = pl_dtype_size(o->dtype);
    char *dst = (char *)o->data;
    for (int64_t a = 0; a < outer; a++)
        for (int i = 0; i < c->nin; i++) {
            const pl_tensor *x = c->in[i];
            size_t blk = (size_t)(x->dims[axis] * inner) * es;
            memcpy(dst, (const char *)x->data + a * blk, blk);
            dst += blk;
        }
    return tm_own_strings(c, o);
}

/* ------------------------------------------------------------------ Expand */

static pl_status expand_shape(pl_op_ctx *c, int *ndim, int64_t *dims) {
    PL_TRY(tm_begin(c, 2, 2));
    PL_TRY(tm_check_index(c, 1));
    if (c->in[1]->ndim != 1)
        return pl_op_error(c, PL_ERR_MODEL, "shape has %d dims, expected 1", c->in[1]->ndim);
    pl_tensor shp = {.dtype = c->in[0]->dtype};
    int n;
    PL_TRY(pl_op_input_ints(c, 1, shp.dims, PL_MAX_DIMS, &n));
    shp.ndim = n;
    for (int i = 0; i < n; i++)
        if (shp.dims[i] < 0)
            return pl_op_error(c, PL_ERR_MODEL, "shape[%d] = %lld is negative", i,
                               (long long)shp.dims[i]);
    const pl_tensor *ts[2] = {c->in[0], &shp};
    PL_TRY(pl_op_broadcast(c, 2, ts, ndim, dims));
    return tm_check_shape(c, *ndim, dims);
}

pl_status expand_infer(pl_op_ctx *c) {
    int n;
    int64_t dims[PL_MAX_DIMS];
    PL_TRY(expand_shape(c, &n, dims));
    pl_op_set_out(c, 0, c->in[0]->dtype, n, dims);
    return PL_OK;
}

pl_status expand_run(pl_op_ctx *c) {
    int n;
    int64_t dims[PL_MAX_DIMS], ss[PL_MAX_DIMS];
    PL_TRY(expand_shape(c, &n, dims));
    pl_tensor *o = c->out[0];
    if (!o || pl_numel(o) == 0) return PL_OK;
    pl_broadcast_strides(c->in[0], n, dims, ss);
    tm_strided_copy(o->data, c->in[0]->data, pl_dtype_size(o->dtype), n, dims, ss, 0);
    return tm_own_strings(c, o);
}

/* ------------------------------------------------------------------ Tile */

static pl_status tile_reps(pl_op_ctx *c, int64_t *reps, int64_t *odims) {
    PL_TRY(tm_begin(c, 2, 2));
    PL_TRY(tm_check_index(c, 1));
    const pl_tensor *x = c->in[0];
    if (c->in[1]->ndim != 1)
        return pl_op_error(c, PL_ERR_MODEL, "repeats has %d dims, expected 1", c->in[1]->ndim);
    int n;
    PL_TRY(pl_op_input_ints(c, 1, reps, PL_MAX_DIMS, &n));
    if (n != x->ndim)
        return pl_op_error(c, PL_ERR_MODEL, "repeats has %d values for rank %d", n, x->ndim);
    for (int d = 0; d < n; d++) {
        if (reps[d] < 0)
            return pl_op_error(c, PL_ERR_MODEL, "repeats[%d] = %lld is negative", d,
                               (long long)reps[d]);
        if (reps[d] != 0 && x->dims[d] > INT64_MAX / reps[d])
            return pl_op_error(c, PL_ERR_MODEL, "output size overflows");
        odims[d] = x->dims[d] * reps[d];
    }
    return tm_check_shape(c, n, odims);
}

pl_status tile_infer(pl_op_ctx *c) {
    int64_t reps[PL_MAX_DIMS], od[PL_MAX_DIMS];
    PL_TRY(tile_reps(c, reps, od));
    pl_op_set_out(c, 0, c->in[0]->dtype, c->in[0]->ndim, od);
    return PL_OK;
}

/* The output, viewed as (r0, d0, r1, d1, ...), reads the input with stride 0 on the
 * repeat axes. */
pl_status tile_run(pl_op_ctx *c) {
    int64_t reps[PL_MAX_DIMS], od[PL_MAX_DIMS];
    PL_TRY(tile_reps(c, reps, od));
    pl_tensor *o = c->out[0];
    if (!o || pl_numel(o) == 0) return PL_OK;
    const pl_tensor *x = c->in[0];
    int64_t st[PL_MAX_DIMS], vd[TM_MAX_DIMS], vs[TM_MAX_DIMS];
    pl_strides(x->ndim, x->dims, st);
    for (int d = 0; d < x->ndim; d++) {
        vd[2 * d] = reps[d];
        vs[2 * d] = 0;
        vd[2 * d + 1] = x->dims[d];
        vs[2 * d + 1] = st[d];
    }
    tm_strided_copy(o->data, x->data, pl_dtype_size(o->dtype), 2 * x->ndim, vd, vs, 0);
    return tm_own_strings(c, o);
}
