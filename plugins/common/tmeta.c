/*
 * tmeta.c - target table descriptions and the event-to-target views of tmeta.h: name mapping,
 * the choice of the identifying key and the causality keys.
 */
#include "tmeta.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MT_FLOAT 4   /* MYSQL_TYPE_FLOAT: its text literal is not the stored binary value */

static char *dup(const char *s)
{
    size_t n = strlen(s ? s : "");
    char *p = malloc(n + 1);
    if (p)
        memcpy(p, s ? s : "", n + 1);
    return p;
}

sl_tmeta *sl_tmeta_new(const char *schema, const char *table)
{
    sl_tmeta *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->schema = dup(schema);
    t->table = dup(table);
    if (!t->schema || !t->table) {
        sl_tmeta_free(t);
        return NULL;
    }
    return t;
}

void sl_tmeta_free(sl_tmeta *t)
{
    if (!t)
        return;
    for (uint32_t i = 0; i < t->ncols; i++)
        free(t->cols[i].name);
    for (uint32_t i = 0; i < t->nkeys; i++) {
        free(t->keys[i].name);
        free(t->keys[i].cols);
    }
    free(t->cols);
    free(t->keys);
    free(t->schema);
    free(t->table);
    free(t);
}

static int has_word(const char *s, const char *w)
{
    size_t n = strlen(w);
    for (const char *p = s; p && *p; p++)
        if (strncasecmp(p, w, n) == 0)
            return 1;
    return 0;
}

unsigned sl_tmeta_col_flags(const char *is_nullable, const char *extra, const char *is_generated)
{
    unsigned f = 0;
    if (is_nullable && strcasecmp(is_nullable, "YES") == 0)
        f |= SL_TCOL_NULLABLE;
    /* MariaDB: EXTRA "VIRTUAL GENERATED"/"STORED GENERATED", IS_GENERATED "ALWAYS"; MySQL:
     * EXTRA "VIRTUAL GENERATED"/"STORED GENERATED" ("DEFAULT_GENERATED" is a column with an
     * expression default, which may be written). System-versioning columns are "ROW START"/"ROW END". */
    if ((is_generated && strcasecmp(is_generated, "ALWAYS") == 0) ||
        has_word(extra, "VIRTUAL GENERATED") || has_word(extra, "STORED GENERATED") ||
        has_word(extra, "PERSISTENT") || has_word(extra, "ROW START") || has_word(extra, "ROW END"))
        f |= SL_TCOL_GENERATED;
    if (has_word(extra, "INVISIBLE"))
        f |= SL_TCOL_INVISIBLE;
    return f;
}

unsigned sl_tmeta_col_flags2(const char *is_nullable, const char *extra, const char *is_generated,
                             const char *generation_expression)
{
    unsigned f = sl_tmeta_col_flags(is_nullable, extra, is_generated);
    if (generation_expression && strcasecmp(generation_expression, "ROW END") == 0)
        f |= SL_TCOL_ROWEND | SL_TCOL_GENERATED;
    return f;
}

int sl_tmeta_add_col(sl_tmeta *t, const char *name, unsigned flags)
{
    if (t->ncols == t->ccols) {
        uint32_t nc = t->ccols ? t->ccols * 2 : 16;
        sl_tcol *c = realloc(t->cols, nc * sizeof *c);
        if (!c)
            return SL_ENOMEM;
        t->cols = c;
        t->ccols = nc;
    }
    char *n = dup(name);
    if (!n)
        return SL_ENOMEM;
    t->cols[t->ncols].name = n;
    t->cols[t->ncols].flags = flags;
    t->ncols++;
    return 0;
}

int sl_tmeta_find_col(const sl_tmeta *t, const char *name)
{
    for (uint32_t i = 0; i < t->ncols; i++)
        if (strcasecmp(t->cols[i].name, name) == 0)
            return (int)i;
    return -1;
}

int sl_tmeta_add_key_part(sl_tmeta *t, const char *key, const char *col, int prefix)
{
    int c = sl_tmeta_find_col(t, col);
    if (c < 0)
        return SL_ENOENT;
    sl_tkey *k = t->nkeys ? &t->keys[t->nkeys - 1] : NULL;
    if (!k || strcmp(k->name, key) != 0) {
        if (t->nkeys == t->ckeys) {
            uint32_t nc = t->ckeys ? t->ckeys * 2 : 4;
            sl_tkey *p = realloc(t->keys, nc * sizeof *p);
            if (!p)
                return SL_ENOMEM;
            t->keys = p;
            t->ckeys = nc;
        }
        k = &t->keys[t->nkeys];
        memset(k, 0, sizeof *k);
        if (!(k->name = dup(key)))
            return SL_ENOMEM;
        t->nkeys++;
    }
    uint32_t *cols = realloc(k->cols, (k->ncols + 1) * sizeof *cols);
    if (!cols)
        return SL_ENOMEM;
    k->cols = cols;
    k->cols[k->ncols++] = (uint32_t)c;
    k->prefix |= prefix != 0;
    return 0;
}

/* ---- foreign keys ------------------------------------------------------------------------ */

int sl_tmeta_fk_rule_cascades(const char *rule)
{
    return rule && (strcasecmp(rule, "CASCADE") == 0 || strcasecmp(rule, "SET NULL") == 0);
}

static int same_table(const char *s1, const char *t1, const char *s2, const char *t2)
{
    return s1 && t1 && s2 && t2 && strcmp(s1, s2) == 0 && strcmp(t1, t2) == 0;
}

int sl_tmeta_fk_cascade(const sl_tfk *fks, size_t n, const char *schema, const char *table)
{
    /* in[e]: edge e touches the component of schema.table. Grow it until nothing changes: an
     * edge joins when one of its ends is an end of an edge already in (or the table itself). */
    if (n == 0)
        return 0;
    unsigned char *in = calloc(n, 1);
    if (!in)
        return SL_ENOMEM;
    int grew = 1, cascades = 0;
    while (grew && !cascades) {
        grew = 0;
        for (size_t e = 0; e < n; e++) {
            if (in[e])
                continue;
            const sl_tfk *f = &fks[e];
            int touch = same_table(f->schema, f->table, schema, table) ||
                        same_table(f->ref_schema, f->ref_table, schema, table);
            for (size_t k = 0; k < n && !touch; k++) {
                if (!in[k])
                    continue;
                const sl_tfk *g = &fks[k];
                touch = same_table(f->schema, f->table, g->schema, g->table) ||
                        same_table(f->schema, f->table, g->ref_schema, g->ref_table) ||
                        same_table(f->ref_schema, f->ref_table, g->schema, g->table) ||
                        same_table(f->ref_schema, f->ref_table, g->ref_schema, g->ref_table);
            }
            if (touch) {
                in[e] = 1;
                grew = 1;
                cascades |= f->cascades != 0;
            }
        }
    }
    free(in);
    return cascades;
}

/* ---- system versioning --------------------------------------------------------------------- */

static int row_end_max(const sl_value *v)
{
    if (v->type == SL_V_TIMESTAMP)
        return v->v.ts.sec >= 2147483647 && v->v.ts.usec == 999999;
    if (v->type == SL_V_UINT)
        return v->v.u == UINT64_MAX;
    return 0;
}

int sl_tmeta_versioned_row(const sl_table *view, int kind, const sl_value *before,
                           const sl_value *after)
{
    int re = -1;
    for (uint32_t i = 0; i < view->ncols && re < 0; i++)
        if (view->cols[i].flags & SL_TVIEW_ROWEND)
            re = (int)i;
    if (re < 0)
        return SL_TV_APPLY;
    switch (kind) {
    case SL_EV_INSERT:
        return after && !row_end_max(&after[re]) ? SL_TV_SKIP : SL_TV_APPLY;
    case SL_EV_UPDATE:
        if (before && !row_end_max(&before[re]))
            return SL_TV_SKIP;            /* a history row changed (not by SQL: never expected) */
        return after && !row_end_max(&after[re]) ? SL_TV_DELETE : SL_TV_APPLY;
    case SL_EV_DELETE:
        return before && !row_end_max(&before[re]) ? SL_TV_SKIP : SL_TV_APPLY;
    default:
        return SL_TV_APPLY;
    }
}

/* ---- views ------------------------------------------------------------------------------- */

/* A key as a list of event column indexes (scratch, before it is laid out in the view). */
typedef struct klist { uint32_t n; uint32_t *c; } klist;

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Same set of columns (order does not matter for a collision). */
static int same_set(const klist *a, const uint32_t *b, uint32_t nb)
{
    if (a->n != nb)
        return 0;
    uint32_t x[a->n ? a->n : 1], y[nb ? nb : 1];
    memcpy(x, a->c, a->n * sizeof *x);
    memcpy(y, b, nb * sizeof *y);
    qsort(x, a->n, sizeof *x, cmp_u32);
    qsort(y, nb, sizeof *y, cmp_u32);
    return memcmp(x, y, nb * sizeof *x) == 0;
}

int sl_tmeta_view(const sl_tmeta *t, const sl_table *src, sl_table **out, sl_error *err)
{
    *out = NULL;
    uint32_t n = src->ncols;
    int rc = SL_ENOMEM;
    int32_t *tidx = malloc((n ? n : 1) * sizeof *tidx);           /* event col -> target col */
    int32_t *sidx = malloc((t->ncols ? t->ncols : 1) * sizeof *sidx); /* target col -> event col */
    uint32_t *pool = malloc(((size_t)t->ncols * (t->nkeys + 1) + src->npk + 1) * sizeof *pool);
    klist *lists = calloc((size_t)t->nkeys + 1, sizeof *lists);
    if (!tidx || !sidx || !pool || !lists)
        goto done;
    for (uint32_t j = 0; j < t->ncols; j++)
        sidx[j] = -1;
    for (uint32_t i = 0; i < n; i++) {
        const char *nm = src->cols[i].name ? src->cols[i].name : "";
        tidx[i] = sl_tmeta_find_col(t, nm);
        if (tidx[i] >= 0 && sidx[tidx[i]] < 0)
            sidx[tidx[i]] = (int32_t)i;
        /* the implicit system-versioning columns of a versioned table are not in COLUMNS */
        int implicit = tidx[i] < 0 && t->versioned &&
                       (strcasecmp(nm, "row_start") == 0 || strcasecmp(nm, "row_end") == 0);
        if (tidx[i] < 0 && !implicit && !(src->cols[i].flags & SL_COL_GENERATED)) {
            rc = sl_error_set(err, SL_EINVAL, "column `%s` of %s.%s is missing on the target table "
                              "`%s`.`%s`: add it on the target (or drop it before the sink) and resume%s",
                              nm, src->schema ? src->schema : "?", src->name ? src->name : "?",
                              t->schema, t->table, nm[0] == '@' ? " (the binlog has no column names: "
                              "is binlog_row_metadata=FULL on the source?)" : "");
            goto done;
        }
    }
    /* the identifying key: PRIMARY, else the first unique NOT NULL key; whole, exact, present */
    int ident = -1;
    for (int pass = 0; pass < 2 && ident < 0; pass++)
        for (uint32_t k = 0; k < t->nkeys && ident < 0; k++) {
            const sl_tkey *key = &t->keys[k];
            int primary = strcasecmp(key->name, "PRIMARY") == 0;
            if ((pass == 0) != primary || key->prefix || key->ncols == 0)
                continue;
            int ok = 1;
            for (uint32_t p = 0; p < key->ncols && ok; p++) {
                uint32_t tc = key->cols[p];
                int32_t sc = sidx[tc];
                ok = sc >= 0 && !(t->cols[tc].flags & SL_TCOL_NULLABLE) &&
                     src->cols[sc].mysql_type != MT_FLOAT;
            }
            if (ok)
                ident = (int)k;
        }
    /* key lists: [0] = the identifying key (or none), then the others for causality */
    uint32_t nl = 0, used = 0;
    if (ident >= 0) {
        const sl_tkey *key = &t->keys[ident];
        lists[0].c = pool + used;
        for (uint32_t p = 0; p < key->ncols; p++)
            lists[0].c[lists[0].n++] = (uint32_t)sidx[key->cols[p]];
        used += lists[0].n;
    }
    nl = 1;
    for (uint32_t k = 0; k < t->nkeys; k++) {
        if ((int)k == ident)
            continue;
        const sl_tkey *key = &t->keys[k];
        klist l = { 0, pool + used };
        if (!key->prefix)
            for (uint32_t p = 0; p < key->ncols; p++)
                if (sidx[key->cols[p]] >= 0)
                    l.c[l.n++] = (uint32_t)sidx[key->cols[p]];
        int dupl = 0;
        for (uint32_t m = 0; m < nl && !dupl; m++)
            dupl = (m > 0 || ident >= 0) && same_set(&lists[m], l.c, l.n);
        if (dupl)
            continue;
        lists[nl++] = l;
        used += l.n;
    }
    /* the event's own primary key, when the target has no key on the same columns */
    klist spk = { 0, NULL };
    if (src->npk > 0 && src->pk) {
        spk.c = pool + used;
        for (uint32_t p = 0; p < src->npk; p++)
            if (src->pk[p] < n)
                spk.c[spk.n++] = src->pk[p];
        int dupl = spk.n == 0;
        for (uint32_t m = 0; m < nl && !dupl; m++)
            dupl = (m > 0 || ident >= 0) && same_set(&lists[m], spk.c, spk.n);
        if (!dupl) {
            used += spk.n;
        } else {
            spk.n = 0;
            spk.c = NULL;
        }
    }
    uint32_t nother = (nl - 1) + (spk.c ? 1 : 0);
    /* one block: table, columns, key pointers, then every column index list */
    size_t sz = sizeof(sl_table) + (size_t)n * sizeof(sl_column) + (size_t)nother * sizeof(uint32_t *) +
                ((size_t)used + nother + 1) * sizeof(uint32_t);
    char *blk = calloc(1, sz);
    if (!blk)
        goto done;
    sl_table *v = (sl_table *)blk;
    v->ncols = n;
    v->schema = src->schema;
    v->name = src->name;
    v->version = src->version;
    v->cols = (sl_column *)(blk + sizeof(sl_table));
    v->keys = (uint32_t **)(v->cols + n);
    uint32_t *ip = (uint32_t *)(v->keys + nother);
    for (uint32_t i = 0; i < n; i++) {
        v->cols[i] = src->cols[i];
        uint8_t f = src->cols[i].flags & (uint8_t)~(SL_COL_PK | SL_COL_UNIQUE | SL_COL_GENERATED |
                                                     SL_COL_NULLABLE | SL_TVIEW_FKCASCADE |
                                                     SL_TVIEW_ROWEND);
        if (tidx[i] < 0 || (t->cols[tidx[i]].flags & SL_TCOL_GENERATED))
            f |= SL_COL_GENERATED;
        if (tidx[i] >= 0 ? (t->cols[tidx[i]].flags & SL_TCOL_NULLABLE) != 0
                         : (src->cols[i].flags & SL_COL_NULLABLE) != 0)
            f |= SL_COL_NULLABLE;
        if (t->fk_cascade)
            f |= SL_TVIEW_FKCASCADE;
        if (tidx[i] >= 0 ? (t->cols[tidx[i]].flags & SL_TCOL_ROWEND) != 0
                         : t->versioned && strcasecmp(src->cols[i].name ? src->cols[i].name : "", "row_end") == 0)
            f |= SL_TVIEW_ROWEND;
        v->cols[i].flags = f;
    }
    if (ident >= 0) {
        v->pk = ip;
        v->npk = lists[0].n;
        memcpy(ip, lists[0].c, lists[0].n * sizeof *ip);
        ip += lists[0].n;
        for (uint32_t p = 0; p < v->npk; p++)
            v->cols[v->pk[p]].flags |= SL_COL_PK;
    }
    uint32_t ko = 0;
    for (uint32_t m = 1; m <= nl; m++) {
        const klist *l = m < nl ? &lists[m] : (spk.c ? &spk : NULL);
        if (!l)
            break;
        v->keys[ko++] = ip;
        memcpy(ip, l->c, l->n * sizeof *ip);
        for (uint32_t p = 0; p < l->n; p++)
            v->cols[l->c[p]].flags |= SL_COL_UNIQUE;
        ip += l->n;
        *ip++ = UINT32_MAX;
    }
    v->nkeys = ko;
    *out = v;
    rc = 0;
done:
    free(tidx);
    free(sidx);
    free(pool);
    free(lists);
    if (rc == SL_ENOMEM)
        sl_error_set(err, SL_ENOMEM, "out of memory");
    return rc;
}
