/* pool_fast.h -- fast float32 max and average pooling (1-D and 2-D windows, NCHW) and
 * global pooling, threaded over planes. Results match the reference kernels of pool.h
 * (average: up to float rounding; NaN inputs are skipped by max here). */
#ifndef PL_KERNELS_POOL_FAST_H
#define PL_KERNELS_POOL_FAST_H

#include <stdbool.h>
#include <stdint.h>

#include "core/status.h"
#include "core/threadpool.h"
#include "kernels/pool/pool.h"

typedef enum pl_pool_fast_kind { PL_POOL_FAST_MAX, PL_POOL_FAST_AVG } pl_pool_fast_kind;

/* Whether pl_pool_fast_run handles p (1 or 2 spatial dims, sizes in range). */
bool pl_pool_fast_supported(const pl_pool_params *p);

/* y = pool(x) over p->planes planes; count_include_pad as in pl_f32_avgpool_ref. */
pl_status pl_pool_fast_run(pl_pool_fast_kind kind, const pl_pool_params *p,
                           int count_include_pad, const float *x, float *y,
                           pl_threadpool *pool);

/* y[i] = max or mean of the plane_size values of plane i. */
pl_status pl_pool_fast_global(pl_pool_fast_kind kind, const float *x, int64_t planes,
                              int64_t plane_size, float *y, pl_threadpool *pool);

#endif
