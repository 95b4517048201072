/*
 * log.c - the process log (log.h): formats a whole line in a local buffer and writes it with one
 * fwrite under stderr's lock, so lines of concurrent threads never interleave.
 */
#include "sluice/log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static atomic_int log_level = SL_LOG_INFO;

void sl_log_set_level(int level)
{
    if (level < SL_LOG_ERROR)
        level = SL_LOG_ERROR;
    if (level > SL_LOG_TRACE)
        level = SL_LOG_TRACE;
    atomic_store(&log_level, level);
}

int sl_log_get_level(void)
{
    return atomic_load(&log_level);
}

int sl_log_level_parse(const char *s)
{
    static const struct { const char *name; int level; } names[] = {
        { "error", SL_LOG_ERROR }, { "warn", SL_LOG_WARN }, { "warning", SL_LOG_WARN },
        { "info", SL_LOG_INFO }, { "debug", SL_LOG_DEBUG }, { "trace", SL_LOG_TRACE },
    };
    if (!s)
        return SL_EINVAL;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(s, names[i].name) == 0)
            return names[i].level;
    return SL_EINVAL;
}

const char *sl_log_level_name(int level)
{
    switch (level) {
    case SL_LOG_ERROR: return "ERROR";
    case SL_LOG_WARN:  return "WARN";
    case SL_LOG_INFO:  return "INFO";
    case SL_LOG_DEBUG: return "DEBUG";
    case SL_LOG_TRACE: return "TRACE";
    default:           return "?";
    }
}

void sl_logv(int level, const char *prefix, const char *fmt, va_list ap)
{
    char line[4096];
    struct timespec ts;
    struct tm tm;
    size_t n;
    int w;

    if (level > atomic_load(&log_level))
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    w = snprintf(line + n, sizeof line - n, ".%03ldZ %-5s ", ts.tv_nsec / 1000000L,
                 sl_log_level_name(level));
    n += (w > 0) ? (size_t)w : 0;
    if (prefix && *prefix) {
        w = snprintf(line + n, sizeof line - n, "[%s] ", prefix);
        if (w > 0)
            n = (n + (size_t)w < sizeof line) ? n + (size_t)w : sizeof line - 1;
    }
    w = vsnprintf(line + n, sizeof line - n, fmt, ap);
    if (w > 0)
        n = (n + (size_t)w < sizeof line) ? n + (size_t)w : sizeof line - 1;
    /* Strip trailing newlines the caller may have added; we add exactly one. */
    while (n > 0 && line[n - 1] == '\n')
        n--;
    line[n++] = '\n';
    flockfile(stderr);
    fwrite(line, 1, n, stderr);
    funlockfile(stderr);
}

void sl_log(int level, const char *prefix, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sl_logv(level, prefix, fmt, ap);
    va_end(ap);
}
