/* prune.c -- magnitude pruning masks. A weight is viewed as a matrix (its first dim by
 * the product of the others, as stored) cut into blocks of br x bc; blocks are ranked
 * by their mean absolute value and the weakest are masked until the wanted fraction of
 * the elements is reached (to the nearest block). 1x1 blocks are unstructured
 * pruning; ties keep the earlier block, so the result is deterministic. */
#include <math.h>
#include <stdlib.h>

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
