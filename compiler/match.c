/*
 * match.c - DM's table patterns (wildcards and ~regex), binlog event type names, the DDL
 * classifier and the compiled `rules` option (match.h). Self-contained: PCRE2 + jansson + libc,
 * so plugins can link it without the core runtime.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "sluice/match.h"
#include "sluice/event.h"

#include <ctype.h>
#include <jansson.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* sl_error is filled here directly, so this library does not need core/err.c. */
__attribute__((format(printf, 3, 4)))
static int seterr(sl_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* ---- PCRE2 plumbing ---------------------------------------------------------------------- */

/* One match data (one ovector pair: we only ask "does it match") per thread, freed at thread
 * exit; the match context with the limits is shared read-only. */
static pthread_once_t re_once = PTHREAD_ONCE_INIT;
static pthread_key_t re_key;
static pcre2_match_context *re_mctx;
static int re_inited;

static void md_free(void *p) { pcre2_match_data_free(p); }

static void re_init(void)
{
    pthread_key_create(&re_key, md_free);
    re_inited = 1;
    re_mctx = pcre2_match_context_create(NULL);
    if (re_mctx) {
        pcre2_set_match_limit(re_mctx, SL_MATCH_LIMIT);
        pcre2_set_depth_limit(re_mctx, SL_MATCH_DEPTH);
        pcre2_set_heap_limit(re_mctx, 64 * 1024);   /* KiB */
    }
}

/* When the library is unloaded (a plugin dlclosed) or the process ends: free the shared context
 * and delete the key, so no thread exiting later calls md_free in code that is gone. A thread
 * still alive then keeps its small match data until it exits. */
__attribute__((destructor)) static void re_fini(void)
{
    if (!re_inited)
        return;
    pcre2_match_context_free(re_mctx);
    re_mctx = NULL;
    pthread_key_delete(re_key);
}

static pcre2_match_data *thread_md(void)
{
    pthread_once(&re_once, re_init);
    pcre2_match_data *md = pthread_getspecific(re_key);
    if (!md) {
        md = pcre2_match_data_create(1, NULL);
        if (md && pthread_setspecific(re_key, md) != 0) {
            pcre2_match_data_free(md);
            md = NULL;
        }
    }
    return md;
}

/* Compiles a caseless UTF regex (JIT when available). Returns NULL with err filled. */
static pcre2_code *re_compile(const char *pat, size_t len, sl_error *err)
{
    int ec;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, len,
                                   PCRE2_CASELESS | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF,
                                   &ec, &off, NULL);
    if (!re) {
        PCRE2_UCHAR buf[256];
        if (pcre2_get_error_message(ec, buf, sizeof buf) < 0)
            snprintf((char *)buf, sizeof buf, "error %d", ec);
        seterr(err, ec == PCRE2_ERROR_NOMEMORY ? SL_ENOMEM : SL_EINVAL, "%s at offset %zu",
               (const char *)buf, (size_t)off);
        return NULL;
    }
    /* JIT is an optimisation: a pattern JIT cannot handle still runs in the interpreter. */
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    return re;
}

/* 1 match, 0 no match, SL_ELIMIT when a limit was hit, SL_ENOMEM. */
static int re_search(const pcre2_code *re, const char *s, size_t len)
{
    pcre2_match_data *md = thread_md();
    if (!md)
        return SL_ENOMEM;
    int rc = pcre2_match(re, (PCRE2_SPTR)s, len, 0, 0, md, re_mctx);
    if (rc >= 0)
        return 1;
    switch (rc) {
    case PCRE2_ERROR_NOMATCH:
        return 0;
    case PCRE2_ERROR_MATCHLIMIT:
    case PCRE2_ERROR_DEPTHLIMIT:
    case PCRE2_ERROR_HEAPLIMIT:
    case PCRE2_ERROR_JIT_STACKLIMIT:
        return SL_ELIMIT;
    case PCRE2_ERROR_NOMEMORY:
        return SL_ENOMEM;
    default:
        return 0;
    }
}

int sl_regex_check(const char *pattern, sl_error *err)
{
    if (!pattern)
        return seterr(err, SL_EINVAL, "no pattern");
    pcre2_code *re = re_compile(pattern, strlen(pattern), err);
    if (!re)
        return err ? err->code : SL_EINVAL;
    pcre2_code_free(re);
    return 0;
}

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
        return seterr(err, SL_EINVAL, "no pattern");
    sl_pattern *p = calloc(1, sizeof *p);
    if (!p || !(p->text = strdup(text))) {
        free(p);
        return seterr(err, SL_ENOMEM, "out of memory");
    }
    if (text[0] == '~') {
        p->kind = P_REGEX;
        sl_error e = {0};
        p->re = re_compile(text + 1, strlen(text + 1), &e);
        if (!p->re) {
            sl_pattern_free(p);
            return seterr(err, e.code, "invalid regular expression \"%s\": %s", text + 1, e.msg);
        }
    } else {
        const char *why = NULL;
        p->kind = strpbrk(text, "*?[") ? P_GLOB : P_EXACT;
        if (p->kind == P_GLOB && glob_check(text, &why) < 0) {
            sl_pattern_free(p);
            return seterr(err, SL_EINVAL, "invalid pattern \"%s\": %s", text, why);
        }
        if (!(p->lower = ascii_lower_dup(text))) {
            sl_pattern_free(p);
            return seterr(err, SL_ENOMEM, "out of memory");
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
        return re_search(p->re, s, strlen(s)) == 1;
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

/* ---- event types ------------------------------------------------------------------------- */

/* DM's names (pkg/binlog-filter/filter.go), with their class; aliases point at their canonical
 * entry through `canon`. Order matters only for expansion output. */
typedef struct evt { const char *name; sl_event_class cls; const char *canon; } evt;

static const evt EVT[] = {
    { "all",                      SL_EVCLASS_GROUP, NULL },
    { "all dml",                  SL_EVCLASS_GROUP, NULL },
    { "all ddl",                  SL_EVCLASS_GROUP, NULL },
    { "none",                     SL_EVCLASS_GROUP, NULL },
    { "none dml",                 SL_EVCLASS_GROUP, NULL },
    { "none ddl",                 SL_EVCLASS_GROUP, NULL },
    { "incompatible ddl changes", SL_EVCLASS_GROUP, NULL },
    { "insert",                   SL_EVCLASS_DML, NULL },
    { "update",                   SL_EVCLASS_DML, NULL },
    { "delete",                   SL_EVCLASS_DML, NULL },
    { "create database",          SL_EVCLASS_DDL, NULL },
    { "alter database",           SL_EVCLASS_DDL, NULL },
    { "create table",             SL_EVCLASS_DDL, NULL },
    { "create index",             SL_EVCLASS_DDL, NULL },
    { "create view",              SL_EVCLASS_DDL, NULL },
    { "drop view",                SL_EVCLASS_DDL, NULL },
    { "alter table",              SL_EVCLASS_DDL, NULL },
    { "add table partition",      SL_EVCLASS_DDL, NULL },
    { "drop database",            SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "drop table",               SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "truncate table",           SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "rename table",             SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "drop index",               SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "drop table partition",     SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "truncate table partition", SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "value range decrease",     SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "precision decrease",       SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "modify column",            SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "rename column",            SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "rename index",             SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "drop column",              SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "drop primary key",         SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "drop unique key",          SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "modify default value",     SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "modify constraint",        SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "modify columns order",     SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "modify charset",           SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "modify collation",         SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "remove auto increment",    SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "modify storage engine",    SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "reorganize table partition", SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "rebuild table partition",  SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "coalesce table partition", SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "split table partition",    SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "exchange table partition", SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "add foreign key",          SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "drop foreign key",         SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "modify schema charset and collate", SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "modify table charset and collate",  SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "modify table comment",     SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "recover table",            SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "alter table partitioning", SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "remove table partitioning", SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "add column",               SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "set default value",        SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "rebase auto id",           SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "add primary key",          SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "alter index visibility",   SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "alter ttl info",           SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "alter ttl remove",         SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    { "multi schema change",      SL_EVCLASS_INCOMPATIBLE_DDL, NULL },
    /* aliases */
    { "create schema",            SL_EVCLASS_DDL, "create database" },
    { "alter schema",             SL_EVCLASS_DDL, "alter database" },
    { "drop schema",              SL_EVCLASS_INCOMPATIBLE_DDL, "drop database" },
};
#define NEVT (sizeof EVT / sizeof EVT[0])

static int evt_index(const char *name)
{
    if (!name)
        return -1;
    for (size_t i = 0; i < NEVT; i++)
        if (strcasecmp(EVT[i].name, name) == 0) {
            if (EVT[i].canon)
                for (size_t j = 0; j < NEVT; j++)
                    if (strcmp(EVT[j].name, EVT[i].canon) == 0)
                        return (int)j;
            return (int)i;
        }
    return -1;
}

sl_event_class sl_event_type_class(const char *name)
{
    int i = evt_index(name);
    return i < 0 ? SL_EVCLASS_UNKNOWN : EVT[i].cls;
}

const char *sl_event_type_canonical(const char *name)
{
    int i = evt_index(name);
    return i < 0 ? NULL : EVT[i].name;
}

const char *sl_dml_event_type(int kind)
{
    switch (kind) {
    case SL_EV_INSERT: return "insert";
    case SL_EV_UPDATE: return "update";
    case SL_EV_DELETE: return "delete";
    }
    return NULL;
}

/* DM's matchEvent for one rule value against one event index: 1 selects, -1 stops the filter
 * ("none*" of the event's class), 0 says nothing. */
static int evt_covers(int rule, int ev)
{
    const char *r = EVT[rule].name;
    sl_event_class c = EVT[ev].cls;
    if (strcmp(r, "all") == 0)
        return 1;
    if (strcmp(r, "none") == 0)
        return -1;
    if (c == SL_EVCLASS_DDL || c == SL_EVCLASS_INCOMPATIBLE_DDL) {
        if (strcmp(r, "all ddl") == 0)
            return 1;
        if (strcmp(r, "none ddl") == 0)
            return -1;
    }
    if (c == SL_EVCLASS_DML) {
        if (strcmp(r, "all dml") == 0)
            return 1;
        if (strcmp(r, "none dml") == 0)
            return -1;
    }
    if (c == SL_EVCLASS_INCOMPATIBLE_DDL && strcmp(r, "incompatible ddl changes") == 0)
        return 1;
    return rule == ev;
}

int sl_event_type_expand(const char *value, const char **out, size_t max)
{
    int v = evt_index(value);
    if (v < 0)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < NEVT; i++) {
        if (EVT[i].cls == SL_EVCLASS_GROUP || EVT[i].canon)
            continue;
        if (evt_covers(v, (int)i) == 1) {
            if (n < max)
                out[n] = EVT[i].name;
            n++;
        }
    }
    return (int)n;
}

/* ---- DDL classifier ---------------------------------------------------------------------- */

typedef struct lexer {
    const char *s, *e;
    int in_exec;    /* inside an executable comment: its closing is skipped */
} lexer;

/* Skips blanks and comments. */
static void lx_skip(lexer *lx)
{
    while (lx->s < lx->e) {
        char c = *lx->s;
        if (isspace((unsigned char)c) || c == ';') {
            lx->s++;
        } else if (c == '#' || (c == '-' && lx->e - lx->s >= 2 && lx->s[1] == '-' &&
                                (lx->e - lx->s == 2 || isspace((unsigned char)lx->s[2])))) {
            while (lx->s < lx->e && *lx->s != '\n')
                lx->s++;
        } else if (c == '/' && lx->e - lx->s >= 2 && lx->s[1] == '*') {
            if (lx->e - lx->s >= 3 && (lx->s[2] == '!' ||
                                       (lx->s[2] == 'M' && lx->e - lx->s >= 4 && lx->s[3] == '!'))) {
                /* MySQL/MariaDB executable comment: its content is code. */
                lx->s += lx->s[2] == '!' ? 3 : 4;
                while (lx->s < lx->e && isdigit((unsigned char)*lx->s))
                    lx->s++;
                lx->in_exec++;
                continue;
            }
            const char *q = lx->s + 2;
            while (q + 1 < lx->e && !(q[0] == '*' && q[1] == '/'))
                q++;
            lx->s = (q + 1 < lx->e) ? q + 2 : lx->e;
        } else if (c == '*' && lx->in_exec && lx->e - lx->s >= 2 && lx->s[1] == '/') {
            lx->in_exec--;
            lx->s += 2;
        } else {
            break;
        }
    }
}

/* Next token: a bare word (copied upper-case into w) returns 1; any other token (quoted name,
 * string, punctuation) returns 2 with w = ""; end returns 0. '(' returns 3. */
static int lx_next(lexer *lx, char *w, size_t wn)
{
    lx_skip(lx);
    w[0] = '\0';
    if (lx->s >= lx->e)
        return 0;
    char c = *lx->s;
    if (isalpha((unsigned char)c) || c == '_') {
        size_t n = 0;
        while (lx->s < lx->e && (isalnum((unsigned char)*lx->s) || *lx->s == '_' || *lx->s == '$')) {
            if (n + 1 < wn)
                w[n++] = (char)toupper((unsigned char)*lx->s);
            lx->s++;
        }
        w[n] = '\0';
        return 1;
    }
    if (c == '`' || c == '\'' || c == '"') {
        lx->s++;
        while (lx->s < lx->e) {
            if (*lx->s == '\\' && c != '`' && lx->s + 1 < lx->e) {
                lx->s += 2;
                continue;
            }
            if (*lx->s == c) {
                if (lx->s + 1 < lx->e && lx->s[1] == c) {   /* doubled quote */
                    lx->s += 2;
                    continue;
                }
                lx->s++;
                break;
            }
            lx->s++;
        }
        return 2;
    }
    lx->s++;
    return c == '(' ? 3 : 2;
}

static int is(const char *w, const char *kw) { return strcmp(w, kw) == 0; }

const char *sl_ddl_event_type(const char *sql, size_t len)
{
    if (!sql)
        return NULL;
    lexer lx = { sql, sql + len, 0 };
    char w[32];
    if (lx_next(&lx, w, sizeof w) != 1)
        return NULL;
    char verb[32];
    memcpy(verb, w, sizeof verb);
    if (is(verb, "TRUNCATE"))
        return "truncate table";    /* TRUNCATE [TABLE] t */
    if (is(verb, "RENAME")) {
        if (lx_next(&lx, w, sizeof w) == 1 && (is(w, "TABLE") || is(w, "TABLES")))
            return "rename table";
        return NULL;
    }
    if (!is(verb, "CREATE") && !is(verb, "DROP") && !is(verb, "ALTER"))
        return NULL;
    /* Scan the words before the object keyword: OR REPLACE, TEMPORARY, UNIQUE, ONLINE, IGNORE,
     * ALGORITHM=x, DEFINER=user, SQL SECURITY x... Stop at '(' or after a bounded number. */
    for (int i = 0; i < 24; i++) {
        int t = lx_next(&lx, w, sizeof w);
        if (t == 0 || t == 3)
            return NULL;
        if (t != 1)
            continue;
        if (is(w, "DATABASE") || is(w, "SCHEMA"))
            return is(verb, "CREATE") ? "create database" : is(verb, "DROP") ? "drop database"
                                                                               : "alter database";
        if (is(w, "TABLE") || is(w, "TABLES"))
            return is(verb, "CREATE") ? "create table" : is(verb, "DROP") ? "drop table"
                                                                            : "alter table";
        if (is(w, "INDEX") || is(w, "KEY"))
            return is(verb, "CREATE") ? "create index" : is(verb, "DROP") ? "drop index" : NULL;
        if (is(w, "VIEW"))
            return is(verb, "CREATE") ? "create view" : is(verb, "DROP") ? "drop view" : NULL;
        if (is(w, "TRIGGER") || is(w, "PROCEDURE") || is(w, "FUNCTION") || is(w, "EVENT") ||
            is(w, "USER") || is(w, "ROLE") || is(w, "SEQUENCE") || is(w, "SERVER") ||
            is(w, "TABLESPACE") || is(w, "PACKAGE") || is(w, "LOGFILE") || is(w, "AGGREGATE") ||
            is(w, "INSTANCE") || is(w, "RESOURCE"))
            return NULL;
    }
    return NULL;
}

/* ---- compiled rules ---------------------------------------------------------------------- */

typedef struct filt {
    size_t         nev;
    int           *ev;      /* EVT indexes in task order (DM's first-match semantics) */
    pcre2_code    *sql;     /* ignore_sql patterns joined, NULL if none */
} filt;

typedef struct rule {
    sl_pattern *schema;
    sl_pattern *table;      /* NULL: schema-level rule */
    char       *tschema;    /* NULL: unchanged */
    char       *ttable;
    size_t      nf;
    filt       *f;
} rule;

struct sl_rules {
    size_t n;
    rule  *v;
};

void sl_rules_free(sl_rules *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++) {
        rule *ru = &r->v[i];
        sl_pattern_free(ru->schema);
        sl_pattern_free(ru->table);
        free(ru->tschema);
        free(ru->ttable);
        for (size_t j = 0; j < ru->nf; j++) {
            free(ru->f[j].ev);
            pcre2_code_free(ru->f[j].sql);
        }
        free(ru->f);
    }
    free(r->v);
    free(r);
}

/* Optional string member: NULL if absent or null; -1 if present with another type. */
static int opt_str(json_t *o, const char *k, const char **out)
{
    json_t *v = json_object_get(o, k);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return -1;
    *out = json_string_value(v);
    return 0;
}

static int compile_filter(json_t *fj, filt *f, size_t ri, size_t fi, sl_error *err)
{
    if (!json_is_object(fj))
        return seterr(err, SL_EINVAL, "rule %zu: filter %zu is not an object", ri, fi);
    json_t *ev = json_object_get(fj, "ignore_event"), *sq = json_object_get(fj, "ignore_sql");
    if (ev && !json_is_null(ev)) {
        if (!json_is_array(ev))
            return seterr(err, SL_EINVAL, "rule %zu: filter %zu: ignore_event is not an array", ri, fi);
        f->ev = calloc(json_array_size(ev) + 1, sizeof *f->ev);
        if (!f->ev)
            return seterr(err, SL_ENOMEM, "out of memory");
        size_t k;
        json_t *x;
        json_array_foreach(ev, k, x) {
            int idx = json_is_string(x) ? evt_index(json_string_value(x)) : -1;
            if (idx < 0)
                return seterr(err, SL_EINVAL, "rule %zu: filter %zu: unknown event type %s%s%s", ri,
                              fi, json_is_string(x) ? "\"" : "",
                              json_is_string(x) ? json_string_value(x) : "(not a string)",
                              json_is_string(x) ? "\"" : "");
            f->ev[f->nev++] = idx;
        }
    }
    if (sq && !json_is_null(sq)) {
        if (!json_is_array(sq))
            return seterr(err, SL_EINVAL, "rule %zu: filter %zu: ignore_sql is not an array", ri, fi);
        /* DM joins the patterns with '|' into one regex; grouping each one keeps a pattern's
         * own alternation from leaking into its neighbours. */
        size_t cap = 1, k;
        json_t *x;
        json_array_foreach(sq, k, x) {
            if (!json_is_string(x))
                return seterr(err, SL_EINVAL, "rule %zu: filter %zu: ignore_sql/%zu is not a string",
                              ri, fi, k);
            sl_error e = {0};
            if (sl_regex_check(json_string_value(x), &e) < 0)
                return seterr(err, e.code, "rule %zu: filter %zu: ignore_sql/%zu: %s", ri, fi, k, e.msg);
            cap += json_string_length(x) + 5;
        }
        if (json_array_size(sq) > 0) {
            char *joined = malloc(cap), *p = joined;
            if (!joined)
                return seterr(err, SL_ENOMEM, "out of memory");
            json_array_foreach(sq, k, x) {
                if (k)
                    *p++ = '|';
                memcpy(p, "(?:", 3);
                p += 3;
                memcpy(p, json_string_value(x), json_string_length(x));
                p += json_string_length(x);
                *p++ = ')';
            }
            sl_error e = {0};
            f->sql = re_compile(joined, (size_t)(p - joined), &e);
            free(joined);
            if (!f->sql)
                return seterr(err, e.code, "rule %zu: filter %zu: ignore_sql: %s", ri, fi, e.msg);
        }
    }
    return 0;
}

int sl_rules_new(const char *rules_json, sl_rules **out, sl_error *err)
{
    *out = NULL;
    json_error_t je;
    json_t *root = json_loads(rules_json ? rules_json : "", JSON_DECODE_ANY, &je);
    if (!root)
        return seterr(err, SL_EPARSE, "rules: %s (line %d, column %d)", je.text, je.line, je.column);
    if (!json_is_array(root)) {
        json_decref(root);
        return seterr(err, SL_EINVAL, "rules must be a JSON array");
    }
    sl_rules *r = calloc(1, sizeof *r);
    if (!r || !(r->v = calloc(json_array_size(root) + 1, sizeof *r->v))) {
        free(r);
        json_decref(root);
        return seterr(err, SL_ENOMEM, "out of memory");
    }
    int rc = 0;
    size_t i;
    json_t *rj;
    json_array_foreach(root, i, rj) {
        rule *ru = &r->v[r->n++];
        const char *schema, *table, *ts, *tt;
        if (!json_is_object(rj)) {
            rc = seterr(err, SL_EINVAL, "rule %zu is not an object", i);
            break;
        }
        if (opt_str(rj, "schema", &schema) < 0 || opt_str(rj, "table", &table) < 0 ||
            opt_str(rj, "target_schema", &ts) < 0 || opt_str(rj, "target_table", &tt) < 0) {
            rc = seterr(err, SL_EINVAL, "rule %zu: schema, table, target_schema and target_table "
                        "must be strings", i);
            break;
        }
        if (!schema || !*schema) {
            rc = seterr(err, SL_EINVAL, "rule %zu: schema pattern is required", i);
            break;
        }
        sl_error e = {0};
        if ((rc = sl_pattern_compile(schema, &ru->schema, &e)) < 0 ||
            (table && *table && (rc = sl_pattern_compile(table, &ru->table, &e)) < 0)) {
            rc = seterr(err, rc, "rule %zu: %s", i, e.msg);
            break;
        }
        if ((ts && *ts && !(ru->tschema = strdup(ts))) || (tt && *tt && !(ru->ttable = strdup(tt)))) {
            rc = seterr(err, SL_ENOMEM, "out of memory");
            break;
        }
        json_t *fs = json_object_get(rj, "filters");
        if (fs && !json_is_null(fs)) {
            if (!json_is_array(fs)) {
                rc = seterr(err, SL_EINVAL, "rule %zu: filters is not an array", i);
                break;
            }
            if (!(ru->f = calloc(json_array_size(fs) + 1, sizeof *ru->f))) {
                rc = seterr(err, SL_ENOMEM, "out of memory");
                break;
            }
            size_t k;
            json_t *fj;
            json_array_foreach(fs, k, fj) {
                ru->nf++;
                if ((rc = compile_filter(fj, &ru->f[k], i, k, err)) < 0)
                    break;
            }
            if (rc < 0)
                break;
        }
    }
    json_decref(root);
    if (rc < 0) {
        sl_rules_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

size_t sl_rules_count(const sl_rules *r) { return r ? r->n : 0; }

int sl_rules_find(const sl_rules *r, const char *schema, const char *table)
{
    if (!r || !schema)
        return -1;
    int schema_level = -1;
    for (size_t i = 0; i < r->n; i++) {
        const rule *ru = &r->v[i];
        if (!sl_pattern_match(ru->schema, schema))
            continue;
        if (ru->table) {
            if (table && *table && sl_pattern_match(ru->table, table))
                return (int)i;   /* the first table-level match wins over any schema-level one */
        } else if (schema_level < 0) {
            schema_level = (int)i;
        }
    }
    return schema_level;
}

void sl_rules_target(const sl_rules *r, int rule_i, const char *schema, const char *table,
                     const char **tschema, const char **ttable)
{
    *tschema = schema;
    *ttable = table;
    if (!r || rule_i < 0 || (size_t)rule_i >= r->n)
        return;
    const rule *ru = &r->v[rule_i];
    if (ru->tschema)
        *tschema = ru->tschema;
    if (ru->ttable)
        *ttable = ru->ttable;
}

int sl_rules_ignores_event(const sl_rules *r, int rule_i, const char *dm_event)
{
    if (!r || rule_i < 0 || (size_t)rule_i >= r->n)
        return 0;
    int ev = evt_index(dm_event);
    if (ev < 0 || EVT[ev].cls == SL_EVCLASS_GROUP)
        return 0;
    const rule *ru = &r->v[rule_i];
    for (size_t j = 0; j < ru->nf; j++) {
        for (size_t k = 0; k < ru->f[j].nev; k++) {
            int c = evt_covers(ru->f[j].ev[k], ev);
            if (c == 1)
                return 1;
            if (c < 0)
                break;
        }
    }
    return 0;
}

int sl_rules_ignores_sql(const sl_rules *r, int rule_i, const char *sql, size_t len)
{
    if (!r || rule_i < 0 || (size_t)rule_i >= r->n || !sql)
        return 0;
    const rule *ru = &r->v[rule_i];
    for (size_t j = 0; j < ru->nf; j++) {
        if (!ru->f[j].sql)
            continue;
        int rc = re_search(ru->f[j].sql, sql, len);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int sl_rules_schema_selected(const sl_rules *r, const char *schema)
{
    if (!r || !schema)
        return 0;
    for (size_t i = 0; i < r->n; i++)
        if (sl_pattern_match(r->v[i].schema, schema))
            return 1;
    return 0;
}

static int streq_ci(const char *a, const char *b) { return a && b && strcasecmp(a, b) == 0; }

int sl_rules_shard_merge(const sl_rules *r)
{
    if (!r)
        return 0;
    for (size_t i = 0; i < r->n; i++) {
        const rule *a = &r->v[i];
        if (a->ttable && (!sl_pattern_is_exact(a->schema) || !a->table || !sl_pattern_is_exact(a->table)))
            return 1;
        if (!a->table && a->tschema && !sl_pattern_is_exact(a->schema))
            return 1;
        if (!a->ttable)
            continue;
        const char *as = a->tschema ? a->tschema : sl_pattern_text(a->schema);
        for (size_t j = i + 1; j < r->n; j++) {
            const rule *b = &r->v[j];
            if (!b->ttable || !streq_ci(a->ttable, b->ttable))
                continue;
            if (streq_ci(as, b->tschema ? b->tschema : sl_pattern_text(b->schema)))
                return 1;
        }
    }
    return 0;
}

int sl_rules_has_filters(const sl_rules *r, int rule_i)
{
    if (!r || rule_i < 0 || (size_t)rule_i >= r->n)
        return 0;
    return r->v[rule_i].nf > 0;
}
