/* hash.c -- the LSH hash families (SimHash, WTA, densified WTA), dense and sparse
 * inputs, keys of K hashes per table, and the MIPS-to-cosine transform. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lsh/lsh.h"
#include "lsh/rng.h"
#include "lsh/vec.h"

/* Largest projection matrix kept in memory (floats / entries); beyond it SimHash
 * computes projection entries on the fly from their counter-based hash. */
#define SIMHASH_DENSE_MAX (1ll << 24)
#define SIMHASH_SPARSE_MAX (1ll << 25)
/* Rows hashed per GEMM block in pl_lsh_hash_rows. */
#define ROWS_BLOCK 256

struct pl_lsh_hash {
    pl_lsh_opts o;
    int64_t dim;
    int n;     /* K * L hash functions */
    int vbits; /* bits per hash value */
    /* SimHash: projection p has entry (p, i) = entry(p, i); materialised either dense
     * (rt[i * n + p]) or, for sparse projections, per coordinate as a list of
     * p | sign << 31 in ent[ptr[i] .. ptr[i+1]). */
    float *rt;
    int64_t *ptr;
    uint32_t *ent;
    /* WTA / DWTA: bin b holds the m coordinates coord[b*m .. b*m+m) of one random
     * permutation; pos[r*dim + c] is bin*m + offset of coordinate c in permutation r
     * (UINT32_MAX if that slot is unused). */
    int m;
    int reps;
    uint32_t *coord;
    uint32_t *pos;
};

void pl_lsh_opts_default(pl_lsh_opts *o) {
    memset(o, 0, sizeof *o);
    o->family = PL_LSH_SIMHASH;
    o->K = 8;
    o->L = 16;
    o->bin_size = 8;
    o->density = 1.0f;
    o->bucket_cap = 128;
    o->policy = PL_LSH_RESERVOIR;
    o->table_bits = 0;
    o->seed = 1;
}

static int log2i(int v) {
    int b = 0;
    while ((1 << b) < v) b++;
    return b;
}

int pl_lsh_key_bits(const pl_lsh_opts *o) {
    return o->family == PL_LSH_SIMHASH ? o->K : o->K * log2i(o->bin_size);
}

pl_status pl_lsh_opts_check(const pl_lsh_opts *o) {
    if (o->family != PL_LSH_SIMHASH && o->family != PL_LSH_WTA && o->family != PL_LSH_DWTA)
        return pl_error(PL_ERR_ARGUMENT, "lsh: unknown hash family %d", (int)o->family);
    if (o->K < 1 || o->K > 32)
        return pl_error(PL_ERR_ARGUMENT, "lsh: K = %d, expected 1..32", o->K);
    if (o->L < 1 || o->L > 4096)
        return pl_error(PL_ERR_ARGUMENT, "lsh: L = %d, expected 1..4096", o->L);
    if (o->family != PL_LSH_SIMHASH) {
        if (o->bin_size < 2 || o->bin_size > 256 || (o->bin_size & (o->bin_size - 1)))
            return pl_error(PL_ERR_ARGUMENT, "lsh: bin size %d is not a power of two in 2..256",
                            o->bin_size);
    } else if (!(o->density > 0 && o->density <= 1)) {
        return pl_error(PL_ERR_ARGUMENT, "lsh: projection density %g is not in (0, 1]",
                        (double)o->density);
    }
    if (pl_lsh_key_bits(o) > 32)
        return pl_error(PL_ERR_ARGUMENT,
                        "lsh: a key of K=%d %s hashes needs %d bits, at most 32 are supported",
                        o->K, pl_lsh_family_name(o->family), pl_lsh_key_bits(o));
    if (o->bucket_cap < 1)
        return pl_error(PL_ERR_ARGUMENT, "lsh: bucket size %d < 1", o->bucket_cap);
    if (o->table_bits < 0 || o->table_bits > 30)
        return pl_error(PL_ERR_ARGUMENT, "lsh: table bits %d, expected 0..30", o->table_bits);
    if (o->policy != PL_LSH_RESERVOIR && o->policy != PL_LSH_FIFO)
        return pl_error(PL_ERR_ARGUMENT, "lsh: unknown bucket policy %d", (int)o->policy);
    return PL_OK;
}

const char *pl_lsh_family_name(pl_lsh_family f) {
    switch (f) {
    case PL_LSH_SIMHASH:
        return "simhash";
    case PL_LSH_WTA:
        return "wta";
    case PL_LSH_DWTA:
        return "dwta";
    }
    return "?";
}

bool pl_lsh_family_parse(const char *s, pl_lsh_family *f) {
    if (strcmp(s, "simhash") == 0 || strcmp(s, "srp") == 0)
        *f = PL_LSH_SIMHASH;
    else if (strcmp(s, "wta") == 0)
        *f = PL_LSH_WTA;
    else if (strcmp(s, "dwta") == 0)
        *f = PL_LSH_DWTA;
    else
        return false;
    return true;
}

/* ---------------------------------------------------------------- SimHash */

/* Entry (p, i) of the projection matrix: Gaussian when density is 1, else +-1 with
 * probability `density` and 0 otherwise. */
static inline float sim_entry(const pl_lsh_hash *h, int p, int64_t i) {
    uint64_t r = pl_hash3(h->o.seed, (uint64_t)i, (uint64_t)p);
    if (h->o.density >= 1.0f) return pl_gauss_from(r);
    double u = (double)(r >> 11) * (1.0 / 9007199254740992.0);
    if (u >= h->o.density) return 0.0f;
    return (r & 1) ? -1.0f : 1.0f;
}

static pl_status sim_init(pl_lsh_hash *h) {
    int64_t n = h->n, d = h->dim;
    if (h->o.density >= 1.0f) {
        if (d * n > SIMHASH_DENSE_MAX) return PL_OK; /* on the fly */
        h->rt = aligned_alloc(64, (size_t)((d * n * 4 + 63) / 64 * 64));
        if (!h->rt)
            return pl_error(PL_ERR_NOMEM, "lsh: out of memory for %lld projections", (long long)n);
        for (int64_t i = 0; i < d; i++)
            for (int p = 0; p < n; p++) h->rt[i * n + p] = sim_entry(h, p, i);
        return PL_OK;
    }
    double expect = (double)d * (double)n * h->o.density;
    if (expect > SIMHASH_SPARSE_MAX) return PL_OK;
    h->ptr = malloc(sizeof(int64_t) * (size_t)(d + 1));
    int64_t cap = (int64_t)(expect * 1.2) + 64, cnt = 0;
    h->ent = malloc(sizeof(uint32_t) * (size_t)cap);
    if (!h->ptr || !h->ent) return pl_error(PL_ERR_NOMEM, "lsh: out of memory for projections");
    for (int64_t i = 0; i < d; i++) {
        h->ptr[i] = cnt;
        for (int p = 0; p < n; p++) {
            float e = sim_entry(h, p, i);
            if (e == 0) continue;
            if (cnt == cap) {
                cap *= 2;
                uint32_t *q = realloc(h->ent, sizeof(uint32_t) * (size_t)cap);
                if (!q) return pl_error(PL_ERR_NOMEM, "lsh: out of memory for projections");
                h->ent = q;
            }
            h->ent[cnt++] = (uint32_t)p | (e < 0 ? 0x80000000u : 0);
        }
    }
    h->ptr[d] = cnt;
    return PL_OK;
}

/* acc[p] += v * column i of the projections */
static inline void sim_add_coord(const pl_lsh_hash *h, int64_t i, float v, float *acc) {
    if (h->rt) {
        pl_vec()->axpy(v, h->rt + i * h->n, acc, h->n);
    } else if (h->ptr) {
        for (int64_t e = h->ptr[i]; e < h->ptr[i + 1]; e++) {
            uint32_t x = h->ent[e];
            acc[x & 0x7fffffff] += (x & 0x80000000u) ? -v : v;
        }
    } else {
        for (int p = 0; p < h->n; p++) acc[p] += v * sim_entry(h, p, i);
    }
}

static void sim_keys(const pl_lsh_hash *h, const float *acc, uint32_t *keys) {
    int K = h->o.K;
    for (int t = 0; t < h->o.L; t++) {
        uint32_t key = 0;
        const float *a = acc + (int64_t)t * K;
        for (int b = 0; b < K; b++) key |= (uint32_t)(a[b] > 0) << b;
        keys[t] = key;
    }
}

/* ---------------------------------------------------------------- WTA / DWTA */

static pl_status wta_init(pl_lsh_hash *h) {
    int64_t d = h->dim;
    int m = h->o.bin_size;
    if (d < m)
        return pl_error(PL_ERR_ARGUMENT,
                        "lsh: %s bins of %d coordinates need at least %d dims, got %lld",
                        pl_lsh_family_name(h->o.family), m, m, (long long)d);
    int64_t per = d / m; /* whole bins per permutation */
    int64_t reps = (h->n + per - 1) / per;
    if (reps * d > (1ll << 31))
        return pl_error(PL_ERR_ARGUMENT,
                        "lsh: %d hashes of %d-coordinate bins over %lld dims is too many", h->n, m,
                        (long long)d);
    h->m = m;
    h->reps = (int)reps;
    h->coord = malloc(sizeof(uint32_t) * (size_t)h->n * (size_t)m);
    h->pos = malloc(sizeof(uint32_t) * (size_t)(reps * d));
    uint32_t *perm = malloc(sizeof(uint32_t) * (size_t)d);
    if (!h->coord || !h->pos || !perm) {
        free(perm);
        return pl_error(PL_ERR_NOMEM, "lsh: out of memory for %d WTA hashes", h->n);
    }
    uint64_t rng = h->o.seed ^ 0x57a1b2c3d4e5f607ull;
    for (int64_t r = 0; r < reps; r++) {
        for (int64_t i = 0; i < d; i++) perm[i] = (uint32_t)i;
        for (int64_t i = d - 1; i > 0; i--) {
            int64_t j = (int64_t)pl_rng_below(&rng, (uint64_t)i + 1);
            uint32_t t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        uint32_t *pos = h->pos + r * d;
        for (int64_t i = 0; i < d; i++) pos[i] = UINT32_MAX;
        for (int64_t slot = 0; slot < per * m; slot++) {
            int64_t bin = r * per + slot / m;
            if (bin >= h->n) break;
            int64_t at = bin * m + slot % m;
            h->coord[at] = perm[slot];
            pos[perm[slot]] = (uint32_t)at;
        }
    }
    free(perm);
    return PL_OK;
}

/* Scratch of WTA: best value, winning offset and number of given (nonzero)
 * coordinates per bin, then a byte per dimension marking given coordinates. */
typedef struct wta_scratch {
    float *best;
    uint16_t *arg;
    uint16_t *cnt;
    uint8_t *mark;
} wta_scratch;

static wta_scratch wta_parts(const pl_lsh_hash *h, void *scratch) {
    wta_scratch s;
    char *p = scratch;
    s.best = (float *)p;
    p += (size_t)h->n * 4;
    s.arg = (uint16_t *)p;
    p += (size_t)h->n * 2;
    s.cnt = (uint16_t *)p;
    p += (size_t)h->n * 2;
    s.mark = (uint8_t *)p;
    return s;
}

/* DWTA: an empty bin takes the value of the first non-empty bin along a probe
 * sequence fixed by (seed, bin), so two vectors with the same empty bins borrow from
 * the same places. */
static void dwta_densify(const pl_lsh_hash *h, const uint16_t *cnt, uint16_t *arg) {
    int n = h->n;
    int nonempty = 0;
    for (int i = 0; i < n; i++) nonempty += cnt[i] != 0;
    if (nonempty == n) return;
    uint64_t seed = h->o.seed ^ 0xd3a5e7f1c2b4a697ull;
    for (int i = 0; i < n; i++) {
        if (cnt[i]) continue;
        uint16_t v = 0;
        if (nonempty) {
            for (uint64_t a = 1;; a++) {
                int j = (int)(pl_hash3(seed, (uint64_t)i, a) % (uint64_t)n);
                if (cnt[j]) {
                    /* the attempt number is mixed in so that borrowed values are not all
                     * copies of the same few bins */
                    v = (uint16_t)((arg[j] + a) % (uint64_t)h->m);
                    break;
                }
            }
        }
        arg[i] = v;
    }
}

static void wta_dense_values(const pl_lsh_hash *h, const float *x, void *scratch) {
    wta_scratch s = wta_parts(h, scratch);
    int m = h->m;
    for (int b = 0; b < h->n; b++) {
        const uint32_t *c = h->coord + (int64_t)b * m;
        float best = x[c[0]];
        int arg = 0, nz = best != 0;
        for (int j = 1; j < m; j++) {
            float v = x[c[j]];
            nz += v != 0;
            if (v > best) {
                best = v;
                arg = j;
            }
        }
        s.arg[b] = (uint16_t)arg;
        s.cnt[b] = (uint16_t)nz;
    }
    if (h->o.family == PL_LSH_DWTA) dwta_densify(h, s.cnt, s.arg);
}

static void wta_sparse_values(const pl_lsh_hash *h, const uint32_t *idx, const float *val,
                              int64_t nnz, void *scratch) {
    wta_scratch s = wta_parts(h, scratch);
    int m = h->m, n = h->n;
    int64_t d = h->dim;
    for (int b = 0; b < n; b++) {
        s.best[b] = -FLT_MAX;
        s.arg[b] = 0;
        s.cnt[b] = 0;
    }
    for (int64_t k = 0; k < nnz; k++) {
        float v = val[k];
        if (v == 0) continue;
        s.mark[idx[k]] = 1;
        for (int r = 0; r < h->reps; r++) {
            uint32_t p = h->pos[(int64_t)r * d + idx[k]];
            if (p == UINT32_MAX) continue;
            int b = (int)(p / (uint32_t)m), off = (int)(p % (uint32_t)m);
            s.cnt[b]++;
            if (v > s.best[b] || (v == s.best[b] && off < s.arg[b])) {
                s.best[b] = v;
                s.arg[b] = (uint16_t)off;
            }
        }
    }
    /* bins with zeros among their coordinates: a zero beats negative values, and the
     * first zero wins, as in the dense version */
    for (int b = 0; b < n; b++) {
        if (s.cnt[b] == m || (s.cnt[b] > 0 && s.best[b] > 0)) continue;
        int arg = 0;
        const uint32_t *c = h->coord + (int64_t)b * m;
        while (arg < m && s.mark[c[arg]]) arg++;
        s.arg[b] = (uint16_t)(arg < m ? arg : 0);
    }
    for (int64_t k = 0; k < nnz; k++) s.mark[idx[k]] = 0;
    if (h->o.family == PL_LSH_DWTA) dwta_densify(h, s.cnt, s.arg);
}

static void wta_keys(const pl_lsh_hash *h, const uint16_t *arg, uint32_t *keys) {
    int K = h->o.K, vb = h->vbits;
    for (int t = 0; t < h->o.L; t++) {
        uint32_t key = 0;
        const uint16_t *a = arg + (int64_t)t * K;
        for (int b = 0; b < K; b++) key |= (uint32_t)a[b] << (b * vb);
        keys[t] = key;
    }
}

/* ---------------------------------------------------------------- interface */

pl_status pl_lsh_hash_create(const pl_lsh_opts *o, int64_t dim, pl_lsh_hash **out) {
    *out = NULL;
    PL_TRY(pl_lsh_opts_check(o));
    if (dim < 1 || dim > (1ll << 31))
        return pl_error(PL_ERR_ARGUMENT, "lsh: vector size %lld, expected 1..2^31", (long long)dim);
    pl_lsh_hash *h = calloc(1, sizeof *h);
    if (!h) return pl_error(PL_ERR_NOMEM, "lsh: out of memory");
    h->o = *o;
    h->dim = dim;
    h->n = o->K * o->L;
    h->vbits = o->family == PL_LSH_SIMHASH ? 1 : log2i(o->bin_size);
    pl_status s = o->family == PL_LSH_SIMHASH ? sim_init(h) : wta_init(h);
    if (s != PL_OK) {
        pl_lsh_hash_destroy(h);
        return s;
    }
    *out = h;
    return PL_OK;
}

void pl_lsh_hash_destroy(pl_lsh_hash *h) {
    if (!h) return;
    free(h->rt);
    free(h->ptr);
    free(h->ent);
    free(h->coord);
    free(h->pos);
    free(h);
}

int64_t pl_lsh_hash_dim(const pl_lsh_hash *h) {
    return h->dim;
}

size_t pl_lsh_hash_scratch_bytes(const pl_lsh_hash *h) {
    size_t n = (size_t)h->n;
    if (h->o.family == PL_LSH_SIMHASH) return (n * 4 + 63) / 64 * 64;
    return (n * 8 + (size_t)h->dim + 63) / 64 * 64;
}

void pl_lsh_hash_dense(const pl_lsh_hash *h, const float *x, uint32_t *keys, void *scratch) {
    if (h->o.family == PL_LSH_SIMHASH) {
        float *acc = scratch;
        if (h->rt) {
            pl_vec()->vecmat(x, h->dim, h->rt, h->n, h->n, acc);
        } else {
            memset(acc, 0, sizeof(float) * (size_t)h->n);
            for (int64_t i = 0; i < h->dim; i++)
                if (x[i] != 0) sim_add_coord(h, i, x[i], acc);
        }
        sim_keys(h, acc, keys);
        return;
    }
    wta_dense_values(h, x, scratch);
    wta_keys(h, wta_parts(h, scratch).arg, keys);
}

void pl_lsh_hash_sparse(const pl_lsh_hash *h, const uint32_t *idx, const float *val, int64_t nnz,
                        uint32_t *keys, void *scratch) {
    if (h->o.family == PL_LSH_SIMHASH) {
        float *acc = scratch;
        memset(acc, 0, sizeof(float) * (size_t)h->n);
        for (int64_t k = 0; k < nnz; k++)
            if (val[k] != 0) sim_add_coord(h, idx[k], val[k], acc);
        sim_keys(h, acc, keys);
        return;
    }
    wta_sparse_values(h, idx, val, nnz, scratch);
    wta_keys(h, wta_parts(h, scratch).arg, keys);
}

void pl_lsh_hash_values(const pl_lsh_hash *h, const float *x, uint32_t *values, void *scratch) {
    if (h->o.family == PL_LSH_SIMHASH) {
        float *acc = scratch;
        memset(acc, 0, sizeof(float) * (size_t)h->n);
        for (int64_t i = 0; i < h->dim; i++)
            if (x[i] != 0) sim_add_coord(h, i, x[i], acc);
        for (int p = 0; p < h->n; p++) values[p] = acc[p] > 0;
        return;
    }
    wta_dense_values(h, x, scratch);
    const uint16_t *arg = wta_parts(h, scratch).arg;
    for (int p = 0; p < h->n; p++) values[p] = arg[p];
}

pl_status pl_lsh_hash_rows(const pl_lsh_hash *h, const float *X, int64_t ldx, int64_t n,
                           uint32_t *keys) {
    int L = h->o.L;
    if (h->o.family == PL_LSH_SIMHASH && h->rt) {
        /* all projections of a block of rows at once: one GEMM */
        float *acc = aligned_alloc(64, sizeof(float) * ROWS_BLOCK * (size_t)h->n);
        if (!acc) return pl_error(PL_ERR_NOMEM, "lsh: out of memory hashing rows");
        for (int64_t r0 = 0; r0 < n; r0 += ROWS_BLOCK) {
            int64_t rb = n - r0 < ROWS_BLOCK ? n - r0 : ROWS_BLOCK;
            pl_vec()->sgemm(false, false, rb, h->n, h->dim, 1.0f, X + r0 * ldx, ldx, h->rt, h->n,
                            0.0f, acc, h->n);
            for (int64_t r = 0; r < rb; r++) sim_keys(h, acc + r * h->n, keys + (r0 + r) * L);
        }
        free(acc);
        return PL_OK;
    }
    void *scratch = aligned_alloc(64, pl_lsh_hash_scratch_bytes(h));
    if (!scratch) return pl_error(PL_ERR_NOMEM, "lsh: out of memory hashing rows");
    memset(scratch, 0, pl_lsh_hash_scratch_bytes(h));
    for (int64_t r = 0; r < n; r++) pl_lsh_hash_dense(h, X + r * ldx, keys + r * L, scratch);
    free(scratch);
    return PL_OK;
}

/* ---------------------------------------------------------------- MIPS */

void pl_lsh_mips_data(const float *x, int64_t dim, float U, float *out) {
    double n2 = 0;
    float inv = U > 0 ? 1.0f / U : 0.0f;
    for (int64_t i = 0; i < dim; i++) {
        out[i] = x[i] * inv;
        n2 += (double)out[i] * out[i];
    }
    out[dim] = n2 < 1 ? (float)sqrt(1 - n2) : 0.0f;
}

void pl_lsh_mips_query(const float *q, int64_t dim, float *out) {
    memcpy(out, q, sizeof(float) * (size_t)dim);
    out[dim] = 0;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

void pl_lsh_norm_ranges(const float *norms, int64_t n, int R, uint8_t *range, float *U) {
    if (R < 1) R = 1;
    if (R > 255) R = 255;
    /* range boundaries from the quantiles of (a sample of) the norms */
    enum { SAMPLE = 8192 };
    float s[SAMPLE];
    int64_t ns = n < SAMPLE ? n : SAMPLE;
    for (int64_t k = 0; k < ns; k++) s[k] = norms[n <= SAMPLE ? k : (k * n) / SAMPLE];
    qsort(s, (size_t)ns, sizeof(float), cmp_float);
    float bound[256];
    for (int r = 0; r < R - 1; r++) bound[r] = ns ? s[(int64_t)(r + 1) * ns / R] : 0;
    for (int r = 0; r < R; r++) U[r] = 0;
    for (int64_t i = 0; i < n; i++) {
        int lo = 0, hi = R - 1; /* first range whose upper bound is >= the norm */
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (norms[i] <= bound[mid])
                hi = mid;
            else
                lo = mid + 1;
        }
        range[i] = (uint8_t)lo;
        if (norms[i] > U[lo]) U[lo] = norms[i];
    }
    for (int r = 0; r < R; r++) U[r] = U[r] > 0 ? U[r] * 1.0001f : 1.0f;
}
