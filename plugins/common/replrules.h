/*
 * replrules.h - the decisions of the event-filter and route plugins, kept pure (no host, no
 * server) so they are unit-testable: which events a task's rules drop, and the routed names of
 * an event and of the tables its DDL text names. Uses the compiled rules of match.h.
 */
#ifndef SLUICE_REPLRULES_H
#define SLUICE_REPLRULES_H

#include <stddef.h>
#include <sluice/event.h>
#include <sluice/match.h>
#include "myconn.h"

/* A bounded cache schema.table -> rule index (sl_rules_find is O(rules)). Not thread-safe. */
typedef struct sl_rulecache sl_rulecache;
sl_rulecache *sl_rulecache_new(const sl_rules *r);     /* NULL on OOM; r must outlive it */
void          sl_rulecache_free(sl_rulecache *c);
/* sl_rules_find through the cache (table NULL or "" = schema-level question). */
int           sl_rulecache_find(sl_rulecache *c, const char *schema, const char *table);

/*
 * The event-filter decision for one event: 1 drop, 0 keep, or a negative code with err filled
 * (SL_ELIMIT when an ignore_sql pattern hit the PCRE2 match limit: the message names the rule's
 * patterns' table). BEGIN, COMMIT and heartbeats are kept; DML and chunks of tables no rule
 * selects are dropped (block-allow semantics), as are ignored DML kinds; a DDL is kept when one
 * of the tables it names is selected (a database DDL when the schema is), and dropped when the
 * rule ignores its DM event type or one of its ignore_sql patterns matches its text; DDL the
 * lexer does not know (views, triggers, users...) is dropped.
 */
int sl_filter_decide(sl_rulecache *c, const sl_event *ev, sl_error *err);

/* Routed schema/table of a source table (unchanged when no rule selects it). Pointers live as
 * long as the rules and the inputs. */
void sl_route_name(sl_rulecache *c, const char *schema, const char *table,
                   const char **tschema, const char **ttable);

/*
 * Rewrite a DDL text to routed names (ddl.h), quoted and qualified, the text read in mode (the
 * event's ddl_mode: SL_DDLM_* bits, see sl_ddl_parse). Appends the text to out,
 * sets tschema/ttable to the routed name of the statement's first table (or database; table
 * "" then) — pointers valid as long as the rules and `names_keep` (the parse, which the caller
 * frees with sl_ddl_free) — and *merged to 1 when shard_merge is on and the statement changes a
 * shard: a table whose rule routes several source tables into one (sl_rules_merges). Returns 0,
 * SL_EPARSE, SL_ENOMEM.
 */
struct sl_ddl;
int sl_route_ddl(sl_rulecache *c, const char *sql, size_t len, const char *defschema,
                 unsigned mode, int shard_merge, sl_sbuf *out, struct sl_ddl *names_keep,
                 const char **tschema, const char **ttable, int *merged);

#endif
