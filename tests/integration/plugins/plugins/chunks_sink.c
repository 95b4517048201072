/*
 * chunks_sink.c - test plugin "test-chunks-sink": a custom sink that says it takes dump chunks
 * (caps SL_EV_CHUNK), for test_full_sink.sh. It appends "chunk<TAB>schema.table<TAB>rows" per
 * SL_EV_CHUNK and "KIND<TAB>schema.table" per row change to the file named by "path". It keeps
 * no checkpoint (no ctl), so after a full phase the runtime must refuse to guess where the
 * incremental phase starts.
 */
#include <sluice/plugin.h>

#include <inttypes.h>
#include <stdio.h>

typedef struct config {
    char *path;
} config;

static const sl_option options[] = {
    { .name = "path", .type = SL_OPT_STRING, .flags = SL_OPTF_REQUIRED,
      .desc = "file the chunks and row changes are listed in", .offset = offsetof(config, path),
      .min = 1, .max = 4096 },
    { .name = NULL },
};

typedef struct chunks {
    const sl_host *host;
    sl_ctx        *ctx;
    const config  *cfg;
    FILE          *f;
} chunks;

static int cs_create(const sl_host *host, sl_ctx *ctx, const void *cfg, void **self)
{
    chunks *c = host->calloc(1, sizeof *c);
    if (!c)
        return host->fail(ctx, SL_ENOMEM, "test-chunks-sink: out of memory");
    c->host = host;
    c->ctx = ctx;
    c->cfg = cfg;
    *self = c;
    return 0;
}

static int cs_start(void *self)
{
    chunks *c = self;
    if (!c->f && !(c->f = fopen(c->cfg->path, "a")))
        return c->host->fail(c->ctx, SL_EIO, "test-chunks-sink: cannot open %s", c->cfg->path);
    return 0;
}

static int cs_process(void *self, sl_batch *b)
{
    static const char *const kind[] = { [SL_EV_INSERT] = "insert", [SL_EV_UPDATE] = "update",
                                        [SL_EV_DELETE] = "delete" };
    chunks *c = self;
    for (uint32_t i = 0; i < b->n; i++) {
        const sl_event *e = &b->events[i];
        if (e->kind == SL_EV_CHUNK)
            fprintf(c->f, "chunk\t%s.%s\t%" PRIu64 "\n", e->schema ? e->schema : "",
                    e->table ? e->table : "", e->chunk_rows);
        else if (e->kind >= SL_EV_INSERT && e->kind <= SL_EV_DELETE)
            fprintf(c->f, "%s\t%s.%s\n", kind[e->kind], e->schema ? e->schema : "",
                    e->table ? e->table : "");
    }
    if (fflush(c->f) != 0)
        return c->host->fail(c->ctx, SL_EIO, "test-chunks-sink: cannot write %s", c->cfg->path);
    return 0;
}

static void cs_stop(void *self)
{
    chunks *c = self;
    if (c->f)
        fclose(c->f);
    c->f = NULL;
}

static void cs_destroy(void *self)
{
    chunks *c = self;
    cs_stop(c);
    c->host->free(c);
}

static const sl_plugin_caps caps = {
    .struct_size = sizeof(sl_plugin_caps),
    .takes = SL_CAP_EV_ROWS | SL_CAP_EV(SL_EV_CHUNK),
    .delivery = SL_CAP_AT_LEAST_ONCE,
};

SL_PLUGIN_EXPORT const sl_plugin_descriptor sluice_plugin = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_plugin_descriptor),
    .name = "test-chunks-sink",
    .kind = SL_PLUGIN_SINK,
    .description = "test sink: lists the dump chunks and row changes it gets in a file",
    .options = options,
    .config_size = sizeof(config),
    .create = cs_create,
    .start = cs_start,
    .process = cs_process,
    .stop = cs_stop,
    .destroy = cs_destroy,
    .caps = &caps,
};
