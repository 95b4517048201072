/*
 * internal.h - what the files of api/ share: the server object, the request being answered,
 * reply helpers, DM error codes, and the interfaces of the resource files (cluster, sources,
 * tasks, docs), the door to the compiler (compile.c) and the source probe (srcdb.c). Subtasks
 * run in the runtime (runtime/worker.h); the metadata store is the runtime's (runtime/store.h).
 */
#ifndef SLUICE_API_INTERNAL_H
#define SLUICE_API_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <microhttpd.h>

#include "api.h"
#include "crypto.h"
#include "store.h"
#include "member.h"
#include "worker.h"
#include "tverify.h"
#include "sluice/compiler.h"
#include "sluice/runtime.h"

/* DM error codes (dm/pkg/terror, see shared/reference/dm-api-notes.md 4.6). */
#define DM_ERR_SOURCE_EXISTS      46007
#define DM_ERR_SOURCE_NOT_FOUND   46008
#define DM_ERR_SOURCE_HAS_TASKS   46010
#define DM_ERR_TASK_EXISTS        46014
#define DM_ERR_TASK_NOT_FOUND     46018
#define DM_ERR_TASK_RUNNING       46035
#define DM_ERR_WORKER_NOT_FOUND   46004
#define DM_ERR_WORKER_ONLINE      46005
#define DM_ERR_WORKER_NOT_FREE    46033
#define DM_ERR_MASTER_NOT_FOUND   38048
#define DM_ERR_LOCK_NOT_FOUND     38019   /* DM's ErrMasterLockNotFound: no such unresolved shard DDL lock */
#define DM_ERR_LOCK_RESOLVING     38020   /* DM's ErrMasterLockIsResolving: the lock is being resolved
                                           * (its DDL runs), or cannot be yet (no shard reached it) */
#define DM_ERR_CANNOT_START       38058
#define DM_ERR_TASK_CHECK         26005
#define DM_ERR_OPENAPI            49001
#define DM_ERR_DB                 10001   /* database: connection / query error */
#define DM_ERR_NOT_IMPLEMENTED    49002   /* sluice: endpoint not implemented yet */
#define DM_ERR_UNAUTHORIZED       49003   /* sluice: missing/wrong token or client certificate */
#define DM_ERR_VERIFY_RUNNING     49004   /* sluice: a verification of the task is running */
#define DM_ERR_INTERNAL           50000
#define DM_ERR_ETCD               49005   /* sluice: the cluster's etcd did not answer (no quorum) */
#define DM_ERR_TRANSFER_RUNNING   49006   /* sluice: a transfer of the source is in progress */

#define SL_API_MASTER_NAME "master1"
#define SL_API_WORKER_NAME "worker1"

/* A source as the API keeps it in memory: the definition with the password in clear (it is
 * sealed only in the store) and the derived flavor. */
typedef struct sl_api_source {
    char   *name;
    json_t *def;         /* Source object (password in clear) */
    /* the relay log (runtime/relay.h) while relay_config.enable_relay: its directory (what the
     * source's tasks read), the running relay, or why it could not start */
    char   *relay_path;
    struct sl_relay_unit *relay;
    char   *relay_err;
    struct sl_api *api;  /* for the relay's purge: which files the source's tasks need */
    long long relay_epoch;  /* in a cluster: the binding epoch the relay started under */
} sl_api_source;

/* A task: its plan (the compiled, normalized task and the phases of its subtasks) and its
 * subtasks (one per source), in source_conf order. */
typedef struct sl_api_task {
    char         *name;
    json_t       *def;   /* normalized Task (target password in clear): plan->task */
    sl_task_plan *plan;  /* owns the phases the subtasks run */
    size_t        nsubs;
    sl_subtask  **subs;
    sl_tverify   *verify;   /* the last verification run (runtime/tverify.h), or NULL */
} sl_api_task;

/* A refcounted, immutable response body (cached list answers). The HTTP glue builds one
 * libmicrohttpd response over data (no copy) the first time the blob is sent and queues that same
 * response on every connection; each request in flight holds a reference to the blob until its
 * answer is sent, and the last reference destroys the response with the blob. */
typedef struct sl_blob {
    atomic_int refs;
    _Atomic(struct MHD_Response *) resp;
    size_t len;
    char data[];
} sl_blob;

/* Access control (access.c): the token's MAC and the TLS material, read once at start. */
typedef struct sl_access {
    int      token_on;
    uint8_t  token_key[32], token_mac[32];
    char    *cert, *key, *ca;        /* PEM contents (HTTPS when cert is set) */
    char   **cns;                    /* cert-allowed-cn */
    size_t   ncns;
} sl_access;

typedef struct sl_metrics sl_metrics;
typedef struct sl_console sl_console;

struct sl_api {
    sl_api_opts     opts;
    sl_access       access;
    sl_metrics     *metrics;       /* HTTP request counters and latencies (metrics.c) */
    sl_console     *console;       /* the web console's lag sampler (console.c) */
    char           *addr_host;
    unsigned        port;
    char           *data_dir;
    sl_meta_store  *store;
    sl_secret_key   key;
    sl_registry    *registry;
    sl_scheduler   *sched;
    sl_worker      *worker;        /* runs the subtasks */
    sl_member      *member;        /* cluster mode (opts.etcd): this process in the cluster */
    struct sl_runner *runner;      /* cluster mode, role worker or all: runs bound sources */
    atomic_int      leading;       /* cluster mode: this process holds the sources and tasks
                                    * (it leads and has restored them); others forward */
    _Atomic long long meta_seen;   /* cluster mode: sl_meta_etcd_uncertain when the memory was
                                    * last read from etcd (sl__meta_resync) */
    int             cluster_ready; /* startup done: leadership changes are acted on (under lock) */
    char           *adv_addr;      /* cluster mode: the address advertised when it was learnt
                                    * at listen time (no advertise_addr given) */
    char           *fwd_auth;      /* cluster mode with a token: the header forwarded requests
                                    * carry to the leader */
    struct MHD_Daemon *mhd;
    int             listen_fd;     /* bound before the restore (sl__http_bind), -1 = none; the
                                    * daemon owns it once started */
    int             listen_v6;
    int             dir_lock;      /* flock'd <data_dir>/server.lock, -1 = none */
    int             offline;       /* SL__API_OFFLINE: never connect to a MySQL server */
    unsigned        ncpu;          /* this machine's CPUs: sizes a task's default threads */

    /* sources and tasks, guarded by lock (read for GETs, write for changes) */
    pthread_rwlock_t lock;
    size_t           nsources, capsources;
    sl_api_source  **sources;
    size_t           ntasks, captasks;
    sl_api_task    **tasks;

    /* cached body of GET /api/v1/tasks (no query): rebuilt after a task change */
    pthread_mutex_t  cache_mu;
    sl_blob         *tasks_cache;
    uint64_t         tasks_gen;
};

/* ---- assembling (server.c) ----------------------------------------------------------------- */

#define SL__API_NO_HTTP    1u   /* do not listen: requests arrive through sl__dispatch */
#define SL__API_NO_MONITOR 2u   /* no worker event thread: subtasks move only when asked */
#define SL__API_OFFLINE    4u   /* never connect to a MySQL server: the source check accepts
                                 * every source (flavor "mysql") and the schema listings, the
                                 * checkpoint cleanup and the table views fail at once */

/* sl_api_new with flags (SL__API_*), for the REST fuzz target and tests. */
int sl__api_open(const sl_api_opts *opts, unsigned flags, sl_api **out, sl_error *err);
/* Non-zero once opts.cancel is up (restore loops stop early). */
int sl__api_cancelled(const sl_api *a);

/* ---- requests and replies (http.c) ------------------------------------------------------- */

#define SL_MAX_SEGS 10

/* One decoded query parameter; value is NULL for "?key" without '='. */
typedef struct sl_query_arg {
    const char *key;
    const char *value;
} sl_query_arg;

typedef struct sl_req {
    sl_api *api;
    const char *method;
    const sl_query_arg *args;        /* decoded query parameters, in request order */
    size_t      nargs;
    char       *segs[SL_MAX_SEGS];   /* decoded path segments after /api/v1/ */
    int         nseg;
    const char *body;
    size_t      body_len;
    json_t     *json;         /* the body parsed once by sl__dispatch (a non-blank body of a
                               * request other than GET/HEAD), or NULL; sl__body_json hands out
                               * references to it */
    /* the reply */
    unsigned    status;
    char       *out;          /* malloc'd body, or NULL */
    size_t      out_len;
    sl_blob    *out_blob;     /* or a shared blob (one reference owned by the request) */
    const char *ctype;
    int         challenge;    /* 401: send WWW-Authenticate */
    char        route[96];    /* the path with names replaced ("/api/v1/tasks/{name}/status"),
                               * the metrics' route label */
} sl_req;

/* Answer r by passing it on to the cluster's leader (forward.c): a member that does not lead. */
void sl__forward(sl_req *r, const char *url);

/* Reply with a JSON value (stolen; NULL = out of memory -> 500). */
void sl__reply_json(sl_req *r, unsigned status, json_t *v);
/* Reply {"error_msg": ..., "error_code": code}. */
void sl__reply_error(sl_req *r, unsigned status, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void sl__reply_empty(sl_req *r, unsigned status);
void sl__reply_raw(sl_req *r, unsigned status, const char *ctype, char *body, size_t len);
void sl__reply_blob(sl_req *r, unsigned status, sl_blob *b);   /* takes a new reference */
/* 405 naming the allowed methods. */
void sl__reply_method(sl_req *r, const char *allowed);
/* Parse the body as a JSON object; on failure reply 400 with line:column and return NULL.
 * An empty body gives an empty object when empty_ok. */
json_t *sl__body_json(sl_req *r, int empty_ok);
/* If obj (a JSON object; anything else passes) has a key not among keys[0..nkeys), reply 400
 * "PATH/KEY: unknown field (known: ...)" and return -1: a misspelled option is not dropped. */
int sl__unknown_field(sl_req *r, const json_t *obj, const char *path, const char *const *keys,
                      size_t nkeys);
/* Query parameter (NULL if absent); boolean query: "true"/"1" -> 1, "false"/"0"/absent -> 0, -1 bad. */
const char *sl__query(sl_req *r, const char *name);
int sl__query_bool(sl_req *r, const char *name, int *out);
/* Every value of a repeated query parameter (also comma-separated). Caller json_decref's. */
json_t *sl__query_list(sl_req *r, const char *name);

sl_blob *sl__blob_new(const char *data, size_t len);
void sl__blob_unref(sl_blob *b);

/* Answer one request without any HTTP library: method, decoded path (e.g. "/api/v1/tasks"),
 * decoded query parameters and the body. Fills r->status, r->out / r->out_blob and r->ctype;
 * the caller releases the reply with sl__req_reset. Used by the libmicrohttpd glue and by the
 * REST fuzz target (tests/fuzz/rest). Thread-safe like the handlers (they take a.lock). */
void sl__dispatch(sl_api *a, sl_req *r, const char *method, const char *path,
                  const sl_query_arg *args, size_t nargs, const char *body, size_t body_len);
/* Free the reply of a request (body or blob reference). */
void sl__req_reset(sl_req *r);

/* Access control (access.c). init: read the TLS files, keep the token's MAC (refuses
 * inconsistent settings); check: 0 if the request may go on, else r holds the 401/403 reply.
 * c may be NULL (in-process dispatch: no headers, no TLS). */
int  sl__access_init(sl_api *a, sl_error *err);
void sl__access_free(sl_api *a);
int  sl__access_check(sl_api *a, struct MHD_Connection *c, sl_req *r);
/* Only the client certificate part of the check (the console page, which a browser opens
 * without a bearer header). */
int  sl__access_check_cert(sl_api *a, struct MHD_Connection *c, sl_req *r);

/* The metrics' route labels (http.c): sl__route_at(i) for i < sl__route_count() is every label
 * r->route can hold - the API's path templates, "/metrics", "/console", "denied", "unknown". */
size_t      sl__route_count(void);
const char *sl__route_at(size_t i);
/* Metrics (metrics.c): count one answered request; GET /metrics in Prometheus's text format. */
int  sl__metrics_new(sl_api *a);
void sl__metrics_free(sl_api *a);
void sl__metrics_http(sl_api *a, const sl_req *r, const char *method, double seconds);
void sl__metrics_reply(sl_req *r);

/* Start / stop the libmicrohttpd daemon on opts.addr. */
/* Bind and listen on opts.addr (sets port) without serving yet: a second server on the same
 * address fails before it restores and starts anything. */
int  sl__http_bind(sl_api *a, sl_error *err);
int  sl__http_start(sl_api *a, sl_error *err);
void sl__http_stop(sl_api *a);

/* ---- resources ------------------------------------------------------------------------------ */

void sl__cluster_route(sl_req *r);
void sl__sources_route(sl_req *r);
void sl__tasks_route(sl_req *r);
/* Compile again the tasks of a source whose relay changed (none running). Write lock held. */
void sl__tasks_recompile_source(sl_api *a, const char *source);
/* 404 with DM's task-not-found body. */
void sl__reply_task_not_found(sl_req *r, const char *name);
/* GET /tasks/{task}/sources/{source}/...: mode 0 migrate_targets (schema_pattern and
 * table_pattern queries), 1 schemas, 2 the tables of schema (task_sources.c). */
void sl__task_source_view(sl_req *r, const char *task, const char *source, int mode,
                          const char *schema);
/* GET/PUT/POST/DELETE /tasks/{task}/sources/{source}/schemas/{schema}/{table}: the structure
 * the subtask's schema tracker holds (task_schemas.c). */
void sl__task_table_structure(sl_req *r, const char *task, const char *source,
                              const char *schema, const char *table);
/* GET /tasks/{task}/sources/{source}/schemas[/{schema}] from the schema tracker: the schemas (or
 * the tables of schema) it tracks at the subtask's checkpoint, when the subtask is not running
 * and has tracked structures (returns 1, replied); 0 when the caller answers instead with the
 * source's view (a running subtask, no incremental phase yet, unknown task or source). */
int  sl__task_tracked_list(sl_req *r, const char *task, const char *source, const char *schema);
/* A warning {"path","msg","code"} naming the selected objects of source (its definition src)
 * that the task def does not copy (views, triggers, routines, events, versioned history), read
 * from the source's information_schema; or saying the source could not be checked. NULL when
 * there is nothing to say or offline. Connects: call without a.lock held (task_sources.c). */
json_t *sl__task_not_copied(sl_api *a, const json_t *def, const char *source, const json_t *src);
/* POST (start) and GET (state, results) /tasks/{task}/verify (task_verify.c). */
void sl__task_verify(sl_req *r, const char *task);
/* GET /tasks/{task}/shard_ddl_locks, POST .../shard_ddl_locks/unlock (task_shard.c); nseg is 3
 * or 4. */
void sl__task_shard(sl_req *r, const char *task, int nseg);
void sl__docs_route(sl_req *r);

/* ---- the web console (console.c) ----------------------------------------------------------- */
/* start: the lag sampler thread (0 or SL_ENOMEM); stop: joins it and frees it (safe if never
 * started). page: GET /console; route: /api/v1/console/...; task_check: POST
 * /api/v1/tasks/check (compile without create). */
int  sl__console_start(sl_api *a);
void sl__console_stop(sl_api *a);
void sl__console_page(sl_req *r);
void sl__console_route(sl_req *r);
void sl__console_task_check(sl_req *r);

/* ---- before a task copies anything (task_precheck.c) ---------------------------------------- */

/* What the prechecks of a task compare it with: CHECK (POST /tasks/check) names every other task
 * of the server that writes one of its target tables, as a warning; START (its start) only one
 * with a subtask that writes (sl_subtask_writing: running, or waiting for an automatic resume),
 * as an error. */
#define SL__PRECHECK_CHECK 0
#define SL__PRECHECK_START 1
typedef struct sl__precheck sl__precheck;
/* Copy out of a what the prechecks of plan need (the rules and connections of its sources and
 * of the other tasks on the same target server). Call with a.lock held; NULL when there is
 * nothing to check (offline, no plan, a plan that does not compile) or no memory. */
sl__precheck *sl__precheck_prepare(sl_api *a, const sl_task_plan *plan, int mode);
/* Run them without a.lock: they connect to the sources and the target. fresh: the task starts
 * over (remove_meta), so checkpoints in its target do not make it a task under way (DM checks
 * shards of a fresh task only). Problems go to errors and warnings as {"path" (under root),
 * "msg", "code"}: DM's 26005 for a failed precheck, 38058 for another task writing the same
 * table at a start, 10001 (a warning) for a server that could not be read. Returns 1 when
 * another task writes a target table of this one (START), else 0. */
int  sl__precheck_run(sl__precheck *p, int fresh, const char *root, json_t *errors,
                      json_t *warnings);
void sl__precheck_free(sl__precheck *p);
/* The other tasks on plan's target server that write now (sl_subtask_writing), their names
 * joined by ",": a start whose prechecks ran outside a.lock compares it before and after, and
 * runs them again when a task began to write meanwhile. Call with a.lock held; NULL when out
 * of memory. */
char *sl__precheck_writers(sl_api *a, const sl_task_plan *plan);

/* Load sources and tasks from the store at startup (sources.c / tasks.c). */
int sl__sources_restore(sl_api *a, sl_error *err);
/* Cluster leader: after a store write whose outcome is unknown (etcd timed out; it may have
 * applied it), read the sources and tasks from etcd again before serving the next request, so
 * memory and etcd tell one story. 0, or the etcd error (the memory stays to be read again). */
int sl__meta_resync(sl_api *a, sl_error *err);
int sl__tasks_restore(sl_api *a, sl_error *err);
void sl__sources_free_all(sl_api *a);
void sl__tasks_free_all(sl_api *a);

/* Lookups; call with a.lock held. */
sl_api_source *sl__source_find(sl_api *a, const char *name);
sl_api_task *sl__task_find(sl_api *a, const char *name);
/* Drop the cached task list (call after any task change). */
void sl__tasks_cache_invalidate(sl_api *a);

/* What every answer shows for a stored secret (DM's mask of passwords). */
#define SL__MASK "******"
/* A copy of obj with every "password" member (at any depth) replaced by SL__MASK, and every
 * ssl_*_content by SL__MASK when it holds something, "" when it is empty. */
json_t *sl__mask_passwords(const json_t *obj);
/* A PUT of what a GET showed: conn (a source, a task's target_config: host, port, user, password,
 * security) whose password or security.ssl_*_content is SL__MASK (sl__mask_passwords) gets the
 * value of old (the stored object of the same kind), but only when host, port and user are old's
 * (a member conn lacks counts as old's): the stored secrets must not be sent to another server or
 * account by whoever may PUT. TLS material masked where old holds none is refused too (GET showed
 * "" there). Any other value, "" included, stays as given. Returns 0 (conn changed in place where
 * this applies), or SL_EINVAL with a 400 reply naming path (the JSON path of conn, e.g.
 * "/task/target_config"). Call with old NULL only for a conn that has nothing stored. */
int sl__keep_masked_secrets(sl_req *r, json_t *conn, const json_t *old, const char *path);
/* Deep copy with secrets (password, ssl_key_content) sealed with the data dir's key; NULL on failure. */
json_t *sl__seal_secrets(sl_api *a, const json_t *obj);
/* Open sealed secrets in place. */
int sl__open_secrets(sl_api *a, json_t *obj, sl_error *err);
/* DM's start_time (RFC 3339 with an offset) -> seconds since the epoch (0), or 1 for a valid time
 * without an offset (to be read in the source's zone); a Go duration ("10s") -> whole seconds,
 * rounded up (0). -1 with the reason in why. */
int sl__parse_time(const char *s, long long *out, char *why, size_t wl);
int sl__parse_duration(const char *s, long long *out, char *why, size_t wl);
/* json_dumps compact; caller frees. */
char *sl__dump_compact(const json_t *v);

/* ---- the source's own server (srcdb.c) ------------------------------------------------------ */

/* Connect to the source described by a Source object (TLS from its security contents). Returns a
 * connection to close with mysql_close or NULL with the server's own message in err. */
struct st_mysql *sl__source_connect(sl_api *a, const json_t *src, sl_error *err);
/* "mariadb" or "mysql" from the server version; *version gets a malloc'd copy. */
int sl__source_probe(sl_api *a, const json_t *src, char **flavor, sl_error *err);
/* A wall time without an offset ("2021-10-21 00:01:00") as the source reads it in its own time
 * zone (DM's legacy start_time): seconds since the epoch, or an error. Connects. */
int sl__source_local_time(sl_api *a, const json_t *src, const char *when, long long *out,
                          sl_error *err);
/* JSON array of schema names (system schemas removed) / base tables of a schema. */
json_t *sl__source_schemas(sl_api *a, const json_t *src, sl_error *err);
json_t *sl__source_tables(sl_api *a, const json_t *src, const char *schema, sl_error *err);

/* ---- compiling tasks (compile.c) ------------------------------------------------------------ */

/* Compile a Task object (parsed once, by the caller; only read here). root is where the task
 * is in the document the problems are reported against: "/task" in DM's {"task": {...}}, "" in
 * a bare Task. On success *plan is the plan (free with sl_task_plan_free), whose task is the
 * normalized Task, and *warnings (when warnings is not NULL) a JSON array of the compiler's
 * warnings {"path","msg","code"}, or NULL when there is none (caller decrefs). On failure returns
 * SL_EINVAL with *problems a JSON array of every problem {"path","msg","code"} in the order
 * check-task prints them (caller decrefs), or err filled for other failures. Call with a.lock
 * held (it reads the sources). */
int sl__task_compile(sl_api *a, json_t *task, const char *root, sl_task_plan **plan,
                     json_t **problems, json_t **warnings, sl_error *err);
/* The same against the sources srcs (a cluster worker's own copy, runner.c) instead of a's. */
int sl__task_compile_with(sl_api *a, sl_api_source *const *srcs, size_t nsrcs, json_t *task,
                          const char *root, sl_task_plan **plan, json_t **problems,
                          json_t **warnings, sl_error *err);

/* ---- the relay log of a source (sources.c), for the cluster's workers too ------------------- */

/* Stop and free the relay of s (its unit, its error, its path); the fields end NULL. */
void sl__relay_clear(sl_api_source *s);
/* (Re)start the source's relay as its definition says (relay_config.enable_relay; stopped
 * otherwise): s->relay, s->relay_path (what its tasks' readers are given) or s->relay_err.
 * oldest: where a new relay starts when relay_config names no position ("" = the source's
 * current file); needed/needed_ud: the purge's question (sl_relay_opts.purge_needed). */
void sl__relay_start(sl_api *a, sl_api_source *s, const char *oldest,
                     int (*needed)(void *ud, char *file, size_t cap), void *needed_ud);
/* One subtask's part of the purge's answer for source: folds its checkpoint file into file and
 * *rc (0 none yet, 1 file holds the oldest) or sets *rc = -1 (and returns -1) when its position
 * is not known; other sources' subtasks are skipped. */
int  sl__relay_needed_fold(sl_subtask *st, const char *source, char *file, size_t cap, int *rc);
/* Targets that did not answer one sl__task_ckpt_file (host:port), so that the next tasks on
 * them are not waited for again: one per loop over the tasks, zeroed. */
#define SL_CKPT_GONE_MAX 8
typedef struct sl__ckpt_gone {
    char   hp[SL_CKPT_GONE_MAX][272];
    size_t n;
} sl__ckpt_gone;
/* The binlog file of the checkpoint of (task, source) in the task's target (def: the task),
 * "" when none. Connects, at most 5 s to connect and 10 s to read, unless gone (NULL: none)
 * holds the target as not answering; a target that does not answer is added to it. */
void sl__task_ckpt_file(const char *name, const json_t *def, const char *source, char *f,
                        size_t cap, sl__ckpt_gone *gone);

/* ---- a cluster worker (runner.c) ------------------------------------------------------------ */

/* A member of role worker or all runs the subtasks of the sources bound to it (binding.h): one
 * thread reads the bindings, sources, tasks and operator wishes from etcd every RUN_POLL_MS,
 * runs each subtask of a bound source under the binding's epoch as its fence, stops those whose
 * binding moved (or that a transfer asks it to release), and publishes their status under its
 * lease (ROOT/live/...). start: 0 or an error (nothing runs); stop: joins the thread and stops
 * the subtasks, keeping their stored stages (the next owner resumes them). */
int  sl__runner_start(sl_api *a, sl_error *err);
void sl__runner_stop(sl_api *a);

#endif
