/* train.c -- `pillar train MODEL.onnx --data DATA ... --out TRAINED.onnx`: trains the float
 * initializers of an ONNX model on a data set through the public training API
 * (pillar_trainer_*), with a seeded shuffle per epoch, a held-out evaluation per epoch,
 * learning-rate schedules, gradual magnitude pruning, a CSV log, an SVG plot,
 * checkpoints with --resume, and a clean stop on Ctrl-C.
 *
 * Resuming: the library's checkpoint holds the weights, optimizer moments, masks and
 * step count; next to it, "<checkpoint>.meta" (a small text file written here) holds
 * where the run was (epoch, step within it, partial sums) and the finished epochs'
 * rows, so a resumed run continues mid-epoch with the same shuffle and its log and plot
 * cover the whole run. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "data.h"
#include "plot.h"
#include "progress.h"

int cmd_train(int argc, char **argv);
void help_train(void);

#define CLI_INTERRUPTED 130

void help_train(void) {
    printf(
        "usage: pillar train MODEL.onnx --data DATA --out TRAINED.onnx [options]\n"
        "\n"
        "Trains the float weights of MODEL (an ONNX file, e.g. from 'pillar zoo' or an\n"
        "untrained PyTorch export) and writes the trained model as ONNX, BatchNorm in\n"
        "inference form. Each epoch shuffles the training set (seeded), trains on every\n"
        "full batch, then evaluates on the test set. Progress shows as a live bar on a\n"
        "terminal and as plain lines otherwise. Ctrl-C stops after the current step,\n"
        "writes a checkpoint and the model, and exits with code 130.\n"
        "\n"
        "data:\n"
        "  --data DATA          fashion-mnist (Debian's dataset-fashion-mnist), mnist, a\n"
        "                       directory of MNIST-layout IDX files (train-images-idx3-ubyte,\n"
        "                       train-labels-idx1-ubyte, t10k-*; gzipped or not), or a pair\n"
        "                       EXAMPLES,LABELS of .npy or IDX files (e.g. X.npy,y.npy)\n"
        "  --test DATA          test set (a directory or a pair); default: the t10k files of\n"
        "                       a directory, else --holdout of the data held out at random\n"
        "  --holdout F          fraction held out for testing when there is no test set\n"
        "                       (default 0.1; 0 = no evaluation)\n"
        "  --limit N            train on the first N examples only\n"
        "  --test-limit N       evaluate on the first N test examples only\n"
        "  uint8 examples are scaled to [0,1], other types are used as they are, and fill\n"
        "  the model's input shape (e.g. 28x28 images feed [batch,1,28,28] or [batch,784]).\n"
        "  Labels are class indices from 0 (or float targets for --loss mse).\n"
        "\n"
        "training:\n"
        "  --epochs N           epochs (default 5)\n"
        "  --batch B            examples per step (default 64); the last partial batch of an\n"
        "                       epoch is skipped\n"
        "  --optimizer O        sgd, adam or adamw (default adam)\n"
        "  --lr LR              learning rate (default 0.01 for sgd, 0.001 for adam/adamw)\n"
        "  --momentum M         sgd momentum (default 0)\n"
        "  --weight-decay W     L2 penalty for sgd/adam, decoupled decay for adamw\n"
        "                       (default 0; 0.01 for adamw)\n"
        "  --lr-schedule S      constant (default), cosine (to 0 at the end, per step), or\n"
        "                       step (times --lr-gamma every --lr-step epochs)\n"
        "  --lr-step E          epochs between steps of the step schedule (default epochs/3)\n"
        "  --lr-gamma G         factor of the step schedule (default 0.1)\n"
        "  --loss L             ce (softmax cross-entropy on logits, default), nll (on\n"
        "                       log-probabilities) or mse (one-hot targets from class labels,\n"
        "                       or float targets)\n"
        "  --logits NAME        the model output the loss is attached to (default: the\n"
        "                       single output)\n"
        "  --threads N          worker threads (0 = one per core, the default)\n"
        "  --seed S             seed of the shuffles and the trainer (default 0)\n"
        "  --precision P        fp32 (default) or bf16 (matrix work in bfloat16, float32\n"
        "                       master weights)\n"
        "  --eval-batch B       examples per evaluation call (default: --batch)\n"
        "\n"
        "pruning (gradual magnitude pruning of the Conv/Gemm/MatMul weights):\n"
        "  --prune S            final sparsity, 0 < S < 1 (e.g. 0.9)\n"
        "  --prune-start E0     first epoch of pruning (default 1)\n"
        "  --prune-end E1       epoch at whose end sparsity S is reached (default: the one\n"
        "                       before the last, so the last epochs fine-tune)\n"
        "  --prune-every K      prune every K steps (default: at the start of each epoch)\n"
        "  --prune-block RxC    prune blocks of R x C weights (default 1x1)\n"
        "  --prune-all          prune the first and last prunable layers too (by default\n"
        "                       they stay dense, as in 'pillar prune': the input layer is\n"
        "                       small and sensitive, the last one is the classifier)\n"
        "  --prune-skip N,...   also keep these Conv/Gemm/MatMul nodes (or weights) dense\n"
        "                       The sparsity follows s = S * (1 - (1 - (t - t0)/(t1 - t0))^3)\n"
        "                       from t0 = start of E0 to t1 = end of E1; masks stay fixed after.\n"
        "\n"
        "output:\n"
        "  --out FILE           the trained model (ONNX); required\n"
        "  --log FILE.csv       one row per epoch: epoch, train_loss, train_acc, test_loss,\n"
        "                       test_acc (fractions), seconds, train_seconds, examples_per_s,\n"
        "                       lr, sparsity, train_cpu_seconds (CPU time of the steps,\n"
        "                       all threads)\n"
        "  --plot FILE.svg      loss and accuracy per epoch (and sparsity when pruning)\n"
        "  --checkpoint FILE    full training state after every epoch (and FILE.meta)\n"
        "  --resume FILE        continue from a checkpoint, mid-epoch if it was interrupted\n"
        "                       (same --batch, --seed and data); later checkpoints go to FILE\n"
        "                       unless --checkpoint is given\n"
        "  --quiet              print only the final line\n"
        "  -h, --help           show this help\n"
        "\n"
        "exit codes: 0 done, 1 usage, 2 model problem, 3 data problem (the message names\n"
        "the file and the record, counted from 0), 4 other failure, 130 interrupted.\n");
}

/* ---------------------------------------------------------------- options */

typedef enum { SCHED_CONSTANT, SCHED_COSINE, SCHED_STEP } lr_sched;

typedef struct train_cfg {
    const char *model, *out, *log, *plot, *checkpoint, *resume, *logits;
    td_spec data;
    int64_t epochs, batch, eval_batch;
    pillar_optimizer opt;
    double lr, momentum, weight_decay, lr_gamma;
    bool lr_given, wd_given, momentum_given;
    lr_sched sched;
    int64_t lr_step;
    int threads;
    uint64_t seed;
    pillar_precision precision;
    pillar_loss loss;
    double prune;
    int64_t prune_start, prune_end, prune_every;
    bool prune_start_given, prune_end_given;
    int prune_rows, prune_cols;
    bool prune_all;
    const char *prune_skip;
    bool quiet;
} train_cfg;

static bool parse_double(const char *s, double lo, double hi, double *out) {
    if (!s || !*s) return false;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || *end || end == s || !isfinite(v) || v < lo || v > hi) return false;
    *out = v;
    return true;
}

static int parse_args(train_cfg *c, int argc, char **argv, bool *help) {
    cli_args a;
    cli_args_init(&a, "train", argc, argv);
    char flag[64];
    const char *v;
    const char *cmd = "train";
    while (cli_args_next(&a, flag, sizeof flag, &v)) {
        if (!flag[0]) {
            if (c->model) return cli_usage_error(cmd, "more than one model given ('%s' and '%s')", c->model, v);
            c->model = v;
            continue;
        }
        if (!strcmp(flag, "-h") || !strcmp(flag, "--help")) {
            *help = true;
            return CLI_OK;
        }
        if (!strcmp(flag, "--quiet")) {
            if (cli_args_has_inline_value(&a)) return cli_usage_error(cmd, "--quiet takes no value");
            c->quiet = true;
            continue;
        }
        if (!strcmp(flag, "--prune-all")) {
            if (cli_args_has_inline_value(&a)) return cli_usage_error(cmd, "--prune-all takes no value");
            c->prune_all = true;
            continue;
        }
        /* every other flag takes a value */
        static const char *const known[] = {"--data", "--test", "--holdout", "--limit", "--test-limit", "--epochs",
                                            "--batch", "--optimizer", "--lr", "--momentum", "--weight-decay",
                                            "--lr-schedule", "--lr-step", "--lr-gamma", "--loss", "--logits",
                                            "--threads", "--seed", "--precision", "--eval-batch", "--prune",
                                            "--prune-start", "--prune-end", "--prune-every", "--prune-block", "--prune-skip", "--out",
                                            "--log", "--plot", "--checkpoint", "--resume"};
        bool ok = false;
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) ok |= !strcmp(flag, known[i]);
        if (!ok) return cli_usage_error(cmd, "unknown option '%s'", flag);
        if (!cli_args_value(&a, flag, &v)) return CLI_USAGE;
        int64_t iv;
        double dv;
#define INT_OPT(name, lo, hi, dst)                                                                        \
    if (!strcmp(flag, name)) {                                                                            \
        if (!cli_parse_int(v, lo, hi, &iv))                                                               \
            return cli_usage_error(cmd, "%s: '%s' is not a whole number from %lld to %lld", name, v,      \
                                   (long long)(lo), (long long)(hi));                                     \
        dst = iv;                                                                                         \
        continue;                                                                                         \
    }
#define DBL_OPT(name, lo, hi, dst, what)                                                                  \
    if (!strcmp(flag, name)) {                                                                            \
        if (!parse_double(v, lo, hi, &dv)) return cli_usage_error(cmd, "%s: '%s' is not %s", name, v, what); \
        dst = dv;                                                                                         \
        continue;                                                                                         \
    }
        if (!strcmp(flag, "--data")) { c->data.data = v; continue; }
        if (!strcmp(flag, "--test")) { c->data.test = v; continue; }
        if (!strcmp(flag, "--out")) { c->out = v; continue; }
        if (!strcmp(flag, "--log")) { c->log = v; continue; }
        if (!strcmp(flag, "--plot")) { c->plot = v; continue; }
        if (!strcmp(flag, "--checkpoint")) { c->checkpoint = v; continue; }
        if (!strcmp(flag, "--resume")) { c->resume = v; continue; }
        if (!strcmp(flag, "--logits")) { c->logits = v; continue; }
        if (!strcmp(flag, "--prune-skip")) { c->prune_skip = v; continue; }
        DBL_OPT("--holdout", 0, 0.99, c->data.holdout, "a fraction from 0 to 0.99")
        INT_OPT("--limit", 1, INT64_MAX, c->data.limit)
        INT_OPT("--test-limit", 1, INT64_MAX, c->data.test_limit)
        INT_OPT("--epochs", 1, 1000000, c->epochs)
        INT_OPT("--batch", 1, 1 << 20, c->batch)
        INT_OPT("--eval-batch", 1, 1 << 20, c->eval_batch)
        INT_OPT("--lr-step", 1, 1000000, c->lr_step)
        INT_OPT("--threads", 0, 4096, c->threads)
        INT_OPT("--prune-every", 1, INT64_MAX, c->prune_every)
        if (!strcmp(flag, "--lr")) {
            if (!parse_double(v, 1e-12, 1e6, &c->lr)) return cli_usage_error(cmd, "--lr: '%s' is not a positive number", v);
            c->lr_given = true;
            continue;
        }
        if (!strcmp(flag, "--momentum")) {
            if (!parse_double(v, 0, 0.9999, &c->momentum))
                return cli_usage_error(cmd, "--momentum: '%s' is not a number from 0 to 1 (exclusive)", v);
            c->momentum_given = true;
            continue;
        }
        if (!strcmp(flag, "--weight-decay")) {
            if (!parse_double(v, 0, 1e3, &c->weight_decay))
                return cli_usage_error(cmd, "--weight-decay: '%s' is not a non-negative number", v);
            c->wd_given = true;
            continue;
        }
        DBL_OPT("--lr-gamma", 1e-9, 1, c->lr_gamma, "a factor in (0, 1]")
        DBL_OPT("--prune", 1e-9, 0.9999, c->prune, "a sparsity between 0 and 1 (exclusive), e.g. 0.9")
        if (!strcmp(flag, "--prune-start")) {
            if (!cli_parse_int(v, 1, 1000000, &c->prune_start))
                return cli_usage_error(cmd, "--prune-start: '%s' is not an epoch number (from 1)", v);
            c->prune_start_given = true;
            continue;
        }
        if (!strcmp(flag, "--prune-end")) {
            if (!cli_parse_int(v, 1, 1000000, &c->prune_end))
                return cli_usage_error(cmd, "--prune-end: '%s' is not an epoch number (from 1)", v);
            c->prune_end_given = true;
            continue;
        }
        if (!strcmp(flag, "--seed")) {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 10);
            if (errno || *end || end == v || v[0] == '-')
                return cli_usage_error(cmd, "--seed: '%s' is not a non-negative whole number", v);
            c->seed = s;
            continue;
        }
        if (!strcmp(flag, "--optimizer")) {
            if (!strcmp(v, "sgd")) c->opt = PILLAR_OPTIMIZER_SGD;
            else if (!strcmp(v, "adam")) c->opt = PILLAR_OPTIMIZER_ADAM;
            else if (!strcmp(v, "adamw")) c->opt = PILLAR_OPTIMIZER_ADAMW;
            else return cli_usage_error(cmd, "--optimizer: '%s' is not sgd, adam or adamw", v);
            continue;
        }
        if (!strcmp(flag, "--lr-schedule")) {
            if (!strcmp(v, "constant") || !strcmp(v, "none")) c->sched = SCHED_CONSTANT;
            else if (!strcmp(v, "cosine")) c->sched = SCHED_COSINE;
            else if (!strcmp(v, "step")) c->sched = SCHED_STEP;
            else return cli_usage_error(cmd, "--lr-schedule: '%s' is not constant, cosine or step", v);
            continue;
        }
        if (!strcmp(flag, "--loss")) {
            if (!strcmp(v, "ce")) c->loss = PILLAR_LOSS_SOFTMAX_CROSS_ENTROPY;
            else if (!strcmp(v, "nll")) c->loss = PILLAR_LOSS_NLL;
            else if (!strcmp(v, "mse")) c->loss = PILLAR_LOSS_MSE;
            else return cli_usage_error(cmd, "--loss: '%s' is not ce, nll or mse", v);
            continue;
        }
        if (!strcmp(flag, "--precision")) {
            if (!strcmp(v, "fp32")) c->precision = PILLAR_PRECISION_FP32;
            else if (!strcmp(v, "bf16")) c->precision = PILLAR_PRECISION_BF16;
            else return cli_usage_error(cmd, "--precision: '%s' is not fp32 or bf16", v);
            continue;
        }
        if (!strcmp(flag, "--prune-block")) {
            int64_t r, col;
            char rb[32];
            const char *x = strpbrk(v, "xX");
            if (!x || x == v || (size_t)(x - v) >= sizeof rb) return cli_usage_error(cmd, "--prune-block: '%s' is not RxC, e.g. 4x1", v);
            snprintf(rb, sizeof rb, "%.*s", (int)(x - v), v);
            if (!cli_parse_int(rb, 1, 4096, &r) || !cli_parse_int(x + 1, 1, 4096, &col))
                return cli_usage_error(cmd, "--prune-block: '%s' is not RxC with R and C from 1 to 4096", v);
            c->prune_rows = (int)r;
            c->prune_cols = (int)col;
            continue;
        }
#undef INT_OPT
#undef DBL_OPT
        return cli_usage_error(cmd, "unknown option '%s'", flag);
    }
    if (!c->model) return cli_usage_error(cmd, "no model given");
    if (!c->data.data) return cli_usage_error(cmd, "no data given (--data fashion-mnist, a directory, or X.npy,y.npy)");
    if (!c->out) return cli_usage_error(cmd, "no output file given (--out TRAINED.onnx)");
    if (c->momentum_given && c->opt != PILLAR_OPTIMIZER_SGD)
        return cli_usage_error(cmd, "--momentum applies to sgd only (adam and adamw use beta1 = 0.9)");
    if (c->data.test && c->data.holdout > 0 && c->data.holdout != 0.1)
        return cli_usage_error(cmd, "--holdout and --test exclude each other");
    if (!c->lr_given) c->lr = c->opt == PILLAR_OPTIMIZER_SGD ? 0.01 : 0.001;
    if (!c->wd_given && c->opt == PILLAR_OPTIMIZER_ADAMW) c->weight_decay = 0.01;
    if (!c->eval_batch) c->eval_batch = c->batch;
    if (!c->lr_step) c->lr_step = c->epochs >= 3 ? c->epochs / 3 : 1;
    if (c->prune > 0) {
        if (!c->prune_start_given) c->prune_start = 1;
        if (!c->prune_end_given) c->prune_end = c->epochs > 1 ? c->epochs - 1 : 1;
        if (c->prune_end < c->prune_start)
            return cli_usage_error(cmd, "--prune-end %lld is before --prune-start %lld", (long long)c->prune_end,
                                   (long long)c->prune_start);
        if (c->prune_end > c->epochs)
            return cli_usage_error(cmd, "--prune-end %lld is after the last epoch (%lld)", (long long)c->prune_end,
                                   (long long)c->epochs);
    } else if (c->prune_start_given || c->prune_end_given || c->prune_every || c->prune_rows || c->prune_all ||
               c->prune_skip) {
        return cli_usage_error(cmd, "--prune-start/--prune-end/--prune-every/--prune-block/--prune-all/--prune-skip "
                                    "need --prune S");
    }
    return CLI_OK;
}

/* ---------------------------------------------------------------- the model's shapes */

typedef struct model_io {
    const char *in_name, *out_name;
    int in_ndim;
    int64_t ex_dims[PILLAR_MAX_DIMS]; /* input dims after the batch */
    int64_t feat;
    int64_t classes; /* last dim of the output, 0 if unknown */
    int64_t out_feat; /* values per example of the output, 0 if unknown */
} model_io;

static int model_shapes(const train_cfg *c, const pillar_model *m, const td_set *s, model_io *io) {
    memset(io, 0, sizeof *io);
    char sh[128], sh2[128];
    size_t nin = pillar_model_input_count(m);
    if (nin != 1) return cli_fail(CLI_MODEL, "%s: the model has %zu inputs; pillar train feeds exactly one", c->model, nin);
    pillar_dtype dt;
    size_t nd;
    const int64_t *dims;
    if (pillar_model_input(m, 0, &io->in_name, &dt, &nd, &dims) != PILLAR_OK) return cli_fail_status(PILLAR_ERR_INTERNAL, CLI_OTHER);
    if (dt != PILLAR_FLOAT32)
        return cli_fail(CLI_MODEL, "%s: input '%s' is %s; pillar train feeds float32", c->model, io->in_name, pillar_dtype_name(dt));
    if (nd < 1)
        return cli_fail(CLI_MODEL, "%s: input '%s' has no declared shape; pillar train needs [batch, ...]", c->model, io->in_name);
    if (dims[0] > 0 && dims[0] != c->batch)
        return cli_fail(CLI_INPUT,
                        "%s: input '%s' has a fixed batch of %lld but --batch is %lld (export the model with a dynamic batch "
                        "axis, or use --batch %lld)",
                        c->model, io->in_name, (long long)dims[0], (long long)c->batch, (long long)dims[0]);
    io->in_ndim = (int)nd;
    int unknown = 0;
    int64_t known = 1;
    for (size_t d = 1; d < nd; d++) {
        io->ex_dims[d - 1] = dims[d];
        if (dims[d] < 0) unknown++;
        else known *= dims[d];
    }
    if (unknown) {
        /* take the data's own shape when it has the same rank, else solve one dim */
        bool same = s->ex_ndim == (int)nd - 1;
        for (size_t d = 1; same && d < nd; d++) same = dims[d] < 0 || dims[d] == s->ex_dims[d - 1];
        if (same) {
            memcpy(io->ex_dims, s->ex_dims, (size_t)s->ex_ndim * sizeof(int64_t));
        } else if (unknown == 1 && known > 0 && s->feat % known == 0) {
            for (size_t d = 1; d < nd; d++)
                if (dims[d] < 0) io->ex_dims[d - 1] = s->feat / known;
        } else {
            return cli_fail(CLI_INPUT, "%s: records of %s cannot feed input '%s' of shape %s", s->xpath,
                            cli_dims_str(sh, sizeof sh, s->ex_ndim, s->ex_dims, NULL), io->in_name,
                            cli_dims_str(sh2, sizeof sh2, (long)nd, dims, NULL));
        }
    }
    io->feat = 1;
    for (int d = 0; d < io->in_ndim - 1; d++) io->feat *= io->ex_dims[d];
    if (io->feat != s->feat) {
        /* "28x28 = 784 values", or just "784 values" for flat records */
        char a[160], b[160];
        if (s->ex_ndim > 1) snprintf(a, sizeof a, "%s = ", cli_dims_str(sh, sizeof sh, s->ex_ndim, s->ex_dims, NULL));
        else a[0] = 0;
        if (io->in_ndim > 2) snprintf(b, sizeof b, "%s = ", cli_dims_str(sh2, sizeof sh2, io->in_ndim - 1, io->ex_dims, NULL));
        else b[0] = 0;
        return cli_fail(CLI_INPUT, "%s: records hold %s%lld values, but model input '%s' takes %s%lld per example", s->xpath, a,
                        (long long)s->feat, io->in_name, b, (long long)io->feat);
    }
    /* the output the loss is attached to */
    size_t nout = pillar_model_output_count(m);
    long oi = -1;
    char list[512] = "";
    size_t k = 0;
    for (size_t i = 0; i < nout; i++) {
        const char *nm = NULL;
        pillar_model_output(m, i, &nm, NULL, NULL, NULL);
        if (k < sizeof list) k += (size_t)snprintf(list + k, sizeof list - k, "%s'%s'", i ? ", " : "", nm ? nm : "?");
        if (c->logits && nm && !strcmp(nm, c->logits)) oi = (long)i;
    }
    if (!c->logits) {
        if (nout != 1)
            return cli_fail(CLI_USAGE, "%s: the model has %zu outputs (%s): choose the one to train with --logits NAME", c->model,
                            nout, list);
        oi = 0;
    }
    if (oi < 0) {
        /* maybe an intermediate value: the trainer will say; no shape to check here */
        io->out_name = c->logits;
        return CLI_OK;
    }
    if (pillar_model_output(m, (size_t)oi, &io->out_name, &dt, &nd, &dims) != PILLAR_OK)
        return cli_fail_status(PILLAR_ERR_INTERNAL, CLI_OTHER);
    if (nd >= 2 && dims[nd - 1] > 0) io->classes = dims[nd - 1];
    io->out_feat = 1;
    for (size_t d = 1; d < nd; d++) io->out_feat = dims[d] > 0 && io->out_feat > 0 ? io->out_feat * dims[d] : 0;
    if (nd < 1) io->out_feat = 0;
    return CLI_OK;
}

/* The class count of the output the loss goes to (last dim of a rank >= 2 output),
 * 0 if unknown. */
static int64_t output_classes(const train_cfg *c, const pillar_model *m) {
    size_t nout = pillar_model_output_count(m);
    for (size_t i = 0; i < nout; i++) {
        const char *nm = NULL;
        size_t nd = 0;
        const int64_t *dims = NULL;
        if (pillar_model_output(m, i, &nm, NULL, &nd, &dims) != PILLAR_OK) continue;
        if (c->logits ? nm && !strcmp(nm, c->logits) : nout == 1)
            return nd >= 2 && dims[nd - 1] > 0 ? dims[nd - 1] : 0;
    }
    return 0;
}

/* ---------------------------------------------------------------- schedules */

static double lr_at(const train_cfg *c, int64_t step, int64_t spe) {
    switch (c->sched) {
    case SCHED_COSINE: {
        double total = (double)c->epochs * (double)spe;
        double t = total > 0 ? (double)step / total : 1;
        if (t > 1) t = 1;
        return c->lr * 0.5 * (1 + cos(M_PI * t));
    }
    case SCHED_STEP:
        return c->lr * pow(c->lr_gamma, (double)(step / spe / c->lr_step));
    default:
        return c->lr;
    }
}

/* Sparsity wanted after `done` steps: the cubic schedule of Zhu & Gupta (2017) from
 * t0 = start of epoch E0 to t1 = end of epoch E1, time in epochs. */
static double prune_target(const train_cfg *c, int64_t done, int64_t spe) {
    double t = (double)done / (double)spe, t0 = (double)(c->prune_start - 1), t1 = (double)c->prune_end;
    if (t <= t0) return 0;
    if (t >= t1) return c->prune;
    double r = 1 - (t - t0) / (t1 - t0);
    return c->prune * (1 - r * r * r);
}

/* ---------------------------------------------------------------- run state, log, meta */

typedef struct run_state {
    int64_t epoch;        /* the epoch in progress (1-based) */
    int64_t step;         /* steps done in it */
    int64_t global_step;  /* steps done in the run */
    double prune_level;   /* last sparsity applied */
    double loss_sum;      /* this epoch so far: summed loss, examples, correct, time */
    int64_t seen, correct;
    double train_seconds, elapsed;
    double train_cpu;     /* CPU seconds of this epoch's steps so far */
    train_row *rows;      /* finished epochs */
    size_t nrows, caprows;
} run_state;

static bool add_row(run_state *s, const train_row *r) {
    if (s->nrows == s->caprows) {
        size_t cap = s->caprows ? s->caprows * 2 : 16;
        train_row *p = realloc(s->rows, cap * sizeof *p);
        if (!p) return false;
        s->rows = p;
        s->caprows = cap;
    }
    s->rows[s->nrows++] = *r;
    return true;
}

static char *str_cat(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 1;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s%s", a, b);
    return s;
}

/* Writes `path` through "<path>.tmp" and a rename, so readers never see half a file. */
static FILE *open_tmp(const char *path, char **tmp) {
    *tmp = str_cat(path, ".tmp");
    if (!*tmp) return NULL;
    FILE *f = fopen(*tmp, "w");
    if (!f) {
        int e = errno;
        free(*tmp);
        *tmp = NULL;
        errno = e;
    }
    return f;
}

static int close_tmp(FILE *f, char *tmp, const char *path) {
    int bad = ferror(f);
    int rc = fclose(f);
    if (bad || rc != 0 || rename(tmp, path) != 0) {
        int e = errno ? errno : EIO;
        remove(tmp);
        free(tmp);
        errno = e;
        return -1;
    }
    free(tmp);
    return 0;
}

static void csv_num(FILE *f, double v, const char *fmt) {
    fputc(',', f);
    if (isfinite(v)) fprintf(f, fmt, v);
}

static int write_csv(const char *path, const run_state *s) {
    char *tmp;
    FILE *f = open_tmp(path, &tmp);
    if (!f) return -1;
    fprintf(f, "epoch,train_loss,train_acc,test_loss,test_acc,seconds,train_seconds,examples_per_s,lr,sparsity,train_cpu_seconds\n");
    for (size_t i = 0; i < s->nrows; i++) {
        const train_row *r = &s->rows[i];
        fprintf(f, "%d", r->epoch);
        csv_num(f, r->train_loss, "%.6f");
        csv_num(f, r->train_acc, "%.6f");
        csv_num(f, r->test_loss, "%.6f");
        csv_num(f, r->test_acc, "%.6f");
        csv_num(f, r->seconds, "%.3f");
        csv_num(f, r->train_seconds, "%.3f");
        csv_num(f, r->examples_per_s, "%.1f");
        csv_num(f, r->lr, "%.6g");
        csv_num(f, r->sparsity, "%.6f");
        csv_num(f, r->train_cpu_seconds, "%.3f");
        fputc('\n', f);
    }
    return close_tmp(f, tmp, path);
}

#define META_MAGIC "pillar-train-state 1"

static int write_meta(const char *path, const train_cfg *c, const td_data *d, const run_state *s) {
    char *tmp;
    FILE *f = open_tmp(path, &tmp);
    if (!f) return -1;
    fprintf(f, "%s\n", META_MAGIC);
    fprintf(f, "batch %lld\nseed %llu\ntrain_examples %lld\n", (long long)c->batch, (unsigned long long)c->seed,
            (long long)d->train.n);
    fprintf(f, "epoch %lld\nstep %lld\nglobal_step %lld\n", (long long)s->epoch, (long long)s->step,
            (long long)s->global_step);
    fprintf(f, "prune_level %.17g\nloss_sum %.17g\nseen %lld\ncorrect %lld\ntrain_seconds %.17g\nelapsed %.17g\n",
            s->prune_level, s->loss_sum, (long long)s->seen, (long long)s->correct, s->train_seconds, s->elapsed);
    fprintf(f, "train_cpu %.17g\n", s->train_cpu);
    fprintf(f, "rows %zu\n", s->nrows);
    for (size_t i = 0; i < s->nrows; i++) {
        const train_row *r = &s->rows[i];
        fprintf(f, "row %d %.17g %.17g %.17g %.17g %.17g %.17g %.17g %.17g %.17g %.17g\n", r->epoch, r->train_loss,
                r->train_acc, r->test_loss, r->test_acc, r->seconds, r->train_seconds, r->examples_per_s, r->lr, r->sparsity,
                r->train_cpu_seconds);
    }
    return close_tmp(f, tmp, path);
}

/* Reads the state next to a checkpoint and checks it fits this run. */
static int read_meta(const char *path, const char *ckpt, const train_cfg *c, const td_data *d, run_state *s) {
    FILE *f = fopen(path, "r");
    if (!f)
        return cli_fail(CLI_INPUT, "--resume %s: cannot open %s: %s (it is written next to every checkpoint)", ckpt, path,
                        strerror(errno));
    char line[1024];
    int rc = CLI_OK;
    long long batch = -1, n = -1, ll;
    unsigned long long seed = 0;
    bool have_seed = false, magic = false;
    int lineno = 0;
    memset(s, 0, sizeof *s);
    s->epoch = -1;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char key[32];
        if (lineno == 1) {
            magic = strncmp(line, META_MAGIC, strlen(META_MAGIC)) == 0;
            if (!magic) break;
            continue;
        }
        if (sscanf(line, "%31s", key) != 1) continue;
        const char *val = line + strlen(key);
        bool ok = true;
        if (!strcmp(key, "batch")) ok = sscanf(val, "%lld", &batch) == 1;
        else if (!strcmp(key, "seed")) ok = have_seed = sscanf(val, "%llu", &seed) == 1;
        else if (!strcmp(key, "train_examples")) ok = sscanf(val, "%lld", &n) == 1;
        else if (!strcmp(key, "epoch")) ok = sscanf(val, "%lld", &ll) == 1 && (s->epoch = ll) >= 1;
        else if (!strcmp(key, "step")) ok = sscanf(val, "%lld", &ll) == 1 && (s->step = ll) >= 0;
        else if (!strcmp(key, "global_step")) ok = sscanf(val, "%lld", &ll) == 1 && (s->global_step = ll) >= 0;
        else if (!strcmp(key, "prune_level")) ok = sscanf(val, "%lf", &s->prune_level) == 1;
        else if (!strcmp(key, "loss_sum")) ok = sscanf(val, "%lf", &s->loss_sum) == 1;
        else if (!strcmp(key, "seen")) ok = sscanf(val, "%lld", &ll) == 1 && (s->seen = ll) >= 0;
        else if (!strcmp(key, "correct")) ok = sscanf(val, "%lld", &ll) == 1 && (s->correct = ll) >= 0;
        else if (!strcmp(key, "train_seconds")) ok = sscanf(val, "%lf", &s->train_seconds) == 1;
        else if (!strcmp(key, "elapsed")) ok = sscanf(val, "%lf", &s->elapsed) == 1;
        else if (!strcmp(key, "train_cpu")) ok = sscanf(val, "%lf", &s->train_cpu) == 1;
        else if (!strcmp(key, "rows")) ok = true;
        else if (!strcmp(key, "row")) {
            train_row r;
            r.train_cpu_seconds = NAN; /* absent from older state files */
            int got = sscanf(val, "%d %lf %lf %lf %lf %lf %lf %lf %lf %lf %lf", &r.epoch, &r.train_loss, &r.train_acc,
                             &r.test_loss, &r.test_acc, &r.seconds, &r.train_seconds, &r.examples_per_s, &r.lr,
                             &r.sparsity, &r.train_cpu_seconds);
            ok = got == 10 || got == 11;
            if (ok && !add_row(s, &r)) {
                rc = cli_fail(CLI_OTHER, "out of memory");
                break;
            }
        }
        if (!ok) {
            rc = cli_fail(CLI_INPUT, "--resume %s: %s line %d is malformed: %.60s", ckpt, path, lineno, line);
            break;
        }
    }
    fclose(f);
    if (rc) return rc;
    if (!magic) return cli_fail(CLI_INPUT, "--resume %s: %s is not a pillar training state file", ckpt, path);
    if (batch < 0 || n < 0 || !have_seed || s->epoch < 1)
        return cli_fail(CLI_INPUT, "--resume %s: %s is incomplete", ckpt, path);
    if (batch != c->batch)
        return cli_fail(CLI_USAGE, "--resume %s: the checkpoint was made with --batch %lld, this run has --batch %lld", ckpt,
                        batch, (long long)c->batch);
    if (seed != c->seed)
        return cli_fail(CLI_USAGE, "--resume %s: the checkpoint was made with --seed %llu, this run has --seed %llu", ckpt,
                        seed, (unsigned long long)c->seed);
    if (n != d->train.n)
        return cli_fail(CLI_USAGE, "--resume %s: the checkpoint was made on %lld training examples, this run has %lld", ckpt, n,
                        (long long)d->train.n);
    return CLI_OK;
}

/* ---------------------------------------------------------------- Ctrl-C */

static volatile sig_atomic_t g_stop;

static void on_signal(int sig) { g_stop = sig; }

/* The first SIGINT/SIGTERM asks for a clean stop; SA_RESETHAND makes a second one act
 * as usual (kill), for a user who does not want to wait. */
static void catch_signals(struct sigaction *old_int, struct sigaction *old_term) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, old_int);
    sigaction(SIGTERM, &sa, old_term);
}

/* ---------------------------------------------------------------- batches */

typedef struct batcher {
    const td_set *s;
    const model_io *io;
    const train_cfg *c;
    float *x;
    int64_t *y;
    float *yt; /* MSE targets */
    int64_t tdim;
    bool onehot;
} batcher;

/* Fills the batch buffers with records idx[0..n) and wraps them as tensors. */
static pillar_status make_batch(batcher *b, const int64_t *idx, int64_t n, int64_t base, pillar_tensor **xt,
                                pillar_tensor **yt) {
    const td_set *s = b->s;
    for (int64_t i = 0; i < n; i++) {
        int64_t r = idx ? idx[base + i] : base + i;
        memcpy(b->x + i * s->feat, s->x + r * s->feat, (size_t)s->feat * sizeof(float));
        if (b->c->loss == PILLAR_LOSS_MSE) {
            if (b->onehot) {
                memset(b->yt + i * b->tdim, 0, (size_t)b->tdim * sizeof(float));
                b->yt[i * b->tdim + s->y[r]] = 1.0f;
            } else {
                memcpy(b->yt + i * b->tdim, s->yf + r * b->tdim, (size_t)b->tdim * sizeof(float));
            }
        } else {
            b->y[i] = s->y[r];
        }
    }
    int64_t dims[PILLAR_MAX_DIMS];
    dims[0] = n;
    memcpy(dims + 1, b->io->ex_dims, (size_t)(b->io->in_ndim - 1) * sizeof(int64_t));
    pillar_status st = pillar_tensor_wrap(PILLAR_FLOAT32, (size_t)b->io->in_ndim, dims, b->x, xt);
    if (st != PILLAR_OK) return st;
    if (b->c->loss == PILLAR_LOSS_MSE) {
        int64_t td[2] = {n, b->tdim};
        st = pillar_tensor_wrap(PILLAR_FLOAT32, 2, td, b->yt, yt);
    } else {
        st = pillar_tensor_wrap(PILLAR_INT64, 1, &n, b->y, yt);
    }
    if (st != PILLAR_OK) {
        pillar_tensor_destroy(*xt);
        *xt = NULL;
    }
    return st;
}

/* Evaluation over the whole test set in batches; loss and accuracy per example. */
static int evaluate(pillar_trainer *t, batcher *b, int64_t eval_batch, double *loss, double *acc, bool *stopped) {
    const td_set *s = b->s;
    double lsum = 0;
    int64_t correct = 0;
    *stopped = false;
    for (int64_t base = 0; base < s->n; base += eval_batch) {
        if (g_stop) {
            *stopped = true;
            return CLI_OK;
        }
        int64_t n = s->n - base < eval_batch ? s->n - base : eval_batch;
        pillar_tensor *xt = NULL, *yt = NULL;
        pillar_status st = make_batch(b, NULL, n, base, &xt, &yt);
        float l = 0;
        int64_t cor = 0;
        if (st == PILLAR_OK) st = pillar_trainer_evaluate(t, xt, yt, &l, &cor);
        pillar_tensor_destroy(xt);
        pillar_tensor_destroy(yt);
        if (st != PILLAR_OK) return cli_fail_status(st, CLI_OTHER);
        lsum += (double)l * (double)n;
        correct += cor;
    }
    *loss = lsum / (double)s->n;
    *acc = (double)correct / (double)s->n;
    return CLI_OK;
}

/* ---------------------------------------------------------------- the command */

static const char *opt_name(pillar_optimizer o) {
    return o == PILLAR_OPTIMIZER_SGD ? "sgd" : o == PILLAR_OPTIMIZER_ADAM ? "adam" : "adamw";
}

static const char *loss_name(pillar_loss l) {
    return l == PILLAR_LOSS_SOFTMAX_CROSS_ENTROPY ? "ce" : l == PILLAR_LOSS_NLL ? "nll" : "mse";
}

static int make_trainer(const train_cfg *c, const pillar_model *m, const model_io *io, pillar_trainer **out) {
    pillar_train_options *o = NULL;
    pillar_status st = pillar_train_options_create(&o);
    if (st == PILLAR_OK)
        st = pillar_train_options_set_optimizer(o, c->opt, (float)c->lr, (float)c->momentum, (float)c->weight_decay);
    if (st == PILLAR_OK) st = pillar_train_options_set_batch(o, c->batch);
    if (st == PILLAR_OK) st = pillar_train_options_set_threads(o, c->threads);
    if (st == PILLAR_OK) st = pillar_train_options_set_seed(o, c->seed);
    if (st == PILLAR_OK) st = pillar_train_options_set_precision(o, c->precision);
    if (st == PILLAR_OK) st = pillar_train_options_set_loss(o, c->loss, c->logits ? c->logits : io->out_name);
    if (st == PILLAR_OK && c->prune_rows) st = pillar_train_options_set_prune_block(o, c->prune_rows, c->prune_cols);
    if (st == PILLAR_OK && c->prune > 0) st = pillar_train_options_set_prune_skip(o, !c->prune_all, c->prune_skip);
    if (st == PILLAR_OK) st = pillar_trainer_create(m, o, out);
    pillar_train_options_destroy(o);
    if (st != PILLAR_OK) {
        int code = cli_fail_status(st, CLI_OTHER);
        return st == PILLAR_ERR_ARGUMENT ? CLI_USAGE : code;
    }
    return CLI_OK;
}

typedef struct run {
    train_cfg c;
    pillar_model *m;
    td_data d;
    model_io io;
    pillar_trainer *t;
    run_state s;
    batcher tb, eb;
    int64_t *perm;
    char *ckpt, *meta;
    progress p;
} run;

static int save_checkpoint(run *r) {
    if (!r->ckpt) return CLI_OK;
    char *tmp = str_cat(r->ckpt, ".tmp");
    if (!tmp) return cli_fail(CLI_OTHER, "out of memory");
    pillar_status st = pillar_trainer_checkpoint(r->t, tmp);
    if (st != PILLAR_OK) {
        free(tmp);
        progress_clear(&r->p);
        return cli_fail_status(st, CLI_OTHER);
    }
    if (rename(tmp, r->ckpt) != 0) {
        int e = errno;
        remove(tmp);
        free(tmp);
        progress_clear(&r->p);
        return cli_fail(CLI_OTHER, "%s: cannot write checkpoint: %s", r->ckpt, strerror(e));
    }
    free(tmp);
    if (write_meta(r->meta, &r->c, &r->d, &r->s) != 0) {
        progress_clear(&r->p);
        return cli_fail(CLI_OTHER, "%s: cannot write: %s", r->meta, strerror(errno));
    }
    return CLI_OK;
}

static int write_reports(run *r) {
    if (r->c.log && write_csv(r->c.log, &r->s) != 0) {
        progress_clear(&r->p);
        return cli_fail(CLI_OTHER, "--log %s: cannot write: %s", r->c.log, strerror(errno));
    }
    if (r->c.plot) {
        char sub[256];
        snprintf(sub, sizeof sub, "%s lr %g, batch %lld, %s%s", opt_name(r->c.opt), r->c.lr, (long long)r->c.batch,
                 r->c.precision == PILLAR_PRECISION_BF16 ? "bf16" : "fp32",
                 r->c.prune > 0 ? ", gradual magnitude pruning" : "");
        const char *base = strrchr(r->c.model, '/');
        char title[512];
        snprintf(title, sizeof title, "pillar train %s", base ? base + 1 : r->c.model);
        if (plot_write_svg(r->c.plot, title, sub, r->s.rows, r->s.nrows) != 0) {
            progress_clear(&r->p);
            return cli_fail(CLI_OTHER, "--plot %s: cannot write: %s", r->c.plot, strerror(errno));
        }
    }
    return CLI_OK;
}

static int setup_batchers(run *r) {
    const train_cfg *c = &r->c;
    int64_t maxb = c->batch > c->eval_batch ? c->batch : c->eval_batch;
    int64_t tdim = 1;
    bool onehot = false;
    if (c->loss == PILLAR_LOSS_MSE) {
        if (r->d.train.yf && r->d.train.tdim > 1) {
            tdim = r->d.train.tdim;
            if (r->io.out_feat > 0 && tdim != r->io.out_feat)
                return cli_fail(CLI_INPUT, "%s: targets hold %lld values per record, the model's output '%s' has %lld", r->d.train.ypath,
                                (long long)tdim, r->io.out_name, (long long)r->io.out_feat);
        } else if (r->io.out_feat == 1 && r->d.train.yf) {
            tdim = 1; /* scalar regression */
        } else if (r->io.classes > 0 && r->d.train.y) {
            tdim = r->io.classes;
            onehot = true;
        } else {
            return cli_fail(CLI_INPUT, "%s: --loss mse needs float targets of the output's shape, or class labels and a model "
                                       "output of known size",
                            r->d.train.ypath);
        }
    } else if (!r->d.train.y) {
        return cli_fail(CLI_INPUT, "%s: labels are not whole numbers: class indices expected (or use --loss mse)",
                        r->d.train.ypath);
    }
    batcher *bs[2] = {&r->tb, &r->eb};
    const td_set *sets[2] = {&r->d.train, &r->d.test};
    for (int i = 0; i < 2; i++) {
        batcher *b = bs[i];
        b->s = sets[i];
        b->io = &r->io;
        b->c = c;
        b->tdim = tdim;
        b->onehot = onehot;
    }
    r->tb.x = malloc((size_t)maxb * (size_t)r->io.feat * sizeof(float));
    r->tb.y = malloc((size_t)maxb * sizeof(int64_t));
    r->tb.yt = malloc((size_t)maxb * (size_t)tdim * sizeof(float));
    r->perm = malloc((size_t)r->d.train.n * sizeof(int64_t));
    if (!r->tb.x || !r->tb.y || !r->tb.yt || !r->perm) return cli_fail(CLI_OTHER, "out of memory for the batches");
    r->eb.x = r->tb.x; /* evaluation and training never overlap */
    r->eb.y = r->tb.y;
    r->eb.yt = r->tb.yt;
    return CLI_OK;
}

static void print_intro(run *r, int64_t spe) {
    if (r->c.quiet) return;
    char sh[128];
    const train_cfg *c = &r->c;
    printf("pillar train: %s: input '%s' %s", c->model, r->io.in_name,
           cli_dims_str(sh, sizeof sh, r->io.in_ndim - 1, r->io.ex_dims, NULL));
    if (r->io.classes > 0) printf(", output '%s' with %lld classes", r->io.out_name, (long long)r->io.classes);
    else printf(", output '%s'", r->io.out_name);
    printf("\ndata: %s\n", r->d.desc);
    printf("%s lr %g", opt_name(c->opt), c->lr);
    if (c->opt == PILLAR_OPTIMIZER_SGD && c->momentum > 0) printf(" momentum %g", c->momentum);
    if (c->weight_decay > 0) printf(" weight decay %g", c->weight_decay);
    if (c->sched == SCHED_COSINE) printf(" (cosine)");
    if (c->sched == SCHED_STEP) printf(" (x%g every %lld epochs)", c->lr_gamma, (long long)c->lr_step);
    char th[32];
    if (c->threads) snprintf(th, sizeof th, "%d", c->threads);
    else snprintf(th, sizeof th, "auto");
    printf(", batch %lld, %lld epochs of %lld steps, loss %s, %s, threads %s, seed %llu\n", (long long)c->batch,
           (long long)c->epochs, (long long)spe, loss_name(c->loss),
           c->precision == PILLAR_PRECISION_BF16 ? "bf16" : "fp32", th, (unsigned long long)c->seed);
    if (c->prune > 0)
        printf("pruning to %.1f%% sparsity from epoch %lld to the end of epoch %lld%s; %s%s%s\n", c->prune * 100,
               (long long)c->prune_start, (long long)c->prune_end, c->prune_rows ? " (blocks)" : "",
               c->prune_all ? "all prunable layers" : "first and last prunable layers kept dense",
               c->prune_skip ? ", also kept dense: " : "", c->prune_skip ? c->prune_skip : "");
    if (r->c.resume)
        printf("resuming from %s at epoch %lld, step %lld\n", r->c.resume, (long long)r->s.epoch, (long long)r->s.step);
    fflush(stdout);
}

/* Prunes to the schedule's sparsity for the steps done so far, when an event is due:
 * before every --prune-every-th step (default: each epoch's first), or `now`. Pruning
 * before a step rather than after it means each epoch's evaluation sees weights that
 * have been fine-tuned since the last cut. */
static int maybe_prune(run *r, int64_t spe, bool now) {
    const train_cfg *c = &r->c;
    run_state *s = &r->s;
    if (c->prune <= 0) return CLI_OK;
    int64_t every = c->prune_every ? c->prune_every : spe;
    if (!now && s->global_step % every != 0) return CLI_OK;
    double want = prune_target(c, s->global_step, spe);
    if (want <= s->prune_level + 1e-12) return CLI_OK;
    pillar_status st = pillar_trainer_prune(r->t, (float)want);
    if (st != PILLAR_OK) {
        progress_clear(&r->p);
        return cli_fail_status(st, CLI_OTHER);
    }
    s->prune_level = want;
    return CLI_OK;
}

/* The training loop proper, from the state in r->s to the last epoch or a stop. */
static int train_loop(run *r, int64_t spe, bool *stopped) {
    const train_cfg *c = &r->c;
    run_state *s = &r->s;
    double cur_lr = -1;
    *stopped = false;
    for (; s->epoch <= c->epochs; s->epoch++) {
        progress_epoch_begin(&r->p, (int)s->epoch, s->elapsed);
        double epoch_t0 = progress_now() - s->elapsed;
        /* the shuffle of an epoch depends only on the seed and the epoch */
        td_permutation(r->perm, r->d.train.n, c->seed * 0x9e3779b97f4a7c15ull + (uint64_t)s->epoch);
        while (s->step < spe) {
            if (g_stop) break;
            double lr = lr_at(c, s->global_step, spe);
            if (lr != cur_lr) {
                pillar_status st = pillar_trainer_set_lr(r->t, (float)lr);
                if (st != PILLAR_OK) return cli_fail_status(st, CLI_OTHER);
                cur_lr = lr;
            }
            double t0 = progress_now(), c0 = progress_cpu_now();
            int rc = maybe_prune(r, spe, false);
            if (rc) return rc;
            pillar_tensor *xt = NULL, *yt = NULL;
            pillar_status st = make_batch(&r->tb, r->perm, c->batch, s->step * c->batch, &xt, &yt);
            float loss = 0;
            int64_t correct = 0;
            if (st == PILLAR_OK) st = pillar_trainer_step(r->t, xt, yt, &loss, &correct);
            pillar_tensor_destroy(xt);
            pillar_tensor_destroy(yt);
            if (st != PILLAR_OK) {
                progress_clear(&r->p);
                return cli_fail_status(st, CLI_OTHER);
            }
            if (!isfinite(loss)) {
                progress_clear(&r->p);
                return cli_fail(CLI_OTHER, "training diverged: the loss is %g at epoch %lld, step %lld (try a smaller --lr)",
                                (double)loss, (long long)s->epoch, (long long)s->step + 1);
            }
            s->loss_sum += (double)loss * (double)c->batch;
            s->seen += c->batch;
            s->correct += correct;
            s->step++;
            s->global_step++;
            double t1 = progress_now();
            s->train_seconds += t1 - t0;
            s->train_cpu += progress_cpu_now() - c0;
            progress_step(&r->p, s->step, s->seen, s->loss_sum, s->correct, s->train_seconds);
        }
        if (g_stop) {
            s->elapsed = progress_now() - epoch_t0;
            *stopped = true;
            return CLI_OK;
        }
        /* the last epoch: reach the schedule's sparsity before the evaluation and the
         * model written (when --prune-end is the last epoch) */
        if (s->epoch == c->epochs) {
            int rc = maybe_prune(r, spe, true);
            if (rc) return rc;
        }
        s->elapsed = progress_now() - epoch_t0;
        /* evaluation */
        double te_loss = NAN, te_acc = NAN, e0 = progress_now();
        if (r->d.test.n > 0) {
            progress_evaluating(&r->p);
            bool st_eval = false;
            int rc = evaluate(r->t, &r->eb, c->eval_batch, &te_loss, &te_acc, &st_eval);
            if (rc) {
                progress_clear(&r->p);
                return rc;
            }
            if (st_eval) {
                /* resumes with this epoch's steps done: only the evaluation is redone */
                s->elapsed = progress_now() - epoch_t0;
                *stopped = true;
                return CLI_OK;
            }
        }
        double eval_s = progress_now() - e0;
        train_row row = {
            .epoch = (int)s->epoch,
            .train_loss = s->seen ? s->loss_sum / (double)s->seen : NAN,
            .train_acc = s->seen ? (double)s->correct / (double)s->seen : NAN,
            .test_loss = te_loss,
            .test_acc = te_acc,
            .seconds = progress_now() - epoch_t0,
            .train_seconds = s->train_seconds,
            .examples_per_s = s->train_seconds > 0 ? (double)s->seen / s->train_seconds : 0,
            .lr = cur_lr >= 0 ? cur_lr : lr_at(c, s->global_step, spe),
            .sparsity = c->prune > 0 ? pillar_trainer_sparsity(r->t) : 0,
            .train_cpu_seconds = s->train_cpu,
        };
        if (!add_row(s, &row)) return cli_fail(CLI_OTHER, "out of memory");
        progress_epoch_end(&r->p, &row, eval_s);
        /* the state after this epoch: the next one, from its start */
        s->step = 0;
        s->loss_sum = 0;
        s->seen = s->correct = 0;
        s->train_seconds = s->elapsed = s->train_cpu = 0;
        s->epoch++;
        int rc = write_reports(r);
        if (!rc) rc = save_checkpoint(r);
        s->epoch--;
        if (rc) return rc;
    }
    return CLI_OK;
}

int cmd_train(int argc, char **argv) {
    run *r = calloc(1, sizeof *r);
    if (!r) return cli_fail(CLI_OTHER, "out of memory");
    train_cfg *c = &r->c;
    c->epochs = 5;
    c->batch = 64;
    c->opt = PILLAR_OPTIMIZER_ADAM;
    c->lr_gamma = 0.1;
    c->data.holdout = 0.1;
    bool help = false;
    int rc = parse_args(c, argc, argv, &help);
    if (rc || help) {
        if (help) help_train();
        free(r);
        return rc;
    }
    c->data.seed = c->seed;
    bool stopped = false;
    int64_t spe = 0;
    struct sigaction old_int, old_term;
    bool caught = false;

    if ((rc = cli_load_model(c->model, &r->m))) goto done;
    /* the labels are checked against the model's classes while loading (before any
     * split, so that messages give the files' record numbers) */
    if (c->loss != PILLAR_LOSS_MSE) c->data.classes = output_classes(c, r->m);
    {
        char err[2048];
        if ((rc = td_load(&c->data, &r->d, err, sizeof err))) {
            cli_fail(rc, "%s", err);
            goto done;
        }
    }
    if ((rc = model_shapes(c, r->m, &r->d.train, &r->io))) goto done;
    if (r->d.test.n > 0 && r->d.test.feat != r->io.feat) {
        rc = cli_fail(CLI_INPUT, "%s: records hold %lld values, the model takes %lld", r->d.test.xpath,
                      (long long)r->d.test.feat, (long long)r->io.feat);
        goto done;
    }
    spe = r->d.train.n / c->batch;
    if (spe < 1) {
        rc = cli_fail(CLI_USAGE, "train: --batch %lld is larger than the %lld training examples", (long long)c->batch,
                      (long long)r->d.train.n);
        goto done;
    }
    if ((rc = setup_batchers(r))) goto done;
    if ((rc = make_trainer(c, r->m, &r->io, &r->t))) goto done;

    /* checkpoints: --checkpoint, else where --resume came from */
    const char *ck = c->checkpoint ? c->checkpoint : c->resume;
    if (ck) {
        r->ckpt = strdup(ck);
        r->meta = str_cat(ck, ".meta");
        if (!r->ckpt || !r->meta) {
            rc = cli_fail(CLI_OTHER, "out of memory");
            goto done;
        }
    }
    r->s.epoch = 1;
    if (c->resume) {
        char *meta = str_cat(c->resume, ".meta");
        if (!meta) {
            rc = cli_fail(CLI_OTHER, "out of memory");
            goto done;
        }
        rc = read_meta(meta, c->resume, c, &r->d, &r->s);
        free(meta);
        if (rc) goto done;
        pillar_status st = pillar_trainer_restore(r->t, c->resume);
        if (st != PILLAR_OK) {
            rc = cli_fail_status(st, CLI_INPUT);
            goto done;
        }
        if (r->s.step > spe) {
            rc = cli_fail(CLI_INPUT, "--resume %s: the state is at step %lld of an epoch of %lld steps", c->resume,
                          (long long)r->s.step, (long long)spe);
            goto done;
        }
    }
    progress_init(&r->p, stdout, isatty(STDOUT_FILENO) != 0, c->quiet, (int)c->epochs, spe, spe * c->batch);
    print_intro(r, spe);
    for (size_t i = 0; i < r->s.nrows && !c->quiet; i++)
        printf("epoch %d/%lld  (done before)  test acc %.2f%%\n", r->s.rows[i].epoch, (long long)c->epochs,
               r->s.rows[i].test_acc * 100);

    g_stop = 0;
    catch_signals(&old_int, &old_term);
    caught = true;
    double t_start = progress_now();
    rc = train_loop(r, spe, &stopped);
    if (rc) goto done;

    if (stopped) {
        /* Ctrl-C: save where we are, then the model as it is */
        progress_clear(&r->p);
        if (!r->ckpt) {
            r->ckpt = str_cat(c->out, ".ckpt");
            r->meta = r->ckpt ? str_cat(r->ckpt, ".meta") : NULL;
            if (!r->ckpt || !r->meta) {
                rc = cli_fail(CLI_OTHER, "out of memory");
                goto done;
            }
        }
        if ((rc = save_checkpoint(r))) goto done;
        pillar_status st = pillar_trainer_save(r->t, c->out);
        if (st != PILLAR_OK) {
            rc = cli_fail_status(st, CLI_OTHER);
            goto done;
        }
        rc = cli_fail(CLI_INTERRUPTED,
                      "interrupted at epoch %lld, step %lld of %lld: checkpoint written to %s, model to %s; continue with "
                      "--resume %s",
                      (long long)r->s.epoch, (long long)r->s.step, (long long)spe, r->ckpt, c->out, r->ckpt);
        goto done;
    }
    pillar_status st = pillar_trainer_save(r->t, c->out);
    if (st != PILLAR_OK) {
        rc = cli_fail_status(st, CLI_OTHER);
        goto done;
    }
    {
        char hms[32];
        progress_hms(hms, sizeof hms, progress_now() - t_start);
        const train_row *last = r->s.nrows ? &r->s.rows[r->s.nrows - 1] : NULL;
        if (last && !isnan(last->test_acc))
            printf("done: %lld epoch%s in %s; test accuracy %.2f%%, loss %.4f", (long long)c->epochs, c->epochs == 1 ? "" : "s", hms,
                   last->test_acc * 100, last->test_loss);
        else if (last)
            printf("done: %lld epoch%s in %s; train accuracy %.2f%%, loss %.4f", (long long)c->epochs, c->epochs == 1 ? "" : "s", hms,
                   last->train_acc * 100, last->train_loss);
        else
            printf("done: nothing left to train (%lld epochs already done)", (long long)c->epochs);
        if (c->prune > 0) printf("; sparsity %.1f%%", pillar_trainer_sparsity(r->t) * 100);
        printf("; model written to %s\n", c->out);
    }
    rc = CLI_OK;
done:
    if (caught) {
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
    }
    fflush(stdout);
    pillar_trainer_destroy(r->t);
    pillar_model_destroy(r->m);
    td_free(&r->d);
    free(r->tb.x);
    free(r->tb.y);
    free(r->tb.yt);
    free(r->perm);
    free(r->ckpt);
    free(r->meta);
    free(r->s.rows);
    free(r);
    return rc;
}
