/* ref.c -- reference convolution kernels: direct loops over N-d NCHW data.
 *
 * Both kernels walk the output (or input) positions and the kernel taps with small
 * odometers (multi-indices), so one body serves 1-D, 2-D and 3-D (and up to 6-D).
 * The channel loop is innermost: a tap's input offset and bounds check are computed
 * once and reused for every channel of the group. */
#include "kernels/conv/conv.h"

#include <math.h>


static int64_t prod(int n, const int64_t *v) {
    int64_t r = 1;
    for (int i = 0; i < n; i++) r *= v[i];
    return r;
}

/* C-order strides of a spatial shape. */
static void strides_of(int n, const int64_t *size, int64_t *st) {
    int64_t s = 1;
    for (int i = n - 1; i >= 0; i--) {
        st[i] = s;
        s *= size[i];
    }
}

/* Advances a multi-index over `size`; returns 0 after the last position. */
static int odometer_next(int n, int64_t *idx, const int64_t *size) {
    for (int i = n - 1; i >= 0; i--) {
        if (++idx[i] < size[i]) return 1;
        idx[i] = 0;
    }
    return 0;
}

/* Offset in the input plane of tap `k` for the window starting at `start`, or -1 when
 * the tap falls in the padding. */
static int64_t tap_offset(const pl_conv_params *p, const int64_t *start, const int64_t *k,
                          const int64_t *ist) {
    int64_t off = 0;
    for (int d = 0; d < p->ndim; d++) {
        int64_t c = start[d] + k[d] * p->dilation[d];
        if (c < 0 || c >= p->in_size[d]) return -1;
        off += c * ist[d];
    }
    return off;
}

/* Direct convolution; T is the element type, ACC the accumulator, B the bias/output
 * type. */
#define DEFINE_CONV(NAME, T, ACC, B)                                                        \
    void NAME(const pl_conv_params *p, const T *x, const T *w, const B *bias, B *y) {     \
        const int nd = p->ndim;                                                             \
        const int64_t in_sp = prod(nd, p->in_size), out_sp = prod(nd, p->out_size);         \
        const int64_t k_sp = prod(nd, p->kernel);                                           \
        const int64_t cg = p->in_channels / p->group, mg = p->out_channels / p->group;      \
        int64_t ist[PL_CONV_MAX_SPATIAL];                                                   \
        strides_of(nd, p->in_size, ist);                                                    \
        for (int64_t n = 0; n < p->batch; n++) {                                            \
            for (int64_t m = 0; m < p->out_channels; m++) {                                 \
                const int64_t g = m / mg;                                                   \
                const T *xg = x + (n * p->in_channels + g * cg) * in_sp;                    \
                const T *wm = w + m * cg * k_sp;                                            \
                B *ym = y + (n * p->out_channels + m) * out_sp;                             \
                int64_t o[PL_CONV_MAX_SPATIAL] = {0};                                       \
                for (int64_t op = 0; op < out_sp; op++) {                                   \
                    int64_t start[PL_CONV_MAX_SPATIAL], k[PL_CONV_MAX_SPATIAL] = {0};       \
                    for (int d = 0; d < nd; d++)                                            \
                        start[d] = o[d] * p->stride[d] - p->pad_begin[d];                   \
                    ACC acc = bias ? (ACC)bias[m] : (ACC)0;                                 \
                    for (int64_t kp = 0; kp < k_sp; kp++) {                                 \
                        int64_t off = tap_offset(p, start, k, ist);                         \
                        if (off >= 0)                                                       \
                            for (int64_t ic = 0; ic < cg; ic++)                             \
                                acc += (ACC)xg[ic * in_sp + off] * (ACC)wm[ic * k_sp + kp]; \
                        odometer_next(nd, k, p->kernel);                                    \
                    }                                                                       \
                    ym[op] = (B)acc;                                                        \
                    odometer_next(nd, o, p->out_size);                                      \
                }                                                                           \
            }                                                                               \
        }                                                                                   \
    }

DEFINE_CONV(pl_f32_conv_ref, float, float, float)
DEFINE_CONV(pl_f64_conv_ref, double, double, double)
DEFINE_CONV(pl_i32_conv_ref, int32_t, int64_t, int64_t)

/* Offset in the output plane reached from input position i through tap k, or -1. */
static int64_t scatter_offset(const pl_conv_params *p, const int64_t *i, const int64_t *k,
                              const int64_t *ost) {
    int64_t off = 0;
    for (int d = 0; d < p->ndim; d++) {
        int64_t c = i[d] * p->stride[d] - p->pad_begin[d] + k[d] * p->dilation[d];
        if (c < 0 || c >= p->out_size[d]) return -1;
        off += c * ost[d];
    }
    return off;
}

/* Transposed convolution as a scatter: each input element adds its products with
 * the kernel into the output. */
#define DEFINE_CONVTRANSPOSE(NAME, T)                                                       \
    void NAME(const pl_conv_params *p, const T *x, const T *w, const T *bias, T *y) {     \
        const int nd = p->ndim;                                                             \
        const int64_t in_sp = prod(nd, p->in_size), out_sp = prod(nd, p->out_size);         \
        const int64_t k_sp = prod(nd, p->kernel);                                           \
        const int64_t cg = p->in_channels / p->group, mg = p->out_channels / p->group;      \
        int64_t ost[PL_CONV_MAX_SPATIAL];                                                   \
        strides_of(nd, p->out_size, ost);                                                   \
        for (int64_t n = 0; n < p->batch; n++)                                              \
            for (int64_t m = 0; m < p->out_channels; m++) {                                 \
                T *ym = y + (n * p->out_channels + m) * out_sp;                             \
                T b = bias ? bias[m] : (T)0;                                                \
                for (int64_t q = 0; q < out_sp; q++) ym[q] = b;                             \
            }                                                                               \
        for (int64_t n = 0; n < p->batch; n++) {                                            \
            for (int64_t c = 0; c < p->in_channels; c++) {                                  \
                const int64_t g = c / cg;                                                   \
                const T *xc = x + (n * p->in_channels + c) * in_sp;                         \
                const T *wc = w + c * mg * k_sp;                                            \
                T *yg = y + (n * p->out_channels + g * mg) * out_sp;                        \
                int64_t i[PL_CONV_MAX_SPATIAL] = {0};                                       \
                for (int64_t ip = 0; ip < in_sp; ip++) {                                    \
                    const T xv = xc[ip];                                                    \
                    int64_t k[PL_CONV_MAX_SPATIAL] = {0};                                   \
                    for (int64_t kp = 0; kp < k_sp; kp++) {                                 \
                        int64_t off = scatter_offset(p, i, k, ost);                         \
                        if (off >= 0)                                                       \
                            for (int64_t om = 0; om < mg; om++)                             \
                                yg[om * out_sp + off] += xv * wc[om * k_sp + kp];           \
                        odometer_next(nd, k, p->kernel);                                    \
                    }                                                                       \
                    odometer_next(nd, i, p->in_size);                                       \
                }                                                                           \
            }                                                                               \
        }                                                                                   \
    }

DEFINE_CONVTRANSPOSE(pl_f32_convtranspose_ref, float)
DEFINE_CONVTRANSPOSE(pl_f64_convtranspose_ref, double)

/* ------------------------------------------------------------------ fused activations */

static double act_f64(const pl_conv_act *a, double x) {
    switch (a->kind) {
    case PL_CONV_ACT_NONE: return x;
    case PL_CONV_ACT_RELU: return x < 0 ? 0 : x;
    case PL_CONV_ACT_CLIP: return x < a->alpha ? a->alpha : x > a->beta ? a->beta : x;
    case PL_CONV_ACT_LEAKY_RELU: return x < 0 ? a->alpha * x : x;
    case PL_CONV_ACT_SIGMOID: return 1 / (1 + exp(-x));
    case PL_CONV_ACT_HARD_SIGMOID: {
        double v = a->alpha * x + a->beta;
        return v < 0 ? 0 : v > 1 ? 1 : v;
    }
    case PL_CONV_ACT_HARD_SWISH: {
        double v = x / 6 + 0.5;
        return x * (v < 0 ? 0 : v > 1 ? 1 : v);
    }
    case PL_CONV_ACT_TANH: return tanh(x);
    case PL_CONV_ACT_GELU: return 0.5 * x * (1 + erf(x * 0.70710678118654752440));
    case PL_CONV_ACT_GELU_TANH:
        return 0.5 * x * (1 + tanh(0.79788456080286535588 * (x + 0.044715 * x * x * x)));
    }
    return x;
}

void pl_f32_conv_act_ref(const pl_conv_act *a, float *y, const float *res, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float v = res ? y[i] + res[i] : y[i];
        y[i] = a->kind == PL_CONV_ACT_NONE ? v : (float)act_f64(a, v);
    }
}

void pl_f64_conv_act_ref(const pl_conv_act *a, double *y, const double *res, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = act_f64(a, res ? y[i] + res[i] : y[i]);
}
