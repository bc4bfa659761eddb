/* pass_check.h -- running a test graph with and without the graph passes and comparing
 * the outputs (test_fusion.c, test_attention.c). The including file defines CHECK
 * (check.h or its own) and `static float frand(void)` (values in [-1, 1]) first. */
#ifndef PL_TEST_PASS_CHECK_H
#define PL_TEST_PASS_CHECK_H

#include <math.h>
#include <stdlib.h>

#include "core/cpu.h"
#include "graph/ir.h"
#include "pillar.h"

typedef struct feed {
    int n;
    const char *names[8];
    pillar_tensor *t[8];
} feed;

/* An input of type t with values frand() * amp. */
static inline void feed_add(feed *f, const char *name, pl_dtype t, int ndim, const int64_t *dims, double amp) {
    pillar_tensor *x;
    pillar_tensor_create(t, (size_t)ndim, dims, NULL, &x);
    for (int64_t i = 0; i < pillar_tensor_numel(x); i++) pl_set_f64(x, i, frand() * amp);
    f->names[f->n] = name;
    f->t[f->n++] = x;
}

static inline void feed_free(feed *f) {
    for (int i = 0; i < f->n; i++) pillar_tensor_destroy(f->t[i]);
    f->n = 0;
}

/* Runs m without the passes (PILLAR_OPT=0) on the reference kernels, one thread, and
 * with them on `isa` with `threads` threads; checks every output agrees within tol
 * (relative to 1 + its largest value) and returns the fused session's step count (-1 on
 * failure); the unfused one's goes to *ref_steps when given. */
static inline int run_both(const char *what, pl_model *m, feed *f, int isa, int threads, int *ref_steps,
                           double tol) {
    pillar_session *s[2] = {NULL, NULL};
    pillar_tensor *out[2][8] = {{NULL}};
    int steps = -1;
    size_t nout = (size_t)m->graph->noutputs;
    for (int opt = 0; opt < 2; opt++) {
        if (opt)
            unsetenv("PILLAR_OPT");
        else
            setenv("PILLAR_OPT", "0", 1);
        pl_cpu_force_isa(opt ? isa : PL_ISA_REF);
        pillar_options *o;
        pillar_options_create(&o);
        pillar_options_set_threads(o, opt ? threads : 1);
        pillar_status st = pillar_session_create(m, o, &s[opt]);
        pillar_options_destroy(o);
        CHECK(st == PILLAR_OK, "%s: session (opt %d): %s", what, opt, pillar_last_error());
        if (st != PILLAR_OK) goto done;
        st = pillar_session_run(s[opt], (size_t)f->n, f->names, (const pillar_tensor *const *)f->t,
                                nout, NULL, out[opt]);
        CHECK(st == PILLAR_OK, "%s: run (opt %d): %s", what, opt, pillar_last_error());
        if (st != PILLAR_OK) goto done;
        if (opt)
            steps = (int)pillar_session_node_count(s[opt]);
        else if (ref_steps)
            *ref_steps = (int)pillar_session_node_count(s[opt]);
    }
    for (size_t k = 0; k < nout; k++) {
        const pillar_tensor *a = out[0][k], *b = out[1][k];
        CHECK(pl_tensor_same_shape(a, b), "%s: output %zu shapes differ", what, k);
        if (!pl_tensor_same_shape(a, b)) continue;
        double mx = 0, diff = 0;
        for (int64_t i = 0; i < pl_numel(a); i++) {
            double x = pl_get_f64(a, i), y = pl_get_f64(b, i);
            if (fabs(x) > mx) mx = fabs(x);
            if (!(fabs(x - y) <= diff)) diff = fabs(x - y);
        }
        CHECK(diff <= tol * (1 + mx), "%s (%s, %d threads): output %zu differs by %g (scale %g)", what,
              pl_isa_name((pl_isa)isa), threads, k, diff, mx);
    }
done:
    for (int opt = 0; opt < 2; opt++) {
        for (size_t k = 0; k < nout; k++) pillar_tensor_destroy(out[opt][k]);
        pillar_session_destroy(s[opt]);
    }
    unsetenv("PILLAR_OPT");
    pl_cpu_force_isa(-1);
    return steps;
}

#endif
