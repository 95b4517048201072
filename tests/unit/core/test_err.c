/*
 * test_err.c - error texts and the caller-owned error context; log level names.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "sluice/err.h"
#include "sluice/log.h"
#include "sluice/pipeline.h"

static void test_err(void **state)
{
    assert_string_equal(sl_strerror(SL_ENOMEM), "out of memory");
    assert_string_equal(sl_strerror(SL_EABI), "plugin ABI mismatch");
    assert_string_equal(sl_strerror(12345), "unknown error");
    for (int c = SL_EINTERNAL; c <= SL_DONE; c++)
        assert_non_null(sl_strerror(c));
    sl_error e = { 0 };
    assert_int_equal(sl_error_set(&e, SL_EINVAL, "bad port %d", 70000), SL_EINVAL);
    assert_int_equal(e.code, SL_EINVAL);
    assert_string_equal(e.msg, "bad port 70000");
    sl_error_prefix(&e, "source %s", "mysql-01");
    assert_string_equal(e.msg, "source mysql-01: bad port 70000");
    /* the message itself as an argument (context added to it): formatted apart, not over the
     * text it reads (verify_task.c once gave "source: source: 1:13622: ...") */
    sl_error_set(&e, SL_ECONN, "127.0.0.1:13622: Lost connection (errno 2013)");
    assert_int_equal(sl_error_set(&e, SL_ECONN, "source: %s", e.msg), SL_ECONN);
    assert_string_equal(e.msg, "source: 127.0.0.1:13622: Lost connection (errno 2013)");
    assert_int_equal(sl_error_set(NULL, SL_EIO, "ignored"), SL_EIO);
    sl_error_prefix(NULL, "x");
    /* Long messages are cut, never overflow. */
    char longer[3000];
    memset(longer, 'a', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    sl_error_set(&e, SL_EIO, "%s", longer);
    assert_int_equal(strlen(e.msg), SL_ERRMSG_MAX - 1);
    sl_error_prefix(&e, "%s", longer);
    assert_int_equal(strlen(e.msg), SL_ERRMSG_MAX - 1);
}

static void test_log_levels(void **state)
{
    assert_int_equal(sl_log_level_parse("info"), SL_LOG_INFO);
    assert_int_equal(sl_log_level_parse("WARNING"), SL_LOG_WARN);
    assert_int_equal(sl_log_level_parse("Trace"), SL_LOG_TRACE);
    assert_int_equal(sl_log_level_parse("verbose"), SL_EINVAL);
    assert_int_equal(sl_log_level_parse(NULL), SL_EINVAL);
    sl_log_set_level(SL_LOG_DEBUG);
    assert_int_equal(sl_log_get_level(), SL_LOG_DEBUG);
    sl_log(SL_LOG_DEBUG, "test", "a debug line %d\n", 1);
    sl_log_set_level(99);
    assert_int_equal(sl_log_get_level(), SL_LOG_TRACE);
    sl_log_set_level(SL_LOG_INFO);
    assert_string_equal(sl_log_level_name(SL_LOG_WARN), "WARN");
}

static void test_stage_names(void **state)
{
    assert_string_equal(sl_stage_name(SL_STAGE_NEW), "New");
    assert_string_equal(sl_stage_name(SL_STAGE_RUNNING), "Running");
    assert_string_equal(sl_stage_name(SL_STAGE_PAUSED), "Paused");
    assert_string_equal(sl_stage_name(SL_STAGE_STOPPED), "Stopped");
    assert_string_equal(sl_stage_name(SL_STAGE_FINISHED), "Finished");
    sl_pipeline_spec_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err),
        cmocka_unit_test(test_log_levels),
        cmocka_unit_test(test_stage_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
