/* server.c -- the HTTP side of `pillar serve`: libmicrohttpd with a small thread pool
 * (epoll), KServe v2 routes, request bodies bounded in size, inference requests handed
 * to the model's batcher while their connection is suspended (so a slow run or a slow
 * client never holds an HTTP thread), Prometheus metrics, and a clean shutdown on
 * SIGTERM/SIGINT once the requests in flight are answered. */
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "models.h"
#include "serve.h"

enum route {
    R_NOT_FOUND,
    R_UNKNOWN_MODEL,
    R_LIVE,
    R_READY,
    R_SERVER_META,
    R_METRICS,
    R_MODEL_META,
    R_MODEL_READY,
    R_INFER,
};

typedef struct server {
    const serve_config *cfg;
    srv_model **models;
    size_t nmodels;
    srv_stats http;
    atomic_int inflight;
    atomic_bool stopping;
    struct MHD_Daemon *daemon;
} server;

typedef struct req_ctx {
    server *S;
    struct MHD_Connection *conn;
    enum route route;
    srv_model *model;
    char msg[384];
    double t0;
    srv_buf body;
    size_t received; /* body bytes seen (kept or not) */
    bool too_large;  /* body over the limit: drained, then 413 */
    bool arriving;   /* counted in the model's arriving requests */
    bool responded;
    long long header_len; /* Inference-Header-Content-Length, -1 if absent */
    srv_job *job;
} req_ctx;

/* ---------------------------------------------------------------- responses */

static enum MHD_Result respond(req_ctx *r, int code, srv_buf *body, const char *ctype,
                               long long header_len, const char *allow, bool close) {
    server *S = r->S;
    if (body->oom) {
        srv_buf_free(body);
        srv_write_error(body, "out of memory writing the response");
        code = 500;
        header_len = -1;
        ctype = "application/json";
    }
    struct MHD_Response *resp;
    if (body->p)
        resp = MHD_create_response_from_buffer(body->n, body->p, MHD_RESPMEM_MUST_FREE);
    else
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        srv_buf_free(body);
        return MHD_NO;
    }
    memset(body, 0, sizeof *body); /* the response owns the bytes now */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (header_len >= 0) {
        char tmp[32];
        snprintf(tmp, sizeof tmp, "%lld", header_len);
        MHD_add_response_header(resp, "Inference-Header-Content-Length", tmp);
    }
    if (allow) MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    if (close) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)code, resp);
    MHD_destroy_response(resp);
    r->responded = true;
    double dt = srv_now() - r->t0;
    srv_stats_request(&S->http, code, dt);
    if (r->route == R_INFER && r->model) srv_stats_request(srv_model_stats(r->model), code, dt);
    return ret;
}

static enum MHD_Result respond_json(req_ctx *r, int code, const char *json) {
    srv_buf b = {0};
    srv_buf_puts(&b, json);
    return respond(r, code, &b, "application/json", -1, NULL, false);
}

/* An error answer {"error": msg}. `close`: the request body (if any) was not read. */
static enum MHD_Result respond_error(req_ctx *r, int code, const char *msg, const char *allow,
                                     bool close) {
    srv_buf b = {0};
    srv_write_error(&b, msg);
    return respond(r, code, &b, "application/json", -1, allow, close);
}

/* ---------------------------------------------------------------- routing */

static srv_model *find_model(server *S, const char *name, size_t n) {
    for (size_t i = 0; i < S->nmodels; i++) {
        const char *mn = srv_model_name(S->models[i]);
        if (strlen(mn) == n && !memcmp(mn, name, n)) return S->models[i];
    }
    return NULL;
}

static enum route route(server *S, const char *url, srv_model **model, char *msg, size_t msgn) {
    if (!strcmp(url, "/v2/health/live")) return R_LIVE;
    if (!strcmp(url, "/v2/health/ready")) return R_READY;
    if (!strcmp(url, "/v2") || !strcmp(url, "/v2/")) return R_SERVER_META;
    if (!strcmp(url, "/metrics")) return R_METRICS;
    static const char prefix[] = "/v2/models/";
    if (!strncmp(url, prefix, sizeof prefix - 1)) {
        const char *name = url + sizeof prefix - 1;
        size_t n = strcspn(name, "/");
        const char *tail = name + n;
        *model = find_model(S, name, n);
        if (!*model) {
            snprintf(msg, msgn, "model '%.*s' is not served here", (int)(n > 200 ? 200 : n), name);
            return R_UNKNOWN_MODEL;
        }
        if (!strncmp(tail, "/versions/", 10)) {
            const char *v = tail + 10;
            size_t vn = strcspn(v, "/");
            if (vn != 1 || v[0] != '1') {
                snprintf(msg, msgn, "model '%s' has no version '%.*s' (only '1')",
                         srv_model_name(*model), (int)(vn > 100 ? 100 : vn), v);
                return R_UNKNOWN_MODEL;
            }
            tail = v + vn;
        }
        if (!*tail) return R_MODEL_META;
        if (!strcmp(tail, "/ready")) return R_MODEL_READY;
        if (!strcmp(tail, "/infer")) return R_INFER;
    }
    snprintf(msg, msgn, "no such path: %.200s", url);
    return R_NOT_FOUND;
}

/* ---------------------------------------------------------------- inference */

static void job_done(srv_job *job) {
    req_ctx *r = job->arg;
    MHD_resume_connection(r->conn);
}

static enum MHD_Result infer_finish(req_ctx *r) {
    srv_job *job = r->job;
    if (job->code != 200) return respond_error(r, job->code, job->err, NULL, false);
    srv_buf b = {0};
    size_t json_len = 0;
    char err[256];
    if (!srv_write_response(srv_model_sig(r->model), srv_model_name(r->model), &job->req, job->outs,
                            &b, &json_len, err, sizeof err)) {
        srv_buf_free(&b);
        return respond_error(r, 500, err, NULL, false);
    }
    bool binary = json_len != b.n;
    return respond(r, 200, &b, binary ? "application/octet-stream" : "application/json",
                   binary ? (long long)json_len : -1, NULL, false);
}

static enum MHD_Result infer_start(req_ctx *r) {
    server *S = r->S;
    if (r->arriving) {
        srv_model_arriving(r->model, -1);
        r->arriving = false;
    }
    if (r->too_large) {
        char msg[128];
        snprintf(msg, sizeof msg, "the request body is larger than %zu bytes (--max-body-mb)",
                 S->cfg->max_body);
        return respond_error(r, 413, msg, NULL, false);
    }
    if (r->body.oom) return respond_error(r, 503, "out of memory reading the request", NULL, false);
    srv_job *job = calloc(1, sizeof *job);
    if (!job) return respond_error(r, 503, "out of memory", NULL, false);
    char err[512];
    int code = srv_parse_infer(srv_model_sig(r->model), r->body.p ? r->body.p : "", r->body.n,
                               r->header_len, &job->req, err, sizeof err);
    srv_buf_free(&r->body);
    if (code != 200) {
        free(job);
        return respond_error(r, code, err, NULL, false);
    }
    job->done = job_done;
    job->arg = r;
    r->job = job;
    /* suspend first: the batcher may finish (and resume) before this returns */
    MHD_suspend_connection(r->conn);
    if (srv_model_submit(r->model, job) != 200) MHD_resume_connection(r->conn);
    return MHD_YES;
}

/* ---------------------------------------------------------------- handlers */

static enum MHD_Result on_first_call(req_ctx *r, const char *url, const char *method) {
    server *S = r->S;
    r->route = route(S, url, &r->model, r->msg, sizeof r->msg);
    bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    bool post = !strcmp(method, "POST");
    const char *cl =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *te =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    bool has_body = (cl && strtoull(cl, NULL, 10) > 0) || te;
    if (atomic_load(&S->stopping))
        return respond_error(r, 503, "the server is shutting down", NULL, true);
    if (r->route == R_NOT_FOUND || r->route == R_UNKNOWN_MODEL)
        return respond_error(r, 404, r->msg, NULL, has_body);
    if (r->route != R_INFER) {
        if (!get) {
            char msg[128];
            snprintf(msg, sizeof msg, "method %.20s is not allowed here (use GET)", method);
            return respond_error(r, 405, msg, "GET, HEAD", has_body);
        }
        return MHD_YES;
    }
    if (!post) {
        char msg[128];
        snprintf(msg, sizeof msg, "method %.20s is not allowed here (use POST)", method);
        return respond_error(r, 405, msg, "POST", has_body);
    }
    if (cl) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (errno || n > S->cfg->max_body) {
            char msg[128];
            snprintf(msg, sizeof msg, "the request body is larger than %zu bytes (--max-body-mb)",
                     S->cfg->max_body);
            return respond_error(r, 413, msg, NULL, true);
        }
        /* room for the body at once (up to 8 MiB: a client that only sends headers does
         * not get more reserved; larger bodies grow as they arrive) */
        if (n && !srv_buf_reserve_exact(&r->body, (size_t)(n < (8u << 20) ? n : (8u << 20))))
            return respond_error(r, 503, "out of memory reading the request", NULL, true);
    }
    const char *ih =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Inference-Header-Content-Length");
    if (ih) {
        char *end;
        errno = 0;
        long long v = strtoll(ih, &end, 10);
        if (errno || end == ih || *end || v < 0)
            return respond_error(r, 400,
                                 "Inference-Header-Content-Length must be a non-negative integer",
                                 NULL, has_body);
        r->header_len = v;
    }
    srv_model_arriving(r->model, +1);
    r->arriving = true;
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
    server *S = cls;
    req_ctx *r = *con_cls;
    (void)version;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        *con_cls = r;
        r->S = S;
        r->conn = conn;
        r->t0 = srv_now();
        r->header_len = -1;
        atomic_fetch_add(&S->inflight, 1);
        return on_first_call(r, url, method);
    }
    if (r->responded) { /* answered early: ignore anything more */
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        r->received += n;
        if (r->route == R_INFER && !r->too_large) {
            if (r->received > S->cfg->max_body) {
                r->too_large = true;
                srv_buf_free(&r->body);
            } else {
                srv_buf_put(&r->body, upload, n);
            }
        }
        /* a client that keeps streaming far past the limit is cut off */
        if (r->received > 2 * S->cfg->max_body + (1u << 20)) return MHD_NO;
        return MHD_YES;
    }
    switch (r->route) {
    case R_LIVE:
        return respond_json(r, 200, "{\"live\":true}");
    case R_READY:
        return atomic_load(&S->stopping) ? respond_json(r, 503, "{\"ready\":false}")
                                         : respond_json(r, 200, "{\"ready\":true}");
    case R_SERVER_META: {
        srv_buf b = {0};
        srv_buf_printf(
            &b, "{\"name\":\"pillar\",\"version\":\"%s\",\"extensions\":[\"binary_tensor_data\"]}",
            pillar_version());
        return respond(r, 200, &b, "application/json", -1, NULL, false);
    }
    case R_METRICS: {
        const char *names[S->nmodels + 1];
        srv_stats *stats[S->nmodels + 1];
        int queued[S->nmodels + 1];
        for (size_t i = 0; i < S->nmodels; i++) {
            names[i] = srv_model_name(S->models[i]);
            stats[i] = srv_model_stats(S->models[i]);
            queued[i] = srv_model_queued(S->models[i]);
        }
        srv_buf b = {0};
        srv_stats_write(&b, &S->http, names, stats, queued, S->nmodels);
        return respond(r, 200, &b, "text/plain; version=0.0.4; charset=utf-8", -1, NULL, false);
    }
    case R_MODEL_META: {
        srv_buf b = {0};
        srv_write_metadata(&b, srv_model_name(r->model), srv_model_sig(r->model));
        return respond(r, 200, &b, "application/json", -1, NULL, false);
    }
    case R_MODEL_READY: {
        srv_buf b = {0};
        srv_buf_puts(&b, "{\"name\":");
        srv_buf_json_str(&b, srv_model_name(r->model));
        srv_buf_printf(&b, ",\"ready\":%s}", atomic_load(&S->stopping) ? "false" : "true");
        return respond(r, atomic_load(&S->stopping) ? 503 : 200, &b, "application/json", -1, NULL,
                       false);
    }
    case R_INFER:
        return r->job ? infer_finish(r) : infer_start(r);
    default:
        return respond_error(r, 404, r->msg, NULL, false);
    }
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    server *S = cls;
    req_ctx *r = *con_cls;
    (void)conn;
    (void)toe;
    if (!r) return;
    if (r->arriving) srv_model_arriving(r->model, -1);
    srv_job_free(r->job);
    srv_buf_free(&r->body);
    free(r);
    *con_cls = NULL;
    atomic_fetch_sub(&S->inflight, 1);
}

static void on_mhd_error(void *cls, const char *fmt, va_list ap) {
    const serve_config *cfg = cls;
    if (cfg->quiet) return;
    fputs("pillar serve: http: ", stderr);
    vfprintf(stderr, fmt, ap);
}

/* ---------------------------------------------------------------- run */

/* Waits until no request is in flight or `seconds` pass; a second signal cuts it short. */
static void wait_idle(server *S, double seconds, const sigset_t *sigs) {
    double end = srv_now() + seconds;
    while (atomic_load(&S->inflight) > 0 && srv_now() < end) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        if (sigs && sigtimedwait(sigs, NULL, &ts) > 0) return;
        if (!sigs) nanosleep(&ts, NULL);
    }
}

int serve_run(const serve_config *cfg) {
    /* Signals are taken by sigwait in this thread only: block them before any thread
     * (sessions' pools, batchers, HTTP) exists so that all inherit the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    server S;
    memset(&S, 0, sizeof S);
    S.cfg = cfg;
    srv_stats_init(&S.http);
    atomic_init(&S.inflight, 0);
    atomic_init(&S.stopping, false);
    int rc = 0;
    S.models = calloc(cfg->nmodels + 1, sizeof *S.models);
    if (!S.models) {
        fprintf(stderr, "pillar: out of memory\n");
        rc = 4;
        goto out;
    }
    for (size_t i = 0; i < cfg->nmodels; i++) {
        char err[1024];
        int code = 0;
        srv_model *m = srv_model_start(&cfg->models[i], cfg, err, sizeof err, &code);
        if (!m) {
            fprintf(stderr, "pillar: %s\n", err);
            rc = code;
            goto out;
        }
        S.models[S.nmodels++] = m;
    }

    /* the address to bind */
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char port[16];
    snprintf(port, sizeof port, "%d", cfg->port);
    int gai = getaddrinfo(cfg->host, port, &hints, &ai);
    if (gai != 0 || !ai) {
        fprintf(stderr, "pillar: cannot use host '%s': %s\n", cfg->host, gai_strerror(gai));
        rc = 1;
        goto out;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    S.daemon = MHD_start_daemon(
        flags, (uint16_t)cfg->port, NULL, NULL, on_request, &S, MHD_OPTION_EXTERNAL_LOGGER,
        on_mhd_error, (void *)cfg, MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)(cfg->http_threads > 0 ? cfg->http_threads : 2), MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)(cfg->timeout_s > 0 ? cfg->timeout_s : 30), MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)1000, MHD_OPTION_NOTIFY_COMPLETED, on_completed, &S, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!S.daemon) {
        fprintf(stderr,
                "pillar: cannot listen on %s port %d (in use, or not an address of this host?)\n",
                cfg->host, cfg->port);
        rc = 4;
        goto out;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(S.daemon, MHD_DAEMON_INFO_BIND_PORT);
    int bound = info ? (int)info->port : cfg->port;
    if (!cfg->quiet) {
        for (size_t i = 0; i < S.nmodels; i++)
            fprintf(stderr, "pillar serve: model '%s' from %s (%s)\n", srv_model_name(S.models[i]),
                    cfg->models[i].path,
                    srv_model_batchable(S.models[i]) ? "dynamic batching on"
                                                     : "no dynamic batching");
    }
    fprintf(stderr, "pillar serve: listening on http://%s%s%s:%d\n",
            strchr(cfg->host, ':') ? "[" : "", cfg->host, strchr(cfg->host, ':') ? "]" : "", bound);
    fflush(stderr);

    int sig = 0;
    while (sigwait(&sigs, &sig) != 0) {
    }
    atomic_store(&S.stopping, true);
    MHD_socket lfd = MHD_quiesce_daemon(S.daemon);
    if (lfd != MHD_INVALID_SOCKET) close(lfd);
    if (!cfg->quiet)
        fprintf(stderr, "pillar serve: %s: finishing %d requests in flight\n",
                sig == SIGINT ? "SIGINT" : "SIGTERM", atomic_load(&S.inflight));
    wait_idle(&S, (cfg->timeout_s > 0 ? cfg->timeout_s : 30) + 30.0, &sigs);
    for (size_t i = 0; i < S.nmodels; i++) srv_model_stop(S.models[i]); /* runs what is queued */
    wait_idle(&S, 5.0, NULL);
    MHD_stop_daemon(S.daemon);
    if (!cfg->quiet) fprintf(stderr, "pillar serve: stopped\n");
out:
    for (size_t i = 0; i < S.nmodels; i++) srv_model_destroy(S.models[i]);
    free(S.models);
    srv_stats_destroy(&S.http);
    return rc;
}
