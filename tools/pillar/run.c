/* run.c -- `pillar run MODEL`: feeds .npy inputs (or seeded random ones), runs the model
 * once, prints a summary of every output and optionally saves them as .npy files. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "lsh_output.h"
#include "schedule_opt.h"

void help_run(void) {
    printf(
        "usage: pillar run MODEL [--input NAME=FILE.npy]... [--shape NAME=DIMS]...\n"
        "                  [--dim SYMBOL=N]... [--output DIR] [--threads N] [--seed S]\n"
        "                  [--lsh-output K,L[,TOPK]] [--schedule layers|columns|auto]\n"
        "\n"
        "Runs MODEL (an ONNX file) once. Inputs not given with --input get random values\n"
        "(floats uniform in [0,1), integers in [0,10), bools 0/1; reproducible with\n"
        "--seed) of the shape from --shape, --dim or the model. Prints each output's\n"
        "name, type, shape, first values, min, max and mean. Random inputs are limited\n"
        "to 8 GiB each.\n"
        "\n"
        "options:\n"
        "  --input NAME=FILE   feed input NAME from a NumPy .npy file\n"
        "  --shape NAME=DIMS   shape of input NAME, e.g. --shape x=1x3x224x224 (or 1,3,224,224)\n"
        "  --dim SYMBOL=N      value of a symbolic dimension for every input, e.g. --dim batch=4\n"
        "  --output DIR        write each output to DIR/<output name>.npy (DIR is created)\n"
        "  --threads N         worker threads (0 = one per core, the default)\n"
        "  --seed S            seed of the random inputs (default 1)\n"
        "  --schedule S        layers, columns or auto (default: $PILLAR_SCHEDULE, else auto);\n"
        "                      see pillar bench --help\n"
        CLI_LSH_OUTPUT_HELP
        "  -h, --help          show this help\n");
}

/* ---------------------------------------------------------------- random inputs */

/* Largest random input made without a file (bytes). */
#define RANDOM_INPUT_LIMIT (8.0 * 1024 * 1024 * 1024)

static uint64_t rng_next(uint64_t *s) { /* splitmix64: tiny, good enough for test data */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static bool fill_random(pillar_tensor *t, uint64_t *rng) {
    int64_t n = pillar_tensor_numel(t);
    void *d = pillar_tensor_data(t);
    pillar_dtype dt = pillar_tensor_dtype(t);
    for (int64_t i = 0; i < n; i++) {
        uint64_t r = rng_next(rng);
        int64_t small = (int64_t)(r % 10);
        switch (dt) {
        case PILLAR_FLOAT32:
            ((float *)d)[i] = (float)(r >> 40) * (1.0f / 16777216.0f);
            break;
        case PILLAR_FLOAT64:
            ((double *)d)[i] = (double)(r >> 11) * (1.0 / 9007199254740992.0);
            break;
        case PILLAR_FLOAT16: /* k/1024 is exact in float16 */
            ((uint16_t *)d)[i] = cli_f32_to_f16_exact((float)(r >> 54) / 1024.0f);
            break;
        case PILLAR_BFLOAT16: { /* k/256 is exact in bfloat16 */
            float f = (float)(r >> 56) / 256.0f;
            uint32_t bits;
            memcpy(&bits, &f, 4);
            ((uint16_t *)d)[i] = (uint16_t)(bits >> 16);
            break;
        }
        case PILLAR_UINT8:
            ((uint8_t *)d)[i] = (uint8_t)small;
            break;
        case PILLAR_INT8:
            ((int8_t *)d)[i] = (int8_t)small;
            break;
        case PILLAR_UINT16:
            ((uint16_t *)d)[i] = (uint16_t)small;
            break;
        case PILLAR_INT16:
            ((int16_t *)d)[i] = (int16_t)small;
            break;
        case PILLAR_INT32:
            ((int32_t *)d)[i] = (int32_t)small;
            break;
        case PILLAR_INT64:
            ((int64_t *)d)[i] = small;
            break;
        case PILLAR_UINT32:
            ((uint32_t *)d)[i] = (uint32_t)small;
            break;
        case PILLAR_UINT64:
            ((uint64_t *)d)[i] = (uint64_t)small;
            break;
        case PILLAR_BOOL:
            ((uint8_t *)d)[i] = (uint8_t)(r >> 63);
            break;
        default:
            return false;
        }
    }
    return true;
}

/* ---------------------------------------------------------------- output files */

/* Makes DIR and its parents (like mkdir -p). */
static int make_dirs(const char *dir) {
    char *p = strdup(dir);
    if (!p) return cli_fail(CLI_OTHER, "out of memory");
    int rc = CLI_OK;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != 0) continue;
        char c = *s;
        *s = 0;
        struct stat st;
        if (stat(p, &st) != 0) {
            if (mkdir(p, 0777) != 0 && errno != EEXIST) {
                rc = cli_fail(CLI_OTHER, "cannot create output directory '%s': %s", p,
                              strerror(errno));
                break;
            }
        } else if (!S_ISDIR(st.st_mode)) {
            rc = cli_fail(CLI_OTHER, "output path '%s' exists and is not a directory", p);
            break;
        }
        *s = c;
        if (c == 0) break;
    }
    free(p);
    return rc;
}

/* A file name from an output name: keeps [A-Za-z0-9._-] and replaces the rest with '_'
 * (the same rule as bench/ort_run.js), so names like "../x" or "a/b:0" stay inside DIR
 * (".npy" is always appended, so "." and ".." cannot name a directory). */
static void sanitize(const char *name, char *buf, size_t n) {
    size_t k = 0;
    for (const char *s = name ? name : ""; *s && k + 1 < n && k < 200; s++) {
        char c = *s;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.';
        buf[k++] = ok ? c : '_';
    }
    if (k == 0) k = (size_t)snprintf(buf, n, "output");
    buf[k] = 0;
}

/* .npy has no bfloat16: outputs of that type are saved as float32. */
static pillar_status save_output(const pillar_tensor *t, const char *path) {
    if (pillar_tensor_dtype(t) != PILLAR_BFLOAT16) return pillar_tensor_save_npy(t, path);
    int64_t n = pillar_tensor_numel(t);
    pillar_tensor *f = NULL;
    pillar_status st = pillar_tensor_create(PILLAR_FLOAT32, pillar_tensor_ndim(t),
                                            pillar_tensor_dims(t), NULL, &f);
    if (st != PILLAR_OK) return st;
    float *d = pillar_tensor_data(f);
    for (int64_t i = 0; i < n; i++)
        d[i] = (float)cli_elem_f64(PILLAR_BFLOAT16, pillar_tensor_data(t), i);
    st = pillar_tensor_save_npy(f, path);
    pillar_tensor_destroy(f);
    return st;
}

static void print_summary(const char *what, const char *name, const pillar_tensor *t) {
    char shape[256];
    pillar_dtype dt = pillar_tensor_dtype(t);
    int64_t n = pillar_tensor_numel(t);
    cli_dims_str(shape, sizeof shape, (long)pillar_tensor_ndim(t), pillar_tensor_dims(t), NULL);
    printf("%s '%s': %s %s\n", what, name, pillar_dtype_name(dt), shape);
    if (dt == PILLAR_STRING || pillar_dtype_size(dt) == 0) return;
    if (n == 0) {
        printf("  (empty)\n");
        return;
    }
    const void *d = pillar_tensor_data(t);
    bool is_int = dt != PILLAR_FLOAT32 && dt != PILLAR_FLOAT64 && dt != PILLAR_FLOAT16 &&
                  dt != PILLAR_BFLOAT16;
    printf("  values:");
    for (int64_t i = 0; i < n && i < 8; i++) {
        if (dt == PILLAR_INT64)
            printf(" %lld", (long long)((const int64_t *)d)[i]);
        else if (dt == PILLAR_UINT64)
            printf(" %llu", (unsigned long long)((const uint64_t *)d)[i]);
        else if (is_int)
            printf(" %.0f", cli_elem_f64(dt, d, i));
        else
            printf(" %.6g", cli_elem_f64(dt, d, i));
    }
    printf("%s\n", n > 8 ? " ..." : "");
    double mn = INFINITY, mx = -INFINITY, sum = 0;
    int64_t nans = 0;
    for (int64_t i = 0; i < n; i++) {
        double v = cli_elem_f64(dt, d, i);
        if (v != v) {
            nans++;
            continue;
        }
        if (v < mn) mn = v;
        if (v > mx) mx = v;
        sum += v;
    }
    if (nans == n) {
        printf("  all %lld values are NaN\n", (long long)n);
        return;
    }
    printf("  min %.6g  max %.6g  mean %.6g", mn, mx, sum / (double)(n - nans));
    if (nans) printf("  (%lld NaN)", (long long)nans);
    printf("\n");
}

/* ---------------------------------------------------------------- the command */

typedef struct run_args {
    const char *model;
    cli_named_list inputs; /* --input NAME=FILE */
    cli_model_opts mo;
    const char *out_dir;
    uint64_t seed;
    cli_lsh_output lsh; /* --lsh-output */
    bool schedule_given;
    pillar_schedule schedule; /* --schedule */
} run_args;

static int parse_args(run_args *r, int argc, char **argv, bool *help) {
    cli_args a;
    char flag[64];
    const char *v;
    cli_args_init(&a, "run", argc, argv);
    while (cli_args_next(&a, flag, sizeof flag, &v)) {
        if (!flag[0]) {
            if (r->model) return cli_usage_error("run", "unexpected argument '%s'", v);
            r->model = v;
        } else if (strcmp(flag, "-h") == 0 || strcmp(flag, "--help") == 0) {
            *help = true;
            return CLI_OK;
        } else if (strcmp(flag, "--input") == 0) {
            if (!cli_args_value(&a, flag, &v) || !cli_named_add(&r->inputs, "run", flag, v))
                return CLI_USAGE;
            if (!r->inputs.items[r->inputs.n - 1].text[0])
                return cli_usage_error("run", "--input %s: missing file name",
                                       r->inputs.items[r->inputs.n - 1].name);
        } else if (strcmp(flag, "--output") == 0) {
            if (!cli_args_value(&a, flag, &v)) return CLI_USAGE;
            if (!*v) return cli_usage_error("run", "--output: empty directory name");
            r->out_dir = v;
        } else if (strcmp(flag, "--seed") == 0) {
            int64_t s;
            if (!cli_args_value(&a, flag, &v)) return CLI_USAGE;
            if (!cli_parse_int(v, 0, INT64_MAX, &s))
                return cli_usage_error("run", "--seed: '%s' is not a non-negative integer", v);
            r->seed = (uint64_t)s;
        } else if (strcmp(flag, "--lsh-output") == 0) {
            if (!cli_args_value(&a, flag, &v)) return CLI_USAGE;
            if (cli_lsh_output_parse("run", v, &r->lsh) != CLI_OK) return CLI_USAGE;
        } else if (strcmp(flag, "--schedule") == 0) {
            if (!cli_args_value(&a, flag, &v)) return CLI_USAGE;
            if (!cli_schedule_parse(v, &r->schedule))
                return cli_usage_error("run", "--schedule: '%s' is not " CLI_SCHEDULE_WORDS, v);
            r->schedule_given = true;
        } else {
            int h = cli_model_opts_parse(&r->mo, &a, flag);
            if (h < 0) return CLI_USAGE;
            if (h == 0) return cli_usage_error("run", "unknown option '%s'", flag);
        }
    }
    if (!r->model) return cli_usage_error("run", "missing MODEL");
    return CLI_OK;
}

/* Checks a tensor from a file against model input `idx` (type, rank, static dims). */
static int check_input_file(const pillar_model *m, long idx, const cli_named *in,
                            const pillar_tensor *t) {
    pillar_dtype mdt = PILLAR_UNDEFINED;
    size_t nd = 0;
    const int64_t *md = NULL;
    pillar_status st = pillar_model_input(m, (size_t)idx, NULL, &mdt, &nd, &md);
    if (st != PILLAR_OK) return cli_fail_status(st, CLI_OTHER);
    pillar_dtype dt = pillar_tensor_dtype(t);
    if (mdt != PILLAR_UNDEFINED && dt != mdt)
        return cli_fail(CLI_INPUT, "input '%s' (%s): the file holds %s, the model expects %s",
                        in->name, in->text, pillar_dtype_name(dt), pillar_dtype_name(mdt));
    size_t tn = pillar_tensor_ndim(t);
    const int64_t *td = pillar_tensor_dims(t);
    char a[256], b[256];
    const char *sym[PILLAR_MAX_DIMS] = {0};
    for (size_t d = 0; d < nd && d < PILLAR_MAX_DIMS; d++)
        sym[d] = pillar_model_input_dim_name(m, (size_t)idx, d);
    if (nd == 0) return CLI_OK; /* rank 0 may mean "rank unknown": the library checks */
    if (tn != nd)
        return cli_fail(
            CLI_INPUT,
            "input '%s' (%s): the file has shape %s (%zu dims), the model expects %s (%zu dims)",
            in->name, in->text, cli_dims_str(a, sizeof a, (long)tn, td, NULL), tn,
            cli_dims_str(b, sizeof b, (long)nd, md, sym), nd);
    for (size_t d = 0; d < nd; d++) {
        if (md && md[d] >= 0 && md[d] != td[d])
            return cli_fail(
                CLI_INPUT,
                "input '%s' (%s): the file has shape %s, the model expects %s (dimension %zu)",
                in->name, in->text, cli_dims_str(a, sizeof a, (long)tn, td, NULL),
                cli_dims_str(b, sizeof b, (long)nd, md, sym), d);
    }
    return CLI_OK;
}

/* Loads every --input file (before the session is planned, so that its shape can fix
 * the input's symbolic dimensions). files[i] is the tensor of model input i or NULL. */
static int load_inputs(run_args *r, const pillar_model *m, pillar_tensor **files) {
    for (size_t i = 0; i < r->inputs.n; i++) {
        cli_named *in = &r->inputs.items[i];
        long idx = cli_model_input_index(m, in->name);
        if (idx < 0)
            return cli_fail(CLI_INPUT, "--input %s=%s: the model has no input named '%s'", in->name,
                            in->text, in->name);
        pillar_tensor *t = NULL;
        pillar_status st = pillar_tensor_load_npy(in->text, &t);
        if (st != PILLAR_OK) {
            fprintf(stderr, "pillar: input '%s': %s\n", in->name, pillar_last_error());
            return st == PILLAR_ERR_NOMEM ? CLI_OTHER : CLI_INPUT;
        }
        files[idx] = t;
        int rc = check_input_file(m, idx, in, t);
        if (rc != CLI_OK) return rc;
        cli_named *sh = cli_named_find(&r->mo.shapes, in->name);
        if (sh) {
            bool same = sh->ndim == pillar_tensor_ndim(t);
            for (size_t d = 0; same && d < sh->ndim; d++)
                same = sh->dims[d] == pillar_tensor_dims(t)[d];
            char a[256];
            if (!same)
                return cli_fail(CLI_INPUT,
                                "input '%s': --shape %s disagrees with %s, which has shape %s",
                                in->name, sh->text, in->text,
                                cli_dims_str(a, sizeof a, (long)pillar_tensor_ndim(t),
                                             pillar_tensor_dims(t), NULL));
        }
    }
    return CLI_OK;
}

/* An input error for dimension d of input `name`, which is still unknown. */
static int open_dim_error(const pillar_model *m, const char *name, size_t d) {
    long mi = cli_model_input_index(m, name);
    const char *sym = mi >= 0 ? pillar_model_input_dim_name(m, (size_t)mi, d) : NULL;
    if (sym)
        return cli_fail(
            CLI_INPUT,
            "input '%s' has symbolic dimension '%s' (dimension %zu): give --shape %s=DIMS, "
            "--dim %s=N or --input %s=FILE.npy",
            name, sym, d, name, sym, name);
    return cli_fail(
        CLI_INPUT,
        "input '%s' has an unknown dimension %zu: give --shape %s=DIMS or --input %s=FILE.npy",
        name, d, name, name);
}

/* The shape of a random input: --shape, else the session's resolved dims; a dimension
 * still unknown is an input error that says how to fix it. */
static int random_shape(const run_args *r, const pillar_model *m, const char *name, size_t nd,
                        const int64_t *sd, size_t *ndim, int64_t *dims) {
    cli_named *sh = cli_named_find((cli_named_list *)&r->mo.shapes, name);
    if (sh) {
        *ndim = sh->ndim;
        memcpy(dims, sh->dims, sh->ndim * sizeof *dims);
        return CLI_OK;
    }
    if (nd > PILLAR_MAX_DIMS) return cli_fail(CLI_MODEL, "input '%s' has %zu dimensions", name, nd);
    for (size_t d = 0; d < nd; d++) {
        if (sd && sd[d] >= 0) {
            dims[d] = sd[d];
            continue;
        }
        return open_dim_error(m, name, d);
    }
    *ndim = nd;
    return CLI_OK;
}

/* Before planning: every input that gets random values needs a known shape. Says
 * which input and which dimension is open, and how to close it. */
static int check_open_dims(run_args *r, const pillar_model *m, pillar_tensor *const *files) {
    size_t n = pillar_model_input_count(m);
    for (size_t i = 0; i < n; i++) {
        const char *name = NULL;
        size_t nd = 0;
        const int64_t *md = NULL;
        if (files[i] || pillar_model_input(m, i, &name, NULL, &nd, &md) != PILLAR_OK) continue;
        if (!name || cli_named_find(&r->mo.shapes, name)) continue;
        for (size_t d = 0; d < nd && d < PILLAR_MAX_DIMS; d++) {
            if (md && md[d] >= 0) continue;
            const char *sym = pillar_model_input_dim_name(m, i, d);
            if (sym && cli_named_find(&r->mo.dims, sym)) continue;
            return open_dim_error(m, name, d);
        }
    }
    return CLI_OK;
}

static int build_inputs(const run_args *r, const pillar_model *m, const pillar_session *s,
                        pillar_tensor **files, pillar_tensor **tensors, const char **names,
                        size_t *n_out) {
    uint64_t rng = r->seed;
    size_t nin = pillar_session_input_count(s), k = 0;
    for (size_t i = 0; i < nin; i++) {
        const char *name = NULL;
        pillar_dtype dt = PILLAR_UNDEFINED;
        size_t nd = 0;
        const int64_t *sd = NULL;
        pillar_status st = pillar_session_input(s, i, &name, &dt, &nd, &sd);
        if (st != PILLAR_OK) return cli_fail_status(st, CLI_OTHER);
        long mi = cli_model_input_index(m, name);
        names[k] = name;
        if (mi >= 0 && files[mi]) {
            tensors[k++] = files[mi];
            files[mi] = NULL; /* ownership moves to tensors[] */
            continue;
        }
        size_t ndim = 0;
        int64_t dims[PILLAR_MAX_DIMS];
        int rc = random_shape(r, m, name, nd, sd, &ndim, dims);
        if (rc != CLI_OK) return rc;
        /* A model may declare a huge input; fail clearly rather than exhaust memory. */
        double bytes = (double)pillar_dtype_size(dt);
        for (size_t d = 0; d < ndim; d++) bytes *= (double)dims[d];
        if (bytes > RANDOM_INPUT_LIMIT) {
            char shape[256];
            return cli_fail(CLI_INPUT,
                            "input '%s': a random %s %s input would take %.3g GiB; give a smaller "
                            "--shape or --input FILE.npy",
                            name, pillar_dtype_name(dt),
                            cli_dims_str(shape, sizeof shape, (long)ndim, dims, NULL),
                            bytes / (1024.0 * 1024.0 * 1024.0));
        }
        pillar_tensor *t = NULL;
        st = pillar_tensor_create(dt, ndim, dims, NULL, &t);
        if (st != PILLAR_OK) {
            fprintf(stderr, "pillar: input '%s': %s\n", name, pillar_last_error());
            return st == PILLAR_ERR_NOMEM   ? CLI_OTHER
                   : st == PILLAR_ERR_INPUT ? CLI_INPUT
                                            : CLI_MODEL;
        }
        tensors[k++] = t;
        if (!fill_random(t, &rng))
            return cli_fail(CLI_MODEL, "input '%s': cannot make random %s values", name,
                            pillar_dtype_name(dt));
        char shape[256];
        printf("input '%s': random %s %s (seed %llu)\n", name, pillar_dtype_name(dt),
               cli_dims_str(shape, sizeof shape, (long)ndim, dims, NULL),
               (unsigned long long)r->seed);
    }
    *n_out = k;
    return CLI_OK;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int write_outputs(const run_args *r, const pillar_session *s, pillar_tensor **outs,
                         size_t nout) {
    char **used = calloc(nout + 1, sizeof *used);
    if (!used) return cli_fail(CLI_OTHER, "out of memory");
    int rc = CLI_OK;
    for (size_t i = 0; i < nout && rc == CLI_OK; i++) {
        const char *name = NULL;
        pillar_session_output(s, i, &name, NULL, NULL, NULL);
        if (!name) name = "";
        print_summary("output", name, outs[i]);
        if (!r->out_dir) continue;
        char file[256];
        sanitize(name, file, sizeof file - 16);
        for (size_t j = 0; j < i; j++) { /* two names may sanitize to the same file */
            if (used[j] && strcmp(used[j], file) == 0) {
                size_t len = strlen(file);
                snprintf(file + len, sizeof file - len, "_%zu", i);
                break;
            }
        }
        used[i] = strdup(file);
        size_t plen = strlen(r->out_dir) + strlen(file) + 8;
        char *path = malloc(plen);
        if (!path || !used[i]) {
            free(path);
            rc = cli_fail(CLI_OTHER, "out of memory");
            break;
        }
        snprintf(path, plen, "%s/%s.npy", r->out_dir, file);
        pillar_status st = save_output(outs[i], path);
        if (st != PILLAR_OK)
            rc = cli_fail_status(st, CLI_OTHER);
        else
            printf("  saved %s\n", path);
        free(path);
    }
    for (size_t i = 0; i < nout; i++) free(used[i]);
    free(used);
    return rc;
}

/* Everything after argument parsing; frees what it allocates on every path. */
static int run_model(run_args *r) {
    pillar_model *m = NULL;
    pillar_options *opt = NULL;
    pillar_session *s = NULL;
    pillar_tensor **files = NULL, **ins = NULL, **outs = NULL;
    const char **names = NULL;
    size_t n_in = 0, nout = 0, nmi = 0, nsi = 0;
    pillar_status st;
    int rc = cli_load_model(r->model, &m);
    if (rc != CLI_OK) goto done;
    nmi = pillar_model_input_count(m);
    files = calloc(nmi + 1, sizeof *files);
    if (!files) {
        rc = cli_fail(CLI_OTHER, "out of memory");
        goto done;
    }
    if ((rc = load_inputs(r, m, files)) != CLI_OK) goto done;
    if ((rc = cli_make_options(&r->mo, m, &opt)) != CLI_OK) goto done;
    if ((rc = cli_lsh_output_apply(&r->lsh, opt)) != CLI_OK) goto done;
    if (r->schedule_given && pillar_options_set_schedule(opt, r->schedule) != PILLAR_OK) {
        rc = cli_fail(CLI_USAGE, "--schedule: %s", pillar_last_error());
        goto done;
    }
    if ((rc = check_open_dims(r, m, files)) != CLI_OK) goto done;
    /* Inputs given by file fix their own shapes when the model leaves dims open. */
    for (size_t i = 0; i < nmi; i++) {
        const char *name = NULL;
        size_t nd = 0;
        const int64_t *md = NULL;
        if (!files[i] || pillar_model_input(m, i, &name, NULL, &nd, &md) != PILLAR_OK) continue;
        bool open = false;
        for (size_t d = 0; d < nd; d++) open |= !md || md[d] < 0;
        if (!open || cli_named_find(&r->mo.shapes, name)) continue;
        st = pillar_options_set_shape(opt, name, pillar_tensor_ndim(files[i]),
                                      pillar_tensor_dims(files[i]));
        if (st != PILLAR_OK) {
            rc = cli_fail_status(st, CLI_INPUT);
            goto done;
        }
    }
    if ((st = pillar_session_create(m, opt, &s)) != PILLAR_OK) {
        rc = cli_fail_status(st, CLI_MODEL);
        goto done;
    }
    nsi = pillar_session_input_count(s);
    nout = pillar_session_output_count(s); /* --lsh-output changes the outputs */
    ins = calloc(nsi + 1, sizeof *ins);
    names = calloc(nsi + 1, sizeof *names);
    outs = calloc(nout + 1, sizeof *outs);
    if (!ins || !names || !outs) {
        rc = cli_fail(CLI_OTHER, "out of memory");
        goto done;
    }
    if ((rc = build_inputs(r, m, s, files, ins, names, &n_in)) != CLI_OK) goto done;
    pillar_model_destroy(m); /* the session keeps the weights it needs */
    m = NULL;
    double t0 = now_ms();
    st = pillar_session_run(s, n_in, names, (const pillar_tensor *const *)ins, nout, NULL, outs);
    double t1 = now_ms();
    if (st != PILLAR_OK) {
        rc = cli_fail_status(st, CLI_OTHER);
        goto done;
    }
    printf("ran in %.3f ms\n", t1 - t0);
    if (r->out_dir && (rc = make_dirs(r->out_dir)) != CLI_OK) goto done;
    rc = write_outputs(r, s, outs, nout);
done:
    for (size_t i = 0; outs && i < nout; i++) pillar_tensor_destroy(outs[i]);
    for (size_t i = 0; ins && i < nsi; i++) pillar_tensor_destroy(ins[i]);
    for (size_t i = 0; files && i < nmi; i++) pillar_tensor_destroy(files[i]);
    free(outs);
    free(ins);
    free(names);
    free(files);
    pillar_session_destroy(s);
    pillar_options_destroy(opt);
    pillar_model_destroy(m);
    return rc;
}

int cmd_run(int argc, char **argv) {
    run_args r;
    memset(&r, 0, sizeof r);
    r.mo.threads = -1;
    r.seed = 1;
    bool help = false;
    int rc = parse_args(&r, argc, argv, &help);
    if (rc == CLI_OK && help)
        help_run();
    else if (rc == CLI_OK)
        rc = run_model(&r);
    cli_named_free(&r.inputs);
    cli_model_opts_free(&r.mo);
    return rc;
}
