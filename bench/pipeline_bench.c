/*
 * pipeline_bench.c - throughput of the core runtime alone: memory source -> transform -> memory
 * sink, in-process, printing events per second and the peak RSS.
 *
 *   pipeline_bench [events=10000000] [batch=1024] [queue_batches=4]
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "memplugins.h"
#include "sluice/log.h"

int main(int argc, char **argv)
{
    long long events = argc > 1 ? atoll(argv[1]) : 10000000LL;
    long long batch = argc > 2 ? atoll(argv[2]) : 1024;
    unsigned queue = argc > 3 ? (unsigned)atoi(argv[3]) : 4;
    sl_log_set_level(SL_LOG_WARN);

    sl_scheduler *sched;
    sl_registry *reg;
    sl_scheduler_opts o = { .max_threads = 16, .queue_batches = queue };
    if (sl_scheduler_new(&o, &sched) < 0 || sl_registry_new(&reg) < 0)
        return 1;
    sl_test_register_mem(reg);
    static const char *const ids[] = { "src", "xf", "sink" };
    static const char *const plugins[] = { "mem-source", "mem-xform", "mem-sink" };
    char src_opts[128];
    snprintf(src_opts, sizeof src_opts, "{\"count\": %lld, \"batch\": %lld}", events, batch);
    const char *opts[] = { src_opts, NULL, NULL };
    sl_pipeline_spec *spec = sl_test_linear_spec("bench/src/pipeline", 3, ids, plugins, opts);
    sl_pipeline *p = NULL;
    sl_error e = { 0 };
    if (sl_pipeline_new(sched, reg, spec, NULL, &p, &e) < 0) {
        fprintf(stderr, "pipeline: %s\n", e.msg);
        return 1;
    }
    sl_pipeline_spec_free(spec);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (sl_pipeline_start(p) < 0 || sl_pipeline_wait(p, -1) != SL_STAGE_FINISHED) {
        sl_pipeline_error(p, &e);
        fprintf(stderr, "pipeline failed: %s\n", e.msg);
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    long long got = sl_test_status_int(p, 2, "count"), bad = sl_test_status_int(p, 2, "bad");
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("events=%lld batch=%lld queue_batches=%u seconds=%.3f events_per_sec=%.0f peak_rss_kib=%ld%s\n",
           got, batch, queue, secs, (double)got / secs, ru.ru_maxrss,
           (got == events && bad == 0) ? "" : " MISMATCH");
    sl_pipeline_free(p);
    sl_registry_free(reg);
    sl_scheduler_free(sched);
    return (got == events && bad == 0) ? 0 : 1;
}
