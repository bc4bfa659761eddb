/* bench.c -- `pillar bench [MODEL]`: latency and throughput of one model on random
 * inputs. Warm-up runs for --warmup seconds, then timed runs for --time seconds;
 * prints mean/median/p90/p99 latency, items/s, peak RSS, the ISA, threads and arena
 * size, and with --json a last line that bench/compare_speed.sh reads. Without a MODEL
 * it times the built-in ResNet-50 (pillar_model_zoo), so there is always something to
 * measure. bench/ort_bench.js prints the same statistics for ONNX Runtime. */
#define _GNU_SOURCE /* sched_getaffinity */
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cli.h"
#include "lsh_output.h"
#include "schedule_opt.h"

#define DEFAULT_MODEL "zoo:resnet50"
#define ZOO_SEED 0          /* weights of built-in models: the same on every run */
#define MAX_SAMPLES 1000000 /* timed runs kept (a microsecond model would fill memory) */

void help_bench(void) {
    printf("usage: pillar bench [MODEL] [--batch N] [--shape NAME=DIMS]... [--dim SYMBOL=N]...\n"
           "                    [--threads N] [--time SECONDS] [--warmup SECONDS] [--seed S]\n"
           "                    [--schedule layers|columns|auto] [--iterations N] [--json]\n"
           "                    [--verbose] [--lsh-output K,L[,TOPK]]\n"
           "\n"
           "Times MODEL (an ONNX file, or zoo:NAME for a built-in architecture with seeded\n"
           "random weights: zoo:resnet50, zoo:mobilenet_v2; default zoo:resnet50) on random\n"
           "inputs (the values 'pillar run' makes). Runs for --warmup seconds untimed, then\n"
           "for --time seconds (at least one run each), and prints the latency per run\n"
           "(mean, median, 90th and 99th percentile, min, max in ms), items/s (batch /\n"
           "mean latency), the multiply-accumulates per run and the GFLOP/s they give at the\n"
           "median, peak RSS (MB = 2^20 bytes), the kernels' ISA, the threads and the\n"
           "intermediate-tensor arena.\n"
           "\n"
           "options:\n"
           "  --batch N           leading dimension of every input whose first dimension is\n"
           "                      symbolic (default 1; an error if the model fixes it to\n"
           "                      another value)\n"
           "  --shape NAME=DIMS   shape of input NAME; for zoo: models, --shape input=NxCxHxW\n"
           "                      also sets the image size the model is built for\n"
           "  --dim SYMBOL=N      value of a symbolic dimension, e.g. --dim seq=128\n"
           "  --threads N         worker threads (0 = one per physical core, the default)\n"
           "  --time SECONDS      timed duration (default 5)\n"
           "  --warmup SECONDS    untimed warm-up (default 1)\n"
           "  --seed S            seed of the random inputs (default 1)\n"
           "  --schedule S        how the session runs its layers: layers (one after the\n"
           "                      other), columns (chains of layers tile by tile in cache)\n"
           "                      or auto (columns where the planner expects them to pay);\n"
           "                      default: $PILLAR_SCHEDULE if set, else auto. The report\n"
           "                      says which the session used\n"
           "  --iterations N      exactly N timed runs instead of --time (e.g. for cache\n"
           "                      simulators: with --warmup 0 a process runs the model N+1\n"
           "                      times)\n"
           "  --json              end with one line holding a JSON object: model, batch,\n"
           "                      threads, isa, mean_ms, median_ms, p90_ms, p99_ms, min_ms,\n"
           "                      max_ms, runs, items_per_s, peak_rss_mb, arena_bytes, macs,\n"
           "                      cpu_ms (process CPU time per timed run, all threads: less\n"
           "                      sensitive than wall time to other load on the machine),\n"
           "                      schedule (layers or columns: what the session used),\n"
           "                      schedule_requested (layers, columns or auto)\n"
           "  --verbose           also time each layer during the timed runs and list the\n"
           "                      layers in execution order: name, op, the kernel chosen,\n"
           "                      output shape, weight sparsity, MACs, mean ms per run and\n"
           "                      share of the layers' total, then a total line (reading\n"
           "                      the clock around each layer adds well under a microsecond\n"
           "                      per layer; under columns, the layers of a chain run\n"
           "                      interleaved tile by tile, and the chain's time is shown\n"
           "                      as the library reports it)\n" CLI_LSH_OUTPUT_HELP
           "                      bench then also times the exact model on the same inputs\n"
           "                      and prints the speed-up and recall@1 / recall@TOPK of the\n"
           "                      LSH top-k against the exact top-k\n"
           "  -h, --help          show this help\n");
}

typedef struct bench_args {
    const char *model;
    cli_model_opts mo;
    int64_t batch;
    bool batch_given;
    double time_s, warmup_s;
    uint64_t seed;
    bool json, verbose;
    cli_lsh_output lsh; /* --lsh-output */
    bool schedule_given;
    pillar_schedule schedule; /* --schedule */
    int64_t iterations;       /* --iterations; 0: run for --time */
} bench_args;

/* ---------------------------------------------------------------- helpers */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static bool parse_seconds(const char *text, double *out) {
    char *end;
    double v = strtod(text, &end);
    if (!*text || *end || !(v >= 0) || v > 1e6) return false;
    *out = v;
    return true;
}

/* The value the library takes for threads = 0: the physical cores this process may run
 * on (SMT siblings counted once), read the same way as src/core/cpu.c. The public API
 * does not report a session's thread count. */
static int physical_cores(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
    long keys[CPU_SETSIZE];
    int nkeys = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &set)) continue;
        char path[128];
        long core = cpu, pkg = 0;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/core_id", cpu);
        FILE *f = fopen(path, "r");
        if (f) {
            if (fscanf(f, "%ld", &core) != 1) core = cpu;
            fclose(f);
        }
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/physical_package_id",
                 cpu);
        if ((f = fopen(path, "r"))) {
            if (fscanf(f, "%ld", &pkg) != 1) pkg = 0;
            fclose(f);
        }
        long key = pkg * 65536 + core;
        bool seen = false;
        for (int k = 0; k < nkeys && !seen; k++) seen = keys[k] == key;
        if (!seen) keys[nkeys++] = key;
    }
    return nkeys > 0 ? nkeys : 1;
}

static uint64_t rng_next(uint64_t *s) { /* splitmix64, as `pillar run` */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The values `pillar run` makes for the same seed: floats uniform in [0, 1), integers
 * in [0, 10), bools 0/1. */
static bool fill_random(pillar_tensor *t, uint64_t *rng) {
    int64_t n = pillar_tensor_numel(t);
    void *d = pillar_tensor_data(t);
    pillar_dtype dt = pillar_tensor_dtype(t);
    for (int64_t i = 0; i < n; i++) {
        uint64_t r = rng_next(rng);
        uint64_t small = r % 10;
        switch (dt) {
        case PILLAR_FLOAT32:
            ((float *)d)[i] = (float)(r >> 40) * (1.0f / 16777216.0f);
            break;
        case PILLAR_FLOAT64:
            ((double *)d)[i] = (double)(r >> 11) * (1.0 / 9007199254740992.0);
            break;
        case PILLAR_FLOAT16:
            ((uint16_t *)d)[i] = cli_f32_to_f16_exact((float)(r >> 54) / 1024.0f);
            break;
        case PILLAR_BFLOAT16: {
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
            ((int64_t *)d)[i] = (int64_t)small;
            break;
        case PILLAR_UINT32:
            ((uint32_t *)d)[i] = (uint32_t)small;
            break;
        case PILLAR_UINT64:
            ((uint64_t *)d)[i] = small;
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

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Percentile q (0..100) of sorted v[0..n), interpolating between neighbours (numpy's
 * default), so that the median of an even count is the mean of the middle two. */
static double percentile(const double *v, size_t n, double q) {
    if (n == 0) return 0;
    double pos = q / 100.0 * (double)(n - 1);
    size_t lo = (size_t)pos;
    if (lo + 1 >= n) return v[n - 1];
    double f = pos - (double)lo;
    return v[lo] + (v[lo + 1] - v[lo]) * f;
}

/* ---------------------------------------------------------------- arguments */

static int parse_args(bench_args *b, int argc, char **argv, bool *help) {
    cli_args a;
    char flag[64];
    const char *v;
    cli_args_init(&a, "bench", argc, argv);
    while (cli_args_next(&a, flag, sizeof flag, &v)) {
        if (!flag[0]) {
            if (b->model) return cli_usage_error("bench", "unexpected argument '%s'", v);
            if (!*v) return cli_usage_error("bench", "empty MODEL name");
            b->model = v;
        } else if (strcmp(flag, "-h") == 0 || strcmp(flag, "--help") == 0) {
            *help = true;
            return CLI_OK;
        } else if (strcmp(flag, "--json") == 0 || strcmp(flag, "--verbose") == 0) {
            if (cli_args_has_inline_value(&a))
                return cli_usage_error("bench", "%s takes no value", flag);
            if (flag[2] == 'j')
                b->json = true;
            else
                b->verbose = true;
        } else if (strcmp(flag, "--batch") == 0) {
            if (!cli_args_value(&a, flag, &v)) return CLI_USAGE;
            if (!cli_parse_int(v, 1, (int64_t)1 << 40, &b->batch))
                return cli_usage_error("bench", "--batch: '%s' is not a positive integer", v);
            b->batch_given = true;
        } else if (strcmp(flag, "--time") == 0 || strcmp(flag, "--warmup") == 0) {
            if (!cli_args_value(&a, flag, &v)) return CLI_USAGE;
            if (!parse_seconds(v, flag[2] == 't' ? &b->time_s : &b->warmup_s))
                return cli_usage_error("bench", "%s: '%s' is not a number of seconds from 0 to 1e6",
                                       flag, v);
        } else if (strcmp(flag, "--schedule") == 0) {
            if (!cli_args_value(&a, flag, &v)) return CLI_USAGE;
            if (!cli_schedule_parse(v, &b->schedule))
                return cli_usage_error("bench", "--schedule: '%s' is not " CLI_SCHEDULE_WORDS, v);
            b->schedule_given = true;
        } else if (strcmp(flag, "--iterations") == 0) {
            if (!cli_args_value(&a, flag, &v)) return CLI_USAGE;
            if (!cli_parse_int(v, 1, MAX_SAMPLES, &b->iterations))
                return cli_usage_error("bench", "--iterations: '%s' is not an integer from 1 to %d",
                                       v, MAX_SAMPLES);
        } else if (strcmp(flag, "--lsh-output") == 0) {
            if (!cli_args_value(&a, flag, &v)) return CLI_USAGE;
            if (cli_lsh_output_parse("bench", v, &b->lsh) != CLI_OK) return CLI_USAGE;
        } else if (strcmp(flag, "--seed") == 0) {
            int64_t s;
            if (!cli_args_value(&a, flag, &v)) return CLI_USAGE;
            if (!cli_parse_int(v, 0, INT64_MAX, &s))
                return cli_usage_error("bench", "--seed: '%s' is not a non-negative integer", v);
            b->seed = (uint64_t)s;
        } else {
            int h = cli_model_opts_parse(&b->mo, &a, flag);
            if (h < 0) return CLI_USAGE;
            if (h == 0) return cli_usage_error("bench", "unknown option '%s'", flag);
        }
    }
    if (!b->model) b->model = DEFAULT_MODEL;
    return CLI_OK;
}

/* A file, or "zoo:NAME" built here; for the zoo, --shape input=NxCxHxW picks the image
 * size. */
static int load_model(const bench_args *b, pillar_model **m) {
    if (strncmp(b->model, "zoo:", 4) != 0) return cli_load_model(b->model, m);
    const char *name = b->model + 4;
    int64_t chw[3];
    const int64_t *pchw = NULL;
    cli_named *sh = cli_named_find((cli_named_list *)&b->mo.shapes, "input");
    if (sh) {
        if (sh->ndim != 4)
            return cli_fail(CLI_INPUT, "--shape input=%s: %s takes an NxCxHxW image batch",
                            sh->text, b->model);
        for (int i = 0; i < 3; i++) chw[i] = sh->dims[i + 1];
        pchw = chw;
    }
    pillar_status st = pillar_model_zoo(name, pchw, 0, ZOO_SEED, m);
    if (st == PILLAR_ERR_ARGUMENT) {
        if (sh) return cli_fail(CLI_INPUT, "%s: %s", b->model, pillar_last_error());
        return cli_fail(CLI_MODEL, "%s: %s", b->model, pillar_last_error());
    }
    if (st != PILLAR_OK) return cli_fail_status(st, CLI_MODEL);
    return CLI_OK;
}


/* The model's input names and symbolic dimension names, kept for the messages of
 * make_inputs after the session has taken the model over. */
typedef struct input_syms {
    size_t n;
    char **name;
    char *(*sym)[PILLAR_MAX_DIMS];
} input_syms;

static void syms_free(input_syms *y) {
    for (size_t i = 0; i < y->n; i++) {
        free(y->name[i]);
        for (int d = 0; d < PILLAR_MAX_DIMS; d++) free(y->sym[i][d]);
    }
    free(y->name);
    free(y->sym);
    memset(y, 0, sizeof *y);
}

static int syms_copy(const pillar_model *m, input_syms *y) {
    size_t n = pillar_model_input_count(m);
    y->name = calloc(n + 1, sizeof *y->name);
    y->sym = calloc(n + 1, sizeof *y->sym);
    if (!y->name || !y->sym) return cli_fail(CLI_OTHER, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *name = NULL;
        y->n = i + 1;
        if (pillar_model_input(m, i, &name, NULL, NULL, NULL) != PILLAR_OK || !name) continue;
        if (!(y->name[i] = strdup(name))) return cli_fail(CLI_OTHER, "out of memory");
        for (int d = 0; d < PILLAR_MAX_DIMS; d++) {
            const char *sym = pillar_model_input_dim_name(m, i, (size_t)d);
            if (sym && !(y->sym[i][d] = strdup(sym))) return cli_fail(CLI_OTHER, "out of memory");
        }
    }
    return CLI_OK;
}

static const char *syms_find(const input_syms *y, const char *input, size_t d) {
    for (size_t i = 0; i < y->n; i++)
        if (y->name[i] && !strcmp(y->name[i], input))
            return d < PILLAR_MAX_DIMS ? y->sym[i][d] : NULL;
    return NULL;
}

/* Random inputs of the session's resolved shapes; *batch gets the leading dimension of
 * the first input that has one. */
static int make_inputs(const bench_args *b, const input_syms *y, const pillar_session *s,
                       pillar_tensor **ins, const char **names, int64_t *batch) {
    uint64_t rng = b->seed;
    size_t n = pillar_session_input_count(s);
    *batch = 0;
    for (size_t i = 0; i < n; i++) {
        pillar_dtype dt = PILLAR_UNDEFINED;
        size_t nd = 0;
        const int64_t *dims = NULL;
        pillar_status st = pillar_session_input(s, i, &names[i], &dt, &nd, &dims);
        if (st != PILLAR_OK) return cli_fail_status(st, CLI_OTHER);
        for (size_t d = 0; d < nd; d++) {
            if (dims[d] >= 0) continue;
            const char *sym = syms_find(y, names[i], d);
            if (sym)
                return cli_fail(CLI_INPUT,
                                "input '%s' has symbolic dimension '%s' (dimension %zu): give "
                                "--dim %s=N or --shape %s=DIMS",
                                names[i], sym, d, sym, names[i]);
            return cli_fail(CLI_INPUT,
                            "input '%s' has an unknown dimension %zu: give --shape %s=DIMS",
                            names[i], d, names[i]);
        }
        if (*batch == 0 && nd > 0) *batch = dims[0];
        st = pillar_tensor_create(dt, nd, dims, NULL, &ins[i]);
        if (st != PILLAR_OK) return cli_fail_status(st, CLI_INPUT);
        if (!fill_random(ins[i], &rng))
            return cli_fail(CLI_MODEL, "input '%s': cannot make random %s values", names[i],
                            pillar_dtype_name(dt));
        char shape[256];
        printf("input '%s': random %s %s\n", names[i], pillar_dtype_name(dt),
               cli_dims_str(shape, sizeof shape, (long)nd, dims, NULL));
    }
    if (*batch == 0) *batch = 1;
    return CLI_OK;
}

/* One run; the outputs are freed at once (their allocation is part of a run's cost, as
 * it is for ONNX Runtime). */
static int run_once(pillar_session *s, size_t nin, const char **names, pillar_tensor **ins,
                    size_t nout, pillar_tensor **outs) {
    pillar_status st =
        pillar_session_run(s, nin, names, (const pillar_tensor *const *)ins, nout, NULL, outs);
    for (size_t i = 0; st == PILLAR_OK && i < nout; i++) {
        pillar_tensor_destroy(outs[i]);
        outs[i] = NULL;
    }
    if (st != PILLAR_OK) return cli_fail_status(st, st == PILLAR_ERR_INPUT ? CLI_INPUT : CLI_OTHER);
    return CLI_OK;
}

/* The planned layers' multiply-accumulates (returned: the total), and with `print` the
 * per-layer table of --verbose, in execution order, from the profiled timed runs:
 * mean ms per run and share of the layers' sum; `run_ms` is the mean latency of a whole
 * run, so the total line also shows the time spent outside the layers. */
static int64_t layers(const pillar_session *s, bool print, double run_ms) {
    size_t n = pillar_session_node_count(s);
    int64_t total = 0;
    double sum_ms = 0;
    int64_t runs = 0;
    bool chains = false; /* some layers run as tensor columns */
    for (size_t i = 0; i < n; i++) {
        double ms = 0;
        int64_t calls = 0;
        if (pillar_session_node_time(s, i, &ms, &calls) == PILLAR_OK && calls > 0) {
            sum_ms += ms / (double)calls;
            if (calls > runs) runs = calls;
        }
    }
    if (print)
        printf("layers (%zu, mean of %lld profiled runs):\n"
               "  %4s  %-36s %-16s %-20s %-18s %8s %14s %10s %6s\n",
               n, (long long)runs, "#", "name", "op", "kernel", "output", "sparsity", "MACs", "ms",
               "%");
    for (size_t i = 0; i < n; i++) {
        const char *name = NULL, *op = NULL;
        int ndim = -1;
        const int64_t *dims = NULL;
        int64_t macs = 0, params = 0, calls = 0;
        double sparsity = 0, ms = 0;
        if (pillar_session_node(s, i, &name, &op, &ndim, &dims, &params, &sparsity, &macs) !=
            PILLAR_OK)
            continue;
        total += macs;
        if (!print) continue;
        if (pillar_session_node_time(s, i, &ms, &calls) != PILLAR_OK || calls == 0)
            ms = 0;
        else
            ms /= (double)calls;
        const char *kernel = pillar_session_node_kernel(s, i);
        chains |= strstr(kernel, "(column ") != NULL;
        char shape[256], sp[32];
        if (params > 0)
            snprintf(sp, sizeof sp, "%.1f%%", 100.0 * sparsity);
        else
            snprintf(sp, sizeof sp, "-");
        printf("  %4zu  %-36s %-16s %-20s %-18s %8s %14lld %10.4f %6.2f\n", i, name ? name : "",
               op ? op : "", kernel[0] ? kernel : "-",
               cli_dims_str(shape, sizeof shape, ndim, dims, NULL), sp, (long long)macs, ms,
               sum_ms > 0 ? 100.0 * ms / sum_ms : 0.0);
    }
    if (print)
        printf("  %4s  %-36s %-16s %-20s %-18s %8s %14lld %10.4f %6.2f\n"
               "  (a run took %.4f ms on average: %.4f ms outside the layers)\n",
               "", "total", "", "", "", "", (long long)total, sum_ms, sum_ms > 0 ? 100.0 : 0.0,
               run_ms, run_ms - sum_ms);
    if (print && chains)
        printf("  (layers whose kernel says \"(column N)\" run together as chain N, tile by tile:\n"
               "   the chain's time is shown on its first layer, 0 on the others)\n");
    return total;
}

typedef struct stats {
    size_t runs, warm_runs;
    double warm_s, timed_s;
    double mean, median, p90, p99, min, max; /* ms */
    double cpu_ms; /* process CPU time (user + system, all threads) per timed run */
} stats;

/* CPU seconds (user + system) this process has used so far: unlike wall time it hardly
 * changes when other processes share the cores, so comparisons on a busy machine can
 * use it. */
static double cpu_s(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

static int measure(const bench_args *b, pillar_session *s, size_t nin, const char **names,
                   pillar_tensor **ins, size_t nout, pillar_tensor **outs, stats *r) {
    int rc;
    double t0 = now_s();
    do {
        if ((rc = run_once(s, nin, names, ins, nout, outs)) != CLI_OK) return rc;
        r->warm_runs++;
    } while (now_s() - t0 < b->warmup_s);
    r->warm_s = now_s() - t0;
    if (b->verbose) {
        pillar_status st = pillar_session_set_profiling(s, 1);
        if (st != PILLAR_OK) return cli_fail_status(st, CLI_OTHER);
    }
    size_t cap = 1024;
    double *ms = malloc(cap * sizeof *ms);
    if (!ms) return cli_fail(CLI_OTHER, "out of memory");
    double start = now_s(), cpu0 = cpu_s();
    do {
        double a = now_s();
        if ((rc = run_once(s, nin, names, ins, nout, outs)) != CLI_OK) {
            free(ms);
            return rc;
        }
        double z = now_s();
        if (r->runs == cap) {
            double *p = realloc(ms, 2 * cap * sizeof *p);
            if (!p) break; /* keep what we have */
            ms = p;
            cap *= 2;
        }
        ms[r->runs++] = (z - a) * 1e3;
    } while ((b->iterations > 0 ? r->runs < (size_t)b->iterations : now_s() - start < b->time_s) &&
             r->runs < MAX_SAMPLES);
    r->timed_s = now_s() - start;
    r->cpu_ms = (cpu_s() - cpu0) * 1e3 / (double)(r->runs ? r->runs : 1);
    double sum = 0;
    for (size_t i = 0; i < r->runs; i++) sum += ms[i];
    qsort(ms, r->runs, sizeof *ms, cmp_double);
    r->mean = sum / (double)r->runs;
    r->median = percentile(ms, r->runs, 50);
    r->p90 = percentile(ms, r->runs, 90);
    r->p99 = percentile(ms, r->runs, 99);
    r->min = ms[0];
    r->max = ms[r->runs - 1];
    free(ms);
    return CLI_OK;
}

static double peak_rss_mb(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (double)ru.ru_maxrss / 1024.0; /* Linux: kilobytes */
}

/* The schedule the session used ("layers" or "columns") and the one it was asked for,
 * read from the first line of its schedule report ("... (requested auto), ..."). */
typedef struct sched_names {
    const char *used;
    char requested[16];
} sched_names;

static void schedule_names(const pillar_session *s, sched_names *n) {
    n->used = cli_schedule_name(pillar_session_schedule(s));
    snprintf(n->requested, sizeof n->requested, "?");
    const char *rep = pillar_session_schedule_report(s);
    const char *p = rep ? strstr(rep, "(requested ") : NULL;
    const char *nl = rep ? strchr(rep, '\n') : NULL;
    if (!p || (nl && p > nl)) return;
    p += strlen("(requested ");
    size_t k = strcspn(p, ")\n");
    if (k > 0 && k < sizeof n->requested) {
        memcpy(n->requested, p, k);
        n->requested[k] = 0;
    }
}

static void report(const bench_args *b, const stats *r, int64_t batch, int threads, size_t arena,
                   int64_t macs, const sched_names *sn) {
    double items = r->mean > 0 ? (double)batch * 1e3 / r->mean : 0;
    double rss = peak_rss_mb();
    const char *isa = pillar_cpu_isa();
    double gflops = r->median > 0 ? 2.0 * (double)macs / (r->median * 1e6) : 0;
    printf("model: %s\n", b->model);
    printf("isa: %s, threads: %d, batch: %lld, arena: %.2f MiB\n", isa, threads, (long long)batch,
           (double)arena / 1048576.0);
    printf("schedule: %s (requested %s)\n", sn->used, sn->requested);
    printf("warm-up: %zu runs in %.2f s; timed: %zu runs in %.2f s\n", r->warm_runs, r->warm_s,
           r->runs, r->timed_s);
    printf("latency ms: mean %.3f  median %.3f  p90 %.3f  p99 %.3f  min %.3f  max %.3f\n", r->mean,
           r->median, r->p90, r->p99, r->min, r->max);
    printf("throughput: %.2f items/s\n", items);
    printf("cpu: %.3f ms per run (user + system, all threads)\n", r->cpu_ms);
    if (macs > 0)
        printf("work: %.3f GMACs per run, %.1f GFLOP/s at the median\n", (double)macs / 1e9,
               gflops);
    printf("peak RSS: %.1f MB\n", rss);
    if (!b->json) return;
    printf("{\"tool\": \"pillar\", \"model\": ");
    cli_json_str(b->model);
    printf(", \"batch\": %lld, \"threads\": %d, \"isa\": ", (long long)batch, threads);
    cli_json_str(isa);
    printf(", \"mean_ms\": %.9g, \"median_ms\": %.9g, \"p90_ms\": %.9g, \"p99_ms\": %.9g, "
           "\"min_ms\": %.9g, \"max_ms\": %.9g, \"runs\": %zu, \"items_per_s\": %.9g, "
           "\"peak_rss_mb\": %.2f, \"arena_bytes\": %zu, \"macs\": %lld, \"cpu_ms\": %.9g, "
           "\"schedule\": ",
           r->mean, r->median, r->p90, r->p99, r->min, r->max, r->runs, items, rss, arena,
           (long long)macs, r->cpu_ms);
    cli_json_str(sn->used);
    printf(", \"schedule_requested\": ");
    cli_json_str(sn->requested);
    printf("}\n");
}

/* --lsh-output: the same model without it, timed the same way on the same inputs (its
 * latency in *re), and the recall of the LSH session's top-k against it. */
static int bench_exact(const bench_args *b, const pillar_model *m, pillar_options *opt,
                       pillar_session *approx, size_t nin, const char **names, pillar_tensor **ins,
                       stats *re) {
    pillar_session *e = NULL;
    pillar_status st = pillar_options_set_lsh_output(opt, 0, 0, 0);
    if (st == PILLAR_OK) st = pillar_session_create(m, opt, &e);
    if (st != PILLAR_OK) return cli_fail_status(st, CLI_MODEL);
    size_t nout = pillar_session_output_count(e);
    pillar_tensor **outs = calloc(nout + 1, sizeof *outs);
    bench_args quiet = *b;
    quiet.verbose = false;
    int rc = outs ? measure(&quiet, e, nin, names, ins, nout, outs, re)
                  : cli_fail(CLI_OTHER, "out of memory");
    if (rc == CLI_OK) rc = cli_lsh_recall(approx, e, nin, names, ins);
    for (size_t i = 0; outs && i < nout; i++) pillar_tensor_destroy(outs[i]);
    free(outs);
    pillar_session_destroy(e);
    return rc;
}

static int bench_model(const bench_args *b) {
    pillar_model *m = NULL;
    pillar_options *opt = NULL;
    pillar_session *s = NULL;
    pillar_tensor **ins = NULL, **outs = NULL;
    const char **names = NULL;
    size_t nin = 0, nout = 0;
    input_syms syms = {0};
    pillar_status st;
    int rc = load_model(b, &m);
    if (rc != CLI_OK) goto done;
    if ((rc = cli_make_options(&b->mo, m, &opt)) != CLI_OK) goto done;
    if ((rc = cli_apply_batch(&b->mo, m, b->batch, b->batch_given, opt)) != CLI_OK) goto done;
    if ((rc = cli_lsh_output_apply(&b->lsh, opt)) != CLI_OK) goto done;
    if (b->schedule_given && (st = pillar_options_set_schedule(opt, b->schedule)) != PILLAR_OK) {
        rc = cli_fail_status(st, CLI_OTHER);
        goto done;
    }
    if ((rc = syms_copy(m, &syms)) != CLI_OK) goto done;
    /* the session takes the model over, so raw weights go as their kernels pack them;
     * --lsh-output needs the model for a second session */
    st = b->lsh.K ? pillar_session_create(m, opt, &s) : pillar_session_create_from(&m, opt, &s);
    if (st != PILLAR_OK) {
        rc = cli_fail_status(st, CLI_MODEL);
        goto done;
    }
    nin = pillar_session_input_count(s);
    nout = pillar_session_output_count(s);
    ins = calloc(nin + 1, sizeof *ins);
    names = calloc(nin + 1, sizeof *names);
    outs = calloc(nout + 1, sizeof *outs);
    if (!ins || !names || !outs) {
        rc = cli_fail(CLI_OTHER, "out of memory");
        goto done;
    }
    int64_t batch = 1;
    if ((rc = make_inputs(b, &syms, s, ins, names, &batch)) != CLI_OK) goto done;
    stats rex; /* --lsh-output: the exact model, measured while the model is loaded */
    memset(&rex, 0, sizeof rex);
    if (b->lsh.K && (rc = bench_exact(b, m, opt, s, nin, names, ins, &rex)) != CLI_OK) goto done;
    /* the session holds what it needs of the model's weights: free the rest now */
    pillar_model_destroy(m);
    m = NULL;
    stats r;
    memset(&r, 0, sizeof r);
    if ((rc = measure(b, s, nin, names, ins, nout, outs, &r)) != CLI_OK) goto done;
    int threads = b->mo.threads > 0 ? b->mo.threads : physical_cores();
    int64_t macs = layers(s, b->verbose, r.mean);
    if (b->lsh.K)
        printf("lsh-output %d,%d,%d: latency ms median %.3f, mean %.3f; exact model median %.3f, "
               "mean %.3f: %.2fx faster than exact (median)\n",
               b->lsh.K, b->lsh.L, b->lsh.topk, r.median, r.mean, rex.median, rex.mean,
               r.median > 0 ? rex.median / r.median : 0);
    sched_names sn;
    schedule_names(s, &sn);
    report(b, &r, batch, threads, pillar_session_arena_bytes(s), macs, &sn);
done:
    for (size_t i = 0; outs && i < nout; i++) pillar_tensor_destroy(outs[i]);
    for (size_t i = 0; ins && i < nin; i++) pillar_tensor_destroy(ins[i]);
    free(outs);
    free(ins);
    free(names);
    pillar_session_destroy(s);
    pillar_options_destroy(opt);
    pillar_model_destroy(m);
    syms_free(&syms);
    return rc;
}

int cmd_bench(int argc, char **argv) {
    bench_args b;
    memset(&b, 0, sizeof b);
    b.mo.threads = -1;
    b.batch = 1;
    b.time_s = 5;
    b.warmup_s = 1;
    b.seed = 1;
    bool help = false;
    int rc = parse_args(&b, argc, argv, &help);
    if (rc == CLI_OK && help)
        help_bench();
    else if (rc == CLI_OK)
        rc = bench_model(&b);
    cli_model_opts_free(&b.mo);
    return rc;
}
