/*
 * ddl.c - the DDL lexer and name rewriter of ddl.h: tokenizes a statement (skipping comments,
 * reading executable comments as code), recognizes the statement kinds replication applies and
 * records where each schema/table name sits, so route can rewrite exactly those bytes.
 */
#include "ddl.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { T_END = 0, T_IDENT, T_QIDENT, T_STRING, T_NUM, T_PUNCT };

typedef struct tok {
    int    type;
    size_t start, end;     /* bytes in the text */
    char   c;              /* T_PUNCT */
} tok;

typedef struct lexer {
    const char *s;
    size_t      len, pos;
    int         in_exec;   /* inside an executable comment: its closing star-slash is skipped */
    unsigned    mode;      /* SL_DDLM_* of the session that ran the text */
} lexer;

static int ident_char(unsigned char c)
{
    return isalnum(c) || c == '_' || c == '$' || c >= 0x80;
}

static tok next_tok(lexer *lx)
{
    const char *s = lx->s;
    for (;;) {
        while (lx->pos < lx->len && isspace((unsigned char)s[lx->pos]))
            lx->pos++;
        if (lx->pos >= lx->len)
            return (tok){ .type = T_END, .start = lx->len, .end = lx->len };
        size_t p = lx->pos;
        char c = s[p];
        if (c == '#' || (c == '-' && p + 2 <= lx->len && s[p + 1] == '-' &&
                         (p + 2 == lx->len || isspace((unsigned char)s[p + 2])))) {
            while (lx->pos < lx->len && s[lx->pos] != '\n')
                lx->pos++;
            continue;
        }
        if (c == '/' && p + 1 < lx->len && s[p + 1] == '*') {
            /* executable comment: slash-star-bang [digits] or slash-star-M-bang [digits] */
            size_t q = p + 2;
            if (q < lx->len && s[q] == 'M' && q + 1 < lx->len && s[q + 1] == '!')
                q++;
            if (q < lx->len && s[q] == '!') {
                q++;
                while (q < lx->len && isdigit((unsigned char)s[q]))
                    q++;
                lx->pos = q;
                lx->in_exec++;
                continue;
            }
            const char *e = NULL;
            for (size_t i = p + 2; i + 1 < lx->len; i++)
                if (s[i] == '*' && s[i + 1] == '/') { e = s + i; break; }
            lx->pos = e ? (size_t)(e - s) + 2 : lx->len;
            continue;
        }
        if (c == '*' && lx->in_exec && p + 1 < lx->len && s[p + 1] == '/') {
            lx->in_exec--;
            lx->pos += 2;
            continue;
        }
        if (c == '`' || c == '\'' || c == '"') {
            /* "x" names with ANSI_QUOTES; a backslash escapes in strings only, and not with
             * NO_BACKSLASH_ESCAPES (MariaDB sql_lex.cc); a doubled quote escapes everywhere */
            int ident = c == '`' || (c == '"' && (lx->mode & SL_DDLM_ANSI_QUOTES));
            int bs = !ident && !(lx->mode & SL_DDLM_NO_BACKSLASH_ESCAPES);
            size_t q = p + 1;
            while (q < lx->len) {
                if (bs && s[q] == '\\' && q + 1 < lx->len) { q += 2; continue; }
                if (s[q] == c) {
                    if (q + 1 < lx->len && s[q + 1] == c) { q += 2; continue; }
                    break;
                }
                q++;
            }
            lx->pos = q < lx->len ? q + 1 : lx->len;
            return (tok){ .type = ident ? T_QIDENT : T_STRING, .start = p, .end = lx->pos };
        }
        if (ident_char((unsigned char)c)) {
            size_t q = p;
            while (q < lx->len && ident_char((unsigned char)s[q]))
                q++;
            lx->pos = q;
            int num = 1;
            for (size_t i = p; i < q; i++)
                if (!isdigit((unsigned char)s[i])) { num = 0; break; }
            return (tok){ .type = num ? T_NUM : T_IDENT, .start = p, .end = q };
        }
        lx->pos++;
        return (tok){ .type = T_PUNCT, .start = p, .end = p + 1, .c = c };
    }
}

typedef struct parser {
    const char *s;
    tok        *t;
    size_t      n, i;
    const char *defschema;
    sl_ddl     *out;
    size_t      cap, refcap;
} parser;

static const tok *cur(parser *p) { return &p->t[p->i < p->n ? p->i : p->n - 1]; }

static int is_kw(parser *p, size_t at, const char *kw)
{
    if (at >= p->n)
        return 0;
    const tok *t = &p->t[at];
    size_t l = strlen(kw);
    return t->type == T_IDENT && t->end - t->start == l && strncasecmp(p->s + t->start, kw, l) == 0;
}

static int accept(parser *p, const char *kw)
{
    if (is_kw(p, p->i, kw)) { p->i++; return 1; }
    return 0;
}

static int is_punct(parser *p, size_t at, char c)
{
    return at < p->n && p->t[at].type == T_PUNCT && p->t[at].c == c;
}

/* The unquoted text of an identifier token (malloc'd). */
static char *ident_text(parser *p, const tok *t)
{
    const char *s = p->s + t->start;
    size_t l = t->end - t->start;
    char *r;
    if (t->type == T_QIDENT) {
        /* between the quotes, backticks or (ANSI_QUOTES) double quotes; the closing one may be
         * missing at the end of the text */
        char qc = s[0];
        size_t b = 1, e = l;
        if (l >= 2 && s[l - 1] == qc)
            e = l - 1;
        r = malloc(l + 1);
        if (!r) return NULL;
        size_t o = 0;
        for (size_t k = b; k < e; k++) {
            r[o++] = s[k];
            if (s[k] == qc && k + 1 < e && s[k + 1] == qc)
                k++;
        }
        r[o] = '\0';
        return r;
    }
    r = malloc(l + 1);
    if (!r) return NULL;
    memcpy(r, s, l);
    r[l] = '\0';
    return r;
}

static int is_ident(const tok *t) { return t->type == T_IDENT || t->type == T_QIDENT || t->type == T_NUM; }

/* Append a name to the statement's names, or (ref) to the tables its foreign keys reference. */
static int add_to(parser *p, int ref, char *schema, char *table, size_t start, size_t end)
{
    if (!schema || !table) { free(schema); free(table); return SL_ENOMEM; }
    sl_ddl *d = p->out;
    sl_ddl_name **v = ref ? &d->refs : &d->names;
    size_t *n = ref ? &d->nrefs : &d->nnames, *cap = ref ? &p->refcap : &p->cap;
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 4;
        sl_ddl_name *nn = realloc(*v, nc * sizeof *nn);
        if (!nn) { free(schema); free(table); return SL_ENOMEM; }
        *v = nn;
        *cap = nc;
    }
    (*v)[(*n)++] = (sl_ddl_name){ .schema = schema, .table = table, .start = start, .end = end };
    return 0;
}

static int add_name(parser *p, char *schema, char *table, size_t start, size_t end)
{
    return add_to(p, 0, schema, table, start, end);
}

static char *dupdef(parser *p) { return strdup(p->defschema ? p->defschema : ""); }

/* A table name at the current token: ident [. ident], into the names or (ref) the references. */
static int qualified_name(parser *p, int ref)
{
    const tok *a = cur(p);
    if (!is_ident(a))
        return SL_EPARSE;
    p->i++;
    if (is_punct(p, p->i, '.') && p->i + 1 < p->n && is_ident(&p->t[p->i + 1])) {
        const tok *b = &p->t[p->i + 1];
        p->i += 2;
        return add_to(p, ref, ident_text(p, a), ident_text(p, b), a->start, b->end);
    }
    return add_to(p, ref, dupdef(p), ident_text(p, a), a->start, a->end);
}

static int table_name(parser *p) { return qualified_name(p, 0); }

/* The table after each REFERENCES of a CREATE or ALTER TABLE, into d->refs (after the parse:
 * it moves the current token). */
static int reference_names(parser *p)
{
    for (size_t k = 0; k + 1 < p->n; k++) {
        if (!is_kw(p, k, "REFERENCES") || !is_ident(&p->t[k + 1]))
            continue;
        p->i = k + 1;
        int rc = qualified_name(p, 1);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int db_name(parser *p)
{
    const tok *a = cur(p);
    if (!is_ident(a))
        return SL_EPARSE;
    p->i++;
    return add_name(p, ident_text(p, a), strdup(""), a->start, a->end);
}

static void skip_if_exists(parser *p)
{
    if (is_kw(p, p->i, "IF") && is_kw(p, p->i + 1, "EXISTS"))
        p->i += 2;
    else if (is_kw(p, p->i, "IF") && is_kw(p, p->i + 1, "NOT") && is_kw(p, p->i + 2, "EXISTS"))
        p->i += 3;
}

static void skip_wait(parser *p)
{
    if (accept(p, "NOWAIT"))
        return;
    if (is_kw(p, p->i, "WAIT") && p->i + 1 < p->n && p->t[p->i + 1].type == T_NUM)
        p->i += 2;
}

static int parse_create(parser *p)
{
    sl_ddl *d = p->out;
    if (is_kw(p, p->i, "OR") && is_kw(p, p->i + 1, "REPLACE"))
        p->i += 2;
    if (accept(p, "DATABASE") || accept(p, "SCHEMA")) {
        d->kind = SL_DDL_CREATE_DB;
        skip_if_exists(p);
        return db_name(p);
    }
    if (accept(p, "TEMPORARY"))
        d->temporary = 1;
    if (accept(p, "TABLE") || accept(p, "SEQUENCE")) {   /* a sequence is a table in MariaDB */
        d->kind = SL_DDL_CREATE_TABLE;
        skip_if_exists(p);
        int rc = table_name(p);
        if (rc < 0)
            return rc;
        size_t save = p->i;
        if (is_punct(p, p->i, '('))
            p->i++;
        if (accept(p, "LIKE")) {
            d->is_like = 1;
            return table_name(p);
        }
        p->i = save;
        /* CREATE TABLE ... [AS] SELECT: a column may not be named SELECT unquoted, and a
         * definition holds no subquery */
        for (size_t k = p->i; k < p->n; k++)
            if (is_kw(p, k, "SELECT"))
                d->writes_rows = 1;
        return 0;
    }
    (void)(accept(p, "ONLINE") || accept(p, "OFFLINE"));
    (void)(accept(p, "UNIQUE") || accept(p, "FULLTEXT") || accept(p, "SPATIAL"));
    if (accept(p, "INDEX") || accept(p, "KEY")) {
        d->kind = SL_DDL_CREATE_INDEX;
        skip_if_exists(p);
        if (!is_ident(cur(p)))
            return SL_EPARSE;
        p->i++;                                 /* the index name */
        while (p->i < p->n && !is_kw(p, p->i, "ON"))
            p->i++;
        if (!accept(p, "ON"))
            return SL_EPARSE;
        return table_name(p);
    }
    return 0;
}

static int parse_alter(parser *p)
{
    sl_ddl *d = p->out;
    accept(p, "ONLINE");
    accept(p, "IGNORE");
    if (accept(p, "DATABASE") || accept(p, "SCHEMA")) {
        d->kind = SL_DDL_ALTER_DB;
        static const char *const opts[] = { "DEFAULT", "CHARACTER", "CHARSET", "COLLATE",
                                            "COMMENT", "UPGRADE", NULL };
        int named = is_ident(cur(p));
        for (int k = 0; named && opts[k]; k++)
            if (is_kw(p, p->i, opts[k]))
                named = 0;
        if (named)
            return db_name(p);
        size_t at = cur(p)->start;
        /* implicit: the default schema, inserted before the options */
        return add_name(p, dupdef(p), strdup(""), at, at);
    }
    if (!accept(p, "TABLE") && !accept(p, "SEQUENCE"))
        return 0;
    d->kind = SL_DDL_ALTER_TABLE;
    skip_if_exists(p);
    int rc = table_name(p);
    if (rc < 0)
        return rc;
    skip_wait(p);
    int depth = 0;
    while (p->i < p->n && cur(p)->type != T_END) {
        if (is_punct(p, p->i, '(')) depth++;
        else if (is_punct(p, p->i, ')')) depth--;
        else if (depth == 0 && is_kw(p, p->i, "RENAME")) {
            p->i++;
            if (is_kw(p, p->i, "COLUMN") || is_kw(p, p->i, "INDEX") || is_kw(p, p->i, "KEY"))
                continue;
            (void)(accept(p, "TO") || accept(p, "AS"));
            rc = table_name(p);
            if (rc < 0)
                return rc;
            continue;
        }
        p->i++;
    }
    return 0;
}

static int parse_drop(parser *p)
{
    sl_ddl *d = p->out;
    if (accept(p, "DATABASE") || accept(p, "SCHEMA")) {
        d->kind = SL_DDL_DROP_DB;
        skip_if_exists(p);
        return db_name(p);
    }
    if (accept(p, "TEMPORARY"))
        d->temporary = 1;
    if (accept(p, "TABLE") || accept(p, "TABLES") || accept(p, "SEQUENCE")) {
        d->kind = SL_DDL_DROP_TABLE;
        skip_if_exists(p);
        for (;;) {
            int rc = table_name(p);
            if (rc < 0)
                return rc;
            if (!is_punct(p, p->i, ','))
                return 0;
            p->i++;
        }
    }
    (void)(accept(p, "ONLINE") || accept(p, "OFFLINE"));
    if (accept(p, "INDEX") || accept(p, "KEY")) {
        d->kind = SL_DDL_DROP_INDEX;
        skip_if_exists(p);
        if (!is_ident(cur(p)))
            return SL_EPARSE;
        p->i++;
        if (!accept(p, "ON"))
            return SL_EPARSE;
        return table_name(p);
    }
    return 0;
}

static int parse_rename(parser *p)
{
    sl_ddl *d = p->out;
    if (!(accept(p, "TABLE") || accept(p, "TABLES")))
        return 0;
    d->kind = SL_DDL_RENAME_TABLE;
    skip_if_exists(p);
    for (;;) {
        int rc = table_name(p);
        if (rc < 0)
            return rc;
        skip_wait(p);
        if (!accept(p, "TO"))
            return SL_EPARSE;
        if ((rc = table_name(p)) < 0)
            return rc;
        if (!is_punct(p, p->i, ','))
            return 0;
        p->i++;
    }
}

/* Skip an alias and index hints after a table reference: up to the next ',', JOIN keyword,
 * ON/USING/WHERE/SET or the end, at depth 0. */
static int at_ref_end(parser *p, size_t k)
{
    static const char *const stop[] = { "JOIN", "STRAIGHT_JOIN", "ON", "USING", "WHERE", "SET",
                                        "FROM", "ORDER", "LIMIT", "INNER", "CROSS", "LEFT",
                                        "RIGHT", "NATURAL", "VALUES", "VALUE", "SELECT",
                                        "PARTITION", "RETURNING", NULL };
    if (is_punct(p, k, ',') || is_punct(p, k, '(') || is_punct(p, k, ')') || p->t[k].type == T_END)
        return 1;
    for (int i = 0; stop[i]; i++)
        if (is_kw(p, k, stop[i]))
            return 1;
    return 0;
}

/*
 * The table references of UPDATE or of DELETE's lists, up to the keyword that ends them
 * (SET, WHERE, ...): every name that starts a reference (at the start, after ',', '(' or a
 * JOIN) is a table the statement may write. Names in subqueries are not written; an
 * alias in DELETE's list comes out as a table of the default schema, which is harmless (a name
 * too many can only keep a statement, never let one through).
 */
static int table_refs(parser *p, const char *const *until)
{
    int expect = 1;
    while (p->i < p->n && p->t[p->i].type != T_END) {
        for (int u = 0; until[u]; u++)
            if (is_kw(p, p->i, until[u]))
                return 0;
        if (is_punct(p, p->i, ',') || is_punct(p, p->i, '(') || is_kw(p, p->i, "JOIN") ||
            is_kw(p, p->i, "STRAIGHT_JOIN")) {
            expect = 1;
            p->i++;
            continue;
        }
        if (expect && is_ident(cur(p)) && !is_kw(p, p->i, "SELECT") && !is_kw(p, p->i, "LATERAL")) {
            int rc = table_name(p);
            if (rc < 0)
                return rc;
            if (is_punct(p, p->i, '.') && is_punct(p, p->i + 1, '*'))
                p->i += 2;                      /* DELETE t.* FROM ... */
            expect = 0;
            while (p->i < p->n && !at_ref_end(p, p->i))
                p->i++;
            continue;
        }
        expect = 0;
        p->i++;
    }
    return 0;
}

static void skip_modifiers(parser *p)
{
    static const char *const mods[] = { "LOW_PRIORITY", "DELAYED", "HIGH_PRIORITY", "QUICK",
                                        "IGNORE", "CONCURRENT", "LOCAL", NULL };
    for (int again = 1; again;) {
        again = 0;
        for (int i = 0; mods[i]; i++)
            if (accept(p, mods[i]))
                again = 1;
    }
}

/* INSERT, REPLACE, UPDATE, DELETE, LOAD DATA/XML: writes_rows, and the tables written. */
static int parse_dml(parser *p)
{
    sl_ddl *d = p->out;
    static const char *const upd_until[] = { "SET", NULL };
    static const char *const del_until[] = { "FROM", "USING", "WHERE", "ORDER", "LIMIT",
                                             "RETURNING", "PARTITION", NULL };
    static const char *const using_until[] = { "USING", "WHERE", "ORDER", "LIMIT", "RETURNING",
                                               "PARTITION", NULL };
    static const char *const join_until[] = { "WHERE", "ORDER", "LIMIT", "RETURNING", NULL };
    if (accept(p, "INSERT") || accept(p, "REPLACE")) {
        d->writes_rows = 1;
        skip_modifiers(p);
        accept(p, "INTO");
        return table_name(p);
    }
    if (accept(p, "UPDATE")) {
        d->writes_rows = 1;
        skip_modifiers(p);
        return table_refs(p, upd_until);
    }
    if (accept(p, "DELETE")) {
        d->writes_rows = 1;
        skip_modifiers(p);
        int rc;
        if (accept(p, "FROM")) {                /* DELETE FROM t [, u USING refs] */
            if ((rc = table_refs(p, using_until)) < 0)
                return rc;
            return accept(p, "USING") ? table_refs(p, join_until) : 0;
        }
        if ((rc = table_refs(p, del_until)) < 0)     /* DELETE t, u FROM refs */
            return rc;
        return accept(p, "FROM") ? table_refs(p, join_until) : 0;
    }
    if (accept(p, "LOAD")) {
        if (!accept(p, "DATA") && !accept(p, "XML"))
            return 0;
        d->writes_rows = 1;
        while (p->i < p->n && p->t[p->i].type != T_END && !is_kw(p, p->i, "INTO"))
            p->i++;
        if (!accept(p, "INTO") || !accept(p, "TABLE"))
            return SL_EPARSE;
        return table_name(p);
    }
    return 0;
}

void sl_ddl_free(sl_ddl *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->nnames; i++) {
        free(d->names[i].schema);
        free(d->names[i].table);
    }
    free(d->names);
    for (size_t i = 0; i < d->nrefs; i++) {
        free(d->refs[i].schema);
        free(d->refs[i].table);
    }
    free(d->refs);
    memset(d, 0, sizeof *d);
}

/* Every token of sql, the last one T_END (malloc'd, *n of them); NULL if no memory. */
static tok *lex_all(const char *sql, size_t len, unsigned mode, size_t *n)
{
    lexer lx = { .s = sql, .len = len, .mode = mode };
    size_t cap = 64;
    tok *t = malloc(cap * sizeof *t);
    *n = 0;
    if (!t)
        return NULL;
    for (;;) {
        if (*n == cap) {
            tok *nt = realloc(t, cap * 2 * sizeof *t);
            if (!nt) { free(t); return NULL; }
            t = nt;
            cap *= 2;
        }
        t[*n] = next_tok(&lx);
        if (t[(*n)++].type == T_END)
            return t;
    }
}

int sl_ddl_parse(const char *sql, size_t len, const char *default_schema, unsigned mode,
                 sl_ddl *out)
{
    memset(out, 0, sizeof *out);
    size_t n;
    tok *t = lex_all(sql, len, mode, &n);
    if (!t)
        return SL_ENOMEM;
    parser p = { .s = sql, .t = t, .n = n, .defschema = default_schema, .out = out };
    int rc = 0;
    if (accept(&p, "CREATE"))
        rc = parse_create(&p);
    else if (accept(&p, "ALTER"))
        rc = parse_alter(&p);
    else if (accept(&p, "DROP"))
        rc = parse_drop(&p);
    else if (accept(&p, "TRUNCATE")) {
        out->kind = SL_DDL_TRUNCATE_TABLE;
        accept(&p, "TABLE");
        rc = table_name(&p);
    } else if (accept(&p, "RENAME"))
        rc = parse_rename(&p);
    else
        rc = parse_dml(&p);
    if (rc == 0 && (out->kind == SL_DDL_CREATE_TABLE || out->kind == SL_DDL_ALTER_TABLE) && !out->is_like)
        rc = reference_names(&p);
    free(t);
    return rc;
}

int sl_ddl_rewrite(const char *sql, size_t len, const sl_ddl *d, sl_ddl_map_fn map, void *ud,
                   sl_sbuf *out)
{
    size_t at = 0;
    for (size_t i = 0, r = 0; i < d->nnames || r < d->nrefs;) {
        /* the names and the references, in the order of the text */
        int ref = r < d->nrefs && (i == d->nnames || d->refs[r].start < d->names[i].start);
        const sl_ddl_name *nm = ref ? &d->refs[r++] : &d->names[i++];
        if (nm->start < at || nm->end > len)
            continue;                           /* never happens with a parse of the same text */
        const char *ts = nm->schema, *tt = nm->table;
        map(ud, nm->schema, nm->table, &ts, &tt);
        /* a reference keeps its text unless its route changes it: unqualified, it resolves in
         * the statement's (routed) default schema, as it did before */
        if (ref && !strcmp(ts, nm->schema) && !strcmp(tt, nm->table))
            continue;
        sl_sbuf_add(out, sql + at, nm->start - at);
        int implicit = nm->start == nm->end;
        if (nm->table[0] && ts[0])
            sl_sbuf_add_qname(out, ts, tt);
        else if (nm->table[0])
            sl_sbuf_add_ident(out, tt);
        else
            sl_sbuf_add_ident(out, ts);
        if (implicit)
            sl_sbuf_adds(out, " ");
        at = nm->end;
    }
    sl_sbuf_add(out, sql + at, len - at);
    return out->oom ? SL_ENOMEM : 0;
}

/* ---- the normalized form ---------------------------------------------------------------- */

/* 1 if byte offset at lies in one of the n names v (the statement's tables: compared exactly). */
static int in_names(const sl_ddl_name *v, size_t n, size_t at)
{
    for (size_t i = 0; i < n; i++)
        if (at >= v[i].start && at < v[i].end)
            return 1;
    return 0;
}

/* A string token's value, as the server reads it (MariaDB sql_lex.cc: a doubled quote is one;
 * unless NO_BACKSLASH_ESCAPES, a backslash escapes the next character, \% and \_ keeping it),
 * into out between single quotes with a quote doubled. */
static void add_string_value(sl_sbuf *out, const char *s, size_t l, unsigned mode)
{
    char qc = s[0];
    size_t e = l >= 2 && s[l - 1] == qc ? l - 1 : l;
    sl_sbuf_adds(out, "'");
    for (size_t k = 1; k < e; k++) {
        char c = s[k];
        if (c == qc && k + 1 < e && s[k + 1] == qc) {
            k++;
        } else if (c == '\\' && !(mode & SL_DDLM_NO_BACKSLASH_ESCAPES) && k + 1 < e) {
            c = s[++k];
            switch (c) {
            case '0': c = '\0'; break;
            case 'b': c = '\b'; break;
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 't': c = '\t'; break;
            case 'Z': c = '\032'; break;
            case '%': case '_': sl_sbuf_adds(out, "\\"); break;
            default: break;
            }
        }
        sl_sbuf_add(out, c == '\'' ? "''" : &c, c == '\'' ? 2 : 1);
    }
    sl_sbuf_adds(out, "'");
}

int sl_ddl_normalize(const char *sql, size_t len, unsigned mode, sl_sbuf *out)
{
    sl_ddl d;
    int rc = sl_ddl_parse(sql, len, NULL, mode, &d);
    if (rc == SL_ENOMEM) {
        sl_ddl_free(&d);
        return rc;
    }
    /* the names the parse found (none when it failed: then every identifier folds) */
    if (rc < 0)
        sl_ddl_free(&d);
    lexer lx = { .s = sql, .len = len, .mode = mode };
    parser p = { .s = sql };
    size_t mark = out->len;
    for (tok t = next_tok(&lx); t.type != T_END; t = next_tok(&lx)) {
        if (t.type == T_PUNCT && t.c == ';')
            continue;           /* only ever trails a statement */
        if (out->len > mark)
            sl_sbuf_adds(out, " ");
        if (t.type == T_STRING) {
            add_string_value(out, sql + t.start, t.end - t.start, mode);
        } else if (t.type == T_PUNCT) {
            sl_sbuf_add(out, &t.c, 1);
        } else if (t.type == T_NUM) {
            sl_sbuf_add(out, sql + t.start, t.end - t.start);
        } else {
            /* a word or a quoted name, as one quoted name: a table of the statement as written,
             * anything else (keywords, columns, indexes) in lower case, as MariaDB compares
             * them */
            char *name = ident_text(&p, &t);
            if (!name) {
                sl_ddl_free(&d);
                return SL_ENOMEM;
            }
            if (!in_names(d.names, d.nnames, t.start) && !in_names(d.refs, d.nrefs, t.start))
                for (char *c = name; *c; c++)
                    *c = (char)tolower((unsigned char)*c);
            sl_sbuf_add_ident(out, name);
            free(name);
        }
    }
    sl_ddl_free(&d);
    return out->oom ? SL_ENOMEM : 0;
}

int sl_ddl_has_autoinc(const char *create_sql)
{
    for (const char *p = create_sql; (p = strstr(p, "AUTO_INCREMENT")) != NULL; p += 14)
        if (p[14] != '=')
            return 1;
    return 0;
}

/* ---- the clauses of an ALTER TABLE ------------------------------------------------------------ */

/* Tokens [a, b) as text: each as written, one space where the text had space or a comment
 * between two of them (malloc'd; NULL if no memory). prefix goes first. */
static char *tok_text(const char *s, const tok *t, size_t a, size_t b, const char *prefix)
{
    size_t n = strlen(prefix) + 1;
    for (size_t k = a; k < b; k++)
        n += t[k].end - t[k].start + 1;
    char *o = malloc(n), *w = o;
    if (!o)
        return NULL;
    w += sprintf(w, "%s", prefix);
    for (size_t k = a; k < b; k++) {
        if (k > a && t[k].start > t[k - 1].end)
            *w++ = ' ';
        memcpy(w, s + t[k].start, t[k].end - t[k].start);
        w += t[k].end - t[k].start;
    }
    *w = '\0';
    return o;
}

static int alter_add(sl_ddl_alter *a, char *c)
{
    char **nc = c ? realloc(a->clauses, (a->nclauses + 1) * sizeof *nc) : NULL;
    if (!nc) {
        free(c);
        return SL_ENOMEM;
    }
    a->clauses = nc;
    a->clauses[a->nclauses++] = c;
    return 0;
}

/* The clause in tokens [a, b); ADD [COLUMN] [IF NOT EXISTS] (c1 def1, c2 def2) as one clause per
 * column, each "ADD [COLUMN] [IF NOT EXISTS] cN defN". */
static int alter_clause(parser *p, size_t a, size_t b, sl_ddl_alter *out)
{
    size_t k = a;
    if (!is_kw(p, k++, "ADD"))
        return alter_add(out, tok_text(p->s, p->t, a, b, ""));
    if (is_kw(p, k, "COLUMN"))
        k++;
    if (is_kw(p, k, "IF") && is_kw(p, k + 1, "NOT") && is_kw(p, k + 2, "EXISTS"))
        k += 3;
    int depth = 0;
    for (size_t j = k; depth >= 0 && j < b; j++) {
        if (is_punct(p, j, '('))
            depth++;
        else if (is_punct(p, j, ')') && --depth == 0 && j != b - 1)
            depth = -1;                 /* the parenthesis after ADD closes before the end */
    }
    if (!is_punct(p, k, '(') || !is_punct(p, b - 1, ')') || depth != 0)
        return alter_add(out, tok_text(p->s, p->t, a, b, ""));
    char *h = tok_text(p->s, p->t, a, k, ""), *head = h ? malloc(strlen(h) + 2) : NULL;
    if (head)
        sprintf(head, "%s ", h);
    free(h);
    if (!head)
        return SL_ENOMEM;
    int rc = 0;
    size_t from = k + 1;
    for (size_t j = k + 1; rc == 0 && j < b; j++) {
        if (is_punct(p, j, '('))
            depth++;
        else if (is_punct(p, j, ')') && depth > 0)
            depth--;
        else if ((j == b - 1 || (depth == 0 && is_punct(p, j, ','))) && j > from) {
            rc = alter_add(out, tok_text(p->s, p->t, from, j, head));
            from = j + 1;
        }
    }
    free(head);
    return rc;
}

int sl_ddl_alter_split(const char *sql, size_t len, unsigned mode, sl_ddl_alter *out)
{
    memset(out, 0, sizeof *out);
    size_t n;
    tok *t = lex_all(sql, len, mode, &n);
    if (!t)
        return SL_ENOMEM;
    parser p = { .s = sql, .t = t, .n = n };
    int rc = SL_EINVAL;
    if (!accept(&p, "ALTER"))
        goto out;
    (void)(accept(&p, "ONLINE") || accept(&p, "OFFLINE"));
    out->ignore = accept(&p, "IGNORE");
    if (!accept(&p, "TABLE"))
        goto out;
    skip_if_exists(&p);
    if (!is_ident(cur(&p)))
        goto out;
    p.i++;
    if (is_punct(&p, p.i, '.') && p.i + 1 < n && is_ident(&t[p.i + 1]))
        p.i += 2;
    skip_wait(&p);
    /* the end: T_END, or a ';' that closes the statement */
    size_t end = n - 1;
    while (end > p.i && t[end - 1].type == T_PUNCT && t[end - 1].c == ';')
        end--;
    rc = 0;
    int depth = 0;
    for (size_t j = p.i, from = p.i; rc == 0 && j <= end; j++) {
        if (j < end && is_punct(&p, j, '('))
            depth++;
        else if (j < end && is_punct(&p, j, ')'))
            depth--;
        else if ((j == end || (depth == 0 && is_punct(&p, j, ','))) && j > from) {
            rc = alter_clause(&p, from, j, out);
            from = j + 1;
        } else if (j < end && depth == 0 && is_punct(&p, j, ','))
            from = j + 1;
    }
out:
    free(t);
    if (rc != 0)
        sl_ddl_alter_free(out);
    return rc;
}

void sl_ddl_alter_free(sl_ddl_alter *a)
{
    for (size_t i = 0; i < a->nclauses; i++)
        free(a->clauses[i]);
    free(a->clauses);
    memset(a, 0, sizeof *a);
}
