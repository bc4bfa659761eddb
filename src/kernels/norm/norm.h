/* norm.h -- normalisation kernels over plain arrays. Data is viewed as
 * [n, c, inner] (batch, channels, everything after the channels). Statistics are
 * accumulated in double; variances are population variances (divide by count). */
#ifndef PL_KERNELS_NORM_H
#define PL_KERNELS_NORM_H

#include <stdint.h>

/* Inference batch norm: y = (x - mean[c]) / sqrt(var[c] + eps) * scale[c] + bias[c]. */
void pl_f32_batchnorm_ref(int64_t n, int64_t c, int64_t inner, const float *x,
                          const float *scale, const float *bias, const float *mean,
                          const float *var, double eps, float *y);
void pl_f64_batchnorm_ref(int64_t n, int64_t c, int64_t inner, const double *x,
                          const double *scale, const double *bias, const double *mean,
                          const double *var, double eps, double *y);

/* Per-channel mean and variance over the batch and inner axes (training batch norm). */
void pl_f32_channel_moments_ref(int64_t n, int64_t c, int64_t inner, const float *x,
                                double *mean, double *var);
void pl_f64_channel_moments_ref(int64_t n, int64_t c, int64_t inner, const double *x,
                                double *mean, double *var);

/* Group norm: the channels are split into `groups` equal groups; each (batch, group)
 * is normalised with its own mean and variance, then y = xhat * scale[ch] + bias[ch]
 * per channel. Instance norm is groups == c. */
void pl_f32_groupnorm_ref(int64_t n, int64_t c, int64_t inner, int64_t groups, const float *x,
                          const float *scale, const float *bias, double eps, float *y);
void pl_f64_groupnorm_ref(int64_t n, int64_t c, int64_t inner, int64_t groups,
                          const double *x, const double *scale, const double *bias, double eps,
                          double *y);

/* Layer norm over each row of x [rows, cols]: y = xhat * scale[j] + bias[j] (bias may
 * be NULL). mean and inv_std (1/sqrt(var + eps)) get one value per row when not
 * NULL. */
void pl_f32_layernorm_ref(int64_t rows, int64_t cols, const float *x, const float *scale,
                          const float *bias, double eps, float *y, float *mean, float *inv_std);
void pl_f64_layernorm_ref(int64_t rows, int64_t cols, const double *x, const double *scale,
                          const double *bias, double eps, double *y, double *mean,
                          double *inv_std);

/* Fast float32 layer norm of `rows` contiguous rows of `cols` values:
 * y = (x - mean) / sqrt(var + eps) * scale[j] + bias[j] (bias may be NULL), dispatched
 * on pl_cpu_isa() (AVX-512, AVX2+FMA, plain C). Two passes with float partial sums (the
 * mean, then squares and the residual sum around it, which corrects mean and variance),
 * then one to write. mean / inv_std (one per row) may be
 * NULL. Single-threaded: callers split rows over threads. */
void pl_f32_layernorm_rows(int64_t rows, int64_t cols, const float *x, const float *scale,
                           const float *bias, float eps, float *y, float *mean, float *inv_std);
/* The per-ISA kernels behind it (each only called when its ISA is available). */
void pl_f32_layernorm_rows_c(int64_t rows, int64_t cols, const float *x, const float *scale,
                             const float *bias, float eps, float *y, float *mean, float *inv_std);
void pl_f32_layernorm_rows_avx2(int64_t rows, int64_t cols, const float *x, const float *scale,
                                const float *bias, float eps, float *y, float *mean,
                                float *inv_std);
void pl_f32_layernorm_rows_avx512(int64_t rows, int64_t cols, const float *x, const float *scale,
                                  const float *bias, float eps, float *y, float *mean,
                                  float *inv_std);

/* Local response norm across channels: y = x / (bias + alpha / size * sum of x^2 over
 * channels [ch - (size-1)/2, ch + ceil((size-1)/2)])^beta. */
void pl_f32_lrn_ref(int64_t n, int64_t c, int64_t inner, int64_t size, double alpha,
                    double beta, double bias, const float *x, float *y);
void pl_f64_lrn_ref(int64_t n, int64_t c, int64_t inner, int64_t size, double alpha,
                    double beta, double bias, const double *x, double *y);

#endif
