/*
 * harness.h - runs the binlog-reader plugin in-process against the sandbox source with the
 * core's real host table, and records what it emits (a test sink in the form of an emit hook).
 */
#ifndef SLUICE_TEST_BINLOG_HARNESS_H
#define SLUICE_TEST_BINLOG_HARNESS_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <mysql.h>

#include "sluice/runtime.h"
#include "host.h"   /* core-internal: sl__host, sl__ctx_new (tests may) */

typedef struct rd {
    const sl_plugin_descriptor *d;
    sl_registry *reg;
    void *cfg, *self;
    sl_ctx *ctx;
    atomic_int stop;
    pthread_t th;
    int running, run_rc;
    /* the recording sink */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int keep;                 /* keep batches (else count and drop them) */
    sl_batch **v;
    size_t n, cap;
    uint64_t nbatches, nevents, nrows, txn_end_batches;
    uint64_t max_batch_events;
    int failed;
    /* blocks emit while set (simulates a slow sink) */
    int hold;
} rd;

static __attribute__((unused)) const char *env_or_die(const char *k)
{
    const char *v = getenv(k);
    if (!v || !*v) {
        fprintf(stderr, "missing %s: run `eval \"$(scripts/sandbox env)\"` first\n", k);
        exit(1);
    }
    return v;
}

static __attribute__((unused)) MYSQL *src_connect(void)
{
    MYSQL *db = mysql_init(NULL);
    if (!mysql_real_connect(db, env_or_die("SLUICE_SOURCE_HOST"), env_or_die("SLUICE_SOURCE_USER"),
                            getenv("SLUICE_SOURCE_PASSWORD"), NULL,
                            (unsigned)atoi(env_or_die("SLUICE_SOURCE_PORT")), NULL, 0)) {
        fprintf(stderr, "source: %s\n", mysql_error(db));
        exit(1);
    }
    mysql_set_character_set(db, "utf8mb4");
    return db;
}

static __attribute__((unused)) MYSQL *tgt_connect(void)
{
    MYSQL *db = mysql_init(NULL);
    if (!mysql_real_connect(db, env_or_die("SLUICE_TARGET_HOST"), env_or_die("SLUICE_TARGET_USER"),
                            getenv("SLUICE_TARGET_PASSWORD"), NULL,
                            (unsigned)atoi(env_or_die("SLUICE_TARGET_PORT")), NULL, 0)) {
        fprintf(stderr, "target: %s\n", mysql_error(db));
        exit(1);
    }
    return db;
}

static __attribute__((unused)) void sqlf(MYSQL *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static __attribute__((unused)) void sqlf(MYSQL *db, const char *fmt, ...)
{
    char *q;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&q, fmt, ap) < 0)
        exit(1);
    va_end(ap);
    if (mysql_query(db, q)) {
        fprintf(stderr, "SQL failed: %s: %s\n", q, mysql_error(db));
        exit(1);
    }
    MYSQL_RES *r = mysql_store_result(db);
    if (r)
        mysql_free_result(r);
    free(q);
}

static __attribute__((unused)) void master_pos(MYSQL *db, char *file, size_t cap, unsigned long long *pos)
{
    if (mysql_query(db, "SHOW MASTER STATUS")) {
        fprintf(stderr, "%s\n", mysql_error(db));
        exit(1);
    }
    MYSQL_RES *r = mysql_store_result(db);
    MYSQL_ROW row = mysql_fetch_row(r);
    snprintf(file, cap, "%s", row[0]);
    *pos = strtoull(row[1], NULL, 10);
    mysql_free_result(r);
}

static __attribute__((unused)) int cap_emit(void *owner, sl_ctx *ctx, sl_batch *b)
{
    rd *r = owner;
    pthread_mutex_lock(&r->mu);
    while (r->hold && !atomic_load(&r->stop))
        pthread_cond_wait(&r->cv, &r->mu);
    r->nbatches++;
    r->nevents += b->n;
    if (b->n > r->max_batch_events)
        r->max_batch_events = b->n;
    if (b->flags & SL_BATCH_TXN_END)
        r->txn_end_batches++;
    for (uint32_t i = 0; i < b->n; i++)
        if (b->events[i].kind <= SL_EV_DELETE)
            r->nrows++;
    if (r->keep) {
        if (r->n == r->cap) {
            r->cap = r->cap ? r->cap * 2 : 64;
            r->v = realloc(r->v, r->cap * sizeof *r->v);
        }
        r->v[r->n++] = b;
    } else {
        sl__batch_unref(b);
    }
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return atomic_load(&r->stop) ? SL_ESTOPPED : 0;
}

static __attribute__((unused)) void cap_failed(void *owner, sl_ctx *ctx, int code)
{
    rd *r = owner;
    pthread_mutex_lock(&r->mu);
    r->failed = code;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static __attribute__((unused)) void *run_thread(void *arg)
{
    rd *r = arg;
    r->run_rc = r->d->run(r->self);
    pthread_mutex_lock(&r->mu);
    r->running = 0;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* Options JSON for the sandbox with extra members (a JSON fragment starting with ','). */
static __attribute__((unused)) char *rd_options(const char *task, const char *extra)
{
    char *s;
    if (asprintf(&s,
                 "{\"source_host\":\"%s\",\"source_port\":%s,\"source_user\":\"%s\","
                 "\"source_password\":\"%s\",\"target_host\":\"%s\",\"target_port\":%s,"
                 "\"target_user\":\"%s\",\"target_password\":\"%s\",\"task_name\":\"%s\","
                 "\"source_name\":\"src1\",\"heartbeat_ms\":200%s}",
                 env_or_die("SLUICE_SOURCE_HOST"), env_or_die("SLUICE_SOURCE_PORT"),
                 env_or_die("SLUICE_SOURCE_USER"), getenv("SLUICE_SOURCE_PASSWORD"),
                 env_or_die("SLUICE_TARGET_HOST"), env_or_die("SLUICE_TARGET_PORT"),
                 env_or_die("SLUICE_TARGET_USER"), getenv("SLUICE_TARGET_PASSWORD"), task,
                 extra) < 0)
        exit(1);
    return s;
}

/* Create, start (start() result returned) and, if it succeeded, run the reader on a thread. */
static __attribute__((unused)) int rd_open(rd *r, const char *options_json, int keep)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->keep = keep;
    sl_error err = { 0 };
    if (sl_registry_new(&r->reg) || sl_registry_load(r->reg, SLUICE_PLUGIN_PATH, &err)) {
        fprintf(stderr, "load: %s\n", err.msg);
        exit(1);
    }
    r->d = sl_registry_find(r->reg, "binlog-reader");
    if (sl_options_fill(r->d, options_json, &r->cfg, &err)) {
        fprintf(stderr, "options: %s\n", err.msg);
        exit(1);
    }
    sl__ctx_hooks hooks = { .owner = r, .emit = cap_emit, .failed = cap_failed };
    atomic_init(&r->stop, 0);
    r->ctx = sl__ctx_new("test/binlog-reader", NULL, NULL, &r->stop, &hooks);
    if (r->d->create(sl__host(), r->ctx, r->cfg, &r->self)) {
        fprintf(stderr, "create failed\n");
        exit(1);
    }
    int rc = r->d->start(r->self);
    if (rc == 0) {
        r->running = 1;
        pthread_create(&r->th, NULL, run_thread, r);
    }
    return rc;
}

static __attribute__((unused)) void rd_error(rd *r, sl_error *e) { sl__ctx_error(r->ctx, e); }

static __attribute__((unused)) void rd_close(rd *r)
{
    pthread_mutex_lock(&r->mu);
    atomic_store(&r->stop, 1);
    r->hold = 0;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    if (r->th)
        pthread_join(r->th, NULL);
    if (r->d->stop)
        r->d->stop(r->self);
    r->d->destroy(r->self);
    for (size_t i = 0; i < r->n; i++)
        sl__batch_unref(r->v[i]);
    free(r->v);
    sl__ctx_free(r->ctx);
    sl_options_free(r->d, r->cfg);
    sl_registry_free(r->reg);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
}

/* Wait (up to secs) until pred(r, ud) holds or the reader failed/stopped. Returns pred's value. */
static __attribute__((unused)) int rd_wait(rd *r, int (*pred)(rd *, void *), void *ud, int secs)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += secs;
    pthread_mutex_lock(&r->mu);
    int ok;
    while (!(ok = pred(r, ud)) && !r->failed && r->running) {
        if (pthread_cond_timedwait(&r->cv, &r->mu, &dl) != 0)
            break;
    }
    ok = pred(r, ud);
    pthread_mutex_unlock(&r->mu);
    return ok;
}

/* Iterate kept events. */
#define FOR_EVENTS(r, ev) \
    for (size_t _bi = 0; _bi < (r)->n; _bi++) \
        for (sl_event *ev = (r)->v[_bi]->events; ev < (r)->v[_bi]->events + (r)->v[_bi]->n; ev++)

static __attribute__((unused)) int col_index(const sl_event *ev, const char *name)
{
    for (uint32_t i = 0; ev->meta && i < ev->meta->ncols; i++)
        if (!strcmp(ev->meta->cols[i].name, name))
            return (int)i;
    return -1;
}

#endif
