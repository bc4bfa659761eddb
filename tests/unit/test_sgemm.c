/* test_sgemm.c -- the packed SGEMM engine against pl_ref_sgemm on every kernel level
 * this CPU has: awkward shapes around the tile sizes, K == 0, beta != 0, transposes,
 * padded strides, pre-packed operands, every epilogue, 1..3 threads, and the errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "core/threadpool.h"
#include "kernels/gemm/gemm.h"
#include "kernels/gemm/sgemm.h"

#include "check.h"
static float frand(void) {
    return (float)(rnd() % 2000001) / 1000000.0f - 1.0f;
}
static int pick(const int *v, int n) {
    return v[rnd() % (unsigned)n];
}

static const int sizes[] = {1, 2, 3, 7, 13, 14, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 255, 257};
#define NSIZES ((int)(sizeof sizes / sizeof sizes[0]))

static float act_ref(float x, const pl_sgemm_epilogue *e) {
    switch (e->act) {
    case PL_SGEMM_ACT_NONE:
        return x;
    case PL_SGEMM_ACT_RELU:
        return x > 0 ? x : 0;
    case PL_SGEMM_ACT_CLIP:
        return fminf(fmaxf(x, e->act_min), e->act_max);
    case PL_SGEMM_ACT_LEAKY_RELU:
        return x >= 0 ? x : e->act_alpha * x;
    case PL_SGEMM_ACT_SIGMOID:
        return (float)(1.0 / (1.0 + exp(-(double)x)));
    case PL_SGEMM_ACT_HARDSWISH:
        return x * fminf(fmaxf(x + 3, 0), 6) / 6;
    case PL_SGEMM_ACT_GELU_ERF:
        return (float)(0.5 * x * (1.0 + erf(x / sqrt(2.0))));
    case PL_SGEMM_ACT_GELU_TANH: {
        double u = sqrt(2.0 / M_PI) * (x + 0.044715 * (double)x * x * x);
        return (float)(0.5 * x * (1.0 + tanh(u)));
    }
    default:
        return x;
    }
}

typedef struct gcase {
    int M, N, K;
    bool ta, tb;
    int pad_a, pad_b, pad_c; /* extra leading-dimension elements */
    float alpha, beta;
    bool pack_a, pack_b;
    int hint;  /* packed with a hint: 0 none, 1 the real other size, 2 another size */
    bool rows; /* B through the b_rows callback */
    bool row_bias, col_bias, residual;
    pl_sgemm_act act;
    pl_threadpool *pool;
} gcase;

/* b_rows callback reading op(B) from a stored matrix. */
typedef struct rows_ctx {
    const float *B;
    int64_t ldb;
    bool tb;
} rows_ctx;

static void b_rows(void *p, int64_t k, int64_t n0, int64_t n, float *dst) {
    const rows_ctx *r = p;
    for (int64_t j = 0; j < n; j++)
        dst[j] = r->tb ? r->B[(n0 + j) * r->ldb + k] : r->B[k * r->ldb + n0 + j];
}

static const char *act_names[] = {"none",    "relu",      "clip",     "leaky",
                                  "sigmoid", "hardswish", "gelu_erf", "gelu_tanh"};

/* Runs one case; returns 0 if it matched. */
static int run_case(const gcase *g) {
    cases++;
    int M = g->M, N = g->N, K = g->K;
    int64_t lda = (g->ta ? M : K) + g->pad_a, ldb = (g->tb ? K : N) + g->pad_b;
    int64_t ldc = N + g->pad_c;
    int64_t arows = g->ta ? K : M, brows = g->tb ? N : K;
    if (lda < 1) lda = 1;
    if (ldb < 1) ldb = 1;
    float *A = malloc(sizeof(float) * (size_t)(arows * lda + 1));
    float *B = malloc(sizeof(float) * (size_t)(brows * ldb + 1));
    float *C = malloc(sizeof(float) * (size_t)(M * ldc + 1));
    float *R = malloc(sizeof(float) * (size_t)(M * ldc + 1));
    float *C0 = malloc(sizeof(float) * (size_t)(M * ldc + 1));
    float *res = malloc(sizeof(float) * (size_t)(M * ldc + 1));
    float *rb = malloc(sizeof(float) * (size_t)M), *cb = malloc(sizeof(float) * (size_t)N);
    for (int64_t i = 0; i < arows * lda; i++) A[i] = frand();
    for (int64_t i = 0; i < brows * ldb; i++) B[i] = frand();
    for (int64_t i = 0; i < M * ldc; i++) {
        C0[i] = frand();
        res[i] = frand();
    }
    for (int i = 0; i < M; i++) rb[i] = frand();
    for (int i = 0; i < N; i++) cb[i] = frand();
    /* Padding columns of C hold a sentinel that must survive. */
    for (int m = 0; m < M; m++)
        for (int64_t n = N; n < ldc; n++) C0[m * ldc + n] = 12345.0f;
    memcpy(C, C0, sizeof(float) * (size_t)(M * ldc));
    if (g->beta == 0.0f)
        for (int m = 0; m < M; m++)
            for (int n = 0; n < N; n++) C[m * ldc + n] = NAN; /* must not be read */
    memcpy(R, C0, sizeof(float) * (size_t)(M * ldc));
    pl_ref_sgemm(g->ta, g->tb, M, N, K, g->alpha, A, lda, B, ldb, g->beta, R, ldc);

    pl_sgemm_epilogue epi = {0};
    epi.row_bias = g->row_bias ? rb : NULL;
    epi.col_bias = g->col_bias ? cb : NULL;
    epi.residual = g->residual ? res : NULL;
    epi.ld_residual = ldc;
    epi.act = g->act;
    epi.act_alpha = 0.1f;
    epi.act_min = -0.5f;
    epi.act_max = 0.75f;

    pl_sgemm_args a = {0};
    a.M = M;
    a.N = N;
    a.K = K;
    a.alpha = g->alpha;
    a.beta = g->beta;
    a.A = A;
    a.lda = lda;
    a.trans_a = g->ta;
    a.B = B;
    a.ldb = ldb;
    a.trans_b = g->tb;
    a.C = C;
    a.ldc = ldc;
    a.epilogue = &epi;
    a.pool = g->pool;
    void *pa = NULL, *pb = NULL;
    int bad = 0;
    rows_ctx rc = {B, ldb, g->tb};
    if (g->rows) {
        a.B = NULL;
        a.b_rows = b_rows;
        a.b_rows_ctx = &rc;
    }
    if (g->pack_a) {
        size_t sz = pl_sgemm_packed_a_size(M, K);
        pa = malloc(sz);
        int64_t h = g->hint == 1 ? N : g->hint == 2 ? (N > 40 ? 7 : 2048) : 0;
        pl_status s = pl_sgemm_pack_a_hint(g->ta, M, K, A, lda, h, pa, sz);
        CHECK(s == PL_OK, "pack_a: %s", pl_error_msg());
        a.packed_a = pa;
        a.A = NULL;
    }
    if (g->pack_b && !g->rows) {
        size_t sz = pl_sgemm_packed_b_size(K, N);
        pb = malloc(sz);
        int64_t h = g->hint == 1 ? M : g->hint == 2 ? (M > 40 ? 7 : 2048) : 0;
        pl_status s = pl_sgemm_pack_b_hint(g->tb, K, N, B, ldb, h, pb, sz);
        CHECK(s == PL_OK, "pack_b: %s", pl_error_msg());
        a.packed_b = pb;
        a.B = NULL;
    }
    pl_status st = pl_sgemm_run(&a);
    CHECK(st == PL_OK, "run: %s", pl_error_msg());

    double worst = 0;
    int wm = -1, wn = -1;
    for (int m = 0; m < M && st == PL_OK; m++) {
        for (int64_t n = 0; n < ldc; n++) {
            float got = C[m * ldc + n];
            if (n >= N) {
                if (got != 12345.0f) bad++;
                continue;
            }
            /* Scale of the terms, for a K-scaled relative tolerance. */
            double s = fabs(g->beta * C0[m * ldc + n]);
            for (int k = 0; k < K; k++) {
                float av = g->ta ? A[k * lda + m] : A[m * lda + k];
                float bv = g->tb ? B[n * ldb + k] : B[k * ldb + n];
                s += fabs((double)g->alpha * av * bv);
            }
            float v = R[m * ldc + n];
            if (g->row_bias) v += rb[m], s += fabs(rb[m]);
            if (g->col_bias) v += cb[n], s += fabs(cb[n]);
            if (g->residual) v += res[m * ldc + n], s += fabs(res[m * ldc + n]);
            float want = act_ref(v, &epi);
            double tol = 1e-5 * (1.0 + K / 256.0) * s * 1.5 + 2e-6 * fabs(want) + 1e-6;
            double d = fabs((double)got - want);
            if (!(d <= tol)) {
                bad++;
                if (!(d <= worst)) worst = d, wm = m, wn = (int)n;
            }
        }
    }
    CHECK(bad == 0,
          "%s M=%d N=%d K=%d ta=%d tb=%d pads=%d/%d/%d alpha=%g beta=%g pack=%d/%d "
          "hint=%d rows=%d rb=%d cb=%d res=%d act=%s threads=%d: %d bad, worst %g at (%d,%d)",
          pl_isa_name(pl_cpu_isa()), M, N, K, g->ta, g->tb, g->pad_a, g->pad_b, g->pad_c, g->alpha,
          g->beta, g->pack_a, g->pack_b, g->hint, g->rows, g->row_bias, g->col_bias, g->residual,
          act_names[g->act], pl_threadpool_size(g->pool), bad, worst, wm, wn);
    free(A);
    free(B);
    free(C);
    free(R);
    free(C0);
    free(res);
    free(rb);
    free(cb);
    free(pa);
    free(pb);
    return bad;
}

static gcase plain(int M, int N, int K) {
    gcase g;
    memset(&g, 0, sizeof g);
    g.M = M;
    g.N = N;
    g.K = K;
    g.alpha = 1.0f;
    return g;
}

static void test_errors(void) {
    float x[16] = {0};
    pl_sgemm_args a = {0};
    a.M = -1;
    a.N = 2;
    a.K = 2;
    a.A = a.B = x;
    a.C = x;
    a.lda = a.ldb = a.ldc = 2;
    CHECK(pl_sgemm_run(&a) == PL_ERR_ARGUMENT, "negative M accepted");
    a.M = 2;
    a.ldc = 1;
    CHECK(pl_sgemm_run(&a) == PL_ERR_ARGUMENT, "ldc < N accepted");
    a.ldc = 2;
    a.lda = 1;
    CHECK(pl_sgemm_run(&a) == PL_ERR_ARGUMENT, "lda < K accepted");
    a.lda = 2;
    a.B = NULL;
    CHECK(pl_sgemm_run(&a) == PL_ERR_ARGUMENT, "NULL B accepted");
    a.B = x;
    CHECK(pl_sgemm_run(NULL) == PL_ERR_ARGUMENT, "NULL args accepted");
    /* A packed B passed as A, and wrong sizes. */
    size_t sz = pl_sgemm_packed_b_size(2, 2);
    void *pb = malloc(sz);
    CHECK(pl_sgemm_pack_b(false, 2, 2, x, 2, pb, sz) == PL_OK, "pack_b failed");
    a.packed_a = pb;
    CHECK(pl_sgemm_run(&a) == PL_ERR_ARGUMENT, "packed B accepted as A");
    a.packed_a = NULL;
    a.packed_b = pb;
    a.K = 3;
    a.lda = 3;
    CHECK(pl_sgemm_run(&a) == PL_ERR_ARGUMENT, "packed B of the wrong K accepted");
    CHECK(pl_sgemm_pack_b(false, 2, 2, x, 2, pb, sz - 1) == PL_ERR_ARGUMENT,
          "short pack buffer accepted");
    free(pb);
    CHECK(pl_sgemm_packed_a_size(-1, 3) == 0, "negative size has a packed size");
    CHECK(pl_sgemm_packed_a_size(INT64_MAX / 2, INT64_MAX / 2) == 0, "overflow not caught");
    /* Zero sizes are fine. */
    pl_sgemm_args z = {0};
    z.M = 0;
    z.N = 5;
    z.K = 5;
    CHECK(pl_sgemm_run(&z) == PL_OK, "M = 0 failed: %s", pl_error_msg());
}

/* The GELU epilogue on a dense grid of x (every piece of the AVX-512 table, both tails,
 * the cut at |x| = 8, 0, -0, inf, NaN) against erf in double: relative accuracy,
 * the far negative tail included. */
static void test_gelu_grid(const char *isa, bool avx512) {
    enum { NX = 40000 };
    static float c[NX + 6];
    int n = 0;
    for (int i = 0; i < NX; i++) c[n++] = -10.0f + 20.0f * (float)i / NX;
    const float special[] = {0.0f, -0.0f, 8.0f, -8.0f, INFINITY, NAN};
    for (int i = 0; i < 6; i++) c[n++] = special[i];
    float x[NX + 6];
    memcpy(x, c, sizeof x);
    pl_sgemm_epilogue e = {.act = PL_SGEMM_ACT_GELU_ERF};
    pl_sgemm_apply_epilogue(c, n, 1, n, &e);
    int bad = 0;
    for (int i = 0; i < n && bad < 5; i++) {
        double want = 0.5 * x[i] * (1.0 + erf(x[i] / sqrt(2.0)));
        if (isnan(x[i]) || isinf(x[i])) {
            bool ok = isnan(x[i]) ? isnan(c[i]) : c[i] == INFINITY;
            CHECK(ok, "%s gelu(%g) = %g", isa, x[i], c[i]);
            continue;
        }
        /* AVX-512: relative everywhere; the other levels form 1 + erf (ref) or an erfc
         * with a looser fit (avx2), so their tail error is absolute, ~1e-7 |x|. */
        double tol = avx512 ? 1.5e-6 * fabs(want) + 1e-12 : 4e-6 * fabs(want) + 1e-7 * fabs(x[i]);
        if (!(fabs(c[i] - want) <= tol)) {
            bad++;
            CHECK(0, "%s gelu(%.9g) = %.9g, want %.9g", isa, x[i], c[i], want);
        }
    }
    CHECK(bad == 0, "%s gelu grid", isa);
}

int main(void) {
    const pl_cpu_info *ci = pl_cpu();
    printf("cpu: best %s, %d cores, L1d %zu K, L2 %zu K\n", pl_isa_name(ci->best),
           ci->physical_cores, ci->l1d >> 10, ci->l2 >> 10);
    pl_threadpool *pools[4] = {NULL, pl_threadpool_create(1), pl_threadpool_create(2),
                               pl_threadpool_create(3)};
    test_errors();
    for (int isa = 0; isa <= (int)ci->best; isa++) {
        pl_cpu_force_isa(isa);
        test_gelu_grid(pl_isa_name((pl_isa)isa), isa == PL_ISA_AVX512);
        int before = failures;
        int before_cases = cases;
        /* Every M x N pair around the tile sizes, two K values, alternating layouts. */
        for (int i = 0; i < NSIZES; i++)
            for (int j = 0; j < NSIZES; j++) {
                gcase g = plain(sizes[i], sizes[j], (i + j) % 2 ? 17 : 3);
                g.ta = (i + j) % 3 == 0;
                g.tb = (i * j) % 2 == 1;
                run_case(&g);
            }
        /* K == 0: beta * C plus the epilogue. */
        for (int b = 0; b < 2; b++) {
            gcase g = plain(13, 33, 0);
            g.beta = b ? 0.5f : 0.0f;
            g.col_bias = true;
            g.act = PL_SGEMM_ACT_RELU;
            run_case(&g);
        }
        /* Each epilogue on an edge-heavy shape, packed and not, 1 and 2 threads. */
        for (int act = 0; act < PL_SGEMM_ACT_COUNT; act++)
            for (int v = 0; v < 4; v++) {
                gcase g = plain(v % 2 ? 65 : 31, v % 2 ? 100 : 47, 70);
                g.act = (pl_sgemm_act)act;
                g.row_bias = v != 1;
                g.col_bias = v != 2;
                g.residual = v >= 2;
                g.beta = v == 3 ? 0.25f : 0.0f;
                g.pack_a = v == 1;
                g.pack_b = v == 2;
                g.pool = pools[v % 2 ? 2 : 0];
                run_case(&g);
            }
        /* Across the blocking: K past KC, N past NC, M past MC; all pre-packings. */
        for (int v = 0; v < 4; v++) {
            gcase g = plain(v == 3 ? 1100 : 70, v == 3 ? 40 : 1100, 700);
            g.pack_a = v & 1;
            g.pack_b = v & 2;
            g.beta = 1.0f;
            g.alpha = -0.5f;
            g.ta = v == 2;
            g.tb = v == 1;
            g.col_bias = true;
            g.act = PL_SGEMM_ACT_LEAKY_RELU;
            g.pool = pools[1 + v % 3];
            run_case(&g);
        }
        /* Pre-packed weights with the run's other size as a hint (swapped layouts for the
         * small-N convolution shapes), and runs with a different size than hinted. */
        for (int v = 0; v < 8; v++) {
            gcase g = plain(v < 4 ? 200 : 33, v < 4 ? 49 : 300, 90);
            g.pack_a = v % 4 < 2;
            g.pack_b = !g.pack_a || v % 2;
            g.hint = v % 2 ? 1 : 2;
            if (g.pack_a && g.pack_b) g.hint = 1;
            g.ta = v == 2 || v == 5;
            g.tb = v == 1 || v == 6;
            g.row_bias = g.col_bias = true;
            g.residual = v % 3 == 0;
            g.beta = v % 2 ? 0.5f : 0.0f;
            g.act = PL_SGEMM_ACT_GELU_ERF;
            g.pool = pools[v % 4];
            run_case(&g);
        }
        /* B from a row callback (implicit GEMM), in the normal and the swapped mode,
         * with pre-packed A hinted either way, on 1..3 threads. */
        for (int v = 0; v < 8; v++) {
            gcase g = plain(v < 4 ? 300 : 40, v < 4 ? 49 : 700, v % 2 ? 300 : 37);
            g.rows = true;
            g.tb = v % 3 == 1;
            g.ta = v % 4 == 3;
            g.pack_a = v % 2 == 0;
            g.hint = v % 4 == 0 ? 1 : v % 4 == 2 ? 2 : 0;
            g.row_bias = true;
            g.beta = v % 3 == 0 ? 1.0f : 0.0f;
            g.act = PL_SGEMM_ACT_RELU;
            g.pool = pools[v % 4];
            run_case(&g);
        }
        /* Transformer shapes: few rows of A against long N and K. On 2-3 threads the
         * tasks split N and share one packing of A; B packed with the row count as a
         * hint takes the long KC (several long K blocks here, the last one shorter). */
        for (int v = 0; v < 10; v++) {
            static const int ms[] = {130, 29, 1, 15, 14, 128, 43, 2, 130, 57};
            static const int ns[] = {300, 700, 500, 64, 97, 33, 260, 1000, 31, 129};
            static const int ks[] = {1600, 770, 800, 900, 1537, 768, 2311, 96, 769, 1000};
            gcase g = plain(ms[v], ns[v], ks[v]);
            g.pack_b = v % 3 != 1;
            g.hint = g.pack_b ? (v == 5 ? 2 : 1) : 0;
            g.rows = v == 4;
            if (g.rows) g.pack_b = false, g.hint = 0;
            g.ta = v % 4 == 3;
            g.tb = v % 5 == 2;
            g.pad_a = v % 2 ? 3 : 0;
            g.beta = v % 3 == 0 ? 0.5f : 0.0f;
            g.col_bias = true;
            g.residual = v % 2 == 0;
            g.act = v % 4 == 0 ? PL_SGEMM_ACT_GELU_ERF : PL_SGEMM_ACT_NONE;
            g.pool = pools[2 + v % 2];
            run_case(&g);
        }
        /* Random mixes of everything. */
        int nrand = 250;
        for (int r = 0; r < nrand; r++) {
            gcase g = plain(pick(sizes, NSIZES), pick(sizes, NSIZES), pick(sizes, NSIZES));
            if (rnd() % 8 == 0) g.K = 0;
            g.ta = rnd() % 2;
            g.tb = rnd() % 2;
            g.pad_a = rnd() % 3 == 0 ? (int)(rnd() % 5) : 0;
            g.pad_b = rnd() % 3 == 0 ? (int)(rnd() % 40) : 0;
            g.pad_c = rnd() % 3 == 0 ? (int)(rnd() % 20) : 0;
            static const float alphas[] = {1.0f, -0.7f, 2.0f};
            static const float betas[] = {0.0f, 0.0f, 1.0f, 0.5f};
            g.alpha = alphas[rnd() % 3];
            g.beta = betas[rnd() % 4];
            g.pack_a = rnd() % 3 == 0;
            g.pack_b = rnd() % 3 == 0;
            g.hint = (int)(rnd() % 3);
            if (g.pack_a && g.pack_b) g.hint = g.hint ? 1 : 0; /* layouts must agree */
            g.rows = !g.pack_b && rnd() % 5 == 0;
            g.row_bias = rnd() % 4 == 0;
            g.col_bias = rnd() % 4 == 0;
            g.residual = rnd() % 4 == 0;
            g.act = (pl_sgemm_act)(rnd() % 3 == 0 ? rnd() % PL_SGEMM_ACT_COUNT : 0);
            g.pool = pools[rnd() % 4];
            run_case(&g);
        }
        printf("%-7s %d cases, %d failures\n", pl_isa_name(pl_cpu_isa()), cases - before_cases,
               failures - before);
    }
    /* Buffers packed at the best level still run after the level is lowered: the run
     * follows the buffer. */
    pl_cpu_force_isa(ci->best);
    {
        gcase g = plain(40, 50, 60);
        g.pack_a = g.pack_b = true;
        int64_t K = g.K;
        float *A = malloc(sizeof(float) * 40 * 60), *B = malloc(sizeof(float) * 60 * 50);
        float *C = calloc(40 * 50, sizeof(float)), *R = calloc(40 * 50, sizeof(float));
        for (int i = 0; i < 40 * 60; i++) A[i] = frand();
        for (int i = 0; i < 60 * 50; i++) B[i] = frand();
        size_t sa = pl_sgemm_packed_a_size(40, K), sb = pl_sgemm_packed_b_size(K, 50);
        void *pa = malloc(sa), *pb = malloc(sb);
        CHECK(pl_sgemm_pack_a(false, 40, K, A, K, pa, sa) == PL_OK, "pack a");
        CHECK(pl_sgemm_pack_b(false, K, 50, B, 50, pb, sb) == PL_OK, "pack b");
        pl_cpu_force_isa(PL_ISA_REF);
        pl_sgemm_args a = {0};
        a.M = 40, a.N = 50, a.K = K, a.alpha = 1, a.packed_a = pa, a.packed_b = pb;
        a.C = C, a.ldc = 50;
        CHECK(pl_sgemm_run(&a) == PL_OK, "run after level switch: %s", pl_error_msg());
        pl_ref_sgemm(false, false, 40, 50, K, 1, A, K, B, 50, 0, R, 50);
        double worst = 0;
        for (int i = 0; i < 40 * 50; i++) worst = fmax(worst, fabs(C[i] - R[i]));
        CHECK(worst < 1e-4, "level switch: worst %g", worst);
        free(A), free(B), free(C), free(R), free(pa), free(pb);
    }
    pl_cpu_force_isa(-1);
    for (int i = 0; i < 4; i++) pl_threadpool_destroy(pools[i]);
    printf("%d cases, %d failures\n", cases, failures);
    return failures ? 1 : 0;
}
