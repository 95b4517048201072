/*
 * shard.h - the shard DDL coordinator of the worker (issue 16): the pessimistic shard-DDL locks
 * of a task, one per target table that several source tables (on any of the task's sources)
 * merge into, kept in the metadata store as (kind "shard_lock", name "<task>/<target>") -> JSON
 * so that a restart (and, in a cluster, another worker) finds them as they were.
 *
 * The sinks reach it through host->shard (plugin.h) with JSON requests:
 *   {"op":"arrive", "target_schema", "target_table", "schema", "table", "ddl", "ddl_mode",
 *    "file", "pos"}
 *       a shard (source table) read a DDL of its target table (ddl_mode: the event's SL_DDLM_*
 *       bits, 0 when absent). The first arrival creates the lock with the group's members
 *       (every source table of the task routed to the target, listed on the sources); the
 *       reply's "action" is "wait" (hold the shard), "execute" (the last shard: run the DDL on
 *       the target, then "done"), or "conflict" (another DDL holds the lock, or the same text
 *       under other modes: its text is "ddl"). Idempotent: a shard that arrives again (a restart
 *       read its DDL again) gets the same answer.
 *   {"op":"done", "id", "gen"}      the owner ran the DDL: the lock is resolved and every
 *       running subtask with a held shard in it is restarted, to read its held events again.
 *   {"op":"state", "id", "gen", "schema", "table"}  {"resolved": bool, "owner": bool, "gone":
 *       bool}: owner when a by-hand unlock (sl_shard_unlock with exec) made this held shard the
 *       one that runs the DDL; gone when the lock is not in the store (the task's records were
 *       removed while the target kept the hold): the shard reads its DDL again and arrives anew.
 *   {"op":"resume", "file", "pos"}  a sink starts at this position: a lock this source owned
 *       and whose DDL the position has passed was run (a crash came before its "done").
 *   {"op":"leave", "target_schema", "target_table", "schema", "table"}  the shard's table was
 *       dropped: it leaves the waiting lock of its target; if every shard left has arrived, the
 *       first that came runs the DDL (as sl_shard_unlock with exec).
 *   {"op":"join", "target_schema", "target_table", "schema", "table", "ddl", "ddl_mode", "strict",
 *    "file", "pos", "target_create"}  optimistic mode, see shard.c: the DDL decided clause by
 *       clause (its columns read in its modes: "c" is a name with ANSI_QUOTES), a definition
 *       weighed against the target's (target_create: its SHOW CREATE TABLE, absent when it
 *       cannot be read); "action" "execute" (run "sql" when present, else the DDL), "skip" or
 *       "conflict" ("why", and "ddl": the other shard's statement).
 * Every reply carries "id" and "gen" of the lock it is about.
 *
 * Thread-safety: every function is thread-safe (one mutex per worker); none takes a subtask's
 * lock, so a subtask may call in while its lock is held.
 */
#ifndef SLUICE_RUNTIME_SHARD_H
#define SLUICE_RUNTIME_SHARD_H

#include <jansson.h>

#include "worker.h"

/* host->shard of an instance whose context prefix is "<task>/<source>/<phase>/<stage>". */
int  sl__shard_request(sl_worker *w, const char *prefix, const char *request, char **reply);

/* The SL__EV_SHARD_POLL of subtask s (on the worker's event thread): if a lock it holds shards
 * of was resolved (by another worker process, or by hand on the leader), restart it to apply
 * them; else look again in a second. */
void sl__shard_poll(sl_worker *w, sl_subtask *s);

/* Forget what task/source's held shards wait on (its subtask leaves the worker). Call with
 * w->shard_mu held. */
void sl__shard_forget_waits(sl_worker *w, const char *task, const char *source);

/* Fill the shard fields of a SubTaskStatus o (its "unresolved_ddl_lock_id" and the
 * "blocking_ddls" and "unresolved_groups" of its "sync_status") from the unresolved locks of
 * task in which source has a shard. */
void sl__shard_status(sl_worker *w, const char *task, const char *source, json_t *o);

/* The unresolved locks of task (every one when task is NULL) as DM's shard-ddl-lock list:
 * [{"id", "task", "mode", "owner", "ddls", "synced", "unsynced"}]. Caller decrefs. */
json_t *sl_shard_locks(sl_worker *w, const char *task);

/*
 * Resolve lock id of task by hand (DM's unlock-ddl-lock): a shard will never come (its table was
 * dropped), or the operator settled a conflict. exec 1: the shards that did not come count as
 * synced and the first shard that reached the DDL runs it (its subtask restarts to do so, or
 * does at its next start), then the lock resolves as usual. exec 0: the DDL is not run (the
 * operator ran it on the target, or does not want it); the lock resolves now and the subtasks
 * with held shards restart and apply their held events. In optimistic mode the id names the
 * DROP COLUMNs of its target still waiting for shards: exec 0 releases them (nothing runs, the
 * columns stay on the target), exec 1 is SL_ESTATE (nothing is held to run them, and they would
 * take the values of the shards that still have the column). Returns 0, SL_ENOENT (no such
 * unresolved lock), SL_ESTATE (its DDL is running, or no shard reached it) or a store error,
 * with err.
 */
int  sl_shard_unlock(sl_worker *w, const char *task, const char *id, int exec, sl_error *err);

#endif
