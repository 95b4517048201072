/*
 * pipeline_bench.c - throughput of the core runtime alone: memory source -> transform -> memory
 * sink, in-process, printing events per second and the peak RSS. Given a custom transform
 * (a sluice-<name>.so built like examples/plugin-passthrough), it runs the same stream three
 * ways side by side: no transform, the built-in in-process transform (mem-xform), and the
 * custom one loaded with dlopen through the plugin ABI, and prints the custom/built-in ratio.
 *
 *   pipeline_bench [events=10000000] [batch=1024] [queue_batches=4] [custom.so name]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "memplugins.h"
#include "sluice/log.h"

/* Run mem-source -> [xform] -> mem-sink once; events/s, or a negative number on failure. */
static double run(sl_scheduler *sched, sl_registry *reg, const char *xform, long long events,
                  long long batch)
{
    const char *ids[] = { "src", "xf", "sink" };
    const char *plugins[] = { "mem-source", xform, "mem-sink" };
    char src_opts[128];
    snprintf(src_opts, sizeof src_opts, "{\"count\": %lld, \"batch\": %lld}", events, batch);
    /* mem-sink checks every value; only mem-xform doubles them */
    const char *sink_opts = xform && !strcmp(xform, "mem-xform") ? NULL : "{\"doubled\": false}";
    const char *opts[] = { src_opts, NULL, sink_opts };
    size_t n = xform ? 3 : 2;
    if (!xform) {
        ids[1] = "sink";
        plugins[1] = "mem-sink";
        opts[1] = sink_opts;
    }
    sl_pipeline_spec *spec = sl_test_linear_spec("bench/src/pipeline", n, ids, plugins, opts);
    sl_pipeline *p = NULL;
    sl_error e = { 0 };
    if (sl_pipeline_new(sched, reg, spec, NULL, &p, &e) < 0) {
        fprintf(stderr, "pipeline: %s\n", e.msg);
        sl_pipeline_spec_free(spec);
        return -1;
    }
    sl_pipeline_spec_free(spec);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (sl_pipeline_start(p) < 0 || sl_pipeline_wait(p, -1) != SL_STAGE_FINISHED) {
        sl_pipeline_error(p, &e);
        fprintf(stderr, "pipeline failed: %s\n", e.msg);
        sl_pipeline_free(p);
        return -1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    long long got = sl_test_status_int(p, n - 1, "count"), bad = sl_test_status_int(p, n - 1, "bad");
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("transform=%s events=%lld batch=%lld seconds=%.3f events_per_sec=%.0f peak_rss_kib=%ld%s\n",
           xform ? xform : "none", got, batch, secs, (double)got / secs, ru.ru_maxrss,
           (got == events && bad == 0) ? "" : " MISMATCH");
    sl_pipeline_free(p);
    return got == events && bad == 0 ? (double)got / secs : -1;
}

int main(int argc, char **argv)
{
    long long events = argc > 1 ? atoll(argv[1]) : 10000000LL;
    long long batch = argc > 2 ? atoll(argv[2]) : 1024;
    unsigned queue = argc > 3 ? (unsigned)atoi(argv[3]) : 4;
    const char *custom = argc > 5 ? argv[4] : NULL, *custom_name = argc > 5 ? argv[5] : NULL;
    sl_log_set_level(SL_LOG_WARN);

    sl_scheduler *sched;
    sl_registry *reg;
    sl_scheduler_opts o = { .max_threads = 16, .queue_batches = queue };
    if (sl_scheduler_new(&o, &sched) < 0 || sl_registry_new(&reg) < 0)
        return 1;
    sl_test_register_mem(reg);
    sl_error e = { 0 };
    if (custom && sl_registry_load(reg, custom, &e) < 0) {
        fprintf(stderr, "%s: %s\n", custom, e.msg);
        return 1;
    }
    printf("queue_batches=%u\n", queue);
    int rc = 0;
    if (custom) {
        double none = run(sched, reg, NULL, events, batch);
        double builtin = run(sched, reg, "mem-xform", events, batch);
        double own = run(sched, reg, custom_name, events, batch);
        rc = none < 0 || builtin < 0 || own < 0;
        if (!rc)
            printf("custom/built-in transform: %.2f   custom/no transform: %.2f\n", own / builtin,
                   own / none);
    } else {
        rc = run(sched, reg, "mem-xform", events, batch) < 0;
    }
    sl_registry_free(reg);
    sl_scheduler_free(sched);
    return rc;
}
