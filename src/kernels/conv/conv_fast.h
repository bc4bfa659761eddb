/* conv_fast.h -- fast float32 convolutions (1-D and 2-D, NCHW), with weights packed once
 * at planning and a fused epilogue: y = act(conv(x) + bias + residual).
 *
 * A plan (pl_conv_fast) is made for one geometry (pl_conv_params, batch included) and
 * one kernel level (pl_cpu_isa() when it is made); it owns packed copies of the weights
 * and bias. Algorithms:
 *   SGEMM      1x1 kernels: the (strided, padded) input is the B matrix of one packed
 *              SGEMM per image and group (kernels/gemm/sgemm.h).
 *   IGEMM      any kernel (1x1 included): implicit GEMM. When needed the input is
 *              copied once per image into zero-padded, stride-phase-split planes, in
 *              which every kernel tap of a run of output pixels is a contiguous row; B
 *              slivers are packed from those rows on the fly (no im2col buffer), and the
 *              micro-kernels apply bias, residual and ReLU/Clip before their store.
 *   IGEMM_T    the same computing C^T (pixels as rows, channels as the vector lanes),
 *              for planes too small to fill the vector tiles (7x7).
 *   DEPTHWISE  one input channel per group: direct kernel over output rows (3x3 with
 *              four rows per pass), no input copy for strides 1 and 2.
 *   WINOGRAD   3x3, stride 1, dilation 1: F(4x4, 3x3) tiles, the 36 products as GEMMs
 *              (4x fewer multiplies; transformed weights take 4x the memory).
 *   SPARSE     pruned weights: per output channel, its nonzeros times rows of the
 *              prepared input (as IGEMM's), vectorised over output pixels
 *              (kernels/sparse/sparse.h); any kernel, stride and group count.
 * AUTO (bench/conv_bench measures the choices): DEPTHWISE when it applies, WINOGRAD for
 * 3x3 stride 1 with 16+ channels and 16+ tiles, else IGEMM in the orientation that fills
 * the tiles best; SPARSE instead of these when the weights have enough zeros that its
 * modelled time (conv_sparse.c's cost model, fitted to measurements) is lower. Everything runs on the caller's thread pool; results match
 * pl_f32_conv_ref up to float rounding (Winograd: a few ulps more). */
#ifndef PL_KERNELS_CONV_FAST_H
#define PL_KERNELS_CONV_FAST_H

#include <stdbool.h>
#include <stddef.h>

#include "core/status.h"
#include "core/threadpool.h"
#include "kernels/conv/conv.h"
#include "kernels/gemm/sgemm.h"

typedef struct pl_conv_fast pl_conv_fast;

typedef enum pl_conv_algo {
    PL_CONV_ALGO_AUTO_DENSE = -1, /* the fastest that applies, never SPARSE */
    PL_CONV_ALGO_AUTO = 0, /* the fastest that applies */
    PL_CONV_ALGO_SGEMM,
    PL_CONV_ALGO_IGEMM,    /* output channels as rows, pixels as columns */
    PL_CONV_ALGO_IGEMM_T,  /* the transpose: pixels as rows (small planes) */
    PL_CONV_ALGO_DEPTHWISE,
    PL_CONV_ALGO_WINOGRAD,
    PL_CONV_ALGO_SPARSE,   /* pruned weights: sparse x implicit-GEMM input (kernels/sparse) */
    PL_CONV_ALGO_COUNT
} pl_conv_algo;

/* Name of an algorithm ("sgemm", "igemm", ...). Static. */
const char *pl_conv_algo_name(pl_conv_algo a);

/* Whether `algo` (AUTO: some algorithm) can run geometry p. False for 3-D and higher,
 * empty tensors, and sizes beyond the fast path's limits (the caller then uses the
 * reference kernel). */
bool pl_conv_fast_supported(const pl_conv_params *p, pl_conv_algo algo);

/* Plans p: packs w [M, C/group, kernel...] and copies bias [M] (may be NULL); the
 * result runs with up to `nthreads` threads (pl_threadpool_size of the pool it will be
 * given; more are not used). PL_ERR_UNSUPPORTED when !pl_conv_fast_supported(p, algo);
 * PL_ERR_NOMEM. Free with pl_conv_fast_destroy. */
pl_status pl_conv_fast_create(const pl_conv_params *p, const float *w, const float *bias,
                              const pl_conv_act *act, pl_conv_algo algo, int nthreads,
                              pl_conv_fast **out);

/* The algorithm a plan uses, and the scratch bytes its runs want. */
pl_conv_algo pl_conv_fast_algo(const pl_conv_fast *f);
size_t pl_conv_fast_scratch_size(const pl_conv_fast *f);

/* Output pixels of one kernel call of a SPARSE plan (its column tile), 0 for others. */
int64_t pl_conv_fast_sparse_call_px(const pl_conv_fast *f);

/* The plan's bias and activation as an sgemm / sparse epilogue (row_bias = the plan's
 * copy of the bias, valid while the plan lives; no residual); false when the activation
 * cannot be fused into one (the plan applies it in a separate pass). */
bool pl_conv_fast_act_epilogue(const pl_conv_fast *f, pl_sgemm_epilogue *e);

/* y = act(conv(x) + bias + res) for the planned geometry; res (like y) may be NULL.
 * scratch: at least pl_conv_fast_scratch_size bytes, 64-byte aligned; when NULL or
 * smaller, the run allocates its own. pool may be NULL (serial). */
pl_status pl_conv_fast_run(const pl_conv_fast *f, const float *x, const float *res, float *y,
                           void *scratch, size_t scratch_size, pl_threadpool *pool);

void pl_conv_fast_destroy(pl_conv_fast *f);

#endif
