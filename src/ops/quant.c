/* quant.c -- linear quantisation: QuantizeLinear, DequantizeLinear,
 * DynamicQuantizeLinear, MatMulInteger and QLinearMatMul.
 *
 * Rounding is half to even and every conversion to an integer saturates (see
 * linalg_round_sat), so hostile values (NaN, inf, huge scales) have defined results.
 * Integer accumulations are exact (64-bit). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/linalg_util.h"
#include "ops/qfused.h"

/* ---- scale / zero-point granularity ---- */

/* How a scale or zero point applies to x: one value, or one per index of x's `axis`. */
typedef struct qparam {
    bool per_axis;
    int64_t inner, len; /* x element i uses index (i / inner) % len when per_axis */
} qparam;

/* Works out the granularity of input `si` (scale) against input `xi` (x) using the
 * `axis` attribute; the zero point `zi` (if present) must have the same shape. */
static pl_status qparam_of(const pl_op_ctx *c, int xi, int si, int zi, qparam *q) {
    const pl_tensor *x = c->in[xi], *s = c->in[si];
    memset(q, 0, sizeof *q);
    if (pl_has_in(c, zi)) {
        const pl_tensor *z = c->in[zi];
        if (pl_numel(z) != pl_numel(s) || (z->ndim > 1 && !pl_tensor_same_shape(z, s)))
            return pl_op_error(c, PL_ERR_MODEL, "scale and zero point have different shapes");
    }
    if (pl_attr_int(c->node, "block_size", 0) != 0)
        return pl_op_error(c, PL_ERR_UNSUPPORTED,
                           "attribute 'block_size' (blocked quantization) is "
                           "not supported");
    int64_t ns = pl_numel(s);
    if (ns == 0) return pl_op_error(c, PL_ERR_MODEL, "scale is empty");
    if (ns == 1) return PL_OK; /* per tensor */
    if (s->ndim != 1)
        return pl_op_error(c, PL_ERR_UNSUPPORTED,
                           "scale with %d dims (blocked quantization) is not "
                           "supported",
                           s->ndim);
    int ax;
    PL_TRY(pl_op_axis(c, pl_attr_int(c->node, "axis", 1), x->ndim, &ax));
    if (s->dims[0] != x->dims[ax])
        return pl_op_error(c, PL_ERR_INPUT, "scale has %lld values but axis %d of x has %lld",
                           (long long)ns, ax, (long long)x->dims[ax]);
    q->per_axis = true;
    q->len = x->dims[ax];
    q->inner = linalg_prod(x->dims, ax + 1, x->ndim);
    if (q->inner <= 0) q->inner = 1;
    return PL_OK;
}

static inline int64_t qparam_index(const qparam *q, int64_t i) {
    return q->per_axis ? (i / q->inner) % q->len : 0;
}

static const pl_dtype quant_types[] = {PL_U8, PL_I8, PL_U16, PL_I16, PL_I32, PL_UNDEF};

/* ---- QuantizeLinear ---- */

static pl_status quantize_out_type(const pl_op_ctx *c, pl_dtype *t) {
    if (pl_has_in(c, 2)) {
        *t = c->in[2]->dtype;
    } else {
        /* pillar dtypes share ONNX's TensorProto numbering. */
        int64_t od = pl_attr_int(c->node, "output_dtype", 0);
        *t = od ? (pl_dtype)od : PL_U8;
    }
    int64_t lo, hi;
    if (!linalg_int_range(*t, &lo, &hi))
        return pl_op_error(c, PL_ERR_UNSUPPORTED, "quantizing to %s is not supported",
                           pl_dtype_name(*t));
    return PL_OK;
}

pl_status quantize_infer(pl_op_ctx *c) {
    static const pl_dtype xt[] = {PL_F32, PL_F16, PL_BF16, PL_F64, PL_I32, PL_UNDEF};
    PL_TRY(pl_op_check_arity(c, 2, 3));
    PL_TRY(pl_op_check_dtype(c, 0, xt));
    PL_TRY(pl_op_check_float(c, 1));
    PL_TRY(pl_op_check_dtype(c, 2, quant_types));
    PL_TRY(linalg_shapes_known(c));
    pl_dtype t;
    PL_TRY(quantize_out_type(c, &t));
    qparam q;
    PL_TRY(qparam_of(c, 0, 1, 2, &q));
    pl_op_set_out(c, 0, t, c->in[0]->ndim, c->in[0]->dims);
    return PL_OK;
}

/* Per-tensor float32 -> 8-bit quantisation of elements [i0, i1): the same rounding and
 * saturation as linalg_round_sat, inline. Clamping to the integer bounds before rounding
 * gives the same result as after, and keeps |v| small enough for the add-and-subtract
 * rounding trick (half to even in the default rounding mode), so the loop vectorizes
 * without a libm call per element. NaN gives the zero point. */
typedef struct quant_job {
    const float *x;
    void *y;
    int64_t n, chunk;
    float sc, vlo, vhi;
    int32_t zp;
    bool u8;
} quant_job;

static void quantize_task(void *ctx, int task, int thread) {
    (void)thread;
    const quant_job *j = ctx;
    const int64_t i0 = task * j->chunk, i1 = j->n - i0 < j->chunk ? j->n : i0 + j->chunk;
    const float *xp = j->x, sc = j->sc, vlo = j->vlo, vhi = j->vhi, magic = 12582912.0f;
    const int32_t zp = j->zp;
    if (j->u8) {
        uint8_t *yp = j->y;
        for (int64_t i = i0; i < i1; i++) { /* one test per statement: vectorizes */
            float v = xp[i] / sc;
            v = v != v ? 0.0f : v;
            v = v < vlo ? vlo : v;
            v = v > vhi ? vhi : v;
            yp[i] = (uint8_t)((int32_t)((v + magic) - magic) + zp);
        }
    } else {
        int8_t *yp = j->y;
        for (int64_t i = i0; i < i1; i++) {
            float v = xp[i] / sc;
            v = v != v ? 0.0f : v;
            v = v < vlo ? vlo : v;
            v = v > vhi ? vhi : v;
            yp[i] = (int8_t)((int32_t)((v + magic) - magic) + zp);
        }
    }
}

pl_status quantize_run(pl_op_ctx *c) {
    const pl_tensor *x = c->in[0], *s = c->in[1], *z = pl_has_in(c, 2) ? c->in[2] : NULL;
    pl_tensor *y = c->out[0];
    qparam q;
    PL_TRY(qparam_of(c, 0, 1, 2, &q));
    int64_t lo, hi, n = pl_numel(x);
    linalg_int_range(y->dtype, &lo, &hi);
    bool f64 = s->dtype == PL_F64;
    if (x->dtype == PL_F32 && s->dtype == PL_F32 && (y->dtype == PL_U8 || y->dtype == PL_I8)) {
        /* Fast path for the common float32 -> 8-bit case. */
        const float *xp = x->data, *sp = s->data;
        if (!q.per_axis) { /* per tensor: threaded over chunks of 16K elements */
            const int32_t zp = z ? (int32_t)pl_get_i64(z, 0) : 0;
            quant_job j = {xp, y->data, n, 16384, sp[0], (float)(lo - zp), (float)(hi - zp), zp,
                           y->dtype == PL_U8};
            const int64_t nt = (n + j.chunk - 1) / j.chunk;
            if (nt > 1) pl_threadpool_run(c->pool, quantize_task, &j, (int)nt);
            else if (nt == 1) quantize_task(&j, 0, 0);
            return PL_OK;
        }
        for (int64_t i = 0; i < n; i++) {
            int64_t k = qparam_index(&q, i);
            int64_t r = linalg_round_sat(xp[i] / sp[k], z ? (double)pl_get_i64(z, k) : 0, lo, hi);
            if (y->dtype == PL_U8)
                ((uint8_t *)y->data)[i] = (uint8_t)r;
            else
                ((int8_t *)y->data)[i] = (int8_t)r;
        }
        return PL_OK;
    }
    for (int64_t i = 0; i < n; i++) {
        int64_t k = qparam_index(&q, i);
        double zp = z ? (double)pl_get_i64(z, k) : 0;
        double sc = pl_get_f64(s, k), v;
        /* The division is done at the scale's precision, as the spec says. */
        if (f64)
            v = pl_get_f64(x, i) / sc;
        else
            v = (float)pl_get_f64(x, i) / (float)sc;
        pl_set_i64(y, i, linalg_round_sat(v, zp, lo, hi));
    }
    return PL_OK;
}

/* ---- DequantizeLinear ---- */

pl_status dequantize_infer(pl_op_ctx *c) {
    PL_TRY(pl_op_check_arity(c, 2, 3));
    PL_TRY(pl_op_check_dtype(c, 0, quant_types));
    PL_TRY(pl_op_check_float(c, 1));
    PL_TRY(pl_op_check_same_dtype(c, 0, 2));
    PL_TRY(linalg_shapes_known(c));
    qparam q;
    PL_TRY(qparam_of(c, 0, 1, 2, &q));
    pl_dtype t = c->in[1]->dtype;
    int64_t od = pl_attr_int(c->node, "output_dtype", 0);
    if (od) {
        t = (pl_dtype)od;
        if (!pl_dtype_is_float(t))
            return pl_op_error(c, PL_ERR_UNSUPPORTED, "output_dtype %lld is not supported",
                               (long long)od);
    }
    pl_op_set_out(c, 0, t, c->in[0]->ndim, c->in[0]->dims);
    return PL_OK;
}

pl_status dequantize_run(pl_op_ctx *c) {
    const pl_tensor *x = c->in[0], *s = c->in[1], *z = pl_has_in(c, 2) ? c->in[2] : NULL;
    pl_tensor *y = c->out[0];
    qparam q;
    PL_TRY(qparam_of(c, 0, 1, 2, &q));
    int64_t n = pl_numel(x);
    bool f64 = y->dtype == PL_F64 || s->dtype == PL_F64;
    if (y->dtype == PL_F32 && s->dtype == PL_F32 && (x->dtype == PL_U8 || x->dtype == PL_I8)) {
        /* 8-bit input: runs of q.inner elements share one scale and zero point */
        float *out = y->data;
        const float *sc = s->data;
        const int64_t inner = q.per_axis ? q.inner : (n > 0 ? n : 1);
        for (int64_t b = 0; b * inner < n; b++) {
            const int64_t k = qparam_index(&q, b * inner);
            const int32_t zp = z ? (int32_t)pl_get_i64(z, k) : 0;
            const float f = sc[k];
            float *o = out + b * inner;
            if (x->dtype == PL_U8) {
                const uint8_t *xp = (const uint8_t *)x->data + b * inner;
                for (int64_t i = 0; i < inner; i++) o[i] = (float)((int32_t)xp[i] - zp) * f;
            } else {
                const int8_t *xp = (const int8_t *)x->data + b * inner;
                for (int64_t i = 0; i < inner; i++) o[i] = (float)((int32_t)xp[i] - zp) * f;
            }
        }
        return PL_OK;
    }
    if (y->dtype == PL_F32 && s->dtype == PL_F32) { /* fast path */
        float *out = y->data;
        const float *sc = s->data;
        for (int64_t i = 0; i < n; i++) {
            int64_t k = qparam_index(&q, i);
            int64_t d = pl_get_i64(x, i) - (z ? pl_get_i64(z, k) : 0);
            out[i] = (float)d * sc[k];
        }
        return PL_OK;
    }
    for (int64_t i = 0; i < n; i++) {
        int64_t k = qparam_index(&q, i);
        int64_t d = pl_get_i64(x, i) - (z ? pl_get_i64(z, k) : 0);
        double v =
            f64 ? (double)d * pl_get_f64(s, k) : (double)((float)d * (float)pl_get_f64(s, k));
        pl_set_f64(y, i, v);
    }
    return PL_OK;
}

/* ---- DynamicQuantizeLinear ---- */

pl_status dynquant_infer(pl_op_ctx *c) {
    PL_TRY(pl_op_check_arity(c, 1, 1));
    PL_TRY(pl_op_check_float(c, 0));
    PL_TRY(linalg_shapes_known(c));
    pl_op_set_out(c, 0, PL_U8, c->in[0]->ndim, c->in[0]->dims);
    pl_op_set_out(c, 1, PL_F32, 0, NULL);
    pl_op_set_out(c, 2, PL_U8, 0, NULL);
    return PL_OK;
}

/* Range [min(0, min x), max(0, max x)] mapped onto [0, 255], in float32 like the spec's
 * reference; NaNs are skipped. An all-zero input gives scale 0, zero point 0, y 0. */
pl_status dynquant_run(pl_op_ctx *c) {
    const pl_tensor *x = c->in[0];
    int64_t n = pl_numel(x);
    float mn = 0, mx = 0;
    for (int64_t i = 0; i < n; i++) {
        float v = (float)pl_get_f64(x, i);
        if (v < mn) mn = v;
        if (v > mx) mx = v;
    }
    float scale = (mx - mn) / 255.0f;
    int64_t zp = 0;
    if (scale != 0 && isfinite(scale)) zp = linalg_round_sat(0.0f - mn / scale, 0, 0, 255);
    if (c->nout > 0 && c->out[0]) {
        uint8_t *y = c->out[0]->data;
        for (int64_t i = 0; i < n; i++) {
            float v = (float)pl_get_f64(x, i);
            y[i] = scale != 0 && isfinite(scale)
                       ? (uint8_t)linalg_round_sat(v / scale, (double)zp, 0, 255)
                       : (uint8_t)zp;
        }
    }
    if (c->nout > 1 && c->out[1]) *(float *)c->out[1]->data = scale;
    if (c->nout > 2 && c->out[2]) *(uint8_t *)c->out[2]->data = (uint8_t)zp;
    return PL_OK;
}

/* ---- MatMulInteger / QLinearMatMul ---- */

/* A zero point (or scale) of a matmul operand: one value, one per row of A (per column
 * of B), or one per row (column) of every batch matrix. */
typedef struct mmq {
    const pl_tensor *t; /* NULL: absent (0) */
    int mode;           /* 0 scalar, 1 per row/col, 2 per batch and row/col */
} mmq;

/* `rows` is true for A's parameters (per row, M), false for B's (per column, N).
 * `op` is the operand whose batch shape a mode-2 parameter follows. */
static pl_status mmq_of(const pl_op_ctx *c, int pi, int op, bool rows, const linalg_mm *s, mmq *q) {
    q->t = pl_has_in(c, pi) ? c->in[pi] : NULL;
    q->mode = 0;
    if (!q->t) return PL_OK;
    const pl_tensor *p = q->t, *o = c->in[op];
    int64_t want = rows ? s->M : s->N, np = pl_numel(p);
    if (np == 1) return PL_OK;
    if (p->ndim == 1 && p->dims[0] == want) {
        q->mode = 1;
        return PL_OK;
    }
    if (p->ndim == o->ndim && o->ndim >= 2) {
        bool ok = true;
        for (int d = 0; d < o->ndim - 2; d++) ok = ok && p->dims[d] == o->dims[d];
        if (rows)
            ok = ok && p->dims[o->ndim - 2] == s->M && p->dims[o->ndim - 1] == 1;
        else
            ok = ok && p->dims[o->ndim - 2] == 1 && p->dims[o->ndim - 1] == s->N;
        if (ok) {
            q->mode = 2;
            return PL_OK;
        }
    }
    char buf[128];
    return pl_op_error(c, PL_ERR_UNSUPPORTED,
                       "input %d has shape %s; expected a scalar or one value "
                       "per %s",
                       pi, pl_shape_str(p, buf, sizeof buf), rows ? "row of A" : "column of B");
}

/* Index of the parameter for matrix number `mat` of its operand and row/column `r`. */
static inline int64_t mmq_index(const mmq *q, int64_t mat, int64_t r, int64_t len) {
    return q->mode == 0 ? 0 : q->mode == 1 ? r : mat * len + r;
}

static const pl_dtype q8_types[] = {PL_U8, PL_I8, PL_UNDEF};

pl_status matmulint_infer(pl_op_ctx *c) {
    PL_TRY(pl_op_check_arity(c, 2, 4));
    PL_TRY(pl_op_check_dtype(c, 0, q8_types));
    PL_TRY(pl_op_check_dtype(c, 1, q8_types));
    PL_TRY(pl_op_check_same_dtype(c, 0, 2));
    PL_TRY(pl_op_check_same_dtype(c, 1, 3));
    PL_TRY(linalg_shapes_known(c));
    linalg_mm s;
    mmq qa, qb;
    PL_TRY(linalg_mm_shape(c, 0, 1, &s));
    PL_TRY(mmq_of(c, 2, 0, true, &s, &qa));
    PL_TRY(mmq_of(c, 3, 1, false, &s, &qb));
    pl_op_set_out(c, 0, PL_I32, s.ndim, s.dims);
    return PL_OK;
}

/* Exact integer product of (a - a_zp) and (b - b_zp) for one batch matrix pair; `acc`
 * is M x N. a_mat / b_mat number the matrices within each operand (for mode-2 params). */
static void mm_int_acc(const linalg_mm *s, const pl_tensor *a, int64_t ao, const mmq *za,
                       int64_t a_mat, const pl_tensor *b, int64_t bo, const mmq *zb, int64_t b_mat,
                       int64_t *acc, int64_t *brow) {
    const int64_t M = s->M, N = s->N, K = s->K;
    for (int64_t i = 0; i < M * N; i++) acc[i] = 0;
    for (int64_t k = 0; k < K; k++) {
        for (int64_t n = 0; n < N; n++)
            brow[n] = pl_get_i64(b, bo + k * N + n) -
                      (zb->t ? pl_get_i64(zb->t, mmq_index(zb, b_mat, n, N)) : 0);
        for (int64_t m = 0; m < M; m++) {
            int64_t av = pl_get_i64(a, ao + m * K + k) -
                         (za->t ? pl_get_i64(za->t, mmq_index(za, a_mat, m, M)) : 0);
            if (av == 0) continue;
            int64_t *row = acc + m * N;
            for (int64_t n = 0; n < N; n++) row[n] += av * brow[n];
        }
    }
}

/* Shared driver: computes each batch's exact accumulator and hands it to `emit`. */
typedef void (*mm_emit_fn)(const pl_op_ctx *c, const linalg_mm *s, int64_t bi, int64_t a_mat,
                           int64_t b_mat, const int64_t *acc);

static pl_status mm_int_drive(const pl_op_ctx *c, const linalg_mm *s, int ia, int ib, const mmq *za,
                              const mmq *zb, mm_emit_fn emit) {
    if (pl_numel(c->out[0]) == 0) return PL_OK;
    int64_t *acc = malloc((size_t)(s->M * s->N) * sizeof(int64_t) + 1);
    int64_t *brow = malloc((size_t)s->N * sizeof(int64_t) + 1);
    if (!acc || !brow) {
        free(acc);
        free(brow);
        return pl_op_error(c, PL_ERR_NOMEM, "out of memory");
    }
    int64_t amat = s->M * s->K, bmat = s->K * s->N;
    for (int64_t bi = 0; bi < s->batch; bi++) {
        int64_t ao, bo;
        linalg_mm_offsets(s, bi, &ao, &bo);
        int64_t a_mat = amat ? ao / amat : 0, b_mat = bmat ? bo / bmat : 0;
        mm_int_acc(s, c->in[ia], ao, za, a_mat, c->in[ib], bo, zb, b_mat, acc, brow);
        emit(c, s, bi, a_mat, b_mat, acc);
    }
    free(acc);
    free(brow);
    return PL_OK;
}

static void matmulint_emit(const pl_op_ctx *c, const linalg_mm *s, int64_t bi, int64_t a_mat,
                           int64_t b_mat, const int64_t *acc) {
    (void)a_mat;
    (void)b_mat;
    int32_t *y = (int32_t *)c->out[0]->data + bi * s->M * s->N;
    for (int64_t i = 0; i < s->M * s->N; i++) y[i] = (int32_t)(uint32_t)(uint64_t)acc[i];
}

/* A constant 2-D b: the INT8 engine, int32 output. */
pl_status matmulint_prepare(pl_op_ctx *c) {
    PL_TRY(matmulint_infer(c));
    const pl_q_io io = {0, -1, 2, 1, -1, 3, -1, -1, -1};
    return pl_qmm_prepare(c, &io, PL_Q8_OUT_I32);
}

pl_status matmulint_run(pl_op_ctx *c) {
    bool done;
    PL_TRY(pl_qmm_run(c, &done));
    if (done) return PL_OK;
    linalg_mm s;
    mmq qa, qb;
    PL_TRY(linalg_mm_shape(c, 0, 1, &s));
    PL_TRY(mmq_of(c, 2, 0, true, &s, &qa));
    PL_TRY(mmq_of(c, 3, 1, false, &s, &qb));
    return mm_int_drive(c, &s, 0, 1, &qa, &qb, matmulint_emit);
}

/* QLinearMatMul inputs: a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp. */
typedef struct qlmm {
    mmq as, az, bs, bz;
} qlmm;

static pl_status qlmm_params(const pl_op_ctx *c, const linalg_mm *s, qlmm *p) {
    PL_TRY(mmq_of(c, 1, 0, true, s, &p->as));
    PL_TRY(mmq_of(c, 2, 0, true, s, &p->az));
    PL_TRY(mmq_of(c, 4, 3, false, s, &p->bs));
    PL_TRY(mmq_of(c, 5, 3, false, s, &p->bz));
    if (pl_has_in(c, 6) && pl_numel(c->in[6]) != 1)
        return pl_op_error(c, PL_ERR_UNSUPPORTED, "y_scale must be a single value");
    if (pl_has_in(c, 7) && pl_numel(c->in[7]) != 1)
        return pl_op_error(c, PL_ERR_UNSUPPORTED, "y_zero_point must be a single value");
    return PL_OK;
}

/* pillar extensions (qfused.h): pillar_out_float (no y_scale / y_zero_point, float32
 * output), pillar_bias (input 8: N int32 biases), pillar_act. */
pl_status qlinearmatmul_infer(pl_op_ctx *c) {
    const bool fout = pl_attr_int(c->node, "pillar_out_float", 0) != 0;
    const bool bias = pl_attr_int(c->node, "pillar_bias", 0) != 0;
    PL_TRY(pl_op_check_arity(c, fout ? 6 : 7, bias ? 9 : 8));
    if (!pl_has_in(c, 1) || !pl_has_in(c, 4) || (!fout && !pl_has_in(c, 6)))
        return pl_op_error(c, PL_ERR_MODEL, "inputs a_scale, b_scale and y_scale are required");
    PL_TRY(pl_op_check_dtype(c, 0, q8_types));
    PL_TRY(pl_op_check_dtype(c, 3, q8_types));
    PL_TRY(pl_op_check_float(c, 1));
    PL_TRY(pl_op_check_float(c, 4));
    if (pl_has_in(c, 6)) PL_TRY(pl_op_check_float(c, 6));
    if (bias) {
        static const pl_dtype i32[] = {PL_I32, PL_UNDEF};
        if (!pl_has_in(c, 8)) return pl_op_error(c, PL_ERR_MODEL, "pillar_bias without input 8");
        PL_TRY(pl_op_check_dtype(c, 8, i32));
    }
    float lo, hi;
    PL_TRY(pl_q_act_range(c, &lo, &hi));
    PL_TRY(pl_op_check_same_dtype(c, 0, 2));
    PL_TRY(pl_op_check_same_dtype(c, 3, 5));
    PL_TRY(pl_op_check_dtype(c, 7, q8_types));
    PL_TRY(linalg_shapes_known(c));
    linalg_mm s;
    qlmm p;
    PL_TRY(linalg_mm_shape(c, 0, 3, &s));
    PL_TRY(qlmm_params(c, &s, &p));
    if (bias && pl_numel(c->in[8]) != s.N)
        return pl_op_error(c, PL_ERR_MODEL, "bias (input 8) has %lld values, expected %lld",
                           (long long)pl_numel(c->in[8]), (long long)s.N);
    pl_op_set_out(c, 0, fout ? PL_F32 : pl_has_in(c, 7) ? c->in[7]->dtype : PL_U8, s.ndim, s.dims);
    return PL_OK;
}

/* A constant 2-D b and per-tensor a / y parameters: the INT8 engine. */
pl_status qlinearmatmul_prepare(pl_op_ctx *c) {
    PL_TRY(qlinearmatmul_infer(c));
    const bool fout = pl_attr_int(c->node, "pillar_out_float", 0) != 0;
    const bool bias = pl_attr_int(c->node, "pillar_bias", 0) != 0;
    const pl_q_io io = {0, 1, 2, 3, 4, 5, fout ? -1 : 6, fout ? -1 : 7, bias ? 8 : -1};
    pl_q8_out out = fout ? PL_Q8_OUT_F32 : c->out[0] && c->out[0]->dtype == PL_I8 ? PL_Q8_OUT_S8 : PL_Q8_OUT_U8;
    return pl_qmm_prepare(c, &io, out);
}

/* Requantisation in float32 (as runtimes do): y = round(acc * (sa * sb / sy)) + zy. */
static void qlinearmatmul_emit(const pl_op_ctx *c, const linalg_mm *s, int64_t bi, int64_t a_mat,
                               int64_t b_mat, const int64_t *acc) {
    qlmm p;
    qlmm_params(c, s, &p); /* already validated */
    pl_tensor *y = c->out[0];
    const bool fout = pl_attr_int(c->node, "pillar_out_float", 0) != 0;
    const bool bias = pl_attr_int(c->node, "pillar_bias", 0) != 0;
    float alo, ahi;
    pl_q_act_range(c, &alo, &ahi); /* checked by infer */
    float ys = fout ? 1.0f : (float)pl_get_f64(c->in[6], 0);
    double zy = pl_has_in(c, 7) ? (double)pl_get_i64(c->in[7], 0) : 0;
    int64_t lo, hi;
    linalg_int_range(y->dtype, &lo, &hi);
    int64_t base = bi * s->M * s->N;
    for (int64_t m = 0; m < s->M; m++) {
        float sa = (float)pl_get_f64(p.as.t, mmq_index(&p.as, a_mat, m, s->M));
        for (int64_t n = 0; n < s->N; n++) {
            float sb = (float)pl_get_f64(p.bs.t, mmq_index(&p.bs, b_mat, n, s->N));
            float mult = sa * sb / ys;
            int64_t a = acc[m * s->N + n] + (bias ? pl_get_i64(c->in[8], n) : 0);
            float v = (float)a * mult;
            v = v < alo / ys ? alo / ys : v > ahi / ys ? ahi / ys : v;
            if (fout) {
                ((float *)y->data)[base + m * s->N + n] = v;
                continue;
            }
            pl_set_i64(y, base + m * s->N + n, linalg_round_sat(v, zy, lo, hi));
        }
    }
}

pl_status qlinearmatmul_run(pl_op_ctx *c) {
    bool done;
    PL_TRY(pl_qmm_run(c, &done));
    if (done) return PL_OK;
    linalg_mm s;
    qlmm p;
    PL_TRY(linalg_mm_shape(c, 0, 3, &s));
    PL_TRY(qlmm_params(c, &s, &p));
    return mm_int_drive(c, &s, 0, 3, &p.az, &p.bz, qlinearmatmul_emit);
}
