/*
 * test_e2e.c - incremental replication end to end on the sandbox: binlog-reader -> event-filter
 * -> route -> mysql-sink built in-process with core's runtime. Writes on the source (a type
 * matrix table routed to another name, a table whose deletes a filter ignores, a table no rule
 * selects, a DDL mid-stream), waits until the checkpoint reaches the source's position, and
 * compares source and target with CHECKSUM TABLE and row counts.
 */
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sluice/runtime.h>

static int failures;
#define CHECK(c, ...) do { if (!(c)) { failures++; fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

static const char *env(const char *n)
{
    const char *v = getenv(n);
    if (!v || !*v) {
        fprintf(stderr, "FAIL: %s is not set (eval \"$(scripts/sandbox env)\")\n", n);
        exit(1);
    }
    return v;
}

static MYSQL *conn(const char *who)
{
    char h[64], p[64], u[64], pw[64];
    snprintf(h, sizeof h, "SLUICE_%s_HOST", who);
    snprintf(p, sizeof p, "SLUICE_%s_PORT", who);
    snprintf(u, sizeof u, "SLUICE_%s_USER", who);
    snprintf(pw, sizeof pw, "SLUICE_%s_PASSWORD", who);
    MYSQL *db = mysql_init(NULL);
    mysql_options(db, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    if (!mysql_real_connect(db, env(h), env(u), getenv(pw), NULL, (unsigned)atoi(env(p)), NULL,
                            CLIENT_MULTI_STATEMENTS)) {
        fprintf(stderr, "FAIL: connect %s: %s\n", who, mysql_error(db));
        exit(1);
    }
    return db;
}

static void q(MYSQL *db, const char *sql)
{
    if (mysql_query(db, sql) != 0) {
        fprintf(stderr, "FAIL: %s: %s\n", sql, mysql_error(db));
        exit(1);
    }
    do {
        MYSQL_RES *r = mysql_store_result(db);
        if (r) mysql_free_result(r);
    } while (mysql_next_result(db) == 0);
}

static const char *q1(MYSQL *db, const char *sql, int col)
{
    static char out[4][1024];
    static int k;
    char *o = out[k++ & 3];
    o[0] = '\0';
    if (mysql_query(db, sql) != 0) {
        snprintf(o, 1024, "ERROR %s", mysql_error(db));
        return o;
    }
    MYSQL_RES *r = mysql_store_result(db);
    MYSQL_ROW row = r ? mysql_fetch_row(r) : NULL;
    if (row && row[col])
        snprintf(o, 1024, "%s", row[col]);
    if (r) mysql_free_result(r);
    return o;
}

static const char *RULES =
    "[{\"schema\":\"e2e\",\"table\":\"t\",\"target_schema\":\"e2e_r\",\"target_table\":\"t_routed\",\"filters\":[]},"
    " {\"schema\":\"e2e\",\"table\":\"f\",\"target_schema\":\"e2e_r\",\"target_table\":\"\","
    "  \"filters\":[{\"name\":\"nodel\",\"ignore_event\":[\"delete\"],\"ignore_sql\":[\"^truncate\"]}]}]";

int main(void)
{
    MYSQL *src = conn("SOURCE"), *dst = conn("TARGET");
    q(src, "DROP DATABASE IF EXISTS e2e");
    q(dst, "DROP DATABASE IF EXISTS e2e; DROP DATABASE IF EXISTS e2e_r; CREATE DATABASE e2e_r; "
           "CREATE DATABASE IF NOT EXISTS dm_meta; DROP TABLE IF EXISTS dm_meta.`e2e-task_syncer_checkpoint`");
    char file[256], pos[32];
    snprintf(file, sizeof file, "%s", q1(src, "SHOW MASTER STATUS", 0));
    snprintf(pos, sizeof pos, "%s", q1(src, "SHOW MASTER STATUS", 1));

    char common[1024], ropts[4096], fopts[2048], sopts[2048];
    snprintf(common, sizeof common,
             "\"target_host\":\"%s\",\"target_port\":%s,\"target_user\":\"%s\",\"target_password\":\"%s\","
             "\"task_name\":\"e2e-task\",\"source_name\":\"src-1\"",
             env("SLUICE_TARGET_HOST"), env("SLUICE_TARGET_PORT"), env("SLUICE_TARGET_USER"),
             getenv("SLUICE_TARGET_PASSWORD") ? getenv("SLUICE_TARGET_PASSWORD") : "");
    snprintf(ropts, sizeof ropts,
             "{%s,\"source_host\":\"%s\",\"source_port\":%s,\"source_user\":\"%s\",\"source_password\":\"%s\","
             "\"rules\":%s,\"binlog_name\":\"%s\",\"binlog_pos\":%s,\"heartbeat_ms\":200}",
             common, env("SLUICE_SOURCE_HOST"), env("SLUICE_SOURCE_PORT"), env("SLUICE_SOURCE_USER"),
             getenv("SLUICE_SOURCE_PASSWORD") ? getenv("SLUICE_SOURCE_PASSWORD") : "", RULES, file, pos);
    snprintf(fopts, sizeof fopts, "{\"rules\":%s}", RULES);
    snprintf(sopts, sizeof sopts, "{%s,\"repl_threads\":4,\"repl_batch\":50}", common);

    /* the source workload, written before the pipeline starts (it reads from the position) */
    q(src, "CREATE DATABASE e2e; SET time_zone='+00:00';"
           "CREATE TABLE e2e.t (id INT PRIMARY KEY, i BIGINT, bu BIGINT UNSIGNED, de DECIMAL(30,10), f FLOAT, "
           "d DOUBLE, dt DATE, tm TIME(3), dtm DATETIME(6), ts TIMESTAMP(3) NULL, y YEAR, s VARCHAR(40), "
           "l VARCHAR(20) CHARACTER SET latin1, vb VARBINARY(16), bl BLOB, js JSON, bt BIT(7), "
           "en ENUM('a','b','c'), st SET('x','y','z'), g POINT, gen INT AS (i + 1) VIRTUAL, u VARCHAR(20), UNIQUE KEY(u));"
           "CREATE TABLE e2e.f (id INT PRIMARY KEY, v INT);"
           "CREATE TABLE e2e.other (id INT PRIMARY KEY)");
    for (int k = 1; k <= 300; k++) {
        char sql[1024];
        snprintf(sql, sizeof sql,
                 "INSERT INTO e2e.t (id,i,bu,de,f,d,dt,tm,dtm,ts,y,s,l,vb,bl,js,bt,en,st,g,u) VALUES (%d, %d, %llu, "
                 "'-123456.0123456789', 1.5, %d.25, '2020-02-29', '-12:34:56.789', '2021-01-01 10:00:00.123456', "
                 "'2022-03-04 05:06:07.891', 2001, 'héllo \\'q\\' %d', 'café', X'00FF%02X', REPEAT('b', %d), "
                 "'{\"k\": %d}', b'1010101', 'b', 'x,z', ST_GeomFromText('POINT(1 %d)'), 'u%d');"
                 "INSERT INTO e2e.f VALUES (%d, %d); INSERT INTO e2e.other VALUES (%d)",
                 k, -k, 18446744073709551615ull - (unsigned)k, k, k, k & 0xff, k, k, k, k, k, k, k);
        q(src, sql);
        if (k % 3 == 0) {
            snprintf(sql, sizeof sql, "UPDATE e2e.t SET i = i * 2, s = 'upd', u = 'v%d' WHERE id = %d", k, k - 1);
            q(src, sql);
        }
        if (k % 10 == 0) {
            snprintf(sql, sizeof sql, "DELETE FROM e2e.t WHERE id = %d; DELETE FROM e2e.f WHERE id = %d", k - 5, k - 5);
            q(src, sql);
        }
        if (k == 150)
            q(src, "ALTER TABLE e2e.t ADD COLUMN c2 INT DEFAULT 7");
    }
    q(src, "BEGIN; UPDATE e2e.t SET d = d + 1; COMMIT");     /* one transaction, all rows */
    q(src, "TRUNCATE TABLE e2e.f");                            /* ignored by ignore_sql */
    char endfile[256];
    snprintf(endfile, sizeof endfile, "%s", q1(src, "SHOW MASTER STATUS", 0));
    unsigned long long endpos = strtoull(q1(src, "SHOW MASTER STATUS", 1), NULL, 10);

    sl_registry *reg;
    sl_registry_new(&reg);
    sl_error e = {0};
    const char *plugins[4] = { "binlog-reader", "event-filter", "route", "mysql-sink" };
    for (int i = 0; i < 4; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/sluice-%s.so", PLUGIN_DIR, plugins[i]);
        if (sl_registry_load(reg, path, &e) < 0) {
            fprintf(stderr, "FAIL: %s\n", e.msg);
            return 1;
        }
    }
    sl_scheduler *sched;
    sl_scheduler_new(NULL, &sched);
    sl_stage_spec st[4] = { { "reader", "binlog-reader", ropts }, { "filter", "event-filter", fopts },
                            { "route", "route", fopts }, { "sink", "mysql-sink", sopts } };
    sl_edge_spec ed[3] = { { 0, 1 }, { 1, 2 }, { 2, 3 } };
    sl_pipeline_spec spec = { .name = "e2e-task/src-1/incremental", .nstages = 4, .stages = st, .nedges = 3, .edges = ed };
    sl_pipeline *p;
    if (sl_pipeline_new(sched, reg, &spec, NULL, &p, &e) < 0) {
        fprintf(stderr, "FAIL: pipeline: %s\n", e.msg);
        return 1;
    }
    sl_pipeline_start(p);
    int reached = 0;
    for (int t = 0; t < 600 && !reached; t++) {
        if (sl_pipeline_stage(p) != SL_STAGE_RUNNING)
            break;
        usleep(100000);
        const char *f = q1(dst, "SELECT binlog_name FROM dm_meta.`e2e-task_syncer_checkpoint` WHERE worker = 0", 0);
        unsigned long long cp = strtoull(q1(dst, "SELECT binlog_pos FROM dm_meta.`e2e-task_syncer_checkpoint` WHERE worker = 0", 0), NULL, 10);
        reached = strcmp(f, endfile) == 0 && cp >= endpos;
    }
    sl_pipeline_error(p, &e);
    CHECK(reached, "the checkpoint did not reach %s:%llu (stage %s, error: %s)", endfile, endpos,
          sl_stage_name(sl_pipeline_stage(p)), e.msg);
    char *status = sl_pipeline_status_json(p);
    CHECK(status && strstr(status, "\"unit\":\"Sync\""), "status: %s", status ? status : "(null)");
    free(status);
    sl_pipeline_stop(p);
    sl_pipeline_free(p);
    sl_scheduler_free(sched);
    sl_registry_free(reg);

    /* routed matrix table equal to the source */
    const char *cs = q1(src, "CHECKSUM TABLE e2e.t", 1), *ct = q1(dst, "CHECKSUM TABLE e2e_r.t_routed", 1);
    CHECK(strcmp(cs, ct) == 0 && cs[0], "CHECKSUM e2e.t %s != e2e_r.t_routed %s", cs, ct);
    const char *sql_rows = "SELECT COUNT(*), SUM(CRC32(CONCAT_WS('|', id, i, bu, de, f, d, dt, tm, dtm, ts, y, s, HEX(l), "
                           "HEX(vb), bl, js, bt+0, en, st, ST_AsText(g), gen, u, c2))) FROM %s";
    char a[512], b[512];
    snprintf(a, sizeof a, sql_rows, "e2e.t");
    snprintf(b, sizeof b, sql_rows, "e2e_r.t_routed");
    char ra[256];
    snprintf(ra, sizeof ra, "%s/%s", q1(src, a, 0), q1(src, a, 1));
    char rb[256];
    snprintf(rb, sizeof rb, "%s/%s", q1(dst, b, 0), q1(dst, b, 1));
    CHECK(strcmp(ra, rb) == 0, "row by row: source %s target %s", ra, rb);
    /* deletes ignored on f, truncate ignored: every inserted row is there */
    CHECK(strcmp(q1(dst, "SELECT COUNT(*) FROM e2e_r.f", 0), "300") == 0, "e2e_r.f rows: %s",
          q1(dst, "SELECT COUNT(*) FROM e2e_r.f", 0));
    /* not selected: never created */
    CHECK(strncmp(q1(dst, "SELECT COUNT(*) FROM e2e.other", 0), "ERROR", 5) == 0 &&
          strncmp(q1(dst, "SELECT COUNT(*) FROM e2e_r.other", 0), "ERROR", 5) == 0, "e2e.other replicated");
    mysql_close(src);
    mysql_close(dst);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("sync e2e: all checks passed\n");
    return 0;
}
