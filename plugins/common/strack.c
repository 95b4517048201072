/*
 * strack.c - the schema tracker's core (see strack.h): DDL applied to empty shadow tables on a
 * server, structures read back with SHOW CREATE TABLE.
 */
#include "strack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <mysqld_error.h>

/* Which statements move a table's structure. CREATE DATABASE and friends do not: the tracker
 * creates its own schemas. TEMPORARY tables are never in a ROW binlog's row events. */
static int follows(const sl_ddl *d)
{
    if (d->temporary)
        return 0;
    switch (d->kind) {
    case SL_DDL_CREATE_TABLE:
    case SL_DDL_ALTER_TABLE:
    case SL_DDL_DROP_TABLE:
    case SL_DDL_RENAME_TABLE:
    case SL_DDL_CREATE_INDEX:
    case SL_DDL_DROP_INDEX:
        return 1;
    default:
        return 0;     /* TRUNCATE keeps the structure; database and other statements are not ours */
    }
}

int sl_strack_apply(MYSQL *db, const char *sql, size_t len, const char *default_schema,
                    unsigned mode, sl_ddl_map_fn map, void *ud, unsigned *dberr, sl_error *err)
{
    if (dberr)
        *dberr = 0;
    sl_ddl d;
    int rc = sl_ddl_parse(sql, len, default_schema, mode, &d);
    if (rc == SL_ENOMEM) {
        sl_ddl_free(&d);
        return sl_error_set(err, rc, "out of memory");
    }
    if (rc < 0) {
        sl_ddl_free(&d);
        return sl_error_set(err, rc, "schema tracker: cannot find the table names of %.*s",
                            (int)(len > 200 ? 200 : len), sql);
    }
    if (!follows(&d)) {
        sl_ddl_free(&d);
        return 1;
    }
    sl_sbuf out;
    sl_sbuf_init(&out);
    rc = sl_ddl_rewrite(sql, len, &d, map, ud, &out);
    sl_ddl_free(&d);
    if (rc < 0 || out.oom) {
        sl_sbuf_free(&out);
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    }
    static const char fk_off[] = "SET SESSION foreign_key_checks = 0" SL_MYCONN_SET_KEEP_HISTORY;
    rc = sl_myconn_exec(db, fk_off, sizeof fk_off - 1, err);
    if (rc == 0 && default_schema && *default_schema) {
        /* an unqualified REFERENCES parent resolves in the shadow of the statement's default
         * schema, as it did on the source in its own (ddl.h rewrites the qualified ones) */
        const char *ts = NULL, *tt = NULL;
        map(ud, default_schema, "", &ts, &tt);
        if (ts && *ts) {
            sl_sbuf use;
            sl_sbuf_init(&use);
            sl_sbuf_adds(&use, "USE ");
            sl_sbuf_add_ident(&use, ts);
            rc = use.oom ? sl_error_set(err, SL_ENOMEM, "out of memory")
                         : sl_myconn_exec(db, use.p, use.len, err);
            sl_sbuf_free(&use);
        }
    }
    if (rc == 0 && (rc = sl_myconn_ddl_mode_enter(db, mode, err)) == 0) {
        rc = sl_myconn_exec(db, out.p, out.len, err);
        unsigned e = rc < 0 ? mysql_errno(db) : 0;    /* before the statement below clears it */
        if (dberr)
            *dberr = e;
        if (rc == SL_EDB) {
            /* sl_myconn_exec names the rewritten text; say which source statement it was */
            char why[SL_ERRMSG_MAX];
            snprintf(why, sizeof why, "%s", err->msg);
            sl_error_set(err, rc, "schema tracker cannot apply %.*s: %s",
                         (int)(len > 300 ? 300 : len), sql, why);
        }
        /* the session's own sql_mode back, also after a failure (the tracker goes on) */
        sl_error left = { 0 };
        int lrc = sl_myconn_ddl_mode_leave(db, mode, &left);
        if (rc == 0 && lrc < 0) {
            rc = lrc;
            *err = left;
        }
    }
    sl_sbuf_free(&out);
    return rc;
}

int sl_strack_show(MYSQL *db, const char *schema, const char *table, char **create,
                   sl_error *err)
{
    *create = NULL;
    sl_sbuf q;
    sl_sbuf_init(&q);
    sl_sbuf_adds(&q, "SHOW CREATE TABLE ");
    sl_sbuf_add_qname(&q, schema, table);
    if (q.oom) {
        sl_sbuf_free(&q);
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    }
    int qrc = mysql_real_query(db, q.p, q.len);
    sl_sbuf_free(&q);
    if (qrc) {
        unsigned no = mysql_errno(db);
        if (no == ER_NO_SUCH_TABLE || no == ER_BAD_DB_ERROR)
            return sl_error_set(err, SL_ENOENT, "schema tracker: %s.%s is not tracked",
                                schema, table);
        return sl_error_set(err, sl_myconn_is_conn_error(no) ? SL_ECONN : SL_EDB,
                            "schema tracker: SHOW CREATE TABLE %s.%s: %s (errno %u)", schema,
                            table, mysql_error(db), no);
    }
    MYSQL_RES *res = mysql_store_result(db);
    if (!res)
        return sl_error_set(err, SL_EDB, "schema tracker: SHOW CREATE TABLE %s.%s: %s", schema,
                            table, mysql_error(db));
    MYSQL_ROW row = mysql_fetch_row(res);
    unsigned long *lens = mysql_fetch_lengths(res);
    int rc = 0;
    if (!row || mysql_num_fields(res) < 2 || !row[1]) {
        rc = sl_error_set(err, SL_EDB, "schema tracker: SHOW CREATE TABLE %s.%s returned no "
                          "definition", schema, table);
    } else {
        *create = malloc(lens[1] + 1);
        if (!*create) {
            rc = sl_error_set(err, SL_ENOMEM, "out of memory");
        } else {
            memcpy(*create, row[1], lens[1]);
            (*create)[lens[1]] = '\0';
        }
    }
    mysql_free_result(res);
    return rc;
}

/* The scratch name a replacement is created under, in the same shadow schema. */
#define SCRATCH "_sl_strack_new"

typedef struct scratch_map {
    sl_ddl_map_fn map;
    void         *ud;
} scratch_map;

static void to_scratch(void *ud, const char *schema, const char *table, const char **tschema,
                       const char **ttable)
{
    scratch_map *m = ud;
    m->map(m->ud, schema, table, tschema, ttable);
    *ttable = SCRATCH;
}

/* Run the statement "<verb> `s`.`t`<rest>". */
static int exec_qname(MYSQL *db, const char *verb, const char *s, const char *t,
                      const char *rest, sl_error *err)
{
    sl_sbuf q;
    sl_sbuf_init(&q);
    sl_sbuf_adds(&q, verb);
    sl_sbuf_add_qname(&q, s, t);
    sl_sbuf_adds(&q, rest);
    int rc = q.oom ? sl_error_set(err, SL_ENOMEM, "out of memory")
                   : sl_myconn_exec(db, q.p, q.len, err);
    sl_sbuf_free(&q);
    return rc;
}

int sl_strack_replace(MYSQL *db, const char *schema, const char *table, const char *sql,
                      size_t len, unsigned mode, sl_ddl_map_fn map, void *ud, unsigned *dberr,
                      sl_error *err)
{
    if (dberr)
        *dberr = 0;
    sl_ddl d;
    int rc = sl_ddl_parse(sql, len, schema, mode, &d);
    if (rc == SL_ENOMEM) {
        sl_ddl_free(&d);
        return sl_error_set(err, rc, "out of memory");
    }
    if (rc < 0 || d.kind != SL_DDL_CREATE_TABLE || d.is_like || d.temporary || d.nnames != 1) {
        sl_ddl_free(&d);
        return sl_error_set(err, SL_EINVAL, "the statement is not a CREATE TABLE of %s.%s: "
                            "%.*s", schema, table, (int)(len > 200 ? 200 : len), sql);
    }
    /* identifiers compare case-insensitively, as table names do on a lower_case server */
    if (strcasecmp(d.names[0].schema, schema) || strcasecmp(d.names[0].table, table)) {
        rc = sl_error_set(err, SL_EINVAL, "the statement creates %s.%s, not %s.%s",
                          d.names[0].schema, d.names[0].table, schema, table);
        sl_ddl_free(&d);
        return rc;
    }
    sl_ddl_free(&d);

    const char *ts = NULL, *tt = NULL;
    map(ud, schema, table, &ts, &tt);
    if (!ts || !tt)
        return sl_error_set(err, SL_EINVAL, "schema tracker: %s.%s has no shadow", schema, table);
    rc = exec_qname(db, "DROP TABLE IF EXISTS ", ts, SCRATCH, "", err);
    if (rc < 0)
        return rc;
    scratch_map sm = { map, ud };
    rc = sl_strack_apply(db, sql, len, schema, mode, to_scratch, &sm, dberr, err);
    if (rc < 0)
        return rc;
    rc = exec_qname(db, "DROP TABLE IF EXISTS ", ts, tt, "", err);
    if (rc == 0) {
        sl_sbuf rest;
        sl_sbuf_init(&rest);
        sl_sbuf_adds(&rest, " TO ");
        sl_sbuf_add_qname(&rest, ts, tt);
        rc = rest.oom ? sl_error_set(err, SL_ENOMEM, "out of memory")
                      : exec_qname(db, "RENAME TABLE ", ts, SCRATCH, rest.p, err);
        sl_sbuf_free(&rest);
    }
    return rc;
}

int sl_strack_drop(MYSQL *db, const char *schema, const char *table, sl_ddl_map_fn map,
                   void *ud, sl_error *err)
{
    const char *ts = NULL, *tt = NULL;
    map(ud, schema, table, &ts, &tt);
    if (!ts || !tt)
        return 0;
    return exec_qname(db, "DROP TABLE IF EXISTS ", ts, tt, "", err);
}

/* ---- persisted versions ------------------------------------------------------------------- */

void sl_strack_versions_name(sl_sbuf *b, const char *meta_schema, const char *task)
{
    size_t n = strlen(task);
    char *name = malloc(n + sizeof "_schema_tracker");
    if (!name) {
        b->oom = 1;
        return;
    }
    memcpy(name, task, n);
    memcpy(name + n, "_schema_tracker", sizeof "_schema_tracker");
    sl_sbuf_add_qname(b, meta_schema, name);
    free(name);
}

static int exec_buf(MYSQL *db, sl_sbuf *q, sl_error *err)
{
    int rc = q->oom ? sl_error_set(err, SL_ENOMEM, "out of memory")
                    : sl_myconn_exec(db, q->p, q->len, err);
    sl_sbuf_free(q);
    return rc;
}

int sl_strack_versions_create(MYSQL *db, const char *meta_schema, const char *task,
                              sl_error *err)
{
    sl_sbuf q;
    sl_sbuf_init(&q);
    sl_sbuf_adds(&q, "CREATE DATABASE IF NOT EXISTS ");
    sl_sbuf_add_ident(&q, meta_schema);
    int rc = exec_buf(db, &q, err);
    if (rc < 0)
        return rc;
    sl_sbuf_init(&q);
    sl_sbuf_adds(&q, "CREATE TABLE IF NOT EXISTS ");
    sl_strack_versions_name(&q, meta_schema, task);
    sl_sbuf_adds(&q, " (source_name VARCHAR(128) NOT NULL, schema_name VARCHAR(64) NOT NULL, "
                     "table_name VARCHAR(64) NOT NULL, binlog_name VARCHAR(255) NOT NULL, "
                     "binlog_pos BIGINT UNSIGNED NOT NULL, create_sql MEDIUMTEXT NULL, "
                     "updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP, "
                     "PRIMARY KEY (source_name, schema_name, table_name, binlog_name, binlog_pos)) "
                     "DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin");
    return exec_buf(db, &q, err);
}

int sl_strack_version_put(MYSQL *db, const char *meta_schema, const char *task,
                          const char *source, const char *schema, const char *table,
                          const char *file, uint64_t pos, const char *create, sl_error *err)
{
    sl_sbuf q;
    sl_sbuf_init(&q);
    sl_sbuf_adds(&q, "INSERT INTO ");
    sl_strack_versions_name(&q, meta_schema, task);
    sl_sbuf_adds(&q, " (source_name, schema_name, table_name, binlog_name, binlog_pos, "
                     "create_sql) VALUES (");
    sl_sbuf_add_quoted(&q, source, strlen(source));
    sl_sbuf_adds(&q, ", ");
    sl_sbuf_add_quoted(&q, schema, strlen(schema));
    sl_sbuf_adds(&q, ", ");
    sl_sbuf_add_quoted(&q, table, strlen(table));
    sl_sbuf_adds(&q, ", ");
    sl_sbuf_add_quoted(&q, file, strlen(file));
    sl_sbuf_addf(&q, ", %llu, ", (unsigned long long)pos);
    if (create)
        sl_sbuf_add_quoted(&q, create, strlen(create));
    else
        sl_sbuf_adds(&q, "NULL");
    sl_sbuf_adds(&q, ") ON DUPLICATE KEY UPDATE create_sql = VALUES(create_sql)");
    return exec_buf(db, &q, err);
}
