/* prune.c -- `pillar prune MODEL --sparsity S --out OUT.onnx`: one-shot magnitude
 * pruning of a model's Conv, Gemm and MatMul weights (pillar_model_prune), for speed
 * testing and as the start of fine-tuning; prints each layer's sparsity before and
 * after. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cmd_prune(int argc, char **argv);
void help_prune(void);

void help_prune(void) {
    printf(
        "usage: pillar prune MODEL --sparsity S --out OUT.onnx [--block 1|4|16]\n"
        "                    [--scope layer|global] [--skip NODE,...] [--keep-first-last | --all]\n"
        "\n"
        "Zeroes the smallest-magnitude weights of the model's Conv, Gemm and MatMul nodes\n"
        "(constant float32 weights only) and writes the pruned model as ONNX. Prints each\n"
        "layer's sparsity before and after. pillar runs layers that are sparse enough with\n"
        "sparse kernels; fine-tune with 'pillar train' to recover accuracy.\n"
        "\n"
        "options:\n"
        "  --sparsity S       fraction of weights to zero: 0.9 or 90%% (required)\n"
        "  --out FILE         the ONNX file to write (required)\n"
        "  --block B          zero B consecutive input channels together (1, 4 or 16;\n"
        "                     default 1, unstructured): a Conv's channels at each output\n"
        "                     channel and tap, a MatMul weight's K rows at each column\n"
        "  --scope layer      prune each layer to S (default)\n"
        "  --scope global     rank all layers' weights together: S of them overall\n"
        "  --skip NODE,...    keep these nodes dense (comma-separated; may repeat)\n"
        "  --keep-first-last  keep the first and last such layers dense (default)\n"
        "  --all              prune the first and last layers too\n"
        "  -h, --help         show this help\n");
}

/* "0.9", "90%": a fraction in [0, 1]. */
static bool parse_sparsity(const char *v, double *out) {
    char *end;
    errno = 0;
    double s = strtod(v, &end);
    if (end == v || errno) return false;
    if (*end == '%') {
        s /= 100.0;
        end++;
    }
    if (*end || !(s >= 0.0 && s <= 1.0)) return false;
    *out = s;
    return true;
}

/* Adds the comma-separated names of --skip; returns an exit code (0 on success). */
static int add_skips(pillar_prune_options *o, const char *list) {
    char *copy = strdup(list);
    if (!copy) return cli_fail(CLI_OTHER, "out of memory");
    int rc = CLI_OK, count = 0;
    for (char *save = NULL, *t = strtok_r(copy, ",", &save); t && rc == CLI_OK;
         t = strtok_r(NULL, ",", &save), count++)
        if (pillar_prune_options_skip(o, t) != PILLAR_OK)
            rc = cli_fail_status(PILLAR_ERR_NOMEM, CLI_OTHER);
    if (rc == CLI_OK && count == 0)
        rc = cli_usage_error("prune", "--skip: no node names in '%s'", list);
    free(copy);
    return rc;
}

static void print_table(const pillar_prune_report *r) {
    size_t n = pillar_prune_report_count(r);
    int w = 5;
    for (size_t i = 0; i < n; i++) {
        const char *name;
        pillar_prune_report_layer(r, i, &name, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
        int len = (int)strlen(name);
        if (len > w) w = len > 60 ? 60 : len;
    }
    printf("%-*s  %-6s  %-14s  %10s  %7s  %7s\n", w, "layer", "op", "weight", "params", "before",
           "after");
    int64_t total = 0;
    double zb = 0, za = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name, *op, *note;
        size_t nd;
        const int64_t *dims;
        int64_t params;
        double before, after;
        pillar_prune_report_layer(r, i, &name, &op, &nd, &dims, &params, &before, &after, &note);
        char shape[64];
        printf("%-*s  %-6s  %-14s  %10lld  %6.2f%%  %6.2f%%%s%s\n", w, name, op,
               cli_dims_str(shape, sizeof shape, (long)nd, dims, NULL), (long long)params,
               100 * before, 100 * after, note[0] ? "  kept: " : "", note);
        total += params;
        zb += before * (double)params;
        za += after * (double)params;
    }
    double t = total > 0 ? (double)total : 1.0;
    printf("%-*s  %-6s  %-14s  %10lld  %6.2f%%  %6.2f%%\n", w, "total", "", "", (long long)total,
           100 * zb / t, 100 * za / t);
}

int cmd_prune(int argc, char **argv) {
    cli_args a;
    cli_args_init(&a, "prune", argc, argv);
    char flag[64];
    const char *v, *path = NULL, *out = NULL;
    pillar_prune_options *o = NULL;
    if (pillar_prune_options_create(&o) != PILLAR_OK)
        return cli_fail_status(PILLAR_ERR_NOMEM, CLI_OTHER);
    bool have_s = false, keep_flag = false, all_flag = false;
    int rc = CLI_OK;
    while (rc == CLI_OK && cli_args_next(&a, flag, sizeof flag, &v)) {
        if (!flag[0]) {
            if (path)
                rc = cli_usage_error("prune", "more than one model given ('%s' and '%s')", path, v);
            path = v;
        } else if (!strcmp(flag, "-h") || !strcmp(flag, "--help")) {
            help_prune();
            pillar_prune_options_destroy(o);
            return CLI_OK;
        } else if (!strcmp(flag, "--keep-first-last") || !strcmp(flag, "--all")) {
            if (cli_args_has_inline_value(&a))
                rc = cli_usage_error("prune", "%s takes no value", flag);
            if (flag[2] == 'a')
                all_flag = true;
            else
                keep_flag = true;
        } else if (!strcmp(flag, "--sparsity") || !strcmp(flag, "--out") ||
                   !strcmp(flag, "--block") || !strcmp(flag, "--scope") ||
                   !strcmp(flag, "--skip")) {
            if (!cli_args_value(&a, flag, &v)) {
                rc = CLI_USAGE;
            } else if (!strcmp(flag, "--sparsity")) {
                double s;
                if (!parse_sparsity(v, &s))
                    rc = cli_usage_error(
                        "prune",
                        "--sparsity: '%s' is not a fraction from 0 to 1 (e.g. 0.9 or 90%%)", v);
                else
                    pillar_prune_options_set_sparsity(o, s);
                have_s = true;
            } else if (!strcmp(flag, "--out")) {
                out = v;
            } else if (!strcmp(flag, "--block")) {
                int64_t b;
                if (!cli_parse_int(v, 1, 16, &b) || (b != 1 && b != 4 && b != 16))
                    rc = cli_usage_error("prune", "--block: '%s' is not 1, 4 or 16", v);
                else
                    pillar_prune_options_set_block(o, (int)b);
            } else if (!strcmp(flag, "--scope")) {
                if (strcmp(v, "layer") && strcmp(v, "global"))
                    rc = cli_usage_error("prune", "--scope: '%s' is not 'layer' or 'global'", v);
                else
                    pillar_prune_options_set_global(o, !strcmp(v, "global"));
            } else {
                rc = add_skips(o, v);
            }
        } else {
            rc = cli_usage_error("prune", "unknown option '%s'", flag);
        }
    }
    if (rc == CLI_OK && !path) rc = cli_usage_error("prune", "no model given");
    if (rc == CLI_OK && !have_s)
        rc = cli_usage_error("prune", "no sparsity given (--sparsity S, e.g. 0.9)");
    if (rc == CLI_OK && !out)
        rc = cli_usage_error("prune", "no output file given (--out OUT.onnx)");
    if (rc == CLI_OK && keep_flag && all_flag)
        rc = cli_usage_error("prune", "--keep-first-last and --all contradict each other");
    if (rc != CLI_OK) {
        pillar_prune_options_destroy(o);
        return rc;
    }
    pillar_prune_options_set_keep_first_last(o, !all_flag);
    pillar_model *m = NULL;
    rc = cli_load_model(path, &m);
    pillar_prune_report *r = NULL;
    if (rc == CLI_OK) {
        pillar_status st = pillar_model_prune(m, o, &r);
        if (st == PILLAR_ERR_ARGUMENT) {
            cli_fail_status(st, CLI_OTHER);
            rc = CLI_USAGE;
        } else if (st != PILLAR_OK) {
            rc = cli_fail_status(st, CLI_OTHER);
        }
    }
    if (rc == CLI_OK) {
        pillar_status st = pillar_model_save(m, out);
        if (st != PILLAR_OK) rc = cli_fail_status(st, CLI_OTHER);
    }
    if (rc == CLI_OK) {
        print_table(r);
        printf("wrote %s\n", out);
    }
    pillar_prune_report_destroy(r);
    pillar_model_destroy(m);
    pillar_prune_options_destroy(o);
    return rc;
}
