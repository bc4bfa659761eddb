/* sparse_mm_bench.c -- the sparse MatMul path (ops/matmul_sparse.c) against the dense
 * packed SGEMM on the same pruned weights, one thread, CPU time (robust on a shared
 * machine): BERT-base shapes (T = 128 tokens; 768x768, 768x3072, 3072x768) and the
 * batch-1 classifier (T = 1), at 0-98% unstructured sparsity. Prints measured times,
 * the ratio, and both cost-model estimates, to fit and check the chooser's model.
 *
 *   build/sparse_mm_bench [--reps N]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/gemm/sgemm.h"
#include "ops/linalg_util.h"

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng = 88172645463325252ull;
static double urand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

int main(int argc, char **argv) {
    int reps = 20;
    if (argc == 3 && !strcmp(argv[1], "--reps")) reps = atoi(argv[2]);
    const int64_t shapes[][3] = {{128, 768, 768}, {128, 3072, 768}, {128, 768, 3072},
                                 {1, 768, 768},   {1, 1000, 2048},  {16, 768, 768}};
    const double sps[] = {0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98};
    printf("%-18s %6s %10s %10s %7s %10s %10s\n", "T x N x K", "sparse", "dense ms", "sparse ms",
           "ratio", "model d", "model s");
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const int64_t T = shapes[si][0], N = shapes[si][1], K = shapes[si][2];
        float *A = malloc(sizeof(float) * (size_t)(T * K)),
              *W = malloc(sizeof(float) * (size_t)(K * N));
        float *Y = malloc(sizeof(float) * (size_t)(T * N)),
              *bias = malloc(sizeof(float) * (size_t)N);
        for (int64_t i = 0; i < T * K; i++) A[i] = (float)urand() - 0.5f;
        for (int64_t i = 0; i < N; i++) bias[i] = (float)urand();
        for (size_t p = 0; p < sizeof sps / sizeof sps[0]; p++) {
            for (int64_t i = 0; i < K * N; i++)
                W[i] = urand() < sps[p] ? 0.0f : (float)urand() - 0.5f;
            size_t psize = pl_sgemm_packed_b_size(K, N);
            void *pb = malloc(psize);
            pl_sgemm_pack_b(false, K, N, W, N, pb, psize);
            pl_sgemm_epilogue ep = {.col_bias = bias};
            pl_sgemm_args g = {.M = T,
                               .N = N,
                               .K = K,
                               .alpha = 1,
                               .A = A,
                               .lda = K,
                               .packed_b = pb,
                               .C = Y,
                               .ldc = N,
                               .epilogue = &ep};
            double t0 = cpu_now();
            for (int r = 0; r < reps; r++) pl_sgemm_run(&g);
            double td = (cpu_now() - t0) / reps;
            pl_op_ctx c;
            memset(&c, 0, sizeof c);
            mm_sparse *sp = NULL;
            size_t scr = 0;
            mm_sparse_prepare(&c, W, N, K, 1, N, T, 1.0f, 1, &sp, &scr);
            c.scratch = aligned_alloc(64, (scr + 63) & ~(size_t)63);
            c.scratch_size = scr;
            t0 = cpu_now();
            for (int r = 0; r < reps; r++) mm_sparse_run(&c, sp, T, A, K, false, Y, &ep);
            double ts = (cpu_now() - t0) / reps;
            char name[64];
            snprintf(name, sizeof name, "%lldx%lldx%lld", (long long)T, (long long)N, (long long)K);
            printf("%-18s %5.0f%% %10.3f %10.3f %6.2fx %10.3f %10.3f\n", name, 100 * sps[p],
                   1e3 * td, 1e3 * ts, td / ts, 1e3 * mm_sparse_dense_cost(T, N, K),
                   1e3 * mm_sparse_cost(sp));
            free(c.scratch);
            mm_sparse_free(sp);
            free(pb);
        }
        free(A);
        free(W);
        free(Y);
        free(bias);
    }
    return 0;
}
