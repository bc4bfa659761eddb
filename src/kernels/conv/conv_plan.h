/* conv_plan.h -- internal: the plan of a fast convolution (conv_fast.c) and what the
 * algorithm files (conv_igemm.c, conv_winograd.c) share with it. */
#ifndef PL_KERNELS_CONV_PLAN_H
#define PL_KERNELS_CONV_PLAN_H

#include "kernels/conv/conv_fast.h"
#include "kernels/conv/conv_isa.h"
#include "kernels/gemm/sgemm.h"
#include "kernels/sparse/sparse.h"

#define CF_MAX_STRIDE 16

/* Stride-2 Winograd input transform (cf_wino2_select) of one channel for one whole
 * vector of consecutive tiles: lane l's 10x10 patch element e at src + tap_off[e] + l. */
typedef void (*cf_wino2_in_fn)(const float *src, const int64_t *tap_off, float *dst,
                               const int64_t *dst_off);
/* Stride-2 Winograd input gather: the 10x10 patches (padded rows 8 ty + r, columns
 * 8 tx + c) of tiles tx in [txa, txz) of tile row ty of the plane x (H x W, pads PT, PL;
 * zeros outside): dst[(10 r + c) * ldp + toff + tx] = xp[8 ty + r][8 tx + c]. */
typedef void (*cf_wino2_patch_fn)(const float *x, int64_t H, int64_t W, int64_t PT, int64_t PL,
                                  int64_t ty, int64_t txa, int64_t txz, float *dst, int64_t toff,
                                  int64_t ldp);
/* The same for n tile rows packed in one vector (n (TW + 1) <= 16): row k is tile row
 * ty[k] of plane x[k]; tile tx of row k is lane L = k TW + tx, written for L in [lo, hi)
 * at dst[(10 r + c) * ldp + doff + L]. */
typedef struct cf_wino2_pk cf_wino2_pk;
typedef void (*cf_wino2_prows_fn)(const float *const *x, const int64_t *ty, int n, int64_t H,
                                  int64_t W, int64_t PT, int64_t PL, int64_t TW, int64_t lo,
                                  int64_t hi, float *dst, int64_t doff, int64_t ldp,
                                  const cf_wino2_pk *pk);
/* What the packed-rows gather precomputes per plan: for input vector kv (floats
 * 16 kv .. of the rows side by side) and row k, the lanes inside the input (lm) and the
 * input column of lane 0 (lof); the permutes that pack lane k TW + tx from lane
 * k (TW + 1) + tx (ix) or + tx + 1 (ix1). */
struct cf_wino2_pk {
    int32_t ix[16], ix1[16];
    uint16_t lm[8][16];
    int64_t lof[8][16];
};

/* 2-D view of a 1-D or 2-D convolution (1-D: H = OH = KH = 1). */
typedef struct cf_geom {
    int64_t N, C, H, W, M, OH, OW, KH, KW, SH, SW, PT, PL, DH, DW, G, Cg, Mg;
} cf_geom;

/* How a channel plane is prepared so that every tap of a run of output pixels reads a
 * contiguous row: the zero-padded input split by stride phase. Phase (ry, rx) holds
 * padded rows ry, ry + SH, ... and columns rx, rx + SW, ...; a tap (ky, kx) reads phase
 * ((ky DH) % SH, (kx DW) % SW) at row oy + (ky DH) / SH and column ox + (kx DW) / SW.
 * With `none` the raw plane is read (stride 1, no padding needed). */
typedef struct cf_prep {
    bool none;
    int npy, npx;                  /* phases used along y and x */
    int ry[CF_MAX_STRIDE], rx[CF_MAX_STRIDE];
    int iy[CF_MAX_STRIDE], ix[CF_MAX_STRIDE]; /* residue -> phase index, -1 unused */
    int64_t Hph, Wph;              /* size of a phase plane (or H, W when none) */
    int64_t plane;                 /* floats per phase plane */
} cf_prep;

struct pl_conv_fast {
    pl_conv_algo algo;
    const cf_kernels *k;
    cf_geom g;
    pl_conv_act act;
    pl_sgemm_epilogue epi; /* the activation part; pointers set per call */
    bool post_act;         /* activation the sgemm epilogue lacks: applied afterwards */
    bool clamp;            /* the activation is a clamp to [lo, hi] (none, ReLU, Clip) */
    float lo, hi;
    int nthreads;          /* threads one image is planned for */
    int img_threads;       /* > 1: batches run whole images per thread (that many scratch
                            * slots of one image's single-thread scratch each) */
    float *bias;           /* M values, or NULL */
    cf_prep prep;
    size_t prep_floats;    /* shared per-image prepared input */
    size_t ws_floats;      /* per-thread workspace */

    /* SGEMM: per group, a packed A (pl_sgemm_pack_a) */
    void **packed;

    /* IGEMM and WINOGRAD GEMMs */
    float *A;              /* packed weights (64-byte aligned) */
    int nsl;               /* row slivers per group */
    int64_t *sl_row;
    int *sl_rows;
    int nkb;               /* K blocks */
    int64_t *kb_start, *kb_len;
    int64_t K;
    int64_t *koff;         /* K: offset of row k in the group's prepared input */
    int64_t Np, ldg;       /* columns (output pixels) and the prepared grid's row pitch */
    bool transposed;       /* IGEMM computes C^T: pixels are rows (slivers sl_*), output
                            * channels NR-wide columns (ncs per group); small planes */
    int ncs;
    int force_t;           /* tests: -1 choose, 0 / 1 force the orientation */
    bool direct_k;         /* few taps (K small): cf_kernels.direct_run over output rows,
                            * weights in A as [K][ldk] (conv_igemm.c) */
    int64_t ldk;
    bool direct_b;         /* 1x1 on the raw input with few row slivers: the micro-kernel
                            * reads B in place (row k at k * H*W) instead of a packed copy */
    int64_t nc;            /* columns per block */
    int tm, tn;            /* thread grid per group */
    int64_t rows_task;     /* most output rows one task owns */
    bool t_shared;         /* IGEMM_T with threads: the pixel slivers are packed once per
                            * image (a parallel pass) into the shared region, then tasks
                            * of pixel x channel slivers multiply */
    size_t shared_floats;  /* shared per-image region between the prepared input and the
                            * thread workspaces (pl_conv_fast_run lays scratch out as
                            * [prepared][shared][thread 0 ws][thread 1 ws]...) */

    /* DEPTHWISE */
    int ntaps;
    int64_t *tap_off;
    float *wdw;
    bool dw_direct;        /* no preparation: cf_kernels.dw_direct with dwg */
    cf_dw_geom dwg;        /* zero_row, lo, hi set per run */
    int64_t *dw_ix0;
    uint32_t *dw_mask;

    /* WINOGRAD (conv_winograd.c): F(4x4, 3x3) tiles; the prepared input is split in 4x4
     * phases (geometry wg) so that a patch element of consecutive tiles is contiguous */
    cf_geom wg;
    int64_t TH, TW, tb;    /* tiles down and across; tiles per block */
    int64_t nblocks, ldv;  /* tile blocks; row stride of transformed tiles (whole vectors) */
    int64_t wtap[100];     /* patch element (i, j) offset in the prepared planes (6x6 patch;
                            * stride 2: 10x10) */
    /* Stride 2 (polyphase, conv_winograd_s2.c): the four input phases (even/odd rows x
     * columns) are stride-1 convolutions with 2x2, 2x1, 1x2 and 1x1 kernels, each by
     * F(4x4, 2x2) over the same 5x5 positions; a 1-tap direction has a zero product at
     * the point at infinity, so position xi sums wkq[xi] = 4, 2 or 1 phases: one GEMM of
     * K = wkq[xi] C. Stride 1: 36 positions of K = C. */
    int wpos;              /* positions: 36 (stride 1) or 25 (stride 2) */
    int wrow;              /* prepared rows per tile row: 4 or 8 */
    int wkq[36];           /* K of position xi in units of C */
    int64_t wvrow[36];     /* first slot (C rows, wss floats apart) of position xi in a
                            * transformed block */
    int64_t wapos[36];     /* offset of position xi's packed weights in A */
    int64_t wslots;        /* slots of a transformed block (36 or 81) */
    int64_t wss, wms;      /* floats between slots; between positions' products (M rows) */
    int64_t wvo[81];       /* stride 2: offset of (phase, position) e in a transformed block */
    cf_wino_out wout;      /* the output transform (k->wino_out, or the 5x5 one) */
    cf_wino2_in_fn win2;   /* stride 2 input transform */
    cf_wino2_prows_fn wprows; /* stride 2, TW < 16: packed tile rows */
    cf_wino2_pk wpk;
    cf_wino2_patch_fn wpatch; /* stride 2: the patches are gathered per channel and tile
                            * block by the in-transform pass into a thread's workspace
                            * (10x10 elements, ldv apart); f->prep is then a plain copy of
                            * the raw planes (batched groups) or nothing */
    int mparts;            /* row-sliver parts per tile block (tasks = blocks x parts) */
    bool wino_shared;      /* input transformed in a first parallel pass (threads) */
    int chunk_sl;          /* row slivers per GEMM/output-transform pass */
    bool wino_xi;          /* few blocks (small planes) with threads: the GEMMs run as
                            * tasks over (block, xi) into products for the whole plane
                            * (shared region), then the output transform over rows */
    int wino_batch;        /* > 1: images run in groups of up to this many, their tiles as
                            * one tile set (cf_wino_batch): each transformed weight sliver
                            * serves the tiles of all of them (small planes at batch > 1) */
    int64_t img_prep;      /* floats of one image's prepared input (wino_batch) */
    bool wino_plane;       /* one image runs like a batched group of 1 (all tiles as one
                            * tile set, each weight sliver read once per image) */

    /* SPARSE (conv_sparse.c): per group, the Mg x K weights (K ordered (c, tap)) as a
     * sparse matrix times the prepared planes (B row k at koff[k]); columns are
     * positions in the prepared grid (row pitch ldg), tiled, output channels split in
     * mparts ranges of equal nonzeros (sp_mstart, G x (mparts + 1)) */
    pl_sparse_w **sw;
    int64_t *sp_mstart;
    int sp_mparts, sp_ntiles;
    int64_t sp_ng, sp_tile; /* grid columns per plane; columns per tile */
    bool sp_flat;           /* grid == output layout (ldg == OW): results go straight to y */
};

/* Applies bias (row_bias[i], may be NULL), residual (res[i*ldr + j], may be NULL) and
 * the activation to an mr x nr block. */
void cf_epilogue(const pl_conv_fast *f, float *c, int64_t ldc, int64_t mr, int64_t nr,
                 const float *row_bias, const float *res, int64_t ldr);

/* Chooses the preparation for g (allow_none: the raw input when no padding is needed). */
void cf_prep_setup(const cf_geom *g, cf_prep *pp, bool allow_none);

/* Fills the prepared phase planes of one channel plane x (H x W) at dst, phase p at
 * dst + p * phase_stride; taps outside the input read `fill`. k (may be NULL) supplies
 * the vector de-interleaving. */
void cf_prep_plane(const cf_kernels *k, const cf_geom *g, const cf_prep *pp, const float *x,
                   float fill, float *dst, int64_t phase_stride);

/* Offset of tap (ky, kx) from an output pixel's position in the prepared planes (phase
 * planes phase_stride apart) with row pitch ldx. */
int64_t cf_tap_offset(const cf_geom *g, const cf_prep *pp, int64_t ky, int64_t kx,
                      int64_t phase_stride);

/* Splits n rows into ceil(n / mr) slivers of balanced size. */
pl_status cf_slivers(int64_t n, int mr, int *count, int64_t **start, int **rows);
/* Splits K into blocks of at most kmax, balanced. */
pl_status cf_kblocks(int64_t K, int64_t kmax, int *count, int64_t **start, int64_t **len);

/* Packs the M x K matrix W (row stride ldw) into f's A layout (slivers sl_*, K blocks
 * kb_*): K block b, sliver s at dst + kb_start[b]*nsl*MR + s*kb_len[b]*MR, kc x MR. */
void cf_pack_a(const pl_conv_fast *f, const float *W, int64_t ldw, float *dst);

/* IGEMM (conv_igemm.c). */
pl_status cf_igemm_create(pl_conv_fast *f, const float *w);
void cf_igemm_image(const pl_conv_fast *f, const float *xin, const float *res, float *y,
                    float *ws, pl_threadpool *pool);

/* WINOGRAD (conv_winograd.c). */
bool cf_wino_applies(const cf_geom *g);
pl_status cf_wino_create(pl_conv_fast *f, const float *w);
void cf_wino_image(const pl_conv_fast *f, const float *xin, const float *res, float *y, float *ws,
                   pl_threadpool *pool);
/* Batched: nimg (<= wino_batch) images prepared at xin (img_prep floats apart) into y
 * (and res) of consecutive images; ws as cf_wino_image's. */
void cf_wino_batch(const pl_conv_fast *f, const float *xin, int64_t nimg, const float *res,
                   float *y, float *ws, pl_threadpool *pool);
/* Images per group for batched Winograd of g (1: image by image). */
int cf_wino_batch_size(const cf_geom *g);

/* Stride-2 Winograd (conv_winograd_s2.c): U (25 x 4 phases, zero where a phase has no
 * product) of one 3x3 kernel; the transforms for kernel level k (plain C or
 * conv_winograd_s2_avx512.c). The input transform writes the 81 (phase, position)
 * values of one channel for a whole vector of tiles (the gathered patches hold
 * consecutive tiles): element e at dst + dst_off[e] (phase ee
 * positions 0..24, then eo 20, oe 20, oo 16: positions in order, skipping the point at
 * infinity of a 1-tap direction); the output transform is A^T m A over 5x5 positions. */
void cf_wino2_kernel(const float *w, double u[4][25]);
void cf_wino2_pk_setup(cf_wino2_pk *pk, int64_t W, int64_t PL, int64_t TW);
void cf_wino2_select(const cf_kernels *k, cf_wino2_in_fn *in, cf_wino_out *out,
                     cf_wino2_patch_fn *patch, cf_wino2_prows_fn *prows);
/* AVX-512 transforms (NULL when built without AVX-512). */
cf_wino2_in_fn cf_wino2_in_avx512(void);
cf_wino_out cf_wino2_out_avx512(void);
cf_wino2_patch_fn cf_wino2_patch_avx512(void);
cf_wino2_prows_fn cf_wino2_prows_avx512(void);

/* SPARSE (conv_sparse.c). */
pl_status cf_sparse_create(pl_conv_fast *f, const float *w);
void cf_sparse_image(const pl_conv_fast *f, const float *xin, const float *res, float *y, float *ws,
                     pl_threadpool *pool);
void cf_sparse_destroy(pl_conv_fast *f);
/* Estimated seconds of one image at one thread, sparse (the packed weights) or dense
 * (the MACs at the measured rate of the dense algorithm), for the automatic choice. */
double cf_sparse_cost(const cf_geom *g, int64_t nnz, pl_isa isa);
double cf_dense_cost(const cf_geom *g, pl_conv_algo algo, pl_isa isa);

/* Aligned allocations the plan owns (64 bytes). */
void *cf_alloc(size_t bytes);

#endif
