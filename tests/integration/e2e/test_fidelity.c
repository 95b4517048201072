/*
 * test_fidelity.c - tables beyond plain columns, through a real sluice-server (task_mode all,
 * repl_threads 4): rows present at the dump, then DML while syncing, and the source and target
 * compared by CHECKSUM TABLE and row by row (every column named, invisible ones too).
 *
 *   test_fidelity types   the extended MariaDB types of plugins/common/xtype.h (INET6, INET4,
 *                         UUID) at their edges and NULL, as plain columns and as primary and
 *                         unique keys: inserted, updated (key changes too) and deleted
 *   test_fidelity fk      foreign keys with ON DELETE / ON UPDATE CASCADE and SET NULL, whose
 *                         cascaded child changes the source's binlog does not log: parents
 *                         deleted and updated while children are written in parallel
 *
 *   test_fidelity byvalue rows found by value while syncing: keyless tables whose rows differ
 *                         only in a FLOAT or in case, accents or trailing spaces; FLOAT primary
 *                         keys; strings of other charsets after GEOMETRY and POINT columns;
 *                         COMPRESSED columns (deflated, raw, zlib-wrapped, empty, NULL)
 *
 *   test_fidelity kinds   system-versioned tables (implicit and explicit period columns: current
 *                         rows copied, the target keeps its own history), a sequence (state in
 *                         the full phase, NEXTVAL/SETVAL while syncing), RANGE and HASH
 *                         partitioned tables (rows moved between partitions), invisible columns;
 *                         a view, a trigger, a procedure, a function and an event named in the
 *                         task's dump_status.not_copied (the trigger's rows arrive as rows)
 *
 * Needs SLUICE_SOURCE_* / SLUICE_TARGET_* and SLUICE_SANDBOX_DIR (fails without them).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static MYSQL *src, *dst;

/* A fresh schema on the source, nothing of it or of the task on the target. */
static void setup(const char *schema, const char *task)
{
    src = e2e_connect("SOURCE");
    dst = e2e_connect("TARGET");
    e2e_sql(src, "DROP DATABASE IF EXISTS `%s`; CREATE DATABASE `%s`", schema, schema);
    e2e_sql(dst, "DROP DATABASE IF EXISTS `%s`", schema);
    e2e_drop_meta(dst, task);
}

/* Start a server, create the source and an "all" task on schema, start it, and wait until it
 * replicates (incremental phase, Running). */
static void start_and_sync(e2e_server *sv, const char *task, const char *schema)
{
    e2e_server_start(sv, task, NULL);
    e2e_create_source(sv, "src");
    e2e_create_task(sv, task, "src", "all", schema);
    char p[256];
    snprintf(p, sizeof p, "/tasks/%s/start", task);
    json_decref(e2e_api(sv, "POST", p, "{}"));
    e2e_wait_sync(sv, task, 90);
}

/* Wait until the target has everything, compare, stop, clean up. */
static void finish(e2e_server *sv, const char *task, const char *schema, const char *name,
                   long long want_rows)
{
    e2e_wait_caught_up(sv, src, dst, task, 90);
    long long rows = e2e_compare_schema(src, dst, schema);
    E2E_CHECK(rows == want_rows, "%lld rows compared, want %lld", rows, want_rows);
    e2e_check_clean(dst, task);
    e2e_server_stop(sv);
    e2e_sql(src, "DROP DATABASE IF EXISTS `%s`", schema);
    e2e_sql(dst, "DROP DATABASE IF EXISTS `%s`", schema);
    e2e_drop_meta(dst, task);
    mysql_close(src);
    mysql_close(dst);
    e2e_finish(name);
}

/* ---- INET6, INET4, UUID ----------------------------------------------------------------------- */

static const char *const EDGES[][3] = {
    { "::", "0.0.0.0", "00000000-0000-0000-0000-000000000000" },
    { "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "255.255.255.255", "ffffffff-ffff-ffff-ffff-ffffffffffff" },
    { "1::", "1.0.0.0", "123e4567-e89b-12d3-a456-426614174000" },     /* trailing 0x00 bytes */
    { "::ffff:192.0.2.1", "192.0.2.1", "6ccd780c-baba-1026-9564-5b8c656024db" },
    { "fe80::1", "10.0.0.1", "00000000-0000-1000-8000-000000000001" },
};
#define NEDGES (int)(sizeof EDGES / sizeof EDGES[0])

static void scenario_types(void)
{
    const char *S = "fid_types", *T = "fid-types";
    setup(S, T);
    e2e_sql(src, "CREATE TABLE `%s`.xt (id INT PRIMARY KEY, a INET6, b INET4, c UUID)", S);
    e2e_sql(src, "CREATE TABLE `%s`.xk (k INET6 PRIMARY KEY, u UUID NOT NULL, b INET4, v INT, UNIQUE KEY (u))", S);
    e2e_sql(src, "CREATE TABLE `%s`.xu (u UUID PRIMARY KEY, b INET4 NOT NULL, v INT, UNIQUE KEY (b))", S);
    /* rows the dump copies */
    for (int i = 0; i < NEDGES; i++) {
        e2e_sql(src, "INSERT INTO `%s`.xt VALUES (%d, '%s', '%s', '%s')", S, i + 1, EDGES[i][0], EDGES[i][1], EDGES[i][2]);
        e2e_sql(src, "INSERT INTO `%s`.xk VALUES ('%s', '%s', '%s', %d)", S, EDGES[i][0], EDGES[i][2], EDGES[i][1], i);
        e2e_sql(src, "INSERT INTO `%s`.xu VALUES ('%s', '%s', %d)", S, EDGES[i][2], EDGES[i][1], i);
    }
    e2e_sql(src, "INSERT INTO `%s`.xt VALUES (100, NULL, NULL, NULL)", S);
    e2e_server sv;
    start_and_sync(&sv, T, S);
    /* the same edges through the binlog: inserts, updates to and from NULL and between edges,
     * key changes, deletes */
    for (int i = 0; i < NEDGES; i++) {
        int j = (i + 1) % NEDGES;
        e2e_sql(src, "INSERT INTO `%s`.xt VALUES (%d, '%s', '%s', '%s')", S, 200 + i, EDGES[i][0], EDGES[i][1], EDGES[i][2]);
        e2e_sql(src, "INSERT INTO `%s`.xt VALUES (%d, NULL, NULL, NULL)", S, 300 + i);
        e2e_sql(src, "UPDATE `%s`.xt SET a = '%s', b = '%s', c = '%s' WHERE id = %d", S, EDGES[j][0], EDGES[j][1],
                EDGES[j][2], i + 1);
        e2e_sql(src, "UPDATE `%s`.xt SET a = '%s', b = '%s', c = '%s' WHERE id = %d", S, EDGES[i][0], EDGES[i][1],
                EDGES[i][2], 300 + i);
        e2e_sql(src, "UPDATE `%s`.xt SET a = NULL, c = NULL WHERE id = %d", S, 200 + i);
    }
    e2e_sql(src, "UPDATE `%s`.xt SET a = '::2', b = '0.0.0.2', c = '00000000-0000-0000-0000-000000000002' "
                 "WHERE id = 100", S);
    e2e_sql(src, "DELETE FROM `%s`.xt WHERE id IN (2, 203)", S);
    /* keys of these types: rows found by them (UPDATE/DELETE WHERE k = ...), and moved */
    e2e_sql(src, "UPDATE `%s`.xk SET v = v + 10 WHERE k = '::'", S);
    e2e_sql(src, "UPDATE `%s`.xk SET k = '2001:db8::1', u = '00000000-0000-0000-0000-0000000000ff' WHERE k = '1::'", S);
    e2e_sql(src, "DELETE FROM `%s`.xk WHERE k = 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'", S);
    e2e_sql(src, "INSERT INTO `%s`.xk VALUES ('ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe', "
                 "'ffffffff-ffff-ffff-ffff-ffffffffffff', NULL, 9)", S);   /* reuses a deleted row's unique value */
    e2e_sql(src, "UPDATE `%s`.xu SET b = '8.8.8.8' WHERE u = '00000000-0000-0000-0000-000000000000'", S);
    e2e_sql(src, "UPDATE `%s`.xu SET u = '11111111-1111-1111-1111-111111111111' WHERE b = '10.0.0.1'", S);
    e2e_sql(src, "DELETE FROM `%s`.xu WHERE u = 'ffffffff-ffff-ffff-ffff-ffffffffffff'", S);
    e2e_sql(src, "INSERT INTO `%s`.xu VALUES ('22222222-2222-2222-2222-222222222222', '255.255.255.255', 7)", S);
    /* xt: 6 + 10 - 2; xk: 5 - 1 + 1; xu: 5 - 1 + 1 */
    finish(&sv, T, S, "types", 14 + 5 + 5);
}

/* ---- foreign keys with cascading actions -------------------------------------------------------
 * p <- c1 (ON DELETE CASCADE ON UPDATE CASCADE) <- g (ON DELETE CASCADE, ON UPDATE CASCADE)
 * p <- c2 (ON DELETE SET NULL ON UPDATE SET NULL), and u with no foreign key, written in the same
 * transactions so that the parallel workers have other rows to take. */

static long long total_rows(MYSQL *db, const char *S)
{
    return e2e_int(db, "SELECT (SELECT COUNT(*) FROM `%s`.p) + (SELECT COUNT(*) FROM `%s`.c1) + "
                       "(SELECT COUNT(*) FROM `%s`.c2) + (SELECT COUNT(*) FROM `%s`.g) + "
                       "(SELECT COUNT(*) FROM `%s`.u)", S, S, S, S, S);
}

static void scenario_fk(void)
{
    const char *S = "fid_fk", *T = "fid-fk";
    setup(S, T);
    e2e_sql(src, "CREATE TABLE `%s`.p (id INT PRIMARY KEY, v INT)", S);
    e2e_sql(src, "CREATE TABLE `%s`.c1 (id INT PRIMARY KEY, pid INT NOT NULL, v INT, "
                 "CONSTRAINT fk_c1 FOREIGN KEY (pid) REFERENCES p (id) ON DELETE CASCADE ON UPDATE CASCADE)", S);
    e2e_sql(src, "CREATE TABLE `%s`.c2 (id INT PRIMARY KEY, pid INT NULL, v INT, "
                 "CONSTRAINT fk_c2 FOREIGN KEY (pid) REFERENCES p (id) ON DELETE SET NULL ON UPDATE SET NULL)", S);
    e2e_sql(src, "CREATE TABLE `%s`.g (id INT PRIMARY KEY, cid INT NOT NULL, "
                 "CONSTRAINT fk_g FOREIGN KEY (cid) REFERENCES c1 (id) ON DELETE CASCADE ON UPDATE CASCADE)", S);
    e2e_sql(src, "CREATE TABLE `%s`.u (id INT PRIMARY KEY, v INT)", S);
    /* rows the dump copies: 100 parents, 3 + 2 children each, one grandchild per c1 row */
    for (int p = 1; p <= 100; p++) {
        e2e_sql(src, "INSERT INTO `%s`.p VALUES (%d, %d)", S, p, p);
        for (int k = 0; k < 3; k++) {
            e2e_sql(src, "INSERT INTO `%s`.c1 VALUES (%d, %d, %d)", S, p * 10 + k, p, k);
            e2e_sql(src, "INSERT INTO `%s`.g VALUES (%d, %d)", S, p * 10 + k, p * 10 + k);
        }
        for (int k = 0; k < 2; k++)
            e2e_sql(src, "INSERT INTO `%s`.c2 VALUES (%d, %d, %d)", S, p * 10 + k, p, k);
        e2e_sql(src, "INSERT INTO `%s`.u VALUES (%d, 0)", S, p);
    }
    e2e_server sv;
    start_and_sync(&sv, T, S);
    /* while syncing: every parent is deleted, has its key changed, or gets new children; each
     * transaction also writes u, so the groups spread over the workers */
    for (int p = 1; p <= 100; p++) {
        e2e_sql(src, "START TRANSACTION");
        e2e_sql(src, "UPDATE `%s`.u SET v = v + 1 WHERE id = %d", S, 101 - p);
        switch (p % 5) {
        case 0:   /* CASCADE deletes c1 and g, SET NULL on c2 */
            e2e_sql(src, "DELETE FROM `%s`.p WHERE id = %d", S, p);
            break;
        case 1:   /* CASCADE moves c1 (and not g: it references c1), SET NULL on c2 */
            e2e_sql(src, "UPDATE `%s`.p SET id = %d WHERE id = %d", S, 1000 + p, p);
            break;
        case 2:   /* a new parent and children, then the old parent's c1 rows moved to it */
            e2e_sql(src, "INSERT INTO `%s`.p VALUES (%d, 0)", S, 2000 + p);
            e2e_sql(src, "INSERT INTO `%s`.c1 VALUES (%d, %d, 9)", S, 20000 + p, 2000 + p);
            e2e_sql(src, "INSERT INTO `%s`.g VALUES (%d, %d)", S, 20000 + p, 20000 + p);
            e2e_sql(src, "UPDATE `%s`.c1 SET pid = %d WHERE pid = %d", S, 2000 + p, p);
            e2e_sql(src, "DELETE FROM `%s`.p WHERE id = %d", S, p);
            break;
        case 3:   /* a child's key changes (its grandchild cascades), then the parent goes */
            e2e_sql(src, "UPDATE `%s`.c1 SET id = %d WHERE id = %d", S, 30000 + p, p * 10);
            e2e_sql(src, "UPDATE `%s`.c2 SET v = 7 WHERE pid = %d", S, p);
            e2e_sql(src, "DELETE FROM `%s`.p WHERE id = %d", S, p);
            break;
        default:  /* SET NULL children re-parented later */
            e2e_sql(src, "UPDATE `%s`.p SET id = %d WHERE id = %d", S, 4000 + p, p);
            e2e_sql(src, "UPDATE `%s`.c2 SET pid = %d WHERE id = %d", S, 4000 + p, p * 10);
            break;
        }
        e2e_sql(src, "COMMIT");
    }
    /* cascades really happened on the source, and would be missed without them on the target */
    E2E_CHECK(e2e_int(src, "SELECT COUNT(*) FROM `%s`.c2 WHERE pid IS NULL", S) > 0, "no SET NULL fired");
    E2E_CHECK(e2e_int(src, "SELECT COUNT(*) FROM `%s`.c1", S) < 300, "no CASCADE delete fired");
    long long want = total_rows(src, S);
    finish(&sv, T, S, "fk", want);
}

/* ---- table kinds: system-versioned, sequences, partitioned, invisible columns ------------------ */

static void scenario_kinds(void)
{
    const char *S = "fid_kinds", *T = "fid-kinds";
    setup(S, T);
    e2e_sql(src, "CREATE TABLE `%s`.vi (id INT PRIMARY KEY, v INT) WITH SYSTEM VERSIONING", S);
    e2e_sql(src, "CREATE TABLE `%s`.ve (id INT PRIMARY KEY, v VARCHAR(20), "
                 "s TIMESTAMP(6) GENERATED ALWAYS AS ROW START INVISIBLE, "
                 "e TIMESTAMP(6) GENERATED ALWAYS AS ROW END INVISIBLE, "
                 "PERIOD FOR SYSTEM_TIME (s, e)) WITH SYSTEM VERSIONING", S);
    e2e_sql(src, "CREATE SEQUENCE `%s`.sq START WITH 100 INCREMENT BY 3 CACHE 2", S);
    e2e_sql(src, "CREATE TABLE `%s`.pt (id INT NOT NULL, d DATE NOT NULL, v INT, PRIMARY KEY (id, d)) "
                 "PARTITION BY RANGE (YEAR(d)) (PARTITION p0 VALUES LESS THAN (2000), "
                 "PARTITION p1 VALUES LESS THAN (2020), PARTITION p2 VALUES LESS THAN MAXVALUE)", S);
    e2e_sql(src, "CREATE TABLE `%s`.ph (id INT PRIMARY KEY, v INT) PARTITION BY HASH (id) PARTITIONS 4", S);
    e2e_sql(src, "CREATE TABLE `%s`.inv (id INT PRIMARY KEY, a INT INVISIBLE DEFAULT 5, b VARCHAR(10), "
                 "c INT INVISIBLE NULL)", S);
    /* objects a task does not copy, each named in the dump status; the trigger's rows arrive
     * as rows (a trigger copied to the target would write them twice) */
    e2e_sql(src, "CREATE TABLE `%s`.audit (n INT AUTO_INCREMENT PRIMARY KEY, id INT, what VARCHAR(10))", S);
    e2e_sql(src, "CREATE TRIGGER `%s`.inv_ai AFTER INSERT ON `%s`.inv FOR EACH ROW "
                 "INSERT INTO `%s`.audit (id, what) VALUES (NEW.id, 'insert')", S, S, S);
    e2e_sql(src, "CREATE VIEW `%s`.v_inv AS SELECT id, b FROM `%s`.inv", S, S);
    e2e_sql(src, "CREATE PROCEDURE `%s`.p_noop() BEGIN END", S);
    e2e_sql(src, "CREATE FUNCTION `%s`.f_one() RETURNS INT DETERMINISTIC RETURN 1", S);
    e2e_sql(src, "CREATE EVENT `%s`.ev_never ON SCHEDULE AT '2037-01-01 00:00:00' DISABLE DO SELECT 1", S);
    for (int i = 1; i <= 20; i++) {
        e2e_sql(src, "INSERT INTO `%s`.vi VALUES (%d, %d)", S, i, i);
        e2e_sql(src, "INSERT INTO `%s`.ve (id, v) VALUES (%d, 'v%d')", S, i, i);
        e2e_sql(src, "INSERT INTO `%s`.pt VALUES (%d, '%d-06-01', %d)", S, i, 1990 + i * 2, i);
        e2e_sql(src, "INSERT INTO `%s`.ph VALUES (%d, %d)", S, i, i);
        e2e_sql(src, "INSERT INTO `%s`.inv (id, a, b, c) VALUES (%d, %d, 'b%d', %s)", S, i, i * 10, i,
                i % 3 ? "NULL" : "7");
    }
    e2e_sql(src, "UPDATE `%s`.vi SET v = v + 100 WHERE id <= 5", S);    /* history before the dump */
    e2e_sql(src, "DO NEXTVAL(`%s`.sq)", S);
    e2e_sql(src, "DO NEXTVAL(`%s`.sq)", S);
    e2e_sql(src, "DO NEXTVAL(`%s`.sq)", S);
    e2e_server sv;
    start_and_sync(&sv, T, S);
    /* the task names what it did not copy, in the order of the source's information_schema */
    json_t *st = e2e_task_status(&sv, T);
    json_t *nc = json_object_get(json_object_get(st, "dump_status"), "not_copied");
    char *ncs = json_dumps(nc, JSON_COMPACT);
    printf("  not copied: %s\n", ncs ? ncs : "(none)");
    E2E_CHECK(ncs && json_array_size(nc) == 5 &&
              strstr(ncs, "\"EVENT `fid_kinds`.`ev_never`\"") && strstr(ncs, "\"FUNCTION `fid_kinds`.`f_one`\"") &&
              strstr(ncs, "\"PROCEDURE `fid_kinds`.`p_noop`\"") && strstr(ncs, "\"TRIGGER `fid_kinds`.`inv_ai`\"") &&
              strstr(ncs, "\"VIEW `fid_kinds`.`v_inv`\""), "dump_status.not_copied is not the 5 objects: %s",
              ncs ? ncs : "null");
    E2E_CHECK(json_integer_value(json_object_get(json_object_get(st, "dump_status"), "not_copied_count")) == 5,
              "not_copied_count is not 5");
    free(ncs);
    json_decref(st);
    E2E_CHECK(e2e_int(dst, "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = '%s'", S) == 0,
              "a trigger was copied");
    /* the target's own history starts with the load: one version per row */
    E2E_CHECK(e2e_int(dst, "SELECT COUNT(*) FROM `%s`.vi FOR SYSTEM_TIME ALL", S) == 20,
              "the loaded versioned table does not hold exactly its current rows");
    /* while syncing: versioned rows updated and deleted, the sequence advanced and set,
     * partitioned rows moved between partitions, invisible columns written */
    e2e_sql(src, "UPDATE `%s`.vi SET v = -v WHERE id BETWEEN 3 AND 8", S);        /* 6 versions */
    e2e_sql(src, "DELETE FROM `%s`.vi WHERE id IN (9, 10)", S);                   /* 2 versions */
    e2e_sql(src, "INSERT INTO `%s`.vi VALUES (21, 21)", S);
    e2e_sql(src, "UPDATE `%s`.vi SET v = 0 WHERE id = 21", S);                    /* 1 version */
    /* one row changed three times in one transaction: three versions on the source, and on the
     * target too (no net change of a versioned table) */
    e2e_sql(src, "START TRANSACTION; UPDATE `%s`.vi SET v = 1 WHERE id = 11; UPDATE `%s`.vi SET v = 2 "
                 "WHERE id = 11; UPDATE `%s`.vi SET v = 3 WHERE id = 11; COMMIT", S, S, S);
    e2e_sql(src, "UPDATE `%s`.ve SET v = 'changed' WHERE id <= 4", S);
    e2e_sql(src, "DELETE FROM `%s`.ve WHERE id > 17", S);
    e2e_sql(src, "INSERT INTO `%s`.ve (id, v) VALUES (30, 'new')", S);
    e2e_sql(src, "DELETE HISTORY FROM `%s`.ve", S);                               /* the target keeps its own */
    for (int i = 0; i < 7; i++)
        e2e_sql(src, "DO NEXTVAL(`%s`.sq)", S);
    e2e_sql(src, "DO SETVAL(`%s`.sq, 5000)", S);
    e2e_sql(src, "DO NEXTVAL(`%s`.sq)", S);
    e2e_sql(src, "UPDATE `%s`.pt SET d = '2030-01-01' WHERE id <= 3", S);          /* p0 -> p2 */
    e2e_sql(src, "DELETE FROM `%s`.pt WHERE id BETWEEN 10 AND 12", S);
    e2e_sql(src, "INSERT INTO `%s`.pt VALUES (40, '1970-01-01', NULL), (41, '2050-12-31', 41)", S);
    e2e_sql(src, "UPDATE `%s`.ph SET id = id + 100 WHERE id <= 4", S);
    e2e_sql(src, "DELETE FROM `%s`.ph WHERE id = 20", S);
    e2e_sql(src, "UPDATE `%s`.inv SET a = a + 1, c = 9 WHERE id <= 5", S);
    e2e_sql(src, "INSERT INTO `%s`.inv (id, b) VALUES (50, 'dflt')", S);
    e2e_sql(src, "DELETE FROM `%s`.inv WHERE id = 20", S);
    long long want = e2e_int(src, "SELECT (SELECT COUNT(*) FROM `%s`.vi) + (SELECT COUNT(*) FROM `%s`.ve) + 1 + "
                                  "(SELECT COUNT(*) FROM `%s`.pt) + (SELECT COUNT(*) FROM `%s`.ph) + "
                                  "(SELECT COUNT(*) FROM `%s`.inv) + (SELECT COUNT(*) FROM `%s`.audit)",
                             S, S, S, S, S, S);
    e2e_wait_caught_up(&sv, src, dst, T, 90);
    /* history on the target: the versions the changes after the load closed (12), nothing more */
    E2E_CHECK(e2e_int(dst, "SELECT COUNT(*) FROM `%s`.vi FOR SYSTEM_TIME ALL WHERE ROW_END < "
                           "'2038-01-19 03:14:07.999999'", S) == 12, "vi: %lld history rows on the target, want 12",
              e2e_int(dst, "SELECT COUNT(*) FROM `%s`.vi FOR SYSTEM_TIME ALL WHERE ROW_END < "
                           "'2038-01-19 03:14:07.999999'", S));
    /* the sequence goes on from where the source's did */
    E2E_CHECK(e2e_int(dst, "SELECT next_not_cached_value FROM `%s`.sq", S) ==
              e2e_int(src, "SELECT next_not_cached_value FROM `%s`.sq", S), "sequence state differs");
    E2E_CHECK(e2e_int(dst, "SELECT next_not_cached_value FROM `%s`.sq", S) > 5000, "SETVAL did not arrive");
    finish(&sv, T, S, "kinds", want);
}

/* ---- rows found by value: keyless tables, FLOAT keys, strings after a GEOMETRY ------------------ */

/*
 * Three ways a change reached another row than the source's, or other bytes (found by an
 * exploratory session): a keyless table's row was found with every column but its FLOATs, and
 * with strings compared under their collation ('a' = 'A', 'b' = 'b '), so LIMIT 1 took a twin;
 * a FLOAT key was written with 9 digits, which is not its stored value as a double, so the
 * UPDATE found nothing; and the binlog's charset list skipped GEOMETRY columns, so every later
 * string column took the charset of the one before it. And COMPRESSED columns, which the binlog
 * logs deflated, stopped the incremental phase.
 */
static void scenario_byvalue(void)
{
    const char *S = "fid_byvalue", *T = "fid-byvalue";
    setup(S, T);
    e2e_sql(src, "ALTER DATABASE `%s` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci", S);
    e2e_sql(src, "CREATE TABLE `%s`.nk_f (a INT, f FLOAT)", S);
    e2e_sql(src, "INSERT INTO `%s`.nk_f VALUES (1, 0.5), (1, 0.25), (1, 0.125), (1, 0.1), (1, 0.3)", S);
    e2e_sql(src, "CREATE TABLE `%s`.nk_ci (s VARCHAR(10), n INT)", S);
    e2e_sql(src, "INSERT INTO `%s`.nk_ci VALUES ('a', 1), ('A', 1), ('b', 2), ('b ', 2), ('e', 3), "
                 "('\xC3\xA9', 3), ('x', 4), ('X', 4)", S);
    e2e_sql(src, "CREATE TABLE `%s`.fk (f FLOAT PRIMARY KEY, v INT)", S);
    e2e_sql(src, "INSERT INTO `%s`.fk VALUES (0.1, 1), (0.1234567, 2), (16777216, 3), (-2.5, 4)", S);
    e2e_sql(src, "CREATE TABLE `%s`.gs (id INT PRIMARY KEY, g GEOMETRY, a VARCHAR(10) CHARACTER SET latin1, "
                 "b VARCHAR(10) CHARACTER SET utf8mb4, p POINT NOT NULL, c TEXT CHARACTER SET latin1)", S);
    e2e_sql(src, "INSERT INTO `%s`.gs VALUES (1, POINT(1, 1), '\xC3\xA9', '\xC3\xBC', POINT(0, 0), 'na\xC3\xAFve')", S);
    /* COMPRESSED columns: the binlog logs them deflated (or raw under column_compression_threshold) */
    e2e_sql(src, "CREATE TABLE `%s`.cz (id INT PRIMARY KEY, a VARCHAR(200) COMPRESSED, b BLOB COMPRESSED, "
                 "c TEXT COMPRESSED CHARACTER SET latin1, d VARCHAR(255) CHARACTER SET latin1 COMPRESSED, "
                 "e VARCHAR(20))", S);
    e2e_sql(src, "INSERT INTO `%s`.cz VALUES (1, REPEAT('ab', 90), REPEAT(X'00FF', 400), REPEAT('\xC3\xA9', 150), "
                 "REPEAT('x', 255), 'plain'), (2, '', '', NULL, 'short', NULL)", S);
    e2e_server sv;
    start_and_sync(&sv, T, S);
    e2e_sql(src, "INSERT INTO `%s`.cz VALUES (3, REPEAT('\xC3\xBC', 200), REPEAT('0123456789', 2000), "
                 "REPEAT('na\xC3\xAFve ', 40), REPEAT('z', 254), 'inc')", S);
    e2e_sql(src, "SET SESSION column_compression_zlib_wrap = ON");
    e2e_sql(src, "INSERT INTO `%s`.cz VALUES (4, REPEAT('w', 200), RANDOM_BYTES(1000), 'tiny', REPEAT('q', 120), 'wrap')", S);
    e2e_sql(src, "SET SESSION column_compression_zlib_wrap = OFF");
    e2e_sql(src, "UPDATE `%s`.cz SET a = CONCAT(LEFT(a, 150), '\xC3\xBC'), d = REPEAT('y', 254), b = NULL WHERE id = 1", S);
    e2e_sql(src, "DELETE FROM `%s`.cz WHERE id = 2", S);
    /* keyless: each change names one of several rows that differ only in a FLOAT or in bytes */
    e2e_sql(src, "UPDATE `%s`.nk_f SET a = 2 WHERE f = 0.25", S);
    e2e_sql(src, "DELETE FROM `%s`.nk_f WHERE f = 0.125", S);
    e2e_sql(src, "UPDATE `%s`.nk_f SET a = 3 WHERE ABS(f - 0.1) < 1e-6", S);
    e2e_sql(src, "DELETE FROM `%s`.nk_ci WHERE BINARY s = 'A'", S);
    e2e_sql(src, "UPDATE `%s`.nk_ci SET n = 20 WHERE BINARY s = 'b '", S);
    e2e_sql(src, "DELETE FROM `%s`.nk_ci WHERE BINARY s = '\xC3\xA9'", S);
    e2e_sql(src, "UPDATE `%s`.nk_ci SET n = 40 WHERE BINARY s = 'X'", S);
    /* FLOAT keys that 9 digits do not give back */
    e2e_sql(src, "UPDATE `%s`.fk SET v = v + 10", S);
    e2e_sql(src, "DELETE FROM `%s`.fk WHERE v = 12", S);
    e2e_sql(src, "UPDATE `%s`.fk SET f = 0.7 WHERE v = 14", S);
    /* strings after GEOMETRY and POINT columns, in other charsets than the column before them */
    e2e_sql(src, "INSERT INTO `%s`.gs VALUES (2, POINT(2, 2), '\xC3\xA9', '\xC3\xBC\xF0\x9F\x98\x80', "
                 "POINT(1, 2), '\xC3\xA0 la')", S);
    e2e_sql(src, "UPDATE `%s`.gs SET b = '\xC3\xB6' WHERE id = 1", S);
    long long want = e2e_int(src, "SELECT (SELECT COUNT(*) FROM `%s`.nk_f) + (SELECT COUNT(*) FROM `%s`.nk_ci) + "
                                  "(SELECT COUNT(*) FROM `%s`.fk) + (SELECT COUNT(*) FROM `%s`.gs) + "
                                  "(SELECT COUNT(*) FROM `%s`.cz)", S, S, S, S, S);
    E2E_CHECK(want == 4 + 6 + 3 + 2 + 3, "source has %lld rows, want 18", want);
    finish(&sv, T, S, "byvalue", want);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s types|fk|kinds|byvalue\n", argv[0]);
        return 2;
    }
    e2e_env("SLUICE_SOURCE_HOST");
    e2e_env("SLUICE_TARGET_HOST");
    e2e_env("SLUICE_SANDBOX_DIR");
    mysql_library_init(0, NULL, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (!strcmp(argv[1], "types"))
        scenario_types();
    else if (!strcmp(argv[1], "fk"))
        scenario_fk();
    else if (!strcmp(argv[1], "kinds"))
        scenario_kinds();
    else if (!strcmp(argv[1], "byvalue"))
        scenario_byvalue();
    else {
        fprintf(stderr, "unknown scenario %s\n", argv[1]);
        return 2;
    }
    return 0;
}
