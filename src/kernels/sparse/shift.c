/* shift.c -- the shifted-tap form of a sparse convolution matrix (sparse.h): packing,
 * dispatch and the plain-C reference kernel. */
#include <stdlib.h>
#include <string.h>

#include "kernels/sparse/sparse.h"

/* Packs w's nonzeros chunk by chunk of chunk_k input channels, per output row, into
 * nsh groups: with nsh = 3 (the shifted-tap form) an entry goes to group 2 - sh where
 * sh = its B offset mod 16 (at most 2) and stores the offset minus sh, so every load is
 * aligned; with nsh = 1 (the channel-chunk form) all entries of a row's chunk form the
 * last group with their offsets unchanged. g[0..3] bound the three groups. */
static pl_status pack_groups(const pl_sparse_w *w, const int64_t *koff, int64_t chunk_k, int nsh,
                             const char *form, pl_sparse_shift **out) {
    if (!out) return pl_error(PL_ERR_ARGUMENT, "sparse %s packing: NULL output", form);
    *out = NULL;
    if (!w || !koff || chunk_k < 1) return pl_error(PL_ERR_ARGUMENT, "sparse %s packing: bad arguments", form);
    if (w->nnz > INT32_MAX)
        return pl_error(PL_ERR_UNSUPPORTED, "sparse matrix: %lld nonzeros, more than the %s form indexes",
                        (long long)w->nnz, form);
    for (int64_t p = 0; p < w->nnz; p++) {
        const int64_t o = koff[w->idx[p]];
        if (o < 0 || o > INT32_MAX)
            return pl_error(PL_ERR_UNSUPPORTED, "sparse matrix: B offset %lld out of range", (long long)o);
        if (nsh == 3 && o % 16 > 2)
            return pl_error(PL_ERR_UNSUPPORTED, "sparse matrix: B offset %lld is %lld past a vector boundary (at most 2)",
                            (long long)o, (long long)(o % 16));
    }
    pl_sparse_shift *s = calloc(1, sizeof *s);
    if (!s) return pl_error(PL_ERR_NOMEM, "out of memory packing a sparse matrix");
    s->M = w->M;
    s->nsh = nsh;
    s->isa = w->isa;
    s->nchunks = w->K > 0 ? (w->K + chunk_k - 1) / chunk_k : 1;
    s->gs = malloc(sizeof(int32_t) * (size_t)(s->nchunks * (w->M > 0 ? w->M : 1) * 4));
    s->val = malloc(sizeof(float) * (size_t)(w->nnz + 1));
    s->off = malloc(sizeof(int32_t) * (size_t)(w->nnz + 1));
    int64_t *cur = malloc(sizeof(int64_t) * (size_t)(w->M + 1));
    if (!s->gs || !s->val || !s->off || !cur) {
        free(cur);
        pl_sparse_shift_destroy(s);
        return pl_error(PL_ERR_NOMEM, "out of memory packing a sparse matrix");
    }
    for (int64_t m = 0; m < w->M; m++) cur[m] = w->row_ptr[m];
    int64_t q = 0;
    for (int64_t ch = 0; ch < s->nchunks; ch++) {
        const int64_t kend = (ch + 1) * chunk_k;
        for (int64_t m = 0; m < w->M; m++) {
            int32_t *g = s->gs + (ch * w->M + m) * 4;
            int64_t end = cur[m];
            while (end < w->row_ptr[m + 1] && w->idx[end] < kend) end++;
            for (int sh = 2; sh >= 0; sh--) {
                g[2 - sh] = (int32_t)q;
                for (int64_t p = cur[m]; p < end; p++) {
                    const int64_t o = koff[w->idx[p]];
                    if ((nsh == 3 ? o % 16 : 0) != sh) continue;
                    s->val[q] = w->val[p];
                    s->off[q++] = (int32_t)(o - sh);
                }
            }
            g[3] = (int32_t)q;
            cur[m] = end;
        }
    }
    free(cur);
    *out = s;
    return PL_OK;
}

pl_status pl_sparse_shift_pack(const pl_sparse_w *w, const int64_t *koff, int64_t chunk_k,
                               pl_sparse_shift **out) {
    return pack_groups(w, koff, chunk_k, 3, "shifted-tap", out);
}

pl_status pl_sparse_chunk_pack(const pl_sparse_w *w, const int64_t *koff, int64_t chunk_k,
                               pl_sparse_shift **out) {
    return pack_groups(w, koff, chunk_k, 1, "chunk", out);
}

void pl_sparse_shift_destroy(pl_sparse_shift *s) {
    if (!s) return;
    free(s->gs);
    free(s->val);
    free(s->off);
    free(s);
}

int64_t pl_sparse_shift_vecs(int64_t n) { return (n + 2 + 15) / 16; }

int64_t pl_sparse_shift_cols(const pl_sparse_shift *s, int64_t n) {
    return (n + s->nsh - 1 + 15) / 16 * 16;
}

void pl_sparse_shift_mm_ref(const pl_sparse_shift *s, int64_t m0, int64_t m1, const float *B,
                            int64_t n, float *Y, int64_t ldy) {
    if (!s || m1 <= m0 || n <= 0) return;
    const int64_t nv = pl_sparse_shift_cols(s, n), nr = n + s->nsh - 1; /* columns read of B */
    float acc[16 * 17];
    for (int64_t ch = 0; ch < s->nchunks; ch++)
        for (int64_t m = m0; m < m1; m++) {
            const int32_t *g = s->gs + (ch * s->M + m) * 4;
            float *y = Y + (m - m0) * ldy;
            if (ch > 0 && g[0] == g[3]) continue;
            memset(acc, 0, sizeof(float) * (size_t)nv);
            for (int grp = 3 - s->nsh; grp < 3; grp++) {
                if (grp > 3 - s->nsh) { /* one column down: Z_shift[j + 1] lands on column j */
                    memmove(acc, acc + 1, sizeof(float) * (size_t)(nv - 1));
                    acc[nv - 1] = 0.0f;
                }
                for (int32_t p = g[grp]; p < g[grp + 1]; p++) {
                    const float v = s->val[p], *b = B + s->off[p];
                    for (int64_t j = 0; j < nr; j++) acc[j] += v * b[j];
                }
            }
            if (ch > 0)
                for (int64_t j = 0; j < nv; j++) acc[j] += y[j];
            memcpy(y, acc, sizeof(float) * (size_t)nv);
        }
}

void pl_sparse_shift_mm(const pl_sparse_shift *s, int64_t m0, int64_t m1, const float *B,
                        int64_t n, float *Y, int64_t ldy) {
    if (!s || m1 <= m0 || n <= 0) return;
    pl_sparse_shift_fn fn = s->isa >= PL_ISA_AVX512 ? pl_sparse_shift_mm_avx512() : NULL;
    (fn ? fn : pl_sparse_shift_mm_ref)(s, m0, m1, B, n, Y, ldy);
}
