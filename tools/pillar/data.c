/* data.c -- training data for `pillar train`: IDX and .npy files, data-set directories,
 * held-out splits and limits, with messages that name the file and the record.
 *
 * IDX (the MNIST format): a magic of two zero bytes, a type byte (0x08 uint8, 0x09
 * int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64) and a rank byte, then one
 * big-endian uint32 per dimension, then the big-endian data. Files are read through
 * zlib's gzread, which reads gzipped and plain files alike. */
#include "data.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "cli.h"

/* Largest data we accept from a header before reading it (a corrupt or hostile
 * header must not make us allocate without bound). */
#define TD_MAX_BYTES ((int64_t)16 << 30)

static int td_err(char *err, size_t n, int code, const char *fmt, ...) CLI_PRINTF(4, 5);
static int td_err(char *err, size_t n, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
    return code;
}

uint64_t td_rand(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void td_permutation(int64_t *perm, int64_t n, uint64_t seed) {
    uint64_t st = seed;
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        /* unbiased enough: n < 2^40, the modulo bias is below 2^-24 */
        int64_t j = (int64_t)(td_rand(&st) % (uint64_t)(i + 1));
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

void td_array_free(td_array *a) {
    free(a->f);
    free(a->i);
    memset(a, 0, sizeof *a);
}

static const char *dims_text(char *buf, size_t n, int ndim, const int64_t *dims) {
    return cli_dims_str(buf, n, ndim, dims, NULL);
}

/* ---------------------------------------------------------------- IDX */

static size_t idx_elem_size(int type) {
    switch (type) {
    case 0x08: case 0x09: return 1;
    case 0x0B: return 2;
    case 0x0C: case 0x0D: return 4;
    case 0x0E: return 8;
    default: return 0;
    }
}

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Reads up to n bytes; returns the count (short at the end of the data, also when a
 * gzip stream ends early), or -1 on another error (message in err). */
static int64_t gz_read_all(gzFile g, void *buf, int64_t n, const char *path, char *err, size_t err_n) {
    int64_t got = 0;
    while (got < n) {
        int64_t chunk = n - got > (1 << 30) ? (1 << 30) : n - got;
        int r = gzread(g, (char *)buf + got, (unsigned)chunk);
        if (r < 0) {
            int zerr = 0;
            const char *msg = gzerror(g, &zerr);
            /* a gzip stream cut short: report it as a truncated file, by record */
            if (zerr == Z_BUF_ERROR) break;
            if (zerr == Z_ERRNO) msg = strerror(errno);
            td_err(err, err_n, CLI_INPUT, "%s: cannot read: %s (corrupt gzip data?)", path, msg ? msg : "error");
            return -1;
        }
        if (r == 0) break;
        got += r;
    }
    return got;
}

static int read_idx(const char *path, bool want_ints, td_array *a, char *err, size_t err_n) {
    errno = 0;
    gzFile g = gzopen(path, "rb");
    if (!g) return td_err(err, err_n, CLI_INPUT, "%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
    gzbuffer(g, 1 << 18);
    int rc = CLI_OK;
    unsigned char head[4 + 4 * 8];
    int64_t got = gz_read_all(g, head, 4, path, err, err_n);
    if (got < 0) {
        rc = CLI_INPUT;
        goto done;
    }
    if (got < 4) {
        rc = td_err(err, err_n, CLI_INPUT, "%s: %s, not an IDX or .npy file", path,
                    got == 0 ? "empty file" : "truncated header");
        goto done;
    }
    int type = head[2], ndim = head[3];
    size_t esz = idx_elem_size(type);
    if (head[0] != 0 || head[1] != 0 || esz == 0 || ndim < 1 || ndim > 8) {
        rc = td_err(err, err_n, CLI_INPUT,
                    "%s: wrong magic number 0x%02x%02x%02x%02x: not an IDX file (expected 0x0000TTNN: "
                    "type 08/09/0B/0C/0D/0E, 1 to 8 dimensions) nor a .npy file",
                    path, head[0], head[1], head[2], head[3]);
        goto done;
    }
    got = gz_read_all(g, head + 4, 4 * ndim, path, err, err_n);
    if (got < 0) {
        rc = CLI_INPUT;
        goto done;
    }
    if (got < 4 * ndim) {
        rc = td_err(err, err_n, CLI_INPUT, "%s: truncated header: %d dimensions declared, the file ends after %lld bytes",
                    path, ndim, (long long)(4 + got));
        goto done;
    }
    a->ndim = ndim;
    int64_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        a->dims[d] = be32(head + 4 + 4 * d);
        if (a->dims[d] > 0 && numel > TD_MAX_BYTES / (int64_t)esz / a->dims[d]) {
            char sh[128];
            rc = td_err(err, err_n, CLI_INPUT, "%s: the header declares a %s array, more than %lld GiB: corrupt header?",
                        path, dims_text(sh, sizeof sh, ndim, a->dims), (long long)(TD_MAX_BYTES >> 30));
            goto done;
        }
        numel *= a->dims[d];
    }
    a->numel = numel;
    a->is_uint8 = type == 0x08;
    a->is_float = type == 0x0D || type == 0x0E;
    int64_t bytes = numel * (int64_t)esz;
    unsigned char *raw = malloc((size_t)(bytes ? bytes : 1));
    a->f = malloc((size_t)(numel ? numel : 1) * sizeof(float));
    if (want_ints && !a->is_float) a->i = malloc((size_t)(numel ? numel : 1) * sizeof(int64_t));
    if (!raw || !a->f || (want_ints && !a->is_float && !a->i)) {
        free(raw);
        rc = td_err(err, err_n, CLI_OTHER, "%s: out of memory for %lld values", path, (long long)numel);
        goto done;
    }
    got = gz_read_all(g, raw, bytes, path, err, err_n);
    if (got < 0) {
        free(raw);
        rc = CLI_INPUT;
        goto done;
    }
    if (got < bytes) {
        int64_t rec_bytes = a->dims[0] ? bytes / a->dims[0] : bytes;
        int64_t rec = rec_bytes ? got / rec_bytes : 0;
        rc = td_err(err, err_n, CLI_INPUT,
                    "%s: truncated: record %lld of %lld is incomplete (the header declares %lld bytes of data, the file has %lld)",
                    path, (long long)rec, (long long)a->dims[0], (long long)bytes, (long long)got);
        free(raw);
        goto done;
    }
    unsigned char extra;
    got = gz_read_all(g, &extra, 1, path, err, err_n);
    if (got != 0) {
        free(raw);
        if (got > 0)
            rc = td_err(err, err_n, CLI_INPUT,
                        "%s: the file has data after its %lld declared records: wrong header or not an IDX file?", path,
                        (long long)a->dims[0]);
        else
            rc = CLI_INPUT;
        goto done;
    }
    for (int64_t k = 0; k < numel; k++) {
        const unsigned char *p = raw + k * (int64_t)esz;
        int64_t iv = 0;
        float fv = 0;
        switch (type) {
        case 0x08: iv = p[0]; break;
        case 0x09: iv = (int8_t)p[0]; break;
        case 0x0B: iv = (int16_t)(uint16_t)(p[0] << 8 | p[1]); break;
        case 0x0C: iv = (int32_t)be32(p); break;
        case 0x0D: {
            uint32_t u = be32(p);
            memcpy(&fv, &u, 4);
            break;
        }
        case 0x0E: {
            uint64_t u = (uint64_t)be32(p) << 32 | be32(p + 4);
            double dv;
            memcpy(&dv, &u, 8);
            fv = (float)dv;
            break;
        }
        }
        if (!a->is_float) fv = (float)iv;
        a->f[k] = fv;
        if (a->i) a->i[k] = iv;
    }
    free(raw);
done:
    gzclose(g);
    if (rc != CLI_OK) td_array_free(a);
    return rc;
}

/* ---------------------------------------------------------------- .npy */

static int read_npy(const char *path, bool want_ints, td_array *a, char *err, size_t err_n) {
    pillar_tensor *t = NULL;
    pillar_status s = pillar_tensor_load_npy(path, &t);
    if (s != PILLAR_OK) {
        const char *msg = pillar_last_error();
        int code = s == PILLAR_ERR_NOMEM ? CLI_OTHER : CLI_INPUT;
        if (msg && strstr(msg, path)) return td_err(err, err_n, code, "%s", msg);
        return td_err(err, err_n, code, "%s: %s", path, msg && *msg ? msg : pillar_status_name(s));
    }
    pillar_dtype dt = pillar_tensor_dtype(t);
    size_t nd = pillar_tensor_ndim(t);
    if (dt == PILLAR_STRING || dt == PILLAR_UNDEFINED) {
        pillar_tensor_destroy(t);
        return td_err(err, err_n, CLI_INPUT, "%s: %s arrays cannot be used as training data", path, pillar_dtype_name(dt));
    }
    if (nd == 0) {
        pillar_tensor_destroy(t);
        return td_err(err, err_n, CLI_INPUT, "%s: a scalar, expected an array with one record per row", path);
    }
    a->ndim = (int)nd;
    memcpy(a->dims, pillar_tensor_dims(t), nd * sizeof(int64_t));
    a->numel = pillar_tensor_numel(t);
    a->is_uint8 = dt == PILLAR_UINT8;
    a->is_float = dt == PILLAR_FLOAT32 || dt == PILLAR_FLOAT64 || dt == PILLAR_FLOAT16 || dt == PILLAR_BFLOAT16;
    a->f = malloc((size_t)(a->numel ? a->numel : 1) * sizeof(float));
    if (want_ints && !a->is_float) a->i = malloc((size_t)(a->numel ? a->numel : 1) * sizeof(int64_t));
    if (!a->f || (want_ints && !a->is_float && !a->i)) {
        pillar_tensor_destroy(t);
        td_array_free(a);
        return td_err(err, err_n, CLI_OTHER, "%s: out of memory for %lld values", path, (long long)a->numel);
    }
    const void *d = pillar_tensor_data(t);
    if (dt == PILLAR_FLOAT32) {
        memcpy(a->f, d, (size_t)a->numel * sizeof(float));
    } else {
        for (int64_t k = 0; k < a->numel; k++) a->f[k] = (float)cli_elem_f64(dt, d, k);
    }
    if (a->i) {
        for (int64_t k = 0; k < a->numel; k++) {
            switch (dt) {
            case PILLAR_INT64: a->i[k] = ((const int64_t *)d)[k]; break;
            case PILLAR_UINT64: {
                uint64_t u = ((const uint64_t *)d)[k];
                a->i[k] = u > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)u;
                break;
            }
            default: a->i[k] = (int64_t)cli_elem_f64(dt, d, k); break;
            }
        }
    }
    pillar_tensor_destroy(t);
    return CLI_OK;
}

int td_read_array(const char *path, bool want_ints, td_array *a, char *err, size_t err_n) {
    memset(a, 0, sizeof *a);
    struct stat st;
    if (stat(path, &st) != 0) return td_err(err, err_n, CLI_INPUT, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) return td_err(err, err_n, CLI_INPUT, "%s: is a directory, expected a data file", path);
    FILE *f = fopen(path, "rb");
    if (!f) return td_err(err, err_n, CLI_INPUT, "%s: cannot open: %s", path, strerror(errno));
    unsigned char magic[6] = {0};
    size_t n = fread(magic, 1, 6, f);
    fclose(f);
    if (n == 6 && memcmp(magic, "\x93NUMPY", 6) == 0) return read_npy(path, want_ints, a, err, err_n);
    return read_idx(path, want_ints, a, err, err_n);
}

/* ---------------------------------------------------------------- sets */

static void set_free(td_set *s) {
    free(s->x);
    free(s->y);
    free(s->yf);
    memset(s, 0, sizeof *s);
}

void td_free(td_data *d) {
    set_free(&d->train);
    set_free(&d->test);
}

/* Builds a set from an examples file and a labels file (both already checked to
 * exist). Takes the arrays' buffers. */
static int make_set(const char *xpath, const char *ypath, td_set *s, char *err, size_t err_n) {
    td_array xa, ya;
    int rc = td_read_array(xpath, false, &xa, err, err_n);
    if (rc) return rc;
    if ((rc = td_read_array(ypath, true, &ya, err, err_n))) {
        td_array_free(&xa);
        return rc;
    }
    memset(s, 0, sizeof *s);
    snprintf(s->xpath, sizeof s->xpath, "%s", xpath);
    snprintf(s->ypath, sizeof s->ypath, "%s", ypath);
    char sh[128];
    if (xa.dims[0] != ya.dims[0]) {
        rc = td_err(err, err_n, CLI_INPUT, "%s has %lld records but %s has %lld: the examples and labels disagree in number",
                    xpath, (long long)xa.dims[0], ypath, (long long)ya.dims[0]);
        goto fail;
    }
    if (xa.dims[0] == 0) {
        rc = td_err(err, err_n, CLI_INPUT, "%s: no records (shape %s)", xpath, dims_text(sh, sizeof sh, xa.ndim, xa.dims));
        goto fail;
    }
    s->n = xa.dims[0];
    s->feat = xa.numel / s->n;
    s->ex_ndim = xa.ndim - 1;
    memcpy(s->ex_dims, xa.dims + 1, (size_t)s->ex_ndim * sizeof(int64_t));
    if (s->feat == 0) {
        rc = td_err(err, err_n, CLI_INPUT, "%s: records are empty (shape %s)", xpath, dims_text(sh, sizeof sh, xa.ndim, xa.dims));
        goto fail;
    }
    if (xa.is_uint8)
        for (int64_t k = 0; k < xa.numel; k++) xa.f[k] *= 1.0f / 255.0f;
    for (int64_t k = 0; k < xa.numel; k++) {
        if (!isfinite(xa.f[k])) {
            rc = td_err(err, err_n, CLI_INPUT, "%s: record %lld holds a non-finite value (%g)", xpath,
                        (long long)(k / s->feat), (double)xa.f[k]);
            goto fail;
        }
    }
    s->x = xa.f;
    xa.f = NULL;
    s->tdim = ya.numel / s->n;
    if (s->tdim == 0) {
        rc = td_err(err, err_n, CLI_INPUT, "%s: labels are empty (shape %s)", ypath, dims_text(sh, sizeof sh, ya.ndim, ya.dims));
        goto fail;
    }
    if (ya.is_float) {
        for (int64_t k = 0; k < ya.numel; k++)
            if (!isfinite(ya.f[k])) {
                rc = td_err(err, err_n, CLI_INPUT, "%s: record %lld holds a non-finite value (%g)", ypath,
                            (long long)(k / s->tdim), (double)ya.f[k]);
                goto fail;
            }
        s->yf = ya.f;
        ya.f = NULL;
        /* float labels that are all whole numbers also serve as class indices */
        bool integral = s->tdim == 1;
        for (int64_t k = 0; integral && k < ya.numel; k++)
            integral = s->yf[k] == floorf(s->yf[k]) && fabsf(s->yf[k]) < 16777216.0f;
        if (integral) {
            s->y = malloc((size_t)s->n * sizeof(int64_t));
            if (!s->y) {
                rc = td_err(err, err_n, CLI_OTHER, "out of memory");
                goto fail;
            }
            for (int64_t k = 0; k < s->n; k++) s->y[k] = (int64_t)s->yf[k];
        }
    } else {
        if (s->tdim != 1) {
            rc = td_err(err, err_n, CLI_INPUT,
                        "%s: integer labels of shape %s: expected one class index per record (shape [%lld])", ypath,
                        dims_text(sh, sizeof sh, ya.ndim, ya.dims), (long long)s->n);
            goto fail;
        }
        s->y = ya.i;
        ya.i = NULL;
        /* also as float targets (for --loss mse with a regression target) */
        s->yf = ya.f;
        ya.f = NULL;
    }
    td_array_free(&xa);
    td_array_free(&ya);
    return CLI_OK;
fail:
    td_array_free(&xa);
    td_array_free(&ya);
    set_free(s);
    return rc;
}

static bool is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && !S_ISDIR(st.st_mode);
}

/* Finds "<prefix>-images-idx3-ubyte" in dir under the usual spellings (with '-' or '.'
 * before idx, gzipped or not). */
static bool find_idx(const char *dir, const char *prefix, const char *kind, char *out, size_t n) {
    /* kind is "images-idx3" / "labels-idx1"; the other spelling is "images.idx3" */
    const char *dash = strchr(kind, '-');
    int head = (int)(dash - kind);
    for (int i = 0; i < 4; i++) {
        snprintf(out, n, "%s/%s-%.*s%c%s-ubyte%s", dir, prefix, head, kind, i < 2 ? '-' : '.', dash + 1,
                 i % 2 ? ".gz" : "");
        if (is_file(out)) return true;
    }
    return false;
}

/* A directory in the MNIST layout: train-* (required) and t10k-* (optional). */
static int load_dir(const char *dir, td_set *train, td_set *test, bool *has_test, char *err, size_t err_n) {
    char xi[1000], yi[1000];
    if (!find_idx(dir, "train", "images-idx3", xi, sizeof xi))
        return td_err(err, err_n, CLI_INPUT, "%s: no train-images-idx3-ubyte[.gz] in this directory (MNIST layout expected)", dir);
    if (!find_idx(dir, "train", "labels-idx1", yi, sizeof yi))
        return td_err(err, err_n, CLI_INPUT, "%s: no train-labels-idx1-ubyte[.gz] in this directory (MNIST layout expected)", dir);
    int rc = make_set(xi, yi, train, err, err_n);
    if (rc) return rc;
    *has_test = false;
    if (!test) return CLI_OK;
    bool ti = find_idx(dir, "t10k", "images-idx3", xi, sizeof xi), tl = find_idx(dir, "t10k", "labels-idx1", yi, sizeof yi);
    if (ti != tl) {
        set_free(train);
        return td_err(err, err_n, CLI_INPUT, "%s: has t10k-%s but no t10k-%s", dir, ti ? "images" : "labels", ti ? "labels" : "images");
    }
    if (ti) {
        if ((rc = make_set(xi, yi, test, err, err_n))) {
            set_free(train);
            return rc;
        }
        *has_test = true;
    }
    return CLI_OK;
}

/* "X,Y" -> two paths. */
static bool split_pair(const char *s, char *x, char *y, size_t n) {
    const char *c = strchr(s, ',');
    if (!c || strchr(c + 1, ',') || c == s || !c[1]) return false;
    snprintf(x, n, "%.*s", (int)(c - s), s);
    snprintf(y, n, "%s", c + 1);
    return true;
}

static int load_source(const char *what, const char *spec, td_set *s, td_set *test, bool *has_test, char *where,
                       size_t where_n, char *err, size_t err_n) {
    char x[1000], y[1000];
    *has_test = false;
    const char *dir = NULL;
    if (strcmp(spec, "fashion-mnist") == 0 || strcmp(spec, "mnist") == 0) {
        dir = strcmp(spec, "fashion-mnist") == 0 ? "/usr/share/datasets/fashion-mnist" : "/usr/share/datasets/mnist";
        if (!is_dir(dir)) {
            if (spec[0] == 'f')
                return td_err(err, err_n, CLI_INPUT, "%s fashion-mnist: %s not found (install Debian's dataset-fashion-mnist)",
                              what, dir);
            return td_err(err, err_n, CLI_INPUT, "%s mnist: %s not found (give the directory holding the MNIST IDX files)", what,
                          dir);
        }
        snprintf(where, where_n, "%s (%s)", spec, dir);
    } else if (strchr(spec, ',')) {
        if (!split_pair(spec, x, y, sizeof x))
            return td_err(err, err_n, CLI_INPUT, "%s '%s': expected two files EXAMPLES,LABELS", what, spec);
        snprintf(where, where_n, "%s + %s", x, y);
        return make_set(x, y, s, err, err_n);
    } else if (is_dir(spec)) {
        dir = spec;
        snprintf(where, where_n, "%s", dir);
    } else {
        struct stat st;
        if (stat(spec, &st) != 0)
            return td_err(err, err_n, CLI_INPUT,
                          "%s '%s': no such directory or data set (use fashion-mnist, mnist, a directory of IDX files, "
                          "or EXAMPLES,LABELS files)",
                          what, spec);
        return td_err(err, err_n, CLI_INPUT, "%s '%s': a single file; give EXAMPLES,LABELS (e.g. X.npy,y.npy)", what, spec);
    }
    return load_dir(dir, s, test, has_test, err, err_n);
}

int td_check_labels(const td_set *s, int64_t classes, char *err, size_t err_n) {
    if (!s->y)
        return td_err(err, err_n, CLI_INPUT, "%s: labels are not whole numbers: class indices expected (or use --loss mse)",
                      s->ypath);
    for (int64_t k = 0; k < s->n; k++) {
        if (s->y[k] < 0 || s->y[k] >= classes)
            return td_err(err, err_n, CLI_INPUT, "%s: record %lld: label %lld is out of range for the model's %lld classes (0 to %lld)",
                          s->ypath, (long long)k, (long long)s->y[k], (long long)classes,
                          (long long)classes - 1);
    }
    return CLI_OK;
}

/* Keeps the records perm[from..to) of src in dst (copies). */
static int subset(const td_set *src, const int64_t *perm, int64_t from, int64_t to, td_set *dst) {
    memset(dst, 0, sizeof *dst);
    snprintf(dst->xpath, sizeof dst->xpath, "%s", src->xpath);
    snprintf(dst->ypath, sizeof dst->ypath, "%s", src->ypath);
    dst->n = to - from;
    dst->feat = src->feat;
    dst->tdim = src->tdim;
    dst->ex_ndim = src->ex_ndim;
    memcpy(dst->ex_dims, src->ex_dims, sizeof dst->ex_dims);
    size_t n = (size_t)(dst->n ? dst->n : 1);
    dst->x = malloc(n * (size_t)src->feat * sizeof(float));
    if (src->y) dst->y = malloc(n * sizeof(int64_t));
    if (src->yf) dst->yf = malloc(n * (size_t)src->tdim * sizeof(float));
    if (!dst->x || (src->y && !dst->y) || (src->yf && !dst->yf)) {
        set_free(dst);
        return CLI_OTHER;
    }
    for (int64_t k = 0; k < dst->n; k++) {
        int64_t r = perm ? perm[from + k] : from + k;
        memcpy(dst->x + k * src->feat, src->x + r * src->feat, (size_t)src->feat * sizeof(float));
        if (src->y) dst->y[k] = src->y[r];
        if (src->yf) memcpy(dst->yf + k * src->tdim, src->yf + r * src->tdim, (size_t)src->tdim * sizeof(float));
    }
    return CLI_OK;
}

/* Cuts a set down to its first n records (in place). */
static void truncate_set(td_set *s, int64_t n) {
    if (n <= 0 || n >= s->n) return;
    s->n = n; /* the buffers keep their size; only the count matters */
}

int td_load(const td_spec *spec, td_data *out, char *err, size_t err_n) {
    memset(out, 0, sizeof *out);
    char where[2100] = "", twhere[2100] = "";
    bool has_test = false, dummy = false;
    int rc = load_source("--data", spec->data, &out->train, spec->test ? NULL : &out->test, &has_test, where, sizeof where,
                         err, err_n);
    if (rc) return rc;
    if (spec->test) {
        rc = load_source("--test", spec->test, &out->test, NULL, &dummy, twhere, sizeof twhere, err, err_n);
        if (rc) {
            td_free(out);
            return rc;
        }
        has_test = true;
    }
    if (spec->classes > 0) {
        /* before any split or limit, so that record numbers are those of the files */
        rc = td_check_labels(&out->train, spec->classes, err, err_n);
        if (!rc && has_test) rc = td_check_labels(&out->test, spec->classes, err, err_n);
        if (rc) {
            td_free(out);
            return rc;
        }
    }
    if (has_test && out->test.feat != out->train.feat) {
        rc = td_err(err, err_n, CLI_INPUT, "%s has %lld values per record but %s has %lld: the training and test sets disagree",
                    out->train.xpath, (long long)out->train.feat, out->test.xpath, (long long)out->test.feat);
        td_free(out);
        return rc;
    }
    if (has_test && out->test.tdim != out->train.tdim) {
        rc = td_err(err, err_n, CLI_INPUT, "%s has %lld values per label but %s has %lld: the training and test sets disagree",
                    out->train.ypath, (long long)out->train.tdim, out->test.ypath, (long long)out->test.tdim);
        td_free(out);
        return rc;
    }
    const char *split_note = "";
    if (!has_test && spec->holdout > 0) {
        /* a seeded shuffle, then the last `holdout` fraction is held out */
        td_set all = out->train;
        int64_t nt = (int64_t)llround(spec->holdout * (double)all.n);
        if (nt < 1) nt = 1;
        if (nt >= all.n) {
            rc = td_err(err, err_n, CLI_INPUT, "%s: %lld records are too few to hold out %.0f%% for testing", all.xpath,
                        (long long)all.n, spec->holdout * 100);
            td_free(out);
            return rc;
        }
        int64_t *perm = malloc((size_t)all.n * sizeof(int64_t));
        if (!perm) {
            td_free(out);
            return td_err(err, err_n, CLI_OTHER, "out of memory");
        }
        td_permutation(perm, all.n, spec->seed ^ 0x5eed5eed5eed5eedull);
        td_set tr, te;
        rc = subset(&all, perm, 0, all.n - nt, &tr);
        if (!rc) {
            rc = subset(&all, perm, all.n - nt, all.n, &te);
            if (rc) set_free(&tr);
        }
        free(perm);
        set_free(&all);
        memset(&out->train, 0, sizeof out->train);
        if (rc) return td_err(err, err_n, CLI_OTHER, "out of memory");
        out->train = tr;
        out->test = te;
        split_note = " (held out at random)";
    }
    truncate_set(&out->train, spec->limit);
    truncate_set(&out->test, spec->test_limit);
    int k = snprintf(out->desc, sizeof out->desc, "%s: %lld training examples", where, (long long)out->train.n);
    if (k > 0 && (size_t)k < sizeof out->desc) {
        if (out->test.n)
            snprintf(out->desc + k, sizeof out->desc - (size_t)k, ", %lld test examples%s%s%s", (long long)out->test.n,
                     split_note, twhere[0] ? " from " : "", twhere);
        else
            snprintf(out->desc + k, sizeof out->desc - (size_t)k, ", no test set");
    }
    return CLI_OK;
}
