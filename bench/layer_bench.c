/* layer_bench.c -- per-layer latency of a model at batch 1, robust on a busy machine:
 * the minimum and the median over many runs of each layer's wall time (the profiler's
 * per-run times), and of the whole run. With --ab ENV=VALUE a second session is made
 * with that environment variable set while it is created, and the runs of the two
 * sessions alternate, so both see the same machine load (an A/B of a pool or planning
 * option inside one process). Not part of ctest.
 *
 *   layer_bench MODEL [--threads N] [--runs N] [--schedule layers|columns|auto]
 *               [--ab NAME=VALUE] [--all]
 *
 * Prints the layers whose median differs by more than 2 us between A and B (all with
 * --all), then the sums of the per-layer minima, 10th percentiles and medians and the
 * same statistics of the whole runs. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pillar.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp_d(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

typedef struct side {
    pillar_session *s;
    pillar_tensor *in[8];
    const char *in_name[8];
    size_t nin, nout;
    size_t nn;
    double *t;   /* [runs][nn] per-layer times */
    double *run; /* [runs] */
    double *prev;
} side;

static int make_side(const char *path, int threads, int sched, side *sd, int runs) {
    pillar_model *m = NULL;
    pillar_options *o = NULL;
    if (pillar_model_load(path, &m) || pillar_options_create(&o) ||
        pillar_options_set_threads(o, threads) ||
        (sched >= 0 && pillar_options_set_schedule(o, (pillar_schedule)sched)) ||
        pillar_session_create_from(&m, o, &sd->s)) {
        fprintf(stderr, "layer_bench: %s\n", pillar_last_error());
        return 1;
    }
    pillar_options_destroy(o);
    /* every input: floats in [-0.5, 0.5), integers small indices (i % 100) */
    sd->nin = pillar_session_input_count(sd->s);
    sd->nout = pillar_session_output_count(sd->s);
    if (sd->nin > 8 || sd->nout > 8) {
        fprintf(stderr, "layer_bench: at most 8 inputs and outputs\n");
        return 1;
    }
    for (size_t k = 0; k < sd->nin; k++) {
        const int64_t *dims;
        size_t nd;
        pillar_dtype dt;
        if (pillar_session_input(sd->s, k, &sd->in_name[k], &dt, &nd, &dims)) {
            fprintf(stderr, "layer_bench: %s\n", pillar_last_error());
            return 1;
        }
        int64_t d[8];
        for (size_t i = 0; i < nd && i < 8; i++) d[i] = dims[i] < 0 ? 1 : dims[i];
        if (pillar_tensor_create(dt, nd, d, NULL, &sd->in[k])) return 1;
        void *x = pillar_tensor_data(sd->in[k]);
        size_t n = 1;
        for (size_t i = 0; i < nd; i++) n *= (size_t)d[i];
        for (size_t i = 0; i < n; i++) {
            if (dt == PILLAR_FLOAT32) ((float *)x)[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
            else if (dt == PILLAR_INT64) ((int64_t *)x)[i] = (int64_t)(i % 100);
            else if (dt == PILLAR_INT32) ((int32_t *)x)[i] = (int32_t)(i % 100);
        }
    }
    sd->nn = pillar_session_node_count(sd->s);
    sd->t = calloc((size_t)runs * sd->nn, sizeof(double));
    sd->run = calloc((size_t)runs, sizeof(double));
    sd->prev = calloc(sd->nn, sizeof(double));
    pillar_session_set_profiling(sd->s, 1);
    return 0;
}

static int run_side(side *sd, int r) {
    pillar_tensor *out[8] = {NULL};
    const double t0 = now_ms();
    if (pillar_session_run(sd->s, sd->nin, sd->in_name, (const pillar_tensor *const *)sd->in,
                           sd->nout, NULL, out)) {
        fprintf(stderr, "layer_bench: %s\n", pillar_last_error());
        return 1;
    }
    if (r >= 0) sd->run[r] = now_ms() - t0;
    for (size_t k = 0; k < sd->nout; k++) pillar_tensor_destroy(out[k]);
    for (size_t i = 0; i < sd->nn; i++) {
        double tot;
        pillar_session_node_time(sd->s, i, &tot, NULL);
        if (r >= 0) sd->t[(size_t)r * sd->nn + i] = tot - sd->prev[i];
        sd->prev[i] = tot;
    }
    return 0;
}

int main(int argc, char **argv) {
    const char *path = NULL, *ab = NULL;
    int threads = 2, runs = 400, sched = -1, all = 0;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--threads") == 0)
            threads = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--runs") == 0)
            runs = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--ab") == 0)
            ab = argv[++i];
        else if (strcmp(argv[i], "--all") == 0)
            all = 1;
        else if (i + 1 < argc && strcmp(argv[i], "--schedule") == 0) {
            const char *s = argv[++i];
            sched = strcmp(s, "layers") == 0    ? PILLAR_SCHEDULE_LAYERS
                    : strcmp(s, "columns") == 0 ? PILLAR_SCHEDULE_COLUMNS
                                                : PILLAR_SCHEDULE_AUTO;
        } else if (argv[i][0] != '-' && !path)
            path = argv[i];
        else {
            fprintf(stderr, "usage: layer_bench MODEL [--threads N] [--runs N] [--schedule S] "
                            "[--ab NAME=VALUE] [--all]\n");
            return 2;
        }
    }
    if (!path || runs < 3) {
        fprintf(stderr, "usage: layer_bench MODEL [--threads N] [--runs N] [--schedule S] [--ab "
                        "NAME=VALUE] [--all]\n");
        return 2;
    }
    side sd[2] = {{0}, {0}};
    const int nside = ab ? 2 : 1;
    if (make_side(path, threads, sched, &sd[0], runs)) return 1;
    if (ab) {
        char name[256];
        const char *eq = strchr(ab, '=');
        if (!eq || (size_t)(eq - ab) >= sizeof name) {
            fprintf(stderr, "layer_bench: --ab wants NAME=VALUE\n");
            return 2;
        }
        memcpy(name, ab, (size_t)(eq - ab));
        name[eq - ab] = '\0';
        char *old = getenv(name) ? strdup(getenv(name)) : NULL;
        setenv(name, eq + 1, 1);
        if (make_side(path, threads, sched, &sd[1], runs)) return 1;
        if (old)
            setenv(name, old, 1);
        else
            unsetenv(name);
        free(old);
    }
    for (int w = 0; w < 20; w++)
        for (int k = 0; k < nside; k++)
            if (run_side(&sd[k], -1)) return 1;
    for (int r = 0; r < runs; r++)
        for (int k = 0; k < nside; k++)
            if (run_side(&sd[(r + k) % nside], r)) return 1;
    double *col = malloc(sizeof(double) * (size_t)runs);
    double summin[2] = {0}, summed[2] = {0}, sump10[2] = {0};
    printf("%-4s %-44s %10s %10s", "#", "layer (kernel)", "A min", "A med");
    if (ab) printf(" %10s %10s %7s", "B min", "B med", "B/A");
    printf("\n");
    for (size_t i = 0; i < sd[0].nn; i++) {
        double mn[2], md[2];
        for (int k = 0; k < nside; k++) {
            for (int r = 0; r < runs; r++) col[r] = sd[k].t[(size_t)r * sd[k].nn + i];
            md[k] = median(col, runs);
            mn[k] = col[0];
            summin[k] += mn[k];
            sump10[k] += col[runs / 10];
            summed[k] += md[k];
        }
        if (!all && !(ab && (md[1] - md[0] > 0.002 || md[0] - md[1] > 0.002))) continue;
        const char *name = "";
        pillar_session_node(sd[0].s, i, &name, NULL, NULL, NULL, NULL, NULL, NULL);
        const size_t len = strlen(name);
        char label[64];
        snprintf(label, sizeof label, "%s (%s)", len > 30 ? name + len - 30 : name,
                 pillar_session_node_kernel(sd[0].s, i));
        printf("%-4zu %-44s %10.4f %10.4f", i, label, mn[0], md[0]);
        if (ab) printf(" %10.4f %10.4f %7.3f", mn[1], md[1], md[0] > 0 ? md[1] / md[0] : 0);
        printf("\n");
    }
    for (int k = 0; k < nside; k++) {
        memcpy(col, sd[k].run, sizeof(double) * (size_t)runs);
        const double med = median(col, runs);
        printf("%s: layers sum of min %.3f ms, of 10th percentiles %.3f ms, of medians %.3f ms; "
               "run min %.3f, 10th percentile %.3f, median %.3f ms\n",
               k ? "B" : "A", summin[k], sump10[k], summed[k], col[0], col[runs / 10], med);
    }
    free(col);
    for (int k = 0; k < nside; k++) {
        for (size_t i = 0; i < sd[k].nin; i++) pillar_tensor_destroy(sd[k].in[i]);
        pillar_session_destroy(sd[k].s);
        free(sd[k].t);
        free(sd[k].run);
        free(sd[k].prev);
    }
    return 0;
}
