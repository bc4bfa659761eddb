/* train.h -- internals of the trainer (src/train): the backward schedule of a graph
 * (autodiff.c), the per-op training forward/backward functions listed in grad.def
 * (grad_*.c), losses, optimizers, pruning and the BF16 matrix path. The public API is
 * the "training" section of pillar.h (trainer.c).
 *
 * Model of execution. A tr_program is the analysis of one graph: which values are
 * trainable parameters (float32 initializers feeding a differentiable input), which
 * nodes need a backward, in which order. A tr_replica runs the program on one slice of
 * a batch: it owns every activation of that slice (nothing is freed or reused between
 * forward and backward), the gradient buffers, and per-node saved state. Parameters
 * are shared between replicas (read-only during a step); each replica accumulates its
 * own parameter gradients, which the trainer reduces in a fixed order. */
#ifndef PL_TRAIN_H
#define PL_TRAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/gemm/sgemm.h"
#include "ops/op.h"

typedef struct tr_program tr_program;
typedef struct tr_replica tr_replica;

/* What a training forward or backward function sees for one node of one replica. */
typedef struct tr_ctx {
    pl_op_ctx op;     /* node, opset, in[] / out[]: this replica's tensors; pool NULL */
    pl_tensor **gin;  /* gin[i]: float32 buffer of input i's shape to which d loss / d in[i]
                       * is ADDED; NULL when that gradient is not wanted */
    pl_tensor **gout; /* gout[k]: d loss / d out[k]; NULL when it is zero */
    void **state;     /* this node's saved state in this replica (tr_state) */
    bool training;    /* a training step (true) or an evaluation (false) */
    bool bf16;        /* matrix products in bfloat16 (tr_gemm) */
    uint64_t seed;    /* random stream of this node for this step (Dropout) */
    int64_t row0;     /* index in the whole batch of this replica's first example */
    tr_replica *rep;
} tr_ctx;

typedef pl_status (*tr_fn)(tr_ctx *c);

/* Runs once per training step after every replica's forward, in a fixed order, on the
 * trainer's thread: folds per-replica statistics (BatchNorm's batch mean and variance
 * in states[r], from rows[r] examples) into the shared tensors (running statistics).
 * in[] are the master graph's tensors of the node's inputs. */
typedef pl_status (*tr_commit_fn)(const pl_node *n, int opset, pl_tensor *const *in,
                                  void *const *states, const int64_t *rows, int nrep);

typedef struct tr_grad {
    const char *op;      /* ONNX op_type (default domain) */
    tr_fn forward;       /* NULL: the inference op's run() */
    tr_fn backward;      /* adds input gradients from output gradients */
    unsigned diff;       /* bit i set: input i is differentiable */
    tr_commit_fn commit; /* NULL if none */
} tr_grad;

/* The entry for an op type, or NULL when it has no backward. */
const tr_grad *tr_grad_find(const char *op_type);
int tr_grad_count(void);
const tr_grad *tr_grad_at(int i);

/* A buffer of at least `bytes` kept for this node in this replica across steps (grown
 * when needed, content kept only up to the old size); NULL on out of memory. */
void *tr_state(tr_ctx *c, size_t bytes);
/* Per-replica scratch of at least `bytes`, 64-byte aligned, valid until the next
 * tr_scratch call in this replica; NULL on out of memory. */
void *tr_scratch(tr_ctx *c, size_t bytes);
/* Out-of-memory error naming the node. */
pl_status tr_nomem(const tr_ctx *c);

/* C = alpha op(A) op(B) + beta C (+ epilogue), row-major as pl_sgemm_run, on the calling
 * thread; in bfloat16 (inputs rounded, float32 sums) when c->bf16. bf16.c. */
pl_status tr_gemm(tr_ctx *c, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                  const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                  int64_t ldc, const pl_sgemm_epilogue *epi);

/* Per-replica scratch buffers by purpose, 64-byte aligned, kept across calls (content
 * not kept when one grows); NULL on out of memory. */
enum { TR_SCRATCH_OP = 0, TR_SCRATCH_GEMM = 1, TR_SCRATCH_PACK = 2, TR_SCRATCH_SLOTS = 3 };
void *tr_scratch_slot(tr_ctx *c, int slot, size_t bytes);

/* Operand A of several products prepared once (weights over the images of a batch):
 * packed for the SGEMM, or for the BF16 kernel, in `buf` (tr_gemm_prepare_size bytes;
 * the caller keeps it alive while the handle is used). */
typedef struct tr_gemm_a {
    bool ta;
    int64_t M, K, lda;
    const float *A;
    void *packed; /* SGEMM or BF16 packed form, or a rounded float copy (BF16 fallback) */
    int kind;     /* 0: SGEMM packed, 1: BF16 packed, 2: rounded copy */
} tr_gemm_a;
size_t tr_gemm_prepare_size(tr_ctx *c, int64_t M, int64_t K);
pl_status tr_gemm_prepare(tr_ctx *c, bool ta, int64_t M, int64_t K, const float *A, int64_t lda,
                          void *buf, tr_gemm_a *out);
/* C = alpha op(A) op(B) + beta C (+ epilogue) with a prepared A. */
pl_status tr_gemm_with(tr_ctx *c, const tr_gemm_a *a, int64_t N, bool tb, const float *B,
                       int64_t ldb, float alpha, float beta, float *C, int64_t ldc,
                       const pl_sgemm_epilogue *epi);

/* ---- bf16.c / bf16_avx512.c: the bfloat16 GEMM */

/* Whether the AVX512_BF16 kernel is in use (else the fallback: operands rounded to
 * bfloat16 and multiplied by the float32 SGEMM, which gives the same products). */
bool tr_bf16_native(void);
/* AVX512_BF16 GEMM (bf16_avx512.c): C = alpha op(A) op(B) + beta C with bf16 operands
 * and float32 sums; A raw, or packed_a from tr_bf16_avx512_pack_a (A, lda, ta then
 * unused); `work` holds at least tr_bf16_avx512_work(M, N, K) bytes. Returns false
 * when the file was built without AVX512_BF16 (and sizes are then 0). */
size_t tr_bf16_avx512_work(int64_t M, int64_t N, int64_t K);
size_t tr_bf16_avx512_packed_a_size(int64_t M, int64_t K);
void tr_bf16_avx512_pack_a(bool ta, int64_t M, int64_t K, const float *A, int64_t lda, void *buf);
bool tr_bf16_gemm_avx512(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                         const float *A, int64_t lda, const void *packed_a, const float *B,
                         int64_t ldb, float beta, float *C, int64_t ldc, void *work);

/* ---- autodiff.c: programs and replicas */

/* Options of one forward/backward run. */
typedef struct tr_run {
    bool training;
    bool bf16;
    uint64_t seed; /* step seed (mixed with the node index for each node) */
    int64_t row0;  /* first example of this replica in the batch */
} tr_run;

/* Analyses `g` (borrowed; must outlive the program; parameters' data are read from it at
 * each run): is_param[v] marks the trainable values (float32 constants), `input` the
 * value fed with the data, `target` the value whose gradient seeds the backward.
 * With input_grad, the gradient of `input` is computed too (gradient checks). */
pl_status tr_program_create(const pl_graph *g, const bool *is_param, int input, int target,
                            bool input_grad, tr_program **out);
void tr_program_destroy(tr_program *p);
/* Whether value v gets a gradient (a parameter that influences the target). */
bool tr_program_param_used(const tr_program *p, int v);

pl_status tr_replica_create(const tr_program *p, tr_replica **out);
void tr_replica_destroy(tr_replica *r);
/* Makes parameter v's gradient live at `buf` (numel floats, owned by the caller)
 * instead of a buffer of the replica's own. */
void tr_replica_bind_grad(tr_replica *r, int v, float *buf);
/* Forward over x (the input value's shape and data; borrowed for the call and until
 * the backward). Plans when the input shape changed. */
pl_status tr_replica_forward(tr_replica *r, const pl_tensor *x, const tr_run *o);
/* Value v as computed by the last forward (borrowed). */
pl_tensor *tr_replica_value(tr_replica *r, int v);
/* Zeroes every gradient and returns the target's gradient buffer, for the caller to
 * fill before tr_replica_backward. */
pl_status tr_replica_begin_backward(tr_replica *r, pl_tensor **target_grad);
pl_status tr_replica_backward(tr_replica *r, const tr_run *o);
/* Gradient of value v after the backward, or NULL if it has none (borrowed). */
pl_tensor *tr_replica_grad(tr_replica *r, int v);
/* Per-node saved states of the last forward, for commit functions. */
void *tr_replica_node_state(tr_replica *r, int node);

/* ---- loss.c */

/* Loss of the rows [0, n) of `out` (this replica's slice) against labels rows
 * [row0, row0 + n) of `labels` (the whole batch's labels). Sums (not means) the loss
 * into *loss_sum and the top-1 hits into *correct; when grad is not NULL writes d loss /
 * d out, scaled by `scale` (1 / elements of the whole batch). */
pl_status tr_loss(pillar_loss kind, const pl_tensor *out, const pl_tensor *labels, int64_t row0,
                  double scale, pl_tensor *grad, double *loss_sum, int64_t *correct);
/* Checks the labels against the output once per batch: type, shape, range. `batch`
 * examples; out_dims: the output's shape for one replica (dims[0] ignored). */
pl_status tr_loss_check(pillar_loss kind, const pl_tensor *labels, int64_t batch, int out_ndim,
                        const int64_t *out_dims);
/* Number of loss elements per example (product of the label's trailing dims). */
int64_t tr_loss_per_example(pillar_loss kind, int out_ndim, const int64_t *out_dims);

/* ---- optim.c */

typedef struct tr_optim {
    pillar_optimizer kind;
    float lr, momentum, weight_decay;
    float beta1, beta2, eps;
    int64_t step; /* number of updates done (before the current one) */
} tr_optim;

/* Updates w[i0, i1) from the summed gradient g (also of the replicas' buffers: g is the
 * sum over nrep buffers grads[r][i], added in order r = 0, 1, ...); m, v: optimizer
 * moments (NULL when unused); mask: NULL or 0 for pruned weights (kept at zero with
 * their moments). */
void tr_optim_update(const tr_optim *o, float *w, float *const *grads, int nrep, float *m, float *v,
                     const uint8_t *mask, int64_t i0, int64_t i1);
/* Number of moment buffers the optimizer needs (0, 1 or 2). */
int tr_optim_moments(const tr_optim *o);

/* ---- prune.c */

/* Computes a mask for w (rows x cols as stored, row-major) keeping the largest-magnitude
 * blocks of br x bc so that a fraction `sparsity` of the elements is masked (0); zeroes
 * the masked weights. Blocks at the edges may be partial. */
pl_status tr_prune_mask(float *w, int64_t rows, int64_t cols, int br, int bc, double sparsity,
                        uint8_t *mask);

/* One weight of `pillar prune`: outer*red*inner floats, element (o, r, i) at
 * w[(o*red + r)*inner + i], r the reduction axis (Conv [M, C, kh, kw]: outer M, red C,
 * inner kh*kw; MatMul [K, N]: 1, K, N; Gemm transB [N, K]: N, K, 1). */
typedef struct tr_prune_layer {
    float *w;
    int64_t outer, red, inner;
} tr_prune_layer;

/* Magnitude pruning in blocks of `block` consecutive elements along the reduction axis
 * (partial blocks at its end), weakest mean |w| first: each layer to `sparsity` of its
 * elements, or with `global` all layers' blocks ranked together to `sparsity` of their
 * total; to the nearest block, ties pruned in order. Zeroes the pruned weights. */
pl_status tr_prune_layers(tr_prune_layer *layers, int n, int block, double sparsity, bool global);

#endif
