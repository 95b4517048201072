/*
 * worker.c - the subtask manager: one subtask per (task, source) runs the compiled phases of its
 * source in order ("full" then "incremental" for task_mode all) as pipelines, records its stage in
 * the metadata store so a restarted server resumes what was Running, and turns pipeline status
 * JSON into DM's SubTaskStatus (stage, unit, load_status, sync_status, dump_status).
 * A monitor thread polls the subtasks to move a finished phase on and to catch failures.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "sluice/log.h"

struct sl_subtask {
    sl_api      *api;
    sl_api_task *task;
    char        *source;
    size_t       index;        /* subtask index in the task's plan */
    pthread_mutex_t mu;
    sl_stage     stage;
    size_t       phase;        /* current phase */
    sl_pipeline *pipe;
    char        *error_msg;
    json_t      *last;         /* last pipeline status of the current phase (when pipe is gone) */
    json_t      *load_done;    /* load_status of a finished full phase */
    json_t      *dump_done;    /* dump_status of a finished full phase */
};

/* ---- plugin state in the store ------------------------------------------------------------ */

static int state_put(void *ud, const char *key, const char *value)
{
    sl_api *a = ud;
    return sl_meta_put1(a->store, SL_META_PUT, "state", key, value, NULL);
}

static char *state_get(void *ud, const char *key)
{
    sl_api *a = ud;
    char *v = NULL;
    return sl_meta_get(a->store, "state", key, &v, NULL) == 0 ? v : NULL;
}

void sl__state_store_init(sl_api *a)
{
    a->state_store = (sl_state_store){ a, state_put, state_get };
}

/* ---- stage records ---------------------------------------------------------------------------- */

static char *stage_key(const char *task, const char *source)
{
    size_t n = strlen(task) + strlen(source) + 2;
    char *k = malloc(n);
    if (k)
        snprintf(k, n, "%s/%s", task, source);
    return k;
}

json_t *sl__stage_load(sl_api *a, const char *task, const char *source)
{
    char *k = stage_key(task, source), *v = NULL;
    json_t *j = NULL;
    if (k && sl_meta_get(a->store, "stage", k, &v, NULL) == 0)
        j = json_loads(v, 0, NULL);
    free(k);
    free(v);
    return j;
}

/* Persist stage, phase, error and the finished load/dump status; call with s->mu held. */
static void stage_save(sl_subtask *s)
{
    sl_error err = { 0 };
    json_t *o = json_pack("{s:s,s:I,s:s}", "stage", sl_stage_name(s->stage), "phase",
                          (json_int_t)s->phase, "error_msg", s->error_msg ? s->error_msg : "");
    if (s->load_done)
        json_object_set(o, "load_status", s->load_done);
    if (s->dump_done)
        json_object_set(o, "dump_status", s->dump_done);
    char *text = o ? sl__dump_compact(o) : NULL, *k = stage_key(s->task->name, s->source);
    if (!text || !k || sl_meta_put1(s->api->store, SL_META_PUT, "stage", k, text, &err) != 0)
        sl_log(SL_LOG_ERROR, "api", "task %s source %s: cannot save stage %s: %s", s->task->name,
               s->source, sl_stage_name(s->stage), err.code ? err.msg : "out of memory");
    json_decref(o);
    free(text);
    free(k);
}

static sl_stage stage_parse(const char *s)
{
    static const sl_stage all[] = { SL_STAGE_NEW, SL_STAGE_RUNNING, SL_STAGE_PAUSED,
                                    SL_STAGE_STOPPED, SL_STAGE_FINISHED };
    for (size_t i = 0; s && i < sizeof all / sizeof all[0]; i++)
        if (!strcasecmp(s, sl_stage_name(all[i])))
            return all[i];
    return SL_STAGE_STOPPED;
}

static void set_error(sl_subtask *s, const char *msg)
{
    free(s->error_msg);
    s->error_msg = msg && *msg ? strdup(msg) : NULL;
}

/* ---- life cycle --------------------------------------------------------------------------------- */

sl_subtask *sl__subtask_new(sl_api *a, sl_api_task *t, size_t index)
{
    sl_subtask *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->api = a;
    s->task = t;
    s->index = index;
    s->source = strdup(sl__plan_source(t->plan, index));
    if (!s->source) {
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    s->stage = SL_STAGE_STOPPED;      /* DM: a created task is Stopped until started */
    json_t *rec = sl__stage_load(a, t->name, s->source);
    if (rec) {
        s->stage = stage_parse(json_string_value(json_object_get(rec, "stage")));
        json_int_t ph = json_integer_value(json_object_get(rec, "phase"));
        size_t n = sl__plan_nphases(t->plan, index);
        s->phase = ph > 0 && (size_t)ph < n ? (size_t)ph : 0;
        set_error(s, json_string_value(json_object_get(rec, "error_msg")));
        s->load_done = json_incref(json_object_get(rec, "load_status"));
        s->dump_done = json_incref(json_object_get(rec, "dump_status"));
        json_decref(rec);
    }
    return s;
}

/* Snapshot the status of the pipeline and free it. Call with s->mu held. */
static void drop_pipe(sl_subtask *s)
{
    if (!s->pipe)
        return;
    char *st = sl_pipeline_status_json(s->pipe);
    json_decref(s->last);
    s->last = st ? json_loads(st, 0, NULL) : NULL;
    free(st);
    sl_pipeline_free(s->pipe);
    s->pipe = NULL;
}

/* Create and start the pipeline of the current phase. Call with s->mu held. On failure the
 * subtask is Paused with the error recorded (and persisted). */
static int run_phase(sl_subtask *s, sl_error *err)
{
    sl_api *a = s->api;
    size_t n = sl__plan_nphases(s->task->plan, s->index);
    int rc;
    if (n == 0) {
        rc = sl_error_set(err, SL_ENOTSUP, "the task compiler produced no pipeline for source %s "
                          "(is the compiler built?)", s->source);
        goto failed;
    }
    const sl_pipeline_spec *spec = sl__plan_phase(s->task->plan, s->index, s->phase);
    if ((rc = sl_pipeline_new(a->sched, a->registry, spec, &a->state_store, &s->pipe, err)) != 0)
        goto failed;
    json_decref(s->last);
    s->last = NULL;
    if ((rc = sl_pipeline_start(s->pipe)) != 0) {
        sl_error pe = { 0 };
        sl_pipeline_error(s->pipe, &pe);
        sl_error_set(err, rc, "%s", pe.code ? pe.msg : sl_strerror(rc));
        drop_pipe(s);
        goto failed;
    }
    s->stage = SL_STAGE_RUNNING;
    set_error(s, NULL);
    stage_save(s);
    return 0;
failed:
    s->stage = SL_STAGE_PAUSED;
    set_error(s, err->msg);
    stage_save(s);
    sl_log(SL_LOG_ERROR, "api", "task %s source %s: %s", s->task->name, s->source, err->msg);
    return rc;
}

int sl__subtask_start(sl_subtask *s, sl_error *err)
{
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    if (s->stage == SL_STAGE_RUNNING && s->pipe) {
        pthread_mutex_unlock(&s->mu);
        return 0;
    }
    if (s->stage == SL_STAGE_FINISHED) {
        /* Start again from the first phase: the loader skips every chunk it has recorded. */
        s->phase = 0;
    }
    drop_pipe(s);
    rc = run_phase(s, err);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void sl__subtask_stop(sl_subtask *s, int persist)
{
    pthread_mutex_lock(&s->mu);
    if (s->pipe) {
        sl_pipeline_stop(s->pipe);
        drop_pipe(s);
    }
    if (persist) {
        if (s->stage != SL_STAGE_FINISHED)
            s->stage = SL_STAGE_STOPPED;
        stage_save(s);
    }
    pthread_mutex_unlock(&s->mu);
}

void sl__subtask_free(sl_subtask *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    if (s->pipe) {
        sl_pipeline_stop(s->pipe);
        sl_pipeline_free(s->pipe);
    }
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_destroy(&s->mu);
    json_decref(s->last);
    json_decref(s->load_done);
    json_decref(s->dump_done);
    free(s->error_msg);
    free(s->source);
    free(s);
}

sl_stage sl__subtask_stage(sl_subtask *s)
{
    pthread_mutex_lock(&s->mu);
    sl_stage st = s->stage;
    pthread_mutex_unlock(&s->mu);
    return st;
}

const char *sl__subtask_source(sl_subtask *s)
{
    return s->source;
}

/* ---- status ------------------------------------------------------------------------------------ */

static json_t *find_status(json_t *ps, const char *plugin)
{
    size_t i;
    json_t *st;
    json_array_foreach(json_object_get(ps, "stages"), i, st)
        if (!strcmp(json_string_value(json_object_get(st, "plugin")) ? json_string_value(json_object_get(st, "plugin")) : "", plugin))
            return json_object_get(st, "status");
    return NULL;
}

/* Copy the members of src that dst has (keeping dst's defaults for the rest), plus extras. */
static void overlay(json_t *dst, json_t *src)
{
    const char *k;
    json_t *v;
    json_object_foreach(src, k, v)
        if (strcmp(k, "unit"))
            json_object_set(dst, k, v);
}

static json_t *load_defaults(void)
{
    return json_pack("{s:I,s:I,s:s,s:s,s:s,s:I}", "finished_bytes", (json_int_t)0, "total_bytes",
                     (json_int_t)0, "progress", "0.00 %", "meta_binlog", "", "meta_binlog_gtid", "",
                     "bps", (json_int_t)0);
}

static json_t *sync_defaults(void)
{
    return json_pack("{s:I,s:I,s:I,s:s,s:s,s:s,s:s,s:[],s:[],s:b,s:s,s:I}",
                     "total_events", (json_int_t)0, "total_tps", (json_int_t)0,
                     "recent_tps", (json_int_t)0, "master_binlog", "", "master_binlog_gtid", "",
                     "syncer_binlog", "", "syncer_binlog_gtid", "", "blocking_ddls",
                     "unresolved_groups", "synced", 0, "binlog_type", "remote",
                     "seconds_behind_master", (json_int_t)0);
}

static json_t *dump_defaults(void)
{
    return json_pack("{s:I,s:f,s:f,s:f,s:f,s:I,s:s}", "total_tables", (json_int_t)0,
                     "completed_tables", 0.0, "finished_bytes", 0.0, "finished_rows", 0.0,
                     "estimate_total_rows", 0.0, "bps", (json_int_t)0, "progress", "0.00 %");
}

/*
 * sluice's extension of SubTaskStatus: every stage of the current (or last) phase's pipeline as
 * {"id", "plugin", "metrics", "status"}, whatever its plugin. DM's load/sync/dump_status above
 * are filled from the built-in plugins by name; this is where the other stages (route,
 * event-filter, lua-hook, a custom plugin) show their metrics and status. [] before the first
 * start.
 */
static json_t *stages_view(json_t *ps)
{
    json_t *out = json_array(), *st;
    size_t i;
    json_array_foreach(json_object_get(ps, "stages"), i, st) {
        json_t *m = json_object_get(st, "metrics"), *v = json_object_get(st, "status");
        const char *id = json_string_value(json_object_get(st, "id"));
        const char *plugin = json_string_value(json_object_get(st, "plugin"));
        json_t *e = json_pack("{s:s,s:s}", "id", id ? id : "", "plugin", plugin ? plugin : "");
        if (!e)
            continue;
        json_object_set_new(e, "metrics", json_is_object(m) ? json_incref(m) : json_object());
        json_object_set_new(e, "status", json_is_object(v) ? json_incref(v) : json_object());
        json_array_append_new(out, e);
    }
    return out;
}

json_t *sl__subtask_status(sl_subtask *s)
{
    pthread_mutex_lock(&s->mu);
    json_t *ps = NULL;
    if (s->pipe) {
        char *t = sl_pipeline_status_json(s->pipe);
        ps = t ? json_loads(t, 0, NULL) : NULL;
        free(t);
    } else if (s->last) {
        ps = json_incref(s->last);
    }
    const char *phase = sl__plan_nphases(s->task->plan, s->index)
                            ? sl__plan_phase_name(s->task->plan, s->index, s->phase) : "";
    const char *mode = json_string_value(json_object_get(s->task->def, "task_mode"));
    json_t *load = load_defaults(), *sync = sync_defaults(), *dump = NULL, *x;
    if (s->load_done)
        overlay(load, s->load_done);
    if (s->dump_done)
        overlay(dump = dump_defaults(), s->dump_done);
    const char *unit = "Sync";
    if (phase && !strcmp(phase, "full")) {
        json_t *d = find_status(ps, "mysql-dump"), *l = find_status(ps, "loader");
        if (d)
            overlay(dump ? dump : (dump = dump_defaults()), d);
        if (l)
            overlay(load, l);
        /* dump and load run together; the unit is Dump until every table is dumped */
        json_int_t total = json_integer_value(json_object_get(dump, "total_tables"));
        double done = json_number_value(json_object_get(dump, "completed_tables"));
        unit = (mode && !strcmp(mode, "dump")) || (total == 0 || done < (double)total) ? "Dump" : "Load";
        if (mode && !strcmp(mode, "load"))
            unit = "Load";
    }
    if ((x = find_status(ps, "binlog-reader")))
        overlay(sync, x);
    if ((x = find_status(ps, "mysql-sink")))
        overlay(sync, x);
    const char *err = s->error_msg;
    const char *perr = json_string_value(json_object_get(ps, "error_msg"));
    if (!err && perr && s->stage == SL_STAGE_PAUSED)
        err = perr;
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "name", s->task->name, "source_name",
                          s->source, "worker_name", SL_API_WORKER_NAME, "stage",
                          sl_stage_name(s->stage), "unit", unit, "unresolved_ddl_lock_id", "");
    if (err)
        json_object_set_new(o, "error_msg", json_string(err));
    json_object_set_new(o, "load_status", load);
    json_object_set_new(o, "sync_status", sync);
    if (dump)
        json_object_set_new(o, "dump_status", dump);
    json_object_set_new(o, "stages", stages_view(ps));
    pthread_mutex_unlock(&s->mu);
    json_decref(ps);
    return o;
}

/* ---- the monitor -------------------------------------------------------------------------------- */

void sl__subtask_poll(sl_subtask *s)
{
    pthread_mutex_lock(&s->mu);
    if (s->stage != SL_STAGE_RUNNING) {
        pthread_mutex_unlock(&s->mu);
        return;
    }
    if (!s->pipe) {
        /* Running in the store but not here: a restored subtask. Start it. */
        sl_error err = { 0 };
        run_phase(s, &err);
        pthread_mutex_unlock(&s->mu);
        return;
    }
    sl_stage st = sl_pipeline_stage(s->pipe);
    if (st == SL_STAGE_FINISHED) {
        drop_pipe(s);
        const char *name = sl__plan_phase_name(s->task->plan, s->index, s->phase);
        if (name && !strcmp(name, "full")) {
            json_t *l = find_status(s->last, "loader"), *d = find_status(s->last, "mysql-dump");
            if (l) {
                json_decref(s->load_done);
                s->load_done = json_deep_copy(l);
            }
            if (d) {
                json_decref(s->dump_done);
                s->dump_done = json_deep_copy(d);
            }
        }
        if (s->phase + 1 < sl__plan_nphases(s->task->plan, s->index)) {
            sl_error err = { 0 };
            s->phase++;
            sl_log(SL_LOG_INFO, "api", "task %s source %s: phase %s finished, starting %s",
                   s->task->name, s->source, name ? name : "?",
                   sl__plan_phase_name(s->task->plan, s->index, s->phase));
            run_phase(s, &err);
        } else {
            s->stage = SL_STAGE_FINISHED;
            stage_save(s);
            sl_log(SL_LOG_INFO, "api", "task %s source %s: finished", s->task->name, s->source);
        }
    } else if (st == SL_STAGE_PAUSED || st == SL_STAGE_STOPPED) {
        sl_error pe = { 0 };
        sl_pipeline_error(s->pipe, &pe);
        s->stage = SL_STAGE_PAUSED;
        set_error(s, pe.code ? pe.msg : "the pipeline stopped by itself");
        drop_pipe(s);
        stage_save(s);
        sl_log(SL_LOG_ERROR, "api", "task %s source %s: paused: %s", s->task->name, s->source,
               s->error_msg ? s->error_msg : "");
    }
    pthread_mutex_unlock(&s->mu);
}

static void *monitor_main(void *arg)
{
    sl_api *a = arg;
    pthread_mutex_lock(&a->mon_mu);
    while (!a->stopping) {
        pthread_mutex_unlock(&a->mon_mu);
        pthread_rwlock_rdlock(&a->lock);
        /* a pass may start many restored subtasks (each connects to its servers): stop
         * between them when the server is shutting down */
        for (size_t i = 0; i < a->ntasks && !atomic_load(&a->stopping); i++)
            for (size_t j = 0; j < a->tasks[i]->nsubs && !atomic_load(&a->stopping); j++)
                sl__subtask_poll(a->tasks[i]->subs[j]);
        pthread_rwlock_unlock(&a->lock);
        pthread_mutex_lock(&a->mon_mu);
        if (a->stopping)
            break;
        struct timespec dl;
        clock_gettime(CLOCK_MONOTONIC, &dl);
        dl.tv_nsec += 200 * 1000000L;
        if (dl.tv_nsec >= 1000000000L) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&a->mon_cv, &a->mon_mu, &dl);
    }
    pthread_mutex_unlock(&a->mon_mu);
    return NULL;
}

int sl__monitor_start(sl_api *a, sl_error *err)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&a->mon_cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&a->mon_mu, NULL);
    if (pthread_create(&a->monitor, NULL, monitor_main, a) != 0)
        return sl_error_set(err, SL_EIO, "cannot start the subtask monitor thread: %s",
                            strerror(errno));
    a->monitor_started = 1;
    return 0;
}

void sl__monitor_stop(sl_api *a)
{
    if (!a->monitor_started)
        return;
    pthread_mutex_lock(&a->mon_mu);
    atomic_store(&a->stopping, 1);
    pthread_cond_broadcast(&a->mon_cv);
    pthread_mutex_unlock(&a->mon_mu);
    pthread_join(a->monitor, NULL);
    a->monitor_started = 0;
    pthread_cond_destroy(&a->mon_cv);
    pthread_mutex_destroy(&a->mon_mu);
}
