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

/*
 * Cluster fencing (issue 13). `<meta_schema>`.`sluice_fence` holds one row per source: the epoch
 * of its newest owner. sl_ckpt_raise_fence raises the source's row to epoch (never lowers it) in
 * a statement of its own and checks it holds epoch: 0, SL_ESTATE with err saying a newer owner
 * holds it, or SL_EDB/SL_ECONN. Every process that resumes a source calls it before it reads the
 * checkpoint (the reader before choosing where to read from, the sink before recovering), so an
 * older owner's checkpoint transaction either committed before that read or fails: the sink's
 * checkpoint statement reads the row with a shared lock and fails once the epoch moved. The
 * raise waits for such a transaction under way (that lock).
 */
#define SL_CKPT_FENCE_TABLE "sluice_fence"
int sl_ckpt_raise_fence(MYSQL *target, const char *meta_schema, const char *source, int64_t epoch,
                        sl_error *err);

/*
 * The tail that fences an `INSERT INTO t (...) SELECT <values>` (the sink's checkpoint, the
 * loader's chunk row): " FROM (SELECT 1) ... LEFT JOIN <fence row of source> WHERE IF(the row
 * holds epoch, 1, (a subquery of two rows)) LOCK IN SHARE MODE". While the row holds epoch the
 * INSERT writes its one row; once a newer owner raised it (or it is gone) the statement fails
 * with SL_CKPT_FENCED_ERR, and so does the transaction it closes. The shared lock makes a newer
 * owner's raise wait for a transaction under way. MariaDB raises no error on demand outside
 * stored programs; this is the smallest statement that does.
 */
void sl_ckpt_add_fence_guard(sl_sbuf *b, const char *meta_schema, const char *source,
                             int64_t epoch);
/* The error a fenced statement fails with (ER_SUBQUERY_NO_1_ROW). */
#define SL_CKPT_FENCED_ERR "Subquery returns more than 1 row"

#endif
