/* matmul.c -- MatMul, Gemm and Det.
 *
 * float32 and float64 go straight to the GEMM kernels; float16/bfloat16 are widened to
 * float32 around the kernel; integer types are multiplied exactly in 64-bit wrapping
 * arithmetic and truncated to the output type. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/gemm/gemm.h"
#include "ops/linalg_util.h"

/* ---- shared matmul shape logic (also used by quant.c) ---- */

pl_status linalg_mm_shape(const pl_op_ctx *c, int ia, int ib, linalg_mm *s) {
    const pl_tensor *a = c->in[ia], *b = c->in[ib];
    memset(s, 0, sizeof *s);
    if (a->ndim < 1 || b->ndim < 1)
        return pl_op_error(c, PL_ERR_MODEL, "input %d is a scalar; matmul needs at least 1 dim",
                           a->ndim < 1 ? ia : ib);
    int ra = a->ndim, rb = b->ndim;
    s->M = ra >= 2 ? a->dims[ra - 2] : 1;
    s->K = a->dims[ra - 1];
    int64_t kb = rb >= 2 ? b->dims[rb - 2] : b->dims[0];
    s->N = rb >= 2 ? b->dims[rb - 1] : 1;
    if (kb != s->K)
        return pl_op_error(c, PL_ERR_INPUT,
                           "inner dimensions differ: input %d has %lld columns, input %d has "
                           "%lld rows",
                           ia, (long long)s->K, ib, (long long)kb);
    int na = ra > 2 ? ra - 2 : 0, nbb = rb > 2 ? rb - 2 : 0;
    s->nb = na > nbb ? na : nbb;
    s->b_shared = nbb == 0;
    for (int d = 0; d < s->nb; d++) {
        int da = d - (s->nb - na), db = d - (s->nb - nbb);
        int64_t x = da >= 0 ? a->dims[da] : 1, y = db >= 0 ? b->dims[db] : 1;
        if (x != y && x != 1 && y != 1)
            return pl_op_error(c, PL_ERR_INPUT,
                               "batch dimension %d differs: %lld vs %lld and neither is 1", d,
                               (long long)x, (long long)y);
        s->bdims[d] = x == 1 ? y : x;
    }
    s->batch = pl_dims_numel(s->nb, s->bdims);
    int64_t amat = pl_dims_numel(2, (int64_t[]){s->M, s->K});
    int64_t bmat = pl_dims_numel(2, (int64_t[]){s->K, s->N});
    if (s->batch < 0 || amat < 0 || bmat < 0)
        return pl_op_error(c, PL_ERR_MODEL, "matmul shape overflows");
    /* Broadcast strides of each operand's batch dims, in elements. */
    int64_t sa = amat, sb = bmat;
    for (int d = s->nb - 1; d >= 0; d--) {
        int da = d - (s->nb - na), db = d - (s->nb - nbb);
        int64_t x = da >= 0 ? a->dims[da] : 1, y = db >= 0 ? b->dims[db] : 1;
        s->astride[d] = x == 1 ? 0 : sa;
        s->bstride[d] = y == 1 ? 0 : sb;
        sa *= x;
        sb *= y;
    }
    int r = 0;
    for (int d = 0; d < s->nb; d++) s->dims[r++] = s->bdims[d];
    if (ra >= 2) s->dims[r++] = s->M;
    if (rb >= 2) s->dims[r++] = s->N;
    s->ndim = r;
    if (pl_dims_numel(r, s->dims) < 0) return pl_op_error(c, PL_ERR_MODEL, "output size overflows");
    return PL_OK;
}

void linalg_mm_offsets(const linalg_mm *s, int64_t bi, int64_t *aoff, int64_t *boff) {
    int64_t ao = 0, bo = 0;
    for (int d = s->nb - 1; d >= 0; d--) {
        int64_t i = bi % s->bdims[d];
        bi /= s->bdims[d];
        ao += i * s->astride[d];
        bo += i * s->bstride[d];
    }
    *aoff = ao;
    *boff = bo;
}

/* ---- MatMul ---- */

pl_status matmul_infer(pl_op_ctx *c) {
    static const pl_dtype ok[] = {PL_F32, PL_F64, PL_F16, PL_BF16, PL_I32, PL_I64,  PL_U32,
                                  PL_U64, PL_I8,  PL_U8,  PL_I16,  PL_U16, PL_UNDEF};
    PL_TRY(pl_op_check_arity(c, 2, 2));
    PL_TRY(pl_op_check_dtype(c, 0, ok));
    PL_TRY(pl_op_check_same_dtype(c, 0, 1));
    PL_TRY(linalg_shapes_known(c));
    linalg_mm s;
    PL_TRY(linalg_mm_shape(c, 0, 1, &s));
    pl_op_set_out(c, 0, c->in[0]->dtype, s.ndim, s.dims);
    return PL_OK;
}

/* Batched float GEMM over already-widened buffers; T is float or double. */
#define DEFINE_BATCHED(NAME, T, GEMM)                                                              \
    static void NAME(const linalg_mm *s, const T *a, const T *b, T *y) {                           \
        if (s->b_shared) { /* a's batches are consecutive rows: one big GEMM */                    \
            GEMM(false, false, s->batch * s->M, s->N, s->K, 1, a, s->K, b, s->N, 0, y, s->N);      \
            return;                                                                                \
        }                                                                                          \
        for (int64_t bi = 0; bi < s->batch; bi++) {                                                \
            int64_t ao, bo;                                                                        \
            linalg_mm_offsets(s, bi, &ao, &bo);                                                    \
            GEMM(false, false, s->M, s->N, s->K, 1, a + ao, s->K, b + bo, s->N, 0,                 \
                 y + bi * s->M * s->N, s->N);                                                      \
        }                                                                                          \
    }
DEFINE_BATCHED(batched_sgemm, float, pl_ref_sgemm)
DEFINE_BATCHED(batched_dgemm, double, pl_ref_dgemm)

static void batched_igemm(const linalg_mm *s, const int64_t *a, const int64_t *b, int64_t *y) {
    for (int64_t bi = 0; bi < s->batch; bi++) {
        int64_t ao, bo;
        linalg_mm_offsets(s, bi, &ao, &bo);
        const int64_t *pa = a + ao, *pb = b + bo;
        int64_t *py = y + bi * s->M * s->N;
        for (int64_t m = 0; m < s->M; m++)
            for (int64_t n = 0; n < s->N; n++) {
                uint64_t acc = 0; /* wraps like the fixed-width integer type */
                for (int64_t k = 0; k < s->K; k++)
                    acc += (uint64_t)pa[m * s->K + k] * (uint64_t)pb[k * s->N + n];
                py[m * s->N + n] = (int64_t)acc;
            }
    }
}

pl_status matmul_run(pl_op_ctx *c) {
    linalg_mm s;
    PL_TRY(linalg_mm_shape(c, 0, 1, &s));
    const pl_tensor *a = c->in[0], *b = c->in[1];
    pl_tensor *y = c->out[0];
    int64_t ny = pl_numel(y);
    if (ny == 0) return PL_OK;
    pl_dtype t = a->dtype;
    if (t == PL_F32) {
        batched_sgemm(&s, a->data, b->data, y->data);
        return PL_OK;
    }
    if (t == PL_F64) {
        batched_dgemm(&s, a->data, b->data, y->data);
        return PL_OK;
    }
    pl_status st;
    if (t == PL_F16 || t == PL_BF16) {
        float *fa = NULL, *fb = NULL, *fy = NULL;
        if ((st = linalg_load_f32(c, a, &fa)) == PL_OK &&
            (st = linalg_load_f32(c, b, &fb)) == PL_OK &&
            (st = linalg_load_f32(c, y, &fy)) == PL_OK) {
            batched_sgemm(&s, fa, fb, fy);
            linalg_store_f32(y, fy, ny);
        }
        free(fa);
        free(fb);
        free(fy);
        return st;
    }
    int64_t *ia = NULL, *ib = NULL, *iy = NULL;
    if ((st = linalg_load_i64(c, a, &ia)) == PL_OK && (st = linalg_load_i64(c, b, &ib)) == PL_OK &&
        (st = linalg_load_i64(c, y, &iy)) == PL_OK) {
        batched_igemm(&s, ia, ib, iy);
        for (int64_t i = 0; i < ny; i++) pl_set_i64(y, i, iy[i]);
    }
    free(ia);
    free(ib);
    free(iy);
    return st;
}

/* ---- Gemm ---- */

typedef struct gemm_shape {
    int64_t M, N, K;
    bool ta, tb;
} gemm_shape;

static pl_status gemm_check(pl_op_ctx *c, gemm_shape *g) {
    const pl_tensor *a = c->in[0], *b = c->in[1];
    if (a->ndim != 2 || b->ndim != 2)
        return pl_op_error(c, PL_ERR_MODEL, "input %d has %d dims, expected 2",
                           a->ndim != 2 ? 0 : 1, a->ndim != 2 ? a->ndim : b->ndim);
    g->ta = pl_attr_int(c->node, "transA", 0) != 0;
    g->tb = pl_attr_int(c->node, "transB", 0) != 0;
    g->M = g->ta ? a->dims[1] : a->dims[0];
    g->K = g->ta ? a->dims[0] : a->dims[1];
    int64_t kb = g->tb ? b->dims[1] : b->dims[0];
    g->N = g->tb ? b->dims[0] : b->dims[1];
    if (kb != g->K)
        return pl_op_error(c, PL_ERR_INPUT, "A is %lldx%lld (K=%lld) but B has K=%lld",
                           (long long)a->dims[0], (long long)a->dims[1], (long long)g->K,
                           (long long)kb);
    if (pl_has_in(c, 2)) {
        const pl_tensor *cc = c->in[2];
        int64_t want[2] = {g->M, g->N};
        if (cc->ndim > 2)
            return pl_op_error(c, PL_ERR_MODEL, "input C has %d dims, expected at most 2",
                               cc->ndim);
        for (int d = 0; d < cc->ndim; d++) {
            int64_t w = want[2 - cc->ndim + d];
            if (cc->dims[d] != w && cc->dims[d] != 1)
                return pl_op_error(c, PL_ERR_INPUT,
                                   "input C dim %d is %lld, cannot broadcast to %lldx%lld", d,
                                   (long long)cc->dims[d], (long long)g->M, (long long)g->N);
        }
    }
    return PL_OK;
}

pl_status gemm_infer(pl_op_ctx *c) {
    static const pl_dtype ok[] = {PL_F32, PL_F64, PL_F16, PL_BF16, PL_I32,
                                  PL_I64, PL_U32, PL_U64, PL_UNDEF};
    PL_TRY(pl_op_check_arity(c, 2, 3));
    PL_TRY(pl_op_check_dtype(c, 0, ok));
    PL_TRY(pl_op_check_same_dtype(c, 0, 1));
    PL_TRY(pl_op_check_same_dtype(c, 0, 2));
    PL_TRY(linalg_shapes_known(c));
    gemm_shape g;
    PL_TRY(gemm_check(c, &g));
    pl_op_set_out(c, 0, c->in[0]->dtype, 2, (int64_t[]){g.M, g.N});
    return PL_OK;
}

/* Index into C (rank <= 2, broadcast to M x N) for output element (m, n). */
static int64_t gemm_c_index(const pl_tensor *cc, int64_t m, int64_t n) {
    if (cc->ndim == 0) return 0;
    if (cc->ndim == 1) return cc->dims[0] == 1 ? 0 : n;
    int64_t rm = cc->dims[0] == 1 ? 0 : m, rn = cc->dims[1] == 1 ? 0 : n;
    return rm * cc->dims[1] + rn;
}

pl_status gemm_run(pl_op_ctx *c) {
    gemm_shape g;
    PL_TRY(gemm_check(c, &g));
    const pl_tensor *a = c->in[0], *b = c->in[1], *cc = pl_has_in(c, 2) ? c->in[2] : NULL;
    pl_tensor *y = c->out[0];
    double alpha = pl_attr_float(c->node, "alpha", 1.0f);
    double beta = pl_attr_float(c->node, "beta", 1.0f);
    int64_t M = g.M, N = g.N, K = g.K, ny = M * N;
    if (ny == 0) return PL_OK;
    int64_t lda = a->dims[1], ldb = b->dims[1];
    bool use_c = cc && beta != 0;
    pl_dtype t = a->dtype;
    pl_status st = PL_OK;
    if (t == PL_F32 || t == PL_F16 || t == PL_BF16) {
        float *fa = NULL, *fb = NULL, *wy = NULL, *fy = y->data;
        const float *pa = a->data, *pb = b->data;
        if (t != PL_F32) {
            if ((st = linalg_load_f32(c, a, &fa)) == PL_OK &&
                (st = linalg_load_f32(c, b, &fb)) == PL_OK)
                st = linalg_load_f32(c, y, &wy);
            pa = fa;
            pb = fb;
            fy = wy;
        }
        if (st == PL_OK) {
            if (use_c)
                for (int64_t m = 0; m < M; m++)
                    for (int64_t n = 0; n < N; n++)
                        fy[m * N + n] = (float)pl_get_f64(cc, gemm_c_index(cc, m, n));
            pl_ref_sgemm(g.ta, g.tb, M, N, K, (float)alpha, pa, lda, pb, ldb,
                         use_c ? (float)beta : 0.0f, fy, N);
            if (t != PL_F32) linalg_store_f32(y, fy, ny);
        }
        free(fa);
        free(fb);
        free(wy);
        return st;
    }
    if (t == PL_F64) {
        double *dy = y->data;
        if (use_c)
            for (int64_t m = 0; m < M; m++)
                for (int64_t n = 0; n < N; n++)
                    dy[m * N + n] = pl_get_f64(cc, gemm_c_index(cc, m, n));
        pl_ref_dgemm(g.ta, g.tb, M, N, K, alpha, a->data, lda, b->data, ldb, use_c ? beta : 0.0, dy,
                     N);
        return PL_OK;
    }
    /* Integer types: exact product, then alpha/beta (exact when they are 1 and 1). */
    int64_t *ia = NULL, *ib = NULL;
    if ((st = linalg_load_i64(c, a, &ia)) == PL_OK && (st = linalg_load_i64(c, b, &ib)) == PL_OK) {
        bool exact = alpha == 1.0 && (beta == 1.0 || !use_c);
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) {
                uint64_t acc = 0;
                for (int64_t k = 0; k < K; k++) {
                    int64_t av = g.ta ? ia[k * lda + m] : ia[m * lda + k];
                    int64_t bv = g.tb ? ib[n * ldb + k] : ib[k * ldb + n];
                    acc += (uint64_t)av * (uint64_t)bv;
                }
                if (exact) {
                    if (use_c) acc += (uint64_t)pl_get_i64(cc, gemm_c_index(cc, m, n));
                    pl_set_i64(y, m * N + n, (int64_t)acc);
                } else {
                    double v = alpha * (double)(int64_t)acc;
                    if (use_c) v += beta * pl_get_f64(cc, gemm_c_index(cc, m, n));
                    pl_set_f64(y, m * N + n, v);
                }
            }
    }
    free(ia);
    free(ib);
    return st;
}

/* ---- Det ---- */

pl_status det_infer(pl_op_ctx *c) {
    PL_TRY(pl_op_check_arity(c, 1, 1));
    PL_TRY(pl_op_check_float(c, 0));
    PL_TRY(linalg_shapes_known(c));
    const pl_tensor *x = c->in[0];
    if (x->ndim < 2)
        return pl_op_error(c, PL_ERR_MODEL, "input has %d dims, expected at least 2", x->ndim);
    if (x->dims[x->ndim - 1] != x->dims[x->ndim - 2])
        return pl_op_error(c, PL_ERR_INPUT, "input matrices are %lldx%lld, not square",
                           (long long)x->dims[x->ndim - 2], (long long)x->dims[x->ndim - 1]);
    pl_op_set_out(c, 0, x->dtype, x->ndim - 2, x->dims);
    return PL_OK;
}

/* Determinant by LU decomposition with partial pivoting, in double, in place. */
static double det_lu(double *a, int64_t n) {
    double det = 1;
    for (int64_t k = 0; k < n; k++) {
        int64_t p = k;
        for (int64_t i = k + 1; i < n; i++)
            if (fabs(a[i * n + k]) > fabs(a[p * n + k])) p = i;
        if (a[p * n + k] == 0) return 0;
        if (p != k) {
            for (int64_t j = 0; j < n; j++) {
                double t = a[k * n + j];
                a[k * n + j] = a[p * n + j];
                a[p * n + j] = t;
            }
            det = -det;
        }
        double piv = a[k * n + k];
        det *= piv;
        for (int64_t i = k + 1; i < n; i++) {
            double f = a[i * n + k] / piv;
            if (f == 0) continue;
            for (int64_t j = k + 1; j < n; j++) a[i * n + j] -= f * a[k * n + j];
        }
    }
    return det;
}

pl_status det_run(pl_op_ctx *c) {
    const pl_tensor *x = c->in[0];
    pl_tensor *y = c->out[0];
    int64_t n = x->dims[x->ndim - 1], nb = pl_numel(y);
    double *buf = NULL;
    PL_TRY(linalg_load_f64(c, x, &buf));
    for (int64_t b = 0; b < nb; b++) pl_set_f64(y, b, det_lu(buf + b * n * n, n));
    free(buf);
    return PL_OK;
}
