/* npy.c -- NumPy .npy files (format versions 1.0, 2.0 and 3.0) to and from tensors.
 *
 * A .npy file is: the magic "\x93NUMPY", a major and minor version byte, the header
 * length (uint16 LE in v1, uint32 LE in v2/v3), an ASCII Python dict literal such as
 * {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } padded with spaces and a
 * '\n', then the raw C-order data. Files come from users, so every field is checked
 * and every problem is reported with the file name; nothing here trusts a length or a
 * shape before comparing it with the real file size. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/tensor.h"

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
/* Headers are a few hundred bytes; anything bigger than this is not a real header. */
#define NPY_MAX_HEADER (1u << 20)

/* The .npy descr for each dtype we read and write. One-byte types have no byte order
 * ('|'); pillar only runs on little-endian hosts, so '<' is native order. */
static const struct {
    pl_dtype dtype;
    const char *descr;
} npy_types[] = {
    {PL_F32, "<f4"}, {PL_F64, "<f8"}, {PL_F16, "<f2"}, {PL_I8, "|i1"},
    {PL_U8, "|u1"},  {PL_I16, "<i2"}, {PL_U16, "<u2"}, {PL_I32, "<i4"},
    {PL_U32, "<u4"}, {PL_I64, "<i8"}, {PL_U64, "<u8"}, {PL_BOOL, "|b1"},
};

static int host_is_little_endian(void) {
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* ---------------------------------------------------------------- header parsing */

typedef struct npy_parser {
    const char *s, *end;
    const char *path;
} npy_parser;

static void skip_space(npy_parser *p) {
    while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r'))
        p->s++;
}

static pl_status bad_header(const npy_parser *p, const char *what) {
    return pl_error(PL_ERR_INPUT, "%s: malformed .npy header: %s", p->path, what);
}

static int accept(npy_parser *p, char ch) {
    skip_space(p);
    if (p->s < p->end && *p->s == ch) {
        p->s++;
        return 1;
    }
    return 0;
}

/* A quoted Python string ('...' or "...", no escapes: none appear in real headers). */
static pl_status parse_string(npy_parser *p, char *buf, size_t n) {
    skip_space(p);
    if (p->s >= p->end || (*p->s != '\'' && *p->s != '"'))
        return bad_header(p, "expected a quoted string");
    char q = *p->s++;
    size_t k = 0;
    while (p->s < p->end && *p->s != q) {
        if (*p->s == '\\') return bad_header(p, "escape sequences in strings are not supported");
        if (k + 1 >= n) return bad_header(p, "string too long");
        buf[k++] = *p->s++;
    }
    if (p->s >= p->end) return bad_header(p, "unterminated string");
    p->s++;
    buf[k] = 0;
    return PL_OK;
}

static int accept_word(npy_parser *p, const char *w) {
    skip_space(p);
    size_t n = strlen(w);
    if ((size_t)(p->end - p->s) >= n && memcmp(p->s, w, n) == 0) {
        p->s += n;
        return 1;
    }
    return 0;
}

/* A tuple of non-negative integers: (), (3,), (2, 3), also with trailing L (Python 2). */
static pl_status parse_shape(npy_parser *p, int *ndim, int64_t *dims) {
    if (!accept(p, '(')) return bad_header(p, "'shape' is not a tuple");
    int n = 0;
    for (;;) {
        if (accept(p, ')')) break;
        skip_space(p);
        if (p->s >= p->end || *p->s < '0' || *p->s > '9') {
            if (p->s < p->end && *p->s == '-')
                return pl_error(PL_ERR_INPUT, "%s: .npy shape has a negative dimension", p->path);
            return bad_header(p, "expected a dimension in 'shape'");
        }
        int64_t v = 0;
        while (p->s < p->end && *p->s >= '0' && *p->s <= '9') {
            int d = *p->s++ - '0';
            if (v > (INT64_MAX - d) / 10)
                return pl_error(PL_ERR_INPUT, "%s: .npy shape dimension overflows int64", p->path);
            v = v * 10 + d;
        }
        if (p->s < p->end && (*p->s == 'L' || *p->s == 'l')) p->s++;
        if (n >= PL_MAX_DIMS)
            return pl_error(PL_ERR_UNSUPPORTED, "%s: .npy array has more than %d dimensions",
                            p->path, PL_MAX_DIMS);
        dims[n++] = v;
        if (accept(p, ',')) continue;
        if (accept(p, ')')) break;
        return bad_header(p, "expected ',' or ')' in 'shape'");
    }
    *ndim = n;
    return PL_OK;
}

static pl_status parse_header(npy_parser *p, char *descr, size_t descr_n, int *fortran, int *ndim,
                              int64_t *dims) {
    int have_descr = 0, have_fortran = 0, have_shape = 0;
    if (!accept(p, '{')) return bad_header(p, "does not start with '{'");
    for (;;) {
        if (accept(p, '}')) break;
        char key[32];
        PL_TRY(parse_string(p, key, sizeof key));
        if (!accept(p, ':')) return bad_header(p, "expected ':' after a key");
        if (strcmp(key, "descr") == 0) {
            skip_space(p);
            if (p->s < p->end && (*p->s == '[' || *p->s == '('))
                return pl_error(PL_ERR_UNSUPPORTED, "%s: structured .npy dtypes are not supported",
                                p->path);
            PL_TRY(parse_string(p, descr, descr_n));
            have_descr = 1;
        } else if (strcmp(key, "fortran_order") == 0) {
            if (accept_word(p, "True"))
                *fortran = 1;
            else if (accept_word(p, "False"))
                *fortran = 0;
            else
                return bad_header(p, "'fortran_order' is not True or False");
            have_fortran = 1;
        } else if (strcmp(key, "shape") == 0) {
            PL_TRY(parse_shape(p, ndim, dims));
            have_shape = 1;
        } else {
            return pl_error(PL_ERR_INPUT, "%s: malformed .npy header: unexpected key '%s'", p->path,
                            key);
        }
        if (accept(p, ',')) continue;
        if (accept(p, '}')) break;
        return bad_header(p, "expected ',' or '}'");
    }
    if (!have_descr) return bad_header(p, "missing 'descr'");
    if (!have_fortran) return bad_header(p, "missing 'fortran_order'");
    if (!have_shape) return bad_header(p, "missing 'shape'");
    return PL_OK;
}

/* Maps a descr to a dtype. '=' (native) and '<' are the same here; any byte order is
 * fine for one-byte types. */
static pl_status descr_dtype(const char *path, const char *descr, pl_dtype *out) {
    char d[16];
    size_t n = strlen(descr);
    if (n < 1 || n > 4) goto unsupported;
    char order = descr[0];
    if (order != '<' && order != '>' && order != '|' && order != '=') {
        /* a bare type code such as 'f4' */
        order = '=';
        snprintf(d, sizeof d, "%s", descr);
    } else {
        snprintf(d, sizeof d, "%s", descr + 1);
    }
    for (size_t i = 0; i < sizeof npy_types / sizeof npy_types[0]; i++) {
        if (strcmp(npy_types[i].descr + 1, d) != 0) continue;
        pl_dtype t = npy_types[i].dtype;
        if (order == '>' && pl_dtype_size(t) > 1)
            return pl_error(PL_ERR_UNSUPPORTED, "%s: big-endian .npy data ('%s') is not supported",
                            path, descr);
        *out = t;
        return PL_OK;
    }
    /* '?' is NumPy's bool code */
    if (strcmp(d, "?") == 0 || strcmp(d, "b1") == 0) {
        *out = PL_BOOL;
        return PL_OK;
    }
unsupported:
    return pl_error(PL_ERR_UNSUPPORTED, "%s: .npy dtype '%s' is not supported", path, descr);
}

static uint64_t read_le(const unsigned char *b, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | b[i];
    return v;
}

/* Reads the whole header and positions `f` at the data. */
static pl_status read_npy(FILE *f, const char *path, pl_tensor **out) {
    unsigned char pre[12];
    size_t got = fread(pre, 1, 8, f);
    if (got == 0 && ferror(f))
        return pl_error(PL_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
    if (got == 0) return pl_error(PL_ERR_INPUT, "%s: empty file, not a .npy file", path);
    if (got < NPY_MAGIC_LEN || memcmp(pre, NPY_MAGIC, NPY_MAGIC_LEN) != 0)
        return pl_error(PL_ERR_INPUT, "%s: not a .npy file (bad magic)", path);
    if (got < 8) return pl_error(PL_ERR_INPUT, "%s: truncated .npy file (no version)", path);
    int major = pre[6];
    if (major < 1 || major > 3)
        return pl_error(PL_ERR_UNSUPPORTED, "%s: .npy format version %d.%d is not supported", path,
                        major, pre[7]);
    int lenbytes = major == 1 ? 2 : 4;
    if (fread(pre + 8, 1, (size_t)lenbytes, f) != (size_t)lenbytes)
        return pl_error(PL_ERR_INPUT, "%s: truncated .npy file (no header length)", path);
    uint64_t hlen = read_le(pre + 8, lenbytes);
    if (hlen == 0 || hlen > NPY_MAX_HEADER)
        return pl_error(PL_ERR_INPUT, "%s: malformed .npy header: length %llu", path,
                        (unsigned long long)hlen);
    char *h = malloc((size_t)hlen);
    if (!h) return pl_error(PL_ERR_NOMEM, "%s: out of memory reading .npy header", path);
    if (fread(h, 1, (size_t)hlen, f) != (size_t)hlen) {
        free(h);
        return pl_error(PL_ERR_INPUT, "%s: truncated .npy file (header says %llu bytes)", path,
                        (unsigned long long)hlen);
    }
    for (uint64_t i = 0; i < hlen; i++) {
        if (h[i] == 0) {
            free(h);
            return pl_error(PL_ERR_INPUT, "%s: malformed .npy header: contains a NUL byte", path);
        }
    }

    char descr[16];
    int fortran = 0, ndim = 0;
    int64_t dims[PL_MAX_DIMS];
    npy_parser p = {h, h + hlen, path};
    pl_status st = parse_header(&p, descr, sizeof descr, &fortran, &ndim, dims);
    free(h);
    PL_TRY(st);
    pl_dtype dtype = PL_UNDEF;
    PL_TRY(descr_dtype(path, descr, &dtype));
    int64_t numel = pl_dims_numel(ndim, dims);
    if (numel < 0)
        return pl_error(PL_ERR_INPUT, "%s: .npy shape overflows int64 when multiplied", path);
    if (fortran && ndim > 1) {
        /* Fortran order only changes the layout of arrays with 2+ dims. */
        int nontrivial = 0;
        for (int i = 0; i < ndim; i++) nontrivial += dims[i] > 1;
        if (nontrivial > 1)
            return pl_error(PL_ERR_UNSUPPORTED,
                            "%s: .npy array is in Fortran order; save it in C order "
                            "(numpy.ascontiguousarray)",
                            path);
    }
    size_t es = pl_dtype_size(dtype);
    if ((uint64_t)numel > (uint64_t)INT64_MAX / es)
        return pl_error(PL_ERR_INPUT, "%s: .npy data size overflows", path);
    uint64_t want = (uint64_t)numel * es;

    /* Compare with the real file size before allocating anything shape-sized. */
    long here = ftell(f);
    if (here < 0 || fseek(f, 0, SEEK_END) != 0)
        return pl_error(PL_ERR_IO, "%s: cannot seek: %s", path, strerror(errno));
    long total = ftell(f);
    if (total < 0 || fseek(f, here, SEEK_SET) != 0)
        return pl_error(PL_ERR_IO, "%s: cannot seek: %s", path, strerror(errno));
    uint64_t have = (uint64_t)(total - here);
    if (have < want)
        return pl_error(PL_ERR_INPUT,
                        "%s: truncated .npy file: shape needs %llu data bytes, file has %llu", path,
                        (unsigned long long)want, (unsigned long long)have);
    if (have > want)
        return pl_error(PL_ERR_INPUT,
                        "%s: .npy file has %llu bytes after the data its shape describes", path,
                        (unsigned long long)(have - want));

    pl_tensor *t = calloc(1, sizeof *t);
    if (!t) return pl_error(PL_ERR_NOMEM, "%s: out of memory", path);
    pl_tensor_set_shape(t, dtype, ndim, dims);
    st = pl_tensor_alloc(t);
    if (st != PL_OK) {
        pl_error_prefix("%s", path);
        free(t);
        return st;
    }
    if (want && fread(t->data, 1, (size_t)want, f) != (size_t)want) {
        pl_tensor_free_data(t);
        free(t);
        return pl_error(PL_ERR_IO, "%s: read error", path);
    }
    if (dtype == PL_BOOL) { /* keep bools canonical: 0 or 1 */
        uint8_t *b = t->data;
        for (uint64_t i = 0; i < want; i++) b[i] = b[i] != 0;
    }
    *out = t;
    return PL_OK;
}

pillar_status pillar_tensor_load_npy(const char *path, pillar_tensor **out) {
    if (!path || !out) return pl_error(PL_ERR_ARGUMENT, "pillar_tensor_load_npy: NULL argument");
    if (!host_is_little_endian())
        return pl_error(PL_ERR_UNSUPPORTED, "%s: .npy files need a little-endian host", path);
    FILE *f = fopen(path, "rb");
    if (!f) return pl_error(PL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    pl_tensor *t = NULL;
    pl_status st = read_npy(f, path, &t);
    fclose(f);
    if (st == PL_OK) *out = t;
    return st;
}

/* ---------------------------------------------------------------- writing */

pillar_status pillar_tensor_save_npy(const pillar_tensor *t, const char *path) {
    if (!t || !path) return pl_error(PL_ERR_ARGUMENT, "pillar_tensor_save_npy: NULL argument");
    if (!host_is_little_endian())
        return pl_error(PL_ERR_UNSUPPORTED, "%s: .npy files need a little-endian host", path);
    const char *descr = NULL;
    for (size_t i = 0; i < sizeof npy_types / sizeof npy_types[0]; i++)
        if (npy_types[i].dtype == t->dtype) descr = npy_types[i].descr;
    if (!descr)
        return pl_error(PL_ERR_UNSUPPORTED, "%s: a %s tensor cannot be saved as .npy", path,
                        pl_dtype_name(t->dtype));
    if (t->ndim < 0 || t->ndim > PL_MAX_DIMS)
        return pl_error(PL_ERR_ARGUMENT, "%s: tensor has no valid shape", path);
    int64_t numel = pl_numel(t);
    if (numel < 0) return pl_error(PL_ERR_ARGUMENT, "%s: tensor size overflows", path);
    if (numel > 0 && !t->data) return pl_error(PL_ERR_ARGUMENT, "%s: tensor has no data", path);

    /* Header: dict, spaces, '\n', so that magic+version+len+header is a multiple of 64. */
    char h[64 + 24 * PL_MAX_DIMS + 128];
    int k = snprintf(h, sizeof h, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < t->ndim; i++)
        k += snprintf(h + k, sizeof h - (size_t)k, "%lld,%s", (long long)t->dims[i],
                      i + 1 < t->ndim ? " " : "");
    if (t->ndim > 1) k--; /* "(2, 3)" rather than "(2, 3,)"; keep "(3,)" for 1-D */
    k += snprintf(h + k, sizeof h - (size_t)k, "), }");
    size_t total = 10 + (size_t)k + 1;
    size_t pad = (64 - total % 64) % 64;
    memset(h + k, ' ', pad);
    h[(size_t)k + pad] = '\n';
    size_t hlen = (size_t)k + pad + 1;

    unsigned char pre[10];
    memcpy(pre, NPY_MAGIC, NPY_MAGIC_LEN);
    pre[6] = 1;
    pre[7] = 0;
    pre[8] = (unsigned char)(hlen & 0xff);
    pre[9] = (unsigned char)(hlen >> 8);

    FILE *f = fopen(path, "wb");
    if (!f) return pl_error(PL_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    size_t nbytes = (size_t)numel * pl_dtype_size(t->dtype);
    int ok = fwrite(pre, 1, sizeof pre, f) == sizeof pre && fwrite(h, 1, hlen, f) == hlen &&
             (nbytes == 0 || fwrite(t->data, 1, nbytes, f) == nbytes);
    int err = errno;
    if (fclose(f) != 0 && ok) {
        ok = 0;
        err = errno;
    }
    if (!ok) {
        remove(path);
        return pl_error(PL_ERR_IO, "%s: write failed: %s", path, strerror(err));
    }
    return PL_OK;
}
