/* matmul.c -- MatMul, Gemm and Det.
 *
 * float32 runs on the packed, threaded SGEMM (kernels/gemm/sgemm.h): constant weights
 * are packed once at session creation (prepare), the fused epilogue of graph/passes.h
 * (scale, column bias, residual, activation) is applied on each tile while it is in
 * cache, and batched MatMuls (attention) give each thread whole GEMMs. A constant weight
 * that is sparse enough runs on the sparse kernels instead (matmul_sparse.c). float64 and
 * float16/bfloat16 (widened to float32) use the reference GEMM; integer types are
 * multiplied exactly in 64-bit wrapping arithmetic and truncated to the output type.
 * Those paths apply the fused epilogue afterwards, element by element. */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/threadpool.h"
#include "kernels/eltwise/eltwise.h"
#include "kernels/gemm/gemm.h"
#include "kernels/gemm/sgemm.h"
#include "kernels/gemm/strassen.h"
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

/* ---- fused epilogue (the convention of graph/passes.h) ---- */

typedef struct mm_epi {
    int act;        /* PL_ACT_* of kernels/eltwise.h; PL_ACT_IDENTITY: none */
    float act_alpha, act_beta;
    float scale;    /* MatMul's pillar_alpha */
    int bias;       /* input index of the column bias (MatMul), or -1 */
    int res;        /* input index of the residual, or -1 */
} mm_epi;

static const struct {
    const char *name;
    int kind;
    pl_sgemm_act sgemm; /* PL_SGEMM_ACT_NONE: applied after the GEMM */
    float alpha, beta;  /* defaults of pillar_act_alpha / pillar_act_beta */
} mm_acts[] = {
    {"Relu", PL_ACT_RELU, PL_SGEMM_ACT_RELU, 0, 0},
    {"Clip", PL_ACT_CLIP, PL_SGEMM_ACT_CLIP, -INFINITY, INFINITY},
    {"LeakyRelu", PL_ACT_LEAKY_RELU, PL_SGEMM_ACT_LEAKY_RELU, 0.01f, 0},
    {"Sigmoid", PL_ACT_SIGMOID, PL_SGEMM_ACT_SIGMOID, 0, 0},
    {"HardSigmoid", PL_ACT_HARD_SIGMOID, PL_SGEMM_ACT_NONE, 0.2f, 0.5f},
    {"HardSwish", PL_ACT_HARD_SWISH, PL_SGEMM_ACT_HARDSWISH, 0, 0},
    {"Tanh", PL_ACT_TANH, PL_SGEMM_ACT_NONE, 0, 0},
    {"Gelu", PL_ACT_GELU, PL_SGEMM_ACT_GELU_ERF, 0, 0},
    {"GeluTanh", PL_ACT_GELU_TANH, PL_SGEMM_ACT_GELU_TANH, 0, 0},
};
#define MM_NACTS ((int)(sizeof mm_acts / sizeof mm_acts[0]))

/* Reads the fused-epilogue attributes and checks the extra inputs' presence. MatMul's
 * own inputs are A, B and (pillar_bias) a bias; Gemm's A, B, C; the residual, when
 * pillar_residual is set, is input 3 of both. */
static pl_status mm_epi_read(const pl_op_ctx *c, bool matmul, mm_epi *e) {
    const pl_node *n = c->node;
    e->act = PL_ACT_IDENTITY;
    e->act_alpha = e->act_beta = 0.0f;
    e->scale = matmul ? pl_attr_float(n, "pillar_alpha", 1.0f) : 1.0f;
    e->bias = e->res = -1;
    const char *a = pl_attr_str(n, "pillar_act", NULL);
    if (a) {
        int k = 0;
        while (k < MM_NACTS && strcmp(mm_acts[k].name, a)) k++;
        if (k == MM_NACTS)
            return pl_op_error(c, PL_ERR_UNSUPPORTED, "attribute 'pillar_act' = '%s' is not supported", a);
        e->act = mm_acts[k].kind;
        e->act_alpha = pl_attr_float(n, "pillar_act_alpha", mm_acts[k].alpha);
        e->act_beta = pl_attr_float(n, "pillar_act_beta", mm_acts[k].beta);
    }
    bool res = pl_attr_int(n, "pillar_residual", 0) != 0;
    bool bias = matmul && pl_attr_int(n, "pillar_bias", 0) != 0;
    int own = matmul ? (bias ? 3 : 2) : 3;
    PL_TRY(pl_op_check_arity(c, 2, res ? 4 : own));
    if (matmul && bias && !pl_has_in(c, 2))
        return pl_op_error(c, PL_ERR_MODEL, "pillar_bias is set but input 2 is missing");
    if (matmul && !bias && pl_has_in(c, 2))
        return pl_op_error(c, PL_ERR_MODEL, "has 3 inputs, takes 2");
    if (res && !pl_has_in(c, 3))
        return pl_op_error(c, PL_ERR_MODEL, "pillar_residual is set but input 3 is missing");
    if (bias) e->bias = 2;
    if (res) e->res = 3;
    return PL_OK;
}

/* Checks the bias (N values) and residual (the output's shape) against the output. */
static pl_status mm_epi_check(const pl_op_ctx *c, const mm_epi *e, pl_dtype t, int ndim,
                              const int64_t *dims) {
    char s1[128], s2[128];
    if (e->bias >= 0) {
        const pl_tensor *b = c->in[e->bias];
        int64_t N = ndim > 0 ? dims[ndim - 1] : 1;
        if (b->dtype != t)
            return pl_op_error(c, PL_ERR_MODEL, "bias is %s, expected %s", pl_dtype_name(b->dtype), pl_dtype_name(t));
        if (pl_numel(b) != N)
            return pl_op_error(c, PL_ERR_MODEL, "bias has shape %s, expected %lld values",
                               pl_shape_str(b, s1, sizeof s1), (long long)N);
    }
    if (e->res >= 0) {
        const pl_tensor *r = c->in[e->res];
        pl_tensor want = {.dtype = t, .ndim = ndim};
        memcpy(want.dims, dims, sizeof(int64_t) * (size_t)ndim);
        if (r->dtype != t)
            return pl_op_error(c, PL_ERR_MODEL, "residual is %s, expected %s", pl_dtype_name(r->dtype), pl_dtype_name(t));
        if (!pl_tensor_same_shape(r, &want))
            return pl_op_error(c, PL_ERR_MODEL, "residual has shape %s, expected %s",
                               pl_shape_str(r, s1, sizeof s1), pl_shape_str(&want, s2, sizeof s2));
    }
    return PL_OK;
}

static bool mm_epi_any(const mm_epi *e) {
    return e->act != PL_ACT_IDENTITY || e->scale != 1.0f || e->bias >= 0 || e->res >= 0;
}

/* The epilogue on an already computed output of any non-float32 type, element by
 * element: floats in double, integers exactly in 64-bit wrapping arithmetic. */
static void mm_epi_generic(const pl_op_ctx *c, const mm_epi *e, pl_tensor *y) {
    if (!mm_epi_any(e)) return;
    int64_t ny = pl_numel(y), N = y->ndim > 0 ? y->dims[y->ndim - 1] : 1;
    const pl_tensor *b = e->bias >= 0 ? c->in[e->bias] : NULL, *r = e->res >= 0 ? c->in[e->res] : NULL;
    bool ints = pl_dtype_is_int(y->dtype) || y->dtype == PL_BOOL;
    for (int64_t i = 0; i < ny; i++) {
        if (ints && e->scale == 1.0f && (e->act == PL_ACT_IDENTITY || e->act == PL_ACT_RELU)) {
            uint64_t v = (uint64_t)pl_get_i64(y, i);
            if (b) v += (uint64_t)pl_get_i64(b, N ? i % N : 0);
            if (r) v += (uint64_t)pl_get_i64(r, i);
            int64_t s = (int64_t)v;
            if (e->act == PL_ACT_RELU && pl_dtype_is_signed(y->dtype) && s < 0) s = 0;
            pl_set_i64(y, i, s);
            continue;
        }
        double v = pl_get_f64(y, i) * e->scale;
        if (b) v += pl_get_f64(b, N ? i % N : 0);
        if (r) v += pl_get_f64(r, i);
        pl_ref_act_f64(e->act, e->act_alpha, e->act_beta, &v, &v, 1);
        pl_set_f64(y, i, v);
    }
}

/* The sgemm epilogue for e (bias/residual pointers set by the caller); *post is the
 * activation the GEMM cannot apply, to run afterwards. */
static void mm_sgemm_epi(const mm_epi *e, pl_sgemm_epilogue *ep, int *post) {
    memset(ep, 0, sizeof *ep);
    *post = PL_ACT_IDENTITY;
    for (int k = 0; k < MM_NACTS; k++) {
        if (mm_acts[k].kind != e->act) continue;
        ep->act = mm_acts[k].sgemm;
        if (ep->act == PL_SGEMM_ACT_NONE) *post = e->act;
    }
    ep->act_alpha = e->act_alpha;
    ep->act_min = e->act_alpha;
    ep->act_max = e->act_beta;
}

/* Activations the GEMM epilogue lacks, in place over n floats, threaded in chunks. */
typedef struct post_job {
    float *y;
    int64_t n, chunk;
    const mm_epi *e;
} post_job;

static void post_task(void *ctx, int t, int thread) {
    (void)thread;
    post_job *j = ctx;
    int64_t i0 = (int64_t)t * j->chunk, i1 = i0 + j->chunk < j->n ? i0 + j->chunk : j->n;
    pl_ref_act_f32(j->e->act, j->e->act_alpha, j->e->act_beta, j->y + i0, j->y + i0, (size_t)(i1 - i0));
}

static void mm_post_act(pl_op_ctx *c, const mm_epi *e, float *y, int64_t n) {
    post_job j = {y, n, 16384, e};
    pl_threadpool_run(c->pool, post_task, &j, (int)((n + j.chunk - 1) / j.chunk));
}

/* ---- prepared state: packed constant operands ---- */

typedef struct mm_state {
    void *packed;   /* packed B, or packed A (Gemm with only A constant) */
    bool is_a;
    int64_t rows, K; /* the packed operand's M (A) or N (B), and K */
    float *cbias;   /* Gemm: beta * C as a column bias, when C is a constant row */
    mm_sparse *sparse; /* the weight packed sparse (matmul_sparse.c) instead */
    void *strassen;    /* the weight packed for one Strassen level (kernels/gemm/strassen.h) */
} mm_state;

static void mm_state_free(mm_state *s) {
    if (!s) return;
    free(s->packed);
    free(s->cbias);
    free(s->strassen);
    mm_sparse_free(s->sparse);
    free(s);
}

void matmul_release(void *state) { mm_state_free(state); }
void gemm_release(void *state) { mm_state_free(state); }

/* Packs op(X) (rows x K; A when is_a, else B) into a new state. other: the run's other
 * dimension (M for B) when known, else 0; the packer picks the layout and K blocking
 * that run fastest with it. */
static pl_status mm_pack(const pl_op_ctx *c, mm_state *st, bool is_a, bool trans, int64_t rows,
                         int64_t K, const float *X, int64_t ld, int64_t other) {
    size_t size = is_a ? pl_sgemm_packed_a_size(rows, K) : pl_sgemm_packed_b_size(K, rows);
    if (size == 0 || rows == 0 || K == 0) return PL_OK;
    void *buf = malloc(size);
    if (!buf) return pl_op_error(c, PL_ERR_NOMEM, "out of memory packing weights (%zu bytes)", size);
    pl_status s = is_a ? pl_sgemm_pack_a_hint(trans, rows, K, X, ld, other, buf, size)
                       : pl_sgemm_pack_b_hint(trans, K, rows, X, ld, other, buf, size);
    if (s != PL_OK) {
        free(buf);
        return s;
    }
    st->packed = buf;
    st->is_a = is_a;
    st->rows = rows;
    st->K = K;
    return PL_OK;
}

/* One Strassen level (12.5% fewer multiply-adds) for big constant weights: PILLAR_STRASSEN=0
 * never, =1 whenever the shapes allow (even K and N), else (auto) on AVX-512 for weights
 * of at least STRASSEN_MIN_KN in both dimensions and STRASSEN_MIN_KXN elements (BERT's
 * FFN: 768 x 3072 and 3072 x 768) and runs of STRASSEN_MIN_M rows or more, where it
 * measured faster (bench/strassen_bench: 3-7% on the FFN shapes, 0-3% on 768 x 768,
 * which would not pay for the 1.75x packed size). BERT-like, per-layer CPU time in one
 * process (layer_bench --ab): the down-projections 5-7% faster, the up-projections 4%
 * (5.82 -> 5.60 ms median). Taking the up-projections too puts BERT's peak RSS at 509 MB
 * (ONNX Runtime 586-717): affordable since the embedding table is mapped, not read
 * (src/onnx/import.c), before which it was 600 MB. */
#define STRASSEN_MIN_KN 512
#define STRASSEN_MIN_M 32
#define STRASSEN_MIN_KXN (2.0 * 1024 * 1024)

static bool mm_strassen_wanted(int64_t M, int64_t K, int64_t N) {
    if (K < 2 || N < 2 || (K & 1) || (N & 1) || M < 1) return false;
    const char *env = getenv("PILLAR_STRASSEN");
    if (env && env[0] == '0') return false;
    if (env && env[0] == '1') return true;
    return pl_cpu_isa() >= PL_ISA_AVX512 && K >= STRASSEN_MIN_KN && N >= STRASSEN_MIN_KN &&
           (double)K * (double)N >= STRASSEN_MIN_KXN && M >= STRASSEN_MIN_M;
}

static pl_status mm_strassen_prepare(pl_op_ctx *c, mm_state *st, const float *B, int64_t M,
                                     int64_t K, int64_t N) {
    size_t size = pl_strassen_packed_size(K, N, M);
    void *buf = size ? malloc(size) : NULL;
    if (!buf)
        return pl_op_error(c, PL_ERR_NOMEM, "out of memory packing weights (%zu bytes)", size);
    pl_status r = pl_strassen_pack(K, N, B, N, M, buf, size);
    if (r != PL_OK) {
        free(buf);
        return r;
    }
    st->strassen = buf;
    st->rows = N;
    st->K = K;
    size_t scratch = pl_strassen_scratch_size(M, K, N);
    if (c->scratch_size < scratch) c->scratch_size = scratch;
    return PL_OK;
}

/* ---- MatMul ---- */

pl_status matmul_infer(pl_op_ctx *c) {
    static const pl_dtype ok[] = {PL_F32, PL_F64, PL_F16, PL_BF16, PL_I32, PL_I64,  PL_U32,
                                  PL_U64, PL_I8,  PL_U8,  PL_I16,  PL_U16, PL_UNDEF};
    mm_epi e;
    PL_TRY(mm_epi_read(c, true, &e));
    PL_TRY(pl_op_check_dtype(c, 0, ok));
    PL_TRY(pl_op_check_same_dtype(c, 0, 1));
    PL_TRY(linalg_shapes_known(c));
    linalg_mm s;
    PL_TRY(linalg_mm_shape(c, 0, 1, &s));
    PL_TRY(mm_epi_check(c, &e, c->in[0]->dtype, s.ndim, s.dims));
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

pl_status matmul_prepare(pl_op_ctx *c) {
    const pl_tensor *a = c->in[0], *b = c->in[1];
    if (a->dtype != PL_F32 || !b->data) return PL_OK;
    linalg_mm s;
    PL_TRY(linalg_mm_shape(c, 0, 1, &s));
    if (!s.b_shared || s.batch * s.M == 0) return PL_OK;
    mm_state *st = calloc(1, sizeof *st);
    if (!st) return pl_op_error(c, PL_ERR_NOMEM, "out of memory");
    mm_epi e;
    pl_status r = mm_epi_read(c, true, &e);
    if (r == PL_OK)
        r = mm_sparse_prepare(c, b->data, s.N, s.K, 1, s.N, s.batch * s.M, e.scale, mm_sparse_mode(),
                              &st->sparse, &c->scratch_size);
    if (r == PL_OK && st->sparse) {
        c->packed_inputs |= 1u << 1;
        c->state = st;
        return PL_OK;
    }
    if (r == PL_OK && mm_strassen_wanted(s.batch * s.M, s.K, s.N)) {
        r = mm_strassen_prepare(c, st, b->data, s.batch * s.M, s.K, s.N);
        if (r == PL_OK) {
            c->state = st;
            c->packed_inputs |= 1u << 1;
            snprintf(c->kernel, sizeof c->kernel, "sgemm strassen");
            return PL_OK;
        }
    }
    if (r == PL_OK) r = mm_pack(c, st, false, false, s.N, s.K, b->data, s.N, s.batch * s.M);
    if (r != PL_OK || !st->packed) {
        mm_state_free(st);
        return r;
    }
    c->state = st;
    c->packed_inputs |= 1u << 1; /* run() reads the packed copy only (static shapes) */
    snprintf(c->kernel, sizeof c->kernel, "sgemm");
    return PL_OK;
}

/* One GEMM of a batched MatMul per task, each on one thread. */
typedef struct mm_batch_job {
    const linalg_mm *s;
    const float *A, *B, *res;
    float *Y;
    float alpha;
    const pl_sgemm_epilogue *ep;
    atomic_int failed;
} mm_batch_job;

static pl_status mm_batch_one(const mm_batch_job *j, int64_t bi, pl_threadpool *pool) {
    const linalg_mm *s = j->s;
    int64_t ao, bo, yo = bi * s->M * s->N;
    linalg_mm_offsets(s, bi, &ao, &bo);
    pl_sgemm_epilogue ep = *j->ep;
    if (j->res) {
        ep.residual = j->res + yo;
        ep.ld_residual = s->N;
    }
    pl_sgemm_args g = {.M = s->M, .N = s->N, .K = s->K, .alpha = j->alpha, .beta = 0.0f,
                       .A = j->A + ao, .lda = s->K, .B = j->B + bo, .ldb = s->N,
                       .C = j->Y + yo, .ldc = s->N, .epilogue = &ep, .pool = pool};
    return pl_sgemm_run(&g);
}

static void mm_batch_task(void *ctx, int t, int thread) {
    (void)thread;
    mm_batch_job *j = ctx;
    if (mm_batch_one(j, t, NULL) != PL_OK) atomic_store(&j->failed, 1);
}

static pl_status matmul_f32(pl_op_ctx *c, const linalg_mm *s, const mm_epi *e) {
    const mm_state *st = c->state;
    pl_tensor *y = c->out[0];
    pl_sgemm_epilogue ep;
    int post;
    mm_sgemm_epi(e, &ep, &post);
    if (e->bias >= 0) ep.col_bias = c->in[e->bias]->data;
    const float *res = e->res >= 0 ? c->in[e->res]->data : NULL;
    if (st && st->sparse && s->b_shared) {
        if (res) {
            ep.residual = res;
            ep.ld_residual = s->N;
        }
        PL_TRY(mm_sparse_run(c, st->sparse, s->batch * s->M, c->in[0]->data, s->K, false, y->data, &ep));
    } else if (s->b_shared) { /* a's batches are consecutive rows: one big GEMM */
        if (res) {
            ep.residual = res;
            ep.ld_residual = s->N;
        }
        if (st && st->strassen && st->rows == s->N && st->K == s->K) {
            PL_TRY(pl_strassen_run(s->batch * s->M, s->N, s->K, e->scale, c->in[0]->data, s->K,
                                   st->strassen, y->data, s->N, &ep, c->pool, c->scratch,
                                   c->scratch_size));
            if (post != PL_ACT_IDENTITY) mm_post_act(c, e, y->data, pl_numel(y));
            return PL_OK;
        }
        bool packed = st && st->packed && !st->is_a && st->rows == s->N && st->K == s->K;
        pl_sgemm_args g = {.M = s->batch * s->M, .N = s->N, .K = s->K, .alpha = e->scale,
                           .beta = 0.0f, .A = c->in[0]->data, .lda = s->K,
                           .B = packed ? NULL : c->in[1]->data, .ldb = s->N,
                           .packed_b = packed ? st->packed : NULL, .C = y->data, .ldc = s->N,
                           .epilogue = &ep, .pool = c->pool};
        PL_TRY(pl_sgemm_run(&g));
    } else {
        mm_batch_job j = {.s = s, .A = c->in[0]->data, .B = c->in[1]->data, .res = res,
                          .Y = y->data, .alpha = e->scale, .ep = &ep};
        atomic_init(&j.failed, 0);
        int nt = pl_threadpool_size(c->pool);
        /* whole GEMMs per thread when there are enough of them to share out evenly */
        if (nt > 1 && s->batch <= INT32_MAX && (s->batch >= 4 * nt || s->batch % nt == 0)) {
            pl_threadpool_run(c->pool, mm_batch_task, &j, (int)s->batch);
            if (atomic_load(&j.failed)) return pl_op_error(c, PL_ERR_NOMEM, "out of memory in the GEMM");
        } else {
            for (int64_t bi = 0; bi < s->batch; bi++) PL_TRY(mm_batch_one(&j, bi, c->pool));
        }
    }
    if (post != PL_ACT_IDENTITY) mm_post_act(c, e, y->data, pl_numel(y));
    return PL_OK;
}

pl_status matmul_run(pl_op_ctx *c) {
    mm_epi e;
    PL_TRY(mm_epi_read(c, true, &e));
    linalg_mm s;
    PL_TRY(linalg_mm_shape(c, 0, 1, &s));
    const pl_tensor *a = c->in[0], *b = c->in[1];
    pl_tensor *y = c->out[0];
    PL_TRY(mm_epi_check(c, &e, a->dtype, y->ndim, y->dims));
    int64_t ny = pl_numel(y);
    if (ny == 0) return PL_OK;
    pl_dtype t = a->dtype;
    if (t == PL_F32) return matmul_f32(c, &s, &e);
    if (t == PL_F64) {
        batched_dgemm(&s, a->data, b->data, y->data);
        mm_epi_generic(c, &e, y);
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
            mm_epi_generic(c, &e, y);
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
        mm_epi_generic(c, &e, y);
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
    mm_epi e;
    PL_TRY(mm_epi_read(c, false, &e));
    PL_TRY(pl_op_check_dtype(c, 0, ok));
    PL_TRY(pl_op_check_same_dtype(c, 0, 1));
    PL_TRY(pl_op_check_same_dtype(c, 0, 2));
    PL_TRY(linalg_shapes_known(c));
    gemm_shape g;
    PL_TRY(gemm_check(c, &g));
    int64_t dims[2] = {g.M, g.N};
    PL_TRY(mm_epi_check(c, &e, c->in[0]->dtype, 2, dims));
    pl_op_set_out(c, 0, c->in[0]->dtype, 2, dims);
    return PL_OK;
}

/* Index into C (rank <= 2, broadcast to M x N) for output element (m, n). */
static int64_t gemm_c_index(const pl_tensor *cc, int64_t m, int64_t n) {
    if (cc->ndim == 0) return 0;
    if (cc->ndim == 1) return cc->dims[0] == 1 ? 0 : n;
    int64_t rm = cc->dims[0] == 1 ? 0 : m, rn = cc->dims[1] == 1 ? 0 : n;
    return rm * cc->dims[1] + rn;
}

/* C is the same for every row (a bias along N). */
static bool gemm_c_is_row(const pl_tensor *cc) { return cc->ndim < 2 || cc->dims[0] == 1; }

pl_status gemm_prepare(pl_op_ctx *c) {
    const pl_tensor *a = c->in[0], *b = c->in[1], *cc = pl_has_in(c, 2) ? c->in[2] : NULL;
    if (a->dtype != PL_F32) return PL_OK;
    gemm_shape g;
    PL_TRY(gemm_check(c, &g));
    if (g.M == 0 || g.N == 0) return PL_OK;
    float beta = pl_attr_float(c->node, "beta", 1.0f);
    mm_state *st = calloc(1, sizeof *st);
    if (!st) return pl_op_error(c, PL_ERR_NOMEM, "out of memory");
    pl_status r = PL_OK;
    /* the sparse path takes C only as a column bias */
    bool c_ok = !cc || beta == 0 || (gemm_c_is_row(cc) && (cc->data || (beta == 1.0f && pl_numel(cc) == g.N)));
    if (b->data && b->dtype == PL_F32 && c_ok)
        r = mm_sparse_prepare(c, b->data, g.N, g.K, g.tb ? b->dims[1] : 1, g.tb ? 1 : b->dims[1], g.M,
                              pl_attr_float(c->node, "alpha", 1.0f), mm_sparse_mode(), &st->sparse,
                              &c->scratch_size);
    if (r == PL_OK && st->sparse) c->packed_inputs |= 1u << 1;
    else if (r == PL_OK && b->data)
        r = mm_pack(c, st, false, g.tb, g.N, g.K, b->data, b->dims[1], 0);
    else if (r == PL_OK && a->data)
        r = mm_pack(c, st, true, g.ta, g.M, g.K, a->data, a->dims[1], 0);
    if (r == PL_OK && cc && cc->data && beta != 0 && gemm_c_is_row(cc)) {
        st->cbias = malloc((size_t)g.N * sizeof(float));
        if (!st->cbias) r = pl_op_error(c, PL_ERR_NOMEM, "out of memory");
        for (int64_t n = 0; r == PL_OK && n < g.N; n++)
            st->cbias[n] = beta * ((const float *)cc->data)[gemm_c_index(cc, 0, n)];
    }
    if (r != PL_OK || (!st->packed && !st->cbias && !st->sparse)) {
        mm_state_free(st);
        return r;
    }
    if (st->packed) {
        c->packed_inputs |= st->is_a ? 1u : 1u << 1;
        if (!c->kernel[0]) snprintf(c->kernel, sizeof c->kernel, "sgemm");
    }
    if (st->cbias) c->packed_inputs |= 1u << 2;
    c->state = st;
    return PL_OK;
}

static pl_status gemm_f32(pl_op_ctx *c, const gemm_shape *g, const mm_epi *e) {
    const mm_state *st = c->state;
    const pl_tensor *a = c->in[0], *b = c->in[1], *cc = pl_has_in(c, 2) ? c->in[2] : NULL;
    pl_tensor *y = c->out[0];
    float alpha = pl_attr_float(c->node, "alpha", 1.0f), beta = pl_attr_float(c->node, "beta", 1.0f);
    int64_t M = g->M, N = g->N;
    float *fy = y->data;
    pl_sgemm_epilogue ep;
    int post;
    mm_sgemm_epi(e, &ep, &post);
    float gbeta = 0.0f;
    if (cc && beta != 0) {
        if (st && st->cbias) {
            ep.col_bias = st->cbias;
        } else if (gemm_c_is_row(cc) && beta == 1.0f && pl_numel(cc) == N) {
            ep.col_bias = cc->data;
        } else { /* C broadcast into Y, then Y = alpha AB + beta Y */
            const float *cd = cc->data;
            for (int64_t m = 0; m < M; m++)
                for (int64_t n = 0; n < N; n++) fy[m * N + n] = cd[gemm_c_index(cc, m, n)];
            gbeta = beta;
        }
    }
    if (e->res >= 0) {
        ep.residual = c->in[e->res]->data;
        ep.ld_residual = N;
    }
    if (st && st->sparse) {
        if (gbeta != 0) return pl_op_error(c, PL_ERR_INTERNAL, "sparse Gemm with a full C");
        PL_TRY(mm_sparse_run(c, st->sparse, M, a->data, a->dims[1], g->ta, fy, &ep));
        if (post != PL_ACT_IDENTITY) mm_post_act(c, e, fy, M * N);
        return PL_OK;
    }
    bool pa = st && st->packed && st->is_a && st->rows == M && st->K == g->K;
    bool pb = st && st->packed && !st->is_a && st->rows == N && st->K == g->K;
    pl_sgemm_args ga = {.M = M, .N = N, .K = g->K, .alpha = alpha, .beta = gbeta,
                        .A = pa ? NULL : a->data, .lda = a->dims[1], .trans_a = g->ta,
                        .packed_a = pa ? st->packed : NULL,
                        .B = pb ? NULL : b->data, .ldb = b->dims[1], .trans_b = g->tb,
                        .packed_b = pb ? st->packed : NULL,
                        .C = fy, .ldc = N, .epilogue = &ep, .pool = c->pool};
    PL_TRY(pl_sgemm_run(&ga));
    if (post != PL_ACT_IDENTITY) mm_post_act(c, e, fy, M * N);
    return PL_OK;
}

pl_status gemm_run(pl_op_ctx *c) {
    mm_epi e;
    PL_TRY(mm_epi_read(c, false, &e));
    gemm_shape g;
    PL_TRY(gemm_check(c, &g));
    const pl_tensor *a = c->in[0], *b = c->in[1], *cc = pl_has_in(c, 2) ? c->in[2] : NULL;
    pl_tensor *y = c->out[0];
    PL_TRY(mm_epi_check(c, &e, a->dtype, 2, (int64_t[]){g.M, g.N}));
    double alpha = pl_attr_float(c->node, "alpha", 1.0f);
    double beta = pl_attr_float(c->node, "beta", 1.0f);
    int64_t M = g.M, N = g.N, K = g.K, ny = M * N;
    if (ny == 0) return PL_OK;
    int64_t lda = a->dims[1], ldb = b->dims[1];
    bool use_c = cc && beta != 0;
    pl_dtype t = a->dtype;
    pl_status st = PL_OK;
    if (t == PL_F32) return gemm_f32(c, &g, &e);
    if (t == PL_F16 || t == PL_BF16) {
        float *fa = NULL, *fb = NULL, *wy = NULL, *fy = NULL;
        if ((st = linalg_load_f32(c, a, &fa)) == PL_OK &&
            (st = linalg_load_f32(c, b, &fb)) == PL_OK)
            st = linalg_load_f32(c, y, &wy);
        fy = wy;
        if (st == PL_OK) {
            if (use_c)
                for (int64_t m = 0; m < M; m++)
                    for (int64_t n = 0; n < N; n++)
                        fy[m * N + n] = (float)pl_get_f64(cc, gemm_c_index(cc, m, n));
            pl_ref_sgemm(g.ta, g.tb, M, N, K, (float)alpha, fa, lda, fb, ldb,
                         use_c ? (float)beta : 0.0f, fy, N);
            linalg_store_f32(y, fy, ny);
            mm_epi_generic(c, &e, y);
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
        mm_epi_generic(c, &e, y);
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
        mm_epi_generic(c, &e, y);
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
