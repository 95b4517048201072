/*
 * good.c - test plugin: a well-formed transform ("test-good") that tags every event's target
 * table and counts batches; used to test loading and running a real .so.
 */
#include <sluice/plugin.h>

typedef struct cfg { char *suffix; } cfg;

static const sl_option opts[] = {
    { .name = "suffix", .type = SL_OPT_STRING, .def = "\"_x\"", .desc = "appended to the table",
      .offset = offsetof(cfg, suffix) },
    { .name = NULL },
};

typedef struct inst { const sl_host *host; const cfg *cfg; } inst;

static int create(const sl_host *host, sl_ctx *ctx, const void *config, void **self)
{
    inst *i = host->calloc(1, sizeof *i);
    if (!i)
        return SL_ENOMEM;
    i->host = host;
    i->cfg = config;
    *self = i;
    return 0;
}

static int process(void *self, sl_batch *b)
{
    inst *i = self;
    for (uint32_t k = 0; k < b->n; k++)
        b->events[k].target_table = i->cfg->suffix;
    return 0;
}

static void destroy(void *self) { inst *i = self; i->host->free(i); }

SL_PLUGIN_EXPORT const sl_plugin_descriptor sluice_plugin = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_plugin_descriptor),
    .name = "test-good",
    .kind = SL_PLUGIN_TRANSFORM,
    .description = "test transform",
    .options = opts,
    .config_size = sizeof(cfg),
    .create = create,
    .process = process,
    .destroy = destroy,
};
