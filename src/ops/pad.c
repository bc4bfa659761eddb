/* pad.c -- Pad: constant, reflect, edge and wrap padding (negative pads crop). */
#include <stdlib.h>

#include "ops/tensor_misc.h"

enum { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE, PAD_WRAP };

typedef struct pad_params {
    int mode;
    int64_t begin[PL_MAX_DIMS], end[PL_MAX_DIMS];
    int64_t odims[PL_MAX_DIMS];
    unsigned char cval[16]; /* the constant, one element of the data type */
} pad_params;

/* Pads and axes come from attributes before opset 11, from inputs after (axes: 18). */
static pl_status pad_parse(pl_op_ctx *c, pad_params *p) {
    memset(p, 0, sizeof *p);
    const char *mode = pl_attr_str(c->node, "mode", "constant");
    if (strcmp(mode, "constant") == 0)
        p->mode = PAD_CONSTANT;
    else if (strcmp(mode, "reflect") == 0)
        p->mode = PAD_REFLECT;
    else if (strcmp(mode, "edge") == 0)
        p->mode = PAD_EDGE;
    else if (strcmp(mode, "wrap") == 0)
        p->mode = PAD_WRAP;
    else
        return pl_op_error(c, PL_ERR_UNSUPPORTED, "attribute 'mode' = '%s' is not supported", mode);
    int64_t pads[2 * PL_MAX_DIMS], axes[PL_MAX_DIMS];
    int npads = 0, naxes = -1;
    const pl_tensor *x;
    if (c->opset < 11) {
        PL_TRY(tm_begin(c, 1, 1));
        x = c->in[0];
        size_t n = 0;
        const int64_t *a = pl_attr_ints(c->node, "pads", &n);
        if (!a) a = pl_attr_ints(c->node, "paddings", &n);
        if (!a) return pl_op_error(c, PL_ERR_MODEL, "attribute 'pads' is missing");
        if (n != (size_t)(2 * x->ndim))
            return pl_op_error(c, PL_ERR_MODEL, "pads has %zu values for rank %d", n, x->ndim);
        for (size_t i = 0; i < n; i++) pads[i] = a[i];
        npads = (int)n;
        pl_tensor tmp = {.dtype = x->dtype, .ndim = 0, .data = p->cval};
        pl_set_f64(&tmp, 0, pl_attr_float(c->node, "value", 0.0f));
    } else {
        PL_TRY(tm_begin(c, 2, c->opset >= 18 ? 4 : 3));
        x = c->in[0];
        PL_TRY(tm_check_index(c, 1));
        if (c->in[1]->ndim != 1)
            return pl_op_error(c, PL_ERR_MODEL, "pads has %d dims, expected 1", c->in[1]->ndim);
        if (pl_has_in(c, 3)) {
            PL_TRY(tm_check_index(c, 3));
            PL_TRY(pl_op_input_ints(c, 3, axes, PL_MAX_DIMS, &naxes));
        }
        PL_TRY(pl_op_input_ints(c, 1, pads, 2 * PL_MAX_DIMS, &npads));
        if (pl_has_in(c, 2) && pl_numel(c->in[2]) > 0) {
            const pl_tensor *cv = c->in[2];
            if (cv->dtype != x->dtype)
                return pl_op_error(c, PL_ERR_MODEL, "constant_value is %s but data is %s",
                                   pl_dtype_name(cv->dtype), pl_dtype_name(x->dtype));
            if (pl_numel(cv) != 1)
                return pl_op_error(c, PL_ERR_MODEL, "constant_value must be a scalar");
            if (!cv->data) {
                if (!c->planning)
                    return pl_op_error(c, PL_ERR_INTERNAL, "constant_value has no data");
            } else {
                memcpy(p->cval, cv->data, pl_dtype_size(x->dtype));
            }
        }
    }
    int r = x->ndim;
    if (x->dtype == PL_STRING && !*(char **)p->cval) {
        static const char empty[] = "";
        const char *e = empty;
        memcpy(p->cval, &e, sizeof e);
    }
    int na = naxes >= 0 ? naxes : r;
    if (npads != 2 * na)
        return pl_op_error(c, PL_ERR_MODEL, "pads has %d values for %d axes", npads, na);
    bool seen[PL_MAX_DIMS] = {false};
    for (int i = 0; i < na; i++) {
        int a = i;
        if (naxes >= 0) PL_TRY(pl_op_axis(c, axes[i], r, &a));
        if (seen[a]) return pl_op_error(c, PL_ERR_MODEL, "axis %d is padded twice", a);
        seen[a] = true;
        p->begin[a] = pads[i];
        p->end[a] = pads[na + i];
    }
    for (int d = 0; d < r; d++) {
        int64_t b = p->begin[d], e = p->end[d], dim = x->dims[d];
        if (b > INT64_MAX / 4 || e > INT64_MAX / 4 || b < -dim || e < -dim)
            return pl_op_error(c, PL_ERR_INPUT,
                               "pads %lld, %lld are invalid for axis %d of size %lld", (long long)b,
                               (long long)e, d, (long long)dim);
        p->odims[d] = dim + b + e;
        if (p->odims[d] < 0)
            return pl_op_error(c, PL_ERR_INPUT, "axis %d would have negative size", d);
        if (dim == 0 && p->odims[d] > 0 && p->mode != PAD_CONSTANT)
            return pl_op_error(c, PL_ERR_INPUT, "cannot %s-pad empty axis %d", mode, d);
    }
    return tm_check_shape(c, r, p->odims);
}

pl_status pad_infer(pl_op_ctx *c) {
    pad_params p;
    PL_TRY(pad_parse(c, &p));
    pl_op_set_out(c, 0, c->in[0]->dtype, c->in[0]->ndim, p.odims);
    return PL_OK;
}

/* Source index along an axis of size dim for padded position j (may be outside), or
 * -1 for the constant. */
static int64_t pad_src(int mode, int64_t j, int64_t dim) {
    if (j >= 0 && j < dim) return j;
    switch (mode) {
    case PAD_EDGE:
        return j < 0 ? 0 : dim - 1;
    case PAD_WRAP: {
        int64_t m = j % dim;
        return m < 0 ? m + dim : m;
    }
    case PAD_REFLECT: {
        if (dim == 1) return 0;
        int64_t per = 2 * (dim - 1), m = j % per;
        if (m < 0) m += per;
        return m < dim ? m : per - m;
    }
    default:
        return -1;
    }
}

pl_status pad_run(pl_op_ctx *c) {
    pad_params p;
    PL_TRY(pad_parse(c, &p));
    pl_tensor *o = c->out[0];
    if (!o) return PL_OK;
    const pl_tensor *x = c->in[0];
    int r = x->ndim;
    int64_t total = pl_numel(o);
    size_t es = pl_dtype_size(x->dtype);
    if (total == 0) return PL_OK;
    if (r == 0) {
        tm_copy1(o->data, x->data, es);
        return tm_own_strings(c, o);
    }
    /* per-axis maps from output position to source index (-1: constant) */
    int64_t sum = 0, st[PL_MAX_DIMS];
    for (int d = 0; d < r; d++) sum += p.odims[d];
    int64_t *map = (int64_t *)malloc(sizeof(int64_t) * (size_t)sum), *mp[PL_MAX_DIMS];
    if (!map) return pl_op_error(c, PL_ERR_NOMEM, "out of memory");
    pl_strides(r, x->dims, st);
    int64_t k = 0;
    for (int d = 0; d < r; d++) {
        mp[d] = map + k;
        for (int64_t j = 0; j < p.odims[d]; j++)
            mp[d][j] = pad_src(p.mode, j - p.begin[d], x->dims[d]);
        k += p.odims[d];
    }
    int64_t idx[PL_MAX_DIMS] = {0}, inner = p.odims[r - 1];
    int64_t nrows = total / inner;
    const char *src = (const char *)x->data;
    char *dst = (char *)o->data;
    const int64_t *last = mp[r - 1];
    for (int64_t row = 0; row < nrows; row++) {
        int64_t base = 0;
        bool cst = false;
        for (int d = 0; d < r - 1; d++) {
            int64_t s = mp[d][idx[d]];
            if (s < 0) cst = true;
            base += s * st[d];
        }
        for (int64_t j = 0; j < inner; j++, dst += es) {
            int64_t s = last[j];
            if (cst || s < 0)
                tm_copy1(dst, p.cval, es);
            else
                tm_copy1(dst, src + (size_t)(base + s) * es, es);
        }
        for (int d = r - 2; d >= 0; d--) {
            if (++idx[d] < p.odims[d]) break;
            idx[d] = 0;
        }
    }
    free(map);
    return tm_own_strings(c, o);
}
