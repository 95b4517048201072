/*
 * worker.h - the subtask runtime: a worker runs the subtasks of this process (one per task and
 * source), each a sequence of phases (the compiled pipelines of its source: "full" then
 * "incremental" for task_mode all), records their stages in the metadata store so a restarted
 * server resumes what was Running, and moves a subtask on when its pipeline ends by itself: a
 * finished phase starts the next one, a failure pauses the subtask with its error. It is driven by
 * the pipelines' end events (sl_pipeline_on_end), handled on one event thread of the scheduler; no
 * polling. It also removes a deleted task's checkpoints and files through the plugins' own
 * cleanup (plugin.h), so nothing above it knows a plugin's tables or directories.
 *
 * The API (api/) owns tasks and their plans and calls in here; the runtime never calls the API.
 * In a cluster the leader's worker holds views of subtasks that run elsewhere (remote), and each
 * member of role worker runs the subtasks of its bound sources on a worker of its own, fenced
 * with the binding's epoch (api/runner.c, docs/cluster.md).
 *
 * Thread-safety: every function is thread-safe. A subtask's control calls serialize on the
 * subtask; the event thread never holds a lock of the caller's.
 */
#ifndef SLUICE_RUNTIME_WORKER_H
#define SLUICE_RUNTIME_WORKER_H

#include <jansson.h>

#include "store.h"
#include "sluice/compiler.h"
#include "sluice/runtime.h"

typedef struct sl_worker sl_worker;
typedef struct sl_subtask sl_subtask;

typedef struct sl_worker_opts {
    const char        *name;        /* the worker's name in statuses (DM's worker_name) */
    sl_meta_store     *store;       /* stage records (kind "stage") and plugin state ("state") */
    sl_scheduler      *sched;       /* runs the pipelines and the event thread */
    const sl_registry *registry;    /* the plugins the plans name */
    int                no_events;   /* 1: no event thread (in-process tests, the REST fuzz
                                       target): a pipeline that ends by itself is seen by status
                                       and the next start, restored subtasks are not started */
    /* Cluster (issue 13): the subtasks of this worker are the leader's views of subtasks that
     * the bound workers run. No pipeline runs here: a start or stop records the operator's wish
     * (kind "want", followed by the running worker: sl_subtask_follow), the stage is read from
     * the record the running worker keeps, and the status is what live_status returns (the
     * running worker's, published in etcd), else built from that record. */
    int                remote;
    json_t          *(*live_status)(void *ud, const char *task, const char *source);
    void              *live_ud;     /* the ud of live_status and stage_put */
    /* Cluster worker: how the stage record (kind "stage", name key) of a subtask run under a
     * fence (sl_subtask_new_fenced) is written: only while the source is still bound here at
     * that epoch, so a worker that lost the source (paused, cut off) does not overwrite what the
     * new owner records. 0, SL_ESTATE (the source moved: nothing written) or an error. NULL: a
     * plain put into store. Called from any thread. */
    int              (*stage_put)(void *ud, const char *source, long long fence, const char *key,
                                  const char *value, sl_error *err);
} sl_worker_opts;

/* Start a worker (and its event thread). Strings of o are copied. Caller frees with
 * sl_worker_free after freeing every subtask; the free waits for their pipelines to stop
 * (bound it first with sl_worker_wait_stopped). */
int  sl_worker_new(const sl_worker_opts *o, sl_worker **out, sl_error *err);
/* Stop handling events (a server shutting down: no phase starts after this returns; events
 * still queued are dropped at free). NULL is fine. */
void sl_worker_stop_events(sl_worker *w);
void sl_worker_free(sl_worker *w);

/* Cluster fencing (issue 13): every pipeline built from now on gets fence_epoch = epoch in the
 * options of each stage whose plugin takes it (mysql-sink: its checkpoint commits only while the
 * target's fence row for its source holds this epoch, and its start raises the fence to it).
 * A newer owner of a source has a larger epoch, so an older one commits nothing more.
 * 0 = no fencing (the embedded default). Thread-safe. */
void sl_worker_set_fence(sl_worker *w, long long epoch);

/* The store ops that forget every record of a task's subtasks (stages, operator wishes, plugin
 * state, shard DDL locks and joins): append them to a caller's batch so the task and its records
 * go in one transaction. keep_meta (DM's delete with keep_meta): the plugin state and the shard
 * DDL records stay, as the checkpoints in the target do, because they belong together: a held
 * shard's rows in the target wait for its lock, and a task created again with the name goes on
 * with both. prefix is "<task>/" and must outlive the ops. Returns the number of ops written (at
 * most SL_WORKER_FORGET_OPS). */
size_t sl_worker_forget_ops(const char *prefix, int keep_meta, sl_meta_op *ops);
#define SL_WORKER_FORGET_OPS 5

/* The store ops that forget a task's shard DDL locks and joins (a start with remove_meta drops
 * the shard tables in the target they go with). prefix as above. Returns 2. */
size_t sl_worker_shard_forget_ops(const char *prefix, sl_meta_op *ops);

/*
 * Remove what a task's plugins keep outside the store (plugin.h cleanup: SL_CLEANUP_META,
 * SL_CLEANUP_FILES) for every subtask and phase of plan, which must not run. Blocks (connections,
 * file removal); failures are logged and the first is returned in err: the caller goes on.
 * A start of a subtask of the same task name waits until the cleanup is done, from the moment
 * sl_worker_hold(w, name) was called: call it where the task is removed (under the caller's lock),
 * then this outside the lock; this releases the hold.
 */
void sl_worker_hold(sl_worker *w, const char *task);
int  sl_worker_cleanup(sl_worker *w, const sl_task_plan *plan, unsigned what, sl_error *err);

/*
 * Ask stage stage_id of the phase named phase of plan->subtasks[index] (plugin.h ctl) on an
 * instance built for the request and freed after it: the subtask must not be running (the
 * caller checks its stage). Returns 0 with *reply (malloc'd JSON text or NULL; caller frees), or
 * a negative code with err: SL_ENOTSUP when the subtask has no such phase or stage.
 */
int  sl_worker_ctl(sl_worker *w, const sl_task_plan *plan, size_t index, const char *phase,
                   const char *stage_id, const char *request, char **reply, sl_error *err);

/* ---- errors and automatic resume ---------------------------------------------------------- */

/* Whether a subtask paused by an error resumes by itself (errclass.c). */
typedef enum sl_errclass {
    SL_ERRCLASS_NONE = 0,
    SL_ERRCLASS_TRANSIENT,   /* lost connection, server restart, deadlock, lock wait, too many
                                connections, read-only target: resumed with backoff */
    SL_ERRCLASS_FATAL        /* purged binlog, access denied, data or schema errors, conflicts,
                                bugs: waits for the operator */
} sl_errclass;

/* The class of a failure: its SL_E* code and message (the "(errno N)" of a server error in it
 * decides first). Thread-safe. */
sl_errclass sl_error_class(int code, const char *msg);
/* "transient", "fatal" or "". */
const char *sl_errclass_name(sl_errclass c);

/* Automatic resume: the n-th retry in a row waits SL_RESUME_FIRST_S * 2^n seconds, at most
 * SL_RESUME_MAX_S; a run that stayed up SL_RESUME_HEALTHY_S seconds starts the count again
 * (DM's defaults have the same shape: seconds first, minutes at most, reset after health). */
#define SL_RESUME_FIRST_S   2
#define SL_RESUME_MAX_S     300
#define SL_RESUME_HEALTHY_S 300

/* ---- subtasks ----------------------------------------------------------------------------- */

/* The subtask of source plan->subtasks[index]. plan must outlive the subtask. Its stage comes
 * from the store (a created task is Stopped until started); a subtask stored as Running is
 * started by the event thread. NULL when out of memory. */
sl_subtask *sl_subtask_new(sl_worker *w, const sl_task_plan *plan, size_t index);
/* sl_subtask_new whose pipelines get fence_epoch (instead of the worker's, sl_worker_set_fence):
 * a cluster worker runs each source under the epoch of its own binding. want is the operator's
 * wish (the "want" record's text, as sl_subtask_follow takes it; NULL = none): one not acted on
 * yet is acted on here, instead of the stored stage, so a stop made while no worker ran the
 * subtask is applied before anything starts. */
sl_subtask *sl_subtask_new_fenced(sl_worker *w, const sl_task_plan *plan, size_t index,
                                  long long fence_epoch, const char *want);
/* Frees it, keeping the stored stage; no event of it runs after. Its pipeline is stopped as by
 * sl_subtask_stop_request (not waited for: see sl_worker_wait_stopped). */
void sl_subtask_free(sl_subtask *s);

/* Start (Running, persisted): a Finished subtask starts again from its first phase (the loader
 * skips what it recorded). Fails with the subtask Paused and its error recorded when the
 * pipeline cannot start; SL_ENOTSUP when the plan has no phase for it. */
int  sl_subtask_start(sl_subtask *s, sl_error *err);

/* DM's start options (StartTaskRequest): kept with the subtask's stage record until the next
 * start, and handed to every stage whose plugin has an option of that name when a pipeline is
 * built (binlog-reader's start_time: where to start without a checkpoint; mysql-sink's
 * safe_mode_seconds: the safe-mode window at the beginning of each run). */
typedef struct sl_start_args {
    long long start_time;          /* seconds since the epoch, 0 = none */
    long long safe_mode_seconds;   /* 0 = none */
    int from_start;                /* start at the first phase: remove_meta dropped the
                                    * checkpoints, so a task_mode all dumps again */
} sl_start_args;
int  sl_subtask_start_with(sl_subtask *s, const sl_start_args *args, sl_error *err);
/* 1 once the subtask has started at least once (it may have checkpoints). */
int  sl_subtask_ever_started(sl_subtask *s);
/* 1 if it writes to its target now or will by itself: Running, or Paused with an automatic
 * resume armed (a transient error). A Paused one that waits for the operator is 0. */
int  sl_subtask_writing(sl_subtask *s);
/* Stop its pipeline. persist: record Stopped (a Finished subtask stays Finished); 0 keeps the
 * stored stage (a server shutting down, so a restart resumes it). */
void sl_subtask_stop(sl_subtask *s, int persist);
/* sl_subtask_stop that does not wait: the stage (and persist) change at once, and a thread of its
 * own stops and frees the pipeline, which a stuck stage (a Lua pattern, a frozen target) may keep
 * for long. Until it is gone the subtask's status says "stopping": true and a start of it waits
 * two seconds, then fails with SL_ESTATE. Wait with sl_worker_wait_stopped, which needs no lock
 * of the caller's. Thread-safe. */
void sl_subtask_stop_request(sl_subtask *s, int persist);
/* Wait up to timeout_ms (-1: no limit) until no pipeline of task (NULL: of any task) is still
 * stopping after sl_subtask_stop_request or sl_subtask_free. 0, or SL_ETIMEOUT with err naming
 * the stuck one. Thread-safe; call with no lock a stop needs. */
int  sl_worker_wait_stopped(sl_worker *w, const char *task, int timeout_ms, sl_error *err);
/* Cluster worker: act on the operator's wish the leader recorded (the "want" record's JSON text,
 * {"stage": "Running"|"Stopped", "seq": N, "start_args": {...}}; NULL = none): a wish not yet
 * acted on (its seq differs from the one the stage record holds) starts or stops the subtask,
 * once; the seq is persisted with the stage, so a new owner of the source does not act on an
 * old wish again. 0, or the start's error (the subtask is then Paused with it). */
int  sl_subtask_follow(sl_subtask *s, const char *want, sl_error *err);
sl_stage    sl_subtask_stage(sl_subtask *s);
const char *sl_subtask_source(const sl_subtask *s);
/* DM's SubTaskStatus (name, source_name, worker_name, stage, unit, error_msg, load_status,
 * sync_status, dump_status) plus sluice's "stages" and "auto_resume" ({"error_class", "retries",
 * "next_retry_at", "errors", "resumes"}). Caller decrefs. */
json_t     *sl_subtask_status(sl_subtask *s);

#endif
