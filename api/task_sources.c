/*
 * task_sources.c - a task's view of one of its sources (GET /tasks/{t}/sources/{s}/
 * migrate_targets, /schemas, /schemas/{db}): the source's tables as the task's rules select and
 * route them, read from the source's own server.
 */
#include "internal.h"

#include <mysql.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/match.h"

/* ---- the task's view of a source: rules, migrate targets, schemas, tables ---------------------- */

/* The `rules` of one source (routing only) from the task's table_migrate_rule. */
static char *rules_for_source(const json_t *def, const char *source)
{
    json_t *arr = json_array(), *x;
    size_t i;
    json_array_foreach(json_object_get(def, "table_migrate_rule"), i, x) {
        json_t *s = json_object_get(x, "source"), *t = json_object_get(x, "target");
        const char *sn = json_string_value(json_object_get(s, "source_name"));
        if (!sn || strcmp(sn, source))
            continue;
        const char *ts = json_string_value(json_object_get(t, "schema"));
        const char *tt = json_string_value(json_object_get(t, "table"));
        const char *ss = json_string_value(json_object_get(s, "schema"));
        const char *st = json_string_value(json_object_get(s, "table"));
        json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:s,s:[]}", "schema", ss ? ss : "",
                                             "table", st ? st : "", "target_schema", ts ? ts : "",
                                             "target_table", tt ? tt : "", "filters"));
    }
    char *s = sl__dump_compact(arr);
    json_decref(arr);
    return s;
}

typedef struct task_src {
    json_t   *src;     /* source definition copy */
    sl_rules *rules;
} task_src;

/* Resolve task + source under the read lock; replies 404 and returns -1 when either is absent. */
static int task_source(sl_req *r, const char *task, const char *source, task_src *ts)
{
    sl_api *a = r->api;
    sl_error err = { 0 };
    int rc = -1;
    char *rules = NULL;
    memset(ts, 0, sizeof *ts);
    pthread_rwlock_rdlock(&a->lock);
    sl_api_task *t = sl__task_find(a, task);
    size_t i = 0;
    while (t && i < t->nsubs && strcmp(sl_subtask_source(t->subs[i]), source))
        i++;
    sl_api_source *s = sl__source_find(a, source);
    if (!t)
        sl__reply_task_not_found(r, task);
    else if (i == t->nsubs || !s)
        sl__reply_error(r, 404, DM_ERR_SOURCE_NOT_FOUND, "source %s is not a source of task %s",
                        source, task);
    else if (!(rules = rules_for_source(t->def, source)) ||
             sl_rules_new(rules, &ts->rules, &err) != 0)
        sl__reply_error(r, 500, DM_ERR_INTERNAL, "task %s rules: %s", task, err.msg);
    else {
        ts->src = json_deep_copy(s->def);
        rc = 0;
    }
    pthread_rwlock_unlock(&a->lock);
    free(rules);
    return rc;
}

static void task_src_free(task_src *ts)
{
    json_decref(ts->src);
    sl_rules_free(ts->rules);
}

/* Visit every base table of the source: fn(ud, schema, table). */
static int each_table(sl_api *a, const json_t *src, void (*fn)(void *, const char *, const char *),
                      void *ud, sl_error *err)
{
    MYSQL *db = sl__source_connect(a, src, err);
    if (!db)
        return err->code;
    static const char q[] = "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES "
                            "WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN "
                            "('mysql','information_schema','performance_schema','sys') "
                            "ORDER BY TABLE_SCHEMA, TABLE_NAME";
    if (mysql_query(db, q) != 0) {
        int rc = sl_error_set(err, SL_EDB, "%s (errno %u)", mysql_error(db), mysql_errno(db));
        mysql_close(db);
        return rc;
    }
    MYSQL_RES *res = mysql_use_result(db);
    MYSQL_ROW row;
    while (res && (row = mysql_fetch_row(res)))
        if (row[0] && row[1])
            fn(ud, row[0], row[1]);
    mysql_free_result(res);
    mysql_close(db);
    return 0;
}

typedef struct mt_ctx {
    sl_rules   *rules;
    sl_pattern *sp, *tp;
    json_t     *out;
    const char *schema;     /* only this schema (tables listing) */
    int         mode;       /* 0 targets, 1 schemas, 2 tables */
} mt_ctx;

static void mt_visit(void *ud, const char *schema, const char *table)
{
    mt_ctx *c = ud;
    int rule = sl_rules_find(c->rules, schema, table);
    if (rule < 0)
        return;
    if (c->mode == 1) {
        size_t n = json_array_size(c->out);
        const char *last = n ? json_string_value(json_array_get(c->out, n - 1)) : NULL;
        if (!last || strcmp(last, schema))
            json_array_append_new(c->out, json_string(schema));
        return;
    }
    if (c->mode == 2) {
        if (!strcmp(schema, c->schema))
            json_array_append_new(c->out, json_string(table));
        return;
    }
    if ((c->sp && !sl_pattern_match(c->sp, schema)) || (c->tp && !sl_pattern_match(c->tp, table)))
        return;
    const char *tsch, *ttab;
    sl_rules_target(c->rules, rule, schema, table, &tsch, &ttab);
    json_array_append_new(c->out, json_pack("{s:s,s:s,s:s,s:s}", "source_schema", schema,
                                            "source_table", table, "target_schema", tsch,
                                            "target_table", ttab));
}

void sl__task_source_view(sl_req *r, const char *task, const char *source, int mode,
                             const char *schema)
{
    sl_error err = { 0 };
    task_src ts;
    mt_ctx c = { .mode = mode, .schema = schema };
    const char *pats[2] = { mode == 0 ? sl__query(r, "schema_pattern") : NULL,
                            mode == 0 ? sl__query(r, "table_pattern") : NULL };
    sl_pattern **outp[2] = { &c.sp, &c.tp };
    for (int i = 0; i < 2; i++)
        if (pats[i] && *pats[i] && sl_pattern_compile(pats[i], outp[i], &err) != 0) {
            sl__reply_error(r, 400, DM_ERR_OPENAPI, "%s: %s", i ? "table_pattern" : "schema_pattern",
                            err.msg);
            goto out0;
        }
    if (task_source(r, task, source, &ts) != 0)
        goto out0;
    c.rules = ts.rules;
    c.out = json_array();
    if (each_table(r->api, ts.src, mt_visit, &c, &err) != 0) {
        sl__reply_error(r, 400, DM_ERR_DB, "source %s: %s", source, err.msg);
        json_decref(c.out);
    } else if (mode == 0) {
        sl__reply_json(r, 200, json_pack("{s:I,s:o}", "total", (json_int_t)json_array_size(c.out),
                                         "data", c.out));
    } else {
        sl__reply_json(r, 200, c.out);
    }
    task_src_free(&ts);
out0:
    sl_pattern_free(c.sp);
    sl_pattern_free(c.tp);
}

/* ---- what a task will not copy, said when it is created ----------------------------------------- */

typedef struct nc_ctx {
    const sl_rules *rules;
    json_t         *names;    /* "kind schema.name" strings */
    size_t          total;
} nc_ctx;

#define NOT_COPIED_MAX 20   /* named in check_result; the rest are counted */

static void nc_add(nc_ctx *c, const char *kind, const char *schema, const char *name)
{
    c->total++;
    if (json_array_size(c->names) < NOT_COPIED_MAX) {
        char buf[600];
        snprintf(buf, sizeof buf, "%s %s.%s", kind, schema, name);
        json_array_append_new(c->names, json_string(buf));
    }
}

/* Run one information_schema query whose rows are (schema, name, table or ""), adding the
 * objects the rules select: by the table (views, triggers) or by the schema (routines,
 * events). */
static int nc_query(MYSQL *db, nc_ctx *c, const char *kind, const char *sql, int by_table,
                    sl_error *err)
{
    if (mysql_query(db, sql) != 0)
        return sl_error_set(err, SL_EDB, "%s (errno %u)", mysql_error(db), mysql_errno(db));
    MYSQL_RES *res = mysql_use_result(db);
    MYSQL_ROW row;
    while (res && (row = mysql_fetch_row(res))) {
        const char *schema = row[0] ? row[0] : "", *name = row[1] ? row[1] : "";
        const char *table = row[2] && *row[2] ? row[2] : name;
        int sel = by_table ? sl_rules_find(c->rules, schema, table) >= 0
                           : sl_rules_schema_selected(c->rules, schema);
        if (sel)
            nc_add(c, kind, schema, name);
    }
    if (res)
        mysql_free_result(res);
    return 0;
}

json_t *sl__task_not_copied(sl_api *a, const json_t *def, const char *source, const json_t *src)
{
    if (a->offline)
        return NULL;
    sl_error err = { 0 };
    char *rules = rules_for_source(def, source);
    nc_ctx c = { .names = json_array() };
    sl_rules *rs = NULL;
    json_t *out = NULL;
    if (!rules || !c.names || sl_rules_new(rules, &rs, &err) != 0)
        goto done;
    c.rules = rs;
    MYSQL *db = sl__source_connect(a, src, &err);
    if (!db) {
        out = json_pack("{s:s,s:s,s:i}", "path", "/task/source_config/source_conf", "msg", "",
                        "code", SL_TC_NOT_COPIED);
        char msg[1400];
        snprintf(msg, sizeof msg, "source %s could not be checked for objects this task does not "
                 "copy (views, triggers, routines, events, versioned history): %s", source, err.msg);
        json_object_set_new(out, "msg", json_string(msg));
        goto done;
    }
    static const struct { const char *kind, *sql; int by_table; } q[] = {
        { "view", "SELECT TABLE_SCHEMA, TABLE_NAME, '' FROM information_schema.VIEWS", 1 },
        { "trigger", "SELECT TRIGGER_SCHEMA, TRIGGER_NAME, EVENT_OBJECT_TABLE FROM "
                     "information_schema.TRIGGERS", 1 },
        { "routine", "SELECT ROUTINE_SCHEMA, ROUTINE_NAME, '' FROM information_schema.ROUTINES", 0 },
        { "event", "SELECT EVENT_SCHEMA, EVENT_NAME, '' FROM information_schema.EVENTS", 0 },
        { "history of versioned table", "SELECT TABLE_SCHEMA, TABLE_NAME, '' FROM "
          "information_schema.TABLES WHERE TABLE_TYPE = 'SYSTEM VERSIONED'", 1 },
    };
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++)
        if (nc_query(db, &c, q[i].kind, q[i].sql, q[i].by_table, &err) != 0)
            break;
    mysql_close(db);
    if (c.total) {
        char *list = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&list, &len);
        size_t i;
        json_t *x;
        if (f) {
            fprintf(f, "source %s: %zu selected object%s not copied (their effects arrive as rows; "
                    "docs/tasks.md, what a task copies): ", source, c.total, c.total == 1 ? " is" : "s are");
            json_array_foreach(c.names, i, x)
                fprintf(f, "%s%s", i ? ", " : "", json_string_value(x));
            if (c.total > json_array_size(c.names))
                fprintf(f, " and %zu more", c.total - json_array_size(c.names));
            fclose(f);
        }
        out = json_pack("{s:s,s:s,s:i}", "path", "/task/table_migrate_rule", "msg", list ? list : "",
                        "code", SL_TC_NOT_COPIED);
        free(list);
    }
done:
    json_decref(c.names);
    sl_rules_free(rs);
    free(rules);
    return out;
}
