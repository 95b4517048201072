/*
 * memplugins.c - test-only in-process plugins: a numbered-event source, a transform that
 * doubles after[0], and a sink that checks every event arrives once and in order.
 */
#include "memplugins.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- mem-source ---- */

typedef struct src_cfg {
    int64_t count;       /* events to produce; -1 = until stopped */
    int64_t batch;       /* events per batch */
    int64_t fail_after;  /* fail (host->fail) after this many batches; -1 = never */
    int     fail_start;  /* start() fails */
} src_cfg;

static const sl_option src_opts[] = {
    { .name = "count", .type = SL_OPT_INT, .def = "1000", .offset = offsetof(src_cfg, count), .min = -1, .max = INT64_MAX },
    { .name = "batch", .type = SL_OPT_INT, .def = "1024", .offset = offsetof(src_cfg, batch), .min = 1, .max = 1 << 20 },
    { .name = "fail_after", .type = SL_OPT_INT, .def = "-1", .offset = offsetof(src_cfg, fail_after), .min = -1, .max = INT64_MAX },
    { .name = "fail_start", .type = SL_OPT_BOOL, .def = "false", .offset = offsetof(src_cfg, fail_start) },
    { .name = NULL },
};

typedef struct src {
    const sl_host *host;
    sl_ctx *ctx;
    const src_cfg *cfg;
    uint64_t next;          /* next seq; kept across pause/resume */
    atomic_ullong emitted;
    int starts, stops;
} src;

static int src_create(const sl_host *host, sl_ctx *ctx, const void *config, void **self)
{
    src *s = host->calloc(1, sizeof *s);
    if (!s)
        return SL_ENOMEM;
    s->host = host;
    s->ctx = ctx;
    s->cfg = config;
    *self = s;
    return 0;
}

static int src_start(void *self)
{
    src *s = self;
    s->starts++;
    if (s->cfg->fail_start)
        return s->host->fail(s->ctx, SL_ECONN, "mem-source cannot start (as configured)");
    return 0;
}

static int src_run(void *self)
{
    src *s = self;
    const sl_host *h = s->host;
    int64_t nb = 0;
    while (s->cfg->count < 0 || s->next < (uint64_t)s->cfg->count) {
        if (h->should_stop(s->ctx))
            return SL_ESTOPPED;
        if (s->cfg->fail_after >= 0 && nb == s->cfg->fail_after)
            return h->fail(s->ctx, SL_EIO, "mem-source failed after %lld batches", (long long)nb);
        sl_batch *b = h->batch_new(s->ctx, (uint32_t)s->cfg->batch);
        if (!b)
            return SL_ENOMEM;
        for (int64_t i = 0; i < s->cfg->batch; i++) {
            if (s->cfg->count >= 0 && s->next >= (uint64_t)s->cfg->count)
                break;
            sl_event *ev = h->batch_push(b, SL_EV_INSERT);
            sl_value *v = h->batch_alloc(b, sizeof *v);
            if (!ev || !v) {
                h->batch_unref(b);
                return SL_ENOMEM;
            }
            *v = sl_value_int((int64_t)s->next);
            ev->seq = s->next++;
            ev->ncols = 1;
            ev->after = v;
            ev->schema = "db";
            ev->table = "t";
        }
        b->flags |= SL_BATCH_TXN_END;
        uint32_t n = b->n;
        int rc = h->emit(s->ctx, b);
        if (rc < 0)
            return rc;
        atomic_fetch_add(&s->emitted, n);
        nb++;
    }
    return SL_DONE;
}

static void src_stop(void *self) { ((src *)self)->stops++; }
static void src_destroy(void *self) { src *s = self; s->host->free(s); }

static char *src_status(void *self)
{
    src *s = self;
    char buf[128];
    snprintf(buf, sizeof buf, "{\"emitted\":%llu}", (unsigned long long)atomic_load(&s->emitted));
    char *out = s->host->alloc(strlen(buf) + 1);
    if (out)
        strcpy(out, buf);
    return out;
}

const sl_plugin_descriptor sl_test_mem_source = {
    .abi_version = SL_ABI_VERSION, .struct_size = sizeof(sl_plugin_descriptor),
    .name = "mem-source", .kind = SL_PLUGIN_SOURCE, .description = "numbered INSERT events",
    .options = src_opts, .config_size = sizeof(src_cfg),
    .create = src_create, .start = src_start, .run = src_run, .stop = src_stop,
    .destroy = src_destroy, .status = src_status,
};

/* ---- mem-xform ---- */

typedef struct xf_cfg { int64_t fail_at; int64_t drop_every; int touch; } xf_cfg;

static const sl_option xf_opts[] = {
    { .name = "fail_at", .type = SL_OPT_INT, .def = "-1", .offset = offsetof(xf_cfg, fail_at), .min = -1, .max = INT64_MAX },
    { .name = "drop_every", .type = SL_OPT_INT, .def = "0", .offset = offsetof(xf_cfg, drop_every), .min = 0, .max = INT64_MAX },
    /* false: read-only (batches shared by a fan-out must not be written by two stages) */
    { .name = "touch", .type = SL_OPT_BOOL, .def = "true", .offset = offsetof(xf_cfg, touch) },
    { .name = NULL },
};

typedef struct xf { const sl_host *host; sl_ctx *ctx; const xf_cfg *cfg; int64_t batches; } xf;

static int xf_create(const sl_host *host, sl_ctx *ctx, const void *config, void **self)
{
    xf *x = host->calloc(1, sizeof *x);
    if (!x)
        return SL_ENOMEM;
    x->host = host;
    x->ctx = ctx;
    x->cfg = config;
    *self = x;
    return 0;
}

static int xf_process(void *self, sl_batch *b)
{
    xf *x = self;
    int64_t nb = x->batches++;
    if (x->cfg->fail_at >= 0 && nb == x->cfg->fail_at)
        return x->host->fail(x->ctx, SL_EPLUGIN, "mem-xform failed at batch %lld", (long long)nb);
    if (x->cfg->drop_every && (nb % x->cfg->drop_every) == x->cfg->drop_every - 1)
        return SL_DROP;
    if (x->cfg->touch)
        for (uint32_t i = 0; i < b->n; i++)
            b->events[i].after[0].v.i *= 2;
    return 0;
}

static void xf_destroy(void *self) { xf *x = self; x->host->free(x); }

const sl_plugin_descriptor sl_test_mem_xform = {
    .abi_version = SL_ABI_VERSION, .struct_size = sizeof(sl_plugin_descriptor),
    .name = "mem-xform", .kind = SL_PLUGIN_TRANSFORM, .description = "doubles after[0]",
    .options = xf_opts, .config_size = sizeof(xf_cfg),
    .create = xf_create, .process = xf_process, .destroy = xf_destroy,
};

/* ---- mem-sink ---- */

typedef struct sk_cfg { int doubled; } sk_cfg;

static const sl_option sk_opts[] = {
    { .name = "doubled", .type = SL_OPT_BOOL, .def = "true", .offset = offsetof(sk_cfg, doubled) },
    { .name = NULL },
};

typedef struct sk {
    const sl_host *host;
    sl_ctx *ctx;
    const sk_cfg *cfg;
    atomic_llong count;
    atomic_ullong sum;       /* of seq */
    atomic_llong bad;        /* events out of order or with a wrong value */
    atomic_int flushes, stops;
    uint64_t last;           /* last seq + 1 */
} sk;

static int sk_create(const sl_host *host, sl_ctx *ctx, const void *config, void **self)
{
    sk *k = host->calloc(1, sizeof *k);
    if (!k)
        return SL_ENOMEM;
    k->host = host;
    k->ctx = ctx;
    k->cfg = config;
    *self = k;
    return 0;
}

static int sk_process(void *self, sl_batch *b)
{
    sk *k = self;
    uint64_t sum = 0;
    int64_t bad = 0;
    for (uint32_t i = 0; i < b->n; i++) {
        const sl_event *ev = &b->events[i];
        int64_t want = (int64_t)ev->seq * (k->cfg->doubled ? 2 : 1);
        if (ev->seq + 1 <= k->last || ev->after[0].v.i != want)
            bad++;
        k->last = ev->seq + 1;
        sum += ev->seq;
    }
    atomic_fetch_add(&k->count, b->n);
    atomic_fetch_add(&k->sum, sum);
    if (bad)
        atomic_fetch_add(&k->bad, bad);
    return 0;
}

static int sk_flush(void *self)
{
    sk *k = self;
    atomic_fetch_add(&k->flushes, 1);
    char v[32];
    snprintf(v, sizeof v, "%llu", (unsigned long long)k->last);
    return k->host->state_put(k->ctx, "last", v);
}

static void sk_stop(void *self) { atomic_fetch_add(&((sk *)self)->stops, 1); }
static void sk_destroy(void *self) { sk *k = self; k->host->free(k); }

static char *sk_status(void *self)
{
    sk *k = self;
    char buf[256];
    snprintf(buf, sizeof buf, "{\"count\":%lld,\"sum\":%llu,\"bad\":%lld,\"flushes\":%d,\"stops\":%d}",
             (long long)atomic_load(&k->count), (unsigned long long)atomic_load(&k->sum),
             (long long)atomic_load(&k->bad), atomic_load(&k->flushes), atomic_load(&k->stops));
    char *out = k->host->alloc(strlen(buf) + 1);
    if (out)
        strcpy(out, buf);
    return out;
}

const sl_plugin_descriptor sl_test_mem_sink = {
    .abi_version = SL_ABI_VERSION, .struct_size = sizeof(sl_plugin_descriptor),
    .name = "mem-sink", .kind = SL_PLUGIN_SINK, .description = "checks order, counts",
    .options = sk_opts, .config_size = sizeof(sk_cfg),
    .create = sk_create, .process = sk_process, .flush = sk_flush, .stop = sk_stop,
    .destroy = sk_destroy, .status = sk_status,
};

/* ---- helpers ---- */

int sl_test_register_mem(sl_registry *reg)
{
    sl_error e = { 0 };
    if (sl_registry_add(reg, &sl_test_mem_source, &e) < 0 ||
        sl_registry_add(reg, &sl_test_mem_xform, &e) < 0 ||
        sl_registry_add(reg, &sl_test_mem_sink, &e) < 0) {
        fprintf(stderr, "register: %s\n", e.msg);
        abort();
    }
    return 0;
}

sl_pipeline_spec *sl_test_linear_spec(const char *name, size_t n, const char *const *ids,
                                      const char *const *plugins, const char *const *options)
{
    sl_pipeline_spec *s = calloc(1, sizeof *s);
    s->name = strdup(name);
    s->nstages = n;
    s->stages = calloc(n, sizeof *s->stages);
    for (size_t i = 0; i < n; i++) {
        s->stages[i].id = strdup(ids[i]);
        s->stages[i].plugin = strdup(plugins[i]);
        s->stages[i].options_json = strdup(options[i] ? options[i] : "{}");
    }
    s->nedges = n - 1;
    s->edges = calloc(n, sizeof *s->edges);
    for (size_t i = 0; i + 1 < n; i++)
        s->edges[i] = (sl_edge_spec){ (uint32_t)i, (uint32_t)i + 1 };
    return s;
}

long long sl_test_status_int(sl_pipeline *p, size_t idx, const char *key)
{
    char *txt = sl_pipeline_status_json(p);
    json_t *o = txt ? json_loads(txt, 0, NULL) : NULL;
    free(txt);
    json_t *v = json_object_get(json_object_get(json_array_get(json_object_get(o, "stages"), idx),
                                                "status"), key);
    long long r = json_is_integer(v) ? (long long)json_integer_value(v) : -1;
    json_decref(o);
    return r;
}
