/*
 * pattern.c - DM's table and schema name patterns (match.h): a plain name, a DM wildcard or
 * ~regex, matched case-insensitively.
 */
#include "sdk_int.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- wildcard patterns ------------------------------------------------------------------- */

enum { P_EXACT = 1, P_GLOB, P_REGEX };

struct sl_pattern {
    int         kind;
    char       *text;     /* as given */
    char       *lower;    /* ASCII-lowercased text (exact and glob) */
    pcre2_code *re;       /* P_REGEX */
};

/* Decodes one UTF-8 code point; an invalid byte is taken as itself (so any bytes match
 * deterministically). Returns the number of bytes consumed (>= 1 unless at NUL). */
static size_t utf8_next(const unsigned char *s, uint32_t *cp)
{
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return c ? 1 : 0;
    }
    int n = (c >= 0xF0 && c < 0xF8) ? 3 : (c >= 0xE0) && c < 0xF0 ? 2 : (c >= 0xC2 && c < 0xE0) ? 1 : 0;
    uint32_t v = n == 3 ? (c & 0x07u) : n == 2 ? (c & 0x0Fu) : (c & 0x1Fu);
    for (int i = 1; i <= n; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            n = 0;
            break;
        }
        v = (v << 6) | (s[i] & 0x3Fu);
    }
    if (n == 0) {
        *cp = c;
        return 1;
    }
    *cp = v;
    return (size_t)n + 1;
}

static uint32_t fold(uint32_t c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

/* Parses a class at p (just after '['); sets *end after ']' and returns 0, or -1 if malformed.
 * When cp is given, *hit says whether cp is in the class. */
static int glob_class(const unsigned char *p, const unsigned char **end, uint32_t cp, int *hit)
{
    int neg = 0, any = 0, in = 0;
    if (*p == '!') {
        neg = 1;
        p++;
    }
    while (*p && *p != ']') {
        uint32_t lo, hi;
        p += utf8_next(p, &lo);
        hi = lo;
        if (p[0] == '-' && p[1] && p[1] != ']') {
            p++;
            p += utf8_next(p, &hi);
            if (fold(hi) < fold(lo))
                return -1;
        }
        any = 1;
        if (fold(cp) >= fold(lo) && fold(cp) <= fold(hi))
            in = 1;
    }
    if (*p != ']' || !any)
        return -1;
    *end = p + 1;
    if (hit)
        *hit = neg ? !in : in;
    return 0;
}

/* Validates a glob; returns 0 or -1 with why. */
static int glob_check(const char *pat, const char **why)
{
    const unsigned char *p = (const unsigned char *)pat;
    while (*p) {
        if (*p == '*') {
            if (p[1]) {
                *why = "'*' may only be the last character";
                return -1;
            }
            p++;
        } else if (*p == '[') {
            const unsigned char *e;
            if (glob_class(p + 1, &e, 0, NULL) < 0) {
                *why = "malformed character class (expected [abc], [a-z] or [!a-z])";
                return -1;
            }
            p = e;
        } else {
            uint32_t cp;
            p += utf8_next(p, &cp);
        }
    }
    return 0;
}

static int glob_match(const unsigned char *p, const unsigned char *s)
{
    for (;;) {
        if (*p == '*')
            return 1;   /* '*' is last: matches the rest, whatever it is */
        if (!*p)
            return *s == 0;
        if (!*s)
            return 0;
        uint32_t c;
        size_t n = utf8_next(s, &c);
        if (*p == '?') {
            p++;
        } else if (*p == '[') {
            const unsigned char *e;
            int hit = 0;
            if (glob_class(p + 1, &e, c, &hit) < 0 || !hit)
                return 0;
            p = e;
        } else {
            uint32_t pc;
            p += utf8_next(p, &pc);
            if (fold(pc) != fold(c))
                return 0;
        }
        s += n;
    }
}

static char *ascii_lower_dup(const char *s)
{
    char *d = strdup(s);
    if (d)
        for (char *q = d; *q; q++)
            *q = (char)fold((unsigned char)*q);
    return d;
}

int sl_pattern_compile(const char *text, sl_pattern **out, sl_error *err)
{
    *out = NULL;
    if (!text)
        return sl_error_set(err, SL_EINVAL, "no pattern");
    sl_pattern *p = calloc(1, sizeof *p);
    if (!p || !(p->text = strdup(text))) {
        free(p);
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    }
    if (text[0] == '~') {
        p->kind = P_REGEX;
        sl_error e = {0};
        p->re = sl__re_compile(text + 1, strlen(text + 1), &e);
        if (!p->re) {
            sl_pattern_free(p);
            return sl_error_set(err, e.code, "invalid regular expression \"%s\": %s", text + 1, e.msg);
        }
    } else {
        const char *why = NULL;
        p->kind = strpbrk(text, "*?[") ? P_GLOB : P_EXACT;
        if (p->kind == P_GLOB && glob_check(text, &why) < 0) {
            sl_pattern_free(p);
            return sl_error_set(err, SL_EINVAL, "invalid pattern \"%s\": %s", text, why);
        }
        if (!(p->lower = ascii_lower_dup(text))) {
            sl_pattern_free(p);
            return sl_error_set(err, SL_ENOMEM, "out of memory");
        }
    }
    *out = p;
    return 0;
}

int sl_pattern_match(const sl_pattern *p, const char *s)
{
    if (!p || !s)
        return 0;
    switch (p->kind) {
    case P_EXACT: {
        /* ASCII case folding; other bytes compare exactly. */
        const unsigned char *a = (const unsigned char *)p->lower, *b = (const unsigned char *)s;
        while (*a && *a == fold(*b)) {
            a++;
            b++;
        }
        return *a == 0 && *b == 0;
    }
    case P_GLOB:
        return glob_match((const unsigned char *)p->lower, (const unsigned char *)s);
    case P_REGEX:
        return sl__re_search(p->re, s, strlen(s)) == 1;
    }
    return 0;
}

int sl_pattern_is_exact(const sl_pattern *p) { return p && p->kind == P_EXACT; }
const char *sl_pattern_text(const sl_pattern *p) { return p ? p->text : NULL; }

void sl_pattern_free(sl_pattern *p)
{
    if (!p)
        return;
    pcre2_code_free(p->re);
    free(p->text);
    free(p->lower);
    free(p);
}
