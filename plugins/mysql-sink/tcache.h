/*
 * tcache.h - the mysql-sink's cache of target table metadata: each routed target table is read
 * from information_schema once (on first use, and again after a DDL that touches it or a
 * restart), and each event metadata version gets one view on it (common/tmeta.h) that the
 * statement builder and causality use instead of the event's own metadata.
 *
 * Not thread-safe: used by the sink's coordinator only. Views handed out stay valid until the
 * next sl__tcache_collect() after the entry was invalidated or evicted, so the caller collects
 * only when no scheduled event refers to a view any more (after a group commits).
 */
#ifndef SLUICE_SINK_TCACHE_H
#define SLUICE_SINK_TCACHE_H

#include <mysql.h>
#include <sluice/plugin.h>

typedef struct sl__tcache sl__tcache;

/* A cache whose views hold references on event metadata through host. NULL on OOM. */
sl__tcache *sl__tcache_new(const sl_host *host);
/* Free everything (views, references). NULL is fine. */
void        sl__tcache_free(sl__tcache *c);

/*
 * The view of ev->meta against ev's routed target table: loaded through db on first use.
 * Returns 0 and *view, or a negative code with err filled: SL_ENOENT (the target table does not
 * exist), SL_EINVAL (a column of the event is missing on the target; see tmeta.h), SL_EDB /
 * SL_ECONN (the metadata query failed), SL_ENOMEM.
 */
int  sl__tcache_view(sl__tcache *c, MYSQL *db, const sl_event *ev, sl_table **view, sl_error *err);

/* Forget a target table (schema and table), every table of a schema (table NULL), or everything
 * (schema NULL). Its views are retired: they stay valid until the next collect. */
void sl__tcache_invalidate(sl__tcache *c, const char *schema, const char *table);

/* Free retired views. Call only when no event handed to workers refers to a view. */
void sl__tcache_collect(sl__tcache *c);

/* Metadata loads done so far (for tests and the "once per table" promise). */
uint64_t sl__tcache_loads(const sl__tcache *c);

#endif
