/*
 * test_pipeline.c - in-process pipelines with memory plugins: finishing, error propagation
 * (a failing plugin pauses the pipeline with its message, the process lives on), pause, resume
 * and stop, fan-out/fan-in, the scheduler's thread limit, and spec validation.
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

typedef struct fixture { sl_scheduler *sched; sl_registry *reg; } fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    sl_scheduler_opts o = { .max_threads = 64, .queue_batches = 4 };
    assert_int_equal(sl_scheduler_new(&o, &f->sched), 0);
    assert_int_equal(sl_registry_new(&f->reg), 0);
    sl_test_register_mem(f->reg);
    sl_log_set_level(SL_LOG_ERROR);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    assert_int_equal(sl_scheduler_threads_running(f->sched), 0);
    sl_registry_free(f->reg);
    sl_scheduler_free(f->sched);
    free(f);
    return 0;
}

static sl_pipeline *make3(fixture *f, const char *src_opts, const char *xf_opts, const char *sk_opts)
{
    static const char *const ids[] = { "src", "xf", "sink" };
    static const char *const plugins[] = { "mem-source", "mem-xform", "mem-sink" };
    const char *opts[] = { src_opts, xf_opts, sk_opts };
    sl_pipeline_spec *spec = sl_test_linear_spec("t/s/phase", 3, ids, plugins, opts);
    sl_pipeline *p = NULL;
    sl_error e = { 0 };
    int rc = sl_pipeline_new(f->sched, f->reg, spec, NULL, &p, &e);
    sl_pipeline_spec_free(spec);
    if (rc != 0)
        fail_msg("sl_pipeline_new: %s", e.msg);
    return p;
}

static void test_finish(void **state)
{
    fixture *f = *state;
    sl_pipeline *p = make3(f, "{\"count\": 100000, \"batch\": 333}", NULL, NULL);
    assert_int_equal(sl_pipeline_stage(p), SL_STAGE_NEW);
    assert_int_equal(sl_pipeline_start(p), 0);
    assert_int_equal(sl_pipeline_wait(p, -1), SL_STAGE_FINISHED);
    assert_int_equal(sl_test_status_int(p, 2, "count"), 100000);
    assert_int_equal(sl_test_status_int(p, 2, "sum"), 100000LL * 99999 / 2);
    assert_int_equal(sl_test_status_int(p, 2, "bad"), 0);
    assert_int_equal(sl_test_status_int(p, 2, "flushes"), 1);   /* at end of stream only */
    assert_int_equal(sl_test_status_int(p, 2, "stops"), 1);
    assert_int_equal(sl_test_status_int(p, 0, "emitted"), 100000);

    char *st = sl_pipeline_status_json(p);
    json_t *o = json_loads(st, 0, NULL);
    free(st);
    assert_string_equal(json_string_value(json_object_get(o, "stage")), "Finished");
    assert_string_equal(json_string_value(json_object_get(o, "name")), "t/s/phase");
    assert_null(json_object_get(o, "error_msg"));
    json_t *xf = json_array_get(json_object_get(o, "stages"), 1);
    assert_string_equal(json_string_value(json_object_get(xf, "id")), "xf");
    assert_string_equal(json_string_value(json_object_get(xf, "plugin")), "mem-xform");
    json_t *m = json_object_get(xf, "metrics");
    assert_int_equal(json_integer_value(json_object_get(m, "events_in")), 100000);
    assert_int_equal(json_integer_value(json_object_get(m, "events_out")), 100000);
    assert_int_equal(json_integer_value(json_object_get(m, "batches_in")), (100000 + 332) / 333);
    json_decref(o);

    /* Finished is final for pause and start; stop still moves it to Stopped. */
    assert_int_equal(sl_pipeline_pause(p), SL_ESTATE);
    assert_int_equal(sl_pipeline_start(p), SL_ESTATE);
    assert_int_equal(sl_pipeline_stop(p), 0);
    assert_int_equal(sl_pipeline_stage(p), SL_STAGE_STOPPED);
    sl_pipeline_free(p);
}

static void test_drop(void **state)
{
    fixture *f = *state;
    /* Every 2nd batch dropped: 10 batches of 10 -> 5 arrive. */
    sl_pipeline *p = make3(f, "{\"count\": 100, \"batch\": 10}", "{\"drop_every\": 2}", NULL);
    assert_int_equal(sl_pipeline_start(p), 0);
    assert_int_equal(sl_pipeline_wait(p, -1), SL_STAGE_FINISHED);
    assert_int_equal(sl_test_status_int(p, 2, "count"), 50);
    sl_pipeline_free(p);
}

static void expect_paused_with(sl_pipeline *p, const char *needle)
{
    assert_int_equal(sl_pipeline_wait(p, -1), SL_STAGE_PAUSED);
    sl_error e;
    sl_pipeline_error(p, &e);
    assert_true(e.code < 0);
    if (!strstr(e.msg, needle))
        fail_msg("error \"%s\" does not contain \"%s\"", e.msg, needle);
    char *st = sl_pipeline_status_json(p);
    json_t *o = json_loads(st, 0, NULL);
    free(st);
    assert_string_equal(json_string_value(json_object_get(o, "stage")), "Paused");
    assert_non_null(strstr(json_string_value(json_object_get(o, "error_msg")), needle));
    json_decref(o);
}

static void test_fail_in_process(void **state)
{
    fixture *f = *state;
    sl_pipeline *p = make3(f, "{\"count\": -1, \"batch\": 16}", "{\"fail_at\": 5}", NULL);
    assert_int_equal(sl_pipeline_start(p), 0);
    expect_paused_with(p, "stage xf (mem-xform): mem-xform failed at batch 5");
    /* Every instance was flushed (but the failed one) and stopped. */
    assert_int_equal(sl_test_status_int(p, 2, "stops"), 1);
    /* At most the 5 batches before the failure arrived: in-flight ones are dropped on failure. */
    assert_in_range(sl_test_status_int(p, 2, "count"), 0, 5 * 16);
    /* Resume retries (the transform's counter has moved on, so it runs), then pause again. */
    assert_int_equal(sl_pipeline_resume(p), 0);
    assert_int_equal(sl_pipeline_stage(p), SL_STAGE_RUNNING);
    sl_error e;
    sl_pipeline_error(p, &e);
    assert_int_equal(e.code, 0);
    while (sl_test_status_int(p, 2, "count") < 1000)
        ;
    assert_int_equal(sl_pipeline_pause(p), 0);
    assert_int_equal(sl_pipeline_stage(p), SL_STAGE_PAUSED);
    assert_int_equal(sl_test_status_int(p, 2, "bad"), 0);
    sl_pipeline_free(p);
}

static void test_fail_in_source(void **state)
{
    fixture *f = *state;
    sl_pipeline *p = make3(f, "{\"count\": -1, \"batch\": 8, \"fail_after\": 3}", NULL, NULL);
    assert_int_equal(sl_pipeline_start(p), 0);
    expect_paused_with(p, "stage src (mem-source): mem-source failed after 3 batches");
    sl_pipeline_free(p);
}

static void test_fail_in_start(void **state)
{
    fixture *f = *state;
    sl_pipeline *p = make3(f, "{\"fail_start\": true}", NULL, NULL);
    assert_int_equal(sl_pipeline_start(p), SL_ECONN);
    expect_paused_with(p, "mem-source cannot start (as configured)");
    assert_int_equal(sl_test_status_int(p, 2, "stops"), 0);   /* the sink started after: never */
    sl_pipeline_free(p);
}

static void test_pause_resume_stop(void **state)
{
    fixture *f = *state;
    sl_pipeline *p = make3(f, "{\"count\": -1, \"batch\": 64}", NULL, NULL);
    assert_int_equal(sl_pipeline_pause(p), SL_ESTATE);    /* New */
    assert_int_equal(sl_pipeline_start(p), 0);
    assert_int_equal(sl_pipeline_start(p), SL_ESTATE);    /* Running */
    assert_int_equal(sl_pipeline_wait(p, 10), SL_STAGE_RUNNING);
    for (int round = 1; round <= 3; round++) {
        long long before = sl_test_status_int(p, 2, "count");
        while (sl_test_status_int(p, 2, "count") < before + 5000)
            ;
        assert_int_equal(sl_pipeline_pause(p), 0);
        assert_int_equal(sl_pipeline_stage(p), SL_STAGE_PAUSED);
        assert_int_equal(sl_pipeline_pause(p), 0);       /* already paused: fine */
        assert_int_equal(sl_test_status_int(p, 2, "stops"), round);
        assert_int_equal(sl_test_status_int(p, 2, "flushes"), round);
        long long c = sl_test_status_int(p, 2, "count");
        assert_int_equal(sl_test_status_int(p, 2, "count"), c);   /* nothing moves */
        assert_int_equal(sl_pipeline_resume(p), 0);
    }
    /* Resumed sources continue from their own position: order holds across pauses. */
    assert_int_equal(sl_pipeline_stop(p), 0);
    assert_int_equal(sl_pipeline_stage(p), SL_STAGE_STOPPED);
    assert_int_equal(sl_test_status_int(p, 2, "bad"), 0);
    assert_int_equal(sl_pipeline_resume(p), SL_ESTATE);
    sl_pipeline_free(p);
}

typedef struct kvrec { char key[256]; char value[64]; int puts; } kvrec;

static int rec_put(void *ud, const char *key, const char *value)
{
    kvrec *r = ud;
    snprintf(r->key, sizeof r->key, "%s", key);
    snprintf(r->value, sizeof r->value, "%s", value);
    r->puts++;
    return 0;
}

static char *rec_get(void *ud, const char *key)
{
    kvrec *r = ud;
    return strcmp(key, r->key) == 0 ? strdup(r->value) : NULL;
}

static void test_state_store(void **state)
{
    fixture *f = *state;
    kvrec r = { .puts = 0 };
    sl_state_store st = { .ud = &r, .put = rec_put, .get = rec_get };
    static const char *const ids[] = { "src", "sink" };
    static const char *const plugins[] = { "mem-source", "mem-sink" };
    const char *opts[] = { "{\"count\": 10}", "{\"doubled\": false}" };
    sl_pipeline_spec *spec = sl_test_linear_spec("t/s/phase", 2, ids, plugins, opts);
    sl_pipeline *p = NULL;
    sl_error e = { 0 };
    assert_int_equal(sl_pipeline_new(f->sched, f->reg, spec, &st, &p, &e), 0);
    sl_pipeline_spec_free(spec);
    assert_int_equal(sl_pipeline_start(p), 0);
    assert_int_equal(sl_pipeline_wait(p, -1), SL_STAGE_FINISHED);
    /* The sink's flush wrote its position under "<pipeline>/<stage>/<key>". */
    assert_int_equal(r.puts, 1);
    assert_string_equal(r.key, "t/s/phase/sink/last");
    assert_string_equal(r.value, "10");
    sl_pipeline_free(p);
}

static void test_bad_specs(void **state)
{
    fixture *f = *state;
    sl_pipeline *p = NULL;
    sl_error e = { 0 };
    {
        static const char *const ids[] = { "src", "sink" };
        static const char *const plugins[] = { "mem-source", "nope" };
        const char *opts[] = { NULL, NULL };
        sl_pipeline_spec *s = sl_test_linear_spec("x", 2, ids, plugins, opts);
        assert_int_equal(sl_pipeline_new(f->sched, f->reg, s, NULL, &p, &e), SL_ENOENT);
        assert_string_equal(e.msg, "stage sink: no plugin named \"nope\"");
        sl_pipeline_spec_free(s);
    }
    {
        static const char *const ids[] = { "src", "sink" };
        static const char *const plugins[] = { "mem-source", "mem-sink" };
        const char *opts[] = { "{\"count\": \"many\"}", NULL };
        sl_pipeline_spec *s = sl_test_linear_spec("x", 2, ids, plugins, opts);
        assert_int_equal(sl_pipeline_new(f->sched, f->reg, s, NULL, &p, &e), SL_EINVAL);
        assert_string_equal(e.msg, "stage src: plugin mem-source: option \"count\" must be an integer");
        sl_pipeline_spec_free(s);
    }
    {
        static const char *const ids[] = { "src", "sink", "xf" };
        static const char *const plugins[] = { "mem-source", "mem-sink", "mem-xform" };
        const char *opts[] = { NULL, NULL, NULL };
        sl_pipeline_spec *s = sl_test_linear_spec("x", 3, ids, plugins, opts);
        assert_int_equal(sl_pipeline_new(f->sched, f->reg, s, NULL, &p, &e), SL_EINVAL);
        assert_string_equal(e.msg, "stage sink: sink plugin mem-sink cannot have outputs");
        sl_pipeline_spec_free(s);
    }
    {
        /* a cycle between two transforms fed by a source */
        static const char *const ids[] = { "src", "a", "b" };
        static const char *const plugins[] = { "mem-source", "mem-xform", "mem-xform" };
        const char *opts[] = { NULL, NULL, NULL };
        sl_pipeline_spec *s = sl_test_linear_spec("cyc", 3, ids, plugins, opts);
        s->edges = realloc(s->edges, 3 * sizeof *s->edges);
        s->edges[2] = (sl_edge_spec){ 2, 1 };
        s->nedges = 3;
        assert_int_equal(sl_pipeline_new(f->sched, f->reg, s, NULL, &p, &e), SL_EINVAL);
        assert_string_equal(e.msg, "pipeline cyc has a cycle");
        sl_pipeline_spec_free(s);
    }
    assert_null(p);
}

static void test_fan_out_in(void **state)
{
    fixture *f = *state;
    /* src -> a, src -> b, a -> sink, b -> sink: every event reaches the sink twice. */
    sl_pipeline_spec *s = calloc(1, sizeof *s);
    s->name = strdup("fan");
    s->nstages = 4;
    s->stages = calloc(4, sizeof *s->stages);
    const char *ids[] = { "src", "a", "b", "sink" };
    const char *pl[] = { "mem-source", "mem-xform", "mem-xform", "mem-sink" };
    const char *op[] = { "{\"count\": 5000, \"batch\": 100}", "{\"touch\": false}",
                         "{\"touch\": false}", "{\"doubled\": false}" };
    for (int i = 0; i < 4; i++) {
        s->stages[i].id = strdup(ids[i]);
        s->stages[i].plugin = strdup(pl[i]);
        s->stages[i].options_json = strdup(op[i]);
    }
    s->nedges = 4;
    s->edges = calloc(4, sizeof *s->edges);
    s->edges[0] = (sl_edge_spec){ 0, 1 };
    s->edges[1] = (sl_edge_spec){ 0, 2 };
    s->edges[2] = (sl_edge_spec){ 1, 3 };
    s->edges[3] = (sl_edge_spec){ 2, 3 };
    sl_pipeline *p = NULL;
    sl_error e = { 0 };
    assert_int_equal(sl_pipeline_new(f->sched, f->reg, s, NULL, &p, &e), 0);
    sl_pipeline_spec_free(s);
    assert_int_equal(sl_pipeline_start(p), 0);
    assert_int_equal(sl_pipeline_wait(p, -1), SL_STAGE_FINISHED);
    /* Both branches saw every batch exactly once: each event arrives twice in total (order
     * across the two branches interleaves, so only counts and sums are checked). */
    assert_int_equal(sl_test_status_int(p, 3, "count"), 10000);
    assert_int_equal(sl_test_status_int(p, 3, "sum"), 2LL * 5000 * 4999 / 2);
    sl_pipeline_free(p);
}

static void test_thread_limit(void **state)
{
    fixture *f = *state;
    sl_scheduler *small;
    sl_scheduler_opts o = { .max_threads = 2 };
    assert_int_equal(sl_scheduler_new(&o, &small), 0);
    static const char *const ids[] = { "src", "xf", "sink" };
    static const char *const plugins[] = { "mem-source", "mem-xform", "mem-sink" };
    const char *opts[] = { "{\"count\": -1}", NULL, NULL };
    sl_pipeline_spec *spec = sl_test_linear_spec("lim", 3, ids, plugins, opts);
    sl_pipeline *p = NULL;
    sl_error e = { 0 };
    assert_int_equal(sl_pipeline_new(small, f->reg, spec, NULL, &p, &e), 0);
    sl_pipeline_spec_free(spec);
    assert_int_equal(sl_pipeline_start(p), SL_ELIMIT);
    assert_int_equal(sl_pipeline_stage(p), SL_STAGE_PAUSED);
    sl_pipeline_error(p, &e);
    assert_string_equal(e.msg, "cannot start a thread for stage sink: the scheduler's thread limit is reached");
    assert_int_equal(sl_scheduler_threads_running(small), 0);
    sl_pipeline_free(p);
    sl_scheduler_free(small);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_finish, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fail_in_process, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fail_in_source, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fail_in_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pause_resume_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_specs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fan_out_in, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thread_limit, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
