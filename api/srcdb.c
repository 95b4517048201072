/*
 * srcdb.c - talking to a source's own MySQL/MariaDB server on behalf of the API: the connection
 * check of POST/PUT /sources (which also detects the flavor) and the schema and table listings.
 * TLS material arrives as PEM contents; libmariadb wants files, so they are written to private
 * 0600 temporary files in the data dir and removed as soon as the handshake is done.
 */
#include "internal.h"

#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static int pem_file(sl_api *a, const char *pem, char *path, size_t pathsz, sl_error *err)
{
    snprintf(path, pathsz, "%s/tls-XXXXXX", a->data_dir);
    int fd = mkstemp(path);   /* mode 0600 */
    if (fd < 0)
        return sl_error_set(err, SL_EIO, "cannot write TLS material in %s", a->data_dir);
    size_t n = strlen(pem);
    int ok = write(fd, pem, n) == (ssize_t)n;
    close(fd);
    if (!ok) {
        unlink(path);
        return sl_error_set(err, SL_EIO, "cannot write TLS material in %s", a->data_dir);
    }
    return 0;
}

MYSQL *sl__source_connect(sl_api *a, const json_t *src, sl_error *err)
{
    const json_t *sec = json_object_get(src, "security");
    const char *pem[3] = { "", "", "" };
    char paths[3][4096] = { "", "", "" };
    unsigned timeout = 10;
    if (a->offline) {
        sl_error_set(err, SL_ECONN, "cannot connect to %s:%u: this server is offline (no database "
                     "connections)", jstr(src, "host"),
                     (unsigned)json_integer_value(json_object_get(src, "port")));
        return NULL;
    }
    MYSQL *db = mysql_init(NULL);
    if (!db) {
        sl_error_set(err, SL_ENOMEM, "out of memory");
        return NULL;
    }
    mysql_optionsv(db, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
    mysql_optionsv(db, MYSQL_OPT_READ_TIMEOUT, &timeout);
    mysql_optionsv(db, MYSQL_OPT_WRITE_TIMEOUT, &timeout);
    mysql_optionsv(db, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    if (json_is_object(sec)) {
        pem[0] = jstr(sec, "ssl_ca_content");
        pem[1] = jstr(sec, "ssl_cert_content");
        pem[2] = jstr(sec, "ssl_key_content");
    }
    for (int i = 0; i < 3; i++)
        if (pem[i][0] && pem_file(a, pem[i], paths[i], sizeof paths[i], err) != 0)
            goto fail;
    if (paths[0][0] || paths[1][0]) {
        my_bool verify = paths[0][0] ? 1 : 0;
        mysql_ssl_set(db, paths[2][0] ? paths[2] : NULL, paths[1][0] ? paths[1] : NULL,
                      paths[0][0] ? paths[0] : NULL, NULL, NULL);
        mysql_optionsv(db, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify);
    }
    const char *host = jstr(src, "host");
    unsigned port = (unsigned)json_integer_value(json_object_get(src, "port"));
    const char *pw = json_string_value(json_object_get(src, "password"));
    if (!mysql_real_connect(db, host, jstr(src, "user"), pw ? pw : "", NULL, port, NULL, 0)) {
        sl_error_set(err, SL_ECONN, "cannot connect to %s:%u: %s (errno %u)", host, port,
                     mysql_error(db), mysql_errno(db));
        goto fail;
    }
    for (int i = 0; i < 3; i++)
        if (paths[i][0])
            unlink(paths[i]);
    return db;
fail:
    for (int i = 0; i < 3; i++)
        if (paths[i][0])
            unlink(paths[i]);
    mysql_close(db);
    return NULL;
}

int sl__source_probe(sl_api *a, const json_t *src, char **flavor, sl_error *err)
{
    if (a->offline) {
        *flavor = strdup("mysql");
        return *flavor ? 0 : sl_error_set(err, SL_ENOMEM, "out of memory");
    }
    MYSQL *db = sl__source_connect(a, src, err);
    if (!db)
        return err ? err->code : SL_ECONN;
    const char *v = mysql_get_server_info(db);
    *flavor = strdup(v && strcasestr(v, "mariadb") ? "mariadb" : "mysql");
    mysql_close(db);
    return *flavor ? 0 : sl_error_set(err, SL_ENOMEM, "out of memory");
}

/* Run a query returning one text column; append column 0 of each row to an array, skipping
 * rows for which skip(name) is true. */
static json_t *list_query(MYSQL *db, const char *sql, int (*skip)(const char *), sl_error *err)
{
    if (mysql_query(db, sql) != 0) {
        /* 1049: unknown database */
        sl_error_set(err, mysql_errno(db) == 1049 ? SL_ENOENT : SL_EDB, "%s: %s (errno %u)", sql,
                     mysql_error(db), mysql_errno(db));
        return NULL;
    }
    MYSQL_RES *res = mysql_use_result(db);
    if (!res) {
        sl_error_set(err, SL_EDB, "%s: %s", sql, mysql_error(db));
        return NULL;
    }
    json_t *arr = json_array();
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(res)))
        if (row[0] && !(skip && skip(row[0])))
            json_array_append_new(arr, json_string(row[0]));
    mysql_free_result(res);
    return arr;
}

static int system_schema(const char *s)
{
    static const char *const sys[] = { "information_schema", "performance_schema", "mysql", "sys",
                                       NULL };
    for (int i = 0; sys[i]; i++)
        if (!strcasecmp(s, sys[i]))
            return 1;
    return 0;
}

json_t *sl__source_schemas(sl_api *a, const json_t *src, sl_error *err)
{
    MYSQL *db = sl__source_connect(a, src, err);
    if (!db)
        return NULL;
    json_t *arr = list_query(db, "SHOW DATABASES", system_schema, err);
    mysql_close(db);
    return arr;
}

json_t *sl__source_tables(sl_api *a, const json_t *src, const char *schema, sl_error *err)
{
    MYSQL *db = sl__source_connect(a, src, err);
    if (!db)
        return NULL;
    /* identifier quoted with backticks, embedded backticks doubled */
    size_t n = strlen(schema);
    char *sql = malloc(2 * n + 64), *p;
    if (!sql) {
        mysql_close(db);
        sl_error_set(err, SL_ENOMEM, "out of memory");
        return NULL;
    }
    p = sql + sprintf(sql, "SHOW FULL TABLES IN `");
    for (size_t i = 0; i < n; i++) {
        if (schema[i] == '`')
            *p++ = '`';
        *p++ = schema[i];
    }
    strcpy(p, "` WHERE Table_Type != 'VIEW'");
    json_t *arr = list_query(db, sql, NULL, err);
    free(sql);
    mysql_close(db);
    return arr;
}

int sl__source_local_time(sl_api *a, const json_t *src, const char *when, long long *out,
                          sl_error *err)
{
    MYSQL *db = sl__source_connect(a, src, err);
    if (!db)
        return err->code ? err->code : SL_ECONN;
    /* UNIX_TIMESTAMP reads its argument in the session's zone, which is the server's
     * time_zone: what the source's own clock meant by that wall time (DST included) */
    char esc[130], sql[200];
    size_t n = strlen(when);
    if (n > 64) {
        mysql_close(db);
        return sl_error_set(err, SL_EINVAL, "not a time");
    }
    char norm[65];
    snprintf(norm, sizeof norm, "%s", when);
    char *t = strchr(norm, 'T');
    if (t)
        *t = ' ';
    mysql_real_escape_string(db, esc, norm, (unsigned long)strlen(norm));
    snprintf(sql, sizeof sql, "SELECT UNIX_TIMESTAMP('%s')", esc);
    int rc = SL_EDB;
    if (mysql_query(db, sql) != 0) {
        sl_error_set(err, SL_EDB, "%s (errno %u)", mysql_error(db), mysql_errno(db));
    } else {
        MYSQL_RES *res = mysql_store_result(db);
        MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
        if (row && row[0] && atoll(row[0]) > 0) {
            *out = atoll(row[0]);
            rc = 0;
        } else {
            sl_error_set(err, SL_EINVAL, "the source cannot read it as a time");
        }
        if (res)
            mysql_free_result(res);
    }
    mysql_close(db);
    return rc;
}
