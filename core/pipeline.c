/*
 * pipeline.c - the pipeline executor (runtime.h): instantiates the stages of a spec, connects
 * them with bounded queues, runs one scheduler thread per stage, and drives the stage machine
 * New -> Running -> Paused/Stopped/Finished with cooperative, prompt pause and stop.
 *
 * Who ends a run: exactly one party settles the instances (flush + stop) when a run ends:
 * either the control call (pause/stop) that asked for it, or, when the run ends by itself
 * (every sink reached end of stream, or a plugin failed), the last stage thread to exit.
 * `ctl_ending` under `mu` decides which.
 */
#include "host.h"
#include "queue.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sluice/clock.h"
#include "sluice/log.h"

typedef struct stage_rt {
    sl_pipeline *p;
    uint32_t     idx;
    char        *id, *plugin;
    const sl_plugin_descriptor *d;
    void        *config;
    void        *self;
    sl_ctx      *ctx;
    int          created;   /* create() succeeded: destroy() is owed */
    int          started;   /* start() succeeded: stop() is owed */
    int          eos;       /* reached end of stream (flushed, outputs closed) in this run */
    int          failed;    /* failed in this run */
    uint32_t     nin;       /* in-degree: producers of `in` */
    uint32_t    *outs;      /* downstream stage indexes */
    uint32_t     nouts;
    sl__queue   *in;        /* this run's input queue; NULL for sources */
    atomic_long  queued;    /* batches in `in` (the status' queue depth; read without a lock) */
    sl__thread  *thr;
} stage_rt;

struct sl_pipeline {
    sl_scheduler   *sched;
    char           *name;
    sl_state_store *own_state;
    const sl_state_store *state;
    atomic_int      stop;      /* host->should_stop of every instance */
    pthread_mutex_t ctl;       /* serializes control calls */
    pthread_mutex_t mu;        /* guards what follows */
    pthread_cond_t  cv;
    sl_stage        stage;
    sl_error        err;
    uint32_t        active;    /* stage threads of this run still running */
    int             ctl_ending;
    int             settling;
    sl_pipeline_end_fn on_end; /* told when a run ends by itself (set before start) */
    void           *on_end_ud;
    size_t          n;
    stage_rt       *st;
};

static void drop_batch(void *item) { sl__batch_unref(item); }

/* ---- failure and forwarding (called from stage and plugin threads) ---- */

static void cancel_queues(sl_pipeline *p)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->st[i].in)
            sl__queue_cancel(p->st[i].in);
}

/* Record the first error of the run, ask everyone to stop and wake every blocked thread. */
static void pipeline_fail(sl_pipeline *p, stage_rt *s, int code, const char *msg)
{
    pthread_mutex_lock(&p->mu);
    s->failed = 1;
    if (p->err.code == 0)
        sl_error_set(&p->err, code, "stage %s (%s): %s", s->id, s->plugin, msg);
    pthread_mutex_unlock(&p->mu);
    atomic_store(&p->stop, 1);
    cancel_queues(p);
}

/* A callback returned rc < 0: use the instance's message if it called host->fail. */
static void stage_failed(stage_rt *s, int rc, const char *what)
{
    sl_error e;
    sl__ctx_error(s->ctx, &e);
    if (e.code == 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s returned %d (%s)", what, rc, sl_strerror(rc));
        sl_log(SL_LOG_ERROR, s->ctx->prefix, "%s", msg);
        pipeline_fail(s->p, s, rc, msg);
    } else {
        pipeline_fail(s->p, s, e.code, e.msg);
    }
}

/* Batches waiting in a stage's input queue (host->input_pending). */
static size_t hook_pending(void *owner, sl_ctx *ctx)
{
    sl_pipeline *p = owner;
    const stage_rt *s = &p->st[ctx->index];
    return s->in ? sl__queue_len(s->in) : 0;
}

static void hook_failed(void *owner, sl_ctx *ctx, int code)
{
    sl_pipeline *p = owner;
    sl_error e;
    sl__ctx_error(ctx, &e);
    pipeline_fail(p, &p->st[ctx->index], code, e.msg);
}

/* Hand b to every output of s (one reference each); consumes the caller's reference. */
static int forward(sl_pipeline *p, stage_rt *s, sl_batch *b)
{
    if (atomic_load_explicit(&p->stop, memory_order_relaxed)) {
        sl__batch_unref(b);
        return SL_ESTOPPED;
    }
    sl__metric_add(s->ctx, "batches_out", 1);
    sl__metric_add(s->ctx, "events_out", b->n);
    if (s->nouts == 0) {
        sl__batch_unref(b);
        return 0;
    }
    for (uint32_t i = 1; i < s->nouts; i++)
        sl__batch_ref(b);
    for (uint32_t i = 0; i < s->nouts; i++) {
        if (sl__queue_push(p->st[s->outs[i]].in, b, b->bytes) != 0) {
            for (uint32_t j = i; j < s->nouts; j++)
                sl__batch_unref(b);
            return SL_ESTOPPED;
        }
        atomic_fetch_add_explicit(&p->st[s->outs[i]].queued, 1, memory_order_relaxed);
    }
    return 0;
}

static int hook_emit(void *owner, sl_ctx *ctx, sl_batch *b)
{
    sl_pipeline *p = owner;
    return forward(p, &p->st[ctx->index], b);
}

/* ---- stage threads ---- */

static void end_of_stream(stage_rt *s)
{
    sl_pipeline *p = s->p;
    if (s->d->flush) {
        int rc = s->d->flush(s->self);
        if (rc < 0) {
            stage_failed(s, rc, "flush");
            return;
        }
    }
    s->eos = 1;
    for (uint32_t i = 0; i < s->nouts; i++)
        sl__queue_close(p->st[s->outs[i]].in);
}

static void settle_instances(sl_pipeline *p);

static void thread_exit(stage_rt *s)
{
    sl_pipeline *p = s->p;
    pthread_mutex_lock(&p->mu);
    if (--p->active > 0 || p->ctl_ending) {
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        return;
    }
    /* The run ended by itself and this is its last thread: settle it. */
    p->settling = 1;
    pthread_mutex_unlock(&p->mu);

    settle_instances(p);

    pthread_mutex_lock(&p->mu);
    int all_eos = 1;
    for (size_t i = 0; i < p->n; i++)
        all_eos &= p->st[i].eos;
    if (p->err.code == 0 && !all_eos)
        sl_error_set(&p->err, SL_EINTERNAL, "pipeline ended without an error or end of stream");
    p->stage = p->err.code ? SL_STAGE_PAUSED : SL_STAGE_FINISHED;
    p->settling = 0;
    sl_stage end = p->stage;
    if (p->err.code)
        sl_log(SL_LOG_ERROR, p->name, "paused: %s", p->err.msg);
    else
        sl_log(SL_LOG_INFO, p->name, "finished");
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    /* Last: the listener may hand the pipeline to a thread that frees it (which joins this one). */
    if (p->on_end)
        p->on_end(p->on_end_ud, p, end);
}

static void run_source(stage_rt *s)
{
    sl_pipeline *p = s->p;
    int rc = s->d->run(s->self);
    int stopping = atomic_load(&p->stop);
    if (rc < 0 && rc != SL_ESTOPPED)
        stage_failed(s, rc, "run");
    else if (stopping)
        return;
    else if (rc == SL_ESTOPPED)
        stage_failed(s, rc, "run (no stop was requested)");
    else
        end_of_stream(s);
}

static void run_stage(stage_rt *s)
{
    sl_pipeline *p = s->p;
    int transform = s->d->kind == SL_PLUGIN_TRANSFORM;
    for (;;) {
        void *item;
        int rc = sl__queue_pop(s->in, &item);
        if (rc == SL_DONE) {
            end_of_stream(s);
            return;
        }
        if (rc != 0)
            return;
        sl_batch *b = item;
        atomic_fetch_sub_explicit(&s->queued, 1, memory_order_relaxed);
        sl__metric_add(s->ctx, "batches_in", 1);
        sl__metric_add(s->ctx, "events_in", b->n);
        rc = s->d->process(s->self, b);
        if (rc < 0) {
            sl__batch_unref(b);
            if (rc != SL_ESTOPPED || !atomic_load(&p->stop))
                stage_failed(s, rc, "process");
            return;
        }
        if (transform && rc != SL_DROP) {
            if (forward(p, s, b) != 0)
                return;
        } else {
            sl__batch_unref(b);
        }
    }
}

static void stage_main(void *arg)
{
    stage_rt *s = arg;
    if (s->d->kind == SL_PLUGIN_SOURCE)
        run_source(s);
    else
        run_stage(s);
    thread_exit(s);
}

/* ---- control (under p->ctl) ---- */

/* flush() then stop() on every started instance; no stage thread may be running. */
static void settle_instances(sl_pipeline *p)
{
    for (size_t i = 0; i < p->n; i++) {
        stage_rt *s = &p->st[i];
        if (!s->started)
            continue;
        if (!s->eos && !s->failed && s->d->flush) {
            int rc = s->d->flush(s->self);
            if (rc < 0)
                stage_failed(s, rc, "flush");
        }
        if (s->d->stop)
            s->d->stop(s->self);
        s->started = 0;
    }
}

/* Join the threads of the last run and free its queues (dropping in-flight batches). */
static void reap(sl_pipeline *p)
{
    for (size_t i = 0; i < p->n; i++) {
        sl__thread_join(p->st[i].thr);
        p->st[i].thr = NULL;
    }
    for (size_t i = 0; i < p->n; i++) {
        sl__queue_free(p->st[i].in, drop_batch);
        p->st[i].in = NULL;
    }
}

/* End a Running run from a control call; returns with stage still Running if it was. */
static int end_run(sl_pipeline *p)
{
    /* caller holds mu with stage == RUNNING and ctl_ending set */
    atomic_store(&p->stop, 1);
    pthread_mutex_unlock(&p->mu);
    cancel_queues(p);
    pthread_mutex_lock(&p->mu);
    while (p->active > 0 || p->settling)
        pthread_cond_wait(&p->cv, &p->mu);
    int was_running = p->stage == SL_STAGE_RUNNING;
    pthread_mutex_unlock(&p->mu);
    if (was_running)
        settle_instances(p);
    reap(p);
    pthread_mutex_lock(&p->mu);
    return was_running;
}

static int pause_or_stop(sl_pipeline *p, int final)
{
    if (!p)
        return SL_EINVAL;
    int rc = 0;
    pthread_mutex_lock(&p->ctl);
    pthread_mutex_lock(&p->mu);
    if (p->stage == SL_STAGE_RUNNING) {
        p->ctl_ending = 1;
        int was_running = end_run(p);
        if (was_running || final)
            p->stage = final ? SL_STAGE_STOPPED : SL_STAGE_PAUSED;
        p->ctl_ending = 0;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    } else {
        sl_stage st = p->stage;
        pthread_mutex_unlock(&p->mu);
        reap(p);   /* a run that ended by itself left its threads to join */
        if (final) {
            settle_instances(p);
            pthread_mutex_lock(&p->mu);
            p->stage = SL_STAGE_STOPPED;
            pthread_cond_broadcast(&p->cv);
            pthread_mutex_unlock(&p->mu);
        } else if (st != SL_STAGE_PAUSED) {
            rc = SL_ESTATE;
        }
    }
    if (rc == 0)
        sl_log(SL_LOG_INFO, p->name, "%s", final ? "stopped" : "paused");
    pthread_mutex_unlock(&p->ctl);
    return rc;
}

int sl_pipeline_pause(sl_pipeline *p) { return pause_or_stop(p, 0); }
int sl_pipeline_stop(sl_pipeline *p) { return pause_or_stop(p, 1); }

int sl_pipeline_start(sl_pipeline *p)
{
    if (!p)
        return SL_EINVAL;
    pthread_mutex_lock(&p->ctl);
    pthread_mutex_lock(&p->mu);
    if (p->stage != SL_STAGE_NEW && p->stage != SL_STAGE_PAUSED) {
        pthread_mutex_unlock(&p->mu);
        pthread_mutex_unlock(&p->ctl);
        return SL_ESTATE;
    }
    p->err = (sl_error){ 0 };
    pthread_mutex_unlock(&p->mu);
    reap(p);

    /* A fresh run: empty queues (sources resume from their own checkpoints), no error. */
    int rc = 0;
    atomic_store(&p->stop, 0);
    uint32_t cap = sl__scheduler_queue_batches(p->sched);
    for (size_t i = 0; i < p->n; i++) {
        stage_rt *s = &p->st[i];
        s->eos = s->failed = 0;
        atomic_store(&s->queued, 0);
        sl__ctx_clear_error(s->ctx);
        if (s->nin && rc == 0)
            rc = sl__queue_new(cap, 0, s->nin, &s->in);
    }
    if (rc < 0) {
        pthread_mutex_lock(&p->mu);
        sl_error_set(&p->err, rc, "cannot create stage queues: %s", sl_strerror(rc));
        goto failed;
    }
    for (size_t i = 0; i < p->n && rc == 0; i++) {
        stage_rt *s = &p->st[i];
        if (s->d->start && (rc = s->d->start(s->self)) < 0)
            stage_failed(s, rc, "start");
        else
            s->started = 1;
    }
    pthread_mutex_lock(&p->mu);
    if (rc < 0)
        goto failed;

    p->stage = SL_STAGE_RUNNING;
    p->active = (uint32_t)p->n;
    p->ctl_ending = 0;
    pthread_mutex_unlock(&p->mu);
    sl_log(SL_LOG_INFO, p->name, "running");
    for (size_t i = 0; i < p->n; i++) {
        char tname[32];
        snprintf(tname, sizeof tname, "sl-%s", p->st[i].id);
        rc = sl__thread_start(p->sched, tname, stage_main, &p->st[i], &p->st[i].thr);
        if (rc < 0) {
            pthread_mutex_lock(&p->mu);
            /* Threads that never started never exit: take them out, and end the run here. */
            p->active -= (uint32_t)(p->n - i);
            p->ctl_ending = 1;
            if (p->err.code == 0)
                sl_error_set(&p->err, rc, "cannot start a thread for stage %s: %s", p->st[i].id,
                             rc == SL_ELIMIT ? "the scheduler's thread limit is reached"
                                             : sl_strerror(rc));
            end_run(p);
            p->stage = SL_STAGE_PAUSED;
            p->ctl_ending = 0;
            sl_log(SL_LOG_ERROR, p->name, "paused: %s", p->err.msg);
            pthread_cond_broadcast(&p->cv);
            pthread_mutex_unlock(&p->mu);
            pthread_mutex_unlock(&p->ctl);
            return rc;
        }
    }
    pthread_mutex_unlock(&p->ctl);
    return 0;

failed:
    /* caller holds mu */
    pthread_mutex_unlock(&p->mu);
    settle_instances(p);
    reap(p);
    pthread_mutex_lock(&p->mu);
    p->stage = SL_STAGE_PAUSED;
    rc = p->err.code;
    sl_log(SL_LOG_ERROR, p->name, "paused: %s", p->err.msg);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_mutex_unlock(&p->ctl);
    return rc;
}

int sl_pipeline_resume(sl_pipeline *p)
{
    return sl_pipeline_start(p);
}

void sl_pipeline_on_end(sl_pipeline *p, sl_pipeline_end_fn fn, void *ud)
{
    pthread_mutex_lock(&p->ctl);
    p->on_end = fn;
    p->on_end_ud = ud;
    pthread_mutex_unlock(&p->ctl);
}

int sl_pipeline_cleanup(sl_pipeline *p, unsigned what, sl_error *err)
{
    int rc = 0;
    pthread_mutex_lock(&p->ctl);
    pthread_mutex_lock(&p->mu);
    sl_stage st = p->stage;
    pthread_mutex_unlock(&p->mu);
    if (st != SL_STAGE_NEW) {
        pthread_mutex_unlock(&p->ctl);
        return sl_error_set(err, SL_ESTATE, "pipeline %s: cleanup needs a pipeline that never ran",
                            p->name);
    }
    for (size_t i = 0; i < p->n; i++) {
        stage_rt *s = &p->st[i];
        if (!SL_DESCRIPTOR_HAS(s->d, cleanup) || !s->d->cleanup)
            continue;
        sl__ctx_clear_error(s->ctx);
        int r = s->d->cleanup(s->self, what);
        if (r < 0) {
            sl_error e;
            sl__ctx_error(s->ctx, &e);
            /* go on: each plugin removes what it can; the first failure is reported */
            if (rc == 0) {
                rc = r;
                sl_error_set(err, r, "stage %s (%s): cleanup: %s", s->id, s->plugin,
                             e.code ? e.msg : sl_strerror(r));
            }
        }
    }
    pthread_mutex_unlock(&p->ctl);
    return rc;
}

int sl_pipeline_ctl(sl_pipeline *p, const char *stage_id, const char *request, char **reply,
                    sl_error *err)
{
    *reply = NULL;
    int rc = 0;
    pthread_mutex_lock(&p->ctl);
    pthread_mutex_lock(&p->mu);
    sl_stage st = p->stage;
    pthread_mutex_unlock(&p->mu);
    stage_rt *s = NULL;
    for (size_t i = 0; i < p->n; i++)
        if (!strcmp(p->st[i].id, stage_id))
            s = &p->st[i];
    if (st != SL_STAGE_NEW)
        rc = sl_error_set(err, SL_ESTATE, "pipeline %s: ctl needs a pipeline that never ran",
                          p->name);
    else if (!s || !SL_DESCRIPTOR_HAS(s->d, ctl) || !s->d->ctl)
        rc = sl_error_set(err, SL_ENOTSUP, "pipeline %s has no stage %s that takes requests",
                          p->name, stage_id);
    else {
        sl__ctx_clear_error(s->ctx);
        char *out = NULL;
        rc = s->d->ctl(s->self, request, &out);
        /* the plugin's text is the host allocator's; the caller gets its own malloc'd copy */
        if (rc == 0 && out && !(*reply = strdup(out)))
            rc = sl_error_set(err, SL_ENOMEM, "out of memory");
        sl__host()->free(out);
        if (rc < 0 && !err->code) {
            sl_error e;
            sl__ctx_error(s->ctx, &e);
            sl_error_set(err, rc, "%s", e.code ? e.msg : sl_strerror(rc));
        }
    }
    pthread_mutex_unlock(&p->ctl);
    return rc;
}

sl_stage sl_pipeline_wait(sl_pipeline *p, int timeout_ms)
{
    struct timespec dl = sl_timespec_in(CLOCK_MONOTONIC, timeout_ms >= 0 ? timeout_ms : 0);
    pthread_mutex_lock(&p->mu);
    while (p->stage == SL_STAGE_RUNNING) {
        if (timeout_ms < 0)
            pthread_cond_wait(&p->cv, &p->mu);
        else if (pthread_cond_timedwait(&p->cv, &p->mu, &dl) == ETIMEDOUT)
            break;
    }
    sl_stage st = p->stage;
    pthread_mutex_unlock(&p->mu);
    return st;
}

sl_stage sl_pipeline_stage(sl_pipeline *p)
{
    pthread_mutex_lock(&p->mu);
    sl_stage st = p->stage;
    pthread_mutex_unlock(&p->mu);
    return st;
}

void sl_pipeline_error(sl_pipeline *p, sl_error *out)
{
    pthread_mutex_lock(&p->mu);
    *out = p->err;
    pthread_mutex_unlock(&p->mu);
}

char *sl_pipeline_status_json(sl_pipeline *p)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    pthread_mutex_lock(&p->mu);
    json_object_set_new(o, "name", json_string(p->name));
    json_object_set_new(o, "stage", json_string(sl_stage_name(p->stage)));
    if (p->err.code) {
        json_object_set_new(o, "error_msg", json_string(p->err.msg));
        json_object_set_new(o, "error_code", json_integer(p->err.code));
    }
    pthread_mutex_unlock(&p->mu);
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < p->n; i++) {
        stage_rt *s = &p->st[i];
        json_t *so = json_object();
        json_object_set_new(so, "id", json_string(s->id));
        json_object_set_new(so, "plugin", json_string(s->plugin));
        char *m = sl__ctx_metrics_json(s->ctx);
        json_object_set_new(so, "metrics", m ? json_loads(m, 0, NULL) : json_object());
        free(m);
        if (s->nin)   /* a push and its count are not one step: never below 0 */
            json_object_set_new(so, "queue_batches", json_integer(atomic_load(&s->queued) > 0 ?
                                                                  atomic_load(&s->queued) : 0));
        if (s->d->status) {
            char *st = s->d->status(s->self);
            json_t *sj = st ? json_loads(st, 0, NULL) : NULL;
            json_object_set_new(so, "status", sj ? sj : json_object());
            free(st);   /* host->free is free() */
        }
        json_array_append_new(arr, so);
    }
    json_object_set_new(o, "stages", arr ? arr : json_array());
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* ---- construction ---- */

static int check_spec(const sl_registry *reg, const sl_pipeline_spec *spec, sl_error *err)
{
    if (!spec || spec->nstages == 0)
        return sl_error_set(err, SL_EINVAL, "pipeline spec has no stages");
    for (size_t i = 0; i < spec->nstages; i++) {
        const sl_stage_spec *ss = &spec->stages[i];
        if (!ss->id || !*ss->id || !ss->plugin)
            return sl_error_set(err, SL_EINVAL, "stage %zu: missing id or plugin", i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(spec->stages[j].id, ss->id) == 0)
                return sl_error_set(err, SL_EINVAL, "stage id \"%s\" is used twice", ss->id);
        if (!sl_registry_find(reg, ss->plugin))
            return sl_error_set(err, SL_ENOENT, "stage %s: no plugin named \"%s\"", ss->id,
                                ss->plugin);
    }
    for (size_t e = 0; e < spec->nedges; e++) {
        sl_edge_spec ed = spec->edges[e];
        if (ed.from >= spec->nstages || ed.to >= spec->nstages || ed.from == ed.to)
            return sl_error_set(err, SL_EINVAL, "edge %zu: bad stage index %u -> %u", e,
                                ed.from, ed.to);
        for (size_t f = 0; f < e; f++)
            if (spec->edges[f].from == ed.from && spec->edges[f].to == ed.to)
                return sl_error_set(err, SL_EINVAL, "edge %u -> %u is given twice", ed.from, ed.to);
    }
    return 0;
}

/* Kahn's algorithm: a cycle would deadlock the queues. */
static int check_acyclic(sl_pipeline *p, sl_error *err)
{
    uint32_t *deg = calloc(p->n, sizeof *deg), *todo = calloc(p->n, sizeof *todo);
    size_t head = 0, tail = 0, seen = 0;
    int rc = 0;
    if (!deg || !todo) {
        rc = sl_error_set(err, SL_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < p->n; i++)
        if ((deg[i] = p->st[i].nin) == 0)
            todo[tail++] = (uint32_t)i;
    while (head < tail) {
        stage_rt *s = &p->st[todo[head++]];
        seen++;
        for (uint32_t k = 0; k < s->nouts; k++)
            if (--deg[s->outs[k]] == 0)
                todo[tail++] = s->outs[k];
    }
    if (seen != p->n)
        rc = sl_error_set(err, SL_EINVAL, "pipeline %s has a cycle", p->name);
out:
    free(deg);
    free(todo);
    return rc;
}

int sl_pipeline_new(sl_scheduler *sched, const sl_registry *reg, const sl_pipeline_spec *spec,
                    const sl_state_store *state, sl_pipeline **out, sl_error *err)
{
    *out = NULL;
    int rc = check_spec(reg, spec, err);
    if (rc < 0)
        return rc;
    sl_pipeline *p = calloc(1, sizeof *p);
    if (!p)
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    p->sched = sched;
    p->name = strdup(spec->name ? spec->name : "pipeline");
    p->n = spec->nstages;
    p->st = calloc(p->n, sizeof *p->st);
    pthread_mutex_init(&p->ctl, NULL);
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&p->stop, 0);
    p->stage = SL_STAGE_NEW;
    if (!state)
        state = p->own_state = sl__memstate_new();
    p->state = state;
    if (!p->name || !p->st || !p->state) {
        sl_pipeline_free(p);
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    }

    sl__ctx_hooks hooks = { .owner = p, .emit = hook_emit, .failed = hook_failed, .pending = hook_pending };
    for (size_t i = 0; i < p->n; i++) {
        stage_rt *s = &p->st[i];
        const sl_stage_spec *ss = &spec->stages[i];
        char prefix[512];
        s->p = p;
        s->idx = (uint32_t)i;
        s->d = sl_registry_find(reg, ss->plugin);
        s->id = strdup(ss->id);
        s->plugin = strdup(ss->plugin);
        snprintf(prefix, sizeof prefix, "%s/%s", p->name, ss->id);
        s->ctx = sl__ctx_new(prefix, sched, p->state, &p->stop, &hooks);
        for (size_t e = 0; e < spec->nedges; e++) {
            if (spec->edges[e].to == i)
                s->nin++;
            if (spec->edges[e].from == i)
                s->nouts++;
        }
        s->outs = calloc(s->nouts ? s->nouts : 1, sizeof *s->outs);
        if (!s->id || !s->plugin || !s->ctx || !s->outs) {
            sl_pipeline_free(p);
            return sl_error_set(err, SL_ENOMEM, "out of memory");
        }
        s->ctx->index = (uint32_t)i;
        s->nouts = 0;
        for (size_t e = 0; e < spec->nedges; e++)
            if (spec->edges[e].from == i)
                s->outs[s->nouts++] = spec->edges[e].to;
        if (s->d->kind == SL_PLUGIN_SOURCE && s->nin) {
            rc = sl_error_set(err, SL_EINVAL, "stage %s: source plugin %s cannot have inputs",
                              s->id, s->plugin);
        } else if (s->d->kind != SL_PLUGIN_SOURCE && !s->nin) {
            rc = sl_error_set(err, SL_EINVAL, "stage %s: plugin %s needs an input", s->id, s->plugin);
        } else if (s->d->kind == SL_PLUGIN_SINK && s->nouts) {
            rc = sl_error_set(err, SL_EINVAL, "stage %s: sink plugin %s cannot have outputs",
                              s->id, s->plugin);
        }
        if (rc < 0) {
            sl_pipeline_free(p);
            return rc;
        }
    }
    if ((rc = check_acyclic(p, err)) < 0) {
        sl_pipeline_free(p);
        return rc;
    }
    for (size_t i = 0; i < p->n; i++) {
        stage_rt *s = &p->st[i];
        if ((rc = sl_options_fill(s->d, spec->stages[i].options_json, &s->config, err)) < 0) {
            sl_error_prefix(err, "stage %s", s->id);
            sl_pipeline_free(p);
            return rc;
        }
        rc = s->d->create(sl__host(), s->ctx, s->config, &s->self);
        if (rc < 0) {
            sl_error e;
            sl__ctx_error(s->ctx, &e);
            if (e.code)
                sl_error_set(err, rc, "stage %s (%s): %s", s->id, s->plugin, e.msg);
            else
                sl_error_set(err, rc, "stage %s (%s): create returned %d (%s)", s->id, s->plugin,
                             rc, sl_strerror(rc));
            sl_pipeline_free(p);
            return rc;
        }
        s->created = 1;
    }
    *out = p;
    return 0;
}

void sl_pipeline_free(sl_pipeline *p)
{
    if (!p)
        return;
    if (p->st && p->n) {
        pthread_mutex_lock(&p->mu);
        int stop = p->stage != SL_STAGE_STOPPED;
        pthread_mutex_unlock(&p->mu);
        if (stop)
            sl_pipeline_stop(p);
        reap(p);
    }
    for (size_t i = 0; p->st && i < p->n; i++) {
        stage_rt *s = &p->st[i];
        if (s->created)
            s->d->destroy(s->self);
        sl_options_free(s->d, s->config);
        sl__ctx_free(s->ctx);
        free(s->outs);
        free(s->id);
        free(s->plugin);
    }
    free(p->st);
    sl__memstate_free(p->own_state);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->ctl);
    free(p->name);
    free(p);
}
