/* table.c -- LSH tables (fixed-capacity buckets stored contiguously), candidate
 * sampling, the index that swaps table snapshots under running queries, and the
 * rebuild schedule. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "lsh/lsh.h"
#include "lsh/rng.h"

/* Buckets of one table are stored back to back: bucket b of table t holds
 * ids[base[t] + off[t][b] .. base[t] + off[t][b+1]). Only kept ids take memory, so a
 * table costs (items + buckets) * 4 bytes however skewed the keys are. */
struct pl_lsh_tables {
    int L;
    int bits;  /* log2 buckets per table */
    bool fold; /* keys are wider than bits: mix then take the top bits */
    uint32_t nb;
    int64_t n;
    uint32_t *off; /* L x (nb + 1) */
    int64_t *base; /* L + 1 */
    uint32_t *ids;
    int64_t dropped;
    /* owned by pl_lsh_index: readers holding this snapshot */
    int refs;
};

static inline uint32_t bucket_of(const pl_lsh_tables *t, int table, uint32_t key) {
    if (!t->fold) return key;
    if (t->bits == 0) return 0;
    return pl_mix32(key ^ (0x9e3779b9u * (uint32_t)(table + 1))) >> (32 - t->bits);
}

static int ceil_log2(int64_t n) {
    int b = 0;
    while (b < 62 && (1ll << b) < n) b++;
    return b;
}

pl_status pl_lsh_tables_build(const pl_lsh_opts *o, int64_t n, const uint32_t *keys,
                              const uint32_t *order, pl_lsh_tables **out) {
    return pl_lsh_tables_build_ids(o, n, keys, order, NULL, out);
}

pl_status pl_lsh_tables_build_ids(const pl_lsh_opts *o, int64_t n, const uint32_t *keys,
                                  const uint32_t *order, const uint32_t *item_ids,
                                  pl_lsh_tables **out) {
    *out = NULL;
    PL_TRY(pl_lsh_opts_check(o));
    if (n < 0 || n > UINT32_MAX)
        return pl_error(PL_ERR_ARGUMENT, "lsh: %lld items, at most 2^32-1 are supported",
                        (long long)n);
    int key_bits = pl_lsh_key_bits(o);
    int bits = o->table_bits ? o->table_bits : ceil_log2(n < 2 ? 2 : n);
    if (bits > key_bits) bits = key_bits;
    pl_lsh_tables *t = calloc(1, sizeof *t);
    if (!t) return pl_error(PL_ERR_NOMEM, "lsh: out of memory for tables");
    t->L = o->L;
    t->bits = bits;
    t->fold = key_bits > bits;
    t->nb = 1u << bits;
    t->n = n;
    int L = o->L;
    uint32_t nb = t->nb, cap = (uint32_t)o->bucket_cap;
    t->off = malloc(sizeof(uint32_t) * (size_t)L * (nb + 1));
    t->base = malloc(sizeof(int64_t) * (size_t)(L + 1));
    uint32_t *seen = malloc(sizeof(uint32_t) * nb);
    if (!t->off || !t->base || !seen) goto nomem;

    /* pass 1: bucket sizes (capped) and each table's place in ids */
    int64_t total = 0;
    for (int tb = 0; tb < L; tb++) {
        memset(seen, 0, sizeof(uint32_t) * nb);
        for (int64_t i = 0; i < n; i++) seen[bucket_of(t, tb, keys[i * L + tb])]++;
        uint32_t *off = t->off + (size_t)tb * (nb + 1);
        uint32_t acc = 0;
        for (uint32_t b = 0; b < nb; b++) {
            off[b] = acc;
            uint32_t k = seen[b] < cap ? seen[b] : cap;
            t->dropped += seen[b] - k;
            acc += k;
        }
        off[nb] = acc;
        t->base[tb] = total;
        total += acc;
    }
    t->base[L] = total;
    t->ids = malloc(sizeof(uint32_t) * (size_t)(total ? total : 1));
    if (!t->ids) goto nomem;

    /* pass 2: insert in the given order; a full bucket applies the policy */
    uint64_t rng = o->seed ^ 0x7ab1e5eedull;
    for (int tb = 0; tb < L; tb++) {
        memset(seen, 0, sizeof(uint32_t) * nb);
        const uint32_t *off = t->off + (size_t)tb * (nb + 1);
        uint32_t *ids = t->ids + t->base[tb];
        for (int64_t k = 0; k < n; k++) {
            uint32_t i = order ? order[k] : (uint32_t)k;
            uint32_t b = bucket_of(t, tb, keys[(int64_t)i * L + tb]);
            uint32_t id = item_ids ? item_ids[i] : i;
            uint32_t s = seen[b]++;
            if (s < cap) {
                ids[off[b] + s] = id;
            } else if (o->policy == PL_LSH_FIFO) {
                ids[off[b] + s % cap] = id; /* ring: overwrites the oldest */
            } else {
                uint64_t r = pl_rng_below(&rng, (uint64_t)s + 1);
                if (r < cap) ids[off[b] + r] = id;
            }
        }
    }
    free(seen);
    *out = t;
    return PL_OK;
nomem:
    free(seen);
    pl_lsh_tables_destroy(t);
    return pl_error(PL_ERR_NOMEM, "lsh: out of memory for %d tables of %lld items", L,
                    (long long)n);
}

void pl_lsh_tables_destroy(pl_lsh_tables *t) {
    if (!t) return;
    free(t->off);
    free(t->base);
    free(t->ids);
    free(t);
}

const uint32_t *pl_lsh_tables_bucket(const pl_lsh_tables *t, int table, uint32_t key, uint32_t *n) {
    if (table < 0 || table >= t->L) {
        *n = 0;
        return NULL;
    }
    uint32_t b = bucket_of(t, table, key);
    if (b >= t->nb) b &= t->nb - 1; /* keys wider than the table (caller error) */
    const uint32_t *off = t->off + (size_t)table * (t->nb + 1);
    *n = off[b + 1] - off[b];
    return t->ids + t->base[table] + off[b];
}

int pl_lsh_tables_bits(const pl_lsh_tables *t) {
    return t->bits;
}

int64_t pl_lsh_tables_items(const pl_lsh_tables *t) {
    return t->n;
}

int64_t pl_lsh_tables_dropped(const pl_lsh_tables *t) {
    return t->dropped;
}

size_t pl_lsh_tables_bytes(const pl_lsh_tables *t) {
    return sizeof *t + sizeof(uint32_t) * (size_t)t->L * (t->nb + 1) +
           sizeof(int64_t) * (size_t)(t->L + 1) + sizeof(uint32_t) * (size_t)t->base[t->L];
}

/* ---------------------------------------------------------------- sampling */

struct pl_lsh_sampler {
    int64_t n;
    int L;
    uint16_t *count;   /* per item: tables it was found in (0 = not seen) */
    uint32_t *touched; /* items with count > 0 */
    int64_t touched_cap;
    int64_t *hist; /* L + 2: ids per count */
    int64_t *pos;  /* L + 2: output offset per count */
    uint32_t *buf; /* a copied streaming bucket */
    uint32_t buf_cap;
};

pl_status pl_lsh_sampler_create(int64_t n_items, int L, pl_lsh_sampler **out) {
    *out = NULL;
    if (L < 1 || L > 65535) return pl_error(PL_ERR_ARGUMENT, "lsh: sampler for L = %d tables", L);
    pl_lsh_sampler *s = calloc(1, sizeof *s);
    if (!s) return pl_error(PL_ERR_NOMEM, "lsh: out of memory for a sampler");
    s->n = n_items;
    s->L = L;
    s->count = calloc((size_t)(n_items ? n_items : 1), sizeof(uint16_t));
    s->touched_cap = 4096;
    s->touched = malloc(sizeof(uint32_t) * (size_t)s->touched_cap);
    s->hist = malloc(sizeof(int64_t) * (size_t)(L + 2));
    s->pos = malloc(sizeof(int64_t) * (size_t)(L + 2));
    if (!s->count || !s->touched || !s->hist || !s->pos) {
        pl_lsh_sampler_destroy(s);
        return pl_error(PL_ERR_NOMEM, "lsh: out of memory for a sampler of %lld items",
                        (long long)n_items);
    }
    *out = s;
    return PL_OK;
}

void pl_lsh_sampler_destroy(pl_lsh_sampler *s) {
    if (!s) return;
    free(s->count);
    free(s->touched);
    free(s->hist);
    free(s->pos);
    free(s->buf);
    free(s);
}

/* Streaming tables: fixed-capacity buckets that accept inserts while other threads
 * query them. Counters and slots are atomics (relaxed: a reader sees each slot's old
 * or new id, never a torn one; ordering between slots does not matter here). */
struct pl_lsh_live {
    int L, bits;
    bool fold;
    uint32_t nb, cap;
    pl_lsh_policy policy;
    _Atomic uint32_t *cnt;  /* L x nb: inserts so far */
    _Atomic uint32_t *slot; /* L x nb x cap, UINT32_MAX = empty */
};

static inline uint32_t live_bucket(const pl_lsh_live *lv, int table, uint32_t key) {
    if (!lv->fold) return key & (lv->nb - 1);
    if (lv->bits == 0) return 0;
    return pl_mix32(key ^ (0x9e3779b9u * (uint32_t)(table + 1))) >> (32 - lv->bits);
}

pl_status pl_lsh_live_create(const pl_lsh_opts *o, pl_lsh_live **out) {
    *out = NULL;
    PL_TRY(pl_lsh_opts_check(o));
    int key_bits = pl_lsh_key_bits(o);
    int bits = o->table_bits ? o->table_bits : 16;
    if (bits > key_bits) bits = key_bits;
    size_t nb = (size_t)1 << bits, cap = (size_t)o->bucket_cap;
    if ((double)o->L * (double)nb * (double)cap * 4.0 > 16e9)
        return pl_error(PL_ERR_ARGUMENT,
                        "lsh: %d streaming tables of 2^%d buckets x %zu ids need over 16 GB", o->L,
                        bits, cap);
    pl_lsh_live *lv = calloc(1, sizeof *lv);
    if (!lv) return pl_error(PL_ERR_NOMEM, "lsh: out of memory");
    lv->L = o->L;
    lv->bits = bits;
    lv->fold = key_bits > bits;
    lv->nb = (uint32_t)nb;
    lv->cap = (uint32_t)cap;
    lv->policy = o->policy;
    lv->cnt = calloc((size_t)o->L * nb, sizeof *lv->cnt);
    lv->slot = malloc(sizeof *lv->slot * (size_t)o->L * nb * cap);
    if (!lv->cnt || !lv->slot) {
        pl_lsh_live_destroy(lv);
        return pl_error(PL_ERR_NOMEM, "lsh: out of memory for %d streaming tables", o->L);
    }
    pl_lsh_live_clear(lv);
    *out = lv;
    return PL_OK;
}

void pl_lsh_live_destroy(pl_lsh_live *lv) {
    if (!lv) return;
    free(lv->cnt);
    free(lv->slot);
    free(lv);
}

void pl_lsh_live_clear(pl_lsh_live *lv) {
    size_t nbk = (size_t)lv->L * lv->nb;
    for (size_t i = 0; i < nbk; i++) atomic_store_explicit(&lv->cnt[i], 0, memory_order_relaxed);
    for (size_t i = 0; i < nbk * lv->cap; i++)
        atomic_store_explicit(&lv->slot[i], UINT32_MAX, memory_order_relaxed);
}

void pl_lsh_live_insert(pl_lsh_live *lv, const uint32_t *keys, uint32_t id, uint64_t *rng) {
    for (int t = 0; t < lv->L; t++) {
        size_t b = (size_t)t * lv->nb + live_bucket(lv, t, keys[t]);
        uint32_t c = atomic_fetch_add_explicit(&lv->cnt[b], 1, memory_order_relaxed);
        uint32_t at;
        if (c < lv->cap) {
            at = c;
        } else if (lv->policy == PL_LSH_FIFO) {
            at = c % lv->cap;
        } else {
            uint64_t r = pl_rng_below(rng, (uint64_t)c + 1);
            if (r >= lv->cap) continue;
            at = (uint32_t)r;
        }
        atomic_store_explicit(&lv->slot[b * lv->cap + at], id, memory_order_relaxed);
    }
}

size_t pl_lsh_live_bytes(const pl_lsh_live *lv) {
    return sizeof *lv + (size_t)lv->L * lv->nb * (1 + (size_t)lv->cap) * 4;
}

/* One bucket of either kind; a live bucket is copied out (atomic loads) into s->buf. */
static const uint32_t *get_bucket(const pl_lsh_tables *t, const pl_lsh_live *lv, int table,
                                  uint32_t key, pl_lsh_sampler *s, uint32_t *n) {
    if (t) return pl_lsh_tables_bucket(t, table, key, n);
    size_t b = (size_t)table * lv->nb + live_bucket(lv, table, key);
    uint32_t c = atomic_load_explicit(&lv->cnt[b], memory_order_relaxed);
    if (c > lv->cap) c = lv->cap;
    if (c > s->buf_cap) {
        uint32_t *p = realloc(s->buf, sizeof(uint32_t) * c);
        if (!p) {
            *n = 0;
            return NULL;
        }
        s->buf = p;
        s->buf_cap = c;
    }
    const _Atomic uint32_t *src = lv->slot + b * lv->cap;
    for (uint32_t k = 0; k < c; k++)
        s->buf[k] = atomic_load_explicit(&src[k], memory_order_relaxed);
    *n = c;
    return s->buf;
}

/* Counts every id of the query's buckets in both sources (either may be NULL);
 * returns the number of distinct ids (in s->touched), or -1 if the touched list could
 * not grow. */
static int64_t count_all(const pl_lsh_tables *t, const pl_lsh_live *lv, const uint32_t *keys,
                         pl_lsh_sampler *s) {
    int64_t nt = 0;
    for (int src = 0; src < 2; src++) {
        const pl_lsh_tables *ts = src == 0 ? t : NULL;
        const pl_lsh_live *ls = src == 1 ? lv : NULL;
        if (!ts && !ls) continue;
        int L = ts ? ts->L : ls->L;
        for (int tb = 0; tb < L; tb++) {
            uint32_t cnt;
            const uint32_t *ids = get_bucket(ts, ls, tb, keys[tb], s, &cnt);
            if (nt + cnt > s->touched_cap) {
                int64_t cap = s->touched_cap;
                while (cap < nt + cnt) cap *= 2;
                uint32_t *p = realloc(s->touched, sizeof(uint32_t) * (size_t)cap);
                if (!p) {
                    for (int64_t k = 0; k < nt; k++) s->count[s->touched[k]] = 0;
                    return -1;
                }
                s->touched = p;
                s->touched_cap = cap;
            }
            for (uint32_t k = 0; k < cnt; k++) {
                uint32_t id = ids[k];
                if (id >= s->n) continue; /* also skips empty live slots */
                uint16_t c = s->count[id];
                if (c == 0) s->touched[nt++] = id;
                /* an id can repeat inside a bucket (repeated ids, streaming tables):
                 * the count saturates so that it stays below the histogram size */
                if (c < s->L) s->count[id] = (uint16_t)(c + 1);
            }
        }
    }
    return nt;
}

static int64_t sample_impl(const pl_lsh_tables *t, const pl_lsh_live *lv, const uint32_t *keys,
                           const pl_lsh_sample_opts *o, pl_lsh_sampler *s, uint32_t *out,
                           int64_t cap) {
    if (cap <= 0 || (!t && !lv)) return 0;
    if ((t && t->L > s->L) || (lv && lv->L > s->L)) return 0;
    int64_t k = 0;
    if (o->mode == PL_LSH_UNION) {
        for (int src = 0; src < 2 && k < cap; src++) {
            const pl_lsh_tables *ts = src == 0 ? t : NULL;
            const pl_lsh_live *ls = src == 1 ? lv : NULL;
            if (!ts && !ls) continue;
            int L = ts ? ts->L : ls->L;
            for (int tb = 0; tb < L && k < cap; tb++) {
                uint32_t cnt;
                const uint32_t *ids = get_bucket(ts, ls, tb, keys[tb], s, &cnt);
                for (uint32_t j = 0; j < cnt && k < cap; j++) {
                    uint32_t id = ids[j];
                    if (id >= s->n || s->count[id]) continue;
                    s->count[id] = 1;
                    out[k++] = id;
                }
            }
        }
        for (int64_t j = 0; j < k; j++) s->count[out[j]] = 0;
        return k;
    }
    int64_t nt = count_all(t, lv, keys, s);
    if (nt < 0) return 0;
    if (o->mode == PL_LSH_THRESHOLD) {
        int th = o->threshold < 1 ? 1 : o->threshold;
        for (int64_t j = 0; j < nt; j++) {
            uint32_t id = s->touched[j];
            if (s->count[id] >= th && k < cap) out[k++] = id;
            s->count[id] = 0;
        }
        return k;
    }
    /* TOPK: counting sort by frequency, most frequent first (first-seen order within a
     * count); ids of the lowest admitted count fill what room is left */
    int64_t want = o->top_k < cap ? o->top_k : cap;
    if (want < 0) want = 0;
    int L = s->L;
    int64_t *hist = s->hist, *pos = s->pos;
    memset(hist, 0, sizeof(int64_t) * (size_t)(L + 2));
    for (int64_t j = 0; j < nt; j++) hist[s->count[s->touched[j]]]++;
    int cut = L;
    int64_t have = 0;
    while (cut > 1 && have + hist[cut] < want) have += hist[cut--];
    int64_t take_cut = want - have < hist[cut] ? want - have : hist[cut];
    if (take_cut < 0) take_cut = 0;
    int64_t acc = 0;
    for (int c = L; c >= cut; c--) {
        pos[c] = acc;
        acc += c == cut ? take_cut : hist[c];
    }
    int64_t taken = 0;
    for (int64_t j = 0; j < nt; j++) {
        uint32_t id = s->touched[j];
        int c = s->count[id];
        s->count[id] = 0;
        if (c < cut) continue;
        if (c == cut) {
            if (taken == take_cut) continue;
            taken++;
        }
        out[pos[c]++] = id;
    }
    return acc;
}

int64_t pl_lsh_sample(const pl_lsh_tables *t, const uint32_t *keys, const pl_lsh_sample_opts *o,
                      pl_lsh_sampler *s, uint32_t *out, int64_t cap) {
    return t ? sample_impl(t, NULL, keys, o, s, out, cap) : 0;
}

int64_t pl_lsh_sample_live(const pl_lsh_live *lv, const uint32_t *keys, const pl_lsh_sample_opts *o,
                           pl_lsh_sampler *s, uint32_t *out, int64_t cap) {
    return lv ? sample_impl(NULL, lv, keys, o, s, out, cap) : 0;
}

int64_t pl_lsh_sample_both(const pl_lsh_tables *t, const pl_lsh_live *lv, const uint32_t *keys,
                           const pl_lsh_sample_opts *o, pl_lsh_sampler *s, uint32_t *out,
                           int64_t cap) {
    return sample_impl(t, lv, keys, o, s, out, cap);
}

/* ---------------------------------------------------------------- index */

struct pl_lsh_index {
    pl_lsh_opts o;
    int64_t dim, n;
    pl_lsh_hash *hash;
    pthread_mutex_t mu;       /* guards cur, refs, version */
    pthread_mutex_t build_mu; /* one publish at a time */
    pl_lsh_tables *cur;
    int64_t version;
    uint64_t rng;
    uint32_t *order;
};

pl_status pl_lsh_index_create(const pl_lsh_opts *o, int64_t dim, int64_t n_items,
                              pl_lsh_index **out) {
    *out = NULL;
    if (n_items < 1 || n_items > UINT32_MAX)
        return pl_error(PL_ERR_ARGUMENT, "lsh: index of %lld items", (long long)n_items);
    pl_lsh_index *ix = calloc(1, sizeof *ix);
    if (!ix) return pl_error(PL_ERR_NOMEM, "lsh: out of memory");
    ix->o = *o;
    ix->dim = dim;
    ix->n = n_items;
    ix->rng = o->seed ^ 0x1dea5eedull;
    pthread_mutex_init(&ix->mu, NULL);
    pthread_mutex_init(&ix->build_mu, NULL);
    pl_status s = pl_lsh_hash_create(o, dim, &ix->hash);
    if (s == PL_OK) {
        ix->order = malloc(sizeof(uint32_t) * (size_t)n_items);
        if (!ix->order)
            s = pl_error(PL_ERR_NOMEM, "lsh: out of memory for an index of %lld items",
                         (long long)n_items);
    }
    if (s != PL_OK) {
        pl_lsh_index_destroy(ix);
        return s;
    }
    *out = ix;
    return PL_OK;
}

void pl_lsh_index_destroy(pl_lsh_index *ix) {
    if (!ix) return;
    pl_lsh_tables_destroy(ix->cur);
    pl_lsh_hash_destroy(ix->hash);
    free(ix->order);
    pthread_mutex_destroy(&ix->mu);
    pthread_mutex_destroy(&ix->build_mu);
    free(ix);
}

const pl_lsh_hash *pl_lsh_index_hash(const pl_lsh_index *ix) {
    return ix->hash;
}

const pl_lsh_opts *pl_lsh_index_opts(const pl_lsh_index *ix) {
    return &ix->o;
}

pl_status pl_lsh_index_publish(pl_lsh_index *ix, const uint32_t *keys) {
    pthread_mutex_lock(&ix->build_mu);
    /* a fresh random insertion order: what full buckets keep is not biased to ids */
    for (int64_t i = 0; i < ix->n; i++) ix->order[i] = (uint32_t)i;
    for (int64_t i = ix->n - 1; i > 0; i--) {
        int64_t j = (int64_t)pl_rng_below(&ix->rng, (uint64_t)i + 1);
        uint32_t t = ix->order[i];
        ix->order[i] = ix->order[j];
        ix->order[j] = t;
    }
    pl_lsh_opts o = ix->o;
    o.seed = pl_rng_next(&ix->rng);
    pl_lsh_tables *t = NULL;
    pl_status s = pl_lsh_tables_build(&o, ix->n, keys, ix->order, &t);
    pthread_mutex_unlock(&ix->build_mu);
    if (s != PL_OK) return s;
    pthread_mutex_lock(&ix->mu);
    pl_lsh_tables *old = ix->cur;
    ix->cur = t;
    ix->version++;
    bool free_old = old && old->refs == 0;
    pthread_mutex_unlock(&ix->mu);
    if (free_old) pl_lsh_tables_destroy(old);
    return PL_OK;
}

const pl_lsh_tables *pl_lsh_index_acquire(pl_lsh_index *ix) {
    pthread_mutex_lock(&ix->mu);
    pl_lsh_tables *t = ix->cur;
    if (t) t->refs++;
    pthread_mutex_unlock(&ix->mu);
    return t;
}

void pl_lsh_index_release(pl_lsh_index *ix, const pl_lsh_tables *ct) {
    if (!ct) return;
    pl_lsh_tables *t = (pl_lsh_tables *)ct;
    pthread_mutex_lock(&ix->mu);
    bool free_it = --t->refs == 0 && t != ix->cur;
    pthread_mutex_unlock(&ix->mu);
    if (free_it) pl_lsh_tables_destroy(t);
}

int64_t pl_lsh_index_version(pl_lsh_index *ix) {
    pthread_mutex_lock(&ix->mu);
    int64_t v = ix->version;
    pthread_mutex_unlock(&ix->mu);
    return v;
}

/* ---------------------------------------------------------------- schedule */

void pl_lsh_schedule_init(pl_lsh_schedule *s, int64_t first, double growth, int64_t max) {
    s->first = first < 1 ? 1 : first;
    s->growth = growth < 1 ? 1 : growth;
    s->max = max < s->first ? s->first : max;
    s->next = s->first;
    s->period = (double)s->first;
}

bool pl_lsh_schedule_due(pl_lsh_schedule *s, int64_t step) {
    if (step < s->next) return false;
    s->period *= s->growth;
    if (s->period > (double)s->max) s->period = (double)s->max;
    s->next = step + (int64_t)(s->period + 0.5);
    return true;
}
