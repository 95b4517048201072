/*
 * testlib.c - the integration tests' shared harness (see testlib.h): failures and checks, the
 * sandbox environment, SQL helpers, source/target comparison and in-process pipelines.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "testlib.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef TL_PLUGIN_DIR
#error "TL_PLUGIN_DIR must be defined: the plugin output dir of the build"
#endif

int tl_failures;
static tl_fail_hook fail_hook;

/* ---- failing and checking --------------------------------------------------------------------- */

void tl_set_fail_hook(tl_fail_hook hook)
{
    fail_hook = hook;
}

void tl_fail(const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (fail_hook)
        fail_hook(msg);
    fprintf(stderr, "FAIL: %s\n", msg);
    exit(1);
}

void tl_check_failed(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    tl_failures++;
    fprintf(stderr, "FAIL %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int tl_finish(const char *name)
{
    if (tl_failures) {
        fprintf(stderr, "%d check(s) failed\n", tl_failures);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}

/* ---- environment ------------------------------------------------------------------------------ */

const char *tl_env(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v)
        tl_fail("%s is not set: the test needs the sandbox (eval \"$(scripts/sandbox env)\")", name);
    return v;
}

const char *tl_env_or(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v ? v : def;
}

static const char *who_env(const char *who, const char *what, int required)
{
    char k[64];
    snprintf(k, sizeof k, "SLUICE_%s_%s", who, what);
    return required ? tl_env(k) : tl_env_or(k, "");
}

char *tl_conn_json(const char *who, char *out, size_t n)
{
    const char *p = strcmp(who, "SOURCE") == 0 ? "source" : "target";
    snprintf(out, n, "\"%s_host\":\"%s\",\"%s_port\":%s,\"%s_user\":\"%s\",\"%s_password\":\"%s\"", p,
             who_env(who, "HOST", 1), p, who_env(who, "PORT", 1), p, who_env(who, "USER", 1), p,
             who_env(who, "PASSWORD", 0));
    return out;
}

/* ---- databases -------------------------------------------------------------------------------- */

MYSQL *tl_try_connect(const char *who, char *err, size_t n)
{
    const char *host = who_env(who, "HOST", 1), *user = who_env(who, "USER", 1);
    unsigned port = (unsigned)atoi(who_env(who, "PORT", 1));
    MYSQL *db = mysql_init(NULL);
    unsigned to = 10;
    unsigned long maxp = 1024UL * 1024 * 1024;
    mysql_options(db, MYSQL_OPT_CONNECT_TIMEOUT, &to);
    mysql_options(db, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    mysql_optionsv(db, MYSQL_OPT_MAX_ALLOWED_PACKET, &maxp);
    if (!mysql_real_connect(db, host, user, who_env(who, "PASSWORD", 0), NULL, port, NULL,
                            CLIENT_MULTI_STATEMENTS)) {
        snprintf(err, n, "%s", mysql_error(db));
        mysql_close(db);
        return NULL;
    }
    return db;
}

MYSQL *tl_connect(const char *who)
{
    char err[512];
    MYSQL *db = tl_try_connect(who, err, sizeof err);
    if (!db)
        tl_fail("connect to the %s: %s", who, err);
    return db;
}

static char *vformat(const char *fmt, va_list ap)
{
    char *q;
    if (vasprintf(&q, fmt, ap) < 0)
        tl_fail("out of memory");
    return q;
}

/* Fails with the server's error for q; frees q first (the hook may longjmp). */
static void sql_failed(MYSQL *db, char *q)
{
    char msg[1024];
    snprintf(msg, sizeof msg, "%s\n  in: %.400s", mysql_error(db), q);
    free(q);
    tl_fail("%s", msg);
}

void tl_sql(MYSQL *db, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *q = vformat(fmt, ap);
    va_end(ap);
    if (mysql_real_query(db, q, strlen(q)) != 0)
        sql_failed(db, q);
    do {
        MYSQL_RES *r = mysql_store_result(db);
        if (r)
            mysql_free_result(r);
        if (mysql_errno(db))
            sql_failed(db, q);
    } while (mysql_next_result(db) == 0);
    if (mysql_errno(db))
        sql_failed(db, q);
    free(q);
}

/* The value query; on an SQL error fails (strict) or returns "ERROR <message>". */
static const char *vvalue(MYSQL *db, int col, int strict, const char *fmt, va_list ap)
{
    static __thread char out[4][16384];
    static __thread unsigned k;
    char *o = out[k++ & 3];
    o[0] = '\0';
    char *q = vformat(fmt, ap);
    if (mysql_real_query(db, q, strlen(q)) != 0) {
        if (strict)
            sql_failed(db, q);
        snprintf(o, sizeof out[0], "ERROR %s", mysql_error(db));
        free(q);
        return o;
    }
    free(q);
    MYSQL_RES *r = mysql_store_result(db);
    MYSQL_ROW row = r ? mysql_fetch_row(r) : NULL;
    if (row && (unsigned)col < mysql_num_fields(r) && row[col])
        snprintf(o, sizeof out[0], "%s", row[col]);
    if (r)
        mysql_free_result(r);
    while (mysql_next_result(db) == 0) {
        r = mysql_store_result(db);
        if (r)
            mysql_free_result(r);
    }
    return o;
}

const char *tl_str(MYSQL *db, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const char *s = vvalue(db, 0, 1, fmt, ap);
    va_end(ap);
    return s;
}

const char *tl_col(MYSQL *db, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const char *s = vvalue(db, col, 1, fmt, ap);
    va_end(ap);
    return s;
}

const char *tl_peek(MYSQL *db, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const char *s = vvalue(db, col, 0, fmt, ap);
    va_end(ap);
    return s;
}

long long tl_int(MYSQL *db, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const char *s = vvalue(db, 0, 1, fmt, ap);
    va_end(ap);
    return *s ? atoll(s) : -1;
}

void tl_master_pos(MYSQL *src, char *file, size_t n, unsigned long long *pos)
{
    if (mysql_query(src, "SHOW MASTER STATUS") != 0)
        tl_fail("SHOW MASTER STATUS: %s", mysql_error(src));
    MYSQL_RES *r = mysql_store_result(src);
    MYSQL_ROW row = r ? mysql_fetch_row(r) : NULL;
    if (!row || !row[0] || !row[1]) {
        if (r)
            mysql_free_result(r);
        tl_fail("SHOW MASTER STATUS returned nothing: is log-bin on?");
    }
    snprintf(file, n, "%s", row[0]);
    *pos = strtoull(row[1], NULL, 10);
    mysql_free_result(r);
}

long long tl_checksum(MYSQL *db, const char *table)
{
    const char *v = tl_col(db, 1, "CHECKSUM TABLE %s EXTENDED", table);
    if (!*v)
        tl_fail("CHECKSUM TABLE %s returned no checksum (is the table missing?)", table);
    return atoll(v);
}

/* At most this many differing rows are reported by one comparison. */
#define MAX_REPORTED 5

long long tl_compare_rows(MYSQL *src, MYSQL *dst, const char *qsrc, const char *qdst, const char *what)
{
    MYSQL *db[2] = { src, dst };
    const char *q[2] = { qsrc, qdst };
    MYSQL_RES *r[2] = { NULL, NULL };
    for (int i = 0; i < 2; i++) {
        tl_sql(db[i], "SET SESSION character_set_results = binary, SESSION time_zone = '+00:00'");
        /* streamed, unless both queries go to one connection (which holds one result at a time) */
        if (mysql_real_query(db[i], q[i], strlen(q[i])) != 0 ||
            !(r[i] = src == dst ? mysql_store_result(db[i]) : mysql_use_result(db[i]))) {
            tl_check_failed(__FILE__, __LINE__, "%s: %s: %s in %s", what, i ? "target" : "source",
                            mysql_error(db[i]), q[i]);
            if (i)
                mysql_free_result(r[0]);
            for (int j = 0; j < 2; j++)
                tl_sql(db[j], "SET SESSION character_set_results = utf8mb4");
            return -1;
        }
    }
    unsigned nf = mysql_num_fields(r[0]);
    long long n = 0, bad = 0;
    if (nf != mysql_num_fields(r[1])) {
        tl_check_failed(__FILE__, __LINE__, "%s: %u columns on the source, %u on the target", what, nf,
                        mysql_num_fields(r[1]));
        bad++;
    }
    for (; !bad || bad < MAX_REPORTED;) {
        MYSQL_ROW ra = mysql_fetch_row(r[0]), rb = mysql_fetch_row(r[1]);
        if (!ra || !rb) {
            if (ra || rb) {
                tl_check_failed(__FILE__, __LINE__, "%s: row counts differ after %lld rows (the %s has more)",
                                what, n, ra ? "source" : "target");
                bad++;
            }
            break;
        }
        unsigned long *la = mysql_fetch_lengths(r[0]), *lb = mysql_fetch_lengths(r[1]);
        for (unsigned i = 0; i < nf && i < mysql_num_fields(r[1]); i++) {
            if (!ra[i] != !rb[i] || (ra[i] && (la[i] != lb[i] || memcmp(ra[i], rb[i], la[i]) != 0))) {
                tl_check_failed(__FILE__, __LINE__,
                                "%s: row %lld column %s differs: source %lu bytes '%.*s', target %lu bytes '%.*s'",
                                what, n, mysql_fetch_field_direct(r[0], i)->name, ra[i] ? la[i] : 0,
                                ra[i] ? (int)(la[i] > 60 ? 60 : la[i]) : 4, ra[i] ? ra[i] : "NULL",
                                rb[i] ? lb[i] : 0, rb[i] ? (int)(lb[i] > 60 ? 60 : lb[i]) : 4,
                                rb[i] ? rb[i] : "NULL");
                bad++;
                break;
            }
        }
        n++;
    }
    /* read what is left so that both connections are usable again */
    for (int i = 0; i < 2; i++) {
        while (mysql_fetch_row(r[i]))
            ;
        mysql_free_result(r[i]);
    }
    for (int i = 0; i < 2; i++)
        tl_sql(db[i], "SET SESSION character_set_results = utf8mb4");
    return bad ? -1 : n;
}

int tl_syncer_ckpt(MYSQL *dst, const char *task, char *file, size_t n, unsigned long long *pos)
{
    const char *f = tl_peek(dst, 0, "SELECT binlog_name FROM dm_meta.`%s_syncer_checkpoint` WHERE worker = 0", task);
    const char *p = tl_peek(dst, 0, "SELECT binlog_pos FROM dm_meta.`%s_syncer_checkpoint` WHERE worker = 0", task);
    if (!*f || !*p || strncmp(f, "ERROR", 5) == 0 || strncmp(p, "ERROR", 5) == 0)
        return 0;
    snprintf(file, n, "%s", f);
    *pos = strtoull(p, NULL, 10);
    return 1;
}

/* ---- pipelines -------------------------------------------------------------------------------- */

const char *tl_plugin_dir(void)
{
    return TL_PLUGIN_DIR;
}

sl_registry *tl_registry(const char *const *plugins, const sl_plugin_descriptor *const *descs)
{
    sl_registry *reg;
    sl_error e = { 0 };
    if (sl_registry_new(&reg) != 0)
        tl_fail("registry: out of memory");
    for (size_t i = 0; descs && descs[i]; i++)
        if (sl_registry_add(reg, descs[i], &e) < 0)
            tl_fail("registry: %s: %s", descs[i]->name, e.msg);
    for (size_t i = 0; plugins && plugins[i]; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/sluice-%s.so", TL_PLUGIN_DIR, plugins[i]);
        if (sl_registry_load(reg, path, &e) < 0)
            tl_fail("registry: %s", e.msg);
    }
    return reg;
}

void tl_pipe_new(tl_pipe *r, sl_registry *reg, const char *name, const sl_stage_spec *stages, uint32_t n,
                 int start)
{
    sl_error e = { 0 };
    sl_edge_spec ed[16];
    if (n < 1 || n > 16)
        tl_fail("tl_pipe_new: %u stages", n);
    for (uint32_t i = 0; i + 1 < n; i++)
        ed[i] = (sl_edge_spec){ i, i + 1 };
    sl_pipeline_spec spec = { .name = (char *)name, .nstages = n, .stages = (sl_stage_spec *)stages,
                              .nedges = n - 1, .edges = ed };
    r->reg = reg;
    r->p = NULL;
    if (sl_scheduler_new(NULL, &r->sched) != 0)
        tl_fail("scheduler: out of memory");
    if (sl_pipeline_new(r->sched, r->reg, &spec, NULL, &r->p, &e) < 0)
        tl_fail("pipeline %s: %s", name, e.msg);
    if (start && sl_pipeline_start(r->p) < 0) {
        sl_pipeline_error(r->p, &e);
        tl_fail("pipeline %s: start: %s", name, e.msg);
    }
}

void tl_pipe_free(tl_pipe *r)
{
    if (r->p) {
        sl_pipeline_stop(r->p);
        sl_pipeline_free(r->p);
    }
    sl_scheduler_free(r->sched);
    sl_registry_free(r->reg);
    memset(r, 0, sizeof *r);
}

sl_stage tl_pipe_run(tl_pipe *r, int timeout_ms, sl_error *err)
{
    sl_stage st = sl_pipeline_wait(r->p, timeout_ms);
    sl_pipeline_error(r->p, err);
    sl_pipeline_free(r->p);
    r->p = NULL;
    tl_pipe_free(r);
    return st;
}

int tl_wait_ckpt(tl_pipe *r, MYSQL *dst, const char *task, const char *file, unsigned long long pos,
                 int deadline_s)
{
    for (int t = 0; t < deadline_s * 10; t++) {
        if (sl_pipeline_stage(r->p) != SL_STAGE_RUNNING)
            return 0;
        char f[512];
        unsigned long long cp;
        if (tl_syncer_ckpt(dst, task, f, sizeof f, &cp) && strcmp(f, file) == 0 && cp >= pos)
            return 1;
        usleep(100000);
    }
    return 0;
}

long long tl_pipe_metric(tl_pipe *r, const char *name)
{
    char *st = sl_pipeline_status_json(r->p);
    long long v = -1;
    char key[128];
    snprintf(key, sizeof key, "\"%s\":", name);
    const char *at = st ? strstr(st, key) : NULL;
    if (at)
        v = atoll(at + strlen(key));
    free(st);
    return v;
}
