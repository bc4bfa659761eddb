/* train.c -- training the XC network with Adam, either SLIDE-style (each example
 * computes and updates only the output neurons LSH retrieves for its hidden vector
 * plus its true labels) or with the full softmax (dense baseline, blocked GEMM).
 *
 * One batch is a few parallel phases on the thread pool:
 *   1. examples: forward + backward of every example of the batch. A weight row's
 *      gradient is not accumulated in a buffer; each example leaves, per touched row,
 *      a triplet (row, example, coefficient) in a per-thread list of the row's
 *      partition, and its hidden vector / hidden gradient in a batch buffer;
 *   2. (dense only) the output layer as three GEMMs over label chunks;
 *   3. Adam: rows are split into partitions, each owned by one task, which links the
 *      triplets of its partition by row, forms each row's gradient from the batch
 *      buffers (which stay in cache) and updates the row (lazy Adam: rows nobody
 *      touched keep their moments, as in sparse Adam).
 * No thread ever writes what another reads in the same phase, no update is lost, and
 * no gradient-sized buffer exists: memory and traffic scale with the touched rows.
 * `hogwild` instead adds gradients into shared buffers without locks (SLIDE's way),
 * for comparison. The LSH tables over the output neurons are rebuilt on a decaying
 * schedule; queries take a snapshot, so a rebuild never races them. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "lsh/rng.h"
#include "lsh/vec.h"
#include "xc/xc_impl.h"

void pl_xc_train_opts_default(pl_xc_train_opts *o) {
    memset(o, 0, sizeof *o);
    o->epochs = 1;
    o->batch = 128;
    o->lr = 1e-3f;
    o->beta1 = 0.9f;
    o->beta2 = 0.999f;
    o->eps = 1e-8f;
    pl_lsh_opts_default(&o->lsh);
    o->lsh.family = PL_LSH_SIMHASH;
    o->lsh.K = 10;
    o->lsh.L = 32;
    o->lsh.bucket_cap = 128;
    o->lsh.policy = PL_LSH_FIFO;
    o->source = PL_XC_EXAMPLES;
    o->sample.mode = PL_LSH_TOPK;
    o->sample.top_k = 0; /* 0: max_active */
    o->sample.threshold = 1;
    o->max_active = 0; /* 0: labels / 200, within [256, 2048] */
    o->min_active = 0;
    o->rebuild_first = 50;
    o->rebuild_growth = 1.2;
    o->rebuild_max = 1000;
    o->threads = 0;
    o->seed = 1;
}

/* ---------------------------------------------------------------- state */

typedef struct rowlist {
    uint32_t *v;
    int64_t n, cap;
} rowlist;

static bool rowlist_push(rowlist *l, uint32_t x) {
    if (l->n == l->cap) {
        int64_t cap = l->cap ? 2 * l->cap : 256;
        uint32_t *p = realloc(l->v, sizeof(uint32_t) * (size_t)cap);
        if (!p) return false;
        l->v = p;
        l->cap = cap;
    }
    l->v[l->n++] = x;
    return true;
}

/* A row's share of one example's gradient: coef * (Hb or DHb)[ex]. */
typedef struct trip {
    uint32_t row, ex;
    float coef;
} trip;

typedef struct triplist {
    trip *v;
    int64_t n, cap;
} triplist;

static bool trip_push(triplist *l, uint32_t row, uint32_t ex, float coef) {
    if (l->n == l->cap) {
        int64_t cap = l->cap ? 2 * l->cap : 1024;
        trip *p = realloc(l->v, sizeof(trip) * (size_t)cap);
        if (!p) return false;
        l->v = p;
        l->cap = cap;
    }
    l->v[l->n++] = (trip){row, ex, coef};
    return true;
}

typedef struct worker {
    float *h, *dh, *q;
    uint32_t *keys;
    void *hscratch;
    pl_lsh_sampler *sampler;
    uint32_t *cand, *active;
    float *z;
    uint32_t *mark; /* per label: stamp of the example that added it to `active` */
    uint32_t stamp;
    triplist *p2, *p1; /* per partition: output-layer and input-layer triplets */
    /* Adam-phase scratch of this thread */
    trip *all;
    int32_t *next;
    uint32_t *rows;
    int64_t all_cap;
    float *tmp;
    /* hogwild only: gradients go to the trainer's shared buffers */
    float *G2, *gb2, *G1, *gb1;
    uint8_t *f2, *f1; /* per row: already in a touched list this batch */
    rowlist *t2, *t1; /* touched rows, one list per partition */
    uint64_t rng;
    double loss;
    int64_t examples, active_sum, correct;
    bool nomem;
} worker;

typedef struct trainer {
    pl_xc_model *m;
    const pl_xc_data *d;
    const pl_xc_train_opts *o;
    int64_t H, C, F;
    pl_threadpool *pool;
    int nt;    /* threads */
    int parts; /* Adam partitions */
    worker *w;
    /* Adam moments */
    float *M2, *V2, *mb2, *vb2, *M1, *V1, *mb1, *vb1;
    uint32_t *stamp2, *stamp1;      /* hogwild: per row, last batch its Adam step ran */
    int32_t *head2, *head1;         /* per row: first triplet of the row's list, or -1 */
    float *Hb, *DHb;                /* bs x H: hidden vectors and their gradients */
    float *G2s, *gb2s, *G1s, *gb1s; /* hogwild: shared gradient buffers */
    uint32_t batch_no;
    pl_adam_step step;
    /* the batch being trained */
    const uint32_t *batch;
    int64_t bs;
    float scale; /* 1 / batch size */
    /* LSH */
    const pl_lsh_hash *hash; /* the index's, or own_hash without an index */
    pl_lsh_hash *own_hash;
    pl_lsh_live *live; /* labels under their examples' hashes */
    pl_lsh_index *index;
    const pl_lsh_tables *tables; /* snapshot used by the current batch */
    pl_lsh_sample_opts sample;
    int64_t max_active, min_active;
    uint32_t *keys; /* C x L, for rebuilds */
    float *norm;    /* C: |[w, b]| at the last rebuild */
    uint8_t *range; /* C: norm range */
    float U[256];   /* largest norm per range */
    int rebuild_tasks;
    /* dense */
    float *Z, *G2d, *gb2d, *dHp, *rmax, *rsum;
    uint32_t *rarg; /* per chunk and example: label of the chunk's largest logit */
    int64_t chunk, nchunks;
    float *rowM, *rowS;
} trainer;

static inline int part_of(int64_t j, int64_t n, int parts) {
    return (int)(((uint64_t)j * (uint64_t)parts) / (uint64_t)n);
}

static inline void touch2(trainer *tr, worker *w, uint32_t j) {
    if (w->f2[j]) return;
    w->f2[j] = 1;
    if (!rowlist_push(&w->t2[part_of(j, tr->C, tr->parts)], j)) w->nomem = true;
}

static inline void touch1(trainer *tr, worker *w, uint32_t f) {
    if (w->f1[f]) return;
    w->f1[f] = 1;
    if (!rowlist_push(&w->t1[part_of(f, tr->F, tr->parts)], f)) w->nomem = true;
}

/* ---------------------------------------------------------------- examples */

/* Hidden-layer backward of example e (w->dh holds dL/dh): relu mask, then the input
 * rows' gradients (triplets, or shared buffers under hogwild). */
static void hidden_backward(trainer *tr, worker *w, int64_t e, const uint32_t *feat,
                            const float *val, int64_t nnz) {
    int64_t H = tr->H;
    const float *h = tr->Hb + e * H;
    for (int64_t j = 0; j < H; j++) w->dh[j] = h[j] > 0 ? w->dh[j] : 0;
    if (tr->o->hogwild) {
        const pl_vec_ops *v = pl_vec();
        for (int64_t k = 0; k < nnz; k++) {
            v->axpy(val[k], w->dh, w->G1 + (int64_t)feat[k] * H, H);
            touch1(tr, w, feat[k]);
        }
        v->axpy(1.0f, w->dh, w->gb1, H);
        return;
    }
    memcpy(tr->DHb + e * H, w->dh, sizeof(float) * (size_t)H);
    for (int64_t k = 0; k < nnz; k++)
        if (!trip_push(&w->p1[part_of(feat[k], tr->F, tr->parts)], feat[k], (uint32_t)e, val[k]))
            w->nomem = true;
}

/* Example e of the batch, SLIDE-style: true labels + LSH candidates (+ random fill)
 * form the active set; softmax cross-entropy over it against the uniform target on
 * the labels. */
static void lsh_example(trainer *tr, worker *w, int64_t e) {
    const pl_xc_data *d = tr->d;
    const pl_xc_model *m = tr->m;
    const pl_vec_ops *v = pl_vec();
    int64_t H = tr->H, i = tr->batch[e];
    const uint32_t *feat = d->feat + d->row[i];
    const float *val = d->val + d->row[i];
    int64_t nnz = d->row[i + 1] - d->row[i];
    const uint32_t *y = d->lab + d->lrow[i];
    int64_t ny = d->lrow[i + 1] - d->lrow[i];
    float *h = tr->Hb + e * H;
    if (ny == 0) { /* nothing to learn; its hidden gradient is zero */
        memset(tr->DHb + e * H, 0, sizeof(float) * (size_t)H);
        return;
    }
    pl_xc_hidden(m, feat, val, nnz, h);

    if (++w->stamp == 0) {
        memset(w->mark, 0, sizeof(uint32_t) * (size_t)tr->C);
        w->stamp = 1;
    }
    int64_t na = 0, cap = tr->max_active;
    for (int64_t k = 0; k < ny && na < cap; k++) {
        if (w->mark[y[k]] == w->stamp) continue;
        w->mark[y[k]] = w->stamp;
        w->active[na++] = y[k];
    }
    int64_t nlab = na;
    memcpy(w->q, h, sizeof(float) * (size_t)H);
    w->q[H] = 1.0f;
    w->q[H + 1] = 0.0f;
    pl_lsh_hash_dense(tr->hash, w->q, w->keys, w->hscratch);
    if (na < cap) {
        int64_t nc = pl_lsh_sample_both(tr->tables, tr->live, w->keys, &tr->sample, w->sampler,
                                        w->cand, cap);
        for (int64_t k = 0; k < nc && na < cap; k++) {
            uint32_t c = w->cand[k];
            if (w->mark[c] == w->stamp) continue;
            w->mark[c] = w->stamp;
            w->active[na++] = c;
        }
    }
    if (tr->live) /* after the query, so an example does not find itself */
        for (int64_t k = 0; k < ny; k++) pl_lsh_live_insert(tr->live, w->keys, y[k], &w->rng);
    int64_t want = tr->min_active < cap ? tr->min_active : cap;
    for (int64_t tries = 0; na < want && tries < 4 * want; tries++) {
        uint32_t c = (uint32_t)pl_rng_below(&w->rng, (uint64_t)tr->C);
        if (w->mark[c] == w->stamp) continue;
        w->mark[c] = w->stamp;
        w->active[na++] = c;
    }

    v->gather_dots(m->W2, H, m->b2, w->active, na, h, H, w->z);
    float mx = -INFINITY;
    int64_t best = 0;
    for (int64_t k = 0; k < na; k++)
        if (w->z[k] > mx) mx = w->z[k], best = k;
    w->correct += best < nlab;
    double sum = 0;
    for (int64_t k = 0; k < na; k++) {
        w->z[k] = expf(w->z[k] - mx);
        sum += w->z[k];
    }
    float inv = (float)(1.0 / sum), t = 1.0f / (float)nlab;
    double loss = 0;
    for (int64_t k = 0; k < na; k++) {
        float p = w->z[k] * inv;
        if (k < nlab) loss -= t * log(p > 1e-30f ? p : 1e-30f);
        w->z[k] = tr->scale * (p - (k < nlab ? t : 0.0f));
    }
    memset(w->dh, 0, sizeof(float) * (size_t)H);
    if (tr->o->hogwild) {
        v->scatter_rows(m->W2, H, w->G2, H, w->active, w->z, na, h, H, w->dh);
        for (int64_t k = 0; k < na; k++) {
            w->gb2[w->active[k]] += w->z[k];
            touch2(tr, w, w->active[k]);
        }
    } else {
        v->scatter_rows(m->W2, H, NULL, 0, w->active, w->z, na, h, H, w->dh);
        for (int64_t k = 0; k < na; k++)
            if (!trip_push(&w->p2[part_of(w->active[k], tr->C, tr->parts)], w->active[k],
                           (uint32_t)e, w->z[k]))
                w->nomem = true;
    }
    hidden_backward(tr, w, e, feat, val, nnz);
    w->loss += loss;
    w->examples++;
    w->active_sum += na;
}

typedef struct span_job {
    trainer *tr;
    int64_t per; /* examples per task */
} span_job;

static void examples_task(void *ctx, int task, int thread) {
    span_job *j = ctx;
    trainer *tr = j->tr;
    worker *w = &tr->w[thread];
    int64_t b0 = (int64_t)task * j->per, b1 = b0 + j->per < tr->bs ? b0 + j->per : tr->bs;
    for (int64_t b = b0; b < b1; b++) lsh_example(tr, w, b);
}

/* ---------------------------------------------------------------- Adam */

static void adam_scalar(float *w, float *m, float *v, float g, const pl_adam_step *s) {
    *m = s->beta1 * *m + (1 - s->beta1) * g;
    *v = s->beta2 * *v + (1 - s->beta2) * g * g;
    *w -= s->lr_t * *m / (sqrtf(*v) + s->eps);
}

/* Partition p's rows of one layer from the triplets: link them by row (head[] is
 * -1 outside this phase; each partition resets its own rows), then per row sum
 * coef * X[ex] into the gradient and take the Adam step. */
static void trip_rows(trainer *tr, worker *ws, int p, bool out_layer) {
    const pl_vec_ops *v = pl_vec();
    pl_xc_model *m = tr->m;
    int64_t H = tr->H, total = 0;
    for (int u = 0; u < tr->nt; u++) total += out_layer ? tr->w[u].p2[p].n : tr->w[u].p1[p].n;
    if (total == 0) return;
    if (total > ws->all_cap) {
        int64_t cap = total + total / 2;
        trip *a = realloc(ws->all, sizeof(trip) * (size_t)cap);
        if (a) ws->all = a;
        int32_t *nx = realloc(ws->next, sizeof(int32_t) * (size_t)cap);
        if (nx) ws->next = nx;
        uint32_t *r = realloc(ws->rows, sizeof(uint32_t) * (size_t)cap);
        if (r) ws->rows = r;
        if (!a || !nx || !r || cap > INT32_MAX) {
            ws->nomem = true;
            return;
        }
        ws->all_cap = cap;
    }
    int32_t *head = out_layer ? tr->head2 : tr->head1;
    int64_t idx = 0, nr = 0;
    for (int u = 0; u < tr->nt; u++) {
        const triplist *l = out_layer ? &tr->w[u].p2[p] : &tr->w[u].p1[p];
        for (int64_t k = 0; k < l->n; k++, idx++) {
            uint32_t row = l->v[k].row;
            ws->all[idx] = l->v[k];
            if (head[row] < 0) ws->rows[nr++] = row;
            ws->next[idx] = head[row];
            head[row] = (int32_t)idx;
        }
    }
    const float *X = out_layer ? tr->Hb : tr->DHb;
    float *W = out_layer ? m->W2 : m->W1, *M = out_layer ? tr->M2 : tr->M1;
    float *V = out_layer ? tr->V2 : tr->V1, *g = ws->tmp;
    for (int64_t r = 0; r < nr; r++) {
        uint32_t row = ws->rows[r];
        memset(g, 0, sizeof(float) * (size_t)H);
        float gb = 0;
        for (int32_t i = head[row]; i >= 0; i = ws->next[i]) {
            v->axpy(ws->all[i].coef, X + (int64_t)ws->all[i].ex * H, g, H);
            gb += ws->all[i].coef;
        }
        head[row] = -1;
        v->adam(W + (int64_t)row * H, M + (int64_t)row * H, V + (int64_t)row * H, g, H, &tr->step,
                false);
        if (out_layer) adam_scalar(&m->b2[row], &tr->mb2[row], &tr->vb2[row], gb, &tr->step);
    }
}

/* Hogwild: partition p's rows from the shared gradient buffers and the touched lists. */
static void hogwild_rows(trainer *tr, int p, bool out_layer) {
    const pl_vec_ops *v = pl_vec();
    pl_xc_model *m = tr->m;
    int64_t H = tr->H;
    for (int u = 0; u < tr->nt; u++) {
        rowlist *l = out_layer ? &tr->w[u].t2[p] : &tr->w[u].t1[p];
        uint32_t *stamp = out_layer ? tr->stamp2 : tr->stamp1;
        for (int64_t k = 0; k < l->n; k++) {
            uint32_t j = l->v[k];
            if (stamp[j] == tr->batch_no) continue;
            stamp[j] = tr->batch_no;
            for (int x = 0; x < tr->nt; x++) (out_layer ? tr->w[x].f2 : tr->w[x].f1)[j] = 0;
            if (out_layer) {
                v->adam(m->W2 + (int64_t)j * H, tr->M2 + (int64_t)j * H, tr->V2 + (int64_t)j * H,
                        tr->G2s + (int64_t)j * H, H, &tr->step, true);
                adam_scalar(&m->b2[j], &tr->mb2[j], &tr->vb2[j], tr->gb2s[j], &tr->step);
                tr->gb2s[j] = 0;
            } else {
                v->adam(m->W1 + (int64_t)j * H, tr->M1 + (int64_t)j * H, tr->V1 + (int64_t)j * H,
                        tr->G1s + (int64_t)j * H, H, &tr->step, true);
            }
        }
    }
}

static void adam_task(void *ctx, int task, int thread) {
    trainer *tr = ctx;
    const pl_vec_ops *v = pl_vec();
    pl_xc_model *m = tr->m;
    worker *ws = &tr->w[thread];
    int p = task;
    int64_t H = tr->H;
    if (tr->o->dense) {
        int64_t r0 = tr->C * p / tr->parts, r1 = tr->C * (p + 1) / tr->parts;
        v->adam(m->W2 + r0 * H, tr->M2 + r0 * H, tr->V2 + r0 * H, tr->G2d + r0 * H, (r1 - r0) * H,
                &tr->step, false);
        for (int64_t j = r0; j < r1; j++)
            adam_scalar(&m->b2[j], &tr->mb2[j], &tr->vb2[j], tr->gb2d[j], &tr->step);
    } else if (tr->o->hogwild) {
        hogwild_rows(tr, p, true);
    } else {
        trip_rows(tr, ws, p, true);
    }
    if (tr->o->hogwild)
        hogwild_rows(tr, p, false);
    else
        trip_rows(tr, ws, p, false);
    if (p == 0) { /* the hidden bias: every example touches it */
        float *g = ws->tmp;
        if (tr->o->hogwild) {
            memcpy(g, tr->gb1s, sizeof(float) * (size_t)H);
            memset(tr->gb1s, 0, sizeof(float) * (size_t)H);
        } else {
            memset(g, 0, sizeof(float) * (size_t)H);
            for (int64_t e = 0; e < tr->bs; e++) v->axpy(1.0f, tr->DHb + e * H, g, H);
        }
        v->adam(m->b1, tr->mb1, tr->vb1, g, H, &tr->step, false);
    }
}

/* ---------------------------------------------------------------- LSH rebuild */

typedef struct rebuild_job {
    trainer *tr;
    int phase; /* 0: norms, 1: keys */
} rebuild_job;

static void rebuild_task(void *ctx, int task, int thread) {
    rebuild_job *j = ctx;
    trainer *tr = j->tr;
    const pl_xc_model *m = tr->m;
    int64_t H = tr->H, C = tr->C;
    int64_t r0 = C * task / tr->rebuild_tasks, r1 = C * (task + 1) / tr->rebuild_tasks;
    if (j->phase == 0) {
        for (int64_t r = r0; r < r1; r++) {
            const float *wr = m->W2 + r * H;
            float s = m->b2[r] * m->b2[r] + pl_vec()->dot(wr, wr, H);
            tr->norm[r] = sqrtf(s);
        }
        return;
    }
    /* MIPS-transformed [w, b] rows, hashed a block at a time */
    enum { RB = 256 };
    int64_t hd = H + 2;
    float *aug = malloc(sizeof(float) * RB * (size_t)hd),
          *x = malloc(sizeof(float) * (size_t)(H + 1));
    int L = tr->o->lsh.L;
    if (!aug || !x) {
        tr->w[thread].nomem = true;
    } else {
        for (int64_t b0 = r0; b0 < r1; b0 += RB) {
            int64_t nb = r1 - b0 < RB ? r1 - b0 : RB;
            for (int64_t r = 0; r < nb; r++) {
                memcpy(x, m->W2 + (b0 + r) * H, sizeof(float) * (size_t)H);
                x[H] = m->b2[b0 + r];
                if (tr->o->mips_ranges > 0) {
                    pl_lsh_mips_data(x, H + 1, tr->U[tr->range[b0 + r]], aug + r * hd);
                } else { /* cosine: the direction of [w, b] against [h, 1] */
                    memcpy(aug + r * hd, x, sizeof(float) * (size_t)(H + 1));
                    aug[r * hd + H + 1] = 0;
                }
            }
            if (pl_lsh_hash_rows(tr->hash, aug, hd, nb, tr->keys + b0 * L) != PL_OK)
                tr->w[thread].nomem = true;
        }
    }
    free(aug);
    free(x);
}

static pl_status rebuild(trainer *tr) {
    rebuild_job j = {tr, 0};
    if (tr->o->mips_ranges > 0) {
        pl_threadpool_run(tr->pool, rebuild_task, &j, tr->rebuild_tasks);
        pl_lsh_norm_ranges(tr->norm, tr->C, tr->o->mips_ranges, tr->range, tr->U);
    }
    j.phase = 1;
    pl_threadpool_run(tr->pool, rebuild_task, &j, tr->rebuild_tasks);
    for (int t = 0; t < tr->nt; t++)
        if (tr->w[t].nomem)
            return pl_error(PL_ERR_NOMEM, "xc: out of memory rebuilding the LSH tables");
    return pl_lsh_index_publish(tr->index, tr->keys);
}

/* ---------------------------------------------------------------- dense output layer */

typedef struct dense_job {
    trainer *tr;
    int phase;
} dense_job;

static void dense_hidden_task(void *ctx, int task, int thread) {
    dense_job *j = ctx;
    trainer *tr = j->tr;
    const pl_xc_data *d = tr->d;
    int64_t i = tr->batch[task];
    pl_xc_hidden(tr->m, d->feat + d->row[i], d->val + d->row[i], d->row[i + 1] - d->row[i],
                 tr->Hb + (int64_t)task * tr->H);
}

/* Phase 0: logits of one label chunk and, per example, the chunk's max and sum of
 * exponentials. Phase 1: softmax gradient of the chunk, its weight gradients, and its
 * share of dH. */
static void dense_chunk_task(void *ctx, int task, int thread) {
    dense_job *j = ctx;
    trainer *tr = j->tr;
    const pl_vec_ops *v = pl_vec();
    pl_xc_model *m = tr->m;
    int64_t H = tr->H, C = tr->C, B = tr->bs;
    int64_t c0 = (int64_t)task * tr->chunk, nc = C - c0 < tr->chunk ? C - c0 : tr->chunk;
    float *Z = tr->Z;
    if (j->phase == 0) {
        v->sgemm(false, true, B, nc, H, 1.0f, tr->Hb, H, m->W2 + c0 * H, H, 0.0f, Z + c0, C);
        for (int64_t r = 0; r < B; r++) {
            float *z = Z + r * C + c0;
            const float *bb = m->b2 + c0;
            float mx = -INFINITY;
            int64_t arg = 0;
            for (int64_t c = 0; c < nc; c++) {
                z[c] += bb[c];
                if (z[c] > mx) mx = z[c], arg = c;
            }
            tr->rarg[(int64_t)task * B + r] = (uint32_t)(c0 + arg);
            float s = 0;
            for (int64_t c = 0; c < nc; c++) s += expf(z[c] - mx);
            tr->rmax[(int64_t)task * B + r] = mx;
            tr->rsum[(int64_t)task * B + r] = s;
        }
        return;
    }
    const pl_xc_data *d = tr->d;
    for (int64_t r = 0; r < B; r++) {
        float *z = Z + r * C + c0;
        float M = tr->rowM[r], inv = 1.0f / tr->rowS[r];
        for (int64_t c = 0; c < nc; c++) z[c] = tr->scale * expf(z[c] - M) * inv;
        int64_t i = tr->batch[r];
        int64_t ny = d->lrow[i + 1] - d->lrow[i];
        for (int64_t k = 0; k < ny; k++) {
            int64_t l = d->lab[d->lrow[i] + k];
            if (l >= c0 && l < c0 + nc) z[l - c0] -= tr->scale / (float)ny;
        }
    }
    v->sgemm(true, false, nc, H, B, 1.0f, Z + c0, C, tr->Hb, H, 0.0f, tr->G2d + c0 * H, H);
    for (int64_t c = 0; c < nc; c++) tr->gb2d[c0 + c] = 0;
    for (int64_t r = 0; r < B; r++) v->axpy(1.0f, Z + r * C + c0, tr->gb2d + c0, nc);
    v->sgemm(false, false, B, H, nc, 1.0f, Z + c0, C, m->W2 + c0 * H, H, 0.0f,
             tr->dHp + (int64_t)task * B * H, H);
}

static void dense_back_task(void *ctx, int task, int thread) {
    dense_job *j = ctx;
    trainer *tr = j->tr;
    worker *w = &tr->w[thread];
    const pl_xc_data *d = tr->d;
    int64_t H = tr->H, B = tr->bs;
    int64_t i = tr->batch[task];
    memset(w->dh, 0, sizeof(float) * (size_t)H);
    for (int64_t c = 0; c < tr->nchunks; c++)
        pl_vec()->axpy(1.0f, tr->dHp + (c * B + task) * H, w->dh, H);
    hidden_backward(tr, w, task, d->feat + d->row[i], d->val + d->row[i],
                    d->row[i + 1] - d->row[i]);
}

static void dense_batch(trainer *tr, double *loss, int64_t *correct) {
    int64_t B = tr->bs, C = tr->C;
    dense_job j = {tr, 0};
    pl_threadpool_run(tr->pool, dense_hidden_task, &j, (int)B);
    pl_threadpool_run(tr->pool, dense_chunk_task, &j, (int)tr->nchunks);
    const pl_xc_data *d = tr->d;
    for (int64_t r = 0; r < B; r++) {
        float M = -INFINITY;
        uint32_t arg = 0;
        for (int64_t c = 0; c < tr->nchunks; c++)
            if (tr->rmax[c * B + r] > M) M = tr->rmax[c * B + r], arg = tr->rarg[c * B + r];
        double S = 0;
        for (int64_t c = 0; c < tr->nchunks; c++)
            S += (double)tr->rsum[c * B + r] * exp((double)tr->rmax[c * B + r] - M);
        tr->rowM[r] = M;
        tr->rowS[r] = (float)S;
        int64_t i = tr->batch[r];
        int64_t ny = d->lrow[i + 1] - d->lrow[i];
        for (int64_t k = 0; k < ny; k++) {
            *loss -= ((double)tr->Z[r * C + d->lab[d->lrow[i] + k]] - M - log(S)) / (double)ny;
            *correct += d->lab[d->lrow[i] + k] == arg;
        }
    }
    j.phase = 1;
    pl_threadpool_run(tr->pool, dense_chunk_task, &j, (int)tr->nchunks);
    pl_threadpool_run(tr->pool, dense_back_task, &j, (int)B);
}

/* ---------------------------------------------------------------- setup */

static void free_trainer(trainer *tr) {
    if (tr->w) {
        for (int t = 0; t < tr->nt; t++) {
            worker *w = &tr->w[t];
            free(w->h);
            free(w->dh);
            free(w->q);
            free(w->keys);
            free(w->hscratch);
            pl_lsh_sampler_destroy(w->sampler);
            free(w->cand);
            free(w->active);
            free(w->z);
            free(w->mark);
            free(w->f2);
            free(w->f1);
            for (int p = 0; p < tr->parts && w->t2; p++) free(w->t2[p].v);
            for (int p = 0; p < tr->parts && w->t1; p++) free(w->t1[p].v);
            for (int p = 0; p < tr->parts && w->p2; p++) free(w->p2[p].v);
            for (int p = 0; p < tr->parts && w->p1; p++) free(w->p1[p].v);
            free(w->t2);
            free(w->t1);
            free(w->p2);
            free(w->p1);
            free(w->all);
            free(w->next);
            free(w->rows);
            free(w->tmp);
        }
        free(tr->w);
    }
    free(tr->M2);
    free(tr->V2);
    free(tr->mb2);
    free(tr->vb2);
    free(tr->M1);
    free(tr->V1);
    free(tr->mb1);
    free(tr->vb1);
    free(tr->stamp2);
    free(tr->stamp1);
    free(tr->head2);
    free(tr->head1);
    free(tr->DHb);
    free(tr->G2s);
    free(tr->gb2s);
    free(tr->G1s);
    free(tr->gb1s);
    pl_lsh_index_destroy(tr->index);
    pl_lsh_hash_destroy(tr->own_hash);
    pl_lsh_live_destroy(tr->live);
    free(tr->keys);
    free(tr->norm);
    free(tr->range);
    free(tr->Hb);
    free(tr->Z);
    free(tr->G2d);
    free(tr->gb2d);
    free(tr->dHp);
    free(tr->rmax);
    free(tr->rsum);
    free(tr->rarg);
    free(tr->rowM);
    free(tr->rowS);
    pl_threadpool_destroy(tr->pool);
}

static pl_status setup(trainer *tr) {
    const pl_xc_train_opts *o = tr->o;
    int64_t H = tr->H, C = tr->C, F = tr->F, B = o->batch;
    bool lsh = !o->dense, hog = o->hogwild;
    tr->w = calloc((size_t)tr->nt, sizeof(worker));
    if (!tr->w) return PL_ERR_NOMEM;
    tr->M2 = calloc((size_t)(C * H), sizeof(float));
    tr->V2 = calloc((size_t)(C * H), sizeof(float));
    tr->mb2 = calloc((size_t)C, sizeof(float));
    tr->vb2 = calloc((size_t)C, sizeof(float));
    tr->M1 = calloc((size_t)(F * H), sizeof(float));
    tr->V1 = calloc((size_t)(F * H), sizeof(float));
    tr->mb1 = calloc((size_t)H, sizeof(float));
    tr->vb1 = calloc((size_t)H, sizeof(float));
    tr->Hb = malloc(sizeof(float) * (size_t)(B * H));
    tr->DHb = malloc(sizeof(float) * (size_t)(B * H));
    if (!tr->M2 || !tr->V2 || !tr->mb2 || !tr->vb2 || !tr->M1 || !tr->V1 || !tr->mb1 || !tr->vb1 ||
        !tr->Hb || !tr->DHb)
        return PL_ERR_NOMEM;
    if (hog) {
        tr->stamp2 = calloc((size_t)C, sizeof(uint32_t));
        tr->stamp1 = calloc((size_t)F, sizeof(uint32_t));
        tr->G2s = lsh ? calloc((size_t)(C * H), sizeof(float)) : NULL;
        tr->gb2s = lsh ? calloc((size_t)C, sizeof(float)) : NULL;
        tr->G1s = calloc((size_t)(F * H), sizeof(float));
        tr->gb1s = calloc((size_t)H, sizeof(float));
        if (!tr->stamp2 || !tr->stamp1 || (lsh && (!tr->G2s || !tr->gb2s)) || !tr->G1s || !tr->gb1s)
            return PL_ERR_NOMEM;
    } else {
        tr->head2 = malloc(sizeof(int32_t) * (size_t)C);
        tr->head1 = malloc(sizeof(int32_t) * (size_t)F);
        if (!tr->head2 || !tr->head1) return PL_ERR_NOMEM;
        for (int64_t j = 0; j < C; j++) tr->head2[j] = -1;
        for (int64_t f = 0; f < F; f++) tr->head1[f] = -1;
    }
    int64_t act = tr->max_active + 1;
    for (int t = 0; t < tr->nt; t++) {
        worker *w = &tr->w[t];
        w->dh = malloc(sizeof(float) * (size_t)H);
        w->tmp = malloc(sizeof(float) * (size_t)H);
        w->rng = pl_hash3(o->seed, 0x77, (uint64_t)t);
        if (!w->dh || !w->tmp) return PL_ERR_NOMEM;
        if (hog) {
            w->G2 = tr->G2s;
            w->gb2 = tr->gb2s;
            w->G1 = tr->G1s;
            w->gb1 = tr->gb1s;
            w->f2 = calloc((size_t)C, 1);
            w->f1 = calloc((size_t)F, 1);
            w->t2 = calloc((size_t)tr->parts, sizeof(rowlist));
            w->t1 = calloc((size_t)tr->parts, sizeof(rowlist));
            if (!w->f2 || !w->f1 || !w->t2 || !w->t1) return PL_ERR_NOMEM;
        } else {
            w->p2 = calloc((size_t)tr->parts, sizeof(triplist));
            w->p1 = calloc((size_t)tr->parts, sizeof(triplist));
            if (!w->p2 || !w->p1) return PL_ERR_NOMEM;
        }
        if (lsh) {
            w->h = malloc(sizeof(float) * (size_t)H);
            w->q = malloc(sizeof(float) * (size_t)(H + 2));
            w->keys = malloc(sizeof(uint32_t) * (size_t)o->lsh.L);
            w->cand = malloc(sizeof(uint32_t) * (size_t)act);
            w->active = malloc(sizeof(uint32_t) * (size_t)act);
            w->z = malloc(sizeof(float) * (size_t)act);
            w->mark = calloc((size_t)C, sizeof(uint32_t));
            if (!w->h || !w->q || !w->keys || !w->cand || !w->active || !w->z || !w->mark)
                return PL_ERR_NOMEM;
        }
    }
    if (lsh) {
        if (o->source != PL_XC_EXAMPLES) {
            PL_TRY(pl_lsh_index_create(&o->lsh, H + 2, C, &tr->index));
            tr->hash = pl_lsh_index_hash(tr->index);
        } else {
            PL_TRY(pl_lsh_hash_create(&o->lsh, H + 2, &tr->own_hash));
            tr->hash = tr->own_hash;
        }
        if (o->source != PL_XC_NEURONS) PL_TRY(pl_lsh_live_create(&o->lsh, &tr->live));
        size_t sb = pl_lsh_hash_scratch_bytes(tr->hash);
        int sl = o->source == PL_XC_BOTH ? 2 * o->lsh.L : o->lsh.L;
        for (int t = 0; t < tr->nt; t++) {
            worker *w = &tr->w[t];
            w->hscratch = aligned_alloc(64, (sb + 63) / 64 * 64);
            if (!w->hscratch) return PL_ERR_NOMEM;
            memset(w->hscratch, 0, sb);
            PL_TRY(pl_lsh_sampler_create(C, sl, &w->sampler));
        }
        tr->keys = malloc(sizeof(uint32_t) * (size_t)(C * o->lsh.L));
        tr->rebuild_tasks = (int)(C / 2048 + 1);
        if (tr->rebuild_tasks > 256) tr->rebuild_tasks = 256;
        tr->norm = malloc(sizeof(float) * (size_t)C);
        tr->range = calloc((size_t)C, 1);
        if (!tr->keys || !tr->norm || !tr->range) return PL_ERR_NOMEM;
    } else {
        tr->chunk = 2048;
        tr->nchunks = (C + tr->chunk - 1) / tr->chunk;
        tr->Z = malloc(sizeof(float) * (size_t)(B * C));
        tr->G2d = malloc(sizeof(float) * (size_t)(C * H));
        tr->gb2d = malloc(sizeof(float) * (size_t)C);
        tr->dHp = malloc(sizeof(float) * (size_t)(tr->nchunks * B * H));
        tr->rmax = malloc(sizeof(float) * (size_t)(tr->nchunks * B));
        tr->rsum = malloc(sizeof(float) * (size_t)(tr->nchunks * B));
        tr->rarg = malloc(sizeof(uint32_t) * (size_t)(tr->nchunks * B));
        tr->rowM = malloc(sizeof(float) * (size_t)B);
        tr->rowS = malloc(sizeof(float) * (size_t)B);
        if (!tr->Z || !tr->G2d || !tr->gb2d || !tr->dHp || !tr->rmax || !tr->rsum || !tr->rarg ||
            !tr->rowM || !tr->rowS)
            return PL_ERR_NOMEM;
    }
    return PL_OK;
}

static pl_status check_opts(const pl_xc_train_opts *o) {
    if (o->epochs < 1)
        return pl_error(PL_ERR_ARGUMENT, "xc: epochs = %d, expected >= 1", o->epochs);
    if (o->batch < 1 || o->batch > 1 << 20)
        return pl_error(PL_ERR_ARGUMENT, "xc: batch = %d, expected 1..2^20", o->batch);
    if (!(o->lr > 0) || !(o->beta1 >= 0 && o->beta1 < 1) || !(o->beta2 >= 0 && o->beta2 < 1) ||
        !(o->eps > 0))
        return pl_error(PL_ERR_ARGUMENT, "xc: Adam needs lr > 0, 0 <= beta < 1, eps > 0");
    if (o->max_active < 0 || o->min_active < 0)
        return pl_error(PL_ERR_ARGUMENT, "xc: negative active-neuron limits");
    if (o->mips_ranges < 0 || o->mips_ranges > 255)
        return pl_error(PL_ERR_ARGUMENT, "xc: %d norm ranges, expected 0..255", o->mips_ranges);
    if (!o->dense) PL_TRY(pl_lsh_opts_check(&o->lsh));
    if (o->source != PL_XC_NEURONS && o->source != PL_XC_EXAMPLES && o->source != PL_XC_BOTH)
        return pl_error(PL_ERR_ARGUMENT, "xc: unknown LSH source %d", (int)o->source);
    return PL_OK;
}

/* ---------------------------------------------------------------- the loop */

/* How well the tables retrieve what matters: the share of the exact top-1 / top-5
 * labels of test points found among their LSH candidates. */
static void lsh_recall(trainer *tr, const pl_xc_data *test, const uint32_t *top5, int64_t n,
                       pl_xc_report *rep) {
    worker *w = &tr->w[0];
    int64_t H = tr->H, hit1 = 0, hit5 = 0, cnt = 0;
    const pl_lsh_tables *t = tr->index ? pl_lsh_index_acquire(tr->index) : NULL;
    if (n > 2000) n = 2000;
    for (int64_t i = 0; i < n && (t || tr->live); i++) {
        pl_xc_hidden(tr->m, test->feat + test->row[i], test->val + test->row[i],
                     test->row[i + 1] - test->row[i], w->h);
        memcpy(w->q, w->h, sizeof(float) * (size_t)H);
        w->q[H] = 1.0f;
        w->q[H + 1] = 0.0f;
        pl_lsh_hash_dense(tr->hash, w->q, w->keys, w->hscratch);
        int64_t nc = pl_lsh_sample_both(t, tr->live, w->keys, &tr->sample, w->sampler, w->cand,
                                        tr->max_active);
        if (++w->stamp == 0) {
            memset(w->mark, 0, sizeof(uint32_t) * (size_t)tr->C);
            w->stamp = 1;
        }
        for (int64_t k = 0; k < nc; k++) w->mark[w->cand[k]] = w->stamp;
        for (int k = 0; k < 5; k++) {
            uint32_t l = top5[i * 5 + k];
            bool in = l < tr->C && w->mark[l] == w->stamp;
            hit5 += in;
            if (k == 0) hit1 += in;
        }
        cnt++;
    }
    if (t) pl_lsh_index_release(tr->index, t);
    rep->recall1 = cnt ? (double)hit1 / (double)cnt : 0;
    rep->recall5 = cnt ? (double)hit5 / (5.0 * (double)cnt) : 0;
}

static pl_status evaluate_now(trainer *tr, const pl_xc_data *test, pl_xc_report *rep) {
    if (!test) return PL_OK;
    int64_t n = tr->o->eval_max > 0 && tr->o->eval_max < test->n ? tr->o->eval_max : test->n;
    uint32_t *top5 = tr->hash ? malloc(sizeof(uint32_t) * 5 * (size_t)(n ? n : 1)) : NULL;
    pl_status s = pl_xc_evaluate_pool(tr->m, test, tr->o->eval_max, tr->pool, &rep->eval, top5);
    if (s == PL_OK && top5) lsh_recall(tr, test, top5, n, rep);
    free(top5);
    if (s == PL_OK && tr->o->on_eval) tr->o->on_eval(tr->o->ctx, rep);
    return s;
}

pl_status pl_xc_train(pl_xc_model *m, const pl_xc_data *train, const pl_xc_data *test,
                      const pl_xc_train_opts *o) {
    PL_TRY(check_opts(o));
    if (train->n_features > m->n_features || train->n_labels > m->n_labels)
        return pl_error(
            PL_ERR_INPUT,
            "xc: the training data has %lld features and %lld labels, the model %lld and %lld",
            (long long)train->n_features, (long long)train->n_labels, (long long)m->n_features,
            (long long)m->n_labels);
    trainer tr;
    memset(&tr, 0, sizeof tr);
    tr.m = m;
    tr.d = train;
    tr.o = o;
    tr.H = m->hidden;
    tr.C = m->n_labels;
    tr.F = m->n_features;
    tr.nt = o->threads > 0 ? o->threads : pl_cpu_default_threads();
    tr.pool = tr.nt > 1 ? pl_threadpool_create(tr.nt) : NULL;
    tr.nt = pl_threadpool_size(tr.pool);
    tr.parts = 4 * tr.nt;
    if (tr.parts > tr.C) tr.parts = (int)tr.C;
    if (tr.parts > tr.F) tr.parts = (int)tr.F;
    tr.max_active = o->max_active;
    if (!tr.max_active) {
        tr.max_active = tr.C / 200;
        tr.max_active = tr.max_active < 256 ? 256 : tr.max_active > 2048 ? 2048 : tr.max_active;
    }
    if (tr.max_active > tr.C) tr.max_active = tr.C;
    tr.sample = o->sample;
    if (tr.sample.mode == PL_LSH_TOPK && tr.sample.top_k <= 0)
        tr.sample.top_k = (int)(tr.max_active < INT32_MAX ? tr.max_active : INT32_MAX);
    tr.min_active = o->min_active;
    pl_status s = setup(&tr);
    if (s != PL_OK) {
        if (s == PL_ERR_NOMEM)
            s = pl_error(PL_ERR_NOMEM, "xc: out of memory for training a %lld-%lld-%lld network",
                         (long long)tr.F, (long long)tr.H, (long long)tr.C);
        free_trainer(&tr);
        return s;
    }
    int64_t n = train->n, B = o->batch;
    uint32_t *perm = malloc(sizeof(uint32_t) * (size_t)(n ? n : 1));
    if (!perm) s = pl_error(PL_ERR_NOMEM, "xc: out of memory");

    pl_lsh_schedule sched;
    pl_lsh_schedule_init(&sched, o->rebuild_first, o->rebuild_growth, o->rebuild_max);
    uint64_t rng = o->seed ^ 0xbadc0ffeull;
    pl_xc_report rep;
    memset(&rep, 0, sizeof rep);
    rep.batches_per_epoch = (n + B - 1) / B;
    double train_time = 0, loss_acc = 0;
    int64_t ex_acc = 0, act_acc = 0, step = 0;
    bool stop = false;
    if (s == PL_OK && tr.index) {
        double t0 = pl_xc_now();
        s = rebuild(&tr);
        rep.rebuilds++;
        rep.rebuild_seconds += pl_xc_now() - t0;
        train_time += pl_xc_now() - t0;
    }
    for (int epoch = 1; epoch <= o->epochs && s == PL_OK && !stop; epoch++) {
        rep.epoch = epoch;
        rep.epoch_batch = rep.epoch_examples = rep.epoch_correct = 0;
        rep.epoch_loss = rep.epoch_seconds = 0;
        for (int64_t i = 0; i < n; i++) perm[i] = (uint32_t)i;
        for (int64_t i = n - 1; i > 0; i--) {
            int64_t j = (int64_t)pl_rng_below(&rng, (uint64_t)i + 1);
            uint32_t t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        for (int64_t b0 = 0; b0 < n && s == PL_OK; b0 += B) {
            double t0 = pl_xc_now();
            tr.batch = perm + b0;
            tr.bs = n - b0 < B ? n - b0 : B;
            tr.scale = 1.0f / (float)tr.bs;
            step++;
            tr.batch_no = (uint32_t)step;
            if (tr.batch_no == 0) { /* wrapped: restart the stamps */
                if (tr.stamp1) memset(tr.stamp1, 0, sizeof(uint32_t) * (size_t)tr.F);
                if (tr.stamp2) memset(tr.stamp2, 0, sizeof(uint32_t) * (size_t)tr.C);
                tr.batch_no = 1;
            }
            double bc1 = 1 - pow(o->beta1, (double)step), bc2 = 1 - pow(o->beta2, (double)step);
            tr.step = (pl_adam_step){(float)(o->lr * sqrt(bc2) / bc1), o->beta1, o->beta2, o->eps};
            for (int t = 0; t < tr.nt; t++) {
                worker *w = &tr.w[t];
                for (int p = 0; p < tr.parts; p++) {
                    if (w->t2) w->t2[p].n = w->t1[p].n = 0;
                    if (w->p2) w->p2[p].n = w->p1[p].n = 0;
                }
                w->loss = 0;
                w->examples = w->active_sum = w->correct = 0;
            }
            double batch_loss = 0;
            int64_t batch_ex = 0, batch_correct = 0;
            if (o->dense) {
                dense_batch(&tr, &batch_loss, &batch_correct);
                batch_ex = tr.bs;
                act_acc += tr.bs * tr.C;
            } else {
                if (tr.index && step > 1 && pl_lsh_schedule_due(&sched, step)) {
                    double r0 = pl_xc_now();
                    if ((s = rebuild(&tr)) != PL_OK) break;
                    rep.rebuilds++;
                    rep.rebuild_seconds += pl_xc_now() - r0;
                }
                tr.tables = tr.index ? pl_lsh_index_acquire(tr.index) : NULL;
                int64_t per = (tr.bs + 4 * tr.nt - 1) / (4 * tr.nt);
                if (per < 1) per = 1;
                span_job sj = {&tr, per};
                pl_threadpool_run(tr.pool, examples_task, &sj, (int)((tr.bs + per - 1) / per));
                if (tr.tables) pl_lsh_index_release(tr.index, tr.tables);
                tr.tables = NULL;
                for (int t = 0; t < tr.nt; t++) {
                    batch_loss += tr.w[t].loss;
                    batch_ex += tr.w[t].examples;
                    batch_correct += tr.w[t].correct;
                    act_acc += tr.w[t].active_sum;
                }
            }
            for (int t = 0; t < tr.nt; t++)
                if (tr.w[t].nomem) s = pl_error(PL_ERR_NOMEM, "xc: out of memory during training");
            if (s != PL_OK) break;
            pl_threadpool_run(tr.pool, adam_task, &tr, tr.parts);
            for (int t = 0; t < tr.nt; t++)
                if (tr.w[t].nomem) s = pl_error(PL_ERR_NOMEM, "xc: out of memory during training");
            double dt = pl_xc_now() - t0;
            train_time += dt;
            loss_acc += batch_loss;
            ex_acc += batch_ex;
            rep.epoch_batch++;
            rep.epoch_examples += batch_ex;
            rep.epoch_loss += batch_loss;
            rep.epoch_correct += batch_correct;
            rep.epoch_seconds += dt;
            rep.batch = step;
            rep.seconds = train_time;
            rep.loss = ex_acc ? loss_acc / (double)ex_acc : 0;
            rep.active = ex_acc ? (double)act_acc / (double)ex_acc : 0;
            if (o->on_batch) o->on_batch(o->ctx, &rep);
            bool last = b0 + B >= n;
            stop = o->time_limit > 0 && train_time >= o->time_limit;
            if ((o->eval_every > 0 && step % o->eval_every == 0) || last || stop) {
                s = evaluate_now(&tr, test, &rep);
                loss_acc = 0;
                ex_acc = act_acc = 0;
            }
            if (stop) break;
        }
    }
    free(perm);
    free_trainer(&tr);
    return s;
}
