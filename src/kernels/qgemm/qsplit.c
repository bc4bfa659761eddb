/* qsplit.c -- orders the entries of an AVX2 block-sparse weight packing by how the kernel
 * multiplies them (see qsplit.h). Plain C: it runs at packing time on any CPU. */
#include <stdlib.h>
#include <string.h>

#include "kernels/qgemm/qsplit.h"

/* Whether pairs (w[i], w[j]) and the other two are both within the vpmaddubsw bound. */
static bool pairs_fit(const int8_t w[4], int i, int j) {
    int o[2], n = 0;
    for (int t = 0; t < 4; t++)
        if (t != i && t != j) o[n++] = w[t];
    return pl_q8_pair_fits(w[i], w[j]) && pl_q8_pair_fits(o[0], o[1]);
}

/* A group's class (0: plain) and its entry weights: out[0..3], and out[4..7] for the
 * second entry of a group split in two (plain) or the marker slot of a permuted one. */
static int classify(const int8_t w[4], int8_t out[8], bool *two) {
    memset(out, 0, 8);
    *two = true;
    if (pairs_fit(w, 0, 1)) {
        memcpy(out, w, 4);
        *two = false;
        return 0;
    }
    if (pairs_fit(w, 0, 2)) {
        const int8_t p[4] = {w[0], w[2], w[1], w[3]};
        memcpy(out, p, 4);
        return PL_Q8_CLS_P0213;
    }
    if (pairs_fit(w, 0, 3)) {
        const int8_t p[4] = {w[0], w[3], w[1], w[2]};
        memcpy(out, p, 4);
        return PL_Q8_CLS_P0312;
    }
    const int8_t p[8] = {w[0], 0, w[2], 0, 0, w[1], 0, w[3]};
    memcpy(out, p, 8);
    return 0;
}

void pl_q8_avx2_classify(pl_q8_w *pw) {
    if (!pw->sparse || pw->level != PL_Q8_AVX2 || pw->nent <= 0) return;
    int32_t *idx = pw->idx;
    int8_t *v = pw->vals;
    for (int64_t q = 0; q < pw->nent; q++)
        if (idx[q] < 0) return; /* already classified */
    int32_t *ti = malloc(sizeof(int32_t) * (size_t)pw->nent);
    int8_t *tv = malloc((size_t)pw->nent * 4);
    if (!ti || !tv) {
        free(ti);
        free(tv);
        return;
    }
    for (int64_t m = 0; m < pw->M; m++) {
        const int64_t q0 = pw->ptr[m], q1 = pw->ptr[m + 1];
        int64_t j = q0;
        /* plain entries first, then the permuted ones */
        for (int pass = 0; pass < 2; pass++) {
            for (int64_t q = q0; q < q1;) {
                /* pl_q8_pack_w's split: two entries of one group whose weights add up */
                const bool split = q + 1 < q1 && idx[q + 1] == idx[q];
                int8_t w[4], out[8];
                for (int t = 0; t < 4; t++) w[t] = (int8_t)(v[4 * q + t] + (split ? v[4 * q + 4 + t] : 0));
                const int32_t g = idx[q];
                q += split ? 2 : 1;
                bool two;
                const int cls = classify(w, out, &two);
                if ((cls != 0) != (pass == 1)) continue;
                ti[j] = g;
                memcpy(tv + 4 * j, out, 4);
                j++;
                if (two) {
                    ti[j] = cls ? cls : g;
                    memcpy(tv + 4 * j, out + 4, 4);
                    j++;
                }
            }
        }
        if (j != q1) { /* a group packed alone that needs two entries: not from pl_q8_pack_w */
            free(ti);
            free(tv);
            return;
        }
    }
    memcpy(idx, ti, sizeof(int32_t) * (size_t)pw->nent);
    memcpy(v, tv, (size_t)pw->nent * 4);
    free(ti);
    free(tv);
}
