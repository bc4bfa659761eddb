/* scatter.c -- index-driven writes: ScatterND, ScatterElements and its deprecated alias
 * Scatter, with the optional reductions (add, mul, max, min). The output starts as a
 * copy of data; every index is checked (out of range is a PL_ERR_INPUT). */
#include <stdlib.h>

#include "ops/tensor_misc.h"

enum { RED_NONE, RED_ADD, RED_MUL, RED_MAX, RED_MIN };

static pl_status scat_reduction(pl_op_ctx *c, int *red) {
    *red = RED_NONE;
    if (strcmp(c->node->op_type, "Scatter") == 0 || c->opset < 16) return PL_OK;
    const char *s = pl_attr_str(c->node, "reduction", "none");
    if (strcmp(s, "none") == 0)
        *red = RED_NONE;
    else if (strcmp(s, "add") == 0)
        *red = RED_ADD;
    else if (strcmp(s, "mul") == 0)
        *red = RED_MUL;
    else if (strcmp(s, "max") == 0)
        *red = RED_MAX;
    else if (strcmp(s, "min") == 0)
        *red = RED_MIN;
    else
        return pl_op_error(c, PL_ERR_UNSUPPORTED, "attribute 'reduction' = '%s' is not supported",
                           s);
    if (*red != RED_NONE && c->in[0]->dtype == PL_STRING)
        return pl_op_error(c, PL_ERR_UNSUPPORTED, "reduction '%s' on strings is not supported", s);
    return PL_OK;
}

/* o[oi] = reduce(o[oi], u[ui]). Integers are exact (wrapping), floats go through
 * float/double, bool add/mul/max/min act as or/and/or/and. */
static void scat_apply(pl_tensor *o, int64_t oi, const pl_tensor *u, int64_t ui, int red,
                       size_t es) {
    if (red == RED_NONE) {
        tm_copy1((char *)o->data + (size_t)oi * es, (const char *)u->data + (size_t)ui * es, es);
        return;
    }
    if (o->dtype == PL_F32) {
        float *y = (float *)o->data + oi, v = ((const float *)u->data)[ui];
        switch (red) {
        case RED_ADD:
            *y += v;
            break;
        case RED_MUL:
            *y *= v;
            break;
        case RED_MAX:
            *y = *y >= v ? *y : v;
            break;
        default:
            *y = *y <= v ? *y : v;
            break;
        }
        return;
    }
    if (pl_dtype_is_float(o->dtype)) {
        double a = pl_get_f64(o, oi), v = pl_get_f64(u, ui);
        switch (red) {
        case RED_ADD:
            a += v;
            break;
        case RED_MUL:
            a *= v;
            break;
        case RED_MAX:
            a = a >= v ? a : v;
            break;
        default:
            a = a <= v ? a : v;
            break;
        }
        pl_set_f64(o, oi, a);
        return;
    }
    int64_t a = pl_get_i64(o, oi), v = pl_get_i64(u, ui);
    bool uns = o->dtype == PL_U64;
    switch (red) {
    case RED_ADD:
        a = (int64_t)((uint64_t)a + (uint64_t)v);
        break;
    case RED_MUL:
        a = (int64_t)((uint64_t)a * (uint64_t)v);
        break;
    case RED_MAX:
        a = (uns ? (uint64_t)a >= (uint64_t)v : a >= v) ? a : v;
        break;
    default:
        a = (uns ? (uint64_t)a <= (uint64_t)v : a <= v) ? a : v;
        break;
    }
    pl_set_i64(o, oi, a);
}

/* ------------------------------------------------------------------ ScatterND */

static pl_status snd_check(pl_op_ctx *c, int *red) {
    PL_TRY(tm_begin(c, 3, 3));
    PL_TRY(tm_check_index(c, 1));
    PL_TRY(pl_op_check_same_dtype(c, 0, 2));
    const pl_tensor *x = c->in[0], *ind = c->in[1], *upd = c->in[2];
    int r = x->ndim, q = ind->ndim;
    if (r < 1 || q < 1) return pl_op_error(c, PL_ERR_MODEL, "data and indices need at least 1 dim");
    int64_t k = ind->dims[q - 1];
    if (k > r)
        return pl_op_error(c, PL_ERR_MODEL, "indices' last dim %lld exceeds data rank %d",
                           (long long)k, r);
    int ur = q - 1 + r - (int)k;
    bool ok = upd->ndim == ur;
    for (int d = 0; ok && d < q - 1; d++) ok = upd->dims[d] == ind->dims[d];
    for (int d = (int)k; ok && d < r; d++) ok = upd->dims[q - 1 + d - k] == x->dims[d];
    if (!ok) {
        char b1[128];
        return pl_op_error(c, PL_ERR_INPUT,
                           "updates have shape %s, which does not match indices and data",
                           pl_shape_str(upd, b1, sizeof b1));
    }
    return scat_reduction(c, red);
}

pl_status snd_infer(pl_op_ctx *c) {
    int red;
    PL_TRY(snd_check(c, &red));
    pl_op_same_as(c, 0, 0);
    return PL_OK;
}

pl_status snd_run(pl_op_ctx *c) {
    int red;
    PL_TRY(snd_check(c, &red));
    pl_tensor *o = c->out[0];
    if (!o) return PL_OK;
    const pl_tensor *x = c->in[0], *ind = c->in[1], *upd = c->in[2];
    int r = x->ndim, q = ind->ndim, k = (int)ind->dims[q - 1];
    size_t es = pl_dtype_size(x->dtype);
    memcpy(o->data, x->data, pl_nbytes(x));
    int64_t st[PL_MAX_DIMS];
    pl_strides(r, x->dims, st);
    int64_t m = tm_prod(ind->dims, 0, q - 1), slice = tm_prod(x->dims, k, r);
    for (int64_t t = 0; t < m; t++) {
        int64_t off = 0;
        for (int j = 0; j < k; j++) {
            int64_t v = tm_idx(ind, t * k + j), dim = x->dims[j];
            if (v < -dim || v >= dim)
                return tm_abort(o,
                                pl_op_error(c, PL_ERR_INPUT,
                                            "index %lld is out of range for axis %d of size %lld",
                                            (long long)v, j, (long long)dim));
            off += (v < 0 ? v + dim : v) * st[j];
        }
        if (red == RED_NONE) {
            memcpy((char *)o->data + (size_t)off * es,
                   (const char *)upd->data + (size_t)(t * slice) * es, (size_t)slice * es);
        } else {
            for (int64_t e = 0; e < slice; e++) scat_apply(o, off + e, upd, t * slice + e, red, es);
        }
    }
    return tm_own_strings(c, o);
}

/* ------------------------------------------------------------------ ScatterElements, Scatter */

static pl_status sel_check(pl_op_ctx *c, int *axis, int *red) {
    PL_TRY(tm_begin(c, 3, 3));
    PL_TRY(tm_check_index(c, 1));
    PL_TRY(pl_op_check_same_dtype(c, 0, 2));
    const pl_tensor *x = c->in[0], *ind = c->in[1], *upd = c->in[2];
    if (x->ndim < 1) return pl_op_error(c, PL_ERR_MODEL, "data must have at least 1 dim");
    if (!pl_tensor_same_shape(ind, upd))
        return pl_op_error(c, PL_ERR_INPUT, "indices and updates must have the same shape");
    if (ind->ndim != x->ndim)
        return pl_op_error(c, PL_ERR_MODEL, "indices have %d dims, data has %d", ind->ndim,
                           x->ndim);
    PL_TRY(pl_op_axis(c, pl_attr_int(c->node, "axis", 0), x->ndim, axis));
    return scat_reduction(c, red);
}

pl_status sel_infer(pl_op_ctx *c) {
    int axis, red;
    PL_TRY(sel_check(c, &axis, &red));
    pl_op_same_as(c, 0, 0);
    return PL_OK;
}

pl_status sel_run(pl_op_ctx *c) {
    int axis, red;
    PL_TRY(sel_check(c, &axis, &red));
    pl_tensor *o = c->out[0];
    if (!o) return PL_OK;
    const pl_tensor *x = c->in[0], *ind = c->in[1], *upd = c->in[2];
    int64_t *offs;
    PL_TRY(tm_elements_offsets(c, x, ind, axis, &offs));
    memcpy(o->data, x->data, pl_nbytes(x));
    int64_t n = pl_numel(ind);
    size_t es = pl_dtype_size(x->dtype);
    for (int64_t i = 0; i < n; i++) scat_apply(o, offs[i], upd, i, red, es);
    free(offs);
    return tm_own_strings(c, o);
}
