/* models.c -- a served model: its pillar sessions, a job queue and the batcher thread
 * that runs queued requests, alone or concatenated along dim 0 (dynamic batching). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "models.h"

/* Sessions are kept per set of input shapes: one for each preferred batch size (planned
 * at start-up when the other dimensions are static) plus a few for other shapes, least
 * recently used first out. Re-planning a session for a new batch size costs several
 * runs, so batches are formed at the preferred sizes only (powers of two and
 * --max-batch), never by switching one session between sizes. */
#define SRV_EXTRA_SESSIONS 3
#define SRV_MAX_SIZES 16

typedef struct sess_slot {
    pillar_session *s;
    int64_t *key; /* per input: ndim, dims...; NULL for a session not yet run */
    size_t keylen;
    uint64_t used;
} sess_slot;

struct srv_model {
    char *name, *path;
    pillar_model *model;
    srv_sig sig;
    const char **in_names;
    bool batchable;
    bool static_rest; /* every input dimension but the batch one is known */
    int threads;
    int max_batch, timeout_ms, max_queue;
    int64_t sizes[SRV_MAX_SIZES]; /* preferred batch sizes, ascending */
    int nsizes;
    double size_item_s[SRV_MAX_SIZES]; /* measured seconds per item at each size (average) */
    int size_runs[SRV_MAX_SIZES];
    uint64_t size_last[SRV_MAX_SIZES]; /* run number of the last measurement */
    uint64_t runs;
    sess_slot *slots;
    int nslots;
    uint64_t tick;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    srv_job *head, *tail;
    int nqueued, arriving;
    bool stop, started;
    pthread_t thread;
    srv_stats stats;
};

double srv_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

const char *srv_model_name(const srv_model *m) {
    return m->name;
}
const srv_sig *srv_model_sig(const srv_model *m) {
    return &m->sig;
}
srv_stats *srv_model_stats(srv_model *m) {
    return &m->stats;
}
bool srv_model_batchable(const srv_model *m) {
    return m->batchable;
}

int srv_model_queued(srv_model *m) {
    pthread_mutex_lock(&m->mu);
    int n = m->nqueued;
    pthread_mutex_unlock(&m->mu);
    return n;
}

void srv_job_free(srv_job *job) {
    if (!job) return;
    if (job->outs)
        for (size_t k = 0; k < job->req.nout; k++) pillar_tensor_destroy(job->outs[k]);
    free(job->outs);
    srv_infer_req_free(&job->req);
    free(job);
}

/* HTTP status for a failed run: the request's fault (400) or ours (500). */
static int status_code(pillar_status st) {
    return st == PILLAR_ERR_INPUT || st == PILLAR_ERR_ARGUMENT ? 400 : 500;
}

/* ---------------------------------------------------------------- sessions */

/* A new session planned for the input shapes in `key` (all dims known). */
static pillar_session *new_session(srv_model *m, const int64_t *key, char *err, size_t errn) {
    pillar_options *o = NULL;
    pillar_session *s = NULL;
    pillar_status st = pillar_options_create(&o);
    if (st == PILLAR_OK) st = pillar_options_set_threads(o, m->threads);
    size_t p = 0;
    for (size_t i = 0; st == PILLAR_OK && i < m->sig.nin; i++) {
        size_t nd = (size_t)key[p];
        st = pillar_options_set_shape(o, m->sig.in[i].name, nd, key + p + 1);
        p += nd + 1;
    }
    if (st == PILLAR_OK) st = pillar_session_create(m->model, o, &s);
    if (st != PILLAR_OK) snprintf(err, errn, "%s", pillar_last_error());
    pillar_options_destroy(o);
    return st == PILLAR_OK ? s : NULL;
}

/* Stores the key of input shapes (per input: ndim, dims) in a new array. */
static int64_t *make_key(const srv_model *m, pillar_tensor *const *inputs, int64_t batch,
                         size_t *keylen) {
    int64_t *k = malloc((m->sig.nin + 1) * (PILLAR_MAX_DIMS + 1) * sizeof *k);
    if (!k) return NULL;
    size_t n = 0;
    for (size_t i = 0; i < m->sig.nin; i++) {
        size_t nd = inputs ? pillar_tensor_ndim(inputs[i]) : m->sig.in[i].ndim;
        k[n++] = (int64_t)nd;
        memcpy(k + n, inputs ? pillar_tensor_dims(inputs[i]) : m->sig.in[i].dims, nd * sizeof *k);
        if (!inputs && nd && m->batchable) k[n] = batch;
        n += nd;
    }
    *keylen = n;
    return k;
}

/* The session for these input shapes: a cached one, else a new one (in a free slot or
 * replacing the least recently used). */
static pillar_session *get_session(srv_model *m, pillar_tensor *const *inputs, char *err,
                                   size_t errn) {
    size_t keylen = 0;
    int64_t *kbuf = make_key(m, inputs, 0, &keylen);
    if (!kbuf) {
        snprintf(err, errn, "out of memory");
        return NULL;
    }
    sess_slot *hit = NULL, *fresh = NULL, *lru = NULL;
    for (int i = 0; i < m->nslots; i++) {
        sess_slot *s = &m->slots[i];
        if (!s->s) {
            if (!lru || lru->s) lru = s;
            continue;
        }
        if (!s->key)
            fresh = s;
        else if (s->keylen == keylen && !memcmp(s->key, kbuf, keylen * sizeof(int64_t)))
            hit = s;
        if (!lru || (lru->s && s->used < lru->used)) lru = s;
    }
    if (!hit && fresh) { /* the session made at start-up for dynamic shapes */
        hit = fresh;
    } else if (!hit) {
        hit = lru;
        pillar_session_destroy(hit->s);
        free(hit->key);
        hit->key = NULL;
        if (!(hit->s = new_session(m, kbuf, err, errn))) {
            free(kbuf);
            return NULL;
        }
    }
    if (!hit->key) {
        hit->key = kbuf;
        hit->keylen = keylen;
        kbuf = NULL;
    }
    free(kbuf);
    hit->used = ++m->tick;
    return hit->s;
}

/* Runs the model on `inputs` (model order); all outputs into outs[sig.nout]. */
static int run_session(srv_model *m, pillar_tensor *const *inputs, pillar_tensor **outs, char *err,
                       size_t errn) {
    pillar_session *s = get_session(m, inputs, err, errn);
    if (!s) return 500;
    pillar_status st = pillar_session_run(
        s, m->sig.nin, m->in_names, (const pillar_tensor *const *)inputs, m->sig.nout, NULL, outs);
    if (st != PILLAR_OK) {
        snprintf(err, errn, "%s", pillar_last_error());
        return status_code(st);
    }
    return 200;
}

/* Hands the requested outputs of `all` (sig.nout tensors, consumed) to the job. */
static void take_outputs(srv_model *m, srv_job *j, pillar_tensor **all) {
    j->outs = calloc(j->req.nout + 1, sizeof *j->outs);
    if (!j->outs) {
        j->code = 500;
        snprintf(j->err, sizeof j->err, "out of memory");
    } else {
        for (size_t k = 0; k < j->req.nout; k++) {
            j->outs[k] = all[j->req.out_idx[k]];
            all[j->req.out_idx[k]] = NULL;
        }
        j->code = 200;
    }
    for (size_t k = 0; k < m->sig.nout; k++) pillar_tensor_destroy(all[k]);
}

static void run_one(srv_model *m, srv_job *j) {
    pillar_tensor **all = calloc(m->sig.nout + 1, sizeof *all);
    if (!all) {
        j->code = 500;
        snprintf(j->err, sizeof j->err, "out of memory");
        return;
    }
    j->code = run_session(m, j->req.inputs, all, j->err, sizeof j->err);
    if (j->code == 200) take_outputs(m, j, all);
    free(all);
}

static size_t row_bytes(const pillar_tensor *t) {
    size_t nd = pillar_tensor_ndim(t);
    const int64_t *d = pillar_tensor_dims(t);
    size_t r = pillar_dtype_size(pillar_tensor_dtype(t));
    for (size_t i = 1; i < nd; i++) r *= (size_t)d[i];
    return r;
}

/* Runs n > 1 compatible jobs as one batch; returns false if that could not be done
 * (the caller then runs them one by one). */
static bool run_batched(srv_model *m, srv_job **jobs, int n) {
    int64_t total = 0;
    for (int k = 0; k < n; k++) total += jobs[k]->batch;
    size_t nin = m->sig.nin, nout = m->sig.nout;
    pillar_tensor **in = calloc(nin + 1, sizeof *in), **all = calloc(nout + 1, sizeof *all);
    bool ok = in && all;
    for (size_t i = 0; ok && i < nin; i++) {
        const pillar_tensor *t0 = jobs[0]->req.inputs[i];
        int64_t dims[PILLAR_MAX_DIMS];
        size_t nd = pillar_tensor_ndim(t0);
        memcpy(dims, pillar_tensor_dims(t0), nd * sizeof *dims);
        dims[0] = total;
        ok = pillar_tensor_create(pillar_tensor_dtype(t0), nd, dims, NULL, &in[i]) == PILLAR_OK;
        char *dst = ok ? pillar_tensor_data(in[i]) : NULL;
        size_t rb = row_bytes(t0);
        for (int k = 0; ok && k < n; k++) {
            size_t bytes = rb * (size_t)jobs[k]->batch;
            if (bytes) memcpy(dst, pillar_tensor_data(jobs[k]->req.inputs[i]), bytes);
            dst += bytes;
        }
    }
    char err[512];
    ok = ok && run_session(m, in, all, err, sizeof err) == 200;
    /* every output must have the batch as its first dimension to be split */
    for (size_t o = 0; ok && o < nout; o++)
        if (pillar_tensor_ndim(all[o]) < 1 || pillar_tensor_dims(all[o])[0] != total) {
            fprintf(stderr,
                    "pillar serve: model '%s': output '%s' does not keep the batch dimension; "
                    "dynamic batching is off for this model\n",
                    m->name, m->sig.out[o].name);
            m->batchable = false;
            ok = false;
        }
    for (int k = 0; ok && k < n; k++) {
        srv_job *j = jobs[k];
        j->outs = calloc(j->req.nout + 1, sizeof *j->outs);
        if (!j->outs) ok = false;
    }
    int64_t off = 0;
    for (int k = 0; ok && k < n; k++) {
        srv_job *j = jobs[k];
        for (size_t q = 0; ok && q < j->req.nout; q++) {
            const pillar_tensor *t = all[j->req.out_idx[q]];
            int64_t dims[PILLAR_MAX_DIMS];
            size_t nd = pillar_tensor_ndim(t);
            memcpy(dims, pillar_tensor_dims(t), nd * sizeof *dims);
            dims[0] = j->batch;
            size_t rb = row_bytes(t);
            const char *src = (const char *)pillar_tensor_data(t) + rb * (size_t)off;
            ok = pillar_tensor_create(pillar_tensor_dtype(t), nd, dims,
                                      (rb * (size_t)j->batch) != 0 ? src : NULL,
                                      &j->outs[q]) == PILLAR_OK;
        }
        j->code = 200;
        off += j->batch;
    }
    if (!ok)
        for (int k = 0; k < n; k++) {
            srv_job *j = jobs[k];
            if (j->outs)
                for (size_t q = 0; q < j->req.nout; q++) pillar_tensor_destroy(j->outs[q]);
            free(j->outs);
            j->outs = NULL;
            j->code = 0;
        }
    for (size_t i = 0; in && i < nin; i++) pillar_tensor_destroy(in[i]);
    for (size_t o = 0; all && o < nout; o++) pillar_tensor_destroy(all[o]);
    free(in);
    free(all);
    return ok;
}

/* ---------------------------------------------------------------- batcher */

static bool compatible(const srv_model *m, const srv_job *a, const srv_job *b) {
    for (size_t i = 0; i < m->sig.nin; i++) {
        const pillar_tensor *x = a->req.inputs[i], *y = b->req.inputs[i];
        size_t nd = pillar_tensor_ndim(x);
        if (nd != pillar_tensor_ndim(y) || nd < 1) return false;
        if (memcmp(pillar_tensor_dims(x) + 1, pillar_tensor_dims(y) + 1,
                   (nd - 1) * sizeof(int64_t)))
            return false;
    }
    return true;
}

/* Items the head job could be batched with now (itself included). */
static int64_t batch_available(const srv_model *m) {
    const srv_job *first = m->head;
    int64_t total = first->batch;
    for (const srv_job *j = first->next; j && total < m->max_batch; j = j->next)
        if (compatible(m, first, j) && total + j->batch <= m->max_batch) total += j->batch;
    return total;
}

/* The batch size for the head job: among the preferred sizes the queue can fill, the
 * one measured fastest per item (the largest within 2% of the best), so that batching
 * is used only where it pays on this machine and model. Sizes not yet measured are
 * tried first, and every 16th run re-measures the size measured longest ago. */
static int64_t choose_size(srv_model *m, const srv_job *first) {
    int64_t avail = batch_available(m);
    int best = -1, stale = -1, explore = -1;
    for (int k = 0; k < m->nsizes; k++) {
        if (m->sizes[k] < first->batch || m->sizes[k] > avail) continue;
        if (m->size_runs[k] < 2) {
            explore = k;
            continue;
        }
        if (stale < 0 || m->size_last[k] < m->size_last[stale]) stale = k;
        if (best < 0 || m->size_item_s[k] < m->size_item_s[best]) best = k;
    }
    if (explore >= 0) return m->sizes[explore];
    if (stale >= 0 && m->runs % 16 == 15) return m->sizes[stale];
    if (best < 0) return first->batch;
    int pick = best;
    for (int k = best + 1; k < m->nsizes; k++)
        if (m->sizes[k] <= avail && m->size_runs[k] >= 2 &&
            m->size_item_s[k] <= m->size_item_s[best] * 1.02)
            pick = k;
    return m->sizes[pick];
}

/* Records the time of a run of `items` rows, if that is one of the preferred sizes. */
static void measure_size(srv_model *m, int64_t items, double seconds) {
    m->runs++;
    for (int k = 0; k < m->nsizes; k++)
        if (m->sizes[k] == items && items > 0) {
            double per = seconds / (double)items;
            m->size_item_s[k] = m->size_runs[k] ? 0.7 * m->size_item_s[k] + 0.3 * per : per;
            m->size_runs[k]++;
            m->size_last[k] = m->runs;
        }
}

static void *batcher_main(void *arg) {
    srv_model *m = arg;
    srv_job **batch = calloc((size_t)m->max_batch + 1, sizeof *batch);
    pthread_mutex_lock(&m->mu);
    for (;;) {
        while (!m->head && !m->stop) pthread_cond_wait(&m->cv, &m->mu);
        if (!m->head) break;
        srv_job *first = m->head;
        bool batching = batch && m->batchable && m->max_batch > 1 && first->batch < m->max_batch;
        if (batching && m->timeout_ms > 0) {
            /* wait for requests whose bodies are still arriving, up to the timeout */
            double deadline = first->t_queued + m->timeout_ms * 1e-3;
            while (!m->stop && m->arriving > 0 && batch_available(m) < m->max_batch) {
                double left = deadline - srv_now();
                if (left <= 0) break;
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                long long ns = (long long)ts.tv_nsec + (long long)(left * 1e9);
                ts.tv_sec += (time_t)(ns / 1000000000LL);
                ts.tv_nsec = (long)(ns % 1000000000LL);
                pthread_cond_timedwait(&m->cv, &m->mu, &ts);
            }
        }
        int64_t target = batching ? choose_size(m, first) : first->batch;
        /* take the head and, if batching, compatible jobs in order while they fit */
        int n = 0;
        int64_t total = 0;
        srv_job **link = &m->head, *prev = NULL;
        while (*link) {
            srv_job *j = *link;
            bool take = n == 0 || (batching && n < m->max_batch && total + j->batch <= target &&
                                   compatible(m, first, j));
            if (take) {
                *link = j->next;
                if (m->tail == j) m->tail = prev;
                j->next = NULL;
                m->nqueued--;
                if (batch) batch[n] = j;
                n++;
                total += j->batch;
                if (!batching || total >= target) break;
            } else {
                prev = j;
                link = &j->next;
            }
        }
        pthread_mutex_unlock(&m->mu);

        double t_run = srv_now(), queued = t_run - first->t_queued;
        if (!batch) { /* no memory for a batch list: one at a time */
            run_one(m, first);
            srv_stats_run(&m->stats, first->batch, queued);
            first->done(first);
        } else {
            bool one_run = true;
            if (n == 1 || !run_batched(m, batch, n)) {
                one_run = n == 1;
                for (int k = 0; k < n; k++) {
                    run_one(m, batch[k]);
                    srv_stats_run(&m->stats, batch[k]->batch,
                                  k == 0 ? queued : srv_now() - batch[k]->t_queued);
                }
            } else {
                srv_stats_run(&m->stats, total, queued);
            }
            if (one_run && batch[0]->code == 200) measure_size(m, total, srv_now() - t_run);
            for (int k = 0; k < n; k++) batch[k]->done(batch[k]);
        }
        pthread_mutex_lock(&m->mu);
    }
    pthread_mutex_unlock(&m->mu);
    free(batch);
    return NULL;
}

int srv_model_submit(srv_model *m, srv_job *job) {
    job->batch = 1;
    if (m->batchable && m->sig.nin && pillar_tensor_ndim(job->req.inputs[0]) >= 1)
        job->batch = pillar_tensor_dims(job->req.inputs[0])[0];
    pthread_mutex_lock(&m->mu);
    int code = 200;
    if (m->stop) {
        code = 503;
        snprintf(job->err, sizeof job->err, "the server is shutting down");
    } else if (m->nqueued >= m->max_queue) {
        code = 503;
        snprintf(job->err, sizeof job->err, "model '%s' has %d requests queued; try again later",
                 m->name, m->nqueued);
    } else {
        job->t_queued = srv_now();
        job->next = NULL;
        if (m->tail)
            m->tail->next = job;
        else
            m->head = job;
        m->tail = job;
        m->nqueued++;
        pthread_cond_signal(&m->cv);
    }
    pthread_mutex_unlock(&m->mu);
    job->code = code;
    return code;
}

void srv_model_arriving(srv_model *m, int delta) {
    pthread_mutex_lock(&m->mu);
    m->arriving += delta;
    if (m->arriving < 0) m->arriving = 0;
    pthread_cond_signal(&m->cv);
    pthread_mutex_unlock(&m->mu);
}

/* ---------------------------------------------------------------- life cycle */

static bool decide_batchable(srv_model *m) {
    if (m->max_batch <= 1 || m->sig.nin == 0 || m->sig.nout == 0) return false;
    const char *sym0 = pillar_model_input_dim_name(m->model, 0, 0);
    for (size_t i = 0; i < m->sig.nin; i++) {
        if (m->sig.in[i].ndim < 1 || m->sig.in[i].dims[0] != -1) return false;
        const char *sym = pillar_model_input_dim_name(m->model, i, 0);
        if ((sym == NULL) != (sym0 == NULL) || (sym && strcmp(sym, sym0) != 0)) return false;
    }
    for (size_t o = 0; o < m->sig.nout; o++)
        if (m->sig.out[o].ndim < 1 || m->sig.out[o].dims[0] != -1) return false;
    return true;
}

static int exit_code_for(pillar_status st) {
    switch (st) {
    case PILLAR_ERR_MODEL:
    case PILLAR_ERR_UNSUPPORTED:
    case PILLAR_ERR_IO:
        return 2;
    case PILLAR_ERR_INPUT:
        return 3;
    default:
        return 4;
    }
}

srv_model *srv_model_start(const serve_model_spec *spec, const serve_config *cfg, char *err,
                           size_t errn, int *exit_code) {
    *exit_code = 4;
    srv_model *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errn, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&m->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->cv, &ca);
    pthread_condattr_destroy(&ca);
    srv_stats_init(&m->stats);
    m->max_batch = cfg->max_batch < 1 ? 1 : cfg->max_batch;
    m->timeout_ms = cfg->batch_timeout_ms < 0 ? 0 : cfg->batch_timeout_ms;
    m->max_queue = cfg->max_queue > 0 ? cfg->max_queue : 1024;
    m->name = strdup(spec->name);
    m->path = strdup(spec->path);
    if (!m->name || !m->path) {
        snprintf(err, errn, "out of memory");
        goto fail;
    }
    m->threads = cfg->threads;
    pillar_status st = pillar_model_load(spec->path, &m->model);
    if (st != PILLAR_OK) {
        snprintf(err, errn, "%s", pillar_last_error());
        *exit_code = exit_code_for(st);
        goto fail;
    }
    if (!srv_sig_from_model(&m->sig, m->model) ||
        !(m->in_names = calloc(m->sig.nin + 1, sizeof *m->in_names))) {
        snprintf(err, errn, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < m->sig.nin; i++) {
        m->in_names[i] = m->sig.in[i].name;
        if (m->sig.in[i].dtype == PILLAR_STRING) {
            snprintf(err, errn, "%s: input '%s' is a string tensor, which the server cannot take",
                     spec->path, m->sig.in[i].name);
            *exit_code = 2;
            goto fail;
        }
    }
    m->batchable = decide_batchable(m);
    m->static_rest = true;
    for (size_t i = 0; i < m->sig.nin; i++)
        for (size_t d = m->batchable ? 1 : 0; d < m->sig.in[i].ndim; d++)
            if (m->sig.in[i].dims[d] < 0) m->static_rest = false;
    /* preferred batch sizes: 1, 2, 4, ... below max_batch, and max_batch */
    m->nsizes = 0;
    for (int64_t b = 1; b < m->max_batch && m->nsizes < SRV_MAX_SIZES - 1; b *= 2)
        m->sizes[m->nsizes++] = b;
    m->sizes[m->nsizes++] = m->batchable ? m->max_batch : 1;
    if (!m->batchable) m->nsizes = 1;
    m->nslots = m->nsizes + SRV_EXTRA_SESSIONS;
    if (!(m->slots = calloc((size_t)m->nslots, sizeof *m->slots))) {
        snprintf(err, errn, "out of memory");
        goto fail;
    }
    if (m->static_rest) {
        /* plan a session for each preferred batch size now (fixed models: one) */
        for (int k = 0; k < m->nsizes; k++) {
            sess_slot *sl = &m->slots[k];
            if (!(sl->key = make_key(m, NULL, m->sizes[k], &sl->keylen))) {
                snprintf(err, errn, "out of memory");
                goto fail;
            }
            if (!(sl->s = new_session(m, sl->key, err, errn))) {
                *exit_code = 2;
                goto fail;
            }
        }
    } else {
        /* shapes come with the requests: one session to check the model, planned at the
         * first run, then one per distinct set of shapes */
        pillar_options *o = NULL;
        st = pillar_options_create(&o);
        if (st == PILLAR_OK) st = pillar_options_set_threads(o, m->threads);
        if (st == PILLAR_OK) st = pillar_session_create(m->model, o, &m->slots[0].s);
        pillar_options_destroy(o);
        if (st != PILLAR_OK) {
            snprintf(err, errn, "%s", pillar_last_error());
            *exit_code = exit_code_for(st);
            goto fail;
        }
    }
    int rc = pthread_create(&m->thread, NULL, batcher_main, m);
    if (rc != 0) {
        snprintf(err, errn, "cannot start a thread: %s", strerror(rc));
        goto fail;
    }
    m->started = true;
    return m;
fail:
    srv_model_destroy(m);
    return NULL;
}

void srv_model_stop(srv_model *m) {
    if (!m || !m->started) return;
    pthread_mutex_lock(&m->mu);
    m->stop = true;
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
    pthread_join(m->thread, NULL);
    m->started = false;
}

void srv_model_destroy(srv_model *m) {
    if (!m) return;
    srv_model_stop(m);
    for (int i = 0; m->slots && i < m->nslots; i++) {
        pillar_session_destroy(m->slots[i].s);
        free(m->slots[i].key);
    }
    free(m->slots);
    pillar_model_destroy(m->model);
    srv_sig_free(&m->sig);
    free(m->in_names);
    free(m->name);
    free(m->path);
    srv_stats_destroy(&m->stats);
    pthread_cond_destroy(&m->cv);
    pthread_mutex_destroy(&m->mu);
    free(m);
}
