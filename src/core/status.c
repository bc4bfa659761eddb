#include "core/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char err_msg[PL_ERROR_MAX];

pl_status pl_error(pl_status code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_msg, sizeof err_msg, fmt, ap);
    va_end(ap);
    return code;
}

void pl_error_prefix(const char *fmt, ...) {
    char pre[PL_ERROR_MAX / 2], old[PL_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, err_msg, sizeof old);
    size_t n = strlen(pre);
    if (n + 2 >= sizeof err_msg) return;
    memcpy(err_msg, pre, n);
    memcpy(err_msg + n, ": ", 2);
    size_t room = sizeof err_msg - n - 3, m = strlen(old);
    if (m > room) m = room;
    memcpy(err_msg + n + 2, old, m);
    err_msg[n + 2 + m] = 0;
}

const char *pl_error_msg(void) { return err_msg; }
void pl_error_clear(void) { err_msg[0] = 0; }

const char *pillar_last_error(void) { return err_msg; }

const char *pillar_status_name(pillar_status s) {
    switch (s) {
    case PILLAR_OK: return "ok";
    case PILLAR_ERR_ARGUMENT: return "bad argument";
    case PILLAR_ERR_MODEL: return "model error";
    case PILLAR_ERR_INPUT: return "input error";
    case PILLAR_ERR_UNSUPPORTED: return "unsupported";
    case PILLAR_ERR_NOMEM: return "out of memory";
    case PILLAR_ERR_IO: return "i/o error";
    case PILLAR_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

const char *pillar_version(void) { return "0.1.0"; }
