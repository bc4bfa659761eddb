/* cli_util.c -- argument parsing, shapes, messages and small conversions shared by
 * the pillar subcommands. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_fail(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("pillar: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

int cli_fail_status(pillar_status s, int io_code) {
    const char *msg = pillar_last_error();
    if (!msg || !*msg) msg = pillar_status_name(s);
    fprintf(stderr, "pillar: %s\n", msg);
    switch (s) {
    case PILLAR_ERR_MODEL:
    case PILLAR_ERR_UNSUPPORTED:
        return CLI_MODEL;
    case PILLAR_ERR_INPUT:
        return CLI_INPUT;
    case PILLAR_ERR_IO:
        return io_code;
    default:
        return CLI_OTHER;
    }
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("pillar: ", stderr);
    if (cmd) fprintf(stderr, "%s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see 'pillar %s%s--help')\n", cmd ? cmd : "", cmd ? " " : "");
    va_end(ap);
    return CLI_USAGE;
}

/* ---------------------------------------------------------------- arguments */

void cli_args_init(cli_args *a, const char *cmd, int argc, char **argv) {
    a->argc = argc;
    a->argv = argv;
    a->i = 0;
    a->cmd = cmd;
    a->pending = NULL;
    a->positional_only = false;
}

bool cli_args_next(cli_args *a, char *flag, size_t flag_n, const char **value) {
    a->pending = NULL;
    if (a->i < a->argc && !a->positional_only && strcmp(a->argv[a->i], "--") == 0) {
        a->positional_only = true;
        a->i++;
    }
    if (a->i >= a->argc) return false;
    char *arg = a->argv[a->i++];
    if (!a->positional_only && arg[0] == '-' && arg[1] != 0) {
        char *eq = strchr(arg, '=');
        size_t n = eq ? (size_t)(eq - arg) : strlen(arg);
        if (n >= flag_n) n = flag_n - 1;
        memcpy(flag, arg, n);
        flag[n] = 0;
        if (eq) a->pending = eq + 1;
        *value = NULL;
        return true;
    }
    flag[0] = 0;
    *value = arg;
    return true;
}

bool cli_args_has_inline_value(const cli_args *a) {
    return a->pending != NULL;
}

bool cli_args_value(cli_args *a, const char *flag, const char **value) {
    if (a->pending) {
        *value = a->pending;
        a->pending = NULL;
        return true;
    }
    if (a->i >= a->argc) {
        cli_usage_error(a->cmd, "%s needs a value", flag);
        return false;
    }
    *value = a->argv[a->i++];
    return true;
}

bool cli_parse_int(const char *text, int64_t lo, int64_t hi, int64_t *out) {
    if (!text || !*text) return false;
    errno = 0;
    char *end;
    long long v = strtoll(text, &end, 10);
    if (errno || *end || end == text || v < lo || v > hi) return false;
    *out = v;
    return true;
}

bool cli_parse_dims(const char *text, size_t *ndim, int64_t *dims, char *err, size_t err_n) {
    size_t n = 0;
    if (!*text || strcmp(text, "scalar") == 0) {
        *ndim = 0;
        return true;
    }
    const char *s = text;
    for (;;) {
        if (*s < '0' || *s > '9') {
            snprintf(err, err_n, "'%s' is not a shape like 1x3x224x224", text);
            return false;
        }
        int64_t v = 0;
        while (*s >= '0' && *s <= '9') {
            int d = *s++ - '0';
            if (v > (INT64_MAX - d) / 10) {
                snprintf(err, err_n, "dimension in '%s' is too large", text);
                return false;
            }
            v = v * 10 + d;
        }
        if (n >= PILLAR_MAX_DIMS) {
            snprintf(err, err_n, "'%s' has more than %d dimensions", text, PILLAR_MAX_DIMS);
            return false;
        }
        dims[n++] = v;
        if (*s == 0) break;
        if (*s != 'x' && *s != 'X' && *s != ',') {
            snprintf(err, err_n, "'%s' is not a shape like 1x3x224x224", text);
            return false;
        }
        s++;
    }
    /* the product must fit in int64 */
    int64_t numel = 1;
    for (size_t i = 0; i < n; i++) {
        if (dims[i] != 0 && numel > INT64_MAX / dims[i]) {
            snprintf(err, err_n, "shape '%s' has more elements than fit in int64", text);
            return false;
        }
        numel *= dims[i];
    }
    *ndim = n;
    return true;
}

/* ---------------------------------------------------------------- NAME=VALUE lists */

bool cli_named_add(cli_named_list *l, const char *cmd, const char *flag, const char *arg) {
    const char *eq = strrchr(arg, '=');
    if (!eq || eq == arg) {
        cli_usage_error(cmd, "%s expects NAME=VALUE, got '%s'", flag, arg);
        return false;
    }
    size_t nlen = (size_t)(eq - arg);
    for (size_t i = 0; i < l->n; i++) {
        if (strlen(l->items[i].name) == nlen && memcmp(l->items[i].name, arg, nlen) == 0) {
            cli_usage_error(cmd, "%s given twice for '%.*s'", flag, (int)nlen, arg);
            return false;
        }
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 4;
        cli_named *p = realloc(l->items, cap * sizeof *p);
        if (!p) {
            cli_fail(CLI_OTHER, "out of memory");
            return false;
        }
        l->items = p;
        l->cap = cap;
    }
    cli_named *it = &l->items[l->n];
    memset(it, 0, sizeof *it);
    it->name = malloc(nlen + 1);
    it->text = strdup(eq + 1);
    if (!it->name || !it->text) {
        free(it->name);
        free(it->text);
        cli_fail(CLI_OTHER, "out of memory");
        return false;
    }
    memcpy(it->name, arg, nlen);
    it->name[nlen] = 0;
    l->n++;
    return true;
}

cli_named *cli_named_find(cli_named_list *l, const char *name) {
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->items[i].name, name) == 0) return &l->items[i];
    return NULL;
}

void cli_named_free(cli_named_list *l) {
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].name);
        free(l->items[i].text);
    }
    free(l->items);
    l->items = NULL;
    l->n = l->cap = 0;
}

/* ---------------------------------------------------------------- model options */

int cli_model_opts_parse(cli_model_opts *o, cli_args *a, const char *flag) {
    const char *v;
    char err[256];
    if (strcmp(flag, "--shape") == 0) {
        if (!cli_args_value(a, flag, &v) || !cli_named_add(&o->shapes, a->cmd, flag, v)) return -1;
        cli_named *it = &o->shapes.items[o->shapes.n - 1];
        if (!cli_parse_dims(it->text, &it->ndim, it->dims, err, sizeof err)) {
            cli_usage_error(a->cmd, "--shape %s: %s", it->name, err);
            return -1;
        }
        return 1;
    }
    if (strcmp(flag, "--dim") == 0) {
        if (!cli_args_value(a, flag, &v) || !cli_named_add(&o->dims, a->cmd, flag, v)) return -1;
        cli_named *it = &o->dims.items[o->dims.n - 1];
        if (!cli_parse_int(it->text, 0, INT64_MAX, &it->value)) {
            cli_usage_error(a->cmd, "--dim %s: '%s' is not a non-negative integer", it->name,
                            it->text);
            return -1;
        }
        return 1;
    }
    if (strcmp(flag, "--threads") == 0) {
        int64_t t;
        if (!cli_args_value(a, flag, &v)) return -1;
        if (!cli_parse_int(v, 0, 4096, &t)) {
            cli_usage_error(a->cmd, "--threads: '%s' is not a number from 0 to 4096", v);
            return -1;
        }
        o->threads = (int)t;
        return 1;
    }
    return 0;
}

int cli_load_model(const char *path, pillar_model **m) {
    pillar_status s = pillar_model_load(path, m);
    if (s != PILLAR_OK) return cli_fail_status(s, CLI_MODEL);
    return CLI_OK;
}

long cli_model_input_index(const pillar_model *m, const char *name) {
    size_t n = pillar_model_input_count(m);
    for (size_t i = 0; i < n; i++) {
        const char *nm = NULL;
        if (pillar_model_input(m, i, &nm, NULL, NULL, NULL) == PILLAR_OK && nm &&
            strcmp(nm, name) == 0)
            return (long)i;
    }
    return -1;
}

/* Checks a --shape against the model's declared rank and static dimensions, so that
 * the message names the flag the user typed. */
static int check_shape_opt(const pillar_model *m, const cli_named *it) {
    long idx = cli_model_input_index(m, it->name);
    if (idx < 0) {
        char list[512] = "";
        size_t n = pillar_model_input_count(m), k = 0;
        for (size_t i = 0; i < n && k < sizeof list; i++) {
            const char *nm = NULL;
            pillar_model_input(m, i, &nm, NULL, NULL, NULL);
            k +=
                (size_t)snprintf(list + k, sizeof list - k, "%s'%s'", i ? ", " : "", nm ? nm : "?");
        }
        return cli_fail(CLI_INPUT, "--shape %s=%s: the model has no input named '%s' (inputs: %s)",
                        it->name, it->text, it->name, n ? list : "none");
    }
    size_t ndim = 0;
    const int64_t *dims = NULL;
    if (pillar_model_input(m, (size_t)idx, NULL, NULL, &ndim, &dims) != PILLAR_OK)
        return cli_fail_status(PILLAR_ERR_INTERNAL, CLI_OTHER);
    /* The API reports an input of unknown rank as rank 0, so rank 0 is not checked. */
    if (ndim == 0) return CLI_OK;
    if (ndim != it->ndim)
        return cli_fail(CLI_INPUT, "--shape %s=%s: %zu dimensions given, input '%s' has %zu",
                        it->name, it->text, it->ndim, it->name, ndim);
    for (size_t d = 0; d < ndim; d++) {
        if (dims && dims[d] >= 0 && dims[d] != it->dims[d])
            return cli_fail(
                CLI_INPUT, "--shape %s=%s: dimension %zu is %lld, input '%s' has %lld there",
                it->name, it->text, d, (long long)it->dims[d], it->name, (long long)dims[d]);
    }
    return CLI_OK;
}

static bool model_has_symbol(const pillar_model *m, const char *sym) {
    size_t n = pillar_model_input_count(m);
    for (size_t i = 0; i < n; i++) {
        size_t nd = 0;
        if (pillar_model_input(m, i, NULL, NULL, &nd, NULL) != PILLAR_OK) continue;
        for (size_t d = 0; d < nd; d++) {
            const char *s = pillar_model_input_dim_name(m, i, d);
            if (s && strcmp(s, sym) == 0) return true;
        }
    }
    return false;
}

int cli_make_options(const cli_model_opts *o, const pillar_model *m, pillar_options **out) {
    pillar_options *opt = NULL;
    pillar_status s = pillar_options_create(&opt);
    if (s != PILLAR_OK) return cli_fail_status(s, CLI_OTHER);
    int rc = CLI_OK;
    if (o->threads >= 0 && (s = pillar_options_set_threads(opt, o->threads)) != PILLAR_OK) {
        rc = cli_fail_status(s, CLI_OTHER);
        goto done;
    }
    for (size_t i = 0; i < o->dims.n && rc == CLI_OK; i++) {
        const cli_named *it = &o->dims.items[i];
        if (!model_has_symbol(m, it->name)) {
            rc = cli_fail(CLI_INPUT, "--dim %s=%s: no model input has a dimension named '%s'",
                          it->name, it->text, it->name);
            break;
        }
        if ((s = pillar_options_set_dim(opt, it->name, it->value)) != PILLAR_OK)
            rc = cli_fail_status(s, CLI_INPUT);
    }
    for (size_t i = 0; i < o->shapes.n && rc == CLI_OK; i++) {
        const cli_named *it = &o->shapes.items[i];
        rc = check_shape_opt(m, it);
        if (rc == CLI_OK &&
            (s = pillar_options_set_shape(opt, it->name, it->ndim, it->dims)) != PILLAR_OK)
            rc = cli_fail_status(s, CLI_INPUT);
    }
done:
    if (rc != CLI_OK) {
        pillar_options_destroy(opt);
        return rc;
    }
    *out = opt;
    return CLI_OK;
}

void cli_model_opts_free(cli_model_opts *o) {
    cli_named_free(&o->shapes);
    cli_named_free(&o->dims);
}

/* ---------------------------------------------------------------- formatting */

const char *cli_dims_str(char *buf, size_t n, long ndim, const int64_t *dims,
                         const char *const *names) {
    if (ndim < 0) {
        snprintf(buf, n, "?");
        return buf;
    }
    if (ndim == 0) {
        snprintf(buf, n, "scalar");
        return buf;
    }
    size_t k = 0;
    buf[0] = 0;
    for (long i = 0; i < ndim && k < n; i++) {
        const char *sep = i ? "x" : "";
        if (dims[i] >= 0)
            k += (size_t)snprintf(buf + k, n - k, "%s%lld", sep, (long long)dims[i]);
        else if (names && names[i])
            k += (size_t)snprintf(buf + k, n - k, "%s%s", sep, names[i]);
        else
            k += (size_t)snprintf(buf + k, n - k, "%s?", sep);
    }
    return buf;
}

void cli_json_str(const char *s) {
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        switch (*p) {
        case '"':
            fputs("\\\"", stdout);
            break;
        case '\\':
            fputs("\\\\", stdout);
            break;
        case '\n':
            fputs("\\n", stdout);
            break;
        case '\r':
            fputs("\\r", stdout);
            break;
        case '\t':
            fputs("\\t", stdout);
            break;
        default:
            if (*p < 0x20)
                printf("\\u%04x", *p);
            else
                putchar(*p);
        }
    }
    putchar('"');
}

float cli_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) & 1, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    float v;
    if (exp == 0) {
        v = (float)man * (1.0f / 16777216.0f); /* man * 2^-24 */
    } else if (exp == 31) {
        uint32_t bits = 0x7f800000u | man << 13;
        memcpy(&v, &bits, 4);
    } else {
        uint32_t bits = (exp + 112) << 23 | man << 13;
        memcpy(&v, &bits, 4);
    }
    return sign ? -v : v;
}

uint16_t cli_f32_to_f16_exact(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    if ((x & 0x7fffffff) == 0) return (uint16_t)sign;
    int32_t e = (int32_t)((x >> 23) & 0xff) - 127 + 15;
    return (uint16_t)(sign | (uint32_t)e << 10 | (x & 0x7fffff) >> 13);
}

double cli_elem_f64(pillar_dtype t, const void *d, int64_t i) {
    switch (t) {
    case PILLAR_FLOAT32:
        return ((const float *)d)[i];
    case PILLAR_FLOAT64:
        return ((const double *)d)[i];
    case PILLAR_FLOAT16:
        return cli_f16_to_f32(((const uint16_t *)d)[i]);
    case PILLAR_BFLOAT16: {
        uint32_t bits = (uint32_t)((const uint16_t *)d)[i] << 16;
        float f;
        memcpy(&f, &bits, 4);
        return f;
    }
    case PILLAR_UINT8:
        return ((const uint8_t *)d)[i];
    case PILLAR_INT8:
        return ((const int8_t *)d)[i];
    case PILLAR_UINT16:
        return ((const uint16_t *)d)[i];
    case PILLAR_INT16:
        return ((const int16_t *)d)[i];
    case PILLAR_INT32:
        return ((const int32_t *)d)[i];
    case PILLAR_INT64:
        return (double)((const int64_t *)d)[i];
    case PILLAR_UINT32:
        return ((const uint32_t *)d)[i];
    case PILLAR_UINT64:
        return (double)((const uint64_t *)d)[i];
    case PILLAR_BOOL:
        return ((const uint8_t *)d)[i] != 0;
    default:
        return 0;
    }
}

/* Applies --batch: every input whose leading dimension is open gets it (through its
 * symbol when it has one, else as a full shape), unless --shape or --dim already says;
 * a fixed leading dimension must agree with an explicit --batch. */
int cli_apply_batch(const cli_model_opts *mo, const pillar_model *m, int64_t batch, bool given,
                    pillar_options *opt) {
    size_t n = pillar_model_input_count(m);
    for (size_t i = 0; i < n; i++) {
        const char *name = NULL;
        size_t nd = 0;
        const int64_t *dims = NULL;
        pillar_status st = pillar_model_input(m, i, &name, NULL, &nd, &dims);
        if (st != PILLAR_OK) return cli_fail_status(st, CLI_OTHER);
        if (nd == 0 || !name) continue;
        cli_named *sh = cli_named_find((cli_named_list *)&mo->shapes, name);
        if (sh) {
            if (given && sh->ndim > 0 && sh->dims[0] != batch)
                return cli_fail(CLI_INPUT, "--batch %lld disagrees with --shape %s=%s",
                                (long long)batch, name, sh->text);
            continue;
        }
        if (dims[0] >= 0) {
            if (given && dims[0] != batch)
                return cli_fail(CLI_INPUT,
                                "--batch %lld: input '%s' has a fixed leading dimension of %lld",
                                (long long)batch, name, (long long)dims[0]);
            continue;
        }
        const char *sym = pillar_model_input_dim_name(m, i, 0);
        if (sym) {
            cli_named *d = cli_named_find((cli_named_list *)&mo->dims, sym);
            if (d) {
                if (given && d->value != batch)
                    return cli_fail(CLI_INPUT, "--batch %lld disagrees with --dim %s=%s",
                                    (long long)batch, sym, d->text);
                continue;
            }
            st = pillar_options_set_dim(opt, sym, batch);
        } else {
            int64_t full[PILLAR_MAX_DIMS];
            bool known = nd <= PILLAR_MAX_DIMS;
            full[0] = batch;
            for (size_t d = 1; known && d < nd; d++) known = (full[d] = dims[d]) >= 0;
            if (!known) continue; /* reported with the other open dims later */
            st = pillar_options_set_shape(opt, name, nd, full);
        }
        if (st != PILLAR_OK) return cli_fail_status(st, CLI_INPUT);
    }
    return CLI_OK;
}
