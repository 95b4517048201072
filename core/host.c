/*
 * host.c - the host function table (plugin.h sl_host) and the per-instance context it is called
 * with: log prefix, first error, metrics, stop flag, state keys and the owner's emit/fail hooks.
 */
#include "host.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/log.h"

sl_ctx *sl__ctx_new(const char *prefix, sl_scheduler *sched, const sl_state_store *state,
                    atomic_int *stop, const sl__ctx_hooks *hooks)
{
    sl_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->prefix = strdup(prefix ? prefix : "");
    if (!c->prefix) {
        free(c);
        return NULL;
    }
    c->sched = sched;
    c->state = state;
    atomic_init(&c->own_stop, 0);
    c->stop = stop ? stop : &c->own_stop;
    if (hooks)
        c->hooks = *hooks;
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

void sl__ctx_free(sl_ctx *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nmetrics; i++)
        free(c->metrics[i].name);
    free(c->metrics);
    pthread_mutex_destroy(&c->mu);
    free(c->prefix);
    free(c);
}

void sl__ctx_error(sl_ctx *c, sl_error *out)
{
    pthread_mutex_lock(&c->mu);
    *out = c->err;
    pthread_mutex_unlock(&c->mu);
}

void sl__ctx_set_error(sl_ctx *c, int code, const char *msg)
{
    pthread_mutex_lock(&c->mu);
    if (c->err.code == 0)
        sl_error_set(&c->err, code, "%s", msg);
    pthread_mutex_unlock(&c->mu);
}

void sl__ctx_clear_error(sl_ctx *c)
{
    pthread_mutex_lock(&c->mu);
    c->err.code = 0;
    c->err.msg[0] = '\0';
    pthread_mutex_unlock(&c->mu);
}

static metric *find_metric(sl_ctx *c, const char *name)
{
    for (size_t i = 0; i < c->nmetrics; i++)
        if (strcmp(c->metrics[i].name, name) == 0)
            return &c->metrics[i];
    if (c->nmetrics == c->cmetrics) {
        size_t cap = c->cmetrics ? c->cmetrics * 2 : 8;
        metric *v = realloc(c->metrics, cap * sizeof *v);
        if (!v)
            return NULL;
        c->metrics = v;
        c->cmetrics = cap;
    }
    char *n = strdup(name);
    if (!n)
        return NULL;
    c->metrics[c->nmetrics] = (metric){ n, 0 };
    return &c->metrics[c->nmetrics++];
}

void sl__metric_add(sl_ctx *c, const char *name, int64_t delta)
{
    pthread_mutex_lock(&c->mu);
    metric *m = find_metric(c, name);
    if (m)
        m->value += delta;
    pthread_mutex_unlock(&c->mu);
}

static void metric_set(sl_ctx *c, const char *name, int64_t value)
{
    pthread_mutex_lock(&c->mu);
    metric *m = find_metric(c, name);
    if (m)
        m->value = value;
    pthread_mutex_unlock(&c->mu);
}

char *sl__ctx_metrics_json(sl_ctx *c)
{
    json_t *o = json_object();
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; o && i < c->nmetrics; i++)
        json_object_set_new(o, c->metrics[i].name, json_integer(c->metrics[i].value));
    pthread_mutex_unlock(&c->mu);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

/* ---- the functions of the table ---- */

static void host_log(sl_ctx *c, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sl_logv(level, c ? c->prefix : NULL, fmt, ap);
    va_end(ap);
}

static void *host_alloc(size_t n) { return malloc(n); }
static void *host_calloc(size_t n, size_t size) { return calloc(n, size); }
static void *host_realloc(void *p, size_t n) { return realloc(p, n); }
static void  host_free(void *p) { free(p); }

static int host_fail(sl_ctx *c, int code, const char *fmt, ...)
{
    char msg[SL_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (code >= 0)
        code = SL_EPLUGIN;
    /* Unwinding after a stop request is not a failure. */
    if (code == SL_ESTOPPED)
        return code;
    sl_log(SL_LOG_ERROR, c->prefix, "%s", msg);
    sl__ctx_set_error(c, code, msg);
    if (c->hooks.failed)
        c->hooks.failed(c->hooks.owner, c, code);
    return code;
}

static sl_batch *host_batch_new(sl_ctx *c, uint32_t cap_hint) { return sl__batch_new(cap_hint); }

static int host_emit(sl_ctx *c, sl_batch *b)
{
    if (c->hooks.emit)
        return c->hooks.emit(c->hooks.owner, c, b);
    sl__batch_unref(b);
    return atomic_load(c->stop) ? SL_ESTOPPED : 0;
}

static int host_should_stop(sl_ctx *c)
{
    return atomic_load_explicit(c->stop, memory_order_relaxed) != 0;
}

static int host_thread_start(sl_ctx *c, const char *name, sl_thread_fn fn, void *arg, void **handle)
{
    sl__thread *t = NULL;
    int rc = sl__thread_start(c->sched, name, fn, arg, &t);
    *handle = t;
    return rc;
}

static void host_thread_join(sl_ctx *c, void *handle)
{
    sl__thread_join(handle);
}

static void host_metric_add(sl_ctx *c, const char *name, int64_t delta) { sl__metric_add(c, name, delta); }
static void host_metric_set(sl_ctx *c, const char *name, int64_t value) { metric_set(c, name, value); }

static size_t host_input_pending(sl_ctx *c)
{
    return c->hooks.pending ? c->hooks.pending(c->hooks.owner, c) : 0;
}

static int state_key(sl_ctx *c, const char *key, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/%s", c->prefix, key);
    return (n < 0 || (size_t)n >= len) ? SL_EINVAL : 0;
}

static int host_state_put(sl_ctx *c, const char *key, const char *value)
{
    char k[1024];
    if (!c->state || !c->state->put)
        return SL_ENOTSUP;
    if (!key || state_key(c, key, k, sizeof k) < 0)
        return SL_EINVAL;
    return c->state->put(c->state->ud, k, value);
}

static char *host_state_get(sl_ctx *c, const char *key)
{
    char k[1024];
    if (!c->state || !c->state->get || !key || state_key(c, key, k, sizeof k) < 0)
        return NULL;
    /* Stores return malloc'd text and host->free is free(): the copy can be handed on as is. */
    return c->state->get(c->state->ud, k);
}

static int host_shard(sl_ctx *c, const char *request, char **reply)
{
    *reply = NULL;
    if (!c->state || !c->state->shard)
        return SL_ENOTSUP;
    if (!request)
        return SL_EINVAL;
    /* Stores return malloc'd text and host->free is free(): the reply is handed on as is. */
    return c->state->shard(c->state->ud, c->prefix, request, reply);
}

static const sl_host host_table = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_host),
    .log = host_log,
    .alloc = host_alloc,
    .calloc = host_calloc,
    .realloc = host_realloc,
    .free = host_free,
    .fail = host_fail,
    .batch_new = host_batch_new,
    .batch_ref = sl__batch_ref,
    .batch_unref = sl__batch_unref,
    .batch_push = sl__batch_push,
    .batch_alloc = sl__batch_alloc,
    .batch_strndup = sl__batch_strndup,
    .batch_set_meta = sl__batch_set_meta,
    .table_new = sl__table_new,
    .table_strdup = sl__table_strdup,
    .table_ref = sl__table_ref,
    .table_unref = sl__table_unref,
    .emit = host_emit,
    .should_stop = host_should_stop,
    .thread_start = host_thread_start,
    .thread_join = host_thread_join,
    .metric_add = host_metric_add,
    .metric_set = host_metric_set,
    .state_put = host_state_put,
    .state_get = host_state_get,
    .table_alloc = sl__table_alloc,
    .input_pending = host_input_pending,
    .shard = host_shard,
};

const sl_host *sl__host(void)
{
    return &host_table;
}
