/* lsh_output.c -- `--lsh-output` for run and bench, and recall against exact top-k. */
#include "lsh_output.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_lsh_output_parse(const char *cmd, const char *text, cli_lsh_output *o) {
    static const int64_t hi[3] = {30, 1024, 10000};
    static const char *what[3] = {"K (bits per key)", "L (tables)", "TOPK"};
    int64_t v[3] = {0, 0, 5};
    char buf[64], *part[4];
    int n = 0;
    if (strlen(text) >= sizeof buf) return cli_usage_error(cmd, "--lsh-output: '%s' is too long", text);
    strcpy(buf, text);
    for (char *p = buf; n < 4; n++) {
        part[n] = p;
        char *c = strchr(p, ',');
        if (!c) {
            n++;
            break;
        }
        *c = 0;
        p = c + 1;
    }
    if (n < 2 || n > 3) return cli_usage_error(cmd, "--lsh-output %s: expected K,L or K,L,TOPK", text);
    for (int i = 0; i < n; i++)
        if (!cli_parse_int(part[i], 1, hi[i], &v[i]))
            return cli_usage_error(cmd, "--lsh-output %s: %s '%s' is not an integer from 1 to %lld", text, what[i],
                                   part[i], (long long)hi[i]);
    o->K = (int)v[0];
    o->L = (int)v[1];
    o->topk = (int)v[2];
    return CLI_OK;
}

int cli_lsh_output_apply(const cli_lsh_output *o, pillar_options *opt) {
    if (!o->K) return CLI_OK;
    pillar_status st = pillar_options_set_lsh_output(opt, o->K, o->L, o->topk);
    return st == PILLAR_OK ? CLI_OK : cli_fail_status(st, CLI_OTHER);
}

static const char SUFFIX[] = "_topk_labels";

/* Index of the session output called `name`, or -1. */
static long output_index(const pillar_session *s, const char *name, size_t len) {
    size_t n = pillar_session_output_count(s);
    for (size_t i = 0; i < n; i++) {
        const char *on = NULL;
        if (pillar_session_output(s, i, &on, NULL, NULL, NULL) == PILLAR_OK && on && strlen(on) == len &&
            !strncmp(on, name, len))
            return (long)i;
    }
    return -1;
}

/* Indices of the k largest of x[0..n), best first (ties: lower index first). */
static void top_k(const float *x, int64_t n, int64_t k, int64_t *idx) {
    int64_t m = 0;
    for (int64_t j = 0; j < n; j++) {
        if (m == k && !(x[j] > x[idx[k - 1]])) continue;
        int64_t p = m < k ? m++ : k - 1;
        while (p > 0 && x[j] > x[idx[p - 1]]) {
            idx[p] = idx[p - 1];
            p--;
        }
        idx[p] = j;
    }
}

int cli_lsh_recall(pillar_session *approx, pillar_session *exact, size_t nin, const char **names,
                   pillar_tensor *const *ins) {
    size_t na = pillar_session_output_count(approx), ne = pillar_session_output_count(exact);
    pillar_tensor **oa = calloc(na + 1, sizeof *oa), **oe = calloc(ne + 1, sizeof *oe);
    int64_t *best = NULL;
    int rc = CLI_OK;
    if (!oa || !oe) {
        rc = cli_fail(CLI_OTHER, "out of memory");
        goto done;
    }
    pillar_status st = pillar_session_run(approx, nin, names, (const pillar_tensor *const *)ins, na, NULL, oa);
    if (st == PILLAR_OK) st = pillar_session_run(exact, nin, names, (const pillar_tensor *const *)ins, ne, NULL, oe);
    if (st != PILLAR_OK) {
        rc = cli_fail_status(st, CLI_OTHER);
        goto done;
    }
    for (size_t i = 0; i < na && rc == CLI_OK; i++) {
        const char *name = NULL;
        pillar_session_output(approx, i, &name, NULL, NULL, NULL);
        size_t len = name ? strlen(name) : 0, sl = sizeof SUFFIX - 1;
        if (len <= sl || strcmp(name + len - sl, SUFFIX) != 0) continue;
        long ei = output_index(exact, name, len - sl);
        if (ei < 0) continue;
        const pillar_tensor *lab = oa[i], *full = oe[ei];
        size_t nd = pillar_tensor_ndim(full);
        if (pillar_tensor_dtype(full) != PILLAR_FLOAT32 || nd < 1 || pillar_tensor_ndim(lab) != nd) {
            rc = cli_fail(CLI_OTHER, "recall: output '%.*s' is not a float32 tensor", (int)(len - sl), name);
            break;
        }
        int64_t n_out = pillar_tensor_dims(full)[nd - 1], k = pillar_tensor_dims(lab)[nd - 1];
        int64_t rows = n_out ? pillar_tensor_numel(full) / n_out : 0;
        free(best);
        if (!(best = malloc(sizeof(int64_t) * (size_t)(k ? k : 1)))) {
            rc = cli_fail(CLI_OTHER, "out of memory");
            break;
        }
        const float *x = pillar_tensor_data(full);
        const int64_t *l = pillar_tensor_data(lab);
        double r1 = 0, rk = 0;
        for (int64_t r = 0; r < rows; r++) {
            top_k(x + r * n_out, n_out, k, best);
            r1 += l[r * k] == best[0];
            int64_t hit = 0;
            for (int64_t a = 0; a < k; a++)
                for (int64_t b = 0; b < k; b++) hit += l[r * k + a] >= 0 && l[r * k + a] == best[b];
            rk += (double)hit / (double)k;
        }
        if (rows) r1 /= (double)rows, rk /= (double)rows;
        printf("recall of '%.*s' against exact top-%lld on the same %lld rows: recall@1 %.4f  recall@%lld %.4f\n",
               (int)(len - sl), name, (long long)k, (long long)rows, r1, (long long)k, rk);
    }
done:
    for (size_t i = 0; oa && i < na; i++) pillar_tensor_destroy(oa[i]);
    for (size_t i = 0; oe && i < ne; i++) pillar_tensor_destroy(oe[i]);
    free(oa);
    free(oe);
    free(best);
    return rc;
}
