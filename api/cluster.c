/*
 * cluster.c - /api/v1/cluster. Embedded (no --etcd): a sluice-server is one DM-master (the leader)
 * and one DM-worker in the same process, so the lists have one member each and the members
 * cannot be taken offline while the process serves (409 saying why). In a cluster the lists are
 * the members registered in etcd (member.h), alive while their lease is, and DELETE removes the
 * record of a member that is no longer alive.
 */
#include "internal.h"

#include <string.h>

#include "sluice/log.h"

static json_t *masters(sl_api *a)
{
    char addr[300];
    snprintf(addr, sizeof addr, "%s", a->opts.addr);
    return json_pack("{s:i,s:[{s:s,s:b,s:b,s:s}]}", "total", 1, "data", "name", SL_API_MASTER_NAME,
                     "alive", 1, "leader", 1, "addr", addr);
}

static json_t *workers(sl_api *a)
{
    pthread_rwlock_rdlock(&a->lock);
    const char *bound = a->nsources ? a->sources[0]->name : "";
    json_t *o = json_pack("{s:i,s:[{s:s,s:s,s:s,s:s}]}", "total", 1, "data", "name",
                          SL_API_WORKER_NAME, "addr", a->opts.addr, "bound_stage",
                          a->nsources ? "bound" : "free", "bound_source_name", bound);
    pthread_rwlock_unlock(&a->lock);
    return o;
}

/* The members of role from etcd, as DM lists them; NULL after replying with the error. */
static json_t *members(sl_req *r, const char *role)
{
    json_t *arr = NULL;
    sl_error err = { 0 };
    if (sl_member_list(r->api->member, role, &arr, &err) != 0) {
        sl__reply_error(r, 503, DM_ERR_ETCD, "%s", err.msg);
        return NULL;
    }
    if (!strcmp(role, "worker")) {
        /* DM's stages: a dead worker is offline even while a binding still names it (the
         * leader moves it at its next renewal, or keeps it until a worker is free). */
        size_t i;
        json_t *w;
        json_array_foreach(arr, i, w) {
            int up = json_is_true(json_object_get(w, "alive"));
            const char *src = json_string_value(json_object_get(w, "source"));
            json_object_set_new(w, "bound_stage",
                                json_string(!up ? "offline" : src ? "bound" : "free"));
            json_object_set_new(w, "bound_source_name", json_string(src ? src : ""));
            json_object_del(w, "alive");
            json_object_del(w, "source");
        }
    }
    return json_pack("{s:I,s:o}", "total", (json_int_t)json_array_size(arr), "data", arr);
}

/*
 * DELETE /cluster/workers/{name} of a worker that is alive (issue 13): its source moves first to
 * a free worker, as a transfer moves it (the worker stops it at a checkpoint, the new one
 * resumes from there), then the worker's records go (its alive key too: the leader binds
 * nothing more to it; the process itself runs on, bound to nothing, until it is stopped). No
 * free worker: 409 with DM's "not free", and nothing changes. The leader does it; another
 * member passes the request on.
 */
static void remove_live_worker(sl_req *r, const char *name)
{
    sl_api *a = r->api;
    if (!atomic_load(&a->leading)) {
        char url[512];
        snprintf(url, sizeof url, "/api/v1/cluster/workers/%s", name);
        sl__forward(r, url);
        return;
    }
    json_t *list = NULL;
    sl_error err = { 0 };
    if (sl_member_list(a->member, "worker", &list, &err) != 0) {
        sl__reply_error(r, 503, DM_ERR_ETCD, "%s", err.msg);
        return;
    }
    const char *source = NULL, *to = NULL;
    size_t i;
    json_t *w;
    json_array_foreach(list, i, w) {
        const char *wn = json_string_value(json_object_get(w, "name"));
        const char *src = json_string_value(json_object_get(w, "source"));
        if (!strcmp(wn, name))
            source = src;
        else if (!to && !src && json_is_true(json_object_get(w, "alive")))
            to = wn;
    }
    int rc = 0;
    if (source && !to) {
        sl__reply_error(r, 409, DM_ERR_WORKER_NOT_FREE, "dm-worker with name %s is bound to source "
                        "%s and no other dm-worker is free to take it, Workaround: start another "
                        "dm-worker, or stop this one first.", name, source);
        json_decref(list);
        return;
    }
    if (source) {
        sl_log(SL_LOG_INFO, "cluster", "taking worker %s out: source %s moves to worker %s first",
               name, source, to);
        rc = sl_member_transfer(a->member, source, to, NULL, &err);
    }
    if (rc == 0)
        rc = sl_member_evict(a->member, "worker", name, &err);
    json_decref(list);
    if (rc == 0)
        sl__reply_empty(r, 204);
    else if (rc == SL_ENOENT)
        sl__reply_error(r, 404, DM_ERR_WORKER_NOT_FOUND, "dm-worker with name %s not exists", name);
    else if (rc == SL_EEXIST || rc == SL_ESTATE)
        sl__reply_error(r, 409, DM_ERR_WORKER_NOT_FREE, "%s", err.msg);
    else if (rc == SL_ELIMIT)
        sl__reply_error(r, 409, DM_ERR_TRANSFER_RUNNING, "%s", err.msg);
    else
        sl__reply_error(r, 503, DM_ERR_ETCD, "%s", err.msg);
}

/*
 * DELETE /cluster/masters/{name} of a master that is alive (issue 13): it leaves the member list
 * and, when it leads, steps down first; the answer (204) comes once it leads no more. Refused
 * (409, DM's "still online") when it is the only live master: nobody would lead. Any member
 * answers it itself, through etcd (a follower does not need the leader for this).
 */
static void remove_live_master(sl_req *r, const char *name)
{
    sl_error err = { 0 };
    int rc = sl_member_retire_master(r->api->member, name, &err);
    if (rc == 0)
        sl__reply_empty(r, 204);
    else if (rc == SL_ENOENT)
        sl__reply_error(r, 404, DM_ERR_MASTER_NOT_FOUND, "dm-master with name %s not exists", name);
    else if (rc == SL_ESTATE)
        sl__reply_error(r, 409, DM_ERR_OPENAPI, "%s", err.msg);
    else
        sl__reply_error(r, 503, DM_ERR_ETCD, "%s", err.msg);
}

static void cluster_route(sl_req *r, int is_master, const char *name)
{
    const char *role = is_master ? "master" : "worker";
    if (!name) {
        if (strcmp(r->method, "GET")) {
            sl__reply_method(r, "GET");
            return;
        }
        json_t *o = members(r, role);
        if (o)
            sl__reply_json(r, 200, o);
        return;
    }
    if (strcmp(r->method, "DELETE")) {
        sl__reply_method(r, "DELETE");
        return;
    }
    sl_error err = { 0 };
    int rc = sl_member_remove(r->api->member, role, name, &err);
    if (rc == 0)
        sl__reply_empty(r, 204);
    else if (rc == SL_ENOENT)
        sl__reply_error(r, 404, is_master ? DM_ERR_MASTER_NOT_FOUND : DM_ERR_WORKER_NOT_FOUND,
                        "dm-%s with name %s not exists", role, name);
    else if (rc == SL_ESTATE && !is_master)
        remove_live_worker(r, name);
    else if (rc == SL_ESTATE)
        remove_live_master(r, name);
    else
        sl__reply_error(r, 503, DM_ERR_ETCD, "%s", err.msg);
}

void sl__cluster_route(sl_req *r)
{
    sl_api *a = r->api;
    int get = !strcmp(r->method, "GET"), del = !strcmp(r->method, "DELETE");
    if (r->nseg < 2 || r->nseg > 3)
        return;
    const char *what = r->segs[1];
    int is_master = !strcmp(what, "masters"), is_worker = !strcmp(what, "workers");
    if (!strcmp(what, "info") && r->nseg == 2) {
        if (get)
            sl__reply_json(r, 200, json_pack("{s:I}", "cluster_id", (json_int_t)1));
        else
            sl__reply_error(r, 501, DM_ERR_NOT_IMPLEMENTED, "PUT /api/v1/cluster/info (the "
                            "cluster topology) is not implemented in sluice yet");
        return;
    }
    if (!is_master && !is_worker)
        return;
    if (a->member) {
        cluster_route(r, is_master, r->nseg == 3 ? r->segs[2] : NULL);
        return;
    }
    if (r->nseg == 2) {
        if (get)
            sl__reply_json(r, 200, is_master ? masters(a) : workers(a));
        else
            sl__reply_method(r, "GET");
        return;
    }
    const char *name = r->segs[2];
    if (!del) {
        sl__reply_method(r, "DELETE");
        return;
    }
    if (is_master) {
        if (strcmp(name, SL_API_MASTER_NAME))
            sl__reply_error(r, 404, DM_ERR_MASTER_NOT_FOUND, "dm-master with name %s not exists", name);
        else
            sl__reply_error(r, 409, DM_ERR_OPENAPI, "dm-master %s is the only master and the leader "
                            "of this cluster: it cannot be taken offline while it serves (stop "
                            "sluice-server instead)", name);
        return;
    }
    if (strcmp(name, SL_API_WORKER_NAME)) {
        sl__reply_error(r, 404, DM_ERR_WORKER_NOT_FOUND, "dm-worker with name %s not exists", name);
        return;
    }
    pthread_rwlock_rdlock(&a->lock);
    size_t n = a->nsources;
    pthread_rwlock_unlock(&a->lock);
    if (n)
        sl__reply_error(r, 409, DM_ERR_WORKER_ONLINE, "dm-worker with name %s is still online and "
                        "bound to %zu source(s), Workaround: delete its sources first, or stop "
                        "sluice-server.", name, n);
    else
        sl__reply_error(r, 409, DM_ERR_WORKER_ONLINE, "dm-worker with name %s is still online "
                        "(it runs inside sluice-server), Workaround: Please shut it down first.", name);
}
