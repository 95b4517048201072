/*
 * err.h - the one error convention of sluice.
 *
 * Every function that can fail returns int: 0 on success, a negative SL_E* code on failure.
 * Flow-control results (SL_AGAIN, SL_DROP, SL_DONE) are positive and live in their own range,
 * so `if (rc < 0)` always means failure. Where a caller needs context, it passes an sl_error
 * that it owns (it may pass NULL); the callee fills code and message.
 */
#ifndef SLUICE_ERR_H
#define SLUICE_ERR_H

#include <stdarg.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Failures (negative). Keep sl_strerror() in sdk/err.c in step with this list. */
#define SL_EOK        0
#define SL_ENOMEM    (-1)   /* out of memory */
#define SL_EINVAL    (-2)   /* invalid argument or input */
#define SL_ENOENT    (-3)   /* no such object (file, plugin, source, task) */
#define SL_EEXIST    (-4)   /* object exists already */
#define SL_EABI      (-5)   /* plugin ABI mismatch or malformed descriptor */
#define SL_EIO       (-6)   /* I/O or system call failure */
#define SL_EDB       (-7)   /* error reported by a MySQL/MariaDB server */
#define SL_ESTATE    (-8)   /* call not allowed in the current state */
#define SL_ESTOPPED  (-9)   /* the pipeline is stopping; unwind quietly */
#define SL_ETIMEOUT  (-10)  /* a bounded wait ran out */
#define SL_EPLUGIN   (-11)  /* a plugin failed (its message says why) */
#define SL_ELIMIT    (-12)  /* a configured limit (memory, match, instructions, size) was hit */
#define SL_EPARSE    (-13)  /* malformed input text (JSON, SQL, config) */
#define SL_ENOTSUP   (-14)  /* not supported (yet) */
#define SL_ECONN     (-15)  /* connection to a server failed or was lost */
#define SL_ELUA      (-16)  /* a Lua script raised an error */
#define SL_EINTERNAL (-99)  /* a bug in sluice */

/* Flow control (positive): not failures. */
#define SL_AGAIN      1     /* try again later (queue full/empty with a non-blocking call) */
#define SL_DROP       2     /* a transform drops the event */
#define SL_DONE       3     /* a source has nothing more to produce */

#define SL_ERRMSG_MAX 1024

/* Caller-owned error context. Zero-initialize it; sl_error_set() fills it. */
typedef struct sl_error {
    int code;                   /* SL_E* (0 when no error) */
    char msg[SL_ERRMSG_MAX];    /* human-readable, NUL-terminated */
} sl_error;

/* Static text for an SL_* code. Never NULL. Thread-safe. */
const char *sl_strerror(int code);

/* Fill err (if non-NULL) with code and a printf-style message; returns code, so a failing
 * function can `return sl_error_set(err, SL_EINVAL, "bad port %d", p);`. An argument may be
 * err->msg itself (the message is formatted apart first), though sl_error_prefix says it
 * better. Thread-safe. */
int sl_error_set(sl_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int sl_error_setv(sl_error *err, int code, const char *fmt, va_list ap);

/* Prepend "prefix: " to an existing message (for adding context while unwinding). */
void sl_error_prefix(sl_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif
#endif
