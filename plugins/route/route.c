/*
 * route.c - the route transform: sets target_schema/target_table of every event from the task's
 * table_migrate_rules (shard merge included), rewrites DDL text to the routed names with quoted
 * identifiers, and flags DDL on shard-merged tables (SL_EVF_SHARD_DDL, with the shard in
 * schema/table) for the sink to coordinate or refuse.
 */
#include <sluice/plugin.h>
#include <sluice/match.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "ddl.h"
#include "replrules.h"

typedef struct rt_config { char *rules, *merge_targets, *merge_schemas; } rt_config;

typedef struct rt {
    const sl_host *host;
    sl_ctx        *ctx;
    sl_rules      *rules;
    sl_rulecache  *cache;
    int            shard_merge;
    json_t        *merge_targets;   /* [{"schema","table"}] merged across the task, or NULL */
    json_t        *merge_schemas;   /* ["schema"] that two source schemas route into, or NULL */
    sl_sbuf        sql;
} rt;

static const sl_option rt_options[] = {
    { .name = "rules", .type = SL_OPT_JSON, .flags = SL_OPTF_REQUIRED, .offset = offsetof(rt_config, rules),
      .desc = "table_migrate_rules of this source: source patterns and target names (see PLUGINS.md)" },
    { .name = "merge_targets", .type = SL_OPT_JSON, .def = "[]",
      .offset = offsetof(rt_config, merge_targets),
      .desc = "target tables that several source tables named exactly route into, across every "
              "source of the task ([{\"schema\":..,\"table\":..}], the compiler's): a DDL on one "
              "is a shard DDL although this source's own rules show a single shard" },
    { .name = "merge_schemas", .type = SL_OPT_JSON, .def = "[]",
      .offset = offsetof(rt_config, merge_schemas),
      .desc = "target schemas that rules without a target table route two source schemas into, "
              "across every source of the task ([\"schema\"...], the compiler's): a table "
              "renamed into one may be a shard of another source's table" },
    { .name = NULL }
};

static int rt_create(const sl_host *host, sl_ctx *ctx, const void *config, void **self)
{
    const rt_config *cfg = config;
    rt *r = host->calloc(1, sizeof *r);
    if (!r)
        return host->fail(ctx, SL_ENOMEM, "out of memory");
    r->host = host;
    r->ctx = ctx;
    sl_error err = {0};
    if (sl_rules_new(cfg->rules ? cfg->rules : "[]", &r->rules, &err) < 0) {
        host->free(r);
        return host->fail(ctx, err.code ? err.code : SL_EINVAL, "rules: %s", err.msg);
    }
    r->cache = sl_rulecache_new(r->rules);
    if (!r->cache) {
        sl_rules_free(r->rules);
        host->free(r);
        return host->fail(ctx, SL_ENOMEM, "out of memory");
    }
    json_error_t je;
    r->merge_targets = json_loads(cfg->merge_targets ? cfg->merge_targets : "[]", 0, &je);
    r->merge_schemas = json_loads(cfg->merge_schemas ? cfg->merge_schemas : "[]", 0, &je);
    if (!json_is_array(r->merge_targets) || !json_is_array(r->merge_schemas)) {
        const char *which = json_is_array(r->merge_targets) ? "merge_schemas" : "merge_targets";
        json_decref(r->merge_targets);
        json_decref(r->merge_schemas);
        sl_rulecache_free(r->cache);
        sl_rules_free(r->rules);
        host->free(r);
        return host->fail(ctx, SL_EINVAL, "%s: not a JSON array", which);
    }
    r->shard_merge = sl_rules_shard_merge(r->rules) || json_array_size(r->merge_targets) > 0;
    sl_sbuf_init(&r->sql);
    *self = r;
    return 0;
}

static int rt_start(void *self) { return 0; }

static char *dup_in(rt *r, sl_batch *b, const char *s)
{
    return s ? r->host->batch_strndup(b, s, strlen(s)) : NULL;
}

/* 1 if source table schema.table is a shard of a merged table: its rule routes several source
 * tables into one (sl_rules_merges); or its target is one that the task's rules of several
 * sources route into (merge_targets); or its rule renames it into a schema that another source
 * schema's rule routes into as well (merge_schemas: shop_1.* and, from another source,
 * shop_2.* into schema shop). A table a rule only renames (shop.* into shop_copy, alone) is
 * none: its DDL runs on its own target table. */
static int is_shard(rt *r, const char *schema, const char *table)
{
    int rule = sl_rulecache_find(r->cache, schema, table);
    if (rule < 0)
        return 0;
    if (sl_rules_merges(r->rules, rule))
        return 1;
    const char *ts, *tt;
    sl_route_name(r->cache, schema, table, &ts, &tt);
    size_t k;
    json_t *e;
    json_array_foreach(r->merge_targets, k, e) {
        const char *ms = json_string_value(json_object_get(e, "schema"));
        const char *mt = json_string_value(json_object_get(e, "table"));
        if (ms && mt && !strcasecmp(ms, ts) && !strcasecmp(mt, tt))
            return 1;
    }
    if (!strcmp(ts, schema) && !strcmp(tt, table))
        return 0;
    json_array_foreach(r->merge_schemas, k, e)
        if (json_is_string(e) && !strcasecmp(json_string_value(e), ts))
            return 1;
    return 0;
}

/* The text of d's DROP TABLE (sql) for the routed names of the tables i with want[i]: the
 * statement's words before its first name and after its last one (IF EXISTS, a comment) kept. */
static char *drop_text(rt *r, sl_batch *b, const char *sql, const sl_ddl *d, const char *want)
{
    sl_sbuf_reset(&r->sql);
    sl_sbuf_add(&r->sql, sql, d->names[0].start);
    int first = 1;
    for (size_t i = 0; i < d->nnames; i++) {
        if (!want[i])
            continue;
        const char *ts, *tt;
        sl_route_name(r->cache, d->names[i].schema, d->names[i].table, &ts, &tt);
        if (!first)
            sl_sbuf_adds(&r->sql, ", ");
        sl_sbuf_add_qname(&r->sql, ts, tt);
        first = 0;
    }
    sl_sbuf_adds(&r->sql, sql + d->names[d->nnames - 1].end);
    return r->sql.oom ? NULL : r->host->batch_strndup(b, r->sql.p, r->sql.len);
}

/*
 * A DROP TABLE that drops a shard of a merged table among other tables (DROP TABLE a_1.t,
 * a_2.t, a.solo): each table needs its own handling, so the event becomes one DDL per shard
 * (flagged, naming its shard: the sink makes each leave its lock, and the merged table keeps its
 * rows) and, last, one DROP TABLE of the tables that are no shard, which the sink runs. Every
 * part ends where the statement ends (its position), so a restart reads them all again, and the
 * shards' parts only talk to the coordinator, which takes a leave twice. Tables no rule selects
 * are not the task's and are left out. The event at batch index at (its text still the
 * source's, which d parsed) is the first part; *added tells how many follow it. Returns 1, 0
 * when no table of it is the task's (the event is left as it is), or a failure.
 */
static int split_drop(rt *r, sl_batch *b, uint32_t at, const sl_ddl *d, uint32_t *added)
{
    *added = 0;
    size_t n = d->nnames, nshard = 0, nother = 0;
    char *shard = calloc(n ? n : 1, 1), *other = calloc(n ? n : 1, 1);
    if (!shard || !other) {
        free(shard);
        free(other);
        return r->host->fail(r->ctx, SL_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        if (sl_rulecache_find(r->cache, d->names[i].schema, d->names[i].table) < 0)
            continue;
        if (is_shard(r, d->names[i].schema, d->names[i].table))
            shard[i] = 1, nshard++;
        else
            other[i] = 1, nother++;
    }
    uint32_t parts = (uint32_t)(nshard + (nother > 0));
    int rc = 0;
    if (parts == 0) {           /* nothing of the task's (the filter keeps none such) */
        free(shard);
        free(other);
        return 0;
    }
    if (parts > 1) {
        /* room after the event: push at the end, then move what followed it */
        uint32_t tail = b->n - at - 1;
        for (uint32_t k = 1; k < parts && rc == 0; k++)
            if (!r->host->batch_push(b, SL_EV_DDL))
                rc = SL_ENOMEM;
        if (rc == 0) {
            memmove(&b->events[at + parts], &b->events[at + 1], tail * sizeof *b->events);
            for (uint32_t k = 1; k < parts; k++)
                b->events[at + k] = b->events[at];
            *added = parts - 1;
        }
    }
    char *one = rc == 0 ? calloc(n, 1) : NULL;
    if (!one)
        rc = SL_ENOMEM;
    for (size_t i = 0, k = 0; rc == 0 && i <= n && k < parts; i++) {
        sl_event *ev = &b->events[at + k];
        size_t j = i;
        if (i < n && shard[i]) {
            memset(one, 0, n);
            one[i] = 1;
            ev->flags |= SL_EVF_SHARD_DDL;
            ev->schema = dup_in(r, b, d->names[i].schema);
            ev->table = dup_in(r, b, d->names[i].table);
            if (!ev->schema || !ev->table)
                rc = SL_ENOMEM;
        } else if (i == n) {
            /* last, the tables that are no shard: dropped on the target like any table */
            memcpy(one, other, n);
            for (j = 0; !other[j]; j++)
                ;
            ev->flags &= (uint16_t)~SL_EVF_SHARD_DDL;
        } else {
            continue;
        }
        const char *ts, *tt;
        sl_route_name(r->cache, d->names[j].schema, d->names[j].table, &ts, &tt);
        ev->target_schema = dup_in(r, b, ts);
        ev->target_table = dup_in(r, b, tt);
        ev->ddl = drop_text(r, b, ev->ddl, d, one);
        if (!ev->ddl || !ev->target_schema || !ev->target_table)
            rc = SL_ENOMEM;
        k++;
    }
    free(one);
    free(shard);
    free(other);
    return rc < 0 ? r->host->fail(r->ctx, rc, "out of memory") : 1;
}

/* Route the DDL event at batch index at; *added: events split off it after it (split_drop). */
static int route_ddl(rt *r, sl_batch *b, uint32_t at, uint32_t *added)
{
    sl_event *ev = &b->events[at];
    *added = 0;
    const char *defschema = ev->ddl_schema ? ev->ddl_schema : ev->schema;
    sl_ddl d;
    const char *ts = NULL, *tt = NULL;
    int merged = 0;
    sl_sbuf_reset(&r->sql);
    int rc = sl_route_ddl(r->cache, ev->ddl, strlen(ev->ddl), defschema, ev->ddl_mode,
                          r->shard_merge, &r->sql, &d, &ts, &tt, &merged);
    if (rc < 0) {
        sl_ddl_free(&d);
        if (rc == SL_EPARSE)
            return r->host->fail(r->ctx, rc, "cannot find the table names in DDL: %.300s", ev->ddl);
        return r->host->fail(r->ctx, rc, "out of memory routing a DDL");
    }
    /* also a shard (is_shard): a table routed into a target other sources' rules route into too
     * (the one shard of this source, maybe keeping the target's name), or renamed into a schema
     * that another source schema goes into */
    if (!merged && r->shard_merge && tt && *tt && d.kind != SL_DDL_OTHER)
        for (size_t i = 0; i < d.nnames && !merged; i++)
            merged = d.names[i].table[0] && is_shard(r, d.names[i].schema, d.names[i].table);
    if (merged && d.kind == SL_DDL_DROP_TABLE && d.nnames > 0 &&
        (rc = split_drop(r, b, at, &d, added)) != 0) {
        sl_ddl_free(&d);
        return rc < 0 ? rc : 0;
    }
    char *text = r->host->batch_strndup(b, r->sql.p ? r->sql.p : "", r->sql.len);
    char *s = dup_in(r, b, ts), *t = dup_in(r, b, tt);
    /* a shard DDL names its shard (the source table) in schema/table: the sink's shard DDL
     * coordination holds and resumes that table (the reader leaves table NULL on a DDL) */
    char *ss = merged ? dup_in(r, b, d.names[0].schema) : NULL;
    char *st = merged ? dup_in(r, b, d.names[0].table) : NULL;
    sl_ddl_free(&d);
    if (!text || (ts && !s) || (tt && !t) || (merged && (!ss || !st)))
        return r->host->fail(r->ctx, SL_ENOMEM, "out of memory");
    ev->ddl = text;
    ev->target_schema = s;
    ev->target_table = t;
    if (merged) {
        ev->flags |= SL_EVF_SHARD_DDL;
        ev->schema = ss;
        ev->table = st;
    }
    return 0;
}

static int rt_process(void *self, sl_batch *b)
{
    rt *r = self;
    for (uint32_t i = 0; i < b->n; i++) {
        sl_event *ev = &b->events[i];
        if (ev->flags & SL_EVF_DROPPED)
            continue;
        if (ev->kind == SL_EV_DDL && ev->ddl) {
            uint32_t added;
            int rc = route_ddl(r, b, i, &added);
            if (rc < 0)
                return rc;
            i += added;         /* the parts of a DROP TABLE are routed */
            continue;
        }
        if (!ev->schema)
            continue;
        const char *ts, *tt;
        sl_route_name(r->cache, ev->schema, ev->table ? ev->table : "", &ts, &tt);
        /* names from the rules live as long as this instance, not the batch: copy them */
        ev->target_schema = ts == ev->schema ? ev->schema : dup_in(r, b, ts);
        ev->target_table = tt == ev->table ? ev->table : dup_in(r, b, tt);
        if (!ev->target_schema || (ev->table && !ev->target_table))
            return r->host->fail(r->ctx, SL_ENOMEM, "out of memory");
    }
    return 0;
}

static void rt_destroy(void *self)
{
    rt *r = self;
    if (!r)
        return;
    sl_sbuf_free(&r->sql);
    json_decref(r->merge_targets);
    json_decref(r->merge_schemas);
    sl_rulecache_free(r->cache);
    sl_rules_free(r->rules);
    r->host->free(r);
}

SL_PLUGIN_EXPORT const sl_plugin_descriptor sluice_plugin = {
    .abi_version = SL_ABI_VERSION,
    .struct_size = sizeof(sl_plugin_descriptor),
    .name = "route",
    .kind = SL_PLUGIN_TRANSFORM,
    .description = "Routes events to target schema/table names (shard merge included) and rewrites DDL text to them",
    .options = rt_options,
    .config_size = sizeof(rt_config),
    .create = rt_create,
    .start = rt_start,
    .process = rt_process,
    .destroy = rt_destroy,
};
