/* api.c -- the public tensor, options and metadata calls of pillar.h. */
#include <stdlib.h>
#include <string.h>

#include "exec/session.h"

static pl_status check_shape(pillar_dtype dtype, size_t ndim, const int64_t *dims, const char *fn) {
    if (ndim > PL_MAX_DIMS) return pl_error(PL_ERR_ARGUMENT, "%s: %zu dimensions, at most %d supported", fn, ndim, PL_MAX_DIMS);
    if (ndim && !dims) return pl_error(PL_ERR_ARGUMENT, "%s: dims is NULL", fn);
    if (pillar_dtype_size(dtype) == 0) return pl_error(PL_ERR_ARGUMENT, "%s: unsupported dtype %d", fn, (int)dtype);
    if (pl_dims_numel((int)ndim, dims) < 0) return pl_error(PL_ERR_ARGUMENT, "%s: negative or overflowing shape", fn);
    return PL_OK;
}

pillar_status pillar_tensor_create(pillar_dtype dtype, size_t ndim, const int64_t *dims,
                                   const void *data, pillar_tensor **out) {
    if (!out) return pl_error(PL_ERR_ARGUMENT, "pillar_tensor_create: out is NULL");
    PL_TRY(check_shape(dtype, ndim, dims, "pillar_tensor_create"));
    pl_tensor *t = calloc(1, sizeof *t);
    if (!t) return pl_error(PL_ERR_NOMEM, "out of memory");
    pl_tensor_set_shape(t, dtype, (int)ndim, dims);
    pl_status st = pl_tensor_alloc(t);
    if (st != PL_OK) {
        free(t);
        return st;
    }
    if (data) memcpy(t->data, data, pl_nbytes(t));
    *out = t;
    return PL_OK;
}

pillar_status pillar_tensor_wrap(pillar_dtype dtype, size_t ndim, const int64_t *dims, void *data,
                                 pillar_tensor **out) {
    if (!out) return pl_error(PL_ERR_ARGUMENT, "pillar_tensor_wrap: out is NULL");
    PL_TRY(check_shape(dtype, ndim, dims, "pillar_tensor_wrap"));
    if (!data && pl_dims_numel((int)ndim, dims) > 0) return pl_error(PL_ERR_ARGUMENT, "pillar_tensor_wrap: data is NULL");
    pl_tensor *t = calloc(1, sizeof *t);
    if (!t) return pl_error(PL_ERR_NOMEM, "out of memory");
    pl_tensor_set_shape(t, dtype, (int)ndim, dims);
    t->data = data;
    t->owns = false;
    *out = t;
    return PL_OK;
}

void pillar_tensor_destroy(pillar_tensor *t) {
    if (!t) return;
    pl_tensor_free_data(t);
    free(t);
}

pillar_dtype pillar_tensor_dtype(const pillar_tensor *t) { return t ? t->dtype : PILLAR_UNDEFINED; }
size_t pillar_tensor_ndim(const pillar_tensor *t) { return t && t->ndim > 0 ? (size_t)t->ndim : 0; }
const int64_t *pillar_tensor_dims(const pillar_tensor *t) { return t ? t->dims : NULL; }
int64_t pillar_tensor_numel(const pillar_tensor *t) { return t ? pl_numel(t) : 0; }
void *pillar_tensor_data(const pillar_tensor *t) { return t ? t->data : NULL; }

/* ---- options ---- */

pillar_status pillar_options_create(pillar_options **out) {
    if (!out) return pl_error(PL_ERR_ARGUMENT, "pillar_options_create: out is NULL");
    *out = calloc(1, sizeof(pl_options));
    return *out ? PL_OK : pl_error(PL_ERR_NOMEM, "out of memory");
}

void pillar_options_destroy(pillar_options *o) {
    if (!o) return;
    for (int i = 0; i < o->nshapes; i++) free(o->shapes[i].name);
    for (int i = 0; i < o->ndims; i++) free(o->dims[i].name);
    free(o->shapes);
    free(o->dims);
    free(o);
}

pillar_status pillar_options_set_threads(pillar_options *o, int threads) {
    if (!o) return pl_error(PL_ERR_ARGUMENT, "pillar_options_set_threads: options is NULL");
    if (threads < 0 || threads > 1024) return pl_error(PL_ERR_ARGUMENT, "threads must be between 0 and 1024, not %d", threads);
    o->threads = threads;
    return PL_OK;
}

/* Adds or replaces the entry `name` in a list of shape options. */
static pl_status put_opt(pl_shape_opt **list, int *n, const char *name, int ndim, const int64_t *dims) {
    for (int i = 0; i < *n; i++)
        if (!strcmp((*list)[i].name, name)) {
            (*list)[i].ndim = ndim;
            memcpy((*list)[i].dims, dims, (size_t)ndim * sizeof(int64_t));
            return PL_OK;
        }
    pl_shape_opt *l = realloc(*list, (size_t)(*n + 1) * sizeof *l);
    if (!l) return pl_error(PL_ERR_NOMEM, "out of memory");
    *list = l;
    memset(&l[*n], 0, sizeof l[*n]);
    if (!(l[*n].name = strdup(name))) return pl_error(PL_ERR_NOMEM, "out of memory");
    l[*n].ndim = ndim;
    memcpy(l[*n].dims, dims, (size_t)ndim * sizeof(int64_t));
    (*n)++;
    return PL_OK;
}

pillar_status pillar_options_set_shape(pillar_options *o, const char *input, size_t ndim,
                                       const int64_t *dims) {
    if (!o || !input) return pl_error(PL_ERR_ARGUMENT, "pillar_options_set_shape: NULL argument");
    if (ndim > PL_MAX_DIMS) return pl_error(PL_ERR_ARGUMENT, "shape for '%s': %zu dimensions, at most %d supported", input, ndim, PL_MAX_DIMS);
    if (ndim && !dims) return pl_error(PL_ERR_ARGUMENT, "pillar_options_set_shape: dims is NULL");
    for (size_t i = 0; i < ndim; i++)
        if (dims[i] < 0) return pl_error(PL_ERR_ARGUMENT, "shape for '%s': dimension %zu is negative", input, i);
    if (pl_dims_numel((int)ndim, dims) < 0) return pl_error(PL_ERR_ARGUMENT, "shape for '%s' overflows", input);
    return put_opt(&o->shapes, &o->nshapes, input, (int)ndim, dims);
}

pillar_status pillar_options_set_dim(pillar_options *o, const char *symbol, int64_t value) {
    if (!o || !symbol) return pl_error(PL_ERR_ARGUMENT, "pillar_options_set_dim: NULL argument");
    if (value < 0) return pl_error(PL_ERR_ARGUMENT, "dimension '%s' = %lld is negative", symbol, (long long)value);
    return put_opt(&o->dims, &o->ndims, symbol, 1, &value);
}

pillar_status pillar_options_set_lsh_output(pillar_options *o, int K, int L, int topk) {
    if (!o) return pl_error(PL_ERR_ARGUMENT, "pillar_options_set_lsh_output: options is NULL");
    if (K == 0) {
        o->lsh_k = o->lsh_l = o->lsh_topk = 0;
        return PL_OK;
    }
    if (K < 1 || K > 30) return pl_error(PL_ERR_ARGUMENT, "lsh output: K (bits per key) must be 1..30, not %d", K);
    if (L < 1 || L > 1024) return pl_error(PL_ERR_ARGUMENT, "lsh output: L (tables) must be 1..1024, not %d", L);
    if (topk < 1 || topk > 10000) return pl_error(PL_ERR_ARGUMENT, "lsh output: top-k must be 1..10000, not %d", topk);
    o->lsh_k = K, o->lsh_l = L, o->lsh_topk = topk;
    return PL_OK;
}

pillar_status pillar_options_set_schedule(pillar_options *o, pillar_schedule s) {
    if (!o) return pl_error(PL_ERR_ARGUMENT, "pillar_options_set_schedule: options is NULL");
    if (s != PILLAR_SCHEDULE_AUTO && s != PILLAR_SCHEDULE_LAYERS && s != PILLAR_SCHEDULE_COLUMNS)
        return pl_error(PL_ERR_ARGUMENT, "schedule %d is not one of auto (0), layers (1), columns (2)", (int)s);
    o->schedule = (int)s;
    o->schedule_set = true;
    return PL_OK;
}

/* ---- model and session metadata ---- */

size_t pillar_model_input_count(const pillar_model *m) { return m ? (size_t)m->graph->ninputs : 0; }
size_t pillar_model_output_count(const pillar_model *m) { return m ? (size_t)m->graph->noutputs : 0; }

static pl_status value_info(const pl_graph *g, const int *ids, int n, size_t i, const char **name_out,
                            pillar_dtype *dtype_out, size_t *ndim_out, const int64_t **dims_out) {
    if (!g || i >= (size_t)n) return pl_error(PL_ERR_ARGUMENT, "no input/output %zu", i);
    const pl_value *v = &g->values[ids[i]];
    if (name_out) *name_out = v->name;
    if (dtype_out) *dtype_out = v->t.dtype;
    if (ndim_out) *ndim_out = v->t.ndim > 0 ? (size_t)v->t.ndim : 0;
    if (dims_out) *dims_out = v->t.dims;
    return PL_OK;
}

pillar_status pillar_model_input(const pillar_model *m, size_t i, const char **name_out,
                                 pillar_dtype *dtype_out, size_t *ndim_out, const int64_t **dims_out) {
    if (!m) return pl_error(PL_ERR_ARGUMENT, "pillar_model_input: model is NULL");
    return value_info(m->graph, m->graph->inputs, m->graph->ninputs, i, name_out, dtype_out, ndim_out, dims_out);
}

pillar_status pillar_model_output(const pillar_model *m, size_t i, const char **name_out,
                                  pillar_dtype *dtype_out, size_t *ndim_out, const int64_t **dims_out) {
    if (!m) return pl_error(PL_ERR_ARGUMENT, "pillar_model_output: model is NULL");
    return value_info(m->graph, m->graph->outputs, m->graph->noutputs, i, name_out, dtype_out, ndim_out, dims_out);
}

const char *pillar_model_input_dim_name(const pillar_model *m, size_t i, size_t d) {
    if (!m || i >= (size_t)m->graph->ninputs || d >= PL_MAX_DIMS) return NULL;
    return m->graph->values[m->graph->inputs[i]].dim_names[d];
}

size_t pillar_session_input_count(const pillar_session *s) { return s ? (size_t)s->g->ninputs : 0; }
size_t pillar_session_output_count(const pillar_session *s) { return s ? (size_t)s->g->noutputs : 0; }

pillar_status pillar_session_input(const pillar_session *s, size_t i, const char **name_out,
                                   pillar_dtype *dtype_out, size_t *ndim_out, const int64_t **dims_out) {
    if (!s) return pl_error(PL_ERR_ARGUMENT, "pillar_session_input: session is NULL");
    return value_info(s->g, s->g->inputs, s->g->ninputs, i, name_out, dtype_out, ndim_out, dims_out);
}

pillar_status pillar_session_output(const pillar_session *s, size_t i, const char **name_out,
                                    pillar_dtype *dtype_out, size_t *ndim_out, const int64_t **dims_out) {
    if (!s) return pl_error(PL_ERR_ARGUMENT, "pillar_session_output: session is NULL");
    return value_info(s->g, s->g->outputs, s->g->noutputs, i, name_out, dtype_out, ndim_out, dims_out);
}
