/* reduce.h -- plain-array reduction and sorting kernels (no graph or tensor types).
 *
 * A reduction is described by its input shape with one flag per dimension (reduced or
 * kept). pl_reduce_shape_init() brings it to a canonical form: size-1 dimensions are
 * dropped and neighbouring dimensions with the same flag are merged, so that e.g.
 * ReduceMean over the last two axes of N x C x H x W becomes (N*C kept, H*W reduced).
 * The kernels then walk the input once, in memory order. */
#ifndef PL_KERNELS_REDUCE_H
#define PL_KERNELS_REDUCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PL_REDUCE_MAX_DIMS 8

typedef enum pl_reduce_kind {
    PL_RED_SUM,
    PL_RED_MEAN,
    PL_RED_MAX,
    PL_RED_MIN,
    PL_RED_PROD,
    PL_RED_L1,
    PL_RED_L2,
    PL_RED_LOGSUM,
    PL_RED_LOGSUMEXP,
    PL_RED_SUMSQ,
} pl_reduce_kind;

typedef struct pl_reduce_shape {
    int ndim;                                /* >= 1 after init */
    int64_t dims[PL_REDUCE_MAX_DIMS];
    bool reduced[PL_REDUCE_MAX_DIMS];
    int64_t ostride[PL_REDUCE_MAX_DIMS];     /* output stride per dim, 0 if reduced */
    int64_t in_numel, out_numel, count;      /* count: elements folded into each output */
} pl_reduce_shape;

/* dims must be >= 0 and ndim <= PL_REDUCE_MAX_DIMS; products must not overflow (the
 * caller checks them). */
void pl_reduce_shape_init(pl_reduce_shape *s, int ndim, const int64_t *dims,
                          const bool *reduced);

/* Number of doubles of workspace the float kernels need. */
size_t pl_reduce_ws_count(const pl_reduce_shape *s, pl_reduce_kind k);

/* Float reductions accumulate in double. y has out_numel elements. Reductions over zero
 * elements give the identity: 0 (sum, L1, L2, sum of squares), 1 (prod), -inf (max,
 * log-sum, log-sum-exp), +inf (min), NaN (mean). NaN propagates through max/min. */
void pl_reduce_f32_ref(const pl_reduce_shape *s, pl_reduce_kind k, const float *x, float *y,
                       double *ws);
void pl_reduce_f64_ref(const pl_reduce_shape *s, pl_reduce_kind k, const double *x, double *y,
                       double *ws);
/* Exact integer reductions (sum, mean, max, min, prod, L1, sum of squares) with
 * two's-complement wrap-around on overflow. Values are int64 bit patterns; with
 * is_unsigned they are compared and divided as uint64. Empty max/min give the int64 (or
 * uint64) extremes: the caller clamps them to its type. Mean over zero elements is 0. */
void pl_reduce_i64_ref(const pl_reduce_shape *s, pl_reduce_kind k, bool is_unsigned,
                       const int64_t *x, int64_t *y);

/* Stable merge sort of the index array idx[0..n) by less(ctx, a, b) ("a strictly before
 * b"); tmp has room for n indices. */
typedef bool (*pl_sort_less_fn)(const void *ctx, int64_t a, int64_t b);
void pl_sort_indices(int64_t *idx, int64_t n, pl_sort_less_fn less, const void *ctx,
                     int64_t *tmp);
/* The first k of idx[0..n) in order, by less, into out[0..k) (k <= n); idx is
 * unchanged, tmp has room for k indices. Uses a bounded heap: O(n log k). The result is
 * deterministic only if less() is a total order (break ties by index). */
void pl_select_indices(int64_t *idx, int64_t n, int64_t k, pl_sort_less_fn less,
                       const void *ctx, int64_t *out, int64_t *tmp);

#endif
