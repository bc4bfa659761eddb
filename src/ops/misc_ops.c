/* misc_ops.c -- ops that belong to no other family: the text ops StringNormalizer
 * (opset 10) and TfIdfVectorizer (opset 9). */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/op.h"

/* ---- StringNormalizer ------------------------------------------------------------ */

static bool ascii_ieq(const char *a, const char *b) {
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return false;
    return *a == *b;
}

static char *str_copy(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static const char *str_at(const pl_tensor *t, int64_t i) {
    const char *s = ((char *const *)t->data)[i];
    return s ? s : "";
}

static bool is_stopword(const pl_node *n, const char *s, bool case_sensitive) {
    const pl_attr *a = pl_attr_find(n, "stopwords");
    if (!a || a->type != PL_ATTR_STRINGS) return false;
    for (size_t k = 0; k < a->n; k++) {
        const char *w = a->strings[k] ? a->strings[k] : "";
        if (case_sensitive ? strcmp(w, s) == 0 : ascii_ieq(w, s)) return true;
    }
    return false;
}

typedef struct strnorm_cfg {
    int action; /* 0 none, 1 lower, 2 upper */
    bool case_sensitive;
    bool has_stopwords;
    int64_t C;
} strnorm_cfg;

static pl_status strnorm_parse(pl_op_ctx *c, strnorm_cfg *g) {
    PL_TRY(pl_op_check_arity(c, 1, 1));
    const pl_tensor *x = c->in[0];
    if (x->dtype != PL_STRING)
        return pl_op_error(c, PL_ERR_MODEL, "input has type %s, expected string", pl_dtype_name(x->dtype));
    if (!(x->ndim == 1 || (x->ndim == 2 && x->dims[0] == 1)))
        return pl_op_error(c, PL_ERR_MODEL, "input must have shape [C] or [1, C]");
    g->C = x->dims[x->ndim - 1];
    const char *act = pl_attr_str(c->node, "case_change_action", "NONE");
    if (strcmp(act, "NONE") == 0) g->action = 0;
    else if (strcmp(act, "LOWER") == 0) g->action = 1;
    else if (strcmp(act, "UPPER") == 0) g->action = 2;
    else return pl_op_error(c, PL_ERR_MODEL, "attribute 'case_change_action' = '%s' is not valid", act);
    g->case_sensitive = pl_attr_int(c->node, "is_case_sensitive", 0) != 0;
    const pl_attr *a = pl_attr_find(c->node, "stopwords");
    g->has_stopwords = a && a->type == PL_ATTR_STRINGS && a->n > 0;
    return PL_OK;
}

/* Number of strings kept (at least 1: an all-removed input gives one empty string). */
static int64_t strnorm_kept(const pl_op_ctx *c, const strnorm_cfg *g) {
    int64_t k = 0;
    for (int64_t i = 0; i < g->C; i++)
        if (!g->has_stopwords || !is_stopword(c->node, str_at(c->in[0], i), g->case_sensitive)) k++;
    return k;
}

pl_status strnorm_infer(pl_op_ctx *c) {
    strnorm_cfg g;
    PL_TRY(strnorm_parse(c, &g));
    const pl_tensor *x = c->in[0];
    int64_t kept = g.C;
    if (g.has_stopwords) {
        if (!x->data) return PL_NEED_VALUE;
        kept = strnorm_kept(c, &g);
    }
    if (kept == 0) kept = 1;
    int64_t dims[2] = {1, kept};
    if (x->ndim == 1) pl_op_set_out(c, 0, PL_STRING, 1, &kept);
    else pl_op_set_out(c, 0, PL_STRING, 2, dims);
    return PL_OK;
}

pl_status strnorm_run(pl_op_ctx *c) {
    strnorm_cfg g;
    PL_TRY(strnorm_parse(c, &g));
    pl_tensor *y = c->out[0];
    if (!y) return PL_OK;
    const pl_tensor *x = c->in[0];
    char **out = (char **)y->data;
    int64_t cap = pl_numel(y), k = 0;
    for (int64_t i = 0; i < g.C; i++) {
        const char *s = str_at(x, i);
        if (g.has_stopwords && is_stopword(c->node, s, g.case_sensitive)) continue;
        if (k >= cap) return pl_op_error(c, PL_ERR_INTERNAL, "output shape does not match the input");
        char *d = str_copy(s);
        if (!d) return pl_op_error(c, PL_ERR_NOMEM, "out of memory");
        /* Case mapping is ASCII only; other bytes (UTF-8) pass through unchanged. */
        for (char *p = d; *p; p++) {
            if (g.action == 1) *p = (char)tolower((unsigned char)*p);
            else if (g.action == 2) *p = (char)toupper((unsigned char)*p);
        }
        free(out[k]);
        out[k++] = d;
    }
    for (; k < cap; k++) {
        char *d = str_copy("");
        if (!d) return pl_op_error(c, PL_ERR_NOMEM, "out of memory");
        free(out[k]);
        out[k] = d;
    }
    return PL_OK;
}

/* ---- TfIdfVectorizer ------------------------------------------------------------- */

typedef struct tfidf_cfg {
    int64_t minn, maxn, maxskip;
    int mode; /* 0 TF, 1 IDF, 2 TFIDF */
    const int64_t *counts, *indexes, *pool_i;
    size_t ncounts, nindexes, npool;
    const pl_attr *pool_s;
    const float *weights;
    size_t nweights;
    int64_t out_len;
} tfidf_cfg;

static pl_status tfidf_parse(pl_op_ctx *c, tfidf_cfg *g) {
    PL_TRY(pl_op_check_arity(c, 1, 1));
    static const pl_dtype types[] = {PL_STRING, PL_I32, PL_I64, PL_UNDEF};
    PL_TRY(pl_op_check_dtype(c, 0, types));
    const pl_tensor *x = c->in[0];
    const pl_node *n = c->node;
    if (x->ndim != 1 && x->ndim != 2)
        return pl_op_error(c, PL_ERR_MODEL, "input has %d dims, expected 1 or 2", x->ndim);
    g->minn = pl_attr_int(n, "min_gram_length", 1);
    g->maxn = pl_attr_int(n, "max_gram_length", 1);
    g->maxskip = pl_attr_int(n, "max_skip_count", 0);
    if (g->minn < 1 || g->maxn < g->minn || g->maxn > 64)
        return pl_op_error(c, PL_ERR_MODEL, "gram lengths %lld..%lld are not valid", (long long)g->minn,
                           (long long)g->maxn);
    if (g->maxskip < 0) return pl_op_error(c, PL_ERR_MODEL, "attribute 'max_skip_count' is negative");
    const char *mode = pl_attr_str(n, "mode", "TF");
    if (strcmp(mode, "TF") == 0) g->mode = 0;
    else if (strcmp(mode, "IDF") == 0) g->mode = 1;
    else if (strcmp(mode, "TFIDF") == 0) g->mode = 2;
    else return pl_op_error(c, PL_ERR_MODEL, "attribute 'mode' = '%s' is not valid", mode);
    g->counts = pl_attr_ints(n, "ngram_counts", &g->ncounts);
    g->indexes = pl_attr_ints(n, "ngram_indexes", &g->nindexes);
    g->pool_i = pl_attr_ints(n, "pool_int64s", &g->npool);
    const pl_attr *ps = pl_attr_find(n, "pool_strings");
    g->pool_s = ps && ps->type == PL_ATTR_STRINGS ? ps : NULL;
    if ((g->pool_i != NULL) == (g->pool_s != NULL))
        return pl_op_error(c, PL_ERR_MODEL, "exactly one of 'pool_int64s' and 'pool_strings' must be set");
    if (g->pool_s) g->npool = g->pool_s->n;
    if ((g->pool_s != NULL) != (x->dtype == PL_STRING))
        return pl_op_error(c, PL_ERR_MODEL, "input type %s does not match the pool type",
                           pl_dtype_name(x->dtype));
    g->weights = pl_attr_floats(n, "weights", &g->nweights);
    /* The pool holds, for each length k = 1.., the k-grams from offset counts[k-1]. */
    size_t total = 0;
    for (size_t k = 0; k < g->ncounts; k++) {
        size_t start = (size_t)g->counts[k];
        size_t end = k + 1 < g->ncounts ? (size_t)g->counts[k + 1] : g->npool;
        if (g->counts[k] < 0 || start > end || end > g->npool || (end - start) % (k + 1) != 0)
            return pl_op_error(c, PL_ERR_MODEL, "attribute 'ngram_counts' does not fit the pool");
        total += (end - start) / (k + 1);
    }
    if (total != g->nindexes)
        return pl_op_error(c, PL_ERR_MODEL, "the pool holds %zu n-grams but 'ngram_indexes' has %zu",
                           total, g->nindexes);
    if (g->weights && g->nweights != g->nindexes)
        return pl_op_error(c, PL_ERR_MODEL, "attribute 'weights' has %zu values, expected %zu",
                           g->nweights, g->nindexes);
    int64_t mx = -1;
    for (size_t i = 0; i < g->nindexes; i++) {
        if (g->indexes[i] < 0 || g->indexes[i] > ((int64_t)1 << 31))
            return pl_op_error(c, PL_ERR_MODEL, "ngram_indexes[%zu] = %lld is not valid", i,
                               (long long)g->indexes[i]);
        if (g->indexes[i] > mx) mx = g->indexes[i];
    }
    g->out_len = mx + 1;
    return PL_OK;
}

pl_status tfidf_infer(pl_op_ctx *c) {
    tfidf_cfg g;
    PL_TRY(tfidf_parse(c, &g));
    const pl_tensor *x = c->in[0];
    int64_t dims[2] = {x->dims[0], g.out_len};
    if (x->ndim == 1) pl_op_set_out(c, 0, PL_F32, 1, &g.out_len);
    else pl_op_set_out(c, 0, PL_F32, 2, dims);
    return PL_OK;
}

/* One pool n-gram: its items (canonical ids) and its output slot. */
typedef struct tf_gram {
    const int64_t *items;
    int64_t len;
    size_t pool_index; /* index into ngram_indexes / weights */
} tf_gram;

static int cmp_items(const int64_t *a, const int64_t *b, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (a[i] != b[i]) return a[i] < b[i] ? -1 : 1;
    return 0;
}

static int cmp_gram(const void *pa, const void *pb) {
    const tf_gram *a = pa, *b = pb;
    if (a->len != b->len) return a->len < b->len ? -1 : 1;
    return cmp_items(a->items, b->items, a->len);
}

/* Finds the pool n-gram equal to items[0..len), or NULL. grams is sorted by cmp_gram. */
static const tf_gram *find_gram(const tf_gram *grams, size_t n, const int64_t *items, int64_t len) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = grams[mid].len != len ? (grams[mid].len < len ? -1 : 1)
                                      : cmp_items(grams[mid].items, items, len);
        if (c == 0) return &grams[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

/* String pools become integer ids: each string maps to the first pool position that
 * holds an equal string; input strings absent from the pool map to -1. */
static int64_t string_id(const pl_attr *pool, const char *s) {
    for (size_t i = 0; i < pool->n; i++)
        if (strcmp(pool->strings[i] ? pool->strings[i] : "", s) == 0) return (int64_t)i;
    return -1;
}

pl_status tfidf_run(pl_op_ctx *c) {
    tfidf_cfg g;
    PL_TRY(tfidf_parse(c, &g));
    pl_tensor *y = c->out[0];
    if (!y) return PL_OK;
    const pl_tensor *x = c->in[0];
    int64_t rows = x->ndim == 2 ? x->dims[0] : 1, C = x->dims[x->ndim - 1];
    pl_status st = PL_OK;
    int64_t *pool = malloc((g.npool ? g.npool : 1) * sizeof(int64_t));
    int64_t *xi = malloc((size_t)(rows * C > 0 ? rows * C : 1) * sizeof(int64_t));
    tf_gram *grams = malloc((g.nindexes ? g.nindexes : 1) * sizeof(tf_gram));
    double *cnt = calloc(g.nindexes ? g.nindexes : 1, sizeof(double));
    if (!pool || !xi || !grams || !cnt) {
        st = pl_op_error(c, PL_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < g.npool; i++)
        pool[i] = g.pool_s ? string_id(g.pool_s, g.pool_s->strings[i] ? g.pool_s->strings[i] : "")
                           : g.pool_i[i];
    for (int64_t i = 0; i < rows * C; i++)
        xi[i] = g.pool_s ? string_id(g.pool_s, str_at(x, i)) : pl_get_i64(x, i);
    size_t ng = 0;
    for (size_t k = 0; k < g.ncounts; k++) {
        size_t start = (size_t)g.counts[k];
        size_t end = k + 1 < g.ncounts ? (size_t)g.counts[k + 1] : g.npool;
        for (size_t p = start; p < end; p += k + 1) {
            grams[ng].items = pool + p;
            grams[ng].len = (int64_t)k + 1;
            grams[ng].pool_index = ng;
            ng++;
        }
    }
    qsort(grams, ng, sizeof *grams, cmp_gram);

    float *out = (float *)y->data;
    int64_t items[64];
    for (int64_t r = 0; r < rows; r++) {
        memset(cnt, 0, (g.nindexes ? g.nindexes : 1) * sizeof(double));
        const int64_t *row = xi + r * C;
        /* Every start and every skip; n-grams of length 1 are the same for all skips and
         * are counted once. */
        for (int64_t skip = 0; skip <= g.maxskip; skip++) {
            for (int64_t s = 0; s < C; s++) {
                for (int64_t len = 1; len <= g.maxn; len++) {
                    int64_t pos = s + (len - 1) * (skip + 1);
                    if (pos >= C) break;
                    items[len - 1] = row[pos];
                    if (len < g.minn || (len == 1 && skip > 0)) continue;
                    const tf_gram *m = find_gram(grams, ng, items, len);
                    if (m) cnt[m->pool_index] += 1.0;
                }
            }
            if (skip + 1 >= C) break; /* larger skips find nothing new */
        }
        for (size_t i = 0; i < g.nindexes; i++) {
            double v = cnt[i], w = g.weights ? g.weights[i] : 1.0;
            if (g.mode == 1) v = (v > 0 ? 1.0 : 0.0) * w;
            else if (g.mode == 2) v *= w;
            out[r * g.out_len + g.indexes[i]] = (float)v;
        }
    }
done:
    free(pool);
    free(xi);
    free(grams);
    free(cnt);
    return st;
}

/* ---- training optimizers (domain ai.onnx.preview.training) ------------------------
 * Adagrad, Adam and Momentum update n tensors at once: inputs are R, T, then n groups
 * (X..., G..., and one or two state groups), outputs are the new X... followed by the new
 * states. Arithmetic is done in double. */

typedef struct optim_cfg {
    int kind;    /* 0 Adagrad, 1 Adam, 2 Momentum */
    int ngroups; /* input groups after R, T: 3, 4, 3 */
    int nout;    /* output groups: 2, 3, 2 */
    int n;       /* tensors optimised */
} optim_cfg;

static pl_status optim_parse(pl_op_ctx *c, optim_cfg *o) {
    const char *op = c->node->op_type;
    o->kind = strcmp(op, "Adagrad") == 0 ? 0 : strcmp(op, "Adam") == 0 ? 1 : 2;
    o->ngroups = o->kind == 1 ? 4 : 3;
    o->nout = o->kind == 1 ? 3 : 2;
    int rest = c->nin - 2;
    if (rest <= 0 || rest % o->ngroups != 0)
        return pl_op_error(c, PL_ERR_MODEL, "has %d inputs; expected R, T and %d groups of tensors",
                           c->nin, o->ngroups);
    o->n = rest / o->ngroups;
    PL_TRY(pl_op_check_arity(c, c->nin, c->nin));
    PL_TRY(pl_op_check_float(c, 0));
    static const pl_dtype ints[] = {PL_I64, PL_I32, PL_UNDEF};
    PL_TRY(pl_op_check_dtype(c, 1, ints));
    if (c->nout > o->nout * o->n)
        return pl_op_error(c, PL_ERR_MODEL, "has %d outputs, at most %d", c->nout, o->nout * o->n);
    for (int i = 0; i < o->n; i++) {
        const pl_tensor *x = c->in[2 + i];
        PL_TRY(pl_op_check_float(c, 2 + i));
        for (int g = 1; g < o->ngroups; g++) {
            int k = 2 + g * o->n + i;
            PL_TRY(pl_op_check_same_dtype(c, 2 + i, k));
            if (!pl_tensor_same_shape(x, c->in[k]))
                return pl_op_error(c, PL_ERR_UNSUPPORTED, "input %d must have the shape of input %d", k,
                                   2 + i);
        }
    }
    return PL_OK;
}

pl_status optim_infer(pl_op_ctx *c) {
    optim_cfg o;
    PL_TRY(optim_parse(c, &o));
    for (int g = 0; g < o.nout; g++)
        for (int i = 0; i < o.n; i++) {
            /* outputs: X_new..., then the states, which follow G in the inputs */
            int src = g == 0 ? 2 + i : 2 + (g + 1) * o.n + i;
            pl_op_same_as(c, g * o.n + i, src);
        }
    return PL_OK;
}

pl_status optim_run(pl_op_ctx *c) {
    optim_cfg o;
    PL_TRY(optim_parse(c, &o));
    double R;
    PL_TRY(pl_op_input_scalar(c, 0, &R));
    if (pl_numel(c->in[1]) != 1) return pl_op_error(c, PL_ERR_INPUT, "T must hold one value");
    int64_t T = pl_get_i64(c->in[1], 0);
    const pl_node *nd = c->node;
    double norm = pl_attr_float(nd, "norm_coefficient", 0.0f);
    double eps = pl_attr_float(nd, "epsilon", 1e-6f);
    double alpha = pl_attr_float(nd, "alpha", o.kind == 1 ? 0.9f : 0.0f);
    double beta = pl_attr_float(nd, "beta", o.kind == 1 ? 0.999f : 0.0f);
    bool nesterov = false;
    if (o.kind == 2) {
        static const char *const req[] = {"alpha", "beta", "mode", "norm_coefficient"};
        for (int k = 0; k < 4; k++)
            if (!pl_attr_find(nd, req[k]))
                return pl_op_error(c, PL_ERR_MODEL, "required attribute '%s' is missing", req[k]);
        const char *mode = pl_attr_str(nd, "mode", "standard");
        if (strcmp(mode, "nesterov") == 0) nesterov = true;
        else if (strcmp(mode, "standard") != 0)
            return pl_op_error(c, PL_ERR_MODEL, "attribute 'mode' = '%s' is not valid", mode);
    }
    double r = R;
    if (o.kind == 0) r = R / (1.0 + (double)T * pl_attr_float(nd, "decay_factor", 0.0f));
    if (o.kind == 1 && T > 0) r = R * sqrt(1.0 - pow(beta, (double)T)) / (1.0 - pow(alpha, (double)T));
    double post = o.kind == 1 ? pl_attr_float(nd, "norm_coefficient_post", 0.0f) : 0.0;
    double beta_adj = (o.kind == 2 && T <= 0) ? 1.0 : beta;
    for (int i = 0; i < o.n; i++) {
        const pl_tensor *x = c->in[2 + i], *g = c->in[2 + o.n + i], *s1 = c->in[2 + 2 * o.n + i];
        const pl_tensor *s2 = o.kind == 1 ? c->in[2 + 3 * o.n + i] : NULL;
        pl_tensor *xo = i < c->nout ? c->out[i] : NULL;
        pl_tensor *s1o = o.n + i < c->nout ? c->out[o.n + i] : NULL;
        pl_tensor *s2o = o.kind == 1 && 2 * o.n + i < c->nout ? c->out[2 * o.n + i] : NULL;
        int64_t cnt = pl_numel(x);
        for (int64_t k = 0; k < cnt; k++) {
            double xv = pl_get_f64(x, k), gr = norm * xv + pl_get_f64(g, k), xn, a, b = 0;
            if (o.kind == 0) { /* s1 = H */
                a = pl_get_f64(s1, k) + gr * gr;
                xn = xv - r * gr / (sqrt(a) + eps);
            } else if (o.kind == 1) { /* s1 = V, s2 = H */
                a = alpha * pl_get_f64(s1, k) + (1.0 - alpha) * gr;
                b = beta * pl_get_f64(s2, k) + (1.0 - beta) * gr * gr;
                xn = (1.0 - post) * (xv - r * a / (sqrt(b) + eps));
            } else { /* s1 = V */
                a = alpha * pl_get_f64(s1, k) + beta_adj * gr;
                xn = nesterov ? xv - r * (gr + alpha * a) : xv - r * a;
            }
            if (xo) pl_set_f64(xo, k, xn);
            if (s1o) pl_set_f64(s1o, k, a);
            if (s2o) pl_set_f64(s2o, k, b);
        }
    }
    return PL_OK;
}
