/* ref.c -- reference softmax / log-softmax (see softmax.h). */
#include <math.h>

#include "kernels/softmax/softmax.h"

/* One template for both element types and both modes. EXP/LOG are the math functions
 * of the element type; the sum is always accumulated in double. */
#define DEFINE_SOFTMAX(NAME, T, EXP, LOGMODE)                                                      \
    void NAME(const T *x, T *y, int64_t outer, int64_t n, int64_t inner) {                         \
        if (n <= 0) return;                                                                        \
        for (int64_t o = 0; o < outer; o++) {                                                      \
            for (int64_t i = 0; i < inner; i++) {                                                  \
                const T *xp = x + o * n * inner + i;                                               \
                T *yp = y + o * n * inner + i;                                                     \
                T mx = xp[0];                                                                      \
                for (int64_t k = 1; k < n; k++)                                                    \
                    if (xp[k * inner] > mx) mx = xp[k * inner];                                    \
                double sum = 0;                                                                    \
                if (LOGMODE) {                                                                     \
                    for (int64_t k = 0; k < n; k++) sum += (double)EXP(xp[k * inner] - mx);        \
                    T lse = (T)log(sum);                                                           \
                    for (int64_t k = 0; k < n; k++) yp[k * inner] = xp[k * inner] - mx - lse;      \
                } else {                                                                           \
                    for (int64_t k = 0; k < n; k++) {                                              \
                        T e = EXP(xp[k * inner] - mx);                                             \
                        yp[k * inner] = e;                                                         \
                        sum += (double)e;                                                          \
                    }                                                                              \
                    for (int64_t k = 0; k < n; k++)                                                \
                        yp[k * inner] = (T)((double)yp[k * inner] / sum);                          \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

DEFINE_SOFTMAX(pl_ref_softmax_f32, float, expf, 0)
DEFINE_SOFTMAX(pl_ref_log_softmax_f32, float, expf, 1)
DEFINE_SOFTMAX(pl_ref_softmax_f64, double, exp, 0)
DEFINE_SOFTMAX(pl_ref_log_softmax_f64, double, exp, 1)
