/* serve.c -- `pillar serve`: command-line options of the HTTP inference server. The
 * server itself is in tools/serve/ and is linked in only when libmicrohttpd and libcjson
 * were found at build time; otherwise serve_run is a weak, absent symbol and this
 * command says how to get it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../serve/serve.h"
#include "cli.h"

int serve_run(const serve_config *cfg) __attribute__((weak));

void help_serve(void) {
    printf(
        "usage: pillar serve [MODEL] [--name NAME] [--model NAME=PATH]... [--host ADDR]\n"
        "                    [--port N] [--threads N] [--max-batch B] [--batch-timeout-ms T]\n"
        "                    [--max-body-mb M] [--timeout S] [--http-threads N] [--max-queue N]\n"
        "\n"
        "Serves ONNX models over HTTP with the KServe v2 inference protocol:\n"
        "  GET  /v2/health/live, /v2/health/ready     liveness, readiness\n"
        "  GET  /v2                                    server metadata\n"
        "  GET  /v2/models/NAME                        model metadata (shapes: -1 = dynamic)\n"
        "  GET  /v2/models/NAME/ready                  model readiness\n"
        "  POST /v2/models/NAME/infer                  inference: JSON tensors, or JSON +\n"
        "                                              binary tensors (binary-data extension,\n"
        "                                              header Inference-Header-Content-Length)\n"
        "  GET  /metrics                               Prometheus metrics\n"
        "Requests for one model are batched dynamically: when the model's inputs share a\n"
        "dynamic first dimension, queued requests with the same other dimensions run as one\n"
        "batch of up to --max-batch rows. A batch waits up to --batch-timeout-ms, and only\n"
        "while more requests are arriving. Errors are answered with a 4xx/5xx status and a\n"
        "JSON body {\"error\": \"...\"}. SIGTERM or SIGINT: stop accepting connections, answer\n"
        "the requests in flight, exit 0.\n"
        "\n"
        "options:\n"
        "  MODEL                 an ONNX file to serve (named after the file, or --name)\n"
        "  --name NAME           the name of MODEL in URLs\n"
        "  --model NAME=PATH     serve PATH as NAME (repeat for several models)\n"
        "  --host ADDR           address to listen on (default 127.0.0.1; 0.0.0.0 or :: for all)\n"
        "  --port N              TCP port (default 8080; 0 = any free port, printed at start)\n"
        "  --threads N           worker threads of each model's session (0 = one per core)\n"
        "  --max-batch B         largest dynamic batch, in rows (default 8; 1 = no batching)\n"
        "  --batch-timeout-ms T  longest wait for a batch to fill (default 2)\n"
        "  --max-body-mb M       largest request body (default 64); larger: 413\n"
        "  --timeout S           close connections idle for S seconds (default 30)\n"
        "  --http-threads N      threads reading requests and writing answers (default 2)\n"
        "  --max-queue N         queued requests per model before answering 503 (default 1024)\n"
        "  --quiet               print only the listening address\n"
        "  -h, --help            show this help\n");
}

static bool valid_name(const char *s) {
    if (!*s || strlen(s) > 128) return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-' || *p == '.'))
            return false;
    return true;
}

/* The model name from a path: its file name without ".onnx". */
static char *name_from_path(const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    if (n > 5 && !strcmp(base + n - 5, ".onnx")) n -= 5;
    char *s = malloc(n + 1);
    if (!s) return NULL;
    memcpy(s, base, n);
    s[n] = 0;
    return s;
}

static bool int_flag(cli_args *a, const char *flag, int64_t lo, int64_t hi, int64_t *out) {
    const char *v;
    if (!cli_args_value(a, flag, &v)) return false;
    if (!cli_parse_int(v, lo, hi, out)) {
        cli_usage_error("serve", "%s: '%s' is not an integer in [%lld, %lld]", flag, v,
                        (long long)lo, (long long)hi);
        return false;
    }
    return true;
}

int cmd_serve(int argc, char **argv) {
    serve_config cfg = {
        .host = "127.0.0.1",
        .port = 8080,
        .threads = 0,
        .max_batch = 8,
        .batch_timeout_ms = 2,
        .max_body = (size_t)64 << 20,
        .timeout_s = 30,
        .http_threads = 2,
        .max_queue = 1024,
    };
    serve_model_spec specs[64];
    char *owned[64];
    size_t nspecs = 0, nowned = 0;
    const char *positional = NULL, *pos_name = NULL;
    int rc = CLI_USAGE;
    cli_args a;
    cli_args_init(&a, "serve", argc, argv);
    char flag[64];
    const char *v;
    int64_t n;
    while (cli_args_next(&a, flag, sizeof flag, &v)) {
        if (!flag[0]) {
            if (positional) {
                cli_usage_error(
                    "serve", "unexpected argument '%s' (serve more models with --model NAME=PATH)",
                    v);
                goto done;
            }
            positional = v;
        } else if (!strcmp(flag, "-h") || !strcmp(flag, "--help")) {
            help_serve();
            rc = CLI_OK;
            goto done;
        } else if (!strcmp(flag, "--name")) {
            if (!cli_args_value(&a, flag, &pos_name)) goto done;
        } else if (!strcmp(flag, "--model")) {
            if (!cli_args_value(&a, flag, &v)) goto done;
            const char *eq = strchr(v, '=');
            if (!eq || eq == v || !eq[1]) {
                cli_usage_error("serve", "--model takes NAME=PATH, not '%s'", v);
                goto done;
            }
            if (nspecs >= 63 || nowned >= 63) {
                cli_usage_error("serve", "at most 63 models");
                goto done;
            }
            char *name = strndup(v, (size_t)(eq - v));
            if (!name) {
                rc = cli_fail(CLI_OTHER, "out of memory");
                goto done;
            }
            owned[nowned++] = name;
            specs[nspecs].name = name;
            specs[nspecs++].path = eq + 1;
        } else if (!strcmp(flag, "--host")) {
            if (!cli_args_value(&a, flag, &cfg.host)) goto done;
            if (!*cfg.host) {
                cli_usage_error("serve", "--host: empty address");
                goto done;
            }
        } else if (!strcmp(flag, "--port")) {
            if (!int_flag(&a, flag, 0, 65535, &n)) goto done;
            cfg.port = (int)n;
        } else if (!strcmp(flag, "--threads")) {
            if (!int_flag(&a, flag, 0, 1024, &n)) goto done;
            cfg.threads = (int)n;
        } else if (!strcmp(flag, "--max-batch")) {
            if (!int_flag(&a, flag, 1, 4096, &n)) goto done;
            cfg.max_batch = (int)n;
        } else if (!strcmp(flag, "--batch-timeout-ms")) {
            if (!int_flag(&a, flag, 0, 60000, &n)) goto done;
            cfg.batch_timeout_ms = (int)n;
        } else if (!strcmp(flag, "--max-body-mb")) {
            if (!int_flag(&a, flag, 1, 65536, &n)) goto done;
            cfg.max_body = (size_t)n << 20;
        } else if (!strcmp(flag, "--timeout")) {
            if (!int_flag(&a, flag, 1, 86400, &n)) goto done;
            cfg.timeout_s = (int)n;
        } else if (!strcmp(flag, "--http-threads")) {
            if (!int_flag(&a, flag, 1, 256, &n)) goto done;
            cfg.http_threads = (int)n;
        } else if (!strcmp(flag, "--max-queue")) {
            if (!int_flag(&a, flag, 1, 1000000, &n)) goto done;
            cfg.max_queue = (int)n;
        } else if (!strcmp(flag, "--quiet")) {
            cfg.quiet = 1;
        } else {
            cli_usage_error("serve", "unknown option '%s'", flag);
            goto done;
        }
    }
    if (pos_name && !positional) {
        cli_usage_error("serve", "--name names the MODEL argument, which is missing");
        goto done;
    }
    if (positional) {
        char *name = pos_name ? strdup(pos_name) : name_from_path(positional);
        if (!name) {
            rc = cli_fail(CLI_OTHER, "out of memory");
            goto done;
        }
        owned[nowned++] = name;
        specs[nspecs].name = name;
        specs[nspecs++].path = positional;
    }
    if (nspecs == 0) {
        cli_usage_error("serve", "no model given (MODEL or --model NAME=PATH)");
        goto done;
    }
    for (size_t i = 0; i < nspecs; i++) {
        if (!valid_name(specs[i].name)) {
            cli_usage_error("serve", "model name '%s' must be 1-128 of A-Z a-z 0-9 _ - .",
                            specs[i].name);
            goto done;
        }
        for (size_t j = 0; j < i; j++)
            if (!strcmp(specs[i].name, specs[j].name)) {
                cli_usage_error("serve", "model name '%s' is given twice", specs[i].name);
                goto done;
            }
    }
    if (!serve_run) {
        rc = cli_fail(CLI_OTHER,
                      "this pillar was built without the HTTP server: install libmicrohttpd-dev "
                      "and libcjson-dev (scripts/install-deps.sh) and rebuild");
        goto done;
    }
    cfg.models = specs;
    cfg.nmodels = nspecs;
    rc = serve_run(&cfg);
done:
    for (size_t i = 0; i < nowned; i++) free(owned[i]);
    return rc;
}
