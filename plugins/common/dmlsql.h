/*
 * dmlsql.h - the pure "format" step of the MySQL sink: row changes to SQL statements.
 *
 * Consecutive INSERTs into one table become one multi-row INSERT, consecutive DELETEs of one
 * table with a key one DELETE ... WHERE key IN (...), UPDATEs one statement each (by key, or by
 * every column and LIMIT 1 when the table has no key). Generated columns are never written.
 * Safe mode writes REPLACE for INSERT and DELETE + REPLACE for UPDATE.
 */
#ifndef SLUICE_DMLSQL_H
#define SLUICE_DMLSQL_H

#include <stddef.h>
#include <stdint.h>
#include <sluice/event.h>
#include <sluice/err.h>
#include "myconn.h"
#include "compact.h"

typedef struct sl_dmlsql_opts {
    uint32_t batch;       /* rows per statement (>= 1) */
    int      safe_mode;
    size_t   max_bytes;   /* stop adding statements once out exceeds this (0 = 1 MiB) */
} sl_dmlsql_opts;

/*
 * Append statements for evs[0..n) (row events in apply order, all routed) to out, separated by
 * ";\n", and the byte offset where each statement starts to starts (up to max_starts; *nstarts
 * set to the count). Stops after the statement that makes out exceed max_bytes; *consumed tells
 * how many events were turned into SQL (>= 1 when n >= 1). Returns 0, or SL_EINVAL with err
 * filled (event without metadata or a value that has no literal), SL_ENOMEM. Thread-safe.
 */
int sl_dmlsql_build(sl_sbuf *out, sl_event *const *evs, size_t n, const sl_dmlsql_opts *o,
                    size_t *consumed, size_t *starts, size_t max_starts, size_t *nstarts,
                    sl_error *err);

/*
 * The same builder (one statement loop; only the input differs) for the net changes of a
 * compactor (compact.h): consecutive ops of one kind and table
 * become one statement of up to o->batch rows: a multi-row INSERT, a multi-row INSERT ... ON
 * DUPLICATE KEY UPDATE of every written non-key column (REPLACE for both in safe mode), or one
 * DELETE ... WHERE key IN (...). Appends to out like sl_dmlsql_build (a ";\n" first when out is
 * not empty) and stops on the same limits. Thread-safe.
 */
int sl_dmlsql_build_ops(sl_sbuf *out, const sl_cmp_op *ops, size_t n, const sl_dmlsql_opts *o,
                        size_t *consumed, size_t *starts, size_t max_starts, size_t *nstarts,
                        sl_error *err);

#endif
