/*
 * test_bind.c - events and values seen from Lua: every value type round-trips exactly through a
 * script that reassigns every column, Lua sees the documented representations, changes are
 * copy-on-write and applied only when the call succeeds, derived columns, routing, type changes,
 * DDL, stale proxies and bad return values.
 */
#include "lt.h"

#include <stdio.h>

enum { C_I, C_U, C_U2, C_F, C_D, C_DEC, C_DATE, C_TIME, C_DT, C_TS, C_Y, C_S, C_BIN, C_J, C_BIT,
       C_EN, C_SET, C_GEO, C_N, NCOL };

static sl_column cols[NCOL] = {
    [C_I] = { .name = "i", .mysql_type = 3 },
    [C_U] = { .name = "u", .mysql_type = 8, .flags = SL_COL_UNSIGNED },
    [C_U2] = { .name = "u2", .mysql_type = 8, .flags = SL_COL_UNSIGNED },
    [C_F] = { .name = "f", .mysql_type = 4 },
    [C_D] = { .name = "d", .mysql_type = 5 },
    [C_DEC] = { .name = "dec", .mysql_type = 246, .scale = 4 },
    [C_DATE] = { .name = "date", .mysql_type = 10 },
    [C_TIME] = { .name = "time", .mysql_type = 19, .scale = 6 },
    [C_DT] = { .name = "dt", .mysql_type = 18, .scale = 6 },
    [C_TS] = { .name = "ts", .mysql_type = 17, .scale = 3 },
    [C_Y] = { .name = "y", .mysql_type = 13 },
    [C_S] = { .name = "s", .mysql_type = 15, .charset = 45 },
    [C_BIN] = { .name = "bin", .mysql_type = 252, .charset = 63, .flags = SL_COL_BINARY },
    [C_J] = { .name = "j", .mysql_type = 245, .charset = 46 },
    [C_BIT] = { .name = "bit", .mysql_type = 16, .length = 3 },
    [C_EN] = { .name = "en", .mysql_type = 247, .charset = 45 },
    [C_SET] = { .name = "set", .mysql_type = 248, .charset = 45 },
    [C_GEO] = { .name = "geo", .mysql_type = 255, .charset = 63 },
    [C_N] = { .name = "n", .mysql_type = 3, .flags = SL_COL_NULLABLE },
};
static sl_table table = { .ncols = NCOL, .schema = "db", .name = "t", .cols = cols };

static const char GEO[25] = "\0\0\0\0\1\1\0\0\0\0\0\0\0\0\0\360?\0\0\0\0\0\0\0@";

static void fill(sl_value *v)
{
    memset(v, 0, NCOL * sizeof *v);
    v[C_I] = sl_value_int(-5);
    v[C_U] = sl_value_uint(UINT64_MAX);
    v[C_U2] = sl_value_uint(7);
    v[C_F].type = SL_V_FLOAT; v[C_F].v.f = 1.1f;
    v[C_D] = sl_value_double(0.1);
    v[C_DEC] = sl_value_str(SL_V_DECIMAL, "-12.3400", 8, 0); v[C_DEC].dec = 4;
    v[C_DATE].type = SL_V_DATE; v[C_DATE].v.t = (sl_temporal){ .year = 2024, .month = 2, .day = 29 };
    v[C_TIME].type = SL_V_TIME; v[C_TIME].dec = 6;
    v[C_TIME].v.t = (sl_temporal){ .hour = 838, .minute = 59, .second = 59, .usec = 1, .neg = 1 };
    v[C_DT].type = SL_V_DATETIME; v[C_DT].dec = 6;
    v[C_DT].v.t = (sl_temporal){ .year = 2024, .month = 2, .day = 29, .hour = 13, .minute = 14,
                                 .second = 15, .usec = 123456 };
    v[C_TS].type = SL_V_TIMESTAMP; v[C_TS].dec = 3; v[C_TS].v.ts.sec = 1700000000; v[C_TS].v.ts.usec = 500000;
    v[C_Y] = sl_value_int(2155); v[C_Y].type = SL_V_YEAR;
    v[C_S] = sl_value_str(SL_V_STRING, "h\xc3\xa9llo\0x", 8, 45);
    v[C_BIN] = sl_value_str(SL_V_BINARY, "\0\xff\x01", 3, 63);
    v[C_J] = sl_value_str(SL_V_JSON, "{\"a\": [1, 2]}", 13, 46);
    v[C_BIT] = sl_value_uint(5); v[C_BIT].type = SL_V_BIT; v[C_BIT].bits = 3;
    v[C_EN].type = SL_V_ENUM; v[C_EN].v.e.u = 2; v[C_EN].v.e.s = "b"; v[C_EN].len = 1; v[C_EN].charset = 45;
    v[C_SET].type = SL_V_SET; v[C_SET].v.e.u = 5; v[C_SET].v.e.s = "a,c"; v[C_SET].len = 3; v[C_SET].charset = 45;
    v[C_GEO] = sl_value_str(SL_V_GEOMETRY, GEO, 25, 63);
    v[C_N] = sl_value_null();
}

/* Exact equality of two values, field by field for the value's type. */
static void assert_same(const sl_value *a, const sl_value *b, const char *col)
{
    if (a->type != b->type)
        fail_msg("%s: type %d != %d", col, a->type, b->type);
    switch (a->type) {
    case SL_V_NULL: break;
    case SL_V_INT: case SL_V_YEAR: assert_int_equal(a->v.i, b->v.i); break;
    case SL_V_UINT: assert_true(a->v.u == b->v.u); break;
    case SL_V_BIT: assert_true(a->v.u == b->v.u); assert_int_equal(a->bits, b->bits); break;
    case SL_V_FLOAT: assert_memory_equal(&a->v.f, &b->v.f, sizeof(float)); break;
    case SL_V_DOUBLE: assert_memory_equal(&a->v.d, &b->v.d, sizeof(double)); break;
    case SL_V_DATE: case SL_V_TIME: case SL_V_DATETIME:
        assert_int_equal(a->v.t.year, b->v.t.year);
        assert_int_equal(a->v.t.month, b->v.t.month);
        assert_int_equal(a->v.t.day, b->v.t.day);
        assert_int_equal(a->v.t.hour, b->v.t.hour);
        assert_int_equal(a->v.t.minute, b->v.t.minute);
        assert_int_equal(a->v.t.second, b->v.t.second);
        assert_int_equal(a->v.t.usec, b->v.t.usec);
        assert_int_equal(a->v.t.neg, b->v.t.neg);
        assert_int_equal(a->dec, b->dec);
        break;
    case SL_V_TIMESTAMP:
        assert_int_equal(a->v.ts.sec, b->v.ts.sec);
        assert_int_equal(a->v.ts.usec, b->v.ts.usec);
        assert_int_equal(a->dec, b->dec);
        break;
    case SL_V_ENUM: case SL_V_SET:
        assert_true(a->v.e.u == b->v.e.u);
        assert_int_equal(a->len, b->len);
        assert_memory_equal(a->v.e.s, b->v.e.s, a->len);
        break;
    default:
        if (a->len != b->len)
            fail_msg("%s: len %u != %u", col, a->len, b->len);
        assert_memory_equal(a->v.s, b->v.s, a->len);
        assert_int_equal(a->charset, b->charset);
        assert_int_equal(a->dec, b->dec);
        break;
    }
}

static int run(const char *src, const char *fn, sl_event *ev, lt_mem *m, sl_error *err)
{
    int entry;
    sl_lua *s = lt_state(src, fn, &entry, NULL);
    sl_lua_writer w = lt_writer(m);
    memset(err, 0, sizeof *err);
    int rc = sl_lua_call(s, entry, ev, &w, err);
    sl_lua_free(s);
    return rc;
}

static void make_update(sl_event *ev, sl_value *before, sl_value *after)
{
    fill(before);
    fill(after);
    memset(ev, 0, sizeof *ev);
    ev->kind = SL_EV_UPDATE;
    ev->schema = "db";
    ev->table = "t";
    ev->meta = &table;
    ev->ncols = NCOL;
    ev->before = before;
    ev->after = after;
}

static void test_untouched_is_not_copied(void **st)
{
    sl_value b[NCOL], a[NCOL];
    sl_event ev;
    lt_mem m = {0};
    sl_error err;
    make_update(&ev, b, a);
    assert_int_equal(run("function on_row(ev) local x = ev.after.s return true end", "on_row", &ev, &m, &err), 0);
    assert_ptr_equal(ev.after, a);
    assert_ptr_equal(ev.before, b);
    assert_int_equal(m.n, 0);          /* nothing allocated for an untouched event */
    lt_free(&m);
}

static void test_every_type_round_trips(void **st)
{
    sl_value b[NCOL], a[NCOL], ref[NCOL];
    sl_event ev;
    lt_mem m = {0};
    sl_error err;
    make_update(&ev, b, a);
    fill(ref);
    int rc = run("function on_row(ev)\n"
                 "  local n = 0\n"
                 "  for k, v in pairs(ev.after) do ev.after[k] = v; n = n + 1 end\n"
                 "  for k, v in pairs(ev.before) do ev.before[k] = v end\n"
                 "  assert(n == #ev.after)\n"
                 "  return ev\n"
                 "end", "on_row", &ev, &m, &err);
    if (rc)
        fail_msg("%s", err.msg);
    assert_ptr_not_equal(ev.after, a);   /* copied on write */
    assert_int_equal(ev.ncols, NCOL);
    for (int i = 0; i < NCOL; i++) {
        assert_same(&ev.after[i], &ref[i], cols[i].name);
        assert_same(&ev.before[i], &ref[i], cols[i].name);
        assert_same(&a[i], &ref[i], cols[i].name);     /* the original image is untouched */
    }
    lt_free(&m);
}

static void test_lua_representations(void **st)
{
    sl_value b[NCOL], a[NCOL];
    sl_event ev;
    lt_mem m = {0};
    sl_error err;
    make_update(&ev, b, a);
    int rc = run("function on_row(ev)\n"
                 "  local r = ev.after\n"
                 "  assert(ev.type == 'update' and ev.schema == 'db' and ev.table == 't')\n"
                 "  assert(ev.target_schema == 'db' and ev.target_table == 't')\n"
                 "  assert(math.type(r.i) == 'integer' and r.i == -5)\n"
                 "  assert(sluice.type(r.u) == 'uint' and tostring(r.u) == '18446744073709551615')\n"
                 "  assert(math.type(r.u2) == 'integer' and r.u2 == 7)\n"
                 "  assert(math.type(r.f) == 'float' and math.abs(r.f - 1.1) < 1e-6)\n"
                 "  assert(r.d == 0.1)\n"
                 "  assert(sluice.type(r.dec) == 'decimal' and tostring(r.dec) == '-12.3400' and r.dec.scale == 4)\n"
                 "  assert(tostring(r.date) == '2024-02-29' and r.date.year == 2024 and r.date.day == 29)\n"
                 "  assert(tostring(r.time) == '-838:59:59.000001', tostring(r.time))\n"
                 "  assert(tostring(r.dt) == '2024-02-29 13:14:15.123456' and r.dt.usec == 123456)\n"
                 "  assert(tostring(r.ts) == '2023-11-14 22:13:20.500' and r.ts.sec == 1700000000, tostring(r.ts))\n"
                 "  assert(r.y == 2155)\n"
                 "  assert(type(r.s) == 'string' and r.s == 'h\\xc3\\xa9llo\\0x' and #r.s == 8)\n"
                 "  assert(sluice.type(r.bin) == 'binary' and #r.bin == 3 and tostring(r.bin) == '\\0\\xff\\x01')\n"
                 "  assert(sluice.type(r.j) == 'json' and tostring(r.j) == '{\"a\": [1, 2]}')\n"
                 "  assert(sluice.type(r.bit) == 'bit' and r.bit.value == 5 and r.bit.bits == 3)\n"
                 "  assert(tostring(r.en) == 'b' and r.en.value == 2 and r.en.label == 'b')\n"
                 "  assert(tostring(r.set) == 'a,c' and r.set.value == 5)\n"
                 "  assert(sluice.type(r.geo) == 'geometry' and #r.geo == 25)\n"
                 "  assert(r.n == nil and r.nosuch == nil)\n"
                 "  assert(r.I == -5)  -- column names are case-insensitive\n"
                 "  assert(r.dec == ev.before.dec and r.dec ~= r.date)\n"
                 "  assert('x' .. r.dec == 'x-12.3400')\n"
                 "  assert(sluice.decimal('1.50') == sluice.decimal('1.50'))\n"
                 "  return true\n"
                 "end", "on_row", &ev, &m, &err);
    if (rc)
        fail_msg("%s", err.msg);
    lt_free(&m);
}

static void test_assignments_convert(void **st)
{
    sl_value b[NCOL], a[NCOL];
    sl_event ev;
    lt_mem m = {0};
    sl_error err;
    make_update(&ev, b, a);
    int rc = run("function on_row(ev)\n"
                 "  local r = ev.after\n"
                 "  r.s = 'new'; r.i = 42; r.u2 = 9; r.dec = '3.5'; r.f = 2.5; r.d = 3\n"
                 "  r.n = 1; r.bin = 'raw'; r.j = '[]'; r.dec2 = nil\n"
                 "  assert(r.s == 'new' and r.i == 42 and tostring(r.dec) == '3.5')\n"
                 "  return true\n"
                 "end", "on_row", &ev, &m, &err);
    if (rc)
        fail_msg("%s", err.msg);
    assert_int_equal(ev.after[C_S].type, SL_V_STRING);
    assert_int_equal(ev.after[C_S].len, 3);
    assert_memory_equal(ev.after[C_S].v.s, "new", 3);
    assert_int_equal(ev.after[C_S].charset, 45);
    assert_int_equal(ev.after[C_I].type, SL_V_INT);
    assert_int_equal(ev.after[C_I].v.i, 42);
    assert_int_equal(ev.after[C_U2].type, SL_V_UINT);
    assert_int_equal(ev.after[C_DEC].type, SL_V_DECIMAL);
    assert_int_equal(ev.after[C_DEC].dec, 1);
    assert_int_equal(ev.after[C_F].type, SL_V_FLOAT);
    assert_true(ev.after[C_F].v.f == 2.5f);
    assert_int_equal(ev.after[C_D].type, SL_V_DOUBLE);
    assert_true(ev.after[C_D].v.d == 3.0);
    assert_int_equal(ev.after[C_N].type, SL_V_INT);   /* a NULL column: kind from metadata */
    assert_int_equal(ev.after[C_BIN].type, SL_V_BINARY);
    assert_int_equal(ev.after[C_J].type, SL_V_JSON);
    assert_int_equal(ev.ncols, NCOL + 1);              /* dec2 = nil: a derived NULL column */
    assert_int_equal(ev.after[NCOL].type, SL_V_NULL);
    assert_int_equal(ev.before[NCOL].type, SL_V_NULL); /* both images widened */
    sl_value ref[NCOL];
    fill(ref);
    for (int i = 0; i < NCOL; i++)                     /* before's values untouched */
        assert_same(&ev.before[i], &ref[i], cols[i].name);
    lt_free(&m);
}

static void test_error_leaves_event_unchanged(void **st)
{
    sl_value b[NCOL], a[NCOL];
    sl_event ev;
    lt_mem m = {0};
    sl_error err;
    make_update(&ev, b, a);
    assert_int_equal(run("function on_row(ev)\n  ev.after.s = 'x'\n  ev.target_table = 'z'\n"
                         "  error('boom')\nend", "on_row", &ev, &m, &err), SL_ELUA);
    assert_string_equal(err.msg, "t.lua:4: boom");
    assert_ptr_equal(ev.after, a);
    assert_null(ev.target_table);
    /* a bad value for a column: the message names the script line and the column */
    assert_int_equal(run("function on_row(ev)\n\n  ev.after.dec = 'abc'\nend", "on_row", &ev, &m, &err), SL_ELUA);
    assert_string_equal(err.msg, "t.lua:3: column 'dec': 'abc' is not a decimal number");
    assert_int_equal(run("function on_row(ev)\n  ev.after.s = {}\nend", "on_row", &ev, &m, &err), SL_ELUA);
    assert_string_equal(err.msg, "t.lua:2: column 's': cannot store a table value");
    assert_int_equal(run("function on_row(ev)\n  ev.schema = 'x'\nend", "on_row", &ev, &m, &err), SL_ELUA);
    assert_string_equal(err.msg, "t.lua:2: ev.schema is read-only");
    assert_int_equal(run("function on_row(ev) return 5 end", "on_row", &ev, &m, &err), SL_ELUA);
    assert_non_null(strstr(err.msg, "on_row returned a number"));
    assert_int_equal(run("function on_row(ev) error({}) end", "on_row", &ev, &m, &err), SL_ELUA);
    assert_string_equal(err.msg, "(error object is a table value)");
    lt_free(&m);
}

static void test_stale_proxy(void **st)
{
    sl_value b[NCOL], a[NCOL];
    sl_event ev;
    lt_mem m = {0};
    sl_error err = {0};
    make_update(&ev, b, a);
    int e1, e2;
    sl_lua *s = lt_state("function keep(ev) saved = ev.after return true end\n"
                         "function use(ev) return saved.i == -5 end", "keep", &e1, NULL);
    e2 = sl_lua_entry(s, 0, "use", &err);
    assert_true(e2 >= 0);
    sl_lua_writer w = lt_writer(&m);
    assert_int_equal(sl_lua_call(s, e1, &ev, &w, &err), 0);
    assert_int_equal(sl_lua_call(s, e2, &ev, &w, &err), SL_ELUA);
    assert_string_equal(err.msg, "t.lua:2: the event is only valid during the call that received it");
    sl_lua_free(s);
    lt_free(&m);
}

static void test_route_and_type_change(void **st)
{
    sl_value b[NCOL], a[NCOL];
    sl_event ev;
    lt_mem m = {0};
    sl_error err;
    make_update(&ev, b, a);
    ev.target_schema = "tdb";
    assert_int_equal(run("function on_row(ev)\n"
                         "  assert(ev.target_schema == 'tdb')\n"
                         "  ev.target_table = ev.target_table .. '_x'\n"
                         "  assert(ev.target_table == 't_x')\n"
                         "  ev.type = 'delete'\n"
                         "  assert(ev.type == 'delete')\n"
                         "end", "on_row", &ev, &m, &err), 0);
    assert_string_equal(ev.target_table, "t_x");
    assert_string_equal(ev.target_schema, "tdb");
    assert_int_equal(ev.kind, SL_EV_DELETE);
    assert_null(ev.after);
    assert_ptr_equal(ev.before, b);
    /* an insert cannot become anything else */
    ev.kind = SL_EV_INSERT;
    ev.after = a;
    ev.before = NULL;
    assert_int_equal(run("function on_row(ev)\n  ev.type = 'delete'\nend", "on_row", &ev, &m, &err), SL_ELUA);
    assert_non_null(strstr(err.msg, "t.lua:2: ev.type of an insert event cannot become 'delete'"));
    lt_free(&m);
}

static void test_ddl(void **st)
{
    sl_event ev = { .kind = SL_EV_DDL, .schema = "db", .table = "t", .ddl = "ALTER TABLE t ADD c INT",
                    .ddl_schema = "db" };
    lt_mem m = {0};
    sl_error err;
    assert_int_equal(run("function on_ddl(ev)\n"
                         "  assert(ev.type == 'ddl' and ev.after == nil and ev.ddl_schema == 'db')\n"
                         "  ev.ddl = ev.ddl .. ' DEFAULT 0'\n"
                         "  return true\n"
                         "end", "on_ddl", &ev, &m, &err), 0);
    assert_string_equal(ev.ddl, "ALTER TABLE t ADD c INT DEFAULT 0");
    assert_int_equal(run("function on_ddl(ev) return not ev.ddl:find('^ALTER') end", "on_ddl", &ev, &m, &err), SL_DROP);
    /* the source session's modes the text reads in, as sql_mode words ("" for none) */
    assert_int_equal(run("function on_ddl(ev) assert(ev.sql_mode == '') end", "on_ddl", &ev, &m, &err), 0);
    ev.ddl_mode = SL_DDLM_ANSI_QUOTES | SL_DDLM_NO_BACKSLASH_ESCAPES;
    assert_int_equal(run("function on_ddl(ev)\n"
                         "  assert(ev.sql_mode == 'ANSI_QUOTES,NO_BACKSLASH_ESCAPES', ev.sql_mode)\n"
                         "end", "on_ddl", &ev, &m, &err), 0);
    lt_free(&m);
}

static void test_derived_column_refused_without_extend(void **st)
{
    sl_value b[NCOL], a[NCOL];
    sl_event ev;
    lt_mem m = {0};
    sl_error err = {0};
    make_update(&ev, b, a);
    int entry;
    sl_lua *s = lt_state("function on_row(ev) ev.after.extra = 1 end", "on_row", &entry, NULL);
    sl_lua_writer w = { .ud = &m, .alloc = lt_alloc, .extend = NULL };
    assert_int_equal(sl_lua_call(s, entry, &ev, &w, &err), SL_ELUA);
    assert_non_null(strstr(err.msg, "column 'extra' does not exist in db.t"));
    assert_ptr_equal(ev.after, a);
    sl_lua_free(s);
    lt_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_untouched_is_not_copied),
        cmocka_unit_test(test_every_type_round_trips),
        cmocka_unit_test(test_lua_representations),
        cmocka_unit_test(test_assignments_convert),
        cmocka_unit_test(test_error_leaves_event_unchanged),
        cmocka_unit_test(test_stale_proxy),
        cmocka_unit_test(test_route_and_type_change),
        cmocka_unit_test(test_ddl),
        cmocka_unit_test(test_derived_column_refused_without_extend),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
