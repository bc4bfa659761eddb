/* raw_split.c -- keeps big weights out of protobuf-c's hands.
 *
 * protobuf-c unpacks a message into its own allocations, copying every bytes field, so
 * loading a model the plain way holds the weights three times at once: the file's
 * bytes, the unpacked copy and the tensors made from it (BERT-base: 1.26 GB for 440 MB
 * of weights). Here the ModelProto wire bytes are scanned -- only the message
 * structure, never the payloads -- and a copy is made without the large raw_data fields
 * of the main graph's initializers; protobuf-c unpacks that small copy, and each left-out
 * payload is read straight into its tensor (pread from the file, or memcpy from the
 * caller's buffer). The weights then exist once, plus the file's pages the kernel's page
 * cache holds (not the process's memory).
 *
 * Wire format facts used (protobuf encoding): a field is a varint key (field number << 3
 * | wire type) and a value: varint (0), 8 bytes (1), varint length + bytes (2), 4 bytes
 * (5); 3 and 4 are the deprecated groups. ModelProto.graph is field 7, GraphProto
 * .initializer field 5 (repeated, unpacked in wire order), TensorProto.raw_data field 9.
 * Anything unexpected (a group, a second graph or raw_data field, a length past the end)
 * makes the scan give up, and the caller unpacks the original bytes as before, so
 * protobuf-c stays the judge of what is a valid model. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "onnx/raw_split.h"

typedef struct wbuf {
    uint8_t *p;
    size_t n, cap;
    bool failed;
} wbuf;

static void put(wbuf *w, const void *src, size_t n) {
    if (w->failed || n == 0) return;
    if (w->n + n > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap < w->n + n) cap *= 2;
        uint8_t *p = realloc(w->p, cap);
        if (!p) {
            w->failed = true;
            return;
        }
        w->p = p;
        w->cap = cap;
    }
    memcpy(w->p + w->n, src, n);
    w->n += n;
}

static void put_varint(wbuf *w, uint64_t v) {
    uint8_t b[10];
    int n = 0;
    do {
        b[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    put(w, b, (size_t)n);
}

/* Reads a varint at *pos (< end); false if truncated or longer than 10 bytes. */
static bool get_varint(const uint8_t *buf, size_t end, size_t *pos, uint64_t *v) {
    uint64_t r = 0;
    for (int i = 0; i < 10; i++) {
        if (*pos >= end) return false;
        uint8_t b = buf[(*pos)++];
        r |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *v = r;
            return true;
        }
    }
    return false;
}

/* One field at *pos: its number, wire type and value bounds [vstart, vend) (for
 * length-delimited fields the bytes after the length); *pos moves past it. */
typedef struct field {
    size_t start, vstart, vend;
    uint64_t num;
    int type;
} field;

static bool next_field(const uint8_t *buf, size_t end, size_t *pos, field *f) {
    uint64_t key, len;
    f->start = *pos;
    if (!get_varint(buf, end, pos, &key)) return false;
    f->num = key >> 3;
    f->type = (int)(key & 7);
    switch (f->type) {
    case 0:
        f->vstart = *pos;
        if (!get_varint(buf, end, pos, &len)) return false;
        break;
    case 1:
    case 5:
        f->vstart = *pos;
        if (end - *pos < (f->type == 1 ? 8u : 4u)) return false;
        *pos += f->type == 1 ? 8 : 4;
        break;
    case 2:
        if (!get_varint(buf, end, pos, &len) || len > end - *pos) return false;
        f->vstart = *pos;
        *pos += (size_t)len;
        break;
    default:
        return false; /* groups (3, 4) and invalid types */
    }
    f->vend = *pos;
    return f->num != 0;
}

/* A TensorProto at [start, end): copied to w without a raw_data field of min_bytes or
 * more, whose payload is recorded in *ref (ref->len 0: kept). */
static bool split_tensor(const uint8_t *buf, size_t start, size_t end, size_t min_bytes, wbuf *w,
                         pl_raw_ref *ref) {
    size_t pos = start;
    int nraw = 0;
    ref->len = 0;
    while (pos < end) {
        field f;
        if (!next_field(buf, end, &pos, &f)) return false;
        if (f.num == 9) {
            if (f.type != 2 || ++nraw > 1) return false;
            if (f.vend - f.vstart >= min_bytes) {
                ref->offset = f.vstart;
                ref->len = f.vend - f.vstart;
                continue;
            }
        }
        put(w, buf + f.start, f.vend - f.start);
    }
    return true;
}

/* A GraphProto: initializers (field 5) through split_tensor, the rest verbatim. */
static bool split_graph(const uint8_t *buf, size_t start, size_t end, size_t min_bytes, wbuf *w,
                        pl_raw_split *s) {
    size_t pos = start, index = 0;
    while (pos < end) {
        field f;
        if (!next_field(buf, end, &pos, &f)) return false;
        if (f.num != 5) {
            put(w, buf + f.start, f.vend - f.start);
            continue;
        }
        if (f.type != 2) return false;
        wbuf t = {0};
        pl_raw_ref ref = {.index = index++};
        bool ok = split_tensor(buf, f.vstart, f.vend, min_bytes, &t, &ref) && !t.failed;
        if (ok && ref.len) {
            pl_raw_ref *r = realloc(s->refs, (s->nrefs + 1) * sizeof *r);
            if (!r) ok = false;
            else {
                s->refs = r;
                s->refs[s->nrefs++] = ref;
            }
        }
        if (ok) {
            put_varint(w, 5 << 3 | 2);
            put_varint(w, t.n);
            put(w, t.p, t.n);
        }
        free(t.p);
        if (!ok) return false;
    }
    return true;
}

bool pl_raw_split_make(const uint8_t *buf, size_t len, size_t min_bytes, pl_raw_split *s) {
    memset(s, 0, sizeof *s);
    wbuf w = {0};
    size_t pos = 0;
    int ngraphs = 0;
    bool ok = true;
    while (ok && pos < len) {
        field f;
        if (!next_field(buf, len, &pos, &f)) {
            ok = false;
            break;
        }
        if (f.num != 7) {
            put(&w, buf + f.start, f.vend - f.start);
            continue;
        }
        if (f.type != 2 || ++ngraphs > 1) {
            ok = false;
            break;
        }
        wbuf gw = {0};
        ok = split_graph(buf, f.vstart, f.vend, min_bytes, &gw, s) && !gw.failed;
        if (ok) {
            put_varint(&w, 7 << 3 | 2);
            put_varint(&w, gw.n);
            put(&w, gw.p, gw.n);
        }
        free(gw.p);
    }
    if (!ok || w.failed || s->nrefs == 0) {
        free(w.p);
        pl_raw_split_free(s);
        return false;
    }
    s->bytes = w.p;
    s->len = w.n;
    return true;
}

void pl_raw_split_free(pl_raw_split *s) {
    free(s->bytes);
    free(s->refs);
    memset(s, 0, sizeof *s);
}

const pl_raw_ref *pl_raw_split_find(const pl_raw_split *s, size_t index) {
    if (!s) return NULL;
    /* refs are in initializer order: binary search */
    size_t lo = 0, hi = s->nrefs;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->refs[mid].index < index) lo = mid + 1;
        else hi = mid;
    }
    return lo < s->nrefs && s->refs[lo].index == index ? &s->refs[lo] : NULL;
}

pl_status pl_raw_split_read(const pl_raw_split *s, const pl_raw_ref *ref, void *dst) {
    if (s->mem) {
        memcpy(dst, s->mem + ref->offset, ref->len);
        return PL_OK;
    }
    uint8_t *d = dst;
    size_t done = 0;
    while (done < ref->len) {
        ssize_t got = pread(s->fd, d + done, ref->len - done, (off_t)(ref->offset + done));
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return pl_error(PL_ERR_IO, "read error in the weights (%s)", got < 0 ? strerror(errno) : "file shrank");
        done += (size_t)got;
    }
    return PL_OK;
}
