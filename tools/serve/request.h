/* request.h -- KServe v2 inference requests and responses, independent of the HTTP
 * library: JSON (and binary-data extension) bodies in, pillar tensors out, and back.
 * Kept apart so that the fuzzer (fuzz/fuzz_request.c) can drive it directly. */
#ifndef PILLAR_SERVE_REQUEST_H
#define PILLAR_SERVE_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pillar.h"

/* Largest number of JSON values (numbers, strings, arrays, ...) in one request: the
 * parsed tree costs ~64 bytes per value, so this bounds a request's memory (~256 MiB).
 * Larger tensors go through the binary-data extension. */
#define SRV_MAX_JSON_VALUES 4000000

/* ---------------------------------------------------------------- byte buffers */

/* A growing byte buffer; `oom` records a failed allocation (later writes are dropped). */
typedef struct srv_buf {
    char *p;
    size_t n, cap;
    bool oom;
} srv_buf;

void srv_buf_put(srv_buf *b, const void *data, size_t n);
/* Makes room for n more bytes in one allocation of that size; false on failure. */
bool srv_buf_reserve_exact(srv_buf *b, size_t n);
void srv_buf_puts(srv_buf *b, const char *s);
void srv_buf_printf(srv_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal, with quotes. */
void srv_buf_json_str(srv_buf *b, const char *s);
void srv_buf_free(srv_buf *b);

/* ---------------------------------------------------------------- model signature */

/* One model input or output as the server sees it. dims[d] == -1: dynamic. */
typedef struct srv_io {
    char *name;
    pillar_dtype dtype;
    size_t ndim;
    int64_t dims[PILLAR_MAX_DIMS];
} srv_io;

typedef struct srv_sig {
    size_t nin, nout;
    srv_io *in, *out;
} srv_sig;

/* Reads a model's inputs and outputs; false on allocation failure. */
bool srv_sig_from_model(srv_sig *sig, const pillar_model *m);
void srv_sig_free(srv_sig *sig);

/* KServe datatype names ("FP32", "INT64", ...) <-> pillar dtypes. */
const char *srv_dtype_kserve(pillar_dtype t);
pillar_dtype srv_dtype_from_kserve(const char *name);

/* ---------------------------------------------------------------- requests */

/* A parsed inference request. */
typedef struct srv_infer_req {
    char *id; /* the request's "id" (echoed), or NULL */
    size_t nin;
    pillar_tensor **inputs; /* nin tensors in the model's input order (a NULL entry was
                               taken over by the caller) */
    size_t nout;            /* requested outputs (all outputs if the request names none) */
    size_t *out_idx;        /* index into sig->out of each requested output */
    bool *out_binary;       /* send output k with the binary-data extension */
} srv_infer_req;

/* Parses an inference request for a model with signature `sig`. `body` (len bytes) is
 * the whole HTTP body; `header_len` is the Inference-Header-Content-Length value (the
 * JSON part's size when binary tensor data follows it) or -1 if the header is absent.
 * Binary inputs are copied out of `body`, which may be freed afterwards.
 * Returns an HTTP status: 200 on success (free `req` with srv_infer_req_free), else
 * 400 (malformed request, unknown input or output name, wrong datatype or shape) or
 * 413 (too many JSON values), with a one-line message in err. */
int srv_parse_infer(const srv_sig *sig, const char *body, size_t len, long long header_len,
                    srv_infer_req *req, char *err, size_t errn);
void srv_infer_req_free(srv_infer_req *req);

/* ---------------------------------------------------------------- responses */

/* Writes the response to `req` whose outputs are outs[k] (for req->out_idx[k]) into
 * `out`: a JSON document, then the binary data of any outputs sent as binary.
 * *json_len receives the size of the JSON part (== out->n when nothing is binary).
 * Returns false (with err) if an output's type cannot be written. */
bool srv_write_response(const srv_sig *sig, const char *model_name, const srv_infer_req *req,
                        pillar_tensor *const *outs, srv_buf *out, size_t *json_len, char *err,
                        size_t errn);

/* {"error": "<msg>"} */
void srv_write_error(srv_buf *out, const char *msg);

/* KServe model metadata ({"name", "versions", "platform", "inputs", "outputs"}). */
void srv_write_metadata(srv_buf *out, const char *model_name, const srv_sig *sig);

/* float <-> IEEE half / bfloat16 with round-to-nearest-even. */
uint16_t srv_f32_to_f16(float f);
float srv_f16_to_f32(uint16_t h);
uint16_t srv_f32_to_bf16(float f);
float srv_bf16_to_f32(uint16_t h);

#endif
