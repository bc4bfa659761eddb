/* data.c -- reader of the extreme-classification text format, fast (one pass, no
 * allocation per token) and strict: every malformed line is reported with its number. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xc/xc.h"

#define MAX_INDEX 2000000000ll /* largest feature / label count accepted */

typedef struct parser {
    const char *p, *end;
    const char *name;
    int64_t line;
} parser;

static pl_status perr(const parser *ps, const char *fmt, ...) PL_PRINTF(2, 3);

static pl_status perr(const parser *ps, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return pl_error(PL_ERR_INPUT, "%s:%lld: %s", ps->name, (long long)ps->line, msg);
}

static inline bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* A short printable excerpt of the token at p, for messages. */
static const char *excerpt(const char *p, const char *end, char *buf, size_t n) {
    size_t k = 0;
    while (p < end && *p != '\n' && !is_space(*p) && k + 4 < n) {
        unsigned char c = (unsigned char)*p++;
        buf[k++] = (c >= 32 && c < 127) ? (char)c : '?';
    }
    if (p < end && *p != '\n' && !is_space(*p)) {
        buf[k++] = '.';
        buf[k++] = '.';
        buf[k++] = '.';
    }
    buf[k] = 0;
    return buf;
}

/* Unsigned decimal; false if no digit or larger than MAX_INDEX. */
static inline bool parse_index(const char **pp, const char *end, int64_t *out) {
    const char *p = *pp;
    int64_t v = 0;
    if (p >= end || *p < '0' || *p > '9') return false;
    while (p < end && *p >= '0' && *p <= '9') {
        v = v * 10 + (*p++ - '0');
        if (v > MAX_INDEX) return false;
    }
    *pp = p;
    *out = v;
    return true;
}

static const double pow10_tab[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8, 1e9,
                                   1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18};

/* A float: fast path for [-+]digits[.digits] with up to 18 significant digits, else
 * strtod on a bounded copy (exponents, inf/nan words are rejected later). */
static inline bool parse_value(const char **pp, const char *end, float *out) {
    const char *p = *pp, *start = p;
    bool neg = false;
    if (p < end && (*p == '-' || *p == '+')) neg = *p++ == '-';
    uint64_t mant = 0;
    int digits = 0, frac = 0;
    while (p < end && *p >= '0' && *p <= '9' && digits < 18) {
        mant = mant * 10 + (uint64_t)(*p++ - '0');
        digits++;
    }
    if (p < end && *p == '.') {
        p++;
        while (p < end && *p >= '0' && *p <= '9' && digits < 18) {
            mant = mant * 10 + (uint64_t)(*p++ - '0');
            digits++;
            frac++;
        }
    }
    bool simple = digits > 0 && (p >= end || is_space(*p) || *p == '\n');
    if (simple) {
        double v = (double)mant / pow10_tab[frac];
        *out = (float)(neg ? -v : v);
        *pp = p;
        return true;
    }
    char buf[64];
    size_t n = 0;
    p = start;
    while (p < end && !is_space(*p) && *p != '\n' && n < sizeof buf - 1) buf[n++] = *p++;
    buf[n] = 0;
    if (p < end && !is_space(*p) && *p != '\n') return false; /* token too long */
    char *e;
    errno = 0;
    double v = strtod(buf, &e);
    if (e == buf || *e || errno == ERANGE) return false;
    *out = (float)v;
    *pp = p;
    return true;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Grows *ptr (elements of elem bytes, capacity *cap) to hold `need`. */
static bool grow(void **ptr, size_t elem, int64_t *cap, int64_t need) {
    if (need <= *cap) return true;
    int64_t c = *cap ? *cap : 1024;
    while (c < need) c *= 2;
    void *p = realloc(*ptr, elem * (size_t)c);
    if (!p) return false;
    *ptr = p;
    *cap = c;
    return true;
}

void pl_xc_data_destroy(pl_xc_data *d) {
    if (!d) return;
    free(d->row);
    free(d->feat);
    free(d->val);
    free(d->lrow);
    free(d->lab);
    free(d);
}

static void skip_spaces(parser *ps) {
    while (ps->p < ps->end && is_space(*ps->p)) ps->p++;
}

pl_status pl_xc_data_parse(const char *text, size_t len, const char *name, pl_xc_data **out) {
    *out = NULL;
    parser ps = {text, text + len, name ? name : "data", 1};
    char ex[48];
    /* header */
    int64_t hdr[3];
    skip_spaces(&ps);
    for (int i = 0; i < 3; i++) {
        if (i) skip_spaces(&ps);
        if (!parse_index(&ps.p, ps.end, &hdr[i]) ||
            (ps.p < ps.end && !is_space(*ps.p) && *ps.p != '\n')) {
            if (ps.p >= ps.end)
                return perr(&ps, "empty file: expected a header 'POINTS FEATURES LABELS'");
            return perr(&ps, "the header must be three counts 'POINTS FEATURES LABELS', got '%s'",
                        excerpt(ps.p, ps.end, ex, sizeof ex));
        }
    }
    skip_spaces(&ps);
    if (ps.p < ps.end && *ps.p != '\n')
        return perr(&ps, "unexpected '%s' after the header's three counts",
                    excerpt(ps.p, ps.end, ex, sizeof ex));
    if (hdr[1] < 1 || hdr[2] < 1)
        return perr(&ps, "the header says %lld features and %lld labels; both must be at least 1",
                    (long long)hdr[1], (long long)hdr[2]);
    if (hdr[1] > UINT32_MAX || hdr[2] > UINT32_MAX)
        return perr(&ps, "too many features or labels in the header");
    if ((uint64_t)hdr[0] > (uint64_t)len)
        return perr(&ps,
                    "the header says %lld points, more lines than the file's %zu bytes can hold",
                    (long long)hdr[0], len);
    if (ps.p < ps.end) ps.p++; /* the newline */

    pl_xc_data *d = calloc(1, sizeof *d);
    if (!d) return pl_error(PL_ERR_NOMEM, "%s: out of memory", ps.name);
    d->n = hdr[0];
    d->n_features = hdr[1];
    d->n_labels = hdr[2];
    int64_t np = hdr[0];
    d->row = malloc(sizeof(int64_t) * (size_t)(np + 1));
    d->lrow = malloc(sizeof(int64_t) * (size_t)(np + 1));
    int64_t fcap = 0, lcap = 0, vcap = 0, scap = 0;
    uint32_t *sorted = NULL; /* one line's indices, sorted to find repeats */
    /* a first guess at the sizes from the file length: about 10 bytes per feature */
    int64_t guess = (int64_t)(len / 10) + 16;
    pl_status st = PL_OK;
    if (!d->row || !d->lrow || !grow((void **)&d->feat, 4, &fcap, guess) ||
        !grow((void **)&d->val, 4, &vcap, guess) || !grow((void **)&d->lab, 4, &lcap, np + 16)) {
        st = pl_error(PL_ERR_NOMEM, "%s: out of memory for %lld points", ps.name, (long long)np);
        goto done;
    }
    int64_t nf = 0, nl = 0, i = 0;
    d->row[0] = d->lrow[0] = 0;
    for (;;) {
        /* skip a blank line (only whitespace) at the very end */
        const char *q = ps.p;
        while (q < ps.end && is_space(*q)) q++;
        if (q >= ps.end) break;
        ps.line++;
        if (*q == '\n' && q + 1 >= ps.end) break;
        if (i >= np) {
            st = perr(&ps, "more points than the %lld the header says", (long long)np);
            goto done;
        }
        /* labels: the first token, unless the line starts with a space or the token is a
         * feature */
        if (!is_space(*ps.p) && *ps.p != '\n') {
            const char *t = ps.p;
            while (t < ps.end && !is_space(*t) && *t != '\n' && *t != ':') t++;
            bool is_labels = !(t < ps.end && *t == ':');
            if (is_labels) {
                for (;;) {
                    int64_t l;
                    const char *before = ps.p;
                    if (!parse_index(&ps.p, ps.end, &l)) {
                        st = perr(&ps, "expected a label index, got '%s'",
                                  excerpt(before, ps.end, ex, sizeof ex));
                        goto done;
                    }
                    if (l >= d->n_labels) {
                        st = perr(&ps, "label %lld is out of range (the header says %lld labels)",
                                  (long long)l, (long long)d->n_labels);
                        goto done;
                    }
                    if (!grow((void **)&d->lab, 4, &lcap, nl + 1)) {
                        st = pl_error(PL_ERR_NOMEM, "%s: out of memory", ps.name);
                        goto done;
                    }
                    d->lab[nl++] = (uint32_t)l;
                    if (ps.p < ps.end && *ps.p == ',') {
                        ps.p++;
                        continue;
                    }
                    if (ps.p < ps.end && !is_space(*ps.p) && *ps.p != '\n') {
                        st = perr(&ps, "expected ',' or a space after label %lld, got '%c'",
                                  (long long)l, *ps.p);
                        goto done;
                    }
                    break;
                }
            }
        }
        /* features */
        for (;;) {
            skip_spaces(&ps);
            if (ps.p >= ps.end || *ps.p == '\n') break;
            const char *tok = ps.p;
            int64_t f;
            float v;
            if (!parse_index(&ps.p, ps.end, &f) || ps.p >= ps.end || *ps.p != ':') {
                st = perr(&ps, "expected FEATURE:VALUE, got '%s'",
                          excerpt(tok, ps.end, ex, sizeof ex));
                goto done;
            }
            if (f >= d->n_features) {
                st = perr(&ps, "feature index %lld is out of range (the header says %lld features)",
                          (long long)f, (long long)d->n_features);
                goto done;
            }
            ps.p++;
            const char *vt = ps.p;
            if (!parse_value(&ps.p, ps.end, &v) ||
                (ps.p < ps.end && !is_space(*ps.p) && *ps.p != '\n')) {
                st = perr(&ps, "feature %lld: '%s' is not a number", (long long)f,
                          excerpt(vt, ps.end, ex, sizeof ex));
                goto done;
            }
            if (!isfinite(v)) {
                st = perr(&ps, "feature %lld: value '%s' is not finite", (long long)f,
                          excerpt(vt, ps.end, ex, sizeof ex));
                goto done;
            }
            if (!grow((void **)&d->feat, 4, &fcap, nf + 1) ||
                !grow((void **)&d->val, 4, &vcap, nf + 1)) {
                st = pl_error(PL_ERR_NOMEM, "%s: out of memory", ps.name);
                goto done;
            }
            d->feat[nf] = (uint32_t)f;
            d->val[nf] = v;
            nf++;
        }
        /* repeated labels or features on the line */
        int64_t lab0 = d->lrow[i], f0 = d->row[i];
        for (int pass = 0; pass < 2; pass++) {
            const uint32_t *v = pass ? d->feat + f0 : d->lab + lab0;
            int64_t cnt = pass ? nf - f0 : nl - lab0;
            if (cnt < 2) continue;
            int64_t k = 1;
            while (k < cnt && v[k] > v[k - 1]) k++;
            if (k == cnt) continue; /* increasing, as files usually are: no repeats */
            if (!grow((void **)&sorted, 4, &scap, cnt)) {
                st = pl_error(PL_ERR_NOMEM, "%s: out of memory", ps.name);
                goto done;
            }
            memcpy(sorted, v, sizeof(uint32_t) * (size_t)cnt);
            qsort(sorted, (size_t)cnt, sizeof(uint32_t), cmp_u32);
            for (k = 1; k < cnt; k++)
                if (sorted[k] == sorted[k - 1]) {
                    st = perr(&ps, "%s %u appears twice", pass ? "feature" : "label", sorted[k]);
                    goto done;
                }
        }
        if (ps.p < ps.end) ps.p++; /* newline */
        i++;
        d->row[i] = nf;
        d->lrow[i] = nl;
    }
    if (i < np) {
        st = pl_error(PL_ERR_INPUT, "%s: the header says %lld points, the file has %lld", ps.name,
                      (long long)np, (long long)i);
        goto done;
    }
done:
    free(sorted);
    if (st != PL_OK) {
        pl_xc_data_destroy(d);
        return st;
    }
    *out = d;
    return PL_OK;
}

pl_status pl_xc_data_read(const char *path, pl_xc_data **out) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return pl_error(PL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return pl_error(PL_ERR_IO, "%s: cannot seek: %s", path, strerror(errno));
    }
    long sz = ftell(f);
    if (sz < 0) {
        fclose(f);
        return pl_error(PL_ERR_IO, "%s: cannot read its size", path);
    }
    rewind(f);
    char *buf = malloc((size_t)sz + 1);
    if (!buf) {
        fclose(f);
        return pl_error(PL_ERR_NOMEM, "%s: out of memory for %ld bytes", path, sz);
    }
    size_t got = fread(buf, 1, (size_t)sz, f);
    int err = ferror(f);
    fclose(f);
    if (got != (size_t)sz || err) {
        free(buf);
        return pl_error(PL_ERR_IO, "%s: read error", path);
    }
    buf[sz] = 0;
    pl_status s = pl_xc_data_parse(buf, (size_t)sz, path, out);
    free(buf);
    return s;
}
