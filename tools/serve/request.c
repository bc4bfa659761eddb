/* request.c -- KServe v2 inference requests (JSON tensors and the binary-data
 * extension) parsed into pillar tensors, and responses written back. No HTTP here. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "request.h"

/* ---------------------------------------------------------------- byte buffers */

static bool buf_reserve(srv_buf *b, size_t extra) {
    if (b->oom) return false;
    if (extra > SIZE_MAX / 2 - b->n) {
        b->oom = true;
        return false;
    }
    if (b->n + extra + 1 <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + extra + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

bool srv_buf_reserve_exact(srv_buf *b, size_t n) {
    if (b->oom || n > SIZE_MAX / 2 - b->n) return false;
    if (b->n + n + 1 <= b->cap) return true;
    char *p = realloc(b->p, b->n + n + 1);
    if (!p) return false;
    b->p = p;
    b->cap = b->n + n + 1;
    return true;
}

void srv_buf_put(srv_buf *b, const void *data, size_t n) {
    if (!n || !buf_reserve(b, n)) return;
    memcpy(b->p + b->n, data, n);
    b->n += n;
    b->p[b->n] = 0;
}

void srv_buf_puts(srv_buf *b, const char *s) {
    srv_buf_put(b, s, strlen(s));
}

void srv_buf_printf(srv_buf *b, const char *fmt, ...) {
    if (!buf_reserve(b, 64)) return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
    va_end(ap);
    if (k < 0) return;
    if ((size_t)k >= b->cap - b->n) {
        if (!buf_reserve(b, (size_t)k)) return;
        va_start(ap, fmt);
        vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
    }
    b->n += (size_t)k;
}

void srv_buf_json_str(srv_buf *b, const char *s) {
    srv_buf_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\') {
            char e[2] = {'\\', (char)*p};
            srv_buf_put(b, e, 2);
        } else if (*p < 0x20) {
            srv_buf_printf(b, "\\u%04x", *p);
        } else {
            srv_buf_put(b, p, 1);
        }
    }
    srv_buf_put(b, "\"", 1);
}

void srv_buf_free(srv_buf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* ---------------------------------------------------------------- 16-bit floats */

uint16_t srv_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) return (uint16_t)(sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 : 0));
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* >= 65520 rounds to inf */
    if (ax < 0x38800000u) {                                  /* half subnormal or zero */
        if (ax < 0x33000000u) return sign;
        uint32_t e = ax >> 23, m = (ax & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e, q = m >> shift, rem = m & ((1u << shift) - 1),
                 half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) q++;
        return (uint16_t)(sign | q);
    }
    uint32_t r = ax - 0x38000000u, q = r >> 13, rem = r & 0x1fffu;
    if (rem > 0x1000 || (rem == 0x1000 && (q & 1))) q++;
    return (uint16_t)(sign | q);
}

float srv_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, x;
    if (e == 0) {
        float f = (float)m * (1.0f / 16777216.0f);
        memcpy(&x, &f, 4);
        x |= sign;
    } else if (e == 31) {
        x = sign | 0x7f800000u | (m << 13);
    } else {
        x = sign | ((e + 112) << 23) | (m << 13);
    }
    float f;
    memcpy(&f, &x, 4);
    return f;
}

uint16_t srv_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1)) >> 16);
}

float srv_bf16_to_f32(uint16_t h) {
    uint32_t x = (uint32_t)h << 16;
    float f;
    memcpy(&f, &x, 4);
    return f;
}

/* ---------------------------------------------------------------- datatypes */

static const struct {
    pillar_dtype t;
    const char *name;
} dtype_names[] = {
    {PILLAR_BOOL, "BOOL"},     {PILLAR_UINT8, "UINT8"},   {PILLAR_UINT16, "UINT16"},
    {PILLAR_UINT32, "UINT32"}, {PILLAR_UINT64, "UINT64"}, {PILLAR_INT8, "INT8"},
    {PILLAR_INT16, "INT16"},   {PILLAR_INT32, "INT32"},   {PILLAR_INT64, "INT64"},
    {PILLAR_FLOAT16, "FP16"},  {PILLAR_FLOAT32, "FP32"},  {PILLAR_FLOAT64, "FP64"},
    {PILLAR_BFLOAT16, "BF16"}, {PILLAR_STRING, "BYTES"},
};
#define NDTYPES (sizeof dtype_names / sizeof dtype_names[0])

const char *srv_dtype_kserve(pillar_dtype t) {
    for (size_t i = 0; i < NDTYPES; i++)
        if (dtype_names[i].t == t) return dtype_names[i].name;
    return "UNKNOWN";
}

pillar_dtype srv_dtype_from_kserve(const char *name) {
    for (size_t i = 0; i < NDTYPES; i++)
        if (!strcmp(dtype_names[i].name, name)) return dtype_names[i].t;
    return PILLAR_UNDEFINED;
}

/* ---------------------------------------------------------------- signatures */

static bool io_from(srv_io *io, const char *name, pillar_dtype t, size_t ndim,
                    const int64_t *dims) {
    io->name = strdup(name ? name : "");
    io->dtype = t;
    io->ndim = ndim > PILLAR_MAX_DIMS ? PILLAR_MAX_DIMS : ndim;
    for (size_t d = 0; d < io->ndim; d++) io->dims[d] = dims ? dims[d] : -1;
    return io->name != NULL;
}

bool srv_sig_from_model(srv_sig *sig, const pillar_model *m) {
    memset(sig, 0, sizeof *sig);
    size_t nin = pillar_model_input_count(m), nout = pillar_model_output_count(m);
    sig->in = calloc(nin + 1, sizeof *sig->in);
    sig->out = calloc(nout + 1, sizeof *sig->out);
    if (!sig->in || !sig->out) {
        srv_sig_free(sig);
        return false;
    }
    for (size_t i = 0; i < nin; i++) {
        const char *name = NULL;
        pillar_dtype t = PILLAR_UNDEFINED;
        size_t nd = 0;
        const int64_t *dims = NULL;
        pillar_model_input(m, i, &name, &t, &nd, &dims);
        sig->nin++;
        if (!io_from(&sig->in[i], name, t, nd, dims)) {
            srv_sig_free(sig);
            return false;
        }
    }
    for (size_t i = 0; i < nout; i++) {
        const char *name = NULL;
        pillar_dtype t = PILLAR_UNDEFINED;
        size_t nd = 0;
        const int64_t *dims = NULL;
        pillar_model_output(m, i, &name, &t, &nd, &dims);
        sig->nout++;
        if (!io_from(&sig->out[i], name, t, nd, dims)) {
            srv_sig_free(sig);
            return false;
        }
    }
    return true;
}

void srv_sig_free(srv_sig *sig) {
    for (size_t i = 0; i < sig->nin; i++) free(sig->in[i].name);
    for (size_t i = 0; i < sig->nout; i++) free(sig->out[i].name);
    free(sig->in);
    free(sig->out);
    memset(sig, 0, sizeof *sig);
}

/* ---------------------------------------------------------------- parsing */

static int fail(char *err, size_t errn, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errn, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errn, fmt, ap);
    va_end(ap);
    return code;
}

/* An upper bound of the JSON values in text[0..n): one per ',', '[', '{' or ':' outside
 * strings, plus one. Lets a request be refused before cJSON builds a huge tree. */
static size_t count_json_values(const char *text, size_t n) {
    size_t count = 1;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        char c = text[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == ',' || c == '[' || c == '{' || c == ':') {
            count++;
        }
    }
    return count;
}

/* Counts the leaves of a (nested) "data" array; false if a leaf is neither a number
 * nor a boolean. */
static bool count_leaves(const cJSON *a, int64_t *n, int depth) {
    if (depth > 64) return false;
    for (const cJSON *e = a->child; e; e = e->next) {
        if (cJSON_IsArray(e)) {
            if (!count_leaves(e, n, depth + 1)) return false;
        } else if (cJSON_IsNumber(e) || cJSON_IsBool(e)) {
            (*n)++;
        } else {
            return false;
        }
    }
    return true;
}

/* Limits of integer types; int64/uint64 values must also be exact in a double. */
static bool int_range(pillar_dtype t, double *lo, double *hi) {
    const double exact = 9007199254740992.0; /* 2^53 */
    switch (t) {
    case PILLAR_INT8:
        *lo = -128, *hi = 127;
        return true;
    case PILLAR_INT16:
        *lo = -32768, *hi = 32767;
        return true;
    case PILLAR_INT32:
        *lo = -2147483648.0, *hi = 2147483647.0;
        return true;
    case PILLAR_INT64:
        *lo = -exact, *hi = exact;
        return true;
    case PILLAR_UINT8:
        *lo = 0, *hi = 255;
        return true;
    case PILLAR_UINT16:
        *lo = 0, *hi = 65535;
        return true;
    case PILLAR_UINT32:
        *lo = 0, *hi = 4294967295.0;
        return true;
    case PILLAR_UINT64:
        *lo = 0, *hi = exact;
        return true;
    case PILLAR_BOOL:
        *lo = 0, *hi = 1;
        return true;
    default:
        return false;
    }
}

typedef struct fill_state {
    pillar_dtype t;
    void *data;
    int64_t i;
    const char *input;
    char *err;
    size_t errn;
} fill_state;

/* Stores one JSON leaf as element s->i of the tensor; false (with err) if it does not
 * fit the type. */
static bool store_leaf(fill_state *s, const cJSON *e) {
    double v;
    if (cJSON_IsBool(e)) {
        if (s->t != PILLAR_BOOL) {
            fail(s->err, s->errn, 400, "input '%s': value %lld is a boolean, the datatype is %s",
                 s->input, (long long)s->i, srv_dtype_kserve(s->t));
            return false;
        }
        v = cJSON_IsTrue(e) ? 1 : 0;
    } else {
        v = e->valuedouble;
    }
    double lo, hi;
    if (int_range(s->t, &lo, &hi) && !(v == floor(v) && v >= lo && v <= hi)) {
        fail(s->err, s->errn, 400, "input '%s': value %lld (%.17g) is not a valid %s%s", s->input,
             (long long)s->i, v, srv_dtype_kserve(s->t),
             (s->t == PILLAR_INT64 || s->t == PILLAR_UINT64) && fabs(v) > hi
                 ? " in JSON (integers beyond 2^53 need the binary-data extension)"
                 : "");
        return false;
    }
    int64_t i = s->i++;
    switch (s->t) {
    case PILLAR_FLOAT32:
        ((float *)s->data)[i] = (float)v;
        break;
    case PILLAR_FLOAT64:
        ((double *)s->data)[i] = v;
        break;
    case PILLAR_FLOAT16:
        ((uint16_t *)s->data)[i] = srv_f32_to_f16((float)v);
        break;
    case PILLAR_BFLOAT16:
        ((uint16_t *)s->data)[i] = srv_f32_to_bf16((float)v);
        break;
    case PILLAR_INT8:
        ((int8_t *)s->data)[i] = (int8_t)v;
        break;
    case PILLAR_INT16:
        ((int16_t *)s->data)[i] = (int16_t)v;
        break;
    case PILLAR_INT32:
        ((int32_t *)s->data)[i] = (int32_t)v;
        break;
    case PILLAR_INT64:
        ((int64_t *)s->data)[i] = (int64_t)v;
        break;
    case PILLAR_UINT8:
        ((uint8_t *)s->data)[i] = (uint8_t)v;
        break;
    case PILLAR_UINT16:
        ((uint16_t *)s->data)[i] = (uint16_t)v;
        break;
    case PILLAR_UINT32:
        ((uint32_t *)s->data)[i] = (uint32_t)v;
        break;
    case PILLAR_UINT64:
        ((uint64_t *)s->data)[i] = (uint64_t)v;
        break;
    case PILLAR_BOOL:
        ((uint8_t *)s->data)[i] = v != 0;
        break;
    default:
        return false;
    }
    return true;
}

static bool fill_leaves(fill_state *s, const cJSON *a) {
    for (const cJSON *e = a->child; e; e = e->next) {
        if (cJSON_IsArray(e)) {
            if (!fill_leaves(s, e)) return false;
        } else if (!store_leaf(s, e)) {
            return false;
        }
    }
    return true;
}

/* A JSON number that is a non-negative integer up to 2^53; false otherwise. */
static bool json_count(const cJSON *e, int64_t *out) {
    if (!cJSON_IsNumber(e)) return false;
    double v = e->valuedouble;
    if (!(v >= 0 && v <= 9007199254740992.0 && v == floor(v))) return false;
    *out = (int64_t)v;
    return true;
}

static const char *shape_text(char *buf, size_t n, size_t ndim, const int64_t *dims) {
    size_t k = 0;
    buf[0] = 0;
    k += (size_t)snprintf(buf + k, n - k, "[");
    for (size_t d = 0; d < ndim && k < n; d++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", d ? "," : "", (long long)dims[d]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

/* Parses one entry of "inputs" into req->inputs[idx]; *bin_off advances over binary
 * data taken from body[bin_off .. len). */
static int parse_input(const srv_sig *sig, const cJSON *in, const char *body, size_t len,
                       size_t *bin_off, bool have_binary, srv_infer_req *req, char *err,
                       size_t errn) {
    if (!cJSON_IsObject(in))
        return fail(err, errn, 400, "each entry of 'inputs' must be an object");
    const cJSON *jname = cJSON_GetObjectItemCaseSensitive(in, "name");
    if (!cJSON_IsString(jname)) return fail(err, errn, 400, "an input has no string 'name'");
    const char *name = jname->valuestring;
    size_t idx = 0;
    while (idx < sig->nin && strcmp(sig->in[idx].name, name) != 0) idx++;
    if (idx == sig->nin) return fail(err, errn, 400, "'%.200s' is not an input of the model", name);
    if (req->inputs[idx]) return fail(err, errn, 400, "input '%.200s' is given twice", name);
    const srv_io *io = &sig->in[idx];

    const cJSON *jtype = cJSON_GetObjectItemCaseSensitive(in, "datatype");
    if (!cJSON_IsString(jtype))
        return fail(err, errn, 400, "input '%s' has no string 'datatype'", name);
    pillar_dtype t = srv_dtype_from_kserve(jtype->valuestring);
    if (t == PILLAR_UNDEFINED)
        return fail(err, errn, 400, "input '%s': unknown datatype '%.40s'", name,
                    jtype->valuestring);
    if (t != io->dtype)
        return fail(err, errn, 400, "input '%s' has datatype %s, the model expects %s", name,
                    srv_dtype_kserve(t), srv_dtype_kserve(io->dtype));
    if (t == PILLAR_STRING)
        return fail(err, errn, 400, "input '%s': datatype BYTES is not supported", name);

    const cJSON *jshape = cJSON_GetObjectItemCaseSensitive(in, "shape");
    if (!cJSON_IsArray(jshape))
        return fail(err, errn, 400, "input '%s' has no 'shape' array", name);
    int64_t dims[PILLAR_MAX_DIMS];
    size_t ndim = 0;
    for (const cJSON *e = jshape->child; e; e = e->next) {
        if (ndim == PILLAR_MAX_DIMS)
            return fail(err, errn, 400, "input '%s': shape has more than %d dimensions", name,
                        PILLAR_MAX_DIMS);
        if (!json_count(e, &dims[ndim]))
            return fail(err, errn, 400, "input '%s': shape entries must be non-negative integers",
                        name);
        ndim++;
    }
    bool fits = ndim == io->ndim;
    for (size_t d = 0; fits && d < ndim; d++) fits = io->dims[d] < 0 || io->dims[d] == dims[d];
    if (!fits) {
        char a[160], b[160];
        return fail(err, errn, 400, "input '%s' has shape %s, the model expects %s", name,
                    shape_text(a, sizeof a, ndim, dims),
                    shape_text(b, sizeof b, io->ndim, io->dims));
    }
    /* numel and bytes, refusing overflow (each dim <= 2^53 already) */
    size_t esize = pillar_dtype_size(t);
    int64_t numel = 1;
    for (size_t d = 0; d < ndim; d++) {
        if (dims[d] == 0) {
            numel = 0;
            break;
        }
    }
    for (size_t d = 0; numel && d < ndim; d++) {
        if (numel > ((int64_t)1 << 61) / dims[d] / (int64_t)esize)
            return fail(err, errn, 400, "input '%s': shape is too large", name);
        numel *= dims[d];
    }
    uint64_t nbytes = (uint64_t)numel * esize;

    const cJSON *params = cJSON_GetObjectItemCaseSensitive(in, "parameters");
    if (params && !cJSON_IsObject(params))
        return fail(err, errn, 400, "input '%s': 'parameters' must be an object", name);
    const cJSON *jbin =
        params ? cJSON_GetObjectItemCaseSensitive(params, "binary_data_size") : NULL;
    const cJSON *jdata = cJSON_GetObjectItemCaseSensitive(in, "data");
    pillar_tensor *tensor = NULL;
    if (jbin) {
        int64_t size;
        if (!json_count(jbin, &size))
            return fail(err, errn, 400,
                        "input '%s': binary_data_size must be a non-negative integer", name);
        if (jdata)
            return fail(err, errn, 400, "input '%s' has both 'data' and binary_data_size", name);
        if (!have_binary)
            return fail(err, errn, 400,
                        "input '%s' has binary_data_size but the request has no "
                        "Inference-Header-Content-Length header",
                        name);
        if ((uint64_t)size != nbytes)
            return fail(err, errn, 400,
                        "input '%s': binary_data_size is %lld, shape %s of %s needs %llu bytes",
                        name, (long long)size, shape_text((char[160]){0}, 160, ndim, dims),
                        srv_dtype_kserve(t), (unsigned long long)nbytes);
        if ((uint64_t)size > len - *bin_off)
            return fail(err, errn, 400, "input '%s': binary data runs past the end of the body",
                        name);
        if (pillar_tensor_create(t, ndim, dims, body + *bin_off, &tensor) != PILLAR_OK)
            return fail(err, errn, 500, "input '%s': %s", name, pillar_last_error());
        *bin_off += (size_t)size;
    } else {
        if (!cJSON_IsArray(jdata))
            return fail(err, errn, 400, "input '%s' has no 'data' array (nor binary_data_size)",
                        name);
        int64_t count = 0;
        if (!count_leaves(jdata, &count, 0))
            return fail(err, errn, 400,
                        "input '%s': 'data' must hold only numbers or booleans "
                        "(in nested arrays at most 64 deep)",
                        name);
        if (count != numel)
            return fail(err, errn, 400, "input '%s' has %lld values, shape %s needs %lld", name,
                        (long long)count, shape_text((char[160]){0}, 160, ndim, dims),
                        (long long)numel);
        if (pillar_tensor_create(t, ndim, dims, NULL, &tensor) != PILLAR_OK)
            return fail(err, errn, 500, "input '%s': %s", name, pillar_last_error());
        fill_state s = {t, pillar_tensor_data(tensor), 0, name, err, errn};
        if (!fill_leaves(&s, jdata)) {
            pillar_tensor_destroy(tensor);
            return 400;
        }
    }
    req->inputs[idx] = tensor;
    return 200;
}

static int parse_outputs(const srv_sig *sig, const cJSON *outs, bool all_binary, srv_infer_req *req,
                         char *err, size_t errn) {
    size_t n = 0;
    if (outs) {
        if (!cJSON_IsArray(outs)) return fail(err, errn, 400, "'outputs' must be an array");
        for (const cJSON *e = outs->child; e; e = e->next) n++;
    }
    size_t want = n ? n : sig->nout;
    req->out_idx = calloc(want + 1, sizeof *req->out_idx);
    req->out_binary = calloc(want + 1, sizeof *req->out_binary);
    if (!req->out_idx || !req->out_binary) return fail(err, errn, 500, "out of memory");
    req->nout = want;
    if (!n) {
        for (size_t k = 0; k < want; k++) {
            req->out_idx[k] = k;
            req->out_binary[k] = all_binary;
        }
        return 200;
    }
    size_t k = 0;
    for (const cJSON *e = outs->child; e; e = e->next, k++) {
        if (!cJSON_IsObject(e))
            return fail(err, errn, 400, "each entry of 'outputs' must be an object");
        const cJSON *jname = cJSON_GetObjectItemCaseSensitive(e, "name");
        if (!cJSON_IsString(jname)) return fail(err, errn, 400, "an output has no string 'name'");
        size_t idx = 0;
        while (idx < sig->nout && strcmp(sig->out[idx].name, jname->valuestring) != 0) idx++;
        if (idx == sig->nout)
            return fail(err, errn, 400, "'%.200s' is not an output of the model",
                        jname->valuestring);
        for (size_t j = 0; j < k; j++)
            if (req->out_idx[j] == idx)
                return fail(err, errn, 400, "output '%s' is requested twice", sig->out[idx].name);
        req->out_idx[k] = idx;
        req->out_binary[k] = all_binary;
        const cJSON *params = cJSON_GetObjectItemCaseSensitive(e, "parameters");
        if (params && !cJSON_IsObject(params))
            return fail(err, errn, 400, "output '%s': 'parameters' must be an object",
                        sig->out[idx].name);
        const cJSON *b = params ? cJSON_GetObjectItemCaseSensitive(params, "binary_data") : NULL;
        if (b) {
            if (!cJSON_IsBool(b))
                return fail(err, errn, 400, "output '%s': binary_data must be true or false",
                            sig->out[idx].name);
            req->out_binary[k] = cJSON_IsTrue(b);
        }
        if (params && cJSON_GetObjectItemCaseSensitive(params, "classification"))
            return fail(err, errn, 400,
                        "output '%s': the classification extension is not supported",
                        sig->out[idx].name);
    }
    return 200;
}

int srv_parse_infer(const srv_sig *sig, const char *body, size_t len, long long header_len,
                    srv_infer_req *req, char *err, size_t errn) {
    memset(req, 0, sizeof *req);
    err[0] = 0;
    size_t jlen = len;
    bool have_binary = header_len >= 0;
    if (have_binary) {
        if ((unsigned long long)header_len > len)
            return fail(err, errn, 400,
                        "Inference-Header-Content-Length %lld is larger than the body (%zu bytes)",
                        header_len, len);
        jlen = (size_t)header_len;
    }
    if (jlen == 0) return fail(err, errn, 400, "the request has no JSON body");
    if (count_json_values(body, jlen) > SRV_MAX_JSON_VALUES)
        return fail(err, errn, 413,
                    "the request has more than %d JSON values; send large tensors with the "
                    "binary-data extension",
                    SRV_MAX_JSON_VALUES);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, jlen, &end, 0);
    /* only white space may follow the document */
    while (root && end && end < body + jlen &&
           (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
        end++;
    if (root && end != body + jlen) {
        cJSON_Delete(root);
        root = NULL;
    }
    if (!root) return fail(err, errn, 400, "the request body is not valid JSON");
    int code = 200;
    req->inputs = calloc(sig->nin + 1, sizeof *req->inputs);
    req->nin = sig->nin;
    if (!req->inputs) {
        code = fail(err, errn, 500, "out of memory");
        goto done;
    }
    if (!cJSON_IsObject(root)) {
        code = fail(err, errn, 400, "the request body must be a JSON object");
        goto done;
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
    if (id) {
        if (!cJSON_IsString(id)) {
            code = fail(err, errn, 400, "'id' must be a string");
            goto done;
        }
        if (!(req->id = strdup(id->valuestring))) {
            code = fail(err, errn, 500, "out of memory");
            goto done;
        }
    }
    bool all_binary = false;
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(root, "parameters");
    if (params) {
        if (!cJSON_IsObject(params)) {
            code = fail(err, errn, 400, "'parameters' must be an object");
            goto done;
        }
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(params, "binary_data_output");
        if (b && !cJSON_IsBool(b)) {
            code = fail(err, errn, 400, "binary_data_output must be true or false");
            goto done;
        }
        all_binary = b && cJSON_IsTrue(b);
    }
    const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(root, "inputs");
    if (!cJSON_IsArray(inputs)) {
        code = fail(err, errn, 400, "the request has no 'inputs' array");
        goto done;
    }
    size_t bin_off = jlen;
    for (const cJSON *in = inputs->child; in; in = in->next) {
        code = parse_input(sig, in, body, len, &bin_off, have_binary, req, err, errn);
        if (code != 200) goto done;
    }
    for (size_t i = 0; i < sig->nin; i++)
        if (!req->inputs[i]) {
            code = fail(err, errn, 400, "input '%s' is missing", sig->in[i].name);
            goto done;
        }
    if (bin_off != len) {
        code = fail(err, errn, 400,
                    "%zu bytes after the JSON and binary data are not used by any input",
                    len - bin_off);
        goto done;
    }
    code = parse_outputs(sig, cJSON_GetObjectItemCaseSensitive(root, "outputs"), all_binary, req,
                         err, errn);
done:
    cJSON_Delete(root);
    if (code != 200) {
        srv_infer_req_free(req); /* keeps the message in err */
    }
    return code;
}

void srv_infer_req_free(srv_infer_req *req) {
    if (!req) return;
    for (size_t i = 0; req->inputs && i < req->nin; i++) pillar_tensor_destroy(req->inputs[i]);
    free(req->inputs);
    free(req->id);
    free(req->out_idx);
    free(req->out_binary);
    memset(req, 0, sizeof *req);
}

/* ---------------------------------------------------------------- responses */

static void write_shape(srv_buf *b, size_t ndim, const int64_t *dims) {
    srv_buf_put(b, "[", 1);
    for (size_t d = 0; d < ndim; d++) srv_buf_printf(b, "%s%lld", d ? "," : "", (long long)dims[d]);
    srv_buf_put(b, "]", 1);
}

/* A float as JSON: shortest "%.9g" form; NaN and infinities (not JSON) as null. */
static void write_float(srv_buf *b, double v, int digits) {
    if (!isfinite(v)) {
        srv_buf_put(b, "null", 4);
        return;
    }
    srv_buf_printf(b, "%.*g", digits, v);
}

static bool write_values(srv_buf *b, pillar_dtype t, const void *d, int64_t n) {
    srv_buf_put(b, "[", 1);
    for (int64_t i = 0; i < n && !b->oom; i++) {
        if (i) srv_buf_put(b, ",", 1);
        switch (t) {
        case PILLAR_FLOAT32:
            write_float(b, ((const float *)d)[i], 9);
            break;
        case PILLAR_FLOAT64:
            write_float(b, ((const double *)d)[i], 17);
            break;
        case PILLAR_FLOAT16:
            write_float(b, srv_f16_to_f32(((const uint16_t *)d)[i]), 5);
            break;
        case PILLAR_BFLOAT16:
            write_float(b, srv_bf16_to_f32(((const uint16_t *)d)[i]), 4);
            break;
        case PILLAR_INT8:
            srv_buf_printf(b, "%d", ((const int8_t *)d)[i]);
            break;
        case PILLAR_INT16:
            srv_buf_printf(b, "%d", ((const int16_t *)d)[i]);
            break;
        case PILLAR_INT32:
            srv_buf_printf(b, "%d", ((const int32_t *)d)[i]);
            break;
        case PILLAR_INT64:
            srv_buf_printf(b, "%lld", (long long)((const int64_t *)d)[i]);
            break;
        case PILLAR_UINT8:
            srv_buf_printf(b, "%u", ((const uint8_t *)d)[i]);
            break;
        case PILLAR_UINT16:
            srv_buf_printf(b, "%u", ((const uint16_t *)d)[i]);
            break;
        case PILLAR_UINT32:
            srv_buf_printf(b, "%u", ((const uint32_t *)d)[i]);
            break;
        case PILLAR_UINT64:
            srv_buf_printf(b, "%llu", (unsigned long long)((const uint64_t *)d)[i]);
            break;
        case PILLAR_BOOL:
            srv_buf_puts(b, ((const uint8_t *)d)[i] ? "true" : "false");
            break;
        default:
            return false;
        }
    }
    srv_buf_put(b, "]", 1);
    return true;
}

bool srv_write_response(const srv_sig *sig, const char *model_name, const srv_infer_req *req,
                        pillar_tensor *const *outs, srv_buf *out, size_t *json_len, char *err,
                        size_t errn) {
    srv_buf_puts(out, "{\"model_name\":");
    srv_buf_json_str(out, model_name);
    srv_buf_puts(out, ",\"model_version\":\"1\"");
    if (req->id) {
        srv_buf_puts(out, ",\"id\":");
        srv_buf_json_str(out, req->id);
    }
    srv_buf_puts(out, ",\"outputs\":[");
    for (size_t k = 0; k < req->nout; k++) {
        const pillar_tensor *t = outs[k];
        pillar_dtype dt = pillar_tensor_dtype(t);
        if (dt == PILLAR_STRING || pillar_dtype_size(dt) == 0) {
            snprintf(err, errn, "output '%s' has type %s, which cannot be sent",
                     sig->out[req->out_idx[k]].name, pillar_dtype_name(dt));
            return false;
        }
        if (k) srv_buf_put(out, ",", 1);
        srv_buf_puts(out, "{\"name\":");
        srv_buf_json_str(out, sig->out[req->out_idx[k]].name);
        srv_buf_printf(out, ",\"datatype\":\"%s\",\"shape\":", srv_dtype_kserve(dt));
        write_shape(out, pillar_tensor_ndim(t), pillar_tensor_dims(t));
        int64_t n = pillar_tensor_numel(t);
        if (req->out_binary[k]) {
            srv_buf_printf(out, ",\"parameters\":{\"binary_data_size\":%llu}}",
                           (unsigned long long)n * pillar_dtype_size(dt));
        } else {
            srv_buf_puts(out, ",\"data\":");
            write_values(out, dt, pillar_tensor_data(t), n);
            srv_buf_put(out, "}", 1);
        }
    }
    srv_buf_puts(out, "]}");
    *json_len = out->n;
    for (size_t k = 0; k < req->nout; k++)
        if (req->out_binary[k])
            srv_buf_put(out, pillar_tensor_data(outs[k]),
                        (size_t)pillar_tensor_numel(outs[k]) *
                            pillar_dtype_size(pillar_tensor_dtype(outs[k])));
    if (out->oom) {
        snprintf(err, errn, "out of memory writing the response");
        return false;
    }
    return true;
}

void srv_write_error(srv_buf *out, const char *msg) {
    srv_buf_puts(out, "{\"error\":");
    srv_buf_json_str(out, msg);
    srv_buf_puts(out, "}");
}

static void write_ios(srv_buf *b, const srv_io *ios, size_t n) {
    srv_buf_put(b, "[", 1);
    for (size_t i = 0; i < n; i++) {
        if (i) srv_buf_put(b, ",", 1);
        srv_buf_puts(b, "{\"name\":");
        srv_buf_json_str(b, ios[i].name);
        srv_buf_printf(b, ",\"datatype\":\"%s\",\"shape\":", srv_dtype_kserve(ios[i].dtype));
        write_shape(b, ios[i].ndim, ios[i].dims);
        srv_buf_put(b, "}", 1);
    }
    srv_buf_put(b, "]", 1);
}

void srv_write_metadata(srv_buf *out, const char *model_name, const srv_sig *sig) {
    srv_buf_puts(out, "{\"name\":");
    srv_buf_json_str(out, model_name);
    srv_buf_puts(out, ",\"versions\":[\"1\"],\"platform\":\"pillar_onnx\",\"inputs\":");
    write_ios(out, sig->in, sig->nin);
    srv_buf_puts(out, ",\"outputs\":");
    write_ios(out, sig->out, sig->nout);
    srv_buf_puts(out, "}");
}
