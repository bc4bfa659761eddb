/* quantize.c -- `pillar quantize`: static INT8 quantisation of a model into ONNX
 * Runtime's QDQ format (pillar_model_quantize), calibrated on .npy files or on a folder
 * of PPM/PGM images (no image library is a dependency of pillar; convert PNG/JPEG with
 * any tool to PPM first). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

void help_quantize(void);
int cmd_quantize(int argc, char **argv);

void help_quantize(void) {
    printf(
        "usage: pillar quantize MODEL --calibration DATA --out OUT.onnx [options]\n"
        "\n"
        "Static INT8 quantisation, written in ONNX Runtime's QDQ format (ONNX Runtime runs the\n"
        "result too): the weights of Conv, Gemm and MatMul become int8, symmetric, one scale\n"
        "per output channel (zeros, e.g. from pruning, stay zeros); their float inputs and\n"
        "outputs go through QuantizeLinear/DequantizeLinear with uint8 ranges measured on the\n"
        "calibration data; biases become int32.\n"
        "\n"
        "DATA is one of:\n"
        "  FILE.npy          samples of the (single) input stacked along axis 0\n"
        "  DIR               DIR/<input name>.npy for every input (samples along axis 0), or\n"
        "                    .npy files of the single input (one or more samples each), or\n"
        "                    .ppm/.pgm images (binary P6/P5), resized to the input's H x W\n"
        "\n"
        "options:\n"
        "  --method minmax|percentile  range of each activation (default minmax)\n"
        "  --percentile P        percentile method: keep P%% of the values (default 99.99)\n"
        "  --samples N           use the first N samples (default: all)\n"
        "  --per-tensor          one scale per weight tensor instead of per channel\n"
        "  --exclude NODE,...    leave these nodes in float32\n"
        "  --normalize imagenet|unit  images: ImageNet mean/std (default for 3 channels) or\n"
        "                        just [0, 1] (default for 1 channel)\n"
        "  --threads N           threads for the calibration runs (default: all cores)\n"
        "  --out OUT.onnx        the quantized model (required)\n");
}

/* ---------------------------------------------------------------- calibration data */

typedef struct input_info {
    const char *name;
    pillar_dtype dtype;
    size_t ndim;
    const int64_t *dims;
} input_info;

typedef struct samples {
    pillar_tensor **arrays; /* loaded files, owned */
    size_t narrays, cap_arrays;
    pillar_tensor **views;  /* per sample per input, borrowing the arrays */
    size_t nviews, cap_views;
} samples;

static bool push(void ***list, size_t *n, size_t *cap, void *p) {
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 64;
        void **l = realloc(*list, c * sizeof *l);
        if (!l) return false;
        *list = l;
        *cap = c;
    }
    (*list)[(*n)++] = p;
    return true;
}

static void samples_free(samples *s) {
    for (size_t i = 0; i < s->nviews; i++) pillar_tensor_destroy(s->views[i]);
    for (size_t i = 0; i < s->narrays; i++) pillar_tensor_destroy(s->arrays[i]);
    free(s->views);
    free(s->arrays);
}

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcasecmp(s + a - b, suf) == 0;
}

/* Splits array `t` of input `in` into runs of one batch each: rank = input rank - 1 is
 * one sample; rank = input rank is samples along axis 0, fed in batches of the input's
 * fixed batch size (1 when symbolic). Returns the number of runs, or -1 (message
 * printed). views[k] receives run k. */
static long split(const input_info *in, pillar_tensor *t, const char *file, pillar_tensor ***views, long max) {
    size_t nd = pillar_tensor_ndim(t);
    const int64_t *d = pillar_tensor_dims(t);
    if (pillar_tensor_dtype(t) != in->dtype && in->dtype != PILLAR_UNDEFINED) {
        cli_fail(CLI_INPUT, "calibration file '%s' holds %s, input '%s' expects %s", file,
                 pillar_dtype_name(pillar_tensor_dtype(t)), in->name, pillar_dtype_name(in->dtype));
        return -1;
    }
    int64_t dims[PILLAR_MAX_DIMS];
    int64_t batch, count;
    if (in->ndim >= 1 && nd + 1 == in->ndim) {
        dims[0] = 1;
        memcpy(dims + 1, d, nd * sizeof *d);
        batch = 1;
        count = 1;
    } else if (nd == in->ndim && nd >= 1) {
        memcpy(dims, d, nd * sizeof *d);
        batch = in->dims && in->dims[0] > 0 ? in->dims[0] : 1;
        if (d[0] % batch != 0 || d[0] == 0) {
            cli_fail(CLI_INPUT, "calibration file '%s' has %lld samples, not a multiple of input '%s''s batch %lld", file,
                     (long long)d[0], in->name, (long long)batch);
            return -1;
        }
        count = d[0] / batch;
    } else {
        cli_fail(CLI_INPUT, "calibration file '%s' has %zu dims; input '%s' needs %zu (samples along axis 0) or %zu",
                 file, nd, in->name, in->ndim, in->ndim ? in->ndim - 1 : 0);
        return -1;
    }
    for (size_t k = 1; k < in->ndim; k++)
        if (in->dims && in->dims[k] >= 0 && in->dims[k] != dims[k]) {
            cli_fail(CLI_INPUT, "calibration file '%s': dimension %zu is %lld, input '%s' expects %lld", file, k,
                     (long long)dims[k], in->name, (long long)in->dims[k]);
            return -1;
        }
    dims[0] = batch;
    if (count > max) count = max;
    size_t per = pillar_dtype_size(pillar_tensor_dtype(t));
    for (size_t k = 1; k < in->ndim; k++) per *= (size_t)dims[k];
    *views = calloc((size_t)(count ? count : 1), sizeof **views);
    if (!*views) {
        cli_fail(CLI_OTHER, "out of memory");
        return -1;
    }
    for (int64_t k = 0; k < count; k++) {
        char *base = (char *)pillar_tensor_data(t) + (size_t)k * (size_t)batch * per;
        if (pillar_tensor_wrap(pillar_tensor_dtype(t), in->ndim, dims, base, &(*views)[k]) != PILLAR_OK) {
            for (int64_t j = 0; j < k; j++) pillar_tensor_destroy((*views)[j]);
            free(*views);
            cli_fail_status(PILLAR_ERR_NOMEM, CLI_OTHER);
            return -1;
        }
    }
    return (long)count;
}

/* Reads a binary PPM (P6) or PGM (P5) with maxval <= 255. */
static int read_pnm(const char *path, int *w, int *h, int *c, unsigned char **pix) {
    FILE *f = fopen(path, "rb");
    if (!f) return cli_fail(CLI_INPUT, "calibration image '%s': %s", path, strerror(errno));
    char magic[3] = {0};
    int maxv = 0, ok = fread(magic, 1, 2, f) == 2 && magic[0] == 'P' && (magic[1] == '5' || magic[1] == '6');
    int vals[3], nv = 0;
    while (ok && nv < 3) {
        int ch = fgetc(f);
        if (ch == '#') {
            while (ch != '\n' && ch != EOF) ch = fgetc(f);
        } else if (ch >= '0' && ch <= '9') {
            int v = ch - '0';
            while ((ch = fgetc(f)) >= '0' && ch <= '9' && v < 100000) v = v * 10 + (ch - '0');
            vals[nv++] = v;
        } else if (ch == EOF) {
            ok = 0;
        }
    }
    if (ok) {
        *w = vals[0];
        *h = vals[1];
        maxv = vals[2];
        *c = magic[1] == '6' ? 3 : 1;
        ok = *w > 0 && *h > 0 && *w <= 65536 && *h <= 65536 && maxv > 0 && maxv <= 255;
    }
    if (!ok) {
        fclose(f);
        return cli_fail(CLI_INPUT, "calibration image '%s': not a binary PPM/PGM (P6/P5) with 8-bit samples", path);
    }
    size_t n = (size_t)*w * (size_t)*h * (size_t)*c;
    *pix = malloc(n);
    if (!*pix) {
        fclose(f);
        return cli_fail(CLI_OTHER, "out of memory reading '%s'", path);
    }
    size_t got = fread(*pix, 1, n, f);
    fclose(f);
    if (got != n) {
        free(*pix);
        return cli_fail(CLI_INPUT, "calibration image '%s': truncated (%zu of %zu bytes)", path, got, n);
    }
    if (maxv != 255)
        for (size_t i = 0; i < n; i++) (*pix)[i] = (unsigned char)((*pix)[i] * 255 / maxv);
    return CLI_OK;
}

/* An image as one sample of a float input [1, C, H, W] (or [1, H, W, C]): bilinear
 * resize, channels converted, scaled to [0, 1], then ImageNet mean/std if asked. */
static int image_sample(const input_info *in, const char *path, bool imagenet, pillar_tensor **out) {
    if (in->dtype != PILLAR_FLOAT32 || in->ndim != 4 || !in->dims)
        return cli_fail(CLI_INPUT, "images need a float32 input of 4 dims; input '%s' is not", in->name);
    bool nchw = in->dims[1] == 1 || in->dims[1] == 3;
    int64_t C = nchw ? in->dims[1] : in->dims[3], H = nchw ? in->dims[2] : in->dims[1], W = nchw ? in->dims[3] : in->dims[2];
    if ((C != 1 && C != 3) || H <= 0 || W <= 0)
        return cli_fail(CLI_INPUT, "input '%s' needs a fixed shape [N, 1|3, H, W] or [N, H, W, 1|3] to take images", in->name);
    int w, h, c;
    unsigned char *pix;
    int rc = read_pnm(path, &w, &h, &c, &pix);
    if (rc) return rc;
    int64_t dims[4] = {1, nchw ? C : H, nchw ? H : W, nchw ? W : C};
    if (pillar_tensor_create(PILLAR_FLOAT32, 4, dims, NULL, out) != PILLAR_OK) {
        free(pix);
        return cli_fail_status(PILLAR_ERR_NOMEM, CLI_OTHER);
    }
    float *o = pillar_tensor_data(*out);
    static const float mean[3] = {0.485f, 0.456f, 0.406f}, sd[3] = {0.229f, 0.224f, 0.225f};
    for (int64_t y = 0; y < H; y++) {
        float sy = ((float)y + 0.5f) * (float)h / (float)H - 0.5f;
        if (sy < 0) sy = 0;
        int y0 = (int)sy, y1 = y0 + 1 < h ? y0 + 1 : y0;
        float fy = sy - (float)y0;
        for (int64_t x = 0; x < W; x++) {
            float sx = ((float)x + 0.5f) * (float)w / (float)W - 0.5f;
            if (sx < 0) sx = 0;
            int x0 = (int)sx, x1 = x0 + 1 < w ? x0 + 1 : x0;
            float fx = sx - (float)x0;
            float px[3];
            for (int k = 0; k < c; k++) {
#define P(yy, xx) (float)pix[((size_t)(yy) * (size_t)w + (size_t)(xx)) * (size_t)c + (size_t)k]
                px[k] = ((1 - fy) * ((1 - fx) * P(y0, x0) + fx * P(y0, x1)) + fy * ((1 - fx) * P(y1, x0) + fx * P(y1, x1))) /
                        255.0f;
#undef P
            }
            for (int64_t k = 0; k < C; k++) {
                float v = c == 3 && C == 1 ? (px[0] + px[1] + px[2]) / 3.0f : px[c == 3 ? k : 0];
                if (imagenet && C == 3) v = (v - mean[k]) / sd[k];
                o[nchw ? (k * H + y) * W + x : (y * W + x) * C + k] = v;
            }
        }
    }
    free(pix);
    return CLI_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The sorted names of DIR's regular files. */
static int list_dir(const char *dir, char ***names, size_t *n) {
    DIR *d = opendir(dir);
    if (!d) return cli_fail(CLI_INPUT, "--calibration '%s': %s", dir, strerror(errno));
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char *s = strdup(e->d_name);
        if (!s || !push((void ***)names, n, &cap, s)) {
            free(s);
            closedir(d);
            return cli_fail(CLI_OTHER, "out of memory");
        }
    }
    closedir(d);
    if (*n) qsort(*names, *n, sizeof **names, cmp_str);
    return CLI_OK;
}

static int add_views(samples *s, pillar_tensor **v, long n) {
    for (long k = 0; k < n; k++)
        if (!push((void ***)&s->views, &s->nviews, &s->cap_views, v[k])) {
            for (long j = k; j < n; j++) pillar_tensor_destroy(v[j]);
            free(v);
            return cli_fail(CLI_OTHER, "out of memory");
        }
    free(v);
    return CLI_OK;
}

static int load_npy(samples *s, const char *path, pillar_tensor **t) {
    pillar_status st = pillar_tensor_load_npy(path, t);
    if (st != PILLAR_OK) return cli_fail_status(st, CLI_INPUT);
    if (!push((void ***)&s->arrays, &s->narrays, &s->cap_arrays, *t)) {
        pillar_tensor_destroy(*t);
        return cli_fail(CLI_OTHER, "out of memory");
    }
    return CLI_OK;
}

/* Loads DATA into runs: s->views holds nsamples x ninputs tensors in input order. */
static int load_calibration(samples *s, const char *data, const input_info *in, size_t nin, long max, bool imagenet,
                            bool imagenet_set, size_t *nsamples) {
    struct stat sb;
    if (stat(data, &sb) != 0) return cli_fail(CLI_INPUT, "--calibration '%s': %s", data, strerror(errno));
    if (nin == 0) return cli_fail(CLI_INPUT, "the model has no inputs to calibrate");
    int rc = CLI_OK;
    if (!S_ISDIR(sb.st_mode)) {
        if (nin != 1)
            return cli_fail(CLI_INPUT, "--calibration '%s': the model has %zu inputs; give a directory with <input name>.npy each",
                            data, nin);
        pillar_tensor *t, **v;
        if ((rc = load_npy(s, data, &t))) return rc;
        long n = split(&in[0], t, data, &v, max);
        if (n < 0) return CLI_INPUT;
        *nsamples = (size_t)n;
        return add_views(s, v, n);
    }
    char **names = NULL;
    size_t nn = 0;
    if ((rc = list_dir(data, &names, &nn))) return rc;
    size_t plen = strlen(data) + 512;
    char *path = malloc(plen);
    if (!path) rc = cli_fail(CLI_OTHER, "out of memory");
    /* 1. <input name>.npy for every input */
    size_t have = 0;
    for (size_t i = 0; i < nin; i++)
        for (size_t f = 0; f < nn; f++)
            if (ends_with(names[f], ".npy") && strlen(names[f]) == strlen(in[i].name) + 4 &&
                !strncmp(names[f], in[i].name, strlen(in[i].name)))
                have++;
    if (!rc && have == nin) {
        pillar_tensor ***per = calloc(nin, sizeof *per);
        long count = -1;
        if (!per) rc = cli_fail(CLI_OTHER, "out of memory");
        for (size_t i = 0; !rc && i < nin; i++) {
            snprintf(path, plen, "%s/%s.npy", data, in[i].name);
            pillar_tensor *t;
            if ((rc = load_npy(s, path, &t))) break;
            long n = split(&in[i], t, path, &per[i], max);
            if (n < 0) {
                rc = CLI_INPUT;
                break;
            }
            if (count >= 0 && n != count)
                rc = cli_fail(CLI_INPUT, "--calibration '%s': %s.npy gives %ld samples, %s.npy %ld", data, in[i].name, n,
                              in[0].name, count);
            count = n;
        }
        for (long k = 0; !rc && k < count; k++)
            for (size_t i = 0; i < nin; i++) {
                if (!push((void ***)&s->views, &s->nviews, &s->cap_views, per[i][k])) rc = cli_fail(CLI_OTHER, "out of memory");
                else per[i][k] = NULL;
            }
        for (size_t i = 0; per && i < nin; i++) {
            for (long k = 0; per[i] && k < count; k++) pillar_tensor_destroy(per[i][k]);
            free(per[i]);
        }
        free(per);
        if (!rc) *nsamples = (size_t)(count < 0 ? 0 : count);
    } else if (!rc && nin != 1) {
        rc = cli_fail(CLI_INPUT, "--calibration '%s': the model has %zu inputs; the directory needs <input name>.npy for each",
                      data, nin);
    } else if (!rc) {
        /* 2. any .npy files, or images, of the single input */
        if (!imagenet_set) imagenet = in[0].ndim == 4 && in[0].dims && (in[0].dims[1] == 3 || in[0].dims[3] == 3);
        size_t used = 0;
        for (size_t f = 0; !rc && f < nn && (long)s->nviews < max; f++) {
            snprintf(path, plen, "%s/%s", data, names[f]);
            if (ends_with(names[f], ".npy")) {
                pillar_tensor *t, **v;
                if ((rc = load_npy(s, path, &t))) break;
                long n = split(&in[0], t, path, &v, max - (long)s->nviews);
                if (n < 0) rc = CLI_INPUT;
                else rc = add_views(s, v, n);
                used++;
            } else if (ends_with(names[f], ".ppm") || ends_with(names[f], ".pgm")) {
                pillar_tensor *t;
                if ((rc = image_sample(&in[0], path, imagenet, &t))) break;
                if (!push((void ***)&s->views, &s->nviews, &s->cap_views, t)) {
                    pillar_tensor_destroy(t);
                    rc = cli_fail(CLI_OTHER, "out of memory");
                }
                used++;
            }
        }
        if (!rc && used == 0)
            rc = cli_fail(CLI_INPUT, "--calibration '%s': no .npy, .ppm or .pgm files (PNG/JPEG: convert to PPM first)", data);
        *nsamples = s->nviews;
    }
    for (size_t f = 0; f < nn; f++) free(names[f]);
    free(names);
    free(path);
    if (!rc && *nsamples == 0) rc = cli_fail(CLI_INPUT, "--calibration '%s': no samples", data);
    return rc;
}

/* ---------------------------------------------------------------- the command */

int cmd_quantize(int argc, char **argv) {
    cli_args a;
    char flag[64];
    const char *v, *model = NULL, *data = NULL, *out = NULL, *exclude = NULL;
    int64_t nsamp = INT32_MAX, threads = 0;
    double pct = 99.99;
    bool pct_set = false, per_tensor = false, imagenet = false, imagenet_set = false;
    pillar_calibration method = PILLAR_CALIBRATE_MINMAX;
    cli_args_init(&a, "quantize", argc, argv);
    while (cli_args_next(&a, flag, sizeof flag, &v)) {
        if (!flag[0]) {
            if (model) return cli_usage_error("quantize", "unexpected argument '%s'", v);
            model = v;
        } else if (!strcmp(flag, "-h") || !strcmp(flag, "--help")) {
            help_quantize();
            return CLI_OK;
        } else if (!strcmp(flag, "--per-tensor")) {
            per_tensor = true;
        } else {
            if (!cli_args_value(&a, flag, &v)) return CLI_USAGE;
            if (!strcmp(flag, "--calibration")) data = v;
            else if (!strcmp(flag, "--out")) out = v;
            else if (!strcmp(flag, "--exclude")) exclude = v;
            else if (!strcmp(flag, "--method")) {
                if (!strcmp(v, "minmax")) method = PILLAR_CALIBRATE_MINMAX;
                else if (!strcmp(v, "percentile")) method = PILLAR_CALIBRATE_PERCENTILE;
                else return cli_usage_error("quantize", "--method: '%s' is not minmax or percentile", v);
            } else if (!strcmp(flag, "--percentile")) {
                char *end;
                errno = 0;
                pct = strtod(v, &end);
                if (errno || *end || end == v || !(pct > 50.0 && pct <= 100.0))
                    return cli_usage_error("quantize", "--percentile: '%s' is not a number in (50, 100]", v);
                pct_set = true;
            } else if (!strcmp(flag, "--samples")) {
                if (!cli_parse_int(v, 1, INT32_MAX, &nsamp))
                    return cli_usage_error("quantize", "--samples: '%s' is not a positive integer", v);
            } else if (!strcmp(flag, "--threads")) {
                if (!cli_parse_int(v, 0, 1024, &threads))
                    return cli_usage_error("quantize", "--threads: '%s' is not an integer in 0..1024", v);
            } else if (!strcmp(flag, "--normalize")) {
                if (strcmp(v, "imagenet") && strcmp(v, "unit"))
                    return cli_usage_error("quantize", "--normalize: '%s' is not imagenet or unit", v);
                imagenet = !strcmp(v, "imagenet");
                imagenet_set = true;
            } else
                return cli_usage_error("quantize", "unknown option '%s'", flag);
        }
    }
    if (!model) return cli_usage_error("quantize", "missing MODEL");
    if (!data) return cli_usage_error("quantize", "missing --calibration DATA");
    if (!out || !*out) return cli_usage_error("quantize", "missing --out OUT.onnx");
    if (pct_set && method != PILLAR_CALIBRATE_PERCENTILE)
        return cli_usage_error("quantize", "--percentile needs --method percentile");

    pillar_model *m = NULL, *q = NULL;
    pillar_quantize_options *o = NULL;
    samples s = {0};
    input_info *in = NULL;
    size_t n = 0;
    int rc = cli_load_model(model, &m);
    if (rc) return rc;
    size_t nin = pillar_model_input_count(m);
    in = calloc(nin ? nin : 1, sizeof *in);
    if (!in) rc = cli_fail(CLI_OTHER, "out of memory");
    for (size_t i = 0; !rc && i < nin; i++)
        pillar_model_input(m, i, &in[i].name, &in[i].dtype, &in[i].ndim, &in[i].dims);
    if (!rc) rc = load_calibration(&s, data, in, nin, (long)nsamp, imagenet, imagenet_set, &n);
    pillar_status st = PILLAR_OK;
    if (!rc) {
        st = pillar_quantize_options_create(&o);
        if (st == PILLAR_OK) st = pillar_quantize_options_set_method(o, method, pct);
        if (st == PILLAR_OK) st = pillar_quantize_options_set_per_tensor(o, per_tensor);
        if (st == PILLAR_OK) st = pillar_quantize_options_set_threads(o, (int)threads);
        for (const char *p = exclude; st == PILLAR_OK && p && *p;) {
            const char *c = strchr(p, ',');
            size_t len = c ? (size_t)(c - p) : strlen(p);
            char name[512];
            if (len == 0 || len >= sizeof name) {
                rc = cli_usage_error("quantize", "--exclude: empty or too long node name in '%s'", exclude);
                break;
            }
            memcpy(name, p, len);
            name[len] = 0;
            st = pillar_quantize_options_exclude(o, name);
            p = c ? c + 1 : p + len;
        }
        if (!rc && st != PILLAR_OK) rc = cli_fail_status(st, CLI_OTHER);
    }
    if (!rc) {
        st = pillar_model_quantize(m, o, n, (const pillar_tensor *const *)s.views, &q);
        if (st != PILLAR_OK) rc = st == PILLAR_ERR_ARGUMENT ? cli_fail(CLI_USAGE, "%s", pillar_last_error())
                                                           : cli_fail_status(st, CLI_OTHER);
    }
    if (!rc) {
        st = pillar_model_save(q, out);
        if (st != PILLAR_OK) rc = cli_fail_status(st, CLI_OTHER);
        else printf("quantized %s on %zu calibration run%s -> %s\n", model, n, n == 1 ? "" : "s", out);
    }
    pillar_model_destroy(q);
    pillar_quantize_options_destroy(o);
    samples_free(&s);
    free(in);
    pillar_model_destroy(m);
    return rc;
}
