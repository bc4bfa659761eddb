/* halos.h -- sub-linear scoring of a very wide output layer (HALOS-style inference).
 *
 * For a last layer y = W h + b with n_out outputs (10,000 or more), the index hashes
 * every output neuron once; a query hashes h, takes the neurons that share buckets
 * with it (the candidates), scores only those exactly, and returns the top k. Inner
 * products are turned into angles by the MIPS transform (lsh.h), so the neurons with
 * the largest logits are the likeliest to collide with h.
 *
 * Optionally (pl_halos_index_add_examples) the index also learns from labelled
 * examples: each example's true labels are inserted into the buckets of its own
 * hidden vector, so a query near an example retrieves the labels that were *correct*
 * there, not only the ones with large logits (the idea of HALOS).
 *
 * Thread safety: an index is immutable after building (and adding examples); each
 * thread queries through its own pl_halos_query. */
#ifndef PL_LSH_HALOS_H
#define PL_LSH_HALOS_H

#include <stdbool.h>
#include <stdint.h>

#include "lsh/lsh.h"

typedef enum pl_halos_layout {
    PL_HALOS_ROWS = 0, /* W is n_out x dim (row j = output j; Gemm with transB=1) */
    PL_HALOS_COLS = 1, /* W is dim x n_out (MatMul, Gemm with transB=0) */
} pl_halos_layout;

typedef struct pl_halos_opts {
    pl_lsh_opts lsh;           /* family, K, L, bucket size, seed */
    pl_lsh_sample_opts sample; /* how candidates are chosen from the L buckets */
    int64_t max_candidates;    /* at most this many neurons scored per query */
    /* how neurons [w, b] are compared with queries [h, 1]: 0 = by direction (cosine),
     * R >= 1 = inner product, through the MIPS transform in R norm ranges */
    int mips_ranges;
    /* outputs with the largest bias (the popular labels) scored for every query and
     * left out of the tables */
    int64_t head;
    pl_halos_layout layout;
    int threads; /* threads used to build the index (>= 1) */
} pl_halos_opts;

/* SimHash K=14, L=24, buckets of 96, by direction (no MIPS); the max(200, n_out/500)
 * candidates found in most buckets are scored, plus the n_out/1000 outputs with the
 * largest bias; rows layout, 1 thread. Tuned on a 100k-output model whose index also
 * learned from its training examples (bench/xc/README.md); a neuron-only index of
 * another model may want more candidates. */
void pl_halos_opts_default(pl_halos_opts *o, int64_t n_out);

typedef struct pl_halos_index pl_halos_index;
typedef struct pl_halos_query pl_halos_query;

/* Builds the index over W (layout per o->layout) and bias b (NULL = zeros). W and b
 * are copied (rows layout, for fast scoring); the caller may free them afterwards. */
pl_status pl_halos_index_build(const float *W, const float *b, int64_t n_out, int64_t dim,
                               const pl_halos_opts *o, pl_halos_index **out);
void pl_halos_index_destroy(pl_halos_index *ix);
int64_t pl_halos_index_outputs(const pl_halos_index *ix);
int64_t pl_halos_index_dim(const pl_halos_index *ix);
size_t pl_halos_index_bytes(const pl_halos_index *ix);

/* Adds n labelled examples: H is n x dim (hidden vectors, row stride ldh), example i
 * has labels lab[lab_ptr[i] .. lab_ptr[i+1]) (each < n_out). Rebuilds the tables with
 * both the neurons and these (hidden vector -> label) entries. */
pl_status pl_halos_index_add_examples(pl_halos_index *ix, const float *H, int64_t ldh, int64_t n,
                                      const int64_t *lab_ptr, const uint32_t *lab);

pl_status pl_halos_query_create(const pl_halos_index *ix, pl_halos_query **out);
void pl_halos_query_destroy(pl_halos_query *q);

/* The k best outputs among the candidates for hidden vector h[dim], best first:
 * labels[i], scores[i] (exact logits). Slots beyond the number of candidates get label
 * UINT32_MAX and score -INFINITY. *n_scored (optional) gets the number of neurons
 * scored. */
pl_status pl_halos_topk(pl_halos_query *q, const float *h, int k, uint32_t *labels, float *scores,
                        int64_t *n_scored);

/* Exact top k of W h + b for n vectors H (n x dim, stride ldh) by blocked GEMM, one
 * thread: labels/scores are n x k. Uses the index's copy of the weights. */
pl_status pl_halos_exact_topk(const pl_halos_index *ix, const float *H, int64_t ldh, int64_t n,
                              int k, uint32_t *labels, float *scores);

#endif
