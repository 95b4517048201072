/*
 * member.h - this process as a member of a sluice cluster (issue 13): its registration in etcd
 * under a lease kept alive by one scheduler thread, and, for a master, the leader election.
 * Nothing here is consensus of our own: a key that exists only while its lease is renewed is
 * etcd's answer to "is it alive", and the one create-if-absent of the leader key that succeeds
 * is etcd's answer to "who leads".
 *
 * Keys, under ROOT (default /sluice):
 *   ROOT/member/<role>/<name>  {"name","addr","role"}  no lease: the member exists (listings
 *                                                      show it offline once it is dead)
 *   ROOT/alive/<role>/<name>   {"addr"}                under the member's lease: it is alive
 *   ROOT/leader                {"name","addr"}         under the leading master's lease
 *   ROOT/bound/<source>        {"worker"}              no lease: written by the leader at each
 *                                                      renewal (binding.h)
 *   ROOT/live/<task>/<source>  SubTaskStatus           under the running worker's lease
 *   ROOT/relay/<source>        relay status            under the bound worker's lease
 *   ROOT/release/<source>      {"worker","epoch"}      no lease: the leader asks the bound worker
 *                                                      to stop the source before a transfer
 */
#ifndef SLUICE_RUNTIME_MEMBER_H
#define SLUICE_RUNTIME_MEMBER_H

#include <jansson.h>

#include "sluice/err.h"
#include "sluice/runtime.h"

typedef struct sl_member sl_member;

typedef struct sl_member_opts {
    const char   *endpoints;   /* etcd, as sl_etcd_new */
    const char   *root;        /* key prefix; NULL = "/sluice" */
    const char   *role;        /* "master", "worker" or "all" (both) */
    const char   *name;        /* unique per role in the cluster */
    const char   *addr;        /* advertised HOST:PORT of this member's API */
    long          ttl_s;       /* lease TTL in seconds (0 = 10) */
    sl_scheduler *sched;       /* runs the keepalive thread */
    /* Called on the keepalive thread after this member became the leader or stopped being it
     * (read sl_member_is_leader); never while sl_member_join runs. NULL = not told. */
    void        (*on_leader_change)(void *ud);
    void         *ud;
} sl_member_opts;

/* Is role one of master, worker, all? */
int sl_member_role_ok(const char *role);

/* Join: grant a lease, refuse a name that a live member of the same role holds (SL_EEXIST, with
 * the holder's address in err: a second process must not take over a living one's identity),
 * write the member's keys, campaign once if it is a master, and start the keepalive thread.
 * On failure nothing of this member stays in etcd. Caller frees with sl_member_leave. */
int sl_member_join(const sl_member_opts *o, sl_member **out, sl_error *err);

/* Revoke the lease (the alive key and a held leadership go at once: another master takes over
 * without waiting for the TTL), stop the thread, free. The member key stays (offline). NULL ok. */
void sl_member_leave(sl_member *m);

/* Change the advertised address (the server learns its port after it joined, when it listens on
 * port 0 and no --advertise-addr was given): rewrites the member's keys, and the leader key if it
 * holds it. 0 or an etcd error. */
int sl_member_set_addr(sl_member *m, const char *addr, sl_error *err);

/* Stop the keepalive thread (no callback runs after this returns) and keep the lease until
 * sl_member_leave. Idempotent. */
void sl_member_stop_thread(sl_member *m);

/* Does this process hold the leadership right now (as far as its last renewal knows)? A member
 * whose lease expired (a paused process, etcd without quorum past the TTL) is told so at its next
 * renewal, leads no more (the owner is called), and joins again under a new lease. */
int sl_member_is_leader(sl_member *m);

/* The epoch of this member's leadership: the etcd revision at which it became leader, larger
 * than any earlier leader's (0 before it ever led). The fence of its subtasks' checkpoints. */
long long sl_member_epoch(sl_member *m);

/* Is this member's lease alive, as of its last renewal? */
int sl_member_alive(sl_member *m);

/* Does the lease surely still hold: alive, and renewed (or granted) less than a TTL ago by this
 * process's clock? Unlike sl_member_alive, it turns false while etcd does not answer (no
 * quorum, a partition) once the TTL has run out since the last renewal that etcd answered: a
 * worker then stops its subtasks, as etcd may have given its sources to others. Thread-safe. */
int sl_member_lease_holds(sl_member *m);

/* The members of role ("master" or "worker"; "all" members are listed under both) as a JSON array
 * of {"name","addr","alive","leader"} (leader only for masters; a worker bound to a source has
 * "source" and "epoch", binding.h), in name order. 0 and *out
 * (caller decrefs), or an etcd error (SL_ECONN when no quorum answers). Thread-safe. */
int sl_member_list(sl_member *m, const char *role, json_t **out, sl_error *err);

/* Remove the record of a member that is not alive: 0, SL_ENOENT (unknown), SL_ESTATE when it is
 * alive (stop it first; this process itself, while it serves, always is). Thread-safe. */
int sl_member_remove(sl_member *m, const char *role, const char *name, sl_error *err);

/* Remove the records of a member whether it is alive or not: its member key and its alive key
 * (the leader binds nothing more to it; a live process keeps its lease and runs on, bound to
 * nothing). 0, SL_ENOENT (unknown), or an etcd error. Thread-safe. */
int sl_member_evict(sl_member *m, const char *role, const char *name, sl_error *err);

/* DELETE /cluster/masters/{name}: a master that is not alive loses its record
 * (sl_member_remove); a live one is removed from the member list at once and, when it leads,
 * steps down: this returns once the leader key names it no more (another master takes over at
 * its next renewal). A removed master that still runs takes no part in elections until it is
 * restarted (a master of role all stays a worker). 0, SL_ENOENT (unknown), SL_ESTATE (it is the
 * only live master: the cluster would have no leader), SL_ETIMEOUT (removed, not yet stepped
 * down after two TTLs: it will when it reaches etcd), or an etcd error. Thread-safe. */
int sl_member_retire_master(sl_member *m, const char *name, sl_error *err);

/* On the leader: move source to worker. The worker it is bound to stops its subtasks first
 * (sl_binding_release_ask; waited for up to two TTLs), then the source is bound to worker
 * (sl_binding_transfer: SL_ENOENT unknown worker, SL_ESTATE offline, SL_EEXIST busy, SL_AGAIN
 * try again; *epoch may be NULL), whose runner resumes it from the checkpoints. SL_AGAIN too
 * when this member does not lead. One transfer of a source at a time: SL_ELIMIT while another
 * transfer of it is under way (err names its worker). Blocks (seconds); thread-safe. */
int sl_member_transfer(sl_member *m, const char *source, const char *worker, long long *epoch,
                       sl_error *err);

const char *sl_member_name(const sl_member *m);

/* The member's current lease (it changes when the member joins again after losing one): what a
 * worker publishes under, so its keys go when it dies. Thread-safe. */
long long sl_member_lease(sl_member *m);

/* The live status of a subtask, published by the worker that runs it under its lease:
 *   ROOT/live/<task>/<source>   DM's SubTaskStatus JSON
 * 0 and *out (caller decrefs), SL_ENOENT when no live worker publishes it, or an etcd error.
 * Thread-safe. */
int sl_member_live_get(sl_member *m, const char *task, const char *source, json_t **out);

/* The relay status of source, published by its bound worker under its lease:
 *   ROOT/relay/<source>   the relay's status JSON
 * Same returns as sl_member_live_get. Thread-safe. */
int sl_member_relay_get(sl_member *m, const char *source, json_t **out);

/* The worker source is bound to ("" when none): 0, SL_ENOENT (unbound) or an etcd error.
 * Thread-safe. */
int sl_member_source_worker(sl_member *m, const char *source, char *worker, size_t n);

/* The leader's advertised address, read from etcd now: 0 and addr filled, SL_ENOENT when no
 * master leads (an election is under way), or an etcd error. Thread-safe. */
int sl_member_leader_addr(sl_member *m, char *addr, size_t n, sl_error *err);

#endif
