/*
 * mysql_sink.c - the mysql-sink plugin: applies routed row changes and DDL to a MySQL-compatible
 * target with repl_threads workers, exactly once, with its checkpoint in the target.
 *
 * Design (docs/replication.md tells the same story): GROUP COMMIT OVER XA.
 *   - The sink cuts the stream into groups of whole source transactions (a group ends at the
 *     end of a batch that ends on a transaction boundary when no more input waits or it is
 *     big enough, before a DDL, and before a transaction whose rows relate to rows already on
 *     two different workers). A worker takes repl_batch rows of a group before another starts.
 *   - Each worker reduces its share to the net change per row key where that is exact
 *     (common/compact.c) and sends it as multi-row statements, framed by its transaction's
 *     statements, in one round trip.
 *   - The causality scheduler (common/causality.c) spreads each transaction's rows over workers
 *     by primary/unique key values: related rows share a worker and keep source order.
 *   - A group that touched one worker is applied as one plain transaction on that worker's
 *     connection, with the checkpoint row updated in the same transaction.
 *   - A group that touched several workers is applied as one XA branch per worker
 *     (XA START 'sluice-<hash(task,source)>-<group>-<w>' ... XA END ... XA PREPARE); once every
 *     branch is prepared, the coordinator commits the checkpoint (worker 0 row, seq = group id),
 *     then each worker XA COMMITs its branch while the sink takes the next batch. On start, XA RECOVER commits the prepared branches
 *     of groups <= the checkpointed seq and rolls back the others.
 *   So a crash at any instant leaves the target at a group boundary that matches its
 *   checkpoint: nothing lost, nothing applied twice, and no REPLACE-based safe mode needed.
 *   Per-worker checkpoint rows were rejected: after a crash the replayed stream may be cut into
 *   different groups and scheduled differently, so per-worker positions cannot tell which rows a
 *   worker already applied.
 *   - A transaction bigger than one batch goes to worker 0 alone in a plain transaction that
 *     stays open across batches and commits with the checkpoint at its COMMIT.
 *   - DDL is a barrier: the group before it commits, a pending-DDL row (worker = -1) is written,
 *     the DDL runs alone, then the checkpoint moves past it and the pending row is deleted in one
 *     transaction. Replaying the DDL named by a pending row tolerates "already done" errors.
 *   - Keys, generated columns and column names come from the TARGET table (tcache.c: loaded from
 *     information_schema once per table, again after a DDL on it or a restart), not from the
 *     binlog, which carries only the primary key: causality hashes every unique key of the
 *     target, statements never write its generated columns, and a table without a primary key
 *     is identified by its first unique NOT NULL key.
 */
#include <sluice/plugin.h>
#include <errmsg.h>
#include <inttypes.h>
#include <jansson.h>
#include <mysql.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "causality.h"
#include "cleanup.h"
#include "compact.h"
#include "ddl.h"
#include "dmlsql.h"
#include "ckpt.h"
#include "myconn.h"
#include "tcache.h"
#include "tmeta.h"

typedef struct sink_config {
    SL_MYCONN_FIELDS(target);
    char   *task_name, *source_name, *meta_schema;
    int64_t repl_threads, repl_batch;
    int     safe_mode;
    int64_t safe_mode_seconds;
    char   *sql_mode;
    int64_t fence_epoch;
    char   *shard_mode;
    int     strict_optimistic;
    int64_t read_timeout;
} sink_config;

#define O(n) offsetof(sink_config, n)
static const sl_option sink_options[] = {
    SL_MYCONN_OPTIONS(target, sink_config),
    { "task_name", SL_OPT_STRING, NULL, "task name (checkpoint table name)", O(task_name), 0, -1, NULL, SL_OPTF_REQUIRED },
    { "source_name", SL_OPT_STRING, NULL, "source name (checkpoint row)", O(source_name), 0, -1, NULL, SL_OPTF_REQUIRED },
    { "meta_schema", SL_OPT_STRING, "\"dm_meta\"", "schema of the checkpoint tables on the target", O(meta_schema), 0, -1, NULL, 0 },
    { "repl_threads", SL_OPT_INT, "16", "parallel apply workers", O(repl_threads), 1, 1024, NULL, 0 },
    { "repl_batch", SL_OPT_INT, "100", "rows per statement", O(repl_batch), 1, 100000, NULL, 0 },
    { "safe_mode", SL_OPT_BOOL, "false", "write REPLACE for INSERT and DELETE+REPLACE for UPDATE", O(safe_mode), 0, -1, NULL, 0 },
    { "safe_mode_seconds", SL_OPT_INT, "0", "safe mode for the rows committed on the source within this many seconds of the first row of a run (DM's safe_mode_time_duration; 0 = none)", O(safe_mode_seconds), 0, 31536000, NULL, 0 },
    { "sql_mode", SL_OPT_STRING, "\"\"", "sql_mode of the sink's sessions (NO_AUTO_VALUE_ON_ZERO is "
      "always added), e.g. \"STRICT_ALL_TABLES\"; NO_BACKSLASH_ESCAPES, ANSI_QUOTES, the modes that "
      "set it (ANSI, DB2, MAXDB, MSSQL, ORACLE, POSTGRESQL) and EMPTY_STRING_IS_NULL are refused",
      O(sql_mode), 0, -1, NULL, 0 },
    { "fence_epoch", SL_OPT_INT, "0", "cluster fencing, set by the runtime (issue 13): the start "
      "raises the source's row of <meta_schema>.sluice_fence to this epoch and every checkpoint "
      "commits only while the row still holds it, so a process that lost the source to a newer "
      "owner (larger epoch) commits nothing more; 0 = off", O(fence_epoch), 0, INT64_MAX, NULL, 0 },
    { "shard_mode", SL_OPT_STRING, "\"\"", "the task's shard_mode: \"pessimistic\" coordinates DDL on "
      "shard-merged tables with the other shards (host->shard), \"optimistic\" makes the target follow the "
      "join of their structures; \"\" pauses at such a DDL",
      O(shard_mode), 0, -1, NULL, 0 },
    { "strict_optimistic", SL_OPT_BOOL, "false", "the task's strict_optimistic_shard_mode: in optimistic "
      "mode, a shard DDL other than one ADD, DROP or MODIFY COLUMN is a conflict", O(strict_optimistic),
      0, -1, NULL, 0 },
    { "read_timeout", SL_OPT_INT, "300", "seconds the sink waits for the target to answer a "
      "statement (or to take one) before it drops the connection: the stage fails with a "
      "connection error and auto-resume goes on from the checkpoint, as after a restart (DM's 5 "
      "minutes for DML). A target host that went away or a partition is found this way; without "
      "it the sink waits for ever. DDL runs on a connection of its own without it (an ALTER may "
      "run for hours); 0 = wait for ever", O(read_timeout), 0, 31536000, NULL, 0 },
    { NULL, 0, NULL, NULL, 0, 0, 0, NULL, 0 }
};

/* Session settings: TIMESTAMPs travel as UTC; explicit 0 in AUTO_INCREMENT columns stays 0; no
 * gap locks between parallel workers; ALTERs of system-versioned tables keep their history; no
 * notes, so a statement's warning count holds only the values the target changed. The
 * statements never rely on a non-strict sql_mode (generated columns are not written), so a
 * strict one may be configured; it is not the default because some values a non-strict source
 * stores are refused by a strict target (an ENUM's error value '', index 0: docs/replication.md
 * "Why the default is not strict"). */
#define SESSION_SQL_HEAD "SET time_zone='+00:00', foreign_key_checks=0, tx_isolation='READ-COMMITTED', " \
                         "sql_notes=0, " \
                         "sql_mode=CONCAT_WS(',', NULLIF("
#define SESSION_SQL_TAIL ", ''), 'NO_AUTO_VALUE_ON_ZERO')" SL_MYCONN_SET_KEEP_HISTORY

enum { JOB_NONE = 0, JOB_APPLY, JOB_XA_COMMIT, JOB_XA_ROLLBACK, JOB_QUIT };

/*
 * Row changes that find no row on the target (an UPDATE or DELETE of a row the target does not
 * have: it drifted from the source) change nothing there, as in DM, and the task goes on; they
 * are counted (status rows_not_found, metric rows_not_found) and the first MISS_LOG_PER_TABLE of
 * each table are logged with their key, then one line a minute with the count. A worker
 * describes up to MISS_NOTES statements of its open transaction; the coordinator counts and logs
 * them once that transaction is committed (a rolled-back one is applied again, and would count
 * twice).
 */
#define MISS_NOTES 4
#define MISS_NOTE_MAX 400        /* bytes of one description */
#define MISS_LOG_PER_TABLE 5
#define MISS_TABLES 256          /* tables whose warnings are counted; beyond, only the summary */
#define MISS_QUIET_MS 60000

/*
 * Row statements the target applied with warnings: it changed a value it was given (a string cut
 * to a column narrowed on the target, a character the column's character set lacks, a date the
 * target's sql_mode takes as zero, a number out of range). The default sql_mode is not strict
 * (docs/replication.md "Why the default is not strict"), so they are not errors; they are counted
 * (status target_warnings, metric target_warnings) and logged as rows not found are: the first
 * MISS_LOG_PER_TABLE statements of each table with their keys, then one line a minute. An ENUM's
 * error value '' (index 0), which the source stored the same way, warns without a change: one
 * warning per such value of the statement is not counted. Notes are off in the sink's sessions
 * (sql_notes = 0), so the count holds warnings only.
 */

/* The two kinds of notes (a tally each): rows not found, target warnings. */
enum { T_MISS, T_WARN, T_KINDS };

typedef struct miss_table { uint64_t table; uint32_t logged[T_KINDS]; } miss_table;

typedef struct miss_note {
    uint64_t table;              /* hash of the target table */
    uint64_t rows;               /* rows of the statement that found none */
    char     text[MISS_NOTE_MAX];
} miss_note;

/* What a worker's open transaction noted of one kind: the count, and the first statements'
 * descriptions. */
typedef struct tally {
    uint64_t  n;
    miss_note notes[MISS_NOTES];
    uint32_t  nnotes;
} tally;

typedef struct worker worker;
struct worker {
    struct sink    *s;
    uint32_t        id;
    void           *thread;
    MYSQL          *db;
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    int             job;         /* JOB_* to run (JOB_NONE when idle) */
    int             done;
    /* the part of the current group */
    sl_event      **evs;
    size_t          nev, cev;
    int             xa;          /* apply inside an XA branch */
    int             txn_open;    /* plain transaction open (big transactions across batches) */
    int             xa_started;
    int             committing;  /* an XA COMMIT job is posted and not waited for (settle) */
    int             patient;     /* wait for row locks as long as the server says (else 1 s) */
    int             patient_set; /* what the session is set to */
    unsigned        dberr;       /* server error number of the last failure (0 if none) */
    char            xid[64];
    const char     *commit_sql;  /* plain mode: run before COMMIT (the checkpoint), or NULL */
    int             keep_open;   /* plain mode: do not commit (a big transaction continues) */
    sl_error        err;
    int             rc;
    sl_sbuf         sql;
    sl_dmlsql_stmt *stmts;       /* the statements of w->sql (MAX_STARTS) */
    tally           t[T_KINDS];  /* rows not found and target warnings in the open transaction
                                  * (see MISS_NOTES) */
    sl_compactor   *cmp;         /* net change per row key of the worker's share (compact.h) */
    sl_event      **fk;          /* scratch: the share's rows of cascading-FK tables, in order */
    size_t          cfk;
    int             fk_dirty;    /* the session may be left with foreign_key_checks = 1 */
    unsigned long   packet;      /* the target's max_allowed_packet, for this connection */
    int             values_warns; /* MySQL 8.0.20+: an upsert's VALUES(c) warns (deprecated) */
    sl_dmlsql_row_reader *row;   /* the row LOAD DATA reads now (apply_big), or NULL */
};

typedef struct sink {
    const sl_host *host;
    sl_ctx        *ctx;
    const sink_config *cfg;
    uint32_t       nworkers;
    worker        *w;
    MYSQL         *coord;        /* checkpoints, metadata, markers (read_timeout) */
    MYSQL         *ddl;          /* the DDL's own session, opened by sink_start: no timeout */
    sl_causality  *caus;
    uint64_t       xid_hash;
    int64_t        boot;         /* the target's boot time (s), 0 = unknown: stale_sessions */
    uint64_t       group;        /* last committed group id (= checkpoint seq) */
    uint64_t       safe_until;   /* safe_mode_seconds: rows committed before this (source time)
                                  * are written in safe mode; 0 = not known yet this run */
    int            serial;       /* a big transaction is open on worker 0 */
    uint64_t      *keys;
    uint32_t      *kstart, *assign;
    size_t         ckeys, crows;
    sl_sbuf        sql;
    char          *ckpt_table;   /* `meta`.`task_syncer_checkpoint` */
    char          *session_sql;  /* run on every new connection */
    sl__tcache    *tc;           /* target table metadata and the views events are applied with */
    /* batches whose row events (copied, with meta = their view) are in the open group: a group
     * may span batches (up to GROUP_BATCHES of them and GROUP_BYTES, repl_batch rows per
     * worker) while more
     * input waits */
    struct held { sl_batch *b; sl_event *copies; } *held;
    size_t         nheld, cheld;
    uint64_t       copy_seq;     /* source order of the copies (sl_event.seq of a copy) */
    /* applied position (guarded by mu for status) */
    pthread_mutex_t mu;
    char          *file, *gtid;
    uint64_t       pos;
    /* the position of the last checkpoint written (or read at start): the applied position has
     * moved when it differs (transactions whose rows were all dropped, a dropped DDL, a heartbeat
     * past non-transaction events) */
    char          *ck_file;
    uint64_t       ck_pos;
    int64_t        last_ckpt_ms;
    int            in_txn;       /* a BEGIN was seen and not its COMMIT yet */
    /* the source as its last heartbeat saw it, and lag (guarded by mu) */
    char          *src_file;
    uint64_t       src_pos;
    uint64_t       last_ts;      /* commit time of the newest applied event (or of a heartbeat
                                    that found everything applied) */
    uint64_t       busy_ts;      /* commit time of the oldest event of the batch being applied */
    /* pending DDL of a crash: replay it tolerantly */
    char          *pend_file;
    uint64_t       pend_pos;
    /* shard DDL (pessimistic, shard.c in the runtime): see "Shard DDL" below */
    int            pessimistic;
    int            optimistic;
    char          *shard_table;  /* `meta`.`task_syncer_sharding_meta` */
    struct hold   *holds;
    size_t         nholds, cholds;
    char          *a_file, *a_gtid;  /* high-water: what a restart reads again up to here was
                                        handled (held tables aside); NULL = none */
    uint64_t       a_pos;
    int            shard_rows;   /* the shard table may hold rows of this source */
    int            ck_multi;     /* the last ckpt_sql wrote several statements */
    int            synced;
    atomic_llong   total_events;
    atomic_llong   counts[T_KINDS];  /* rows not found, target warnings: committed (MISS_NOTES) */
    miss_table     miss_tables[MISS_TABLES];  /* log lines written per table */
    uint64_t       quiet[T_KINDS];   /* counted and not logged since quiet_ms */
    int64_t        quiet_ms[T_KINDS];
    time_t         started;
    int64_t        recent_base;
    time_t         recent_at;
    int            running;
} sink;

/* ---- small helpers ------------------------------------------------------------------------ */

/*
 * Crash tests: SLUICE_SINK_FAILPOINT="<point>:<n>" kills the process (SIGKILL, as a crash) the
 * n-th time the sink reaches <point>: after-prepare (every XA branch prepared, checkpoint not
 * written), after-checkpoint (checkpoint committed, branches not committed), after-ddl (DDL
 * applied, checkpoint not moved), serial-open (a piece of at least 256 rows of a big transaction
 * applied, not committed).
 */
static void failpoint(const char *point)
{
    static _Atomic int hits;
    const char *fp = getenv("SLUICE_SINK_FAILPOINT");
    if (!fp)
        return;
    size_t l = strlen(point);
    if (strncmp(fp, point, l) != 0 || fp[l] != ':')
        return;
    if (atomic_fetch_add(&hits, 1) + 1 >= atoi(fp + l + 1))
        raise(SIGKILL);
}

static uint64_t fnv64(const char *a, const char *b)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = a; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    h = (h ^ 0) * 1099511628211ull;
    for (const char *p = b; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return h;
}

static void xid_of(sink *s, uint64_t group, uint32_t w, char *buf, size_t n)
{
    snprintf(buf, n, "sluice-%016" PRIx64 "-%" PRIu64 "-%u", s->xid_hash, group, w);
}

static char *dupstr(const char *x) { return x ? strdup(x) : NULL; }

static int has_ci(const char *s, const char *w)
{
    for (size_t n = strlen(w); *s; s++)
        if (strncasecmp(s, w, n) == 0)
            return 1;
    return 0;
}

/*
 * The first word of sql_mode (a comma list) that the sink's statements cannot run under, into
 * bad (n bytes), and why; NULL when none. NO_BACKSLASH_ESCAPES and ANSI_QUOTES change how they
 * parse (strings are escaped with backslashes, and '"' may quote one), and so do the combination
 * modes that set ANSI_QUOTES (MariaDB's ANSI, DB2, MAXDB, MSSQL, ORACLE, POSTGRESQL; ORACLE
 * changes much more); EMPTY_STRING_IS_NULL writes a source's '' as NULL.
 */
static const char *bad_sql_mode(const char *mode, char *bad, size_t n)
{
    static const char PARSES[] = "changes how the sink's statements parse",
                      QUOTES[] = "sets ANSI_QUOTES, which changes how the sink's statements parse";
    static const struct { const char *word, *why; } BAD[] = {
        { "NO_BACKSLASH_ESCAPES", PARSES }, { "ANSI_QUOTES", PARSES }, { "ANSI", QUOTES },
        { "DB2", QUOTES }, { "MAXDB", QUOTES }, { "MSSQL", QUOTES }, { "ORACLE", QUOTES },
        { "POSTGRESQL", QUOTES },
        { "EMPTY_STRING_IS_NULL", "writes the source's empty strings as NULL" },
    };
    for (const char *p = mode; *p;) {
        p += strspn(p, " ,");
        size_t len = strcspn(p, ",");
        while (len && p[len - 1] == ' ')
            len--;
        for (size_t i = 0; i < sizeof BAD / sizeof *BAD; i++)
            if (len == strlen(BAD[i].word) && !strncasecmp(p, BAD[i].word, len)) {
                snprintf(bad, n, "%s", BAD[i].word);
                return BAD[i].why;
            }
        p += len;
        p += strcspn(p, ",");
    }
    return NULL;
}

/* LOAD DATA LOCAL of the sink's connections reads only the row that apply_big hands it (the
 * worker's row reader, under the name ROW_FILE), never a file: a server asking for another name,
 * or at another time, is refused. */
#define ROW_FILE "sluice-row"

static int row_init(void **ptr, const char *name, void *userdata)
{
    worker *w = userdata;
    *ptr = w;
    return w && w->row && strcmp(name, ROW_FILE) == 0 ? 0 : 1;
}

static int row_read(void *ptr, char *buf, unsigned int len)
{
    worker *w = ptr;
    return w && w->row ? (int)sl_dmlsql_row_read(w->row, buf, len) : -1;
}

static void row_end(void *ptr) { (void)ptr; }

static int row_error(void *ptr, char *msg, unsigned int len)
{
    (void)ptr;
    snprintf(msg, len, "the sink reads no file (LOAD DATA LOCAL of another name)");
    return 2000;
}

/* A connection to the target with the sink's session; rw_timeout: seconds to wait on a read or
 * write (0 = none, for the DDL's session). */
static MYSQL *connect_target(sink *s, unsigned rw_timeout, sl_error *err)
{
    const sink_config *c = s->cfg;
    sl_myconn_opts o = { SL_MYCONN_FROM(c, target), .init_sql = s->session_sql, .local_infile = 1,
                         .rw_timeout = rw_timeout };
    MYSQL *db = sl_myconn_open(&o, err);
    if (db) {
        mysql_set_server_option(db, MYSQL_OPTION_MULTI_STATEMENTS_ON);
        mysql_set_local_infile_handler(db, row_init, row_read, row_end, row_error, NULL);
    }
    return db;
}

static void note_result(worker *w, const sl_dmlsql_stmt *st);
static void note_warnings(worker *w, const sl_dmlsql_stmt *st, unsigned wc);

/* Run text holding several statements; on failure name the failing statement (via stmts). With
 * a worker, the result of each row statement tells which changes found no row (note_result) and
 * whether the target changed values it was given (note_warnings). */
static int exec_multi(MYSQL *db, const char *sql, size_t len, const sl_dmlsql_stmt *stmts, size_t nst,
                      worker *w, sl_error *err)
{
    size_t idx = 0;
    int st = mysql_real_query(db, sql, (unsigned long)len);
    if (st == 0) {
        do {
            MYSQL_RES *r = mysql_store_result(db);
            if (r)
                mysql_free_result(r);
            if (mysql_errno(db))
                break;
            if (w && stmts && idx < nst && stmts[idx].check)
                note_result(w, &stmts[idx]);
            unsigned wc = mysql_warning_count(db);
            if (wc && w && stmts && idx < nst && stmts[idx].rows)
                note_warnings(w, &stmts[idx], wc);
            idx++;
        } while ((st = mysql_next_result(db)) == 0);
        if (st < 0 && mysql_errno(db) == 0)
            return 0;
    }
    unsigned e = mysql_errno(db);
    size_t from = (stmts && idx < nst) ? stmts[idx].start : 0;
    size_t to = (stmts && idx + 1 < nst) ? stmts[idx + 1].start : len;
    size_t shown = to - from > 300 ? 300 : to - from;
    return sl_error_set(err, sl_myconn_is_conn_error(e) ? SL_ECONN : SL_EDB,
                        "%s (errno %u) in statement: %.*s%s", mysql_error(db), e, (int)shown,
                        sql + from, to - from > 300 ? "..." : "");
}

static int exec1(MYSQL *db, const char *sql, sl_error *err)
{
    return sl_myconn_exec(db, sql, strlen(sql), err);
}

/* First column of the first row of a query ("" on any failure), for small settings, in out.
 * (Not a _Thread_local buffer: dynamic TLS in a dlopen'ed plugin crashes LeakSanitizer's scan
 * once the plugin is unloaded, see cleanup.c.) */
typedef struct q1buf { char s[64]; } q1buf;

static const char *q1col(MYSQL *db, const char *sql, q1buf *o)
{
    char *out = o->s;
    out[0] = '\0';
    if (mysql_query(db, sql) != 0)
        return out;
    MYSQL_RES *r = mysql_store_result(db);
    MYSQL_ROW row = r ? mysql_fetch_row(r) : NULL;
    if (row && row[0])
        snprintf(out, sizeof o->s, "%s", row[0]);
    if (r)
        mysql_free_result(r);
    return out;
}

/* ---- workers ------------------------------------------------------------------------------- */

#define MAX_STARTS 4096

/* Append one statement to w->sql and note where it starts (for naming it in an error). */
static void add_stmt(worker *w, size_t *nst, const char *sql)
{
    if (w->sql.len)
        sl_sbuf_adds(&w->sql, ";\n");
    w->stmts[(*nst)++] = (sl_dmlsql_stmt){ .start = w->sql.len };
    sl_sbuf_adds(&w->sql, sql);
}

/* ---- rows not found (MISS_NOTES) ------------------------------------------------------------ */

/* Append ", keys among (k1), (k2), (k3), ..." (several rows) or " with (k)" (one): the keys of
 * the first three changes of st, or the key of img when st is NULL. */
static void add_keys(sl_sbuf *b, const sl_event *ev, uint32_t rows, const sl_dmlsql_stmt *st,
                     const sl_value *img)
{
    if (!ev->meta || ev->meta->npk == 0) {
        sl_sbuf_adds(b, " (a table without a key: the row's values are not shown)");
        return;
    }
    sl_sbuf_adds(b, rows > 1 ? ", keys among " : " with ");
    for (uint32_t k = 0; k < (st ? rows : 1) && k < 3; k++) {
        const sl_event *kev = ev;
        const sl_value *kimg = img;
        if (st && sl_dmlsql_stmt_change(st, k, &kev, &kimg) < 0)
            break;
        if (k)
            sl_sbuf_adds(b, ", ");
        sl_sbuf_adds(b, "(");
        sl_dmlsql_key(b, kev, kimg, 100);
        sl_sbuf_adds(b, ")");
    }
    if (rows > 3)
        sl_sbuf_adds(b, ", ...");
}

/* Count n in t; 1 when t has room for one more description (begun with note_begin). */
static int tally_add(tally *t, uint64_t n)
{
    t->n += n;
    return t->nnotes < MISS_NOTES;
}

/* Start the description of a statement of ev's table in b: the table's name. */
static void note_begin(sl_sbuf *b, const sl_event *ev)
{
    sl_sbuf_init(b);
    sl_sbuf_add_qname(b, ev->target_schema, ev->target_table);
}

/* Keep the description in b of n rows (or warnings) of ev's table in t (MISS_NOTES of them). */
static void keep_note(tally *t, const sl_event *ev, uint64_t n, const sl_sbuf *b)
{
    if (t->nnotes == MISS_NOTES || b->oom || !b->p)
        return;
    miss_note *m = &t->notes[t->nnotes++];
    m->table = fnv64(ev->target_schema, ev->target_table);
    m->rows = n;
    snprintf(m->text, sizeof m->text, "%s", b->p);
}

/* Describe rows of ev's table that found no row: n of the statement's, what happened to them
 * (what), and up to three keys (of the statement st, or the key of img when st is NULL). */
static void note_miss(worker *w, const sl_event *ev, uint64_t n, uint32_t rows, const char *what,
                      const sl_dmlsql_stmt *st, const sl_value *img)
{
    if (!tally_add(&w->t[T_MISS], n))
        return;
    sl_sbuf b;
    note_begin(&b, ev);
    if (rows > 1)
        sl_sbuf_addf(&b, ": %s: %" PRIu64 " of its %u rows not found", what, n, rows);
    else
        sl_sbuf_addf(&b, ": %s: no row", what);
    add_keys(&b, ev, rows, st, img);
    keep_note(&w->t[T_MISS], ev, n, &b);
    sl_sbuf_free(&b);
}

/* ENUM columns of img whose value is the error value '' (index 0): each warns once when
 * written, and the source stored it that way (enum_zero_warning). */
static unsigned enum_zeros(const sl_event *ev, const sl_value *img)
{
    unsigned n = 0;
    for (uint32_t c = 0; img && c < ev->ncols; c++)
        n += img[c].type == SL_V_ENUM && img[c].v.e.u == 0;
    return n;
}

/* A row statement's result (exec_multi) with wc warnings: the target changed values it was given
 * (see "Row statements the target applied with warnings"), except those of ENUMs' ''. */
static void note_warnings(worker *w, const sl_dmlsql_stmt *st, unsigned wc)
{
    const sl_event *ev, *first;
    const sl_value *img, *key;
    if (sl_dmlsql_stmt_change(st, 0, &first, &key) < 0)
        return;
    /* MySQL 8.0.20 and later warn once that an upsert's VALUES(c) is deprecated (MariaDB and
     * TiDB do not): no value changed */
    unsigned zeros = st->check == SL_DMLSQL_CHECK_UPSERT && w->values_warns;
    for (size_t k = 0; k < st->rows && sl_dmlsql_stmt_change(st, k, &ev, &img) == 0; k++)
        /* the values written: an UPDATE's after image (img is its before image, for the key) */
        zeros += enum_zeros(ev, img == ev->before && ev->after ? ev->after : img);
    if (wc <= zeros)
        return;
    uint64_t n = wc - zeros;
    if (!tally_add(&w->t[T_WARN], n))
        return;
    sl_sbuf b;
    note_begin(&b, first);
    sl_sbuf_addf(&b, ": %" PRIu64 " warning%s on a statement of %u row%s", n, n > 1 ? "s" : "",
                 st->rows, st->rows > 1 ? "s" : "");
    add_keys(&b, first, st->rows, st->rows > 1 ? st : NULL, key);
    keep_note(&w->t[T_WARN], first, n, &b);
    sl_sbuf_free(&b);
}

/* A row statement's result (exec_multi): its changes that found no row on the target. */
static void note_result(worker *w, const sl_dmlsql_stmt *st)
{
    uint64_t n = sl_dmlsql_not_found(st, mysql_affected_rows(w->db), mysql_info(w->db));
    const sl_event *ev;
    const sl_value *img;
    if (n == 0 || sl_dmlsql_stmt_change(st, 0, &ev, &img) < 0)
        return;
    const char *what = st->check == SL_DMLSQL_CHECK_UPDATE ? "an UPDATE (nothing changed)"
                     : st->check == SL_DMLSQL_CHECK_DELETE ? "a DELETE"
                     : st->rows > 1 ? "an upsert of rows the source changed (those not found are "
                                      "inserted from the binlog's row image)"
                                    : "an UPDATE written as an upsert (the row is inserted from "
                                      "the binlog's row image)";
    note_miss(w, ev, n, st->rows, what, st->rows > 1 ? st : NULL, img);
}

/* Forget what the worker's open transaction found missing or warned of: it is rolled back. */
static void forget_misses(worker *w)
{
    memset(w->t, 0, sizeof w->t);
}

/*
 * Move the rows of tables in cascading foreign-key components (SL_TVIEW_FKCASCADE, tmeta.h) out
 * of w->evs into w->fk, both in source order; returns how many moved, or SL_ENOMEM. They are
 * applied after the others, with foreign_key_checks = 1 so that the target's InnoDB performs the
 * cascades the source's binlog does not log. Rows of other tables commute with them (different
 * tables, no foreign key between them), so the reordering changes nothing else.
 */
static long split_fk(worker *w)
{
    size_t n = 0, k = 0;
    for (size_t i = 0; i < w->nev; i++) {
        const sl_table *m = w->evs[i]->meta;
        n += m && m->ncols && (m->cols[0].flags & SL_TVIEW_FKCASCADE);
    }
    if (n == 0)
        return 0;
    if (n > w->cfk) {
        sl_event **p = realloc(w->fk, n * sizeof *p);
        if (!p)
            return SL_ENOMEM;
        w->fk = p;
        w->cfk = n;
    }
    n = 0;
    for (size_t i = 0; i < w->nev; i++) {
        sl_event *ev = w->evs[i];
        if (ev->meta && ev->meta->ncols && (ev->meta->cols[0].flags & SL_TVIEW_FKCASCADE))
            w->fk[n++] = ev;
        else
            w->evs[k++] = ev;
    }
    w->nev = k;
    return (long)n;
}

/* Warning 1265 for an ENUM column whose value in img is index 0: the source stored an invalid
 * value as '' (index 0) in a non-strict session, and writing it back warns the same way. */
static int enum_zero_warning(const sl_event *ev, const sl_value *img, const char *code, const char *msg)
{
    static const char pre[] = "Data truncated for column '";
    if (!img || !ev->meta || strcmp(code, "1265") || strncmp(msg, pre, sizeof pre - 1))
        return 0;
    const char *name = msg + sizeof pre - 1, *end = strrchr(name, '\'');
    for (uint32_t c = 0; end && c < ev->ncols && c < ev->meta->ncols; c++) {
        const char *cn = ev->meta->cols[c].name;
        if (cn && strlen(cn) == (size_t)(end - name) && !strncmp(cn, name, (size_t)(end - name)))
            return img[c].type == SL_V_ENUM && img[c].v.e.u == 0;
    }
    return 0;
}

/* Run one statement of the worker's open transaction (the text in w->sql) and fail on any
 * warning (LOAD DATA's IGNORE turns a duplicate key or a bad value into one) but the one an
 * ENUM's index 0 in img gives (enum_zero_warning). */
static int exec_checked(worker *w, const char *what, const sl_event *ev, const sl_value *img)
{
    MYSQL *db = w->db;
    if (mysql_real_query(db, w->sql.p, (unsigned long)w->sql.len) != 0) {
        unsigned e = mysql_errno(db);
        /* ER_NOT_ALLOWED_COMMAND, ER_LOAD_INFILE_CAPABILITY_DISABLED */
        int local = e == 1148 || e == 4166;
        return sl_error_set(&w->err, sl_myconn_is_conn_error(e) ? SL_ECONN : SL_EDB,
                            "%s `%s`.`%s`: %s (errno %u)%s", what, ev->target_schema, ev->target_table,
                            mysql_error(db), e, local ? "; the target refuses LOAD DATA LOCAL: set its "
                            "local_infile ON, or raise its max_allowed_packet" : "");
    }
    if (mysql_warning_count(db) == 0)
        return 0;
    char msg[400] = "a warning the server did not show";
    int bad = 1;
    if (mysql_query(db, "SHOW WARNINGS") == 0) {
        MYSQL_RES *r = mysql_store_result(db);
        MYSQL_ROW row;
        bad = 0;
        while (r && (row = mysql_fetch_row(r)) != NULL) {
            if (row[1] && row[2] && enum_zero_warning(ev, img, row[1], row[2]))
                continue;
            if (!bad++)
                snprintf(msg, sizeof msg, "%s (warning %s)", row[2] ? row[2] : "?", row[1] ? row[1] : "?");
        }
        if (r)
            mysql_free_result(r);
        else
            bad = 1;
    }
    if (!bad)
        return 0;
    return sl_error_set(&w->err, SL_EDB, "%s `%s`.`%s`: %s", what, ev->target_schema, ev->target_table,
                        msg);
}

#define BIG_UPDATE 100     /* apply_big's kind of a row event's UPDATE (the others: SL_CMP_*) */

/*
 * Apply one change whose statement is longer than the target takes (SL_DMLSQL_BIG): the row
 * goes as LOAD DATA LOCAL of a file the handler above reads from the event (dmlsql.h). An
 * UPDATE or an upsert deletes the row by its key first, in the same transaction. A table
 * without a key, a DELETE (only a keyless one is that long) and a table of cascading foreign
 * keys (the DELETE would cascade where an UPDATE does not) cannot go that way: the error says
 * so, and that the target's max_allowed_packet must be raised.
 */
static int apply_big(worker *w, const sl_event *ev, const sl_value *img, unsigned kind, int fk, int safe)
{
    const char *why = NULL;
    if (kind == SL_CMP_DELETE || (kind != SL_CMP_INSERT && ev->meta->npk == 0))
        why = "the table has no primary or unique key to apply it by";
    else if (fk && kind != SL_CMP_INSERT)
        why = "the table has cascading foreign keys, which deleting the row to write it would run";
    if (why)
        return sl_error_set(&w->err, SL_EDB, "a row of `%s`.`%s` is longer as a statement than half the "
                            "target's max_allowed_packet (%lu bytes), and %s: raise max_allowed_packet "
                            "on the target above four times the row's size", ev->target_schema,
                            ev->target_table, w->packet, why);
    int rc;
    if (kind != SL_CMP_INSERT) {
        const sl_value *key = kind == SL_CMP_UPSERT ? img : ev->before;
        sl_sbuf_reset(&w->sql);
        if ((rc = sl_dmlsql_delete_key(&w->sql, ev, key, &w->err)) < 0 ||
            (rc = exec_checked(w, "deleting a long row, to load it, from", ev, NULL)) < 0)
            return rc;
        /* the row the UPDATE changes was not there (safe mode expects that: a replay) */
        if (!safe && mysql_affected_rows(w->db) == 0)
            note_miss(w, ev, 1, 1, "an UPDATE of a row longer than max_allowed_packet (the row is "
                      "loaded from the binlog's row image)", NULL, key);
    }
    sl_sbuf_reset(&w->sql);
    if ((rc = sl_dmlsql_load_row(&w->sql, ev, img, safe && !fk, ROW_FILE, &w->err)) < 0)
        return rc;
    sl_dmlsql_row_reader r;
    sl_dmlsql_row_open(&r, ev, img);
    w->row = &r;
    mysql_set_local_infile_handler(w->db, row_init, row_read, row_end, row_error, w);
    rc = exec_checked(w, "loading a row longer than max_allowed_packet into", ev, img);
    mysql_set_local_infile_handler(w->db, row_init, row_read, row_end, row_error, NULL);
    w->row = NULL;
    if (rc == 0)
        w->s->host->metric_add(w->s->ctx, "rows_loaded_long", 1);
    return rc;
}

/* apply_big of row event ev */
static int apply_big_event(worker *w, const sl_event *ev, int fk, int safe)
{
    switch (ev->kind) {
    case SL_EV_INSERT: return apply_big(w, ev, ev->after, SL_CMP_INSERT, fk, safe);
    case SL_EV_UPDATE: return apply_big(w, ev, ev->after, BIG_UPDATE, fk, safe);
    default:           return apply_big(w, ev, ev->before, SL_CMP_DELETE, fk, safe);
    }
}

/*
 * Apply the worker's share of the group: the head statements (XA START, START TRANSACTION), the
 * rows (compacted: common/compact.h), the rows of cascading-FK tables (split_fk, with foreign
 * key checks on), then the tail statements (XA END + XA PREPARE, or the
 * checkpoint + COMMIT), all as multi-statement text of about 1 MiB per round trip, so a usual
 * share costs one round trip.
 */
static int apply_events(worker *w, const char *const *head, size_t nhead, const char *const *tail,
                        size_t ntail)
{
    sink *s = w->s;
    /* DM's safe_mode_time_duration: the window opens at the first row of the run */
    int window = s->cfg->safe_mode_seconds > 0 && w->nev && w->evs[0]->commit_ts < s->safe_until;
    /* a round trip's text stays under a quarter of the target's packet, and one statement under
     * half of it: the head and tail statements are small */
    size_t quarter = w->packet / 4;
    sl_dmlsql_opts o = { .batch = (uint32_t)s->cfg->repl_batch, .safe_mode = s->cfg->safe_mode || window,
                         .max_bytes = quarter && quarter < (1u << 20) ? quarter : 1u << 20,
                         .max_row = w->packet / 2 };
    /* rows of cascading-FK tables: never compacted (their order is the parents' and children's
     * order) and never REPLACEd (a REPLACE deletes the parent row: its children would cascade) */
    sl_dmlsql_opts ofk = o;
    ofk.safe_mode = 0;
    size_t nall = w->nev;
    long nfk = split_fk(w);
    if (nfk < 0)
        return sl_error_set(&w->err, SL_ENOMEM, "out of memory ordering rows");
    sl_event *const *keep = w->evs;
    const sl_cmp_op *ops = NULL;
    size_t nkeep = w->nev, nops = 0;
    int rcc = 0;
    if (w->nev > 1 && sl_compact(w->cmp, w->evs, w->nev, &keep, &nkeep, &ops, &nops) < 0)
        rcc = SL_ENOMEM;
    /* w->evs again holds the whole share, in the order applied (callers may apply it again) */
    if (nfk > 0)
        memcpy(w->evs + w->nev, w->fk, (size_t)nfk * sizeof *w->fk);
    w->nev = nall;
    if (rcc < 0)
        return sl_error_set(&w->err, SL_ENOMEM, "out of memory compacting rows");
    if (nkeep + nops + (size_t)nfk < w->nev)
        s->host->metric_add(s->ctx, "rows_compacted", (int64_t)(w->nev - nkeep - nops - (size_t)nfk));
    size_t i = 0, j = 0, f = 0;
    for (int first = 1;; first = 0) {
        size_t nst = 0, used = 0, ns = 0;
        sl_sbuf_reset(&w->sql);
        for (size_t h = 0; first && h < nhead; h++)
            add_stmt(w, &nst, head[h]);
        if (first && w->fk_dirty && nfk == 0)
            add_stmt(w, &nst, "SET SESSION foreign_key_checks = 0");
        size_t room = MAX_STARTS - ntail - 2;
        int rc, big = 0;       /* the change after those built is too long for a statement: */
        const sl_event *bev = NULL;     /* its event, image and kind (apply_big) */
        const sl_value *bimg = NULL;
        unsigned bkind = 0;
        if (i < nkeep) {
            rc = sl_dmlsql_build(&w->sql, keep + i, nkeep - i, &o, &used, w->stmts + nst, room - nst,
                                 &ns, &w->err);
            if (rc < 0)
                return rc;
            i += used;
            nst += ns;
            if (rc == SL_DMLSQL_BIG)
                big = 1, bev = keep[i++];
        }
        if (!big && i == nkeep && j < nops && w->sql.len < o.max_bytes) {
            size_t used2 = 0;
            rc = sl_dmlsql_build_ops(&w->sql, ops + j, nops - j, &o, &used2, w->stmts + nst,
                                     room - nst, &ns, &w->err);
            if (rc < 0)
                return rc;
            j += used2;
            nst += ns;
            used += used2;
            if (rc == SL_DMLSQL_BIG) {
                big = 2, bev = ops[j].ev, bimg = ops[j].img, bkind = ops[j].kind;
                j++;
            }
        }
        if (!big && i == nkeep && j == nops && f < (size_t)nfk && w->sql.len < o.max_bytes) {
            size_t used3 = 0;
            if (f == 0) {
                add_stmt(w, &nst, "SET SESSION foreign_key_checks = 1");
                w->fk_dirty = 1;
            }
            rc = sl_dmlsql_build(&w->sql, w->fk + f, (size_t)nfk - f, &ofk, &used3, w->stmts + nst,
                                 room - nst, &ns, &w->err);
            if (rc < 0)
                return rc;
            f += used3;
            nst += ns;
            used += used3;
            if (rc == SL_DMLSQL_BIG)
                big = 3, bev = w->fk[f++];
            if (f == (size_t)nfk && !big)
                add_stmt(w, &nst, "SET SESSION foreign_key_checks = 0");
        }
        int last = !big && i == nkeep && j == nops && f == (size_t)nfk;
        if (!last && !big && used == 0)
            return sl_error_set(&w->err, SL_EINTERNAL, "no statement built");
        for (size_t t = 0; last && t < ntail; t++)
            add_stmt(w, &nst, tail[t]);
        if (w->sql.oom)
            return sl_error_set(&w->err, SL_ENOMEM, "out of memory building SQL");
        if (nst > 0 && (rc = exec_multi(w->db, w->sql.p, w->sql.len, w->stmts, nst, w, &w->err)) < 0)
            return rc;
        if (big) {
            rc = big == 2 ? apply_big(w, bev, bimg, bkind, 0, o.safe_mode)
                          : apply_big_event(w, bev, big == 3, big == 3 ? 0 : o.safe_mode);
            if (rc < 0)
                return rc;
            if (big == 3 && f == (size_t)nfk) {
                sl_sbuf_reset(&w->sql);
                nst = 0;
                add_stmt(w, &nst, "SET SESSION foreign_key_checks = 0");
                if ((rc = exec_multi(w->db, w->sql.p, w->sql.len, w->stmts, nst, w, &w->err)) < 0)
                    return rc;
            }
            continue;
        }
        if (last) {
            w->fk_dirty = 0;
            return 0;
        }
    }
}

/* A sibling XA branch of the same group can hold a row lock this branch waits for: InnoDB's
 * duplicate check on a unique secondary index also locks the record after a delete-marked equal
 * entry, so even rows causality keeps apart may collide. The sibling, once prepared, keeps the
 * lock until the group commits, which waits for this branch: only the lock wait timeout ends
 * it. Any wait between sibling branches is such a deadlock, so branches do not wait at all
 * (MariaDB accepts innodb_lock_wait_timeout = 0; servers whose minimum is 1 get 1 s), and a group
 * that fails that way is applied again in source order by one worker (retry_serial), which
 * waits as long as the server's setting says. */
static int set_patience(worker *w)
{
    if (w->patient == w->patient_set)
        return 0;
    int rc;
    if (w->patient) {
        rc = exec1(w->db, "SET SESSION innodb_lock_wait_timeout = @@global.innodb_lock_wait_timeout", &w->err);
    } else {
        sl_error ignore = {0};
        rc = exec1(w->db, "SET SESSION innodb_lock_wait_timeout = 0", &ignore);
        if (rc < 0 || atoi(q1col(w->db, "SELECT @@session.innodb_lock_wait_timeout", &(q1buf){ { 0 } })) != 0)
            rc = exec1(w->db, "SET SESSION innodb_lock_wait_timeout = 1", &w->err);
    }
    if (rc == 0)
        w->patient_set = w->patient;
    return rc;
}

static int run_apply(worker *w)
{
    int rc;
    if ((rc = set_patience(w)) < 0)
        return rc;
    if (w->xa) {
        char st[64 + 16], en[64 + 16], pr[64 + 16];
        snprintf(st, sizeof st, "XA START '%s'", w->xid);
        snprintf(en, sizeof en, "XA END '%s'", w->xid);
        snprintf(pr, sizeof pr, "XA PREPARE '%s'", w->xid);
        const char *head[1] = { st }, *tail[2] = { en, pr };
        w->xa_started = 1;      /* on failure, rollback_worker ends and rolls back what started */
        return apply_events(w, head, 1, tail, 2);
    }
    const char *head[1] = { "START TRANSACTION" }, *tail[2];
    size_t nhead = w->txn_open ? 0 : 1, ntail = 0;
    if (!w->keep_open) {
        if (w->commit_sql)
            tail[ntail++] = w->commit_sql;
        tail[ntail++] = "COMMIT";
    }
    w->txn_open = 1;
    if ((rc = apply_events(w, head, nhead, tail, ntail)) < 0)
        return rc;
    if (!w->keep_open)
        w->txn_open = 0;
    return 0;
}

static void rollback_worker(worker *w)
{
    char q[160];
    sl_error e = {0};
    forget_misses(w);
    if (!w->db)
        return;
    if (w->xa_started) {
        snprintf(q, sizeof q, "XA END '%s'", w->xid);
        exec1(w->db, q, &e);
        snprintf(q, sizeof q, "XA ROLLBACK '%s'", w->xid);
        exec1(w->db, q, &e);
        w->xa_started = 0;
    }
    if (w->txn_open) {
        exec1(w->db, "ROLLBACK", &e);
        w->txn_open = 0;
    }
}

static void worker_main(void *arg)
{
    worker *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (w->job == JOB_NONE)
            pthread_cond_wait(&w->cv, &w->mu);
        int job = w->job;
        pthread_mutex_unlock(&w->mu);
        if (job == JOB_QUIT) {
            pthread_mutex_lock(&w->mu);
            w->job = JOB_NONE;
            w->done = 1;
            pthread_cond_broadcast(&w->cv);
            pthread_mutex_unlock(&w->mu);
            return;
        }
        char q[160];
        int rc = 0;
        memset(&w->err, 0, sizeof w->err);
        if (job == JOB_APPLY) {
            w->dberr = 0;
            rc = run_apply(w);
            if (rc < 0)
                w->dberr = mysql_errno(w->db);
        } else if (job == JOB_XA_COMMIT) {
            snprintf(q, sizeof q, "XA COMMIT '%s'", w->xid);
            rc = exec1(w->db, q, &w->err);
            /* never rolled back once checkpointed: a branch whose commit failed stays
             * prepared, and the next start commits it (XA RECOVER, group <= seq) */
            w->xa_started = 0;
        } else if (job == JOB_XA_ROLLBACK) {
            rollback_worker(w);
        }
        pthread_mutex_lock(&w->mu);
        w->rc = rc;
        w->job = JOB_NONE;
        w->done = 1;
        pthread_cond_broadcast(&w->cv);
    }
}

static void post(worker *w, int job)
{
    pthread_mutex_lock(&w->mu);
    w->done = 0;
    w->job = job;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static int wait_done(worker *w)
{
    pthread_mutex_lock(&w->mu);
    while (!w->done)
        pthread_cond_wait(&w->cv, &w->mu);
    int rc = w->rc;
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/* ---- shard DDL (pessimistic) ----------------------------------------------------------------
 *
 * A DDL on a shard-merged table (route's SL_EVF_SHARD_DDL) goes to the task's coordinator
 * (host->shard, runtime/shard.c), which keeps one lock per target table in the metadata store.
 * The first shards to arrive are HELD: their table's later events are skipped, not buffered;
 * the other tables of the source go on. The last shard runs the DDL once on the target; the
 * coordinator then restarts the subtasks with held shards, whose readers read the held events
 * again from the checkpoint (DM re-syncs the same way). What makes that exact lives in the
 * target, in `<task>_syncer_sharding_meta`, rewritten in the transaction of every checkpoint:
 *   - a hold per held (or re-syncing) table: T, the position up to which its events are
 *     handled (for a held table the position before its DDL), the lock and the DDL's position;
 *   - the high-water row (empty table name): A, the furthest position ever handled.
 * The checkpoint row (worker 0, where the reader starts) is min(applied position, every T), so
 * it never passes a held shard's unapplied events. After a restart an event is skipped when it
 * was handled: at or before its table's T when the table has a hold, else at or before A. A
 * re-syncing table's T follows the applied position; once that passes A the holds of resolved
 * locks and A are gone. Memory is a few rows per source, whatever the data.
 */
typedef struct hold {
    char    *schema, *table;   /* the shard (source table) */
    char    *id;               /* the coordinator's lock */
    long long gen;
    char    *t_file, *t_gtid;  /* T */
    uint64_t t_pos;
    char    *h_file;           /* where its DDL ends */
    uint64_t h_pos;
    int      resync;           /* the lock resolved: apply the table's events after T */
    int      exec;             /* its DDL at h goes to the coordinator again: resolved by hand
                                  with this shard to run it ("execute"), or its lock lost */
    int      was_resync;       /* the shard table said "resync" at start (its lock resolved) */
} hold;

static int pos_cmp(const char *fa, uint64_t pa, const char *fb, uint64_t pb)
{
    int c = strcmp(fa ? fa : "", fb ? fb : "");
    if (c)
        return c < 0 ? -1 : 1;
    return pa < pb ? -1 : pa > pb;
}

static void hold_clear(hold *h)
{
    free(h->schema);
    free(h->table);
    free(h->id);
    free(h->t_file);
    free(h->t_gtid);
    free(h->h_file);
    memset(h, 0, sizeof *h);
}

static void holds_free(sink *s)
{
    for (size_t i = 0; i < s->nholds; i++)
        hold_clear(&s->holds[i]);
    s->nholds = 0;
    free(s->a_file);
    free(s->a_gtid);
    s->a_file = s->a_gtid = NULL;
    s->a_pos = 0;
}

static hold *hold_find(sink *s, const char *schema, const char *table)
{
    for (size_t i = 0; schema && table && i < s->nholds; i++)
        if (!strcmp(s->holds[i].schema, schema) && !strcmp(s->holds[i].table, table))
            return &s->holds[i];
    return NULL;
}

static void set_str(char **dst, const char *v)
{
    if (*dst && v && !strcmp(*dst, v))
        return;
    free(*dst);
    *dst = v ? strdup(v) : NULL;
}

/* 1 when ev (a row or a DDL, from its reader at ev->pos) was handled before a restart, or its
 * table is held: the sink skips it. */
static int shard_skip(const sink *s, const sl_event *ev)
{
    if (!s->pessimistic || !ev->pos.file)
        return 0;
    const hold *h = hold_find((sink *)s, ev->schema, ev->table);
    if (h && !h->resync)
        return 1;
    if (h)
        return pos_cmp(ev->pos.file, ev->pos.offset, h->t_file, h->t_pos) <= 0 ||
               (ev->kind == SL_EV_DDL && !h->exec &&
                pos_cmp(ev->pos.file, ev->pos.offset, h->h_file, h->h_pos) == 0);
    return s->a_file && pos_cmp(ev->pos.file, ev->pos.offset, s->a_file, s->a_pos) <= 0;
}

/*
 * The applied position moves to (file, pos, gtid) with a checkpoint: re-syncing holds follow it
 * once it passes their T (a table held later than the first resumes later),
 * A grows; once it passes A, the holds of resolved locks and A are done. Then (rf, rp, rg) is
 * where the checkpoint row may stand: the lowest of it and every hold's T.
 */
static void shard_advance(sink *s, const char *file, uint64_t pos, const char *gtid,
                          const char **rf, uint64_t *rp, const char **rg)
{
    for (size_t i = 0; i < s->nholds; i++)
        if (s->holds[i].resync && pos_cmp(file, pos, s->holds[i].t_file, s->holds[i].t_pos) > 0) {
            set_str(&s->holds[i].t_file, file);
            set_str(&s->holds[i].t_gtid, gtid);
            s->holds[i].t_pos = pos;
        }
    if (s->a_file && pos_cmp(file, pos, s->a_file, s->a_pos) >= 0) {
        size_t k = 0;
        for (size_t i = 0; i < s->nholds; i++) {
            if (s->holds[i].resync)
                hold_clear(&s->holds[i]);
            else
                s->holds[k++] = s->holds[i];
        }
        s->nholds = k;
        free(s->a_file);
        free(s->a_gtid);
        s->a_file = s->a_gtid = NULL;
    }
    if (s->nholds && (!s->a_file || pos_cmp(file, pos, s->a_file, s->a_pos) > 0)) {
        set_str(&s->a_file, file);
        set_str(&s->a_gtid, gtid);
        s->a_pos = pos;
    }
    *rf = file;
    *rp = pos;
    *rg = gtid;
    for (size_t i = 0; i < s->nholds; i++)
        if (pos_cmp(s->holds[i].t_file, s->holds[i].t_pos, *rf, *rp) < 0) {
            *rf = s->holds[i].t_file;
            *rp = s->holds[i].t_pos;
            *rg = s->holds[i].t_gtid;
        }
}

static void add_row(sink *s, sl_sbuf *b, const char *schema, const char *table, const char *id,
                    long long gen, const char *state, const char *tf, uint64_t tp, const char *tg,
                    const char *hf, uint64_t hp)
{
    sl_sbuf_adds(b, "(");
    sl_sbuf_add_quoted(b, s->cfg->source_name, strlen(s->cfg->source_name));
    sl_sbuf_adds(b, ", ");
    sl_sbuf_add_quoted(b, schema, strlen(schema));
    sl_sbuf_adds(b, ", ");
    sl_sbuf_add_quoted(b, table, strlen(table));
    sl_sbuf_adds(b, ", ");
    sl_sbuf_add_quoted(b, id, strlen(id));
    sl_sbuf_addf(b, ", %lld, '%s', ", gen, state);
    sl_sbuf_add_quoted(b, tf ? tf : "", tf ? strlen(tf) : 0);
    sl_sbuf_addf(b, ", %" PRIu64 ", ", tp);
    if (tg)
        sl_sbuf_add_quoted(b, tg, strlen(tg));
    else
        sl_sbuf_adds(b, "NULL");
    sl_sbuf_adds(b, ", ");
    sl_sbuf_add_quoted(b, hf ? hf : "", hf ? strlen(hf) : 0);
    sl_sbuf_addf(b, ", %" PRIu64 ")", hp);
}

/* Append the statements that make the shard table hold s's holds and A (after ";\n"). */
static void shard_rows_sql(sink *s, sl_sbuf *b)
{
    sl_sbuf_adds(b, ";\nDELETE FROM ");
    sl_sbuf_adds(b, s->shard_table);
    sl_sbuf_adds(b, " WHERE source_name = ");
    sl_sbuf_add_quoted(b, s->cfg->source_name, strlen(s->cfg->source_name));
    if (!s->nholds && !s->a_file)
        return;
    sl_sbuf_adds(b, ";\nINSERT INTO ");
    sl_sbuf_adds(b, s->shard_table);
    sl_sbuf_adds(b, " (source_name, source_schema, source_table, lock_id, gen, state, t_name, "
                 "t_pos, t_gtid, h_name, h_pos) VALUES ");
    for (size_t i = 0; i < s->nholds; i++) {
        const hold *h = &s->holds[i];
        add_row(s, b, h->schema, h->table, h->id, h->gen, h->resync ? "resync" : "held",
                h->t_file, h->t_pos, h->t_gtid, h->h_file, h->h_pos);
        sl_sbuf_adds(b, ", ");
    }
    if (s->a_file)
        add_row(s, b, "", "", "", 0, "applied", s->a_file, s->a_pos, s->a_gtid, "", 0);
    else
        b->len -= 2, b->p[b->len] = '\0';
}

/* ---- checkpoint ---------------------------------------------------------------------------- */


/*
 * The checkpoint statement(s) into b: the row of worker_row (0 = the checkpoint; -1 = the
 * pending-DDL marker) at (file, pos, gtid), and with shard DDL coordination the shard table in
 * the same text (then s->ck_multi is 1: several statements, to run in one transaction).
 *
 * With fencing (a cluster) it is an INSERT ... SELECT over the source's fence row, read with a
 * shared lock (sl_ckpt_add_fence_guard): once a newer owner raised it the statement fails, so
 * the transaction it closes (the rows it covers) never commits; a newer owner's raise waits for
 * a checkpoint transaction already under way, so it reads the checkpoint after that
 * transaction, never before it and without it.
 */
static void ckpt_sql(sink *s, sl_sbuf *b, int worker_row, const char *file, uint64_t pos,
                     const char *gtid, uint64_t seq)
{
    int fenced = s->cfg->fence_epoch > 0;
    int shard = worker_row == 0 && s->pessimistic && (s->nholds || s->a_file || s->shard_rows);
    s->ck_multi = shard;
    if (shard) {
        const char *rf, *rg;
        uint64_t rp;
        shard_advance(s, file, pos, gtid, &rf, &rp, &rg);
        file = rf;
        pos = rp;
        gtid = rg;
    }
    sl_sbuf_reset(b);
    sl_sbuf_adds(b, "INSERT INTO ");
    sl_sbuf_adds(b, s->ckpt_table);
    sl_sbuf_adds(b, " (source_name, worker, binlog_name, binlog_pos, binlog_gtid, seq, is_snapshot) ");
    sl_sbuf_adds(b, fenced ? "SELECT " : "VALUES (");
    sl_sbuf_add_quoted(b, s->cfg->source_name, strlen(s->cfg->source_name));
    sl_sbuf_addf(b, ", %d, ", worker_row);
    sl_sbuf_add_quoted(b, file ? file : "", file ? strlen(file) : 0);
    sl_sbuf_addf(b, ", %" PRIu64 ", ", pos);
    if (gtid)
        sl_sbuf_add_quoted(b, gtid, strlen(gtid));
    else
        sl_sbuf_adds(b, "NULL");
    sl_sbuf_addf(b, ", %" PRIu64 ", 0", seq);
    if (fenced) {
        sl_ckpt_add_fence_guard(b, s->cfg->meta_schema, s->cfg->source_name, s->cfg->fence_epoch);
    } else {
        sl_sbuf_adds(b, ")");
    }
    sl_sbuf_adds(b, " ON DUPLICATE KEY UPDATE binlog_name=VALUES(binlog_name), "
                 "binlog_pos=VALUES(binlog_pos), binlog_gtid=VALUES(binlog_gtid), seq=VALUES(seq), "
                 "is_snapshot=0");
    if (shard) {
        shard_rows_sql(s, b);
        s->shard_rows = s->nholds || s->a_file;
    }
}

/* A checkpoint that failed because the fence moved says so, instead of MariaDB's words. */
static const char *fence_msg(sink *s, const char *msg, char *buf, size_t n)
{
    if (s->cfg->fence_epoch <= 0 || !strstr(msg, SL_CKPT_FENCED_ERR))
        return msg;
    snprintf(buf, n, "fenced: source %s belongs to a newer owner (its fence in the target moved "
             "past epoch %" PRId64 "); nothing of this transaction was committed", s->cfg->source_name,
             s->cfg->fence_epoch);
    return buf;
}

/* Raise the source's fence to our epoch before the checkpoint is read (ckpt.h). */
static int raise_fence(sink *s)
{
    sl_error err = {0};
    int rc = sl_ckpt_raise_fence(s->coord, s->cfg->meta_schema, s->cfg->source_name,
                                 s->cfg->fence_epoch, &err);
    return rc < 0 ? s->host->fail(s->ctx, rc, "%s", err.msg) : 0;
}

/* Run checkpoint text of ckpt_sql on the coordinator connection (autocommit): its statements
 * in one transaction when there are several. */
static int exec_ckpt(sink *s, const sl_sbuf *b, sl_error *err)
{
    if (!s->ck_multi)
        return exec1(s->coord, b->p, err);
    sl_sbuf tx;
    sl_sbuf_init(&tx);
    sl_sbuf_adds(&tx, "START TRANSACTION;\n");
    sl_sbuf_add(&tx, b->p, b->len);
    sl_sbuf_adds(&tx, ";\nCOMMIT");
    int rc = tx.oom ? sl_error_set(err, SL_ENOMEM, "out of memory")
                    : exec_multi(s->coord, tx.p, tx.len, NULL, 0, NULL, err);
    sl_sbuf_free(&tx);
    if (rc < 0) {
        sl_error ignore = {0};
        exec1(s->coord, "ROLLBACK", &ignore);
    }
    return rc;
}

/* Remember the applied position (for status and the next checkpoint write). */
static void set_pos(sink *s, const sl_position *p)
{
    if (!p || !p->file)
        return;
    pthread_mutex_lock(&s->mu);
    if (!s->file || strcmp(s->file, p->file) != 0) {
        free(s->file);
        s->file = strdup(p->file);
    }
    s->pos = p->offset;
    if (p->gtid && (!s->gtid || strcmp(s->gtid, p->gtid) != 0)) {
        free(s->gtid);
        s->gtid = strdup(p->gtid);
    }
    pthread_mutex_unlock(&s->mu);
}

/* A checkpoint of filtered progress is written at most this often while batches flow (a
 * heartbeat of an idle source, a flush, a pause and a stop write it at once). */
#define CKPT_EVERY_MS 1000

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* 1 if the applied position differs from the last checkpoint written. */
static int moved(const sink *s)
{
    return s->file && (!s->ck_file || strcmp(s->file, s->ck_file) != 0 || s->pos != s->ck_pos);
}

/* The checkpoint row now holds the applied position. */
static void written(sink *s)
{
    if (s->file && (!s->ck_file || strcmp(s->file, s->ck_file) != 0)) {
        free(s->ck_file);
        s->ck_file = strdup(s->file);
    }
    s->ck_pos = s->pos;
    s->last_ckpt_ms = mono_ms();
}

/*
 * Write the applied position as the checkpoint, in a transaction of its own (autocommit on the
 * coordinator connection). Only called when no row is applied and uncommitted: no group open on
 * any worker and no big transaction open (it is called right after a group is closed, or at
 * flush after the open group is committed), and the applied position is only ever set at a
 * transaction boundary (a COMMIT, a standalone DDL, a TXN_END batch's ckpt). So the position
 * written is after the last transaction wholly covered and never past one not yet committed.
 */
static int write_ckpt(sink *s)
{
    sl_error err = {0};
    uint64_t g = s->group + 1;
    pthread_mutex_lock(&s->mu);
    ckpt_sql(s, &s->sql, 0, s->file, s->pos, s->gtid, g);
    pthread_mutex_unlock(&s->mu);
    if (exec_ckpt(s, &s->sql, &err) < 0) {
        char m[SL_ERRMSG_MAX];
        return s->host->fail(s->ctx, err.code, "writing the checkpoint: %s",
                             fence_msg(s, err.msg, m, sizeof m));
    }
    s->group = g;
    written(s);
    return 0;
}

/* Remember where the source stood at a heartbeat (its position when it had nothing to send). */
static void set_src(sink *s, const sl_position *p)
{
    pthread_mutex_lock(&s->mu);
    if (!s->src_file || strcmp(s->src_file, p->file) != 0) {
        free(s->src_file);
        s->src_file = strdup(p->file);
    }
    s->src_pos = p->offset;
    pthread_mutex_unlock(&s->mu);
}

/* 1 when everything up to the source's last known position is applied and checkpointed. */
static int caught_up(sink *s)
{
    pthread_mutex_lock(&s->mu);
    int up = s->src_file && s->file && strcmp(s->src_file, s->file) == 0 && s->pos == s->src_pos;
    pthread_mutex_unlock(&s->mu);
    return up && !moved(s) && !s->serial;
}

/* The slot of table t in s->miss_tables (a new one when there is room), or NULL when it is full. */
static miss_table *miss_slot(sink *s, uint64_t t)
{
    for (size_t i = 0, h = (size_t)(t % MISS_TABLES); i < MISS_TABLES; i++, h = (h + 1) % MISS_TABLES) {
        if (s->miss_tables[h].table == t)
            return &s->miss_tables[h];
        if (s->miss_tables[h].table == 0) {
            s->miss_tables[h].table = t;
            return &s->miss_tables[h];
        }
    }
    return NULL;
}

/* The log lines of each kind: before a note, after a table's last note, after the count of the
 * others (once a minute). */
static const struct { const char *metric, *line, *last, *more; } TALLY[T_KINDS] = {
    [T_MISS] = { "rows_not_found", "a row change found no row on the target, which differs from "
                 "the source there (the task goes on): ", " (the last warning of this table naming "
                 "rows; rows_not_found in the task's status counts them all)", " more row changes "
                 "found no row on the target since the last such warning (rows_not_found in the "
                 "task's status counts them all)" },
    [T_WARN] = { "target_warnings", "the target changed values it was given, so it differs from "
                 "the source there (a column narrower than the source's, a character its character "
                 "set lacks, a date or number its sql_mode does not take; the task goes on, sluice "
                 "verify finds the rows): ", " (the last such line of this table; target_warnings "
                 "in the task's status counts them all)", " more values changed by the target "
                 "since the last such line (target_warnings in the task's status counts them all)" },
};

/*
 * The group the workers applied is committed: count what they noted of kind k (status and
 * metric) and log the first MISS_LOG_PER_TABLE statements of each table, then a line a minute
 * with the count of the others. Coordinator only, with every worker idle.
 */
static void take_tally(sink *s, int k)
{
    uint64_t total = 0;
    for (uint32_t i = 0; i < s->nworkers; i++) {
        tally *t = &s->w[i].t[k];
        uint64_t described = 0;
        for (uint32_t j = 0; j < t->nnotes; j++) {
            miss_note *m = &t->notes[j];
            miss_table *slot = miss_slot(s, m->table ? m->table : 1);
            described += m->rows;
            if (slot && slot->logged[k] < MISS_LOG_PER_TABLE) {
                slot->logged[k]++;
                s->host->log(s->ctx, SL_LOG_WARN, "%s%s%s", TALLY[k].line, m->text,
                             slot->logged[k] == MISS_LOG_PER_TABLE ? TALLY[k].last : "");
            } else {
                s->quiet[k] += m->rows;
            }
        }
        if (t->n > described)
            s->quiet[k] += t->n - described;
        total += t->n;
        t->n = 0;
        t->nnotes = 0;
    }
    if (total == 0)
        return;
    atomic_fetch_add(&s->counts[k], (long long)total);
    s->host->metric_add(s->ctx, TALLY[k].metric, (int64_t)total);
    int64_t now = mono_ms();
    if (s->quiet[k] && now - s->quiet_ms[k] >= MISS_QUIET_MS) {
        s->host->log(s->ctx, SL_LOG_WARN, "%" PRIu64 "%s", s->quiet[k], TALLY[k].more);
        s->quiet[k] = 0;
        s->quiet_ms[k] = now;
    }
}

static void take_misses(sink *s)
{
    take_tally(s, T_MISS);
    take_tally(s, T_WARN);
}

/* ---- groups -------------------------------------------------------------------------------- */

/* Let go of the batches held for the open group (none of their events is scheduled any more). */
static void release_held(sink *s)
{
    for (size_t i = 0; i < s->nheld; i++) {
        s->host->batch_unref(s->held[i].b);
        free(s->held[i].copies);
    }
    s->nheld = 0;
}

/* Rows scheduled in the open group (not yet sent to the target). */
static uint64_t held_bytes(const sink *s)
{
    uint64_t n = 0;
    for (size_t i = 0; i < s->nheld; i++)
        n += s->held[i].b->bytes;
    return n;
}

static uint64_t open_rows(const sink *s)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < s->nworkers; i++)
        n += s->w[i].nev;
    return n;
}

/*
 * Wait for the XA COMMITs of the last group (close_group posts them and returns: the target
 * commits while the sink takes the next batch). Called before a worker gets another job, and
 * at flush. The group is checkpointed already: a failed commit leaves its branch prepared for
 * the next start to commit. Returns 0 or the failure (after host->fail).
 */
static int settle(sink *s)
{
    int rc = 0;
    for (uint32_t i = 0; i < s->nworkers; i++) {
        worker *w = &s->w[i];
        if (!w->committing)
            continue;
        w->committing = 0;
        if (wait_done(w) < 0 && rc == 0)
            rc = s->host->fail(s->ctx, w->err.code, "XA COMMIT of a prepared branch (the group is "
                               "checkpointed; restart recovers it): %s", w->err.msg);
    }
    return rc;
}

static int fail_group(sink *s, const char *what, const sl_error *werr)
{
    /* werr is often a worker's own error, which the rollback jobs below clear: keep a copy */
    sl_error copy = *werr;
    const sl_error *e = &copy;
    for (uint32_t i = 0; i < s->nworkers; i++)
        if (s->w[i].committing) {
            s->w[i].committing = 0;
            wait_done(&s->w[i]);
        }
    for (uint32_t i = 0; i < s->nworkers; i++)
        post(&s->w[i], JOB_XA_ROLLBACK);
    for (uint32_t i = 0; i < s->nworkers; i++) {
        wait_done(&s->w[i]);
        s->w[i].nev = 0;
    }
    s->serial = 0;
    sl_causality_reset(s->caus);
    char m[SL_ERRMSG_MAX];
    return s->host->fail(s->ctx, e->code ? e->code : SL_EDB, "%s: %s", what,
                         fence_msg(s, e->msg, m, sizeof m));
}

static int push_ev(sink *s, worker *w, sl_event *ev);

/*
 * A branch of a parallel group that failed because of another branch: a row lock (1205 lock wait,
 * 1213 deadlock), or a duplicate key (1062) between two keys that causality hashed apart but the
 * key's collation holds equal ('é' and 'E' under utf8mb4_general_ci): the row that one branch
 * deletes is still there when the other inserts its equal. (Any other order of such a pair meets
 * the first branch's row lock.) The group is then applied again by one worker in source order,
 * where a genuine duplicate fails again.
 */
static int lock_conflict(const worker *w)
{
    return w->dberr == 1205 || w->dberr == 1213 || (w->xa && w->dberr == 1062);
}

static int cmp_ev(const void *a, const void *b)
{
    const sl_event *x = *(sl_event *const *)a, *y = *(sl_event *const *)b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/*
 * The group failed on a row lock (set_patience says why): roll back every branch and apply all
 * its rows again on worker 0, in source order (the copies' seq), in one plain
 * transaction with the checkpoint in s->sql, waiting for locks as long as the server allows.
 */
static int retry_serial(sink *s)
{
    size_t n = 0;
    for (uint32_t i = 0; i < s->nworkers; i++) {
        post(&s->w[i], JOB_XA_ROLLBACK);
        n += s->w[i].nev;
    }
    for (uint32_t i = 0; i < s->nworkers; i++)
        wait_done(&s->w[i]);
    s->host->metric_add(s->ctx, "lock_conflict_retries", 1);
    sl_event **all = malloc((n ? n : 1) * sizeof *all);
    if (!all) {
        sl_error e = { SL_ENOMEM, "out of memory" };
        return fail_group(s, "applying rows", &e);
    }
    size_t k = 0;
    for (uint32_t i = 0; i < s->nworkers; i++) {
        if (s->w[i].nev)                        /* an idle worker's evs may be NULL */
            memcpy(all + k, s->w[i].evs, s->w[i].nev * sizeof *all);
        k += s->w[i].nev;
        s->w[i].nev = 0;
    }
    qsort(all, n, sizeof *all, cmp_ev);
    worker *w = &s->w[0];
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = push_ev(s, w, all[i]);
    free(all);
    if (rc < 0)
        return rc;
    w->xa = 0;
    w->keep_open = 0;
    w->commit_sql = s->sql.p;
    w->patient = 1;
    post(w, JOB_APPLY);
    rc = wait_done(w);
    w->patient = 0;
    if (rc < 0)
        return fail_group(s, "applying rows (again, in source order on one connection, after a row lock wait)", &w->err);
    w->nev = 0;
    return 0;
}

/*
 * Apply and commit the open group with the checkpoint at pos (NULL = the last known position).
 * keep_open: a big transaction continues on worker 0 (serial), apply without committing.
 */
static int close_group(sink *s, const sl_position *pos, int keep_open)
{
    int src = settle(s);
    if (src < 0)
        return src;
    uint32_t used = 0, only = 0;
    uint64_t rows = 0;
    for (uint32_t i = 0; i < s->nworkers; i++)
        if (s->w[i].nev) {
            used++;
            only = i;
            rows += s->w[i].nev;
        }
    if (pos)
        set_pos(s, pos);
    if (used == 0 && !s->serial && !keep_open)
        return 0;       /* nothing to commit: the position moved without rows */
    uint64_t g = s->group + 1;
    pthread_mutex_lock(&s->mu);
    ckpt_sql(s, &s->sql, 0, s->file, s->pos, s->gtid, g);
    pthread_mutex_unlock(&s->mu);
    if (used <= 1 || s->serial || keep_open) {
        worker *w = &s->w[s->serial || keep_open ? 0 : only];
        w->xa = 0;
        w->keep_open = keep_open;
        w->commit_sql = s->sql.p;
        w->patient = s->serial || keep_open;     /* alone: no sibling can hold its locks */
        post(w, JOB_APPLY);
        if (wait_done(w) < 0) {
            if (w->patient || !lock_conflict(w))
                return fail_group(s, "applying rows", &w->err);
            int rc = retry_serial(s);
            if (rc < 0)
                return rc;
        }
        w->nev = 0;
        s->serial = keep_open;
        if (!keep_open) {
            s->group = g;
            written(s);
            take_misses(s);
        }
        sl_causality_reset(s->caus);
        sl__tcache_collect(s->tc);
        atomic_fetch_add(&s->total_events, (long long)rows);
        s->host->metric_add(s->ctx, "rows_applied", (int64_t)rows);
        return 0;
    }
    /* several workers: one XA branch each, then the checkpoint, then XA COMMIT */
    for (uint32_t i = 0; i < s->nworkers; i++) {
        worker *w = &s->w[i];
        if (!w->nev)
            continue;
        w->xa = 1;
        w->keep_open = 0;
        w->commit_sql = NULL;
        w->patient = 0;         /* a sibling's lock is never released before we prepare */
        xid_of(s, g, i, w->xid, sizeof w->xid);
        post(w, JOB_APPLY);
    }
    int bad = -1, conflict = 0;
    for (uint32_t i = 0; i < s->nworkers; i++)
        if (s->w[i].nev && wait_done(&s->w[i]) < 0) {
            if (lock_conflict(&s->w[i]))
                conflict = 1;
            else if (bad < 0)
                bad = (int)i;
        }
    if (bad >= 0) {
        sl_error e = s->w[bad].err;
        return fail_group(s, "applying rows", &e);
    }
    if (conflict) {
        int rc = retry_serial(s);
        if (rc < 0)
            return rc;
        s->group = g;
        written(s);
        take_misses(s);
        sl_causality_reset(s->caus);
        sl__tcache_collect(s->tc);
        atomic_fetch_add(&s->total_events, (long long)rows);
        s->host->metric_add(s->ctx, "rows_applied", (int64_t)rows);
        return 0;
    }
    failpoint("after-prepare");
    sl_error err = {0};
    if (exec_ckpt(s, &s->sql, &err) < 0)
        return fail_group(s, "writing the checkpoint", &err);
    failpoint("after-checkpoint");
    s->group = g;
    written(s);
    take_misses(s);
    /* the commits run while the sink goes on with the next batch (settle waits for them) */
    for (uint32_t i = 0; i < s->nworkers; i++)
        if (s->w[i].nev) {
            s->w[i].nev = 0;
            s->w[i].committing = 1;
            post(&s->w[i], JOB_XA_COMMIT);
        }
    sl_causality_reset(s->caus);
    sl__tcache_collect(s->tc);
    atomic_fetch_add(&s->total_events, (long long)rows);
    s->host->metric_add(s->ctx, "rows_applied", (int64_t)rows);
    return 0;
}

static int push_ev(sink *s, worker *w, sl_event *ev)
{
    if (w->nev == w->cev) {
        size_t nc = w->cev ? w->cev * 2 : 256;
        sl_event **p = realloc(w->evs, nc * sizeof *p);
        if (!p)
            return s->host->fail(s->ctx, SL_ENOMEM, "out of memory");
        w->evs = p;
        w->cev = nc;
    }
    w->evs[w->nev++] = ev;
    return 0;
}

#define KEYS_PER_ROW 64
#define FK_CAUSALITY_KEY 0x666b2d636173636bull   /* any non-zero constant ("fk-casck") */
#define GROUP_BATCHES 64         /* batches one open group may hold */
#define GROUP_BYTES (64u << 20)  /* and their payload bytes */

/* Schedule the row events evs[0..n) of one transaction (or its part in this batch). */
static int schedule_unit(sink *s, sl_event *const *evs, size_t n, int serial)
{
    if (n == 0)
        return 0;
    if (serial) {
        for (size_t i = 0; i < n; i++)
            if (push_ev(s, &s->w[0], evs[i]) < 0)
                return SL_ENOMEM;
        return 0;
    }
    if (n > s->crows) {
        uint32_t *a = realloc(s->kstart, (n + 1) * sizeof *a);
        if (!a) return s->host->fail(s->ctx, SL_ENOMEM, "out of memory");
        s->kstart = a;
        uint32_t *b = realloc(s->assign, n * sizeof *b);
        if (!b) return s->host->fail(s->ctx, SL_ENOMEM, "out of memory");
        s->assign = b;
        s->crows = n;
    }
    size_t nk = 0;
    for (size_t r = 0; r < n; r++) {
        if (nk + KEYS_PER_ROW > s->ckeys) {
            size_t nc = (s->ckeys ? s->ckeys * 2 : 4096) + KEYS_PER_ROW;
            uint64_t *k = realloc(s->keys, nc * sizeof *k);
            if (!k) return s->host->fail(s->ctx, SL_ENOMEM, "out of memory");
            s->keys = k;
            s->ckeys = nc;
        }
        s->kstart[r] = (uint32_t)nk;
        nk += sl_causality_row_keys(evs[r], s->keys + nk, KEYS_PER_ROW - 1);
        /* a parent and its children (cascading foreign keys) share one worker, in source order:
         * one key common to every such table (tmeta.h) */
        const sl_table *m = evs[r]->meta;
        if (m && m->ncols && (m->cols[0].flags & SL_TVIEW_FKCASCADE))
            s->keys[nk++] = FK_CAUSALITY_KEY;
    }
    s->kstart[n] = (uint32_t)nk;
    int rc = sl_causality_assign(s->caus, n, s->keys, s->kstart, s->assign);
    if (rc == 1) {
        /* related to two workers: commit what is scheduled, start a fresh group */
        if ((rc = close_group(s, NULL, 0)) < 0)
            return rc;
        rc = sl_causality_assign(s->caus, n, s->keys, s->kstart, s->assign);
    }
    if (rc != 0)
        return s->host->fail(s->ctx, rc < 0 ? rc : SL_EINTERNAL, "causality scheduling failed");
    for (size_t r = 0; r < n; r++)
        if (push_ev(s, &s->w[s->assign[r]], evs[r]) < 0)
            return SL_ENOMEM;
    return 0;
}

/* ---- DDL ----------------------------------------------------------------------------------- */

static int tolerable(unsigned e)
{
    switch (e) {
    case 1007: case 1008: case 1050: case 1051: case 1054: case 1060: case 1061: case 1091:
    case 1146: case 1022: case 1826: case 1176:
        return 1;
    default:
        return 0;
    }
}

/* Invalidate the cached metadata of the tables a DDL names (all of them when it is unknown). */
static void forget_tables(sink *s, int parse_rc, const sl_ddl *d)
{
    if (parse_rc < 0 || d->kind == SL_DDL_OTHER) {
        sl__tcache_invalidate(s->tc, NULL, NULL);
    } else if (d->kind == SL_DDL_DROP_DB) {
        for (size_t i = 0; i < d->nnames; i++)
            sl__tcache_invalidate(s->tc, d->names[i].schema, NULL);
    } else if (d->kind != SL_DDL_CREATE_DB && d->kind != SL_DDL_ALTER_DB) {
        for (size_t i = 0; i < d->nnames; i++)
            sl__tcache_invalidate(s->tc, d->names[i].schema, d->names[i].table);
    }
    sl__tcache_collect(s->tc);
}

#define DDL_LOCK_WAIT_S "5"     /* seconds a DDL waits for a metadata lock before asking again */

/*
 * Rows written as a statement (a source session in binlog_format STATEMENT or MIXED) that the
 * filter kept, i.e. of a selected table: running the statement on the target would write what
 * the target's rows give, not what the source wrote, so the task stops here instead of
 * dropping it (as it did) or guessing.
 */
static int refuse_statement_rows(sink *s, const sl_event *ev)
{
    sl_ddl d;
    int prc = sl_ddl_parse(ev->ddl, strlen(ev->ddl), ev->target_schema, ev->ddl_mode, &d);
    int rows = d.writes_rows;
    sl_ddl_free(&d);
    if (prc == SL_ENOMEM)
        return s->host->fail(s->ctx, SL_ENOMEM, "out of memory");
    if (!rows)
        return 0;
    return s->host->fail(s->ctx, SL_ENOTSUP, "the source wrote rows with a statement, not as row "
                         "events (the writing session had binlog_format STATEMENT or MIXED), at "
                         "%s:%" PRIu64 ": sluice applies row events only, and the statement run "
                         "on the target would not write the same rows. Set binlog_format=ROW for "
                         "every session of the source; then apply the statement's effect on the "
                         "target by hand and drop it with a binlog_filter_rule ignore_sql, or "
                         "copy the table again: %.300s", ev->pos.file ? ev->pos.file : "?", ev->pos.offset, ev->ddl);
}

/*
 * Run the DDL at the source's time, as MariaDB's own replica does (SET TIMESTAMP from the Query
 * event's header, log_event_server.cc): a column added with DEFAULT NOW(), CURRENT_TIMESTAMP or
 * an expression of them fills the table's existing rows with the session's clock, which on the
 * target would be the time the sink applies it, after any lag or a resume from far back. The
 * header's time, the DDL event's commit_ts, is when the statement started on the source, the
 * time its NOW() read. Seconds only: sl_event carries no fraction, so NOW(6) gets .000000 where
 * the source's had its microseconds (MariaDB logs them in the status variable Q_HRNOW). The
 * session's time_zone stays '+00:00' (the source's, Q_TIME_ZONE_CODE, is not carried either): a
 * DATETIME default is rendered in UTC. apply_ddl sets the clock back right after the DDL.
 */
static int pin_clock(MYSQL *db, const sl_event *ev, sl_error *err)
{
    if (!ev->commit_ts)
        return 0;       /* a DDL no binlog event timed (none such today): the target's clock */
    char q[64];
    snprintf(q, sizeof q, "SET SESSION timestamp = %" PRIu64, ev->commit_ts);
    return exec1(db, q, err);
}

/*
 * Run the DDL's text on the DDL's session (db) as the source's session ran it: with the
 * modes of its sql_mode that change how the text reads (ev->ddl_mode: ANSI_QUOTES,
 * NO_BACKSLASH_ESCAPES, PIPES_AS_CONCAT, REAL_AS_FLOAT...) added to the session's own (which
 * keeps NO_AUTO_VALUE_ON_ZERO and the configured sql_mode) for this statement only. Returns
 * exec1's result; *e is the server's error number of a failure, read before the session's own
 * sql_mode is set back (a failure to set it back fails the DDL too: the statements after it
 * must not run in the source's modes).
 */
static int exec_ddl_text(MYSQL *db, const sl_event *ev, unsigned *e, sl_error *err)
{
    *e = 0;
    int rc = sl_myconn_ddl_mode_enter(db, ev->ddl_mode, err);
    if (rc == 0) {
        rc = exec1(db, ev->ddl, err);
        *e = rc < 0 ? mysql_errno(db) : 0;
        sl_error left = { 0 };
        if (sl_myconn_ddl_mode_leave(db, ev->ddl_mode, &left) < 0) {
            *err = left;
            *e = 0;
            rc = left.code;
        }
    } else {
        *e = mysql_errno(db);
    }
    return rc;
}

/*
 * The DDL failed with server error e (err). When the server refused it, nothing of it is on the
 * target, so its pending-DDL row goes: that row means "maybe ran, then a crash", and would make
 * the next start take the same error ("Duplicate key name", with an index that may differ) for
 * "done before a restart" and skip the DDL. The next start runs it again, and fails again until
 * the target accepts it or a filter drops it. A lost connection leaves the row: the DDL may
 * have run. Returns the stage's failure.
 */
static int ddl_failed(sink *s, unsigned e, const sl_error *err)
{
    int refused = e > 0 && (e < 2000 || e >= 3000) && !sl_myconn_is_conn_error(e);
    sl_error derr = {0};
    if (refused) {
        sl_sbuf_reset(&s->sql);
        sl_sbuf_adds(&s->sql, "DELETE FROM ");
        sl_sbuf_adds(&s->sql, s->ckpt_table);
        sl_sbuf_adds(&s->sql, " WHERE worker = -1 AND source_name = ");
        sl_sbuf_add_quoted(&s->sql, s->cfg->source_name, strlen(s->cfg->source_name));
        if (s->sql.oom)
            sl_error_set(&derr, SL_ENOMEM, "out of memory");
        else
            exec1(s->coord, s->sql.p, &derr);
        free(s->pend_file);
        s->pend_file = NULL;
    }
    if (derr.code)
        return s->host->fail(s->ctx, err->code, "applying DDL: %s (and its pending-DDL row stays: "
                             "%s; a start may take the error for a DDL done before a restart)",
                             err->msg, derr.msg);
    return s->host->fail(s->ctx, err->code, "applying DDL: %s", err->msg);
}

/* coordinated: the shard DDL coordinator made this shard the one that runs the DDL */
static int apply_ddl(sink *s, sl_event *ev, int coordinated)
{
    int src = settle(s);        /* the group before it fully committed (its locks released) */
    if (src < 0)
        return src;
    if ((ev->flags & SL_EVF_SHARD_DDL) && !coordinated)
        return s->host->fail(s->ctx, SL_ENOTSUP, "DDL on a shard-merged table %s.%s, and the "
                             "task has no shard_mode to coordinate it across the shards: set "
                             "shard_mode (pessimistic or optimistic); or stop the task, apply what "
                             "is needed on the target by hand, drop the statement with a "
                             "binlog_filter_rule (ignore_sql or ignore_event) on this table's "
                             "rule, update the task and start it: %.300s",
                             ev->target_schema ? ev->target_schema : "", ev->target_table ? ev->target_table : "",
                             ev->ddl);
    sl_ddl d;
    int prc = sl_ddl_parse(ev->ddl, strlen(ev->ddl), ev->target_schema, ev->ddl_mode, &d);
    sl_ddl_kind kind = d.kind;
    if (prc == SL_ENOMEM) {
        sl_ddl_free(&d);
        return s->host->fail(s->ctx, SL_ENOMEM, "out of memory");
    }
    /* the tables it changes are read again from the target at their next row (the group
     * before the DDL is committed: no scheduled event uses their views any more) */
    forget_tables(s, prc, &d);
    /* a foreign key added or dropped changes which OTHER tables are in a cascading component */
    if (has_ci(ev->ddl, "REFERENCES") || has_ci(ev->ddl, "FOREIGN")) {
        sl__tcache_invalidate(s->tc, NULL, NULL);
        sl__tcache_collect(s->tc);
    }
    sl_ddl_free(&d);
    int replay = s->pend_file && ev->pos.file && strcmp(s->pend_file, ev->pos.file) == 0 &&
                 s->pend_pos == ev->pos.offset;
    sl_error err = {0};
    /* 1. the pending-DDL marker (its own transaction: DDL commits implicitly anyway) */
    ckpt_sql(s, &s->sql, -1, ev->pos.file, ev->pos.offset, ev->pos.gtid, s->group);
    if (exec1(s->coord, s->sql.p, &err) < 0)
        return s->host->fail(s->ctx, err.code, "writing the DDL marker: %s", err.msg);
    /* 2. the DDL, on its own session, with the routed schema as default for names the text
     * does not qualify */
    MYSQL *db = s->ddl;
    if (ev->target_schema && kind != SL_DDL_CREATE_DB && kind != SL_DDL_DROP_DB) {
        sl_sbuf_reset(&s->sql);
        sl_sbuf_adds(&s->sql, "USE ");
        sl_sbuf_add_ident(&s->sql, ev->target_schema);
        sl_error ignore = {0};
        exec1(db, s->sql.p, &ignore);
    }
    /* The DDL waits for the metadata lock of its tables, and while it waits the server queues
     * every new statement on them behind it. On a shard-merged table, another source's sink may
     * hold that lock in an XA branch it prepared while a sibling branch of the same group waits
     * behind this DDL: that sink commits no branch before all are prepared, and the server sees
     * no cycle (shard_optimistic once waited 60 s on a DROP COLUMN, with three prepared branches
     * of the other source in XA RECOVER after). So the DDL gives up its place every
     * DDL_LOCK_WAIT_S seconds and asks again; a DDL that timed out changed nothing. */
    sl_error ignore = {0};
    exec1(db, "SET SESSION lock_wait_timeout = " DDL_LOCK_WAIT_S, &ignore);
    if (pin_clock(db, ev, &err) < 0)
        return s->host->fail(s->ctx, err.code, "setting the DDL's time: %s", err.msg);
    int drc;
    unsigned e = 0;
    for (unsigned waits = 0;; waits++) {
        drc = exec_ddl_text(db, ev, &e, &err);
        if (drc == 0 || e != 1205 /* ER_LOCK_WAIT_TIMEOUT */ || s->host->should_stop(s->ctx))
            break;
        s->host->metric_add(s->ctx, "ddl_lock_waits", 1);
        if (waits % 12 == 0)
            s->host->log(s->ctx, SL_LOG_WARN, "DDL waits for a metadata lock on its table(s) (a "
                         "transaction of another session holds it; asking again every "
                         DDL_LOCK_WAIT_S " s): %.300s", ev->ddl);
        nanosleep(&(struct timespec){0, 100 * 1000000L}, NULL);
    }
    exec1(db, "SET SESSION lock_wait_timeout = DEFAULT", &ignore);
    /* every later statement of the session reads the target's clock again */
    sl_error uerr = {0};
    if (exec1(db, "SET SESSION timestamp = DEFAULT", &uerr) < 0)
        return s->host->fail(s->ctx, uerr.code, "setting the clock back after a DDL: %s", uerr.msg);
    if (drc < 0) {
        int skip = (replay && tolerable(e)) || (kind == SL_DDL_CREATE_DB && e == 1007);
        if (!skip)
            return ddl_failed(s, e, &err);
        s->host->log(s->ctx, SL_LOG_WARN, "DDL already applied before a restart, skipped: %s", err.msg);
    }
    failpoint("after-ddl");
    /* 3. the checkpoint past the DDL, and the marker removed, in one transaction */
    set_pos(s, &ev->pos);
    uint64_t g = s->group + 1;
    pthread_mutex_lock(&s->mu);
    ckpt_sql(s, &s->sql, 0, s->file, s->pos, s->gtid, g);
    pthread_mutex_unlock(&s->mu);
    sl_sbuf_adds(&s->sql, ";\nDELETE FROM ");
    sl_sbuf_adds(&s->sql, s->ckpt_table);
    sl_sbuf_adds(&s->sql, " WHERE worker = -1 AND source_name = ");
    sl_sbuf_add_quoted(&s->sql, s->cfg->source_name, strlen(s->cfg->source_name));
    sl_dmlsql_stmt st[2] = { { .start = 0 } };
    const char *begin = "START TRANSACTION;\n";
    sl_sbuf tx;
    sl_sbuf_init(&tx);
    sl_sbuf_adds(&tx, begin);
    st[1].start = tx.len;
    sl_sbuf_add(&tx, s->sql.p, s->sql.len);
    sl_sbuf_adds(&tx, ";\nCOMMIT");
    int rc = tx.oom ? sl_error_set(&err, SL_ENOMEM, "out of memory")
                    : exec_multi(s->coord, tx.p, tx.len, st, 2, NULL, &err);
    sl_sbuf_free(&tx);
    if (rc < 0)
        return s->host->fail(s->ctx, err.code, "writing the checkpoint after a DDL: %s", err.msg);
    s->group = g;
    written(s);
    free(s->pend_file);
    s->pend_file = NULL;
    atomic_fetch_add(&s->total_events, 1);
    s->host->metric_add(s->ctx, "ddls_applied", 1);
    return 0;
}

/* Ask the coordinator (host->shard); *out is its parsed reply (caller decrefs). A failure is
 * the stage's, after host->fail. */
static int ask(sink *s, json_t *req, json_t **out)
{
    *out = NULL;
    char *q = json_dumps(req, JSON_COMPACT), *reply = NULL;
    json_decref(req);
    if (!q)
        return s->host->fail(s->ctx, SL_ENOMEM, "out of memory");
    int rc = SL_HOST_HAS(s->host, shard) ? s->host->shard(s->ctx, q, &reply) : SL_ENOTSUP;
    free(q);
    json_t *r = reply ? json_loads(reply, 0, NULL) : NULL;
    if (reply)
        s->host->free(reply);
    if (rc < 0 || !r) {
        const char *why = json_string_value(json_object_get(r, "error"));
        rc = s->host->fail(s->ctx, rc < 0 ? rc : SL_EINTERNAL, "shard DDL coordinator: %s",
                           why ? why : rc == SL_ENOTSUP ? "not available (shard_mode needs "
                           "sluice-server)" : sl_strerror(rc < 0 ? rc : SL_EINTERNAL));
        json_decref(r);
        return rc;
    }
    *out = r;
    return 0;
}

/* The DDL of a shard moved past without running it (the target needs nothing of it). */
static int shard_pass(sink *s, sl_event *ev, const char *why)
{
    s->host->log(s->ctx, SL_LOG_INFO, "shard DDL of `%s`.`%s` not run on the target: %s: %.300s",
                 ev->schema ? ev->schema : "", ev->table ? ev->table : "", why, ev->ddl);
    if (!s->in_txn)
        set_pos(s, &ev->pos);
    s->host->metric_add(s->ctx, "shard_ddls_skipped", 1);
    return 0;
}

/*
 * A DDL on a shard-merged table in pessimistic mode (the group before it is committed): the
 * coordinator says whether this shard waits (hold its table, durable before anything after it
 * is applied), runs it (the last shard), or conflicts with the lock's DDL (fail with both).
 */
static int shard_ddl(sink *s, sl_event *ev)
{
    json_t *r = NULL;
    int rc = ask(s, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:i,s:s,s:I}", "op", "arrive",
                              "target_schema", ev->target_schema ? ev->target_schema : "",
                              "target_table", ev->target_table ? ev->target_table : "",
                              "schema", ev->schema ? ev->schema : "", "table", ev->table ? ev->table : "",
                              "ddl", ev->ddl, "ddl_mode", (int)ev->ddl_mode,
                              "file", ev->pos.file ? ev->pos.file : "",
                              "pos", (json_int_t)ev->pos.offset), &r);
    if (rc < 0)
        return rc;
    const char *action = json_string_value(json_object_get(r, "action"));
    const char *id = json_string_value(json_object_get(r, "id"));
    long long gen = (long long)json_integer_value(json_object_get(r, "gen"));
    if (!action || !id) {
        json_decref(r);
        return s->host->fail(s->ctx, SL_EINTERNAL, "shard DDL coordinator: a reply without action");
    }
    if (!strcmp(action, "conflict")) {
        rc = s->host->fail(s->ctx, SL_ESTATE, "shard DDL conflict on %s.%s (lock %s): shard "
                           "`%s`.`%s` of source %s runs \"%.300s\" but the lock holds \"%.300s\"; "
                           "make the shards run the same DDL, or resolve the lock by hand",
                           ev->target_schema ? ev->target_schema : "", ev->target_table ? ev->target_table : "",
                           id, ev->schema ? ev->schema : "", ev->table ? ev->table : "",
                           s->cfg->source_name, ev->ddl,
                           json_string_value(json_object_get(r, "ddl")) ? json_string_value(json_object_get(r, "ddl")) : "");
        json_decref(r);
        return rc;
    }
    if (!strcmp(action, "skip")) {
        /* this shard arrived before a crash that came before its hold was written, and the
         * lock resolved meanwhile: its DDL is on the target, its events were never skipped */
        json_decref(r);
        return shard_pass(s, ev, "its lock resolved while this shard was down");
    }
    if (!strcmp(action, "execute")) {
        json_t *req = json_pack("{s:s,s:s,s:I}", "op", "done", "id", id, "gen", (json_int_t)gen);
        json_decref(r);
        s->host->log(s->ctx, SL_LOG_INFO, "shard DDL: every shard arrived, running it: %.300s", ev->ddl);
        /* a re-syncing hold of this table (an earlier lock) stays: the table's events after
         * this DDL and before A were skipped too, and are applied as the position passes them */
        if ((rc = apply_ddl(s, ev, 1)) < 0) {
            json_decref(req);
            return rc;
        }
        hold *own = hold_find(s, ev->schema, ev->table);
        if (own)
            own->exec = 0;
        failpoint("shard-before-done");
        rc = ask(s, req, &r);
        json_decref(r);
        return rc;
    }
    /* wait: the table is held from here; its position before the DDL is where it resumes */
    hold *h = hold_find(s, ev->schema, ev->table);
    if (!h) {
        if (s->nholds == s->cholds) {
            size_t nc = s->cholds ? s->cholds * 2 : 8;
            hold *p = realloc(s->holds, nc * sizeof *p);
            if (!p) {
                json_decref(r);
                return s->host->fail(s->ctx, SL_ENOMEM, "out of memory");
            }
            s->holds = p;
            s->cholds = nc;
        }
        h = &s->holds[s->nholds++];
        memset(h, 0, sizeof *h);
    } else {
        hold_clear(h);
    }
    pthread_mutex_lock(&s->mu);
    h->schema = strdup(ev->schema ? ev->schema : "");
    h->table = strdup(ev->table ? ev->table : "");
    h->id = strdup(id);
    h->gen = gen;
    h->t_file = dupstr(s->file);
    h->t_pos = s->pos;
    h->t_gtid = dupstr(s->gtid);
    h->h_file = dupstr(ev->pos.file);
    h->h_pos = ev->pos.offset;
    pthread_mutex_unlock(&s->mu);
    json_decref(r);
    id = NULL;
    if (!h->schema || !h->table || !h->id || !h->t_file || !h->h_file)
        return s->host->fail(s->ctx, SL_ENOMEM, "out of memory");
    s->host->log(s->ctx, SL_LOG_INFO, "shard DDL: `%s`.`%s` waits for lock %s (gen %lld): %.300s",
                 h->schema, h->table, h->id, gen, ev->ddl);
    /* the DDL is handled (held); the hold is on the target before anything after it is */
    set_pos(s, &ev->pos);
    if ((rc = write_ckpt(s)) < 0)
        return rc;
    failpoint("shard-held");
    s->host->metric_add(s->ctx, "shard_ddls_held", 1);
    return 0;
}

/* apply_ddl of a statement the coordinator chose in place of the event's own DDL, at the event's
 * position (so a replay after a crash finds its pending marker). */
static int apply_ddl_as(sink *s, sl_event *ev, const char *sql)
{
    const char *own = ev->ddl;
    ev->ddl = sql;
    int rc = apply_ddl(s, ev, 1);
    ev->ddl = own;
    return rc;
}

/* The target table's SHOW CREATE TABLE (malloc'd), or NULL when it cannot be read (missing). */
static char *target_create(sink *s, const sl_event *ev)
{
    sl_sbuf_reset(&s->sql);
    sl_sbuf_adds(&s->sql, "SHOW CREATE TABLE ");
    sl_sbuf_add_qname(&s->sql, ev->target_schema ? ev->target_schema : "",
                      ev->target_table ? ev->target_table : "");
    if (s->sql.oom || mysql_query(s->coord, s->sql.p) != 0)
        return NULL;
    MYSQL_RES *res = mysql_store_result(s->coord);
    MYSQL_ROW row = res && mysql_num_fields(res) >= 2 ? mysql_fetch_row(res) : NULL;
    char *t = row && row[1] ? strdup(row[1]) : NULL;
    if (res)
        mysql_free_result(res);
    return t;
}

/*
 * A DDL on a shard-merged table in optimistic mode: nothing is held. The coordinator keeps the
 * join of the shards' structures and says whether this shard runs the DDL on the target (the
 * first ADD of a column, a MODIFY that widens it, the last DROP), skips it (the target has it
 * already, holds this shard's values already, or other shards still have the column), or
 * conflicts. It compares a MODIFY with the column as the target has it, so the target's SHOW
 * CREATE TABLE goes with the request (read after the group before the DDL committed: settle).
 * Its answer for a DDL read again is the same, so the usual pending-DDL marker keeps a crash
 * exact.
 */
static int shard_join(sink *s, sl_event *ev)
{
    json_t *r = NULL;
    int rc = settle(s);
    if (rc < 0)
        return rc;
    char *create = target_create(s, ev);
    rc = ask(s, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:i,s:b,s:s,s:I,s:s?}", "op", "join",
                          "target_schema", ev->target_schema ? ev->target_schema : "",
                          "target_table", ev->target_table ? ev->target_table : "",
                          "schema", ev->schema ? ev->schema : "", "table", ev->table ? ev->table : "",
                          "ddl", ev->ddl, "ddl_mode", (int)ev->ddl_mode,
                          "strict", s->cfg->strict_optimistic, "file", ev->pos.file ? ev->pos.file : "",
                          "pos", (json_int_t)ev->pos.offset, "target_create", create), &r);
    free(create);
    if (rc < 0)
        return rc;
    const char *action = json_string_value(json_object_get(r, "action"));
    if (action && !strcmp(action, "execute")) {
        /* "sql": what runs is not the statement as the shard wrote it: a part of it (the clauses
         * that do not wait for other shards), or the join of the shards' types, which may be
         * neither statement (DECIMAL(12,2) and DECIMAL(10,4) join as DECIMAL(14,4)) */
        const char *sql = json_string_value(json_object_get(r, "sql"));
        if (sql && *sql)
            s->host->log(s->ctx, SL_LOG_INFO, "shard DDL (optimistic): for `%s`.`%s`'s %.300s the "
                         "merged table runs: %.300s", ev->schema ? ev->schema : "",
                         ev->table ? ev->table : "", ev->ddl, sql);
        rc = sql && *sql ? apply_ddl_as(s, ev, sql) : apply_ddl(s, ev, 1);
        json_decref(r);
        return rc;
    }
    if (action && !strcmp(action, "skip")) {
        json_decref(r);
        /* the target table may have changed under another shard's DDL: this shard's rows from
         * here on are mapped onto it as it is now (the group before is committed: settle) */
        if ((rc = settle(s)) < 0)
            return rc;
        sl__tcache_invalidate(s->tc, ev->target_schema, ev->target_table);
        sl__tcache_collect(s->tc);
        s->host->log(s->ctx, SL_LOG_INFO, "shard DDL (optimistic): the target needs nothing of "
                     "`%s`.`%s`'s %.300s", ev->schema ? ev->schema : "", ev->table ? ev->table : "", ev->ddl);
        if (!s->in_txn)
            set_pos(s, &ev->pos);
        s->host->metric_add(s->ctx, "shard_ddls_skipped", 1);
        return 0;
    }
    const char *other = json_string_value(json_object_get(r, "ddl"));
    const char *why = json_string_value(json_object_get(r, "why"));
    if (other)
        rc = s->host->fail(s->ctx, SL_ESTATE, "shard DDL conflict on %s.%s (optimistic, %s): shard "
                           "`%s`.`%s` of source %s runs \"%.300s\" but another shard ran \"%.300s\"",
                           ev->target_schema ? ev->target_schema : "", ev->target_table ? ev->target_table : "",
                           why ? why : "", ev->schema ? ev->schema : "", ev->table ? ev->table : "",
                           s->cfg->source_name, ev->ddl, other);
    else
        rc = s->host->fail(s->ctx, SL_ESTATE, "shard DDL conflict on %s.%s (optimistic): shard "
                           "`%s`.`%s` of source %s runs \"%.300s\": %s",
                           ev->target_schema ? ev->target_schema : "", ev->target_table ? ev->target_table : "",
                           ev->schema ? ev->schema : "", ev->table ? ev->table : "",
                           s->cfg->source_name, ev->ddl, why ? why : "no answer from the coordinator");
    json_decref(r);
    return rc;
}

/*
 * A DDL on a shard-merged table with shard_mode: what concerns one shard only is decided here
 * (a new shard's CREATE TABLE creates the target table if it is missing, a shard's DROP TABLE
 * leaves the merged rows alone, TRUNCATE and RENAME of one shard cannot be merged: pause);
 * changes of the structure go to the coordinator.
 */
static int shard_stmt(sink *s, sl_event *ev)
{
    sl_ddl d;
    int prc = sl_ddl_parse(ev->ddl, strlen(ev->ddl), ev->target_schema, ev->ddl_mode, &d);
    sl_ddl_kind kind = d.kind;
    size_t nnames = d.nnames;
    sl_ddl_free(&d);
    if (prc == SL_ENOMEM)
        return s->host->fail(s->ctx, SL_ENOMEM, "out of memory");
    if (kind == SL_DDL_CREATE_TABLE) {
        sl_sbuf_reset(&s->sql);
        sl_sbuf_adds(&s->sql, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ");
        sl_sbuf_add_quoted(&s->sql, ev->target_schema ? ev->target_schema : "",
                           ev->target_schema ? strlen(ev->target_schema) : 0);
        sl_sbuf_adds(&s->sql, " AND TABLE_NAME = ");
        sl_sbuf_add_quoted(&s->sql, ev->target_table ? ev->target_table : "",
                           ev->target_table ? strlen(ev->target_table) : 0);
        if (atoi(q1col(s->coord, s->sql.p, &(q1buf){ { 0 } })) > 0)
            return shard_pass(s, ev, "a new shard; the merged table exists");
        return apply_ddl(s, ev, 1);
    }
    if (kind == SL_DDL_DROP_TABLE) {
        /* a shard that will never come leaves the lock of its target (pessimistic), or the
         * DROP COLUMNs waiting for it (optimistic: those every other shard ran are this
         * shard's to run now, the reply's "sql") */
        json_t *r = NULL;
        int rc = ask(s, json_pack("{s:s,s:s,s:s,s:s,s:s,s:b}", "op", "leave", "target_schema",
                                  ev->target_schema ? ev->target_schema : "", "target_table",
                                  ev->target_table ? ev->target_table : "", "schema",
                                  ev->schema ? ev->schema : "", "table", ev->table ? ev->table : "",
                                  "optimistic", !s->pessimistic), &r);
        size_t i;
        json_t *q;
        json_array_foreach(rc < 0 ? NULL : json_object_get(r, "sql"), i, q) {
            s->host->log(s->ctx, SL_LOG_INFO, "shard DDL (optimistic): `%s`.`%s` was dropped, the "
                         "last shard a DROP COLUMN waited for: %.300s", ev->schema ? ev->schema : "",
                         ev->table ? ev->table : "", json_string_value(q));
            if ((rc = apply_ddl_as(s, ev, json_string_value(q))) < 0)
                break;
        }
        json_decref(r);
        if (rc < 0)
            return rc;
        return shard_pass(s, ev, "a shard dropped; the merged table keeps its rows");
    }
    if (kind == SL_DDL_ALTER_TABLE && nnames > 1)
        kind = SL_DDL_RENAME_TABLE;
    if (kind != SL_DDL_ALTER_TABLE && kind != SL_DDL_CREATE_INDEX && kind != SL_DDL_DROP_INDEX)
        return s->host->fail(s->ctx, SL_ENOTSUP, "shard DDL on %s.%s: %s of one shard of a merged "
                             "table cannot be applied to it (the other shards' rows live there "
                             "too): stop the task, apply what is needed on the target by hand, drop "
                             "the statement with a binlog_filter_rule (ignore_sql or "
                             "ignore_event) on this table's rule, update the task and start "
                             "it: %.300s", ev->target_schema ? ev->target_schema : "",
                             ev->target_table ? ev->target_table : "",
                             kind == SL_DDL_TRUNCATE_TABLE ? "a TRUNCATE" :
                             kind == SL_DDL_RENAME_TABLE ? "a RENAME" : "this statement", ev->ddl);
    return s->pessimistic ? shard_ddl(s, ev) : shard_join(s, ev);
}

/*
 * At start: the shard table (created if needed) gives this source's holds and A; a hold whose
 * lock resolved meanwhile re-syncs; a lock this source was running the DDL of when it stopped
 * is resolved if the checkpoint passed the DDL (coordinator "resume").
 */
static int shard_recover(sink *s)
{
    sl_error err = {0};
    sl_sbuf *b = &s->sql;
    holds_free(s);
    sl_sbuf_reset(b);
    sl_sbuf_adds(b, "CREATE TABLE IF NOT EXISTS ");
    sl_sbuf_adds(b, s->shard_table);
    sl_sbuf_adds(b, " (source_name VARCHAR(128) NOT NULL, source_schema VARCHAR(128) NOT NULL, "
                 "source_table VARCHAR(128) NOT NULL, lock_id VARCHAR(600) NOT NULL, gen BIGINT NOT NULL, "
                 "state VARCHAR(16) NOT NULL, t_name VARCHAR(255), t_pos BIGINT UNSIGNED, t_gtid TEXT, "
                 "h_name VARCHAR(255), h_pos BIGINT UNSIGNED, "
                 "updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP, "
                 "PRIMARY KEY(source_name, source_schema, source_table))");
    if (exec1(s->coord, b->p, &err) < 0)
        return s->host->fail(s->ctx, err.code, "creating the shard table: %s", err.msg);
    sl_sbuf_reset(b);
    sl_sbuf_adds(b, "SELECT source_schema, source_table, lock_id, gen, t_name, t_pos, t_gtid, h_name, "
                 "h_pos, state FROM ");
    sl_sbuf_adds(b, s->shard_table);
    sl_sbuf_adds(b, " WHERE source_name = ");
    sl_sbuf_add_quoted(b, s->cfg->source_name, strlen(s->cfg->source_name));
    if (mysql_real_query(s->coord, b->p, (unsigned long)b->len) != 0)
        return s->host->fail(s->ctx, SL_EDB, "reading the shard table: %s", mysql_error(s->coord));
    MYSQL_RES *res = mysql_store_result(s->coord);
    if (!res)
        return s->host->fail(s->ctx, SL_EDB, "reading the shard table: %s", mysql_error(s->coord));
    MYSQL_ROW row;
    int oom = 0;
    while ((row = mysql_fetch_row(res))) {
        s->shard_rows = 1;
        if (!row[1][0]) {
            s->a_file = dupstr(row[4]);
            s->a_pos = row[5] ? strtoull(row[5], NULL, 10) : 0;
            s->a_gtid = dupstr(row[6]);
            continue;
        }
        if (s->nholds == s->cholds) {
            size_t nc = s->cholds ? s->cholds * 2 : 8;
            hold *p = realloc(s->holds, nc * sizeof *p);
            if (!p) {
                oom = 1;
                break;
            }
            s->holds = p;
            s->cholds = nc;
        }
        hold *h = &s->holds[s->nholds++];
        memset(h, 0, sizeof *h);
        h->schema = dupstr(row[0]);
        h->table = dupstr(row[1]);
        h->id = dupstr(row[2]);
        h->gen = row[3] ? atoll(row[3]) : 0;
        h->t_file = dupstr(row[4] ? row[4] : "");
        h->t_pos = row[5] ? strtoull(row[5], NULL, 10) : 0;
        h->t_gtid = dupstr(row[6]);
        h->h_file = dupstr(row[7] ? row[7] : "");
        h->h_pos = row[8] ? strtoull(row[8], NULL, 10) : 0;
        h->was_resync = row[9] && !strcmp(row[9], "resync");
        oom |= !h->schema || !h->table || !h->id || !h->t_file || !h->h_file;
    }
    mysql_free_result(res);
    if (oom)
        return s->host->fail(s->ctx, SL_ENOMEM, "out of memory");
    int rc = 0;
    json_t *r = NULL;
    for (size_t i = 0; i < s->nholds && rc == 0; i++) {
        hold *h = &s->holds[i];
        rc = ask(s, json_pack("{s:s,s:s,s:I,s:s,s:s}", "op", "state", "id", h->id, "gen",
                              (json_int_t)h->gen, "schema", h->schema, "table", h->table), &r);
        if (rc == 0 && json_is_true(json_object_get(r, "owner")) &&
            pos_cmp(h->t_file, h->t_pos, h->h_file, h->h_pos) >= 0) {
            /* the by-hand owner ran the DDL (its T passed it) and died before "done" */
            json_decref(r);
            r = NULL;
            h->resync = 1;
            rc = ask(s, json_pack("{s:s,s:s,s:I}", "op", "done", "id", h->id, "gen", (json_int_t)h->gen), &r);
        } else if (rc == 0 && json_is_true(json_object_get(r, "owner")) && !h->resync) {
            h->resync = h->exec = 1;
            s->host->log(s->ctx, SL_LOG_INFO, "shard DDL: lock %s resolved by hand; `%s`.`%s` "
                         "applies its events after (%s, %" PRIu64 ") and runs the DDL", h->id,
                         h->schema, h->table, h->t_file, h->t_pos);
        } else if (rc == 0 && json_is_true(json_object_get(r, "resolved")) && !h->resync) {
            h->resync = 1;
            s->host->log(s->ctx, SL_LOG_INFO, "shard DDL: lock %s resolved; `%s`.`%s` applies its "
                         "events after (%s, %" PRIu64 ")", h->id, h->schema, h->table, h->t_file, h->t_pos);
        } else if (rc == 0 && json_is_true(json_object_get(r, "gone")) && !h->resync) {
            /* the coordinator lost the lock (the task's records were removed, the target's
             * kept): a held shard's DDL may never have run, so it reads the DDL again and
             * arrives at a new lock (exec); one that was re-syncing saw its lock resolve */
            h->resync = 1;
            h->exec = !h->was_resync;
            s->host->log(s->ctx, SL_LOG_WARN, "shard DDL: lock %s is not known to the coordinator "
                         "(the task's records were removed); `%s`.`%s` %s after (%s, %" PRIu64 ")",
                         h->id, h->schema, h->table, h->exec ? "reads its DDL again, to arrive anew, "
                         : "applies its events", h->t_file, h->t_pos);
        }
        json_decref(r);
        r = NULL;
    }
    if (rc == 0) {
        /* how far this source got: A when it has holds (the checkpoint row stays before them),
         * written in the transaction that moved past any DDL it ran */
        pthread_mutex_lock(&s->mu);
        const char *f = s->a_file ? s->a_file : s->file;
        json_t *q = json_pack("{s:s,s:s,s:I}", "op", "resume", "file", f ? f : "",
                              "pos", (json_int_t)(s->a_file ? s->a_pos : s->pos));
        pthread_mutex_unlock(&s->mu);
        rc = ask(s, q, &r);
        json_decref(r);
    }
    return rc;
}

/* ---- plugin callbacks ---------------------------------------------------------------------- */

static void sink_destroy(void *self);

static int sink_create(const sl_host *host, sl_ctx *ctx, const void *config, void **self)
{
    const sink_config *cfg = config;
    sink *s = host->calloc(1, sizeof *s);
    if (!s)
        return host->fail(ctx, SL_ENOMEM, "out of memory");
    s->host = host;
    s->ctx = ctx;
    s->cfg = cfg;
    s->nworkers = (uint32_t)cfg->repl_threads;
    s->xid_hash = fnv64(cfg->task_name, cfg->source_name);
    pthread_mutex_init(&s->mu, NULL);
    sl_sbuf_init(&s->sql);
    char tbl[512];
    snprintf(tbl, sizeof tbl, "%s_syncer_checkpoint", cfg->task_name);
    sl_sbuf b;
    sl_sbuf_init(&b);
    sl_sbuf_add_qname(&b, cfg->meta_schema, tbl);
    s->ckpt_table = b.p;
    snprintf(tbl, sizeof tbl, "%s_syncer_sharding_meta", cfg->task_name);
    sl_sbuf_init(&b);
    sl_sbuf_add_qname(&b, cfg->meta_schema, tbl);
    s->shard_table = b.p;
    s->pessimistic = cfg->shard_mode && !strcasecmp(cfg->shard_mode, "pessimistic");
    s->optimistic = cfg->shard_mode && !strcasecmp(cfg->shard_mode, "optimistic");
    const char *mode = cfg->sql_mode ? cfg->sql_mode : "", *why;
    char bad[32];
    if ((why = bad_sql_mode(mode, bad, sizeof bad)) != NULL) {
        free(s->ckpt_table);
        free(s->shard_table);
        host->free(s);
        return host->fail(ctx, SL_EINVAL, "sql_mode \"%.200s\": %s %s; leave it out", mode, bad, why);
    }
    sl_sbuf_init(&b);
    sl_sbuf_adds(&b, SESSION_SQL_HEAD);
    sl_sbuf_add_quoted(&b, mode, strlen(mode));
    sl_sbuf_adds(&b, SESSION_SQL_TAIL);
    s->session_sql = b.p;
    s->tc = sl__tcache_new(host);
    s->caus = sl_causality_new(s->nworkers);
    /* a worker takes repl_batch rows of a group before the next one starts: a small group
     * is one plain transaction, a big one a few XA branches of useful size (16 branches of a
     * dozen rows each cost more in XA round trips and redo writes than they gain) */
    if (s->caus)
        sl_causality_set_fill(s->caus, (uint64_t)cfg->repl_batch);
    s->w = calloc(s->nworkers, sizeof *s->w);
    if (!s->ckpt_table || !s->shard_table || !s->session_sql || !s->tc || !s->caus || !s->w) {
        free(s->ckpt_table);
        free(s->shard_table);
        free(s->session_sql);
        sl__tcache_free(s->tc);
        sl_causality_free(s->caus);
        free(s->w);
        host->free(s);
        return host->fail(ctx, SL_ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < s->nworkers; i++) {
        worker *w = &s->w[i];
        w->s = s;
        w->id = i;
        pthread_mutex_init(&w->mu, NULL);
        pthread_cond_init(&w->cv, NULL);
        sl_sbuf_init(&w->sql);
    }
    for (uint32_t i = 0; i < s->nworkers; i++)
        if (!(s->w[i].cmp = sl_compactor_new())) {
            *self = s;
            sink_destroy(s);
            return host->fail(ctx, SL_ENOMEM, "out of memory");
        }
    *self = s;
    return 0;
}

/*
 * The sessions of the sink's earlier run on the target, ended before the checkpoint is read.
 * A run that lost its connections without the server noticing (read_timeout, a partition, a
 * host that went away) leaves its sessions there with their open transactions, and the bytes
 * of a statement it sent (a COMMIT) may still be on their way: one that arrived after this run
 * read the checkpoint would commit rows this run applies again, and the open transactions'
 * locks would hold this run's rows back. So the start kills them (KILL CONNECTION: an open
 * transaction rolls back, a prepared XA branch stays for recover to resolve) and waits until
 * they are gone. <meta>.<task>_syncer_sessions names them: the target's boot time and each
 * run's connection ids (record_sessions). Ids are unique until the server restarts, and a
 * restart ended those sessions anyway, so the ids of another boot are left alone; a target
 * that tells no boot time (no Uptime) gets neither.
 */
#define STALE_WAIT_S 120

static void sessions_table(const sink *s, sl_sbuf *b)
{
    char tbl[512];
    snprintf(tbl, sizeof tbl, "%s_syncer_sessions", s->cfg->task_name);
    sl_sbuf_add_qname(b, s->cfg->meta_schema, tbl);
}

static int stale_sessions(sink *s)
{
    sl_error err = {0};
    q1buf qb;
    int64_t now = strtoll(q1col(s->coord, "SELECT UNIX_TIMESTAMP()", &qb), NULL, 10);
    int64_t up = -1;
    if (mysql_query(s->coord, "SHOW GLOBAL STATUS LIKE 'Uptime'") == 0) {
        MYSQL_RES *r = mysql_store_result(s->coord);
        MYSQL_ROW row = r && mysql_num_fields(r) >= 2 ? mysql_fetch_row(r) : NULL;
        if (row && row[1])
            up = strtoll(row[1], NULL, 10);
        if (r)
            mysql_free_result(r);
    }
    s->boot = now > 0 && up >= 0 ? now - up : 0;
    if (!s->boot)
        return 0;
    sl_sbuf *b = &s->sql;
    sl_sbuf_reset(b);
    sl_sbuf_adds(b, "CREATE TABLE IF NOT EXISTS ");
    sessions_table(s, b);
    sl_sbuf_adds(b, " (source_name VARCHAR(128) NOT NULL, boot BIGINT NOT NULL, ids TEXT NOT NULL, "
                 "updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP, "
                 "PRIMARY KEY(source_name))");
    if (b->oom || exec1(s->coord, b->p, &err) < 0)
        return s->host->fail(s->ctx, err.code ? err.code : SL_ENOMEM, "creating the sessions "
                             "table: %s", err.msg);
    sl_sbuf_reset(b);
    sl_sbuf_adds(b, "SELECT boot, ids FROM ");
    sessions_table(s, b);
    sl_sbuf_adds(b, " WHERE source_name = ");
    sl_sbuf_add_quoted(b, s->cfg->source_name, strlen(s->cfg->source_name));
    if (b->oom || mysql_real_query(s->coord, b->p, (unsigned long)b->len) != 0)
        return s->host->fail(s->ctx, SL_EDB, "reading the sessions table: %s", mysql_error(s->coord));
    MYSQL_RES *res = mysql_store_result(s->coord);
    MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
    /* "ID IN (...)" of the earlier run's ids, digits and commas only */
    sl_sbuf in;
    sl_sbuf_init(&in);
    if (row && row[0] && row[1] && llabs(strtoll(row[0], NULL, 10) - s->boot) <= 2) {
        for (const char *p = row[1]; *p;) {
            char *end;
            unsigned long long id = strtoull(p, &end, 10);
            if (end == p)
                break;
            char num[32];
            snprintf(num, sizeof num, "%s%llu", in.len ? "," : "", id);
            sl_sbuf_adds(&in, num);
            p = *end == ',' ? end + 1 : end;
        }
    }
    if (res)
        mysql_free_result(res);
    if (!in.len) {
        sl_sbuf_free(&in);
        return 0;
    }
    sl_sbuf_reset(b);
    sl_sbuf_adds(b, "SELECT ID FROM information_schema.PROCESSLIST WHERE ID IN (");
    sl_sbuf_add(b, in.p, in.len);
    sl_sbuf_adds(b, ")");
    int killed = 0;
    if (!b->oom && mysql_real_query(s->coord, b->p, (unsigned long)b->len) == 0 &&
        (res = mysql_store_result(s->coord)) != NULL) {
        while ((row = mysql_fetch_row(res))) {
            char q[64];
            snprintf(q, sizeof q, "KILL CONNECTION %llu", strtoull(row[0], NULL, 10));
            sl_error ke = {0};
            if (exec1(s->coord, q, &ke) == 0)
                killed++;
        }
        mysql_free_result(res);
    }
    int rc = 0;
    if (killed) {
        s->host->log(s->ctx, SL_LOG_WARN, "%d session(s) of the sink's earlier run were still open "
                     "on the target (a run that lost its connections to read_timeout or a "
                     "partition, or a crash the server has not seen yet): killed before the "
                     "checkpoint is read, waiting for them to end", killed);
        s->host->metric_add(s->ctx, "stale_sessions_killed", (uint64_t)killed);
        sl_sbuf_reset(b);
        sl_sbuf_adds(b, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID IN (");
        sl_sbuf_add(b, in.p, in.len);
        sl_sbuf_adds(b, ")");
        int left = 1;
        for (int t = 0; t < STALE_WAIT_S * 10 && !b->oom && !s->host->should_stop(s->ctx); t++) {
            const char *n = q1col(s->coord, b->p, &qb);
            if ((left = !n[0] || atoi(n) > 0) == 0)
                break;
            nanosleep(&(struct timespec){0, 100 * 1000000L}, NULL);
        }
        if (left && s->host->should_stop(s->ctx))
            rc = SL_ESTOPPED;
        else if (left)
            rc = s->host->fail(s->ctx, SL_ETIMEOUT, "the sink's earlier sessions on the target "
                               "(ids %.200s) did not end within %d s of KILL CONNECTION (a long "
                               "rollback?); the start is tried again", in.p, STALE_WAIT_S);
    }
    sl_sbuf_free(&in);
    return rc;
}

/* This run's sessions (coordinator, DDL, workers) in the sessions table, for the next start's
 * stale_sessions. */
static int record_sessions(sink *s)
{
    if (!s->boot)
        return 0;
    sl_sbuf ids;
    sl_sbuf_init(&ids);
    char num[64];
    snprintf(num, sizeof num, "%lu,%lu", mysql_thread_id(s->coord), mysql_thread_id(s->ddl));
    sl_sbuf_adds(&ids, num);
    for (uint32_t i = 0; i < s->nworkers; i++) {
        snprintf(num, sizeof num, ",%lu", mysql_thread_id(s->w[i].db));
        sl_sbuf_adds(&ids, num);
    }
    sl_sbuf *b = &s->sql;
    sl_sbuf_reset(b);
    sl_sbuf_adds(b, "REPLACE INTO ");
    sessions_table(s, b);
    sl_sbuf_adds(b, " (source_name, boot, ids) VALUES (");
    sl_sbuf_add_quoted(b, s->cfg->source_name, strlen(s->cfg->source_name));
    snprintf(num, sizeof num, ", %" PRId64 ", ", s->boot);
    sl_sbuf_adds(b, num);
    sl_sbuf_add_quoted(b, ids.p ? ids.p : "", ids.len);
    sl_sbuf_adds(b, ")");
    sl_error err = {0};
    int rc = ids.oom || b->oom ? sl_error_set(&err, SL_ENOMEM, "out of memory")
                               : exec1(s->coord, b->p, &err);
    sl_sbuf_free(&ids);
    return rc < 0 ? s->host->fail(s->ctx, err.code, "recording the sink's sessions: %s", err.msg) : 0;
}

/* Read the checkpoint and the pending DDL marker; resolve prepared XA branches of this task. */
static int recover(sink *s)
{
    sl_error err = {0};
    sl_sbuf *b = &s->sql;
    sl_sbuf_reset(b);
    sl_sbuf_adds(b, "CREATE DATABASE IF NOT EXISTS ");
    sl_sbuf_add_ident(b, s->cfg->meta_schema);
    if (exec1(s->coord, b->p, &err) < 0)
        return s->host->fail(s->ctx, err.code, "creating the meta schema: %s", err.msg);
    sl_sbuf_reset(b);
    sl_sbuf_adds(b, "CREATE TABLE IF NOT EXISTS ");
    sl_sbuf_adds(b, s->ckpt_table);
    sl_sbuf_adds(b, " (source_name VARCHAR(128) NOT NULL, worker INT NOT NULL, binlog_name VARCHAR(255), "
                 "binlog_pos BIGINT UNSIGNED, binlog_gtid TEXT, seq BIGINT UNSIGNED, is_snapshot TINYINT, "
                 "updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP, "
                 "PRIMARY KEY(source_name, worker))");
    if (exec1(s->coord, b->p, &err) < 0)
        return s->host->fail(s->ctx, err.code, "creating the checkpoint table: %s", err.msg);
    if (s->cfg->fence_epoch > 0) {
        int rc = raise_fence(s);
        if (rc < 0)
            return rc;
    }
    int src = stale_sessions(s);
    if (src < 0)
        return src;
    sl_sbuf_reset(b);
    sl_sbuf_adds(b, "SELECT worker, binlog_name, binlog_pos, binlog_gtid, seq FROM ");
    sl_sbuf_adds(b, s->ckpt_table);
    sl_sbuf_adds(b, " WHERE source_name = ");
    sl_sbuf_add_quoted(b, s->cfg->source_name, strlen(s->cfg->source_name));
    sl_sbuf_adds(b, " AND worker IN (0, -1)");
    if (mysql_real_query(s->coord, b->p, (unsigned long)b->len) != 0)
        return s->host->fail(s->ctx, SL_EDB, "reading the checkpoint: %s", mysql_error(s->coord));
    MYSQL_RES *res = mysql_store_result(s->coord);
    if (!res)
        return s->host->fail(s->ctx, SL_EDB, "reading the checkpoint: %s", mysql_error(s->coord));
    MYSQL_ROW row;
    s->group = 0;
    free(s->pend_file);
    s->pend_file = NULL;
    free(s->ck_file);
    s->ck_file = NULL;
    s->ck_pos = 0;
    while ((row = mysql_fetch_row(res))) {
        int wk = atoi(row[0]);
        if (wk == 0) {
            pthread_mutex_lock(&s->mu);
            free(s->file);
            free(s->gtid);
            s->file = dupstr(row[1]);
            s->pos = row[2] ? strtoull(row[2], NULL, 10) : 0;
            s->gtid = dupstr(row[3]);
            s->ck_file = dupstr(row[1]);
            s->ck_pos = s->pos;
            pthread_mutex_unlock(&s->mu);
            s->group = row[4] ? strtoull(row[4], NULL, 10) : 0;
        } else {
            s->pend_file = dupstr(row[1]);
            s->pend_pos = row[2] ? strtoull(row[2], NULL, 10) : 0;
        }
    }
    mysql_free_result(res);
    /* prepared branches left by a crash: commit those the checkpoint covers */
    if (mysql_query(s->coord, "XA RECOVER") != 0)
        return s->host->fail(s->ctx, SL_EDB, "XA RECOVER: %s", mysql_error(s->coord));
    res = mysql_store_result(s->coord);
    char prefix[40];
    snprintf(prefix, sizeof prefix, "sluice-%016" PRIx64 "-", s->xid_hash);
    size_t pl = strlen(prefix);
    char (*todo)[72] = NULL;
    int *commit = NULL;
    size_t nt = 0;
    while (res && (row = mysql_fetch_row(res))) {
        unsigned long *lens = mysql_fetch_lengths(res);
        long gl = row[1] ? atol(row[1]) : 0;
        if (!row[3] || gl <= 0 || gl > 64 || (unsigned long)gl > lens[3])
            continue;
        char xid[72];
        memcpy(xid, row[3], (size_t)gl);
        xid[gl] = '\0';
        if (strncmp(xid, prefix, pl) != 0)
            continue;
        uint64_t g = strtoull(xid + pl, NULL, 10);
        void *nt1 = realloc(todo, (nt + 1) * sizeof *todo);
        void *nt2 = realloc(commit, (nt + 1) * sizeof *commit);
        if (nt1) todo = nt1;
        if (nt2) commit = nt2;
        if (!nt1 || !nt2)
            break;
        memcpy(todo[nt], xid, sizeof xid);
        commit[nt] = g <= s->group;
        nt++;
    }
    if (res)
        mysql_free_result(res);
    int rc = 0;
    for (size_t i = 0; i < nt && rc == 0; i++) {
        char q[128];
        snprintf(q, sizeof q, "XA %s '%s'", commit[i] ? "COMMIT" : "ROLLBACK", todo[i]);
        s->host->log(s->ctx, SL_LOG_INFO, "recovery: %s", q);
        if (exec1(s->coord, q, &err) < 0)
            rc = s->host->fail(s->ctx, err.code, "recovering prepared XA branches: %s", err.msg);
    }
    free(todo);
    free(commit);
    if (rc == 0 && s->pessimistic)
        rc = shard_recover(s);
    return rc;
}

static void stop_workers(sink *s)
{
    for (uint32_t i = 0; i < s->nworkers; i++) {
        worker *w = &s->w[i];
        if (w->committing) {
            w->committing = 0;
            wait_done(w);
        }
        if (w->thread) {
            post(w, JOB_QUIT);
            s->host->thread_join(s->ctx, w->thread);
            w->thread = NULL;
        }
        if (w->db) {
            rollback_worker(w);
            mysql_close(w->db);
            w->db = NULL;
        }
        w->nev = 0;
        w->txn_open = 0;
        w->xa_started = 0;
    }
    if (s->coord) {
        mysql_close(s->coord);
        s->coord = NULL;
    }
    if (s->ddl) {
        mysql_close(s->ddl);
        s->ddl = NULL;
    }
    release_held(s);
    s->serial = 0;
    s->running = 0;
}

static int sink_start(void *self)
{
    sink *s = self;
    sl_error err = {0};
    stop_workers(s);
    s->coord = connect_target(s, (unsigned)s->cfg->read_timeout, &err);
    if (!s->coord)
        return s->host->fail(s->ctx, err.code, "connecting to the target: %s", err.msg);
    int rc = recover(s);
    if (rc < 0) {
        stop_workers(s);
        return rc;
    }
    for (uint32_t i = 0; i < s->nworkers; i++) {
        worker *w = &s->w[i];
        w->db = connect_target(s, (unsigned)s->cfg->read_timeout, &err);
        if (!w->db) {
            stop_workers(s);
            return s->host->fail(s->ctx, err.code, "connecting worker %u to the target: %s", i, err.msg);
        }
        /* what sizes the statements (apply_events); 0 if unknown: 1 MiB texts, no row limit */
        w->packet = strtoul(q1col(w->db, "SELECT @@max_allowed_packet", &(q1buf){ { 0 } }), NULL, 10);
        const char *info = mysql_get_server_info(w->db);
        w->values_warns = info && !strstr(info, "MariaDB") && mysql_get_server_version(w->db) >= 80020;
        if (!w->stmts && !(w->stmts = malloc(MAX_STARTS * sizeof *w->stmts))) {
            stop_workers(s);
            return s->host->fail(s->ctx, SL_ENOMEM, "out of memory");
        }
        w->job = JOB_NONE;
        w->done = 0;
        w->patient = 0;
        w->patient_set = -1;       /* the session has the server's timeout: set on first use */
        char name[32];
        snprintf(name, sizeof name, "sink-w%u", i);
        if ((rc = s->host->thread_start(s->ctx, name, worker_main, w, &w->thread)) < 0) {
            w->thread = NULL;
            stop_workers(s);
            return s->host->fail(s->ctx, rc, "cannot start worker thread %u", i);
        }
    }
    sl_causality_reset(s->caus);
    /* The DDL's session: a connection of its own without read_timeout, because an ALTER TABLE
     * may run for hours without a byte back (the coordinator's connection, with the timeout,
     * keeps the markers and checkpoints around it). Opened here so that the sessions table
     * names it too. */
    if (!(s->ddl = connect_target(s, 0, &err))) {
        stop_workers(s);
        return s->host->fail(s->ctx, err.code, "connecting the DDL's session to the target: %s",
                             err.msg);
    }
    if ((rc = record_sessions(s)) < 0) {
        stop_workers(s);
        return rc;
    }
    /* the target may have been changed while the task was paused (that is how a missing column
     * is fixed): read every table again */
    sl__tcache_invalidate(s->tc, NULL, NULL);
    sl__tcache_collect(s->tc);
    s->serial = 0;
    s->in_txn = 0;
    s->safe_until = 0;   /* a new run: a new safe-mode window (safe_mode_seconds) */
    s->running = 1;
    pthread_mutex_lock(&s->mu);
    s->synced = 0;            /* until a heartbeat says where the source is */
    s->busy_ts = 0;
    pthread_mutex_unlock(&s->mu);
    if (!s->started)
        s->started = time(NULL);
    return 0;
}

static int is_row(const sl_event *ev)
{
    return (ev->kind == SL_EV_INSERT || ev->kind == SL_EV_UPDATE || ev->kind == SL_EV_DELETE) &&
           !(ev->flags & SL_EVF_DROPPED);
}

static int sink_process(void *self, sl_batch *b)
{
    sink *s = self;
    if (!s->running)
        return s->host->fail(s->ctx, SL_ESTATE, "process before start");
    size_t i = 0, n = b->n;
    int rc;
    /* Heartbeats say where the source stands; the other events how old what is applied is. */
    int hb = 0, data = 0;
    uint64_t hb_ts = 0, first_ts = 0, max_ts = 0;
    for (size_t k = 0; k < n; k++) {
        const sl_event *ev = &b->events[k];
        if (!s->safe_until && s->cfg->safe_mode_seconds > 0 && ev->commit_ts &&
            (ev->kind == SL_EV_INSERT || ev->kind == SL_EV_UPDATE || ev->kind == SL_EV_DELETE)) {
            s->safe_until = ev->commit_ts + (uint64_t)s->cfg->safe_mode_seconds;
            s->host->log(s->ctx, SL_LOG_INFO, "safe mode for rows committed on the source until "
                         "%llu (%lld s after the first row of this run)",
                         (unsigned long long)s->safe_until, (long long)s->cfg->safe_mode_seconds);
        }
        if (ev->kind == SL_EV_HEARTBEAT) {
            if (ev->pos.file) {
                set_src(s, &ev->pos);
                hb = 1;
                hb_ts = ev->commit_ts;
            }
            continue;
        }
        data = 1;
        if (ev->commit_ts && !first_ts)
            first_ts = ev->commit_ts;
        if (ev->commit_ts > max_ts)
            max_ts = ev->commit_ts;
    }
    pthread_mutex_lock(&s->mu);
    if (data)
        s->synced = 0;
    s->busy_ts = first_ts;
    pthread_mutex_unlock(&s->mu);
    /* Events reach the workers as copies whose meta is the view on the target table (the batch
     * is not ours to change). The batch and its copies are held until no group holds them. */
    if (s->nheld == s->cheld) {
        size_t nc = s->cheld ? s->cheld * 2 : 8;
        struct held *h = realloc(s->held, nc * sizeof *h);
        if (!h)
            return s->host->fail(s->ctx, SL_ENOMEM, "out of memory");
        s->held = h;
        s->cheld = nc;
    }
    sl_event *copies = malloc((n ? n : 1) * sizeof *copies);
    if (!copies)
        return s->host->fail(s->ctx, SL_ENOMEM, "out of memory");
    s->host->batch_ref(b);
    s->held[s->nheld++] = (struct held){ b, copies };
    size_t ncopy = 0;
    while (i < n) {
        /* one unit: row events up to a COMMIT, or a DDL alone */
        sl_event *ev = &b->events[i];
        if (ev->kind == SL_EV_DDL) {
            i++;
            if ((ev->flags & SL_EVF_DROPPED) || shard_skip(s, ev)) {
                /* a standalone DDL ends a transaction; one inside an explicit transaction
                 * does not: its COMMIT moves the position */
                if (!s->in_txn)
                    set_pos(s, &ev->pos);
                continue;
            }
            if ((rc = refuse_statement_rows(s, ev)) < 0 || (rc = close_group(s, NULL, 0)) < 0)
                return rc;
            if ((s->pessimistic || s->optimistic) && (ev->flags & SL_EVF_SHARD_DDL))
                rc = shard_stmt(s, ev);
            else
                rc = apply_ddl(s, ev, 0);
            if (rc < 0)
                return rc;
            continue;
        }
        size_t j = i;
        sl_event *commit = NULL;
        /* A dropped DDL inside the unit (a statement inside an explicit transaction that the
         * filter dropped) does not end it: the transaction goes on after it. */
        while (j < n && (b->events[j].kind != SL_EV_DDL || (b->events[j].flags & SL_EVF_DROPPED))) {
            if (b->events[j].kind == SL_EV_BEGIN)
                s->in_txn = 1;
            if (b->events[j].kind == SL_EV_COMMIT) {
                s->in_txn = 0;
                commit = &b->events[j];
                j++;
                break;
            }
            j++;
        }
        int partial = !commit && (j < n ? 0 : !(b->flags & SL_BATCH_TXN_END));
        /* collect the unit's row events (pointers into the batch) */
        size_t cnt = 0;
        for (size_t k = i; k < j; k++)
            if (is_row(&b->events[k]) && !shard_skip(s, &b->events[k]))
                cnt++;
        sl_event **rows = cnt ? malloc(cnt * sizeof *rows) : NULL;
        if (cnt && !rows)
            return s->host->fail(s->ctx, SL_ENOMEM, "out of memory");
        cnt = 0;
        for (size_t k = i; k < j; k++) {
            /* shard_skip: a held shard's row, or one applied before a restart (above) */
            if (!is_row(&b->events[k]) || shard_skip(s, &b->events[k]))
                continue;
            sl_event *cp = &copies[ncopy++];
            *cp = b->events[k];
            cp->seq = ++s->copy_seq;
            sl_error verr = {0};
            if ((rc = sl__tcache_view(s->tc, s->coord, &b->events[k], &cp->meta, &verr)) < 0) {
                free(rows);
                return s->host->fail(s->ctx, rc, "%s", verr.msg);
            }
            /* a system-versioned table: only changes of current rows (tmeta.h) */
            int tv = sl_tmeta_versioned_row(cp->meta, cp->kind, cp->before, cp->after);
            if (tv == SL_TV_SKIP)
                continue;
            if (tv == SL_TV_DELETE) {
                cp->kind = SL_EV_DELETE;
                cp->after = NULL;
            }
            rows[cnt++] = cp;
        }
        if (partial && !s->serial) {
            /* a transaction continues in the next batch: commit what came before, then run it
             * alone on worker 0 in a transaction that stays open */
            if ((rc = close_group(s, NULL, 0)) < 0) {
                free(rows);
                return rc;
            }
            s->serial = 1;
        }
        rc = schedule_unit(s, rows, cnt, s->serial);
        free(rows);
        if (rc < 0)
            return rc;
        i = j;
        if (s->serial) {
            if (partial) {
                if ((rc = close_group(s, NULL, 1)) < 0)      /* apply now, keep it open */
                    return rc;
                /* Only a piece of a really big transaction counts: the reader also splits small
                 * transactions when its socket is momentarily empty, and the crash test means
                 * the big one (a kill there made e2e_kill_bigtxn flaky). */
                if (cnt >= 256)
                    failpoint("serial-open");
                s->serial = 1;
            } else {
                if ((rc = close_group(s, commit ? &commit->pos : &b->ckpt, 0)) < 0)
                    return rc;
                s->serial = 0;
            }
        } else if (commit) {
            set_pos(s, &commit->pos);
        }
    }
    s->host->metric_set(s->ctx, "target_meta_loads", (int64_t)sl__tcache_loads(s->tc));
    int synced = 0;
    /* A group grows over several batches while more input waits (DM's workers flush when their
     * channel is momentarily empty): fewer, bigger groups cost the target fewer commits, XA
     * round trips and statements. Nothing of it is on the target yet, and the checkpoint only
     * moves with it. */
    uint64_t rows = s->serial ? 0 : open_rows(s);
    int grow = rows > 0 && !hb && rows < (uint64_t)s->cfg->repl_batch * s->nworkers &&
               s->nheld < GROUP_BATCHES && held_bytes(s) < GROUP_BYTES &&
               SL_HOST_HAS(s->host, input_pending) &&
               s->host->input_pending(s->ctx) > 0;
    if ((b->flags & SL_BATCH_TXN_END) && !s->serial && grow) {
        set_pos(s, &b->ckpt);
        s->in_txn = 0;
    } else if ((b->flags & SL_BATCH_TXN_END) && !s->serial) {
        if ((rc = close_group(s, &b->ckpt, 0)) < 0)
            return rc;
        s->in_txn = 0;
        /* Progress without rows (filtered transactions, unselected tables, a heartbeat past
         * non-transaction events): write it at once when the source is idle (a heartbeat),
         * else at most every CKPT_EVERY_MS while batches flow. */
        if (moved(s) && (hb || mono_ms() - s->last_ckpt_ms >= CKPT_EVERY_MS) &&
            (rc = write_ckpt(s)) < 0)
            return rc;
        synced = caught_up(s);
    }
    pthread_mutex_lock(&s->mu);
    if (max_ts > s->last_ts)
        s->last_ts = max_ts;
    if (synced && hb_ts > s->last_ts)
        s->last_ts = hb_ts;     /* everything the source had at that time is applied */
    s->busy_ts = 0;
    s->synced = synced;
    pthread_mutex_unlock(&s->mu);
    if (!s->serial && open_rows(s) > 0 && !grow && (rc = close_group(s, NULL, 0)) < 0)
        return rc;
    if (s->serial || open_rows(s) == 0)
        release_held(s);
    return 0;
}

static int sink_flush(void *self)
{
    sink *s = self;
    if (!s->running || !s->coord)
        return 0;
    int rc = settle(s);
    if (rc < 0)
        return rc;
    if (!s->serial && open_rows(s) > 0 && (rc = close_group(s, NULL, 0)) < 0)
        return rc;
    if (!s->serial)
        release_held(s);
    if (s->serial) {
        /* half a transaction cannot be committed: roll it back, it replays from the checkpoint
         * (the applied position is still before it: it moves only at its COMMIT) */
        rollback_worker(&s->w[0]);
        s->w[0].nev = 0;
        s->serial = 0;
        s->in_txn = 0;
    }
    /* progress without rows not yet written (rate-limited in process): write it now */
    if (moved(s))
        return write_ckpt(s);
    return 0;
}

static void sink_stop(void *self)
{
    stop_workers(self);
}

static void sink_destroy(void *self)
{
    sink *s = self;
    if (!s)
        return;
    stop_workers(s);
    for (uint32_t i = 0; i < s->nworkers; i++) {
        worker *w = &s->w[i];
        free(w->evs);
        free(w->fk);
        free(w->stmts);
        sl_compactor_free(w->cmp);
        sl_sbuf_free(&w->sql);
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
    }
    free(s->w);
    sl_causality_free(s->caus);
    sl__tcache_free(s->tc);
    release_held(s);
    free(s->held);
    free(s->session_sql);
    free(s->keys);
    free(s->kstart);
    free(s->assign);
    sl_sbuf_free(&s->sql);
    free(s->ckpt_table);
    free(s->shard_table);
    holds_free(s);
    free(s->holds);
    free(s->file);
    free(s->gtid);
    free(s->ck_file);
    free(s->src_file);
    free(s->pend_file);
    pthread_mutex_destroy(&s->mu);
    s->host->free(s);
}

static void json_str(sl_sbuf *b, const char *x)
{
    sl_sbuf_adds(b, "\"");
    for (const char *p = x ? x : ""; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\')
            sl_sbuf_addf(b, "\\%c", c);
        else if (c < 0x20)
            sl_sbuf_addf(b, "\\u%04x", c);
        else
            sl_sbuf_add(b, p, 1);
    }
    sl_sbuf_adds(b, "\"");
}

static char *sink_status(void *self)
{
    sink *s = self;
    sl_sbuf b;
    sl_sbuf_init(&b);
    time_t now = time(NULL);
    long long total = atomic_load(&s->total_events);
    long long up = s->started && now > s->started ? (long long)(now - s->started) : 1;
    pthread_mutex_lock(&s->mu);
    long long recent;
    if (s->recent_at && now > s->recent_at)
        recent = (total - s->recent_base) / (long long)(now - s->recent_at);
    else
        recent = total / up;
    if (!s->recent_at || now - s->recent_at >= 10) {
        s->recent_at = now;
        s->recent_base = total;
    }
    char pos[600];
    snprintf(pos, sizeof pos, "(%s, %" PRIu64 ")", s->file ? s->file : "", s->pos);
    sl_sbuf_addf(&b, "{\"unit\":\"Sync\",\"total_events\":%lld,\"total_tps\":%lld,\"recent_tps\":%lld,"
                 "\"syncer_binlog\":", total, total / up, recent);
    json_str(&b, pos);
    sl_sbuf_adds(&b, ",\"syncer_binlog_gtid\":");
    json_str(&b, s->gtid ? s->gtid : "");
    /* Lag of what is applied: none when caught up with the source's last heartbeat; else the
     * age of the oldest event being applied, or of the newest applied one while waiting for
     * more. Unknown before any event (the binlog-reader's read lag shows then). */
    uint64_t lag_ts = s->synced ? 0 : s->busy_ts ? s->busy_ts : s->last_ts;
    long long behind = lag_ts && (long long)now > (long long)lag_ts ? (long long)now - (long long)lag_ts : 0;
    if (s->synced || lag_ts)
        sl_sbuf_addf(&b, ",\"seconds_behind_master\":%lld", behind);
    sl_sbuf_addf(&b, ",\"synced\":%s,\"blocking_ddls\":[],\"unresolved_groups\":[],"
                 "\"rows_not_found\":%lld,\"target_warnings\":%lld}", s->synced ? "true" : "false",
                 (long long)atomic_load(&s->counts[T_MISS]), (long long)atomic_load(&s->counts[T_WARN]));
    pthread_mutex_unlock(&s->mu);
    if (b.oom) {
        sl_sbuf_free(&b);
        return NULL;
    }
    char *r = s->host->alloc(b.len + 1);
    if (r)
        memcpy(r, b.p, b.len + 1);
    sl_sbuf_free(&b);
    return r;
}

/* DM's task delete without keep_meta (and start with remove_meta): the syncer checkpoint. */
static int sink_cleanup(void *self, unsigned what)
{
    sink *s = self;
    static const char *const tables[] = { "_syncer_checkpoint", "_syncer_sharding_meta",
                                          "_syncer_sessions", NULL };
    if (!(what & SL_CLEANUP_META))
        return 0;
    sl_error e = { 0 };
    MYSQL *db = connect_target(s, (unsigned)s->cfg->read_timeout, &e);
    int rc = 0;
    if (!db || sl_cleanup_meta_tables(db, s->cfg->meta_schema, s->cfg->task_name, tables, &e) != 0)
        rc = s->host->fail(s->ctx, e.code ? e.code : SL_EDB, "target: %s", e.msg);
    if (db)
        mysql_close(db);
    return rc;
}

SL_PLUGIN_EXPORT const sl_plugin_descriptor sluice_plugin = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_plugin_descriptor),
    .name = "mysql-sink",
    .kind = SL_PLUGIN_SINK,
    .description = "Applies row changes and DDL to a MySQL-compatible target with parallel workers, "
                   "exactly once (checkpoint in the same transaction, XA group commit)",
    .options = sink_options,
    .config_size = sizeof(sink_config),
    .create = sink_create,
    .start = sink_start,
    .process = sink_process,
    .flush = sink_flush,
    .stop = sink_stop,
    .destroy = sink_destroy,
    .status = sink_status,
    .cleanup = sink_cleanup,
};
