/* strassen.c -- one level of Strassen-Winograd over the packed SGEMM (see strassen.h).
 *
 * With A = [A11 A12; A21 A22] (M/2 x K/2 blocks), B likewise (K/2 x N/2):
 *   S1 = A21 + A22   S2 = S1 - A11   S3 = A11 - A21   S4 = A12 - S2
 *   T1 = B12 - B11   T2 = B22 - T1   T3 = B22 - B12   T4 = T2 - B21
 *   P1 = A11 B11  P2 = A12 B21  P3 = S4 B22  P4 = A22 T4  P5 = S1 T1  P6 = S2 T2  P7 = S3 T3
 *   C11 = P1 + P2            C12 = P1 + P6 + P5 + P3
 *   C21 = P1 + P6 + P7 - P4  C22 = P1 + P6 + P7 + P5
 * The order of the GEMMs below lets beta = 1 and the residual epilogue do most output
 * sums: each C block's last GEMM carries the caller's epilogue, except C22, which is
 * formed by an add pass (C22 = C21 + P5, in the same pass that adds P5 to C12) and
 * gets its epilogue in that pass. */
#include "kernels/gemm/strassen.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define STRASSEN_MAGIC 0x51534c50u /* "PLSQ" */
#define HDR 128

enum { Q_B11, Q_B21, Q_B22, Q_T1, Q_T2, Q_T3, Q_T4, Q_COUNT };

typedef struct strassen_header {
    uint32_t magic, pad;
    int64_t K, N;
    uint64_t qsize; /* bytes of each packed quarter (pl_sgemm_packed_b_size) */
    uint64_t off[Q_COUNT];
} strassen_header;

_Static_assert(sizeof(strassen_header) <= HDR, "strassen header too big");

static size_t round64(size_t v) {
    return (v + 63) & ~(size_t)63;
}

static int64_t half_hint(int64_t m_hint) {
    return m_hint > 1 ? m_hint / 2 : m_hint > 0 ? 1 : 0;
}

size_t pl_strassen_packed_size(int64_t K, int64_t N, int64_t m_hint) {
    (void)m_hint;
    if (K <= 0 || N <= 0 || (K & 1) || (N & 1)) return 0;
    size_t q = pl_sgemm_packed_b_size(K / 2, N / 2);
    if (q == 0 || q > (SIZE_MAX - HDR) / 8) return 0;
    return HDR + Q_COUNT * round64(q);
}

/* dst (h x w, stride w) = x + sign * y, rows of stride ldx / ldy. */
static void add_block(float *dst, const float *x, int64_t ldx, const float *y, int64_t ldy,
                      float sign, int64_t h, int64_t w) {
    for (int64_t i = 0; i < h; i++) {
        const float *xi = x + i * ldx, *yi = y + i * ldy;
        float *d = dst + i * w;
        for (int64_t j = 0; j < w; j++) d[j] = xi[j] + sign * yi[j];
    }
}

pl_status pl_strassen_pack(int64_t K, int64_t N, const float *B, int64_t ldb, int64_t m_hint,
                           void *buf, size_t buf_size) {
    size_t need = pl_strassen_packed_size(K, N, m_hint);
    if (need == 0)
        return pl_error(PL_ERR_ARGUMENT,
                        "pl_strassen_pack: %lld x %lld weight: sizes must be even "
                        "and positive",
                        (long long)K, (long long)N);
    if (!buf || ((uintptr_t)buf & 7) || buf_size < need)
        return pl_error(PL_ERR_ARGUMENT,
                        "pl_strassen_pack: buffer is NULL, misaligned or smaller "
                        "than %zu bytes",
                        need);
    if (!B || ldb < N) return pl_error(PL_ERR_ARGUMENT, "pl_strassen_pack: B is NULL or ldb < N");
    const int64_t h = K / 2, w = N / 2;
    strassen_header hd;
    memset(&hd, 0, sizeof hd);
    hd.magic = STRASSEN_MAGIC;
    hd.K = K;
    hd.N = N;
    hd.qsize = pl_sgemm_packed_b_size(h, w);
    for (int q = 0; q < Q_COUNT; q++) hd.off[q] = HDR + (uint64_t)q * round64(hd.qsize);
    memcpy(buf, &hd, sizeof hd);
    const float *B11 = B, *B12 = B + w, *B21 = B + h * ldb, *B22 = B + h * ldb + w;
    int64_t mh = half_hint(m_hint);
    char *base = buf;
#define PACKQ(q, src, ld)                                                                          \
    PL_TRY(pl_sgemm_pack_b_hint(false, h, w, src, ld, mh, base + hd.off[q], (size_t)hd.qsize))
    PACKQ(Q_B11, B11, ldb);
    PACKQ(Q_B21, B21, ldb);
    PACKQ(Q_B22, B22, ldb);
    /* The sums, one h x w temporary at a time: T1, then T2 and T4 from it, then T3. */
    float *t = malloc((size_t)(h * w) * sizeof(float));
    if (!t) return pl_error(PL_ERR_NOMEM, "pl_strassen_pack: out of memory");
    pl_status s = PL_OK;
    add_block(t, B12, ldb, B11, ldb, -1.0f, h, w); /* T1 = B12 - B11 */
    s = pl_sgemm_pack_b_hint(false, h, w, t, w, mh, base + hd.off[Q_T1], (size_t)hd.qsize);
    if (s == PL_OK) {
        add_block(t, B22, ldb, t, w, -1.0f, h, w); /* T2 = B22 - T1 */
        s = pl_sgemm_pack_b_hint(false, h, w, t, w, mh, base + hd.off[Q_T2], (size_t)hd.qsize);
    }
    if (s == PL_OK) {
        add_block(t, t, w, B21, ldb, -1.0f, h, w); /* T4 = T2 - B21 */
        s = pl_sgemm_pack_b_hint(false, h, w, t, w, mh, base + hd.off[Q_T4], (size_t)hd.qsize);
    }
    if (s == PL_OK) {
        add_block(t, B22, ldb, B12, ldb, -1.0f, h, w); /* T3 = B22 - B12 */
        s = pl_sgemm_pack_b_hint(false, h, w, t, w, mh, base + hd.off[Q_T3], (size_t)hd.qsize);
    }
#undef PACKQ
    free(t);
    return s;
}

size_t pl_strassen_scratch_size(int64_t M, int64_t K, int64_t N) {
    if (M < 2 || K < 2 || N < 2) return 64;
    int64_t m2 = M / 2;
    return 64 + (size_t)(4 * m2 * (K / 2) + m2 * (N / 2)) * sizeof(float) + 4 * 64;
}

/* ---- the threaded element-wise passes ---- */

typedef struct pass_job {
    int64_t m2, h, w;
    const float *A;
    int64_t lda;
    float *S[4];
    float *C, *T;
    int64_t ldc;
    pl_sgemm_epilogue epi22; /* the caller's epilogue offset to C22 */
    bool epi;
    int which; /* s_task: the sums to form (S_1_2 | S_3 | S_4) */
    int64_t rows_per;
} pass_job;

/* Rows [i0, i1) of the activation-side sums named by j->which (S_1_2: S1 and S2, S_3,
 * S_4), straight from the four blocks of A. Each is formed just before its GEMM, so it
 * is still in L2 when the GEMM packs it (all four at once, 1.5 MB for BERT's FFN
 * output layer, spilled from L2). */
enum { S_1_2 = 1, S_3 = 2, S_4 = 4 };

static void s_task(void *ctx, int task, int thread) {
    (void)thread;
    const pass_job *j = ctx;
    int64_t i0 = task * j->rows_per, i1 = i0 + j->rows_per < j->m2 ? i0 + j->rows_per : j->m2;
    const int64_t h = j->h;
    for (int64_t i = i0; i < i1; i++) {
        const float *a11 = j->A + i * j->lda, *a12 = a11 + h;
        const float *a21 = j->A + (j->m2 + i) * j->lda, *a22 = a21 + h;
        float *s1 = j->S[0] + i * h, *s2 = j->S[1] + i * h, *s3 = j->S[2] + i * h,
              *s4 = j->S[3] + i * h;
        if (j->which & S_1_2)
            for (int64_t k = 0; k < h; k++) {
                float v1 = a21[k] + a22[k];
                s1[k] = v1;
                s2[k] = v1 - a11[k];
            }
        if (j->which & S_3)
            for (int64_t k = 0; k < h; k++) s3[k] = a11[k] - a21[k];
        if (j->which & S_4) /* S4 = A12 - S2 (S2 is still in S[1], from S_1_2) */
            for (int64_t k = 0; k < h; k++) s4[k] = a12[k] - s2[k];
    }
}

/* The caller's epilogue moved to the block at (r0, c0). */
static pl_sgemm_epilogue epi_at(const pl_sgemm_epilogue *e, int64_t r0, int64_t c0) {
    pl_sgemm_epilogue o = *e;
    if (o.row_bias) o.row_bias += r0;
    if (o.col_bias) o.col_bias += c0;
    if (o.residual) o.residual += r0 * o.ld_residual + c0;
    return o;
}

/* Rows [i0, i1): C22 = C21 + P5, C12 += P5, then the epilogue on those rows of C22. */
static void c_task(void *ctx, int task, int thread) {
    (void)thread;
    const pass_job *j = ctx;
    int64_t i0 = task * j->rows_per, i1 = i0 + j->rows_per < j->m2 ? i0 + j->rows_per : j->m2;
    const int64_t w = j->w;
    for (int64_t i = i0; i < i1; i++) {
        float *c12 = j->C + i * j->ldc + w, *c21 = j->C + (j->m2 + i) * j->ldc;
        float *c22 = c21 + w;
        const float *p5 = j->T + i * w;
        for (int64_t x = 0; x < w; x++) {
            c22[x] = c21[x] + p5[x];
            c12[x] += p5[x];
        }
    }
    if (j->epi && i1 > i0) {
        pl_sgemm_epilogue e = epi_at(&j->epi22, i0, 0);
        pl_sgemm_apply_epilogue(j->C + (j->m2 + i0) * j->ldc + w, j->ldc, i1 - i0, w, &e);
    }
}

static void run_rows(pl_threadpool *pool, pl_task_fn fn, pass_job *j) {
    int nt = pl_threadpool_size(pool);
    int ntasks = nt > 1 ? 2 * nt : 1;
    if (ntasks > j->m2) ntasks = (int)j->m2;
    if (ntasks < 1) return;
    j->rows_per = (j->m2 + ntasks - 1) / ntasks;
    ntasks = (int)((j->m2 + j->rows_per - 1) / j->rows_per);
    if (ntasks == 1 || !pool)
        for (int t = 0; t < ntasks; t++) fn(j, t, 0);
    else
        pl_threadpool_run(pool, fn, j, ntasks);
}

/* One half-size GEMM: C = alpha * A Bq + beta * C (+ epilogue). */
static pl_status mul(int64_t m, int64_t n, int64_t k, float alpha, const float *A, int64_t lda,
                     const void *bq, float beta, float *C, int64_t ldc,
                     const pl_sgemm_epilogue *epi, pl_threadpool *pool) {
    pl_sgemm_args g;
    memset(&g, 0, sizeof g);
    g.M = m;
    g.N = n;
    g.K = k;
    g.alpha = alpha;
    g.beta = beta;
    g.A = A;
    g.lda = lda;
    g.packed_b = bq;
    g.C = C;
    g.ldc = ldc;
    g.epilogue = epi;
    g.pool = pool;
    return pl_sgemm_run(&g);
}

pl_status pl_strassen_run(int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                          const void *packed, float *C, int64_t ldc, const pl_sgemm_epilogue *epi,
                          pl_threadpool *pool, void *scratch, size_t scratch_size) {
    if (!packed || ((uintptr_t)packed & 7))
        return pl_error(PL_ERR_ARGUMENT, "strassen: packed weight is NULL or misaligned");
    const strassen_header *hd = packed;
    if (hd->magic != STRASSEN_MAGIC)
        return pl_error(PL_ERR_ARGUMENT, "strassen: not a Strassen-packed weight");
    if (hd->K != K || hd->N != N)
        return pl_error(PL_ERR_ARGUMENT,
                        "strassen: weight is %lld x %lld, the call needs %lld x %lld",
                        (long long)hd->K, (long long)hd->N, (long long)K, (long long)N);
    if (M < 0) return pl_error(PL_ERR_ARGUMENT, "strassen: negative row count %lld", (long long)M);
    if (M == 0) return PL_OK;
    if (!A || !C || lda < K || (M > 1 && ldc < N))
        return pl_error(PL_ERR_ARGUMENT, "strassen: A or C is NULL, or a stride is too small");
    if (scratch_size < pl_strassen_scratch_size(M, K, N) || !scratch)
        return pl_error(PL_ERR_ARGUMENT, "strassen: scratch has %zu bytes, needs %zu", scratch_size,
                        pl_strassen_scratch_size(M, K, N));
    static const pl_sgemm_epilogue none;
    const pl_sgemm_epilogue *E = epi ? epi : &none;
    const char *base = packed;
    const void *q[Q_COUNT];
    for (int i = 0; i < Q_COUNT; i++) q[i] = base + hd->off[i];
    const int64_t h = K / 2, w = N / 2, m2 = M / 2;

    if (m2 > 0) {
        /* Scratch: S1..S4 (m2 x h each), then P5 (m2 x w); each 64-byte aligned. */
        float *p = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
        pass_job j;
        memset(&j, 0, sizeof j);
        j.m2 = m2, j.h = h, j.w = w, j.A = A, j.lda = lda, j.C = C, j.ldc = ldc;
        for (int i = 0; i < 4; i++) {
            j.S[i] = p;
            p += round64((size_t)(m2 * h) * sizeof(float)) / sizeof(float);
        }
        j.T = p;

        float *C11 = C, *C12 = C + w, *C21 = C + m2 * ldc;
        const float *A11 = A, *A12 = A + h, *A22 = A + m2 * lda + h;
        pl_sgemm_epilogue e11 = epi_at(E, 0, 0), e12 = epi_at(E, 0, w), e21 = epi_at(E, m2, 0);
        pl_sgemm_epilogue r;
        memset(&r, 0, sizeof r);
        /* C11 = P1 */
        PL_TRY(mul(m2, w, h, alpha, A11, lda, q[Q_B11], 0.0f, C11, ldc, NULL, pool));
        /* T = P5 (S1 T1) */
        j.which = S_1_2;
        run_rows(pool, s_task, &j);
        PL_TRY(mul(m2, w, h, alpha, j.S[0], h, q[Q_T1], 0.0f, j.T, w, NULL, pool));
        /* C12 = P6 + C11 = P1 + P6 */
        r.residual = C11, r.ld_residual = ldc;
        PL_TRY(mul(m2, w, h, alpha, j.S[1], h, q[Q_T2], 0.0f, C12, ldc, &r, pool));
        /* C11 += P2: final */
        PL_TRY(mul(m2, w, h, alpha, A12, lda, q[Q_B21], 1.0f, C11, ldc, &e11, pool));
        /* C21 = P7 + C12 = P1 + P6 + P7 */
        j.which = S_3;
        run_rows(pool, s_task, &j);
        r.residual = C12;
        PL_TRY(mul(m2, w, h, alpha, j.S[2], h, q[Q_T3], 0.0f, C21, ldc, &r, pool));
        /* C22 = C21 + T (final, with its epilogue); C12 += T */
        j.epi22 = epi_at(E, m2, w);
        j.epi = epi != NULL;
        run_rows(pool, c_task, &j);
        /* C12 += P3: final */
        j.which = S_4;
        run_rows(pool, s_task, &j);
        PL_TRY(mul(m2, w, h, alpha, j.S[3], h, q[Q_B22], 1.0f, C12, ldc, &e12, pool));
        /* C21 -= P4: final */
        PL_TRY(mul(m2, w, h, -alpha, A22, lda, q[Q_T4], 1.0f, C21, ldc, &e21, pool));
    }
    if (M & 1) {
        /* The odd last row against the packed quarters (B12 = T1 + B11):
         *   left  = a1 B11 + a2 B21;   right = a1 T1 + a1 B11 + a2 B22
         * (a1 B11 computed once, into left, and added to right as its residual). */
        int64_t r0 = M - 1;
        const float *a1 = A + r0 * lda, *a2 = a1 + h;
        float *cl = C + r0 * ldc, *cr = cl + w;
        pl_sgemm_epilogue el = epi_at(E, r0, 0), er = epi_at(E, r0, w), rl;
        memset(&rl, 0, sizeof rl);
        rl.residual = cl, rl.ld_residual = ldc;
        PL_TRY(mul(1, w, h, alpha, a1, lda, q[Q_B11], 0.0f, cl, ldc, NULL, pool));
        PL_TRY(mul(1, w, h, alpha, a1, lda, q[Q_T1], 0.0f, cr, ldc, &rl, pool));
        PL_TRY(mul(1, w, h, alpha, a2, lda, q[Q_B22], 1.0f, cr, ldc, &er, pool));
        PL_TRY(mul(1, w, h, alpha, a2, lda, q[Q_B21], 1.0f, cl, ldc, &el, pool));
    }
    return PL_OK;
}
