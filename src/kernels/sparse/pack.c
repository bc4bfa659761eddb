/* pack.c -- packing of sparse weight matrices (compressed rows), their accessors, the
 * run-time dispatch of pl_sparse_mm and its cost model. */
#include <stdlib.h>
#include <string.h>

#include "kernels/sparse/sparse.h"

double pl_sparse_zero_fraction(const float *w, int64_t n) {
    if (!w || n <= 0) return 0.0;
    int64_t z = 0;
    for (int64_t i = 0; i < n; i++) z += w[i] == 0.0f;
    return (double)z / (double)n;
}

pl_status pl_sparse_pack(const float *W, int64_t M, int64_t K, int64_t ldm, int64_t ldk,
                         pl_sparse_w **out) {
    if (!out) return pl_error(PL_ERR_ARGUMENT, "pl_sparse_pack: NULL output");
    *out = NULL;
    if (M < 0 || K < 0 || K > INT32_MAX)
        return pl_error(PL_ERR_ARGUMENT, "pl_sparse_pack: bad size %lld x %lld", (long long)M,
                        (long long)K);
    if (M > 0 && K > 0 && !W) return pl_error(PL_ERR_ARGUMENT, "pl_sparse_pack: NULL matrix");
    pl_sparse_w *w = calloc(1, sizeof *w);
    if (!w) return pl_error(PL_ERR_NOMEM, "out of memory packing a sparse matrix");
    w->M = M;
    w->K = K;
    w->isa = pl_cpu_isa();
    w->row_ptr = malloc(sizeof(int64_t) * (size_t)(M + 1));
    if (!w->row_ptr) goto nomem;
    int64_t nnz = 0;
    for (int64_t m = 0; m < M; m++) {
        w->row_ptr[m] = nnz;
        for (int64_t k = 0; k < K; k++) nnz += W[m * ldm + k * ldk] != 0.0f;
    }
    w->row_ptr[M] = nnz;
    w->nnz = nnz;
    /* a little slack past the end: the kernels may prefetch one index ahead */
    w->idx = malloc(sizeof(int32_t) * (size_t)(nnz + 16));
    w->val = malloc(sizeof(float) * (size_t)(nnz + 16));
    if (!w->idx || !w->val) goto nomem;
    memset(w->idx + nnz, 0, sizeof(int32_t) * 16);
    memset(w->val + nnz, 0, sizeof(float) * 16);
    int64_t q = 0;
    for (int64_t m = 0; m < M; m++)
        for (int64_t k = 0; k < K; k++) {
            const float v = W[m * ldm + k * ldk];
            if (v != 0.0f) {
                w->idx[q] = (int32_t)k;
                w->val[q++] = v;
            }
        }
    *out = w;
    return PL_OK;
nomem:
    pl_sparse_destroy(w);
    return pl_error(PL_ERR_NOMEM, "out of memory packing a sparse matrix");
}

pl_status pl_sparse_bind_koff(pl_sparse_w *w, const int64_t *koff) {
    if (!w || !koff) return pl_error(PL_ERR_ARGUMENT, "pl_sparse_bind_koff: NULL argument");
    for (int64_t p = 0; p < w->nnz; p++)
        if (koff[w->idx[p]] < 0 || koff[w->idx[p]] > INT32_MAX)
            return pl_error(PL_ERR_UNSUPPORTED, "sparse matrix: B offset %lld beyond 31 bits",
                            (long long)koff[w->idx[p]]);
    if (!w->off && !(w->off = malloc(sizeof(int32_t) * (size_t)(w->nnz + 16))))
        return pl_error(PL_ERR_NOMEM, "out of memory packing a sparse matrix");
    for (int64_t p = 0; p < w->nnz; p++) w->off[p] = (int32_t)koff[w->idx[p]];
    memset(w->off + w->nnz, 0, sizeof(int32_t) * 16);
    w->bound_koff = koff;
    /* The chunked order (pl_sparse_set_chunks) for 1x1 convolutions on planes of at most
     * 256 floats (14x14, 7x7; koff[k] = k * plane): conv_bench, 1 thread, 90% zeros,
     * ResNet-50 0.77-0.97x the time (0.86-0.88x on strided 1x1 into 28x28 and 14x14),
     * MobileNetV2 0.81-1.0x; on 28x28 and 56x56 planes it measured 1.16-1.6x slower.
     * PILLAR_SP_KC=0 turns it off (A/B), another value sets the chunk width. */
    if (!w->wide && w->isa >= PL_ISA_AVX512 && w->K >= 2 && koff[1] - koff[0] > 0 && koff[1] - koff[0] <= 256) {
        const char *e = getenv("PILLAR_SP_KC");
        const long kc = e && *e ? strtol(e, NULL, 10) : 256;
        if (kc > 0) return pl_sparse_set_chunks(w, kc) == PL_ERR_NOMEM ? PL_ERR_NOMEM : PL_OK;
    }
    return PL_OK;
}

pl_status pl_sparse_set_chunks(pl_sparse_w *w, int64_t kc) {
    if (!w) return pl_error(PL_ERR_ARGUMENT, "pl_sparse_set_chunks: NULL matrix");
    free(w->cptr);
    free(w->cval);
    free(w->coff);
    w->cptr = NULL;
    w->cval = NULL;
    w->coff = NULL;
    w->kc = w->nch = 0;
    if (kc <= 0) return PL_OK;
    const int64_t M = w->M, nch = w->K > kc ? (w->K + kc - 1) / kc : 1;
    w->cptr = malloc(sizeof(int64_t) * (size_t)(nch * M + 1));
    w->cval = malloc(sizeof(float) * (size_t)(w->nnz + 16));
    w->coff = malloc(sizeof(int32_t) * (size_t)(w->nnz + 16));
    int64_t *cur = malloc(sizeof(int64_t) * (size_t)(M + 1));
    if (!w->cptr || !w->cval || !w->coff || !cur) {
        free(cur);
        pl_sparse_set_chunks(w, 0);
        return pl_error(PL_ERR_NOMEM, "out of memory packing a sparse matrix");
    }
    w->coff_bound = w->bound_koff && w->off;
    for (int64_t m = 0; m < M; m++) cur[m] = w->row_ptr[m];
    int64_t q = 0;
    for (int64_t c = 0; c < nch; c++)
        for (int64_t m = 0; m < M; m++) {
            w->cptr[c * M + m] = q;
            for (; cur[m] < w->row_ptr[m + 1] && w->idx[cur[m]] < (c + 1) * kc; cur[m]++, q++) {
                w->cval[q] = w->val[cur[m]];
                w->coff[q] = w->coff_bound ? w->off[cur[m]] : w->idx[cur[m]];
            }
        }
    w->cptr[nch * M] = q;
    memset(w->cval + q, 0, sizeof(float) * 16);
    memset(w->coff + q, 0, sizeof(int32_t) * 16);
    free(cur);
    w->kc = kc;
    w->nch = nch;
    return PL_OK;
}

void pl_sparse_destroy(pl_sparse_w *w) {
    if (!w) return;
    free(w->cptr);
    free(w->cval);
    free(w->coff);
    pl_sparse_shift_destroy(w->shift);
    free(w->off);
    free(w->row_ptr);
    free(w->idx);
    free(w->val);
    free(w);
}

int64_t pl_sparse_nnz(const pl_sparse_w *w) { return w ? w->nnz : 0; }
int64_t pl_sparse_rows(const pl_sparse_w *w) { return w ? w->M : 0; }
int64_t pl_sparse_cols(const pl_sparse_w *w) { return w ? w->K : 0; }
pl_isa pl_sparse_isa(const pl_sparse_w *w) { return w ? w->isa : PL_ISA_REF; }

int64_t pl_sparse_nnz_rows(const pl_sparse_w *w, int64_t m0, int64_t m1) {
    if (!w) return 0;
    if (m0 < 0) m0 = 0;
    if (m1 > w->M) m1 = w->M;
    return m1 > m0 ? w->row_ptr[m1] - w->row_ptr[m0] : 0;
}

void pl_sparse_mm_rel(const pl_sparse_w *w, int64_t m0, int64_t m1, const float *B,
                      const int64_t *koff, int64_t ldb, int64_t n, float *Y, int64_t ldy,
                      const pl_sgemm_epilogue *epi) {
    if (!w || m1 <= m0 || n <= 0) return;
    pl_sparse_mm_fn fn = NULL;
    if (w->isa >= PL_ISA_AVX512) fn = pl_sparse_mm_avx512();
    if (!fn && w->isa >= PL_ISA_AVX2) fn = pl_sparse_mm_avx2();
    if (!fn) fn = pl_sparse_mm_ref;
    fn(w, m0, m1, B, koff, ldb, n, Y, ldy, epi);
}

void pl_sparse_mm(const pl_sparse_w *w, int64_t m0, int64_t m1, const float *B,
                  const int64_t *koff, int64_t ldb, int64_t n, float *Y, int64_t ldy,
                  const pl_sgemm_epilogue *epi) {
    if (!w || m1 <= m0 || n <= 0) return;
    pl_sgemm_epilogue e;
    if (epi) {
        e = *epi;
        if (e.row_bias) e.row_bias += m0;
        if (e.residual) e.residual += m0 * e.ld_residual;
    }
    pl_sparse_mm_rel(w, m0, m1, B, koff, ldb, n, Y + m0 * ldy, ldy, epi ? &e : NULL);
}

/* Cost model, fitted to bench/conv_bench runs on Zen 4 (one thread, B in L2): the
 * inner loop costs about one cycle per nonzero and vector of columns at AVX-512 (a
 * broadcast, a load and an FMA), twice that per 8 columns at AVX2; each row of each
 * column block adds a fixed overhead (loop set-up, the epilogue, the store). */
double pl_sparse_mm_cost(const pl_sparse_w *w, int64_t n) {
    if (!w || n <= 0) return 0.0;
    const double hz = 3.6e9;
    double vl, per_nz, per_row;
    switch (w->isa) {
    case PL_ISA_AVX512: vl = 16, per_nz = 1.25, per_row = 12; break;
    case PL_ISA_AVX2: vl = 8, per_nz = 1.25, per_row = 12; break;
    default: vl = 1, per_nz = 1.5, per_row = 4; break;
    }
    const double vecs = (double)((n + (int64_t)vl - 1) / (int64_t)vl);
    const double blocks = (double)((n + 8 * (int64_t)vl - 1) / (8 * (int64_t)vl));
    return ((double)w->nnz * vecs * per_nz + (double)w->M * (blocks * per_row + vecs)) / hz;
}
