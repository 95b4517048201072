/*
 * test_sinkmeta.c - the mysql-sink uses the TARGET table's unique keys and generated columns,
 * which the binlog does not carry, through the real pipeline binlog-reader -> event-filter ->
 * route -> mysql-sink with 8 workers, on a target in STRICT_ALL_TABLES (globally and in the
 * sink's sessions). Workloads related through unique keys only (delete + reinsert of a unique
 * value under a new PK, case-insensitive reuse, swaps through a temporary value, a unique key
 * added mid-stream), a table with STORED and VIRTUAL generated columns (a unique key on the
 * STORED one, a generated column added mid-stream), and a table with no PK but a unique NOT
 * NULL key (whose UPDATE/DELETE must not scan the table). Source and target are compared with
 * CHECKSUM TABLE and row by row. Then a column missing on the target pauses the task with a
 * clear message, and adding it and resuming catches up.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "testlib.h"

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

/* ---- uq: id PK, u unique (utf8mb4_general_ci), v unique from mid-stream on ---------------- */

#define UQ_VALS 400
static int uq_owner[UQ_VALS];       /* value index -> id holding it, 0 = free */
static int uq_val[20000];           /* id -> value index, -1 = no row */
static int uq_v[20000];
static int uq_next_id = 1, uq_next_v = 1;

/* value k's text, in a case chosen by the caller (the collation ignores case) */
static const char *uq_text(int k, int upper)
{
    static char b[2][32];
    static int s;
    char *o = b[s++ & 1];
    snprintf(o, 32, upper ? "VAL-%d-X" : "val-%d-x", k);
    return o;
}

static int uq_live(void)
{
    for (int tries = 0; tries < 1000; tries++) {
        int id = 1 + (int)rnd((uint32_t)(uq_next_id - 1));
        if (uq_val[id] >= 0)
            return id;
    }
    return -1;
}

static int uq_free(void)
{
    for (int tries = 0; tries < 10000; tries++) {
        int k = (int)rnd(UQ_VALS);
        if (!uq_owner[k])
            return k;
    }
    return -1;
}

static void uq_insert(MYSQL *s, int k, int v)
{
    int id = uq_next_id++;
    tl_sql(s, "INSERT INTO smeta.uq (id, u, v) VALUES (%d, '%s', %d)", id, uq_text(k, (int)rnd(2)), v);
    uq_val[id] = k;
    uq_v[id] = v;
    uq_owner[k] = id;
}

static void uq_step(MYSQL *s, int after_ddl)
{
    int op = (int)rnd(after_ddl ? 8 : 6);
    int r1 = uq_live(), r2 = uq_live();
    if (r1 < 0 || r2 < 0)
        return;
    switch (op) {
    case 0: {  /* delete, then the same unique value under a new PK (next transaction) */
        int k = uq_val[r1];
        tl_sql(s, "DELETE FROM smeta.uq WHERE id = %d", r1);
        uq_val[r1] = -1;
        uq_owner[k] = 0;
        uq_insert(s, k, uq_next_v++);
        break;
    }
    case 1:    /* swap through a temporary value, three transactions */
    case 2: {  /* the same in one transaction */
        if (r1 == r2)
            return;
        int k1 = uq_val[r1], k2 = uq_val[r2];
        if (op == 2) tl_sql(s, "BEGIN");
        tl_sql(s, "UPDATE smeta.uq SET u = 'tmp' WHERE id = %d", r1);
        tl_sql(s, "UPDATE smeta.uq SET u = '%s' WHERE id = %d", uq_text(k1, (int)rnd(2)), r2);
        tl_sql(s, "UPDATE smeta.uq SET u = '%s' WHERE id = %d", uq_text(k2, (int)rnd(2)), r1);
        if (op == 2) tl_sql(s, "COMMIT");
        uq_val[r1] = k2;
        uq_val[r2] = k1;
        uq_owner[k1] = r2;
        uq_owner[k2] = r1;
        break;
    }
    case 3: {  /* move to a free value: the old one is free for the next steps */
        int k = uq_free();
        if (k < 0) return;
        tl_sql(s, "UPDATE smeta.uq SET u = '%s' WHERE id = %d", uq_text(k, (int)rnd(2)), r1);
        uq_owner[uq_val[r1]] = 0;
        uq_owner[k] = r1;
        uq_val[r1] = k;
        break;
    }
    case 4: {  /* one transaction: delete r1, reinsert its value, move r2 to a free value */
        int k = uq_val[r1], f = uq_free();
        if (r1 == r2 || f < 0) return;
        tl_sql(s, "BEGIN");
        tl_sql(s, "DELETE FROM smeta.uq WHERE id = %d", r1);
        uq_val[r1] = -1;
        uq_owner[k] = 0;
        uq_insert(s, k, uq_next_v++);
        tl_sql(s, "UPDATE smeta.uq SET u = '%s' WHERE id = %d", uq_text(f, 0), r2);
        uq_owner[uq_val[r2]] = 0;
        uq_owner[f] = r2;
        uq_val[r2] = f;
        tl_sql(s, "COMMIT");
        break;
    }
    case 5:    /* v only (kept unique: a key on it comes mid-stream) */
        tl_sql(s, "UPDATE smeta.uq SET v = %d WHERE id = %d", uq_next_v, r1);
        uq_v[r1] = uq_next_v++;
        break;
    case 6: {  /* after UNIQUE(v): delete, then a row with the same v and another u */
        int v = uq_v[r1], f = uq_free();
        if (f < 0) return;
        tl_sql(s, "DELETE FROM smeta.uq WHERE id = %d", r1);
        uq_owner[uq_val[r1]] = 0;
        uq_val[r1] = -1;
        uq_insert(s, f, v);
        break;
    }
    case 7: {  /* after UNIQUE(v): swap v through a temporary value */
        if (r1 == r2) return;
        int v1 = uq_v[r1], v2 = uq_v[r2];
        tl_sql(s, "UPDATE smeta.uq SET v = -1 WHERE id = %d", r1);
        tl_sql(s, "UPDATE smeta.uq SET v = %d WHERE id = %d", v1, r2);
        tl_sql(s, "UPDATE smeta.uq SET v = %d WHERE id = %d", v2, r1);
        uq_v[r1] = v2;
        uq_v[r2] = v1;
        break;
    }
    }
}

/* ---- gen: STORED generated vs (unique) and VIRTUAL vv --------------------------------------- */

#define GEN_A 300
static int gen_owner[GEN_A], gen_a[5000], gen_next = 1;

static int gen_live(void)
{
    for (int t = 0; t < 1000; t++) {
        int id = 1 + (int)rnd((uint32_t)(gen_next - 1));
        if (gen_a[id] >= 0)
            return id;
    }
    return -1;
}

static int gen_free(void)
{
    for (int t = 0; t < 10000; t++) {
        int a = 1 + (int)rnd(GEN_A - 1);
        if (!gen_owner[a])
            return a;
    }
    return -1;
}

static void gen_insert(MYSQL *s, int a)
{
    int id = gen_next++;
    tl_sql(s, "INSERT INTO smeta.gen (id, a, b) VALUES (%d, %d, 'b%d')", id, a, (int)rnd(1000));
    gen_a[id] = a;
    gen_owner[a] = id;
}

static void gen_step(MYSQL *s)
{
    int r1 = gen_live(), r2 = gen_live();
    if (r1 < 0 || r2 < 0)
        return;
    switch (rnd(4)) {
    case 0: {  /* delete, reinsert the same a (so the same unique vs) under a new id */
        int a = gen_a[r1];
        tl_sql(s, "DELETE FROM smeta.gen WHERE id = %d", r1);
        gen_a[r1] = -1;
        gen_owner[a] = 0;
        gen_insert(s, a);
        break;
    }
    case 1: {  /* swap a (and so vs) through a temporary value */
        if (r1 == r2) return;
        int a1 = gen_a[r1], a2 = gen_a[r2];
        tl_sql(s, "UPDATE smeta.gen SET a = 0 WHERE id = %d", r1);
        tl_sql(s, "UPDATE smeta.gen SET a = %d WHERE id = %d", a1, r2);
        tl_sql(s, "UPDATE smeta.gen SET a = %d WHERE id = %d", a2, r1);
        gen_a[r1] = a2;
        gen_a[r2] = a1;
        gen_owner[a1] = r2;
        gen_owner[a2] = r1;
        break;
    }
    case 2: {
        int a = gen_free();
        if (a < 0) return;
        tl_sql(s, "UPDATE smeta.gen SET a = %d WHERE id = %d", a, r1);
        gen_owner[gen_a[r1]] = 0;
        gen_owner[a] = r1;
        gen_a[r1] = a;
        break;
    }
    default:
        tl_sql(s, "UPDATE smeta.gen SET b = 'c%d' WHERE id = %d", (int)rnd(1000), r1);
    }
}

/* ---- nopk: no primary key, UNIQUE NOT NULL (u, w) -------------------------------------------- */

#define NP_U 600
static int np_live[NP_U];             /* u -> row exists (w = 'w<u % 7>') */
static int np_count;

static void np_step(MYSQL *s)
{
    int u = (int)rnd(NP_U);
    if (!np_live[u]) {
        tl_sql(s, "INSERT INTO smeta.nopk (u, w, x, f) VALUES (%d, 'w%d', %d, %d.5)", u, u % 7, (int)rnd(100), u);
        np_live[u] = 1;
        np_count++;
        return;
    }
    switch (rnd(3)) {
    case 0:
        tl_sql(s, "UPDATE smeta.nopk SET x = %d WHERE u = %d AND w = 'w%d'", (int)rnd(100000), u, u % 7);
        break;
    case 1:    /* delete, reinsert the same key */
        tl_sql(s, "DELETE FROM smeta.nopk WHERE u = %d AND w = 'w%d'", u, u % 7);
        tl_sql(s, "INSERT INTO smeta.nopk (u, w, x, f) VALUES (%d, 'w%d', %d, 0.25)", u, u % 7, (int)rnd(100));
        break;
    default: { /* move to a free u with the same w class, if one is free */
        int to = (u + 7 * (1 + (int)rnd(20))) % NP_U;
        if (np_live[to]) return;
        tl_sql(s, "UPDATE smeta.nopk SET u = %d WHERE u = %d AND w = 'w%d'", to, u, u % 7);
        np_live[u] = 0;
        np_live[to] = 1;
        break;
    }
    }
}

/* ---- comparing ------------------------------------------------------------------------------- */

/* CHECKSUM TABLE of both tables. With VIRTUAL columns MariaDB 10.11's CHECKSUM TABLE depends on
 * the physical records (a copy holding the same rows checksums differently), so such a table is
 * checksummed through a temporary copy made the same way on both sides (not binlogged). */
static void checksum(MYSQL *src, MYSQL *dst, const char *stable, const char *ttable, const char *order,
                     int via_copy)
{
    MYSQL *db[2] = { src, dst };
    const char *tn[2] = { stable, ttable };
    long long cs[2];
    for (int i = 0; i < 2; i++) {
        if (via_copy) {
            tl_sql(db[i], "DROP TEMPORARY TABLE IF EXISTS test.ck; CREATE DATABASE IF NOT EXISTS test");
            tl_sql(db[i], "CREATE TEMPORARY TABLE test.ck ENGINE=InnoDB SELECT * FROM %s ORDER BY %s", tn[i], order);
        }
        cs[i] = tl_checksum(db[i], via_copy ? "test.ck" : tn[i]);
        if (via_copy)
            tl_sql(db[i], "DROP TEMPORARY TABLE test.ck");
    }
    TL_CHECK(cs[0] == cs[1], "CHECKSUM %s %lld != %s %lld", stable, cs[0], ttable, cs[1]);
}

/* Source and target equal by checksum and row by row, with rows to compare. */
static void compare(MYSQL *src, MYSQL *dst, const char *stable, const char *ttable, const char *order,
                    int via_copy)
{
    char qs[512], qt[512];
    checksum(src, dst, stable, ttable, order, via_copy);
    snprintf(qs, sizeof qs, "SELECT * FROM %s ORDER BY %s", stable, order);
    snprintf(qt, sizeof qt, "SELECT * FROM %s ORDER BY %s", ttable, order);
    long long n = tl_compare_rows(src, dst, qs, qt, stable);
    TL_CHECK(n != 0, "%s: no rows compared", stable);
}

static long long status_value(MYSQL *db, const char *name)
{
    return atoll(tl_peek(db, 1, "SHOW GLOBAL STATUS LIKE '%s'", name));
}

static const char *RULES = "[{\"schema\":\"smeta\",\"table\":\"\",\"target_schema\":\"smeta_t\",\"target_table\":\"\",\"filters\":[]}]";

/* wait until the sink's checkpoint reaches the source's current end; 1 if it did */
static int catch_up(tl_pipe *r, MYSQL *src, MYSQL *dst)
{
    char endfile[256];
    unsigned long long endpos;
    tl_master_pos(src, endfile, sizeof endfile, &endpos);
    return tl_wait_ckpt(r, dst, "smeta-task", endfile, endpos, 120);
}

int main(void)
{
    time_t t0 = time(NULL);
    MYSQL *src = tl_connect("SOURCE"), *dst = tl_connect("TARGET");
    char old_mode[512];
    snprintf(old_mode, sizeof old_mode, "%s", tl_peek(dst, 0, "SELECT @@global.sql_mode"));
    tl_sql(dst, "SET GLOBAL sql_mode = 'STRICT_ALL_TABLES'");
    tl_sql(src, "DROP DATABASE IF EXISTS smeta");
    tl_sql(dst, "DROP DATABASE IF EXISTS smeta_t; CREATE DATABASE IF NOT EXISTS dm_meta; "
           "DROP TABLE IF EXISTS dm_meta.`smeta-task_syncer_checkpoint`");
    char file[256];
    unsigned long long pos;
    tl_master_pos(src, file, sizeof file, &pos);

    /* the source workload, written before the pipeline starts (it reads from the position) */
    tl_sql(src, "CREATE DATABASE smeta");
    tl_sql(src, "CREATE TABLE smeta.uq (id INT PRIMARY KEY, u VARCHAR(20) NOT NULL, v INT NOT NULL, "
           "UNIQUE KEY uu (u)) DEFAULT CHARSET utf8mb4 COLLATE utf8mb4_general_ci");
    tl_sql(src, "CREATE TABLE smeta.gen (id INT PRIMARY KEY, a INT NOT NULL, b VARCHAR(10), "
           "vs INT AS (a * 2) STORED, vv VARCHAR(20) AS (CONCAT(b, '!')) VIRTUAL, UNIQUE KEY uvs (vs))");
    tl_sql(src, "CREATE TABLE smeta.nopk (u INT NOT NULL, w VARCHAR(20) NOT NULL, x INT, f FLOAT, "
           "UNIQUE KEY uw (u, w))");
    memset(uq_val, -1, sizeof uq_val);
    memset(gen_a, -1, sizeof gen_a);
    for (int k = 0; k < 200; k++)
        uq_insert(src, k, uq_next_v++);
    for (int a = 1; a <= 100; a++)
        gen_insert(src, a);
    for (int i = 0; i < 300; i++)
        np_step(src);
    for (int i = 0; i < 4000; i++) {
        if (i == 1500)
            tl_sql(src, "ALTER TABLE smeta.gen ADD COLUMN c INT AS (a + 100) VIRTUAL");
        if (i == 2000)
            tl_sql(src, "ALTER TABLE smeta.uq ADD UNIQUE KEY uv (v)");
        switch (rnd(3)) {
        case 0: uq_step(src, i >= 2000); break;
        case 1: gen_step(src); break;
        default: np_step(src); break;
        }
    }

    char target[1024], source[1024], ropts[4096], fopts[1024], sopts[2048];
    const char *task = "\"task_name\":\"smeta-task\",\"source_name\":\"src-1\"";
    tl_conn_json("TARGET", target, sizeof target);
    tl_conn_json("SOURCE", source, sizeof source);
    snprintf(ropts, sizeof ropts,
             "{%s,%s,%s,\"rules\":%s,\"binlog_name\":\"%s\",\"binlog_pos\":%llu,\"heartbeat_ms\":200}",
             target, task, source, RULES, file, pos);
    snprintf(fopts, sizeof fopts, "{\"rules\":%s}", RULES);
    snprintf(sopts, sizeof sopts, "{%s,%s,\"repl_threads\":%s,\"repl_batch\":20,\"sql_mode\":\"STRICT_ALL_TABLES\"}",
             target, task, tl_env_or("SINKMETA_THREADS", "8"));

    static const char *const plugins[] = { "binlog-reader", "event-filter", "route", "mysql-sink", NULL };
    sl_stage_spec st[4] = { { "reader", "binlog-reader", ropts }, { "filter", "event-filter", fopts },
                            { "route", "route", fopts }, { "sink", "mysql-sink", sopts } };
    tl_pipe r;
    tl_pipe_new(&r, tl_registry(plugins, NULL), "smeta-task/src-1/incremental", st, 4, 0);
    sl_pipeline *p = r.p;
    sl_error e = {0};
    printf("sinkmeta: source workload written at %ld s\n", (long)(time(NULL) - t0));
    long long scans0 = status_value(dst, "Handler_read_rnd_next");
    sl_pipeline_start(p);
    int reached = catch_up(&r, src, dst);
    long long scans = status_value(dst, "Handler_read_rnd_next") - scans0;
    sl_pipeline_error(p, &e);
    TL_CHECK(reached, "the checkpoint did not reach the source's end (stage %s, error: %s)",
          sl_stage_name(sl_pipeline_stage(p)), e.msg);
    /* once per table: uq, gen, nopk, then gen and uq again after their ALTER */
    long long loads = tl_pipe_metric(&r, "target_meta_loads");
    TL_CHECK(loads == 5, "target table metadata loaded %lld times, expected 5", loads);
    /* nopk's UPDATE/DELETE go by its unique key: a table scan per row would read ~10^5 rows */
    TL_CHECK(scans < 20000, "the target read %lld rows by table scans", scans);
    printf("sinkmeta: caught up at %ld s; metadata loads %lld, rows read by scans %lld, lock-conflict "
           "retries %lld, nopk rows %d\n", (long)(time(NULL) - t0), loads, scans,
           tl_pipe_metric(&r, "lock_conflict_retries"), np_count);

    compare(src, dst, "smeta.uq", "smeta_t.uq", "id", 0);
    compare(src, dst, "smeta.gen", "smeta_t.gen", "id", 1);
    compare(src, dst, "smeta.nopk", "smeta_t.nopk", "u, w", 0);
    TL_CHECK(strcmp(tl_peek(dst, 0, "SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = 'smeta_t' "
                         "AND TABLE_NAME = 'uq' AND INDEX_NAME = 'uv'"), "1") == 0, "uv not on the target");

    /* a column the target lacks pauses the task, naming it; adding it and resuming catches up */
    if (reached) {
        tl_sql(src, "SET SESSION sql_log_bin = 0; CREATE TABLE smeta.miss (id INT PRIMARY KEY, extra INT); "
               "SET SESSION sql_log_bin = 1");
        tl_sql(dst, "CREATE TABLE smeta_t.miss (id INT PRIMARY KEY)");
        tl_sql(src, "INSERT INTO smeta.miss VALUES (1, 5), (2, 6)");
        sl_stage stg = sl_pipeline_wait(p, 60000);
        sl_pipeline_error(p, &e);
        TL_CHECK(stg == SL_STAGE_PAUSED, "missing column: stage %s", sl_stage_name(stg));
        TL_CHECK(strstr(e.msg, "column `extra`") && strstr(e.msg, "`smeta_t`.`miss`"),
              "missing column: error %s", e.msg);
        TL_CHECK(strcmp(tl_peek(dst, 0, "SELECT COUNT(*) FROM smeta_t.miss"), "0") == 0, "rows applied before the pause");
        tl_sql(dst, "ALTER TABLE smeta_t.miss ADD COLUMN extra INT");
        sl_pipeline_resume(p);
        TL_CHECK(catch_up(&r, src, dst), "no catch-up after the column was added (stage %s)",
              sl_stage_name(sl_pipeline_stage(p)));
        TL_CHECK(strcmp(tl_peek(dst, 0, "SELECT GROUP_CONCAT(id, ':', extra ORDER BY id) FROM smeta_t.miss"), "1:5,2:6") == 0,
              "miss after resume: %s", tl_peek(dst, 0, "SELECT GROUP_CONCAT(id, ':', extra ORDER BY id) FROM smeta_t.miss"));
    }
    tl_pipe_free(&r);
    tl_sql(dst, "SET GLOBAL sql_mode = '%s'", old_mode);
    mysql_close(src);
    mysql_close(dst);
    return tl_finish("sinkmeta");
}
