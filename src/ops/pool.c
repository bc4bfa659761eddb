/* pool.c -- MaxPool, AveragePool, LpPool, their Global forms, and MaxUnpool: attribute
 * and shape handling around the kernels of src/kernels/pool. */
#include <stdlib.h>
#include <string.h>

#include "kernels/pool/pool.h"
#include "kernels/pool/pool_fast.h"
#include "ops/conv_common.h"

static const pl_dtype float_types[] = {PL_F32, PL_F64, PL_F16, PL_BF16, PL_UNDEF};
static const pl_dtype maxpool_types[] = {PL_F32, PL_F64, PL_F16, PL_BF16, PL_I8, PL_U8, PL_UNDEF};

typedef enum pool_kind { POOL_MAX, POOL_AVG, POOL_LP } pool_kind;

/* Kernel parameters and output dims of a windowed pool (kernel_shape, strides, pads,
 * auto_pad, dilations, ceil_mode attributes) or of a global one (one window covering
 * all spatial dims). */
static pl_status pool_geometry(const pl_op_ctx *c, bool global, pl_pool_params *p,
                               int64_t *ydims) {
    const pl_tensor *x = c->in[0];
    PL_TRY(cvf_check_rank(c, 0, global ? 2 : 3, PL_MAX_DIMS));
    const int nsp = x->ndim - 2;
    memset(p, 0, sizeof *p);
    if (pl_dims_numel(2, x->dims) < 0)
        return pl_op_error(c, PL_ERR_INPUT, "batch x channels overflows");
    p->planes = x->dims[0] * x->dims[1];
    ydims[0] = x->dims[0];
    ydims[1] = x->dims[1];
    if (global) {
        p->ndim = nsp > 0 ? nsp : 1;
        for (int d = 0; d < p->ndim; d++) {
            p->in_size[d] = p->kernel[d] = nsp > 0 ? x->dims[d + 2] : 1;
            p->out_size[d] = p->stride[d] = p->dilation[d] = 1;
        }
        for (int d = 0; d < nsp; d++) ydims[d + 2] = 1;
        return PL_OK;
    }
    const pl_attr *ka = pl_attr_find(c->node, "kernel_shape");
    if (!ka) return pl_op_error(c, PL_ERR_MODEL, "attribute 'kernel_shape' is required");
    int64_t kernel[CVF_MAX_SP];
    PL_TRY(cvf_ints_attr(c, "kernel_shape", nsp, 1, 1, (int64_t)1 << 31, kernel));
    int64_t ceil_mode = pl_attr_int(c->node, "ceil_mode", 0);
    if (ceil_mode != 0 && ceil_mode != 1)
        return pl_op_error(c, PL_ERR_MODEL, "attribute 'ceil_mode' = %lld must be 0 or 1",
                           (long long)ceil_mode);
    cvf_window w;
    PL_TRY(cvf_window_setup(c, x, kernel, ceil_mode != 0, &w));
    p->ndim = nsp;
    for (int d = 0; d < nsp; d++) {
        p->in_size[d] = w.in[d];
        p->out_size[d] = w.out[d];
        p->kernel[d] = w.kernel[d];
        p->stride[d] = w.stride[d];
        p->pad_begin[d] = w.pad_begin[d];
        p->pad_end[d] = w.pad_end[d];
        p->dilation[d] = w.dilation[d];
        ydims[d + 2] = w.out[d];
    }
    return PL_OK;
}

/* LpPool's exponent: a float in opset 1, an int later. */
static pl_status lp_exponent(const pl_op_ctx *c, double *pw) {
    const pl_attr *a = pl_attr_find(c->node, "p");
    *pw = 2;
    if (a && a->type == PL_ATTR_INT) *pw = (double)a->i;
    else if (a && a->type == PL_ATTR_FLOAT) *pw = a->f;
    if (!(*pw > 0) || *pw > 1e6)
        return pl_op_error(c, PL_ERR_MODEL, "attribute 'p' = %g must be positive", *pw);
    return PL_OK;
}

static pl_status pool_infer(pl_op_ctx *c, pool_kind kind, bool global) {
    PL_TRY(pl_op_check_arity(c, 1, 1));
    PL_TRY(pl_op_check_dtype(c, 0, kind == POOL_MAX ? maxpool_types : float_types));
    PL_TRY(cvf_shapes_known(c));
    pl_pool_params p;
    int64_t ydims[PL_MAX_DIMS];
    PL_TRY(pool_geometry(c, global, &p, ydims));
    if (kind == POOL_LP) {
        double pw;
        PL_TRY(lp_exponent(c, &pw));
    }
    if (kind == POOL_MAX && !global) {
        int64_t so = pl_attr_int(c->node, "storage_order", 0);
        if (so != 0 && so != 1)
            return pl_op_error(c, PL_ERR_MODEL, "attribute 'storage_order' = %lld must be 0 or 1",
                               (long long)so);
    }
    if (kind == POOL_AVG) {
        int64_t cip = pl_attr_int(c->node, "count_include_pad", 0);
        if (cip != 0 && cip != 1)
            return pl_op_error(c, PL_ERR_MODEL, "attribute 'count_include_pad' = %lld must be 0 or 1",
                               (long long)cip);
    }
    const int rank = c->in[0]->ndim;
    PL_TRY(cvf_set_out(c, 0, c->in[0]->dtype, rank, ydims));
    if (kind == POOL_MAX && !global && c->nout > 1) PL_TRY(cvf_set_out(c, 1, PL_I64, rank, ydims));
    return PL_OK;
}

static pl_status pool_run(pl_op_ctx *c, pool_kind kind, bool global) {
    pl_pool_params p;
    int64_t ydims[PL_MAX_DIMS];
    PL_TRY(pool_geometry(c, global, &p, ydims));
    double pw = 2;
    if (kind == POOL_LP) PL_TRY(lp_exponent(c, &pw));
    const bool want_y = c->out[0] != NULL;
    int64_t *indices = NULL;
    if (kind == POOL_MAX && !global && c->nout > 1 && c->out[1]) indices = c->out[1]->data;
    if (!want_y && !indices) return PL_OK;

    /* float32 max/average pooling without indices: the fast kernels */
    if (c->in[0]->dtype == PL_F32 && want_y && !indices && kind != POOL_LP) {
        const pl_pool_fast_kind fk = kind == POOL_MAX ? PL_POOL_FAST_MAX : PL_POOL_FAST_AVG;
        pl_status st = PL_ERR_UNSUPPORTED;
        if (global) {
            int64_t plane = 1;
            for (int d = 2; d < c->in[0]->ndim; d++) plane *= c->in[0]->dims[d];
            st = pl_pool_fast_global(fk, c->in[0]->data, p.planes, plane, c->out[0]->data, c->pool);
        } else if (pl_pool_fast_supported(&p)) {
            int cip = (int)pl_attr_int(c->node, "count_include_pad", 0);
            st = pl_pool_fast_run(fk, &p, cip, c->in[0]->data, c->out[0]->data, c->pool);
        }
        if (st != PL_ERR_UNSUPPORTED) return st ? pl_op_error(c, st, "%s", pl_error_msg()) : PL_OK;
    }

    const pl_dtype ct = cvf_compute_type(c->in[0]->dtype);
    const void *x;
    void *y, *tx = NULL, *ty = NULL;
    pl_status st = cvf_load(c, c->in[0], ct, &x, &tx);
    if (!st && want_y) {
        st = cvf_out(c, c->out[0], ct, &y, &ty);
    } else if (!st) { /* only the indices are wanted: values go to scratch */
        st = cvf_alloc(c, pl_numel(c->out[1]), ct == PL_F64 ? sizeof(double) : sizeof(float), &ty);
        y = ty;
    }
    if (!st) {
        int col_major = (int)pl_attr_int(c->node, "storage_order", 0);
        bool f64 = ct == PL_F64;
        switch (kind) {
        case POOL_MAX:
            if (f64) pl_f64_maxpool_ref(&p, x, y, indices, col_major);
            else pl_f32_maxpool_ref(&p, x, y, indices, col_major);
            break;
        case POOL_AVG: {
            int cip = (int)pl_attr_int(c->node, "count_include_pad", 0);
            if (f64) pl_f64_avgpool_ref(&p, x, y, cip);
            else pl_f32_avgpool_ref(&p, x, y, cip);
            break;
        }
        case POOL_LP:
            if (f64) pl_f64_lppool_ref(&p, x, y, pw);
            else pl_f32_lppool_ref(&p, x, y, pw);
            break;
        }
        if (want_y) {
            cvf_out_done(c->out[0], ct, ty);
            ty = NULL;
        }
    }
    free(tx);
    free(ty);
    return st;
}

pl_status maxpool_infer(pl_op_ctx *c) { return pool_infer(c, POOL_MAX, false); }
pl_status maxpool_run(pl_op_ctx *c) { return pool_run(c, POOL_MAX, false); }
pl_status averagepool_infer(pl_op_ctx *c) { return pool_infer(c, POOL_AVG, false); }
pl_status averagepool_run(pl_op_ctx *c) { return pool_run(c, POOL_AVG, false); }
pl_status lppool_infer(pl_op_ctx *c) { return pool_infer(c, POOL_LP, false); }
pl_status lppool_run(pl_op_ctx *c) { return pool_run(c, POOL_LP, false); }
pl_status globalmaxpool_infer(pl_op_ctx *c) { return pool_infer(c, POOL_MAX, true); }
pl_status globalmaxpool_run(pl_op_ctx *c) { return pool_run(c, POOL_MAX, true); }
pl_status globalaveragepool_infer(pl_op_ctx *c) { return pool_infer(c, POOL_AVG, true); }
pl_status globalaveragepool_run(pl_op_ctx *c) { return pool_run(c, POOL_AVG, true); }
pl_status globallppool_infer(pl_op_ctx *c) { return pool_infer(c, POOL_LP, true); }
pl_status globallppool_run(pl_op_ctx *c) { return pool_run(c, POOL_LP, true); }

/* ------------------------------------------------------------------ MaxUnpool */

/* The inferred output dims, (in - 1) * stride + kernel - pad_begin - pad_end per
 * spatial axis, in inf; the actual output dims in ydims: those, or the output_shape
 * input when given. */
static pl_status maxunpool_shape(const pl_op_ctx *c, int64_t *inf, int64_t *ydims) {
    const pl_tensor *x = c->in[0], *ind = c->in[1];
    PL_TRY(cvf_check_rank(c, 0, 3, PL_MAX_DIMS));
    if (x->ndim != ind->ndim || memcmp(x->dims, ind->dims, sizeof(int64_t) * (size_t)x->ndim)) {
        char s1[128], s2[128];
        return pl_op_error(c, PL_ERR_INPUT, "indices have shape %s, expected %s like the input",
                           pl_shape_str(ind, s1, sizeof s1), pl_shape_str(x, s2, sizeof s2));
    }
    const int rank = x->ndim, nsp = rank - 2;
    const int64_t lim = (int64_t)1 << 31;
    int64_t kernel[CVF_MAX_SP], stride[CVF_MAX_SP], pads[2 * CVF_MAX_SP];
    if (!pl_attr_find(c->node, "kernel_shape"))
        return pl_op_error(c, PL_ERR_MODEL, "attribute 'kernel_shape' is required");
    PL_TRY(cvf_ints_attr(c, "kernel_shape", nsp, 1, 1, lim, kernel));
    PL_TRY(cvf_ints_attr(c, "strides", nsp, 1, 1, lim, stride));
    PL_TRY(cvf_ints_attr(c, "pads", 2 * nsp, 0, 0, lim, pads));
    inf[0] = x->dims[0];
    inf[1] = x->dims[1];
    for (int d = 0; d < nsp; d++) {
        const int64_t in = x->dims[d + 2];
        if (in > lim)
            return pl_op_error(c, PL_ERR_UNSUPPORTED, "input size %lld is too large", (long long)in);
        int64_t out = (in - 1) * stride[d] + kernel[d] - pads[d] - pads[d + nsp];
        if (out < 0)
            return pl_op_error(c, PL_ERR_INPUT, "output size on spatial axis %d would be %lld", d,
                               (long long)out);
        inf[d + 2] = out;
    }
    if (pl_dims_numel(rank, inf) < 0)
        return pl_op_error(c, PL_ERR_INPUT, "output would have too many elements");
    memcpy(ydims, inf, sizeof(int64_t) * (size_t)rank);
    if (!pl_has_in(c, 2)) return PL_OK;
    int n;
    PL_TRY(pl_op_input_ints(c, 2, ydims, PL_MAX_DIMS, &n));
    if (n != rank)
        return pl_op_error(c, PL_ERR_INPUT, "output_shape has %d values, expected %d", n, rank);
    for (int d = 0; d < rank; d++)
        if (ydims[d] < inf[d])
            return pl_op_error(c, PL_ERR_INPUT, "output_shape[%d] = %lld is smaller than the unpooled size %lld",
                               d, (long long)ydims[d], (long long)inf[d]);
    return PL_OK;
}

pl_status maxunpool_infer(pl_op_ctx *c) {
    static const pl_dtype i64[] = {PL_I64, PL_UNDEF};
    PL_TRY(pl_op_check_arity(c, 2, 3));
    PL_TRY(pl_op_check_dtype(c, 0, float_types));
    PL_TRY(pl_op_check_dtype(c, 1, i64));
    PL_TRY(pl_op_check_dtype(c, 2, i64));
    PL_TRY(cvf_shapes_known(c));
    int64_t inf[PL_MAX_DIMS], ydims[PL_MAX_DIMS];
    PL_TRY(maxunpool_shape(c, inf, ydims));
    return cvf_set_out(c, 0, c->in[0]->dtype, c->in[0]->ndim, ydims);
}

/* Scatters each input value to the position its index names; the rest of the output
 * stays zero. Indices are flat positions in the inferred output shape; a larger
 * output_shape holds that result in its leading corner (as the ONNX reference does). */
pl_status maxunpool_run(pl_op_ctx *c) {
    pl_tensor *y = c->out[0];
    if (!y) return PL_OK;
    int64_t inf[PL_MAX_DIMS], ydims[PL_MAX_DIMS];
    PL_TRY(maxunpool_shape(c, inf, ydims));
    const pl_tensor *x = c->in[0], *ind = c->in[1];
    const int rank = x->ndim;
    const int64_t n = pl_numel(x), ninf = pl_dims_numel(rank, inf);
    const size_t es = pl_dtype_size(x->dtype);
    const int64_t *idx = ind->data;
    int64_t ist[PL_MAX_DIMS], yst[PL_MAX_DIMS];
    pl_strides(rank, inf, ist);
    pl_strides(rank, ydims, yst);
    memset(y->data, 0, pl_nbytes(y));
    for (int64_t i = 0; i < n; i++) {
        if (idx[i] < 0 || idx[i] >= ninf)
            return pl_op_error(c, PL_ERR_INPUT, "index %lld (element %lld) is outside the unpooled output's %lld elements",
                               (long long)idx[i], (long long)i, (long long)ninf);
        int64_t rem = idx[i], off = 0;
        for (int d = 0; d < rank; d++) {
            off += rem / ist[d] * yst[d];
            rem %= ist[d];
        }
        memcpy((char *)y->data + (size_t)off * es, (const char *)x->data + (size_t)i * es, es);
    }
    return PL_OK;
}
