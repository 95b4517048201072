/*
 * worker.c - the worker (worker.h): its event thread, which moves subtasks on when their
 * pipelines end by themselves; the plugin state it keeps in the metadata store; and the cleanup
 * of a deleted task through the plugins' own cleanup slot.
 *
 * Why an event thread and not the pipeline's own thread: the next phase is a new pipeline whose
 * start connects to servers, and the ended pipeline must be freed, which joins the very thread
 * that would do it. The listener only queues; the event thread does the work.
 */
#include "worker_int.h"
#include "shard.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/clock.h"
#include "sluice/log.h"

/* ---- plugin state in the store ------------------------------------------------------------ */

static int state_put(void *ud, const char *key, const char *value)
{
    sl_worker *w = ud;
    return sl_meta_put1(w->store, SL_META_PUT, "state", key, value, NULL);
}

static char *state_get(void *ud, const char *key)
{
    sl_worker *w = ud;
    char *v = NULL;
    return sl_meta_get(w->store, "state", key, &v, NULL) == 0 ? v : NULL;
}

void sl_worker_set_fence(sl_worker *w, long long epoch)
{
    atomic_store(&w->fence_epoch, epoch);
}

static int shard_request(void *ud, const char *prefix, const char *request, char **reply)
{
    return sl__shard_request(ud, prefix, request, reply);
}

void sl__worker_add(sl_worker *w, sl_subtask *s)
{
    pthread_mutex_lock(&w->shard_mu);
    if (w->nsubs == w->csubs) {
        size_t nc = w->csubs ? w->csubs * 2 : 16;
        sl_subtask **p = realloc(w->subs, nc * sizeof *p);
        if (p) {
            w->subs = p;
            w->csubs = nc;
        }
    }
    /* without room the subtask is not found by the coordinator: its locks are not restarted
     * by themselves (a start resumes them) */
    if (w->nsubs < w->csubs)
        w->subs[w->nsubs++] = s;
    pthread_mutex_unlock(&w->shard_mu);
}

void sl__worker_remove(sl_worker *w, sl_subtask *s)
{
    pthread_mutex_lock(&w->shard_mu);
    int other = 0;
    for (size_t i = 0; i < w->nsubs; i++)
        if (w->subs[i] == s)
            w->subs[i--] = w->subs[--w->nsubs];
        else
            other |= !strcmp(w->subs[i]->task, s->task) && !strcmp(w->subs[i]->source, s->source);
    /* the held shards it waited on go with it: a subtask made again for the task and source
     * (a task created again with keep_meta, a source bound here again) asks about them afresh,
     * and its polls must not be taken for armed by these */
    if (!other)
        sl__shard_forget_waits(w, s->task, s->source);
    pthread_mutex_unlock(&w->shard_mu);
}

size_t sl_worker_shard_forget_ops(const char *prefix, sl_meta_op *ops)
{
    ops[0] = (sl_meta_op){ SL_META_DELETE_PREFIX, "shard_lock", prefix, NULL };
    ops[1] = (sl_meta_op){ SL_META_DELETE_PREFIX, "shard_join", prefix, NULL };
    return 2;
}

size_t sl_worker_forget_ops(const char *prefix, int keep_meta, sl_meta_op *ops)
{
    size_t n = 0;
    ops[n++] = (sl_meta_op){ SL_META_DELETE_PREFIX, "stage", prefix, NULL };
    ops[n++] = (sl_meta_op){ SL_META_DELETE_PREFIX, "want", prefix, NULL };
    if (keep_meta)
        return n;
    ops[n++] = (sl_meta_op){ SL_META_DELETE_PREFIX, "state", prefix, NULL };
    return n + sl_worker_shard_forget_ops(prefix, ops + n);
}

/* ---- events ------------------------------------------------------------------------------- */

static sl__wevent *event_new(sl__wkind kind, sl_subtask *s, sl_pipeline *p)
{
    sl__wevent *e = calloc(1, sizeof *e);
    if (!e) {
        /* The subtask stays as it is until a status or start looks at it; say so. */
        sl_log(SL_LOG_ERROR, "worker", "task %s source %s: out of memory queueing an event",
               s->task, s->source);
        return NULL;
    }
    e->kind = kind;
    e->s = s;
    e->p = p;
    return e;
}

static int before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static void post_timed(sl_worker *w, sl__wevent *e, unsigned ms)
{
    e->due = sl_timespec_in(CLOCK_MONOTONIC, (long)ms);
    pthread_mutex_lock(&w->mu);
    sl__wevent **pp = &w->timed;
    while (*pp && !before(&e->due, &(*pp)->due))
        pp = &(*pp)->next;
    e->next = *pp;
    *pp = e;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

void sl__worker_post_retry(sl_worker *w, sl_subtask *s, unsigned gen, unsigned seconds)
{
    sl__wevent *e = event_new(SL__EV_RETRY, s, NULL);
    if (!e)
        return;
    e->gen = gen;
    post_timed(w, e, seconds * 1000);
}

void sl__worker_post_in(sl_worker *w, sl__wkind kind, sl_subtask *s, unsigned ms)
{
    sl__wevent *e = event_new(kind, s, NULL);
    if (e)
        post_timed(w, e, ms);
}

void sl__worker_post(sl_worker *w, sl__wkind kind, sl_subtask *s, sl_pipeline *p)
{
    sl__wevent *e = event_new(kind, s, p);
    if (!e)
        return;
    pthread_mutex_lock(&w->mu);
    if (w->tail)
        w->tail->next = e;
    else
        w->head = e;
    w->tail = e;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

void sl__worker_forget(sl_worker *w, sl_subtask *s)
{
    pthread_mutex_lock(&w->mu);
    sl__wevent **pp = &w->head, *prev = NULL;
    while (*pp) {
        sl__wevent *e = *pp;
        if (e->s == s) {
            *pp = e->next;
            if (w->tail == e)
                w->tail = prev;
            free(e);
        } else {
            prev = e;
            pp = &e->next;
        }
    }
    for (pp = &w->timed; *pp;) {
        sl__wevent *e = *pp;
        if (e->s == s) {
            *pp = e->next;
            free(e);
        } else {
            pp = &e->next;
        }
    }
    while (w->busy == s)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
}

/* The next event: a queued one, else a retry that is due; NULL when none is (yet). Call with
 * w->mu held. */
static sl__wevent *next_event(sl_worker *w)
{
    sl__wevent *e = w->head;
    if (e) {
        w->head = e->next;
        if (!w->head)
            w->tail = NULL;
        return e;
    }
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (w->timed && !before(&now, &w->timed->due)) {
        e = w->timed;
        w->timed = e->next;
        return e;
    }
    return NULL;
}

static void event_main(void *arg)
{
    sl_worker *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        sl__wevent *e = NULL;
        while (!w->stopping && !(e = next_event(w))) {
            if (w->timed)
                pthread_cond_timedwait(&w->cv, &w->mu, &w->timed->due);
            else
                pthread_cond_wait(&w->cv, &w->mu);
        }
        if (w->stopping) {
            free(e);
            break;
        }
        w->busy = e->s;
        pthread_mutex_unlock(&w->mu);
        sl__subtask_event(e->s, e);
        free(e);
        pthread_mutex_lock(&w->mu);
        w->busy = NULL;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
}

/* ---- the worker --------------------------------------------------------------------------- */

int sl_worker_new(const sl_worker_opts *o, sl_worker **out, sl_error *err)
{
    *out = NULL;
    sl_worker *w = calloc(1, sizeof *w);
    if (!w || !(w->name = strdup(o->name ? o->name : "worker1"))) {
        free(w);
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    }
    w->store = o->store;
    w->sched = o->sched;
    w->registry = o->registry;
    w->remote = o->remote;
    w->live_status = o->live_status;
    w->live_ud = o->live_ud;
    w->stage_put = o->stage_put;
    w->state = (sl_state_store){ w, state_put, state_get, shard_request };
    pthread_mutex_init(&w->mu, NULL);
    pthread_mutex_init(&w->shard_mu, NULL);
    /* retries wait on CLOCK_MONOTONIC deadlines: a clock step does not move them */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (!o->no_events) {
        int rc = sl_thread_spawn(w->sched, "sl-worker", event_main, w, &w->thread);
        if (rc < 0) {
            sl_worker_free(w);
            return sl_error_set(err, rc, "cannot start the worker's event thread: %s",
                                sl_strerror(rc));
        }
    }
    *out = w;
    return 0;
}

void sl_worker_stop_events(sl_worker *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stopping = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    sl_thread_join(w->thread);
    w->thread = NULL;
}

void sl_worker_free(sl_worker *w)
{
    if (!w)
        return;
    sl_worker_stop_events(w);
    sl_worker_wait_stopped(w, NULL, -1, NULL);   /* the stoppers use w */
    while (w->head) {
        sl__wevent *e = w->head;
        w->head = e->next;
        free(e);
    }
    while (w->timed) {
        sl__wevent *e = w->timed;
        w->timed = e->next;
        free(e);
    }
    for (size_t i = 0; i < w->nheld; i++)
        free(w->held[i]);
    free(w->held);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    pthread_mutex_destroy(&w->shard_mu);
    free(w->subs);
    json_decref(w->shard_waits);
    json_decref(w->counts);
    free(w->name);
    free(w);
}

/* ---- requests to a stage of a subtask that is not running ---------------------------------- */

int sl_worker_ctl(sl_worker *w, const sl_task_plan *plan, size_t index, const char *phase,
                  const char *stage_id, const char *request, char **reply, sl_error *err)
{
    *reply = NULL;
    const sl_subtask_plan *sp = &plan->subtasks[index];
    for (size_t k = 0; k < sp->nphases; k++) {
        if (strcmp(sp->phase_names[k], phase))
            continue;
        sl_pipeline *p = NULL;
        int r = sl_pipeline_new(w->sched, w->registry, sp->phases[k], &w->state, &p, err);
        if (r == 0)
            r = sl_pipeline_ctl(p, stage_id, request, reply, err);
        sl_pipeline_free(p);
        return r;
    }
    return sl_error_set(err, SL_ENOTSUP, "task %s source %s has no %s phase", plan->name,
                        sp->source_name, phase);
}

/* ---- cleanup of a deleted task -------------------------------------------------------------- */

static int held_at(sl_worker *w, const char *task)
{
    for (size_t i = 0; i < w->nheld; i++)
        if (!strcmp(w->held[i], task))
            return (int)i;
    return -1;
}

void sl_worker_hold(sl_worker *w, const char *task)
{
    char *copy = strdup(task);
    pthread_mutex_lock(&w->mu);
    char **v = copy ? realloc(w->held, (w->nheld + 1) * sizeof *v) : NULL;
    if (v) {
        w->held = v;
        w->held[w->nheld++] = copy;
        copy = NULL;
    }
    pthread_mutex_unlock(&w->mu);
    if (copy || !v)
        sl_log(SL_LOG_WARN, "worker", "task %s: out of memory: a start of the same name does not "
               "wait for its cleanup", task);
    free(copy);
}

void sl__worker_wait_unheld(sl_worker *w, const char *task)
{
    pthread_mutex_lock(&w->mu);
    while (held_at(w, task) >= 0)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
}

static void unhold(sl_worker *w, const char *task)
{
    pthread_mutex_lock(&w->mu);
    int i = held_at(w, task);
    if (i >= 0) {
        free(w->held[i]);
        w->held[i] = w->held[--w->nheld];
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
}

int sl_worker_cleanup(sl_worker *w, const sl_task_plan *plan, unsigned what, sl_error *err)
{
    int rc = 0;
    for (size_t i = 0; i < plan->nsubtasks; i++) {
        const sl_subtask_plan *sp = &plan->subtasks[i];
        for (size_t k = 0; k < sp->nphases; k++) {
            sl_error e = { 0 };
            sl_pipeline *p = NULL;
            int r = sl_pipeline_new(w->sched, w->registry, sp->phases[k], &w->state, &p, &e);
            if (r == 0)
                r = sl_pipeline_cleanup(p, what, &e);
            sl_pipeline_free(p);
            if (r < 0) {
                sl_log(SL_LOG_WARN, "worker", "task %s source %s: cleanup of phase %s: %s",
                       plan->name, sp->source_name, sp->phase_names[k], e.msg);
                if (rc == 0) {
                    rc = r;
                    sl_error_set(err, r, "source %s: %s", sp->source_name, e.msg);
                }
            }
        }
    }
    unhold(w, plan->name);
    return rc;
}
