/* conv.c -- Conv, ConvTranspose, ConvInteger and QLinearConv: attribute and shape
 * handling around the kernels of src/kernels/conv. Data is [N, C, spatial...] with 1
 * to 6 spatial dims. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/threadpool.h"
#include "kernels/conv/conv.h"
#include "kernels/conv/conv_fast.h"
#include "ops/conv_band.h"
#include "ops/conv_common.h"
#include "ops/linalg_util.h"
#include "ops/qfused.h"

static const pl_dtype float_types[] = {PL_F32, PL_F64, PL_F16, PL_BF16, PL_UNDEF};
static const pl_dtype q8_types[] = {PL_U8, PL_I8, PL_UNDEF};

/* An optional 'kernel_shape' attribute must agree with the weight's spatial dims. */
static pl_status check_kernel_shape(const pl_op_ctx *c, int nsp, const int64_t *kernel) {
    size_t nk;
    const int64_t *ks = pl_attr_ints(c->node, "kernel_shape", &nk);
    if (!ks) return PL_OK;
    if (nk != (size_t)nsp)
        return pl_op_error(c, PL_ERR_MODEL, "attribute 'kernel_shape' has %zu values, expected %d",
                           nk, nsp);
    for (int d = 0; d < nsp; d++)
        if (ks[d] != kernel[d])
            return pl_op_error(c, PL_ERR_MODEL,
                               "attribute 'kernel_shape' is %lld on spatial axis %d but the weight has %lld",
                               (long long)ks[d], d, (long long)kernel[d]);
    return PL_OK;
}

static pl_status check_group(const pl_op_ctx *c, int64_t channels, int64_t *group) {
    *group = pl_attr_int(c->node, "group", 1);
    if (*group < 1)
        return pl_op_error(c, PL_ERR_MODEL, "attribute 'group' = %lld must be at least 1",
                           (long long)*group);
    if (channels % *group)
        return pl_op_error(c, PL_ERR_INPUT, "input has %lld channels, not divisible by group %lld",
                           (long long)channels, (long long)*group);
    return PL_OK;
}

/* Input i, when present, must be a vector of m elements (a bias). */
static pl_status check_vector(const pl_op_ctx *c, int i, int64_t m, const char *what) {
    if (!pl_has_in(c, i)) return PL_OK;
    const pl_tensor *b = c->in[i];
    if (b->ndim != 1 || b->dims[0] != m) {
        char s[128];
        return pl_op_error(c, PL_ERR_MODEL, "%s (input %d) has shape %s, expected [%lld]", what, i,
                           pl_shape_str(b, s, sizeof s), (long long)m);
    }
    return PL_OK;
}

/* Input i, when present, must hold one value, or (per_channel) m values. */
static pl_status check_count(const pl_op_ctx *c, int i, int64_t m, bool per_channel,
                             const char *what) {
    if (!pl_has_in(c, i)) return PL_OK;
    int64_t n = pl_numel(c->in[i]);
    if (n == 1 || (per_channel && n == m && c->in[i]->ndim == 1)) return PL_OK;
    if (per_channel)
        return pl_op_error(c, PL_ERR_MODEL, "%s (input %d) has %lld values, expected 1 or %lld",
                           what, i, (long long)n, (long long)m);
    return pl_op_error(c, PL_ERR_MODEL, "%s (input %d) has %lld values, expected 1", what, i,
                       (long long)n);
}

/* Geometry of a convolution with data input xi [N, C, in...] and weight input wi
 * [M, C/group, k...]: checks shapes and attributes, fills p and the output dims. */
static pl_status conv_geometry(const pl_op_ctx *c, int xi, int wi, pl_conv_params *p,
                               int64_t *ydims) {
    const pl_tensor *x = c->in[xi], *w = c->in[wi];
    PL_TRY(cvf_check_rank(c, xi, 3, PL_MAX_DIMS));
    if (w->ndim != x->ndim)
        return pl_op_error(c, PL_ERR_MODEL, "weight (input %d) has %d dims, expected %d like the input",
                           wi, w->ndim, x->ndim);
    const int nsp = x->ndim - 2;
    const int64_t C = x->dims[1], M = w->dims[0];
    int64_t group;
    PL_TRY(check_group(c, C, &group));
    if (w->dims[1] != C / group)
        return pl_op_error(c, PL_ERR_INPUT,
                           "weight has %lld input channels per group, expected %lld (%lld channels / group %lld)",
                           (long long)w->dims[1], (long long)(C / group), (long long)C,
                           (long long)group);
    if (M % group)
        return pl_op_error(c, PL_ERR_MODEL, "weight has %lld output channels, not divisible by group %lld",
                           (long long)M, (long long)group);
    int64_t kernel[CVF_MAX_SP];
    for (int d = 0; d < nsp; d++) kernel[d] = w->dims[d + 2];
    PL_TRY(check_kernel_shape(c, nsp, kernel));
    cvf_window win;
    PL_TRY(cvf_window_setup(c, x, kernel, false, &win));
    memset(p, 0, sizeof *p);
    p->ndim = nsp;
    p->batch = x->dims[0];
    p->in_channels = C;
    p->out_channels = M;
    p->group = group;
    ydims[0] = x->dims[0];
    ydims[1] = M;
    for (int d = 0; d < nsp; d++) {
        p->in_size[d] = win.in[d];
        p->out_size[d] = win.out[d];
        p->kernel[d] = win.kernel[d];
        p->stride[d] = win.stride[d];
        p->pad_begin[d] = win.pad_begin[d];
        p->dilation[d] = win.dilation[d];
        ydims[d + 2] = win.out[d];
    }
    return PL_OK;
}

/* ------------------------------------------------------------------ Conv */

/* Checks shared by Conv and ConvTranspose: input count (the fused residual is one more,
 * last), float types, the fused epilogue. */
static pl_status float_conv_checks(pl_op_ctx *c, cvf_epilogue *e) {
    PL_TRY(cvf_epilogue_setup(c, e));
    PL_TRY(pl_op_check_arity(c, 2, e->residual >= 0 ? 4 : 3));
    PL_TRY(pl_op_check_dtype(c, 0, float_types));
    PL_TRY(pl_op_check_same_dtype(c, 0, 1));
    if (e->nbase > 2) PL_TRY(pl_op_check_same_dtype(c, 0, 2));
    return cvf_shapes_known(c);
}

/* The bias input, or NULL (with a fused residual, input 2 is the bias only when there
 * are four inputs). */
static const pl_tensor *bias_of(const pl_op_ctx *c, const cvf_epilogue *e) {
    return e->nbase > 2 && pl_has_in(c, 2) ? c->in[2] : NULL;
}

pl_status conv_infer(pl_op_ctx *c) {
    cvf_epilogue e;
    PL_TRY(float_conv_checks(c, &e));
    pl_conv_params p;
    int64_t ydims[PL_MAX_DIMS];
    PL_TRY(conv_geometry(c, 0, 1, &p, ydims));
    if (e.nbase > 2) PL_TRY(check_vector(c, 2, p.out_channels, "bias"));
    PL_TRY(cvf_epilogue_check(c, &e, c->in[0]->dtype, c->in[0]->ndim, ydims));
    return cvf_set_out(c, 0, c->in[0]->dtype, c->in[0]->ndim, ydims);
}

/* Shared by Conv and ConvTranspose once the geometry is known: float/double dispatch
 * with conversion for float16/bfloat16, then the fused residual and activation. */
static pl_status conv_float_run(pl_op_ctx *c, const pl_conv_params *p, const cvf_epilogue *e,
                                bool transpose) {
    if (!c->out[0]) return PL_OK;
    const pl_dtype ct = cvf_compute_type(c->in[0]->dtype);
    const pl_tensor *bt = bias_of(c, e);
    const void *x, *w, *b = NULL, *r = NULL;
    void *y, *tx = NULL, *tw = NULL, *tb = NULL, *tr = NULL, *ty = NULL;
    pl_status st = cvf_load(c, c->in[0], ct, &x, &tx);
    if (!st) st = cvf_load(c, c->in[1], ct, &w, &tw);
    if (!st && bt) st = cvf_load(c, bt, ct, &b, &tb);
    if (!st && e->residual >= 0) st = cvf_load(c, c->in[e->residual], ct, &r, &tr);
    if (!st) st = cvf_out(c, c->out[0], ct, &y, &ty);
    if (!st) {
        const bool epi = r || e->act.kind != PL_CONV_ACT_NONE;
        const int64_t n = pl_numel(c->out[0]);
        if (ct == PL_F64) {
            if (transpose) pl_f64_convtranspose_ref(p, x, w, b, y);
            else pl_f64_conv_ref(p, x, w, b, y);
            if (epi) pl_f64_conv_act_ref(&e->act, y, r, n);
        } else {
            if (transpose) pl_f32_convtranspose_ref(p, x, w, b, y);
            else pl_f32_conv_ref(p, x, w, b, y);
            if (epi) pl_f32_conv_act_ref(&e->act, y, r, n);
        }
        cvf_out_done(c->out[0], ct, ty);
        ty = NULL;
    }
    free(tx);
    free(tw);
    free(tb);
    free(tr);
    free(ty);
    return st;
}

/* What conv_prepare leaves for the runs: the geometry it planned and the plan. */
typedef struct conv_state {
    pl_conv_params p;
    pl_conv_fast *fast;
} conv_state;

static bool same_params(const pl_conv_params *a, const pl_conv_params *b) {
    return !memcmp(a, b, sizeof *a);
}

/* A fast plan when the node is float32 with constant weights (and bias) and a 1-D or 2-D
 * geometry the fast kernels cover; nothing otherwise (the runs then use the reference
 * path, or plan on the fly). */
pl_status conv_prepare(pl_op_ctx *c) {
    cvf_epilogue e;
    PL_TRY(float_conv_checks(c, &e));
    if (c->in[0]->dtype != PL_F32 || !c->in[1]->data) return PL_OK;
    const pl_tensor *bt = bias_of(c, &e);
    if (bt && !bt->data) return PL_OK;
    pl_conv_params p;
    int64_t ydims[PL_MAX_DIMS];
    PL_TRY(conv_geometry(c, 0, 1, &p, ydims));
    if (!pl_conv_fast_supported(&p, PL_CONV_ALGO_AUTO)) return PL_OK;
    conv_state *s = calloc(1, sizeof *s);
    if (!s) return pl_op_error(c, PL_ERR_NOMEM, "out of memory");
    s->p = p;
    pl_status st = pl_conv_fast_create(&p, c->in[1]->data, bt ? bt->data : NULL, &e.act,
                                       pl_conv_algo_request(&p), pl_threadpool_size(c->pool), &s->fast);
    if (st) {
        free(s);
        return st == PL_ERR_UNSUPPORTED ? PL_OK : pl_op_error(c, st, "%s", pl_error_msg());
    }
    c->state = s;
    c->scratch_size = pl_conv_fast_scratch_size(s->fast);
    snprintf(c->kernel, sizeof c->kernel, "%s", pl_conv_algo_name(pl_conv_fast_algo(s->fast)));
    c->packed_inputs = 1u << 1 | (bt ? 1u << 2 : 0);
    return PL_OK;
}

void conv_release(void *state) {
    conv_state *s = state;
    if (!s) return;
    pl_conv_fast_destroy(s->fast);
    free(s);
}

pl_status conv_run(pl_op_ctx *c) {
    cvf_epilogue e;
    PL_TRY(cvf_epilogue_setup(c, &e));
    pl_conv_params p;
    int64_t ydims[PL_MAX_DIMS];
    PL_TRY(conv_geometry(c, 0, 1, &p, ydims));
    pl_tensor *yt = c->out[0];
    if (!yt) return PL_OK;
    if (c->in[0]->dtype == PL_F32 && pl_numel(yt) > 0) {
        const conv_state *s = c->state;
        const float *res = e.residual >= 0 ? c->in[e.residual]->data : NULL;
        if (s && s->fast && same_params(&s->p, &p)) {
            pl_status st = pl_conv_fast_run(s->fast, c->in[0]->data, res, yt->data, c->scratch,
                                            c->scratch_size, c->pool);
            return st ? pl_op_error(c, st, "%s", pl_error_msg()) : PL_OK;
        }
        if (pl_conv_fast_supported(&p, PL_CONV_ALGO_AUTO)) {
            /* weights known only now (or a new geometry): plan for this run */
            const pl_tensor *bt = bias_of(c, &e);
            pl_conv_fast *f;
            pl_status st = pl_conv_fast_create(&p, c->in[1]->data, bt ? bt->data : NULL, &e.act,
                                               pl_conv_algo_request(&p), pl_threadpool_size(c->pool), &f);
            if (!st) {
                st = pl_conv_fast_run(f, c->in[0]->data, res, yt->data, NULL, 0, c->pool);
                pl_conv_fast_destroy(f);
            }
            if (st != PL_ERR_UNSUPPORTED) return st ? pl_op_error(c, st, "%s", pl_error_msg()) : PL_OK;
        }
    }
    return conv_float_run(c, &p, &e, false);
}

/* ------------------------------------------------------------------ ConvTranspose */

static int64_t floor_div2(int64_t v) { return v >= 0 ? v / 2 : -((-v + 1) / 2); }

/* Geometry of a transposed convolution: x [N, C, in...], w [C, M/group, k...]. The
 * output size comes from 'output_shape' (pads derived from it), from auto_pad
 * (in * stride), or from the pads. Derived pads may be negative: the output then
 * extends past the natural result, as the ONNX formulas give. */
static pl_status convt_geometry(const pl_op_ctx *c, pl_conv_params *p, int64_t *ydims) {
    const pl_tensor *x = c->in[0], *w = c->in[1];
    PL_TRY(cvf_check_rank(c, 0, 3, PL_MAX_DIMS));
    if (w->ndim != x->ndim)
        return pl_op_error(c, PL_ERR_MODEL, "weight (input 1) has %d dims, expected %d like the input",
                           w->ndim, x->ndim);
    const int nsp = x->ndim - 2;
    const int64_t C = x->dims[1];
    int64_t group;
    PL_TRY(check_group(c, C, &group));
    if (w->dims[0] != C)
        return pl_op_error(c, PL_ERR_INPUT, "weight has %lld input channels, expected %lld like the input",
                           (long long)w->dims[0], (long long)C);
    if (w->dims[1] > 0 && group > INT64_MAX / w->dims[1])
        return pl_op_error(c, PL_ERR_MODEL, "attribute 'group' = %lld is too large", (long long)group);
    const int64_t M = w->dims[1] * group;
    int64_t kernel[CVF_MAX_SP], stride[CVF_MAX_SP], dil[CVF_MAX_SP], opad[CVF_MAX_SP];
    int64_t pads[2 * CVF_MAX_SP];
    for (int d = 0; d < nsp; d++) kernel[d] = w->dims[d + 2];
    PL_TRY(check_kernel_shape(c, nsp, kernel));
    const int64_t lim = (int64_t)1 << 31;
    PL_TRY(cvf_ints_attr(c, "strides", nsp, 1, 1, lim, stride));
    PL_TRY(cvf_ints_attr(c, "dilations", nsp, 1, 1, lim, dil));
    PL_TRY(cvf_ints_attr(c, "output_padding", nsp, 0, 0, lim, opad));
    PL_TRY(cvf_ints_attr(c, "pads", 2 * nsp, 0, 0, lim, pads));
    size_t nos = 0;
    const int64_t *os = pl_attr_ints(c->node, "output_shape", &nos);
    if (os) {
        if (nos != (size_t)nsp && nos != (size_t)nsp + 2)
            return pl_op_error(c, PL_ERR_MODEL, "attribute 'output_shape' has %zu values, expected %d",
                               nos, nsp);
        os += nos - (size_t)nsp; /* the spatial part */
    }
    const char *ap = pl_attr_str(c->node, "auto_pad", "NOTSET");
    bool same = !strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER");
    bool valid = !strcmp(ap, "VALID");
    if (!same && !valid && strcmp(ap, "NOTSET") && ap[0])
        return pl_op_error(c, PL_ERR_MODEL, "attribute 'auto_pad' = '%s' is not valid", ap);
    bool upper = !strcmp(ap, "SAME_UPPER");

    memset(p, 0, sizeof *p);
    p->ndim = nsp;
    p->batch = x->dims[0];
    p->in_channels = C;
    p->out_channels = M;
    p->group = group;
    ydims[0] = x->dims[0];
    ydims[1] = M;
    for (int d = 0; d < nsp; d++) {
        const int64_t in = x->dims[d + 2];
        if (kernel[d] < 1 || kernel[d] > lim)
            return pl_op_error(c, PL_ERR_MODEL, "kernel size %lld on spatial axis %d is out of range",
                               (long long)kernel[d], d);
        if (in > lim / 2)
            return pl_op_error(c, PL_ERR_UNSUPPORTED, "input size %lld on spatial axis %d is too large",
                               (long long)in, d);
        const int64_t natural = stride[d] * (in - 1) + opad[d] + (kernel[d] - 1) * dil[d] + 1;
        int64_t out, pb;
        if (os || same) {
            if (os && (os[d] < 0 || os[d] > lim * lim))
                return pl_op_error(c, PL_ERR_MODEL, "attribute 'output_shape' value %lld is out of range",
                                   (long long)os[d]);
            out = os ? os[d] : in * stride[d];
            int64_t total = natural - out;
            pb = upper ? floor_div2(total) : total - floor_div2(total);
        } else if (valid) {
            out = natural;
            pb = 0;
        } else {
            out = natural - pads[d] - pads[d + nsp];
            pb = pads[d];
        }
        if (out < 0)
            return pl_op_error(c, PL_ERR_INPUT, "output size on spatial axis %d would be %lld", d,
                               (long long)out);
        p->in_size[d] = in;
        p->out_size[d] = out;
        p->kernel[d] = kernel[d];
        p->stride[d] = stride[d];
        p->pad_begin[d] = pb;
        p->dilation[d] = dil[d];
        ydims[d + 2] = out;
    }
    return PL_OK;
}

pl_status convtranspose_infer(pl_op_ctx *c) {
    cvf_epilogue e;
    PL_TRY(float_conv_checks(c, &e));
    pl_conv_params p;
    int64_t ydims[PL_MAX_DIMS];
    PL_TRY(convt_geometry(c, &p, ydims));
    if (e.nbase > 2) PL_TRY(check_vector(c, 2, p.out_channels, "bias"));
    PL_TRY(cvf_epilogue_check(c, &e, c->in[0]->dtype, c->in[0]->ndim, ydims));
    return cvf_set_out(c, 0, c->in[0]->dtype, c->in[0]->ndim, ydims);
}

pl_status convtranspose_run(pl_op_ctx *c) {
    cvf_epilogue e;
    PL_TRY(cvf_epilogue_setup(c, &e));
    pl_conv_params p;
    int64_t ydims[PL_MAX_DIMS];
    PL_TRY(convt_geometry(c, &p, ydims));
    return conv_float_run(c, &p, &e, true);
}

/* ------------------------------------------------------------------ integer convolutions */

/* t's values minus their zero point (zp NULL: 0; one value: per tensor; else one per
 * block of `block` consecutive elements, i.e. per output channel of a weight). */
static pl_status load_centered(const pl_op_ctx *c, const pl_tensor *t, const pl_tensor *zp,
                               int64_t block, int32_t **out) {
    const int64_t n = pl_numel(t);
    void *buf;
    PL_TRY(cvf_alloc(c, n, sizeof(int32_t), &buf));
    int32_t *v = buf;
    const int64_t nz = zp ? pl_numel(zp) : 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t z = 0;
        if (nz == 1) z = pl_get_i64(zp, 0);
        else if (nz > 1 && block > 0) z = pl_get_i64(zp, i / block);
        v[i] = (int32_t)(pl_get_i64(t, i) - z);
    }
    *out = v;
    return PL_OK;
}

/* Runs the integer conv kernel: x (input xi) and w (input wi) centered on their zero
 * points (inputs xzi, wzi, -1 if none), bias from input bi (-1 if none); the int64
 * result is returned in *acc (free it). */
static pl_status integer_conv(const pl_op_ctx *c, const pl_conv_params *p, int xi, int wi, int xzi,
                              int wzi, int bi, int64_t **acc) {
    const pl_tensor *xz = xzi >= 0 && pl_has_in(c, xzi) ? c->in[xzi] : NULL;
    const pl_tensor *wz = wzi >= 0 && pl_has_in(c, wzi) ? c->in[wzi] : NULL;
    const pl_tensor *w = c->in[wi];
    const int64_t wblock = p->out_channels > 0 ? pl_numel(w) / p->out_channels : 0;
    int32_t *x = NULL, *wc = NULL;
    int64_t *bias = NULL, *y = NULL;
    pl_status st = load_centered(c, c->in[xi], xz, 0, &x);
    if (!st) st = load_centered(c, w, wz, wblock, &wc);
    if (!st && bi >= 0 && pl_has_in(c, bi)) {
        st = cvf_alloc(c, p->out_channels, sizeof(int64_t), (void **)&bias);
        for (int64_t m = 0; !st && m < p->out_channels; m++) bias[m] = pl_get_i64(c->in[bi], m);
    }
    int64_t ydims[PL_MAX_DIMS] = {p->batch, p->out_channels};
    for (int d = 0; d < p->ndim; d++) ydims[d + 2] = p->out_size[d];
    if (!st) st = cvf_alloc(c, pl_dims_numel(p->ndim + 2, ydims), sizeof(int64_t), (void **)&y);
    if (!st) pl_i32_conv_ref(p, x, wc, bias, y);
    free(x);
    free(wc);
    free(bias);
    if (st) {
        free(y);
        return st;
    }
    *acc = y;
    return PL_OK;
}

pl_status convinteger_infer(pl_op_ctx *c) {
    PL_TRY(pl_op_check_arity(c, 2, 4));
    PL_TRY(pl_op_check_dtype(c, 0, q8_types));
    PL_TRY(pl_op_check_dtype(c, 1, q8_types));
    PL_TRY(pl_op_check_same_dtype(c, 0, 2));
    PL_TRY(pl_op_check_same_dtype(c, 1, 3));
    PL_TRY(cvf_shapes_known(c));
    pl_conv_params p;
    int64_t ydims[PL_MAX_DIMS];
    PL_TRY(conv_geometry(c, 0, 1, &p, ydims));
    PL_TRY(check_count(c, 2, p.out_channels, false, "x_zero_point"));
    PL_TRY(check_count(c, 3, p.out_channels, true, "w_zero_point"));
    return cvf_set_out(c, 0, PL_I32, c->in[0]->ndim, ydims);
}

/* ConvInteger with a constant weight: the INT8 engine, int32 output. */
pl_status convinteger_prepare(pl_op_ctx *c) {
    PL_TRY(convinteger_infer(c));
    pl_conv_params p;
    int64_t ydims[PL_MAX_DIMS];
    PL_TRY(conv_geometry(c, 0, 1, &p, ydims));
    const pl_q_io io = {0, -1, 2, 1, -1, 3, -1, -1, -1};
    return pl_qconv_prepare(c, &p, &io, PL_Q8_OUT_I32);
}

pl_status convinteger_run(pl_op_ctx *c) {
    pl_conv_params p;
    int64_t ydims[PL_MAX_DIMS];
    PL_TRY(conv_geometry(c, 0, 1, &p, ydims));
    if (!c->out[0]) return PL_OK;
    bool done;
    PL_TRY(pl_qconv_run(c, &p, &done));
    if (done) return PL_OK;
    int64_t *acc;
    PL_TRY(integer_conv(c, &p, 0, 1, 2, 3, -1, &acc));
    int32_t *y = c->out[0]->data;
    const int64_t n = pl_numel(c->out[0]);
    for (int64_t i = 0; i < n; i++) y[i] = (int32_t)acc[i]; /* wraps like an int32 accumulator */
    free(acc);
    return PL_OK;
}

/* QLinearConv inputs: x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale,
 * y_zero_point, B. */
pl_status qlinearconv_infer(pl_op_ctx *c) {
    static const pl_dtype f32[] = {PL_F32, PL_UNDEF};
    static const pl_dtype i32[] = {PL_I32, PL_UNDEF};
    const bool fout = pl_attr_int(c->node, "pillar_out_float", 0) != 0;
    PL_TRY(pl_op_check_arity(c, fout ? 6 : 8, 9));
    if (!c->in[1] || !c->in[3] || !c->in[4] || (!fout && !c->in[6]))
        return pl_op_error(c, PL_ERR_MODEL, "inputs x_scale, w, w_scale and y_scale are required");
    PL_TRY(pl_op_check_dtype(c, 0, q8_types));
    PL_TRY(pl_op_check_dtype(c, 3, q8_types));
    PL_TRY(pl_op_check_dtype(c, 7, q8_types));
    PL_TRY(pl_op_check_same_dtype(c, 0, 2));
    PL_TRY(pl_op_check_same_dtype(c, 3, 5));
    PL_TRY(pl_op_check_dtype(c, 1, f32));
    PL_TRY(pl_op_check_dtype(c, 4, f32));
    PL_TRY(pl_op_check_dtype(c, 6, f32));
    PL_TRY(pl_op_check_dtype(c, 8, i32));
    PL_TRY(cvf_shapes_known(c));
    pl_conv_params p;
    int64_t ydims[PL_MAX_DIMS];
    PL_TRY(conv_geometry(c, 0, 3, &p, ydims));
    const int64_t M = p.out_channels;
    PL_TRY(check_count(c, 1, M, false, "x_scale"));
    PL_TRY(check_count(c, 2, M, false, "x_zero_point"));
    PL_TRY(check_count(c, 4, M, true, "w_scale"));
    PL_TRY(check_count(c, 5, M, true, "w_zero_point"));
    PL_TRY(check_count(c, 6, M, false, "y_scale"));
    PL_TRY(check_count(c, 7, M, false, "y_zero_point"));
    PL_TRY(check_vector(c, 8, M, "bias"));
    float lo, hi;
    PL_TRY(pl_q_act_range(c, &lo, &hi));
    pl_dtype yt = fout ? PL_F32 : pl_has_in(c, 7) ? c->in[7]->dtype : c->in[0]->dtype;
    return cvf_set_out(c, 0, yt, c->in[0]->ndim, ydims);
}

/* QLinearConv with constant weights and parameters: the INT8 engine (dense or
 * block-sparse), requantisation and the fused activation in its epilogue. */
pl_status qlinearconv_prepare(pl_op_ctx *c) {
    PL_TRY(qlinearconv_infer(c));
    pl_conv_params p;
    int64_t ydims[PL_MAX_DIMS];
    PL_TRY(conv_geometry(c, 0, 3, &p, ydims));
    const bool fout = pl_attr_int(c->node, "pillar_out_float", 0) != 0;
    const pl_q_io io = {0, 1, 2, 3, 4, 5, fout ? -1 : 6, fout ? -1 : 7, 8};
    pl_q8_out out = fout ? PL_Q8_OUT_F32 : c->out[0] && c->out[0]->dtype == PL_I8 ? PL_Q8_OUT_S8 : PL_Q8_OUT_U8;
    if (!fout && pl_has_in(c, 7) && c->in[7]->dtype == PL_I8) out = PL_Q8_OUT_S8;
    return pl_qconv_prepare(c, &p, &io, out);
}

pl_status qlinearconv_run(pl_op_ctx *c) {
    pl_conv_params p;
    int64_t ydims[PL_MAX_DIMS];
    PL_TRY(conv_geometry(c, 0, 3, &p, ydims));
    pl_tensor *yt = c->out[0];
    if (!yt) return PL_OK;
    bool done;
    PL_TRY(pl_qconv_run(c, &p, &done));
    if (done) return PL_OK;
    int64_t *acc;
    PL_TRY(integer_conv(c, &p, 0, 3, 2, 5, 8, &acc));
    float alo, ahi;
    PL_TRY(pl_q_act_range(c, &alo, &ahi));
    const bool fout = pl_attr_int(c->node, "pillar_out_float", 0) != 0;
    const double xs = pl_get_f64(c->in[1], 0), ys = fout ? 1.0 : pl_get_f64(c->in[6], 0);
    const int64_t yz = pl_has_in(c, 7) ? pl_get_i64(c->in[7], 0) : 0;
    const bool is_u8 = yt->dtype == PL_U8;
    const double lo = is_u8 ? 0 : -128, hi = is_u8 ? 255 : 127;
    const int64_t nws = pl_numel(c->in[4]);
    int64_t out_sp = 1;
    for (int d = 0; d < p.ndim; d++) out_sp *= p.out_size[d];
    const int64_t n = pl_numel(yt);
    for (int64_t i = 0; i < n; i++) {
        int64_t m = (i / out_sp) % p.out_channels;
        double ws = pl_get_f64(c->in[4], nws == 1 ? 0 : m);
        double r = (double)acc[i] * (xs * ws / ys);
        r = r < alo / ys ? alo / ys : r > ahi / ys ? ahi / ys : r; /* fused Relu / Clip */
        if (fout) {
            ((float *)yt->data)[i] = (float)r;
            continue;
        }
        /* requantize: round half to even (the default rounding mode), then saturate */
        double v = nearbyint(r) + (double)yz;
        v = v < lo ? lo : v > hi ? hi : v;
        if (v != v) v = (double)yz;
        if (is_u8) ((uint8_t *)yt->data)[i] = (uint8_t)v;
        else ((int8_t *)yt->data)[i] = (int8_t)v;
    }
    free(acc);
    return PL_OK;
}

/* ------------------------------------------------------------------ column executor */

bool pl_conv_band_info_of(const pl_node *n, pl_tensor **in, const void *state,
                          pl_conv_band_info *info) {
    const conv_state *s = state;
    if (!n || strcmp(n->op_type, "Conv") || n->domain[0] || !s || !s->fast) return false;
    if (s->p.ndim != 2 || !in[0] || in[0]->dtype != PL_F32 || in[0]->ndim != 4) return false;
    if (!in[1] || in[1]->dtype != PL_F32) return false;
    pl_op_ctx c = {0};
    c.node = n;
    c.nin = n->nin;
    c.in = in;
    cvf_epilogue e;
    if (cvf_epilogue_setup(&c, &e) != PL_OK) {
        pl_error_clear();
        return false;
    }
    const pl_tensor *bt = bias_of(&c, &e);
    if (bt && bt->dtype != PL_F32) return false;
    if (e.residual >= 0 && (!in[e.residual] || in[e.residual]->dtype != PL_F32)) return false;
    memset(info, 0, sizeof *info);
    info->p = s->p;
    info->act = e.act;
    info->residual = e.residual;
    info->w = in[1]->data;
    info->bias = bt ? bt->data : NULL;
    if (bt && !bt->data) info->w = NULL; /* released: the band cannot be planned */
    info->algo = pl_conv_fast_algo(s->fast);
    info->act_direct = pl_conv_fast_act_epilogue(s->fast, &info->epi);
    info->call_px = pl_conv_fast_sparse_call_px(s->fast);
    info->epi.row_bias = NULL; /* the layer plan's copy: gone with the plan */
    return true;
}


pl_conv_algo pl_conv_algo_request(const pl_conv_params *p) {
    const int mode = mm_sparse_mode();
    if (mode == 0) return PL_CONV_ALGO_AUTO_DENSE;
    const bool depthwise = p->group > 1 && p->group == p->in_channels;
    if (mode == 1 && !depthwise && pl_conv_fast_supported(p, PL_CONV_ALGO_SPARSE))
        return PL_CONV_ALGO_SPARSE;
    return PL_CONV_ALGO_AUTO;
}
