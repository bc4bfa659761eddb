/* progress.c -- the training progress display. On a terminal one line is redrawn in
 * place (at most ten times a second, so drawing costs nothing next to training):
 *
 *   epoch 2/5 [=========>          ] 47% 28160/60000  loss 0.3512  acc 87.4%  5312 ex/s  ETA 0:06 (all 0:41)
 *
 * and replaced by the epoch's summary when it ends. Elsewhere (a log file, CI) only
 * plain lines are printed: the summary of each epoch, and a progress line every 10 s
 * during long epochs. */
#include "progress.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

double progress_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double progress_cpu_now(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) return 0.0;
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

const char *progress_hms(char *buf, size_t n, double s) {
    if (!(s >= 0) || s > 1e8) {
        snprintf(buf, n, "?");
        return buf;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
    return buf;
}

static int term_width(FILE *f) {
    struct winsize ws;
    if (ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) return ws.ws_col;
    const char *c = getenv("COLUMNS");
    int w = c ? atoi(c) : 0;
    return w >= 20 ? w : 80;
}

void progress_init(progress *p, FILE *f, bool tty, bool quiet, int epochs, int64_t steps_per_epoch,
                   int64_t examples_per_epoch) {
    memset(p, 0, sizeof *p);
    p->f = f;
    p->tty = tty;
    p->quiet = quiet;
    p->epochs = epochs;
    p->steps_per_epoch = steps_per_epoch;
    p->examples_per_epoch = examples_per_epoch;
    p->width = tty ? term_width(f) : 80;
}

void progress_clear(progress *p) {
    if (p->tty && p->drawn) {
        fputs("\r\033[K", p->f);
        fflush(p->f);
        p->drawn = false;
    }
}

void progress_line(progress *p, const char *fmt, ...) {
    progress_clear(p);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(p->f, fmt, ap);
    va_end(ap);
    fputc('\n', p->f);
    fflush(p->f);
}

void progress_epoch_begin(progress *p, int epoch, double elapsed) {
    p->epoch = epoch;
    p->epoch_start = progress_now() - elapsed;
    p->last_draw = p->tty ? 0 : progress_now();
    if (p->tty) p->width = term_width(p->f);
}

/* Seconds left in this epoch and in the whole run, from the current rate. */
static void etas(const progress *p, int64_t step, double train_seconds, double *epoch_left, double *all_left) {
    double per_step = step > 0 ? train_seconds / (double)step : p->sec_per_step;
    int64_t left = p->steps_per_epoch - step;
    *epoch_left = per_step * (double)left;
    double later = (double)(p->epochs - p->epoch) * ((double)p->steps_per_epoch * per_step + p->eval_seconds);
    *all_left = *epoch_left + p->eval_seconds + later;
}

void progress_step(progress *p, int64_t step, int64_t seen, double loss_sum, int64_t correct, double train_seconds) {
    if (p->quiet) return;
    double now = progress_now();
    bool last = step >= p->steps_per_epoch;
    if (p->tty) {
        if (now - p->last_draw < 0.1 && !last) return;
    } else {
        if (now - p->last_draw < 10.0 || last) return;
    }
    p->last_draw = now;
    double loss = seen ? loss_sum / (double)seen : NAN, acc = seen ? (double)correct / (double)seen : NAN;
    double rate = train_seconds > 0 ? (double)seen / train_seconds : 0;
    double eleft, aleft;
    etas(p, step, train_seconds, &eleft, &aleft);
    char e1[32], e2[32];
    progress_hms(e1, sizeof e1, eleft);
    progress_hms(e2, sizeof e2, aleft);
    double frac = p->steps_per_epoch ? (double)step / (double)p->steps_per_epoch : 1;
    if (frac > 1) frac = 1;
    char head[64], tail[256];
    snprintf(head, sizeof head, "epoch %d/%d ", p->epoch, p->epochs);
    snprintf(tail, sizeof tail, " %3d%% %lld/%lld  loss %.4f  acc %.1f%%  %.0f ex/s  ETA %s", (int)(frac * 100 + 1e-9),
             (long long)seen, (long long)p->examples_per_epoch, loss, acc * 100, rate, e1);
    if (!p->tty) {
        fprintf(p->f, "%s%s (all %s)\n", head, tail, e2);
        fflush(p->f);
        return;
    }
    /* bar width: what is left of the terminal line, between 10 and 40 columns */
    char all[48];
    snprintf(all, sizeof all, " (all %s)", e2);
    int room = p->width - 1 - (int)strlen(head) - (int)strlen(tail) - 2;
    bool show_all = p->epochs > 1 && room - (int)strlen(all) >= 10;
    if (show_all) room -= (int)strlen(all);
    int bar = room > 40 ? 40 : room;
    char line[512];
    int k = snprintf(line, sizeof line, "\r%s", head);
    if (bar >= 10) {
        int full = (int)(frac * bar);
        line[k++] = '[';
        for (int i = 0; i < bar; i++) line[k++] = i < full ? '=' : i == full ? '>' : ' ';
        line[k++] = ']';
        line[k] = 0;
    }
    snprintf(line + k, sizeof line - (size_t)k, "%s%s\033[K", tail, show_all ? all : "");
    fputs(line, p->f);
    fflush(p->f);
    p->drawn = true;
}

void progress_evaluating(progress *p) {
    if (p->quiet || !p->tty) return;
    fprintf(p->f, "\r\033[Kepoch %d/%d  evaluating...", p->epoch, p->epochs);
    fflush(p->f);
    p->drawn = true;
}

void progress_epoch_end(progress *p, const train_row *r, double eval_seconds) {
    p->eval_seconds = eval_seconds;
    if (p->steps_per_epoch > 0 && r->train_seconds > 0)
        p->sec_per_step = r->train_seconds / (double)p->steps_per_epoch;
    if (p->quiet) return;
    char line[512];
    int k = snprintf(line, sizeof line, "epoch %d/%d  train loss %.4f acc %.2f%%", r->epoch, p->epochs, r->train_loss,
                     r->train_acc * 100);
    if (!isnan(r->test_acc))
        k += snprintf(line + k, sizeof line - (size_t)k, "  test loss %.4f acc %.2f%%", r->test_loss, r->test_acc * 100);
    k += snprintf(line + k, sizeof line - (size_t)k, "  %.1f s  %.0f ex/s  lr %.3g", r->seconds, r->examples_per_s, r->lr);
    if (r->sparsity > 0) snprintf(line + k, sizeof line - (size_t)k, "  sparsity %.1f%%", r->sparsity * 100);
    progress_line(p, "%s", line);
}
