/* rnn.c -- the recurrent ops RNN, GRU and LSTM (opset 7 and later; `layout` from 14).
 *
 * All three share one driver: the attributes and shapes are parsed into an rnn_cfg,
 * the inputs are converted to float32 scratch arrays (float16/float64 models run at
 * float32 precision), the input projection X*W^T + Wb is computed for every time step
 * at once, and then each direction steps through time with a per-op cell function.
 * Results go to scratch buffers in layout 0 and are written to the outputs at the end
 * (transposed for layout 1, converted to the output dtype). */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/op.h"

enum { RNN_PLAIN = 0, RNN_GRU = 1, RNN_LSTM = 2 };

typedef enum {
    ACT_SIGMOID,
    ACT_TANH,
    ACT_RELU,
    ACT_AFFINE,
    ACT_LEAKYRELU,
    ACT_THRESHRELU,
    ACT_SCALEDTANH,
    ACT_HARDSIGMOID,
    ACT_ELU,
    ACT_SOFTSIGN,
    ACT_SOFTPLUS,
} rnn_act_kind;

typedef struct rnn_act {
    rnn_act_kind k;
    float a, b;
} rnn_act;

typedef struct rnn_cfg {
    int kind;       /* RNN_PLAIN, RNN_GRU, RNN_LSTM */
    int ngates;     /* 1, 3, 4 */
    int nacts;      /* activations per direction: 1 (RNN), 2 (GRU), 3 (LSTM) */
    int nd;         /* number of directions */
    int reverse[2]; /* per direction: runs backwards in time */
    int layout;
    int64_t seq, batch, isz, hid;
    bool has_clip;
    float clip;
    int lbr;          /* GRU linear_before_reset */
    int input_forget; /* LSTM */
    rnn_act acts[6];
} rnn_cfg;

static int rnn_kind(const pl_node *n) {
    if (strcmp(n->op_type, "GRU") == 0) return RNN_GRU;
    if (strcmp(n->op_type, "LSTM") == 0) return RNN_LSTM;
    return RNN_PLAIN;
}

static bool str_ieq(const char *a, const char *b) {
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return false;
    return *a == *b;
}

/* Maps an activation name to its kind and default alpha/beta; also says how many of
 * alpha/beta the function consumes from the attribute lists. */
static bool act_lookup(const char *name, rnn_act *f, int *nalpha, int *nbeta) {
    static const struct {
        const char *name;
        rnn_act_kind k;
        float a, b;
        int na, nb;
    } tab[] = {
        {"Sigmoid", ACT_SIGMOID, 0, 0, 0, 0},
        {"Tanh", ACT_TANH, 0, 0, 0, 0},
        {"Relu", ACT_RELU, 0, 0, 0, 0},
        {"Affine", ACT_AFFINE, 1.0f, 0.0f, 1, 1},
        {"LeakyRelu", ACT_LEAKYRELU, 0.01f, 0, 1, 0},
        {"ThresholdedRelu", ACT_THRESHRELU, 1.0f, 0, 1, 0},
        {"ScaledTanh", ACT_SCALEDTANH, 1.0f, 1.0f, 1, 1},
        {"HardSigmoid", ACT_HARDSIGMOID, 0.2f, 0.5f, 1, 1},
        {"Elu", ACT_ELU, 1.0f, 0, 1, 0},
        {"Softsign", ACT_SOFTSIGN, 0, 0, 0, 0},
        {"Softplus", ACT_SOFTPLUS, 0, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++) {
        if (str_ieq(name, tab[i].name)) {
            f->k = tab[i].k;
            f->a = tab[i].a;
            f->b = tab[i].b;
            *nalpha = tab[i].na;
            *nbeta = tab[i].nb;
            return true;
        }
    }
    return false;
}

static inline float sigmoidf(float x) {
    return x >= 0 ? 1.0f / (1.0f + expf(-x)) : expf(x) / (1.0f + expf(x));
}

static void act_apply(const rnn_act *f, float *x, int64_t n) {
    switch (f->k) {
    case ACT_SIGMOID:
        for (int64_t i = 0; i < n; i++) x[i] = sigmoidf(x[i]);
        break;
    case ACT_TANH:
        for (int64_t i = 0; i < n; i++) x[i] = tanhf(x[i]);
        break;
    case ACT_RELU:
        for (int64_t i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : 0.0f;
        break;
    case ACT_AFFINE:
        for (int64_t i = 0; i < n; i++) x[i] = f->a * x[i] + f->b;
        break;
    case ACT_LEAKYRELU:
        for (int64_t i = 0; i < n; i++) x[i] = x[i] >= 0 ? x[i] : f->a * x[i];
        break;
    case ACT_THRESHRELU:
        for (int64_t i = 0; i < n; i++) x[i] = x[i] >= f->a ? x[i] : 0.0f;
        break;
    case ACT_SCALEDTANH:
        for (int64_t i = 0; i < n; i++) x[i] = f->a * tanhf(f->b * x[i]);
        break;
    case ACT_HARDSIGMOID:
        for (int64_t i = 0; i < n; i++) {
            float v = f->a * x[i] + f->b;
            x[i] = v < 0 ? 0.0f : (v > 1 ? 1.0f : v);
        }
        break;
    case ACT_ELU:
        for (int64_t i = 0; i < n; i++) x[i] = x[i] >= 0 ? x[i] : f->a * (expf(x[i]) - 1.0f);
        break;
    case ACT_SOFTSIGN:
        for (int64_t i = 0; i < n; i++) x[i] = x[i] / (1.0f + fabsf(x[i]));
        break;
    case ACT_SOFTPLUS:
        for (int64_t i = 0; i < n; i++)
            x[i] = x[i] > 20.0f ? x[i] : log1pf(expf(x[i]));
        break;
    }
}

static void clip_apply(const rnn_cfg *cfg, float *x, int64_t n) {
    if (!cfg->has_clip) return;
    float t = cfg->clip;
    for (int64_t i = 0; i < n; i++) x[i] = x[i] < -t ? -t : (x[i] > t ? t : x[i]);
}

/* Expects input i (if present) to have exactly the given shape. */
static pl_status expect_shape(const pl_op_ctx *c, int i, const char *what, int ndim,
                              const int64_t *dims) {
    if (!pl_has_in(c, i)) return PL_OK;
    const pl_tensor *t = c->in[i];
    bool ok = t->ndim == ndim;
    for (int d = 0; ok && d < ndim; d++) ok = t->dims[d] == dims[d];
    if (ok) return PL_OK;
    char got[128], want[128];
    pl_tensor w = {.ndim = ndim};
    for (int d = 0; d < ndim; d++) w.dims[d] = dims[d];
    return pl_op_error(c, PL_ERR_MODEL, "input %d (%s) has shape %s, expected %s", i, what,
                       pl_shape_str(t, got, sizeof got), pl_shape_str(&w, want, sizeof want));
}

/* Reads and checks attributes and input shapes (shared by infer and run). */
static pl_status rnn_parse(const pl_op_ctx *c, rnn_cfg *cfg) {
    const pl_node *n = c->node;
    memset(cfg, 0, sizeof *cfg);
    cfg->kind = rnn_kind(n);
    cfg->ngates = cfg->kind == RNN_PLAIN ? 1 : cfg->kind == RNN_GRU ? 3 : 4;
    cfg->nacts = cfg->kind == RNN_PLAIN ? 1 : cfg->kind == RNN_GRU ? 2 : 3;
    int max_in = cfg->kind == RNN_LSTM ? 8 : 6;
    PL_TRY(pl_op_check_arity(c, 3, max_in));
    for (int i = 0; i < c->nin; i++) {
        if (!pl_has_in(c, i) || i == 4) continue;
        PL_TRY(pl_op_check_float(c, i));
        PL_TRY(pl_op_check_same_dtype(c, 0, i));
    }
    if (pl_has_in(c, 4)) {
        static const pl_dtype ints[] = {PL_I32, PL_I64, PL_UNDEF};
        PL_TRY(pl_op_check_dtype(c, 4, ints));
    }

    const char *dir = pl_attr_str(n, "direction", "forward");
    if (strcmp(dir, "forward") == 0) {
        cfg->nd = 1;
    } else if (strcmp(dir, "reverse") == 0) {
        cfg->nd = 1;
        cfg->reverse[0] = 1;
    } else if (strcmp(dir, "bidirectional") == 0) {
        cfg->nd = 2;
        cfg->reverse[1] = 1;
    } else {
        return pl_op_error(c, PL_ERR_MODEL, "attribute 'direction' = '%s' is not valid", dir);
    }
    cfg->layout = (int)pl_attr_int(n, "layout", 0);
    if (cfg->layout != 0 && cfg->layout != 1)
        return pl_op_error(c, PL_ERR_MODEL, "attribute 'layout' = %d is not 0 or 1", cfg->layout);
    const pl_attr *clip = pl_attr_find(n, "clip");
    if (clip && clip->type == PL_ATTR_FLOAT) {
        cfg->has_clip = true;
        cfg->clip = clip->f;
        if (!(cfg->clip >= 0))
            return pl_op_error(c, PL_ERR_MODEL, "attribute 'clip' = %g is negative", cfg->clip);
    }
    if (cfg->kind == RNN_GRU) cfg->lbr = pl_attr_int(n, "linear_before_reset", 0) != 0;
    if (cfg->kind == RNN_LSTM) cfg->input_forget = pl_attr_int(n, "input_forget", 0) != 0;

    /* Activations: nacts per direction; a single set is reused for both directions. */
    static const rnn_act_kind defaults[3][3] = {
        {ACT_TANH}, {ACT_SIGMOID, ACT_TANH}, {ACT_SIGMOID, ACT_TANH, ACT_TANH}};
    const pl_attr *acts = pl_attr_find(n, "activations");
    size_t nalpha = 0, nbeta = 0;
    const float *alpha = pl_attr_floats(n, "activation_alpha", &nalpha);
    const float *beta = pl_attr_floats(n, "activation_beta", &nbeta);
    int total = cfg->nacts * cfg->nd;
    if (acts && acts->type == PL_ATTR_STRINGS && acts->n > 0) {
        if ((int)acts->n != total && (int)acts->n != cfg->nacts)
            return pl_op_error(c, PL_ERR_MODEL, "attribute 'activations' has %zu names, expected %d",
                               acts->n, total);
        size_t ia = 0, ib = 0;
        bool by_pos_a = nalpha == acts->n, by_pos_b = nbeta == acts->n;
        for (int k = 0; k < (int)acts->n; k++) {
            int na, nb;
            if (!act_lookup(acts->strings[k], &cfg->acts[k], &na, &nb))
                return pl_op_error(c, PL_ERR_UNSUPPORTED, "activation '%s' is not supported",
                                   acts->strings[k]);
            /* alpha/beta lists either line up with the activations, or are consumed in
             * order by the functions that take them. */
            if (by_pos_a) {
                if (na) cfg->acts[k].a = alpha[k];
            } else if (na && ia < nalpha) {
                cfg->acts[k].a = alpha[ia++];
            }
            if (by_pos_b) {
                if (nb) cfg->acts[k].b = beta[k];
            } else if (nb && ib < nbeta) {
                cfg->acts[k].b = beta[ib++];
            }
        }
        if ((int)acts->n != total)
            for (int k = 0; k < cfg->nacts; k++) cfg->acts[cfg->nacts + k] = cfg->acts[k];
    } else {
        for (int k = 0; k < total; k++) {
            cfg->acts[k].k = defaults[cfg->kind][k % cfg->nacts];
            cfg->acts[k].a = cfg->acts[k].b = 0;
        }
    }

    /* Shapes. */
    const pl_tensor *X = c->in[0], *W = c->in[1], *R = c->in[2];
    if (X->ndim != 3) return pl_op_error(c, PL_ERR_MODEL, "input 0 (X) has %d dims, expected 3", X->ndim);
    if (W->ndim != 3) return pl_op_error(c, PL_ERR_MODEL, "input 1 (W) has %d dims, expected 3", W->ndim);
    if (R->ndim != 3) return pl_op_error(c, PL_ERR_MODEL, "input 2 (R) has %d dims, expected 3", R->ndim);
    cfg->seq = cfg->layout ? X->dims[1] : X->dims[0];
    cfg->batch = cfg->layout ? X->dims[0] : X->dims[1];
    cfg->isz = X->dims[2];
    int64_t hid = R->dims[2];
    int64_t hs = pl_attr_int(n, "hidden_size", hid);
    if (hs != hid)
        return pl_op_error(c, PL_ERR_MODEL, "attribute 'hidden_size' = %lld but R has %lld columns",
                           (long long)hs, (long long)hid);
    cfg->hid = hid;
    if (hid < 0 || cfg->seq < 0 || cfg->batch < 0 || cfg->isz < 0 || hid > ((int64_t)1 << 40))
        return pl_op_error(c, PL_ERR_MODEL, "negative or huge dimensions");
    int64_t G = cfg->ngates, nd = cfg->nd;
    int64_t wd[3] = {nd, G * hid, cfg->isz};
    PL_TRY(expect_shape(c, 1, "W", 3, wd));
    int64_t rd[3] = {nd, G * hid, hid};
    PL_TRY(expect_shape(c, 2, "R", 3, rd));
    int64_t bd[2] = {nd, 2 * G * hid};
    PL_TRY(expect_shape(c, 3, "B", 2, bd));
    int64_t sd[1] = {cfg->batch};
    PL_TRY(expect_shape(c, 4, "sequence_lens", 1, sd));
    int64_t hd[3] = {nd, cfg->batch, hid};
    if (cfg->layout) {
        hd[0] = cfg->batch;
        hd[1] = nd;
    }
    PL_TRY(expect_shape(c, 5, "initial_h", 3, hd));
    if (cfg->kind == RNN_LSTM) {
        PL_TRY(expect_shape(c, 6, "initial_c", 3, hd));
        int64_t pd[2] = {nd, 3 * hid};
        PL_TRY(expect_shape(c, 7, "P", 2, pd));
    }
    int64_t big[4] = {cfg->seq, cfg->batch, G * nd, hid};
    if (pl_dims_numel(4, big) < 0)
        return pl_op_error(c, PL_ERR_MODEL, "dimensions overflow");
    return PL_OK;
}

pl_status rnn_infer(pl_op_ctx *c) {
    rnn_cfg cfg;
    PL_TRY(rnn_parse(c, &cfg));
    int maxout = cfg.kind == RNN_LSTM ? 3 : 2;
    if (c->nout > maxout)
        return pl_op_error(c, PL_ERR_MODEL, "has %d outputs, at most %d", c->nout, maxout);
    pl_dtype t = c->in[0]->dtype;
    int64_t yd[4] = {cfg.seq, cfg.nd, cfg.batch, cfg.hid};
    int64_t hd[3] = {cfg.nd, cfg.batch, cfg.hid};
    if (cfg.layout) {
        int64_t y1[4] = {cfg.batch, cfg.seq, cfg.nd, cfg.hid};
        memcpy(yd, y1, sizeof yd);
        hd[0] = cfg.batch;
        hd[1] = cfg.nd;
    }
    pl_op_set_out(c, 0, t, 4, yd);
    pl_op_set_out(c, 1, t, 3, hd);
    pl_op_set_out(c, 2, t, 3, hd);
    return PL_OK;
}

/* A float32 view of a tensor: the data itself for float32, else a converted copy. */
static pl_status as_f32(const pl_op_ctx *c, const pl_tensor *t, float **out, bool *owned) {
    *owned = false;
    *out = NULL;
    if (!t) return PL_OK;
    if (t->dtype == PL_F32) {
        *out = (float *)t->data;
        return PL_OK;
    }
    int64_t n = pl_numel(t);
    float *b = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (!b) return pl_op_error(c, PL_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < n; i++) b[i] = (float)pl_get_f64(t, i);
    *out = b;
    *owned = true;
    return PL_OK;
}

/* out[j] += sum_k v[k] * mt[k*ld + j] for j < n: a row vector times a K x n block of a
 * row-major matrix (the transposed weights), with the inner loop over contiguous j. */
static void vecmat_acc(const float *v, const float *mt, int64_t K, int64_t ld, int64_t n,
                       float *out) {
    for (int64_t k = 0; k < K; k++) {
        float s = v[k];
        if (s == 0.0f) continue;
        const float *row = mt + k * ld;
        for (int64_t j = 0; j < n; j++) out[j] += s * row[j];
    }
}

/* dst[k*rows + j] = src[j*cols + k]: src is rows x cols. */
static void transpose(const float *src, int64_t rows, int64_t cols, float *dst) {
    for (int64_t j = 0; j < rows; j++)
        for (int64_t k = 0; k < cols; k++) dst[k * rows + j] = src[j * cols + k];
}

/* The state of one direction while it steps through time. */
typedef struct rnn_dir {
    const rnn_cfg *cfg;
    const rnn_act *act; /* this direction's activations */
    const float *rt;    /* R^T: hid x G*hid */
    const float *rb;    /* recurrence bias, G*hid (NULL: none) */
    const float *p;     /* LSTM peepholes [i, o, f], 3*hid (NULL: none) */
    float *gates;       /* scratch: G*hid */
    float *tmp;         /* scratch: hid */
} rnn_dir;

/* One step for one batch row. `g` holds X*W^T + Wb for this step (G*hid, consumed);
 * h (and c for LSTM) is updated in place. */
static void cell_step(const rnn_dir *d, const float *xw, float *h, float *cst) {
    const rnn_cfg *cfg = d->cfg;
    int64_t H = cfg->hid, GH = cfg->ngates * H;
    float *g = d->gates;
    memcpy(g, xw, (size_t)GH * sizeof(float));
    if (cfg->kind == RNN_PLAIN) {
        vecmat_acc(h, d->rt, H, GH, GH, g);
        if (d->rb)
            for (int64_t j = 0; j < H; j++) g[j] += d->rb[j];
        clip_apply(cfg, g, H);
        act_apply(&d->act[0], g, H);
        memcpy(h, g, (size_t)H * sizeof(float));
    } else if (cfg->kind == RNN_GRU) {
        /* z and r see h*R for their columns; the candidate depends on linear_before_reset. */
        float *z = g, *r = g + H, *hc = g + 2 * H, *t = d->tmp;
        vecmat_acc(h, d->rt, H, GH, 2 * H, g);
        if (d->rb)
            for (int64_t j = 0; j < 2 * H; j++) g[j] += d->rb[j];
        clip_apply(cfg, g, 2 * H);
        act_apply(&d->act[0], z, H);
        act_apply(&d->act[0], r, H);
        memset(t, 0, (size_t)H * sizeof(float));
        if (cfg->lbr) {
            vecmat_acc(h, d->rt + 2 * H, H, GH, H, t);
            for (int64_t j = 0; j < H; j++) {
                float rbh = d->rb ? d->rb[2 * H + j] : 0.0f;
                hc[j] += r[j] * (t[j] + rbh);
            }
        } else {
            float *rh = d->gates + GH; /* extra scratch after the gates */
            for (int64_t j = 0; j < H; j++) rh[j] = r[j] * h[j];
            vecmat_acc(rh, d->rt + 2 * H, H, GH, H, t);
            for (int64_t j = 0; j < H; j++) hc[j] += t[j] + (d->rb ? d->rb[2 * H + j] : 0.0f);
        }
        clip_apply(cfg, hc, H);
        act_apply(&d->act[1], hc, H);
        for (int64_t j = 0; j < H; j++) h[j] = (1.0f - z[j]) * hc[j] + z[j] * h[j];
    } else {
        /* LSTM gate order in W/R/B: i, o, f, c; peepholes: i, o, f. */
        float *gi = g, *go = g + H, *gf = g + 2 * H, *gc = g + 3 * H;
        vecmat_acc(h, d->rt, H, GH, GH, g);
        if (d->rb)
            for (int64_t j = 0; j < GH; j++) g[j] += d->rb[j];
        if (d->p)
            for (int64_t j = 0; j < H; j++) {
                gi[j] += d->p[j] * cst[j];
                gf[j] += d->p[2 * H + j] * cst[j];
            }
        clip_apply(cfg, gi, H);
        act_apply(&d->act[0], gi, H);
        if (cfg->input_forget) {
            for (int64_t j = 0; j < H; j++) gf[j] = 1.0f - gi[j];
        } else {
            clip_apply(cfg, gf, H);
            act_apply(&d->act[0], gf, H);
        }
        clip_apply(cfg, gc, H);
        act_apply(&d->act[1], gc, H);
        for (int64_t j = 0; j < H; j++) cst[j] = gf[j] * cst[j] + gi[j] * gc[j];
        if (d->p)
            for (int64_t j = 0; j < H; j++) go[j] += d->p[H + j] * cst[j];
        clip_apply(cfg, go, H);
        act_apply(&d->act[0], go, H);
        float *t = d->tmp;
        memcpy(t, cst, (size_t)H * sizeof(float));
        act_apply(&d->act[2], t, H);
        for (int64_t j = 0; j < H; j++) h[j] = go[j] * t[j];
    }
}

static void *xcalloc(int64_t n, size_t es) { return calloc((size_t)(n > 0 ? n : 1), es); }

/* Writes a float scratch array to an output tensor of any float dtype. */
static void store_out(pl_tensor *o, const float *src, int64_t n) {
    if (o->dtype == PL_F32) {
        memcpy(o->data, src, (size_t)n * sizeof(float));
        return;
    }
    for (int64_t i = 0; i < n; i++) pl_set_f64(o, i, src[i]);
}

pl_status rnn_run(pl_op_ctx *c) {
    rnn_cfg cfg;
    PL_TRY(rnn_parse(c, &cfg));
    const int64_t S = cfg.seq, Bt = cfg.batch, I = cfg.isz, H = cfg.hid, nd = cfg.nd;
    const int64_t G = cfg.ngates, GH = G * H;
    const bool lstm = cfg.kind == RNN_LSTM;

    /* Sequence lengths, checked. */
    int64_t *lens = malloc((size_t)(Bt > 0 ? Bt : 1) * sizeof(int64_t));
    if (!lens) return pl_op_error(c, PL_ERR_NOMEM, "out of memory");
    for (int64_t b = 0; b < Bt; b++) {
        lens[b] = pl_has_in(c, 4) ? pl_get_i64(c->in[4], b) : S;
        if (lens[b] < 0 || lens[b] > S) {
            int64_t v = lens[b];
            free(lens);
            return pl_op_error(c, PL_ERR_INPUT, "sequence_lens[%lld] = %lld is outside [0, %lld]",
                               (long long)b, (long long)v, (long long)S);
        }
    }

    pl_status st = PL_OK;
    float *x = NULL, *w = NULL, *r = NULL, *bias = NULL, *h0 = NULL, *c0 = NULL, *pp = NULL;
    bool ox = false, ow = false, orr = false, ob = false, oh = false, oc = false, op = false;
    float *xs = NULL, *wt = NULL, *rt = NULL, *xw = NULL, *Y = NULL, *Yh = NULL, *Yc = NULL;
    float *h = NULL, *cs = NULL, *gates = NULL, *tmp = NULL;
    if ((st = as_f32(c, c->in[0], &x, &ox)) || (st = as_f32(c, c->in[1], &w, &ow)) ||
        (st = as_f32(c, c->in[2], &r, &orr)) ||
        (st = as_f32(c, pl_has_in(c, 3) ? c->in[3] : NULL, &bias, &ob)) ||
        (st = as_f32(c, pl_has_in(c, 5) ? c->in[5] : NULL, &h0, &oh)) ||
        (st = as_f32(c, lstm && pl_has_in(c, 6) ? c->in[6] : NULL, &c0, &oc)) ||
        (st = as_f32(c, lstm && pl_has_in(c, 7) ? c->in[7] : NULL, &pp, &op)))
        goto done;

    /* Scratch: X in [seq, batch, input] order, transposed weights, projections, outputs
     * in layout 0, the running state. */
    xs = xcalloc(S * Bt * I, sizeof(float));
    wt = xcalloc(I * GH, sizeof(float));
    rt = xcalloc(H * GH, sizeof(float));
    xw = xcalloc(S * Bt * GH, sizeof(float));
    Y = xcalloc(S * nd * Bt * H, sizeof(float));
    Yh = xcalloc(nd * Bt * H, sizeof(float));
    Yc = xcalloc(nd * Bt * H, sizeof(float));
    h = xcalloc(Bt * H, sizeof(float));
    cs = xcalloc(Bt * H, sizeof(float));
    gates = xcalloc(GH + H, sizeof(float));
    tmp = xcalloc(H, sizeof(float));
    if (!xs || !wt || !rt || !xw || !Y || !Yh || !Yc || !h || !cs || !gates || !tmp) {
        st = pl_op_error(c, PL_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (cfg.layout) {
        for (int64_t b = 0; b < Bt; b++)
            for (int64_t s = 0; s < S; s++)
                memcpy(xs + (s * Bt + b) * I, x + (b * S + s) * I, (size_t)I * sizeof(float));
    } else {
        memcpy(xs, x, (size_t)(S * Bt * I) * sizeof(float));
    }

    for (int dd = 0; dd < (int)nd; dd++) {
        transpose(w + dd * GH * I, GH, I, wt);
        transpose(r + dd * GH * H, GH, H, rt);
        const float *wb = bias ? bias + dd * 2 * GH : NULL;
        /* Input projection for every step and batch row at once. */
        for (int64_t row = 0; row < S * Bt; row++) {
            float *o = xw + row * GH;
            if (wb) memcpy(o, wb, (size_t)GH * sizeof(float));
            else memset(o, 0, (size_t)GH * sizeof(float));
            vecmat_acc(xs + row * I, wt, I, GH, GH, o);
        }
        /* Initial state. */
        for (int64_t b = 0; b < Bt; b++) {
            int64_t off = cfg.layout ? (b * nd + dd) * H : (dd * Bt + b) * H;
            if (h0) memcpy(h + b * H, h0 + off, (size_t)H * sizeof(float));
            else memset(h + b * H, 0, (size_t)H * sizeof(float));
            if (c0) memcpy(cs + b * H, c0 + off, (size_t)H * sizeof(float));
            else memset(cs + b * H, 0, (size_t)H * sizeof(float));
        }
        rnn_dir d = {.cfg = &cfg,
                     .act = &cfg.acts[dd * cfg.nacts],
                     .rt = rt,
                     .rb = wb ? wb + GH : NULL,
                     .p = pp ? pp + dd * 3 * H : NULL,
                     .gates = gates,
                     .tmp = tmp};
        /* Each batch row has its own length; a reverse direction starts at its last
         * valid step. Steps past a row's length leave Y at zero. */
        for (int64_t b = 0; b < Bt; b++) {
            for (int64_t s = 0; s < lens[b]; s++) {
                int64_t t = cfg.reverse[dd] ? lens[b] - 1 - s : s;
                cell_step(&d, xw + (t * Bt + b) * GH, h + b * H, cs + b * H);
                memcpy(Y + ((t * nd + dd) * Bt + b) * H, h + b * H, (size_t)H * sizeof(float));
            }
            /* A row of length 0 has no last state: its Y_h/Y_c stay zero (as in ONNX
             * Runtime), not the initial state. */
            if (lens[b] == 0) continue;
            memcpy(Yh + (dd * Bt + b) * H, h + b * H, (size_t)H * sizeof(float));
            memcpy(Yc + (dd * Bt + b) * H, cs + b * H, (size_t)H * sizeof(float));
        }
    }

    /* Outputs, transposed for layout 1. */
    if (c->nout > 0 && c->out[0]) {
        if (cfg.layout) {
            float *y1 = xcalloc(S * nd * Bt * H, sizeof(float));
            if (!y1) {
                st = pl_op_error(c, PL_ERR_NOMEM, "out of memory");
                goto done;
            }
            for (int64_t s = 0; s < S; s++)
                for (int64_t dd = 0; dd < nd; dd++)
                    for (int64_t b = 0; b < Bt; b++)
                        memcpy(y1 + ((b * S + s) * nd + dd) * H, Y + ((s * nd + dd) * Bt + b) * H,
                               (size_t)H * sizeof(float));
            store_out(c->out[0], y1, S * nd * Bt * H);
            free(y1);
        } else {
            store_out(c->out[0], Y, S * nd * Bt * H);
        }
    }
    for (int k = 1; k <= 2; k++) {
        if (k >= c->nout || !c->out[k]) continue;
        float *src = k == 1 ? Yh : Yc;
        if (cfg.layout) { /* [nd, batch, H] -> [batch, nd, H] */
            float *t1 = xcalloc(nd * Bt * H, sizeof(float));
            if (!t1) {
                st = pl_op_error(c, PL_ERR_NOMEM, "out of memory");
                goto done;
            }
            for (int64_t dd = 0; dd < nd; dd++)
                for (int64_t b = 0; b < Bt; b++)
                    memcpy(t1 + (b * nd + dd) * H, src + (dd * Bt + b) * H, (size_t)H * sizeof(float));
            store_out(c->out[k], t1, nd * Bt * H);
            free(t1);
        } else {
            store_out(c->out[k], src, nd * Bt * H);
        }
    }

done:
    free(lens);
    if (ox) free(x);
    if (ow) free(w);
    if (orr) free(r);
    if (ob) free(bias);
    if (oh) free(h0);
    if (oc) free(c0);
    if (op) free(pp);
    free(xs);
    free(wt);
    free(rt);
    free(xw);
    free(Y);
    free(Yh);
    free(Yc);
    free(h);
    free(cs);
    free(gates);
    free(tmp);
    return st;
}
