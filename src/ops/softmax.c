/* softmax.c -- Softmax, LogSoftmax and Hardmax.
 *
 * Opset < 13 coerces the input to 2-D at `axis` (default 1) and normalises each row of
 * prod(dims[axis:]) elements; opset >= 13 normalises along the single axis `axis`
 * (default -1). Both views are [outer][n][inner] for the kernels. float32 along the
 * last axis (inner == 1, the attention case) runs on the vectorised row kernel, rows
 * shared out over the session's threads. */
#include <stdlib.h>
#include <string.h>

#include "core/threadpool.h"
#include "kernels/softmax/softmax.h"
#include "ops/linalg_util.h"

typedef struct sm_view {
    int64_t outer, n, inner;
} sm_view;

static pl_status sm_view_of(const pl_op_ctx *c, sm_view *v) {
    const pl_tensor *x = c->in[0];
    bool legacy = c->opset < 13;
    int64_t axis = pl_attr_int(c->node, "axis", legacy ? 1 : -1);
    int r = x->ndim, ax;
    if (legacy && r == 0 && (axis == 0 || axis == -1 || axis == 1)) {
        v->outer = v->n = v->inner = 1;
        return PL_OK;
    }
    /* Legacy opsets allow axis == rank (every row has one element). */
    if (legacy && axis == r) {
        ax = r;
    } else {
        PL_TRY(pl_op_axis(c, axis, r, &ax));
    }
    v->outer = linalg_prod(x->dims, 0, ax);
    if (legacy) {
        v->n = linalg_prod(x->dims, ax, r);
        v->inner = 1;
    } else {
        v->n = x->dims[ax];
        v->inner = linalg_prod(x->dims, ax + 1, r);
    }
    if (v->outer < 0 || v->n < 0 || v->inner < 0)
        return pl_op_error(c, PL_ERR_MODEL, "input shape overflows");
    return PL_OK;
}

pl_status softmax_infer(pl_op_ctx *c) {
    PL_TRY(pl_op_check_arity(c, 1, 1));
    PL_TRY(pl_op_check_float(c, 0));
    PL_TRY(linalg_shapes_known(c));
    sm_view v;
    PL_TRY(sm_view_of(c, &v));
    pl_op_same_as(c, 0, 0);
    return PL_OK;
}

typedef struct sm_job {
    const float *x;
    float *y;
    int64_t rows, n, chunk;
    bool log_mode;
} sm_job;

static void sm_task(void *ctx, int t, int thread) {
    (void)thread;
    const sm_job *j = ctx;
    int64_t r0 = (int64_t)t * j->chunk, r1 = r0 + j->chunk < j->rows ? r0 + j->chunk : j->rows;
    pl_softmax_rows_f32(j->x + r0 * j->n, j->y + r0 * j->n, r1 - r0, j->n, j->log_mode);
}

pl_status softmax_run(pl_op_ctx *c) {
    sm_view v;
    PL_TRY(sm_view_of(c, &v));
    const pl_tensor *x = c->in[0];
    pl_tensor *y = c->out[0];
    int64_t n = pl_numel(x);
    if (n == 0) return PL_OK;
    bool logmode = strcmp(c->node->op_type, "LogSoftmax") == 0;
    if (x->dtype == PL_F32 && v.inner == 1 && v.n > 0) {
        /* about 16K elements per task: enough work to beat the hand-out cost */
        int64_t chunk = 16384 / v.n > 1 ? 16384 / v.n : 1;
        if ((v.outer + chunk - 1) / chunk > INT32_MAX) chunk = v.outer / INT32_MAX + 1;
        sm_job j = {x->data, y->data, v.outer, v.n, chunk, logmode};
        pl_threadpool_run(c->pool, sm_task, &j, (int)((v.outer + chunk - 1) / chunk));
        return PL_OK;
    }
    if (x->dtype == PL_F32) {
        (logmode ? pl_ref_log_softmax_f32 : pl_ref_softmax_f32)(x->data, y->data, v.outer, v.n,
                                                                v.inner);
        return PL_OK;
    }
    if (x->dtype == PL_F64) {
        (logmode ? pl_ref_log_softmax_f64 : pl_ref_softmax_f64)(x->data, y->data, v.outer, v.n,
                                                                v.inner);
        return PL_OK;
    }
    float *buf = NULL;
    PL_TRY(linalg_load_f32(c, x, &buf));
    (logmode ? pl_ref_log_softmax_f32 : pl_ref_softmax_f32)(buf, buf, v.outer, v.n, v.inner);
    linalg_store_f32(y, buf, n);
    free(buf);
    return PL_OK;
}

/* Hardmax: 1 at the first maximum along the axis, 0 elsewhere (outputs start zeroed). */
pl_status hardmax_run(pl_op_ctx *c) {
    sm_view v;
    PL_TRY(sm_view_of(c, &v));
    const pl_tensor *x = c->in[0];
    pl_tensor *y = c->out[0];
    if (pl_numel(x) == 0 || v.n == 0) return PL_OK;
    for (int64_t o = 0; o < v.outer; o++)
        for (int64_t i = 0; i < v.inner; i++) {
            int64_t base = o * v.n * v.inner + i, best = 0;
            double mx = pl_get_f64(x, base);
            for (int64_t k = 1; k < v.n; k++) {
                double e = pl_get_f64(x, base + k * v.inner);
                if (e > mx) {
                    mx = e;
                    best = k;
                }
            }
            pl_set_f64(y, base + best * v.inner, 1.0);
        }
    return PL_OK;
}
