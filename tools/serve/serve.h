/* serve.h -- the HTTP inference server behind `pillar serve` (KServe v2 over REST).
 *
 * tools/pillar/serve.c parses the command line into a serve_config and calls
 * serve_run(). The server lives in tools/serve/ and is built only when libmicrohttpd
 * and libcjson are found (tools/serve/serve.cmake); without them serve_run is absent
 * and `pillar serve` says so. Like the rest of the CLI it uses only include/pillar.h. */
#ifndef PILLAR_SERVE_H
#define PILLAR_SERVE_H

#include <stddef.h>
#include <stdint.h>

typedef struct serve_model_spec {
    const char *name; /* as in /v2/models/NAME */
    const char *path; /* ONNX file */
} serve_model_spec;

typedef struct serve_config {
    const serve_model_spec *models;
    size_t nmodels;
    const char *host;     /* address to bind (default 127.0.0.1) */
    int port;             /* 0: any free port (printed at start-up) */
    int threads;          /* session worker threads per model (0: one per core) */
    int max_batch;        /* largest dynamic batch (1: no batching) */
    int batch_timeout_ms; /* how long a batch waits for requests still arriving */
    size_t max_body;      /* largest request body in bytes */
    int timeout_s;        /* idle connection timeout (slow or stalled clients) */
    int http_threads;     /* threads parsing requests and writing responses */
    int max_queue;        /* queued requests per model before 503 */
    int quiet;            /* no per-start-up messages on stderr */
} serve_config;

/* Loads the models, serves until SIGTERM or SIGINT, finishes the requests in flight
 * and returns a CLI exit code (0 after a clean shutdown). Messages go to stderr. */
int serve_run(const serve_config *cfg);

#endif
