/* metrics.h -- counters and histograms for GET /metrics (Prometheus text format). */
#ifndef PILLAR_SERVE_METRICS_H
#define PILLAR_SERVE_METRICS_H

#include <pthread.h>
#include <stdint.h>

#include "request.h"

#define SRV_HIST_MAX 24
#define SRV_CODES_MAX 16

typedef struct srv_hist {
    const double *bounds; /* upper bounds, ascending; +Inf is implicit */
    int nbounds;
    uint64_t counts[SRV_HIST_MAX + 1]; /* per bucket (not cumulative); last is +Inf */
    double sum;
    uint64_t count;
} srv_hist;

/* Statistics of one model (or, for `http`, of the whole server). */
typedef struct srv_stats {
    pthread_mutex_t mu;
    int codes[SRV_CODES_MAX];
    uint64_t by_code[SRV_CODES_MAX]; /* requests answered with codes[i] */
    uint64_t other_codes;
    uint64_t failures; /* requests answered with a 4xx or 5xx */
    uint64_t items;    /* batch items run */
    srv_hist latency;  /* request seconds, first byte to answer */
    srv_hist queue;    /* seconds spent queued before the run */
    srv_hist batch;    /* batch size of each session run */
} srv_stats;

void srv_stats_init(srv_stats *s);
void srv_stats_destroy(srv_stats *s);
/* A request answered with HTTP status `code` after `seconds`. */
void srv_stats_request(srv_stats *s, int code, double seconds);
/* A session run over `items` batch items, after the oldest request waited `queued` s. */
void srv_stats_run(srv_stats *s, int64_t items, double queued);

/* Writes the Prometheus text exposition for the server (`http`) and for each model
 * (names[i], models[i], with queue lengths queued[i]). */
void srv_stats_write(srv_buf *out, srv_stats *http, const char *const *names,
                     srv_stats *const *models, const int *queued, size_t n);

#endif
