/* ref.c -- reference reduction and sorting kernels: plain C, the truth that faster
 * kernels are tested against. */
#include <math.h>
#include <string.h>

#include "kernels/reduce/reduce.h"

void pl_reduce_shape_init(pl_reduce_shape *s, int ndim, const int64_t *dims,
                          const bool *reduced) {
    int n = 0;
    s->in_numel = 1;
    for (int d = 0; d < ndim; d++) s->in_numel *= dims[d];
    for (int d = 0; d < ndim; d++) {
        if (dims[d] == 1) continue;
        if (n > 0 && s->reduced[n - 1] == reduced[d]) {
            s->dims[n - 1] *= dims[d];
        } else {
            s->dims[n] = dims[d];
            s->reduced[n] = reduced[d];
            n++;
        }
    }
    if (n == 0) {
        s->dims[0] = 1;
        s->reduced[0] = false;
        n = 1;
    }
    s->ndim = n;
    int64_t st = 1, cnt = 1;
    for (int d = n - 1; d >= 0; d--) {
        if (s->reduced[d]) {
            s->ostride[d] = 0;
            cnt *= s->dims[d];
        } else {
            s->ostride[d] = st;
            st *= s->dims[d];
        }
    }
    s->out_numel = st;
    s->count = cnt;
}

size_t pl_reduce_ws_count(const pl_reduce_shape *s, pl_reduce_kind k) {
    size_t n = (size_t)s->out_numel;
    return k == PL_RED_LOGSUMEXP ? 2 * n : n;
}

/* Walks the input once in memory order. The innermost canonical dimension is either
 * reduced (fold a contiguous row into one accumulator) or kept (fold a row into a row of
 * accumulators); an odometer over the outer dimensions tracks the output offset.
 * F(v, o) maps an element whose output index is o; COMB(a, b) folds. */
#define RED_WALK(T, ACC, x, acc, s, F, COMB)                                                  \
    do {                                                                                    \
        const int n_ = (s)->ndim;                                                           \
        const int64_t len_ = (s)->dims[n_ - 1];                                             \
        if ((s)->in_numel == 0) break;                                                      \
        const int64_t rows_ = (s)->in_numel / len_;                                         \
        int64_t ix_[PL_REDUCE_MAX_DIMS] = {0};                                              \
        int64_t o_ = 0;                                                                     \
        const T *p_ = (x);                                                                  \
        for (int64_t r_ = 0; r_ < rows_; r_++, p_ += len_) {                                \
            if ((s)->reduced[n_ - 1]) {                                                     \
                ACC a_ = (acc)[o_];                                                         \
                for (int64_t j_ = 0; j_ < len_; j_++) {                                     \
                    ACC v_ = (ACC)p_[j_];                                                   \
                    a_ = COMB(a_, F(v_, o_));                                               \
                }                                                                           \
                (acc)[o_] = a_;                                                             \
            } else {                                                                        \
                ACC *q_ = (acc) + o_;                                                       \
                for (int64_t j_ = 0; j_ < len_; j_++) {                                     \
                    ACC v_ = (ACC)p_[j_];                                                   \
                    q_[j_] = COMB(q_[j_], F(v_, o_ + j_));                                  \
                }                                                                           \
            }                                                                               \
            for (int d_ = n_ - 2; d_ >= 0; d_--) {                                          \
                o_ += (s)->ostride[d_];                                                     \
                if (++ix_[d_] < (s)->dims[d_]) break;                                       \
                o_ -= (s)->ostride[d_] * (s)->dims[d_];                                     \
                ix_[d_] = 0;                                                                \
            }                                                                               \
        }                                                                                   \
    } while (0)

/* NaN-propagating max/min. */
static inline double maxn(double a, double b) { return (a != a || a >= b) ? a : b; }
static inline double minn(double a, double b) { return (a != a || a <= b) ? a : b; }

#define F_ID(v, o) (v)
#define F_ABS(v, o) fabs(v)
#define F_SQ(v, o) ((v) * (v))
#define F_EXP(v, o) exp((v) - sh[o])
#define C_ADD(a, b) ((a) + (b))
#define C_MUL(a, b) ((a) * (b))

static void fill(double *a, int64_t n, double v) {
    for (int64_t i = 0; i < n; i++) a[i] = v;
}

/* One body for float and double inputs: accumulate in ws, then finalise into y. */
#define RED_FLOAT_BODY(T)                                                                   \
    do {                                                                                    \
        const int64_t no = s->out_numel;                                                    \
        double *acc = ws, *sh = ws + no;                                                    \
        switch (k) {                                                                        \
        case PL_RED_MAX:                                                                    \
            fill(acc, no, -INFINITY);                                                       \
            RED_WALK(T, double, x, acc, s, F_ID, maxn);                                     \
            break;                                                                          \
        case PL_RED_MIN:                                                                    \
            fill(acc, no, INFINITY);                                                        \
            RED_WALK(T, double, x, acc, s, F_ID, minn);                                     \
            break;                                                                          \
        case PL_RED_PROD:                                                                   \
            fill(acc, no, 1.0);                                                             \
            RED_WALK(T, double, x, acc, s, F_ID, C_MUL);                                    \
            break;                                                                          \
        case PL_RED_L1:                                                                     \
            fill(acc, no, 0.0);                                                             \
            RED_WALK(T, double, x, acc, s, F_ABS, C_ADD);                                   \
            break;                                                                          \
        case PL_RED_L2:                                                                     \
        case PL_RED_SUMSQ:                                                                  \
            fill(acc, no, 0.0);                                                             \
            RED_WALK(T, double, x, acc, s, F_SQ, C_ADD);                                    \
            break;                                                                          \
        case PL_RED_LOGSUMEXP:                                                              \
            /* shift by the max so exp() cannot overflow; an infinite max shifts by 0 */   \
            fill(sh, no, -INFINITY);                                                        \
            RED_WALK(T, double, x, sh, s, F_ID, maxn);                                      \
            for (int64_t o = 0; o < no; o++)                                                \
                if (!isfinite(sh[o])) sh[o] = 0;                                            \
            fill(acc, no, 0.0);                                                             \
            RED_WALK(T, double, x, acc, s, F_EXP, C_ADD);                                   \
            break;                                                                          \
        default:                                                                            \
            fill(acc, no, 0.0);                                                             \
            RED_WALK(T, double, x, acc, s, F_ID, C_ADD);                                    \
            break;                                                                          \
        }                                                                                   \
        const double cnt = (double)s->count;                                                \
        for (int64_t o = 0; o < no; o++) {                                                  \
            double v = acc[o];                                                              \
            switch (k) {                                                                    \
            case PL_RED_MEAN: v = v / cnt; break;                                           \
            case PL_RED_L2: v = sqrt(v); break;                                             \
            case PL_RED_LOGSUM: v = log(v); break;                                          \
            case PL_RED_LOGSUMEXP: v = sh[o] + log(v); break;                               \
            default: break;                                                                 \
            }                                                                               \
            y[o] = (T)v;                                                                    \
        }                                                                                   \
    } while (0)

void pl_reduce_f32_ref(const pl_reduce_shape *s, pl_reduce_kind k, const float *x, float *y,
                       double *ws) {
    RED_FLOAT_BODY(float);
}

void pl_reduce_f64_ref(const pl_reduce_shape *s, pl_reduce_kind k, const double *x, double *y,
                       double *ws) {
    RED_FLOAT_BODY(double);
}

/* Integer folds in uint64 arithmetic so that overflow wraps instead of being UB. */
static inline int64_t iadd(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }
static inline int64_t imul(int64_t a, int64_t b) { return (int64_t)((uint64_t)a * (uint64_t)b); }
static inline int64_t imax(int64_t a, int64_t b) { return a >= b ? a : b; }
static inline int64_t imin(int64_t a, int64_t b) { return a <= b ? a : b; }
static inline int64_t umax(int64_t a, int64_t b) { return (uint64_t)a >= (uint64_t)b ? a : b; }
static inline int64_t umin(int64_t a, int64_t b) { return (uint64_t)a <= (uint64_t)b ? a : b; }
#define F_IABS(v, o) ((v) < 0 ? (int64_t)(0 - (uint64_t)(v)) : (v))
#define F_ISQ(v, o) imul(v, v)

void pl_reduce_i64_ref(const pl_reduce_shape *s, pl_reduce_kind k, bool is_unsigned,
                       const int64_t *x, int64_t *y) {
    const int64_t no = s->out_numel;
    int64_t init = 0;
    if (k == PL_RED_PROD) init = 1;
    if (k == PL_RED_MAX) init = is_unsigned ? 0 : INT64_MIN;
    if (k == PL_RED_MIN) init = is_unsigned ? (int64_t)UINT64_MAX : INT64_MAX;
    for (int64_t o = 0; o < no; o++) y[o] = init;
    switch (k) {
    case PL_RED_MAX:
        if (is_unsigned) RED_WALK(int64_t, int64_t, x, y, s, F_ID, umax);
        else RED_WALK(int64_t, int64_t, x, y, s, F_ID, imax);
        break;
    case PL_RED_MIN:
        if (is_unsigned) RED_WALK(int64_t, int64_t, x, y, s, F_ID, umin);
        else RED_WALK(int64_t, int64_t, x, y, s, F_ID, imin);
        break;
    case PL_RED_PROD: RED_WALK(int64_t, int64_t, x, y, s, F_ID, imul); break;
    case PL_RED_L1:
        if (is_unsigned) RED_WALK(int64_t, int64_t, x, y, s, F_ID, iadd);
        else RED_WALK(int64_t, int64_t, x, y, s, F_IABS, iadd);
        break;
    case PL_RED_SUMSQ: RED_WALK(int64_t, int64_t, x, y, s, F_ISQ, iadd); break;
    default: RED_WALK(int64_t, int64_t, x, y, s, F_ID, iadd); break;
    }
    if (k == PL_RED_MEAN) {
        for (int64_t o = 0; o < no; o++) {
            if (s->count == 0) y[o] = 0;
            else if (is_unsigned) y[o] = (int64_t)((uint64_t)y[o] / (uint64_t)s->count);
            else y[o] = y[o] / s->count;
        }
    }
}

/* ---- sorting ---- */

static void insertion_sort(int64_t *a, int64_t n, pl_sort_less_fn less, const void *ctx) {
    for (int64_t i = 1; i < n; i++) {
        int64_t v = a[i], j = i;
        while (j > 0 && less(ctx, v, a[j - 1])) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = v;
    }
}

/* Bottom-up merge sort: insertion-sorted runs of 16, then merge passes between idx and
 * tmp. Stable because merging takes from the left run unless the right one is strictly
 * less. */
void pl_sort_indices(int64_t *idx, int64_t n, pl_sort_less_fn less, const void *ctx,
                     int64_t *tmp) {
    const int64_t run = 16;
    for (int64_t i = 0; i < n; i += run) insertion_sort(idx + i, n - i < run ? n - i : run, less, ctx);
    int64_t *src = idx, *dst = tmp;
    for (int64_t w = run; w < n; w *= 2) {
        for (int64_t lo = 0; lo < n; lo += 2 * w) {
            int64_t mid = lo + w < n ? lo + w : n;
            int64_t hi = lo + 2 * w < n ? lo + 2 * w : n;
            int64_t i = lo, j = mid, o = lo;
            while (i < mid && j < hi) dst[o++] = less(ctx, src[j], src[i]) ? src[j++] : src[i++];
            while (i < mid) dst[o++] = src[i++];
            while (j < hi) dst[o++] = src[j++];
        }
        int64_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != idx) memcpy(idx, src, (size_t)n * sizeof *idx);
}

/* Max-heap by order: the root is the kept element that comes last. */
static void sift_down(int64_t *h, int64_t n, int64_t i, pl_sort_less_fn less, const void *ctx) {
    for (;;) {
        int64_t l = 2 * i + 1;
        if (l >= n) break;
        int64_t m = l;
        if (l + 1 < n && less(ctx, h[l], h[l + 1])) m = l + 1;
        if (!less(ctx, h[i], h[m])) break;
        int64_t t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

void pl_select_indices(int64_t *idx, int64_t n, int64_t k, pl_sort_less_fn less,
                       const void *ctx, int64_t *out, int64_t *tmp) {
    if (k <= 0) return;
    if (k > n) k = n;
    memcpy(out, idx, (size_t)k * sizeof *out);
    for (int64_t i = k / 2 - 1; i >= 0; i--) sift_down(out, k, i, less, ctx);
    for (int64_t i = k; i < n; i++) {
        if (less(ctx, idx[i], out[0])) {
            out[0] = idx[i];
            sift_down(out, k, 0, less, ctx);
        }
    }
    pl_sort_indices(out, k, less, ctx, tmp);
}
