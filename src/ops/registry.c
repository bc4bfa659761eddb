/* registry.c -- the operator table, generated from ops.def. */
#include <string.h>

#include "ops/op.h"

#define OP(name, infer, run, flags)                                                          \
    pl_status infer(pl_op_ctx *c);                                                          \
    pl_status run(pl_op_ctx *c);
#include "ops/ops.def"
#undef OP

static const pl_op op_table[] = {
#define OP(name, infer, run, flags) {name, "", infer, run, flags},
#include "ops/ops.def"
#undef OP
    {NULL, NULL, NULL, NULL, 0}};

int pl_op_count(void) { return (int)(sizeof op_table / sizeof op_table[0]) - 1; }
const pl_op *pl_op_at(int i) { return i >= 0 && i < pl_op_count() ? &op_table[i] : NULL; }

const pl_op *pl_op_find(const char *domain, const char *op_type) {
    if (domain && domain[0] && strcmp(domain, "ai.onnx") != 0) return NULL;
    for (int i = 0; i < pl_op_count(); i++)
        if (strcmp(op_table[i].name, op_type) == 0) return &op_table[i];
    return NULL;
}
