/*
 * test_sink.c - mysql-sink against the sandbox target, in-process through core's pipeline
 * runtime: a memory source (this file) replays a deterministic stream of transactions (rows on
 * a table with a primary key and a unique key, a big transaction spanning batches, a DDL
 * mid-stream) with checkpoint-aware restart, like the binlog reader. Checks: the target equals
 * a model of the stream; the type matrix; and, for each crash point of the sink
 * (SLUICE_SINK_FAILPOINT), a child process killed there and a restart give the same target
 * with no row lost or applied twice and no prepared XA branch left. And a tail that puts no row
 * on the target (dropped rows, an empty batch, a dropped DDL inside a big transaction): its
 * progress is checkpointed at stop, and a heartbeat makes the sink synced. And a target that
 * stops answering (a proxy that holds every byte, as a partition does): the sink's read_timeout
 * pauses it, and the next run, through new connections while the old ones still hang, kills
 * the old sessions before it reads the checkpoint and applies the stream once, a DDL slower
 * than the timeout included.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "testlib.h"

/* A target connection in UTC (the matrix's TIMESTAMP values). */
static MYSQL *tconn(void)
{
    MYSQL *db = tl_connect("TARGET");
    tl_sql(db, "SET time_zone='+00:00'");
    return db;
}

/* The commit position of the sink's checkpoint, 0 without one (no table yet on a first run). */
static uint64_t ckpt_commit_pos(void)
{
    MYSQL *db = tconn();
    char file[256];
    unsigned long long pos = 0;
    if (!tl_syncer_ckpt(db, "sinktask", file, sizeof file, &pos))
        pos = 0;
    mysql_close(db);
    return pos;
}

/* ---- the workload ------------------------------------------------------------------------ */

#define NTXN   400      /* transactions */
#define BIGTXN 150      /* this one holds BIGROWS rows and spans several batches */
#define BIGROWS 2500
#define DDLTXN 250      /* this "transaction" is a DDL: CREATE TABLE t2 LIKE t1 */
#define BIGBASE 100000

static uint64_t commit_pos(int i) { return 1000 + (uint64_t)i * 100; }

/* the model of the target after txn 0..n-1 */
typedef struct model { int exists[BIGBASE + BIGROWS]; int64_t v[BIGBASE + BIGROWS]; int t2[NTXN]; } model;

/* Row changes of txn i given the model before it (and applied to it): (kind, id, old v, new v). */
typedef struct rowop { int kind; int id; int64_t oldv, newv; int t2; } rowop;

static int txn_rows(model *m, int i, rowop *out)
{
    int n = 0;
    if (i == DDLTXN)
        return 0;
    if (i == BIGTXN) {
        for (int k = 0; k < BIGROWS; k++) {
            out[n++] = (rowop){ SL_EV_INSERT, BIGBASE + k, 0, k, 0 };
            m->exists[BIGBASE + k] = 1;
            m->v[BIGBASE + k] = k;
        }
        return n;
    }
    out[n++] = (rowop){ SL_EV_INSERT, i + 1, 0, i, 0 };
    m->exists[i + 1] = 1;
    m->v[i + 1] = i;
    int u = i / 2 + 1;
    if (i > 2 && m->exists[u]) {
        out[n++] = (rowop){ SL_EV_UPDATE, u, m->v[u], m->v[u] + i, 0 };
        m->v[u] += i;
    }
    if (i % 7 == 6 && i > 3 && m->exists[i - 2]) {
        out[n++] = (rowop){ SL_EV_DELETE, i - 2, m->v[i - 2], 0, 0 };
        m->exists[i - 2] = 0;
    }
    if (i > DDLTXN) {
        out[n++] = (rowop){ SL_EV_INSERT, i, 0, (int64_t)i * 3, 1 };
        m->t2[i] = 1;
    }
    return n;
}

/* ---- the memory source ------------------------------------------------------------------- */

typedef struct msrc_cfg {
    char *host; int64_t port; char *user, *password; int64_t per_batch, pause_at; int like_t3;
} msrc_cfg;

/* pause_at: the source, at that transaction, says so in src_waiting and waits for src_gate */
static atomic_int src_gate, src_waiting;

static const sl_option msrc_opts[] = {
    { .name = "host", .type = SL_OPT_STRING, .def = "\"127.0.0.1\"", .offset = offsetof(msrc_cfg, host) },
    { .name = "port", .type = SL_OPT_INT, .def = "3306", .offset = offsetof(msrc_cfg, port), .min = 1, .max = 65535 },
    { .name = "user", .type = SL_OPT_STRING, .def = "\"root\"", .offset = offsetof(msrc_cfg, user) },
    { .name = "password", .type = SL_OPT_STRING, .def = "\"\"", .offset = offsetof(msrc_cfg, password), .flags = SL_OPTF_SECRET },
    { .name = "per_batch", .type = SL_OPT_INT, .def = "25", .offset = offsetof(msrc_cfg, per_batch), .min = 1, .max = 100000 },
    { .name = "pause_at", .type = SL_OPT_INT, .def = "-1", .offset = offsetof(msrc_cfg, pause_at), .min = -1, .max = NTXN },
    /* the DDL is CREATE TABLE t2 LIKE t3 (a copy of t1 the test makes, and locks to hold it) */
    { .name = "like_t3", .type = SL_OPT_BOOL, .def = "false", .offset = offsetof(msrc_cfg, like_t3) },
    { .name = NULL },
};

typedef struct msrc { const sl_host *host; sl_ctx *ctx; const msrc_cfg *cfg; sl_table *t; int from; model m; } msrc;

/* t1 (id INT PK, v BIGINT, u VARCHAR(32) UNIQUE) */
static sl_table *t1_table(const sl_host *host)
{
    sl_table *t = host->table_new(3);
    t->schema = host->table_strdup(t, "sinkt");
    t->name = host->table_strdup(t, "t1");
    const char *names[3] = { "id", "v", "u" };
    for (int c = 0; c < 3; c++) t->cols[c].name = host->table_strdup(t, names[c]);
    t->cols[0].flags = SL_COL_PK;
    t->cols[2].flags = SL_COL_UNIQUE | SL_COL_NULLABLE;
    t->cols[2].charset = 45;
    t->npk = 1;
    t->pk = host->table_alloc(t, sizeof(uint32_t));
    t->pk[0] = 0;
    t->nkeys = 1;
    t->keys = host->table_alloc(t, sizeof(uint32_t *));
    t->keys[0] = host->table_alloc(t, 2 * sizeof(uint32_t));
    t->keys[0][0] = 2;
    t->keys[0][1] = UINT32_MAX;
    return t;
}

static int msrc_create(const sl_host *host, sl_ctx *ctx, const void *config, void **self)
{
    msrc *s = host->calloc(1, sizeof *s);
    s->host = host;
    s->ctx = ctx;
    s->cfg = config;
    s->t = t1_table(host);
    *self = s;
    return 0;
}

/* Where to start: after the checkpointed commit position, as the binlog reader does. */
static int msrc_start(void *self)
{
    msrc *s = self;
    uint64_t p = ckpt_commit_pos();
    s->from = 0;
    while (p && s->from < NTXN && commit_pos(s->from) <= p)
        s->from++;
    return 0;
}

static sl_value *image_h(const sl_host *h, sl_batch *b, int id, int64_t v)
{
    sl_value *x = h->batch_alloc(b, 3 * sizeof *x);
    x[0] = sl_value_int(id);
    x[1] = sl_value_int(v);
    char *u = h->batch_alloc(b, 24);
    int n = snprintf(u, 24, "u%d", id);
    x[2] = sl_value_str(SL_V_STRING, u, (uint32_t)n, 45);
    return x;
}

static sl_value *image(msrc *s, sl_batch *b, int id, int64_t v) { return image_h(s->host, b, id, v); }

static void ev_pos(sl_event *e, uint64_t off) { e->pos.file = "mysql-bin.000001"; e->pos.offset = off; }

static int msrc_run(void *self)
{
    msrc *s = self;
    static rowop ops[BIGROWS + 8];
    sl_batch *b = NULL;
    int in_batch = 0;
    memset(&s->m, 0, sizeof s->m);
    for (int i = 0; i < s->from; i++)
        txn_rows(&s->m, i, ops);
    for (int i = s->from; i < NTXN; i++) {
        if (s->host->should_stop(s->ctx)) {
            if (b) s->host->batch_unref(b);
            return SL_ESTOPPED;
        }
        if (i == s->cfg->pause_at) {
            if (b) {
                b->flags |= SL_BATCH_TXN_END;
                b->ckpt.file = "mysql-bin.000001";
                b->ckpt.offset = commit_pos(i - 1);
                if (s->host->emit(s->ctx, b) < 0) return SL_ESTOPPED;
                b = NULL;
                in_batch = 0;
            }
            atomic_store(&src_waiting, 1);
            while (!atomic_load(&src_gate) && !s->host->should_stop(s->ctx))
                usleep(10000);
        }
        if (!b) b = s->host->batch_new(s->ctx, 64);
        if (i == DDLTXN) {
            sl_event *e = s->host->batch_push(b, SL_EV_DDL);
            e->schema = "sinkt";
            e->ddl_schema = "sinkt";
            e->target_schema = "sinkt";
            e->target_table = "t2";
            e->ddl = s->cfg->like_t3 ? "CREATE TABLE t2 LIKE t3" : "CREATE TABLE t2 LIKE t1";
            ev_pos(e, commit_pos(i));
        } else {
            int n = txn_rows(&s->m, i, ops);
            sl_event *bg = s->host->batch_push(b, SL_EV_BEGIN);
            ev_pos(bg, commit_pos(i) - 90);
            for (int k = 0; k < n; k++) {
                if (i == BIGTXN && k > 0 && k % 1000 == 0) {
                    /* the big transaction continues in the next batch (no TXN_END) */
                    if (s->host->emit(s->ctx, b) < 0) return SL_ESTOPPED;
                    b = s->host->batch_new(s->ctx, 64);
                }
                rowop *o = &ops[k];
                sl_event *e = s->host->batch_push(b, (sl_event_kind)o->kind);
                e->schema = "sinkt";
                e->table = o->t2 ? "t2" : "t1";
                e->target_schema = "sinkt";
                e->target_table = e->table;
                e->ncols = 3;
                s->host->batch_set_meta(b, e, s->t);
                ev_pos(e, commit_pos(i) - 50);
                if (o->kind != SL_EV_INSERT) e->before = image(s, b, o->id, o->oldv);
                if (o->kind != SL_EV_DELETE) e->after = image(s, b, o->id, o->newv);
            }
            sl_event *c = s->host->batch_push(b, SL_EV_COMMIT);
            ev_pos(c, commit_pos(i));
        }
        if (++in_batch >= s->cfg->per_batch || i == NTXN - 1 || i == BIGTXN) {
            b->flags |= SL_BATCH_TXN_END;
            b->ckpt.file = "mysql-bin.000001";
            b->ckpt.offset = commit_pos(i);
            if (s->host->emit(s->ctx, b) < 0) return SL_ESTOPPED;
            b = NULL;
            in_batch = 0;
        }
    }
    return SL_DONE;
}

static void msrc_destroy(void *self)
{
    msrc *s = self;
    s->host->table_unref(s->t);
    s->host->free(s);
}

static const sl_plugin_descriptor msrc_desc = {
    .abi_version = SL_ABI_VERSION, .struct_size = sizeof(sl_plugin_descriptor),
    .name = "sync-test-source", .kind = SL_PLUGIN_SOURCE, .description = "test stream",
    .options = msrc_opts, .config_size = sizeof(msrc_cfg),
    .create = msrc_create, .start = msrc_start, .run = msrc_run, .destroy = msrc_destroy,
};


/* ---- a type matrix source: one insert, one update, one delete per type row ---------------- */

static sl_value tv(int type) { sl_value v = {0}; v.type = (uint8_t)type; return v; }

#define NMCOLS 19
static const char *const mcol[NMCOLS] = { "id", "i", "bu", "de", "f", "d", "dt", "tm", "dtm", "ts",
    "y", "s", "l", "vb", "bl", "js", "bt", "en", "st" };

static void matrix_row(const sl_host *h, sl_batch *b, sl_value *x, int id)
{
    x[0] = sl_value_int(id);
    x[1] = sl_value_int(-2147483648LL + id);
    x[2] = sl_value_uint(UINT64_MAX - (uint64_t)id);
    x[3] = sl_value_str(SL_V_DECIMAL, "-1234567890.0123", 16, 0);
    x[4] = tv(SL_V_FLOAT); x[4].v.f = 1.1f;
    x[5] = sl_value_double(0.1 + id);
    x[6] = tv(SL_V_DATE); x[6].v.t.year = 2024; x[6].v.t.month = 2; x[6].v.t.day = 29;
    x[7] = tv(SL_V_TIME); x[7].dec = 3; x[7].v.t.neg = 1; x[7].v.t.hour = 838; x[7].v.t.minute = 59;
    x[7].v.t.second = 58; x[7].v.t.usec = 123000;
    x[8] = tv(SL_V_DATETIME); x[8].dec = 6; x[8].v.t.year = 1000; x[8].v.t.month = 1; x[8].v.t.day = 1;
    x[8].v.t.usec = 1;
    x[9] = tv(SL_V_TIMESTAMP); x[9].dec = 2; x[9].v.ts.sec = 1700000000; x[9].v.ts.usec = 450000;
    x[10] = tv(SL_V_YEAR); x[10].v.i = 2155;
    x[11] = sl_value_str(SL_V_STRING, "it's \\ \xf0\x9f\x90\xac", 11, 45);
    x[12] = sl_value_str(SL_V_STRING, "caf\xe9", 4, 8);
    x[13] = sl_value_str(SL_V_BINARY, "\0\x01\xff'", 4, 63);
    x[14] = sl_value_str(SL_V_BINARY, "blob\0data", 9, 63);
    x[15] = sl_value_str(SL_V_JSON, "{\"k\": [1, \"v\"]}", 15, 45);
    x[16] = tv(SL_V_BIT); x[16].bits = 5; x[16].v.u = 21;
    x[17] = tv(SL_V_ENUM); x[17].v.e.u = 2; x[17].v.e.s = "green"; x[17].len = 5; x[17].charset = 45;
    x[18] = tv(SL_V_SET); x[18].v.e.u = 5; x[18].v.e.s = "a,c"; x[18].len = 3; x[18].charset = 45;
    (void)h; (void)b;
}

typedef struct mx { const sl_host *host; sl_ctx *ctx; sl_table *t; int done; } mx;

static int mx_create(const sl_host *host, sl_ctx *ctx, const void *config, void **self)
{
    mx *s = host->calloc(1, sizeof *s);
    s->host = host;
    s->ctx = ctx;
    sl_table *t = host->table_new(NMCOLS);
    t->schema = host->table_strdup(t, "sinkt");
    t->name = host->table_strdup(t, "m");
    for (int c = 0; c < NMCOLS; c++) t->cols[c].name = host->table_strdup(t, mcol[c]);
    t->cols[0].flags = SL_COL_PK;
    t->npk = 1;
    t->pk = host->table_alloc(t, sizeof(uint32_t));
    t->pk[0] = 0;
    s->t = t;
    *self = s;
    return 0;
}

static int mx_start(void *self) { return 0; }

static sl_event *mx_ev(mx *s, sl_batch *b, int kind, uint64_t pos)
{
    sl_event *e = s->host->batch_push(b, (sl_event_kind)kind);
    e->schema = e->target_schema = "sinkt";
    e->table = e->target_table = "m";
    e->ncols = NMCOLS;
    s->host->batch_set_meta(b, e, s->t);
    e->pos.file = "mysql-bin.000009";
    e->pos.offset = pos;
    return e;
}

static int mx_run(void *self)
{
    mx *s = self;
    if (s->done)
        return SL_DONE;
    sl_batch *b = s->host->batch_new(s->ctx, 16);
    /* txn 1: rows 1..3; txn 2: update row 2 (new id 20), delete row 3 */
    for (int id = 1; id <= 3; id++) {
        sl_event *e = mx_ev(s, b, SL_EV_INSERT, 100);
        e->after = s->host->batch_alloc(b, NMCOLS * sizeof(sl_value));
        matrix_row(s->host, b, e->after, id);
    }
    mx_ev(s, b, SL_EV_COMMIT, 100);
    sl_event *u = mx_ev(s, b, SL_EV_UPDATE, 200);
    u->before = s->host->batch_alloc(b, NMCOLS * sizeof(sl_value));
    u->after = s->host->batch_alloc(b, NMCOLS * sizeof(sl_value));
    matrix_row(s->host, b, u->before, 2);
    matrix_row(s->host, b, u->after, 20);
    sl_event *d = mx_ev(s, b, SL_EV_DELETE, 200);
    d->before = s->host->batch_alloc(b, NMCOLS * sizeof(sl_value));
    matrix_row(s->host, b, d->before, 3);
    mx_ev(s, b, SL_EV_COMMIT, 200);
    b->flags |= SL_BATCH_TXN_END;
    b->ckpt.file = "mysql-bin.000009";
    b->ckpt.offset = 200;
    s->done = 1;
    if (s->host->emit(s->ctx, b) < 0)
        return SL_ESTOPPED;
    return SL_DONE;
}

static void mx_destroy(void *self)
{
    mx *s = self;
    s->host->table_unref(s->t);
    s->host->free(s);
}

static const sl_option no_opts[] = { { .name = NULL } };
static const sl_plugin_descriptor mx_desc = {
    .abi_version = SL_ABI_VERSION, .struct_size = sizeof(sl_plugin_descriptor),
    .name = "sync-matrix-source", .kind = SL_PLUGIN_SOURCE, .description = "type matrix",
    .options = no_opts, .config_size = 0,
    .create = mx_create, .start = mx_start, .run = mx_run, .destroy = mx_destroy,
};

/* ---- a tail that puts no row on the target ------------------------------------------------ */

/*
 * Positions in mysql-bin.000001: txn A inserts id 1 (commit 100); txn B's row is dropped by a
 * transform (commit 200); an empty TXN_END batch (a transaction on unselected tables, 300); then
 * a big transaction C (id 3, a dropped DDL inside it at 380) that continues past its first batch
 * and commits at 400 with id 4. The first run stops with C open; the second run resumes from the
 * checkpoint and ends with a heartbeat at 400.
 */
typedef struct tail { const sl_host *host; sl_ctx *ctx; sl_table *t; uint64_t from; } tail;

static int tail_create(const sl_host *host, sl_ctx *ctx, const void *config, void **self)
{
    tail *s = host->calloc(1, sizeof *s);
    s->host = host;
    s->ctx = ctx;
    s->t = t1_table(host);
    *self = s;
    return 0;
}

static int tail_start(void *self)
{
    tail *s = self;
    s->from = ckpt_commit_pos();
    return 0;
}

static sl_event *tail_ev(tail *s, sl_batch *b, int kind, uint64_t pos, int id)
{
    sl_event *e = s->host->batch_push(b, (sl_event_kind)kind);
    ev_pos(e, pos);
    if (kind == SL_EV_INSERT) {
        e->schema = e->target_schema = "sinkt";
        e->table = e->target_table = "t1";
        e->ncols = 3;
        s->host->batch_set_meta(b, e, s->t);
        e->after = image_h(s->host, b, id, id * 10);
    }
    return e;
}

static int tail_emit(tail *s, sl_batch *b, uint64_t ckpt)
{
    if (ckpt) {
        b->flags |= SL_BATCH_TXN_END;
        b->ckpt.file = "mysql-bin.000001";
        b->ckpt.offset = ckpt;
    }
    return s->host->emit(s->ctx, b);
}

static int tail_run(void *self)
{
    tail *s = self;
    const sl_host *h = s->host;
    sl_batch *b;
    if (s->from < 100) {
        b = h->batch_new(s->ctx, 4);
        tail_ev(s, b, SL_EV_BEGIN, 10, 0);
        tail_ev(s, b, SL_EV_INSERT, 50, 1);
        tail_ev(s, b, SL_EV_COMMIT, 100, 0);
        if (tail_emit(s, b, 100) < 0) return SL_ESTOPPED;
    }
    if (s->from < 200) {
        b = h->batch_new(s->ctx, 4);
        tail_ev(s, b, SL_EV_BEGIN, 110, 0);
        tail_ev(s, b, SL_EV_INSERT, 150, 2)->flags |= SL_EVF_DROPPED;
        tail_ev(s, b, SL_EV_COMMIT, 200, 0);
        if (tail_emit(s, b, 200) < 0) return SL_ESTOPPED;
    }
    if (s->from < 300 && tail_emit(s, h->batch_new(s->ctx, 1), 300) < 0)
        return SL_ESTOPPED;
    /* C's first part: no TXN_END */
    b = h->batch_new(s->ctx, 4);
    tail_ev(s, b, SL_EV_BEGIN, 310, 0);
    tail_ev(s, b, SL_EV_INSERT, 350, 3);
    sl_event *d = tail_ev(s, b, SL_EV_DDL, 380, 0);
    d->ddl = "DROP TABLE IF EXISTS nothing_here";
    d->schema = d->ddl_schema = d->target_schema = "sinkt";
    d->flags |= SL_EVF_DROPPED;
    if (tail_emit(s, b, 0) < 0) return SL_ESTOPPED;
    if (s->from >= 300) {
        b = h->batch_new(s->ctx, 4);
        tail_ev(s, b, SL_EV_INSERT, 390, 4);
        tail_ev(s, b, SL_EV_COMMIT, 400, 0);
        if (tail_emit(s, b, 400) < 0) return SL_ESTOPPED;
        b = h->batch_new(s->ctx, 1);
        sl_event *hb = tail_ev(s, b, SL_EV_HEARTBEAT, 400, 0);
        hb->commit_ts = (uint64_t)time(NULL);
        if (tail_emit(s, b, 400) < 0) return SL_ESTOPPED;
    }
    /* then idle until stopped, as a binlog reader is */
    while (!h->should_stop(s->ctx))
        usleep(20000);
    return SL_ESTOPPED;
}

static void tail_destroy(void *self)
{
    tail *s = self;
    s->host->table_unref(s->t);
    s->host->free(s);
}

static const sl_plugin_descriptor tail_desc = {
    .abi_version = SL_ABI_VERSION, .struct_size = sizeof(sl_plugin_descriptor),
    .name = "sync-tail-source", .kind = SL_PLUGIN_SOURCE, .description = "a filtered tail",
    .options = msrc_opts, .config_size = sizeof(msrc_cfg),
    .create = tail_create, .start = tail_start, .run = tail_run, .destroy = tail_destroy,
};

/* ---- running a pipeline -------------------------------------------------------------------- */

static char sink_opts[2048];

static sl_stage run_pipeline(const char *source, const char *source_opts, sl_error *err)
{
    static const char *const plugins[] = { "mysql-sink", NULL };
    static const sl_plugin_descriptor *const descs[] = { &msrc_desc, &mx_desc, NULL };
    sl_stage_spec st[2] = { { "src", (char *)source, (char *)source_opts },
                            { "sink", "mysql-sink", sink_opts } };
    tl_pipe r;
    tl_pipe_new(&r, tl_registry(plugins, descs), "sinktask/src/incremental", st, 2, 1);
    return tl_pipe_run(&r, 120000, err);
}

static void reset_target(MYSQL *db)
{
    /* roll back prepared branches a previous run may have left */
    if (mysql_query(db, "XA RECOVER") == 0) {
        MYSQL_RES *r = mysql_store_result(db);
        MYSQL_ROW row;
        char xids[64][80];
        int n = 0;
        while (r && (row = mysql_fetch_row(r)) && n < 64)
            snprintf(xids[n++], sizeof xids[0], "%.*s", atoi(row[1]), row[3]);
        if (r) mysql_free_result(r);
        for (int i = 0; i < n; i++) {
            char sql[160];
            snprintf(sql, sizeof sql, "XA ROLLBACK '%.79s'", xids[i]);
            mysql_query(db, sql);
        }
    }
    tl_sql(db, "DROP DATABASE IF EXISTS sinkt; CREATE DATABASE sinkt; "
          "CREATE DATABASE IF NOT EXISTS dm_meta; DROP TABLE IF EXISTS dm_meta.sinktask_syncer_checkpoint; "
          "CREATE TABLE sinkt.t1 (id INT PRIMARY KEY, v BIGINT, u VARCHAR(32), UNIQUE KEY(u))");
}

static int verify_stream(MYSQL *db, const char *what)
{
    static model m;
    static rowop ops[BIGROWS + 8];
    memset(&m, 0, sizeof m);
    for (int i = 0; i < NTXN; i++)
        txn_rows(&m, i, ops);
    int bad = 0;
    long expect = 0;
    for (int id = 0; id < BIGBASE + BIGROWS; id++)
        expect += m.exists[id];
    long got = atol(tl_str(db, "SELECT COUNT(*) FROM sinkt.t1"));
    TL_CHECK(got == expect, "%s: t1 has %ld rows, expected %ld", what, got, expect);
    if (mysql_query(db, "SELECT id, v, u FROM sinkt.t1 ORDER BY id") == 0) {
        MYSQL_RES *r = mysql_store_result(db);
        MYSQL_ROW row;
        while ((row = mysql_fetch_row(r))) {
            int id = atoi(row[0]);
            char u[24];
            snprintf(u, sizeof u, "u%d", id);
            if (id < 0 || id >= BIGBASE + BIGROWS || !m.exists[id] || m.v[id] != atoll(row[1]) ||
                strcmp(u, row[2]) != 0) {
                if (bad++ < 5)
                    TL_CHECK(0, "%s: row id=%d v=%s differs (expected exists=%d v=%" PRId64 ")", what, id, row[1],
                          id >= 0 && id < BIGBASE + BIGROWS ? m.exists[id] : -1,
                          id >= 0 && id < BIGBASE + BIGROWS ? m.v[id] : 0);
            }
        }
        mysql_free_result(r);
    }
    long t2 = atol(tl_str(db, "SELECT COUNT(*) FROM sinkt.t2"));
    TL_CHECK(t2 == NTXN - DDLTXN - 1, "%s: t2 has %ld rows, expected %d", what, t2, NTXN - DDLTXN - 1);
    const char *pos = tl_str(db, "SELECT binlog_pos FROM dm_meta.sinktask_syncer_checkpoint WHERE worker = 0");
    TL_CHECK(strtoull(pos, NULL, 10) == commit_pos(NTXN - 1), "%s: checkpoint at %s", what, pos);
    TL_CHECK(strcmp(tl_str(db, "SELECT COUNT(*) FROM dm_meta.sinktask_syncer_checkpoint WHERE worker = -1"), "0") == 0,
          "%s: a pending DDL marker is left", what);
    mysql_query(db, "XA RECOVER");
    MYSQL_RES *r = mysql_store_result(db);
    TL_CHECK(r && mysql_num_rows(r) == 0, "%s: prepared XA branches are left", what);
    if (r) mysql_free_result(r);
    return bad;
}

static void set_sink_opts(int threads, int batch)
{
    char target[1024];
    snprintf(sink_opts, sizeof sink_opts,
             "{%s,\"task_name\":\"sinktask\",\"source_name\":\"src\",\"repl_threads\":%d,\"repl_batch\":%d}",
             tl_conn_json("TARGET", target, sizeof target), threads, batch);
}

static void test_stream(MYSQL *db)
{
    reset_target(db);
    set_sink_opts(4, 50);
    sl_error e = {0};
    sl_stage st = run_pipeline("sync-test-source", "{\"per_batch\":25}", &e);
    TL_CHECK(st == SL_STAGE_FINISHED, "stream: stage %s: %s", sl_stage_name(st), e.msg);
    verify_stream(db, "stream");
    /* a second run from the checkpoint applies nothing more */
    st = run_pipeline("sync-test-source", "{\"per_batch\":25}", &e);
    TL_CHECK(st == SL_STAGE_FINISHED, "rerun: stage %s: %s", sl_stage_name(st), e.msg);
    verify_stream(db, "rerun");
}

static void test_crash(MYSQL *db, const char *fp, int per_batch)
{
    char what[128], so[64];
    snprintf(what, sizeof what, "crash at %s", fp);
    snprintf(so, sizeof so, "{\"per_batch\":%d}", per_batch);
    reset_target(db);
    /* a worker takes repl_batch rows of a group before another starts: small batches of the
     * stream need a small repl_batch to spread over several XA branches */
    set_sink_opts(4, per_batch < 10 ? 2 : 20);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("SLUICE_SINK_FAILPOINT", fp, 1);
        sl_error e = {0};
        run_pipeline("sync-test-source", so, &e);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    TL_CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "%s: the child was not killed (status %d)", what, status);
    sl_error e = {0};
    sl_stage st = run_pipeline("sync-test-source", so, &e);
    TL_CHECK(st == SL_STAGE_FINISHED, "%s: restart: stage %s: %s", what, sl_stage_name(st), e.msg);
    verify_stream(db, what);
}

static void test_matrix(MYSQL *db)
{
    reset_target(db);
    tl_sql(db, "CREATE TABLE sinkt.m (id INT PRIMARY KEY, i INT, bu BIGINT UNSIGNED, de DECIMAL(20,4), f FLOAT, "
          "d DOUBLE, dt DATE, tm TIME(3), dtm DATETIME(6), ts TIMESTAMP(2) NULL, y YEAR, "
          "s VARCHAR(32) CHARACTER SET utf8mb4, l VARCHAR(32) CHARACTER SET latin1, vb VARBINARY(16), "
          "bl BLOB, js JSON, bt BIT(5), en ENUM('red','green','blue'), st SET('a','b','c'))");
    set_sink_opts(2, 100);
    sl_error e = {0};
    sl_stage st = run_pipeline("sync-matrix-source", "{}", &e);
    TL_CHECK(st == SL_STAGE_FINISHED, "matrix: stage %s: %s", sl_stage_name(st), e.msg);
    const char *row = tl_str(db, "SELECT CONCAT_WS('|', id, i, bu, de, f, d, dt, tm, dtm, ts, y, s, HEX(l), HEX(vb), "
                             "HEX(bl), js, bt+0, en, st) FROM sinkt.m ORDER BY id LIMIT 1");
    TL_CHECK(strcmp(row, "1|-2147483647|18446744073709551614|-1234567890.0123|1.1|1.1|2024-02-29|-838:59:58.123|"
                      "1000-01-01 00:00:00.000001|2023-11-14 22:13:20.45|2155|it's \\ \xf0\x9f\x90\xac|636166E9|"
                      "0001FF27|626C6F620064617461|{\"k\": [1, \"v\"]}|21|green|a,c") == 0,
          "matrix row 1: %s", row);
    TL_CHECK(strcmp(tl_str(db, "SELECT GROUP_CONCAT(id ORDER BY id) FROM sinkt.m"), "1,20") == 0,
          "matrix ids after update/delete: %s", tl_str(db, "SELECT GROUP_CONCAT(id ORDER BY id) FROM sinkt.m"));
    TL_CHECK(strcmp(tl_str(db, "SELECT d FROM sinkt.m WHERE id = 20"), "20.1") == 0, "matrix update of d");
}

/* ---- progress without rows: flush at stop, heartbeat, synced ------------------------------ */

static void prun_start(tl_pipe *r)
{
    static const char *const plugins[] = { "mysql-sink", NULL };
    static const sl_plugin_descriptor *const descs[] = { &tail_desc, NULL };
    sl_stage_spec st[2] = { { "src", "sync-tail-source", "{}" }, { "sink", "mysql-sink", sink_opts } };
    tl_pipe_new(r, tl_registry(plugins, descs), "sinktask/src/incremental", st, 2, 1);
}

/* 1 if the mysql-sink's status holds the JSON member text `member` (e.g. "\"synced\":true"). */
static int sink_says(tl_pipe *r, const char *member)
{
    char *st = sl_pipeline_status_json(r->p);
    const char *sink = st ? strstr(st, "\"plugin\":\"mysql-sink\"") : NULL;
    int yes = sink && strstr(sink, member) != NULL;
    free(st);
    return yes;
}

static const char *ckpt_pos(MYSQL *db)
{
    return tl_str(db, "SELECT binlog_pos FROM dm_meta.sinktask_syncer_checkpoint WHERE worker = 0");
}

static void test_tail(MYSQL *db)
{
    reset_target(db);
    set_sink_opts(4, 50);
    tl_pipe r;
    prun_start(&r);
    /* wait (bounded) until the sink is past the empty batch at 300 and holds C's first part
     * open on a worker */
    int ok = 0;
    for (int t = 0; t < 600 && !ok && sl_pipeline_stage(r.p) == SL_STAGE_RUNNING; t++) {
        ok = sink_says(&r, "\"syncer_binlog\":\"(mysql-bin.000001, 300)\"") &&
             atoi(tl_str(db, "SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_rows_modified > 0")) > 0;
        if (!ok)
            usleep(100000);
    }
    TL_CHECK(ok, "tail: the sink did not reach 300 with the big transaction open");
    TL_CHECK(sink_says(&r, "\"synced\":false"), "tail: synced before any heartbeat");
    tl_pipe_free(&r);
    /* the stop rolled back C and wrote the progress of B and the empty batch: not C's dropped
     * DDL at 380, which is inside C */
    TL_CHECK(strcmp(ckpt_pos(db), "300") == 0, "tail: checkpoint at %s after the stop, expected 300", ckpt_pos(db));
    TL_CHECK(strcmp(tl_str(db, "SELECT GROUP_CONCAT(id ORDER BY id) FROM sinkt.t1"), "1") == 0,
          "tail: rows after the stop: %s", tl_str(db, "SELECT GROUP_CONCAT(id ORDER BY id) FROM sinkt.t1"));

    /* the resumed run replays C whole and ends with a heartbeat at 400: synced, no lag */
    prun_start(&r);
    ok = 0;
    for (int t = 0; t < 600 && !ok && sl_pipeline_stage(r.p) == SL_STAGE_RUNNING; t++) {
        ok = sink_says(&r, "\"synced\":true") && strcmp(ckpt_pos(db), "400") == 0;
        if (!ok)
            usleep(100000);
    }
    TL_CHECK(ok, "tail: not synced at 400 after the heartbeat (checkpoint %s)", ckpt_pos(db));
    TL_CHECK(sink_says(&r, "\"seconds_behind_master\":0"), "tail: lag while synced");
    TL_CHECK(sink_says(&r, "\"syncer_binlog\":\"(mysql-bin.000001, 400)\""), "tail: syncer_binlog");
    tl_pipe_free(&r);
    TL_CHECK(strcmp(tl_str(db, "SELECT GROUP_CONCAT(id ORDER BY id) FROM sinkt.t1"), "1,3,4") == 0,
          "tail: rows: %s", tl_str(db, "SELECT GROUP_CONCAT(id ORDER BY id) FROM sinkt.t1"));
    TL_CHECK(strcmp(ckpt_pos(db), "400") == 0, "tail: checkpoint at %s, expected 400", ckpt_pos(db));
}

/* ---- a target that stops answering --------------------------------------------------------- */

/* A TCP proxy to the sandbox target. A connection whose number (1, 2, ... in accept order) is
 * at most frozen_upto has its answers held, as in a partition that swallows the server's
 * packets: what the client sends reaches the server, nothing comes back, and when the client
 * gives up and closes, the close does not reach the server either, so its session stays there
 * with whatever transaction it had open. Once thawed, the held answers go to a client that is
 * gone, and both ends are closed. */
static struct {
    int lfd, port, tport;
    pthread_t acc;
    atomic_int stop, pumps;
    atomic_long accepted, frozen_upto;
} px;

struct pconn { int c, t; long seq; };

static int write_all(int fd, const char *p, ssize_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, (size_t)n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= w;
    }
    return 0;
}

static void *px_pump(void *arg)
{
    struct pconn *pc = arg;
    char buf[65536];
    int c_gone = 0;     /* the client closed while frozen: the server has not been told */
    while (!atomic_load(&px.stop)) {
        int frozen = pc->seq <= atomic_load(&px.frozen_upto);
        if (!frozen && c_gone)
            break;
        if (frozen && c_gone) {
            usleep(20000);
            continue;
        }
        struct pollfd p[2] = { { .fd = pc->c, .events = POLLIN },
                               { .fd = frozen ? -1 : pc->t, .events = POLLIN } };
        if (poll(p, 2, 100) <= 0)
            continue;
        int done = 0;
        for (int i = 0; i < 2 && !done; i++)
            if (p[i].revents) {
                ssize_t r = read(p[i].fd, buf, sizeof buf);
                if (r <= 0 && i == 0 && frozen)
                    c_gone = 1;
                else
                    done = r <= 0 || write_all(i == 0 ? pc->t : pc->c, buf, r) < 0;
            }
        if (done)
            break;
    }
    close(pc->c);
    close(pc->t);
    free(pc);
    atomic_fetch_sub(&px.pumps, 1);
    return NULL;
}

static void *px_accept(void *arg)
{
    (void)arg;
    while (!atomic_load(&px.stop)) {
        struct pollfd p = { .fd = px.lfd, .events = POLLIN };
        if (poll(&p, 1, 100) <= 0)
            continue;
        int c = accept(px.lfd, NULL, NULL);
        if (c < 0)
            continue;
        int t = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)px.tport) };
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        struct pconn *pc = malloc(sizeof *pc);
        pthread_t th;
        if (t < 0 || !pc || connect(t, (struct sockaddr *)&a, sizeof a) != 0) {
            close(c);
            if (t >= 0)
                close(t);
            free(pc);
            continue;
        }
        *pc = (struct pconn){ c, t, atomic_fetch_add(&px.accepted, 1) + 1 };
        atomic_fetch_add(&px.pumps, 1);
        if (pthread_create(&th, NULL, px_pump, pc) != 0) {
            atomic_fetch_sub(&px.pumps, 1);
            close(c);
            close(t);
            free(pc);
            continue;
        }
        pthread_detach(th);
    }
    return NULL;
}

static void px_start(void)
{
    memset(&px, 0, sizeof px);
    px.tport = atoi(tl_env("SLUICE_TARGET_PORT"));
    px.lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = 0 };
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    socklen_t len = sizeof a;
    if (px.lfd < 0 || bind(px.lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(px.lfd, 64) != 0 ||
        getsockname(px.lfd, (struct sockaddr *)&a, &len) != 0)
        tl_fail("proxy: %s", strerror(errno));
    px.port = ntohs(a.sin_port);
    if (pthread_create(&px.acc, NULL, px_accept, NULL) != 0)
        tl_fail("proxy: no thread");
}

static void px_stop(void)
{
    atomic_store(&px.stop, 1);
    pthread_join(px.acc, NULL);
    for (int t = 0; t < 100 && atomic_load(&px.pumps) > 0; t++)
        usleep(50000);
    close(px.lfd);
}

static void test_stall(MYSQL *db)
{
    reset_target(db);
    tl_sql(db, "CREATE TABLE sinkt.t3 LIKE sinkt.t1");
    px_start();
    char *user = strdup(tl_env("SLUICE_TARGET_USER"));
    snprintf(sink_opts, sizeof sink_opts,
             "{\"target_host\":\"127.0.0.1\",\"target_port\":%d,\"target_user\":\"%s\","
             "\"target_password\":\"%s\",\"task_name\":\"sinktask\",\"source_name\":\"src\","
             "\"repl_threads\":4,\"repl_batch\":20,\"read_timeout\":2}",
             px.port, user, tl_env_or("SLUICE_TARGET_PASSWORD", ""));
    free(user);
    static const char *const plugins[] = { "mysql-sink", NULL };
    static const sl_plugin_descriptor *const descs[] = { &msrc_desc, NULL };
    sl_stage_spec st[2] = { { "src", "sync-test-source", "{\"per_batch\":25,\"pause_at\":200,\"like_t3\":true}" },
                            { "sink", "mysql-sink", sink_opts } };
    atomic_store(&src_gate, 0);
    atomic_store(&src_waiting, 0);
    tl_pipe r;
    tl_pipe_new(&r, tl_registry(plugins, descs), "sinktask/src/incremental", st, 2, 1);
    /* everything before transaction 200 applied, the source waiting: then the target stops
     * answering, and the source goes on */
    int there = tl_wait_ckpt(&r, db, "sinktask", "mysql-bin.000001", commit_pos(199), 60) &&
                atomic_load(&src_waiting);
    TL_CHECK(there, "stall: the sink did not apply the first 200 transactions (stage %s)",
             sl_stage_name(sl_pipeline_stage(r.p)));
    atomic_store(&px.frozen_upto, LONG_MAX);
    atomic_store(&src_gate, 1);
    sl_stage stg = sl_pipeline_wait(r.p, 60000);
    sl_error e = {0};
    sl_pipeline_error(r.p, &e);
    TL_CHECK(stg == SL_STAGE_PAUSED, "stall: the sink is %s 60 s after the target stopped answering "
             "(read_timeout 2 s)", sl_stage_name(stg));
    TL_CHECK(strstr(e.msg, "2013") || strstr(e.msg, "Lost connection") || strstr(e.msg, "timed out"),
             "stall: the pause does not say the connection was lost: %s", e.msg);
    if (stg == SL_STAGE_RUNNING)
        atomic_store(&px.frozen_upto, 0);      /* let the stop end */
    tl_pipe_free(&r);
    /* the sessions the sink gave up are still on the target, a transaction of theirs open */
    long long open = atoll(tl_str(db, "SELECT COUNT(*) FROM information_schema.INNODB_TRX"));
    long long idle = atoll(tl_str(db, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID <> "
                                    "CONNECTION_ID() AND USER = SUBSTRING_INDEX(CURRENT_USER(), '@', 1) "
                                    "AND COMMAND = 'Sleep'"));
    TL_CHECK(open > 0, "stall: no transaction of the given-up sessions is open on the target "
             "(%lld idle sessions)", idle);

    /* the next run's connections go through; the frozen ones stay frozen, their sessions open */
    atomic_store(&px.frozen_upto, atomic_load(&px.accepted));
    st[0].options_json = "{\"per_batch\":25,\"like_t3\":true}";
    MYSQL *lk = tconn();
    tl_sql(lk, "LOCK TABLES sinkt.t3 WRITE");
    tl_pipe_new(&r, tl_registry(plugins, descs), "sinktask/src/incremental", st, 2, 1);
    /* the DDL waits for t3's metadata lock, then 3 s more, longer than read_timeout: it runs
     * on the DDL's own session, which has none */
    int waited = 0;
    for (int t = 0; t < 600 && !waited && sl_pipeline_stage(r.p) == SL_STAGE_RUNNING; t++) {
        waited = atoi(tl_str(db, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE "
                                 "'CREATE TABLE t2 LIKE t3%%' AND STATE LIKE '%%metadata lock%%'")) > 0;
        if (!waited)
            usleep(100000);
    }
    TL_CHECK(waited, "stall: the next run's DDL did not wait for t3's lock (stage %s)",
             sl_stage_name(sl_pipeline_stage(r.p)));
    if (waited)
        sleep(3);
    tl_sql(lk, "UNLOCK TABLES");
    mysql_close(lk);
    stg = sl_pipeline_wait(r.p, 120000);
    sl_pipeline_error(r.p, &e);
    long long killed = tl_pipe_metric(&r, "stale_sessions_killed");
    TL_CHECK(stg == SL_STAGE_FINISHED, "stall: the next run ended %s: %s", sl_stage_name(stg), e.msg);
    TL_CHECK(killed > 0, "stall: the next run killed %lld stale sessions", killed);
    if (stg == SL_STAGE_RUNNING)
        atomic_store(&px.frozen_upto, 0);
    tl_pipe_free(&r);
    /* the held answers go now, to clients that are gone */
    atomic_store(&px.frozen_upto, 0);
    usleep(500000);
    px_stop();
    verify_stream(db, "stall");
    printf("stall: paused by read_timeout, %lld stale sessions killed, the stream applied once\n", killed);
}

int main(void)
{
    MYSQL *db = tconn();
    test_matrix(db);
    test_tail(db);
    test_stall(db);
    test_stream(db);
    test_crash(db, "after-prepare:3", 25);
    test_crash(db, "after-checkpoint:4", 25);
    test_crash(db, "after-ddl:1", 25);
    test_crash(db, "serial-open:2", 25);
    test_crash(db, "after-prepare:9", 3);
    mysql_close(db);
    return tl_finish("sync sink integration");
}
