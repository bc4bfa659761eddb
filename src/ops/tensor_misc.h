/* tensor_misc.h -- helpers shared by the shape and data-movement ops (shape.c,
 * reshape.c, gather.c, scatter.c, slice.c, pad.c, concat.c, resize.c, tensor_misc.c).
 *
 * These ops only move elements, so they work on raw bytes of pl_dtype_size() each.
 * STRING tensors hold `char *` elements: the ops first copy the pointers (borrowed from
 * the inputs) and then call tm_own_strings() on the output, which replaces every
 * pointer by its own copy. */
#ifndef PL_TENSOR_MISC_H
#define PL_TENSOR_MISC_H

#include <string.h>

#include "ops/op.h"

/* Internal rank limit for views (Tile views a rank-r tensor as rank 2r). */
#define TM_MAX_DIMS (2 * PL_MAX_DIMS)

/* Arity check, then: every present input must have a known rank (else PL_NEED_VALUE,
 * so the node is re-inferred at run time) within PL_MAX_DIMS. */
pl_status tm_begin(const pl_op_ctx *c, int min_in, int max_in);

/* Input i must be an int32 or int64 index tensor. */
pl_status tm_check_index(const pl_op_ctx *c, int i);

/* Element k of an int32/int64 tensor. */
static inline int64_t tm_idx(const pl_tensor *t, int64_t k) {
    if (t->dtype == PL_I32) return ((const int32_t *)t->data)[k];
    return ((const int64_t *)t->data)[k];
}

/* Checks an output shape (non-negative dims, no overflow, rank <= PL_MAX_DIMS). */
pl_status tm_check_shape(const pl_op_ctx *c, int ndim, const int64_t *dims);

/* After pointer copies into a STRING output: duplicate every string so that the
 * output owns them. No-op for other types. */
pl_status tm_own_strings(const pl_op_ctx *c, pl_tensor *out);

/* On an error part-way through a STRING output: forget the borrowed pointers copied so
 * far (they belong to the inputs) and return s. */
static inline pl_status tm_abort(pl_tensor *o, pl_status s) {
    if (o && o->dtype == PL_STRING && o->data) memset(o->data, 0, pl_nbytes(o));
    return s;
}

/* Copies all elements of src into dst (same element count), strings included. */
pl_status tm_copy_all(const pl_op_ctx *c, pl_tensor *dst, const pl_tensor *src);

/* dst (dense, C order, shape dims) [i] = src[soff + sum_d idx_d * ss[d]], for elements of
 * es bytes. Offsets and strides are in elements. */
void tm_strided_copy(void *dst, const void *src, size_t es, int ndim, const int64_t *dims,
                     const int64_t *ss, int64_t soff);

/* Copies n elements of es bytes, from src with element stride sstride to dense dst. */
static inline void tm_copy_run(char *dst, const char *src, size_t es, int64_t n, int64_t sstride) {
    if (sstride == 1) {
        memcpy(dst, src, (size_t)n * es);
        return;
    }
    switch (es) {
#define TM_RUN(W)                                                                                  \
    case W:                                                                                        \
        for (int64_t i = 0; i < n; i++) memcpy(dst + i * W, src + i * sstride * W, W);             \
        break;
        TM_RUN(1)
        TM_RUN(2)
        TM_RUN(4)
        TM_RUN(8)
#undef TM_RUN
    default:
        for (int64_t i = 0; i < n; i++)
            memcpy(dst + (size_t)i * es, src + (size_t)(i * sstride) * es, es);
    }
}

/* Copies one element of es bytes. */
static inline void tm_copy1(void *dst, const void *src, size_t es) {
    switch (es) {
    case 1:
        memcpy(dst, src, 1);
        break;
    case 2:
        memcpy(dst, src, 2);
        break;
    case 4:
        memcpy(dst, src, 4);
        break;
    case 8:
        memcpy(dst, src, 8);
        break;
    default:
        memcpy(dst, src, es);
    }
}

/* Product of dims[a..b). */
static inline int64_t tm_prod(const int64_t *dims, int a, int b) {
    int64_t p = 1;
    for (int i = a; i < b; i++) p *= dims[i];
    return p;
}

/* Reads the axes of a Squeeze/Unsqueeze/Reduce-like op: from attribute `name` when
 * opset < input_opset, else from input `in` (optional). *present says whether any were
 * given. PL_NEED_VALUE if the input is not known yet. */
pl_status tm_axes(const pl_op_ctx *c, const char *name, int input_opset, int in, int64_t *axes,
                  int max, int *count, bool *present);

/* For GatherElements/ScatterElements: checks that `ind` (int32/int64, same rank as
 * `data`, no larger than data off the axis) holds valid indices along `axis`, and returns
 * in *offs (malloc'd, numel(ind) entries; NULL when empty) the element offset into data
 * of every index. Out-of-range indices are a PL_ERR_INPUT. */
pl_status tm_elements_offsets(const pl_op_ctx *c, const pl_tensor *data, const pl_tensor *ind,
                              int axis, int64_t **offs);

#endif
