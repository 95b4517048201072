/* short_desc.c - test plugin whose descriptor claims to end before `status`: refused. */
#include <sluice/plugin.h>

static int create(const sl_host *h, sl_ctx *c, const void *config, void **self) { *self = NULL; return 0; }
static int process(void *self, sl_batch *b) { return 0; }
static void destroy(void *self) {}

SL_PLUGIN_EXPORT const sl_plugin_descriptor sluice_plugin = {
    .abi_version = SL_ABI_VERSION, .struct_size = offsetof(sl_plugin_descriptor, status),
    .name = "test-short", .kind = SL_PLUGIN_SINK,
    .create = create, .process = process, .destroy = destroy,
};
