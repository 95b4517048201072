/*
 * test_pipeline_10m.c - 10,000,000 events source -> transform -> sink in batches of 1024 with
 * small queues: every event arrives once and in order (count, checksum of seq, order check in
 * the sink), and the process's peak RSS stays under 64 MiB (memory bounded by configuration).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "memplugins.h"
#include "sluice/log.h"

#define EVENTS 10000000LL

#if defined(__SANITIZE_ADDRESS__)
/* ASan keeps freed blocks in a 256 MiB quarantine by default, which is not the pipeline's
 * memory: keep it small so the RSS bound measures sluice, not the sanitizer. This replaces the
 * build's defaults (cmake/asan_options.c), so it repeats them. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "quarantine_size_mb=4:intercept_tls_get_addr=0"; }
#endif

static void test_ten_million(void **state)
{
    sl_scheduler *sched;
    sl_registry *reg;
    sl_scheduler_opts o = { .max_threads = 16, .queue_batches = 4 };
    assert_int_equal(sl_scheduler_new(&o, &sched), 0);
    assert_int_equal(sl_registry_new(&reg), 0);
    sl_test_register_mem(reg);

    static const char *const ids[] = { "src", "xf", "sink" };
    static const char *const plugins[] = { "mem-source", "mem-xform", "mem-sink" };
    char src_opts[128];
    snprintf(src_opts, sizeof src_opts, "{\"count\": %lld, \"batch\": 1024}", EVENTS);
    const char *opts[] = { src_opts, NULL, NULL };
    sl_pipeline_spec *spec = sl_test_linear_spec("t/s/10m", 3, ids, plugins, opts);
    sl_pipeline *p = NULL;
    sl_error e = { 0 };
    assert_int_equal(sl_pipeline_new(sched, reg, spec, NULL, &p, &e), 0);
    sl_pipeline_spec_free(spec);

    assert_int_equal(sl_pipeline_start(p), 0);
    assert_int_equal(sl_pipeline_wait(p, -1), SL_STAGE_FINISHED);
    assert_int_equal(sl_test_status_int(p, 2, "count"), EVENTS);
    assert_int_equal(sl_test_status_int(p, 2, "sum"), EVENTS * (EVENTS - 1) / 2);
    assert_int_equal(sl_test_status_int(p, 2, "bad"), 0);
    sl_pipeline_free(p);
    sl_registry_free(reg);
    assert_int_equal(sl_scheduler_threads_running(sched), 0);
    sl_scheduler_free(sched);

    struct rusage ru;
    assert_int_equal(getrusage(RUSAGE_SELF, &ru), 0);
    long rss_kib = ru.ru_maxrss;
    fprintf(stderr, "peak RSS %ld KiB\n", rss_kib);
    assert_true(rss_kib < 64 * 1024);
}

int main(void)
{
    sl_log_set_level(SL_LOG_WARN);
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_ten_million) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
