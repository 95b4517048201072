/* dup.c - test plugin: well formed, but named like good.c ("test-good"): refused as a duplicate. */
#include <sluice/plugin.h>

static int create(const sl_host *h, sl_ctx *c, const void *config, void **self) { *self = NULL; return 0; }
static int process(void *self, sl_batch *b) { return 0; }
static void destroy(void *self) {}

SL_PLUGIN_EXPORT const sl_plugin_descriptor sluice_plugin = {
    .abi_version = SL_ABI_VERSION, .struct_size = sizeof(sl_plugin_descriptor),
    .name = "test-good", .kind = SL_PLUGIN_SINK,
    .create = create, .process = process, .destroy = destroy,
};
