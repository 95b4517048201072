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
    sl_batch *b = h->batch_new(p.ctx, 8);
    sl_event *alter = pt_push(b, SL_EV_DDL, "shop", NULL, "ALTER TABLE orders_3 ADD c INT");
    sl_event *rename = pt_push(b, SL_EV_DDL, "shop", NULL, "RENAME TABLE items TO items_old");
    sl_event *trunc = pt_push(b, SL_EV_DDL, "shop", NULL, "TRUNCATE TABLE items");
    sl_event *ialter = pt_push(b, SL_EV_DDL, "shop", NULL, "ALTER TABLE items ADD c INT");
    sl_event *into = pt_push(b, SL_EV_DDL, "shop", NULL, "RENAME TABLE items TO orders_9");
    sl_event *db = pt_push(b, SL_EV_DDL, "shop", NULL, "CREATE DATABASE IF NOT EXISTS shop");
    sl_event *same = pt_push(b, SL_EV_DDL, "misc", NULL, "ALTER TABLE t ADD c INT");
    sl_event *ansi = pt_push(b, SL_EV_DDL, "misc", NULL, "ALTER TABLE \"t\" ADD \"c\" INT");
    ansi->ddl_mode = SL_DDLM_ANSI_QUOTES;     /* the source session's sql_mode */
    assert_int_equal(p.d->process(p.self, b), 0);
    pt_close(&p);

    assert_string_equal(alter->ddl, "ALTER TABLE `dw`.`orders` ADD c INT");
    assert_string_equal(alter->target_schema, "dw");
    assert_string_equal(alter->target_table, "orders");
    /* in a shard-merge task a DDL of a shard (a table whose rule merges several into one) is
     * flagged for the sink's shard handling; one of a table the rules only rename (shop.items
     * into shop_copy.items), a database DDL, or a table routed to its own name, is not */
    assert_true(alter->flags & SL_EVF_SHARD_DDL);
    assert_string_equal(rename->ddl, "RENAME TABLE `shop_copy`.`items` TO `shop_copy`.`items_old`");
    assert_int_equal(rename->flags & SL_EVF_SHARD_DDL, 0);
    assert_string_equal(trunc->ddl, "TRUNCATE TABLE `shop_copy`.`items`");
    assert_int_equal(trunc->flags & SL_EVF_SHARD_DDL, 0);
    assert_string_equal(ialter->ddl, "ALTER TABLE `shop_copy`.`items` ADD c INT");
    assert_int_equal(ialter->flags & SL_EVF_SHARD_DDL, 0);
    /* a table renamed into a shard's name becomes a shard: flagged, naming the table renamed */
    assert_string_equal(into->ddl, "RENAME TABLE `shop_copy`.`items` TO `dw`.`orders`");
    assert_true(into->flags & SL_EVF_SHARD_DDL);
    assert_string_equal(into->table, "items");
    assert_string_equal(db->ddl, "CREATE DATABASE IF NOT EXISTS `shop_copy`");
    assert_string_equal(db->target_schema, "shop_copy");
    assert_int_equal(db->flags & SL_EVF_SHARD_DDL, 0);
    assert_string_equal(same->ddl, "ALTER TABLE `misc`.`t` ADD c INT");
    assert_int_equal(same->flags & SL_EVF_SHARD_DDL, 0);
    assert_string_equal(ansi->ddl, "ALTER TABLE `misc`.`t` ADD \"c\" INT");
    assert_int_equal(ansi->ddl_mode, SL_DDLM_ANSI_QUOTES);   /* the text still reads in it */
    h->batch_unref(b);
}

/* A table renamed into a schema another source schema goes into too (the compiler's
 * merge_schemas: another source's shop_2.* into shop_copy) may be a shard of that source's
 * table: its DDL is flagged, its DROP TABLE keeps the target table. */
static void test_merge_schemas(void **state)
{
    (void)state;
    char opts[1024];
    snprintf(opts, sizeof opts, "%.*s,\"merge_schemas\":[\"SHOP_COPY\"]}", (int)strlen(RULES) - 1, RULES);
    pt p;
    pt_open(&p, ROUTE_SO, "route", opts);
    assert_int_equal(p.create_rc, 0);
    const sl_host *h = sl__host();
    sl_batch *b = h->batch_new(p.ctx, 4);
    sl_event *alter = pt_push(b, SL_EV_DDL, "shop", NULL, "ALTER TABLE items ADD c INT");
    sl_event *drop = pt_push(b, SL_EV_DDL, "shop", NULL, "DROP TABLE items");
    sl_event *other = pt_push(b, SL_EV_DDL, "misc", NULL, "ALTER TABLE t ADD c INT");
    assert_int_equal(p.d->process(p.self, b), 0);
    pt_close(&p);
    assert_true(alter->flags & SL_EVF_SHARD_DDL);
    assert_string_equal(alter->table, "items");
    assert_true(drop->flags & SL_EVF_SHARD_DDL);
    assert_string_equal(drop->ddl, "DROP TABLE `shop_copy`.`items`");
    /* a table no rule renames stays no shard */
    assert_int_equal(other->flags & SL_EVF_SHARD_DDL, 0);
    h->batch_unref(b);

    pt_open(&p, ROUTE_SO, "route", "{\"rules\":[],\"merge_schemas\":{}}");
    assert_int_not_equal(p.create_rc, 0);
    assert_non_null(strstr(pt_error(&p), "merge_schemas: not a JSON array"));
    pt_close(&p);
}

/* A DROP TABLE of shards and tables that are no shard becomes one DDL per shard (flagged,
 * naming it) and, last, one DROP TABLE of the others; what followed it stays after it. */
static void test_splits_drop(void **state)
{
    pt p;
    pt_open(&p, ROUTE_SO, "route", RULES);
    assert_int_equal(p.create_rc, 0);
    const sl_host *h = sl__host();
    sl_batch *b = h->batch_new(p.ctx, 2);
    pt_push(b, SL_EV_DDL, "shop", NULL,
            "DROP TABLE IF EXISTS orders_1, items, orders_2, misc.t /* generated by server */");
    pt_push(b, SL_EV_INSERT, "shop", "items", NULL);
    pt_push(b, SL_EV_DDL, "shop", NULL, "DROP TABLE items");
    pt_push(b, SL_EV_DDL, "shop", NULL, "DROP TABLE `orders_3`");
    b->events[0].pos.offset = 77;
    assert_int_equal(p.d->process(p.self, b), 0);
    pt_close(&p);

    assert_int_equal(b->n, 6);
    const sl_event *e = b->events;
    for (int k = 0; k < 2; k++) {
        assert_int_equal(e[k].kind, SL_EV_DDL);
        assert_true(e[k].flags & SL_EVF_SHARD_DDL);
        assert_string_equal(e[k].schema, "shop");
        assert_string_equal(e[k].table, k ? "orders_2" : "orders_1");
        assert_string_equal(e[k].ddl, "DROP TABLE IF EXISTS `dw`.`orders` /* generated by server */");
        assert_string_equal(e[k].target_schema, "dw");
        assert_string_equal(e[k].target_table, "orders");
        assert_int_equal(e[k].pos.offset, 77);      /* every part ends where the statement does */
    }
    /* the table that is no shard, last, for the sink to run; misc.t is not the task's */
    assert_int_equal(e[2].flags & SL_EVF_SHARD_DDL, 0);
    assert_string_equal(e[2].ddl, "DROP TABLE IF EXISTS `shop_copy`.`items` /* generated by server */");
    assert_string_equal(e[2].target_schema, "shop_copy");
    assert_string_equal(e[2].target_table, "items");
    assert_int_equal(e[2].pos.offset, 77);
    assert_int_equal(e[3].kind, SL_EV_INSERT);
    assert_string_equal(e[3].target_schema, "shop_copy");
    /* alone: a table that is no shard is dropped on the target, a shard is flagged */
    assert_int_equal(e[4].flags & SL_EVF_SHARD_DDL, 0);
    assert_string_equal(e[4].ddl, "DROP TABLE `shop_copy`.`items`");
    assert_true(e[5].flags & SL_EVF_SHARD_DDL);
    assert_string_equal(e[5].table, "orders_3");
    assert_string_equal(e[5].ddl, "DROP TABLE `dw`.`orders`");
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
        cmocka_unit_test(test_splits_drop),
        cmocka_unit_test(test_merge_schemas),
        cmocka_unit_test(test_ddl_without_names_fails),
        cmocka_unit_test(test_bad_rules_fail_create),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
