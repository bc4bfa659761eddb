/* registry.c -- the operator table, generated from ops.def. OP() lines are ops of the
 * default ONNX domain; OPD() lines name their domain. */
#include <string.h>

#include "ops/op.h"

#define OP(name, infer, run, flags)                                                          \
    pl_status infer(pl_op_ctx *c);                                                          \
    pl_status run(pl_op_ctx *c);
#define OPD(domain, name, infer, run, flags) OP(name, infer, run, flags)
#define OPP(name, infer, run, flags, prepare, release)                                      \
    OP(name, infer, run, flags) pl_status prepare(pl_op_ctx *c);                            \
    void release(void *state);
#include "ops/ops.def"
#undef OP
#undef OPD
#undef OPP

static const pl_op op_table[] = {
#define OP(name, infer, run, flags) {name, "", infer, run, flags, NULL, NULL},
#define OPD(domain, name, infer, run, flags) {name, domain, infer, run, flags, NULL, NULL},
#define OPP(name, infer, run, flags, prepare, release) {name, "", infer, run, flags, prepare, release},
#include "ops/ops.def"
#undef OP
#undef OPD
#undef OPP
    {NULL, NULL, NULL, NULL, 0, NULL, NULL}};

int pl_op_count(void) { return (int)(sizeof op_table / sizeof op_table[0]) - 1; }
const pl_op *pl_op_at(int i) { return i >= 0 && i < pl_op_count() ? &op_table[i] : NULL; }

static bool default_domain(const char *d) { return !d || !d[0] || strcmp(d, "ai.onnx") == 0; }

const pl_op *pl_op_find(const char *domain, const char *op_type) {
    for (int i = 0; i < pl_op_count(); i++) {
        const pl_op *op = &op_table[i];
        bool same = default_domain(op->domain) ? default_domain(domain) : domain && !strcmp(op->domain, domain);
        if (same && strcmp(op->name, op_type) == 0) return op;
    }
    return NULL;
}
