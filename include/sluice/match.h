/*
 * match.h - the matchers DM tasks are made of: table name patterns (DM wildcards or ~regex), the
 * compiled `rules` option shared by the compiler and the plugins (routing, event filters,
 * ignore_sql), DM's binlog event type names, and a classifier of DDL statements into them.
 *
 * Part of the plugin SDK (sdk/: pattern.c, evtype.c, ddlclass.c, rules.c, regex.c; the static
 * library libsluice-sdk, PCRE2 + jansson only), linked by the compiler and by every plugin.
 * Everything compiled here is immutable afterwards: matching is thread-safe (PCRE2 match data is
 * kept per thread).
 */
#ifndef SLUICE_MATCH_H
#define SLUICE_MATCH_H

#include <stddef.h>
#include "err.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- name patterns ------------------------------------------------------------------------ */

/* The PCRE2 match limit used for ~regex patterns and ignore_sql (bounded backtracking). */
#define SL_MATCH_LIMIT      1000000u
#define SL_MATCH_DEPTH      10000u

typedef struct sl_pattern sl_pattern;

/*
 * Compile a DM table/schema pattern: a plain name (exact match), a DM wildcard (`*` only as the
 * last character, `?` one character, `[a-z]`, `[!a-z]` classes) or `~regex` (PCRE2, JIT,
 * unanchored search as in DM). Matching is case-insensitive (DM's default). "" matches only "".
 * Returns 0 and *out (caller frees with sl_pattern_free), or SL_EINVAL with err filled
 * (for a regex: PCRE2's message and the offset in the pattern), or SL_ENOMEM. Thread-safe.
 */
int  sl_pattern_compile(const char *text, sl_pattern **out, sl_error *err);

/* 1 if s matches, 0 if not (also when a regex hits the match limit). Thread-safe. */
int  sl_pattern_match(const sl_pattern *p, const char *s);

/* 1 if the pattern is a plain name (no wildcard, no regex): it can match one name only. */
int  sl_pattern_is_exact(const sl_pattern *p);

/* The pattern text as given. */
const char *sl_pattern_text(const sl_pattern *p);

void sl_pattern_free(sl_pattern *p);

/*
 * Check one ignore_sql regular expression the way the rules compile it (PCRE2, caseless, UTF,
 * JIT). Returns 0, or SL_EINVAL with err = "<PCRE2 message> at offset N". Thread-safe.
 */
int  sl_regex_check(const char *pattern, sl_error *err);

/* ---- DM binlog event types ------------------------------------------------------------------ */

typedef enum sl_event_class {
    SL_EVCLASS_UNKNOWN = 0,     /* not one of DM's names */
    SL_EVCLASS_GROUP,           /* all, all dml, all ddl, none, none dml, none ddl,
                                   incompatible ddl changes */
    SL_EVCLASS_DML,             /* insert, update, delete */
    SL_EVCLASS_DDL,             /* create table, alter table, ... */
    SL_EVCLASS_INCOMPATIBLE_DDL /* drop table, truncate table, rename table, drop column, ... */
} sl_event_class;

/* Class of an event type name (case-insensitive; aliases such as "create schema" included). */
sl_event_class sl_event_type_class(const char *name);

/* The canonical lower-case name of an event type (static string): aliases resolved
 * ("create schema" -> "create database"); NULL if name is not one of DM's. */
const char *sl_event_type_canonical(const char *name);

/* DM's event name for a row event kind (sl_event_kind of event.h): SL_EV_INSERT -> "insert",
 * SL_EV_UPDATE -> "update", SL_EV_DELETE -> "delete"; NULL for any other kind. */
const char *sl_dml_event_type(int kind);

/*
 * Expand an ignore_event value into the concrete event names it selects: "all dml" -> insert,
 * update, delete; "all ddl" -> every DDL name; "all" -> every concrete name; "none*" -> nothing;
 * a concrete name -> itself (canonical). Writes at most max static strings to out and returns
 * the total count (call with max 0 to size), or -1 if value is not one of DM's names.
 */
int  sl_event_type_expand(const char *value, const char **out, size_t max);

/*
 * DM's classification of a DDL statement (what its binlog filter matches ignore_event against):
 * "create database", "drop database", "alter database", "create table", "drop table",
 * "truncate table", "rename table", "alter table", "create index", "drop index", "create view",
 * "drop view". Comments (slash-star, "-- ", "#") are skipped and MySQL executable comments
 * (slash-star-bang) are read as code; keywords are case-insensitive. Returns a static string, or
 * NULL if the text is not one of these statements (DML, or DDL DM does not classify such as
 * CREATE TRIGGER). Thread-safe.
 */
const char *sl_ddl_event_type(const char *sql, size_t len);

/* ---- compiled rules (the `rules` plugin option) -------------------------------------------- */

/*
 * The `rules` option: a JSON array, one element per table_migrate_rule of one source, in task
 * order:
 *   {"schema": pat, "table": pat or "", "target_schema": name or "", "target_table": name or "",
 *    "filters": [{"name": "rule-1", "ignore_event": ["all dml", ...], "ignore_sql": ["^drop", ...]}]}
 */
typedef struct sl_rules sl_rules;

/* Parse and compile (patterns, event names, ignore_sql joined per filter and JIT-compiled).
 * Returns 0 and *out (caller frees with sl_rules_free), or SL_EINVAL/SL_EPARSE with err naming
 * the offending rule, or SL_ENOMEM. */
int  sl_rules_new(const char *rules_json, sl_rules **out, sl_error *err);
void sl_rules_free(sl_rules *r);

/* Number of rules. */
size_t sl_rules_count(const sl_rules *r);

/*
 * The rule that selects schema.table: table-level rules (non-empty table pattern) win over
 * schema-level ones (DM); among equals the first in task order wins. -1 when no rule selects it.
 * table may be NULL or "" for a schema-only question (only schema-level rules answer).
 * Thread-safe; O(number of rules): callers should cache per table.
 */
int  sl_rules_find(const sl_rules *r, const char *schema, const char *table);

/* Routed name for a table selected by rule: target_schema empty => schema unchanged;
 * target_table empty => table unchanged. Pointers stay valid as long as r and the inputs.
 * rule < 0 => both unchanged. */
void sl_rules_target(const sl_rules *r, int rule, const char *schema, const char *table,
                     const char **tschema, const char **ttable);

/* 1 if the rule's filters ignore an event of this DM type ("insert", "create table", ...,
 * case-insensitive; DM's first-match semantics per filter, "none*" stops a filter), else 0.
 * An unknown event type is never ignored by type (DM's NullEvent). */
int  sl_rules_ignores_event(const sl_rules *r, int rule, const char *dm_event);

/* 1 if the SQL text matches one of the rule's ignore_sql patterns (case-insensitive unanchored
 * search), 0 if not, SL_ELIMIT if the PCRE2 match limit was hit (a task error). Thread-safe. */
int  sl_rules_ignores_sql(const sl_rules *r, int rule, const char *sql, size_t len);

/* 1 if any rule could select a table in this schema (for skipping whole schemas). */
int  sl_rules_schema_selected(const sl_rules *r, const char *schema);

/* 1 if several distinct source tables can route into the same target table (shard merge):
 * a rule with a target table whose schema or table pattern is not exact, or two rules naming
 * different source tables routed to the same target table, or a rule mapping a wildcard schema
 * to one target schema (with a table pattern or without). */
int  sl_rules_shard_merge(const sl_rules *r);

/* 1 if rule rule_i is one of those (its tables are shards of merged tables): the same tests,
 * for that rule alone. 0 for no such rule. */
int  sl_rules_merges(const sl_rules *r, int rule_i);

/* 1 if the rule has any filter (ignore_event or ignore_sql). */
int  sl_rules_has_filters(const sl_rules *r, int rule);

#ifdef __cplusplus
}
#endif
#endif
