/* calibrate.c -- activation ranges for the INT8 quantizer: runs a session of a copy of
 * the graph in which every tensor to measure is a graph output (so no fusion pass can
 * remove it), over the calibration samples. Min-max takes one pass; percentile a second
 * one that fills a histogram over each tensor's min-max range. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exec/session.h"
#include "quant/quant.h"

#define NBINS 4096

typedef struct calib {
    const pl_model *m;
    const pl_quant_options *o;
    int nnames;
    const char *const *names;
    int *input_of;          /* per name: index of the model input it is, or -1 */
    pl_session *s;
    const char **out_names; /* names measured through the session */
    int *out_of;            /* name index of each out_names entry */
    int nout;
    pillar_tensor **outs;
} calib;

static void calib_free(calib *c) {
    pillar_session_destroy(c->s);
    free(c->input_of);
    free(c->out_names);
    free(c->out_of);
    free(c->outs);
}

/* The session over a clone of the graph with the wanted tensors as extra outputs. */
static pl_status calib_open(calib *c) {
    const pl_graph *g0 = c->m->graph;
    c->input_of = malloc((size_t)(c->nnames ? c->nnames : 1) * sizeof(int));
    c->out_names = malloc((size_t)(c->nnames ? c->nnames : 1) * sizeof(char *));
    c->out_of = malloc((size_t)(c->nnames ? c->nnames : 1) * sizeof(int));
    c->outs = calloc((size_t)(c->nnames ? c->nnames : 1), sizeof(pillar_tensor *));
    if (!c->input_of || !c->out_names || !c->out_of || !c->outs)
        return pl_error(PL_ERR_NOMEM, "out of memory in calibration");
    pl_graph *g = pl_graph_clone(g0, NULL);
    if (!g) return pl_error(PL_ERR_NOMEM, "out of memory in calibration");
    int *outs = realloc(g->outputs, (size_t)(g->noutputs + c->nnames + 1) * sizeof(int));
    if (!outs) {
        pl_graph_free(g);
        return pl_error(PL_ERR_NOMEM, "out of memory in calibration");
    }
    g->outputs = outs;
    for (int k = 0; k < c->nnames; k++) {
        c->input_of[k] = -1;
        int v = pl_graph_find_value(g, c->names[k]);
        if (v < 0) {
            pl_graph_free(g);
            return pl_error(PL_ERR_INTERNAL, "calibration: no tensor '%s'", c->names[k]);
        }
        for (int i = 0; i < g->ninputs; i++)
            if (g->inputs[i] == v) c->input_of[k] = i;
        if (c->input_of[k] >= 0) continue;
        if (!g->values[v].is_output) {
            g->values[v].is_output = true;
            g->outputs[g->noutputs++] = v;
        }
        c->out_of[c->nout] = k;
        c->out_names[c->nout++] = c->names[k];
    }
    pl_model tmp = *c->m;
    tmp.graph = g;
    pillar_options opts = {.threads = c->o->threads};
    pl_status st = pillar_session_create(&tmp, &opts, &c->s);
    pl_graph_free(g);
    return st;
}

/* One run over sample `i`; fills c->outs (released by calib_release). */
static pl_status calib_run(calib *c, size_t i, const pl_tensor *const *samples) {
    const pl_graph *g = c->m->graph;
    const char *in_names[PL_MAX_DIMS * 8];
    const pl_tensor *const *in = samples + i * (size_t)g->ninputs;
    if (g->ninputs > (int)(sizeof in_names / sizeof in_names[0]))
        return pl_error(PL_ERR_UNSUPPORTED, "calibration: more than %d model inputs", (int)(sizeof in_names / sizeof in_names[0]));
    for (int k = 0; k < g->ninputs; k++) in_names[k] = g->values[g->inputs[k]].name;
    pl_status st = pillar_session_run(c->s, (size_t)g->ninputs, in_names, in, (size_t)c->nout, c->out_names, c->outs);
    if (st != PL_OK) pl_error_prefix("calibration sample %zu", i + 1);
    return st;
}

static void calib_release(calib *c) {
    for (int k = 0; k < c->nout; k++) {
        pillar_tensor_destroy(c->outs[k]);
        c->outs[k] = NULL;
    }
}

/* The float32 data of name k in the current run (from the outputs or the sample). */
static const pl_tensor *calib_tensor(const calib *c, int k, size_t i, const pl_tensor *const *samples) {
    if (c->input_of[k] >= 0) return samples[i * (size_t)c->m->graph->ninputs + (size_t)c->input_of[k]];
    for (int j = 0; j < c->nout; j++)
        if (c->out_of[j] == k) return c->outs[j];
    return NULL;
}

static pl_status check_f32(const pl_tensor *t, const char *name) {
    if (!t || t->dtype != PL_F32)
        return pl_error(PL_ERR_INPUT, "calibration: tensor '%s' is %s, expected float32", name,
                        t ? pl_dtype_name(t->dtype) : "missing");
    return PL_OK;
}

pl_status pl_quant_calibrate(const pl_model *m, const pl_quant_options *o, int nnames, const char *const *names,
                             size_t n_samples, const pl_tensor *const *samples, float *lo, float *hi) {
    calib c = {.m = m, .o = o, .nnames = nnames, .names = names};
    pl_status st = calib_open(&c);
    for (int k = 0; k < nnames; k++) {
        lo[k] = INFINITY;
        hi[k] = -INFINITY;
    }
    for (size_t i = 0; st == PL_OK && i < n_samples; i++) {
        st = calib_run(&c, i, samples);
        for (int k = 0; st == PL_OK && k < nnames; k++) {
            const pl_tensor *t = calib_tensor(&c, k, i, samples);
            if ((st = check_f32(t, names[k])) != PL_OK) break;
            const float *x = t->data;
            int64_t n = pl_numel(t);
            float a = lo[k], b = hi[k];
            for (int64_t e = 0; e < n; e++) {
                if (x[e] < a) a = x[e];
                if (x[e] > b) b = x[e];
            }
            lo[k] = a;
            hi[k] = b;
        }
        calib_release(&c);
    }
    uint64_t *hist = NULL;
    if (st == PL_OK && o->method == PILLAR_CALIBRATE_PERCENTILE && o->percentile < 100.0) {
        hist = calloc((size_t)nnames * NBINS + 1, sizeof *hist);
        if (!hist) st = pl_error(PL_ERR_NOMEM, "out of memory for calibration histograms");
        for (size_t i = 0; st == PL_OK && i < n_samples; i++) {
            st = calib_run(&c, i, samples);
            for (int k = 0; st == PL_OK && k < nnames; k++) {
                const pl_tensor *t = calib_tensor(&c, k, i, samples);
                const float *x = t->data;
                int64_t n = pl_numel(t);
                float a = lo[k], w = hi[k] - lo[k];
                uint64_t *h = hist + (size_t)k * NBINS;
                if (!(w > 0)) continue;
                for (int64_t e = 0; e < n; e++) {
                    int b = (int)((x[e] - a) / w * NBINS);
                    h[b < 0 ? 0 : b >= NBINS ? NBINS - 1 : b]++;
                }
            }
            calib_release(&c);
        }
        /* cut (100 - p) / 2 percent of the values off each tail */
        double cut = (100.0 - o->percentile) / 200.0;
        for (int k = 0; st == PL_OK && k < nnames; k++) {
            const uint64_t *h = hist + (size_t)k * NBINS;
            uint64_t total = 0;
            for (int b = 0; b < NBINS; b++) total += h[b];
            float a = lo[k], w = hi[k] - lo[k];
            if (!total || !(w > 0)) continue;
            double lim = cut * (double)total, acc = 0;
            int bl = 0, bh = NBINS - 1;
            while (bl < NBINS - 1 && acc + (double)h[bl] <= lim) acc += (double)h[bl++];
            acc = 0;
            while (bh > bl && acc + (double)h[bh] <= lim) acc += (double)h[bh--];
            lo[k] = a + w * (float)bl / NBINS;
            hi[k] = a + w * (float)(bh + 1) / NBINS;
        }
    }
    for (int k = 0; st == PL_OK && k < nnames; k++)
        if (!isfinite(lo[k]) || !isfinite(hi[k]))
            st = pl_error(PL_ERR_INPUT, "calibration: tensor '%s' has a non-finite range [%g, %g]", names[k], lo[k], hi[k]);
    free(hist);
    calib_release(&c);
    calib_free(&c);
    return st;
}
