/*
 * lines_sink.c - test plugin "test-lines-sink": a custom sink for the end-to-end test of custom
 * stages (test_custom_stages.sh). It appends one line per row change, "KIND<TAB>schema.table<TAB>
 * target_schema.target_table", to the file named by its option "path", and counts them in the
 * metric "rows". No checkpoint of its own: the test only needs to see what reached the sink.
 */
#include <sluice/plugin.h>

#include <stdio.h>

typedef struct config {
    char *path;
} config;

static const sl_option options[] = {
    { .name = "path", .type = SL_OPT_STRING, .flags = SL_OPTF_REQUIRED,
      .desc = "file the row changes are appended to", .offset = offsetof(config, path),
      .min = 1, .max = 4096 },
    { .name = NULL },
};

typedef struct lines {
    const sl_host *host;
    sl_ctx        *ctx;
    const config  *cfg;
    FILE          *f;
} lines;

static int ls_create(const sl_host *host, sl_ctx *ctx, const void *cfg, void **self)
{
    lines *l = host->calloc(1, sizeof *l);
    if (!l)
        return host->fail(ctx, SL_ENOMEM, "test-lines-sink: out of memory");
    l->host = host;
    l->ctx = ctx;
    l->cfg = cfg;
    *self = l;
    return 0;
}

static int ls_start(void *self)
{
    lines *l = self;
    if (!l->f && !(l->f = fopen(l->cfg->path, "a")))
        return l->host->fail(l->ctx, SL_EIO, "test-lines-sink: cannot open %s", l->cfg->path);
    return 0;
}

static int ls_process(void *self, sl_batch *b)
{
    static const char *const kind[] = { [SL_EV_INSERT] = "insert", [SL_EV_UPDATE] = "update",
                                        [SL_EV_DELETE] = "delete" };
    lines *l = self;
    uint64_t rows = 0;
    for (uint32_t i = 0; i < b->n; i++) {
        const sl_event *e = &b->events[i];
        if (e->kind < SL_EV_INSERT || e->kind > SL_EV_DELETE)
            continue;
        fprintf(l->f, "%s\t%s.%s\t%s.%s\n", kind[e->kind], e->schema ? e->schema : "",
                e->table ? e->table : "", e->target_schema ? e->target_schema : "",
                e->target_table ? e->target_table : "");
        rows++;
    }
    if (fflush(l->f) != 0)
        return l->host->fail(l->ctx, SL_EIO, "test-lines-sink: cannot write %s", l->cfg->path);
    if (rows)
        l->host->metric_add(l->ctx, "rows", rows);
    return 0;
}

static void ls_stop(void *self)
{
    lines *l = self;
    if (l->f)
        fclose(l->f);
    l->f = NULL;
}

static void ls_destroy(void *self)
{
    lines *l = self;
    ls_stop(l);
    l->host->free(l);
}

static const sl_plugin_caps caps = {
    .struct_size = sizeof(sl_plugin_caps),
    .takes = SL_CAP_EV_ROWS,
    .delivery = SL_CAP_AT_LEAST_ONCE,
};

SL_PLUGIN_EXPORT const sl_plugin_descriptor sluice_plugin = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_plugin_descriptor),
    .name = "test-lines-sink",
    .kind = SL_PLUGIN_SINK,
    .description = "test sink: one line per row change appended to a file",
    .options = options,
    .config_size = sizeof(config),
    .create = ls_create,
    .start = ls_start,
    .process = ls_process,
    .stop = ls_stop,
    .destroy = ls_destroy,
    .caps = &caps,
};
