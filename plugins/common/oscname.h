/*
 * oscname.h - the table names of online schema change tools (gh-ost, pt-online-schema-change),
 * which a task with enhance_online_schema_change never copies: the binlog-reader follows their
 * migrations (plugins/binlog-reader/osc.c) and mysql-dump leaves them out of a snapshot.
 */
#ifndef SLUICE_OSCNAME_H
#define SLUICE_OSCNAME_H

#include <stddef.h>
#include <sluice/match.h>

enum { SL_OSC_NONE = 0, SL_OSC_GHOST, SL_OSC_TRASH };

/*
 * The kind of schema.table and, in real (rlen bytes), its real table: "_<t>_gho" and "_<t>_new"
 * are ghosts; "_<t>_ghc", "_<t>_ghk", "_<t>_del", "_<t>_<14 digits>_del" (gh-ost
 * --timestamp-old-table) and "_<t>_old" are trash. pt-osc adds leading underscores when its name
 * is taken: the real name is the first, from the fewest leading underscores removed, that a rule
 * selects. A name whose real table no rule selects is SL_OSC_NONE. Pure and thread-safe.
 */
int sl_osc_kind(const sl_rules *rules, const char *schema, const char *table, char *real,
                size_t rlen);

#endif
