/*
 * test_e2e.c - incremental replication end to end on the sandbox: binlog-reader -> event-filter
 * -> route -> mysql-sink built in-process with core's runtime. Writes on the source (a type
 * matrix table routed to another name, a table whose deletes a filter ignores, a table no rule
 * selects, a DDL mid-stream), waits until the checkpoint reaches the source's position, and
 * compares source and target with CHECKSUM TABLE and row counts. Then a DDL that waits for a
 * lock another session holds on the target (test_ddl_waits_for_a_lock), rows over the target's
 * max_allowed_packet (test_rows_over_packet), and the DDL of a table a merging task only renames
 * (test_merge_task_other_tables).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "testlib.h"

static const char *RULES =
    "[{\"schema\":\"e2e\",\"table\":\"t\",\"target_schema\":\"e2e_r\",\"target_table\":\"t_routed\",\"filters\":[]},"
    " {\"schema\":\"e2e\",\"table\":\"f\",\"target_schema\":\"e2e_r\",\"target_table\":\"\","
    "  \"filters\":[{\"name\":\"nodel\",\"ignore_event\":[\"delete\"],\"ignore_sql\":[\"^truncate\"]}]}]";

/* The options of the reader, of the filter and route stages, and of the sink for task (its
 * syncer checkpoint `<task>_syncer_checkpoint`), source src-1 read from file:pos. */
typedef struct opts { char ropts[4096], fopts[2048], sopts[2048]; } opts;

static void make_opts(opts *o, const char *task, const char *rules, const char *file,
                      unsigned long long pos, int threads)
{
    char target[1024], source[1024], t[256];
    snprintf(t, sizeof t, "\"task_name\":\"%s\",\"source_name\":\"src-1\"", task);
    tl_conn_json("TARGET", target, sizeof target);
    tl_conn_json("SOURCE", source, sizeof source);
    snprintf(o->ropts, sizeof o->ropts,
             "{%s,%s,%s,\"rules\":%s,\"binlog_name\":\"%s\",\"binlog_pos\":%llu,\"heartbeat_ms\":200}",
             target, t, source, rules, file, pos);
    snprintf(o->fopts, sizeof o->fopts, "{\"rules\":%s}", rules);
    snprintf(o->sopts, sizeof o->sopts, "{%s,%s,\"repl_threads\":%d,\"repl_batch\":50}", target, t, threads);
}

/* Start binlog-reader -> route -> mysql-sink with o's options, named "<task>/src-1/incremental"
 * (the pipeline copies what it keeps of both). */
static void start_chain(tl_pipe *r, opts *o, const char *task)
{
    static const char *const plugins[] = { "binlog-reader", "route", "mysql-sink", NULL };
    sl_stage_spec st[3] = { { "reader", "binlog-reader", o->ropts }, { "route", "route", o->fopts },
                            { "sink", "mysql-sink", o->sopts } };
    char name[128];
    snprintf(name, sizeof name, "%s/src-1/incremental", task);
    tl_pipe_new(r, tl_registry(plugins, NULL), name, st, 3, 1);
}

/* A DDL whose table another session holds (an open transaction on the target) waits, gives up
 * its place every few seconds (ddl_lock_waits counts it), and runs once the lock goes. The same
 * wait between two sources' sinks of a shard-merged table had no end (mysql_sink.c, apply_ddl). */
static void test_ddl_waits_for_a_lock(MYSQL *src, MYSQL *dst)
{
    static const char *RULES_LK = "[{\"schema\":\"e2e_lk\",\"table\":\"\",\"target_schema\":\"\","
                                  "\"target_table\":\"\",\"filters\":[]}]";
    tl_sql(src, "DROP DATABASE IF EXISTS e2e_lk");
    tl_sql(dst, "DROP DATABASE IF EXISTS e2e_lk; DROP TABLE IF EXISTS dm_meta.`e2e-lock_syncer_checkpoint`");
    char file[256], f1[256], f2[256];
    unsigned long long pos, p1, p2;
    tl_master_pos(src, file, sizeof file, &pos);
    tl_sql(src, "CREATE DATABASE e2e_lk; CREATE TABLE e2e_lk.t (id INT PRIMARY KEY, v INT); "
           "INSERT INTO e2e_lk.t SELECT seq, seq FROM e2e_lk.seq_1_to_10");
    tl_master_pos(src, f1, sizeof f1, &p1);

    opts o;
    make_opts(&o, "e2e-lock", RULES_LK, file, pos, 2);
    tl_pipe r;
    start_chain(&r, &o, "e2e-lock");
    TL_CHECK(tl_wait_ckpt(&r, dst, "e2e-lock", f1, p1, 60), "the table was not replicated");

    /* another session's open transaction holds the table's metadata lock */
    MYSQL *holder = tl_connect("TARGET");
    tl_sql(holder, "BEGIN");
    TL_CHECK(strcmp(tl_peek(holder, 0, "SELECT COUNT(*) FROM e2e_lk.t"), "10") == 0, "e2e_lk.t rows");
    tl_sql(src, "ALTER TABLE e2e_lk.t ADD COLUMN c INT DEFAULT 7; INSERT INTO e2e_lk.t VALUES (11, 11, 8)");
    tl_master_pos(src, f2, sizeof f2, &p2);
    long long waits = 0;
    for (int i = 0; i < 600 && waits < 1; i++) {        /* up to a minute */
        usleep(100000);
        waits = tl_pipe_metric(&r, "ddl_lock_waits");
    }
    TL_CHECK(waits >= 1, "the ALTER did not give up its place while the lock was held (ddl_lock_waits %lld)",
             waits);
    TL_CHECK(strncmp(tl_peek(dst, 0, "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = "
                                    "'e2e_lk' AND COLUMN_NAME = 'c'"), "0", 1) == 0,
             "the ALTER ran while the lock was held");
    tl_sql(holder, "COMMIT");
    mysql_close(holder);
    int reached = tl_wait_ckpt(&r, dst, "e2e-lock", f2, p2, 60);
    sl_error e = {0};
    sl_pipeline_error(r.p, &e);
    TL_CHECK(reached, "the checkpoint did not pass the ALTER once the lock went (error: %s)", e.msg);
    tl_pipe_free(&r);
    const char *cs = tl_peek(src, 1, "CHECKSUM TABLE e2e_lk.t"), *ct = tl_peek(dst, 1, "CHECKSUM TABLE e2e_lk.t");
    TL_CHECK(cs[0] && strcmp(cs, ct) == 0, "CHECKSUM e2e_lk.t: source %s, target %s", cs, ct);
    tl_sql(src, "DROP DATABASE e2e_lk");
}


/* Whether the pipe pauses (gives up running) within deadline_s; its error in e. */
static int pauses(tl_pipe *r, int deadline_s, sl_error *e)
{
    for (int t = 0; t < deadline_s * 10 && sl_pipeline_stage(r->p) == SL_STAGE_RUNNING; t++)
        usleep(100000);
    sl_pipeline_error(r->p, e);
    return sl_pipeline_stage(r->p) != SL_STAGE_RUNNING;
}

/* A task that merges shards (e2e_m.s_* into e2e_mt.s) and only renames the schema of its other
 * tables (e2e_m.* into e2e_mt), with no shard_mode: a DDL of such another table runs on its own
 * target table. The route took any table whose routed name differs from its source's for a
 * shard, so the CREATE, TRUNCATE, ALTER and RENAME of e2e_m.solo paused the task with "DDL on a
 * shard-merged table". A shard's DDL still pauses it, naming the merged table. */
static void test_merge_task_other_tables(MYSQL *src, MYSQL *dst)
{
    static const char *RULES_M =
        "[{\"schema\":\"e2e_m\",\"table\":\"s_*\",\"target_schema\":\"e2e_mt\",\"target_table\":\"s\","
        "\"filters\":[]},{\"schema\":\"e2e_m\",\"table\":\"\",\"target_schema\":\"e2e_mt\","
        "\"target_table\":\"\",\"filters\":[]}]";
    tl_sql(src, "DROP DATABASE IF EXISTS e2e_m");
    tl_sql(dst, "DROP DATABASE IF EXISTS e2e_mt; DROP TABLE IF EXISTS dm_meta.`e2e-merge_syncer_checkpoint`");
    tl_sql(src, "CREATE DATABASE e2e_m; CREATE TABLE e2e_m.s_1 (id INT PRIMARY KEY, v INT); "
           "CREATE TABLE e2e_m.s_2 (id INT PRIMARY KEY, v INT)");
    tl_sql(dst, "CREATE DATABASE e2e_mt; CREATE TABLE e2e_mt.s (id INT PRIMARY KEY, v INT)");
    char file[256], f1[256];
    unsigned long long pos, p1;
    tl_master_pos(src, file, sizeof file, &pos);
    tl_sql(src, "INSERT INTO e2e_m.s_1 VALUES (1, 1); INSERT INTO e2e_m.s_2 VALUES (2, 2); "
           "CREATE TABLE e2e_m.solo (id INT PRIMARY KEY, v INT); "
           "INSERT INTO e2e_m.solo SELECT seq, seq FROM e2e_m.seq_1_to_5; "
           "TRUNCATE TABLE e2e_m.solo; ALTER TABLE e2e_m.solo ADD w INT DEFAULT 9; "
           "INSERT INTO e2e_m.solo (id, v) VALUES (7, 7); RENAME TABLE e2e_m.solo TO e2e_m.solo2; "
           "INSERT INTO e2e_m.solo2 VALUES (8, 8, 8); INSERT INTO e2e_m.s_1 VALUES (3, 3)");
    tl_master_pos(src, f1, sizeof f1, &p1);

    opts o;
    make_opts(&o, "e2e-merge", RULES_M, file, pos, 2);
    tl_pipe r;
    start_chain(&r, &o, "e2e-merge");
    int reached = tl_wait_ckpt(&r, dst, "e2e-merge", f1, p1, 60);
    sl_error e = {0};
    sl_pipeline_error(r.p, &e);
    TL_CHECK(reached, "the merging task did not pass the DDL of a table it only renames (error: %s)", e.msg);
    TL_CHECK(strcmp(tl_peek(dst, 0, "SELECT GROUP_CONCAT(CONCAT_WS(':', id, v, w) ORDER BY id) FROM "
                                    "e2e_mt.solo2"), "7:7:9,8:8:8") == 0 &&
             strncmp(tl_peek(dst, 0, "SELECT COUNT(*) FROM e2e_mt.solo"), "ERROR", 5) == 0,
             "e2e_mt.solo2 is not the source's e2e_m.solo2: %s",
             tl_peek(dst, 0, "SELECT GROUP_CONCAT(CONCAT_WS(':', id, v, w) ORDER BY id) FROM e2e_mt.solo2"));
    TL_CHECK(tl_int(dst, "SELECT COUNT(*) FROM e2e_mt.s") == 3, "the merged table has %s rows, not 3",
             tl_peek(dst, 0, "SELECT COUNT(*) FROM e2e_mt.s"));
    /* a shard's DDL without shard_mode still pauses */
    tl_sql(src, "ALTER TABLE e2e_m.s_2 ADD c INT");
    sl_error e2 = {0};
    int paused = pauses(&r, 60, &e2);
    tl_pipe_free(&r);
    TL_CHECK(paused && strstr(e2.msg, "shard-merged table e2e_mt.s") && strstr(e2.msg, "shard_mode"),
             "a shard's ALTER did not pause the task naming the merged table (paused %d, error: %s)",
             paused, e2.msg);
    tl_sql(src, "DROP DATABASE e2e_m");
    tl_sql(dst, "DROP DATABASE e2e_mt");
}


/* Rows longer than the target's max_allowed_packet takes, up to 20 MB on a target set to 4 MiB
 * (MariaDB's default is 16 MiB; the source takes 1 GiB): one statement cannot carry them, and the
 * sink sent them anyway and lost the connection ("Server has gone away") until a pause. Rows each
 * under the packet but together over it go in several statements; a row over half of it goes as
 * LOAD DATA LOCAL of a one-line file the sink reads from the event (INSERT; UPDATE and a
 * compacted upsert delete by the key first); strings keep their character set (a latin1 column),
 * binary its every byte, NULL stays NULL. An UPDATE of a keyless table's long row cannot be
 * applied that way: the task pauses with an error that says to raise max_allowed_packet. */
static void test_rows_over_packet(MYSQL *src, MYSQL *dst)
{
    static const char *RULES_BP = "[{\"schema\":\"e2e_bp\",\"table\":\"\",\"target_schema\":\"\","
                                  "\"target_table\":\"\",\"filters\":[]}]";
    tl_sql(src, "DROP DATABASE IF EXISTS e2e_bp");
    tl_sql(dst, "DROP DATABASE IF EXISTS e2e_bp; DROP TABLE IF EXISTS dm_meta.`e2e-bp_syncer_checkpoint`");
    char file[256], f1[256];
    unsigned long long pos, p1;
    tl_master_pos(src, file, sizeof file, &pos);
    tl_sql(src, "CREATE DATABASE e2e_bp; "
           "CREATE TABLE e2e_bp.t (id INT PRIMARY KEY, v INT, s LONGTEXT CHARACTER SET utf8mb4, "
           "l MEDIUMTEXT CHARACTER SET latin1, b LONGBLOB, j JSON, d DATETIME(6), e ENUM('a', 'b') NULL, "
           "g INT AS (v * 2) VIRTUAL); "
           "CREATE TABLE e2e_bp.nokey (v INT, b LONGBLOB); "
           "CREATE TABLE e2e_bp.bytes (n INT PRIMARY KEY); "
           "INSERT INTO e2e_bp.bytes SELECT seq FROM e2e_bp.seq_0_to_255");
    char f0[256];
    unsigned long long p0;
    tl_master_pos(src, f0, sizeof f0, &p0);
    /* 3,000,000 x é (6 MB of utf8mb4), every byte value in 3 MB of binary (6 MB as hex) */
    tl_sql(src, "INSERT INTO e2e_bp.t (id, v, s, l, b, j, d) VALUES (1, 1, REPEAT('é', 3000000), "
           "REPEAT('ÿé\t\\\\', 10), REPEAT((SELECT GROUP_CONCAT(CHAR(n) ORDER BY n SEPARATOR '') "
           "FROM e2e_bp.bytes), 11720), '{\"a\": [1, \"\\\\t\"]}', '2026-12-06 01:02:03.456789')");
    /* 40 rows of 300 kB in one statement: each fits, all together do not */
    tl_sql(src, "INSERT INTO e2e_bp.t (id, v, s, b) SELECT 100 + seq, seq, REPEAT(CHAR(64 + seq), 300000), "
           "NULL FROM e2e_bp.seq_1_to_40");
    tl_sql(src, "UPDATE e2e_bp.t SET v = 2, d = NULL WHERE id = 1");              /* a long UPDATE */
    tl_sql(src, "UPDATE e2e_bp.t SET id = 2 WHERE id = 1");                       /* of the key */
    tl_sql(src, "BEGIN; UPDATE e2e_bp.t SET v = 3 WHERE id = 2; UPDATE e2e_bp.t SET v = 2 WHERE id = 2; "
           "COMMIT");                                                            /* an upsert */
    tl_sql(src, "BEGIN; INSERT INTO e2e_bp.t (id, v, s, l, b) VALUES (3, 3, NULL, NULL, REPEAT(x'00', 5000000)); "
           "UPDATE e2e_bp.t SET v = 4 WHERE id = 3; "                                /* compacted */
           "INSERT INTO e2e_bp.t (id, v, b) VALUES (4, 4, REPEAT('\\n', 3000000)); "
           "UPDATE e2e_bp.t SET v = 5, s = 'short now' WHERE id = 4; COMMIT");
    char f5[256];
    unsigned long long p5;
    tl_master_pos(src, f5, sizeof f5, &p5);
    tl_sql(src, "INSERT INTO e2e_bp.t (id, v, b) VALUES (5, 5, REPEAT('x', 20000000)); DELETE FROM e2e_bp.t WHERE id = 101");
    /* an ENUM's index 0, which a non-strict session stores for an invalid value: writing it warns
     * (1265) as it did on the source, and a long row's LOAD DATA took that for an error */
    tl_sql(src, "SET STATEMENT sql_mode = '' FOR INSERT INTO e2e_bp.t (id, v, e, s) "
           "VALUES (6, 6, 'zzz', REPEAT('q', 2200000))");
    tl_sql(src, "INSERT INTO e2e_bp.nokey VALUES (1, REPEAT('k', 3000000))");      /* a keyless INSERT */
    tl_master_pos(src, f1, sizeof f1, &p1);

    tl_sql(dst, "SET GLOBAL max_allowed_packet = 4194304");    /* for the sink's connections */
    opts o;
    make_opts(&o, "e2e-bp", RULES_BP, file, pos, 2);
    tl_pipe r;
    start_chain(&r, &o, "e2e-bp");
    int reached = tl_wait_ckpt(&r, dst, "e2e-bp", f1, p1, 60);
    sl_error e = {0};
    sl_pipeline_error(r.p, &e);
    long long longs = tl_pipe_metric(&r, "rows_loaded_long");
    static const char *const TABLES[] = { "e2e_bp.t", "e2e_bp.nokey" };
    char sums[2][2][32];
    for (int k = 0; k < 2; k++) {
        snprintf(sums[k][0], sizeof sums[k][0], "%s", tl_peek(src, 1, "CHECKSUM TABLE %s", TABLES[k]));
        snprintf(sums[k][1], sizeof sums[k][1], "%s", tl_peek(dst, 1, "CHECKSUM TABLE %s", TABLES[k]));
    }
    /* then an UPDATE of the keyless long row */
    tl_sql(src, "UPDATE e2e_bp.nokey SET v = 2");
    sl_error e2 = {0};
    int paused = reached && pauses(&r, 60, &e2);
    tl_pipe_free(&r);

    /* safe mode (REPLACE) applies the same rows again (after the DDLs) over the target that has
     * them: still the source's table (the keyless one is left out: REPLACE cannot make it
     * idempotent) */
    static const char *RULES_T = "[{\"schema\":\"e2e_bp\",\"table\":\"t\",\"target_schema\":\"\","
                                 "\"target_table\":\"\",\"filters\":[]}]";
    tl_sql(dst, "DROP TABLE dm_meta.`e2e-bp_syncer_checkpoint`");
    make_opts(&o, "e2e-bp", RULES_T, f0, p0, 2);
    o.sopts[strlen(o.sopts) - 1] = '\0';
    strcat(o.sopts, ",\"safe_mode\":true}");
    start_chain(&r, &o, "e2e-bp");
    int again = tl_wait_ckpt(&r, dst, "e2e-bp", f1, p1, 60);
    sl_error e3 = {0};
    sl_pipeline_error(r.p, &e3);
    long long longs2 = tl_pipe_metric(&r, "rows_loaded_long");
    tl_pipe_free(&r);
    const char *cs = tl_peek(src, 1, "CHECKSUM TABLE e2e_bp.t"), *ct = tl_peek(dst, 1, "CHECKSUM TABLE e2e_bp.t");
    TL_CHECK(again && longs2 >= 4 && cs[0] && strcmp(cs, ct) == 0,
             "safe mode again: checkpoint reached %d, rows_loaded_long %lld, CHECKSUM source %s, target %s "
             "(error: %s)", again, longs2, cs, ct, e3.msg);

    /* without safe mode the INSERT of row 5 again collides: the long row is a duplicate of the
     * target's, and the task pauses saying so (LOAD DATA's IGNORE alone would have skipped it) */
    tl_sql(dst, "DROP TABLE dm_meta.`e2e-bp_syncer_checkpoint`");
    make_opts(&o, "e2e-bp", RULES_T, f5, p5, 2);
    start_chain(&r, &o, "e2e-bp");
    sl_error e4 = {0};
    int dup = pauses(&r, 60, &e4);
    tl_pipe_free(&r);
    tl_sql(dst, "SET GLOBAL max_allowed_packet = 1073741824");
    TL_CHECK(dup && strstr(e4.msg, "Duplicate entry") && strstr(e4.msg, "longer than max_allowed_packet"),
             "a long row's duplicate did not pause the task with the server's error (paused %d, error: %s)",
             dup, e4.msg);

    TL_CHECK(reached, "the checkpoint did not pass the long rows (error: %s)", e.msg);
    TL_CHECK(longs >= 4, "rows_loaded_long is %lld, not at least 4 (rows 1, 2, 3 and 4 and nokey's)", longs);
    for (int k = 0; k < 2; k++)
        TL_CHECK(sums[k][0][0] && strcmp(sums[k][0], sums[k][1]) == 0, "CHECKSUM %s: source %s, target %s",
                 TABLES[k], sums[k][0], sums[k][1]);
    TL_CHECK(tl_int(dst, "SELECT COUNT(*) FROM e2e_bp.t") == 44 &&
             tl_int(dst, "SELECT COUNT(*) FROM e2e_bp.t WHERE id = 2 AND v = 2 AND d IS NULL AND "
                         "s = REPEAT('é', 3000000) AND l = REPEAT('ÿé\t\\\\', 10) AND LENGTH(b) = 3000320") == 1 &&
             tl_int(dst, "SELECT COUNT(*) FROM e2e_bp.t WHERE id = 3 AND v = 4 AND s IS NULL AND l IS NULL") == 1,
             "the long rows on the target are not the source's");
    TL_CHECK(paused && strstr(e2.msg, "max_allowed_packet") && strstr(e2.msg, "no primary or unique key"),
             "the keyless long UPDATE did not pause the task with an error naming max_allowed_packet "
             "(paused %d, error: %s)", paused, e2.msg);
    tl_sql(src, "DROP DATABASE e2e_bp");
}

int main(void)
{
    MYSQL *src = tl_connect("SOURCE"), *dst = tl_connect("TARGET");
    tl_sql(src, "DROP DATABASE IF EXISTS e2e");
    tl_sql(dst, "DROP DATABASE IF EXISTS e2e; DROP DATABASE IF EXISTS e2e_r; CREATE DATABASE e2e_r; "
           "CREATE DATABASE IF NOT EXISTS dm_meta; DROP TABLE IF EXISTS dm_meta.`e2e-task_syncer_checkpoint`");
    char file[256];
    unsigned long long pos;
    tl_master_pos(src, file, sizeof file, &pos);

    opts o;
    make_opts(&o, "e2e-task", RULES, file, pos, 4);

    /* the source workload, written before the pipeline starts (it reads from the position) */
    tl_sql(src, "CREATE DATABASE e2e; SET time_zone='+00:00';"
           "CREATE TABLE e2e.t (id INT PRIMARY KEY, i BIGINT, bu BIGINT UNSIGNED, de DECIMAL(30,10), f FLOAT, "
           "d DOUBLE, dt DATE, tm TIME(3), dtm DATETIME(6), ts TIMESTAMP(3) NULL, y YEAR, s VARCHAR(40), "
           "l VARCHAR(20) CHARACTER SET latin1, vb VARBINARY(16), bl BLOB, js JSON, bt BIT(7), "
           "en ENUM('a','b','c'), st SET('x','y','z'), g POINT, gen INT AS (i + 1) VIRTUAL, u VARCHAR(20), UNIQUE KEY(u));"
           "CREATE TABLE e2e.f (id INT PRIMARY KEY, v INT);"
           "CREATE TABLE e2e.other (id INT PRIMARY KEY)");
    for (int k = 1; k <= 300; k++) {
        tl_sql(src, "INSERT INTO e2e.t (id,i,bu,de,f,d,dt,tm,dtm,ts,y,s,l,vb,bl,js,bt,en,st,g,u) VALUES (%d, %d, %llu, "
               "'-123456.0123456789', 1.5, %d.25, '2020-02-29', '-12:34:56.789', '2021-01-01 10:00:00.123456', "
               "'2022-03-04 05:06:07.891', 2001, 'héllo \\'q\\' %d', 'café', X'00FF%02X', REPEAT('b', %d), "
               "'{\"k\": %d}', b'1010101', 'b', 'x,z', ST_GeomFromText('POINT(1 %d)'), 'u%d');"
               "INSERT INTO e2e.f VALUES (%d, %d); INSERT INTO e2e.other VALUES (%d)",
               k, -k, 18446744073709551615ull - (unsigned)k, k, k, k & 0xff, k, k, k, k, k, k, k);
        if (k % 3 == 0)
            tl_sql(src, "UPDATE e2e.t SET i = i * 2, s = 'upd', u = 'v%d' WHERE id = %d", k, k - 1);
        if (k % 10 == 0)
            tl_sql(src, "DELETE FROM e2e.t WHERE id = %d; DELETE FROM e2e.f WHERE id = %d", k - 5, k - 5);
        if (k == 150)
            tl_sql(src, "ALTER TABLE e2e.t ADD COLUMN c2 INT DEFAULT 7");
    }
    tl_sql(src, "BEGIN; UPDATE e2e.t SET d = d + 1; COMMIT");     /* one transaction, all rows */
    tl_sql(src, "TRUNCATE TABLE e2e.f");                            /* ignored by ignore_sql */
    char endfile[256];
    unsigned long long endpos;
    tl_master_pos(src, endfile, sizeof endfile, &endpos);

    static const char *const plugins[] = { "binlog-reader", "event-filter", "route", "mysql-sink", NULL };
    sl_stage_spec st[4] = { { "reader", "binlog-reader", o.ropts }, { "filter", "event-filter", o.fopts },
                            { "route", "route", o.fopts }, { "sink", "mysql-sink", o.sopts } };
    tl_pipe r;
    tl_pipe_new(&r, tl_registry(plugins, NULL), "e2e-task/src-1/incremental", st, 4, 1);
    int reached = tl_wait_ckpt(&r, dst, "e2e-task", endfile, endpos, 60);
    sl_error e = {0};
    sl_pipeline_error(r.p, &e);
    TL_CHECK(reached, "the checkpoint did not reach %s:%llu (stage %s, error: %s)", endfile, endpos,
             sl_stage_name(sl_pipeline_stage(r.p)), e.msg);
    char *status = sl_pipeline_status_json(r.p);
    TL_CHECK(status && strstr(status, "\"unit\":\"Sync\""), "status: %s", status ? status : "(null)");
    free(status);
    tl_pipe_free(&r);

    /* routed matrix table equal to the source */
    const char *cs = tl_peek(src, 1, "CHECKSUM TABLE e2e.t"), *ct = tl_peek(dst, 1, "CHECKSUM TABLE e2e_r.t_routed");
    TL_CHECK(strcmp(cs, ct) == 0 && cs[0], "CHECKSUM e2e.t %s != e2e_r.t_routed %s", cs, ct);
    const char *sql_rows = "SELECT COUNT(*), SUM(CRC32(CONCAT_WS('|', id, i, bu, de, f, d, dt, tm, dtm, ts, y, s, HEX(l), "
                           "HEX(vb), bl, js, bt+0, en, st, ST_AsText(g), gen, u, c2))) FROM %s";
    char a[512], b[512];
    snprintf(a, sizeof a, sql_rows, "e2e.t");
    snprintf(b, sizeof b, sql_rows, "e2e_r.t_routed");
    char ra[256];
    snprintf(ra, sizeof ra, "%s/%s", tl_peek(src, 0, "%s", a), tl_peek(src, 1, "%s", a));
    char rb[256];
    snprintf(rb, sizeof rb, "%s/%s", tl_peek(dst, 0, "%s", b), tl_peek(dst, 1, "%s", b));
    TL_CHECK(strcmp(ra, rb) == 0, "row by row: source %s target %s", ra, rb);
    /* deletes ignored on f, truncate ignored: every inserted row is there */
    TL_CHECK(strcmp(tl_peek(dst, 0, "SELECT COUNT(*) FROM e2e_r.f"), "300") == 0, "e2e_r.f rows: %s",
          tl_peek(dst, 0, "SELECT COUNT(*) FROM e2e_r.f"));
    /* not selected: never created */
    TL_CHECK(strncmp(tl_peek(dst, 0, "SELECT COUNT(*) FROM e2e.other"), "ERROR", 5) == 0 &&
          strncmp(tl_peek(dst, 0, "SELECT COUNT(*) FROM e2e_r.other"), "ERROR", 5) == 0, "e2e.other replicated");
    test_ddl_waits_for_a_lock(src, dst);
    test_rows_over_packet(src, dst);
    test_merge_task_other_tables(src, dst);
    mysql_close(src);
    mysql_close(dst);
    return tl_finish("sync e2e");
}
