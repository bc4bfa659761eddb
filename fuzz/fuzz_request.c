/* fuzz_request.c -- libFuzzer target: the HTTP server's KServe v2 request parser
 * (tools/serve/request.c) on arbitrary bodies, with and without the binary-data
 * extension, for a model signature that has dynamic and fixed dimensions and several
 * types; accepted requests are answered through the response writer. Every bad request
 * must come back as a 4xx with a message. Build and run with fuzz/run.sh.
 *
 * Input layout: byte 0 chooses the Inference-Header-Content-Length: bit 0 set means
 * the header is present, with the value in bytes 1-2 (little-endian); the body is the
 * rest of the input. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "request.h"

static srv_io ins[] = {
    {"x", PILLAR_FLOAT32, 2, {-1, 4}},
    {"ids", PILLAR_INT64, 1, {-1}},
    {"mask", PILLAR_BOOL, 2, {2, -1}},
    {"h", PILLAR_FLOAT16, 1, {-1}},
};
static srv_io outs[] = {
    {"y", PILLAR_FLOAT32, 2, {-1, 4}},
    {"z", PILLAR_INT64, 1, {-1}},
    {"m", PILLAR_BOOL, 2, {2, -1}},
    {"g", PILLAR_FLOAT16, 1, {-1}},
};
static const srv_sig sig = {4, 4, ins, outs};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 3) return 0;
    long long header_len = (data[0] & 1) ? (long long)(data[1] | (data[2] << 8)) : -1;
    const char *body = (const char *)data + 3;
    size_t len = size - 3;
    srv_infer_req req;
    char err[512];
    int code = srv_parse_infer(&sig, body, len, header_len, &req, err, sizeof err);
    if (code != 200) {
        if (code < 400 || code > 599 || !err[0]) __builtin_trap(); /* an error must say what */
        return 0;
    }
    /* answer with the inputs as outputs (output k has input k's type) */
    pillar_tensor *res[4];
    for (size_t k = 0; k < req.nout; k++) res[k] = req.inputs[req.out_idx[k]];
    srv_buf b = {0};
    size_t json_len = 0;
    if (srv_write_response(&sig, "fuzz", &req, res, &b, &json_len, err, sizeof err)) {
        if (json_len > b.n) __builtin_trap();
    }
    srv_buf_free(&b);
    srv_infer_req_free(&req);
    return 0;
}
