/*
 * queue.h - (core-internal) the bounded blocking queue that connects pipeline stages.
 *
 * MPMC, bounded by a number of items and optionally by bytes: a full queue blocks the producer
 * (backpressure). Producers are counted: each calls sl__queue_close once when it is done, and
 * consumers see SL_DONE once every producer has closed and the queue is drained. cancel() wakes
 * every blocked thread and makes every later push/pop fail with SL_ESTOPPED.
 */
#ifndef SLUICE_CORE_QUEUE_H
#define SLUICE_CORE_QUEUE_H

#include <stddef.h>
#include <stdint.h>
#include "sluice/err.h"

typedef struct sl__queue sl__queue;

/* cap items (>= 1), cap_bytes (0 = no byte bound; an item larger than the bound still passes
 * when the queue is empty), producers (>= 1) that must each close. Caller frees with
 * sl__queue_free. */
int  sl__queue_new(uint32_t cap, uint64_t cap_bytes, uint32_t producers, sl__queue **out);

/* Frees the queue; items still in it are handed to drop (if non-NULL). No thread may be using it. */
void sl__queue_free(sl__queue *q, void (*drop)(void *item));

/* Blocking push: waits while full. 0, or SL_ESTOPPED if cancelled or every producer closed
 * (the item is NOT consumed then: the caller still owns it). Thread-safe. */
int  sl__queue_push(sl__queue *q, void *item, uint64_t bytes);
/* Non-blocking push: 0, SL_AGAIN when full, SL_ESTOPPED as above. */
int  sl__queue_try_push(sl__queue *q, void *item, uint64_t bytes);

/* Blocking pop: 0 and *item, SL_DONE when every producer closed and the queue is empty,
 * SL_ESTOPPED when cancelled. Thread-safe. */
int  sl__queue_pop(sl__queue *q, void **item);
/* Non-blocking pop: as above, or SL_AGAIN when empty but still open. */
int  sl__queue_try_pop(sl__queue *q, void **item);

/* One producer is done. Thread-safe. */
void sl__queue_close(sl__queue *q);
/* Wake everyone; every later push/pop returns SL_ESTOPPED. Idempotent, thread-safe. */
void sl__queue_cancel(sl__queue *q);

/* Items currently queued (a snapshot). */
size_t sl__queue_len(sl__queue *q);

#endif
