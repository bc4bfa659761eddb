/* nms.c -- NonMaxSuppression (opsets 10 and 11): per batch and class, greedily keep the
 * highest-scoring boxes, dropping every box whose IoU with an already kept one is above
 * iou_threshold. Output: int64 [num_selected, 3] rows of (batch, class, box), by batch,
 * then class, then selection order.
 *
 * Optional inputs: max_output_boxes_per_class (default 0: select nothing),
 * iou_threshold (default 0), score_threshold (absent: no filter; boxes scoring below it
 * are dropped, as the spec words it). Equal scores keep the lower box index first; NaN
 * scores are never selected. The output size depends on the values, so infer runs the
 * whole selection. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/reduce/reduce.h"
#include "ops/op.h"

typedef struct nms_params {
    int64_t batches, classes, nbox;
    int64_t max_out;
    double iou_thr;
    bool has_score_thr;
    double score_thr;
} nms_params;

static pl_status nms_known(const pl_op_ctx *c, int i) {
    const pl_tensor *t = c->in[i];
    if (t->ndim < 0 || !t->data) {
        if (c->planning) return PL_NEED_VALUE;
        return pl_op_error(c, PL_ERR_INTERNAL, "input %d value is not known", i);
    }
    if (t->ndim > PL_MAX_DIMS || pl_numel(t) < 0)
        return pl_op_error(c, PL_ERR_MODEL, "input %d has an invalid shape", i);
    return PL_OK;
}

static pl_status nms_setup(const pl_op_ctx *c, nms_params *p) {
    PL_TRY(pl_op_check_arity(c, 2, 5));
    PL_TRY(pl_op_check_float(c, 0));
    PL_TRY(pl_op_check_float(c, 1));
    for (int i = 0; i < 5; i++)
        if (pl_has_in(c, i)) PL_TRY(nms_known(c, i));
    const pl_tensor *b = c->in[0], *s = c->in[1];
    char s1[128], s2[128];
    if (b->ndim != 3 || b->dims[2] != 4)
        return pl_op_error(c, PL_ERR_INPUT, "boxes have shape %s, expected [batches, boxes, 4]",
                           pl_shape_str(b, s1, sizeof s1));
    if (s->ndim != 3 || s->dims[0] != b->dims[0] || s->dims[2] != b->dims[1])
        return pl_op_error(c, PL_ERR_INPUT,
                           "scores have shape %s, expected [batches, classes, boxes] for boxes %s",
                           pl_shape_str(s, s1, sizeof s1), pl_shape_str(b, s2, sizeof s2));
    int64_t cpb = pl_attr_int(c->node, "center_point_box", 0);
    if (cpb != 0 && cpb != 1)
        return pl_op_error(c, PL_ERR_MODEL, "attribute 'center_point_box' = %lld, expected 0 or 1",
                           (long long)cpb);
    p->batches = b->dims[0];
    p->nbox = b->dims[1];
    p->classes = s->dims[1];
    p->max_out = 0;
    p->iou_thr = 0;
    p->has_score_thr = false;
    p->score_thr = 0;
    if (pl_has_in(c, 2)) {
        const pl_tensor *t = c->in[2];
        if (t->dtype != PL_I64 && t->dtype != PL_I32)
            return pl_op_error(c, PL_ERR_MODEL, "max_output_boxes_per_class must be int64, not %s",
                               pl_dtype_name(t->dtype));
        if (pl_numel(t) > 1)
            return pl_op_error(c, PL_ERR_MODEL, "max_output_boxes_per_class must be a scalar");
        if (pl_numel(t) == 1) p->max_out = pl_get_i64(t, 0);
    }
    for (int i = 3; i <= 4; i++) {
        if (!pl_has_in(c, i)) continue;
        const pl_tensor *t = c->in[i];
        if (!pl_dtype_is_float(t->dtype))
            return pl_op_error(c, PL_ERR_MODEL, "input %d must be float, not %s", i,
                               pl_dtype_name(t->dtype));
        if (pl_numel(t) > 1) return pl_op_error(c, PL_ERR_MODEL, "input %d must be a scalar", i);
        if (pl_numel(t) == 0) continue;
        if (i == 3) p->iou_thr = pl_get_f64(t, 0);
        else p->has_score_thr = true, p->score_thr = pl_get_f64(t, 0);
    }
    if (p->max_out < 0) p->max_out = 0;
    if (p->max_out > p->nbox) p->max_out = p->nbox;
    return PL_OK;
}

typedef struct nms_sort_ctx {
    const double *score;
} nms_sort_ctx;

static bool nms_less(const void *ctx, int64_t a, int64_t b) {
    const double *s = ((const nms_sort_ctx *)ctx)->score;
    return s[a] > s[b] || (s[a] == s[b] && a < b);
}

/* IoU of boxes given as (ymin, xmin, ymax, xmax). */
static double nms_iou(const double *a, const double *b) {
    double h = fmin(a[2], b[2]) - fmax(a[0], b[0]);
    double w = fmin(a[3], b[3]) - fmax(a[1], b[1]);
    if (!(h > 0) || !(w > 0)) return 0;
    double inter = h * w;
    double uni = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    return uni > 0 ? inter / uni : 0;
}

/* Runs the selection; *count gets the number of rows, the first `cap` of which are
 * written to out (3 values per row). */
static pl_status nms_compute(const pl_op_ctx *c, const nms_params *p, int64_t *count,
                             int64_t *out, int64_t cap) {
    *count = 0;
    int64_t nb = p->nbox;
    if (p->max_out == 0 || nb == 0 || p->batches == 0 || p->classes == 0) return PL_OK;
    const pl_tensor *bt = c->in[0], *st = c->in[1];
    bool center = pl_attr_int(c->node, "center_point_box", 0) == 1;
    double *box = malloc((size_t)nb * 4 * sizeof *box);
    double *score = malloc((size_t)nb * sizeof *score);
    int64_t *cand = malloc((size_t)nb * sizeof *cand);
    int64_t *tmp = malloc((size_t)nb * sizeof *tmp);
    int64_t *sel = malloc((size_t)nb * sizeof *sel);
    if (!box || !score || !cand || !tmp || !sel) {
        free(box), free(score), free(cand), free(tmp), free(sel);
        return pl_op_error(c, PL_ERR_NOMEM, "out of memory");
    }
    nms_sort_ctx ctx = {score};
    int64_t rows = 0;
    for (int64_t b = 0; b < p->batches; b++) {
        for (int64_t i = 0; i < nb; i++) {
            double v[4];
            for (int k = 0; k < 4; k++) v[k] = pl_get_f64(bt, (b * nb + i) * 4 + k);
            double *q = box + i * 4;
            if (center) { /* x_center, y_center, width, height */
                double y0 = v[1] - v[3] / 2, y1 = v[1] + v[3] / 2;
                double x0 = v[0] - v[2] / 2, x1 = v[0] + v[2] / 2;
                q[0] = fmin(y0, y1), q[1] = fmin(x0, x1), q[2] = fmax(y0, y1), q[3] = fmax(x0, x1);
            } else { /* any two opposite corners y1, x1, y2, x2 */
                q[0] = fmin(v[0], v[2]), q[1] = fmin(v[1], v[3]);
                q[2] = fmax(v[0], v[2]), q[3] = fmax(v[1], v[3]);
            }
        }
        for (int64_t cl = 0; cl < p->classes; cl++) {
            int64_t nc = 0;
            for (int64_t i = 0; i < nb; i++) {
                double s = pl_get_f64(st, (b * p->classes + cl) * nb + i);
                score[i] = s;
                if (s != s || (p->has_score_thr && s < p->score_thr)) continue;
                cand[nc++] = i;
            }
            pl_sort_indices(cand, nc, nms_less, &ctx, tmp);
            int64_t ns = 0;
            for (int64_t j = 0; j < nc && ns < p->max_out; j++) {
                const double *q = box + cand[j] * 4;
                bool keep = true;
                for (int64_t t = 0; t < ns && keep; t++)
                    if (nms_iou(q, box + sel[t] * 4) > p->iou_thr) keep = false;
                if (keep) sel[ns++] = cand[j];
            }
            for (int64_t t = 0; t < ns; t++, rows++)
                if (rows < cap) {
                    out[rows * 3] = b;
                    out[rows * 3 + 1] = cl;
                    out[rows * 3 + 2] = sel[t];
                }
        }
    }
    free(box), free(score), free(cand), free(tmp), free(sel);
    *count = rows;
    return PL_OK;
}

pl_status nms_infer(pl_op_ctx *c) {
    nms_params p;
    PL_TRY(nms_setup(c, &p));
    int64_t n;
    PL_TRY(nms_compute(c, &p, &n, NULL, 0));
    int64_t dims[2] = {n, 3};
    pl_op_set_out(c, 0, PL_I64, 2, dims);
    return PL_OK;
}

pl_status nms_run(pl_op_ctx *c) {
    nms_params p;
    PL_TRY(nms_setup(c, &p));
    pl_tensor *y = c->out[0];
    if (!y) return PL_OK;
    if (y->ndim != 2 || y->dims[1] != 3)
        return pl_op_error(c, PL_ERR_INTERNAL, "output is not [n, 3]");
    int64_t n;
    PL_TRY(nms_compute(c, &p, &n, y->data, y->dims[0]));
    if (n != y->dims[0])
        return pl_op_error(c, PL_ERR_INTERNAL, "output has %lld rows for %lld selected boxes",
                           (long long)y->dims[0], (long long)n);
    return PL_OK;
}
