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

/* sl_dmlsql_stmt.check: what a statement's result tells of the row changes that found no row on
 * the target (a target that drifted from the source: a row deleted or never copied there). */
enum {
    SL_DMLSQL_CHECK_NONE = 0,  /* INSERT, REPLACE, any statement of safe mode, or not a row's */
    SL_DMLSQL_CHECK_DELETE,    /* DELETE of one or more rows: the affected rows are those found */
    SL_DMLSQL_CHECK_UPDATE,    /* UPDATE of one row: mysql_info()'s "Rows matched" */
    SL_DMLSQL_CHECK_UPSERT     /* INSERT ... ON DUPLICATE KEY UPDATE of the net changes of rows
                                * present at the group's start: the rows it inserted */
};

/*
 * One statement the builder wrote: where it starts in out, and for sl_dmlsql_not_found and
 * sl_dmlsql_stmt_change how many changes it carries and which (the builder's input: evs or ops,
 * from index first; valid as long as that input is).
 */
typedef struct sl_dmlsql_stmt {
    size_t           start;   /* byte offset of the statement in out */
    uint32_t         rows;    /* changes it carries (0: not a row change's, e.g. XA START) */
    uint8_t          check;   /* SL_DMLSQL_CHECK_* */
    sl_event *const *evs;     /* the input (one of the two), and its first change's index */
    const sl_cmp_op *ops;
    size_t           first;
} sl_dmlsql_stmt;

/*
 * How many of st's changes found no row on the target, from the statement's result: its
 * affected rows (a session without CLIENT_FOUND_ROWS, as the sink's) and mysql_info()'s text
 * (NULL when the server sent none). Exact on MariaDB: an UPDATE's "Rows matched" counts a row
 * found and left as it was (affected rows do not); a multi-row upsert's affected rows are 1 per
 * row inserted and 2 per row changed, "Duplicates" the rows changed, so it inserted
 * affected - 2 * Duplicates rows (a single row: 1 affected row is an insert, 0 or 2 a row found).
 * 0 when the result does not say (no info where one is needed). Pure.
 */
uint64_t sl_dmlsql_not_found(const sl_dmlsql_stmt *st, uint64_t affected, const char *info);

/*
 * The k-th change of st (k < st->rows): its event and the row image whose key the statement
 * looks for (an UPDATE's before image, a DELETE's, an upsert's). SL_EINVAL when k is out of
 * range or st carries no changes. Pure.
 */
int sl_dmlsql_stmt_change(const sl_dmlsql_stmt *st, size_t k, const sl_event **ev, const sl_value **img);

/*
 * Append the key of img, a row of ev's table, as "`c`=literal AND ..." to out, at most max bytes
 * of it (then "..."); nothing when the table has no key (the whole row would be its key: its
 * values are not shown). 0 or SL_ENOMEM. Pure.
 */
int sl_dmlsql_key(sl_sbuf *out, const sl_event *ev, const sl_value *img, size_t max);

/* sl_dmlsql_build's and sl_dmlsql_build_ops's result when they stopped before a change whose
 * statement alone is longer than max_row: it is change *consumed, and the caller writes it some
 * other way (nothing of it is in out). */
#define SL_DMLSQL_BIG 1

/*
 * Append statements for evs[0..n) (row events in apply order, all routed) to out, separated by
 * ";\n", and each statement's start and check to stmts (up to max_stmts; *nstmts set to the
 * count). Stops after the statement that makes out exceed max_bytes; *consumed tells
 * how many events were turned into SQL (>= 1 when n >= 1, unless the result is SL_DMLSQL_BIG).
 * Returns 0, SL_DMLSQL_BIG, or SL_EINVAL with err filled (event without metadata or a value that
 * has no literal), SL_ENOMEM. Thread-safe.
 */
int sl_dmlsql_build(sl_sbuf *out, sl_event *const *evs, size_t n, const sl_dmlsql_opts *o,
                    size_t *consumed, sl_dmlsql_stmt *stmts, size_t max_stmts, size_t *nstmts,
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
                        size_t *consumed, sl_dmlsql_stmt *stmts, size_t max_stmts, size_t *nstmts,
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
