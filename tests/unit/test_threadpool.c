/* test_threadpool.c -- the parallel-for runs every task exactly once, over many calls,
 * task counts and pool sizes (1..4 threads); nesting and concurrent callers fall back to
 * serial without deadlock; spinning and sleeping workers both wake up; a thread stuck
 * in a task has the rest of its range stolen; destroy joins. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/cpu.h"
#include "core/threadpool.h"

static int failures;
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            if (failures < 20) {                                                                   \
                printf("FAIL %s:%d: ", __FILE__, __LINE__);                                        \
                printf(__VA_ARGS__);                                                               \
                printf("\n");                                                                      \
            }                                                                                      \
        }                                                                                          \
    } while (0)

typedef struct count_ctx {
    atomic_int *hits;
    int nthreads;
    atomic_int bad_thread;
    int work; /* busy-loop iterations per task, to vary task lengths */
} count_ctx;

static void count_task(void *p, int task, int thread) {
    count_ctx *c = p;
    if (thread < 0 || thread >= c->nthreads) atomic_store(&c->bad_thread, 1);
    volatile int sink = 0;
    for (int i = 0; i < c->work * (task % 3); i++) sink += i;
    atomic_fetch_add(&c->hits[task], 1);
}

/* Runs `calls` parallel-fors of varying sizes and checks each task ran exactly once. */
static void check_coverage(pl_threadpool *pool, int calls) {
    enum { MAXT = 1000 };
    atomic_int hits[MAXT];
    count_ctx c;
    c.hits = hits;
    c.nthreads = pl_threadpool_size(pool);
    atomic_init(&c.bad_thread, 0);
    for (int call = 0; call < calls; call++) {
        int n = (call * 37) % 97;
        if (call % 50 == 0) n = MAXT;
        c.work = call % 7 == 0 ? 2000 : 0;
        for (int i = 0; i < n; i++) atomic_init(&hits[i], 0);
        pl_threadpool_run(pool, count_task, &c, n);
        int wrong = 0;
        for (int i = 0; i < n; i++) wrong += atomic_load(&hits[i]) != 1;
        CHECK(wrong == 0, "%d threads, call %d, %d tasks: %d tasks not run exactly once",
              c.nthreads, call, n, wrong);
        if (wrong) break;
    }
    CHECK(!atomic_load(&c.bad_thread), "thread index out of range");
}

/* A task that itself calls run on the same pool: must not deadlock. */
typedef struct nest_ctx {
    pl_threadpool *pool;
    atomic_int inner;
} nest_ctx;

static void inner_task(void *p, int task, int thread) {
    (void)task;
    (void)thread;
    atomic_fetch_add(&((nest_ctx *)p)->inner, 1);
}

static void outer_task(void *p, int task, int thread) {
    (void)task;
    (void)thread;
    nest_ctx *c = p;
    pl_threadpool_run(c->pool, inner_task, c, 5);
}

/* Several external threads sharing one pool. */
typedef struct share_ctx {
    pl_threadpool *pool;
    atomic_int total;
} share_ctx;

static void add_task(void *p, int task, int thread) {
    (void)thread;
    atomic_fetch_add(&((share_ctx *)p)->total, task);
}

static void *share_main(void *p) {
    share_ctx *c = p;
    for (int i = 0; i < 300; i++) pl_threadpool_run(c->pool, add_task, c, 10);
    return NULL;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Task 0 waits (up to 2 s) until every other task has run: the tasks of its thread's
 * own range must be taken over by the other threads (stealing), or it times out. */
typedef struct steal_ctx {
    int ntasks;
    atomic_int done;
    atomic_int timed_out;
} steal_ctx;

static void steal_task(void *p, int task, int thread) {
    (void)thread;
    steal_ctx *c = p;
    if (task == 0) {
        const double t0 = now_s();
        while (atomic_load(&c->done) < c->ntasks - 1)
            if (now_s() - t0 > 2.0) {
                atomic_store(&c->timed_out, 1);
                break;
            }
    }
    atomic_fetch_add(&c->done, 1);
}

static void noop_task(void *p, int task, int thread) {
    (void)p;
    (void)task;
    (void)thread;
}

int main(void) {
    printf("cpu: %d physical cores, default threads %d\n", pl_cpu()->physical_cores,
           pl_cpu_default_threads());
    CHECK(pl_threadpool_size(NULL) == 1, "NULL pool size");
    check_coverage(NULL, 50);

    for (int nt = 1; nt <= 4; nt++) {
        pl_threadpool *pool = pl_threadpool_create(nt);
        CHECK(pool != NULL, "create(%d) failed", nt);
        if (!pool) continue;
        CHECK(pl_threadpool_size(pool) == nt, "size %d != %d", pl_threadpool_size(pool), nt);
        check_coverage(pool, 400);
        /* Workers asleep (no spinning): every call must wake them or run without them. */
        pl_threadpool_set_spin(pool, 0);
        check_coverage(pool, 100);
        /* Idle long enough that spinning workers go to sleep, then run again. */
        pl_threadpool_set_spin(pool, 20);
        usleep(2000);
        check_coverage(pool, 20);

        nest_ctx n;
        n.pool = pool;
        atomic_init(&n.inner, 0);
        pl_threadpool_run(pool, outer_task, &n, 7);
        CHECK(atomic_load(&n.inner) == 35, "nested runs: %d inner tasks, expected 35",
              atomic_load(&n.inner));

        share_ctx sc;
        sc.pool = pool;
        atomic_init(&sc.total, 0);
        pthread_t th[3];
        for (int i = 0; i < 3; i++) pthread_create(&th[i], NULL, share_main, &sc);
        for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
        CHECK(atomic_load(&sc.total) == 3 * 300 * 45, "shared pool total %d",
              atomic_load(&sc.total));

        /* Stealing: the thread blocked in task 0 leaves the rest of its range to the
         * others, for task counts below, at and above the thread count (real threads
         * only: PILLAR_POOL_SIM=1 makes every pool simulated, serial). */
        double sim_a, sim_b;
        const bool real = !pl_threadpool_sim_take(pool, &sim_a, &sim_b);
        for (int k = 2; real && nt > 1 && k <= 3 * nt + 1; k++) {
            steal_ctx st;
            st.ntasks = k;
            atomic_init(&st.done, 0);
            atomic_init(&st.timed_out, 0);
            pl_threadpool_run(pool, steal_task, &st, k);
            CHECK(!atomic_load(&st.timed_out) && atomic_load(&st.done) == k,
                  "%d threads, %d tasks: stealing failed (%d done, timed out %d)", nt, k,
                  atomic_load(&st.done), atomic_load(&st.timed_out));
        }

        /* Back-to-back latency with spinning workers (informational). */
        pl_threadpool_set_spin(pool, 50);
        int reps = 20000;
        pl_threadpool_run(pool, noop_task, NULL, nt);
        double t0 = now_s();
        for (int i = 0; i < reps; i++) pl_threadpool_run(pool, noop_task, NULL, nt);
        double us = (now_s() - t0) / reps * 1e6;
        printf("%d threads: %.2f us per empty parallel-for\n", nt, us);
        pl_threadpool_destroy(pool);
    }
    /* Create/destroy churn, with and without a run in between. */
    for (int i = 0; i < 50; i++) {
        pl_threadpool *p = pl_threadpool_create(1 + i % 4);
        if (i % 2) check_coverage(p, 3);
        pl_threadpool_destroy(p);
    }
    pl_threadpool_destroy(NULL);

    /* Simulated pools: every task once on the caller, thread indices in range, the
     * makespan between the task total / n and the task total. */
    for (int nt = 2; nt <= 5; nt += 3) {
        pl_threadpool *sp = pl_threadpool_create_sim(nt);
        CHECK(sp != NULL && pl_threadpool_size(sp) == nt, "sim pool of %d", nt);
        if (!sp) continue;
        check_coverage(sp, 20);
        double task = -1, span = -1;
        CHECK(pl_threadpool_sim_take(sp, &task, &span), "sim_take on a sim pool");
        CHECK(task >= 0 && span >= 0 && span <= task + 1e-12 && span * nt >= task - 1e-9,
              "sim %d threads: tasks %g s, makespan %g s", nt, task, span);
        CHECK(pl_threadpool_sim_take(sp, &task, &span) && task == 0 && span == 0,
              "sim_take resets the sums");
        pl_threadpool_destroy(sp);
    }
    {
        pl_threadpool *rp = pl_threadpool_create(2);
        double task, span;
        CHECK(rp && !pl_threadpool_sim_take(rp, &task, &span), "sim_take on a real pool");
        pl_threadpool_destroy(rp);
    }
    printf("%s\n", failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
