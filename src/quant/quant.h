/* quant.h -- static INT8 quantisation of a model into ONNX Runtime's QDQ format: the
 * scale / zero-point arithmetic, activation-range calibration over sample runs, and the
 * graph rewrite. Behind pillar_model_quantize (include/pillar.h). */
#ifndef PL_QUANT_H
#define PL_QUANT_H

#include "graph/ir.h"

typedef struct pillar_quantize_options {
    pillar_calibration method;
    double percentile;
    bool per_tensor;
    int threads;
    int nexclude;
    char **exclude;
} pl_quant_options;

/* The int8 weight range is symmetric [-127, 127] (as ONNX Runtime's quantizer writes
 * symmetric int8 weights): -128 is never used, so a u8 x s8 pair sum cannot overflow
 * 16 bits twice over in the AVX2 kernels' pairwise products. */
#define PL_QWEIGHT_MAX 127

/* uint8 affine parameters for the real range [rmin, rmax]: the range is first widened
 * to contain 0 (so that 0 is exact), scale = (rmax - rmin) / 255 and zero point
 * round(-rmin / scale) in [0, 255]. An empty range (both 0) gives scale 1, zero 0. */
void pl_quant_affine_u8(float rmin, float rmax, float *scale, uint8_t *zero_point);

/* Symmetric int8 scale for values whose largest magnitude is `absmax`: absmax / 127,
 * or 1 when absmax is 0 (an all-zero channel, e.g. pruned away). */
float pl_quant_symmetric_scale(float absmax);

/* round-half-to-even(x / scale) saturated to [-127, 127]; 0 stays 0. */
int8_t pl_quant_s8(float x, float scale);

/* Quantizes the float32 weight `w` symmetrically: per channel along `axis` (scales has
 * w->dims[axis] entries) or per tensor when axis < 0 (one scale). q gets int8 data of
 * w's shape, scales float32 [C] (or a scalar). Both are allocated here (owned). */
pl_status pl_quant_weight(const pl_tensor *w, int axis, pl_tensor *q, pl_tensor *scales);

/* Range of each tensor named in `names` over the calibration runs (see pillar.h for the
 * sample layout). lo/hi receive one value per name. */
pl_status pl_quant_calibrate(const pl_model *m, const pl_quant_options *o, int nnames, const char *const *names,
                             size_t n_samples, const pl_tensor *const *samples, float *lo, float *hi);

#endif
