/* pool.h -- pooling kernels over plain arrays: x [planes, in...] -> y [planes, out...]
 * (planes = N * C, spatial dims in C order). Window o covers the taps
 * o*stride - pad_begin + k*dilation, k < kernel; taps outside the input are padding. */
#ifndef PL_KERNELS_POOL_H
#define PL_KERNELS_POOL_H

#include <stdint.h>

#define PL_POOL_MAX_SPATIAL 6

typedef struct pl_pool_params {
    int ndim;       /* spatial dimensions, 1..PL_POOL_MAX_SPATIAL */
    int64_t planes; /* N * C */
    int64_t in_size[PL_POOL_MAX_SPATIAL];
    int64_t out_size[PL_POOL_MAX_SPATIAL];
    int64_t kernel[PL_POOL_MAX_SPATIAL];
    int64_t stride[PL_POOL_MAX_SPATIAL];
    int64_t pad_begin[PL_POOL_MAX_SPATIAL];
    int64_t pad_end[PL_POOL_MAX_SPATIAL];
    int64_t dilation[PL_POOL_MAX_SPATIAL];
} pl_pool_params;

/* Max over the window's input taps (-inf when the window holds none). When indices is
 * not NULL it gets, per output, the flat index into x of the chosen element: plane *
 * plane_size + position, the position in C order (col_major = 0) or with the first
 * spatial axis fastest (col_major = 1); -1 for an empty window. Ties keep the first. */
void pl_f32_maxpool_ref(const pl_pool_params *p, const float *x, float *y, int64_t *indices,
                        int col_major);
void pl_f64_maxpool_ref(const pl_pool_params *p, const double *x, double *y,
                        int64_t *indices, int col_major);

/* Mean over the window. The divisor counts the taps inside the input
 * (count_include_pad = 0) or inside the padded input [-pad_begin, in + pad_end)
 * (count_include_pad = 1); an empty window gives 0. */
void pl_f32_avgpool_ref(const pl_pool_params *p, const float *x, float *y,
                        int count_include_pad);
void pl_f64_avgpool_ref(const pl_pool_params *p, const double *x, double *y,
                        int count_include_pad);

/* (sum over the window's input taps of |x|^pw)^(1/pw); padding adds nothing. */
void pl_f32_lppool_ref(const pl_pool_params *p, const float *x, float *y, double pw);
void pl_f64_lppool_ref(const pl_pool_params *p, const double *x, double *y, double pw);

#endif
