/*
 * passthrough.c - the smallest useful sluice plugin, built out of tree against the installed
 * header (<sluice/plugin.h>, found with `pkg-config --cflags sluice-plugin`): a transform that
 * forwards every batch unchanged and counts the events it saw in the metric "passed".
 */
#include <sluice/plugin.h>

typedef struct config {
    int     verbose;    /* log every batch at debug level */
    int64_t every;      /* with verbose: only every Nth batch */
} config;

static const sl_option options[] = {
    { .name = "verbose", .type = SL_OPT_BOOL, .def = "false", .desc = "log batches at debug level",
      .offset = offsetof(config, verbose) },
    { .name = "every", .type = SL_OPT_INT, .def = "1", .desc = "log every Nth batch",
      .offset = offsetof(config, every), .min = 1, .max = 1000000 },
    { .name = NULL },
};

typedef struct passthrough {
    const sl_host *host;
    sl_ctx        *ctx;
    const config  *cfg;
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
    return 0;
}

static int pt_process(void *self, sl_batch *b)
{
    passthrough *p = self;
    p->batches++;
    p->host->metric_add(p->ctx, "passed", b->n);
    if (p->cfg->verbose && p->batches % (uint64_t)p->cfg->every == 0)
        p->host->log(p->ctx, SL_LOG_DEBUG, "batch %llu: %u events",
                     (unsigned long long)p->batches, b->n);
    return 0;   /* forward the batch unchanged */
}

static void pt_destroy(void *self)
{
    passthrough *p = self;
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
