/* metrics.c -- request counts by status, latency, queueing and batch-size histograms,
 * written in the Prometheus text format (version 0.0.4). */
#include <string.h>

#include "metrics.h"

static const double latency_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                        0.25,  0.5,    1,     2.5,  5,     10,   30};
static const double batch_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256};

static void hist_init(srv_hist *h, const double *bounds, int n) {
    memset(h, 0, sizeof *h);
    h->bounds = bounds;
    h->nbounds = n;
}

static void hist_observe(srv_hist *h, double v) {
    int i = 0;
    while (i < h->nbounds && v > h->bounds[i]) i++;
    h->counts[i]++;
    h->sum += v;
    h->count++;
}

void srv_stats_init(srv_stats *s) {
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    hist_init(&s->latency, latency_bounds, (int)(sizeof latency_bounds / sizeof *latency_bounds));
    hist_init(&s->queue, latency_bounds, (int)(sizeof latency_bounds / sizeof *latency_bounds));
    hist_init(&s->batch, batch_bounds, (int)(sizeof batch_bounds / sizeof *batch_bounds));
}

void srv_stats_destroy(srv_stats *s) {
    pthread_mutex_destroy(&s->mu);
}

void srv_stats_request(srv_stats *s, int code, double seconds) {
    pthread_mutex_lock(&s->mu);
    int i = 0;
    while (i < SRV_CODES_MAX && s->codes[i] && s->codes[i] != code) i++;
    if (i < SRV_CODES_MAX) {
        s->codes[i] = code;
        s->by_code[i]++;
    } else {
        s->other_codes++;
    }
    if (code >= 400) s->failures++;
    hist_observe(&s->latency, seconds);
    pthread_mutex_unlock(&s->mu);
}

void srv_stats_run(srv_stats *s, int64_t items, double queued) {
    pthread_mutex_lock(&s->mu);
    s->items += (uint64_t)items;
    hist_observe(&s->batch, (double)items);
    hist_observe(&s->queue, queued);
    pthread_mutex_unlock(&s->mu);
}

static void write_label(srv_buf *b, const char *model) {
    /* label values escape backslash, quote and newline */
    srv_buf_puts(b, "model=\"");
    for (const char *p = model; *p; p++) {
        if (*p == '\\' || *p == '"') srv_buf_put(b, "\\", 1);
        if (*p == '\n')
            srv_buf_puts(b, "\\n");
        else
            srv_buf_put(b, p, 1);
    }
    srv_buf_put(b, "\"", 1);
}

static void write_hist(srv_buf *b, const char *metric, const char *model, const srv_hist *h) {
    uint64_t cum = 0;
    for (int i = 0; i <= h->nbounds; i++) {
        cum += h->counts[i];
        srv_buf_printf(b, "%s_bucket{", metric);
        if (model) {
            write_label(b, model);
            srv_buf_put(b, ",", 1);
        }
        if (i < h->nbounds)
            srv_buf_printf(b, "le=\"%g\"} %llu\n", h->bounds[i], (unsigned long long)cum);
        else
            srv_buf_printf(b, "le=\"+Inf\"} %llu\n", (unsigned long long)cum);
    }
    srv_buf_printf(b, "%s_sum{", metric);
    if (model) write_label(b, model);
    srv_buf_printf(b, "} %.9g\n", h->sum);
    srv_buf_printf(b, "%s_count{", metric);
    if (model) write_label(b, model);
    srv_buf_printf(b, "} %llu\n", (unsigned long long)h->count);
}

void srv_stats_write(srv_buf *out, srv_stats *http, const char *const *names,
                     srv_stats *const *models, const int *queued, size_t n) {
    pthread_mutex_lock(&http->mu);
    srv_buf_puts(out, "# HELP pillar_http_requests_total HTTP requests answered, by status code.\n"
                      "# TYPE pillar_http_requests_total counter\n");
    for (int i = 0; i < SRV_CODES_MAX && http->codes[i]; i++)
        srv_buf_printf(out, "pillar_http_requests_total{code=\"%d\"} %llu\n", http->codes[i],
                       (unsigned long long)http->by_code[i]);
    if (http->other_codes)
        srv_buf_printf(out, "pillar_http_requests_total{code=\"other\"} %llu\n",
                       (unsigned long long)http->other_codes);
    pthread_mutex_unlock(&http->mu);

    srv_buf_puts(
        out, "# HELP pillar_infer_requests_total Inference requests, by model and status code.\n"
             "# TYPE pillar_infer_requests_total counter\n");
    for (size_t m = 0; m < n; m++) {
        srv_stats *s = models[m];
        pthread_mutex_lock(&s->mu);
        for (int i = 0; i < SRV_CODES_MAX && s->codes[i]; i++) {
            srv_buf_puts(out, "pillar_infer_requests_total{");
            write_label(out, names[m]);
            srv_buf_printf(out, ",code=\"%d\"} %llu\n", s->codes[i],
                           (unsigned long long)s->by_code[i]);
        }
        pthread_mutex_unlock(&s->mu);
    }
    srv_buf_puts(
        out,
        "# HELP pillar_infer_errors_total Inference requests answered with an error (4xx or 5xx).\n"
        "# TYPE pillar_infer_errors_total counter\n");
    for (size_t m = 0; m < n; m++) {
        pthread_mutex_lock(&models[m]->mu);
        srv_buf_puts(out, "pillar_infer_errors_total{");
        write_label(out, names[m]);
        srv_buf_printf(out, "} %llu\n", (unsigned long long)models[m]->failures);
        pthread_mutex_unlock(&models[m]->mu);
    }
    srv_buf_puts(out, "# HELP pillar_inferences_total Batch items run (one per request row).\n"
                      "# TYPE pillar_inferences_total counter\n");
    for (size_t m = 0; m < n; m++) {
        pthread_mutex_lock(&models[m]->mu);
        srv_buf_puts(out, "pillar_inferences_total{");
        write_label(out, names[m]);
        srv_buf_printf(out, "} %llu\n", (unsigned long long)models[m]->items);
        pthread_mutex_unlock(&models[m]->mu);
    }
    srv_buf_puts(out, "# HELP pillar_queue_length Requests waiting for a run.\n"
                      "# TYPE pillar_queue_length gauge\n");
    for (size_t m = 0; m < n; m++) {
        srv_buf_puts(out, "pillar_queue_length{");
        write_label(out, names[m]);
        srv_buf_printf(out, "} %d\n", queued[m]);
    }
    static const struct {
        const char *metric, *help;
        size_t off;
    } hists[] = {
        {"pillar_request_duration_seconds", "Inference request latency, first byte to answer.",
         offsetof(srv_stats, latency)},
        {"pillar_queue_duration_seconds", "Time the oldest request of a run waited in the queue.",
         offsetof(srv_stats, queue)},
        {"pillar_batch_size", "Batch items per session run (dynamic batching).",
         offsetof(srv_stats, batch)},
    };
    for (size_t k = 0; k < sizeof hists / sizeof *hists; k++) {
        srv_buf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", hists[k].metric, hists[k].help,
                       hists[k].metric);
        for (size_t m = 0; m < n; m++) {
            pthread_mutex_lock(&models[m]->mu);
            write_hist(out, hists[k].metric, names[m],
                       (const srv_hist *)((const char *)models[m] + hists[k].off));
            pthread_mutex_unlock(&models[m]->mu);
        }
    }
}
