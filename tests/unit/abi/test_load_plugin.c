/*
 * test_load_plugin.c - loads one plugin file given on the command line with the registry and
 * runs one batch through it (mem-source -> <plugin> -> mem-sink): used by
 * test_example_plugin.sh on the passthrough example built out of tree.
 *
 *   test_load_plugin <path to .so> <plugin name>
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memplugins.h"
#include "sluice/log.h"

static const char *plugin_path, *plugin_name;

static void test_one_batch(void **state)
{
    sl_registry *reg;
    sl_scheduler *s;
    sl_error e = { 0 };
    assert_int_equal(sl_registry_new(&reg), 0);
    assert_int_equal(sl_scheduler_new(NULL, &s), 0);
    sl_test_register_mem(reg);
    if (sl_registry_load(reg, plugin_path, &e) != 0)
        fail_msg("load: %s", e.msg);
    const sl_plugin_descriptor *d = sl_registry_find(reg, plugin_name);
    assert_non_null(d);
    assert_int_equal(d->kind, SL_PLUGIN_TRANSFORM);
    char *resolved = sl_options_resolved_json(d, "{}");
    assert_string_equal(resolved, "{\"verbose\":false,\"every\":1,\"tables\":\"*\"}");
    free(resolved);

    static const char *const ids[] = { "src", "plugin", "sink" };
    const char *plugins[] = { "mem-source", plugin_name, "mem-sink" };
    const char *opts[] = { "{\"count\": 100, \"batch\": 100}", "{\"verbose\": true, \"tables\": \"~^T$\"}", "{\"doubled\": false}" };
    sl_pipeline_spec *spec = sl_test_linear_spec("example/src/phase", 3, ids, plugins, opts);
    sl_pipeline *p = NULL;
    if (sl_pipeline_new(s, reg, spec, NULL, &p, &e) != 0)
        fail_msg("pipeline: %s", e.msg);
    sl_pipeline_spec_free(spec);
    assert_int_equal(sl_pipeline_start(p), 0);
    assert_int_equal(sl_pipeline_wait(p, -1), SL_STAGE_FINISHED);
    assert_int_equal(sl_test_status_int(p, 2, "count"), 100);
    assert_int_equal(sl_test_status_int(p, 2, "bad"), 0);
    char *st = sl_pipeline_status_json(p);
    json_t *o = json_loads(st, 0, NULL);
    free(st);
    json_t *m = json_object_get(json_array_get(json_object_get(o, "stages"), 1), "metrics");
    assert_int_equal(json_integer_value(json_object_get(m, "passed")), 100);
    /* the SDK's matcher inside the plugin: mem-source's events are on db.t (case-insensitive) */
    assert_int_equal(json_integer_value(json_object_get(m, "matched")), 100);
    assert_int_equal(json_integer_value(json_object_get(m, "batches_in")), 1);
    json_decref(o);
    sl_pipeline_free(p);

    /* A bad pattern fails when the pipeline is built, with the SDK's sl_error message. */
    const char *bad[] = { "{\"count\": 1}", "{\"tables\": \"~(\"}", "{}" };
    spec = sl_test_linear_spec("example/src/bad", 3, ids, plugins, bad);
    e = (sl_error){ 0 };
    assert_int_not_equal(sl_pipeline_new(s, reg, spec, NULL, &p, &e), 0);
    sl_pipeline_spec_free(spec);
    if (!strstr(e.msg, "passthrough: option tables: invalid regular expression \"(\": missing closing parenthesis at offset 1"))
        fail_msg("unexpected error: %s", e.msg);
    sl_registry_free(reg);
    sl_scheduler_free(s);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s <plugin.so> <name>\n", argv[0]);
        return 2;
    }
    plugin_path = argv[1];
    plugin_name = argv[2];
    sl_log_set_level(SL_LOG_WARN);
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_one_batch) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
