/*
 * test_batch.c - values, batches (growing event array, arena, refcount), table metadata refs
 * held by batches, and the host table seen through a standalone context (state, metrics, fail).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <stdlib.h>

#include "host.h"

static void test_values(void **state)
{
    /* value.h says 32 bytes; with sl_temporal in the union it is 40 on LP64. Keep it small. */
    assert_true(sizeof(sl_value) <= 40);
    sl_value v = sl_value_int(-5);
    assert_int_equal(v.type, SL_V_INT);
    assert_int_equal(v.v.i, -5);
    v = sl_value_uint(UINT64_MAX);
    assert_int_equal(v.type, SL_V_UINT);
    assert_true(v.v.u == UINT64_MAX);
    v = sl_value_double(0.5);
    assert_true(v.type == SL_V_DOUBLE && v.v.d == 0.5);
    v = sl_value_str(SL_V_STRING, "abc", 3, 45);
    assert_int_equal(v.len, 3);
    assert_int_equal(v.charset, 45);
    assert_memory_equal(v.v.s, "abc", 3);
    assert_int_equal(sl_value_null().type, SL_V_NULL);
}

/* ABI 1.5 put ddl_mode in the padding byte after kind: the event's size and the offsets of the
 * fields an older plugin reads stay as they were, and batch_push zeroes it (the default mode). */
static void test_event_layout(void **state)
{
    assert_int_equal(offsetof(sl_event, ddl_mode), 1);
    assert_int_equal(offsetof(sl_event, flags), 2);
    assert_int_equal(offsetof(sl_event, ncols), 4);
    assert_int_equal(offsetof(sl_event, schema), 8);
    if (sizeof(void *) == 8)
        assert_int_equal(sizeof(sl_event), 152);   /* as with ABI 1.4 on LP64 */
    const sl_host *h = sl__host();
    sl_batch *b = h->batch_new(NULL, 1);
    sl_event *ev = h->batch_push(b, SL_EV_DDL);
    assert_int_equal(ev->ddl_mode, 0);
    h->batch_unref(b);
}

static void test_batch_grow_and_arena(void **state)
{
    const sl_host *h = sl__host();
    sl_batch *b = h->batch_new(NULL, 2);
    assert_non_null(b);
    assert_int_equal(b->cap, 2);
    for (uint32_t i = 0; i < 1000; i++) {
        sl_event *ev = h->batch_push(b, SL_EV_UPDATE);
        assert_non_null(ev);
        assert_int_equal(ev->kind, SL_EV_UPDATE);
        assert_null(ev->after);
        ev->seq = i;
        char buf[32];
        int n = snprintf(buf, sizeof buf, "row-%u", i);
        ev->table = h->batch_strndup(b, buf, (size_t)n);
        ev->after = h->batch_alloc(b, 3 * sizeof(sl_value));
        assert_true(((uintptr_t)ev->after % 16) == 0);
        ev->after[2] = sl_value_int(i);
    }
    assert_int_equal(b->n, 1000);
    assert_true(b->cap >= 1000);
    /* A block bigger than any chunk, then small ones again. */
    char *big = h->batch_alloc(b, 3u << 20);
    memset(big, 'x', 3u << 20);
    char *small = h->batch_strndup(b, "tail\0ignored", 4);
    assert_string_equal(small, "tail");
    for (uint32_t i = 0; i < 1000; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "row-%u", i);
        assert_string_equal(b->events[i].table, buf);
        assert_int_equal(b->events[i].after[2].v.i, i);
        assert_int_equal(b->events[i].seq, i);
    }
    assert_true(b->bytes >= (3u << 20));
    h->batch_ref(b);
    assert_int_equal(sl__batch_refs(b), 2);
    h->batch_unref(b);
    assert_int_equal(sl__batch_refs(b), 1);
    h->batch_unref(b);   /* freed: ASan reports any leak or use after free */
}

static void test_table_refs(void **state)
{
    const sl_host *h = sl__host();
    assert_true(SL_HOST_HAS(h, table_alloc));
    assert_true(SL_HOST_HAS(h, state_get));
    sl_table *t = h->table_new(3);
    assert_int_equal(t->refcnt, 1);
    assert_int_equal(t->ncols, 3);
    t->schema = h->table_strdup(t, "db");
    t->name = h->table_strdup(t, "users");
    t->cols[0].name = h->table_strdup(t, "id");
    t->cols[0].flags = SL_COL_PK;
    t->npk = 1;
    t->pk = h->table_alloc(t, sizeof(uint32_t));
    t->pk[0] = 0;
    t->nkeys = 1;
    t->keys = h->table_alloc(t, sizeof(uint32_t *));
    t->keys[0] = h->table_alloc(t, 2 * sizeof(uint32_t));
    t->keys[0][0] = 1;
    t->keys[0][1] = UINT32_MAX;

    sl_table *t2 = h->table_new(0);
    sl_batch *b = h->batch_new(NULL, 0);
    for (int i = 0; i < 10; i++) {
        sl_event *ev = h->batch_push(b, SL_EV_INSERT);
        h->batch_set_meta(b, ev, (i % 5 == 4) ? t2 : t);
    }
    assert_ptr_equal(b->events[0].meta, t);
    assert_ptr_equal(b->events[4].meta, t2);
    assert_true(t->refcnt >= 2);
    /* The producer drops its own references: the batch keeps the tables alive. */
    h->table_unref(t);
    h->table_unref(t2);
    assert_string_equal(b->events[8].meta->name, "users");
    assert_int_equal(b->events[8].meta->keys[0][1], UINT32_MAX);
    h->batch_ref(b);
    h->batch_unref(b);
    assert_string_equal(b->events[0].meta->schema, "db");
    h->batch_unref(b);   /* last reference: tables go with it */
}

static int failed_code;
static void on_failed(void *owner, sl_ctx *ctx, int code) { failed_code = code; }

static void test_ctx(void **state)
{
    const sl_host *h = sl__host();
    sl_state_store *st = sl__memstate_new();
    sl__ctx_hooks hooks = { .failed = on_failed };
    sl_ctx *c = sl__ctx_new("task/src/stage", NULL, st, NULL, &hooks);
    assert_int_equal(h->abi_version, SL_ABI_VERSION);
    assert_int_equal(h->struct_size, sizeof(sl_host));

    assert_null(h->state_get(c, "pos"));
    assert_int_equal(h->state_put(c, "pos", "mysql-bin.000001:4"), 0);
    assert_int_equal(h->state_put(c, "pos", "mysql-bin.000002:120"), 0);
    char *v = h->state_get(c, "pos");
    assert_string_equal(v, "mysql-bin.000002:120");
    h->free(v);
    /* Keys are namespaced by the instance's prefix. */
    v = st->get(st->ud, "task/src/stage/pos");
    assert_string_equal(v, "mysql-bin.000002:120");
    free(v);

    h->metric_add(c, "rows", 5);
    h->metric_add(c, "rows", 2);
    h->metric_set(c, "lag", 9);
    char *m = sl__ctx_metrics_json(c);
    assert_string_equal(m, "{\"rows\":7,\"lag\":9}");
    free(m);

    assert_int_equal(h->should_stop(c), 0);
    sl_batch *b = h->batch_new(c, 1);
    assert_int_equal(h->emit(c, b), 0);   /* no owner: dropped */

    h->log(c, SL_LOG_DEBUG, "not shown at the default level %d", 1);
    assert_int_equal((h->fail)(c, SL_EDB, "duplicate key %d", 7), SL_EDB);
    assert_int_equal((h->fail)(c, SL_EIO, "second"), SL_EIO);
    assert_int_equal(failed_code, SL_EIO);
    sl_error e;
    sl__ctx_error(c, &e);
    assert_int_equal(e.code, SL_EDB);               /* the first failure is kept */
    assert_string_equal(e.msg, "duplicate key 7");
    sl__ctx_clear_error(c);
    sl__ctx_error(c, &e);
    assert_int_equal(e.code, 0);
    sl__ctx_free(c);
    sl__memstate_free(st);

    c = sl__ctx_new("x", NULL, NULL, NULL, NULL);
    assert_int_equal(h->state_put(c, "k", "v"), SL_ENOTSUP);
    assert_null(h->state_get(c, "k"));
    sl__ctx_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_event_layout),
        cmocka_unit_test(test_batch_grow_and_arena),
        cmocka_unit_test(test_table_refs),
        cmocka_unit_test(test_ctx),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
