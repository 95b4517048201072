/*
 * stream.c - turns the decoded events of a binlog dump into sluice batches: transaction
 * boundaries (GTID/BEGIN .. XID/COMMIT, standalone DDL), table metadata versions, row events
 * into INSERT/UPDATE/DELETE events, DDL, positions and GTID sets, and the batching rules
 * (bounded batches, TXN_END only at transaction boundaries, replay after a reconnect).
 */
#include "reader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "ddl.h"

int64_t br_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- tables ------------------------------------------------------------------------------- */

static uint32_t hash_name(const char *s, const char *t)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    h = (h ^ 0xFF) * 16777619u;
    for (; *t; t++)
        h = (h ^ (uint8_t)*t) * 16777619u;
    return h;
}

void br_tables_free(br *r)
{
    for (int i = 0; i < BR_TABLE_BUCKETS; i++) {
        br_table *t = r->tables[i];
        while (t) {
            br_table *n = t->next;
            if (t->meta)
                r->host->table_unref(t->meta);
            sl_bl_table_map_free(t->map);
            br_track_tcols_free(t->tcols);
            free(t->key);
            free(t);
            t = n;
        }
        r->tables[i] = NULL;
    }
    free(r->tids);
    r->tids = NULL;
    r->ntids = r->ctids = 0;
}

static br_table *table_get(br *r, const char *schema, const char *table)
{
    uint32_t h = hash_name(schema, table) % BR_TABLE_BUCKETS;
    size_t ls = strlen(schema), lt = strlen(table);
    for (br_table *t = r->tables[h]; t; t = t->next)
        if (!strcmp(t->key, schema) && !strcmp(t->key + strlen(t->key) + 1, table))
            return t;
    br_table *t = calloc(1, sizeof *t);
    if (!t || !(t->key = malloc(ls + lt + 2))) {
        free(t);
        return NULL;
    }
    memcpy(t->key, schema, ls + 1);
    memcpy(t->key + ls + 1, table, lt + 1);
    /* an online schema change tool's tables never leave the reader (osc.c) */
    t->selected = sl_rules_find(r->rules, schema, table) >= 0 && !br_osc_table(r, schema, table);
    t->next = r->tables[h];
    r->tables[h] = t;
    return t;
}

br_table *br_table_find(br *r, const char *schema, const char *table)
{
    uint32_t h = hash_name(schema, table) % BR_TABLE_BUCKETS;
    for (br_table *t = r->tables[h]; t; t = t->next)
        if (!strcmp(t->key, schema) && !strcmp(t->key + strlen(t->key) + 1, table))
            return t;
    return NULL;
}

static int tid_set(br *r, uint64_t id, br_table *t)
{
    for (size_t i = 0; i < r->ntids; i++)
        if (r->tids[i].id == id) {
            r->tids[i].t = t;
            return 0;
        }
    if (r->ntids == r->ctids) {
        size_t c = r->ctids ? r->ctids * 2 : 16;
        br_tid *v = realloc(r->tids, c * sizeof *v);
        if (!v)
            return SL_ENOMEM;
        r->tids = v;
        r->ctids = c;
    }
    r->tids[r->ntids++] = (br_tid){ id, t };
    return 0;
}

static br_table *tid_get(br *r, uint64_t id)
{
    for (size_t i = r->ntids; i-- > 0;)
        if (r->tids[i].id == id)
            return r->tids[i].t;
    return NULL;
}

/* Publish an sl_table for a new table map (a new version of the table). */
static sl_table *make_meta(br *r, const sl_bl_table_map *m, uint64_t version)
{
    const sl_host *h = r->host;
    sl_table *t = h->table_new(m->ncols);
    if (!t)
        return NULL;
    t->schema = h->table_strdup(t, m->schema);
    t->name = h->table_strdup(t, m->table);
    t->version = version;
    for (uint32_t i = 0; i < m->ncols; i++) {
        const sl_bl_column *c = &m->cols[i];
        sl_column *o = &t->cols[i];
        char tmp[32];
        if (!c->name)
            snprintf(tmp, sizeof tmp, "@%u", i + 1);   /* mysqlbinlog's naming without metadata */
        o->name = h->table_strdup(t, c->name ? c->name : tmp);
        o->mysql_type = c->real_type;
        o->flags = (uint8_t)((c->pk ? SL_COL_PK : 0) | (c->is_unsigned ? SL_COL_UNSIGNED : 0) |
                             (c->nullable ? SL_COL_NULLABLE : 0) |
                             (c->charset == 63 ? SL_COL_BINARY : 0));
        o->charset = c->charset;
        switch (c->real_type) {
        case SL_MT_NEWDECIMAL:
            o->length = c->meta >> 8;
            o->scale = (uint8_t)(c->meta & 0xFF);
            break;
        case SL_MT_TIME2: case SL_MT_DATETIME2: case SL_MT_TIMESTAMP2:
            o->scale = (uint8_t)c->meta;
            break;
        default:
            o->length = c->max_len;
        }
        if (!o->name)
            goto oom;
    }
    if (!t->schema || !t->name)
        goto oom;
    if (m->npk) {
        if (!SL_HOST_HAS(h, table_alloc))
            goto oom;
        t->pk = h->table_alloc(t, m->npk * sizeof *t->pk);
        if (!t->pk)
            goto oom;
        memcpy(t->pk, m->pk, m->npk * sizeof *t->pk);
        t->npk = m->npk;
    }
    return t;
oom:
    h->table_unref(t);
    return NULL;
}

/* ---- batches ------------------------------------------------------------------------------ */

static sl_batch *batch(br *r)
{
    if (!r->b) {
        r->b = r->host->batch_new(r->ctx, (uint32_t)r->cfg->batch_events);
        r->b_file = NULL;
        r->b_gtid = NULL;
    }
    return r->b;
}

static const char *intern_file(br *r)
{
    if (!r->b_file)
        r->b_file = r->host->batch_strndup(r->b, r->file, strlen(r->file));
    return r->b_file;
}

static const char *intern_gtid(br *r)
{
    if (!r->txn_gtid)
        return NULL;
    if (!r->b_gtid)
        r->b_gtid = r->host->batch_strndup(r->b, r->txn_gtid, strlen(r->txn_gtid));
    return r->b_gtid;
}

static void publish_read_pos(br *r)
{
    pthread_mutex_lock(&r->mu);
    snprintf(r->st_read_file, sizeof r->st_read_file, "%s", r->file);
    r->st_read_pos = r->pos;
    pthread_mutex_unlock(&r->mu);
}

static int xa_keep(br *r);

int br_flush(br *r)
{
    publish_read_pos(r);
    int rc;
    if (r->xa_dirty && (rc = xa_keep(r)) < 0)    /* before the sink can checkpoint past it */
        return rc;
    int boundary = !r->in_txn || (!r->begin_put && r->txn_put == 0);
    if (!r->b) {
        if (!(r->ckpt_dirty && boundary))
            return 0;
        if (!batch(r))
            return r->host->fail(r->ctx, SL_ENOMEM, "out of memory");
    }
    sl_batch *b = r->b;
    b->ckpt.file = r->commit_file[0] ? r->host->batch_strndup(b, r->commit_file,
                                                              strlen(r->commit_file)) : NULL;
    b->ckpt.offset = r->commit_pos;
    b->ckpt.gtid = r->commit_gtid ? r->host->batch_strndup(b, r->commit_gtid,
                                                           strlen(r->commit_gtid)) : NULL;
    if (boundary) {
        b->flags |= SL_BATCH_TXN_END;
        r->ckpt_dirty = 0;
    }
    r->b = NULL;
    r->host->metric_add(r->ctx, "batches", 1);
    r->host->metric_add(r->ctx, "events", b->n);
    return r->host->emit(r->ctx, b);
}

/* Push a data event of the current transaction (a BEGIN first if it is the first). NULL on OOM
 * with the error recorded. */
static sl_event *put(br *r, sl_event_kind kind, uint64_t next_pos)
{
    if (!batch(r))
        goto oom;
    if (r->in_txn && !r->begin_put && !r->txn_ddl) {
        sl_event *bg = r->host->batch_push(r->b, SL_EV_BEGIN);
        if (!bg)
            goto oom;
        bg->pos.file = r->host->batch_strndup(r->b, r->txn_file, strlen(r->txn_file));
        bg->pos.offset = r->txn_pos;
        bg->pos.gtid = intern_gtid(r);
        bg->commit_ts = r->txn_ts;
        bg->seq = ++r->seq;
        r->begin_put = 1;
    }
    sl_event *ev = r->host->batch_push(r->b, kind);
    if (!ev)
        goto oom;
    ev->pos.file = intern_file(r);
    ev->pos.offset = next_pos;
    ev->pos.gtid = intern_gtid(r);
    ev->commit_ts = r->txn_ts;
    ev->seq = ++r->seq;
    r->txn_put++;
    return ev;
oom:
    r->host->fail(r->ctx, SL_ENOMEM, "out of memory building a batch");
    return NULL;
}

static int maybe_flush_full(br *r)
{
    if (r->b && (r->b->n >= (uint64_t)r->cfg->batch_events ||
                 r->b->bytes >= (uint64_t)r->cfg->batch_bytes))
        return br_flush(r);
    return 0;
}

/* ---- transactions ------------------------------------------------------------------------- */

static int set_txn_gtid_text(br *r)
{
    sl_bl_gtid_set s = { 0 };
    if (sl_bl_gtid_set_copy(&s, &r->gtid) < 0)
        return SL_ENOMEM;
    if (r->has_txg && sl_bl_gtid_set_update(&s, r->txg.domain, r->txg_server, r->txg.seq) < 0) {
        sl_bl_gtid_set_free(&s);
        return SL_ENOMEM;
    }
    free(r->txn_gtid);
    r->txn_gtid = NULL;
    if (s.n || r->has_txg) {
        size_t n = sl_bl_gtid_set_format(&s, NULL, 0);
        r->txn_gtid = malloc(n + 1);
        if (!r->txn_gtid) {
            sl_bl_gtid_set_free(&s);
            return SL_ENOMEM;
        }
        sl_bl_gtid_set_format(&s, r->txn_gtid, n + 1);
    }
    sl_bl_gtid_set_free(&s);
    return 0;
}

static int txn_begin(br *r, const sl_bl_header *h, int from_gtid)
{
    r->in_txn = 1;
    r->explicit_begin = 0;
    r->txn_ddl = 0;
    snprintf(r->txn_file, sizeof r->txn_file, "%s", r->file);
    r->txn_pos = h->next_pos >= h->event_len ? h->next_pos - h->event_len : r->pos;
    r->txn_ts = h->timestamp;
    r->txn_put = 0;
    r->begin_put = r->replay_begin;
    r->replay_begin = 0;
    r->b_gtid = NULL;
    if (!from_gtid)
        r->has_txg = 0;
    return set_txn_gtid_text(r);
}

static int txn_commit(br *r, const sl_bl_header *h)
{
    if (r->has_txg &&
        sl_bl_gtid_set_update(&r->gtid, r->txg.domain, r->txg_server, r->txg.seq) < 0)
        return r->host->fail(r->ctx, SL_ENOMEM, "out of memory");
    if (!r->in_txn || !r->txn_gtid) {
        if (set_txn_gtid_text(r) < 0)
            return r->host->fail(r->ctx, SL_ENOMEM, "out of memory");
    }
    snprintf(r->commit_file, sizeof r->commit_file, "%s", r->file);
    r->commit_pos = h->next_pos ? h->next_pos : r->pos;
    free(r->commit_gtid);
    r->commit_gtid = r->txn_gtid ? strdup(r->txn_gtid) : NULL;
    r->gtid_start = 0;
    if (r->begin_put) {
        if (!batch(r))
            return r->host->fail(r->ctx, SL_ENOMEM, "out of memory");
        sl_event *ev = r->host->batch_push(r->b, SL_EV_COMMIT);
        if (!ev)
            return r->host->fail(r->ctx, SL_ENOMEM, "out of memory");
        ev->pos.file = intern_file(r);
        ev->pos.offset = r->commit_pos;
        ev->pos.gtid = intern_gtid(r);
        ev->commit_ts = h->timestamp ? h->timestamp : r->txn_ts;
        ev->seq = ++r->seq;
    }
    r->in_txn = 0;
    r->has_txg = 0;
    r->txn_put = 0;
    r->begin_put = 0;
    r->replay_skip = 0;
    r->ckpt_dirty = 1;
    r->ntids = 0;     /* table ids are valid within one transaction's statements */
    return maybe_flush_full(r);
}

void br_reset_for_redump(br *r)
{
    if (r->in_txn) {
        /* Replay the transaction from its start and skip what was already put. */
        snprintf(r->file, sizeof r->file, "%s", r->txn_file);
        r->pos = r->txn_pos;
        r->replay_skip = r->txn_put;
        r->replay_begin = r->begin_put;
    } else {
        if (r->commit_file[0]) {
            snprintf(r->file, sizeof r->file, "%s", r->commit_file);
            r->pos = r->commit_pos;
        }
        r->replay_skip = 0;
        r->replay_begin = 0;
    }
    r->in_txn = 0;
    r->has_txg = 0;
    r->txn_put = 0;
    r->begin_put = 0;
    r->ntids = 0;
    sl_bl_format_init(&r->fmt);
    r->fmt.checksum_alg = r->dump_checksum;
}

/* Skip a data event already put before a reconnect. Returns 1 if skipped. */
static int replayed(br *r)
{
    if (r->replay_skip == 0)
        return 0;
    r->replay_skip--;
    r->txn_put++;
    return 1;
}

/* ---- event handlers ----------------------------------------------------------------------- */

/*
 * The source is idle: its dump thread found nothing more to send for heartbeat_ms and says
 * where it stands (a HEARTBEAT's header holds the position it has sent up to, its body the file
 * name; MariaDB sql_repl.cc send_heartbeat_event). Pass that on, so progress flows downstream
 * even when the last transactions put nothing into batches (unselected tables, or rows a later
 * stage drops): the checkpoint moves past non-transaction events read since the last commit
 * (ROTATE, FORMAT_DESCRIPTION, GTID_LIST, BINLOG_CHECKPOINT) to the source's own position, and
 * an SL_EV_HEARTBEAT event in a TXN_END batch carries that position and the time.
 *
 * Only between transactions: inside one (or before a replayed one after a reconnect) the
 * reader's position is no resume point, and the sink may hold an open part of it.
 */
static int on_heartbeat(br *r, const sl_bl_header *h, const uint8_t *body, size_t blen)
{
    if (r->in_txn || r->replay_skip || r->replay_begin || !r->file[0])
        return 0;
    /* Trust the heartbeat only when it names the file being read and is not behind it. A
     * MariaDB dump thread skips whole transactions only (GTID start), so a position ahead of
     * ours is still a transaction boundary; other flavors must agree exactly. */
    if (blen != strlen(r->file) || memcmp(body, r->file, blen) != 0 || h->next_pos < r->pos ||
        (h->next_pos > r->pos && r->cfg->flavor != 0))
        return 0;
    r->pos = h->next_pos;
    if (strcmp(r->commit_file, r->file) != 0 || r->commit_pos != r->pos) {
        snprintf(r->commit_file, sizeof r->commit_file, "%s", r->file);
        r->commit_pos = r->pos;
        r->ckpt_dirty = 1;
    }
    if (!batch(r))
        return r->host->fail(r->ctx, SL_ENOMEM, "out of memory");
    sl_event *ev = r->host->batch_push(r->b, SL_EV_HEARTBEAT);
    if (!ev)
        return r->host->fail(r->ctx, SL_ENOMEM, "out of memory");
    ev->pos.file = intern_file(r);
    ev->pos.offset = r->pos;
    ev->pos.gtid = r->commit_gtid ? r->host->batch_strndup(r->b, r->commit_gtid,
                                                           strlen(r->commit_gtid)) : NULL;
    ev->commit_ts = (uint64_t)(br_now_ms() / 1000);
    ev->seq = ++r->seq;
    if (!ev->pos.file)
        return r->host->fail(r->ctx, SL_ENOMEM, "out of memory");
    /* br_flush marks the batch TXN_END (we are between transactions) with the checkpoint */
    r->ckpt_dirty = 1;
    return br_flush(r);
}

static int eq_word(const char *s, size_t n, const char *w)
{
    size_t wl = strlen(w);
    while (n && (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r')) {
        s++;
        n--;
    }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == ';' || s[n - 1] == '\0'))
        n--;
    return n == wl && !strncasecmp(s, w, wl);
}

static int starts_word(const char *s, size_t n, const char *w)
{
    size_t wl = strlen(w);
    while (n && (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r')) {
        s++;
        n--;
    }
    return n >= wl && !strncasecmp(s, w, wl) && (n == wl || s[wl] == ' ' || s[wl] == '\t');
}

/* ---- XA ------------------------------------------------------------------------------------------
 * The target is not a participant of the source's XA transactions: a prepared branch's rows are
 * applied at its XA PREPARE, and its XA COMMIT, a group of its own later on, is an empty one.
 * An XA ROLLBACK of a branch applied so cannot be undone from what the binlog holds: the reader
 * remembers the xids it applied and stops at the rollback of one of them, so the operator learns
 * which rows the target holds that the source does not (a resume goes on after it).
 *
 * What it remembers outlives the run: a stop, a crash or a move to another worker between a
 * branch's prepare and its rollback would otherwise forget it. The set is kept in the host's
 * state (`xa_prepared`, one xid a line) before every batch is emitted when it changed, so it is
 * in the state before the sink can checkpoint past the prepare (or, for a removal, past the
 * COMMIT). At a start, an xid kept whose prepare lies after the checkpoint is read again, which
 * finds it already there; one whose COMMIT lies after the checkpoint is read again too, and
 * removes it again. A rollback or commit of a branch not remembered (prepared before the task's
 * start position, or writing no selected table) is only logged.
 */

#define XA_STATE_KEY "xa_prepared"

void br_xa_free(br *r)
{
    for (size_t i = 0; i < r->nxa; i++)
        free(r->xa[i]);
    free(r->xa);
    r->xa = NULL;
    r->nxa = 0;
}

/* The xid of a prepared branch as the binlog's XA statements print it: X'gtrid',X'bqual',N
 * (malloc'd; NULL when out of memory). */
static char *xa_text(const sl_bl_xa_prepare *x)
{
    sl_sbuf b;
    sl_sbuf_init(&b);
    sl_sbuf_add_hex(&b, x->gtrid, x->gtrid_len);
    sl_sbuf_adds(&b, ",");
    if (x->bqual_len)
        sl_sbuf_add_hex(&b, x->bqual, x->bqual_len);
    else
        sl_sbuf_adds(&b, "X''");            /* as MariaDB prints an empty bqual (not '') */
    sl_sbuf_addf(&b, ",%d", (int)x->format_id);
    if (b.oom) {
        sl_sbuf_free(&b);
        return NULL;
    }
    return b.p;
}

/* Index of xid (len bytes) in the remembered set, or -1. */
static ssize_t xa_find(const br *r, const char *xid, size_t len)
{
    for (size_t i = 0; i < r->nxa; i++)
        if (strlen(r->xa[i]) == len && !strncasecmp(r->xa[i], xid, len))
            return (ssize_t)i;
    return -1;
}

static void xa_remember(br *r, char *xid)
{
    if (xa_find(r, xid, strlen(xid)) >= 0) {     /* kept by an earlier run, read again */
        free(xid);
        return;
    }
    if (r->nxa == BR_XA_MAX) {
        r->host->log(r->ctx, SL_LOG_WARN, "binlog-reader: more than %d XA transactions prepared "
                     "and not yet ended: an XA ROLLBACK of %s would no longer be noticed",
                     BR_XA_MAX, r->xa[0]);
        free(r->xa[0]);
        memmove(r->xa, r->xa + 1, (r->nxa - 1) * sizeof *r->xa);
        r->nxa--;
    }
    if (!r->xa && !(r->xa = malloc(BR_XA_MAX * sizeof *r->xa))) {
        free(xid);
        return;
    }
    r->xa[r->nxa++] = xid;
    r->xa_dirty = 1;
}

/* Keep the remembered set in the host's state: 0, or the reader's failure. */
static int xa_keep(br *r)
{
    sl_sbuf b;
    sl_sbuf_init(&b);
    for (size_t i = 0; i < r->nxa; i++)
        sl_sbuf_addf(&b, "%s\n", r->xa[i]);
    if (b.oom) {
        sl_sbuf_free(&b);
        return r->host->fail(r->ctx, SL_ENOMEM, "out of memory");
    }
    int rc = r->host->state_put(r->ctx, XA_STATE_KEY, b.p ? b.p : "");
    sl_sbuf_free(&b);
    if (rc < 0 && rc != SL_ENOTSUP)      /* a host without state: remembered for this run only */
        return r->host->fail(r->ctx, rc, "binlog-reader: cannot keep the XA transactions applied "
                             "at their prepare in the task's state (%d)", rc);
    r->xa_dirty = 0;
    return 0;
}

void br_xa_restore(br *r, int fresh)
{
    br_xa_free(r);
    r->xa_dirty = 0;
    char *kept = r->host->state_get(r->ctx, XA_STATE_KEY);
    if (!kept)
        return;
    if (fresh) {
        /* no checkpoint past the snapshot: every prepare since is read again */
        r->xa_dirty = kept[0] != '\0';
    } else {
        for (char *line = kept, *nl; *line; line = nl + 1) {
            if (!(nl = strchr(line, '\n')))
                break;
            char *xid = nl > line ? strndup(line, (size_t)(nl - line)) : NULL;
            if (xid)
                xa_remember(r, xid);
        }
        r->xa_dirty = 0;
        if (r->nxa)
            r->host->log(r->ctx, SL_LOG_INFO, "binlog-reader: %zu XA transaction(s) applied at "
                         "their prepare and not yet ended (first: %s)", r->nxa, r->xa[0]);
    }
    r->host->free(kept);
}

/* 1 when xid (the text after XA COMMIT/ROLLBACK) was applied at its prepare; it is forgotten. */
static int xa_take(br *r, const char *xid, size_t len)
{
    while (len && (xid[len - 1] == ' ' || xid[len - 1] == ';'))
        len--;
    ssize_t i = xa_find(r, xid, len);
    if (i < 0)
        return 0;
    free(r->xa[i]);
    memmove(r->xa + i, r->xa + i + 1, (r->nxa - (size_t)i - 1) * sizeof *r->xa);
    r->nxa--;
    r->xa_dirty = 1;
    return 1;
}

/* XA COMMIT or XA ROLLBACK (sql after the two words): 0, or the reader's stop at a rollback
 * of a branch applied at its prepare. */
static int on_xa_end(br *r, const sl_bl_header *h, int rollback, const char *sql, size_t len,
                     sl_error *err)
{
    while (len && (*sql == ' ' || *sql == '\t' || *sql == '\n')) {
        sql++;
        len--;
    }
    int applied = xa_take(r, sql, len);
    /* forgotten in the state too, so that the resume after the repair goes on past it */
    if (rollback && applied && xa_keep(r) < 0)
        return sl_error_set(err, SL_EIO, "binlog-reader: cannot keep the XA transactions' state");
    if (rollback && applied)
        return sl_error_set(err, SL_ENOTSUP, "XA ROLLBACK %.*s at %s:%u: the source rolled back "
                            "a prepared XA transaction whose rows were applied at its XA PREPARE "
                            "(the target is not a participant of the source's XA transactions), so "
                            "the target holds rows the source does not. Undo that transaction's "
                            "rows on the target (mariadb-binlog shows them before this position), "
                            "then resume the task: it goes on after the rollback",
                            (int)(len > 200 ? 200 : len), sql, r->file, h->next_pos);
    if (!applied)
        r->host->log(r->ctx, rollback ? SL_LOG_INFO : SL_LOG_DEBUG, "binlog-reader: XA %s %.*s "
                     "at %s:%u ends a transaction this task did not apply at its prepare (prepared "
                     "before the task's start position, or writing no table it selects)",
                     rollback ? "ROLLBACK" : "COMMIT", (int)(len > 200 ? 200 : len), sql, r->file,
                     h->next_pos);
    return 0;
}

/* A DDL's sql_mode holds modes that change what it means but that sl_event.ddl_mode does not
 * carry (its eight bits are spent on those that change how the text reads or what a type or an
 * expression is): say so when it names a selected table; the target runs it without them. */
static void unread_modes(br *r, const sl_bl_header *h, const sl_bl_query *q, unsigned mode)
{
    char *schema = q->db_len ? strndup(q->db, q->db_len) : NULL;
    sl_ddl d;
    int selected = 0;
    if (sl_ddl_parse(q->sql, q->sql_len, schema, mode, &d) == 0)
        for (size_t i = 0; i < d.nnames && !selected; i++)
            selected = sl_rules_find(r->rules, d.names[i].schema, d.names[i].table) >= 0;
    sl_ddl_free(&d);
    free(schema);
    if (!selected)
        return;
    int esn = (q->sql_mode & SL_BL_MODE_EMPTY_STRING_IS_NULL) != 0;
    int trf = (q->sql_mode & SL_BL_MODE_TIME_ROUND_FRACTIONAL) != 0;
    r->host->log(r->ctx, SL_LOG_WARN, "binlog-reader: the DDL at %s:%u ran with sql_mode %s%s%s, "
                 "which the target does not apply it with (%s%s%s): compare the table on the "
                 "target: %.*s", r->file, h->next_pos, esn ? "EMPTY_STRING_IS_NULL" : "",
                 esn && trf ? "," : "", trf ? "TIME_ROUND_FRACTIONAL" : "",
                 esn ? "a '' in it is NULL on the source" : "", esn && trf ? "; " : "",
                 trf ? "a temporal literal's extra fraction digits round there" : "",
                 (int)(q->sql_len > 200 ? 200 : q->sql_len), q->sql);
}

static int on_query(br *r, const sl_bl_header *h, const uint8_t *body, size_t blen,
                    sl_error *err)
{
    sl_bl_query q;
    int rc = h->type == SL_BL_EXECUTE_LOAD_QUERY
                 ? sl_bl_parse_execute_load_query(&r->fmt, body, blen, &q, err)
                 : sl_bl_parse_query(&r->fmt, body, blen, &q, err);
    if (rc < 0)
        return rc;
    if (eq_word(q.sql, q.sql_len, "BEGIN")) {
        if (!r->in_txn && (rc = txn_begin(r, h, 0)) < 0)
            return sl_error_set(err, rc, "out of memory");
        r->explicit_begin = 1;
        return 0;
    }
    int xa_commit = starts_word(q.sql, q.sql_len, "XA COMMIT");
    if (xa_commit || starts_word(q.sql, q.sql_len, "XA ROLLBACK")) {
        size_t off = 0;           /* after the two words, as starts_word matched them */
        while (off < q.sql_len && strchr(" \t\n\r", q.sql[off]))
            off++;
        off += strlen(xa_commit ? "XA COMMIT" : "XA ROLLBACK");
        if (!r->replay_skip &&
            (rc = on_xa_end(r, h, !xa_commit, q.sql + off, q.sql_len - off, err)) < 0)
            return rc;
        return txn_commit(r, h);
    }
    if (eq_word(q.sql, q.sql_len, "COMMIT") || eq_word(q.sql, q.sql_len, "ROLLBACK"))
        return txn_commit(r, h);
    if (starts_word(q.sql, q.sql_len, "XA START") || starts_word(q.sql, q.sql_len, "XA END") ||
        starts_word(q.sql, q.sql_len, "SAVEPOINT") ||
        starts_word(q.sql, q.sql_len, "ROLLBACK TO")) {
        if (!r->in_txn && (rc = txn_begin(r, h, 0)) < 0)
            return sl_error_set(err, rc, "out of memory");
        r->explicit_begin = 1;
        return 0;
    }
    /* Anything else is a statement: DDL (or DCL) that the filter and the sink judge, or rows
     * written as a statement (a session in binlog_format STATEMENT or MIXED), which the sink
     * refuses when the filter keeps it (ddl.h, writes_rows). */
    int standalone = !r->in_txn || !r->explicit_begin;
    if (!r->in_txn && (rc = txn_begin(r, h, 0)) < 0)
        return sl_error_set(err, rc, "out of memory");
    if (standalone)
        r->txn_ddl = 1;
    /* the modes of the session's sql_mode that change how the text reads travel with it */
    unsigned mode = sl_bl_ddl_mode(&r->fmt, q.sql_mode);
    /* an online schema change tool's statement moves its migration only, or (the cut-over)
     * becomes the ALTER of the real table, already tracked */
    char *osc_sql = NULL;
    unsigned osc_mode = 0;
    int osc = r->replay_skip ? 0 : br_osc_ddl(r, q.db, q.db_len, q.sql, q.sql_len, mode,
                                              h->next_pos, &osc_sql, &osc_mode, err);
    if (osc < 0)
        return osc;
    if (osc != BR_OSC_CONSUMED && !replayed(r)) {
        /* the tracked structures move with the statement before it leaves the reader */
        if (!osc && (rc = br_track_ddl(r, q.db, q.db_len, q.sql, q.sql_len, mode, h->next_pos,
                                       err)) < 0)
            return rc;
        if (q.sql_mode & (SL_BL_MODE_EMPTY_STRING_IS_NULL | SL_BL_MODE_TIME_ROUND_FRACTIONAL))
            unread_modes(r, h, &q, mode);
        sl_event *ev = put(r, SL_EV_DDL, h->next_pos);
        if (!ev) {
            free(osc_sql);
            return SL_ENOMEM;
        }
        char *db = r->host->batch_strndup(r->b, q.db, q.db_len);
        char *sql = osc_sql ? r->host->batch_strndup(r->b, osc_sql, strlen(osc_sql))
                            : r->host->batch_strndup(r->b, q.sql, q.sql_len);
        free(osc_sql);
        if (!db || !sql)
            return r->host->fail(r->ctx, SL_ENOMEM, "out of memory");
        ev->schema = q.db_len ? db : NULL;
        ev->ddl_schema = ev->schema;
        ev->ddl = sql;
        ev->ddl_mode = (uint8_t)(osc_sql ? osc_mode : mode);
        ev->commit_ts = h->timestamp;
    }
    if (standalone)
        return txn_commit(r, h);
    return maybe_flush_full(r);
}

static int on_table_map(br *r, const uint8_t *body, size_t blen, sl_error *err)
{
    sl_bl_table_map *m;
    int rc = sl_bl_parse_table_map(&r->fmt, body, blen, &m, err);
    if (rc < 0)
        return rc;
    br_table *t = table_get(r, m->schema, m->table);
    if (!t) {
        sl_bl_table_map_free(m);
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    }
    if (!t->selected) {
        sl_bl_table_map_free(m);
    } else if (t->map && t->map->sig_len == m->sig_len &&
               !memcmp(t->map->sig, m->sig, m->sig_len)) {
        sl_bl_table_map_free(m);
    } else {
        /* names, signedness, charsets, ENUM/SET labels and the key from the tracked structure
         * when the source's binlog_row_metadata leaves them out; checked when it does not */
        if ((rc = br_track_fill(r, t, m, err)) < 0) {
            sl_bl_table_map_free(m);
            return rc;
        }
        sl_table *meta = make_meta(r, m, t->version + 1);
        if (!meta) {
            sl_bl_table_map_free(m);
            return sl_error_set(err, SL_ENOMEM, "out of memory");
        }
        if (t->meta)
            r->host->table_unref(t->meta);
        sl_bl_table_map_free(t->map);
        t->meta = meta;
        t->map = m;
        t->version++;
    }
    uint64_t id;
    if (sl_bl_table_id(&r->fmt, SL_BL_TABLE_MAP, body, blen, &id) < 0)
        return sl_error_set(err, SL_EINVAL, "bad TABLE_MAP");
    if (tid_set(r, id, t) < 0)
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    return 0;
}

static void *batch_alloc_cb(void *ud, size_t n)
{
    br *r = ud;
    return r->host->batch_alloc(r->b, n);
}

static void *scratch_alloc_cb(void *ud, size_t n)
{
    br *r = ud;
    if (n > r->scratch_cap) {
        void *p = realloc(r->scratch, n);
        if (!p)
            return NULL;
        r->scratch = p;
        r->scratch_cap = n;
    }
    return r->scratch;
}

static int on_rows(br *r, const sl_bl_header *h, const uint8_t *body, size_t blen,
                   sl_error *err)
{
    uint64_t id;
    if (sl_bl_table_id(&r->fmt, h->type, body, blen, &id) < 0)
        return sl_error_set(err, SL_EINVAL, "row event too short");
    br_table *t = tid_get(r, id);
    if (!t)
        return sl_error_set(err, SL_EINVAL, "row event for table id %llu without a table map "
                            "(at %s:%u)", (unsigned long long)id, r->file, h->next_pos);
    if (!t->selected)
        return 0;
    if (!r->in_txn) {
        int rc = txn_begin(r, h, 0);
        if (rc < 0)
            return sl_error_set(err, rc, "out of memory");
    }
    sl_bl_rows rows;
    int rc = sl_bl_rows_init(&r->fmt, h->type, body, blen, &rows, err);
    if (rc < 0)
        return rc;
    const sl_bl_table_map *m = t->map;
    uint32_t n = m->ncols;
    for (;;) {
        if (r->replay_skip) {
            sl_value *tmp = calloc(2 * (size_t)n, sizeof *tmp);
            if (!tmp)
                return sl_error_set(err, SL_ENOMEM, "out of memory");
            rc = sl_bl_rows_next(&rows, m, scratch_alloc_cb, r, tmp, tmp + n, err);
            free(tmp);
            if (rc <= 0)
                return rc;
            replayed(r);
            continue;
        }
        if (rows.p >= rows.end)
            return 0;
        if (!batch(r))
            return SL_ENOMEM;
        sl_value *before = NULL, *after = NULL;
        if (rows.kind != SL_EV_INSERT &&
            !(before = r->host->batch_alloc(r->b, n * sizeof *before)))
            return sl_error_set(err, SL_ENOMEM, "out of memory");
        if (rows.kind != SL_EV_DELETE &&
            !(after = r->host->batch_alloc(r->b, n * sizeof *after)))
            return sl_error_set(err, SL_ENOMEM, "out of memory");
        rc = sl_bl_rows_next(&rows, m, batch_alloc_cb, r, before, after, err);
        if (rc <= 0)
            return rc;
        sl_event *ev = put(r, (sl_event_kind)rows.kind, h->next_pos);
        if (!ev)
            return SL_ENOMEM;
        ev->schema = t->meta->schema;
        ev->table = t->meta->name;
        ev->ncols = n;
        ev->before = before;
        ev->after = after;
        r->host->batch_set_meta(r->b, ev, t->meta);
        if ((rc = maybe_flush_full(r)) < 0)
            return rc;
    }
}

int br_handle_event(br *r, const uint8_t *ev, size_t len, sl_error *err)
{
    sl_bl_header h;
    int rc = sl_bl_header_parse(ev, len, &h, err);
    if (rc < 0)
        return rc;
    len = h.event_len;
    r->n_events++;
    r->n_bytes += len;
    int artificial = (h.flags & SL_BL_LOG_EVENT_ARTIFICIAL_F) || h.next_pos == 0;
    if (h.type == SL_BL_FORMAT_DESCRIPTION) {
        rc = sl_bl_parse_fde(ev, len, r->cfg->verify_checksum, &r->fmt, err);
        if (rc < 0)
            return rc;
        if (!artificial)
            r->pos = h.next_pos;
        return 0;
    }
    const uint8_t *body;
    size_t blen;
    rc = sl_bl_event_body(&r->fmt, ev, len, r->cfg->verify_checksum, &body, &blen, err);
    if (rc < 0)
        return rc;
    int64_t now_ms = br_now_ms();
    pthread_mutex_lock(&r->mu);
    r->st_contact_ms = now_ms;
    if (h.timestamp && h.type != SL_BL_HEARTBEAT && !artificial) {
        int64_t behind = now_ms / 1000 - (int64_t)h.timestamp;
        r->st_behind = behind > 0 ? behind : 0;
    }
    pthread_mutex_unlock(&r->mu);
    switch (h.type) {
    case SL_BL_ROTATE: {
        uint64_t pos;
        const char *name;
        size_t nl;
        if ((rc = sl_bl_parse_rotate(&r->fmt, body, blen, &pos, &name, &nl, err)) < 0)
            return rc;
        if (nl >= sizeof r->file)
            return sl_error_set(err, SL_EINVAL, "binlog file name too long");
        memcpy(r->file, name, nl);
        r->file[nl] = '\0';
        r->pos = pos;
        r->b_file = NULL;
        if (!r->commit_file[0]) {
            /* A dump started from a GTID learns its file here. */
            snprintf(r->commit_file, sizeof r->commit_file, "%s", r->file);
            r->commit_pos = pos;
        }
        return 0;
    }
    case SL_BL_HEARTBEAT:
        pthread_mutex_lock(&r->mu);
        r->st_behind = 0;
        pthread_mutex_unlock(&r->mu);
        publish_read_pos(r);
        return on_heartbeat(r, &h, body, blen);
    case SL_BL_GTID: {
        if (r->in_txn && (r->txn_put || r->explicit_begin))
            return sl_error_set(err, SL_EINVAL, "GTID event inside a transaction at %s:%u",
                                r->file, h.next_pos);
        if ((rc = sl_bl_parse_gtid(body, blen, &r->txg, err)) < 0)
            return rc;
        r->txg_server = h.server_id;
        r->has_txg = 1;
        rc = txn_begin(r, &h, 1);
        if (rc < 0)
            return sl_error_set(err, rc, "out of memory");
        if (r->txg.flags & SL_BL_FL_STANDALONE)
            r->txn_ddl = 1;
        break;
    }
    case SL_BL_GTID_LIST: {
        /* The binlog state at the start of a file: fill domains not seen yet. */
        sl_bl_gtid_set s = { 0 };
        rc = sl_bl_parse_gtid_list(body, blen, &s, err);
        for (uint32_t i = 0; rc == 0 && i < s.n; i++) {
            int known = 0;
            for (uint32_t k = 0; k < r->gtid.n; k++)
                known |= r->gtid.v[k].domain == s.v[i].domain;
            if (!known && sl_bl_gtid_set_update(&r->gtid, s.v[i].domain, s.v[i].server,
                                                s.v[i].seq) < 0)
                rc = sl_error_set(err, SL_ENOMEM, "out of memory");
        }
        sl_bl_gtid_set_free(&s);
        if (rc < 0)
            return rc;
        break;
    }
    case SL_BL_QUERY:
    case SL_BL_EXECUTE_LOAD_QUERY:  /* a LOAD DATA as a statement: the sink refuses it */
        if ((rc = on_query(r, &h, body, blen, err)) < 0)
            return rc;
        break;
    case SL_BL_XA_PREPARE:
        /* XA: the prepared branch is applied as a whole at its prepare (see on_xa_end). A
         * one-phase commit (first byte) ends nothing later. */
        sl_bl_xa_prepare x;
        char *xid;
        if (r->begin_put && sl_bl_parse_xa_prepare(body, blen, &x, err) == 0 && !x.one_phase &&
            (xid = xa_text(&x)) != NULL)
            xa_remember(r, xid);
        memset(err, 0, sizeof *err);    /* an xid it cannot read is only not remembered */
        if ((rc = txn_commit(r, &h)) < 0)
            return rc;
        break;
    case SL_BL_XID:
        if ((rc = txn_commit(r, &h)) < 0)
            return rc;
        break;
    case SL_BL_TABLE_MAP:
        if ((rc = on_table_map(r, body, blen, err)) < 0)
            return rc;
        break;
    case SL_BL_QUERY_COMPRESSED:
        return sl_error_set(err, SL_ENOTSUP, "compressed binlog events are not supported: set "
                            "log_bin_compress=OFF on the source");
    case SL_BL_PARTIAL_UPDATE_ROWS:
        return sl_error_set(err, SL_ENOTSUP, "partial JSON updates are not supported: set "
                            "binlog_row_value_options='' on the source");
    case SL_BL_INCIDENT:
        return sl_error_set(err, SL_EINVAL, "the source wrote an INCIDENT event at %s:%u: "
                            "its binlog has a gap", r->file, h.next_pos);
    default:
        if (sl_bl_is_rows_event(h.type)) {
            if ((rc = on_rows(r, &h, body, blen, err)) < 0)
                return rc;
        }
        /* ANNOTATE_ROWS, BINLOG_CHECKPOINT, INTVAR, RAND, USER_VAR, STOP, MySQL's
         * PREVIOUS_GTIDS/ROWS_QUERY/...: nothing to apply in ROW format. */
        break;
    }
    if (!artificial)
        r->pos = h.next_pos;
    return 0;
}
