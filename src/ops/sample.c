/* sample.c -- ops that sample an image at fractional positions: GridSample (opset 16,
 * and the N-d form of opset 20 for 2-d and 3-d spatial inputs) and RoiAlign (opsets 10
 * and 16).
 *
 * Arithmetic is done in float32; other float types are converted on the way in and
 * out. GridSample follows the conventions of torch.nn.functional.grid_sample, which
 * the ONNX operator is defined against. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/op.h"

/* A float32 view of a tensor: the data itself for float32, else a converted copy. */
static pl_status view_f32(const pl_op_ctx *c, const pl_tensor *t, float **out, bool *owned) {
    *owned = false;
    if (t->dtype == PL_F32) {
        *out = (float *)t->data;
        return PL_OK;
    }
    int64_t n = pl_numel(t);
    float *b = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (!b) return pl_op_error(c, PL_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < n; i++) b[i] = (float)pl_get_f64(t, i);
    *out = b;
    *owned = true;
    return PL_OK;
}

/* Output buffer: the output's data for float32, else a scratch array. */
static pl_status out_f32(const pl_op_ctx *c, pl_tensor *t, float **out) {
    if (t->dtype == PL_F32) {
        *out = (float *)t->data;
        return PL_OK;
    }
    int64_t n = pl_numel(t);
    *out = calloc((size_t)(n > 0 ? n : 1), sizeof(float));
    if (!*out) return pl_op_error(c, PL_ERR_NOMEM, "out of memory");
    return PL_OK;
}

static void out_f32_finish(pl_tensor *t, float *buf) {
    if (t->dtype == PL_F32) return;
    int64_t n = pl_numel(t);
    bool integer = pl_dtype_is_int(t->dtype);
    for (int64_t i = 0; i < n; i++) pl_set_f64(t, i, integer ? nearbyint(buf[i]) : buf[i]);
    free(buf);
}

/* ---- GridSample ------------------------------------------------------------------ */

enum { GS_LINEAR, GS_NEAREST, GS_CUBIC };
enum { GS_ZEROS, GS_BORDER, GS_REFLECTION };

typedef struct gs_cfg {
    int mode, pad, align;
    int nsp; /* spatial dims: 2 or 3 */
} gs_cfg;

static pl_status gs_parse(pl_op_ctx *c, gs_cfg *g) {
    PL_TRY(pl_op_check_arity(c, 2, 2));
    PL_TRY(pl_op_check_float(c, 1));
    const pl_tensor *x = c->in[0], *grid = c->in[1];
    if (!pl_dtype_is_float(x->dtype) && !pl_dtype_is_int(x->dtype))
        return pl_op_error(c, PL_ERR_UNSUPPORTED, "input 0 has type %s", pl_dtype_name(x->dtype));
    const char *mode = pl_attr_str(c->node, "mode", c->opset >= 20 ? "linear" : "bilinear");
    if (strcmp(mode, "bilinear") == 0 || strcmp(mode, "linear") == 0) g->mode = GS_LINEAR;
    else if (strcmp(mode, "nearest") == 0) g->mode = GS_NEAREST;
    else if (strcmp(mode, "bicubic") == 0 || strcmp(mode, "cubic") == 0) g->mode = GS_CUBIC;
    else return pl_op_error(c, PL_ERR_MODEL, "attribute 'mode' = '%s' is not valid", mode);
    const char *pad = pl_attr_str(c->node, "padding_mode", "zeros");
    if (strcmp(pad, "zeros") == 0) g->pad = GS_ZEROS;
    else if (strcmp(pad, "border") == 0) g->pad = GS_BORDER;
    else if (strcmp(pad, "reflection") == 0) g->pad = GS_REFLECTION;
    else return pl_op_error(c, PL_ERR_MODEL, "attribute 'padding_mode' = '%s' is not valid", pad);
    g->align = pl_attr_int(c->node, "align_corners", 0) != 0;
    if (x->ndim != 4 && x->ndim != 5)
        return pl_op_error(c, PL_ERR_UNSUPPORTED, "input 0 has %d dims; 4 or 5 are supported", x->ndim);
    g->nsp = x->ndim - 2;
    if (g->nsp == 3 && g->mode == GS_CUBIC)
        return pl_op_error(c, PL_ERR_UNSUPPORTED, "cubic mode on 3-d inputs is not supported");
    if (grid->ndim != x->ndim)
        return pl_op_error(c, PL_ERR_MODEL, "grid has %d dims, expected %d", grid->ndim, x->ndim);
    if (grid->dims[0] != x->dims[0])
        return pl_op_error(c, PL_ERR_MODEL, "grid batch %lld differs from input batch %lld",
                           (long long)grid->dims[0], (long long)x->dims[0]);
    if (grid->dims[grid->ndim - 1] != g->nsp)
        return pl_op_error(c, PL_ERR_MODEL, "last grid dim is %lld, expected %d",
                           (long long)grid->dims[grid->ndim - 1], g->nsp);
    return PL_OK;
}

pl_status gridsample_infer(pl_op_ctx *c) {
    gs_cfg g;
    PL_TRY(gs_parse(c, &g));
    const pl_tensor *x = c->in[0], *grid = c->in[1];
    int64_t dims[5] = {x->dims[0], x->dims[1], grid->dims[1], grid->dims[2], 0};
    if (g.nsp == 3) dims[4] = grid->dims[3];
    if (pl_dims_numel(x->ndim, dims) < 0) return pl_op_error(c, PL_ERR_MODEL, "output size overflows");
    pl_op_set_out(c, 0, x->dtype, x->ndim, dims);
    return PL_OK;
}

/* Grid value in [-1, 1] to a pixel coordinate. */
static inline float gs_unnormalize(float v, int64_t size, int align) {
    return align ? (v + 1.0f) * 0.5f * (float)(size - 1) : ((v + 1.0f) * (float)size - 1.0f) * 0.5f;
}

/* Reflects v into [lo2/2, hi2/2] (bounds given doubled so they stay integers). */
static float gs_reflect(float v, int64_t lo2, int64_t hi2) {
    if (lo2 == hi2) return 0.0f;
    float mn = (float)lo2 * 0.5f, span = (float)(hi2 - lo2) * 0.5f;
    v = fabsf(v - mn);
    float extra = fmodf(v, span);
    float flips = floorf(v / span);
    return fmodf(flips, 2.0f) == 0.0f ? extra + mn : span - extra + mn;
}

static inline float gs_clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

/* Applies border/reflection padding to a coordinate. */
static float gs_pad(float v, int64_t size, const gs_cfg *g) {
    if (g->pad == GS_BORDER) {
        v = gs_clampf(v, 0.0f, (float)(size - 1));
    } else if (g->pad == GS_REFLECTION) {
        v = g->align ? gs_reflect(v, 0, 2 * (size - 1)) : gs_reflect(v, -1, 2 * size - 1);
        v = gs_clampf(v, 0.0f, (float)(size - 1));
    }
    if (!isfinite(v)) v = -10.0f; /* NaN/inf grids read as out of bounds */
    return v;
}

/* One plane value, zero outside. */
static inline float gs_at2(const float *p, int64_t H, int64_t W, int64_t y, int64_t x) {
    return (y >= 0 && y < H && x >= 0 && x < W) ? p[y * W + x] : 0.0f;
}

static void cubic_coeffs(float t, float w[4]) {
    const float A = -0.75f;
    float x1 = t + 1.0f, x2 = t, x3 = 1.0f - t, x4 = 2.0f - t;
    w[0] = ((A * x1 - 5.0f * A) * x1 + 8.0f * A) * x1 - 4.0f * A;
    w[1] = ((A + 2.0f) * x2 - (A + 3.0f)) * x2 * x2 + 1.0f;
    w[2] = ((A + 2.0f) * x3 - (A + 3.0f)) * x3 * x3 + 1.0f;
    w[3] = ((A * x4 - 5.0f * A) * x4 + 8.0f * A) * x4 - 4.0f * A;
}

/* Integer tap of the cubic kernel, with padding applied to it. */
static inline float gs_tap(const float *p, int64_t H, int64_t W, int64_t y, int64_t x, const gs_cfg *g) {
    if (g->pad != GS_ZEROS) {
        y = (int64_t)gs_pad((float)y, H, g);
        x = (int64_t)gs_pad((float)x, W, g);
    }
    return gs_at2(p, H, W, y, x);
}

static float gs_sample2(const float *p, int64_t H, int64_t W, float gx, float gy, const gs_cfg *g) {
    float x = gs_unnormalize(gx, W, g->align), y = gs_unnormalize(gy, H, g->align);
    if (g->mode == GS_CUBIC) {
        if (!isfinite(x) || !isfinite(y)) return 0.0f;
        float fx = floorf(x), fy = floorf(y);
        if (fabsf(fx) > 1e9f || fabsf(fy) > 1e9f) {
            if (g->pad == GS_ZEROS) return 0.0f;
            fx = gs_clampf(fx, -1e9f, 1e9f);
            fy = gs_clampf(fy, -1e9f, 1e9f);
        }
        float wx[4], wy[4];
        cubic_coeffs(x - fx, wx);
        cubic_coeffs(y - fy, wy);
        int64_t x0 = (int64_t)fx - 1, y0 = (int64_t)fy - 1;
        float acc = 0.0f;
        for (int i = 0; i < 4; i++) {
            float row = 0.0f;
            for (int j = 0; j < 4; j++) row += wx[j] * gs_tap(p, H, W, y0 + i, x0 + j, g);
            acc += wy[i] * row;
        }
        return acc;
    }
    x = gs_pad(x, W, g);
    y = gs_pad(y, H, g);
    if (!(x > -2.0f && x < (float)W + 1.0f && y > -2.0f && y < (float)H + 1.0f)) return 0.0f;
    if (g->mode == GS_NEAREST) {
        int64_t xi = (int64_t)nearbyintf(x), yi = (int64_t)nearbyintf(y);
        return gs_at2(p, H, W, yi, xi);
    }
    float fx = floorf(x), fy = floorf(y);
    int64_t x0 = (int64_t)fx, y0 = (int64_t)fy;
    float tx = x - fx, ty = y - fy;
    return (1 - ty) * ((1 - tx) * gs_at2(p, H, W, y0, x0) + tx * gs_at2(p, H, W, y0, x0 + 1)) +
           ty * ((1 - tx) * gs_at2(p, H, W, y0 + 1, x0) + tx * gs_at2(p, H, W, y0 + 1, x0 + 1));
}

static inline float gs_at3(const float *p, int64_t D, int64_t H, int64_t W, int64_t z, int64_t y,
                           int64_t x) {
    return (z >= 0 && z < D && y >= 0 && y < H && x >= 0 && x < W) ? p[(z * H + y) * W + x] : 0.0f;
}

static float gs_sample3(const float *p, int64_t D, int64_t H, int64_t W, const float *gc,
                        const gs_cfg *g) {
    float x = gs_pad(gs_unnormalize(gc[0], W, g->align), W, g);
    float y = gs_pad(gs_unnormalize(gc[1], H, g->align), H, g);
    float z = gs_pad(gs_unnormalize(gc[2], D, g->align), D, g);
    if (!(x > -2.0f && x < (float)W + 1.0f && y > -2.0f && y < (float)H + 1.0f && z > -2.0f &&
          z < (float)D + 1.0f))
        return 0.0f;
    if (g->mode == GS_NEAREST)
        return gs_at3(p, D, H, W, (int64_t)nearbyintf(z), (int64_t)nearbyintf(y),
                      (int64_t)nearbyintf(x));
    float fx = floorf(x), fy = floorf(y), fz = floorf(z);
    int64_t x0 = (int64_t)fx, y0 = (int64_t)fy, z0 = (int64_t)fz;
    float t[3] = {x - fx, y - fy, z - fz}, acc = 0.0f;
    for (int k = 0; k < 8; k++) {
        int dx = k & 1, dy = (k >> 1) & 1, dz = (k >> 2) & 1;
        float w = (dx ? t[0] : 1 - t[0]) * (dy ? t[1] : 1 - t[1]) * (dz ? t[2] : 1 - t[2]);
        acc += w * gs_at3(p, D, H, W, z0 + dz, y0 + dy, x0 + dx);
    }
    return acc;
}

pl_status gridsample_run(pl_op_ctx *c) {
    gs_cfg g;
    PL_TRY(gs_parse(c, &g));
    pl_tensor *yt = c->out[0];
    if (!yt) return PL_OK;
    const pl_tensor *xt = c->in[0], *gt = c->in[1];
    float *x, *grid, *y;
    bool ox, og;
    PL_TRY(view_f32(c, xt, &x, &ox));
    pl_status st = view_f32(c, gt, &grid, &og);
    if (st) {
        if (ox) free(x);
        return st;
    }
    st = out_f32(c, yt, &y);
    if (st == PL_OK) {
        int64_t N = xt->dims[0], C = xt->dims[1];
        if (g.nsp == 2) {
            int64_t H = xt->dims[2], W = xt->dims[3], Ho = gt->dims[1], Wo = gt->dims[2];
            for (int64_t n = 0; n < N; n++)
                for (int64_t ch = 0; ch < C; ch++) {
                    const float *p = x + (n * C + ch) * H * W;
                    float *o = y + (n * C + ch) * Ho * Wo;
                    const float *gp = grid + n * Ho * Wo * 2;
                    for (int64_t i = 0; i < Ho * Wo; i++)
                        o[i] = gs_sample2(p, H, W, gp[2 * i], gp[2 * i + 1], &g);
                }
        } else {
            int64_t D = xt->dims[2], H = xt->dims[3], W = xt->dims[4];
            int64_t No = gt->dims[1] * gt->dims[2] * gt->dims[3];
            for (int64_t n = 0; n < N; n++)
                for (int64_t ch = 0; ch < C; ch++) {
                    const float *p = x + (n * C + ch) * D * H * W;
                    float *o = y + (n * C + ch) * No;
                    const float *gp = grid + n * No * 3;
                    for (int64_t i = 0; i < No; i++) o[i] = gs_sample3(p, D, H, W, gp + 3 * i, &g);
                }
        }
        out_f32_finish(yt, y);
    }
    if (ox) free(x);
    if (og) free(grid);
    return st;
}

/* ---- RoiAlign -------------------------------------------------------------------- */

typedef struct roi_cfg {
    int max_mode;
    int half_pixel;
    int64_t oh, ow, sampling;
    float scale;
} roi_cfg;

static pl_status roi_parse(pl_op_ctx *c, roi_cfg *r) {
    PL_TRY(pl_op_check_arity(c, 3, 3));
    PL_TRY(pl_op_check_float(c, 0));
    PL_TRY(pl_op_check_float(c, 1));
    PL_TRY(pl_op_check_same_dtype(c, 0, 1));
    static const pl_dtype ints[] = {PL_I64, PL_I32, PL_UNDEF};
    PL_TRY(pl_op_check_dtype(c, 2, ints));
    const pl_tensor *x = c->in[0], *rois = c->in[1], *bi = c->in[2];
    if (x->ndim != 4) return pl_op_error(c, PL_ERR_MODEL, "input 0 has %d dims, expected 4", x->ndim);
    if (rois->ndim != 2 || rois->dims[1] != 4)
        return pl_op_error(c, PL_ERR_MODEL, "rois must have shape [num_rois, 4]");
    if (bi->ndim != 1 || bi->dims[0] != rois->dims[0])
        return pl_op_error(c, PL_ERR_MODEL, "batch_indices must have shape [%lld]", (long long)rois->dims[0]);
    const char *mode = pl_attr_str(c->node, "mode", "avg");
    if (strcmp(mode, "avg") == 0) r->max_mode = 0;
    else if (strcmp(mode, "max") == 0) r->max_mode = 1;
    else return pl_op_error(c, PL_ERR_MODEL, "attribute 'mode' = '%s' is not valid", mode);
    const char *ctm = pl_attr_str(c->node, "coordinate_transformation_mode",
                                  c->opset >= 16 ? "half_pixel" : "output_half_pixel");
    if (strcmp(ctm, "half_pixel") == 0) r->half_pixel = 1;
    else if (strcmp(ctm, "output_half_pixel") == 0) r->half_pixel = 0;
    else
        return pl_op_error(c, PL_ERR_MODEL, "attribute 'coordinate_transformation_mode' = '%s' is not valid",
                           ctm);
    r->oh = pl_attr_int(c->node, "output_height", 1);
    r->ow = pl_attr_int(c->node, "output_width", 1);
    r->sampling = pl_attr_int(c->node, "sampling_ratio", 0);
    r->scale = pl_attr_float(c->node, "spatial_scale", 1.0f);
    if (r->oh <= 0 || r->ow <= 0 || r->oh > (1 << 20) || r->ow > (1 << 20))
        return pl_op_error(c, PL_ERR_MODEL, "output size %lldx%lld is not valid", (long long)r->oh,
                           (long long)r->ow);
    if (r->sampling < 0 || r->sampling > 1024)
        return pl_op_error(c, PL_ERR_MODEL, "attribute 'sampling_ratio' = %lld is not valid",
                           (long long)r->sampling);
    return PL_OK;
}

pl_status roialign_infer(pl_op_ctx *c) {
    roi_cfg r;
    PL_TRY(roi_parse(c, &r));
    int64_t dims[4] = {c->in[1]->dims[0], c->in[0]->dims[1], r.oh, r.ow};
    if (pl_dims_numel(4, dims) < 0) return pl_op_error(c, PL_ERR_MODEL, "output size overflows");
    pl_op_set_out(c, 0, c->in[0]->dtype, 4, dims);
    return PL_OK;
}

/* Bilinear weights of one sample point with RoiAlign's edge rules: points more than one
 * pixel outside contribute nothing, points just outside are clamped to the edge. */
static bool roi_weights(float y, float x, int64_t H, int64_t W, int64_t idx[4], float w[4]) {
    if (!(y >= -1.0f && y <= (float)H && x >= -1.0f && x <= (float)W) || H == 0 || W == 0)
        return false; /* also rejects NaN */
    if (y <= 0) y = 0;
    if (x <= 0) x = 0;
    int64_t y0 = (int64_t)y, x0 = (int64_t)x, y1, x1;
    if (y0 >= H - 1) {
        y0 = y1 = H - 1;
        y = (float)y0;
    } else {
        y1 = y0 + 1;
    }
    if (x0 >= W - 1) {
        x0 = x1 = W - 1;
        x = (float)x0;
    } else {
        x1 = x0 + 1;
    }
    float ly = y - (float)y0, lx = x - (float)x0, hy = 1.0f - ly, hx = 1.0f - lx;
    idx[0] = y0 * W + x0;
    idx[1] = y0 * W + x1;
    idx[2] = y1 * W + x0;
    idx[3] = y1 * W + x1;
    w[0] = hy * hx;
    w[1] = hy * lx;
    w[2] = ly * hx;
    w[3] = ly * lx;
    return true;
}

/* Adaptive sampling grid size ceil(v), kept finite and small: hostile ROIs must not
 * make us loop for ever. */
static int64_t grid_count(float v) {
    float f = ceilf(v);
    if (!(f >= 0.0f)) return 0;
    return f > 1024.0f ? 1024 : (int64_t)f;
}

pl_status roialign_run(pl_op_ctx *c) {
    roi_cfg r;
    PL_TRY(roi_parse(c, &r));
    pl_tensor *yt = c->out[0];
    if (!yt) return PL_OK;
    const pl_tensor *xt = c->in[0], *rt = c->in[1], *bt = c->in[2];
    int64_t N = xt->dims[0], C = xt->dims[1], H = xt->dims[2], W = xt->dims[3], R = rt->dims[0];
    for (int64_t k = 0; k < R; k++) {
        int64_t b = pl_get_i64(bt, k);
        if (b < 0 || b >= N)
            return pl_op_error(c, PL_ERR_INPUT, "batch_indices[%lld] = %lld is outside [0, %lld)",
                               (long long)k, (long long)b, (long long)N);
    }
    float *x, *rois, *y;
    bool ox, orr;
    PL_TRY(view_f32(c, xt, &x, &ox));
    pl_status st = view_f32(c, rt, &rois, &orr);
    if (st) {
        if (ox) free(x);
        return st;
    }
    st = out_f32(c, yt, &y);
    if (st == PL_OK) {
        float off = r.half_pixel ? 0.5f : 0.0f;
        for (int64_t k = 0; k < R; k++) {
            int64_t b = pl_get_i64(bt, k);
            const float *ro = rois + 4 * k;
            float sw = ro[0] * r.scale - off, sh = ro[1] * r.scale - off;
            float rw = ro[2] * r.scale - off - sw, rh = ro[3] * r.scale - off - sh;
            if (!r.half_pixel) { /* the old behaviour forces ROIs to be at least 1x1 */
                if (rw < 1.0f) rw = 1.0f;
                if (rh < 1.0f) rh = 1.0f;
            }
            float bh = rh / (float)r.oh, bw = rw / (float)r.ow;
            int64_t gh = r.sampling > 0 ? r.sampling : grid_count(rh / (float)r.oh);
            int64_t gw = r.sampling > 0 ? r.sampling : grid_count(rw / (float)r.ow);
            float count = (float)(gh * gw > 1 ? gh * gw : 1);
            for (int64_t ch = 0; ch < C; ch++) {
                const float *p = x + (b * C + ch) * H * W;
                float *o = y + (k * C + ch) * r.oh * r.ow;
                for (int64_t ph = 0; ph < r.oh; ph++)
                    for (int64_t pw = 0; pw < r.ow; pw++) {
                        float acc = 0.0f;
                        bool first = true;
                        for (int64_t iy = 0; iy < gh; iy++) {
                            float yy = sh + (float)ph * bh + ((float)iy + 0.5f) * bh / (float)gh;
                            for (int64_t ix = 0; ix < gw; ix++) {
                                float xx = sw + (float)pw * bw + ((float)ix + 0.5f) * bw / (float)gw;
                                int64_t idx[4];
                                float w[4];
                                bool in = roi_weights(yy, xx, H, W, idx, w);
                                if (!r.max_mode) {
                                    if (in)
                                        acc += w[0] * p[idx[0]] + w[1] * p[idx[1]] + w[2] * p[idx[2]] +
                                               w[3] * p[idx[3]];
                                } else {
                                    /* max mode: the largest weighted corner over all samples
                                     * (the convention of the reference runtimes) */
                                    float v = 0.0f;
                                    if (in) {
                                        v = w[0] * p[idx[0]];
                                        for (int q = 1; q < 4; q++)
                                            if (w[q] * p[idx[q]] > v) v = w[q] * p[idx[q]];
                                    }
                                    if (first || v > acc) acc = v;
                                    first = false;
                                }
                            }
                        }
                        o[ph * r.ow + pw] = r.max_mode ? acc : acc / count;
                    }
            }
        }
        out_f32_finish(yt, y);
    }
    if (ox) free(x);
    if (orr) free(rois);
    return st;
}
