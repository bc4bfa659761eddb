/* inspect.c -- `pillar inspect MODEL`: what a model takes and gives, and for each planned
 * node its output shape, weights, weight sparsity, multiply-accumulate count and the
 * kernel the session chose for it; with --schedule, the session's schedule report (the
 * chains run as tensor columns, their tiles and the bytes each schedule moves). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "schedule_opt.h"

void help_inspect(void) {
    printf("usage: pillar inspect MODEL [--shape NAME=DIMS]... [--dim SYMBOL=N]... [--threads N]\n"
           "                      [--batch N] [--schedule[=layers|columns|auto]] [--json]\n"
           "\n"
           "Plans MODEL (an ONNX file) and prints its inputs and outputs (symbolic\n"
           "dimensions by name), then each node after constant folding: name, op, the\n"
           "kernel chosen for it at planning (\"-\" when the op does not say), output\n"
           "shape, weight count, weight sparsity and MACs; then totals and the bytes of the\n"
           "intermediate-tensor arena.\n"
           "\n"
           "options:\n"
           "  --shape NAME=DIMS   fix the shape of input NAME, e.g. --shape x=1x3x224x224\n"
           "                      (commas also work: 1,3,224,224)\n"
           "  --dim SYMBOL=N      give a symbolic dimension a value for every input, e.g.\n"
           "                      --dim batch=1\n"
           "  --threads N         worker threads the plan is made for (0 = one per core)\n"
           "  --batch N           leading dimension of every input whose first dimension is\n"
           "                      symbolic (unless --shape or --dim gives it)\n"
           "  --schedule [S]      print the schedule report instead of the node table: the\n"
           "                      schedule chosen, the L2/L3 sizes planned for, each chain\n"
           "                      of layers that can run as tensor columns (tile rows, tiles\n"
           "                      per image, working set, estimated bytes per inference\n"
           "                      under both schedules, why a chain is not used) and the\n"
           "                      totals. S (layers, columns or auto; default\n"
           "                      $PILLAR_SCHEDULE if set, else auto) is the schedule asked\n"
           "                      for\n"
           "  --json              print one JSON object instead of text (with \"schedule\":\n"
           "                      the schedule used, and \"schedule_report\": the report)\n"
           "  -h, --help          show this help\n");
}

typedef struct io_info {
    const char *name;
    pillar_dtype dtype;
    size_t ndim;
    const int64_t *dims;
    const char *sym[PILLAR_MAX_DIMS];
} io_info;

/* Input/output i of the session, with symbol names from the model for dims the
 * session still does not know. */
static pillar_status get_io(const pillar_session *s, const pillar_model *m, int is_input, size_t i,
                            io_info *io) {
    memset(io, 0, sizeof *io);
    pillar_status st =
        is_input ? pillar_session_input(s, i, &io->name, &io->dtype, &io->ndim, &io->dims)
                 : pillar_session_output(s, i, &io->name, &io->dtype, &io->ndim, &io->dims);
    if (st != PILLAR_OK) return st;
    if (io->ndim == 0 && io->name) {
        /* Rank 0 may mean "not known yet" (a dynamic model planned at run time): show the
         * shape the model declares instead. */
        size_t n = is_input ? pillar_model_input_count(m) : pillar_model_output_count(m);
        for (size_t k = 0; k < n; k++) {
            const char *nm = NULL;
            size_t nd = 0;
            const int64_t *dims = NULL;
            st = is_input ? pillar_model_input(m, k, &nm, NULL, &nd, &dims)
                          : pillar_model_output(m, k, &nm, NULL, &nd, &dims);
            if (st == PILLAR_OK && nm && strcmp(nm, io->name) == 0 && nd > 0) {
                io->ndim = nd;
                io->dims = dims;
                break;
            }
        }
    }
    if (io->ndim > PILLAR_MAX_DIMS) io->ndim = PILLAR_MAX_DIMS;
    if (is_input && io->name) {
        long mi = cli_model_input_index(m, io->name);
        for (size_t d = 0; mi >= 0 && d < io->ndim; d++)
            io->sym[d] = pillar_model_input_dim_name(m, (size_t)mi, d);
    }
    return PILLAR_OK;
}

static void json_dims(long ndim, const int64_t *dims, const char *const *sym) {
    if (ndim < 0) {
        fputs("null", stdout);
        return;
    }
    putchar('[');
    for (long d = 0; d < ndim; d++) {
        if (d) fputs(", ", stdout);
        if (dims && dims[d] >= 0)
            printf("%lld", (long long)dims[d]);
        else if (sym && sym[d])
            cli_json_str(sym[d]);
        else
            fputs("null", stdout);
    }
    putchar(']');
}

static void print_io_text(const char *title, const io_info *io, size_t n) {
    printf("%s:\n", title);
    if (n == 0) printf("  (none)\n");
    for (size_t i = 0; i < n; i++) {
        char buf[256];
        printf("  %-24s %-9s %s\n", io[i].name ? io[i].name : "?", pillar_dtype_name(io[i].dtype),
               cli_dims_str(buf, sizeof buf, (long)io[i].ndim, io[i].dims, io[i].sym));
    }
}

static void print_io_json(const char *key, const io_info *io, size_t n) {
    printf("  \"%s\": [", key);
    for (size_t i = 0; i < n; i++) {
        printf("%s\n    {\"name\": ", i ? "," : "");
        cli_json_str(io[i].name);
        printf(", \"dtype\": \"%s\", \"shape\": ", pillar_dtype_name(io[i].dtype));
        json_dims((long)io[i].ndim, io[i].dims, io[i].sym);
        putchar('}');
    }
    printf("%s],\n", n ? "\n  " : "");
}

static int report_body(const char *path, const pillar_session *s, bool json, const io_info *ins,
                       size_t nin, const io_info *outs, size_t nout);

/* Prints everything; nodes are streamed so a huge model needs little memory. */
static int report(const char *path, const pillar_model *m, const pillar_session *s, bool json) {
    size_t nin = pillar_session_input_count(s), nout = pillar_session_output_count(s);
    io_info *ins = calloc(nin + 1, sizeof *ins), *outs = calloc(nout + 1, sizeof *outs);
    pillar_status st = PILLAR_OK;
    int rc = CLI_OK;
    if (!ins || !outs) rc = cli_fail(CLI_OTHER, "out of memory");
    for (size_t i = 0; i < nin && rc == CLI_OK; i++)
        if ((st = get_io(s, m, 1, i, &ins[i])) != PILLAR_OK) rc = cli_fail_status(st, CLI_OTHER);
    for (size_t i = 0; i < nout && rc == CLI_OK; i++)
        if ((st = get_io(s, m, 0, i, &outs[i])) != PILLAR_OK) rc = cli_fail_status(st, CLI_OTHER);
    if (rc == CLI_OK) rc = report_body(path, s, json, ins, nin, outs, nout);
    free(ins);
    free(outs);
    return rc;
}

static int report_body(const char *path, const pillar_session *s, bool json, const io_info *ins,
                       size_t nin, const io_info *outs, size_t nout) {
    pillar_status st;

    size_t nn = pillar_session_node_count(s);
    int64_t total_params = 0, total_macs = 0;
    if (json) {
        printf("{\n  \"model\": ");
        cli_json_str(path);
        printf(",\n");
        print_io_json("inputs", ins, nin);
        print_io_json("outputs", outs, nout);
        printf("  \"nodes\": [");
    } else {
        printf("model: %s\n", path);
        print_io_text("inputs", ins, nin);
        print_io_text("outputs", outs, nout);
        printf("nodes:\n  %4s  %-28s %-18s %-20s %-18s %10s %9s %14s\n", "#", "name", "op",
               "kernel", "output", "params", "sparsity", "MACs");
    }
    for (size_t i = 0; i < nn; i++) {
        const char *name = NULL, *op = NULL;
        int ndim = -1;
        const int64_t *dims = NULL;
        int64_t params = 0, macs = 0;
        double sparsity = 0;
        st = pillar_session_node(s, i, &name, &op, &ndim, &dims, &params, &sparsity, &macs);
        if (st != PILLAR_OK) return cli_fail_status(st, CLI_OTHER);
        if (ndim > PILLAR_MAX_DIMS) ndim = PILLAR_MAX_DIMS;
        total_params += params;
        total_macs += macs;
        const char *kernel = pillar_session_node_kernel(s, i);
        if (json) {
            printf("%s\n    {\"name\": ", i ? "," : "");
            cli_json_str(name);
            printf(", \"op\": ");
            cli_json_str(op);
            printf(", \"kernel\": ");
            cli_json_str(kernel);
            printf(", \"shape\": ");
            json_dims(ndim, dims, NULL);
            printf(", \"params\": %lld, \"sparsity\": %.6f, \"macs\": %lld}", (long long)params,
                   sparsity, (long long)macs);
        } else {
            char shape[256], sp[32];
            cli_dims_str(shape, sizeof shape, ndim, dims, NULL);
            if (params > 0)
                snprintf(sp, sizeof sp, "%.1f%%", 100.0 * sparsity);
            else
                snprintf(sp, sizeof sp, "-");
            printf("  %4zu  %-28s %-18s %-20s %-18s %10lld %9s %14lld\n", i, name ? name : "?",
                   op ? op : "?", kernel[0] ? kernel : "-", shape, (long long)params, sp,
                   (long long)macs);
        }
    }
    if (!json && nn == 0) {
        bool open = false;
        for (size_t i = 0; i < nin; i++)
            for (size_t d = 0; d < ins[i].ndim; d++) open |= !ins[i].dims || ins[i].dims[d] < 0;
        if (open) printf("  (planned at run time: give --shape or --dim to see the nodes)\n");
    }
    size_t arena = pillar_session_arena_bytes(s);
    double gmacs = (double)total_macs / 1e9;
    if (json) {
        printf("%s],\n", nn ? "\n  " : "");
        printf(
            "  \"totals\": {\"nodes\": %zu, \"params\": %lld, \"macs\": %lld, \"gmacs\": %.6f},\n",
            nn, (long long)total_params, (long long)total_macs, gmacs);
        printf("  \"arena_bytes\": %zu,\n  \"schedule\": ", arena);
        cli_json_str(cli_schedule_name(pillar_session_schedule(s)));
        printf(",\n  \"schedule_report\": ");
        cli_json_str(pillar_session_schedule_report(s));
        printf("\n}\n");
    } else {
        printf("totals: %zu nodes, %lld params, %lld MACs (%.3f GMACs)\n", nn,
               (long long)total_params, (long long)total_macs, gmacs);
        if (arena)
            printf("arena: %zu bytes (%.2f MiB)\n", arena, (double)arena / (1024.0 * 1024.0));
        else
            printf("arena: planned at run time (input shapes not fixed)\n");
        const char *sr = pillar_session_schedule_report(s);
        if (sr && *sr) printf("%.*s (details: --schedule)\n", (int)strcspn(sr, "\n"), sr);
    }
    return CLI_OK;
}

/* --schedule: the model and the session's schedule report, as the library words it. */
static void print_schedule(const char *path, const pillar_session *s) {
    const char *r = pillar_session_schedule_report(s);
    printf("model: %s\n", path);
    if (!r || !*r) {
        printf("schedule: planned at run time (input shapes not fixed): give --shape, --dim or "
               "--batch to see the chains\n");
        return;
    }
    size_t n = strlen(r);
    fputs(r, stdout);
    if (r[n - 1] != '\n') putchar('\n');
}

int cmd_inspect(int argc, char **argv) {
    cli_args a;
    cli_model_opts mo = {.threads = -1};
    const char *model_path = NULL;
    bool json = false, show_schedule = false, schedule_given = false;
    pillar_schedule schedule = PILLAR_SCHEDULE_AUTO;
    int64_t batch = 0;
    char flag[64];
    const char *v;
    int rc = CLI_OK;
    cli_args_init(&a, "inspect", argc, argv);
    while (rc == CLI_OK && cli_args_next(&a, flag, sizeof flag, &v)) {
        if (!flag[0]) {
            if (model_path) rc = cli_usage_error("inspect", "unexpected argument '%s'", v);
            model_path = v;
            continue;
        }
        if (strcmp(flag, "-h") == 0 || strcmp(flag, "--help") == 0) {
            help_inspect();
            cli_model_opts_free(&mo);
            return CLI_OK;
        }
        if (strcmp(flag, "--json") == 0) {
            if (cli_args_has_inline_value(&a))
                rc = cli_usage_error("inspect", "--json takes no value");
            json = true;
            continue;
        }
        if (strcmp(flag, "--schedule") == 0) {
            /* the value is optional: --schedule=S, or a following word that names a
             * schedule (so `--schedule MODEL` still reads MODEL as the model) */
            show_schedule = true;
            if (cli_args_has_inline_value(&a)) {
                if (!cli_args_value(&a, flag, &v)) rc = CLI_USAGE;
            } else if (a.i < a.argc && cli_schedule_parse(a.argv[a.i], &schedule)) {
                v = a.argv[a.i++];
            } else {
                continue;
            }
            if (rc == CLI_OK && !cli_schedule_parse(v, &schedule))
                rc = cli_usage_error("inspect", "--schedule: '%s' is not " CLI_SCHEDULE_WORDS, v);
            schedule_given = true;
            continue;
        }
        if (strcmp(flag, "--batch") == 0) {
            if (!cli_args_value(&a, flag, &v))
                rc = CLI_USAGE;
            else if (!cli_parse_int(v, 1, (int64_t)1 << 40, &batch))
                rc = cli_usage_error("inspect", "--batch: '%s' is not a positive integer", v);
            continue;
        }
        int h = cli_model_opts_parse(&mo, &a, flag);
        if (h < 0)
            rc = CLI_USAGE;
        else if (h == 0)
            rc = cli_usage_error("inspect", "unknown option '%s'", flag);
    }
    if (rc == CLI_OK && !model_path) rc = cli_usage_error("inspect", "missing MODEL");
    if (rc != CLI_OK) {
        cli_model_opts_free(&mo);
        return rc;
    }

    pillar_model *m = NULL;
    pillar_options *opt = NULL;
    pillar_session *s = NULL;
    pillar_status st;
    rc = cli_load_model(model_path, &m);
    if (rc == CLI_OK) rc = cli_make_options(&mo, m, &opt);
    if (rc == CLI_OK && batch > 0) rc = cli_apply_batch(&mo, m, batch, true, opt);
    if (rc == CLI_OK && schedule_given &&
        (st = pillar_options_set_schedule(opt, schedule)) != PILLAR_OK)
        rc = cli_fail_status(st, CLI_OTHER);
    if (rc == CLI_OK) {
        st = pillar_session_create(m, opt, &s);
        if (st != PILLAR_OK) rc = cli_fail_status(st, CLI_MODEL);
    }
    if (rc == CLI_OK && show_schedule && !json)
        print_schedule(model_path, s);
    else if (rc == CLI_OK)
        rc = report(model_path, m, s, json);
    pillar_session_destroy(s);
    pillar_options_destroy(opt);
    pillar_model_destroy(m);
    cli_model_opts_free(&mo);
    return rc;
}
