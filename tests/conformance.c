/* conformance.c -- runs ONNX backend test cases (model.onnx + test_data_set_N/
 * {input,output}_K.pb) through the public API and compares with the expected outputs.
 *
 *   conformance [options] [DIR...]      (default: Debian's libonnx-testdata)
 *     --filter S      only cases whose path contains S (repeatable: any matches)
 *     --expect FILE   cases listed in FILE must pass; exit 1 if one does not
 *     --write-passing FILE   write the list of passing cases
 *     --timeout SEC   per-case time limit (default 60)
 *     -j N            cases run in parallel (default 1)
 *     -q              print only failures and the summary
 *
 * Each case runs in a child process, so a crash or hang is reported as a failure of that
 * case and the run goes on. The last line is "N passed, N failed, N skipped". The exit
 * code is 1 if a case crashed or timed out, or an --expect case did not pass. */
#define _GNU_SOURCE
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pillar.h"

#define RTOL 1e-3
#define ATOL 1e-5

enum { R_PASS, R_FAIL, R_SKIP, R_CRASH };

typedef struct {
    char *path;  /* case directory */
    char *name;  /* "node/test_abs" */
    int result;
    char detail[512];
    pid_t pid;
    int fd;
    bool done;
} test_case;

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}
static int is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}
static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static char **list_dir(const char *dir, int *n) {
    DIR *d = opendir(dir);
    *n = 0;
    if (!d) return NULL;
    char **v = NULL;
    int cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            v = realloc(v, (size_t)cap * sizeof *v);
        }
        v[(*n)++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(v, (size_t)*n, sizeof *v, cmp_str);
    return v;
}

static test_case *cases;
static int ncases, capcases;

static void add_case(const char *path, const char *name) {
    if (ncases == capcases) {
        capcases = capcases ? capcases * 2 : 256;
        cases = realloc(cases, (size_t)capcases * sizeof *cases);
    }
    memset(&cases[ncases], 0, sizeof cases[ncases]);
    cases[ncases].path = strdup(path);
    cases[ncases].name = strdup(name);
    ncases++;
}

/* DIR is a case, a folder of cases, or a folder of folders of cases. */
static void collect(const char *dir, const char *prefix, int depth) {
    char p[4096];
    snprintf(p, sizeof p, "%s/model.onnx", dir);
    if (is_file(p)) {
        add_case(dir, prefix[0] ? prefix : dir);
        return;
    }
    if (depth > 2) return;
    int n;
    char **ents = list_dir(dir, &n);
    for (int i = 0; i < n; i++) {
        char sub[4096], name[4096];
        snprintf(sub, sizeof sub, "%s/%s", dir, ents[i]);
        snprintf(name, sizeof name, "%s%s%s", prefix, prefix[0] ? "/" : "", ents[i]);
        if (is_dir(sub)) collect(sub, name, depth + 1);
        free(ents[i]);
    }
    free(ents);
}

/* ---- comparison ---- */

static double elem(const pillar_tensor *t, int64_t i) {
    const void *d = pillar_tensor_data(t);
    switch (pillar_tensor_dtype(t)) {
    case PILLAR_FLOAT32: return ((const float *)d)[i];
    case PILLAR_FLOAT64: return ((const double *)d)[i];
    case PILLAR_UINT8: case PILLAR_BOOL: return ((const uint8_t *)d)[i];
    case PILLAR_INT8: return ((const int8_t *)d)[i];
    case PILLAR_UINT16: return ((const uint16_t *)d)[i];
    case PILLAR_INT16: return ((const int16_t *)d)[i];
    case PILLAR_INT32: return ((const int32_t *)d)[i];
    case PILLAR_UINT32: return ((const uint32_t *)d)[i];
    case PILLAR_INT64: return (double)((const int64_t *)d)[i];
    case PILLAR_UINT64: return (double)((const uint64_t *)d)[i];
    case PILLAR_FLOAT16: case PILLAR_BFLOAT16: {
        uint16_t h = ((const uint16_t *)d)[i];
        if (pillar_tensor_dtype(t) == PILLAR_BFLOAT16) {
            uint32_t b = (uint32_t)h << 16;
            float f;
            memcpy(&f, &b, 4);
            return f;
        }
        int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
        double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(m + 1024, e - 25);
        return s ? -v : v;
    }
    default: return 0;
    }
}

static void shape_str(const pillar_tensor *t, char *buf, size_t n) {
    size_t k = 0, nd = pillar_tensor_ndim(t);
    const int64_t *d = pillar_tensor_dims(t);
    buf[0] = 0;
    if (nd == 0) snprintf(buf, n, "scalar");
    for (size_t i = 0; i < nd && k < n; i++) k += (size_t)snprintf(buf + k, n - k, i ? "x%lld" : "%lld", (long long)d[i]);
}

/* Returns 0 if equal within tolerance; else writes what differs. */
static int compare(const pillar_tensor *got, const pillar_tensor *want, const char *oname, char *msg, size_t n) {
    char a[128], b[128];
    if (pillar_tensor_dtype(got) != pillar_tensor_dtype(want)) {
        snprintf(msg, n, "output '%s': type %s, expected %s", oname, pillar_dtype_name(pillar_tensor_dtype(got)),
                 pillar_dtype_name(pillar_tensor_dtype(want)));
        return 1;
    }
    shape_str(got, a, sizeof a);
    shape_str(want, b, sizeof b);
    if (strcmp(a, b) != 0) {
        snprintf(msg, n, "output '%s': shape %s, expected %s", oname, a, b);
        return 1;
    }
    int64_t ne = pillar_tensor_numel(want);
    pillar_dtype dt = pillar_tensor_dtype(want);
    if (dt == PILLAR_STRING) {
        char **g = pillar_tensor_data(got), **w = pillar_tensor_data(want);
        for (int64_t i = 0; i < ne; i++)
            if (strcmp(g[i] ? g[i] : "", w[i] ? w[i] : "") != 0) {
                snprintf(msg, n, "output '%s'[%lld]: '%s', expected '%s'", oname, (long long)i, g[i], w[i]);
                return 1;
            }
        return 0;
    }
    bool fl = dt == PILLAR_FLOAT32 || dt == PILLAR_FLOAT64 || dt == PILLAR_FLOAT16 || dt == PILLAR_BFLOAT16;
    double worst = 0, worst_excess = 0;
    int64_t wi = -1;
    for (int64_t i = 0; i < ne; i++) {
        double g = elem(got, i), w = elem(want, i);
        if (!fl) {
            bool same = dt == PILLAR_INT64 ? ((const int64_t *)pillar_tensor_data(got))[i] == ((const int64_t *)pillar_tensor_data(want))[i]
                      : dt == PILLAR_UINT64 ? ((const uint64_t *)pillar_tensor_data(got))[i] == ((const uint64_t *)pillar_tensor_data(want))[i]
                      : g == w;
            if (!same) {
                snprintf(msg, n, "output '%s'[%lld]: %.17g, expected %.17g", oname, (long long)i, g, w);
                return 1;
            }
            continue;
        }
        if (isnan(w) && isnan(g)) continue;
        if (isinf(w) && g == w) continue;
        double diff = fabs(g - w);
        double tol = ATOL + RTOL * fabs(w);
        if (dt == PILLAR_FLOAT16 || dt == PILLAR_BFLOAT16) tol = 1e-3 + 1e-2 * fabs(w);
        if (isnan(diff) || diff - tol > worst_excess || (wi < 0 && diff > tol)) {
            worst_excess = isnan(diff) ? INFINITY : diff - tol;
            worst = diff;
            wi = i;
        }
    }
    if (wi >= 0) {
        snprintf(msg, n, "output '%s'[%lld]: %.9g, expected %.9g (diff %.3g)", oname, (long long)wi, elem(got, wi), elem(want, wi), worst);
        return 1;
    }
    return 0;
}

/* ---- one case, in the child ---- */

static int load_set(const char *dir, const char *prefix, pillar_tensor ***ts, char ***names, int *n) {
    *n = 0;
    *ts = NULL;
    *names = NULL;
    for (int k = 0;; k++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s_%d.pb", dir, prefix, k);
        if (!is_file(p)) break;
        *ts = realloc(*ts, (size_t)(k + 1) * sizeof **ts);
        *names = realloc(*names, (size_t)(k + 1) * sizeof **names);
        if (pillar_tensor_load_pb(p, &(*ts)[k], &(*names)[k]) != PILLAR_OK) return -1;
        *n = k + 1;
    }
    return 0;
}

static int run_case(const char *path, char *msg, size_t n) {
    char p[4096];
    snprintf(p, sizeof p, "%s/model.onnx", path);
    pillar_model *m = NULL;
    pillar_status st = pillar_model_load(p, &m);
    if (st != PILLAR_OK) {
        snprintf(msg, n, "%s", pillar_last_error());
        return st == PILLAR_ERR_UNSUPPORTED ? R_SKIP : R_FAIL;
    }
    for (size_t q = 0; q < pillar_model_input_count(m) + pillar_model_output_count(m); q++) {
        pillar_dtype dt;
        size_t ni = pillar_model_input_count(m);
        if (q < ni) pillar_model_input(m, q, NULL, &dt, NULL, NULL);
        else pillar_model_output(m, q - ni, NULL, &dt, NULL, NULL);
        if (dt == PILLAR_UNDEFINED) {
            snprintf(msg, n, "%s %zu has a %s type, not supported", q < ni ? "input" : "output", q < ni ? q : q - ni,
                     dt == PILLAR_STRING ? "string" : "sequence/map/optional");
            pillar_model_destroy(m);
            return R_SKIP;
        }
    }
    int nsets;
    char **sets = list_dir(path, &nsets);
    int result = R_PASS, ran = 0;
    msg[0] = 0;
    size_t nin = pillar_model_input_count(m);
    for (int si = 0; si < nsets && result == R_PASS; si++) {
        if (strncmp(sets[si], "test_data_set_", 14) != 0) continue;
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s", path, sets[si]);
        pillar_tensor **ins = NULL, **outs = NULL;
        char **in_names = NULL, **out_names = NULL;
        int ni = 0, no = 0;
        if (load_set(dir, "input", &ins, &in_names, &ni) || load_set(dir, "output", &outs, &out_names, &no)) {
            snprintf(msg, n, "%s", pillar_last_error());
            result = strstr(msg, "not supported") ? R_SKIP : R_FAIL;
        }
        /* inputs are matched by name when the .pb names one, else by position */
        const char **bind = calloc((size_t)ni + 1, sizeof *bind);
        pillar_options *o = NULL;
        pillar_options_create(&o);
        for (int k = 0; k < ni && result == R_PASS; k++) {
            const char *nm = NULL;
            for (size_t q = 0; q < nin; q++) {
                const char *mn;
                pillar_model_input(m, q, &mn, NULL, NULL, NULL);
                if (in_names[k] && !strcmp(mn, in_names[k])) nm = mn;
            }
            if (!nm && (size_t)k < nin) pillar_model_input(m, (size_t)k, &nm, NULL, NULL, NULL);
            if (!nm) {
                snprintf(msg, n, "test input %d matches no model input", k);
                result = R_FAIL;
                break;
            }
            bind[k] = nm;
            pillar_options_set_shape(o, nm, pillar_tensor_ndim(ins[k]), pillar_tensor_dims(ins[k]));
        }
        pillar_session *s = NULL;
        if (result == R_PASS && (st = pillar_session_create(m, o, &s)) != PILLAR_OK) {
            snprintf(msg, n, "%s", pillar_last_error());
            result = st == PILLAR_ERR_UNSUPPORTED ? R_SKIP : R_FAIL;
        }
        size_t nout = pillar_model_output_count(m);
        pillar_tensor **got = calloc(nout + 1, sizeof *got);
        if (result == R_PASS && (st = pillar_session_run(s, (size_t)ni, bind, (const pillar_tensor *const *)ins, nout, NULL, got)) != PILLAR_OK) {
            snprintf(msg, n, "%s", pillar_last_error());
            result = st == PILLAR_ERR_UNSUPPORTED ? R_SKIP : R_FAIL;
        }
        for (int k = 0; k < no && result == R_PASS; k++) {
            int oi = -1;
            for (size_t q = 0; q < nout; q++) {
                const char *mn;
                pillar_model_output(m, q, &mn, NULL, NULL, NULL);
                if (out_names[k] && !strcmp(mn, out_names[k])) oi = (int)q;
            }
            if (oi < 0 && (size_t)k < nout) oi = k;
            if (oi < 0) {
                snprintf(msg, n, "expected output %d has no model output", k);
                result = R_FAIL;
                break;
            }
            const char *mn;
            pillar_model_output(m, (size_t)oi, &mn, NULL, NULL, NULL);
            if (compare(got[oi], outs[k], mn, msg, n)) result = R_FAIL;
        }
        ran++;
        for (size_t q = 0; q < nout; q++) pillar_tensor_destroy(got[q]);
        free(got);
        pillar_session_destroy(s);
        pillar_options_destroy(o);
        free(bind);
        for (int k = 0; k < ni; k++) { pillar_tensor_destroy(ins[k]); free(in_names[k]); }
        for (int k = 0; k < no; k++) { pillar_tensor_destroy(outs[k]); free(out_names[k]); }
        free(ins); free(outs); free(in_names); free(out_names);
    }
    for (int i = 0; i < nsets; i++) free(sets[i]);
    free(sets);
    pillar_model_destroy(m);
    if (result == R_PASS && ran == 0) {
        snprintf(msg, n, "no test data");
        result = R_SKIP;
    }
    return result;
}

/* ---- driver ---- */

static int timeout_s = 60;

/* Under LeakSanitizer, a case that leaks fails (the child leaves with _exit, which would
 * skip the usual check at exit). */
extern int __lsan_do_recoverable_leak_check(void) __attribute__((weak));

static void start(test_case *c) {
    int fds[2];
    if (pipe(fds) != 0) {
        c->result = R_CRASH;
        snprintf(c->detail, sizeof c->detail, "pipe failed");
        c->done = true;
        return;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        alarm((unsigned)timeout_s);
        char msg[480];
        int r = run_case(c->path, msg, sizeof msg);
        if (__lsan_do_recoverable_leak_check && __lsan_do_recoverable_leak_check()) {
            r = R_FAIL;
            snprintf(msg, sizeof msg, "memory leak (see the LeakSanitizer report above)");
        }
        char out[512];
        int len = snprintf(out, sizeof out, "%d %s", r, msg);
        if (write(fds[1], out, (size_t)len) < 0) _exit(3);
        _exit(0);
    }
    close(fds[1]);
    c->pid = pid;
    c->fd = fds[0];
}

static void finish(test_case *c, int status) {
    char buf[600];
    ssize_t len = read(c->fd, buf, sizeof buf - 1);
    close(c->fd);
    c->done = true;
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        c->result = R_CRASH;
        if (sig == SIGALRM) snprintf(c->detail, sizeof c->detail, "timed out after %d s", timeout_s);
        else snprintf(c->detail, sizeof c->detail, "crashed (%s)", strsignal(sig));
        return;
    }
    if (len <= 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        c->result = R_CRASH;
        snprintf(c->detail, sizeof c->detail, "exited without a result (status %d)", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        return;
    }
    buf[len] = 0;
    c->result = atoi(buf);
    const char *sp = strchr(buf, ' ');
    snprintf(c->detail, sizeof c->detail, "%s", sp ? sp + 1 : "");
    for (char *q = c->detail; *q; q++)
        if (*q == '\n') *q = ' ';
}

int main(int argc, char **argv) {
    const char **filters = calloc((size_t)argc + 1, sizeof *filters);
    int nf = 0, jobs = 1, quiet = 0;
    const char *expect = NULL, *write_passing = NULL;
    const char **dirs = calloc((size_t)argc + 2, sizeof *dirs);
    int nd = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--filter") && i + 1 < argc) filters[nf++] = argv[++i];
        else if (!strcmp(argv[i], "--expect") && i + 1 < argc) expect = argv[++i];
        else if (!strcmp(argv[i], "--write-passing") && i + 1 < argc) write_passing = argv[++i];
        else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) timeout_s = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-j") && i + 1 < argc) jobs = atoi(argv[++i]);
        else if (!strncmp(argv[i], "-j", 2) && argv[i][2]) jobs = atoi(argv[i] + 2);
        else if (!strcmp(argv[i], "-q")) quiet = 1;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: conformance [--filter S]... [--expect FILE] [--write-passing FILE] [--timeout SEC] [-j N] [-q] [DIR...]\n"
                   "Runs ONNX backend test cases (default: /usr/share/libonnx-testdata/data).\n");
            return 0;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "conformance: unknown option '%s' (see --help)\n", argv[i]);
            return 2;
        } else dirs[nd++] = argv[i];
    }
    if (jobs < 1) jobs = 1;
    if (nd == 0) dirs[nd++] = "/usr/share/libonnx-testdata/data";
    for (int i = 0; i < nd; i++) {
        if (!is_dir(dirs[i])) {
            fprintf(stderr, "conformance: %s is not a folder (install libonnx-testdata)\n", dirs[i]);
            return 2;
        }
        collect(dirs[i], "", 0);
    }
    int kept = 0;
    for (int i = 0; i < ncases; i++) {
        bool ok = nf == 0;
        for (int f = 0; f < nf && !ok; f++) ok = strstr(cases[i].name, filters[f]) != NULL;
        if (ok) cases[kept++] = cases[i];
        else { free(cases[i].path); free(cases[i].name); }
    }
    ncases = kept;
    int next = 0, running = 0, printed = 0;
    while (printed < ncases) {
        while (running < jobs && next < ncases) {
            start(&cases[next]);
            if (!cases[next].done) running++;
            next++;
        }
        if (running > 0) {
            int status;
            pid_t pid = wait(&status);
            for (int i = 0; i < next; i++)
                if (!cases[i].done && cases[i].pid == pid) {
                    finish(&cases[i], status);
                    running--;
                }
        }
        while (printed < ncases && cases[printed].done) {
            test_case *c = &cases[printed++];
            static const char *tag[] = {"pass", "FAIL", "unsupported", "FAIL"};
            if (!quiet || c->result == R_FAIL || c->result == R_CRASH)
                printf("%-11s %s%s%s\n", tag[c->result], c->name, c->detail[0] ? ": " : "", c->detail);
        }
    }
    int pass = 0, fail = 0, skip = 0, crash = 0;
    for (int i = 0; i < ncases; i++) {
        if (cases[i].result == R_PASS) pass++;
        else if (cases[i].result == R_SKIP) skip++;
        else fail++;
        if (cases[i].result == R_CRASH) crash++;
    }
    int rc = crash ? 1 : 0;
    if (write_passing) {
        FILE *f = fopen(write_passing, "w");
        for (int i = 0; f && i < ncases; i++)
            if (cases[i].result == R_PASS) fprintf(f, "%s\n", cases[i].name);
        if (f) fclose(f);
    }
    if (expect) {
        FILE *f = fopen(expect, "r");
        if (!f) {
            fprintf(stderr, "conformance: cannot read %s\n", expect);
            return 2;
        }
        char line[1024];
        int missing = 0;
        while (fgets(line, sizeof line, f)) {
            line[strcspn(line, "\r\n")] = 0;
            if (!line[0] || line[0] == '#') continue;
            int found = 0;
            for (int i = 0; i < ncases; i++)
                if (!strcmp(cases[i].name, line)) found = cases[i].result == R_PASS ? 1 : -1;
            if (found == -1 || (found == 0 && nf == 0)) {
                printf("regression: %s was expected to pass\n", line);
                missing++;
            }
        }
        fclose(f);
        if (missing) rc = 1;
    }
    for (int i = 0; i < ncases; i++) {
        free(cases[i].path);
        free(cases[i].name);
    }
    free(cases);
    free(filters);
    free(dirs);
    if (crash) printf("%d case(s) crashed or timed out\n", crash);
    printf("%d passed, %d failed, %d skipped\n", pass, fail, skip);
    return rc;
}
