/*
 * task_verify.c - /api/v1/tasks/{name}/verify (sluice extension beside DM's validator): POST
 * starts a comparison of the task's source and target tables on a runtime thread (the handler
 * only starts it), GET shows the last run: state, progress, per-table results, the differing
 * rows by key and where the repair SQL is. The runtime (runtime/tverify.c) does the work.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

static void start(sl_req *r, sl_api *a, sl_api_task *t, const char *name)
{
    if (a->offline) {
        sl__reply_error(r, 409, DM_ERR_CANNOT_START, "can not verify task %s: this server does "
                        "not connect to MySQL servers (offline)", name);
        return;
    }
    if (t->verify && sl_tverify_running(t->verify)) {
        sl__reply_error(r, 409, DM_ERR_VERIFY_RUNNING, "a verification of task %s is running; "
                        "GET /api/v1/tasks/%s/verify shows its progress", name, name);
        return;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/verify", a->data_dir);
    sl_error err = {0};
    sl_tverify *v = NULL;
    int rc = sl_tverify_start(a->worker, t->plan,
                              t->nsubs == t->plan->nsubtasks ? t->subs : NULL, dir, &v, &err);
    if (rc < 0) {
        sl__reply_error(r, rc == SL_ENOTSUP ? 409 : rc == SL_ELIMIT ? 503 : 500,
                        rc == SL_ENOTSUP ? DM_ERR_CANNOT_START : DM_ERR_INTERNAL,
                        "can not verify task %s: %s", name, err.msg);
        return;
    }
    sl_tverify_free(t->verify);   /* the previous run, ended */
    t->verify = v;
    sl__reply_json(r, 202, sl_tverify_status(v));
}

void sl__task_verify(sl_req *r, const char *name)
{
    sl_api *a = r->api;
    int post = !strcmp(r->method, "POST");
    /* a start replaces the task's run: the write lock; a read only needs the read lock (the run
     * guards its own state) */
    if (post)
        pthread_rwlock_wrlock(&a->lock);
    else
        pthread_rwlock_rdlock(&a->lock);
    sl_api_task *t = sl__task_find(a, name);
    if (!t)
        sl__reply_task_not_found(r, name);
    else if (post)
        start(r, a, t, name);
    else if (!t->verify)
        sl__reply_json(r, 200, json_pack("{s:s,s:s}", "task", name, "state", "none"));
    else
        sl__reply_json(r, 200, sl_tverify_status(t->verify));
    pthread_rwlock_unlock(&a->lock);
}
