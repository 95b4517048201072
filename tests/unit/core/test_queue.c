/*
 * test_queue.c - the bounded blocking queue: FIFO order, capacity and byte bounds, try ops,
 * counted producers and end of stream, cancel waking blocked threads, MPMC delivery.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "queue.h"

#define P(x) ((void *)(uintptr_t)(x))

static void test_fifo_and_bounds(void **state)
{
    sl__queue *q;
    void *it;
    assert_int_equal(sl__queue_new(3, 0, 1, &q), 0);
    assert_int_equal(sl__queue_try_pop(q, &it), SL_AGAIN);
    for (int i = 1; i <= 3; i++)
        assert_int_equal(sl__queue_try_push(q, P(i), 0), 0);
    assert_int_equal(sl__queue_try_push(q, P(4), 0), SL_AGAIN);
    assert_int_equal(sl__queue_len(q), 3);
    assert_int_equal(sl__queue_pop(q, &it), 0);
    assert_ptr_equal(it, P(1));
    assert_int_equal(sl__queue_try_push(q, P(4), 0), 0);
    for (int i = 2; i <= 4; i++) {
        assert_int_equal(sl__queue_try_pop(q, &it), 0);
        assert_ptr_equal(it, P(i));
    }
    sl__queue_close(q);
    assert_int_equal(sl__queue_pop(q, &it), SL_DONE);
    assert_int_equal(sl__queue_try_pop(q, &it), SL_DONE);
    assert_int_equal(sl__queue_push(q, P(9), 0), SL_ESTOPPED);
    sl__queue_free(q, NULL);
}

static void test_bytes_bound(void **state)
{
    sl__queue *q;
    void *it;
    assert_int_equal(sl__queue_new(100, 1000, 1, &q), 0);
    assert_int_equal(sl__queue_try_push(q, P(1), 600), 0);
    assert_int_equal(sl__queue_try_push(q, P(2), 600), SL_AGAIN);   /* 1200 > 1000 */
    assert_int_equal(sl__queue_try_push(q, P(3), 400), 0);          /* exactly 1000 */
    assert_int_equal(sl__queue_pop(q, &it), 0);
    assert_int_equal(sl__queue_pop(q, &it), 0);
    /* An item bigger than the bound still passes alone: no deadlock on a huge batch. */
    assert_int_equal(sl__queue_try_push(q, P(4), 5000), 0);
    assert_int_equal(sl__queue_try_push(q, P(5), 1), SL_AGAIN);
    sl__queue_free(q, NULL);
}

static void test_producers_close(void **state)
{
    sl__queue *q;
    void *it;
    assert_int_equal(sl__queue_new(4, 0, 2, &q), 0);
    assert_int_equal(sl__queue_push(q, P(1), 0), 0);
    sl__queue_close(q);
    /* One producer still open: not the end yet. */
    assert_int_equal(sl__queue_try_pop(q, &it), 0);
    assert_int_equal(sl__queue_try_pop(q, &it), SL_AGAIN);
    assert_int_equal(sl__queue_push(q, P(2), 0), 0);
    sl__queue_close(q);
    assert_int_equal(sl__queue_pop(q, &it), 0);     /* drained first */
    assert_ptr_equal(it, P(2));
    assert_int_equal(sl__queue_pop(q, &it), SL_DONE);
    sl__queue_free(q, NULL);
}

static int dropped;
static void drop(void *item) { dropped += (int)(uintptr_t)item; }

static void test_free_drops(void **state)
{
    sl__queue *q;
    assert_int_equal(sl__queue_new(4, 0, 1, &q), 0);
    sl__queue_push(q, P(5), 0);
    sl__queue_push(q, P(7), 0);
    dropped = 0;
    sl__queue_free(q, drop);
    assert_int_equal(dropped, 12);
}

struct blocked { sl__queue *q; int rc; int push; };

static void *block(void *arg)
{
    struct blocked *b = arg;
    void *it;
    b->rc = b->push ? sl__queue_push(b->q, P(1), 0) : sl__queue_pop(b->q, &it);
    return NULL;
}

static void test_cancel_wakes(void **state)
{
    sl__queue *full, *empty;
    assert_int_equal(sl__queue_new(1, 0, 1, &full), 0);
    assert_int_equal(sl__queue_new(1, 0, 1, &empty), 0);
    assert_int_equal(sl__queue_push(full, P(1), 0), 0);
    struct blocked a = { full, 99, 1 }, b = { empty, 99, 0 };
    pthread_t ta, tb;
    pthread_create(&ta, NULL, block, &a);
    pthread_create(&tb, NULL, block, &b);
    /* Whether or not they blocked already, cancel must release both. */
    sl__queue_cancel(full);
    sl__queue_cancel(empty);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_int_equal(a.rc, SL_ESTOPPED);
    assert_int_equal(b.rc, SL_ESTOPPED);
    void *it;
    assert_int_equal(sl__queue_try_pop(full, &it), SL_ESTOPPED);
    sl__queue_free(full, NULL);
    sl__queue_free(empty, NULL);
}

#define PRODUCERS 4
#define CONSUMERS 3
#define PER 20000

struct mp { sl__queue *q; int id; uint64_t sum; uint64_t n; };

static void *producer(void *arg)
{
    struct mp *m = arg;
    for (int i = 1; i <= PER; i++)
        assert_int_equal(sl__queue_push(m->q, P((uintptr_t)m->id * 1000000u + (uintptr_t)i), 8), 0);
    sl__queue_close(m->q);
    return NULL;
}

static void *consumer(void *arg)
{
    struct mp *m = arg;
    void *it;
    uint64_t last[PRODUCERS + 1] = { 0 };
    while (sl__queue_pop(m->q, &it) == 0) {
        uint64_t v = (uintptr_t)it, who = v / 1000000u, seq = v % 1000000u;
        /* FIFO: one producer's items come out in its order. */
        assert_true(seq > last[who]);
        last[who] = seq;
        m->sum += v;
        m->n++;
    }
    return NULL;
}

static void test_mpmc(void **state)
{
    sl__queue *q;
    assert_int_equal(sl__queue_new(8, 32, PRODUCERS, &q), 0);
    pthread_t tp[PRODUCERS], tc[CONSUMERS];
    struct mp mp[PRODUCERS], mc[CONSUMERS];
    for (int i = 0; i < CONSUMERS; i++) {
        mc[i] = (struct mp){ q, 0, 0, 0 };
        pthread_create(&tc[i], NULL, consumer, &mc[i]);
    }
    for (int i = 0; i < PRODUCERS; i++) {
        mp[i] = (struct mp){ q, i + 1, 0, 0 };
        pthread_create(&tp[i], NULL, producer, &mp[i]);
    }
    uint64_t sum = 0, n = 0, want = 0;
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(tp[i], NULL);
    for (int i = 0; i < CONSUMERS; i++) {
        pthread_join(tc[i], NULL);
        sum += mc[i].sum;
        n += mc[i].n;
    }
    for (uint64_t p = 1; p <= PRODUCERS; p++)
        want += p * 1000000u * PER + (uint64_t)PER * (PER + 1) / 2;
    assert_int_equal(n, (uint64_t)PRODUCERS * PER);
    assert_int_equal(sum, want);
    sl__queue_free(q, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_and_bounds),
        cmocka_unit_test(test_bytes_bound),
        cmocka_unit_test(test_producers_close),
        cmocka_unit_test(test_free_drops),
        cmocka_unit_test(test_cancel_wakes),
        cmocka_unit_test(test_mpmc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
