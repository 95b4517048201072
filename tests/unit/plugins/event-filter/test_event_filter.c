/*
 * test_event_filter.c - the event-filter plugin (plugins/event-filter/event_filter.c) run with
 * the real host: it marks SL_EVF_DROPPED on what the rules ignore and on tables no rule
 * selects, keeps transaction boundaries, counts what it dropped in "filtered_events", leaves
 * events dropped upstream alone (not counted twice), and refuses bad rules at create.
 */
#include "../plugtest.h"

#include <stdlib.h>

#define RULES \
    "{\"rules\":[{\"schema\":\"shop\",\"table\":\"orders_*\",\"target_schema\":\"\",\"target_table\":\"\"," \
    "\"filters\":[{\"name\":\"f1\",\"ignore_event\":[\"delete\"],\"ignore_sql\":[\"^alter table .* drop\"]}]}]}"

static int dropped(const sl_event *ev) { return (ev->flags & SL_EVF_DROPPED) != 0; }

static void test_marks_what_rules_ignore(void **state)
{
    pt p;
    pt_open(&p, EVENT_FILTER_SO, "event-filter", RULES);
    assert_int_equal(p.create_rc, 0);
    const sl_host *h = sl__host();
    sl_batch *b = h->batch_new(p.ctx, 16);
    sl_event *begin = pt_push(b, SL_EV_BEGIN, NULL, NULL, NULL);
    sl_event *ins = pt_push(b, SL_EV_INSERT, "shop", "orders_1", NULL);
    sl_event *del = pt_push(b, SL_EV_DELETE, "shop", "orders_1", NULL);
    sl_event *unsel = pt_push(b, SL_EV_INSERT, "shop", "items", NULL);
    sl_event *add = pt_push(b, SL_EV_DDL, "shop", NULL, "ALTER TABLE orders_2 ADD COLUMN x INT");
    sl_event *drop = pt_push(b, SL_EV_DDL, "shop", NULL, "ALTER TABLE orders_2 DROP COLUMN x");
    sl_event *upstream = pt_push(b, SL_EV_INSERT, "misc", "t", NULL);
    upstream->flags |= SL_EVF_DROPPED;
    sl_event *commit = pt_push(b, SL_EV_COMMIT, NULL, NULL, NULL);
    assert_int_equal(p.d->process(p.self, b), 0);

    assert_false(dropped(begin));
    assert_false(dropped(ins));
    assert_true(dropped(del));      /* ignore_event delete */
    assert_true(dropped(unsel));    /* no rule selects shop.items */
    assert_false(dropped(add));
    assert_true(dropped(drop));     /* ignore_sql */
    assert_true(dropped(upstream));
    assert_false(dropped(commit));
    assert_int_equal(pt_metric(&p, "filtered_events"), 3);

    /* a second batch adds to the count */
    sl_batch *b2 = h->batch_new(p.ctx, 2);
    pt_push(b2, SL_EV_DELETE, "shop", "orders_9", NULL);
    assert_int_equal(p.d->process(p.self, b2), 0);
    assert_int_equal(pt_metric(&p, "filtered_events"), 4);
    h->batch_unref(b2);
    h->batch_unref(b);
    pt_close(&p);
}

static void test_nothing_dropped_no_metric(void **state)
{
    pt p;
    pt_open(&p, EVENT_FILTER_SO, "event-filter", RULES);
    assert_int_equal(p.create_rc, 0);
    const sl_host *h = sl__host();
    sl_batch *b = h->batch_new(p.ctx, 2);
    sl_event *ins = pt_push(b, SL_EV_INSERT, "shop", "orders_1", NULL);
    assert_int_equal(p.d->process(p.self, b), 0);
    assert_false(dropped(ins));
    char *js = sl__ctx_metrics_json(p.ctx);
    assert_null(strstr(js, "filtered_events"));
    free(js);
    h->batch_unref(b);
    pt_close(&p);
}

static void test_bad_rules_fail_create(void **state)
{
    pt p;
    pt_open(&p, EVENT_FILTER_SO, "event-filter",
            "{\"rules\":[{\"schema\":\"shop\",\"table\":\"t\",\"filters\":[{\"name\":\"f\","
            "\"ignore_sql\":[\"(unclosed\"]}]}]}");
    assert_true(p.create_rc < 0);
    assert_non_null(strstr(pt_error(&p), "rules: "));
    pt_close(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_marks_what_rules_ignore),
        cmocka_unit_test(test_nothing_dropped_no_metric),
        cmocka_unit_test(test_bad_rules_fail_create),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
