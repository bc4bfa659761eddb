/* plot.c -- training curves as a self-contained SVG: one panel for the loss (train and
 * test), one for the accuracy, and one for the sparsity when the run prunes; epochs on
 * the x axis, "nice" ticks (1, 2, 5 x 10^k), grid lines, axis labels and a legend.
 * Written by hand (a few hundred bytes of markup per series) rather than through a
 * plotting library, so the CLI needs nothing beyond libc and zlib. */
#include "plot.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PANEL_W 460.0 /* width of one panel including its margins */
#define PLOT_L 66.0   /* left margin inside a panel (tick labels, y label) */
#define PLOT_R 18.0
#define PLOT_T 74.0   /* top of the plotting area */
#define PLOT_B 350.0  /* bottom of the plotting area */
#define HEIGHT 400.0

static const char *C_TRAIN = "#1f77b4", *C_TEST = "#e8710a", *C_SPARSE = "#2ca02c";

typedef struct axis {
    double lo, hi, step;
} axis;

/* A step of 1, 2 or 5 x 10^k giving about `target` intervals over [lo, hi]. */
static double nice_step(double range, int target) {
    if (!(range > 0)) return 1;
    double raw = range / target, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

static axis make_axis(double lo, double hi, double floor_at, double ceil_at) {
    axis a;
    if (!isfinite(lo) || !isfinite(hi)) lo = 0, hi = 1;
    if (hi - lo < 1e-9) {
        double pad = fabs(hi) > 1e-9 ? fabs(hi) * 0.05 : 0.5;
        lo -= pad;
        hi += pad;
    }
    a.step = nice_step(hi - lo, 5);
    a.lo = floor(lo / a.step + 1e-9) * a.step;
    a.hi = ceil(hi / a.step - 1e-9) * a.step;
    if (a.lo < floor_at) a.lo = floor_at;
    if (a.hi > ceil_at) a.hi = ceil_at;
    if (a.hi <= a.lo) a.hi = a.lo + a.step;
    return a;
}

static void esc(FILE *f, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default:
            if ((unsigned char)*s >= 0x20 || *s == '\t') fputc(*s, f);
        }
    }
}

/* "%g" without float noise: the tick values are multiples of step */
static void tick_label(char *buf, size_t n, double v, double step, const char *suffix) {
    int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (dec > 6) dec = 6;
    if (fabs(v) < step * 1e-6) v = 0;
    snprintf(buf, n, "%.*f%s", dec, v, suffix);
}

typedef struct series {
    const char *name, *color;
    double scale; /* multiply values (1, or 100 for percent) */
    size_t offset; /* offsetof the field in train_row */
    bool dashed;
} series;

static double row_val(const train_row *r, size_t off) {
    double v;
    memcpy(&v, (const char *)r + off, sizeof v);
    return v;
}

static void panel(FILE *f, double x0, const char *title, const char *ylabel, const char *suffix, const train_row *rows,
                  size_t n, const series *s, int ns, double floor_at, double ceil_at) {
    double lo = INFINITY, hi = -INFINITY;
    for (int k = 0; k < ns; k++)
        for (size_t i = 0; i < n; i++) {
            double v = row_val(&rows[i], s[k].offset) * s[k].scale;
            if (isfinite(v)) {
                if (v < lo) lo = v;
                if (v > hi) hi = v;
            }
        }
    axis ya = make_axis(lo, hi, floor_at, ceil_at);
    double e0 = rows[0].epoch, e1 = rows[n - 1].epoch;
    double xlo = e0 - (n == 1 ? 0.5 : 0), xhi = e1 + (n == 1 ? 0.5 : 0);
    double px0 = x0 + PLOT_L, px1 = x0 + PANEL_W - PLOT_R;
#define XP(e) (px0 + ((e)-xlo) / (xhi - xlo) * (px1 - px0))
#define YP(v) (PLOT_B - ((v)-ya.lo) / (ya.hi - ya.lo) * (PLOT_B - PLOT_T))
    fprintf(f, "<g>\n<text x=\"%.1f\" y=\"%.1f\" class=\"ptitle\">", (px0 + px1) / 2, PLOT_T - 12);
    esc(f, title);
    fputs("</text>\n", f);
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" class=\"frame\"/>\n", px0, PLOT_T, px1 - px0,
            PLOT_B - PLOT_T);
    /* y grid and ticks */
    char lab[64];
    for (double v = ya.lo; v <= ya.hi + ya.step * 1e-6; v += ya.step) {
        double y = YP(v);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>", px0, y, px1, y);
        tick_label(lab, sizeof lab, v, ya.step, suffix);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"ytick\">%s</text>\n", px0 - 6, y + 4, lab);
    }
    /* x ticks at whole epochs */
    double xstep = nice_step(xhi - xlo, 8);
    if (xstep < 1) xstep = 1;
    for (double e = ceil(xlo / xstep) * xstep; e <= xhi + 1e-9; e += xstep) {
        double x = XP(e);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>", x, PLOT_T, x, PLOT_B);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"xtick\">%.0f</text>\n", x, PLOT_B + 16, e);
    }
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"xlabel\">epoch</text>\n", (px0 + px1) / 2, PLOT_B + 36);
    fprintf(f, "<text transform=\"translate(%.1f %.1f) rotate(-90)\" class=\"ylabel\">", x0 + 16, (PLOT_T + PLOT_B) / 2);
    esc(f, ylabel);
    fputs("</text>\n", f);
    /* series */
    int shown = 0;
    for (int k = 0; k < ns; k++) {
        int pts = 0;
        for (size_t i = 0; i < n; i++)
            if (isfinite(row_val(&rows[i], s[k].offset))) pts++;
        if (!pts) continue;
        shown++;
        fprintf(f, "<polyline class=\"line\" stroke=\"%s\"%s points=\"", s[k].color,
                s[k].dashed ? " stroke-dasharray=\"6 4\"" : "");
        for (size_t i = 0; i < n; i++) {
            double v = row_val(&rows[i], s[k].offset) * s[k].scale;
            if (isfinite(v)) fprintf(f, "%.1f,%.1f ", XP(rows[i].epoch), YP(v));
        }
        fputs("\"/>\n", f);
        if (n <= 60)
            for (size_t i = 0; i < n; i++) {
                double v = row_val(&rows[i], s[k].offset) * s[k].scale;
                if (isfinite(v))
                    fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"><title>epoch %d: %.4g%s</title></circle>\n",
                            XP(rows[i].epoch), YP(v), s[k].color, rows[i].epoch, v, suffix);
            }
    }
    /* legend: top right for loss (falling curves), bottom right for rising ones */
    if (shown) {
        bool top = s[0].offset == offsetof(train_row, train_loss);
        double lw = 92, lh = 8 + 18.0 * shown, lx = px1 - lw - 8, ly = top ? PLOT_T + 8 : PLOT_B - lh - 8;
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" class=\"legend\"/>\n", lx, ly, lw, lh);
        int row = 0;
        for (int k = 0; k < ns; k++) {
            int pts = 0;
            for (size_t i = 0; i < n; i++)
                if (isfinite(row_val(&rows[i], s[k].offset))) pts++;
            if (!pts) continue;
            double y = ly + 16 + 18.0 * row++;
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" class=\"line\"%s/>", lx + 8,
                    y - 4, lx + 32, y - 4, s[k].color, s[k].dashed ? " stroke-dasharray=\"6 4\"" : "");
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"ltext\">", lx + 38, y);
            esc(f, s[k].name);
            fputs("</text>\n", f);
        }
    }
    fputs("</g>\n", f);
#undef XP
#undef YP
}

int plot_write_svg(const char *path, const char *title, const char *subtitle, const train_row *rows, size_t n) {
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 8);
    if (!tmp) {
        errno = ENOMEM;
        return -1;
    }
    snprintf(tmp, plen + 8, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        int e = errno;
        free(tmp);
        errno = e;
        return -1;
    }
    bool pruned = false;
    for (size_t i = 0; i < n; i++)
        if (rows[i].sparsity > 0) pruned = true;
    int panels = pruned ? 3 : 2;
    double w = PANEL_W * panels + 20;
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\">\n"
            "<style>\n"
            "text{font-family:'DejaVu Sans',Helvetica,Arial,sans-serif;fill:#222}\n"
            ".title{font-size:17px;font-weight:bold;text-anchor:middle}\n"
            ".subtitle{font-size:12px;fill:#666;text-anchor:middle}\n"
            ".ptitle{font-size:14px;font-weight:bold;text-anchor:middle}\n"
            ".ytick{font-size:11px;text-anchor:end;fill:#444}\n"
            ".xtick{font-size:11px;text-anchor:middle;fill:#444}\n"
            ".xlabel,.ylabel{font-size:12px;text-anchor:middle}\n"
            ".ltext{font-size:12px}\n"
            ".frame{fill:none;stroke:#888;stroke-width:1}\n"
            ".grid{stroke:#e4e4e4;stroke-width:1}\n"
            ".line{fill:none;stroke-width:2.2;stroke-linejoin:round;stroke-linecap:round}\n"
            ".legend{fill:#fff;fill-opacity:0.9;stroke:#bbb;stroke-width:1}\n"
            "</style>\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n",
            w, HEIGHT, w, HEIGHT);
    fprintf(f, "<text x=\"%.1f\" y=\"24\" class=\"title\">", w / 2);
    esc(f, title);
    fputs("</text>\n", f);
    if (subtitle && *subtitle) {
        fprintf(f, "<text x=\"%.1f\" y=\"42\" class=\"subtitle\">", w / 2);
        esc(f, subtitle);
        fputs("</text>\n", f);
    }
    if (n > 0) {
        series loss[2] = {{"train", C_TRAIN, 1, offsetof(train_row, train_loss), false},
                          {"test", C_TEST, 1, offsetof(train_row, test_loss), false}};
        series acc[2] = {{"train", C_TRAIN, 100, offsetof(train_row, train_acc), false},
                         {"test", C_TEST, 100, offsetof(train_row, test_acc), false}};
        series sp[1] = {{"weights", C_SPARSE, 100, offsetof(train_row, sparsity), false}};
        panel(f, 10, "Loss", "loss", "", rows, n, loss, 2, 0, INFINITY);
        panel(f, 10 + PANEL_W, "Accuracy", "accuracy (%)", "%", rows, n, acc, 2, 0, 100);
        if (pruned) panel(f, 10 + 2 * PANEL_W, "Sparsity", "zeros in pruned weights (%)", "%", rows, n, sp, 1, 0, 100);
    } else {
        fprintf(f, "<text x=\"%.1f\" y=\"200\" class=\"subtitle\">no finished epoch yet</text>\n", w / 2);
    }
    fputs("</svg>\n", f);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        int e = errno ? errno : EIO;
        remove(tmp);
        free(tmp);
        errno = e;
        return -1;
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        free(tmp);
        errno = e;
        return -1;
    }
    free(tmp);
    return 0;
}
