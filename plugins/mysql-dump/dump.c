/*
 * dump.c - the mysql-dump source plugin: takes one consistent snapshot of the tables a task selects
 * (with its binlog position and GTID), dumps them in parallel by key-range chunks into LOAD DATA
 * files under data_dir/<task>/<source>/, and emits CREATE DATABASE/TABLE as SL_EV_DDL events, then
 * one SL_EV_CHUNK event per finished file, then an EOF batch whose ckpt is the snapshot position.
 *
 * Consistency on MariaDB ("auto"/"snapshot"): with one worker, a plain START TRANSACTION WITH
 * CONSISTENT SNAPSHOT and the binlog_snapshot_file/position status variables of that transaction
 * (no lock at all, MariaDB KB "Enhancements for START TRANSACTION WITH CONSISTENT SNAPSHOT"). With
 * several workers their snapshots must be the same one: commits are held with BACKUP STAGE
 * BLOCK_COMMIT (which, unlike FLUSH TABLES WITH READ LOCK, neither waits for running queries nor
 * blocks writes that have not reached commit) only while the workers open their snapshots;
 * FLUSH TABLES WITH READ LOCK is the fallback. "flush" always uses FTWRL, "lock" holds LOCK
 * TABLES ... READ for the whole dump, "none" reads without any snapshot.
 */
#include "dump.h"
#include "strack.h"
#include "xtype.h"
#include "condwait.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const consistency_choices[] = {"auto", "none", "flush", "snapshot", "lock", NULL};
static const char *const mode_choices[] = {"full", "dump", "load", NULL};

#define OFF(f) offsetof(dump_cfg, f)
static const sl_option dump_options[] = {
    SL_MYCONN_OPTIONS(source, dump_cfg),
    /* the target only tells whether the load already finished: optional */
    SL_MYCONN_OPTIONS_OPTIONAL(target, dump_cfg),
    {"task_name", SL_OPT_STRING, NULL, "task name", OFF(task_name), 0, -1, NULL, SL_OPTF_REQUIRED},
    {"source_name", SL_OPT_STRING, NULL, "source name", OFF(source_name), 0, -1, NULL, SL_OPTF_REQUIRED},
    {"meta_schema", SL_OPT_STRING, "\"dm_meta\"", "schema of the checkpoint tables in the target", OFF(meta_schema), 0, -1, NULL, 0},
    {"rules", SL_OPT_JSON, NULL, "table_migrate_rules of this source (selection, routing, filters)", OFF(rules), 0, -1, NULL, SL_OPTF_REQUIRED},
    {"export_threads", SL_OPT_INT, "4", "parallel dump connections", OFF(export_threads), 1, 1024, NULL, 0},
    {"consistency", SL_OPT_ENUM, "\"auto\"", "auto|none|flush|snapshot|lock", OFF(consistency), 0, -1, consistency_choices, 0},
    {"data_dir", SL_OPT_STRING, "\"./dumped_data\"", "where chunk files go (<data_dir>/<task>/<source>/)", OFF(data_dir), 0, -1, NULL, 0},
    {"chunk_rows", SL_OPT_INT, "100000", "rows per chunk of a table with a primary or unique not-null key", OFF(chunk_rows), 1, INT64_MAX, NULL, 0},
    {"chunk_bytes", SL_OPT_INT, "16777216", "at most about this many bytes per chunk (by the table's average row length): one chunk is one target transaction, so this bounds what a rollback must undo", OFF(chunk_bytes), 0, INT64_MAX, NULL, 0},
    {"mode", SL_OPT_ENUM, "\"full\"", "full|dump|load (load: re-emit a finished dump from data_dir)", OFF(mode), 0, -1, mode_choices, 0},
    {"seed_tracker", SL_OPT_BOOL, "false", "write each dumped table's CREATE TABLE as the binlog-reader schema tracker's version at the snapshot position, for the incremental phase that starts there (task_mode all)", OFF(seed_tracker), 0, -1, NULL, 0},
    {"stream", SL_OPT_BOOL, "false", "hand each chunk to the loader through a pipe as it is read, keeping no chunk files (mode full only; a resume dumps again from a new snapshot)", OFF(stream), 0, -1, NULL, 0},
    {"online_ddl", SL_OPT_BOOL, "true", "leave out the ghost and trash tables of gh-ost and pt-online-schema-change migrations of selected tables (the task's enhance_online_schema_change)", OFF(online_ddl), 0, -1, NULL, 0},
    {NULL, 0, NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- connections ------------------------------------------------------------------------- */

static MYSQL *connect_source(dump *d, const char *init)
{
    const dump_cfg *c = d->cfg;
    sl_myconn_opts o = {
        SL_MYCONN_FROM(c, source), .init_sql = init,
    };
    sl_error e = {0};
    MYSQL *db = sl_myconn_open(&o, &e);
    if (!db) {
        d->host->fail(d->ctx, e.code ? e.code : SL_ECONN, "source: %s", e.msg);
        return NULL;
    }
    /* Rows of 16 MiB and more. */
    unsigned long maxp = 1024UL * 1024 * 1024;
    mysql_optionsv(db, MYSQL_OPT_MAX_ALLOWED_PACKET, &maxp);
    return db;
}

/* Session of every dump connection: UTC (TIMESTAMP as stored), no sql_mode surprises in SHOW
 * CREATE, long write timeouts (a reader may pause while the disk catches up). */
#define SESSION_INIT "SET SESSION time_zone = '+00:00', SESSION sql_mode = '', " \
                     "SESSION net_write_timeout = 3600, SESSION net_read_timeout = 3600, " \
                     "SESSION wait_timeout = 86400"

/*
 * Count this source's rows in the target's load checkpoint: the finish marker (snapshot NULL) or
 * the chunks loaded from one snapshot. -1 when it cannot be read (no target configured, mode is
 * not full, connection failed); 0 when the checkpoint table does not exist.
 */
static long long target_ckpt_count(dump *d, const char *snapshot)
{
    const dump_cfg *c = d->cfg;
    if (!c->target_host || !*c->target_host || c->mode != MODE_FULL)
        return -1;
    sl_myconn_opts o = { SL_MYCONN_FROM(c, target) };
    sl_error e = {0};
    MYSQL *db = sl_myconn_open(&o, &e);
    if (!db) {
        d->host->log(d->ctx, SL_LOG_WARN, "cannot read the load checkpoint in the target: %s", e.msg);
        return -1;
    }
    sl_sbuf b;
    sl_sbuf_init(&b);
    sl_sbuf_adds(&b, "SELECT COUNT(*) FROM ");
    sl_ckpt_table_name(&b, c->meta_schema, c->task_name, 0);
    sl_sbuf_adds(&b, " WHERE source_name = ");
    sl_sbuf_add_quoted(&b, c->source_name, strlen(c->source_name));
    if (snapshot) {
        sl_sbuf_adds(&b, " AND chunk_id <> '' AND snapshot = ");
        sl_sbuf_add_quoted(&b, snapshot, strlen(snapshot));
    } else {
        sl_sbuf_adds(&b, " AND chunk_id = ''");
    }
    long long n = -1;
    if (!b.oom && mysql_real_query(db, b.p, (unsigned long)b.len) == 0) {
        MYSQL_RES *r = mysql_store_result(db);
        MYSQL_ROW row = r ? mysql_fetch_row(r) : NULL;
        n = row && row[0] ? atoll(row[0]) : 0;
        if (r)
            mysql_free_result(r);
    } else if (!b.oom && mysql_errno(db) == 1146) {
        n = 0;                      /* ER_NO_SUCH_TABLE: nothing was ever loaded */
    } else {
        d->host->log(d->ctx, SL_LOG_WARN, "cannot read the load checkpoint in the target: %s",
                     mysql_error(db));
    }
    sl_sbuf_free(&b);
    mysql_close(db);
    return n;
}

/* 1 if the loader already finished this source in the target (its finish marker exists). */
static int target_finished(dump *d)
{
    return target_ckpt_count(d, NULL) > 0;
}

/* ---- emitting ------------------------------------------------------------------------------ */

static sl_table *table_meta(dump *d, dtable *t)
{
    if (t->meta)
        return t->meta;
    const sl_host *h = d->host;
    sl_table *m = h->table_new((uint32_t)t->ncols);
    if (!m)
        return NULL;
    m->schema = h->table_strdup(m, t->schema);
    m->name = h->table_strdup(m, t->name);
    for (size_t i = 0; i < t->ncols; i++) {
        sl_column *c = &m->cols[i];
        c->name = h->table_strdup(m, t->cols[i].name);
        c->type_text = h->table_strdup(m, t->cols[i].type_text);
        c->mysql_type = t->cols[i].mysql_type;
        c->flags = t->cols[i].flags;
        /* the collation id (as a row event's column metadata gives it): lua-hook's chunk reader
         * makes values of 63 (or SL_COL_BINARY) binary, the others strings of this collation */
        c->charset = t->cols[i].collation;
    }
    if (t->npk && SL_HOST_HAS(h, table_alloc)) {
        m->pk = h->table_alloc(m, t->npk * sizeof(uint32_t));
        if (m->pk) {
            memcpy(m->pk, t->pk, t->npk * sizeof(uint32_t));
            m->npk = (uint32_t)t->npk;
        }
    }
    t->meta = m;
    return m;
}

static void set_pos(dump *d, sl_batch *b, sl_position *p)
{
    if (!d->have_snap)
        return;
    p->file = d->snap.file[0] ? d->host->batch_strndup(b, d->snap.file, strlen(d->snap.file)) : NULL;
    p->offset = d->snap.pos;
    p->gtid = d->snap.gtid && d->snap.gtid[0] ? d->host->batch_strndup(b, d->snap.gtid, strlen(d->snap.gtid)) : NULL;
}

static int emit(dump *d, sl_batch *b)
{
    int rc = d->host->emit(d->ctx, b);
    return rc < 0 ? rc : 0;
}

/*
 * The structures of the snapshot, as the schema tracker's versions at the snapshot position
 * (strack.h): a task_mode "all" task's binlog-reader starts at that position, and a structure
 * read from the source when it starts could already hold a DDL run since the snapshot, while the
 * rows before that DDL still have the snapshot's shape. The CREATE TABLE is the one this dump
 * creates the target's table with. Only for a task with an incremental phase (seed_tracker: its
 * binlog-reader owns the table and drops it with the task); nothing to do without a target (mode
 * dump) or a position.
 */
static int seed_tracker(dump *d)
{
    const dump_cfg *c = d->cfg;
    if (!c->seed_tracker || c->mode == MODE_DUMP || !c->target_host || !*c->target_host ||
        !d->snap.file[0] || !d->ntables)
        return 0;
    sl_myconn_opts o = { SL_MYCONN_FROM(c, target) };
    sl_error e = {0};
    MYSQL *db = sl_myconn_open(&o, &e);
    if (!db)
        return d->host->fail(d->ctx, e.code ? e.code : SL_ECONN, "target: %s", e.msg);
    int rc = sl_strack_versions_create(db, c->meta_schema, c->task_name, &e);
    for (size_t i = 0; rc == 0 && i < d->ntables; i++) {
        const dtable *t = &d->tables[i];
        /* as SHOW CREATE TABLE gave it: without the IF NOT EXISTS the load adds */
        const char *sql = t->create_sql;
        char *plain = NULL;
        if (!strncasecmp(sql, "CREATE TABLE IF NOT EXISTS ", 27) &&
            (plain = malloc(strlen(sql) + 1))) {
            memcpy(plain, sql, 13);
            strcpy(plain + 13, sql + 27);
        }
        rc = sl_strack_version_put(db, c->meta_schema, c->task_name, c->source_name, t->schema,
                                   t->name, d->snap.file, d->snap.pos, plain ? plain : sql, &e);
        free(plain);
    }
    mysql_close(db);
    if (rc < 0)
        return d->host->fail(d->ctx, rc, "target: the snapshot's table structures: %s", e.msg);
    return 0;
}

static int emit_ddls(dump *d)
{
    const sl_host *h = d->host;
    int rc = seed_tracker(d);
    if (rc < 0)
        return rc;
    sl_batch *b = h->batch_new(d->ctx, (uint32_t)(d->nschemas + d->ntables + 1));
    if (!b)
        return h->fail(d->ctx, SL_ENOMEM, "no memory");
    for (size_t i = 0; i < d->nschemas; i++) {
        sl_event *ev = h->batch_push(b, SL_EV_DDL);
        if (!ev)
            goto oom;
        ev->flags = SL_EVF_SNAPSHOT;
        ev->schema = h->batch_strndup(b, d->schemas[i], strlen(d->schemas[i]));
        ev->ddl_schema = ev->schema;
        ev->ddl = h->batch_strndup(b, d->schema_sql[i], strlen(d->schema_sql[i]));
        ev->seq = ++d->seq;
        set_pos(d, b, &ev->pos);
    }
    for (size_t i = 0; i < d->ntables; i++) {
        dtable *t = &d->tables[i];
        sl_event *ev = h->batch_push(b, SL_EV_DDL);
        if (!ev)
            goto oom;
        ev->flags = SL_EVF_SNAPSHOT;
        ev->schema = h->batch_strndup(b, t->schema, strlen(t->schema));
        ev->table = h->batch_strndup(b, t->name, strlen(t->name));
        ev->ddl_schema = ev->schema;
        ev->ddl = h->batch_strndup(b, t->create_sql, strlen(t->create_sql));
        ev->seq = ++d->seq;
        /* the estimate of the table's size: the loader keeps the secondary indexes of a small
         * table in its CREATE rather than adding them after the load (see loader.c) */
        ev->chunk_rows = t->nodata ? 0 : t->est_rows;
        ev->chunk_bytes = t->nodata ? 0 : t->est_rows * t->avg_row;
        set_pos(d, b, &ev->pos);
        sl_table *m = table_meta(d, t);
        if (m)
            h->batch_set_meta(b, ev, m);
    }
    return emit(d, b);
oom:
    h->batch_unref(b);
    return h->fail(d->ctx, SL_ENOMEM, "no memory");
}

static int push_chunk_event(dump *d, sl_batch *b, dchunk *c)
{
    const sl_host *h = d->host;
    dtable *t = &d->tables[c->table];
    sl_table *m = table_meta(d, t);
    sl_event *ev = h->batch_push(b, SL_EV_CHUNK);
    if (!ev || !m)
        return h->fail(d->ctx, SL_ENOMEM, "no memory");
    char path[4300];
    snprintf(path, sizeof path, "%s/%s%s", d->dir, c->file, c->stag);
    ev->flags = SL_EVF_SNAPSHOT;
    if (++t->chunks_emitted == t->nchunks)
        ev->flags |= SL_EVF_LAST_CHUNK;
    h->batch_set_meta(b, ev, m);
    ev->schema = m->schema;
    ev->table = m->name;
    ev->ncols = m->ncols;
    ev->chunk_path = h->batch_strndup(b, path, strlen(path));
    ev->chunk_id = h->batch_strndup(b, c->id, strlen(c->id));
    if (c->stag[0]) {
        /* the chunk is being read as this goes out (its worker writes c->rows when done): the
         * plan's estimate; the loader records the rows it was given */
        ev->chunk_rows = t->nchunks ? t->est_rows / t->nchunks : t->est_rows;
        ev->chunk_bytes = ev->chunk_rows * t->avg_row;
    } else {
        ev->chunk_rows = c->rows;
        ev->chunk_bytes = c->bytes;
    }
    ev->seq = ++d->seq;
    set_pos(d, b, &ev->pos);
    b->bytes += ev->chunk_bytes;
    if (!ev->chunk_path || !ev->chunk_id)
        return h->fail(d->ctx, SL_ENOMEM, "no memory");
    return 0;
}

static int emit_eof(dump *d)
{
    sl_batch *b = d->host->batch_new(d->ctx, 1);
    if (!b)
        return d->host->fail(d->ctx, SL_ENOMEM, "no memory");
    b->flags = SL_BATCH_EOF | SL_BATCH_TXN_END;
    set_pos(d, b, &b->ckpt);
    return emit(d, b);
}

/* A dump whose every chunk is on disk already: emit it as it is. */
static int emit_all(dump *d)
{
    int rc = emit_ddls(d);
    for (size_t i = 0; rc == 0 && i < d->nchunks;) {
        sl_batch *b = d->host->batch_new(d->ctx, 64);
        if (!b)
            return d->host->fail(d->ctx, SL_ENOMEM, "no memory");
        for (size_t k = 0; k < 64 && i < d->nchunks && rc == 0; k++, i++) {
            rc = push_chunk_event(d, b, &d->chunks[i]);
            atomic_fetch_add(&d->finished_bytes, d->chunks[i].bytes);
            atomic_fetch_add(&d->finished_rows, d->chunks[i].rows);
        }
        if (rc) {
            d->host->batch_unref(b);
            return rc;
        }
        rc = emit(d, b);
    }
    atomic_store(&d->completed_tables, d->ntables);
    return rc ? rc : emit_eof(d);
}

/* ---- workers --------------------------------------------------------------------------------- */

typedef struct worker_arg { dump *d; size_t idx; } worker_arg;

static void worker_fail(dump *d, const sl_error *e)
{
    pthread_mutex_lock(&d->mu);
    if (!d->werr) {
        d->werr = e->code ? e->code : SL_EINTERNAL;
        d->werr_msg = *e;
    }
    atomic_store(&d->quit, 1);
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

/* A writer's reason to give up: another worker failed, or the pipeline stops. */
static int stream_stop(void *arg)
{
    dump *d = arg;
    return atomic_load(&d->quit) || d->host->should_stop(d->ctx);
}

/* Hand chunk c to the emitting thread: finished (a file) or started (a stream). */
static void announce(dump *d, dchunk *c)
{
    pthread_mutex_lock(&d->mu);
    d->done_ring[d->done_tail++] = (size_t)(c - d->chunks);
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

static int dump_chunk(dump *d, MYSQL *db, dchunk *c, sl_error *err)
{
    dtable *t = &d->tables[c->table];
    sl_sbuf q;
    sl_sbuf_init(&q);
    sl_sbuf_adds(&q, "SELECT ");
    for (size_t i = 0; i < t->ncols; i++) {
        if (i)
            sl_sbuf_adds(&q, ", ");
        /* FLOAT comes out of the text protocol with 6 digits; as DOUBLE it has the float's exact
         * value in shortest round-trip form, which reads back into the same float. */
        const sl_xtype *x = sl_xtype_find(t->cols[i].data_type);
        if (strcmp(t->cols[i].data_type, "float") == 0) {
            sl_sbuf_adds(&q, "CAST(");
            sl_sbuf_add_ident(&q, t->cols[i].name);
            sl_sbuf_adds(&q, " AS DOUBLE)");
        } else if (x) {
            /* INET6/UUID/...: their binary form, which LOAD DATA ... CHARACTER SET binary takes
             * (the text form it refuses); see xtype.h */
            sl_sbuf_adds(&q, "CAST(");
            sl_sbuf_add_ident(&q, t->cols[i].name);
            sl_sbuf_addf(&q, " AS %s)", x->dump_cast);
        } else {
            sl_sbuf_add_ident(&q, t->cols[i].name);
        }
    }
    if (t->ncols == 0)
        sl_sbuf_adds(&q, "1");
    sl_sbuf_adds(&q, " FROM ");
    sl_sbuf_add_qname(&q, t->schema, t->name);
    if (c->where) {
        sl_sbuf_adds(&q, " WHERE ");
        sl_sbuf_adds(&q, c->where);
    } else if (c->has_lo || c->has_hi) {
        char num[48];
        sl_sbuf_adds(&q, " WHERE ");
        if (c->has_lo) {
            sl__i128_str(c->lo, num);
            sl_sbuf_add_ident(&q, t->cols[t->chunk_col].name);
            sl_sbuf_addf(&q, " >= %s", num);
        }
        if (c->has_hi) {
            sl__i128_str(c->hi, num);
            sl_sbuf_adds(&q, c->has_lo ? " AND " : "");
            sl_sbuf_add_ident(&q, t->cols[t->chunk_col].name);
            sl_sbuf_addf(&q, " < %s", num);
        }
    }
    if (q.oom) {
        sl_sbuf_free(&q);
        return sl_error_set(err, SL_ENOMEM, "no memory");
    }
    /* Stream mode: the pipe is made and the chunk announced before its SELECT, so the loader
     * is reading while the rows come (a full pipe holds the worker back). */
    sl_tsv_writer w;
    char path[4300], tmp[4400];
    int rc = 0;
    if (d->cfg->stream) {
        rc = sl_tsv_open_stream(&w, 1 << 20, d->dir, c->file, path, sizeof path, stream_stop, d, err);
        if (rc) {
            sl_sbuf_free(&q);
            return rc;
        }
        snprintf(c->stag, sizeof c->stag, "%s", strstr(path, SL_STREAM_TAG));
        announce(d, c);
    }
    if (mysql_real_query(db, q.p, (unsigned long)q.len) != 0) {
        rc = sl_error_set(err, SL_EDB, "source: %s (errno %u) dumping %s", mysql_error(db),
                          mysql_errno(db), c->id);
        sl_sbuf_free(&q);
        if (d->cfg->stream)
            sl_tsv_stream_abort(&w);
        return rc;
    }
    sl_sbuf_free(&q);
    MYSQL_RES *res = mysql_use_result(db);
    if (!res) {
        if (d->cfg->stream)
            sl_tsv_stream_abort(&w);
        return sl_error_set(err, SL_EDB, "source: %s dumping %s", mysql_error(db), c->id);
    }
    if (!d->cfg->stream) {
        snprintf(path, sizeof path, "%s/%s", d->dir, c->file);
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        rc = sl_tsv_open(&w, tmp, 1 << 20, err);
        if (rc) {
            mysql_free_result(res);
            return rc;
        }
        /* The loader reads the file from the page cache right away; the files need to survive
         * a crash of the machine only once the manifest says the dump is complete (a resume
         * trusts them only then), so fresh_dump syncs the directory once, before that. */
        w.no_sync = 1;
    }
    unsigned nf = mysql_num_fields(res);
    MYSQL_ROW row;
    uint64_t reported = 0;
    while ((row = mysql_fetch_row(res))) {
        unsigned long *len = mysql_fetch_lengths(res);
        if (t->ncols == 0) {
            sl_tsv_end_row(&w);
        } else {
            for (unsigned i = 0; i < nf; i++)
                sl_tsv_field(&w, row[i], row[i] ? len[i] : 0);
            sl_tsv_end_row(&w);
        }
        if (w.bytes - reported >= (4u << 20)) {
            atomic_fetch_add(&d->finished_bytes, w.bytes - reported);
            reported = w.bytes;
            if (w.err || stream_stop(d))
                break;
        }
    }
    int stopped = row != NULL;
    if (!stopped && mysql_errno(db))
        rc = sl_error_set(err, SL_EDB, "source: %s (errno %u) dumping %s", mysql_error(db),
                          mysql_errno(db), c->id);
    if (stopped || rc) {
        /* Stopped: leave the rest unread (the caller closes the connection). A stream's
         * reader sees its end without the end frame and fails the chunk. */
        if (!stopped)
            mysql_free_result(res);
        if (d->cfg->stream)
            sl_tsv_stream_abort(&w);
        else
            sl_tsv_abort(&w, tmp);
        if (stopped && w.err && w.err != ECANCELED)
            return sl_error_set(err, SL_EIO, "writing %s: %s", c->id, strerror(w.err));
        return stopped ? sl_error_set(err, SL_ESTOPPED, "stopped") : rc;
    }
    mysql_free_result(res);
    uint64_t rows = w.rows, bytes = w.bytes;
    rc = d->cfg->stream ? sl_tsv_stream_end(&w, err) : sl_tsv_commit(&w, tmp, path, err);
    if (rc)
        return rc;
    c->rows = rows;
    c->bytes = bytes;
    atomic_fetch_add(&d->finished_bytes, bytes - reported);
    atomic_fetch_add(&d->finished_rows, rows);
    return 0;
}

static void worker_main(void *arg)
{
    worker_arg *wa = arg;
    dump *d = wa->d;
    MYSQL *db = d->wconn[wa->idx];
    for (;;) {
        size_t ci = 0;
        int got = 0;
        pthread_mutex_lock(&d->mu);
        while (!atomic_load(&d->quit) && !d->host->should_stop(d->ctx) &&
               (got = sl__dump_take_chunk(d, &ci)) < 0)
            sl_cond_wait_ms(&d->cv, &d->mu, 200);
        if (got <= 0) {
            d->nrunning--;
            pthread_cond_broadcast(&d->cv);
            pthread_mutex_unlock(&d->mu);
            break;
        }
        pthread_mutex_unlock(&d->mu);
        sl_error e = {0};
        int rc = dump_chunk(d, db, &d->chunks[ci], &e);
        pthread_mutex_lock(&d->mu);
        d->tables[d->chunks[ci].table].dumping--;
        pthread_cond_broadcast(&d->cv);
        pthread_mutex_unlock(&d->mu);
        if (rc) {
            if (rc != SL_ESTOPPED)
                worker_fail(d, &e);
            else
                atomic_store(&d->quit, 1);
            /* A half-read result cannot be drained cheaply: drop the connection. */
            mysql_close(db);
            d->wconn[wa->idx] = NULL;
            pthread_mutex_lock(&d->mu);
            d->nrunning--;
            pthread_cond_broadcast(&d->cv);
            pthread_mutex_unlock(&d->mu);
            break;
        }
        if (!d->cfg->stream) {
            announce(d, &d->chunks[ci]);
        } else {
            dtable *t = &d->tables[d->chunks[ci].table];
            pthread_mutex_lock(&d->mu);
            if (++t->chunks_done == t->nchunks)
                atomic_fetch_add(&d->completed_tables, 1);
            pthread_mutex_unlock(&d->mu);
        }
    }
    free(wa);
}

static void join_workers(dump *d)
{
    atomic_store(&d->quit, 1);
    for (size_t i = 0; i < d->nthreads; i++)
        d->host->thread_join(d->ctx, d->threads[i]);
    d->nthreads = 0;
}

static void close_conns(dump *d)
{
    for (size_t i = 0; i < d->nworkers; i++)
        if (d->wconn && d->wconn[i])
            mysql_close(d->wconn[i]);
    free(d->wconn);
    d->wconn = NULL;
    d->nworkers = 0;
    free(d->threads);
    d->threads = NULL;
    if (d->main)
        mysql_close(d->main);
    d->main = NULL;
}

/* ---- consistency --------------------------------------------------------------------------- */

static int query_row(dump *d, MYSQL *db, const char *sql, char **cols, size_t ncols)
{
    if (mysql_real_query(db, sql, (unsigned long)strlen(sql)) != 0)
        return d->host->fail(d->ctx, SL_EDB, "source: %s (errno %u) in: %s", mysql_error(db),
                             mysql_errno(db), sql);
    MYSQL_RES *r = mysql_store_result(db);
    MYSQL_ROW row = r ? mysql_fetch_row(r) : NULL;
    for (size_t i = 0; i < ncols; i++)
        cols[i] = row && i < mysql_num_fields(r) && row[i] ? strdup(row[i]) : NULL;
    int found = row != NULL;
    if (r)
        mysql_free_result(r);
    return found;
}

/* SHOW MASTER STATUS (+ the GTID position) on db. */
static int read_master_status(dump *d, MYSQL *db, int mariadb)
{
    char *c[5] = {0};
    int rc = query_row(d, db, "SHOW MASTER STATUS", c, 5);
    if (rc < 0)
        return rc;
    if (rc > 0 && c[0]) {
        snprintf(d->snap.file, sizeof d->snap.file, "%s", c[0]);
        d->snap.pos = c[1] ? strtoull(c[1], NULL, 10) : 0;
        if (!mariadb && c[4]) {
            free(d->snap.gtid);
            d->snap.gtid = strdup(c[4]);
        }
    }
    for (int i = 0; i < 5; i++)
        free(c[i]);
    if (mariadb && d->snap.file[0]) {
        char *g = NULL;
        rc = query_row(d, db, "SELECT @@GLOBAL.gtid_binlog_pos", &g, 1);
        if (rc < 0)
            return rc;
        free(d->snap.gtid);
        d->snap.gtid = g;
    }
    return 0;
}

/* binlog_snapshot_file/position of a connection's CONSISTENT SNAPSHOT transaction (MariaDB). */
static int read_snapshot_pos(dump *d, MYSQL *db)
{
    if (mysql_real_query(db, "SHOW STATUS LIKE 'binlog_snapshot_%'", 36) != 0)
        return d->host->fail(d->ctx, SL_EDB, "source: %s", mysql_error(db));
    MYSQL_RES *r = mysql_store_result(db);
    MYSQL_ROW row;
    while (r && (row = mysql_fetch_row(r))) {
        if (row[0] && row[1] && strcasecmp(row[0], "binlog_snapshot_file") == 0)
            snprintf(d->snap.file, sizeof d->snap.file, "%s", row[1]);
        else if (row[0] && row[1] && strcasecmp(row[0], "binlog_snapshot_position") == 0)
            d->snap.pos = strtoull(row[1], NULL, 10);
    }
    if (r)
        mysql_free_result(r);
    return 0;
}

/* The GTID position at the snapshot's binlog position: BINLOG_GTID_POS, which reads the binlog
 * file from its start up to the position (79 ms for a 470 MB file), so never while commits are
 * held (see held_gtid). */
static int read_snapshot_gtid(dump *d, MYSQL *db)
{
    if (!d->snap.file[0])
        return 0;
    sl_sbuf b;
    sl_sbuf_init(&b);
    sl_sbuf_adds(&b, "SELECT BINLOG_GTID_POS(");
    sl_sbuf_add_quoted(&b, d->snap.file, strlen(d->snap.file));
    sl_sbuf_addf(&b, ", %llu)", (unsigned long long)d->snap.pos);
    char *g = NULL;
    int rc = b.oom ? SL_ENOMEM : query_row(d, db, b.p, &g, 1);
    sl_sbuf_free(&b);
    if (rc < 0)
        return rc;
    free(d->snap.gtid);
    d->snap.gtid = g;
    return 0;
}

/*
 * While commits are held (BACKUP STAGE BLOCK_COMMIT or FLUSH TABLES WITH READ LOCK) and the
 * binlog still ends at the snapshot's position, @@gtid_binlog_pos is the GTID position there
 * (the same domains as BINLOG_GTID_POS, perhaps in another order), read without the scan:
 * read_master_status reads both, and its position must be the snapshot's. Sets *scan when it
 * is not (the caller then asks read_snapshot_gtid once commits flow again: the answer depends
 * only on the binlog up to the position, which does not change).
 */
static int held_gtid(dump *d, int *scan)
{
    *scan = 0;
    if (!d->snap.file[0])
        return 0;
    char file[sizeof d->snap.file];
    memcpy(file, d->snap.file, sizeof file);
    uint64_t pos = d->snap.pos;
    d->snap.file[0] = '\0';
    int rc = read_master_status(d, d->main, 1);
    if (rc < 0 || strcmp(d->snap.file, file) != 0 || d->snap.pos != pos || !d->snap.gtid) {
        memcpy(d->snap.file, file, sizeof file);
        d->snap.pos = pos;
        *scan = rc == 0;
    }
    return rc;
}

static int start_snapshots(dump *d)
{
    for (size_t i = 0; i < d->nworkers; i++) {
        int rc = sl__dump_exec(d, d->wconn[i], "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ");
        if (rc == 0)
            rc = sl__dump_exec(d, d->wconn[i], "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY");
        if (rc)
            return rc;
    }
    return 0;
}

/*
 * Prepared XA transactions on the source. A branch prepared before the snapshot is invisible to
 * it, and its rows are in the binlog at its XA PREPARE, before the snapshot's position: its XA
 * COMMIT later would bring nothing, and its rows would be lost. So a snapshot taken while one is
 * prepared is dropped and taken again once none is (checked while commits are held where they
 * are, else just after the snapshot, which may retry for a branch prepared after it). Returns
 * how many there are, with the first one's xid in xid; 0 when XA RECOVER is refused (logged).
 */
static int xa_prepared(dump *d, char *xid, size_t xl)
{
    if (mysql_real_query(d->main, "XA RECOVER", 10) != 0) {
        d->host->log(d->ctx, SL_LOG_WARN, "XA RECOVER: %s: a branch prepared before the snapshot "
                     "and committed after it would not be copied", mysql_error(d->main));
        return 0;
    }
    MYSQL_RES *res = mysql_store_result(d->main);
    if (!res)
        return 0;
    int n = (int)mysql_num_rows(res);
    MYSQL_ROW row = mysql_fetch_row(res);
    unsigned long *len = row ? mysql_fetch_lengths(res) : NULL;
    if (row && row[3] && len)
        snprintf(xid, xl, "%.*s", (int)(len[3] > 128 ? 128 : len[3]), row[3]);
    mysql_free_result(res);
    return n;
}

#define XA_WAIT_S 60

/* Drop the workers' snapshots and wait a second before the next; after XA_WAIT_S of them, fail. */
static int xa_wait(dump *d, int attempt, int n, const char *xid)
{
    for (size_t i = 0; i < d->nworkers; i++)
        sl__dump_exec(d, d->wconn[i], "ROLLBACK");
    if (attempt == 0)
        d->host->log(d->ctx, SL_LOG_INFO, "%d prepared XA transaction(s) on the source (first: "
                     "'%s'): waiting for them to end before the snapshot", n, xid);
    if (attempt >= XA_WAIT_S || d->host->should_stop(d->ctx))
        return d->host->fail(d->ctx, SL_ETIMEOUT, "the source holds %d prepared XA transaction(s) "
                             "(XA RECOVER; first: '%s'), and has for %d s: no snapshot can see "
                             "their rows, which the binlog holds before any snapshot's position. "
                             "Commit or roll them back on the source, then start the task again",
                             n, xid, XA_WAIT_S);
    sleep(1);
    return 0;
}

static int establish_consistency(dump *d)
{
    const char *ver = mysql_get_server_info(d->main);
    int mariadb = ver && strstr(ver, "MariaDB") != NULL;
    int cons = d->cfg->consistency;
    int rc = 0;
    const char *how = "";
    if (cons == CONS_NONE) {
        rc = read_master_status(d, d->main, mariadb);
        how = "none (no snapshot)";
    } else if (cons == CONS_LOCK) {
        sl_sbuf b;
        sl_sbuf_init(&b);
        sl_sbuf_adds(&b, "LOCK TABLES ");
        for (size_t i = 0; i < d->ntables; i++) {
            if (i)
                sl_sbuf_adds(&b, ", ");
            sl_sbuf_add_qname(&b, d->tables[i].schema, d->tables[i].name);
            sl_sbuf_adds(&b, " READ");
        }
        if (d->ntables) {
            rc = b.oom ? d->host->fail(d->ctx, SL_ENOMEM, "no memory") : sl__dump_exec(d, d->main, b.p);
            d->locked = rc == 0;
        }
        sl_sbuf_free(&b);
        if (rc == 0)
            rc = read_master_status(d, d->main, mariadb);
        how = "lock (LOCK TABLES ... READ for the whole dump)";
    } else if (mariadb && cons != CONS_FLUSH && d->nworkers == 1) {
        for (int attempt = 0;; attempt++) {
            char xid[160] = "";
            rc = start_snapshots(d);
            if (rc == 0)
                rc = read_snapshot_pos(d, d->wconn[0]);
            if (rc == 0)
                rc = read_snapshot_gtid(d, d->wconn[0]);
            int nxa = rc == 0 ? xa_prepared(d, xid, sizeof xid) : 0;
            if (rc || !nxa || (rc = xa_wait(d, attempt, nxa, xid)) < 0)
                break;
        }
        how = "snapshot (one transaction, no lock)";
    } else {
        for (int attempt = 0;; attempt++) {
            char xid[160] = "";
            int nxa = 0;
            int backup = 0;
            if (mariadb && cons != CONS_FLUSH) {
                sl_error e = {0};
                backup = sl_myconn_exec(d->main, "BACKUP STAGE START", 18, &e) == 0 &&
                         sl_myconn_exec(d->main, "BACKUP STAGE BLOCK_COMMIT", 25, &e) == 0;
                if (!backup) {
                    d->host->log(d->ctx, SL_LOG_INFO, "BACKUP STAGE not usable (%s): using FLUSH TABLES WITH READ LOCK", e.msg);
                    sl_myconn_exec(d->main, "BACKUP STAGE END", 16, NULL);
                }
            }
            if (!backup)
                rc = sl__dump_exec(d, d->main, "FLUSH TABLES WITH READ LOCK");
            d->locked = rc == 0;
            if (rc == 0)
                rc = start_snapshots(d);
            int scan = 0;
            if (rc == 0)
                rc = mariadb ? read_snapshot_pos(d, d->wconn[0]) : read_master_status(d, d->main, 0);
            if (rc == 0 && mariadb)
                rc = held_gtid(d, &scan);
            if (rc == 0)
                nxa = xa_prepared(d, xid, sizeof xid);
            if (d->locked) {
                int u = sl__dump_exec(d, d->main, backup ? "BACKUP STAGE END" : "UNLOCK TABLES");
                rc = rc ? rc : u;
                d->locked = 0;
            }
            if (rc == 0 && nxa) {
                if ((rc = xa_wait(d, attempt, nxa, xid)) < 0)
                    break;
                continue;
            }
            if (rc == 0 && scan)
                rc = read_snapshot_gtid(d, d->wconn[0]);
            how = backup ? "snapshot (commits held by BACKUP STAGE BLOCK_COMMIT while workers start)"
                         : "flush (FLUSH TABLES WITH READ LOCK while workers start)";
            break;
        }
    }
    if (!d->snap.gtid)
        d->snap.gtid = strdup("");
    if (rc == 0)
        d->host->log(d->ctx, SL_LOG_INFO, "consistency %s: snapshot %s at (%s, %llu) gtid '%s'", how,
                     d->snap.id, d->snap.file, (unsigned long long)d->snap.pos,
                     d->snap.gtid ? d->snap.gtid : "");
    return rc;
}

/* ---- the run ----------------------------------------------------------------------------------- */

/* Remove the files of an earlier, unfinished dump. */
static void clear_dir(dump *d)
{
    DIR *dir = opendir(d->dir);
    if (!dir)
        return;
    struct dirent *de;
    char path[4400];
    while ((de = readdir(dir))) {
        const char *n = de->d_name;
        size_t l = strlen(n);
        if ((l > 4 && strcmp(n + l - 4, ".tsv") == 0) || (l > 4 && strcmp(n + l - 4, ".tmp") == 0) ||
            strcmp(n, "manifest.json") == 0 || strcmp(n, "snapshot") == 0) {
            snprintf(path, sizeof path, "%s/%s", d->dir, n);
            unlink(path);
        }
    }
    closedir(dir);
}

/* Stream mode: every chunk is announced when it starts; the dump is over when the workers are. */
static int wait_streams(dump *d)
{
    const sl_host *h = d->host;
    pthread_mutex_lock(&d->mu);
    while (d->nrunning > 0 && !d->werr && !h->should_stop(d->ctx)) {
        sl_cond_wait_ms(&d->cv, &d->mu, 200);
    }
    int werr = d->werr;
    pthread_mutex_unlock(&d->mu);
    if (werr)
        return h->fail(d->ctx, werr, "%s", d->werr_msg.msg);
    if (h->should_stop(d->ctx))
        return SL_ESTOPPED;
    return 0;
}

static int fresh_dump(dump *d)
{
    const sl_host *h = d->host;
    sl_error e = {0};
    int rc = sl_mkdir_p(d->dir, &e);
    if (rc)
        return h->fail(d->ctx, rc, "%s", e.msg);
    clear_dir(d);
    if ((rc = sl__dump_discover(d)) < 0 || (rc = sl__dump_not_copied(d)) < 0 ||
        (rc = sl__dump_plan_chunks(d)) < 0)
        return rc;
    size_t nw = (size_t)d->cfg->export_threads;
    if (nw > d->nchunks)
        nw = d->nchunks ? d->nchunks : 1;
    d->wconn = calloc(nw, sizeof *d->wconn);
    d->threads = calloc(nw, sizeof *d->threads);
    d->done_ring = calloc(d->nchunks + 1, sizeof *d->done_ring);
    if (!d->wconn || !d->threads || !d->done_ring)
        return h->fail(d->ctx, SL_ENOMEM, "no memory");
    for (size_t i = 0; i < nw; i++) {
        d->wconn[i] = connect_source(d, SESSION_INIT ", SESSION character_set_results = binary");
        if (!d->wconn[i])
            return SL_ECONN;
        d->nworkers++;
    }
    sl_snapshot_new_id(&d->snap);
    /* Tests: SLUICE_DUMP_FAILPOINT="before-snapshot:MS" waits MS milliseconds between reading
     * the structures and taking the snapshot, for a DDL to land in between. */
    const char *fp = getenv("SLUICE_DUMP_FAILPOINT");
    if (fp && !strncmp(fp, "before-snapshot:", 16)) {
        long ms = atol(fp + 16);
        struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
    }
    if ((rc = establish_consistency(d)) < 0)
        return rc;
    if ((rc = sl__dump_recheck(d)) < 0)
        return rc;
    d->have_snap = 1;
    if ((rc = sl_snapshot_write(d->dir, &d->snap, &e)) < 0)
        return h->fail(d->ctx, rc, "%s", e.msg);
    if ((rc = sl__dump_manifest_write(d, 0)) < 0)
        return rc;
    h->log(d->ctx, SL_LOG_INFO, "dumping %zu tables in %zu chunks with %zu threads into %s",
           d->ntables, d->nchunks, d->nworkers, d->dir);
    if ((rc = emit_ddls(d)) < 0)
        return rc;
    for (size_t i = 0; i < d->ntables; i++)
        if (d->tables[i].nchunks == 0)
            atomic_fetch_add(&d->completed_tables, 1);

    d->nrunning = d->nworkers;
    for (size_t i = 0; i < d->nworkers; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa) {
            d->nrunning -= d->nworkers - i;
            return h->fail(d->ctx, SL_ENOMEM, "no memory");
        }
        wa->d = d;
        wa->idx = i;
        rc = h->thread_start(d->ctx, "dump", worker_main, wa, &d->threads[i]);
        if (rc < 0) {
            free(wa);
            pthread_mutex_lock(&d->mu);
            d->nrunning -= d->nworkers - i;
            pthread_mutex_unlock(&d->mu);
            return h->fail(d->ctx, rc, "cannot start a dump thread");
        }
        d->nthreads++;
    }

    size_t emitted = 0;
    while (emitted < d->nchunks) {
        pthread_mutex_lock(&d->mu);
        while (d->done_head == d->done_tail && !d->werr && d->nrunning > 0 &&
               !h->should_stop(d->ctx)) {
            sl_cond_wait_ms(&d->cv, &d->mu, 200);
        }
        size_t from = d->done_head, to = d->done_tail;
        d->done_head = to;
        int werr = d->werr, running = (int)d->nrunning;
        pthread_mutex_unlock(&d->mu);
        if (werr)
            return h->fail(d->ctx, werr, "%s", d->werr_msg.msg);
        if (h->should_stop(d->ctx))
            return SL_ESTOPPED;
        if (from == to) {
            if (running == 0)
                return h->fail(d->ctx, SL_EINTERNAL, "dump workers ended with %zu of %zu chunks",
                               emitted, d->nchunks);
            continue;
        }
        sl_batch *b = h->batch_new(d->ctx, (uint32_t)(to - from));
        if (!b)
            return h->fail(d->ctx, SL_ENOMEM, "no memory");
        for (size_t i = from; i < to; i++) {
            dchunk *c = &d->chunks[d->done_ring[i]];
            if ((rc = push_chunk_event(d, b, c)) < 0) {
                h->batch_unref(b);
                return rc;
            }
            dtable *t = &d->tables[c->table];
            if (!d->cfg->stream && ++t->chunks_done == t->nchunks)
                atomic_fetch_add(&d->completed_tables, 1);
        }
        emitted += to - from;
        if ((rc = emit(d, b)) < 0)
            return rc;
    }
    if (d->cfg->stream && (rc = wait_streams(d)) < 0)
        return rc;
    join_workers(d);
    if (d->locked) {
        sl__dump_exec(d, d->main, "UNLOCK TABLES");
        d->locked = 0;
    }
    for (size_t i = 0; i < d->nworkers; i++)
        if (d->wconn[i])
            sl_myconn_exec(d->wconn[i], "COMMIT", 6, NULL);
    /* Streamed chunks left no files: the manifest stays incomplete, so a resume dumps again. */
    struct timespec s0, s1;
    clock_gettime(CLOCK_MONOTONIC, &s0);
    if (!d->cfg->stream && (rc = sl_sync_dir(d->dir, &e)) < 0)
        return h->fail(d->ctx, rc, "%s", e.msg);
    clock_gettime(CLOCK_MONOTONIC, &s1);
    if (!d->cfg->stream && (rc = sl__dump_manifest_write(d, 1)) < 0)
        return rc;
    char synced[64] = ", streamed to the loader";
    if (!d->cfg->stream)
        snprintf(synced, sizeof synced, ", synced to disk in %.2f s",
                 (double)(s1.tv_sec - s0.tv_sec) + (double)(s1.tv_nsec - s0.tv_nsec) / 1e9);
    h->log(d->ctx, SL_LOG_INFO, "dump finished: %llu rows, %llu bytes%s",
           (unsigned long long)atomic_load(&d->finished_rows),
           (unsigned long long)atomic_load(&d->finished_bytes), synced);
    return emit_eof(d);
}

static int dump_run_inner(dump *d)
{
    const sl_host *h = d->host;
    if (d->cfg->mode == MODE_LOAD) {
        int rc = sl__dump_manifest_read(d);
        if (rc == SL_ENOENT)
            return h->fail(d->ctx, SL_ENOENT, "task_mode load: no finished dump in %s", d->dir);
        return rc < 0 ? rc : emit_all(d);
    }
    if (target_finished(d)) {
        h->log(d->ctx, SL_LOG_INFO, "the load of this source already finished: nothing to dump");
        sl_snapshot_info s;
        if (sl_snapshot_read(d->dir, &s, NULL) == 0) {
            free(d->snap.gtid);
            d->snap = s;
            d->have_snap = 1;
        }
        return emit_eof(d);
    }
    int rc = sl__dump_manifest_read(d);
    if (rc == 0) {
        /* A finished dump is reused only to go on loading it: when the target has no chunk of
         * its snapshot (the task was deleted and created again, started with remove_meta, or
         * the target was reset), its rows and position are old news: dump again. */
        long long loaded = target_ckpt_count(d, d->snap.id);
        if (loaded != 0) {
            h->log(d->ctx, SL_LOG_INFO, "reusing the finished dump in %s (snapshot %s)", d->dir, d->snap.id);
            return emit_all(d);
        }
        h->log(d->ctx, SL_LOG_INFO, "the finished dump in %s (snapshot %s) was never loaded into "
               "this target (no chunk of it in the load checkpoint): dumping again", d->dir, d->snap.id);
        sl_snapshot_clear(&d->snap);
        d->have_snap = 0;
        d->est_total_rows = 0;
        rc = SL_ENOENT;
    }
    if (rc != SL_ENOENT)
        return rc;
    sl__dump_free_plan(d);
    d->main = connect_source(d, SESSION_INIT);
    if (!d->main)
        return SL_ECONN;
    return fresh_dump(d);
}

/* ---- plugin callbacks -------------------------------------------------------------------------- */

static int dump_create(const sl_host *host, sl_ctx *ctx, const void *config, void **self)
{
    const dump_cfg *cfg = config;
    dump *d = calloc(1, sizeof *d);
    if (!d)
        return host->fail(ctx, SL_ENOMEM, "no memory");
    d->host = host;
    d->ctx = ctx;
    d->cfg = cfg;
    if (cfg->stream && cfg->mode != MODE_FULL) {
        free(d);
        return host->fail(ctx, SL_EINVAL, "stream: only mode full streams chunks (dump writes "
                          "files to keep, load reads them)");
    }
    sl_error e = {0};
    int rc = sl_rules_new(cfg->rules, &d->rules, &e);
    if (rc) {
        free(d);
        return host->fail(ctx, rc, "rules: %s", e.msg);
    }
    if (sl_dump_dir(d->dir, sizeof d->dir, cfg->data_dir, cfg->task_name, cfg->source_name) < 0) {
        sl_rules_free(d->rules);
        free(d);
        return host->fail(ctx, SL_ELIMIT, "data_dir too long");
    }
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    *self = d;
    return 0;
}

static void reset_run(dump *d)
{
    join_workers(d);
    close_conns(d);
    sl__dump_free_plan(d);
    sl_snapshot_clear(&d->snap);
    d->have_snap = 0;
    d->next_job = d->done_head = d->done_tail = d->nrunning = 0;
    atomic_store(&d->quit, 0);
    d->werr = 0;
    d->locked = 0;
    atomic_store(&d->finished_bytes, 0);
    atomic_store(&d->finished_rows, 0);
    atomic_store(&d->completed_tables, 0);
    d->est_total_rows = 0;
    d->total_tables = 0;
}

static int dump_start(void *self)
{
    reset_run(self);
    return 0;
}

static int dump_run(void *self)
{
    dump *d = self;
    int rc = dump_run_inner(d);
    join_workers(d);
    close_conns(d);
    if (rc == 0)
        return SL_DONE;
    if (rc == SL_ESTOPPED || d->host->should_stop(d->ctx))
        return SL_ESTOPPED;
    return rc;
}

static void dump_stop(void *self)
{
    dump *d = self;
    join_workers(d);
}

static void dump_destroy(void *self)
{
    dump *d = self;
    if (!d)
        return;
    reset_run(d);
    sl_rules_free(d->rules);
    free(d->not_copied);
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->cv);
    free(d);
}

static char *dump_status(void *self)
{
    dump *d = self;
    uint64_t fb = atomic_load(&d->finished_bytes), fr = atomic_load(&d->finished_rows);
    uint64_t ct = atomic_load(&d->completed_tables);
    uint64_t est = d->est_total_rows;
    double pct = est ? 100.0 * (double)fr / (double)est : (d->total_tables && ct == d->total_tables ? 100.0 : 0.0);
    if (pct > 100.0 || (d->total_tables && ct == d->total_tables))
        pct = ct == d->total_tables && d->total_tables ? 100.0 : 99.99;
    /* the selected objects not copied (a JSON array, set once by the plan) */
    pthread_mutex_lock(&d->mu);
    const char *nc = d->not_copied ? d->not_copied : "[]";
    size_t cap = 360 + strlen(nc);
    char *s = d->host->alloc(cap);
    if (s)
        snprintf(s, cap,
                 "{\"unit\":\"Dump\",\"total_tables\":%zu,\"completed_tables\":%llu,"
                 "\"finished_bytes\":%llu,\"finished_rows\":%llu,\"estimate_total_rows\":%llu,"
                 "\"progress\":\"%.2f %%\",\"not_copied\":%s,\"not_copied_count\":%zu}",
                 d->total_tables, (unsigned long long)ct, (unsigned long long)fb,
                 (unsigned long long)fr, (unsigned long long)est, pct, nc, d->n_not_copied);
    pthread_mutex_unlock(&d->mu);
    return s;
}

SL_PLUGIN_EXPORT const sl_plugin_descriptor sluice_plugin = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_plugin_descriptor),
    .name = "mysql-dump",
    .kind = SL_PLUGIN_SOURCE,
    .description = "consistent parallel dump of MySQL/MariaDB tables into LOAD DATA chunk files",
    .options = dump_options,
    .config_size = sizeof(dump_cfg),
    .create = dump_create,
    .start = dump_start,
    .run = dump_run,
    .stop = dump_stop,
    .destroy = dump_destroy,
    .status = dump_status,
};
