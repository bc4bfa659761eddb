/* gemm_bench.c -- GFLOP/s of pl_sgemm_run on the shapes pillar's models produce
 * (ResNet-50 1x1 convolutions and 3x3 im2col GEMMs at batch 1, BERT-base MatMuls at 128
 * tokens, and 1024^3), on 1 and 2 threads, as a fraction of the FMA peak and, when
 * OpenBLAS can be loaded (dlopen of libopenblas.so.0, or the file named by
 * PILLAR_OPENBLAS), side by side with its cblas_sgemm measured in the same run.
 *
 *   gemm_bench [--threads 1,2] [--filter SUBSTRING] [--peak GFLOPS_PER_CORE]
 *              [--time SECONDS] [--raw] [--wall]
 *
 * Weights are pre-packed as a session would (A for convolutions, B for MatMuls); --raw
 * also times the same shapes with both operands unpacked. One-thread runs are timed in
 * process CPU time (robust on a shared machine) unless --wall. With PILLAR_POOL_SIM=1 the
 * pool is simulated: several-thread runs report the makespan of their tasks in thread CPU
 * time and the total work rate (duplicated packing shows there). --cold rotates copies of
 * the packed weights through more memory than the L3 holds, as a model's layers do.
 * Not part of ctest. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/cpu.h"
#include "core/threadpool.h"
#include "kernels/gemm/sgemm.h"

typedef struct shape {
    const char *group, *name;
    int64_t M, N, K;
    char weights; /* 'A', 'B' or 0 */
} shape;

/* Batch 1, 224x224 input; C[Cout, HW] = W[Cout, Cin*kh*kw] x X[Cin*kh*kw, HW]. */
static const shape shapes[] = {
    {"resnet50-1x1", "s2 64<-64 56x56", 64, 3136, 64, 'A'},
    {"resnet50-1x1", "s2 64<-256 56x56", 64, 3136, 256, 'A'},
    {"resnet50-1x1", "s2 256<-64 56x56", 256, 3136, 64, 'A'},
    {"resnet50-1x1", "s3 128<-256 56x56", 128, 3136, 256, 'A'},
    {"resnet50-1x1", "s3 128<-512 28x28", 128, 784, 512, 'A'},
    {"resnet50-1x1", "s3 512<-128 28x28", 512, 784, 128, 'A'},
    {"resnet50-1x1", "s3 512<-256 28x28 (ds)", 512, 784, 256, 'A'},
    {"resnet50-1x1", "s4 256<-512 28x28", 256, 784, 512, 'A'},
    {"resnet50-1x1", "s4 256<-1024 14x14", 256, 196, 1024, 'A'},
    {"resnet50-1x1", "s4 1024<-256 14x14", 1024, 196, 256, 'A'},
    {"resnet50-1x1", "s4 1024<-512 14x14 (ds)", 1024, 196, 512, 'A'},
    {"resnet50-1x1", "s5 512<-1024 14x14", 512, 196, 1024, 'A'},
    {"resnet50-1x1", "s5 512<-2048 7x7", 512, 49, 2048, 'A'},
    {"resnet50-1x1", "s5 2048<-512 7x7", 2048, 49, 512, 'A'},
    {"resnet50-1x1", "s5 2048<-1024 7x7 (ds)", 2048, 49, 1024, 'A'},
    {"resnet50-3x3", "conv1 7x7 64<-3 112x112", 64, 12544, 147, 'A'},
    {"resnet50-3x3", "s2 64<-64 56x56", 64, 3136, 576, 'A'},
    {"resnet50-3x3", "s3 128<-128 28x28", 128, 784, 1152, 'A'},
    {"resnet50-3x3", "s4 256<-256 14x14", 256, 196, 2304, 'A'},
    {"resnet50-3x3", "s5 512<-512 7x7", 512, 49, 4608, 'A'},
    {"bert-base", "qkv/out 128x768x768", 128, 768, 768, 'B'},
    {"bert-base", "ffn1 128x3072x768", 128, 3072, 768, 'B'},
    {"bert-base", "ffn2 128x768x3072", 128, 768, 3072, 'B'},
    {"bert-half", "strassen ffn1 64x1536x384", 64, 1536, 384, 'B'},
    {"bert-half", "strassen ffn2 64x384x1536", 64, 384, 1536, 'B'},
    {"bert-half", "strassen qkv 64x384x384", 64, 384, 384, 'B'},
    {"bert-base", "attn QK^T 128x128x64", 128, 128, 64, 0},
    {"bert-base", "attn PV 128x64x128", 128, 64, 128, 0},
    {"square", "1024^3", 1024, 1024, 1024, 0},
};
#define NSHAPES ((int)(sizeof shapes / sizeof shapes[0]))

/* cblas_sgemm(order, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc) */
typedef void (*cblas_sgemm_fn)(int, int, int, int, int, int, float, const float *, int,
                               const float *, int, float, float *, int);
typedef void (*set_threads_fn)(int);
static cblas_sgemm_fn blas_sgemm;

/* Internal tuning hook of sgemm.c (KC, NC, MC; 0 = default), driven by the environment
 * variables PILLAR_SGEMM_KC / _NC / _MC for blocking sweeps. */
void pl_sgemm_set_blocking(int64_t kc, int64_t nc, int64_t mc);
static set_threads_fn blas_set_threads;

static void load_openblas(void) {
    const char *path = getenv("PILLAR_OPENBLAS");
    void *h = dlopen(path && *path ? path : "libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
    if (!h) return;
    blas_sgemm = (cblas_sgemm_fn)dlsym(h, "cblas_sgemm");
    blas_set_threads = (set_threads_fn)dlsym(h, "openblas_set_num_threads");
    if (!blas_sgemm) blas_set_threads = NULL;
}

/* One thread: process CPU time, so that being preempted by other programs on a shared
 * machine does not count; several threads: wall time. */
static clockid_t g_clock = CLOCK_MONOTONIC;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(g_clock, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef void (*run_fn)(void *ctx);

/* Best time per call over several batches, each long enough to time reliably. */
static double time_it(run_fn fn, void *ctx, double budget) {
    fn(ctx); /* warm-up: scratch allocation, page faults, caches */
    double t0 = now_s();
    fn(ctx);
    double one = now_s() - t0;
    int reps = one > 0 ? (int)(budget / 5 / one) : 1000;
    if (reps < 1) reps = 1;
    if (reps > 100000) reps = 100000;
    double best = 1e30;
    for (int b = 0; b < 5; b++) {
        t0 = now_s();
        for (int r = 0; r < reps; r++) fn(ctx);
        double t = (now_s() - t0) / reps;
        if (t < best) best = t;
    }
    return best;
}

typedef struct bctx {
    pl_sgemm_args args;
    const void *copies[64]; /* --cold: packed weight copies used in turn */
    int ncopies, next;
    const shape *s;
    const float *A, *B;
    float *C;
} bctx;

static void run_pillar(void *p) {
    bctx *c = p;
    if (c->ncopies) {
        const void *w = c->copies[c->next++ % c->ncopies];
        if (c->args.packed_a)
            c->args.packed_a = w;
        else
            c->args.packed_b = w;
    }
    if (pl_sgemm_run(&c->args) != PL_OK) {
        fprintf(stderr, "pl_sgemm_run: %s\n", pl_error_msg());
        exit(1);
    }
}

static void run_blas(void *p) {
    bctx *c = p;
    const shape *s = c->s;
    blas_sgemm(101 /* row major */, 111, 111, (int)s->M, (int)s->N, (int)s->K, 1.0f, c->A,
               (int)s->K, c->B, (int)s->N, 0.0f, c->C, (int)s->N);
}

static size_t round64(size_t n) {
    return (n + 63) & ~(size_t)63;
}

static bool in_list(const char *list, int v) {
    char buf[64];
    snprintf(buf, sizeof buf, ",%s,", list);
    char needle[16];
    snprintf(needle, sizeof needle, ",%d,", v);
    return strstr(buf, needle) != NULL;
}

int main(int argc, char **argv) {
    const char *threads = "1,2", *filter = NULL;
    double peak = 115.0, budget = 0.25;
    bool raw = false, wall = false, cold = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = argv[++i];
        else if (!strcmp(argv[i], "--filter") && i + 1 < argc)
            filter = argv[++i];
        else if (!strcmp(argv[i], "--peak") && i + 1 < argc)
            peak = atof(argv[++i]);
        else if (!strcmp(argv[i], "--time") && i + 1 < argc)
            budget = atof(argv[++i]);
        else if (!strcmp(argv[i], "--raw"))
            raw = true;
        else if (!strcmp(argv[i], "--wall"))
            wall = true;
        else if (!strcmp(argv[i], "--cold"))
            cold = true;
        else {
            fprintf(stderr,
                    "usage: %s [--threads 1,2] [--filter S] [--peak GFLOPS] [--time S] [--raw] "
                    "[--wall] [--cold]\n",
                    argv[0]);
            return 2;
        }
    }
    load_openblas();
    const char *kc = getenv("PILLAR_SGEMM_KC"), *nc = getenv("PILLAR_SGEMM_NC"),
               *mc = getenv("PILLAR_SGEMM_MC");
    if (kc || nc || mc)
        pl_sgemm_set_blocking(kc ? atoll(kc) : 0, nc ? atoll(nc) : 0, mc ? atoll(mc) : 0);
    const pl_cpu_info *ci = pl_cpu();
    printf("pillar sgemm: kernels %s, %d cores, L1d %zuK L2 %zuK; peak %.0f GFLOP/s/core; "
           "OpenBLAS %s\n",
           pl_isa_name(pl_cpu_isa()), ci->physical_cores, ci->l1d >> 10, ci->l2 >> 10, peak,
           blas_sgemm ? "loaded" : "not found (set PILLAR_OPENBLAS)");
    printf("%-13s %-26s %2s %8s %6s %8s", "group", "shape MxNxK", "th", "GFLOP/s", "peak",
           raw ? "raw" : "");
    if (blas_sgemm) printf(" %9s %6s", "OpenBLAS", "ratio");
    printf("\n");

    for (int t = 1; t <= 64; t++) {
        if (!in_list(threads, t)) continue;
        pl_threadpool *pool = t > 1 ? pl_threadpool_create(t) : NULL;
        if (t > 1 && !pool) {
            fprintf(stderr, "cannot create %d threads\n", t);
            continue;
        }
        if (blas_set_threads) blas_set_threads(t);
        g_clock = t == 1 && !wall ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC;
        double sum_ratio = 0, sum_frac = 0;
        int n = 0;
        for (int i = 0; i < NSHAPES; i++) {
            const shape *s = &shapes[i];
            if (filter && !strstr(s->name, filter) && !strstr(s->group, filter)) continue;
            /* 64-byte aligned, as pillar's arena hands out tensors. */
            float *A = aligned_alloc(64, round64(sizeof(float) * (size_t)(s->M * s->K)));
            float *B = aligned_alloc(64, round64(sizeof(float) * (size_t)(s->K * s->N)));
            float *C = aligned_alloc(64, round64(sizeof(float) * (size_t)(s->M * s->N)));
            memset(C, 0, sizeof(float) * (size_t)(s->M * s->N));
            for (int64_t j = 0; j < s->M * s->K; j++) A[j] = (float)((j * 7) % 13) * 0.1f - 0.6f;
            for (int64_t j = 0; j < s->K * s->N; j++) B[j] = (float)((j * 5) % 11) * 0.1f - 0.5f;
            bctx c;
            memset(&c, 0, sizeof c);
            c.s = s;
            c.A = A;
            c.B = B;
            c.C = C;
            c.args.M = s->M;
            c.args.N = s->N;
            c.args.K = s->K;
            c.args.alpha = 1.0f;
            c.args.A = A;
            c.args.lda = s->K;
            c.args.B = B;
            c.args.ldb = s->N;
            c.args.C = C;
            c.args.ldc = s->N;
            c.args.pool = pool;
            double flops = 2.0 * s->M * s->N * s->K;
            double t_raw = 0;
            if (raw) t_raw = time_it(run_pillar, &c, budget);
            void *packed = NULL;
            if (s->weights == 'A') {
                size_t sz = pl_sgemm_packed_a_size(s->M, s->K);
                packed = malloc(sz);
                pl_sgemm_pack_a_hint(false, s->M, s->K, A, s->K, s->N, packed, sz);
                c.args.packed_a = packed;
            } else if (s->weights == 'B') {
                size_t sz = pl_sgemm_packed_b_size(s->K, s->N);
                packed = malloc(sz);
                pl_sgemm_pack_b_hint(false, s->K, s->N, B, s->N, s->M, packed, sz);
                c.args.packed_b = packed;
            }
            size_t wsize = s->weights == 'A'   ? pl_sgemm_packed_a_size(s->M, s->K)
                           : s->weights == 'B' ? pl_sgemm_packed_b_size(s->K, s->N)
                                               : 0;
            if (cold && packed) {
                /* Enough copies of the packed weights to overflow the last-level cache
                 * (96 MB), used in turn: weights stream from memory as in a model. */
                int ncp = (int)(96.0 * 1024 * 1024 / (double)wsize) + 1;
                c.ncopies = ncp < 64 ? ncp : 64;
                for (int k = 0; k < c.ncopies; k++) {
                    void *w = malloc(wsize);
                    memcpy(w, packed, wsize);
                    c.copies[k] = w;
                }
            }
            double tp = time_it(run_pillar, &c, budget);
            double sim_task = 0, sim_span = 0;
            if (pool && pl_threadpool_sim_take(pool, &sim_task, &sim_span)) {
                /* Simulated pool (PILLAR_POOL_SIM=1): time = the makespan of the tasks in
                 * thread CPU time, robust on a loaded machine; also the total work. */
                int calls = tp > 0 ? (int)(budget / tp) : 200;
                calls = calls < 5 ? 5 : calls > 200 ? 200 : calls;
                for (int r = 0; r < calls; r++) run_pillar(&c);
                pl_threadpool_sim_take(pool, &sim_task, &sim_span);
                tp = sim_span / calls;
                sim_task /= calls;
            }
            double gf = flops / tp * 1e-9;
            char label[64];
            snprintf(label, sizeof label, "%s %lldx%lldx%lld", s->name, (long long)s->M,
                     (long long)s->N, (long long)s->K);
            printf("%-13s %-26.26s %2d %8.1f %5.1f%%", s->group, s->name, t, gf,
                   100.0 * gf / (peak * t));
            if (raw)
                printf(" %8.1f", flops / t_raw * 1e-9);
            else
                printf(" %8s", "");
            sum_frac += gf / (peak * t);
            if (blas_sgemm) {
                double tb = time_it(run_blas, &c, budget);
                double gb = flops / tb * 1e-9;
                printf(" %9.1f %5.2fx", gb, gf / gb);
                sum_ratio += gf / gb;
            }
            printf("   %s", label + strlen(s->name) + 1);
            if (sim_task > 0) printf("  sim: work %.1f GFLOP/s-core", flops / sim_task * 1e-9);
            printf("\n");
            n++;
            for (int k = 0; k < c.ncopies; k++) free((void *)c.copies[k]);
            free(packed);
            free(A);
            free(B);
            free(C);
        }
        if (n) {
            printf("%d threads: mean %.1f%% of peak", t, 100.0 * sum_frac / n);
            if (blas_sgemm) printf(", mean ratio to OpenBLAS %.2fx", sum_ratio / n);
            printf("\n\n");
        }
        pl_threadpool_destroy(pool);
    }
    return 0;
}
