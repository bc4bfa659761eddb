/* pool_bench.c -- cost of one pl_threadpool_run round trip (core/threadpool.h): the
 * dispatch, wake-up and join of a parallel-for whose tasks do (almost) nothing, at the
 * pool sizes and task counts given, back to back (workers spinning) and with a gap
 * longer than the spin (workers asleep). Not part of ctest.
 *
 *   pool_bench [--threads N] [--calls N] [--gap-us N] [--work N]
 *
 * Prints, per task count, the mean and the best-of-10-batches time per call in
 * microseconds, and the same for a serial loop over the same tasks (the peer). --work
 * is busy-loop iterations per task (default 0). */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/threadpool.h"

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec * 1e-3;
}

typedef struct job {
    int work;
    atomic_int done;
} job;

static void task(void *ctx, int t, int thread) {
    job *j = ctx;
    volatile int sink = 0;
    for (int i = 0; i < j->work; i++) sink += i;
    (void)t;
    (void)thread;
    atomic_fetch_add_explicit(&j->done, 1, memory_order_relaxed);
}

static void sleep_us(int us) {
    struct timespec ts = {us / 1000000, (long)(us % 1000000) * 1000L};
    nanosleep(&ts, NULL);
}

int main(int argc, char **argv) {
    int threads = 2, calls = 20000, gap = 0, work = 0;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--threads") == 0)
            threads = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--calls") == 0)
            calls = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--gap-us") == 0)
            gap = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--work") == 0)
            work = atoi(argv[++i]);
        else {
            fprintf(stderr,
                    "usage: pool_bench [--threads N] [--calls N] [--gap-us N] [--work N]\n");
            return 2;
        }
    }
    if (calls < 10) calls = 10;
    if (gap > 0 && calls > 2000) calls = 2000;
    pl_threadpool *pool = pl_threadpool_create(threads);
    if (!pool) {
        fprintf(stderr, "pool_bench: cannot create a pool of %d threads\n", threads);
        return 1;
    }
    printf("pool_bench: %d threads, %d calls, gap %d us, work %d\n", pl_threadpool_size(pool),
           calls, gap, work);
    printf("%6s %12s %12s %12s\n", "tasks", "mean us", "best us", "serial us");
    const int counts[] = {2, 4, 16, 64};
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        job j = {work, 0};
        const int n = counts[c], per = calls / 10;
        double total = 0, best = 1e30, serial = 1e30;
        for (int b = 0; b < 10; b++) {
            double spent = 0;
            for (int i = 0; i < per; i++) {
                if (gap) sleep_us(gap);
                const double t0 = now_us();
                pl_threadpool_run(pool, task, &j, n);
                spent += now_us() - t0;
            }
            total += spent;
            if (spent / per < best) best = spent / per;
            const double t0 = now_us();
            for (int i = 0; i < per; i++)
                for (int t = 0; t < n; t++) task(&j, t, 0);
            const double s = (now_us() - t0) / per;
            if (s < serial) serial = s;
        }
        printf("%6d %12.3f %12.3f %12.3f\n", n, total / (10.0 * per), best, serial);
        if (atomic_load(&j.done) != 10 * per * n * 2) {
            fprintf(stderr, "pool_bench: %d tasks ran instead of %d\n", atomic_load(&j.done),
                    10 * per * n * 2);
            pl_threadpool_destroy(pool);
            return 1;
        }
    }
    pl_threadpool_destroy(pool);
    return 0;
}
