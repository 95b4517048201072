/*
 * test_host.c - the host function table (core/host.c) as a plugin sees it: first error wins and
 * reaches the owner, a stop is not a failure, metrics, emit through the owner's hook (or dropped
 * without one), the stop flag, state keys under the instance's prefix, input_pending, threads.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"

typedef struct owner {
    int       failed, fail_code;
    sl_ctx   *fail_ctx;
    int       emitted;
    uint32_t  emitted_n;
    size_t    pending;
} owner;

static int own_emit(void *o, sl_ctx *ctx, sl_batch *b)
{
    owner *w = o;
    w->emitted++;
    w->emitted_n = b->n;
    sl__batch_unref(b);
    return 0;
}

static void own_failed(void *o, sl_ctx *ctx, int code)
{
    owner *w = o;
    w->failed++;
    w->fail_code = code;
    w->fail_ctx = ctx;
}

static size_t own_pending(void *o, sl_ctx *ctx) { return ((owner *)o)->pending; }

static void test_table_header(void **state)
{
    const sl_host *h = sl__host();
    assert_int_equal(h->abi_version, SL_ABI_VERSION);
    assert_int_equal(h->struct_size, sizeof(sl_host));
    /* every function a plugin may call is there, up to the last one appended */
    assert_non_null(h->fail);
    assert_non_null(h->emit);
    assert_non_null(h->state_put);
    assert_non_null(h->input_pending);
}

static void test_fail_first_error_wins(void **state)
{
    owner w = { 0 };
    sl__ctx_hooks hk = { .owner = &w, .failed = own_failed };
    sl_ctx *c = sl__ctx_new("p/s", NULL, NULL, NULL, &hk);
    assert_non_null(c);
    const sl_host *h = sl__host();

    assert_int_equal((h->fail)(c, SL_EDB, "first %d", 1), SL_EDB);
    /* a non-negative code is a plugin bug: it becomes SL_EPLUGIN, never success */
    assert_int_equal((h->fail)(c, 0, "second"), SL_EPLUGIN);
    assert_int_equal(w.failed, 2);
    assert_int_equal(w.fail_code, SL_EPLUGIN);
    assert_ptr_equal(w.fail_ctx, c);
    sl_error e;
    sl__ctx_error(c, &e);
    assert_int_equal(e.code, SL_EDB);
    assert_string_equal(e.msg, "first 1");

    /* unwinding after a stop is not a failure: nothing recorded, owner not told */
    sl__ctx_clear_error(c);
    assert_int_equal((h->fail)(c, SL_ESTOPPED, "stopping"), SL_ESTOPPED);
    sl__ctx_error(c, &e);
    assert_int_equal(e.code, 0);
    assert_int_equal(w.failed, 2);
    sl__ctx_free(c);
}

static void test_metrics(void **state)
{
    sl_ctx *c = sl__ctx_new("p/s", NULL, NULL, NULL, NULL);
    const sl_host *h = sl__host();
    h->metric_add(c, "rows", 3);
    h->metric_add(c, "rows", 4);
    h->metric_set(c, "lag_ms", 250);
    h->metric_set(c, "lag_ms", 10);
    for (int i = 0; i < 20; i++) {   /* past the first growth of the metric array */
        char n[16];
        snprintf(n, sizeof n, "m%d", i);
        h->metric_add(c, n, i);
    }
    char *s = sl__ctx_metrics_json(c);
    json_t *o = json_loads(s, 0, NULL);
    assert_non_null(o);
    assert_int_equal(json_integer_value(json_object_get(o, "rows")), 7);
    assert_int_equal(json_integer_value(json_object_get(o, "lag_ms")), 10);
    assert_int_equal(json_integer_value(json_object_get(o, "m19")), 19);
    assert_int_equal(json_object_size(o), 22);
    json_decref(o);
    free(s);
    sl__ctx_free(c);
}

static void test_emit_stop_pending(void **state)
{
    const sl_host *h = sl__host();
    owner w = { .pending = 5 };
    sl__ctx_hooks hk = { .owner = &w, .emit = own_emit, .pending = own_pending };
    atomic_int stop;
    atomic_init(&stop, 0);
    sl_ctx *c = sl__ctx_new("p/s", NULL, NULL, &stop, &hk);

    sl_batch *b = h->batch_new(c, 4);
    assert_non_null(h->batch_push(b, SL_EV_INSERT));
    assert_non_null(h->batch_push(b, SL_EV_DELETE));
    assert_int_equal(h->emit(c, b), 0);
    assert_int_equal(w.emitted, 1);
    assert_int_equal(w.emitted_n, 2);
    assert_int_equal(h->input_pending(c), 5);

    assert_int_equal(h->should_stop(c), 0);
    atomic_store(&stop, 1);
    assert_int_equal(h->should_stop(c), 1);
    sl__ctx_free(c);

    /* no owner: emit drops the batch (ASan would see a leak otherwise), and reports a stop */
    sl_ctx *lone = sl__ctx_new("lone", NULL, NULL, NULL, NULL);
    assert_int_equal(h->emit(lone, h->batch_new(lone, 1)), 0);
    assert_int_equal(h->input_pending(lone), 0);
    assert_int_equal(h->should_stop(lone), 0);
    sl__ctx_free(lone);
    sl_ctx *stopped = sl__ctx_new("stopped", NULL, NULL, &stop, NULL);
    assert_int_equal(h->emit(stopped, h->batch_new(stopped, 1)), SL_ESTOPPED);
    sl__ctx_free(stopped);
}

static void test_state_keys(void **state)
{
    const sl_host *h = sl__host();
    sl_state_store *st = sl__memstate_new();
    sl_ctx *a = sl__ctx_new("task/src/full/dump", NULL, st, NULL, NULL);
    sl_ctx *b = sl__ctx_new("task/src/full/load", NULL, st, NULL, NULL);

    assert_int_equal(h->state_put(a, "pos", "42"), 0);
    char *v = h->state_get(a, "pos");
    assert_string_equal(v, "42");
    h->free(v);
    /* the key lives under the instance's prefix: another stage does not see it */
    assert_null(h->state_get(b, "pos"));
    v = st->get(st->ud, "task/src/full/dump/pos");
    assert_string_equal(v, "42");
    free(v);
    assert_int_equal(h->state_put(a, NULL, "x"), SL_EINVAL);
    assert_null(h->state_get(a, NULL));
    /* a key that does not fit the host's buffer is refused, not cut */
    char big[1100];
    memset(big, 'k', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(h->state_put(a, big, "x"), SL_EINVAL);

    sl_ctx *none = sl__ctx_new("x", NULL, NULL, NULL, NULL);
    assert_int_equal(h->state_put(none, "pos", "1"), SL_ENOTSUP);
    assert_null(h->state_get(none, "pos"));
    sl__ctx_free(none);
    sl__ctx_free(a);
    sl__ctx_free(b);
    sl__memstate_free(st);
}

static void bump(void *arg) { atomic_fetch_add((atomic_int *)arg, 1); }

static void test_threads(void **state)
{
    const sl_host *h = sl__host();
    sl_scheduler *s = NULL;
    sl_scheduler_opts so = { .max_threads = 1 };
    assert_int_equal(sl_scheduler_new(&so, &s), 0);
    sl_ctx *c = sl__ctx_new("p/s", s, NULL, NULL, NULL);
    atomic_int n;
    atomic_init(&n, 0);
    void *t1 = NULL, *t2 = NULL;
    assert_int_equal(h->thread_start(c, "one", bump, &n, &t1), 0);
    /* the scheduler's limit holds for plugin threads too */
    assert_int_equal(h->thread_start(c, "two", bump, &n, &t2), SL_ELIMIT);
    assert_null(t2);
    h->thread_join(c, t1);
    assert_int_equal(atomic_load(&n), 1);
    assert_int_equal(h->thread_start(c, "three", bump, &n, &t2), 0);
    h->thread_join(c, t2);
    assert_int_equal(atomic_load(&n), 2);
    sl__ctx_free(c);
    sl_scheduler_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_header),
        cmocka_unit_test(test_fail_first_error_wins),
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_emit_stop_pending),
        cmocka_unit_test(test_state_keys),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
