/* loss.c -- the losses a trainer attaches to a model output, forward and gradient in
 * one pass, with the semantics of ONNX's SoftmaxCrossEntropyLoss and
 * NegativeLogLikelihoodLoss (reduction "mean", no ignore_index) and of PyTorch's
 * MSELoss (mean over every element):
 *   softmax cross-entropy  out [N, C, d...] logits, labels [N, d...] int64/int32
 *   nll                    out [N, C, d...] log-probabilities, labels as above
 *   mse                    out [N, ...], float32 targets of the same shape
 * An example's loss is the mean over its label positions (its elements for MSE); the
 * batch loss is the mean over examples. Top-1 hits are counted per label position
 * (MSE: argmax of output vs argmax of target when an example has several values). */
#include <math.h>

#include "train/train.h"

static int64_t inner_of(int ndim, const int64_t *dims) {
    int64_t r = 1;
    for (int d = 2; d < ndim; d++) r *= dims[d];
    return r;
}

int64_t tr_loss_per_example(pillar_loss kind, int out_ndim, const int64_t *out_dims) {
    if (kind == PILLAR_LOSS_MSE) {
        int64_t r = 1;
        for (int d = 1; d < out_ndim; d++) r *= out_dims[d];
        return r;
    }
    return inner_of(out_ndim, out_dims);
}

static int64_t label_at(const pl_tensor *l, int64_t i) {
    return l->dtype == PL_I64 ? ((const int64_t *)l->data)[i]
                              : (int64_t)((const int32_t *)l->data)[i];
}

pl_status tr_loss_check(pillar_loss kind, const pl_tensor *labels, int64_t batch, int out_ndim,
                        const int64_t *out_dims) {
    char s[128];
    if (!labels || labels->ndim < 1 || labels->ndim > PL_MAX_DIMS || pl_numel(labels) < 0 ||
        (pl_numel(labels) > 0 && !labels->data))
        return pl_error(PL_ERR_INPUT, "labels: not a valid tensor");
    if (labels->dims[0] != batch)
        return pl_error(PL_ERR_INPUT, "labels: %lld records for a batch of %lld examples",
                        (long long)labels->dims[0], (long long)batch);
    if (kind == PILLAR_LOSS_MSE) {
        if (labels->dtype != PL_F32)
            return pl_error(PL_ERR_INPUT, "targets must be float32 for the MSE loss, not %s",
                            pl_dtype_name(labels->dtype));
        int64_t per = tr_loss_per_example(kind, out_ndim, out_dims);
        if (pl_numel(labels) != batch * per)
            return pl_error(PL_ERR_INPUT,
                            "targets have shape %s; the output has %lld values per example",
                            pl_shape_str(labels, s, sizeof s), (long long)per);
        return PL_OK;
    }
    if (labels->dtype != PL_I64 && labels->dtype != PL_I32)
        return pl_error(PL_ERR_INPUT, "labels must be int64 (or int32) class indices, not %s",
                        pl_dtype_name(labels->dtype));
    if (out_ndim < 2)
        return pl_error(PL_ERR_INPUT,
                        "the loss output must be [batch, classes, ...], it has %d dims", out_ndim);
    const int64_t inner = inner_of(out_ndim, out_dims), C = out_dims[1];
    bool shape_ok = labels->ndim == out_ndim - 1;
    for (int d = 1; shape_ok && d < labels->ndim; d++)
        shape_ok = labels->dims[d] == out_dims[d + 1];
    if (!shape_ok && !(inner == 1 && pl_numel(labels) == batch))
        return pl_error(PL_ERR_INPUT,
                        "labels have shape %s, expected one class index per example%s",
                        pl_shape_str(labels, s, sizeof s), inner > 1 ? " and position" : "");
    const int64_t n = pl_numel(labels);
    for (int64_t i = 0; i < n; i++) {
        int64_t k = label_at(labels, i);
        if (k < 0 || k >= C)
            return pl_error(PL_ERR_INPUT, "label %lld of record %lld is out of range [0, %lld)",
                            (long long)k, (long long)(i / inner), (long long)C);
    }
    return PL_OK;
}

pl_status tr_loss(pillar_loss kind, const pl_tensor *out, const pl_tensor *labels, int64_t row0,
                  double scale, pl_tensor *grad, double *loss_sum, int64_t *correct) {
    if (out->dtype != PL_F32)
        return pl_error(PL_ERR_UNSUPPORTED, "the loss output is %s; training supports float32",
                        pl_dtype_name(out->dtype));
    const int64_t n = out->ndim > 0 ? out->dims[0] : 1;
    const float *o = out->data;
    float *g = grad ? grad->data : NULL;
    double total = 0;
    int64_t hits = 0;
    if (kind == PILLAR_LOSS_MSE) {
        const int64_t per = tr_loss_per_example(kind, out->ndim, out->dims);
        const float *t = (const float *)labels->data + row0 * per;
        const double gs = 2.0 * scale / (double)(per ? per : 1);
        for (int64_t r = 0; r < n; r++) {
            double s = 0;
            int64_t ao = 0, at = 0;
            for (int64_t j = 0; j < per; j++) {
                const int64_t k = r * per + j;
                const double d = (double)o[k] - t[k];
                s += d * d;
                if (g) g[k] = (float)(gs * d);
                if (o[k] > o[r * per + ao]) ao = j;
                if (t[k] > t[r * per + at]) at = j;
            }
            total += per ? s / (double)per : 0.0;
            if (per > 1 && ao == at) hits++;
        }
        *loss_sum += total;
        *correct += hits;
        return PL_OK;
    }
    const int64_t C = out->dims[1], inner = inner_of(out->ndim, out->dims);
    const double gs = scale / (double)(inner ? inner : 1);
    const bool sce = kind == PILLAR_LOSS_SOFTMAX_CROSS_ENTROPY;
    for (int64_t r = 0; r < n; r++)
        for (int64_t i = 0; i < inner; i++) {
            const float *z = o + r * C * inner + i;
            float *gz = g ? g + r * C * inner + i : NULL;
            const int64_t label = label_at(labels, (row0 + r) * inner + i);
            int64_t best = 0;
            for (int64_t j = 1; j < C; j++)
                if (z[j * inner] > z[best * inner]) best = j;
            if (best == label) hits++;
            if (sce) {
                const double mx = z[best * inner];
                double sum = 0;
                for (int64_t j = 0; j < C; j++) sum += exp((double)z[j * inner] - mx);
                const double lse = mx + log(sum);
                total += (lse - z[label * inner]) / (double)inner;
                if (gz)
                    for (int64_t j = 0; j < C; j++) {
                        double p = exp((double)z[j * inner] - lse);
                        gz[j * inner] = (float)(gs * (p - (j == label ? 1.0 : 0.0)));
                    }
            } else {
                total += -(double)z[label * inner] / (double)inner;
                if (gz) {
                    for (int64_t j = 0; j < C; j++) gz[j * inner] = 0.0f;
                    gz[label * inner] = (float)-gs;
                }
            }
        }
    *loss_sum += total;
    *correct += hits;
    return PL_OK;
}
