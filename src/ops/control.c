/* control.c -- If, Loop and Scan: ops whose work is running a subgraph. Their output
 * shapes are known only after running, so they allocate their own outputs
 * (PL_OP_SELF_ALLOC) and their infer() always defers to run time. */
#include <stdlib.h>
#include <string.h>

#include "ops/op.h"

static const pl_graph *graph_attr(const pl_op_ctx *c, const char *name) {
    const pl_attr *a = pl_attr_find(c->node, name);
    return a && a->type == PL_ATTR_GRAPH ? a->g : NULL;
}

pl_status control_infer(pl_op_ctx *c) {
    const char *op = c->node->op_type;
    if (!strcmp(op, "If")) {
        PL_TRY(pl_op_check_arity(c, 1, 1));
        if (!graph_attr(c, "then_branch") || !graph_attr(c, "else_branch"))
            return pl_op_error(c, PL_ERR_MODEL, "needs graph attributes then_branch and else_branch");
    } else {
        if (!graph_attr(c, "body")) return pl_op_error(c, PL_ERR_MODEL, "needs a graph attribute 'body'");
        if (!strcmp(op, "Scan") && c->opset < 9)
            return pl_op_error(c, PL_ERR_UNSUPPORTED, "Scan before opset 9 (with sequence_lens) is not supported");
    }
    return PL_NEED_VALUE;
}

static void release(pl_tensor *t, int n) {
    for (int i = 0; i < n; i++) pl_tensor_free_data(&t[i]);
    free(t);
}

/* Moves the buffer of `src` into output tensor `dst`. */
static void take(pl_tensor *dst, pl_tensor *src) {
    pl_tensor_free_data(dst);
    *dst = *src;
    memset(src, 0, sizeof *src);
}

static pl_status if_run(pl_op_ctx *c) {
    if (!c->in[0]->data || pl_numel(c->in[0]) != 1)
        return pl_op_error(c, PL_ERR_INPUT, "condition must hold exactly one value");
    bool cond = pl_get_f64(c->in[0], 0) != 0;
    pl_graph *g = (pl_graph *)graph_attr(c, cond ? "then_branch" : "else_branch");
    if (g->noutputs != c->nout)
        return pl_op_error(c, PL_ERR_MODEL, "branch has %d outputs, the node %d", g->noutputs, c->nout);
    pl_tensor *res = calloc((size_t)c->nout + 1, sizeof *res);
    if (!res) return pl_error(PL_ERR_NOMEM, "out of memory");
    pl_status st = c->subgraph(c, g, 0, NULL, c->nout, res);
    for (int k = 0; st == PL_OK && k < c->nout; k++)
        if (c->out[k]) take(c->out[k], &res[k]);
    release(res, c->nout);
    return st;
}

/* Stacks `n` equally shaped tensors along a new axis 0. */
static pl_status stack(const pl_op_ctx *c, pl_tensor *dst, pl_tensor *parts, int n) {
    if (n == 0) {
        int64_t zero = 0;
        pl_tensor_set_shape(dst, PL_F32, 1, &zero);
        return pl_tensor_alloc(dst);
    }
    int64_t dims[PL_MAX_DIMS];
    if (parts[0].ndim + 1 > PL_MAX_DIMS) return pl_op_error(c, PL_ERR_UNSUPPORTED, "scan output rank too large");
    dims[0] = n;
    memcpy(dims + 1, parts[0].dims, (size_t)parts[0].ndim * sizeof(int64_t));
    pl_tensor_free_data(dst);
    pl_tensor_set_shape(dst, parts[0].dtype, parts[0].ndim + 1, dims);
    PL_TRY(pl_tensor_alloc(dst));
    size_t bytes = pl_nbytes(&parts[0]);
    for (int i = 0; i < n; i++) {
        if (!pl_tensor_same_shape(&parts[i], &parts[0]) || parts[i].dtype != parts[0].dtype)
            return pl_op_error(c, PL_ERR_UNSUPPORTED, "scan outputs of different shapes across iterations");
        if (bytes) memcpy((char *)dst->data + (size_t)i * bytes, parts[i].data, bytes);
    }
    return PL_OK;
}

static pl_status loop_run(pl_op_ctx *c) {
    pl_graph *g = (pl_graph *)graph_attr(c, "body");
    int ncarried = c->nin - 2;
    if (ncarried < 0) return pl_op_error(c, PL_ERR_MODEL, "needs inputs M and cond (either may be empty)");
    int nscan = c->nout - ncarried;
    if (nscan < 0 || g->ninputs != ncarried + 2 || g->noutputs != ncarried + 1 + nscan)
        return pl_op_error(c, PL_ERR_MODEL, "body signature does not match the node's %d loop-carried values", ncarried);
    int64_t max_trip = INT64_MAX;
    bool cond = true;
    if (pl_has_in(c, 0)) {
        if (pl_numel(c->in[0]) != 1) return pl_op_error(c, PL_ERR_INPUT, "M must hold one value");
        max_trip = pl_get_i64(c->in[0], 0);
    }
    if (pl_has_in(c, 1)) {
        if (pl_numel(c->in[1]) != 1) return pl_op_error(c, PL_ERR_INPUT, "cond must hold one value");
        cond = pl_get_f64(c->in[1], 0) != 0;
    }
    if (!pl_has_in(c, 0) && !pl_has_in(c, 1))
        return pl_op_error(c, PL_ERR_UNSUPPORTED, "a loop with neither M nor cond never ends");
    pl_status st = PL_OK;
    int nres = g->noutputs;
    pl_tensor *state = calloc((size_t)ncarried + 1, sizeof *state), *res = NULL;
    pl_tensor **scans = calloc((size_t)nscan + 1, sizeof *scans);
    const pl_tensor **args = calloc((size_t)g->ninputs + 1, sizeof *args);
    int niter = 0, cap = 0;
    pl_tensor iter = {0}, cond_t = {0};
    if (!state || !scans || !args) {
        st = pl_error(PL_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int k = 0; k < ncarried && st == PL_OK; k++) {
        if (!c->in[k + 2]) {
            st = pl_op_error(c, PL_ERR_UNSUPPORTED, "optional loop-carried values are not supported");
            break;
        }
        st = pl_tensor_copy(&state[k], c->in[k + 2]);
    }
    pl_tensor_set_shape(&iter, PL_I64, 0, NULL);
    pl_tensor_set_shape(&cond_t, PL_BOOL, 0, NULL);
    if (st == PL_OK) st = pl_tensor_alloc(&iter);
    if (st == PL_OK) st = pl_tensor_alloc(&cond_t);
    for (int64_t i = 0; st == PL_OK && i < max_trip && cond; i++) {
        ((int64_t *)iter.data)[0] = i;
        ((uint8_t *)cond_t.data)[0] = cond;
        args[0] = &iter;
        args[1] = &cond_t;
        for (int k = 0; k < ncarried; k++) args[k + 2] = &state[k];
        res = calloc((size_t)nres, sizeof *res);
        if (!res) {
            st = pl_error(PL_ERR_NOMEM, "out of memory");
            break;
        }
        st = c->subgraph(c, g, g->ninputs, args, nres, res);
        if (st != PL_OK) break;
        if (pl_numel(&res[0]) != 1) {
            st = pl_op_error(c, PL_ERR_MODEL, "body condition output must hold one value");
            break;
        }
        cond = pl_get_f64(&res[0], 0) != 0;
        for (int k = 0; k < ncarried; k++) take(&state[k], &res[k + 1]);
        if (niter == cap) {
            cap = cap ? cap * 2 : 16;
            for (int k = 0; k < nscan && st == PL_OK; k++) {
                pl_tensor *p = realloc(scans[k], (size_t)cap * sizeof(pl_tensor));
                if (!p) st = pl_error(PL_ERR_NOMEM, "out of memory");
                else scans[k] = p;
            }
            if (st != PL_OK) break;
        }
        for (int k = 0; k < nscan; k++) {
            scans[k][niter] = res[1 + ncarried + k];
            memset(&res[1 + ncarried + k], 0, sizeof(pl_tensor));
        }
        niter++;
        release(res, nres);
        res = NULL;
    }
    for (int k = 0; st == PL_OK && k < ncarried; k++)
        if (c->out[k]) take(c->out[k], &state[k]);
    for (int k = 0; st == PL_OK && k < nscan; k++)
        if (c->out[ncarried + k]) st = stack(c, c->out[ncarried + k], scans[k], niter);
done:
    if (res) release(res, nres);
    for (int k = 0; k < nscan && scans; k++) {
        for (int i = 0; i < niter && scans[k]; i++) pl_tensor_free_data(&scans[k][i]);
        free(scans[k]);
    }
    free(scans);
    if (state) release(state, ncarried);
    pl_tensor_free_data(&iter);
    pl_tensor_free_data(&cond_t);
    free(args);
    return st;
}

/* Copies slice `i` along `axis` of `src` into `dst` (rank - 1). */
static pl_status slice_axis(pl_tensor *dst, const pl_tensor *src, int axis, int64_t i) {
    int64_t dims[PL_MAX_DIMS];
    int r = 0;
    for (int d = 0; d < src->ndim; d++)
        if (d != axis) dims[r++] = src->dims[d];
    pl_tensor_free_data(dst);
    pl_tensor_set_shape(dst, src->dtype, r, dims);
    PL_TRY(pl_tensor_alloc(dst));
    size_t es = pl_dtype_size(src->dtype);
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis; d++) outer *= src->dims[d];
    for (int d = axis + 1; d < src->ndim; d++) inner *= src->dims[d];
    for (int64_t o = 0; o < outer; o++)
        memcpy((char *)dst->data + (size_t)(o * inner) * es,
               (const char *)src->data + (size_t)((o * src->dims[axis] + i) * inner) * es, (size_t)inner * es);
    return PL_OK;
}

/* Writes `part` as slice `i` along `axis` of `dst` (already shaped). */
static void put_axis(pl_tensor *dst, const pl_tensor *part, int axis, int64_t i) {
    size_t es = pl_dtype_size(dst->dtype);
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis; d++) outer *= dst->dims[d];
    for (int d = axis + 1; d < dst->ndim; d++) inner *= dst->dims[d];
    for (int64_t o = 0; o < outer; o++)
        memcpy((char *)dst->data + (size_t)((o * dst->dims[axis] + i) * inner) * es,
               (const char *)part->data + (size_t)(o * inner) * es, (size_t)inner * es);
}

static pl_status scan_run(pl_op_ctx *c) {
    pl_graph *g = (pl_graph *)graph_attr(c, "body");
    int64_t nscan_in = pl_attr_int(c->node, "num_scan_inputs", -1);
    if (nscan_in < 1 || nscan_in > c->nin) return pl_op_error(c, PL_ERR_MODEL, "num_scan_inputs must be between 1 and %d", c->nin);
    int nstate = c->nin - (int)nscan_in, nscan_out = c->nout - nstate;
    if (nscan_out < 0 || g->ninputs != c->nin || g->noutputs != c->nout)
        return pl_op_error(c, PL_ERR_MODEL, "body signature does not match the node");
    size_t na, nd, noa, nod;
    const int64_t *in_axes = pl_attr_ints(c->node, "scan_input_axes", &na);
    const int64_t *in_dirs = pl_attr_ints(c->node, "scan_input_directions", &nd);
    const int64_t *out_axes = pl_attr_ints(c->node, "scan_output_axes", &noa);
    const int64_t *out_dirs = pl_attr_ints(c->node, "scan_output_directions", &nod);
    int64_t len = -1;
    int axes[PL_MAX_DIMS * 8];
    if (nscan_in > (int64_t)(sizeof axes / sizeof axes[0])) return pl_op_error(c, PL_ERR_UNSUPPORTED, "too many scan inputs");
    for (int k = 0; k < nscan_in; k++) {
        const pl_tensor *x = c->in[nstate + k];
        if (!x) return pl_op_error(c, PL_ERR_MODEL, "scan input %d is missing", k);
        PL_TRY(pl_op_axis(c, in_axes && (size_t)k < na ? in_axes[k] : 0, x->ndim, &axes[k]));
        if (len >= 0 && x->dims[axes[k]] != len) return pl_op_error(c, PL_ERR_INPUT, "scan inputs differ in length");
        len = x->dims[axes[k]];
    }
    for (int k = 0; k < nstate; k++)
        if (!c->in[k]) return pl_op_error(c, PL_ERR_MODEL, "state input %d is missing", k);
    pl_status st = PL_OK;
    pl_tensor *state = calloc((size_t)nstate + 1, sizeof *state), *slices = calloc((size_t)nscan_in, sizeof *slices);
    pl_tensor *res = calloc((size_t)c->nout + 1, sizeof *res);
    const pl_tensor **args = calloc((size_t)c->nin + 1, sizeof *args);
    if (!state || !slices || !res || !args) st = pl_error(PL_ERR_NOMEM, "out of memory");
    for (int k = 0; st == PL_OK && k < nstate; k++) st = pl_tensor_copy(&state[k], c->in[k]);
    for (int64_t it = 0; st == PL_OK && it < len; it++) {
        for (int k = 0; st == PL_OK && k < nscan_in; k++) {
            int64_t idx = in_dirs && (size_t)k < nd && in_dirs[k] ? len - 1 - it : it;
            st = slice_axis(&slices[k], c->in[nstate + k], axes[k], idx);
            args[nstate + k] = &slices[k];
        }
        for (int k = 0; k < nstate; k++) args[k] = &state[k];
        if (st == PL_OK) st = c->subgraph(c, g, c->nin, args, c->nout, res);
        for (int k = 0; st == PL_OK && k < nstate; k++) take(&state[k], &res[k]);
        for (int k = 0; st == PL_OK && k < nscan_out; k++) {
            pl_tensor *part = &res[nstate + k], *o = c->out[nstate + k];
            if (!o) continue;
            int oax = 0;
            st = pl_op_axis(c, out_axes && (size_t)k < noa ? out_axes[k] : 0, part->ndim + 1, &oax);
            if (st != PL_OK) break;
            if (it == 0) {
                int64_t dims[PL_MAX_DIMS];
                int r = 0;
                if (part->ndim + 1 > PL_MAX_DIMS) {
                    st = pl_op_error(c, PL_ERR_UNSUPPORTED, "scan output rank too large");
                    break;
                }
                for (int d = 0; d <= part->ndim; d++) dims[d] = d == oax ? len : part->dims[r++];
                pl_tensor_free_data(o);
                pl_tensor_set_shape(o, part->dtype, part->ndim + 1, dims);
                st = pl_tensor_alloc(o);
                if (st != PL_OK) break;
            }
            int64_t pos = out_dirs && (size_t)k < nod && out_dirs[k] ? len - 1 - it : it;
            put_axis(o, part, oax, pos);
        }
        for (int k = 0; k < c->nout; k++) pl_tensor_free_data(&res[k]);
    }
    for (int k = 0; st == PL_OK && k < nstate; k++)
        if (c->out[k]) take(c->out[k], &state[k]);
    if (st == PL_OK && len == 0)
        st = pl_op_error(c, PL_ERR_UNSUPPORTED, "scan over zero iterations");
    if (state) release(state, nstate);
    if (slices) release(slices, (int)nscan_in);
    if (res) release(res, c->nout);
    free(args);
    return st;
}

pl_status control_run(pl_op_ctx *c) {
    const char *op = c->node->op_type;
    if (!strcmp(op, "If")) return if_run(c);
    if (!strcmp(op, "Loop")) return loop_run(c);
    return scan_run(c);
}
