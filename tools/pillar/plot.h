/* plot.h -- `pillar train --plot FILE.svg`: loss and accuracy per epoch as an SVG. */
#ifndef PILLAR_CLI_PLOT_H
#define PILLAR_CLI_PLOT_H

#include <stddef.h>

#include "progress.h"

/* Writes the curves of rows[0..n) to `path` (through a temporary file renamed into
 * place, so a viewer never sees half a file). `title` is escaped. Returns 0, or -1 with
 * errno set. */
int plot_write_svg(const char *path, const char *title, const char *subtitle, const train_row *rows, size_t n);

#endif
