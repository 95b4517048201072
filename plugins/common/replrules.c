/*
 * replrules.c - event-filter and route decisions (replrules.h) over the compiled rules of
 * match.h and the DDL lexer of ddl.h.
 */
#include "replrules.h"

#include <stdlib.h>
#include <string.h>
#include "ddl.h"

#define CACHE_BUCKETS 1024u
#define CACHE_MAX     65536u     /* entries; the cache is cleared past this (memory bound) */

typedef struct centry {
    struct centry *next;
    int            rule;
    char           key[];       /* schema \0 table \0 */
} centry;

struct sl_rulecache {
    const sl_rules *rules;
    centry         *b[CACHE_BUCKETS];
    size_t          n;
};

sl_rulecache *sl_rulecache_new(const sl_rules *r)
{
    sl_rulecache *c = calloc(1, sizeof *c);
    if (c)
        c->rules = r;
    return c;
}

static void cache_clear(sl_rulecache *c)
{
    for (size_t i = 0; i < CACHE_BUCKETS; i++) {
        for (centry *e = c->b[i], *n; e; e = n) {
            n = e->next;
            free(e);
        }
        c->b[i] = NULL;
    }
    c->n = 0;
}

void sl_rulecache_free(sl_rulecache *c)
{
    if (!c)
        return;
    cache_clear(c);
    free(c);
}

int sl_rulecache_find(sl_rulecache *c, const char *schema, const char *table)
{
    if (!schema)
        schema = "";
    if (!table)
        table = "";
    size_t ls = strlen(schema), lt = strlen(table);
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < ls; i++) h = (h ^ (unsigned char)schema[i]) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
    for (size_t i = 0; i < lt; i++) h = (h ^ (unsigned char)table[i]) * 1099511628211ull;
    size_t bi = h & (CACHE_BUCKETS - 1);
    for (centry *e = c->b[bi]; e; e = e->next)
        if (strcmp(e->key, schema) == 0 && strcmp(e->key + ls + 1, table) == 0 &&
            strlen(e->key) == ls)
            return e->rule;
    int rule = sl_rules_find(c->rules, schema, table);
    if (c->n >= CACHE_MAX)
        cache_clear(c);
    centry *e = malloc(sizeof *e + ls + lt + 2);
    if (e) {
        e->rule = rule;
        memcpy(e->key, schema, ls + 1);
        memcpy(e->key + ls + 1, table, lt + 1);
        e->next = c->b[bi];
        c->b[bi] = e;
        c->n++;
    }
    return rule;
}

static int is_db_kind(sl_ddl_kind k)
{
    return k == SL_DDL_CREATE_DB || k == SL_DDL_DROP_DB || k == SL_DDL_ALTER_DB;
}

int sl_filter_decide(sl_rulecache *c, const sl_event *ev, sl_error *err)
{
    switch (ev->kind) {
    case SL_EV_BEGIN: case SL_EV_COMMIT: case SL_EV_HEARTBEAT:
        return 0;
    case SL_EV_INSERT: case SL_EV_UPDATE: case SL_EV_DELETE: {
        int rule = sl_rulecache_find(c, ev->schema, ev->table);
        if (rule < 0)
            return 1;
        return sl_rules_ignores_event(c->rules, rule, sl_dml_event_type(ev->kind)) ? 1 : 0;
    }
    case SL_EV_CHUNK:
        return sl_rulecache_find(c, ev->schema, ev->table) < 0 ? 1 : 0;
    case SL_EV_DDL:
        break;
    default:
        return 0;
    }
    if (!ev->ddl)
        return 1;
    size_t len = strlen(ev->ddl);
    sl_ddl d;
    int rc = sl_ddl_parse(ev->ddl, len, ev->ddl_schema ? ev->ddl_schema : ev->schema,
                          ev->ddl_mode, &d);
    if (rc == SL_ENOMEM) {
        sl_ddl_free(&d);
        return sl_error_set(err, SL_ENOMEM, "out of memory parsing a DDL");
    }
    int rule = -1, selected = 0;
    if (rc == SL_EPARSE && d.writes_rows) {
        /* rows written where the text does not show its table: kept if its schema is selected */
        const char *sch = ev->ddl_schema ? ev->ddl_schema : ev->schema;
        selected = sch && sl_rules_schema_selected(c->rules, sch);
    } else if (rc == 0 && (d.kind != SL_DDL_OTHER || d.writes_rows) && d.nnames > 0) {
        if (is_db_kind(d.kind)) {
            selected = sl_rules_schema_selected(c->rules, d.names[0].schema);
            rule = sl_rulecache_find(c, d.names[0].schema, "");
        } else {
            for (size_t i = 0; i < d.nnames && rule < 0; i++)
                rule = sl_rulecache_find(c, d.names[i].schema, d.names[i].table);
            selected = rule >= 0;
        }
    }
    sl_ddl_free(&d);
    if (!selected)
        return 1;
    if (rule < 0)
        return 0;
    const char *type = sl_ddl_event_type(ev->ddl, len);
    if (type && sl_rules_ignores_event(c->rules, rule, type))
        return 1;
    int m = sl_rules_ignores_sql(c->rules, rule, ev->ddl, len);
    if (m == SL_ELIMIT)
        return sl_error_set(err, SL_ELIMIT, "ignore_sql of the rule for %s.%s hit the regular "
                            "expression match limit on: %.200s", ev->schema ? ev->schema : "",
                            ev->table ? ev->table : "", ev->ddl);
    if (m < 0)
        return sl_error_set(err, m, "ignore_sql match failed");
    return m ? 1 : 0;
}

void sl_route_name(sl_rulecache *c, const char *schema, const char *table,
                   const char **tschema, const char **ttable)
{
    int rule = sl_rulecache_find(c, schema, table);
    *tschema = schema;
    *ttable = table;
    if (rule >= 0)
        sl_rules_target(c->rules, rule, schema, table, tschema, ttable);
}

static void map_name(void *ud, const char *schema, const char *table,
                     const char **ts, const char **tt)
{
    sl_rulecache *c = ud;
    if (!table[0]) {
        int rule = sl_rulecache_find(c, schema, "");
        *ts = schema;
        *tt = "";
        if (rule >= 0) {
            const char *x = NULL;
            sl_rules_target(c->rules, rule, schema, "", ts, &x);
        }
        return;
    }
    sl_route_name(c, schema, table, ts, tt);
}

int sl_route_ddl(sl_rulecache *c, const char *sql, size_t len, const char *defschema,
                 unsigned mode, int shard_merge, sl_sbuf *out, struct sl_ddl *d,
                 const char **tschema, const char **ttable, int *merged)
{
    *merged = 0;
    *tschema = defschema;
    *ttable = NULL;
    int rc = sl_ddl_parse(sql, len, defschema, mode, d);
    if (rc < 0)
        return rc;
    rc = sl_ddl_rewrite(sql, len, d, map_name, c, out);
    if (rc < 0)
        return rc;
    /* a shard: one of the statement's own tables (not one its foreign keys reference) whose
     * rule routes several source tables into one. A table only renamed by its rule (shop.items
     * into shop_copy.items) is no shard: its DDL runs on its own target table. */
    int shard = 0;
    for (size_t i = 0; i < d->nnames && !shard; i++)
        shard = d->names[i].table[0] &&
                sl_rules_merges(c->rules, sl_rulecache_find(c, d->names[i].schema, d->names[i].table));
    if (d->nnames > 0) {
        map_name(c, d->names[0].schema, d->names[0].table, tschema, ttable);
        if (!d->names[0].table[0])
            *ttable = "";
    }
    if (shard_merge && shard && !is_db_kind(d->kind) && d->kind != SL_DDL_OTHER)
        *merged = 1;
    return 0;
}
