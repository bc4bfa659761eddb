/* embed.c -- pillar embedded in a C program: load an ONNX classifier, run it on an image
 * (.npy, or a blank one), print the top-5 classes. Build: see examples/Makefile. */
#include <pillar.h>
#include <stdio.h>

int main(int argc, char **argv) {
    pillar_model *model = NULL;
    pillar_session *session = NULL;
    pillar_tensor *x = NULL, *y = NULL;
    const char *name;
    size_t ndim;
    const int64_t *dims;
    int64_t shape[PILLAR_MAX_DIMS];
    if (argc < 2 || pillar_model_load(argv[1], &model) ||
        pillar_session_create(model, NULL, &session) ||
        pillar_model_input(model, 0, &name, NULL, &ndim, &dims)) {
        fprintf(stderr, "usage: embed MODEL.onnx [IMAGE.npy]\n%s\n", pillar_last_error());
        return 1;
    }
    for (size_t d = 0; d < ndim; d++) shape[d] = dims[d] < 0 ? 1 : dims[d]; /* batch 1 */
    if ((argc > 2 ? pillar_tensor_load_npy(argv[2], &x)
                  : pillar_tensor_create(PILLAR_FLOAT32, ndim, shape, NULL, &x)) ||
        pillar_session_run(session, 1, &name, (const pillar_tensor *const *)&x, 1, NULL, &y)) {
        fprintf(stderr, "%s\n", pillar_last_error());
        return 1;
    }
    const float *score = pillar_tensor_data(y);
    int64_t n = pillar_tensor_numel(y), best[5] = {-1, -1, -1, -1, -1};
    for (int k = 0; k < 5 && k < n; k++) /* selection of the 5 largest */
        for (int64_t i = 0; i < n; i++) {
            int taken = 0;
            for (int j = 0; j < k; j++) taken |= best[j] == i;
            if (!taken && (best[k] < 0 || score[i] > score[best[k]])) best[k] = i;
        }
    for (int k = 0; k < 5 && k < n; k++)
        printf("%d. class %lld  score %.4f\n", k + 1, (long long)best[k], score[best[k]]);
    pillar_tensor_destroy(y), pillar_tensor_destroy(x), pillar_session_destroy(session),
        pillar_model_destroy(model);
    return 0;
}
