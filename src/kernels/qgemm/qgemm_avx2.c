/* qgemm_avx2.c -- the AVX2 level of the INT8 GEMM engine. The A panel is u8 (as on the
 * other levels). Dense tiles: int16 weights and vpmaddwd against the panel widened to
 * int16 in registers (exact for any weights); one widened ymm holds 4 columns x 4 k and
 * vpmaddwd leaves two partial sums per column, folded by vphaddd once per tile. Tiles:
 * 6 rows x 8 columns per pass (narrow last chunks compute only the 8-column blocks they
 * need; single columns, as in a batch-1 matrix product, use a 6-row gemv). Sparse rows:
 * vpmaddubsw (u8 x s8, 8 columns x 4 k per ymm) then vpmaddwd with ones, on weight
 * groups that pl_q8_pack_w proved (or split so) that no int16 pair sum can saturate --
 * half the panel bytes and no fold; groups whose pairs fit only in another pairing of
 * their four k have their activation bytes reordered by vpshufb instead of a split
 * (qsplit.h). Also the AVX2 max-pooling row pass. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels/qgemm/qgemm.h"
#include "kernels/qgemm/qsplit.h"

#define MR 6

static inline __m256i bcast4w(const int16_t *p) {
    int64_t v;
    memcpy(&v, p, 8);
    return _mm256_set1_epi64x(v);
}

/* 16 panel bytes (4 columns x 4 k) widened to int16. */
static inline __m256i wide16(const uint8_t *p) {
    return _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(const void *)p));
}

/* Folds two partial-sum vectors (columns 0-3 and 4-7) into 8 column sums. */
static inline __m256i fold(__m256i lo, __m256i hi) {
    return _mm256_permute4x64_epi64(_mm256_hadd_epi32(lo, hi), 0xD8);
}

/* c += t in place: with the plain intrinsic GCC rotates the accumulators through extra
 * registers (a vmovdqa per product) and, in the 12-accumulator tile, spills them to
 * the stack; pinning the add keeps each accumulator in one register. */
#define ACC(c, t) __asm__("vpaddd %1, %0, %0" : "+x"(c) : "x"(t))

/* The raw sums of the rows of dense tile mt over nsb (1..4) blocks of 8 columns from
 * p0 (acc row stride 32): a narrow last chunk (P = 49 = 32 + 17, 196 = 192 + 4) computes
 * only the blocks it needs. */
static void tile_n(const pl_q8_w *pw, int64_t mt, const void *panel, int64_t Pp, int64_t p0,
                   int nsb, int32_t *acc) {
    const int64_t G = pw->Kp / 4;
    const int16_t *w = (const int16_t *)pw->data + mt * G * MR * 4;
    for (int sb = 0; sb < nsb; sb++) {
        const uint8_t *a = (const uint8_t *)panel + (p0 + sb * 8) * 4;
#define DECL(r) __m256i c##r##0 = _mm256_setzero_si256(), c##r##1 = _mm256_setzero_si256()
        DECL(0); DECL(1); DECL(2); DECL(3); DECL(4); DECL(5);
#undef DECL
        for (int64_t g = 0; g < G; g++) {
            const __m256i a0 = wide16(a + g * Pp * 4), a1 = wide16(a + g * Pp * 4 + 16);
            const int16_t *wg = w + g * MR * 4;
#define ROW(r)                                                                                     \
    do {                                                                                           \
        const __m256i b = bcast4w(wg + 4 * (r));                                                   \
        __m256i t0 = _mm256_madd_epi16(a0, b);                                                     \
        ACC(c##r##0, t0);                                                                          \
        __m256i t1 = _mm256_madd_epi16(a1, b);                                                     \
        ACC(c##r##1, t1);                                                                          \
    } while (0)
            ROW(0); ROW(1); ROW(2); ROW(3); ROW(4); ROW(5);
#undef ROW
        }
#define PUT(r) _mm256_storeu_si256((__m256i *)(acc + (r) * 32 + sb * 8), fold(c##r##0, c##r##1))
        PUT(0); PUT(1); PUT(2); PUT(3); PUT(4); PUT(5);
#undef PUT
    }
}

static void tile_avx2(const pl_q8_w *pw, int64_t mt, const void *panel, int64_t Pp, int64_t p0,
                      int32_t *acc) {
    tile_n(pw, mt, panel, Pp, p0, 4, acc);
}

/* The 4 panel bytes at p widened to int16, in every 64-bit lane. */
static inline __m256i bcast4b(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_broadcastq_epi64(_mm_cvtepu8_epi16(_mm_cvtsi32_si128(v)));
}

/* The 6 rows of tile mt at the one column p (a batch-1 matrix product, narrow tails):
 * the column's 4 activations of a group broadcast against the group's 24 weights. */
static void gemv_avx2(const pl_q8_w *pw, int64_t mt, const void *panel, int64_t Pp, int64_t p,
                      int32_t *acc) {
    const int64_t G = pw->Kp / 4;
    const int16_t *w = (const int16_t *)pw->data + mt * G * MR * 4;
    const uint8_t *a = (const uint8_t *)panel + p * 4;
    __m256i c0 = _mm256_setzero_si256(), c2 = _mm256_setzero_si256();
    __m128i c1 = _mm_setzero_si128(), c3 = _mm_setzero_si128();
    int64_t g = 0;
    for (; g + 2 <= G; g += 2) { /* two groups per pass: independent accumulators */
        const __m256i b0 = bcast4b(a + g * Pp * 4), b1 = bcast4b(a + (g + 1) * Pp * 4);
        const int16_t *w0 = w + g * MR * 4, *w1 = w0 + MR * 4;
        c0 = _mm256_add_epi32(c0, _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)w0), b0));
        c1 = _mm_add_epi32(c1, _mm_madd_epi16(_mm_loadu_si128((const __m128i *)(w0 + 16)),
                                              _mm256_castsi256_si128(b0)));
        c2 = _mm256_add_epi32(c2, _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)w1), b1));
        c3 = _mm_add_epi32(c3, _mm_madd_epi16(_mm_loadu_si128((const __m128i *)(w1 + 16)),
                                              _mm256_castsi256_si128(b1)));
    }
    if (g < G) {
        const __m256i b0 = bcast4b(a + g * Pp * 4);
        const int16_t *w0 = w + g * MR * 4;
        c0 = _mm256_add_epi32(c0, _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)w0), b0));
        c1 = _mm_add_epi32(c1, _mm_madd_epi16(_mm_loadu_si128((const __m128i *)(w0 + 16)),
                                              _mm256_castsi256_si128(b0)));
    }
    c0 = _mm256_add_epi32(c0, c2);
    c1 = _mm_add_epi32(c1, c3);
    /* lanes hold two partial sums per row: rows 0..3 in c0, rows 4..5 in c1 */
    const __m128i r03 = _mm_hadd_epi32(_mm256_castsi256_si128(c0), _mm256_extracti128_si256(c0, 1));
    const __m128i r45 = _mm_hadd_epi32(c1, c1);
    _mm_storeu_si128((__m128i *)acc, r03);
    _mm_storel_epi64((__m128i *)(acc + 4), r45);
}

static void epi_avx2(const pl_q8_w *pw, int64_t m, const int32_t *acc, const int32_t *asum,
                     int32_t za, int64_t p0, int64_t n, const pl_q8_epilogue *e, void *out,
                     int64_t ldm, int64_t ldp) {
    if (ldp != 1 || n < 8) {
        pl_q8_epi_scalar(pw, m, acc, asum, za, p0, n, e, out, ldm, ldp);
        return;
    }
    const int32_t zw = pw->zw[m];
    /* row_off / row_fast: prepared once per call by pl_q8_gemm (the depthwise driver
     * calls this without them) */
    const int32_t off = e->row_off ? e->row_off[m] : pl_q8_row_offset(pw, m, za, e->bias_i32);
    const __m256i voff = _mm256_set1_epi32(off), vzw = _mm256_set1_epi32(zw);
    const int64_t at0 = m * ldm + p0;
    float lo, hi;
    pl_q8_out_range(e, &lo, &hi);
    const __m256 vs = _mm256_set1_ps(e->out == PL_Q8_OUT_I32 ? 0.0f : e->scale[m]);
    const __m256 vb = _mm256_set1_ps(e->fbias ? e->fbias[m] : 0.0f);
    const __m256 vr = _mm256_set1_ps(e->rscale), vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    const __m256i vzp = _mm256_set1_epi32(e->zp);
    /* locals: the u8 stores below may alias *e, which would make every use reload it */
    const pl_q8_out kind = e->out;
    const float *res = e->res ? e->res + at0 : NULL;
    /* u8 / s8 outputs round first and clamp in integers (as in qgemm_avx512.c: rounding
     * is monotone, so this gives ref.c's values), the type's range coming from the
     * saturating packs; valid while the rounding cannot overflow int32 */
    const bool fast = e->row_off ? e->row_fast[m] != 0 : pl_q8_row_rounds_first(pw, m, za, e);
    if (fast) {
        const bool u8 = kind == PL_Q8_OUT_U8;
        int32_t ilo, ihi;
        pl_q8_int_range(e, &ilo, &ihi);
        const bool add_zp = e->zp != 0, clamp_lo = ilo > (u8 ? 0 : -128), clamp_hi = ihi < (u8 ? 255 : 127);
        const __m128i vzp16 = _mm_set1_epi16((int16_t)e->zp);
        const __m128i vlo16 = _mm_set1_epi16((int16_t)ilo), vhi16 = _mm_set1_epi16((int16_t)ihi);
        uint8_t *o = (uint8_t *)out + at0;
        for (int64_t j0 = 0; j0 < n; j0 += 8) {
            const int64_t j = j0 + 8 <= n ? j0 : n - 8;
            const __m256i v = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(acc + j)), voff);
            const __m256i q = _mm256_cvtps_epi32(_mm256_fmadd_ps(_mm256_cvtepi32_ps(v), vs, vb));
            __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
            if (add_zp) w16 = _mm_adds_epi16(w16, vzp16);
            if (clamp_lo) w16 = _mm_max_epi16(w16, vlo16);
            if (clamp_hi) w16 = _mm_min_epi16(w16, vhi16);
            _mm_storel_epi64((__m128i *)(o + j), u8 ? _mm_packus_epi16(w16, w16) : _mm_packs_epi16(w16, w16));
        }
        return;
    }
    /* Full vectors of 8; the last one overlaps the previous (recomputing the same
     * values), so no tail loop is needed (n >= 8). */
    for (int64_t j0 = 0; j0 < n; j0 += 8) {
        const int64_t j = j0 + 8 <= n ? j0 : n - 8;
        __m256i v = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(acc + j)), voff);
        if (zw)
            v = _mm256_sub_epi32(
                v, _mm256_mullo_epi32(vzw, _mm256_loadu_si256((const __m256i *)(asum + p0 + j))));
        if (kind == PL_Q8_OUT_I32) {
            _mm256_storeu_si256((__m256i *)((int32_t *)out + at0 + j), v);
            continue;
        }
        __m256 y = _mm256_fmadd_ps(_mm256_cvtepi32_ps(v), vs, vb);
        if (res) y = _mm256_fmadd_ps(_mm256_loadu_ps(res + j), vr, y);
        y = _mm256_min_ps(_mm256_max_ps(y, vlo), vhi);
        if (kind == PL_Q8_OUT_F32) {
            _mm256_storeu_ps((float *)out + at0 + j, y);
            continue;
        }
        const __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(y), vzp);
        const __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
        const __m128i b8 = kind == PL_Q8_OUT_U8 ? _mm_packus_epi16(w16, w16) : _mm_packs_epi16(w16, w16);
        _mm_storel_epi64((__m128i *)((uint8_t *)out + at0 + j), b8);
    }
}

/* A dense tile with its epilogue (contiguous output rows), computing only the 8-column
 * blocks that hold some of the n columns. */
static void tile_epi_avx2(const pl_q8_w *pw, int64_t mt, const void *panel, int64_t Pp, int64_t p0,
                          int64_t n, const int32_t *asum, int32_t za, const pl_q8_epilogue *e,
                          void *out, int64_t ldm) {
    _Alignas(32) int32_t acc[MR * 32];
    tile_n(pw, mt, panel, Pp, p0, (int)((n + 7) / 8), acc);
    const int64_t m0 = mt * MR, mrows = pw->M - m0 < MR ? pw->M - m0 : MR;
    for (int64_t r = 0; r < mrows; r++)
        epi_avx2(pw, m0 + r, acc + r * 32, asum, za, p0, n, e, out, ldm, 1);
}

/* The inner loops of a sparse row over 8 * NV columns (NV 1..8): c0..c7 (named variables,
 * so ACC keeps them in registers; c_i holds columns 8i..8i+7) += the row's entries
 * q0..q1 times the panel rows they select; a is the panel (u8) at the columns. A row
 * holds its one-entry groups first, then the permuted ones (qsplit.h), whose activation
 * quads are reordered (vpshufb, the control picked by the entry's marker) so that their
 * pairs fit vpmaddubsw's int16 bound: two loops, so that a row's passes cost one extra
 * loop exit. 64 columns per pass load 256 contiguous bytes per entry and halve the
 * per-entry index and broadcast work; a narrow last pass (P = 49: 64 + 17, 196: 192 + 4)
 * computes only the vectors that hold columns. */
#define SROW_V(MAC, NV)                                                                            \
    do {                                                                                           \
        MAC(0);                                                                                    \
        if ((NV) > 1) MAC(1);                                                                      \
        if ((NV) > 2) MAC(2);                                                                      \
        if ((NV) > 3) MAC(3);                                                                      \
        if ((NV) > 4) MAC(4);                                                                      \
        if ((NV) > 5) MAC(5);                                                                      \
        if ((NV) > 6) MAC(6);                                                                      \
        if ((NV) > 7) MAC(7);                                                                      \
    } while (0)
#define MAC_PLAIN(i)                                                                               \
    do {                                                                                           \
        __m256i t = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_loadu_si256(ag + (i)), b), ones); \
        ACC(c##i, t);                                                                              \
    } while (0)
#define MAC_PERM(i)                                                                                \
    do {                                                                                           \
        const __m256i x = _mm256_shuffle_epi8(_mm256_loadu_si256(ag + (i)), perm);               \
        __m256i t = _mm256_madd_epi16(_mm256_maddubs_epi16(x, b), ones);                          \
        ACC(c##i, t);                                                                              \
    } while (0)
#define SROW_W(q) _mm256_set1_epi32(w4(v + (q) * 4)) /* entry q's 4 weights in every dword */
#define SROW_AG(a, q) ((const __m256i *)(const void *)((a) + (int64_t)idx[q] * Pp * 4))
#define SROW_MACS(a, NV)                                                                           \
    do {                                                                                           \
        int64_t q = q0;                                                                            \
        for (; q < q1 && (q + 1 == q1 || idx[q + 1] >= 0); q++) {                                  \
            const __m256i *ag = SROW_AG(a, q), b = SROW_W(q);                                      \
            SROW_V(MAC_PLAIN, NV);                                                                 \
        }                                                                                          \
        for (; q < q1; q += 2) {                                                                   \
            const __m256i *ag = SROW_AG(a, q), b = SROW_W(q);                                      \
            const __m256i perm = _mm256_load_si256(perm_ctl + (idx[q + 1] == PL_Q8_CLS_P0312));    \
            SROW_V(MAC_PERM, NV);                                                                  \
        }                                                                                          \
    } while (0)

static inline int32_t w4(const int8_t *p) {
    int32_t x;
    memcpy(&x, p, 4);
    return x;
}

/* vpshufb controls reading each activation quad as (a0, a2, a1, a3) (P0213) and
 * (a0, a3, a1, a2) (P0312) */
static const union {
    uint8_t b[2][32];
    __m256i v[2];
} perm_ctls = {.b = {{0, 2, 1, 3, 4, 6, 5, 7, 8, 10, 9, 11, 12, 14, 13, 15,
                      0, 2, 1, 3, 4, 6, 5, 7, 8, 10, 9, 11, 12, 14, 13, 15},
                     {0, 3, 1, 2, 4, 7, 5, 6, 8, 11, 9, 10, 12, 15, 13, 14,
                      0, 3, 1, 2, 4, 7, 5, 6, 8, 11, 9, 10, 12, 15, 13, 14}}};

static void srow_avx2(const pl_q8_w *pw, int64_t m, const void *panel, int64_t Pp, int64_t p0, int nb,
                      int32_t *acc) {
    const int32_t *idx = pw->idx;
    const int8_t *v = pw->vals;
    const int64_t q0 = pw->ptr[m], q1 = pw->ptr[m + 1];
    const __m256i ones = _mm256_set1_epi16(1);
    const __m256i *perm_ctl = perm_ctls.v;
    for (int sb = 0; sb < nb; sb += 2) {
        const uint8_t *a = (const uint8_t *)panel + (p0 + sb * 32) * 4;
        const __m256i z = _mm256_setzero_si256();
        __m256i c0 = z, c1 = z, c2 = z, c3 = z, c4 = z, c5 = z, c6 = z, c7 = z;
        if (sb + 1 < nb) {
            SROW_MACS(a, 8);
        } else {
            SROW_MACS(a, 4);
        }
        const __m256i r[8] = {c0, c1, c2, c3, c4, c5, c6, c7};
        for (int i = 0; i < (sb + 1 < nb ? 8 : 4); i++)
            _mm256_storeu_si256((__m256i *)(acc + sb * 32 + 8 * i), r[i]);
    }
}

/* Epilogue constants of a sparse row (srow_epi_avx2). */
typedef struct srow_epi {
    __m256 vs, vb;
    __m256i vzp, vlo, vhi, order;
    bool u8, add_zp, clamp_lo, clamp_hi;
} srow_epi;

/* 32 outputs (left of them stored, 1..32) from the accumulators r[0..3] (offset
 * included): scale, round, narrow, zero point, clamp, in column order. */
static inline void srow_put32(const srow_epi *k, const __m256i c[4], uint8_t *o, int64_t left) {
    __m256i r[4];
    for (int i = 0; i < 4; i++)
        r[i] = _mm256_cvtps_epi32(_mm256_fmadd_ps(_mm256_cvtepi32_ps(c[i]), k->vs, k->vb));
    __m256i p01 = _mm256_packs_epi32(r[0], r[1]), p23 = _mm256_packs_epi32(r[2], r[3]);
    if (k->add_zp) {
        p01 = _mm256_adds_epi16(p01, k->vzp);
        p23 = _mm256_adds_epi16(p23, k->vzp);
    }
    if (k->clamp_lo) {
        p01 = _mm256_max_epi16(p01, k->vlo);
        p23 = _mm256_max_epi16(p23, k->vlo);
    }
    if (k->clamp_hi) {
        p01 = _mm256_min_epi16(p01, k->vhi);
        p23 = _mm256_min_epi16(p23, k->vhi);
    }
    /* per 128-bit lane l: 4 values of each r[i] (columns 8i+4l..8i+4l+3): back to order */
    const __m256i y8 = _mm256_permutevar8x32_epi32(
        k->u8 ? _mm256_packus_epi16(p01, p23) : _mm256_packs_epi16(p01, p23), k->order);
    if (left >= 32) {
        _mm256_storeu_si256((__m256i *)o, y8);
    } else { /* whole dwords masked, then the last 0..3 bytes */
        const int nd = (int)(left / 4);
        const __m256i km = _mm256_cmpgt_epi32(_mm256_set1_epi32(nd), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        _mm256_maskstore_epi32((int *)(void *)o, km, y8);
        _Alignas(32) uint8_t tmp[32];
        _mm256_store_si256((__m256i *)tmp, y8);
        for (int64_t i = 4 * nd; i < left; i++) o[i] = tmp[i];
    }
}

/* A sparse row with the epilogue done from the registers, 64 (or 32) columns at a time,
 * for u8 / s8 outputs that may round before clamping (as in epi_avx2; else srow_avx2 +
 * epi_avx2): the offset starts in the accumulators, and four vectors of 8 sums are
 * narrowed together by two saturating packs -- a row of a short-K layer at 90% sparsity
 * has only one or two non-zero groups, so its cost is mostly this epilogue. */
static void srow_epi_avx2(const pl_q8_w *pw, int64_t m, const void *panel, int64_t Pp, int64_t p0,
                          int nb, int64_t n, const int32_t *asum, int32_t za,
                          const pl_q8_epilogue *e, void *out, int64_t ldm) {
    const bool u8 = e->out == PL_Q8_OUT_U8;
    /* (row_off, row_fast, ilo, ihi: prepared once per call by pl_q8_gemm) */
    if (!e->row_fast[m]) {
        _Alignas(32) int32_t acc[16 * 32];
        srow_avx2(pw, m, panel, Pp, p0, nb, acc);
        epi_avx2(pw, m, acc, asum, za, p0, n, e, out, ldm, 1);
        return;
    }
    const float s1 = e->scale[m], b1 = e->fbias ? e->fbias[m] : 0.0f;
    const uint32_t off = (uint32_t)e->row_off[m];
    const int32_t ilo = e->ilo, ihi = e->ihi;
    srow_epi k = {.vs = _mm256_set1_ps(s1), .vb = _mm256_set1_ps(b1),
                  .vzp = _mm256_set1_epi16((int16_t)e->zp), .vlo = _mm256_set1_epi16((int16_t)ilo),
                  .vhi = _mm256_set1_epi16((int16_t)ihi),
                  .order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7), .u8 = u8,
                  .add_zp = e->zp != 0, .clamp_lo = ilo > (u8 ? 0 : -128),
                  .clamp_hi = ihi < (u8 ? 255 : 127)};
    const __m256i init = _mm256_set1_epi32((int32_t)off), ones = _mm256_set1_epi16(1);
    const int32_t *idx = pw->idx;
    const int8_t *v = pw->vals;
    const int64_t q0 = pw->ptr[m], q1 = pw->ptr[m + 1];
    const __m256i *perm_ctl = perm_ctls.v;
    uint8_t *o = (uint8_t *)out + m * ldm + p0;
    for (int sb = 0; sb < nb && 32 * sb < n; sb += 2) {
        const uint8_t *a = (const uint8_t *)panel + (p0 + sb * 32) * 4;
        __m256i c0 = init, c1 = init, c2 = init, c3 = init, c4 = init, c5 = init, c6 = init, c7 = init;
        const int64_t cols = n - 32 * sb < 64 ? n - 32 * sb : 64;
        const bool two = sb + 1 < nb && cols > 32;
        if (cols == 64 && two) {
            SROW_MACS(a, 8);
        } else {
            const int nv = (int)((cols + 7) / 8);
            SROW_MACS(a, nv);
        }
        const __m256i lo4[4] = {c0, c1, c2, c3};
        srow_put32(&k, lo4, o + 32 * sb, n - 32 * sb);
        if (two) {
            const __m256i hi4[4] = {c4, c5, c6, c7};
            srow_put32(&k, hi4, o + 32 * sb + 32, n - 32 * sb - 32);
        }
    }
}

static const pl_q8_impl impl = {PL_Q8_AVX2,    MR,        tile_avx2, srow_avx2, epi_avx2,
                                tile_epi_avx2, srow_epi_avx2, gemv_avx2, NULL,      NULL};

const pl_q8_impl *pl_q8_impl_avx2(void) { return &impl; }

void pl_q8_add_u8_avx2(const uint8_t *a, const uint8_t *b, uint8_t *y, int64_t n, const pl_q8_add_params *p) {
    const __m256 ra = _mm256_set1_ps(p->ra), rb = _mm256_set1_ps(p->rb), fx = _mm256_set1_ps(p->fixed);
    const __m256 lo = _mm256_set1_ps(p->lo), hi = _mm256_set1_ps(p->hi);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    int64_t i = 0;
    /* 32 per pass, narrowed together by two packs (then back to order) */
    for (; i + 32 <= n; i += 32) {
        __m256i q[4];
        for (int h = 0; h < 4; h++) {
            const __m256 af = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(a + i + 8 * h))));
            const __m256 bf = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(b + i + 8 * h))));
            __m256 v = _mm256_fmadd_ps(af, ra, _mm256_fmadd_ps(bf, rb, fx));
            v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
            q[h] = _mm256_cvtps_epi32(v);
        }
        const __m256i y8 = _mm256_packus_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
        _mm256_storeu_si256((__m256i *)(y + i), _mm256_permutevar8x32_epi32(y8, order));
    }
    for (; i + 8 <= n; i += 8) {
        const __m256 af = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(a + i))));
        const __m256 bf = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(b + i))));
        __m256 v = _mm256_fmadd_ps(af, ra, _mm256_fmadd_ps(bf, rb, fx));
        v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
        const __m256i q = _mm256_cvtps_epi32(v);
        const __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
        _mm_storel_epi64((__m128i *)(y + i), _mm_packus_epi16(w16, w16));
    }
    if (i < n) pl_q8_add_u8_ref(a + i, b + i, y + i, n - i, p);
}

void pl_q8_interleave4_avx2(const uint8_t *const r[4], int64_t n, uint8_t *d) {
    int64_t p = 0;
    for (; p + 32 <= n; p += 32) {
        const __m256i x0 = _mm256_loadu_si256((const __m256i *)(r[0] + p));
        const __m256i x1 = _mm256_loadu_si256((const __m256i *)(r[1] + p));
        const __m256i x2 = _mm256_loadu_si256((const __m256i *)(r[2] + p));
        const __m256i x3 = _mm256_loadu_si256((const __m256i *)(r[3] + p));
        const __m256i l01 = _mm256_unpacklo_epi8(x0, x1), h01 = _mm256_unpackhi_epi8(x0, x1);
        const __m256i l23 = _mm256_unpacklo_epi8(x2, x3), h23 = _mm256_unpackhi_epi8(x2, x3);
        /* per 128-bit lane l (columns 16l..16l+15): q0 columns 0-3, q1 4-7, q2 8-11, q3 12-15 */
        const __m256i q0 = _mm256_unpacklo_epi16(l01, l23), q1 = _mm256_unpackhi_epi16(l01, l23);
        const __m256i q2 = _mm256_unpacklo_epi16(h01, h23), q3 = _mm256_unpackhi_epi16(h01, h23);
        _mm256_storeu_si256((__m256i *)(d + 4 * p), _mm256_permute2x128_si256(q0, q1, 0x20));
        _mm256_storeu_si256((__m256i *)(d + 4 * p + 32), _mm256_permute2x128_si256(q2, q3, 0x20));
        _mm256_storeu_si256((__m256i *)(d + 4 * p + 64), _mm256_permute2x128_si256(q0, q1, 0x31));
        _mm256_storeu_si256((__m256i *)(d + 4 * p + 96), _mm256_permute2x128_si256(q2, q3, 0x31));
    }
    for (; p + 16 <= n; p += 16) {
        const __m128i x0 = _mm_loadu_si128((const __m128i *)(r[0] + p));
        const __m128i x1 = _mm_loadu_si128((const __m128i *)(r[1] + p));
        const __m128i x2 = _mm_loadu_si128((const __m128i *)(r[2] + p));
        const __m128i x3 = _mm_loadu_si128((const __m128i *)(r[3] + p));
        const __m128i l01 = _mm_unpacklo_epi8(x0, x1), h01 = _mm_unpackhi_epi8(x0, x1);
        const __m128i l23 = _mm_unpacklo_epi8(x2, x3), h23 = _mm_unpackhi_epi8(x2, x3);
        _mm_storeu_si128((__m128i *)(d + 4 * p), _mm_unpacklo_epi16(l01, l23));
        _mm_storeu_si128((__m128i *)(d + 4 * p + 16), _mm_unpackhi_epi16(l01, l23));
        _mm_storeu_si128((__m128i *)(d + 4 * p + 32), _mm_unpacklo_epi16(h01, h23));
        _mm_storeu_si128((__m128i *)(d + 4 * p + 48), _mm_unpackhi_epi16(h01, h23));
    }
    for (; p < n; p++)
        for (int t = 0; t < 4; t++) d[4 * p + t] = r[t][p];
}

void pl_q8_gather_dw_s2_avx2(const uint32_t *src, int64_t n, uint32_t *dst) {
    const __m256i ev = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    int64_t p = 0;
    /* 8 outputs read src[2p .. 2p + 15]; the last full block must stay inside 2n - 2 */
    for (; p + 8 < n; p += 8) {
        const __m256i a = _mm256_permutevar8x32_epi32(_mm256_loadu_si256((const __m256i *)(src + 2 * p)), ev);
        const __m256i b =
            _mm256_permutevar8x32_epi32(_mm256_loadu_si256((const __m256i *)(src + 2 * p + 8)), ev);
        _mm256_storeu_si256((__m256i *)(dst + p), _mm256_permute2x128_si256(a, b, 0x20));
    }
    for (; p < n; p++) dst[p] = src[2 * p];
}

void pl_q8_copy_s2_avx2(const uint8_t *src, int64_t n, uint8_t *dst, uint8_t flip) {
    const __m256i lo = _mm256_set1_epi16(0xff), f = _mm256_set1_epi8((char)flip);
    int64_t p = 0;
    /* 32 outputs read src[2p .. 2p + 63]; the last full block must stay inside 2n - 1 */
    for (; p + 32 < n; p += 32) {
        const __m256i a = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(src + 2 * p)), lo);
        const __m256i b =
            _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(src + 2 * p + 32)), lo);
        const __m256i v = _mm256_permute4x64_epi64(_mm256_packus_epi16(a, b), 0xD8);
        _mm256_storeu_si256((__m256i *)(dst + p), _mm256_xor_si256(v, f));
    }
    for (; p < n; p++) dst[p] = src[2 * p] ^ flip;
}

/* 32 outputs from p: max over j < k of x[p * s + j] (s 1 or 2; `odd`: for stride 2, read
 * each window from one byte earlier and take the odd bytes, so that a last block ending
 * at the row's end reads nothing past it). */
static inline __m256i maxrow32(const uint8_t *x, int64_t p, int64_t k, int64_t s, bool odd, __m256i f) {
    const __m256i lo = _mm256_set1_epi16(0xff);
    __m256i m = _mm256_setzero_si256();
    for (int64_t j = 0; j < k; j++) {
        __m256i v;
        if (s == 1) {
            v = _mm256_loadu_si256((const __m256i *)(x + p + j));
        } else {
            const uint8_t *q = x + 2 * p + j - (odd ? 1 : 0);
            __m256i a = _mm256_loadu_si256((const __m256i *)q), b = _mm256_loadu_si256((const __m256i *)(q + 32));
            a = odd ? _mm256_srli_epi16(a, 8) : _mm256_and_si256(a, lo);
            b = odd ? _mm256_srli_epi16(b, 8) : _mm256_and_si256(b, lo);
            v = _mm256_permute4x64_epi64(_mm256_packus_epi16(a, b), 0xD8);
        }
        /* flipped values compare as unsigned in the same order as the signed ones */
        m = _mm256_max_epu8(m, _mm256_xor_si256(v, f));
    }
    return m;
}

void pl_q8_maxrow_avx2(const uint8_t *x, int64_t n, int64_t k, int64_t s, uint8_t flip, uint8_t *t) {
    const __m256i f = _mm256_set1_epi8((char)flip);
    int64_t p = 0;
    /* 32 outputs read x[p * s + j .. + 32 * s - 1] for j < k; with stride 2 the last full
     * block must stay inside (n - 1) * 2 + k - 1, hence p + 32 < n */
    for (; s == 1 ? p + 32 <= n : p + 32 < n; p += 32)
        _mm256_storeu_si256((__m256i *)(t + p), maxrow32(x, p, k, s, false, f));
    /* the tail: one block ending at n, overlapping the last (the same values again);
     * stride 2 reads it one byte early (x[2 (n - 32) - 1] exists when n > 32) */
    if (p < n && (s == 1 ? n >= 32 : n > 32)) {
        _mm256_storeu_si256((__m256i *)(t + n - 32), maxrow32(x, n - 32, k, s, s == 2, f));
        p = n;
    }
    for (; p < n; p++) {
        uint8_t m = 0;
        for (int64_t j = 0; j < k; j++) {
            const uint8_t v = x[p * s + j] ^ flip;
            m = v > m ? v : m;
        }
        t[p] = m;
    }
}

void pl_q8_lut_avx2(const uint8_t *x, uint8_t *y, int64_t n, const uint8_t t[256]) {
    __m256i tab[16];
    for (int h = 0; h < 16; h++) tab[h] = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(t + 16 * h)));
    const __m256i lo4 = _mm256_set1_epi8(0x0f);
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m256i v = _mm256_loadu_si256((const __m256i *)(x + i));
        const __m256i idx = _mm256_and_si256(v, lo4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), lo4);
        __m256i r = _mm256_setzero_si256();
        for (int h = 0; h < 16; h++) /* the entry of nibble pair (h, idx), where v's high nibble is h */
            r = _mm256_or_si256(r, _mm256_and_si256(_mm256_cmpeq_epi8(hi, _mm256_set1_epi8((char)h)),
                                                     _mm256_shuffle_epi8(tab[h], idx)));
        _mm256_storeu_si256((__m256i *)(y + i), r);
    }
    pl_q8_lut_ref(x + i, y + i, n - i, t);
}
