/*
 * myconn.c - connecting to MySQL/MariaDB and building SQL text safely, for plugins.
 */
#include "myconn.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <errmsg.h>

/* Write PEM content to a private temp file; returns 0 and the path in buf. */
static int pem_to_file(const char *pem, char *buf, size_t bufsz)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(buf, bufsz, "%s/sluice-pem-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    int fd = mkstemp(buf);           /* mode 0600 */
    if (fd < 0)
        return -1;
    size_t len = strlen(pem), off = 0;
    while (off < len) {
        ssize_t w = write(fd, pem + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            close(fd);
            unlink(buf);
            return -1;
        }
        off += (size_t)w;
    }
    close(fd);
    return 0;
}

static int nonempty(const char *s) { return s && *s; }

/* A server that answered and refused: no wait fixes it (a wrong or changed password, a
 * database that is gone, an authentication plugin or TLS setting that does not fit). These are
 * SL_EDB, not SL_ECONN, so no retry loop spins on them: the stage fails with the server's
 * errno, which the runtime classes as fatal (errclass.c FATAL_CONN). */
static int refused(unsigned e)
{
    return e == 1044 || e == 1045 || e == 1049 || e == 1251 || e == 1698 || e == 2026 ||
           e == 2059;
}

/*
 * A server host that goes away without closing its connections (power lost, a partition) leaves
 * a client's read waiting for ever where no read timeout bounds it: the loader's connections
 * (a LOAD DATA or an early ADD KEY may take long), the sink's DDL session (an ALTER may take
 * hours), the dump's. The connector turns TCP keepalive on with the system's timing (a first
 * probe after two hours of silence); here a probe follows SL_MYCONN_KEEPIDLE s of silence, then
 * one every SL_MYCONN_KEEPINTVL s, and SL_MYCONN_KEEPCNT unanswered ones fail the connection
 * (errno 2013) within two minutes. A server that is only busy answers the probes from its
 * kernel, so nothing that merely takes long fails. Not for a Unix socket (no host to lose).
 */
static void keepalive(MYSQL *db)
{
    int fd = (int)mysql_get_socket(db);
    struct sockaddr_storage sa;
    socklen_t n = sizeof sa;
    if (fd < 0 || getsockname(fd, (struct sockaddr *)&sa, &n) != 0 ||
        (sa.ss_family != AF_INET && sa.ss_family != AF_INET6))
        return;
    int on = 1, idle = SL_MYCONN_KEEPIDLE, intvl = SL_MYCONN_KEEPINTVL, cnt = SL_MYCONN_KEEPCNT;
    /* best effort: a failure leaves the system's timing, as before */
    (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
}

MYSQL *sl_myconn_open(const sl_myconn_opts *o, sl_error *err)
{
    MYSQL *db = mysql_init(NULL);
    if (!db) {
        sl_error_set(err, SL_ENOMEM, "mysql_init failed");
        return NULL;
    }
    unsigned ct = o->connect_timeout ? o->connect_timeout : 10;
    mysql_options(db, MYSQL_OPT_CONNECT_TIMEOUT, &ct);
    if (o->rw_timeout) {
        mysql_options(db, MYSQL_OPT_READ_TIMEOUT, &o->rw_timeout);
        mysql_options(db, MYSQL_OPT_WRITE_TIMEOUT, &o->rw_timeout);
    }
    mysql_options(db, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    if (o->local_infile) {
        unsigned on = 1;
        mysql_options(db, MYSQL_OPT_LOCAL_INFILE, &on);
    }
    if (o->init_sql)
        mysql_options(db, MYSQL_INIT_COMMAND, o->init_sql);

    char ca[256] = "", cert[256] = "", key[256] = "";
    int tls = nonempty(o->ssl_ca) || nonempty(o->ssl_cert);
    /* DM's cert_allowed_cn, for TLS connections (as in DM: without a CA or certificate there is
     * no TLS and nothing to check): the connector cannot show the peer certificate, so it is
     * checked by a handshake of its own first */
    if (tls && nonempty(o->cert_allowed_cn) && sl_myconn_check_cn(o, err) != 0) {
        mysql_close(db);
        return NULL;
    }
    int failed = 0;
    if (nonempty(o->ssl_ca) && pem_to_file(o->ssl_ca, ca, sizeof ca) < 0)
        failed = 1;
    if (!failed && nonempty(o->ssl_cert) && pem_to_file(o->ssl_cert, cert, sizeof cert) < 0)
        failed = 1;
    if (!failed && nonempty(o->ssl_key) && pem_to_file(o->ssl_key, key, sizeof key) < 0)
        failed = 1;
    MYSQL *ok = NULL;
    if (failed) {
        sl_error_set(err, SL_EIO, "cannot write TLS material to a temporary file: %s", strerror(errno));
    } else {
        if (tls) {
            mysql_ssl_set(db, key[0] ? key : NULL, cert[0] ? cert : NULL, ca[0] ? ca : NULL, NULL, NULL);
            my_bool verify = ca[0] ? 1 : 0;
            mysql_options(db, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify);
        }
        ok = mysql_real_connect(db, o->host, o->user, o->password ? o->password : "", NULL,
                                (unsigned)o->port, NULL, CLIENT_MULTI_RESULTS);
        if (!ok)
            sl_error_set(err, refused(mysql_errno(db)) ? SL_EDB : SL_ECONN, "%s:%d: %s (errno %u)",
                         o->host, o->port, mysql_error(db), mysql_errno(db));
    }
    if (ca[0]) unlink(ca);
    if (cert[0]) unlink(cert);
    if (key[0]) unlink(key);
    if (!ok) {
        mysql_close(db);
        return NULL;
    }
    keepalive(db);
    return db;
}

int sl_myconn_is_conn_error(unsigned e)
{
    return e == CR_SERVER_GONE_ERROR || e == CR_SERVER_LOST || e == CR_CONNECTION_ERROR ||
           e == CR_CONN_HOST_ERROR || e == CR_SERVER_LOST_EXTENDED || e == 1053 /* shutdown */ ||
           e == 1927 /* connection killed */ || e == 4031 /* disconnected by server */;
}

int sl_myconn_multi(MYSQL *db, sl_error *err)
{
    if (mysql_set_server_option(db, MYSQL_OPTION_MULTI_STATEMENTS_ON) == 0)
        return 0;
    unsigned e = mysql_errno(db);
    return sl_error_set(err, sl_myconn_is_conn_error(e) ? SL_ECONN : SL_EDB,
                        "turning multi-statements on: %s (errno %u)", mysql_error(db), e);
}

int sl_myconn_exec(MYSQL *db, const char *sql, size_t len, sl_error *err)
{
    if (mysql_real_query(db, sql, (unsigned long)len) == 0) {
        /* Drain any result so the connection stays usable. With multi-statements on, a later
         * statement's failure shows only here (mysql_next_result > 0), and the server skipped
         * the statements after it. */
        int st;
        do {
            MYSQL_RES *r = mysql_store_result(db);
            if (r)
                mysql_free_result(r);
        } while ((st = mysql_next_result(db)) == 0);
        if (st < 0)
            return 0;
    }
    unsigned e = mysql_errno(db);
    int shown = len > 200 ? 200 : (int)len;
    return sl_error_set(err, sl_myconn_is_conn_error(e) ? SL_ECONN : SL_EDB,
                        "%s (errno %u) in statement: %.*s%s", mysql_error(db), e, shown, sql,
                        len > 200 ? "..." : "");
}

int sl_myconn_ddl_mode_enter(MYSQL *db, unsigned mode, sl_error *err)
{
    if (!mode)
        return 0;
    char words[SL_DDLM_TEXT_MAX];
    sl_ddl_mode_text(mode, words, sizeof words);
    /* both values are read before either is set: @sl_ddl_sql_mode gets the session's own */
    char sql[SL_DDLM_TEXT_MAX + 160];
    int n = snprintf(sql, sizeof sql, "SET @sl_ddl_sql_mode = @@SESSION.sql_mode, SESSION sql_mode "
                     "= CONCAT_WS(',', NULLIF(@@SESSION.sql_mode, ''), '%s')", words);
    return sl_myconn_exec(db, sql, (size_t)n, err);
}

int sl_myconn_ddl_mode_leave(MYSQL *db, unsigned mode, sl_error *err)
{
    static const char sql[] = "SET SESSION sql_mode = @sl_ddl_sql_mode";
    return mode ? sl_myconn_exec(db, sql, sizeof sql - 1, err) : 0;
}

void sl_sbuf_init(sl_sbuf *b) { memset(b, 0, sizeof *b); }
void sl_sbuf_free(sl_sbuf *b) { free(b->p); memset(b, 0, sizeof *b); }
void sl_sbuf_reset(sl_sbuf *b) { b->len = 0; if (b->p) b->p[0] = '\0'; b->oom = 0; }

void sl_sbuf_truncate(sl_sbuf *b, size_t len)
{
    if (len < b->len) {
        b->len = len;
        b->p[len] = '\0';
    }
}

int sl_sbuf_reserve(sl_sbuf *b, size_t extra)
{
    if (b->oom)
        return SL_ENOMEM;
    if (b->len + extra + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return SL_ENOMEM;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

void sl_sbuf_add(sl_sbuf *b, const char *s, size_t len)
{
    if (sl_sbuf_reserve(b, len) < 0)
        return;
    memcpy(b->p + b->len, s, len);
    b->len += len;
    b->p[b->len] = '\0';
}

void sl_sbuf_adds(sl_sbuf *b, const char *s) { sl_sbuf_add(b, s, strlen(s)); }

void sl_sbuf_addf(sl_sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || sl_sbuf_reserve(b, (size_t)n) < 0)
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void sl_sbuf_add_ident(sl_sbuf *b, const char *name)
{
    size_t n = strlen(name);
    if (sl_sbuf_reserve(b, 2 * n + 2) < 0)
        return;
    char *o = b->p + b->len;
    *o++ = '`';
    for (size_t i = 0; i < n; i++) {
        if (name[i] == '`')
            *o++ = '`';
        *o++ = name[i];
    }
    *o++ = '`';
    *o = '\0';
    b->len = (size_t)(o - b->p);
}

void sl_sbuf_add_qname(sl_sbuf *b, const char *schema, const char *table)
{
    if (schema && *schema) {
        sl_sbuf_add_ident(b, schema);
        sl_sbuf_add(b, ".", 1);
    }
    sl_sbuf_add_ident(b, table);
}

void sl_sbuf_add_quoted(sl_sbuf *b, const char *s, size_t len)
{
    if (sl_sbuf_reserve(b, 2 * len + 2) < 0)
        return;
    char *o = b->p + b->len;
    *o++ = '\'';
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        switch (c) {
        case '\0': *o++ = '\\'; *o++ = '0'; break;
        case '\\': *o++ = '\\'; *o++ = '\\'; break;
        case '\'': *o++ = '\\'; *o++ = '\''; break;
        case '"':  *o++ = '\\'; *o++ = '"'; break;
        case '\n': *o++ = '\\'; *o++ = 'n'; break;
        case '\r': *o++ = '\\'; *o++ = 'r'; break;
        case '\032': *o++ = '\\'; *o++ = 'Z'; break;
        default: *o++ = c;
        }
    }
    *o++ = '\'';
    *o = '\0';
    b->len = (size_t)(o - b->p);
}

void sl_sbuf_add_hex(sl_sbuf *b, const unsigned char *s, size_t len)
{
    static const char hx[] = "0123456789ABCDEF";
    if (sl_sbuf_reserve(b, 2 * len + 3) < 0)
        return;
    char *o = b->p + b->len;
    if (len == 0) {
        memcpy(o, "''", 2);
        o += 2;
    } else {
        *o++ = 'X';
        *o++ = '\'';
        for (size_t i = 0; i < len; i++) {
            *o++ = hx[s[i] >> 4];
            *o++ = hx[s[i] & 15];
        }
        *o++ = '\'';
    }
    *o = '\0';
    b->len = (size_t)(o - b->p);
}
