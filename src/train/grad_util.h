/* grad_util.h -- small helpers shared by the backward kernels (grad_*.c): type checks
 * and a strided walk over a broadcast shape with dimension coalescing. */
#ifndef PL_TRAIN_GRAD_UTIL_H
#define PL_TRAIN_GRAD_UTIL_H

#include <string.h>

#include "train/train.h"

/* Training computes in float32: input i (and the first output) must be float32. */
static inline pl_status gu_need_f32(const tr_ctx *c, int i) {
    const pl_tensor *t = c->op.in[i];
    if (t && t->dtype != PL_F32)
        return pl_op_error(&c->op, PL_ERR_UNSUPPORTED, "training supports float32; input %d is %s",
                           i, pl_dtype_name(t->dtype));
    return PL_OK;
}

static inline float *gu_f(const pl_tensor *t) {
    return t ? (float *)t->data : NULL;
}

/* Adds src[0..n) into dst. */
static inline void gu_add(float *restrict dst, const float *restrict src, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] += src[i];
}

/* A walk over an output shape with up to 3 operands' element strides (0 on broadcast
 * axes). Dimensions of size 1 are dropped and adjacent dimensions that are contiguous
 * for every operand are merged, so the innermost loop is as long as possible. */
typedef struct gu_walk {
    int nd;
    int nops;
    int64_t dims[PL_MAX_DIMS];
    int64_t st[3][PL_MAX_DIMS];
} gu_walk;

/* Operands given by their element strides st[k] over the output shape. */
static inline void gu_walk_init_st(gu_walk *w, int ndim, const int64_t *dims, int nops,
                                   const int64_t (*st)[PL_MAX_DIMS]) {
    w->nops = nops;
    w->nd = 0;
    for (int d = 0; d < ndim; d++) {
        if (dims[d] == 1) continue;
        if (w->nd > 0) {
            int p = w->nd - 1;
            bool merge = true;
            for (int k = 0; k < nops; k++)
                if (w->st[k][p] != st[k][d] * dims[d]) merge = false;
            if (merge) {
                w->dims[p] *= dims[d];
                for (int k = 0; k < nops; k++) w->st[k][p] = st[k][d];
                continue;
            }
        }
        w->dims[w->nd] = dims[d];
        for (int k = 0; k < nops; k++) w->st[k][w->nd] = st[k][d];
        w->nd++;
    }
    if (w->nd == 0) {
        w->nd = 1;
        w->dims[0] = 1;
        for (int k = 0; k < nops; k++) w->st[k][0] = 0;
    }
}

/* ops[k] (NULL: a contiguous operand of the output's shape) with broadcast strides. */
static inline void gu_walk_init(gu_walk *w, int ndim, const int64_t *dims, int nops,
                                const pl_tensor *const *ops) {
    int64_t st[3][PL_MAX_DIMS];
    for (int k = 0; k < nops; k++) {
        if (ops[k])
            pl_broadcast_strides(ops[k], ndim, dims, st[k]);
        else
            pl_strides(ndim, dims, st[k]);
    }
    gu_walk_init_st(w, ndim, dims, nops, (const int64_t(*)[PL_MAX_DIMS])st);
}

/* Runs BODY(i, o0, o1, o2) for every output element i in C order with operand
 * offsets o0..o2; the innermost dimension is a plain loop. */
#define GU_WALK(w, n, BODY)                                                                        \
    do {                                                                                           \
        const gu_walk *gw_ = (w);                                                                  \
        const int nd_ = gw_->nd;                                                                   \
        const int64_t inner_ = gw_->dims[nd_ - 1];                                                 \
        const int64_t s0_ = gw_->st[0][nd_ - 1];                                                   \
        const int64_t s1_ = gw_->nops > 1 ? gw_->st[1][nd_ - 1] : 0;                               \
        const int64_t s2_ = gw_->nops > 2 ? gw_->st[2][nd_ - 1] : 0;                               \
        int64_t idx_[PL_MAX_DIMS] = {0};                                                           \
        int64_t b0_ = 0, b1_ = 0, b2_ = 0;                                                         \
        for (int64_t base_ = 0; base_ < (n); base_ += inner_) {                                    \
            for (int64_t j_ = 0; j_ < inner_; j_++) {                                              \
                const int64_t i = base_ + j_, o0 = b0_ + j_ * s0_, o1 = b1_ + j_ * s1_,            \
                              o2 = b2_ + j_ * s2_;                                                 \
                (void)i;                                                                           \
                (void)o0;                                                                          \
                (void)o1;                                                                          \
                (void)o2;                                                                          \
                BODY;                                                                              \
            }                                                                                      \
            for (int d_ = nd_ - 2; d_ >= 0; d_--) {                                                \
                idx_[d_]++;                                                                        \
                b0_ += gw_->st[0][d_];                                                             \
                if (gw_->nops > 1) b1_ += gw_->st[1][d_];                                          \
                if (gw_->nops > 2) b2_ += gw_->st[2][d_];                                          \
                if (idx_[d_] < gw_->dims[d_]) break;                                               \
                b0_ -= gw_->st[0][d_] * gw_->dims[d_];                                             \
                if (gw_->nops > 1) b1_ -= gw_->st[1][d_] * gw_->dims[d_];                          \
                if (gw_->nops > 2) b2_ -= gw_->st[2][d_] * gw_->dims[d_];                          \
                idx_[d_] = 0;                                                                      \
            }                                                                                      \
        }                                                                                          \
    } while (0)

#endif
