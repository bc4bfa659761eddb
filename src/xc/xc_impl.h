/* xc_impl.h -- pieces shared between the files of src/xc (not a public interface). */
#ifndef PL_XC_IMPL_H
#define PL_XC_IMPL_H

#include <time.h>

#include "core/threadpool.h"
#include "xc/xc.h"

/* pl_xc_evaluate on an existing pool (NULL = this thread only); top5 (optional, n x 5)
 * receives each point's five best labels. */
pl_status pl_xc_evaluate_pool(const pl_xc_model *m, const pl_xc_data *d, int64_t max_points,
                              pl_threadpool *pool, pl_xc_eval *out, uint32_t *top5);

static inline double pl_xc_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Keeps the k largest (score, label) pairs in descending order. */
static inline void pl_xc_topk_push(int k, uint32_t *labels, float *scores, uint32_t label,
                                   float sc) {
    if (!(sc > scores[k - 1])) return;
    int i = k - 1;
    while (i > 0 && scores[i - 1] < sc) {
        scores[i] = scores[i - 1];
        labels[i] = labels[i - 1];
        i--;
    }
    scores[i] = sc;
    labels[i] = label;
}

#endif
