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

#include <stdbool.h>
#include <stdint.h>

void pl_ref_softmax_f32(const float *x, float *y, int64_t outer, int64_t n, int64_t inner);
void pl_ref_log_softmax_f32(const float *x, float *y, int64_t outer, int64_t n, int64_t inner);
void pl_ref_softmax_f64(const double *x, double *y, int64_t outer, int64_t n, int64_t inner);
void pl_ref_log_softmax_f64(const double *x, double *y, int64_t outer, int64_t n, int64_t inner);

/* Fast float32 softmax (log_mode: log-softmax) of `rows` contiguous rows of n values
 * each (the last-axis case, inner == 1), dispatched on pl_cpu_isa(): AVX-512, AVX2+FMA
 * or plain C. Sums are in float (several partial sums); exp is a polynomial good to
 * about 2 ulp, exactly 0 below -87.3. x and y may be the same buffer. Single-threaded:
 * callers split rows over threads. */
void pl_softmax_rows_f32(const float *x, float *y, int64_t rows, int64_t n, bool log_mode);

/* The per-ISA kernels behind it (NULL-safe: each is only called when its ISA is
 * available; the AVX files are compiled with their own flags). */
void pl_softmax_rows_f32_c(const float *x, float *y, int64_t rows, int64_t n, bool log_mode);
void pl_softmax_rows_f32_avx2(const float *x, float *y, int64_t rows, int64_t n, bool log_mode);
void pl_softmax_rows_f32_avx512(const float *x, float *y, int64_t rows, int64_t n, bool log_mode);

/* Vectorised exp of n floats (y may be x), the same polynomial as the kernels; for
 * tests. */
void pl_exp_f32(const float *x, float *y, int64_t n);

#endif
