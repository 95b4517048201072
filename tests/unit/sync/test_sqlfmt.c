/*
 * test_sqlfmt.c - unit tests of plugins/common/sqlfmt.c: every value type to its exact literal.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "sqlfmt.h"

static char out[4096];

static const char *fmt(sl_value v)
{
    sl_sbuf b;
    sl_sbuf_init(&b);
    int rc = sl_sqlfmt_value(&b, &v);
    assert_int_equal(rc, 0);
    snprintf(out, sizeof out, "%s", b.p ? b.p : "");
    sl_sbuf_free(&b);
    return out;
}

static const char *fmt_cmp(sl_value v)
{
    sl_sbuf b;
    sl_sbuf_init(&b);
    assert_int_equal(sl_sqlfmt_value_cmp(&b, &v), 0);
    snprintf(out, sizeof out, "%s", b.p ? b.p : "");
    sl_sbuf_free(&b);
    return out;
}

static void test_numbers(void **st)
{
    assert_string_equal(fmt(sl_value_null()), "NULL");
    assert_string_equal(fmt(sl_value_int(INT64_MIN)), "-9223372036854775808");
    assert_string_equal(fmt(sl_value_uint(UINT64_MAX)), "18446744073709551615");
    sl_value f = { .type = SL_V_FLOAT };
    f.v.f = 1.1f;
    assert_string_equal(fmt(f), "1.10000002");
    assert_string_equal(fmt(sl_value_double(0.1)), "0.1");
    assert_string_equal(fmt(sl_value_double(1.0 / 3.0)), "0.3333333333333333");
    assert_string_equal(fmt(sl_value_double(-1e300)), "-1e+300");
    sl_value d = sl_value_str(SL_V_DECIMAL, "-12.3400", 8, 0);
    assert_string_equal(fmt(d), "-12.3400");
    sl_value bad = sl_value_str(SL_V_DECIMAL, "1;DROP", 6, 0);
    sl_sbuf b;
    sl_sbuf_init(&b);
    assert_int_equal(sl_sqlfmt_value(&b, &bad), SL_EINVAL);
    sl_sbuf_free(&b);
    sl_value y = { .type = SL_V_YEAR };
    y.v.i = 0;
    assert_string_equal(fmt(y), "0");
    y.v.i = 2155;
    assert_string_equal(fmt(y), "2155");
}

static void test_temporal(void **st)
{
    sl_value v = { .type = SL_V_DATE };
    v.v.t.year = 2024; v.v.t.month = 2; v.v.t.day = 29;
    assert_string_equal(fmt(v), "'2024-02-29'");
    sl_value z = { .type = SL_V_DATE };
    assert_string_equal(fmt(z), "'0000-00-00'");
    sl_value t = { .type = SL_V_TIME, .dec = 3 };
    t.v.t.neg = 1; t.v.t.hour = 838; t.v.t.minute = 59; t.v.t.second = 58; t.v.t.usec = 120000;
    assert_string_equal(fmt(t), "'-838:59:58.120'");
    sl_value dt = { .type = SL_V_DATETIME, .dec = 6 };
    dt.v.t.year = 1999; dt.v.t.month = 12; dt.v.t.day = 31; dt.v.t.hour = 23; dt.v.t.minute = 59;
    dt.v.t.second = 59; dt.v.t.usec = 999999;
    assert_string_equal(fmt(dt), "'1999-12-31 23:59:59.999999'");
    sl_value ts = { .type = SL_V_TIMESTAMP, .dec = 2 };
    ts.v.ts.sec = 1700000000; ts.v.ts.usec = 450000;
    assert_string_equal(fmt(ts), "'2023-11-14 22:13:20.45'");
    sl_value tz = { .type = SL_V_TIMESTAMP };
    assert_string_equal(fmt(tz), "'0000-00-00 00:00:00'");
}

static void test_strings(void **st)
{
    assert_string_equal(fmt(sl_value_str(SL_V_STRING, "it's \\ \"x\"", 10, 45)),
                        "_utf8mb4'it\\'s \\\\ \\\"x\\\"'");
    assert_string_equal(fmt(sl_value_str(SL_V_STRING, "caf\xe9", 4, 8)), "_latin1'caf\xe9'");
    /* gbk: a multibyte charset whose trail bytes can be 0x5c: always hex */
    assert_string_equal(fmt(sl_value_str(SL_V_STRING, "\xd5\x5c", 2, 28)), "_gbk X'D55C'");
    assert_string_equal(fmt(sl_value_str(SL_V_STRING, "a", 1, 33)), "_utf8mb3'a'");
    assert_string_equal(fmt(sl_value_str(SL_V_STRING, "a", 1, 2304)), "_utf8mb4'a'");
    assert_string_equal(fmt(sl_value_str(SL_V_BINARY, "\0\xff", 2, 63)), "X'00FF'");
    assert_string_equal(fmt(sl_value_str(SL_V_BINARY, "", 0, 63)), "''");
    assert_string_equal(fmt(sl_value_str(SL_V_JSON, "{\"a\": 1}", 8, 0)), "_utf8mb4'{\\\"a\\\": 1}'");
    assert_string_equal(fmt(sl_value_str(SL_V_GEOMETRY, "\0\0\0\0\1", 5, 63)), "X'0000000001'");
    assert_string_equal(fmt(sl_value_str(SL_V_STRING, "a\nb\0", 4, 45)), "_utf8mb4'a\\nb\\0'");
}

static void test_bit_enum_set(void **st)
{
    sl_value b = { .type = SL_V_BIT, .bits = 5 };
    b.v.u = 5;
    assert_string_equal(fmt(b), "b'00101'");
    sl_value e = { .type = SL_V_ENUM, .charset = 45, .len = 3 };
    e.v.e.u = 2; e.v.e.s = "red";
    assert_string_equal(fmt(e), "_utf8mb4'red'");
    sl_value en = { .type = SL_V_ENUM };
    en.v.e.u = 3;
    assert_string_equal(fmt(en), "3");
    sl_value s = { .type = SL_V_SET, .charset = 45, .len = 3 };
    s.v.e.u = 5; s.v.e.s = "a,c";
    assert_string_equal(fmt(s), "_utf8mb4'a,c'");
    sl_value s0 = { .type = SL_V_SET };
    s0.v.e.s = "";
    assert_string_equal(fmt(s0), "0");
    assert_true(sl_sqlfmt_collation_ci(45));
    assert_false(sl_sqlfmt_collation_ci(46));
    /* a FLOAT is stored from its 9-digit text but found by the double it widens to */
    sl_value f = { .type = SL_V_FLOAT };
    f.v.f = 0.1f;
    assert_string_equal(fmt(f), "0.100000001");
    assert_string_equal(fmt_cmp(f), "0.10000000149011612");
    f.v.f = 16777216.0f;
    assert_string_equal(fmt_cmp(f), "16777216");
    f.v.f = 1.17549435e-38f;
    assert_string_equal(fmt_cmp(f), "1.1754943508222875e-38");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_temporal),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_bit_enum_set),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
