/*
 * ckpt.c - reading the syncer checkpoint row of a task and source from the target, and the
 * checkpoint table's name and DDL (see ckpt.h, PLUGINS.md "Checkpoint tables").
 */
#include "ckpt.h"

#include <inttypes.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sl_ckpt_pos_clear(sl_ckpt_pos *p)
{
    free(p->binlog_gtid);
    memset(p, 0, sizeof *p);
}

void sl_ckpt_add_table_name(sl_sbuf *b, const char *meta_schema, const char *task)
{
    size_t n = strlen(task);
    char *name = malloc(n + sizeof "_syncer_checkpoint");
    if (!name) {
        b->oom = 1;
        return;
    }
    memcpy(name, task, n);
    memcpy(name + n, "_syncer_checkpoint", sizeof "_syncer_checkpoint");
    sl_sbuf_add_qname(b, meta_schema, name);
    free(name);
}

void sl_ckpt_add_create_sql(sl_sbuf *b, const char *meta_schema, const char *task)
{
    sl_sbuf_adds(b, "CREATE TABLE IF NOT EXISTS ");
    sl_ckpt_add_table_name(b, meta_schema, task);
    sl_sbuf_adds(b, " (source_name VARCHAR(128) NOT NULL, worker INT NOT NULL, "
                    "binlog_name VARCHAR(255), binlog_pos BIGINT UNSIGNED, binlog_gtid TEXT, "
                    "seq BIGINT UNSIGNED, is_snapshot TINYINT, "
                    "updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP, "
                    "PRIMARY KEY(source_name, worker))");
}

int sl_ckpt_read(MYSQL *target, const char *meta_schema, const char *task, const char *source,
                 sl_ckpt_pos *out, sl_error *err)
{
    memset(out, 0, sizeof *out);
    sl_sbuf q;
    sl_sbuf_init(&q);
    sl_sbuf_adds(&q, "SELECT binlog_name, binlog_pos, binlog_gtid, seq, is_snapshot FROM ");
    sl_ckpt_add_table_name(&q, meta_schema, task);
    sl_sbuf_adds(&q, " WHERE worker = 0 AND source_name = ");
    sl_sbuf_add_quoted(&q, source, strlen(source));
    if (q.oom) {
        sl_sbuf_free(&q);
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    }
    if (mysql_real_query(target, q.p, (unsigned long)q.len) != 0) {
        unsigned e = mysql_errno(target);
        int rc;
        if (e == 1146 /* ER_NO_SUCH_TABLE */ || e == 1049 /* ER_BAD_DB_ERROR */)
            rc = SL_ENOENT;
        else
            rc = sl_error_set(err, sl_myconn_is_conn_error(e) ? SL_ECONN : SL_EDB,
                              "reading the syncer checkpoint: %s (errno %u)", mysql_error(target), e);
        sl_sbuf_free(&q);
        return rc;
    }
    sl_sbuf_free(&q);
    MYSQL_RES *res = mysql_store_result(target);
    if (!res)
        return sl_error_set(err, SL_EDB, "reading the syncer checkpoint: %s", mysql_error(target));
    MYSQL_ROW row = mysql_fetch_row(res);
    int rc = SL_ENOENT;
    if (row) {
        rc = 0;
        snprintf(out->binlog_name, sizeof out->binlog_name, "%s", row[0] ? row[0] : "");
        out->binlog_pos = row[1] ? strtoull(row[1], NULL, 10) : 0;
        if (row[2] && row[2][0] && !(out->binlog_gtid = strdup(row[2])))
            rc = sl_error_set(err, SL_ENOMEM, "out of memory");
        out->seq = row[3] ? strtoull(row[3], NULL, 10) : 0;
        out->is_snapshot = row[4] ? atoi(row[4]) : 0;
    }
    mysql_free_result(res);
    return rc;
}

/* One statement on target; its result (if any) freed. */
static int fence_exec(MYSQL *target, sl_sbuf *q, const char *what, sl_error *err)
{
    if (q->oom)
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    if (mysql_real_query(target, q->p, (unsigned long)q->len) != 0) {
        unsigned e = mysql_errno(target);
        return sl_error_set(err, sl_myconn_is_conn_error(e) ? SL_ECONN : SL_EDB, "%s: %s (errno %u)",
                            what, mysql_error(target), e);
    }
    MYSQL_RES *res = mysql_store_result(target);
    if (res)
        mysql_free_result(res);
    return 0;
}

void sl_ckpt_add_fence_guard(sl_sbuf *b, const char *meta_schema, const char *source,
                             int64_t epoch)
{
    sl_sbuf_adds(b, " FROM (SELECT 1) AS sl_one LEFT JOIN ");
    sl_sbuf_add_qname(b, meta_schema, SL_CKPT_FENCE_TABLE);
    sl_sbuf_adds(b, " AS sl_f ON sl_f.source_name = ");
    sl_sbuf_add_quoted(b, source, strlen(source));
    sl_sbuf_addf(b, " WHERE IF(sl_f.epoch <=> %" PRId64 ", 1, (SELECT 1 UNION ALL SELECT 2)) "
                 "LOCK IN SHARE MODE", epoch);
}

int sl_ckpt_raise_fence(MYSQL *target, const char *meta_schema, const char *source, int64_t epoch,
                        sl_error *err)
{
    sl_sbuf q;
    int rc;
    sl_sbuf_init(&q);
    sl_sbuf_adds(&q, "CREATE DATABASE IF NOT EXISTS ");
    sl_sbuf_add_ident(&q, meta_schema);
    if ((rc = fence_exec(target, &q, "creating the meta schema", err)) != 0)
        goto out;
    sl_sbuf_reset(&q);
    sl_sbuf_adds(&q, "CREATE TABLE IF NOT EXISTS ");
    sl_sbuf_add_qname(&q, meta_schema, SL_CKPT_FENCE_TABLE);
    sl_sbuf_adds(&q, " (source_name VARCHAR(128) NOT NULL PRIMARY KEY, epoch BIGINT NOT NULL, "
                 "updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP)");
    if ((rc = fence_exec(target, &q, "creating the fence table", err)) != 0)
        goto out;
    sl_sbuf_reset(&q);
    sl_sbuf_adds(&q, "INSERT INTO ");
    sl_sbuf_add_qname(&q, meta_schema, SL_CKPT_FENCE_TABLE);
    sl_sbuf_adds(&q, " (source_name, epoch) VALUES (");
    sl_sbuf_add_quoted(&q, source, strlen(source));
    sl_sbuf_addf(&q, ", %" PRId64 ") ON DUPLICATE KEY UPDATE epoch = GREATEST(epoch, VALUES(epoch))",
                 epoch);
    if ((rc = fence_exec(target, &q, "raising the fence", err)) != 0)
        goto out;
    sl_sbuf_reset(&q);
    sl_sbuf_adds(&q, "SELECT epoch FROM ");
    sl_sbuf_add_qname(&q, meta_schema, SL_CKPT_FENCE_TABLE);
    sl_sbuf_adds(&q, " WHERE source_name = ");
    sl_sbuf_add_quoted(&q, source, strlen(source));
    if (q.oom || mysql_real_query(target, q.p, (unsigned long)q.len) != 0) {
        rc = q.oom ? sl_error_set(err, SL_ENOMEM, "out of memory")
                   : sl_error_set(err, SL_EDB, "reading the fence: %s", mysql_error(target));
        goto out;
    }
    MYSQL_RES *res = mysql_store_result(target);
    MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
    long long have = row && row[0] ? strtoll(row[0], NULL, 10) : -1;
    if (res)
        mysql_free_result(res);
    if (have != epoch)
        rc = sl_error_set(err, SL_ESTATE, "fenced: source %s belongs to a newer owner (fence epoch "
                          "%lld, ours %" PRId64 "): this process does not apply it", source, have,
                          epoch);
out:
    sl_sbuf_free(&q);
    return rc;
}
