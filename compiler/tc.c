/*
 * tc.c - path tracking and typed access for the task compiler's walk over a JSON document
 * (tc.h), and the position of a malformed-JSON error.
 */
#include "tc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

size_t sl__tc_push(tc *c, const char *key)
{
    size_t mark = c->plen;
    if (c->plen + 2 < sizeof c->path)
        c->path[c->plen++] = '/';
    for (const char *k = key; *k && c->plen + 3 < sizeof c->path; k++) {
        if (*k == '~' || *k == '/') {   /* RFC 6901 escapes */
            c->path[c->plen++] = '~';
            c->path[c->plen++] = *k == '~' ? '0' : '1';
        } else {
            c->path[c->plen++] = *k;
        }
    }
    c->path[c->plen] = '\0';
    return mark;
}

size_t sl__tc_pushi(tc *c, size_t i)
{
    char b[32];
    snprintf(b, sizeof b, "%zu", i);
    return sl__tc_push(c, b);
}

void sl__tc_pop(tc *c, size_t mark)
{
    c->plen = mark;
    c->path[mark] = '\0';
}

static void vreport(tc *c, int sev, const char *key, int code, const char *fmt, va_list ap)
{
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t mark = c->plen;
    if (key)
        sl__tc_push(c, key);
    if (sl_diags_add(c->d, sev, code, c->path, "%s", msg) < 0)
        c->oom = 1;
    sl__tc_pop(c, mark);
}

void sl__tc_err(tc *c, const char *key, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(c, SL_DIAG_ERROR, key, code, fmt, ap);
    va_end(ap);
}

void sl__tc_warn(tc *c, const char *key, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(c, SL_DIAG_WARNING, key, code, fmt, ap);
    va_end(ap);
}

const char *sl__tc_typename(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:  return "an object";
    case JSON_ARRAY:   return "an array";
    case JSON_STRING:  return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL:    return "a number with a fraction";
    case JSON_TRUE:
    case JSON_FALSE:   return "a boolean";
    case JSON_NULL:    return "null";
    }
    return "a value";
}

static const char *kind_name(int kind)
{
    switch (kind) {
    case TC_STR:  return "a string";
    case TC_INT:  return "an integer";
    case TC_BOOL: return "a boolean (true or false)";
    case TC_OBJ:  return "an object";
    case TC_ARR:  return "an array";
    }
    return "a value";
}

json_t *sl__tc_get(tc *c, json_t *obj, const char *key, int kind, int req)
{
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    if (!v || json_is_null(v)) {
        if (req)
            sl__tc_err(c, key, SL_TC_REQUIRED, "\"%s\" is required", key);
        return NULL;
    }
    int ok = kind == TC_ANY || (kind == TC_STR && json_is_string(v)) ||
             (kind == TC_INT && json_is_integer(v)) || (kind == TC_BOOL && json_is_boolean(v)) ||
             (kind == TC_OBJ && json_is_object(v)) || (kind == TC_ARR && json_is_array(v));
    if (!ok) {
        sl__tc_err(c, key, SL_TC_TYPE, "\"%s\" must be %s, not %s", key, kind_name(kind),
                   sl__tc_typename(v));
        return NULL;
    }
    return v;
}

const char *sl__tc_near(const char *key, const char *const *names, size_t n)
{
    /* A near miss is most likely a typo: same letters but for case, or all but two in place. */
    for (size_t j = 0; j < n; j++)
        if (strcasecmp(names[j], key) == 0)
            return names[j];
    for (size_t j = 0; j < n; j++) {
        const char *a = names[j];
        size_t la = strlen(a), lk = strlen(key), same = 0;
        if (la + 2 < lk || lk + 2 < la)
            continue;
        for (size_t i = 0; i < la && i < lk; i++)
            same += a[i] == key[i];
        if (same + 2 >= la && la > 3)
            return a;
    }
    return NULL;
}

void sl__tc_known(tc *c, json_t *obj, const char *const *allowed)
{
    const char *key;
    json_t *v;
    size_t n = 0;
    while (allowed[n])
        n++;
    json_object_foreach(obj, key, v) {
        int ok = 0;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strcmp(*a, key) == 0;
        if (ok)
            continue;
        const char *near = sl__tc_near(key, allowed, n);
        if (near)
            sl__tc_err(c, key, SL_TC_UNKNOWN_FIELD, "unknown field \"%s\" (did you mean \"%s\"?)", key, near);
        else
            sl__tc_err(c, key, SL_TC_UNKNOWN_FIELD, "unknown field \"%s\"", key);
    }
}

/* Line and column (1-based, in characters as jansson counts them) of a byte offset. */
static void line_col(const char *buf, size_t off, int *line, int *col)
{
    int l = 1, cl = 0;
    for (size_t i = 0; i < off; i++) {
        unsigned char ch = (unsigned char)buf[i];
        if (ch == '\n') {
            l++;
            cl = 0;
        } else if ((ch & 0xC0) != 0x80) {
            cl++;
        }
    }
    *line = l;
    *col = cl + 1;
}

void sl__tc_json_error(tc *c, const char *buf, size_t len, const json_error_t *je)
{
    /* jansson says column 0 just after a newline (an input that ends there): that is the next
     * line's first column, and columns are 1-based everywhere else */
    int line = je->line, col = je->column > 0 ? je->column : 1;
    size_t pos = (size_t)(je->position > 0 ? je->position : 0);
    if (pos > len)
        pos = len;
    const char *text = je->text;
    size_t start = pos;
    /* jansson points at the last character it read: for "... near 'TOKEN'" step back to the
     * token's first character so the column names where the offending token begins. */
    const char *near = strstr(text, " near '");
    if (near) {
        const char *tok = near + 7;
        size_t tl = strlen(tok);
        if (tl > 0 && tok[tl - 1] == '\'') {
            tl--;
            if (tl <= pos && memcmp(buf + pos - tl, tok, tl) == 0) {
                start = pos - tl;
                line_col(buf, start, &line, &col);
            }
        }
    }
    /* The commonest mistake: a trailing comma before ']' or '}'. Say so, with both places. */
    if (start < len && (buf[start] == ']' || buf[start] == '}')) {
        size_t q = start;
        while (q > 0 && (buf[q - 1] == ' ' || buf[q - 1] == '\t' || buf[q - 1] == '\n' || buf[q - 1] == '\r'))
            q--;
        if (q > 0 && buf[q - 1] == ',') {
            int cl, cc;
            line_col(buf, q - 1, &cl, &cc);
            sl__tc_err(c, NULL, SL_TC_JSON,
                       "invalid JSON at line %d, column %d: unexpected '%c' after a trailing comma "
                       "(line %d, column %d); remove the comma", line, col, buf[start], cl, cc);
            return;
        }
    }
    sl__tc_err(c, NULL, SL_TC_JSON, "invalid JSON at line %d, column %d: %s", line, col, text);
}
