/*
 * test_shard.c - the shard DDL coordinator's optimistic decisions (runtime/shard.c "join"):
 * ADD/MODIFY COLUMN at the first shard, the same definition skipped for the others and
 * "execute" again for the shard that ran it (a DDL read again after a crash), another definition
 * a conflict naming the first statement, RENAME/CHANGE COLUMN a conflict, another DDL once at
 * the first shard or, strict, a conflict; decisions kept in the store across a new worker; and
 * the requests the coordinator refuses. DROP COLUMN needs the sources' table lists (the
 * integration test shard_optimistic covers it).
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

/* ... the DDL read in the source session's modes (sl_event.ddl_mode) */
static const char *join_in(unsigned mode, const char *src, const char *db, const char *ddl,
                           int strict)
{
    static char action[32];
    char prefix[128], *reply = NULL;
    snprintf(prefix, sizeof prefix, "task1/%s/incremental/sink", src);
    json_t *q = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:i,s:b}", "op", "join", "target_schema", "m",
                          "target_table", "t", "schema", db, "table", "t1", "ddl", ddl,
                          "ddl_mode", (int)mode, "strict", strict);
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

static const char *join(const char *src, const char *db, const char *ddl, int strict)
{
    return join_in(0, src, db, ddl, strict);
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
    assert_non_null(strstr(last_why, "another definition"));
    assert_string_equal(join("a", "d1", "ALTER TABLE `m`.`t` MODIFY COLUMN c DECIMAL(10,2)", 0), "execute");
    assert_string_equal(join("b", "d2", "ALTER TABLE `m`.`t` MODIFY c DECIMAL(10,2)", 0), "skip");
    /* a wider DECIMAL from another shard widens the target (issue 16: the join of the shards'
     * structures; before type widening this was a conflict) */
    assert_string_equal(join("b", "d4", "ALTER TABLE `m`.`t` MODIFY c DECIMAL(12,2)", 0), "execute");
    assert_string_equal(last_sql, "");      /* its own statement is the join */
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
    /* two clauses (strict: a conflict), not one ADD whose default holds a comma */
    const char *two = "ALTER TABLE `m`.`t` ADD COLUMN c5 VARCHAR(5) DEFAULT 'a\\', ADD COLUMN c6 INT";
    assert_string_equal(join_in(SL_DDLM_NO_BACKSLASH_ESCAPES, "a", "d1", two, 1), "conflict");
    assert_non_null(strstr(last_why, "strict_optimistic_shard_mode"));
    assert_string_equal(join("a", "d1", two, 1), "execute");     /* read the default way */
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
        cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
