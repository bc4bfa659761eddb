/* onnx_export.h -- writing the graph IR as an ONNX model file. */
#ifndef PL_ONNX_EXPORT_H
#define PL_ONNX_EXPORT_H

#include "graph/ir.h"

/* Writes `g` with the given opset imports. Initializers are the graph's constant values
 * that no node produces (kind PL_VALUE_CONST, producer < 0, data set); inputs and outputs
 * keep their types, shapes and symbolic dims. Tensors are written as raw_data. */
pl_status pl_onnx_save_graph(const pl_graph *g, const pl_opset *opsets, int nopsets, const char *producer,
                             const char *path);
/* The same for a loaded (and possibly modified) model. */
pl_status pl_onnx_save(const pl_model *m, const char *path);

#endif
