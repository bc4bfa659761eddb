/* schedule_opt.c -- the --schedule words shared by `pillar bench` and `pillar inspect`. */
#include "schedule_opt.h"

#include <string.h>

bool cli_schedule_parse(const char *text, pillar_schedule *out) {
    if (!strcmp(text, "layers"))
        *out = PILLAR_SCHEDULE_LAYERS;
    else if (!strcmp(text, "columns"))
        *out = PILLAR_SCHEDULE_COLUMNS;
    else if (!strcmp(text, "auto"))
        *out = PILLAR_SCHEDULE_AUTO;
    else
        return false;
    return true;
}

const char *cli_schedule_name(pillar_schedule s) {
    switch (s) {
    case PILLAR_SCHEDULE_LAYERS:
        return "layers";
    case PILLAR_SCHEDULE_COLUMNS:
        return "columns";
    default:
        return "auto";
    }
}
