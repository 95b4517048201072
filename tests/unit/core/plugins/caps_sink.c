/*
 * caps_sink.c - test plugin: an ABI 1.2 sink ("test-caps-sink") declaring its capabilities:
 * takes row changes only, needs full before images and source order, exactly-once.
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

static const sl_plugin_caps caps = {
    .struct_size = sizeof(sl_plugin_caps),
    .takes = SL_CAP_EV_ROWS,
    .needs_images = SL_CAP_IMG_BEFORE | SL_CAP_IMG_AFTER,
    .order = SL_CAP_ORDER_NEEDS,
    .delivery = SL_CAP_EXACTLY_ONCE,
};

SL_PLUGIN_EXPORT const sl_plugin_descriptor sluice_plugin = {
    .abi_version = SL_ABI_VERSION, .struct_size = sizeof(sl_plugin_descriptor),
    .name = "test-caps-sink", .kind = SL_PLUGIN_SINK, .description = "test sink with caps",
    .create = create, .process = process, .destroy = destroy, .caps = &caps,
};
