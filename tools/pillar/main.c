/* main.c -- the pillar command-line program: dispatches to one subcommand per file
 * (inspect.c, run.c, bench.c) and prints the general help. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* bench.c (declared here: cli.h lists the commands of the first CLI files) */
int cmd_bench(int argc, char **argv);
void help_bench(void);
/* train.c, zoo.c */
int cmd_train(int argc, char **argv);
void help_train(void);
int cmd_zoo(int argc, char **argv);
void help_zoo(void);
int cmd_serve(int argc, char **argv);
void help_serve(void); /* serve.c */
int cmd_quantize(int argc, char **argv); /* quantize.c */
void help_quantize(void);
int cmd_prune(int argc, char **argv);
void help_prune(void); /* prune.c */

typedef struct command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
    void (*help)(void);
} command;

static const command commands[] = {
    {"inspect", "show a model's inputs, outputs, layers, weights and cost", cmd_inspect,
     help_inspect},
    {"run", "run a model on .npy inputs (or random ones) and save the outputs", cmd_run, help_run},
    {"bench", "time a model (default: a built-in ResNet-50): latency, items/s, memory", cmd_bench,
     help_bench},
    {"train", "train a model's weights on a data set (SGD/Adam, pruning, checkpoints)", cmd_train,
     help_train},
    {"zoo", "write a ready-made architecture (mlp, lenet, resnet8, ...) as ONNX", cmd_zoo,
     help_zoo},
    {"train-xc", "train an extreme-classification network with LSH-sampled outputs", cmd_train_xc,
     help_train_xc},
    {"serve", "serve models over HTTP (KServe v2 REST, dynamic batching, metrics)", cmd_serve,
     help_serve},
    {"quantize", "INT8-quantize a model (QDQ format) from calibration data", cmd_quantize,
     help_quantize},
    {"prune", "zero a model's smallest weights (magnitude pruning) and save it as ONNX", cmd_prune,
     help_prune},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static const command *find_command(const char *name) {
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0) return &commands[i];
    return NULL;
}

static void help_main(FILE *f) {
    fprintf(f,
            "pillar %s -- deep-learning inference on CPUs\n"
            "\n"
            "usage: pillar COMMAND [ARGS]\n"
            "       pillar help [COMMAND]\n"
            "       pillar --version\n"
            "\n"
            "commands:\n",
            pillar_version());
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "  %-10s %s\n", "help", "show help for a command");
    fprintf(f,
            "\n"
            "exit codes:\n"
            "  0  success\n"
            "  1  usage error (unknown command or flag, missing or malformed argument)\n"
            "  2  model problem (unreadable, corrupt or inconsistent model, unsupported op/type)\n"
            "  3  input problem (bad .npy file, wrong input type or shape, missing --shape)\n"
            "  4  other failure (writing outputs, out of memory, internal error)\n"
            "\n"
            "Run 'pillar COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        help_main(stderr);
        return CLI_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0 || strcmp(cmd, "version") == 0) {
        if (argc > 2) return cli_usage_error(NULL, "--version takes no arguments");
        printf("pillar %s\n", pillar_version());
        return CLI_OK;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        if (argc == 2 || strcmp(cmd, "help") != 0) {
            if (argc > 2) return cli_usage_error(NULL, "%s takes no arguments", cmd);
            help_main(stdout);
            return CLI_OK;
        }
        if (argc > 3) return cli_usage_error(NULL, "help takes at most one command");
        if (strcmp(argv[2], "help") == 0) {
            help_main(stdout);
            return CLI_OK;
        }
        const command *c = find_command(argv[2]);
        if (!c) return cli_usage_error(NULL, "unknown command '%s'", argv[2]);
        c->help();
        return CLI_OK;
    }
    const command *c = find_command(cmd);
    if (!c) {
        if (cmd[0] == '-') return cli_usage_error(NULL, "unknown option '%s'", cmd);
        return cli_usage_error(NULL, "unknown command '%s'", cmd);
    }
    return c->run(argc - 2, argv + 2);
}
