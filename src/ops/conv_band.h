/* conv_band.h -- what the column executor (src/exec/columns.c) reads of a float Conv
 * step: its geometry, fused epilogue and constant weights, to plan the same
 * convolution over a band of rows (pl_conv_fast with N = 1). */
#ifndef PL_OPS_CONV_BAND_H
#define PL_OPS_CONV_BAND_H

#include "kernels/conv/conv.h"
#include "kernels/conv/conv_fast.h"
#include "ops/op.h"

typedef struct pl_conv_band_info {
    pl_conv_params p;   /* the whole layer's geometry (2-D, float32) */
    pl_conv_act act;    /* fused activation */
    int residual;       /* input index of the fused residual, or -1 */
    const float *w;     /* constant weights [M, C/group, KH, KW]; NULL once released */
    const float *bias;  /* constant bias [M] or NULL (also once released) */
    pl_conv_algo algo;  /* the algorithm of the layer's own plan */
    bool act_direct;    /* its activation fuses into a sparse/sgemm epilogue: */
    pl_sgemm_epilogue epi; /* that epilogue's activation (no bias, residual) */
    int64_t call_px;    /* output pixels of one kernel call of a SPARSE layer plan (its
                         * column tile), 0 for other algorithms */
} pl_conv_band_info;

/* True when node n (a Conv step with inputs `in`, prepared state `state`) is a float32
 * 2-D convolution whose prepare() made a fast plan from constant weights: then *info
 * describes it. False for everything else (it then runs layer by layer). */
bool pl_conv_band_info_of(const pl_node *n, pl_tensor **in, const void *state,
                          pl_conv_band_info *info);

/* The algorithm request for a float Conv plan of geometry p: AUTO, or what
 * PILLAR_SPARSE forces ("0": never SPARSE; "1": SPARSE wherever it applies, except
 * depthwise layers). Layer and band plans both ask through this. */
pl_conv_algo pl_conv_algo_request(const pl_conv_params *p);

#endif
