/* halos_bench.c -- HALOS-style sub-linear output scoring against exact scoring, on the
 * last layer of a model trained by `pillar train-xc`:
 *
 *   halos_bench MODEL.onnx TEST.txt [--points N] [--k K] [--lsh K,L] [--mips R]
 *               [--max-candidates N] [--topk N] [--bucket N] [--head N] [--cpu-time]
 *               [--train TRAIN.txt --examples N]
 *
 * Hidden vectors of the first N test points are computed once; then the output layer is
 * scored exactly (blocked GEMM over all queries at once -- the fastest exact way -- and
 * one query at a time) and by HALOS (hash, gather candidates, score them), one thread
 * each. Prints time per query, the speed-up, P@1 of both against the true labels, and
 * recall of the exact top k. With --train, the index also learns from N training
 * examples (their labels inserted under their hidden vectors).
 *
 * Built by bench/xc/run_bench.sh against the static library (internal headers). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lsh/halos.h"
#include "lsh/vec.h"
#include "xc/xc.h"

static bool cpu_clock = false;

/* Wall time, or with --cpu-time this thread's CPU time (a fair measure on a machine
 * busy with other work: the query loops are single-threaded). */
static double now(void) {
    struct timespec t;
    clock_gettime(cpu_clock ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int die(const char *what) {
    fprintf(stderr, "halos_bench: %s: %s\n", what, pl_error_msg());
    return 1;
}

static bool has_label(const pl_xc_data *d, int64_t i, uint32_t l) {
    for (int64_t k = d->lrow[i]; k < d->lrow[i + 1]; k++)
        if (d->lab[k] == l) return true;
    return false;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: halos_bench MODEL.onnx TEST.txt [--points N] [--k K] [--lsh K,L] "
                        "[--mips R] [--max-candidates N] [--topk N] [--bucket N] [--cpu-time] "
                        "[--train TRAIN.txt --examples N]\n");
        return 1;
    }
    int64_t npts = 5000, maxc = 0, nex = 0, head = -1;
    int k = 5, K = 0, L = 0, mips = -1, topk = 0, bucket = 0;
    const char *train_path = NULL;
    for (int i = 3; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(a, "--points"))
            npts = atoll(v), i++;
        else if (!strcmp(a, "--k"))
            k = atoi(v), i++;
        else if (!strcmp(a, "--lsh"))
            sscanf(v, "%d,%d", &K, &L), i++;
        else if (!strcmp(a, "--mips"))
            mips = atoi(v), i++;
        else if (!strcmp(a, "--max-candidates"))
            maxc = atoll(v), i++;
        else if (!strcmp(a, "--topk"))
            topk = atoi(v), i++;
        else if (!strcmp(a, "--bucket"))
            bucket = atoi(v), i++;
        else if (!strcmp(a, "--head"))
            head = atoll(v), i++;
        else if (!strcmp(a, "--cpu-time"))
            cpu_clock = true;
        else if (!strcmp(a, "--train"))
            train_path = v, i++;
        else if (!strcmp(a, "--examples"))
            nex = atoll(v), i++;
        else {
            fprintf(stderr, "halos_bench: unknown option %s\n", a);
            return 1;
        }
    }
    pl_xc_model *m;
    pl_xc_data *d;
    if (pl_xc_import_onnx(argv[1], &m) != PL_OK) return die("model");
    if (pl_xc_data_read(argv[2], &d) != PL_OK) return die("test data");
    if (npts > d->n) npts = d->n;
    int64_t H = m->hidden, C = m->n_labels;
    float *Hq = malloc(sizeof(float) * (size_t)(npts * H));
    for (int64_t i = 0; i < npts; i++)
        pl_xc_hidden(m, d->feat + d->row[i], d->val + d->row[i], d->row[i + 1] - d->row[i],
                     Hq + i * H);

    pl_halos_opts o;
    pl_halos_opts_default(&o, C);
    if (K) o.lsh.K = K;
    if (L) o.lsh.L = L;
    if (mips >= 0) o.mips_ranges = mips;
    if (maxc) o.max_candidates = maxc;
    if (bucket) o.lsh.bucket_cap = bucket;
    if (head >= 0) o.head = head;
    if (topk) {
        o.sample.mode = PL_LSH_TOPK;
        o.sample.top_k = topk;
        if (!maxc) o.max_candidates = topk;
    }
    o.threads = 2;
    double t0 = now();
    pl_halos_index *ix;
    if (pl_halos_index_build(m->W2, m->b2, C, H, &o, &ix) != PL_OK) return die("index");
    double t_build = now() - t0;
    if (train_path && nex > 0) {
        pl_xc_data *tr;
        if (pl_xc_data_read(train_path, &tr) != PL_OK) return die("training data");
        if (nex > tr->n) nex = tr->n;
        float *Ht = malloc(sizeof(float) * (size_t)(nex * H));
        for (int64_t i = 0; i < nex; i++)
            pl_xc_hidden(m, tr->feat + tr->row[i], tr->val + tr->row[i],
                         tr->row[i + 1] - tr->row[i], Ht + i * H);
        t0 = now();
        if (pl_halos_index_add_examples(ix, Ht, H, nex, tr->lrow, tr->lab) != PL_OK)
            return die("examples");
        t_build += now() - t0;
        free(Ht);
        pl_xc_data_destroy(tr);
    }

    /* exact, all queries in one blocked GEMM (the fastest exact way) */
    uint32_t *el = malloc(sizeof(uint32_t) * (size_t)(npts * k));
    float *es = malloc(sizeof(float) * (size_t)(npts * k));
    t0 = now();
    pl_halos_exact_topk(ix, Hq, H, npts, k, el, es);
    double t_exact = (now() - t0) / (double)npts;
    /* exact, one query at a time (latency at batch 1: one pass over the layer) */
    int64_t n1 = npts < 500 ? npts : 500;
    uint32_t l1[64];
    float s1[64];
    t0 = now();
    for (int64_t i = 0; i < n1; i++) pl_halos_exact_topk(ix, Hq + i * H, H, 1, k, l1, s1);
    double t_exact1 = (now() - t0) / (double)n1;

    /* HALOS */
    pl_halos_query *q;
    if (pl_halos_query_create(ix, &q) != PL_OK) return die("query");
    uint32_t *hl = malloc(sizeof(uint32_t) * (size_t)(npts * k));
    float *hs = malloc(sizeof(float) * (size_t)(npts * k));
    int64_t scored = 0, ns;
    t0 = now();
    for (int64_t i = 0; i < npts; i++) {
        pl_halos_topk(q, Hq + i * H, k, hl + i * k, hs + i * k, &ns);
        scored += ns;
    }
    double t_halos = (now() - t0) / (double)npts;

    int64_t p1e = 0, p1h = 0, rec = 0, top1same = 0;
    for (int64_t i = 0; i < npts; i++) {
        p1e += has_label(d, i, el[i * k]);
        p1h += hl[i * k] != UINT32_MAX && has_label(d, i, hl[i * k]);
        top1same += hl[i * k] == el[i * k];
        for (int a = 0; a < k; a++)
            for (int b = 0; b < k; b++) rec += el[i * k + a] == hl[i * k + b];
    }
    double n = (double)npts;
    printf("halos: %lld outputs x %lld, %lld queries, index K=%d L=%d bucket %d, mips ranges %d, "
           "head %lld, built in %.2f s (%.1f MB); times are %s\n",
           (long long)C, (long long)H, (long long)npts, o.lsh.K, o.lsh.L, o.lsh.bucket_cap,
           o.mips_ranges, (long long)o.head, t_build, (double)pl_halos_index_bytes(ix) / 1e6,
           cpu_clock ? "CPU time of the querying thread" : "wall-clock");
    printf("exact (batched GEMM): %8.1f us/query   P@1 %.4f\n", t_exact * 1e6, p1e / n);
    printf("exact (one query):    %8.1f us/query\n", t_exact1 * 1e6);
    printf(
        "halos:                %8.1f us/query   P@1 %.4f   candidates %.0f (%.2f%% of outputs)\n",
        t_halos * 1e6, p1h / n, (double)scored / n, 100.0 * (double)scored / n / (double)C);
    printf("speed-up vs batched exact %.1fx, vs one-query exact %.1fx; P@1 difference %+.4f; "
           "top-1 agreement %.4f; recall@%d %.4f\n",
           t_exact / t_halos, t_exact1 / t_halos, (p1h - p1e) / n, top1same / n, k, rec / (n * k));
    pl_halos_query_destroy(q);
    pl_halos_index_destroy(ix);
    free(Hq), free(el), free(es), free(hl), free(hs);
    pl_xc_data_destroy(d);
    pl_xc_model_destroy(m);
    return 0;
}
