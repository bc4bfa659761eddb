/* random.c -- random number ops: RandomUniform, RandomNormal, RandomUniformLike,
 * RandomNormalLike, Bernoulli, Multinomial. All are registered PL_OP_NOFOLD.
 *
 * The generator is xoshiro256** seeded through splitmix64. With a `seed` attribute a
 * node produces the same values on every run; without one each run draws a fresh seed.
 * The values are correctly distributed but cannot match other runtimes bit for bit
 * (the ONNX spec says as much). */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ops/op.h"

typedef struct rng {
    uint64_t s[4];
} rng;

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(rng *r) {
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

/* Uniform in [0, 1) with 53 random bits. */
static double rng_uniform(rng *r) { return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0); }

/* Standard normal by Box-Muller (one value per call; simple and exact enough). */
static double rng_normal(rng *r) {
    double u1 = 1.0 - rng_uniform(r); /* (0, 1] so log is finite */
    double u2 = rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Seeds from the node's `seed` attribute, or from a process-wide counter mixed with
 * the clock when there is none. */
static void rng_init(rng *r, const pl_node *n) {
    static _Atomic uint64_t counter = 0;
    uint64_t x;
    const pl_attr *a = pl_attr_find(n, "seed");
    if (a && a->type == PL_ATTR_FLOAT) {
        double s = a->f;
        int64_t si = isfinite(s) && fabs(s) < 9.0e18 ? (int64_t)s : 0;
        uint32_t bits;
        float f = a->f;
        memcpy(&bits, &f, 4);
        x = (uint64_t)si ^ ((uint64_t)bits << 32);
    } else {
        uint64_t k = atomic_fetch_add(&counter, 1);
        x = (uint64_t)time(NULL) ^ ((uint64_t)clock() << 20) ^ (k * 0x9e3779b97f4a7c15ull) ^
            (uint64_t)(uintptr_t)r;
    }
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static void store(pl_tensor *t, int64_t i, double v) {
    if (t->dtype == PL_F32) ((float *)t->data)[i] = (float)v;
    else if (t->dtype == PL_F64) ((double *)t->data)[i] = v;
    else pl_set_f64(t, i, v);
}

/* dtype attribute (an ONNX TensorProto type), or `def` when absent. */
static pl_status dtype_attr(const pl_op_ctx *c, pl_dtype def, bool float_only, pl_dtype *out) {
    const pl_attr *a = pl_attr_find(c->node, "dtype");
    if (!a || a->type != PL_ATTR_INT) {
        *out = def;
    } else {
        *out = (pl_dtype)a->i;
        if (a->i < 0 || a->i > 16 || pl_dtype_size(*out) == 0 || *out == PL_STRING)
            return pl_op_error(c, PL_ERR_UNSUPPORTED, "attribute 'dtype' = %lld is not supported",
                               (long long)a->i);
    }
    if (float_only && !pl_dtype_is_float(*out))
        return pl_op_error(c, PL_ERR_UNSUPPORTED, "output type %s is not supported (float types only)",
                           pl_dtype_name(*out));
    return PL_OK;
}

static bool is_normal(const pl_op_ctx *c) { return strstr(c->node->op_type, "Normal") != NULL; }
static bool is_like(const pl_op_ctx *c) { return strstr(c->node->op_type, "Like") != NULL; }

/* RandomUniform / RandomNormal (shape attribute) and their *Like forms (input shape). */
pl_status random_infer(pl_op_ctx *c) {
    pl_dtype t;
    if (is_like(c)) {
        PL_TRY(pl_op_check_arity(c, 1, 1));
        const pl_attr *a = pl_attr_find(c->node, "dtype");
        if (!a && !pl_dtype_is_float(c->in[0]->dtype))
            return pl_op_error(c, PL_ERR_MODEL, "input is %s and no 'dtype' attribute gives a float type",
                               pl_dtype_name(c->in[0]->dtype));
        PL_TRY(dtype_attr(c, c->in[0]->dtype, true, &t));
        pl_op_set_out(c, 0, t, c->in[0]->ndim, c->in[0]->dims);
        return PL_OK;
    }
    PL_TRY(pl_op_check_arity(c, 0, 0));
    PL_TRY(dtype_attr(c, PL_F32, true, &t));
    size_t n = 0;
    const int64_t *shape = pl_attr_ints(c->node, "shape", &n);
    if (!shape && !pl_attr_find(c->node, "shape"))
        return pl_op_error(c, PL_ERR_MODEL, "attribute 'shape' is missing");
    if (n > PL_MAX_DIMS)
        return pl_op_error(c, PL_ERR_UNSUPPORTED, "attribute 'shape' has %zu dims, at most %d", n,
                           PL_MAX_DIMS);
    if (pl_dims_numel((int)n, shape) < 0)
        return pl_op_error(c, PL_ERR_MODEL, "attribute 'shape' has negative or overflowing dims");
    pl_op_set_out(c, 0, t, (int)n, shape);
    return PL_OK;
}

pl_status random_run(pl_op_ctx *c) {
    pl_tensor *y = c->out[0];
    if (!y) return PL_OK;
    rng r;
    rng_init(&r, c->node);
    int64_t n = pl_numel(y);
    if (is_normal(c)) {
        double mean = pl_attr_float(c->node, "mean", 0.0f), scale = pl_attr_float(c->node, "scale", 1.0f);
        for (int64_t i = 0; i < n; i++) store(y, i, mean + scale * rng_normal(&r));
    } else {
        double lo = pl_attr_float(c->node, "low", 0.0f), hi = pl_attr_float(c->node, "high", 1.0f);
        for (int64_t i = 0; i < n; i++) store(y, i, lo + (hi - lo) * rng_uniform(&r));
    }
    return PL_OK;
}

pl_status bernoulli_infer(pl_op_ctx *c) {
    PL_TRY(pl_op_check_arity(c, 1, 1));
    PL_TRY(pl_op_check_float(c, 0));
    pl_dtype t;
    PL_TRY(dtype_attr(c, c->in[0]->dtype, false, &t));
    pl_op_set_out(c, 0, t, c->in[0]->ndim, c->in[0]->dims);
    return PL_OK;
}

pl_status bernoulli_run(pl_op_ctx *c) {
    pl_tensor *y = c->out[0];
    if (!y) return PL_OK;
    const pl_tensor *x = c->in[0];
    rng r;
    rng_init(&r, c->node);
    int64_t n = pl_numel(x);
    for (int64_t i = 0; i < n; i++) {
        double p = pl_get_f64(x, i);
        if (!(p >= 0.0 && p <= 1.0))
            return pl_op_error(c, PL_ERR_INPUT, "probability %g at index %lld is outside [0, 1]", p,
                               (long long)i);
        double v = rng_uniform(&r) < p ? 1.0 : 0.0;
        if (y->dtype == PL_BOOL) ((uint8_t *)y->data)[i] = (uint8_t)v;
        else store(y, i, v);
    }
    return PL_OK;
}

pl_status multinomial_infer(pl_op_ctx *c) {
    PL_TRY(pl_op_check_arity(c, 1, 1));
    PL_TRY(pl_op_check_float(c, 0));
    const pl_tensor *x = c->in[0];
    if (x->ndim != 2)
        return pl_op_error(c, PL_ERR_MODEL, "input has %d dims, expected 2 [batch, classes]", x->ndim);
    pl_dtype t;
    PL_TRY(dtype_attr(c, PL_I32, false, &t));
    if (t != PL_I32 && t != PL_I64)
        return pl_op_error(c, PL_ERR_MODEL, "attribute 'dtype' must be int32 or int64, not %s",
                           pl_dtype_name(t));
    int64_t ss = pl_attr_int(c->node, "sample_size", 1);
    if (ss < 0) return pl_op_error(c, PL_ERR_MODEL, "attribute 'sample_size' = %lld is negative", (long long)ss);
    int64_t dims[2] = {x->dims[0], ss};
    if (pl_dims_numel(2, dims) < 0) return pl_op_error(c, PL_ERR_MODEL, "output size overflows");
    pl_op_set_out(c, 0, t, 2, dims);
    return PL_OK;
}

/* Each row holds unnormalised log-probabilities; samples come from the cumulative
 * distribution of exp(logit - max). */
pl_status multinomial_run(pl_op_ctx *c) {
    pl_tensor *y = c->out[0];
    if (!y) return PL_OK;
    const pl_tensor *x = c->in[0];
    int64_t B = x->dims[0], K = x->dims[1], S = y->dims[1];
    if (B == 0 || S == 0) return PL_OK;
    if (K == 0) return pl_op_error(c, PL_ERR_INPUT, "input has no classes to sample from");
    double *cdf = malloc((size_t)K * sizeof(double));
    if (!cdf) return pl_op_error(c, PL_ERR_NOMEM, "out of memory");
    rng r;
    rng_init(&r, c->node);
    for (int64_t b = 0; b < B; b++) {
        double mx = -INFINITY;
        for (int64_t k = 0; k < K; k++) {
            double v = pl_get_f64(x, b * K + k);
            if (v > mx) mx = v;
        }
        double total = 0;
        for (int64_t k = 0; k < K; k++) {
            double v = pl_get_f64(x, b * K + k);
            total += (mx == -INFINITY || isnan(v)) ? 0.0 : exp(v - mx);
            cdf[k] = total;
        }
        for (int64_t s = 0; s < S; s++) {
            int64_t idx = K - 1;
            if (total > 0 && isfinite(total)) {
                double u = rng_uniform(&r) * total;
                int64_t lo = 0, hi = K - 1; /* first k with cdf[k] > u */
                while (lo < hi) {
                    int64_t mid = lo + (hi - lo) / 2;
                    if (cdf[mid] > u) hi = mid;
                    else lo = mid + 1;
                }
                idx = lo;
            }
            pl_set_i64(y, b * S + s, idx);
        }
    }
    free(cdf);
    return PL_OK;
}
