/*
 * sched.c - the scheduler: owns every thread the runtime and plugins start (pthreads), and
 * refuses a new one once max_threads are running, so a server's thread count is bounded.
 */
#include "scheduler.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sl_scheduler {
    uint32_t max_threads;
    uint32_t queue_batches;
    atomic_uint running;
};

struct sl__thread {
    pthread_t tid;
    sl_scheduler *s;
    sl_thread_fn fn;
    void *arg;
    char name[16];
};

int sl_scheduler_new(const sl_scheduler_opts *opts, sl_scheduler **out)
{
    sl_scheduler *s = calloc(1, sizeof *s);
    if (!s)
        return SL_ENOMEM;
    s->max_threads = (opts && opts->max_threads) ? opts->max_threads : 256;
    s->queue_batches = (opts && opts->queue_batches) ? opts->queue_batches : 8;
    atomic_init(&s->running, 0);
    *out = s;
    return 0;
}

void sl_scheduler_free(sl_scheduler *s)
{
    free(s);
}

uint32_t sl_scheduler_threads_running(const sl_scheduler *s)
{
    return s ? atomic_load(&((sl_scheduler *)s)->running) : 0;
}

uint32_t sl__scheduler_queue_batches(const sl_scheduler *s)
{
    return s ? s->queue_batches : 8;
}

static void *trampoline(void *p)
{
    sl__thread *t = p;
    pthread_setname_np(pthread_self(), t->name);
    t->fn(t->arg);
    return NULL;
}

int sl__thread_start(sl_scheduler *s, const char *name, sl_thread_fn fn, void *arg, sl__thread **out)
{
    *out = NULL;
    if (s) {
        /* Reserve a slot first so concurrent starts cannot overshoot the limit. */
        uint32_t n = atomic_load(&s->running);
        do {
            if (n >= s->max_threads)
                return SL_ELIMIT;
        } while (!atomic_compare_exchange_weak(&s->running, &n, n + 1));
    }
    sl__thread *t = calloc(1, sizeof *t);
    if (!t) {
        if (s)
            atomic_fetch_sub(&s->running, 1);
        return SL_ENOMEM;
    }
    t->s = s;
    t->fn = fn;
    t->arg = arg;
    snprintf(t->name, sizeof t->name, "%s", name ? name : "sluice");
    if (pthread_create(&t->tid, NULL, trampoline, t) != 0) {
        if (s)
            atomic_fetch_sub(&s->running, 1);
        free(t);
        return SL_EIO;
    }
    *out = t;
    return 0;
}

int sl_thread_spawn(sl_scheduler *s, const char *name, sl_thread_fn fn, void *arg, sl_thread **out)
{
    return sl__thread_start(s, name, fn, arg, out);
}

void sl_thread_join(sl_thread *t)
{
    sl__thread_join(t);
}

void sl__thread_join(sl__thread *t)
{
    if (!t)
        return;
    pthread_join(t->tid, NULL);
    /* Counted until joined: a thread that returned but was not joined still holds its stack. */
    if (t->s)
        atomic_fetch_sub(&t->s->running, 1);
    free(t);
}
