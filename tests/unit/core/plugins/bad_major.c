/* bad_major.c - test plugin built for ABI major 2: refused. */
#include <sluice/plugin.h>

static int create(const sl_host *h, sl_ctx *c, const void *config, void **self) { *self = NULL; return 0; }
static int process(void *self, sl_batch *b) { return 0; }
static void destroy(void *self) {}

SL_PLUGIN_EXPORT const sl_plugin_descriptor sluice_plugin = {
    .abi_version = (2u << 16) | 0u, .struct_size = sizeof(sl_plugin_descriptor),
    .name = "test-bad-major", .kind = SL_PLUGIN_SINK,
    .create = create, .process = process, .destroy = destroy,
};
