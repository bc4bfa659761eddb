/* tensor.h -- the engine's tensor: an element type, a shape of up to PL_MAX_DIMS
 * dimensions, and a dense C-order buffer. The same struct is the public
 * pillar_tensor handle. A tensor of STRING type holds `char *` elements, each owned. */
#ifndef PL_TENSOR_H
#define PL_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

typedef pillar_dtype pl_dtype;
#define PL_UNDEF PILLAR_UNDEFINED
#define PL_F32 PILLAR_FLOAT32
#define PL_U8 PILLAR_UINT8
#define PL_I8 PILLAR_INT8
#define PL_U16 PILLAR_UINT16
#define PL_I16 PILLAR_INT16
#define PL_I32 PILLAR_INT32
#define PL_I64 PILLAR_INT64
#define PL_STRING PILLAR_STRING
#define PL_BOOL PILLAR_BOOL
#define PL_F16 PILLAR_FLOAT16
#define PL_F64 PILLAR_FLOAT64
#define PL_U32 PILLAR_UINT32
#define PL_U64 PILLAR_UINT64
#define PL_BF16 PILLAR_BFLOAT16

#define PL_MAX_DIMS PILLAR_MAX_DIMS

typedef struct pillar_tensor {
    pl_dtype dtype;
    int ndim;                     /* -1: rank not known yet (planning only) */
    int64_t dims[PL_MAX_DIMS];
    void *data;                   /* NULL while planning when the value is not known */
    size_t cap;                   /* bytes allocated at data when owns */
    bool owns;                    /* data is freed with the tensor */
} pl_tensor;

size_t pl_dtype_size(pl_dtype t);
const char *pl_dtype_name(pl_dtype t);
bool pl_dtype_is_float(pl_dtype t);   /* F16, BF16, F32, F64 */
bool pl_dtype_is_int(pl_dtype t);     /* signed or unsigned integer types (not BOOL) */
bool pl_dtype_is_signed(pl_dtype t);  /* signed ints and floats */

int64_t pl_numel(const pl_tensor *t);
size_t pl_nbytes(const pl_tensor *t);
/* Formats "2x3x4" (or "scalar") into buf; returns buf. */
const char *pl_shape_str(const pl_tensor *t, char *buf, size_t n);
/* numel of dims[0..ndim), or -1 on int64 overflow / negative dims. */
int64_t pl_dims_numel(int ndim, const int64_t *dims);

/* Sets type and shape; does not touch data. */
void pl_tensor_set_shape(pl_tensor *t, pl_dtype dtype, int ndim, const int64_t *dims);
/* Makes sure `t` owns a buffer for its current dtype and shape (zero-filled when newly
 * allocated; at least one byte so that data != NULL for empty tensors). */
pl_status pl_tensor_alloc(pl_tensor *t);
/* Frees the buffer (and strings) if owned; keeps type and shape. */
void pl_tensor_free_data(pl_tensor *t);
/* Deep copy of type, shape and data into dst (dst's old buffer is released). */
pl_status pl_tensor_copy(pl_tensor *dst, const pl_tensor *src);
/* Same type and shape? */
bool pl_tensor_same_shape(const pl_tensor *a, const pl_tensor *b);

/* Element access through double / int64, for reference code that is generic over
 * types (slow, exact for every type but 64-bit integers above 2^53 through double). */
double pl_get_f64(const pl_tensor *t, int64_t i);
void pl_set_f64(pl_tensor *t, int64_t i, double v);
int64_t pl_get_i64(const pl_tensor *t, int64_t i);
void pl_set_i64(pl_tensor *t, int64_t i, int64_t v);

float pl_f16_to_f32(uint16_t h);
uint16_t pl_f32_to_f16(float f);
float pl_bf16_to_f32(uint16_t h);
uint16_t pl_f32_to_bf16(float f);

/* C-order strides (in elements) of a shape. */
void pl_strides(int ndim, const int64_t *dims, int64_t *strides);

#endif
