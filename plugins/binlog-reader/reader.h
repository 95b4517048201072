/*
 * reader.h - (binlog-reader internal) the reader's state, shared by the plugin glue (reader.c)
 * and the event handling that turns decoded binlog events into batches (stream.c).
 */
#ifndef SLUICE_BINLOG_READER_H
#define SLUICE_BINLOG_READER_H

#include <pthread.h>
#include <stdint.h>
#include <mysql.h>
#include <sluice/plugin.h>
#include <sluice/match.h>
#include "decode.h"
#include "myconn.h"

typedef struct br_cfg {
    SL_MYCONN_FIELDS(source);
    SL_MYCONN_FIELDS(target);
    char   *task_name, *source_name, *meta_schema;
    char   *rules;
    int     flavor;          /* 0 mariadb, 1 mysql */
    int     enable_gtid;
    char   *binlog_name;
    int64_t binlog_pos;
    char   *binlog_gtid;
    int64_t server_id;
    int64_t heartbeat_ms;
    int64_t batch_events;
    int64_t batch_bytes;
    int     verify_checksum;
    int64_t start_time;
    int64_t fence_epoch;        /* cluster fencing (ckpt.h): 0 = off */
    char   *relay_dir;       /* "" = dump from the source; else read the source's relay log */
    char   *resume;          /* a custom sink's checkpoint as JSON (the runtime's), or NULL */
    int     online_ddl;      /* follow gh-ost/pt-osc migrations (osc.c) */
} br_cfg;

struct br_tcols;
struct br_shadow;
struct br_osc;

/* One source table by name: its latest table map and the sl_table published for it. */
typedef struct br_table {
    char            *key;        /* "schema\0table" hashed */
    sl_bl_table_map *map;        /* NULL for unselected tables */
    sl_table        *meta;       /* one reference held here */
    uint64_t         version;
    int              selected;
    struct br_tcols *tcols;      /* the tracked structure's columns (track.c); NULL: not read */
    struct br_table *next;
} br_table;

typedef struct br_tid { uint64_t id; br_table *t; } br_tid;

#define BR_TABLE_BUCKETS 256

#define BR_XA_MAX 4096

typedef struct br {
    const sl_host *host;
    sl_ctx        *ctx;
    const br_cfg  *cfg;
    sl_rules      *rules;
    uint32_t       server_id;

    MYSQL         *db;           /* the dump connection */
    void          *rpl;          /* MARIADB_RPL * */
    MYSQL         *sdb;          /* status queries (SHOW MASTER STATUS) */
    sl_bl_format   fmt;
    uint8_t        dump_checksum; /* what events before the first FDE carry (SL_BL_CHECKSUM_*) */

    /* Where reading is: after the last event read. */
    char           file[256];
    uint64_t       pos;
    /* After the last whole transaction (what a TXN_END batch carries). */
    char           commit_file[256];
    uint64_t       commit_pos;
    sl_bl_gtid_set gtid;         /* executed set after the last whole transaction */
    char          *commit_gtid;  /* its text (malloc) */
    int            gtid_start;   /* no position known yet: dump from start_gtid */
    char          *start_gtid;

    /* The transaction being read. */
    int            in_txn, explicit_begin, txn_ddl;
    int            has_txg;
    sl_bl_gtid     txg;
    uint32_t       txg_server;
    char           txn_file[256];
    uint64_t       txn_pos;      /* where its first event starts */
    uint32_t       txn_ts;
    char          *txn_gtid;     /* executed set including it (malloc) */
    uint64_t       txn_put;      /* its data events put into batches */
    int            begin_put;
    /* After a reconnect in the middle of a transaction: events of it already put, skipped. */
    uint64_t       replay_skip;
    int            replay_begin;

    br_table      *tables[BR_TABLE_BUCKETS];
    br_tid        *tids;
    size_t         ntids, ctids;

    /* The batch being filled and strings interned in it. */
    sl_batch      *b;
    const char    *b_file;
    const char    *b_gtid;
    int            ckpt_dirty;   /* a transaction ended since the last emitted TXN_END batch */
    uint64_t       seq;

    /* The schema tracker (track.c): shadow tables on the target, versions in
     * `<meta_schema>`.`<task>_schema_tracker`. */
    MYSQL         *tdb;
    char           shadow_prefix[32];    /* "_sl_st_<hash of task/source>_" */
    struct br_shadow *shadows;           /* source schema -> shadow schema names */
    int            track_fresh;          /* no checkpoint, or the loader's snapshot one */
    int            track_snapshot;       /* the loader's snapshot one */
    int            full_metadata;        /* the source logs binlog_row_metadata=FULL */
    char           seed_file[256];       /* seeded from the live source at this position: */
    uint64_t       seed_pos;             /* DDL before it may already be in the seed */
    struct br_osc *osc;                  /* online schema changes in flight (osc.c) */

    /* XA transactions whose rows this run applied at their XA PREPARE and whose XA COMMIT or
     * XA ROLLBACK has not come yet, as the binlog writes their xid ("X'..',X'..',N"; malloc'd,
     * oldest first, at most BR_XA_MAX). */
    char         **xa;
    size_t         nxa;
    int            xa_dirty;     /* changed since last kept in the host's state (br_xa_keep) */

    void          *scratch;      /* decode target for skipped rows */
    size_t         scratch_cap;

    /* Status, read by status() from another thread. */
    pthread_mutex_t mu;
    char           st_master_file[256];
    uint64_t       st_master_pos;
    char           st_master_gtid[1024];
    int64_t        st_behind;    /* read lag, -1 before the first event or heartbeat */
    int64_t        st_contact_ms; /* when the source last sent anything (event or heartbeat) */
    int            st_local;     /* reading the relay (binlog_type "local") */
    char           st_read_file[256];
    uint64_t       st_read_pos;
    int64_t        next_status_ms;
    uint64_t       n_events, n_bytes;
} br;

/* stream.c: one event of the dump (the packet after its 0x00 status byte). Returns 0, or a
 * negative code after recording the error in err. */
int  br_handle_event(br *r, const uint8_t *ev, size_t len, sl_error *err);
/* Forget the XA transactions remembered at their prepare (stream.c). */
void br_xa_free(br *r);
/* Read them back from the host's state at a start. A start with no checkpoint of the sink past
 * the snapshot (`fresh`) forgets what an earlier run kept. */
void br_xa_restore(br *r, int fresh);
/* Emit the current batch (if any, or if a transaction ended since the last TXN_END batch). */
int  br_flush(br *r);
/* Forget everything of the current dump (table ids, format, the open transaction's GTID and
 * counts) before a new one; the position to resume from is the start of the current
 * transaction (its events already put are skipped when replayed), else the last commit. The
 * one reset of the reader's stream state: br_start uses it too, with no transaction open. */
void br_reset_for_redump(br *r);
void br_tables_free(br *r);
/* The table of that name if the reader has seen it, else NULL. */
br_table *br_table_find(br *r, const char *schema, const char *table);
int64_t br_now_ms(void);

/* track.c: the schema tracker of the reader's selected tables.
 * br_track_start: after the start position is resolved (r->commit_file/commit_pos): restore the
 * structures persisted at or before it, forget later versions, or seed them from the source.
 * br_track_ddl: one DDL statement read at (r->file, next_pos), written under mode (SL_DDLM_*:
 * the event's ddl_mode): the shadows follow it, under those modes, and the new structures are
 * persisted as versions at that position.
 * br_track_fill: complete a table map of a selected table with the tracked structure (names,
 * signedness, charsets, ENUM/SET labels, primary key) or, when the map carries full metadata,
 * check one against the other.
 * br_track_stop frees connections and caches; br_track_cleanup drops the shadows and versions.
 * All return 0 or a negative code with err filled. */
int  br_track_start(br *r, sl_error *err);
int  br_track_ddl(br *r, const char *db, size_t dblen, const char *sql, size_t len,
                  unsigned mode, uint64_t next_pos, sl_error *err);
int  br_track_fill(br *r, br_table *t, sl_bl_table_map *m, sl_error *err);
void br_track_tcols_free(struct br_tcols *c);
void br_track_stop(br *r);
int  br_track_cleanup(br *r, sl_error *err);
/* The table-structure operations (plugin ctl; the subtask not running), acting on the versions
 * at the syncer checkpoint: {"op": "schema_list"[, "schema"]} -> array of names;
 * "schema_get" {schema, table} -> {schema_name, table_name, schema_create_sql}; "schema_put"
 * {schema, table, sql} (checked by the server on a scratch shadow, then the version at the
 * checkpoint); "schema_delete" {schema, table}. *reply (caller decrefs) may stay NULL. */
#include <jansson.h>
int  br_track_ctl(br *r, const json_t *req, json_t **reply, sl_error *err);
/* SQL shared by the position-versioned tables (the tracker's, online DDL's; track.c): rows
 * after (op ">") or before ("<") file:pos, and the WHERE of one object's versions older than
 * file:pos, keyed by source and two columns (k1 = v1, k2 = v2; values quoted here). */
void br_sql_pos_cmp(sl_sbuf *q, const char *op, const char *file, uint64_t pos);
void br_sql_older_versions(sl_sbuf *q, const char *source, const char *k1, const char *v1,
                           const char *k2, const char *v2, const char *file, uint64_t pos);

/* osc.c: online schema change tools (gh-ost, pt-online-schema-change) when cfg->online_ddl.
 * br_osc_table: 1 when schema.table is one of a tool's tables (ghost, changelog, trash) of a
 * selected table: its rows are skipped and it is never tracked.
 * br_osc_start: after br_track_start, restore the migrations in flight at the resume position.
 * br_osc_ddl: one DDL statement read at (r->file, next_pos), written under mode (SL_DDLM_*):
 * returns 0 when it is no tool's statement (handle it as usual), BR_OSC_CONSUMED when it only
 * moves a migration (nothing goes downstream), BR_OSC_REPLACED at a cut-over: *emit (caller
 * frees) is the ALTER of the real table to send downstream instead, already applied to the
 * tracker, and *emit_mode the modes it reads in (those of the tool's ALTERs of its ghost table).
 * Negative code with err filled.
 * br_osc_stop frees the state; br_osc_cleanup drops the persisted one. */
enum { BR_OSC_CONSUMED = 1, BR_OSC_REPLACED = 2 };
int  br_osc_table(br *r, const char *schema, const char *table);
int  br_osc_start(br *r, sl_error *err);
int  br_osc_ddl(br *r, const char *db, size_t dblen, const char *sql, size_t len,
                unsigned mode, uint64_t next_pos, char **emit, unsigned *emit_mode,
                sl_error *err);
void br_osc_stop(br *r);
int  br_osc_cleanup(br *r, sl_error *err);

/* locate.c: the position of the first transaction that began at or after t (seconds since the
 * epoch) on the source o names, or the source's current position when none did yet: 0 with
 * file and *pos, or a negative code with err. Opens connections of its own. */
int br_locate_time(const sl_myconn_opts *o, uint32_t server_id, int64_t t, char *file,
                   size_t flen, uint64_t *pos, sl_error *err);

/* local.c: br_run for a reader of the relay log in cfg->relay_dir (the source's binlog files as
 * runtime/relay.c writes them), from the resolved position on, following the files as they grow;
 * returns like run() does, or BR_FROM_SOURCE when the relay cannot serve this reader but the
 * source may: the relay is stopped by an error (its relay.error), it set the reader's file
 * aside or started again after the reader's position (its source had purged what followed its
 * files: relay.restart), or the task starts from a GTID set alone. The position is then reset
 * as for a new dump (br_reset_for_redump) and the caller reads the source from there. */
#define BR_FROM_SOURCE 1
int br_run_local(br *r);
/* (reader.c) the source's position for status, refreshed at most every 2 s */
void br_refresh_master_status(br *r);

#endif
