/*
 * sqlfmt.c - typed values to exact SQL literal text (see sqlfmt.h). Pure: no server involved;
 * collation ids are resolved with mariadb-connector-c's compiled charset table.
 */
#include "sqlfmt.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <mysql.h>
#include <mariadb_ctype.h>

const char *sl_sqlfmt_charset_name(unsigned coll)
{
    if (coll == 0 || coll == 63)
        return NULL;
    /* MariaDB 10.10+ UCA-14.0 collations: 2048 + (charset << 8) + n. */
    if (coll >= 2048) {
        switch (coll >> 8) {
        case 8:  return "utf8mb3";
        case 9:  return "utf8mb4";
        case 10: return "ucs2";
        case 11: return "utf16";
        case 12: return "utf32";
        default: return NULL;
        }
    }
    const MARIADB_CHARSET_INFO *cs = mariadb_get_charset_by_nr(coll);
    if (!cs || !cs->csname)
        return NULL;
    if (strcmp(cs->csname, "utf8") == 0)
        return "utf8mb3";
    if (strcmp(cs->csname, "binary") == 0)
        return NULL;
    return cs->csname;
}

int sl_sqlfmt_collation_ci(unsigned coll)
{
    if (coll == 0 || coll == 63)
        return 0;
    if (coll >= 2048)
        return 1;                       /* uca1400 defaults are _ai_ci; _bin ones are rare */
    const MARIADB_CHARSET_INFO *cs = mariadb_get_charset_by_nr(coll);
    if (!cs || !cs->name)
        return 0;
    size_t n = strlen(cs->name);
    return n > 3 && strcmp(cs->name + n - 3, "_ci") == 0;
}


/* Charsets in which every byte < 0x80 is an ASCII character and no multibyte sequence contains
 * a byte < 0x80, so backslash escaping is safe (not true of gbk, big5, sjis, cp932...). */
static int ascii_safe(const char *cs)
{
    static const char *const ok[] = { "utf8mb4", "utf8mb3", "latin1", "latin2", "ascii", "cp1250",
        "cp1251", "cp1252", "cp1256", "cp1257", "greek", "hebrew", "latin5", "latin7", "koi8r",
        "koi8u", "ujis", "eucjpms", "euckr", "swe7", "dec8", "cp850", "cp852", "cp866", "hp8",
        "armscii8", "geostd8", "keybcs2", "macce", "macroman", "tis620", NULL };
    for (int i = 0; ok[i]; i++)
        if (strcmp(cs, ok[i]) == 0)
            return 1;
    return 0;
}

/* The introducer of a collation ("_utf8mb4", empty for binary/unknown) and whether it is
 * ascii_safe. Looking a collation up walks the connector's charset table, and a row has many
 * strings: the answers for ids below 2048 are worked out once, for every thread (ids from 2048
 * on are MariaDB's uca1400 ones, named by a switch). Not a _Thread_local cache: dynamic TLS in
 * a dlopen'ed plugin crashes LeakSanitizer's scan once the plugin is unloaded (cleanup.c). */
typedef struct cs_info { int safe; char intro[40]; } cs_info;

#define CS_TABLE 2048
static cs_info cs_table[CS_TABLE];
static pthread_once_t cs_once = PTHREAD_ONCE_INIT;

static void cs_fill(cs_info *c, unsigned coll)
{
    const char *cs = sl_sqlfmt_charset_name(coll);
    c->intro[0] = '\0';
    c->safe = 0;
    if (cs && strlen(cs) + 2 <= sizeof c->intro) {
        c->intro[0] = '_';
        memcpy(c->intro + 1, cs, strlen(cs) + 1);
        c->safe = ascii_safe(cs);
    }
}

static void cs_table_fill(void)
{
    for (unsigned i = 0; i < CS_TABLE; i++)
        cs_fill(&cs_table[i], i);
}

/* coll's entry of the table, or, from 2048 on, *tmp filled in. */
static const cs_info *charset_of(unsigned coll, cs_info *tmp)
{
    if (coll < CS_TABLE) {
        pthread_once(&cs_once, cs_table_fill);
        return &cs_table[coll];
    }
    cs_fill(tmp, coll);
    return tmp;
}

static void add_string(sl_sbuf *b, const char *s, uint32_t len, unsigned coll)
{
    cs_info tmp;
    const cs_info *c = charset_of(coll, &tmp);
    if (!c->intro[0]) {
        sl_sbuf_add_hex(b, (const unsigned char *)s, len);
        return;
    }
    sl_sbuf_adds(b, c->intro);
    if (c->safe) {
        sl_sbuf_add_quoted(b, s, len);
    } else {
        sl_sbuf_adds(b, " ");
        sl_sbuf_add_hex(b, (const unsigned char *)s, len);
    }
}

/* Decimal digits without printf (the statement builder's hot path). */
static void add_u64(sl_sbuf *b, uint64_t u)
{
    char d[24];
    int n = 24;
    do {
        d[--n] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    sl_sbuf_add(b, d + n, (size_t)(24 - n));
}

static void add_i64(sl_sbuf *b, int64_t i)
{
    if (i < 0) {
        sl_sbuf_add(b, "-", 1);
        add_u64(b, (uint64_t)0 - (uint64_t)i);
    } else {
        add_u64(b, (uint64_t)i);
    }
}

/* v as exactly `width` digits (zero-padded; wider values keep all their digits) */
static char *put_digits(char *p, uint32_t v, int width)
{
    char d[12];
    int n = 0;
    do {
        d[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n < width)
        d[n++] = '0';
    while (n)
        *p++ = d[--n];
    return p;
}

static void add_frac(sl_sbuf *b, uint32_t usec, unsigned dec)
{
    if (dec == 0)
        return;
    if (dec > 6)
        dec = 6;
    char f[8];
    f[0] = '.';
    put_digits(f + 1, usec % 1000000u, 6);
    sl_sbuf_add(b, f, 1 + dec);
}

/* 'YYYY-MM-DD (the opening quote, no closing one); the year may be negative or wider */
static void add_date(sl_sbuf *b, int32_t year, unsigned month, unsigned day)
{
    char t[32], *p = t;
    *p++ = '\'';
    if (year < 0) {
        *p++ = '-';
        year = -year;
    }
    p = put_digits(p, (uint32_t)year, 4);
    *p++ = '-';
    p = put_digits(p, month, 2);
    *p++ = '-';
    p = put_digits(p, day, 2);
    sl_sbuf_add(b, t, (size_t)(p - t));
}

/* HH:MM:SS (the hour may have more digits) */
static void add_clock(sl_sbuf *b, uint32_t h, unsigned m, unsigned sec)
{
    char t[24], *p = t;
    p = put_digits(p, h, 2);
    *p++ = ':';
    p = put_digits(p, m, 2);
    *p++ = ':';
    p = put_digits(p, sec, 2);
    sl_sbuf_add(b, t, (size_t)(p - t));
}

static void add_double(sl_sbuf *b, double d)
{
    char buf[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    sl_sbuf_adds(b, buf);
}

int sl_sqlfmt_value_cmp(sl_sbuf *b, const sl_value *v)
{
    if (v->type != SL_V_FLOAT)
        return sl_sqlfmt_value(b, v);
    add_double(b, (double)v->v.f);
    return b->oom ? SL_ENOMEM : 0;
}

static int decimal_ok(const char *s, uint32_t len)
{
    if (len == 0)
        return 0;
    int digits = 0;
    for (uint32_t i = 0; i < len; i++) {
        char c = s[i];
        if (c >= '0' && c <= '9')
            digits = 1;
        else if (!(c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'))
            return 0;
    }
    return digits;
}

int sl_sqlfmt_value(sl_sbuf *b, const sl_value *v)
{
    char buf[96];
    switch ((sl_vtype)v->type) {
    case SL_V_NULL:
        sl_sbuf_adds(b, "NULL");
        break;
    case SL_V_INT:
    case SL_V_YEAR:
        add_i64(b, v->v.i);
        break;
    case SL_V_UINT:
        add_u64(b, v->v.u);
        break;
    case SL_V_FLOAT:
        snprintf(buf, sizeof buf, "%.9g", (double)v->v.f);
        sl_sbuf_adds(b, buf);
        break;
    case SL_V_DOUBLE:
        add_double(b, v->v.d);
        break;
    case SL_V_DECIMAL:
        if (!decimal_ok(v->v.s, v->len))
            return SL_EINVAL;
        sl_sbuf_add(b, v->v.s, v->len);
        break;
    case SL_V_DATE:
        add_date(b, v->v.t.year, v->v.t.month, v->v.t.day);
        sl_sbuf_add(b, "'", 1);
        break;
    case SL_V_TIME:
        sl_sbuf_add(b, v->v.t.neg ? "'-" : "'", v->v.t.neg ? 2 : 1);
        add_clock(b, v->v.t.hour, v->v.t.minute, v->v.t.second);
        add_frac(b, v->v.t.usec, v->dec);
        sl_sbuf_add(b, "'", 1);
        break;
    case SL_V_DATETIME:
        add_date(b, v->v.t.year, v->v.t.month, v->v.t.day);
        sl_sbuf_add(b, " ", 1);
        add_clock(b, v->v.t.hour, v->v.t.minute, v->v.t.second);
        add_frac(b, v->v.t.usec, v->dec);
        sl_sbuf_add(b, "'", 1);
        break;
    case SL_V_TIMESTAMP: {
        if (v->v.ts.sec == 0 && v->v.ts.usec == 0) {
            sl_sbuf_adds(b, "'0000-00-00 00:00:00");
        } else {
            time_t t = (time_t)v->v.ts.sec;
            struct tm tm;
            if (!gmtime_r(&t, &tm))
                return SL_EINVAL;
            add_date(b, tm.tm_year + 1900, (unsigned)tm.tm_mon + 1, (unsigned)tm.tm_mday);
            sl_sbuf_add(b, " ", 1);
            add_clock(b, (uint32_t)tm.tm_hour, (unsigned)tm.tm_min, (unsigned)tm.tm_sec);
        }
        add_frac(b, v->v.ts.usec, v->dec);
        sl_sbuf_adds(b, "'");
        break;
    }
    case SL_V_STRING:
        add_string(b, v->v.s, v->len, v->charset);
        break;
    case SL_V_BINARY:
    case SL_V_GEOMETRY:
        sl_sbuf_add_hex(b, (const unsigned char *)v->v.s, v->len);
        break;
    case SL_V_JSON:
        add_string(b, v->v.s, v->len, v->charset && v->charset != 63 ? v->charset : 45);
        break;
    case SL_V_BIT: {
        unsigned bits = v->bits ? v->bits : 64;
        if (bits > 64)
            bits = 64;
        char d[68];
        unsigned n = 0;
        for (int i = (int)bits - 1; i >= 0; i--)
            d[n++] = (char)('0' + ((v->v.u >> i) & 1u));
        d[n] = '\0';
        sl_sbuf_addf(b, "b'%s'", d);
        break;
    }
    case SL_V_ENUM:
    case SL_V_SET:
        if (v->v.e.s && (v->len > 0 || v->v.e.u != 0) && !(v->type == SL_V_ENUM && v->v.e.u == 0))
            add_string(b, v->v.e.s, v->len, v->charset ? v->charset : 45);
        else
            sl_sbuf_addf(b, "%" PRIu64, v->v.e.u);
        break;
    default:
        return SL_EINVAL;
    }
    return b->oom ? SL_ENOMEM : 0;
}
