/* signal.c -- signal processing ops (opset 17): DFT, STFT, the Hann, Hamming and
 * Blackman windows, and MelWeightMatrix.
 *
 * Complex values are stored as a trailing dimension of 2 (real, imaginary); real
 * inputs have a trailing dimension of 1. Transforms are computed in double: a radix-2
 * FFT for power-of-two lengths, Bluestein's chirp-z algorithm (on a radix-2 FFT) for
 * other long lengths, and a direct O(n^2) sum for short ones. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/op.h"

#define SIG_PI 3.14159265358979323846
#define SIG_MAX_LEN ((int64_t)1 << 28) /* longest transform we agree to plan */

/* ---- FFT ------------------------------------------------------------------------- */

typedef struct fft_plan {
    int64_t n;
    int kind;     /* 0: direct, 1: radix-2, 2: Bluestein */
    double *tw;   /* direct: n twiddles; radix-2: n/2 twiddles (interleaved re, im) */
    int64_t m;    /* Bluestein: power-of-two convolution length */
    double *mtw;  /* Bluestein: radix-2 twiddles for m */
    double *chirp; /* Bluestein: exp(-i*pi*j^2/n), n values */
    double *bf;   /* Bluestein: FFT of the conjugate chirp, m values */
    double *work; /* scratch: max(n, m) complex values */
} fft_plan;

static bool is_pow2(int64_t n) { return n > 0 && (n & (n - 1)) == 0; }

static void twiddles(double *tw, int64_t count, int64_t n) {
    for (int64_t k = 0; k < count; k++) {
        double a = -2.0 * SIG_PI * (double)k / (double)n;
        tw[2 * k] = cos(a);
        tw[2 * k + 1] = sin(a);
    }
}

/* In-place forward radix-2 FFT of n (a power of two) interleaved complex values. */
static void fft_pow2(double *a, int64_t n, const double *tw) {
    for (int64_t i = 1, j = 0; i < n; i++) {
        int64_t bit = n >> 1;
        for (; j & bit; bit >>= 1) j ^= bit;
        j |= bit;
        if (i < j) {
            double tr = a[2 * i], ti = a[2 * i + 1];
            a[2 * i] = a[2 * j];
            a[2 * i + 1] = a[2 * j + 1];
            a[2 * j] = tr;
            a[2 * j + 1] = ti;
        }
    }
    for (int64_t len = 2; len <= n; len <<= 1) {
        int64_t half = len >> 1, step = n / len;
        for (int64_t i = 0; i < n; i += len) {
            for (int64_t j = 0; j < half; j++) {
                double wr = tw[2 * j * step], wi = tw[2 * j * step + 1];
                double *u = a + 2 * (i + j), *v = a + 2 * (i + j + half);
                double vr = v[0] * wr - v[1] * wi, vi = v[0] * wi + v[1] * wr;
                v[0] = u[0] - vr;
                v[1] = u[1] - vi;
                u[0] += vr;
                u[1] += vi;
            }
        }
    }
}

static void fft_free(fft_plan *p) {
    free(p->tw);
    free(p->mtw);
    free(p->chirp);
    free(p->bf);
    free(p->work);
    memset(p, 0, sizeof *p);
}

static bool fft_init(fft_plan *p, int64_t n) {
    memset(p, 0, sizeof *p);
    p->n = n;
    if (n <= 0) return true;
    if (is_pow2(n)) {
        p->kind = 1;
        p->tw = malloc((size_t)(n / 2 + 1) * 2 * sizeof(double));
        p->work = malloc((size_t)n * 2 * sizeof(double));
        if (!p->tw || !p->work) goto fail;
        twiddles(p->tw, n / 2 + 1, n);
        return true;
    }
    if (n <= 64) {
        p->kind = 0;
        p->tw = malloc((size_t)n * 2 * sizeof(double));
        p->work = malloc((size_t)n * 2 * sizeof(double));
        if (!p->tw || !p->work) goto fail;
        twiddles(p->tw, n, n);
        return true;
    }
    /* Bluestein: X_k = c_k * sum_j (x_j c_j) conj(c_{k-j}), with c_j = exp(-i pi j^2 / n),
     * a circular convolution of length m >= 2n - 1 done with radix-2 FFTs. */
    p->kind = 2;
    int64_t m = 1;
    while (m < 2 * n - 1) m <<= 1;
    p->m = m;
    p->mtw = malloc((size_t)(m / 2 + 1) * 2 * sizeof(double));
    p->chirp = malloc((size_t)n * 2 * sizeof(double));
    p->bf = calloc((size_t)m * 2, sizeof(double));
    p->work = malloc((size_t)m * 2 * sizeof(double));
    if (!p->mtw || !p->chirp || !p->bf || !p->work) goto fail;
    twiddles(p->mtw, m / 2 + 1, m);
    for (int64_t j = 0; j < n; j++) {
        /* j^2 mod 2n keeps the angle small and exact. */
        int64_t q = (j * j) % (2 * n); /* j < 2^28: no overflow */
        double a = -SIG_PI * (double)q / (double)n;
        p->chirp[2 * j] = cos(a);
        p->chirp[2 * j + 1] = sin(a);
    }
    for (int64_t j = 0; j < n; j++) {
        double re = p->chirp[2 * j], im = -p->chirp[2 * j + 1];
        p->bf[2 * j] = re;
        p->bf[2 * j + 1] = im;
        if (j > 0) {
            p->bf[2 * (m - j)] = re;
            p->bf[2 * (m - j) + 1] = im;
        }
    }
    fft_pow2(p->bf, m, p->mtw);
    return true;
fail:
    fft_free(p);
    return false;
}

/* In-place DFT of p->n interleaved complex values (forward, or unscaled inverse). */
static void fft_exec(fft_plan *p, double *a, bool inverse) {
    int64_t n = p->n;
    if (n <= 1) return;
    if (inverse) /* inverse(x) = conj(forward(conj(x))) */
        for (int64_t k = 0; k < n; k++) a[2 * k + 1] = -a[2 * k + 1];
    if (p->kind == 1) {
        fft_pow2(a, n, p->tw);
    } else if (p->kind == 0) {
        double *o = p->work;
        for (int64_t k = 0; k < n; k++) {
            double sr = 0, si = 0;
            int64_t idx = 0;
            for (int64_t j = 0; j < n; j++) {
                double wr = p->tw[2 * idx], wi = p->tw[2 * idx + 1];
                sr += a[2 * j] * wr - a[2 * j + 1] * wi;
                si += a[2 * j] * wi + a[2 * j + 1] * wr;
                idx += k;
                if (idx >= n) idx -= n;
            }
            o[2 * k] = sr;
            o[2 * k + 1] = si;
        }
        memcpy(a, o, (size_t)n * 2 * sizeof(double));
    } else {
        int64_t m = p->m;
        double *w = p->work;
        memset(w, 0, (size_t)m * 2 * sizeof(double));
        for (int64_t j = 0; j < n; j++) {
            double cr = p->chirp[2 * j], ci = p->chirp[2 * j + 1];
            w[2 * j] = a[2 * j] * cr - a[2 * j + 1] * ci;
            w[2 * j + 1] = a[2 * j] * ci + a[2 * j + 1] * cr;
        }
        fft_pow2(w, m, p->mtw);
        for (int64_t k = 0; k < m; k++) {
            double xr = w[2 * k], xi = w[2 * k + 1], br = p->bf[2 * k], bi = p->bf[2 * k + 1];
            /* multiply, and conjugate so that the forward FFT below acts as an inverse */
            w[2 * k] = xr * br - xi * bi;
            w[2 * k + 1] = -(xr * bi + xi * br);
        }
        fft_pow2(w, m, p->mtw);
        double inv_m = 1.0 / (double)m;
        for (int64_t k = 0; k < n; k++) {
            double yr = w[2 * k] * inv_m, yi = -w[2 * k + 1] * inv_m;
            double cr = p->chirp[2 * k], ci = p->chirp[2 * k + 1];
            a[2 * k] = yr * cr - yi * ci;
            a[2 * k + 1] = yr * ci + yi * cr;
        }
    }
    if (inverse)
        for (int64_t k = 0; k < n; k++) a[2 * k + 1] = -a[2 * k + 1];
}

/* ---- DFT ------------------------------------------------------------------------- */

typedef struct dft_cfg {
    int axis;
    int64_t n;       /* transform length */
    int64_t out_len; /* along axis in the output */
    bool inverse, onesided;
} dft_cfg;

static pl_status dft_parse(pl_op_ctx *c, dft_cfg *cfg) {
    PL_TRY(pl_op_check_arity(c, 1, c->opset >= 20 ? 3 : 2));
    PL_TRY(pl_op_check_float(c, 0));
    const pl_tensor *x = c->in[0];
    if (x->ndim < 3)
        return pl_op_error(c, PL_ERR_MODEL, "input 0 has %d dims, expected at least 3", x->ndim);
    int64_t last = x->dims[x->ndim - 1];
    if (last != 1 && last != 2)
        return pl_op_error(c, PL_ERR_MODEL, "last dim of input 0 is %lld, expected 1 (real) or 2 (complex)",
                           (long long)last);
    /* Opset 17: axis attribute (default 1); opset 20: optional scalar input (default -2). */
    int64_t axis = pl_attr_int(c->node, "axis", 1);
    if (c->opset >= 20) {
        axis = -2;
        if (pl_has_in(c, 2)) {
            static const pl_dtype ints[] = {PL_I32, PL_I64, PL_UNDEF};
            PL_TRY(pl_op_check_dtype(c, 2, ints));
            double v;
            PL_TRY(pl_op_input_scalar(c, 2, &v));
            axis = pl_get_i64(c->in[2], 0);
        }
    }
    /* The last dim holds the real/imaginary parts and cannot be transformed. */
    int64_t given = axis;
    if (axis < 0) axis += x->ndim;
    if (axis < 0 || axis >= x->ndim - 1)
        return pl_op_error(c, PL_ERR_MODEL, "axis %lld is out of range for rank %d", (long long)given,
                           x->ndim);
    cfg->axis = (int)axis;
    cfg->inverse = pl_attr_int(c->node, "inverse", 0) != 0;
    cfg->onesided = pl_attr_int(c->node, "onesided", 0) != 0;
    cfg->n = x->dims[axis];
    if (pl_has_in(c, 1)) {
        static const pl_dtype ints[] = {PL_I32, PL_I64, PL_UNDEF};
        PL_TRY(pl_op_check_dtype(c, 1, ints));
        double v;
        PL_TRY(pl_op_input_scalar(c, 1, &v));
        int64_t n = pl_get_i64(c->in[1], 0);
        if (n <= 0 || n > SIG_MAX_LEN)
            return pl_op_error(c, PL_ERR_INPUT, "dft_length = %lld is not in [1, %lld]", (long long)n,
                               (long long)SIG_MAX_LEN);
        cfg->n = n;
    }
    if (cfg->n > SIG_MAX_LEN)
        return pl_op_error(c, PL_ERR_UNSUPPORTED, "transform length %lld is too long", (long long)cfg->n);
    cfg->out_len = cfg->onesided ? cfg->n / 2 + 1 : cfg->n;
    if (cfg->n == 0) cfg->out_len = 0;
    return PL_OK;
}

pl_status dft_infer(pl_op_ctx *c) {
    dft_cfg cfg;
    PL_TRY(dft_parse(c, &cfg));
    const pl_tensor *x = c->in[0];
    int64_t dims[PL_MAX_DIMS];
    memcpy(dims, x->dims, sizeof dims);
    dims[cfg.axis] = cfg.out_len;
    dims[x->ndim - 1] = 2;
    if (pl_dims_numel(x->ndim, dims) < 0) return pl_op_error(c, PL_ERR_MODEL, "output size overflows");
    pl_op_set_out(c, 0, x->dtype, x->ndim, dims);
    return PL_OK;
}

/* Reads element i of a float tensor as double (fast path for float32). */
static inline double getf(const pl_tensor *t, int64_t i) {
    if (t->dtype == PL_F32) return ((const float *)t->data)[i];
    if (t->dtype == PL_F64) return ((const double *)t->data)[i];
    return pl_get_f64(t, i);
}

static inline void setf(pl_tensor *t, int64_t i, double v) {
    if (t->dtype == PL_F32) ((float *)t->data)[i] = (float)v;
    else if (t->dtype == PL_F64) ((double *)t->data)[i] = v;
    else pl_set_f64(t, i, v);
}

pl_status dft_run(pl_op_ctx *c) {
    dft_cfg cfg;
    PL_TRY(dft_parse(c, &cfg));
    const pl_tensor *x = c->in[0];
    pl_tensor *y = c->out[0];
    if (!y) return PL_OK;
    int r = x->ndim;
    int64_t comp = x->dims[r - 1];
    int64_t len = x->dims[cfg.axis];
    int64_t outer = pl_dims_numel(cfg.axis, x->dims);
    int64_t inner = pl_dims_numel(r - 2 - cfg.axis, x->dims + cfg.axis + 1);
    if (outer <= 0 || inner <= 0 || cfg.out_len == 0) return PL_OK;
    fft_plan p;
    if (!fft_init(&p, cfg.n)) return pl_op_error(c, PL_ERR_NOMEM, "out of memory");
    double *buf = malloc((size_t)cfg.n * 2 * sizeof(double));
    if (!buf) {
        fft_free(&p);
        return pl_op_error(c, PL_ERR_NOMEM, "out of memory");
    }
    int64_t use = len < cfg.n ? len : cfg.n;
    double scale = cfg.inverse ? 1.0 / (double)cfg.n : 1.0;
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t in = 0; in < inner; in++) {
            memset(buf, 0, (size_t)cfg.n * 2 * sizeof(double));
            for (int64_t k = 0; k < use; k++) {
                int64_t base = ((o * len + k) * inner + in) * comp;
                buf[2 * k] = getf(x, base);
                if (comp == 2) buf[2 * k + 1] = getf(x, base + 1);
            }
            fft_exec(&p, buf, cfg.inverse);
            for (int64_t k = 0; k < cfg.out_len; k++) {
                int64_t base = ((o * cfg.out_len + k) * inner + in) * 2;
                setf(y, base, buf[2 * k] * scale);
                setf(y, base + 1, buf[2 * k + 1] * scale);
            }
        }
    }
    free(buf);
    fft_free(&p);
    return PL_OK;
}

/* ---- STFT ------------------------------------------------------------------------ */

typedef struct stft_cfg {
    int64_t step, n, frames, bins;
} stft_cfg;

static pl_status stft_parse(pl_op_ctx *c, stft_cfg *cfg) {
    PL_TRY(pl_op_check_arity(c, 2, 4));
    PL_TRY(pl_op_check_float(c, 0));
    PL_TRY(pl_op_check_float(c, 2));
    const pl_tensor *s = c->in[0];
    if (s->ndim != 3)
        return pl_op_error(c, PL_ERR_MODEL, "input 0 (signal) has %d dims, expected 3", s->ndim);
    if (s->dims[2] != 1 && s->dims[2] != 2)
        return pl_op_error(c, PL_ERR_MODEL, "last dim of signal is %lld, expected 1 or 2",
                           (long long)s->dims[2]);
    int64_t n = -1, wlen = -1;
    if (pl_has_in(c, 2)) {
        if (c->in[2]->ndim != 1)
            return pl_op_error(c, PL_ERR_MODEL, "input 2 (window) has %d dims, expected 1", c->in[2]->ndim);
        wlen = c->in[2]->dims[0];
    }
    static const pl_dtype ints[] = {PL_I32, PL_I64, PL_UNDEF};
    PL_TRY(pl_op_check_dtype(c, 1, ints));
    PL_TRY(pl_op_check_dtype(c, 3, ints));
    double v;
    if (pl_has_in(c, 3)) {
        PL_TRY(pl_op_input_scalar(c, 3, &v));
        n = pl_get_i64(c->in[3], 0);
        if (wlen >= 0 && wlen != n)
            return pl_op_error(c, PL_ERR_INPUT, "window has %lld values but frame_length is %lld",
                               (long long)wlen, (long long)n);
    } else {
        n = wlen;
    }
    if (n < 0 && !pl_has_in(c, 2))
        return pl_op_error(c, PL_ERR_MODEL, "needs a window or a frame_length");
    if (n <= 0 || n > SIG_MAX_LEN)
        return pl_op_error(c, PL_ERR_INPUT, "frame length %lld is not in [1, %lld]", (long long)n,
                           (long long)SIG_MAX_LEN);
    PL_TRY(pl_op_input_scalar(c, 1, &v));
    int64_t step = pl_get_i64(c->in[1], 0);
    if (step <= 0) return pl_op_error(c, PL_ERR_INPUT, "frame_step = %lld is not positive", (long long)step);
    int64_t L = s->dims[1];
    cfg->step = step;
    cfg->n = n;
    cfg->frames = L < n ? 0 : (L - n) / step + 1;
    bool onesided = pl_attr_int(c->node, "onesided", 1) != 0;
    cfg->bins = onesided ? n / 2 + 1 : n;
    return PL_OK;
}

pl_status stft_infer(pl_op_ctx *c) {
    stft_cfg cfg;
    PL_TRY(stft_parse(c, &cfg));
    int64_t dims[4] = {c->in[0]->dims[0], cfg.frames, cfg.bins, 2};
    if (pl_dims_numel(4, dims) < 0) return pl_op_error(c, PL_ERR_MODEL, "output size overflows");
    pl_op_set_out(c, 0, c->in[0]->dtype, 4, dims);
    return PL_OK;
}

pl_status stft_run(pl_op_ctx *c) {
    stft_cfg cfg;
    PL_TRY(stft_parse(c, &cfg));
    const pl_tensor *s = c->in[0], *win = pl_has_in(c, 2) ? c->in[2] : NULL;
    pl_tensor *y = c->out[0];
    if (!y || cfg.frames == 0 || s->dims[0] == 0) return PL_OK;
    int64_t B = s->dims[0], L = s->dims[1], comp = s->dims[2], n = cfg.n;
    fft_plan p;
    if (!fft_init(&p, n)) return pl_op_error(c, PL_ERR_NOMEM, "out of memory");
    double *buf = malloc((size_t)n * 2 * sizeof(double));
    if (!buf) {
        fft_free(&p);
        return pl_op_error(c, PL_ERR_NOMEM, "out of memory");
    }
    for (int64_t b = 0; b < B; b++) {
        for (int64_t f = 0; f < cfg.frames; f++) {
            int64_t start = f * cfg.step;
            for (int64_t k = 0; k < n; k++) {
                int64_t base = (b * L + start + k) * comp;
                double w = win ? getf(win, k) : 1.0;
                buf[2 * k] = getf(s, base) * w;
                buf[2 * k + 1] = comp == 2 ? getf(s, base + 1) * w : 0.0;
            }
            fft_exec(&p, buf, false);
            for (int64_t k = 0; k < cfg.bins; k++) {
                int64_t o = ((b * cfg.frames + f) * cfg.bins + k) * 2;
                setf(y, o, buf[2 * k]);
                setf(y, o + 1, buf[2 * k + 1]);
            }
        }
    }
    free(buf);
    fft_free(&p);
    return PL_OK;
}

/* ---- windows --------------------------------------------------------------------- */

static pl_status output_dtype(pl_op_ctx *c, pl_dtype *t) {
    int64_t v = pl_attr_int(c->node, "output_datatype", PL_F32);
    pl_dtype d = (pl_dtype)v;
    if (v < 0 || v > 16 || !(pl_dtype_is_float(d) || pl_dtype_is_int(d)))
        return pl_op_error(c, PL_ERR_UNSUPPORTED, "attribute 'output_datatype' = %lld is not supported",
                           (long long)v);
    *t = d;
    return PL_OK;
}

static pl_status window_size(pl_op_ctx *c, int64_t *size) {
    PL_TRY(pl_op_check_arity(c, 1, 1));
    static const pl_dtype ints[] = {PL_I32, PL_I64, PL_UNDEF};
    PL_TRY(pl_op_check_dtype(c, 0, ints));
    double v;
    PL_TRY(pl_op_input_scalar(c, 0, &v));
    *size = pl_get_i64(c->in[0], 0);
    if (*size < 0 || *size > SIG_MAX_LEN)
        return pl_op_error(c, PL_ERR_INPUT, "window size %lld is not in [0, %lld]", (long long)*size,
                           (long long)SIG_MAX_LEN);
    return PL_OK;
}

pl_status window_infer(pl_op_ctx *c) {
    int64_t size;
    pl_dtype t;
    PL_TRY(window_size(c, &size));
    PL_TRY(output_dtype(c, &t));
    pl_op_set_out(c, 0, t, 1, &size);
    return PL_OK;
}

/* Hann, Hamming and Blackman are generalised cosine windows
 * a0 - a1 cos(2 pi k / N) + a2 cos(4 pi k / N), with N = size (periodic) or size - 1. */
pl_status window_run(pl_op_ctx *c) {
    int64_t size;
    pl_dtype t;
    PL_TRY(window_size(c, &size));
    PL_TRY(output_dtype(c, &t));
    pl_tensor *y = c->out[0];
    if (!y) return PL_OK;
    const char *op = c->node->op_type;
    double a0, a1, a2 = 0;
    if (strcmp(op, "HannWindow") == 0) {
        a0 = 0.5;
        a1 = 0.5;
    } else if (strcmp(op, "HammingWindow") == 0) {
        a0 = 25.0 / 46.0;
        a1 = 1.0 - a0;
    } else {
        a0 = 0.42;
        a1 = 0.5;
        a2 = 0.08;
    }
    bool periodic = pl_attr_int(c->node, "periodic", 1) != 0;
    int64_t N = periodic ? size : size - 1;
    for (int64_t k = 0; k < size; k++) {
        double v;
        if (N <= 0) {
            v = 1.0; /* a one-point symmetric window */
        } else {
            double a = 2.0 * SIG_PI * (double)k / (double)N;
            v = a0 - a1 * cos(a) + a2 * cos(2.0 * a);
        }
        setf(y, k, v);
    }
    return PL_OK;
}

/* ---- MelWeightMatrix ------------------------------------------------------------- */

typedef struct mel_cfg {
    int64_t nmel, dft, rate;
    double lo, hi;
} mel_cfg;

static pl_status mel_parse(pl_op_ctx *c, mel_cfg *m) {
    PL_TRY(pl_op_check_arity(c, 5, 5));
    static const pl_dtype ints[] = {PL_I32, PL_I64, PL_UNDEF};
    for (int i = 0; i < 3; i++) PL_TRY(pl_op_check_dtype(c, i, ints));
    PL_TRY(pl_op_check_float(c, 3));
    PL_TRY(pl_op_check_float(c, 4));
    double v[5];
    for (int i = 0; i < 5; i++) PL_TRY(pl_op_input_scalar(c, i, &v[i]));
    m->nmel = pl_get_i64(c->in[0], 0);
    m->dft = pl_get_i64(c->in[1], 0);
    m->rate = pl_get_i64(c->in[2], 0);
    m->lo = v[3];
    m->hi = v[4];
    if (m->nmel < 0 || m->nmel > SIG_MAX_LEN)
        return pl_op_error(c, PL_ERR_INPUT, "num_mel_bins = %lld is out of range", (long long)m->nmel);
    if (m->dft <= 0 || m->dft > SIG_MAX_LEN)
        return pl_op_error(c, PL_ERR_INPUT, "dft_length = %lld is out of range", (long long)m->dft);
    if (m->rate <= 0)
        return pl_op_error(c, PL_ERR_INPUT, "sample_rate = %lld is not positive", (long long)m->rate);
    if (!(m->lo >= 0) || !(m->hi >= m->lo) || !isfinite(m->hi))
        return pl_op_error(c, PL_ERR_INPUT, "edge frequencies %g..%g are not valid", m->lo, m->hi);
    int64_t dims[2] = {m->dft / 2 + 1, m->nmel};
    if (pl_dims_numel(2, dims) < 0 || dims[0] * dims[1] > ((int64_t)1 << 32))
        return pl_op_error(c, PL_ERR_INPUT, "output would be too large");
    return PL_OK;
}

pl_status mel_infer(pl_op_ctx *c) {
    mel_cfg m;
    pl_dtype t;
    PL_TRY(mel_parse(c, &m));
    PL_TRY(output_dtype(c, &t));
    int64_t dims[2] = {m.dft / 2 + 1, m.nmel};
    pl_op_set_out(c, 0, t, 2, dims);
    return PL_OK;
}

/* Triangular filters with peaks of 1, centred on num_mel_bins + 2 points spaced evenly
 * on the mel scale (mel = 2595 log10(1 + f / 700)) and snapped down to DFT bins; this
 * matches the operator's reference definition. */
pl_status mel_run(pl_op_ctx *c) {
    mel_cfg m;
    pl_dtype t;
    PL_TRY(mel_parse(c, &m));
    PL_TRY(output_dtype(c, &t));
    pl_tensor *y = c->out[0];
    if (!y || m.nmel == 0) return PL_OK;
    int64_t nbins = m.dft / 2 + 1, nm = m.nmel;
    int64_t *fb = malloc((size_t)(nm + 2) * sizeof(int64_t));
    double *w = calloc((size_t)(nbins * nm), sizeof(double));
    if (!fb || !w) {
        free(fb);
        free(w);
        return pl_op_error(c, PL_ERR_NOMEM, "out of memory");
    }
    double lo_mel = 2595.0 * log10(1.0 + m.lo / 700.0);
    double hi_mel = 2595.0 * log10(1.0 + m.hi / 700.0);
    double step = (hi_mel - lo_mel) / (double)(nm + 2);
    for (int64_t i = 0; i < nm + 2; i++) {
        double hz = 700.0 * (pow(10.0, ((double)i * step + lo_mel) / 2595.0) - 1.0);
        double b = floor((double)(m.dft + 1) * hz / (double)m.rate);
        fb[i] = b > (double)INT32_MAX ? INT32_MAX : (int64_t)b;
    }
    for (int64_t i = 0; i < nm; i++) {
        int64_t lo = fb[i], ce = fb[i + 1], hi = fb[i + 2];
        if (ce == lo) {
            if (ce >= 0 && ce < nbins) w[ce * nm + i] = 1.0;
        } else {
            for (int64_t j = lo < 0 ? 0 : lo; j <= ce && j < nbins; j++)
                w[j * nm + i] = (double)(j - lo) / (double)(ce - lo);
        }
        if (hi > ce)
            for (int64_t j = ce < 0 ? 0 : ce; j < hi && j < nbins; j++)
                w[j * nm + i] = (double)(hi - j) / (double)(hi - ce);
    }
    for (int64_t k = 0; k < nbins * nm; k++) setf(y, k, w[k]);
    free(fb);
    free(w);
    return PL_OK;
}
