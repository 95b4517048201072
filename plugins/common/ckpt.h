/*
 * ckpt.h - the syncer checkpoint row in the target (`<meta_schema>`.`<task>_syncer_checkpoint`,
 * PLUGINS.md) as the binlog-reader reads it to know where to resume, and the table's DDL so
 * every writer creates it identically.
 */
#ifndef SLUICE_CKPT_H
#define SLUICE_CKPT_H

#include <stdint.h>
#include <mysql.h>
#include <sluice/err.h>
#include "myconn.h"

/* A resume position. binlog_gtid is malloc'd (or NULL): free with sl_ckpt_pos_clear. */
typedef struct sl_ckpt_pos {
    char     binlog_name[256];
    uint64_t binlog_pos;
    char    *binlog_gtid;
    uint64_t seq;
    int      is_snapshot;
} sl_ckpt_pos;

void sl_ckpt_pos_clear(sl_ckpt_pos *p);

/*
 * Read where replication of (task, source) resumes: the row worker = 0 of the syncer checkpoint
 * table (the global position; per-worker rows > 0, if a sink writes them, are at or after it).
 * Returns 0 with *out filled, SL_ENOENT when the table or the row does not exist (start from the
 * task's configured position), or SL_EDB/SL_ECONN with err filled. Not thread-safe on one MYSQL.
 */
int sl_ckpt_read(MYSQL *target, const char *meta_schema, const char *task, const char *source,
                 sl_ckpt_pos *out, sl_error *err);

/* Append the qualified table name `<meta_schema>`.`<task>_syncer_checkpoint` to b. */
void sl_ckpt_add_table_name(sl_sbuf *b, const char *meta_schema, const char *task);

/* Append CREATE TABLE IF NOT EXISTS for the syncer checkpoint table (PLUGINS.md columns). */
void sl_ckpt_add_create_sql(sl_sbuf *b, const char *meta_schema, const char *task);

#endif
