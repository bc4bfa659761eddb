/* threadpool.h -- a fixed set of worker threads running parallel-for loops.
 *
 * pl_threadpool_run(pool, fn, ctx, ntasks) calls fn(ctx, task, thread) once for every
 * task in [0, ntasks) and returns when all have finished. Thread i starts on the i-th
 * of `size` contiguous ranges of the tasks, taking them one at a time, then takes what
 * is left of the other ranges (from their fronts), so uneven tasks and late threads
 * balance themselves while, in consecutive runs, a thread mostly gets the same part of
 * the work (cache locality across layers; PILLAR_POOL_RANGES=0 at create makes it one
 * shared range, for A/B measurements). The calling thread takes part (thread index 0,
 * workers are 1 .. size-1), so `thread` can index per-thread scratch space of
 * pl_threadpool_size() slots.
 *
 * Between calls the workers spin for a short while (default 50 us) before sleeping, so
 * back-to-back calls (one per layer at batch 1) cost about a microsecond instead of a
 * wake-up each. A NULL pool, a one-thread pool, a call from inside a task of the same
 * pool (nesting) or a call while another thread is using the pool all run the tasks
 * serially on the calling thread: always correct, never a deadlock. */
#ifndef PL_CORE_THREADPOOL_H
#define PL_CORE_THREADPOOL_H

#include <stdbool.h>

typedef struct pl_threadpool pl_threadpool;

typedef void (*pl_task_fn)(void *ctx, int task, int thread);

/* A pool of `nthreads` threads in all: nthreads - 1 workers plus the caller of run.
 * nthreads <= 0 means pl_cpu_default_threads(). Returns NULL if threads or memory
 * cannot be had (the caller then runs serially with a NULL pool). Owned: free with
 * pl_threadpool_destroy. */
pl_threadpool *pl_threadpool_create(int nthreads);

/* Stops and joins the workers. NULL is a no-op. Must not be called while a run is in
 * progress on the pool. */
void pl_threadpool_destroy(pl_threadpool *pool);

/* Threads in the pool, caller included (1 for a NULL pool). */
int pl_threadpool_size(const pl_threadpool *pool);

/* How long idle workers spin before sleeping, in microseconds (0 = sleep at once). */
void pl_threadpool_set_spin(pl_threadpool *pool, int microseconds);

/* Runs fn(ctx, task, thread) for task = 0 .. ntasks-1 and waits for all of them.
 * ntasks <= 0 returns at once. */
void pl_threadpool_run(pl_threadpool *pool, pl_task_fn fn, void *ctx, int ntasks);

/* Simulated pools, for measuring parallel efficiency on a loaded machine: with the
 * environment variable PILLAR_POOL_SIM=1, pl_threadpool_create(n > 1) starts no threads
 * and each run executes its tasks one by one on the caller, timing each in thread CPU
 * time; the simulated thread that frees up first takes the next task as a real thread
 * would (its own range first, then the fronts of the others), and its index is the
 * `thread` the task sees. The
 * pool sums the task times and the simulated makespans of its runs; at destroy, with
 * PILLAR_POOL_SIM=1, it prints them on stderr. pl_threadpool_sim_take returns the sums
 * since the last call in seconds (false for a real pool). */
pl_threadpool *pl_threadpool_create_sim(int nthreads);
bool pl_threadpool_sim_take(pl_threadpool *pool, double *task_s, double *makespan_s);
/* The same sums over every simulated pool of the process since it started. */
void pl_threadpool_sim_totals(double *task_s, double *makespan_s);

#endif
