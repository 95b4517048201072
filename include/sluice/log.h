/*
 * log.h - the process log of sluice: one line per message on stderr, with a timestamp, the level
 * and a prefix naming who speaks ("task/source/stage", "api", "server"). Lines from concurrent
 * threads never interleave. Callers never pass secrets (passwords) to it.
 */
#ifndef SLUICE_LOG_H
#define SLUICE_LOG_H

#include <stdarg.h>
#include "plugin.h"   /* enum sl_log_level: SL_LOG_ERROR .. SL_LOG_TRACE */

#ifdef __cplusplus
extern "C" {
#endif

/* Write one line "2024-05-01T12:00:00.123Z INFO  [prefix] message" to stderr if level is at or
 * below the current level. prefix may be NULL. Thread-safe. */
void sl_log(int level, const char *prefix, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void sl_logv(int level, const char *prefix, const char *fmt, va_list ap);

/* Set / read the most verbose level written (default SL_LOG_INFO). Thread-safe. */
void sl_log_set_level(int level);
int  sl_log_get_level(void);

/* "error", "warn"/"warning", "info", "debug", "trace" (any case) -> SL_LOG_*; SL_EINVAL otherwise. */
int  sl_log_level_parse(const char *s);

/* "ERROR", "WARN", "INFO", "DEBUG", "TRACE". */
const char *sl_log_level_name(int level);

#ifdef __cplusplus
}
#endif
#endif
