/*
 * subtask.c - one subtask (worker.h): the phases of one source of a task run in order as
 * pipelines; the stage (New/Running/Paused/Stopped/Finished), the phase, the error and the
 * finished full phase's status are recorded in the store under "stage" so that a restarted
 * server resumes what was Running. A pipeline that ends by itself tells the worker
 * (sl_pipeline_on_end), whose event thread calls sl__subtask_event: a finished phase starts the
 * next one, a failure pauses the subtask with its error. A transient failure (errclass.c) arms an
 * automatic resume with exponential backoff (SL_RESUME_*), which the same thread runs when due;
 * an operator's start or stop disarms it.
 */
#include "worker_int.h"
#include "shard.h"

#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sluice/clock.h"
#include "sluice/log.h"

/* ---- stage records ---------------------------------------------------------------------------- */

static char *stage_key(const char *task, const char *source)
{
    size_t n = strlen(task) + strlen(source) + 2;
    char *k = malloc(n);
    if (k)
        snprintf(k, n, "%s/%s", task, source);
    return k;
}

static json_t *stage_load(sl_worker *w, const char *task, const char *source)
{
    char *k = stage_key(task, source), *v = NULL;
    json_t *j = NULL;
    if (k && sl_meta_get(w->store, "stage", k, &v, NULL) == 0)
        j = json_loads(v, 0, NULL);
    free(k);
    free(v);
    return j;
}

/* Persist stage, phase, error and the finished load/dump status; call with s->mu held. */
static void stage_save(sl_subtask *s)
{
    sl_error err = { 0 };
    json_t *o = json_pack("{s:s,s:I,s:s,s:s,s:b,s:{s:I,s:I}}", "stage", sl_stage_name(s->stage),
                          "phase", (json_int_t)s->phase, "error_msg", s->error_msg ? s->error_msg : "",
                          "error_class", sl_errclass_name(s->err_class), "started", s->ever_started,
                          "start_args", "start_time", (json_int_t)s->args.start_time,
                          "safe_mode_seconds", (json_int_t)s->args.safe_mode_seconds);
    if (o && s->want_seq)
        json_object_set_new(o, "want_seq", json_integer(s->want_seq));
    if (o && s->load_done)
        json_object_set(o, "load_status", s->load_done);
    if (o && s->dump_done)
        json_object_set(o, "dump_status", s->dump_done);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL, *k = stage_key(s->task, s->source);
    sl_worker *w = s->w;
    int rc = !text || !k ? SL_ENOMEM
           : s->fence && w->stage_put ? w->stage_put(w->live_ud, s->source, s->fence, k, text, &err)
           : sl_meta_put1(w->store, SL_META_PUT, "stage", k, text, &err);
    if (rc == SL_ESTATE)
        sl_log(SL_LOG_WARN, "worker", "task %s source %s: stage %s not recorded: the source is "
               "no longer bound to this worker at epoch %lld", s->task, s->source,
               sl_stage_name(s->stage), s->fence);
    else if (rc != 0)
        sl_log(SL_LOG_ERROR, "worker", "task %s source %s: cannot save stage %s: %s", s->task,
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

static const sl_subtask_plan *splan(const sl_subtask *s)
{
    return &s->plan->subtasks[s->index];
}

/* Forget an armed retry (an operator's start or stop, or a resume that ran). */
static void disarm(sl_subtask *s)
{
    s->retry_gen++;
    s->next_retry = 0;
}

/* Arm the next automatic resume after a transient error. Call with s->mu held. */
static void arm(sl_subtask *s)
{
    unsigned delay = SL_RESUME_FIRST_S;
    for (unsigned i = 0; i < s->retries && delay < SL_RESUME_MAX_S; i++)
        delay *= 2;
    if (delay > SL_RESUME_MAX_S)
        delay = SL_RESUME_MAX_S;
    s->retry_gen++;
    s->next_retry = time(NULL) + delay;
    sl__worker_post_retry(s->w, s, s->retry_gen, delay);
    sl_log(SL_LOG_WARN, "worker", "task %s source %s: transient error; resuming in %u s "
           "(automatic resume %u)", s->task, s->source, delay, s->retries + 1);
}

/* The subtask is Paused by an error (code, msg): record, persist, and arm a resume when the
 * error is transient. Call with s->mu held. */
static void paused(sl_subtask *s, int code, const char *msg)
{
    s->stage = SL_STAGE_PAUSED;
    set_error(s, msg && *msg ? msg : "the pipeline stopped by itself");
    s->err_class = sl_error_class(code, s->error_msg);
    s->errors++;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (s->run_since.tv_sec && now.tv_sec - s->run_since.tv_sec >= SL_RESUME_HEALTHY_S)
        s->retries = 0;    /* it ran long enough: this is a new incident */
    stage_save(s);
    sl_log(SL_LOG_ERROR, "worker", "task %s source %s: paused (%s error): %s", s->task, s->source,
           sl_errclass_name(s->err_class), s->error_msg ? s->error_msg : "");
    if (s->err_class == SL_ERRCLASS_TRANSIENT && !s->dying)
        arm(s);
}

/* ---- life cycle --------------------------------------------------------------------------------- */

/* Take the fields of a stage record (rec may be NULL). Call with s->mu held or before s is
 * shared. */
static void apply_record(sl_subtask *s, json_t *rec)
{
    if (!rec)
        return;
    s->stage = stage_parse(json_string_value(json_object_get(rec, "stage")));
    json_int_t ph = json_integer_value(json_object_get(rec, "phase"));
    size_t n = splan(s)->nphases;
    s->phase = ph > 0 && (size_t)ph < n ? (size_t)ph : 0;
    set_error(s, json_string_value(json_object_get(rec, "error_msg")));
    const char *cls = json_string_value(json_object_get(rec, "error_class"));
    s->err_class = cls && !strcmp(cls, "transient") ? SL_ERRCLASS_TRANSIENT :
                   cls && !strcmp(cls, "fatal") ? SL_ERRCLASS_FATAL : SL_ERRCLASS_NONE;
    json_decref(s->load_done);
    json_decref(s->dump_done);
    s->load_done = json_incref(json_object_get(rec, "load_status"));
    s->dump_done = json_incref(json_object_get(rec, "dump_status"));
    s->ever_started = json_is_true(json_object_get(rec, "started"));
    json_t *sa = json_object_get(rec, "start_args");
    s->args.start_time = json_integer_value(json_object_get(sa, "start_time"));
    s->args.safe_mode_seconds = json_integer_value(json_object_get(sa, "safe_mode_seconds"));
    s->want_seq = json_integer_value(json_object_get(rec, "want_seq"));
}

/* A view of the leader (remote worker): read the stage record the running worker keeps. Call
 * with s->mu held. */
static void remote_reload(sl_subtask *s)
{
    json_t *rec = stage_load(s->w, s->task, s->source);
    apply_record(s, rec);
    json_decref(rec);
    /* A wish the worker has not acted on yet (it polls every half second) is what the operator
     * sees: a task just started counts as Running, one just stopped as Stopped. */
    char *k = stage_key(s->task, s->source), *v = NULL;
    if (k && sl_meta_get(s->w->store, "want", k, &v, NULL) == 0) {
        json_t *o = json_loads(v, 0, NULL);
        if (json_integer_value(json_object_get(o, "seq")) != s->want_seq)
            s->stage = stage_parse(json_string_value(json_object_get(o, "stage")));
        json_decref(o);
    }
    free(v);
    free(k);
}

/* A count a pipeline status (NULL: none) says its sink made in that run: "total_events" (binlog
 * events handled), "rows_not_found" (row changes that found no row on the target),
 * "target_warnings" (values the target changed). */
static long long run_count(json_t *ps, const char *key)
{
    return (long long)json_integer_value(json_object_get(sl__stage_status(ps, "mysql-sink"), key));
}

/* Keep the counters of s for the next subtask of its task and source in this process (a PUT
 * frees the subtasks and makes new ones): they count since the server started. Call with s->mu
 * held. */
static void counts_keep(sl_subtask *s)
{
    sl_worker *w = s->w;
    char *k = stage_key(s->task, s->source);
    json_t *v = k ? json_pack("[I,I,I,I,I]", (json_int_t)s->errors, (json_int_t)s->resumes,
                              (json_int_t)(s->events_base + run_count(s->last, "total_events")),
                              (json_int_t)(s->not_found_base + run_count(s->last, "rows_not_found")),
                              (json_int_t)(s->warnings_base + run_count(s->last, "target_warnings")))
                  : NULL;
    pthread_mutex_lock(&w->mu);
    if (v && (w->counts || (w->counts = json_object())))
        json_object_set(w->counts, k, v);
    pthread_mutex_unlock(&w->mu);
    json_decref(v);
    free(k);
}

/* Take on the counters an earlier subtask of the same task and source left (counts_keep). */
static void counts_take(sl_subtask *s)
{
    sl_worker *w = s->w;
    char *k = stage_key(s->task, s->source);
    pthread_mutex_lock(&w->mu);
    json_t *v = k && w->counts ? json_object_get(w->counts, k) : NULL;
    if (v) {
        s->errors = (unsigned long long)json_integer_value(json_array_get(v, 0));
        s->resumes = (unsigned long long)json_integer_value(json_array_get(v, 1));
        s->events_base = (long long)json_integer_value(json_array_get(v, 2));
        s->not_found_base = (long long)json_integer_value(json_array_get(v, 3));
        s->warnings_base = (long long)json_integer_value(json_array_get(v, 4));
    }
    pthread_mutex_unlock(&w->mu);
    free(k);
}

sl_subtask *sl_subtask_new(sl_worker *w, const sl_task_plan *plan, size_t index)
{
    return sl_subtask_new_fenced(w, plan, index, 0, NULL);
}

/* Does want (a "want" record's text, or NULL) hold a wish the subtask has not acted on? */
static int want_pending(const sl_subtask *s, const char *want)
{
    json_t *o = want ? json_loads(want, 0, NULL) : NULL;
    int pending = o && json_integer_value(json_object_get(o, "seq")) != s->want_seq;
    json_decref(o);
    return pending;
}

sl_subtask *sl_subtask_new_fenced(sl_worker *w, const sl_task_plan *plan, size_t index,
                                  long long fence_epoch, const char *want)
{
    sl_subtask *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->w = w;
    s->plan = plan;
    s->index = index;
    s->task = plan->name;
    s->source = plan->subtasks[index].source_name;
    s->fence = fence_epoch;
    atomic_init(&s->refs, 1);
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    s->stage = SL_STAGE_STOPPED;      /* DM: a created task is Stopped until started */
    counts_take(s);
    json_t *rec = stage_load(w, s->task, s->source);
    apply_record(s, rec);
    json_decref(rec);
    /* Running in the store but not here: a restored subtask, started by the event thread so
     * that a server with many tasks answers at once. One paused by a transient error before the
     * restart resumes on its own schedule, from the first delay. A view of the leader runs
     * nothing: the bound worker does. */
    sl__worker_add(w, s);
    if (w->remote)
        return s;
    if (want_pending(s, want)) {
        /* The operator started or stopped it while no worker ran it (its worker dead, the
         * source unbound): the wish comes after the stored stage, so it decides, before any
         * pipeline starts. Restoring first would run a stopped task (and apply rows) until the
         * runner's next look at the wish. */
        sl_error err = { 0 };
        if (sl_subtask_follow(s, want, &err) != 0)
            sl_log(SL_LOG_WARN, "worker", "task %s source %s: %s", s->task, s->source, err.msg);
        return s;
    }
    if (s->stage == SL_STAGE_RUNNING)
        sl__worker_post(w, SL__EV_RESTORE, s, NULL);
    else if (s->stage == SL_STAGE_PAUSED && s->err_class == SL_ERRCLASS_TRANSIENT) {
        pthread_mutex_lock(&s->mu);
        arm(s);
        pthread_mutex_unlock(&s->mu);
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
    s->last_at = time(NULL);
    free(st);
    sl_pipeline_free(s->pipe);
    s->pipe = NULL;
}

/* ---- stopping apart from the subtask's lock ------------------------------------------------------ */

/*
 * A stop waits for the pipeline's stage threads, and a stage can be stuck where the stop flag is
 * not looked at: a Lua pattern backtracking inside string.find, a mysql-sink blocked on a frozen
 * target. Waiting for it under s->mu would freeze the status of the subtask, the worker's event
 * thread (every task's phase changes and resumes) and, through them, the API. So a stop takes the
 * pipeline out of the subtask under s->mu and a thread of its own stops and frees it; the
 * subtask holds a reference until then, and stays out of Running (a start waits a little, then
 * refuses) while one of its pipelines is still stopping.
 */
struct sl__reaper {
    struct sl__reaper *next;
    sl_subtask        *s;
    sl_pipeline       *p;
    char              *task, *source;   /* copies: the plan may go before the pipeline does */
};

static void subtask_unref(sl_subtask *s)
{
    if (atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    /* the pipelines are gone, so nothing posts for s any more: drop what is queued */
    sl__worker_forget(s->w, s);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    json_decref(s->last);
    json_decref(s->load_done);
    json_decref(s->dump_done);
    free(s->error_msg);
    free(s);
}

/* Take r off the worker's list of stoppers, and wake who waits for it (wait_reapers). */
static void reaper_unlink(sl_worker *w, struct sl__reaper *r)
{
    pthread_mutex_lock(&w->mu);
    for (struct sl__reaper **pp = &w->reapers; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void *reaper_main(void *arg)
{
    struct sl__reaper *r = arg;
    sl_subtask *s = r->s;
    sl_worker *w = s->w;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    sl_pipeline_stop(r->p);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (t1.tv_sec - t0.tv_sec >= 5)
        sl_log(SL_LOG_WARN, "worker", "task %s source %s: its pipeline took %lld s to stop",
               r->task, r->source, (long long)(t1.tv_sec - t0.tv_sec));
    char *st = sl_pipeline_status_json(r->p);
    sl_pipeline_free(r->p);
    pthread_mutex_lock(&s->mu);
    if (!s->dying && !s->pipe && st) {
        json_decref(s->last);
        s->last = json_loads(st, 0, NULL);
        s->last_at = time(NULL);
    }
    s->stopping--;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    free(st);
    subtask_unref(s);
    reaper_unlink(w, r);
    free(r->task);
    free(r->source);
    free(r);
    return NULL;
}

/* Take the pipeline out of s and stop it on a thread of its own (see above); without memory or
 * a thread, stop it here as before. Call with s->mu held. */
static void stop_detached(sl_subtask *s)
{
    if (!s->pipe)
        return;
    sl_worker *w = s->w;
    struct sl__reaper *r = calloc(1, sizeof *r);
    pthread_attr_t at;
    pthread_t th;
    int ok = r && (r->task = strdup(s->task)) && (r->source = strdup(s->source)) &&
             pthread_attr_init(&at) == 0;
    if (ok) {
        /* what the status shows until the stopper has the final numbers: without it the run's
         * events would vanish from total_events meanwhile */
        char *st = sl_pipeline_status_json(s->pipe);
        json_t *snap = st ? json_loads(st, 0, NULL) : NULL;
        free(st);
        if (snap) {
            json_decref(s->last);
            s->last = snap;
            s->last_at = time(NULL);
        }
        r->s = s;
        r->p = s->pipe;
        atomic_fetch_add(&s->refs, 1);
        s->stopping++;
        s->pipe = NULL;
        pthread_mutex_lock(&w->mu);
        r->next = w->reapers;
        w->reapers = r;
        pthread_mutex_unlock(&w->mu);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&th, &at, reaper_main, r);
        pthread_attr_destroy(&at);
        if (rc == 0)
            return;
        /* undo: no thread, stop it here */
        reaper_unlink(w, r);
        s->pipe = r->p;
        s->stopping--;
        atomic_fetch_sub(&s->refs, 1);
    }
    if (r) {
        free(r->task);
        free(r->source);
        free(r);
    }
    sl_pipeline_stop(s->pipe);
    drop_pipe(s);
}

/* Wait up to ms (-1: no limit) for the pipelines of s still stopping. Call with s->mu held; 0
 * when none is left, else SL_ETIMEOUT. */
static int wait_stopped_locked(sl_subtask *s, int ms)
{
    struct timespec dl = sl_timespec_in(CLOCK_MONOTONIC, ms < 0 ? 0 : ms);  /* the cv's clock */
    while (s->stopping) {
        if (ms < 0)
            pthread_cond_wait(&s->cv, &s->mu);
        else if (pthread_cond_timedwait(&s->cv, &s->mu, &dl) != 0 && s->stopping)
            return SL_ETIMEOUT;
    }
    return 0;
}

/* A stopper of task (NULL: any) and source (NULL: any), or NULL. Call with w->mu held. */
static struct sl__reaper *reaper_of(sl_worker *w, const char *task, const char *source)
{
    struct sl__reaper *r = w->reapers;
    while (r && ((task && strcmp(r->task, task)) || (source && strcmp(r->source, source))))
        r = r->next;
    return r;
}

static int wait_reapers(sl_worker *w, const char *task, const char *source, int timeout_ms,
                        sl_error *err)
{
    struct timespec dl = sl_timespec_in(CLOCK_MONOTONIC, timeout_ms < 0 ? 0 : timeout_ms);
    int rc = 0;
    struct sl__reaper *r;
    pthread_mutex_lock(&w->mu);
    while ((r = reaper_of(w, task, source))) {
        if (timeout_ms < 0) {
            pthread_cond_wait(&w->cv, &w->mu);
        } else if (pthread_cond_timedwait(&w->cv, &w->mu, &dl) != 0 &&
                   (r = reaper_of(w, task, source))) {
            rc = sl_error_set(err, SL_ETIMEOUT, "task %s source %s: its last run has not stopped "
                              "after %d ms: a stage does not return (a Lua script stuck in a "
                              "pattern match, a target that does not answer?)", r->task,
                              r->source, timeout_ms);
            break;
        }
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

int sl_worker_wait_stopped(sl_worker *w, const char *task, int timeout_ms, sl_error *err)
{
    return wait_reapers(w, task, NULL, timeout_ms, err);
}

static void on_end(void *ud, sl_pipeline *p, sl_stage stage)
{
    (void)stage;   /* the event reads the stage under the subtask's lock */
    sl_subtask *s = ud;
    sl__worker_post(s->w, SL__EV_END, s, p);
}

/* A copy of spec whose stages get the start arguments their plugins take (an option of that
 * name in their table) and, when resume is not NULL, the custom sink's resume point as the
 * option "resume" (the binlog-reader's); NULL when nothing applies or out of memory (then spec
 * is used as it is, so the caller checks that a resume point it has was applied). Caller frees
 * with sl_pipeline_spec_free. */
static sl_pipeline_spec *with_args(const sl_registry *reg, const sl_pipeline_spec *spec,
                                   const sl_start_args *a, long long fence_epoch,
                                   json_t *resume)
{
    static const char *const names[] = { "start_time", "safe_mode_seconds", "fence_epoch" };
    const long long vals[] = { a->start_time, a->safe_mode_seconds, fence_epoch };
    if (!a->start_time && !a->safe_mode_seconds && !fence_epoch && !resume)
        return NULL;
    sl_pipeline_spec *c = calloc(1, sizeof *c);
    if (!c || !(c->stages = calloc(spec->nstages ? spec->nstages : 1, sizeof *c->stages)) ||
        !(c->edges = calloc(spec->nedges ? spec->nedges : 1, sizeof *c->edges)) ||
        !(c->name = strdup(spec->name ? spec->name : ""))) {
        sl_pipeline_spec_free(c);
        return NULL;
    }
    c->nedges = spec->nedges;
    memcpy(c->edges, spec->edges, spec->nedges * sizeof *c->edges);
    for (size_t i = 0; i < spec->nstages; i++, c->nstages++) {
        const sl_stage_spec *st = &spec->stages[i];
        const sl_plugin_descriptor *d = sl_registry_find(reg, st->plugin);
        json_t *o = json_loads(st->options_json ? st->options_json : "{}", 0, NULL);
        for (const sl_option *op = o && d ? d->options : NULL; op && op->name; op++) {
            for (size_t k = 0; k < 3; k++)
                if (vals[k] && !strcmp(op->name, names[k]))
                    json_object_set_new(o, names[k], json_integer(vals[k]));
            if (resume && op->type == SL_OPT_JSON && !strcmp(op->name, "resume"))
                json_object_set(o, "resume", resume);
        }
        c->stages[i].id = strdup(st->id);
        c->stages[i].plugin = strdup(st->plugin);
        c->stages[i].options_json = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        if (!c->stages[i].id || !c->stages[i].plugin || !c->stages[i].options_json) {
            c->nstages++;
            sl_pipeline_spec_free(c);
            return NULL;
        }
    }
    return c;
}

/*
 * The resume point of the phase's sink when the sink keeps its own (plugin.h ctl "checkpoint"):
 * mysql-sink's checkpoint is a row in the target that the binlog-reader reads itself, but a
 * custom sink keeps its checkpoint where only it can look (a file, another system), so the
 * runtime asks it, on an instance that never runs, before the pipeline is built, and hands the
 * answer to the reader as its "resume" option. 0 with *out (a JSON object; caller decrefs) or
 * NULL when the sink keeps none (no ctl, SL_ENOTSUP) or has none yet (SL_ENOENT: the task's
 * own position applies); a negative code with err when the sink cannot tell (the subtask must
 * not start from a guess).
 */
static int sink_resume(sl_worker *w, const sl_pipeline_spec *spec, json_t **out, sl_error *err)
{
    *out = NULL;
    const sl_stage_spec *sink = NULL;
    for (size_t i = 0; i < spec->nstages; i++)
        if (!strcmp(spec->stages[i].id, "sink"))
            sink = &spec->stages[i];
    const sl_plugin_descriptor *d = sink ? sl_registry_find(w->registry, sink->plugin) : NULL;
    if (!d || d->kind != SL_PLUGIN_SINK || !SL_DESCRIPTOR_HAS(d, ctl) || !d->ctl)
        return 0;
    sl_pipeline *p = NULL;
    char *reply = NULL;
    int rc = sl_pipeline_new(w->sched, w->registry, spec, &w->state, &p, err);
    if (rc == 0)
        rc = sl_pipeline_ctl(p, "sink", "{\"op\":\"checkpoint\"}", &reply, err);
    sl_pipeline_free(p);
    if (rc == SL_ENOTSUP || rc == SL_ENOENT) {
        memset(err, 0, sizeof *err);
        free(reply);
        return 0;
    }
    if (rc < 0) {
        /* named like a failure of the stage's own start, which is what it is to the user */
        sl_error e = *err;
        sl_error_set(err, rc, "stage sink (%s): %s", sink->plugin, e.msg);
        free(reply);
        return rc;
    }
    json_error_t je;
    json_t *o = reply ? json_loads(reply, 0, &je) : NULL;
    if (reply && !json_is_object(o))
        rc = sl_error_set(err, SL_EINVAL, "stage sink (%s): its checkpoint is not a JSON object: "
                          "%.200s", sink->plugin, reply);
    else if (o)
        *out = json_incref(o);
    json_decref(o);
    free(reply);
    return rc;
}

/* Whether a stage of spec takes a resume point (the binlog-reader's "resume" option): only then
 * does a phase need its sink's checkpoint to know where to start. */
static int takes_resume(const sl_registry *reg, const sl_pipeline_spec *spec)
{
    for (size_t i = 0; i < spec->nstages; i++) {
        const sl_plugin_descriptor *d = sl_registry_find(reg, spec->stages[i].plugin);
        for (const sl_option *op = d ? d->options : NULL; op && op->name; op++)
            if (op->type == SL_OPT_JSON && !strcmp(op->name, "resume"))
                return 1;
    }
    return 0;
}

/* Create and start the pipeline of the current phase. Call with s->mu held. On failure the
 * subtask is Paused with the error recorded (and persisted). */
static int run_phase(sl_subtask *s, sl_error *err)
{
    sl_worker *w = s->w;
    size_t n = splan(s)->nphases;
    int rc;
    if (n == 0) {
        rc = sl_error_set(err, SL_ENOTSUP, "the task compiler produced no pipeline for source %s "
                          "(the stored task no longer compiles: fix it with PUT)", s->source);
        goto failed;
    }
    const sl_pipeline_spec *spec = splan(s)->phases[s->phase];
    json_t *resume = NULL;
    if ((rc = sink_resume(w, spec, &resume, err)) < 0)
        goto failed;
    /* After a full phase a custom sink loaded, only the sink knows the dump's snapshot position
     * (the loader's finish marker in the target is mysql-sink's hand-over, not its): starting the
     * reader from the task's position instead would lose or repeat the changes in between. */
    const char *sink_plugin = NULL;
    for (size_t i = 0; i < spec->nstages; i++)
        if (!strcmp(spec->stages[i].id, "sink"))
            sink_plugin = spec->stages[i].plugin;
    if (!resume && s->phase > 0 && !strcmp(splan(s)->phase_names[s->phase], "incremental") &&
        sink_plugin && strcmp(sink_plugin, "mysql-sink") != 0 && takes_resume(w->registry, spec)) {
        rc = sl_error_set(err, SL_ESTATE, "stage sink (%s): no checkpoint after the full phase "
                          "(ctl \"checkpoint\"), so the incremental phase cannot start at the "
                          "dump's snapshot position", sink_plugin);
        goto failed;
    }
    sl_pipeline_spec *own = with_args(w->registry, spec, &s->args,
                                       s->fence ? s->fence : atomic_load(&w->fence_epoch), resume);
    if (resume && !own) {
        json_decref(resume);
        rc = sl_error_set(err, SL_ENOMEM, "out of memory");
        goto failed;
    }
    if (resume) {
        char *t = json_dumps(resume, JSON_COMPACT);
        sl_log(SL_LOG_INFO, "worker", "task %s source %s: the reader resumes from the sink's "
               "checkpoint %s", s->task, s->source, t ? t : "?");
        free(t);
    }
    json_decref(resume);
    rc = sl_pipeline_new(w->sched, w->registry, own ? own : spec, &w->state, &s->pipe, err);
    sl_pipeline_spec_free(own);
    if (rc != 0)
        goto failed;
    /* the last run's events stay counted: sync_status.total_events never goes down (nor
     * rows_not_found, target_warnings) */
    s->events_base += run_count(s->last, "total_events");
    s->not_found_base += run_count(s->last, "rows_not_found");
    s->warnings_base += run_count(s->last, "target_warnings");
    json_decref(s->last);
    s->last = NULL;
    sl_pipeline_on_end(s->pipe, on_end, s);
    if ((rc = sl_pipeline_start(s->pipe)) != 0) {
        sl_error pe = { 0 };
        sl_pipeline_error(s->pipe, &pe);
        sl_error_set(err, rc, "%s", pe.code ? pe.msg : sl_strerror(rc));
        drop_pipe(s);
        goto failed;
    }
    s->stage = SL_STAGE_RUNNING;
    set_error(s, NULL);
    s->err_class = SL_ERRCLASS_NONE;
    clock_gettime(CLOCK_MONOTONIC, &s->run_since);
    stage_save(s);
    return 0;
failed:
    paused(s, rc, err->msg);
    return rc;
}

/* A view of the leader: record the operator's wish for the bound worker to act on
 * (sl_subtask_follow), with a sequence number one past the last wish's. */
static int want_write(sl_subtask *s, sl_stage stage, const sl_start_args *args, sl_error *err)
{
    char *k = stage_key(s->task, s->source), *old = NULL;
    if (!k)
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    json_int_t seq = 0;
    if (sl_meta_get(s->w->store, "want", k, &old, NULL) == 0) {
        json_t *o = json_loads(old, 0, NULL);
        seq = json_integer_value(json_object_get(o, "seq"));
        json_decref(o);
        free(old);
    }
    json_t *o = json_pack("{s:s,s:I,s:{s:I,s:I,s:b}}", "stage", sl_stage_name(stage), "seq", seq + 1,
                          "start_args", "start_time", (json_int_t)(args ? args->start_time : 0),
                          "safe_mode_seconds", (json_int_t)(args ? args->safe_mode_seconds : 0),
                          "from_start", args && args->from_start);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    int rc = text ? sl_meta_put1(s->w->store, SL_META_PUT, "want", k, text, err)
                  : sl_error_set(err, SL_ENOMEM, "out of memory");
    free(text);
    free(k);
    return rc;
}

int sl_subtask_follow(sl_subtask *s, const char *want, sl_error *err)
{
    json_t *o = want ? json_loads(want, 0, NULL) : NULL;
    if (!o)
        return 0;
    long long seq = json_integer_value(json_object_get(o, "seq"));
    const char *st = json_string_value(json_object_get(o, "stage"));
    int run = st && !strcmp(st, "Running");
    json_t *sa = json_object_get(o, "start_args");
    sl_start_args args = { json_integer_value(json_object_get(sa, "start_time")),
                           json_integer_value(json_object_get(sa, "safe_mode_seconds")),
                           json_is_true(json_object_get(sa, "from_start")) };
    json_decref(o);
    pthread_mutex_lock(&s->mu);
    int act = seq != s->want_seq;
    s->want_seq = seq;
    pthread_mutex_unlock(&s->mu);
    if (!act)
        return 0;
    sl_log(SL_LOG_INFO, "worker", "task %s source %s: the operator asks it %s", s->task,
           s->source, run ? "started" : "stopped");
    int rc = 0;
    if (run)
        rc = sl_subtask_start_with(s, &args, err);
    else
        sl_subtask_stop(s, 1);
    /* the wish is acted on: say so in the stage record (a start of a running subtask saved
     * nothing) */
    pthread_mutex_lock(&s->mu);
    stage_save(s);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int sl_subtask_start(sl_subtask *s, sl_error *err)
{
    static const sl_start_args none = { 0, 0, 0 };
    return sl_subtask_start_with(s, &none, err);
}

int sl_subtask_ever_started(sl_subtask *s)
{
    pthread_mutex_lock(&s->mu);
    if (s->w->remote)
        remote_reload(s);
    int v = s->ever_started;
    pthread_mutex_unlock(&s->mu);
    return v;
}

int sl_subtask_writing(sl_subtask *s)
{
    pthread_mutex_lock(&s->mu);
    if (s->w->remote)
        remote_reload(s);
    int v = s->stage == SL_STAGE_RUNNING ||
            (s->stage == SL_STAGE_PAUSED && s->err_class == SL_ERRCLASS_TRANSIENT);
    pthread_mutex_unlock(&s->mu);
    return v;
}

int sl_subtask_start_with(sl_subtask *s, const sl_start_args *args, sl_error *err)
{
    /* a cleanup of an earlier task of this name must not remove what this start writes */
    sl__worker_wait_unheld(s->w, s->task);
    if (s->w->remote)
        return want_write(s, SL_STAGE_RUNNING, args, err);
    /* the stopper of an earlier run of this source (of this subtask, or of the one an update
     * or a delete replaced) takes no lock of the caller's: wait for it before taking s->mu */
    sl_error werr = { 0 };
    if (wait_reapers(s->w, s->task, s->source, 2000, &werr) != 0)
        return sl_error_set(err, SL_ESTATE, "%s; start it again once it has stopped", werr.msg);
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    if (s->stage == SL_STAGE_RUNNING && s->pipe) {
        pthread_mutex_unlock(&s->mu);
        return 0;
    }
    /* DM keeps the start arguments until the next start: a resume after a crash before the
     * first checkpoint starts at the same start_time again */
    s->args = *args;
    s->args.from_start = 0;   /* once: an automatic resume goes on from the phase it is in */
    s->ever_started = 1;
    if (s->stage == SL_STAGE_FINISHED || args->from_start) {
        /* Start again from the first phase: the loader skips every chunk it has recorded (none
         * after remove_meta, so the full phase dumps again from a new snapshot). */
        s->phase = 0;
    }
    /* A run still stopping (a stuck stage) must not write beside a new one: a stop just
     * answered has usually finished; give it a moment, then refuse. (Checked again under s->mu
     * for a stop in between.) */
    if (s->stopping) {
        pthread_mutex_unlock(&s->mu);
        return sl_error_set(err, SL_ESTATE, "source %s: its last run is still stopping; start "
                            "it again once it has stopped", s->source);
    }
    /* the operator takes over: a fresh count of automatic resumes */
    disarm(s);
    s->retries = 0;
    drop_pipe(s);
    rc = run_phase(s, err);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static void stop_as(sl_subtask *s, int persist, int wait)
{
    if (s->w->remote) {
        sl_error err = { 0 };
        if (persist && want_write(s, SL_STAGE_STOPPED, NULL, &err) != 0)
            sl_log(SL_LOG_ERROR, "worker", "task %s source %s: cannot record the stop: %s",
                   s->task, s->source, err.msg);
        return;
    }
    pthread_mutex_lock(&s->mu);
    if (persist)
        disarm(s);   /* an operator's stop; a server shutting down keeps nothing armed anyway */
    stop_detached(s);
    if (persist) {
        if (s->stage != SL_STAGE_FINISHED)
            s->stage = SL_STAGE_STOPPED;
        stage_save(s);
    }
    if (wait)
        wait_stopped_locked(s, -1);
    pthread_mutex_unlock(&s->mu);
}

void sl_subtask_stop(sl_subtask *s, int persist)
{
    stop_as(s, persist, 1);
}

void sl_subtask_stop_request(sl_subtask *s, int persist)
{
    stop_as(s, persist, 0);
}

void sl_subtask_free(sl_subtask *s)
{
    if (!s)
        return;
    sl__worker_remove(s->w, s);
    pthread_mutex_lock(&s->mu);
    s->dying = 1;
    stop_detached(s);   /* the last reference, the stopper's or this one, frees s */
    if (!s->w->remote)  /* s->last holds the run's events as far as they are known now */
        counts_keep(s);
    pthread_mutex_unlock(&s->mu);
    subtask_unref(s);
}

sl_stage sl_subtask_stage(sl_subtask *s)
{
    pthread_mutex_lock(&s->mu);
    if (s->w->remote)
        remote_reload(s);
    sl_stage st = s->stage;
    pthread_mutex_unlock(&s->mu);
    return st;
}

const char *sl_subtask_source(const sl_subtask *s)
{
    return s->source;
}

json_t *sl_subtask_status(sl_subtask *s)
{
    sl_worker *w = s->w;
    if (w->remote) {
        /* the running worker's own status, while one publishes it */
        json_t *live = w->live_status ? w->live_status(w->live_ud, s->task, s->source) : NULL;
        if (live)
            return live;
    }
    pthread_mutex_lock(&s->mu);
    if (w->remote)
        remote_reload(s);
    json_t *o = sl__subtask_status_locked(s);
    if (o && w->remote)   /* no worker runs it now (none bound, or it is starting) */
        json_object_set_new(o, "worker_name", json_string(""));
    pthread_mutex_unlock(&s->mu);
    return o;
}

/* ---- events ----------------------------------------------------------------------------------- */

/* The current phase's pipeline finished: keep the full phase's load and dump status, then start
 * the next phase or finish. Call with s->mu held. */
static void phase_finished(sl_subtask *s)
{
    drop_pipe(s);
    const char *name = splan(s)->phase_names[s->phase];
    if (!strcmp(name, "full")) {
        json_t *l = sl__stage_status(s->last, "loader"), *d = sl__stage_status(s->last, "mysql-dump");
        if (l) {
            json_decref(s->load_done);
            s->load_done = json_deep_copy(l);
        }
        if (d) {
            json_decref(s->dump_done);
            s->dump_done = json_deep_copy(d);
        }
    }
    if (s->phase + 1 < splan(s)->nphases) {
        sl_error err = { 0 };
        s->phase++;
        sl_log(SL_LOG_INFO, "worker", "task %s source %s: phase %s finished, starting %s", s->task,
               s->source, name, splan(s)->phase_names[s->phase]);
        run_phase(s, &err);
    } else {
        s->stage = SL_STAGE_FINISHED;
        stage_save(s);
        sl_log(SL_LOG_INFO, "worker", "task %s source %s: finished", s->task, s->source);
    }
}

void sl__subtask_event(sl_subtask *s, const sl__wevent *e)
{
    if (e->kind == SL__EV_SHARD_POLL) {
        /* not under s->mu: the coordinator's lock comes first (it posts events for s) */
        sl__shard_poll(s->w, s);
        return;
    }
    pthread_mutex_lock(&s->mu);
    if (s->dying) {
        pthread_mutex_unlock(&s->mu);
        return;
    }
    sl_error err = { 0 };
    switch (e->kind) {
    case SL__EV_RESTORE:
        if (s->stage == SL_STAGE_RUNNING && !s->pipe)
            run_phase(s, &err);
        break;
    case SL__EV_RETRY:
        if (s->stage != SL_STAGE_PAUSED || e->gen != s->retry_gen || s->pipe)
            break;   /* disarmed since: an operator acted, or another error armed a new one */
        s->retries++;
        s->resumes++;
        s->next_retry = 0;
        sl_log(SL_LOG_INFO, "worker", "task %s source %s: automatic resume %u after: %s", s->task,
               s->source, s->retries, s->error_msg ? s->error_msg : "");
        run_phase(s, &err);
        break;
    case SL__EV_SHARD_POLL:
        break;              /* handled above */
    case SL__EV_RESYNC:
        /* a shard DDL lock resolved: the new pipeline's sink applies what it held, read again
         * from its checkpoint (nothing of it was kept in memory) */
        if (s->stage != SL_STAGE_RUNNING || !s->pipe)
            break;
        sl_log(SL_LOG_INFO, "worker", "task %s source %s: restarting to apply the events a "
               "shard DDL lock held", s->task, s->source);
        sl_pipeline_stop(s->pipe);
        drop_pipe(s);
        run_phase(s, &err);
        break;
    case SL__EV_END: {
        if (s->stage != SL_STAGE_RUNNING)
            break;
        /* An event of a pipeline that a control call has replaced since is stale. (A new
         * pipeline at the same address is Running, or has ended and posted its own event:
         * either way, reading its stage now is right.) */
        sl_stage st = s->pipe == e->p ? sl_pipeline_stage(e->p) : SL_STAGE_RUNNING;
        if (st == SL_STAGE_FINISHED) {
            phase_finished(s);
        } else if (st == SL_STAGE_PAUSED || st == SL_STAGE_STOPPED) {
            sl_error pe = { 0 };
            sl_pipeline_error(e->p, &pe);
            drop_pipe(s);
            paused(s, pe.code, pe.msg);
        }
        break;
    }
    }
    pthread_mutex_unlock(&s->mu);
}
