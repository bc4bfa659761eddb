/* status.h -- the single error convention: a pillar_status code plus a thread-local
 * one-line message that names what went wrong. */
#ifndef PL_STATUS_H
#define PL_STATUS_H

#include "pillar.h"

typedef pillar_status pl_status;

#define PL_OK PILLAR_OK
#define PL_ERR_ARGUMENT PILLAR_ERR_ARGUMENT
#define PL_ERR_MODEL PILLAR_ERR_MODEL
#define PL_ERR_INPUT PILLAR_ERR_INPUT
#define PL_ERR_UNSUPPORTED PILLAR_ERR_UNSUPPORTED
#define PL_ERR_NOMEM PILLAR_ERR_NOMEM
#define PL_ERR_IO PILLAR_ERR_IO
#define PL_ERR_INTERNAL PILLAR_ERR_INTERNAL
/* Internal only: shape inference needs the value of an input that is not known until
 * run time. Never returned through the public API. */
#define PL_NEED_VALUE ((pl_status)100)

#define PL_ERROR_MAX 1024

#if defined(__GNUC__)
#define PL_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define PL_PRINTF(a, b)
#endif

/* Sets this thread's message and returns `code`, so `return pl_error(...)` reads well. */
pl_status pl_error(pl_status code, const char *fmt, ...) PL_PRINTF(2, 3);
/* Puts "<prefix>: " in front of the current message (e.g. the model path). */
void pl_error_prefix(const char *fmt, ...) PL_PRINTF(1, 2);
/* The current message. */
const char *pl_error_msg(void);
void pl_error_clear(void);

#define PL_TRY(expr)                                                                        \
    do {                                                                                    \
        pl_status pl_try_s_ = (expr);                                                       \
        if (pl_try_s_ != PL_OK) return pl_try_s_;                                           \
    } while (0)

#endif
