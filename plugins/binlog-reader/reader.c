/*
 * reader.c - the binlog-reader source plugin: checks the source's binlog settings, finds where
 * to start (the syncer checkpoint in the target, else the task's position), dumps the binlog
 * over the replication protocol (COM_BINLOG_DUMP through mariadb_rpl_open, packets read raw and
 * decoded by decode.c), reconnects with backoff and reports its status.
 */
#include "reader.h"

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <mariadb_rpl.h>
#include <ma_pvio.h>

#include "ckpt.h"
#include "myconn.h"

#define OPT(n, t, d, dsc, field) \
    { .name = n, .type = t, .def = d, .desc = dsc, .offset = offsetof(br_cfg, field) }
#define OPTI(n, d, dsc, field, lo, hi) \
    { .name = n, .type = SL_OPT_INT, .def = d, .desc = dsc, .offset = offsetof(br_cfg, field), \
      .min = lo, .max = hi }
#define REQ(n, t, dsc, field) \
    { .name = n, .type = t, .desc = dsc, .offset = offsetof(br_cfg, field), \
      .flags = SL_OPTF_REQUIRED }

static const char *const flavors[] = { "mariadb", "mysql", NULL };

static const sl_option options[] = {
    /* the source user needs REPLICATION SLAVE and REPLICATION CLIENT; the target holds the
     * checkpoint the reader starts from */
    SL_MYCONN_OPTIONS(source, br_cfg),
    SL_MYCONN_OPTIONS(target, br_cfg),
    REQ("task_name", SL_OPT_STRING, "task name", task_name),
    REQ("source_name", SL_OPT_STRING, "source name", source_name),
    OPT("meta_schema", SL_OPT_STRING, "\"dm_meta\"", "schema of the checkpoint tables", meta_schema),
    REQ("rules", SL_OPT_JSON, "table rules of this source (row events of unselected tables are "
        "skipped)", rules),
    { .name = "flavor", .type = SL_OPT_ENUM, .def = "\"mariadb\"", .desc = "source flavor",
      .offset = offsetof(br_cfg, flavor), .choices = flavors },
    OPT("enable_gtid", SL_OPT_BOOL, "false", "start from a GTID position", enable_gtid),
    OPT("binlog_name", SL_OPT_STRING, "\"\"", "binlog file to start from without a checkpoint "
        "(\"\" = the source's current position)", binlog_name),
    OPTI("binlog_pos", "4", "binlog position to start from", binlog_pos, 4, INT64_MAX),
    OPT("binlog_gtid", SL_OPT_STRING, "\"\"", "GTID position to start from (enable_gtid)",
        binlog_gtid),
    OPTI("start_time", "0", "without a checkpoint, start at the first transaction that began at "
         "or after this time (seconds since the epoch; DM's start_time; 0 = none); wins over "
         "binlog_name/binlog_gtid", start_time, 0, INT64_MAX),
    OPTI("fence_epoch", "0", "cluster fencing, set by the runtime (issue 13): raise the source's "
         "fence in the target to this epoch before reading the checkpoint, so an older owner "
         "commits nothing after that read (ckpt.h); 0 = off", fence_epoch, 0, INT64_MAX),
    OPTI("server_id", "0", "replica server id (0 = derived from the task and source names)",
         server_id, 0, 4294967295LL),
    OPTI("heartbeat_ms", "1000", "heartbeat period asked of the source", heartbeat_ms, 100,
         3600000),
    OPTI("batch_events", "1024", "events per batch at most", batch_events, 1, 1000000),
    OPTI("batch_bytes", "8388608", "approximate payload bytes per batch at most", batch_bytes,
         4096, 1LL << 32),
    OPT("verify_checksum", SL_OPT_BOOL, "true", "verify the CRC32 of every event",
        verify_checksum),
    OPT("relay_dir", SL_OPT_STRING, "\"\"", "read the binlog from the source's relay log in "
        "this directory instead of from the source (\"\" = from the source)", relay_dir),
    /* Not a task field: the runtime sets it from a custom sink's ctl "checkpoint" answer
     * (plugin.h), because such a sink keeps its checkpoint where this reader cannot look. */
    OPT("resume", SL_OPT_JSON, NULL, "resume point kept by a custom sink, {\"binlog_name\", "
        "\"binlog_pos\", \"binlog_gtid\"}; wins over the target's checkpoint (set by the runtime)",
        resume),
    OPT("online_ddl", SL_OPT_BOOL, "true", "follow gh-ost and pt-online-schema-change "
        "migrations of selected tables: their ghost and trash tables are never sent on, the "
        "ALTER run on the ghost table is applied to the real table at the cut-over RENAME "
        "(the task's enhance_online_schema_change)", online_ddl),
    { .name = NULL }
};

/* ---- helpers ------------------------------------------------------------------------------ */

static void conn_opts(const br *r, int target, sl_myconn_opts *o)
{
    const br_cfg *c = r->cfg;
    if (target)
        *o = (sl_myconn_opts){ SL_MYCONN_FROM(c, target) };
    else
        *o = (sl_myconn_opts){ SL_MYCONN_FROM(c, source) };
}

/* The first row of a query, as strings in out[0..n) (copied, truncated to cap). 0, SL_ENOENT
 * for no row, or SL_EDB/SL_ECONN with err. */
static int query_row(MYSQL *db, const char *sql, char out[][512], int n, sl_error *err)
{
    if (mysql_query(db, sql) != 0) {
        unsigned e = mysql_errno(db);
        return sl_error_set(err, sl_myconn_is_conn_error(e) ? SL_ECONN : SL_EDB, "%s: %s (errno %u)",
                            sql, mysql_error(db), e);
    }
    MYSQL_RES *res = mysql_store_result(db);
    if (!res)
        return sl_error_set(err, SL_EDB, "%s: %s", sql, mysql_error(db));
    MYSQL_ROW row = mysql_fetch_row(res);
    int rc = SL_ENOENT;
    if (row) {
        rc = 0;
        for (int i = 0; i < n && i < (int)mysql_num_fields(res); i++)
            snprintf(out[i], 512, "%s", row[i] ? row[i] : "");
    }
    mysql_free_result(res);
    return rc;
}

static uint32_t derive_server_id(const br_cfg *c)
{
    uint32_t h = 2166136261u;
    for (const char *s = c->task_name; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    h = (h ^ '/') * 16777619u;
    for (const char *s = c->source_name; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    /* Away from the small ids people give their servers by hand. */
    return 1000000u + h % 2000000000u;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void close_dump(br *r)
{
    if (r->rpl) {
        mariadb_rpl_close(r->rpl);
        r->rpl = NULL;
    }
    if (r->db) {
        mysql_close(r->db);
        r->db = NULL;
    }
}

/* ---- the plugin callbacks ----------------------------------------------------------------- */

static int br_create(const sl_host *host, sl_ctx *ctx, const void *config, void **self)
{
    const br_cfg *c = config;
    br *r = calloc(1, sizeof *r);
    if (!r)
        return host->fail(ctx, SL_ENOMEM, "out of memory");
    r->host = host;
    r->ctx = ctx;
    r->cfg = c;
    r->st_behind = -1;
    pthread_mutex_init(&r->mu, NULL);
    sl_error err = { 0 };
    int rc = sl_rules_new(c->rules ? c->rules : "[]", &r->rules, &err);
    if (rc < 0) {
        pthread_mutex_destroy(&r->mu);
        free(r);
        return host->fail(ctx, rc, "binlog-reader: rules: %s", err.msg);
    }
    r->server_id = c->server_id ? (uint32_t)c->server_id : derive_server_id(c);
    sl_bl_format_init(&r->fmt);
    *self = r;
    return 0;
}

/* Refuse a source whose binlog cannot feed row replication, naming the variable to set. */
static int check_source(br *r, MYSQL *db)
{
    sl_error err = { 0 };
    char v[6][512];
    memset(v, 0, sizeof v);
    int rc = query_row(db, "SELECT @@global.log_bin, @@global.binlog_format, "
                           "@@global.binlog_row_image, @@global.binlog_checksum, @@version",
                       v, 5, &err);
    if (rc < 0)
        return r->host->fail(r->ctx, rc, "binlog-reader: checking the source: %s", err.msg);
    if (strcmp(v[0], "1") && strcasecmp(v[0], "ON"))
        return r->host->fail(r->ctx, SL_EINVAL, "the source %s:%d has no binary log: start it "
                             "with log_bin", r->cfg->source_host, (int)r->cfg->source_port);
    if (strcasecmp(v[1], "ROW"))
        return r->host->fail(r->ctx, SL_EINVAL, "the source has binlog_format=%s: set "
                             "binlog_format=ROW", v[1]);
    if (strcasecmp(v[2], "FULL"))
        return r->host->fail(r->ctx, SL_EINVAL, "the source has binlog_row_image=%s: set "
                             "binlog_row_image=FULL", v[2]);
    /* binlog_row_metadata=MINIMAL (or a server without the variable: MariaDB < 10.5, MySQL
     * 5.7) leaves column names, ENUM/SET labels and the key out of table maps: the schema
     * tracker (track.c) supplies them, so such sources are accepted. */
    char m[1][512] = { "" };
    rc = query_row(db, "SELECT @@global.binlog_row_metadata", m, 1, &err);
    if (rc == SL_ECONN)
        return r->host->fail(r->ctx, rc, "binlog-reader: checking the source: %s", err.msg);
    r->full_metadata = rc == 0 && !strcasecmp(m[0], "FULL");
    if (rc < 0 || strcasecmp(m[0], "FULL"))
        r->host->log(r->ctx, SL_LOG_INFO, "the source (%s) has binlog_row_metadata=%s: rows are "
                     "decoded with the schema tracker's structures", v[4], rc < 0 ? "(none)" : m[0]);
    if (r->cfg->flavor == 0) {
        rc = query_row(db, "SELECT @@global.log_bin_compress", m, 1, &err);
        if (rc == 0 && (!strcmp(m[0], "1") || !strcasecmp(m[0], "ON")))
            return r->host->fail(r->ctx, SL_EINVAL, "the source has log_bin_compress=ON: set "
                                 "log_bin_compress=OFF (compressed events are not supported)");
    }
    return 0;
}

/* The resume point a custom sink answered (plugin.h ctl "checkpoint"), as the checkpoint row
 * the reader would have read: binlog_name/binlog_pos, binlog_gtid (either or both), seq. 0, or
 * SL_EINVAL with err. Caller clears ck with sl_ckpt_pos_clear. */
static int resume_point(const char *text, sl_ckpt_pos *ck, sl_error *err)
{
    memset(ck, 0, sizeof *ck);
    json_error_t je;
    json_t *o = json_loads(text, 0, &je);
    const char *name = json_string_value(json_object_get(o, "binlog_name"));
    const char *gtid = json_string_value(json_object_get(o, "binlog_gtid"));
    json_t *pos = json_object_get(o, "binlog_pos"), *seq = json_object_get(o, "seq");
    int rc = 0;
    if (!json_is_object(o))
        rc = sl_error_set(err, SL_EINVAL, "not a JSON object: %.200s", text);
    else if ((name && (!name[0] || strlen(name) >= sizeof ck->binlog_name)) ||
             (!name && !(gtid && gtid[0])))
        rc = sl_error_set(err, SL_EINVAL, "no binlog_name nor binlog_gtid in %.200s", text);
    else if (pos && (!json_is_integer(pos) || json_integer_value(pos) < 4))
        rc = sl_error_set(err, SL_EINVAL, "binlog_pos is not a position: %.200s", text);
    else if (gtid && gtid[0] && !(ck->binlog_gtid = strdup(gtid)))
        rc = sl_error_set(err, SL_ENOMEM, "out of memory");
    if (rc == 0) {
        if (name)
            snprintf(ck->binlog_name, sizeof ck->binlog_name, "%s", name);
        ck->binlog_pos = pos ? (uint64_t)json_integer_value(pos) : 4;
        ck->seq = json_is_integer(seq) ? (uint64_t)json_integer_value(seq) : 0;
    }
    json_decref(o);
    return rc;
}

static int br_start(void *self)
{
    br *r = self;
    const br_cfg *c = r->cfg;
    sl_error err = { 0 };
    sl_myconn_opts o;

    close_dump(r);
    if (r->b) {
        r->host->batch_unref(r->b);
        r->b = NULL;
    }
    conn_opts(r, 0, &o);
    MYSQL *db = sl_myconn_open(&o, &err);
    if (!db)
        return r->host->fail(r->ctx, err.code, "binlog-reader: source: %s", err.msg);
    int rc = check_source(r, db);
    if (rc < 0) {
        mysql_close(db);
        return rc;
    }

    /* Where to start: the checkpoint, else the task's position, else the source's current. */
    conn_opts(r, 1, &o);
    MYSQL *tdb = sl_myconn_open(&o, &err);
    if (!tdb) {
        mysql_close(db);
        return r->host->fail(r->ctx, err.code, "binlog-reader: target: %s", err.msg);
    }
    if (c->fence_epoch > 0 &&
        (rc = sl_ckpt_raise_fence(tdb, c->meta_schema, c->source_name, c->fence_epoch, &err)) < 0) {
        mysql_close(tdb);
        mysql_close(db);
        return r->host->fail(r->ctx, rc, "binlog-reader: %s", err.msg);
    }
    sl_ckpt_pos ck;
    if (c->resume && strcmp(c->resume, "null") != 0) {
        /* the custom sink's checkpoint: mysql-sink's row in the target, if any, is not ours */
        mysql_close(tdb);
        rc = resume_point(c->resume, &ck, &err);
        if (rc < 0) {
            mysql_close(db);
            return r->host->fail(r->ctx, rc, "binlog-reader: the sink's checkpoint: %s", err.msg);
        }
    } else {
        rc = sl_ckpt_read(tdb, c->meta_schema, c->task_name, c->source_name, &ck, &err);
        mysql_close(tdb);
    }
    if (rc < 0 && rc != SL_ENOENT) {
        mysql_close(db);
        return r->host->fail(r->ctx, rc, "binlog-reader: %s", err.msg);
    }
    /* the sink has not checkpointed yet: no tracked version can be trusted (see track.c) */
    r->track_fresh = rc == SL_ENOENT || ck.is_snapshot;
    r->track_snapshot = rc == 0 && ck.is_snapshot;
    br_xa_restore(r, r->track_fresh);
    free(r->start_gtid);
    r->start_gtid = NULL;
    r->gtid_start = 0;
    r->gtid.n = 0;
    r->commit_file[0] = '\0';
    r->commit_pos = 4;
    const char *gtid_text = NULL;
    if (rc == 0 && (ck.binlog_name[0] || ck.binlog_gtid)) {
        snprintf(r->commit_file, sizeof r->commit_file, "%s", ck.binlog_name);
        r->commit_pos = ck.binlog_pos ? ck.binlog_pos : 4;
        gtid_text = ck.binlog_gtid;
        r->seq = ck.seq;
        if (!ck.binlog_name[0])
            r->gtid_start = 1;
        r->host->log(r->ctx, SL_LOG_INFO, "resuming from the checkpoint (%s, %llu) gtid '%s'%s",
                     ck.binlog_name, (unsigned long long)ck.binlog_pos,
                     ck.binlog_gtid ? ck.binlog_gtid : "", ck.is_snapshot ? " (snapshot)" : "");
    } else if (c->start_time > 0) {
        conn_opts(r, 0, &o);
        rc = br_locate_time(&o, r->server_id, c->start_time, r->commit_file,
                            sizeof r->commit_file, &r->commit_pos, &err);
        if (rc < 0) {
            sl_ckpt_pos_clear(&ck);
            mysql_close(db);
            return r->host->fail(r->ctx, rc, "binlog-reader: locating start_time %lld: %s",
                                 (long long)c->start_time, err.msg);
        }
        r->host->log(r->ctx, SL_LOG_INFO, "start_time %lld: the first transaction at or after it "
                     "is at (%s, %llu)", (long long)c->start_time, r->commit_file,
                     (unsigned long long)r->commit_pos);
    } else if (c->enable_gtid && c->binlog_gtid && c->binlog_gtid[0] && c->flavor == 0) {
        gtid_text = c->binlog_gtid;
        r->gtid_start = 1;
    } else if (c->binlog_name && c->binlog_name[0]) {
        snprintf(r->commit_file, sizeof r->commit_file, "%s", c->binlog_name);
        r->commit_pos = (uint64_t)c->binlog_pos;
        gtid_text = c->binlog_gtid && c->binlog_gtid[0] ? c->binlog_gtid : NULL;
    } else {
        char v[2][512];
        rc = query_row(db, "SHOW MASTER STATUS", v, 2, &err);
        if (rc < 0) {
            sl_ckpt_pos_clear(&ck);
            mysql_close(db);
            return r->host->fail(r->ctx, rc == SL_ENOENT ? SL_EINVAL : rc,
                                 "binlog-reader: SHOW MASTER STATUS: %s",
                                 rc == SL_ENOENT ? "no binary log" : err.msg);
        }
        snprintf(r->commit_file, sizeof r->commit_file, "%.255s", v[0]);
        r->commit_pos = strtoull(v[1], NULL, 10);
        r->host->log(r->ctx, SL_LOG_INFO, "no checkpoint and no position: starting at the "
                     "source's current position (%s, %s)", v[0], v[1]);
    }
    if (gtid_text) {
        if (sl_bl_gtid_set_parse(&r->gtid, gtid_text, &err) < 0) {
            sl_ckpt_pos_clear(&ck);
            mysql_close(db);
            return r->host->fail(r->ctx, SL_EINVAL, "binlog-reader: %s", err.msg);
        }
        if (r->gtid_start && !(r->start_gtid = strdup(gtid_text))) {
            sl_ckpt_pos_clear(&ck);
            mysql_close(db);
            return r->host->fail(r->ctx, SL_ENOMEM, "out of memory");
        }
    } else if (c->flavor == 0 && r->commit_file[0]) {
        /* The GTID state at a file position, so checkpoints always carry a GTID set. */
        sl_sbuf q;
        sl_sbuf_init(&q);
        sl_sbuf_adds(&q, "SELECT BINLOG_GTID_POS(");
        sl_sbuf_add_quoted(&q, r->commit_file, strlen(r->commit_file));
        sl_sbuf_addf(&q, ", %llu)", (unsigned long long)r->commit_pos);
        char v[1][512] = { "" };
        if (!q.oom && query_row(db, q.p, v, 1, &err) == 0 && v[0][0])
            sl_bl_gtid_set_parse(&r->gtid, v[0], &err);
        sl_sbuf_free(&q);
    }
    sl_ckpt_pos_clear(&ck);
    mysql_close(db);

    /* The structures of the selected tables as of the position just resolved. */
    rc = br_track_start(r, &err);
    if (rc == 0)
        rc = br_osc_start(r, &err);
    if (rc < 0)
        return r->host->fail(r->ctx, rc, "binlog-reader: %s", err.msg);

    free(r->commit_gtid);
    r->commit_gtid = NULL;
    if (r->gtid.n) {
        size_t n = sl_bl_gtid_set_format(&r->gtid, NULL, 0);
        if ((r->commit_gtid = malloc(n + 1)))
            sl_bl_gtid_set_format(&r->gtid, r->commit_gtid, n + 1);
    }
    /* A (re)start resumes from the position just resolved, with no transaction open and
     * nothing to checkpoint yet; the rest is the reset every new dump gets. */
    snprintf(r->file, sizeof r->file, "%s", r->commit_file);
    r->pos = r->commit_pos;
    r->in_txn = 0;
    r->ckpt_dirty = 0;
    br_reset_for_redump(r);
    return 0;
}

/* Connect and send COM_BINLOG_DUMP from the resume position. */
static int open_dump(br *r, sl_error *err)
{
    const br_cfg *c = r->cfg;
    sl_myconn_opts o;
    conn_opts(r, 0, &o);
    /* A silent source sends a heartbeat every heartbeat_ms: a read that waits much longer
     * means the connection is dead. */
    unsigned rw = (unsigned)(c->heartbeat_ms * 4 / 1000);
    o.rw_timeout = rw < 10 ? 10 : rw;
    r->db = sl_myconn_open(&o, err);
    if (!r->db)
        return err->code ? err->code : SL_ECONN;
    char sql[1200];
    int rc;
    const char *setup[] = {
        "SET @master_binlog_checksum = @@global.binlog_checksum",
        "SET @source_binlog_checksum = @@global.binlog_checksum",
        NULL,
    };
    if ((rc = sl_myconn_exec(r->db, setup[0], strlen(setup[0]), err)) < 0)
        return rc;
    /* The fake ROTATE sent before the first FORMAT_DESCRIPTION carries a checksum iff the
     * checksum we just asked for is on. */
    char ck[1][512] = { "" };
    if ((rc = query_row(r->db, "SELECT @master_binlog_checksum", ck, 1, err)) < 0)
        return rc;
    r->dump_checksum = strcasecmp(ck[0], "NONE") && ck[0][0] ? SL_BL_CHECKSUM_CRC32
                                                             : SL_BL_CHECKSUM_OFF;
    sl_bl_format_init(&r->fmt);
    r->fmt.checksum_alg = r->dump_checksum;
    if (c->flavor == 1)
        sl_myconn_exec(r->db, setup[1], strlen(setup[1]), NULL);   /* MySQL >= 8.0.26 name */
    snprintf(sql, sizeof sql, "SET @master_heartbeat_period = %lld",
             (long long)c->heartbeat_ms * 1000000LL);
    if ((rc = sl_myconn_exec(r->db, sql, strlen(sql), err)) < 0)
        return rc;
    if (c->flavor == 0) {
        /* MARIA_SLAVE_CAPABILITY_GTID: send GTID events as they are. */
        const char *cap = "SET @mariadb_slave_capability = 4";
        if ((rc = sl_myconn_exec(r->db, cap, strlen(cap), err)) < 0)
            return rc;
    }
    int by_gtid = r->gtid_start && r->start_gtid;
    if (by_gtid) {
        sl_sbuf q;
        sl_sbuf_init(&q);
        sl_sbuf_adds(&q, "SET @slave_connect_state = ");
        sl_sbuf_add_quoted(&q, r->start_gtid, strlen(r->start_gtid));
        rc = q.oom ? SL_ENOMEM : sl_myconn_exec(r->db, q.p, q.len, err);
        sl_sbuf_free(&q);
        if (rc < 0)
            return rc;
        const char *strict = "SET @slave_gtid_strict_mode = 0";
        if ((rc = sl_myconn_exec(r->db, strict, strlen(strict), err)) < 0)
            return rc;
        const char *dups = "SET @slave_gtid_ignore_duplicates = 0";
        if ((rc = sl_myconn_exec(r->db, dups, strlen(dups), err)) < 0)
            return rc;
    }
    MARIADB_RPL *rpl = mariadb_rpl_init(r->db);
    if (!rpl)
        return sl_error_set(err, SL_ENOMEM, "mariadb_rpl_init: %s", mysql_error(r->db));
    r->rpl = rpl;
    mariadb_rpl_optionsv(rpl, MARIADB_RPL_SERVER_ID, (unsigned int)r->server_id);
    if (by_gtid) {
        mariadb_rpl_optionsv(rpl, MARIADB_RPL_FILENAME, "", (size_t)0);
        mariadb_rpl_optionsv(rpl, MARIADB_RPL_START, (unsigned long)4);
    } else {
        mariadb_rpl_optionsv(rpl, MARIADB_RPL_FILENAME, r->file, strlen(r->file));
        mariadb_rpl_optionsv(rpl, MARIADB_RPL_START, (unsigned long)r->pos);
    }
    mariadb_rpl_optionsv(rpl, MARIADB_RPL_FLAGS, (unsigned int)0);
    if (mariadb_rpl_open(rpl) != 0) {
        unsigned e = mysql_errno(r->db);
        return sl_error_set(err, sl_myconn_is_conn_error(e) ? SL_ECONN : SL_EDB,
                            "COM_BINLOG_DUMP from (%s, %llu): %s (errno %u)", r->file,
                            (unsigned long long)r->pos, mysql_error(r->db), e);
    }
    r->host->log(r->ctx, SL_LOG_INFO, "reading the binlog from %s (server id %u)",
                 by_gtid ? r->start_gtid : r->file, r->server_id);
    if (!by_gtid)
        r->host->log(r->ctx, SL_LOG_DEBUG, "position %llu", (unsigned long long)r->pos);
    return 0;
}

/* 1 if a packet can be read without waiting (buffered in the connector or on the socket). */
static int data_pending(br *r)
{
    MARIADB_PVIO *pvio = r->db->net.pvio;
    if (pvio && pvio->cache && pvio->cache_pos < pvio->cache + pvio->cache_size)
        return 1;
    struct pollfd pfd = { .fd = (int)mysql_get_socket(r->db), .events = POLLIN };
    return poll(&pfd, 1, 0) > 0;
}

void br_refresh_master_status(br *r)
{
    int64_t now = br_now_ms();
    if (now < r->next_status_ms)
        return;
    r->next_status_ms = now + 2000;
    sl_error err = { 0 };
    if (!r->sdb) {
        sl_myconn_opts o;
        conn_opts(r, 0, &o);
        o.connect_timeout = 5;
        o.rw_timeout = 5;
        if (!(r->sdb = sl_myconn_open(&o, &err)))
            return;
    }
    char v[2][512], g[1][512] = { "" };
    int rc = query_row(r->sdb, "SHOW MASTER STATUS", v, 2, &err);
    if (rc == 0 && r->cfg->flavor == 0)
        query_row(r->sdb, "SELECT @@global.gtid_binlog_pos", g, 1, &err);
    else if (rc == 0)
        query_row(r->sdb, "SELECT @@global.gtid_executed", g, 1, &err);
    if (rc == SL_ECONN) {
        mysql_close(r->sdb);
        r->sdb = NULL;
        return;
    }
    if (rc == 0) {
        pthread_mutex_lock(&r->mu);
        snprintf(r->st_master_file, sizeof r->st_master_file, "%.255s", v[0]);
        r->st_master_pos = strtoull(v[1], NULL, 10);
        snprintf(r->st_master_gtid, sizeof r->st_master_gtid, "%.511s", g[0]);
        pthread_mutex_unlock(&r->mu);
    }
}

static int br_run(void *self)
{
    br *r = self;
    const sl_host *h = r->host;
    int backoff = 100;
    sl_error err = { 0 };
    int rc = 0;

    if (r->cfg->relay_dir && r->cfg->relay_dir[0] && (rc = br_run_local(r)) != BR_FROM_SOURCE)
        return rc;
    rc = 0;
    /* a source never reached is silent from here (br_status) */
    pthread_mutex_lock(&r->mu);
    if (!r->st_contact_ms)
        r->st_contact_ms = br_now_ms();
    pthread_mutex_unlock(&r->mu);
    while (!h->should_stop(r->ctx)) {
        if (!r->rpl) {
            memset(&err, 0, sizeof err);
            rc = open_dump(r, &err);
            if (rc < 0) {
                close_dump(r);
                if (rc != SL_ECONN)
                    return h->fail(r->ctx, rc, "binlog-reader: %s", err.msg);
                h->log(r->ctx, SL_LOG_WARN, "source unreachable (%s); retrying in %d ms",
                       err.msg, backoff);
                for (int w = 0; w < backoff && !h->should_stop(r->ctx); w += 50)
                    sleep_ms(50);
                backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
                continue;
            }
        }
        br_refresh_master_status(r);
        /* Hand over what is batched as soon as the source has nothing more right now. */
        if ((r->b || r->ckpt_dirty) && !data_pending(r)) {
            if ((rc = br_flush(r)) < 0)
                break;
        }
        unsigned long len = mysql_net_read_packet(r->db);
        /* the connector's packet_error is ((unsigned int)-1) */
        if (len == 0 || len >= 0xFFFFFFFFul) {
            unsigned e = mysql_errno(r->db);
            if (e == 1236 /* ER_MASTER_FATAL_ERROR_READING_BINLOG */) {
                rc = h->fail(r->ctx, SL_EDB, "binlog-reader: the source cannot send the binlog "
                             "from (%s, %llu): %s (errno 1236)", r->file,
                             (unsigned long long)r->pos, mysql_error(r->db));
                break;
            }
            if (!sl_myconn_is_conn_error(e) && e != 0 && e != 2013 && e != 1927) {
                rc = h->fail(r->ctx, SL_EDB, "binlog-reader: %s (errno %u)", mysql_error(r->db), e);
                break;
            }
            h->log(r->ctx, SL_LOG_WARN, "lost the source (%s, errno %u) at (%s, %llu); "
                   "reconnecting", mysql_error(r->db), e, r->file, (unsigned long long)r->pos);
            close_dump(r);
            br_reset_for_redump(r);
            continue;
        }
        const uint8_t *pkt = r->db->net.read_pos;
        if (pkt[0] == 0xFE && len < 9) {
            /* EOF: the server ended the dump (it is shutting down). */
            close_dump(r);
            br_reset_for_redump(r);
            continue;
        }
        unsigned e;
        const char *msg;
        size_t ml;
        if (sl_bl_dump_error(pkt, len, &e, &msg, &ml)) {
            if (e == 1236 /* ER_MASTER_FATAL_ERROR_READING_BINLOG */) {
                rc = h->fail(r->ctx, SL_EDB, "binlog-reader: the source cannot send the binlog "
                             "from (%s, %llu): %.*s (errno 1236)", r->file,
                             (unsigned long long)r->pos, (int)ml, msg);
                break;
            }
            if (e == 1053 /* shutdown */ || e == 1927 /* killed */ || e == 4031) {
                h->log(r->ctx, SL_LOG_WARN, "the source ended the dump: %.*s (errno %u); "
                       "reconnecting", (int)ml, msg, e);
                close_dump(r);
                br_reset_for_redump(r);
                continue;
            }
            rc = h->fail(r->ctx, SL_EDB, "binlog-reader: %.*s (errno %u)", (int)ml, msg, e);
            break;
        }
        if (pkt[0] != 0x00) {
            rc = h->fail(r->ctx, SL_EDB, "binlog-reader: unexpected packet 0x%02x", pkt[0]);
            break;
        }
        backoff = 100;
        memset(&err, 0, sizeof err);
        rc = br_handle_event(r, pkt + 1, len - 1, &err);
        if (rc < 0) {
            if (rc == SL_ESTOPPED)
                break;
            sl_error ctxerr = { 0 };
            (void)ctxerr;
            rc = h->fail(r->ctx, rc, "binlog-reader: at (%s, %llu): %s", r->file,
                         (unsigned long long)r->pos, err.msg[0] ? err.msg : sl_strerror(rc));
            break;
        }
    }
    close_dump(r);
    if (rc == SL_ESTOPPED || h->should_stop(r->ctx))
        return SL_ESTOPPED;
    return rc;
}

static void br_stop(void *self)
{
    br *r = self;
    close_dump(r);
    br_osc_stop(r);
    br_track_stop(r);
    if (r->sdb) {
        mysql_close(r->sdb);
        r->sdb = NULL;
    }
    if (r->b) {
        r->host->batch_unref(r->b);
        r->b = NULL;
    }
}

static void br_destroy(void *self)
{
    br *r = self;
    if (!r)
        return;
    br_stop(r);
    br_tables_free(r);
    sl_rules_free(r->rules);
    sl_bl_gtid_set_free(&r->gtid);
    free(r->commit_gtid);
    free(r->txn_gtid);
    free(r->start_gtid);
    free(r->scratch);
    br_xa_free(r);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* A deleted task's tracker: its shadow schemas and its versions on the target. */
static int br_cleanup(void *self, unsigned what)
{
    br *r = self;
    if (!(what & SL_CLEANUP_META))
        return 0;
    sl_error err = { 0 };
    int rc = br_track_cleanup(r, &err);
    if (rc < 0)
        return r->host->fail(r->ctx, rc, "binlog-reader: cleanup: %s", err.msg);
    return 0;
}

/* The table-structure endpoints' requests (track.c), on an instance that never started. */
static int br_ctl(void *self, const char *request, char **reply)
{
    br *r = self;
    *reply = NULL;
    json_error_t je;
    json_t *req = json_loads(request, 0, &je);
    if (!req)
        return r->host->fail(r->ctx, SL_EINVAL, "binlog-reader: ctl: %s", je.text);
    sl_error err = { 0 };
    json_t *out = NULL;
    int rc = br_track_ctl(r, req, &out, &err);
    json_decref(req);
    br_track_stop(r);
    if (rc < 0) {
        json_decref(out);
        return r->host->fail(r->ctx, rc, "%s", err.msg);
    }
    if (out) {
        char *s = json_dumps(out, JSON_COMPACT);
        json_decref(out);
        size_t n = s ? strlen(s) + 1 : 0;
        if (!s || !(*reply = r->host->alloc(n))) {
            free(s);
            return r->host->fail(r->ctx, SL_ENOMEM, "out of memory");
        }
        memcpy(*reply, s, n);
        free(s);
    }
    return 0;
}

static char *br_status(void *self)
{
    br *r = self;
    char master[320], readp[320];
    pthread_mutex_lock(&r->mu);
    snprintf(master, sizeof master, "(%s, %llu)", r->st_master_file,
             (unsigned long long)r->st_master_pos);
    snprintf(readp, sizeof readp, "(%s, %llu)", r->st_read_file,
             (unsigned long long)r->st_read_pos);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "master_binlog", master,
                          "master_binlog_gtid", r->st_master_gtid, "read_binlog", readp,
                          "binlog_type", r->st_local ? "local" : "remote");
    /* unknown until the first event or heartbeat: no number rather than a 0 that says
     * "caught up" */
    if (o && r->st_behind >= 0)
        json_object_set_new(o, "seconds_behind_master", json_integer((json_int_t)r->st_behind));
    /* A source that sends nothing, not even its heartbeat (every heartbeat_ms), is gone or
     * frozen: the reader waits for its read timeout, then reconnects for as long as it takes.
     * Meanwhile the sink, with nothing to apply, would say "caught up"; say for how long the
     * source has been silent instead (the subtask's status counts it as lag). Not for a relay's
     * files, which grow only as the source writes. */
    int64_t silent = r->st_contact_ms ? br_now_ms() - r->st_contact_ms : 0;
    int64_t quiet = 3 * (int64_t)r->cfg->heartbeat_ms;
    if (o && !r->st_local && silent > (quiet > 3000 ? quiet : 3000))
        json_object_set_new(o, "source_silent_seconds", json_integer((json_int_t)(silent / 1000)));
    pthread_mutex_unlock(&r->mu);
    if (!o)
        return NULL;
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *out = r->host->alloc(n);
    if (out)
        memcpy(out, s, n);
    free(s);
    return out;
}

SL_PLUGIN_EXPORT const sl_plugin_descriptor sluice_plugin = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_plugin_descriptor),
    .name = "binlog-reader",
    .kind = SL_PLUGIN_SOURCE,
    .description = "reads a MySQL/MariaDB binlog over the replication protocol (ROW format, "
                   "FULL image; without FULL metadata, rows are decoded with the tracked table structures) "
                   "into change events",
    .options = options,
    .config_size = sizeof(br_cfg),
    .create = br_create,
    .start = br_start,
    .run = br_run,
    .stop = br_stop,
    .destroy = br_destroy,
    .status = br_status,
    .cleanup = br_cleanup,
    .ctl = br_ctl,
};
