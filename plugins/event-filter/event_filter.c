/*
 * event_filter.c - the event-filter transform: marks SL_EVF_DROPPED on the events the task's
 * binlog_filter_rules ignore (DML kinds, DDL event types, ignore_sql) and on events of tables
 * no table_migrate_rule selects (DM's block-allow semantics). The decision lives in
 * plugins/common/replrules.c.
 */
#include <sluice/plugin.h>
#include <sluice/match.h>
#include <stdlib.h>
#include "replrules.h"

typedef struct ef_config { char *rules; } ef_config;

typedef struct ef {
    const sl_host *host;
    sl_ctx        *ctx;
    sl_rules      *rules;
    sl_rulecache  *cache;
} ef;

static const sl_option ef_options[] = {
    { .name = "rules", .type = SL_OPT_JSON, .flags = SL_OPTF_REQUIRED, .offset = offsetof(ef_config, rules),
      .desc = "table_migrate_rules of this source with their binlog filter rules (see PLUGINS.md)" },
    { .name = NULL }
};

static int ef_create(const sl_host *host, sl_ctx *ctx, const void *config, void **self)
{
    const ef_config *cfg = config;
    ef *f = host->calloc(1, sizeof *f);
    if (!f)
        return host->fail(ctx, SL_ENOMEM, "out of memory");
    f->host = host;
    f->ctx = ctx;
    sl_error err = {0};
    if (sl_rules_new(cfg->rules ? cfg->rules : "[]", &f->rules, &err) < 0) {
        host->free(f);
        return host->fail(ctx, err.code ? err.code : SL_EINVAL, "rules: %s", err.msg);
    }
    f->cache = sl_rulecache_new(f->rules);
    if (!f->cache) {
        sl_rules_free(f->rules);
        host->free(f);
        return host->fail(ctx, SL_ENOMEM, "out of memory");
    }
    *self = f;
    return 0;
}

static int ef_start(void *self) { return 0; }

static int ef_process(void *self, sl_batch *b)
{
    ef *f = self;
    uint32_t dropped = 0;
    for (uint32_t i = 0; i < b->n; i++) {
        sl_event *ev = &b->events[i];
        if (ev->flags & SL_EVF_DROPPED)
            continue;
        sl_error err = {0};
        int rc = sl_filter_decide(f->cache, ev, &err);
        if (rc < 0)
            return f->host->fail(f->ctx, rc, "%s", err.msg);
        if (rc == 1) {
            ev->flags |= SL_EVF_DROPPED;
            dropped++;
        }
    }
    if (dropped)
        f->host->metric_add(f->ctx, "filtered_events", dropped);
    return 0;
}

static void ef_destroy(void *self)
{
    ef *f = self;
    if (!f)
        return;
    sl_rulecache_free(f->cache);
    sl_rules_free(f->rules);
    f->host->free(f);
}

SL_PLUGIN_EXPORT const sl_plugin_descriptor sluice_plugin = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_plugin_descriptor),
    .name = "event-filter",
    .kind = SL_PLUGIN_TRANSFORM,
    .description = "Drops events that the task's binlog filter rules ignore, and events of tables no rule selects",
    .options = ef_options,
    .config_size = sizeof(ef_config),
    .create = ef_create,
    .start = ef_start,
    .process = ef_process,
    .destroy = ef_destroy,
};
