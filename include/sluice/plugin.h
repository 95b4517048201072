/*
 * plugin.h - the sluice plugin ABI: the only header a plugin needs.
 *
 * A plugin is a shared object exporting one data symbol, `sluice_plugin` (SL_PLUGIN_SYMBOL), of
 * type sl_plugin_descriptor. The descriptor starts with the ABI version and its own size, names
 * the plugin and its kind, declares its options as a table and holds its callbacks. The host
 * hands each instance an sl_host table of functions (logging, allocation, batches, emitting,
 * errors); a plugin calls nothing of the server except through that table.
 *
 * Compatibility rules (sqlite's sqlite3_api_routines, nginx's module version):
 *   - the loader refuses a descriptor whose major ABI differs from the host's, or whose
 *     struct_size is smaller than SL_DESCRIPTOR_MIN_SIZE;
 *   - new host functions are added only at the end of sl_host; a plugin that wants a function
 *     newer than its minimum host checks SL_HOST_HAS(host, field) first;
 *   - new descriptor fields take the reserved slots at the end (the minor version goes up); the
 *     host reads such a field only through SL_DESCRIPTOR_HAS: the plugin's struct_size covers it
 *     and its minor version is the one that added it (an older plugin's slot is a NULL reserved).
 */
#ifndef SLUICE_PLUGIN_H
#define SLUICE_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include "err.h"
#include "value.h"
#include "event.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SL_ABI_MAJOR 1
#define SL_ABI_MINOR 5      /* 1.1: the descriptor's cleanup slot; 1.2: its caps slot; 1.3: ctl;
                               1.4: the host's shard function; 1.5: sl_event.ddl_mode (the
                               spare byte after kind: 0 from older producers) */
#define SL_ABI_VERSION ((uint32_t)((SL_ABI_MAJOR << 16) | SL_ABI_MINOR))
#define SL_ABI_MAJOR_OF(v) ((uint32_t)(v) >> 16)
#define SL_ABI_MINOR_OF(v) ((uint32_t)(v) & 0xffffu)

#define SL_PLUGIN_SYMBOL "sluice_plugin"
#if defined(__GNUC__)
#define SL_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define SL_PLUGIN_EXPORT
#endif

typedef enum sl_plugin_kind {
    SL_PLUGIN_SOURCE = 1,     /* produces batches from run() */
    SL_PLUGIN_TRANSFORM = 2,  /* process() changes a batch; the host forwards it */
    SL_PLUGIN_SINK = 3        /* process() consumes a batch */
} sl_plugin_kind;

/* ---- options ------------------------------------------------------------------------------ */

typedef enum sl_opt_type {
    SL_OPT_BOOL = 1,    /* int at offset; JSON true/false */
    SL_OPT_INT,         /* int64_t at offset; bounded by [min, max] */
    SL_OPT_STRING,      /* char * at offset (owned by the host, valid until destroy) */
    SL_OPT_ENUM,        /* int at offset: index into choices (matched case-insensitively) */
    SL_OPT_JSON         /* char * at offset: compact JSON text of any value (host-owned) */
} sl_opt_type;

/* sl_option.flags */
#define SL_OPTF_REQUIRED 0x01u  /* no default: the task must give it */
#define SL_OPTF_SECRET   0x02u  /* never logged or shown (passwords) */

/*
 * One option. The same table validates a task's options, fills the plugin's config struct
 * (config_size bytes, zeroed, then defaults, then given values) and documents the plugin.
 * The table ends with an entry whose name is NULL.
 */
typedef struct sl_option {
    const char         *name;
    sl_opt_type         type;
    const char         *def;         /* default as JSON text ("4", "true", "\"auto\""); NULL = none */
    const char         *desc;
    size_t              offset;      /* offsetof(your_config, field) */
    int64_t             min, max;    /* SL_OPT_INT bounds (none if min > max or both are 0) */
    const char *const  *choices;     /* SL_OPT_ENUM: NULL-terminated list */
    uint32_t            flags;       /* SL_OPTF_* */
} sl_option;

/* ---- host functions --------------------------------------------------------------------- */

typedef struct sl_ctx sl_ctx;   /* opaque per-instance handle given to every host call */

enum sl_log_level { SL_LOG_ERROR = 0, SL_LOG_WARN, SL_LOG_INFO, SL_LOG_DEBUG, SL_LOG_TRACE };

typedef void (*sl_thread_fn)(void *arg);

typedef struct sl_host {
    uint32_t abi_version;
    uint32_t struct_size;

    /* Logging with the instance's prefix ("task/source/plugin"). Thread-safe. */
    void  (*log)(sl_ctx *ctx, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

    /* Memory. Anything handed to the host (status JSON, etc.) is allocated with these. */
    void *(*alloc)(size_t size);
    void *(*calloc)(size_t n, size_t size);
    void *(*realloc)(void *p, size_t size);
    void  (*free)(void *p);

    /* Record the instance's error (shown in task status). Returns code, for `return host->fail(...)`. */
    int   (*fail)(sl_ctx *ctx, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

    /* Batches. batch_new returns a batch with one reference (caller frees with batch_unref). */
    sl_batch *(*batch_new)(sl_ctx *ctx, uint32_t cap_hint);
    void      (*batch_ref)(sl_batch *b);
    void      (*batch_unref)(sl_batch *b);
    /* Append a zeroed event; the pointer is valid until the next batch_push. NULL on OOM. */
    sl_event *(*batch_push)(sl_batch *b, sl_event_kind kind);
    /* Arena memory freed with the batch. NULL on OOM. */
    void     *(*batch_alloc)(sl_batch *b, size_t size);
    char     *(*batch_strndup)(sl_batch *b, const char *s, size_t len);
    /* Attach table metadata to an event: the batch keeps a reference until it is freed. */
    void      (*batch_set_meta)(sl_batch *b, sl_event *ev, sl_table *t);

    /* Table metadata: table_new allocates a table with ncols zeroed columns and refcnt 1;
     * strings given to table_strdup live as long as the table. */
    sl_table *(*table_new)(uint32_t ncols);
    char     *(*table_strdup)(sl_table *t, const char *s);
    void      (*table_ref)(sl_table *t);
    void      (*table_unref)(sl_table *t);

    /* Sources: hand a batch downstream (consumes the caller's reference). Blocks while the next
     * queue is full (backpressure). Returns 0, or SL_ESTOPPED when the pipeline is stopping. */
    int   (*emit)(sl_ctx *ctx, sl_batch *b);

    /* Cooperative cancellation: non-zero once pause or stop was requested. Long loops poll it. */
    int   (*should_stop)(sl_ctx *ctx);

    /* Threads owned by the server's scheduler (counted against its limit). Returns 0 and a
     * handle, or a negative code. thread_join waits for the function to return. */
    int   (*thread_start)(sl_ctx *ctx, const char *name, sl_thread_fn fn, void *arg, void **handle);
    void  (*thread_join)(sl_ctx *ctx, void *handle);

    /* Counters shown in status (e.g. "total_events"). Thread-safe. */
    void  (*metric_add)(sl_ctx *ctx, const char *name, int64_t delta);
    void  (*metric_set)(sl_ctx *ctx, const char *name, int64_t value);

    /* Key/value state kept by the host for this instance across restarts (small values only;
     * checkpoints of data belong in the target). get returns a copy (free with host->free) or NULL. */
    int   (*state_put)(sl_ctx *ctx, const char *key, const char *value);
    char *(*state_get)(sl_ctx *ctx, const char *key);

    /* Since ABI 1.0 (added after the first draft; check SL_HOST_HAS(host, table_alloc)):
     * memory that lives as long as the table (for pk, keys, type_text...). NULL on OOM. The
     * host frees only what table_new, table_strdup and table_alloc handed out, so a table's
     * pk/keys arrays must come from table_alloc (or be static). */
    void *(*table_alloc)(sl_table *t, size_t size);

    /* Since ABI 1.0 (check SL_HOST_HAS(host, input_pending)): how many batches wait in the
     * instance's input queue right now (0 for a source, or when the host cannot tell). A sink
     * may keep a unit of work open while more input waits and close it when none does (DM's
     * workers flush when their channel is momentarily empty). Thread-safe. */
    size_t (*input_pending)(sl_ctx *ctx);

    /* Since ABI 1.4 (check SL_HOST_HAS(host, shard)): a request to the shard DDL coordinator of
     * the instance's task (runtime/shard.h), which holds the task's shard-DDL locks across its
     * sources in the metadata store. request is a JSON object text whose "op" names the
     * operation ("arrive", "done", "state", "resume"); returns 0 with *reply a JSON text (free
     * with host->free) or a negative code: SL_ENOTSUP when the host has no coordinator (a
     * pipeline outside a server). May block (the store, the sources' table lists).
     * Thread-safe. */
    int   (*shard)(sl_ctx *ctx, const char *request, char **reply);

    /* Add new functions here, at the end only. */
} sl_host;

#define SL_HOST_HAS(host, field) \
    ((host)->struct_size >= offsetof(sl_host, field) + sizeof((host)->field))

/* ---- capabilities ----------------------------------------------------------------------- */

/*
 * What a stage takes and gives, so the compiler can refuse a pipeline whose stages do not fit
 * before anything runs (a sink that needs before images behind a source that does not give
 * them, a chunk-less sink in a full phase...). A plugin points its descriptor's caps at one
 * static sl_plugin_caps; a plugin without one (ABI < 1.2, or caps NULL) gets the defaults of
 * its kind from sl_plugin_caps_of (runtime.h): it takes and gives every event kind and image,
 * keeps order, and its checkpoint (a sink's) is at-least-once.
 */

/* Event kinds as bits: SL_CAP_EV(SL_EV_INSERT) | ... ; SL_CAP_EV_ROWS = insert, update, delete. */
#define SL_CAP_EV(kind)  (1u << (unsigned)(kind))
#define SL_CAP_EV_ROWS   (SL_CAP_EV(SL_EV_INSERT) | SL_CAP_EV(SL_EV_UPDATE) | SL_CAP_EV(SL_EV_DELETE))
#define SL_CAP_EV_TXN    (SL_CAP_EV(SL_EV_BEGIN) | SL_CAP_EV(SL_EV_COMMIT))
#define SL_CAP_EV_ALL    (SL_CAP_EV_ROWS | SL_CAP_EV(SL_EV_DDL) | SL_CAP_EV_TXN | \
                          SL_CAP_EV(SL_EV_HEARTBEAT) | SL_CAP_EV(SL_EV_CHUNK))

/* Row images as bits: what an update's/delete's before image and an insert's/update's after
 * image hold. FULL = every column (binlog_row_image=FULL); a stage that can only key rows by
 * their primary key needs no more than SL_CAP_IMG_KEY. */
#define SL_CAP_IMG_KEY     0x1u   /* before images hold at least the key columns */
#define SL_CAP_IMG_BEFORE  0x2u   /* before images hold every column */
#define SL_CAP_IMG_AFTER   0x4u   /* after images hold every column */
#define SL_CAP_IMG_ALL     (SL_CAP_IMG_KEY | SL_CAP_IMG_BEFORE | SL_CAP_IMG_AFTER)

/* sl_plugin_caps.order */
#define SL_CAP_ORDER_KEEPS 0x1u   /* gives events in the order it got them (per source) */
#define SL_CAP_ORDER_NEEDS 0x2u   /* must get them in source order */

/* sl_plugin_caps.delivery (sinks) */
#define SL_CAP_AT_LEAST_ONCE 1u   /* after a crash, some events after the checkpoint repeat */
#define SL_CAP_EXACTLY_ONCE  2u   /* the checkpoint moves atomically with the data */

typedef struct sl_plugin_caps {
    uint32_t struct_size;   /* sizeof(sl_plugin_caps) */
    uint32_t takes;         /* SL_CAP_EV bits it accepts (transforms, sinks); others pass by */
    uint32_t gives;         /* SL_CAP_EV bits it may emit (sources, transforms) */
    uint32_t needs_images;  /* SL_CAP_IMG bits it requires of its input */
    uint32_t gives_images;  /* SL_CAP_IMG bits its output holds (sources; transforms that
                               trim or fill images) */
    uint32_t order;         /* SL_CAP_ORDER_* bits */
    uint32_t delivery;      /* SL_CAP_AT_LEAST_ONCE or SL_CAP_EXACTLY_ONCE (sinks), else 0 */
    uint32_t reserved;      /* must be 0 */
} sl_plugin_caps;

/* ---- the descriptor ---------------------------------------------------------------------- */

typedef struct sl_plugin_descriptor {
    uint32_t           abi_version;   /* SL_ABI_VERSION */
    uint32_t           struct_size;   /* sizeof(sl_plugin_descriptor) */
    const char        *name;          /* unique; the file is sluice-<name>.so */
    sl_plugin_kind     kind;
    const char        *description;
    const sl_option   *options;       /* terminated by { .name = NULL } */
    size_t             config_size;   /* size of the config struct the options fill */

    /* Create an instance from a filled config (valid until destroy). Store your state in *self.
     * Must not start threads or connect; return 0 or a negative code (after host->fail). */
    int   (*create)(const sl_host *host, sl_ctx *ctx, const void *config, void **self);
    /* Prepare to run (connect, read checkpoints). Called before run/process, and again on resume. */
    int   (*start)(void *self);
    /* Sources: produce batches with host->emit until done (return SL_DONE... or 0), stopped
     * (return SL_ESTOPPED once should_stop() is set) or failed (negative, after host->fail). */
    int   (*run)(void *self);
    /* Transforms and sinks: handle one batch (the host keeps its reference). A transform returns
     * 0 to forward the batch or SL_DROP to forward nothing; a negative code fails the pipeline. */
    int   (*process)(void *self, sl_batch *b);
    /* Make everything processed so far durable (sinks: commit, checkpoint). May be NULL. */
    int   (*flush)(void *self);
    /* Stop running: called after run/process returned, before a pause or destroy. May be NULL. */
    void  (*stop)(void *self);
    void  (*destroy)(void *self);
    /* Status as a JSON object text allocated with host->alloc (the host frees it). May be NULL. */
    char *(*status)(void *self);

    /* Since ABI 1.1 (the host reads it with SL_DESCRIPTOR_HAS(d, cleanup)). Remove what this
     * instance's task keeps outside the host: `what` is SL_CLEANUP_META (checkpoints, claims,
     * markers in the target's meta schema) and/or SL_CLEANUP_FILES (files under its data
     * directory). Called when a task is deleted (DELETE without keep_meta) or started with
     * remove_meta, on an instance that was created with the task's options and never started;
     * it may connect and may block. Idempotent: what is already gone is not an error. Return 0
     * or a negative code after host->fail (the host logs it; the task is removed either way).
     * May be NULL: the plugin keeps nothing of its own. */
    int   (*cleanup)(void *self, unsigned what);

    /* Since ABI 1.2 (read with SL_DESCRIPTOR_HAS(d, caps), or through sl_plugin_caps_of).
     * What the stage takes and gives; NULL means the defaults of its kind (see above). */
    const sl_plugin_caps *caps;

    /* Since ABI 1.3 (read with SL_DESCRIPTOR_HAS(d, ctl)). An operation asked of the plugin by
     * the server on an instance created with the task's options and never started (the subtask
     * is not running): request is a JSON object text whose "op" names the operation (the
     * binlog-reader's schema tracker answers "schema_get", "schema_put", "schema_delete",
     * "schema_list"). Returns 0 with *reply a JSON text allocated with host->alloc (or NULL),
     * or a negative code after host->fail (SL_ENOENT: what the request names does not exist;
     * SL_EINVAL: the request is refused; SL_ENOTSUP: unknown op). May be NULL.
     * A sink that keeps its own checkpoint answers {"op":"checkpoint"}, which the runtime asks
     * before each incremental run: reply {"binlog_name": "mysql-bin.000003", "binlog_pos": 1234,
     * "binlog_gtid": "0-1-42"} (name and pos, gtid, or all three: the position after the last
     * transaction the sink made durable), and the binlog-reader starts there instead of at
     * mysql-sink's checkpoint or the task's position; SL_ENOENT when it has none yet (the task's
     * position applies); any other failure pauses the subtask with the plugin's message. */
    int   (*ctl)(void *self, const char *request, char **reply);

    void  *reserved[5];               /* must be NULL */
} sl_plugin_descriptor;

/* What a cleanup() removes (bits). */
#define SL_CLEANUP_META  1u
#define SL_CLEANUP_FILES 2u

/* 1 if descriptor d has a field added after 1.0: the plugin's struct_size covers it and the
 * plugin's minor version is at least the one that added the field (SL__SINCE_<field>). */
#define SL_DESCRIPTOR_HAS(d, field) \
    ((d)->struct_size >= offsetof(sl_plugin_descriptor, field) + sizeof((d)->field) && \
     SL_ABI_MINOR_OF((d)->abi_version) >= SL__SINCE_##field)
#define SL__SINCE_cleanup 1
#define SL__SINCE_caps 2
#define SL__SINCE_ctl 3

/* The smallest descriptor the loader accepts: everything up to and including status. */
#define SL_DESCRIPTOR_MIN_SIZE (offsetof(sl_plugin_descriptor, status) + sizeof(void *))

#ifdef __cplusplus
}
#endif
#endif
