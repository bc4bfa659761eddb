/* einsum.c -- Einsum, as one generic contraction loop.
 *
 * The equation is parsed into labels (letters, plus one label per broadcast "..."
 * dimension). Every input gets a stride per label (the sum of its axes' strides with
 * that label, which gives diagonals for repeated labels; 0 where the input has size 1,
 * which broadcasts). Then an odometer runs over all labels, output labels first, and
 * accumulates the product of the inputs into the output: O(product of all label sizes),
 * exact for integers (64-bit wrapping) and accumulated in double for floats. float32
 * contractions of two inputs (matmul-like forms: "bij,bjk->bik", "bhqd,bhkd->bhqk",
 * ...) run as a batched SGEMM instead (es_run_gemm). */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/threadpool.h"
#include "kernels/gemm/sgemm.h"
#include "ops/linalg_util.h"

#define ES_MAX_IN 16
#define ES_RAW 60 /* 52 letters + up to PL_MAX_DIMS ellipsis dims */

typedef struct es_plan {
    int nin;
    int nl;               /* labels in use, output ones first */
    int64_t size[ES_RAW]; /* per compact label */
    int nout;             /* output rank */
    int64_t out_dims[PL_MAX_DIMS];
    int64_t ostride[ES_RAW]; /* output stride per compact label (0: summed) */
    int64_t istride[ES_MAX_IN][ES_RAW];
} es_plan;

static int es_letter(char ch) {
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return 26 + (ch - 'a');
    return -1;
}

/* Parses one term (no spaces) into raw label ids; ellipsis gives -2 once. */
static pl_status es_term(const pl_op_ctx *c, const char *s, size_t len, int *labs, int *n) {
    *n = 0;
    bool ell = false;
    for (size_t i = 0; i < len;) {
        if (s[i] == '.') {
            if (ell || i + 3 > len || s[i + 1] != '.' || s[i + 2] != '.')
                return pl_op_error(c, PL_ERR_MODEL, "equation has a malformed '...'");
            ell = true;
            labs[(*n)++] = -2;
            i += 3;
            continue;
        }
        int l = es_letter(s[i]);
        if (l < 0)
            return pl_op_error(c, PL_ERR_MODEL, "equation has an invalid character '%c'", s[i]);
        if (*n >= PL_MAX_DIMS + 1)
            return pl_op_error(c, PL_ERR_MODEL, "equation term has too many labels");
        labs[(*n)++] = l;
        i++;
    }
    return PL_OK;
}

/* Parses the equation against the input shapes into a plan (labels, sizes, strides). */
static pl_status es_parse(const pl_op_ctx *c, es_plan *p) {
    const char *eq0 = pl_attr_str(c->node, "equation", NULL);
    if (!eq0) return pl_op_error(c, PL_ERR_MODEL, "attribute 'equation' is missing");
    char eq[512];
    size_t m = 0;
    for (const char *q = eq0; *q; q++) {
        if (*q == ' ' || *q == '\t') continue;
        if (m + 1 >= sizeof eq) return pl_op_error(c, PL_ERR_UNSUPPORTED, "equation is too long");
        eq[m++] = *q;
    }
    eq[m] = 0;
    if (c->nin < 1 || c->nin > ES_MAX_IN)
        return pl_op_error(c, PL_ERR_UNSUPPORTED, "%d inputs, 1 to %d supported", c->nin,
                           ES_MAX_IN);
    memset(p, 0, sizeof *p);
    p->nin = c->nin;
    const char *arrow = strstr(eq, "->");
    size_t lhs_len = arrow ? (size_t)(arrow - eq) : m;

    /* Pass 1: the terms. */
    int labs[ES_MAX_IN][PL_MAX_DIMS + 2], nlab[ES_MAX_IN], ne[ES_MAX_IN];
    bool any_ell = false;
    int E = 0;
    size_t pos = 0;
    for (int i = 0; i < c->nin; i++) {
        size_t end = pos;
        while (end < lhs_len && eq[end] != ',') end++;
        if (i < c->nin - 1 ? end >= lhs_len : end != lhs_len)
            return pl_op_error(c, PL_ERR_MODEL,
                               "equation '%s' needs one term per input (%d inputs)", eq0, c->nin);
        PL_TRY(es_term(c, eq + pos, end - pos, labs[i], &nlab[i]));
        pos = end + 1;
        const pl_tensor *t = c->in[i];
        if (!t) return pl_op_error(c, PL_ERR_MODEL, "input %d is missing", i);
        int nletters = 0;
        bool ell = false;
        for (int k = 0; k < nlab[i]; k++) {
            if (labs[i][k] == -2)
                ell = true;
            else
                nletters++;
        }
        ne[i] = t->ndim - nletters;
        if (ne[i] < 0 || (!ell && ne[i] != 0))
            return pl_op_error(c, PL_ERR_INPUT, "input %d has %d dims but its term has %d labels",
                               i, t->ndim, nletters);
        if (ell) any_ell = true;
        if (ne[i] > E) E = ne[i];
    }

    /* Pass 2: raw label per axis (ellipsis dims right-aligned on labels 52..52+E-1) and
     * label sizes (a size-1 axis broadcasts). */
    int raw[ES_MAX_IN][PL_MAX_DIMS];
    int64_t rsize[ES_RAW];
    int count[ES_RAW] = {0};
    for (int l = 0; l < ES_RAW; l++) rsize[l] = -1;
    for (int i = 0; i < c->nin; i++) {
        const pl_tensor *t = c->in[i];
        int ax = 0;
        for (int k = 0; k < nlab[i]; k++) {
            if (labs[i][k] == -2) {
                for (int e = 0; e < ne[i]; e++) raw[i][ax++] = 52 + (E - ne[i]) + e;
            } else {
                raw[i][ax++] = labs[i][k];
            }
        }
        for (int a = 0; a < t->ndim; a++) {
            int l = raw[i][a];
            int64_t d = t->dims[a];
            count[l]++;
            if (rsize[l] < 0 || rsize[l] == 1)
                rsize[l] = d;
            else if (d != 1 && d != rsize[l])
                return pl_op_error(c, PL_ERR_INPUT, "label '%c' has sizes %lld and %lld",
                                   l < 52 ? (l < 26 ? 'A' + l : 'a' + l - 26) : '.',
                                   (long long)rsize[l], (long long)d);
        }
    }

    /* Output labels. */
    int out[ES_RAW], nout = 0;
    if (arrow) {
        int olabs[PL_MAX_DIMS + 2], no;
        const char *rhs = arrow + 2;
        if (strchr(rhs, ',') || strstr(rhs, "->"))
            return pl_op_error(c, PL_ERR_MODEL, "equation '%s' has a malformed output", eq0);
        PL_TRY(es_term(c, rhs, strlen(rhs), olabs, &no));
        bool seen[ES_RAW] = {false};
        for (int k = 0; k < no; k++) {
            if (olabs[k] == -2) {
                for (int e = 0; e < E; e++) out[nout++] = 52 + e;
                continue;
            }
            int l = olabs[k];
            if (!count[l])
                return pl_op_error(c, PL_ERR_MODEL, "output label '%c' is not in any input",
                                   l < 26 ? 'A' + l : 'a' + l - 26);
            if (seen[l])
                return pl_op_error(c, PL_ERR_MODEL, "output label '%c' appears twice",
                                   l < 26 ? 'A' + l : 'a' + l - 26);
            seen[l] = true;
            out[nout++] = l;
        }
    } else {
        if (any_ell)
            for (int e = 0; e < E; e++) out[nout++] = 52 + e;
        for (int l = 0; l < 52; l++) /* ASCII order: upper case first */
            if (count[l] == 1) out[nout++] = l;
    }
    if (nout > PL_MAX_DIMS)
        return pl_op_error(c, PL_ERR_UNSUPPORTED, "output has %d dims, at most %d supported", nout,
                           PL_MAX_DIMS);

    /* Compact labels: output first, then the summed ones. */
    int compact[ES_RAW];
    for (int l = 0; l < ES_RAW; l++) compact[l] = -1;
    for (int k = 0; k < nout; k++) {
        compact[out[k]] = p->nl;
        p->size[p->nl++] = rsize[out[k]] < 0 ? 1 : rsize[out[k]];
    }
    for (int l = 0; l < ES_RAW; l++)
        if (count[l] && compact[l] < 0) {
            compact[l] = p->nl;
            p->size[p->nl++] = rsize[l];
        }
    p->nout = nout;
    for (int k = 0; k < nout; k++) p->out_dims[k] = p->size[k];
    if (pl_dims_numel(nout, p->out_dims) < 0)
        return pl_op_error(c, PL_ERR_MODEL, "output size overflows");
    int64_t st = 1;
    for (int k = nout - 1; k >= 0; k--) {
        p->ostride[k] = st;
        st *= p->size[k];
    }
    for (int i = 0; i < c->nin; i++) {
        const pl_tensor *t = c->in[i];
        int64_t strides[PL_MAX_DIMS];
        pl_strides(t->ndim, t->dims, strides);
        for (int a = 0; a < t->ndim; a++)
            if (t->dims[a] != 1) p->istride[i][compact[raw[i][a]]] += strides[a];
    }
    return PL_OK;
}

pl_status einsum_infer(pl_op_ctx *c) {
    PL_TRY(pl_op_check_arity(c, 1, -1));
    for (int i = 1; i < c->nin; i++) PL_TRY(pl_op_check_same_dtype(c, 0, i));
    if (!pl_dtype_is_float(c->in[0]->dtype) && !pl_dtype_is_int(c->in[0]->dtype))
        return pl_op_error(c, PL_ERR_UNSUPPORTED, "inputs of type %s are not supported",
                           pl_dtype_name(c->in[0]->dtype));
    PL_TRY(linalg_shapes_known(c));
    es_plan *p = malloc(sizeof *p);
    if (!p) return pl_op_error(c, PL_ERR_NOMEM, "out of memory");
    pl_status st = es_parse(c, p);
    if (st == PL_OK) pl_op_set_out(c, 0, c->in[0]->dtype, p->nout, p->out_dims);
    free(p);
    return st;
}

/* The odometer loop, once for double and once for wrapping 64-bit integers. */
#define DEFINE_CONTRACT(NAME, T, MUL, ADD)                                                         \
    static void NAME(const es_plan *p, T *const *in, T *out) {                                     \
        int64_t total = pl_dims_numel(p->nl, p->size);                                             \
        if (total <= 0) return;                                                                    \
        int64_t idx[ES_RAW] = {0}, off[ES_MAX_IN] = {0}, oo = 0;                                   \
        for (int64_t it = 0; it < total; it++) {                                                   \
            T v = in[0][off[0]];                                                                   \
            for (int i = 1; i < p->nin; i++) v = MUL(v, in[i][off[i]]);                            \
            out[oo] = ADD(out[oo], v);                                                             \
            for (int l = p->nl - 1; l >= 0; l--) {                                                 \
                idx[l]++;                                                                          \
                oo += p->ostride[l];                                                               \
                for (int i = 0; i < p->nin; i++) off[i] += p->istride[i][l];                       \
                if (idx[l] < p->size[l]) break;                                                    \
                idx[l] = 0;                                                                        \
                oo -= p->ostride[l] * p->size[l];                                                  \
                for (int i = 0; i < p->nin; i++) off[i] -= p->istride[i][l] * p->size[l];          \
            }                                                                                      \
        }                                                                                          \
    }
#define F_MUL(a, b) ((a) * (b))
#define F_ADD(a, b) ((a) + (b))
#define I_MUL(a, b) ((int64_t)((uint64_t)(a) * (uint64_t)(b)))
#define I_ADD(a, b) ((int64_t)((uint64_t)(a) + (uint64_t)(b)))
DEFINE_CONTRACT(es_contract_f64, double, F_MUL, F_ADD)
DEFINE_CONTRACT(es_contract_i64, int64_t, I_MUL, I_ADD)

/* ---- float32 with two inputs: a batched GEMM ----
 *
 * Every label of a two-input contraction is one of: batch (in the output and both
 * inputs), M (output and A only), N (output and B only) or K (summed; when only one input
 * has it, the other is simply constant along it, stride 0). Both inputs are gathered
 * into [batch][M][K] and [batch][K][N] buffers by their label strides (which also covers
 * diagonals and broadcasting), multiplied with the SGEMM, and the [batch][M][N] result
 * is scattered into the output. The copies are linear in the data; the GEMM is not. */

/* Strided copy between a dense buffer and a tensor: i runs over the labels in row-major
 * order, the tensor offset is sum_l idx_l * stride_l. gather: dense[i] = t[off];
 * otherwise t[off] = dense[i]. */
static void es_copy(float *t, float *dense, int nl, const int64_t *size, const int64_t *stride,
                    bool gather) {
    int64_t total = pl_dims_numel(nl, size), idx[ES_RAW] = {0}, off = 0;
    for (int64_t i = 0; i < total; i++) {
        if (gather) dense[i] = t[off];
        else t[off] = dense[i];
        for (int l = nl - 1; l >= 0; l--) {
            off += stride[l];
            if (++idx[l] < size[l]) break;
            off -= stride[l] * size[l];
            idx[l] = 0;
        }
    }
}

typedef struct es_gemm_job {
    const float *a, *b;
    float *c;
    int64_t M, N, K;
    atomic_int failed;
} es_gemm_job;

static void es_gemm_task(void *ctx, int t, int thread) {
    (void)thread;
    es_gemm_job *j = ctx;
    pl_sgemm_args g = {.M = j->M, .N = j->N, .K = j->K, .alpha = 1.0f, .beta = 0.0f,
                       .A = j->a + (int64_t)t * j->M * j->K, .lda = j->K,
                       .B = j->b + (int64_t)t * j->K * j->N, .ldb = j->N,
                       .C = j->c + (int64_t)t * j->M * j->N, .ldc = j->N};
    if (pl_sgemm_run(&g) != PL_OK) atomic_store(&j->failed, 1);
}

static pl_status es_run_gemm(pl_op_ctx *c, const es_plan *p) {
    enum { BATCH, EM, EN, EK };
    int lab[4][ES_RAW], nl[4] = {0};
    int64_t dim[4] = {1, 1, 1, 1};
    for (int l = 0; l < p->nl; l++) {
        if (p->size[l] == 1) continue;
        bool out = l < p->nout, a = p->istride[0][l] != 0, b = p->istride[1][l] != 0;
        int cls = !out ? EK : a && !b ? EM : b && !a ? EN : BATCH;
        lab[cls][nl[cls]++] = l;
        dim[cls] *= p->size[l];
    }
    int64_t B = dim[BATCH], M = dim[EM], N = dim[EN], K = dim[EK];
    int64_t na = pl_dims_numel(3, (int64_t[]){B, M, K}), nbb = pl_dims_numel(3, (int64_t[]){B, K, N});
    int64_t nc = pl_dims_numel(3, (int64_t[]){B, M, N});
    if (na < 0 || nbb < 0 || nc < 0 || B > INT32_MAX)
        return pl_op_error(c, PL_ERR_UNSUPPORTED, "contraction is too large");
    float *buf = malloc(((size_t)na + (size_t)nbb + (size_t)nc + 1) * sizeof(float));
    if (!buf) return pl_op_error(c, PL_ERR_NOMEM, "out of memory (%lld floats)", (long long)(na + nbb + nc));
    float *ba = buf, *bb = buf + na, *bc = bb + nbb;
    /* gather orders: A = batch, M, K; B = batch, K, N; C = batch, M, N */
    const int order[3][3] = {{BATCH, EM, EK}, {BATCH, EK, EN}, {BATCH, EM, EN}};
    for (int w = 0; w < 3; w++) {
        int n = 0;
        int64_t size[ES_RAW], stride[ES_RAW];
        for (int q = 0; q < 3; q++)
            for (int k = 0; k < nl[order[w][q]]; k++) {
                int l = lab[order[w][q]][k];
                size[n] = p->size[l];
                stride[n++] = w < 2 ? p->istride[w][l] : p->ostride[l];
            }
        if (w < 2) es_copy(c->in[w]->data, w ? bb : ba, n, size, stride, true);
        if (w == 2) {
            es_gemm_job j = {.a = ba, .b = bb, .c = bc, .M = M, .N = N, .K = K};
            atomic_init(&j.failed, 0);
            if (B == 1) {
                pl_sgemm_args g = {.M = M, .N = N, .K = K, .alpha = 1.0f, .A = ba, .lda = K,
                                   .B = bb, .ldb = N, .C = bc, .ldc = N, .pool = c->pool};
                if (pl_sgemm_run(&g) != PL_OK) atomic_store(&j.failed, 1);
            } else {
                pl_threadpool_run(c->pool, es_gemm_task, &j, (int)B);
            }
            if (atomic_load(&j.failed)) {
                free(buf);
                return pl_op_error(c, PL_ERR_NOMEM, "out of memory in the GEMM");
            }
            es_copy(c->out[0]->data, bc, n, size, stride, false);
        }
    }
    free(buf);
    return PL_OK;
}

pl_status einsum_run(pl_op_ctx *c) {
    es_plan *p = malloc(sizeof *p);
    if (!p) return pl_op_error(c, PL_ERR_NOMEM, "out of memory");
    pl_status st = es_parse(c, p);
    pl_tensor *y = c->out[0];
    if (st == PL_OK && c->nin == 2 && y->dtype == PL_F32) {
        st = pl_numel(y) > 0 ? es_run_gemm(c, p) : PL_OK;
        free(p);
        return st;
    }
    int64_t ny = pl_numel(y);
    bool isf = pl_dtype_is_float(y->dtype);
    double *fb[ES_MAX_IN + 1] = {NULL}; /* inputs, then the output accumulator */
    int64_t *ib[ES_MAX_IN + 1] = {NULL};
    int n = c->nin;
    for (int i = 0; i <= n && st == PL_OK; i++) {
        const pl_tensor *t = i < n ? c->in[i] : y;
        st = isf ? linalg_load_f64(c, t, &fb[i]) : linalg_load_i64(c, t, &ib[i]);
    }
    if (st == PL_OK) {
        if (isf) {
            es_contract_f64(p, fb, fb[n]);
            linalg_store_f64(y, fb[n], ny);
        } else {
            es_contract_i64(p, ib, ib[n]);
            for (int64_t i = 0; i < ny; i++) pl_set_i64(y, i, ib[n][i]);
        }
    }
    for (int i = 0; i <= ES_MAX_IN; i++) {
        free(fb[i]);
        free(ib[i]);
    }
    free(p);
    return st;
}
