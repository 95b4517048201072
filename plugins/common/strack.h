/*
 * strack.h - the schema tracker's core: a table structure moved forward by DDL, with MariaDB
 * itself as the parser.
 *
 * Why: the structure of a table at a binlog position is what a row event without column names
 * (binlog_row_metadata=MINIMAL) must be decoded with, and what the table-structure endpoints
 * show and replace. Following DDL by hand would mean a second SQL grammar that drifts from the
 * server's (every ALTER variant, defaults, charsets, implicit changes). Instead every tracked
 * table lives as an empty shadow table on a server (the target) in a tracker schema; a DDL is
 * rewritten onto the shadow names (ddl.h) and executed there, and the structure is read back
 * with SHOW CREATE TABLE. The server's own error is what a DDL it cannot apply reports.
 *
 * The caller owns the naming (sl_ddl_map_fn maps a source schema.table to its shadow) and the
 * connection; the shadow tables hold no rows, so memory and time do not grow with data size.
 */
#ifndef SLUICE_STRACK_H
#define SLUICE_STRACK_H

#include <stddef.h>
#include <stdint.h>
#include "ddl.h"

/*
 * Apply one DDL statement (len bytes, as the binlog's QUERY event carries it, default_schema its
 * current database or NULL, mode the SL_DDLM_* modes of the session that ran it: the event's
 * ddl_mode) to the shadow tables named by map, read and run under those modes. Statements that
 * change no table structure (DML, database statements, TEMPORARY tables, anything ddl.h parses
 * as SL_DDL_OTHER) are not applied: returns 1 and leaves the shadows alone. Returns 0 when applied, SL_EPARSE when
 * ddl.h cannot find the names, SL_EDB with the statement and the server's error when the shadow
 * server refuses it (e.g. a column that does not exist: the tracked structure is then behind the
 * source's, and the caller pauses; *dberr, when dberr is not NULL, is then the server's error
 * number: mysql_errno no longer tells it, the session's sql_mode was set back after), SL_ECONN,
 * SL_ENOMEM.
 * The session runs with foreign_key_checks = 0 (a shadow's referenced tables may be untracked)
 * and, when default_schema is given, in the shadow schema map gives for it (USE).
 */
int sl_strack_apply(MYSQL *db, const char *sql, size_t len, const char *default_schema,
                    unsigned mode, sl_ddl_map_fn map, void *ud, unsigned *dberr, sl_error *err);

/*
 * The CREATE TABLE of a shadow (SHOW CREATE TABLE), malloc'd into *create (caller frees).
 * Returns 0, SL_ENOENT when the shadow does not exist, SL_EDB, SL_ECONN, SL_ENOMEM.
 */
int sl_strack_show(MYSQL *db, const char *schema, const char *table, char **create,
                   sl_error *err);

/*
 * Replace (or first set: the seed) the tracked structure of schema.table with a CREATE TABLE
 * statement for that table (the source's SHOW CREATE TABLE, or a user's PUT: mode 0; a CREATE
 * TABLE from the binlog: its ddl_mode, as sl_strack_apply). The statement is
 * first created under a scratch name in the shadow schema, so a statement the server refuses
 * changes nothing; then the shadow is replaced. Returns 0; SL_EINVAL when the text is not one
 * CREATE TABLE (not LIKE, not TEMPORARY) of schema.table, naming what it is; SL_EDB with the
 * server's error (a syntax error, an unknown type, ...); SL_ECONN; SL_ENOMEM.
 */
int sl_strack_replace(MYSQL *db, const char *schema, const char *table, const char *sql,
                      size_t len, unsigned mode, sl_ddl_map_fn map, void *ud, unsigned *dberr,
                      sl_error *err);

/* Stop tracking schema.table (drop its shadow). Returns 0 (also when it was not tracked),
 * SL_EDB, SL_ECONN, SL_ENOMEM. */
int sl_strack_drop(MYSQL *db, const char *schema, const char *table, sl_ddl_map_fn map,
                   void *ud, sl_error *err);

/*
 * The persisted versions (the binlog-reader's track.c keeps them; mysql-dump seeds them at its
 * snapshot): rows (source_name, schema_name, table_name, binlog_name, binlog_pos, create_sql;
 * NULL = the table no longer exists) of `<meta_schema>`.`<task>_schema_tracker`.
 * sl_strack_versions_create creates the table if it is missing; sl_strack_version_put writes
 * (or replaces) one version. Both return 0 or SL_EDB/SL_ECONN/SL_ENOMEM with err filled.
 * sl_strack_versions_name appends the table's quoted, qualified name to b.
 */
void sl_strack_versions_name(sl_sbuf *b, const char *meta_schema, const char *task);
int  sl_strack_versions_create(MYSQL *db, const char *meta_schema, const char *task,
                               sl_error *err);
int  sl_strack_version_put(MYSQL *db, const char *meta_schema, const char *task,
                           const char *source, const char *schema, const char *table,
                           const char *file, uint64_t pos, const char *create, sl_error *err);

#endif
