/* strassen_bench.c -- one Strassen level (kernels/gemm/strassen.h) against the plain
 * packed SGEMM on the BERT-like encoder's MatMul shapes (128 tokens), alternating the
 * two in the same run, several rounds; prints the ms per call of each and the ratio.
 *
 *   strassen_bench [--threads N] [--rounds R] [--iters I] [--cold] [--m M]
 *
 * One thread is timed in process CPU time, more in wall time, or with PILLAR_POOL_SIM=1
 * by the simulated makespan of the pool's tasks in thread CPU time (serial parts outside
 * the pool are then not counted; here there are none). --cold rotates enough
 * copies of the weights to exceed the L3, as the model's layers do. Not part of ctest. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/threadpool.h"
#include "kernels/gemm/sgemm.h"
#include "kernels/gemm/strassen.h"

static double now(int cpu) {
    struct timespec t;
    clock_gettime(cpu ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
    int threads = 1, rounds = 5, iters = 20, cold = 0;
    int64_t M = 128;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--iters") && i + 1 < argc)
            iters = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--m") && i + 1 < argc)
            M = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--cold"))
            cold = 1;
        else {
            fprintf(
                stderr,
                "usage: strassen_bench [--threads N] [--rounds R] [--iters I] [--cold] [--m M]\n");
            return 2;
        }
    }
    static const int64_t shapes[][2] = {{768, 3072}, {3072, 768}, {768, 768}, {768, 2304}};
    pl_threadpool *pool = threads > 1 ? pl_threadpool_create(threads) : NULL;
    printf("M = %lld, threads %d, %s weights, %s time\n", (long long)M, threads,
           cold ? "cold" : "hot", threads > 1 ? "wall" : "CPU");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int64_t K = shapes[s][0], N = shapes[s][1];
        size_t wbytes = (size_t)(K * N) * 4;
        int ncopy = cold ? (int)(96u * 1024 * 1024 / wbytes) + 1 : 1;
        float *A = malloc((size_t)(M * K) * 4), *B = malloc(wbytes),
              *C = malloc((size_t)(M * N) * 4);
        float *bias = malloc((size_t)N * 4);
        for (int64_t i = 0; i < M * K; i++) A[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
        for (int64_t i = 0; i < K * N; i++) B[i] = (float)((i * 104729) % 1000) / 1000.0f - 0.5f;
        for (int64_t i = 0; i < N; i++) bias[i] = 0.01f * (float)(i % 7);
        size_t ps = pl_sgemm_packed_b_size(K, N), ss = pl_strassen_packed_size(K, N, M);
        void **pp = malloc(sizeof(void *) * (size_t)ncopy),
             **sp = malloc(sizeof(void *) * (size_t)ncopy);
        for (int c = 0; c < ncopy; c++) {
            pp[c] = malloc(ps);
            sp[c] = malloc(ss);
            pl_sgemm_pack_b_hint(false, K, N, B, N, M, pp[c], ps);
            pl_strassen_pack(K, N, B, N, M, sp[c], ss);
        }
        size_t scr = pl_strassen_scratch_size(M, K, N);
        void *scratch = malloc(scr);
        pl_sgemm_epilogue ep = {.col_bias = bias, .act = PL_SGEMM_ACT_GELU_ERF};
        double best[2] = {1e30, 1e30}, sum[2] = {0, 0}, ts0, ss0;
        if (pool) pl_threadpool_sim_take(pool, &ts0, &ss0);
        int cpu = threads <= 1;
        for (int r = 0; r < rounds; r++) {
            for (int v = 0; v < 2; v++) {
                int w = r & 1 ? 1 - v : v;
                double t0 = now(cpu);
                for (int it = 0; it < iters; it++) {
                    int c = it % ncopy;
                    if (w == 0) {
                        pl_sgemm_args g = {.M = M,
                                           .N = N,
                                           .K = K,
                                           .alpha = 1,
                                           .A = A,
                                           .lda = K,
                                           .packed_b = pp[c],
                                           .C = C,
                                           .ldc = N,
                                           .epilogue = &ep,
                                           .pool = pool};
                        pl_sgemm_run(&g);
                    } else {
                        pl_strassen_run(M, N, K, 1.0f, A, K, sp[c], C, N, &ep, pool, scratch, scr);
                    }
                }
                double ms = (now(cpu) - t0) * 1e3 / iters, task_s, span_s;
                /* Simulated pool (PILLAR_POOL_SIM=1): the makespan of the tasks. */
                if (pool && pl_threadpool_sim_take(pool, &task_s, &span_s))
                    ms = span_s * 1e3 / iters;
                sum[w] += ms;
                if (ms < best[w]) best[w] = ms;
            }
        }
        printf("%4lld x %4lld x %4lld: sgemm %.3f ms (best %.3f), strassen %.3f ms (best %.3f): "
               "ratio %.3f (best %.3f)\n",
               (long long)M, (long long)N, (long long)K, sum[0] / rounds, best[0], sum[1] / rounds,
               best[1], sum[1] / sum[0], best[1] / best[0]);
        for (int c = 0; c < ncopy; c++) free(pp[c]), free(sp[c]);
        free(pp), free(sp), free(A), free(B), free(C), free(bias), free(scratch);
    }
    pl_threadpool_destroy(pool);
    return 0;
}
