/* ref.c -- reference normalisation kernels. Two passes (mean, then variance around
 * the mean) in double, which stays accurate when the mean is large. */
#include "kernels/norm/norm.h"

#include <math.h>

#define DEFINE_BATCHNORM(NAME, T)                                                           \
    void NAME(int64_t n, int64_t c, int64_t inner, const T *x, const T *scale,              \
              const T *bias, const T *mean, const T *var, double eps, T *y) {               \
        for (int64_t ch = 0; ch < c; ch++) {                                                \
            double a = (double)scale[ch] / sqrt((double)var[ch] + eps);                     \
            double b = (double)bias[ch] - (double)mean[ch] * a;                             \
            for (int64_t b0 = 0; b0 < n; b0++) {                                            \
                const T *xp = x + (b0 * c + ch) * inner;                                    \
                T *yp = y + (b0 * c + ch) * inner;                                          \
                for (int64_t i = 0; i < inner; i++) yp[i] = (T)((double)xp[i] * a + b);     \
            }                                                                               \
        }                                                                                   \
    }

DEFINE_BATCHNORM(pl_f32_batchnorm_ref, float)
DEFINE_BATCHNORM(pl_f64_batchnorm_ref, double)

#define DEFINE_CHANNEL_MOMENTS(NAME, T)                                                     \
    void NAME(int64_t n, int64_t c, int64_t inner, const T *x, double *mean, double *var) { \
        const double count = (double)(n * inner);                                           \
        for (int64_t ch = 0; ch < c; ch++) {                                                \
            double s = 0, q = 0;                                                            \
            for (int64_t b0 = 0; b0 < n; b0++)                                              \
                for (int64_t i = 0; i < inner; i++) s += x[(b0 * c + ch) * inner + i];      \
            double m = count > 0 ? s / count : 0;                                           \
            for (int64_t b0 = 0; b0 < n; b0++)                                              \
                for (int64_t i = 0; i < inner; i++) {                                       \
                    double d = x[(b0 * c + ch) * inner + i] - m;                            \
                    q += d * d;                                                             \
                }                                                                           \
            mean[ch] = m;                                                                   \
            var[ch] = count > 0 ? q / count : 0;                                            \
        }                                                                                   \
    }

DEFINE_CHANNEL_MOMENTS(pl_f32_channel_moments_ref, float)
DEFINE_CHANNEL_MOMENTS(pl_f64_channel_moments_ref, double)

#define DEFINE_GROUPNORM(NAME, T)                                                           \
    void NAME(int64_t n, int64_t c, int64_t inner, int64_t groups, const T *x,              \
              const T *scale, const T *bias, double eps, T *y) {                            \
        const int64_t cg = c / groups, len = cg * inner;                                    \
        for (int64_t b0 = 0; b0 < n; b0++)                                                  \
            for (int64_t g = 0; g < groups; g++) {                                          \
                const T *xp = x + (b0 * c + g * cg) * inner;                                \
                T *yp = y + (b0 * c + g * cg) * inner;                                      \
                double s = 0, q = 0;                                                        \
                for (int64_t i = 0; i < len; i++) s += xp[i];                               \
                double m = len > 0 ? s / (double)len : 0;                                   \
                for (int64_t i = 0; i < len; i++) q += (xp[i] - m) * (xp[i] - m);           \
                double inv = 1.0 / sqrt((len > 0 ? q / (double)len : 0) + eps);             \
                for (int64_t k = 0; k < cg; k++) {                                          \
                    double a = inv * (double)scale[g * cg + k];                             \
                    double b = (double)bias[g * cg + k];                                    \
                    for (int64_t i = 0; i < inner; i++)                                     \
                        yp[k * inner + i] = (T)((xp[k * inner + i] - m) * a + b);           \
                }                                                                           \
            }                                                                               \
    }

DEFINE_GROUPNORM(pl_f32_groupnorm_ref, float)
DEFINE_GROUPNORM(pl_f64_groupnorm_ref, double)

#define DEFINE_LAYERNORM(NAME, T)                                                           \
    void NAME(int64_t rows, int64_t cols, const T *x, const T *scale, const T *bias,        \
              double eps, T *y, T *mean, T *inv_std) {                                      \
        for (int64_t r = 0; r < rows; r++) {                                                \
            const T *xp = x + r * cols;                                                     \
            T *yp = y + r * cols;                                                           \
            double s = 0, q = 0;                                                            \
            for (int64_t j = 0; j < cols; j++) s += xp[j];                                  \
            double m = cols > 0 ? s / (double)cols : 0;                                     \
            for (int64_t j = 0; j < cols; j++) q += (xp[j] - m) * (xp[j] - m);              \
            double inv = 1.0 / sqrt((cols > 0 ? q / (double)cols : 0) + eps);               \
            for (int64_t j = 0; j < cols; j++) {                                            \
                double v = (xp[j] - m) * inv * (double)scale[j];                            \
                yp[j] = (T)(bias ? v + (double)bias[j] : v);                                \
            }                                                                               \
            if (mean) mean[r] = (T)m;                                                       \
            if (inv_std) inv_std[r] = (T)inv;                                               \
        }                                                                                   \
    }

DEFINE_LAYERNORM(pl_f32_layernorm_ref, float)
DEFINE_LAYERNORM(pl_f64_layernorm_ref, double)

#define DEFINE_LRN(NAME, T)                                                                 \
    void NAME(int64_t n, int64_t c, int64_t inner, int64_t size, double alpha, double beta, \
              double bias, const T *x, T *y) {                                              \
        const int64_t lo = (size - 1) / 2, hi = size / 2; /* floor and ceil of (size-1)/2 */ \
        for (int64_t b0 = 0; b0 < n; b0++)                                                  \
            for (int64_t ch = 0; ch < c; ch++)                                              \
                for (int64_t i = 0; i < inner; i++) {                                       \
                    double sq = 0;                                                          \
                    int64_t from = ch - lo < 0 ? 0 : ch - lo;                               \
                    int64_t to = ch + hi >= c ? c - 1 : ch + hi;                            \
                    for (int64_t k = from; k <= to; k++) {                                  \
                        double v = x[(b0 * c + k) * inner + i];                             \
                        sq += v * v;                                                        \
                    }                                                                       \
                    int64_t at = (b0 * c + ch) * inner + i;                                 \
                    y[at] = (T)(x[at] / pow(bias + alpha / (double)size * sq, beta));       \
                }                                                                           \
    }

DEFINE_LRN(pl_f32_lrn_ref, float)
DEFINE_LRN(pl_f64_lrn_ref, double)
