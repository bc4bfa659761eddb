#include "core/tensor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t pl_dtype_size(pl_dtype t) {
    switch (t) {
    case PL_F32: case PL_I32: case PL_U32: return 4;
    case PL_U8: case PL_I8: case PL_BOOL: return 1;
    case PL_U16: case PL_I16: case PL_F16: case PL_BF16: return 2;
    case PL_I64: case PL_U64: case PL_F64: return 8;
    case PL_STRING: return sizeof(char *);
    default: return 0;
    }
}
size_t pillar_dtype_size(pillar_dtype t) { return t == PL_STRING ? 0 : pl_dtype_size(t); }

const char *pl_dtype_name(pl_dtype t) {
    switch (t) {
    case PL_F32: return "float32";
    case PL_U8: return "uint8";
    case PL_I8: return "int8";
    case PL_U16: return "uint16";
    case PL_I16: return "int16";
    case PL_I32: return "int32";
    case PL_I64: return "int64";
    case PL_STRING: return "string";
    case PL_BOOL: return "bool";
    case PL_F16: return "float16";
    case PL_F64: return "float64";
    case PL_U32: return "uint32";
    case PL_U64: return "uint64";
    case PL_BF16: return "bfloat16";
    case PL_UNDEF: return "undefined";
    default: return "unknown";
    }
}
const char *pillar_dtype_name(pillar_dtype t) { return pl_dtype_name(t); }

bool pl_dtype_is_float(pl_dtype t) {
    return t == PL_F32 || t == PL_F64 || t == PL_F16 || t == PL_BF16;
}
bool pl_dtype_is_int(pl_dtype t) {
    return t == PL_U8 || t == PL_I8 || t == PL_U16 || t == PL_I16 || t == PL_I32 ||
           t == PL_I64 || t == PL_U32 || t == PL_U64;
}
bool pl_dtype_is_signed(pl_dtype t) {
    return pl_dtype_is_float(t) || t == PL_I8 || t == PL_I16 || t == PL_I32 || t == PL_I64;
}

int64_t pl_dims_numel(int ndim, const int64_t *dims) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] < 0) return -1;
        if (dims[i] != 0 && n > INT64_MAX / dims[i]) return -1;
        n *= dims[i];
    }
    return n;
}

int64_t pl_numel(const pl_tensor *t) { return t->ndim < 0 ? -1 : pl_dims_numel(t->ndim, t->dims); }

size_t pl_nbytes(const pl_tensor *t) {
    int64_t n = pl_numel(t);
    return n < 0 ? 0 : (size_t)n * pl_dtype_size(t->dtype);
}

const char *pl_shape_str(const pl_tensor *t, char *buf, size_t n) {
    if (t->ndim < 0) {
        snprintf(buf, n, "?");
        return buf;
    }
    if (t->ndim == 0) {
        snprintf(buf, n, "scalar");
        return buf;
    }
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < t->ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, i ? "x%lld" : "%lld", (long long)t->dims[i]);
    return buf;
}

void pl_tensor_set_shape(pl_tensor *t, pl_dtype dtype, int ndim, const int64_t *dims) {
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim && i < PL_MAX_DIMS; i++) t->dims[i] = dims[i];
}

static void free_strings(pl_tensor *t) {
    if (t->dtype != PL_STRING || !t->data) return;
    size_t n = t->cap / sizeof(char *);
    char **s = (char **)t->data;
    for (size_t i = 0; i < n; i++) free(s[i]);
}

void pl_tensor_free_data(pl_tensor *t) {
    if (t->owns) {
        free_strings(t);
        free(t->data);
    }
    t->data = NULL;
    t->cap = 0;
    t->owns = false;
}

pl_status pl_tensor_alloc(pl_tensor *t) {
    if (t->ndim < 0 || t->ndim > PL_MAX_DIMS) return pl_error(PL_ERR_INTERNAL, "tensor rank not known at allocation");
    int64_t n = pl_numel(t);
    if (n < 0) return pl_error(PL_ERR_MODEL, "tensor size overflows");
    size_t es = pl_dtype_size(t->dtype);
    if (es == 0) return pl_error(PL_ERR_UNSUPPORTED, "tensor of type %s", pl_dtype_name(t->dtype));
    if ((uint64_t)n > (uint64_t)(SIZE_MAX / 2) / es)
        return pl_error(PL_ERR_NOMEM, "tensor of %lld elements is too large", (long long)n);
    size_t bytes = (size_t)n * es;
    if (t->owns && t->data && t->cap >= bytes && t->dtype != PL_STRING) return PL_OK;
    pl_tensor_free_data(t);
    size_t alloc = bytes ? bytes : 1;
    t->data = calloc(1, alloc);
    if (!t->data) return pl_error(PL_ERR_NOMEM, "out of memory allocating %zu bytes", alloc);
    t->cap = bytes;
    t->owns = true;
    return PL_OK;
}

pl_status pl_tensor_copy(pl_tensor *dst, const pl_tensor *src) {
    if (dst == src) return PL_OK;
    pl_tensor_free_data(dst);
    pl_tensor_set_shape(dst, src->dtype, src->ndim, src->dims);
    PL_TRY(pl_tensor_alloc(dst));
    if (!src->data) return PL_OK;
    if (src->dtype == PL_STRING) {
        int64_t n = pl_numel(src);
        char **s = (char **)src->data, **d = (char **)dst->data;
        for (int64_t i = 0; i < n; i++) {
            const char *v = s[i] ? s[i] : "";
            d[i] = strdup(v);
            if (!d[i]) return pl_error(PL_ERR_NOMEM, "out of memory copying strings");
        }
    } else {
        memcpy(dst->data, src->data, pl_nbytes(src));
    }
    return PL_OK;
}

bool pl_tensor_same_shape(const pl_tensor *a, const pl_tensor *b) {
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->dims[i] != b->dims[i]) return false;
    return true;
}

void pl_strides(int ndim, const int64_t *dims, int64_t *strides) {
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        strides[i] = s;
        s *= dims[i];
    }
}

float pl_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400));
            bits = sign | (uint32_t)(127 - 15 - e) << 23 | (man & 0x3ff) << 13;
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | man << 13;
    } else {
        bits = sign | (exp + 112) << 23 | man << 13;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t pl_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    int32_t exp = (int32_t)((x >> 23) & 0xff);
    uint32_t man = x & 0x7fffff;
    if (exp == 255) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0));
    int32_t e = exp - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7c00);
    if (e <= 0) {
        if (e < -10) return (uint16_t)sign;
        man |= 0x800000;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t half = man >> shift, rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = sign | (uint32_t)e << 10 | man >> 13;
    uint32_t rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++;
    return (uint16_t)half;
}

float pl_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t pl_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40);
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

double pl_get_f64(const pl_tensor *t, int64_t i) {
    const void *d = t->data;
    switch (t->dtype) {
    case PL_F32: return ((const float *)d)[i];
    case PL_F64: return ((const double *)d)[i];
    case PL_F16: return pl_f16_to_f32(((const uint16_t *)d)[i]);
    case PL_BF16: return pl_bf16_to_f32(((const uint16_t *)d)[i]);
    case PL_U8: return ((const uint8_t *)d)[i];
    case PL_I8: return ((const int8_t *)d)[i];
    case PL_U16: return ((const uint16_t *)d)[i];
    case PL_I16: return ((const int16_t *)d)[i];
    case PL_I32: return ((const int32_t *)d)[i];
    case PL_I64: return (double)((const int64_t *)d)[i];
    case PL_U32: return ((const uint32_t *)d)[i];
    case PL_U64: return (double)((const uint64_t *)d)[i];
    case PL_BOOL: return ((const uint8_t *)d)[i] != 0;
    default: return 0;
    }
}

/* Float to integer conversion that never invokes undefined behaviour: NaN -> 0,
 * out-of-range values saturate. */
static int64_t f2i(double v) {
    if (v != v) return 0;
    if (v >= 9.2233720368547758e18) return INT64_MAX;
    if (v <= -9.2233720368547758e18) return INT64_MIN;
    return (int64_t)v;
}
static uint64_t f2u(double v) {
    if (v != v || v <= 0) return v <= -1 ? (uint64_t)f2i(v) : 0;
    if (v >= 1.8446744073709552e19) return UINT64_MAX;
    return (uint64_t)v;
}

void pl_set_f64(pl_tensor *t, int64_t i, double v) {
    void *d = t->data;
    switch (t->dtype) {
    case PL_F32: ((float *)d)[i] = (float)v; break;
    case PL_F64: ((double *)d)[i] = v; break;
    case PL_F16: ((uint16_t *)d)[i] = pl_f32_to_f16((float)v); break;
    case PL_BF16: ((uint16_t *)d)[i] = pl_f32_to_bf16((float)v); break;
    case PL_U8: ((uint8_t *)d)[i] = (uint8_t)f2u(v); break;
    case PL_I8: ((int8_t *)d)[i] = (int8_t)f2i(v); break;
    case PL_U16: ((uint16_t *)d)[i] = (uint16_t)f2u(v); break;
    case PL_I16: ((int16_t *)d)[i] = (int16_t)f2i(v); break;
    case PL_I32: ((int32_t *)d)[i] = (int32_t)f2i(v); break;
    case PL_I64: ((int64_t *)d)[i] = f2i(v); break;
    case PL_U32: ((uint32_t *)d)[i] = (uint32_t)f2u(v); break;
    case PL_U64: ((uint64_t *)d)[i] = f2u(v); break;
    case PL_BOOL: ((uint8_t *)d)[i] = v != 0; break;
    default: break;
    }
}

int64_t pl_get_i64(const pl_tensor *t, int64_t i) {
    const void *d = t->data;
    switch (t->dtype) {
    case PL_I64: return ((const int64_t *)d)[i];
    case PL_U64: return (int64_t)((const uint64_t *)d)[i];
    case PL_I32: return ((const int32_t *)d)[i];
    case PL_U32: return ((const uint32_t *)d)[i];
    case PL_I16: return ((const int16_t *)d)[i];
    case PL_U16: return ((const uint16_t *)d)[i];
    case PL_I8: return ((const int8_t *)d)[i];
    case PL_U8: return ((const uint8_t *)d)[i];
    case PL_BOOL: return ((const uint8_t *)d)[i] != 0;
    default: return f2i(pl_get_f64(t, i));
    }
}

void pl_set_i64(pl_tensor *t, int64_t i, int64_t v) {
    void *d = t->data;
    switch (t->dtype) {
    case PL_I64: ((int64_t *)d)[i] = v; break;
    case PL_U64: ((uint64_t *)d)[i] = (uint64_t)v; break;
    case PL_I32: ((int32_t *)d)[i] = (int32_t)v; break;
    case PL_U32: ((uint32_t *)d)[i] = (uint32_t)v; break;
    case PL_I16: ((int16_t *)d)[i] = (int16_t)v; break;
    case PL_U16: ((uint16_t *)d)[i] = (uint16_t)v; break;
    case PL_I8: ((int8_t *)d)[i] = (int8_t)v; break;
    case PL_U8: ((uint8_t *)d)[i] = (uint8_t)v; break;
    case PL_BOOL: ((uint8_t *)d)[i] = v != 0; break;
    default: pl_set_f64(t, i, (double)v); break;
    }
}
