/*
 * tasks.c - /api/v1/tasks: create and update (compiled by the task compiler, every problem
 * reported with its JSON path), list (cached answer for the plain list), get, delete, start,
 * stop, status (verify is in task_verify.c); migrate_targets and the task's view of its sources' schemas and tables are in
 * task_sources.c.
 * Table-structure operations are in task_schemas.c; templates and converters answer 501.
 */
#include "internal.h"

#include <errno.h>
#include <ftw.h>
#include <mysql.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sluice/log.h"
#include "sluice/match.h"

sl_api_task *sl__task_find(sl_api *a, const char *name)
{
    for (size_t i = 0; i < a->ntasks; i++)
        if (!strcmp(a->tasks[i]->name, name))
            return a->tasks[i];
    return NULL;
}

/* Free the task and its subtasks; its plan too unless keep_plan (then the caller owns it). */
static void task_free_keep(sl_api_task *t, sl_task_plan **keep_plan)
{
    if (!t)
        return;
    sl_tverify_free(t->verify);   /* stops a run at its next chunk */
    for (size_t i = 0; i < t->nsubs; i++)
        sl_subtask_free(t->subs[i]);
    free(t->subs);
    if (keep_plan)
        *keep_plan = t->plan;
    else
        sl_task_plan_free(t->plan);
    json_decref(t->def);
    free(t->name);
    free(t);
}

static void task_free(sl_api_task *t)
{
    task_free_keep(t, NULL);
}

/* Build the in-memory task from its plan (subtasks read their stored stage). Takes plan. */
static sl_api_task *task_new(sl_api *a, sl_task_plan *plan)
{
    sl_api_task *t = calloc(1, sizeof *t);
    if (!t || !(t->name = strdup(plan->name))) {
        free(t);
        sl_task_plan_free(plan);
        return NULL;
    }
    t->def = json_incref(plan->task);
    t->plan = plan;
    size_t n = plan->nsubtasks;
    t->subs = calloc(n ? n : 1, sizeof *t->subs);
    if (!t->subs) {
        task_free(t);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!(t->subs[i] = sl_subtask_new(a->worker, plan, i))) {
            task_free(t);
            return NULL;
        }
        t->nsubs++;
    }
    return t;
}

static int task_add(sl_api *a, sl_api_task *t)
{
    if (a->ntasks == a->captasks) {
        size_t cap = a->captasks ? a->captasks * 2 : 16;
        sl_api_task **n = realloc(a->tasks, cap * sizeof *n);
        if (!n)
            return SL_ENOMEM;
        a->tasks = n;
        a->captasks = cap;
    }
    /* in name order, as the store scans them back after a restart (and as DM lists etcd's keys) */
    size_t at = a->ntasks;
    while (at > 0 && strcmp(a->tasks[at - 1]->name, t->name) > 0)
        at--;
    memmove(a->tasks + at + 1, a->tasks + at, (a->ntasks - at) * sizeof *a->tasks);
    a->tasks[at] = t;
    a->ntasks++;
    sl__tasks_cache_invalidate(a);
    return 0;
}

static void task_unlink(sl_api *a, sl_api_task *t)
{
    for (size_t i = 0; i < a->ntasks; i++)
        if (a->tasks[i] == t) {
            memmove(a->tasks + i, a->tasks + i + 1, (a->ntasks - i - 1) * sizeof *a->tasks);
            a->ntasks--;
            break;
        }
    sl__tasks_cache_invalidate(a);
}

void sl__tasks_free_all(sl_api *a)
{
    for (size_t i = 0; i < a->ntasks; i++)
        task_free(a->tasks[i]);
    free(a->tasks);
    a->tasks = NULL;
    a->ntasks = a->captasks = 0;
    sl__tasks_cache_invalidate(a);
}

void sl__tasks_cache_invalidate(sl_api *a)
{
    pthread_mutex_lock(&a->cache_mu);
    sl__blob_unref(a->tasks_cache);
    a->tasks_cache = NULL;
    a->tasks_gen++;
    pthread_mutex_unlock(&a->cache_mu);
}

static int restore_one(void *ud, const char *name, const char *value)
{
    sl_api *a = ud;
    if (sl__api_cancelled(a))
        return 1;   /* a stop request during startup: sl_api_new gives up */
    sl_error err = { 0 };
    json_t *def = json_loads(value, 0, NULL), *probs = NULL;
    sl_task_plan *plan = NULL;
    if (!def || sl__open_secrets(a, def, &err) != 0) {
        sl_log(SL_LOG_ERROR, "api", "task %s in the store cannot be restored: %s", name,
               err.code ? err.msg : "malformed JSON");
        json_decref(def);
        return 0;
    }
    if (sl__task_compile(a, def, "", &plan, &probs, NULL, &err) != 0) {
        /* Keep the task visible (it can be fixed with PUT or deleted) but without phases. */
        char *p = probs ? sl__dump_compact(probs) : NULL;
        sl_log(SL_LOG_ERROR, "api", "task %s no longer compiles: %s %s", name, err.msg, p ? p : "");
        free(p);
        json_decref(probs);
        plan = sl_task_plan_bare(def);
    }
    json_decref(def);
    sl_api_task *t = plan ? task_new(a, plan) : NULL;
    if (!t || task_add(a, t) != 0) {
        sl_log(SL_LOG_ERROR, "api", "task %s: out of memory while restoring", name);
        task_free(t);
    }
    return 0;
}

/*
 * Compile again every task with a subtask on `source` (none of them running: the caller checked),
 * after the source's relay was enabled or disabled: the plan gives the binlog-reader the relay's
 * directory, or none, so a task reads from where the source now says. A task that no longer
 * compiles keeps its old plan and the log says why. Call with the write lock held.
 */
void sl__tasks_recompile_source(sl_api *a, const char *source)
{
    for (size_t i = 0; i < a->ntasks; i++) {
        sl_api_task *old = a->tasks[i];
        int uses = 0;
        for (size_t j = 0; j < old->nsubs; j++)
            uses |= !strcmp(sl_subtask_source(old->subs[j]), source);
        if (!uses)
            continue;
        sl_error err = { 0 };
        json_t *def = json_deep_copy(old->def), *probs = NULL;
        sl_task_plan *plan = NULL;
        int rc = def ? sl__task_compile(a, def, "", &plan, &probs, NULL, &err) : SL_ENOMEM;
        json_decref(def);
        json_decref(probs);
        sl_api_task *t = rc == 0 ? task_new(a, plan) : NULL;
        if (!t) {
            sl_log(SL_LOG_ERROR, "api", "task %s keeps its plan after source %s changed: %s",
                   old->name, source, rc ? err.msg : "out of memory");
            continue;
        }
        a->tasks[i] = t;            /* same place in the list; the stored task is unchanged */
        task_free(old);
    }
    sl__tasks_cache_invalidate(a);
}

int sl__tasks_restore(sl_api *a, sl_error *err)
{
    /* Subtasks whose stage is Running are started by the worker's event thread. */
    return sl_meta_scan(a->store, "task", "", restore_one, a, err);
}

/* ---- views ---------------------------------------------------------------------------------- */

static json_t *task_status_list(sl_api_task *t)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < t->nsubs; i++)
        json_array_append_new(arr, sl_subtask_status(t->subs[i]));
    return arr;
}

static json_t *task_view(sl_api_task *t, int with_status)
{
    json_t *v = sl__mask_passwords(t->def);
    if (v && with_status)
        json_object_set_new(v, "status_list", task_status_list(t));
    return v;
}

/* ---- persistence ------------------------------------------------------------------------------- */

static int persist_task(sl_api *a, sl_meta_op_type t, const char *name, const json_t *def,
                        sl_error *err)
{
    json_t *sealed = sl__seal_secrets(a, def);
    char *text = sealed ? sl__dump_compact(sealed) : NULL;
    json_decref(sealed);
    if (!text)
        return sl_error_set(err, SL_ENOMEM, "cannot seal the task definition");
    /* the task and fresh Stopped stage records of its sources in one transaction */
    json_t *sc = json_object_get(json_object_get(def, "source_config"), "source_conf");
    size_t n = json_array_size(sc);
    sl_meta_op *ops = calloc(n + 3, sizeof *ops);
    char **keys = calloc(n + 1, sizeof *keys);
    char *prefix = malloc(strlen(name) + 2);
    int rc;
    if (!ops || !keys || !prefix) {
        rc = sl_error_set(err, SL_ENOMEM, "out of memory");
        goto out;
    }
    sprintf(prefix, "%s/", name);
    ops[0] = (sl_meta_op){ t, "task", name, text };
    ops[1] = (sl_meta_op){ SL_META_DELETE_PREFIX, "stage", prefix, NULL };
    /* a cluster's operator wishes (sl_subtask_follow) of an earlier task of this name go too */
    ops[n + 2] = (sl_meta_op){ SL_META_DELETE_PREFIX, "want", prefix, NULL };
    static const char stopped[] = "{\"stage\":\"Stopped\",\"phase\":0,\"error_msg\":\"\"}";
    for (size_t i = 0; i < n; i++) {
        const char *src = json_string_value(json_object_get(json_array_get(sc, i), "source_name"));
        size_t kl = strlen(name) + strlen(src ? src : "") + 2;
        if (!(keys[i] = malloc(kl))) {
            rc = sl_error_set(err, SL_ENOMEM, "out of memory");
            goto out;
        }
        snprintf(keys[i], kl, "%s/%s", name, src ? src : "");
        ops[2 + i] = (sl_meta_op){ SL_META_PUT, "stage", keys[i], stopped };
    }
    rc = sl_meta_apply(a->store, ops, n + 3, err);
out:
    for (size_t i = 0; keys && i < n; i++)
        free(keys[i]);
    free(keys);
    free(ops);
    free(prefix);
    free(text);
    return rc;
}

/* Remove a task, its stages and (unless keep_meta) its plugin state and shard DDL records (one
 * transaction), stopping its subtasks (not waited for: sl_worker_wait_stopped, after the lock).
 * With keep_plan, the plan is handed to the caller for sl_worker_cleanup (and a start of the same
 * name waits for that: sl_worker_hold); else it is freed. Call with the write lock held. */
int sl__tasks_delete_locked(sl_api *a, sl_api_task *t, int keep_meta, sl_task_plan **keep_plan,
                            sl_error *err)
{
    char *prefix = malloc(strlen(t->name) + 2);
    if (!prefix)
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    sprintf(prefix, "%s/", t->name);
    sl_meta_op ops[1 + SL_WORKER_FORGET_OPS] = { { SL_META_DELETE, "task", t->name, NULL } };
    size_t n = 1 + sl_worker_forget_ops(prefix, keep_meta, ops + 1);
    for (size_t i = 0; i < t->nsubs; i++)
        sl_subtask_stop_request(t->subs[i], 0);   /* the caller waits, after its lock */
    int rc = sl_meta_apply(a->store, ops, n, err);
    free(prefix);
    if (rc == 0) {
        if (keep_plan)
            sl_worker_hold(a->worker, t->name);
        task_unlink(a, t);
        task_free_keep(t, keep_plan);
    }
    return rc;
}

/* ---- handlers ---------------------------------------------------------------------------------- */

/* A task that does not compile: 400 with every problem, error_msg one line each as check-task
 * prints them ("PATH: msg (code N)", sl_diags_format), error_code the first one's, and the list
 * itself in "errors" ({"path","msg","code"}). */
static void reply_problems_as(sl_req *r, unsigned status, const char *head, json_t *probs);

static void reply_problems(sl_req *r, json_t *probs)
{
    reply_problems_as(r, 400, NULL, probs);
}

/* The same with another status, and head (when not NULL) as the first line of error_msg. */
static void reply_problems_as(sl_req *r, unsigned status, const char *head, json_t *probs)
{
    char *msg = NULL;
    size_t len = 0, i;
    json_t *x;
    FILE *f = open_memstream(&msg, &len);
    if (!f) {
        sl__reply_error(r, 500, DM_ERR_INTERNAL, "out of memory");
        return;
    }
    if (head)
        fprintf(f, "%s", head);
    json_array_foreach(probs, i, x) {
        const char *p = json_string_value(json_object_get(x, "path"));
        const char *m = json_string_value(json_object_get(x, "msg"));
        fprintf(f, "%s%s: %s (code %d)", i || head ? "\n" : "", p && *p ? p : "/",
                m ? m : "invalid", (int)json_integer_value(json_object_get(x, "code")));
    }
    if (fclose(f) != 0) {
        free(msg);
        sl__reply_error(r, 500, DM_ERR_INTERNAL, "out of memory");
        return;
    }
    json_int_t code = json_integer_value(json_object_get(json_array_get(probs, 0), "code"));
    json_t *o = json_pack("{s:s,s:I,s:O}", "error_msg", msg, "error_code",
                          code ? code : (json_int_t)DM_ERR_TASK_CHECK, "errors", probs);
    free(msg);
    sl__reply_json(r, status, o);
}

/* DM's OperateTaskResponse.check_result for a task that compiled with warnings: "task created
 * with 2 warnings: PATH: msg; PATH: msg". A JSON string (NULL when out of memory). */
static json_t *check_result(const char *verb, json_t *warns)
{
    size_t n = json_array_size(warns), i;
    json_t *x;
    char *msg = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&msg, &len);
    if (!f)
        return NULL;
    fprintf(f, "task %s with %zu warning%s: ", verb, n, n == 1 ? "" : "s");
    json_array_foreach(warns, i, x)
        fprintf(f, "%s%s: %s", i ? "; " : "", json_string_value(json_object_get(x, "path")),
                json_string_value(json_object_get(x, "msg")));
    if (fclose(f) != 0) {
        free(msg);
        return NULL;
    }
    json_t *s = json_string(msg);
    free(msg);
    return s;
}

/* The Task object of a request: {"task": {...}} (DM) or a bare Task. */
static json_t *task_of_body(sl_req *r, json_t *body)
{
    json_t *t = json_object_get(body, "task");
    if (json_is_object(t))
        return t;
    if (t) {
        sl__reply_error(r, 400, DM_ERR_OPENAPI, "/task: must be an object");
        return NULL;
    }
    if (json_object_get(body, "name"))
        return body;
    sl__reply_error(r, 400, DM_ERR_OPENAPI, "/task: is required");
    return NULL;
}

/* The secrets of task that are SL__MASK (a GET answer sent back) replaced by those of def, the
 * stored task: target_config's (sl__keep_masked_secrets), and full_migrate_conf's TLS material
 * (DM's, for a physical import sluice does not do: no server to compare, kept as it is). root is
 * the path of the task in the body. 0, or SL_EINVAL after a 400 reply. */
static int keep_masked(sl_req *r, json_t *task, const json_t *def, const char *root)
{
    char p1[64], p2[64];
    snprintf(p1, sizeof p1, "%s/target_config", root);
    snprintf(p2, sizeof p2, "%s/source_config/full_migrate_conf", root);
    const json_t *fm = json_object_get(json_object_get(def, "source_config"), "full_migrate_conf");
    if (sl__keep_masked_secrets(r, json_object_get(task, "target_config"),
                                json_object_get(def, "target_config"), p1) != 0)
        return SL_EINVAL;
    return sl__keep_masked_secrets(r, json_object_get(json_object_get(task, "source_config"),
                                                      "full_migrate_conf"), fm, p2);
}

static void compile_and(sl_req *r, const char *path_name)
{
    sl_api *a = r->api;
    sl_error err = { 0 };
    json_t *body = sl__body_json(r, 0), *probs = NULL, *warns = NULL;
    json_t *view = NULL, *probe_def = NULL, *probe_srcs = NULL;
    sl_task_plan *plan = NULL;
    if (!body)
        return;
    json_t *tj = task_of_body(r, body);
    if (!tj) {
        json_decref(body);
        return;
    }
    /* problems are reported at paths into the body as it was sent, wrapped or bare */
    const char *root = tj == body ? "" : "/task";
    const char *bname = json_string_value(json_object_get(tj, "name"));
    if (path_name && bname && strcmp(bname, path_name)) {
        sl__reply_error(r, 400, DM_ERR_OPENAPI, "%s/name: '%s' differs from the path's '%s'",
                        root, bname, path_name);
        json_decref(body);
        return;
    }
    if (path_name && !bname)
        json_object_set_new(tj, "name", json_string(path_name));
    pthread_rwlock_wrlock(&a->lock);
    /* a GET answer PUT back shows the target's password and TLS material as "******": keep the
     * stored ones (same target and user only). A create has none to keep: "******" is taken as
     * it is (and the compiler refuses it as TLS material: not PEM). */
    sl_api_task *was = path_name ? sl__task_find(a, path_name) : NULL;
    if (was && keep_masked(r, tj, was->def, root) != 0) {
        pthread_rwlock_unlock(&a->lock);
        json_decref(body);
        return;
    }
    int rc = sl__task_compile(a, tj, root, &plan, &probs, &warns, &err);
    json_decref(body);
    if (rc != 0) {
        pthread_rwlock_unlock(&a->lock);
        if (probs)
            reply_problems(r, probs);
        else
            sl__reply_error(r, 500, DM_ERR_INTERNAL, "%s", err.msg);
        json_decref(probs);
        return;
    }
    const char *name = plan->name;
    sl_api_task *old = sl__task_find(a, name);
    if (!path_name) {
        /* create */
        if (old) {
            sl__reply_error(r, 409, DM_ERR_TASK_EXISTS, "subtasks with name %s already exist, "
                            "Workaround: Please use `query-status` command to see tasks.", name);
            goto drop;
        }
        if ((rc = persist_task(a, SL_META_CREATE, name, plan->task, &err)) != 0) {
            if (rc == SL_EEXIST)
                sl__reply_error(r, 409, DM_ERR_TASK_EXISTS, "subtasks with name %s already exist", name);
            else
                sl__reply_error(r, 500, DM_ERR_INTERNAL, "%s", err.msg);
            goto drop;
        }
    } else {
        /* update: only while no subtask runs (seeds: "make sure ... no running tasks") */
        if (!old) {
            sl__reply_error(r, 404, DM_ERR_TASK_NOT_FOUND, "task with name %s not exist", name);
            goto drop;
        }
        for (size_t i = 0; i < old->nsubs; i++)
            if (sl_subtask_stage(old->subs[i]) == SL_STAGE_RUNNING) {
                sl__reply_error(r, 409, DM_ERR_TASK_RUNNING, "subtask with name %s source name %s "
                                "can only update when no running tasks for now (stop the task first)",
                                name, sl_subtask_source(old->subs[i]));
                goto drop;
            }
        if ((rc = persist_task(a, SL_META_UPDATE, name, plan->task, &err)) != 0) {
            sl__reply_error(r, rc == SL_ENOENT ? 404 : 500, rc == SL_ENOENT ? DM_ERR_TASK_NOT_FOUND
                            : DM_ERR_INTERNAL, "%s", err.msg);
            goto drop;
        }
        task_unlink(a, old);
        task_free(old);
    }
    sl_api_task *t = task_new(a, plan);
    plan = NULL;
    if (!t || task_add(a, t) != 0) {
        task_free(t);
        sl__reply_error(r, 500, DM_ERR_INTERNAL, "out of memory (the task is stored and comes back "
                        "after a restart)");
        goto drop;
    }
    view = task_view(t, 0);
    /* what the sources hold that the task does not copy is read after the lock is released */
    probe_def = json_deep_copy(t->def);
    probe_srcs = json_object();
    for (size_t i = 0; probe_srcs && i < t->nsubs; i++) {
        sl_api_source *src = sl__source_find(a, sl_subtask_source(t->subs[i]));
        if (src)
            json_object_set_new(probe_srcs, src->name, json_deep_copy(src->def));
    }
drop:
    pthread_rwlock_unlock(&a->lock);
    if (view) {
        const char *sn;
        json_t *sd;
        json_object_foreach(probe_srcs, sn, sd) {
            json_t *w = sl__task_not_copied(a, probe_def, sn, sd);
            if (w && !warns)
                warns = json_array();
            if (w)
                json_array_append_new(warns, w);
        }
        if (warns && json_array_size(warns))
            json_object_set_new(view, "check_result", check_result(path_name ? "updated" : "created",
                                                                   warns));
        sl__reply_json(r, 200, view);
    } else if (!r->status) {
        sl__reply_error(r, 500, DM_ERR_INTERNAL, "out of memory (the task is stored)");
    }
    json_decref(probe_def);
    json_decref(probe_srcs);
    sl_task_plan_free(plan);
    json_decref(warns);
}

static int task_has_sources(sl_api_task *t, json_t *list)
{
    size_t i;
    json_t *x;
    if (json_array_size(list) != t->nsubs)
        return 0;
    json_array_foreach(list, i, x) {
        int found = 0;
        for (size_t j = 0; j < t->nsubs && !found; j++)
            found = !strcmp(sl_subtask_source(t->subs[j]), json_string_value(x));
        if (!found)
            return 0;
    }
    return 1;
}

static int parse_stage(sl_req *r, const char *q, sl_stage *out)
{
    static const sl_stage all[] = { SL_STAGE_NEW, SL_STAGE_RUNNING, SL_STAGE_PAUSED,
                                    SL_STAGE_STOPPED, SL_STAGE_FINISHED };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (!strcasecmp(q, sl_stage_name(all[i]))) {
            *out = all[i];
            return 0;
        }
    sl__reply_error(r, 400, DM_ERR_OPENAPI, "stage must be one of New, Running, Paused, Stopped, "
                    "Finished, not '%s'", q);
    return -1;
}

static void list_tasks(sl_req *r)
{
    sl_api *a = r->api;
    int with_status;
    sl_stage stage = SL_STAGE_NEW;
    const char *sq = sl__query(r, "stage");
    size_t nargs = r->nargs;
    if (nargs == 0) {
        /* the plain list: served from a cached body, rebuilt after each task change */
        pthread_mutex_lock(&a->cache_mu);
        sl_blob *b = a->tasks_cache;
        if (b)
            atomic_fetch_add(&b->refs, 1);
        pthread_mutex_unlock(&a->cache_mu);
        if (b) {
            sl__reply_blob(r, 200, b);
            sl__blob_unref(b);
            return;
        }
    }
    if (sl__query_bool(r, "with_status", &with_status) || (sq && parse_stage(r, sq, &stage)))
        return;
    json_t *srcs = sl__query_list(r, "source_name_list");
    json_t *data = json_array();
    pthread_rwlock_rdlock(&a->lock);
    uint64_t gen = a->tasks_gen;
    for (size_t i = 0; i < a->ntasks; i++) {
        sl_api_task *t = a->tasks[i];
        if (json_array_size(srcs) && !task_has_sources(t, srcs))
            continue;
        if (sq) {
            size_t j = 0;
            while (j < t->nsubs && sl_subtask_stage(t->subs[j]) == stage)
                j++;
            if (j < t->nsubs || t->nsubs == 0)
                continue;
        }
        json_array_append_new(data, task_view(t, with_status));
    }
    pthread_rwlock_unlock(&a->lock);
    json_decref(srcs);
    json_t *o = json_pack("{s:I,s:o}", "total", (json_int_t)json_array_size(data), "data", data);
    if (nargs == 0 && o) {
        char *s = sl__dump_compact(o);
        sl_blob *b = s ? sl__blob_new(s, strlen(s)) : NULL;
        free(s);
        if (b) {
            pthread_mutex_lock(&a->cache_mu);
            if (a->tasks_gen == gen && !a->tasks_cache) {
                a->tasks_cache = b;
                atomic_fetch_add(&b->refs, 1);
            }
            pthread_mutex_unlock(&a->cache_mu);
            json_decref(o);
            sl__reply_blob(r, 200, b);
            sl__blob_unref(b);
            return;
        }
    }
    sl__reply_json(r, 200, o);
}


static void get_task(sl_req *r, const char *name)
{
    sl_api *a = r->api;
    int with_status;
    if (sl__query_bool(r, "with_status", &with_status))
        return;
    pthread_rwlock_rdlock(&a->lock);
    sl_api_task *t = sl__task_find(a, name);
    if (t)
        sl__reply_json(r, 200, task_view(t, with_status));
    else
        sl__reply_task_not_found(r, name);
    pthread_rwlock_unlock(&a->lock);
}

/* In a cluster the bound workers stop a deleted task's subtasks at their next poll and then
 * withdraw its published status (api/runner.c): wait for that (at most two lease TTLs: a dead
 * worker's status goes with its lease) before the plugins' cleanup removes the checkpoints, so no
 * worker writes one after the cleanup. */
static void wait_workers_stopped(sl_api *a, const sl_task_plan *plan)
{
    long ttl = a->opts.lease_ttl > 0 ? a->opts.lease_ttl : 10;
    for (size_t i = 0; i < plan->nsubtasks; i++) {
        for (long k = 0; k < ttl * 20; k++) {
            json_t *o = NULL;
            int rc = sl_member_live_get(a->member, plan->name, plan->subtasks[i].source_name, &o);
            json_decref(o);
            if (rc == SL_ENOENT)
                break;
            struct timespec ts = { 0, 100 * 1000000L };
            nanosleep(&ts, NULL);
        }
    }
}

static void delete_task(sl_req *r, const char *name)
{
    sl_api *a = r->api;
    sl_error err = { 0 };
    int force, keep_meta;
    if (sl__query_bool(r, "force", &force) || sl__query_bool(r, "keep_meta", &keep_meta))
        return;
    sl_task_plan *plan = NULL;
    pthread_rwlock_wrlock(&a->lock);
    sl_api_task *t = sl__task_find(a, name);
    if (!t) {
        sl__reply_task_not_found(r, name);
        goto out;
    }
    for (size_t i = 0; i < t->nsubs && !force; i++)
        if (sl_subtask_stage(t->subs[i]) == SL_STAGE_RUNNING) {
            sl__reply_error(r, 409, DM_ERR_TASK_RUNNING, "task %s have running subtasks, please "
                            "stop them or delete task with force.", name);
            goto out;
        }
    if (sl__tasks_delete_locked(a, t, keep_meta, keep_meta ? NULL : &plan, &err) != 0) {
        sl__reply_error(r, 500, DM_ERR_INTERNAL, "%s", err.msg);
        goto out;
    }
    sl__reply_empty(r, 204);
out:
    pthread_rwlock_unlock(&a->lock);
    /* its pipelines stop apart from the lock; the cleanup must not race their last flush (a
     * stuck one is logged, and its checkpoint may outlive the cleanup) */
    if (r->status == 204 && sl_worker_wait_stopped(a->worker, name, 10000, &err) != 0)
        sl_log(SL_LOG_WARN, "api", "delete: %s; it goes on stopping", err.msg);
    /* DM's delete without keep_meta: the plugins remove their checkpoints (in the target's meta
     * schema) and files (the dump), outside the lock (a dump can be gigabytes); a start of a task
     * of the same name waits for it. Failures are logged: the task is gone either way. */
    if (plan) {
        if (a->member)
            wait_workers_stopped(a, plan);
        sl_worker_cleanup(a->worker, plan, SL_CLEANUP_META | SL_CLEANUP_FILES, &err);
        sl_task_plan_free(plan);
    }
}

/* Subtasks selected by a source_name_list (all when empty); replies 400 on an unknown name. */
static int select_subtasks(sl_req *r, sl_api_task *t, json_t *list, sl_subtask **out)
{
    size_t n = 0, i;
    json_t *x;
    if (!json_array_size(list)) {
        for (i = 0; i < t->nsubs; i++)
            out[n++] = t->subs[i];
        return (int)n;
    }
    json_array_foreach(list, i, x) {
        size_t j;
        for (j = 0; j < t->nsubs; j++)
            if (json_is_string(x) && !strcmp(sl_subtask_source(t->subs[j]), json_string_value(x)))
                break;
        if (j == t->nsubs) {
            sl__reply_error(r, 400, DM_ERR_SOURCE_NOT_FOUND, "source %s is not a source of task %s",
                            json_is_string(x) ? json_string_value(x) : "?", t->name);
            return -1;
        }
        size_t k = 0;
        while (k < n && out[k] != t->subs[j])
            k++;
        if (k == n)   /* a source named twice is one subtask (out holds at most nsubs) */
            out[n++] = t->subs[j];
    }
    return (int)n;
}

/* Run the prechecks pc of a start (task_precheck.c; freed here), without the lock: they read
 * the sources and the target. Replies and returns -1 when they refuse: 409 (DM's 38058) when
 * another task writes one of its target tables, else 400 (DM's 26005, a failed precheck). 0 to
 * go on. */
static int start_prechecks(sl_req *r, const char *name, sl__precheck *pc, int remove_meta)
{
    if (!pc)
        return 0;
    json_t *errs = json_array(), *warns = json_array();
    int rc = 0, conflict = errs && warns ? sl__precheck_run(pc, remove_meta, "", errs, warns) : 0;
    sl__precheck_free(pc);
    size_t i;
    json_t *x;
    json_array_foreach(warns, i, x)
        sl_log(SL_LOG_WARN, "api", "task %s: %s", name,
               json_string_value(json_object_get(x, "msg")));
    if (json_array_size(errs)) {
        char head[200];
        snprintf(head, sizeof head, "can not start task: %s reason: a precheck failed, nothing "
                 "was started:", name);
        /* the conflict's code first: it decides the answer's error_code */
        if (conflict) {
            json_t *c = json_array();
            json_array_foreach(errs, i, x)
                if (json_integer_value(json_object_get(x, "code")) == DM_ERR_CANNOT_START)
                    json_array_append(c, x);
            json_array_foreach(errs, i, x)
                if (json_integer_value(json_object_get(x, "code")) != DM_ERR_CANNOT_START)
                    json_array_append(c, x);
            json_decref(errs);
            errs = c;
        }
        reply_problems_as(r, conflict ? 409 : 400, head, errs);
        rc = -1;
    }
    json_decref(errs);
    json_decref(warns);
    return rc;
}

/* The generation of the task list (sl__tasks_cache_invalidate moves it on every change). */
static uint64_t tasks_gen(sl_api *a)
{
    pthread_mutex_lock(&a->cache_mu);
    uint64_t g = a->tasks_gen;
    pthread_mutex_unlock(&a->cache_mu);
    return g;
}

/* A start with remove_meta: the shard DDL locks and joins of the task go with the shard tables
 * the cleanup dropped in the target (DM removes its lock info too). A lock kept would count the
 * shards that read their DDL again, from the new start, as arriving a second time, and run a
 * DDL the target has by then. */
static int forget_shard_records(sl_api *a, const char *name, sl_error *err)
{
    char *prefix = malloc(strlen(name) + 2);
    if (!prefix)
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    sprintf(prefix, "%s/", name);
    sl_meta_op ops[2];
    size_t n = sl_worker_shard_forget_ops(prefix, ops);
    int rc = sl_meta_apply(a->store, ops, n, err);
    free(prefix);
    return rc;
}

static void start_stop(sl_req *r, const char *name, int start)
{
    sl_api *a = r->api;
    json_t *body = sl__body_json(r, 1), *list;
    if (!body)
        return;
    static const char *const start_keys[] = { "remove_meta", "source_name_list", "start_time",
                                              "safe_mode_time_duration" };
    static const char *const stop_keys[] = { "timeout_duration", "source_name_list" };
    if (start ? sl__unknown_field(r, body, "", start_keys, sizeof start_keys / sizeof *start_keys)
              : sl__unknown_field(r, body, "", stop_keys, sizeof stop_keys / sizeof *stop_keys)) {
        json_decref(body);
        return;
    }
    json_t *val = json_object_get(body, "remove_meta");
    if (val && !json_is_boolean(val) && !json_is_null(val)) {
        sl__reply_error(r, 400, DM_ERR_OPENAPI, "/remove_meta: must be true or false");
        json_decref(body);
        return;
    }
    list = json_object_get(body, "source_name_list");
    if (list && !json_is_array(list) && !json_is_null(list)) {
        sl__reply_error(r, 400, DM_ERR_OPENAPI, "/source_name_list: must be an array of source names");
        json_decref(body);
        return;
    }
    sl_start_args args = { 0, 0, 0 };
    int stop_wait_ms = -1;           /* a stop asked: wait this long for it after the lock */
    const char *local_time = NULL;   /* start_time without an offset: in each source's zone */
    int trc = 0;
    if (start) {
        char why[200];
        json_t *v = json_object_get(body, "start_time");
        if (v && !json_is_null(v) && !(json_is_string(v) && !json_string_length(v)) &&
            (!json_is_string(v) || (trc = sl__parse_time(json_string_value(v), &args.start_time,
                                                         why, sizeof why)) < 0)) {
            sl__reply_error(r, 400, DM_ERR_OPENAPI, "/start_time: %s", json_is_string(v) ? why :
                            "must be a string like \"2006-01-02T15:04:05+08:00\"");
            json_decref(body);
            return;
        }
        if (trc == 1) {
            local_time = json_string_value(v);
            args.start_time = 1;   /* set per source below */
        }
        v = json_object_get(body, "safe_mode_time_duration");
        if (v && !json_is_null(v) && !(json_is_string(v) && !json_string_length(v)) &&
            (!json_is_string(v) || sl__parse_duration(json_string_value(v), &args.safe_mode_seconds,
                                                      why, sizeof why) != 0)) {
            sl__reply_error(r, 400, DM_ERR_OPENAPI, "/safe_mode_time_duration: %s",
                            json_is_string(v) ? why : "must be a duration string like \"10s\"");
            json_decref(body);
            return;
        }
    } else {
        /* DM's stop waits up to timeout_duration for the unit to stop. Here the stop is asked
         * under the lock (the stage is Stopped at once) and waited for outside it: a stage that
         * does not return (a Lua pattern, a frozen target) holds this request only, and it is
         * answered 200 after the wait all the same, its status saying "stopping": true. */
        char why[200];
        long long secs = 10;
        json_t *v = json_object_get(body, "timeout_duration");
        if (v && !json_is_null(v) && !(json_is_string(v) && !json_string_length(v)) &&
            (!json_is_string(v) || sl__parse_duration(json_string_value(v), &secs, why, sizeof why))) {
            sl__reply_error(r, 400, DM_ERR_OPENAPI, "/timeout_duration: %s",
                            json_is_string(v) ? why : "must be a duration string like \"15s\"");
            json_decref(body);
            return;
        }
        stop_wait_ms = secs > 3600 ? 3600 * 1000 : (int)secs * 1000;
    }
    json_t *rm = json_object_get(body, "remove_meta");
    int remove_meta = start && json_is_true(rm);
    int prechecked = 0, tries = 0;
    uint64_t gen = 0;
    char *writers = NULL;       /* the other tasks on the target writing when the prechecks began */
    sl_subtask **sel = NULL;
    sl_start_args *argv = NULL;
again:
    pthread_rwlock_wrlock(&a->lock);
    sl_api_task *t = sl__task_find(a, name);
    sel = t ? calloc(t->nsubs + 1, sizeof *sel) : NULL;
    argv = t ? calloc(t->nsubs + 1, sizeof *argv) : NULL;
    int n, stopped = 0;
    if (!t) {
        sl__reply_task_not_found(r, name);
        goto out;
    }
    if (!sel || !argv) {
        sl__reply_error(r, 500, DM_ERR_INTERNAL, "out of memory");
        goto out;
    }
    if ((n = select_subtasks(r, t, list, sel)) < 0)
        goto out;
    if (!start) {
        for (int i = 0; i < n; i++)
            sl_subtask_stop_request(sel[i], 1);
        stopped = 1;
        goto out;
    }
    if (remove_meta) {
        /* The checkpoints of every source of the task share its tables in the meta schema, and
         * remove_meta drops those tables: every source starts over, so none may be left out (it
         * would lose its place) and none may be running (it would write beside the drop). */
        if ((size_t)n < t->nsubs) {
            sl__reply_error(r, 400, DM_ERR_OPENAPI, "/remove_meta: drops the checkpoints of every "
                            "source of task %s (they share its tables in the meta schema): stop "
                            "all of them and start without source_name_list", name);
            goto out;
        }
        for (size_t i = 0; i < t->nsubs; i++) {
            if (sl_subtask_stage(t->subs[i]) == SL_STAGE_RUNNING) {
                sl__reply_error(r, 409, DM_ERR_TASK_RUNNING, "remove_meta needs the task stopped: "
                                "source %s is running", sl_subtask_source(t->subs[i]));
                goto out;
            }
        }
    }
    for (int i = 0; i < n; i++) {
        sl_api_source *s = sl__source_find(a, sl_subtask_source(sel[i]));
        if (!s || !json_is_true(json_object_get(s->def, "enable"))) {
            sl__reply_error(r, 409, DM_ERR_CANNOT_START, "can not start task: %s reason: source: %s "
                            "is not enabled (POST /api/v1/sources/%s/enable)", name,
                            sl_subtask_source(sel[i]), sl_subtask_source(sel[i]));
            goto out;
        }
        /* start_time places the binlog reader where no checkpoint is: a first start of an
         * incremental task, or one whose checkpoints remove_meta drops now */
        if (args.start_time && strcmp(t->plan->task_mode, "incremental")) {
            sl__reply_error(r, 400, DM_ERR_OPENAPI, "/start_time: applies to task_mode incremental "
                            "(task %s is %s: its full phase fixes where the binlog starts)", name,
                            t->plan->task_mode);
            goto out;
        }
        if (args.start_time && !remove_meta && sl_subtask_ever_started(sel[i])) {
            sl__reply_error(r, 409, DM_ERR_CANNOT_START, "can not start task: %s reason: source %s "
                            "has run before and may have a checkpoint, which would win over "
                            "start_time: start with remove_meta=true to start at start_time", name,
                            sl_subtask_source(sel[i]));
            goto out;
        }
        argv[i] = args;
        argv[i].from_start = remove_meta;
        if (local_time) {
            /* DM reads a start_time without an offset in the upstream's zone: ask the source */
            sl_error zerr = { 0 };
            long long at = 0;
            if (sl__source_local_time(a, s->def, local_time, &at, &zerr) != 0) {
                sl__reply_error(r, 400, DM_ERR_OPENAPI, "/start_time: '%s' in the zone of source "
                                "%s: %s", local_time, sl_subtask_source(sel[i]), zerr.msg);
                goto out;
            }
            argv[i].start_time = at;
        }
    }
    /* The prechecks read the sources and the target: the lock is let go around them, and the
     * start is decided again. They run again when the task list changed meanwhile, or another
     * task on the target began to write (two tasks writing one table, started at once, each
     * found the other not writing): three times at most, then the start is refused. */
    if (prechecked) {
        char *now = sl__precheck_writers(a, t->plan);
        int stale = tasks_gen(a) != gen || !now || !writers || strcmp(now, writers) != 0;
        free(now);
        if (stale && tries == 3) {
            sl__reply_error(r, 409, DM_ERR_CANNOT_START, "can not start task: %s reason: other "
                            "tasks changed while its prechecks ran, three times: start it again",
                            name);
            goto out;
        }
        prechecked = !stale;
    }
    sl__precheck *pc = prechecked ? NULL : sl__precheck_prepare(a, t->plan, SL__PRECHECK_START);
    if (pc) {
        gen = tasks_gen(a);
        free(writers);
        writers = sl__precheck_writers(a, t->plan);
        pthread_rwlock_unlock(&a->lock);
        free(sel);
        free(argv);
        sel = NULL;
        argv = NULL;
        if (start_prechecks(r, name, pc, remove_meta) < 0) {
            free(writers);
            json_decref(body);
            return;
        }
        prechecked = 1;
        tries++;
        goto again;
    }
    if (remove_meta) {
        /* DM's start with remove_meta: the plugins drop their checkpoints before the start */
        sl_error cerr = { 0 };
        for (int i = 0; i < n; i++)
            sl_subtask_stop_request(sel[i], 1);   /* a Paused one may have a resume armed */
        /* none runs (checked above), so this is prompt; the drop must not race a last flush */
        if (sl_worker_wait_stopped(a->worker, name, 5000, &cerr) != 0) {
            sl__reply_error(r, 409, DM_ERR_CANNOT_START, "can not start task: %s reason: %s", name,
                            cerr.msg);
            goto out;
        }
        sl_worker_hold(a->worker, name);
        sl_worker_cleanup(a->worker, t->plan, SL_CLEANUP_META, &cerr);
        if (forget_shard_records(a, name, &cerr) != 0) {
            sl__reply_error(r, 500, DM_ERR_INTERNAL, "can not start task: %s reason: %s", name,
                            cerr.msg);
            goto out;
        }
    }
    char msgs[2048] = "";
    int worst = 0;
    for (int i = 0; i < n; i++) {
        sl_error err = { 0 };
        int rc = sl_subtask_start_with(sel[i], &argv[i], &err);
        if (rc != 0) {
            size_t l = strlen(msgs);
            snprintf(msgs + l, sizeof msgs - l, "%ssource %s: %s", l ? "; " : "",
                     sl_subtask_source(sel[i]), err.msg);
            if (rc == SL_ENOTSUP || !worst)
                worst = rc;
        }
    }
    if (!worst)
        sl__reply_empty(r, 200);
    else if (worst == SL_ENOTSUP)
        sl__reply_error(r, 501, DM_ERR_NOT_IMPLEMENTED, "can not start task: %s reason: %s", name, msgs);
    else if (worst == SL_ENOMEM || worst == SL_EINTERNAL)
        sl__reply_error(r, 500, DM_ERR_INTERNAL, "can not start task: %s reason: %s", name, msgs);
    else
        sl__reply_error(r, 400, DM_ERR_CANNOT_START, "can not start task: %s reason: %s", name, msgs);
out:
    pthread_rwlock_unlock(&a->lock);
    if (stopped) {
        sl_error werr = { 0 };
        if (sl_worker_wait_stopped(a->worker, name, stop_wait_ms, &werr) != 0)
            sl_log(SL_LOG_WARN, "api", "stop: %s; it goes on stopping", werr.msg);
        sl__reply_empty(r, 200);
    }
    free(sel);
    free(argv);
    free(writers);
    json_decref(body);
}

static void task_status(sl_req *r, const char *name)
{
    sl_api *a = r->api;
    const char *sq = sl__query(r, "stage");
    sl_stage stage = SL_STAGE_NEW;
    if (sq && parse_stage(r, sq, &stage))
        return;
    json_t *srcs = sl__query_list(r, "source_name_list");
    pthread_rwlock_rdlock(&a->lock);
    sl_api_task *t = sl__task_find(a, name);
    if (!t) {
        sl__reply_task_not_found(r, name);
    } else {
        json_t *data = json_array();
        for (size_t i = 0; i < t->nsubs; i++) {
            sl_subtask *s = t->subs[i];
            if (sq && sl_subtask_stage(s) != stage)
                continue;
            if (json_array_size(srcs)) {
                size_t k;
                json_t *x;
                int hit = 0;
                json_array_foreach(srcs, k, x)
                    hit |= !strcmp(json_string_value(x), sl_subtask_source(s));
                if (!hit)
                    continue;
            }
            json_array_append_new(data, sl_subtask_status(s));
        }
        sl__reply_json(r, 200, json_pack("{s:I,s:o}", "total", (json_int_t)json_array_size(data),
                                         "data", data));
    }
    pthread_rwlock_unlock(&a->lock);
    json_decref(srcs);
}

/* ---- routing ------------------------------------------------------------------------------------- */

void sl__reply_task_not_found(sl_req *r, const char *name)
{
    sl__reply_error(r, 404, DM_ERR_TASK_NOT_FOUND, "task with name %s not exist, Workaround: "
                    "Please use `query-status` command to see tasks.", name);
}

void sl__tasks_route(sl_req *r)
{
    const char *m = r->method;
    int get = !strcmp(m, "GET"), post = !strcmp(m, "POST");
    if (r->nseg == 1) {
        if (get)
            list_tasks(r);
        else if (post)
            compile_and(r, NULL);
        else
            sl__reply_method(r, "GET, POST");
        return;
    }
    const char *name = r->segs[1];
    if (!strcmp(name, "templates") || !strcmp(name, "converters")) {
        /* static segments win over task names, as in DM */
        sl__reply_error(r, 501, DM_ERR_NOT_IMPLEMENTED, "/api/v1/tasks/%s is not implemented in "
                        "sluice yet: task templates and task.yaml conversion come later", name);
        return;
    }
    if (r->nseg == 2) {
        if (get)
            get_task(r, name);
        else if (!strcmp(m, "PUT"))
            compile_and(r, name);
        else if (!strcmp(m, "DELETE"))
            delete_task(r, name);
        else
            sl__reply_method(r, "GET, PUT, DELETE");
        return;
    }
    const char *op = r->segs[2];
    if (r->nseg == 3 && (!strcmp(op, "start") || !strcmp(op, "stop"))) {
        if (post)
            start_stop(r, name, !strcmp(op, "start"));
        else
            sl__reply_method(r, "POST");
        return;
    }
    if (r->nseg == 3 && !strcmp(op, "verify")) {
        if (get || post)
            sl__task_verify(r, name);
        else
            sl__reply_method(r, "GET, POST");
        return;
    }
    if ((r->nseg == 3 || (r->nseg == 4 && !strcmp(r->segs[3], "unlock"))) &&
        !strcmp(op, "shard_ddl_locks")) {
        sl__task_shard(r, name, r->nseg);
        return;
    }
    if (r->nseg == 3 && !strcmp(op, "status")) {
        if (get)
            task_status(r, name);
        else
            sl__reply_method(r, "GET");
        return;
    }
    if (r->nseg < 5 || strcmp(op, "sources"))
        return;
    const char *source = r->segs[3];
    const char *what = r->segs[4];
    if (r->nseg == 5 && !strcmp(what, "migrate_targets")) {
        if (get)
            sl__task_source_view(r, name, source, 0, NULL);
        else
            sl__reply_method(r, "GET");
    } else if (r->nseg == 5 && !strcmp(what, "schemas")) {
        /* the tracker's view when the subtask is not running, else the source's */
        if (!get)
            sl__reply_method(r, "GET");
        else if (!sl__task_tracked_list(r, name, source, NULL))
            sl__task_source_view(r, name, source, 1, NULL);
    } else if (r->nseg == 6 && !strcmp(what, "schemas")) {
        /* the tracker's view when the subtask is not running, else the source's */
        if (!get)
            sl__reply_method(r, "GET");
        else if (!sl__task_tracked_list(r, name, source, r->segs[5]))
            sl__task_source_view(r, name, source, 2, r->segs[5]);
    } else if (r->nseg == 7 && !strcmp(what, "schemas")) {
        if (get || post || !strcmp(m, "PUT") || !strcmp(m, "DELETE"))
            sl__task_table_structure(r, name, source, r->segs[5], r->segs[6]);
        else
            sl__reply_method(r, "GET, PUT, POST, DELETE");
    }
}
