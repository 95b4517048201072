/*
 * harness.c - the end-to-end tests' helpers (see harness.h): sluice-server as a child process
 * and its REST API, the sandbox databases, background writers, catch-up waits and the
 * source/target comparison.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SERVER_BIN
#error SERVER_BIN must be defined (path of sluice-server)
#endif
#ifndef PLUGIN_DIR
#define PLUGIN_DIR ""
#endif

static e2e_server *g_server;      /* the last started server: its log is shown on failure */
static char g_work[512];
static int g_starts;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void tail_file(const char *path, int lines)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char **ring = calloc((size_t)lines, sizeof *ring);
    char buf[2048];
    int n = 0;
    while (fgets(buf, sizeof buf, f)) {
        free(ring[n % lines]);
        ring[n % lines] = strdup(buf);
        n++;
    }
    fclose(f);
    fprintf(stderr, "---- last lines of %s ----\n", path);
    for (int i = n > lines ? n - lines : 0; i < n; i++)
        fputs(ring[i % lines], stderr);
    for (int i = 0; i < lines; i++)
        free(ring[i]);
    free(ring);
}

static void (*g_fail_hook)(void);

void e2e_on_fail(void (*hook)(void))
{
    g_fail_hook = hook;
}

void e2e_fail(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "FAIL: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (g_server && g_server->log[0])
        tail_file(g_server->log, 40);
    if (g_server && g_server->pid > 0) {
        kill(g_server->pid, SIGKILL);
        waitpid(g_server->pid, NULL, 0);
    }
    if (g_work[0])
        fprintf(stderr, "(kept %s)\n", g_work);
    /* what the test changed on a shared server (a global setting) is put back even so */
    if (g_fail_hook) {
        void (*hook)(void) = g_fail_hook;
        g_fail_hook = NULL;     /* a failure inside the hook does not run it again */
        hook();
    }
    /* _exit: the failure is the report; LeakSanitizer would add the objects still in use. */
    fflush(NULL);
    _exit(1);
}

const char *e2e_env(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v)
        e2e_fail("%s is not set: the test needs the sandbox (eval \"$(scripts/sandbox env)\")", name);
    return v;
}

const char *e2e_workdir(void)
{
    if (!g_work[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(g_work, sizeof g_work, "%s/sluice-e2e.XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(g_work))
            e2e_fail("mkdtemp %s: %s", g_work, strerror(errno));
    }
    return g_work;
}

void e2e_finish(const char *name)
{
    if (g_work[0] && getenv("SLUICE_E2E_KEEP"))
        printf("  (kept %s: SLUICE_E2E_KEEP is set)\n", g_work);
    else if (g_work[0]) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_work);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", g_work);
    }
    printf("PASS %s\n", name);
}

/* ---- databases ---------------------------------------------------------------------------- */

static MYSQL *try_connect(const char *who, char *err, size_t n)
{
    char k[64];
    snprintf(k, sizeof k, "SLUICE_%s_HOST", who);
    const char *host = e2e_env(k);
    snprintf(k, sizeof k, "SLUICE_%s_PORT", who);
    unsigned port = (unsigned)atoi(e2e_env(k));
    snprintf(k, sizeof k, "SLUICE_%s_USER", who);
    const char *user = e2e_env(k);
    snprintf(k, sizeof k, "SLUICE_%s_PASSWORD", who);
    const char *pass = getenv(k);
    MYSQL *db = mysql_init(NULL);
    unsigned to = 10;
    mysql_options(db, MYSQL_OPT_CONNECT_TIMEOUT, &to);
    mysql_options(db, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    if (!mysql_real_connect(db, host, user, pass ? pass : "", NULL, port, NULL, CLIENT_MULTI_STATEMENTS)) {
        snprintf(err, n, "%s", mysql_error(db));
        mysql_close(db);
        return NULL;
    }
    return db;
}

MYSQL *e2e_connect(const char *who)
{
    char err[512];
    MYSQL *db = try_connect(who, err, sizeof err);
    if (!db)
        e2e_fail("connect to the %s: %s", who, err);
    return db;
}

static void drain(MYSQL *db)
{
    do {
        MYSQL_RES *r = mysql_store_result(db);
        if (r)
            mysql_free_result(r);
    } while (mysql_next_result(db) == 0);
}

void e2e_sql(MYSQL *db, const char *fmt, ...)
{
    char *q;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&q, fmt, ap) < 0)
        e2e_fail("out of memory");
    va_end(ap);
    if (mysql_real_query(db, q, strlen(q)) != 0)
        e2e_fail("%s\n  in: %.400s", mysql_error(db), q);
    do {
        MYSQL_RES *r = mysql_store_result(db);
        if (r)
            mysql_free_result(r);
        if (mysql_errno(db))
            e2e_fail("%s\n  in: %.400s", mysql_error(db), q);
    } while (mysql_next_result(db) == 0);
    if (mysql_errno(db))
        e2e_fail("%s\n  in: %.400s", mysql_error(db), q);
    free(q);
}

static const char *vstr(MYSQL *db, int col, const char *fmt, va_list ap)
{
    static __thread char out[4][1024];
    static __thread int k;
    char *o = out[k++ & 3], *q;
    o[0] = '\0';
    if (vasprintf(&q, fmt, ap) < 0)
        e2e_fail("out of memory");
    if (mysql_real_query(db, q, strlen(q)) != 0)
        e2e_fail("%s\n  in: %.400s", mysql_error(db), q);
    MYSQL_RES *r = mysql_store_result(db);
    MYSQL_ROW row = r ? mysql_fetch_row(r) : NULL;
    if (row && row[col])
        snprintf(o, 1024, "%s", row[col]);
    if (r)
        mysql_free_result(r);
    drain(db);
    free(q);
    return o;
}

const char *e2e_str(MYSQL *db, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const char *s = vstr(db, 0, fmt, ap);
    va_end(ap);
    return s;
}

long long e2e_int(MYSQL *db, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const char *s = vstr(db, 0, fmt, ap);
    va_end(ap);
    return *s ? atoll(s) : -1;
}

void e2e_master_pos(MYSQL *src, char *file, size_t n, unsigned long long *pos)
{
    if (mysql_query(src, "SHOW MASTER STATUS") != 0)
        e2e_fail("SHOW MASTER STATUS: %s", mysql_error(src));
    MYSQL_RES *r = mysql_store_result(src);
    MYSQL_ROW row = r ? mysql_fetch_row(r) : NULL;
    if (!row || !row[0] || !row[1])
        e2e_fail("SHOW MASTER STATUS returned nothing: is log-bin on?");
    snprintf(file, n, "%s", row[0]);
    *pos = strtoull(row[1], NULL, 10);
    mysql_free_result(r);
}

/* One text per row of a query, for comparing lists. Caller frees. */
static char *rows_text(MYSQL *db, const char *q)
{
    if (mysql_real_query(db, q, strlen(q)) != 0)
        e2e_fail("%s\n  in: %.400s", mysql_error(db), q);
    MYSQL_RES *r = mysql_store_result(db);
    size_t cap = 256, len = 0;
    char *out = malloc(cap);
    out[0] = '\0';
    MYSQL_ROW row;
    unsigned nf = r ? mysql_num_fields(r) : 0;
    while (r && (row = mysql_fetch_row(r))) {
        for (unsigned i = 0; i < nf; i++) {
            const char *v = row[i] ? row[i] : "NULL";
            size_t l = strlen(v) + 2;
            if (len + l + 1 > cap) {
                cap = (len + l + 1) * 2;
                out = realloc(out, cap);
            }
            len += (size_t)sprintf(out + len, "%s%c", v, i + 1 < nf ? '\t' : '\n');
        }
    }
    if (r)
        mysql_free_result(r);
    return out;
}

static long long checksum(MYSQL *db, const char *schema, const char *table)
{
    char q[600];
    snprintf(q, sizeof q, "CHECKSUM TABLE `%s`.`%s` EXTENDED", schema, table);
    if (mysql_real_query(db, q, strlen(q)) != 0)
        e2e_fail("%s: %s", q, mysql_error(db));
    MYSQL_RES *r = mysql_store_result(db);
    MYSQL_ROW row = r ? mysql_fetch_row(r) : NULL;
    if (!row || !row[1])
        e2e_fail("%s returned no checksum (table missing?)", q);
    long long v = atoll(row[1]);
    mysql_free_result(r);
    return v;
}

/* Every row of both sides in the same order, byte for byte. */
static long long compare_rows(MYSQL *src, MYSQL *dst, const char *schema, const char *table, const char *cols)
{
    /* every column named (SELECT * leaves INVISIBLE columns out), ordered by all of them */
    char q[8192];
    snprintf(q, sizeof q, "SELECT %s FROM `%s`.`%s` ORDER BY %s", cols, schema, table, cols);
    e2e_sql(src, "SET SESSION character_set_results = binary, SESSION time_zone = '+00:00'");
    e2e_sql(dst, "SET SESSION character_set_results = binary, SESSION time_zone = '+00:00'");
    if (mysql_real_query(src, q, strlen(q)) != 0)
        e2e_fail("source: %s in %s", mysql_error(src), q);
    MYSQL_RES *a = mysql_use_result(src);
    if (mysql_real_query(dst, q, strlen(q)) != 0)
        e2e_fail("target: %s in %s", mysql_error(dst), q);
    MYSQL_RES *b = mysql_use_result(dst);
    if (!a || !b)
        e2e_fail("no result for %s", q);
    unsigned nf = mysql_num_fields(a);
    if (nf != mysql_num_fields(b))
        e2e_fail("%s.%s: %u columns on the source, %u on the target", schema, table, nf, mysql_num_fields(b));
    long long n = 0;
    for (;;) {
        MYSQL_ROW ra = mysql_fetch_row(a), rb = mysql_fetch_row(b);
        if (!ra || !rb) {
            if (ra || rb)
                e2e_fail("%s.%s: row counts differ after %lld rows (the %s has more)", schema, table, n,
                         ra ? "source" : "target");
            break;
        }
        unsigned long *la = mysql_fetch_lengths(a), *lb = mysql_fetch_lengths(b);
        for (unsigned i = 0; i < nf; i++) {
            if (!ra[i] != !rb[i] || (ra[i] && (la[i] != lb[i] || memcmp(ra[i], rb[i], la[i]) != 0)))
                e2e_fail("%s.%s row %lld column %s differs: source '%.*s', target '%.*s'", schema, table, n,
                         mysql_fetch_field_direct(a, i)->name, ra[i] ? (int)(la[i] > 60 ? 60 : la[i]) : 4,
                         ra[i] ? ra[i] : "NULL", rb[i] ? (int)(lb[i] > 60 ? 60 : lb[i]) : 4,
                         rb[i] ? rb[i] : "NULL");
        }
        n++;
    }
    mysql_free_result(a);
    mysql_free_result(b);
    e2e_sql(src, "SET SESSION character_set_results = utf8mb4");
    e2e_sql(dst, "SET SESSION character_set_results = utf8mb4");
    return n;
}

long long e2e_compare_schema(MYSQL *src, MYSQL *dst, const char *schema)
{
    char q[1024];
    snprintf(q, sizeof q, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '%s' "
             "AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED', 'SEQUENCE') ORDER BY 1", schema);
    char *ts = rows_text(src, q), *tt = rows_text(dst, q);
    if (strcmp(ts, tt) != 0)
        e2e_fail("schema %s: tables differ: source [%s] target [%s]", schema, ts, tt);
    free(tt);
    long long total = 0;
    for (char *t = ts, *nl; *t; t = nl + 1) {
        nl = strchr(t, '\n');
        *nl = '\0';
        /* the same columns and indexes (DDL replicated) */
        snprintf(q, sizeof q, "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, IFNULL(COLUMN_DEFAULT, 'none') "
                 "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '%s' AND TABLE_NAME = '%s' "
                 "ORDER BY ORDINAL_POSITION", schema, t);
        char *cs = rows_text(src, q), *ct = rows_text(dst, q);
        if (strcmp(cs, ct) != 0)
            e2e_fail("%s.%s: columns differ:\nsource:\n%starget:\n%s", schema, t, cs, ct);
        e2e_sql(src, "SET SESSION group_concat_max_len = 65536");
        char *cols = strdup(e2e_str(src, "SELECT GROUP_CONCAT(CONCAT('`', REPLACE(COLUMN_NAME, '`', '``'), '`') "
                                         "ORDER BY ORDINAL_POSITION) FROM information_schema.COLUMNS "
                                         "WHERE TABLE_SCHEMA = '%s' AND TABLE_NAME = '%s' AND "
                                         "IFNULL(GENERATION_EXPRESSION, '') NOT IN ('ROW START', 'ROW END')",
                                         schema, t));
        /* a system-versioned table: its current rows compare; the time each row version started
         * is the target's own (it keeps its own history), and so is CHECKSUM TABLE's view of it */
        int versioned = e2e_int(src, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '%s' "
                                     "AND TABLE_NAME = '%s' AND TABLE_TYPE = 'SYSTEM VERSIONED'", schema, t) > 0;
        E2E_CHECK(cols && *cols && strlen(cols) < 3000, "%s.%s: no column list", schema, t);
        free(cs);
        free(ct);
        snprintf(q, sizeof q, "SELECT INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME, NON_UNIQUE FROM "
                 "information_schema.STATISTICS WHERE TABLE_SCHEMA = '%s' AND TABLE_NAME = '%s' ORDER BY 1, 2",
                 schema, t);
        cs = rows_text(src, q);
        ct = rows_text(dst, q);
        if (strcmp(cs, ct) != 0)
            e2e_fail("%s.%s: indexes differ:\nsource:\n%starget:\n%s", schema, t, cs, ct);
        free(cs);
        free(ct);
        long long a = versioned ? 0 : checksum(src, schema, t), b = versioned ? 0 : checksum(dst, schema, t);
        if (a != b)
            e2e_fail("CHECKSUM TABLE %s.%s: source %lld, target %lld", schema, t, a, b);
        long long n = compare_rows(src, dst, schema, t, cols);
        free(cols);
        printf("  %s.%s: %lld rows equal (checksum %lld)\n", schema, t, n, a);
        total += n;
    }
    free(ts);
    return total;
}

/* ---- sluice-server ---------------------------------------------------------------------------- */

void e2e_server_start(e2e_server *s, const char *name, const char *failpoint)
{
    /* A cut path would start the server in another directory than the test reads: refuse it. */
    if (snprintf(s->dir, sizeof s->dir, "%s/%s", e2e_workdir(), name) >= (int)sizeof s->dir ||
        snprintf(s->log, sizeof s->log, "%s/%s-%d.log", e2e_workdir(), name, ++g_starts) >= (int)sizeof s->log)
        e2e_fail("server directory %s/%s: path too long", e2e_workdir(), name);
    const char *pdir = getenv("SLUICE_PLUGIN_DIR");
    if (!pdir || !*pdir)
        pdir = PLUGIN_DIR;
    pid_t pid = fork();
    if (pid < 0)
        e2e_fail("fork: %s", strerror(errno));
    if (pid == 0) {
        int fd = open(s->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        if (failpoint)
            setenv("SLUICE_SINK_FAILPOINT", failpoint, 1);
        else
            unsetenv("SLUICE_SINK_FAILPOINT");
        execl(SERVER_BIN, SERVER_BIN, "--addr", "127.0.0.1:0", "--data-dir", s->dir, "--plugin-dir", pdir,
              (char *)NULL);
        _exit(127);
    }
    s->pid = pid;
    s->port = 0;
    g_server = s;
    double t0 = now_s();
    while (now_s() - t0 < 60) {
        FILE *f = fopen(s->log, "r");
        char line[1024];
        while (f && fgets(line, sizeof line, f)) {
            const char *p = strstr(line, "serving the DM OpenAPI");
            if (p && (p = strstr(p, "(port ")))
                s->port = atoi(p + 6);
        }
        if (f)
            fclose(f);
        if (s->port > 0)
            return;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            s->pid = 0;
            e2e_fail("sluice-server exited at start (status %d)", st);
        }
        sleep_ms(50);
    }
    e2e_fail("sluice-server did not start serving within 60 s");
}

void e2e_server_kill(e2e_server *s)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
}

int e2e_server_wait_exit(e2e_server *s, int timeout_ms)
{
    double t0 = now_s();
    while (s->pid > 0 && (now_s() - t0) * 1000 < timeout_ms) {
        int st;
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            s->pid = 0;
            return st;
        }
        sleep_ms(20);
    }
    return -1;
}

void e2e_server_stop(e2e_server *s)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGTERM);
    int st = e2e_server_wait_exit(s, 120000);
    if (st == -1)
        e2e_fail("sluice-server did not exit within 120 s of SIGTERM");
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        e2e_fail("sluice-server exited with status %d after SIGTERM", st);
    FILE *f = fopen(s->log, "r");
    char line[2048];
    while (f && fgets(line, sizeof line, f))
        if (strstr(line, "ERROR: AddressSanitizer") || strstr(line, "ERROR: LeakSanitizer") ||
            strstr(line, "runtime error:")) {
            fclose(f);
            e2e_fail("sanitizer report in %s: %s", s->log, line);
        }
    if (f)
        fclose(f);
}

int e2e_http(e2e_server *s, const char *method, const char *path, const char *body, json_t **out)
{
    if (out)
        *out = NULL;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)s->port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    size_t blen = body ? strlen(body) : 0;
    char *req;
    int rl = asprintf(&req, "%s /api/v1%s HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\n\r\n%s", method, path, blen, body ? body : "");
    if (rl < 0)
        e2e_fail("out of memory");
    for (size_t off = 0; off < (size_t)rl;) {
        ssize_t w = write(fd, req + off, (size_t)rl - off);
        if (w <= 0) {
            if (w < 0 && errno == EINTR)
                continue;
            free(req);
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    free(req);
    size_t cap = 8192, len = 0;
    char *resp = malloc(cap);
    for (;;) {
        if (len + 4096 > cap)
            resp = realloc(resp, cap *= 2);
        ssize_t r = read(fd, resp + len, cap - len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    resp[len] = '\0';
    int code = -1;
    if (sscanf(resp, "HTTP/%*s %d", &code) != 1) {
        free(resp);
        return -1;
    }
    char *b = strstr(resp, "\r\n\r\n");
    if (out && b && b[4])
        *out = json_loads(b + 4, 0, NULL);
    free(resp);
    return code;
}

json_t *e2e_api(e2e_server *s, const char *method, const char *path, const char *body)
{
    json_t *j = NULL;
    int code = e2e_http(s, method, path, body, &j);
    if (code < 200 || code >= 300) {
        char *t = j ? json_dumps(j, JSON_COMPACT) : NULL;
        e2e_fail("%s %s: HTTP %d: %s", method, path, code, t ? t : "");
    }
    return j;
}

void e2e_create_source(e2e_server *s, const char *name)
{
    json_t *b = json_pack("{s:s,s:s,s:i,s:s,s:s,s:b}", "source_name", name, "host",
                          e2e_env("SLUICE_SOURCE_HOST"), "port", atoi(e2e_env("SLUICE_SOURCE_PORT")), "user",
                          e2e_env("SLUICE_SOURCE_USER"), "password",
                          getenv("SLUICE_SOURCE_PASSWORD") ? getenv("SLUICE_SOURCE_PASSWORD") : "", "enable", 1);
    char *t = json_dumps(b, JSON_COMPACT);
    json_decref(e2e_api(s, "POST", "/sources", t));
    free(t);
    json_decref(b);
}

void e2e_create_task(e2e_server *s, const char *task, const char *source, const char *mode,
                     const char *schema)
{
    char ddir[700];
    snprintf(ddir, sizeof ddir, "%s/%s-dump", e2e_workdir(), task);
    json_t *b = json_pack(
        "{s:{s:s,s:s,s:s,s:s,s:{s:s,s:i,s:s,s:s},s:[{s:{s:s,s:s,s:s}}],"
        "s:{s:{s:i,s:i,s:s},s:{s:i,s:i},s:[{s:s}]}}}",
        "task", "name", task, "task_mode", mode, "meta_schema", "dm_meta", "on_duplicate", "overwrite",
        "target_config", "host", e2e_env("SLUICE_TARGET_HOST"), "port", atoi(e2e_env("SLUICE_TARGET_PORT")),
        "user", e2e_env("SLUICE_TARGET_USER"), "password",
        getenv("SLUICE_TARGET_PASSWORD") ? getenv("SLUICE_TARGET_PASSWORD") : "",
        "table_migrate_rule", "source", "source_name", source, "schema", schema, "table", "*",
        "source_config", "full_migrate_conf", "export_threads", 2, "import_threads", 2, "data_dir", ddir,
        /* repl_batch 4: a worker takes repl_batch rows of a group before the next starts, so
         * small batches keep the writers' short transactions spread over several XA branches
         * (the crash scenarios kill the server between their prepare, checkpoint and commit) */
        "incr_migrate_conf", "repl_threads", 4, "repl_batch", 4, "source_conf", "source_name", source);
    if (!b)
        e2e_fail("json_pack of the task failed");
    char *t = json_dumps(b, JSON_COMPACT);
    json_decref(e2e_api(s, "POST", "/tasks", t));
    free(t);
    json_decref(b);
}

json_t *e2e_task_status(e2e_server *s, const char *task)
{
    char p[300];
    snprintf(p, sizeof p, "/tasks/%s/status", task);
    json_t *j = e2e_api(s, "GET", p, NULL);
    json_t *d = json_incref(json_array_get(json_object_get(j, "data"), 0));
    json_decref(j);
    if (!d)
        e2e_fail("GET %s: no subtask status", p);
    return d;
}

void e2e_drop_meta(MYSQL *dst, const char *task)
{
    e2e_sql(dst, "CREATE DATABASE IF NOT EXISTS dm_meta; DROP TABLE IF EXISTS `dm_meta`.`%s_loader_checkpoint`, "
            "`dm_meta`.`%s_syncer_checkpoint`, `dm_meta`.`%s_schema_tracker`", task, task, task);
}

static int pos_ge(const char *f, unsigned long long p, const char *ef, unsigned long long ep)
{
    int c = strcmp(f, ef);
    return c > 0 || (c == 0 && p >= ep);
}

long long e2e_xa_branches(MYSQL *dst)
{
    if (mysql_query(dst, "XA RECOVER") != 0)
        e2e_fail("XA RECOVER: %s", mysql_error(dst));
    MYSQL_RES *r = mysql_store_result(dst);
    MYSQL_ROW row;
    long long n = 0;
    while (r && (row = mysql_fetch_row(r)))
        if (row[3] && strncmp(row[3], "sluice-", 7) == 0)
            n++;
    if (r)
        mysql_free_result(r);
    return n;
}

void e2e_wait_sync(e2e_server *s, const char *task, int timeout_s)
{
    double t0 = now_s();
    while (now_s() - t0 < timeout_s) {
        json_t *st = e2e_task_status(s, task);
        const char *stage = json_string_value(json_object_get(st, "stage"));
        const char *unit = json_string_value(json_object_get(st, "unit"));
        if (stage && !strcmp(stage, "Paused"))
            e2e_fail("task %s Paused: %s", task, json_string_value(json_object_get(st, "error_msg")) ?: "");
        int ok = stage && unit && !strcmp(stage, "Running") && !strcmp(unit, "Sync");
        json_decref(st);
        if (ok)
            return;
        sleep_ms(50);
    }
    e2e_fail("task %s did not reach its incremental phase within %d s", task, timeout_s);
}

void e2e_wait_caught_up(e2e_server *s, MYSQL *src, MYSQL *dst, const char *task, int timeout_s)
{
    char ef[256];
    unsigned long long ep;
    e2e_master_pos(src, ef, sizeof ef, &ep);
    double t0 = now_s();
    char last[600] = "";
    while (now_s() - t0 < timeout_s) {
        json_t *st = e2e_task_status(s, task);
        const char *stage = json_string_value(json_object_get(st, "stage"));
        const char *unit = json_string_value(json_object_get(st, "unit"));
        if (stage && strcmp(stage, "Paused") == 0) {
            const char *e = json_string_value(json_object_get(st, "error_msg"));
            e2e_fail("task %s is Paused: %s", task, e ? e : "(no message)");
        }
        int sync = stage && unit && !strcmp(stage, "Running") && !strcmp(unit, "Sync");
        snprintf(last, sizeof last, "stage %s unit %s syncer %s", stage ? stage : "?", unit ? unit : "?",
                 json_string_value(json_object_get(json_object_get(st, "sync_status"), "syncer_binlog")) ?: "");
        json_decref(st);
        if (sync) {
            char q[400];
            snprintf(q, sizeof q, "SELECT CONCAT(binlog_name, ' ', binlog_pos) FROM `dm_meta`.`%s_syncer_checkpoint` "
                     "WHERE worker = 0", task);
            char f[256] = "";
            unsigned long long p = 0;
            int have = 0;
            if (mysql_query(dst, q) == 0) {     /* the table may not exist yet */
                MYSQL_RES *r = mysql_store_result(dst);
                MYSQL_ROW row = r ? mysql_fetch_row(r) : NULL;
                have = row && row[0] && sscanf(row[0], "%255s %llu", f, &p) == 2;
                if (r)
                    mysql_free_result(r);
            }
            if (have && pos_ge(f, p, ef, ep) && e2e_xa_branches(dst) == 0)
                return;
        }
        sleep_ms(100);
    }
    e2e_fail("task %s did not reach the source position (%s, %llu) within %d s: %s", task, ef, ep, timeout_s,
             last);
}

void e2e_check_clean(MYSQL *dst, const char *task)
{
    E2E_CHECK(e2e_xa_branches(dst) == 0, "prepared XA branches of sluice are left on the target");
    long long n = e2e_int(dst, "SELECT COUNT(*) FROM `dm_meta`.`%s_syncer_checkpoint` WHERE worker <> 0", task);
    E2E_CHECK(n == 0, "%lld checkpoint rows other than worker 0 (a pending DDL?) are left", n);
}

/* ---- writers ----------------------------------------------------------------------------------- */

#define KEYS 1000   /* t_pk ids 1..KEYS are updated, deleted and inserted again */

struct e2e_writers {
    char schema[128];
    int n, reuse;
    pthread_t th[16];
    unsigned seed;
    atomic_int stop;
    atomic_llong committed;
};

typedef struct wctx {
    e2e_writers *w;
    int id;
} wctx;

static int conn_lost(unsigned e)
{
    return e == 2002 || e == 2003 || e == 2006 || e == 2013 || e == 2055 || e == 1053 || e == 1927 ||
           e == 2026 || e == 0;
}

/* 0, or the error number (the transaction is rolled back or the connection is gone). */
static unsigned wexec(MYSQL *db, const char *q)
{
    if (mysql_real_query(db, q, strlen(q)) != 0)
        return mysql_errno(db) ? mysql_errno(db) : 2013;
    drain(db);
    return 0;
}

static void *writer_main(void *arg)
{
    wctx *c = arg;
    e2e_writers *w = c->w;
    unsigned rs = w->seed * 7919u + (unsigned)c->id;
    MYSQL *db = NULL;
    long k = 0;
    char q[1024];
    const char *S = w->schema;
    while (!atomic_load(&w->stop)) {
        if (!db) {
            char err[512];
            if (!(db = try_connect("SOURCE", err, sizeof err))) {
                sleep_ms(50);
                continue;
            }
        }
        unsigned e = 0;
        int op = rand_r(&rs) % 100;
        k++;
        if (op < 55) {            /* sysbench write_only, plus a row in the table without a key */
            int a = 1 + rand_r(&rs) % KEYS, b = 1 + rand_r(&rs) % KEYS, d = 1 + rand_r(&rs) % KEYS;
            const char *stmts[7];
            char s1[256], s2[256], s3[256], s4[512], s5[256];
            snprintf(s1, sizeof s1, "UPDATE `%s`.t_pk SET k = k + 1 WHERE id = %d", S, a);
            snprintf(s2, sizeof s2, "UPDATE `%s`.t_pk SET c = CONCAT('w%d-%ld ', RAND()) WHERE id = %d", S, c->id, k, b);
            snprintf(s3, sizeof s3, "DELETE FROM `%s`.t_pk WHERE id = %d", S, d);
            snprintf(s4, sizeof s4, "INSERT INTO `%s`.t_pk (id, k, c, pad) VALUES (%d, %d, 'reinserted %d-%ld', "
                     "REPEAT('p', %d))", S, d, rand_r(&rs) % 10000, c->id, k, rand_r(&rs) % 20);
            snprintf(s5, sizeof s5, "INSERT INTO `%s`.t_nokey (a, b, c) VALUES (%d, 'w%d', x'00ff%02x')", S,
                     rand_r(&rs) % 50, c->id, (unsigned)(k & 0xff));
            stmts[0] = "BEGIN"; stmts[1] = s1; stmts[2] = s2; stmts[3] = s3; stmts[4] = s4; stmts[5] = s5;
            stmts[6] = "COMMIT";
            for (int i = 0; i < 7 && !e; i++)
                e = wexec(db, stmts[i]);
        } else if (op < 80) {     /* unique keys: insert, rename one, move a name to a new row */
            snprintf(q, sizeof q, "INSERT INTO `%s`.t_uk (u, v, ts, js, bin) VALUES ('w%d-%ld', %d.125, "
                     "NOW(6), JSON_OBJECT('k', %ld), UNHEX(MD5('%ld')))", S, c->id, k, rand_r(&rs) % 1000, k, k);
            e = wexec(db, q);
            if (!e && k > 10 && !w->reuse) {
                /* a fresh unique value: no row, live or delete-marked, ever had it */
                long j = 1 + rand_r(&rs) % (k - 1);
                snprintf(q, sizeof q, "UPDATE `%s`.t_uk SET u = 'w%d-%ld-r', v = v + 1 WHERE u = 'w%d-%ld'",
                         S, c->id, k, c->id, j);
                e = wexec(db, q);
            } else if (!e && k > 10) {
                long j = 1 + rand_r(&rs) % (k - 1);
                const char *stmts[4];
                char s1[256], s2[256];
                snprintf(s1, sizeof s1, "DELETE FROM `%s`.t_uk WHERE u = 'w%d-%ld'", S, c->id, j);
                snprintf(s2, sizeof s2, "INSERT INTO `%s`.t_uk (u, v) VALUES ('w%d-%ld', -1)", S, c->id, j);
                stmts[0] = "BEGIN"; stmts[1] = s1; stmts[2] = s2; stmts[3] = "COMMIT";
                for (int i = 0; i < 4 && !e; i++)
                    e = wexec(db, stmts[i]);
                if (!e) {
                    snprintf(q, sizeof q, "UPDATE `%s`.t_uk SET u = CONCAT(u, 'x'), v = v + 1 WHERE u = 'w%d-%ld'",
                             S, c->id, 1 + rand_r(&rs) % (k - 1));
                    e = wexec(db, q);
                }
            }
        } else {                  /* the table without a key: LIMIT 1 changes among equal rows */
            int a = rand_r(&rs) % 50;
            snprintf(q, sizeof q, "DELETE FROM `%s`.t_nokey WHERE a = %d LIMIT 1", S, a);
            e = wexec(db, q);
            if (!e) {
                snprintf(q, sizeof q, "UPDATE `%s`.t_nokey SET b = 'upd' WHERE a = %d LIMIT 1", S, (a + 7) % 50);
                e = wexec(db, q);
            }
        }
        if (!e) {
            atomic_fetch_add(&w->committed, 1);
        } else if (conn_lost(e)) {
            mysql_close(db);
            db = NULL;
            sleep_ms(20);
        } else if (e == 1213 || e == 1205 || e == 1062) {
            wexec(db, "ROLLBACK");
        } else {
            e2e_fail("writer %d: unexpected error %u: %s", c->id, e, mysql_error(db));
        }
        sleep_ms(1);
    }
    if (db)
        mysql_close(db);
    free(c);
    return NULL;
}

e2e_writers *e2e_writers_start(const char *schema, int n, unsigned seed, int reuse)
{
    e2e_writers *w = calloc(1, sizeof *w);
    w->reuse = reuse;
    snprintf(w->schema, sizeof w->schema, "%s", schema);
    w->n = n > 16 ? 16 : n;
    w->seed = seed;
    for (int i = 0; i < w->n; i++) {
        wctx *c = malloc(sizeof *c);
        c->w = w;
        c->id = i + 1;
        if (pthread_create(&w->th[i], NULL, writer_main, c) != 0)
            e2e_fail("pthread_create failed");
    }
    return w;
}

long long e2e_writers_committed(e2e_writers *w)
{
    return atomic_load(&w->committed);
}

void e2e_writers_wait_more(e2e_writers *w, long long k, int timeout_s)
{
    long long base = e2e_writers_committed(w);
    double t0 = now_s();
    while (e2e_writers_committed(w) < base + k) {
        if (now_s() - t0 > timeout_s)
            e2e_fail("the writers committed %lld transactions in %d s, expected %lld",
                     e2e_writers_committed(w) - base, timeout_s, k);
        sleep_ms(10);
    }
}

long long e2e_writers_stop(e2e_writers *w)
{
    atomic_store(&w->stop, 1);
    for (int i = 0; i < w->n; i++)
        pthread_join(w->th[i], NULL);
    long long n = e2e_writers_committed(w);
    free(w);
    return n;
}

void e2e_make_tables(MYSQL *src, MYSQL *dst, const char *schema, long pk_rows)
{
    E2E_CHECK(pk_rows >= KEYS, "t_pk needs at least %d rows", KEYS);
    e2e_sql(dst, "DROP DATABASE IF EXISTS `%s`", schema);
    e2e_sql(src, "DROP DATABASE IF EXISTS `%s`; CREATE DATABASE `%s`", schema, schema);
    e2e_sql(src, "CREATE TABLE `%s`.t_pk (id INT PRIMARY KEY, k INT NOT NULL DEFAULT 0, c VARCHAR(120) NOT NULL "
            "DEFAULT '', pad CHAR(60) NOT NULL DEFAULT '', KEY k_1 (k))", schema);
    e2e_sql(src, "INSERT INTO `%s`.t_pk SELECT seq, seq %% 1000, CONCAT('row ', seq, ' ', REPEAT('c', seq %% 50)), "
            "REPEAT('p', seq %% 60) FROM `%s`.seq_1_to_%ld", schema, schema, pk_rows);
    e2e_sql(src, "CREATE TABLE `%s`.t_uk (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, u VARCHAR(40) NOT NULL, "
            "v DECIMAL(20,6), ts DATETIME(6), js JSON, bin VARBINARY(32), UNIQUE KEY uk_u (u))", schema);
    e2e_sql(src, "INSERT INTO `%s`.t_uk (u, v, ts, js, bin) SELECT CONCAT('init-', seq), seq / 7, "
            "'2020-01-01 00:00:00.5', JSON_ARRAY(seq, 'x'), UNHEX(MD5(seq)) FROM `%s`.seq_1_to_500", schema, schema);
    e2e_sql(src, "CREATE TABLE `%s`.t_nokey (a INT, b VARCHAR(20), c VARBINARY(16))", schema);
    e2e_sql(src, "INSERT INTO `%s`.t_nokey SELECT seq %% 50, 'init', IF(seq %% 3, x'00', NULL) "
            "FROM `%s`.seq_1_to_500", schema, schema);
}
