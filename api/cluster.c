/*
 * cluster.c - /api/v1/cluster: a sluice-server is one DM-master (the leader) and one DM-worker in
 * the same process, so the lists have one member each and the members cannot be taken offline
 * while the process serves (409 saying why).
 */
#include "internal.h"

#include <string.h>

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
