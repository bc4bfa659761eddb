/* fuzz_onnx_loader.c -- libFuzzer target: bytes as an ONNX model through the public API,
 * as a server or an embedding program would: pillar_model_load_memory, then (if it
 * loads) the metadata calls, a single-threaded session, and one run on zero-filled
 * inputs of the declared shapes (dynamic dimensions as 1). Every failure must come back
 * as a status with a message; crashes, leaks and undefined behaviour are findings.
 * Build and run with fuzz/run.sh. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pillar.h"

/* Inputs larger than this are not run (the model still loads and plans). */
#define MAX_INPUT_BYTES (1u << 22)

static void run_zero_inputs(pillar_session *s, const pillar_model *m) {
    size_t nin = pillar_model_input_count(m), nout = pillar_model_output_count(m);
    if (nin > 64 || nout > 64) return;
    const char *names[64];
    pillar_tensor *in[64];
    pillar_tensor *out[64];
    size_t made = 0;
    size_t total = 0;
    bool ok = true;
    for (size_t i = 0; i < nin && ok; i++) {
        const char *name = NULL;
        pillar_dtype t = PILLAR_UNDEFINED;
        size_t nd = 0;
        const int64_t *dims = NULL;
        if (pillar_model_input(m, i, &name, &t, &nd, &dims) != PILLAR_OK || nd > PILLAR_MAX_DIMS)
            break;
        int64_t shape[PILLAR_MAX_DIMS];
        uint64_t numel = 1;
        for (size_t d = 0; d < nd; d++) {
            shape[d] = dims[d] < 0 ? 1 : dims[d];
            if (shape[d] && numel > MAX_INPUT_BYTES / (uint64_t)shape[d])
                numel = MAX_INPUT_BYTES + 1;
            else
                numel *= (uint64_t)shape[d];
        }
        size_t es = pillar_dtype_size(t);
        if (es == 0 || numel > MAX_INPUT_BYTES / es || total + numel * es > MAX_INPUT_BYTES) {
            ok = false;
            break;
        }
        total += numel * es;
        if (pillar_tensor_create(t, nd, shape, NULL, &in[made]) != PILLAR_OK) {
            ok = false;
            break;
        }
        names[made++] = name;
    }
    if (ok && made == nin) {
        memset(out, 0, sizeof out);
        if (pillar_session_run(s, nin, names, (const pillar_tensor *const *)in, nout, NULL, out) ==
            PILLAR_OK)
            for (size_t k = 0; k < nout; k++) {
                /* touch the results: sizes must be consistent with the data */
                int64_t n = pillar_tensor_numel(out[k]);
                size_t es = pillar_dtype_size(pillar_tensor_dtype(out[k]));
                const unsigned char *p = pillar_tensor_data(out[k]);
                if (n > 0 && es && p) {
                    volatile unsigned char sink = p[0] ^ p[(size_t)n * es - 1];
                    (void)sink;
                }
                pillar_tensor_destroy(out[k]);
            }
    }
    for (size_t i = 0; i < made; i++) pillar_tensor_destroy(in[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pillar_model *m = NULL;
    if (pillar_model_load_memory(data, size, "fuzz.onnx", &m) != PILLAR_OK) {
        (void)strlen(pillar_last_error());
        return 0;
    }
    for (size_t i = 0; i < pillar_model_input_count(m); i++) {
        size_t nd = 0;
        const int64_t *dims = NULL;
        const char *name = NULL;
        if (pillar_model_input(m, i, &name, NULL, &nd, &dims) == PILLAR_OK)
            for (size_t d = 0; d < nd; d++) (void)pillar_model_input_dim_name(m, i, d);
        (void)strlen(name ? name : "");
    }
    pillar_options *o = NULL;
    pillar_session *s = NULL;
    if (pillar_options_create(&o) == PILLAR_OK && pillar_options_set_threads(o, 1) == PILLAR_OK &&
        pillar_session_create(m, o, &s) == PILLAR_OK) {
        for (size_t i = 0; i < pillar_session_node_count(s); i++)
            pillar_session_node(s, i, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
        run_zero_inputs(s, m);
    }
    pillar_session_destroy(s);
    pillar_options_destroy(o);
    pillar_model_destroy(m);
    return 0;
}
