/* conv_common.c -- window attributes and float/double array views shared by the
 * convolution, pooling and normalisation ops. */
#include "ops/conv_common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Bound on window attributes (kernel, stride, dilation, pads) so that sizes computed
 * from them never overflow int64. */
#define CVF_ATTR_MAX ((int64_t)1 << 31)

pl_status cvf_shapes_known(const pl_op_ctx *c) {
    for (int i = 0; i < c->nin; i++) {
        const pl_tensor *t = c->in[i];
        if (!t) continue;
        bool known = t->ndim >= 0;
        for (int d = 0; known && d < t->ndim; d++)
            if (t->dims[d] < 0) known = false;
        if (known) continue;
        if (c->planning) return PL_NEED_VALUE;
        return pl_op_error(c, PL_ERR_INTERNAL, "input %d has no known shape at run time", i);
    }
    return PL_OK;
}

pl_status cvf_check_rank(const pl_op_ctx *c, int i, int min_rank, int max_rank) {
    int r = c->in[i]->ndim;
    if (r < min_rank || r > max_rank) {
        if (min_rank == max_rank)
            return pl_op_error(c, PL_ERR_INPUT, "input %d has %d dims, expected %d", i, r, min_rank);
        return pl_op_error(c, PL_ERR_INPUT, "input %d has %d dims, expected %d to %d", i, r,
                           min_rank, max_rank);
    }
    return PL_OK;
}

pl_status cvf_ints_attr(const pl_op_ctx *c, const char *name, int n, int64_t def, int64_t lo,
                        int64_t hi, int64_t *out) {
    const pl_attr *a = pl_attr_find(c->node, name);
    if (!a) {
        for (int i = 0; i < n; i++) out[i] = def;
        return PL_OK;
    }
    if (a->type != PL_ATTR_INTS)
        return pl_op_error(c, PL_ERR_MODEL, "attribute '%s' must be a list of ints", name);
    if (a->n != (size_t)n)
        return pl_op_error(c, PL_ERR_MODEL, "attribute '%s' has %zu values, expected %d", name,
                           a->n, n);
    for (int i = 0; i < n; i++) {
        if (a->ints[i] < lo || a->ints[i] > hi)
            return pl_op_error(c, PL_ERR_MODEL, "attribute '%s' value %lld is out of range [%lld, %lld]",
                               name, (long long)a->ints[i], (long long)lo, (long long)hi);
        out[i] = a->ints[i];
    }
    return PL_OK;
}

pl_status cvf_window_setup(const pl_op_ctx *c, const pl_tensor *x, const int64_t *kernel,
                           bool ceil_mode, cvf_window *w) {
    const int nsp = x->ndim - 2;
    if (nsp < 1 || nsp > CVF_MAX_SP)
        return pl_op_error(c, PL_ERR_INPUT, "input has %d dims, expected 3 to %d", x->ndim, PL_MAX_DIMS);
    w->nsp = nsp;
    int64_t pads[2 * CVF_MAX_SP];
    PL_TRY(cvf_ints_attr(c, "strides", nsp, 1, 1, CVF_ATTR_MAX, w->stride));
    PL_TRY(cvf_ints_attr(c, "dilations", nsp, 1, 1, CVF_ATTR_MAX, w->dilation));
    PL_TRY(cvf_ints_attr(c, "pads", 2 * nsp, 0, 0, CVF_ATTR_MAX, pads));
    const char *ap = pl_attr_str(c->node, "auto_pad", "NOTSET");
    enum { NOTSET, SAME_UPPER, SAME_LOWER, VALID } mode;
    if (!strcmp(ap, "NOTSET") || !ap[0]) mode = NOTSET;
    else if (!strcmp(ap, "SAME_UPPER")) mode = SAME_UPPER;
    else if (!strcmp(ap, "SAME_LOWER")) mode = SAME_LOWER;
    else if (!strcmp(ap, "VALID")) mode = VALID;
    else return pl_op_error(c, PL_ERR_MODEL, "attribute 'auto_pad' = '%s' is not valid", ap);

    for (int d = 0; d < nsp; d++) {
        if (kernel[d] < 1 || kernel[d] > CVF_ATTR_MAX)
            return pl_op_error(c, PL_ERR_MODEL, "kernel size %lld on spatial axis %d is out of range",
                               (long long)kernel[d], d);
        const int64_t in = x->dims[d + 2], s = w->stride[d];
        const int64_t dk = (kernel[d] - 1) * w->dilation[d] + 1;
        w->in[d] = in;
        w->kernel[d] = kernel[d];
        if (mode == SAME_UPPER || mode == SAME_LOWER) {
            int64_t out = (in + s - 1) / s;
            int64_t total = (out - 1) * s + dk - in;
            if (total < 0) total = 0;
            w->pad_begin[d] = mode == SAME_UPPER ? total / 2 : total - total / 2;
            w->pad_end[d] = total - w->pad_begin[d];
            w->out[d] = out;
            continue;
        }
        w->pad_begin[d] = mode == VALID ? 0 : pads[d];
        w->pad_end[d] = mode == VALID ? 0 : pads[d + nsp];
        int64_t span = in + w->pad_begin[d] + w->pad_end[d] - dk;
        if (span < 0)
            return pl_op_error(c, PL_ERR_INPUT,
                               "kernel of effective size %lld is bigger than the padded input (%lld) "
                               "on spatial axis %d",
                               (long long)dk, (long long)(in + w->pad_begin[d] + w->pad_end[d]), d);
        int64_t out = span / s + 1;
        if (ceil_mode && span % s) {
            out++;
            /* the last window must start inside the input or the leading padding */
            if ((out - 1) * s >= in + w->pad_begin[d]) out--;
        }
        w->out[d] = out;
    }
    return PL_OK;
}

pl_status cvf_set_out(pl_op_ctx *c, int i, pl_dtype dtype, int ndim, const int64_t *dims) {
    if (pl_dims_numel(ndim, dims) < 0)
        return pl_op_error(c, PL_ERR_INPUT, "output %d would have too many elements", i);
    pl_op_set_out(c, i, dtype, ndim, dims);
    return PL_OK;
}

pl_dtype cvf_compute_type(pl_dtype t) { return t == PL_F64 ? PL_F64 : PL_F32; }

pl_status cvf_alloc(const pl_op_ctx *c, int64_t n, size_t size, void **out) {
    if (n < 0 || (uint64_t)n > SIZE_MAX / size / 2)
        return pl_op_error(c, PL_ERR_NOMEM, "scratch buffer of %lld elements is too large", (long long)n);
    size_t bytes = (size_t)n * size;
    *out = malloc(bytes ? bytes : 1);
    if (!*out)
        return pl_op_error(c, PL_ERR_NOMEM, "out of memory for a %zu-byte scratch buffer", bytes);
    return PL_OK;
}

pl_status cvf_load(const pl_op_ctx *c, const pl_tensor *t, pl_dtype as, const void **out,
                   void **tmp) {
    *tmp = NULL;
    if (t->dtype == as) {
        *out = t->data;
        return PL_OK;
    }
    int64_t n = pl_numel(t);
    PL_TRY(cvf_alloc(c, n, as == PL_F64 ? sizeof(double) : sizeof(float), tmp));
    if (as == PL_F64) {
        double *d = *tmp;
        for (int64_t i = 0; i < n; i++) d[i] = pl_get_f64(t, i);
    } else {
        float *f = *tmp;
        if (t->dtype == PL_F16)
            for (int64_t i = 0; i < n; i++) f[i] = pl_f16_to_f32(((const uint16_t *)t->data)[i]);
        else
            for (int64_t i = 0; i < n; i++) f[i] = (float)pl_get_f64(t, i);
    }
    *out = *tmp;
    return PL_OK;
}

pl_status cvf_out(const pl_op_ctx *c, pl_tensor *t, pl_dtype as, void **out, void **tmp) {
    *tmp = NULL;
    if (t->dtype == as) {
        *out = t->data;
        return PL_OK;
    }
    PL_TRY(cvf_alloc(c, pl_numel(t), as == PL_F64 ? sizeof(double) : sizeof(float), tmp));
    *out = *tmp;
    return PL_OK;
}

void cvf_store(pl_tensor *t, const void *src, pl_dtype as, int64_t n) {
    bool to_int = !pl_dtype_is_float(t->dtype);
    for (int64_t i = 0; i < n; i++) {
        double v = as == PL_F64 ? ((const double *)src)[i] : ((const float *)src)[i];
        pl_set_f64(t, i, to_int ? nearbyint(v) : v);
    }
}

void cvf_out_done(pl_tensor *t, pl_dtype as, void *tmp) {
    if (!tmp) return;
    cvf_store(t, tmp, as, pl_numel(t));
    free(tmp);
}

/* ------------------------------------------------------------------ fused epilogues */

static const struct {
    const char *name;
    pl_conv_act_kind kind;
    float alpha, beta; /* defaults */
} act_names[] = {
    {"Relu", PL_CONV_ACT_RELU, 0, 0},
    {"Clip", PL_CONV_ACT_CLIP, -INFINITY, INFINITY},
    {"LeakyRelu", PL_CONV_ACT_LEAKY_RELU, 0.01f, 0},
    {"Sigmoid", PL_CONV_ACT_SIGMOID, 0, 0},
    {"HardSigmoid", PL_CONV_ACT_HARD_SIGMOID, 0.2f, 0.5f},
    {"HardSwish", PL_CONV_ACT_HARD_SWISH, 0, 0},
    {"Tanh", PL_CONV_ACT_TANH, 0, 0},
    {"Gelu", PL_CONV_ACT_GELU, 0, 0},
    {"GeluTanh", PL_CONV_ACT_GELU_TANH, 0, 0},
};

pl_status cvf_epilogue_setup(const pl_op_ctx *c, cvf_epilogue *e) {
    memset(e, 0, sizeof *e);
    e->act.kind = PL_CONV_ACT_NONE;
    e->residual = -1;
    e->nbase = c->nin;
    const char *name = pl_attr_str(c->node, "pillar_act", NULL);
    if (name) {
        size_t i = 0, n = sizeof act_names / sizeof act_names[0];
        while (i < n && strcmp(act_names[i].name, name)) i++;
        if (i == n)
            return pl_op_error(c, PL_ERR_UNSUPPORTED, "attribute 'pillar_act' = '%s' is not supported",
                               name);
        e->act.kind = act_names[i].kind;
        e->act.alpha = pl_attr_float(c->node, "pillar_act_alpha", act_names[i].alpha);
        e->act.beta = pl_attr_float(c->node, "pillar_act_beta", act_names[i].beta);
    }
    int64_t r = pl_attr_int(c->node, "pillar_residual", 0);
    if (r != 0 && r != 1)
        return pl_op_error(c, PL_ERR_MODEL, "attribute 'pillar_residual' = %lld must be 0 or 1",
                           (long long)r);
    if (r) {
        if (c->nin < 3 || !c->in[c->nin - 1])
            return pl_op_error(c, PL_ERR_MODEL, "attribute 'pillar_residual' is set but the residual input is missing");
        e->residual = c->nin - 1;
        e->nbase = c->nin - 1;
    }
    return PL_OK;
}

pl_status cvf_epilogue_check(const pl_op_ctx *c, const cvf_epilogue *e, pl_dtype dtype, int ndim,
                             const int64_t *dims) {
    if (e->residual < 0) return PL_OK;
    const pl_tensor *r = c->in[e->residual];
    pl_tensor want = {.dtype = dtype, .ndim = ndim};
    memcpy(want.dims, dims, sizeof(int64_t) * (size_t)ndim);
    if (r->dtype != dtype || !pl_tensor_same_shape(r, &want)) {
        char s1[128], s2[128];
        return pl_op_error(c, PL_ERR_MODEL, "residual (input %d) is %s %s, expected %s %s like the output",
                           e->residual, pl_dtype_name(r->dtype), pl_shape_str(r, s1, sizeof s1),
                           pl_dtype_name(dtype), pl_shape_str(&want, s2, sizeof s2));
    }
    return PL_OK;
}
