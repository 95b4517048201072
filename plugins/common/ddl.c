/*
 * ddl.c - the DDL lexer and name rewriter of ddl.h: tokenizes a statement (skipping comments,
 * reading executable comments as code), recognizes the statement kinds replication applies and
 * records where each schema/table name sits, so route can rewrite exactly those bytes.
 */
#include "ddl.h"

#include <ctype.h>
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
            size_t q = p + 1;
            while (q < lx->len) {
                if (c != '`' && s[q] == '\\' && q + 1 < lx->len) { q += 2; continue; }
                if (s[q] == c) {
                    if (q + 1 < lx->len && s[q + 1] == c) { q += 2; continue; }
                    break;
                }
                q++;
            }
            lx->pos = q < lx->len ? q + 1 : lx->len;
            return (tok){ .type = c == '`' ? T_QIDENT : T_STRING, .start = p, .end = lx->pos };
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
    size_t      cap;
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
        /* between the backticks (the closing one may be missing at the end of the text) */
        size_t b = 1, e = l;
        if (l >= 2 && s[l - 1] == '`')
            e = l - 1;
        r = malloc(l + 1);
        if (!r) return NULL;
        size_t o = 0;
        for (size_t k = b; k < e; k++) {
            r[o++] = s[k];
            if (s[k] == '`' && k + 1 < e && s[k + 1] == '`')
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

static int add_name(parser *p, char *schema, char *table, size_t start, size_t end)
{
    if (!schema || !table) { free(schema); free(table); return SL_ENOMEM; }
    sl_ddl *d = p->out;
    if (d->nnames == p->cap) {
        size_t nc = p->cap ? p->cap * 2 : 4;
        sl_ddl_name *nn = realloc(d->names, nc * sizeof *nn);
        if (!nn) { free(schema); free(table); return SL_ENOMEM; }
        d->names = nn;
        p->cap = nc;
    }
    d->names[d->nnames++] = (sl_ddl_name){ .schema = schema, .table = table, .start = start, .end = end };
    return 0;
}

static char *dupdef(parser *p) { return strdup(p->defschema ? p->defschema : ""); }

/* A table name: ident [. ident]. */
static int table_name(parser *p)
{
    const tok *a = cur(p);
    if (!is_ident(a))
        return SL_EPARSE;
    p->i++;
    if (is_punct(p, p->i, '.') && p->i + 1 < p->n && is_ident(&p->t[p->i + 1])) {
        const tok *b = &p->t[p->i + 1];
        p->i += 2;
        return add_name(p, ident_text(p, a), ident_text(p, b), a->start, b->end);
    }
    return add_name(p, dupdef(p), ident_text(p, a), a->start, a->end);
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
    if (accept(p, "TABLE")) {
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
    if (!accept(p, "TABLE"))
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
    if (accept(p, "TABLE") || accept(p, "TABLES")) {
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

void sl_ddl_free(sl_ddl *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->nnames; i++) {
        free(d->names[i].schema);
        free(d->names[i].table);
    }
    free(d->names);
    memset(d, 0, sizeof *d);
}

int sl_ddl_parse(const char *sql, size_t len, const char *default_schema, sl_ddl *out)
{
    memset(out, 0, sizeof *out);
    lexer lx = { .s = sql, .len = len };
    size_t cap = 64, n = 0;
    tok *t = malloc(cap * sizeof *t);
    if (!t)
        return SL_ENOMEM;
    for (;;) {
        if (n == cap) {
            tok *nt = realloc(t, cap * 2 * sizeof *t);
            if (!nt) { free(t); return SL_ENOMEM; }
            t = nt;
            cap *= 2;
        }
        t[n] = next_tok(&lx);
        if (t[n++].type == T_END)
            break;
    }
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
    free(t);
    return rc;
}

int sl_ddl_rewrite(const char *sql, size_t len, const sl_ddl *d, sl_ddl_map_fn map, void *ud,
                   sl_sbuf *out)
{
    size_t at = 0;
    for (size_t i = 0; i < d->nnames; i++) {
        const sl_ddl_name *nm = &d->names[i];
        if (nm->start < at || nm->end > len)
            continue;                           /* never happens with a parse of the same text */
        sl_sbuf_add(out, sql + at, nm->start - at);
        const char *ts = nm->schema, *tt = nm->table;
        map(ud, nm->schema, nm->table, &ts, &tt);
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

int sl_ddl_has_autoinc(const char *create_sql)
{
    for (const char *p = create_sql; (p = strstr(p, "AUTO_INCREMENT")) != NULL; p += 14)
        if (p[14] != '=')
            return 1;
    return 0;
}
