/*
 * old_abi.c - test plugin: a sink built against ABI 1.1 (before the caps slot). Its descriptor
 * says minor 1, so the host must not read the slot where 1.2 keeps caps, and gives defaults.
 * The slot holds garbage on purpose: a 1.1 plugin's reserved[6] is not ours to read.
 */
#include <sluice/plugin.h>

static int create(const sl_host *host, sl_ctx *ctx, const void *config, void **self)
{
    (void)host; (void)ctx; (void)config;
    *self = NULL;
    return 0;
}
static int process(void *self, sl_batch *b) { (void)self; (void)b; return 0; }
static void destroy(void *self) { (void)self; }

static const uint32_t junk[8] = { 1, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 9, 9, 9 };

SL_PLUGIN_EXPORT const sl_plugin_descriptor sluice_plugin = {
    .abi_version = (uint32_t)((1u << 16) | 1u), .struct_size = sizeof(sl_plugin_descriptor),
    .name = "test-old-abi", .kind = SL_PLUGIN_SINK, .description = "ABI 1.1 sink",
    .create = create, .process = process, .destroy = destroy,
    .caps = (const sl_plugin_caps *)(const void *)junk,
};
