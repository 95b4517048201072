/*
 * task_schemas.c - the table structures a task's subtask tracks (GET/PUT/POST/DELETE
 * /tasks/{t}/sources/{s}/schemas/{db}/{table}): answered by the binlog-reader's schema tracker
 * through the runtime (sl_worker_ctl on an instance built for the request), as DM answers them
 * from its sync unit's tracker. Like DM, only while the subtask is not running.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#include "sluice/log.h"

/* Names from the path that JSON cannot carry (not UTF-8) name nothing MariaDB can hold. */
static int utf8_name(const char *s)
{
    json_t *v = json_string(s);
    json_decref(v);
    return v != NULL;
}

void sl__task_table_structure(sl_req *r, const char *task, const char *source,
                              const char *schema, const char *table)
{
    sl_api *a = r->api;
    if (!utf8_name(schema) || !utf8_name(table)) {
        sl__reply_error(r, 400, DM_ERR_OPENAPI, "the schema and table names must be UTF-8");
        return;
    }
    const char *m = r->method;
    int get = !strcmp(m, "GET"), del = !strcmp(m, "DELETE");
    json_t *req = json_pack("{s:s, s:s, s:s}", "op", get ? "schema_get" : del ? "schema_delete"
                                                                          : "schema_put",
                            "schema", schema, "table", table);
    if (!req) {
        sl__reply_error(r, 500, DM_ERR_INTERNAL, "out of memory");
        return;
    }
    if (!get && !del) {
        /* OperateTaskTableStructureRequest: sql_content with schema_source "sql" (the default);
         * flush and sync are accepted (DM keeps them for compatibility; no shard meta here) */
        json_t *body = sl__body_json(r, 0);
        static const char *const known[] = { "schema_source", "sql_content", "flush", "sync" };
        if (!body || sl__unknown_field(r, body, "", known, sizeof known / sizeof known[0])) {
            json_decref(body);
            json_decref(req);
            return;
        }
        const char *from = json_string_value(json_object_get(body, "schema_source"));
        const char *sql = json_string_value(json_object_get(body, "sql_content"));
        json_t *flush = json_object_get(body, "flush"), *sync = json_object_get(body, "sync");
        const char *bad = NULL;
        if (from && strcmp(from, "sql"))
            bad = "schema_source other than \"sql\" (upstream, downstream) is not supported";
        else if (!sql || !*sql)
            bad = "sql_content is required and must not be empty";
        else if ((flush && !json_is_boolean(flush)) || (sync && !json_is_boolean(sync)))
            bad = "flush and sync must be booleans";
        if (bad) {
            sl__reply_error(r, 400, DM_ERR_OPENAPI, "%s", bad);
            json_decref(body);
            json_decref(req);
            return;
        }
        json_object_set_new(req, "sql", json_string(sql));
        json_decref(body);
    }
    char *text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if (!text) {
        sl__reply_error(r, 500, DM_ERR_INTERNAL, "out of memory");
        return;
    }

    /* The read lock keeps the task and its plan alive during the request (it connects to the
     * target; a start or delete of this task waits for it). */
    pthread_rwlock_rdlock(&a->lock);
    sl_api_task *t = sl__task_find(a, task);
    size_t i = 0;
    while (t && i < t->nsubs && strcmp(sl_subtask_source(t->subs[i]), source))
        i++;
    char *reply = NULL;
    sl_error err = { 0 };
    int rc = 0;
    if (!t) {
        sl__reply_task_not_found(r, task);
        rc = 1;
    } else if (i == t->nsubs) {
        sl__reply_error(r, 404, DM_ERR_SOURCE_NOT_FOUND, "source %s is not a source of task %s",
                        source, task);
        rc = 1;
    } else if (sl_subtask_stage(t->subs[i]) == SL_STAGE_RUNNING) {
        sl__reply_error(r, 400, DM_ERR_OPENAPI, "current stage is Running but not paused, "
                        "invalid: stop the task (or let it pause) before operating on table "
                        "structures of task %s source %s", task, source);
        rc = 1;
    } else {
        rc = sl_worker_ctl(a->worker, t->plan, i, "incremental", "reader", text, &reply, &err);
    }
    pthread_rwlock_unlock(&a->lock);
    free(text);
    if (rc > 0)
        return;
    if (rc == SL_ENOENT) {
        sl__reply_error(r, 404, DM_ERR_OPENAPI, "%s", err.msg);
    } else if (rc == SL_ENOTSUP) {
        sl__reply_error(r, 400, DM_ERR_OPENAPI, "such operation is only available for syncer: "
                        "%s", err.msg);
    } else if (rc == SL_EINVAL || rc == SL_EDB) {
        sl__reply_error(r, 400, DM_ERR_OPENAPI, "%s", err.msg);
    } else if (rc < 0) {
        sl__reply_error(r, 500, DM_ERR_DB, "%s", err.msg);
    } else if (get) {
        json_error_t je;
        json_t *v = reply ? json_loads(reply, 0, &je) : NULL;
        if (v)
            sl__reply_json(r, 200, v);
        else
            sl__reply_error(r, 500, DM_ERR_INTERNAL, "the schema tracker gave no structure");
    } else {
        sl__reply_empty(r, del ? 204 : 200);
    }
    free(reply);
}

int sl__task_tracked_list(sl_req *r, const char *task, const char *source, const char *schema)
{
    sl_api *a = r->api;
    if (schema && !utf8_name(schema)) {
        sl__reply_error(r, 400, DM_ERR_OPENAPI, "the schema name must be UTF-8");
        return 1;
    }
    json_t *req = json_pack("{s:s}", "op", "schema_list");
    if (req && schema)
        json_object_set_new(req, "schema", json_string(schema));
    char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!text)
        return 0;
    pthread_rwlock_rdlock(&a->lock);
    sl_api_task *t = sl__task_find(a, task);
    size_t i = 0;
    while (t && i < t->nsubs && strcmp(sl_subtask_source(t->subs[i]), source))
        i++;
    char *reply = NULL;
    sl_error err = { 0 };
    int rc = 1;    /* not ours to answer: the source view replies (its 404s included) */
    if (t && i < t->nsubs && sl_subtask_stage(t->subs[i]) != SL_STAGE_RUNNING)
        rc = sl_worker_ctl(a->worker, t->plan, i, "incremental", "reader", text, &reply, &err);
    pthread_rwlock_unlock(&a->lock);
    free(text);
    json_error_t je;
    json_t *v = rc == 0 && reply ? json_loads(reply, 0, &je) : NULL;
    free(reply);
    if (rc == 0 && v) {
        sl__reply_json(r, 200, v);
        return 1;
    }
    if (rc == 0 || rc == 1 || rc == SL_EINVAL || rc == SL_ENOTSUP)
        return 0;     /* running, or no tracked structures (yet): the source's tables */
    sl__reply_error(r, 500, DM_ERR_DB, "%s", err.msg);
    return 1;
}
