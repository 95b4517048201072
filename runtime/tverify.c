/*
 * tverify.c - one verification run of a task inside sluice-server (tverify.h). A driver thread
 * lists the task's tables (verify_task.c), adds the run's other worker threads and compares
 * (verify.c); the differing rows it is told of are kept, up to max_rows, for the status, and all
 * of them become the repair SQL file. Memory is bounded by the options, not the data: threads x
 * chunk_rows x SL_TVERIFY_ROW_CAP_MULT rows at most in flight, max_rows rows kept.
 */
#include "tverify.h"
#include "worker_int.h"
#include "verify.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "sluice/log.h"

#define MAX_THREADS 16

typedef enum { RUNNING, FINISHED, FAILED, STOPPED } run_state;
static const char *const STATE_NAMES[] = { "running", "finished", "failed", "stopped" };

struct sl_tverify {
    sl_worker      *w;
    char           *task, *repair_path;
    unsigned        threads;
    size_t          max_rows;
    sl_verify_task  vt;
    sl_verify_opts  o;
    sl_verify       v;
    FILE           *repair;
    sl_subtask    **subs;         /* the task's subtasks, by source (borrowed; they outlive the run) */
    size_t          nsubs;
    atomic_int      no_wait;      /* a checkpoint wait timed out once: use timed delays */
    atomic_ullong   waits_ok, waits_failed;   /* checkpoint waits that saw the position applied,
                                                 and those that could not tell */
    sl_thread      *driver;
    sl_thread      *th[MAX_THREADS];
    unsigned        nth;
    /* guarded by v.mu (the verify run's own lock, so on_diff needs no second one): */
    run_state       state;
    int             listing;      /* the tables are being listed */
    time_t          started, finished;
    json_t         *rows;         /* kept differing rows */
    unsigned long long rows_seen;
    char            errmsg[SL_ERRMSG_MAX];
};

static const char *iso(time_t t, char *buf, size_t n)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

/* verify.c's row callback, under v.mu: keep the row while there is room. */
static void on_diff(void *arg, const sl_verify_table *vt, const char *kind, const char *key,
                    const char *columns)
{
    sl_tverify *r = arg;
    r->rows_seen++;
    if (json_array_size(r->rows) >= r->max_rows)
        return;
    char tbl[400];
    snprintf(tbl, sizeof tbl, "%s.%s", vt->tschema, vt->ttable);
    json_t *o = json_pack("{s:s,s:s,s:s}", "table", tbl, "kind", kind, "key", key);
    if (o && columns)
        json_object_set_new(o, "columns", json_string(columns));
    json_array_append_new(r->rows, o);
}

/* Does the applied GTID set `done` hold position `pos`? MariaDB's domain-server-seq lists: for
 * each domain of pos, done has a GTID of that domain with a sequence number at least as high
 * (sequence numbers grow within a domain). -1 when either is not in that form (MySQL's
 * uuid:interval sets are not compared here: the caller falls back to timed delays). */
int sl__tverify_gtid_covers(const char *done, const char *pos)
{
    const char *p = pos;
    while (*p) {
        char *e;
        unsigned long d = strtoul(p, &e, 10), seq;
        if (*e != '-')
            return -1;
        strtoul(e + 1, &e, 10);
        if (*e != '-')
            return -1;
        seq = strtoul(e + 1, &e, 10);
        int hit = 0;
        for (const char *q = done; *q && !hit;) {
            char *f;
            unsigned long qd = strtoul(q, &f, 10), qs;
            if (*f != '-')
                return -1;
            strtoul(f + 1, &f, 10);
            if (*f != '-')
                return -1;
            qs = strtoul(f + 1, &f, 10);
            hit = qd == d && qs >= seq;
            q = f + strspn(f, ", \n");
        }
        if (!hit)
            return 0;
        p = e + strspn(e, ", \n");
    }
    return 1;
}

/* verify.c's wait_applied: read the source's GTID position now and wait until the subtask of
 * that source reports it applied (sync_status.syncer_binlog_gtid, which mysql-sink moves with
 * its checkpoint), at most SL_TVERIFY_APPLY_WAIT_S. Not syncing, no GTID, or a timeout: -1 (a
 * timeout also turns the waits off for the rest of the run, since the checkpoint evidently does
 * not follow every source transaction, e.g. ones on tables the task does not select). */
static int wait_position(sl_tverify *r, const sl_myconn_opts *src, MYSQL *sdb);

static int wait_applied(void *arg, const sl_myconn_opts *src, MYSQL *sdb)
{
    sl_tverify *r = arg;
    int rc = wait_position(r, src, sdb);
    atomic_fetch_add(rc == 0 ? &r->waits_ok : &r->waits_failed, 1);
    return rc;
}

static int wait_position(sl_tverify *r, const sl_myconn_opts *src, MYSQL *sdb)
{
    int i = sl_verify_task_source(&r->vt, src);
    if (i < 0 || (size_t)i >= r->nsubs || atomic_load(&r->no_wait))
        return SL_ENOTSUP;
    char pos[2048] = "";
    const char *q = "SELECT @@gtid_binlog_pos";
    if (mysql_real_query(sdb, q, (unsigned long)strlen(q)) != 0)
        return SL_EDB;
    MYSQL_RES *res = mysql_store_result(sdb);
    MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
    if (row && row[0])
        snprintf(pos, sizeof pos, "%s", row[0]);
    if (res)
        mysql_free_result(res);
    if (!pos[0])
        return SL_ENOTSUP;
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        json_t *st = sl_subtask_status(r->subs[i]);
        json_t *sync = json_object_get(st, "sync_status");
        int syncing = json_is_string(json_object_get(st, "unit")) &&
                      strcmp(json_string_value(json_object_get(st, "unit")), "Sync") == 0 &&
                      sl_subtask_stage(r->subs[i]) == SL_STAGE_RUNNING;
        const char *done = json_string_value(json_object_get(sync, "syncer_binlog_gtid"));
        int c = syncing && done ? sl__tverify_gtid_covers(done, pos) : -1;
        json_decref(st);
        if (c != 0)
            return c > 0 ? 0 : SL_ENOTSUP;
        if (atomic_load(&r->v.cancel))
            return SL_ESTOPPED;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec >= SL_TVERIFY_APPLY_WAIT_S) {
            atomic_store(&r->no_wait, 1);
            sl_log(SL_LOG_WARN, r->task, "verification: the task did not apply source position %s "
                   "within %d s; re-checks wait their timed delays from now on", pos,
                   SL_TVERIFY_APPLY_WAIT_S);
            return SL_ETIMEOUT;
        }
        struct timespec ts = { 0, 50 * 1000000L };
        nanosleep(&ts, NULL);
    }
}

static void work(void *arg)
{
    sl_verify_work(arg);
}

static void drive(void *arg)
{
    sl_tverify *r = arg;
    sl_error err = {0};
    mysql_thread_init();
    int rc = sl_verify_task_collect(&r->vt, &err);
    mysql_thread_end();
    if (rc == 0) {
        r->v.tables = r->vt.tables;
        r->v.ntables = r->vt.ntables;
        pthread_mutex_lock(&r->v.mu);
        r->listing = 0;
        pthread_mutex_unlock(&r->v.mu);
        /* the other workers are scheduler threads too, counted against max_threads; a run gets
         * fewer when the scheduler is full rather than failing */
        for (; r->nth + 1 < r->threads; r->nth++)
            if (sl_thread_spawn(r->w->sched, "verify", work, &r->v, &r->th[r->nth]) < 0)
                break;
        rc = sl_verify_work(&r->v);
        for (unsigned i = 0; i < r->nth; i++)
            sl_thread_join(r->th[i]);
        rc = r->v.rc;
        err = r->v.err;
    }
    if (r->repair && fclose(r->repair) != 0 && rc == 0)
        rc = sl_error_set(&err, SL_EIO, "cannot write %s: %s", r->repair_path, strerror(errno));
    r->repair = NULL;
    pthread_mutex_lock(&r->v.mu);
    run_state fin = rc == SL_ESTOPPED ? STOPPED : rc < 0 ? FAILED : FINISHED;
    r->state = fin;
    if (rc < 0)
        snprintf(r->errmsg, sizeof r->errmsg, "%s", err.msg[0] ? err.msg : sl_strerror(rc));
    r->finished = time(NULL);
    pthread_mutex_unlock(&r->v.mu);
    sl_log(rc < 0 && rc != SL_ESTOPPED ? SL_LOG_WARN : SL_LOG_INFO, r->task, "verification %s%s%s",
           STATE_NAMES[fin], rc < 0 ? ": " : "", rc < 0 ? err.msg : "");
}

static long long opt_int(json_t *o, const char *k, long long def)
{
    json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? json_integer_value(v) : def;
}

int sl_tverify_start(sl_worker *w, const sl_task_plan *plan, sl_subtask *const *subs,
                     const char *dir, sl_tverify **out, sl_error *err)
{
    *out = NULL;
    for (size_t i = 0; i < plan->nsubtasks; i++)
        if (!plan->subtasks[i].nphases)
            return sl_error_set(err, SL_ENOTSUP, "task %s does not compile any more: fix it first",
                                plan->name);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return sl_error_set(err, SL_EIO, "cannot create %s: %s", dir, strerror(errno));
    sl_tverify *r = calloc(1, sizeof *r);
    if (!r)
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    int rc = SL_ENOMEM;
    size_t plen = strlen(dir) + strlen(plan->name) + 8;
    r->w = w;
    r->subs = (sl_subtask **)subs;
    r->nsubs = subs ? plan->nsubtasks : 0;
    r->task = strdup(plan->name);
    r->repair_path = malloc(plen);
    r->rows = json_array();
    if (!r->task || !r->repair_path || !r->rows || sl_verify_task_init(&r->vt, plan->nsubtasks) < 0) {
        sl_error_set(err, rc, "out of memory");
        goto fail;
    }
    snprintf(r->repair_path, plen, "%s/%s.sql", dir, plan->name);
    json_t *vo = json_object_get(plan->task, "verify");
    r->threads = (unsigned)opt_int(vo, "threads", SL_TVERIFY_THREADS);
    r->threads = r->threads < 1 ? 1 : r->threads > MAX_THREADS ? MAX_THREADS : r->threads;
    r->max_rows = (size_t)opt_int(vo, "max_rows", SL_TVERIFY_MAX_ROWS);
    for (size_t i = 0; i < plan->nsubtasks; i++) {
        const sl_subtask_plan *sp = &plan->subtasks[i];
        const char *lua = NULL;
        /* a Lua hook may sit in any phase (the incremental one of task_mode all) */
        for (size_t p = 0; p < sp->nphases; p++)
            for (size_t k = 0; k < sp->phases[p]->nstages; k++)
                if (strcmp(sp->phases[p]->stages[k].plugin, "lua-hook") == 0)
                    lua = sp->phases[p]->stages[k].options_json;
        if ((rc = sl_verify_task_add_source(&r->vt, sp->source_name,
                                            sp->phases[0]->stages[0].options_json, lua, err)) < 0)
            goto fail;
    }
    if (!(r->repair = fopen(r->repair_path, "w"))) {
        rc = sl_error_set(err, SL_EIO, "cannot write %s: %s", r->repair_path, strerror(errno));
        goto fail;
    }
    json_t *cps = json_object_get(vo, "chunks_per_second");
    r->o = (sl_verify_opts){
        .target = &r->vt.target,
        .chunk_rows = (size_t)opt_int(vo, "chunk_rows", SL_TVERIFY_CHUNK_ROWS),
        .chunks_per_second = json_is_number(cps) ? json_number_value(cps) / r->threads : 0,
        .retries = (unsigned)opt_int(vo, "retries", SL_TVERIFY_RETRIES),
        .retry_ms = (unsigned)opt_int(vo, "retry_delay_ms", SL_TVERIFY_RETRY_MS),
        .backoff = 1,
        .repair = r->repair, .on_diff = on_diff, .diff_arg = r,
        .wait_applied = wait_applied, .wait_arg = r,
    };
    r->o.row_cap = r->o.chunk_rows * SL_TVERIFY_ROW_CAP_MULT;
    if ((rc = sl_verify_init(&r->v, &r->o, NULL, 0)) < 0) {
        sl_error_set(err, rc, "out of memory");
        goto fail;
    }
    r->state = RUNNING;
    r->listing = 1;
    r->started = time(NULL);
    if ((rc = sl_thread_spawn(w->sched, "verify", drive, r, &r->driver)) < 0) {
        sl_error_set(err, rc, "no scheduler thread left for the verification");
        sl_verify_destroy(&r->v);
        goto fail;
    }
    *out = r;
    return 0;
fail:
    if (r->repair)
        fclose(r->repair);
    sl_verify_task_free(&r->vt);
    json_decref(r->rows);
    free(r->repair_path);
    free(r->task);
    free(r);
    return rc;
}

int sl_tverify_running(sl_tverify *r)
{
    pthread_mutex_lock(&r->v.mu);
    int on = r->state == RUNNING;
    pthread_mutex_unlock(&r->v.mu);
    return on;
}

static const char *table_state(const sl_verify_table *t)
{
    switch (t->state) {
    case SL_VERIFY_RUNNING:  return "running";
    case SL_VERIFY_DONE:     return t->st.missing + t->st.extra + t->st.different ? "differs" : "equal";
    case SL_VERIFY_EXCLUDED: return "excluded";
    case SL_VERIFY_FAILED:   return "failed";
    default:                 return "pending";
    }
}

json_t *sl_tverify_status(sl_tverify *r)
{
    char b1[32], b2[32];
    pthread_mutex_lock(&r->v.mu);
    json_t *tables = json_array();
    unsigned long long done = 0, equal = 0;
    for (size_t i = 0; !r->listing && i < r->vt.ntables; i++) {
        const sl_verify_table *t = &r->vt.tables[i];
        char tn[400];
        snprintf(tn, sizeof tn, "%s.%s", t->tschema, t->ttable);
        json_t *srcs = json_array();
        for (size_t j = 0; j < t->nsrc; j++) {
            char sn[400];
            snprintf(sn, sizeof sn, "%s.%s", t->src[j].schema, t->src[j].table);
            json_array_append_new(srcs, json_string(sn));
        }
        json_t *o = json_pack("{s:s,s:o,s:s,s:I,s:I,s:I,s:I,s:I,s:I}", "target", tn, "sources",
                              srcs, "state", table_state(t), "rows", (json_int_t)t->st.rows,
                              "chunks", (json_int_t)t->st.chunks, "chunks_differing",
                              (json_int_t)t->st.chunks_differing, "missing",
                              (json_int_t)t->st.missing, "extra", (json_int_t)t->st.extra,
                              "different", (json_int_t)t->st.different);
        if (o && t->excluded)
            json_object_set_new(o, "excluded_reason", json_string(t->excluded));
        json_array_append_new(tables, o);
        done += t->state >= SL_VERIFY_DONE;
        equal += t->state == SL_VERIFY_DONE && !(t->st.missing + t->st.extra + t->st.different);
    }
    const sl_verify_stats *s = &r->v.stats;
    json_t *st = json_pack(
        "{s:s,s:s,s:s,s:b,s:o,s:{s:I,s:I,s:I,s:I,s:I},s:{s:I,s:I,s:I,s:I,s:I},s:o,s:O,s:I,s:b,s:s}",
        "task", r->task, "state", STATE_NAMES[r->state], "started_at", iso(r->started, b1, sizeof b1),
        "listing_tables", r->listing, "tables", tables,
        "progress", "tables", (json_int_t)(r->listing ? 0 : r->vt.ntables), "tables_done",
        (json_int_t)done, "rows", (json_int_t)s->rows, "chunks", (json_int_t)s->chunks,
        "chunks_differing", (json_int_t)s->chunks_differing,
        "result", "missing", (json_int_t)s->missing, "extra", (json_int_t)s->extra, "different",
        (json_int_t)s->different, "excluded", (json_int_t)s->excluded, "equal", (json_int_t)equal,
        "finished_at", r->finished ? json_string(iso(r->finished, b2, sizeof b2)) : json_null(),
        "rows", r->rows, "rows_listed_max", (json_int_t)r->max_rows,
        "rows_truncated", r->rows_seen > json_array_size(r->rows), "repair_sql", r->repair_path);
    if (st)
        json_object_set_new(st, "rechecks", json_pack("{s:I,s:I}", "after_checkpoint",
                            (json_int_t)atomic_load(&r->waits_ok), "checkpoint_unknown",
                            (json_int_t)atomic_load(&r->waits_failed)));
    if (st && r->errmsg[0])
        json_object_set_new(st, "error_msg", json_string(r->errmsg));
    pthread_mutex_unlock(&r->v.mu);
    return st;
}

void sl_tverify_free(sl_tverify *r)
{
    if (!r)
        return;
    sl_verify_cancel(&r->v);
    sl_thread_join(r->driver);
    sl_verify_destroy(&r->v);
    sl_verify_task_free(&r->vt);
    json_decref(r->rows);
    free(r->repair_path);
    free(r->task);
    free(r);
}
