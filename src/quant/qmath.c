/* qmath.c -- scale and zero-point arithmetic of the INT8 quantizer. */
#include <math.h>
#include <stdlib.h>

#include "quant/quant.h"

void pl_quant_affine_u8(float rmin, float rmax, float *scale, uint8_t *zero_point) {
    if (!(rmin <= 0.0f)) rmin = 0.0f; /* also catches NaN */
    if (!(rmax >= 0.0f)) rmax = 0.0f;
    float s = (rmax - rmin) / 255.0f;
    if (!(s > 0.0f) || !isfinite(s)) {
        *scale = 1.0f;
        *zero_point = 0;
        return;
    }
    float z = nearbyintf(-rmin / s);
    if (z < 0.0f) z = 0.0f;
    if (z > 255.0f) z = 255.0f;
    *scale = s;
    *zero_point = (uint8_t)z;
}

float pl_quant_symmetric_scale(float absmax) {
    if (!(absmax > 0.0f) || !isfinite(absmax)) return 1.0f;
    return absmax / (float)PL_QWEIGHT_MAX;
}

int8_t pl_quant_s8(float x, float scale) {
    float q = nearbyintf(x / scale);
    if (!(q >= -PL_QWEIGHT_MAX)) q = q != q ? 0.0f : -PL_QWEIGHT_MAX;
    if (q > PL_QWEIGHT_MAX) q = PL_QWEIGHT_MAX;
    return (int8_t)q;
}

pl_status pl_quant_weight(const pl_tensor *w, int axis, pl_tensor *q, pl_tensor *scales) {
    if (w->dtype != PL_F32 || !w->data || w->ndim < 0)
        return pl_error(PL_ERR_INTERNAL, "weight to quantize is not a float32 constant");
    if (axis >= w->ndim) return pl_error(PL_ERR_INTERNAL, "weight axis %d out of range", axis);
    int64_t n = pl_numel(w);
    int64_t C = axis < 0 ? 1 : w->dims[axis];
    int64_t inner = 1;
    for (int d = axis + 1; axis >= 0 && d < w->ndim; d++) inner *= w->dims[d];
    if (axis < 0) inner = n;
    pl_tensor_set_shape(q, PL_I8, w->ndim, w->dims);
    int64_t sd[1] = {C};
    pl_tensor_set_shape(scales, PL_F32, axis < 0 ? 0 : 1, sd);
    if (pl_tensor_alloc(q) != PL_OK || pl_tensor_alloc(scales) != PL_OK) {
        pl_tensor_free_data(q);
        pl_tensor_free_data(scales);
        return pl_error(PL_ERR_NOMEM, "out of memory quantizing a weight of %lld values", (long long)n);
    }
    const float *x = w->data;
    int8_t *qd = q->data;
    float *sc = scales->data;
    float *amax = calloc((size_t)(C ? C : 1), sizeof *amax);
    if (!amax) {
        pl_tensor_free_data(q);
        pl_tensor_free_data(scales);
        return pl_error(PL_ERR_NOMEM, "out of memory quantizing a weight");
    }
    /* element i belongs to channel (i / inner) % C */
    for (int64_t i = 0; i < n; i++) {
        int64_t c = C > 1 ? (i / inner) % C : 0;
        float a = fabsf(x[i]);
        if (a > amax[c]) amax[c] = a;
    }
    for (int64_t c = 0; c < C; c++) sc[c] = pl_quant_symmetric_scale(amax[c]);
    for (int64_t i = 0; i < n; i++) qd[i] = pl_quant_s8(x[i], sc[C > 1 ? (i / inner) % C : 0]);
    free(amax);
    return PL_OK;
}
