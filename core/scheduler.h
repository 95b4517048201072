/*
 * scheduler.h - (core-internal) threads owned by a scheduler (runtime.h sl_scheduler), counted
 * against its max_threads.
 */
#ifndef SLUICE_CORE_SCHEDULER_H
#define SLUICE_CORE_SCHEDULER_H

#include "sluice/runtime.h"

typedef struct sl__thread sl__thread;

/* Start fn(arg) on a new thread named name (the kernel keeps 15 characters). s may be NULL
 * (no limit). Returns 0 and *out, SL_ELIMIT when max_threads threads are running, SL_EIO if
 * the system refuses. Thread-safe. Every started thread must be joined with sl__thread_join. */
int  sl__thread_start(sl_scheduler *s, const char *name, sl_thread_fn fn, void *arg, sl__thread **out);

/* Wait for the thread's function to return and free the handle. */
void sl__thread_join(sl__thread *t);

/* The configured capacity of stage queues, in batches. */
uint32_t sl__scheduler_queue_batches(const sl_scheduler *s);

#endif
