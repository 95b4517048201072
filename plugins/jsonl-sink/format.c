/*
 * format.c - change events to JSON lines (format.h): the exact text of every value type.
 */
#include "format.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "sqlfmt.h"   /* sl_sqlfmt_charset_name: collation id -> charset */

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t k;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        k = 2, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        k = 3, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        k = 4, min = 0x10000;
    else
        return 0;
    if (n < k)
        return 0;
    unsigned cp = c & (0x7fu >> k);
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return k;
}

static int valid_utf8(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_len(p + i, n - i);
        if (!k)
            return 0;
        i += k;
    }
    return 1;
}

void sl_jsonl_add_string(sl_sbuf *b, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    sl_sbuf_add(b, "\"", 1);
    size_t run = 0;   /* start of bytes copied as they are */
    for (size_t i = 0; i < len;) {
        unsigned c = p[i];
        const char *esc = NULL;
        char u[8];
        size_t k = 1;
        if (c == '"')
            esc = "\\\"";
        else if (c == '\\')
            esc = "\\\\";
        else if (c == '\n')
            esc = "\\n";
        else if (c == '\r')
            esc = "\\r";
        else if (c == '\t')
            esc = "\\t";
        else if (c < 0x20) {
            snprintf(u, sizeof u, "\\u%04x", c);
            esc = u;
        } else if (c >= 0x80 && !(k = utf8_len(p + i, len - i))) {
            esc = "\\ufffd";
            k = 1;
        }
        if (esc) {
            sl_sbuf_add(b, s + run, i - run);
            sl_sbuf_adds(b, esc);
            run = i + k;
        }
        i += k;
    }
    sl_sbuf_add(b, s + run, len - run);
    sl_sbuf_add(b, "\"", 1);
}

static void add_base64(sl_sbuf *b, const unsigned char *s, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (sl_sbuf_reserve(b, (n + 2) / 3 * 4 + 1) < 0)
        return;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0) |
                     (i + 2 < n ? s[i + 2] : 0);
        char o[4] = { tab[v >> 18 & 63], tab[v >> 12 & 63], i + 1 < n ? tab[v >> 6 & 63] : '=',
                      i + 2 < n ? tab[v & 63] : '=' };
        sl_sbuf_add(b, o, 4);
    }
}

/* {"base64":"..."} or, for character data of a charset JSON cannot carry as it is,
 * {"base64":"...","charset":"latin1"}. */
static void add_bytes(sl_sbuf *b, const char *s, size_t n, const char *charset)
{
    sl_sbuf_adds(b, "{\"base64\":\"");
    add_base64(b, (const unsigned char *)s, n);
    sl_sbuf_adds(b, "\"");
    if (charset) {
        sl_sbuf_adds(b, ",\"charset\":");
        sl_jsonl_add_string(b, charset, strlen(charset));
    }
    sl_sbuf_adds(b, "}");
}

/* Character data: a JSON string when its charset is UTF-8 (or ASCII) and its bytes are valid
 * UTF-8, else its bytes (a latin1 'é' is byte E9, which JSON text cannot carry as such). */
static void add_chars(sl_sbuf *b, const char *s, size_t n, unsigned coll)
{
    const char *cs = sl_sqlfmt_charset_name(coll);
    int utf8 = !cs || !strcmp(cs, "utf8mb4") || !strcmp(cs, "utf8mb3") || !strcmp(cs, "ascii");
    if (utf8 && valid_utf8(s, n))
        sl_jsonl_add_string(b, s, n);
    else
        add_bytes(b, s, n, cs);
}

/* ".ffffff" cut to dec digits (nothing for dec 0). */
static void add_frac(sl_sbuf *b, uint32_t usec, unsigned dec)
{
    if (dec == 0)
        return;
    if (dec > 6)
        dec = 6;
    char f[8];
    snprintf(f, sizeof f, "%06u", (unsigned)(usec % 1000000u));
    sl_sbuf_add(b, ".", 1);
    sl_sbuf_add(b, f, dec);
}

static void add_value(sl_sbuf *b, const sl_value *v, const sl_column *col)
{
    const sl_temporal *t = &v->v.t;
    switch ((sl_vtype)v->type) {
    case SL_V_NULL:
        sl_sbuf_adds(b, "null");
        return;
    case SL_V_INT:
    case SL_V_YEAR:
        sl_sbuf_addf(b, "%" PRId64, v->v.i);
        return;
    case SL_V_UINT:
    case SL_V_BIT:
        sl_sbuf_addf(b, "%" PRIu64, v->v.u);
        return;
    case SL_V_FLOAT:
        sl_sbuf_addf(b, "%.9g", (double)v->v.f);
        return;
    case SL_V_DOUBLE:
        sl_sbuf_addf(b, "%.17g", v->v.d);
        return;
    case SL_V_DECIMAL:
        sl_jsonl_add_string(b, v->v.s, v->len);
        return;
    case SL_V_DATE:
        sl_sbuf_addf(b, "\"%04d-%02u-%02u\"", (int)t->year, t->month, t->day);
        return;
    case SL_V_TIME:
        sl_sbuf_addf(b, "\"%s%02u:%02u:%02u", t->neg ? "-" : "", t->hour, t->minute, t->second);
        add_frac(b, t->usec, v->dec);
        sl_sbuf_adds(b, "\"");
        return;
    case SL_V_DATETIME:
        sl_sbuf_addf(b, "\"%04d-%02u-%02u %02u:%02u:%02u", (int)t->year, t->month, t->day,
                     t->hour, t->minute, t->second);
        add_frac(b, t->usec, v->dec);
        sl_sbuf_adds(b, "\"");
        return;
    case SL_V_TIMESTAMP: {
        /* MariaDB's zero TIMESTAMP is the epoch's second 0 */
        struct tm tm = { 0 };
        time_t sec = (time_t)v->v.ts.sec;
        if (sec == 0 && v->v.ts.usec == 0)
            sl_sbuf_adds(b, "\"0000-00-00 00:00:00");
        else {
            gmtime_r(&sec, &tm);
            sl_sbuf_addf(b, "\"%04d-%02d-%02d %02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        }
        add_frac(b, v->v.ts.usec, v->dec);
        sl_sbuf_adds(b, "\"");
        return;
    }
    case SL_V_STRING:
    case SL_V_JSON:
        add_chars(b, v->v.s, v->len, v->charset ? v->charset : (col ? col->charset : 0));
        return;
    case SL_V_ENUM:
    case SL_V_SET:
        if (v->v.e.s)
            add_chars(b, v->v.e.s, v->len, col ? col->charset : 0);
        else
            sl_sbuf_addf(b, "%" PRIu64, v->v.e.u);
        return;
    case SL_V_BINARY:
    case SL_V_GEOMETRY:
    default:
        add_bytes(b, v->v.s, v->len, NULL);
        return;
    }
}

/* An image as {"name": value, ...}, or [value, ...] when the columns have no names. */
static void add_image(sl_sbuf *b, const char *key, const sl_value *img, const sl_event *e)
{
    const sl_table *t = e->meta;
    int named = t && t->ncols >= e->ncols;
    for (uint32_t i = 0; named && i < e->ncols; i++)
        named = t->cols[i].name != NULL;
    sl_sbuf_addf(b, ",\"%s\":%c", key, named ? '{' : '[');
    for (uint32_t i = 0; i < e->ncols; i++) {
        const sl_column *col = t && i < t->ncols ? &t->cols[i] : NULL;
        if (i)
            sl_sbuf_add(b, ",", 1);
        if (named) {
            sl_jsonl_add_string(b, col->name, strlen(col->name));
            sl_sbuf_add(b, ":", 1);
        }
        add_value(b, &img[i], col);
    }
    sl_sbuf_adds(b, named ? "}" : "]");
}

static void add_field(sl_sbuf *b, const char *key, const char *s)
{
    sl_sbuf_addf(b, ",\"%s\":", key);
    if (s)
        sl_jsonl_add_string(b, s, strlen(s));
    else
        sl_sbuf_adds(b, "null");
}

int sl_jsonl_format(sl_sbuf *b, const sl_event *e)
{
    static const char *const ops[] = { [SL_EV_INSERT] = "insert", [SL_EV_UPDATE] = "update",
                                       [SL_EV_DELETE] = "delete", [SL_EV_DDL] = "ddl" };
    if (e->kind < SL_EV_INSERT || e->kind > SL_EV_DDL)
        return 0;
    sl_sbuf_addf(b, "{\"seq\":%" PRIu64, e->seq);
    add_field(b, "file", e->pos.file);
    sl_sbuf_addf(b, ",\"pos\":%" PRIu64, e->pos.offset);
    add_field(b, "gtid", e->pos.gtid);
    sl_sbuf_addf(b, ",\"ts\":%" PRIu64 ",\"op\":\"%s\"", e->commit_ts, ops[e->kind]);
    add_field(b, "schema", e->schema);
    add_field(b, "table", e->table);
    add_field(b, "target_schema", e->target_schema ? e->target_schema : e->schema);
    add_field(b, "target_table", e->target_table ? e->target_table : e->table);
    if (e->kind == SL_EV_DDL) {
        add_field(b, "ddl", e->ddl);
        add_field(b, "ddl_schema", e->ddl_schema);
        if (e->ddl_mode) {
            /* the source session's modes the text reads in: a consumer runs it with them */
            char words[SL_DDLM_TEXT_MAX];
            sl_ddl_mode_text(e->ddl_mode, words, sizeof words);
            add_field(b, "sql_mode", words);
        }
    }
    if (e->before && (e->kind == SL_EV_UPDATE || e->kind == SL_EV_DELETE))
        add_image(b, "before", e->before, e);
    if (e->after && (e->kind == SL_EV_INSERT || e->kind == SL_EV_UPDATE))
        add_image(b, "after", e->after, e);
    sl_sbuf_adds(b, "}\n");
    return b->oom ? SL_ENOMEM : 1;
}
