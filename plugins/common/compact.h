/*
 * compact.h - the sink's compactor (DM's `syncer.compact`): the row changes one worker applies in
 * one group, reduced to the net change of each row, so that the statement builder (dmlsql.h) can
 * write one multi-row statement per table and kind instead of one statement per change.
 *
 * Only tables where that is exact are compacted: the view (tmeta.h) identifies rows by a key
 * (pk) that is the ONLY unique key of the target table, none of its columns generated, and every
 * key value is of a type whose equality the compactor can decide exactly as the server does
 * (integers, temporals, and strings of a PAD SPACE binary collation, trailing spaces ignored),
 * and the table is not system-versioned (its target writes one history version per change).
 * In such a table, changes to rows with different key values commute (no other unique key can
 * make them collide), so the net effect of the group is, for each key value, its LAST change:
 *   - the row was absent at the start of the group (its first change inserts it, or an UPDATE
 *     moves a row to it) and is present at the end: INSERT of the final image;
 *   - absent at the start and at the end (insert + delete): nothing;
 *   - present (or unknown) at the start, present at the end: UPSERT of the final image
 *     (INSERT ... ON DUPLICATE KEY UPDATE every written column, DM's "multiple-rows" update);
 *   - present (or unknown) at the start, absent at the end: DELETE by key.
 * Rows of the other tables keep their changes, in source order, untouched (different tables
 * commute too: the sink's sessions run with foreign_key_checks=0).
 * Pure and server-free; one compactor per thread.
 */
#ifndef SLUICE_COMPACT_H
#define SLUICE_COMPACT_H

#include <stddef.h>
#include <stdint.h>
#include <sluice/event.h>

typedef enum sl_cmp_kind {
    SL_CMP_INSERT = 1,  /* INSERT img (a full row image) */
    SL_CMP_UPSERT,      /* INSERT img ... ON DUPLICATE KEY UPDATE (every written column) */
    SL_CMP_DELETE       /* DELETE the row whose key values img holds */
} sl_cmp_kind;

/* One net change: ev gives the table (meta, target names), img the row image to write or
 * delete (ev->after or ev->before). */
typedef struct sl_cmp_op {
    const sl_event *ev;
    const sl_value *img;
    uint8_t         kind;   /* sl_cmp_kind */
} sl_cmp_op;

typedef struct sl_compactor sl_compactor;

/* A compactor (scratch memory reused across calls). Caller frees with sl_compactor_free. NULL on
 * OOM. */
sl_compactor *sl_compactor_new(void);
void          sl_compactor_free(sl_compactor *c);

/* 1 if rows of this view (an sl_table from sl_tmeta_view) may be compacted, judged on the
 * table alone: a key, no other unique key, no generated key column. The values are checked by
 * sl_compact itself. */
int sl_compact_table_ok(const sl_table *view);

/*
 * Compact evs[0..n) (row events of one worker's share of a group, in source order). On return,
 * *keep lists the events applied as they are (tables not compacted, source order kept) and *ops
 * the net changes of the compacted tables, grouped by table, then kind (DELETE, INSERT, UPSERT).
 * Both arrays belong to c and stay valid until its next call. Returns 0 or SL_ENOMEM.
 */
int sl_compact(sl_compactor *c, sl_event *const *evs, size_t n, sl_event *const **keep,
               size_t *nkeep, const sl_cmp_op **ops, size_t *nops);

#endif
