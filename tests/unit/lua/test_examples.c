/*
 * test_examples.c - the logic of each script in examples/lua/ on constructed events: masking
 * e-mail addresses, dropping soft-deleted rows (and turning soft deletes into deletes), a derived
 * column, routing by a column's value.
 */
#include "lt.h"

#include <stdio.h>

static char *slurp(const char *name, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", SLUICE_EXAMPLES_DIR, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    char *buf = malloc(1 << 16);
    *len = fread(buf, 1, (1 << 16) - 1, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

typedef struct ex {
    sl_lua *s;
    int entry;
    lt_mem m;
    sl_lua_writer w;
} ex;

static void ex_open(ex *x, const char *file)
{
    size_t len;
    sl_error err = {0};
    char *src = slurp(file, &len);
    const char *const entries[] = { "on_row", NULL };
    if (sl_lua_check(src, len, file, entries, &err))
        fail_msg("check: %s", err.msg);
    memset(x, 0, sizeof *x);
    assert_int_equal(sl_lua_new(NULL, &x->s, &err), 0);
    int id = sl_lua_load(x->s, src, len, file, &err);
    assert_true(id >= 0);
    x->entry = sl_lua_entry(x->s, id, "on_row", &err);
    assert_true(x->entry >= 0);
    x->w = lt_writer(&x->m);
    free(src);
}

static int ex_call(ex *x, sl_event *ev)
{
    sl_error err = {0};
    int rc = sl_lua_call(x->s, x->entry, ev, &x->w, &err);
    if (rc < 0)
        fail_msg("call: %s", err.msg);
    return rc;
}

static void ex_close(ex *x)
{
    sl_lua_free(x->s);
    lt_free(&x->m);
}

static sl_value str(const char *s) { return sl_value_str(SL_V_STRING, s, (uint32_t)strlen(s), 45); }

static void assert_str(const sl_value *v, const char *s)
{
    assert_int_equal(v->type, SL_V_STRING);
    if (v->len != strlen(s) || memcmp(v->v.s, s, v->len) != 0)
        fail_msg("'%.*s' != '%s'", (int)v->len, v->v.s, s);
}

/* ---- mask_email.lua ---- */

static sl_column ucols[] = { { .name = "id", .mysql_type = 3 }, { .name = "email", .mysql_type = 15, .charset = 45 } };
static sl_table users = { .ncols = 2, .schema = "shop", .name = "users", .cols = ucols };

static void test_mask_email(void **st)
{
    ex x;
    ex_open(&x, "mask_email.lua");
    sl_value a[2] = { sl_value_int(1), str("alice@example.com") };
    sl_event ev = { .kind = SL_EV_INSERT, .schema = "shop", .table = "users", .meta = &users, .ncols = 2, .after = a };
    assert_int_equal(ex_call(&x, &ev), 0);
    assert_str(&ev.after[1], "a****@example.com");
    assert_str(&a[1], "alice@example.com");

    /* update: both images masked the same way, so the target row is found */
    sl_value b2[2] = { sl_value_int(1), str("alice@example.com") }, a2[2] = { sl_value_int(1), str("bob@example.org") };
    sl_event up = { .kind = SL_EV_UPDATE, .schema = "shop", .table = "users", .meta = &users, .ncols = 2,
                    .before = b2, .after = a2 };
    assert_int_equal(ex_call(&x, &up), 0);
    assert_str(&up.before[1], "a****@example.com");
    assert_str(&up.after[1], "b****@example.org");

    /* NULL and non-addresses are left alone */
    sl_value a3[2] = { sl_value_int(2), sl_value_null() }, a4[2] = { sl_value_int(3), str("not an address") };
    sl_event n = { .kind = SL_EV_INSERT, .schema = "shop", .table = "users", .meta = &users, .ncols = 2, .after = a3 };
    assert_int_equal(ex_call(&x, &n), 0);
    assert_ptr_equal(n.after, a3);
    n.after = a4;
    assert_int_equal(ex_call(&x, &n), 0);
    assert_str(&n.after[1], "not an address");
    ex_close(&x);
}

/* ---- drop_soft_deleted.lua ---- */

static sl_column pcols[] = { { .name = "id", .mysql_type = 3 }, { .name = "deleted_at", .mysql_type = 18, .flags = SL_COL_NULLABLE } };
static sl_table posts = { .ncols = 2, .schema = "blog", .name = "posts", .cols = pcols };

static sl_value dt(void)
{
    sl_value v = { .type = SL_V_DATETIME };
    v.v.t = (sl_temporal){ .year = 2024, .month = 5, .day = 1, .hour = 10 };
    return v;
}

static void test_drop_soft_deleted(void **st)
{
    ex x;
    ex_open(&x, "drop_soft_deleted.lua");
    sl_value live[2] = { sl_value_int(1), sl_value_null() }, gone[2] = { sl_value_int(1), dt() };
    sl_event ev = { .kind = SL_EV_INSERT, .schema = "blog", .table = "posts", .meta = &posts, .ncols = 2, .after = live };
    assert_int_equal(ex_call(&x, &ev), 0);
    ev.after = gone;
    assert_int_equal(ex_call(&x, &ev), SL_DROP);

    /* update that soft-deletes: becomes a delete of the before image */
    sl_event up = { .kind = SL_EV_UPDATE, .schema = "blog", .table = "posts", .meta = &posts, .ncols = 2,
                    .before = live, .after = gone };
    assert_int_equal(ex_call(&x, &up), 0);
    assert_int_equal(up.kind, SL_EV_DELETE);
    assert_ptr_equal(up.before, live);
    assert_null(up.after);
    /* update that restores: becomes an insert of the after image */
    sl_event re = { .kind = SL_EV_UPDATE, .schema = "blog", .table = "posts", .meta = &posts, .ncols = 2,
                    .before = gone, .after = live };
    assert_int_equal(ex_call(&x, &re), 0);
    assert_int_equal(re.kind, SL_EV_INSERT);
    assert_null(re.before);
    /* update of a row that stays deleted, delete of a deleted row: dropped */
    sl_event both = { .kind = SL_EV_UPDATE, .schema = "blog", .table = "posts", .meta = &posts, .ncols = 2,
                      .before = gone, .after = gone };
    assert_int_equal(ex_call(&x, &both), SL_DROP);
    sl_event del = { .kind = SL_EV_DELETE, .schema = "blog", .table = "posts", .meta = &posts, .ncols = 2, .before = gone };
    assert_int_equal(ex_call(&x, &del), SL_DROP);
    del.before = live;
    assert_int_equal(ex_call(&x, &del), 0);
    /* plain update of a live row: kept as is */
    sl_event pl = { .kind = SL_EV_UPDATE, .schema = "blog", .table = "posts", .meta = &posts, .ncols = 2,
                    .before = live, .after = live };
    assert_int_equal(ex_call(&x, &pl), 0);
    assert_int_equal(pl.kind, SL_EV_UPDATE);
    ex_close(&x);
}

/* ---- computed_column.lua ---- */

static sl_column ccols[] = { { .name = "id", .mysql_type = 3 }, { .name = "first_name", .mysql_type = 15, .charset = 45 },
                             { .name = "last_name", .mysql_type = 15, .charset = 45 } };
static sl_table customers = { .ncols = 3, .schema = "crm", .name = "customers", .cols = ccols };

static void test_computed_column(void **st)
{
    ex x;
    ex_open(&x, "computed_column.lua");
    sl_value a[3] = { sl_value_int(1), str("Ada"), str("Lovelace") };
    sl_event ev = { .kind = SL_EV_INSERT, .schema = "crm", .table = "customers", .meta = &customers, .ncols = 3, .after = a };
    assert_int_equal(ex_call(&x, &ev), 0);
    assert_int_equal(x.m.extend_calls, 1);
    assert_string_equal(x.m.ext_names[0], "full_name");
    assert_int_equal(ev.ncols, 4);
    assert_string_equal(ev.meta->cols[3].name, "full_name");
    assert_str(&ev.after[3], "Ada Lovelace");
    assert_str(&ev.after[1], "Ada");

    /* update: the after image gets the value, the before image NULL (rows are found by key) */
    sl_value b2[3] = { sl_value_int(1), str("Ada"), str("Lovelace") }, a2[3] = { sl_value_int(1), str("Ada"), sl_value_null() };
    sl_event up = { .kind = SL_EV_UPDATE, .schema = "crm", .table = "customers", .meta = &customers, .ncols = 3,
                    .before = b2, .after = a2 };
    assert_int_equal(ex_call(&x, &up), 0);
    assert_int_equal(up.ncols, 4);
    assert_str(&up.after[3], "Ada");
    assert_int_equal(up.before[3].type, SL_V_NULL);

    /* delete: nothing derived, nothing widened */
    sl_event del = { .kind = SL_EV_DELETE, .schema = "crm", .table = "customers", .meta = &customers, .ncols = 3, .before = b2 };
    assert_int_equal(ex_call(&x, &del), 0);
    assert_int_equal(del.ncols, 3);
    ex_close(&x);
}

/* ---- route_by_value.lua ---- */

static sl_column ocols[] = { { .name = "id", .mysql_type = 3 }, { .name = "region", .mysql_type = 15, .charset = 45 } };
static sl_table orders = { .ncols = 2, .schema = "shop", .name = "orders", .cols = ocols };

static void test_route_by_value(void **st)
{
    ex x;
    ex_open(&x, "route_by_value.lua");
    sl_value eu[2] = { sl_value_int(1), str("EU") }, asia[2] = { sl_value_int(2), str("asia") }, us[2] = { sl_value_int(3), str("us") };
    sl_event ev = { .kind = SL_EV_INSERT, .schema = "shop", .table = "orders", .target_schema = "dw",
                    .target_table = "orders", .meta = &orders, .ncols = 2, .after = eu };
    assert_int_equal(ex_call(&x, &ev), 0);
    assert_string_equal(ev.target_table, "orders_eu");
    assert_string_equal(ev.target_schema, "dw");
    sl_event a = { .kind = SL_EV_INSERT, .schema = "shop", .table = "orders", .meta = &orders, .ncols = 2, .after = asia };
    assert_int_equal(ex_call(&x, &a), 0);
    assert_null(a.target_table);          /* unchanged: still where the task's routes put it */
    sl_event d = { .kind = SL_EV_DELETE, .schema = "shop", .table = "orders", .meta = &orders, .ncols = 2, .before = us };
    assert_int_equal(ex_call(&x, &d), 0);
    assert_string_equal(d.target_table, "orders_us");
    ex_close(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mask_email),
        cmocka_unit_test(test_drop_soft_deleted),
        cmocka_unit_test(test_computed_column),
        cmocka_unit_test(test_route_by_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
