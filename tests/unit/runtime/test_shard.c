/*
 * test_shard.c - the shard DDL coordinator's optimistic decisions (runtime/shard.c "join"):
 * ADD/MODIFY COLUMN at the first shard, the same definition skipped for the others and
 * "execute" again for the shard that ran it (a DDL read again after a crash), another definition
 * a conflict naming the first statement, RENAME/CHANGE COLUMN a conflict, another DDL once at
 * the first shard or, strict, a conflict; a MODIFY against the target's column (narrower changes
 * nothing, another family or nullability is a conflict); the same column written otherwise; an
 * ALTER of several clauses decided clause by clause; decisions kept in the store across a new
 * worker; and the requests the coordinator refuses. DROP COLUMN needs the sources' table lists
 * (the integration tests shard_optimistic and shard_optimistic_ddl cover it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "shard.h"
#include "sluice/log.h"

static char dir[64], path[128];
static sl_meta_store *store;
static sl_scheduler *sched;
static sl_registry *reg;
static sl_worker *worker;

static int setup(void **st)
{
    (void)st;
    strcpy(dir, "/tmp/sl-shard-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof path, "%s/meta.db", dir);
    sl_error err = { 0 };
    sl_log_set_level(SL_LOG_ERROR);
    if (sl_meta_sqlite_open(path, &store, &err) != 0 || sl_registry_new(&reg) != 0 ||
        sl_scheduler_new(NULL, &sched) != 0)
        return -1;
    sl_worker_opts o = { .name = "w", .store = store, .sched = sched, .registry = reg, .no_events = 1 };
    return sl_worker_new(&o, &worker, &err);
}

static int teardown(void **st)
{
    (void)st;
    sl_worker_free(worker);
    sl_scheduler_free(sched);
    sl_registry_free(reg);
    sl_meta_close(store);
    char p[160];
    const char *sfx[] = { "", "-wal", "-shm" };
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", path, sfx[i]);
        unlink(p);
    }
    rmdir(dir);
    return 0;
}

/* The action the coordinator answers source src's shard db.t1 running ddl (after routing). */
static char last_ddl[512], last_why[512], last_sql[512];

/* ... the DDL read in the source session's modes (sl_event.ddl_mode), the target table as
 * SHOW CREATE TABLE prints it (create; NULL: not sent) */
static const char *join_full(unsigned mode, const char *src, const char *db, const char *ddl,
                             int strict, const char *create)
{
    static char action[32];
    char prefix[128], *reply = NULL;
    snprintf(prefix, sizeof prefix, "task1/%s/incremental/sink", src);
    json_t *q = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:i,s:b,s:s?}", "op", "join", "target_schema", "m",
                          "target_table", "t", "schema", db, "table", "t1", "ddl", ddl,
                          "ddl_mode", (int)mode, "strict", strict, "target_create", create);
    char *qt = json_dumps(q, JSON_COMPACT);
    json_decref(q);
    assert_int_equal(sl__shard_request(worker, prefix, qt, &reply), 0);
    free(qt);
    json_t *r = json_loads(reply, 0, NULL);
    free(reply);
    assert_non_null(r);
    snprintf(action, sizeof action, "%s", json_string_value(json_object_get(r, "action")));
    const char *d = json_string_value(json_object_get(r, "ddl")), *w = json_string_value(json_object_get(r, "why"));
    snprintf(last_ddl, sizeof last_ddl, "%s", d ? d : "");
    snprintf(last_why, sizeof last_why, "%s", w ? w : "");
    const char *q2 = json_string_value(json_object_get(r, "sql"));
    snprintf(last_sql, sizeof last_sql, "%s", q2 ? q2 : "");
    json_decref(r);
    return action;
}

static const char *join_in(unsigned mode, const char *src, const char *db, const char *ddl,
                           int strict)
{
    return join_full(mode, src, db, ddl, strict, NULL);
}

static const char *join(const char *src, const char *db, const char *ddl, int strict)
{
    return join_in(0, src, db, ddl, strict);
}

/* The merged table as the target's SHOW CREATE TABLE prints it (MariaDB). */
static const char *const CREATE =
    "CREATE TABLE `t` (\n"
    "  `id` int(11) NOT NULL,\n"
    "  `b` int(11) DEFAULT NULL,\n"
    "  `n` int(10) unsigned NOT NULL DEFAULT 0 COMMENT 'a, b',\n"
    "  `s` varchar(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci DEFAULT 'x''y',\n"
    "  `ts` timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp(),\n"
    "  `d` decimal(10,2) DEFAULT 1.50,\n"
    "  PRIMARY KEY (`id`),\n"
    "  KEY `k` (`b`)\n"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci";

static const char *tjoin(const char *src, const char *db, const char *ddl, int strict)
{
    return join_full(0, src, db, ddl, strict, CREATE);
}

static void test_add_modify(void **st)
{
    (void)st;
    assert_string_equal(join("a", "d1", "ALTER TABLE `m`.`t` ADD COLUMN c INT NOT NULL DEFAULT 0", 0), "execute");
    /* the same definition, whitespace aside, from the other shards: the target has it */
    assert_string_equal(join("b", "d2", "ALTER TABLE `m`.`t`  ADD COLUMN c INT NOT NULL\n DEFAULT 0;", 0), "skip");
    assert_string_equal(join("a", "d3", "ALTER TABLE `m`.`t` ADD c INT NOT NULL DEFAULT 0", 0), "skip");
    /* the shard that ran it reads it again after a crash: it runs it again (the sink's marker
     * tolerates "already there") */
    assert_string_equal(join("a", "d1", "ALTER TABLE `m`.`t` ADD COLUMN c INT NOT NULL DEFAULT 0", 0), "execute");
    /* another definition of the same column: a conflict naming the first statement */
    assert_string_equal(join("b", "d4", "ALTER TABLE `m`.`t` ADD COLUMN `C` BIGINT NULL", 0), "conflict");
    assert_string_equal(last_ddl, "ALTER TABLE `m`.`t` ADD COLUMN c INT NOT NULL DEFAULT 0");
    assert_non_null(strstr(last_why, "another nullability (NOT NULL against NULL)"));
    /* a MODIFY is weighed against the column as the ADD made it: another family conflicts */
    assert_string_equal(join("a", "d1", "ALTER TABLE `m`.`t` MODIFY COLUMN c DECIMAL(10,2) NOT NULL DEFAULT 0", 0), "conflict");
    assert_non_null(strstr(last_why, "another type (int against decimal)"));
    assert_string_equal(join("a", "d1", "ALTER TABLE `m`.`t` ADD COLUMN c2 DECIMAL(10,2)", 0), "execute");
    assert_string_equal(join("b", "d2", "ALTER TABLE `m`.`t` MODIFY c2 DECIMAL(10,2)", 0), "skip");
    /* a wider DECIMAL from another shard widens the target (issue 16: the join of the shards'
     * structures; before type widening this was a conflict) */
    assert_string_equal(join("b", "d4", "ALTER TABLE `m`.`t` MODIFY c2 DECIMAL(12,2)", 0), "execute");
    assert_string_equal(last_sql, "");      /* its own statement is the join */
}

/* A MODIFY of a column nobody changed yet is weighed against the target's column: a narrower type
 * on one shard must not clamp the other shards' values (it ran at once before: TINYINT made the
 * merged column clamp 300 to 127), another family or nullability pauses. Also strict. */
static void test_target(void **st)
{
    (void)st;
    assert_string_equal(tjoin("a", "d1", "ALTER TABLE `m`.`t` MODIFY b TINYINT", 0), "skip");
    assert_string_equal(tjoin("a", "d1", "ALTER TABLE `m`.`t` MODIFY b SMALLINT UNSIGNED", 0), "skip");
    assert_string_equal(tjoin("a", "d1", "ALTER TABLE `m`.`t` MODIFY b TINYINT", 1), "conflict");
    assert_non_null(strstr(last_why, "strict_optimistic_shard_mode: this shard narrows column `b`"));
    assert_string_equal(tjoin("a", "d1", "ALTER TABLE `m`.`t` MODIFY b VARCHAR(5)", 0), "conflict");
    assert_string_equal(last_ddl, "");      /* with the target, not another shard's statement */
    assert_string_equal(last_why, "the merged table's column `b` is int(11) DEFAULT NULL: another "
                                  "type family (int against varchar): neither type holds the other's values");
    assert_string_equal(tjoin("a", "d1", "ALTER TABLE `m`.`t` MODIFY b INT NOT NULL", 0), "conflict");
    assert_non_null(strstr(last_why, "another nullability (NULL against NOT NULL)"));
    assert_string_equal(tjoin("a", "d1", "ALTER TABLE `m`.`t` MODIFY b INT NOT NULL", 1), "conflict");
    /* the same: nothing to run */
    assert_string_equal(tjoin("a", "d1", "ALTER TABLE `m`.`t` MODIFY b INTEGER NULL DEFAULT NULL", 1), "skip");
    assert_string_equal(tjoin("a", "d1", "ALTER TABLE `m`.`t` MODIFY n INT UNSIGNED NOT NULL DEFAULT '0' FIRST", 0), "skip");
    assert_string_equal(tjoin("a", "d1", "ALTER TABLE `m`.`t` MODIFY s VARCHAR(10) DEFAULT 'x\\'y' COMMENT 'new'", 0), "skip");
    assert_string_equal(tjoin("a", "d1", "ALTER TABLE `m`.`t` MODIFY s VARCHAR(8) COLLATE utf8mb4_general_ci DEFAULT 'x''y'", 0), "skip");
    assert_string_equal(tjoin("a", "d1", "ALTER TABLE `m`.`t` MODIFY ts TIMESTAMP NOT NULL DEFAULT NOW() ON UPDATE CURRENT_TIMESTAMP", 0), "skip");
    assert_string_equal(tjoin("a", "d1", "ALTER TABLE `m`.`t` MODIFY d DECIMAL(10,2) DEFAULT '1.5'", 0), "skip");
    assert_string_equal(tjoin("a", "d1", "ALTER TABLE `m`.`t` MODIFY d DECIMAL(10,2) DEFAULT 2", 0), "conflict");
    assert_string_equal(tjoin("a", "d1", "ALTER TABLE `m`.`t` MODIFY s VARCHAR(10) CHARACTER SET latin1 DEFAULT 'x''y'", 0), "conflict");
    assert_non_null(strstr(last_why, "character set"));
    /* wider: it runs, and the other shards are weighed against it from then on */
    assert_string_equal(tjoin("a", "d1", "ALTER TABLE `m`.`t` MODIFY b BIGINT", 1), "execute");
    assert_string_equal(last_sql, "");
    assert_string_equal(tjoin("b", "d2", "ALTER TABLE `m`.`t` MODIFY b INT", 0), "skip");
    assert_string_equal(tjoin("b", "d2", "ALTER TABLE `m`.`t` MODIFY b BIGINT NULL", 0), "skip");
    assert_string_equal(tjoin("a", "d1", "ALTER TABLE `m`.`t` MODIFY b BIGINT", 1), "execute");
    /* an ADD of a column the target has: the same is nothing, wider a MODIFY to it */
    assert_string_equal(tjoin("b", "d2", "ALTER TABLE `m`.`t` ADD COLUMN d DECIMAL(10,2) DEFAULT 1.50", 0), "skip");
    assert_string_equal(tjoin("b", "d2", "ALTER TABLE `m`.`t` ADD COLUMN d DECIMAL(9,4) DEFAULT 1.5 AFTER b", 0), "execute");
    assert_string_equal(last_sql, "ALTER TABLE `m`.`t` MODIFY COLUMN `d` DECIMAL(12,4) DEFAULT 1.5");
}

/* The same column written otherwise is no conflict (each paused before), and a conflict says
 * what differs. */
static void test_same_column(void **st)
{
    (void)st;
    assert_string_equal(join("a", "d1", "ALTER TABLE `m`.`t` ADD COLUMN x1 INT", 0), "execute");
    assert_string_equal(join("b", "d2", "ALTER TABLE `m`.`t` ADD COLUMN x1 INT NULL", 0), "skip");
    assert_string_equal(join("b", "d3", "ALTER TABLE `m`.`t` ADD COLUMN x1 int(11) NULL", 0), "skip");
    assert_string_equal(join("b", "d4", "ALTER TABLE `m`.`t` ADD COLUMN `X1` INT DEFAULT NULL AFTER id", 0), "skip");
    assert_string_equal(join("b", "d5", "ALTER TABLE `m`.`t` ADD x1 INTEGER COMMENT 'the same' FIRST", 0), "skip");
    /* BIGINT holds every INT UNSIGNED: a widening, not a conflict; back the other way, nothing */
    assert_string_equal(join("a", "d1", "ALTER TABLE `m`.`t` ADD COLUMN x4 INT UNSIGNED", 0), "execute");
    assert_string_equal(join("b", "d2", "ALTER TABLE `m`.`t` ADD COLUMN x4 BIGINT", 0), "execute");
    assert_string_equal(last_sql, "ALTER TABLE `m`.`t` MODIFY COLUMN `x4` BIGINT");
    assert_string_equal(join("b", "d3", "ALTER TABLE `m`.`t` ADD COLUMN x4 INT UNSIGNED", 0), "skip");
    assert_string_equal(join("b", "d3", "ALTER TABLE `m`.`t` ADD COLUMN x4 BIGINT UNSIGNED", 0), "conflict");
    assert_non_null(strstr(last_why, "signed against unsigned"));
    /* another DEFAULT: said so, not "neither type" */
    assert_string_equal(join("a", "d1", "ALTER TABLE `m`.`t` ADD COLUMN x5 INT DEFAULT 1", 0), "execute");
    assert_string_equal(join("b", "d2", "ALTER TABLE `m`.`t` ADD COLUMN x5 INT DEFAULT 2", 0), "conflict");
    assert_string_equal(last_why, "another DEFAULT (1 against 2)");
    assert_string_equal(join("b", "d2", "ALTER TABLE `m`.`t` ADD COLUMN x5 INT DEFAULT '1'", 0), "skip");
    /* CHANGE of a column to its own name is a MODIFY */
    assert_string_equal(join("b", "d2", "ALTER TABLE `m`.`t` CHANGE COLUMN x5 `X5` BIGINT DEFAULT 1", 0), "execute");
    assert_string_equal(join("b", "d2", "ALTER TABLE `m`.`t` CHANGE x5 x6 BIGINT DEFAULT 1", 0), "conflict");
    assert_non_null(strstr(last_why, "renaming"));
}

/* An ALTER of several clauses, decided clause by clause; what runs is one statement. */
static void test_clauses(void **st)
{
    (void)st;
    /* every clause runs as written: the statement itself (no "sql") */
    assert_string_equal(join("a", "d1", "ALTER TABLE `m`.`t` ADD COLUMN p INT, ADD INDEX k (p), ALGORITHM=INPLACE", 0), "execute");
    assert_string_equal(last_sql, "");
    assert_string_equal(join("b", "d2", "ALTER TABLE `m`.`t` ADD COLUMN p INT, ADD INDEX k (p)", 0), "skip");
    /* a part runs: that part alone, without the options */
    assert_string_equal(join("b", "d2", "ALTER TABLE `m`.`t` ADD COLUMN q INT,ADD INDEX k (p), LOCK=NONE", 0), "execute");
    assert_string_equal(last_sql, "ALTER TABLE `m`.`t` ADD COLUMN q INT");
    /* ADD (a, b): each column on its own */
    assert_string_equal(join("a", "d1", "ALTER TABLE `m`.`t` ADD (q INT, r2 INT)", 0), "execute");
    assert_string_equal(last_sql, "ALTER TABLE `m`.`t` ADD r2 INT");
    /* a conflict in one clause decides nothing of the others */
    assert_string_equal(join("b", "d2", "ALTER TABLE `m`.`t` ADD COLUMN r INT, ADD COLUMN p VARCHAR(3)", 0), "conflict");
    assert_string_equal(last_ddl, "ALTER TABLE `m`.`t` ADD COLUMN p INT");
    assert_string_equal(join("a", "d3", "ALTER TABLE `m`.`t` ADD COLUMN r BIGINT", 0), "execute");
    assert_string_equal(last_sql, "");
    /* IGNORE goes with a part */
    assert_string_equal(join("b", "d2", "ALTER IGNORE TABLE `m`.`t` ADD COLUMN r BIGINT, ADD UNIQUE KEY u (r)", 0), "execute");
    assert_string_equal(last_sql, "ALTER IGNORE TABLE `m`.`t` ADD UNIQUE KEY u (r)");
    /* a DROP of a column the coordinator cannot read never runs at once */
    assert_string_equal(join("a", "d1", "ALTER TABLE `m`.`t` ADD COLUMN z9 INT, DROP COLUMN c PARTITION BY HASH(id)", 0), "conflict");
    assert_non_null(strstr(last_why, "cannot read which column"));
    assert_string_equal(join("a", "d1", "ALTER TABLE `m`.`t` ADD COLUMN z9 BIGINT", 0), "execute");
    /* not columns: once */
    assert_string_equal(join("a", "d1", "ALTER TABLE `m`.`t` DROP INDEX k, DROP PRIMARY KEY", 0), "execute");
    assert_string_equal(join("b", "d2", "ALTER TABLE `m`.`t` DROP INDEX k, DROP PRIMARY KEY", 0), "skip");
    assert_string_equal(join("a", "d1", "ALTER TABLE `m`.`t` DROP INDEX k, DROP PRIMARY KEY", 1), "conflict");
}

/* Optimistic type widening: the target follows the widest type of the shards. */
static void test_widen(void **st)
{
    (void)st;
    assert_string_equal(join("a", "d1", "ALTER TABLE `m`.`t` MODIFY COLUMN w INT NOT NULL", 0), "execute");
    /* narrower or equal on another shard: nothing to do */
    assert_string_equal(join("b", "d2", "ALTER TABLE `m`.`t` MODIFY COLUMN w SMALLINT NOT NULL", 0), "skip");
    /* wider: this shard's statement runs */
    assert_string_equal(join("b", "d4", "ALTER TABLE `m`.`t` MODIFY COLUMN w BIGINT NOT NULL", 0), "execute");
    assert_string_equal(last_sql, "");
    /* the first shard going back to INT is not run: the other shard's values need BIGINT */
    assert_string_equal(join("a", "d1", "ALTER TABLE `m`.`t` MODIFY COLUMN w INT NOT NULL", 0), "skip");
    /* read again after a restart: the same answer */
    assert_string_equal(join("b", "d4", "ALTER TABLE `m`.`t` MODIFY COLUMN w BIGINT NOT NULL", 0), "execute");
    /* signedness, another family, another NULL-ness: conflicts */
    assert_string_equal(join("a", "d3", "ALTER TABLE `m`.`t` MODIFY COLUMN w BIGINT UNSIGNED NOT NULL", 0), "conflict");
    assert_non_null(strstr(last_why, "neither type"));
    assert_string_equal(join("a", "d3", "ALTER TABLE `m`.`t` MODIFY COLUMN w VARCHAR(20) NOT NULL", 0), "conflict");
    assert_string_equal(join("a", "d3", "ALTER TABLE `m`.`t` MODIFY COLUMN w BIGINT NULL", 0), "conflict");
    /* strings by length */
    assert_string_equal(join("a", "d1", "ALTER TABLE `m`.`t` MODIFY s VARCHAR(20) NULL", 0), "execute");
    assert_string_equal(join("b", "d2", "ALTER TABLE `m`.`t` MODIFY s VARCHAR(64) NULL", 0), "execute");
    assert_string_equal(join("a", "d3", "ALTER TABLE `m`.`t` MODIFY s VARCHAR(30) NULL", 0), "skip");
    assert_string_equal(join("a", "d3", "ALTER TABLE `m`.`t` MODIFY s CHAR(80) NULL", 0), "conflict");
    /* DECIMAL: the most integer digits and the most decimals, which may be neither statement */
    assert_string_equal(join("a", "d1", "ALTER TABLE `m`.`t` MODIFY d DECIMAL(12,2)", 0), "execute");
    assert_string_equal(join("b", "d2", "ALTER TABLE `m`.`t` MODIFY d DECIMAL(10,4)", 0), "execute");
    assert_string_equal(last_sql, "ALTER TABLE `m`.`t` MODIFY COLUMN `d` DECIMAL(14,4)");
    assert_string_equal(join("b", "d2", "ALTER TABLE `m`.`t` MODIFY d DECIMAL(10,4)", 0), "execute");
    assert_string_equal(last_sql, "ALTER TABLE `m`.`t` MODIFY COLUMN `d` DECIMAL(14,4)");
    assert_string_equal(join("a", "d3", "ALTER TABLE `m`.`t` MODIFY d DECIMAL(14,4)", 0), "skip");
    /* ENUM and SET: the longer list when the other begins it (DM's join: members appended) */
    assert_string_equal(join("a", "d1", "ALTER TABLE `m`.`t` MODIFY e ENUM('x','it''s') NOT NULL", 0), "execute");
    assert_string_equal(join("b", "d2", "ALTER TABLE `m`.`t` MODIFY e ENUM('x', 'it\\'s','z') NOT NULL", 0), "execute");
    assert_string_equal(last_sql, "");
    assert_string_equal(join("a", "d3", "ALTER TABLE `m`.`t` MODIFY e ENUM('x','it''s') NOT NULL", 0), "skip");
    assert_string_equal(join("a", "d3", "ALTER TABLE `m`.`t` MODIFY e ENUM('x','w') NOT NULL", 0), "conflict");
    assert_non_null(strstr(last_why, "neither member list starts with the other"));
    /* another case is another value; a member holding a quote and a comma is one member */
    assert_string_equal(join("a", "d3", "ALTER TABLE `m`.`t` MODIFY e ENUM('X','it''s') NOT NULL", 0), "conflict");
    assert_string_equal(join("a", "d1", "ALTER TABLE `m`.`t` MODIFY f SET('a','b')", 0), "execute");
    assert_string_equal(join("b", "d2", "ALTER TABLE `m`.`t` MODIFY f SET('a'',''b')", 0), "conflict");
    assert_string_equal(join("b", "d2", "ALTER TABLE `m`.`t` MODIFY f SET('a'',''b','c')", 0), "conflict");
    assert_string_equal(join("b", "d2", "ALTER TABLE `m`.`t` MODIFY f ENUM('a','b','c')", 0), "conflict");
    assert_string_equal(join("b", "d2", "ALTER TABLE `m`.`t` MODIFY f SET('a','b','c')", 0), "execute");
    /* strict mode does not widen */
    assert_string_equal(join("a", "d1", "ALTER TABLE `m`.`t` MODIFY COLUMN x2 INT", 1), "execute");
    assert_string_equal(join("b", "d2", "ALTER TABLE `m`.`t` MODIFY COLUMN x2 BIGINT", 1), "conflict");
    assert_non_null(strstr(last_why, "strict"));
}

static void test_rename_other_strict(void **st)
{
    (void)st;
    assert_string_equal(join("a", "d1", "ALTER TABLE `m`.`t` CHANGE c c2 INT", 0), "conflict");
    assert_non_null(strstr(last_why, "renaming"));
    assert_string_equal(join("a", "d1", "ALTER TABLE `m`.`t` RENAME COLUMN c TO c2", 0), "conflict");
    /* an index (and several clauses) is not a column: once, at the first shard */
    assert_string_equal(join("a", "d1", "ALTER TABLE `m`.`t` ADD INDEX k (v)", 0), "execute");
    assert_string_equal(join("b", "d2", "ALTER TABLE `m`.`t` ADD INDEX k (v)", 0), "skip");
    assert_string_equal(join("b", "d2", "ALTER TABLE `m`.`t` ADD COLUMN x INT, ADD COLUMN y INT", 0), "execute");
    /* strict: only one ADD/DROP/MODIFY COLUMN per statement */
    assert_string_equal(join("a", "d1", "ALTER TABLE `m`.`t` ADD INDEX k2 (v)", 1), "conflict");
    assert_non_null(strstr(last_why, "strict_optimistic_shard_mode"));
    assert_string_equal(join("a", "d1", "ALTER TABLE `m`.`t` ADD COLUMN z DECIMAL(10,2) NULL", 1), "execute");
}

/* A column named in double quotes under ANSI_QUOTES is the same column as in backticks; a
 * backslash that ends a string under NO_BACKSLASH_ESCAPES leaves the comma after it a clause's. */
static void test_sql_modes(void **st)
{
    (void)st;
    assert_string_equal(join_in(SL_DDLM_ANSI_QUOTES, "a", "d1",
                                "ALTER TABLE `m`.`t` ADD COLUMN \"Q\" INT NOT NULL", 0), "execute");
    assert_string_equal(join("b", "d2", "ALTER TABLE `m`.`t` ADD COLUMN `q` INT NOT NULL", 0), "skip");
    assert_string_equal(join_in(SL_DDLM_ANSI_QUOTES, "a", "d1",
                                "ALTER TABLE `m`.`t` MODIFY \"w2\" DECIMAL(12,2)", 0), "execute");
    assert_string_equal(join_in(SL_DDLM_ANSI_QUOTES, "b", "d2",
                                "ALTER TABLE `m`.`t` MODIFY \"w2\" DECIMAL(10,4)", 0), "execute");
    assert_string_equal(last_sql, "ALTER TABLE `m`.`t` MODIFY COLUMN `w2` DECIMAL(14,4)");
    /* two clauses, not one ADD whose default holds a comma: c6 is added too */
    const char *two = "ALTER TABLE `m`.`t` ADD COLUMN c5 VARCHAR(5) DEFAULT 'a\\', ADD COLUMN c6 INT";
    assert_string_equal(join_in(SL_DDLM_NO_BACKSLASH_ESCAPES, "a", "d1", two, 1), "execute");
    assert_string_equal(join("b", "d2", "ALTER TABLE `m`.`t` ADD COLUMN c6 INT", 0), "skip");
    /* read the default way it is one ADD: c8 is no column */
    const char *one = "ALTER TABLE `m`.`t` ADD COLUMN c7 VARCHAR(5) DEFAULT 'a\\', ADD COLUMN c8 INT";
    assert_string_equal(join("a", "d1", one, 1), "execute");
    assert_string_equal(join("b", "d2", "ALTER TABLE `m`.`t` ADD COLUMN c8 VARCHAR(3)", 0), "execute");
}

/* The decisions live in the store: a new worker (a restarted server) answers the same. */
static void test_kept(void **st)
{
    (void)st;
    assert_string_equal(join("a", "d1", "ALTER TABLE `m`.`t` ADD COLUMN k INT", 0), "execute");
    sl_worker_free(worker);
    sl_error err = { 0 };
    sl_worker_opts o = { .name = "w", .store = store, .sched = sched, .registry = reg, .no_events = 1 };
    assert_int_equal(sl_worker_new(&o, &worker, &err), 0);
    assert_string_equal(join("b", "d2", "ALTER TABLE `m`.`t` ADD COLUMN k INT", 0), "skip");
    assert_string_equal(join("a", "d1", "ALTER TABLE `m`.`t` ADD COLUMN k INT", 0), "execute");
}

static void test_bad_requests(void **st)
{
    (void)st;
    char *reply = NULL;
    /* a prefix that names no task and source */
    assert_int_equal(sl__shard_request(worker, "nope", "{\"op\":\"join\"}", &reply), SL_EINVAL);
    free(reply);
    reply = NULL;
    assert_int_equal(sl__shard_request(worker, "t/s/p/x", "{\"op\":\"what\"}", &reply), SL_ENOTSUP);
    assert_non_null(reply);
    assert_non_null(strstr(reply, "unknown shard op"));
    free(reply);
    /* a lock of a task the worker does not run: nothing to resolve by hand */
    sl_error err = { 0 };
    assert_int_equal(sl_shard_unlock(worker, "task1", "task1-`m`.`t`", 1, &err), SL_ENOENT);
    json_t *l = sl_shard_locks(worker, "task1");
    assert_int_equal(json_array_size(l), 0);
    json_decref(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_add_modify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rename_other_strict, setup, teardown),
        cmocka_unit_test_setup_teardown(test_widen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sql_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_target, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_column, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clauses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
