/*
 * test_minimal.c - replication from a source with binlog_row_metadata=MINIMAL (table maps
 * without column names, ENUM/SET labels or primary key): a real sluice-server, task_mode all
 * through a type matrix, DDL mid-stream (ADD, DROP, MODIFY, RENAME COLUMN, RENAME TABLE), and
 * one SIGKILL after which the source runs DML, a DDL and more DML while sluice is down, so the
 * resume must decode the first rows with the structure of its checkpoint, not of "now". The
 * source and target are compared by CHECKSUM TABLE and row by row.
 *
 * The source's binlog_row_metadata is set to MINIMAL for the test and back to FULL at exit
 * (it is a dynamic global variable: the binlog dump thread of the next connection uses it).
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
#include <unistd.h>

#define S "st_minimal"
#define T "st-minimal"

static MYSQL *src, *dst;

static void restore_full(void)
{
    MYSQL *db = e2e_connect("SOURCE");
    e2e_sql(db, "SET GLOBAL binlog_row_metadata = FULL");
    mysql_close(db);
}

/* Column names the DDL of the test changes. */
static const char *u8 = "u8", *nokey = "nokey";
static int has_tx = 1;

/* One round of DML over every table of the matrix, keys from base. */
static void dml(int base)
{
    e2e_sql(src, "INSERT INTO `" S "`.num (id, i8, %s, i16, u16, i24, u24, i32, u32, i64, u64, d, "
                 "du, f, g, b, y) VALUES (%d, -128, 255, -32768, 65535, -8388608, 16777215, "
                 "-2147483648, 4294967295, -9223372036854775808, 18446744073709551615, "
                 "-99999999999999999999.9999999999, 12345.678, 3.4e38, -1.7976931348623157e308, "
                 "b'1010101010', 2155)", u8, base);
    e2e_sql(src, "INSERT INTO `" S "`.num (id, i8, %s, i16, u16, i24, u24, i32, u32, i64, u64, d, "
                 "du, f, g, b, y) VALUES (%d, 127, 0, 32767, 0, 8388607, 0, 2147483647, 0, "
                 "9223372036854775807, 0, 0.0000000001, 0, -1.5, 2.5, b'0', 1901)", u8, base + 1);
    e2e_sql(src, "UPDATE `" S "`.num SET `%s` = `%s` - 1, d = d + 1 WHERE id = %d", u8, u8, base);
    e2e_sql(src, "INSERT INTO `" S "`.txt (id, c, u, l, %s bn, vb, bl, j, e, st, dt, tm, dtm, ts, gm) "
                 "VALUES (%d, 'ab', 'héllo wörld 😀', 'latin é', "
                 "%s x'00ff10', x'0001', x'deadbeef', '{\"a\": [1, 2]}', 'b', 'x,z', "
                 "'2024-02-29', '838:59:59.000000', '9999-12-31 23:59:59.999999', "
                 "'2038-01-19 03:14:07.123', POINT(1, 2))", has_tx ? "tx," : "", base,
            has_tx ? "REPEAT('t', 300)," : "");
    e2e_sql(src, "INSERT INTO `" S "`.txt (id, c, u, l, bn, vb, bl, j, e, st, dt, tm, dtm, ts, gm) "
                 "VALUES (%d, NULL, NULL, NULL, NULL, NULL, NULL, "
                 "NULL, NULL, '', NULL, NULL, NULL, NULL, NULL)", base + 1);
    e2e_sql(src, "UPDATE `" S "`.txt SET e = 'c', st = 'y', u = CONCAT(u, '!') WHERE id = %d", base);
    e2e_sql(src, "DELETE FROM `" S "`.txt WHERE id = %d", base - 10);
    e2e_sql(src, "INSERT INTO `" S "`.`%s` VALUES (%d, 'n'), (%d, 'n')", nokey, base, base);
    e2e_sql(src, "DELETE FROM `" S "`.`%s` WHERE a = %d LIMIT 1", nokey, base - 10);
}

int main(void)
{
    e2e_env("SLUICE_SOURCE_HOST");
    e2e_env("SLUICE_TARGET_HOST");
    e2e_env("SLUICE_SANDBOX_DIR");
    mysql_library_init(0, NULL, NULL);
    signal(SIGPIPE, SIG_IGN);
    src = e2e_connect("SOURCE");
    dst = e2e_connect("TARGET");
    atexit(restore_full);
    e2e_on_fail(restore_full);
    e2e_sql(src, "SET GLOBAL binlog_row_metadata = MINIMAL");
    e2e_sql(src, "DROP DATABASE IF EXISTS `" S "`; CREATE DATABASE `" S "`");
    e2e_sql(dst, "DROP DATABASE IF EXISTS `" S "`");
    e2e_drop_meta(dst, T);
    e2e_sql(dst, "DROP TABLE IF EXISTS `dm_meta`.`" T "_schema_tracker`");

    /* the type matrix: signed/unsigned integers of every size, DECIMAL, FLOAT, DOUBLE, BIT,
     * YEAR; character columns in several charsets, binary strings, JSON, ENUM, SET, temporal
     * types with fractions, a geometry; a table without a key */
    e2e_sql(src, "CREATE TABLE `" S "`.num (id INT PRIMARY KEY, i8 TINYINT, u8 TINYINT UNSIGNED, "
                 "i16 SMALLINT, u16 SMALLINT UNSIGNED, i24 MEDIUMINT, u24 MEDIUMINT UNSIGNED, "
                 "i32 INT, u32 INT UNSIGNED, i64 BIGINT, u64 BIGINT UNSIGNED, d DECIMAL(30,10), "
                 "du DECIMAL(10,3) UNSIGNED, f FLOAT, g DOUBLE, b BIT(10), y YEAR)");
    e2e_sql(src, "CREATE TABLE `" S "`.txt (id INT NOT NULL, c CHAR(4) CHARACTER SET ascii, "
                 "u VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_uca1400_ai_ci, "
                 "l VARCHAR(50) CHARACTER SET latin1, tx TEXT, bn BINARY(3), vb VARBINARY(10), "
                 "bl BLOB, j JSON, e ENUM('a', 'b', 'c''q', 'c'), st SET('x', 'y', 'z'), "
                 "dt DATE, tm TIME(6), dtm DATETIME(6), ts TIMESTAMP(3) NULL, gm GEOMETRY, "
                 "PRIMARY KEY (id))");
    e2e_sql(src, "CREATE TABLE `" S "`.nokey (a INT, v VARCHAR(10))");
    dml(10);
    long long shadows_before = e2e_int(dst, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE "
                                            "SCHEMA_NAME LIKE '\\_sl\\_st\\_%%'");

    e2e_server sv;
    e2e_server_start(&sv, "minimal", NULL);
    e2e_create_source(&sv, "src");
    e2e_create_task(&sv, T, "src", "all", S);
    json_decref(e2e_api(&sv, "POST", "/tasks/" T "/start", "{}"));
    e2e_wait_sync(&sv, T, 90);
    dml(20);

    /* DDL mid-stream, rows after each: add (an ENUM whose labels only the tracker knows),
     * modify, rename a column */
    e2e_sql(src, "ALTER TABLE `" S "`.txt ADD COLUMN e2 ENUM('p', 'q', 'r') NOT NULL DEFAULT 'q' "
                 "AFTER id, ADD COLUMN n INT UNSIGNED NULL");
    dml(30);
    e2e_sql(src, "UPDATE `" S "`.txt SET e2 = 'r', n = 4000000000 WHERE id = 30");
    e2e_sql(src, "ALTER TABLE `" S "`.num MODIFY i8 INT NULL");
    e2e_sql(src, "ALTER TABLE `" S "`.num CHANGE COLUMN u8 u8_renamed TINYINT UNSIGNED");
    u8 = "u8_renamed";
    e2e_sql(src, "UPDATE `" S "`.num SET i8 = 60000 WHERE id = 30");
    dml(40);
    e2e_wait_caught_up(&sv, src, dst, T, 90);

    /* kill -9, then while sluice is down: rows, a DROP COLUMN, rows. The resume decodes the
     * first rows with the structure as of its checkpoint (the column still there). */
    e2e_server_kill(&sv);
    dml(50);
    e2e_sql(src, "ALTER TABLE `" S "`.txt DROP COLUMN tx");
    has_tx = 0;
    dml(60);
    e2e_server_start(&sv, "minimal", NULL);
    e2e_wait_sync(&sv, T, 90);
    /* and a table renamed, written under its new name */
    e2e_sql(src, "RENAME TABLE `" S "`.nokey TO `" S "`.nokey2");
    nokey = "nokey2";
    e2e_sql(src, "INSERT INTO `" S "`.nokey2 VALUES (1000, 'after')");
    dml(70);
    e2e_wait_caught_up(&sv, src, dst, T, 90);

    long long rows = e2e_compare_schema(src, dst, S);
    E2E_CHECK(rows > 0, "nothing compared");
    printf("  %lld rows equal on the source and the target\n", rows);
    /* the tracker followed the DDL: its latest version of txt has e2 and no tx */
    const char *tracked = e2e_str(dst, "SELECT create_sql FROM `dm_meta`.`" T "_schema_tracker` WHERE "
                                  "table_name = 'txt' ORDER BY binlog_name DESC, binlog_pos DESC LIMIT 1");
    E2E_CHECK(strstr(tracked, "`e2` enum('p','q','r')") && !strstr(tracked, "`tx`"),
              "tracked structure of txt: %s", tracked);
    e2e_check_clean(dst, T);

    /* the table-structure endpoints: refused while running, then served from the tracker */
    json_t *j = NULL;
    const char *P = "/tasks/" T "/sources/src/schemas/" S;
    char path[256];
    snprintf(path, sizeof path, "%s/txt", P);
    int code = e2e_http(&sv, "GET", path, NULL, &j);
    E2E_CHECK(code == 400 && strstr(json_string_value(json_object_get(j, "error_msg")), "Running"),
              "GET structure of a running subtask: %d", code);
    json_decref(j);
    json_decref(e2e_api(&sv, "POST", "/tasks/" T "/stop", "{}"));
    j = e2e_api(&sv, "GET", path, NULL);
    const char *create = json_string_value(json_object_get(j, "schema_create_sql"));
    E2E_CHECK(create && strstr(create, "`e2` enum('p','q','r')") && !strstr(create, "`tx`") &&
              !strcmp(json_string_value(json_object_get(j, "schema_name")), S) &&
              !strcmp(json_string_value(json_object_get(j, "table_name")), "txt"),
              "GET structure: %s", create ? create : "(none)");
    char *orig = strdup(create);
    json_decref(j);
    snprintf(path, sizeof path, "%s/nosuch", P);
    code = e2e_http(&sv, "GET", path, NULL, &j);
    E2E_CHECK(code == 404 && json_object_get(j, "error_code"), "GET unknown table: %d", code);
    json_decref(j);
    snprintf(path, sizeof path, "%s/txt", P);
    /* bad input: 400 with the server's parse error, nothing changed */
    code = e2e_http(&sv, "PUT", path, "{\"sql_content\": \"CREATE TABLE txt (id INT,\"}", &j);
    E2E_CHECK(code == 400 && strstr(json_string_value(json_object_get(j, "error_msg")), "syntax"),
              "PUT invalid SQL: %d %s", code, json_string_value(json_object_get(j, "error_msg")));
    json_decref(j);
    code = e2e_http(&sv, "PUT", path, "{\"sql_content\": \"CREATE TABLE other (id INT)\"}", &j);
    E2E_CHECK(code == 400 && strstr(json_string_value(json_object_get(j, "error_msg")), "other"),
              "PUT a CREATE of another table: %d", code);
    json_decref(j);
    /* a structure, nothing else: CREATE ... SELECT ran a query on the target; a misspelled field
     * was dropped */
    code = e2e_http(&sv, "PUT", path, "{\"sql_content\": \"CREATE TABLE txt AS SELECT 1 AS a\"}", &j);
    E2E_CHECK(code == 400 && strstr(json_string_value(json_object_get(j, "error_msg")), "no SELECT"),
              "PUT a CREATE ... SELECT: %d", code);
    json_decref(j);
    code = e2e_http(&sv, "PUT", path, "{\"sql_content\": \"CREATE TABLE txt (id INT)\", \"flsh\": true}", &j);
    E2E_CHECK(code == 400 && strstr(json_string_value(json_object_get(j, "error_msg")), "/flsh: unknown field"),
              "PUT with an unknown field: %d %s", code, json_string_value(json_object_get(j, "error_msg")));
    json_decref(j);
    j = e2e_api(&sv, "GET", path, NULL);
    E2E_CHECK(!strcmp(json_string_value(json_object_get(j, "schema_create_sql")), orig),
              "a refused PUT changed the structure");
    json_decref(j);
    /* POST (the seed's method) replaces it, DELETE drops it, PUT puts it back */
    code = e2e_http(&sv, "POST", path, "{\"sql_content\": \"CREATE TABLE txt (id INT PRIMARY KEY, "
                    "z INT)\", \"flush\": true, \"sync\": true}", &j);
    E2E_CHECK(code == 200, "POST structure: %d", code);
    json_decref(j);
    j = e2e_api(&sv, "GET", path, NULL);
    E2E_CHECK(strstr(json_string_value(json_object_get(j, "schema_create_sql")), "`z` int"),
              "POST did not replace the structure");
    json_decref(j);
    /* the lists above: the tracked schemas and tables (the renamed table under its new name) */
    j = e2e_api(&sv, "GET", "/tasks/" T "/sources/src/schemas", NULL);
    E2E_CHECK(json_array_size(j) == 1 && !strcmp(json_string_value(json_array_get(j, 0)), S),
              "tracked schemas");
    json_decref(j);
    j = e2e_api(&sv, "GET", "/tasks/" T "/sources/src/schemas/" S, NULL);
    char *names = json_dumps(j, JSON_COMPACT);
    E2E_CHECK(names && !strcmp(names, "[\"nokey2\",\"num\",\"txt\"]"), "tracked tables: %s", names);
    free(names);
    json_decref(j);
    code = e2e_http(&sv, "DELETE", path, NULL, &j);
    E2E_CHECK(code == 204, "DELETE structure: %d", code);
    json_decref(j);
    j = e2e_api(&sv, "GET", "/tasks/" T "/sources/src/schemas/" S, NULL);
    names = json_dumps(j, JSON_COMPACT);
    E2E_CHECK(names && !strcmp(names, "[\"nokey2\",\"num\"]"), "tracked tables after DELETE: %s", names);
    free(names);
    json_decref(j);
    code = e2e_http(&sv, "GET", path, NULL, &j);
    E2E_CHECK(code == 404, "GET after DELETE: %d", code);
    json_decref(j);
    /* Started with txt untracked, a DDL and rows of txt cannot be followed: the subtask
     * pauses with the reason. The structure as it was before them, PUT back, repairs it: a
     * start reads the DDL again and nothing is lost. */
    json_decref(e2e_api(&sv, "POST", "/tasks/" T "/start", "{}"));
    e2e_sql(src, "ALTER TABLE `" S "`.txt ADD COLUMN late VARCHAR(5) NOT NULL DEFAULT 'L'");
    dml(80);
    const char *why = NULL;
    json_t *st = NULL;
    for (int i = 0; i < 300 && !why; i++) {
        json_decref(st);
        st = e2e_task_status(&sv, T);
        const char *stage = json_string_value(json_object_get(st, "stage"));
        if (stage && !strcmp(stage, "Paused"))
            why = json_string_value(json_object_get(st, "error_msg"));
        else
            usleep(100000);
    }
    E2E_CHECK(why && strstr(why, "txt"), "the untracked table did not pause the task: %s",
              why ? why : "(still not paused)");
    printf("  paused as expected: %.200s\n", why);
    json_decref(st);
    json_t *body = json_pack("{s:s}", "sql_content", orig);
    char *btext = json_dumps(body, 0);
    code = e2e_http(&sv, "PUT", path, btext, &j);
    E2E_CHECK(code == 200, "PUT structure back: %d %s", code,
              json_string_value(json_object_get(j, "error_msg")));
    json_decref(j);
    json_decref(body);
    free(btext);
    free(orig);
    json_decref(e2e_api(&sv, "POST", "/tasks/" T "/start", "{}"));
    e2e_wait_sync(&sv, T, 90);
    dml(90);
    e2e_wait_caught_up(&sv, src, dst, T, 90);
    rows = e2e_compare_schema(src, dst, S);
    printf("  %lld rows equal after the structure endpoints\n", rows);

    /* deleting the task removes the tracker's shadows and versions (other tests' shadows may
     * be on the sandbox target: count ours as those that appeared during this test) */
    json_decref(e2e_api(&sv, "POST", "/tasks/" T "/stop", "{}"));
    json_decref(e2e_api(&sv, "DELETE", "/tasks/" T, NULL));
    long long left = 0;
    for (int i = 0; i < 100; i++) {
        left = e2e_int(dst, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE "
                            "'\\_sl\\_st\\_%%'");
        if (left <= shadows_before)
            break;
        usleep(100000);
    }
    E2E_CHECK(left <= shadows_before, "%lld shadow schemas left, %lld before the task", left,
              shadows_before);
    e2e_server_stop(&sv);
    E2E_CHECK(e2e_int(dst, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'dm_meta' "
                           "AND TABLE_NAME = '" T "_schema_tracker'") == 0, "the tracker table is left");
    e2e_sql(src, "DROP DATABASE IF EXISTS `" S "`");
    e2e_sql(dst, "DROP DATABASE IF EXISTS `" S "`");
    mysql_close(src);
    mysql_close(dst);
    e2e_finish("minimal");
    return 0;
}
