/*
 * test_registry.c - the plugin loader against real .so files built for this test: a good one,
 * and ones refused for a wrong major ABI, a short descriptor, a missing symbol, a missing
 * callback, a duplicate name, a missing or non-plugin file (each message names file and reason);
 * then plugins failing in start and in process inside a pipeline (Paused with their message).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memplugins.h"
#include "sluice/log.h"

static void expect_refused(sl_registry *reg, const char *path, int code, const char *reason)
{
    sl_error e = { 0 };
    char want[2048];
    snprintf(want, sizeof want, "plugin %s refused: %s", path, reason);
    assert_int_equal(sl_registry_load(reg, path, &e), code);
    assert_int_equal(e.code, code);
    assert_string_equal(e.msg, want);
}

static void test_load_good(void **state)
{
    sl_registry *reg;
    sl_error e = { 0 };
    assert_int_equal(sl_registry_new(&reg), 0);
    assert_int_equal(sl_registry_load(reg, PLUGIN_GOOD, &e), 0);
    assert_int_equal(sl_registry_count(reg), 1);
    const sl_plugin_descriptor *d = sl_registry_find(reg, "test-good");
    assert_non_null(d);
    assert_ptr_equal(sl_registry_at(reg, 0), d);
    assert_null(sl_registry_at(reg, 1));
    assert_null(sl_registry_find(reg, "nope"));
    assert_int_equal(d->kind, SL_PLUGIN_TRANSFORM);
    char *j = sl_options_resolved_json(d, "{}");
    assert_string_equal(j, "{\"suffix\":\"_x\"}");
    free(j);
    sl_registry_free(reg);
}

static void test_refusals(void **state)
{
    sl_registry *reg;
    sl_error e = { 0 };
    assert_int_equal(sl_registry_new(&reg), 0);
    assert_int_equal(sl_registry_load(reg, PLUGIN_GOOD, &e), 0);
    expect_refused(reg, PLUGIN_BAD_MAJOR, SL_EABI, "ABI major version 2, this host supports 1");
    char reason[128];
    snprintf(reason, sizeof reason, "descriptor is %zu bytes, shorter than the minimum %zu",
             offsetof(sl_plugin_descriptor, status), (size_t)SL_DESCRIPTOR_MIN_SIZE);
    expect_refused(reg, PLUGIN_SHORT, SL_EABI, reason);
    expect_refused(reg, PLUGIN_NOSYM, SL_EABI, "missing symbol `sluice_plugin`");
    expect_refused(reg, PLUGIN_NO_PROCESS, SL_EABI, "transform without callback process");
    expect_refused(reg, PLUGIN_DUP, SL_EEXIST, "a plugin named \"test-good\" is already registered");
    expect_refused(reg, "/nonexistent/sluice-x.so", SL_ENOENT, "No such file or directory");
    /* A file that is not a shared object: dlopen's reason is passed on. */
    assert_int_equal(sl_registry_load(reg, NOT_A_PLUGIN, &e), SL_EABI);
    char want[1024];
    snprintf(want, sizeof want, "plugin %s refused: cannot load: ", NOT_A_PLUGIN);
    assert_memory_equal(e.msg, want, strlen(want));
    assert_int_equal(sl_registry_count(reg), 1);

    /* Built-in descriptors go through the same checks. */
    sl_plugin_descriptor d = sl_test_mem_sink;
    d.process = NULL;
    d.name = "mem-sink-broken";
    assert_int_equal(sl_registry_add(reg, &d, &e), SL_EABI);
    assert_string_equal(e.msg, "plugin \"mem-sink-broken\" (built in) refused: sink without callback process");
    sl_registry_free(reg);
}

static void test_load_dir(void **state)
{
    sl_registry *reg;
    sl_error e = { 0 };
    assert_int_equal(sl_registry_new(&reg), 0);
    assert_int_equal(sl_registry_load_dir(reg, GOOD_PLUGIN_DIR, &e), 0);
    /* sorted by file name: sluice-test-fail-process, sluice-test-fail-start, sluice-test-good */
    assert_int_equal(sl_registry_count(reg), 3);
    assert_string_equal(sl_registry_at(reg, 0)->name, "test-fail-process");
    assert_string_equal(sl_registry_at(reg, 1)->name, "test-fail-start");
    assert_string_equal(sl_registry_at(reg, 2)->name, "test-good");
    assert_int_equal(sl_registry_load_dir(reg, "/nonexistent-dir", &e), SL_ENOENT);
    assert_string_equal(e.msg, "plugin directory /nonexistent-dir: No such file or directory");
    sl_registry_free(reg);

    setenv("SLUICE_PLUGIN_DIR", "/opt/plugins-from-env", 1);
    assert_string_equal(sl_default_plugin_dir(), "/opt/plugins-from-env");
    assert_string_equal(sl_default_plugin_dir(), "/opt/plugins-from-env");   /* computed once */
}

/* A directory with bad files loads the good ones and reports every refusal (a broken plugin
 * must not disable the built-in ones sorted after it). */
static void test_load_mixed_dir(void **state)
{
    sl_registry *reg;
    sl_error e = { 0 };
    assert_int_equal(sl_registry_new(&reg), 0);
    /* sorted: sluice-bad-major, sluice-dup (well formed), sluice-no-process, sluice-nosym, sluice-short */
    assert_int_equal(sl_registry_load_dir(reg, BAD_PLUGIN_DIR, &e), SL_EABI);
    assert_int_equal(sl_registry_count(reg), 1);
    assert_string_equal(sl_registry_at(reg, 0)->name, "test-good");
    assert_int_equal(e.code, SL_EABI);
    const char *want[] = { "sluice-bad-major.so refused: ABI major version",
                           "sluice-no-process.so refused: transform without callback process",
                           "sluice-nosym.so refused: missing symbol", "sluice-short.so refused: descriptor is" };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        assert_non_null(strstr(e.msg, want[i]));
    assert_null(strstr(e.msg, "sluice-dup.so"));
    sl_registry_free(reg);
}

/* An option whose default does not fit its own declaration is a plugin bug found at load time. */
static void test_bad_default_refused(void **state)
{
    static const sl_option opts[] = {
        { .name = "n", .type = SL_OPT_INT, .def = "2000", .offset = 0, .min = 1, .max = 1024 },
        { .name = NULL },
    };
    sl_plugin_descriptor d = sl_test_mem_sink;
    d.name = "bad-default";
    d.options = opts;
    d.config_size = sizeof(int64_t);
    sl_registry *reg;
    sl_error e = { 0 };
    assert_int_equal(sl_registry_new(&reg), 0);
    assert_int_equal(sl_registry_add(reg, &d, &e), SL_EABI);
    assert_string_equal(e.msg, "plugin \"bad-default\" (built in) refused: option \"n\" has an "
                               "invalid default 2000 (plugin bug)");
    assert_int_equal(sl_registry_count(reg), 0);
    sl_registry_free(reg);
}

static sl_pipeline *run3(sl_registry *reg, sl_scheduler *s, const char *mid, const char *mid_opts)
{
    static const char *const ids[] = { "src", "mid", "sink" };
    const char *plugins[] = { "mem-source", mid, "mem-sink" };
    const char *opts[] = { "{\"count\": -1, \"batch\": 10}", mid_opts, "{\"doubled\": false}" };
    sl_pipeline_spec *spec = sl_test_linear_spec("task/src/incremental", 3, ids, plugins, opts);
    sl_pipeline *p = NULL;
    sl_error e = { 0 };
    assert_int_equal(sl_pipeline_new(s, reg, spec, NULL, &p, &e), 0);
    sl_pipeline_spec_free(spec);
    return p;
}

static void test_failing_plugins(void **state)
{
    sl_registry *reg;
    sl_scheduler *s;
    sl_error e = { 0 };
    assert_int_equal(sl_scheduler_new(NULL, &s), 0);
    assert_int_equal(sl_registry_new(&reg), 0);
    sl_test_register_mem(reg);
    assert_int_equal(sl_registry_load_dir(reg, GOOD_PLUGIN_DIR, &e), 0);

    sl_pipeline *p = run3(reg, s, "test-fail-start", NULL);
    assert_int_equal(sl_pipeline_start(p), SL_ECONN);
    assert_int_equal(sl_pipeline_stage(p), SL_STAGE_PAUSED);
    sl_pipeline_error(p, &e);
    assert_string_equal(e.msg, "stage mid (test-fail-start): cannot connect to 127.0.0.1:1: connection refused (test)");
    sl_pipeline_free(p);

    p = run3(reg, s, "test-fail-process", NULL);
    assert_int_equal(sl_pipeline_start(p), 0);
    assert_int_equal(sl_pipeline_wait(p, -1), SL_STAGE_PAUSED);
    sl_pipeline_error(p, &e);
    assert_int_equal(e.code, SL_EDB);
    assert_string_equal(e.msg, "stage mid (test-fail-process): Duplicate entry '3' for key 'PRIMARY' (test)");
    /* At most the two batches before the failure got through (in-flight ones are dropped). */
    assert_in_range(sl_test_status_int(p, 2, "count"), 0, 20);
    sl_pipeline_free(p);

    p = run3(reg, s, "test-fail-process", "{\"bare\": true}");
    assert_int_equal(sl_pipeline_start(p), 0);
    assert_int_equal(sl_pipeline_wait(p, -1), SL_STAGE_PAUSED);
    sl_pipeline_error(p, &e);
    assert_string_equal(e.msg, "stage mid (test-fail-process): process returned -7 (database error)");
    sl_pipeline_free(p);

    /* The good plugin runs batches through. */
    p = run3(reg, s, "test-good", "{\"suffix\": \"_t\"}");
    assert_int_equal(sl_pipeline_start(p), 0);
    while (sl_test_status_int(p, 2, "count") < 1000)
        ;
    assert_int_equal(sl_pipeline_stop(p), 0);
    assert_int_equal(sl_test_status_int(p, 2, "bad"), 0);
    sl_pipeline_free(p);

    sl_registry_free(reg);
    sl_scheduler_free(s);
}

int main(void)
{
    sl_log_set_level(SL_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_good),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_load_dir),
        cmocka_unit_test(test_load_mixed_dir),
        cmocka_unit_test(test_bad_default_refused),
        cmocka_unit_test(test_failing_plugins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
