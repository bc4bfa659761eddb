/* optim.c -- parameter updates, fused with the reduction of the replicas' gradients
 * (g = grads[0][i] + grads[1][i] + ..., always in that order, so a run is reproducible
 * at a given thread count). Same formulas as PyTorch's optimizers:
 *   SGD    g += wd w; v = mu v + g (v = g at the first step); w -= lr v (v = g if mu = 0)
 *   Adam   g += wd w; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 *          w -= lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
 *   AdamW  w -= lr wd w; then Adam without the L2 term
 * Pruned weights (mask 0) stay exactly zero and so do their moments. */
#include <math.h>

#include "train/train.h"

int tr_optim_moments(const tr_optim *o) {
    if (o->kind == PILLAR_OPTIMIZER_SGD) return o->momentum != 0.0f ? 1 : 0;
    return 2;
}

static inline float grad_sum(float *const *grads, int nrep, int64_t i) {
    float g = grads[0][i];
    for (int r = 1; r < nrep; r++) g += grads[r][i];
    return g;
}

void tr_optim_update(const tr_optim *o, float *w, float *const *grads, int nrep, float *m, float *v,
                     const uint8_t *mask, int64_t i0, int64_t i1) {
    const float lr = o->lr, wd = o->weight_decay;
    if (o->kind == PILLAR_OPTIMIZER_SGD) {
        const float mu = o->momentum;
        const bool first = o->step == 0;
        if (mu == 0.0f) {
            if (nrep == 1 && wd == 0.0f) {
                const float *g0 = grads[0];
                for (int64_t i = i0; i < i1; i++) w[i] -= lr * g0[i];
            } else {
                for (int64_t i = i0; i < i1; i++) {
                    float g = grad_sum(grads, nrep, i) + wd * w[i];
                    w[i] -= lr * g;
                }
            }
        } else {
            for (int64_t i = i0; i < i1; i++) {
                float g = grad_sum(grads, nrep, i) + wd * w[i];
                float b = first ? g : mu * m[i] + g;
                m[i] = b;
                w[i] -= lr * b;
            }
        }
    } else {
        const float b1 = o->beta1, b2 = o->beta2, eps = o->eps;
        const double t = (double)(o->step + 1);
        const float c1 = (float)(1.0 / (1.0 - pow(b1, t))), c2 = (float)(1.0 / (1.0 - pow(b2, t)));
        const bool adamw = o->kind == PILLAR_OPTIMIZER_ADAMW;
        const float decay = adamw ? 1.0f - lr * wd : 1.0f, l2 = adamw ? 0.0f : wd;
        for (int64_t i = i0; i < i1; i++) {
            float g = grad_sum(grads, nrep, i) + l2 * w[i];
            float mi = b1 * m[i] + (1.0f - b1) * g;
            float vi = b2 * v[i] + (1.0f - b2) * g * g;
            m[i] = mi;
            v[i] = vi;
            w[i] = w[i] * decay - lr * (mi * c1) / (sqrtf(vi * c2) + eps);
        }
    }
    if (mask)
        for (int64_t i = i0; i < i1; i++)
            if (!mask[i]) {
                w[i] = 0.0f;
                if (m) m[i] = 0.0f;
                if (v) v[i] = 0.0f;
            }
}
