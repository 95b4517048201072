/*
 * passthrough.c - the smallest useful sluice plugin, built out of tree against the installed SDK
 * (<sluice/plugin.h> and libsluice-sdk, found with `pkg-config --cflags --libs sluice-plugin`): a
 * transform that forwards every batch unchanged, counts the events it saw in the metric "passed",
 * and those whose table matches its `tables` pattern (a DM table pattern, through the SDK's
 * matcher) in "matched".
 */
#include <sluice/match.h>
#include <sluice/plugin.h>

typedef struct config {
    int     verbose;    /* log every batch at debug level */
    int64_t every;      /* with verbose: only every Nth batch */
    char   *tables;     /* DM table pattern counted in "matched" */
} config;

static const sl_option options[] = {
    { .name = "verbose", .type = SL_OPT_BOOL, .def = "false", .desc = "log batches at debug level",
      .offset = offsetof(config, verbose) },
    { .name = "every", .type = SL_OPT_INT, .def = "1", .desc = "log every Nth batch",
      .offset = offsetof(config, every), .min = 1, .max = 1000000 },
    { .name = "tables", .type = SL_OPT_STRING, .def = "\"*\"",
      .desc = "DM table pattern (wildcard or ~regex) whose events are counted in \"matched\"",
      .offset = offsetof(config, tables), .min = 0, .max = -1 },
    { .name = NULL },
};

typedef struct passthrough {
    const sl_host *host;
    sl_ctx        *ctx;
    const config  *cfg;
    sl_pattern    *tables;
    uint64_t       batches;
} passthrough;

static int pt_create(const sl_host *host, sl_ctx *ctx, const void *cfg, void **self)
{
    passthrough *p = host->calloc(1, sizeof *p);
    if (!p)
        return host->fail(ctx, SL_ENOMEM, "passthrough: out of memory");
    p->host = host;
    p->ctx = ctx;
    p->cfg = cfg;
    *self = p;
    /* The SDK's error convention: the matcher fills a caller-owned sl_error; a bad pattern fails
     * here, when the task is built, never at the first event. */
    sl_error err = { 0 };
    if (sl_pattern_compile(p->cfg->tables, &p->tables, &err) != 0) {
        sl_error_prefix(&err, "passthrough: option tables");
        /* A failed create is not destroyed by the host: free what it made. */
        host->free(p);
        *self = NULL;
        return host->fail(ctx, err.code, "%s", err.msg);
    }
    return 0;
}

static int pt_process(void *self, sl_batch *b)
{
    passthrough *p = self;
    p->batches++;
    p->host->metric_add(p->ctx, "passed", b->n);
    uint64_t matched = 0;
    for (uint32_t i = 0; i < b->n; i++)
        if (b->events[i].table && sl_pattern_match(p->tables, b->events[i].table))
            matched++;
    if (matched)
        p->host->metric_add(p->ctx, "matched", matched);
    if (p->cfg->verbose && p->batches % (uint64_t)p->cfg->every == 0)
        p->host->log(p->ctx, SL_LOG_DEBUG, "batch %llu: %u events",
                     (unsigned long long)p->batches, b->n);
    return 0;   /* forward the batch unchanged */
}

static void pt_destroy(void *self)
{
    passthrough *p = self;
    sl_pattern_free(p->tables);
    p->host->free(p);
}

SL_PLUGIN_EXPORT const sl_plugin_descriptor sluice_plugin = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_plugin_descriptor),
    .name = "passthrough",
    .kind = SL_PLUGIN_TRANSFORM,
    .description = "forwards every batch unchanged (example of an out-of-tree plugin)",
    .options = options,
    .config_size = sizeof(config),
    .create = pt_create,
    .process = pt_process,
    .destroy = pt_destroy,
};
