/*
 * test_strack.c - the schema tracker's core on the sandbox target: a table's structure followed
 * through CREATE, ALTER (add, drop, modify, rename column, add index), CREATE/DROP INDEX, RENAME
 * TABLE, ALTER ... RENAME TO and DROP, each read back with SHOW CREATE TABLE; statements that move
 * no structure left alone; a DDL the server refuses reported with the statement and the server's
 * error, the tracked structure unchanged; a structure replaced by a CREATE TABLE (seed, PUT), a
 * refused or foreign CREATE changing nothing; a structure dropped; DDL of a session with
 * ANSI_QUOTES, REAL_AS_FLOAT, PIPES_AS_CONCAT, NO_BACKSLASH_ESCAPES applied in those modes.
 */
#include "testlib.h"
#include "strack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHADOW "sl_strack_test"

/* every source schema "src" table maps to the shadow schema, same table name */
static void map(void *ud, const char *schema, const char *table, const char **tschema,
                const char **ttable)
{
    (void)ud;
    (void)schema;
    *tschema = SHADOW;
    *ttable = table;
}

static int apply(MYSQL *db, const char *sql, sl_error *err)
{
    memset(err, 0, sizeof *err);
    return sl_strack_apply(db, sql, strlen(sql), "src", 0, map, NULL, NULL, err);
}

/* the tracked CREATE TABLE of a table, or NULL when it is not tracked (freed by the next call) */
static char *last;

static const char *show(MYSQL *db, const char *table)
{
    free(last);
    last = NULL;
    sl_error err = { 0 };
    int rc = sl_strack_show(db, SHADOW, table, &last, &err);
    if (rc == SL_ENOENT)
        return NULL;
    if (rc < 0)
        tl_fail("show %s: %s", table, err.msg);
    return last;
}

static void must_apply(MYSQL *db, const char *sql)
{
    sl_error err;
    int rc = apply(db, sql, &err);
    TL_CHECK(rc == 0, "%s: rc %d: %s", sql, rc, err.msg);
}

int main(void)
{
    MYSQL *db = tl_connect("TARGET");
    sl_error err;
    tl_sql(db, "DROP DATABASE IF EXISTS `" SHADOW "`");
    tl_sql(db, "CREATE DATABASE `" SHADOW "`");

    must_apply(db, "CREATE TABLE t (id INT PRIMARY KEY, a VARCHAR(10), c INT UNSIGNED) "
                   "DEFAULT CHARSET=utf8mb4");
    const char *s = show(db, "t");
    TL_CHECK(s && strstr(s, "`a` varchar(10)") && strstr(s, "`c` int(10) unsigned"),
             "created: %s", s ? s : "(none)");

    /* add, drop, modify in one ALTER qualified with the source schema, then rename a column */
    must_apply(db, "ALTER TABLE `src`.`t` ADD COLUMN b BIGINT NOT NULL DEFAULT 7 AFTER id, "
                   "DROP COLUMN a, MODIFY c DECIMAL(12,3)");
    must_apply(db, "ALTER TABLE t CHANGE COLUMN b bb BIGINT NOT NULL DEFAULT 7");
    s = show(db, "t");
    TL_CHECK(s && strstr(s, "`bb` bigint(20) NOT NULL DEFAULT 7") && !strstr(s, "`a`") &&
             strstr(s, "`c` decimal(12,3)"), "altered: %s", s ? s : "(none)");
    TL_CHECK(s && strstr(s, "`id`") < strstr(s, "`bb`") && strstr(s, "`bb`") < strstr(s, "`c`"),
             "column order id, bb, c: %s", s ? s : "(none)");

    must_apply(db, "ALTER TABLE t RENAME COLUMN c TO cc");
    must_apply(db, "CREATE UNIQUE INDEX ux ON t (bb)");
    s = show(db, "t");
    TL_CHECK(s && strstr(s, "`cc` decimal(12,3)") && strstr(s, "UNIQUE KEY `ux` (`bb`)"),
             "renamed column, index: %s", s ? s : "(none)");
    must_apply(db, "DROP INDEX ux ON t");
    s = show(db, "t");
    TL_CHECK(s && !strstr(s, "`ux`"), "index dropped: %s", s ? s : "(none)");

    /* tables renamed both ways */
    must_apply(db, "RENAME TABLE t TO t2");
    TL_CHECK(show(db, "t") == NULL, "t still tracked after RENAME");
    TL_CHECK(show(db, "t2") != NULL, "t2 not tracked after RENAME");
    must_apply(db, "ALTER TABLE src.t2 RENAME TO src.t3");
    TL_CHECK(show(db, "t2") == NULL && show(db, "t3") != NULL, "ALTER ... RENAME TO not followed");

    /* statements that move no structure are not applied */
    int rc = apply(db, "INSERT INTO t3 VALUES (1, 2, 3)", &err);
    TL_CHECK(rc == 1, "INSERT: rc %d", rc);
    rc = apply(db, "CREATE DATABASE other", &err);
    TL_CHECK(rc == 1, "CREATE DATABASE: rc %d", rc);
    rc = apply(db, "CREATE TEMPORARY TABLE tmp (x INT)", &err);
    TL_CHECK(rc == 1, "CREATE TEMPORARY TABLE: rc %d", rc);
    TL_CHECK(show(db, "tmp") == NULL, "a temporary table is tracked");
    rc = apply(db, "TRUNCATE TABLE t3", &err);
    TL_CHECK(rc == 1, "TRUNCATE: rc %d", rc);
    TL_CHECK(tl_int(db, "SELECT COUNT(*) FROM `" SHADOW "`.`t3`") == 0, "a shadow holds rows");

    /* a DDL the tracked structure cannot take: the server's error, the structure unchanged */
    char before[4096];
    s = show(db, "t3");
    snprintf(before, sizeof before, "%s", s ? s : "");
    rc = apply(db, "ALTER TABLE t3 DROP COLUMN nope", &err);
    TL_CHECK(rc == SL_EDB, "DROP of a missing column: rc %d", rc);
    TL_CHECK(strstr(err.msg, "ALTER TABLE t3 DROP COLUMN nope") && strstr(err.msg, "nope") &&
             strstr(err.msg, "1091"), "error names the statement and the server's error: %s",
             err.msg);
    rc = apply(db, "ALTER TABLE t3 ADD COLUMN x INT NOT NUL", &err);
    TL_CHECK(rc == SL_EDB && strstr(err.msg, "syntax"), "syntax error: rc %d: %s", rc, err.msg);
    s = show(db, "t3");
    TL_CHECK(s && !strcmp(s, before), "structure changed by refused DDL: %s", s ? s : "(none)");

    /* a foreign key to an untracked table is accepted (the shadow has checks off) */
    must_apply(db, "ALTER TABLE t3 ADD CONSTRAINT fk FOREIGN KEY (bb) REFERENCES parent (id)");
    s = show(db, "t3");
    TL_CHECK(s && strstr(s, "REFERENCES `parent`"), "foreign key: %s", s ? s : "(none)");

    must_apply(db, "DROP TABLE IF EXISTS t3, never_created");
    TL_CHECK(show(db, "t3") == NULL, "t3 tracked after DROP");

    /* replace (seed, PUT): a refused or foreign statement changes nothing */
    const char *good = "CREATE TABLE `u` (`id` INT NOT NULL, `v` VARCHAR(5), PRIMARY KEY (`id`))";
    memset(&err, 0, sizeof err);
    rc = sl_strack_replace(db, "src", "u", good, strlen(good), 0, map, NULL, NULL, &err);
    TL_CHECK(rc == 0, "seed u: %d %s", rc, err.msg);
    s = show(db, "u");
    TL_CHECK(s && strstr(s, "`v` varchar(5)"), "seeded: %s", s ? s : "(none)");
    snprintf(before, sizeof before, "%s", s ? s : "");
    const char *bad = "CREATE TABLE u (id INT NOT NULL, v VARCHAR(5) PRIMARY KEY (id))";
    rc = sl_strack_replace(db, "src", "u", bad, strlen(bad), 0, map, NULL, NULL, &err);
    TL_CHECK(rc == SL_EDB && strstr(err.msg, "syntax") && strstr(err.msg, "1064"),
             "invalid CREATE: rc %d: %s", rc, err.msg);
    const char *other = "CREATE TABLE src.w (id INT)";
    rc = sl_strack_replace(db, "src", "u", other, strlen(other), 0, map, NULL, NULL, &err);
    TL_CHECK(rc == SL_EINVAL && strstr(err.msg, "src.w"), "CREATE of another table: rc %d: %s",
             rc, err.msg);
    const char *junk = "SELECT 1";
    rc = sl_strack_replace(db, "src", "u", junk, strlen(junk), 0, map, NULL, NULL, &err);
    TL_CHECK(rc == SL_EINVAL, "not a CREATE: rc %d: %s", rc, err.msg);
    s = show(db, "u");
    TL_CHECK(s && !strcmp(s, before), "refused replacements changed u: %s", s ? s : "(none)");
    TL_CHECK(show(db, "_sl_strack_new") == NULL, "a scratch table was left behind");
    const char *put = "CREATE TABLE u (id BIGINT NOT NULL PRIMARY KEY, v TEXT, w DATE)";
    rc = sl_strack_replace(db, "src", "u", put, strlen(put), 0, map, NULL, NULL, &err);
    s = show(db, "u");
    TL_CHECK(rc == 0 && s && strstr(s, "`id` bigint(20)") && strstr(s, "`w` date"),
             "replaced: rc %d %s: %s", rc, err.msg, s ? s : "(none)");
    rc = sl_strack_drop(db, "src", "u", map, NULL, &err);
    TL_CHECK(rc == 0 && show(db, "u") == NULL, "drop: rc %d %s", rc, err.msg);
    rc = sl_strack_drop(db, "src", "u", map, NULL, &err);
    TL_CHECK(rc == 0, "drop of an untracked table: rc %d %s", rc, err.msg);

    /* the source session's modes (sl_event.ddl_mode): the text reads and runs as it did there,
     * and the session's own sql_mode is back after, also after a refused statement */
    tl_sql(db, "SET SESSION sql_mode = 'STRICT_ALL_TABLES'");
    const char *aq = "CREATE TABLE \"m1\" (\"a\" INT PRIMARY KEY, r REAL, c VARCHAR(9) AS (\"a\" || 'x'), "
                     "s VARCHAR(5) DEFAULT 'a\\')";
    memset(&err, 0, sizeof err);
    rc = sl_strack_replace(db, "src", "m1", aq, strlen(aq), SL_DDLM_ANSI_QUOTES | SL_DDLM_REAL_AS_FLOAT |
                           SL_DDLM_PIPES_AS_CONCAT | SL_DDLM_NO_BACKSLASH_ESCAPES, map, NULL, NULL, &err);
    s = show(db, "m1");
    TL_CHECK(rc == 0 && s && strstr(s, "`r` float") && strstr(s, "concat(`a`,'x')") &&
             strstr(s, "DEFAULT 'a\\\\'"), "CREATE in its modes: rc %d %s: %s", rc, err.msg,
             s ? s : "(none)");
    TL_CHECK(!strcmp(tl_str(db, "SELECT @@SESSION.sql_mode"), "STRICT_ALL_TABLES"),
             "sql_mode after: %s", tl_str(db, "SELECT @@SESSION.sql_mode"));
    memset(&err, 0, sizeof err);
    const char *aa = "ALTER TABLE \"m1\" ADD COLUMN \"b\" INT";
    rc = sl_strack_apply(db, aa, strlen(aa), "src", SL_DDLM_ANSI_QUOTES, map, NULL, NULL, &err);
    s = show(db, "m1");
    TL_CHECK(rc == 0 && s && strstr(s, "`b` int"), "ALTER in ANSI_QUOTES: rc %d %s: %s", rc, err.msg,
             s ? s : "(none)");
    unsigned dberr = 0;
    const char *ab = "ALTER TABLE \"m1\" DROP COLUMN \"nope\"";
    rc = sl_strack_apply(db, ab, strlen(ab), "src", SL_DDLM_ANSI_QUOTES, map, NULL, &dberr, &err);
    TL_CHECK(rc == SL_EDB && dberr == 1091 && strstr(err.msg, "nope"),
             "a refused DDL in a mode: rc %d errno %u: %s", rc, dberr, err.msg);
    TL_CHECK(!strcmp(tl_str(db, "SELECT @@SESSION.sql_mode"), "STRICT_ALL_TABLES"),
             "sql_mode after a refused DDL: %s", tl_str(db, "SELECT @@SESSION.sql_mode"));
    /* the same text without the modes: "m1" is a string */
    rc = apply(db, aa, &err);
    TL_CHECK(rc == SL_EPARSE, "ANSI text read the default way: rc %d %s", rc, err.msg);

    tl_sql(db, "DROP DATABASE `" SHADOW "`");
    free(last);
    mysql_close(db);
    return tl_finish("strack");
}
