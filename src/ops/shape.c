/* shape.c -- ops that produce constants, copies or shape information: Constant,
 * ConstantOfShape, Identity, Dropout (inference), Shape, Size. */
#include "ops/tensor_misc.h"

/* ------------------------------------------------------------------ Constant */

/* A borrowed view of the one value attribute of a Constant node. */
static pl_status constant_view(pl_op_ctx *c, pl_tensor *v) {
    static const char *const names[] = {"value",         "value_float", "value_floats",
                                        "value_int",     "value_ints",  "value_string",
                                        "value_strings", "sparse_value"};
    const pl_attr *found = NULL;
    int which = -1, count = 0;
    for (int i = 0; i < 8; i++) {
        const pl_attr *a = pl_attr_find(c->node, names[i]);
        if (a) {
            found = a;
            which = i;
            count++;
        }
    }
    if (count != 1)
        return pl_op_error(c, PL_ERR_MODEL, "needs exactly one value attribute, has %d", count);
    memset(v, 0, sizeof *v);
    const pl_attr *a = found;
    static const pl_attr_type want[] = {PL_ATTR_TENSOR,  PL_ATTR_FLOAT, PL_ATTR_FLOATS,
                                        PL_ATTR_INT,     PL_ATTR_INTS,  PL_ATTR_STRING,
                                        PL_ATTR_STRINGS, PL_ATTR_TENSOR};
    if (a->type != want[which])
        return pl_op_error(c, PL_ERR_MODEL, "attribute '%s' has the wrong type", names[which]);
    switch (which) {
    case 0:
        if (!a->t || !a->t->data || a->t->ndim < 0 || a->t->ndim > PL_MAX_DIMS)
            return pl_op_error(c, PL_ERR_MODEL, "attribute 'value' holds no usable tensor");
        *v = *a->t;
        break;
    case 1:
        pl_tensor_set_shape(v, PL_F32, 0, NULL);
        v->data = (void *)&a->f;
        break;
    case 2: {
        int64_t n = (int64_t)a->n;
        pl_tensor_set_shape(v, PL_F32, 1, &n);
        v->data = a->floats;
        break;
    }
    case 3:
        pl_tensor_set_shape(v, PL_I64, 0, NULL);
        v->data = (void *)&a->i;
        break;
    case 4: {
        int64_t n = (int64_t)a->n;
        pl_tensor_set_shape(v, PL_I64, 1, &n);
        v->data = a->ints;
        break;
    }
    case 5:
        pl_tensor_set_shape(v, PL_STRING, 0, NULL);
        v->data = (void *)&a->s;
        break;
    case 6: {
        int64_t n = (int64_t)a->n;
        pl_tensor_set_shape(v, PL_STRING, 1, &n);
        v->data = a->strings;
        break;
    }
    default:
        return pl_op_error(c, PL_ERR_UNSUPPORTED, "attribute 'sparse_value' is not supported");
    }
    v->owns = false;
    /* An empty list attribute has no buffer; give it one so that copies are valid. */
    static uint64_t empty;
    if (!v->data) v->data = &empty;
    return PL_OK;
}

pl_status constant_infer(pl_op_ctx *c) {
    PL_TRY(pl_op_check_arity(c, 0, 0));
    pl_tensor v;
    PL_TRY(constant_view(c, &v));
    pl_op_set_out(c, 0, v.dtype, v.ndim, v.dims);
    return PL_OK;
}

pl_status constant_run(pl_op_ctx *c) {
    pl_tensor v;
    PL_TRY(constant_view(c, &v));
    return tm_copy_all(c, c->out[0], &v);
}

/* ------------------------------------------------------------------ ConstantOfShape */

static pl_status cos_params(pl_op_ctx *c, pl_tensor *val, int *ndim, int64_t *dims) {
    PL_TRY(tm_begin(c, 1, 1));
    if (c->in[0]->ndim != 1)
        return pl_op_error(c, PL_ERR_MODEL, "input has %d dims, expected 1", c->in[0]->ndim);
    PL_TRY(tm_check_index(c, 0));
    memset(val, 0, sizeof *val);
    static const float zero = 0;
    const pl_attr *a = pl_attr_find(c->node, "value");
    if (a) {
        if (a->type != PL_ATTR_TENSOR || !a->t || !a->t->data || pl_numel(a->t) != 1)
            return pl_op_error(c, PL_ERR_MODEL, "attribute 'value' must be a one-element tensor");
        *val = *a->t;
        val->owns = false;
    } else {
        pl_tensor_set_shape(val, PL_F32, 0, NULL);
        val->data = (void *)&zero;
    }
    PL_TRY(pl_op_input_ints(c, 0, dims, PL_MAX_DIMS, ndim));
    return tm_check_shape(c, *ndim, dims);
}

pl_status cos_infer(pl_op_ctx *c) {
    pl_tensor val;
    int ndim;
    int64_t dims[PL_MAX_DIMS];
    PL_TRY(cos_params(c, &val, &ndim, dims));
    pl_op_set_out(c, 0, val.dtype, ndim, dims);
    return PL_OK;
}

pl_status cos_run(pl_op_ctx *c) {
    pl_tensor val;
    int ndim;
    int64_t dims[PL_MAX_DIMS];
    PL_TRY(cos_params(c, &val, &ndim, dims));
    pl_tensor *o = c->out[0];
    if (!o) return PL_OK;
    int64_t n = pl_numel(o);
    size_t es = pl_dtype_size(o->dtype);
    char *y = (char *)o->data;
    if (o->dtype == PL_F32) {
        float v = *(const float *)val.data, *f = (float *)o->data;
        for (int64_t i = 0; i < n; i++) f[i] = v;
    } else {
        for (int64_t i = 0; i < n; i++) tm_copy1(y + (size_t)i * es, val.data, es);
    }
    return tm_own_strings(c, o);
}

/* ------------------------------------------------------------------ Identity, Dropout */

pl_status identity_infer(pl_op_ctx *c) {
    PL_TRY(tm_begin(c, 1, 1));
    pl_op_same_as(c, 0, 0);
    return PL_OK;
}

pl_status identity_run(pl_op_ctx *c) {
    return tm_copy_all(c, c->out[0], c->in[0]);
}

/* Dropout at inference copies its input; the optional mask is all true. Training mode
 * (opset 12+) is supported only with ratio 0, where it is the same thing. */
static pl_status dropout_check(pl_op_ctx *c) {
    PL_TRY(tm_begin(c, 1, c->opset >= 12 ? 3 : 1));
    PL_TRY(pl_op_check_float(c, 0));
    if (pl_has_in(c, 1) && pl_numel(c->in[1]) != 1)
        return pl_op_error(c, PL_ERR_MODEL, "ratio must be a scalar");
    if (pl_has_in(c, 2) && (pl_numel(c->in[2]) != 1 || c->in[2]->dtype != PL_BOOL))
        return pl_op_error(c, PL_ERR_MODEL, "training_mode must be a bool scalar");
    if (!pl_has_in(c, 2) || !c->in[2]->data || !((const uint8_t *)c->in[2]->data)[0]) return PL_OK;
    double ratio = 0.5;
    if (pl_has_in(c, 1)) {
        if (!c->in[1]->data) return PL_OK; /* checked again at run time */
        ratio = pl_get_f64(c->in[1], 0);
    }
    if (ratio != 0)
        return pl_op_error(c, PL_ERR_UNSUPPORTED,
                           "training mode with ratio %g is not supported (inference only)", ratio);
    return PL_OK;
}

pl_status dropout_infer(pl_op_ctx *c) {
    PL_TRY(dropout_check(c));
    pl_op_same_as(c, 0, 0);
    pl_op_set_out(c, 1, c->opset >= 10 ? PL_BOOL : c->in[0]->dtype, c->in[0]->ndim, c->in[0]->dims);
    return PL_OK;
}

pl_status dropout_run(pl_op_ctx *c) {
    PL_TRY(dropout_check(c));
    PL_TRY(tm_copy_all(c, c->out[0], c->in[0]));
    if (c->nout > 1 && c->out[1]) {
        pl_tensor *m = c->out[1];
        int64_t n = pl_numel(m);
        if (m->dtype == PL_BOOL)
            memset(m->data, 1, (size_t)n);
        else
            for (int64_t i = 0; i < n; i++) pl_set_f64(m, i, 1.0);
    }
    return PL_OK;
}

/* ------------------------------------------------------------------ Shape, Size */

static void shape_range(pl_op_ctx *c, int *start, int *len) {
    int r = c->in[0]->ndim;
    int64_t s = pl_attr_int(c->node, "start", 0), e = pl_attr_int(c->node, "end", r);
    if (s < 0) s += r;
    if (e < 0) e += r;
    s = s < 0 ? 0 : s > r ? r : s;
    e = e < 0 ? 0 : e > r ? r : e;
    *start = (int)s;
    *len = e > s ? (int)(e - s) : 0;
}

pl_status shape_infer(pl_op_ctx *c) {
    PL_TRY(tm_begin(c, 1, 1));
    int start, len;
    shape_range(c, &start, &len);
    int64_t n = len;
    pl_op_set_out(c, 0, PL_I64, 1, &n);
    return PL_OK;
}

pl_status shape_run(pl_op_ctx *c) {
    PL_TRY(tm_begin(c, 1, 1));
    int start, len;
    shape_range(c, &start, &len);
    if (!c->out[0]) return PL_OK;
    int64_t *y = (int64_t *)c->out[0]->data;
    for (int i = 0; i < len; i++) y[i] = c->in[0]->dims[start + i];
    return PL_OK;
}

pl_status size_infer(pl_op_ctx *c) {
    PL_TRY(tm_begin(c, 1, 1));
    pl_op_set_out(c, 0, PL_I64, 0, NULL);
    return PL_OK;
}

pl_status size_run(pl_op_ctx *c) {
    PL_TRY(tm_begin(c, 1, 1));
    if (c->out[0]) *(int64_t *)c->out[0]->data = pl_numel(c->in[0]);
    return PL_OK;
}
