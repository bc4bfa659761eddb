/* tensor_proto.c -- ONNX TensorProto <-> pl_tensor: typed fields, raw_data and external
 * data files, with every size checked against the declared shape. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "onnx/onnx_import.h"

static bool dtype_supported(int32_t t) {
    switch (t) {
    case PL_F32: case PL_U8: case PL_I8: case PL_U16: case PL_I16: case PL_I32: case PL_I64:
    case PL_STRING: case PL_BOOL: case PL_F16: case PL_F64: case PL_U32: case PL_U64:
    case PL_BF16:
        return true;
    default:
        return false;
    }
}

static const char *tname(const Onnx__TensorProto *tp) {
    return tp->name && tp->name[0] ? tp->name : "(unnamed)";
}

/* Reads `length` bytes at `offset` of an external data file, resolved relative to the
 * model's directory; refuses paths that climb out of it. */
static pl_status read_external(const Onnx__TensorProto *tp, const char *dir, void *dst,
                               size_t want) {
    const char *loc = NULL;
    long long offset = 0, length = -1;
    for (size_t i = 0; i < tp->n_external_data; i++) {
        const Onnx__StringStringEntryProto *e = tp->external_data[i];
        if (!e->key || !e->value) continue;
        char *end = NULL;
        if (strcmp(e->key, "location") == 0) loc = e->value;
        else if (strcmp(e->key, "offset") == 0) offset = strtoll(e->value, &end, 10);
        else if (strcmp(e->key, "length") == 0) length = strtoll(e->value, &end, 10);
        if (end && *end) return pl_error(PL_ERR_MODEL, "tensor '%s': external data %s '%s' is not a number", tname(tp), e->key, e->value);
    }
    if (!loc || !loc[0]) return pl_error(PL_ERR_MODEL, "tensor '%s': external data has no location", tname(tp));
    if (loc[0] == '/' || strstr(loc, ".."))
        return pl_error(PL_ERR_MODEL, "tensor '%s': external data location '%s' must be a relative path inside the model's folder", tname(tp), loc);
    if (offset < 0) return pl_error(PL_ERR_MODEL, "tensor '%s': negative external data offset", tname(tp));
    if (length >= 0 && (size_t)length != want)
        return pl_error(PL_ERR_MODEL, "tensor '%s': external data length %lld, shape needs %zu bytes", tname(tp), length, want);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir && dir[0] ? dir : ".", loc);
    FILE *f = fopen(path, "rb");
    if (!f) return pl_error(PL_ERR_IO, "tensor '%s': cannot open external data file %s: %s", tname(tp), path, strerror(errno));
    pl_status st = PL_OK;
    if (fseeko(f, (off_t)offset, SEEK_SET) != 0 || fread(dst, 1, want, f) != want)
        st = pl_error(PL_ERR_MODEL, "tensor '%s': external data file %s is shorter than offset %lld + %zu bytes", tname(tp), path, offset, want);
    fclose(f);
    return st;
}

pl_status pl_onnx_tensor_from_proto(const Onnx__TensorProto *tp, const char *dir, pl_tensor *t) {
    memset(t, 0, sizeof *t);
    if (!tp->has_data_type || !dtype_supported(tp->data_type))
        return pl_error(PL_ERR_UNSUPPORTED, "tensor '%s': data type %d is not supported", tname(tp), tp->has_data_type ? tp->data_type : 0);
    if (tp->segment) return pl_error(PL_ERR_UNSUPPORTED, "tensor '%s': segmented tensors are not supported", tname(tp));
    if (tp->n_dims > PL_MAX_DIMS)
        return pl_error(PL_ERR_UNSUPPORTED, "tensor '%s': %zu dimensions, at most %d supported", tname(tp), tp->n_dims, PL_MAX_DIMS);
    for (size_t i = 0; i < tp->n_dims; i++)
        if (tp->dims[i] < 0) return pl_error(PL_ERR_MODEL, "tensor '%s': negative dimension %lld", tname(tp), (long long)tp->dims[i]);
    pl_tensor_set_shape(t, (pl_dtype)tp->data_type, (int)tp->n_dims, tp->dims);
    int64_t n = pl_numel(t);
    size_t es = pl_dtype_size(t->dtype);
    if (n < 0 || (uint64_t)n > ((uint64_t)1 << 40) / es)
        return pl_error(PL_ERR_MODEL, "tensor '%s': shape is too large", tname(tp));
    size_t want = (size_t)n * es;
    bool external = tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;

    if (t->dtype == PL_STRING) {
        if ((int64_t)tp->n_string_data != n)
            return pl_error(PL_ERR_MODEL, "tensor '%s': %zu strings for %lld elements", tname(tp), tp->n_string_data, (long long)n);
        PL_TRY(pl_tensor_alloc(t));
        char **d = (char **)t->data;
        for (int64_t i = 0; i < n; i++) {
            ProtobufCBinaryData b = tp->string_data[i];
            d[i] = malloc(b.len + 1);
            if (!d[i]) return pl_error(PL_ERR_NOMEM, "out of memory");
            if (b.len) memcpy(d[i], b.data, b.len);
            d[i][b.len] = 0;
        }
        return PL_OK;
    }
    PL_TRY(pl_tensor_alloc(t));
    if (external) return read_external(tp, dir, t->data, want);
    if (tp->has_raw_data) {
        if (tp->raw_data.len != want)
            return pl_error(PL_ERR_MODEL, "tensor '%s': raw_data has %zu bytes, shape %lld elements of %s needs %zu", tname(tp), tp->raw_data.len, (long long)n, pl_dtype_name(t->dtype), want);
        if (want && tp->raw_data.data) memcpy(t->data, tp->raw_data.data, want); /* NULL: the caller reads it (raw_split.h) */
        return PL_OK;
    }
    size_t have = 0;
    switch (t->dtype) {
    case PL_F32: have = tp->n_float_data; break;
    case PL_F64: have = tp->n_double_data; break;
    case PL_I64: have = tp->n_int64_data; break;
    case PL_U32: case PL_U64: have = tp->n_uint64_data; break;
    default: have = tp->n_int32_data; break;
    }
    if (n == 0) return PL_OK;
    if ((int64_t)have != n)
        return pl_error(PL_ERR_MODEL, "tensor '%s': holds %zu values, shape needs %lld", tname(tp), have, (long long)n);
    for (int64_t i = 0; i < n; i++) {
        switch (t->dtype) {
        case PL_F32: ((float *)t->data)[i] = tp->float_data[i]; break;
        case PL_F64: ((double *)t->data)[i] = tp->double_data[i]; break;
        case PL_I64: ((int64_t *)t->data)[i] = tp->int64_data[i]; break;
        case PL_U32: ((uint32_t *)t->data)[i] = (uint32_t)tp->uint64_data[i]; break;
        case PL_U64: ((uint64_t *)t->data)[i] = tp->uint64_data[i]; break;
        case PL_F16: case PL_BF16: ((uint16_t *)t->data)[i] = (uint16_t)tp->int32_data[i]; break;
        default: pl_set_i64(t, i, tp->int32_data[i]); break;
        }
    }
    return PL_OK;
}

pl_status pillar_tensor_load_pb(const char *path, pillar_tensor **out, char **name_out) {
    if (!path || !out) return pl_error(PL_ERR_ARGUMENT, "pillar_tensor_load_pb: NULL argument");
    size_t len = 0;
    uint8_t *buf = NULL;
    PL_TRY(pl_read_file(path, &buf, &len));
    Onnx__TensorProto *tp = onnx__tensor_proto__unpack(NULL, len, buf);
    free(buf);
    if (!tp) return pl_error(PL_ERR_INPUT, "%s: not a valid ONNX TensorProto", path);
    pl_tensor *t = calloc(1, sizeof *t);
    pl_status st = t ? pl_onnx_tensor_from_proto(tp, ".", t) : pl_error(PL_ERR_NOMEM, "out of memory");
    if (st == PL_OK && name_out) {
        *name_out = strdup(tp->name ? tp->name : "");
        if (!*name_out) st = pl_error(PL_ERR_NOMEM, "out of memory");
    }
    onnx__tensor_proto__free_unpacked(tp, NULL);
    if (st != PL_OK) {
        if (t) pl_tensor_free_data(t);
        free(t);
        pl_error_prefix("%s", path);
        return st == PL_ERR_MODEL ? PL_ERR_INPUT : st;
    }
    *out = t;
    return PL_OK;
}

pl_status pl_read_file(const char *path, uint8_t **buf_out, size_t *len_out) {
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) return pl_error(PL_ERR_IO, "%s: is a directory, not a file", path);
    FILE *f = fopen(path, "rb");
    if (!f) return pl_error(PL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (fseeko(f, 0, SEEK_END) != 0) {
        fclose(f);
        return pl_error(PL_ERR_IO, "%s: cannot seek (not a regular file?)", path);
    }
    off_t size = ftello(f);
    if (size < 0 || fseeko(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return pl_error(PL_ERR_IO, "%s: cannot read its size (is it a directory?)", path);
    }
    if ((uint64_t)size > ((uint64_t)1 << 31)) {
        fclose(f);
        return pl_error(PL_ERR_MODEL, "%s: %lld bytes; protobuf files are limited to 2 GB (store large weights as external data)", path, (long long)size);
    }
    uint8_t *buf = malloc((size_t)size + 1);
    if (!buf) {
        fclose(f);
        return pl_error(PL_ERR_NOMEM, "%s: out of memory reading %lld bytes", path, (long long)size);
    }
    size_t got = fread(buf, 1, (size_t)size, f);
    int err = ferror(f);
    fclose(f);
    if (err || got != (size_t)size) {
        free(buf);
        return pl_error(PL_ERR_IO, "%s: read error", path);
    }
    *buf_out = buf;
    *len_out = (size_t)size;
    return PL_OK;
}
