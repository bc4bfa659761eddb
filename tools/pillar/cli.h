/* cli.h -- shared pieces of the pillar command-line program: exit codes, option
 * parsing, shapes, messages. The CLI uses only the public header include/pillar.h. */
#ifndef PILLAR_CLI_H
#define PILLAR_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pillar.h"

/* Exit codes (documented in `pillar help`). */
enum {
    CLI_OK = 0,
    CLI_USAGE = 1, /* unknown command or flag, missing argument, malformed value */
    CLI_MODEL = 2, /* the model cannot be read, is inconsistent, or uses unsupported things */
    CLI_INPUT = 3, /* an input file or shape is wrong */
    CLI_OTHER = 4, /* anything else: out of memory, writing outputs, internal error */
};

#if defined(__GNUC__)
#define CLI_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CLI_PRINTF(a, b)
#endif

/* Prints "pillar: <message>" to stderr and returns `code`. */
int cli_fail(int code, const char *fmt, ...) CLI_PRINTF(2, 3);
/* Prints "pillar: <pillar_last_error()>" and returns the exit code for status `s`:
 * MODEL/UNSUPPORTED -> CLI_MODEL, INPUT -> CLI_INPUT, IO -> io_code, else CLI_OTHER. */
int cli_fail_status(pillar_status s, int io_code);
/* A usage error about `cmd` ("run"), with a hint to --help; returns CLI_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) CLI_PRINTF(2, 3);

/* ---------------------------------------------------------------- arguments */

/* Walks argv one option at a time. Accepts "--flag value" and "--flag=value"; "--"
 * ends the options. */
typedef struct cli_args {
    int argc;
    char **argv;
    int i;
    const char *cmd;
    char *pending;        /* value from "--flag=value" */
    bool positional_only; /* after "--" */
} cli_args;

void cli_args_init(cli_args *a, const char *cmd, int argc, char **argv);
/* Next argument: sets *flag (the "--name" without its value, or NULL for a positional
 * argument, whose text goes to *value). Returns false at the end. */
bool cli_args_next(cli_args *a, char *flag, size_t flag_n, const char **value);
/* The value of the current flag; prints a usage error and returns false if missing. */
bool cli_args_value(cli_args *a, const char *flag, const char **value);
/* True if the current flag was given as "--flag=value" (for flags without values). */
bool cli_args_has_inline_value(const cli_args *a);

/* "1x3x224x224" or "1,3,224,224" (or "" / "scalar" for rank 0). Returns false with a
 * message in err on malformed text, negative dims, or more than PILLAR_MAX_DIMS. */
bool cli_parse_dims(const char *text, size_t *ndim, int64_t *dims, char *err, size_t err_n);
/* Decimal integer in [lo, hi]. */
bool cli_parse_int(const char *text, int64_t lo, int64_t hi, int64_t *out);

/* A NAME=VALUE option (--shape, --dim, --input). */
typedef struct cli_named {
    char *name;
    char *text;  /* the part after '=' */
    size_t ndim; /* --shape: parsed dims */
    int64_t dims[PILLAR_MAX_DIMS];
    int64_t value; /* --dim: parsed value */
    bool used;
} cli_named;

typedef struct cli_named_list {
    cli_named *items;
    size_t n, cap;
} cli_named_list;

/* Splits "NAME=TEXT" at the last '=' and appends it; false (with a usage message
 * printed) if malformed or NAME is given twice. */
bool cli_named_add(cli_named_list *l, const char *cmd, const char *flag, const char *arg);
cli_named *cli_named_find(cli_named_list *l, const char *name);
void cli_named_free(cli_named_list *l);

/* The --shape / --dim / --threads options shared by inspect and run, applied to a new
 * options object. Checks --shape names and ranks against the model (input errors). */
typedef struct cli_model_opts {
    cli_named_list shapes;
    cli_named_list dims;
    int threads; /* -1: not given */
} cli_model_opts;

/* Handles flag (with its value) if it is one of --shape/--dim; returns 1 if handled,
 * 0 if not ours, -1 on a usage error (already printed). */
int cli_model_opts_parse(cli_model_opts *o, cli_args *a, const char *flag);
/* Loads `path` and prints the error on failure (returns the exit code, 0 on success). */
int cli_load_model(const char *path, pillar_model **m);
/* Builds pillar_options from o; returns an exit code (0 on success). */
int cli_make_options(const cli_model_opts *o, const pillar_model *m, pillar_options **out);
void cli_model_opts_free(cli_model_opts *o);
/* --batch: every input whose leading dimension is open gets `batch` (through its symbol
 * when it has one, else as a full shape) unless o's --shape or --dim already says; with
 * `given` (an explicit --batch) a fixed leading dimension, --shape or --dim that
 * disagrees is an error. Returns an exit code (0 on success). */
int cli_apply_batch(const cli_model_opts *o, const pillar_model *m, int64_t batch, bool given,
                    pillar_options *opt);

/* Index of model input `name`, or -1. */
long cli_model_input_index(const pillar_model *m, const char *name);

/* ---------------------------------------------------------------- formatting */

/* "1x3x224x224" / "scalar" / "?" (ndim < 0); -1 dims print as "?" unless names[d]. */
const char *cli_dims_str(char *buf, size_t n, long ndim, const int64_t *dims,
                         const char *const *names);
/* Writes s as a JSON string literal (with quotes) to stdout. */
void cli_json_str(const char *s);
/* Element i of a tensor's data as double (any numeric dtype). */
double cli_elem_f64(pillar_dtype t, const void *data, int64_t i);
/* Float conversions for the 16-bit types, for random inputs and printing. */
float cli_f16_to_f32(uint16_t h);
uint16_t cli_f32_to_f16_exact(float f); /* f must be exactly representable */

/* ---------------------------------------------------------------- commands */

int cmd_inspect(int argc, char **argv);
int cmd_run(int argc, char **argv);
void help_inspect(void);
void help_run(void);
int cmd_train_xc(int argc, char **argv); void help_train_xc(void); /* train_xc.c */

#endif
