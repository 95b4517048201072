/*
 * test_route.c - the route plugin (plugins/route/route.c) run with the real host: every event
 * gets its target names (copied into the batch, so they outlive the instance), DDL text is
 * rewritten to the routed quoted names, a DDL on a shard-merged table is flagged, dropped
 * events are left alone, and bad rules or a DDL without table names fail with a clear message.
 */
#include "../plugtest.h"

#include <stdlib.h>

#define RULES \
    "{\"rules\":[{\"schema\":\"shop\",\"table\":\"orders_*\",\"target_schema\":\"dw\",\"target_table\":\"orders\",\"filters\":[]}," \
    "{\"schema\":\"shop\",\"table\":\"\",\"target_schema\":\"shop_copy\",\"target_table\":\"\",\"filters\":[]}]}"

static void test_routes_rows_and_chunks(void **state)
{
    pt p;
    pt_open(&p, ROUTE_SO, "route", RULES);
    assert_int_equal(p.create_rc, 0);
    const sl_host *h = sl__host();
    sl_batch *b = h->batch_new(p.ctx, 8);
    sl_event *merged = pt_push(b, SL_EV_INSERT, "shop", "orders_7", NULL);
    sl_event *renamed = pt_push(b, SL_EV_UPDATE, "shop", "items", NULL);
    sl_event *other = pt_push(b, SL_EV_DELETE, "misc", "t", NULL);
    sl_event *chunk = pt_push(b, SL_EV_CHUNK, "shop", "orders_1", NULL);
    sl_event *dropped = pt_push(b, SL_EV_INSERT, "shop", "orders_2", NULL);
    dropped->flags |= SL_EVF_DROPPED;
    sl_event *begin = pt_push(b, SL_EV_BEGIN, NULL, NULL, NULL);
    assert_int_equal(p.d->process(p.self, b), 0);
    /* the instance (and its rules) go away first: the names must live in the batch */
    pt_close(&p);

    assert_string_equal(merged->target_schema, "dw");
    assert_string_equal(merged->target_table, "orders");
    assert_string_equal(renamed->target_schema, "shop_copy");
    assert_string_equal(renamed->target_table, "items");
    /* no rule: the source's names */
    assert_string_equal(other->target_schema, "misc");
    assert_string_equal(other->target_table, "t");
    assert_string_equal(chunk->target_schema, "dw");
    assert_string_equal(chunk->target_table, "orders");
    assert_null(dropped->target_schema);
    assert_null(begin->target_schema);
    assert_int_equal(merged->flags & SL_EVF_SHARD_DDL, 0);
    h->batch_unref(b);
}

static void test_routes_ddl(void **state)
{
    pt p;
    pt_open(&p, ROUTE_SO, "route", RULES);
    assert_int_equal(p.create_rc, 0);
    const sl_host *h = sl__host();
    sl_batch *b = h->batch_new(p.ctx, 5);
    sl_event *alter = pt_push(b, SL_EV_DDL, "shop", NULL, "ALTER TABLE orders_3 ADD c INT");
    sl_event *rename = pt_push(b, SL_EV_DDL, "shop", NULL, "RENAME TABLE items TO items_old");
    sl_event *db = pt_push(b, SL_EV_DDL, "shop", NULL, "CREATE DATABASE IF NOT EXISTS shop");
    sl_event *same = pt_push(b, SL_EV_DDL, "misc", NULL, "ALTER TABLE t ADD c INT");
    sl_event *ansi = pt_push(b, SL_EV_DDL, "misc", NULL, "ALTER TABLE \"t\" ADD \"c\" INT");
    ansi->ddl_mode = SL_DDLM_ANSI_QUOTES;     /* the source session's sql_mode */
    assert_int_equal(p.d->process(p.self, b), 0);
    pt_close(&p);

    assert_string_equal(alter->ddl, "ALTER TABLE `dw`.`orders` ADD c INT");
    assert_string_equal(alter->target_schema, "dw");
    assert_string_equal(alter->target_table, "orders");
    /* in a shard-merge task a table DDL whose routed name differs from the source's is flagged
     * for the sink to refuse; a database DDL, or a table routed to its own name, is not */
    assert_true(alter->flags & SL_EVF_SHARD_DDL);
    assert_string_equal(rename->ddl, "RENAME TABLE `shop_copy`.`items` TO `shop_copy`.`items_old`");
    assert_true(rename->flags & SL_EVF_SHARD_DDL);
    assert_string_equal(db->ddl, "CREATE DATABASE IF NOT EXISTS `shop_copy`");
    assert_string_equal(db->target_schema, "shop_copy");
    assert_int_equal(db->flags & SL_EVF_SHARD_DDL, 0);
    assert_string_equal(same->ddl, "ALTER TABLE `misc`.`t` ADD c INT");
    assert_int_equal(same->flags & SL_EVF_SHARD_DDL, 0);
    assert_string_equal(ansi->ddl, "ALTER TABLE `misc`.`t` ADD \"c\" INT");
    assert_int_equal(ansi->ddl_mode, SL_DDLM_ANSI_QUOTES);   /* the text still reads in it */
    h->batch_unref(b);
}

static void test_ddl_without_names_fails(void **state)
{
    pt p;
    pt_open(&p, ROUTE_SO, "route", RULES);
    assert_int_equal(p.create_rc, 0);
    const sl_host *h = sl__host();
    sl_batch *b = h->batch_new(p.ctx, 1);
    pt_push(b, SL_EV_DDL, "shop", NULL, "ALTER TABLE");
    assert_int_equal(p.d->process(p.self, b), SL_EPARSE);
    assert_non_null(strstr(pt_error(&p), "cannot find the table names in DDL: ALTER TABLE"));
    h->batch_unref(b);
    pt_close(&p);
}

static void test_bad_rules_fail_create(void **state)
{
    pt p;
    pt_open(&p, ROUTE_SO, "route", "{\"rules\":{\"schema\":\"shop\"}}");
    assert_true(p.create_rc < 0);
    assert_non_null(strstr(pt_error(&p), "rules: "));
    pt_close(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes_rows_and_chunks),
        cmocka_unit_test(test_routes_ddl),
        cmocka_unit_test(test_ddl_without_names_fails),
        cmocka_unit_test(test_bad_rules_fail_create),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
