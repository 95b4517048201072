/*
 * binding.h - source bindings of a cluster (issue 13): which worker owns each source, kept in
 * etcd as one key per source, written only by the leading master.
 *
 *   ROOT/bound/<source>   {"worker": NAME}   no lease
 *
 * The binding's epoch is the key's mod_revision: the etcd revision of the write that bound the
 * source to that worker. A later binding of the same source always has a larger one, so it can
 * serve as the fence of that source's checkpoints (dm_meta.sluice_fence has one row per source).
 */
#ifndef SLUICE_RUNTIME_BINDING_H
#define SLUICE_RUNTIME_BINDING_H

#include <jansson.h>

#include "etcd.h"
#include "sluice/err.h"

/* One pass of the leader's scheduler, over what etcd holds now: every enabled source of the
 * metadata store (ROOT/meta/source/) whose binding is missing or names a worker that is not
 * alive (ROOT/alive/worker/ has no key for it: its lease expired, or it left) is bound to a
 * live worker that holds no source, in name order; bindings of sources that were deleted or
 * disabled are removed. Every write is one transaction that applies only while the leader key
 * is still the incarnation created at leader_rev (a deposed leader changes nothing) and the
 * binding is still the one read (two passes never overwrite each other). A source with no free
 * worker keeps its old binding (offline) until one is free. 0, or an etcd error (the next pass
 * tries again). Not thread-safe on e: the caller serialises its use of the client. */
int sl_binding_schedule(sl_etcd *e, const char *root, long long leader_rev, sl_error *err);

/* Bind source to worker now (POST /sources/{name}/transfer): SL_ENOENT when no worker of that
 * name ever joined, SL_ESTATE when it is not alive (offline), SL_EEXIST when it holds another
 * source (busy); 0 when it is bound (or was already), *epoch (may be NULL) = the binding's
 * revision. from_rev is the binding's revision when the transfer began (what
 * sl_binding_release_ask read; 0: unbound): the source is bound only while its binding is
 * still that one. Guarded as sl_binding_schedule's writes: SL_AGAIN (err says to try again)
 * when this master no longer leads or the binding changed since from_rev. Another etcd error
 * as such. The caller checked the source exists. */
int sl_binding_transfer(sl_etcd *e, const char *root, long long leader_rev, const char *source,
                        const char *worker, int64_t from_rev, long long *epoch, sl_error *err);

/*
 * A transfer stops the source where it runs before it rebinds it (issue 13), so the new worker
 * resumes from a checkpoint the old one wrote as it stopped, not from one a fence cut short:
 *
 *   ROOT/release/<source>   {"worker": OLD, "epoch": E, "acked": false, "leader": L}   no lease
 *
 * release_ask (on the leader, guarded like sl_binding_transfer's writes, with the same errors for
 * the target worker) writes it when the source is bound to a live worker other than `worker`
 * (*asked = the etcd revision that wrote the request; 0 when nothing runs the source or it is
 * bound to `worker` already); *from_rev = the binding's revision it read (0: unbound), which
 * the transfer hands to sl_binding_transfer. The bound worker stops the source's subtasks,
 * runs none of them while the request names it at its binding's epoch, and sets "acked".
 * release_acked: 1 once acked (or the request is gone), 0 before, or an etcd error.
 * release_forget removes the request created at req_rev (*asked) (after the transfer, or when
 * it failed: the old worker then runs the source again), only while the leader key is still
 * the incarnation created at leader_rev. One transfer of a source at a time: the caller
 * serialises them (sl_member_transfer). Same locking as sl_binding_schedule.
 *
 * L is the leader's incarnation (leader_rev) that asked. A leader that dies (or loses the lead)
 * between the request and the rebind leaves the request behind, and the old worker would run
 * the source no more: release_sweep, on the leader, removes every request that no transfer of
 * this leader waits for (those of another incarnation; its own too unless keep_own, which the
 * caller sets while a transfer of its own is under way). The binding did not move, so the old
 * worker runs the source again at the same epoch. 0 or an etcd error. Same locking.
 */
int sl_binding_release_ask(sl_etcd *e, const char *root, long long leader_rev, const char *source,
                           const char *worker, int64_t *from_rev, int64_t *asked, sl_error *err);
int sl_binding_release_acked(sl_etcd *e, const char *root, const char *source, sl_error *err);
void sl_binding_release_forget(sl_etcd *e, const char *root, long long leader_rev,
                               const char *source, int64_t req_rev);
int sl_binding_release_sweep(sl_etcd *e, const char *root, long long leader_rev, int keep_own,
                             sl_error *err);

/* The bindings as a JSON object {source: {"worker": NAME, "epoch": REV}}. 0 and *out (caller
 * decrefs), or an etcd error. Same locking as sl_binding_schedule. */
int sl_binding_read(sl_etcd *e, const char *root, json_t **out, sl_error *err);

#endif
