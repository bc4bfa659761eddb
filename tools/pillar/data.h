/* data.h -- training data for `pillar train`: IDX files (MNIST / Fashion-MNIST layout,
 * gzipped or not), .npy pairs, held-out splits, and the checks that name the file and
 * the record when something is wrong. Examples are kept as float32 (uint8 pixels
 * divided by 255, float data as it is), labels as int64 class indices and, for float
 * label files, also as float targets. */
#ifndef PILLAR_CLI_DATA_H
#define PILLAR_CLI_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One set of examples (train or test). */
typedef struct td_set {
    int64_t n;           /* examples */
    int64_t feat;        /* values per example */
    int ex_ndim;         /* shape of one example as stored (e.g. 28x28) */
    int64_t ex_dims[8];
    float *x;            /* n * feat values */
    int64_t *y;          /* n class labels, NULL if the labels are not integral */
    float *yf;           /* n * tdim float targets (float label files only), or NULL */
    int64_t tdim;        /* values per target (1 for plain labels) */
    char xpath[1024];     /* files, for messages */
    char ypath[1024];
} td_set;

typedef struct td_data {
    td_set train, test;
    char desc[4096]; /* "fashion-mnist (/usr/share/...): 60000 train, 10000 test" */
} td_data;

/* What the user asked for. */
typedef struct td_spec {
    const char *data;    /* --data: "fashion-mnist", "mnist", DIR, or "X,Y" file pair */
    const char *test;    /* --test: DIR or "X,Y" (NULL: the data's own test set or a split) */
    double holdout;      /* fraction held out when there is no test set (0..1) */
    uint64_t seed;       /* for the held-out split */
    int64_t limit;       /* use at most this many training examples (0: all) */
    int64_t test_limit;  /* at most this many test examples (0: all) */
    int64_t classes;     /* > 0: every label must be a class index below this */
} td_spec;

/* Loads the data (and checks the labels against spec->classes). On failure prints nothing, fills err with a one-line message naming
 * the file and record, and returns the CLI exit code (CLI_INPUT for bad data, CLI_OTHER
 * for out of memory); 0 on success. */
int td_load(const td_spec *spec, td_data *out, char *err, size_t err_n);
void td_free(td_data *d);

/* Checks every integer label of `s` against [0, classes) (classes > 0) and that labels
 * exist at all; err names the file and record. Returns 0 or CLI_INPUT. */
int td_check_labels(const td_set *s, int64_t classes, char *err, size_t err_n);

/* Loads one array file, .npy or IDX (gzipped or not, found by content), as float32
 * values with its shape; for integer files also as exact int64 values (ints may be NULL
 * then for float files). Owned buffers: free(). Returns 0 or an exit code with err. */
typedef struct td_array {
    int ndim;
    int64_t dims[8];
    int64_t numel;
    bool is_uint8;   /* stored as bytes: pixels to be scaled by 1/255 */
    bool is_float;   /* stored as a floating-point type */
    float *f;        /* numel values (unscaled) */
    int64_t *i;      /* numel exact values for integer types, NULL for float types */
} td_array;
int td_read_array(const char *path, bool want_ints, td_array *a, char *err, size_t err_n);
void td_array_free(td_array *a);

/* splitmix64 step, shared by the shuffles of the trainer and the split here. */
uint64_t td_rand(uint64_t *state);
/* Fisher-Yates permutation of 0..n-1 from `seed` (same seed, same permutation). */
void td_permutation(int64_t *perm, int64_t n, uint64_t seed);

#endif
