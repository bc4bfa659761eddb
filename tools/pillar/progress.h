/* progress.h -- what `pillar train` shows while it works: a live progress bar with ETA,
 * loss, accuracy and examples/s on a terminal, plain lines otherwise; and the per-epoch
 * record shared by the progress display, the CSV log and the plot. */
#ifndef PILLAR_CLI_PROGRESS_H
#define PILLAR_CLI_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* One finished epoch. Test values are NAN when there is no test set. */
typedef struct train_row {
    int epoch; /* 1-based */
    double train_loss, train_acc;
    double test_loss, test_acc;
    double seconds;        /* wall time of the epoch: training and evaluation */
    double train_seconds;  /* the training steps only */
    double examples_per_s; /* training examples / train_seconds */
    double lr;             /* learning rate at the end of the epoch */
    double sparsity;       /* fraction of zeros in the prunable weights */
    double train_cpu_seconds; /* process CPU time of the training steps (all threads);
                               * a load-independent cost measure on a busy machine */
} train_row;

typedef struct progress {
    FILE *f;
    bool tty, quiet;
    int epochs;
    int64_t steps_per_epoch, examples_per_epoch;
    int epoch;
    double epoch_start, last_draw;
    double sec_per_step; /* running estimate, for the total ETA */
    double eval_seconds; /* last evaluation's duration, for the total ETA */
    int width;           /* terminal columns */
    bool drawn;          /* a bar is on the current line */
} progress;

/* Monotonic seconds. */
double progress_now(void);
/* CPU seconds used by the process so far (all threads). */
double progress_cpu_now(void);

/* `tty`: draw a live bar (else print a plain line at most every 10 s of an epoch). */
void progress_init(progress *p, FILE *f, bool tty, bool quiet, int epochs, int64_t steps_per_epoch,
                   int64_t examples_per_epoch);
/* Starts epoch `epoch` (1-based); `elapsed` seconds of it already ran (resume). */
void progress_epoch_begin(progress *p, int epoch, double elapsed);
/* After step `step` (1-based within the epoch): `seen` examples so far this epoch, their
 * summed loss and correct count, the training seconds so far this epoch. */
void progress_step(progress *p, int64_t step, int64_t seen, double loss_sum, int64_t correct, double train_seconds);
/* Shows "evaluating..." on a terminal. */
void progress_evaluating(progress *p);
/* Prints the epoch's summary line (replacing the bar). */
void progress_epoch_end(progress *p, const train_row *r, double eval_seconds);
/* A line of text (clears the bar first). */
void progress_line(progress *p, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Clears the bar, if one is drawn (before an error message). */
void progress_clear(progress *p);

/* "1:02:03" / "2:03" */
const char *progress_hms(char *buf, size_t n, double seconds);

#endif
