/*
 * test_common_db.c - the parts of plugins/common that need a server, against the sandbox target
 * (label mysql): sl_myconn_open (utf8mb4, the init statement, TCP keepalive, LOAD DATA LOCAL, TLS material
 * written to private files that never outlive the call, a clear "host:port: message (errno N)"
 * when it fails), sl_myconn_exec (every result drained, the
 * statement quoted in the error), and sl_ckpt_read of the syncer checkpoint (worker 0 of this
 * source only, missing schema/table/row = SL_ENOENT, NULL and empty GTID alike).
 */
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testlib.h"
#include "ckpt.h"
#include "myconn.h"

#define DB "sluice_t_common_db"

static sl_myconn_opts target_opts(void)
{
    sl_myconn_opts o = { .host = tl_env("SLUICE_TARGET_HOST"),
                         .port = atoi(tl_env("SLUICE_TARGET_PORT")),
                         .user = tl_env("SLUICE_TARGET_USER"),
                         .password = tl_env_or("SLUICE_TARGET_PASSWORD", "") };
    return o;
}

static int files_in(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static void test_open_and_exec(void)
{
    sl_error err = { 0 };
    sl_myconn_opts o = target_opts();
    o.init_sql = "SET SESSION time_zone = '+03:00'";
    MYSQL *db = sl_myconn_open(&o, &err);
    if (!db)
        tl_fail("sl_myconn_open: %s", err.msg);
    TL_CHECK(strcmp(tl_str(db, "SELECT @@character_set_client"), "utf8mb4") == 0, "charset %s",
             tl_str(db, "SELECT @@character_set_client"));
    TL_CHECK(strcmp(tl_str(db, "SELECT @@session.time_zone"), "+03:00") == 0, "init statement not run");

    /* TCP keepalive at sluice's timing, not the system's two hours (a host that goes away is
     * found while a long statement runs) */
    int sock = (int)mysql_get_socket(db), v[4] = { 0 };
    socklen_t vl = sizeof v[0];
    TL_CHECK(sock >= 0 && getsockopt(sock, SOL_SOCKET, SO_KEEPALIVE, &v[0], &vl) == 0 && v[0] == 1,
             "SO_KEEPALIVE %d", v[0]);
    vl = sizeof v[1];
    TL_CHECK(getsockopt(sock, IPPROTO_TCP, TCP_KEEPIDLE, &v[1], &vl) == 0 && v[1] == SL_MYCONN_KEEPIDLE,
             "TCP_KEEPIDLE %d", v[1]);
    vl = sizeof v[2];
    TL_CHECK(getsockopt(sock, IPPROTO_TCP, TCP_KEEPINTVL, &v[2], &vl) == 0 && v[2] == SL_MYCONN_KEEPINTVL,
             "TCP_KEEPINTVL %d", v[2]);
    vl = sizeof v[3];
    TL_CHECK(getsockopt(sock, IPPROTO_TCP, TCP_KEEPCNT, &v[3], &vl) == 0 && v[3] == SL_MYCONN_KEEPCNT,
             "TCP_KEEPCNT %d", v[3]);

    /* a procedure's several results are all drained: the connection stays usable */
#define EXEC(sql) sl_myconn_exec(db, sql, strlen(sql), &err)
    TL_CHECK(EXEC("DROP DATABASE IF EXISTS `" DB "`") == 0, "drop: %s", err.msg);
    TL_CHECK(EXEC("CREATE DATABASE `" DB "`") == 0, "create: %s", err.msg);
    TL_CHECK(EXEC("CREATE PROCEDURE `" DB "`.`two`() BEGIN SELECT 1; SELECT 2; END") == 0,
             "create procedure: %s", err.msg);
    TL_CHECK(EXEC("CALL `" DB "`.`two`()") == 0, "call: %s", err.msg);
    TL_CHECK(tl_int(db, "SELECT 40 + 2") == 42, "connection unusable after a procedure's results");
    TL_CHECK(EXEC("DROP DATABASE `" DB "`") == 0, "drop: %s", err.msg);
#undef EXEC

    /* a statement's error: SL_EDB, server message, errno and the statement's first 200 bytes */
    char bad[400];
    memset(bad, 'x', sizeof bad);
    memcpy(bad, "SELEKT ", 7);
    err = (sl_error){ 0 };
    TL_CHECK(sl_myconn_exec(db, bad, sizeof bad, &err) == SL_EDB, "syntax error not SL_EDB");
    TL_CHECK(strstr(err.msg, "(errno 1064) in statement: SELEKT xxx") != NULL, "message: %s", err.msg);
    const char *stmt = strstr(err.msg, "in statement: ");
    TL_CHECK(stmt && strlen(stmt) == strlen("in statement: ") + 200 + 3 &&
             strcmp(stmt + strlen(stmt) - 3, "...") == 0, "statement not cut at 200 bytes: %s", err.msg);
    mysql_close(db);

    /* local_infile: LOAD DATA LOCAL INFILE reads a client file (what the loader relies on; the
     * connector allows it without the option too, so only the positive case is ours) */
    char path[] = "/tmp/sluice-local-infile-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, "1\n2\n", 4) != 4)
        tl_fail("temporary file");
    close(fd);
    char load[300];
    snprintf(load, sizeof load, "LOAD DATA LOCAL INFILE '%s' INTO TABLE `" DB "`.`t` (a)", path);
    o.local_infile = 1;
    db = sl_myconn_open(&o, &err);
    if (!db)
        tl_fail("sl_myconn_open (local_infile): %s", err.msg);
    tl_sql(db, "CREATE DATABASE IF NOT EXISTS `" DB "`");
    tl_sql(db, "CREATE OR REPLACE TABLE `" DB "`.`t` (a INT)");
    err = (sl_error){ 0 };
    TL_CHECK(sl_myconn_exec(db, load, strlen(load), &err) == 0 &&
             tl_int(db, "SELECT COUNT(*) FROM `" DB "`.`t`") == 2, "LOAD DATA LOCAL: %s", err.msg);
    tl_sql(db, "DROP DATABASE `" DB "`");
    mysql_close(db);
    unlink(path);
}

static void test_open_fails_clearly(void)
{
    sl_error err = { 0 };
    sl_myconn_opts o = target_opts();
    o.password = "surely-not-the-password";
    o.user = "sluice_no_such_user";
    TL_CHECK(sl_myconn_open(&o, &err) == NULL, "login with a wrong user succeeded");
    char want[300];
    snprintf(want, sizeof want, "%s:%d: ", o.host, o.port);
    /* a server that answers and refuses is SL_EDB, not SL_ECONN: no retry loop spins on it */
    TL_CHECK(err.code == SL_EDB && strncmp(err.msg, want, strlen(want)) == 0 &&
             strstr(err.msg, "(errno 1045)"), "wrong user: %d %s", err.code, err.msg);

    /* TLS material goes to private temporary files that are gone when the call returns, even
     * when the handshake fails (the sandbox has no TLS, or the CA is garbage) */
    char dir[] = "/tmp/sluice-pem-test-XXXXXX";
    if (!mkdtemp(dir))
        tl_fail("mkdtemp");
    const char *old = getenv("TMPDIR");
    char *saved = old ? strdup(old) : NULL;
    setenv("TMPDIR", dir, 1);
    o = target_opts();
    o.ssl_ca = "-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n";
    o.ssl_key = "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n";
    err = (sl_error){ 0 };
    MYSQL *db = sl_myconn_open(&o, &err);
    TL_CHECK(db == NULL, "TLS with a garbage CA succeeded");
    TL_CHECK(err.msg[0] && (strstr(err.msg, "(errno 2026)") ? err.code == SL_EDB : err.code == SL_ECONN),
             "TLS failure: %d '%s'", err.code, err.msg);
    TL_CHECK(files_in(dir) == 0, "%d PEM file(s) left in %s", files_in(dir), dir);
    if (db)
        mysql_close(db);
    if (saved) {
        setenv("TMPDIR", saved, 1);
        free(saved);
    } else {
        unsetenv("TMPDIR");
    }
    rmdir(dir);
}

static void test_ckpt_read(void)
{
    MYSQL *db = tl_connect("TARGET");
    sl_error err = { 0 };
    sl_ckpt_pos p;
    tl_sql(db, "DROP DATABASE IF EXISTS `" DB "`");
    TL_CHECK(sl_ckpt_read(db, DB, "t`1", "src", &p, &err) == SL_ENOENT, "no schema: not SL_ENOENT");
    tl_sql(db, "CREATE DATABASE `" DB "`");
    TL_CHECK(sl_ckpt_read(db, DB, "t`1", "src", &p, &err) == SL_ENOENT, "no table: not SL_ENOENT");

    sl_sbuf b;
    sl_sbuf_init(&b);
    sl_ckpt_add_create_sql(&b, DB, "t`1");
    tl_sql(db, "%s", b.p);
    sl_sbuf_free(&b);
    TL_CHECK(sl_ckpt_read(db, DB, "t`1", "src", &p, &err) == SL_ENOENT, "no row: not SL_ENOENT");

    /* worker 0 of this source is the position; other workers and sources are not */
    tl_sql(db, "INSERT INTO `" DB "`.`t``1_syncer_checkpoint` (source_name, worker, binlog_name, "
               "binlog_pos, binlog_gtid, seq, is_snapshot) VALUES "
               "('src', 0, 'mysql-bin.000007', 1234, '0-1-99', 17, 1), "
               "('src', 3, 'mysql-bin.000008', 4, '0-1-120', 18, 0), "
               "('o''ther', 0, 'mysql-bin.000001', 4, NULL, 1, 0)");
    TL_CHECK(sl_ckpt_read(db, DB, "t`1", "src", &p, &err) == 0, "read: %s", err.msg);
    TL_CHECK(strcmp(p.binlog_name, "mysql-bin.000007") == 0 && p.binlog_pos == 1234 && p.seq == 17 &&
             p.is_snapshot == 1 && p.binlog_gtid && strcmp(p.binlog_gtid, "0-1-99") == 0,
             "read (%s, %llu, %s, %llu, %d)", p.binlog_name, (unsigned long long)p.binlog_pos,
             p.binlog_gtid ? p.binlog_gtid : "NULL", (unsigned long long)p.seq, p.is_snapshot);
    sl_ckpt_pos_clear(&p);
    /* a quote in the source name is data, not SQL; a NULL GTID reads as none */
    TL_CHECK(sl_ckpt_read(db, DB, "t`1", "o'ther", &p, &err) == 0, "read o'ther: %s", err.msg);
    TL_CHECK(p.binlog_gtid == NULL && p.binlog_pos == 4 && p.is_snapshot == 0, "o'ther row");
    sl_ckpt_pos_clear(&p);
    tl_sql(db, "UPDATE `" DB "`.`t``1_syncer_checkpoint` SET binlog_gtid = '' WHERE source_name = 'src' AND worker = 0");
    TL_CHECK(sl_ckpt_read(db, DB, "t`1", "src", &p, &err) == 0 && p.binlog_gtid == NULL,
             "an empty GTID is none");
    sl_ckpt_pos_clear(&p);

    /* a closed connection is SL_ECONN: the reader reconnects instead of failing the task */
    MYSQL *gone = tl_connect("TARGET");
    unsigned long id = mysql_thread_id(gone);
    tl_sql(db, "KILL CONNECTION %lu", id);
    err = (sl_error){ 0 };
    int rc = sl_ckpt_read(gone, DB, "t`1", "src", &p, &err);
    TL_CHECK(rc == SL_ECONN, "read on a killed connection: %d %s", rc, err.msg);
    mysql_close(gone);

    tl_sql(db, "DROP DATABASE `" DB "`");
    mysql_close(db);
}

int main(void)
{
    test_open_and_exec();
    test_open_fails_clearly();
    test_ckpt_read();
    return tl_finish("test_common_db");
}
