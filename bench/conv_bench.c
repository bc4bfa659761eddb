/* conv_bench.c -- GFLOP/s of the fast convolutions (kernels/conv/conv_fast.h) on every
 * distinct convolution of ResNet-50 and MobileNetV2 at batch 1 (224x224), with the
 * fraction of the FMA peak, per algorithm; and the weighted total per model (the time
 * all of a model's convolutions take, counting repeats).
 *
 *   conv_bench [--threads N] [--batch N] [--filter SUBSTRING] [--peak GFLOPS_PER_CORE]
 *              [--time SECONDS] [--algo A[,B...]] [--wall] [--sim] [--sparsity S[,S...]]
 *              [--ab NAME=VALUE]
 *
 * --batch N times every layer at batch N (default 1; the batched algorithms, e.g.
 * Winograd over the tiles of several images, only apply at N > 1).
 *
 * --sim (with --threads N > 1): the tasks run one by one on one thread in a simulated
 * pool of N (threadpool.h) and the times are the simulated N-thread times: load
 * imbalance, repeated work and serial parts count, dispatch and memory contention do
 * not. Robust on a busy machine.
 *
 * --sparsity (fractions or percentages, e.g. 0,50,90): each layer's weights are
 * magnitude-pruned to each sparsity S, and the dense algorithm (AUTO's choice for the
 * unpruned weights), the SPARSE algorithm and AUTO (which may pick SPARSE from the
 * pruned weights) are timed in alternation; rows give their times and the speed-ups
 * over dense, totals per model and sparsity (the check that AUTO never loses).
 *
 * --ab NAME=VALUE plans each layer twice with the first algorithm, the second (rows
 * marked B) with the environment variable NAME=VALUE set while it is planned, and times
 * the two in alternation in one process (an A/B of a planning knob on a busy machine).
 *
 * --res adds a residual input (the conv3 of a bottleneck block: y = relu(conv + res)).
 *
 * --algo lists algorithms (auto, sgemm, igemm, igemm_t, depthwise, winograd; default
 * auto); with several, each layer runs them in alternation and every one gets a row
 * (the best of 5 rounds), so they can be compared on a busy machine. One-thread runs are timed in
 * thread CPU time (robust on a shared machine) unless --wall. Not part of ctest. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/cpu.h"
#include "core/threadpool.h"
#include "kernels/conv/conv_fast.h"

typedef struct layer {
    const char *model;
    int count; /* occurrences in the model */
    int64_t C, H, M, K, S, P, G;
} layer;

/* model, count, in channels, in size, out channels, kernel, stride, pad, group */
static const layer layers[] = {
    {"resnet50", 1, 3, 224, 64, 7, 2, 3, 1},
    {"resnet50", 1, 64, 56, 64, 1, 1, 0, 1},
    {"resnet50", 3, 64, 56, 64, 3, 1, 1, 1},
    {"resnet50", 4, 64, 56, 256, 1, 1, 0, 1},
    {"resnet50", 2, 256, 56, 64, 1, 1, 0, 1},
    {"resnet50", 1, 256, 56, 128, 1, 1, 0, 1},
    {"resnet50", 1, 128, 56, 128, 3, 2, 1, 1},
    {"resnet50", 4, 128, 28, 512, 1, 1, 0, 1},
    {"resnet50", 1, 256, 56, 512, 1, 2, 0, 1},
    {"resnet50", 3, 512, 28, 128, 1, 1, 0, 1},
    {"resnet50", 3, 128, 28, 128, 3, 1, 1, 1},
    {"resnet50", 1, 512, 28, 256, 1, 1, 0, 1},
    {"resnet50", 1, 256, 28, 256, 3, 2, 1, 1},
    {"resnet50", 6, 256, 14, 1024, 1, 1, 0, 1},
    {"resnet50", 1, 512, 28, 1024, 1, 2, 0, 1},
    {"resnet50", 5, 1024, 14, 256, 1, 1, 0, 1},
    {"resnet50", 5, 256, 14, 256, 3, 1, 1, 1},
    {"resnet50", 1, 1024, 14, 512, 1, 1, 0, 1},
    {"resnet50", 1, 512, 14, 512, 3, 2, 1, 1},
    {"resnet50", 3, 512, 7, 2048, 1, 1, 0, 1},
    {"resnet50", 1, 1024, 14, 2048, 1, 2, 0, 1},
    {"resnet50", 2, 2048, 7, 512, 1, 1, 0, 1},
    {"resnet50", 2, 512, 7, 512, 3, 1, 1, 1},
    {"mobilenet_v2", 1, 3, 224, 32, 3, 2, 1, 1},
    {"mobilenet_v2", 1, 32, 112, 32, 3, 1, 1, 32},
    {"mobilenet_v2", 1, 32, 112, 16, 1, 1, 0, 1},
    {"mobilenet_v2", 1, 16, 112, 96, 1, 1, 0, 1},
    {"mobilenet_v2", 1, 96, 112, 96, 3, 2, 1, 96},
    {"mobilenet_v2", 1, 96, 56, 24, 1, 1, 0, 1},
    {"mobilenet_v2", 2, 24, 56, 144, 1, 1, 0, 1},
    {"mobilenet_v2", 1, 144, 56, 144, 3, 1, 1, 144},
    {"mobilenet_v2", 1, 144, 56, 24, 1, 1, 0, 1},
    {"mobilenet_v2", 1, 144, 56, 144, 3, 2, 1, 144},
    {"mobilenet_v2", 1, 144, 28, 32, 1, 1, 0, 1},
    {"mobilenet_v2", 3, 32, 28, 192, 1, 1, 0, 1},
    {"mobilenet_v2", 2, 192, 28, 192, 3, 1, 1, 192},
    {"mobilenet_v2", 2, 192, 28, 32, 1, 1, 0, 1},
    {"mobilenet_v2", 1, 192, 28, 192, 3, 2, 1, 192},
    {"mobilenet_v2", 1, 192, 14, 64, 1, 1, 0, 1},
    {"mobilenet_v2", 4, 64, 14, 384, 1, 1, 0, 1},
    {"mobilenet_v2", 4, 384, 14, 384, 3, 1, 1, 384},
    {"mobilenet_v2", 3, 384, 14, 64, 1, 1, 0, 1},
    {"mobilenet_v2", 1, 384, 14, 96, 1, 1, 0, 1},
    {"mobilenet_v2", 3, 96, 14, 576, 1, 1, 0, 1},
    {"mobilenet_v2", 2, 576, 14, 576, 3, 1, 1, 576},
    {"mobilenet_v2", 2, 576, 14, 96, 1, 1, 0, 1},
    {"mobilenet_v2", 1, 576, 14, 576, 3, 2, 1, 576},
    {"mobilenet_v2", 1, 576, 7, 160, 1, 1, 0, 1},
    {"mobilenet_v2", 3, 160, 7, 960, 1, 1, 0, 1},
    {"mobilenet_v2", 3, 960, 7, 960, 3, 1, 1, 960},
    {"mobilenet_v2", 2, 960, 7, 160, 1, 1, 0, 1},
    {"mobilenet_v2", 1, 960, 7, 320, 1, 1, 0, 1},
    {"mobilenet_v2", 1, 320, 7, 1280, 1, 1, 0, 1},
};
#define NLAYERS ((int)(sizeof layers / sizeof layers[0]))

/* --sim: a simulated pool (threadpool.h); time is the caller's CPU time with each run's
 * task time replaced by its simulated makespan. */
static pl_threadpool *g_sim;
static double g_sim_adj, g_sim_task, g_sim_span;

static double now_s(bool wall) {
    struct timespec t;
    clock_gettime(wall && !g_sim ? CLOCK_MONOTONIC : CLOCK_THREAD_CPUTIME_ID, &t);
    double task, span;
    if (g_sim && pl_threadpool_sim_take(g_sim, &task, &span)) {
        g_sim_adj += task - span;
        g_sim_task += task;
        g_sim_span += span;
    }
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9 - g_sim_adj;
}

static float *rand_buf(int64_t n) {
    float *p = malloc(sizeof(float) * (size_t)n);
    uint32_t s = 12345;
    for (int64_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = (float)(s >> 8) / (float)(1u << 24) - 0.5f;
    }
    return p;
}

#define MAX_ALGOS 4
#define ROUNDS 5
#define MAX_SP 8

static int cmp_abs(const void *a, const void *b) {
    const float x = fabsf(*(const float *)a), y = fabsf(*(const float *)b);
    return x < y ? -1 : x > y;
}

/* Zeroes the fraction s of w with the smallest magnitudes. */
static void prune_to(float *w, int64_t n, double s) {
    float *t = malloc(sizeof(float) * (size_t)n);
    memcpy(t, w, sizeof(float) * (size_t)n);
    qsort(t, (size_t)n, sizeof(float), cmp_abs);
    const int64_t cut = (int64_t)(s * (double)n);
    if (cut <= 0) {
        free(t);
        return;
    }
    const float thr = fabsf(t[cut - 1]);
    int64_t zeroed = 0;
    for (int64_t i = 0; i < n && zeroed < cut; i++)
        if (fabsf(w[i]) <= thr) w[i] = 0.0f, zeroed++;
    free(t);
}

/* Times plans f[0..n) in alternation (best of ROUNDS), seconds per run into best[]. */
static void time_plans(pl_conv_fast **f, int n, const float *x, float *y, pl_threadpool *pool,
                       double min_time, bool wall, double *best);

static void time_plans(pl_conv_fast **f, int n, const float *x, float *y, pl_threadpool *pool,
                       double min_time, bool wall, double *best) {
    void *scratch[MAX_ALGOS] = {0};
    size_t ss[MAX_ALGOS] = {0};
    for (int a = 0; a < n; a++) {
        best[a] = 1e30;
        ss[a] = pl_conv_fast_scratch_size(f[a]);
        scratch[a] = ss[a] ? aligned_alloc(64, (ss[a] + 63) & ~(size_t)63) : NULL;
        pl_conv_fast_run(f[a], x, NULL, y, scratch[a], ss[a], pool); /* warm up */
    }
    for (int r = 0; r < ROUNDS; r++)
        for (int a = 0; a < n; a++) {
            int reps = 0;
            double t0 = now_s(wall), t;
            do {
                pl_conv_fast_run(f[a], x, NULL, y, scratch[a], ss[a], pool);
                reps++;
                t = now_s(wall) - t0;
            } while (t < min_time / ROUNDS);
            if (t / reps < best[a]) best[a] = t / reps;
        }
    for (int a = 0; a < n; a++) free(scratch[a]);
}

static void params_of(const layer *L, pl_conv_params *p) {
    memset(p, 0, sizeof *p);
    p->ndim = 2;
    p->batch = 1;
    p->in_channels = L->C;
    p->out_channels = L->M;
    p->group = L->G;
    for (int d = 0; d < 2; d++) {
        p->in_size[d] = L->H;
        p->kernel[d] = L->K;
        p->stride[d] = L->S;
        p->pad_begin[d] = L->P;
        p->dilation[d] = 1;
        p->out_size[d] = (L->H + 2 * L->P - L->K) / L->S + 1;
    }
}

/* --sparsity mode: dense vs SPARSE vs AUTO per layer and sparsity. */
static void sparsity_mode(const double *sp, int nsp, const char *filter, pl_threadpool *pool,
                          int threads, double min_time, bool wall) {
    printf("%-13s %-26s %5s %9s %9s %9s %-9s %7s %7s\n", "model", "layer", "sp%", "dense_ms",
           "sparse_ms", "auto_ms", "auto", "sparse", "auto");
    const char *models[] = {"resnet50", "mobilenet_v2"};
    for (int mi = 0; mi < 2; mi++) {
        double tot_d = 0, tot_s[MAX_SP] = {0}, tot_a[MAX_SP] = {0};
        int shown = 0;
        for (int li = 0; li < NLAYERS; li++) {
            const layer *L = &layers[li];
            if (strcmp(L->model, models[mi])) continue;
            char name[64];
            snprintf(name, sizeof name, "%lld<-%lld %lldx%lld k%lld s%lld g%lld", (long long)L->M,
                     (long long)L->C, (long long)L->H, (long long)L->H, (long long)L->K,
                     (long long)L->S, (long long)L->G);
            if (filter && !strstr(name, filter) && !strstr(L->model, filter)) continue;
            pl_conv_params p;
            params_of(L, &p);
            const int64_t OHW = p.out_size[0] * p.out_size[1], nw = L->M * L->C / L->G * L->K * L->K;
            float *x = rand_buf(L->C * L->H * L->H), *w0 = rand_buf(nw), *w = malloc(sizeof(float) * (size_t)nw);
            float *b = rand_buf(L->M), *y = malloc(sizeof(float) * (size_t)(L->M * OHW));
            pl_conv_act act = {PL_CONV_ACT_RELU, 0, 0};
            pl_conv_fast *dense = NULL;
            if (pl_conv_fast_create(&p, w0, b, &act, PL_CONV_ALGO_AUTO, threads, &dense)) {
                printf("%-13s %-26s %s\n", L->model, name, pl_error_msg());
                continue;
            }
            double dense_best = 1e30;
            for (int si = 0; si < nsp; si++) {
                memcpy(w, w0, sizeof(float) * (size_t)nw);
                prune_to(w, nw, sp[si]);
                pl_conv_fast *f[3] = {dense, NULL, NULL};
                if (pl_conv_fast_create(&p, w, b, &act, PL_CONV_ALGO_SPARSE, threads, &f[1]) ||
                    pl_conv_fast_create(&p, w, b, &act, PL_CONV_ALGO_AUTO, threads, &f[2])) {
                    printf("%-13s %-26s %s\n", L->model, name, pl_error_msg());
                    pl_conv_fast_destroy(f[1]);
                    continue;
                }
                double best[3];
                time_plans(f, 3, x, y, pool, min_time, wall, best);
                if (best[0] < dense_best) dense_best = best[0];
                printf("%-13s %-26s %5.1f %9.3f %9.3f %9.3f %-9s %6.2fx %6.2fx  x%d\n", L->model, name,
                       100.0 * sp[si], best[0] * 1e3, best[1] * 1e3, best[2] * 1e3,
                       pl_conv_algo_name(pl_conv_fast_algo(f[2])), best[0] / best[1], best[0] / best[2],
                       L->count);
                tot_s[si] += best[1] * 1e3 * L->count;
                tot_a[si] += best[2] * 1e3 * L->count;
                pl_conv_fast_destroy(f[1]);
                pl_conv_fast_destroy(f[2]);
            }
            tot_d += dense_best * 1e3 * L->count;
            shown++;
            pl_conv_fast_destroy(dense);
            free(x), free(w0), free(w), free(b), free(y);
        }
        for (int si = 0; shown && si < nsp; si++)
            printf("%-13s %-26s %5.1f %9.3f %9.3f %9.3f %-9s %6.2fx %6.2fx\n", models[mi], "TOTAL (weighted)",
                   100.0 * sp[si], tot_d, tot_s[si], tot_a[si], "", tot_d / tot_s[si], tot_d / tot_a[si]);
    }
}

int main(int argc, char **argv) {
    int threads = 1, batch = 1;
    const char *filter = NULL;
    double peak = 115.0, min_time = 0.3;
    bool wall = false, sim = false, with_res = false;
    pl_conv_algo algos[MAX_ALGOS] = {PL_CONV_ALGO_AUTO};
    int nalgo = 1;
    double sp[MAX_SP];
    int nsp = 0;
    char ab[128] = "";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--filter") && i + 1 < argc) filter = argv[++i];
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = atoi(argv[++i]) < 1 ? 1 : atoi(argv[i]);
        else if (!strcmp(argv[i], "--peak") && i + 1 < argc) peak = atof(argv[++i]);
        else if (!strcmp(argv[i], "--time") && i + 1 < argc) min_time = atof(argv[++i]);
        else if (!strcmp(argv[i], "--wall")) wall = true;
        else if (!strcmp(argv[i], "--sim")) sim = true;
        else if (!strcmp(argv[i], "--res")) with_res = true;
        else if (!strcmp(argv[i], "--ab") && i + 1 < argc && strchr(argv[i + 1], '=')) snprintf(ab, sizeof ab, "%s", argv[++i]);
        else if (!strcmp(argv[i], "--sparsity") && i + 1 < argc) {
            char buf[256];
            snprintf(buf, sizeof buf, "%s", argv[++i]);
            for (char *t = strtok(buf, ","); t && nsp < MAX_SP; t = strtok(NULL, ",")) {
                double v = atof(t);
                sp[nsp++] = v > 1.0 ? v / 100.0 : v;
            }
        }
        else if (!strcmp(argv[i], "--algo") && i + 1 < argc) {
            char buf[256];
            snprintf(buf, sizeof buf, "%s", argv[++i]);
            nalgo = 0;
            for (char *t = strtok(buf, ","); t && nalgo < MAX_ALGOS; t = strtok(NULL, ","))
                for (int k = 0; k < PL_CONV_ALGO_COUNT; k++)
                    if (!strcmp(t, pl_conv_algo_name((pl_conv_algo)k))) algos[nalgo++] = (pl_conv_algo)k;
            if (!nalgo) {
                fprintf(stderr, "conv_bench: no known algorithm in '%s'\n", argv[i]);
                return 2;
            }
        } else {
            fprintf(stderr, "usage: conv_bench [--threads N] [--batch N] [--filter S] [--peak G] [--time S] [--algo A,B] [--wall] [--sim] [--res] [--sparsity S,...] [--ab NAME=VALUE]\n");
            return 2;
        }
    }
    if (threads > 1) wall = true;
    if (ab[0]) { /* A/B: the first algorithm twice, B planned with NAME=VALUE set */
        algos[1] = algos[0];
        nalgo = 2;
    }
    pl_threadpool *pool = threads > 1 ? sim ? pl_threadpool_create_sim(threads) : pl_threadpool_create(threads) : NULL;
    if (sim && pool) g_sim = pool;
    printf("conv_bench: kernels %s, %d thread(s), %s time, peak %.0f GFLOP/s/core\n",
           pl_isa_name(pl_cpu_isa()), threads, g_sim ? "simulated" : wall ? "wall" : "cpu", peak);
    if (nsp) {
        sparsity_mode(sp, nsp, filter, pool, threads, min_time, wall);
        pl_threadpool_destroy(pool);
        return 0;
    }
    printf("%-13s %-26s %-9s %9s %8s %6s\n", "model", "layer", "algo", "ms", "GFLOP/s", "peak");
    const char *models[] = {"resnet50", "mobilenet_v2"};
    for (int mi = 0; mi < 2; mi++) {
        double total_ms[MAX_ALGOS] = {0}, total_flop = 0;
        int shown = 0;
        for (int li = 0; li < NLAYERS; li++) {
            const layer *L = &layers[li];
            if (strcmp(L->model, models[mi])) continue;
            char name[64];
            snprintf(name, sizeof name, "%lld<-%lld %lldx%lld k%lld s%lld g%lld", (long long)L->M,
                     (long long)L->C, (long long)L->H, (long long)L->H, (long long)L->K,
                     (long long)L->S, (long long)L->G);
            if (filter && !strstr(name, filter) && !strstr(L->model, filter)) continue;
            pl_conv_params p;
            memset(&p, 0, sizeof p);
            p.ndim = 2;
            p.batch = batch;
            p.in_channels = L->C;
            p.out_channels = L->M;
            p.group = L->G;
            for (int d = 0; d < 2; d++) {
                p.in_size[d] = L->H;
                p.kernel[d] = L->K;
                p.stride[d] = L->S;
                p.pad_begin[d] = L->P;
                p.dilation[d] = 1;
                p.out_size[d] = (L->H + 2 * L->P - L->K) / L->S + 1;
            }
            const int64_t OHW = p.out_size[0] * p.out_size[1];
            float *x = rand_buf(batch * L->C * L->H * L->H), *w = rand_buf(L->M * L->C / L->G * L->K * L->K);
            float *b = rand_buf(L->M), *y = aligned_alloc(64, (sizeof(float) * (size_t)(batch * L->M * OHW) + 63) & ~(size_t)63);
            float *res = with_res ? rand_buf(batch * L->M * OHW) : NULL;
            pl_conv_act act = {PL_CONV_ACT_RELU, 0, 0};
            pl_conv_fast *f[MAX_ALGOS] = {0};
            void *scratch[MAX_ALGOS] = {0};
            size_t ss[MAX_ALGOS] = {0};
            double best[MAX_ALGOS];
            for (int a = 0; a < nalgo; a++) {
                best[a] = 1e30;
                char *eq = ab[0] && a == 1 ? strchr(ab, '=') : NULL;
                if (eq) {
                    *eq = '\0';
                    setenv(ab, eq + 1, 1);
                }
                const int bad = pl_conv_fast_create(&p, w, b, &act, algos[a], threads, &f[a]) != PL_OK;
                if (eq) {
                    unsetenv(ab);
                    *eq = '=';
                }
                if (bad) {
                    printf("%-13s %-26s %-9s %s\n", L->model, name, pl_conv_algo_name(algos[a]), pl_error_msg());
                    f[a] = NULL;
                    continue;
                }
                ss[a] = pl_conv_fast_scratch_size(f[a]);
                scratch[a] = ss[a] ? aligned_alloc(64, (ss[a] + 63) & ~(size_t)63) : NULL;
                pl_conv_fast_run(f[a], x, res, y, scratch[a], ss[a], pool); /* warm up */
            }
            (void)now_s(wall);
            g_sim_task = g_sim_span = 0;
            for (int r = 0; r < ROUNDS; r++)
                for (int a = 0; a < nalgo; a++) {
                    if (!f[a]) continue;
                    int reps = 0;
                    double t0 = now_s(wall), t;
                    do {
                        pl_conv_fast_run(f[a], x, res, y, scratch[a], ss[a], pool);
                        reps++;
                        t = now_s(wall) - t0;
                    } while (t < min_time / ROUNDS);
                    if (t / reps < best[a]) best[a] = t / reps;
                }
            const double flop = 2.0 * (double)batch * (double)L->M * (double)(L->C / L->G) * (double)(L->K * L->K) * (double)OHW;
            (void)now_s(wall);
            for (int a = 0; a < nalgo; a++) {
                if (!f[a]) continue;
                const double ms = best[a] * 1e3, gf = flop / best[a] / 1e9;
                char an[48];
                snprintf(an, sizeof an, "%s%s", pl_conv_algo_name(pl_conv_fast_algo(f[a])), ab[0] ? a ? " B" : " A" : "");
                printf("%-13s %-26s %-11s %9.3f %8.1f %5.1f%%  x%d", L->model, name, an, ms, gf,
                       100.0 * gf / (peak * threads), L->count);
                if (g_sim && a == nalgo - 1 && g_sim_span > 0)
                    printf("  tasks/makespan %.2f", g_sim_task / g_sim_span);
                printf("\n");
                total_ms[a] += ms * L->count;
                free(scratch[a]);
                pl_conv_fast_destroy(f[a]);
            }
            total_flop += flop * L->count;
            shown++;
            free(x), free(w), free(b), free(y), free(res);
        }
        for (int a = 0; shown && a < nalgo; a++)
            printf("%-13s %-26s %-9s %9.3f %8.1f %5.1f%%\n", models[mi], "TOTAL (weighted)",
                   pl_conv_algo_name(algos[a]), total_ms[a],
                   total_flop / (total_ms[a] * 1e-3) / 1e9,
                   100.0 * total_flop / (total_ms[a] * 1e-3) / 1e9 / (peak * threads));
    }
    pl_threadpool_destroy(pool);
    return 0;
}
