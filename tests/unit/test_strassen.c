/* test_strassen.c -- one Strassen level (kernels/gemm/strassen.h) against a double
 * reference on every kernel level this CPU has: odd and even row counts (the odd last
 * row), sizes around the 14 x 32 tile and its halves, every epilogue part (row and column
 * bias, residual, GELU), alpha != 1, 0..3 threads; and the argument errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "core/threadpool.h"
#include "kernels/gemm/strassen.h"

#include "check.h"

static float frand(void) {
    return (float)(rnd() % 2000001) / 1000000.0f - 1.0f;
}

static double gelu(double x) {
    return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
}

/* Runs one case and checks every element against the double reference within its tolerance. */
static void one_case(int64_t M, int64_t K, int64_t N, int epi_kind, float alpha,
                     pl_threadpool *pool, const char *isa) {
    float *A = malloc(sizeof(float) * (size_t)(M * K + 1)),
          *B = malloc(sizeof(float) * (size_t)(K * N));
    float *C = malloc(sizeof(float) * (size_t)(M * N + 1)),
          *R = malloc(sizeof(float) * (size_t)(M * N + 1));
    float *rb = malloc(sizeof(float) * (size_t)(M + 1)), *cb = malloc(sizeof(float) * (size_t)N);
    for (int64_t i = 0; i < M * K; i++) A[i] = frand();
    for (int64_t i = 0; i < K * N; i++) B[i] = frand();
    for (int64_t i = 0; i < M * N; i++) R[i] = frand(), C[i] = NAN; /* C must not be read */
    for (int64_t i = 0; i < M; i++) rb[i] = frand();
    for (int64_t i = 0; i < N; i++) cb[i] = frand();
    pl_sgemm_epilogue ep;
    memset(&ep, 0, sizeof ep);
    if (epi_kind == 1) ep.col_bias = cb, ep.act = PL_SGEMM_ACT_GELU_ERF;
    if (epi_kind == 2) ep.row_bias = rb, ep.residual = R, ep.ld_residual = N;
    if (epi_kind == 3)
        ep.col_bias = cb, ep.residual = R, ep.ld_residual = N, ep.act = PL_SGEMM_ACT_RELU;
    size_t ps = pl_strassen_packed_size(K, N, M);
    void *pk = malloc(ps);
    size_t ss = pl_strassen_scratch_size(M, K, N);
    void *scr = malloc(ss + 3);
    pl_status st = pl_strassen_pack(K, N, B, N, M, pk, ps);
    CHECK(st == PL_OK, "%s pack %lldx%lld: %s", isa, (long long)K, (long long)N, pl_error_msg());
    /* unaligned scratch on purpose */
    st = pl_strassen_run(M, N, K, alpha, A, K, pk, C, N, epi_kind ? &ep : NULL, pool,
                         (char *)scr + 3, ss);
    CHECK(st == PL_OK, "%s run %lldx%lldx%lld: %s", isa, (long long)M, (long long)N, (long long)K,
          pl_error_msg());
    /* Norm-wise tolerance: Strassen's error is bounded by the largest |A||B| sum. */
    double smax = 0;
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++) s += fabs((double)A[m * K + k] * B[k * N + n]);
            if (s > smax) smax = s;
        }
    int bad = 0;
    for (int64_t m = 0; m < M && !bad; m++)
        for (int64_t n = 0; n < N; n++) {
            double v = 0;
            for (int64_t k = 0; k < K; k++) v += (double)A[m * K + k] * B[k * N + n];
            v *= alpha;
            double extra = 0;
            if (ep.row_bias) v += rb[m], extra += fabs(rb[m]);
            if (ep.col_bias) v += cb[n], extra += fabs(cb[n]);
            if (ep.residual) v += R[m * N + n], extra += fabs(R[m * N + n]);
            if (ep.act == PL_SGEMM_ACT_GELU_ERF) v = gelu(v);
            if (ep.act == PL_SGEMM_ACT_RELU) v = v > 0 ? v : 0;
            double tol = 2e-6 * (1.0 + (double)K / 16.0) * fabs(alpha) * smax +
                         2e-6 * (extra + fabs(v)) + 1e-6;
            double d = fabs((double)C[m * N + n] - v);
            if (!(d <= tol)) {
                CHECK(
                    0,
                    "%s %lldx%lldx%lld epi %d alpha %g: C[%lld][%lld] = %.8g, want %.8g (tol %.3g)",
                    isa, (long long)M, (long long)N, (long long)K, epi_kind, alpha, (long long)m,
                    (long long)n, C[m * N + n], v, tol);
                bad = 1;
                break;
            }
        }
    CHECK(!bad, "see above");
    free(A), free(B), free(C), free(R), free(rb), free(cb), free(pk), free(scr);
}

static void test_errors(void) {
    CHECK(pl_strassen_packed_size(7, 8, 4) == 0, "odd K has a packed size");
    CHECK(pl_strassen_packed_size(8, 9, 4) == 0, "odd N has a packed size");
    CHECK(pl_strassen_packed_size(0, 8, 4) == 0, "K = 0 has a packed size");
    float B[8 * 9] = {0};
    char buf[64];
    pl_status st = pl_strassen_pack(8, 9, B, 9, 4, buf, sizeof buf);
    CHECK(st == PL_ERR_ARGUMENT && strstr(pl_error_msg(), "must be even"), "odd N: %s",
          pl_error_msg());
    size_t ps = pl_strassen_packed_size(8, 8, 4);
    void *pk = malloc(ps);
    st = pl_strassen_pack(8, 8, B, 8, 4, pk, ps - 1);
    CHECK(st == PL_ERR_ARGUMENT && strstr(pl_error_msg(), "smaller than"), "small buffer: %s",
          pl_error_msg());
    CHECK(pl_strassen_pack(8, 8, B, 8, 4, pk, ps) == PL_OK, "pack 8x8");
    float A[4 * 8] = {0}, C[4 * 8];
    char scr[8];
    st = pl_strassen_run(4, 8, 8, 1.0f, A, 8, pk, C, 8, NULL, NULL, scr, sizeof scr);
    CHECK(st == PL_ERR_ARGUMENT && strstr(pl_error_msg(), "scratch has 8 bytes"),
          "small scratch: %s", pl_error_msg());
    size_t ss = pl_strassen_scratch_size(4, 8, 8);
    void *s2 = malloc(ss);
    st = pl_strassen_run(4, 6, 8, 1.0f, A, 8, pk, C, 8, NULL, NULL, s2, ss);
    CHECK(st == PL_ERR_ARGUMENT && strstr(pl_error_msg(), "weight is 8 x 8"), "wrong N: %s",
          pl_error_msg());
    st = pl_strassen_run(4, 8, 8, 1.0f, A, 8, B, C, 8, NULL, NULL, s2, ss);
    CHECK(st == PL_ERR_ARGUMENT && strstr(pl_error_msg(), "not a Strassen"), "not packed: %s",
          pl_error_msg());
    CHECK(pl_strassen_run(0, 8, 8, 1.0f, A, 8, pk, C, 8, NULL, NULL, s2, ss) == PL_OK, "M = 0");
    free(pk);
    free(s2);
}

int main(void) {
    static const int64_t ms[] = {1, 2, 3, 13, 28, 29, 30, 64, 65, 128};
    static const int64_t kns[] = {2, 16, 30, 64, 66, 130};
    pl_threadpool *pools[4] = {NULL, pl_threadpool_create(1), pl_threadpool_create(2),
                               pl_threadpool_create(3)};
    const pl_cpu_info *ci = pl_cpu();
    for (int isa = PL_ISA_REF; isa <= (int)ci->best; isa++) {
        if (isa != PL_ISA_REF && isa != PL_ISA_AVX2 && isa != PL_ISA_AVX512) continue;
        pl_cpu_force_isa((pl_isa)isa);
        const char *name = pl_isa_name((pl_isa)isa);
        for (size_t mi = 0; mi < sizeof ms / sizeof ms[0]; mi++)
            for (size_t ki = 0; ki < sizeof kns / sizeof kns[0]; ki++) {
                int64_t K = kns[ki], N = kns[(ki + mi) % (sizeof kns / sizeof kns[0])];
                int epi = (int)((mi + ki) % 4);
                float alpha = (mi + ki) % 3 == 0 ? 0.125f : 1.0f;
                one_case(ms[mi], K, N, epi, alpha, pools[(mi + 2 * ki) % 4], name);
            }
        /* The model's shape class: 128 tokens, all epilogues, 2 threads. */
        for (int epi = 0; epi < 4; epi++) one_case(128, 192, 256, epi, 1.0f, pools[2], name);
        one_case(127, 96, 320, 1, 0.5f, pools[3], name);
    }
    pl_cpu_force_isa(-1);
    test_errors();
    for (int i = 0; i < 4; i++) pl_threadpool_destroy(pools[i]);
    printf("test_strassen: %d checks, %d failures\n", cases, failures);
    return failures ? 1 : 0;
}
