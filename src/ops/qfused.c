/* qfused.c -- glue between the integer conv / matmul ops and the INT8 GEMM engine (see
 * qfused.h): checks that weights and quantisation parameters are constants, converts
 * weights to signed int8 with their zero points, folds the scales into one multiplier
 * per output channel, picks dense or block-sparse packing by a cost model, and runs
 * im2col / row packing plus the GEMM per image and group. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/qfused.h"

/* Block-sparse rows pay off when at least this fraction of the 4-wide weight groups is
 * zero. Measured on one thread (layers 256x2304x196 and 128x128x3136, sparse vs dense
 * kernel): with VNNI the dense tile runs at ~190 GMAC/s and the sparse rows at ~70, so
 * sparse wins from ~0.45 (small K) to ~0.72 (large K) zero groups; on AVX2 the dense
 * tile (~40 GMAC/s) is only a little faster per MAC than the sparse rows and the
 * crossover is ~0.3-0.4. */
#define Q_SPARSE_MIN_VNNI 0.65
#define Q_SPARSE_MIN_AVX2 0.4
#define Q_SPARSE_MIN_REF 0.5

typedef struct qstate {
    bool conv;
    pl_conv_params p;
    pl_q8_conv_geom geom;
    int64_t groups, Mg, Kg, P; /* conv: per group; matmul: groups 1, Mg = N */
    int64_t in_x;              /* conv: elements of one input image */
    pl_q8_w *w;                /* groups */
    float *scale;              /* M */
    int32_t *bias;             /* M or NULL */
    pl_q8_epilogue e;
    pl_q8_level level;
    pl_dtype xtype;
    bool dw;    /* conv: depthwise 2-D (pl_q8_dwconv, no A panel) */
    bool iconv; /* conv: implicit GEMM from the padded image (pl_q8_iconv_run, no A panel) */
    int32_t xz; /* x zero point as written (before the s8 flip) */
    size_t panel_bytes, asum_off;
    /* per group, the epilogue with its per-call part made at prepare for the activation
     * zero point za (pl_q8_epi_prepare; NULL: pl_q8_gemm makes it per call) */
    pl_q8_epilogue *eg;
    int32_t *eoff;
    int32_t za;
} qstate;

void pl_q_release(void *state) {
    qstate *s = state;
    if (!s) return;
    for (int64_t g = 0; s->w && g < s->groups; g++) pl_q8_w_free(&s->w[g]);
    free(s->w);
    free(s->scale);
    free(s->bias);
    free(s->eg);
    free(s->eoff);
    free(s);
}

pl_status pl_q_act_range(const pl_op_ctx *c, float *lo, float *hi) {
    *lo = -INFINITY;
    *hi = INFINITY;
    const char *act = pl_attr_str(c->node, "pillar_act", NULL);
    if (!act) return PL_OK;
    if (!strcmp(act, "Relu")) {
        *lo = 0;
        return PL_OK;
    }
    if (!strcmp(act, "Clip")) {
        *lo = pl_attr_float(c->node, "pillar_act_alpha", -INFINITY);
        *hi = pl_attr_float(c->node, "pillar_act_beta", INFINITY);
        return PL_OK;
    }
    return pl_op_error(c, PL_ERR_UNSUPPORTED, "fused activation '%s' on an integer op is not supported",
                       act);
}

/* Input i (-1: none) present? */
static bool has(const pl_op_ctx *c, int i) { return i >= 0 && pl_has_in(c, i); }

static bool is_const(const pl_op_ctx *c, int i) { return !has(c, i) || c->in[i]->data; }

/* Value k of an optional per-tensor or per-channel parameter. */
static double param(const pl_op_ctx *c, int i, int64_t k, double def) {
    if (!has(c, i)) return def;
    return pl_numel(c->in[i]) == 1 ? pl_get_f64(c->in[i], 0) : pl_get_f64(c->in[i], k);
}

/* Shared part of prepare: scales, biases, epilogue, weight packing of `groups` blocks of
 * Mg rows x Kg (row r of group g is weight row g * Mg + r, its k-th element at
 * row * rstride + k * kstride; for a conv (taps > 1) k = tap * C + c is element
 * c * taps + tap of the row, the im2col order). */
static pl_status q_setup(pl_op_ctx *c, qstate *s, const pl_q_io *io, pl_q8_out out, int64_t M,
                         int64_t kstride, int64_t rstride, int64_t taps) {
    const pl_tensor *w = c->in[io->w];
    if (w->dtype != PL_I8 && w->dtype != PL_U8) return PL_OK;
    if (has(c, io->xz) && pl_numel(c->in[io->xz]) != 1) return PL_OK;
    if (has(c, io->xs) && pl_numel(c->in[io->xs]) != 1) return PL_OK;
    if (has(c, io->ys) && pl_numel(c->in[io->ys]) != 1) return PL_OK;
    if (has(c, io->yz) && pl_numel(c->in[io->yz]) != 1) return PL_OK;
    const int64_t nws = has(c, io->ws) ? pl_numel(c->in[io->ws]) : 1;
    const int64_t nwz = has(c, io->wz) ? pl_numel(c->in[io->wz]) : 1;
    if ((nws != 1 && nws != M) || (nwz != 1 && nwz != M)) return PL_OK;
    float lo, hi;
    PL_TRY(pl_q_act_range(c, &lo, &hi));
    s->scale = malloc(sizeof(float) * (size_t)(M + 1));
    s->w = calloc((size_t)s->groups, sizeof *s->w);
    int8_t *wbuf = malloc((size_t)(s->Mg * s->Kg + 1));
    int32_t *zw = malloc(sizeof(int32_t) * (size_t)(s->Mg + 1));
    if (has(c, io->b)) s->bias = malloc(sizeof(int32_t) * (size_t)(M + 1));
    if (!s->scale || !s->w || !wbuf || !zw || (has(c, io->b) && !s->bias)) {
        free(wbuf);
        free(zw);
        return pl_op_error(c, PL_ERR_NOMEM, "out of memory packing int8 weights");
    }
    const double xs = param(c, io->xs, 0, 1), ys = io->ys >= 0 ? param(c, io->ys, 0, 1) : 1;
    for (int64_t m = 0; m < M; m++) {
        const double ws = param(c, io->ws, m, 1);
        /* in float, in ONNX Runtime's order (x_scale * w_scale / y_scale), so that the
         * requantisation rounds the same way */
        const float f = (float)xs * (float)ws;
        s->scale[m] = out == PL_Q8_OUT_I32 ? 1.0f : out == PL_Q8_OUT_F32 ? f : f / (float)ys;
        if (s->bias) s->bias[m] = (int32_t)pl_get_i64(c->in[io->b], m);
    }
    s->e.out = out;
    s->e.scale = s->scale;
    s->e.bias_i32 = s->bias;
    s->e.lo = out == PL_Q8_OUT_F32 ? lo : (float)(lo / ys);
    s->e.hi = out == PL_Q8_OUT_F32 ? hi : (float)(hi / ys);
    s->e.zp = io->yz >= 0 ? (int32_t)param(c, io->yz, 0, 0) : 0;
    s->level = pl_q8_level_now();
    const bool u8w = w->dtype == PL_U8;
    int64_t nnz = 0, total = 0;
    pl_status st = PL_OK;
    for (int64_t g = 0; g < s->groups && !st; g++) {
        for (int64_t r = 0; r < s->Mg; r++) {
            const int64_t row = g * s->Mg + r;
            zw[r] = (int32_t)param(c, io->wz, row, 0) - (u8w ? 128 : 0);
            for (int64_t k = 0; k < s->Kg; k++) {
                const int64_t kk = taps > 1 ? (k % (s->Kg / taps)) * taps + k / (s->Kg / taps) : k;
                int64_t v = pl_get_i64(w, row * rstride + kk * kstride);
                wbuf[r * s->Kg + k] = (int8_t)(v - (u8w ? 128 : 0));
            }
        }
        double sp = pl_q8_group_sparsity(wbuf, s->Mg, s->Kg, s->Kg, zw);
        bool any_zw = false;
        for (int64_t r = 0; r < s->Mg; r++) any_zw |= zw[r] != 0;
        /* sparse rows skip groups equal to 0, so they need zero points of 0 */
        const double thr = s->level == PL_Q8_VNNI   ? Q_SPARSE_MIN_VNNI
                           : s->level == PL_Q8_AVX2 ? Q_SPARSE_MIN_AVX2
                                                    : Q_SPARSE_MIN_REF;
        /* a depthwise candidate (s->dw, set by the caller) keeps its direct kernel: a
         * few taps per channel give block-sparse rows nothing to skip */
        const bool sparse = !s->dw && !any_zw && sp >= thr;
        st = pl_q8_pack_w(&s->w[g], wbuf, s->Mg, s->Kg, s->Kg, zw, s->level, sparse);
        if (sparse) nnz += s->w[g].nnz_groups;
        total += s->Mg * ((s->Kg + 3) / 4);
    }
    free(wbuf);
    free(zw);
    if (st) return pl_op_error(c, st, "%s", pl_error_msg());
    if (s->w[0].sparse)
        snprintf(c->kernel, sizeof c->kernel, "int8 sparse %d%% %s",
                 (int)(100.0 * (1.0 - (double)nnz / (double)(total ? total : 1)) + 0.5),
                 pl_q8_level_name(s->level));
    else
        snprintf(c->kernel, sizeof c->kernel, "int8 %s", pl_q8_level_name(s->level));
    /* the epilogue's per-call part, once: the zero point is a constant (run checks it) */
    const int64_t Mp = pl_q8_epi_rows(s->Mg);
    s->eg = malloc(sizeof *s->eg * (size_t)s->groups);
    s->eoff = malloc((sizeof(int32_t) + 1) * (size_t)(Mp * s->groups));
    if (s->eg && s->eoff) {
        const int32_t xz0 = has(c, io->xz) ? (int32_t)param(c, io->xz, 0, 0) : 0;
        s->za = c->in[io->x]->dtype == PL_I8 ? xz0 + 128 : xz0;
        for (int64_t g = 0; g < s->groups; g++) {
            pl_q8_epilogue e = s->e;
            e.scale += g * s->Mg;
            if (e.bias_i32) e.bias_i32 += g * s->Mg;
            pl_q8_epi_prepare(&s->w[g], s->za, &e, s->eoff + g * Mp,
                              (uint8_t *)(s->eoff + s->groups * Mp) + g * Mp, &s->eg[g]);
        }
    } else { /* not an error: pl_q8_gemm makes it per call */
        free(s->eg);
        free(s->eoff);
        s->eg = NULL;
        s->eoff = NULL;
    }
    const int64_t Kp = (s->Kg + 3) / 4 * 4;
    s->panel_bytes = pl_q8_panel_bytes(s->level, Kp, s->P);
    s->asum_off = (s->panel_bytes + 63) / 64 * 64;
    c->scratch_size = s->asum_off + sizeof(int32_t) * (size_t)pl_q8_pp(s->P) + 64;
    c->packed_inputs |= 1u << io->w;
    return PL_OK;
}

pl_status pl_qconv_prepare(pl_op_ctx *c, const pl_conv_params *p, const pl_q_io *io, pl_q8_out out) {
    const int ios[] = {io->xs, io->xz, io->w, io->ws, io->wz, io->ys, io->yz, io->b};
    for (int i = 0; i < 8; i++)
        if (!is_const(c, ios[i])) return PL_OK;
    if (p->ndim > 3 || p->group <= 0) return PL_OK;
    qstate *s = calloc(1, sizeof *s);
    if (!s) return pl_op_error(c, PL_ERR_NOMEM, "out of memory");
    s->conv = true;
    s->p = *p;
    s->groups = p->group;
    s->Mg = p->out_channels / p->group;
    int64_t taps = 1, P = 1, insz = 1;
    pl_q8_conv_geom *g = &s->geom;
    g->ndim = p->ndim;
    g->C = p->in_channels / p->group;
    for (int d = 0; d < p->ndim; d++) {
        taps *= p->kernel[d];
        P *= p->out_size[d];
        insz *= p->in_size[d];
        g->in[d] = p->in_size[d];
        g->out[d] = p->out_size[d];
        g->k[d] = p->kernel[d];
        g->stride[d] = p->stride[d];
        g->pad[d] = p->pad_begin[d];
        g->dil[d] = p->dilation[d];
    }
    s->Kg = g->C * taps;
    s->P = P;
    s->in_x = insz;
    /* depthwise (one input channel per output channel): a direct kernel instead of one
     * tiny GEMM per channel, dense whatever the sparsity */
    s->dw = p->ndim == 2 && g->C == 1 && s->Mg == 1 && s->groups == p->in_channels && taps <= 64 &&
            g->stride[0] == g->stride[1] && g->stride[0] >= 1 && g->stride[0] <= 2;
    pl_status st = q_setup(c, s, io, out, p->out_channels, 1, s->Kg, taps);
    if (st || !s->w) {
        pl_q_release(s);
        c->scratch_size = 0;
        c->kernel[0] = 0;
        return st;
    }
    for (int64_t k = 0; s->dw && k < s->groups; k++) s->dw = !s->w[k].sparse && !s->w[k].any_zw;
    if (s->dw)
        snprintf(c->kernel, sizeof c->kernel, "int8 depthwise %s", pl_q8_level_name(s->level));
    /* a KxK layer on VNNI reads its image directly (u8 input: the s8 flip is applied in
     * the im2col path only, so run checks the type again) */
    s->iconv = !s->dw && c->in[io->x]->dtype == PL_U8;
    for (int64_t k = 0; s->iconv && k < s->groups; k++)
        s->iconv = pl_q8_iconv_ok(s->level, &s->geom, &s->w[k], 0);
    if (s->iconv) {
        const size_t need = pl_q8_iconv_bytes(&s->geom) + 64;
        if (need > c->scratch_size) c->scratch_size = need;
        snprintf(c->kernel, sizeof c->kernel, "int8 %s implicit", pl_q8_level_name(s->level));
    }
    c->state = s;
    return PL_OK;
}

static size_t out_size(pl_q8_out o) { return o == PL_Q8_OUT_U8 || o == PL_Q8_OUT_S8 ? 1 : 4; }

static pl_status run_fail(const pl_op_ctx *c, pl_status st) {
    return st ? pl_op_error(c, st, "%s", pl_error_msg()) : PL_OK;
}

/* Scratch: the prepared size, or a temporary buffer when the executor gave none. */
static pl_status scratch_of(const pl_op_ctx *c, const qstate *s, void **buf, void **tmp) {
    size_t need = s->asum_off + sizeof(int32_t) * (size_t)pl_q8_pp(s->P) + 64;
    if (s->iconv && pl_q8_iconv_bytes(&s->geom) + 64 > need) need = pl_q8_iconv_bytes(&s->geom) + 64;
    *tmp = NULL;
    if (c->scratch && c->scratch_size >= need) {
        *buf = (void *)(((uintptr_t)c->scratch + 63) & ~(uintptr_t)63);
        if ((char *)*buf + need - 64 <= (char *)c->scratch + c->scratch_size) return PL_OK;
    }
    *tmp = malloc(need);
    if (!*tmp) return pl_op_error(c, PL_ERR_NOMEM, "out of memory");
    *buf = (void *)(((uintptr_t)*tmp + 63) & ~(uintptr_t)63);
    return PL_OK;
}

pl_status pl_qconv_run(pl_op_ctx *c, const pl_conv_params *p, bool *done) {
    const qstate *s = c->state;
    *done = false;
    if (!s || !s->conv || memcmp(&s->p, p, sizeof *p)) return PL_OK;
    const pl_tensor *x = c->in[0];
    if (x->dtype != PL_U8 && x->dtype != PL_I8) return PL_OK;
    *done = true;
    pl_tensor *y = c->out[0];
    if (!y || pl_numel(y) == 0) return PL_OK;
    void *buf, *tmp;
    PL_TRY(scratch_of(c, s, &buf, &tmp));
    const bool s8 = x->dtype == PL_I8;
    const int32_t xz0 = pl_has_in(c, 2) ? (int32_t)pl_get_i64(c->in[2], 0) : 0;
    const int32_t za = s8 ? xz0 + 128 : xz0;
    const uint8_t flip = s8 ? 0x80 : 0;
    int32_t *asum = s->w[0].any_zw ? (int32_t *)((char *)buf + s->asum_off) : NULL;
    const size_t es = out_size(s->e.out);
    pl_status st = PL_OK;
    if (s->dw && !s8) {
        for (int64_t n = 0; n < p->batch && !st; n++)
            st = pl_q8_dwconv(s->w, s->groups, &s->geom,
                              (const uint8_t *)x->data + n * p->in_channels * s->in_x, za, &s->e,
                              (char *)y->data + (size_t)(n * p->out_channels * s->P) * es, c->pool);
        free(tmp);
        return run_fail(c, st);
    }
    for (int64_t n = 0; n < p->batch && !st; n++)
        for (int64_t g = 0; g < s->groups && !st; g++) {
            const uint8_t *xg = (const uint8_t *)x->data + (n * p->in_channels + g * s->geom.C) * s->in_x;
            char *yg = (char *)y->data + (size_t)((n * p->out_channels + g * s->Mg) * s->P) * es;
            pl_q8_epilogue e = s->e;
            e.scale += g * s->Mg;
            if (e.bias_i32) e.bias_i32 += g * s->Mg;
            if (s->eg && za == s->za) e = s->eg[g];
            if (s->iconv && !s8) {
                st = pl_q8_iconv_run(&s->w[g], &s->geom, xg, (uint8_t)za, za, &e, yg, s->P, buf, c->pool);
                continue;
            }
            asum = s->w[g].any_zw ? (int32_t *)((char *)buf + s->asum_off) : NULL;
            st = pl_q8_im2col(s->level, &s->geom, xg, flip, (uint8_t)za, buf, asum, c->pool);
            if (!st) st = pl_q8_gemm(&s->w[g], buf, asum, s->P, za, &e, yg, s->P, 1, c->pool);
        }
    free(tmp);
    return run_fail(c, st);
}

/* ------------------------------------------------------------------ matmul */

pl_status pl_qmm_prepare(pl_op_ctx *c, const pl_q_io *io, pl_q8_out out) {
    const int ios[] = {io->xs, io->xz, io->w, io->ws, io->wz, io->ys, io->yz, io->b};
    for (int i = 0; i < 8; i++)
        if (!is_const(c, ios[i])) return PL_OK;
    const pl_tensor *a = c->in[io->x], *b = c->in[io->w];
    if (b->ndim != 2 || a->ndim < 1) return PL_OK;
    const bool tb = false; /* the fusion pass writes b as [K, N] */
    const int64_t K = tb ? b->dims[1] : b->dims[0], N = tb ? b->dims[0] : b->dims[1];
    if (a->dims[a->ndim - 1] != K) return PL_OK;
    qstate *s = calloc(1, sizeof *s);
    if (!s) return pl_op_error(c, PL_ERR_NOMEM, "out of memory");
    s->groups = 1;
    s->Mg = N;
    s->Kg = K;
    s->P = K ? pl_numel(a) / K : 0;
    pl_status st = q_setup(c, s, io, out, N, tb ? 1 : N, tb ? K : 1, 1);
    if (st || !s->w) {
        pl_q_release(s);
        c->scratch_size = 0;
        c->kernel[0] = 0;
        return st;
    }
    c->state = s;
    return PL_OK;
}

pl_status pl_qmm_run(pl_op_ctx *c, bool *done) {
    const qstate *s = c->state;
    *done = false;
    if (!s || s->conv) return PL_OK;
    const pl_tensor *a = c->in[0];
    if ((a->dtype != PL_U8 && a->dtype != PL_I8) || !s->Kg || pl_numel(a) != s->P * s->Kg) return PL_OK;
    *done = true;
    pl_tensor *y = c->out[0];
    if (!y || pl_numel(y) == 0) return PL_OK;
    void *buf, *tmp;
    PL_TRY(scratch_of(c, s, &buf, &tmp));
    const bool s8 = a->dtype == PL_I8;
    const int32_t az0 = pl_has_in(c, 2) ? (int32_t)pl_get_i64(c->in[2], 0) : 0;
    const int32_t za = s8 ? az0 + 128 : az0;
    int32_t *asum = s->w[0].any_zw ? (int32_t *)((char *)buf + s->asum_off) : NULL;
    pl_status st = pl_q8_pack_rows(s->level, a->data, s->P, s->Kg, s->Kg, s8 ? 0x80 : 0, buf, asum, c->pool);
    const pl_q8_epilogue *e = s->eg && za == s->za ? &s->eg[0] : &s->e;
    if (!st) st = pl_q8_gemm(&s->w[0], buf, asum, s->P, za, e, y->data, 1, s->Mg, c->pool);
    free(tmp);
    return run_fail(c, st);
}

/* ------------------------------------------------------------------ QLinearAdd */

/* pillar QLinearAdd (from DQ(a) + DQ(b) -> [Relu] -> Q): inputs a, a_scale, a_zp, b,
 * b_scale, b_zp, y_scale, y_zp, all parameters scalars; numpy broadcasting. Computed
 * with ONNX Runtime's arithmetic (float, zero points folded into one constant):
 * y = round(a * (sa / sy) + b * (sb / sy) + zy - (za sa / sy + zb sb / sy)), saturated,
 * with the fused Relu / Clip. */
pl_status qlinearadd_infer(pl_op_ctx *c) {
    static const pl_dtype q8[] = {PL_U8, PL_I8, PL_UNDEF};
    PL_TRY(pl_op_check_arity(c, 8, 8));
    for (int i = 0; i < 8; i++)
        if (!pl_has_in(c, i)) return pl_op_error(c, PL_ERR_MODEL, "input %d is required", i);
    PL_TRY(pl_op_check_dtype(c, 0, q8));
    PL_TRY(pl_op_check_dtype(c, 3, q8));
    PL_TRY(pl_op_check_dtype(c, 7, q8));
    PL_TRY(pl_op_check_same_dtype(c, 0, 2));
    PL_TRY(pl_op_check_same_dtype(c, 3, 5));
    for (int i = 1; i < 8; i += (i == 2 ? 2 : 1)) {
        PL_TRY(pl_op_input_known(c, i));
        if (pl_numel(c->in[i]) != 1)
            return pl_op_error(c, PL_ERR_UNSUPPORTED, "input %d must be a single value", i);
    }
    PL_TRY(pl_op_input_known(c, 0));
    PL_TRY(pl_op_input_known(c, 3));
    float lo, hi;
    PL_TRY(pl_q_act_range(c, &lo, &hi));
    int ndim;
    int64_t dims[PL_MAX_DIMS];
    const pl_tensor *ts[2] = {c->in[0], c->in[3]};
    PL_TRY(pl_op_broadcast(c, 2, ts, &ndim, dims));
    pl_op_set_out(c, 0, c->in[7]->dtype, ndim, dims);
    return PL_OK;
}

static inline int32_t q8_at(const pl_tensor *t, int64_t i) {
    return t->dtype == PL_U8 ? ((const uint8_t *)t->data)[i] : ((const int8_t *)t->data)[i];
}

pl_status qlinearadd_run(pl_op_ctx *c) {
    pl_tensor *y = c->out[0];
    if (!y) return PL_OK;
    const pl_tensor *a = c->in[0], *b = c->in[3];
    const float sy = (float)pl_get_f64(c->in[6], 0);
    const float ra = (float)pl_get_f64(c->in[1], 0) / sy, rb = (float)pl_get_f64(c->in[4], 0) / sy;
    const int32_t za = (int32_t)pl_get_i64(c->in[2], 0), zb = (int32_t)pl_get_i64(c->in[5], 0);
    const int32_t zy = (int32_t)pl_get_i64(c->in[7], 0);
    float lo, hi;
    PL_TRY(pl_q_act_range(c, &lo, &hi));
    const bool u8 = y->dtype == PL_U8;
    /* everything in output units with the zero point included, as ONNX Runtime does */
    const float ta = ra * (float)za, tb = rb * (float)zb;
    const float fixed = (float)zy - (ta + tb);
    const float qlo = u8 ? 0.0f : -128.0f, qhi = u8 ? 255.0f : 127.0f;
    lo = lo / sy + (float)zy > qlo ? lo / sy + (float)zy : qlo;
    hi = hi / sy + (float)zy < qhi ? hi / sy + (float)zy : qhi;
    const int64_t n = pl_numel(y);
    int64_t sa[PL_MAX_DIMS], sb[PL_MAX_DIMS];
    const bool same = pl_numel(a) == n && pl_numel(b) == n;
    if (!same) {
        pl_broadcast_strides(a, y->ndim, y->dims, sa);
        pl_broadcast_strides(b, y->ndim, y->dims, sb);
    }
    const pl_q8_add_params qp = {ra, rb, fixed, lo, hi};
    if (same && a->dtype == PL_U8 && b->dtype == PL_U8 && u8) {
        pl_q8_add_u8(a->data, b->data, y->data, n, &qp, c->pool);
        return PL_OK;
    }
    for (int64_t i = 0; i < n; i++) {
        int64_t ia = i, ib = i;
        if (!same) {
            int64_t rem = i;
            ia = ib = 0;
            for (int d = y->ndim - 1; d >= 0; d--) {
                int64_t k = rem % y->dims[d];
                rem /= y->dims[d];
                ia += k * sa[d];
                ib += k * sb[d];
            }
        }
        float v = fmaf((float)q8_at(a, ia), ra, fmaf((float)q8_at(b, ib), rb, fixed));
        v = v > lo ? v : lo;
        v = v < hi ? v : hi;
        const int32_t q = (int32_t)nearbyintf(v);
        if (u8) ((uint8_t *)y->data)[i] = (uint8_t)q;
        else ((int8_t *)y->data)[i] = (int8_t)q;
    }
    return PL_OK;
}

/* ------------------------------------------------------------------ QLut */

/* pillar QLut (from DQ -> Relu | Clip -> Q on 8-bit values, graph/fuse_qdq.c): inputs x
 * (u8 / s8, any shape) and a constant table of 256 values (u8 / s8, the output type);
 * y[i] = table[bits of x[i]]. */
pl_status qlut_infer(pl_op_ctx *c) {
    static const pl_dtype q8[] = {PL_U8, PL_I8, PL_UNDEF};
    PL_TRY(pl_op_check_arity(c, 2, 2));
    PL_TRY(pl_op_check_dtype(c, 0, q8));
    PL_TRY(pl_op_check_dtype(c, 1, q8));
    PL_TRY(pl_op_input_known(c, 1));
    if (pl_numel(c->in[1]) != 256)
        return pl_op_error(c, PL_ERR_MODEL, "table has %lld values, expected 256",
                           (long long)pl_numel(c->in[1]));
    pl_op_set_out(c, 0, c->in[1]->dtype, c->in[0]->ndim, c->in[0]->dims);
    return PL_OK;
}

pl_status qlut_run(pl_op_ctx *c) {
    pl_tensor *y = c->out[0];
    if (!y) return PL_OK;
    pl_q8_lut(c->in[0]->data, y->data, pl_numel(y), c->in[1]->data, c->pool);
    return PL_OK;
}

/* ------------------------------------------------------------------ MaxPool on 8 bits */

/* pillar QMaxPool: MaxPool of a 4-D u8 / s8 tensor (made by the QDQ fusion pass from a
 * MaxPool between DQ and Q with equal parameters): kernel_shape, strides, pads;
 * dilations 1, ceil_mode 0, no auto_pad (the pass checks). */
typedef struct qpool_geo {
    int64_t k[2], s[2], pb[2], pe[2], out[2];
} qpool_geo;

static pl_status qpool_geometry(const pl_op_ctx *c, qpool_geo *q) {
    const pl_tensor *x = c->in[0];
    if (x->ndim != 4) return pl_op_error(c, PL_ERR_UNSUPPORTED, "input has %d dims, expected 4", x->ndim);
    size_t nk, ns, np;
    const int64_t *k = pl_attr_ints(c->node, "kernel_shape", &nk);
    const int64_t *s = pl_attr_ints(c->node, "strides", &ns);
    const int64_t *p = pl_attr_ints(c->node, "pads", &np);
    if (nk != 2 || (s && ns != 2) || (p && np != 4))
        return pl_op_error(c, PL_ERR_MODEL, "kernel_shape, strides or pads have the wrong length");
    for (int d = 0; d < 2; d++) {
        q->k[d] = k[d];
        q->s[d] = s ? s[d] : 1;
        q->pb[d] = p ? p[d] : 0;
        q->pe[d] = p ? p[d + 2] : 0;
        if (q->k[d] < 1 || q->s[d] < 1 || q->pb[d] < 0 || q->pe[d] < 0 || q->pb[d] >= q->k[d] || q->pe[d] >= q->k[d])
            return pl_op_error(c, PL_ERR_MODEL, "bad kernel, stride or pads");
        q->out[d] = (x->dims[d + 2] + q->pb[d] + q->pe[d] - q->k[d]) / q->s[d] + 1;
        if (q->out[d] < 1) return pl_op_error(c, PL_ERR_INPUT, "input smaller than the kernel");
    }
    return PL_OK;
}

pl_status qmaxpool_infer(pl_op_ctx *c) {
    static const pl_dtype q8[] = {PL_U8, PL_I8, PL_UNDEF};
    PL_TRY(pl_op_check_arity(c, 1, 1));
    PL_TRY(pl_op_check_dtype(c, 0, q8));
    PL_TRY(pl_op_input_known(c, 0));
    qpool_geo q;
    PL_TRY(qpool_geometry(c, &q));
    const int64_t dims[4] = {c->in[0]->dims[0], c->in[0]->dims[1], q.out[0], q.out[1]};
    pl_op_set_out(c, 0, c->in[0]->dtype, 4, dims);
    return PL_OK;
}

typedef struct qpool_job {
    const uint8_t *x;
    uint8_t *y, *tmp;
    int64_t H, W, OH, OW, planes, per_task;
    qpool_geo q;
    uint8_t flip;
} qpool_job;

static void qpool_task(void *ctx, int task, int thread) {
    const qpool_job *j = ctx;
    for (int64_t pl = task * j->per_task; pl < (task + 1) * j->per_task && pl < j->planes; pl++)
        pl_q8_maxpool2d(j->x + pl * j->H * j->W, j->H, j->W, j->y + pl * j->OH * j->OW, j->OH, j->OW,
                        j->q.k, j->q.s, j->q.pb, j->flip, j->tmp + (size_t)thread * (size_t)(j->H * j->OW));
}

pl_status qmaxpool_run(pl_op_ctx *c) {
    pl_tensor *y = c->out[0];
    if (!y || pl_numel(y) == 0) return PL_OK;
    const pl_tensor *x = c->in[0];
    qpool_job j = {.x = x->data, .y = y->data, .H = x->dims[2], .W = x->dims[3], .flip = x->dtype == PL_I8 ? 0x80 : 0};
    PL_TRY(qpool_geometry(c, &j.q));
    j.OH = j.q.out[0];
    j.OW = j.q.out[1];
    j.planes = x->dims[0] * x->dims[1];
    const int nth = pl_threadpool_size(c->pool);
    j.tmp = malloc((size_t)nth * (size_t)(j.H * j.OW) + 1);
    if (!j.tmp) return pl_op_error(c, PL_ERR_NOMEM, "out of memory");
    j.per_task = (j.planes + 4 * nth - 1) / (4 * nth);
    if (j.per_task < 1) j.per_task = 1;
    pl_threadpool_run(c->pool, qpool_task, &j, (int)((j.planes + j.per_task - 1) / j.per_task));
    free(j.tmp);
    return PL_OK;
}
