/*
 * host.h - (core-internal) the host side of the plugin ABI: batches and their arenas, table
 * metadata, the per-instance context (sl_ctx) and the host function table handed to plugins.
 */
#ifndef SLUICE_CORE_HOST_H
#define SLUICE_CORE_HOST_H

#include <pthread.h>
#include <stdatomic.h>
#include "sluice/runtime.h"
#include "scheduler.h"

/* ---- batches and tables (batch.c); these are what the host table points at ---- */

/* A batch with one reference and room for cap_hint events (0 = 64). NULL on OOM. */
/* 0 if the option's default (if any) parses and fits its own type and bounds; else -1 with a
 * message (options.c). The registry refuses a plugin whose defaults are broken. */
int       sl__option_default_ok(const sl_option *o, char *msg, size_t msglen);

sl_batch *sl__batch_new(uint32_t cap_hint);
void      sl__batch_ref(sl_batch *b);
/* Drop a reference; the last one frees the events, the arena and the table references. */
void      sl__batch_unref(sl_batch *b);
sl_event *sl__batch_push(sl_batch *b, sl_event_kind kind);
/* 16-byte aligned arena memory; adds size to b->bytes. */
void     *sl__batch_alloc(sl_batch *b, size_t size);
char     *sl__batch_strndup(sl_batch *b, const char *s, size_t len);
void      sl__batch_set_meta(sl_batch *b, sl_event *ev, sl_table *t);
/* Current reference count (for tests). */
uint32_t  sl__batch_refs(const sl_batch *b);

sl_table *sl__table_new(uint32_t ncols);
char     *sl__table_strdup(sl_table *t, const char *s);
void     *sl__table_alloc(sl_table *t, size_t size);
void      sl__table_ref(sl_table *t);
void      sl__table_unref(sl_table *t);

/* ---- in-memory state store (state.c) ---- */

/* A thread-safe map behind the sl_state_store interface. Caller frees with sl__memstate_free. */
sl_state_store *sl__memstate_new(void);
void            sl__memstate_free(sl_state_store *st);

/* ---- the per-instance context (host.c) ---- */

typedef struct metric { char *name; int64_t value; } metric;

/* What a context's owner (the pipeline) does for emit and fail. */
typedef struct sl__ctx_hooks {
    void *owner;
    /* Hand b downstream; consumes the reference in every case. */
    int  (*emit)(void *owner, sl_ctx *ctx, sl_batch *b);
    /* The instance failed (host->fail was called); message is in ctx->err. */
    void (*failed)(void *owner, sl_ctx *ctx, int code);
    /* Batches waiting in the instance's input queue (host->input_pending); may be NULL (0). */
    size_t (*pending)(void *owner, sl_ctx *ctx);
} sl__ctx_hooks;

struct sl_ctx {
    char           *prefix;        /* log prefix "pipeline/stage" */
    sl_scheduler   *sched;         /* may be NULL: threads unbounded */
    const sl_state_store *state;   /* may be NULL: state_put fails with SL_ENOTSUP */
    atomic_int     *stop;          /* the owner's stop flag, or &own_stop */
    atomic_int      own_stop;
    sl__ctx_hooks   hooks;
    uint32_t        index;         /* stage index in the owner */
    pthread_mutex_t mu;            /* guards err and metrics */
    sl_error        err;           /* first failure reported with host->fail */
    metric         *metrics;
    size_t          nmetrics, cmetrics;
};

/* A context with log prefix prefix. hooks may be NULL (emit then drops the batch and returns 0).
 * Caller frees with sl__ctx_free. */
sl_ctx *sl__ctx_new(const char *prefix, sl_scheduler *sched, const sl_state_store *state,
                    atomic_int *stop, const sl__ctx_hooks *hooks);
void    sl__ctx_free(sl_ctx *ctx);

/* Copy of the first error recorded by host->fail (code 0 if none). Thread-safe. */
void    sl__ctx_error(sl_ctx *ctx, sl_error *out);
/* Record an error unless one is recorded already. Thread-safe. */
void    sl__ctx_set_error(sl_ctx *ctx, int code, const char *msg);
void    sl__ctx_clear_error(sl_ctx *ctx);
/* The metrics as a JSON object text (caller frees with free()). Thread-safe. */
char   *sl__ctx_metrics_json(sl_ctx *ctx);
void    sl__metric_add(sl_ctx *ctx, const char *name, int64_t delta);

/* The host function table given to every plugin instance (static, shared). */
const sl_host *sl__host(void);

#endif
