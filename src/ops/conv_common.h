/* conv_common.h -- helpers shared by the convolution, pooling and normalisation ops
 * (conv.c, pool.c, norm.c): window attributes (kernel, strides, dilations, pads,
 * auto_pad), and views of tensors as float or double arrays for the kernels. */
#ifndef PL_OPS_CONV_COMMON_H
#define PL_OPS_CONV_COMMON_H

#include "kernels/conv/conv.h"
#include "ops/op.h"

#define CVF_MAX_SP (PL_MAX_DIMS - 2) /* spatial dims after N and C */

/* A sliding window over the spatial dims of an [N, C, spatial...] tensor. */
typedef struct cvf_window {
    int nsp;
    int64_t in[CVF_MAX_SP];
    int64_t kernel[CVF_MAX_SP];
    int64_t stride[CVF_MAX_SP];
    int64_t dilation[CVF_MAX_SP];
    int64_t pad_begin[CVF_MAX_SP];
    int64_t pad_end[CVF_MAX_SP];
    int64_t out[CVF_MAX_SP];
} cvf_window;

/* While planning, PL_NEED_VALUE if a present input's rank or a dimension is not known
 * yet (the node is then inferred again at run time); PL_OK otherwise. */
pl_status cvf_shapes_known(const pl_op_ctx *c);

/* Input i must have min_rank <= rank <= max_rank. */
pl_status cvf_check_rank(const pl_op_ctx *c, int i, int min_rank, int max_rank);

/* Reads INTS attribute `name` into out[0..n): `def` for every entry when absent; an
 * error if it has another count or a value outside [lo, hi]. */
pl_status cvf_ints_attr(const pl_op_ctx *c, const char *name, int n, int64_t def, int64_t lo,
                        int64_t hi, int64_t *out);

/* Fills w for input x (rank >= 3) and the given kernel sizes: reads strides,
 * dilations, pads and auto_pad (NOTSET, SAME_UPPER, SAME_LOWER, VALID), checks them and
 * computes the output sizes (ceil_mode rounds partial windows up). */
pl_status cvf_window_setup(const pl_op_ctx *c, const pl_tensor *x, const int64_t *kernel,
                           bool ceil_mode, cvf_window *w);

/* Sets output i, failing if its element count overflows. */
pl_status cvf_set_out(pl_op_ctx *c, int i, pl_dtype dtype, int ndim, const int64_t *dims);

/* The kernel type for data of type t: PL_F64 for float64, PL_F32 for everything else. */
pl_dtype cvf_compute_type(pl_dtype t);

/* t's elements as an array of `as` (PL_F32 or PL_F64): t's own buffer when its type
 * already is `as`, else a converted copy returned in *tmp too (free it), *tmp = NULL
 * otherwise. */
pl_status cvf_load(const pl_op_ctx *c, const pl_tensor *t, pl_dtype as, const void **out,
                   void **tmp);
/* Where a kernel writes output t computed in type `as`: t's buffer, or a scratch
 * buffer (*tmp) that cvf_store converts into t. */
pl_status cvf_out(const pl_op_ctx *c, pl_tensor *t, pl_dtype as, void **out, void **tmp);
/* Converts n elements of type `as` at src into t; for integer types the value is
 * rounded to nearest even and must be in the type's range. */
void cvf_store(pl_tensor *t, const void *src, pl_dtype as, int64_t n);
/* Finishes cvf_out: converts the scratch buffer into t (if any) and frees it. */
void cvf_out_done(pl_tensor *t, pl_dtype as, void *tmp);
/* malloc of n elements of `size` bytes (at least one byte), with an error on failure. */
pl_status cvf_alloc(const pl_op_ctx *c, int64_t n, size_t size, void **out);

/* The fused epilogue a graph pass put on a Conv/ConvTranspose node (graph/passes.h):
 * pillar_act / pillar_act_alpha / pillar_act_beta, and pillar_residual (the last input,
 * shaped like the output, is added before the activation). */
typedef struct cvf_epilogue {
    pl_conv_act act;
    int residual;  /* index of the residual input, or -1 */
    int nbase;     /* inputs before the residual (x, w and the optional bias) */
} cvf_epilogue;

/* Reads and checks the fused-epilogue attributes; the residual input, when there is one,
 * must be present. */
pl_status cvf_epilogue_setup(const pl_op_ctx *c, cvf_epilogue *e);

/* Checks that the residual input (if any) has the output's dtype and shape. */
pl_status cvf_epilogue_check(const pl_op_ctx *c, const cvf_epilogue *e, pl_dtype dtype, int ndim,
                             const int64_t *dims);

#endif
