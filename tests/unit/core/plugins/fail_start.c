/* fail_start.c - test plugin: a transform whose start() fails like a refused connection. */
#include <sluice/plugin.h>

typedef struct inst { const sl_host *host; sl_ctx *ctx; } inst;

static int create(const sl_host *h, sl_ctx *c, const void *config, void **self)
{
    inst *i = h->calloc(1, sizeof *i);
    if (!i)
        return SL_ENOMEM;
    i->host = h;
    i->ctx = c;
    *self = i;
    return 0;
}

static int start(void *self)
{
    inst *i = self;
    return i->host->fail(i->ctx, SL_ECONN, "cannot connect to 127.0.0.1:1: connection refused (test)");
}

static int process(void *self, sl_batch *b) { return 0; }
static void destroy(void *self) { inst *i = self; i->host->free(i); }

SL_PLUGIN_EXPORT const sl_plugin_descriptor sluice_plugin = {
    .abi_version = SL_ABI_VERSION, .struct_size = sizeof(sl_plugin_descriptor),
    .name = "test-fail-start", .kind = SL_PLUGIN_TRANSFORM,
    .create = create, .start = start, .process = process, .destroy = destroy,
};
