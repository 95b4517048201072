/*
 * verify_task.c - which tables a verification of a task compares: each source's selected base
 * tables grouped by the table their rule routes them to (a group of several = shard merge), with
 * the tables a binlog filter or a Lua script changes marked excluded and why. Built from the
 * options of each source's first compiled stage (its rules and both connections), so the CLI and
 * the server see the task exactly as the compiler made it.
 */
#include "verify.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/match.h"

struct sl_verify_tsrc {
    char          *name;      /* the source's name, for messages */
    sl_myconn_opts conn;
    json_t        *opts;      /* owns the strings conn points to */
    sl_rules      *rules;
    json_t        *scripts;   /* lua-hook scripts of this source, or NULL */
};

static const char *jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* Connection options of `who` ("source"/"target") out of a stage's options object. */
static sl_myconn_opts conn_of(json_t *o, const char *who)
{
    char k[32];
#define F(f) (snprintf(k, sizeof k, "%s_" #f, who), jstr(o, k))
    sl_myconn_opts c = {
        .host = F(host), .user = F(user), .password = F(password),
        .ssl_ca = F(ssl_ca), .ssl_cert = F(ssl_cert), .ssl_key = F(ssl_key),
        .init_sql = "SET time_zone='+00:00'",
    };
    snprintf(k, sizeof k, "%s_port", who);
    c.port = (int)json_integer_value(json_object_get(o, k));
#undef F
    return c;
}

int sl_verify_task_init(sl_verify_task *t, size_t nsources)
{
    memset(t, 0, sizeof *t);
    /* a fixed array: tables point at the connections of its entries */
    t->src = calloc(nsources ? nsources : 1, sizeof *t->src);
    t->cap = nsources;
    return t->src ? 0 : SL_ENOMEM;
}

int sl_verify_task_add_source(sl_verify_task *t, const char *name, const char *stage_opts,
                              const char *lua_opts, sl_error *err)
{
    if (t->nsrc == t->cap)
        return sl_error_set(err, SL_EINVAL, "more sources than announced");
    struct sl_verify_tsrc *s = &t->src[t->nsrc];
    json_error_t je;
    if (!(s->opts = json_loads(stage_opts, 0, &je)))
        return sl_error_set(err, SL_EPARSE, "source %s: stage options: %s", name, je.text);
    t->nsrc++;
    if (!(s->name = strdup(name)))
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    char *rules = json_dumps(json_object_get(s->opts, "rules"), JSON_COMPACT);
    int rc = rules ? sl_rules_new(rules, &s->rules, err) : SL_ENOMEM;
    free(rules);
    if (rc < 0) {
        /* err->msg is the rules' message: prefixed, never passed as its own format argument */
        sl_error_prefix(err, "source %s: rules", name);
        return rc;
    }
    s->conn = conn_of(s->opts, "source");
    t->target = conn_of(s->opts, "target");
    if (lua_opts) {
        json_t *o = json_loads(lua_opts, 0, &je);
        s->scripts = o ? json_incref(json_object_get(o, "scripts")) : NULL;
        json_decref(o);
    }
    return 0;
}

/* The Lua script that handles schema.table, or NULL. */
static const char *lua_for(json_t *scripts, const char *schema, const char *table)
{
    size_t i, j;
    json_t *s, *t;
    json_array_foreach(scripts, i, s) {
        json_array_foreach(json_object_get(s, "tables"), j, t) {
            sl_pattern *ps = NULL, *pt = NULL;
            sl_error e = {0};
            int hit = sl_pattern_compile(jstr(t, "schema"), &ps, &e) == 0 &&
                      sl_pattern_match(ps, schema) &&
                      (!*jstr(t, "table") ||
                       (sl_pattern_compile(jstr(t, "table"), &pt, &e) == 0 && sl_pattern_match(pt, table)));
            sl_pattern_free(ps);
            sl_pattern_free(pt);
            if (hit)
                return jstr(s, "file");
        }
    }
    return NULL;
}

static sl_verify_table *find_target(sl_verify_table *v, size_t n, const char *s, const char *t)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].tschema, s) == 0 && strcmp(v[i].ttable, t) == 0)
            return &v[i];
    return NULL;
}

/* Add source table schema.table (of source s, rule `rule`) to its target's group. */
static int add_table(sl_verify_task *vt, struct sl_verify_tsrc *s, int rule, const char *schema,
                     const char *table)
{
    const char *ts, *tt;
    sl_rules_target(s->rules, rule, schema, table, &ts, &tt);
    sl_verify_table *g = find_target(vt->tables, vt->ntables, ts, tt);
    if (!g) {
        if (vt->ntables == vt->tcap) {
            size_t nc = vt->tcap ? vt->tcap * 2 : 16;
            sl_verify_table *nv = realloc(vt->tables, nc * sizeof *nv);
            if (!nv)
                return SL_ENOMEM;
            vt->tables = nv;
            vt->tcap = nc;
        }
        g = &vt->tables[vt->ntables];
        memset(g, 0, sizeof *g);
        if (!(g->tschema = strdup(ts)) || !(g->ttable = strdup(tt))) {
            free(g->tschema);
            return SL_ENOMEM;
        }
        vt->ntables++;
    }
    sl_verify_src *ns = realloc(g->src, (g->nsrc + 1) * sizeof *ns);
    if (!ns)
        return SL_ENOMEM;
    g->src = ns;
    sl_verify_src *e = &g->src[g->nsrc];
    *e = (sl_verify_src){ &s->conn, strdup(schema), strdup(table) };
    if (!e->schema || !e->table) {
        free(e->schema);
        free(e->table);
        return SL_ENOMEM;
    }
    g->nsrc++;
    char why[512];
    const char *lua = s->scripts ? lua_for(s->scripts, schema, table) : NULL;
    why[0] = 0;
    if (sl_rules_has_filters(s->rules, rule))
        snprintf(why, sizeof why, "a binlog filter rule of the task ignores some events of "
                 "`%s`.`%s`, so the target may differ from it by design", schema, table);
    else if (lua)
        snprintf(why, sizeof why, "the Lua script %s rewrites the rows of `%s`.`%s`; the "
                 "columns it changes are not known, so the table is not compared", lua, schema, table);
    if (why[0] && !g->excluded && !(g->excluded = strdup(why)))
        return SL_ENOMEM;
    return 0;
}

int sl_verify_task_collect(sl_verify_task *vt, sl_error *err)
{
    for (size_t i = 0; i < vt->nsrc; i++) {
        struct sl_verify_tsrc *s = &vt->src[i];
        MYSQL *db = sl_myconn_open(&s->conn, err);
        if (!db) {
            sl_error_prefix(err, "source %s", s->name);
            return err->code = SL_ECONN;
        }
        const char *q = "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE "
                        "TABLE_TYPE='BASE TABLE' AND TABLE_SCHEMA NOT IN "
                        "('mysql','information_schema','performance_schema','sys') "
                        "ORDER BY TABLE_SCHEMA, TABLE_NAME";
        int rc = sl_verify_query(db, q, strlen(q), err);
        if (rc < 0) {
            mysql_close(db);
            sl_error_prefix(err, "source %s: listing its tables", s->name);
            return rc;
        }
        /* (one row per table name: what the task selects, never the rows themselves) */
        MYSQL_RES *res = mysql_store_result(db);
        MYSQL_ROW r;
        while (rc == 0 && res && (r = mysql_fetch_row(res))) {
            int rule = sl_rules_find(s->rules, r[0], r[1]);
            if (rule >= 0)
                rc = add_table(vt, s, rule, r[0], r[1]);
        }
        if (res)
            mysql_free_result(res);
        mysql_close(db);
        if (rc < 0)
            return sl_error_set(err, rc, "out of memory listing tables");
    }
    return 0;
}

const char *sl_verify_task_source_name(const sl_verify_task *t, size_t i)
{
    return i < t->nsrc ? t->src[i].name : "";
}

int sl_verify_task_source(const sl_verify_task *t, const sl_myconn_opts *conn)
{
    for (size_t i = 0; i < t->nsrc; i++)
        if (&t->src[i].conn == conn)
            return (int)i;
    return -1;
}

void sl_verify_task_free(sl_verify_task *vt)
{
    for (size_t i = 0; i < vt->ntables; i++) {
        sl_verify_table *t = &vt->tables[i];
        for (size_t j = 0; j < t->nsrc; j++) {
            free(t->src[j].schema);
            free(t->src[j].table);
        }
        free(t->src);
        free(t->tschema);
        free(t->ttable);
        free(t->excluded);
    }
    free(vt->tables);
    for (size_t i = 0; i < vt->nsrc; i++) {
        free(vt->src[i].name);
        sl_rules_free(vt->src[i].rules);
        json_decref(vt->src[i].scripts);
        json_decref(vt->src[i].opts);
    }
    free(vt->src);
    memset(vt, 0, sizeof *vt);
}
