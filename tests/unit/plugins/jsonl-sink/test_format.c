/*
 * test_format.c - the jsonl-sink's pure step (plugins/jsonl-sink/format.c): every value type's
 * exact JSON text, the keys of each kind of line, and bytes JSON cannot carry as text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "format.h"

static sl_value str(sl_vtype t, const char *s, uint32_t len, uint16_t cs)
{
    return sl_value_str(t, s, len, cs);
}

static sl_value tmp(sl_vtype t, int y, int mo, int d, unsigned h, int mi, int s, unsigned us,
                    int neg, int dec)
{
    sl_value v = { 0 };
    v.type = (uint8_t)t;
    v.dec = (uint8_t)dec;
    v.v.t = (sl_temporal){ .year = y, .month = (uint8_t)mo, .day = (uint8_t)d, .hour = h,
                           .minute = (uint8_t)mi, .second = (uint8_t)s, .usec = us,
                           .neg = (uint8_t)neg };
    return v;
}

/* The line of e as text (static buffer); fails the test unless it is one JSON object + '\n'. */
static const char *line(const sl_event *e)
{
    static char out[8192];
    sl_sbuf b;
    sl_sbuf_init(&b);
    assert_int_equal(sl_jsonl_format(&b, e), 1);
    assert_true(b.len > 1 && b.len < sizeof out && b.p[b.len - 1] == '\n');
    memcpy(out, b.p, b.len);
    out[b.len] = '\0';
    sl_sbuf_free(&b);
    json_error_t je;
    json_t *o = json_loads(out, JSON_DECODE_INT_AS_REAL, &je);   /* 64-bit unsigned: valid JSON */
    if (!json_is_object(o))
        fail_msg("not a JSON object (%s): %s", je.text, out);
    json_decref(o);
    return out;
}

/* One insert of every value type, compared with the exact text. */
static void test_types(void **state)
{
    (void)state;
    static const char *const names[] = { "i", "u", "f", "d", "dec", "dt", "tm", "dtm", "ts",
                                         "ts0", "y", "s", "l1", "bin", "e", "set", "bit", "n",
                                         "bad" };
    enum { N = sizeof names / sizeof names[0] };
    sl_column cols[N];
    memset(cols, 0, sizeof cols);
    for (int i = 0; i < N; i++) {
        cols[i].name = names[i];
        cols[i].charset = 45;   /* utf8mb4_general_ci */
    }
    sl_table t = { .ncols = N, .schema = "s", .name = "t", .cols = cols };
    sl_value v[N];
    v[0] = sl_value_int(INT64_MIN);
    v[1] = sl_value_uint(UINT64_MAX);
    v[2] = (sl_value){ .type = SL_V_FLOAT, .v.f = 0.1f };
    v[3] = sl_value_double(0.1);
    v[4] = str(SL_V_DECIMAL, "-12.3400", 8, 0);
    v[5] = tmp(SL_V_DATE, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    v[6] = tmp(SL_V_TIME, 0, 0, 0, 838, 59, 59, 5, 1, 6);
    v[7] = tmp(SL_V_DATETIME, 9999, 12, 31, 23, 59, 59, 999000, 0, 3);
    v[8] = (sl_value){ .type = SL_V_TIMESTAMP, .dec = 2, .v.ts = { 1, 120000 } };
    v[9] = (sl_value){ .type = SL_V_TIMESTAMP, .v.ts = { 0, 0 } };
    v[10] = (sl_value){ .type = SL_V_YEAR, .v.i = 2155 };
    v[11] = str(SL_V_STRING, "q\"\\\n\x01\xf0\x9f\x98\x80", 9, 45);
    v[12] = str(SL_V_STRING, "caf\xe9", 4, 8);          /* latin1_swedish_ci */
    v[13] = str(SL_V_BINARY, "\0\xff\0\x01", 4, 63);
    v[14] = (sl_value){ .type = SL_V_ENUM, .len = 2, .v.e = { 3, "\xc3\xa9" } };
    v[15] = (sl_value){ .type = SL_V_SET, .v.e = { 5, NULL } };
    v[16] = (sl_value){ .type = SL_V_BIT, .bits = 64, .v.u = UINT64_MAX };
    v[17] = sl_value_null();
    v[18] = str(SL_V_STRING, "a\xff", 2, 45);           /* not UTF-8 in a utf8mb4 column */
    sl_event e = { .kind = SL_EV_INSERT, .ncols = N, .schema = "s", .table = "t",
                   .target_schema = "s2", .target_table = "t2", .meta = &t, .after = v,
                   .pos = { "mysql-bin.000003", 1234, "0-1-42" }, .commit_ts = 1700000000,
                   .seq = 7 };
    assert_string_equal(line(&e),
        "{\"seq\":7,\"file\":\"mysql-bin.000003\",\"pos\":1234,\"gtid\":\"0-1-42\","
        "\"ts\":1700000000,\"op\":\"insert\",\"schema\":\"s\",\"table\":\"t\","
        "\"target_schema\":\"s2\",\"target_table\":\"t2\",\"after\":{"
        "\"i\":-9223372036854775808,\"u\":18446744073709551615,\"f\":0.100000001,"
        "\"d\":0.10000000000000001,\"dec\":\"-12.3400\",\"dt\":\"0000-00-00\","
        "\"tm\":\"-838:59:59.000005\",\"dtm\":\"9999-12-31 23:59:59.999\","
        "\"ts\":\"1970-01-01 00:00:01.12\",\"ts0\":\"0000-00-00 00:00:00\",\"y\":2155,"
        "\"s\":\"q\\\"\\\\\\n\\u0001\xf0\x9f\x98\x80\",\"l1\":{\"base64\":\"Y2Fm6Q==\",\"charset\":\"latin1\"},"
        "\"bin\":{\"base64\":\"AP8AAQ==\"},\"e\":\"\xc3\xa9\",\"set\":5,"
        "\"bit\":18446744073709551615,\"n\":null,"
        "\"bad\":{\"base64\":\"Yf8=\",\"charset\":\"utf8mb4\"}}}\n");
}

/* Which images each kind carries; DDL text; kinds without a line. */
static void test_kinds(void **state)
{
    (void)state;
    sl_column c = { .name = "id" };
    sl_table t = { .ncols = 1, .schema = "s", .name = "t", .cols = &c };
    sl_value b = sl_value_int(1), a = sl_value_int(2);
    sl_event e = { .kind = SL_EV_UPDATE, .ncols = 1, .schema = "s", .table = "t", .meta = &t,
                   .before = &b, .after = &a, .pos = { "f", 9, NULL } };
    const char *l = line(&e);
    assert_non_null(strstr(l, "\"gtid\":null,"));
    assert_non_null(strstr(l, "\"target_schema\":\"s\",\"target_table\":\"t\""));
    assert_non_null(strstr(l, "\"op\":\"update\""));
    assert_non_null(strstr(l, "\"before\":{\"id\":1},\"after\":{\"id\":2}}"));
    e.kind = SL_EV_DELETE;
    e.after = NULL;
    l = line(&e);
    assert_non_null(strstr(l, "\"before\":{\"id\":1}}"));
    assert_null(strstr(l, "\"after\""));
    e.meta = NULL;   /* no column names: images as arrays */
    l = line(&e);
    assert_non_null(strstr(l, "\"before\":[1]}"));
    sl_event d = { .kind = SL_EV_DDL, .schema = "s", .table = "t", .ddl = "ALTER TABLE `t` ADD `c` INT",
                   .ddl_schema = "s" };
    l = line(&d);
    assert_non_null(strstr(l, "\"op\":\"ddl\""));
    assert_non_null(strstr(l, "\"ddl\":\"ALTER TABLE `t` ADD `c` INT\",\"ddl_schema\":\"s\"}"));
    d.ddl_mode = SL_DDLM_ANSI_QUOTES | SL_DDLM_ORACLE;    /* the modes the text reads in */
    l = line(&d);
    assert_non_null(strstr(l, "\"ddl_schema\":\"s\",\"sql_mode\":\"ANSI_QUOTES,ORACLE\"}"));
    sl_sbuf sb;
    sl_sbuf_init(&sb);
    for (int k = SL_EV_BEGIN; k <= SL_EV_CHUNK; k++) {
        sl_event x = { .kind = (uint8_t)k };
        assert_int_equal(sl_jsonl_format(&sb, &x), 0);
    }
    assert_int_equal(sb.len, 0);
    sl_sbuf_free(&sb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_kinds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
