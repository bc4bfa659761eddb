/*
 * pillar.h -- the one public header of libpillar.
 *
 * Conventions
 *  - Every handle is opaque. Each create/load has a destroy; destroy(NULL) is a no-op.
 *  - Every fallible call returns a pillar_status (PILLAR_OK == 0). On failure the
 *    calling thread's pillar_last_error() holds a one-line message that names the
 *    file, node or argument and the problem. Results come back through trailing *_out
 *    parameters, which are left untouched on failure.
 *  - The library never calls exit() or abort(), and reports allocation failure as
 *    PILLAR_ERR_NOMEM.
 *  - Ownership is stated on each call: "owned" results are freed by the caller with
 *    the named destroy call; "borrowed" pointers stay valid as long as the object they
 *    came from.
 */
#ifndef PILLAR_H
#define PILLAR_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PILLAR_VERSION_MAJOR 0
#define PILLAR_VERSION_MINOR 1
#define PILLAR_VERSION_PATCH 0

typedef enum pillar_status {
    PILLAR_OK = 0,
    PILLAR_ERR_ARGUMENT = 1,    /* a bad argument to an API call (NULL, out of range) */
    PILLAR_ERR_MODEL = 2,       /* the model file is corrupt or inconsistent */
    PILLAR_ERR_INPUT = 3,       /* an input tensor has the wrong name, type or shape */
    PILLAR_ERR_UNSUPPORTED = 4, /* a valid model uses an op, type or attribute not supported */
    PILLAR_ERR_NOMEM = 5,       /* an allocation failed */
    PILLAR_ERR_IO = 6,          /* a file could not be read or written */
    PILLAR_ERR_INTERNAL = 7     /* a bug in pillar: please report it */
} pillar_status;

/* Element types; the numbers are ONNX's TensorProto.DataType values. */
typedef enum pillar_dtype {
    PILLAR_UNDEFINED = 0,
    PILLAR_FLOAT32 = 1,
    PILLAR_UINT8 = 2,
    PILLAR_INT8 = 3,
    PILLAR_UINT16 = 4,
    PILLAR_INT16 = 5,
    PILLAR_INT32 = 6,
    PILLAR_INT64 = 7,
    PILLAR_STRING = 8,
    PILLAR_BOOL = 9,
    PILLAR_FLOAT16 = 10,
    PILLAR_FLOAT64 = 11,
    PILLAR_UINT32 = 12,
    PILLAR_UINT64 = 13,
    PILLAR_BFLOAT16 = 16
} pillar_dtype;

#define PILLAR_MAX_DIMS 8

typedef struct pillar_model pillar_model;
typedef struct pillar_options pillar_options;
typedef struct pillar_session pillar_session;
typedef struct pillar_tensor pillar_tensor;

/* "MAJOR.MINOR.PATCH". Borrowed, static. */
const char *pillar_version(void);

/* The message of the last failed call on this thread ("" if none). Borrowed: valid
 * until the next pillar call on this thread. */
const char *pillar_last_error(void);

/* Name of a status code ("model error", ...). Borrowed, static. */
const char *pillar_status_name(pillar_status s);

/* Name of a dtype ("float32", ...), or "unknown". Borrowed, static. */
const char *pillar_dtype_name(pillar_dtype t);

/* Size in bytes of one element (0 for STRING and UNDEFINED). */
size_t pillar_dtype_size(pillar_dtype t);

/* ---------------------------------------------------------------- tensors */

/* A new tensor of the given type and shape. `data` (numel * dtype size bytes) is copied
 * if non-NULL, else the tensor is zero-filled. Owned: free with pillar_tensor_destroy. */
pillar_status pillar_tensor_create(pillar_dtype dtype, size_t ndim, const int64_t *dims,
                                   const void *data, pillar_tensor **out);

/* A tensor that borrows `data` (not copied, not freed); `data` must outlive the tensor.
 * Owned handle: free with pillar_tensor_destroy. */
pillar_status pillar_tensor_wrap(pillar_dtype dtype, size_t ndim, const int64_t *dims,
                                 void *data, pillar_tensor **out);

void pillar_tensor_destroy(pillar_tensor *t);

pillar_dtype pillar_tensor_dtype(const pillar_tensor *t);
size_t pillar_tensor_ndim(const pillar_tensor *t);
/* Borrowed: valid while the tensor lives. */
const int64_t *pillar_tensor_dims(const pillar_tensor *t);
int64_t pillar_tensor_numel(const pillar_tensor *t);
/* Borrowed: valid while the tensor lives. */
void *pillar_tensor_data(const pillar_tensor *t);

/* ---------------------------------------------------------------- models */

/* Reads an ONNX model (and any external data files next to it). Owned: free with
 * pillar_model_destroy. The model may be destroyed after sessions are created from it. */
pillar_status pillar_model_load(const char *path, pillar_model **out);

/* The same from bytes in memory; `name` is used in messages; external data is looked up
 * relative to the current directory. The bytes are not kept. */
pillar_status pillar_model_load_memory(const void *bytes, size_t size, const char *name,
                                       pillar_model **out);

void pillar_model_destroy(pillar_model *m);

/* The graph inputs a user must feed (initializers excluded) and the graph outputs. */
size_t pillar_model_input_count(const pillar_model *m);
size_t pillar_model_output_count(const pillar_model *m);

/* Metadata of input/output i. name, dims: borrowed, valid while the model lives.
 * A dimension that is unknown or symbolic is -1; its symbol (or NULL) comes from
 * pillar_model_input_dim_name. Any of the out pointers may be NULL. */
pillar_status pillar_model_input(const pillar_model *m, size_t i, const char **name_out,
                                 pillar_dtype *dtype_out, size_t *ndim_out,
                                 const int64_t **dims_out);
pillar_status pillar_model_output(const pillar_model *m, size_t i, const char **name_out,
                                  pillar_dtype *dtype_out, size_t *ndim_out,
                                  const int64_t **dims_out);
/* Borrowed symbol of dimension d of input i, or NULL if the dimension is not symbolic. */
const char *pillar_model_input_dim_name(const pillar_model *m, size_t i, size_t d);

/* ---------------------------------------------------------------- options */

/* Owned: free with pillar_options_destroy. */
pillar_status pillar_options_create(pillar_options **out);
void pillar_options_destroy(pillar_options *o);

/* Worker threads for a session (0 = one per physical core, the default). */
pillar_status pillar_options_set_threads(pillar_options *o, int threads);

/* Fixes the shape of a graph input whose dimensions are symbolic. Copied. */
pillar_status pillar_options_set_shape(pillar_options *o, const char *input, size_t ndim,
                                       const int64_t *dims);

/* Gives a value to a named symbolic dimension ("batch" = 4) for every input using it. */
pillar_status pillar_options_set_dim(pillar_options *o, const char *symbol, int64_t value);

/* ---------------------------------------------------------------- sessions */

/* Plans execution of `m` with options `o` (NULL for defaults): shape inference, constant
 * folding, weight packing and the memory plan. If an input's shape is still unknown
 * the session re-plans at the first run from the shapes given there. Owned: free with
 * pillar_session_destroy. The session copies what it needs from the model. */
pillar_status pillar_session_create(const pillar_model *m, const pillar_options *o,
                                    pillar_session **out);
void pillar_session_destroy(pillar_session *s);

/* Runs the model once. Inputs are matched by name (names[i] for inputs[i]); each must
 * have the input's type and a shape compatible with the model. Outputs: `outputs[i]`
 * receives a new tensor for output `output_names[i]` (NULL names = all model outputs in
 * order, n_outputs must then equal pillar_model_output_count). Owned: free each with
 * pillar_tensor_destroy. A session runs one call at a time; use one session per thread
 * for parallel calls. */
pillar_status pillar_session_run(pillar_session *s, size_t n_inputs, const char *const *names,
                                 const pillar_tensor *const *inputs, size_t n_outputs,
                                 const char *const *output_names, pillar_tensor **outputs);

/* The session's model inputs/outputs as resolved at creation (dims may still be -1 for
 * dynamic shapes). Same as the model calls but for the session. */
size_t pillar_session_input_count(const pillar_session *s);
size_t pillar_session_output_count(const pillar_session *s);
pillar_status pillar_session_input(const pillar_session *s, size_t i, const char **name_out,
                                   pillar_dtype *dtype_out, size_t *ndim_out,
                                   const int64_t **dims_out);
pillar_status pillar_session_output(const pillar_session *s, size_t i, const char **name_out,
                                    pillar_dtype *dtype_out, size_t *ndim_out,
                                    const int64_t **dims_out);

/* ---------------------------------------------------------------- inspection */

/* The session's planned nodes (after constant folding), in execution order. */
size_t pillar_session_node_count(const pillar_session *s);
/* Node i: name and op type (borrowed, valid while the session lives); shape of its
 * first output (borrowed; ndim -1 if only known at run time); number of weight
 * elements (constant float inputs), fraction of those that are zero, and
 * multiply-accumulates per run (0 for ops without a MAC count). Any out may be NULL. */
pillar_status pillar_session_node(const pillar_session *s, size_t i, const char **name_out,
                                  const char **op_out, int *ndim_out, const int64_t **dims_out,
                                  int64_t *params_out, double *sparsity_out, int64_t *macs_out);

/* The kernel the session chose for node i when it was planned ("winograd",
 * "sparse csr 91%", "int8 vnni", ...; "" when the op does not say or i is out of
 * range). Borrowed, valid while the session lives. */
const char *pillar_session_node_kernel(const pillar_session *s, size_t i);

/* Bytes of the intermediate-tensor arena planned for one run (0 if planned at run
 * time). */
size_t pillar_session_arena_bytes(const pillar_session *s);

/* ---------------------------------------------------------------- model zoo, saving */

/* A ready-made architecture with seeded random weights, as an ONNX-equivalent model:
 * "resnet50", "mobilenet_v2" (ImageNet shapes) and, to train from scratch, "mlp",
 * "lenet" (a LeNet-style CNN), "resnet8" (a small ResNet). `chw` is the input's
 * C, H, W (NULL: the architecture's default, 3x224x224 or 1x28x28), `classes` the
 * number of outputs (0: default 1000 or 10). The input is named "input" with a symbolic
 * batch dimension "batch"; the output is "logits". Owned: pillar_model_destroy. */
pillar_status pillar_model_zoo(const char *name, const int64_t *chw, int64_t classes, uint64_t seed,
                               pillar_model **out);

/* Writes the model as an ONNX file (that ONNX Runtime also runs). */
pillar_status pillar_model_save(const pillar_model *m, const char *path);

/* The instruction set the kernels use on this machine ("avx512", "avx2", "ref"),
 * after any PILLAR_ISA override. Borrowed, static. */
const char *pillar_cpu_isa(void);

/* ---------------------------------------------------------------- training */

typedef struct pillar_trainer pillar_trainer;
typedef struct pillar_train_options pillar_train_options;

typedef enum pillar_optimizer {
    PILLAR_OPTIMIZER_SGD = 0,   /* with optional momentum (Nesterov off) */
    PILLAR_OPTIMIZER_ADAM = 1,
    PILLAR_OPTIMIZER_ADAMW = 2  /* decoupled weight decay */
} pillar_optimizer;

typedef enum pillar_loss {
    PILLAR_LOSS_SOFTMAX_CROSS_ENTROPY = 0, /* logits + int64 class labels */
    PILLAR_LOSS_NLL = 1,                   /* log-probabilities + int64 class labels */
    PILLAR_LOSS_MSE = 2                    /* outputs + float targets of the same shape */
} pillar_loss;

typedef enum pillar_precision {
    PILLAR_PRECISION_FP32 = 0,
    PILLAR_PRECISION_BF16 = 1 /* matrix work in bfloat16, float32 master weights */
} pillar_precision;

/* Owned: pillar_train_options_destroy. Defaults: SGD, lr 0.01, momentum 0, weight decay
 * 0, batch 64, threads 0 (one per physical core), seed 0, FP32, softmax cross-entropy on
 * the model's single output. For Adam/AdamW a non-zero momentum is beta1 (default 0.9);
 * beta2 = 0.999, eps = 1e-8; weight decay is an L2 term for SGD/Adam, decoupled for
 * AdamW (as in PyTorch). */
pillar_status pillar_train_options_create(pillar_train_options **out);
void pillar_train_options_destroy(pillar_train_options *o);
pillar_status pillar_train_options_set_optimizer(pillar_train_options *o, pillar_optimizer opt, float lr,
                                                 float momentum, float weight_decay);
pillar_status pillar_train_options_set_batch(pillar_train_options *o, int64_t batch);
pillar_status pillar_train_options_set_threads(pillar_train_options *o, int threads);
pillar_status pillar_train_options_set_seed(pillar_train_options *o, uint64_t seed);
pillar_status pillar_train_options_set_precision(pillar_train_options *o, pillar_precision p);
/* The loss and the model output it is attached to (NULL: the single output). */
pillar_status pillar_train_options_set_loss(pillar_train_options *o, pillar_loss loss, const char *output);
/* Pruning masks in blocks of rows x cols of each weight matrix (1x1: unstructured). */
pillar_status pillar_train_options_set_prune_block(pillar_train_options *o, int rows, int cols);

/* Prepares to train every float initializer of `m` that feeds a trainable input
 * (weights, biases, normalisation scales) from the options. The trainer copies what it
 * needs. Owned: pillar_trainer_destroy. */
pillar_status pillar_trainer_create(const pillar_model *m, const pillar_train_options *o,
                                    pillar_trainer **out);
void pillar_trainer_destroy(pillar_trainer *t);

/* One optimisation step on a batch: x is the model input (batch first), labels int64
 * class indices [batch] (or float targets for MSE). Data-parallel over the trainer's
 * threads; with a fixed seed and thread count the result is reproducible. Outputs (any
 * may be NULL): mean loss over the batch, number of correct top-1 predictions. */
pillar_status pillar_trainer_step(pillar_trainer *t, const pillar_tensor *x, const pillar_tensor *labels,
                                  float *loss_out, int64_t *correct_out);
/* Forward only, inference mode (BatchNorm running statistics, no dropout). */
pillar_status pillar_trainer_evaluate(pillar_trainer *t, const pillar_tensor *x, const pillar_tensor *labels,
                                      float *loss_out, int64_t *correct_out);
pillar_status pillar_trainer_set_lr(pillar_trainer *t, float lr);
/* Magnitude pruning now, to `sparsity` (0..1) of each prunable weight (Conv, Gemm,
 * MatMul weights; the first and last layers are pruned too unless skipped by name);
 * the masks stay fixed through later steps until the next call. */
pillar_status pillar_trainer_prune(pillar_trainer *t, float sparsity);
/* Fraction of zeros over the prunable weights. */
double pillar_trainer_sparsity(const pillar_trainer *t);
/* The trained model as ONNX in inference form (BatchNorm with running statistics). */
pillar_status pillar_trainer_save(const pillar_trainer *t, const char *path);
/* Full state (weights, optimizer moments, masks, step count) to resume from. */
pillar_status pillar_trainer_checkpoint(const pillar_trainer *t, const char *path);
pillar_status pillar_trainer_restore(pillar_trainer *t, const char *path);

/* ---------------------------------------------------------------- files */

/* Reads a NumPy .npy file (little-endian numeric dtypes, C order). Owned. */
pillar_status pillar_tensor_load_npy(const char *path, pillar_tensor **out);
/* Writes a tensor as .npy. */
pillar_status pillar_tensor_save_npy(const pillar_tensor *t, const char *path);
/* Reads a serialized ONNX TensorProto (.pb), as in ONNX's test data. Owned. `name_out`
 * (optional) receives the tensor's name, owned: free with free(). */
pillar_status pillar_tensor_load_pb(const char *path, pillar_tensor **out, char **name_out);

#ifdef __cplusplus
}
#endif
#endif /* PILLAR_H */
