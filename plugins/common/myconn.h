/*
 * myconn.h - connecting to MySQL/MariaDB (the plugin options that say where, and the connection)
 * and building SQL text safely, for plugins.
 *
 * Compiled into each plugin that talks to a server (static library sluice_plugin_common).
 */
#ifndef SLUICE_MYCONN_H
#define SLUICE_MYCONN_H

#include <stddef.h>
#include <stdint.h>
#include <mysql.h>
#include <sluice/err.h>
#include <sluice/plugin.h>

/* Appended to a SET of a session that replays DDL (the sink's, the schema tracker's): an ALTER
 * of a system-versioned table ran on the source only with KEEP (MariaDB refuses it otherwise), so
 * it runs so here too; MySQL skips the MariaDB-only versioned comment. */
#define SL_MYCONN_SET_KEEP_HISTORY " /*M!100304 , system_versioning_alter_history = 'KEEP' */"

/* TCP keepalive of every connection sl_myconn_open makes (myconn.c, keepalive): seconds of
 * silence before the first probe, seconds between probes, unanswered probes that fail it. */
#define SL_MYCONN_KEEPIDLE  60
#define SL_MYCONN_KEEPINTVL 10
#define SL_MYCONN_KEEPCNT   6

/* Where and how to connect. PEM strings are contents, not paths ("" or NULL = none). */
typedef struct sl_myconn_opts {
    const char *host;
    int         port;
    const char *user;
    const char *password;
    const char *ssl_ca, *ssl_cert, *ssl_key;
    const char *cert_allowed_cn; /* comma-separated: the server certificate's common name must be
                                    one of them (DM's cert_allowed_cn); "" or NULL = no check */
    const char *init_sql;        /* run after connecting (e.g. "SET time_zone='+00:00'"), may be NULL */
    unsigned    connect_timeout; /* seconds, 0 = 10 */
    unsigned    rw_timeout;      /* seconds for read/write, 0 = none */
    int         local_infile;    /* allow LOAD DATA LOCAL INFILE */
} sl_myconn_opts;

/* The config fields of one server's connection options (below), in a plugin's config struct:
 * struct my_cfg { SL_MYCONN_FIELDS(target); ... }. */
#define SL_MYCONN_FIELDS(who) \
    char   *who##_host; \
    int64_t who##_port; \
    char   *who##_user, *who##_password, *who##_ssl_ca, *who##_ssl_cert, *who##_ssl_key, \
           *who##_cert_allowed_cn

/*
 * The connection option rows, written once for every plugin that connects to a server:
 * <who>_host, <who>_port, <who>_user, <who>_password, <who>_ssl_ca, <who>_ssl_cert,
 * <who>_ssl_key and <who>_cert_allowed_cn, each filling the config field of the same name
 * (SL_MYCONN_FIELDS). Each macro stands for its eight rows inside a plugin's sl_option table:
 *
 *   SL_MYCONN_OPTIONS(target, my_cfg),             host, port and user required
 *   SL_MYCONN_OPTIONS_OPTIONAL(target, my_cfg),    "" / 3306 / "": a server the plugin can do without
 *
 * A macro and not a sub-table so that plugin.h's flat option table (and its ABI) stays as it is.
 */
#define SL_MYCONN_OPTIONS(who, cfg) SL_MYCONN_ROWS_(who, cfg, NULL, NULL, SL_OPTF_REQUIRED)
#define SL_MYCONN_OPTIONS_OPTIONAL(who, cfg) SL_MYCONN_ROWS_(who, cfg, "\"\"", "3306", 0)

#define SL_MYCONN_ROW_(who, cfg, f, def_, dsc, fl) \
    { .name = #who "_" #f, .type = SL_OPT_STRING, .def = def_, .desc = #who " " dsc, \
      .offset = offsetof(cfg, who##_##f), .flags = fl }
#define SL_MYCONN_ROWS_(who, cfg, def_str, def_port, req) \
    SL_MYCONN_ROW_(who, cfg, host, def_str, "host", req), \
    { .name = #who "_port", .type = SL_OPT_INT, .def = def_port, .desc = #who " port", \
      .offset = offsetof(cfg, who##_port), .min = 1, .max = 65535, .flags = req }, \
    SL_MYCONN_ROW_(who, cfg, user, def_str, "user", req), \
    SL_MYCONN_ROW_(who, cfg, password, "\"\"", "password", SL_OPTF_SECRET), \
    SL_MYCONN_ROW_(who, cfg, ssl_ca, "\"\"", "CA (PEM content)", 0), \
    SL_MYCONN_ROW_(who, cfg, ssl_cert, "\"\"", "client certificate (PEM content)", 0), \
    SL_MYCONN_ROW_(who, cfg, ssl_key, "\"\"", "client key (PEM content)", SL_OPTF_SECRET), \
    SL_MYCONN_ROW_(who, cfg, cert_allowed_cn, "\"\"", "certificate common names allowed " \
                   "(comma-separated; \"\" = any)", 0)

/* The sl_myconn_opts fields those options fill, for a designated initializer:
 * sl_myconn_opts o = { SL_MYCONN_FROM(c, target), .init_sql = ... }. */
#define SL_MYCONN_FROM(c, who) \
    .host = (c)->who##_host, .port = (int)(c)->who##_port, .user = (c)->who##_user, \
    .password = (c)->who##_password, .ssl_ca = (c)->who##_ssl_ca, \
    .ssl_cert = (c)->who##_ssl_cert, .ssl_key = (c)->who##_ssl_key, \
    .cert_allowed_cn = (c)->who##_cert_allowed_cn

/* Connect with utf8mb4, the options above and TLS when a CA or cert is given (PEM contents are
 * written to private temporary files that are removed before returning). Returns a handle to
 * close with mysql_close(), or NULL with err filled with the server's own message ("host:port:
 * message (errno N)"). Thread-safe (calls mysql_init per connection). */
MYSQL *sl_myconn_open(const sl_myconn_opts *o, sl_error *err);

/* tlsname.c: a TLS handshake of its own with the server of o (MySQL's SSLRequest, then GnuTLS)
 * to check its certificate: signed by o->ssl_ca when given, common name in o->cert_allowed_cn.
 * 0, SL_EINVAL (a certificate that does not fit: no retry helps) or SL_ECONN, with err. */
int sl_myconn_check_cn(const sl_myconn_opts *o, sl_error *err);

/* Run one statement (or several separated by ';' on a connection with multi-statements on, see
 * sl_myconn_multi); on failure of any of them fill err with the text's first 200 bytes and the
 * server's error, and return SL_EDB (SL_ECONN when the connection is lost). Results are
 * discarded. */
int sl_myconn_exec(MYSQL *db, const char *sql, size_t len, sl_error *err);

/*
 * Run a DDL of a source session under that session's modes: sl_myconn_ddl_mode_enter keeps the
 * session's sql_mode in a user variable and adds the words of mode's SL_DDLM_* bits
 * (sl_event.ddl_mode) to it; sl_myconn_ddl_mode_leave sets the kept one back. The statements
 * between them read as the source read them. Not SET STATEMENT sql_mode = ... FOR: MariaDB
 * parses the whole statement first and sets the variable after, so ANSI_QUOTES, REAL_AS_FLOAT,
 * PIPES_AS_CONCAT... would not apply (checked on 10.11). A caller leaves before its own
 * statements (their quoting assumes backslash escapes and no ANSI_QUOTES), also when the DDL
 * failed. mode 0: both do nothing. Return 0, SL_EDB or SL_ECONN with err.
 */
int sl_myconn_ddl_mode_enter(MYSQL *db, unsigned mode, sl_error *err);
int sl_myconn_ddl_mode_leave(MYSQL *db, unsigned mode, sl_error *err);

/* Let db run several statements in one round trip (COM_SET_OPTION; statements built with the
 * quoting helpers below only). Returns 0 or SL_EDB/SL_ECONN with err. */
int sl_myconn_multi(MYSQL *db, sl_error *err);

/* 1 if a server error number means the connection is gone (2006, 2013, 2055, ...). */
int sl_myconn_is_conn_error(unsigned errnum);

/* A growable string buffer for building SQL (memory from malloc). */
typedef struct sl_sbuf {
    char  *p;
    size_t len, cap;
    int    oom;        /* sticky: set when a growth failed; later appends are no-ops */
} sl_sbuf;

void sl_sbuf_init(sl_sbuf *b);
void sl_sbuf_free(sl_sbuf *b);
void sl_sbuf_reset(sl_sbuf *b);               /* len = 0, keeps the memory */
void sl_sbuf_truncate(sl_sbuf *b, size_t len); /* back to len (if shorter), keeps the memory */
int  sl_sbuf_reserve(sl_sbuf *b, size_t extra);
void sl_sbuf_add(sl_sbuf *b, const char *s, size_t len);
void sl_sbuf_adds(sl_sbuf *b, const char *s);
void sl_sbuf_addf(sl_sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* `name` with backticks, embedded backticks doubled. */
void sl_sbuf_add_ident(sl_sbuf *b, const char *name);
/* `schema`.`table` */
void sl_sbuf_add_qname(sl_sbuf *b, const char *schema, const char *table);
/* 'text' with MySQL string escaping (NUL, \, ', ", \n, \r, ^Z), independent of any connection. */
void sl_sbuf_add_quoted(sl_sbuf *b, const char *s, size_t len);
/* X'hex' for arbitrary bytes. */
void sl_sbuf_add_hex(sl_sbuf *b, const unsigned char *s, size_t len);

#endif
