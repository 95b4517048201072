/*
 * member.c - this process's membership of the cluster (member.h): a lease, the keys it guards,
 * one thread that renews it every third of its TTL and, on a master, campaigns for the leader
 * key whenever nobody holds it.
 */
#include "member.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "binding.h"
#include "etcd.h"
#include "sluice/clock.h"
#include "sluice/log.h"

#define TIMEOUT_MS 3000

struct sl_member {
    sl_etcd *e;                 /* used by the keepalive thread and, under mu, by callers */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    sl_thread *thr;
    char *root, *role, *name, *addr;
    int is_master, is_worker;
    long ttl_s;
    int64_t lease;
    void (*on_change)(void *ud);
    void *ud;
    int told;                   /* the leadership the owner knows of (keepalive thread only) */
    int transfers;              /* sl_member_transfer calls under way (under mu): while none
                                   is, every release request in etcd is an orphan */
    json_t *moving;             /* {source: worker} of those transfers (under mu): one at a
                                   time per source */
    atomic_int alive, leader;
    atomic_int retired;         /* its master record was removed (DELETE /cluster/masters): it
                                   leads no more and never campaigns again in this process */
    _Atomic long long epoch;    /* the etcd revision that made this member leader */
    _Atomic long long lease_now;/* lease, for readers without mu */
    _Atomic long long renewed_ms;/* CLOCK_MONOTONIC of the last grant or renewal that etcd
                                   answered: the lease holds at least TTL after it */
};

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int sl_member_role_ok(const char *role)
{
    return role && (!strcmp(role, "master") || !strcmp(role, "worker") || !strcmp(role, "all"));
}

const char *sl_member_name(const sl_member *m)
{
    return m->name;
}

static void key(char *out, size_t n, const sl_member *m, const char *what, const char *role,
                const char *name)
{
    if (name)
        snprintf(out, n, "%s/%s/%s/%s", m->root, what, role, name);
    else
        snprintf(out, n, "%s/%s/%s/", m->root, what, role);
}

/* Try once to become the leader: create ROOT/leader under our lease if nobody holds it, in the
 * same transaction as a check that our master record still exists, so a master removed from the
 * cluster (sl_member_retire_master) cannot win an election before it learns that it was. Call
 * with mu held. */
static void campaign(sl_member *m)
{
    if (atomic_load(&m->retired))
        return;
    char k[512], km[512];
    sl_error err = { 0 };
    snprintf(k, sizeof k, "%s/leader", m->root);
    key(km, sizeof km, m, "member", "master", m->name);
    json_t *v = json_pack("{s:s,s:s}", "name", m->name, "addr", m->addr);
    char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    if (!text)
        return;
    int64_t rev = 0;
    sl_etcd_cmp cmps[] = { { .kind = SL_ETCD_ABSENT, .key = k }, { .kind = SL_ETCD_PRESENT, .key = km } };
    sl_etcd_op op = { .kind = SL_ETCD_PUT, .key = k, .value = text, .len = strlen(text),
                      .lease = m->lease };
    int rc = sl_etcd_txn(m->e, cmps, 2, &op, 1, &rev, &err);
    free(text);
    if (rc == 0) {
        /* etcd revisions only grow: each new leader's epoch is larger than every earlier one's */
        atomic_store(&m->epoch, (long long)rev);
        atomic_store(&m->leader, 1);
        sl_log(SL_LOG_INFO, "cluster", "master %s is the leader", m->name);
        return;
    }
    if (rc != SL_ESTATE)
        sl_log(SL_LOG_WARN, "cluster", "campaign for leader: %s", err.msg);
    /* someone holds it: is it us (a leadership kept across a campaign that raced)? */
    sl_etcd_kv kv;
    if (sl_etcd_get(m->e, k, &kv, &err) == 0) {
        atomic_store(&m->leader, kv.lease == m->lease);
        sl_etcd_kv_clear(&kv);
    }
}

/* Has this master's record been removed (DELETE /cluster/masters/{name})? Then it steps down
 * (deletes the leader key only while it is still its own incarnation) and campaigns no more; an
 * etcd error counts as "not removed" (the next renewal asks again). Call with mu held. */
static void check_retired(sl_member *m)
{
    if (!m->is_master || atomic_load(&m->retired))
        return;
    char km[512];
    sl_etcd_kv kv;
    key(km, sizeof km, m, "member", "master", m->name);
    int rc = sl_etcd_get(m->e, km, &kv, NULL);
    if (rc == 0)
        sl_etcd_kv_clear(&kv);
    if (rc != SL_ENOENT)
        return;
    atomic_store(&m->retired, 1);
    if (atomic_load(&m->leader)) {
        char k[512];
        snprintf(k, sizeof k, "%s/leader", m->root);
        sl_etcd_cmp cmp = { .kind = SL_ETCD_CREATED_AT, .key = k, .rev = atomic_load(&m->epoch) };
        sl_etcd_op op = { .kind = SL_ETCD_DELETE, .key = k };
        sl_etcd_txn(m->e, &cmp, 1, &op, 1, NULL, NULL);
        atomic_store(&m->leader, 0);
    }
    sl_log(SL_LOG_WARN, "cluster", "master %s was removed from the cluster: it leads nothing and "
           "takes no part in elections until it is restarted%s", m->name,
           m->is_worker ? " (it stays a worker)" : "");
}

/* Tell the owner when leadership changed since it was last told. Called on the keepalive thread
 * with mu held, released around the callback so it may call this member (and readers of the
 * member list are not held up by a long restore). */
static void notify(sl_member *m)
{
    int now = atomic_load(&m->leader);
    if (m->on_change && now != m->told) {
        m->told = now;
        pthread_mutex_unlock(&m->mu);
        m->on_change(m->ud);
        pthread_mutex_lock(&m->mu);
    }
}

static int register_as(sl_member *m, int master, int worker, sl_error *err);

/* After the lease expired: a new lease and the member's keys again. 0, or -1 (logged; the next
 * renewal tries again): etcd still unreachable, or a process of the same name took the name
 * meanwhile. Call with mu held. */
static int rejoin(sl_member *m)
{
    sl_error err = { 0 };
    int64_t lease = 0, old = m->lease;
    if (sl_etcd_lease_grant(m->e, m->ttl_s, &lease, &err) != 0) {
        sl_log(SL_LOG_WARN, "cluster", "%s %s joining again: %s", m->role, m->name, err.msg);
        return -1;
    }
    m->lease = lease;
    atomic_store(&m->lease_now, lease);
    if (register_as(m, m->is_master && !atomic_load(&m->retired), m->is_worker, &err) != 0) {
        sl_etcd_lease_revoke(m->e, lease, NULL);
        m->lease = old;
        atomic_store(&m->lease_now, old);
        sl_log(SL_LOG_WARN, "cluster", "%s %s joining again: %s", m->role, m->name, err.msg);
        return -1;
    }
    atomic_store(&m->renewed_ms, mono_ms());
    atomic_store(&m->alive, 1);
    sl_log(SL_LOG_INFO, "cluster", "%s %s joined again under a new lease", m->role, m->name);
    return 0;
}

static void keepalive_main(void *arg)
{
    sl_member *m = arg;
    pthread_mutex_lock(&m->mu);
    while (!m->stop) {
        /* a third of the TTL: two renewals may fail (a member down, a slow disk) before the
         * lease runs out */
        struct timespec until = sl_timespec_in(CLOCK_REALTIME, (long)m->ttl_s * 1000 / 3);
        pthread_cond_timedwait(&m->cv, &m->mu, &until);
        if (m->stop)
            break;
        sl_error err = { 0 };
        long long asked = mono_ms();   /* the lease runs for TTL from before the request */
        int rc = sl_etcd_lease_keepalive(m->e, m->lease, NULL, &err);
        if (rc == 0)
            atomic_store(&m->renewed_ms, asked);
        if (rc == SL_ENOENT) {
            /* Expired (this process was paused, or cut off longer than the TTL, or etcd lost its
             * quorum for that long): everything the lease guarded is gone and another master
             * may lead. Step down first (the owner stops what it ran), then join again under a
             * new lease, as a follower unless nobody leads. */
            if (atomic_exchange(&m->alive, 0))
                sl_log(SL_LOG_ERROR, "cluster", "%s %s lost its lease: it leads nothing and "
                       "joins again under a new one", m->role, m->name);
            atomic_store(&m->leader, 0);
            notify(m);
            check_retired(m);       /* removed while it was away: it does not register again */
            if (!m->stop && rejoin(m) == 0 && m->is_master)
                campaign(m);
            notify(m);
            continue;
        }
        if (rc != 0) {
            sl_log(SL_LOG_WARN, "cluster", "renewing the lease of %s: %s", m->name, err.msg);
            continue;
        }
        check_retired(m);
        if (m->is_master && atomic_load(&m->alive) && !atomic_load(&m->leader))
            campaign(m);
        /* The leader binds sources at each renewal: a worker whose lease expired loses its
         * source within a third of the TTL after etcd deleted its alive key. */
        if (atomic_load(&m->leader) &&
            sl_binding_schedule(m->e, m->root, atomic_load(&m->epoch), &err) != 0)
            sl_log(SL_LOG_WARN, "cluster", "source bindings: %s", err.msg);
        /* A transfer whose leader died before it rebound the source left its release request,
         * which keeps the old worker from running the source: remove what no transfer of ours
         * waits for. The first pass after a takeover does it at once. */
        if (atomic_load(&m->leader) &&
            sl_binding_release_sweep(m->e, m->root, atomic_load(&m->epoch), m->transfers > 0,
                                     &err) != 0)
            sl_log(SL_LOG_WARN, "cluster", "transfer requests: %s", err.msg);
        notify(m);
    }
    pthread_mutex_unlock(&m->mu);
}

static void member_free(sl_member *m)
{
    sl_etcd_free(m->e);
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->cv);
    json_decref(m->moving);
    free(m->root);
    free(m->role);
    free(m->name);
    free(m->addr);
    free(m);
}

/* Register under the member's roles: master when master is set, worker when worker is. One
 * transaction for both, so that a name refused for one role (a live holder) writes nothing for
 * the other either: a member of role all refused as a worker leaves no master record behind
 * (nor an alive key, a leader candidate, for the few seconds until its lease is revoked). */
static int register_as(sl_member *m, int master, int worker, sl_error *err)
{
    const char *roles[2];
    size_t nr = 0;
    if (master)
        roles[nr++] = "master";
    if (worker)
        roles[nr++] = "worker";
    char ka[2][512], km[2][512];
    char *text[2] = { NULL, NULL };
    sl_etcd_cmp cmps[2];
    sl_etcd_op ops[4];
    sl_error tmp = { 0 };
    int rc = 0;
    for (size_t i = 0; i < nr; i++) {
        key(ka[i], sizeof ka[i], m, "alive", roles[i], m->name);
        key(km[i], sizeof km[i], m, "member", roles[i], m->name);
        json_t *v = json_pack("{s:s,s:s,s:s}", "name", m->name, "addr", m->addr, "role", roles[i]);
        text[i] = v ? json_dumps(v, JSON_COMPACT) : NULL;
        json_decref(v);
        if (!text[i]) {
            rc = sl_error_set(err, SL_ENOMEM, "out of memory");
            goto out;
        }
        /* The alive key is created only if absent: a live holder of the name keeps it. Its
         * lease is the old process's, so the refusal lasts exactly as long as that process
         * lives. */
        cmps[i] = (sl_etcd_cmp){ .kind = SL_ETCD_ABSENT, .key = ka[i] };
        ops[2 * i] = (sl_etcd_op){ .kind = SL_ETCD_PUT, .key = ka[i], .value = text[i],
                                   .len = strlen(text[i]), .lease = m->lease };
        ops[2 * i + 1] = (sl_etcd_op){ .kind = SL_ETCD_PUT, .key = km[i], .value = text[i],
                                       .len = strlen(text[i]) };
    }
    if (nr == 0)
        goto out;
    rc = sl_etcd_txn(m->e, cmps, nr, ops, 2 * nr, NULL, &tmp);
    if (rc == SL_ESTATE) {
        /* name the role (and the address) of the live holder that refused it */
        for (size_t i = 0; i < nr; i++) {
            sl_etcd_kv kv;
            if (sl_etcd_get(m->e, ka[i], &kv, &tmp) != 0)
                continue;
            char holder[300] = "?";
            json_t *h = json_loadb(kv.value, kv.value_len, 0, NULL);
            const char *a = json_string_value(json_object_get(h, "addr"));
            snprintf(holder, sizeof holder, "%s", a ? a : "?");
            json_decref(h);
            sl_etcd_kv_clear(&kv);
            rc = sl_error_set(err, SL_EEXIST, "a %s named %s is alive already (at %s): choose "
                              "another --name, or stop that one first", roles[i], m->name, holder);
            goto out;
        }
        /* the holder left between the transaction and the read */
        rc = sl_error_set(err, SL_EEXIST, "a member named %s was alive a moment ago: try again",
                          m->name);
    } else if (rc != 0) {
        rc = sl_error_set(err, rc, "registering %s %s in etcd: %s", m->role, m->name, tmp.msg);
    }
out:
    free(text[0]);
    free(text[1]);
    return rc;
}

int sl_member_join(const sl_member_opts *o, sl_member **out, sl_error *err)
{
    if (!sl_member_role_ok(o->role))
        return sl_error_set(err, SL_EINVAL, "unknown role '%s' (master, worker or all)",
                            o->role ? o->role : "");
    if (!o->name || !*o->name || strchr(o->name, '/') || strlen(o->name) > 128)
        return sl_error_set(err, SL_EINVAL, "a member needs a name of 1 to 128 characters "
                            "without '/' (--name)");
    if (!o->addr || !*o->addr)
        return sl_error_set(err, SL_EINVAL, "a member needs an address (--advertise-addr)");
    sl_member *m = calloc(1, sizeof *m);
    if (!m)
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->cv, NULL);
    m->moving = json_object();
    m->root = strdup(o->root ? o->root : "/sluice");
    m->role = strdup(o->role);
    m->name = strdup(o->name);
    m->addr = strdup(o->addr);
    m->ttl_s = o->ttl_s > 0 ? o->ttl_s : 10;
    m->is_master = strcmp(o->role, "worker") != 0;
    m->on_change = o->on_leader_change;
    m->ud = o->ud;
    m->is_worker = strcmp(o->role, "master") != 0;
    int rc;
    sl_error tmp = { 0 };
    if (!m->root || !m->role || !m->name || !m->addr) {
        member_free(m);
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    }
    if ((rc = sl_etcd_new(o->endpoints, TIMEOUT_MS, &m->e, &tmp)) != 0 ||
        (rc = sl_etcd_ping(m->e, &tmp)) != 0 ||
        (rc = sl_etcd_lease_grant(m->e, m->ttl_s, &m->lease, &tmp)) != 0) {
        member_free(m);
        return sl_error_set(err, rc, "cannot join the cluster at %s: %s", o->endpoints, tmp.msg);
    }
    if ((rc = register_as(m, m->is_master, m->is_worker, err)) != 0)
        goto fail;
    atomic_store(&m->lease_now, m->lease);
    atomic_store(&m->renewed_ms, mono_ms());
    atomic_store(&m->alive, 1);
    if (m->is_master)
        campaign(m);
    m->told = atomic_load(&m->leader);   /* the owner reads it once joined */
    if ((rc = sl_thread_spawn(o->sched, "member", keepalive_main, m, &m->thr)) != 0) {
        sl_error_set(err, rc, "cannot start the cluster keepalive thread");
        goto fail;
    }
    sl_log(SL_LOG_INFO, "cluster", "joined as %s %s (%s), lease TTL %ld s%s", m->role, m->name,
           m->addr, m->ttl_s, atomic_load(&m->leader) ? ", leader" : "");
    *out = m;
    return 0;
fail:
    /* the lease takes the alive keys (and a leadership) with it. A refused name wrote nothing
     * (register_as); the member keys of a member that registered and then failed to start its
     * thread stay, as offline, which is what it is */
    sl_etcd_lease_revoke(m->e, m->lease, NULL);
    member_free(m);
    return rc;
}

void sl_member_stop_thread(sl_member *m)
{
    pthread_mutex_lock(&m->mu);
    m->stop = 1;
    pthread_cond_signal(&m->cv);
    pthread_mutex_unlock(&m->mu);
    if (m->thr)
        sl_thread_join(m->thr);
    m->thr = NULL;
}

void sl_member_leave(sl_member *m)
{
    if (!m)
        return;
    sl_member_stop_thread(m);
    sl_error err = { 0 };
    if (sl_etcd_lease_revoke(m->e, m->lease, &err) != 0)
        sl_log(SL_LOG_WARN, "cluster", "revoking the lease of %s: %s (it expires in %ld s)",
               m->name, err.msg, m->ttl_s);
    member_free(m);
}

int sl_member_is_leader(sl_member *m)
{
    return atomic_load(&m->leader);
}

long long sl_member_epoch(sl_member *m)
{
    return atomic_load(&m->epoch);
}

int sl_member_alive(sl_member *m)
{
    return atomic_load(&m->alive);
}

int sl_member_list(sl_member *m, const char *role, json_t **out, sl_error *err)
{
    char pm[512], pa[512], kl[512];
    sl_etcd_kv *mem = NULL, *alive = NULL, leader = { 0 };
    size_t nm = 0, na = 0;
    sl_error tmp = { 0 };
    int is_master = !strcmp(role, "master"), have_leader = 0;
    key(pm, sizeof pm, m, "member", role, NULL);
    key(pa, sizeof pa, m, "alive", role, NULL);
    snprintf(kl, sizeof kl, "%s/leader", m->root);
    pthread_mutex_lock(&m->mu);
    int rc = sl_etcd_get_prefix(m->e, pm, 0, &mem, &nm, &tmp);
    if (rc == 0)
        rc = sl_etcd_get_prefix(m->e, pa, 0, &alive, &na, &tmp);
    if (rc == 0 && is_master) {
        rc = sl_etcd_get(m->e, kl, &leader, &tmp);
        have_leader = rc == 0;
        if (rc == SL_ENOENT)
            rc = 0;
    }
    json_t *bindings = NULL;
    if (rc == 0 && !is_master)
        rc = sl_binding_read(m->e, m->root, &bindings, &tmp);
    pthread_mutex_unlock(&m->mu);
    if (rc != 0) {
        sl_etcd_kvs_free(mem, nm);
        sl_etcd_kvs_free(alive, na);
        return sl_error_set(err, rc, "reading the cluster's members from etcd: %s", tmp.msg);
    }
    json_t *lj = have_leader ? json_loads(leader.value, 0, NULL) : NULL;
    const char *lname = json_string_value(json_object_get(lj, "name"));
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < nm; i++) {
        const char *name = mem[i].key + strlen(pm);
        int up = 0;
        for (size_t j = 0; j < na && !up; j++)
            up = !strcmp(alive[j].key + strlen(pa), name);
        json_t *v = json_loads(mem[i].value, 0, NULL);
        const char *addr = json_string_value(json_object_get(v, "addr"));
        json_t *row = json_pack("{s:s,s:s,s:b}", "name", name, "addr", addr ? addr : "", "alive", up);
        if (row && is_master)
            json_object_set_new(row, "leader", json_boolean(up && lname && !strcmp(lname, name)));
        const char *src;
        json_t *b;
        json_object_foreach(bindings, src, b) {
            if (row && !strcmp(json_string_value(json_object_get(b, "worker")), name)) {
                json_object_set_new(row, "source", json_string(src));
                json_object_set(row, "epoch", json_object_get(b, "epoch"));
                break;
            }
        }
        json_array_append_new(arr, row);
        json_decref(v);
    }
    json_decref(lj);
    json_decref(bindings);
    sl_etcd_kv_clear(&leader);
    sl_etcd_kvs_free(mem, nm);
    sl_etcd_kvs_free(alive, na);
    if (!arr)
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    *out = arr;
    return 0;
}

int sl_member_remove(sl_member *m, const char *role, const char *name, sl_error *err)
{
    char km[512], ka[512];
    key(km, sizeof km, m, "member", role, name);
    key(ka, sizeof ka, m, "alive", role, name);
    sl_etcd_kv kv;
    sl_error tmp = { 0 };
    pthread_mutex_lock(&m->mu);
    int rc = sl_etcd_get(m->e, km, &kv, &tmp);
    if (rc == 0) {
        sl_etcd_kv_clear(&kv);
        /* only while it is not alive: one transaction, so a member that comes back at this
         * instant is not removed under it */
        sl_etcd_cmp cmp = { .kind = SL_ETCD_ABSENT, .key = ka };
        sl_etcd_op op = { .kind = SL_ETCD_DELETE, .key = km };
        rc = sl_etcd_txn(m->e, &cmp, 1, &op, 1, NULL, &tmp);
    }
    pthread_mutex_unlock(&m->mu);
    if (rc == SL_ENOENT)
        return sl_error_set(err, SL_ENOENT, "no %s named %s", role, name);
    if (rc == SL_ESTATE)
        return sl_error_set(err, SL_ESTATE, "%s %s is alive: stop it first", role, name);
    if (rc != 0)
        return sl_error_set(err, rc, "removing %s %s: %s", role, name, tmp.msg);
    return 0;
}

int sl_member_leader_addr(sl_member *m, char *addr, size_t n, sl_error *err)
{
    char k[512];
    sl_etcd_kv kv;
    sl_error tmp = { 0 };
    snprintf(k, sizeof k, "%s/leader", m->root);
    pthread_mutex_lock(&m->mu);
    int rc = sl_etcd_get(m->e, k, &kv, &tmp);
    pthread_mutex_unlock(&m->mu);
    if (rc == SL_ENOENT)
        return sl_error_set(err, SL_ENOENT, "no master leads the cluster right now (an election "
                            "is under way): try again in a few seconds");
    if (rc != 0)
        return sl_error_set(err, rc, "reading the cluster's leader from etcd: %s", tmp.msg);
    json_t *v = json_loads(kv.value, 0, NULL);
    const char *a = json_string_value(json_object_get(v, "addr"));
    if (a)
        snprintf(addr, n, "%s", a);
    else
        rc = sl_error_set(err, SL_EPARSE, "the leader key in etcd has no address");
    json_decref(v);
    sl_etcd_kv_clear(&kv);
    return rc;
}

int sl_member_set_addr(sl_member *m, const char *addr, sl_error *err)
{
    char *copy = strdup(addr);
    if (!copy)
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    pthread_mutex_lock(&m->mu);
    free(m->addr);
    m->addr = copy;
    const char *roles[2] = { m->is_master ? "master" : NULL, m->is_worker ? "worker" : NULL };
    int rc = 0;
    sl_error tmp = { 0 };
    for (int i = 0; i < 2 && rc == 0; i++) {
        if (!roles[i])
            continue;
        char ka[512], km[512];
        key(ka, sizeof ka, m, "alive", roles[i], m->name);
        key(km, sizeof km, m, "member", roles[i], m->name);
        json_t *v = json_pack("{s:s,s:s,s:s}", "name", m->name, "addr", m->addr, "role", roles[i]);
        char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;
        json_decref(v);
        if (!text) {
            rc = sl_error_set(err, SL_ENOMEM, "out of memory");
            break;
        }
        /* the alive key only while it is still ours (our lease keeps it) */
        sl_etcd_cmp cmp = { .kind = SL_ETCD_PRESENT, .key = ka };
        sl_etcd_op ops[] = {
            { .kind = SL_ETCD_PUT, .key = ka, .value = text, .len = strlen(text), .lease = m->lease },
            { .kind = SL_ETCD_PUT, .key = km, .value = text, .len = strlen(text) },
        };
        rc = sl_etcd_txn(m->e, &cmp, 1, ops, 2, NULL, &tmp);
        free(text);
        if (rc != 0)
            rc = sl_error_set(err, rc, "advertising %s: %s", addr, tmp.msg);
    }
    if (rc == 0 && atomic_load(&m->leader)) {
        char k[512];
        sl_etcd_kv kv;
        snprintf(k, sizeof k, "%s/leader", m->root);
        if (sl_etcd_get(m->e, k, &kv, &tmp) == 0) {
            if (kv.lease == m->lease) {
                json_t *v = json_pack("{s:s,s:s}", "name", m->name, "addr", m->addr);
                char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;
                json_decref(v);
                if (text && sl_etcd_put_if(m->e, k, text, strlen(text), kv.mod_revision, m->lease,
                                           NULL, &tmp) != 0)
                    sl_log(SL_LOG_WARN, "cluster", "advertising the leader's address: %s", tmp.msg);
                free(text);
            }
            sl_etcd_kv_clear(&kv);
        }
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

/* One step of a transfer under mu, while this member leads: SL_AGAIN when it does not. */
static int leading_or_again(sl_member *m, sl_error *err)
{
    if (atomic_load(&m->leader))
        return 0;
    return sl_error_set(err, SL_AGAIN, "this master no longer leads the cluster: try again");
}

int sl_member_transfer(sl_member *m, const char *source, const char *worker, long long *epoch,
                       sl_error *err)
{
    int64_t asked = 0, from_rev = 0;
    pthread_mutex_lock(&m->mu);
    int rc = leading_or_again(m, err);
    /* One transfer of a source at a time. A second one, started while the first waits for the
     * old worker, would ask that same worker (the binding has not moved yet) and then bind
     * over the first's new binding: the first's worker, never asked to stop, would run the
     * source until the fence cut it off, and its caller would be told a worker that no longer
     * holds the source. */
    const char *other = rc == 0 ? json_string_value(json_object_get(m->moving, source)) : NULL;
    if (other)
        rc = sl_error_set(err, SL_ELIMIT, "a transfer of source %s (to dm-worker %s) is "
                          "in progress: try again once it is done", source, other);
    if (!m->moving)
        rc = sl_error_set(err, SL_ENOMEM, "out of memory");
    /* an orphaned request (its leader died mid-transfer) would otherwise outlive a transfer to
     * the worker that holds the source, which writes nothing */
    if (rc == 0)
        sl_binding_release_sweep(m->e, m->root, atomic_load(&m->epoch), m->transfers > 0, NULL);
    if (rc == 0)
        rc = sl_binding_release_ask(m->e, m->root, atomic_load(&m->epoch), source, worker,
                                    &from_rev, &asked, err);
    if (rc == 0 && json_object_set_new(m->moving, source, json_string(worker)) != 0)
        rc = sl_error_set(err, SL_ENOMEM, "out of memory");
    if (rc == 0)
        m->transfers++;
    else if (asked)
        sl_binding_release_forget(m->e, m->root, atomic_load(&m->epoch), source, asked);
    pthread_mutex_unlock(&m->mu);
    if (rc != 0)
        return rc;
    /* The old worker stops the source's subtasks (their sinks commit what they hold) at its
     * next poll; wait for it outside mu (the lease must be renewed meanwhile), at most two
     * TTLs: a worker that does not answer by then is dead or cut off, and the fence stops it. */
    for (long i = 0; asked && i < m->ttl_s * 20; i++) {
        pthread_mutex_lock(&m->mu);
        int done = sl_binding_release_acked(m->e, m->root, source, NULL);
        pthread_mutex_unlock(&m->mu);
        if (done != 0)
            break;
        struct timespec ts = { 0, 100 * 1000000L };
        nanosleep(&ts, NULL);
    }
    pthread_mutex_lock(&m->mu);
    rc = leading_or_again(m, err);
    if (rc == 0)
        rc = sl_binding_transfer(m->e, m->root, atomic_load(&m->epoch), source, worker, from_rev,
                                 epoch, err);
    if (asked)
        sl_binding_release_forget(m->e, m->root, atomic_load(&m->epoch), source, asked);
    json_object_del(m->moving, source);
    m->transfers--;
    pthread_mutex_unlock(&m->mu);
    return rc;
}

int sl_member_lease_holds(sl_member *m)
{
    return atomic_load(&m->alive) &&
           mono_ms() - atomic_load(&m->renewed_ms) < (long long)m->ttl_s * 1000;
}

long long sl_member_lease(sl_member *m)
{
    return atomic_load(&m->lease_now);
}

int sl_member_evict(sl_member *m, const char *role, const char *name, sl_error *err)
{
    char km[512], ka[512];
    key(km, sizeof km, m, "member", role, name);
    key(ka, sizeof ka, m, "alive", role, name);
    sl_error tmp = { 0 };
    sl_etcd_cmp cmp = { .kind = SL_ETCD_PRESENT, .key = km };
    sl_etcd_op ops[] = { { .kind = SL_ETCD_DELETE, .key = km }, { .kind = SL_ETCD_DELETE, .key = ka } };
    pthread_mutex_lock(&m->mu);
    int rc = sl_etcd_txn(m->e, &cmp, 1, ops, 2, NULL, &tmp);
    pthread_mutex_unlock(&m->mu);
    if (rc == SL_ESTATE)
        return sl_error_set(err, SL_ENOENT, "no %s named %s", role, name);
    if (rc != 0)
        return sl_error_set(err, rc, "removing %s %s: %s", role, name, tmp.msg);
    sl_log(SL_LOG_INFO, "cluster", "%s %s taken out of the cluster", role, name);
    return 0;
}

/* The JSON value of ROOT/<sub>: 0 and *out, SL_ENOENT, or an etcd error. */
static int get_json(sl_member *m, const char *sub, json_t **out)
{
    char k[2048];
    sl_etcd_kv kv;
    *out = NULL;
    if ((size_t)snprintf(k, sizeof k, "%s/%s", m->root, sub) >= sizeof k)
        return SL_ELIMIT;       /* never a truncated key: it would name another record */
    pthread_mutex_lock(&m->mu);
    int rc = sl_etcd_get(m->e, k, &kv, NULL);
    pthread_mutex_unlock(&m->mu);
    if (rc != 0)
        return rc;
    *out = json_loadb(kv.value, kv.value_len, 0, NULL);
    sl_etcd_kv_clear(&kv);
    return *out ? 0 : SL_EPARSE;
}

int sl_member_live_get(sl_member *m, const char *task, const char *source, json_t **out)
{
    char sub[1024];
    snprintf(sub, sizeof sub, "live/%s/%s", task, source);
    return get_json(m, sub, out);
}

int sl_member_relay_get(sl_member *m, const char *source, json_t **out)
{
    char sub[600];
    snprintf(sub, sizeof sub, "relay/%s", source);
    return get_json(m, sub, out);
}

int sl_member_source_worker(sl_member *m, const char *source, char *worker, size_t n)
{
    char sub[600];
    json_t *o = NULL;
    snprintf(sub, sizeof sub, "bound/%s", source);
    worker[0] = 0;
    int rc = get_json(m, sub, &o);
    const char *w = json_string_value(json_object_get(o, "worker"));
    if (rc == 0 && w)
        snprintf(worker, n, "%s", w);
    json_decref(o);
    return rc;
}

/* The name in ROOT/leader into out ("" when nobody leads). 0 or an etcd error. */
static int leader_name(sl_member *m, char *out, size_t n)
{
    json_t *v = NULL;
    int rc = get_json(m, "leader", &v);
    const char *s = json_string_value(json_object_get(v, "name"));
    snprintf(out, n, "%s", rc == 0 && s ? s : "");
    json_decref(v);
    return rc == SL_ENOENT || rc == SL_EPARSE ? 0 : rc;   /* nobody, or no name: not it */
}

int sl_member_retire_master(sl_member *m, const char *name, sl_error *err)
{
    json_t *list = NULL;
    int rc = sl_member_list(m, "master", &list, err);
    if (rc != 0)
        return rc;
    int found = 0, up = 0, others = 0;
    size_t i;
    json_t *row;
    json_array_foreach(list, i, row) {
        int alive = json_is_true(json_object_get(row, "alive"));
        if (!strcmp(json_string_value(json_object_get(row, "name")), name)) {
            found = 1;
            up = alive;
        } else {
            others += alive;
        }
    }
    json_decref(list);
    if (!found)
        return sl_error_set(err, SL_ENOENT, "no master named %s", name);
    if (!up)
        return sl_member_remove(m, "master", name, err);
    if (!others)
        return sl_error_set(err, SL_ESTATE, "dm-master with name %s is still online and the only "
                            "live master: removing it would leave the cluster without a leader, "
                            "Workaround: start another dm-master first.", name);
    if ((rc = sl_member_evict(m, "master", name, err)) != 0)
        return rc;
    if (!strcmp(name, m->name)) {
        /* this process: its keepalive thread renews and steps down now, not a third of a TTL on */
        pthread_mutex_lock(&m->mu);
        pthread_cond_signal(&m->cv);
        pthread_mutex_unlock(&m->mu);
    }
    /* A leader steps down at its next renewal (a third of its TTL, all members share one TTL by
     * configuration): wait until the leader key no longer names it, so the answer means it. */
    char who[256];
    long long until = mono_ms() + (2 * m->ttl_s + 1) * 1000;
    for (;;) {
        rc = leader_name(m, who, sizeof who);
        if (rc == 0 && strcmp(who, name) != 0)
            return 0;
        if (mono_ms() > until)
            return sl_error_set(err, SL_ETIMEOUT, "master %s was removed from the member list "
                                "but has not stepped down as the leader yet: it will at its next "
                                "renewal of its lease, or when the lease runs out", name);
        struct timespec ts = { 0, 100 * 1000000L };
        nanosleep(&ts, NULL);
    }
}
