/* models.h -- the served models: one loaded model, its sessions, a queue of inference
 * jobs and a batcher thread that runs them, concatenating compatible requests along
 * the batch dimension (dynamic batching). */
#ifndef PILLAR_SERVE_MODELS_H
#define PILLAR_SERVE_MODELS_H

#include <pthread.h>
#include <stdbool.h>

#include "metrics.h"
#include "request.h"
#include "serve.h"

typedef struct srv_job srv_job;
/* Called on the batcher thread when a job has its result; the job must not be touched
 * by the batcher afterwards. */
typedef void (*srv_job_done_fn)(srv_job *job);

struct srv_job {
    srv_infer_req req;    /* parsed request (inputs owned by the job until its run) */
    pillar_tensor **outs; /* req.nout results when code == 200 (owned) */
    int code;             /* HTTP status of the result */
    char err[512];        /* message when code != 200 */
    int64_t batch;        /* dim 0 of the inputs (1 for models that do not batch) */
    double t_queued;      /* when the job entered the queue (srv_now) */
    srv_job_done_fn done;
    void *arg;
    srv_job *next;
};

typedef struct srv_model srv_model;

/* Seconds on a monotonic clock. */
double srv_now(void);

/* Loads spec->path and starts its batcher. NULL on failure with a message in err and
 * *exit_code set to the CLI exit code. */
srv_model *srv_model_start(const serve_model_spec *spec, const serve_config *cfg, char *err,
                           size_t errn, int *exit_code);
/* Queues a job (its `done` is called later, on the batcher thread). Returns 200, or 503
 * with job->err set if the queue is full or the model is stopping (`done` is then not
 * called). */
int srv_model_submit(srv_model *m, srv_job *job);
/* Counts requests whose bodies are still arriving (+1 / -1): a batch waits for them,
 * up to the batch timeout, and never waits when none are coming. */
void srv_model_arriving(srv_model *m, int delta);
/* Runs what is queued, then stops and joins the batcher. */
void srv_model_stop(srv_model *m);
void srv_model_destroy(srv_model *m);
void srv_job_free(srv_job *job);

const char *srv_model_name(const srv_model *m);
const srv_sig *srv_model_sig(const srv_model *m);
srv_stats *srv_model_stats(srv_model *m);
int srv_model_queued(srv_model *m);
bool srv_model_batchable(const srv_model *m);

#endif
