/* sgemm.c -- the SGEMM driver: argument checks, ISA dispatch, cache blocking, packing,
 * threading, the plain-C level and the scalar epilogue.
 *
 * Blocking (per thread, over its own block of C rows [m0,m1) x columns [n0,n1)):
 *
 *   for ic in rows, step ~MC            (equal row blocks, a multiple of MR)
 *     for pc in K, step KC              (equal K blocks: no thin last pass over C)
 *       pack A[ic.., pc..] into MR-row slivers (skipped when A is pre-packed)
 *       for jc in columns, step NC      (B block: KC x NC, sized to stay in L2)
 *         B block: pre-packed, or read in place (few rows), or packed by the first
 *           row of micro-kernels while they compute (the "packb" kernels: B is read
 *           from memory once, with no separate pass), or packed up front (transposed B)
 *         for each A sliver (MR x KC, stays in L1)
 *           for each B sliver: micro-kernel -> MR x NR tile of C
 *             (+ epilogue on the tile after the last K block, while it is hot)
 *
 * The micro-kernel streams B slivers from L2 while broadcasting from the A sliver in
 * L1, so KC is chosen from L1 (the A sliver) and NC from L2 (the B block).
 *
 * Swapped mode: NR-wide vector tiles waste lanes when N is small (N = 49 fills 49 of 64
 * lanes). When M fills them clearly better, the engine computes C^T = op(B)^T op(A)^T
 * with kernels that store their tiles transposed; pre-packed operands record which
 * mode they were packed for (pl_sgemm_pack_a_hint / _b_hint choose it).
 *
 * Threads split C into a tm x tn grid of blocks aligned to whole slivers; the grid is
 * the one with the least per-thread work, counting the packing each thread repeats
 * (a thread packs all of A for its rows and all of B for its columns), and is split
 * up to 4 tasks per thread when that is nearly free, for dynamic balance. When the grid
 * splits N and A is small, the pool packs A once for all tasks first (share_pack_a).
 * B weights packed with a small row count as hint use a long KC (pack_kc_max). */
#define _GNU_SOURCE
#include "kernels/gemm/sgemm.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ plain C level */

#define REF_MR 4
#define REF_NR 16

/* Plain-C micro-kernel: the accumulator tile is a local array the compiler keeps in
 * registers (or at least in L1); still blocked, so it is far faster than ref.c. */
static inline void ref_uk_body(const int R, const int CT, int64_t kc, const float *a,
                               const float *b, int64_t ldb, float *c, int64_t ldc, int nr,
                               float alpha, float beta) {
    float acc[REF_MR][REF_NR];
    memset(acc, 0, sizeof acc);
    if (nr == REF_NR) {
        for (int64_t k = 0; k < kc; k++, a += REF_MR, b += ldb)
            for (int i = 0; i < R; i++)
                for (int j = 0; j < REF_NR; j++) acc[i][j] += a[i] * b[j];
    } else {
        for (int64_t k = 0; k < kc; k++, a += REF_MR, b += ldb)
            for (int i = 0; i < R; i++)
                for (int j = 0; j < nr; j++) acc[i][j] += a[i] * b[j];
    }
    for (int i = 0; i < R; i++) {
        for (int j = 0; j < nr; j++) {
            float *cij = CT ? c + j * ldc + i : c + i * ldc + j;
            *cij = beta == 0.0f ? alpha * acc[i][j] : alpha * acc[i][j] + beta * *cij;
        }
    }
}

#define REF_UK1(R, CT, SFX)                                                                        \
    static void f32_gemm_ukernel_##R##x16##SFX##__ref(int64_t kc, const float *a, const float *b,  \
                                                      int64_t ldb, float *c, int64_t ldc, int nr,  \
                                                      float alpha, float beta) {                   \
        ref_uk_body(R, CT, kc, a, b, ldb, c, ldc, nr, alpha, beta);                                \
    }
#define REF_UK(R) REF_UK1(R, 0, ) REF_UK1(R, 1, t)
REF_UK(1)
REF_UK(2)
REF_UK(3)
REF_UK(4)

static void ref_pack_a(bool trans, const float *A, int64_t lda, int64_t mc, int64_t kc,
                       float *dst) {
    pl_sgemm_pack_a_generic(REF_MR, trans, A, lda, mc, kc, dst);
}
static void ref_pack_b(bool trans, const float *B, int64_t ldb, int64_t nc, int64_t kc,
                       float *dst) {
    pl_sgemm_pack_b_generic(REF_NR, trans, B, ldb, nc, kc, dst);
}

static const pl_sgemm_impl ref_impl = {
    .isa = PL_ISA_REF,
    .mr = REF_MR,
    .nr = REF_NR,
#define REF_P(R)                                                                                   \
    { f32_gemm_ukernel_##R##x16__ref, f32_gemm_ukernel_##R##x16__ref }
#define REF_PT(R)                                                                                  \
    { f32_gemm_ukernel_##R##x16t__ref, f32_gemm_ukernel_##R##x16t__ref }
    .ukernel = {REF_P(1), REF_P(2), REF_P(3), REF_P(4)},
    .ukernel_t = {REF_PT(1), REF_PT(2), REF_PT(3), REF_PT(4)},
    .pack_a = ref_pack_a,
    .pack_b = ref_pack_b,
    .epilogue = pl_sgemm_epilogue_generic,
};

/* ------------------------------------------------------------------ generic helpers */

/* Generic packers. Loops run along the stored rows of the source (contiguous reads),
 * which matters more than the write order: the destination block is small and hot. */
void pl_sgemm_pack_a_generic(int MR, bool trans, const float *A, int64_t lda, int64_t mc,
                             int64_t kc, float *dst) {
    for (int64_t r = 0; r < mc; r += MR) {
        int mr = (int)(mc - r < MR ? mc - r : MR);
        float *d = dst + (r / MR) * kc * MR;
        if (!trans) {
            for (int i = 0; i < mr; i++) {
                const float *row = A + (r + i) * lda;
                for (int64_t k = 0; k < kc; k++) d[k * MR + i] = row[k];
            }
        } else {
            for (int64_t k = 0; k < kc; k++)
                for (int i = 0; i < mr; i++) d[k * MR + i] = A[k * lda + r + i];
        }
        if (mr < MR)
            for (int64_t k = 0; k < kc; k++)
                for (int i = mr; i < MR; i++) d[k * MR + i] = 0.0f;
    }
}

void pl_sgemm_pack_b_generic(int NR, bool trans, const float *B, int64_t ldb, int64_t nc,
                             int64_t kc, float *dst) {
    for (int64_t c = 0; c < nc; c += NR) {
        int nr = (int)(nc - c < NR ? nc - c : NR);
        float *d = dst + (c / NR) * kc * NR;
        if (!trans) {
            for (int64_t k = 0; k < kc; k++) {
                const float *src = B + k * ldb + c;
                for (int j = 0; j < nr; j++) d[k * NR + j] = src[j];
            }
        } else {
            for (int j = 0; j < nr; j++) {
                const float *col = B + (c + j) * ldb;
                for (int64_t k = 0; k < kc; k++) d[k * NR + j] = col[k];
            }
        }
        if (nr < NR)
            for (int64_t k = 0; k < kc; k++)
                for (int j = nr; j < NR; j++) d[k * NR + j] = 0.0f;
    }
}

static float act_scalar(float x, const pl_sgemm_epilogue *e) {
    switch (e->act) {
    case PL_SGEMM_ACT_NONE:
        return x;
    case PL_SGEMM_ACT_RELU:
        return x < 0.0f ? 0.0f : x;
    case PL_SGEMM_ACT_CLIP:
        return x < e->act_min ? e->act_min : x > e->act_max ? e->act_max : x;
    case PL_SGEMM_ACT_LEAKY_RELU:
        return x < 0.0f ? e->act_alpha * x : x;
    case PL_SGEMM_ACT_SIGMOID:
        return 1.0f / (1.0f + expf(-x));
    case PL_SGEMM_ACT_HARDSWISH: {
        float t = x + 3.0f;
        t = t < 0.0f ? 0.0f : t > 6.0f ? 6.0f : t;
        return x * t * (1.0f / 6.0f);
    }
    case PL_SGEMM_ACT_GELU_ERF:
        return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    case PL_SGEMM_ACT_GELU_TANH: {
        float u = 0.79788456080286536f * (x + 0.044715f * x * x * x);
        return 0.5f * x * (1.0f + tanhf(u));
    }
    default:
        return x;
    }
}

void pl_sgemm_epilogue_generic(float *c, int64_t ldc, int64_t mr, int64_t nr, const float *row_bias,
                               const float *col_bias, const float *res, int64_t ldr,
                               const pl_sgemm_epilogue *epi) {
    for (int64_t i = 0; i < mr; i++) {
        float *ci = c + i * ldc;
        float rb = row_bias ? row_bias[i] : 0.0f;
        for (int64_t j = 0; j < nr; j++) {
            float v = ci[j] + rb;
            if (col_bias) v += col_bias[j];
            if (res) v += res[i * ldr + j];
            ci[j] = act_scalar(v, epi);
        }
    }
}

/* ------------------------------------------------------------------ dispatch */

static const pl_sgemm_impl *impl_for(pl_isa isa) {
    const pl_sgemm_impl *im = NULL;
    if (isa >= PL_ISA_AVX512 && pl_cpu()->best >= PL_ISA_AVX512) im = pl_sgemm_impl_avx512();
    if (!im && isa >= PL_ISA_AVX2 && pl_cpu()->best >= PL_ISA_AVX2) im = pl_sgemm_impl_avx2();
    return im ? im : &ref_impl;
}

/* Blocking sizes for an implementation, from the cache sizes. */
typedef struct blocking {
    int64_t kc, nc, mc;
} blocking;

static int64_t g_force_kc, g_force_nc, g_force_mc; /* benchmarks only; 0 = default */

/* For benchmarks and tuning only (not thread-safe): overrides KC/NC/MC; 0 = default. */
void pl_sgemm_set_blocking(int64_t kc, int64_t nc, int64_t mc);
void pl_sgemm_set_blocking(int64_t kc, int64_t nc, int64_t mc) {
    g_force_kc = kc;
    g_force_nc = nc;
    g_force_mc = mc;
}

static int64_t round_down(int64_t v, int64_t m) {
    return v / m * m;
}
static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) {
    return v < lo ? lo : v > hi ? hi : v;
}

static int64_t default_kc(const pl_sgemm_impl *im) {
    if (g_force_kc > 0) return g_force_kc;
    /* The A sliver (MR x KC floats) takes about half of L1; the rest is for the B
     * stream and the C tile. */
    size_t l1 = pl_cpu()->l1d;
    return clamp64(round_down((int64_t)(l1 / 2) / (im->mr * 4), 16), 64, 512);
}

/* KC bound for an operand packed ahead of time. B weights (unswapped) of runs whose A
 * has few rows, known from the hint (BERT's MatMuls: 128 tokens), take a long KC:
 * the run is then a stream of B slivers from L2 with little A, and a long KC means fewer
 * passes over C and fewer, longer micro-kernel calls. The A sliver (14 x 768 floats)
 * then outgrows L1 and streams from L2 too, which the broadcast loads tolerate (56
 * bytes per 28 FMAs). Measured (one thread, CPU time) on 128 x {768, 3072} x
 * {768, 3072} alone: 4-5% faster than the L1-sized KC; on the whole BERT-like model
 * about 1%. */
#define LONG_KC 768
#define LONG_KC_MAX_ROWS 512

static int64_t pack_kc_max(const pl_sgemm_impl *im, bool is_b, int64_t other) {
    if (g_force_kc > 0 || !is_b || other <= 0 || other > LONG_KC_MAX_ROWS) return default_kc(im);
    int64_t kc = default_kc(im);
    return kc > LONG_KC ? kc : LONG_KC;
}

/* KC for a given K: at most the L1-derived maximum, with the K blocks made equal (K =
 * 576 runs as 3 x 192, not 256 + 256 + 64: a short last block costs a whole extra pass
 * over C for little work). A multiple of 8. */
static int64_t balanced_kc(int64_t K, int64_t kc_max) {
    if (K <= kc_max) return K > 0 ? K : 1;
    int64_t nb = (K + kc_max - 1) / kc_max;
    int64_t kc = (K + nb - 1) / nb;
    kc = (kc + 7) / 8 * 8;
    return kc < kc_max ? kc : kc_max;
}

static blocking get_blocking(const pl_sgemm_impl *im, int64_t kc) {
    blocking b;
    b.kc = kc;
    size_t l2 = pl_cpu()->l2;
    /* The B block (KC x NC) takes about half of L2. */
    b.nc = g_force_nc > 0
               ? g_force_nc
               : clamp64(round_down((int64_t)(l2 / 2) / (kc * 4), im->nr), im->nr * 2, 4096);
    b.nc = round_down(b.nc, im->nr);
    if (b.nc < im->nr) b.nc = im->nr;
    /* The A block only bounds the scratch size: slivers are pulled into L1 one at a
     * time, and a large MC means B is packed once per thread. */
    b.mc = g_force_mc > 0 ? g_force_mc : 1024;
    b.mc = round_down(b.mc, im->mr);
    if (b.mc < im->mr) b.mc = im->mr;
    return b;
}

/* ------------------------------------------------------------------ packed buffers */

#define PACK_MAGIC_A 0x41534c50u /* "PLSA" */
#define PACK_MAGIC_B 0x42534c50u /* "PLSB" */
#define PACK_HEADER 64

typedef struct pack_header {
    uint32_t magic;
    uint32_t isa;
    uint32_t tile;    /* MR (A) or NR (B); swapped: the other one */
    uint32_t swapped; /* packed for C^T = B^T A^T: A as the B-side operand, or B as A */
    int64_t rows;     /* M (A) or N (B) */
    int64_t k;
    int64_t kc;
    int64_t padded; /* rows rounded up to the tile */
    uint64_t data_offset;
} pack_header;

_Static_assert(sizeof(pack_header) <= PACK_HEADER, "pack header too big");

static size_t packed_size(int64_t rows, int64_t K, int tile) {
    if (rows < 0 || K < 0) return 0;
    int64_t padded = (rows + tile - 1) / tile * tile;
    if (padded > 0 && K > (INT64_MAX / 8) / padded) return 0;
    return PACK_HEADER + 64 + (size_t)(padded * K) * sizeof(float);
}

/* Either layout fits: rows padded to MR or to NR. */
static size_t packed_size_any(int64_t rows, int64_t K) {
    const pl_sgemm_impl *im = impl_for(pl_cpu_isa());
    size_t a = packed_size(rows, K, im->mr), b = packed_size(rows, K, im->nr);
    if (!a || !b) return 0;
    return a > b ? a : b;
}

size_t pl_sgemm_packed_a_size(int64_t M, int64_t K) {
    return packed_size_any(M, K);
}

size_t pl_sgemm_packed_b_size(int64_t K, int64_t N) {
    return packed_size_any(N, K);
}

/* Whether to compute C^T = B^T A^T: when M fills NR-wide vector tiles clearly better
 * than N does (N = 49 uses 49 of 64 lanes with NR = 32; M = 2048 uses all). */
static bool want_swap(const pl_sgemm_impl *im, int64_t M, int64_t N) {
    if (M <= 0 || N <= 0) return false;
    int64_t NR = im->nr;
    double eff_n = (double)N / (double)((N + NR - 1) / NR * NR);
    double eff_m = (double)M / (double)((M + NR - 1) / NR * NR);
    return eff_m > eff_n * 1.08;
}

static float *packed_data(const void *buf, const pack_header *h) {
    return (float *)((char *)buf + h->data_offset);
}

static pl_status pack_common(bool is_a, bool trans, int64_t rows, int64_t K, const float *X,
                             int64_t ldx, int64_t other, void *buf, size_t buf_size) {
    const char *what = is_a ? "pl_sgemm_pack_a" : "pl_sgemm_pack_b";
    if (rows < 0 || K < 0) return pl_error(PL_ERR_ARGUMENT, "%s: negative size", what);
    if (!buf || ((uintptr_t)buf & 7))
        return pl_error(PL_ERR_ARGUMENT, "%s: buffer is NULL or not 8-byte aligned", what);
    const pl_sgemm_impl *im = impl_for(pl_cpu_isa());
    bool swapped = other > 0 && (is_a ? want_swap(im, rows, other) : want_swap(im, other, rows));
    /* Which side of the kernel the operand feeds: the broadcast (MR) side, or the
     * vector (NR) side. Swapped, op(A)^T is the vector-side operand and op(B)^T the
     * broadcast one, with the stored matrix read transposed relative to op(). */
    bool mr_side = is_a != swapped;
    bool t = swapped ? !trans : trans;
    int tile = mr_side ? im->mr : im->nr;
    size_t need = packed_size_any(rows, K);
    if (need == 0) return pl_error(PL_ERR_ARGUMENT, "%s: matrix too large", what);
    if (buf_size < need)
        return pl_error(PL_ERR_ARGUMENT, "%s: buffer has %zu bytes, needs %zu", what, buf_size,
                        need);
    /* Leading dimension of the stored matrix: its rows run along K for op(A) untransposed
     * and op(B) transposed. */
    bool rows_along_k = is_a ? !trans : trans;
    int64_t min_ld = rows_along_k ? K : rows;
    int64_t nrows_stored = rows_along_k ? rows : K;
    if (nrows_stored > 1 && ldx < min_ld)
        return pl_error(PL_ERR_ARGUMENT, "%s: leading dimension %lld < %lld", what, (long long)ldx,
                        (long long)min_ld);
    if (rows > 0 && K > 0 && !X) return pl_error(PL_ERR_ARGUMENT, "%s: matrix is NULL", what);

    pack_header h;
    memset(&h, 0, sizeof h);
    h.magic = is_a ? PACK_MAGIC_A : PACK_MAGIC_B;
    h.isa = (uint32_t)im->isa;
    h.tile = (uint32_t)tile;
    h.swapped = swapped;
    h.rows = rows;
    h.k = K;
    h.kc = balanced_kc(K, pack_kc_max(im, !is_a && !swapped, other));
    h.padded = (rows + tile - 1) / tile * tile;
    uintptr_t start = (uintptr_t)buf + PACK_HEADER;
    h.data_offset = (uint64_t)(((start + 63) & ~(uintptr_t)63) - (uintptr_t)buf);
    memcpy(buf, &h, sizeof h);
    float *dst = packed_data(buf, &h);
    /* Layout: K blocks of kc; within one, slivers of `tile` rows, each kc x tile. */
    for (int64_t pc = 0; pc < K; pc += h.kc) {
        int64_t kc = K - pc < h.kc ? K - pc : h.kc;
        float *blk = dst + pc * h.padded;
        if (mr_side)
            im->pack_a(t, t ? X + pc * ldx : X + pc, ldx, rows, kc, blk);
        else
            im->pack_b(t, t ? X + pc : X + pc * ldx, ldx, rows, kc, blk);
    }
    return PL_OK;
}

pl_status pl_sgemm_pack_a(bool trans_a, int64_t M, int64_t K, const float *A, int64_t lda,
                          void *buf, size_t buf_size) {
    return pack_common(true, trans_a, M, K, A, lda, 0, buf, buf_size);
}

pl_status pl_sgemm_pack_b(bool trans_b, int64_t K, int64_t N, const float *B, int64_t ldb,
                          void *buf, size_t buf_size) {
    return pack_common(false, trans_b, N, K, B, ldb, 0, buf, buf_size);
}

pl_status pl_sgemm_pack_a_hint(bool trans_a, int64_t M, int64_t K, const float *A, int64_t lda,
                               int64_t n_hint, void *buf, size_t buf_size) {
    return pack_common(true, trans_a, M, K, A, lda, n_hint, buf, buf_size);
}

pl_status pl_sgemm_pack_b_hint(bool trans_b, int64_t K, int64_t N, const float *B, int64_t ldb,
                               int64_t m_hint, void *buf, size_t buf_size) {
    return pack_common(false, trans_b, N, K, B, ldb, m_hint, buf, buf_size);
}

static pl_status check_packed(const void *buf, bool is_a, int64_t rows, int64_t K,
                              const pack_header **out) {
    const char *what = is_a ? "packed A" : "packed B";
    if ((uintptr_t)buf & 7) return pl_error(PL_ERR_ARGUMENT, "sgemm: %s is misaligned", what);
    const pack_header *h = buf;
    if (h->magic != (is_a ? PACK_MAGIC_A : PACK_MAGIC_B))
        return pl_error(PL_ERR_ARGUMENT, "sgemm: %s is not a packed %s buffer", what,
                        is_a ? "A" : "B");
    if (h->rows != rows || h->k != K)
        return pl_error(PL_ERR_ARGUMENT, "sgemm: %s holds %lld x %lld, the call needs %lld x %lld",
                        what, (long long)(is_a ? h->rows : h->k),
                        (long long)(is_a ? h->k : h->rows), (long long)(is_a ? rows : K),
                        (long long)(is_a ? K : rows));
    if (h->isa > (uint32_t)pl_cpu()->best)
        return pl_error(PL_ERR_ARGUMENT, "sgemm: %s was packed for %s, which this CPU lacks", what,
                        pl_isa_name((pl_isa)h->isa));
    *out = h;
    return PL_OK;
}

/* ------------------------------------------------------------------ scratch memory */

/* Each thread keeps one grow-only scratch buffer for packing, freed when the thread
 * exits; pool workers live as long as their pool, so steady-state calls allocate
 * nothing. */
typedef struct scratch {
    float *p;
    size_t cap; /* floats */
} scratch;

static pthread_key_t g_scratch_key;
static pthread_once_t g_scratch_once = PTHREAD_ONCE_INIT;
static bool g_scratch_key_ok;
static _Thread_local scratch *tl_scratch; /* mirror: fast access, and a root for LSan */

static void scratch_free(void *v) {
    scratch *s = v;
    if (!s) return;
    free(s[0].p);
    free(s[1].p);
    free(s);
}

static void scratch_key_init(void) {
    g_scratch_key_ok = pthread_key_create(&g_scratch_key, scratch_free) == 0;
}

/* Slot 0: a task's packing blocks; slot 1: op(A) packed whole for every task of one
 * call to share (held by the calling thread while the call runs). */
static float *scratch_get(int slot, size_t nfloats) {
    scratch *s = tl_scratch;
    if (!s) {
        pthread_once(&g_scratch_once, scratch_key_init);
        if (!g_scratch_key_ok) return NULL;
        s = calloc(2, sizeof *s);
        if (!s) return NULL;
        if (pthread_setspecific(g_scratch_key, s)) {
            free(s);
            return NULL;
        }
        tl_scratch = s;
    }
    s += slot;
    if (s->cap < nfloats) {
        size_t bytes = (nfloats * sizeof(float) + 63) & ~(size_t)63;
        float *p = aligned_alloc(64, bytes);
        if (!p) return NULL;
        free(s->p);
        s->p = p;
        s->cap = bytes / sizeof(float);
    }
    return s->p;
}

/* ------------------------------------------------------------------ the driver */

/* One GEMM in kernel terms. M/N/A/B here are the kernel's sides: M along the broadcast
 * (MR) side, N along the vector (NR) side. Normally they are the caller's; when `ct` is
 * set the engine computes C^T = op(B)^T op(A)^T, so M/N and A/B are the caller's N/M and
 * B/A, and the kernels store their tiles transposed. */
typedef struct job {
    const pl_sgemm_impl *im;
    blocking bk;
    int64_t M, N, K;
    float alpha, beta;
    const float *A, *B;
    int64_t lda, ldb;
    bool ta, tb;
    const float *pa, *pb; /* pre-packed data, or NULL */
    int64_t pa_pad, pb_pad;
    bool direct_b; /* the kernel reads B in place (untransposed, little reuse) */
    /* B of the caller given as a row callback: it feeds the B side normally, the A side
     * when ct (op(B)^T rows are then A's columns). */
    pl_sgemm_b_rows_fn rows_fn;
    void *rows_ctx;
    bool ct; /* C is written transposed (tile (i, j) at C[j*ldc + i]) */
    float *C;
    int64_t ldc;
    const pl_sgemm_epilogue *epi; /* NULL when there is nothing to do */
    int tm, tn;                   /* thread grid */
    int64_t mu, nu;               /* slivers along M and N */
    atomic_int failed;
} job;

static void tile_epilogue(const job *j, int64_t row, int64_t col, int mr, int nr) {
    const pl_sgemm_epilogue *e = j->epi;
    /* In the caller's terms the tile starts at (cr, cc) and has rows x cols. */
    int64_t cr = j->ct ? col : row, cc = j->ct ? row : col;
    int64_t rows = j->ct ? nr : mr, cols = j->ct ? mr : nr;
    j->im->epilogue(j->C + cr * j->ldc + cc, j->ldc, rows, cols,
                    e->row_bias ? e->row_bias + cr : NULL, e->col_bias ? e->col_bias + cc : NULL,
                    e->residual ? e->residual + cr * e->ld_residual + cc : NULL, e->ld_residual, e);
}

/* Packs kc callback rows (k = k0..), each covering n values from n0, into slivers of
 * `tile` (MR or NR) values: row k's values [t*tile, (t+1)*tile) go to
 * dst + t*kc*tile + k*tile, zero-padded. `row` is scratch for one row. */
static void pack_rows(const job *j, int64_t k0, int64_t kc, int64_t n0, int64_t n, int tile,
                      float *row, float *dst) {
    int64_t nt = (n + tile - 1) / tile;
    for (int64_t k = 0; k < kc; k++) {
        j->rows_fn(j->rows_ctx, k0 + k, n0, n, row);
        int64_t full = n / tile;
        float *d = dst + k * tile;
        const float *src = row;
        /* Constant-size copies for the usual tiles, so they compile to vector moves. */
        if (tile == 32)
            for (int64_t t = 0; t < full; t++) memcpy(d + t * kc * 32, src + t * 32, 32 * 4);
        else if (tile == 16)
            for (int64_t t = 0; t < full; t++) memcpy(d + t * kc * 16, src + t * 16, 16 * 4);
        else if (tile == 14)
            for (int64_t t = 0; t < full; t++) memcpy(d + t * kc * 14, src + t * 14, 14 * 4);
        else
            for (int64_t t = 0; t < full; t++)
                memcpy(d + t * kc * tile, src + t * tile, (size_t)tile * 4);
        if (full < nt) {
            float *dl = d + full * kc * tile;
            int64_t w = n - full * tile;
            for (int64_t x = 0; x < tile; x++) dl[x] = x < w ? src[full * tile + x] : 0.0f;
        }
    }
}

static void run_block(job *j, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
    const pl_sgemm_impl *im = j->im;
    const int MR = im->mr, NR = im->nr;
    const int64_t KC = j->bk.kc, NC = j->bk.nc, MC = j->bk.mc, K = j->K;
    const pl_sgemm_ukernel(*uks)[2] = j->ct ? im->ukernel_t : im->ukernel;

    /* Row blocks of equal size (a multiple of MR, at most MC + MR - 1): no thin last
     * block that would repack all of B for a few rows. */
    int64_t nblk = (m1 - m0 + MC - 1) / MC;
    int64_t mstep = ((m1 - m0 + nblk - 1) / nblk + MR - 1) / MR * MR;
    size_t need_a = j->pa ? 0 : ((size_t)(mstep * KC) + 15) / 16 * 16; /* B stays 64-aligned */
    size_t need_b = (j->pb || j->direct_b) ? 0 : (size_t)(NC * KC);
    size_t need_row = j->rows_fn ? (size_t)((mstep > NC ? mstep : NC) + 16) : 0;
    float *ws = NULL;
    if (need_a + need_b + need_row > 0) {
        ws = scratch_get(0, need_a + need_b + need_row);
        if (!ws) {
            atomic_store(&j->failed, 1);
            return;
        }
    }
    float *ws_a = ws, *ws_b = ws ? ws + need_a : NULL;
    float *ws_row = ws ? ws + need_a + need_b : NULL;

    for (int64_t ic = m0; ic < m1; ic += mstep) {
        int64_t mc = m1 - ic < mstep ? m1 - ic : mstep;
        for (int64_t pc = 0; pc < K; pc += KC) {
            int64_t kc = K - pc < KC ? K - pc : KC;
            float beta = pc == 0 ? j->beta : 1.0f;
            bool last = pc + kc == K;
            const float *ablk;
            if (j->pa) {
                ablk = j->pa + pc * j->pa_pad + (ic / MR) * kc * MR;
            } else if (j->rows_fn && j->ct) {
                pack_rows(j, pc, kc, ic, mc, MR, ws_row, ws_a);
                ablk = ws_a;
            } else {
                im->pack_a(j->ta, j->ta ? j->A + pc * j->lda + ic : j->A + ic * j->lda + pc, j->lda,
                           mc, kc, ws_a);
                ablk = ws_a;
            }
            for (int64_t jc = n0; jc < n1; jc += NC) {
                int64_t nc = n1 - jc < NC ? n1 - jc : NC;
                const float *bblk;
                int64_t bstride, bld; /* sliver-to-sliver step, row step */
                /* Pack B inside the first row of tiles when a fused kernel exists. */
                bool fuse = false;
                if (j->pb) {
                    bblk = j->pb + pc * j->pb_pad + (jc / NR) * kc * NR;
                    bstride = kc * NR;
                    bld = NR;
                } else if (j->direct_b) {
                    bblk = j->B + pc * j->ldb + jc;
                    bstride = NR;
                    bld = j->ldb;
                } else if (j->rows_fn && !j->ct) {
                    pack_rows(j, pc, kc, jc, nc, NR, ws_row, ws_b);
                    bblk = ws_b;
                    bstride = kc * NR;
                    bld = NR;
                } else {
                    fuse = !j->tb && mc >= MR && im->ukernel_pack[1][j->ct];
                    if (!fuse)
                        im->pack_b(j->tb, j->tb ? j->B + jc * j->ldb + pc : j->B + pc * j->ldb + jc,
                                   j->ldb, nc, kc, ws_b);
                    bblk = ws_b;
                    bstride = kc * NR;
                    bld = NR;
                }
                for (int64_t r = 0; r < mc; r += MR) {
                    int mr = (int)(mc - r < MR ? mc - r : MR);
                    const float *asl = ablk + (r / MR) * kc * MR;
                    int64_t row = ic + r;
                    for (int64_t c = 0; c < nc; c += NR) {
                        int nr = (int)(nc - c < NR ? nc - c : NR);
                        int64_t col = jc + c;
                        float *ct = j->ct ? j->C + col * j->ldc + row : j->C + row * j->ldc + col;
                        if (fuse && r == 0)
                            im->ukernel_pack[nr > NR / 2][j->ct](kc, asl, j->B + pc * j->ldb + col,
                                                                 j->ldb, ws_b + (c / NR) * kc * NR,
                                                                 ct, j->ldc, nr, j->alpha, beta);
                        else
                            uks[mr - 1][nr > NR / 2](kc, asl, bblk + (c / NR) * bstride, bld, ct,
                                                     j->ldc, nr, j->alpha, beta);
                        if (last && j->epi) tile_epilogue(j, row, col, mr, nr);
                    }
                }
            }
        }
    }
}

static void task_fn(void *ctx, int task, int thread) {
    (void)thread;
    job *j = ctx;
    int ti = task / j->tn, tj = task % j->tn;
    const int MR = j->im->mr, NR = j->im->nr;
    int64_t s0 = j->mu * ti / j->tm, s1 = j->mu * (ti + 1) / j->tm;
    int64_t t0 = j->nu * tj / j->tn, t1 = j->nu * (tj + 1) / j->tn;
    int64_t m0 = s0 * MR, m1 = s1 * MR < j->M ? s1 * MR : j->M;
    int64_t n0 = t0 * NR, n1 = t1 * NR < j->N ? t1 * NR : j->N;
    if (m0 >= m1 || n0 >= n1) return;
    run_block(j, m0, m1, n0, n1);
}

/* Picks the tm x tn task grid for `nt` threads. The cost of a grid is the work of the
 * busiest thread, in multiply-adds: ceil(tasks / nt) tasks, each its tile area times K
 * plus the packing it does (about 8 MACs per packed element; a task packs A for its
 * rows and B for its columns). Grids of 2 or 4 tasks per thread are taken when they cost
 * at most 3% more: tasks are handed out dynamically, so a thread that the OS delays
 * (a busy machine) leaves its remaining tasks to the others. */
static double grid_cost(const job *j, int nt, int tm, int tn) {
    int64_t MR = j->im->mr, NR = j->im->nr;
    double rows = (double)((j->mu + tm - 1) / tm * MR);
    double cols = (double)((j->nu + tn - 1) / tn * NR);
    if (rows > j->M) rows = (double)j->M;
    if (cols > j->N) cols = (double)j->N;
    double task = rows * cols * (double)j->K;
    if (!j->pa) task += 8.0 * rows * (double)j->K;
    if (!j->pb) task += 8.0 * cols * (double)j->K;
    int per_thread = (tm * tn + nt - 1) / nt;
    return task * per_thread;
}

static void choose_grid(job *j, int nt) {
    double limit = -1;
    j->tm = j->tn = 1;
    for (int pass = 0; pass < 2; pass++) {
        double best = -1;
        for (int f = 1; f <= (pass ? 4 : 1); f *= 2) {
            int T = nt * f;
            for (int tm = 1; tm <= T; tm++) {
                int tn = T / tm;
                if (T % tm || tm > j->mu || tn > j->nu) continue;
                double cost = grid_cost(j, nt, tm, tn);
                if (pass == 0) {
                    if (best < 0 || cost < best) best = cost, j->tm = tm, j->tn = tn;
                } else if (cost <= limit * 1.03 &&
                           (tm * tn > j->tm * j->tn || (tm * tn == j->tm * j->tn && cost < best))) {
                    best = cost, j->tm = tm, j->tn = tn;
                }
            }
        }
        if (pass == 0) {
            if (best < 0) return; /* no grid fits: one task */
            limit = best;
        }
    }
}

/* Shared packing of A. When the grid splits N (tn > 1), every task of a row block
 * would pack the same rows of A again (BERT's 128-token MatMuls: 4-8 tasks over N, each
 * repacking the whole 128 x K activation). Instead the pool first packs A once, in the
 * layout of a pre-packed A (K blocks of kc, MR-row slivers), and the tasks then read
 * it like packed weights. Bounded in size: a large A is better packed block by block,
 * while it is hot. */
#define SHARE_A_MAX_FLOATS (1024.0 * 1024.0)

typedef struct share_job {
    const job *j;
    float *dst;
    int64_t nkb, groups;
} share_job;

static void share_task(void *ctx, int task, int thread) {
    (void)thread;
    const share_job *sj = ctx;
    const job *j = sj->j;
    const int64_t MR = j->im->mr, KC = j->bk.kc;
    int64_t kb = task / sj->groups, g = task % sj->groups;
    int64_t s0 = j->mu * g / sj->groups, s1 = j->mu * (g + 1) / sj->groups;
    int64_t r0 = s0 * MR, r1 = s1 * MR < j->M ? s1 * MR : j->M;
    int64_t pc = kb * KC, kc = j->K - pc < KC ? j->K - pc : KC;
    if (r0 >= r1) return;
    float *blk = sj->dst + pc * j->mu * MR + s0 * kc * MR;
    const float *src = j->ta ? j->A + pc * j->lda + r0 : j->A + r0 * j->lda + pc;
    j->im->pack_a(j->ta, src, j->lda, r1 - r0, kc, blk);
}

static void share_pack_a(job *j, pl_threadpool *pool, int nt, float *dst) {
    share_job sj = {.j = j, .dst = dst};
    sj.nkb = (j->K + j->bk.kc - 1) / j->bk.kc;
    sj.groups = (2 * nt + sj.nkb - 1) / sj.nkb;
    if (sj.groups > j->mu) sj.groups = j->mu;
    pl_threadpool_run(pool, share_task, &sj, (int)(sj.nkb * sj.groups));
    j->pa = dst;
    j->pa_pad = j->mu * j->im->mr;
}

static bool epi_active(const pl_sgemm_epilogue *e) {
    return e && (e->row_bias || e->col_bias || e->residual || e->act != PL_SGEMM_ACT_NONE);
}

void pl_sgemm_apply_epilogue(float *C, int64_t ldc, int64_t M, int64_t N,
                             const pl_sgemm_epilogue *epi) {
    if (!epi_active(epi) || M <= 0 || N <= 0) return;
    const pl_sgemm_impl *im = impl_for(pl_cpu_isa());
    im->epilogue(C, ldc, M, N, epi->row_bias, epi->col_bias, epi->residual, epi->ld_residual, epi);
}

pl_status pl_sgemm_run(const pl_sgemm_args *a) {
    if (!a) return pl_error(PL_ERR_ARGUMENT, "sgemm: args is NULL");
    int64_t M = a->M, N = a->N, K = a->K;
    if (M < 0 || N < 0 || K < 0)
        return pl_error(PL_ERR_ARGUMENT, "sgemm: negative size %lld x %lld x %lld", (long long)M,
                        (long long)N, (long long)K);
    if (M == 0 || N == 0) return PL_OK;
    if (!a->C) return pl_error(PL_ERR_ARGUMENT, "sgemm: C is NULL");
    if (M > 1 && a->ldc < N)
        return pl_error(PL_ERR_ARGUMENT, "sgemm: ldc %lld < N %lld", (long long)a->ldc,
                        (long long)N);
    const pl_sgemm_epilogue *epi = epi_active(a->epilogue) ? a->epilogue : NULL;
    if (epi && epi->residual && M > 1 && epi->ld_residual < N)
        return pl_error(PL_ERR_ARGUMENT, "sgemm: residual row stride %lld < N %lld",
                        (long long)epi->ld_residual, (long long)N);
    if (epi && (epi->act < 0 || epi->act >= PL_SGEMM_ACT_COUNT))
        return pl_error(PL_ERR_ARGUMENT, "sgemm: unknown activation %d", (int)epi->act);

    const pack_header *ha = NULL, *hb = NULL;
    if (a->packed_a) PL_TRY(check_packed(a->packed_a, true, M, K, &ha));
    if (a->packed_b) PL_TRY(check_packed(a->packed_b, false, N, K, &hb));
    if (ha && hb && (ha->isa != hb->isa || ha->kc != hb->kc || ha->swapped != hb->swapped))
        return pl_error(PL_ERR_ARGUMENT,
                        "sgemm: packed A (%s%s) and packed B (%s%s) were packed differently",
                        pl_isa_name((pl_isa)ha->isa), ha->swapped ? ", swapped" : "",
                        pl_isa_name((pl_isa)hb->isa), hb->swapped ? ", swapped" : "");
    if (K > 0 && !ha) {
        if (!a->A) return pl_error(PL_ERR_ARGUMENT, "sgemm: A is NULL");
        int64_t need = a->trans_a ? M : K, stored = a->trans_a ? K : M;
        if (stored > 1 && a->lda < need)
            return pl_error(PL_ERR_ARGUMENT, "sgemm: lda %lld < %lld", (long long)a->lda,
                            (long long)need);
    }
    if (a->b_rows && (a->B || hb))
        return pl_error(PL_ERR_ARGUMENT, "sgemm: b_rows given together with B or packed B");
    if (K > 0 && !hb && !a->b_rows) {
        if (!a->B) return pl_error(PL_ERR_ARGUMENT, "sgemm: B is NULL");
        int64_t need = a->trans_b ? K : N, stored = a->trans_b ? N : K;
        if (stored > 1 && a->ldb < need)
            return pl_error(PL_ERR_ARGUMENT, "sgemm: ldb %lld < %lld", (long long)a->ldb,
                            (long long)need);
    }

    if (K == 0 || a->alpha == 0.0f) {
        /* No products: C = beta * C (BLAS: beta == 0 clears without reading). */
        for (int64_t m = 0; m < M; m++) {
            float *c = a->C + m * a->ldc;
            if (a->beta == 0.0f)
                memset(c, 0, (size_t)N * sizeof(float));
            else if (a->beta != 1.0f)
                for (int64_t n = 0; n < N; n++) c[n] *= a->beta;
        }
        if (epi) pl_sgemm_apply_epilogue(a->C, a->ldc, M, N, epi);
        return PL_OK;
    }

    job j;
    memset(&j, 0, sizeof j);
    pl_isa isa = ha ? (pl_isa)ha->isa : hb ? (pl_isa)hb->isa : pl_cpu_isa();
    j.im = impl_for(isa);
    const pack_header *hp = ha ? ha : hb;
    j.ct = hp ? hp->swapped != 0 : want_swap(j.im, M, N);
    /* Packed buffers name their tile: MR if they feed the broadcast side, else NR. */
    if ((ha && (int)ha->tile != (j.ct ? j.im->nr : j.im->mr)) ||
        (hb && (int)hb->tile != (j.ct ? j.im->mr : j.im->nr)))
        return pl_error(PL_ERR_ARGUMENT, "sgemm: packed buffer tile does not match %s kernels",
                        pl_isa_name(j.im->isa));
    j.bk = get_blocking(j.im, hp ? hp->kc : balanced_kc(K, default_kc(j.im)));
    j.K = K;
    j.alpha = a->alpha;
    j.beta = a->beta;
    j.C = a->C;
    j.ldc = a->ldc;
    j.epi = epi;
    j.rows_fn = a->b_rows;
    j.rows_ctx = a->b_rows_ctx;
    if (!j.ct) {
        j.M = M, j.N = N;
        j.A = a->A, j.lda = a->lda, j.ta = a->trans_a;
        j.B = a->B, j.ldb = a->ldb, j.tb = a->trans_b;
        if (ha) j.pa = packed_data(a->packed_a, ha), j.pa_pad = ha->padded;
        if (hb) j.pb = packed_data(a->packed_b, hb), j.pb_pad = hb->padded;
    } else {
        /* C^T = op(B)^T op(A)^T: op(B)^T (N x K) is stored as B with the opposite
         * transpose flag, and likewise op(A)^T (K x M). */
        j.M = N, j.N = M;
        j.A = a->B, j.lda = a->ldb, j.ta = !a->trans_b;
        j.B = a->A, j.ldb = a->lda, j.tb = !a->trans_a;
        if (hb) j.pa = packed_data(a->packed_b, hb), j.pa_pad = hb->padded;
        if (ha) j.pb = packed_data(a->packed_a, ha), j.pb_pad = ha->padded;
    }
    j.mu = (j.M + j.im->mr - 1) / j.im->mr;
    j.nu = (j.N + j.im->nr - 1) / j.im->nr;
    atomic_init(&j.failed, 0);

    /* Threads: no more than the work can use (about 64K multiply-adds each at least). */
    int nt = pl_threadpool_size(a->pool);
    if (a->max_threads > 0 && a->max_threads < nt) nt = a->max_threads;
    double macs = (double)M * (double)N * (double)K;
    if (macs < 65536.0 * nt) nt = (int)(macs / 65536.0) > 1 ? (int)(macs / 65536.0) : 1;
    j.tm = j.tn = 1;
    float *shared_a = NULL;
    if (nt > 1 && !j.pa && j.A && !(j.rows_fn && j.ct) &&
        (double)j.mu * j.im->mr * (double)K <= SHARE_A_MAX_FLOATS) {
        /* Would several tasks share rows of A? Cost the grid as if A were packed. */
        j.pa = (const float *)&j;
        choose_grid(&j, nt);
        j.pa = NULL;
        if (j.tn > 1) shared_a = scratch_get(1, (size_t)(j.mu * j.im->mr * K));
    }
    if (shared_a) {
        share_pack_a(&j, a->pool, nt, shared_a);
    } else if (nt > 1) {
        choose_grid(&j, nt);
    }
    /* B read in place when each thread has at most two A slivers to reuse a packed copy
     * for, and the kernel can read B rows directly (untransposed). */
    int64_t rows_per = (j.mu + j.tm - 1) / j.tm;
    j.direct_b = !j.pb && !j.tb && rows_per <= 2 && !(j.rows_fn && !j.ct) && j.B;

    int ntasks = j.tm * j.tn;
    if (ntasks == 1)
        task_fn(&j, 0, 0);
    else
        pl_threadpool_run(a->pool, task_fn, &j, ntasks);
    if (atomic_load(&j.failed))
        return pl_error(PL_ERR_NOMEM, "sgemm: out of memory for packing scratch");
    return PL_OK;
}

pl_status pl_sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                   const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                   int64_t ldc, pl_threadpool *pool) {
    pl_sgemm_args a;
    memset(&a, 0, sizeof a);
    a.M = M;
    a.N = N;
    a.K = K;
    a.alpha = alpha;
    a.beta = beta;
    a.A = A;
    a.lda = lda;
    a.trans_a = trans_a;
    a.B = B;
    a.ldb = ldb;
    a.trans_b = trans_b;
    a.C = C;
    a.ldc = ldc;
    a.pool = pool;
    return pl_sgemm_run(&a);
}
