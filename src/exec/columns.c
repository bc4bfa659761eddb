/* columns.c -- the column schedule: chain finding, the traffic/time estimate that
 * decides between layers and columns, band planning, and running a chain tile by tile.
 * See columns.h and docs/DESIGN.md "Columns". */
#include "exec/columns.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/cpu.h"
#include "core/threadpool.h"
#include "kernels/conv/conv_fast.h"
#include "kernels/sparse/sparse.h"
#include "ops/conv_band.h"

#define COL_MAX_NODES 16 /* layers in one chain */
#define MIN_INC_PX 192   /* output pixels of the smallest kept-halo kernel call */
#define PENDING_BYTES (16.0 * 1024 * 1024) /* raw weights held for chain decisions */
/* AUTO runs a chain as columns only when its estimate is this much faster: the model
 * is rough, and a wrong choice for columns costs more than a missed one */
#define AUTO_MARGIN 0.85
/* ... except chains whose buffers live in L3 (images too wide for an L2 band): there
 * the model is pessimistic (measured on ResNet-50 90% at 1024x1024: every such chain
 * as columns beat the model's pick in 4 of 4 runs), so AUTO takes them up to 15%
 * estimated slower */
#define AUTO_MARGIN_L3 1.15
/* ... and chains of one band per image (no halos, no copies, whole planes per kernel
 * call): measured never slower than layers when estimated faster (MobileNetV2 and
 * ResNet-50 90% at batch 16: 1.01-1.45x), so no margin */
#define AUTO_MARGIN_WHOLE 1.0
/* ... and pruned chains in L2 bands with an image per thread or more (batch >= threads):
 * the model is pessimistic there too (measured: ResNet-50 90% b16's 56x56 bottlenecks,
 * estimated 7% slower as columns, ran 0.99-1.03x of layers in one-thread CPU time, and
 * the COLUMNS schedule, which runs them, was 4.4% faster than AUTO, which did not) */
#define AUTO_MARGIN_SPARSE_IMG 1.10

/* Machine model of the estimate (per thread): measured on the dev machine with
 * bench/conv_bench-like runs; only the ratios between the two schedules matter. */
#define RATE_DENSE 40e9   /* MAC/s of a dense layer (Winograd 3x3: twice that) */
#define RATE_BAND 30e9    /* MAC/s of a dense layer over a band of rows */
#define RATE_SPARSE 20e9  /* nonzero-weight MAC/s of a sparse layer */
#define BW_STREAM 8e9     /* bytes/s one thread moves to and from memory */
#define BW_L3 30e9        /* bytes/s one thread moves to and from L3 */

typedef struct col_node {
    int step;
    pl_conv_band_info ci;
    int64_t C, H, W, M, OH, OW, KH, SH, PT, DH;
    int src;       /* producer of input 0: a chain node, or -1 for the chain input */
    int rsrc;      /* producer of the residual: a node, -1 the chain input, -2 none */
    int64_t S;     /* output rows of this node per output row of the chain */
    int64_t lo, R; /* its rows for a tile starting at chain row a: a*S + lo .. + R */
    int64_t Rin;   /* input rows of its band */
    bool in_direct, res_direct; /* reads the producer's buffer as it is */
    size_t out_off, in_off, res_off; /* floats into the thread's buffer */
    /* kept halos: after the first band of a segment, a node whose window overlaps the
     * previous band's (inc) keeps those rows and computes only its Rn = T*S new ones
     * (Rin_n input rows) into tmp, through its second band plan */
    bool inc;
    int64_t Rn, Rin_n;
    size_t tmp_off, inc_in_off, inc_res_off;
    pl_conv_fast *band_inc;
    double macs_row;  /* nonzero-weight MACs per output row */
    double rate;      /* MAC/s layer by layer (dense or sparse) */
    double band_rate; /* MAC/s over a band */
    double whole_rate; /* MAC/s over one whole image (a Winograd layer loses it) */
    double wbytes;    /* packed weights */
    int64_t call_px;  /* most output pixels of one sparse kernel call (else unlimited) */
    pl_conv_fast *band;
    /* pruned 1x1 stride-1 layers: their own packed weights, run with channel strides
     * straight from the producer's rows (or the chain input) into the consumer's
     * buffer (or the output) -- no input, residual, new-row or output copies */
    pl_sparse_w *sp1;
    pl_sgemm_epilogue sp1_epi;
    float *sp1_bias; /* its own copy of the bias (no band plan holds one) */
    bool sp1_ok; /* will take that path in a banded chain (the layout leaves out its copies) */
} col_node;

typedef struct col_chain {
    int first, last, n; /* steps first..last, n nodes */
    int threads;        /* the session's pool */
    col_node nodes[COL_MAX_NODES];
    int in_value, out_value;
    int64_t N, C, H, W, M, OH, OW;
    int64_t T, nb;          /* tile rows, bands per image */
    int64_t segs;           /* segments per image: runs of consecutive bands one thread walks */
    bool whole;             /* T = OH: one band per image, layers with their own padding */
    bool keep;              /* kept halos allowed (else every band recomputes them) */
    bool par;               /* whole images, fewer than the threads: each layer of an
                               image runs on all threads (no thread idles) */
    size_t ws_floats;       /* per-thread band buffers */
    size_t kscratch;        /* per-thread kernel scratch bytes */
    double bytes_layers, bytes_cols, t_layers, t_cols;
    double mem_layers;      /* bytes layer by layer moves to and from memory */
    double max_tensor;      /* bytes of the largest tensor it reads or writes (one image) */
    int tier;               /* 0: buffers sized to L2, 1: to a share of L3 */
    bool wide;              /* even a band of one row does not fit the L2 budget */
    bool used;
    char reason[96];
} col_chain;

typedef struct col_machine {
    double l2, l3;
    int threads;
} col_machine;

typedef struct pl_columns {
    int nchains;
    col_chain *chains;
    int nthreads;
    size_t slot_bytes; /* per-thread scratch */
    uint8_t *scratch;
    char *report;
    /* planning state (pl_columns_begin .. pl_columns_finish) */
    int req;           /* the schedule requested */
    bool off;          /* no chains in this graph (subgraph, control flow) */
    int cursor;        /* steps before it are decided */
    int *uses;         /* count_uses() */
    col_chain *cand, *best;
    col_machine mc;
    size_t slot;       /* largest per-thread need so far */
} pl_columns;

static int forced_rows = -1;

void pl_columns_force_rows(int rows) { forced_rows = rows; }

static int forced_keep = -1;

void pl_columns_force_keep(int keep) { forced_keep = keep; }

/* forced_keep, else PILLAR_COLUMN_KEEP (0 or 1; for measurements), else -1 */
static int keep_override(void) {
    if (forced_keep >= 0) return forced_keep;
    const char *e = getenv("PILLAR_COLUMN_KEEP");
    return e && *e ? atoi(e) != 0 : -1;
}

static int64_t rows_override(void) {
    if (forced_rows >= 0) return forced_rows;
    const char *e = getenv("PILLAR_COLUMN_ROWS");
    return e && *e ? atoll(e) : 0;
}

static size_t up16(size_t n) { return (n + 15) & ~(size_t)15; }
static size_t round64(size_t n) { return (n + 63) & ~(size_t)63; }

/* ------------------------------------------------------------------ chain finding */

/* Node k of a candidate chain from step `st`; false if the step cannot be in a chain. */
static bool fill_node(pl_session *s, int st, col_node *nd) {
    const pl_step *sp = &s->steps[st];
    if (sp->dynamic) return false;
    const pl_node *n = &s->g->nodes[sp->node];
    memset(nd, 0, sizeof *nd);
    if (!pl_conv_band_info_of(n, sp->in, sp->state, &nd->ci)) return false;
    if (n->nout != 1 || n->out[0] < 0) return false;
    const pl_conv_params *p = &nd->ci.p;
    nd->step = st;
    nd->C = p->in_channels;
    nd->H = p->in_size[0];
    nd->W = p->in_size[1];
    nd->M = p->out_channels;
    nd->OH = p->out_size[0];
    nd->OW = p->out_size[1];
    nd->KH = p->kernel[0];
    nd->SH = p->stride[0];
    nd->PT = p->pad_begin[0];
    nd->DH = p->dilation[0];
    const double params = (double)nd->M * (double)(nd->C / p->group) * (double)p->kernel[0] * (double)p->kernel[1];
    const double zeros = s->step_params[st] ? (double)s->step_zeros[st] / (double)s->step_params[st] : 0.0;
    const double nnz = params * (1.0 - zeros);
    const bool sparse = zeros > 0.5;
    nd->macs_row = (double)nd->OW * nnz;
    const bool wino = p->kernel[0] == 3 && p->kernel[1] == 3 && p->stride[0] == 1 && p->stride[1] == 1 &&
                      p->dilation[0] == 1 && p->dilation[1] == 1 && p->group == 1 && nd->C >= 16;
    nd->rate = sparse ? RATE_SPARSE : wino ? 2 * RATE_DENSE : RATE_DENSE;
    nd->band_rate = sparse ? RATE_SPARSE : RATE_BAND;
    /* measured (dense MobileNetV2 b16, one image per call): 1x1 and depthwise layers
     * run as fast as layer by layer; ResNet-50's Winograd 3x3 layers do not */
    nd->whole_rate = sparse ? RATE_SPARSE : wino ? RATE_BAND : RATE_DENSE;
    nd->wbytes = sparse ? nnz * 6.0 : params * 4.0;
    /* the sparse convolution runs its plane in column tiles whose input rows fit half
     * an L2: layer by layer a 128x128 plane of 512 channels goes in calls of 256
     * pixels, as small as a 2-row band's. The layer plan's own tile (conv_sparse.c) */
    nd->call_px = nd->ci.call_px > 0 ? nd->ci.call_px : INT64_MAX;
    nd->sp1_ok = nd->ci.algo == PL_CONV_ALGO_SPARSE && nd->ci.act_direct && p->kernel[0] == 1 && p->kernel[1] == 1 &&
                 p->stride[0] == 1 && p->stride[1] == 1 && !p->pad_begin[0] && !p->pad_begin[1] &&
                 p->out_size[0] == p->in_size[0] && p->out_size[1] == p->in_size[1] && p->group == 1;
    return true;
}

/* Window of node p grown to cover rows [a, b) at S rows per chain row. */
static bool hull(col_node *p, int64_t a, int64_t b, int64_t S) {
    if (p->S && p->S != S) return false;
    p->S = S;
    if (p->R == 0) {
        p->lo = a;
        p->R = b - a;
    } else {
        int64_t hi = p->lo + p->R > b ? p->lo + p->R : b;
        if (a < p->lo) p->lo = a;
        p->R = hi - p->lo;
    }
    return true;
}

/* The rows every node computes for tiles of T output rows, the buffers and the
 * working set (floats). False when the windows are inconsistent. */
static bool layout(col_chain *ch, int64_t T, bool keep_ok, size_t *ws_floats, size_t *kscr_est) {
    for (int k = 0; k < ch->n; k++) ch->nodes[k].S = ch->nodes[k].lo = ch->nodes[k].R = 0;
    col_node *last = &ch->nodes[ch->n - 1];
    last->S = 1;
    last->lo = 0;
    last->R = T;
    for (int k = ch->n - 1; k >= 0; k--) {
        col_node *nd = &ch->nodes[k];
        if (!nd->S || nd->R < 1) return false;
        nd->Rin = (nd->R - 1) * nd->SH + (nd->KH - 1) * nd->DH + 1;
        const int64_t in_lo = nd->lo * nd->SH - nd->PT;
        if (nd->src >= 0 && !hull(&ch->nodes[nd->src], in_lo, in_lo + nd->Rin, nd->S * nd->SH)) return false;
        if (nd->rsrc >= 0 && !hull(&ch->nodes[nd->rsrc], nd->lo, nd->lo + nd->R, nd->S)) return false;
    }
    /* one band per image: every layer runs on its whole image with its own vertical
     * padding, reading its producers' buffers and the chain input in place, the last
     * one writing the output (no copies, no rows outside the images) */
    ch->whole = T >= ch->OH;
    ch->par = ch->whole && ch->N < ch->threads;
    for (int k = 0; ch->whole && k < ch->n; k++) {
        col_node *nd = &ch->nodes[k];
        nd->lo = 0;
        nd->R = nd->OH;
        nd->Rin = nd->H;
    }
    /* buffers of one tile, placed first-fit by their lifetime in node order: a node's
     * output lives until its last reader (for the whole segment when it keeps rows
     * from band to band), input and residual copies for its run only */
    struct {
        size_t size, off;
        int from, to;
    } b[6 * COL_MAX_NODES];
    size_t *where[6 * COL_MAX_NODES];
    int nbuf = 0;
    size_t kscr = 0;
#define BUF(sz, f, t, w) (b[nbuf].size = up16((size_t)(sz)), b[nbuf].from = (f), b[nbuf].to = (t), where[nbuf++] = (w))
    const int keep_mode = keep_override();
    for (int k = 0; k < ch->n; k++) {
        col_node *nd = &ch->nodes[k];
        const int64_t in_lo = nd->lo * nd->SH - nd->PT;
        int to = k;
        for (int j = k + 1; j < ch->n; j++)
            if (ch->nodes[j].src == k || ch->nodes[j].rsrc == k) to = j;
        nd->Rn = T * nd->S;
        /* kept halos only where the new rows make a kernel call of some size: the
         * kernels lose much more than the halo's share on calls of a few pixels
         * (measured: MobileNetV2 90% b16 as 1-row bands ran at half the speed of
         * 4-row bands with their halos recomputed) */
        nd->inc = k < ch->n - 1 && T < ch->OH && nd->R > nd->Rn &&
                  (keep_mode < 0 ? keep_ok && nd->Rn * nd->OW >= MIN_INC_PX : keep_mode > 0);
        nd->Rin_n = (nd->Rn - 1) * nd->SH + (nd->KH - 1) * nd->DH + 1;
        const bool whole = ch->whole;
        if (whole) nd->inc = false;
        /* the direct 1x1 path reads its input and residual in place, computes new rows
         * below the kept ones and writes the chain's last rows to the output: none of
         * the copies below (and no output band for the last node) */
        const bool direct = nd->sp1_ok && !whole;
        if (direct) {
            if (k < ch->n - 1) BUF(nd->M * nd->R * nd->OW, nd->inc ? 0 : k, nd->inc ? ch->n - 1 : to, &nd->out_off);
            nd->in_direct = nd->res_direct = false;
            continue;
        }
        if (!(whole && k == ch->n - 1)) BUF(nd->M * nd->R * nd->OW, nd->inc ? 0 : k, nd->inc ? ch->n - 1 : to, &nd->out_off);
        nd->in_direct = nd->src >= 0 && ((in_lo == ch->nodes[nd->src].lo && nd->Rin == ch->nodes[nd->src].R) || whole);
        nd->res_direct = nd->rsrc >= 0 && ((nd->lo == ch->nodes[nd->rsrc].lo && nd->R == ch->nodes[nd->rsrc].R) || whole);
        /* a node's first-band and new-row copies are never used in the same band: one
         * buffer each for input and residual */
        const int64_t in_n = !nd->in_direct && !whole ? nd->C * nd->Rin * nd->W : nd->inc ? nd->C * nd->Rin_n * nd->W : 0;
        const int64_t res_n = nd->rsrc != -2 && !nd->res_direct && !whole ? nd->M * nd->R * nd->OW
                              : nd->inc && nd->rsrc != -2 ? nd->M * nd->Rn * nd->OW : 0;
        if (in_n) BUF(in_n, k, k, &nd->in_off);
        if (res_n) BUF(res_n, k, k, &nd->res_off);
        if (nd->inc) BUF(nd->M * nd->Rn * nd->OW, k, k, &nd->tmp_off);
        /* padded or strided inputs are prepared (copied) by the kernel */
        const pl_conv_params *p = &nd->ci.p;
        bool prep = p->pad_begin[1] > 0 || p->stride[0] > 1 || p->stride[1] > 1 || p->kernel[0] > 1 || p->kernel[1] > 1;
        size_t ks = prep ? (size_t)(nd->C * (nd->Rin + nd->SH) * (nd->W + 2 * p->pad_begin[1] + p->stride[1])) : 0;
        if (p->group == p->in_channels && p->group > 1) ks = (size_t)nd->W + 64; /* depthwise: a zero row */
        if (ks > kscr) kscr = ks;
    }
#undef BUF
    size_t off = 0;
    for (int i = 0; i < nbuf; i++) {
        size_t at = 0;
        for (bool moved = true; moved;) { /* lowest offset clear of every overlapping buffer */
            moved = false;
            for (int j = 0; j < i; j++) {
                if (b[j].to < b[i].from || b[i].to < b[j].from) continue;
                if (at < b[j].off + b[j].size && b[j].off < at + b[i].size) {
                    at = b[j].off + b[j].size;
                    moved = true;
                }
            }
        }
        b[i].off = at;
        *where[i] = at;
        if (at + b[i].size > off) off = at + b[i].size;
    }
    for (int k = 0; k < ch->n; k++) {
        ch->nodes[k].inc_in_off = ch->nodes[k].in_off;
        ch->nodes[k].inc_res_off = ch->nodes[k].res_off;
    }
    *ws_floats = off;
    *kscr_est = kscr;
    return true;
}

/* Estimates of both schedules for the chain laid out with T rows per tile (after
 * layout()), per inference: bytes moved beyond L2 and seconds, from a simple machine
 * model (MAC rates, one streaming bandwidth; the constants above).
 *   layers:  each layer reads its input (and residual) and writes its output; a tensor
 *            larger than half an L2 costs its bytes at the streaming bandwidth; the
 *            weights once per layer (per image when larger than half an L2); a barrier
 *            per layer.
 *   columns: the rows every layer computes for every tile (halos recomputed), the
 *            chain input rows each band copies in, the output, and the chain's weights
 *            once per tile unless they fit in L2 beside the buffers; a kernel call per
 *            layer and tile; tiles spread over the threads in whole rounds. */
/* Kernel efficiency on a plane of `px` output pixels: the per-call and per-weight
 * costs spread over fewer pixels (fitted to the sparse kernel on 56x56 .. 7x7 planes). */
static double pix_eff(int64_t px) { return (double)px / ((double)px + 64.0); }

/* pix_eff of node nd's calls over planes of px output pixels */
static double node_eff(const col_node *nd, int64_t px) { return pix_eff(px < nd->call_px ? px : nd->call_px); }

/* Segments per image for nb bands of an image, N images and th threads: a thread walks
 * a segment's bands top to bottom keeping halos, so as few segments as keep the
 * threads busy (whole rounds of tasks; an uneven last round costs a share). */
static int64_t seg_count(int64_t N, int th, int64_t nb) {
    int64_t segs = (th + N - 1) / N;
    if (N * segs % th && N < 4 * th) segs = (2 * th + N - 1) / N;
    /* an image of many bands split over the threads: up to 4 segments per thread
     * of 8 bands or more (a thread held up by other load then delays less) */
    if (N < th && nb >= 16 * th) segs = th * (nb / (8 * th) < 4 ? nb / (8 * th) : 4);
    return segs < 1 ? 1 : segs > nb ? nb : segs;
}

static void estimate(col_chain *ch, int64_t T, size_t ws_bytes, const col_machine *mc) {
    const double N = (double)ch->N, th = (double)mc->threads, half = mc->l2 * 0.5, l3half = mc->l3 * 0.5;
    double t_l = 0, l3_l = 0, mem_l = 0, wb = 0;
    /* a tensor of b bytes accessed once: nothing within half an L2, else from L3 or memory */
#define TRAFFIC(b, l3, mem) ((b) > l3half ? ((mem) += (b)) : (b) > half ? ((l3) += (b)) : 0)
    for (int k = 0; k < ch->n; k++) {
        const col_node *nd = &ch->nodes[k];
        const double in_b = N * (double)(nd->C * nd->H * nd->W) * 4.0, out_b = N * (double)(nd->M * nd->OH * nd->OW) * 4.0;
        t_l += N * (double)nd->OH * nd->macs_row / (nd->rate * node_eff(nd, nd->OH * nd->OW));
        TRAFFIC(in_b, l3_l, mem_l);
        TRAFFIC(out_b, l3_l, mem_l);
        if (nd->rsrc != -2) TRAFFIC(out_b, l3_l, mem_l);
        TRAFFIC(nd->wbytes > half ? N * nd->wbytes : 0, l3_l, mem_l);
        wb += nd->wbytes;
    }
    ch->max_tensor = (double)(ch->C * ch->H * ch->W) * 4.0;
    for (int k = 0; k < ch->n; k++) {
        const col_node *nd = &ch->nodes[k];
        const double ob = (double)(nd->M * nd->OH * nd->OW) * 4.0;
        if (ob > ch->max_tensor) ch->max_tensor = ob;
    }
    ch->bytes_layers = l3_l + mem_l + wb;
    ch->mem_layers = mem_l;
    ch->t_layers = (t_l + mem_l / BW_STREAM + l3_l / BW_L3) / th + (double)ch->n * 5e-6;
    const int64_t nb = (ch->OH + T - 1) / T;
    const double tiles = N * (double)nb, tasks = N * (double)seg_count(ch->N, mc->threads, nb);
    double t_c = 0, l3_c = 0, mem_c = 0, in_c = 0;
    const double out_b = N * (double)(ch->M * ch->OH * ch->OW) * 4.0;
    for (int k = 0; k < ch->n; k++) {
        const col_node *nd = &ch->nodes[k];
        /* a layer that keeps its halo rows computes its whole window in the first band
         * of a segment and only its Rn new rows, as smaller kernel calls, in the others
         * (costing every band's whole window, as before MIN_INC_PX kept 1-row bands
         * out, overstated ResNet-50 90% 1024x1024's 128x128 chains by 23%: their 1x1
         * conv1 costed twice at 2-row tiles, and AUTO left them out although they ran
         * faster as columns) */
        const double rate = ch->whole ? nd->whole_rate : nd->band_rate;
        const double firsts = nd->inc ? tasks : tiles;
        t_c += firsts * (double)nd->R * nd->macs_row / (rate * node_eff(nd, nd->R * nd->OW));
        if (nd->inc) t_c += (tiles - tasks) * (double)nd->Rn * nd->macs_row / (rate * node_eff(nd, nd->Rn * nd->OW));
        if (nd->src == -1) in_c += tiles * (double)nd->Rin * (double)(nd->C * nd->W) * 4.0;
        if (nd->rsrc == -1) in_c += tiles * (double)nd->R * (double)(nd->M * nd->OW) * 4.0;
    }
    const double in_b = N * (double)(ch->C * ch->H * ch->W) * 4.0;
    TRAFFIC(in_b, l3_c, mem_c);
    if (in_b > half) l3_c += in_c - in_b; /* halo rows read again: recently used */
    TRAFFIC(out_b, l3_c, mem_c);
    /* buffers beyond the L2 budget (whole images, L3-tier bands): the intermediate
     * rows spill, in the share the budget does not hold -- written and read again
     * (measured: MobileNetV2 90% b1 with whole-image chains of 4.7 MB moved 30.5 MB
     * out of L2 where this estimate, without the term, said 6.6) */
    const double spill = (double)ws_bytes > mc->l2 * 0.7 ? 1.0 - mc->l2 * 0.7 / (double)ws_bytes : 0.0;
    for (int k = 0; spill > 0 && k < ch->n - 1; k++) {
        const col_node *nd = &ch->nodes[k];
        l3_c += spill * 2.0 * tiles * (double)(nd->M * nd->R * nd->OW) * 4.0;
    }
    const double w_c = ch->par ? wb : wb + (double)ws_bytes <= mc->l2 ? wb * th : wb * tiles;
    if (wb > l3half) mem_c += w_c;
    else l3_c += w_c;
#undef TRAFFIC
    ch->bytes_cols = l3_c + mem_c;
    const double rounds = (double)(int64_t)((tasks + th - 1) / th);
    ch->t_cols = rounds * th / tasks * (t_c + mem_c / BW_STREAM + l3_c / BW_L3) / th +
                 rounds * tiles / tasks * (double)ch->n * 2e-6;
    if (ch->par) /* every layer on all threads, a barrier each, as layer by layer */
        ch->t_cols = (t_c + mem_c / BW_STREAM + l3_c / BW_L3) / th + N * (double)ch->n * 5e-6;
}

/* The best tile rows for the chain (the fastest estimate whose working set fits the
 * L2 budget); false if none fits. Leaves the chain laid out and estimated with it. */
static bool choose_tile(col_chain *ch, const col_machine *mc) {
    const int64_t forced = rows_override();
    /* L2 first; wide images whose band of one row does not fit L2 run their columns
     * in a share of L3 instead (still no trip to memory) */
    const double budgets[2] = {mc->l2 * 0.7, mc->l3 / (2.0 * mc->threads)};
    int64_t best = 0;
    bool best_keep = true;
    double best_t = 0;
    size_t ws = 0, ks = 0;
    if (!layout(ch, 1, true, &ws, &ks)) return false;
    ch->wide = (double)(ws + ks) * 4.0 > budgets[0] && ch->OH > 1;
    for (int tier = 0; tier < 2 && !best; tier++) {
        if (tier == 1 && (forced > 0 || budgets[1] <= budgets[0])) break;
        for (int64_t T = 1; T <= ch->OH; T++) {
            if (forced > 0 && T != (forced < ch->OH ? forced : ch->OH)) continue;
            /* kept halos hold a second buffer of new rows per layer: where that does
             * not fit the budget, the same T with recomputed halos may (measured:
             * MobileNetV2's 112x112 expand + depthwise found no kept-halo band in L2
             * and ran as a whole image of 4.7 MB, its expanded tensor going through L3) */
            bool keep = true, fits = false;
            for (int kp = 1; kp >= 0 && !fits; kp--) {
                if (!layout(ch, T, kp == 1, &ws, &ks)) return false;
                keep = kp == 1;
                fits = forced > 0 || (double)(ws + ks) * 4.0 <= budgets[tier] || keep_override() >= 0;
            }
            const double bytes = (double)(ws + ks) * 4.0;
            /* grows with T, except that one band per image reads and writes in place;
             * bands whose last layer makes kernel calls of fewer than MIN_INC_PX pixels
             * are not taken (measured: MobileNetV2 90% b16's first chain as 1-row
             * bands of 56 pixels ran at half the speed of 4-row bands) */
            const bool tiny = T < ch->OH && T * ch->OW < MIN_INC_PX;
            if (forced <= 0 && (bytes > budgets[tier] || tiny)) {
                if (tiny && bytes <= budgets[tier]) continue;
                if (T >= ch->OH) break;
                T = ch->OH - 1;
                continue;
            }
            estimate(ch, T, (size_t)bytes, mc);
            if (!best || ch->t_cols < best_t) {
                best = T;
                best_keep = keep;
                best_t = ch->t_cols;
            }
        }
    }
    if (!best) return false;
    layout(ch, best, best_keep, &ws, &ks);
    ch->tier = (double)(ws + ks) * 4.0 > budgets[0] && forced <= 0;
    ch->T = best;
    ch->keep = best_keep;
    ch->nb = (ch->OH + best - 1) / best;
    ch->segs = seg_count(ch->N, mc->threads, ch->nb);
    ch->ws_floats = ws;
    ch->kscratch = ks * 4;
    estimate(ch, best, (ws + ks) * 4, mc);
    return true;
}

/* How often each value is read: uses[v] counts the node inputs reading v over the
 * whole graph (planning runs while the steps are still being made; nodes folded away
 * only make this count larger, which keeps a chain out, never wrongly in). */
static int *count_uses(const pl_session *s) {
    int *uses = calloc((size_t)s->g->nvalues + 1, sizeof *uses);
    if (!uses) return NULL;
    for (int i = 0; i < s->g->nnodes; i++) {
        const pl_node *n = &s->g->nodes[i];
        for (int k = 0; k < n->nin; k++)
            if (n->in[k] >= 0) uses[n->in[k]]++;
    }
    for (int k = 0; k < s->g->noutputs; k++) uses[s->g->outputs[k]] += 1 << 20; /* never internal */
    return uses;
}

/* Whether value v is made by a dynamic step (its shape may change at run time: never
 * a chain input). The producer comes before the chain, so it is prepared already. */
static bool made_dynamic(const pl_session *s, int v) {
    for (int i = 0; i < s->nsteps; i++) {
        const pl_node *n = &s->g->nodes[s->steps[i].node];
        for (int k = 0; s->steps[i].dynamic && k < n->nout; k++)
            if (n->out[k] == v) return true;
    }
    return false;
}

/* Chain of steps first..first+n-1 (already filled nodes) as a column candidate: the
 * producers of each input, and whether every result but the last stays inside. */
static bool chain_valid(const pl_session *s, col_chain *ch, const int *uses) {
    const pl_graph *g = s->g;
    col_node *last = &ch->nodes[ch->n - 1];
    for (int k = 0; k < ch->n - 1; k++) {
        int v = g->nodes[s->steps[ch->nodes[k].step].node].out[0];
        int inside = 0;
        for (int j = k + 1; j < ch->n; j++) {
            const pl_node *n = &g->nodes[s->steps[ch->nodes[j].step].node];
            for (int q = 0; q < n->nin; q++) inside += n->in[q] == v;
        }
        if (inside == 0 || inside != uses[v]) return false;
    }
    ch->out_value = g->nodes[s->steps[last->step].node].out[0];
    const pl_tensor *o = &g->values[ch->out_value].t;
    const pl_tensor *x = &g->values[ch->in_value].t;
    if (o->ndim != 4 || x->ndim != 4 || made_dynamic(s, ch->in_value)) return false;
    ch->N = x->dims[0];
    ch->C = x->dims[1];
    ch->H = x->dims[2];
    ch->W = x->dims[3];
    ch->M = o->dims[1];
    ch->OH = o->dims[2];
    ch->OW = o->dims[3];
    return ch->N >= 1 && ch->OH >= 1 && (int64_t)ch->N * ch->OH < (1 << 30);
}

/* Adds step st as node k of the chain: its data input and residual must come from the
 * chain input or earlier nodes. */
static bool add_node(pl_session *s, col_chain *ch, int st) {
    col_node *nd = &ch->nodes[ch->n];
    if (!fill_node(s, st, nd)) return false;
    const pl_node *n = &s->g->nodes[s->steps[st].node];
    int xin = n->in[0], rin = nd->ci.residual >= 0 ? n->in[nd->ci.residual] : -2;
    if (ch->n == 0) ch->in_value = xin;
    nd->src = nd->rsrc = -3;
    if (xin == ch->in_value) nd->src = -1;
    if (rin == -2) nd->rsrc = -2;
    else if (rin == ch->in_value) nd->rsrc = -1;
    for (int j = 0; j < ch->n; j++) {
        int v = s->g->nodes[s->steps[ch->nodes[j].step].node].out[0];
        if (v == xin) nd->src = j;
        if (v == rin) nd->rsrc = j;
    }
    if (nd->src == -3 || nd->rsrc == -3) return false;
    ch->n++;
    return true;
}

/* ------------------------------------------------------------------ planning */

int pl_columns_requested(const pl_session *s) {
    if (s->opts.schedule_set) return s->opts.schedule;
    const char *e = getenv("PILLAR_SCHEDULE");
    if (e && !strcasecmp(e, "layers")) return PILLAR_SCHEDULE_LAYERS;
    if (e && !strcasecmp(e, "columns")) return PILLAR_SCHEDULE_COLUMNS;
    return PILLAR_SCHEDULE_AUTO;
}

static const char *sched_name(int s) {
    return s == PILLAR_SCHEDULE_LAYERS ? "layers" : s == PILLAR_SCHEDULE_COLUMNS ? "columns" : "auto";
}

/* The direct path of node nd (see col_node.sp1): its own packed weights, bias and
 * epilogue, from the raw weights (no band plan: nothing else of one would be used). */
static pl_status make_sp1(col_node *nd, const pl_sgemm_epilogue *e) {
    nd->sp1_epi = *e;
    nd->sp1_epi.row_bias = nd->sp1_epi.col_bias = nd->sp1_epi.residual = NULL;
    if (nd->ci.bias) {
        nd->sp1_bias = malloc(sizeof(float) * (size_t)nd->M);
        if (!nd->sp1_bias) return pl_error(PL_ERR_NOMEM, "out of memory");
        memcpy(nd->sp1_bias, nd->ci.bias, sizeof(float) * (size_t)nd->M);
        nd->sp1_epi.row_bias = nd->sp1_bias;
    }
    return pl_sparse_pack(nd->ci.w, nd->M, nd->C, nd->C, 1, &nd->sp1);
}

/* Whether the band plan of node nd came out SPARSE for a 1x1, stride-1, unpadded,
 * ungrouped layer with an activation the sparse kernel fuses (*e) although its layer
 * plan was not (the layout did not count on the direct path, but it runs). */
static bool band_takes_sp1(const col_node *nd, pl_sgemm_epilogue *e) {
    const pl_conv_params *p = &nd->ci.p;
    return pl_conv_fast_algo(nd->band) == PL_CONV_ALGO_SPARSE && p->kernel[0] == 1 && p->kernel[1] == 1 &&
           p->stride[0] == 1 && p->stride[1] == 1 && !p->pad_begin[0] && !p->pad_begin[1] &&
           p->out_size[0] == p->in_size[0] && p->out_size[1] == p->in_size[1] && p->group == 1 &&
           pl_conv_fast_act_epilogue(nd->band, e);
}

/* Rows of node nd (1x1 stride 1: input row = output row) through its direct path:
 * output rows [r0, r1) from input rows B (row r0 at B, channel stride ldb), residual
 * (NULL or row r0 at res, channel stride ldr), into Y (row r0, channel stride ldy).
 * Column blocks of 1024 pixels keep the input rows in cache across the output channels. */
static void run_sp1(const col_node *nd, int64_t r0, int64_t r1, const float *B, int64_t ldb, const float *res,
                    int64_t ldr, float *Y, int64_t ldy) {
    const int64_t n = (r1 - r0) * nd->OW;
    pl_sgemm_epilogue e = nd->sp1_epi;
    e.ld_residual = ldr;
    for (int64_t c0 = 0; c0 < n; c0 += 1024) {
        const int64_t nc = n - c0 < 1024 ? n - c0 : 1024;
        e.residual = res ? res + c0 : NULL;
        pl_sparse_mm(nd->sp1, 0, nd->M, B + c0, NULL, ldb, nc, Y + c0, ldy, &e);
    }
}

/* The band convolutions of a chain that will run as columns. */
static pl_status make_bands(col_chain *ch) {
    size_t kscr = 0;
    for (int k = 0; k < ch->n; k++) {
        col_node *nd = &ch->nodes[k];
        pl_conv_params bp = nd->ci.p;
        bp.batch = 1;
        if (!ch->whole) {
            bp.in_size[0] = nd->Rin;
            bp.out_size[0] = nd->R;
            bp.pad_begin[0] = 0;
        }
        if (!nd->ci.w) return pl_error(PL_ERR_UNSUPPORTED, "the raw weights were released");
        if (!ch->whole && nd->sp1_ok) { /* the layout counted on the direct path */
            if (!nd->ci.act_direct) return pl_error(PL_ERR_UNSUPPORTED, "direct 1x1 layer without a fused activation");
            PL_TRY(make_sp1(nd, &nd->ci.epi));
            continue;
        }
        if (!pl_conv_fast_supported(&bp, PL_CONV_ALGO_AUTO))
            return pl_error(PL_ERR_UNSUPPORTED, "band geometry has no fast convolution");
        PL_TRY(pl_conv_fast_create(&bp, nd->ci.w, nd->ci.bias, &nd->ci.act, pl_conv_algo_request(&bp),
                                   ch->par ? ch->threads : 1, &nd->band));
        pl_sgemm_epilogue e;
        if (!ch->whole && band_takes_sp1(nd, &e)) {
            PL_TRY(make_sp1(nd, &e));
            pl_conv_fast_destroy(nd->band);
            nd->band = NULL;
            continue; /* the direct path computes new rows itself */
        }
        size_t sz = pl_conv_fast_scratch_size(nd->band);
        if (sz > kscr) kscr = sz;
        if (!nd->inc) continue;
        bp.in_size[0] = nd->Rin_n;
        bp.out_size[0] = nd->Rn;
        if (!pl_conv_fast_supported(&bp, PL_CONV_ALGO_AUTO))
            return pl_error(PL_ERR_UNSUPPORTED, "band geometry has no fast convolution");
        PL_TRY(pl_conv_fast_create(&bp, nd->ci.w, nd->ci.bias, &nd->ci.act, pl_conv_algo_request(&bp), 1,
                                   &nd->band_inc));
        sz = pl_conv_fast_scratch_size(nd->band_inc);
        if (sz > kscr) kscr = sz;
    }
    ch->kscratch = round64(kscr);
    return PL_OK;
}

static void free_bands(col_chain *ch) {
    for (int k = 0; k < ch->n; k++) {
        pl_conv_fast_destroy(ch->nodes[k].band);
        pl_conv_fast_destroy(ch->nodes[k].band_inc);
        pl_sparse_destroy(ch->nodes[k].sp1);
        free(ch->nodes[k].sp1_bias);
        ch->nodes[k].sp1 = NULL;
        ch->nodes[k].sp1_bias = NULL;
        ch->nodes[k].band = ch->nodes[k].band_inc = NULL;
    }
}

void pl_columns_free(pl_session *s) {
    pl_columns *c = s->cols;
    if (c) {
        for (int i = 0; i < c->nchains; i++) free_bands(&c->chains[i]);
        free(c->chains);
        free(c->scratch);
        free(c->report);
        free(c->uses);
        free(c->cand);
        free(c->best);
        free(c);
    }
    s->cols = NULL;
    free(s->col_internal);
    s->col_internal = NULL;
}

static pl_status build_report(pl_session *s, int req, const col_machine *mc) {
    pl_columns *c = s->cols;
    size_t cap = 256 + (size_t)c->nchains * 512, len = 0;
    char *r = malloc(cap);
    if (!r) return pl_error(PL_ERR_NOMEM, "out of memory");
    bool any = false;
    for (int i = 0; i < c->nchains; i++) any |= c->chains[i].used;
    len += (size_t)snprintf(r + len, cap - len, "schedule: %s (requested %s), L2 %.0f per core, L3 %.0f\n",
                            any ? "columns" : "layers", sched_name(req), mc->l2, mc->l3);
    double tl = 0, tc = 0;
    for (int i = 0; i < c->nchains; i++) {
        const col_chain *ch = &c->chains[i];
        const pl_node *a = &s->g->nodes[s->steps[ch->first].node], *b = &s->g->nodes[s->steps[ch->last].node];
        len += (size_t)snprintf(r + len, cap - len,
                                "chain %d: %s .. %s (%d layers, %lldx%lldx%lld -> %lldx%lldx%lld), tile %lld rows, "
                                "%lld tiles per image, working set %.0f KB, bytes per inference: layers %.2f MB, "
                                "columns %.2f MB; time estimate: layers %.3f ms, columns %.3f ms%s%s%s\n",
                                i, a->name, b->name, ch->n, (long long)ch->C, (long long)ch->H, (long long)ch->W,
                                (long long)ch->M, (long long)ch->OH, (long long)ch->OW, (long long)ch->T,
                                (long long)ch->nb, (double)(ch->ws_floats * 4 + ch->kscratch) / 1024.0,
                                ch->bytes_layers / 1e6, ch->bytes_cols / 1e6, ch->t_layers * 1e3, ch->t_cols * 1e3,
                                ch->par ? ", each layer on all threads"
                                : !ch->whole && !ch->keep ? ", halos recomputed" : "",
                                ch->used ? "" : ", not used: ",
                                ch->used ? "" : ch->reason);
        tl += ch->bytes_layers;
        tc += ch->bytes_cols;
        if (cap - len < 600) {
            cap *= 2;
            char *nr = realloc(r, cap);
            if (!nr) {
                free(r);
                return pl_error(PL_ERR_NOMEM, "out of memory");
            }
            r = nr;
        }
    }
    snprintf(r + len, cap - len, "total bytes per inference: layers %.2f MB, columns %.2f MB\n", tl / 1e6, tc / 1e6);
    c->report = r;
    return PL_OK;
}

pl_status pl_columns_begin(pl_session *s) {
    pl_columns_free(s);
    if (s->parent) return PL_OK; /* subgraphs run layer by layer */
    pl_columns *c = calloc(1, sizeof *c);
    if (!c) return pl_error(PL_ERR_NOMEM, "out of memory");
    s->cols = c;
    c->req = pl_columns_requested(s);
    const pl_cpu_info *ci = pl_cpu();
    c->mc = (col_machine){(double)(ci->l2 ? ci->l2 : (1u << 20)), (double)(ci->l3 ? ci->l3 : (8u << 20)),
                          pl_threadpool_size(s->pool)};
    c->nthreads = c->mc.threads;
    /* control flow reads values by name from inside its bodies: keep such graphs
     * layer by layer rather than track those readers */
    for (int i = 0; i < s->g->nnodes && !c->off; i++)
        for (int a = 0; a < s->g->nodes[i].nattr; a++) c->off |= s->g->nodes[i].attrs[a].g != NULL;
    if (c->off) return PL_OK;
    c->uses = count_uses(s);
    c->chains = calloc((size_t)(s->g->nnodes ? s->g->nnodes : 1), sizeof *c->chains);
    c->cand = malloc(sizeof *c->cand);
    c->best = malloc(sizeof *c->best);
    s->col_internal = calloc((size_t)s->g->nvalues + 1, sizeof *s->col_internal);
    if (!c->uses || !c->chains || !c->cand || !c->best || !s->col_internal)
        return pl_error(PL_ERR_NOMEM, "out of memory");
    return PL_OK;
}

/* Chain `ch` will run as columns: its band plans replace the layer plans at once (one
 * packed copy of its weights at a time while the session is made). */
static pl_status take_chain(pl_session *s, col_chain *ch, int idx) {
    pl_columns *c = s->cols;
    pl_status st = make_bands(ch);
    if (st == PL_ERR_UNSUPPORTED) {
        free_bands(ch);
        ch->used = false;
        snprintf(ch->reason, sizeof ch->reason, "%s", pl_error_msg());
        pl_error_clear();
        return PL_OK;
    }
    PL_TRY(st);
    size_t need = round64(ch->ws_floats * sizeof(float)) + ch->kscratch;
    if (need > c->slot) c->slot = need;
    for (int k = 0; k < ch->n; k++) {
        pl_step *sp = &s->steps[ch->nodes[k].step];
        const pl_node *n = &s->g->nodes[sp->node];
        if (sp->state && n->op->release) n->op->release(sp->state);
        sp->state = NULL;
        sp->chain = idx + 1;
        if (ch->nodes[k].sp1)
            snprintf(sp->kernel, sizeof sp->kernel, "sparse 1x1 direct (column %d)", idx);
        else
            snprintf(sp->kernel, sizeof sp->kernel, "%s (column %d)", pl_conv_algo_name(pl_conv_fast_algo(ch->nodes[k].band)), idx);
        if (k < ch->n - 1) s->col_internal[n->out[0]] = true;
    }
    return PL_OK;
}

pl_status pl_columns_advance(pl_session *s, bool all, int *decided) {
    pl_columns *c = s->cols;
    if (!c || c->off) {
        if (decided) *decided = s->nsteps;
        return PL_OK;
    }
    col_chain *cand = c->cand, *best = c->best;
    const col_machine *mc = &c->mc;
    /* a chain from `i` may reach COL_MAX_NODES steps: decide it once they all exist,
     * or earlier when the undecided steps hold more than PENDING_BYTES of raw weights
     * (the session's peak memory: raw and packed weights of those steps coexist) */
    for (;;) {
        double pending = 0;
        for (int k = c->cursor; k < s->nsteps; k++) pending += 4.0 * (double)s->step_params[k];
        if (!(c->cursor < s->nsteps && (all || c->cursor + COL_MAX_NODES <= s->nsteps || pending > PENDING_BYTES))) break;
        const int i = c->cursor;
        memset(cand, 0, sizeof *cand);
        bool found = false;
        double best_gain = 0;
        cand->first = i;
        cand->threads = mc->threads;
        for (int j = i; j < s->nsteps && cand->n < COL_MAX_NODES; j++) {
            if (!add_node(s, cand, j)) break;
            if (cand->n < 2 || !chain_valid(s, cand, c->uses)) continue;
            cand->last = j;
            if (!choose_tile(cand, mc)) continue;
            double gain = cand->t_layers - cand->t_cols;
            /* chains whose buffers fit L2 first, by estimated gain (the longer chain
             * when within 2% of the layers' time: fewer tensors in memory); else the
             * shortest chain with buffers in L3 (measured: longer ones lose to their
             * halos) */
            bool longer = found && (gain > best_gain || (cand->n > best->n && gain >= best_gain - 0.02 * cand->t_layers));
            if (rows_override() > 0) longer = cand->n > best->n; /* tests: the most layers per chain */
            bool better = !found || (cand->tier < best->tier) || (cand->tier == 0 && best->tier == 0 && longer);
            if (better) {
                *best = *cand;
                best_gain = gain;
                found = true;
            }
        }
        if (!found) {
            c->cursor++;
            continue;
        }
        const int req = c->req;
        /* the L3 margin is for images too wide for an L2 band; dense whole images in
         * L3 get the usual one (measured: dense ResNet-50 b16's whole downsampling
         * blocks in L3, estimated 5-9% faster, made AUTO 6% slower than layers; the
         * pruned ones won 1.08-1.11x) */
        bool dense = false;
        for (int k = 0; k < best->n; k++) dense |= best->nodes[k].rate != RATE_SPARSE;
        /* a tensor of the chain whose share per thread exceeds an L2: layer by layer
         * it goes through L3 even when the image is split over the threads */
        const bool big = best->max_tensor / mc->threads > mc->l2;
        const double margin = best->par ? AUTO_MARGIN /* layers in all but name: no idle thread to win */
                              : best->whole ? (best->tier && dense ? AUTO_MARGIN : AUTO_MARGIN_WHOLE)
                              : best->tier && best->wide ? AUTO_MARGIN_L3
                              : !best->tier && !dense && (best->N >= mc->threads || big) ? AUTO_MARGIN_SPARSE_IMG : AUTO_MARGIN;
        /* bands of an image split over the threads, where layer by layer every tensor
         * of the chain stays in L3 and each thread's share of it within an L2 (batch
         * 1 at 224x224 past the first stage): AUTO leaves them layers. Measured on
         * MobileNetV2 at batch 1: taking the chains estimated 15% faster ran slower
         * than both pure schedules (in 4 of 4 rounds); one-thread CPU per chain, its
         * 28x28 chains 0.70-0.83x of layers. Chains with a bigger tensor (`big`) are
         * taken: ResNet-50 90%'s 56x56 bottlenecks ran 1.42 / 1.10 / 1.10x of layers
         * (one thread, CPU), MobileNetV2 90%'s 112x112 chain 1.4x; pruned ones at the
         * margin of pruned chains with an image per thread (the same chains' estimates
         * are pessimistic there: 1-5% slower estimated). Pruned chains go by their
         * estimate (session 9, MobileNetV2 90% b1, 2 threads, CPU median of 8 rounds
         * alternating, load 5-7: AUTO with its chains 1-3 as columns 5.05 ms, with the
         * rule 5.36, COLUMNS 4.92, layers 5.95; an earlier set of 6: 4.89 / 5.39 / 4.91
         * / 5.51) */
        const bool in_l3 = dense && !best->tier && !best->whole && best->mem_layers <= 0 && best->N < mc->threads && !big;
        best->used = req == PILLAR_SCHEDULE_COLUMNS ||
                     (req == PILLAR_SCHEDULE_AUTO && !in_l3 && best->t_cols < margin * best->t_layers);
        if (!best->used)
            snprintf(best->reason, sizeof best->reason, req == PILLAR_SCHEDULE_LAYERS ? "layers requested"
                     : in_l3 && best->t_cols < margin * best->t_layers ? "layer by layer its tensors stay in L3"
                     : "estimated %.2f ms against %.2f ms layer by layer", best->t_cols * 1e3, best->t_layers * 1e3);
        col_chain *ch = &c->chains[c->nchains++];
        *ch = *best;
        c->cursor = ch->last + 1;
        if (ch->used) PL_TRY(take_chain(s, ch, c->nchains - 1));
    }
    if (decided) *decided = c->cursor;
    return PL_OK;
}

pl_status pl_columns_finish(pl_session *s) {
    PL_TRY(pl_columns_advance(s, true, NULL));
    pl_columns *c = s->cols;
    if (!c) return PL_OK;
    free(c->uses);
    free(c->cand);
    free(c->best);
    c->uses = NULL;
    c->cand = c->best = NULL;
    if (c->slot) {
        c->slot_bytes = round64(c->slot);
        c->scratch = aligned_alloc(64, c->slot_bytes * (size_t)c->nthreads);
        if (!c->scratch) return pl_error(PL_ERR_NOMEM, "out of memory: column buffers of %zu bytes", c->slot_bytes * (size_t)c->nthreads);
    }
    return build_report(s, c->req, &c->mc);
}

void pl_columns_extend_live(const pl_session *s, int *last) {
    const pl_columns *c = s->cols;
    if (!c) return;
    for (int i = 0; i < c->nchains; i++) {
        const col_chain *ch = &c->chains[i];
        if (ch->used && last[ch->in_value] < ch->last) last[ch->in_value] = ch->last;
    }
}

/* ------------------------------------------------------------------ running */

/* dst[c][r][:] = rows row0 + r of src[c][:][:] (nrows rows of w floats per channel,
 * src planes of h rows, channel stride src_cs); rows outside [0, h) are zero. */
static void copy_rows(const float *src, int64_t chans, int64_t h, int64_t w, int64_t src_cs, int64_t row0,
                      int64_t nrows, float *dst) {
    int64_t a = row0 < 0 ? -row0 : 0;
    int64_t b = row0 + nrows > h ? h - row0 : nrows;
    if (b < a) b = a;
    for (int64_t c = 0; c < chans; c++) {
        float *d = dst + c * nrows * w;
        if (a > 0) memset(d, 0, sizeof(float) * (size_t)(a * w));
        if (b > a) memcpy(d + a * w, src + c * src_cs + (row0 + a) * w, sizeof(float) * (size_t)((b - a) * w));
        if (nrows > b) memset(d + b * w, 0, sizeof(float) * (size_t)((nrows - b) * w));
    }
}

typedef struct col_job {
    pl_columns *c;
    col_chain *ch;
    const float *x;
    float *y;
    atomic_int next;
    atomic_int err;
    int total;
} col_job;

/* Rows of node nd outside its image (r0: its window's first row, R rows of w floats per
 * channel, at out) are zeroed: they are its consumers' zero padding. */
static void zero_outside(const col_node *nd, int64_t r0, float *out) {
    const int64_t top = r0 < 0 ? (-r0 < nd->R ? -r0 : nd->R) : 0;
    const int64_t bot = r0 + nd->R > nd->OH ? (r0 + nd->R - nd->OH < nd->R ? r0 + nd->R - nd->OH : nd->R) : 0;
    if (top || bot)
        for (int64_t m = 0; m < nd->M; m++) {
            float *pl = out + m * nd->R * nd->OW;
            if (top) memset(pl, 0, sizeof(float) * (size_t)(top * nd->OW));
            if (bot) memset(pl + (nd->R - bot) * nd->OW, 0, sizeof(float) * (size_t)(bot * nd->OW));
        }
}

/* Direct path (nd->sp1) of node nd for its output rows [r0, r1) inside the image, in
 * band a: input and residual read where they are (the chain input x or a producer's
 * window), output to Y (row r0; channel stride ldy). */
static void run_sp1_rows(const col_chain *ch, const col_node *nd, const float *x, float *buf, int64_t a, int64_t r0,
                         int64_t r1, float *Y, int64_t ldy) {
    const float *B, *res = NULL;
    int64_t ldb, ldr = 0;
    if (nd->src == -1) {
        B = x + r0 * nd->W;
        ldb = nd->H * nd->W;
    } else {
        const col_node *p = &ch->nodes[nd->src];
        B = buf + p->out_off + (r0 - (a * p->S + p->lo)) * nd->W;
        ldb = p->R * nd->W;
    }
    if (nd->rsrc == -1) {
        res = x + r0 * nd->OW;
        ldr = nd->OH * nd->OW;
    } else if (nd->rsrc >= 0) {
        const col_node *q = &ch->nodes[nd->rsrc];
        res = buf + q->out_off + (r0 - (a * q->S + q->lo)) * nd->OW;
        ldr = q->R * nd->OW;
    }
    run_sp1(nd, r0, r1, B, ldb, res, ldr, Y, ldy);
}

/* Node nd after the first band of a segment (tile at chain row a): its window moves
 * down by Rn rows; the rows it shares with the previous window stay (moved to the top)
 * and only the Rn new ones are computed, from dense copies of their input rows. */
static pl_status run_inc(col_chain *ch, const col_node *nd, const float *x, float *buf, int64_t a, void *kscr) {
    const int64_t r_new = a * nd->S + nd->lo + nd->R - nd->Rn; /* first new row */
    if (nd->sp1) { /* kept rows to the top, the new ones computed in place below them */
        float *out = buf + nd->out_off;
        const size_t keep = (size_t)((nd->R - nd->Rn) * nd->OW), fresh = (size_t)(nd->Rn * nd->OW);
        for (int64_t m = 0; m < nd->M; m++) memmove(out + m * nd->R * nd->OW, out + m * nd->R * nd->OW + fresh, sizeof(float) * keep);
        const int64_t v0 = r_new < 0 ? 0 : r_new, v1 = r_new + nd->Rn > nd->OH ? nd->OH : r_new + nd->Rn;
        if (v1 > v0)
            run_sp1_rows(ch, nd, x, buf, a, v0, v1, out + (nd->R - nd->Rn + v0 - r_new) * nd->OW, nd->R * nd->OW);
        zero_outside(nd, a * nd->S + nd->lo, out);
        return PL_OK;
    }
    const int64_t in0 = r_new * nd->SH - nd->PT;
    float *xin = buf + nd->inc_in_off, *res = NULL;
    if (nd->src == -1) {
        copy_rows(x, nd->C, nd->H, nd->W, nd->H * nd->W, in0, nd->Rin_n, xin);
    } else {
        const col_node *p = &ch->nodes[nd->src];
        copy_rows(buf + p->out_off, nd->C, p->R, nd->W, p->R * nd->W, in0 - (a * p->S + p->lo), nd->Rin_n, xin);
    }
    if (nd->rsrc != -2) {
        res = buf + nd->inc_res_off;
        if (nd->rsrc == -1) {
            copy_rows(x, nd->M, nd->OH, nd->OW, nd->OH * nd->OW, r_new, nd->Rn, res);
        } else {
            const col_node *q = &ch->nodes[nd->rsrc];
            copy_rows(buf + q->out_off, nd->M, q->R, nd->OW, q->R * nd->OW, r_new - (a * q->S + q->lo), nd->Rn, res);
        }
    }
    float *tmp = buf + nd->tmp_off, *out = buf + nd->out_off;
    PL_TRY(pl_conv_fast_run(nd->band_inc, xin, res, tmp, kscr, ch->kscratch, NULL));
    const size_t keep = (size_t)((nd->R - nd->Rn) * nd->OW), fresh = (size_t)(nd->Rn * nd->OW);
    for (int64_t m = 0; m < nd->M; m++) {
        float *pl = out + m * nd->R * nd->OW;
        memmove(pl, pl + fresh, sizeof(float) * keep);
        memcpy(pl + keep, tmp + (size_t)m * fresh, sizeof(float) * fresh);
    }
    zero_outside(nd, a * nd->S + nd->lo, out);
    return PL_OK;
}

/* Band b of image img; `first`: the first band of its segment (no rows kept yet). */
static pl_status run_band(col_job *j, int thread, int64_t img, int64_t b, bool first) {
    col_chain *ch = j->ch;
    const int64_t a = b * ch->T; /* the last band may reach below the image */
    uint8_t *slot = j->c->scratch + (size_t)thread * j->c->slot_bytes;
    float *buf = (float *)slot;
    void *kscr = slot + round64(ch->ws_floats * sizeof(float));
    const float *x = j->x + img * ch->C * ch->H * ch->W;
    if (ch->whole) {
        float *y = j->y + img * ch->M * ch->OH * ch->OW;
        for (int k = 0; k < ch->n; k++) {
            const col_node *nd = &ch->nodes[k];
            const float *xin = nd->src == -1 ? x : buf + ch->nodes[nd->src].out_off;
            const float *res = nd->rsrc == -2 ? NULL : nd->rsrc == -1 ? x : buf + ch->nodes[nd->rsrc].out_off;
            PL_TRY(pl_conv_fast_run(nd->band, xin, res, k == ch->n - 1 ? y : buf + nd->out_off, kscr, ch->kscratch, NULL));
        }
        return PL_OK;
    }
    for (int k = 0; k < ch->n; k++) {
        col_node *nd = &ch->nodes[k];
        if (nd->inc && !first) {
            PL_TRY(run_inc(ch, nd, x, buf, a, kscr));
            continue;
        }
        if (nd->sp1) {
            const int64_t r0 = a * nd->S + nd->lo;
            const int64_t v0 = r0 < 0 ? 0 : r0, v1 = r0 + nd->R > nd->OH ? nd->OH : r0 + nd->R;
            if (k == ch->n - 1) { /* the tile's rows straight to the output */
                if (v1 > v0)
                    run_sp1_rows(ch, nd, x, buf, a, v0, v1, j->y + img * ch->M * ch->OH * ch->OW + v0 * ch->OW,
                                 ch->OH * ch->OW);
                return PL_OK;
            }
            float *out = buf + nd->out_off;
            if (v1 > v0) run_sp1_rows(ch, nd, x, buf, a, v0, v1, out + (v0 - r0) * nd->OW, nd->R * nd->OW);
            zero_outside(nd, r0, out);
            continue;
        }
        const int64_t in_lo = nd->lo * nd->SH - nd->PT;
        const float *xin, *res = NULL;
        /* the chain input is read in place when the band is the whole image */
        if (nd->src == -1 && a * nd->S * nd->SH + in_lo == 0 && nd->Rin == nd->H) {
            xin = x;
        } else if (nd->src == -1) {
            copy_rows(x, nd->C, nd->H, nd->W, nd->H * nd->W, a * nd->S * nd->SH + in_lo, nd->Rin, buf + nd->in_off);
            xin = buf + nd->in_off;
        } else {
            const col_node *p = &ch->nodes[nd->src];
            xin = buf + p->out_off;
            if (!nd->in_direct) {
                copy_rows(xin, nd->C, p->R, nd->W, p->R * nd->W, in_lo - p->lo, nd->Rin, buf + nd->in_off);
                xin = buf + nd->in_off;
            }
        }
        if (nd->rsrc == -1 && a * nd->S + nd->lo == 0 && nd->R == nd->OH) {
            res = x;
        } else if (nd->rsrc == -1) {
            copy_rows(x, nd->M, nd->OH, nd->OW, nd->OH * nd->OW, a * nd->S + nd->lo, nd->R, buf + nd->res_off);
            res = buf + nd->res_off;
        } else if (nd->rsrc >= 0) {
            const col_node *q = &ch->nodes[nd->rsrc];
            res = buf + q->out_off;
            if (!nd->res_direct) {
                copy_rows(res, nd->M, q->R, nd->OW, q->R * nd->OW, nd->lo - q->lo, nd->R, buf + nd->res_off);
                res = buf + nd->res_off;
            }
        }
        float *out = buf + nd->out_off;
        const bool whole = k == ch->n - 1 && ch->T == ch->OH; /* straight to the output */
        if (whole) out = j->y + img * ch->M * ch->OH * ch->OW;
        PL_TRY(pl_conv_fast_run(nd->band, xin, res, out, kscr, ch->kscratch, NULL));
        if (whole) return PL_OK;
        if (k == ch->n - 1) break;
        zero_outside(nd, a * nd->S + nd->lo, out);
    }
    /* the tile's rows inside the image go to the output */
    const col_node *l = &ch->nodes[ch->n - 1];
    const int64_t rows = a + ch->T < ch->OH ? ch->T : ch->OH - a;
    float *y = j->y + img * ch->M * ch->OH * ch->OW;
    const float *o = buf + l->out_off;
    for (int64_t m = 0; m < ch->M; m++)
        memcpy(y + (m * ch->OH + a) * ch->OW, o + m * ch->T * ch->OW, sizeof(float) * (size_t)(rows * ch->OW));
    return PL_OK;
}

/* Task t: segment t % segs of image t / segs, its bands top to bottom. */
static pl_status run_segment(col_job *j, int thread, int t) {
    const col_chain *ch = j->ch;
    const int64_t img = t / ch->segs, sg = t % ch->segs;
    const int64_t b0 = sg * ch->nb / ch->segs, b1 = (sg + 1) * ch->nb / ch->segs;
    for (int64_t b = b0; b < b1; b++) PL_TRY(run_band(j, thread, img, b, b == b0));
    return PL_OK;
}

static void col_task(void *ctx, int task, int thread) {
    (void)task;
    col_job *j = ctx;
    for (;;) {
        int t = atomic_fetch_add(&j->next, 1);
        if (t >= j->total || atomic_load(&j->err)) break;
        pl_status st = run_segment(j, thread, t);
        if (st != PL_OK) {
            atomic_store(&j->err, (int)st);
            break;
        }
    }
}

pl_status pl_columns_run(pl_session *s, int ci) {
    pl_columns *c = s->cols;
    if (!c || ci < 0 || ci >= c->nchains || !c->chains[ci].used)
        return pl_error(PL_ERR_INTERNAL, "column chain %d is not planned", ci);
    col_chain *ch = &c->chains[ci];
    col_job j = {.c = c, .ch = ch, .x = s->g->values[ch->in_value].t.data,
                 .y = s->g->values[ch->out_value].t.data, .total = (int)(ch->N * ch->segs)};
    atomic_init(&j.next, 0);
    atomic_init(&j.err, 0);
    if (!j.x || !j.y) return pl_error(PL_ERR_INTERNAL, "column chain %d has no input or output buffer", ci);
    if (ch->par) { /* whole images one after another, each layer on every thread */
        float *buf = (float *)c->scratch;
        void *kscr = c->scratch + round64(ch->ws_floats * sizeof(float));
        for (int64_t img = 0; img < ch->N; img++) {
            const float *x = j.x + img * ch->C * ch->H * ch->W;
            float *y = j.y + img * ch->M * ch->OH * ch->OW;
            for (int k = 0; k < ch->n; k++) {
                const col_node *nd = &ch->nodes[k];
                const float *xin = nd->src == -1 ? x : buf + ch->nodes[nd->src].out_off;
                const float *res = nd->rsrc == -2 ? NULL : nd->rsrc == -1 ? x : buf + ch->nodes[nd->rsrc].out_off;
                PL_TRY(pl_conv_fast_run(nd->band, xin, res, k == ch->n - 1 ? y : buf + nd->out_off, kscr,
                                        ch->kscratch, s->pool));
            }
        }
        return PL_OK;
    }
    int nt = c->nthreads < j.total ? c->nthreads : j.total;
    if (pl_threadpool_size(s->pool) < nt) nt = pl_threadpool_size(s->pool);
    pl_threadpool_run(nt > 1 ? s->pool : NULL, col_task, &j, nt);
    int err = atomic_load(&j.err);
    return err ? (pl_status)err : PL_OK;
}

int pl_columns_direct_count(const pl_session *s) {
    int n = 0;
    for (int i = 0; s && s->cols && i < s->cols->nchains; i++)
        for (int k = 0; s->cols->chains[i].used && k < s->cols->chains[i].n; k++) n += s->cols->chains[i].nodes[k].sp1 != NULL;
    return n;
}

const char *pillar_session_schedule_report(const pillar_session *s) {
    if (!s || !s->cols || !s->cols->report) return "";
    return s->cols->report;
}

pillar_schedule pillar_session_schedule(const pillar_session *s) {
    if (!s || !s->cols) return PILLAR_SCHEDULE_LAYERS;
    for (int i = 0; i < s->cols->nchains; i++)
        if (s->cols->chains[i].used) return PILLAR_SCHEDULE_COLUMNS;
    return PILLAR_SCHEDULE_LAYERS;
}
