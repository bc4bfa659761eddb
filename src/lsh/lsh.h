/* lsh.h -- locality-sensitive hashing: hash families behind one interface, L tables of
 * K-hash keys with fixed-capacity buckets, an index that rebuilds its tables while other
 * threads query them, and candidate sampling (union / top-k by frequency / threshold).
 *
 * Used by the extreme-classification trainer (src/xc: SLIDE-style sampling of the
 * output neurons) and by HALOS-style inference (halos.h). Every choice is an option in
 * pl_lsh_opts; nothing is decided at compile time.
 *
 * Families (all hash a vector of `dim` floats, given dense or as (index, value) pairs;
 * both forms give the same keys for the same vector):
 *   SIMHASH  signed random projections: one bit per hash, P[collide] = 1 - angle/pi
 *            (density 1: Gaussian projections; density < 1: sparse +-1 projections
 *            with that fraction of nonzeros, cheaper and approximately the same).
 *   WTA      winner-take-all: each hash is the position of the largest of bin_size
 *            coordinates drawn by a random permutation (log2(bin_size) bits).
 *   DWTA     densified WTA for sparse vectors: a bin whose coordinates are all zero
 *            borrows the hash of another bin chosen by a fixed random probe sequence,
 *            instead of colliding with every other empty bin.
 * MIPS (inner-product search) reduces to cosine search with pl_lsh_mips_data /
 * pl_lsh_mips_query before hashing.
 *
 * A table key is the concatenation of K hashes (K bits for SimHash, K*log2(bin_size)
 * for WTA/DWTA, at most 32 bits). Keys wider than a table's bucket count are folded
 * with a mixing hash. */
#ifndef PL_LSH_H
#define PL_LSH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

typedef enum pl_lsh_family {
    PL_LSH_SIMHASH = 0,
    PL_LSH_WTA = 1,
    PL_LSH_DWTA = 2,
} pl_lsh_family;

/* What a full bucket does with one more id. */
typedef enum pl_lsh_policy {
    PL_LSH_RESERVOIR = 0, /* keep a uniform sample of everything inserted */
    PL_LSH_FIFO = 1,      /* keep the last bucket_cap inserted */
} pl_lsh_policy;

/* How a query's candidates are chosen from its L buckets. */
typedef enum pl_lsh_sampling {
    PL_LSH_UNION = 0,     /* every id of every bucket */
    PL_LSH_TOPK = 1,      /* the `top_k` ids found in the most tables */
    PL_LSH_THRESHOLD = 2, /* ids found in at least `threshold` tables */
} pl_lsh_sampling;

typedef struct pl_lsh_opts {
    pl_lsh_family family;
    int K;          /* hashes per table key, >= 1 */
    int L;          /* tables, >= 1 */
    int bin_size;   /* WTA/DWTA: coordinates per bin, a power of two in [2, 256] */
    float density;  /* SIMHASH: fraction of nonzero projection entries, (0, 1] */
    int bucket_cap; /* ids kept per bucket, >= 1 */
    pl_lsh_policy policy;
    int table_bits; /* log2(buckets per table); 0 = min(key bits, ceil(log2(items))) */
    uint64_t seed;
} pl_lsh_opts;

/* SimHash, K=8, L=16, bin_size 8, density 1, bucket_cap 128, reservoir, seed 1. */
void pl_lsh_opts_default(pl_lsh_opts *o);
/* Checks ranges and that a key fits in 32 bits; PL_ERR_ARGUMENT with a message. */
pl_status pl_lsh_opts_check(const pl_lsh_opts *o);
/* Bits of one table key. */
int pl_lsh_key_bits(const pl_lsh_opts *o);
/* "simhash" / "wta" / "dwta" <-> family; false if unknown. */
const char *pl_lsh_family_name(pl_lsh_family f);
bool pl_lsh_family_parse(const char *s, pl_lsh_family *f);

/* ---------------------------------------------------------------- hash functions */

typedef struct pl_lsh_hash pl_lsh_hash;

/* The K*L hash functions over vectors of `dim` floats, drawn from o->seed. */
pl_status pl_lsh_hash_create(const pl_lsh_opts *o, int64_t dim, pl_lsh_hash **out);
void pl_lsh_hash_destroy(pl_lsh_hash *h);
int64_t pl_lsh_hash_dim(const pl_lsh_hash *h);
/* Bytes of scratch memory one hashing call needs (per thread). */
size_t pl_lsh_hash_scratch_bytes(const pl_lsh_hash *h);
/* keys[0..L) of a dense vector x[dim]. scratch: pl_lsh_hash_scratch_bytes bytes,
 * 64-byte aligned, owned by the calling thread. */
void pl_lsh_hash_dense(const pl_lsh_hash *h, const float *x, uint32_t *keys, void *scratch);
/* The same for a sparse vector: nnz (index, value) pairs, indices < dim, no repeats. */
void pl_lsh_hash_sparse(const pl_lsh_hash *h, const uint32_t *idx, const float *val, int64_t nnz,
                        uint32_t *keys, void *scratch);
/* The raw hash values (K*L of them, before packing into keys), for tests. */
void pl_lsh_hash_values(const pl_lsh_hash *h, const float *x, uint32_t *values, void *scratch);
/* keys[r*L ..] for n rows of X (row stride ldx). Uses one thread; callers split rows
 * across threads. Returns PL_ERR_NOMEM if it cannot allocate its block buffer. */
pl_status pl_lsh_hash_rows(const pl_lsh_hash *h, const float *X, int64_t ldx, int64_t n,
                           uint32_t *keys);

/* MIPS to cosine: with U >= max |x_i|, data x -> [x/U, sqrt(1 - |x/U|^2)] (dim+1
 * floats) and query q -> [q, 0], so that the angle between them orders the data by
 * inner product with q. */
void pl_lsh_mips_data(const float *x, int64_t dim, float U, float *out);
void pl_lsh_mips_query(const float *q, int64_t dim, float *out);
/* Norm ranging (Yan et al., 2018): one U for all data makes the extra coordinate of
 * every short vector dominate, so short vectors all look alike. Splitting the data
 * into `R` ranges of similar norm (equal counts) and transforming each with its own U
 * keeps the angles informative; candidates are rescored exactly anyway. Sets
 * range[i] in [0, R) and U[r] = the largest norm in range r (R in 1..255). */
void pl_lsh_norm_ranges(const float *norms, int64_t n, int R, uint8_t *range, float *U);

/* ---------------------------------------------------------------- tables */

/* L tables built from every item's keys: an immutable snapshot, safe to query from
 * many threads. Memory: L * (items + buckets) * 4 bytes. */
typedef struct pl_lsh_tables pl_lsh_tables;

/* keys: n x L (item i's key for table t at keys[i*L + t]); order: NULL (items inserted
 * in index order) or a permutation of [0, n) giving the insertion order, which decides
 * what a full bucket keeps (RESERVOIR: uniform sample; FIFO: the last inserted). */
pl_status pl_lsh_tables_build(const pl_lsh_opts *o, int64_t n, const uint32_t *keys,
                              const uint32_t *order, pl_lsh_tables **out);
/* The same where entry i stores id ids[i] (several entries may share an id, e.g. a
 * label inserted under the keys of several examples). */
pl_status pl_lsh_tables_build_ids(const pl_lsh_opts *o, int64_t n, const uint32_t *keys,
                                  const uint32_t *order, const uint32_t *ids, pl_lsh_tables **out);
void pl_lsh_tables_destroy(pl_lsh_tables *t);
/* The ids in table t's bucket for `key` (folded as at build); *n gets the count. */
const uint32_t *pl_lsh_tables_bucket(const pl_lsh_tables *t, int table, uint32_t key, uint32_t *n);
int pl_lsh_tables_bits(const pl_lsh_tables *t);
int64_t pl_lsh_tables_items(const pl_lsh_tables *t);
/* Ids dropped by full buckets at build, over all tables. */
int64_t pl_lsh_tables_dropped(const pl_lsh_tables *t);
size_t pl_lsh_tables_bytes(const pl_lsh_tables *t);

/* ---------------------------------------------------------------- sampling */

typedef struct pl_lsh_sample_opts {
    pl_lsh_sampling mode;
    int top_k;     /* TOPK: ids to return */
    int threshold; /* THRESHOLD: minimum number of tables */
} pl_lsh_sample_opts;

/* Per-thread scratch for sampling over up to n_items ids. */
typedef struct pl_lsh_sampler pl_lsh_sampler;
pl_status pl_lsh_sampler_create(int64_t n_items, int L, pl_lsh_sampler **out);
void pl_lsh_sampler_destroy(pl_lsh_sampler *s);

/* Candidates for a query whose table keys are keys[0..L): at most `cap` distinct ids
 * written to out (TOPK: most frequent first). Returns the count. */
int64_t pl_lsh_sample(const pl_lsh_tables *t, const uint32_t *keys, const pl_lsh_sample_opts *o,
                      pl_lsh_sampler *s, uint32_t *out, int64_t cap);

/* ---------------------------------------------------------------- streaming tables */

/* L tables of 2^table_bits buckets (table_bits 0 = min(key bits, 16)), each holding
 * at most bucket_cap ids, that take inserts at any time, from any thread, while other
 * threads query them (lock-free; a full bucket applies the policy: FIFO overwrites
 * the oldest, RESERVOIR keeps a uniform sample). Memory: L * 2^bits * (cap + 1) * 4
 * bytes, fixed at creation. Used to index labels under the hidden vectors of the
 * examples that carry them, as they stream through training. */
typedef struct pl_lsh_live pl_lsh_live;

pl_status pl_lsh_live_create(const pl_lsh_opts *o, pl_lsh_live **out);
void pl_lsh_live_destroy(pl_lsh_live *lv);
/* Inserts id under keys[0..L); rng: the calling thread's state (reservoir draws). */
void pl_lsh_live_insert(pl_lsh_live *lv, const uint32_t *keys, uint32_t id, uint64_t *rng);
void pl_lsh_live_clear(pl_lsh_live *lv);
size_t pl_lsh_live_bytes(const pl_lsh_live *lv);

/* Candidates from streaming tables, or from both kinds at once (an id's count is the
 * number of buckets, of either kind, it was found in; either source may be NULL).
 * The sampler must have been created for L >= the tables' L. */
int64_t pl_lsh_sample_live(const pl_lsh_live *lv, const uint32_t *keys, const pl_lsh_sample_opts *o,
                           pl_lsh_sampler *s, uint32_t *out, int64_t cap);
int64_t pl_lsh_sample_both(const pl_lsh_tables *t, const pl_lsh_live *lv, const uint32_t *keys,
                           const pl_lsh_sample_opts *o, pl_lsh_sampler *s, uint32_t *out,
                           int64_t cap);

/* ---------------------------------------------------------------- index */

/* Hash functions plus the current snapshot of tables. Rebuilding publishes a new
 * snapshot; queries that acquired the old one keep using it until they release it,
 * so rebuilds never block or disturb queries running in other threads. */
typedef struct pl_lsh_index pl_lsh_index;

pl_status pl_lsh_index_create(const pl_lsh_opts *o, int64_t dim, int64_t n_items,
                              pl_lsh_index **out);
void pl_lsh_index_destroy(pl_lsh_index *ix);
const pl_lsh_hash *pl_lsh_index_hash(const pl_lsh_index *ix);
const pl_lsh_opts *pl_lsh_index_opts(const pl_lsh_index *ix);
/* Builds tables from keys (n_items x L) in a fresh random insertion order and makes
 * them current. Thread-safe against concurrent acquire/release. */
pl_status pl_lsh_index_publish(pl_lsh_index *ix, const uint32_t *keys);
/* The current tables (NULL before the first publish), held until released. */
const pl_lsh_tables *pl_lsh_index_acquire(pl_lsh_index *ix);
void pl_lsh_index_release(pl_lsh_index *ix, const pl_lsh_tables *t);
/* Number of publishes so far. */
int64_t pl_lsh_index_version(pl_lsh_index *ix);

/* ---------------------------------------------------------------- rebuild schedule */

/* Rebuild after `first` steps, then with the period multiplied by `growth` after each
 * rebuild, up to `max` (SLIDE's exponentially decaying rebuild frequency). */
typedef struct pl_lsh_schedule {
    int64_t first;
    double growth;
    int64_t max;
    int64_t next;  /* state: step of the next rebuild */
    double period; /* state */
} pl_lsh_schedule;

void pl_lsh_schedule_init(pl_lsh_schedule *s, int64_t first, double growth, int64_t max);
/* True if a rebuild is due at `step` (and advances the schedule). */
bool pl_lsh_schedule_due(pl_lsh_schedule *s, int64_t step);

#endif
