/*
 * ddl.h - a small SQL lexer for the DDL statements replication applies: which schemas and tables
 * a statement names, and the same text with those names rewritten to routed, quoted names.
 *
 * Pure and server-free. Understands comments, MySQL executable comments, quoted identifiers and
 * strings; knows CREATE/ALTER/DROP/TRUNCATE/RENAME TABLE (incl. CREATE TABLE ... LIKE, ALTER
 * TABLE ... RENAME TO, multi-table DROP and RENAME), CREATE/ALTER/DROP DATABASE, CREATE/DROP
 * INDEX and CREATE/ALTER/DROP SEQUENCE (as the table kinds: a sequence is a table in MariaDB).
 * Anything else parses as SL_DDL_OTHER with no names, but a statement that writes rows
 * (writes_rows, below), whose names are the tables it writes.
 */
#ifndef SLUICE_DDL_H
#define SLUICE_DDL_H

#include <stddef.h>
#include <sluice/event.h>
#include "myconn.h"

typedef enum sl_ddl_kind {
    SL_DDL_OTHER = 0,
    SL_DDL_CREATE_DB,
    SL_DDL_ALTER_DB,
    SL_DDL_DROP_DB,
    SL_DDL_CREATE_TABLE,       /* also CREATE TABLE a LIKE b (names: a, b) */
    SL_DDL_ALTER_TABLE,        /* names: the table, then the new name of ALTER ... RENAME TO */
    SL_DDL_DROP_TABLE,         /* names: every table dropped */
    SL_DDL_TRUNCATE_TABLE,
    SL_DDL_RENAME_TABLE,       /* names: a1, b1, a2, b2, ... (pairs old, new) */
    SL_DDL_CREATE_INDEX,
    SL_DDL_DROP_INDEX
} sl_ddl_kind;

/* One name in the text. For database statements table is "" (the name is the schema). */
typedef struct sl_ddl_name {
    char  *schema;      /* unquoted; the default schema when the text does not qualify it */
    char  *table;       /* unquoted; "" for database names */
    size_t start, end;  /* byte range of the name in the text; start == end: implicit (insert) */
} sl_ddl_name;

typedef struct sl_ddl {
    sl_ddl_kind  kind;
    int          is_like;      /* CREATE TABLE a LIKE b */
    int          temporary;    /* CREATE/DROP TEMPORARY TABLE (not replicated by MariaDB in ROW) */
    /* The statement writes rows itself: INSERT, REPLACE, UPDATE, DELETE or LOAD DATA (kind
     * SL_DDL_OTHER, names: the tables it may write, as far as the text shows them), or CREATE
     * TABLE ... SELECT. In a binlog these come from a session in binlog_format STATEMENT or
     * MIXED; in ROW format MariaDB logs the rows, and a CREATE TABLE without its SELECT. */
    int          writes_rows;
    size_t       nnames;
    sl_ddl_name *names;
    /* Tables a CREATE or ALTER TABLE's foreign keys reference (REFERENCES t): rewritten with the
     * names when their route changes them, never the statement's own tables (not selected by). */
    size_t       nrefs;
    sl_ddl_name *refs;
} sl_ddl;

/*
 * Parse sql (len bytes, need not be NUL-terminated). default_schema (may be NULL) qualifies
 * unqualified names. mode holds the SL_DDLM_* bits (sluice/event.h) of the session that wrote
 * the text (a DDL event's ddl_mode; 0 for text sluice or the server's SHOW CREATE made): with
 * SL_DDLM_ANSI_QUOTES "x" is a name, with SL_DDLM_NO_BACKSLASH_ESCAPES a backslash in a string is
 * an ordinary character. Fills *out (caller frees with sl_ddl_free, also after a failure).
 * Returns 0 (also for statements it does not know: kind SL_DDL_OTHER), SL_EPARSE when a known
 * statement is malformed where a name is expected, SL_ENOMEM. Thread-safe.
 */
int  sl_ddl_parse(const char *sql, size_t len, const char *default_schema, unsigned mode,
                  sl_ddl *out);
void sl_ddl_free(sl_ddl *d);

/* Maps a source name to a target name. table is "" for a database name (set *ttable to ""). */
typedef void (*sl_ddl_map_fn)(void *ud, const char *schema, const char *table,
                              const char **tschema, const char **ttable);

/*
 * Append to out the text of sql with every name of d replaced by the mapped name, quoted with
 * backticks and always qualified (`schema`.`table`); database names become `schema`. The rest
 * of the text is copied as is, so the result reads in the mode d was parsed with (backticks
 * quote names in every sql_mode, ANSI_QUOTES and ORACLE included). Returns 0 or SL_ENOMEM.
 * Thread-safe.
 */
int  sl_ddl_rewrite(const char *sql, size_t len, const sl_ddl *d, sl_ddl_map_fn map, void *ud,
                    sl_sbuf *out);

/* An ALTER TABLE cut into its clauses (sl_ddl_alter_split). */
typedef struct sl_ddl_alter {
    int     ignore;        /* ALTER IGNORE TABLE (ONLINE, IF EXISTS and WAIT are not kept) */
    size_t  nclauses;
    char  **clauses;       /* each alter specification, its tokens as written with comments left
                            * out and one space where the text had space between two of them */
} sl_ddl_alter;

/*
 * Cut sql, an ALTER [ONLINE] [IGNORE] TABLE [IF EXISTS] name [WAIT n | NOWAIT] in the SL_DDLM_*
 * modes of mode, into its clauses: the comma-separated alter specifications (ALGORITHM= and
 * LOCK= are clauses too). ADD [COLUMN] (c1 def1, c2 def2) gives one ADD clause per column, so
 * that each clause changes one thing; a clause holds no comma outside parentheses and quotes.
 * Fills *out (caller frees with sl_ddl_alter_free; zeroed after a failure). Returns 0, SL_EINVAL
 * when sql is not an ALTER TABLE, SL_ENOMEM. Thread-safe.
 */
int  sl_ddl_alter_split(const char *sql, size_t len, unsigned mode, sl_ddl_alter *out);
void sl_ddl_alter_free(sl_ddl_alter *a);

/*
 * Append to out the normalized form of sql read in mode (SL_DDLM_*), for telling whether two
 * texts are the same statement: its tokens one space apart, without comments and a trailing
 * ';'; every word and quoted name as a backquoted name, the statement's tables (and the tables
 * its foreign keys reference) as written, every other one in lower case (keywords; column,
 * index and constraint names, which MariaDB compares without case); strings by their value.
 * Only for comparing: it is not meant to run. Returns 0 or SL_ENOMEM. Thread-safe.
 */
int  sl_ddl_normalize(const char *sql, size_t len, unsigned mode, sl_sbuf *out);

/*
 * 1 if a CREATE TABLE as SHOW CREATE TABLE prints it gives a column AUTO_INCREMENT (its table
 * option AUTO_INCREMENT=N does not count). By the text: a comment or a name that holds the word
 * counts too, so it may only decide what costs speed, never what rows go where.
 */
int  sl_ddl_has_autoinc(const char *create_sql);

#endif
