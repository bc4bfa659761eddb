/* halos.c -- the HALOS-style output index: MIPS-transformed neurons in LSH tables,
 * candidate retrieval and exact scoring of the candidates only. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lsh/halos.h"
#include "lsh/vec.h"

#define AUG_BLOCK 1024 /* neurons transformed + hashed per block while building */

struct pl_halos_index {
    pl_halos_opts o;
    int64_t n_out, dim, hdim; /* hdim = dim + 2: [w, b] plus the MIPS coordinate */
    float *W;                 /* n_out x dim */
    float *b;                 /* n_out */
    float *norm;              /* |[w_j, b_j]| */
    uint8_t *range;           /* norm range of each neuron */
    float U[256];             /* largest norm per range */
    pl_lsh_hash *hash;
    uint32_t *keys; /* n_out x L: each neuron's keys */
    uint8_t *is_head;
    uint32_t *head; /* outputs scored for every query */
    int64_t n_head;
    pl_lsh_tables *tables;
    size_t tables_bytes;
};

struct pl_halos_query {
    const pl_halos_index *ix;
    void *scratch;
    pl_lsh_sampler *sampler;
    float *qaug;
    uint32_t *keys;
    uint32_t *cand;
    float *score;
    int64_t cap;
};

void pl_halos_opts_default(pl_halos_opts *o, int64_t n_out) {
    memset(o, 0, sizeof *o);
    pl_lsh_opts_default(&o->lsh);
    o->lsh.family = PL_LSH_SIMHASH;
    o->lsh.K = 14;
    o->lsh.L = 24;
    o->lsh.bucket_cap = 96;
    o->sample.mode = PL_LSH_TOPK;
    o->sample.top_k = (int)(n_out / 500 > 200 ? (n_out / 500 < INT32_MAX ? n_out / 500 : INT32_MAX) : 200);
    o->sample.threshold = 1;
    o->max_candidates = o->sample.top_k;
    o->mips_ranges = 0;
    o->head = n_out / 1000;
    o->layout = PL_HALOS_ROWS;
    o->threads = 1;
}

typedef struct hash_job {
    pl_halos_index *ix;
    int64_t r0, r1;
    pl_status status;
} hash_job;

/* Hashes neurons [r0, r1): [w, b] scaled by 1/U plus the MIPS coordinate. */
static void *hash_neurons(void *arg) {
    hash_job *j = arg;
    pl_halos_index *ix = j->ix;
    int64_t hd = ix->hdim, L = ix->o.lsh.L;
    float *aug = malloc(sizeof(float) * AUG_BLOCK * (size_t)hd);
    float *x = malloc(sizeof(float) * (size_t)(ix->dim + 1));
    j->status = PL_OK;
    if (!aug || !x) {
        j->status = PL_ERR_NOMEM;
    } else {
        for (int64_t r0 = j->r0; r0 < j->r1 && j->status == PL_OK; r0 += AUG_BLOCK) {
            int64_t rb = j->r1 - r0 < AUG_BLOCK ? j->r1 - r0 : AUG_BLOCK;
            for (int64_t r = 0; r < rb; r++) {
                memcpy(x, ix->W + (r0 + r) * ix->dim, sizeof(float) * (size_t)ix->dim);
                x[ix->dim] = ix->b[r0 + r];
                if (ix->o.mips_ranges > 0) {
                    pl_lsh_mips_data(x, ix->dim + 1, ix->U[ix->range[r0 + r]], aug + r * hd);
                } else {
                    memcpy(aug + r * hd, x, sizeof(float) * (size_t)(ix->dim + 1));
                    aug[r * hd + ix->dim + 1] = 0;
                }
            }
            j->status = pl_lsh_hash_rows(ix->hash, aug, hd, rb, ix->keys + r0 * L);
        }
    }
    free(aug);
    free(x);
    return NULL;
}

/* Tables over the neurons' keys plus n_extra (key, id) entries; head outputs are left
 * out (they are scored for every query anyway). */
static pl_status build_tables(pl_halos_index *ix, int64_t n_extra, const uint32_t *extra_keys,
                              const uint32_t *extra_ids) {
    int64_t L = ix->o.lsh.L, n = ix->n_out + n_extra;
    uint32_t *keys = malloc(sizeof(uint32_t) * (size_t)(n * L));
    uint32_t *ids = malloc(sizeof(uint32_t) * (size_t)n);
    if (!keys || !ids) {
        free(keys);
        free(ids);
        return pl_error(PL_ERR_NOMEM, "halos: out of memory for %lld table entries", (long long)n);
    }
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t id = i < ix->n_out ? (uint32_t)i : extra_ids[i - ix->n_out];
        if (ix->is_head[id]) continue;
        const uint32_t *k = i < ix->n_out ? ix->keys + i * L : extra_keys + (i - ix->n_out) * L;
        memcpy(keys + m * L, k, sizeof(uint32_t) * (size_t)L);
        ids[m++] = id;
    }
    pl_lsh_opts o = ix->o.lsh;
    if (!o.table_bits) {
        /* buckets sized for the neurons; examples only add entries */
        int bits = 0;
        while ((1ll << bits) < ix->n_out) bits++;
        o.table_bits = bits < 1 ? 1 : bits;
    }
    pl_lsh_tables *t = NULL;
    pl_status s = pl_lsh_tables_build_ids(&o, m, keys, NULL, ids, &t);
    free(keys);
    free(ids);
    if (s != PL_OK) return s;
    pl_lsh_tables_destroy(ix->tables);
    ix->tables = t;
    ix->tables_bytes = pl_lsh_tables_bytes(t);
    return PL_OK;
}

typedef struct biased {
    float b;
    uint32_t id;
} biased;

static int cmp_bias_desc(const void *pa, const void *pb) {
    const biased *a = pa, *b = pb;
    if (a->b != b->b) return a->b < b->b ? 1 : -1;
    return (a->id > b->id) - (a->id < b->id);
}

/* The `head` outputs with the largest bias: in a softmax layer the bias grows with a
 * label's popularity, and popular labels are the likeliest answers for any input, so
 * they are always scored (and kept out of the tables, whose buckets they would fill). */
static pl_status choose_head(pl_halos_index *ix) {
    int64_t nh = ix->o.head < ix->n_out ? ix->o.head : ix->n_out;
    ix->is_head = calloc((size_t)ix->n_out, 1);
    ix->head = malloc(sizeof(uint32_t) * (size_t)(nh ? nh : 1));
    biased *all = nh ? malloc(sizeof(biased) * (size_t)ix->n_out) : NULL;
    if (!ix->is_head || !ix->head || (nh && !all)) {
        free(all);
        return pl_error(PL_ERR_NOMEM, "halos: out of memory");
    }
    if (nh) {
        for (int64_t j = 0; j < ix->n_out; j++) all[j] = (biased){ix->b[j], (uint32_t)j};
        qsort(all, (size_t)ix->n_out, sizeof(biased), cmp_bias_desc);
        for (int64_t j = 0; j < nh; j++) {
            ix->head[j] = all[j].id;
            ix->is_head[all[j].id] = 1;
        }
    }
    ix->n_head = nh;
    free(all);
    return PL_OK;
}

pl_status pl_halos_index_build(const float *W, const float *b, int64_t n_out, int64_t dim,
                               const pl_halos_opts *o, pl_halos_index **out) {
    *out = NULL;
    if (!W || n_out < 1 || dim < 1 || n_out > UINT32_MAX - 1 || dim > (1 << 24))
        return pl_error(PL_ERR_ARGUMENT, "halos: a layer of %lld outputs x %lld inputs",
                        (long long)n_out, (long long)dim);
    if (o->max_candidates < 1)
        return pl_error(PL_ERR_ARGUMENT, "halos: max candidates %lld < 1",
                        (long long)o->max_candidates);
    PL_TRY(pl_lsh_opts_check(&o->lsh));
    pl_halos_index *ix = calloc(1, sizeof *ix);
    if (!ix) return pl_error(PL_ERR_NOMEM, "halos: out of memory");
    ix->o = *o;
    if (ix->o.threads < 1) ix->o.threads = 1;
    ix->n_out = n_out;
    ix->dim = dim;
    ix->hdim = dim + 2;
    ix->W = malloc(sizeof(float) * (size_t)(n_out * dim));
    ix->b = malloc(sizeof(float) * (size_t)n_out);
    ix->keys = malloc(sizeof(uint32_t) * (size_t)(n_out * o->lsh.L));
    ix->norm = malloc(sizeof(float) * (size_t)n_out);
    ix->range = malloc((size_t)n_out);
    pl_status s = PL_OK;
    if (o->mips_ranges < 0 || o->mips_ranges > 255) {
        s = pl_error(PL_ERR_ARGUMENT, "halos: %d norm ranges, expected 0..255", o->mips_ranges);
        goto fail;
    }
    if (!ix->W || !ix->b || !ix->keys || !ix->norm || !ix->range) {
        s = pl_error(PL_ERR_NOMEM, "halos: out of memory for a %lld x %lld layer", (long long)n_out,
                     (long long)dim);
        goto fail;
    }
    if (o->layout == PL_HALOS_ROWS) {
        memcpy(ix->W, W, sizeof(float) * (size_t)(n_out * dim));
    } else {
        for (int64_t i = 0; i < dim; i++)
            for (int64_t j = 0; j < n_out; j++) ix->W[j * dim + i] = W[i * n_out + j];
    }
    if (b)
        memcpy(ix->b, b, sizeof(float) * (size_t)n_out);
    else
        memset(ix->b, 0, sizeof(float) * (size_t)n_out);
    for (int64_t j = 0; j < n_out; j++) {
        double n2 = (double)ix->b[j] * ix->b[j];
        const float *w = ix->W + j * dim;
        for (int64_t i = 0; i < dim; i++) n2 += (double)w[i] * w[i];
        if (!isfinite(n2)) {
            s = pl_error(PL_ERR_INPUT, "halos: output %lld has a non-finite weight", (long long)j);
            goto fail;
        }
        ix->norm[j] = (float)sqrt(n2);
    }
    pl_lsh_norm_ranges(ix->norm, n_out, o->mips_ranges > 0 ? o->mips_ranges : 1, ix->range, ix->U);
    if ((s = pl_lsh_hash_create(&o->lsh, ix->hdim, &ix->hash)) != PL_OK) goto fail;

    int nt = ix->o.threads;
    if (nt > 64) nt = 64;
    if (nt > n_out / AUG_BLOCK + 1) nt = (int)(n_out / AUG_BLOCK + 1);
    hash_job jobs[64];
    pthread_t th[64];
    bool started[64] = {false};
    for (int t = 0; t < nt; t++)
        jobs[t] = (hash_job){ix, n_out * t / nt, n_out * (t + 1) / nt, PL_OK};
    for (int t = 1; t < nt; t++)
        started[t] = pthread_create(&th[t], NULL, hash_neurons, &jobs[t]) == 0;
    hash_neurons(&jobs[0]);
    for (int t = 1; t < nt; t++) {
        if (started[t])
            pthread_join(th[t], NULL);
        else
            hash_neurons(&jobs[t]); /* no thread: do its part here */
    }
    for (int t = 0; t < nt; t++)
        if (jobs[t].status != PL_OK) {
            s = pl_error(PL_ERR_NOMEM, "halos: out of memory while hashing the outputs");
            goto fail;
        }
    if ((s = choose_head(ix)) != PL_OK) goto fail;
    if ((s = build_tables(ix, 0, NULL, NULL)) != PL_OK) goto fail;
    *out = ix;
    return PL_OK;
fail:
    pl_halos_index_destroy(ix);
    return s;
}

void pl_halos_index_destroy(pl_halos_index *ix) {
    if (!ix) return;
    free(ix->W);
    free(ix->b);
    free(ix->keys);
    free(ix->norm);
    free(ix->range);
    free(ix->is_head);
    free(ix->head);
    pl_lsh_hash_destroy(ix->hash);
    pl_lsh_tables_destroy(ix->tables);
    free(ix);
}

int64_t pl_halos_index_outputs(const pl_halos_index *ix) {
    return ix->n_out;
}

int64_t pl_halos_index_dim(const pl_halos_index *ix) {
    return ix->dim;
}

size_t pl_halos_index_bytes(const pl_halos_index *ix) {
    return sizeof *ix + sizeof(float) * (size_t)(ix->n_out * (ix->dim + 1)) +
           sizeof(uint32_t) * (size_t)(ix->n_out * ix->o.lsh.L) + ix->tables_bytes;
}

/* The query form of a hidden vector: [h, 1] (the 1 meets the bias) and the MIPS 0. */
static void query_vector(const pl_halos_index *ix, const float *h, float *q) {
    memcpy(q, h, sizeof(float) * (size_t)ix->dim);
    q[ix->dim] = 1.0f;
    q[ix->dim + 1] = 0.0f;
}

pl_status pl_halos_index_add_examples(pl_halos_index *ix, const float *H, int64_t ldh, int64_t n,
                                      const int64_t *lab_ptr, const uint32_t *lab) {
    if (n < 0 || (n > 0 && (!H || !lab_ptr)))
        return pl_error(PL_ERR_ARGUMENT, "halos: no examples");
    int64_t L = ix->o.lsh.L;
    int64_t total = lab_ptr ? lab_ptr[n] - lab_ptr[0] : 0;
    for (int64_t i = 0; i < n; i++) {
        if (lab_ptr[i + 1] < lab_ptr[i])
            return pl_error(PL_ERR_ARGUMENT, "halos: example %lld has a negative label count",
                            (long long)i);
        for (int64_t k = lab_ptr[i]; k < lab_ptr[i + 1]; k++)
            if (lab[k] >= ix->n_out)
                return pl_error(PL_ERR_ARGUMENT, "halos: example %lld has label %u >= %lld outputs",
                                (long long)i, lab[k], (long long)ix->n_out);
    }
    uint32_t *keys = malloc(sizeof(uint32_t) * (size_t)((total ? total : 1) * L));
    uint32_t *ids = malloc(sizeof(uint32_t) * (size_t)(total ? total : 1));
    uint32_t *ek = malloc(sizeof(uint32_t) * (size_t)L);
    float *q = malloc(sizeof(float) * (size_t)ix->hdim);
    void *scratch = aligned_alloc(64, pl_lsh_hash_scratch_bytes(ix->hash));
    pl_status s = PL_OK;
    if (!keys || !ids || !ek || !q || !scratch) {
        s = pl_error(PL_ERR_NOMEM, "halos: out of memory for %lld example labels",
                     (long long)total);
    } else {
        int64_t e = 0;
        for (int64_t i = 0; i < n; i++) {
            query_vector(ix, H + i * ldh, q);
            pl_lsh_hash_dense(ix->hash, q, ek, scratch);
            for (int64_t k = lab_ptr[i]; k < lab_ptr[i + 1]; k++, e++) {
                memcpy(keys + e * L, ek, sizeof(uint32_t) * (size_t)L);
                ids[e] = lab[k];
            }
        }
        s = build_tables(ix, total, keys, ids);
    }
    free(keys);
    free(ids);
    free(ek);
    free(q);
    free(scratch);
    return s;
}

pl_status pl_halos_query_create(const pl_halos_index *ix, pl_halos_query **out) {
    *out = NULL;
    pl_halos_query *q = calloc(1, sizeof *q);
    if (!q) return pl_error(PL_ERR_NOMEM, "halos: out of memory");
    q->ix = ix;
    q->cap = ix->o.max_candidates < ix->n_out ? ix->o.max_candidates : ix->n_out;
    q->cap += ix->n_head;
    q->scratch = aligned_alloc(64, pl_lsh_hash_scratch_bytes(ix->hash));
    q->qaug = malloc(sizeof(float) * (size_t)ix->hdim);
    q->keys = malloc(sizeof(uint32_t) * (size_t)ix->o.lsh.L);
    q->cand = malloc(sizeof(uint32_t) * (size_t)q->cap);
    q->score = malloc(sizeof(float) * (size_t)q->cap);
    pl_status s = PL_OK;
    if (!q->scratch || !q->qaug || !q->keys || !q->cand || !q->score)
        s = pl_error(PL_ERR_NOMEM, "halos: out of memory for a query");
    else
        s = pl_lsh_sampler_create(ix->n_out, ix->o.lsh.L, &q->sampler);
    if (s != PL_OK) {
        pl_halos_query_destroy(q);
        return s;
    }
    *out = q;
    return PL_OK;
}

void pl_halos_query_destroy(pl_halos_query *q) {
    if (!q) return;
    free(q->scratch);
    free(q->qaug);
    free(q->keys);
    free(q->cand);
    free(q->score);
    pl_lsh_sampler_destroy(q->sampler);
    free(q);
}

/* Keeps the k largest (score, label) pairs in descending order. */
static inline void topk_push(int k, uint32_t *labels, float *scores, uint32_t label, float sc) {
    if (!(sc > scores[k - 1])) return;
    int i = k - 1;
    while (i > 0 && scores[i - 1] < sc) {
        scores[i] = scores[i - 1];
        labels[i] = labels[i - 1];
        i--;
    }
    scores[i] = sc;
    labels[i] = label;
}

static void topk_init(int k, uint32_t *labels, float *scores) {
    for (int i = 0; i < k; i++) {
        labels[i] = UINT32_MAX;
        scores[i] = -INFINITY;
    }
}

pl_status pl_halos_topk(pl_halos_query *q, const float *h, int k, uint32_t *labels, float *scores,
                        int64_t *n_scored) {
    const pl_halos_index *ix = q->ix;
    if (k < 1) return pl_error(PL_ERR_ARGUMENT, "halos: top-k with k = %d", k);
    query_vector(ix, h, q->qaug);
    pl_lsh_hash_dense(ix->hash, q->qaug, q->keys, q->scratch);
    int64_t nc = pl_lsh_sample(ix->tables, q->keys, &ix->o.sample, q->sampler, q->cand,
                               q->cap - ix->n_head);
    memcpy(q->cand + nc, ix->head, sizeof(uint32_t) * (size_t)ix->n_head);
    nc += ix->n_head;
    pl_vec()->gather_dots(ix->W, ix->dim, ix->b, q->cand, nc, h, ix->dim, q->score);
    topk_init(k, labels, scores);
    for (int64_t i = 0; i < nc; i++) topk_push(k, labels, scores, q->cand[i], q->score[i]);
    if (n_scored) *n_scored = nc;
    return PL_OK;
}

/* Exact scoring, the fastest way this library has: one query (or a few) streams the
 * weights once with row dot products (the memory-bound matrix-vector product); many
 * queries use the packed GEMM on blocks of 512 queries, so that each block of weights
 * is packed once per 512 queries. Both add the bias and keep the top k. */
pl_status pl_halos_exact_topk(const pl_halos_index *ix, const float *H, int64_t ldh, int64_t n,
                              int k, uint32_t *labels, float *scores) {
    enum { QB = 512, OB = 4096 };
    if (k < 1) return pl_error(PL_ERR_ARGUMENT, "halos: top-k with k = %d", k);
    const pl_vec_ops *v = pl_vec();
    if (n < 8) {
        uint32_t *ids = malloc(sizeof(uint32_t) * OB);
        float *z = malloc(sizeof(float) * OB);
        if (!ids || !z) {
            free(ids);
            free(z);
            return pl_error(PL_ERR_NOMEM, "halos: out of memory");
        }
        for (int64_t r = 0; r < n; r++) {
            uint32_t *lr = labels + r * k;
            float *sr = scores + r * k;
            topk_init(k, lr, sr);
            for (int64_t o0 = 0; o0 < ix->n_out; o0 += OB) {
                int64_t ob = ix->n_out - o0 < OB ? ix->n_out - o0 : OB;
                for (int64_t j = 0; j < ob; j++) ids[j] = (uint32_t)(o0 + j);
                v->gather_dots(ix->W, ix->dim, ix->b, ids, ob, H + r * ldh, ix->dim, z);
                for (int64_t j = 0; j < ob; j++)
                    if (z[j] > sr[k - 1]) topk_push(k, lr, sr, (uint32_t)(o0 + j), z[j]);
            }
        }
        free(ids);
        free(z);
        return PL_OK;
    }
    float *Z = malloc(sizeof(float) * QB * OB);
    if (!Z) return pl_error(PL_ERR_NOMEM, "halos: out of memory");
    for (int64_t q0 = 0; q0 < n; q0 += QB) {
        int64_t qb = n - q0 < QB ? n - q0 : QB;
        for (int64_t r = 0; r < qb; r++) topk_init(k, labels + (q0 + r) * k, scores + (q0 + r) * k);
        for (int64_t o0 = 0; o0 < ix->n_out; o0 += OB) {
            int64_t ob = ix->n_out - o0 < OB ? ix->n_out - o0 : OB;
            v->sgemm(false, true, qb, ob, ix->dim, 1.0f, H + q0 * ldh, ldh, ix->W + o0 * ix->dim,
                     ix->dim, 0.0f, Z, ob);
            for (int64_t r = 0; r < qb; r++) {
                uint32_t *lr = labels + (q0 + r) * k;
                float *sr = scores + (q0 + r) * k;
                const float *z = Z + r * ob;
                const float *bb = ix->b + o0;
                for (int64_t j = 0; j < ob; j++) {
                    float sc = z[j] + bb[j];
                    if (sc > sr[k - 1]) topk_push(k, lr, sr, (uint32_t)(o0 + j), sc);
                }
            }
        }
    }
    free(Z);
    return PL_OK;
}
