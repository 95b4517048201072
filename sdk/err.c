/*
 * err.c - the error convention of err.h: static texts for SL_* codes and the caller-owned
 * sl_error context. Part of the SDK (libc only): the host and every plugin link it.
 */
#include "sluice/err.h"

#include <stdio.h>
#include <string.h>

const char *sl_strerror(int code)
{
    switch (code) {
    case SL_EOK:        return "success";
    case SL_ENOMEM:     return "out of memory";
    case SL_EINVAL:     return "invalid argument";
    case SL_ENOENT:     return "no such object";
    case SL_EEXIST:     return "object exists already";
    case SL_EABI:       return "plugin ABI mismatch";
    case SL_EIO:        return "I/O error";
    case SL_EDB:        return "database error";
    case SL_ESTATE:     return "not allowed in the current state";
    case SL_ESTOPPED:   return "stopped";
    case SL_ETIMEOUT:   return "timed out";
    case SL_EPLUGIN:    return "plugin failed";
    case SL_ELIMIT:     return "limit reached";
    case SL_EPARSE:     return "parse error";
    case SL_ENOTSUP:    return "not supported";
    case SL_ECONN:      return "connection failed";
    case SL_ELUA:       return "Lua error";
    case SL_EINTERNAL:  return "internal error";
    case SL_AGAIN:      return "try again";
    case SL_DROP:       return "dropped";
    case SL_DONE:       return "done";
    default:            return "unknown error";
    }
}

int sl_error_setv(sl_error *err, int code, const char *fmt, va_list ap)
{
    if (err) {
        /* formatted apart, then copied: an argument may be err->msg itself (a context added to
         * the message already there), and vsnprintf into the buffer it reads is undefined */
        char text[SL_ERRMSG_MAX];
        if (fmt)
            vsnprintf(text, sizeof text, fmt, ap);
        else
            snprintf(text, sizeof text, "%s", sl_strerror(code));
        err->code = code;
        memcpy(err->msg, text, strlen(text) + 1);
    }
    return code;
}

int sl_error_set(sl_error *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sl_error_setv(err, code, fmt, ap);
    va_end(ap);
    return code;
}

void sl_error_prefix(sl_error *err, const char *fmt, ...)
{
    char pre[SL_ERRMSG_MAX], old[SL_ERRMSG_MAX];
    va_list ap;

    if (!err)
        return;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    old[sizeof old - 1] = '\0';
    /* Assemble by hand: the result is cut at SL_ERRMSG_MAX on purpose. */
    size_t n = strlen(pre);
    memcpy(err->msg, pre, n);
    if (n + 2 < sizeof err->msg) {
        memcpy(err->msg + n, ": ", 2);
        n += 2;
        size_t m = strlen(old);
        if (m > sizeof err->msg - 1 - n)
            m = sizeof err->msg - 1 - n;
        memcpy(err->msg + n, old, m);
        n += m;
    }
    err->msg[n] = '\0';
}
