/*
 * causality.h - the pure part of the sink's parallel apply: key hashes of row images and the
 * scheduler that assigns the rows of each source transaction to workers so that rows whose
 * primary/unique key values relate land on the same worker (and so apply in source order),
 * while unrelated rows spread over all workers.
 *
 * A scheduler covers one "group" (a run of whole transactions committed together). When a
 * transaction's rows relate to rows already on two different workers, it cannot join the group:
 * the caller commits the group, resets the scheduler and assigns the transaction again.
 * Not thread-safe: one scheduler per sink coordinator.
 */
#ifndef SLUICE_CAUSALITY_H
#define SLUICE_CAUSALITY_H

#include <stddef.h>
#include <stdint.h>
#include <sluice/event.h>

/*
 * Hash of one key of a row image: the target table name, the key's column names and values
 * (strings of a case-insensitive collation folded to lower case, ASCII only). cols lists ncols
 * column indexes into row/meta->cols. Returns 0 when a key column is NULL (a NULL never collides
 * in a unique index), else a non-zero hash. Thread-safe.
 */
uint64_t sl_causality_key(const char *tschema, const char *ttable, const sl_table *meta,
                          const sl_value *row, const uint32_t *cols, uint32_t ncols);

/*
 * The key hashes of one row change (both images, every key of ev->meta: pk and keys; the whole
 * row for an image whose keys all hold a NULL or when there is none). An empty key (keys[k][0] ==
 * UINT32_MAX) hashes the table name alone. Writes at most max hashes to out and returns the count
 * (never more than max).
 */
size_t sl_causality_row_keys(const sl_event *ev, uint64_t *out, size_t max);

typedef struct sl_causality sl_causality;

/* A scheduler for nworkers (>= 1) workers. Caller frees with sl_causality_free. NULL on OOM. */
sl_causality *sl_causality_new(uint32_t nworkers);
void          sl_causality_free(sl_causality *c);

/*
 * Place new rows (those related to no row of the group) on as few workers as useful: a worker
 * already used in the group takes them until it holds `rows` rows, and only then does another
 * worker start. 0 (the default) spreads them over every worker (the least loaded first). Fewer
 * workers per group means fewer XA branches to prepare and commit for a small group.
 */
void          sl_causality_set_fill(sl_causality *c, uint64_t rows);

/* Start a new group: forget every key and the per-worker row counts. */
void          sl_causality_reset(sl_causality *c);

/* Rows assigned in the current group (all workers). */
uint64_t      sl_causality_rows(const sl_causality *c);

/*
 * Assign the nrows rows of one transaction. Row r has the keys keys[start[r] .. start[r+1]-1]
 * (start has nrows+1 entries). On success writes worker[r] for each row, records the keys and
 * returns 0. Returns 1 (and records nothing) when the transaction conflicts with the group
 * (its related rows are on two workers already): commit the group, reset, retry.
 * Returns SL_ENOMEM on allocation failure.
 */
int           sl_causality_assign(sl_causality *c, size_t nrows, const uint64_t *keys,
                                  const uint32_t *start, uint32_t *worker);

#endif
