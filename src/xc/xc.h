/* xc.h -- extreme classification: the sparse-input data format, a network
 * (sparse input -> dense ReLU hidden layer -> one output per label), SLIDE-style
 * training where each example computes and updates only the output neurons that LSH
 * retrieves for it plus its true labels (or the full softmax, as the baseline),
 * evaluation by precision at 1/3/5, and export to ONNX.
 *
 * Data format (the public extreme-classification repository's): a header line
 * "POINTS FEATURES LABELS", then one line per point: "l1,l2,... f:v f:v ..." with
 * 0-based label and feature indices (a point without labels starts with a space). */
#ifndef PL_XC_H
#define PL_XC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "lsh/lsh.h"

/* ---------------------------------------------------------------- data */

typedef struct pl_xc_data {
    int64_t n;          /* points */
    int64_t n_features; /* from the header */
    int64_t n_labels;   /* from the header */
    int64_t *row;       /* n + 1: point i's features are feat/val[row[i] .. row[i+1]) */
    uint32_t *feat;
    float *val;
    int64_t *lrow; /* n + 1: point i's labels are lab[lrow[i] .. lrow[i+1]) */
    uint32_t *lab;
} pl_xc_data;

/* Reads a data file. Errors (PL_ERR_IO for an unreadable file, PL_ERR_INPUT for bad
 * content) name the file and line: "train.txt:12: feature index 5000 is out of range
 * (the header says 4000 features)". */
pl_status pl_xc_data_read(const char *path, pl_xc_data **out);
/* The same from memory; `name` prefixes messages. */
pl_status pl_xc_data_parse(const char *text, size_t len, const char *name, pl_xc_data **out);
void pl_xc_data_destroy(pl_xc_data *d);

/* ---------------------------------------------------------------- model */

typedef struct pl_xc_model {
    int64_t n_features, hidden, n_labels;
    float *W1; /* n_features x hidden: row f is feature f's embedding */
    float *b1; /* hidden */
    float *W2; /* n_labels x hidden: row j is label j's output neuron */
    float *b2; /* n_labels */
} pl_xc_model;

/* Glorot-uniform weights (seeded), zero biases. */
pl_status pl_xc_model_create(int64_t n_features, int64_t hidden, int64_t n_labels, uint64_t seed,
                             pl_xc_model **out);
void pl_xc_model_destroy(pl_xc_model *m);
size_t pl_xc_model_bytes(const pl_xc_model *m);

/* h = relu(b1 + sum_k val[k] * W1[feat[k]]) */
void pl_xc_hidden(const pl_xc_model *m, const uint32_t *feat, const float *val, int64_t nnz,
                  float *h);

typedef struct pl_xc_eval {
    int64_t n; /* points evaluated */
    double p1, p3, p5;
} pl_xc_eval;

/* Precision at 1, 3, 5 over the first max_points points of d (0 = all), scoring every
 * label (exact), on `threads` threads. */
pl_status pl_xc_evaluate(const pl_xc_model *m, const pl_xc_data *d, int64_t max_points, int threads,
                         pl_xc_eval *out);

/* ---------------------------------------------------------------- training */

typedef struct pl_xc_report {
    int epoch;     /* 1-based epoch being trained */
    int64_t batch; /* batches done in total */
    int64_t batches_per_epoch;
    double seconds;   /* training time so far, evaluations excluded */
    double loss;      /* mean loss of the batches since the last report */
    double active;    /* mean output neurons computed per example since last report */
    int64_t rebuilds; /* LSH table rebuilds so far */
    /* this epoch so far (for progress displays) */
    int64_t epoch_batch, epoch_examples;
    double epoch_loss;     /* summed over epoch_examples */
    int64_t epoch_correct; /* examples whose best-scored output was one of their labels */
    double epoch_seconds;
    double rebuild_seconds;
    pl_xc_eval eval; /* valid in on_eval */
    /* LSH only, in on_eval: fraction of each test point's exact top 1 / top 5 labels
     * that its LSH candidates contain (over up to 2,000 evaluated points) */
    double recall1, recall5;
} pl_xc_report;

/* Where an example's LSH candidates come from. */
typedef enum pl_xc_lsh_source {
    /* SLIDE: the output neurons' weights [w, b] are hashed into tables that are
     * rebuilt on a decaying schedule; a query [h, 1] finds neurons pointing its way */
    PL_XC_NEURONS = 0,
    /* every example inserts its labels, as it passes, into streaming tables under the
     * hash of its own hidden vector (FIFO buckets); a query finds the labels of recent
     * examples that looked like it -- the labels a full softmax would confuse it with */
    PL_XC_EXAMPLES = 1,
    PL_XC_BOTH = 2,
} pl_xc_lsh_source;

typedef struct pl_xc_train_opts {
    int epochs;
    int batch;
    float lr, beta1, beta2, eps;
    bool dense; /* full softmax over every label (the baseline) */
    /* LSH sampling of the output layer */
    pl_lsh_opts lsh;
    pl_lsh_sample_opts sample;
    pl_xc_lsh_source source;
    /* how output neurons [w, b] are hashed against [h, 1]: 0 = by direction (cosine),
     * R >= 1 = by inner product, MIPS transform in R norm ranges (lsh.h) */
    int mips_ranges;
    int64_t max_active;    /* at most this many output neurons per example (true labels first) */
    int64_t min_active;    /* random labels are added up to this many */
    int64_t rebuild_first; /* batches before the first table rebuild */
    double rebuild_growth; /* the rebuild period is multiplied by this after each rebuild */
    int64_t rebuild_max;   /* longest period, in batches */
    /* per-thread gradient buffers merged before each Adam step (deterministic, no lost
     * updates) when false; one shared buffer written without locks (Hogwild) when true */
    bool hogwild;
    int threads;
    uint64_t seed;
    int64_t eval_every; /* evaluate every N batches as well as after each epoch (0: epochs only) */
    int64_t eval_max;   /* test points per evaluation (0 = all) */
    double time_limit;  /* stop after this many training seconds (0 = none) */
    /* callbacks (may be NULL): after every batch, and after every evaluation */
    void (*on_batch)(void *ctx, const pl_xc_report *r);
    void (*on_eval)(void *ctx, const pl_xc_report *r);
    void *ctx;
} pl_xc_train_opts;

/* Defaults: 1 epoch, batch 128, Adam lr 1e-3 (0.9, 0.999, 1e-8); SimHash K=10 L=32,
 * FIFO buckets of 128 in streaming tables of the examples' labels; the most frequent
 * max_active candidates (labels / 200, within [256, 2048]); rebuilds (neuron source)
 * after 50 batches, period x1.2, at most 1000; threads: one per core. */
void pl_xc_train_opts_default(pl_xc_train_opts *o);

/* Trains m on `train`, evaluating on `test` (may be NULL). The model's sizes must
 * match the data's header. */
pl_status pl_xc_train(pl_xc_model *m, const pl_xc_data *train, const pl_xc_data *test,
                      const pl_xc_train_opts *o);

/* ---------------------------------------------------------------- ONNX */

/* Writes the model as ONNX (opset 13): input "features" float [batch, n_features]
 * (the sparse input as a dense row) -> Gemm(W1, b1) -> Relu -> Gemm(W2^T, b2) ->
 * output "scores" float [batch, n_labels]. */
pl_status pl_xc_export_onnx(const pl_xc_model *m, const char *path);
/* Reads back a model written by pl_xc_export_onnx (by initializer names). */
pl_status pl_xc_import_onnx(const char *path, pl_xc_model **out);

#endif
