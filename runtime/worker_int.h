/*
 * worker_int.h - what the files of the subtask runtime share: the worker and subtask objects,
 * the event queue (worker.c), the subtask life cycle (subtask.c) and its DM status (status.c).
 */
#ifndef SLUICE_RUNTIME_WORKER_INT_H
#define SLUICE_RUNTIME_WORKER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "worker.h"

/* One thing for the event thread to look at. */
typedef enum sl__wkind {
    SL__EV_END,       /* subtask s: its pipeline p ended by itself */
    SL__EV_RESTORE,   /* subtask s was stored as Running: start it */
    SL__EV_RETRY,     /* subtask s paused by a transient error: resume it (if gen still holds) */
    SL__EV_RESYNC,    /* a shard DDL lock of s resolved: restart its running pipeline, which
                         reads its held events again (shard.c) */
    SL__EV_SHARD_POLL /* s holds shards: has another process resolved their locks? (shard.c) */
} sl__wkind;

typedef struct sl__wevent {
    struct sl__wevent *next;
    sl__wkind          kind;
    sl_subtask        *s;
    sl_pipeline       *p;
    unsigned           gen;         /* RETRY: s->retry_gen when it was armed */
    struct timespec    due;         /* RETRY: CLOCK_MONOTONIC */
} sl__wevent;

struct sl_worker {
    char              *name;
    sl_meta_store     *store;
    sl_scheduler      *sched;
    const sl_registry *registry;
    sl_state_store     state;       /* plugin state (host->state_put/get) kept in the store */

    pthread_mutex_t    mu;          /* guards what follows */
    pthread_cond_t     cv;
    sl__wevent        *head, *tail; /* pending events, in order */
    sl__wevent        *timed;       /* retries, by due time */
    sl_subtask        *busy;        /* the subtask whose event the thread handles now */
    int                stopping;
    char             **held;        /* task names being cleaned up (sl_worker_hold) */
    size_t             nheld;
    sl_thread         *thread;      /* NULL with no_events */
    _Atomic long long  fence_epoch; /* cluster: handed to every pipeline (0 = none) */
    int                remote;      /* the leader's views (sl_worker_opts.remote) */
    json_t          *(*live_status)(void *ud, const char *task, const char *source);
    void              *live_ud;
    int              (*stage_put)(void *ud, const char *source, long long fence, const char *key,
                                  const char *value, sl_error *err);
    /* the shard DDL coordinator (shard.c): its mutex also guards the list of subtasks, which
     * it needs to find a task's plan and the subtasks to restart */
    pthread_mutex_t    shard_mu;
    sl_subtask       **subs;
    size_t             nsubs, csubs;
    json_t            *shard_waits; /* [{task, source, id, gen}]: held shards (shard.c) */
    /* pipelines being stopped apart from their subtask (subtask.c, stop_detached), under mu;
     * each leaves the list and broadcasts cv when it is stopped and freed */
    struct sl__reaper *reapers;
    /* the counters of subtasks freed in this process (a task updated by a PUT, deleted and
     * created again), {"task/source": [errors, resumes, events]}, under mu: a subtask of the
     * same task and source takes them on, so that they count since the server started */
    json_t            *counts;
};

struct sl_subtask {
    sl_worker          *w;
    const sl_task_plan *plan;
    size_t              index;      /* in plan->subtasks */
    const char         *task;       /* plan->name */
    const char         *source;     /* plan->subtasks[index].source_name */
    _Atomic unsigned    refs;       /* the owner's, and one per pipeline still stopping */
    pthread_mutex_t     mu;         /* guards what follows; held by control calls and events */
    pthread_cond_t      cv;         /* stopping went down */
    int                 dying;      /* sl_subtask_free began: events do nothing */
    unsigned            stopping;   /* its pipelines still stopping apart from mu (a stage may
                                       be stuck: a Lua pattern, a frozen target) */
    sl_stage            stage;
    size_t              phase;      /* current phase */
    sl_pipeline        *pipe;
    char               *error_msg;
    json_t             *last;       /* last pipeline status of the current phase (pipe gone) */
    time_t              last_at;    /* wall clock when last was taken */
    json_t             *load_done;  /* load_status of a finished full phase */
    json_t             *dump_done;  /* dump_status of a finished full phase */
    /* automatic resume */
    sl_errclass         err_class;  /* of error_msg */
    unsigned            retries;    /* in a row, since the last healthy run */
    unsigned            retry_gen;  /* an armed retry fires only while this is unchanged */
    time_t              next_retry; /* wall clock of the armed retry, 0 = none */
    struct timespec     run_since;  /* CLOCK_MONOTONIC start of the current run */
    unsigned long long  errors, resumes;
    long long           events_base; /* binlog events of its earlier runs in this process */
    long long           not_found_base; /* and rows its sink found missing on the target */
    long long           warnings_base;  /* and values the target changed (target_warnings) */
    sl_start_args       args;       /* of the last operator start (persisted) */
    long long           fence;      /* its pipelines' fence_epoch (0: the worker's) */
    long long           want_seq;   /* the operator's wish last acted on (sl_subtask_follow) */
    int                 ever_started;
};

/* worker.c: queue an event (s, p) for the event thread; drop the events of a subtask and wait
 * until the thread is not handling it. */
void sl__worker_post(sl_worker *w, sl__wkind kind, sl_subtask *s, sl_pipeline *p);
/* Queue a retry of s in `seconds`, valid while s->retry_gen == gen. */
void sl__worker_post_retry(sl_worker *w, sl_subtask *s, unsigned gen, unsigned seconds);
void sl__worker_forget(sl_worker *w, sl_subtask *s);
/* Queue an event (kind, s) for the event thread in ms milliseconds. */
void sl__worker_post_in(sl_worker *w, sl__wkind kind, sl_subtask *s, unsigned ms);
/* The worker's list of subtasks (for the shard coordinator): sl_subtask_new adds, free removes
 * (before its events are forgotten, so the coordinator posts nothing for it after). */
void sl__worker_add(sl_worker *w, sl_subtask *s);
void sl__worker_remove(sl_worker *w, sl_subtask *s);
/* Wait while task is held by a cleanup (sl_worker_hold). */
void sl__worker_wait_unheld(sl_worker *w, const char *task);

/* subtask.c: handle one event (called by the event thread). */
void sl__subtask_event(sl_subtask *s, const sl__wevent *e);

/* status.c: DM's SubTaskStatus of s; call with s->mu held. */
json_t *sl__subtask_status_locked(sl_subtask *s);

/* The status JSON of a plugin's stage in a pipeline status (NULL when absent). */
json_t *sl__stage_status(json_t *pipeline_status, const char *plugin);

#endif
