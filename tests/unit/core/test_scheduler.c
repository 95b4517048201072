/*
 * test_scheduler.c - scheduler threads: they run, are counted until joined, and the
 * max_threads limit refuses one more with SL_ELIMIT.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>

#include "scheduler.h"

struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int open;
    atomic_int ran;
};

static void wait_gate(void *arg)
{
    struct gate *g = arg;
    atomic_fetch_add(&g->ran, 1);
    pthread_mutex_lock(&g->mu);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

static void test_limit(void **state)
{
    sl_scheduler *s;
    sl_scheduler_opts o = { .max_threads = 3 };
    assert_int_equal(sl_scheduler_new(&o, &s), 0);
    assert_int_equal(sl__scheduler_queue_batches(s), 8);   /* default */
    struct gate g = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0 };
    sl__thread *t[4];
    for (int i = 0; i < 3; i++)
        assert_int_equal(sl__thread_start(s, "worker", wait_gate, &g, &t[i]), 0);
    assert_int_equal(sl_scheduler_threads_running(s), 3);
    assert_int_equal(sl__thread_start(s, "worker", wait_gate, &g, &t[3]), SL_ELIMIT);
    assert_null(t[3]);
    pthread_mutex_lock(&g.mu);
    g.open = 1;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
    sl__thread_join(t[0]);
    assert_int_equal(sl_scheduler_threads_running(s), 2);
    /* A slot freed by a join can be used again. */
    assert_int_equal(sl__thread_start(s, "a-very-long-thread-name", wait_gate, &g, &t[0]), 0);
    for (int i = 0; i < 3; i++)
        sl__thread_join(t[i]);
    assert_int_equal(atomic_load(&g.ran), 4);
    assert_int_equal(sl_scheduler_threads_running(s), 0);
    sl_scheduler_free(s);
}

static void count(void *arg) { atomic_fetch_add((atomic_int *)arg, 1); }

static void test_many(void **state)
{
    sl_scheduler *s;
    sl_scheduler_opts o = { .max_threads = 0, .queue_batches = 3 };
    assert_int_equal(sl_scheduler_new(&o, &s), 0);
    assert_int_equal(sl__scheduler_queue_batches(s), 3);
    atomic_int n = 0;
    sl__thread *t[100];
    for (int i = 0; i < 100; i++)
        assert_int_equal(sl__thread_start(s, "t", count, &n, &t[i]), 0);
    for (int i = 0; i < 100; i++)
        sl__thread_join(t[i]);
    assert_int_equal(atomic_load(&n), 100);
    assert_int_equal(sl_scheduler_threads_running(s), 0);
    sl_scheduler_free(s);
    /* No scheduler: unbounded. */
    sl__thread *u;
    assert_int_equal(sl__thread_start(NULL, "free", count, &n, &u), 0);
    sl__thread_join(u);
    assert_int_equal(atomic_load(&n), 101);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
