/* conv.h -- convolution kernels over plain arrays (NC + N-d spatial, C order).
 *
 * Conv:          x [N, C, in...], w [M, C/group, kernel...], bias [M] or NULL,
 *                y [N, M, out...]; y[o] = bias + sum x[o*stride - pad_begin + k*dilation] * w[k]
 *                (taps that fall outside the input read as zero).
 * ConvTranspose: x [N, C, in...], w [C, M/group, kernel...], bias [M] or NULL,
 *                y [N, M, out...]; every x[i] adds x[i] * w[k] into
 *                y[i*stride - pad_begin + k*dilation] when that lies inside y.
 *
 * The ref kernels are the plain, obviously correct versions the fast kernels are
 * tested against. They write every element of y. */
#ifndef PL_KERNELS_CONV_H
#define PL_KERNELS_CONV_H

#include <stdint.h>

#define PL_CONV_MAX_SPATIAL 6

typedef struct pl_conv_params {
    int ndim;             /* spatial dimensions, 1..PL_CONV_MAX_SPATIAL */
    int64_t batch;        /* N */
    int64_t in_channels;  /* C, all groups */
    int64_t out_channels; /* M, all groups */
    int64_t group;        /* divides C and M */
    int64_t in_size[PL_CONV_MAX_SPATIAL];
    int64_t out_size[PL_CONV_MAX_SPATIAL];
    int64_t kernel[PL_CONV_MAX_SPATIAL];
    int64_t stride[PL_CONV_MAX_SPATIAL];
    int64_t pad_begin[PL_CONV_MAX_SPATIAL]; /* may be negative for ConvTranspose */
    int64_t dilation[PL_CONV_MAX_SPATIAL];
} pl_conv_params;

void pl_f32_conv_ref(const pl_conv_params *p, const float *x, const float *w, const float *bias,
                     float *y);
void pl_f64_conv_ref(const pl_conv_params *p, const double *x, const double *w,
                     const double *bias, double *y);
/* Integer convolution (ConvInteger, QLinearConv): x and w already have their zero
 * points subtracted; exact int64 accumulation. */
void pl_i32_conv_ref(const pl_conv_params *p, const int32_t *x, const int32_t *w,
                     const int64_t *bias, int64_t *y);

/* Activation of a fused epilogue (graph/passes.h): y = act(conv(x) + bias + residual). */
typedef enum pl_conv_act_kind {
    PL_CONV_ACT_NONE = 0,
    PL_CONV_ACT_RELU,         /* max(x, 0) */
    PL_CONV_ACT_CLIP,         /* min(max(x, alpha), beta) */
    PL_CONV_ACT_LEAKY_RELU,   /* x < 0 ? alpha x : x */
    PL_CONV_ACT_SIGMOID,      /* 1 / (1 + exp(-x)) */
    PL_CONV_ACT_HARD_SIGMOID, /* max(0, min(1, alpha x + beta)) */
    PL_CONV_ACT_HARD_SWISH,   /* x max(0, min(1, x / 6 + 1/2)) */
    PL_CONV_ACT_TANH,
    PL_CONV_ACT_GELU,         /* 0.5 x (1 + erf(x / sqrt 2)) */
    PL_CONV_ACT_GELU_TANH,    /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
} pl_conv_act_kind;

typedef struct pl_conv_act {
    pl_conv_act_kind kind;
    float alpha, beta;
} pl_conv_act;

/* y[i] = act(y[i] + res[i]) for i < n (res may be NULL); the reference definitions. */
void pl_f32_conv_act_ref(const pl_conv_act *a, float *y, const float *res, int64_t n);
void pl_f64_conv_act_ref(const pl_conv_act *a, double *y, const double *res, int64_t n);

void pl_f32_convtranspose_ref(const pl_conv_params *p, const float *x, const float *w,
                              const float *bias, float *y);
void pl_f64_convtranspose_ref(const pl_conv_params *p, const double *x, const double *w,
                              const double *bias, double *y);

#endif
