/* imagenet.c -- ResNet-50 and MobileNetV2 as torchvision defines them, with the graph
 * torch.onnx.export produces for them in eval mode at opset 13 (BatchNorm folded into
 * conv biases, ReLU6 as Clip(0, 6), AdaptiveAvgPool as GlobalAveragePool + Flatten, the
 * classifier as Gemm with transB=1, dropout gone). Same node and parameter counts as
 * bench/models/export.py's exports; `pillar inspect` shows both side by side.
 *
 * Weight scale: He initialisation keeps the activations' variance through conv+ReLU;
 * the last conv of every residual branch gets a smaller gain so that the identity
 * path does not double the variance at each of the 16 (ResNet) or 10 (MobileNet)
 * additions, which would leave logits in the thousands. */
#include <math.h>
#include <stdio.h>

#include "zoo/zoo.h"

#define RELU_GAIN 1.41421356237309515 /* sqrt(2): He for a ReLU-followed conv */
#define RESIDUAL_GAIN 0.5             /* the conv whose output is added to the identity */

static const int64_t default_chw[3] = {3, 224, 224};

static int flatten(pl_zoo *z, int x) {
    int node, y = pl_zoo_node(z, "Flatten", "/Flatten", 1, &x, &node);
    pl_zoo_attr_int(z, node, "axis", 1);
    return y;
}

/* torchvision Bottleneck (expansion 4): 1x1 -> 3x3 (stride here, v1.5) -> 1x1, with a
 * strided 1x1 projection on the identity when the shape changes. */
static int bottleneck(pl_zoo *z, const char *p, int x, int64_t inplanes, int64_t planes, int stride,
                      bool downsample) {
    char s[128];
    snprintf(s, sizeof s, "%s.conv1", p);
    int o = pl_zoo_conv(z, s, x, inplanes, planes, 1, 1, 1, RELU_GAIN);
    snprintf(s, sizeof s, "%s.relu", p);
    o = pl_zoo_unary(z, "Relu", s, o);
    snprintf(s, sizeof s, "%s.conv2", p);
    o = pl_zoo_conv(z, s, o, planes, planes, 3, stride, 1, RELU_GAIN);
    snprintf(s, sizeof s, "%s.relu_1", p);
    o = pl_zoo_unary(z, "Relu", s, o);
    snprintf(s, sizeof s, "%s.conv3", p);
    o = pl_zoo_conv(z, s, o, planes, planes * 4, 1, 1, 1, RESIDUAL_GAIN);
    int idn = x;
    if (downsample) {
        snprintf(s, sizeof s, "%s.downsample.0", p);
        idn = pl_zoo_conv(z, s, x, inplanes, planes * 4, 1, stride, 1, 1.0);
    }
    o = pl_zoo_add(z, p, o, idn);
    snprintf(s, sizeof s, "%s.relu_2", p);
    return pl_zoo_unary(z, "Relu", s, o);
}

pl_status pl_zoo_resnet50(const int64_t *chw, int64_t classes, uint64_t seed, pl_model **out) {
    if (!chw) chw = default_chw;
    if (!classes) classes = 1000;
    pl_zoo z;
    PL_TRY(pl_zoo_begin(&z, "resnet50", seed));
    int x = pl_zoo_input(&z, "input", 3, chw);
    x = pl_zoo_conv(&z, "conv1", x, chw[0], 64, 7, 2, 1, RELU_GAIN);
    x = pl_zoo_unary(&z, "Relu", "relu", x);
    x = pl_zoo_maxpool(&z, "maxpool", x, 3, 2, 1);
    static const int blocks[4] = {3, 4, 6, 3};
    int64_t inplanes = 64;
    for (int l = 0; l < 4; l++) {
        int64_t planes = (int64_t)64 << l;
        for (int b = 0; b < blocks[l]; b++) {
            char p[64];
            snprintf(p, sizeof p, "layer%d.%d", l + 1, b);
            int stride = b == 0 && l > 0 ? 2 : 1;
            x = bottleneck(&z, p, x, inplanes, planes, stride, b == 0);
            inplanes = planes * 4;
        }
    }
    x = pl_zoo_unary(&z, "GlobalAveragePool", "avgpool", x);
    x = flatten(&z, x);
    x = pl_zoo_linear(&z, "fc", x, inplanes, classes, 1.0);
    return pl_zoo_finish(&z, x, "logits", classes, out);
}

/* torchvision InvertedResidual: [1x1 expand + ReLU6] -> 3x3 depthwise + ReLU6 -> 1x1
 * linear projection, plus the input when the stride is 1 and the width unchanged. */
static int inverted_residual(pl_zoo *z, int idx, int x, int64_t inp, int64_t oup, int stride,
                             int64_t t) {
    char s[128], p[64];
    snprintf(p, sizeof p, "features.%d", idx);
    int64_t hidden = inp * t;
    int o = x, k = 0;
    bool res = stride == 1 && inp == oup;
    if (t != 1) {
        snprintf(s, sizeof s, "%s.conv.%d.0", p, k);
        o = pl_zoo_conv(z, s, o, inp, hidden, 1, 1, 1, RELU_GAIN);
        snprintf(s, sizeof s, "%s.conv.%d.2", p, k++);
        o = pl_zoo_clip(z, s, o, 0.0f, 6.0f);
    }
    snprintf(s, sizeof s, "%s.conv.%d.0", p, k);
    o = pl_zoo_conv(z, s, o, hidden, hidden, 3, stride, hidden, RELU_GAIN);
    snprintf(s, sizeof s, "%s.conv.%d.2", p, k++);
    o = pl_zoo_clip(z, s, o, 0.0f, 6.0f);
    snprintf(s, sizeof s, "%s.conv.%d", p, k);
    o = pl_zoo_conv(z, s, o, hidden, oup, 1, 1, 1, res ? RESIDUAL_GAIN : 1.0);
    return res ? pl_zoo_add(z, p, x, o) : o;
}

pl_status pl_zoo_mobilenet_v2(const int64_t *chw, int64_t classes, uint64_t seed, pl_model **out) {
    if (!chw) chw = default_chw;
    if (!classes) classes = 1000;
    /* expansion t, output channels c, repeats n, first stride s (width multiplier 1) */
    static const int settings[7][4] = {{1, 16, 1, 1}, {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
                                       {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
    pl_zoo z;
    PL_TRY(pl_zoo_begin(&z, "mobilenet_v2", seed));
    int x = pl_zoo_input(&z, "input", 3, chw);
    x = pl_zoo_conv(&z, "features.0.0", x, chw[0], 32, 3, 2, 1, RELU_GAIN);
    x = pl_zoo_clip(&z, "features.0.2", x, 0.0f, 6.0f);
    int64_t inp = 32;
    int idx = 1;
    for (int i = 0; i < 7; i++)
        for (int r = 0; r < settings[i][2]; r++) {
            x = inverted_residual(&z, idx++, x, inp, settings[i][1], r == 0 ? settings[i][3] : 1,
                                  settings[i][0]);
            inp = settings[i][1];
        }
    char s[64];
    snprintf(s, sizeof s, "features.%d.0", idx);
    x = pl_zoo_conv(&z, s, x, inp, 1280, 1, 1, 1, RELU_GAIN);
    snprintf(s, sizeof s, "features.%d.2", idx);
    x = pl_zoo_clip(&z, s, x, 0.0f, 6.0f);
    x = pl_zoo_unary(&z, "GlobalAveragePool", "avgpool", x);
    x = flatten(&z, x);
    x = pl_zoo_linear(&z, "classifier.1", x, 1280, classes, 1.0);
    return pl_zoo_finish(&z, x, "logits", classes, out);
}
