/*
 * test_caps.c - plugin capabilities (ABI 1.2): an old 1.1 plugin loads and gets the defaults
 * of its kind (its caps slot is not read), a 1.2 plugin's caps are read, caps that break the
 * rules refuse the plugin with the reason, and the fit check refuses stages that do not fit
 * with a sentence naming both.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "sluice/runtime.h"

static void test_old_plugin_gets_defaults(void **state)
{
    (void)state;
    sl_registry *reg;
    sl_error e = { 0 };
    assert_int_equal(sl_registry_new(&reg), 0);
    assert_int_equal(sl_registry_load(reg, PLUGIN_OLD_ABI, &e), 0);
    const sl_plugin_descriptor *d = sl_registry_find(reg, "test-old-abi");
    assert_non_null(d);
    assert_false(SL_DESCRIPTOR_HAS(d, caps));
    sl_plugin_caps c;
    sl_plugin_caps_of(d, &c);
    assert_int_equal(c.struct_size, sizeof c);
    assert_int_equal(c.takes, SL_CAP_EV_ALL);
    assert_int_equal(c.gives, 0);
    assert_int_equal(c.needs_images, 0);
    assert_int_equal(c.order, SL_CAP_ORDER_KEEPS);
    assert_int_equal(c.delivery, SL_CAP_AT_LEAST_ONCE);
    sl_registry_free(reg);
}

static void test_new_plugin_caps_read(void **state)
{
    (void)state;
    sl_registry *reg;
    sl_error e = { 0 };
    assert_int_equal(sl_registry_new(&reg), 0);
    assert_int_equal(sl_registry_load(reg, PLUGIN_CAPS_SINK, &e), 0);
    const sl_plugin_descriptor *d = sl_registry_find(reg, "test-caps-sink");
    assert_non_null(d);
    assert_true(SL_DESCRIPTOR_HAS(d, caps));
    sl_plugin_caps c;
    sl_plugin_caps_of(d, &c);
    assert_int_equal(c.takes, SL_CAP_EV_ROWS);
    assert_int_equal(c.needs_images, SL_CAP_IMG_BEFORE | SL_CAP_IMG_AFTER);
    assert_int_equal(c.order, SL_CAP_ORDER_NEEDS);
    assert_int_equal(c.delivery, SL_CAP_EXACTLY_ONCE);
    sl_registry_free(reg);
}

static void test_bad_caps_refused(void **state)
{
    (void)state;
    sl_registry *reg;
    sl_error e = { 0 };
    assert_int_equal(sl_registry_new(&reg), 0);
    assert_int_equal(sl_registry_load(reg, PLUGIN_BAD_CAPS, &e), SL_EABI);
    char want[1024];
    snprintf(want, sizeof want, "plugin %s refused: caps.delivery is for sinks; this plugin is "
             "not one", PLUGIN_BAD_CAPS);
    assert_string_equal(e.msg, want);
    assert_int_equal(sl_registry_count(reg), 0);
    sl_registry_free(reg);
}

/* In-memory descriptors for the fit checks: only kind and caps matter. */
static const sl_plugin_descriptor *desc(sl_plugin_descriptor *d, sl_plugin_kind kind,
                                        const sl_plugin_caps *caps)
{
    *d = (sl_plugin_descriptor){ .abi_version = SL_ABI_VERSION,
                                 .struct_size = sizeof *d, .name = "x", .kind = kind,
                                 .caps = caps };
    return d;
}

static void test_fit(void **state)
{
    (void)state;
    sl_plugin_descriptor ds, dt, dk;
    sl_plugin_caps src, tr, sink;
    char msg[512];

    /* A source giving key-only before images (binlog_row_image=MINIMAL-like) and no order. */
    const sl_plugin_caps src_caps = { .struct_size = sizeof src_caps, .gives = SL_CAP_EV_ROWS |
                                      SL_CAP_EV_TXN, .gives_images = SL_CAP_IMG_KEY |
                                      SL_CAP_IMG_AFTER, .order = SL_CAP_ORDER_KEEPS };
    sl_plugin_caps_of(desc(&ds, SL_PLUGIN_SOURCE, &src_caps), &src);
    const sl_plugin_caps needs_full = { .struct_size = sizeof needs_full, .takes = SL_CAP_EV_ROWS,
                                        .needs_images = SL_CAP_IMG_BEFORE,
                                        .order = SL_CAP_ORDER_NEEDS,
                                        .delivery = SL_CAP_EXACTLY_ONCE };
    sl_plugin_caps_of(desc(&dk, SL_PLUGIN_SINK, &needs_full), &sink);
    assert_int_equal(sl_plugin_caps_fit(&src, "source", &sink, "jsonl-sink", msg, sizeof msg),
                     SL_EINVAL);
    assert_string_equal(msg, "jsonl-sink needs full before images, but source gives only the "
                        "key columns in before images");

    /* A default (old) sink behind the same source fits. */
    sl_plugin_descriptor dold = { .abi_version = (1u << 16) | 1u, .struct_size = sizeof dold,
                                  .name = "old", .kind = SL_PLUGIN_SINK };
    sl_plugin_caps old;
    sl_plugin_caps_of(&dold, &old);
    assert_int_equal(sl_plugin_caps_fit(&src, "source", &old, "old", msg, sizeof msg), 0);

    /* A transform that reorders, before a sink needing order: refused after chaining. */
    const sl_plugin_caps shuffle = { .struct_size = sizeof shuffle, .takes = SL_CAP_EV_ALL,
                                     .gives = SL_CAP_EV_ALL, .gives_images = SL_CAP_IMG_ALL };
    sl_plugin_caps_of(desc(&dt, SL_PLUGIN_TRANSFORM, &shuffle), &tr);
    sl_plugin_caps full = src;
    full.gives_images = SL_CAP_IMG_ALL;
    assert_int_equal(sl_plugin_caps_fit(&full, "source", &sink, "jsonl-sink", msg, sizeof msg), 0);
    assert_int_equal(sl_plugin_caps_fit(&full, "source", &tr, "shuffle", msg, sizeof msg), 0);
    sl_plugin_caps acc = full;
    sl_plugin_caps_chain(&acc, &tr);
    assert_int_equal(sl_plugin_caps_fit(&acc, "shuffle", &sink, "jsonl-sink", msg, sizeof msg),
                     SL_EINVAL);
    assert_string_equal(msg, "jsonl-sink needs events in source order, but shuffle does not "
                        "keep order");

    /* A chunk-only sink behind a row source: takes nothing of what arrives. */
    const sl_plugin_caps chunks = { .struct_size = sizeof chunks, .takes = SL_CAP_EV(SL_EV_CHUNK),
                                    .delivery = SL_CAP_AT_LEAST_ONCE };
    sl_plugin_caps loader;
    sl_plugin_caps_of(desc(&dk, SL_PLUGIN_SINK, &chunks), &loader);
    assert_int_equal(sl_plugin_caps_fit(&full, "source", &loader, "loader", msg, sizeof msg),
                     SL_EINVAL);
    assert_string_equal(msg, "loader takes chunk, but source gives insert, update, delete");

    /* A transform that turns rows into chunks narrows what arrives downstream. */
    const sl_plugin_caps to_chunks = { .struct_size = sizeof to_chunks, .takes = SL_CAP_EV_ROWS,
                                       .gives = SL_CAP_EV(SL_EV_CHUNK),
                                       .gives_images = SL_CAP_IMG_ALL,
                                       .order = SL_CAP_ORDER_KEEPS };
    sl_plugin_caps_of(desc(&dt, SL_PLUGIN_TRANSFORM, &to_chunks), &tr);
    acc = full;
    sl_plugin_caps_chain(&acc, &tr);
    assert_int_equal(acc.gives, SL_CAP_EV(SL_EV_CHUNK) | SL_CAP_EV_TXN);
    assert_int_equal(sl_plugin_caps_fit(&acc, "to-chunks", &loader, "loader", msg, sizeof msg), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_old_plugin_gets_defaults),
        cmocka_unit_test(test_new_plugin_caps_read),
        cmocka_unit_test(test_bad_caps_refused),
        cmocka_unit_test(test_fit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
