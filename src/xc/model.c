/* model.c -- the XC network's weights, its hidden layer, and exact evaluation by
 * precision at k (every label scored with blocked GEMM, top 5 kept per point). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lsh/rng.h"
#include "lsh/vec.h"
#include "xc/xc_impl.h"

pl_status pl_xc_model_create(int64_t n_features, int64_t hidden, int64_t n_labels, uint64_t seed,
                             pl_xc_model **out) {
    *out = NULL;
    if (n_features < 1 || hidden < 1 || n_labels < 1 || hidden > 65536 || n_features > UINT32_MAX ||
        n_labels > UINT32_MAX)
        return pl_error(PL_ERR_ARGUMENT, "xc: a network of %lld features, %lld hidden, %lld labels",
                        (long long)n_features, (long long)hidden, (long long)n_labels);
    if ((double)n_features * hidden > 4e9 || (double)n_labels * hidden > 4e9)
        return pl_error(PL_ERR_ARGUMENT, "xc: %lld x %lld weights are more than supported",
                        (long long)(n_features > n_labels ? n_features : n_labels),
                        (long long)hidden);
    pl_xc_model *m = calloc(1, sizeof *m);
    if (!m) return pl_error(PL_ERR_NOMEM, "xc: out of memory");
    m->n_features = n_features;
    m->hidden = hidden;
    m->n_labels = n_labels;
    m->W1 = malloc(sizeof(float) * (size_t)(n_features * hidden));
    m->b1 = calloc((size_t)hidden, sizeof(float));
    m->W2 = malloc(sizeof(float) * (size_t)(n_labels * hidden));
    m->b2 = calloc((size_t)n_labels, sizeof(float));
    if (!m->W1 || !m->b1 || !m->W2 || !m->b2) {
        pl_xc_model_destroy(m);
        return pl_error(PL_ERR_NOMEM, "xc: out of memory for a %lld-%lld-%lld network",
                        (long long)n_features, (long long)hidden, (long long)n_labels);
    }
    uint64_t rng = seed ^ 0x5eedf00dull;
    float a1 = sqrtf(6.0f / (float)(n_features + hidden));
    float a2 = sqrtf(6.0f / (float)(n_labels + hidden));
    for (int64_t i = 0; i < n_features * hidden; i++) m->W1[i] = a1 * (2 * pl_rng_float(&rng) - 1);
    for (int64_t i = 0; i < n_labels * hidden; i++) m->W2[i] = a2 * (2 * pl_rng_float(&rng) - 1);
    *out = m;
    return PL_OK;
}

void pl_xc_model_destroy(pl_xc_model *m) {
    if (!m) return;
    free(m->W1);
    free(m->b1);
    free(m->W2);
    free(m->b2);
    free(m);
}

size_t pl_xc_model_bytes(const pl_xc_model *m) {
    return sizeof(float) * (size_t)((m->n_features + m->n_labels + 1) * m->hidden + m->n_labels);
}

void pl_xc_hidden(const pl_xc_model *m, const uint32_t *feat, const float *val, int64_t nnz,
                  float *h) {
    const pl_vec_ops *v = pl_vec();
    int64_t H = m->hidden;
    memcpy(h, m->b1, sizeof(float) * (size_t)H);
    for (int64_t k = 0; k < nnz; k++) v->axpy(val[k], m->W1 + (int64_t)feat[k] * H, h, H);
    for (int64_t j = 0; j < H; j++) h[j] = h[j] > 0 ? h[j] : 0;
}

/* ---------------------------------------------------------------- evaluation */

enum { EVAL_QB = 64, EVAL_OB = 4096, EVAL_K = 5 };

typedef struct eval_job {
    const pl_xc_model *m;
    const pl_xc_data *d;
    int64_t n;
    float **hbuf, **zbuf; /* per thread */
    double *hits;         /* per task: hits in top 1, 3, 5 */
    uint32_t *top5;       /* optional: n x 5 */
    bool nomem;
} eval_job;

static void eval_task(void *ctx, int task, int thread) {
    eval_job *j = ctx;
    const pl_xc_model *m = j->m;
    const pl_xc_data *d = j->d;
    int64_t H = m->hidden, C = m->n_labels;
    float *Hb = j->hbuf[thread], *Z = j->zbuf[thread];
    if (!Hb || !Z) {
        j->nomem = true;
        return;
    }
    int64_t q0 = (int64_t)task * EVAL_QB;
    int64_t qb = j->n - q0 < EVAL_QB ? j->n - q0 : EVAL_QB;
    uint32_t lab[EVAL_QB][EVAL_K];
    float sc[EVAL_QB][EVAL_K];
    for (int64_t r = 0; r < qb; r++) {
        int64_t i = q0 + r;
        pl_xc_hidden(m, d->feat + d->row[i], d->val + d->row[i], d->row[i + 1] - d->row[i],
                     Hb + r * H);
        for (int k = 0; k < EVAL_K; k++) {
            lab[r][k] = UINT32_MAX;
            sc[r][k] = -INFINITY;
        }
    }
    const pl_vec_ops *v = pl_vec();
    for (int64_t o0 = 0; o0 < C; o0 += EVAL_OB) {
        int64_t ob = C - o0 < EVAL_OB ? C - o0 : EVAL_OB;
        v->sgemm(false, true, qb, ob, H, 1.0f, Hb, H, m->W2 + o0 * H, H, 0.0f, Z, ob);
        const float *bias = m->b2 + o0;
        for (int64_t r = 0; r < qb; r++) {
            const float *z = Z + r * ob;
            float th = sc[r][EVAL_K - 1];
            for (int64_t c = 0; c < ob; c++) {
                float s = z[c] + bias[c];
                if (s > th) {
                    pl_xc_topk_push(EVAL_K, lab[r], sc[r], (uint32_t)(o0 + c), s);
                    th = sc[r][EVAL_K - 1];
                }
            }
        }
    }
    double h1 = 0, h3 = 0, h5 = 0;
    for (int64_t r = 0; r < qb; r++) {
        int64_t i = q0 + r;
        if (j->top5) memcpy(j->top5 + i * EVAL_K, lab[r], sizeof lab[r]);
        const uint32_t *y = d->lab + d->lrow[i];
        int64_t ny = d->lrow[i + 1] - d->lrow[i];
        for (int k = 0; k < EVAL_K; k++) {
            bool hit = false;
            for (int64_t t = 0; t < ny && !hit; t++) hit = y[t] == lab[r][k];
            if (!hit) continue;
            if (k < 1) h1 += 1;
            if (k < 3) h3 += 1;
            h5 += 1;
        }
    }
    j->hits[task * 3] = h1;
    j->hits[task * 3 + 1] = h3;
    j->hits[task * 3 + 2] = h5;
}

pl_status pl_xc_evaluate_pool(const pl_xc_model *m, const pl_xc_data *d, int64_t max_points,
                              pl_threadpool *pool, pl_xc_eval *out, uint32_t *top5) {
    memset(out, 0, sizeof *out);
    if (d->n_labels > m->n_labels || d->n_features > m->n_features)
        return pl_error(
            PL_ERR_INPUT,
            "xc: the test data has %lld features and %lld labels, the model %lld and %lld",
            (long long)d->n_features, (long long)d->n_labels, (long long)m->n_features,
            (long long)m->n_labels);
    int64_t n = max_points > 0 && max_points < d->n ? max_points : d->n;
    if (n == 0) return PL_OK;
    int nt = pl_threadpool_size(pool);
    int64_t ntasks = (n + EVAL_QB - 1) / EVAL_QB;
    if (ntasks > 1 << 30) return pl_error(PL_ERR_ARGUMENT, "xc: too many test points");
    eval_job j = {m, d, n, NULL, NULL, NULL, top5, false};
    j.hbuf = calloc((size_t)nt, sizeof(float *));
    j.zbuf = calloc((size_t)nt, sizeof(float *));
    j.hits = calloc((size_t)ntasks * 3, sizeof(double));
    pl_status s = PL_OK;
    if (!j.hbuf || !j.zbuf || !j.hits) {
        s = pl_error(PL_ERR_NOMEM, "xc: out of memory for evaluation");
        goto done;
    }
    for (int t = 0; t < nt; t++) {
        j.hbuf[t] = malloc(sizeof(float) * EVAL_QB * (size_t)m->hidden);
        j.zbuf[t] = malloc(sizeof(float) * EVAL_QB * EVAL_OB);
    }
    pl_threadpool_run(pool, eval_task, &j, (int)ntasks);
    if (j.nomem) {
        s = pl_error(PL_ERR_NOMEM, "xc: out of memory for evaluation");
        goto done;
    }
    double h1 = 0, h3 = 0, h5 = 0;
    for (int64_t t = 0; t < ntasks; t++) {
        h1 += j.hits[t * 3];
        h3 += j.hits[t * 3 + 1];
        h5 += j.hits[t * 3 + 2];
    }
    out->n = n;
    out->p1 = h1 / (double)n;
    out->p3 = h3 / (3.0 * (double)n);
    out->p5 = h5 / (5.0 * (double)n);
done:
    if (j.hbuf)
        for (int t = 0; t < nt; t++) free(j.hbuf[t]);
    if (j.zbuf)
        for (int t = 0; t < nt; t++) free(j.zbuf[t]);
    free(j.hbuf);
    free(j.zbuf);
    free(j.hits);
    return s;
}

pl_status pl_xc_evaluate(const pl_xc_model *m, const pl_xc_data *d, int64_t max_points, int threads,
                         pl_xc_eval *out) {
    pl_threadpool *pool = threads > 1 ? pl_threadpool_create(threads) : NULL;
    pl_status s = pl_xc_evaluate_pool(m, d, max_points, pool, out, NULL);
    pl_threadpool_destroy(pool);
    return s;
}
