/* train_xc.c -- `pillar train-xc TRAIN TEST`: trains an extreme-classification network
 * (sparse input -> ReLU hidden layer -> one output per label) with LSH-sampled output
 * neurons (SLIDE-style) or the full softmax (--dense), reports precision at 1/3/5 on
 * the test file, and writes the model as ONNX.
 *
 * It uses the library's internal XC trainer (src/xc/xc.h): there is no public C API for
 * training yet. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "progress.h"
#include "xc/xc.h"

void help_train_xc(void) {
    printf("usage: pillar train-xc TRAIN TEST [--hidden N] [--lsh FAMILY,K,L | --dense]\n"
           "                       [--epochs N] [--batch B] [--lr LR] [--out MODEL.onnx]\n"
           "                       [--eval-every N] [--eval-points N] [--log FILE.csv] ...\n"
           "\n"
           "Trains a network for extreme classification: the sparse input goes through a\n"
           "dense ReLU hidden layer to one output neuron per label. Each example computes\n"
           "and updates only its true labels' output neurons and the ones locality-\n"
           "sensitive hashing of its hidden vector retrieves: by default the labels of\n"
           "earlier examples whose hidden vectors hashed alike (--lsh-source neurons: the\n"
           "neurons whose weights hash alike, as in SLIDE); --dense trains the full\n"
           "softmax instead, as a baseline. Adam; threads share the work of each\n"
           "batch. After every epoch (and every --eval-every batches) it prints precision at\n"
           "1, 3 and 5 on TEST, scoring every label. TRAIN and TEST are in the extreme-\n"
           "classification repository's text format: a header 'POINTS FEATURES LABELS', then\n"
           "one line per point, 'l1,l2,... f:v f:v ...'.\n"
           "\n"
           "options:\n"
           "  --hidden N          hidden layer width (default 128)\n"
           "  --lsh FAMILY,K,L    hash family (simhash, wta, dwta), hashes per key, tables\n"
           "                      (default simhash,10,32)\n"
           "  --dense             train the full softmax (no hashing)\n"
           "  --epochs N          passes over TRAIN (default 1)\n"
           "  --batch B           examples per Adam step (default 128)\n"
           "  --lr LR             Adam learning rate (default 0.001)\n"
           "  --out FILE.onnx     write the trained model as ONNX (input 'features'\n"
           "                      [batch, features] float, output 'scores' [batch, labels])\n"
           "  --eval-every N      also evaluate every N batches (default: after epochs only)\n"
           "  --eval-points N     evaluate on the first N test points (default: all)\n"
           "  --log FILE.csv      one row per evaluation: epoch, batch, seconds, p_at_1,\n"
           "                      p_at_3, p_at_5, loss, active, rebuilds, recall_1, recall_5\n"
           "                      (recall: share of the exact top 1 / top 5 labels of test\n"
           "                      points that their LSH candidates contain)\n"
           "  --threads N         threads (default: one per core)\n"
           "  --seed S            seed of the weights, the hashes and the order (default 1)\n"
           "  --time-limit SEC    stop after SEC seconds of training (evaluating first)\n"
           "  --quiet             no progress bar (evaluation lines are still printed)\n"
           "\n"
           "LSH options:\n"
           "  --lsh-source S      where candidates come from: examples (default: labels\n"
           "                      inserted under the hash of the hidden vectors of the\n"
           "                      examples that carry them, as training streams by),\n"
           "                      neurons (SLIDE: the output weights, hashed into tables\n"
           "                      rebuilt on a schedule) or both\n"
           "  --bucket-size N     ids kept per bucket (default 128)\n"
           "  --bucket-policy P   fifo (default) or reservoir: what a full bucket keeps\n"
           "  --bin-size N        WTA/DWTA coordinates per bin (default 8)\n"
           "  --density D         SimHash fraction of nonzero projection entries (default 1)\n"
           "  --sample MODE       topk:N (default: the N = max-active ids found in most\n"
           "                      buckets), union, or threshold:T (buckets an id must be in)\n"
           "  --max-active N      output neurons per example at most (default labels/200,\n"
           "                      from 256 to 2048)\n"
           "  --min-active N      random labels fill each example up to N (default 0)\n"
           "  --rebuild F,G,M     rebuild the tables after F batches, then every period\n"
           "                      times G, at most M batches (default 50,1.2,1000)\n"
           "  --mips R            hash the output neurons for inner-product search (MIPS\n"
           "                      transform in R norm ranges); 0 = by direction (cosine)\n"
           "  --hogwild           threads add gradients to shared buffers without locks,\n"
           "                      instead of per-thread buffers merged before each step\n"
           "\n"
           "Seconds in the output and the log count training only, not evaluation.\n");
}

typedef struct xc_display {
    progress p; /* the same display as `pillar train` (progress.h) */
    bool dense;
    FILE *log;
    int epoch;
} xc_display;

static void on_batch(void *ctx, const pl_xc_report *r) {
    xc_display *x = ctx;
    if (r->epoch != x->epoch) {
        x->epoch = r->epoch;
        progress_epoch_begin(&x->p, r->epoch, 0);
    }
    progress_step(&x->p, r->epoch_batch, r->epoch_examples, r->epoch_loss, r->epoch_correct,
                  r->epoch_seconds);
}

static void on_eval(void *ctx, const pl_xc_report *r) {
    xc_display *x = ctx;
    char line[512];
    int k = snprintf(
        line, sizeof line,
        "epoch %d  batch %lld  %.1f s  P@1 %.4f  P@3 %.4f  P@5 %.4f  loss %.4f  active %.0f",
        r->epoch, (long long)r->batch, r->seconds, r->eval.p1, r->eval.p3, r->eval.p5, r->loss,
        r->active);
    if (!x->dense)
        snprintf(line + k, sizeof line - (size_t)k,
                 "  rebuilds %lld (%.1f s)  lsh recall@1 %.3f @5 %.3f", (long long)r->rebuilds,
                 r->rebuild_seconds, r->recall1, r->recall5);
    /* evaluation lines are results: printed even with --quiet */
    bool q = x->p.quiet;
    x->p.quiet = false;
    progress_line(&x->p, "%s", line);
    x->p.quiet = q;
    if (x->log) {
        fprintf(x->log, "%d,%lld,%.3f,%.6f,%.6f,%.6f,%.6f,%.1f,%lld,%.4f,%.4f\n", r->epoch,
                (long long)r->batch, r->seconds, r->eval.p1, r->eval.p3, r->eval.p5, r->loss,
                r->active, (long long)r->rebuilds, r->recall1, r->recall5);
        fflush(x->log);
    }
}

static int fail_pl(pl_status s, int io_code) {
    const char *msg = pl_error_msg();
    fprintf(stderr, "pillar: %s\n", msg && *msg ? msg : pillar_status_name(s));
    switch (s) {
    case PL_ERR_INPUT:
        return CLI_INPUT;
    case PL_ERR_IO:
        return io_code;
    case PL_ERR_ARGUMENT:
        return CLI_USAGE;
    default:
        return CLI_OTHER;
    }
}

static bool parse_double(const char *s, double lo, double hi, double *out) {
    if (!s || !*s) return false;
    char *e;
    errno = 0;
    double v = strtod(s, &e);
    if (*e || errno || !(v >= lo && v <= hi)) return false;
    *out = v;
    return true;
}

/* "simhash,9,32" */
static bool parse_lsh(const char *s, pl_lsh_opts *o) {
    char buf[64];
    if (strlen(s) >= sizeof buf) return false;
    strcpy(buf, s);
    char *c1 = strchr(buf, ','), *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
    if (!c1 || !c2) return false;
    *c1 = *c2 = 0;
    int64_t K, L;
    if (!pl_lsh_family_parse(buf, &o->family) || !cli_parse_int(c1 + 1, 1, 32, &K) ||
        !cli_parse_int(c2 + 1, 1, 4096, &L))
        return false;
    o->K = (int)K;
    o->L = (int)L;
    return true;
}

static bool parse_sample(const char *s, pl_lsh_sample_opts *o) {
    int64_t v;
    if (strcmp(s, "union") == 0) {
        o->mode = PL_LSH_UNION;
        return true;
    }
    if (strncmp(s, "topk:", 5) == 0 && cli_parse_int(s + 5, 1, INT32_MAX, &v)) {
        o->mode = PL_LSH_TOPK;
        o->top_k = (int)v;
        return true;
    }
    if (strncmp(s, "threshold:", 10) == 0 && cli_parse_int(s + 10, 1, 65535, &v)) {
        o->mode = PL_LSH_THRESHOLD;
        o->threshold = (int)v;
        return true;
    }
    return false;
}

static bool parse_rebuild(const char *s, pl_xc_train_opts *o) {
    char buf[64];
    if (strlen(s) >= sizeof buf) return false;
    strcpy(buf, s);
    char *c1 = strchr(buf, ','), *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
    if (!c1 || !c2) return false;
    *c1 = *c2 = 0;
    int64_t first, max;
    double g;
    if (!cli_parse_int(buf, 1, INT32_MAX, &first) || !parse_double(c1 + 1, 1.0, 100.0, &g) ||
        !cli_parse_int(c2 + 1, 1, INT32_MAX, &max))
        return false;
    o->rebuild_first = first;
    o->rebuild_growth = g;
    o->rebuild_max = max;
    return true;
}

int cmd_train_xc(int argc, char **argv) {
    const char *cmd = "train-xc";
    cli_args a;
    cli_args_init(&a, cmd, argc, argv);
    pl_xc_train_opts o;
    pl_xc_train_opts_default(&o);
    int64_t hidden = 128;
    const char *pos[2] = {NULL, NULL}, *out = NULL, *log_path = NULL;
    int npos = 0;
    bool quiet = false, lsh_given = false;
    char flag[64];
    const char *v;
    while (cli_args_next(&a, flag, sizeof flag, &v)) {
        if (!flag[0]) {
            if (npos == 2) return cli_usage_error(cmd, "unexpected argument '%s'", v);
            pos[npos++] = v;
            continue;
        }
        int64_t iv;
        double dv;
        if (strcmp(flag, "--help") == 0 || strcmp(flag, "-h") == 0) {
            help_train_xc();
            return CLI_OK;
        } else if (strcmp(flag, "--dense") == 0) {
            o.dense = true;
        } else if (strcmp(flag, "--hogwild") == 0) {
            o.hogwild = true;
        } else if (strcmp(flag, "--quiet") == 0) {
            quiet = true;
        } else if (!cli_args_value(&a, flag, &v)) {
            return CLI_USAGE;
        } else if (strcmp(flag, "--hidden") == 0) {
            if (!cli_parse_int(v, 1, 65536, &hidden))
                return cli_usage_error(cmd, "--hidden: '%s' is not a width from 1 to 65536", v);
        } else if (strcmp(flag, "--lsh") == 0) {
            if (!parse_lsh(v, &o.lsh))
                return cli_usage_error(
                    cmd, "--lsh: '%s' is not FAMILY,K,L (family simhash, wta or dwta)", v);
            lsh_given = true;
        } else if (strcmp(flag, "--epochs") == 0) {
            if (!cli_parse_int(v, 1, 1000000, &iv))
                return cli_usage_error(cmd, "--epochs: '%s' is not a count >= 1", v);
            o.epochs = (int)iv;
        } else if (strcmp(flag, "--batch") == 0) {
            if (!cli_parse_int(v, 1, 1 << 20, &iv))
                return cli_usage_error(cmd, "--batch: '%s' is not a size from 1 to 1048576", v);
            o.batch = (int)iv;
        } else if (strcmp(flag, "--lr") == 0) {
            if (!parse_double(v, 1e-12, 1e3, &dv))
                return cli_usage_error(cmd, "--lr: '%s' is not a positive rate", v);
            o.lr = (float)dv;
        } else if (strcmp(flag, "--out") == 0) {
            out = v;
        } else if (strcmp(flag, "--log") == 0) {
            log_path = v;
        } else if (strcmp(flag, "--eval-every") == 0) {
            if (!cli_parse_int(v, 0, INT64_MAX, &o.eval_every))
                return cli_usage_error(cmd, "--eval-every: '%s' is not a count", v);
        } else if (strcmp(flag, "--eval-points") == 0) {
            if (!cli_parse_int(v, 0, INT64_MAX, &o.eval_max))
                return cli_usage_error(cmd, "--eval-points: '%s' is not a count", v);
        } else if (strcmp(flag, "--threads") == 0) {
            if (!cli_parse_int(v, 0, 4096, &iv))
                return cli_usage_error(cmd, "--threads: '%s' is not a number from 0 to 4096", v);
            o.threads = (int)iv;
        } else if (strcmp(flag, "--seed") == 0) {
            if (!cli_parse_int(v, 0, INT64_MAX, &iv))
                return cli_usage_error(cmd, "--seed: '%s' is not a non-negative integer", v);
            o.seed = (uint64_t)iv;
            o.lsh.seed = (uint64_t)iv * 7919 + 1;
        } else if (strcmp(flag, "--time-limit") == 0) {
            if (!parse_double(v, 0, 1e9, &o.time_limit))
                return cli_usage_error(cmd, "--time-limit: '%s' is not a number of seconds", v);
        } else if (strcmp(flag, "--bucket-size") == 0) {
            if (!cli_parse_int(v, 1, 1 << 24, &iv))
                return cli_usage_error(cmd, "--bucket-size: '%s' is not a size from 1 to 16777216",
                                       v);
            o.lsh.bucket_cap = (int)iv;
        } else if (strcmp(flag, "--bucket-policy") == 0) {
            if (strcmp(v, "reservoir") == 0)
                o.lsh.policy = PL_LSH_RESERVOIR;
            else if (strcmp(v, "fifo") == 0)
                o.lsh.policy = PL_LSH_FIFO;
            else
                return cli_usage_error(cmd, "--bucket-policy: '%s' is not reservoir or fifo", v);
        } else if (strcmp(flag, "--bin-size") == 0) {
            if (!cli_parse_int(v, 2, 256, &iv))
                return cli_usage_error(cmd, "--bin-size: '%s' is not a power of two from 2 to 256",
                                       v);
            o.lsh.bin_size = (int)iv;
        } else if (strcmp(flag, "--density") == 0) {
            if (!parse_double(v, 1e-6, 1, &dv))
                return cli_usage_error(cmd, "--density: '%s' is not in (0, 1]", v);
            o.lsh.density = (float)dv;
        } else if (strcmp(flag, "--sample") == 0) {
            if (!parse_sample(v, &o.sample))
                return cli_usage_error(cmd, "--sample: '%s' is not union, topk:N or threshold:T",
                                       v);
        } else if (strcmp(flag, "--max-active") == 0) {
            if (!cli_parse_int(v, 1, INT64_MAX, &o.max_active))
                return cli_usage_error(cmd, "--max-active: '%s' is not a count >= 1", v);
        } else if (strcmp(flag, "--min-active") == 0) {
            if (!cli_parse_int(v, 0, INT64_MAX, &o.min_active))
                return cli_usage_error(cmd, "--min-active: '%s' is not a count", v);
        } else if (strcmp(flag, "--mips") == 0) {
            if (!cli_parse_int(v, 0, 255, &iv))
                return cli_usage_error(
                    cmd, "--mips: '%s' is not a number of norm ranges from 0 to 255", v);
            o.mips_ranges = (int)iv;
        } else if (strcmp(flag, "--lsh-source") == 0) {
            if (strcmp(v, "neurons") == 0)
                o.source = PL_XC_NEURONS;
            else if (strcmp(v, "examples") == 0)
                o.source = PL_XC_EXAMPLES;
            else if (strcmp(v, "both") == 0)
                o.source = PL_XC_BOTH;
            else
                return cli_usage_error(cmd, "--lsh-source: '%s' is not neurons, examples or both",
                                       v);
        } else if (strcmp(flag, "--rebuild") == 0) {
            if (!parse_rebuild(v, &o))
                return cli_usage_error(
                    cmd, "--rebuild: '%s' is not FIRST,GROWTH,MAX (e.g. 50,1.2,1000)", v);
        } else {
            return cli_usage_error(cmd, "unknown option '%s'", flag);
        }
    }
    if (npos < 2) return cli_usage_error(cmd, "expected TRAIN and TEST data files");
    if (o.dense && lsh_given) return cli_usage_error(cmd, "--dense and --lsh exclude each other");
    pl_status s = pl_lsh_opts_check(&o.lsh);
    if (!o.dense && s != PL_OK) return cli_usage_error(cmd, "%s", pl_error_msg());

    pl_xc_data *train = NULL, *test = NULL;
    pl_xc_model *m = NULL;
    FILE *log = NULL;
    int rc = CLI_OK;
    if ((s = pl_xc_data_read(pos[0], &train)) != PL_OK) return fail_pl(s, CLI_INPUT);
    if ((s = pl_xc_data_read(pos[1], &test)) != PL_OK) {
        rc = fail_pl(s, CLI_INPUT);
        goto done;
    }
    if (test->n_features != train->n_features || test->n_labels != train->n_labels) {
        rc = cli_fail(CLI_INPUT, "%s has %lld features and %lld labels, but %s has %lld and %lld",
                      pos[1], (long long)test->n_features, (long long)test->n_labels, pos[0],
                      (long long)train->n_features, (long long)train->n_labels);
        goto done;
    }
    if (log_path) {
        log = fopen(log_path, "w");
        if (!log) {
            rc = cli_fail(CLI_OTHER, "cannot write %s: %s", log_path, strerror(errno));
            goto done;
        }
        fprintf(
            log,
            "epoch,batch,seconds,p_at_1,p_at_3,p_at_5,loss,active,rebuilds,recall_1,recall_5\n");
    }
    if ((s = pl_xc_model_create(train->n_features, hidden, train->n_labels, o.seed, &m)) != PL_OK) {
        rc = fail_pl(s, CLI_OTHER);
        goto done;
    }
    xc_display pr = {.dense = o.dense, .log = log, .epoch = 0};
    int64_t spe = (train->n + o.batch - 1) / o.batch;
    progress_init(&pr.p, stdout, isatty(STDOUT_FILENO) != 0, quiet, o.epochs, spe, train->n);
    o.on_batch = on_batch;
    o.on_eval = on_eval;
    o.ctx = &pr;
    printf("train-xc: %lld training points, %lld test points, %lld features, %lld labels, "
           "hidden %lld, %s\n",
           (long long)train->n, (long long)test->n, (long long)train->n_features,
           (long long)train->n_labels, (long long)hidden,
           o.dense ? "full softmax" : pl_lsh_family_name(o.lsh.family));
    fflush(stdout);
    if ((s = pl_xc_train(m, train, test, &o)) != PL_OK) {
        progress_clear(&pr.p);
        rc = fail_pl(s, CLI_OTHER);
        goto done;
    }
    if (out && (s = pl_xc_export_onnx(m, out)) != PL_OK) {
        rc = fail_pl(s, CLI_OTHER);
        goto done;
    }
    if (out) printf("wrote %s\n", out);
done:
    if (log && fclose(log) != 0 && rc == CLI_OK)
        rc = cli_fail(CLI_OTHER, "cannot write %s", log_path);
    pl_xc_model_destroy(m);
    pl_xc_data_destroy(train);
    pl_xc_data_destroy(test);
    return rc;
}
