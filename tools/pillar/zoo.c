/* zoo.c -- `pillar zoo NAME --out M.onnx`: writes a ready-made architecture with seeded
 * random weights (pillar_model_zoo) as an ONNX file, to train with `pillar train` or
 * to benchmark. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cmd_zoo(int argc, char **argv);
void help_zoo(void);

static const struct {
    const char *name, *what;
} archs[] = {
    {"mlp", "fully connected 256-128-classes with ReLU; input [batch, C*H*W]"},
    {"lenet", "LeNet-style CNN: conv5x5(32)-relu-pool, conv5x5(64)-relu-pool, fc 256, fc 128, fc"},
    {"lenet_bn", "the same with BatchNorm after each convolution"},
    {"resnet8", "small ResNet: conv(16), three basic blocks of 16, 32, 64 channels, BatchNorm"},
    {"resnet50", "torchvision's ResNet-50 (BatchNorm folded), default 3x224x224, 1000 classes"},
    {"mobilenet_v2", "MobileNetV2 (BatchNorm folded), default 3x224x224, 1000 classes"},
};

void help_zoo(void) {
    printf("usage: pillar zoo NAME --out M.onnx [--input CxHxW] [--classes N] [--seed S]\n"
           "       pillar zoo --list\n"
           "\n"
           "Writes architecture NAME with seeded random weights as an ONNX model (input\n"
           "\"input\" with a symbolic batch dimension, output \"logits\"), ready for\n"
           "'pillar train', 'pillar bench' or ONNX Runtime.\n"
           "\n"
           "architectures:\n");
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++) printf("  %-13s %s\n", archs[i].name, archs[i].what);
    printf("\n"
           "options:\n"
           "  --out FILE      the ONNX file to write (required)\n"
           "  --input CxHxW   input channels, height, width (default 1x28x28 for the small\n"
           "                  ones, e.g. 3x32x32 for CIFAR-sized images)\n"
           "  --classes N     number of outputs (default 10, or 1000 for the ImageNet ones)\n"
           "  --seed S        seed of the random weights (default 0)\n"
           "  --list          list the architectures\n"
           "  -h, --help      show this help\n");
}

int cmd_zoo(int argc, char **argv) {
    cli_args a;
    cli_args_init(&a, "zoo", argc, argv);
    char flag[64];
    const char *v, *name = NULL, *out = NULL;
    int64_t chw[3], classes = 0;
    bool have_chw = false;
    uint64_t seed = 0;
    while (cli_args_next(&a, flag, sizeof flag, &v)) {
        if (!flag[0]) {
            if (name) return cli_usage_error("zoo", "more than one architecture given ('%s' and '%s')", name, v);
            name = v;
        } else if (!strcmp(flag, "-h") || !strcmp(flag, "--help")) {
            help_zoo();
            return CLI_OK;
        } else if (!strcmp(flag, "--list")) {
            for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++) printf("%-13s %s\n", archs[i].name, archs[i].what);
            return CLI_OK;
        } else if (!strcmp(flag, "--out")) {
            if (!cli_args_value(&a, flag, &out)) return CLI_USAGE;
        } else if (!strcmp(flag, "--input")) {
            size_t nd = 0;
            int64_t dims[PILLAR_MAX_DIMS];
            char err[256];
            if (!cli_args_value(&a, flag, &v)) return CLI_USAGE;
            if (!cli_parse_dims(v, &nd, dims, err, sizeof err))
                return cli_usage_error("zoo", "--input: %s", err);
            if (nd != 3 || dims[0] < 1 || dims[1] < 1 || dims[2] < 1)
                return cli_usage_error("zoo", "--input: '%s' is not CxHxW with each at least 1, e.g. 3x32x32", v);
            memcpy(chw, dims, sizeof chw);
            have_chw = true;
        } else if (!strcmp(flag, "--classes")) {
            if (!cli_args_value(&a, flag, &v)) return CLI_USAGE;
            if (!cli_parse_int(v, 1, 1 << 24, &classes))
                return cli_usage_error("zoo", "--classes: '%s' is not a number from 1 to %d", v, 1 << 24);
        } else if (!strcmp(flag, "--seed")) {
            if (!cli_args_value(&a, flag, &v)) return CLI_USAGE;
            char *end;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 10);
            if (errno || *end || end == v || v[0] == '-')
                return cli_usage_error("zoo", "--seed: '%s' is not a non-negative whole number", v);
            seed = s;
        } else {
            return cli_usage_error("zoo", "unknown option '%s'", flag);
        }
    }
    if (!name) return cli_usage_error("zoo", "no architecture given (one of mlp, lenet, lenet_bn, resnet8, resnet50, mobilenet_v2)");
    if (!out) return cli_usage_error("zoo", "no output file given (--out M.onnx)");
    pillar_model *m = NULL;
    pillar_status st = pillar_model_zoo(name, have_chw ? chw : NULL, classes, seed, &m);
    if (st == PILLAR_ERR_ARGUMENT) {
        cli_fail_status(st, CLI_OTHER);
        return CLI_USAGE;
    }
    if (st != PILLAR_OK) return cli_fail_status(st, CLI_OTHER);
    st = pillar_model_save(m, out);
    if (st != PILLAR_OK) {
        pillar_model_destroy(m);
        return cli_fail_status(st, CLI_OTHER);
    }
    char in[128], outd[128];
    const char *iname = "?", *oname = "?";
    size_t nd = 0, ond = 0;
    const int64_t *dims = NULL, *odims = NULL;
    pillar_model_input(m, 0, &iname, NULL, &nd, &dims);
    pillar_model_output(m, 0, &oname, NULL, &ond, &odims);
    const char *names[PILLAR_MAX_DIMS] = {"batch"};
    printf("wrote %s to %s: input '%s' %s, output '%s' %s, seed %llu\n", name, out, iname,
           cli_dims_str(in, sizeof in, (long)nd, dims, names), oname, cli_dims_str(outd, sizeof outd, (long)ond, odims, names),
           (unsigned long long)seed);
    pillar_model_destroy(m);
    return CLI_OK;
}
