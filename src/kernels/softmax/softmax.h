/* softmax.h -- softmax and log-softmax over one axis of a plain array.
 *
 * The array is viewed as [outer][n][inner] (C order); the function normalises along the
 * middle axis of length n for every (outer, inner) pair. x and y may be the same
 * buffer. Numerically stable: the maximum along the axis is subtracted before exp, and
 * the sum of exponentials is accumulated in double.
 *
 * ref.c holds the plain-C reference that faster ISA kernels are tested against. */
#ifndef PL_KERNELS_SOFTMAX_H
#define PL_KERNELS_SOFTMAX_H

#include <stdint.h>

void pl_ref_softmax_f32(const float *x, float *y, int64_t outer, int64_t n, int64_t inner);
void pl_ref_log_softmax_f32(const float *x, float *y, int64_t outer, int64_t n, int64_t inner);
void pl_ref_softmax_f64(const double *x, double *y, int64_t outer, int64_t n, int64_t inner);
void pl_ref_log_softmax_f64(const double *x, double *y, int64_t outer, int64_t n, int64_t inner);

#endif
