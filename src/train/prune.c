/* prune.c -- magnitude pruning masks. A weight is viewed as a matrix (its first dim by
 * the product of the others, as stored) cut into blocks of br x bc; blocks are ranked
 * by their mean absolute value and the weakest are masked until the wanted fraction of
 * the elements is reached (to the nearest block). 1x1 blocks are unstructured
 * pruning; ties keep the earlier block, so the result is deterministic. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train/train.h"

typedef struct block_score {
    double score;
    int64_t index;
} block_score;

static int by_score(const void *a, const void *b) {
    const block_score *x = a, *y = b;
    if (x->score < y->score) return -1;
    if (x->score > y->score) return 1;
    return x->index < y->index ? -1 : (x->index > y->index);
}

pl_status tr_prune_mask(float *w, int64_t rows, int64_t cols, int br, int bc, double sparsity,
                        uint8_t *mask) {
    if (br < 1 || bc < 1)
        return pl_error(PL_ERR_ARGUMENT, "prune block %dx%d is not valid", br, bc);
    if (!(sparsity >= 0.0 && sparsity <= 1.0))
        return pl_error(PL_ERR_ARGUMENT, "sparsity %g is not in [0, 1]", sparsity);
    const int64_t total = rows * cols;
    for (int64_t i = 0; i < total; i++) mask[i] = 1;
    if (total == 0 || sparsity == 0.0) return PL_OK;
    const int64_t nbr = (rows + br - 1) / br, nbc = (cols + bc - 1) / bc, nb = nbr * nbc;
    block_score *bs = malloc((size_t)nb * sizeof *bs);
    if (!bs) return pl_error(PL_ERR_NOMEM, "out of memory computing pruning masks");
    for (int64_t b = 0; b < nb; b++) {
        const int64_t r0 = (b / nbc) * br, c0 = (b % nbc) * bc;
        const int64_t r1 = r0 + br < rows ? r0 + br : rows, c1 = c0 + bc < cols ? c0 + bc : cols;
        double s = 0;
        for (int64_t r = r0; r < r1; r++)
            for (int64_t c = c0; c < c1; c++) s += fabs((double)w[r * cols + c]);
        bs[b].score = s / (double)((r1 - r0) * (c1 - c0));
        bs[b].index = b;
    }
    qsort(bs, (size_t)nb, sizeof *bs, by_score);
    const double target = sparsity * (double)total;
    int64_t pruned = 0;
    for (int64_t k = 0; k < nb; k++) {
        const int64_t b = bs[k].index;
        const int64_t r0 = (b / nbc) * br, c0 = (b % nbc) * bc;
        const int64_t r1 = r0 + br < rows ? r0 + br : rows, c1 = c0 + bc < cols ? c0 + bc : cols;
        const int64_t size = (r1 - r0) * (c1 - c0);
        if ((double)pruned + 0.5 * (double)size > target) break;
        for (int64_t r = r0; r < r1; r++)
            for (int64_t c = c0; c < c1; c++) {
                mask[r * cols + c] = 0;
                w[r * cols + c] = 0.0f;
            }
        pruned += size;
    }
    free(bs);
    return PL_OK;
}

/* ---- block magnitude pruning of whole models (pillar prune) ----
 *
 * Blocks run along the reduction axis (see tr_prune_layer). Blocks are ranked by mean
 * |w| and removed weakest first, (score, position) ascending, while the count pruned
 * stays within half a block of the target. Instead of sorting every block (85 M of
 * them for a BERT-base at block 1) the cut-off score is found by a two-pass radix
 * select over the scores' float bits (non-negative floats order like their bits), so
 * the memory used is two 64 K-entry histograms whatever the model size. */

static int64_t blocks_of(const tr_prune_layer *l, int block) {
    return l->outer * ((l->red + block - 1) / block) * l->inner;
}

/* Score bits of block b of layer l and its size (elements). NaN counts as +inf: kept. */
static uint32_t block_bits(const tr_prune_layer *l, int block, int64_t b, int64_t *size) {
    const int64_t nrb = (l->red + block - 1) / block;
    const int64_t i = b % l->inner, rb = (b / l->inner) % nrb, o = b / (l->inner * nrb);
    const int64_t r0 = rb * block, r1 = r0 + block < l->red ? r0 + block : l->red;
    const float *p = l->w + (o * l->red + r0) * l->inner + i;
    double s = 0;
    for (int64_t r = r0; r < r1; r++, p += l->inner) s += fabs((double)*p);
    *size = r1 - r0;
    float f = (float)(s / (double)(r1 - r0));
    if (isnan(f)) f = INFINITY;
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static void block_zero(tr_prune_layer *l, int block, int64_t b) {
    const int64_t nrb = (l->red + block - 1) / block;
    const int64_t i = b % l->inner, rb = (b / l->inner) % nrb, o = b / (l->inner * nrb);
    const int64_t r0 = rb * block, r1 = r0 + block < l->red ? r0 + block : l->red;
    float *p = l->w + (o * l->red + r0) * l->inner + i;
    for (int64_t r = r0; r < r1; r++, p += l->inner) *p = 0.0f;
}

/* Prunes the blocks of layers[0..n) ranked together to `sparsity` of their elements. */
static pl_status prune_group(tr_prune_layer *layers, int n, int block, double sparsity) {
    int64_t total = 0;
    for (int j = 0; j < n; j++) total += layers[j].outer * layers[j].red * layers[j].inner;
    const double target = sparsity * (double)total;
    if (total == 0 || target < 0.5) return PL_OK;
    int64_t *hist = calloc(65536, sizeof *hist);
    if (!hist) return pl_error(PL_ERR_NOMEM, "out of memory pruning");
    /* pass 1: the high 16 bits of the cut-off score */
    for (int j = 0; j < n; j++)
        for (int64_t b = 0, nb = blocks_of(&layers[j], block); b < nb; b++) {
            int64_t size;
            hist[block_bits(&layers[j], block, b, &size) >> 16] += size;
        }
    int64_t before = 0;
    uint32_t hi = 0;
    while (hi < 65535 && (double)(before + hist[hi]) <= target) before += hist[hi++];
    /* pass 2: the low 16 bits within that bin */
    memset(hist, 0, 65536 * sizeof *hist);
    for (int j = 0; j < n; j++)
        for (int64_t b = 0, nb = blocks_of(&layers[j], block); b < nb; b++) {
            int64_t size;
            uint32_t u = block_bits(&layers[j], block, b, &size);
            if (u >> 16 == hi) hist[u & 0xffff] += size;
        }
    uint32_t lo = 0;
    while (lo < 65535 && (double)(before + hist[lo]) <= target) before += hist[lo++];
    free(hist);
    const uint32_t cut = hi << 16 | lo;
    /* pass 3: everything below the cut, then blocks at the cut in order while the
     * count stays within half a block of the target */
    int64_t pruned = before;
    bool full = false;
    for (int j = 0; j < n; j++)
        for (int64_t b = 0, nb = blocks_of(&layers[j], block); b < nb; b++) {
            int64_t size;
            uint32_t u = block_bits(&layers[j], block, b, &size);
            if (u > cut) continue;
            if (u == cut) {
                if (full || (double)pruned + 0.5 * (double)size > target) {
                    full = true;
                    continue;
                }
                pruned += size;
            }
            block_zero(&layers[j], block, b);
        }
    return PL_OK;
}

pl_status tr_prune_layers(tr_prune_layer *layers, int n, int block, double sparsity, bool global) {
    if (block < 1) return pl_error(PL_ERR_ARGUMENT, "prune block %d is not valid", block);
    if (!(sparsity >= 0.0 && sparsity <= 1.0))
        return pl_error(PL_ERR_ARGUMENT, "sparsity %g is not in [0, 1]", sparsity);
    for (int j = 0; j < n; j++)
        if (layers[j].outer < 0 || layers[j].red < 0 || layers[j].inner < 0 ||
            (!layers[j].w && layers[j].outer * layers[j].red * layers[j].inner > 0))
            return pl_error(PL_ERR_ARGUMENT, "prune layer %d is not valid", j);
    if (global) return prune_group(layers, n, block, sparsity);
    for (int j = 0; j < n; j++) PL_TRY(prune_group(&layers[j], 1, block, sparsity));
    return PL_OK;
}
