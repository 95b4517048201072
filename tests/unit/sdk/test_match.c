/*
 * test_match.c - unit tests of the SDK's matchers (sdk/pattern.c, evtype.c, ddlclass.c, rules.c): DM wildcards and ~regex,
 * event type names, the DDL classifier and the compiled `rules` option.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/event.h"
#include "sluice/match.h"

static int pmatch(const char *pat, const char *s)
{
    sl_pattern *p = NULL;
    sl_error err = {0};
    assert_int_equal(sl_pattern_compile(pat, &p, &err), 0);
    int m = sl_pattern_match(p, s);
    sl_pattern_free(p);
    return m;
}

static int pbad(const char *pat, char *msg, size_t n)
{
    sl_pattern *p = NULL;
    sl_error err = {0};
    int rc = sl_pattern_compile(pat, &p, &err);
    assert_null(p);
    if (msg)
        snprintf(msg, n, "%s", err.msg);
    return rc;
}

static void test_exact(void **state)
{
    assert_true(pmatch("db1", "db1"));
    assert_true(pmatch("DB1", "db1"));
    assert_true(pmatch("db1", "Db1"));
    assert_false(pmatch("db1", "db12"));
    assert_false(pmatch("db1", "db"));
    assert_true(pmatch("", ""));
    assert_false(pmatch("", "x"));
    sl_pattern *p = NULL;
    assert_int_equal(sl_pattern_compile("orders", &p, NULL), 0);
    assert_true(sl_pattern_is_exact(p));
    assert_string_equal(sl_pattern_text(p), "orders");
    sl_pattern_free(p);
}

static void test_wildcards(void **state)
{
    assert_true(pmatch("db-*", "db-1"));
    assert_true(pmatch("db-*", "db-"));
    assert_true(pmatch("DB-*", "db-xyz"));
    assert_false(pmatch("db-*", "db"));
    assert_true(pmatch("*", "anything"));
    assert_true(pmatch("*", ""));
    assert_true(pmatch("t?", "t1"));
    assert_false(pmatch("t?", "t"));
    assert_false(pmatch("t?", "t12"));
    assert_true(pmatch("t_[0-9]", "t_5"));
    assert_false(pmatch("t_[0-9]", "t_x"));
    assert_true(pmatch("t_[!0-9]", "t_x"));
    assert_false(pmatch("t_[!0-9]", "t_7"));
    assert_true(pmatch("[abc]x", "bx"));
    assert_true(pmatch("[a-c]x", "Bx"));     /* case-insensitive classes */
    assert_true(pmatch("shard_[0-9]?_*", "shard_1a_tail"));
    /* '?' is one character, not one byte. */
    assert_true(pmatch("t?", "t\xc3\xa9"));
    assert_false(pmatch("t?", "t\xc3\xa9x"));
    sl_pattern *p = NULL;
    assert_int_equal(sl_pattern_compile("a*", &p, NULL), 0);
    assert_false(sl_pattern_is_exact(p));
    sl_pattern_free(p);
}

static void test_bad_wildcards(void **state)
{
    char msg[SL_ERRMSG_MAX];
    assert_int_equal(pbad("*-db", msg, sizeof msg), SL_EINVAL);
    assert_non_null(strstr(msg, "'*' may only be the last"));
    assert_int_equal(pbad("a*b*", NULL, 0), SL_EINVAL);
    assert_int_equal(pbad("t[0-9", msg, sizeof msg), SL_EINVAL);
    assert_non_null(strstr(msg, "character class"));
    assert_int_equal(pbad("t[]", NULL, 0), SL_EINVAL);
    assert_int_equal(pbad("t[!]", NULL, 0), SL_EINVAL);
    assert_int_equal(pbad("t[z-a]", NULL, 0), SL_EINVAL);
}

static void test_regex(void **state)
{
    assert_true(pmatch("~^db_[0-9]+$", "db_12"));
    assert_true(pmatch("~^DB_[0-9]+$", "db_12"));   /* caseless */
    assert_false(pmatch("~^db_[0-9]+$", "db_x"));
    assert_true(pmatch("~shard", "my_shard_01"));    /* unanchored search, as DM */
    assert_true(pmatch("~^t.$", "t\xc3\xa9"));       /* UTF-8 aware: one character */
    assert_true(pmatch("~^a", "a\xff"));             /* invalid UTF-8 subject is not fatal */
    char msg[SL_ERRMSG_MAX];
    assert_int_equal(pbad("~(unclosed", msg, sizeof msg), SL_EINVAL);
    assert_non_null(strstr(msg, "offset 9"));
    assert_non_null(strstr(msg, "missing closing parenthesis"));
    sl_error err = {0};
    assert_int_equal(sl_regex_check("^drop", &err), 0);
    assert_int_equal(sl_regex_check("a{2,1}", &err), SL_EINVAL);
    assert_non_null(strstr(err.msg, "offset"));
}

static void test_event_types(void **state)
{
    assert_int_equal(sl_event_type_class("insert"), SL_EVCLASS_DML);
    assert_int_equal(sl_event_type_class("INSERT"), SL_EVCLASS_DML);
    assert_int_equal(sl_event_type_class("All DML"), SL_EVCLASS_GROUP);
    assert_int_equal(sl_event_type_class("create table"), SL_EVCLASS_DDL);
    assert_int_equal(sl_event_type_class("drop table"), SL_EVCLASS_INCOMPATIBLE_DDL);
    assert_int_equal(sl_event_type_class("truncate table"), SL_EVCLASS_INCOMPATIBLE_DDL);
    assert_int_equal(sl_event_type_class("create schema"), SL_EVCLASS_DDL);
    assert_int_equal(sl_event_type_class("insrt"), SL_EVCLASS_UNKNOWN);
    assert_int_equal(sl_event_type_class("all  dml"), SL_EVCLASS_UNKNOWN);
    assert_int_equal(sl_event_type_class(NULL), SL_EVCLASS_UNKNOWN);
    assert_string_equal(sl_event_type_canonical("Create Schema"), "create database");
    assert_string_equal(sl_event_type_canonical("DROP TABLE"), "drop table");
    assert_null(sl_event_type_canonical("bogus"));
    assert_string_equal(sl_dml_event_type(SL_EV_INSERT), "insert");
    assert_string_equal(sl_dml_event_type(SL_EV_UPDATE), "update");
    assert_string_equal(sl_dml_event_type(SL_EV_DELETE), "delete");
    assert_null(sl_dml_event_type(SL_EV_DDL));

    const char *out[128];
    int n = sl_event_type_expand("all dml", out, 128);
    assert_int_equal(n, 3);
    assert_string_equal(out[0], "insert");
    assert_string_equal(out[2], "delete");
    assert_int_equal(sl_event_type_expand("none", out, 128), 0);
    assert_int_equal(sl_event_type_expand("update", out, 128), 1);
    assert_string_equal(out[0], "update");
    int all = sl_event_type_expand("all", NULL, 0);
    int ddl = sl_event_type_expand("all ddl", out, 128);
    assert_int_equal(all, ddl + 3);
    int found = 0;
    for (int i = 0; i < ddl; i++)
        found += strcmp(out[i], "truncate table") == 0 || strcmp(out[i], "create table") == 0;
    assert_int_equal(found, 2);
    int inc = sl_event_type_expand("incompatible ddl changes", out, 128);
    assert_true(inc > 10 && inc < ddl);
    assert_int_equal(sl_event_type_expand("nope", out, 128), -1);
}

static const char *ddl(const char *s) { return sl_ddl_event_type(s, strlen(s)); }

static void test_ddl_classifier(void **state)
{
    assert_string_equal(ddl("CREATE TABLE t (id int)"), "create table");
    assert_string_equal(ddl("create table if not exists `a`.`b` (x int)"), "create table");
    assert_string_equal(ddl("CREATE OR REPLACE TEMPORARY TABLE t (x int)"), "create table");
    assert_string_equal(ddl("  /* hi */ -- c\n # c2\n drop table t"), "drop table");
    assert_string_equal(ddl("DROP TABLES a, b"), "drop table");
    assert_string_equal(ddl("DROP TEMPORARY TABLE IF EXISTS t"), "drop table");
    assert_string_equal(ddl("TRUNCATE t"), "truncate table");
    assert_string_equal(ddl("truncate table t"), "truncate table");
    assert_string_equal(ddl("RENAME TABLE a TO b"), "rename table");
    assert_string_equal(ddl("ALTER TABLE t ADD c int"), "alter table");
    assert_string_equal(ddl("ALTER ONLINE IGNORE TABLE t ADD c int"), "alter table");
    assert_string_equal(ddl("CREATE DATABASE d"), "create database");
    assert_string_equal(ddl("CREATE SCHEMA d"), "create database");
    assert_string_equal(ddl("CREATE /*!32312 IF NOT EXISTS*/ DATABASE d"), "create database");
    assert_string_equal(ddl("/*!40000 DROP DATABASE d */"), "drop database");
    assert_string_equal(ddl("ALTER DATABASE d CHARACTER SET utf8mb4"), "alter database");
    assert_string_equal(ddl("DROP SCHEMA IF EXISTS d"), "drop database");
    assert_string_equal(ddl("CREATE UNIQUE INDEX i ON t (c)"), "create index");
    assert_string_equal(ddl("create index i on t (c)"), "create index");
    assert_string_equal(ddl("DROP INDEX i ON t"), "drop index");
    assert_string_equal(ddl("CREATE ALGORITHM=MERGE DEFINER=`root`@`%` SQL SECURITY DEFINER VIEW v AS "
                            "SELECT 1"), "create view");
    assert_string_equal(ddl("CREATE OR REPLACE VIEW v AS SELECT * FROM t"), "create view");
    assert_string_equal(ddl("drop view if exists v"), "drop view");
    assert_null(ddl("INSERT INTO t VALUES (1)"));
    assert_null(ddl("CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET @a = 1"));
    assert_null(ddl("CREATE DEFINER=`x`@`y` PROCEDURE p() BEGIN END"));
    assert_null(ddl("DROP USER u"));
    assert_null(ddl("ALTER VIEW v AS SELECT 1"));
    assert_null(ddl(""));
    assert_null(ddl("/* unterminated"));
    assert_null(ddl("CREATE"));
    assert_null(ddl("BEGIN"));
    assert_null(sl_ddl_event_type(NULL, 0));
    /* length is honoured: the text need not be NUL-terminated */
    assert_null(sl_ddl_event_type("DROP TABLE t", 4));
}

static const char RULES[] =
    "["
    " {\"schema\": \"shop\", \"table\": \"\", \"target_schema\": \"shop_all\", \"target_table\": \"\","
    "  \"filters\": [{\"name\": \"f1\", \"ignore_event\": [\"truncate table\"], \"ignore_sql\": []}]},"
    " {\"schema\": \"shop\", \"table\": \"orders_*\", \"target_schema\": \"shop_all\", \"target_table\": \"orders\","
    "  \"filters\": [{\"name\": \"f2\", \"ignore_event\": [\"all dml\"], \"ignore_sql\": [\"^DROP\", \"alter table .* drop\"]}]},"
    " {\"schema\": \"shop\", \"table\": \"orders_1\", \"target_schema\": \"x\", \"target_table\": \"y\"},"
    " {\"schema\": \"~^log_[0-9]+$\", \"table\": \"\"},"
    " {\"schema\": \"keep\", \"table\": \"t?\", \"target_schema\": \"\", \"target_table\": \"\","
    "  \"filters\": [{\"name\": \"n\", \"ignore_event\": [\"none\", \"insert\"]},"
    "               {\"name\": \"d\", \"ignore_event\": [\"none dml\", \"all\"]}]}"
    "]";

static void test_rules_find_and_route(void **state)
{
    sl_rules *r = NULL;
    sl_error err = {0};
    assert_int_equal(sl_rules_new(RULES, &r, &err), 0);
    assert_int_equal(sl_rules_count(r), 5);
    /* table-level beats schema-level; the first table-level rule in task order wins */
    assert_int_equal(sl_rules_find(r, "shop", "orders_1"), 1);
    assert_int_equal(sl_rules_find(r, "SHOP", "Orders_7"), 1);
    assert_int_equal(sl_rules_find(r, "shop", "customers"), 0);
    assert_int_equal(sl_rules_find(r, "shop", NULL), 0);
    assert_int_equal(sl_rules_find(r, "log_12", "anything"), 3);
    assert_int_equal(sl_rules_find(r, "log_x", "anything"), -1);
    assert_int_equal(sl_rules_find(r, "keep", "t1"), 4);
    assert_int_equal(sl_rules_find(r, "keep", "t12"), -1);
    assert_int_equal(sl_rules_find(r, "other", "t"), -1);

    const char *ts, *tt;
    sl_rules_target(r, 1, "shop", "orders_3", &ts, &tt);
    assert_string_equal(ts, "shop_all");
    assert_string_equal(tt, "orders");
    sl_rules_target(r, 0, "shop", "customers", &ts, &tt);
    assert_string_equal(ts, "shop_all");
    assert_string_equal(tt, "customers");
    sl_rules_target(r, 4, "keep", "t1", &ts, &tt);
    assert_string_equal(ts, "keep");
    assert_string_equal(tt, "t1");
    sl_rules_target(r, -1, "a", "b", &ts, &tt);
    assert_string_equal(ts, "a");
    assert_string_equal(tt, "b");

    assert_true(sl_rules_schema_selected(r, "shop"));
    assert_true(sl_rules_schema_selected(r, "LOG_1"));
    assert_false(sl_rules_schema_selected(r, "mysql"));
    assert_true(sl_rules_shard_merge(r));
    assert_true(sl_rules_has_filters(r, 0));
    assert_false(sl_rules_has_filters(r, 2));
    sl_rules_free(r);
}

static void test_rules_events(void **state)
{
    sl_rules *r = NULL;
    assert_int_equal(sl_rules_new(RULES, &r, NULL), 0);
    assert_true(sl_rules_ignores_event(r, 0, "truncate table"));
    assert_false(sl_rules_ignores_event(r, 0, "drop table"));
    assert_false(sl_rules_ignores_event(r, 0, "insert"));
    assert_true(sl_rules_ignores_event(r, 1, "insert"));
    assert_true(sl_rules_ignores_event(r, 1, "DELETE"));
    assert_false(sl_rules_ignores_event(r, 1, "create table"));
    assert_false(sl_rules_ignores_event(r, 2, "insert"));
    /* filter "n": "none" stops it before "insert"; filter "d": "none dml" stops DML, "all" takes DDL */
    assert_false(sl_rules_ignores_event(r, 4, "insert"));
    assert_true(sl_rules_ignores_event(r, 4, "create table"));
    assert_false(sl_rules_ignores_event(r, 4, "not an event"));
    assert_false(sl_rules_ignores_event(r, 4, "all"));
    assert_false(sl_rules_ignores_event(r, 99, "insert"));

    const char *s1 = "drop table x", *s2 = "ALTER TABLE t DROP c", *s3 = "alter table t add c int";
    assert_int_equal(sl_rules_ignores_sql(r, 1, s1, strlen(s1)), 1);
    assert_int_equal(sl_rules_ignores_sql(r, 1, s2, strlen(s2)), 1);
    assert_int_equal(sl_rules_ignores_sql(r, 1, s3, strlen(s3)), 0);
    assert_int_equal(sl_rules_ignores_sql(r, 0, s1, strlen(s1)), 0);
    assert_int_equal(sl_rules_ignores_sql(r, 1, s1, 3), 0);   /* "dro" */
    sl_rules_free(r);
}

static void test_rules_match_limit(void **state)
{
    sl_rules *r = NULL;
    sl_error err = {0};
    const char *js = "[{\"schema\": \"*\", \"filters\": [{\"ignore_sql\": [\"^(\\\\w+\\\\s*)+$\"]}]}]";
    assert_int_equal(sl_rules_new(js, &r, &err), 0);
    char sql[200];
    memset(sql, 'a', sizeof sql);
    memcpy(sql + sizeof sql - 2, "!", 1);
    sql[sizeof sql - 1] = '\0';
    for (size_t i = 6; i + 1 < sizeof sql - 2; i += 7)
        sql[i] = ' ';
    assert_int_equal(sl_rules_ignores_sql(r, 0, sql, strlen(sql)), SL_ELIMIT);
    const char *ok = "abc def";
    assert_int_equal(sl_rules_ignores_sql(r, 0, ok, strlen(ok)), 1);
    sl_rules_free(r);
}

static void test_rules_errors(void **state)
{
    sl_rules *r = NULL;
    sl_error err = {0};
    assert_int_equal(sl_rules_new("[", &r, &err), SL_EPARSE);
    assert_null(r);
    assert_int_equal(sl_rules_new("{}", &r, &err), SL_EINVAL);
    assert_int_equal(sl_rules_new("[1]", &r, &err), SL_EINVAL);
    assert_int_equal(sl_rules_new("[{\"table\": \"t\"}]", &r, &err), SL_EINVAL);
    assert_non_null(strstr(err.msg, "schema pattern is required"));
    assert_int_equal(sl_rules_new("[{\"schema\": \"*x\"}]", &r, &err), SL_EINVAL);
    assert_non_null(strstr(err.msg, "rule 0"));
    assert_int_equal(sl_rules_new("[{\"schema\": \"a\", \"filters\": [{\"ignore_event\": [\"insrt\"]}]}]",
                                  &r, &err), SL_EINVAL);
    assert_non_null(strstr(err.msg, "unknown event type \"insrt\""));
    assert_int_equal(sl_rules_new("[{\"schema\": \"a\", \"filters\": [{\"ignore_sql\": [\"(\"]}]}]",
                                  &r, &err), SL_EINVAL);
    assert_non_null(strstr(err.msg, "ignore_sql/0"));
    assert_int_equal(sl_rules_new("[{\"schema\": \"a\", \"filters\": 3}]", &r, &err), SL_EINVAL);
    assert_int_equal(sl_rules_new("[]", &r, &err), 0);
    assert_int_equal(sl_rules_find(r, "a", "b"), -1);
    assert_false(sl_rules_shard_merge(r));
    sl_rules_free(r);
    sl_rules_free(NULL);
}

static void test_shard_merge(void **state)
{
    struct { const char *js; int merge; } cases[] = {
        { "[{\"schema\": \"a\", \"table\": \"t\", \"target_schema\": \"b\", \"target_table\": \"u\"}]", 0 },
        { "[{\"schema\": \"a\", \"table\": \"t_*\", \"target_schema\": \"b\", \"target_table\": \"u\"}]", 1 },
        { "[{\"schema\": \"a_*\", \"table\": \"\", \"target_schema\": \"b\"}]", 1 },
        { "[{\"schema\": \"a_*\", \"table\": \"\"}]", 0 },
        { "[{\"schema\": \"a\", \"table\": \"t1\", \"target_schema\": \"b\", \"target_table\": \"u\"},"
          " {\"schema\": \"c\", \"table\": \"t2\", \"target_schema\": \"B\", \"target_table\": \"U\"}]", 1 },
        { "[{\"schema\": \"a\", \"table\": \"t1\", \"target_schema\": \"b\", \"target_table\": \"u\"},"
          " {\"schema\": \"c\", \"table\": \"t2\", \"target_schema\": \"b\", \"target_table\": \"v\"}]", 0 },
        /* many schemas into one, the table name kept */
        { "[{\"schema\": \"shop_*\", \"table\": \"orders\", \"target_schema\": \"shop\"}]", 1 },
        /* two exact tables into one target schema: the same table name merges, others do not */
        { "[{\"schema\": \"a\", \"table\": \"t\", \"target_schema\": \"m\"},"
          " {\"schema\": \"b\", \"table\": \"t\", \"target_schema\": \"m\"}]", 1 },
        { "[{\"schema\": \"a\", \"table\": \"t1\", \"target_schema\": \"m\"},"
          " {\"schema\": \"b\", \"table\": \"t2\", \"target_schema\": \"m\"}]", 0 },
        /* a shard that keeps the target's name */
        { "[{\"schema\": \"c\", \"table\": \"orders\", \"target_schema\": \"c\", \"target_table\": \"orders\"},"
          " {\"schema\": \"c\", \"table\": \"orders_old\", \"target_schema\": \"c\", \"target_table\": \"orders\"}]", 1 },
        /* one source table in two rules is one shard */
        { "[{\"schema\": \"a\", \"table\": \"t\", \"target_schema\": \"b\", \"target_table\": \"u\"},"
          " {\"schema\": \"a\", \"table\": \"t\", \"target_schema\": \"b\", \"target_table\": \"u\"}]", 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sl_rules *r = NULL;
        assert_int_equal(sl_rules_new(cases[i].js, &r, NULL), 0);
        assert_int_equal(sl_rules_shard_merge(r), cases[i].merge);
        sl_rules_free(r);
    }
}

static sl_rules *shared_rules;

static void *worker(void *arg)
{
    long bad = 0;
    const char *s = "DROP TABLE x";
    for (int i = 0; i < 2000; i++) {
        bad += sl_rules_find(shared_rules, "shop", "orders_9") != 1;
        bad += sl_rules_ignores_sql(shared_rules, 1, s, strlen(s)) != 1;
        bad += sl_rules_find(shared_rules, "log_77", "x") != 3;
    }
    return (void *)bad;
}

static void test_threads(void **state)
{
    assert_int_equal(sl_rules_new(RULES, &shared_rules, NULL), 0);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, worker, NULL), 0);
    for (int i = 0; i < 4; i++) {
        void *rv;
        pthread_join(th[i], &rv);
        assert_int_equal((long)rv, 0);
    }
    sl_rules_free(shared_rules);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact),
        cmocka_unit_test(test_wildcards),
        cmocka_unit_test(test_bad_wildcards),
        cmocka_unit_test(test_regex),
        cmocka_unit_test(test_event_types),
        cmocka_unit_test(test_ddl_classifier),
        cmocka_unit_test(test_rules_find_and_route),
        cmocka_unit_test(test_rules_events),
        cmocka_unit_test(test_rules_match_limit),
        cmocka_unit_test(test_rules_errors),
        cmocka_unit_test(test_shard_merge),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
