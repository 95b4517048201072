/*
 * queue.c - the bounded blocking MPMC queue between pipeline stages (queue.h): a ring of item
 * pointers under one mutex with two condition variables (not full / not empty).
 */
#include "queue.h"

#include <pthread.h>
#include <stdlib.h>

typedef struct slot { void *item; uint64_t bytes; } slot;

struct sl__queue {
    pthread_mutex_t mu;
    pthread_cond_t  not_full, not_empty;
    slot    *ring;
    uint32_t cap, head, len;
    uint64_t cap_bytes, bytes;
    uint32_t producers;   /* still open */
    int      cancelled;
};

int sl__queue_new(uint32_t cap, uint64_t cap_bytes, uint32_t producers, sl__queue **out)
{
    sl__queue *q = calloc(1, sizeof *q);
    if (!q)
        return SL_ENOMEM;
    if (cap == 0)
        cap = 1;
    q->ring = calloc(cap, sizeof *q->ring);
    if (!q->ring) {
        free(q);
        return SL_ENOMEM;
    }
    q->cap = cap;
    q->cap_bytes = cap_bytes;
    q->producers = producers ? producers : 1;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->not_full, NULL);
    pthread_cond_init(&q->not_empty, NULL);
    *out = q;
    return 0;
}

void sl__queue_free(sl__queue *q, void (*drop)(void *item))
{
    if (!q)
        return;
    for (uint32_t i = 0; i < q->len; i++)
        if (drop)
            drop(q->ring[(q->head + i) % q->cap].item);
    pthread_cond_destroy(&q->not_full);
    pthread_cond_destroy(&q->not_empty);
    pthread_mutex_destroy(&q->mu);
    free(q->ring);
    free(q);
}

static int full(const sl__queue *q, uint64_t bytes)
{
    if (q->len == q->cap)
        return 1;
    return q->cap_bytes && q->len > 0 && q->bytes + bytes > q->cap_bytes;
}

static int push(sl__queue *q, void *item, uint64_t bytes, int wait)
{
    pthread_mutex_lock(&q->mu);
    while (!q->cancelled && q->producers > 0 && full(q, bytes)) {
        if (!wait) {
            pthread_mutex_unlock(&q->mu);
            return SL_AGAIN;
        }
        pthread_cond_wait(&q->not_full, &q->mu);
    }
    if (q->cancelled || q->producers == 0) {
        pthread_mutex_unlock(&q->mu);
        return SL_ESTOPPED;
    }
    q->ring[(q->head + q->len) % q->cap] = (slot){ item, bytes };
    q->len++;
    q->bytes += bytes;
    pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
    return 0;
}

int sl__queue_push(sl__queue *q, void *item, uint64_t bytes) { return push(q, item, bytes, 1); }
int sl__queue_try_push(sl__queue *q, void *item, uint64_t bytes) { return push(q, item, bytes, 0); }

static int pop(sl__queue *q, void **item, int wait)
{
    pthread_mutex_lock(&q->mu);
    while (!q->cancelled && q->len == 0 && q->producers > 0) {
        if (!wait) {
            pthread_mutex_unlock(&q->mu);
            return SL_AGAIN;
        }
        pthread_cond_wait(&q->not_empty, &q->mu);
    }
    if (q->cancelled) {
        pthread_mutex_unlock(&q->mu);
        return SL_ESTOPPED;
    }
    if (q->len == 0) {   /* every producer closed and drained */
        pthread_mutex_unlock(&q->mu);
        return SL_DONE;
    }
    slot s = q->ring[q->head];
    q->head = (q->head + 1) % q->cap;
    q->len--;
    q->bytes -= s.bytes;
    *item = s.item;
    /* With a byte bound, a waiting producer's item may not fit where another's would. */
    if (q->cap_bytes)
        pthread_cond_broadcast(&q->not_full);
    else
        pthread_cond_signal(&q->not_full);
    pthread_mutex_unlock(&q->mu);
    return 0;
}

int sl__queue_pop(sl__queue *q, void **item) { return pop(q, item, 1); }
int sl__queue_try_pop(sl__queue *q, void **item) { return pop(q, item, 0); }

void sl__queue_close(sl__queue *q)
{
    pthread_mutex_lock(&q->mu);
    if (q->producers > 0 && --q->producers == 0) {
        pthread_cond_broadcast(&q->not_empty);
        pthread_cond_broadcast(&q->not_full);
    }
    pthread_mutex_unlock(&q->mu);
}

void sl__queue_cancel(sl__queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->cancelled = 1;
    pthread_cond_broadcast(&q->not_empty);
    pthread_cond_broadcast(&q->not_full);
    pthread_mutex_unlock(&q->mu);
}

size_t sl__queue_len(sl__queue *q)
{
    pthread_mutex_lock(&q->mu);
    size_t n = q->len;
    pthread_mutex_unlock(&q->mu);
    return n;
}
