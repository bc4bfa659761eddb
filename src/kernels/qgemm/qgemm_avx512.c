/* qgemm_avx512.c -- the AVX-512 VNNI level of the INT8 GEMM engine: vpdpbusd (u8 x s8,
 * four products summed into each int32 lane, exact) on 12 x 32 tiles (24 accumulators,
 * the weights broadcast four at a time) with the requantisation epilogue applied straight
 * from the registers; narrow last chunks as 12 x 16 tiles or one column at a time
 * (gemv); sparse rows of up to 128 columns; a transposed epilogue for [P][M] outputs;
 * the A-panel helpers (4-row interleave, stride-2 compaction, 2-D max-pool rows). Every
 * epilogue does the same float operations as ref.c (u8 / s8 outputs may round before
 * clamping, in integers, which gives the same values: see epi_tile), so all levels
 * agree bit for bit. Row tiles of 4 or 8 rows run as such (M = 64, 128). */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels/qgemm/qgemm.h"

#define MR 12

/* c += dot4(a u8, b s8) in place: GCC's register allocation of the intrinsic's
 * non-destructive form adds a move (and spills) per product in the 24-accumulator tile. */
#define DPBUSD(c, a, b) __asm__("vpdpbusd %2, %1, %0" : "+v"(c) : "v"(a), "v"(b))

static inline __m512i bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

/* The K loop of a 12 x 32 tile into the named accumulators c<r>0, c<r>1 (not an array,
 * so that they stay in registers). */
#define TILE_LOOP()                                                                                \
    const int64_t G = pw->Kp / 4;                                                                  \
    const int8_t *w = (const int8_t *)pw->data + mt * G * MR * 4;                                  \
    const uint8_t *a = (const uint8_t *)panel + p0 * 4;                                            \
    DECL(0);                                                                                       \
    DECL(1);                                                                                       \
    DECL(2);                                                                                       \
    DECL(3);                                                                                       \
    DECL(4);                                                                                       \
    DECL(5);                                                                                       \
    DECL(6);                                                                                       \
    DECL(7);                                                                                       \
    DECL(8);                                                                                       \
    DECL(9);                                                                                       \
    DECL(10);                                                                                      \
    DECL(11);                                                                                      \
    for (int64_t g = 0; g < G; g++) {                                                              \
        const __m512i a0 = _mm512_loadu_si512(a + g * Pp * 4);                                     \
        const __m512i a1 = _mm512_loadu_si512(a + g * Pp * 4 + 64);                                \
        const int8_t *wg = w + g * MR * 4;                                                         \
        ROW(0);                                                                                    \
        ROW(1);                                                                                    \
        ROW(2);                                                                                    \
        ROW(3);                                                                                    \
        ROW(4);                                                                                    \
        ROW(5);                                                                                    \
        ROW(6);                                                                                    \
        ROW(7);                                                                                    \
        ROW(8);                                                                                    \
        ROW(9);                                                                                    \
        ROW(10);                                                                                   \
        ROW(11);                                                                                   \
    }
#define DECL(r) __m512i c##r##0 = INIT(r), c##r##1 = INIT(r)
#define INIT(r) _mm512_setzero_si512()
#define ROW(r)                                                                                     \
    if ((r) < RR) {                                                                                \
        const __m512i b = bcast4(wg + 4 * (r));                                                    \
        DPBUSD(c##r##0, a0, b);                                                                    \
        DPBUSD(c##r##1, a1, b);                                                                    \
    }

static void tile_vnni(const pl_q8_w *pw, int64_t mt, const void *panel, int64_t Pp, int64_t p0,
                      int32_t *acc) {
    const int RR = MR;
    TILE_LOOP()
#define PUT(r)                                                                                     \
    do {                                                                                           \
        _mm512_store_si512(acc + (r) * 32, c##r##0);                                               \
        _mm512_store_si512(acc + (r) * 32 + 16, c##r##1);                                          \
    } while (0)
    PUT(0); PUT(1); PUT(2); PUT(3); PUT(4); PUT(5);
    PUT(6); PUT(7); PUT(8); PUT(9); PUT(10); PUT(11);
#undef PUT
}

/* The 12 rows of tile mt at column p: the activations' 4 bytes of a group broadcast
 * as the u8 operand against the tile's 48 weight bytes (12 lanes), two accumulators
 * to hide the vpdpbusd latency. */
static void gemv_vnni(const pl_q8_w *pw, int64_t mt, const void *panel, int64_t Pp, int64_t p,
                      int32_t *acc) {
    const int64_t G = pw->Kp / 4;
    const int8_t *w = (const int8_t *)pw->data + mt * G * MR * 4;
    const uint8_t *a = (const uint8_t *)panel + p * 4;
    const __mmask16 k = (__mmask16)((1u << MR) - 1);
    __m512i c0 = _mm512_setzero_si512(), c1 = _mm512_setzero_si512();
    int64_t g = 0;
    for (; g + 2 <= G; g += 2) {
        DPBUSD(c0, bcast4((const int8_t *)(a + g * Pp * 4)),
               _mm512_maskz_loadu_epi32(k, w + g * MR * 4));
        DPBUSD(c1, bcast4((const int8_t *)(a + (g + 1) * Pp * 4)),
               _mm512_maskz_loadu_epi32(k, w + (g + 1) * MR * 4));
    }
    if (g < G)
        DPBUSD(c0, bcast4((const int8_t *)(a + g * Pp * 4)),
               _mm512_maskz_loadu_epi32(k, w + g * MR * 4));
    _mm512_mask_storeu_epi32(acc, k, _mm512_add_epi32(c0, c1));
}

/* The per-row constants of the epilogue (see qgemm.h). */
typedef struct epi_row {
    __m512i off, zw, zp;
    __m512 s, b, r, lo, hi;
    bool has_zw;
    const int32_t *asum; /* at column p0 */
    const float *res;    /* at (m, p0), or NULL */
    void *out;           /* at (m, p0) */
    pl_q8_out kind;
} epi_row;

static inline __attribute__((always_inline)) void
epi_row_init(epi_row *q, const pl_q8_w *pw, int64_t m, const int32_t *asum, int32_t za, int64_t p0,
             const pl_q8_epilogue *e, void *out, int64_t ldm) {
    const int32_t zw = pw->zw[m];
    const int64_t at0 = m * ldm + p0;
    float lo, hi;
    pl_q8_out_range(e, &lo, &hi);
    q->off = _mm512_set1_epi32(e->row_off ? e->row_off[m] : pl_q8_row_offset(pw, m, za, e->bias_i32));
    q->zw = _mm512_set1_epi32(zw);
    q->has_zw = zw != 0;
    q->zp = _mm512_set1_epi32(e->zp);
    q->s = _mm512_set1_ps(e->out == PL_Q8_OUT_I32 ? 0.0f : e->scale[m]);
    q->b = _mm512_set1_ps(e->fbias ? e->fbias[m] : 0.0f);
    q->r = _mm512_set1_ps(e->rscale);
    q->lo = _mm512_set1_ps(lo);
    q->hi = _mm512_set1_ps(hi);
    q->asum = asum ? asum + p0 : NULL;
    q->res = e->res ? e->res + at0 : NULL;
    q->kind = e->out;
    q->out = (char *)out + at0 * (e->out == PL_Q8_OUT_U8 || e->out == PL_Q8_OUT_S8 ? 1 : 4);
}

/* Columns j .. j+15 (mask k) of one row from raw sums v. */
static inline __attribute__((always_inline)) void epi16(const epi_row *q, __m512i v, int64_t j,
                                                        __mmask16 k) {
    v = _mm512_add_epi32(v, q->off);
    if (q->has_zw)
        v = _mm512_sub_epi32(v, _mm512_mullo_epi32(q->zw, _mm512_loadu_si512(q->asum + j)));
    if (q->kind == PL_Q8_OUT_I32) {
        _mm512_mask_storeu_epi32((int32_t *)q->out + j, k, v);
        return;
    }
    __m512 y = _mm512_fmadd_ps(_mm512_cvtepi32_ps(v), q->s, q->b);
    if (q->res) y = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, q->res + j), q->r, y);
    y = _mm512_min_ps(_mm512_max_ps(y, q->lo), q->hi);
    if (q->kind == PL_Q8_OUT_F32) {
        _mm512_mask_storeu_ps((float *)q->out + j, k, y);
        return;
    }
    const __m512i r = _mm512_add_epi32(_mm512_cvtps_epi32(y), q->zp);
    if (q->kind == PL_Q8_OUT_U8)
        _mm512_mask_cvtusepi32_storeu_epi8((uint8_t *)q->out + j, k, r);
    else
        _mm512_mask_cvtsepi32_storeu_epi8((int8_t *)q->out + j, k, r);
}

static inline __mmask16 mask16(int64_t n) {
    return n >= 16 ? (__mmask16)0xffff : n <= 0 ? 0 : (__mmask16)((1u << n) - 1);
}

static void epi_vnni(const pl_q8_w *pw, int64_t m, const int32_t *acc, const int32_t *asum,
                     int32_t za, int64_t p0, int64_t n, const pl_q8_epilogue *e, void *out,
                     int64_t ldm, int64_t ldp) {
    if (ldp != 1) {
        pl_q8_epi_scalar(pw, m, acc, asum, za, p0, n, e, out, ldm, ldp);
        return;
    }
    epi_row q;
    epi_row_init(&q, pw, m, asum, za, p0, e, out, ldm);
    for (int64_t j = 0; j < n; j += 16) epi16(&q, _mm512_loadu_si512(acc + j), j, mask16(n - j));
}

/* Per-tile epilogue constants, read before the first store: the u8 stores go through
 * char pointers, which may alias anything, so reading pw / e per row after a store
 * would reload them every time. off[r] (the zero-point and bias terms, see qgemm.h) is
 * folded into the accumulators' start values (int32 sums wrap, so the order does not
 * matter). The "fast" form of a u8 / s8 output rounds first and clamps in integers:
 * rounding is monotone, so round(min(max(y, lo), hi)) = min(max(round(y), round(lo)),
 * round(hi)) -- the same values as ref.c -- and the type's own range comes from the
 * saturating narrowing store, which drops two float ops per vector and, with zero point
 * 0 and a Relu (or no clamp), the zero-point add and the clamps too. It needs the
 * rounding not to overflow int32, which pl_q8_row_fast checks per row (|scale| <= 0.25
 * and |fbias| <= 2^28, or the row's bound from its weights' absolute sum). */
typedef struct epi_tile {
    const int32_t *off; /* MR values (rows past M: 0) */
    const float *s, *b; /* the rows' scales and float biases */
    bool fast, add_zp, clamp_lo, clamp_hi;
    int32_t zp, ilo, ihi;
} epi_tile;

static const float zeros_f[MR];

/* The tile's constants from the per-call part pl_q8_gemm prepared (e->row_off, e->fast:
 * the tiles only run under pl_q8_gemm). */
static inline __attribute__((always_inline)) void epi_tile_init(epi_tile *t, int64_t m0,
                                                                const pl_q8_epilogue *e) {
    t->off = e->row_off + m0;
    t->s = e->out == PL_Q8_OUT_I32 ? zeros_f : e->scale + m0;
    t->b = e->fbias ? e->fbias + m0 : zeros_f;
    t->fast = e->fast;
    if (!t->fast) return;
    const bool u8 = e->out == PL_Q8_OUT_U8;
    t->zp = e->zp;
    t->ilo = e->ilo;
    t->ihi = e->ihi;
    t->add_zp = e->zp != 0;
    /* the u8 store saturates as unsigned: negative values need the clamp */
    t->clamp_lo = u8 || t->ilo > -128;
    t->clamp_hi = t->ihi < (u8 ? 255 : 127);
}

/* Columns j .. j+15 (mask k) of tile row r in the fast form. */
static inline __attribute__((always_inline)) void epi16_fast(const epi_tile *t, int r, __m512i v,
                                                             void *out, bool u8, __mmask16 k) {
    const __m512 y =
        _mm512_fmadd_ps(_mm512_cvtepi32_ps(v), _mm512_set1_ps(t->s[r]), _mm512_set1_ps(t->b[r]));
    __m512i q = _mm512_cvtps_epi32(y);
    if (t->add_zp) q = _mm512_add_epi32(q, _mm512_set1_epi32(t->zp));
    if (t->clamp_lo) q = _mm512_max_epi32(q, _mm512_set1_epi32(t->ilo));
    if (t->clamp_hi) q = _mm512_min_epi32(q, _mm512_set1_epi32(t->ihi));
    if (u8) _mm512_mask_cvtusepi32_storeu_epi8(out, k, q);
    else _mm512_mask_cvtsepi32_storeu_epi8(out, k, q);
}

/* The general epilogue of tile row r (offset already in the sums). */
static inline __attribute__((always_inline)) void
epi_row_init_t(epi_row *q, const epi_tile *t, const pl_q8_w *pw, int64_t m, const int32_t *asum,
               int32_t za, int64_t p0, const pl_q8_epilogue *e, void *out, int64_t ldm) {
    (void)t;
    epi_row_init(q, pw, m, asum, za, p0, e, out, ldm);
    q->off = _mm512_setzero_si512();
}

/* The epilogue of tile rows 0 .. mrows-1 from the accumulators c<r>0 / c<r>1 (n <= 32
 * columns; t, m0, mrows, e, out, ldm, asum, za, p0 and pw in scope), shared by the
 * GEMM tile and the implicit-convolution tile. */
#define EPIF2(r)                                                                                   \
    do {                                                                                           \
        if ((r) < mrows) {                                                                         \
            epi16_fast(&t, (r), c##r##0, o + (r) * ldm, u8, k0);                                   \
            if (k1) epi16_fast(&t, (r), c##r##1, o + (r) * ldm + 16, u8, k1);                      \
        }                                                                                          \
    } while (0)
#define EPI2(r)                                                                                    \
    do {                                                                                           \
        if ((r) < mrows) {                                                                         \
            epi_row q;                                                                             \
            epi_row_init_t(&q, &t, pw, m0 + (r), asum, za, p0, e, out, ldm);                       \
            epi16(&q, c##r##0, 0, k0);                                                             \
            if (k1) epi16(&q, c##r##1, 16, k1);                                                    \
        }                                                                                          \
    } while (0)
#define TILE_EPI_TAIL()                                                                            \
    do {                                                                                           \
        const __mmask16 k0 = mask16(n), k1 = mask16(n - 16);                                       \
        if (t.fast) {                                                                              \
            const bool u8 = e->out == PL_Q8_OUT_U8;                                                \
            uint8_t *o = (uint8_t *)out + m0 * ldm + p0;                                           \
            EPIF2(0); EPIF2(1); EPIF2(2); EPIF2(3); EPIF2(4); EPIF2(5);                            \
            EPIF2(6); EPIF2(7); EPIF2(8); EPIF2(9); EPIF2(10); EPIF2(11);                          \
            break;                                                                                 \
        }                                                                                          \
        EPI2(0); EPI2(1); EPI2(2); EPI2(3); EPI2(4); EPI2(5);                                      \
        EPI2(6); EPI2(7); EPI2(8); EPI2(9); EPI2(10); EPI2(11);                                    \
    } while (0)

/* The dense tile with the epilogue applied straight from the accumulators (rows
 * m0 .. m0 + mrows, n <= 32 columns, contiguous output rows): no round trip of the raw
 * sums through memory and no call per row, which matters for small K. */
static inline __attribute__((always_inline)) void
tile_epi_body(const pl_q8_w *pw, int64_t mt, const void *panel, int64_t Pp, int64_t p0, int64_t n,
              const int32_t *asum, int32_t za, const pl_q8_epilogue *e, void *out, int64_t ldm,
              const int RR) {
    const int64_t m0 = mt * MR, mrows = pw->M - m0 < MR ? pw->M - m0 : MR;
    epi_tile t;
    epi_tile_init(&t, m0, e);
#undef INIT
#define INIT(r) _mm512_set1_epi32(t.off[r])
    TILE_LOOP()
#undef INIT
#define INIT(r) _mm512_setzero_si512()
    TILE_EPI_TAIL();
}

/* A row tile that is mostly padding (M = 64 = 5 * 12 + 4, 128 = 10 * 12 + 8) runs only
 * the rows it has: 4 or 8 of the 12, a third or two thirds of the products. */
static void tile_epi_vnni(const pl_q8_w *pw, int64_t mt, const void *panel, int64_t Pp, int64_t p0,
                          int64_t n, const int32_t *asum, int32_t za, const pl_q8_epilogue *e,
                          void *out, int64_t ldm) {
    const int64_t mrows = pw->M - mt * MR;
    if (mrows <= 4)
        tile_epi_body(pw, mt, panel, Pp, p0, n, asum, za, e, out, ldm, 4);
    else if (mrows <= 8)
        tile_epi_body(pw, mt, panel, Pp, p0, n, asum, za, e, out, ldm, 8);
    else
        tile_epi_body(pw, mt, panel, Pp, p0, n, asum, za, e, out, ldm, MR);
}

/* ---- implicit-GEMM convolution tiles (see pl_q8_iconv in qgemm.h) ---- */

/* The loads of 16 output columns from p (nv of them real): run s covers the lanes k[s]
 * (columns in one output row), lane i of it at d[s] + 4 * i bytes past a quad's base. */
typedef struct iruns {
    int64_t d[4];
    __mmask16 k[4];
    int ns;
} iruns;

static void iconv_runs(const pl_q8_iconv *ic, int64_t p, int64_t nv, iruns *r) {
    r->ns = 0;
    for (int s = 0; s < 4; s++) {
        r->d[s] = 0;
        r->k[s] = 0;
    }
    for (int64_t i = 0; i < nv && r->ns < 4;) {
        const int64_t oh = (p + i) / ic->OW, ow = (p + i) % ic->OW;
        const int64_t run = ic->OW - ow < nv - i ? ic->OW - ow : nv - i;
        r->d[r->ns] = (oh * ic->Wq + ow - i) * 4;
        r->k[r->ns] = (__mmask16)(((1u << run) - 1u) << i);
        r->ns++;
        i += run;
    }
}

/* 16 columns' 4 bytes of one group: NS masked loads (runs past r->ns have empty masks). */
static inline __attribute__((always_inline)) __m512i iload(const uint8_t *a, const int64_t *d,
                                                           const __mmask16 *k, const int NS) {
    __m512i v = _mm512_maskz_loadu_epi32(k[0], a + d[0]);
    if (NS > 1) v = _mm512_mask_loadu_epi32(v, k[1], a + d[1]);
    if (NS > 2) v = _mm512_mask_loadu_epi32(v, k[2], a + d[2]);
    if (NS > 3) v = _mm512_mask_loadu_epi32(v, k[3], a + d[3]);
    return v;
}

/* The 12 x 32 (NV = 2) or 12 x 16 (NV = 1) tile over taps and channel quads, epilogue
 * from the registers as tile_epi_body. */
static inline __attribute__((always_inline)) void
iconv_body(const pl_q8_w *pw, int64_t mt, const pl_q8_iconv *ic, const iruns *r0, const iruns *r1,
           int64_t p0, int64_t n, int32_t za, const pl_q8_epilogue *e, void *out, int64_t ldm,
           const int RR, const int NV, const int NS) {
    const int64_t m0 = mt * MR, mrows = pw->M - m0 < MR ? pw->M - m0 : MR;
    const int32_t *asum = NULL;
    epi_tile t;
    epi_tile_init(&t, m0, e);
    const int64_t d0[4] = {r0->d[0], r0->d[1], r0->d[2], r0->d[3]};
    const int64_t d1[4] = {r1->d[0], r1->d[1], r1->d[2], r1->d[3]};
    const __mmask16 k0s[4] = {r0->k[0], r0->k[1], r0->k[2], r0->k[3]};
    const __mmask16 k1s[4] = {r1->k[0], r1->k[1], r1->k[2], r1->k[3]};
    const int64_t G = pw->Kp / 4, cq = ic->cq, cs = ic->cstride;
    const int8_t *w = (const int8_t *)pw->data + mt * G * MR * 4;
#define IDECL(r) __m512i c##r##0 = _mm512_set1_epi32(t.off[r]), c##r##1 = c##r##0
    IDECL(0); IDECL(1); IDECL(2); IDECL(3); IDECL(4); IDECL(5);
    IDECL(6); IDECL(7); IDECL(8); IDECL(9); IDECL(10); IDECL(11);
#undef IDECL
    for (int tp = 0; tp < ic->ntaps; tp++) {
        const uint8_t *at = ic->x + ic->tapoff[tp];
        const int8_t *wt = w + tp * cq * MR * 4;
        for (int64_t q = 0; q < cq; q++) {
            const uint8_t *aq = at + q * cs;
            const __m512i a0 = iload(aq, d0, k0s, NS);
            const __m512i a1 = NV > 1 ? iload(aq, d1, k1s, NS) : a0;
            const int8_t *wg = wt + q * MR * 4;
#define IROW(r)                                                                                    \
    if ((r) < RR) {                                                                                \
        const __m512i b = bcast4(wg + 4 * (r));                                                    \
        DPBUSD(c##r##0, a0, b);                                                                    \
        if (NV > 1) DPBUSD(c##r##1, a1, b);                                                        \
    }
            IROW(0); IROW(1); IROW(2); IROW(3); IROW(4); IROW(5);
            IROW(6); IROW(7); IROW(8); IROW(9); IROW(10); IROW(11);
#undef IROW
        }
    }
    TILE_EPI_TAIL();
}

#define ICONV_NS(RR, NV)                                                                           \
    do {                                                                                           \
        if (ns <= 1) iconv_body(pw, mt, ic, &r0, &r1, p0, n, za, e, out, ldm, RR, NV, 1);          \
        else if (ns == 2) iconv_body(pw, mt, ic, &r0, &r1, p0, n, za, e, out, ldm, RR, NV, 2);     \
        else if (ns == 3) iconv_body(pw, mt, ic, &r0, &r1, p0, n, za, e, out, ldm, RR, NV, 3);     \
        else iconv_body(pw, mt, ic, &r0, &r1, p0, n, za, e, out, ldm, RR, NV, 4);                  \
    } while (0)
#define ICONV_NV(RR)                                                                               \
    do {                                                                                           \
        if (n <= 16) ICONV_NS(RR, 1);                                                              \
        else ICONV_NS(RR, 2);                                                                      \
    } while (0)

void pl_q8_iconv_tile_vnni(const pl_q8_w *pw, int64_t mt, const pl_q8_iconv *ic, int64_t p0,
                           int64_t n, int32_t za, const pl_q8_epilogue *e, void *out, int64_t ldm) {
    iruns r0, r1;
    iconv_runs(ic, p0, n < 16 ? n : 16, &r0);
    iconv_runs(ic, p0 + 16, n > 32 ? 16 : n > 16 ? n - 16 : 0, &r1);
    const int ns = r0.ns > r1.ns ? r0.ns : r1.ns;
    const int64_t mrows = pw->M - mt * MR;
    if (mrows <= 4)
        ICONV_NV(4);
    else if (mrows <= 8)
        ICONV_NV(8);
    else
        ICONV_NV(MR);
}
#undef ICONV_NV
#undef ICONV_NS

/* The raw sums of tile mt's rows at the one column p: the column's 4 bytes of a group
 * broadcast against the tile's 12 weight lanes, two accumulators for the latency. */
void pl_q8_iconv_gemv_vnni(const pl_q8_w *pw, int64_t mt, const pl_q8_iconv *ic, int64_t p,
                           int32_t *acc) {
    const int64_t G = pw->Kp / 4, cq = ic->cq, cs = ic->cstride;
    const int8_t *w = (const int8_t *)pw->data + mt * G * MR * 4;
    const int64_t off = ((p / ic->OW) * ic->Wq + p % ic->OW) * 4;
    const __mmask16 k = (__mmask16)((1u << MR) - 1);
    __m512i c0 = _mm512_setzero_si512(), c1 = _mm512_setzero_si512();
    for (int tp = 0; tp < ic->ntaps; tp++) {
        const uint8_t *at = ic->x + ic->tapoff[tp] + off;
        const int8_t *wt = w + tp * cq * MR * 4;
        int64_t q = 0;
        for (; q + 2 <= cq; q += 2) {
            DPBUSD(c0, bcast4((const int8_t *)(at + q * cs)), _mm512_maskz_loadu_epi32(k, wt + q * MR * 4));
            DPBUSD(c1, bcast4((const int8_t *)(at + (q + 1) * cs)),
                   _mm512_maskz_loadu_epi32(k, wt + (q + 1) * MR * 4));
        }
        if (q < cq)
            DPBUSD(c0, bcast4((const int8_t *)(at + q * cs)), _mm512_maskz_loadu_epi32(k, wt + q * MR * 4));
    }
    _mm512_mask_storeu_epi32(acc, k, _mm512_add_epi32(c0, c1));
}

/* The dense tile for a narrow chunk (n <= 16 columns): one accumulator per row, half the
 * work of the 32-column tile, epilogue from the registers. */
static void tile16_epi_vnni(const pl_q8_w *pw, int64_t mt, const void *panel, int64_t Pp,
                            int64_t p0, int64_t n, const int32_t *asum, int32_t za,
                            const pl_q8_epilogue *e, void *out, int64_t ldm) {
    const int64_t G = pw->Kp / 4;
    const int8_t *w = (const int8_t *)pw->data + mt * G * MR * 4;
    const uint8_t *a = (const uint8_t *)panel + p0 * 4;
    const int64_t m0 = mt * MR, mrows = pw->M - m0 < MR ? pw->M - m0 : MR;
    epi_tile t;
    epi_tile_init(&t, m0, e);
#define DECL1(r) __m512i c##r##0 = _mm512_set1_epi32(t.off[r])
    DECL1(0);
    DECL1(1);
    DECL1(2);
    DECL1(3);
    DECL1(4);
    DECL1(5);
    DECL1(6);
    DECL1(7);
    DECL1(8);
    DECL1(9);
    DECL1(10);
    DECL1(11);
#undef DECL1
    for (int64_t g = 0; g < G; g++) {
        const __m512i a0 = _mm512_loadu_si512(a + g * Pp * 4);
        const int8_t *wg = w + g * MR * 4;
#define ROW1(r) DPBUSD(c##r##0, a0, bcast4(wg + 4 * (r)))
        ROW1(0);
        ROW1(1);
        ROW1(2);
        ROW1(3);
        ROW1(4);
        ROW1(5);
        ROW1(6);
        ROW1(7);
        ROW1(8);
        ROW1(9);
        ROW1(10);
        ROW1(11);
#undef ROW1
    }
    const __mmask16 k0 = mask16(n);
    if (t.fast) {
        const bool u8 = e->out == PL_Q8_OUT_U8;
        uint8_t *o = (uint8_t *)out + m0 * ldm + p0;
#define EPIF(r)                                                                                    \
    do {                                                                                           \
        if ((r) < mrows) epi16_fast(&t, (r), c##r##0, o + (r) * ldm, u8, k0);                      \
    } while (0)
        EPIF(0); EPIF(1); EPIF(2); EPIF(3); EPIF(4); EPIF(5);
        EPIF(6); EPIF(7); EPIF(8); EPIF(9); EPIF(10); EPIF(11);
#undef EPIF
        return;
    }
#define EPI1(r)                                                                                    \
    do {                                                                                           \
        if ((r) < mrows) {                                                                         \
            epi_row q;                                                                             \
            epi_row_init_t(&q, &t, pw, m0 + (r), asum, za, p0, e, out, ldm);                       \
            epi16(&q, c##r##0, 0, k0);                                                             \
        }                                                                                          \
    } while (0)
    EPI1(0);
    EPI1(1);
    EPI1(2);
    EPI1(3);
    EPI1(4);
    EPI1(5);
    EPI1(6);
    EPI1(7);
    EPI1(8);
    EPI1(9);
    EPI1(10);
    EPI1(11);
#undef EPI1
}
#undef DECL
#undef INIT
#undef ROW
#undef TILE_LOOP

/* One sparse row over NB chunks of 32 columns: per non-zero group, one broadcast and
 * 2 * NB vpdpbusd. */
static inline __attribute__((always_inline)) void
srow_n(const pl_q8_w *pw, int64_t m, const uint8_t *a, int64_t Pp, int NB, __m512i *c) {
    /* named accumulators (not c[]) so that the in-place vpdpbusd keeps them in registers */
    __m512i c0 = _mm512_setzero_si512(), c1 = _mm512_setzero_si512(), c2 = _mm512_setzero_si512(),
            c3 = _mm512_setzero_si512(), c4 = _mm512_setzero_si512(), c5 = _mm512_setzero_si512(),
            c6 = _mm512_setzero_si512(), c7 = _mm512_setzero_si512();
    const int32_t *idx = pw->idx;
    const int8_t *v = pw->vals;
    for (int64_t q = pw->ptr[m]; q < pw->ptr[m + 1]; q++) {
        const uint8_t *ag = a + (int64_t)idx[q] * Pp * 4;
        const __m512i b = bcast4(v + q * 4);
#define MAC(i)                                                                                     \
    do {                                                                                           \
        if (2 * NB > (i)) {                                                                        \
            const __m512i x = _mm512_loadu_si512(ag + 64 * (i));                                   \
            DPBUSD(c##i, x, b);                                                                    \
        }                                                                                          \
    } while (0)
        MAC(0); MAC(1); MAC(2); MAC(3); MAC(4); MAC(5); MAC(6); MAC(7);
#undef MAC
    }
    c[0] = c0; c[1] = c1; c[2] = c2; c[3] = c3; c[4] = c4; c[5] = c5; c[6] = c6; c[7] = c7;
}

/* The accumulators of a sparse row over nb (clamped to 1..4) 32-column blocks; returns
 * the clamped count. A constant count per case keeps the accumulators in registers. */
static inline __attribute__((always_inline)) int
srow_acc(const pl_q8_w *pw, int64_t m, const uint8_t *a, int64_t Pp, int nb, __m512i *c) {
    const int NB = nb < 1 ? 1 : nb > 4 ? 4 : nb;
    switch (NB) {
    case 1:
        srow_n(pw, m, a, Pp, 1, c);
        break;
    case 2:
        srow_n(pw, m, a, Pp, 2, c);
        break;
    case 3:
        srow_n(pw, m, a, Pp, 3, c);
        break;
    default:
        srow_n(pw, m, a, Pp, 4, c);
        break;
    }
    return NB;
}

static void srow_vnni(const pl_q8_w *pw, int64_t m, const void *panel, int64_t Pp, int64_t p0, int nb,
                      int32_t *acc) {
    const uint8_t *a = (const uint8_t *)panel + p0 * 4;
    __m512i c[8];
    const int NB = srow_acc(pw, m, a, Pp, nb, c);
    for (int i = 0; i < 2 * NB; i++) _mm512_store_si512(acc + 16 * i, c[i]);
}

/* A sparse row with the epilogue applied from the accumulators (n outputs from p0,
 * contiguous): the raw sums never go through memory. (The tiles' fast epilogue form
 * was measured 10-20% slower here, on rows with few non-zero groups.) */
static void srow_epi_vnni(const pl_q8_w *pw, int64_t m, const void *panel, int64_t Pp, int64_t p0,
                          int nb, int64_t n, const int32_t *asum, int32_t za,
                          const pl_q8_epilogue *e, void *out, int64_t ldm) {
    const uint8_t *a = (const uint8_t *)panel + p0 * 4;
    __m512i c[8];
    const int NB = srow_acc(pw, m, a, Pp, nb, c);
    epi_row q;
    epi_row_init(&q, pw, m, asum, za, p0, e, out, ldm);
    for (int i = 0; i < 2 * NB && 16 * i < n; i++) epi16(&q, c[i], 16 * i, mask16(n - 16 * i));
}

/* The epilogue of a dense tile whose output rows m are contiguous in memory and whose
 * columns p are strided (ldm == 1: a matrix product's [P][M] output): one 12-lane vector
 * per column, gathered from the tile's raw sums; per-row terms are lane vectors. */
static void epi_t_vnni(const pl_q8_w *pw, int64_t mt, const int32_t *acc, const int32_t *asum,
                       int32_t za, int64_t p0, int64_t n, const pl_q8_epilogue *e, void *out,
                       int64_t ldp) {
    const int64_t m0 = mt * MR, mrows = pw->M - m0 < MR ? pw->M - m0 : MR;
    const __mmask16 k = mask16(mrows);
    const __m512i zw = _mm512_maskz_loadu_epi32(k, pw->zw + m0);
    const __m512i off = _mm512_maskz_loadu_epi32(k, e->row_off + m0); /* from pl_q8_gemm */
    float lo, hi;
    pl_q8_out_range(e, &lo, &hi);
    const __m512 vs =
        e->out == PL_Q8_OUT_I32 ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(k, e->scale + m0);
    const __m512 vb = e->fbias ? _mm512_maskz_loadu_ps(k, e->fbias + m0) : _mm512_setzero_ps();
    const __m512 vr = _mm512_set1_ps(e->rscale), vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    const __m512i vzp = _mm512_set1_epi32(e->zp);
    const __m512i idx =
        _mm512_set_epi32(480, 448, 416, 384, 352, 320, 288, 256, 224, 192, 160, 128, 96, 64, 32, 0);
    for (int64_t j = 0; j < n; j++) {
        const int64_t at = (p0 + j) * ldp + m0;
        __m512i v = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), k, idx, acc + j, 4);
        v = _mm512_add_epi32(v, off);
        if (pw->any_zw)
            v = _mm512_sub_epi32(v, _mm512_mullo_epi32(zw, _mm512_set1_epi32(asum[p0 + j])));
        if (e->out == PL_Q8_OUT_I32) {
            _mm512_mask_storeu_epi32((int32_t *)out + at, k, v);
            continue;
        }
        __m512 y = _mm512_fmadd_ps(_mm512_cvtepi32_ps(v), vs, vb);
        if (e->res) y = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, e->res + at), vr, y);
        y = _mm512_min_ps(_mm512_max_ps(y, vlo), vhi);
        if (e->out == PL_Q8_OUT_F32) {
            _mm512_mask_storeu_ps((float *)out + at, k, y);
            continue;
        }
        const __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(y), vzp);
        if (e->out == PL_Q8_OUT_U8)
            _mm512_mask_cvtusepi32_storeu_epi8((uint8_t *)out + at, k, q);
        else
            _mm512_mask_cvtsepi32_storeu_epi8((int8_t *)out + at, k, q);
    }
}

static const pl_q8_impl impl = {
    PL_Q8_VNNI,    MR,        tile_vnni,       srow_vnni, epi_vnni, tile_epi_vnni,
    srow_epi_vnni, gemv_vnni, tile16_epi_vnni, epi_t_vnni};

const pl_q8_impl *pl_q8_impl_vnni(void) { return &impl; }

/* 16 sums of u8 at a and b, rounded to int32 (not clamped). */
static inline __attribute__((always_inline)) __m512i add16(const uint8_t *a, const uint8_t *b,
                                                           __m512 ra, __m512 rb, __m512 fx) {
    const __m512 af = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)a)));
    const __m512 bf = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)b)));
    return _mm512_cvtps_epi32(_mm512_fmadd_ps(af, ra, _mm512_fmadd_ps(bf, rb, fx)));
}

void pl_q8_add_u8_avx512(const uint8_t *a, const uint8_t *b, uint8_t *y, int64_t n, const pl_q8_add_params *p) {
    const __m512 ra = _mm512_set1_ps(p->ra), rb = _mm512_set1_ps(p->rb), fx = _mm512_set1_ps(p->fixed);
    const __m512 lo = _mm512_set1_ps(p->lo), hi = _mm512_set1_ps(p->hi);
    int64_t i = 0;
    /* 64 at a time rounded first and clamped in integers (rounding is monotone, so this
     * gives the reference's values; see qgemm_avx512.c's tile epilogue), the saturating
     * packs doing the u8 range: 3 fewer ops per 16 than clamping in float and narrowing
     * each vector. Needs |sum| < 2^30 so that the rounding cannot overflow. */
    const float bound = 255.0f * (fabsf(p->ra) + fabsf(p->rb)) + fabsf(p->fixed);
    if (bound < 1e9f && p->lo > -1e9f && p->hi < 1e9f) {
        const int32_t ilo = (int32_t)nearbyintf(p->lo), ihi = (int32_t)nearbyintf(p->hi);
        const bool clamp = ilo > 0 || ihi < 255;
        const __m512i lo16 = _mm512_set1_epi16((int16_t)(ilo < -32768 ? -32768 : ilo > 32767 ? 32767 : ilo));
        const __m512i hi16 = _mm512_set1_epi16((int16_t)(ihi < -32768 ? -32768 : ihi > 32767 ? 32767 : ihi));
        const __m512i perm = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
        for (; i + 64 <= n; i += 64) {
            const __m512i q0 = add16(a + i, b + i, ra, rb, fx), q1 = add16(a + i + 16, b + i + 16, ra, rb, fx);
            const __m512i q2 = add16(a + i + 32, b + i + 32, ra, rb, fx), q3 = add16(a + i + 48, b + i + 48, ra, rb, fx);
            __m512i p01 = _mm512_packs_epi32(q0, q1), p23 = _mm512_packs_epi32(q2, q3);
            if (clamp) {
                p01 = _mm512_min_epi16(_mm512_max_epi16(p01, lo16), hi16);
                p23 = _mm512_min_epi16(_mm512_max_epi16(p23, lo16), hi16);
            }
            /* lane l holds elements 4l..4l+3 of q0, q1, q2, q3: back to memory order */
            _mm512_storeu_si512(y + i, _mm512_permutexvar_epi32(perm, _mm512_packus_epi16(p01, p23)));
        }
    }
    for (; i < n; i += 16) {
        const __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        const __m512 af = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(k, a + i)));
        const __m512 bf = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(k, b + i)));
        __m512 v = _mm512_fmadd_ps(af, ra, _mm512_fmadd_ps(bf, rb, fx));
        v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
        _mm512_mask_cvtusepi32_storeu_epi8(y + i, k, _mm512_cvtps_epi32(v));
    }
}

/* Interleaves 64 columns of 4 rows (x0..x3) into 256 bytes d[4 * p + t] and stores the
 * first nbytes of them (nbytes <= 256; masked stores for a tail). */
static inline void il4_store(__m512i x0, __m512i x1, __m512i x2, __m512i x3, uint8_t *d,
                             int64_t nbytes) {
    /* the same unpacks per 128-bit lane, then a 4x4 transpose of the lanes */
    const __m512i l01 = _mm512_unpacklo_epi8(x0, x1), h01 = _mm512_unpackhi_epi8(x0, x1);
    const __m512i l23 = _mm512_unpacklo_epi8(x2, x3), h23 = _mm512_unpackhi_epi8(x2, x3);
    const __m512i q0 = _mm512_unpacklo_epi16(l01, l23), q1 = _mm512_unpackhi_epi16(l01, l23);
    const __m512i q2 = _mm512_unpacklo_epi16(h01, h23), q3 = _mm512_unpackhi_epi16(h01, h23);
    const __m512i t0 = _mm512_shuffle_i64x2(q0, q1, 0x44), t1 = _mm512_shuffle_i64x2(q2, q3, 0x44);
    const __m512i t2 = _mm512_shuffle_i64x2(q0, q1, 0xEE), t3 = _mm512_shuffle_i64x2(q2, q3, 0xEE);
    const __m512i o[4] = {_mm512_shuffle_i64x2(t0, t1, 0x88), _mm512_shuffle_i64x2(t0, t1, 0xDD),
                          _mm512_shuffle_i64x2(t2, t3, 0x88), _mm512_shuffle_i64x2(t2, t3, 0xDD)};
    if (nbytes >= 256) {
        for (int i = 0; i < 4; i++) _mm512_storeu_si512(d + 64 * i, o[i]);
        return;
    }
    for (int i = 0; i < 4 && nbytes > 64 * i; i++) {
        const int64_t c = nbytes - 64 * i;
        const __mmask64 k = c >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << c) - 1);
        _mm512_mask_storeu_epi8(d + 64 * i, k, o[i]);
    }
}

static inline __mmask64 bytes_mask(int64_t n) {
    return n >= 64 ? ~(__mmask64)0 : n <= 0 ? 0 : (((__mmask64)1 << n) - 1);
}

void pl_q8_interleave4_avx512(const uint8_t *const r[4], int64_t n, uint8_t *d) {
    int64_t p = 0;
    for (; p + 64 <= n; p += 64)
        il4_store(_mm512_loadu_si512(r[0] + p), _mm512_loadu_si512(r[1] + p),
                  _mm512_loadu_si512(r[2] + p), _mm512_loadu_si512(r[3] + p), d + 4 * p, 256);
    if (p < n) { /* masked loads read nothing past the rows' ends */
        const __mmask64 k = bytes_mask(n - p);
        il4_store(_mm512_maskz_loadu_epi8(k, r[0] + p), _mm512_maskz_loadu_epi8(k, r[1] + p),
                  _mm512_maskz_loadu_epi8(k, r[2] + p), _mm512_maskz_loadu_epi8(k, r[3] + p),
                  d + 4 * p, 4 * (n - p));
    }
}

/* 64 bytes src[0], src[2], ..., src[126] (only the first nsrc bytes of src are read):
 * vpmovwb keeps the low byte of each 16-bit word. */
static inline __m512i even_bytes(const uint8_t *src, int64_t nsrc) {
    const __m256i lo = _mm512_cvtepi16_epi8(_mm512_maskz_loadu_epi8(bytes_mask(nsrc), src));
    const __m256i hi =
        _mm512_cvtepi16_epi8(_mm512_maskz_loadu_epi8(bytes_mask(nsrc - 64), src + 64));
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

void pl_q8_interleave4_s2_avx512(const uint8_t *const r[4], int64_t n, uint8_t *d) {
    for (int64_t p = 0; p < n; p += 64) {
        const int64_t c = n - p < 64 ? n - p : 64, ns = 2 * c - 1; /* source bytes read */
        il4_store(even_bytes(r[0] + 2 * p, ns), even_bytes(r[1] + 2 * p, ns),
                  even_bytes(r[2] + 2 * p, ns), even_bytes(r[3] + 2 * p, ns), d + 4 * p, 4 * c);
    }
}

void pl_q8_copy_s2_avx512(const uint8_t *src, int64_t n, uint8_t *dst, uint8_t flip) {
    const __m512i f = _mm512_set1_epi8((char)flip);
    for (int64_t p = 0; p < n; p += 64) {
        const int64_t c = n - p < 64 ? n - p : 64;
        _mm512_mask_storeu_epi8(dst + p, bytes_mask(c),
                                _mm512_xor_si512(even_bytes(src + 2 * p, 2 * c - 1), f));
    }
}

void pl_q8_maxrow_avx512(const uint8_t *x, int64_t n, int64_t k, int64_t s, uint8_t flip,
                         uint8_t *t) {
    const __m512i f = _mm512_set1_epi8((char)flip);
    for (int64_t p = 0; p < n; p += 64) {
        const int64_t c = n - p < 64 ? n - p : 64;
        /* flipped values compare as unsigned in the same order as the signed ones */
        __m512i m = _mm512_setzero_si512();
        for (int64_t j = 0; j < k; j++) {
            const __m512i v = s == 1 ? _mm512_maskz_loadu_epi8(bytes_mask(c), x + p + j)
                                     : even_bytes(x + 2 * p + j, 2 * c - 1);
            m = _mm512_max_epu8(m, _mm512_xor_si512(v, f));
        }
        _mm512_mask_storeu_epi8(t + p, bytes_mask(c), m);
    }
}

void pl_q8_gather_dw_s2_avx512(const uint32_t *src, int64_t n, uint32_t *dst) {
    const __m512i idx = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    for (int64_t p = 0; p < n; p += 16) {
        const int64_t c = n - p < 16 ? n - p : 16, ns = 2 * c - 1; /* source dwords read */
        const __mmask16 k0 = mask16(ns), k1 = mask16(ns - 16);
        const __m512i lo = _mm512_maskz_loadu_epi32(k0, src + 2 * p);
        const __m512i hi = _mm512_maskz_loadu_epi32(k1, src + 2 * p + 16);
        _mm512_mask_storeu_epi32(dst + p, mask16(c), _mm512_permutex2var_epi32(lo, idx, hi));
    }
}

/* nrows rows of n bytes from src (row stride ss) to dst (row stride ds), inline: the
 * stride-1 im2col copies one short row (OW columns of 4 bytes: 28 to 224 bytes) per
 * output row and group, where a memcpy call per row costs more than the copy. */
void pl_q8_copy_rows_avx512(const uint8_t *src, int64_t ss, uint8_t *dst, int64_t ds,
                            int64_t nrows, int64_t n) {
    const int64_t full = n / 64 * 64;
    const __mmask64 kt = n - full >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << (n - full)) - 1);
    for (int64_t r = 0; r < nrows; r++, src += ss, dst += ds) {
        for (int64_t i = 0; i < full; i += 64)
            _mm512_storeu_si512(dst + i, _mm512_loadu_si512(src + i));
        if (kt) _mm512_mask_storeu_epi8(dst + full, kt, _mm512_maskz_loadu_epi8(kt, src + full));
    }
}

/* vpermi2b looks up 128 entries by the low 7 bits; the top bit picks the half. */
__attribute__((target("avx512f,avx512bw,avx512vbmi"))) void
pl_q8_lut_vbmi(const uint8_t *x, uint8_t *y, int64_t n, const uint8_t t[256]) {
    const __m512i t0 = _mm512_loadu_si512(t), t1 = _mm512_loadu_si512(t + 64);
    const __m512i t2 = _mm512_loadu_si512(t + 128), t3 = _mm512_loadu_si512(t + 192);
    for (int64_t i = 0; i < n; i += 64) {
        const __mmask64 k = bytes_mask(n - i);
        const __m512i v = _mm512_maskz_loadu_epi8(k, x + i);
        const __m512i lo = _mm512_permutex2var_epi8(t0, v, t1), hi = _mm512_permutex2var_epi8(t2, v, t3);
        _mm512_mask_storeu_epi8(y + i, k, _mm512_mask_blend_epi8(_mm512_movepi8_mask(v), lo, hi));
    }
}
