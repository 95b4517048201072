/* no_process.c - test plugin: a transform without process(): refused. */
#include <sluice/plugin.h>

static int create(const sl_host *h, sl_ctx *c, const void *config, void **self) { *self = NULL; return 0; }
static void destroy(void *self) {}

SL_PLUGIN_EXPORT const sl_plugin_descriptor sluice_plugin = {
    .abi_version = SL_ABI_VERSION, .struct_size = sizeof(sl_plugin_descriptor),
    .name = "test-no-process", .kind = SL_PLUGIN_TRANSFORM,
    .create = create, .destroy = destroy,
};
