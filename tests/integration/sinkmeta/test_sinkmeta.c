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
#include <mysql.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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

static void q(MYSQL *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void q(MYSQL *db, const char *fmt, ...)
{
    char sql[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
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
    q(s, "INSERT INTO smeta.uq (id, u, v) VALUES (%d, '%s', %d)", id, uq_text(k, (int)rnd(2)), v);
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
        q(s, "DELETE FROM smeta.uq WHERE id = %d", r1);
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
        if (op == 2) q(s, "BEGIN");
        q(s, "UPDATE smeta.uq SET u = 'tmp' WHERE id = %d", r1);
        q(s, "UPDATE smeta.uq SET u = '%s' WHERE id = %d", uq_text(k1, (int)rnd(2)), r2);
        q(s, "UPDATE smeta.uq SET u = '%s' WHERE id = %d", uq_text(k2, (int)rnd(2)), r1);
        if (op == 2) q(s, "COMMIT");
        uq_val[r1] = k2;
        uq_val[r2] = k1;
        uq_owner[k1] = r2;
        uq_owner[k2] = r1;
        break;
    }
    case 3: {  /* move to a free value: the old one is free for the next steps */
        int k = uq_free();
        if (k < 0) return;
        q(s, "UPDATE smeta.uq SET u = '%s' WHERE id = %d", uq_text(k, (int)rnd(2)), r1);
        uq_owner[uq_val[r1]] = 0;
        uq_owner[k] = r1;
        uq_val[r1] = k;
        break;
    }
    case 4: {  /* one transaction: delete r1, reinsert its value, move r2 to a free value */
        int k = uq_val[r1], f = uq_free();
        if (r1 == r2 || f < 0) return;
        q(s, "BEGIN");
        q(s, "DELETE FROM smeta.uq WHERE id = %d", r1);
        uq_val[r1] = -1;
        uq_owner[k] = 0;
        uq_insert(s, k, uq_next_v++);
        q(s, "UPDATE smeta.uq SET u = '%s' WHERE id = %d", uq_text(f, 0), r2);
        uq_owner[uq_val[r2]] = 0;
        uq_owner[f] = r2;
        uq_val[r2] = f;
        q(s, "COMMIT");
        break;
    }
    case 5:    /* v only (kept unique: a key on it comes mid-stream) */
        q(s, "UPDATE smeta.uq SET v = %d WHERE id = %d", uq_next_v, r1);
        uq_v[r1] = uq_next_v++;
        break;
    case 6: {  /* after UNIQUE(v): delete, then a row with the same v and another u */
        int v = uq_v[r1], f = uq_free();
        if (f < 0) return;
        q(s, "DELETE FROM smeta.uq WHERE id = %d", r1);
        uq_owner[uq_val[r1]] = 0;
        uq_val[r1] = -1;
        uq_insert(s, f, v);
        break;
    }
    case 7: {  /* after UNIQUE(v): swap v through a temporary value */
        if (r1 == r2) return;
        int v1 = uq_v[r1], v2 = uq_v[r2];
        q(s, "UPDATE smeta.uq SET v = -1 WHERE id = %d", r1);
        q(s, "UPDATE smeta.uq SET v = %d WHERE id = %d", v1, r2);
        q(s, "UPDATE smeta.uq SET v = %d WHERE id = %d", v2, r1);
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
    q(s, "INSERT INTO smeta.gen (id, a, b) VALUES (%d, %d, 'b%d')", id, a, (int)rnd(1000));
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
        q(s, "DELETE FROM smeta.gen WHERE id = %d", r1);
        gen_a[r1] = -1;
        gen_owner[a] = 0;
        gen_insert(s, a);
        break;
    }
    case 1: {  /* swap a (and so vs) through a temporary value */
        if (r1 == r2) return;
        int a1 = gen_a[r1], a2 = gen_a[r2];
        q(s, "UPDATE smeta.gen SET a = 0 WHERE id = %d", r1);
        q(s, "UPDATE smeta.gen SET a = %d WHERE id = %d", a1, r2);
        q(s, "UPDATE smeta.gen SET a = %d WHERE id = %d", a2, r1);
        gen_a[r1] = a2;
        gen_a[r2] = a1;
        gen_owner[a1] = r2;
        gen_owner[a2] = r1;
        break;
    }
    case 2: {
        int a = gen_free();
        if (a < 0) return;
        q(s, "UPDATE smeta.gen SET a = %d WHERE id = %d", a, r1);
        gen_owner[gen_a[r1]] = 0;
        gen_owner[a] = r1;
        gen_a[r1] = a;
        break;
    }
    default:
        q(s, "UPDATE smeta.gen SET b = 'c%d' WHERE id = %d", (int)rnd(1000), r1);
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
        q(s, "INSERT INTO smeta.nopk (u, w, x, f) VALUES (%d, 'w%d', %d, %d.5)", u, u % 7, (int)rnd(100), u);
        np_live[u] = 1;
        np_count++;
        return;
    }
    switch (rnd(3)) {
    case 0:
        q(s, "UPDATE smeta.nopk SET x = %d WHERE u = %d AND w = 'w%d'", (int)rnd(100000), u, u % 7);
        break;
    case 1:    /* delete, reinsert the same key */
        q(s, "DELETE FROM smeta.nopk WHERE u = %d AND w = 'w%d'", u, u % 7);
        q(s, "INSERT INTO smeta.nopk (u, w, x, f) VALUES (%d, 'w%d', %d, 0.25)", u, u % 7, (int)rnd(100));
        break;
    default: { /* move to a free u with the same w class, if one is free */
        int to = (u + 7 * (1 + (int)rnd(20))) % NP_U;
        if (np_live[to]) return;
        q(s, "UPDATE smeta.nopk SET u = %d WHERE u = %d AND w = 'w%d'", to, u, u % 7);
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
    char sql[512], cs[64];
    MYSQL *db[2] = { src, dst };
    const char *tn[2] = { stable, ttable };
    char out[2][64];
    for (int i = 0; i < 2; i++) {
        if (via_copy) {
            q(db[i], "DROP TEMPORARY TABLE IF EXISTS test.ck; CREATE DATABASE IF NOT EXISTS test");
            q(db[i], "CREATE TEMPORARY TABLE test.ck ENGINE=InnoDB SELECT * FROM %s ORDER BY %s", tn[i], order);
            snprintf(sql, sizeof sql, "CHECKSUM TABLE test.ck");
        } else {
            snprintf(sql, sizeof sql, "CHECKSUM TABLE %s", tn[i]);
        }
        snprintf(out[i], sizeof out[i], "%s", q1(db[i], sql, 1));
        if (via_copy)
            q(db[i], "DROP TEMPORARY TABLE test.ck");
    }
    snprintf(cs, sizeof cs, "%s", out[0]);
    CHECK(cs[0] && strcmp(cs, out[1]) == 0, "CHECKSUM %s %s != %s %s", stable, cs, ttable, out[1]);
}

static void compare(MYSQL *src, MYSQL *dst, const char *stable, const char *ttable, const char *order,
                    int via_copy)
{
    char sql[512];
    checksum(src, dst, stable, ttable, order, via_copy);
    MYSQL_RES *r[2];
    MYSQL *db[2] = { src, dst };
    const char *tn[2] = { stable, ttable };
    for (int i = 0; i < 2; i++) {
        snprintf(sql, sizeof sql, "SELECT * FROM %s ORDER BY %s", tn[i], order);
        if (mysql_query(db[i], sql) != 0 || !(r[i] = mysql_store_result(db[i]))) {
            CHECK(0, "%s: %s", sql, mysql_error(db[i]));
            return;
        }
    }
    CHECK(mysql_num_rows(r[0]) == mysql_num_rows(r[1]) && mysql_num_fields(r[0]) == mysql_num_fields(r[1]),
          "%s: %llu rows x %u columns, %s: %llu x %u", stable, (unsigned long long)mysql_num_rows(r[0]),
          mysql_num_fields(r[0]), ttable, (unsigned long long)mysql_num_rows(r[1]), mysql_num_fields(r[1]));
    unsigned nf = mysql_num_fields(r[0]);
    int bad = 0;
    MYSQL_ROW a, b;
    unsigned long nrows = 0;
    while ((a = mysql_fetch_row(r[0])) && (b = mysql_fetch_row(r[1])) && nf == mysql_num_fields(r[1])) {
        nrows++;
        for (unsigned c = 0; c < nf; c++)
            if ((!a[c]) != (!b[c]) || (a[c] && strcmp(a[c], b[c]) != 0)) {
                if (bad++ < 5)
                    CHECK(0, "%s row %lu column %u: source %s target %s", stable, nrows, c,
                          a[c] ? a[c] : "NULL", b[c] ? b[c] : "NULL");
                break;
            }
    }
    CHECK(nrows > 0, "%s: no rows compared", stable);
    mysql_free_result(r[0]);
    mysql_free_result(r[1]);
}

static long long status_value(MYSQL *db, const char *name)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SHOW GLOBAL STATUS LIKE '%s'", name);
    return atoll(q1(db, sql, 1));
}

static const char *RULES = "[{\"schema\":\"smeta\",\"table\":\"\",\"target_schema\":\"smeta_t\",\"target_table\":\"\",\"filters\":[]}]";

/* wait until the sink's checkpoint reaches the source's current end; 1 if it did */
static int catch_up(sl_pipeline *p, MYSQL *src, MYSQL *dst)
{
    char endfile[256];
    snprintf(endfile, sizeof endfile, "%s", q1(src, "SHOW MASTER STATUS", 0));
    unsigned long long endpos = strtoull(q1(src, "SHOW MASTER STATUS", 1), NULL, 10);
    for (int t = 0; t < 1200; t++) {
        if (sl_pipeline_stage(p) != SL_STAGE_RUNNING)
            return 0;
        const char *f = q1(dst, "SELECT binlog_name FROM dm_meta.`smeta-task_syncer_checkpoint` WHERE worker = 0", 0);
        unsigned long long cp = strtoull(q1(dst, "SELECT binlog_pos FROM dm_meta.`smeta-task_syncer_checkpoint` WHERE worker = 0", 0), NULL, 10);
        if (strcmp(f, endfile) == 0 && cp >= endpos)
            return 1;
        usleep(100000);
    }
    return 0;
}

static long long metric(sl_pipeline *p, const char *name)
{
    char *st = sl_pipeline_status_json(p);
    long long v = -1;
    char key[80];
    snprintf(key, sizeof key, "\"%s\":", name);
    const char *at = st ? strstr(st, key) : NULL;
    if (at)
        v = atoll(at + strlen(key));
    free(st);
    return v;
}

int main(void)
{
    time_t t0 = time(NULL);
    MYSQL *src = conn("SOURCE"), *dst = conn("TARGET");
    char old_mode[512];
    snprintf(old_mode, sizeof old_mode, "%s", q1(dst, "SELECT @@global.sql_mode", 0));
    q(dst, "SET GLOBAL sql_mode = 'STRICT_ALL_TABLES'");
    q(src, "DROP DATABASE IF EXISTS smeta");
    q(dst, "DROP DATABASE IF EXISTS smeta_t; CREATE DATABASE IF NOT EXISTS dm_meta; "
           "DROP TABLE IF EXISTS dm_meta.`smeta-task_syncer_checkpoint`");
    char file[256], pos[32];
    snprintf(file, sizeof file, "%s", q1(src, "SHOW MASTER STATUS", 0));
    snprintf(pos, sizeof pos, "%s", q1(src, "SHOW MASTER STATUS", 1));

    /* the source workload, written before the pipeline starts (it reads from the position) */
    q(src, "CREATE DATABASE smeta");
    q(src, "CREATE TABLE smeta.uq (id INT PRIMARY KEY, u VARCHAR(20) NOT NULL, v INT NOT NULL, "
           "UNIQUE KEY uu (u)) DEFAULT CHARSET utf8mb4 COLLATE utf8mb4_general_ci");
    q(src, "CREATE TABLE smeta.gen (id INT PRIMARY KEY, a INT NOT NULL, b VARCHAR(10), "
           "vs INT AS (a * 2) STORED, vv VARCHAR(20) AS (CONCAT(b, '!')) VIRTUAL, UNIQUE KEY uvs (vs))");
    q(src, "CREATE TABLE smeta.nopk (u INT NOT NULL, w VARCHAR(20) NOT NULL, x INT, f FLOAT, "
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
            q(src, "ALTER TABLE smeta.gen ADD COLUMN c INT AS (a + 100) VIRTUAL");
        if (i == 2000)
            q(src, "ALTER TABLE smeta.uq ADD UNIQUE KEY uv (v)");
        switch (rnd(3)) {
        case 0: uq_step(src, i >= 2000); break;
        case 1: gen_step(src); break;
        default: np_step(src); break;
        }
    }

    char common[1024], ropts[4096], fopts[1024], sopts[2048];
    snprintf(common, sizeof common,
             "\"target_host\":\"%s\",\"target_port\":%s,\"target_user\":\"%s\",\"target_password\":\"%s\","
             "\"task_name\":\"smeta-task\",\"source_name\":\"src-1\"",
             env("SLUICE_TARGET_HOST"), env("SLUICE_TARGET_PORT"), env("SLUICE_TARGET_USER"),
             getenv("SLUICE_TARGET_PASSWORD") ? getenv("SLUICE_TARGET_PASSWORD") : "");
    snprintf(ropts, sizeof ropts,
             "{%s,\"source_host\":\"%s\",\"source_port\":%s,\"source_user\":\"%s\",\"source_password\":\"%s\","
             "\"rules\":%s,\"binlog_name\":\"%s\",\"binlog_pos\":%s,\"heartbeat_ms\":200}",
             common, env("SLUICE_SOURCE_HOST"), env("SLUICE_SOURCE_PORT"), env("SLUICE_SOURCE_USER"),
             getenv("SLUICE_SOURCE_PASSWORD") ? getenv("SLUICE_SOURCE_PASSWORD") : "", RULES, file, pos);
    snprintf(fopts, sizeof fopts, "{\"rules\":%s}", RULES);
    snprintf(sopts, sizeof sopts, "{%s,\"repl_threads\":%s,\"repl_batch\":20,\"sql_mode\":\"STRICT_ALL_TABLES\"}", common,
             getenv("SINKMETA_THREADS") ? getenv("SINKMETA_THREADS") : "8");

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
    sl_pipeline_spec spec = { .name = "smeta-task/src-1/incremental", .nstages = 4, .stages = st,
                              .nedges = 3, .edges = ed };
    sl_pipeline *p;
    if (sl_pipeline_new(sched, reg, &spec, NULL, &p, &e) < 0) {
        fprintf(stderr, "FAIL: pipeline: %s\n", e.msg);
        return 1;
    }
    printf("sinkmeta: source workload written at %ld s\n", (long)(time(NULL) - t0));
    long long scans0 = status_value(dst, "Handler_read_rnd_next");
    sl_pipeline_start(p);
    int reached = catch_up(p, src, dst);
    long long scans = status_value(dst, "Handler_read_rnd_next") - scans0;
    sl_pipeline_error(p, &e);
    CHECK(reached, "the checkpoint did not reach the source's end (stage %s, error: %s)",
          sl_stage_name(sl_pipeline_stage(p)), e.msg);
    /* once per table: uq, gen, nopk, then gen and uq again after their ALTER */
    long long loads = metric(p, "target_meta_loads");
    CHECK(loads == 5, "target table metadata loaded %lld times, expected 5", loads);
    /* nopk's UPDATE/DELETE go by its unique key: a table scan per row would read ~10^5 rows */
    CHECK(scans < 20000, "the target read %lld rows by table scans", scans);
    printf("sinkmeta: caught up at %ld s; metadata loads %lld, rows read by scans %lld, lock-conflict "
           "retries %lld, nopk rows %d\n", (long)(time(NULL) - t0), loads, scans,
           metric(p, "lock_conflict_retries"), np_count);

    compare(src, dst, "smeta.uq", "smeta_t.uq", "id", 0);
    compare(src, dst, "smeta.gen", "smeta_t.gen", "id", 1);
    compare(src, dst, "smeta.nopk", "smeta_t.nopk", "u, w", 0);
    CHECK(strcmp(q1(dst, "SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = 'smeta_t' "
                         "AND TABLE_NAME = 'uq' AND INDEX_NAME = 'uv'", 0), "1") == 0, "uv not on the target");

    /* a column the target lacks pauses the task, naming it; adding it and resuming catches up */
    if (reached) {
        q(src, "SET SESSION sql_log_bin = 0; CREATE TABLE smeta.miss (id INT PRIMARY KEY, extra INT); "
               "SET SESSION sql_log_bin = 1");
        q(dst, "CREATE TABLE smeta_t.miss (id INT PRIMARY KEY)");
        q(src, "INSERT INTO smeta.miss VALUES (1, 5), (2, 6)");
        sl_stage stg = sl_pipeline_wait(p, 60000);
        sl_pipeline_error(p, &e);
        CHECK(stg == SL_STAGE_PAUSED, "missing column: stage %s", sl_stage_name(stg));
        CHECK(strstr(e.msg, "column `extra`") && strstr(e.msg, "`smeta_t`.`miss`"),
              "missing column: error %s", e.msg);
        CHECK(strcmp(q1(dst, "SELECT COUNT(*) FROM smeta_t.miss", 0), "0") == 0, "rows applied before the pause");
        q(dst, "ALTER TABLE smeta_t.miss ADD COLUMN extra INT");
        sl_pipeline_resume(p);
        CHECK(catch_up(p, src, dst), "no catch-up after the column was added (stage %s)",
              sl_stage_name(sl_pipeline_stage(p)));
        CHECK(strcmp(q1(dst, "SELECT GROUP_CONCAT(id, ':', extra ORDER BY id) FROM smeta_t.miss", 0), "1:5,2:6") == 0,
              "miss after resume: %s", q1(dst, "SELECT GROUP_CONCAT(id, ':', extra ORDER BY id) FROM smeta_t.miss", 0));
    }
    sl_pipeline_stop(p);
    sl_pipeline_free(p);
    sl_scheduler_free(sched);
    sl_registry_free(reg);
    q(dst, "SET GLOBAL sql_mode = '%s'", old_mode);
    mysql_close(src);
    mysql_close(dst);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("sinkmeta: all checks passed\n");
    return 0;
}
