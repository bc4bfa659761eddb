/* test_lsh.c -- the LSH module and the XC pieces around it:
 *   - collision probability of each hash family against its theory (SimHash:
 *     1 - angle/pi; WTA: exact combinatorial formula; DWTA and WTA on sparse vectors:
 *     the conditional formulas that show what densification fixes);
 *   - dense and sparse inputs hash alike; keys pack K hashes;
 *   - tables: buckets, capacity, reservoir and FIFO replacement, folding of wide keys;
 *     sampling (union, top-k, threshold); snapshots swapped under concurrent queries;
 *     the rebuild schedule;
 *   - the dense primitives (AVX-512 against the portable versions);
 *   - the XC data reader: good files, and errors naming the line;
 *   - HALOS retrieval against exact scoring; ONNX export read back and run by the
 *     engine;
 *   - sessions with pillar_options_set_lsh_output: the wide last layer (Gemm, MatMul +
 *     bias + Softmax) rewritten into a top-k lookup, against exact sessions on every
 *     kernel level; the errors for models without such a layer. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cpu.h"
#include "graph/ir.h"
#include "lsh/halos.h"
#include "lsh/lsh.h"
#include "lsh/rng.h"
#include "lsh/vec.h"
#include "pillar.h"
#include "xc/xc.h"

static int failures = 0, checks = 0;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        checks++;                                                                                  \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                            \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
        }                                                                                          \
    } while (0)

static uint64_t rng_state = 12345;
static float frand(void) {
    return pl_rng_float(&rng_state);
}
static float gauss(void) {
    return pl_gauss_from(pl_rng_next(&rng_state));
}

static double lchoose(int n, int k) {
    if (k < 0 || k > n) return -INFINITY;
    return lgamma(n + 1.0) - lgamma(k + 1.0) - lgamma(n - k + 1.0);
}
static double choose(int n, int k) {
    double l = lchoose(n, k);
    return isinf(l) ? 0 : exp(l);
}

/* ---------------------------------------------------------------- SimHash */

/* Fraction of the K*L bits on which x and y agree. */
static double bit_agreement(const pl_lsh_hash *h, int n, const float *x, const float *y) {
    uint32_t *a = malloc(sizeof(uint32_t) * (size_t)n), *b = malloc(sizeof(uint32_t) * (size_t)n);
    void *s = aligned_alloc(64, pl_lsh_hash_scratch_bytes(h));
    pl_lsh_hash_values(h, x, a, s);
    pl_lsh_hash_values(h, y, b, s);
    int same = 0;
    for (int i = 0; i < n; i++) same += a[i] == b[i];
    free(a);
    free(b);
    free(s);
    return (double)same / n;
}

static void test_simhash(float density, int dim, double tol) {
    pl_lsh_opts o;
    pl_lsh_opts_default(&o);
    o.family = PL_LSH_SIMHASH;
    o.K = 1;
    o.L = 4000;
    o.density = density;
    o.seed = 99;
    pl_lsh_hash *h;
    CHECK(pl_lsh_hash_create(&o, dim, &h) == PL_OK, "%s", pl_error_msg());
    float *x = malloc(sizeof(float) * (size_t)dim), *u = malloc(sizeof(float) * (size_t)dim),
          *y = malloc(sizeof(float) * (size_t)dim);
    const double angles[] = {0.0, 0.3, 0.8, 1.4, 2.2, 3.0};
    for (size_t ai = 0; ai < sizeof angles / sizeof *angles; ai++) {
        /* x and u orthonormal; y at the given angle from x */
        double nx = 0, dot = 0, nu = 0;
        for (int i = 0; i < dim; i++) x[i] = gauss(), nx += (double)x[i] * x[i];
        for (int i = 0; i < dim; i++) x[i] /= (float)sqrt(nx);
        for (int i = 0; i < dim; i++) u[i] = gauss(), dot += (double)u[i] * x[i];
        for (int i = 0; i < dim; i++) u[i] -= (float)dot * x[i], nu += (double)u[i] * u[i];
        for (int i = 0; i < dim; i++) u[i] /= (float)sqrt(nu);
        double t = angles[ai];
        for (int i = 0; i < dim; i++) y[i] = (float)(cos(t) * x[i] + sin(t) * u[i]);
        double got = bit_agreement(h, o.K * o.L, x, y), want = 1 - t / M_PI;
        CHECK(fabs(got - want) < tol, "simhash density %g: angle %.2f collides %.3f, theory %.3f",
              (double)density, t, got, want);
    }
    /* dense and sparse inputs give the same keys */
    o.K = 12;
    o.L = 20;
    pl_lsh_hash *h2;
    CHECK(pl_lsh_hash_create(&o, dim, &h2) == PL_OK, "%s", pl_error_msg());
    for (int i = 0; i < dim; i++) x[i] = (i % 3 == 0) ? gauss() : 0;
    uint32_t idx[1024], kd[20], ks[20];
    float val[1024];
    int nnz = 0;
    for (int i = 0; i < dim; i++)
        if (x[i] != 0) idx[nnz] = (uint32_t)i, val[nnz++] = x[i];
    void *s = aligned_alloc(64, pl_lsh_hash_scratch_bytes(h2));
    pl_lsh_hash_dense(h2, x, kd, s);
    pl_lsh_hash_sparse(h2, idx, val, nnz, ks, s);
    CHECK(memcmp(kd, ks, sizeof kd) == 0, "simhash density %g: dense and sparse keys differ",
          (double)density);
    for (int t = 0; t < 20; t++) CHECK(kd[t] < (1u << 12), "key %u has more than K bits", kd[t]);
    /* hash_rows agrees with hash_dense */
    uint32_t kr[3 * 20];
    float *rows = malloc(sizeof(float) * 3 * (size_t)dim);
    for (int r = 0; r < 3; r++) memcpy(rows + r * dim, x, sizeof(float) * (size_t)dim);
    rows[dim + 1] += 0.5f;
    CHECK(pl_lsh_hash_rows(h2, rows, dim, 3, kr) == PL_OK, "hash_rows");
    pl_lsh_hash_dense(h2, rows + dim, kd, s);
    CHECK(memcmp(kr, ks, sizeof ks) == 0 && memcmp(kr + 20, kd, sizeof kd) == 0,
          "hash_rows differs from hash_dense");
    free(rows);
    free(s);
    pl_lsh_hash_destroy(h2);
    pl_lsh_hash_destroy(h);
    free(x);
    free(u);
    free(y);
}

/* ---------------------------------------------------------------- WTA / DWTA */

/* Exact WTA collision probability of dense x, y (distinct values): a bin is a uniform
 * m-subset; it collides when one coordinate is the max of both. */
static double wta_theory_dense(const float *x, const float *y, int d, int m) {
    double p = 0;
    for (int i = 0; i < d; i++) {
        int c = 0;
        for (int j = 0; j < d; j++) c += j != i && x[j] < x[i] && y[j] < y[i];
        p += choose(c, m - 1);
    }
    return p / choose(d, m);
}

/* For nonnegative x, y with the same support S (|S| = s) in d dims: the collision
 * probability of a bin holding j support coordinates, averaged over the hypergeometric
 * j. densified: conditioned on j >= 1 (empty bins borrow); plain WTA: empty bins (all
 * zero) always collide. */
static double wta_theory_sparse(const float *x, const float *y, const int *S, int s, int d, int m,
                                bool densified) {
    double p = 0, h0 = choose(s, 0) * choose(d - s, m) / choose(d, m);
    for (int j = 1; j <= m && j <= s; j++) {
        double hj = choose(s, j) * choose(d - s, m - j) / choose(d, m), pj = 0;
        for (int a = 0; a < s; a++) {
            int c = 0;
            for (int b = 0; b < s; b++) c += b != a && x[S[b]] < x[S[a]] && y[S[b]] < y[S[a]];
            pj += choose(c, j - 1);
        }
        p += hj * pj / choose(s, j);
    }
    return densified ? p / (1 - h0) : p + h0;
}

static void test_wta(void) {
    const int d = 32, m = 4;
    pl_lsh_opts o;
    pl_lsh_opts_default(&o);
    o.family = PL_LSH_WTA;
    o.K = 1;
    o.L = 4000;
    o.bin_size = m;
    o.seed = 5;
    pl_lsh_hash *h;
    CHECK(pl_lsh_hash_create(&o, d, &h) == PL_OK, "%s", pl_error_msg());
    float x[32], y[32];
    const double noise[] = {0.0, 0.3, 1.0, 3.0};
    for (size_t k = 0; k < 4; k++) {
        for (int i = 0; i < d; i++) x[i] = gauss();
        for (int i = 0; i < d; i++) y[i] = x[i] + (float)noise[k] * gauss();
        double got = bit_agreement(h, o.L, x, y), want = wta_theory_dense(x, y, d, m);
        CHECK(fabs(got - want) < 0.03, "wta: noise %.1f collides %.3f, theory %.3f", noise[k], got,
              want);
    }
    pl_lsh_hash_destroy(h);

    /* sparse nonnegative vectors with a common support: DWTA matches the conditional
     * formula, plain WTA the one where empty bins always collide */
    const int D = 256, s = 24, M = 8;
    for (int fam = 0; fam < 2; fam++) {
        o.family = fam ? PL_LSH_DWTA : PL_LSH_WTA;
        o.bin_size = M;
        o.L = 4000;
        CHECK(pl_lsh_hash_create(&o, D, &h) == PL_OK, "%s", pl_error_msg());
        float *a = calloc(D, sizeof(float)), *b = calloc(D, sizeof(float));
        int S[24];
        for (int i = 0; i < s; i++) {
            int c;
            bool dup;
            do {
                c = (int)pl_rng_below(&rng_state, D);
                dup = false;
                for (int j = 0; j < i; j++) dup |= S[j] == c;
            } while (dup);
            S[i] = c;
            a[c] = 0.1f + frand();
            b[c] = a[c] + 0.4f * frand();
        }
        double got = bit_agreement(h, o.L, a, b);
        double want = wta_theory_sparse(a, b, S, s, D, M, fam == 1);
        CHECK(fabs(got - want) < 0.03, "%s on sparse vectors collides %.3f, theory %.3f",
              fam ? "dwta" : "wta", got, want);
        /* dense and sparse inputs agree */
        uint32_t idx[24], kd[8], ks[8];
        float val[24];
        for (int i = 0; i < s; i++) idx[i] = (uint32_t)S[i], val[i] = a[S[i]];
        pl_lsh_opts o2 = o;
        o2.K = 3;
        o2.L = 8;
        pl_lsh_hash *h2;
        CHECK(pl_lsh_hash_create(&o2, D, &h2) == PL_OK, "%s", pl_error_msg());
        void *sc = aligned_alloc(64, pl_lsh_hash_scratch_bytes(h2));
        memset(sc, 0, pl_lsh_hash_scratch_bytes(h2));
        pl_lsh_hash_dense(h2, a, kd, sc);
        pl_lsh_hash_sparse(h2, idx, val, s, ks, sc);
        CHECK(memcmp(kd, ks, sizeof kd) == 0, "%s: dense and sparse keys differ",
              fam ? "dwta" : "wta");
        for (int t = 0; t < 8; t++)
            CHECK(kd[t] < (1u << 9), "key %u wider than K*log2(bin)", kd[t]);
        /* negative values: a zero beats them in both forms */
        a[S[0]] = -1.0f;
        val[0] = -1.0f;
        pl_lsh_hash_dense(h2, a, kd, sc);
        pl_lsh_hash_sparse(h2, idx, val, s, ks, sc);
        CHECK(memcmp(kd, ks, sizeof kd) == 0, "%s: dense and sparse keys differ with negatives",
              fam ? "dwta" : "wta");
        free(sc);
        pl_lsh_hash_destroy(h2);
        free(a);
        free(b);
        pl_lsh_hash_destroy(h);
    }
    /* option checks */
    o.bin_size = 6;
    CHECK(pl_lsh_hash_create(&o, D, &h) == PL_ERR_ARGUMENT &&
              strstr(pl_error_msg(), "power of two"),
          "bin size 6 accepted: %s", pl_error_msg());
    o.bin_size = 8;
    o.K = 11;
    CHECK(pl_lsh_opts_check(&o) == PL_ERR_ARGUMENT && strstr(pl_error_msg(), "32 are supported"),
          "33-bit keys accepted: %s", pl_error_msg());
}

static void test_mips(void) {
    /* the transform orders data by inner product: the angle shrinks as q.x grows */
    float x1[3] = {1, 0, 0}, x2[3] = {0.5f, 0.5f, 0}, q[3] = {1, 0.2f, 0};
    float p1[4], p2[4], qq[4];
    pl_lsh_mips_data(x1, 3, 2.0f, p1);
    pl_lsh_mips_data(x2, 3, 2.0f, p2);
    pl_lsh_mips_query(q, 3, qq);
    double n1 = 0, n2 = 0, c1 = 0, c2 = 0;
    for (int i = 0; i < 4; i++)
        n1 += p1[i] * p1[i], n2 += p2[i] * p2[i], c1 += p1[i] * qq[i], c2 += p2[i] * qq[i];
    CHECK(fabs(n1 - 1) < 1e-6 && fabs(n2 - 1) < 1e-6, "mips data not unit norm: %g %g", n1, n2);
    CHECK(c1 > c2, "mips: q.x1 = 1.0 > q.x2 = 0.6 but cosines %g <= %g", c1, c2);
}

/* ---------------------------------------------------------------- tables */

static void test_tables(void) {
    pl_lsh_opts o;
    pl_lsh_opts_default(&o);
    o.K = 4;
    o.L = 2;
    o.bucket_cap = 3;
    o.table_bits = 4;
    /* 10 items: table 0 key = i % 4, table 1 key = 15 */
    uint32_t keys[20];
    for (int i = 0; i < 10; i++) keys[i * 2] = (uint32_t)(i % 4), keys[i * 2 + 1] = 15;
    pl_lsh_tables *t;
    CHECK(pl_lsh_tables_build(&o, 10, keys, NULL, &t) == PL_OK, "%s", pl_error_msg());
    uint32_t n;
    const uint32_t *b = pl_lsh_tables_bucket(t, 0, 1, &n);
    CHECK(n == 3 && b[0] == 1 && b[1] == 5 && b[2] == 9, "bucket 1 of table 0: n=%u", n);
    b = pl_lsh_tables_bucket(t, 0, 0, &n);
    CHECK(n == 3, "bucket 0 holds %u, capacity 3", n);
    for (uint32_t k = 0; k < n; k++) CHECK(b[k] % 4 == 0, "bucket 0 holds item %u", b[k]);
    b = pl_lsh_tables_bucket(t, 1, 15, &n);
    CHECK(n == 3, "full bucket holds %u", n);
    pl_lsh_tables_bucket(t, 1, 3, &n);
    CHECK(n == 0, "empty bucket holds %u", n);
    CHECK(pl_lsh_tables_dropped(t) == 7, "dropped %lld", (long long)pl_lsh_tables_dropped(t));
    pl_lsh_tables_destroy(t);

    /* FIFO keeps exactly the last `cap` in insertion order */
    o.policy = PL_LSH_FIFO;
    uint32_t order[10] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0};
    CHECK(pl_lsh_tables_build(&o, 10, keys, order, &t) == PL_OK, "%s", pl_error_msg());
    b = pl_lsh_tables_bucket(t, 1, 15, &n);
    int seen[10] = {0};
    for (uint32_t k = 0; k < n; k++) seen[b[k]]++;
    CHECK(n == 3 && seen[0] && seen[1] && seen[2], "fifo kept something other than the last 3");
    pl_lsh_tables_destroy(t);

    /* reservoir: every item of an overflowing bucket is kept with probability cap/n */
    o.policy = PL_LSH_RESERVOIR;
    o.L = 1;
    o.bucket_cap = 10;
    enum { N = 100, RUNS = 2000 };
    uint32_t k1[N];
    for (int i = 0; i < N; i++) k1[i] = 7;
    int kept[N] = {0};
    for (int r = 0; r < RUNS; r++) {
        o.seed = (uint64_t)r + 1;
        CHECK(pl_lsh_tables_build(&o, N, k1, NULL, &t) == PL_OK, "%s", pl_error_msg());
        b = pl_lsh_tables_bucket(t, 0, 7, &n);
        for (uint32_t k = 0; k < n; k++) kept[b[k]]++;
        pl_lsh_tables_destroy(t);
    }
    int lo = RUNS, hi = 0;
    for (int i = 0; i < N; i++) lo = kept[i] < lo ? kept[i] : lo, hi = kept[i] > hi ? kept[i] : hi;
    /* expected 200 each, sd ~13.4 */
    CHECK(lo > 140 && hi < 260, "reservoir not uniform: kept between %d and %d of %d", lo, hi,
          RUNS);

    /* keys wider than the table are folded; equal keys still share a bucket */
    o.K = 20;
    o.L = 1;
    o.table_bits = 3;
    o.bucket_cap = 100;
    uint32_t wide[6] = {0xabcde, 0x12345, 0xabcde, 0xfffff, 0x12345, 0xabcde};
    CHECK(pl_lsh_tables_build(&o, 6, wide, NULL, &t) == PL_OK, "%s", pl_error_msg());
    CHECK(pl_lsh_tables_bits(t) == 3, "table bits %d", pl_lsh_tables_bits(t));
    b = pl_lsh_tables_bucket(t, 0, 0xabcde, &n);
    int have = 0;
    for (uint32_t k = 0; k < n; k++) have += b[k] == 0 || b[k] == 2 || b[k] == 5;
    CHECK(have == 3, "folded bucket lost items with the same key");
    pl_lsh_tables_destroy(t);
}

static void test_sampling(void) {
    pl_lsh_opts o;
    pl_lsh_opts_default(&o);
    o.K = 2;
    o.L = 3;
    o.bucket_cap = 10;
    o.table_bits = 2;
    /* item i is in bucket 0 of the first (i % 4) tables... items 0..7, key 0 of table t
     * holds items with (i % 4) > t */
    uint32_t keys[8 * 3];
    for (int i = 0; i < 8; i++)
        for (int tb = 0; tb < 3; tb++) keys[i * 3 + tb] = (i % 4) > tb ? 0 : 1 + (uint32_t)(i % 3);
    pl_lsh_tables *t;
    CHECK(pl_lsh_tables_build(&o, 8, keys, NULL, &t) == PL_OK, "%s", pl_error_msg());
    pl_lsh_sampler *s;
    CHECK(pl_lsh_sampler_create(8, 3, &s) == PL_OK, "%s", pl_error_msg());
    uint32_t q[3] = {0, 0, 0}, out[8];
    /* counts: items 3,7 -> 3 tables; 2,6 -> 2; 1,5 -> 1 */
    pl_lsh_sample_opts so = {PL_LSH_UNION, 0, 0};
    int64_t n = pl_lsh_sample(t, q, &so, s, out, 8);
    CHECK(n == 6, "union found %lld, expected 6", (long long)n);
    n = pl_lsh_sample(t, q, &so, s, out, 4);
    CHECK(n == 4, "union capped at %lld, expected 4", (long long)n);
    so = (pl_lsh_sample_opts){PL_LSH_THRESHOLD, 0, 2};
    n = pl_lsh_sample(t, q, &so, s, out, 8);
    bool ok = n == 4;
    for (int64_t k = 0; k < n; k++) ok &= out[k] % 4 >= 2;
    CHECK(ok, "threshold 2 gave %lld ids", (long long)n);
    so = (pl_lsh_sample_opts){PL_LSH_TOPK, 3, 0};
    n = pl_lsh_sample(t, q, &so, s, out, 8);
    CHECK(n == 3 && out[0] % 4 == 3 && out[1] % 4 == 3 && out[2] % 4 == 2,
          "top-3 by frequency: n=%lld %u %u %u", (long long)n, out[0], out[1], out[2]);
    so.top_k = 100;
    n = pl_lsh_sample(t, q, &so, s, out, 8);
    CHECK(n == 6 && out[5] % 4 == 1, "top-100 returned %lld", (long long)n);
    /* the sampler is clean after each call */
    so = (pl_lsh_sample_opts){PL_LSH_UNION, 0, 0};
    n = pl_lsh_sample(t, q, &so, s, out, 8);
    CHECK(n == 6, "sampler state leaked between calls: %lld", (long long)n);
    pl_lsh_sampler_destroy(s);
    pl_lsh_tables_destroy(t);

    /* schedule: 10, then periods 15, 22, ... up to 30 */
    pl_lsh_schedule sc;
    pl_lsh_schedule_init(&sc, 10, 1.5, 30);
    int due[200], nd = 0;
    for (int step = 1; step < 120; step++)
        if (pl_lsh_schedule_due(&sc, step)) due[nd++] = step;
    CHECK(nd >= 4 && due[0] == 10 && due[1] == 25 && due[nd - 1] - due[nd - 2] == 30,
          "schedule: %d rebuilds, first at %d, %d", nd, due[0], nd > 1 ? due[1] : -1);
}

/* Streaming tables: FIFO keeps the newest ids, inserts and queries from several threads
 * at once, and sampling over both kinds of tables. */
typedef struct live_ctx {
    pl_lsh_live *lv;
    int id0;
    long n;
    bool bad;
} live_ctx;

static void *live_writer(void *arg) {
    live_ctx *c = arg;
    uint64_t rng = (uint64_t)c->id0;
    pl_lsh_sampler *s;
    if (pl_lsh_sampler_create(100000, 4, &s) != PL_OK) return NULL;
    uint32_t out[256];
    pl_lsh_sample_opts so = {PL_LSH_TOPK, 50, 0};
    for (int i = 0; i < 20000; i++) {
        uint32_t keys[4];
        for (int t = 0; t < 4; t++) keys[t] = (uint32_t)pl_rng_below(&rng, 16);
        pl_lsh_live_insert(c->lv, keys, (uint32_t)(c->id0 + i % 1000), &rng);
        int64_t n = pl_lsh_sample_live(c->lv, keys, &so, s, out, 256);
        for (int64_t k = 0; k < n; k++)
            if (out[k] >= 100000) c->bad = true;
        c->n += n;
    }
    pl_lsh_sampler_destroy(s);
    return NULL;
}

static void test_live(void) {
    pl_lsh_opts o;
    pl_lsh_opts_default(&o);
    o.K = 4;
    o.L = 4;
    o.bucket_cap = 5;
    o.policy = PL_LSH_FIFO;
    pl_lsh_live *lv;
    CHECK(pl_lsh_live_create(&o, &lv) == PL_OK, "%s", pl_error_msg());
    uint64_t rng = 1;
    uint32_t keys[4] = {3, 3, 3, 3}, other[4] = {1, 2, 3, 4};
    for (uint32_t id = 0; id < 12; id++) pl_lsh_live_insert(lv, keys, id, &rng);
    pl_lsh_live_insert(lv, other, 99, &rng);
    pl_lsh_sampler *s;
    CHECK(pl_lsh_sampler_create(100, 8, &s) == PL_OK, "%s", pl_error_msg());
    uint32_t out[100];
    pl_lsh_sample_opts so = {PL_LSH_UNION, 0, 0};
    int64_t n = pl_lsh_sample_live(lv, keys, &so, s, out, 100);
    int seen[100] = {0};
    for (int64_t k = 0; k < n; k++) seen[out[k]]++;
    CHECK(n == 6 && seen[7] && seen[11] && seen[99] && !seen[6], "fifo live bucket: %lld ids",
          (long long)n);
    so = (pl_lsh_sample_opts){PL_LSH_TOPK, 5, 0};
    n = pl_lsh_sample_live(lv, keys, &so, s, out, 100);
    bool has99 = false;
    for (int64_t k = 0; k < n; k++) has99 |= out[k] == 99;
    CHECK(n == 5 && !has99, "top-5 of a live bucket took the id found in one table only");
    /* both sources at once: table ids and live ids are counted together */
    uint32_t tk[2 * 4] = {3, 3, 3, 3, 0, 0, 0, 0};
    pl_lsh_tables *t;
    o.bucket_cap = 10;
    CHECK(pl_lsh_tables_build(&o, 2, tk, NULL, &t) == PL_OK, "%s", pl_error_msg());
    so = (pl_lsh_sample_opts){PL_LSH_THRESHOLD, 0, 5};
    n = pl_lsh_sample_both(t, lv, keys, &so, s, out, 100);
    /* id 0: 4 tables (no longer live); ids 8..11: 4 live buckets; id 7: 3 (id 99 pushed
     * it out of table 2's bucket); id 1: folded into some buckets only */
    CHECK(n == 0, "threshold 5 over both sources: %lld", (long long)n);
    so.threshold = 4;
    n = pl_lsh_sample_both(t, lv, keys, &so, s, out, 100);
    CHECK(n == 5, "threshold 4 over both sources: %lld ids", (long long)n);
    pl_lsh_tables_destroy(t);
    pl_lsh_sampler_destroy(s);
    pl_lsh_live_destroy(lv);

    /* two writers that also query, on reservoir buckets */
    o.policy = PL_LSH_RESERVOIR;
    o.bucket_cap = 16;
    CHECK(pl_lsh_live_create(&o, &lv) == PL_OK, "%s", pl_error_msg());
    live_ctx c[2] = {{lv, 0, 0, false}, {lv, 50000, 0, false}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, live_writer, &c[i]);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    CHECK(!c[0].bad && !c[1].bad && c[0].n > 0 && c[1].n > 0, "concurrent live inserts/queries");
    CHECK(pl_lsh_live_bytes(lv) >= 4u * 16 * 17 * 4, "live tables report %zu bytes",
          pl_lsh_live_bytes(lv));
    pl_lsh_live_destroy(lv);
}

/* Queries in one thread while another publishes new tables: nothing is freed under a
 * reader (ASan would see it), every bucket read is consistent. */
typedef struct pub_ctx {
    pl_lsh_index *ix;
    atomic_int stop;
    atomic_long queries;
    bool bad;
} pub_ctx;

static void *reader(void *arg) {
    pub_ctx *c = arg;
    while (!atomic_load(&c->stop)) {
        const pl_lsh_tables *t = pl_lsh_index_acquire(c->ix);
        if (t) {
            for (uint32_t key = 0; key < 16; key++) {
                uint32_t n;
                const uint32_t *b = pl_lsh_tables_bucket(t, 0, key, &n);
                for (uint32_t k = 0; k < n; k++)
                    if (b[k] >= 1000) c->bad = true;
            }
            atomic_fetch_add(&c->queries, 1);
        }
        pl_lsh_index_release(c->ix, t);
    }
    return NULL;
}

static void test_index(void) {
    pl_lsh_opts o;
    pl_lsh_opts_default(&o);
    o.K = 4;
    o.L = 4;
    pl_lsh_index *ix;
    CHECK(pl_lsh_index_create(&o, 16, 1000, &ix) == PL_OK, "%s", pl_error_msg());
    CHECK(pl_lsh_index_acquire(ix) == NULL, "tables before the first publish");
    uint32_t *keys = malloc(sizeof(uint32_t) * 1000 * 4);
    pub_ctx c = {ix, 0, 0, false};
    atomic_init(&c.stop, 0);
    atomic_init(&c.queries, 0);
    pthread_t th;
    pthread_create(&th, NULL, reader, &c);
    /* publish at least 200 times, and until the reader has queried a while (it may
     * start late on a loaded machine) */
    int published = 0;
    for (int r = 0; r < 200 || (atomic_load(&c.queries) < 100 && r < 200000); r++) {
        for (int i = 0; i < 4000; i++) keys[i] = (uint32_t)pl_rng_below(&rng_state, 16);
        CHECK(pl_lsh_index_publish(ix, keys) == PL_OK, "%s", pl_error_msg());
        published++;
    }
    atomic_store(&c.stop, 1);
    pthread_join(th, NULL);
    CHECK(!c.bad && atomic_load(&c.queries) > 0, "concurrent queries: %ld, bad %d",
          (long)atomic_load(&c.queries), c.bad);
    CHECK(pl_lsh_index_version(ix) == published, "version %lld",
          (long long)pl_lsh_index_version(ix));
    free(keys);
    pl_lsh_index_destroy(ix);
}

/* ---------------------------------------------------------------- primitives */

static void test_vec(void) {
    const pl_vec_ops *f = pl_vec(), *r = pl_vec_ref();
    const int sizes[] = {1, 15, 16, 17, 100, 128, 200, 300};
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
        int d = sizes[si], n = 37;
        float *W = malloc(sizeof(float) * (size_t)(n * d)), *h = malloc(sizeof(float) * (size_t)d);
        float *b = malloc(sizeof(float) * (size_t)n), o1[37], o2[37];
        for (int i = 0; i < n * d; i++) W[i] = frand() - 0.5f;
        for (int i = 0; i < d; i++) h[i] = frand() - 0.5f;
        for (int i = 0; i < n; i++) b[i] = frand();
        uint32_t ids[37];
        for (int i = 0; i < n; i++) ids[i] = (uint32_t)((i * 7) % n);
        f->gather_dots(W, d, b, ids, n, h, d, o1);
        r->gather_dots(W, d, b, ids, n, h, d, o2);
        double e = 0;
        for (int i = 0; i < n; i++) e = fmax(e, fabs(o1[i] - o2[i]));
        CHECK(e < 1e-4, "gather_dots d=%d: error %g", d, e);
        float g[37], *G1 = calloc((size_t)(n * d), sizeof(float)),
                     *G2 = calloc((size_t)(n * d), sizeof(float));
        float *dh1 = calloc((size_t)d, sizeof(float)), *dh2 = calloc((size_t)d, sizeof(float));
        for (int i = 0; i < n; i++) g[i] = i % 5 ? frand() - 0.5f : 0;
        f->scatter_rows(W, d, G1, d, ids, g, n, h, d, dh1);
        r->scatter_rows(W, d, G2, d, ids, g, n, h, d, dh2);
        e = 0;
        for (int i = 0; i < n * d; i++) e = fmax(e, fabs(G1[i] - G2[i]));
        for (int i = 0; i < d; i++) e = fmax(e, fabs(dh1[i] - dh2[i]));
        CHECK(e < 1e-4, "scatter_rows d=%d: error %g", d, e);
        for (int nn = 1; nn <= 200; nn += 67) { /* x (d, with zeros) times a d x nn matrix */
            float *A = malloc(sizeof(float) * (size_t)(d * nn)), *y1 = malloc(4 * (size_t)nn),
                  *y2 = malloc(4 * (size_t)nn), *x = malloc(4 * (size_t)d);
            for (int i = 0; i < d * nn; i++) A[i] = frand() - 0.5f;
            for (int i = 0; i < d; i++) x[i] = i % 4 == 1 ? 0 : frand() - 0.5f;
            f->vecmat(x, d, A, nn, nn, y1);
            r->vecmat(x, d, A, nn, nn, y2);
            double ev = 0;
            for (int j = 0; j < nn; j++) ev = fmax(ev, fabs(y1[j] - y2[j]));
            CHECK(ev < 1e-4, "vecmat d=%d n=%d: error %g", d, nn, ev);
            free(A), free(y1), free(y2), free(x);
        }
        float *m1 = calloc((size_t)d, 4), *v1 = calloc((size_t)d, 4), *m2 = calloc((size_t)d, 4),
              *v2 = calloc((size_t)d, 4), *w1 = malloc(4 * (size_t)d), *w2 = malloc(4 * (size_t)d);
        float *g1 = malloc(4 * (size_t)d), *g2 = malloc(4 * (size_t)d);
        for (int i = 0; i < d; i++) w1[i] = w2[i] = frand(), g1[i] = g2[i] = frand() - 0.5f;
        pl_adam_step st = {0.01f, 0.9f, 0.999f, 1e-8f};
        f->adam(w1, m1, v1, g1, d, &st, true);
        r->adam(w2, m2, v2, g2, d, &st, true);
        e = 0;
        for (int i = 0; i < d; i++)
            e = fmax(e, fabs(w1[i] - w2[i]) + fabs(m1[i] - m2[i]) + fabs(g1[i]));
        CHECK(e < 1e-5, "adam d=%d: error %g", d, e);
        free(m1), free(v1), free(m2), free(v2), free(w1), free(w2), free(g1), free(g2);
        free(G1), free(G2), free(dh1), free(dh2), free(W), free(h), free(b);
    }
    /* sgemm on shapes around the tile sizes, every transpose, alpha/beta */
    const int shp[][3] = {{1, 1, 1},     {12, 32, 8},  {13, 33, 257},
                          {25, 70, 130}, {133, 17, 5}, {7, 100, 600}};
    for (size_t si = 0; si < sizeof shp / sizeof *shp; si++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                int M = shp[si][0], N = shp[si][1], K = shp[si][2];
                float *A = malloc(sizeof(float) * (size_t)(M * K)),
                      *B = malloc(sizeof(float) * (size_t)(K * N));
                float *C1 = malloc(sizeof(float) * (size_t)(M * N)),
                      *C2 = malloc(sizeof(float) * (size_t)(M * N));
                for (int i = 0; i < M * K; i++) A[i] = frand() - 0.5f;
                for (int i = 0; i < K * N; i++) B[i] = frand() - 0.5f;
                for (int i = 0; i < M * N; i++) C1[i] = C2[i] = frand();
                f->sgemm(ta, tb, M, N, K, 0.5f, A, ta ? M : K, B, tb ? K : N, 2.0f, C1, N);
                r->sgemm(ta, tb, M, N, K, 0.5f, A, ta ? M : K, B, tb ? K : N, 2.0f, C2, N);
                double e = 0;
                for (int i = 0; i < M * N; i++) e = fmax(e, fabs(C1[i] - C2[i]));
                CHECK(e < 1e-3, "sgemm %dx%dx%d ta=%d tb=%d: error %g", M, N, K, ta, tb, e);
                /* beta = 0 never reads C */
                for (int i = 0; i < M * N; i++) C1[i] = NAN;
                f->sgemm(ta, tb, M, N, K, 1.0f, A, ta ? M : K, B, tb ? K : N, 0.0f, C1, N);
                bool finite = true;
                for (int i = 0; i < M * N; i++) finite &= isfinite(C1[i]);
                CHECK(finite, "sgemm with beta 0 read C (%dx%dx%d)", M, N, K);
                free(A), free(B), free(C1), free(C2);
            }
}

/* ---------------------------------------------------------------- reader */

static void expect_parse_error(const char *text, const char *where, const char *what) {
    pl_xc_data *d = NULL;
    pl_status s = pl_xc_data_parse(text, strlen(text), "t.txt", &d);
    CHECK(s == PL_ERR_INPUT && d == NULL, "parsing %s: status %d", where, (int)s);
    const char *msg = pl_error_msg();
    CHECK(strstr(msg, where) && strstr(msg, what), "message '%s' lacks '%s' / '%s'", msg, where,
          what);
    pl_xc_data_destroy(d);
}

static void test_reader(void) {
    const char *good = "3 10 5\r\n"
                       "0,4 1:0.5 9:-2.25\r\n"
                       " 3:1e-3\n"
                       "2 \n\n";
    pl_xc_data *d = NULL;
    CHECK(pl_xc_data_parse(good, strlen(good), "g.txt", &d) == PL_OK, "%s", pl_error_msg());
    if (d) {
        CHECK(d->n == 3 && d->n_features == 10 && d->n_labels == 5, "header");
        CHECK(d->lrow[1] == 2 && d->lab[0] == 0 && d->lab[1] == 4, "labels of point 0");
        CHECK(d->row[1] == 2 && d->feat[1] == 9 && d->val[1] == -2.25f, "features of point 0");
        CHECK(d->lrow[2] == 2 && d->row[2] == 3 && fabsf(d->val[2] - 1e-3f) < 1e-9f, "point 1");
        CHECK(d->lrow[3] == 3 && d->lab[2] == 2 && d->row[3] == 3, "point 2 (labels only)");
        pl_xc_data_destroy(d);
    }
    expect_parse_error("", "t.txt:1:", "empty file");
    expect_parse_error("3 10\n", "t.txt:1:", "header");
    expect_parse_error("x 10 5\n", "t.txt:1:", "header");
    expect_parse_error("1 10 5 7\n0 1:1\n", "t.txt:1:", "after the header");
    expect_parse_error("2 10 5\n0 1:1\n7 2:1\n", "t.txt:3:", "label 7 is out of range");
    expect_parse_error("2 10 5\n0 1:1\n1 10:1\n", "t.txt:3:", "feature index 10 is out of range");
    expect_parse_error("2 10 5\n0 1:1\n1 2:abc\n", "t.txt:3:", "not a number");
    expect_parse_error("2 10 5\n0 1:1\n1 2:nan\n", "t.txt:3:", "not finite");
    expect_parse_error("2 10 5\n0 1:1 1:2\n1 2:1\n", "t.txt:2:", "feature 1 appears twice");
    expect_parse_error("2 10 5\n0,0 1:1\n", "t.txt:2:", "label 0 appears twice");
    expect_parse_error("2 10 5\n0;1 1:1\n", "t.txt:2:", "expected ','");
    expect_parse_error("2 10 5\n0 1:1 junk\n", "t.txt:2:", "FEATURE:VALUE");
    expect_parse_error("3 10 5\n0 1:1\n1 2:1\n", "t.txt", "says 3 points, the file has 2");
    expect_parse_error("1 10 5\n0 1:1\n1 2:1\n", "t.txt:3:", "more points than the 1");
    expect_parse_error("1 0 5\n0 1:1\n", "t.txt:1:", "at least 1");
    expect_parse_error("2000000000 10 5\n0 1:1\n", "t.txt:1:", "more lines than");
    expect_parse_error("2 10 5\n4,1,4 1:1\n1 2:1\n", "t.txt:2:", "label 4 appears twice");
    pl_xc_data *d2;
    CHECK(pl_xc_data_read("/nonexistent/x.txt", &d2) == PL_ERR_IO &&
              strstr(pl_error_msg(), "/nonexistent/x.txt"),
          "missing file: %s", pl_error_msg());
}

/* ---------------------------------------------------------------- HALOS */

static void test_halos(void) {
    /* outputs in clusters; queries near a cluster: HALOS must find the exact best */
    const int C = 20000, D = 32, NQ = 200;
    float *W = malloc(sizeof(float) * C * D), *b = calloc(C, sizeof(float)),
          *H = malloc(sizeof(float) * NQ * D);
    for (int j = 0; j < C * D; j++) W[j] = gauss();
    for (int q = 0; q < NQ; q++) {
        int j = (int)pl_rng_below(&rng_state, C);
        for (int i = 0; i < D; i++) H[q * D + i] = W[j * D + i] + 0.3f * gauss();
    }
    pl_halos_opts o;
    pl_halos_opts_default(&o, C);
    o.threads = 2;
    pl_halos_index *ix;
    CHECK(pl_halos_index_build(W, b, C, D, &o, &ix) == PL_OK, "%s", pl_error_msg());
    pl_halos_query *q;
    CHECK(pl_halos_query_create(ix, &q) == PL_OK, "%s", pl_error_msg());
    uint32_t el[NQ * 5], hl[5];
    float es[NQ * 5], hs[5];
    CHECK(pl_halos_exact_topk(ix, H, D, NQ, 5, el, es) == PL_OK, "exact");
    /* the exact top 1 against brute force */
    bool exact_ok = true;
    for (int r = 0; r < NQ; r++) {
        float best = -INFINITY;
        for (int j = 0; j < C; j++) {
            float s = 0;
            for (int i = 0; i < D; i++) s += W[j * D + i] * H[r * D + i];
            best = s > best ? s : best;
        }
        exact_ok &= fabsf(best - es[r * 5]) < 1e-3f * fmaxf(1, fabsf(best));
    }
    CHECK(exact_ok, "exact top-1 differs from brute force");
    int hits = 0;
    int64_t scored = 0, ns;
    for (int r = 0; r < NQ; r++) {
        CHECK(pl_halos_topk(q, H + r * D, 5, hl, hs, &ns) == PL_OK, "topk");
        hits += hl[0] == el[r * 5];
        scored += ns;
    }
    CHECK(hits >= NQ * 9 / 10, "halos found the exact top-1 for %d of %d queries", hits, NQ);
    CHECK(scored < (int64_t)NQ * C / 4, "halos scored %lld of %lld", (long long)scored,
          (long long)NQ * C);
    /* columns layout gives the same index */
    float *Wt = malloc(sizeof(float) * C * D);
    for (int j = 0; j < C; j++)
        for (int i = 0; i < D; i++) Wt[i * C + j] = W[j * D + i];
    pl_halos_opts oc = o;
    oc.layout = PL_HALOS_COLS;
    pl_halos_index *ix2;
    CHECK(pl_halos_index_build(Wt, b, C, D, &oc, &ix2) == PL_OK, "%s", pl_error_msg());
    pl_halos_query *q2;
    pl_halos_query_create(ix2, &q2);
    uint32_t hl2[5];
    float hs2[5];
    pl_halos_topk(q, H, 5, hl, hs, NULL);
    pl_halos_topk(q2, H, 5, hl2, hs2, NULL);
    CHECK(memcmp(hl, hl2, sizeof hl) == 0, "rows and columns layouts differ");
    pl_halos_query_destroy(q2);
    pl_halos_index_destroy(ix2);
    /* examples add their labels under their own hidden vectors */
    int64_t lp[2] = {0, 1};
    uint32_t lab[1] = {123};
    CHECK(pl_halos_index_add_examples(ix, H, D, 1, lp, lab) == PL_OK, "%s", pl_error_msg());
    lab[0] = (uint32_t)C;
    CHECK(pl_halos_index_add_examples(ix, H, D, 1, lp, lab) == PL_ERR_ARGUMENT,
          "label out of range accepted");
    pl_halos_query_destroy(q);
    pl_halos_index_destroy(ix);
    free(W), free(Wt), free(b), free(H);
}

/* ---------------------------------------------------------------- export */

static void test_export(void) {
    pl_xc_model *m;
    CHECK(pl_xc_model_create(50, 8, 30, 3, &m) == PL_OK, "%s", pl_error_msg());
    for (int i = 0; i < 8; i++) m->b1[i] = 0.1f * (float)i - 0.3f;
    for (int j = 0; j < 30; j++) m->b2[j] = 0.01f * (float)j;
    char path[] = "/tmp/pillar_test_lsh_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    close(fd);
    CHECK(pl_xc_export_onnx(m, path) == PL_OK, "%s", pl_error_msg());
    pl_xc_model *r;
    CHECK(pl_xc_import_onnx(path, &r) == PL_OK, "%s", pl_error_msg());
    CHECK(r->n_features == 50 && r->hidden == 8 && r->n_labels == 30 &&
              memcmp(r->W2, m->W2, sizeof(float) * 240) == 0 && memcmp(r->b1, m->b1, 32) == 0,
          "round trip changed the model");
    pl_xc_model_destroy(r);
    /* the engine runs it: scores of two rows match the model's own forward pass */
    pillar_model *pm;
    CHECK(pillar_model_load(path, &pm) == PILLAR_OK, "%s", pillar_last_error());
    pillar_session *sess = NULL;
    if (pm && pillar_session_create(pm, NULL, &sess) == PILLAR_OK) {
        float x[2 * 50] = {0};
        x[3] = 0.5f, x[17] = -1.0f, x[50 + 49] = 2.0f;
        int64_t dims[2] = {2, 50};
        pillar_tensor *in, *out = NULL;
        pillar_tensor_wrap(PILLAR_FLOAT32, 2, dims, x, &in);
        const char *names[1] = {"features"};
        pillar_status s =
            pillar_session_run(sess, 1, names, (const pillar_tensor *const *)&in, 1, NULL, &out);
        CHECK(s == PILLAR_OK, "run: %s", pillar_last_error());
        if (s == PILLAR_OK) {
            const float *y = pillar_tensor_data(out);
            float h[8];
            uint32_t f0[2] = {3, 17};
            float v0[2] = {0.5f, -1.0f};
            pl_xc_hidden(m, f0, v0, 2, h);
            double e = 0;
            for (int j = 0; j < 30; j++) {
                float s2 = m->b2[j];
                for (int k = 0; k < 8; k++) s2 += m->W2[j * 8 + k] * h[k];
                e = fmax(e, fabs(s2 - y[j]));
            }
            CHECK(e < 1e-5, "engine scores differ from the model by %g", e);
            pillar_tensor_destroy(out);
        }
        pillar_tensor_destroy(in);
        pillar_session_destroy(sess);
    } else {
        CHECK(0, "session: %s", pillar_last_error());
    }
    pillar_model_destroy(pm);
    remove(path);
    pl_xc_model_destroy(m);
}

/* ---------------------------------------------------------------- --lsh-output sessions */

/* A model built in the IR: x [batch, D] -> (Gemm W [C, D]^T + b | MatMul W [D, C] + b
 * -> Softmax) -> y. W's rows have unit norm, so the best logit is the row closest in
 * direction to x (the bias is tiny). */
static pl_model *lo_model(int C, int D, bool gemm, bool softmax, const char *last_op) {
    pl_model *m = calloc(1, sizeof *m);
    m->path = strdup("lsh_output_test");
    m->nopsets = 1;
    m->opsets = calloc(1, sizeof(pl_opset));
    m->opsets[0].domain = strdup("");
    m->opsets[0].version = 13;
    pl_graph *g = m->graph = pl_graph_new();
    int x = pl_graph_add_value(g, "x"), w = pl_graph_add_value(g, "W"), b = pl_graph_add_value(g, "b");
    g->values[x].kind = PL_VALUE_INPUT;
    g->values[x].declared = true;
    int64_t xd[2] = {-1, D};
    pl_tensor_set_shape(&g->values[x].t, PL_F32, 2, xd);
    g->values[x].dim_names[0] = strdup("batch");
    g->inputs = malloc(sizeof(int));
    g->inputs[g->ninputs++] = x;
    int64_t wd[2] = {gemm ? C : D, gemm ? D : C}, bd[1] = {C};
    g->values[w].kind = g->values[b].kind = PL_VALUE_CONST;
    pl_tensor_set_shape(&g->values[w].t, PL_F32, 2, wd);
    pl_tensor_set_shape(&g->values[b].t, PL_F32, 1, bd);
    pl_tensor_alloc(&g->values[w].t);
    pl_tensor_alloc(&g->values[b].t);
    float *W = g->values[w].t.data, *B = g->values[b].t.data;
    uint64_t r = 77;
    for (int j = 0; j < C; j++) {
        float row[64], n2 = 0;
        for (int d = 0; d < D; d++) row[d] = pl_gauss_from(pl_rng_next(&r)), n2 += row[d] * row[d];
        for (int d = 0; d < D; d++) W[gemm ? (int64_t)j * D + d : (int64_t)d * C + j] = row[d] / sqrtf(n2);
        B[j] = 0.001f * (float)(j % 7);
    }
    const char *all[3] = {gemm ? "Gemm" : "MatMul", gemm ? NULL : "Add", softmax ? "Softmax" : NULL}, *ops[3];
    if (last_op) all[0] = last_op, all[1] = all[2] = NULL;
    int nops = 0;
    for (int k = 0; k < 3; k++)
        if (all[k]) ops[nops++] = all[k];
    int cur = x;
    for (int k = 0; k < nops; k++) {
        bool last = k == nops - 1;
        char name[16];
        snprintf(name, sizeof name, "t%d", k);
        int out = pl_graph_add_value(g, last ? "y" : name);
        int i = pl_graph_add_node(g);
        pl_node *n = &g->nodes[i];
        n->name = strdup(ops[k]);
        n->op_type = strdup(ops[k]);
        n->domain = strdup("");
        n->in = calloc(3, sizeof(int));
        n->out = calloc(1, sizeof(int));
        n->in[n->nin++] = cur;
        if (k == 0 && strcmp(ops[0], "Relu")) n->in[n->nin++] = w;
        if ((k == 0 && gemm && !last_op) || (k == 1 && !gemm)) n->in[n->nin++] = b;
        n->out[n->nout++] = out;
        g->values[out].producer = i;
        if (k == 0 && gemm && !last_op) {
            n->attrs = calloc(1, sizeof(pl_attr));
            n->attrs[0].name = strdup("transB");
            n->attrs[0].type = PL_ATTR_INT;
            n->attrs[0].i = 1;
            n->nattr = 1;
        }
        cur = out;
    }
    g->values[cur].is_output = true;
    g->outputs = malloc(sizeof(int));
    g->outputs[g->noutputs++] = cur;
    return m;
}

static pillar_session *lo_session(pl_model *m, int K, int L, int k, int threads, int batch) {
    pillar_options *o;
    pillar_session *s = NULL;
    pillar_options_create(&o);
    pillar_options_set_threads(o, threads);
    pillar_options_set_dim(o, "batch", batch);
    if (K && pillar_options_set_lsh_output(o, K, L, k) != PILLAR_OK) printf("set: %s\n", pillar_last_error());
    if (pillar_session_create(m, o, &s) != PILLAR_OK) s = NULL;
    pillar_options_destroy(o);
    return s;
}

/* One model: each query is a noisy copy of a row j (scaled), so row j is the exact
 * best and collides with it in nearly every table: the LSH session must return j
 * first, and every label it returns with the exact logit. */
static void lo_check(bool gemm, bool softmax, int threads) {
    const int C = 12000, D = 24, N = 37, k = 7;
    pl_model *m = lo_model(C, D, gemm, softmax, NULL);
    pillar_session *ex = lo_session(m, 0, 0, 0, threads, N), *ap = lo_session(m, 12, 24, k, threads, N);
    CHECK(ex && ap, "sessions (gemm %d softmax %d): %s", gemm, softmax, pillar_last_error());
    if (!ex || !ap) goto out;
    const char *n0 = NULL, *n1 = NULL;
    pillar_dtype t0 = PILLAR_UNDEFINED, t1 = PILLAR_UNDEFINED;
    size_t nd = 0;
    const int64_t *dims = NULL;
    CHECK(pillar_session_output_count(ap) == 2, "outputs %zu", pillar_session_output_count(ap));
    pillar_session_output(ap, 0, &n0, &t0, &nd, &dims);
    CHECK(n0 && !strcmp(n0, "y_topk_scores") && t0 == PILLAR_FLOAT32 && nd == 2 && dims[0] == N && dims[1] == k,
          "output 0 '%s'", n0 ? n0 : "");
    pillar_session_output(ap, 1, &n1, &t1, NULL, NULL);
    CHECK(n1 && !strcmp(n1, "y_topk_labels") && t1 == PILLAR_INT64, "output 1 '%s'", n1 ? n1 : "");
    int64_t xd[2] = {N, D};
    pillar_tensor *x;
    pillar_tensor_create(PILLAR_FLOAT32, 2, xd, NULL, &x);
    float *xv = pillar_tensor_data(x);
    int truth[64];
    uint64_t r = 5;
    const float *W = NULL;
    for (int v = 0; v < m->graph->nvalues; v++)
        if (!strcmp(m->graph->values[v].name, "W")) W = m->graph->values[v].t.data;
    for (int i = 0; i < N; i++) {
        truth[i] = (int)(pl_rng_next(&r) % (uint64_t)C);
        for (int d = 0; d < D; d++) {
            float wv = gemm ? W[(int64_t)truth[i] * D + d] : W[(int64_t)d * C + truth[i]];
            xv[i * D + d] = 4.0f * wv + 0.05f * pl_gauss_from(pl_rng_next(&r));
        }
    }
    const char *in = "x";
    pillar_tensor *eo[1] = {NULL}, *ao[2] = {NULL, NULL};
    CHECK(pillar_session_run(ex, 1, &in, (const pillar_tensor *const *)&x, 1, NULL, eo) == PILLAR_OK, "%s",
          pillar_last_error());
    CHECK(pillar_session_run(ap, 1, &in, (const pillar_tensor *const *)&x, 2, NULL, ao) == PILLAR_OK, "%s",
          pillar_last_error());
    if (eo[0] && ao[0] && ao[1]) {
        const float *y = pillar_tensor_data(eo[0]), *sc = pillar_tensor_data(ao[0]);
        const int64_t *lab = pillar_tensor_data(ao[1]);
        int top_ok = 0, exact_top = 0;
        for (int i = 0; i < N; i++) {
            int best = 0;
            for (int j = 1; j < C; j++)
                if (y[i * C + j] > y[i * C + best]) best = j;
            exact_top += best == truth[i];
            top_ok += lab[i * k] == best;
            /* logits of the returned labels, recomputed in double */
            for (int t = 0; t < k; t++) {
                int64_t l = lab[i * k + t];
                if (l < 0) {
                    CHECK(isinf(sc[i * k + t]) && sc[i * k + t] < 0, "empty slot score %g", sc[i * k + t]);
                    continue;
                }
                double z = 0.001 * (double)(l % 7);
                for (int d = 0; d < D; d++)
                    z += (double)xv[i * D + d] * (gemm ? W[l * D + d] : W[(int64_t)d * C + l]);
                CHECK(fabs(z - sc[i * k + t]) < 1e-4, "row %d slot %d label %lld: score %g, logit %g", i, t,
                      (long long)l, sc[i * k + t], z);
                CHECK(t == 0 || sc[i * k + t] <= sc[i * k + t - 1], "row %d: scores not sorted at %d", i, t);
                for (int u = 0; u < t; u++) CHECK(lab[i * k + u] != l, "row %d: label %lld twice", i, (long long)l);
            }
        }
        CHECK(exact_top == N, "test setup: exact best is the planted row in %d of %d", exact_top, N);
        CHECK(top_ok == N, "gemm %d softmax %d threads %d isa %s: LSH top-1 = exact in %d of %d rows", gemm,
              softmax, threads, pl_isa_name(pl_cpu_isa()), top_ok, N);
    }
    pillar_tensor_destroy(eo[0]);
    pillar_tensor_destroy(ao[0]);
    pillar_tensor_destroy(ao[1]);
    pillar_tensor_destroy(x);
out:
    pillar_session_destroy(ex);
    pillar_session_destroy(ap);
    pl_model_free(m);
}

/* Creating the session fails with a message naming the output / node and the reason. */
static void lo_error(pl_model *m, int K, const char *want) {
    pillar_session *s = lo_session(m, K, 8, 5, 1, 2);
    CHECK(!s && strstr(pillar_last_error(), want), "expected an error with '%s', got '%s'", want,
          s ? "success" : pillar_last_error());
    pillar_session_destroy(s);
    pl_model_free(m);
}

static void test_lsh_output(void) {
    for (int isa = PL_ISA_REF; isa <= (int)pl_cpu()->best; isa++) {
        pl_cpu_force_isa(isa);
        lo_check(true, false, 1);
        lo_check(false, true, 2);
        if (isa == PL_ISA_REF) lo_check(true, true, 2);
    }
    pl_cpu_force_isa(-1);
    printf("lsh-output sessions checked on %d kernel levels (%d checks so far)\n", (int)pl_cpu()->best + 1, checks);
    /* more slots than candidates: the rest are label -1, score -inf */
    {
        pl_model *m = lo_model(10000, 8, true, false, NULL);
        pillar_session *s = lo_session(m, 30, 1, 5000, 1, 1);
        CHECK(s != NULL, "%s", pillar_last_error());
        if (s) {
            int64_t xd[2] = {1, 8};
            float xv[8] = {1, 0, 0, 0, 0, 0, 0, 0};
            pillar_tensor *x, *o[2] = {NULL, NULL};
            pillar_tensor_wrap(PILLAR_FLOAT32, 2, xd, xv, &x);
            const char *in = "x";
            CHECK(pillar_session_run(s, 1, &in, (const pillar_tensor *const *)&x, 2, NULL, o) == PILLAR_OK, "%s",
                  pillar_last_error());
            if (o[1]) {
                const int64_t *lab = pillar_tensor_data(o[1]);
                const float *sc = pillar_tensor_data(o[0]);
                int found = 0;
                while (found < 5000 && lab[found] >= 0) found++;
                CHECK(found >= 10 && found < 5000, "%d labels found of 5000 slots", found);
                for (int i = found; i < 5000; i++)
                    if (lab[i] != -1 || !(isinf(sc[i]) && sc[i] < 0)) {
                        CHECK(false, "slot %d: label %lld score %g", i, (long long)lab[i], sc[i]);
                        break;
                    }
            }
            pillar_tensor_destroy(o[0]);
            pillar_tensor_destroy(o[1]);
            pillar_tensor_destroy(x);
        }
        pillar_session_destroy(s);
        pl_model_free(m);
    }
    lo_error(lo_model(5000, 8, true, false, NULL), 8, "'Gemm' (Gemm) has 5000 outputs");
    lo_error(lo_model(12000, 8, true, false, "Relu"), 8, "output 'y' is made by node 'Relu' (Relu), not by a Gemm");
    pillar_options *o;
    pillar_options_create(&o);
    CHECK(pillar_options_set_lsh_output(o, 31, 8, 5) == PILLAR_ERR_ARGUMENT, "K 31 accepted");
    CHECK(pillar_options_set_lsh_output(o, 8, 0, 5) == PILLAR_ERR_ARGUMENT, "L 0 accepted");
    CHECK(pillar_options_set_lsh_output(o, 8, 8, 0) == PILLAR_ERR_ARGUMENT, "topk 0 accepted");
    CHECK(strstr(pillar_last_error(), "top-k"), "message '%s'", pillar_last_error());
    CHECK(pillar_options_set_lsh_output(o, 0, 0, 0) == PILLAR_OK, "turning off");
    pillar_options_destroy(o);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    test_simhash(1.0f, 64, 0.04);
    test_simhash(1.0f / 3, 256, 0.06);
    test_wta();
    test_mips();
    test_tables();
    test_sampling();
    test_index();
    test_live();
    test_vec();
    test_reader();
    test_halos();
    test_export();
    test_lsh_output();
    printf("test_lsh: %d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
