/*
 * task_shard.c - /api/v1/tasks/{name}/shard_ddl_locks (sluice extension beside DM's dmctl
 * shard-ddl-lock): GET lists the task's unresolved shard DDL locks, POST .../unlock resolves one
 * by hand (a shard that will never come). The coordinator (runtime/shard.c) does the work.
 */
#include "internal.h"

#include <string.h>

#include "shard.h"

static void list(sl_req *r, const char *name)
{
    json_t *locks = sl_shard_locks(r->api->worker, name);
    sl__reply_json(r, 200, json_pack("{s:I,s:o}", "total", (json_int_t)json_array_size(locks),
                                     "data", locks));
}

/* More than the longest lock id, "<task>-`schema`.`table`": a task name of at most 43
 * characters, two names of at most 64 characters of up to 4 bytes, backquotes doubled, come to
 * under 1,100 bytes; anything longer names no lock. */
#define LOCK_ID_MAX 2048

/* The body of an unlock parsed again refusing a key given twice: which "exec" counts must not
 * depend on the JSON library's choice, for a request that runs a DDL. NULL after a 400. */
static json_t *unlock_body(sl_req *r)
{
    json_error_t e;
    json_t *b = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &e);
    if (!b)
        sl__reply_error(r, 400, DM_ERR_OPENAPI, "malformed JSON body at line %d, column %d: %s",
                        e.line, e.column > 0 ? e.column : 1, e.text);
    return b;
}

static void unlock(sl_req *r, const char *name)
{
    json_t *b = sl__body_json(r, 0);
    if (!b)
        return;
    json_decref(b);
    if (!(b = unlock_body(r)))
        return;
    /* a field this endpoint does not know ("op": "skip") would be ignored, and the lock
     * resolved in a way the operator did not ask for */
    static const char *const keys[] = { "lock_id", "exec" };
    if (sl__unknown_field(r, b, "", keys, sizeof keys / sizeof *keys)) {
        json_decref(b);
        return;
    }
    const char *id = json_string_value(json_object_get(b, "lock_id"));
    json_t *ex = json_object_get(b, "exec");
    if (!id || !*id || (ex && !json_is_boolean(ex))) {
        sl__reply_error(r, 400, DM_ERR_OPENAPI, "request body needs \"lock_id\" (a string, as "
                        "GET /api/v1/tasks/%s/shard_ddl_locks lists it) and optionally \"exec\" "
                        "(a boolean, default true)", name);
        json_decref(b);
        return;
    }
    if (strlen(id) > LOCK_ID_MAX) {
        sl__reply_error(r, 400, DM_ERR_OPENAPI, "/lock_id: %zu bytes, longer than any lock id "
                        "(GET /api/v1/tasks/%s/shard_ddl_locks lists them)", strlen(id), name);
        json_decref(b);
        return;
    }
    sl_error err = {0};
    int exec = ex ? json_is_true(ex) : 1;
    int rc = sl_shard_unlock(r->api->worker, name, id, exec, &err);
    if (rc == SL_ENOENT)
        sl__reply_error(r, 404, DM_ERR_LOCK_NOT_FOUND, "%s", err.msg);
    else if (rc == SL_ESTATE)
        sl__reply_error(r, 409, DM_ERR_LOCK_RESOLVING, "%s", err.msg);
    else if (rc < 0)
        sl__reply_error(r, 500, DM_ERR_INTERNAL, "%s", err.msg);
    else
        sl__reply_json(r, 200, json_pack("{s:s,s:s}", "lock_id", id, "result",
                                         exec ? "executing" : "resolved"));
    json_decref(b);
}

void sl__task_shard(sl_req *r, const char *name, int nseg)
{
    sl_api *a = r->api;
    int get = !strcmp(r->method, "GET"), post = !strcmp(r->method, "POST");
    if (nseg == 3 && !get) {
        sl__reply_method(r, "GET");
        return;
    }
    if (nseg == 4 && !post) {
        sl__reply_method(r, "POST");
        return;
    }
    pthread_rwlock_rdlock(&a->lock);
    if (!sl__task_find(a, name))
        sl__reply_task_not_found(r, name);
    else if (nseg == 3)
        list(r, name);
    else
        unlock(r, name);
    pthread_rwlock_unlock(&a->lock);
}
