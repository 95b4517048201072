/* fail_process.c - test plugin: a transform that fails on its third batch (returns the code of
 * host->fail), and one whose failure has no message (returns a bare code) when bare=true. */
#include <sluice/plugin.h>

typedef struct cfg { int bare; } cfg;
static const sl_option opts[] = {
    { .name = "bare", .type = SL_OPT_BOOL, .def = "false", .offset = offsetof(cfg, bare) },
    { .name = NULL },
};

typedef struct inst { const sl_host *host; sl_ctx *ctx; const cfg *cfg; int n; } inst;

static int create(const sl_host *h, sl_ctx *c, const void *config, void **self)
{
    inst *i = h->calloc(1, sizeof *i);
    if (!i)
        return SL_ENOMEM;
    i->host = h;
    i->ctx = c;
    i->cfg = config;
    *self = i;
    return 0;
}

static int process(void *self, sl_batch *b)
{
    inst *i = self;
    if (++i->n < 3)
        return 0;
    if (i->cfg->bare)
        return SL_EDB;
    return i->host->fail(i->ctx, SL_EDB, "Duplicate entry '%d' for key 'PRIMARY' (test)", i->n);
}

static void destroy(void *self) { inst *i = self; i->host->free(i); }

SL_PLUGIN_EXPORT const sl_plugin_descriptor sluice_plugin = {
    .abi_version = SL_ABI_VERSION, .struct_size = sizeof(sl_plugin_descriptor),
    .name = "test-fail-process", .kind = SL_PLUGIN_TRANSFORM,
    .options = opts, .config_size = sizeof(cfg),
    .create = create, .process = process, .destroy = destroy,
};
