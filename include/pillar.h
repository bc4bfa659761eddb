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

/* HALOS-style sub-linear output layer (hash-based sparsity, README "LSH"). With K > 0,
 * session creation finds the model's last layer -- the first graph output made by a
 * Gemm or MatMul with a constant weight of at least 10,000 outputs (a Softmax,
 * LogSoftmax or Sigmoid after it is dropped: it does not change the ranking) -- builds
 * an LSH index over its output neurons (SimHash, K bits per key, L tables) and scores
 * only the neurons the index retrieves for each input. That output is replaced, at the
 * same position, by two:
 *   "<output>_topk_scores"  float32 [..., topk]  the layer's logits, best first
 *   "<output>_topk_labels"  int64   [..., topk]  their indices (-1: fewer were found)
 * Approximate: compare with a session without this option (pillar bench --lsh-output
 * reports recall). Session creation fails (PILLAR_ERR_UNSUPPORTED, naming the output
 * and node) for a model without such a layer. K = 0 turns it off. Ranges: K 1..30,
 * L 1..1024, topk 1..10000. */
pillar_status pillar_options_set_lsh_output(pillar_options *o, int K, int L, int topk);

/* How a session runs its layers (README "Columns"). */
typedef enum pillar_schedule {
    PILLAR_SCHEDULE_AUTO = 0,    /* default: columns only where the planner expects them to pay */
    PILLAR_SCHEDULE_LAYERS = 1,  /* layer by layer (the classic executor) */
    PILLAR_SCHEDULE_COLUMNS = 2  /* columns wherever a chain qualifies */
} pillar_schedule;
/* How the session runs its layers. Default: the PILLAR_SCHEDULE environment variable
 * (layers|columns|auto) if set, else AUTO. */
pillar_status pillar_options_set_schedule(pillar_options *o, pillar_schedule s);

/* ---------------------------------------------------------------- sessions */

/* Plans execution of `m` with options `o` (NULL for defaults): shape inference, constant
 * folding, weight packing and the memory plan. If an input's shape is still unknown
 * the session re-plans at the first run from the shapes given there. Owned: free with
 * pillar_session_destroy. The session copies what it needs from the model. */
pillar_status pillar_session_create(const pillar_model *m, const pillar_options *o,
                                    pillar_session **out);
/* Like pillar_session_create, but the session takes the model over: *m is destroyed and
 * set to NULL, whether or not the call succeeds. With every input shape fixed (see
 * pillar_session_released_bytes), each raw weight is then freed as soon as its kernel
 * has packed it, so creating the session needs little more memory than the weights
 * once, where pillar_session_create + pillar_model_destroy holds the model's copy and
 * the packed one together for a while. */
pillar_status pillar_session_create_from(pillar_model **m, const pillar_options *o,
                                         pillar_session **out);
void pillar_session_destroy(pillar_session *s);

/* The schedule the session chose, as text: a first line "schedule: <layers|columns>
 * (requested <auto|layers|columns>), L2 <bytes> per core, L3 <bytes>", then one line
 * per chain: "chain <i>: <first node name> .. <last node name> (<n> layers,
 * <C>x<H>x<W> -> <M>x<OH>x<OW>), tile <rows> rows, <tiles> tiles per image, working set
 * <KB> KB, bytes per inference: layers <MB> MB, columns <MB> MB[, not used: <reason>]"
 * and a last line "total bytes per inference: layers <MB> MB, columns <MB> MB".
 * Owned by the session, valid until it is destroyed (or re-planned). */
const char *pillar_session_schedule_report(const pillar_session *s);
/* The schedule in effect: PILLAR_SCHEDULE_LAYERS or PILLAR_SCHEDULE_COLUMNS (columns
 * when at least one chain runs as columns). */
pillar_schedule pillar_session_schedule(const pillar_session *s);

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

/* ---------------------------------------------------------------- profiling, memory */

/* Per-node timing of the session's runs: on != 0 starts it (clearing earlier counts),
 * 0 stops it (the default; then a run reads no clock). */
pillar_status pillar_session_set_profiling(pillar_session *s, int on);
/* Node i's (as pillar_session_node) total wall time in ms over the runs profiled so far,
 * and the number of those runs. Either out may be NULL. Times restart at 0 when a change
 * of input shapes re-plans the session. */
pillar_status pillar_session_node_time(const pillar_session *s, size_t i, double *ms_total_out,
                                       int64_t *calls_out);
/* A session shares its model's weights (destroying the model first is fine and frees
 * what the session does not need). When every input shape is fixed (by the model, or by
 * pillar_options_set_shape / _set_dim), the session also lets go of the raw weights
 * that its kernels packed into their own layout; this is how many bytes that was (0 for
 * sessions whose input shapes may still change: re-planning needs the raw weights). */
size_t pillar_session_released_bytes(const pillar_session *s);

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

/* ---------------------------------------------------------------- INT8 quantisation */

/* Static INT8 quantisation in ONNX Runtime's QDQ format: the constant weights of Conv,
 * Gemm and MatMul become int8 initializers (symmetric, zero point 0, one scale per output
 * channel unless per-tensor) read through DequantizeLinear; the float inputs of those
 * nodes, and their outputs (after a Relu/Clip(0, ...) that the uint8 range makes
 * redundant, which is removed), pass through QuantizeLinear -> DequantizeLinear with a
 * uint8 scale and zero point from calibration; biases become int32 with scale
 * input scale x weight scale. Zeros in the weights (pruning) stay exactly zero. */
typedef struct pillar_quantize_options pillar_quantize_options;

typedef enum pillar_calibration {
    PILLAR_CALIBRATE_MINMAX = 0,    /* the smallest and largest value seen */
    PILLAR_CALIBRATE_PERCENTILE = 1 /* cut (100 - percentile) / 2 % off each tail */
} pillar_calibration;

/* Owned: pillar_quantize_options_destroy. Defaults: min-max, per-channel weights,
 * nothing excluded, threads 0 (one per physical core). */
pillar_status pillar_quantize_options_create(pillar_quantize_options **out);
void pillar_quantize_options_destroy(pillar_quantize_options *o);
/* `percentile` in (50, 100]: used by PILLAR_CALIBRATE_PERCENTILE (e.g. 99.99). */
pillar_status pillar_quantize_options_set_method(pillar_quantize_options *o, pillar_calibration method,
                                                 double percentile);
/* Non-zero: one scale per weight tensor instead of one per output channel. */
pillar_status pillar_quantize_options_set_per_tensor(pillar_quantize_options *o, int per_tensor);
/* Leaves the node named `node` in float32 (call once per node). Copied. */
pillar_status pillar_quantize_options_exclude(pillar_quantize_options *o, const char *node);
pillar_status pillar_quantize_options_set_threads(pillar_quantize_options *o, int threads);

/* Calibrates `m` on `n_samples` runs and returns the quantized model. `samples` holds
 * n_samples x (number of model inputs) tensors, run s feeding samples[s * ninputs + i]
 * to model input i (in pillar_model_input order); a tensor may hold a batch. Borrowed:
 * only read during the call. `o` may be NULL (defaults). Owned: pillar_model_destroy;
 * save with pillar_model_save. */
pillar_status pillar_model_quantize(const pillar_model *m, const pillar_quantize_options *o, size_t n_samples,
                                    const pillar_tensor *const *samples, pillar_model **out);

/* ---------------------------------------------------------------- pruning */

typedef struct pillar_prune_options pillar_prune_options;
typedef struct pillar_prune_report pillar_prune_report;

/* Options of pillar_model_prune. Owned: pillar_prune_options_destroy. Defaults:
 * sparsity 0, block 1 (unstructured), layer scope, first and last layers kept dense. */
pillar_status pillar_prune_options_create(pillar_prune_options **out);
void pillar_prune_options_destroy(pillar_prune_options *o);
/* Fraction (0..1) of each pruned layer's weights to zero (of all pruned layers'
 * weights together with the global scope). */
pillar_status pillar_prune_options_set_sparsity(pillar_prune_options *o, double sparsity);
/* Blocks of `block` (1..1024) consecutive weights along the reduction axis (a Conv's
 * input channels at each output channel and tap, a MatMul weight's K rows at each
 * column) are kept or zeroed together. */
pillar_status pillar_prune_options_set_block(pillar_prune_options *o, int block);
/* 0: each layer to the sparsity (default); 1: all layers' blocks ranked together. */
pillar_status pillar_prune_options_set_global(pillar_prune_options *o, int global);
/* 1 (default): the first and last prunable layers stay dense; 0: they are pruned too. */
pillar_status pillar_prune_options_set_keep_first_last(pillar_prune_options *o, int keep);
/* Keeps node `node` dense (name copied); pillar_model_prune fails if it names no
 * prunable node. */
pillar_status pillar_prune_options_skip(pillar_prune_options *o, const char *node);

/* One-shot magnitude pruning, in place, of the constant float32 weights (input 1) of
 * the Conv, Gemm and MatMul nodes of `m`: the weakest blocks by mean |w| are zeroed.
 * Save the result with pillar_model_save. `report_out` (may be NULL) receives each
 * candidate layer's sparsity before and after; owned: pillar_prune_report_destroy. */
pillar_status pillar_model_prune(pillar_model *m, const pillar_prune_options *o,
                                 pillar_prune_report **report_out);
size_t pillar_prune_report_count(const pillar_prune_report *r);
/* Layer i in graph order: node name, op type, weight shape (borrowed, valid while the
 * report lives), weight count, zero fraction before and after, and "" if it was
 * pruned or why it was kept ("first layer", "last layer", "skipped"). Outs may be NULL. */
pillar_status pillar_prune_report_layer(const pillar_prune_report *r, size_t i, const char **node_out,
                                        const char **op_out, size_t *ndim_out, const int64_t **dims_out,
                                        int64_t *params_out, double *before_out, double *after_out,
                                        const char **note_out);
void pillar_prune_report_destroy(pillar_prune_report *r);

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
/* Weights pruning leaves dense: with keep_first_last non-zero, those of the first and the
 * last layer (graph order) with a prunable weight; and those of the nodes or weights
 * named in `skip` (comma-separated; NULL or "" for none; a name that is no Conv, Gemm or
 * MatMul with a trainable weight fails pillar_trainer_create). Default: 0, NULL. */
pillar_status pillar_train_options_set_prune_skip(pillar_train_options *o, int keep_first_last,
                                                  const char *skip);

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
 * MatMul weights, except those kept by pillar_train_options_set_prune_skip);
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
