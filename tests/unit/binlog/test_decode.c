/*
 * test_decode.c - the binlog decoder on constructed bytes, no server: headers and checksums,
 * format description, rotate, query (its status variables: the session's sql_mode), GTID and
 * GTID lists, table maps with FULL metadata, and row values of every column type at their
 * limits (encoders below mirror sql/field.cc).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "decode.h"

#include <sluice/event.h>
#include <zlib.h>

/* ---- a byte builder and a test arena ----------------------------------------------------- */

typedef struct buf { uint8_t d[8192]; size_t n; } buf;
static void b1(buf *b, uint8_t v) { b->d[b->n++] = v; }
static void ble(buf *b, uint64_t v, int n) { for (int i = 0; i < n; i++) b1(b, (uint8_t)(v >> (8 * i))); }
static void bbe(buf *b, uint64_t v, int n) { for (int i = n - 1; i >= 0; i--) b1(b, (uint8_t)(v >> (8 * i))); }
static void bmem(buf *b, const void *p, size_t n) { memcpy(b->d + b->n, p, n); b->n += n; }
static void bstr(buf *b, const char *s) { b1(b, (uint8_t)strlen(s)); bmem(b, s, strlen(s)); }

typedef struct arena { void *p[4096]; int n; } arena;
static void *aalloc(void *ud, size_t n)
{
    arena *a = ud;
    return a->p[a->n++] = malloc(n ? n : 1);
}
static void afree(arena *a) { while (a->n) free(a->p[--a->n]); }

/* ---- a column set under test -------------------------------------------------------------- */

typedef struct colspec {
    uint8_t type;
    uint8_t meta[2];
    int     mlen;
    int     is_unsigned;
    int     numeric;   /* has a SIGNEDNESS bit */
    int     character; /* has a COLUMN_CHARSET entry */
    int     charset;
    const char *name;
} colspec;

static void table_map(buf *b, const colspec *c, int n, const char *labels_enum_set)
{
    ble(b, 42, 6);          /* table id */
    ble(b, 1, 2);           /* flags */
    bstr(b, "db"); b1(b, 0);
    bstr(b, "tb"); b1(b, 0);
    b1(b, (uint8_t)n);
    for (int i = 0; i < n; i++)
        b1(b, c[i].type);
    int ml = 0;
    for (int i = 0; i < n; i++)
        ml += c[i].mlen;
    b1(b, (uint8_t)ml);
    for (int i = 0; i < n; i++)
        bmem(b, c[i].meta, (size_t)c[i].mlen);
    for (int i = 0; i < (n + 7) / 8; i++)
        b1(b, 0xFF);        /* all nullable */
    /* SIGNEDNESS */
    uint8_t sg[8] = { 0 };
    int k = 0;
    for (int i = 0; i < n; i++)
        if (c[i].numeric) {
            if (c[i].is_unsigned)
                sg[k / 8] |= (uint8_t)(0x80 >> (k % 8));
            k++;
        }
    if (k) {
        b1(b, 1);
        b1(b, (uint8_t)((k + 7) / 8));
        bmem(b, sg, (size_t)(k + 7) / 8);
    }
    /* COLUMN_CHARSET */
    buf cs = { .n = 0 };
    for (int i = 0; i < n; i++)
        if (c[i].character)
            b1(&cs, (uint8_t)c[i].charset);
    if (cs.n) {
        b1(b, 3);
        b1(b, (uint8_t)cs.n);
        bmem(b, cs.d, cs.n);
    }
    /* COLUMN_NAME */
    buf nm = { .n = 0 };
    for (int i = 0; i < n; i++)
        bstr(&nm, c[i].name);
    b1(b, 4);
    b1(b, (uint8_t)nm.n);
    bmem(b, nm.d, nm.n);
    if (labels_enum_set)
        bmem(b, labels_enum_set, strlen(labels_enum_set));   /* raw TLVs given by the test */
    /* SIMPLE_PRIMARY_KEY: column 0 */
    b1(b, 8); b1(b, 1); b1(b, 0);
}

static sl_bl_table_map *parse_map(const buf *b)
{
    sl_bl_format f;
    sl_bl_format_init(&f);
    sl_bl_table_map *m = NULL;
    sl_error err = { 0 };
    int rc = sl_bl_parse_table_map(&f, b->d, b->n, &m, &err);
    if (rc)
        fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(rc, 0);
    return m;
}

/* A WRITE_ROWS_V1 body for one row: values given already encoded; null mask for columns. */
static void rows_header(buf *b, int n, int update)
{
    ble(b, 42, 6);
    ble(b, 1, 2);
    b1(b, (uint8_t)n);
    for (int i = 0; i < (n + 7) / 8; i++)
        b1(b, 0xFF);
    if (update)
        for (int i = 0; i < (n + 7) / 8; i++)
            b1(b, 0xFF);
}

static int decode_one(uint8_t type, const buf *rows, const sl_bl_table_map *m, arena *a,
                      sl_value *before, sl_value *after, sl_error *err)
{
    sl_bl_format f;
    sl_bl_format_init(&f);
    sl_bl_rows r;
    int rc = sl_bl_rows_init(&f, type, rows->d, rows->n, &r, err);
    if (rc < 0)
        return rc;
    return sl_bl_rows_next(&r, m, aalloc, a, before, after, err);
}

/* ---- encoders (mirror sql/field.cc / my_time.c) ------------------------------------------ */

static void enc_time2(buf *b, int neg, int h, int mi, int s, int us, int fsp)
{
    int64_t hms = ((int64_t)h << 12) | (mi << 6) | s;
    int64_t nr = (hms << 24) + us;
    if (neg)
        nr = -nr;
    int64_t ip = nr >= 0 ? nr >> 24 : -((-nr + (1 << 24) - 1) >> 24);   /* floor */
    int64_t fr = nr - ip * (1LL << 24);
    (void)fr;
    switch (fsp) {
    case 0:
        bbe(b, (uint64_t)(0x800000 + (nr / (1LL << 24))), 3);   /* no fraction: int part */
        break;
    case 1: case 2: {
        /* MY_PACKED_TIME_GET_INT_PART is an arithmetic shift; FRAC_PART is C's remainder */
        int64_t i = nr >> 24, f = nr % (1LL << 24);
        bbe(b, (uint64_t)(0x800000 + i), 3);
        b1(b, (uint8_t)(int8_t)(f / 10000));
        break;
    }
    case 3: case 4: {
        int64_t i = nr >> 24, f = nr % (1LL << 24);
        bbe(b, (uint64_t)(0x800000 + i), 3);
        bbe(b, (uint16_t)(int16_t)(f / 100), 2);
        break;
    }
    default:
        bbe(b, (uint64_t)(nr + 0x800000000000LL), 6);
    }
}

static void enc_frac(buf *b, int us, int fsp)
{
    switch ((fsp + 1) / 2) {
    case 1: b1(b, (uint8_t)(us / 10000)); break;
    case 2: bbe(b, (uint64_t)(us / 100), 2); break;
    case 3: bbe(b, (uint64_t)us, 3); break;
    }
}

static void enc_datetime2(buf *b, int y, int mo, int d, int h, int mi, int s, int us, int fsp)
{
    int64_t ym = y * 13 + mo;
    int64_t ymd = (ym << 5) | d;
    int64_t hms = (h << 12) | (mi << 6) | s;
    int64_t intpart = (ymd << 17) | hms;
    bbe(b, (uint64_t)(intpart + 0x8000000000LL), 5);
    enc_frac(b, us, fsp);
}

/* Binary DECIMAL from a text "[-]digits[.digits]" for (prec, scale) (decimal2bin). */
static void enc_decimal(buf *b, const char *text, int prec, int scale)
{
    static const int d2b[10] = { 0, 1, 1, 2, 2, 3, 3, 4, 4, 4 };
    int neg = text[0] == '-';
    if (neg)
        text++;
    const char *dot = strchr(text, '.');
    char ip[80] = "", fp[80] = "";
    int intg = prec - scale;
    size_t il = dot ? (size_t)(dot - text) : strlen(text);
    while (il > (size_t)intg && *text == '0') {
        text++;
        il--;
    }
    /* left-pad integer digits to intg, right-pad fraction to scale */
    memset(ip, '0', (size_t)intg);
    memcpy(ip + intg - (int)il, text, il);
    memset(fp, '0', (size_t)scale);
    if (dot)
        memcpy(fp, dot + 1, strlen(dot + 1));
    uint8_t out[40];
    int n = 0;
    int x = intg % 9;
    const char *p = ip;
    if (x) {
        unsigned v = 0;
        for (int i = 0; i < x; i++) v = v * 10 + (unsigned)(*p++ - '0');
        for (int i = d2b[x] - 1; i >= 0; i--) out[n++] = (uint8_t)(v >> (8 * i));
    }
    for (int g = 0; g < intg / 9; g++) {
        unsigned v = 0;
        for (int i = 0; i < 9; i++) v = v * 10 + (unsigned)(*p++ - '0');
        for (int i = 3; i >= 0; i--) out[n++] = (uint8_t)(v >> (8 * i));
    }
    p = fp;
    for (int g = 0; g < scale / 9; g++) {
        unsigned v = 0;
        for (int i = 0; i < 9; i++) v = v * 10 + (unsigned)(*p++ - '0');
        for (int i = 3; i >= 0; i--) out[n++] = (uint8_t)(v >> (8 * i));
    }
    x = scale % 9;
    if (x) {
        unsigned v = 0;
        for (int i = 0; i < x; i++) v = v * 10 + (unsigned)(*p++ - '0');
        for (int i = d2b[x] - 1; i >= 0; i--) out[n++] = (uint8_t)(v >> (8 * i));
    }
    if (neg)
        for (int i = 0; i < n; i++) out[i] ^= 0xFF;
    out[0] ^= 0x80;
    bmem(b, out, (size_t)n);
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_decimal_known_vectors(void **state)
{
    /* MySQL internals manual: DECIMAL(14,4) 1234567890.1234 and its negation */
    const uint8_t pos[] = { 0x81, 0x0D, 0xFB, 0x38, 0xD2, 0x04, 0xD2 };
    const uint8_t neg[] = { 0x7E, 0xF2, 0x04, 0xC7, 0x2D, 0xFB, 0x2D };
    char out[96];
    size_t used;
    assert_int_equal(sl_bl_decimal_size(14, 4), 7);
    assert_int_equal(sl_bl_decimal_text(pos, sizeof pos, 14, 4, out, &used), 15);
    assert_string_equal(out, "1234567890.1234");
    assert_int_equal(used, 7);
    sl_bl_decimal_text(neg, sizeof neg, 14, 4, out, &used);
    assert_string_equal(out, "-1234567890.1234");
    /* truncated input and impossible precisions */
    assert_true(sl_bl_decimal_text(pos, 6, 14, 4, out, &used) < 0);
    assert_true(sl_bl_decimal_text(pos, 7, 66, 4, out, &used) < 0);
    assert_true(sl_bl_decimal_text(pos, 7, 4, 5, out, &used) < 0);
}

static void test_decimal_round_trips(void **state)
{
    static const struct { const char *in, *out; int p, s; } v[] = {
        { "99999999999999999999999999999999999.999999999999999999999999999999",
          "99999999999999999999999999999999999.999999999999999999999999999999", 65, 30 },
        { "-99999999999999999999999999999999999.999999999999999999999999999999",
          "-99999999999999999999999999999999999.999999999999999999999999999999", 65, 30 },
        { "0", "0.000000000000000000000000000000", 65, 30 },
        { "-12.34", "-12.3400", 10, 4 },
        { "0.00001", "0.00001", 20, 5 },
        { "-0.5", "-0.5", 1, 1 },
        { "123456789012345678", "123456789012345678", 18, 0 },
        { "-1", "-1", 65, 0 },
        { "0.1", "0.10", 3, 2 },
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        buf b = { .n = 0 };
        enc_decimal(&b, v[i].in, v[i].p, v[i].s);
        assert_int_equal(b.n, sl_bl_decimal_size(v[i].p, v[i].s));
        char out[96];
        size_t used;
        int n = sl_bl_decimal_text(b.d, b.n, v[i].p, v[i].s, out, &used);
        assert_int_equal(n, (int)strlen(v[i].out));
        assert_string_equal(out, v[i].out);
        assert_int_equal(used, b.n);
    }
}

static colspec C(uint8_t type, int m0, int m1, int mlen, const char *name)
{
    colspec c = { .type = type, .meta = { (uint8_t)m0, (uint8_t)m1 }, .mlen = mlen, .name = name };
    return c;
}

static void test_integers_at_limits(void **state)
{
    colspec c[10] = {
        C(SL_MT_LONG, 0, 0, 0, "id"), C(SL_MT_TINY, 0, 0, 0, "t"), C(SL_MT_TINY, 0, 0, 0, "tu"),
        C(SL_MT_SHORT, 0, 0, 0, "s"), C(SL_MT_SHORT, 0, 0, 0, "su"),
        C(SL_MT_INT24, 0, 0, 0, "m"), C(SL_MT_INT24, 0, 0, 0, "mu"),
        C(SL_MT_LONGLONG, 0, 0, 0, "b"), C(SL_MT_LONGLONG, 0, 0, 0, "bu"),
        C(SL_MT_YEAR, 0, 0, 0, "y"),
    };
    for (int i = 0; i < 10; i++)
        c[i].numeric = 1;
    c[2].is_unsigned = c[4].is_unsigned = c[6].is_unsigned = c[8].is_unsigned = 1;
    c[9].is_unsigned = 1;
    buf tm = { .n = 0 };
    table_map(&tm, c, 10, NULL);
    sl_bl_table_map *m = parse_map(&tm);
    assert_int_equal(m->ncols, 10);
    assert_string_equal(m->schema, "db");
    assert_string_equal(m->table, "tb");
    assert_string_equal(m->cols[2].name, "tu");
    assert_true(m->cols[2].is_unsigned);
    assert_false(m->cols[1].is_unsigned);
    assert_int_equal(m->npk, 1);
    assert_true(m->cols[0].pk);

    for (int lim = 0; lim < 2; lim++) {
        buf r = { .n = 0 };
        rows_header(&r, 10, 0);
        ble(&r, 0, 2);   /* null bitmap: none */
        ble(&r, 7, 4);
        if (lim == 0) {
            b1(&r, 0x80); b1(&r, 0); ble(&r, 0x8000, 2); ble(&r, 0, 2); ble(&r, 0x800000, 3);
            ble(&r, 0, 3); ble(&r, 0x8000000000000000ull, 8); ble(&r, 0, 8); b1(&r, 0);
        } else {
            b1(&r, 0x7F); b1(&r, 0xFF); ble(&r, 0x7FFF, 2); ble(&r, 0xFFFF, 2);
            ble(&r, 0x7FFFFF, 3); ble(&r, 0xFFFFFF, 3); ble(&r, 0x7FFFFFFFFFFFFFFFull, 8);
            ble(&r, UINT64_MAX, 8); b1(&r, 255);
        }
        arena a = { .n = 0 };
        sl_value after[10];
        sl_error err = { 0 };
        assert_int_equal(decode_one(SL_BL_WRITE_ROWS_V1, &r, m, &a, NULL, after, &err), 1);
        assert_int_equal(after[0].v.i, 7);
        if (lim == 0) {
            assert_int_equal(after[1].type, SL_V_INT); assert_int_equal(after[1].v.i, -128);
            assert_int_equal(after[2].type, SL_V_UINT); assert_int_equal(after[2].v.u, 0);
            assert_int_equal(after[3].v.i, -32768);
            assert_int_equal(after[5].v.i, -8388608);
            assert_true(after[7].v.i == INT64_MIN);
            assert_int_equal(after[9].type, SL_V_YEAR); assert_int_equal(after[9].v.i, 0);
        } else {
            assert_int_equal(after[1].v.i, 127);
            assert_int_equal(after[2].v.u, 255);
            assert_int_equal(after[3].v.i, 32767);
            assert_int_equal(after[4].v.u, 65535);
            assert_int_equal(after[5].v.i, 8388607);
            assert_int_equal(after[6].v.u, 16777215);
            assert_true(after[7].v.i == INT64_MAX);
            assert_int_equal(after[8].type, SL_V_UINT);
            assert_true(after[8].v.u == UINT64_MAX);
            assert_int_equal(after[9].v.i, 2155);
        }
        afree(&a);
    }
    sl_bl_table_map_free(m);
}

static void test_temporal_types(void **state)
{
    colspec c[12] = {
        C(SL_MT_LONG, 0, 0, 0, "id"), C(SL_MT_DATE, 0, 0, 0, "d"),
        C(SL_MT_TIME2, 0, 0, 1, "t0"), C(SL_MT_TIME2, 2, 0, 1, "t2"),
        C(SL_MT_TIME2, 3, 0, 1, "t3"), C(SL_MT_TIME2, 6, 0, 1, "t6"),
        C(SL_MT_DATETIME2, 0, 0, 1, "dt0"), C(SL_MT_DATETIME2, 4, 0, 1, "dt4"),
        C(SL_MT_DATETIME2, 6, 0, 1, "dt6"), C(SL_MT_TIMESTAMP2, 0, 0, 1, "ts0"),
        C(SL_MT_TIMESTAMP2, 6, 0, 1, "ts6"), C(SL_MT_DATETIME, 0, 0, 0, "olddt"),
    };
    c[0].numeric = 1;
    buf tm = { .n = 0 };
    table_map(&tm, c, 12, NULL);
    sl_bl_table_map *m = parse_map(&tm);
    static const struct { int neg, h, mi, s, us; } times[] = {
        { 1, 838, 59, 59, 0 }, { 0, 838, 59, 59, 0 }, { 1, 0, 0, 0, 500000 },
        { 1, 12, 34, 56, 1 }, { 0, 100, 0, 0, 123000 }, { 1, 0, 0, 1, 990000 },
    };
    for (size_t k = 0; k < sizeof times / sizeof times[0]; k++) {
        buf r = { .n = 0 };
        rows_header(&r, 12, 0);
        ble(&r, 0, 2);
        ble(&r, 1, 4);
        ble(&r, (uint64_t)(9999 << 9 | 12 << 5 | 31), 3);
        int us = times[k].us;
        enc_time2(&r, times[k].neg, times[k].h, times[k].mi, times[k].s, 0, 0);
        enc_time2(&r, times[k].neg, times[k].h, times[k].mi, times[k].s, us / 10000 * 10000, 2);
        enc_time2(&r, times[k].neg, times[k].h, times[k].mi, times[k].s, us / 1000 * 1000, 3);
        enc_time2(&r, times[k].neg, times[k].h, times[k].mi, times[k].s, us, 6);
        enc_datetime2(&r, 1000, 1, 1, 0, 0, 0, 0, 0);
        enc_datetime2(&r, 2000, 2, 29, 23, 59, 59, 999900, 4);
        enc_datetime2(&r, 9999, 12, 31, 23, 59, 59, 999999, 6);
        bbe(&r, 2147483647, 4);
        bbe(&r, 1, 4); enc_frac(&r, 1, 6);
        ble(&r, 20240229123456ull, 8);
        arena a = { .n = 0 };
        sl_value v[12];
        sl_error err = { 0 };
        int rc = decode_one(SL_BL_WRITE_ROWS_V1, &r, m, &a, NULL, v, &err);
        if (rc != 1)
            fprintf(stderr, "%s\n", err.msg);
        assert_int_equal(rc, 1);
        assert_int_equal(v[1].type, SL_V_DATE);
        assert_int_equal(v[1].v.t.year, 9999);
        assert_int_equal(v[1].v.t.month, 12);
        assert_int_equal(v[1].v.t.day, 31);
        for (int col = 2; col <= 5; col++) {
            int fsp = (int)c[col].meta[0];
            int want_us = fsp == 0 ? 0 : fsp == 2 ? us / 10000 * 10000 : fsp == 3 ? us / 1000 * 1000 : us;
            int want_neg = times[k].neg && (times[k].h || times[k].mi || times[k].s || want_us);
            assert_int_equal(v[col].type, SL_V_TIME);
            assert_int_equal(v[col].dec, fsp);
            assert_int_equal(v[col].v.t.neg, want_neg);
            assert_int_equal(v[col].v.t.hour, times[k].h);
            assert_int_equal(v[col].v.t.minute, times[k].mi);
            assert_int_equal(v[col].v.t.second, times[k].s);
            assert_int_equal(v[col].v.t.usec, want_us);
        }
        assert_int_equal(v[6].type, SL_V_DATETIME);
        assert_int_equal(v[6].v.t.year, 1000);
        assert_int_equal(v[7].v.t.year, 2000);
        assert_int_equal(v[7].v.t.month, 2);
        assert_int_equal(v[7].v.t.day, 29);
        assert_int_equal(v[7].v.t.hour, 23);
        assert_int_equal(v[7].v.t.usec, 999900);
        assert_int_equal(v[7].dec, 4);
        assert_int_equal(v[8].v.t.usec, 999999);
        assert_int_equal(v[9].type, SL_V_TIMESTAMP);
        assert_int_equal(v[9].v.ts.sec, 2147483647);
        assert_int_equal(v[10].v.ts.sec, 1);
        assert_int_equal(v[10].v.ts.usec, 1);
        assert_int_equal(v[10].dec, 6);
        assert_int_equal(v[11].type, SL_V_DATETIME);
        assert_int_equal(v[11].v.t.year, 2024);
        assert_int_equal(v[11].v.t.second, 56);
        afree(&a);
    }
    sl_bl_table_map_free(m);
}

static void test_strings_blobs_bits_enums(void **state)
{
    colspec c[12] = {
        C(SL_MT_LONG, 0, 0, 0, "id"),
        C(SL_MT_VARCHAR, 40, 0, 2, "v"),             /* VARCHAR(10) utf8mb4: 40 bytes */
        C(SL_MT_VARCHAR, 0x2c, 0x01, 2, "vl"),       /* 300 bytes: 2-byte length */
        C(SL_MT_STRING, 0xFE, 4, 2, "bn"),           /* BINARY(4) */
        C(SL_MT_STRING, 0xCE, 0x20, 2, "cl"),        /* CHAR(200) utf8mb4: 800 bytes */
        C(SL_MT_BLOB, 2, 0, 1, "bl"),
        C(SL_MT_BLOB, 4, 0, 1, "lt"),
        C(SL_MT_BIT, 1, 0, 2, "b1"),                 /* BIT(1) */
        C(SL_MT_BIT, 0, 8, 2, "b64"),                /* BIT(64) */
        C(SL_MT_STRING, SL_MT_ENUM, 1, 2, "e"),
        C(SL_MT_STRING, SL_MT_SET, 1, 2, "s"),
        C(SL_MT_GEOMETRY, 4, 0, 1, "g"),
    };
    c[0].numeric = 1;
    int chars[] = { 1, 2, 3, 4, 5, 6 };
    int sets[] = { 45, 8, 63, 45, 63, 46 };
    for (int i = 0; i < 6; i++) {
        c[chars[i]].character = 1;
        c[chars[i]].charset = sets[i];
    }
    /* ENUM_STR_VALUE ('a','bb','c') and SET_STR_VALUE ('x','y','z') */
    const char tl[] = "\x06\x08\x03\x01" "a" "\x02" "bb" "\x01" "c"
                      "\x05\x07\x03\x01" "x" "\x01" "y" "\x01" "z";
    buf tm = { .n = 0 };
    table_map(&tm, c, 12, tl);
    sl_bl_table_map *m = parse_map(&tm);
    assert_int_equal(m->cols[4].real_type, SL_MT_STRING);
    assert_int_equal(m->cols[4].max_len, 800);
    assert_int_equal(m->cols[9].real_type, SL_MT_ENUM);
    assert_int_equal(m->cols[9].nlabels, 3);
    assert_int_equal(m->cols[10].real_type, SL_MT_SET);
    assert_int_equal(m->cols[2].charset, 8);
    assert_int_equal(m->cols[3].charset, 63);

    buf r = { .n = 0 };
    rows_header(&r, 12, 1);
    /* before image: everything NULL but id */
    ble(&r, 0xFFFE, 2);
    ble(&r, 5, 4);
    /* after image */
    ble(&r, 0, 2);
    ble(&r, 5, 4);
    b1(&r, 3); bmem(&r, "h\0i", 3);
    ble(&r, 300, 2); for (int i = 0; i < 300; i++) b1(&r, 'x');
    b1(&r, 1); b1(&r, 0x01);                       /* BINARY(4) x'01': padding stripped */
    ble(&r, 6, 2); bmem(&r, "\xE6\x97\xA5\xE6\x9C\xAC", 6);
    ble(&r, 3, 2); bmem(&r, "\0\xff\0", 3);
    ble(&r, 2, 4); bmem(&r, "{}", 2);
    b1(&r, 1);
    bbe(&r, UINT64_MAX, 8);
    b1(&r, 2);                                     /* 'bb' */
    b1(&r, 5);                                     /* x,z */
    ble(&r, 25, 4); bmem(&r, "\0\0\0\0\x01\x01\0\0\0\0\0\0\0\0\0\xf0\x3f\0\0\0\0\0\0\0\x40", 25);
    arena a = { .n = 0 };
    sl_value bv[12], av[12];
    sl_error err = { 0 };
    int rc = decode_one(SL_BL_UPDATE_ROWS_V1, &r, m, &a, bv, av, &err);
    if (rc != 1)
        fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(rc, 1);
    assert_int_equal(bv[0].v.i, 5);
    for (int i = 1; i < 12; i++)
        assert_int_equal(bv[i].type, SL_V_NULL);
    assert_int_equal(av[1].type, SL_V_STRING);
    assert_int_equal(av[1].len, 3);
    assert_memory_equal(av[1].v.s, "h\0i", 3);
    assert_int_equal(av[1].charset, 45);
    assert_int_equal(av[2].len, 300);
    assert_int_equal(av[2].charset, 8);
    assert_int_equal(av[3].type, SL_V_BINARY);
    assert_int_equal(av[3].len, 4);
    assert_memory_equal(av[3].v.s, "\x01\0\0\0", 4);
    assert_int_equal(av[4].len, 6);
    assert_int_equal(av[5].type, SL_V_BINARY);
    assert_memory_equal(av[5].v.s, "\0\xff\0", 3);
    assert_int_equal(av[6].type, SL_V_STRING);
    assert_int_equal(av[6].charset, 46);
    assert_int_equal(av[7].type, SL_V_BIT);
    assert_int_equal(av[7].bits, 1);
    assert_int_equal(av[7].v.u, 1);
    assert_int_equal(av[8].bits, 64);
    assert_true(av[8].v.u == UINT64_MAX);
    assert_int_equal(av[9].type, SL_V_ENUM);
    assert_int_equal(av[9].v.e.u, 2);
    assert_int_equal(av[9].len, 2);
    assert_memory_equal(av[9].v.e.s, "bb", 2);
    assert_int_equal(av[10].type, SL_V_SET);
    assert_int_equal(av[10].v.e.u, 5);
    assert_int_equal(av[10].len, 3);
    assert_memory_equal(av[10].v.e.s, "x,z", 3);
    assert_int_equal(av[11].type, SL_V_GEOMETRY);
    assert_int_equal(av[11].len, 25);
    afree(&a);

    /* every truncation of the row is an error, never a read past the end */
    for (size_t cut = 0; cut + 1 < r.n; cut++) {
        buf t = r;
        t.n = cut;
        arena a2 = { .n = 0 };
        sl_error e2 = { 0 };
        int rc2 = decode_one(SL_BL_UPDATE_ROWS_V1, &t, m, &a2, bv, av, &e2);
        assert_true(rc2 <= 0);
        afree(&a2);
    }
    sl_bl_table_map_free(m);
}

static void test_float_double_decimal_columns(void **state)
{
    colspec c[4] = {
        C(SL_MT_LONG, 0, 0, 0, "id"), C(SL_MT_FLOAT, 4, 0, 1, "f"), C(SL_MT_DOUBLE, 8, 0, 1, "d"),
        C(SL_MT_NEWDECIMAL, 65, 30, 2, "n"),
    };
    for (int i = 0; i < 4; i++)
        c[i].numeric = 1;
    c[3].is_unsigned = 1;
    buf tm = { .n = 0 };
    table_map(&tm, c, 4, NULL);
    sl_bl_table_map *m = parse_map(&tm);
    assert_true(m->cols[3].is_unsigned);
    buf r = { .n = 0 };
    rows_header(&r, 4, 0);
    b1(&r, 0);
    ble(&r, 1, 4);
    float f = -3.4028235e38f;
    double d = 2.2250738585072014e-308;
    uint32_t fu;
    uint64_t du;
    memcpy(&fu, &f, 4);
    memcpy(&du, &d, 8);
    ble(&r, fu, 4);
    ble(&r, du, 8);
    enc_decimal(&r, "12345678901234567890123456789012345.000000000000000000000000000001", 65, 30);
    arena a = { .n = 0 };
    sl_value v[4];
    sl_error err = { 0 };
    assert_int_equal(decode_one(SL_BL_WRITE_ROWS_V1, &r, m, &a, NULL, v, &err), 1);
    assert_int_equal(v[1].type, SL_V_FLOAT);
    assert_true(v[1].v.f == f);
    assert_int_equal(v[2].type, SL_V_DOUBLE);
    assert_true(v[2].v.d == d);
    assert_int_equal(v[3].type, SL_V_DECIMAL);
    assert_int_equal(v[3].dec, 30);
    assert_string_equal(v[3].v.s,
                        "12345678901234567890123456789012345.000000000000000000000000000001");
    afree(&a);
    sl_bl_table_map_free(m);
}

static void test_rows_v2_and_multiple_rows(void **state)
{
    colspec c[2] = { C(SL_MT_LONG, 0, 0, 0, "id"), C(SL_MT_LONG, 0, 0, 0, "v") };
    c[0].numeric = c[1].numeric = 1;
    buf tm = { .n = 0 };
    table_map(&tm, c, 2, NULL);
    sl_bl_table_map *m = parse_map(&tm);
    buf r = { .n = 0 };
    ble(&r, 42, 6);
    ble(&r, 1, 2);
    ble(&r, 2, 2);          /* extra data length: none */
    b1(&r, 2);
    b1(&r, 0xFF);
    for (int i = 0; i < 3; i++) {
        b1(&r, i == 1 ? 0x02 : 0);   /* second row: v NULL */
        ble(&r, (uint64_t)i, 4);
        if (i != 1)
            ble(&r, (uint64_t)(uint32_t)(-i), 4);
    }
    sl_bl_format f;
    sl_bl_format_init(&f);
    sl_bl_rows rows;
    sl_error err = { 0 };
    assert_int_equal(sl_bl_rows_init(&f, SL_BL_DELETE_ROWS, r.d, r.n, &rows, &err), 0);
    assert_int_equal(rows.kind, 3);
    assert_int_equal(rows.table_id, 42);
    arena a = { .n = 0 };
    sl_value v[2];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(sl_bl_rows_next(&rows, m, aalloc, &a, v, NULL, &err), 1);
        assert_int_equal(v[0].v.i, i);
        if (i == 1)
            assert_int_equal(v[1].type, SL_V_NULL);
        else
            assert_int_equal(v[1].v.i, -i);
    }
    assert_int_equal(sl_bl_rows_next(&rows, m, aalloc, &a, v, NULL, &err), 0);
    afree(&a);
    /* compressed events are refused clearly */
    assert_int_equal(sl_bl_rows_init(&f, SL_BL_WRITE_ROWS_COMPRESSED_V1, r.d, r.n, &rows, &err),
                     SL_ENOTSUP);
    assert_non_null(strstr(err.msg, "log_bin_compress"));
    sl_bl_table_map_free(m);
}

/* A whole event with header and CRC32. */
static size_t make_event(uint8_t *out, uint8_t type, uint32_t next_pos, const buf *body, int crc)
{
    buf e = { .n = 0 };
    ble(&e, 1700000000, 4);
    b1(&e, type);
    ble(&e, 1, 4);
    ble(&e, 19 + body->n + (crc ? 4 : 0), 4);
    ble(&e, next_pos, 4);
    ble(&e, 0, 2);
    bmem(&e, body->d, body->n);
    if (crc)
        ble(&e, sl_bl_crc32(0, e.d, e.n), 4);
    memcpy(out, e.d, e.n);
    return e.n;
}

static void test_events_and_checksums(void **state)
{
    assert_int_equal(sl_bl_crc32(0, "123456789", 9), 0xCBF43926u);
    /* FDE: version 4, server version, timestamp, header len, post-header lengths, alg, crc */
    buf fb = { .n = 0 };
    ble(&fb, 4, 2);
    char ver[50] = "10.11.19-MariaDB-log";
    bmem(&fb, ver, 50);
    ble(&fb, 0, 4);
    b1(&fb, 19);
    uint8_t ph[171] = { 0 };
    ph[SL_BL_QUERY - 1] = 13;
    ph[SL_BL_ROTATE - 1] = 8;
    ph[SL_BL_TABLE_MAP - 1] = 8;
    ph[SL_BL_WRITE_ROWS_V1 - 1] = 8;
    ph[SL_BL_GTID - 1] = 19;
    bmem(&fb, ph, sizeof ph);
    b1(&fb, SL_BL_CHECKSUM_CRC32);
    uint8_t ev[1024];
    size_t n = make_event(ev, SL_BL_FORMAT_DESCRIPTION, 256, &fb, 1);
    sl_bl_format f;
    sl_error err = { 0 };
    assert_int_equal(sl_bl_parse_fde(ev, n, 1, &f, &err), 0);
    assert_int_equal(f.checksum_alg, SL_BL_CHECKSUM_CRC32);
    assert_int_equal(f.post_header_len[SL_BL_QUERY], 13);
    assert_string_equal(f.server_version, "10.11.19-MariaDB-log");
    ev[30] ^= 1;
    assert_int_equal(sl_bl_parse_fde(ev, n, 1, &f, &err), SL_EINVAL);
    ev[30] ^= 1;
    assert_int_equal(sl_bl_parse_fde(ev, n, 1, &f, &err), 0);

    /* ROTATE */
    buf rb = { .n = 0 };
    ble(&rb, 4, 8);
    bmem(&rb, "mysql-bin.000002", 16);
    n = make_event(ev, SL_BL_ROTATE, 0, &rb, 1);
    const uint8_t *body;
    size_t blen;
    assert_int_equal(sl_bl_event_body(&f, ev, n, 1, &body, &blen, &err), 0);
    uint64_t pos;
    const char *name;
    size_t nl;
    assert_int_equal(sl_bl_parse_rotate(&f, body, blen, &pos, &name, &nl, &err), 0);
    assert_int_equal(pos, 4);
    assert_int_equal(nl, 16);
    assert_memory_equal(name, "mysql-bin.000002", 16);
    ev[25] ^= 0x40;   /* corrupt: checksum must catch it */
    assert_int_equal(sl_bl_event_body(&f, ev, n, 1, &body, &blen, &err), SL_EINVAL);
    assert_non_null(strstr(err.msg, "CRC32"));

    /* QUERY */
    buf qb = { .n = 0 };
    ble(&qb, 7, 4); ble(&qb, 0, 4); b1(&qb, 4); ble(&qb, 0, 2); ble(&qb, 3, 2);
    b1(&qb, 0); ble(&qb, 0, 2);        /* a status var: Q_FLAGS2 (truncated is fine: skipped) */
    bmem(&qb, "test", 4); b1(&qb, 0);
    bmem(&qb, "ALTER TABLE t ADD c INT", 23);
    n = make_event(ev, SL_BL_QUERY, 500, &qb, 1);
    assert_int_equal(sl_bl_event_body(&f, ev, n, 1, &body, &blen, &err), 0);
    sl_bl_query q;
    assert_int_equal(sl_bl_parse_query(&f, body, blen, &q, &err), 0);
    assert_int_equal(q.db_len, 4);
    assert_memory_equal(q.db, "test", 4);
    assert_int_equal(q.sql_len, 23);
    assert_memory_equal(q.sql, "ALTER TABLE t ADD c INT", 23);

    /* GTID and GTID_LIST, GTID set text */
    buf gb = { .n = 0 };
    ble(&gb, 100, 8); ble(&gb, 0, 4); b1(&gb, SL_BL_FL_STANDALONE | SL_BL_FL_GROUP_COMMIT_ID);
    ble(&gb, 55, 8);
    sl_bl_gtid g;
    assert_int_equal(sl_bl_parse_gtid(gb.d, gb.n, &g, &err), 0);
    assert_int_equal(g.seq, 100);
    assert_int_equal(g.commit_id, 55);
    sl_bl_gtid_set s = { 0 };
    assert_int_equal(sl_bl_gtid_set_parse(&s, "1-2-30, 0-1-100", &err), 0);
    char txt[128];
    sl_bl_gtid_set_format(&s, txt, sizeof txt);
    assert_string_equal(txt, "0-1-100,1-2-30");
    buf lb = { .n = 0 };
    ble(&lb, 2, 4);
    ble(&lb, 5, 4); ble(&lb, 9, 4); ble(&lb, 77, 8);
    ble(&lb, 0, 4); ble(&lb, 1, 4); ble(&lb, 101, 8);
    assert_int_equal(sl_bl_parse_gtid_list(lb.d, lb.n, &s, &err), 0);
    size_t need = sl_bl_gtid_set_format(&s, txt, 5);
    assert_int_equal(need, strlen("0-1-101,1-2-30,5-9-77"));
    assert_true(strlen(txt) < 5);   /* whole entries only */
    sl_bl_gtid_set_format(&s, txt, sizeof txt);
    assert_string_equal(txt, "0-1-101,1-2-30,5-9-77");
    assert_int_equal(sl_bl_gtid_set_parse(&s, "0-1", &err), SL_EINVAL);
    assert_int_equal(sl_bl_gtid_set_parse(&s, "", &err), 0);
    assert_int_equal(s.n, 0);
    lb.n = 20;   /* claims 2 entries, holds 1 */
    assert_int_equal(sl_bl_parse_gtid_list(lb.d, lb.n, &s, &err), SL_EINVAL);
    sl_bl_gtid_set_free(&s);

    /* headers that lie about their length */
    sl_bl_header h;
    n = make_event(ev, SL_BL_QUERY, 500, &qb, 1);
    assert_int_equal(sl_bl_header_parse(ev, n - 1, &h, &err), SL_EINVAL);
    assert_int_equal(sl_bl_header_parse(ev, 10, &h, &err), SL_EINVAL);
}

static void test_malformed_table_maps(void **state)
{
    colspec c[3] = { C(SL_MT_LONG, 0, 0, 0, "id"), C(SL_MT_VARCHAR, 10, 0, 2, "v"),
                     C(SL_MT_STRING, SL_MT_ENUM, 1, 2, "e") };
    c[0].numeric = 1;
    c[1].character = 1;
    c[1].charset = 45;
    buf tm = { .n = 0 };
    table_map(&tm, c, 3, "\x06\x05\x02\x01" "a" "\x01" "b");
    sl_bl_format f;
    sl_bl_format_init(&f);
    for (size_t cut = 0; cut < tm.n; cut++) {
        sl_bl_table_map *m = NULL;
        sl_error err = { 0 };
        int rc = sl_bl_parse_table_map(&f, tm.d, cut, &m, &err);
        if (rc == 0)
            sl_bl_table_map_free(m);   /* a cut inside optional metadata may parse partially */
        else
            assert_null(m);
    }
    sl_bl_table_map *m = parse_map(&tm);
    assert_int_equal(m->cols[2].nlabels, 2);
    sl_bl_table_map_free(m);
}

/* ---- COMPRESSED columns (MariaDB field_comp.cc) ------------------------------------------- */

/* value bytes of a compressed BLOB with 2 length bytes: header, big-endian length, deflated */
static void enc_compressed(buf *b, const char *v, size_t n, int wrap)
{
    unsigned char z[4096];
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, wrap ? MAX_WBITS : -MAX_WBITS, 8,
                                  Z_DEFAULT_STRATEGY), Z_OK);
    zs.next_in = (Bytef *)(uintptr_t)v;
    zs.avail_in = (uInt)n;
    zs.next_out = z;
    zs.avail_out = sizeof z;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    size_t zn = zs.total_out;
    deflateEnd(&zs);
    ble(b, 1 + 2 + zn, 2);
    b1(b, (uint8_t)(0x80 | 2 | (wrap ? 0 : 8)));
    bbe(b, n, 2);
    bmem(b, z, zn);
}

static int decode_compressed(const buf *b, sl_value *v, arena *a, sl_error *err)
{
    sl_bl_column c = { .type = SL_MT_BLOB_COMPRESSED, .real_type = SL_MT_BLOB_COMPRESSED, .meta = 2,
                       .charset = 45, .name = "z" };
    size_t used = 0;
    int rc = sl_bl_decode_value(&c, b->d, b->d + b->n, &used, v, aalloc, a, err);
    if (rc == 0)
        assert_int_equal(used, b->n);
    return rc;
}

static void test_compressed_columns(void **state)
{
    (void)state;
    arena a = { .n = 0 };
    sl_error err = { 0 };
    sl_value v;
    char big[3000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)('a' + i % 7);
    for (int wrap = 0; wrap < 2; wrap++) {   /* raw deflate (the default) and zlib-wrapped */
        buf b = { .n = 0 };
        enc_compressed(&b, big, sizeof big, wrap);
        assert_int_equal(decode_compressed(&b, &v, &a, &err), 0);
        assert_int_equal(v.type, SL_V_STRING);
        assert_int_equal(v.len, sizeof big);
        assert_memory_equal(v.v.s, big, sizeof big);
    }
    buf raw = { .n = 0 };    /* under the threshold: header 0, then the value */
    ble(&raw, 6, 2);
    b1(&raw, 0);
    bmem(&raw, "short", 5);
    assert_int_equal(decode_compressed(&raw, &v, &a, &err), 0);
    assert_int_equal(v.len, 5);
    assert_memory_equal(v.v.s, "short", 5);
    buf empty = { .n = 0 };  /* the empty value has no header */
    ble(&empty, 0, 2);
    assert_int_equal(decode_compressed(&empty, &v, &a, &err), 0);
    assert_int_equal(v.len, 0);
    /* broken images are errors, not allocations or reads past the end */
    buf bad = { .n = 0 };
    enc_compressed(&bad, big, sizeof big, 0);
    bad.d[2] = 0x98;         /* method 9 */
    assert_int_equal(decode_compressed(&bad, &v, &a, &err), SL_EINVAL);
    bad.d[2] = 0x8A;         /* back to zlib, raw */
    bad.d[3] = 0xFF;         /* claims 65,000+ bytes from a few dozen */
    assert_int_equal(decode_compressed(&bad, &v, &a, &err), SL_EINVAL);
    buf cut = { .n = 0 };
    enc_compressed(&cut, big, sizeof big, 0);
    cut.n -= 4;              /* the stream ends early, its length says so too */
    cut.d[0] = (uint8_t)(cut.n - 2);
    cut.d[1] = (uint8_t)((cut.n - 2) >> 8);
    assert_int_equal(decode_compressed(&cut, &v, &a, &err), SL_EINVAL);
    afree(&a);
}


/* ---- QUERY status variables ---------------------------------------------------------------- */

static const uint64_t MODE = SL_BL_MODE_ANSI_QUOTES | SL_BL_MODE_NO_BACKSLASH_ESCAPES |
                             SL_BL_MODE_EMPTY_STRING_IS_NULL;

/* One status variable: code, then its value. */
static void var(buf *b, uint8_t code, const void *v, size_t n) { b1(b, code); bmem(b, v, n); }

/* A QUERY body with the status block sv (f's post-header: 13) and sql; parsed into q. */
static int query_with(const buf *sv, sl_bl_query *q)
{
    static buf qb;
    qb.n = 0;
    ble(&qb, 7, 4); ble(&qb, 0, 4); b1(&qb, 2); ble(&qb, 0, 2); ble(&qb, sv->n, 2);
    bmem(&qb, sv->d, sv->n);
    bmem(&qb, "db", 2); b1(&qb, 0);
    bmem(&qb, "CREATE TABLE \"t\" (a INT)", 24);
    sl_bl_format f;
    sl_bl_format_init(&f);
    sl_error err = { 0 };
    int rc = sl_bl_parse_query(&f, qb.d, qb.n, q, &err);
    if (rc == 0) {
        /* the statement is found whatever the walk did */
        assert_int_equal(q->sql_len, 24);
        assert_memory_equal(q->sql, "CREATE TABLE \"t\" (a INT)", 24);
        assert_memory_equal(q->db, "db", 2);
    }
    return rc;
}

static void test_query_status_vars(void **st)
{
    uint8_t m8[8];
    for (int i = 0; i < 8; i++)
        m8[i] = (uint8_t)(MODE >> (8 * i));
    static const uint8_t z8[8], hr[3] = { 1, 2, 3 };
    sl_bl_query q;

    /* every variable MariaDB writes, sql_mode last: each length walked right to reach it */
    buf sv = { .n = 0 };
    var(&sv, SL_BL_Q_FLAGS2, z8, 4);
    var(&sv, SL_BL_Q_CATALOG, "\3std\0", 5);
    var(&sv, SL_BL_Q_AUTO_INCREMENT, "\1\0\1\0", 4);
    var(&sv, SL_BL_Q_CHARSET, "\x21\0\x21\0\x08\0", 6);
    var(&sv, SL_BL_Q_TIME_ZONE, "\6+03:00", 7);
    var(&sv, SL_BL_Q_CATALOG_NZ, "\3std", 4);
    var(&sv, SL_BL_Q_LC_TIME_NAMES, "\0\0", 2);
    var(&sv, SL_BL_Q_CHARSET_DATABASE, "\x08\0", 2);
    var(&sv, SL_BL_Q_TABLE_MAP_FOR_UPDATE, z8, 8);
    var(&sv, SL_BL_Q_MASTER_DATA_WRITTEN, z8, 4);
    var(&sv, SL_BL_Q_INVOKER, "\4root\11localhost", 15);
    var(&sv, SL_BL_Q_HRNOW, hr, 3);
    var(&sv, SL_BL_Q_XID, z8, 8);
    var(&sv, SL_BL_Q_GTID_FLAGS3, "\4\1\2\3\4\5\6\7\10", 9);    /* COMMIT_ALTER: + 8 bytes */
    var(&sv, SL_BL_Q_GTID_FLAGS3, "\1", 1);                     /* flags alone */
    var(&sv, SL_BL_Q_CHARACTER_SET_COLLATIONS, "\2\x2d\0\x2b\x09\x08\0\x08\0", 9);
    var(&sv, SL_BL_Q_SQL_MODE, m8, 8);
    assert_int_equal(query_with(&sv, &q), 0);
    assert_true(q.has_sql_mode);
    assert_true(q.sql_mode == MODE);
    assert_int_equal(sl_bl_query_status(sv.d, sv.n, &q), sv.n);

    /* MySQL's: updated databases (names, or none past 254), microseconds, the 8.0 ones */
    sv.n = 0;
    var(&sv, SL_BL_Q_UPDATED_DB_NAMES, "\2a\0bb\0", 6);
    var(&sv, SL_BL_Q_UPDATED_DB_NAMES, "\xfe", 1);
    var(&sv, SL_BL_Q_MICROSECONDS, hr, 3);
    var(&sv, SL_BL_Q_EXPLICIT_DEFAULTS_FOR_TIMESTAMP, "\1", 1);
    var(&sv, SL_BL_Q_DDL_LOGGED_WITH_XID, z8, 8);
    var(&sv, SL_BL_Q_DEFAULT_COLLATION_FOR_UTF8MB4, "\xff\0", 2);
    var(&sv, SL_BL_Q_SQL_REQUIRE_PRIMARY_KEY, "\0", 1);
    var(&sv, SL_BL_Q_DEFAULT_TABLE_ENCRYPTION, "\0", 1);
    var(&sv, SL_BL_Q_SQL_MODE, m8, 8);
    assert_int_equal(query_with(&sv, &q), 0);
    assert_true(q.sql_mode == MODE);

    /* no sql_mode at all, an empty block */
    sv.n = 0;
    var(&sv, SL_BL_Q_FLAGS2, z8, 4);
    assert_int_equal(query_with(&sv, &q), 0);
    assert_false(q.has_sql_mode);
    assert_true(q.sql_mode == 0);
    sv.n = 0;
    assert_int_equal(query_with(&sv, &q), 0);
    assert_false(q.has_sql_mode);

    /* an unknown code, Q_DUMMY and MySQL's unused COMMIT_TS end the walk: what follows is not
     * read (its length is unknown: reading on would take garbage for a mode) */
    static const uint8_t stops[] = { 14, 15, 21, 127, 132, 200, SL_BL_Q_DUMMY };
    for (size_t i = 0; i < sizeof stops; i++) {
        sv.n = 0;
        var(&sv, SL_BL_Q_FLAGS2, z8, 4);
        var(&sv, stops[i], m8, 3);
        var(&sv, SL_BL_Q_SQL_MODE, m8, 8);
        assert_int_equal(query_with(&sv, &q), 0);
        assert_false(q.has_sql_mode);
        assert_int_equal(sl_bl_query_status(sv.d, sv.n, &q), 5);
    }
    /* ... while what came before it stands */
    sv.n = 0;
    var(&sv, SL_BL_Q_SQL_MODE, m8, 8);
    var(&sv, 200, m8, 8);
    assert_int_equal(query_with(&sv, &q), 0);
    assert_true(q.sql_mode == MODE);

    /* a variable cut short by the block's end (the statement's bytes follow it in the body:
     * they are never read as the variable's) ends the walk, at every cut */
    buf full = { .n = 0 };
    var(&full, SL_BL_Q_INVOKER, "\4root\11localhost", 15);
    var(&full, SL_BL_Q_UPDATED_DB_NAMES, "\2a\0bb\0", 6);
    var(&full, SL_BL_Q_GTID_FLAGS3, "\x08\1\2\3\4\5\6\7\10", 9);
    var(&full, SL_BL_Q_CHARACTER_SET_COLLATIONS, "\1\x2d\0\x2b\x09", 5);
    var(&full, SL_BL_Q_TIME_ZONE, "\6+03:00", 7);
    var(&full, SL_BL_Q_SQL_MODE, m8, 8);
    for (size_t cut = 0; cut < full.n; cut++) {
        sv.n = 0;
        bmem(&sv, full.d, cut);
        assert_int_equal(query_with(&sv, &q), 0);
        assert_false(q.has_sql_mode);
        assert_true(sl_bl_query_status(sv.d, sv.n, &q) <= cut);
    }
    sv = full;
    assert_int_equal(query_with(&sv, &q), 0);
    assert_true(q.sql_mode == MODE);

    /* a status length past the event is the event's error, not the walk's */
    buf qb = { .n = 0 };
    ble(&qb, 7, 4); ble(&qb, 0, 4); b1(&qb, 0); ble(&qb, 0, 2); ble(&qb, 40, 2);
    var(&qb, SL_BL_Q_SQL_MODE, m8, 8);
    b1(&qb, 0);
    sl_bl_format f;
    sl_bl_format_init(&f);
    sl_error err = { 0 };
    assert_int_equal(sl_bl_parse_query(&f, qb.d, qb.n, &q, &err), SL_EINVAL);
}

/* The session's sql_mode to the modes a DDL event carries (sl_event.ddl_mode). */
static void test_ddl_mode_bits(void **st)
{
    sl_bl_format maria, mysql;
    sl_bl_format_init(&maria);
    sl_bl_format_init(&mysql);
    snprintf(maria.server_version, sizeof maria.server_version, "10.11.19-MariaDB-0+deb12u1-log");
    snprintf(mysql.server_version, sizeof mysql.server_version, "5.7.44-log");
    /* the values a 10.11 server wrote for SET sql_mode = 'X' (decoded from its binlog) */
    assert_int_equal(sl_bl_ddl_mode(&maria, 0x1), SL_DDLM_REAL_AS_FLOAT);
    assert_int_equal(sl_bl_ddl_mode(&maria, 0x2), SL_DDLM_PIPES_AS_CONCAT);
    assert_int_equal(sl_bl_ddl_mode(&maria, 0x4), SL_DDLM_ANSI_QUOTES);
    assert_int_equal(sl_bl_ddl_mode(&maria, 0x8), SL_DDLM_IGNORE_SPACE);
    assert_int_equal(sl_bl_ddl_mode(&maria, 0x40), SL_DDLM_NO_UNSIGNED_SUBTRACTION);
    assert_int_equal(sl_bl_ddl_mode(&maria, 0x100000), SL_DDLM_NO_BACKSLASH_ESCAPES);
    assert_int_equal(sl_bl_ddl_mode(&maria, 0x20000000), SL_DDLM_HIGH_NOT_PRECEDENCE);
    /* sql_mode=ORACLE: PIPES_AS_CONCAT, ANSI_QUOTES, IGNORE_SPACE, ORACLE, NO_*_OPTIONS,
     * NO_AUTO_CREATE_USER, SIMULTANEOUS_ASSIGNMENT */
    assert_int_equal(sl_bl_ddl_mode(&maria, 0x21000e20eull),
                     SL_DDLM_PIPES_AS_CONCAT | SL_DDLM_ANSI_QUOTES | SL_DDLM_IGNORE_SPACE | SL_DDLM_ORACLE);
    /* MySQL's ORACLE never changed its parser: only the bits set with it count */
    assert_int_equal(sl_bl_ddl_mode(&mysql, 0x20eull),
                     SL_DDLM_PIPES_AS_CONCAT | SL_DDLM_ANSI_QUOTES | SL_DDLM_IGNORE_SPACE);
    /* the defaults (STRICT_TRANS_TABLES, ERROR_FOR_DIVISION_BY_ZERO, NO_AUTO_CREATE_USER,
     * NO_ENGINE_SUBSTITUTION) and the MariaDB-only bits change nothing here */
    assert_int_equal(sl_bl_ddl_mode(&maria, 0x54200000ull | SL_BL_MODE_EMPTY_STRING_IS_NULL), 0);
    assert_int_equal(sl_bl_ddl_mode(NULL, SL_BL_MODE_ORACLE | SL_BL_MODE_ANSI_QUOTES), SL_DDLM_ANSI_QUOTES);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decimal_known_vectors),
        cmocka_unit_test(test_decimal_round_trips),
        cmocka_unit_test(test_integers_at_limits),
        cmocka_unit_test(test_temporal_types),
        cmocka_unit_test(test_strings_blobs_bits_enums),
        cmocka_unit_test(test_float_double_decimal_columns),
        cmocka_unit_test(test_rows_v2_and_multiple_rows),
        cmocka_unit_test(test_events_and_checksums),
        cmocka_unit_test(test_malformed_table_maps),
        cmocka_unit_test(test_compressed_columns),
        cmocka_unit_test(test_query_status_vars),
        cmocka_unit_test(test_ddl_mode_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
