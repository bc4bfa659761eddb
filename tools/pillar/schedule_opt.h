/* schedule_opt.h -- the --schedule option of `pillar bench` and `pillar inspect`: the
 * words layers|columns|auto and the pillar_schedule values they name. */
#ifndef PILLAR_CLI_SCHEDULE_OPT_H
#define PILLAR_CLI_SCHEDULE_OPT_H

#include <stdbool.h>

#include "pillar.h"

/* Parses "layers", "columns" or "auto"; false (nothing printed) for anything else. */
bool cli_schedule_parse(const char *text, pillar_schedule *out);
/* "layers", "columns" or "auto". */
const char *cli_schedule_name(pillar_schedule s);

#define CLI_SCHEDULE_WORDS "layers, columns or auto"

#endif
