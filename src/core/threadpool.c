/* threadpool.c -- parallel-for over persistent workers.
 *
 * One 64-bit atomic word, `state`, describes the current job:
 *   bits 32..63  job number (epoch), bumped by each run;
 *   bit  31      CLOSED: no worker may join the job any more;
 *   bits 0..30   number of workers that joined and have not left.
 * A worker that sees a new epoch joins with a CAS (only while the job is open), grabs
 * tasks (its own range first, then the others', see task_range) until none are left,
 * and leaves (count - 1). The caller runs tasks too; when none are left it closes the
 * job and waits for the joined workers to leave. A worker still asleep when the job
 * closes simply skips it, so the caller never waits for a wake-up it does not need, and
 * the job's fields are never read after the call returns.
 *
 * Idle workers spin on `state` for spin_ns, then sleep on a condition variable. The
 * sleep/wake handshake is a Dekker pair on seq_cst atomics: a worker increments
 * `sleepers` then re-reads `state`; the caller stores `state` then reads `sleepers`, so
 * at least one of them sees the other and no wake-up is lost. */
#define _GNU_SOURCE
#include "core/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/cpu.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

#define ST_CLOSED ((uint64_t)1 << 31)
#define ST_COUNT_MASK (ST_CLOSED - 1)
#define ST_EPOCH(s) ((uint32_t)((s) >> 32))

struct pl_threadpool {
    int nthreads; /* caller included */
    int nworkers_started;
    pthread_t *threads;

    /* The current job; written by the caller before the epoch is published. */
    pl_task_fn fn;
    void *ctx;
    struct task_range *range; /* one per thread: [next, end) of the job's tasks */
    bool shared_ranges;       /* PILLAR_POOL_RANGES=0: one range for all (A/B) */

    _Alignas(64) _Atomic uint64_t state;
    _Alignas(64) atomic_int sleepers;
    atomic_bool stop;
    atomic_long spin_ns;

    pthread_mutex_t sleep_mu;
    pthread_cond_t sleep_cv;
    pthread_mutex_t run_mu; /* one run at a time; others run serially */

    /* simulated pool (pl_threadpool_create_sim): no workers */
    bool sim;
    double sim_task, sim_span;   /* since the last pl_threadpool_sim_take */
    double sim_task_all, sim_span_all;
    long sim_runs;
};

/* Thread i first takes the tasks of its own contiguous range, then steals from the
 * front of the others' ranges (one fetch-add per task on the range's counter, shared by
 * owner and thieves, so every task is claimed once). With contiguous ranges a thread
 * gets the same part of consecutive layers whose grids split the same way (channel
 * blocks into a depthwise layer, pixel blocks from one 1x1 layer into the next), so it
 * reads what its own core wrote instead of fetching about half from the other core's
 * cache, as the interleaving of one shared counter did. MobileNetV2, 2 threads, the
 * same process alternating (bench/layer_bench --ab PILLAR_POOL_RANGES=0): the sum of
 * per-layer minima 3.8-5.6 vs 4.0-6.0 ms, 4-9% lower in 4 of 4 runs (medians equal
 * within the noise of a load of 5-9). */
struct task_range {
    _Alignas(64) atomic_int next;
    int end;
};

typedef struct worker_arg {
    pl_threadpool *pool;
    int index;
} worker_arg;

/* Set while this thread is executing tasks of some pool: a nested run goes serial. */
static _Thread_local bool tl_in_task;

static long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static void run_tasks(pl_threadpool *p, int thread) {
    pl_task_fn fn = p->fn;
    void *ctx = p->ctx;
    const int nt = p->nthreads;
    for (int k = 0; k < nt; k++) {
        struct task_range *r = &p->range[(thread + k) % nt];
        const int end = r->end;
        if (atomic_load_explicit(&r->next, memory_order_relaxed) >= end) continue;
        for (;;) {
            int t = atomic_fetch_add_explicit(&r->next, 1, memory_order_relaxed);
            if (t >= end) break;
            fn(ctx, t, thread);
        }
    }
}

/* Waits until the epoch differs from `seen`; returns the state that showed it. */
static uint64_t wait_for_job(pl_threadpool *p, uint32_t seen) {
    uint64_t s = atomic_load_explicit(&p->state, memory_order_acquire);
    if (ST_EPOCH(s) != seen) return s;
    long spin = atomic_load_explicit(&p->spin_ns, memory_order_relaxed);
    if (spin > 0) {
        long start = now_ns();
        for (unsigned i = 1;; i++) {
            cpu_relax();
            s = atomic_load_explicit(&p->state, memory_order_acquire);
            if (ST_EPOCH(s) != seen) return s;
            if ((i & 127) == 0 && now_ns() - start > spin) break;
        }
    }
    pthread_mutex_lock(&p->sleep_mu);
    atomic_fetch_add(&p->sleepers, 1);
    for (;;) {
        s = atomic_load(&p->state);
        if (ST_EPOCH(s) != seen || atomic_load(&p->stop)) break;
        pthread_cond_wait(&p->sleep_cv, &p->sleep_mu);
    }
    atomic_fetch_sub(&p->sleepers, 1);
    pthread_mutex_unlock(&p->sleep_mu);
    return s;
}

static void *worker_main(void *argp) {
    worker_arg a = *(worker_arg *)argp;
    free(argp);
    pl_threadpool *p = a.pool;
    uint32_t seen = ST_EPOCH(atomic_load(&p->state));
    tl_in_task = true; /* a worker never starts a parallel run of its own */
    for (;;) {
        uint64_t s = wait_for_job(p, seen);
        if (atomic_load(&p->stop)) break;
        seen = ST_EPOCH(s);
        /* Join the job if it is still open and still the one we saw. */
        bool joined = false;
        while (ST_EPOCH(s) == seen && !(s & ST_CLOSED)) {
            if (atomic_compare_exchange_weak_explicit(&p->state, &s, s + 1, memory_order_acquire,
                                                      memory_order_acquire)) {
                joined = true;
                break;
            }
        }
        if (!joined) continue;
        run_tasks(p, a.index);
        atomic_fetch_sub_explicit(&p->state, 1, memory_order_release);
    }
    return NULL;
}

static double thread_cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

pl_threadpool *pl_threadpool_create_sim(int nthreads) {
    if (nthreads <= 0) nthreads = pl_cpu_default_threads();
    if (nthreads > 1024) nthreads = 1024;
    pl_threadpool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->nthreads = nthreads;
    p->sim = true;
    if (pthread_mutex_init(&p->run_mu, NULL)) {
        free(p);
        return NULL;
    }
    return p;
}

static pthread_mutex_t sim_mu = PTHREAD_MUTEX_INITIALIZER;
static double sim_total_task, sim_total_span;

void pl_threadpool_sim_totals(double *task_s, double *makespan_s) {
    pthread_mutex_lock(&sim_mu);
    *task_s = sim_total_task;
    *makespan_s = sim_total_span;
    pthread_mutex_unlock(&sim_mu);
}

bool pl_threadpool_sim_take(pl_threadpool *p, double *task_s, double *makespan_s) {
    if (!p || !p->sim) return false;
    *task_s = p->sim_task;
    *makespan_s = p->sim_span;
    p->sim_task = p->sim_span = 0;
    return true;
}

/* Range i of nt of a call's ntasks tasks: [*a, *b); with PILLAR_POOL_RANGES=0, range 0
 * holds every task and the others are empty (one shared counter). */
static void task_range_bounds(const pl_threadpool *p, int ntasks, int i, int nt, int *a, int *b) {
    *a = p->shared_ranges ? (i ? ntasks : 0) : (int)((int64_t)ntasks * i / nt);
    *b = p->shared_ranges ? ntasks : (int)((int64_t)ntasks * (i + 1) / nt);
}

/* Runs the tasks one by one, each on the simulated thread that is free first, which
 * takes them as a real thread would: from its own range, then from the others'. */
static void run_sim(pl_threadpool *p, pl_task_fn fn, void *ctx, int ntasks) {
    double busy[64] = {0};
    int next[64], end[64];
    const int nt = p->nthreads < 64 ? p->nthreads : 64;
    for (int i = 0; i < nt; i++) task_range_bounds(p, ntasks, i, nt, &next[i], &end[i]);
    double sum = 0, span = 0;
    for (int done = 0; done < ntasks; done++) {
        int th = 0;
        for (int i = 1; i < nt; i++)
            if (busy[i] < busy[th]) th = i;
        int from = th; /* its own range first, then the front of the next non-empty one */
        for (int k = 0; k < nt && next[from] >= end[from]; k++) from = (th + k + 1) % nt;
        const int t = next[from]++;
        const double t0 = thread_cpu_s();
        fn(ctx, t, th);
        const double dt = thread_cpu_s() - t0;
        busy[th] += dt;
        sum += dt;
        if (busy[th] > span) span = busy[th];
    }
    p->sim_task += sum;
    p->sim_span += span;
    p->sim_task_all += sum;
    p->sim_span_all += span;
    p->sim_runs++;
    pthread_mutex_lock(&sim_mu);
    sim_total_task += sum;
    sim_total_span += span;
    pthread_mutex_unlock(&sim_mu);
}

/* How long idle workers spin before sleeping: PILLAR_SPIN_US (0..1000000 microseconds)
 * or 50 us. Longer spins keep workers awake across the short single-threaded steps
 * between parallel ones (a wake-up costs tens of microseconds in a VM), at the price
 * of CPU time burnt while idle. */
static long default_spin_ns(void) {
    const char *e = getenv("PILLAR_SPIN_US");
    if (e && *e) {
        char *end = NULL;
        const long us = strtol(e, &end, 10);
        if (end && *end == '\0' && us >= 0 && us <= 1000000) return us * 1000L;
    }
    return 50000;
}

pl_threadpool *pl_threadpool_create(int nthreads) {
    if (nthreads <= 0) nthreads = pl_cpu_default_threads();
    if (nthreads > 1) {
        const char *e = getenv("PILLAR_POOL_SIM");
        if (e && strcmp(e, "1") == 0) return pl_threadpool_create_sim(nthreads);
    }
    if (nthreads > 1024) nthreads = 1024;
    pl_threadpool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->nthreads = nthreads;
    atomic_init(&p->state, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->stop, false);
    atomic_init(&p->spin_ns, default_spin_ns());
    {
        const char *e = getenv("PILLAR_POOL_RANGES");
        p->shared_ranges = e && strcmp(e, "0") == 0;
    }
    if (pthread_mutex_init(&p->sleep_mu, NULL)) {
        free(p);
        return NULL;
    }
    if (pthread_cond_init(&p->sleep_cv, NULL)) {
        pthread_mutex_destroy(&p->sleep_mu);
        free(p);
        return NULL;
    }
    if (pthread_mutex_init(&p->run_mu, NULL)) {
        pthread_cond_destroy(&p->sleep_cv);
        pthread_mutex_destroy(&p->sleep_mu);
        free(p);
        return NULL;
    }
    if (nthreads > 1) {
        p->threads = calloc((size_t)nthreads - 1, sizeof *p->threads);
        p->range = aligned_alloc(64, sizeof *p->range * (size_t)nthreads);
        if (!p->threads || !p->range) {
            pl_threadpool_destroy(p);
            return NULL;
        }
        /* Workers block all signals: the host application's handlers keep running on
         * its own threads. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        for (int i = 1; i < nthreads; i++) {
            worker_arg *a = malloc(sizeof *a);
            if (!a) break;
            a->pool = p;
            a->index = i;
            if (pthread_create(&p->threads[i - 1], NULL, worker_main, a)) {
                free(a);
                break;
            }
            p->nworkers_started++;
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (p->nworkers_started != nthreads - 1) {
            pl_threadpool_destroy(p);
            return NULL;
        }
    }
    return p;
}

void pl_threadpool_destroy(pl_threadpool *p) {
    if (!p) return;
    if (p->sim) {
        const char *e = getenv("PILLAR_POOL_SIM");
        if (e && strcmp(e, "1") == 0 && p->sim_runs > 0)
            fprintf(stderr,
                    "pool sim (%d threads): %ld runs, tasks %.3f s, makespan %.3f s "
                    "(parallel part %.2fx)\n",
                    p->nthreads, p->sim_runs, p->sim_task_all, p->sim_span_all,
                    p->sim_span_all > 0 ? p->sim_task_all / p->sim_span_all : 0.0);
        pthread_mutex_destroy(&p->run_mu);
        free(p);
        return;
    }
    if (p->nworkers_started > 0) {
        pthread_mutex_lock(&p->sleep_mu);
        atomic_store(&p->stop, true);
        /* Bump the epoch (job closed, nobody joins) so spinners notice at once. */
        atomic_fetch_add(&p->state, ((uint64_t)1 << 32));
        atomic_fetch_or(&p->state, ST_CLOSED);
        pthread_cond_broadcast(&p->sleep_cv);
        pthread_mutex_unlock(&p->sleep_mu);
        for (int i = 0; i < p->nworkers_started; i++) pthread_join(p->threads[i], NULL);
    }
    free(p->threads);
    free(p->range);
    pthread_mutex_destroy(&p->run_mu);
    pthread_cond_destroy(&p->sleep_cv);
    pthread_mutex_destroy(&p->sleep_mu);
    free(p);
}

int pl_threadpool_size(const pl_threadpool *p) {
    return p ? p->nthreads : 1;
}

void pl_threadpool_set_spin(pl_threadpool *p, int us) {
    if (!p) return;
    if (us < 0) us = 0;
    atomic_store(&p->spin_ns, (long)us * 1000L);
}

static void run_serial(pl_task_fn fn, void *ctx, int ntasks) {
    for (int t = 0; t < ntasks; t++) fn(ctx, t, 0);
}

void pl_threadpool_run(pl_threadpool *p, pl_task_fn fn, void *ctx, int ntasks) {
    if (ntasks <= 0 || !fn) return;
    if (!p || p->nthreads <= 1 || ntasks == 1 || tl_in_task ||
        pthread_mutex_trylock(&p->run_mu) != 0) {
        run_serial(fn, ctx, ntasks);
        return;
    }
    if (p->sim) {
        tl_in_task = true;
        run_sim(p, fn, ctx, ntasks);
        tl_in_task = false;
        pthread_mutex_unlock(&p->run_mu);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    const int nt = p->nthreads;
    for (int i = 0; i < nt; i++) {
        int a, b;
        task_range_bounds(p, ntasks, i, nt, &a, &b);
        atomic_store_explicit(&p->range[i].next, a, memory_order_relaxed);
        p->range[i].end = b;
    }
    /* New epoch, open, nobody joined yet. The seq_cst store publishes the fields above
     * and pairs with the sleepers check below. */
    uint64_t s = atomic_load(&p->state);
    uint64_t epoch = (uint64_t)ST_EPOCH(s) + 1;
    atomic_store(&p->state, (epoch & 0xffffffffu) << 32);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->sleep_mu);
        pthread_cond_broadcast(&p->sleep_cv);
        pthread_mutex_unlock(&p->sleep_mu);
    }

    tl_in_task = true;
    run_tasks(p, 0);
    tl_in_task = false;

    /* Close the job, then wait for the workers that joined it to finish their tasks. */
    s = atomic_fetch_or(&p->state, ST_CLOSED) | ST_CLOSED;
    long start = 0;
    for (unsigned i = 1; (s & ST_COUNT_MASK) != 0; i++) {
        cpu_relax();
        if ((i & 255) == 0) {
            if (!start)
                start = now_ns();
            else if (now_ns() - start > 200000)
                sched_yield();
        }
        s = atomic_load_explicit(&p->state, memory_order_acquire);
    }
    pthread_mutex_unlock(&p->run_mu);
}
