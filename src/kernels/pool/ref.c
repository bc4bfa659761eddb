/* ref.c -- reference pooling kernels: one direct loop per output element over the
 * window's taps, N-d through small odometers. Accumulation is in double. */
#include "kernels/pool/pool.h"

#include <math.h>
#include <stddef.h>

static int64_t prod(int n, const int64_t *v) {
    int64_t r = 1;
    for (int i = 0; i < n; i++) r *= v[i];
    return r;
}

static int odometer_next(int n, int64_t *idx, const int64_t *size) {
    for (int i = n - 1; i >= 0; i--) {
        if (++idx[i] < size[i]) return 1;
        idx[i] = 0;
    }
    return 0;
}

/* A window's taps: for each tap, its C-order offset in the plane (or -1 if it lies in
 * the padding) and whether it lies inside the padded input. */
typedef struct window_iter {
    const pl_pool_params *p;
    int64_t start[PL_POOL_MAX_SPATIAL];
    int64_t k[PL_POOL_MAX_SPATIAL];
    int64_t ist[PL_POOL_MAX_SPATIAL]; /* C-order strides */
    int64_t cst[PL_POOL_MAX_SPATIAL]; /* strides with the first axis fastest */
} window_iter;

static void iter_init(window_iter *it, const pl_pool_params *p) {
    it->p = p;
    int64_t s = 1;
    for (int d = p->ndim - 1; d >= 0; d--) {
        it->ist[d] = s;
        s *= p->in_size[d];
    }
    s = 1;
    for (int d = 0; d < p->ndim; d++) {
        it->cst[d] = s;
        s *= p->in_size[d];
    }
}

static void iter_window(window_iter *it, const int64_t *o) {
    for (int d = 0; d < it->p->ndim; d++) {
        it->start[d] = o[d] * it->p->stride[d] - it->p->pad_begin[d];
        it->k[d] = 0;
    }
}

/* Tap at it->k: returns its input offset or -1; *in_padded says whether it is inside
 * the padded input; *col gets the column-major offset. */
static int64_t iter_tap(const window_iter *it, int *in_padded, int64_t *col) {
    const pl_pool_params *p = it->p;
    int64_t off = 0, coff = 0;
    int inside = 1, padded = 1;
    for (int d = 0; d < p->ndim; d++) {
        int64_t c = it->start[d] + it->k[d] * p->dilation[d];
        if (c < 0 || c >= p->in_size[d]) inside = 0;
        if (c < -p->pad_begin[d] || c >= p->in_size[d] + p->pad_end[d]) padded = 0;
        off += c * it->ist[d];
        coff += c * it->cst[d];
    }
    if (in_padded) *in_padded = padded;
    if (col) *col = coff;
    return inside ? off : -1;
}

#define DEFINE_MAXPOOL(NAME, T)                                                             \
    void NAME(const pl_pool_params *p, const T *x, T *y, int64_t *indices, int col_major) { \
        const int64_t in_sp = prod(p->ndim, p->in_size), out_sp = prod(p->ndim, p->out_size); \
        const int64_t k_sp = prod(p->ndim, p->kernel);                                      \
        window_iter it;                                                                     \
        iter_init(&it, p);                                                                  \
        for (int64_t pl = 0; pl < p->planes; pl++) {                                        \
            const T *xp = x + pl * in_sp;                                                   \
            int64_t o[PL_POOL_MAX_SPATIAL] = {0};                                           \
            for (int64_t op = 0; op < out_sp; op++) {                                       \
                iter_window(&it, o);                                                        \
                T best = (T)-INFINITY;                                                      \
                int64_t best_idx = -1;                                                      \
                for (int64_t kp = 0; kp < k_sp; kp++) {                                     \
                    int64_t col;                                                            \
                    int64_t off = iter_tap(&it, NULL, &col);                                \
                    if (off >= 0 && (best_idx < 0 || xp[off] > best)) {                     \
                        best = xp[off];                                                     \
                        best_idx = col_major ? col : off;                                   \
                    }                                                                       \
                    odometer_next(p->ndim, it.k, p->kernel);                                \
                }                                                                           \
                y[pl * out_sp + op] = best;                                                 \
                if (indices) indices[pl * out_sp + op] = best_idx < 0 ? -1 : pl * in_sp + best_idx; \
                odometer_next(p->ndim, o, p->out_size);                                     \
            }                                                                               \
        }                                                                                   \
    }

DEFINE_MAXPOOL(pl_f32_maxpool_ref, float)
DEFINE_MAXPOOL(pl_f64_maxpool_ref, double)

#define DEFINE_AVGPOOL(NAME, T)                                                             \
    void NAME(const pl_pool_params *p, const T *x, T *y, int count_include_pad) {          \
        const int64_t in_sp = prod(p->ndim, p->in_size), out_sp = prod(p->ndim, p->out_size); \
        const int64_t k_sp = prod(p->ndim, p->kernel);                                      \
        window_iter it;                                                                     \
        iter_init(&it, p);                                                                  \
        for (int64_t pl = 0; pl < p->planes; pl++) {                                        \
            const T *xp = x + pl * in_sp;                                                   \
            int64_t o[PL_POOL_MAX_SPATIAL] = {0};                                           \
            for (int64_t op = 0; op < out_sp; op++) {                                       \
                iter_window(&it, o);                                                        \
                double sum = 0;                                                             \
                int64_t count = 0;                                                          \
                for (int64_t kp = 0; kp < k_sp; kp++) {                                     \
                    int padded;                                                             \
                    int64_t off = iter_tap(&it, &padded, NULL);                             \
                    if (off >= 0) sum += xp[off];                                           \
                    if (count_include_pad ? padded : off >= 0) count++;                     \
                    odometer_next(p->ndim, it.k, p->kernel);                                \
                }                                                                           \
                y[pl * out_sp + op] = count ? (T)(sum / (double)count) : (T)0;              \
                odometer_next(p->ndim, o, p->out_size);                                     \
            }                                                                               \
        }                                                                                   \
    }

DEFINE_AVGPOOL(pl_f32_avgpool_ref, float)
DEFINE_AVGPOOL(pl_f64_avgpool_ref, double)

#define DEFINE_LPPOOL(NAME, T)                                                              \
    void NAME(const pl_pool_params *p, const T *x, T *y, double pw) {                      \
        const int64_t in_sp = prod(p->ndim, p->in_size), out_sp = prod(p->ndim, p->out_size); \
        const int64_t k_sp = prod(p->ndim, p->kernel);                                      \
        window_iter it;                                                                     \
        iter_init(&it, p);                                                                  \
        for (int64_t pl = 0; pl < p->planes; pl++) {                                        \
            const T *xp = x + pl * in_sp;                                                   \
            int64_t o[PL_POOL_MAX_SPATIAL] = {0};                                           \
            for (int64_t op = 0; op < out_sp; op++) {                                       \
                iter_window(&it, o);                                                        \
                double sum = 0;                                                             \
                for (int64_t kp = 0; kp < k_sp; kp++) {                                     \
                    int64_t off = iter_tap(&it, NULL, NULL);                                \
                    if (off >= 0) sum += pow(fabs((double)xp[off]), pw);                    \
                    odometer_next(p->ndim, it.k, p->kernel);                                \
                }                                                                           \
                y[pl * out_sp + op] = (T)pow(sum, 1.0 / pw);                                \
                odometer_next(p->ndim, o, p->out_size);                                     \
            }                                                                               \
        }                                                                                   \
    }

DEFINE_LPPOOL(pl_f32_lppool_ref, float)
DEFINE_LPPOOL(pl_f64_lppool_ref, double)
