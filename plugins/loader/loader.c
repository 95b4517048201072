/*
 * loader.c - the loader sink plugin: creates the (routed) schemas and tables of a dump and loads its
 * chunk files into the target with LOAD DATA LOCAL INFILE on import_threads connections, each chunk
 * in one transaction together with its row in `<meta>`.`<task>_loader_checkpoint`, so a restarted
 * load skips what is done and never loads a chunk twice. At the dump's EOF it writes the finish
 * marker and the syncer checkpoint (the snapshot position) in one transaction. Each target table
 * is claimed in `<meta>`.`<task>_loader_tables` before its first chunk, so a load redone from a new
 * snapshot empties only tables no other source shares (see claim_table).
 *
 * Why LOAD DATA: it is the fastest way into InnoDB short of a physical import (MySQL manual
 * "Optimizing INSERT Statements": usually 20x INSERT; perf-notes.md section 4); chunk files are
 * already in its format, so the loader only streams bytes (mysql_set_local_infile_handler counts
 * them for progress). Faster still for a table of numbers, dates and inline strings: an INSERT
 * executed on arrays of parameters, with sluice splitting the text instead of the target (the
 * bulk path, bulk_chunk). Loads into one table with an AUTO_INCREMENT column run one at a time
 * (take_job).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sluice/plugin.h>
#include "myconn.h"
#include "dumpfmt.h"
#include "ckpt.h"
#include "cleanup.h"
#include "condwait.h"
#include "ddl.h"

enum { DUP_OVERWRITE = 0, DUP_REPLACE, DUP_ERROR, DUP_IGNORE };
enum { MODE_FULL = 0, MODE_DUMP, MODE_LOAD };

typedef struct loader_cfg {
    SL_MYCONN_FIELDS(target);
    char   *task_name, *source_name, *meta_schema;
    int64_t import_threads;
    int     on_duplicate;
    char   *data_dir;
    int     mode;
    int     sql_log_bin;
    int     bulk_insert;
    int64_t fence_epoch;
} loader_cfg;

static const char *const dup_choices[] = {"overwrite", "replace", "error", "ignore", NULL};
static const char *const mode_choices[] = {"full", "dump", "load", NULL};

#define OFF(f) offsetof(loader_cfg, f)
static const sl_option loader_options[] = {
    SL_MYCONN_OPTIONS(target, loader_cfg),
    {"task_name", SL_OPT_STRING, NULL, "task name", OFF(task_name), 0, -1, NULL, SL_OPTF_REQUIRED},
    {"source_name", SL_OPT_STRING, NULL, "source name", OFF(source_name), 0, -1, NULL, SL_OPTF_REQUIRED},
    {"meta_schema", SL_OPT_STRING, "\"dm_meta\"", "schema of the checkpoint tables", OFF(meta_schema), 0, -1, NULL, 0},
    {"import_threads", SL_OPT_INT, "16", "parallel load connections", OFF(import_threads), 1, 1024, NULL, 0},
    {"on_duplicate", SL_OPT_ENUM, "\"overwrite\"", "overwrite|replace|error|ignore: a row whose key exists", OFF(on_duplicate), 0, -1, dup_choices, 0},
    {"data_dir", SL_OPT_STRING, "\"./dumped_data\"", "where the dump's files are (<data_dir>/<task>/<source>/)", OFF(data_dir), 0, -1, NULL, 0},
    {"mode", SL_OPT_ENUM, "\"full\"", "full|dump|load (dump: load nothing)", OFF(mode), 0, -1, mode_choices, 0},
    {"sql_log_bin", SL_OPT_BOOL, "true", "false: the load is not written to the target's binlog (SET SESSION sql_log_bin = 0, which needs SUPER or BINLOG ADMIN; the target's replicas then miss the copied rows)", OFF(sql_log_bin), 0, -1, NULL, 0},
    {"bulk_insert", SL_OPT_BOOL, "true", "true: a chunk of a table whose columns are all numbers, dates and times or inline strings (CHAR, VARCHAR, BINARY, VARBINARY) loads with the binary protocol's array INSERT (COM_STMT_BULK_EXECUTE), which costs the target less CPU than LOAD DATA; false: every chunk with LOAD DATA", OFF(bulk_insert), 0, -1, NULL, 0},
    {"fence_epoch", SL_OPT_INT, "0", "cluster fencing, set by the runtime (issue 13): the start raises the source's row of <meta_schema>.sluice_fence to this epoch, and each chunk's transaction commits only while the row still holds it, so a worker that lost the source loads no further chunk; 0 = off", OFF(fence_epoch), 0, INT64_MAX, NULL, 0},
    {NULL, 0, NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- a set of strings (chunk ids done, tables claimed), each with a value ----------------------- */

typedef struct strset { char **v; size_t *val; size_t cap, n; } strset;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* The slot of k, or -1. */
static long strset_find(const strset *s, const char *k)
{
    if (!s->cap)
        return -1;
    for (size_t i = hash_str(k) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        if (!s->v[i])
            return -1;
        if (strcmp(s->v[i], k) == 0)
            return (long)i;
    }
}

static int strset_has(const strset *s, const char *k)
{
    return strset_find(s, k) >= 0;
}

/* 1 and *val when k is in the set, else 0. */
static int strset_get(const strset *s, const char *k, size_t *val)
{
    long i = strset_find(s, k);
    if (i < 0)
        return 0;
    *val = s->val[i];
    return 1;
}

/* The value of k, to change in place, or NULL when k is not in the set. */
static size_t *strset_val(const strset *s, const char *k)
{
    long i = strset_find(s, k);
    return i < 0 ? NULL : &s->val[i];
}

/* The value of k, to change in place, k added with val when it is not in the set; NULL when
 * there is no memory. */
static size_t *strset_slot(strset *s, const char *k, size_t val)
{
    long at = strset_find(s, k);
    if (at >= 0)
        return &s->val[at];
    if ((s->n + 1) * 2 > s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 64;
        char **nv = calloc(nc, sizeof *nv);
        size_t *nval = calloc(nc, sizeof *nval);
        if (!nv || !nval) {
            free(nv);
            free(nval);
            return NULL;
        }
        for (size_t i = 0; i < s->cap; i++) {
            if (!s->v[i])
                continue;
            size_t j = hash_str(s->v[i]) & (nc - 1);
            while (nv[j])
                j = (j + 1) & (nc - 1);
            nv[j] = s->v[i];
            nval[j] = s->val[i];
        }
        free(s->v);
        free(s->val);
        s->v = nv;
        s->val = nval;
        s->cap = nc;
    }
    char *d = strdup(k);
    if (!d)
        return NULL;
    size_t j = hash_str(k) & (s->cap - 1);
    while (s->v[j])
        j = (j + 1) & (s->cap - 1);
    s->v[j] = d;
    s->val[j] = val;
    s->n++;
    return &s->val[j];
}

/* Add k with val (a key already there keeps its value): 0 or SL_ENOMEM. */
static int strset_put(strset *s, const char *k, size_t val)
{
    return strset_slot(s, k, val) ? 0 : SL_ENOMEM;
}

static int strset_add(strset *s, const char *k)
{
    return strset_put(s, k, 0);
}

static void strset_clear(strset *s)
{
    for (size_t i = 0; i < s->cap; i++)
        free(s->v[i]);
    free(s->v);
    free(s->val);
    memset(s, 0, sizeof *s);
}

/* ---- state --------------------------------------------------------------------------------------- */

typedef struct job {
    struct job *next;
    struct job *more;                /* a chunk group: the next chunk in this job's transaction */
    char       *path, *id, *table;   /* table: `schema`.`table` for messages */
    char       *tschema, *ttable;    /* a chunk: its target table ... */
    char       *src;                 /* ... and source table (`schema`.`table`) */
    char       *sql;                 /* the LOAD DATA statement */
    char       *ins;                 /* or the bulk path's INSERT (bulk_insert), ncols ?s */
    size_t      kw, kw_ins;          /* where REPLACE is in sql and ins (0: not there) */
    uint32_t    ncols;
    int         ai;                  /* its target table has an AUTO_INCREMENT column */
    char       *enums;               /* "\x01a\x01b\x01": ENUM columns (see read_warnings) */
    uint64_t    rows, bytes;
    int         plain;               /* 1: just run sql (an index build), no checkpoint row;
                                        2: a table's DDL (sql) and then its claim (claim) */
    char       *claim;               /* plain 2: the claim's statements (claim_body), or NULL:
                                        claimed before */
    char       *lockname;            /* plain 2: the claim's GET_LOCK name */
    int         ddl_done;            /* plain 2: its table is created and claimed, or its job is
                                        over (ddl_done_locked) */
    long        dt;                  /* a chunk of a table in l->deferred: its index, else -1 */
    long        early;               /* plain 1: an early build (queue_build) of deferred table
                                        early - 1, which may fail without failing the load */
    int         ready;               /* a chunk job: no table of it waits for its DDL (job_ready) */
} job;

/* A target table whose secondary indexes are built after its rows (split_indexes). They are
 * built as soon as its last chunk is in, while other tables still load (an index build waits
 * on its page flushes, loads on the CPU), or at the end for what is left; or early, while its
 * last chunks load, when it is the only table left (queue_build). Under loader.mu. */
typedef struct dtab {
    char   *alter;      /* ALTER TABLE ... ADD KEY IF NOT EXISTS ... */
    char   *qname;      /* `schema`.`table` */
    size_t  srcs;       /* source tables whose CREATE put them here (deferred_src) */
    size_t  lasts;      /* ... whose last chunk came (SL_EVF_LAST_CHUNK) */
    size_t  inflight;   /* its chunks queued or loading */
    uint64_t bytes, bytes_in;   /* the bytes of its chunks seen, and of those loaded */
    int     queued;     /* its build is queued (or done) */
    int     no_early;   /* no early build: InnoDB would not build online (online_build), or
                           one failed; build after its last chunk */
} dtab;

typedef struct loader loader;

typedef struct lworker {
    loader *l;
    MYSQL  *db;
    void   *thread;
    job    *cur;
    uint64_t attempt_bytes;   /* bytes this attempt of the chunk has read so far */
    uint64_t credited_bytes;  /* bytes of the chunk counted in finished_bytes: the most any
                                 attempt read, so a retry does not move the progress back */
    unsigned last_errno;      /* the server's errno of the attempt's failure (0 if none or not SQL) */
    int      stream_done;     /* a streamed chunk: its end frame was read ... */
    uint64_t stream_rows;     /* ... and gave this row count */
    const char *loading;      /* under loader.mu: the table of the lone chunk it loads, or NULL */
    /* the bulk path's buffers, kept from chunk to chunk: the chunk text read so far, and the
     * batch's column-wise values (ptr, len, indicator; BULK_CELLS at most) */
    char    *bbuf;
    size_t   bcap;
    char   **bptr;
    unsigned long *blen;
    char    *bnull;
    const char **bfield;      /* one line's fields and lengths (sl_tsv_split) */
    size_t  *bflen;
    unsigned long bpacket;    /* the target's max_allowed_packet (0: not asked yet) */
    /* a chunk that would replace another shard's rows (merge_collision) */
    job     *collided;        /* the chunk, or NULL */
    uint64_t replaced;        /* how many rows it would replace */
    int      find_dup;        /* the chunk loads again with IGNORE: keep its first duplicate key */
    char     dup[512];        /* ... here */
} lworker;

struct loader {
    const sl_host    *host;
    sl_ctx           *ctx;
    const loader_cfg *cfg;
    char              dir[4096];
    MYSQL            *ctl;
    char             *ctl_db;         /* the database ctl USEd last (NULL: none or unknown) */

    lworker          *w;
    size_t            nw, nthreads;
    pthread_mutex_t   mu;
    pthread_cond_t    cv_job, cv_space, cv_idle;
    job              *head, *tail;
    size_t            qlen, qcap, busy;
    /* DDL jobs (plain 2) in their own list, outside the queue's bound (see enqueue), and the
     * target tables they create: qname -> DDL jobs of it queued or running (job_ready) */
    job              *dhead, *dtail;
    size_t            ndl;              /* DDL jobs queued or running */
    strset            ddl_wait;
    int               ddl_only;         /* stopping: the workers run the DDL jobs left, only */
    int               fenced;           /* a chunk found the source fenced (no DDL job runs) */
    /* the chunk group being filled (stage thread; empty between batches, see submit_chunk) */
    job              *grp, *grp_tail;
    uint64_t          grp_bytes, grp_limit;
    size_t            grp_n;
    int               quit;
    int               werr;
    sl_error          werr_msg;

    /* this run */
    int               inited;
    int               finished_before;  /* the finish marker was there: nothing to do */
    int               stale;            /* checkpoint rows of another snapshot: redo everything */
    int               eof_done;
    int               chunks_queued;    /* a chunk was queued this run (a DDL after it waits) */
    sl_snapshot_info  snap;
    int               have_snap;
    strset            done, claimed, schemas;
    strset            deferred_tables;  /* target qname -> its index in deferred (stage thread) */
    strset            deferred_src;     /* source tables (qname) counted in a dtab's srcs */
    dtab             *deferred;         /* target tables whose secondary indexes wait */
    size_t            ndeferred;
    uint64_t          rows_total;       /* rows of all chunks seen */
    atomic_llong      rows_streamed;    /* streamed chunks: rows loaded less the estimates */
    atomic_ullong     chunks_loaded, txns;  /* this run: chunks loaded, in how many transactions */
    atomic_ullong     chunks_bulk;          /* ... of them with the bulk path */
    strset            ai_tables;        /* target tables with an AUTO_INCREMENT column (stage) */
    /* which source tables this source's dump routes into each target table, under mu (the
     * stage thread adds, a worker reads them in merged_target): "target\x01source" pairs, and
     * target qname -> how many source tables */
    strset            merge_pairs, merge_n;
    uint64_t          redo_bytes;       /* the target's redo log capacity (0: unknown), init_run */

    atomic_uint_fast64_t finished_bytes, total_bytes;
    /* The dump's total once its manifest is complete: chunk events wait in the stage queues while
     * the loader is busy, so the bytes of the chunks seen so far understate the total. */
    atomic_uint_fast64_t dump_total;
    atomic_llong      dump_total_checked;   /* CLOCK_MONOTONIC seconds of the last look */
    atomic_int        run_seen;             /* init_run done: the dump dir is this run's */
    char              meta_binlog[320];
    char             *meta_gtid;        /* under mu */
};

static void set_werr(loader *l, const sl_error *e)
{
    pthread_mutex_lock(&l->mu);
    if (!l->werr) {
        l->werr = e->code ? e->code : SL_EINTERNAL;
        l->werr_msg = *e;
    }
    pthread_cond_broadcast(&l->cv_idle);
    pthread_cond_broadcast(&l->cv_space);
    pthread_mutex_unlock(&l->mu);
}

static void job_free(job *j)
{
    while (j && j->more) {          /* a group: its other chunks first */
        job *m = j->more;
        j->more = m->more;
        m->more = NULL;
        job_free(m);
    }
    if (!j)
        return;
    free(j->path);
    free(j->id);
    free(j->table);
    free(j->tschema);
    free(j->ttable);
    free(j->src);
    free(j->sql);
    free(j->ins);
    free(j->enums);
    free(j->claim);
    free(j->lockname);
    free(j);
}

/* The chunk group being filled (submit_chunk), leaving none. */
static job *take_group(loader *l)
{
    job *g = l->grp;
    l->grp = l->grp_tail = NULL;
    l->grp_bytes = l->grp_n = 0;
    return g;
}

/* ---- LOCAL INFILE streaming with byte counting ---------------------------------------------- */

typedef struct infile { int fd; lworker *w; int err; int streamed; sl_stream_reader sr; char path[256]; } infile;

static int infile_init(void **ptr, const char *filename, void *ud)
{
    infile *f = calloc(1, sizeof *f);
    *ptr = f;
    if (!f)
        return 1;
    f->w = ud;
    f->fd = -1;
    snprintf(f->path, sizeof f->path, "%s", filename);
    int st = sl_stream_open(&f->sr, filename);
    if (st != 0) {          /* a chunk streamed by the dump (dumpfmt.h) */
        f->streamed = 1;
        f->err = st < 0 ? f->sr.err : 0;
        return st < 0;
    }
    f->fd = open(filename, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0) {
        f->err = errno;
        return 1;
    }
    posix_fadvise(f->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    return 0;
}

static int infile_read(void *ptr, char *buf, unsigned int len)
{
    infile *f = ptr;
    if (f->streamed) {
        long n = sl_stream_read(&f->sr, buf, len);
        if (n < 0) {
            f->err = f->sr.err;
            return -1;
        }
        if (n == 0) {
            f->w->stream_done = 1;
            f->w->stream_rows = f->sr.rows;
            return 0;
        }
        f->w->attempt_bytes += (uint64_t)n;
        f->w->credited_bytes = f->w->attempt_bytes;     /* read once: never again */
        atomic_fetch_add(&f->w->l->finished_bytes, (uint64_t)n);
        return (int)n;
    }
    for (;;) {
        ssize_t n = read(f->fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            f->err = errno;
            return -1;
        }
        lworker *w = f->w;
        w->attempt_bytes += (uint64_t)n;
        if (w->attempt_bytes > w->credited_bytes) {
            atomic_fetch_add(&w->l->finished_bytes, w->attempt_bytes - w->credited_bytes);
            w->credited_bytes = w->attempt_bytes;
        }
        return (int)n;
    }
}

static void infile_end(void *ptr)
{
    infile *f = ptr;
    if (!f)
        return;
    if (f->fd >= 0)
        close(f->fd);
    if (f->streamed)
        sl_stream_close(&f->sr);
    free(f);
}

static int infile_error(void *ptr, char *msg, unsigned int len)
{
    infile *f = ptr;
    if (f && f->streamed)
        snprintf(msg, len, "%s: the dump of this chunk ended before the chunk did (%s)", f->path,
                 strerror(f->err ? f->err : EPIPE));
    else
        snprintf(msg, len, "%s: %s", f ? f->path : "chunk file", strerror(f && f->err ? f->err : ENOMEM));
    return f && f->err ? f->err : ENOMEM;
}

/* ---- connections ------------------------------------------------------------------------------- */

/* UTC so TIMESTAMP text means what the dump meant; no strict mode so zero dates load as they were
 * (exactness is checked through warnings instead); NO_AUTO_VALUE_ON_ZERO keeps a 0 in an
 * AUTO_INCREMENT column; no foreign key checks while tables fill in any order. */
#define SESSION_INIT "SET SESSION time_zone = '+00:00', SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO', " \
                     "SESSION foreign_key_checks = 0, SESSION net_read_timeout = 3600, " \
                     "SESSION net_write_timeout = 3600, SESSION wait_timeout = 86400"

/* A load worker's session also runs without autocommit: a chunk's transaction starts with its
 * LOAD DATA and ends with the checkpoint row and COMMIT sent together, two round trips a chunk
 * instead of four (START TRANSACTION, LOAD, INSERT, COMMIT). */
#define WORKER_INIT SESSION_INIT ", SESSION autocommit = 0"

/* A target connection with multi-statements on (the claim and the chunk's commit are sent as
 * one round trip each); worker: a load worker's session (WORKER_INIT). */
static MYSQL *connect_target(loader *l, int worker, sl_error *e)
{
    const loader_cfg *c = l->cfg;
    sl_myconn_opts o = {
        SL_MYCONN_FROM(c, target), .init_sql = worker ? WORKER_INIT : SESSION_INIT,
        .local_infile = 1,
    };
    MYSQL *db = sl_myconn_open(&o, e);
    if (db) {
        unsigned long maxp = 1024UL * 1024 * 1024;
        mysql_optionsv(db, MYSQL_OPT_MAX_ALLOWED_PACKET, &maxp);
        if (sl_myconn_multi(db, e) != 0) {
            mysql_close(db);
            return NULL;
        }
        /* Only when the user allows it (full_migrate_conf.sql_log_bin false): a target that
         * logs binlog writes the copy twice, but its replicas and point-in-time recovery need
         * it, so by default the load is logged like any other write. */
        if (!c->sql_log_bin && sl_myconn_exec(db, "SET SESSION sql_log_bin = 0", 27, e) != 0) {
            sl_error_prefix(e, "sql_log_bin false (it needs SUPER or BINLOG ADMIN on the target)");
            mysql_close(db);
            return NULL;
        }
    }
    return db;
}

static int ctl_exec(loader *l, const char *sql, size_t len)
{
    sl_error e = {0};
    int rc = sl_myconn_exec(l->ctl, sql, len, &e);
    if (rc)
        return l->host->fail(l->ctx, rc, "target: %s", e.msg);
    return 0;
}

/* ---- workers --------------------------------------------------------------------------------- */

/* Why the target changed or refused rows of a chunk: the first warnings, as text. Returns 1 if a
 * warning other than a duplicate key was seen; *dup gets the first duplicate-key message. */
static int benign(const char *msg, const char *enums)
{
    /* The ENUM error value '' (index 0, stored by a non-strict source) loads back as index 0,
     * but the target warns "Data truncated for column 'e'": the row is still exact. */
    const char *p = enums ? strstr(msg, "Data truncated for column '") : NULL;
    if (!p)
        return 0;
    p += 27;
    const char *q = strchr(p, '\'');
    if (!q || q - p > 200)
        return 0;
    char key[210];
    snprintf(key, sizeof key, "\x01%.*s\x01", (int)(q - p), p);
    return strstr(enums, key) != NULL;
}

static int read_warnings(MYSQL *db, const char *enums, char *dup, size_t dupsz, char *other,
                         size_t othersz)
{
    int bad = 0;
    dup[0] = other[0] = '\0';
    if (mysql_real_query(db, "SHOW WARNINGS LIMIT 20", 22) != 0)
        return 0;
    MYSQL_RES *r = mysql_store_result(db);
    MYSQL_ROW row;
    while (r && (row = mysql_fetch_row(r))) {
        if (!row[0] || strcasecmp(row[0], "Note") == 0)
            continue;
        unsigned code = row[1] ? (unsigned)strtoul(row[1], NULL, 10) : 0;
        if (code == 1265 && row[2] && benign(row[2], enums))
            continue;
        if (code == 1062) {
            if (!dup[0])
                snprintf(dup, dupsz, "%s", row[2] ? row[2] : "duplicate entry");
        } else {
            if (!other[0])
                snprintf(other, othersz, "%s %s: %s", row[0], row[1] ? row[1] : "?", row[2] ? row[2] : "");
            bad = 1;
        }
    }
    if (r)
        mysql_free_result(r);
    return bad;
}

/* 1 if a failed chunk transaction may simply be run again: InnoDB chose it as a deadlock victim
 * or it waited too long for a lock held by another loader thread (parallel LOAD DATA into one
 * table with REPLACE/IGNORE takes gap locks). The chunk and its checkpoint row are one
 * transaction, rolled back as a whole, so a retry cannot load a row twice. */
static int retryable(unsigned e) { return e == 1213 /* ER_LOCK_DEADLOCK */ || e == 1205 /* ER_LOCK_WAIT_TIMEOUT */; }

static int load_chunk_once(lworker *w, job *j, sl_error *err);

/* A streamed chunk the loader skips is still read to its end: its dump worker waits for that. */
static void drain_stream(const char *path)
{
    sl_stream_reader r;
    char buf[65536];
    if (sl_stream_open(&r, path) <= 0)
        return;
    while (sl_stream_read(&r, buf, sizeof buf) > 0)
        ;
    sl_stream_close(&r);
}

static int load_chunk(lworker *w, job *j, sl_error *err)
{
    /* A streamed chunk is read once: a failure of it fails the task, and the resume dumps
     * again from a new snapshot (the stale-load rules) instead of retrying here. */
    const int ATTEMPTS = sl_stream_path(j->path) ? 1 : 5;
    int rc = 0;
    w->credited_bytes = 0;
    for (int attempt = 1; attempt <= ATTEMPTS; attempt++) {
        w->attempt_bytes = 0;
        w->last_errno = 0;
        w->stream_done = 0;
        rc = load_chunk_once(w, j, err);
        if (rc == 0)
            return 0;
        unsigned e = w->last_errno;
        if (rc != SL_EDB || !retryable(e) || attempt == ATTEMPTS || w->l->host->should_stop(w->l->ctx)) {
            /* the chunk is not loaded: its bytes leave the progress */
            atomic_fetch_sub(&w->l->finished_bytes, w->credited_bytes);
            break;
        }
        w->l->host->log(w->l->ctx, SL_LOG_WARN, "chunk %s into %s%s: %s; retrying (attempt %d of %d)",
                        j->id, j->table, j->more ? " (with the chunks of its group)" : "",
                        err->msg, attempt + 1, ATTEMPTS);
        usleep(50000u * (unsigned)attempt);
    }
    return rc;
}

/* The warnings of the statement that just ran on the worker's connection: a duplicate key fails
 * the chunk when on_duplicate is error, any other warning (benign ENUM ones aside) always. */
static int check_warnings(lworker *w, const job *j, sl_error *err)
{
    if (!mysql_warning_count(w->db))
        return 0;
    char dup[512], other[512];
    int bad = read_warnings(w->db, j->enums, dup, sizeof dup, other, sizeof other);
    if (w->find_dup && dup[0]) {          /* dup_key_of: one key is all it needs */
        snprintf(w->dup, sizeof w->dup, "%s", dup);
        return sl_error_set(err, SL_EEXIST, "%s", dup);
    }
    if (w->l->cfg->on_duplicate == DUP_ERROR && dup[0])
        return sl_error_set(err, SL_EDB, "target: duplicate key loading chunk %s into %s "
                            "(on_duplicate is error): %s", j->id, j->table, dup);
    if (bad)
        return sl_error_set(err, SL_EDB, "target: chunk %s into %s would not load exactly: %s",
                            j->id, j->table, other);
    return 0;
}

static int sql_failed(lworker *w, const job *j, unsigned e, const char *msg, sl_error *err)
{
    w->last_errno = e;
    return sl_error_set(err, sl_myconn_is_conn_error(e) ? SL_ECONN : SL_EDB,
                        "target: loading chunk %s into %s: %s (errno %u)", j->id, j->table, msg, e);
}

/* ---- the bulk path: the binary protocol's array INSERT ---------------------------------------- */

/*
 * Why: LOAD DATA makes the target parse every byte of text (READ_INFO::read_field and
 * String::append were a quarter of its CPU, issue 12). An INSERT executed with arrays of
 * parameters (COM_STMT_BULK_EXECUTE) hands the server each value's bytes and length, so sluice
 * splits the chunk's lines and fields instead. Measured on 500,000 sysbench rows into one table,
 * one connection: 1.05-1.09 s of target CPU against 1.70-1.81 s for LOAD DATA of the same chunk
 * files, and 1.6 s of wall time against 1.9 s.
 *
 * Exactness: every value goes as a binary string (MYSQL_TYPE_BLOB: the server takes it in the
 * binary character set, whatever the connection's), which the column's Field::store converts as
 * LOAD DATA ... CHARACTER SET binary does; NULL goes as the NULL indicator; the statement is
 * INSERT IGNORE or REPLACE as LOAD DATA's IGNORE or REPLACE, and its warnings are read after
 * every batch (SHOW WARNINGS covers one statement) with the same rules. Only tables whose columns
 * all have a type the test matrix proves (bulk_type) take this path; a row of them is under
 * 65,535 bytes (MariaDB's row limit without BLOB/TEXT), so a batch stays bounded.
 */
#define BULK_BUF   (1u << 20)      /* chunk text read at a time (a batch's values live in it) */
#define BULK_CELLS 65536u          /* values in a batch: rows x columns */
#define BULK_ROWS  4096u
#define BULK_LINE_MAX (16u << 20)  /* a longer line is not a row of a bulk table */
#define BULK_FIELDS 4097u          /* a line's fields, split (MariaDB's 4,096 columns and one) */

/* The column types the bulk path takes (the first word of information_schema COLUMN_TYPE). */
static int bulk_type(const char *type_text)
{
    static const char *const ok[] = {
        "tinyint", "smallint", "mediumint", "int", "bigint", "decimal", "float", "double",
        "date", "time", "datetime", "timestamp", "year", "char", "varchar", "binary", "varbinary",
        NULL,
    };
    if (!type_text)
        return 0;
    size_t n = strcspn(type_text, "( ");
    for (size_t i = 0; ok[i]; i++)
        if (strlen(ok[i]) == n && strncmp(type_text, ok[i], n) == 0)
            return 1;
    return 0;
}

/* The marker that starts every bulk INSERT of this dump directory, so that wait_rollbacks finds
 * an earlier run's statements in PROCESSLIST as it finds its LOAD DATA (the directory's hash:
 * a path could end a comment). */
static void bulk_marker(const loader *l, char *out, size_t n)
{
    uint64_t h = hash_str(l->dir);
    snprintf(out, n, "/*sluice-load:%016llx*/ ", (unsigned long long)h);
}

/* Execute the batch of rows (values in w->bptr/blen/bnull, column-wise) and check its warnings. */
static int bulk_exec(lworker *w, const job *j, MYSQL_STMT *st, unsigned rows, size_t stride,
                     uint64_t *affected, sl_error *err)
{
    MYSQL_BIND *b = calloc(j->ncols, sizeof *b);
    if (!b)
        return sl_error_set(err, SL_ENOMEM, "no memory");
    for (uint32_t c = 0; c < j->ncols; c++) {
        b[c].buffer_type = MYSQL_TYPE_BLOB;
        b[c].buffer = &w->bptr[c * stride];
        b[c].length = &w->blen[c * stride];
        b[c].u.indicator = &w->bnull[c * stride];
    }
    int failed = mysql_stmt_attr_set(st, STMT_ATTR_ARRAY_SIZE, &rows) || mysql_stmt_bind_param(st, b) ||
                 mysql_stmt_execute(st);
    free(b);
    if (failed)
        return sql_failed(w, j, mysql_stmt_errno(st), mysql_stmt_error(st), err);
    my_ulonglong n = mysql_stmt_affected_rows(st);
    if (n != (my_ulonglong)-1)
        *affected += n;
    return check_warnings(w, j, err);
}

/* Read the chunk (a file or a stream, through the LOCAL INFILE handler's reader, which counts
 * the progress) and insert its rows in batches. */
static int bulk_chunk(lworker *w, const job *j, uint64_t *affected, sl_error *err)
{
    MYSQL *db = w->db;
    if (!w->bpacket) {
        unsigned long mp = 0;
        if (mysql_real_query(db, "SELECT @@max_allowed_packet", 27) == 0) {
            MYSQL_RES *r = mysql_store_result(db);
            MYSQL_ROW row = r ? mysql_fetch_row(r) : NULL;
            mp = row && row[0] ? strtoul(row[0], NULL, 10) : 0;
            if (r)
                mysql_free_result(r);
        }
        if (!mp)
            return sql_failed(w, j, mysql_errno(db), "reading max_allowed_packet", err);
        w->bpacket = mp;
    }
    if (!w->bbuf) {
        w->bbuf = malloc(BULK_BUF);
        w->bptr = malloc(BULK_CELLS * sizeof *w->bptr);
        w->blen = malloc(BULK_CELLS * sizeof *w->blen);
        w->bnull = malloc(BULK_CELLS);
        w->bfield = malloc(BULK_FIELDS * sizeof *w->bfield);
        w->bflen = malloc(BULK_FIELDS * sizeof *w->bflen);
        if (!w->bbuf || !w->bptr || !w->blen || !w->bnull || !w->bfield || !w->bflen)
            return sl_error_set(err, SL_ENOMEM, "no memory");
        w->bcap = BULK_BUF;
    }
    /* a batch's values stay under half the packet the server takes (each value also carries
     * its length and indicator) */
    uint64_t batch_bytes = w->bpacket / 2 < BULK_BUF ? w->bpacket / 2 : BULK_BUF;
    size_t stride = BULK_CELLS / j->ncols;
    if (stride > BULK_ROWS)
        stride = BULK_ROWS;
    void *fh = NULL;
    if (infile_init(&fh, j->path, w) != 0) {
        char m[512];
        infile_error(fh, m, sizeof m);
        infile_end(fh);
        return sl_error_set(err, SL_EIO, "loading chunk %s into %s: %s", j->id, j->table, m);
    }
    MYSQL_STMT *st = mysql_stmt_init(db);
    if (!st) {
        infile_end(fh);
        return sl_error_set(err, SL_ENOMEM, "no memory");
    }
    int rc = 0;
    if (mysql_stmt_prepare(st, j->ins, (unsigned long)strlen(j->ins)) != 0)
        rc = sql_failed(w, j, mysql_stmt_errno(st), mysql_stmt_error(st), err);
    size_t len = 0, pos = 0;
    int eof = 0;
    uint64_t line_no = 0;
    while (rc == 0) {
        /* the complete lines in bbuf[pos, len): one batch */
        unsigned rows = 0;
        uint64_t bytes = 0;
        while (rows < stride && bytes < batch_bytes) {
            char *p = w->bbuf + pos, *nl = memchr(p, '\n', len - pos);
            if (!nl)
                break;
            line_no++;
            int nf = sl_tsv_split(p, (size_t)(nl - p), w->bfield, w->bflen, BULK_FIELDS);
            if (nf < 0 || (uint32_t)nf != j->ncols) {
                rc = nf < 0 ? sl_error_set(err, SL_EIO, "chunk %s (%s) line %llu: it ends in a lone "
                                           "backslash or has more than %u fields", j->id, j->path,
                                           (unsigned long long)line_no, BULK_FIELDS - 1)
                            : sl_error_set(err, SL_EIO, "chunk %s (%s) line %llu: %d field%s, not %u",
                                           j->id, j->path, (unsigned long long)line_no, nf,
                                           nf == 1 ? "" : "s", j->ncols);
                break;
            }
            for (uint32_t c = 0; c < j->ncols; c++) {
                size_t at = c * stride + rows;
                w->bnull[at] = w->bfield[c] ? STMT_INDICATOR_NONE : STMT_INDICATOR_NULL;
                w->bptr[at] = (char *)(w->bfield[c] ? w->bfield[c] : p);
                w->blen[at] = (unsigned long)w->bflen[c];
            }
            bytes += (uint64_t)(nl + 1 - (w->bbuf + pos));
            pos = (size_t)(nl + 1 - w->bbuf);
            rows++;
        }
        if (rc)
            break;
        if (rows) {
            rc = bulk_exec(w, j, st, rows, stride, affected, err);
            continue;
        }
        if (eof) {
            if (pos < len)
                rc = sl_error_set(err, SL_EIO, "chunk %s (%s): its last line has no end",
                                  j->id, j->path);
            break;
        }
        /* no complete line left: keep the partial one and read on */
        memmove(w->bbuf, w->bbuf + pos, len - pos);
        len -= pos;
        pos = 0;
        if (len == w->bcap) {
            if (w->bcap >= BULK_LINE_MAX) {
                rc = sl_error_set(err, SL_EIO, "chunk %s (%s) line %llu: longer than %u bytes",
                                  j->id, j->path, (unsigned long long)line_no + 1, BULK_LINE_MAX);
                break;
            }
            char *nb = realloc(w->bbuf, w->bcap * 2);
            if (!nb) {
                rc = sl_error_set(err, SL_ENOMEM, "no memory");
                break;
            }
            w->bbuf = nb;
            w->bcap *= 2;
        }
        while (len < w->bcap) {
            size_t want = w->bcap - len;
            int n = infile_read(fh, w->bbuf + len, want > (1u << 30) ? (1u << 30) : (unsigned)want);
            if (n < 0) {
                char m[512];
                infile_error(fh, m, sizeof m);
                rc = sl_error_set(err, SL_EIO, "loading chunk %s into %s: %s", j->id, j->table, m);
                break;
            }
            if (n == 0) {
                eof = 1;
                break;
            }
            len += (size_t)n;
        }
    }
    mysql_stmt_close(st);
    infile_end(fh);
    return rc;
}

/* ---- a shard merge's rows are never replaced by another shard's --------------------------------- */

static int load_one(lworker *w, job *j, sl_error *err);

/* 1 if j's target table takes rows of another source table too: this source's dump routes two
 * or more into it (their CREATE TABLEs came, handle_ddl), or another source of the task claimed
 * it (claim_table, committed before that source's first chunk); 0 if not; < 0 with err when the
 * claims cannot be read. */
static int merged_target(lworker *w, const job *j, sl_error *err)
{
    loader *l = w->l;
    size_t n = 0;
    pthread_mutex_lock(&l->mu);
    int many = strset_get(&l->merge_n, j->table, &n) && n > 1;
    pthread_mutex_unlock(&l->mu);
    if (many)
        return 1;
    sl_sbuf q;
    sl_sbuf_init(&q);
    sl_sbuf_adds(&q, "SELECT 1 FROM ");
    sl_ckpt_loader_tables_name(&q, l->cfg->meta_schema, l->cfg->task_name);
    sl_sbuf_adds(&q, " WHERE target_schema = ");
    sl_sbuf_add_quoted(&q, j->tschema, strlen(j->tschema));
    sl_sbuf_adds(&q, " AND target_table = ");
    sl_sbuf_add_quoted(&q, j->ttable, strlen(j->ttable));
    sl_sbuf_adds(&q, " AND source_name <> ");
    sl_sbuf_add_quoted(&q, l->cfg->source_name, strlen(l->cfg->source_name));
    sl_sbuf_adds(&q, " LIMIT 1");
    if (q.oom) {
        sl_sbuf_free(&q);
        return sl_error_set(err, SL_ENOMEM, "no memory");
    }
    int rc = mysql_real_query(w->db, q.p, (unsigned long)q.len);
    sl_sbuf_free(&q);
    if (rc != 0)
        return sql_failed(w, j, mysql_errno(w->db), mysql_error(w->db), err);
    MYSQL_RES *r = mysql_store_result(w->db);
    int other = r && mysql_num_rows(r) > 0;
    if (r)
        mysql_free_result(r);
    return other;
}

/*
 * A chunk loaded with REPLACE removed `replaced` rows (the server counts a replaced row twice in
 * the affected rows, MySQL manual "REPLACE Statement"; a row equal in every column whose key is
 * the table's last unique key is rewritten in place and counted once, and nothing is lost
 * then). None of them is the chunk's own source table's: a chunk commits with its checkpoint
 * row, so a resume never finds rows of a chunk it loads, and a load redone from a new snapshot
 * empties the table first or refuses (claim_table). In a table that several source
 * tables merge into they are therefore another shard's rows (or rows the target held before):
 * replacing them would lose them without a word (exploratory report D4: shards with
 * overlapping AUTO_INCREMENT ids kept a quarter of their rows), so the chunk fails instead
 * (load_chunk_once names a key). In a table of one source table they are rows the target held
 * before the task, which on_duplicate replace replaces, as documented.
 */
static int merge_collision(lworker *w, job *j, uint64_t replaced, sl_error *err)
{
    int m = merged_target(w, j, err);
    if (m <= 0)
        return m;
    w->collided = j;
    w->replaced = replaced;
    return sl_error_set(err, SL_EEXIST, "chunk %s into %s would replace rows of another shard",
                        j->id, j->table);
}

/* A copy of stmt with the REPLACE at kw made IGNORE ("REPLACE INTO" of the bulk path becomes
 * "INSERT IGNORE INTO"); NULL when out of memory. */
static char *ignore_variant(const char *stmt, size_t kw, int bulk)
{
    sl_sbuf b;
    sl_sbuf_init(&b);
    sl_sbuf_add(&b, stmt, kw);
    sl_sbuf_adds(&b, bulk ? "INSERT IGNORE" : "IGNORE");
    sl_sbuf_adds(&b, stmt + kw + 7);      /* after "REPLACE" */
    if (b.oom) {
        sl_sbuf_free(&b);
        return NULL;
    }
    return b.p;
}

/* Name a key that chunks j .. last (a group's, in its order) share with rows in the target, as
 * the server words it ("Duplicate entry '17' for key 'PRIMARY'"): after the rollback of their
 * transaction they load again with IGNORE, whose warnings name each such key, and are rolled
 * back. out gets "" when none is found, or for a streamed chunk (read once). */
static void dup_key_of(lworker *w, job *j, job *last, char *out, size_t n)
{
    sl_error e = {0};
    w->dup[0] = '\0';
    w->find_dup = 1;
    for (job *c = j; c && !w->dup[0]; c = c == last ? NULL : c->more) {
        if (sl_stream_path(c->path) || !c->kw)
            break;
        char *sql = ignore_variant(c->sql, c->kw, 0);
        char *ins = c->ins ? ignore_variant(c->ins, c->kw_ins, 1) : NULL;
        if (!sql || (c->ins && !ins)) {
            free(sql);
            free(ins);
            break;
        }
        char *keep_sql = c->sql, *keep_ins = c->ins;
        c->sql = sql;
        c->ins = ins;
        w->attempt_bytes = 0;
        int rc = load_one(w, c, &e);
        c->sql = keep_sql;
        c->ins = keep_ins;
        free(sql);
        free(ins);
        if (rc < 0 && rc != SL_EEXIST)
            break;
    }
    w->find_dup = 0;
    sl_myconn_exec(w->db, "ROLLBACK", 8, NULL);
    snprintf(out, n, "%s", w->dup);
}

/* One chunk's rows (LOAD DATA, or the bulk path) in the worker's open transaction, their warnings
 * checked. The caller rolls the transaction back when this fails. */
static int load_one(lworker *w, job *j, sl_error *err)
{
    loader *l = w->l;
    MYSQL *db = w->db;
    uint64_t affected = 0;
    int rc;
    if (j->ins) {
        rc = bulk_chunk(w, j, &affected, err);
    } else if (mysql_real_query(db, j->sql, (unsigned long)strlen(j->sql)) != 0) {
        rc = sql_failed(w, j, mysql_errno(db), mysql_error(db), err);
    } else {
        affected = mysql_affected_rows(db);
        rc = check_warnings(w, j, err);
    }
    if (rc)
        return rc;
    if (sl_stream_path(j->path)) {
        if (!w->stream_done)       /* cannot happen: the reader fails the load first */
            return sl_error_set(err, SL_EIO, "chunk %s into %s: its stream ended early", j->id, j->table);
        /* the event had the plan's estimate; the chunk row keeps what was loaded */
        atomic_fetch_add(&l->rows_streamed, (long long)w->stream_rows - (long long)j->rows);
        j->rows = w->stream_rows;
    }
    if (l->cfg->on_duplicate == DUP_ERROR && affected < j->rows)
        return sl_error_set(err, SL_EDB, "target: duplicate key loading chunk %s into %s "
                            "(on_duplicate is error): rows were skipped", j->id, j->table);
    if (j->kw && !w->find_dup && affected > j->rows)
        return merge_collision(w, j, affected - j->rows, err);
    return 0;
}

/* The failure of chunk group j whose chunk w->collided would have replaced another shard's rows
 * (merge_collision), with a key they share. The transaction was rolled back. */
static int collision_error(lworker *w, job *j, sl_error *err)
{
    job *c = w->collided;
    char key[512];
    dup_key_of(w, j, c, key, sizeof key);
    w->collided = NULL;
    w->last_errno = 0;            /* no retry: the same rows would collide again */
    return sl_error_set(err, SL_EDB, "target: chunk %s of %s would replace %llu row%s already in "
                        "%s, which several source tables merge into, with rows of the same key "
                        "(%s): they are another shard's rows, and on_duplicate replace would "
                        "overwrite them. Nothing of the chunk was loaded. Make the key unique "
                        "across the shards (docs/tasks.md, Shard merge prechecks), empty %s and "
                        "start the task again with remove_meta", c->id, c->src ? c->src : "?",
                        (unsigned long long)w->replaced, w->replaced == 1 ? "" : "s", c->table,
                        key[0] ? key : "two shards hold rows with the same key", c->table);
}

/* The chunk's row in the loader checkpoint, as one statement. */
static void add_chunk_row(const loader *l, sl_sbuf *b, const job *j)
{
    sl_sbuf_adds(b, "INSERT INTO ");
    sl_ckpt_table_name(b, l->cfg->meta_schema, l->cfg->task_name, 0);
    /* fenced (a cluster): the chunk row, and with it the chunk's rows, commit only while this
     * process still owns the source (ckpt.h) */
    int fenced = l->cfg->fence_epoch > 0;
    sl_sbuf_adds(b, fenced ? " (source_name, chunk_id, snapshot, row_count) SELECT "
                           : " (source_name, chunk_id, snapshot, row_count) VALUES (");
    sl_sbuf_add_quoted(b, l->cfg->source_name, strlen(l->cfg->source_name));
    sl_sbuf_adds(b, ", ");
    sl_sbuf_add_quoted(b, j->id, strlen(j->id));
    sl_sbuf_adds(b, ", ");
    sl_sbuf_add_quoted(b, l->snap.id, strlen(l->snap.id));
    sl_sbuf_addf(b, ", %llu", (unsigned long long)j->rows);
    if (fenced)
        sl_ckpt_add_fence_guard(b, l->cfg->meta_schema, l->cfg->source_name, l->cfg->fence_epoch);
    else
        sl_sbuf_adds(b, ")");
    /* After a redump, rows of the old snapshot are overwritten (the tables were emptied first);
     * otherwise a second row for the same chunk is an error: a chunk is never loaded twice. */
    if (l->stale)
        sl_sbuf_adds(b, " ON DUPLICATE KEY UPDATE snapshot = VALUES(snapshot), "
                        "row_count = VALUES(row_count), finished_at = CURRENT_TIMESTAMP");
}

/* A job's chunk, or its group of chunks, in one transaction: each LOAD DATA (autocommit is off in
 * this session, WORKER_INIT, so the first opens the transaction), then every chunk's checkpoint
 * row and COMMIT in one round trip. */
static int load_chunk_once(lworker *w, job *j, sl_error *err)
{
    loader *l = w->l;
    MYSQL *db = w->db;
    int rc = 0;
    w->collided = NULL;
    for (job *c = j; c && rc == 0; c = c->more)
        rc = load_one(w, c, err);
    if (rc) {
        sl_myconn_exec(db, "ROLLBACK", 8, NULL);
        if (rc == SL_EEXIST && w->collided)
            rc = collision_error(w, j, err);
        return rc;
    }
    sl_sbuf b;
    sl_sbuf_init(&b);
    for (job *c = j; c; c = c->more) {
        add_chunk_row(l, &b, c);
        sl_sbuf_adds(&b, "; ");
    }
    /* One round trip: the server runs COMMIT only if every INSERT succeeded (a failed statement
     * ends a multi-statement), and a failure of any is rolled back below. */
    sl_sbuf_adds(&b, "COMMIT");
    rc = b.oom ? sl_error_set(err, SL_ENOMEM, "no memory") : sl_myconn_exec(db, b.p, b.len, err);
    sl_sbuf_free(&b);
    int fenced = rc && l->cfg->fence_epoch > 0 && strstr(err->msg, SL_CKPT_FENCED_ERR);
    if (fenced)
        rc = sl_error_set(err, SL_ESTATE, "fenced: source %s belongs to a newer owner (its fence "
                          "in the target moved past epoch %lld): chunk %s%s was not loaded",
                          l->cfg->source_name, (long long)l->cfg->fence_epoch, j->id,
                          j->more ? " and the chunks loaded with it" : "");
    if (rc) {
        w->last_errno = mysql_errno(db);
        sl_myconn_exec(db, "ROLLBACK", 8, NULL);
    }
    if (fenced) {               /* no DDL job of this loader runs any more (take_job) */
        pthread_mutex_lock(&l->mu);
        l->fenced = 1;
        pthread_mutex_unlock(&l->mu);
    }
    return rc;
}

/* A worker takes at most this many DDL jobs at a time (take_ddls) */
#define DDL_BATCH 16

static int run_ddl_jobs(lworker *w, job *j, sl_error *e);
static void take_ddls(loader *l, job *j);
static void ddl_done_locked(loader *l, job *c);
static int queue_build(loader *l, size_t i, int force);

/* Put j at the end of the list head..tail. */
static void link_job(job **head, job **tail, job *j)
{
    if (*tail)
        (*tail)->next = j;
    else
        *head = j;
    *tail = j;
}

/* Put j at the end of the queue and wake the workers (one that waits for its table may not
 * take it, see take_job). Call with mu held. */
static void append_locked(loader *l, job *j)
{
    link_job(&l->head, &l->tail, j);
    l->qlen++;
    pthread_cond_broadcast(&l->cv_job);
}

static int table_loading(const loader *l, const char *table)
{
    for (size_t i = 0; i < l->nw; i++)
        if (l->w[i].loading && strcmp(l->w[i].loading, table) == 0)
            return 1;
    return 0;
}

/* 1 if job j may run: an index build, or chunks (a group: each of them) of tables whose DDL jobs
 * are all done. Once ready, a job stays so (a table's DDL comes before its chunks). Under mu. */
static int job_ready(const loader *l, job *j)
{
    if (j->plain || j->ready)
        return 1;
    for (const job *c = j; c; c = c->more) {
        size_t n;
        if (strset_get(&l->ddl_wait, c->table, &n) && n > 0)
            return 0;
    }
    j->ready = 1;
    return 1;
}

/* Take j (after prev, or the first) out of the list head..tail. */
static job *unlink_job(job **head, job **tail, job *prev, job *j)
{
    if (prev)
        prev->next = j->next;
    else
        *head = j->next;
    if (*tail == j)
        *tail = prev;
    j->next = NULL;
    return j;
}

/*
 * The next job for a worker, taken out of its list, or NULL to wait. Under mu.
 *
 * Tables are created while others load. The dump sends every table's CREATE before any chunk,
 * and the CREATEs of 2,000 small tables kept the target busy for 9 s (each creates and syncs a
 * tablespace file) before the first row went in (issue 12). So the DDL jobs wait in their own
 * list and a chunk waits only for its own table's DDL (job_ready): a worker takes a chunk that
 * can load, else the next DDL (they are in the dump's table order, which is its chunks' order),
 * so the first tables load while the next are created.
 *
 * One connection per table at a time where it can be: loads into a table with an AUTO_INCREMENT
 * column never run side by side. InnoDB (innodb_autoinc_lock_mode 1, MariaDB's default) holds
 * that table's AUTO-INC lock for a whole LOAD DATA statement, so a second load of the table only
 * waits (measured: four connections loading one 500,000-row table used one core), and the bulk
 * path's INSERTs contend for its auto-increment mutex on every row (3.1 s of target CPU with two
 * connections against 1.1 s with one). So a chunk of a table another worker loads is passed
 * over for a later one of another table; failing that (and when no DDL waits), a table without
 * AUTO_INCREMENT is loaded by several connections at once, one with it waits. Chunks are
 * independent transactions, so the order in which they load does not matter.
 *
 * While the loader stops (ddl_only), only DDL jobs are taken, and they run even after a job
 * failed: the tables of a DDL batch are all created even when the pipeline stops or fails after
 * it (a chunk's duplicate key, a transform refusing a chunk), as when every CREATE ran before
 * the first chunk (stop_workers). Not in a cluster (fencing on), where a stop may be a lost
 * lease, nor after a chunk found the source fenced: a newer owner loads it, maybe from a newer
 * snapshot whose tables differ, and the jobs left are dropped.
 */
static job *take_job(loader *l)
{
    job *prev = NULL, *fb = NULL, *fb_prev = NULL;
    for (job *j = l->ddl_only ? NULL : l->head; j; prev = j, j = j->next) {
        if (!job_ready(l, j))
            continue;
        if (j->plain || j->more || !table_loading(l, j->table)) {
            l->qlen--;
            return unlink_job(&l->head, &l->tail, prev, j);
        }
        if (!fb && !j->ai) {
            fb = j;
            fb_prev = prev;
        }
    }
    if (l->dhead)
        return unlink_job(&l->dhead, &l->dtail, NULL, l->dhead);
    if (!fb)
        return NULL;
    l->qlen--;
    return unlink_job(&l->head, &l->tail, fb_prev, fb);
}

static void worker_main(void *arg)
{
    lworker *w = arg;
    loader *l = w->l;
    for (;;) {
        pthread_mutex_lock(&l->mu);
        job *j = NULL;
        while (!l->quit && !(j = take_job(l)))
            pthread_cond_wait(&l->cv_job, &l->mu);
        if (l->quit) {          /* then j is NULL: the queue's jobs are stop_workers' */
            pthread_mutex_unlock(&l->mu);
            break;
        }
        if (j->plain == 2)
            take_ddls(l, j);
        if (!j->plain && !j->more)
            w->loading = j->table;
        l->busy++;
        pthread_cond_broadcast(&l->cv_space);
        int failed = l->werr, fenced = l->fenced;
        pthread_mutex_unlock(&l->mu);

        sl_error e = {0};
        int rc = 0;
        if (j->plain == 2) {                /* even after another failure: see take_job */
            rc = fenced ? 0 : run_ddl_jobs(w, j, &e);
        } else if (!failed && j->plain) {
            rc = sl_myconn_exec(w->db, j->sql, strlen(j->sql), &e);
            if (rc && j->early && !l->host->should_stop(l->ctx)) {
                /* e.g. its online log outgrew innodb_online_alter_log_max_size: the rows are
                 * all there, so build after the last chunk as without the early start */
                l->host->log(l->ctx, SL_LOG_WARN, "target: building the secondary indexes of %s "
                             "while its last chunks load: %s; building them after its last chunk",
                             j->table, e.msg);
                pthread_mutex_lock(&l->mu);
                l->deferred[j->early - 1].queued = 0;
                l->deferred[j->early - 1].no_early = 1;
                pthread_mutex_unlock(&l->mu);
                e = (sl_error){0};
                rc = queue_build(l, (size_t)(j->early - 1), 0);
            } else if (rc) {
                sl_error_prefix(&e, "target: building the secondary indexes of %s", j->table);
            }
        } else if (!failed) {
            rc = load_chunk(w, j, &e);
            if (!rc) {
                unsigned long long n = 0;
                for (job *c = j; c; c = c->more)
                    n++;
                atomic_fetch_add(&l->chunks_loaded, n);
                atomic_fetch_add(&l->txns, 1);
                for (job *c = j; c; c = c->more)
                    if (c->ins)
                        atomic_fetch_add(&l->chunks_bulk, 1);
            }
        }
        if (rc)
            set_werr(l, &e);
        /* before this worker counts as idle: wait_idle must not see a gap. Every chunk of a
         * group is counted in before any build is queued: the group committed as one, so its
         * last chunks are not still to load (an early build then would be only the late one). */
        pthread_mutex_lock(&l->mu);
        for (job *c = j; c; c = c->more) {
            if (c->dt < 0)
                continue;
            l->deferred[c->dt].inflight--;
            if (!rc)
                l->deferred[c->dt].bytes_in += c->bytes;
        }
        pthread_mutex_unlock(&l->mu);
        for (job *c = j; c && !rc; c = c->more)
            if (c->dt >= 0)
                queue_build(l, (size_t)c->dt, 0);
        pthread_mutex_lock(&l->mu);
        for (job *c = j; j->plain == 2 && c; c = c->more)
            ddl_done_locked(l, c);      /* what run_ddl_jobs left: chunks may wait for it */
        if (w->loading) {           /* a worker may wait for this table */
            w->loading = NULL;      /* (it points into j->table) */
            pthread_cond_broadcast(&l->cv_job);
        }
        l->busy--;
        if (!l->head && !l->dhead && l->busy == 0)
            pthread_cond_broadcast(&l->cv_idle);
        pthread_mutex_unlock(&l->mu);
        job_free(j);
    }
}

static void stop_workers(loader *l)
{
    pthread_mutex_lock(&l->mu);
    /* the tables of the DDLs taken are created first (take_job); not in a cluster (fencing
     * on), where the stop may be a lost lease and another worker may own the source now */
    l->ddl_only = 1;
    pthread_cond_broadcast(&l->cv_job);
    while (l->nthreads && l->ndl && l->cfg->fence_epoch == 0)
        sl_cond_wait_ms(&l->cv_idle, &l->mu, 1000);
    l->quit = 1;
    pthread_cond_broadcast(&l->cv_job);
    pthread_mutex_unlock(&l->mu);
    for (size_t i = 0; i < l->nthreads; i++)
        l->host->thread_join(l->ctx, l->w[i].thread);
    l->nthreads = 0;
    for (size_t i = 0; i < l->nw; i++) {
        if (l->w[i].db)
            mysql_close(l->w[i].db);
        free(l->w[i].bbuf);
        free(l->w[i].bptr);
        free(l->w[i].blen);
        free(l->w[i].bnull);
        free(l->w[i].bfield);
        free(l->w[i].bflen);
    }
    free(l->w);
    l->w = NULL;
    l->nw = 0;
    while (l->head) {
        job *j = l->head;
        l->head = j->next;
        job_free(j);
    }
    while (l->dhead) {
        job *j = l->dhead;
        l->dhead = j->next;
        job_free(j);
    }
    l->tail = l->dtail = NULL;
    l->qlen = l->ndl = 0;
    strset_clear(&l->ddl_wait);
    l->quit = l->ddl_only = l->fenced = 0;
    job_free(take_group(l));
}

/* Wait until every queued chunk is loaded (or a worker failed). */
static int wait_idle(loader *l)
{
    pthread_mutex_lock(&l->mu);
    while ((l->head || l->dhead || l->busy) && !l->werr) {
        sl_cond_wait_ms(&l->cv_idle, &l->mu, 1000);
    }
    int werr = l->werr;
    pthread_mutex_unlock(&l->mu);
    if (werr)
        return l->host->fail(l->ctx, werr, "%s", l->werr_msg.msg);
    return 0;
}

/* ---- the run ----------------------------------------------------------------------------------- */

/*
 * Before the first chunk of a run: wait until no earlier session of this load is still on the
 * target. A SIGKILLed loader leaves its connections' transactions behind; the server rolls
 * each back (statement rollback of a LOAD DATA, then the transaction) while holding its row
 * locks. New chunk loads that touch the same rows would queue behind that rollback, each
 * waiting transaction growing the lock heap, which on a small buffer pool takes InnoDB down
 * ("Over 95 percent of the buffer pool is occupied by lock heaps", issue 12). So wait for
 *  - statements of our own earlier loads (PROCESSLIST INFO starting with LOAD DATA of a file
 *    of this source's dump directory, or with the bulk path's marker for it): always, however
 *    long they take;
 *  - any transaction InnoDB is rolling back (a disconnected session's): at most 10 minutes,
 *    then go on with a warning (it may be another application's, and chunks are bounded in
 *    bytes by the dump, so a chunk of ours alone cannot exhaust the lock heap).
 * Returns 0, or a negative code after host->fail.
 */
static int wait_rollbacks(loader *l)
{
    sl_sbuf pre, q;
    sl_sbuf_init(&pre);
    sl_sbuf_init(&q);
    /* The statement text as handle_chunk writes it, up to the directory: "LOAD DATA LOCAL
     * INFILE '<dir>/" (the closing quote of the file name cut off). */
    sl_sbuf_adds(&pre, "LOAD DATA LOCAL INFILE ");
    sl_sbuf_add_quoted(&pre, l->dir, strlen(l->dir));
    if (!pre.oom && pre.len)
        pre.p[--pre.len] = '\0';
    sl_sbuf_adds(&pre, "/");
    char mark[64];
    bulk_marker(l, mark, sizeof mark);
    sl_sbuf_adds(&q, "SELECT (SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                     "WHERE ID <> CONNECTION_ID() AND (LOCATE(");
    sl_sbuf_add_quoted(&q, pre.p ? pre.p : "", pre.len);
    sl_sbuf_adds(&q, ", INFO) = 1 OR LOCATE(");
    sl_sbuf_add_quoted(&q, mark, strlen(mark));
    sl_sbuf_adds(&q, ", INFO) = 1)), (SELECT COUNT(*) FROM information_schema.INNODB_TRX "
                     "WHERE trx_state = 'ROLLING BACK')");
    sl_sbuf_free(&pre);
    if (q.oom) {
        sl_sbuf_free(&q);
        return l->host->fail(l->ctx, SL_ENOMEM, "no memory");
    }
    int rc = 0;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long polls = 0;; polls++) {
        if (mysql_real_query(l->ctl, q.p, (unsigned long)q.len) != 0) {
            rc = l->host->fail(l->ctx, SL_EDB, "target: looking for rollbacks of an earlier load: %s",
                               mysql_error(l->ctl));
            break;
        }
        MYSQL_RES *r = mysql_store_result(l->ctl);
        MYSQL_ROW row = r ? mysql_fetch_row(r) : NULL;
        long ours = row && row[0] ? atol(row[0]) : 0, rolling = row && row[1] ? atol(row[1]) : 0;
        if (r)
            mysql_free_result(r);
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long waited = (long)(now.tv_sec - t0.tv_sec);
        if (ours == 0 && (rolling == 0 || waited >= 600)) {
            if (rolling)
                l->host->log(l->ctx, SL_LOG_WARN, "target: %ld transactions are still rolling back "
                             "after %ld s; loading anyway", rolling, waited);
            else if (polls)
                l->host->log(l->ctx, SL_LOG_INFO, "target: the earlier load's transactions are gone "
                             "after %ld s", waited);
            break;
        }
        if (polls % 50 == 0)
            l->host->log(l->ctx, SL_LOG_INFO, "target: waiting for %ld chunk loads of an earlier run "
                         "and %ld transactions rolling back before loading", ours, rolling);
        if (l->host->should_stop(l->ctx)) {
            rc = SL_ESTOPPED;
            break;
        }
        usleep(200000);
    }
    sl_sbuf_free(&q);
    return rc;
}

static int ctl_scalar(loader *l, const char *sql, size_t len, char **out, sl_error *e);

/* The target's InnoDB redo log capacity in bytes, 0 if it has none it tells (not InnoDB, not
 * MySQL or MariaDB): MySQL 8.0.30's innodb_redo_log_capacity, else the log files' size times
 * their number (MySQL before), else MariaDB's one file. The early index build's log line tells it
 * (the early start needed 512 MiB until session 26: see early_build_due). */
static uint64_t target_redo_bytes(loader *l)
{
    static const char *const q[] = {
        "SELECT @@GLOBAL.innodb_redo_log_capacity",
        "SELECT @@GLOBAL.innodb_log_file_size * @@GLOBAL.innodb_log_files_in_group",
        "SELECT @@GLOBAL.innodb_log_file_size",
    };
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
        char *v = NULL;
        sl_error e = {0};
        if (ctl_scalar(l, q[i], strlen(q[i]), &v, &e) == 0) {
            uint64_t n = v ? strtoull(v, NULL, 10) : 0;
            free(v);
            return n;
        }
    }
    return 0;
}

/* Checkpoint tables, the snapshot being loaded and the chunks already loaded from it. */
static int init_run(loader *l)
{
    if (l->inited)
        return 0;
    const loader_cfg *c = l->cfg;
    sl_sbuf b;
    sl_sbuf_init(&b);
    /* A cluster's new owner of the source raises its fence before it reads what was loaded: an
     * older owner's chunk transaction either committed before that read or fails (ckpt.h). */
    if (c->fence_epoch > 0) {
        sl_error fe = {0};
        int frc = sl_ckpt_raise_fence(l->ctl, c->meta_schema, c->source_name, c->fence_epoch, &fe);
        if (frc < 0) {
            sl_sbuf_free(&b);
            return l->host->fail(l->ctx, frc, "%s", fe.msg);
        }
    }
    sl_ckpt_schema_sql(&b, c->meta_schema);
    int rc = ctl_exec(l, b.p, b.len);
    sl_sbuf_reset(&b);
    sl_ckpt_loader_table_sql(&b, c->meta_schema, c->task_name);
    if (rc == 0)
        rc = ctl_exec(l, b.p, b.len);
    sl_sbuf_reset(&b);
    sl_ckpt_loader_tables_sql(&b, c->meta_schema, c->task_name);
    if (rc == 0)
        rc = ctl_exec(l, b.p, b.len);
    sl_sbuf_reset(&b);
    sl_ckpt_add_create_sql(&b, c->meta_schema, c->task_name);
    if (rc == 0)
        rc = ctl_exec(l, b.p, b.len);
    if (rc) {
        sl_sbuf_free(&b);
        return rc;
    }
    l->redo_bytes = target_redo_bytes(l);
    sl_error e = {0};
    sl_snapshot_clear(&l->snap);
    rc = sl_snapshot_read(l->dir, &l->snap, &e);
    l->have_snap = rc == 0;
    if (rc && rc != SL_ENOENT) {
        sl_sbuf_free(&b);
        return l->host->fail(l->ctx, rc, "%s", e.msg);
    }
    sl_sbuf_reset(&b);
    sl_sbuf_adds(&b, "SELECT chunk_id, snapshot FROM ");
    sl_ckpt_table_name(&b, c->meta_schema, c->task_name, 0);
    sl_sbuf_adds(&b, " WHERE source_name = ");
    sl_sbuf_add_quoted(&b, c->source_name, strlen(c->source_name));
    if (b.oom || mysql_real_query(l->ctl, b.p, (unsigned long)b.len) != 0) {
        sl_sbuf_free(&b);
        return l->host->fail(l->ctx, SL_EDB, "target: reading the load checkpoint: %s", mysql_error(l->ctl));
    }
    sl_sbuf_free(&b);
    MYSQL_RES *r = mysql_store_result(l->ctl);
    MYSQL_ROW row;
    size_t n = 0, other = 0;
    while (r && (row = mysql_fetch_row(r))) {
        if (row[0] && row[0][0] == '\0') {
            l->finished_before = 1;
            continue;
        }
        n++;
        if (!l->have_snap || !row[1] || strcmp(row[1], l->snap.id) != 0)
            other++;
        else if (strset_add(&l->done, row[0]) < 0) {
            mysql_free_result(r);
            return l->host->fail(l->ctx, SL_ENOMEM, "no memory");
        }
    }
    if (r)
        mysql_free_result(r);
    if (l->finished_before) {
        l->host->log(l->ctx, SL_LOG_INFO, "the load of this source finished before: nothing to load");
    } else if (other) {
        /* Chunks of another snapshot: mixing them with this one would be inconsistent. Empty
         * every table this source loaded as its CREATE arrives (claim_table: only a table no
         * other source shares) and load everything again. */
        l->stale = 1;
        strset_clear(&l->done);
        l->host->log(l->ctx, SL_LOG_WARN, "%zu loaded chunks belong to another snapshot than %s: "
                     "emptying the tables this source loaded and loading again", other, l->snap.id);
        /* Before any table is emptied, no chunk row of this source may count as loaded any
         * more, not even rows of this very snapshot (an earlier run of this stale load wrote
         * them before it was killed): their rows go with the TRUNCATE, and a restart that
         * trusted them would skip their chunks (found by test_crash_full.sh). Marked rows keep
         * every later run stale until each chunk is loaded again (ON DUPLICATE KEY UPDATE). */
        sl_sbuf u;
        sl_sbuf_init(&u);
        sl_sbuf_adds(&u, "UPDATE ");
        sl_ckpt_table_name(&u, c->meta_schema, c->task_name, 0);
        sl_sbuf_adds(&u, " SET snapshot = 'redo' WHERE source_name = ");
        sl_sbuf_add_quoted(&u, c->source_name, strlen(c->source_name));
        sl_sbuf_adds(&u, " AND chunk_id <> ''");
        rc = u.oom ? l->host->fail(l->ctx, SL_ENOMEM, "no memory") : ctl_exec(l, u.p, u.len);
        sl_sbuf_free(&u);
        if (rc)
            return rc;
    } else if (n) {
        l->host->log(l->ctx, SL_LOG_INFO, "resuming: %zu chunks of snapshot %s are loaded already",
                     n, l->snap.id);
    }
    if (!l->finished_before && (rc = wait_rollbacks(l)) < 0)
        return rc;
    if (l->have_snap) {
        pthread_mutex_lock(&l->mu);
        snprintf(l->meta_binlog, sizeof l->meta_binlog, "(%s, %llu)", l->snap.file,
                 (unsigned long long)l->snap.pos);
        free(l->meta_gtid);
        l->meta_gtid = strdup(l->snap.gtid ? l->snap.gtid : "");
        pthread_mutex_unlock(&l->mu);
    }
    l->inited = 1;
    atomic_store(&l->run_seen, 1);
    return 0;
}

static const char *or_default(const char *a, const char *b) { return a && *a ? a : b; }

/* The keyword part of a non-unique secondary index definition line of SHOW CREATE TABLE
 * ("KEY", "INDEX", "FULLTEXT KEY", "SPATIAL INDEX", ...), or 0 if the line is something else. */
static size_t index_keyword(const char *line, size_t len)
{
    static const char *const kw[] = {"KEY ", "INDEX ", "FULLTEXT KEY ", "FULLTEXT INDEX ",
                                     "SPATIAL KEY ", "SPATIAL INDEX ", NULL};
    for (int i = 0; kw[i]; i++) {
        size_t k = strlen(kw[i]);
        if (len > k && strncmp(line, kw[i], k) == 0)
            return k - 1;
    }
    return 0;
}

/*
 * Deferred secondary indexes (perf-notes.md section 5.6, modern myloader's restore stages): a
 * CREATE TABLE in SHOW CREATE TABLE layout (one definition per line) loses its non-unique KEY
 * lines, which come back as one ALTER TABLE ... ADD KEY IF NOT EXISTS after the last chunk, so
 * InnoDB builds each index once, sorted, instead of inserting every row into it at random places.
 * Unique keys stay (on_duplicate needs them while loading); tables with foreign keys or
 * partitions are left whole. Returns 1 and fills *create / *alter (malloc'd) when something was
 * deferred, 0 when the DDL is used as it is, SL_ENOMEM.
 */
static int split_indexes(const char *ddl, const char *qname, char **create, char **alter)
{
    *create = *alter = NULL;
    if (strncasecmp(ddl, "CREATE TABLE", 12) != 0 || strstr(ddl, "FOREIGN KEY") ||
        strstr(ddl, "PARTITION") || !strchr(ddl, '\n'))
        return 0;
    sl_sbuf c, a;
    sl_sbuf_init(&c);
    sl_sbuf_init(&a);
    const char *p = ddl;
    int in_body = 0, ndefs = 0, nidx = 0;
    while (*p) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        const char *t = p;
        while (t < p + len && *t == ' ')
            t++;
        size_t tl = len - (size_t)(t - p);
        if (!in_body) {
            sl_sbuf_add(&c, p, len);
            in_body = 1;
        } else if (tl && *t == ')') {
            sl_sbuf_adds(&c, "\n");
            sl_sbuf_add(&c, p, strlen(p));
            break;
        } else {
            size_t def = tl && t[tl - 1] == ',' ? tl - 1 : tl;
            size_t kw = index_keyword(t, def);
            if (kw) {
                sl_sbuf_adds(&a, nidx++ ? ", ADD " : "ADD ");
                sl_sbuf_add(&a, t, kw);
                sl_sbuf_adds(&a, " IF NOT EXISTS");
                sl_sbuf_add(&a, t + kw, def - kw);
            } else {
                sl_sbuf_adds(&c, ndefs++ ? ",\n" : "\n");
                sl_sbuf_add(&c, p, (size_t)(t - p) + def);
            }
        }
        if (!e)
            break;
        p = e + 1;
    }
    if (!nidx || !ndefs || c.oom || a.oom) {
        int oom = c.oom || a.oom;
        sl_sbuf_free(&c);
        sl_sbuf_free(&a);
        return oom ? SL_ENOMEM : 0;
    }
    sl_sbuf alt;
    sl_sbuf_init(&alt);
    sl_sbuf_adds(&alt, "ALTER TABLE ");
    sl_sbuf_adds(&alt, qname);
    sl_sbuf_adds(&alt, " ");
    sl_sbuf_add(&alt, a.p, a.len);
    sl_sbuf_free(&a);
    if (alt.oom) {
        sl_sbuf_free(&c);
        sl_sbuf_free(&alt);
        return SL_ENOMEM;
    }
    *create = c.p;
    *alter = alt.p;
    return 1;
}

/* First row of a query as malloc'd text in *out (NULL when there is no row or it is NULL).
 * Returns 0, or a negative code with e filled. */
static int ctl_scalar(loader *l, const char *sql, size_t len, char **out, sl_error *e)
{
    *out = NULL;
    if (mysql_real_query(l->ctl, sql, (unsigned long)len) != 0)
        return sl_error_set(e, SL_EDB, "%s (errno %u) in: %.200s", mysql_error(l->ctl),
                            mysql_errno(l->ctl), sql);
    MYSQL_RES *r = mysql_store_result(l->ctl);
    MYSQL_ROW row = r ? mysql_fetch_row(r) : NULL;
    if (row && row[0] && !(*out = strdup(row[0]))) {
        mysql_free_result(r);
        return sl_error_set(e, SL_ENOMEM, "no memory");
    }
    if (r)
        mysql_free_result(r);
    return 0;
}

/*
 * claim_table when this load is not redone (!l->stale): nothing is emptied, so the claim is only
 * the row, inserted unless this source has one, its foreign_rows saying whether the table held
 * rows no claimant accounts for. The same steps as the general path, under the same lock, sent
 * as one multi-statement (one round trip instead of five per table, issue 12):
 *   GET_LOCK into @sl_lk_<h> (claim_lock); the two facts into @sl_fr_<h> with plain reads (no
 *   locking read: an INSERT ... SELECT would take shared gap locks on the claims table, and two
 *   sources claiming neighbouring tables could deadlock), and the INSERT IGNORE only if the lock
 *   was granted (claim_body); then COMMIT, the locks' results to check and RELEASE_LOCK
 *   (claim_tail).
 * <h> is the lock name's hash, so the claims of several tables can share one text and one
 * commit (run_ddl_jobs). They take all their locks first, in the order of the names: two
 * sources claiming overlapping sets of tables cannot deadlock on them, and the transaction's
 * read view opens after the last lock is granted (at the first read), so no table is emptied
 * under the lock after the view (a consistent read of a table rebuilt after the view fails
 * with ER_TABLE_DEF_CHANGED; run_claim runs the claims again then).
 * A failure part way (the server skips what follows) releases the locks in a statement of its
 * own (run_claim).
 */
#define CLAIM_LOCK_PREFIX "sluice-load-"

static const char *claim_var(const char *lockname)
{
    return lockname + sizeof CLAIM_LOCK_PREFIX - 1;
}

static void claim_lock(sl_sbuf *b, const char *lockname, int timeout)
{
    sl_sbuf_addf(b, "SELECT GET_LOCK('%s', %d) INTO @sl_lk_%s; ", lockname, timeout,
                 claim_var(lockname));
}

static void claim_body(const loader *l, sl_sbuf *b, const char *ts, const char *tt,
                       const char *lockname)
{
    const loader_cfg *c = l->cfg;
    const char *v = claim_var(lockname);
    sl_sbuf_adds(b, "SELECT EXISTS(SELECT 1 FROM ");
    sl_sbuf_add_qname(b, ts, tt);
    sl_sbuf_adds(b, ") AND NOT EXISTS(SELECT 1 FROM ");
    sl_ckpt_loader_tables_name(b, c->meta_schema, c->task_name);
    sl_sbuf_adds(b, " WHERE target_schema = ");
    sl_sbuf_add_quoted(b, ts, strlen(ts));
    sl_sbuf_adds(b, " AND target_table = ");
    sl_sbuf_add_quoted(b, tt, strlen(tt));
    sl_sbuf_adds(b, " AND source_name <> ");
    sl_sbuf_add_quoted(b, c->source_name, strlen(c->source_name));
    sl_sbuf_addf(b, ") INTO @sl_fr_%s; INSERT IGNORE INTO ", v);
    sl_ckpt_loader_tables_name(b, c->meta_schema, c->task_name);
    sl_sbuf_adds(b, " (target_schema, target_table, source_name, foreign_rows) SELECT ");
    sl_sbuf_add_quoted(b, ts, strlen(ts));
    sl_sbuf_adds(b, ", ");
    sl_sbuf_add_quoted(b, tt, strlen(tt));
    sl_sbuf_adds(b, ", ");
    sl_sbuf_add_quoted(b, c->source_name, strlen(c->source_name));
    sl_sbuf_addf(b, ", @sl_fr_%s FROM DUAL WHERE @sl_lk_%s = 1; ", v, v);
}

/* DO RELEASE_LOCK of n locks (one not held gives NULL, harmlessly). */
static void claim_release(sl_sbuf *b, const char *const *locks, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sl_sbuf_addf(b, "%sRELEASE_LOCK('%s')", i ? ", " : "DO ", locks[i]);
}

/* The end of the claims of n tables (their lock names): COMMIT before the locks go (a load
 * connection runs without autocommit), the locks' results as one row, and their release. */
static void claim_tail(sl_sbuf *b, const char *const *locks, size_t n)
{
    sl_sbuf_adds(b, "COMMIT; SELECT ");
    for (size_t i = 0; i < n; i++)
        sl_sbuf_addf(b, "%s@sl_lk_%s", i ? ", " : "", claim_var(locks[i]));
    sl_sbuf_adds(b, "; ");
    claim_release(b, locks, n);
}

/* Run the claims of n tables (claim_lock each, claim_body each, then claim_tail) on db: the
 * control connection, or a load connection for DDL jobs. what[i] names table i in messages.
 * granted: NULL, and a lock not granted is an error; or granted[i] says whether lock i was (a
 * claim without its lock inserted nothing). Returns 0, or a negative code with e filled; any
 * thread, one connection per thread. */
static int run_claim(MYSQL *db, const char *sql, size_t len, const char *const *what,
                     const char *const *locks, size_t n, int *granted, sl_error *e)
{
    for (int attempt = 1;; attempt++) {
        int rc = 0;
        char got[64] = "";
        size_t bad = 0;         /* the first lock not granted, n: none; none seen: the first */
        for (size_t i = 0; granted && i < n; i++)
            granted[i] = 0;
        if (mysql_real_query(db, sql, (unsigned long)len) != 0) {
            rc = SL_EDB;
        } else {
            int st;
            do {
                MYSQL_RES *r = mysql_store_result(db);
                MYSQL_ROW row = r ? mysql_fetch_row(r) : NULL;
                if (row && mysql_num_fields(r) == n) {
                    bad = n;
                    for (size_t i = n; i-- > 0;) {
                        int ok = row[i] && strcmp(row[i], "1") == 0;
                        if (granted)
                            granted[i] = ok;
                        else if (!ok)
                            bad = i;
                    }
                    if (bad < n)
                        snprintf(got, sizeof got, "%s", row[bad] ? row[bad] : "NULL");
                }
                if (r)
                    mysql_free_result(r);
            } while ((st = mysql_next_result(db)) == 0);
            if (st > 0)
                rc = SL_EDB;
        }
        if (rc == 0 && bad < n)
            return sl_error_set(e, SL_ETIMEOUT, "could not lock %s for loading (GET_LOCK gave %s)",
                                what[bad], got[0] ? got : "nothing");
        if (rc == 0)
            return 0;
        unsigned en = mysql_errno(db);
        rc = sl_error_set(e, sl_myconn_is_conn_error(en) ? SL_ECONN : SL_EDB,
                          "claiming %s%s for loading: %s (errno %u)", what[0],
                          n > 1 ? " and the tables created with it" : "", mysql_error(db), en);
        sl_myconn_exec(db, "ROLLBACK", 8, NULL);
        sl_sbuf rel;
        sl_sbuf_init(&rel);
        claim_release(&rel, locks, n);
        if (!rel.oom)
            sl_myconn_exec(db, rel.p, rel.len, NULL);
        sl_sbuf_free(&rel);
        /* ER_TABLE_DEF_CHANGED: a table was changed (another source's deferred index build)
         * after the read view opened; the claims are idempotent, run them again */
        if (en != 1412 || attempt == 3)
            return rc;
        *e = (sl_error){0};
    }
}

/* One table's claim (claim_body's text) on db, waiting for its lock. what names the table. */
static int claim_alone(MYSQL *db, const char *body, const char *what, const char *lock,
                       sl_error *e)
{
    sl_sbuf b;
    sl_sbuf_init(&b);
    claim_lock(&b, lock, 3600);
    sl_sbuf_adds(&b, body);
    claim_tail(&b, &lock, 1);
    int rc = b.oom ? sl_error_set(e, SL_ENOMEM, "no memory")
                   : run_claim(db, b.p, b.len, &what, &lock, 1, NULL, e);
    sl_sbuf_free(&b);
    return rc;
}

static int claim_fresh(loader *l, const char *ts, const char *tt, const char *key,
                       const char *lockname)
{
    sl_sbuf body, qn;
    sl_sbuf_init(&body);
    sl_sbuf_init(&qn);
    claim_body(l, &body, ts, tt, lockname);
    sl_sbuf_add_qname(&qn, ts, tt);
    sl_error e = {0};
    int rc = body.oom || qn.oom ? sl_error_set(&e, SL_ENOMEM, "no memory")
                                : claim_alone(l->ctl, body.p, qn.p, lockname, &e);
    sl_sbuf_free(&body);
    sl_sbuf_free(&qn);
    if (rc == 0 && strset_add(&l->claimed, key) < 0)
        rc = sl_error_set(&e, SL_ENOMEM, "no memory");
    if (rc)
        return l->host->fail(l->ctx, rc, "target: %s", e.msg);
    return 0;
}

/* The GET_LOCK name that serializes claims of one target table (key: schema \x01 table). */
static void claim_lock_name(const char *key, char *out, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = key; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    snprintf(out, n, CLAIM_LOCK_PREFIX "%016llx", (unsigned long long)h);
}

/*
 * Claim a target table for this source in `<task>_loader_tables` before loading into it, and,
 * when this source's load must be redone from a new snapshot (l->stale), empty the table only
 * if nothing else lives in it: no other source of the task has claimed it (a shard merge across
 * sources: TRUNCATE would remove their rows) and it held no rows of its own when this source
 * first claimed it (rows the user put there). Otherwise the task fails with what the operator
 * can do; sluice never removes rows it did not load. A table this source never claimed received
 * nothing from it (the claim is committed before its first chunk), so it is left alone.
 *
 * Claims and the decision to empty are serialized per target table with GET_LOCK, so another
 * source cannot claim the table (and start loading into it) between the check and the TRUNCATE.
 */
static int claim_table(loader *l, const char *ts, const char *tt)
{
    const loader_cfg *c = l->cfg;
    char key[600];
    snprintf(key, sizeof key, "%s\x01%s", ts, tt);
    if (strset_has(&l->claimed, key))
        return 0;
    char lockname[64];
    claim_lock_name(key, lockname, sizeof lockname);
    if (!l->stale)
        return claim_fresh(l, ts, tt, key, lockname);

    sl_error e = {0};
    sl_sbuf b, others;
    sl_sbuf_init(&b);
    sl_sbuf_init(&others);
    char *v = NULL;
    int rc = 0, locked = 0, mine = 0, mine_foreign = 0;
    sl_sbuf_addf(&b, "SELECT GET_LOCK('%s', 3600)", lockname);
    rc = b.oom ? SL_ENOMEM : ctl_scalar(l, b.p, b.len, &v, &e);
    if (rc == 0 && !(v && strcmp(v, "1") == 0))
        rc = sl_error_set(&e, SL_ETIMEOUT, "could not lock %s for loading (GET_LOCK gave %s)",
                          key, v ? v : "NULL");
    locked = rc == 0;
    free(v);
    v = NULL;

    sl_sbuf_reset(&b);
    sl_sbuf_adds(&b, "SELECT source_name, foreign_rows FROM ");
    sl_ckpt_loader_tables_name(&b, c->meta_schema, c->task_name);
    sl_sbuf_adds(&b, " WHERE target_schema = ");
    sl_sbuf_add_quoted(&b, ts, strlen(ts));
    sl_sbuf_adds(&b, " AND target_table = ");
    sl_sbuf_add_quoted(&b, tt, strlen(tt));
    sl_sbuf_adds(&b, " ORDER BY source_name");
    if (rc == 0 && (b.oom || mysql_real_query(l->ctl, b.p, (unsigned long)b.len) != 0))
        rc = sl_error_set(&e, SL_EDB, "reading %s_loader_tables: %s", c->task_name, mysql_error(l->ctl));
    if (rc == 0) {
        MYSQL_RES *r = mysql_store_result(l->ctl);
        MYSQL_ROW row;
        while (r && (row = mysql_fetch_row(r))) {
            if (row[0] && strcmp(row[0], c->source_name) == 0) {
                mine = 1;
                mine_foreign = row[1] && strcmp(row[1], "0") != 0;
            } else if (row[0]) {
                sl_sbuf_adds(&others, others.len ? ", " : "");
                sl_sbuf_add_quoted(&others, row[0], strlen(row[0]));
            }
        }
        if (r)
            mysql_free_result(r);
    }

    /* Does the table hold any row now? */
    int has_rows = 0;
    if (rc == 0 && (!mine || l->stale)) {
        sl_sbuf_reset(&b);
        sl_sbuf_adds(&b, "SELECT 1 FROM ");
        sl_sbuf_add_qname(&b, ts, tt);
        sl_sbuf_adds(&b, " LIMIT 1");
        rc = b.oom ? SL_ENOMEM : ctl_scalar(l, b.p, b.len, &v, &e);
        has_rows = v != NULL;
        free(v);
        v = NULL;
    }

    if (rc == 0 && l->stale && mine && has_rows) {
        if (others.len || mine_foreign) {
            sl_sbuf ck, qn;
            sl_sbuf_init(&ck);
            sl_sbuf_init(&qn);
            sl_ckpt_table_name(&ck, c->meta_schema, c->task_name, 0);
            sl_sbuf_add_qname(&qn, ts, tt);
            rc = ck.oom || qn.oom ? sl_error_set(&e, SL_ENOMEM, "no memory") :
                sl_error_set(&e, SL_ESTATE,
                "source '%s' must load again from a new snapshot (its earlier dump did not "
                "finish), but target table %s also holds rows this source did not load (%s%s), "
                "so sluice will not empty it. To go on: delete from %s the rows source '%s' "
                "loaded, run DELETE FROM %s WHERE source_name = '%s', and resume the task; or "
                "empty %s and start the task again with remove_meta to reload every source",
                c->source_name, qn.p,
                others.len ? "rows of source " : "rows that were there before this task loaded it",
                others.len ? others.p : "", qn.p, c->source_name, ck.p, c->source_name, qn.p);
            sl_sbuf_free(&ck);
            sl_sbuf_free(&qn);
        } else {
            sl_sbuf_reset(&b);
            sl_sbuf_adds(&b, "TRUNCATE TABLE ");
            sl_sbuf_add_qname(&b, ts, tt);
            rc = b.oom ? SL_ENOMEM : sl_myconn_exec(l->ctl, b.p, b.len, &e);
            if (rc == 0)
                l->host->log(l->ctx, SL_LOG_WARN, "emptied %s: only this source loaded it, from "
                             "a snapshot that is being redone", b.p + 15);
        }
    }
    if (rc == 0 && !mine) {
        sl_sbuf_reset(&b);
        sl_sbuf_adds(&b, "INSERT IGNORE INTO ");
        sl_ckpt_loader_tables_name(&b, c->meta_schema, c->task_name);
        sl_sbuf_adds(&b, " (target_schema, target_table, source_name, foreign_rows) VALUES (");
        sl_sbuf_add_quoted(&b, ts, strlen(ts));
        sl_sbuf_adds(&b, ", ");
        sl_sbuf_add_quoted(&b, tt, strlen(tt));
        sl_sbuf_adds(&b, ", ");
        sl_sbuf_add_quoted(&b, c->source_name, strlen(c->source_name));
        /* Rows no claimant can account for: the user's. */
        sl_sbuf_addf(&b, ", %d)", has_rows && !others.len);
        rc = b.oom ? SL_ENOMEM : sl_myconn_exec(l->ctl, b.p, b.len, &e);
    }
    if (locked) {
        sl_sbuf_reset(&b);
        sl_sbuf_addf(&b, "DO RELEASE_LOCK('%s')", lockname);
        sl_myconn_exec(l->ctl, b.p, b.len, NULL);
    }
    sl_sbuf_free(&b);
    sl_sbuf_free(&others);
    if (rc == 0 && strset_add(&l->claimed, key) < 0)
        rc = sl_error_set(&e, SL_ENOMEM, "no memory");
    if (rc)
        return l->host->fail(l->ctx, rc, "target: %s", e.msg);
    return 0;
}

static int enqueue_ddl(loader *l, const char *use, const char *ddl, const char *ts, const char *tt);

/* Tables smaller than this (the dump's estimate) keep their secondary indexes in CREATE TABLE. */
#define SMALL_TABLE_BYTES (4u << 20)

/* The index of target table qname in l->deferred, or -1. Stage thread (which alone adds). */
static long find_deferred(loader *l, const char *qname)
{
    size_t i;
    return strset_get(&l->deferred_tables, qname, &i) ? (long)i : -1;
}

/* The bytes of the whole dump once its manifest is complete, else 0; the manifest is read at
 * most once a second (by whichever thread asks: the status, a worker). */
static uint64_t dump_total_poll(loader *l)
{
    uint64_t dt = atomic_load(&l->dump_total);
    if (!dt && l->cfg->mode != MODE_DUMP && atomic_load(&l->run_seen)) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long long last = atomic_load(&l->dump_total_checked);
        if (now.tv_sec - last >= 1 &&
            atomic_compare_exchange_strong(&l->dump_total_checked, &last, (long long)now.tv_sec) &&
            sl_dump_manifest_total(l->dir, &dt) == 0)
            atomic_store(&l->dump_total, dt);
    }
    return dt;
}

/* 1 if InnoDB builds the indexes of alter (split_indexes) on table ddl (SHOW CREATE TABLE's)
 * while rows go in: an InnoDB table, and no FULLTEXT or SPATIAL key, which take LOCK=SHARED and
 * would hold the last chunks back. Other engines copy the table for an ALTER. A comment holding
 * one of these words only costs the early start. */
static int online_build(const char *ddl, const char *alter)
{
    return strstr(ddl, ") ENGINE=InnoDB") && !strstr(alter, "FULLTEXT") && !strstr(alter, "SPATIAL");
}

/* The share of a table's bytes loaded (in tenths) from which its index build may start early
 * (see early_build_due). */
#define EARLY_BUILD_TENTHS 6

/*
 * 1 if deferred table d's index build should start now, while its last chunks load. A table
 * with an AUTO_INCREMENT column loads on one connection (take_job), so when it is the only
 * table left, one target thread inserts and the second core idles; the index build, left for
 * after the last chunk, then runs alone on one core (1 x 4,000,000 sysbench rows, tuned target:
 * 14-15 s of loading, then 6-7 s of ADD KEY). InnoDB builds an index online: the build reads
 * the rows already in, the rows inserted meanwhile go to its online log, and the two overlap.
 * Measured on the target alone (40 chunks loaded one at a time, the build started after chunk
 * F): 20.8-21.1 s serially, 18.8-19.4 s from F = 24 or 28, 19.6 s from 32, and 21.1 s from 20,
 * where the build ended first and the last chunks went in with the index. So from 60% of the
 * table's bytes, and only when nothing else waits or runs: the build costs the loads CPU, and
 * with other tables loading there is no idle core to give it. The table's bytes are known
 * once its last chunk came; before that (the queue's bound holds back the last 2 x
 * import_threads chunk events) the bytes of the whole dump not yet loaded (dump_total, once
 * its manifest is complete) count as the table's, which can only make the start later.
 *
 * On any redo log size. Until session 26 it needed 512 MiB: with MariaDB's default 96 MB the
 * early build had not paid on two machines (median 25.2 s against 24.3 s, and 18.2 s against
 * 18.3 s, for 1 x 4,000,000) and cost 5-15 s more target CPU. On session 26's machine, whose
 * build alone took 8-11 s where theirs took 5.5-6 s, it was faster in 8 of 8 alternating pairs
 * on the default target (median 26.5 s against 32.3 s) and in 4 of 4 on the tuned one (24.3 s
 * against 31.1 s): where it costs, it costs little; where the build is slow, it gains a fifth
 * (docs/architecture.md, "Session 26's machine"). The best share moves between machines: on
 * session 29's, 50% was best and 45% or less went live early, while on session 22's 50% did;
 * 60% is on the safe side of that edge on both ("Session 29's machine").
 * Under mu: the one busy worker is the one loading the table (the caller, whose chunk of it
 * just ended, or another while the stage thread passes a chunk loaded before).
 */
static int early_build_due(const loader *l, const dtab *d, uint64_t dump_total, unsigned *pct)
{
    if (d->no_early || d->inflight == 0 || l->nw < 2 || l->busy != 1 ||
        !table_loading(l, d->qname) || l->dhead)
        return 0;
    uint64_t all = d->bytes;
    if (d->lasts < d->srcs) {
        uint64_t fin = atomic_load(&l->finished_bytes);
        if (!dump_total)
            return 0;
        all = d->bytes_in + (dump_total > fin ? dump_total - fin : 0);
    }
    if (all == 0 || d->bytes_in * 10 < all * EARLY_BUILD_TENTHS)
        return 0;
    *pct = (unsigned)(d->bytes_in * 100 / all);
    for (const job *j = l->head; j; j = j->next)
        if (j->plain || j->more || strcmp(j->table, d->qname) != 0)
            return 0;
    return 1;
}

/* Queue the index build of deferred table i if its rows are all in (or if force: the load's
 * end; or early, early_build_due), once. From the stage thread (force, or a last chunk) or a
 * worker (a chunk done): the job goes in past the queue's bound, so a worker never waits on
 * its own queue; there is at most one per table. Returns 0, or an error code after set_werr. */
static int queue_build(loader *l, size_t i, int force)
{
    /* the manifest only matters to an early start */
    int may_early = !force;
    uint64_t total = may_early ? dump_total_poll(l) : 0;
    unsigned pct = 0;
    pthread_mutex_lock(&l->mu);
    dtab *d = &l->deferred[i];
    int all_in = d->lasts >= d->srcs && d->inflight == 0;
    int early = !d->queued && may_early && !all_in && early_build_due(l, d, total, &pct);
    int go = !d->queued && (force || early || all_in);
    char *sql = NULL, *table = NULL;
    if (go) {
        d->queued = 1;
        sql = strdup(d->alter);
        table = strdup(d->qname);
    }
    pthread_mutex_unlock(&l->mu);
    if (!go)
        return 0;
    job *j = calloc(1, sizeof *j);
    if (!j || !sql || !table || !(j->id = strdup("")) || !(j->path = strdup(""))) {
        free(sql);
        free(table);
        job_free(j);
        sl_error e = {0};
        sl_error_set(&e, SL_ENOMEM, "no memory");
        set_werr(l, &e);
        return SL_ENOMEM;
    }
    j->plain = 1;
    j->dt = -1;
    j->early = early ? (long)i + 1 : 0;
    j->sql = sql;
    j->table = table;
    if (early) {
        char redo[32] = "unknown";
        if (l->redo_bytes)
            snprintf(redo, sizeof redo, "%llu MiB", (unsigned long long)(l->redo_bytes >> 20));
        l->host->log(l->ctx, SL_LOG_INFO, "building the secondary indexes of %s while its last "
                     "chunks load (%u%% of its bytes in, no other table left to load; the target's "
                     "redo log: %s)", table, pct, redo);
    }
    pthread_mutex_lock(&l->mu);
    append_locked(l, j);
    pthread_mutex_unlock(&l->mu);
    return 0;
}

/* Count source table schema.table among those routed into target (a qname) in merge_n, once. */
static int note_merge(loader *l, const char *target, const char *schema, const char *table)
{
    sl_sbuf k;
    sl_sbuf_init(&k);
    sl_sbuf_adds(&k, target);
    sl_sbuf_adds(&k, "\x01");
    sl_sbuf_add_qname(&k, or_default(schema, ""), table);
    int rc = k.oom ? SL_ENOMEM : 0;
    pthread_mutex_lock(&l->mu);
    if (rc == 0 && !strset_has(&l->merge_pairs, k.p)) {
        size_t *n = strset_slot(&l->merge_n, target, 0);
        if (!n || strset_add(&l->merge_pairs, k.p) < 0)
            rc = SL_ENOMEM;
        else
            (*n)++;
    }
    pthread_mutex_unlock(&l->mu);
    sl_sbuf_free(&k);
    return rc;
}

static int handle_ddl(loader *l, const sl_event *ev)
{
    if (l->finished_before || !ev->ddl)
        return 0;
    const char *ts = or_default(ev->target_schema, ev->schema);
    const char *tt = or_default(ev->target_table, ev->table);
    sl_error e = {0};
    int rc = 0;
    const char *use = or_default(ev->target_schema, ev->ddl_schema);
    if (use && *use && ev->table && *ev->table) {
        /* A routed table may land in a schema no CREATE DATABASE named (shard merge into a new
         * schema): create it as DM does. */
        sl_sbuf b;
        sl_sbuf_init(&b);
        if (!strset_has(&l->schemas, use)) {
            sl_sbuf_adds(&b, "CREATE DATABASE IF NOT EXISTS ");
            sl_sbuf_add_ident(&b, use);
            rc = b.oom ? SL_ENOMEM : sl_myconn_exec(l->ctl, b.p, b.len, &e);
            if (rc == 0 && strset_add(&l->schemas, use) < 0)
                rc = SL_ENOMEM;
            if (rc) {
                sl_sbuf_free(&b);
                return l->host->fail(l->ctx, rc, "target: %s", e.msg);
            }
            sl_sbuf_reset(&b);
        }
        /* The DDL names its table without a schema: USE the target schema, once per run of
         * tables in it (2,000 tables of one schema took 2,000 USE round trips). */
        if (!l->ctl_db || strcmp(l->ctl_db, use) != 0) {
            free(l->ctl_db);
            l->ctl_db = NULL;
            sl_sbuf_adds(&b, "USE ");
            sl_sbuf_add_ident(&b, use);
            rc = b.oom ? SL_ENOMEM : sl_myconn_exec(l->ctl, b.p, b.len, &e);
            if (rc == 0 && !(l->ctl_db = strdup(use)))
                rc = sl_error_set(&e, SL_ENOMEM, "no memory");
        }
        sl_sbuf_free(&b);
        if (rc)
            return l->host->fail(l->ctx, rc, "target: %s", e.msg);
    }
    const char *ddl = ev->ddl;
    char *create = NULL, *alter = NULL;
    if (tt && *tt && ts) {
        sl_sbuf qn;
        sl_sbuf_init(&qn);
        sl_sbuf_add_qname(&qn, ts, tt);
        /* Secondary indexes are built after the load (one sorted build instead of random
         * inserts into every index), except for a table the dump estimates small: its rows
         * fit the buffer pool as they come, and an ALTER TABLE per table costs more than it
         * saves (2,000 tables of 1,000 rows: issue 12). Unknown size (0): defer. */
        int small = ev->chunk_bytes > 0 && ev->chunk_bytes < SMALL_TABLE_BYTES;
        if (!qn.oom && ev->table && *ev->table && note_merge(l, qn.p, ev->schema, ev->table) < 0) {
            sl_sbuf_free(&qn);
            return l->host->fail(l->ctx, SL_ENOMEM, "no memory");
        }
        if (!qn.oom && sl_ddl_has_autoinc(ev->ddl) && !strset_has(&l->ai_tables, qn.p) &&
            strset_add(&l->ai_tables, qn.p) < 0) {
            sl_sbuf_free(&qn);
            return l->host->fail(l->ctx, SL_ENOMEM, "no memory");
        }
        int sp = qn.oom ? SL_ENOMEM : small ? 0 : split_indexes(ev->ddl, qn.p, &create, &alter);
        if (sp < 0) {
            sl_sbuf_free(&qn);
            return l->host->fail(l->ctx, SL_ENOMEM, "no memory");
        }
        long dt = find_deferred(l, qn.p);
        if (sp == 1) {
            ddl = create;
            if (dt < 0) {
                pthread_mutex_lock(&l->mu);     /* the workers read the array under mu */
                dtab *v = realloc(l->deferred, (l->ndeferred + 1) * sizeof *v);
                char *name = v ? strdup(qn.p) : NULL;
                if (v)
                    l->deferred = v;
                if (name) {
                    l->deferred[l->ndeferred++] = (dtab){ .alter = alter, .qname = name,
                                                          .no_early = !online_build(ev->ddl, alter) };
                    alter = NULL;
                }
                pthread_mutex_unlock(&l->mu);
                if (!name || strset_put(&l->deferred_tables, qn.p, l->ndeferred - 1) != 0) {
                    free(create);
                    free(alter);
                    sl_sbuf_free(&qn);
                    return l->host->fail(l->ctx, SL_ENOMEM, "no memory");
                }
                dt = (long)l->ndeferred - 1;
            }
        }
        /* count the source tables that fill a deferred table (a shard merge has several): its
         * indexes wait for the last chunk of each (a shard created before the table was
         * deferred, a small one, is not waited for: an early build costs time, not rows) */
        if (dt >= 0 && ev->table && *ev->table) {
            sl_sbuf src;
            sl_sbuf_init(&src);
            sl_sbuf_add_qname(&src, or_default(ev->schema, ""), ev->table);
            int add = src.oom ? SL_ENOMEM : strset_has(&l->deferred_src, src.p) ? 1 :
                      strset_add(&l->deferred_src, src.p);
            sl_sbuf_free(&src);
            if (add < 0) {
                free(create);
                free(alter);
                sl_sbuf_free(&qn);
                return l->host->fail(l->ctx, SL_ENOMEM, "no memory");
            }
            if (add == 0) {     /* newly counted */
                pthread_mutex_lock(&l->mu);
                l->deferred[dt].srcs++;
                pthread_mutex_unlock(&l->mu);
            }
        }
        free(alter);
        sl_sbuf_free(&qn);
    }
    if (!l->stale && l->nthreads && ev->table && *ev->table && tt && *tt && ts) {
        /* A table of a load that is not redone: its CREATE and claim run on a load connection,
         * tables in parallel (2,000 CREATE TABLEs one after the other took a minute, issue 12);
         * a chunk waits for its table's DDL job (take_job), so a table is created and claimed
         * before anything loads into it, as on the control connection. A DDL after
         * chunks (not the dump's order) waits for them, as it may change what they load into. */
        rc = l->chunks_queued ? wait_idle(l) : 0;
        if (rc == 0)
            rc = enqueue_ddl(l, use, ddl, ts, tt);
        free(create);
        return rc;
    }
    rc = sl_myconn_exec(l->ctl, ddl, strlen(ddl), &e);
    free(create);
    if (rc) {
        unsigned en = mysql_errno(l->ctl);
        if (en != 1050 && en != 1007)      /* exists already (a shard merge, or a rerun) */
            return l->host->fail(l->ctx, rc, "target: %s", e.msg);
    }
    if (ev->table && *ev->table && tt && *tt && ts)
        return claim_table(l, ts, tt);
    return 0;
}

/*
 * Queue a job for the load connections. A DDL job (plain 2) goes to its own list at once, even
 * while the pipeline stops (stop_workers runs it), and does not count against the queue's bound:
 * the stage thread passes a batch of 2,000 CREATE TABLEs in moments and reaches the chunks, which
 * then load while the later tables are created (take_job). The list holds one statement per
 * table, as the dump's plan does. Returns 0, or a code after host->fail, or SL_ESTOPPED.
 */
static int enqueue(loader *l, job *j)
{
    int must = j->plain == 2;
    pthread_mutex_lock(&l->mu);
    while (!must && l->qlen >= l->qcap && !l->werr && !l->host->should_stop(l->ctx)) {
        sl_cond_wait_ms(&l->cv_space, &l->mu, 200);
    }
    int werr = l->werr, stop = !must && l->host->should_stop(l->ctx);
    size_t *n = NULL;
    if (!werr && must)
        n = strset_slot(&l->ddl_wait, j->table, 0);
    if (!werr && must && n) {
        (*n)++;
        l->ndl++;
        link_job(&l->dhead, &l->dtail, j);
        pthread_cond_broadcast(&l->cv_job);
    } else if (!werr && !stop && !must) {
        append_locked(l, j);
    }
    pthread_mutex_unlock(&l->mu);
    if (!werr && must && !n) {
        job_free(j);
        return l->host->fail(l->ctx, SL_ENOMEM, "no memory");
    }
    if (werr || stop) {
        job_free(j);
        if (werr)
            return l->host->fail(l->ctx, werr, "%s", l->werr_msg.msg);
        return SL_ESTOPPED;
    }
    return 0;
}

/* A table's DDL and claim as a job for a load connection (handle_ddl). The key is marked
 * claimed here, on the stage thread: a failed job fails the whole load. */
static int enqueue_ddl(loader *l, const char *use, const char *ddl, const char *ts, const char *tt)
{
    char key[600];
    snprintf(key, sizeof key, "%s\x01%s", ts, tt);
    char lockname[64];
    claim_lock_name(key, lockname, sizeof lockname);
    job *j = calloc(1, sizeof *j);
    if (!j)
        return l->host->fail(l->ctx, SL_ENOMEM, "no memory");
    j->plain = 2;
    j->dt = -1;
    sl_sbuf b, c, t;
    sl_sbuf_init(&b);
    sl_sbuf_init(&c);
    sl_sbuf_init(&t);
    if (use && *use) {
        /* the DDL may name its table without a schema */
        sl_sbuf_adds(&b, "USE ");
        sl_sbuf_add_ident(&b, use);
        sl_sbuf_adds(&b, "; ");
    }
    sl_sbuf_adds(&b, ddl);
    int claimed = strset_has(&l->claimed, key);
    if (!claimed)
        claim_body(l, &c, ts, tt, lockname);
    sl_sbuf_add_qname(&t, ts, tt);
    j->sql = b.oom ? NULL : b.p;
    j->claim = claimed || c.oom ? NULL : c.p;
    j->table = t.oom ? NULL : t.p;
    j->lockname = strdup(lockname);
    j->id = strdup("");
    j->path = strdup("");
    if (!j->sql || (!claimed && !j->claim) || !j->table || !j->lockname || !j->id || !j->path ||
        (!claimed && strset_add(&l->claimed, key) < 0)) {
        if (!j->sql)
            sl_sbuf_free(&b);
        if (!j->claim)
            sl_sbuf_free(&c);
        if (!j->table)
            sl_sbuf_free(&t);
        job_free(j);
        return l->host->fail(l->ctx, SL_ENOMEM, "no memory");
    }
    return enqueue(l, j);
}

/* DDL jobs of a batch with a claim, sorted by lock name: the order claim_lock takes them in */
static int by_lockname(const void *a, const void *b)
{
    return strcmp((*(job *const *)a)->lockname, (*(job *const *)b)->lockname);
}

/* Under mu: DDL job c is over (its table created and claimed, or failed); chunks of its table
 * may load once no other DDL job of it is left (job_ready). */
static void ddl_done_locked(loader *l, job *c)
{
    if (c->ddl_done)
        return;
    c->ddl_done = 1;
    size_t *n = strset_val(&l->ddl_wait, c->table);
    if (n && *n)
        (*n)--;
    if (--l->ndl == 0)      /* stop_workers may wait for the last */
        pthread_cond_broadcast(&l->cv_idle);
    pthread_cond_broadcast(&l->cv_job);
}

/*
 * The DDL jobs a worker took together (take_ddls), on its load connection: each CREATE (an
 * existing table or schema is fine: a shard merge or a rerun), then the claims of the tables
 * created, in one transaction (see claim_body). A claim was a commit of its own per table, and
 * on a target that syncs its redo at each commit (MariaDB's default) the 2,000 claims of 2,000
 * small tables cost about a sixth of their copy (issue 12: 23.5 s against 18.3-21.6 s without
 * their commits). Each claim still commits before any chunk of its table loads: the chunks wait
 * for their table's DDL job (job_ready), which ends after the commit.
 * The batch's locks are tried without waiting: a table whose claim lock another source holds
 * (its own claim, or a TRUNCATE of a redone load) is claimed alone after the others, waiting
 * for it, and the others' chunks load meanwhile, as when each table was claimed on its own.
 * Every CREATE runs even when one fails (the tables of a DDL batch are all created, see
 * take_job); the first failure is returned. Returns 0 or a negative code with e.
 */
static int run_ddl_jobs(lworker *w, job *j, sl_error *e)
{
    loader *l = w->l;
    job *claims[DDL_BATCH], *made[DDL_BATCH];
    size_t n = 0, nmade = 0;
    int rc = 0;
    for (job *c = j; c; c = c->more) {
        sl_error ce = {0};
        if (sl_myconn_exec(w->db, c->sql, strlen(c->sql), &ce) != 0) {
            unsigned en = mysql_errno(w->db);
            if (en != 1050 && en != 1007) {
                if (rc == 0) {
                    rc = ce.code;
                    *e = ce;
                    sl_error_prefix(e, "target: creating %s", c->table);
                }
                continue;
            }
        }
        if (nmade < DDL_BATCH)
            made[nmade++] = c;
        if (c->claim && n < DDL_BATCH)
            claims[n++] = c;
    }
    qsort(claims, n, sizeof *claims, by_lockname);
    const char *what[DDL_BATCH], *locks[DDL_BATCH];
    int granted[DDL_BATCH];
    sl_sbuf b;
    sl_sbuf_init(&b);
    for (size_t i = 0; i < n; i++) {
        claim_lock(&b, claims[i]->lockname, 0);
        what[i] = claims[i]->table;
        locks[i] = claims[i]->lockname;
    }
    for (size_t i = 0; i < n; i++)
        sl_sbuf_adds(&b, claims[i]->claim);
    claim_tail(&b, locks, n);
    sl_error ce = {0};
    int crc = n == 0 ? 0 : b.oom ? sl_error_set(&ce, SL_ENOMEM, "no memory")
                               : run_claim(w->db, b.p, b.len, what, locks, n, granted, &ce);
    if (crc == 0) {
        /* the tables created and claimed: their chunks may load while the others wait */
        pthread_mutex_lock(&l->mu);
        for (size_t i = 0; i < nmade; i++) {
            size_t k = 0;
            while (k < n && claims[k] != made[i])
                k++;
            if (k == n || granted[k])
                ddl_done_locked(l, made[i]);
        }
        pthread_mutex_unlock(&l->mu);
    }
    sl_sbuf_free(&b);
    /* a claim whose lock another source held, alone, waiting for the lock */
    for (size_t i = 0; crc == 0 && i < n; i++)
        if (!granted[i])
            crc = claim_alone(w->db, claims[i]->claim, what[i], locks[i], &ce);
    if (crc && rc == 0) {
        rc = crc;
        *e = ce;
        sl_error_prefix(e, "target");
    }
    return rc;
}

/* Under mu, for a worker that took DDL job j: the DDL jobs queued after it that join it (their
 * claims share its commit, run_ddl_jobs), at most DDL_BATCH in all and about this worker's share
 * of those queued, so a short list still spreads over every worker. */
static void take_ddls(loader *l, job *j)
{
    size_t queued = 0;
    for (const job *d = l->dhead; d && queued < DDL_BATCH * l->nw; d = d->next)
        queued++;
    size_t want = (queued + 1 + l->nw - 1) / (l->nw ? l->nw : 1);
    if (want > DDL_BATCH)
        want = DDL_BATCH;
    for (job *tail = j; want > 1 && l->dhead; want--) {
        tail->more = unlink_job(&l->dhead, &l->dtail, NULL, l->dhead);
        tail = tail->more;
    }
}

/*
 * Small chunks share a transaction. A table of 1,000 rows is one chunk of ~200 KB, and each chunk
 * was a transaction with its own commit; on a target that syncs its redo at each commit (MariaDB's
 * default, innodb_flush_log_at_trx_commit = 1) the commits of 2,000 such tables cost as much as a
 * sixth of their load. So the stage thread gathers the small chunks of a batch into groups, each
 * one job: the worker loads them one after the other in one transaction and commits them with
 * all their checkpoint rows, so each chunk is still loaded and recorded together, or neither.
 * A group is at most GROUP_BYTES (a rollback stays cheap; a big chunk's transaction is four
 * times that) and about a worker's share of the batch's small chunks, so a short batch still
 * spreads over every worker. A streamed chunk is never grouped: it is read once, while its dump
 * worker waits. The group is queued at the end of the batch (or before a DDL), so it is empty
 * between batches.
 */
#define GROUP_CHUNK_MAX (1u << 20)  /* a chunk of at most this many bytes may join a group */
#define GROUP_BYTES     (4u << 20)
#define GROUP_CHUNKS    64

static int flush_group(loader *l)
{
    job *g = take_group(l);
    return g ? enqueue(l, g) : 0;
}

static int groupable(uint64_t bytes, const char *path)
{
    return bytes <= GROUP_CHUNK_MAX && !sl_stream_path(path);
}

/* Queue chunk j, alone or in the group being filled (see above). */
static int submit_chunk(loader *l, job *j)
{
    if (!groupable(j->bytes, j->path))
        return enqueue(l, j);
    if (l->grp && (l->grp_bytes + j->bytes > l->grp_limit || l->grp_n >= GROUP_CHUNKS)) {
        int rc = flush_group(l);
        if (rc < 0) {
            job_free(j);
            return rc;
        }
    }
    if (l->grp)
        l->grp_tail->more = j;
    else
        l->grp = j;
    l->grp_tail = j;
    l->grp_bytes += j->bytes;
    l->grp_n++;
    return 0;
}

static int handle_chunk(loader *l, const sl_event *ev)
{
    if (!ev->chunk_path || !ev->chunk_id)
        return l->host->fail(l->ctx, SL_EINVAL, "a chunk event without file or id");
    atomic_fetch_add(&l->total_bytes, ev->chunk_bytes);
    l->rows_total += ev->chunk_rows;
    const char *ts = or_default(ev->target_schema, ev->schema);
    const char *tt = or_default(ev->target_table, ev->table);
    sl_sbuf tn;     /* the target table, for the deferred indexes and the job's messages */
    sl_sbuf_init(&tn);
    sl_sbuf_add_qname(&tn, ts, tt);
    if (tn.oom) {
        sl_sbuf_free(&tn);
        return l->host->fail(l->ctx, SL_ENOMEM, "no memory");
    }
    long dt = -1;
    if (l->ndeferred && !l->finished_before) {
        dt = find_deferred(l, tn.p);
        if (dt >= 0 && (ev->flags & SL_EVF_LAST_CHUNK)) {
            sl_sbuf src;
            sl_sbuf_init(&src);
            sl_sbuf_add_qname(&src, or_default(ev->schema, ""), ev->table);
            if (!src.oom && strset_has(&l->deferred_src, src.p)) {
                pthread_mutex_lock(&l->mu);
                l->deferred[dt].lasts++;
                pthread_mutex_unlock(&l->mu);
            }
            sl_sbuf_free(&src);
        }
    }
    int done_before = l->finished_before || strset_has(&l->done, ev->chunk_id);
    if (dt >= 0) {
        pthread_mutex_lock(&l->mu);
        l->deferred[dt].bytes += ev->chunk_bytes;
        if (done_before)
            l->deferred[dt].bytes_in += ev->chunk_bytes;
        pthread_mutex_unlock(&l->mu);
    }
    if (done_before) {
        sl_sbuf_free(&tn);
        atomic_fetch_add(&l->finished_bytes, ev->chunk_bytes);
        drain_stream(ev->chunk_path);
        /* a resumed load: the table's last chunk may be one loaded before */
        if (dt >= 0 && queue_build(l, (size_t)dt, 0) != 0)
            return l->host->fail(l->ctx, SL_ENOMEM, "no memory");
        return 0;
    }
    job *j = calloc(1, sizeof *j);
    if (!j) {
        sl_sbuf_free(&tn);
        return l->host->fail(l->ctx, SL_ENOMEM, "no memory");
    }
    j->table = tn.p;
    sl_sbuf b;
    sl_sbuf_init(&b);
    sl_sbuf_adds(&b, "LOAD DATA LOCAL INFILE ");
    sl_sbuf_add_quoted(&b, ev->chunk_path, strlen(ev->chunk_path));
    if (l->cfg->on_duplicate == DUP_OVERWRITE || l->cfg->on_duplicate == DUP_REPLACE) {
        j->kw = b.len + 1;
        sl_sbuf_adds(&b, " REPLACE");
    } else
        sl_sbuf_adds(&b, " IGNORE");
    sl_sbuf_adds(&b, " INTO TABLE ");
    sl_sbuf_add_qname(&b, ts, tt);
    sl_sbuf_adds(&b, " CHARACTER SET binary FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' "
                     "LINES TERMINATED BY '\\n'");
    if (ev->meta && ev->meta->ncols) {
        sl_sbuf_adds(&b, " (");
        for (uint32_t i = 0; i < ev->meta->ncols; i++) {
            if (i)
                sl_sbuf_adds(&b, ", ");
            sl_sbuf_add_ident(&b, ev->meta->cols[i].name);
        }
        sl_sbuf_adds(&b, ")");
        sl_sbuf en;
        sl_sbuf_init(&en);
        for (uint32_t i = 0; i < ev->meta->ncols; i++)
            if (ev->meta->cols[i].mysql_type == MYSQL_TYPE_ENUM) {
                sl_sbuf_adds(&en, en.len ? "" : "\x01");
                sl_sbuf_adds(&en, ev->meta->cols[i].name);
                sl_sbuf_adds(&en, "\x01");
            }
        j->enums = en.p;
    }
    j->sql = b.oom ? NULL : b.p;
    if (!j->sql)
        sl_sbuf_free(&b);
    j->ai = strset_has(&l->ai_tables, tn.p);
    if (l->cfg->bulk_insert && ev->meta && ev->meta->ncols) {
        uint32_t n = ev->meta->ncols, i = 0;
        while (i < n && bulk_type(ev->meta->cols[i].type_text))
            i++;
        if (i == n) {
            char mark[64];
            bulk_marker(l, mark, sizeof mark);
            sl_sbuf_init(&b);
            sl_sbuf_adds(&b, mark);
            j->kw_ins = b.len;
            sl_sbuf_adds(&b, l->cfg->on_duplicate == DUP_OVERWRITE ||
                             l->cfg->on_duplicate == DUP_REPLACE ? "REPLACE INTO " : "INSERT IGNORE INTO ");
            sl_sbuf_add_qname(&b, ts, tt);
            sl_sbuf_adds(&b, " (");
            for (i = 0; i < n; i++) {
                sl_sbuf_adds(&b, i ? ", " : "");
                sl_sbuf_add_ident(&b, ev->meta->cols[i].name);
            }
            sl_sbuf_adds(&b, ") VALUES (");
            for (i = 0; i < n; i++)
                sl_sbuf_adds(&b, i ? ", ?" : "?");
            sl_sbuf_adds(&b, ")");
            if (b.oom) {
                sl_sbuf_free(&b);
                job_free(j);
                return l->host->fail(l->ctx, SL_ENOMEM, "no memory");
            }
            j->ins = b.p;
            j->ncols = n;
        }
    }
    j->path = strdup(ev->chunk_path);
    j->id = strdup(ev->chunk_id);
    j->tschema = strdup(ts);
    j->ttable = strdup(tt);
    sl_sbuf_init(&b);
    sl_sbuf_add_qname(&b, or_default(ev->schema, ""), ev->table ? ev->table : "");
    if (b.oom)
        sl_sbuf_free(&b);
    else
        j->src = b.p;
    j->rows = ev->chunk_rows;
    j->bytes = ev->chunk_bytes;
    j->dt = dt;
    if (!j->sql || !j->path || !j->id || !j->tschema || !j->ttable || !j->src) {
        job_free(j);
        return l->host->fail(l->ctx, SL_ENOMEM, "no memory");
    }
    if (dt >= 0) {
        pthread_mutex_lock(&l->mu);
        l->deferred[dt].inflight++;
        pthread_mutex_unlock(&l->mu);
    }
    l->chunks_queued = 1;
    return submit_chunk(l, j);
}

/* After the last chunk: the deferred secondary indexes not built yet (queue_build), one table
 * per worker at a time, and the wait for every build. */
static int build_indexes(loader *l)
{
    if (l->finished_before || l->eof_done || !l->ndeferred)
        return 0;
    size_t left = 0;
    pthread_mutex_lock(&l->mu);
    for (size_t i = 0; i < l->ndeferred; i++)
        left += !l->deferred[i].queued;
    pthread_mutex_unlock(&l->mu);
    l->host->log(l->ctx, SL_LOG_INFO, "secondary indexes of %zu tables: %zu built or building "
                 "since their last chunk, %zu to build now", l->ndeferred, l->ndeferred - left, left);
    for (size_t i = 0; i < l->ndeferred; i++) {
        int rc = queue_build(l, i, 1);
        if (rc)
            return l->host->fail(l->ctx, rc, "no memory");
    }
    return wait_idle(l);
}

static int finish(loader *l, const sl_batch *b)
{
    if (l->finished_before || l->eof_done)
        return 0;
    l->rows_total += (uint64_t)atomic_exchange(&l->rows_streamed, 0);
    const loader_cfg *c = l->cfg;
    const char *file = b->ckpt.file;
    uint64_t pos = b->ckpt.offset;
    const char *gtid = b->ckpt.gtid;
    if (!file && l->have_snap) {
        file = l->snap.file;
        pos = l->snap.pos;
        gtid = l->snap.gtid;
    }
    const char *snap = l->have_snap ? l->snap.id : "";
    sl_sbuf s;
    sl_sbuf_init(&s);
    sl_sbuf_adds(&s, "INSERT INTO ");
    sl_ckpt_table_name(&s, c->meta_schema, c->task_name, 0);
    /* the finish marker is fenced like a chunk: a worker that lost the source declares
     * nothing loaded */
    sl_sbuf_adds(&s, c->fence_epoch > 0 ? " (source_name, chunk_id, snapshot, row_count) SELECT "
                                        : " (source_name, chunk_id, snapshot, row_count) VALUES (");
    sl_sbuf_add_quoted(&s, c->source_name, strlen(c->source_name));
    sl_sbuf_adds(&s, ", '', ");
    sl_sbuf_add_quoted(&s, snap, strlen(snap));
    sl_sbuf_addf(&s, ", %llu", (unsigned long long)l->rows_total);
    if (c->fence_epoch > 0)
        sl_ckpt_add_fence_guard(&s, c->meta_schema, c->source_name, c->fence_epoch);
    else
        sl_sbuf_adds(&s, ")");
    sl_sbuf_adds(&s, " ON DUPLICATE KEY UPDATE snapshot = VALUES(snapshot), "
                     "row_count = VALUES(row_count)");
    int rc = ctl_exec(l, "START TRANSACTION", 17);
    if (rc == 0)
        rc = s.oom ? SL_ENOMEM : ctl_exec(l, s.p, s.len);
    sl_sbuf_reset(&s);
    sl_sbuf_adds(&s, "DELETE FROM ");
    sl_ckpt_table_name(&s, c->meta_schema, c->task_name, 0);
    sl_sbuf_adds(&s, " WHERE source_name = ");
    sl_sbuf_add_quoted(&s, c->source_name, strlen(c->source_name));
    sl_sbuf_adds(&s, " AND snapshot <> ");
    sl_sbuf_add_quoted(&s, snap, strlen(snap));
    if (rc == 0)
        rc = s.oom ? SL_ENOMEM : ctl_exec(l, s.p, s.len);
    sl_sbuf_reset(&s);
    sl_sbuf_adds(&s, "INSERT INTO ");
    sl_ckpt_table_name(&s, c->meta_schema, c->task_name, 1);
    sl_sbuf_adds(&s, " (source_name, worker, binlog_name, binlog_pos, binlog_gtid, seq, is_snapshot) VALUES (");
    sl_sbuf_add_quoted(&s, c->source_name, strlen(c->source_name));
    sl_sbuf_adds(&s, ", 0, ");
    sl_sbuf_add_quoted(&s, file ? file : "", file ? strlen(file) : 0);
    sl_sbuf_addf(&s, ", %llu, ", (unsigned long long)pos);
    sl_sbuf_add_quoted(&s, gtid ? gtid : "", gtid ? strlen(gtid) : 0);
    sl_sbuf_adds(&s, ", 0, 1) ON DUPLICATE KEY UPDATE binlog_name = VALUES(binlog_name), "
                     "binlog_pos = VALUES(binlog_pos), binlog_gtid = VALUES(binlog_gtid), "
                     "seq = VALUES(seq), is_snapshot = 1");
    if (rc == 0)
        rc = s.oom ? SL_ENOMEM : ctl_exec(l, s.p, s.len);
    if (rc == 0)
        rc = ctl_exec(l, "COMMIT", 6);
    else
        sl_myconn_exec(l->ctl, "ROLLBACK", 8, NULL);
    sl_sbuf_free(&s);
    if (rc)
        return rc;
    pthread_mutex_lock(&l->mu);
    snprintf(l->meta_binlog, sizeof l->meta_binlog, "(%s, %llu)", file ? file : "",
             (unsigned long long)pos);
    free(l->meta_gtid);
    l->meta_gtid = strdup(gtid ? gtid : "");
    pthread_mutex_unlock(&l->mu);
    l->eof_done = 1;
    l->host->log(l->ctx, SL_LOG_INFO, "load finished: %llu rows; this run loaded %llu chunks in "
                 "%llu transactions (%llu chunks with bulk INSERT, the others with LOAD DATA); "
                 "snapshot position (%s, %llu) '%s'",
                 (unsigned long long)l->rows_total, (unsigned long long)atomic_load(&l->chunks_loaded),
                 (unsigned long long)atomic_load(&l->txns), (unsigned long long)atomic_load(&l->chunks_bulk),
                 file ? file : "", (unsigned long long)pos, gtid ? gtid : "");
    return 0;
}

/* ---- plugin callbacks ------------------------------------------------------------------------ */

static int loader_create(const sl_host *host, sl_ctx *ctx, const void *config, void **self)
{
    const loader_cfg *cfg = config;
    loader *l = calloc(1, sizeof *l);
    if (!l)
        return host->fail(ctx, SL_ENOMEM, "no memory");
    l->host = host;
    l->ctx = ctx;
    l->cfg = cfg;
    if (sl_dump_dir(l->dir, sizeof l->dir, cfg->data_dir, cfg->task_name, cfg->source_name) < 0) {
        free(l);
        return host->fail(ctx, SL_ELIMIT, "data_dir too long");
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv_job, NULL);
    pthread_cond_init(&l->cv_space, NULL);
    pthread_cond_init(&l->cv_idle, NULL);
    *self = l;
    return 0;
}

static void reset_run(loader *l)
{
    stop_workers(l);
    if (l->ctl)
        mysql_close(l->ctl);
    l->ctl = NULL;
    free(l->ctl_db);
    l->ctl_db = NULL;
    l->inited = l->finished_before = l->stale = l->eof_done = l->chunks_queued = 0;
    strset_clear(&l->done);
    strset_clear(&l->claimed);
    strset_clear(&l->schemas);
    strset_clear(&l->deferred_tables);
    strset_clear(&l->deferred_src);
    strset_clear(&l->ai_tables);
    pthread_mutex_lock(&l->mu);
    strset_clear(&l->merge_pairs);
    strset_clear(&l->merge_n);
    pthread_mutex_unlock(&l->mu);
    for (size_t i = 0; i < l->ndeferred; i++) {
        free(l->deferred[i].alter);
        free(l->deferred[i].qname);
    }
    free(l->deferred);
    l->deferred = NULL;
    l->ndeferred = 0;
    sl_snapshot_clear(&l->snap);
    l->have_snap = 0;
    l->rows_total = 0;
    atomic_store(&l->rows_streamed, 0);
    atomic_store(&l->chunks_loaded, 0);
    atomic_store(&l->txns, 0);
    atomic_store(&l->chunks_bulk, 0);
    l->werr = 0;
    atomic_store(&l->finished_bytes, 0);
    atomic_store(&l->total_bytes, 0);
    atomic_store(&l->dump_total, 0);
    atomic_store(&l->dump_total_checked, 0);
    atomic_store(&l->run_seen, 0);
}

static int loader_start(void *self)
{
    loader *l = self;
    reset_run(l);
    if (l->cfg->mode == MODE_DUMP)
        return 0;
    sl_error e = {0};
    l->ctl = connect_target(l, 0, &e);
    if (!l->ctl)
        return l->host->fail(l->ctx, e.code ? e.code : SL_ECONN, "target: %s", e.msg);
    size_t n = (size_t)l->cfg->import_threads;
    l->w = calloc(n, sizeof *l->w);
    if (!l->w)
        return l->host->fail(l->ctx, SL_ENOMEM, "no memory");
    l->qcap = n * 2;
    for (size_t i = 0; i < n; i++) {
        l->w[i].l = l;
        l->w[i].db = connect_target(l, 1, &e);
        if (!l->w[i].db)
            return l->host->fail(l->ctx, e.code ? e.code : SL_ECONN, "target: %s", e.msg);
        mysql_set_local_infile_handler(l->w[i].db, infile_init, infile_read, infile_end,
                                       infile_error, &l->w[i]);
        l->nw++;
    }
    for (size_t i = 0; i < n; i++) {
        int rc = l->host->thread_start(l->ctx, "load", worker_main, &l->w[i], &l->w[i].thread);
        if (rc < 0)
            return l->host->fail(l->ctx, rc, "cannot start a load thread");
        l->nthreads++;
    }
    return 0;
}

static int loader_process(void *self, sl_batch *b)
{
    loader *l = self;
    if (l->cfg->mode == MODE_DUMP)
        return 0;
    int rc = 0;
    uint64_t small = 0;     /* bytes of the batch's small chunks: a group is a worker's share */
    for (uint32_t i = 0; i < b->n; i++) {
        const sl_event *ev = &b->events[i];
        if (ev->kind == SL_EV_CHUNK && !(ev->flags & SL_EVF_DROPPED) && ev->chunk_path &&
            groupable(ev->chunk_bytes, ev->chunk_path))
            small += ev->chunk_bytes;
    }
    l->grp_limit = l->nw ? small / l->nw : 0;
    if (l->grp_limit > GROUP_BYTES)
        l->grp_limit = GROUP_BYTES;
    for (uint32_t i = 0; i < b->n && rc == 0; i++) {
        const sl_event *ev = &b->events[i];
        if (ev->flags & SL_EVF_DROPPED)
            continue;
        if (ev->kind != SL_EV_DDL && ev->kind != SL_EV_CHUNK)
            continue;
        if ((rc = init_run(l)) < 0)
            break;
        if (ev->kind == SL_EV_CHUNK)
            rc = handle_chunk(l, ev);
        else if ((rc = flush_group(l)) == 0)   /* chunks before a DDL are queued before it */
            rc = handle_ddl(l, ev);
    }
    if (rc == 0)
        rc = flush_group(l);
    if (rc) {
        job_free(take_group(l));
        return rc;
    }
    if (b->flags & SL_BATCH_EOF) {
        if ((rc = init_run(l)) < 0 || (rc = wait_idle(l)) < 0)
            return rc;
        if ((rc = build_indexes(l)) < 0)
            return rc;
        return finish(l, b);
    }
    pthread_mutex_lock(&l->mu);
    int werr = l->werr;
    pthread_mutex_unlock(&l->mu);
    if (werr)
        return l->host->fail(l->ctx, werr, "%s", l->werr_msg.msg);
    return 0;
}

static int loader_flush(void *self)
{
    loader *l = self;
    if (l->cfg->mode == MODE_DUMP || !l->nthreads)
        return 0;
    return wait_idle(l);
}

static void loader_stop(void *self)
{
    loader *l = self;
    stop_workers(l);
    if (l->ctl)
        mysql_close(l->ctl);
    l->ctl = NULL;
    free(l->ctl_db);
    l->ctl_db = NULL;
}

static void loader_destroy(void *self)
{
    loader *l = self;
    if (!l)
        return;
    reset_run(l);
    free(l->meta_gtid);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv_job);
    pthread_cond_destroy(&l->cv_space);
    pthread_cond_destroy(&l->cv_idle);
    free(l);
}

static char *loader_status(void *self)
{
    loader *l = self;
    uint64_t fb = atomic_load(&l->finished_bytes), tb = atomic_load(&l->total_bytes);
    uint64_t dt = dump_total_poll(l);
    if (dt > tb)
        tb = dt;
    if (fb > tb)
        tb = fb;
    pthread_mutex_lock(&l->mu);
    double pct = tb ? 100.0 * (double)fb / (double)tb : 0.0;
    if (l->eof_done || l->finished_before)
        pct = 100.0;
    else if (pct > 99.99)
        pct = 99.99;
    sl_sbuf g;
    sl_sbuf_init(&g);
    /* JSON string: the GTID set and binlog name hold no quotes or backslashes, but be safe. */
    const char *src = l->meta_gtid ? l->meta_gtid : "";
    for (const char *p = src; *p; p++)
        if (*p != '"' && *p != '\\' && (unsigned char)*p >= 0x20)
            sl_sbuf_add(&g, p, 1);
    char mb[sizeof l->meta_binlog];
    snprintf(mb, sizeof mb, "%s", l->meta_binlog);
    pthread_mutex_unlock(&l->mu);
    for (char *p = mb; *p; p++)
        if (*p == '"' || *p == '\\')
            *p = '_';
    size_t cap = 256 + sizeof mb + g.len;
    char *s = l->host->alloc(cap);
    if (s)
        snprintf(s, cap,
                 "{\"unit\":\"Load\",\"finished_bytes\":%llu,\"total_bytes\":%llu,"
                 "\"progress\":\"%.2f %%\",\"meta_binlog\":\"%s\",\"meta_binlog_gtid\":\"%s\"}",
                 (unsigned long long)fb, (unsigned long long)tb, pct, mb, g.p ? g.p : "");
    sl_sbuf_free(&g);
    return s;
}

/* DM's task delete without keep_meta (and start with remove_meta): the tables this plugin
 * writes in the meta schema (the syncer checkpoint too: the loader writes the snapshot position
 * there), and this source's dump files, except in a task_mode dump task, whose files are its
 * product. */
static int loader_cleanup(void *self, unsigned what)
{
    loader *l = self;
    const loader_cfg *c = l->cfg;
    static const char *const tables[] = { "_loader_checkpoint", "_syncer_checkpoint",
                                          "_loader_tables", NULL };
    sl_error e = {0};
    int rc = 0;
    if (what & SL_CLEANUP_META) {
        MYSQL *db = connect_target(l, 0, &e);
        if (!db || sl_cleanup_meta_tables(db, c->meta_schema, c->task_name, tables, &e) != 0)
            rc = l->host->fail(l->ctx, e.code ? e.code : SL_EDB, "target: %s", e.msg);
        if (db)
            mysql_close(db);
    }
    e = (sl_error){0};
    if ((what & SL_CLEANUP_FILES) && c->mode != MODE_DUMP && sl_cleanup_dump_dir(l->dir, &e) != 0 &&
        rc == 0)
        rc = l->host->fail(l->ctx, e.code, "%s", e.msg);
    return rc;
}

SL_PLUGIN_EXPORT const sl_plugin_descriptor sluice_plugin = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_plugin_descriptor),
    .name = "loader",
    .kind = SL_PLUGIN_SINK,
    .description = "loads dump chunk files into the target with LOAD DATA LOCAL INFILE, resumably",
    .options = loader_options,
    .config_size = sizeof(loader_cfg),
    .create = loader_create,
    .start = loader_start,
    .process = loader_process,
    .flush = loader_flush,
    .stop = loader_stop,
    .destroy = loader_destroy,
    .status = loader_status,
    .cleanup = loader_cleanup,
};
