/*
 * precheck.h - DM's prechecks of a shard merge, run before a task copies anything: its checker
 * items auto_increment_ID (a key holding an AUTO_INCREMENT column in tables that merge) and
 * schema_of_shard_tables (shards with other columns), over the tables a task's rules select
 * (verify.h's sl_verify_task, grouped by target table). And what two tasks would both write.
 * Shared by `sluice check-task --precheck` and the server (POST /tasks/check, a task's start).
 */
#ifndef SLUICE_PRECHECK_H
#define SLUICE_PRECHECK_H

#include <jansson.h>

#include "verify.h"

/* DM's names of the items (dm/config/checking_item.go), as ignore_checking_items spells them. */
#define SL_PRECHECK_AUTO_INCREMENT "auto_increment_ID"
#define SL_PRECHECK_SHARD_SCHEMA   "schema_of_shard_tables"

/* 1 if the task's ignore_checking_items (an array of strings, or NULL) skips item: it names
 * the item or "all", as DM's FilterCheckingItems reads it. */
int sl_precheck_ignored(const json_t *ignore, const char *item);

/*
 * The shard prechecks of a task over vt, whose tables are collected (sl_verify_task_collect):
 * for every target table that two or more source tables route into, each shard's columns and
 * unique keys are read from its source's information_schema. shard_mode is the task's (NULL or
 * "" none, "pessimistic", "optimistic"); ignore its ignore_checking_items. Each problem is
 * appended to out as {"item": DM's item name, "error": true|false (a warning), "msg": text}.
 * Returns 0 (problems or none), or SL_ECONN / SL_EDB / SL_ENOMEM with err when a source could
 * not be read. Connects (one connection per source at a time); memory is bounded by one
 * table's columns and the number of tables, not by rows.
 */
int sl_precheck_shards(const sl_verify_task *vt, const char *shard_mode, const json_t *ignore,
                       json_t *out, sl_error *err);

/*
 * 1 if task has begun on its target: `<meta_schema>`.`<task>_loader_checkpoint` or
 * `<task>_syncer_checkpoint` holds a row (the tables' absence is 0). DM runs the shard
 * prechecks on a fresh task only, since a task under way has shards that may differ for a
 * reason (a shard DDL in progress). Returns 1, 0, or SL_ECONN / SL_EDB with err.
 */
int sl_precheck_started(const sl_myconn_opts *target, const char *meta_schema, const char *task,
                        sl_error *err);

/*
 * The target tables that both a and b route source tables into, on the same target server
 * (host and port): appended to out as "`schema`.`table`" strings, at most max of them. Returns
 * how many there are in all (0: none, or another target server). Both must be collected.
 */
size_t sl_precheck_common_targets(const sl_verify_task *a, const sl_verify_task *b, json_t *out,
                                  size_t max);

#endif
