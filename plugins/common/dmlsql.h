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
    size_t   max_bytes;   /* stop adding statements once out exceeds this, and rows to a statement
                           * once it does (0 = 1 MiB) */
    size_t   max_row;     /* the longest statement of one row the target takes (0 = no limit) */
} sl_dmlsql_opts;

/* sl_dmlsql_build's and sl_dmlsql_build_ops's result when they stopped before a change whose
 * statement alone is longer than max_row: it is change *consumed, and the caller writes it some
 * other way (nothing of it is in out). */
#define SL_DMLSQL_BIG 1

/*
 * Append statements for evs[0..n) (row events in apply order, all routed) to out, separated by
 * ";\n", and the byte offset where each statement starts to starts (up to max_starts; *nstarts
 * set to the count). Stops after the statement that makes out exceed max_bytes; *consumed tells
 * how many events were turned into SQL (>= 1 when n >= 1, unless the result is SL_DMLSQL_BIG).
 * Returns 0, SL_DMLSQL_BIG, or SL_EINVAL with err filled (event without metadata or a value that
 * has no literal), SL_ENOMEM. Thread-safe.
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

/*
 * A row too long for the target's max_allowed_packet as a statement (SL_DMLSQL_BIG) goes as a
 * one-line LOAD DATA LOCAL file instead: the server reads a file in packets of any length. Its
 * strings, JSON, binary and geometry values (not NULL) are the file's fields, escaped as the
 * dump's chunk files are; strings are read as binary into a user variable and converted from
 * their character set, so a target column of another character set gets the same text; the
 * other values are literals in the SET clause.
 *
 * sl_dmlsql_load_row appends that statement for img, a row of ev's table (IGNORE, or REPLACE
 * when replace is set), reading the file named name; SL_EINVAL when the row has no such value.
 * sl_dmlsql_delete_key appends DELETE ... WHERE <ev's key in img>; SL_EINVAL when ev's table
 * has no key or img a NULL in it. The reader gives the file's bytes: sl_dmlsql_row_read fills
 * buf (cap >= 2) and returns the bytes written, 0 at the end. The reader points into img.
 */
typedef struct sl_dmlsql_row_reader {
    const sl_event *ev;
    const sl_value *img;
    uint32_t        c;       /* the column being written */
    size_t          off;     /* its bytes written */
    int             done;
} sl_dmlsql_row_reader;

int    sl_dmlsql_load_row(sl_sbuf *out, const sl_event *ev, const sl_value *img, int replace,
                          const char *name, sl_error *err);
int    sl_dmlsql_delete_key(sl_sbuf *out, const sl_event *ev, const sl_value *img, sl_error *err);
void   sl_dmlsql_row_open(sl_dmlsql_row_reader *r, const sl_event *ev, const sl_value *img);
size_t sl_dmlsql_row_read(sl_dmlsql_row_reader *r, char *buf, size_t cap);

#endif
