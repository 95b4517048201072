/*
 * test_replrules.c - unit tests of plugins/common/replrules.c: the event-filter decisions and the
 * routing of events and DDL text (the logic of the event-filter and route plugins).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "ddl.h"
#include "replrules.h"

static const char *RULES =
    "[{\"schema\":\"shop\",\"table\":\"orders_*\",\"target_schema\":\"dw\",\"target_table\":\"orders\","
    "  \"filters\":[{\"name\":\"f1\",\"ignore_event\":[\"delete\",\"truncate table\"],\"ignore_sql\":[\"^alter table .* drop\"]}]},"
    " {\"schema\":\"shop\",\"table\":\"\",\"target_schema\":\"shop_copy\",\"target_table\":\"\",\"filters\":[]},"
    " {\"schema\":\"logs\",\"table\":\"keep\",\"target_schema\":\"\",\"target_table\":\"\","
    "  \"filters\":[{\"name\":\"f2\",\"ignore_event\":[\"all dml\"],\"ignore_sql\":[]}]}]";

static sl_rules *rules;
static sl_rulecache *cache;

static int setup(void **st)
{
    sl_error err = {0};
    assert_int_equal(sl_rules_new(RULES, &rules, &err), 0);
    cache = sl_rulecache_new(rules);
    assert_non_null(cache);
    return 0;
}

static int teardown(void **st)
{
    sl_rulecache_free(cache);
    sl_rules_free(rules);
    return 0;
}

static sl_event row(int kind, const char *s, const char *t)
{
    sl_event e = { .kind = (uint8_t)kind, .schema = s, .table = t };
    return e;
}

static sl_event ddl(const char *schema, const char *sql)
{
    sl_event e = { .kind = SL_EV_DDL, .schema = schema, .ddl_schema = schema, .ddl = sql };
    return e;
}

static int decide(sl_event e)
{
    sl_error err = {0};
    return sl_filter_decide(cache, &e, &err);
}

static void test_filter(void **st)
{
    /* control events pass */
    assert_int_equal(decide(row(SL_EV_BEGIN, NULL, NULL)), 0);
    assert_int_equal(decide(row(SL_EV_COMMIT, NULL, NULL)), 0);
    assert_int_equal(decide(row(SL_EV_HEARTBEAT, NULL, NULL)), 0);
    /* selected tables, filters by kind */
    assert_int_equal(decide(row(SL_EV_INSERT, "shop", "orders_1")), 0);
    assert_int_equal(decide(row(SL_EV_DELETE, "shop", "orders_1")), 1);
    assert_int_equal(decide(row(SL_EV_DELETE, "shop", "items")), 0);
    assert_int_equal(decide(row(SL_EV_UPDATE, "logs", "keep")), 1);
    /* not selected: dropped (block-allow) */
    assert_int_equal(decide(row(SL_EV_INSERT, "logs", "other")), 1);
    assert_int_equal(decide(row(SL_EV_INSERT, "mysql", "user")), 1);
    /* DDL: event type, ignore_sql, selection */
    assert_int_equal(decide(ddl("shop", "TRUNCATE TABLE orders_2")), 1);
    assert_int_equal(decide(ddl("shop", "ALTER TABLE orders_2 DROP COLUMN x")), 1);
    assert_int_equal(decide(ddl("shop", "ALTER TABLE orders_2 ADD COLUMN x INT")), 0);
    assert_int_equal(decide(ddl("shop", "TRUNCATE TABLE items")), 0);
    assert_int_equal(decide(ddl("x", "CREATE TABLE logs.nope (a int)")), 1);
    assert_int_equal(decide(ddl("x", "CREATE DATABASE shop")), 0);
    assert_int_equal(decide(ddl("x", "CREATE DATABASE logs")), 0);    /* a table rule selects in it */
    assert_int_equal(decide(ddl("x", "CREATE DATABASE other")), 1);
    assert_int_equal(decide(ddl("shop", "CREATE VIEW v AS SELECT 1")), 1);
    /* a session's ANSI_QUOTES: "items" is the table (read the default way, a string: no name,
     * the statement was dropped) */
    sl_event q = ddl("shop", "CREATE TABLE \"items\" (\"a\" INT)");
    assert_int_equal(decide(q), 1);
    q.ddl_mode = SL_DDLM_ANSI_QUOTES;
    assert_int_equal(decide(q), 0);
    q.ddl = "CREATE TABLE \"logs\".\"nope\" (a INT)";
    assert_int_equal(decide(q), 1);
}

static void test_route(void **st)
{
    const char *ts, *tt;
    sl_route_name(cache, "shop", "orders_7", &ts, &tt);
    assert_string_equal(ts, "dw");
    assert_string_equal(tt, "orders");
    sl_route_name(cache, "shop", "items", &ts, &tt);
    assert_string_equal(ts, "shop_copy");
    assert_string_equal(tt, "items");
    sl_route_name(cache, "none", "x", &ts, &tt);
    assert_string_equal(ts, "none");
    assert_string_equal(tt, "x");

    sl_sbuf b;
    sl_sbuf_init(&b);
    sl_ddl d;
    int merged = 0;
    assert_int_equal(sl_route_ddl(cache, "ALTER TABLE orders_3 ADD c INT", 30, "shop", 0, 1, &b, &d, &ts, &tt, &merged), 0);
    assert_string_equal(b.p, "ALTER TABLE `dw`.`orders` ADD c INT");
    assert_string_equal(ts, "dw");
    assert_string_equal(tt, "orders");
    assert_int_equal(merged, 1);
    sl_ddl_free(&d);
    sl_sbuf_reset(&b);
    /* read in the session's modes: "orders_3" a name; a backslash that ends a string */
    const char *aq = "ALTER TABLE \"orders_3\" ADD c VARCHAR(3) DEFAULT 'a\\', COMMENT 'RENAME TO x'";
    assert_int_equal(sl_route_ddl(cache, aq, strlen(aq), "shop",
                                  SL_DDLM_ANSI_QUOTES | SL_DDLM_NO_BACKSLASH_ESCAPES, 1, &b, &d, &ts,
                                  &tt, &merged), 0);
    assert_string_equal(b.p, "ALTER TABLE `dw`.`orders` ADD c VARCHAR(3) DEFAULT 'a\\', COMMENT 'RENAME TO x'");
    assert_int_equal(merged, 1);
    sl_ddl_free(&d);
    sl_sbuf_reset(&b);
    const char *q = "RENAME TABLE items TO items_old";
    assert_int_equal(sl_route_ddl(cache, q, strlen(q), "shop", 0, 0, &b, &d, &ts, &tt, &merged), 0);
    assert_string_equal(b.p, "RENAME TABLE `shop_copy`.`items` TO `shop_copy`.`items_old`");
    assert_int_equal(merged, 0);
    sl_ddl_free(&d);
    sl_sbuf_reset(&b);
    /* shard_merge on: a table the rules only rename is no shard; one renamed into a shard's
     * name is */
    assert_int_equal(sl_route_ddl(cache, q, strlen(q), "shop", 0, 1, &b, &d, &ts, &tt, &merged), 0);
    assert_int_equal(merged, 0);
    sl_ddl_free(&d);
    sl_sbuf_reset(&b);
    q = "TRUNCATE TABLE items";
    assert_int_equal(sl_route_ddl(cache, q, strlen(q), "shop", 0, 1, &b, &d, &ts, &tt, &merged), 0);
    assert_string_equal(b.p, "TRUNCATE TABLE `shop_copy`.`items`");
    assert_int_equal(merged, 0);
    sl_ddl_free(&d);
    sl_sbuf_reset(&b);
    q = "RENAME TABLE items TO orders_9";
    assert_int_equal(sl_route_ddl(cache, q, strlen(q), "shop", 0, 1, &b, &d, &ts, &tt, &merged), 0);
    assert_int_equal(merged, 1);
    sl_ddl_free(&d);
    sl_sbuf_reset(&b);
    q = "CREATE DATABASE IF NOT EXISTS shop";
    assert_int_equal(sl_route_ddl(cache, q, strlen(q), NULL, 0, 1, &b, &d, &ts, &tt, &merged), 0);
    assert_string_equal(b.p, "CREATE DATABASE IF NOT EXISTS `shop_copy`");
    assert_string_equal(ts, "shop_copy");
    assert_string_equal(tt, "");
    assert_int_equal(merged, 0);
    sl_ddl_free(&d);
    sl_sbuf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filter),
        cmocka_unit_test(test_route),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
