/*
 * bad_caps.c - test plugin, refused: a transform whose caps declare a delivery (sinks only).
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
    .struct_size = sizeof(sl_plugin_caps), .takes = SL_CAP_EV_ALL, .gives = SL_CAP_EV_ALL,
    .gives_images = SL_CAP_IMG_ALL, .order = SL_CAP_ORDER_KEEPS, .delivery = SL_CAP_EXACTLY_ONCE,
};

SL_PLUGIN_EXPORT const sl_plugin_descriptor sluice_plugin = {
    .abi_version = SL_ABI_VERSION, .struct_size = sizeof(sl_plugin_descriptor),
    .name = "test-bad-caps", .kind = SL_PLUGIN_TRANSFORM, .description = "refused",
    .create = create, .process = process, .destroy = destroy, .caps = &caps,
};
