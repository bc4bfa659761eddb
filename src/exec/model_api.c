/* model_api.c -- the public model-zoo, model-saving and CPU calls of pillar.h. */
#include "core/cpu.h"
#include "onnx/onnx_export.h"
#include "zoo/zoo.h"

pillar_status pillar_model_zoo(const char *name, const int64_t *chw, int64_t classes, uint64_t seed,
                               pillar_model **out) {
    if (!out) return pl_error(PL_ERR_ARGUMENT, "pillar_model_zoo: out is NULL");
    if (!name) return pl_error(PL_ERR_ARGUMENT, "pillar_model_zoo: name is NULL");
    pl_model *m = NULL;
    PL_TRY(pl_zoo_build(name, chw, classes, seed, &m));
    *out = m;
    return PL_OK;
}

pillar_status pillar_model_save(const pillar_model *m, const char *path) {
    if (!m) return pl_error(PL_ERR_ARGUMENT, "pillar_model_save: model is NULL");
    if (!path || !path[0])
        return pl_error(PL_ERR_ARGUMENT, "pillar_model_save: path is NULL or empty");
    return pl_onnx_save(m, path);
}

const char *pillar_cpu_isa(void) {
    return pl_isa_name(pl_cpu_isa());
}
