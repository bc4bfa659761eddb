/* resize.c -- Resize (opsets 10 to 19) and Upsample (7, 9): nearest, linear and cubic
 * interpolation over any axes, every coordinate transformation mode, scales or sizes,
 * roi for tf_crop_and_resize, antialias, keep_aspect_ratio_policy.
 *
 * The interpolation is separable: for every axis and output coordinate we compute a few
 * (source index, weight) taps once; an output element is the sum over the product of
 * its axes' taps. Axes that are not resized collapse to one tap of weight 1. */
#include <math.h>
#include <stdlib.h>

#include "ops/tensor_misc.h"

enum { RS_NEAREST, RS_LINEAR, RS_CUBIC };
enum {
    CT_HALF_PIXEL,
    CT_HALF_PIXEL_SYMMETRIC,
    CT_PYTORCH_HALF_PIXEL,
    CT_ALIGN_CORNERS,
    CT_ASYMMETRIC,
    CT_TF_HALF_PIXEL_FOR_NN,
    CT_TF_CROP_AND_RESIZE,
};
/* SIMPLE: the rounding of opset < 11 (Upsample, Resize-10): ceil when downsampling,
 * truncation otherwise. */
enum { NR_ROUND_PREFER_FLOOR, NR_ROUND_PREFER_CEIL, NR_FLOOR, NR_CEIL, NR_SIMPLE };

typedef struct rs_params {
    int mode, ctm, nearest;
    double cubic_a, extrapolation;
    bool exclude_outside, antialias;
    int r;
    int64_t odims[PL_MAX_DIMS];
    double scale[PL_MAX_DIMS];
    double roi_start[PL_MAX_DIMS], roi_end[PL_MAX_DIMS];
} rs_params;

static int str_index(const char *s, const char *const *names, int n) {
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0) return i;
    return -1;
}

static pl_status rs_attrs(pl_op_ctx *c, rs_params *p, bool legacy) {
    const pl_node *n = c->node;
    const char *mode = pl_attr_str(n, "mode", "nearest");
    if (strcmp(mode, "nearest") == 0)
        p->mode = RS_NEAREST;
    else if (strcmp(mode, "linear") == 0 || strcmp(mode, "bilinear") == 0)
        p->mode = RS_LINEAR;
    else if (strcmp(mode, "cubic") == 0 && !legacy)
        p->mode = RS_CUBIC;
    else
        return pl_op_error(c, PL_ERR_UNSUPPORTED, "attribute 'mode' = '%s' is not supported", mode);
    if (legacy) {
        p->ctm = CT_ASYMMETRIC;
        p->nearest = NR_SIMPLE;
        p->cubic_a = -0.75;
        return PL_OK;
    }
    static const char *const ctms[] = {
        "half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
        "asymmetric", "tf_half_pixel_for_nn", "tf_crop_and_resize"};
    const char *ct = pl_attr_str(n, "coordinate_transformation_mode", "half_pixel");
    p->ctm = str_index(ct, ctms, 7);
    if (p->ctm < 0)
        return pl_op_error(c, PL_ERR_UNSUPPORTED,
                           "attribute 'coordinate_transformation_mode' = '%s' is not supported",
                           ct);
    static const char *const nms[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
    const char *nm = pl_attr_str(n, "nearest_mode", "round_prefer_floor");
    p->nearest = str_index(nm, nms, 4);
    if (p->nearest < 0)
        return pl_op_error(c, PL_ERR_UNSUPPORTED,
                           "attribute 'nearest_mode' = '%s' is not supported", nm);
    p->cubic_a = pl_attr_float(n, "cubic_coeff_a", -0.75f);
    p->exclude_outside = pl_attr_int(n, "exclude_outside", 0) != 0;
    p->extrapolation = pl_attr_float(n, "extrapolation_value", 0.0f);
    p->antialias = pl_attr_int(n, "antialias", 0) != 0 && p->mode != RS_NEAREST;
    return PL_OK;
}

/* Reads a float tensor (scales, roi) of exactly `want` values. */
static pl_status read_floats(pl_op_ctx *c, int i, const char *what, int want, double *v) {
    const pl_tensor *t = c->in[i];
    if (!pl_dtype_is_float(t->dtype))
        return pl_op_error(c, PL_ERR_MODEL, "%s must be a float tensor, not %s", what,
                           pl_dtype_name(t->dtype));
    if (pl_numel(t) != want)
        return pl_op_error(c, PL_ERR_MODEL, "%s has %lld values, expected %d", what,
                           (long long)pl_numel(t), want);
    if (!t->data) return PL_NEED_VALUE;
    for (int k = 0; k < want; k++) v[k] = pl_get_f64(t, k);
    return PL_OK;
}

static pl_status rs_parse(pl_op_ctx *c, rs_params *p) {
    memset(p, 0, sizeof *p);
    bool up = strcmp(c->node->op_type, "Upsample") == 0;
    bool legacy = up || c->opset < 11;
    int iscales = -1, isizes = -1, iroi = -1;
    if (up && c->opset < 9) {
        PL_TRY(tm_begin(c, 1, 1));
    } else if (legacy) {
        PL_TRY(tm_begin(c, 2, 2));
        iscales = 1;
    } else {
        PL_TRY(tm_begin(c, 1, 4));
        iroi = 1, iscales = 2, isizes = 3;
    }
    PL_TRY(rs_attrs(c, p, legacy));
    const pl_tensor *x = c->in[0];
    int r = x->ndim;
    p->r = r;
    /* the axes that scales/sizes/roi describe (opset 18) */
    int ax[PL_MAX_DIMS], na = r;
    for (int d = 0; d < r; d++) ax[d] = d;
    size_t naxes = 0;
    const int64_t *axes = c->opset >= 18 ? pl_attr_ints(c->node, "axes", &naxes) : NULL;
    if (axes) {
        if (naxes > (size_t)r) return pl_op_error(c, PL_ERR_MODEL, "too many axes");
        bool seen[PL_MAX_DIMS] = {false};
        na = (int)naxes;
        for (int i = 0; i < na; i++) {
            PL_TRY(pl_op_axis(c, axes[i], r, &ax[i]));
            if (seen[ax[i]]) return pl_op_error(c, PL_ERR_MODEL, "axis %d is repeated", ax[i]);
            seen[ax[i]] = true;
        }
    }
    double sc[PL_MAX_DIMS], roi[2 * PL_MAX_DIMS];
    int64_t sz[PL_MAX_DIMS];
    bool have_scales = false, have_sizes = false;
    for (int d = 0; d < r; d++) {
        p->scale[d] = 1;
        p->roi_start[d] = 0;
        p->roi_end[d] = 1;
    }
    if (up && c->opset < 9) {
        size_t n = 0;
        const float *f = pl_attr_floats(c->node, "scales", &n);
        if (!f) return pl_op_error(c, PL_ERR_MODEL, "attribute 'scales' is missing");
        if (n != (size_t)r)
            return pl_op_error(c, PL_ERR_MODEL, "scales has %zu values for rank %d", n, r);
        for (int d = 0; d < r; d++) sc[d] = f[d];
        have_scales = true;
    } else if (pl_has_in(c, iscales) && pl_numel(c->in[iscales]) > 0) {
        PL_TRY(read_floats(c, iscales, "scales", na, sc));
        have_scales = true;
    }
    if (isizes >= 0 && pl_has_in(c, isizes) && pl_numel(c->in[isizes]) > 0) {
        if (have_scales) return pl_op_error(c, PL_ERR_MODEL, "both scales and sizes are given");
        PL_TRY(tm_check_index(c, isizes));
        int n;
        PL_TRY(pl_op_input_ints(c, isizes, sz, PL_MAX_DIMS, &n));
        if (n != na) return pl_op_error(c, PL_ERR_MODEL, "sizes has %d values for %d axes", n, na);
        have_sizes = true;
    }
    if (!have_scales && !have_sizes) return pl_op_error(c, PL_ERR_MODEL, "needs scales or sizes");
    if (p->ctm == CT_TF_CROP_AND_RESIZE && pl_has_in(c, iroi) && pl_numel(c->in[iroi]) > 0) {
        PL_TRY(read_floats(c, iroi, "roi", 2 * na, roi));
        for (int i = 0; i < na; i++) {
            p->roi_start[ax[i]] = roi[i];
            p->roi_end[ax[i]] = roi[na + i];
        }
    }
    for (int d = 0; d < r; d++) p->odims[d] = x->dims[d];
    if (have_scales) {
        for (int i = 0; i < na; i++) {
            int d = ax[i];
            if (!(sc[i] > 0) || sc[i] > 1e9)
                return pl_op_error(c, PL_ERR_INPUT, "scale %g for axis %d is invalid", sc[i], d);
            /* The spec text multiplies by (roi_end - roi_start) for tf_crop_and_resize;
             * the ONNX reference and ONNX Runtime do not, and we follow them. */
            double o = floor((double)x->dims[d] * sc[i]);
            if (!(o >= 0) || o > 4e18)
                return pl_op_error(c, PL_ERR_INPUT, "output size for axis %d is invalid", d);
            p->odims[d] = (int64_t)o;
            p->scale[d] = sc[i];
        }
    } else {
        const char *pol = c->opset >= 18
                              ? pl_attr_str(c->node, "keep_aspect_ratio_policy", "stretch")
                              : "stretch";
        int policy = strcmp(pol, "stretch") == 0       ? 0
                     : strcmp(pol, "not_larger") == 0  ? 1
                     : strcmp(pol, "not_smaller") == 0 ? 2
                                                       : -1;
        if (policy < 0)
            return pl_op_error(c, PL_ERR_UNSUPPORTED,
                               "attribute 'keep_aspect_ratio_policy' = '%s' is not supported", pol);
        double common = policy == 1 ? INFINITY : 0;
        for (int i = 0; i < na; i++) {
            int d = ax[i];
            if (sz[i] < 0)
                return pl_op_error(c, PL_ERR_INPUT, "sizes[%d] = %lld is negative", i,
                                   (long long)sz[i]);
            if (x->dims[d] == 0) {
                if (sz[i] != 0)
                    return pl_op_error(c, PL_ERR_INPUT, "cannot resize empty axis %d to %lld", d,
                                       (long long)sz[i]);
                continue;
            }
            double s = (double)sz[i] / (double)x->dims[d];
            p->odims[d] = sz[i];
            p->scale[d] = s;
            if (policy == 1 && s < common) common = s;
            if (policy == 2 && s > common) common = s;
        }
        if (policy != 0)
            for (int i = 0; i < na; i++) {
                int d = ax[i];
                if (x->dims[d] == 0) continue;
                double o = round(common * (double)x->dims[d]);
                if (!(o >= 0 && o < 4e18))
                    return pl_op_error(c, PL_ERR_INPUT, "output size for axis %d is invalid", d);
                p->scale[d] = common;
                p->odims[d] = (int64_t)o;
            }
    }
    for (int d = 0; d < r; d++)
        if (x->dims[d] == 0 && p->odims[d] > 0)
            return pl_op_error(c, PL_ERR_INPUT, "cannot resize empty axis %d", d);
    return tm_check_shape(c, r, p->odims);
}

pl_status resize_infer(pl_op_ctx *c) {
    rs_params p;
    PL_TRY(rs_parse(c, &p));
    pl_op_set_out(c, 0, c->in[0]->dtype, p.r, p.odims);
    return PL_OK;
}

/* The source coordinate of output coordinate x along one axis. */
static double rs_coord(const rs_params *p, int d, int64_t x, int64_t in_len) {
    double s = p->scale[d], len_out = s * (double)in_len, xf = (double)x;
    switch (p->ctm) {
    case CT_HALF_PIXEL:
        return (xf + 0.5) / s - 0.5;
    case CT_HALF_PIXEL_SYMMETRIC: {
        double adj = (double)p->odims[d] / len_out, center = (double)in_len / 2;
        return center * (1 - adj) + (xf + 0.5) / s - 0.5;
    }
    case CT_PYTORCH_HALF_PIXEL:
        return len_out > 1 ? (xf + 0.5) / s - 0.5 : 0;
    case CT_ALIGN_CORNERS:
        return len_out == 1 ? 0 : xf * (double)(in_len - 1) / (len_out - 1);
    case CT_ASYMMETRIC:
        return xf / s;
    case CT_TF_HALF_PIXEL_FOR_NN:
        return (xf + 0.5) / s;
    default: {
        double a = p->roi_start[d], b = p->roi_end[d], n1 = (double)(in_len - 1);
        if (len_out > 1) return a * n1 + xf * (b - a) * n1 / (len_out - 1);
        return 0.5 * (a + b) * n1;
    }
    }
}

static int64_t rs_nearest(const rs_params *p, int d, double xo) {
    double fl = floor(xo), fr = xo - fl;
    switch (p->nearest) {
    case NR_ROUND_PREFER_FLOOR:
        return (int64_t)(fr <= 0.5 ? fl : fl + 1);
    case NR_ROUND_PREFER_CEIL:
        return (int64_t)(fr < 0.5 ? fl : fl + 1);
    case NR_FLOOR:
        return (int64_t)fl;
    case NR_CEIL:
        return (int64_t)ceil(xo);
    default:
        return p->scale[d] < 1 ? (int64_t)ceil(xo) : (int64_t)xo;
    }
}

/* Keys cubic kernel with parameter a, at distance t >= 0. */
static double cubic_w(double t, double a) {
    t = fabs(t);
    if (t <= 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
    if (t < 2) return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a;
    return 0;
}

typedef struct rs_axis {
    int T;        /* taps per output coordinate */
    int64_t *idx; /* [out][T], source index */
    double *w;    /* [out][T] */
    bool *ext;    /* [out]: outside the crop (tf_crop_and_resize) */
} rs_axis;

static void rs_axis_free(rs_axis *a) {
    free(a->idx);
    free(a->w);
    free(a->ext);
}

static int64_t clampi(int64_t v, int64_t n) {
    return v < 0 ? 0 : v >= n ? n - 1 : v;
}

/* Computes the taps of one axis. */
static pl_status rs_axis_build(pl_op_ctx *c, const rs_params *p, int d, int64_t in_len,
                               rs_axis *a) {
    int64_t out = p->odims[d];
    double s = p->scale[d];
    double support = p->mode == RS_CUBIC ? 2 : 1;
    bool aa = p->antialias && s < 1;
    if (aa) {
        if (!(s > 1e-3))
            return pl_op_error(c, PL_ERR_UNSUPPORTED, "antialias downscale %g is too strong", s);
        support /= s;
    }
    int T = p->mode == RS_NEAREST ? 1 : aa ? (int)ceil(2 * support) + 1 : (int)(2 * support);
    if (T > 4096) return pl_op_error(c, PL_ERR_UNSUPPORTED, "downscale factor %g is too large", s);
    size_t n = (size_t)(out > 0 ? out : 1) * (size_t)T;
    a->T = T;
    a->idx = (int64_t *)calloc(n, sizeof(int64_t));
    a->w = (double *)calloc(n, sizeof(double));
    a->ext = (bool *)calloc((size_t)(out > 0 ? out : 1), sizeof(bool));
    if (!a->idx || !a->w || !a->ext) return pl_op_error(c, PL_ERR_NOMEM, "out of memory");
    for (int64_t x = 0; x < out; x++) {
        int64_t *ix = a->idx + x * T;
        double *w = a->w + x * T;
        double xo = rs_coord(p, d, x, in_len);
        if (p->ctm == CT_TF_CROP_AND_RESIZE && (xo < 0 || xo > (double)(in_len - 1))) {
            a->ext[x] = true;
            ix[0] = 0;
            continue;
        }
        if (!(xo > -1e15 && xo < 1e15)) xo = 0; /* NaN or absurd: stay in range */
        if (p->mode == RS_NEAREST) {
            ix[0] = clampi(rs_nearest(p, d, xo), in_len);
            w[0] = 1;
            continue;
        }
        if (aa) {
            /* Antialias (as the ONNX reference): the kernel is stretched by 1/scale and
             * its weights renormalised; taps outside the input read the edge (or are
             * dropped with exclude_outside). */
            int64_t lo = (int64_t)ceil(xo - support);
            double sum = 0;
            for (int t = 0; t < T; t++) {
                int64_t i = lo + t;
                double u = ((double)i - xo) * s;
                double wt = p->mode == RS_CUBIC ? cubic_w(u, p->cubic_a) : fmax(0, 1 - fabs(u));
                if (p->exclude_outside && (i < 0 || i >= in_len)) wt = 0;
                ix[t] = clampi(i, in_len);
                w[t] = wt;
                sum += wt;
            }
            for (int t = 0; t < T && sum != 0; t++) w[t] /= sum;
            continue;
        }
        double fl = floor(xo), fr = xo - fl;
        int64_t x0 = (int64_t)fl;
        if (p->mode == RS_LINEAR) {
            ix[0] = clampi(x0, in_len);
            ix[1] = clampi(x0 + 1, in_len);
            w[0] = 1 - fr;
            w[1] = fr;
        } else {
            double sum = 0;
            for (int t = 0; t < 4; t++) {
                int64_t i = x0 - 1 + t;
                w[t] = cubic_w((double)(t - 1) - fr, p->cubic_a);
                if (p->exclude_outside && (i < 0 || i >= in_len)) w[t] = 0;
                sum += w[t];
                ix[t] = clampi(i, in_len);
            }
            if (p->exclude_outside && sum != 0)
                for (int t = 0; t < 4; t++) w[t] /= sum;
        }
    }
    /* Collapse to one tap when every coordinate uses a single one (unscaled axes). */
    if (T > 1) {
        bool single = true;
        for (int64_t x = 0; x < out && single; x++) {
            int nz = 0;
            for (int t = 0; t < T; t++) nz += a->w[x * T + t] != 0;
            single = nz <= 1;
        }
        if (single) {
            for (int64_t x = 0; x < out; x++) {
                int64_t i = a->idx[x * T];
                double wt = 0;
                for (int t = 0; t < T; t++)
                    if (a->w[x * T + t] != 0) i = a->idx[x * T + t], wt = a->w[x * T + t];
                a->idx[x] = i;
                a->w[x] = wt;
            }
            a->T = 1;
        }
    }
    return PL_OK;
}

static double rs_round(pl_dtype t, double v) {
    return pl_dtype_is_float(t) ? v : nearbyint(v);
}

/* Interpolates: for every output row (all axes but the last), the outer axes' tap
 * combinations (offset, weight) are listed once; the last axis' taps complete them. */
static pl_status rs_interp(pl_op_ctx *c, const rs_params *p, rs_axis *ax, pl_tensor *o) {
    const pl_tensor *x = c->in[0];
    int r = p->r;
    int64_t st[PL_MAX_DIMS];
    pl_strides(r, x->dims, st);
    size_t es = pl_dtype_size(x->dtype);
    bool bytes = p->mode == RS_NEAREST;
    unsigned char ev[16] = {0};
    pl_tensor evt = {.dtype = x->dtype, .ndim = 0, .data = ev};
    pl_set_f64(&evt, 0, p->extrapolation);
    if (x->dtype == PL_STRING) {
        static const char empty[] = "";
        const char *e = empty;
        memcpy(ev, &e, sizeof e);
        if (!bytes)
            return pl_op_error(c, PL_ERR_UNSUPPORTED,
                               "linear/cubic resize of strings is not supported");
    }
    int64_t K = 1;
    for (int d = 0; d < r - 1; d++) {
        K *= ax[d].T;
        if (K > (1 << 20)) return pl_op_error(c, PL_ERR_UNSUPPORTED, "too many interpolation taps");
    }
    int64_t *koff = (int64_t *)malloc(sizeof(int64_t) * (size_t)K);
    double *kw = (double *)malloc(sizeof(double) * (size_t)K);
    if (!koff || !kw) {
        free(koff);
        free(kw);
        return pl_op_error(c, PL_ERR_NOMEM, "out of memory");
    }
    const rs_axis *la = &ax[r - 1];
    int64_t inner = p->odims[r - 1], nrows = pl_numel(o) / inner, pos[PL_MAX_DIMS] = {0};
    int LT = la->T;
    const char *src = (const char *)x->data;
    char *dst = (char *)o->data;
    bool f32 = x->dtype == PL_F32;
    const float *sf = (const float *)x->data;
    for (int64_t row = 0; row < nrows; row++) {
        bool ext = false;
        int64_t k = 1;
        koff[0] = 0;
        kw[0] = 1;
        for (int d = 0; d < r - 1; d++) {
            const rs_axis *a = &ax[d];
            if (a->ext[pos[d]]) ext = true;
            const int64_t *ix = a->idx + pos[d] * a->T;
            const double *w = a->w + pos[d] * a->T;
            for (int64_t q = k - 1; q >= 0; q--) /* expand in place, last first */
                for (int t = a->T - 1; t >= 0; t--) {
                    koff[q * a->T + t] = koff[q] + ix[t] * st[d];
                    kw[q * a->T + t] = kw[q] * w[t];
                }
            k *= a->T;
        }
        for (int64_t j = 0; j < inner; j++, dst += es) {
            if (ext || la->ext[j]) {
                tm_copy1(dst, ev, es);
                continue;
            }
            const int64_t *ix = la->idx + j * LT;
            const double *w = la->w + j * LT;
            if (bytes) {
                tm_copy1(dst, src + (size_t)(koff[0] + ix[0]) * es, es);
                continue;
            }
            double acc = 0;
            for (int64_t q = 0; q < k; q++) {
                double part = 0;
                if (f32)
                    for (int t = 0; t < LT; t++) part += w[t] * sf[koff[q] + ix[t]];
                else
                    for (int t = 0; t < LT; t++) part += w[t] * pl_get_f64(x, koff[q] + ix[t]);
                acc += kw[q] * part;
            }
            if (f32)
                memcpy(dst, &(float){(float)acc}, 4);
            else
                pl_set_f64(o, (int64_t)((dst - (char *)o->data) / (ptrdiff_t)es),
                           rs_round(o->dtype, acc));
        }
        for (int d = r - 2; d >= 0; d--) {
            if (++pos[d] < p->odims[d]) break;
            pos[d] = 0;
        }
    }
    free(koff);
    free(kw);
    return tm_own_strings(c, o);
}

pl_status resize_run(pl_op_ctx *c) {
    rs_params p;
    PL_TRY(rs_parse(c, &p));
    pl_tensor *o = c->out[0];
    if (!o) return PL_OK;
    const pl_tensor *x = c->in[0];
    if (p.mode != RS_NEAREST && !pl_dtype_is_float(x->dtype) && !pl_dtype_is_int(x->dtype))
        return pl_op_error(c, PL_ERR_UNSUPPORTED, "interpolation of %s is not supported",
                           pl_dtype_name(x->dtype));
    if (pl_numel(o) == 0) return PL_OK;
    if (p.r == 0) return tm_copy_all(c, o, x);
    rs_axis ax[PL_MAX_DIMS];
    memset(ax, 0, sizeof ax);
    pl_status s = PL_OK;
    for (int d = 0; d < p.r && s == PL_OK; d++) s = rs_axis_build(c, &p, d, x->dims[d], &ax[d]);
    if (s == PL_OK) s = rs_interp(c, &p, ax, o);
    for (int d = 0; d < p.r; d++) rs_axis_free(&ax[d]);
    return s;
}
