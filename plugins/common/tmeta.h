/*
 * tmeta.h - what a sink knows of a TARGET table (columns, generated/invisible/nullable flags,
 * unique keys as information_schema describes them) and the pure mapping of an event's table
 * metadata onto it, by column name, into a "view" sl_table that dmlsql.c and causality.c use.
 *
 * Why: the binlog (binlog_row_metadata=FULL) carries the primary key but neither the other unique
 * keys nor which columns are generated. The target's own definition is what decides duplicate-key
 * conflicts and which columns may be written, so the sink loads it once per target table and
 * builds one view per (event metadata version, target table):
 *   - columns keep the event's order and indexes (values line up with the event's images);
 *   - a column generated on the target is flagged SL_COL_GENERATED (never written);
 *   - a column missing on the target is an error, unless the event's metadata says it is
 *     generated (then it is not written either);
 *   - pk = the identifying key for UPDATE/DELETE: the target's PRIMARY KEY, else its first
 *     unique key (by name) whose columns are all NOT NULL, all present in the event and none of
 *     them FLOAT (FLOAT has no exact literal); none when there is no such key (the sink then
 *     matches every column with <=> and LIMIT 1);
 *   - keys = every other unique key for causality. A key whose columns are only partly present
 *     in the event is hashed on the present ones (a superset of the real collisions); a key with
 *     none present, or with a prefix part (UNIQUE(c(10))), becomes an empty column list, which
 *     causality hashes to the table name alone: every row of the table then goes to one worker;
 *   - the event's own primary key is added as a causality key when the target has no key with
 *     the same columns;
 *   - a table linked by foreign keys (either side, transitively) to a foreign key with ON DELETE
 *     or ON UPDATE CASCADE / SET NULL has SL_TVIEW_FKCASCADE on every column of its view: the
 *     source's binlog does not log the child rows such a key changes (InnoDB changes them below
 *     the binlog; MariaDB KB "Foreign Keys", "Replication and Binary Log System Variables"), so
 *     the sink applies that table's rows with foreign_key_checks = 1, in source order with every
 *     other such table, and lets the target's InnoDB perform the same cascades.
 * Pure and server-free; thread-safe on distinct objects.
 */
#ifndef SLUICE_TMETA_H
#define SLUICE_TMETA_H

#include <stddef.h>
#include <stdint.h>
#include <sluice/event.h>
#include <sluice/err.h>

/* sl_tcol.flags */
#define SL_TCOL_NULLABLE  0x01u
#define SL_TCOL_GENERATED 0x02u   /* VIRTUAL or STORED generated, or a system-versioning column */
#define SL_TCOL_INVISIBLE 0x04u   /* MariaDB INVISIBLE: written by name like any other column */
#define SL_TCOL_ROWEND    0x08u   /* the ROW END column of a system-versioned table (GENERATION_EXPRESSION) */

/* sl_column.flags of a view (never set by a producer; SL_COL_* stop at 0x20): the table is in a
 * foreign-key component with a cascading action (see above). */
#define SL_TVIEW_FKCASCADE 0x80u
/* sl_column.flags of a view: the ROW END column of a system-versioned target table */
#define SL_TVIEW_ROWEND    0x40u

typedef struct sl_tcol {
    char    *name;
    unsigned flags;               /* SL_TCOL_* */
} sl_tcol;

typedef struct sl_tkey {
    char     *name;               /* index name; "PRIMARY" for the primary key */
    uint32_t  ncols;
    uint32_t *cols;               /* indexes into sl_tmeta.cols, in key order */
    int       prefix;             /* some part indexes only a prefix of its column */
} sl_tkey;

typedef struct sl_tmeta {
    char     *schema, *table;
    uint32_t  ncols, ccols;
    sl_tcol  *cols;               /* in ordinal order */
    uint32_t  nkeys, ckeys;
    sl_tkey  *keys;               /* unique keys in the order they were added */
    int       fk_cascade;         /* in a foreign-key component with a cascading action */
    int       versioned;          /* WITH SYSTEM VERSIONING (TABLES.TABLE_TYPE "SYSTEM VERSIONED") */
} sl_tmeta;

/*
 * System-versioned tables. The source's binlog logs what its server did to the table itself:
 * an UPDATE as the update of the current row plus the INSERT of a history row (ROW END = the
 * time of the change), a DELETE as an UPDATE that closes the row's ROW END, DELETE HISTORY as
 * deletes of history rows. The target, versioned too, keeps its own history, so the sink applies
 * only what happens to CURRENT rows (ROW END at its maximum) and lets the target write history:
 *   SL_TV_APPLY   the change as it is (insert/update/delete of a current row);
 *   SL_TV_SKIP    a history row written or deleted: the target made its own;
 *   SL_TV_DELETE  an UPDATE that closes a current row: a DELETE of the before image.
 * Implicit ROW START/ROW END columns (row_start, row_end: not in information_schema.COLUMNS of
 * the target) are not written, like explicit ones (generated). ROW END is at its maximum when a
 * TIMESTAMP(6) holds 2038-01-19 03:14:07.999999 (or later, for servers with a wider TIMESTAMP)
 * or a transaction-id BIGINT UNSIGNED holds 18446744073709551615.
 */
enum { SL_TV_APPLY = 0, SL_TV_SKIP, SL_TV_DELETE };
int       sl_tmeta_versioned_row(const sl_table *view, int kind, const sl_value *before,
                                 const sl_value *after);

/* One foreign key as a row of information_schema.REFERENTIAL_CONSTRAINTS gives it: the child
 * (CONSTRAINT_SCHEMA, TABLE_NAME), the parent (UNIQUE_CONSTRAINT_SCHEMA, REFERENCED_TABLE_NAME),
 * and whether UPDATE_RULE or DELETE_RULE is CASCADE or SET NULL (see sl_tmeta_fk_rule_cascades). */
typedef struct sl_tfk {
    const char *schema, *table, *ref_schema, *ref_table;
    int         cascades;
} sl_tfk;

/* 1 if a referential rule ("CASCADE", "SET NULL", "RESTRICT", "NO ACTION", "SET DEFAULT")
 * changes child rows by itself: CASCADE and SET NULL (InnoDB refuses SET DEFAULT). */
int       sl_tmeta_fk_rule_cascades(const char *rule);

/*
 * Whether schema.table is linked, through the foreign keys fks[0..n) taken in either direction
 * and transitively, to a foreign key that cascades (the table's own keys included). A table with
 * no foreign key at all is not. Names compare exactly (as information_schema spells them).
 * Returns 1, 0, or SL_ENOMEM.
 */
int       sl_tmeta_fk_cascade(const sl_tfk *fks, size_t n, const char *schema, const char *table);

/* An empty description of schema.table. Caller frees with sl_tmeta_free. NULL on OOM. */
sl_tmeta *sl_tmeta_new(const char *schema, const char *table);
void      sl_tmeta_free(sl_tmeta *t);

/* SL_TCOL_* flags from information_schema.COLUMNS text: IS_NULLABLE ("YES"/"NO"), EXTRA
 * (e.g. "VIRTUAL GENERATED", "STORED GENERATED", "INVISIBLE", "auto_increment"), IS_GENERATED
 * ("ALWAYS"/"NEVER"). Any argument may be NULL. */
unsigned  sl_tmeta_col_flags(const char *is_nullable, const char *extra, const char *is_generated);
/* The same, with GENERATION_EXPRESSION ("ROW END" on an explicit system-versioning column). */
unsigned  sl_tmeta_col_flags2(const char *is_nullable, const char *extra, const char *is_generated,
                              const char *generation_expression);

/* Append a column (in ordinal order). Returns 0 or SL_ENOMEM. */
int       sl_tmeta_add_col(sl_tmeta *t, const char *name, unsigned flags);

/*
 * Append one part of a unique key (rows of information_schema.STATISTICS with NON_UNIQUE = 0,
 * grouped by index and in SEQ_IN_INDEX order): a part whose index name differs from the last
 * key's starts a new key. prefix: SUB_PART is not NULL. Columns must have been added first.
 * Returns 0, SL_ENOMEM, or SL_ENOENT when the column is unknown.
 */
int       sl_tmeta_add_key_part(sl_tmeta *t, const char *key, const char *col, int prefix);

/* Index of a column by name (case-insensitive, as MySQL compares column names), or -1. */
int       sl_tmeta_find_col(const sl_tmeta *t, const char *name);

/*
 * Build the view of the event metadata src (ncols columns) against the target t (see the top of
 * this file). The view is one malloc'd block: the caller frees it with free(). Its column names
 * and type_text point into src, so src must outlive it (hold a reference). refcnt is 0: never
 * hand the view to the host. Returns 0, SL_ENOMEM, or SL_EINVAL with err naming the column of
 * src that the target lacks.
 */
int       sl_tmeta_view(const sl_tmeta *t, const sl_table *src, sl_table **out, sl_error *err);

#endif
