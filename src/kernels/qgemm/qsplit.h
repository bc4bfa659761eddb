/* qsplit.h -- how the AVX2 sparse rows multiply each non-zero weight group.
 *
 * vpmaddubsw sums the products of byte pairs (k0, k1) and (k2, k3) of a group into
 * saturating int16 lanes. With activations in [0, 255] a pair's sum a_a w_a + a_b w_b lies
 * in [-255 * (neg), 255 * (pos)], pos / neg the sums of its positive weights and of its
 * negative weights' magnitudes, so it is exact when pos <= 128 and neg <= 128
 * (255 * 128 = 32640; 255 * 129 > 32768): always for a pair of opposite signs, and for
 * one sign when |w_a| + |w_b| <= 128 (pl_q8_pair_fits). pl_q8_pack_w splits a group with
 * a pair past that into two entries of the same
 * group, (w0, 0, w2, 0) and (0, w1, 0, w3). pl_q8_avx2_classify then turns each split
 * group that another pairing of its four weights fits into one permuted entry, and
 * reorders each row so that the kernel takes each kind in its own loop:
 *
 *   plain  one entry (w0, w1, w2, w3), both pairs within the bound, or the two entries
 *          of a split group that no pairing fits (both idx g);
 *   P0213  (w0, w2, w1, w3), then a slot with idx -1 (its weights zero): the pairs
 *          (k0, k2) and (k1, k3) fit, and the kernel reads each activation quad as
 *          (a0, a2, a1, a3) (vpshufb) before the one vpmaddubsw;
 *   P0312  (w0, w3, w1, w2), then idx -2: pairs (k0, k3), (k1, k2), the quad read as
 *          (a0, a3, a1, a2).
 *
 * A row holds its plain entries first, then the permuted ones. The entry count is
 * unchanged (a permuted group keeps pl_q8_pack_w's two slots). A row that was not
 * classified (every idx >= 0) is read as all plain, which is exact too. On ResNet-50 at
 * 90% blocks of 4, 14% of the non-zero groups have a pair past the bound and 81% of those
 * fit a permutation (2.7% stay split; with the cruder |w_a| + |w_b| <= 128 for every pair,
 * the bound until now, 28% and 54%: 12.9% split). */
#ifndef PL_KERNELS_QSPLIT_H
#define PL_KERNELS_QSPLIT_H

#include "kernels/qgemm/qgemm.h"

enum { PL_Q8_CLS_P0213 = -1, PL_Q8_CLS_P0312 = -2 };

/* Whether vpmaddubsw is exact on the weight pair (a, b) for any u8 activations. */
static inline bool pl_q8_pair_fits(int a, int b) {
    const int pos = (a > 0 ? a : 0) + (b > 0 ? b : 0), neg = (a < 0 ? -a : 0) + (b < 0 ? -b : 0);
    return pos <= 128 && neg <= 128;
}

/* Reorders an AVX2 block-sparse packing (pl_q8_pack_w's output) as above; anything else
 * is left alone, as is a packing it cannot get scratch memory for (still exact). */
void pl_q8_avx2_classify(pl_q8_w *pw);

#endif
