/* grad_kernels.h -- the hot loops of training that are not matrix products (im2col,
 * col2im, ReLU, 2x2 max pooling, accumulation), compiled twice from one source
 * (grad_kernels.inc): plainly (grad_kernels.c) and with AVX-512 enabled
 * (grad_kernels_avx512.c, which also has an intrinsics max pool). tr_kern() picks
 * the table once from pl_cpu_isa(). Plain arrays only. */
#ifndef PL_TRAIN_GRAD_KERNELS_H
#define PL_TRAIN_GRAD_KERNELS_H

#include <stdbool.h>
#include <stdint.h>

/* Geometry of a convolution, 1 to 3 spatial dims as D, H, W with leading 1s. */
typedef struct tr_conv_geo {
    int64_t N, C, M, G, Cg, Mg, Kg, KK;
    int64_t in[3], out[3], k[3], s[3], d[3], p[3];
    int64_t P, Q; /* output / input positions per image */
    bool direct;  /* 1x1, stride 1, no padding */
    /* per kernel column kw: the output columns [lo, hi) whose input column is inside */
    int64_t *wlo, *whi;
} tr_conv_geo;

typedef struct tr_kernels {
    /* columns of one image x [C][Q] into col [C*KK][P] (row stride ld) */
    void (*im2col)(const tr_conv_geo *g, const float *x, float *col, int64_t ld);
    /* adds column gradients back into dx [C][Q] */
    void (*col2im)(const tr_conv_geo *g, const float *col, int64_t ld, float *dx);
    void (*relu_fwd)(const float *x, float *y, int64_t n);
    /* gx += x > 0 ? g : 0 */
    void (*relu_bwd)(const float *x, const float *g, float *gx, int64_t n);
    /* 2x2 windows, stride 2, no padding, OH <= IH/2, OW <= IW/2: y and (if arg) the
     * winning index within the plane (first of ties) */
    void (*maxpool2x2)(const float *x, float *y, int32_t *arg, int64_t planes, int64_t IH,
                       int64_t IW, int64_t OH, int64_t OW);
    /* dst += src */
    void (*add)(float *dst, const float *src, int64_t n);
    /* sums of (x - shift) and (x - shift)^2 over n values */
    void (*shifted_sums)(const float *x, int64_t n, float shift, double *s1, double *s2);
    /* sums of g and of g * (x - m) over n values */
    void (*grad_sums)(const float *x, const float *g, int64_t n, float m, double *sg, double *sgx);
    /* y = x * a + b */
    void (*axpb)(const float *x, float a, float b, float *y, int64_t n);
    /* dx += f * (g - mg - (x - m) * k) */
    void (*bn_dx)(const float *x, const float *g, float *dx, int64_t n, float f, float mg, float m,
                  float k);
} tr_kernels;

const tr_kernels *tr_kern(void);
/* The AVX-512 table, or NULL when that file was built without AVX-512. */
const tr_kernels *tr_kernels_avx512(void);

#endif
