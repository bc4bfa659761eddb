/* raw_split.h -- loading a model without holding its weights three times (raw_split.c):
 * the large raw_data payloads of the main graph's initializers are left out of the bytes
 * protobuf-c unpacks and read straight into their tensors. */
#ifndef PL_ONNX_RAW_SPLIT_H
#define PL_ONNX_RAW_SPLIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* A left-out payload: initializer `index` of the main graph, `len` bytes at `offset` of
 * the original model bytes. */
typedef struct pl_raw_ref {
    size_t index;
    uint64_t offset, len;
} pl_raw_ref;

typedef struct pl_raw_split {
    uint8_t *bytes;   /* the model without the payloads (what protobuf-c unpacks) */
    size_t len;
    pl_raw_ref *refs; /* in initializer order */
    size_t nrefs;
    /* where the payloads are read from: the original bytes in memory (mem), or the
     * file (fd) when mem is NULL; set by the caller */
    const uint8_t *mem;
    int fd;
} pl_raw_split;

/* Scans the ModelProto bytes and fills s (mem/fd left for the caller) when some
 * initializer has a raw_data payload of at least min_bytes; false otherwise or when the
 * bytes are not laid out as expected (then unpack buf itself). Reads only the message
 * structure, not the payloads. */
bool pl_raw_split_make(const uint8_t *buf, size_t len, size_t min_bytes, pl_raw_split *s);
void pl_raw_split_free(pl_raw_split *s);

/* The payload of initializer `index`, or NULL (s may be NULL). */
const pl_raw_ref *pl_raw_split_find(const pl_raw_split *s, size_t index);
/* Copies a payload into dst (ref->len bytes). */
pl_status pl_raw_split_read(const pl_raw_split *s, const pl_raw_ref *ref, void *dst);

#endif
