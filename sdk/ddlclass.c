/*
 * ddlclass.c - DM's classification of a DDL statement into the event type its binlog filter
 * matches (match.h sl_ddl_event_type), with a small lexer that skips comments and reads MySQL
 * executable comments as code. No SQL parser: only the leading keywords decide.
 */
#include "sluice/match.h"

#include <ctype.h>
#include <stddef.h>
#include <string.h>

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
