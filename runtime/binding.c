/*
 * binding.c - the leader's source scheduler (binding.h): each enabled source bound to one live
 * worker, a binding moved when its worker's lease is gone, and the bindings read back for the
 * member lists.
 */
#include "binding.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/log.h"

/* The worker a binding value names (in kv's value), or NULL. Caller decrefs *doc. */
static const char *bound_worker(const sl_etcd_kv *kv, json_t **doc)
{
    *doc = json_loadb(kv->value, kv->value_len, 0, NULL);
    return json_string_value(json_object_get(*doc, "worker"));
}

static const sl_etcd_kv *find(const sl_etcd_kv *kvs, size_t n, size_t skip, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(kvs[i].key + skip, name))
            return &kvs[i];
    return NULL;
}

/* Is the source enabled? A definition that does not say is (DM's default). */
static int enabled(const sl_etcd_kv *src)
{
    json_t *d = json_loadb(src->value, src->value_len, 0, NULL);
    json_t *en = json_object_get(d, "enable");
    int on = !en || json_is_true(en);
    json_decref(d);
    return on;
}

/* Write (value non-NULL) or delete the binding at k, only while the leader key is ours and the
 * binding is still at rev (0: absent). */
static int write_binding(sl_etcd *e, const char *root, long long leader_rev, const char *k,
                         int64_t rev, const char *value, int64_t *new_rev, sl_error *err)
{
    char kl[512];
    snprintf(kl, sizeof kl, "%s/leader", root);
    sl_etcd_cmp cmps[2] = {
        { .kind = SL_ETCD_CREATED_AT, .key = kl, .rev = leader_rev },
        { .kind = rev ? SL_ETCD_MOD_IS : SL_ETCD_ABSENT, .key = k, .rev = rev },
    };
    sl_etcd_op op = { .kind = value ? SL_ETCD_PUT : SL_ETCD_DELETE, .key = k, .value = value,
                      .len = value ? strlen(value) : 0 };
    return sl_etcd_txn(e, cmps, 2, &op, 1, new_rev, err);
}

int sl_binding_schedule(sl_etcd *e, const char *root, long long leader_rev, sl_error *err)
{
    char ps[512], pb[512], pw[512];
    snprintf(ps, sizeof ps, "%s/meta/source/", root);
    snprintf(pb, sizeof pb, "%s/bound/", root);
    snprintf(pw, sizeof pw, "%s/alive/worker/", root);
    sl_etcd_kv *src = NULL, *bound = NULL, *alive = NULL;
    size_t ns = 0, nb = 0, nw = 0;
    sl_error tmp = { 0 };
    int rc = sl_etcd_get_prefix(e, ps, 0, &src, &ns, &tmp);
    if (rc == 0)
        rc = sl_etcd_get_prefix(e, pb, 0, &bound, &nb, &tmp);
    if (rc == 0)
        rc = sl_etcd_get_prefix(e, pw, 0, &alive, &nw, &tmp);
    if (rc != 0) {
        rc = sl_error_set(err, rc, "reading sources, bindings and workers from etcd: %s", tmp.msg);
        goto out;
    }
    /* busy[i]: live worker i holds a source whose binding stays (one source per worker, as
     * DM binds them) */
    char *busy = calloc(nw ? nw : 1, 1);
    if (!busy) {
        rc = sl_error_set(err, SL_ENOMEM, "out of memory");
        goto out;
    }
    /* Drop the bindings of sources that are gone or disabled; mark the workers that keep one. */
    for (size_t i = 0; i < nb; i++) {
        const char *name = bound[i].key + strlen(pb);
        const sl_etcd_kv *s = find(src, ns, strlen(ps), name);
        if (!s || !enabled(s)) {
            if (write_binding(e, root, leader_rev, bound[i].key, bound[i].mod_revision, NULL,
                              NULL, &tmp) == 0)
                sl_log(SL_LOG_INFO, "cluster", "source %s unbound (%s)", name,
                       s ? "disabled" : "deleted");
            continue;
        }
        json_t *doc;
        const char *w = bound_worker(&bound[i], &doc);
        for (size_t j = 0; w && j < nw; j++)
            if (!strcmp(alive[j].key + strlen(pw), w))
                busy[j] = 1;
        json_decref(doc);
    }
    for (size_t i = 0; i < ns && rc == 0; i++) {
        const char *name = src[i].key + strlen(ps);
        if (!enabled(&src[i]))
            continue;
        char k[512];
        snprintf(k, sizeof k, "%s%s", pb, name);
        sl_etcd_kv *b = (sl_etcd_kv *)find(bound, nb, strlen(pb), name);
        const char *old = NULL;
        json_t *doc = NULL;
        if (b) {
            old = bound_worker(b, &doc);
            int up = 0;
            for (size_t j = 0; old && j < nw && !up; j++)
                up = !strcmp(alive[j].key + strlen(pw), old);
            if (up) {
                json_decref(doc);
                continue;
            }
        }
        size_t j = 0;
        while (j < nw && busy[j])
            j++;
        if (j == nw) {
            if (!b || !old)
                sl_log(SL_LOG_DEBUG, "cluster", "source %s waits for a free worker", name);
            json_decref(doc);
            continue;
        }
        const char *w = alive[j].key + strlen(pw);
        json_t *v = json_pack("{s:s}", "worker", w);
        char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;
        json_decref(v);
        int64_t epoch = 0;
        int wrc = text ? write_binding(e, root, leader_rev, k, b ? b->mod_revision : 0, text,
                                       &epoch, &tmp) : SL_ENOMEM;
        free(text);
        if (wrc == 0) {
            busy[j] = 1;
            sl_log(SL_LOG_INFO, "cluster", "source %s bound to worker %s (epoch %lld)%s%s", name,
                   w, (long long)epoch, old ? ", was " : "", old ? old : "");
        } else if (wrc != SL_ESTATE) {
            /* SL_ESTATE: another leader, or a binding written since the read: the next pass
             * reads again */
            rc = sl_error_set(err, wrc, "binding source %s: %s", name, tmp.msg);
        }
        json_decref(doc);
    }
    free(busy);
out:
    sl_etcd_kvs_free(src, ns);
    sl_etcd_kvs_free(bound, nb);
    sl_etcd_kvs_free(alive, nw);
    return rc;
}

/* Can source move to worker? 0: yes (*rev = the binding's revision, 0 when unbound; cur = the
 * worker it names, "" when none), 1: it is bound there already (*rev its epoch), or SL_ENOENT
 * (unknown worker), SL_ESTATE (offline), SL_EEXIST (busy), another etcd error. */
static int check_target(sl_etcd *e, const char *root, const char *source, const char *worker,
                        int64_t *rev, char *cur, size_t ncur, sl_error *err)
{
    char km[512], ka[512], pb[512];
    snprintf(km, sizeof km, "%s/member/worker/%s", root, worker);
    snprintf(ka, sizeof ka, "%s/alive/worker/%s", root, worker);
    snprintf(pb, sizeof pb, "%s/bound/", root);
    sl_etcd_kv kv = { 0 }, *bound = NULL;
    size_t nb = 0;
    sl_error tmp = { 0 };
    *rev = 0;
    cur[0] = 0;
    int rc = sl_etcd_get(e, km, &kv, &tmp);
    sl_etcd_kv_clear(&kv);
    if (rc == SL_ENOENT)
        return sl_error_set(err, SL_ENOENT, "dm-worker with name %s not exists", worker);
    if (rc == 0 && (rc = sl_etcd_get(e, ka, &kv, &tmp)) == SL_ENOENT)
        return sl_error_set(err, SL_ESTATE, "dm-worker with name %s not free: it is offline "
                            "(its lease expired)", worker);
    sl_etcd_kv_clear(&kv);
    if (rc == 0)
        rc = sl_etcd_get_prefix(e, pb, 0, &bound, &nb, &tmp);
    if (rc != 0)
        return sl_error_set(err, rc, "reading the cluster from etcd: %s", tmp.msg);
    for (size_t i = 0; i < nb && rc == 0; i++) {
        json_t *doc;
        const char *w = bound_worker(&bound[i], &doc);
        const char *s = bound[i].key + strlen(pb);
        if (!strcmp(s, source)) {
            *rev = bound[i].mod_revision;
            snprintf(cur, ncur, "%s", w ? w : "");
            if (w && !strcmp(w, worker))
                rc = 1;   /* bound there already */
        } else if (w && !strcmp(w, worker)) {
            rc = sl_error_set(err, SL_EEXIST, "dm-worker with name %s not free: it is bound to "
                              "source %s", worker, s);
        }
        json_decref(doc);
    }
    sl_etcd_kvs_free(bound, nb);
    return rc;
}

int sl_binding_transfer(sl_etcd *e, const char *root, long long leader_rev, const char *source,
                        const char *worker, int64_t from_rev, long long *epoch, sl_error *err)
{
    char k[512], cur[256];
    snprintf(k, sizeof k, "%s/bound/%s", root, source);
    int64_t rev = 0;
    int rc = check_target(e, root, source, worker, &rev, cur, sizeof cur, err);
    if (rc == 1 && epoch)
        *epoch = rev;
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    json_t *v = json_pack("{s:s}", "worker", worker);
    char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    if (!text)
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    int64_t nrev = 0;
    sl_error tmp = { 0 };
    /* from_rev, not the revision read just now: the release was asked of the worker that held
     * the binding at from_rev. A binding written since (the scheduler moved the source off a
     * dead worker, another transfer) names a worker nobody asked to stop; binding over it would
     * leave that worker running the source until the fence stops it mid-transaction. */
    rc = write_binding(e, root, leader_rev, k, from_rev, text, &nrev, &tmp);
    free(text);
    if (rc == SL_ESTATE) {
        sl_error_set(err, SL_AGAIN, "the binding of source %s changed meanwhile, or this master "
                     "no longer leads: try again", source);
        return SL_AGAIN;
    }
    if (rc != 0)
        return sl_error_set(err, rc, "binding source %s: %s", source, tmp.msg);
    sl_log(SL_LOG_INFO, "cluster", "source %s transferred to worker %s (epoch %lld)", source,
           worker, (long long)nrev);
    if (epoch)
        *epoch = nrev;
    return 0;
}

int sl_binding_release_ask(sl_etcd *e, const char *root, long long leader_rev, const char *source,
                           const char *worker, int64_t *from_rev, int64_t *asked, sl_error *err)
{
    char cur[256], ka[512], kl[512], kr[512];
    int64_t rev = 0;
    *asked = 0;
    int rc = check_target(e, root, source, worker, &rev, cur, sizeof cur, err);
    *from_rev = rev;
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    if (!cur[0])
        return 0;   /* unbound: nothing runs it */
    snprintf(ka, sizeof ka, "%s/alive/worker/%s", root, cur);
    snprintf(kl, sizeof kl, "%s/leader", root);
    snprintf(kr, sizeof kr, "%s/release/%s", root, source);
    /* "leader": the incarnation that asks, so that a later leader knows the request is not one
     * of its own transfers (sl_binding_release_sweep) */
    json_t *v = json_pack("{s:s,s:I,s:b,s:I}", "worker", cur, "epoch", (json_int_t)rev, "acked", 0,
                          "leader", (json_int_t)leader_rev);
    char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    if (!text)
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    /* only while we lead, the binding is the one read and its worker is alive (a dead one
     * stops nothing: its lease took its subtasks, and the fence the rest) */
    char kb[512];
    snprintf(kb, sizeof kb, "%s/bound/%s", root, source);
    sl_etcd_cmp cmps[] = {
        { .kind = SL_ETCD_CREATED_AT, .key = kl, .rev = leader_rev },
        { .kind = SL_ETCD_MOD_IS, .key = kb, .rev = rev },
        { .kind = SL_ETCD_PRESENT, .key = ka },
    };
    sl_etcd_op op = { .kind = SL_ETCD_PUT, .key = kr, .value = text, .len = strlen(text) };
    sl_error tmp = { 0 };
    int64_t req_rev = 0;
    rc = sl_etcd_txn(e, cmps, 3, &op, 1, &req_rev, &tmp);
    free(text);
    if (rc == SL_ESTATE)
        return 0;   /* its worker died meanwhile (or the binding moved: the transfer says so) */
    if (rc != 0)
        return sl_error_set(err, rc, "asking worker %s to release source %s: %s", cur, source,
                            tmp.msg);
    sl_log(SL_LOG_INFO, "cluster", "source %s: asked worker %s to stop it before the transfer to "
           "%s", source, cur, worker);
    *asked = req_rev;
    return 0;
}

int sl_binding_release_acked(sl_etcd *e, const char *root, const char *source, sl_error *err)
{
    char kr[512];
    snprintf(kr, sizeof kr, "%s/release/%s", root, source);
    sl_etcd_kv kv;
    sl_error tmp = { 0 };
    int rc = sl_etcd_get(e, kr, &kv, &tmp);
    if (rc == SL_ENOENT)
        return 1;
    if (rc != 0)
        return sl_error_set(err, rc, "reading %s: %s", kr, tmp.msg);
    json_t *v = json_loadb(kv.value, kv.value_len, 0, NULL);
    int acked = json_is_true(json_object_get(v, "acked"));
    json_decref(v);
    sl_etcd_kv_clear(&kv);
    return acked;
}

void sl_binding_release_forget(sl_etcd *e, const char *root, long long leader_rev,
                               const char *source, int64_t req_rev)
{
    char kr[512], kl[512];
    snprintf(kr, sizeof kr, "%s/release/%s", root, source);
    snprintf(kl, sizeof kl, "%s/leader", root);
    /* only while we lead: a deposed leader that wakes up must not remove the request of a
     * transfer its successor has under way; and only the request it created (req_rev; the
     * worker's ack rewrites it, so its mod revision moves but its create revision does not):
     * a request made since belongs to another transfer, and removing it would let that
     * transfer's old worker run the source again while the transfer waits for it to stop */
    sl_etcd_cmp cmps[2] = {
        { .kind = SL_ETCD_CREATED_AT, .key = kl, .rev = leader_rev },
        { .kind = SL_ETCD_CREATED_AT, .key = kr, .rev = req_rev },
    };
    sl_etcd_op op = { .kind = SL_ETCD_DELETE, .key = kr };
    sl_etcd_txn(e, cmps, 2, &op, 1, NULL, NULL);
}

int sl_binding_release_sweep(sl_etcd *e, const char *root, long long leader_rev, int keep_own,
                             sl_error *err)
{
    char pr[512], kl[512];
    snprintf(pr, sizeof pr, "%s/release/", root);
    snprintf(kl, sizeof kl, "%s/leader", root);
    sl_etcd_kv *kvs = NULL;
    size_t n = 0;
    sl_error tmp = { 0 };
    int rc = sl_etcd_get_prefix(e, pr, 0, &kvs, &n, &tmp);
    if (rc != 0)
        return sl_error_set(err, rc, "reading the release requests from etcd: %s", tmp.msg);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_loadb(kvs[i].value, kvs[i].value_len, 0, NULL);
        long long by = json_integer_value(json_object_get(v, "leader"));
        if (!keep_own || by != leader_rev) {
            /* nobody waits for it: its leader died (or lost the lead) between the request and
             * the rebind, or failed to remove it. Left alone, it keeps the old worker from
             * running the source forever while the task says Running. Removing it undoes the
             * transfer (the binding, and so the fence, never moved): the old worker runs the
             * source again from its checkpoints, at the same epoch. Only while we lead and the
             * request is the one read: a transfer asked meanwhile keeps its own. */
            sl_etcd_cmp cmps[2] = {
                { .kind = SL_ETCD_CREATED_AT, .key = kl, .rev = leader_rev },
                { .kind = SL_ETCD_MOD_IS, .key = kvs[i].key, .rev = kvs[i].mod_revision },
            };
            sl_etcd_op op = { .kind = SL_ETCD_DELETE, .key = kvs[i].key };
            if (sl_etcd_txn(e, cmps, 2, &op, 1, NULL, &tmp) == 0) {
                const char *w = json_string_value(json_object_get(v, "worker"));
                sl_log(SL_LOG_INFO, "cluster", "source %s: removed a transfer's request to worker "
                       "%s to stop it, which no transfer waits for any more (%s); the worker "
                       "runs the source again", kvs[i].key + strlen(pr), w ? w : "?",
                       by == leader_rev ? "left by this leader" : "its leader is gone");
            }
        }
        json_decref(v);
    }
    sl_etcd_kvs_free(kvs, n);
    return 0;
}

int sl_binding_read(sl_etcd *e, const char *root, json_t **out, sl_error *err)
{
    char pb[512];
    snprintf(pb, sizeof pb, "%s/bound/", root);
    sl_etcd_kv *bound = NULL;
    size_t nb = 0;
    sl_error tmp = { 0 };
    int rc = sl_etcd_get_prefix(e, pb, 0, &bound, &nb, &tmp);
    if (rc != 0)
        return sl_error_set(err, rc, "reading the source bindings from etcd: %s", tmp.msg);
    json_t *o = json_object();
    for (size_t i = 0; o && i < nb; i++) {
        json_t *doc;
        const char *w = bound_worker(&bound[i], &doc);
        if (w)
            json_object_set_new(o, bound[i].key + strlen(pb),
                                json_pack("{s:s,s:I}", "worker", w, "epoch",
                                          (json_int_t)bound[i].mod_revision));
        json_decref(doc);
    }
    sl_etcd_kvs_free(bound, nb);
    if (!o)
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    *out = o;
    return 0;
}
