/*
 * test_worker.c - the subtask runtime (runtime/worker.c, subtask.c) with in-process memory
 * plugins and a real SQLite store: a finished phase starts the next one and the last finishes
 * the subtask (driven by the pipelines' end events, no polling), a failing plugin pauses the
 * subtask with its error, a subtask stored as Running is started by the event thread, stages
 * are persisted, and a task's cleanup reaches every stage's cleanup slot (and only plugins that
 * have it) while a start of the same name waits for it; a transient failure resumes by itself
 * (and counts), a fatal one waits for the operator.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "memplugins.h"
#include "worker.h"
#include "sluice/log.h"

static char tmp[256];
static sl_meta_store *store;
static sl_registry *reg;
static sl_scheduler *sched;
static sl_worker *worker;

/* ---- a sink with a cleanup slot that records its calls ---- */

static atomic_int cleanups, cleanup_what;

static int cl_create(const sl_host *h, sl_ctx *c, const void *cfg, void **self)
{
    (void)h; (void)c; (void)cfg;
    *self = (void *)1;
    return 0;
}
static int cl_process(void *self, sl_batch *b) { (void)self; (void)b; return 0; }
static void cl_destroy(void *self) { (void)self; }
static int cl_cleanup(void *self, unsigned what)
{
    (void)self;
    atomic_fetch_add(&cleanups, 1);
    atomic_fetch_or(&cleanup_what, (int)what);
    return 0;
}
static const sl_option no_opts[] = { { .name = NULL } };
static const sl_plugin_descriptor clean_sink = {
    .abi_version = SL_ABI_VERSION, .struct_size = sizeof(sl_plugin_descriptor),
    .name = "clean-sink", .kind = SL_PLUGIN_SINK, .description = "records cleanup calls",
    .options = no_opts, .config_size = 8, .create = cl_create, .process = cl_process,
    .destroy = cl_destroy, .cleanup = cl_cleanup,
};

/* ---- a source whose start fails the first `fail_starts` times with a given error ---- */

static atomic_int starts_failed, fail_starts, fail_code;
static const char *fail_msg_text = "";

static int fl_create(const sl_host *h, sl_ctx *c, const void *cfg, void **self)
{
    (void)cfg;
    const sl_host **p = malloc(2 * sizeof *p);
    p[0] = h;
    p[1] = (const sl_host *)c;
    *self = p;
    return 0;
}
static int fl_start(void *self)
{
    const sl_host **p = self;
    if (atomic_load(&starts_failed) < atomic_load(&fail_starts)) {
        atomic_fetch_add(&starts_failed, 1);
        return (p[0]->fail)((sl_ctx *)p[1], atomic_load(&fail_code), "%s", fail_msg_text);
    }
    return 0;
}
static int fl_run(void *self)
{
    const sl_host **p = self;
    while (!p[0]->should_stop((sl_ctx *)p[1]))
        usleep(2000);
    return SL_ESTOPPED;
}
static void fl_destroy(void *self) { free(self); }
static const sl_plugin_descriptor flaky_source = {
    .abi_version = SL_ABI_VERSION, .struct_size = sizeof(sl_plugin_descriptor),
    .name = "flaky-source", .kind = SL_PLUGIN_SOURCE, .description = "fails its first starts",
    .options = no_opts, .config_size = 8, .create = fl_create, .start = fl_start, .run = fl_run,
    .destroy = fl_destroy,
};

/* ---- plans by hand (what the compiler would build) ---- */

typedef struct phase_def { const char *name, *src_opts, *sink, *sink_opts; } phase_def;

static sl_task_plan *plan_of(const char *task, const char *source, const phase_def *ph, size_t n)
{
    sl_task_plan *p = calloc(1, sizeof *p);
    assert_non_null(p);
    p->name = strdup(task);
    p->task_mode = strdup(n > 1 ? "all" : "full");
    p->task = json_pack("{s:s}", "name", task);
    p->nsubtasks = 1;
    p->subtasks = calloc(1, sizeof *p->subtasks);
    sl_subtask_plan *sp = &p->subtasks[0];
    sp->source_name = strdup(source);
    sp->phases = calloc(n, sizeof *sp->phases);
    sp->phase_names = calloc(n, sizeof *sp->phase_names);
    for (size_t i = 0; i < n; i++) {
        static const char *const ids[] = { "src", "sink" };
        const char *plugins[] = { ph[i].src_opts && !strcmp(ph[i].src_opts, "flaky") ?
                                  "flaky-source" : "mem-source", ph[i].sink ? ph[i].sink : "mem-sink" };
        const char *opts[] = { strcmp(plugins[0], "flaky-source") ? ph[i].src_opts : "{}",
                               ph[i].sink_opts ? ph[i].sink_opts : "{\"doubled\": false}" };
        char name[128];
        snprintf(name, sizeof name, "%s/%s/%s", task, source, ph[i].name);
        sp->phases[i] = sl_test_linear_spec(name, 2, ids, plugins, opts);
        sp->phase_names[i] = strdup(ph[i].name);
        sp->nphases++;
    }
    return p;
}

/* Wait (bounded) until the subtask is in stage want; returns the stage it has then. */
static sl_stage wait_stage(sl_subtask *s, sl_stage want)
{
    for (int i = 0; i < 2000 && sl_subtask_stage(s) != want; i++)
        usleep(5000);
    return sl_subtask_stage(s);
}

static json_t *stored(const char *key)
{
    char *v = NULL;
    if (sl_meta_get(store, "stage", key, &v, NULL) != 0)
        return NULL;
    json_t *j = json_loads(v, 0, NULL);
    free(v);
    return j;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmp, sizeof tmp, "/tmp/sluice-test-worker-XXXXXX");
    if (!mkdtemp(tmp))
        return -1;
    char path[300];
    snprintf(path, sizeof path, "%s/meta.db", tmp);
    sl_error err = { 0 };
    sl_log_set_level(SL_LOG_ERROR);
    if (sl_meta_sqlite_open(path, &store, &err) != 0 || sl_registry_new(&reg) != 0 ||
        sl_scheduler_new(NULL, &sched) != 0)
        return -1;
    sl_test_register_mem(reg);
    if (sl_registry_add(reg, &clean_sink, &err) != 0 || sl_registry_add(reg, &flaky_source, &err) != 0)
        return -1;
    sl_worker_opts o = { .name = "w-test", .store = store, .sched = sched, .registry = reg };
    return sl_worker_new(&o, &worker, &err);
}

static int teardown(void **state)
{
    (void)state;
    sl_worker_free(worker);
    sl_scheduler_free(sched);
    sl_registry_free(reg);
    sl_meta_close(store);
    nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* full (finite) then incremental (endless): the end of the first starts the second. */
static void test_phase_change_on_end_event(void **state)
{
    (void)state;
    phase_def ph[] = { { "full", "{\"count\": 5000, \"batch\": 100}", NULL, NULL },
                       { "incremental", "{\"count\": -1, \"batch\": 10}", NULL, NULL } };
    sl_task_plan *plan = plan_of("t1", "s1", ph, 2);
    sl_subtask *s = sl_subtask_new(worker, plan, 0);
    assert_non_null(s);
    assert_int_equal(sl_subtask_stage(s), SL_STAGE_STOPPED);
    sl_error err = { 0 };
    assert_int_equal(sl_subtask_start(s, &err), 0);
    assert_int_equal(sl_subtask_stage(s), SL_STAGE_RUNNING);
    /* the incremental phase's record says phase 1 once the worker moved on */
    json_t *rec = NULL;
    for (int i = 0; i < 2000; i++) {
        json_decref(rec);
        rec = stored("t1/s1");
        if (rec && json_integer_value(json_object_get(rec, "phase")) == 1)
            break;
        usleep(5000);
    }
    assert_non_null(rec);
    assert_int_equal(json_integer_value(json_object_get(rec, "phase")), 1);
    assert_string_equal(json_string_value(json_object_get(rec, "stage")), "Running");
    json_decref(rec);
    json_t *st = sl_subtask_status(s);
    assert_string_equal(json_string_value(json_object_get(st, "worker_name")), "w-test");
    assert_string_equal(json_string_value(json_object_get(st, "stage")), "Running");
    assert_string_equal(json_string_value(json_object_get(st, "unit")), "Sync");
    json_decref(st);
    sl_subtask_stop(s, 1);
    assert_int_equal(sl_subtask_stage(s), SL_STAGE_STOPPED);
    sl_subtask_free(s);
    sl_task_plan_free(plan);
}

/* The last phase's end finishes the subtask; a failure pauses it with the plugin's error. */
static void test_finish_and_failure(void **state)
{
    (void)state;
    phase_def ok[] = { { "full", "{\"count\": 300, \"batch\": 100}", NULL, NULL } };
    sl_task_plan *plan = plan_of("t2", "s1", ok, 1);
    sl_subtask *s = sl_subtask_new(worker, plan, 0);
    sl_error err = { 0 };
    assert_int_equal(sl_subtask_start(s, &err), 0);
    assert_int_equal(wait_stage(s, SL_STAGE_FINISHED), SL_STAGE_FINISHED);
    json_t *rec = stored("t2/s1");
    assert_string_equal(json_string_value(json_object_get(rec, "stage")), "Finished");
    json_decref(rec);
    sl_subtask_free(s);
    sl_task_plan_free(plan);

    phase_def bad[] = { { "full", "{\"count\": 1000, \"batch\": 10, \"fail_after\": 50}", NULL, NULL } };
    plan = plan_of("t3", "s1", bad, 1);
    s = sl_subtask_new(worker, plan, 0);
    assert_int_equal(sl_subtask_start(s, &err), 0);
    assert_int_equal(wait_stage(s, SL_STAGE_PAUSED), SL_STAGE_PAUSED);
    json_t *st = sl_subtask_status(s);
    const char *msg = json_string_value(json_object_get(st, "error_msg"));
    assert_non_null(msg);
    assert_non_null(strstr(msg, "stage src (mem-source)"));
    json_decref(st);
    rec = stored("t3/s1");
    assert_string_equal(json_string_value(json_object_get(rec, "stage")), "Paused");
    assert_non_null(strstr(json_string_value(json_object_get(rec, "error_msg")), "mem-source"));
    json_decref(rec);
    sl_subtask_free(s);
    sl_task_plan_free(plan);
}

/* A subtask stored as Running (a server restarted) is started by the event thread. */
static void test_restored_running_is_started(void **state)
{
    (void)state;
    assert_int_equal(sl_meta_put1(store, SL_META_PUT, "stage", "t4/s1",
                                  "{\"stage\":\"Running\",\"phase\":0,\"error_msg\":\"\"}", NULL), 0);
    phase_def ph[] = { { "full", "{\"count\": 200, \"batch\": 100}", NULL, NULL } };
    sl_task_plan *plan = plan_of("t4", "s1", ph, 1);
    sl_subtask *s = sl_subtask_new(worker, plan, 0);
    assert_int_equal(wait_stage(s, SL_STAGE_FINISHED), SL_STAGE_FINISHED);
    json_t *st = sl_subtask_status(s);
    json_t *stages = json_object_get(st, "stages");
    assert_int_equal(json_array_size(stages), 2);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(json_array_get(stages, 1),
                     "metrics"), "events_in")), 200);
    json_decref(st);
    sl_subtask_free(s);
    sl_task_plan_free(plan);
}

/* Freeing a subtask whose pipeline is ending by itself leaves no event behind (ASan would see a
 * use after free). */
static void test_free_while_ending(void **state)
{
    (void)state;
    for (int i = 0; i < 50; i++) {
        phase_def ph[] = { { "full", "{\"count\": 10, \"batch\": 1}", NULL, NULL },
                           { "incremental", "{\"count\": 10, \"batch\": 1}", NULL, NULL } };
        sl_task_plan *plan = plan_of("t5", "s1", ph, 2);
        sl_subtask *s = sl_subtask_new(worker, plan, 0);
        sl_error err = { 0 };
        assert_int_equal(sl_subtask_start(s, &err), 0);
        if (i % 2)
            usleep(100);
        sl_subtask_free(s);
        sl_task_plan_free(plan);
    }
}

typedef struct starter { sl_subtask *s; atomic_int done; int rc; } starter;

static void *start_main(void *arg)
{
    starter *st = arg;
    sl_error err = { 0 };
    st->rc = sl_subtask_start(st->s, &err);
    atomic_store(&st->done, 1);
    return NULL;
}

/* Cleanup reaches each stage that has the slot, in every phase; a start of the same task name
 * waits for it. */
static void test_cleanup(void **state)
{
    (void)state;
    phase_def ph[] = { { "full", "{\"count\": 1}", "clean-sink", "{}" },
                       { "incremental", "{\"count\": 1}", "clean-sink", "{}" } };
    sl_task_plan *plan = plan_of("t6", "s1", ph, 2);
    sl_task_plan *again = plan_of("t6", "s1", ph, 2);
    sl_subtask *s = sl_subtask_new(worker, again, 0);
    atomic_store(&cleanups, 0);
    atomic_store(&cleanup_what, 0);
    sl_worker_hold(worker, "t6");
    starter st = { .s = s };
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, start_main, &st), 0);
    usleep(50000);
    /* held: the start has not begun (it would have been Running by now) */
    assert_int_equal(atomic_load(&st.done), 0);
    assert_int_equal(sl_subtask_stage(s), SL_STAGE_STOPPED);
    sl_error err = { 0 };
    assert_int_equal(sl_worker_cleanup(worker, plan, SL_CLEANUP_META | SL_CLEANUP_FILES, &err), 0);
    pthread_join(th, NULL);
    assert_int_equal(st.rc, 0);
    /* one clean-sink per phase; mem-source has no slot */
    assert_int_equal(atomic_load(&cleanups), 2);
    assert_int_equal(atomic_load(&cleanup_what), SL_CLEANUP_META | SL_CLEANUP_FILES);
    sl_subtask_free(s);
    sl_task_plan_free(plan);
    sl_task_plan_free(again);
}

/* A transient error (a lost connection) resumes by itself after the first backoff delay; the
 * status counts it. A fatal one (a purged binlog) stays Paused with nothing armed. */
static void test_auto_resume(void **state)
{
    (void)state;
    phase_def ph[] = { { "incremental", "flaky", NULL, NULL } };
    sl_task_plan *plan = plan_of("t7", "s1", ph, 1);
    sl_subtask *s = sl_subtask_new(worker, plan, 0);
    atomic_store(&starts_failed, 0);
    atomic_store(&fail_starts, 1);
    atomic_store(&fail_code, SL_ECONN);
    fail_msg_text = "target 127.0.0.1:3306: Lost connection to server during query (errno 2013)";
    sl_error err = { 0 };
    assert_int_not_equal(sl_subtask_start(s, &err), 0);
    json_t *st = sl_subtask_status(s);
    json_t *ar = json_object_get(st, "auto_resume");
    assert_string_equal(json_string_value(json_object_get(st, "stage")), "Paused");
    assert_string_equal(json_string_value(json_object_get(ar, "error_class")), "transient");
    assert_true(json_string_length(json_object_get(ar, "next_retry_at")) > 0);
    json_decref(st);
    json_t *rec = stored("t7/s1");
    assert_string_equal(json_string_value(json_object_get(rec, "error_class")), "transient");
    json_decref(rec);
    assert_int_equal(wait_stage(s, SL_STAGE_RUNNING), SL_STAGE_RUNNING);
    st = sl_subtask_status(s);
    ar = json_object_get(st, "auto_resume");
    assert_int_equal(json_integer_value(json_object_get(ar, "resumes")), 1);
    assert_int_equal(json_integer_value(json_object_get(ar, "errors")), 1);
    assert_int_equal(json_integer_value(json_object_get(ar, "retries")), 1);
    assert_string_equal(json_string_value(json_object_get(ar, "next_retry_at")), "");
    assert_null(json_object_get(st, "error_msg"));
    json_decref(st);
    sl_subtask_stop(s, 1);

    atomic_store(&starts_failed, 0);
    atomic_store(&fail_starts, 100);
    atomic_store(&fail_code, SL_EDB);
    fail_msg_text = "the source purged binlog mysql-bin.000001 (errno 1236)";
    assert_int_not_equal(sl_subtask_start(s, &err), 0);
    st = sl_subtask_status(s);
    ar = json_object_get(st, "auto_resume");
    assert_string_equal(json_string_value(json_object_get(ar, "error_class")), "fatal");
    assert_string_equal(json_string_value(json_object_get(ar, "next_retry_at")), "");
    json_decref(st);
    /* longer than the first backoff delay: nothing resumed it */
    sleep(SL_RESUME_FIRST_S + 1);
    assert_int_equal(sl_subtask_stage(s), SL_STAGE_PAUSED);
    assert_int_equal(atomic_load(&starts_failed), 1);
    sl_subtask_free(s);
    sl_task_plan_free(plan);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_phase_change_on_end_event),
        cmocka_unit_test(test_finish_and_failure),
        cmocka_unit_test(test_restored_running_is_started),
        cmocka_unit_test(test_free_while_ending),
        cmocka_unit_test(test_cleanup),
        cmocka_unit_test(test_auto_resume),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
