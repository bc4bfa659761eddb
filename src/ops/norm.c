/* norm.c -- BatchNormalization, InstanceNormalization, GroupNormalization,
 * LayerNormalization, LRN, MeanVarianceNormalization and LpNormalization: attribute
 * and shape handling around the kernels of src/kernels/norm. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/threadpool.h"
#include "kernels/norm/norm.h"
#include "ops/conv_common.h"

static const pl_dtype float_types[] = {PL_F32, PL_F64, PL_F16, PL_BF16, PL_UNDEF};

/* The scratch buffers of one run (converted inputs, temporaries), freed together. */
typedef struct norm_bufs {
    void *tmp[16];
    int n;
} norm_bufs;

static pl_status nb_load(const pl_op_ctx *c, norm_bufs *b, const pl_tensor *t, pl_dtype as,
                         const void **out) {
    void *tmp;
    PL_TRY(cvf_load(c, t, as, out, &tmp));
    if (tmp) b->tmp[b->n++] = tmp;
    return PL_OK;
}

static pl_status nb_alloc(const pl_op_ctx *c, norm_bufs *b, int64_t n, pl_dtype as, void **out) {
    PL_TRY(cvf_alloc(c, n, as == PL_F64 ? sizeof(double) : sizeof(float), out));
    b->tmp[b->n++] = *out;
    return PL_OK;
}

static void nb_free(norm_bufs *b) {
    for (int i = 0; i < b->n; i++) free(b->tmp[i]);
    b->n = 0;
}

/* Input i must hold exactly n elements. */
static pl_status check_numel(const pl_op_ctx *c, int i, int64_t n, const char *what) {
    if (pl_numel(c->in[i]) != n) {
        char s[128];
        return pl_op_error(c, PL_ERR_INPUT, "%s (input %d) has shape %s, expected %lld elements", what,
                           i, pl_shape_str(c->in[i], s, sizeof s), (long long)n);
    }
    return PL_OK;
}

/* Product of dims[from..to). */
static int64_t dims_prod(const pl_tensor *t, int from, int to) {
    int64_t r = 1;
    for (int d = from; d < to; d++) r *= t->dims[d];
    return r;
}

/* ------------------------------------------------------------------ BatchNormalization */

/* Training mode computes the batch statistics: opset >= 14 says so with
 * training_mode=1; older opsets with the extra outputs (mean, var, saved_mean,
 * saved_var), unless opset 6's is_test=1 forces inference. */
static bool bn_training(const pl_op_ctx *c) {
    if (c->opset >= 14) return pl_attr_int(c->node, "training_mode", 0) != 0;
    if (pl_attr_int(c->node, "is_test", 0) != 0) return false;
    return c->nout > 1;
}

/* Per-channel view [n, ch, inner] of X; opsets < 9 with spatial=0 have one parameter
 * per element of the C x D1 x ... block. */
static pl_status bn_layout(const pl_op_ctx *c, int64_t *n, int64_t *ch, int64_t *inner) {
    const pl_tensor *x = c->in[0];
    PL_TRY(cvf_check_rank(c, 0, 2, PL_MAX_DIMS));
    *n = x->dims[0];
    *ch = x->dims[1];
    *inner = dims_prod(x, 2, x->ndim);
    if (c->opset < 9 && pl_attr_int(c->node, "spatial", 1) == 0) {
        *ch *= *inner;
        *inner = 1;
    }
    for (int i = 1; i <= 4; i++) {
        static const char *names[] = {"", "scale", "B", "mean", "var"};
        PL_TRY(check_numel(c, i, *ch, names[i]));
    }
    return PL_OK;
}

pl_status batchnorm_infer(pl_op_ctx *c) {
    PL_TRY(pl_op_check_arity(c, 5, 5));
    for (int i = 0; i < 5; i++) PL_TRY(pl_op_check_dtype(c, i, float_types));
    PL_TRY(pl_op_check_same_dtype(c, 1, 2));
    PL_TRY(pl_op_check_same_dtype(c, 3, 4));
    PL_TRY(cvf_shapes_known(c));
    int64_t n, ch, inner;
    PL_TRY(bn_layout(c, &n, &ch, &inner));
    if (c->nout > 5) return pl_op_error(c, PL_ERR_MODEL, "has %d outputs, at most 5", c->nout);
    if (c->opset >= 14 && c->nout > 3)
        return pl_op_error(c, PL_ERR_MODEL, "has %d outputs, at most 3 in opset %d", c->nout, c->opset);
    pl_op_same_as(c, 0, 0);
    /* running mean/var (outputs 1, 2), saved mean/var (3, 4): like input mean/var */
    for (int i = 1; i < c->nout; i++) pl_op_same_as(c, i, i <= 2 ? i + 2 : i);
    return PL_OK;
}

pl_status batchnorm_run(pl_op_ctx *c) {
    int64_t n, ch, inner;
    PL_TRY(bn_layout(c, &n, &ch, &inner));
    const pl_dtype ct = cvf_compute_type(c->in[0]->dtype);
    const bool f64 = ct == PL_F64, training = bn_training(c);
    const double eps = pl_attr_float(c->node, "epsilon", 1e-5f);
    const double momentum = pl_attr_float(c->node, "momentum", 0.9f);
    norm_bufs b = {.n = 0};
    const void *x, *scale, *bias, *mean, *var;
    void *y = NULL, *ty = NULL;
    pl_status st = nb_load(c, &b, c->in[0], ct, &x);
    if (!st) st = nb_load(c, &b, c->in[1], ct, &scale);
    if (!st) st = nb_load(c, &b, c->in[2], ct, &bias);
    if (!st) st = nb_load(c, &b, c->in[3], ct, &mean);
    if (!st) st = nb_load(c, &b, c->in[4], ct, &var);
    double *bmean = NULL, *bvar = NULL;
    if (!st && training) {
        st = cvf_alloc(c, 2 * ch, sizeof(double), (void **)&bmean);
        if (!st) {
            b.tmp[b.n++] = bmean;
            bvar = bmean + ch;
            if (f64) pl_f64_channel_moments_ref(n, ch, inner, x, bmean, bvar);
            else pl_f32_channel_moments_ref(n, ch, inner, x, bmean, bvar);
        }
    }
    /* the statistics used to normalise, as arrays of the compute type */
    const void *umean = mean, *uvar = var;
    if (!st && training) {
        void *m2, *v2;
        st = nb_alloc(c, &b, ch, ct, &m2);
        if (!st) st = nb_alloc(c, &b, ch, ct, &v2);
        for (int64_t k = 0; !st && k < ch; k++) {
            if (f64) {
                ((double *)m2)[k] = bmean[k];
                ((double *)v2)[k] = bvar[k];
            } else {
                ((float *)m2)[k] = (float)bmean[k];
                ((float *)v2)[k] = (float)bvar[k];
            }
        }
        umean = m2;
        uvar = v2;
    }
    if (!st && c->out[0]) st = cvf_out(c, c->out[0], ct, &y, &ty);
    if (!st && y) {
        if (f64) pl_f64_batchnorm_ref(n, ch, inner, x, scale, bias, umean, uvar, eps, y);
        else pl_f32_batchnorm_ref(n, ch, inner, x, scale, bias, umean, uvar, eps, y);
        cvf_out_done(c->out[0], ct, ty);
        ty = NULL;
    }
    /* running statistics (outputs 1, 2) and, before opset 14, the saved batch
     * statistics (outputs 3, 4) */
    for (int o = 1; !st && o < c->nout && o <= 4; o++) {
        pl_tensor *t = c->out[o];
        if (!t) continue;
        const pl_tensor *src = c->in[o <= 2 ? o + 2 : o];
        for (int64_t k = 0; k < ch; k++) {
            double in_v = pl_get_f64(src, k), v = in_v;
            if (training) {
                double batch = (o == 1 || o == 3) ? bmean[k] : bvar[k];
                v = o <= 2 ? in_v * momentum + batch * (1 - momentum) : batch;
            }
            pl_set_f64(t, k, v);
        }
    }
    free(ty);
    nb_free(&b);
    return st;
}

/* ------------------------------------------------------------------ Instance / Group */

/* InstanceNormalization: X [N, C, ...], scale [C], B [C]; statistics per (n, c). */
pl_status instancenorm_infer(pl_op_ctx *c) {
    PL_TRY(pl_op_check_arity(c, 3, 3));
    for (int i = 0; i < 3; i++) PL_TRY(pl_op_check_dtype(c, i, float_types));
    PL_TRY(cvf_shapes_known(c));
    PL_TRY(cvf_check_rank(c, 0, 2, PL_MAX_DIMS));
    PL_TRY(check_numel(c, 1, c->in[0]->dims[1], "scale"));
    PL_TRY(check_numel(c, 2, c->in[0]->dims[1], "B"));
    pl_op_same_as(c, 0, 0);
    return PL_OK;
}

/* GroupNormalization: X [N, C, ...], num_groups dividing C; scale and bias hold one
 * value per channel (opset 21) or per group (opset 18). */
pl_status groupnorm_infer(pl_op_ctx *c) {
    PL_TRY(pl_op_check_arity(c, 3, 3));
    for (int i = 0; i < 3; i++) PL_TRY(pl_op_check_dtype(c, i, float_types));
    PL_TRY(cvf_shapes_known(c));
    PL_TRY(cvf_check_rank(c, 0, 2, PL_MAX_DIMS));
    const int64_t ch = c->in[0]->dims[1];
    const pl_attr *ga = pl_attr_find(c->node, "num_groups");
    if (!ga || ga->type != PL_ATTR_INT)
        return pl_op_error(c, PL_ERR_MODEL, "attribute 'num_groups' (int) is required");
    const int64_t g = ga->i;
    if (g < 1 || ch % g)
        return pl_op_error(c, PL_ERR_INPUT, "num_groups = %lld does not divide the %lld channels",
                           (long long)g, (long long)ch);
    for (int i = 1; i <= 2; i++) {
        int64_t k = pl_numel(c->in[i]);
        if (k != ch && k != g)
            return pl_op_error(c, PL_ERR_INPUT, "%s (input %d) has %lld values, expected %lld (channels) or %lld (groups)",
                               i == 1 ? "scale" : "bias", i, (long long)k, (long long)ch, (long long)g);
    }
    pl_op_same_as(c, 0, 0);
    return PL_OK;
}

/* Shared run of Instance and Group norm: per-group parameters are expanded to one per
 * channel for the kernel. */
static pl_status group_run(pl_op_ctx *c, int64_t groups) {
    const pl_tensor *xt = c->in[0];
    if (!c->out[0]) return PL_OK;
    const int64_t n = xt->dims[0], ch = xt->dims[1], inner = dims_prod(xt, 2, xt->ndim);
    const pl_dtype ct = cvf_compute_type(xt->dtype);
    const bool f64 = ct == PL_F64;
    const double eps = pl_attr_float(c->node, "epsilon", 1e-5f);
    norm_bufs b = {.n = 0};
    const void *x;
    void *scale = NULL, *bias = NULL, *y, *ty = NULL;
    pl_status st = nb_load(c, &b, xt, ct, &x);
    if (!st) st = nb_alloc(c, &b, ch, ct, &scale);
    if (!st) st = nb_alloc(c, &b, ch, ct, &bias);
    if (!st) {
        for (int i = 1; i <= 2; i++) {
            const pl_tensor *src = c->in[i];
            const int64_t per = pl_numel(src) == ch ? 1 : ch / groups;
            void *dst = i == 1 ? scale : bias;
            for (int64_t k = 0; k < ch; k++) {
                double v = pl_get_f64(src, k / per);
                if (f64) ((double *)dst)[k] = v;
                else ((float *)dst)[k] = (float)v;
            }
        }
        st = cvf_out(c, c->out[0], ct, &y, &ty);
    }
    if (!st) {
        if (f64) pl_f64_groupnorm_ref(n, ch, inner, groups, x, scale, bias, eps, y);
        else pl_f32_groupnorm_ref(n, ch, inner, groups, x, scale, bias, eps, y);
        cvf_out_done(c->out[0], ct, ty);
    }
    nb_free(&b);
    return st;
}

pl_status instancenorm_run(pl_op_ctx *c) {
    int64_t ch = c->in[0]->dims[1];
    return group_run(c, ch > 0 ? ch : 1);
}

pl_status groupnorm_run(pl_op_ctx *c) { return group_run(c, pl_attr_int(c->node, "num_groups", 1)); }

/* ------------------------------------------------------------------ LayerNormalization */

/* Scale/bias are broadcast (numpy rules, aligned right) to the normalised dims
 * x.dims[axis..]; they may not add dims or expand the data. */
static pl_status ln_check_param(const pl_op_ctx *c, int i, int axis) {
    if (!pl_has_in(c, i)) return PL_OK;
    const pl_tensor *x = c->in[0], *t = c->in[i];
    const int nrm = x->ndim - axis;
    bool ok = t->ndim <= nrm;
    for (int d = 0; ok && d < t->ndim; d++) {
        int64_t want = x->dims[x->ndim - t->ndim + d];
        if (t->dims[d] != want && t->dims[d] != 1) ok = false;
    }
    if (!ok) {
        char s1[128], s2[128];
        pl_tensor nt = {.ndim = nrm};
        memcpy(nt.dims, x->dims + axis, sizeof(int64_t) * (size_t)nrm);
        return pl_op_error(c, PL_ERR_INPUT, "%s (input %d) of shape %s does not broadcast to the normalized shape %s",
                           i == 1 ? "scale" : "bias", i, pl_shape_str(t, s1, sizeof s1),
                           pl_shape_str(&nt, s2, sizeof s2));
    }
    return PL_OK;
}

/* Expands a scale/bias input to `cols` values of the compute type. */
static pl_status ln_expand(const pl_op_ctx *c, norm_bufs *b, int i, int axis, pl_dtype ct,
                           int64_t cols, void **out) {
    const pl_tensor *x = c->in[0], *t = c->in[i];
    PL_TRY(nb_alloc(c, b, cols, ct, out));
    const int nrm = x->ndim - axis;
    int64_t tst[PL_MAX_DIMS], idx[PL_MAX_DIMS] = {0};
    /* strides of t viewed with the normalized shape (0 on broadcast axes) */
    int64_t s = 1;
    for (int d = nrm - 1; d >= 0; d--) {
        int td = d - (nrm - t->ndim);
        if (td < 0 || t->dims[td] == 1) tst[d] = 0;
        else tst[d] = s;
        if (td >= 0) s *= t->dims[td];
    }
    for (int64_t j = 0; j < cols; j++) {
        int64_t off = 0;
        for (int d = 0; d < nrm; d++) off += idx[d] * tst[d];
        double v = pl_get_f64(t, off);
        if (ct == PL_F64) ((double *)*out)[j] = v;
        else ((float *)*out)[j] = (float)v;
        for (int d = nrm - 1; d >= 0; d--) {
            if (++idx[d] < x->dims[axis + d]) break;
            idx[d] = 0;
        }
    }
    return PL_OK;
}

static pl_status ln_stash_type(const pl_op_ctx *c, pl_dtype *t) {
    int64_t st = pl_attr_int(c->node, "stash_type", 1);
    switch (st) {
    case 1: *t = PL_F32; return PL_OK;
    case 10: *t = PL_F16; return PL_OK;
    case 11: *t = PL_F64; return PL_OK;
    case 16: *t = PL_BF16; return PL_OK;
    default:
        return pl_op_error(c, PL_ERR_UNSUPPORTED, "attribute 'stash_type' = %lld is not supported",
                           (long long)st);
    }
}

pl_status layernorm_infer(pl_op_ctx *c) {
    PL_TRY(pl_op_check_arity(c, 2, 3));
    for (int i = 0; i < 3; i++) PL_TRY(pl_op_check_dtype(c, i, float_types));
    PL_TRY(cvf_shapes_known(c));
    const pl_tensor *x = c->in[0];
    PL_TRY(cvf_check_rank(c, 0, 1, PL_MAX_DIMS));
    int axis;
    PL_TRY(pl_op_axis(c, pl_attr_int(c->node, "axis", -1), x->ndim, &axis));
    PL_TRY(ln_check_param(c, 1, axis));
    PL_TRY(ln_check_param(c, 2, axis));
    pl_dtype stash = PL_F32;
    PL_TRY(ln_stash_type(c, &stash));
    pl_op_same_as(c, 0, 0);
    int64_t sdims[PL_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) sdims[d] = d < axis ? x->dims[d] : 1;
    pl_op_set_out(c, 1, stash, x->ndim, sdims);
    pl_op_set_out(c, 2, stash, x->ndim, sdims);
    return PL_OK;
}

/* float32 fast path: the vectorised row kernel, rows shared out over the threads. */
typedef struct ln_job {
    const float *x, *scale, *bias;
    float *y, *mean, *inv;
    int64_t rows, cols, chunk;
    float eps;
} ln_job;

static void ln_task(void *ctx, int t, int thread) {
    (void)thread;
    const ln_job *j = ctx;
    int64_t r0 = (int64_t)t * j->chunk, r1 = r0 + j->chunk < j->rows ? r0 + j->chunk : j->rows;
    pl_f32_layernorm_rows(r1 - r0, j->cols, j->x + r0 * j->cols, j->scale, j->bias, j->eps,
                          j->y + r0 * j->cols, j->mean ? j->mean + r0 : NULL,
                          j->inv ? j->inv + r0 : NULL);
}

static pl_status layernorm_f32(pl_op_ctx *c, int axis, int64_t rows, int64_t cols) {
    norm_bufs b = {.n = 0};
    const float *scale = c->in[1]->data, *bias = pl_has_in(c, 2) ? c->in[2]->data : NULL;
    void *tmp;
    pl_status st = PL_OK;
    if (pl_numel(c->in[1]) != cols && (st = ln_expand(c, &b, 1, axis, PL_F32, cols, &tmp)) == PL_OK)
        scale = tmp;
    if (st == PL_OK && bias && pl_numel(c->in[2]) != cols &&
        (st = ln_expand(c, &b, 2, axis, PL_F32, cols, &tmp)) == PL_OK)
        bias = tmp;
    float *y = c->out[0] ? c->out[0]->data : NULL;
    if (st == PL_OK && !y && (st = nb_alloc(c, &b, rows * cols, PL_F32, &tmp)) == PL_OK) y = tmp;
    if (st == PL_OK && rows > 0) {
        ln_job j = {c->in[0]->data, scale, bias, y,
                    c->nout > 1 && c->out[1] ? c->out[1]->data : NULL,
                    c->nout > 2 && c->out[2] ? c->out[2]->data : NULL,
                    rows, cols, 1, pl_attr_float(c->node, "epsilon", 1e-5f)};
        /* about 16K elements per task */
        j.chunk = cols > 0 && 16384 / cols > 1 ? 16384 / cols : 1;
        if ((rows + j.chunk - 1) / j.chunk > INT32_MAX) j.chunk = rows / INT32_MAX + 1;
        pl_threadpool_run(c->pool, ln_task, &j, (int)((rows + j.chunk - 1) / j.chunk));
    }
    nb_free(&b);
    return st;
}

pl_status layernorm_run(pl_op_ctx *c) {
    const pl_tensor *xt = c->in[0];
    int axis;
    PL_TRY(pl_op_axis(c, pl_attr_int(c->node, "axis", -1), xt->ndim, &axis));
    const int64_t rows = dims_prod(xt, 0, axis), cols = dims_prod(xt, axis, xt->ndim);
    if (xt->dtype == PL_F32 && pl_attr_int(c->node, "stash_type", 1) == 1 && c->in[1]->dtype == PL_F32 &&
        (!pl_has_in(c, 2) || c->in[2]->dtype == PL_F32))
        return layernorm_f32(c, axis, rows, cols);
    const pl_dtype ct = cvf_compute_type(xt->dtype);
    const bool f64 = ct == PL_F64;
    const double eps = pl_attr_float(c->node, "epsilon", 1e-5f);
    norm_bufs b = {.n = 0};
    const void *x;
    void *scale, *bias = NULL, *y = NULL, *ty = NULL, *mean = NULL, *inv = NULL;
    pl_status st = nb_load(c, &b, xt, ct, &x);
    if (!st) st = ln_expand(c, &b, 1, axis, ct, cols, &scale);
    if (!st && pl_has_in(c, 2)) st = ln_expand(c, &b, 2, axis, ct, cols, &bias);
    if (!st && c->out[0]) st = cvf_out(c, c->out[0], ct, &y, &ty);
    else if (!st) st = nb_alloc(c, &b, rows * cols, ct, &y); /* Y not wanted */
    if (!st && c->nout > 1 && c->out[1]) st = nb_alloc(c, &b, rows, ct, &mean);
    if (!st && c->nout > 2 && c->out[2]) st = nb_alloc(c, &b, rows, ct, &inv);
    if (!st) {
        if (f64) pl_f64_layernorm_ref(rows, cols, x, scale, bias, eps, y, mean, inv);
        else pl_f32_layernorm_ref(rows, cols, x, scale, bias, eps, y, mean, inv);
        if (c->out[0]) {
            cvf_out_done(c->out[0], ct, ty);
            ty = NULL;
        }
        if (mean) cvf_store(c->out[1], mean, ct, rows);
        if (inv) cvf_store(c->out[2], inv, ct, rows);
    }
    free(ty);
    nb_free(&b);
    return st;
}

/* ------------------------------------------------------------------ LRN */

pl_status lrn_infer(pl_op_ctx *c) {
    PL_TRY(pl_op_check_arity(c, 1, 1));
    PL_TRY(pl_op_check_dtype(c, 0, float_types));
    PL_TRY(cvf_shapes_known(c));
    PL_TRY(cvf_check_rank(c, 0, 2, PL_MAX_DIMS));
    const pl_attr *sa = pl_attr_find(c->node, "size");
    if (!sa || sa->type != PL_ATTR_INT || sa->i < 1)
        return pl_op_error(c, PL_ERR_MODEL, "attribute 'size' (a positive int) is required");
    pl_op_same_as(c, 0, 0);
    return PL_OK;
}

pl_status lrn_run(pl_op_ctx *c) {
    const pl_tensor *xt = c->in[0];
    if (!c->out[0]) return PL_OK;
    const int64_t n = xt->dims[0], ch = xt->dims[1], inner = dims_prod(xt, 2, xt->ndim);
    const int64_t size = pl_attr_int(c->node, "size", 1);
    const double alpha = pl_attr_float(c->node, "alpha", 1e-4f);
    const double beta = pl_attr_float(c->node, "beta", 0.75f);
    const double bias = pl_attr_float(c->node, "bias", 1.0f);
    const pl_dtype ct = cvf_compute_type(xt->dtype);
    const void *x;
    void *y, *tx = NULL, *ty = NULL;
    pl_status st = cvf_load(c, xt, ct, &x, &tx);
    if (!st) st = cvf_out(c, c->out[0], ct, &y, &ty);
    if (!st) {
        if (ct == PL_F64) pl_f64_lrn_ref(n, ch, inner, size, alpha, beta, bias, x, y);
        else pl_f32_lrn_ref(n, ch, inner, size, alpha, beta, bias, x, y);
        cvf_out_done(c->out[0], ct, ty);
        ty = NULL;
    }
    free(tx);
    free(ty);
    return st;
}

/* ------------------------------------------------------------------ MVN, LpNormalization */

/* MeanVarianceNormalization's reduced axes as a mask. */
static pl_status mvn_axes(const pl_op_ctx *c, bool *reduce) {
    const int rank = c->in[0]->ndim;
    size_t na;
    const int64_t *axes = pl_attr_ints(c->node, "axes", &na);
    static const int64_t def[] = {0, 2, 3};
    if (!axes) {
        axes = def;
        na = 3;
    }
    for (int d = 0; d < rank; d++) reduce[d] = false;
    for (size_t i = 0; i < na; i++) {
        int a;
        PL_TRY(pl_op_axis(c, axes[i], rank, &a));
        reduce[a] = true;
    }
    return PL_OK;
}

pl_status mvn_infer(pl_op_ctx *c) {
    PL_TRY(pl_op_check_arity(c, 1, 1));
    PL_TRY(pl_op_check_dtype(c, 0, float_types));
    PL_TRY(cvf_shapes_known(c));
    bool reduce[PL_MAX_DIMS];
    PL_TRY(mvn_axes(c, reduce));
    pl_op_same_as(c, 0, 0);
    return PL_OK;
}

/* Y = (X - E[X]) / (sqrt(E[X^2] - E[X]^2) + 1e-9), the expectations over the reduced
 * axes (the ONNX function body's formula). Generic over types, in double. */
pl_status mvn_run(pl_op_ctx *c) {
    const pl_tensor *xt = c->in[0];
    pl_tensor *yt = c->out[0];
    if (!yt) return PL_OK;
    bool reduce[PL_MAX_DIMS];
    PL_TRY(mvn_axes(c, reduce));
    const int rank = xt->ndim;
    const int64_t n = pl_numel(xt);
    /* stats index of an element: its index with the reduced axes dropped */
    int64_t sdims[PL_MAX_DIMS], sst[PL_MAX_DIMS], nstat = 1;
    for (int d = 0; d < rank; d++) sdims[d] = reduce[d] ? 1 : xt->dims[d];
    pl_strides(rank, sdims, sst);
    for (int d = 0; d < rank; d++) {
        if (reduce[d]) sst[d] = 0;
        nstat *= sdims[d];
    }
    const int64_t count = nstat > 0 ? n / nstat : 0;
    double *sum;
    PL_TRY(cvf_alloc(c, 2 * nstat, sizeof(double), (void **)&sum));
    double *sq = sum + nstat;
    memset(sum, 0, sizeof(double) * (size_t)(2 * nstat));
    int64_t idx[PL_MAX_DIMS] = {0};
    for (int pass = 0; pass < 2; pass++) {
        memset(idx, 0, sizeof idx);
        for (int64_t i = 0; i < n; i++) {
            int64_t s = 0;
            for (int d = 0; d < rank; d++) s += idx[d] * sst[d];
            double v = pl_get_f64(xt, i);
            if (pass == 0) {
                sum[s] += v;
                sq[s] += v * v;
            } else {
                double m = sum[s] / (double)count, var = sq[s] / (double)count - m * m;
                pl_set_f64(yt, i, (v - m) / (sqrt(var > 0 ? var : 0) + 1e-9));
            }
            for (int d = rank - 1; d >= 0; d--) {
                if (++idx[d] < xt->dims[d]) break;
                idx[d] = 0;
            }
        }
    }
    free(sum);
    return PL_OK;
}

pl_status lpnorm_infer(pl_op_ctx *c) {
    PL_TRY(pl_op_check_arity(c, 1, 1));
    PL_TRY(pl_op_check_dtype(c, 0, float_types));
    PL_TRY(cvf_shapes_known(c));
    PL_TRY(cvf_check_rank(c, 0, 1, PL_MAX_DIMS));
    int axis;
    PL_TRY(pl_op_axis(c, pl_attr_int(c->node, "axis", -1), c->in[0]->ndim, &axis));
    int64_t p = pl_attr_int(c->node, "p", 2);
    if (p != 1 && p != 2)
        return pl_op_error(c, PL_ERR_MODEL, "attribute 'p' = %lld must be 1 or 2", (long long)p);
    pl_op_same_as(c, 0, 0);
    return PL_OK;
}

/* x / ||x||_p along the axis; a zero norm gives 0. */
pl_status lpnorm_run(pl_op_ctx *c) {
    const pl_tensor *xt = c->in[0];
    pl_tensor *yt = c->out[0];
    if (!yt) return PL_OK;
    int axis;
    PL_TRY(pl_op_axis(c, pl_attr_int(c->node, "axis", -1), xt->ndim, &axis));
    const int64_t p = pl_attr_int(c->node, "p", 2);
    const int64_t outer = dims_prod(xt, 0, axis), len = xt->dims[axis];
    const int64_t inner = dims_prod(xt, axis + 1, xt->ndim);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const int64_t base = o * len * inner + i;
            double norm = 0;
            for (int64_t k = 0; k < len; k++) {
                double v = pl_get_f64(xt, base + k * inner);
                norm += p == 1 ? fabs(v) : v * v;
            }
            if (p == 2) norm = sqrt(norm);
            for (int64_t k = 0; k < len; k++) {
                double v = pl_get_f64(xt, base + k * inner);
                pl_set_f64(yt, base + k * inner, norm > 0 ? v / norm : 0);
            }
        }
    return PL_OK;
}
