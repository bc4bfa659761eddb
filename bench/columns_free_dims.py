"""columns_free_dims.py IN.onnx OUT.onnx -- a copy of an exported image model whose input
batch, height and width (and the outputs' batch) are symbolic ("batch", "height",
"width"), so that `pillar bench --shape input=NxCxHxW` can run it at any batch and image
size. The graph's stored intermediate shapes (value_info) are dropped: they were inferred
for the export's fixed size. Only for models whose ops do not bake the size in
(torchvision's ResNet and MobileNet end in GlobalAveragePool + Flatten)."""
import sys

import onnx


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: columns_free_dims.py IN.onnx OUT.onnx")
    model = onnx.load(sys.argv[1])
    g = model.graph
    init = {t.name for t in g.initializer}
    for inp in g.input:
        if inp.name in init:
            continue
        dims = inp.type.tensor_type.shape.dim
        if len(dims) != 4:
            sys.exit("%s: input %s has %d dims, expected NCHW" % (sys.argv[1], inp.name, len(dims)))
        for d, sym in ((0, "batch"), (2, "height"), (3, "width")):
            dims[d].Clear()
            dims[d].dim_param = sym
    for out in g.output:
        dims = out.type.tensor_type.shape.dim
        if len(dims) > 0:
            dims[0].Clear()
            dims[0].dim_param = "batch"
    del g.value_info[:]
    onnx.checker.check_model(model)
    onnx.save(model, sys.argv[2])


if __name__ == "__main__":
    main()
