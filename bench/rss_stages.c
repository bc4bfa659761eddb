/* rss_stages.c -- where a model's memory goes: the process's resident set (VmRSS, split
 * into anonymous and file-backed pages) and its peak (VmHWM) after each stage of what
 * `pillar bench` does: load, session creation (taking the model over, as bench does),
 * the first run and a few more. Not part of ctest.
 *
 *   rss_stages MODEL [--threads N] [--runs N] [--keep-model]
 *
 * --keep-model creates the session with pillar_session_create (the model stays loaded
 * until the end) instead of pillar_session_create_from. Integer inputs are filled with
 * small indices (i % 100), float inputs with values in [-0.5, 0.5); dynamic dims are 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pillar.h"

static long status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long v = -1;
    size_t n = strlen(key);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, n) == 0 && line[n] == ':') {
            v = strtol(line + n + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

static void stage(const char *what) {
    printf("%-22s VmRSS %7.1f MB (anon %7.1f, file %7.1f)  VmHWM %7.1f MB\n", what,
           status_kb("VmRSS") / 1024.0, status_kb("RssAnon") / 1024.0,
           status_kb("RssFile") / 1024.0, status_kb("VmHWM") / 1024.0);
    fflush(stdout);
}

static int fail(void) {
    fprintf(stderr, "rss_stages: %s\n", pillar_last_error());
    return 1;
}

int main(int argc, char **argv) {
    const char *path = NULL;
    int threads = 1, runs = 5, keep = 0;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--threads") == 0)
            threads = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--runs") == 0)
            runs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--keep-model") == 0)
            keep = 1;
        else
            path = argv[i];
    }
    if (!path) {
        fprintf(stderr, "usage: rss_stages MODEL [--threads N] [--runs N] [--keep-model]\n");
        return 2;
    }
    stage("start");
    pillar_model *m = NULL;
    pillar_options *o = NULL;
    pillar_session *s = NULL;
    if (pillar_model_load(path, &m)) return fail();
    stage("model loaded");
    if (pillar_options_create(&o) || pillar_options_set_threads(o, threads)) return fail();
    if (keep ? pillar_session_create(m, o, &s) : pillar_session_create_from(&m, o, &s))
        return fail();
    stage("session created");
    size_t nin = pillar_session_input_count(s);
    pillar_tensor **ins = calloc(nin + 1, sizeof *ins);
    const char **names = calloc(nin + 1, sizeof *names);
    if (!ins || !names) return 1;
    for (size_t k = 0; k < nin; k++) {
        pillar_dtype dt;
        size_t nd;
        const int64_t *dims;
        if (pillar_session_input(s, k, &names[k], &dt, &nd, &dims)) return fail();
        int64_t d[16];
        size_t n = 1;
        for (size_t i = 0; i < nd && i < 16; i++) {
            d[i] = dims[i] < 0 ? 1 : dims[i];
            n *= (size_t)d[i];
        }
        if (pillar_tensor_create(dt, nd, d, NULL, &ins[k])) return fail();
        void *x = pillar_tensor_data(ins[k]);
        for (size_t i = 0; i < n; i++) {
            if (dt == PILLAR_FLOAT32)
                ((float *)x)[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
            else if (dt == PILLAR_INT64)
                ((int64_t *)x)[i] = (int64_t)(i % 100);
            else if (dt == PILLAR_INT32)
                ((int32_t *)x)[i] = (int32_t)(i % 100);
        }
    }
    size_t nout = pillar_session_output_count(s);
    pillar_tensor **outs = calloc(nout + 1, sizeof *outs);
    if (!outs) return 1;
    for (int r = 0; r < runs; r++) {
        if (pillar_session_run(s, nin, names, (const pillar_tensor *const *)ins, nout, NULL, outs))
            return fail();
        for (size_t k = 0; k < nout; k++) {
            pillar_tensor_destroy(outs[k]);
            outs[k] = NULL;
        }
        if (r == 0) stage("first run");
    }
    stage("after runs");
    for (size_t k = 0; k < nin; k++) pillar_tensor_destroy(ins[k]);
    free(ins);
    free(names);
    free(outs);
    pillar_session_destroy(s);
    pillar_options_destroy(o);
    pillar_model_destroy(m);
    stage("all freed");
    return 0;
}
