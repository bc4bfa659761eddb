/* test_mapped_weights.c -- a big initializer read only by Gather (an embedding table) is
 * mapped from the model file instead of read (src/onnx/import.c), so that only the rows
 * used become resident. Checked: which tables are mapped (Gather-only, at least 1 MiB,
 * loaded from a file, PILLAR_MMAP not 0) and which are not (another reader, a graph
 * output, a subgraph naming it, small, from memory); the rows gathered are exact,
 * including the first and last rows and negative indices, on every kernel level; the
 * mapping outlives the model when sessions hold it (any destruction order), and a
 * mapped table made writable is copied. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cpu.h"
#include "graph/ir.h"
#include "onnx/onnx_export.h"
#include "pillar.h"
#include "graph_build.h"

#include "check.h"

#define COLS 300
#define NIDS 7
/* indices into a table of `rows` rows: the first, the last (also as -1 and -rows)... */
static void make_ids(int64_t rows, int64_t *ids) {
    const int64_t v[NIDS] = {0, 7, -1, rows - 1, rows / 2, -rows, 3};
    memcpy(ids, v, sizeof v);
}

static float table_at(int64_t r, int64_t c) {
    return (float)(r * 1000 + c) * 0.001f - 17.0f;
}

static void add_table(pl_model *m, const char *name, int64_t rows) {
    int id = tb_val(m, name); /* before reading values: it may grow the array */
    pl_value *v = &m->graph->values[id];
    v->kind = PL_VALUE_CONST;
    int64_t d[2] = {rows, COLS};
    pl_tensor_set_shape(&v->t, PL_F32, 2, d);
    pl_tensor_alloc(&v->t);
    float *p = v->t.data;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < COLS; c++) p[r * COLS + c] = table_at(r, c);
}

static void add_input(pl_model *m, const char *name) {
    pl_graph *g = m->graph;
    int v = tb_val(m, name);
    g->values[v].kind = PL_VALUE_INPUT;
    g->values[v].declared = true;
    int64_t d = NIDS;
    pl_tensor_set_shape(&g->values[v].t, PL_I64, 1, &d);
    g->inputs = realloc(g->inputs, (size_t)(g->ninputs + 1) * sizeof(int));
    g->inputs[g->ninputs++] = v;
}

/* Kinds of graph around the table "E" (rows x 300 floats) and the input "ids". */
enum { GATHER_ONLY, GATHER_AND_IDENTITY, TABLE_IS_OUTPUT, SUBGRAPH_NAMES_IT, TWO_GATHERS };

/* A subgraph of If: y = Gather(E, ids), E and ids from the enclosing graph. */
static pl_graph *branch(pl_graph *parent) {
    pl_graph *g = pl_graph_new();
    g->parent = parent;
    int e = pl_graph_add_value(g, "E"), ids = pl_graph_add_value(g, "ids");
    int y = pl_graph_add_value(g, "by");
    g->values[e].kind = g->values[ids].kind = PL_VALUE_OUTER;
    int i = pl_graph_add_node(g);
    pl_node *n = &g->nodes[i];
    n->name = strdup("branch_gather");
    n->op_type = strdup("Gather");
    n->domain = strdup("");
    n->nin = 2;
    n->nout = 1;
    n->in = malloc(2 * sizeof(int));
    n->out = malloc(sizeof(int));
    n->in[0] = e;
    n->in[1] = ids;
    n->out[0] = y;
    g->values[y].producer = i;
    g->values[y].is_output = true;
    g->outputs = malloc(sizeof(int));
    g->outputs[g->noutputs++] = y;
    return g;
}

/* Writes the model to a temporary file; returns its path (free it) or NULL. */
static char *write_model(int kind, int64_t rows) {
    pl_model *m = tb_new("mapped", 13);
    add_table(m, "E", rows);
    add_input(m, "ids");
    tb_node(m, "Gather", "E,ids", "y");
    tb_output(m, "y");
    if (kind == GATHER_AND_IDENTITY) {
        tb_node(m, "Identity", "E", "e2");
        tb_output(m, "e2");
    } else if (kind == TABLE_IS_OUTPUT) {
        tb_output(m, "E");
    } else if (kind == TWO_GATHERS) {
        tb_node(m, "Gather", "E,ids", "y2");
        tb_output(m, "y2");
    } else if (kind == SUBGRAPH_NAMES_IT) {
        int cid = tb_val(m, "cond");
        pl_value *c = &m->graph->values[cid];
        c->kind = PL_VALUE_CONST;
        pl_tensor_set_shape(&c->t, PL_BOOL, 0, NULL);
        pl_tensor_alloc(&c->t);
        *(uint8_t *)c->t.data = 1;
        int i = tb_node(m, "If", "cond", "y2");
        tb_attr(m, i, "then_branch", PL_ATTR_GRAPH)->g = branch(m->graph);
        tb_attr(m, i, "else_branch", PL_ATTR_GRAPH)->g = branch(m->graph);
        tb_output(m, "y2");
    }
    char tmp[] = "/tmp/pillar_mapped_XXXXXX";
    int fd = mkstemp(tmp);
    char *path = NULL;
    if (fd >= 0) {
        close(fd);
        pl_status st = pl_onnx_save_graph(m->graph, m->opsets, m->nopsets, "test", tmp);
        CHECK(st == PL_OK, "save (kind %d): %s", kind, pillar_last_error());
        if (st == PL_OK)
            path = strdup(tmp);
        else
            unlink(tmp);
    }
    pl_model_free(m);
    return path;
}

static pl_value *table_of(pillar_model *m) {
    int v = pl_graph_find_value(m->graph, "E");
    return v >= 0 ? &m->graph->values[v] : NULL;
}

/* Mapped tables are shared from the start (one holder: the model); read ones are owned
 * by the model until a session shares them. */
static bool is_mapped(pillar_model *m) {
    pl_value *v = table_of(m);
    return v && pl_value_share_count(v) == 1;
}

static pillar_session *make_session(pillar_model **m, bool take, int threads) {
    pillar_options *o = NULL;
    pillar_session *s = NULL;
    pillar_options_create(&o);
    pillar_options_set_threads(o, threads);
    pillar_status st =
        take ? pillar_session_create_from(m, o, &s) : pillar_session_create(*m, o, &s);
    CHECK(st == PILLAR_OK, "session: %s", pillar_last_error());
    pillar_options_destroy(o);
    return s;
}

/* Runs s and checks every output gathered from E (all but a copy of E itself). */
static void check_rows(const char *what, pillar_session *s, int64_t rows) {
    int64_t d = NIDS, IDS[NIDS];
    make_ids(rows, IDS);
    pillar_tensor *ids = NULL;
    pillar_tensor_create(PILLAR_INT64, 1, &d, IDS, &ids);
    const char *name = "ids";
    size_t nout = pillar_session_output_count(s);
    pillar_tensor *out[4] = {NULL};
    pillar_status st =
        pillar_session_run(s, 1, &name, (const pillar_tensor *const *)&ids, nout, NULL, out);
    CHECK(st == PILLAR_OK, "%s: run: %s", what, pillar_last_error());
    for (size_t k = 0; st == PILLAR_OK && k < nout; k++) {
        const int64_t *od = pillar_tensor_dims(out[k]);
        bool whole = od[0] == rows;
        const float *y = pillar_tensor_data(out[k]);
        int64_t bad = 0;
        for (int64_t j = 0; j < (whole ? rows : NIDS); j++) {
            int64_t r = whole ? j : (IDS[j] < 0 ? IDS[j] + rows : IDS[j]);
            for (int64_t c = 0; c < COLS; c++) bad += y[j * COLS + c] != table_at(r, c);
        }
        CHECK(bad == 0, "%s: output %zu: %lld values differ from the table", what, k,
              (long long)bad);
    }
    for (size_t k = 0; k < nout; k++) pillar_tensor_destroy(out[k]);
    pillar_tensor_destroy(ids);
}

static pillar_model *load(const char *path) {
    pillar_model *m = NULL;
    pillar_status st = pillar_model_load(path, &m);
    CHECK(st == PILLAR_OK, "load %s: %s", path, pillar_last_error());
    return m;
}

static void test_which_are_mapped(void) {
    static const struct {
        int kind;
        int64_t rows;
        bool mapped;
        const char *what;
    } tab[] = {
        {GATHER_ONLY, 1000, true, "Gather only, 1.2 MB"},
        {TWO_GATHERS, 1000, true, "two Gathers"},
        {GATHER_ONLY, 873, false, "Gather only, under 1 MiB"},
        {GATHER_AND_IDENTITY, 1000, false, "also read by Identity"},
        {TABLE_IS_OUTPUT, 1000, false, "a graph output"},
        {SUBGRAPH_NAMES_IT, 1000, false, "read in a subgraph"},
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++) {
        char *path = write_model(tab[i].kind, tab[i].rows);
        if (!path) continue;
        pillar_model *m = load(path);
        if (m) {
            CHECK(is_mapped(m) == tab[i].mapped, "%s: mapped %d, expected %d", tab[i].what,
                  is_mapped(m), tab[i].mapped);
            for (int isa = 0; isa <= (int)pl_cpu()->best; isa++) {
                pl_cpu_force_isa(isa);
                for (int threads = 1; threads <= 2; threads++) {
                    pillar_session *s = make_session(&m, false, threads);
                    char what[160];
                    snprintf(what, sizeof what, "%s (%s, %d threads)", tab[i].what,
                             pl_isa_name((pl_isa)isa), threads);
                    if (s) check_rows(what, s, tab[i].rows);
                    pillar_session_destroy(s);
                }
            }
            pl_cpu_force_isa(-1);
            /* from memory: never mapped, same rows */
            FILE *f = fopen(path, "rb");
            fseek(f, 0, SEEK_END);
            long len = ftell(f);
            fseek(f, 0, SEEK_SET);
            void *buf = malloc((size_t)len);
            CHECK(fread(buf, 1, (size_t)len, f) == (size_t)len, "read back %s", path);
            fclose(f);
            pillar_model *mm = NULL;
            pillar_status st = pillar_model_load_memory(buf, (size_t)len, "mem", &mm);
            free(buf); /* the model must not need the caller's bytes */
            CHECK(st == PILLAR_OK, "%s: from memory: %s", tab[i].what, pillar_last_error());
            if (mm) {
                CHECK(!is_mapped(mm), "%s: a model from memory is not mapped", tab[i].what);
                pillar_session *s = make_session(&mm, true, 1);
                if (s) check_rows(tab[i].what, s, tab[i].rows);
                pillar_session_destroy(s);
            }
        }
        pillar_model_destroy(m);
        unlink(path);
        free(path);
    }
}

/* The mapping lives as long as its last holder: the model, sessions, in any order. */
static void test_lifetimes(void) {
    char *path = write_model(GATHER_ONLY, 1000);
    if (!path) return;
    /* the session takes the model over */
    pillar_model *m = load(path);
    pillar_session *s = m ? make_session(&m, true, 1) : NULL;
    CHECK(m == NULL, "create_from takes the model");
    if (s) check_rows("session made from the model", s, 1000);
    pillar_session_destroy(s);
    /* two sessions, the model destroyed first, then the sessions one by one */
    m = load(path);
    if (m) {
        pillar_session *a = make_session(&m, false, 1), *b = make_session(&m, false, 2);
        CHECK(pl_value_share_count(table_of(m)) == 3,
              "model and two sessions share the mapping (%d)", pl_value_share_count(table_of(m)));
        pillar_model_destroy(m);
        if (a) check_rows("first session after the model", a, 1000);
        pillar_session_destroy(a);
        if (b) check_rows("second session after the first", b, 1000);
        pillar_session_destroy(b);
    }
    /* made writable: copied out of the mapping, the sessions keep the mapping */
    m = load(path);
    if (m) {
        pillar_session *a = make_session(&m, false, 1);
        pl_value *v = table_of(m);
        pl_status st = pl_value_make_writable(v);
        CHECK(st == PL_OK && pl_value_share_count(v) == 0 && v->t.owns,
              "writable copy of a mapped table");
        if (st == PL_OK) {
            ((float *)v->t.data)[0] = 1234.5f; /* the copy is writable; the session is unaffected */
            CHECK(((float *)v->t.data)[1] == table_at(0, 1), "the copy holds the table");
        }
        if (a) check_rows("session after the model's copy was edited", a, 1000);
        pillar_session_destroy(a);
        pillar_model_destroy(m);
    }
    /* PILLAR_MMAP=0 reads it */
    setenv("PILLAR_MMAP", "0", 1);
    m = load(path);
    unsetenv("PILLAR_MMAP");
    if (m) {
        CHECK(!is_mapped(m), "PILLAR_MMAP=0 reads the table");
        pillar_session *t = make_session(&m, true, 1);
        if (t) check_rows("PILLAR_MMAP=0", t, 1000);
        pillar_session_destroy(t);
    }
    /* the table is mapped, so the file may be removed once it is loaded */
    m = load(path);
    unlink(path);
    if (m) {
        CHECK(is_mapped(m), "mapped");
        pillar_session *t = make_session(&m, true, 1);
        if (t) check_rows("file removed after loading", t, 1000);
        pillar_session_destroy(t);
    }
    free(path);
}

int main(void) {
    test_which_are_mapped();
    test_lifetimes();
    printf("test_mapped_weights: %d checks, %d failed\n", cases, failures);
    return failures ? 1 : 0;
}
