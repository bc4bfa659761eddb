/* columns.h -- the column schedule (README "Columns", docs/DESIGN.md "Columns").
 *
 * A chain is a run of consecutive executor steps (float Conv layers with their fused
 * epilogues and residuals, static 4-D shapes) that reads one tensor from outside, whose
 * intermediate results are used only inside the chain. Under the column schedule a
 * chain runs tile by tile: a tile is a band of output rows of the chain's last layer
 * for one image; every earlier layer computes exactly the rows its consumers need into
 * per-thread buffers sized to stay in L2 (a thread walks a segment of consecutive
 * bands and keeps the halo rows a layer shares with the previous band where that
 * pays; one band per image runs every layer on its whole image), and the threads take
 * segments from a shared counter with no barrier between the layers. The intermediate
 * tensors of a chain then never exist in full (they get no arena space). */
#ifndef PL_EXEC_COLUMNS_H
#define PL_EXEC_COLUMNS_H

#include "exec/session.h"

/* Column planning runs while the steps are made (so that raw weights can go early):
 * pl_columns_begin() before the first step; pl_columns_advance() after each step decides
 * the chains whose every candidate step exists (all: the rest too) -- finds them,
 * estimates both schedules and, for the chains that will run as columns, plans the
 * band convolutions from the raw weights, releases the layer plans they replace and
 * marks the steps (pl_step.chain) and the chain-internal values
 * (pl_session.col_internal); *decided (may be NULL) = the first step not yet decided.
 * pl_columns_finish() decides the rest, allocates the buffers and builds the report. */
pl_status pl_columns_begin(pl_session *s);
pl_status pl_columns_advance(pl_session *s, bool all, int *decided);
pl_status pl_columns_finish(pl_session *s);

/* Runs chain `c` (pl_step.chain - 1) with the session's pool. */
pl_status pl_columns_run(pl_session *s, int c);

/* The input value whose liveness must reach the last step of chain c. */
void pl_columns_extend_live(const pl_session *s, int *last);

/* The schedule asked for (pillar_schedule): the option, else PILLAR_SCHEDULE, else auto. */
int pl_columns_requested(const pl_session *s);

/* Frees the column plans (with the plan they belong to). */
void pl_columns_free(pl_session *s);

/* Tests: every chain uses `rows` output rows per tile (0: the planner's choice), and
 * each chain is the longest that qualifies (to exercise the most). The environment
 * variable PILLAR_COLUMN_ROWS does the same. */
void pl_columns_force_rows(int rows);

/* Tests: the layers of the chains in use that take the direct 1x1 path (pruned 1x1
 * stride-1 layers run by the sparse kernel with channel strides, no copies). */
int pl_columns_direct_count(const pl_session *s);

/* Tests: 1 = every layer whose window overlaps the previous band's keeps those rows
 * (kept halos), 0 = every band recomputes its halo rows, -1 = the planner's rule
 * (keep where the new rows make a kernel call of MIN_INC_PX pixels or more). */
void pl_columns_force_keep(int keep);

#endif
