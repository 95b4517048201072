/*
 * tcache.c - the mysql-sink's per-target-table metadata cache (tcache.h): loads COLUMNS and
 * STATISTICS of a routed target table once, keeps one tmeta view per event metadata version,
 * and retires views on DDL until the group that may use them has committed.
 */
#include "tcache.h"

#include <stdlib.h>
#include <string.h>
#include "myconn.h"
#include "tmeta.h"

#define NBUCKETS 1024
#define MAX_VIEWS 8          /* event metadata versions kept per target table */
#define MAX_ENTRIES 65536    /* target tables kept; beyond, the cache starts over */

typedef struct vref { sl_table *src, *view; } vref;

typedef struct entry {
    struct entry *next;
    uint64_t      hash;
    sl_tmeta     *tm;
    vref          v[MAX_VIEWS];
    int           nv;
} entry;

struct sl__tcache {
    const sl_host *host;
    entry         *b[NBUCKETS];
    size_t         nentries;
    vref          *retired;
    size_t         nret, cret;
    uint64_t       loads;
    /* the last answer: events of one table come in runs */
    const sl_table *last_src;
    const char    *last_s, *last_t;
    sl_table      *last_view;
};

static uint64_t hash2(const char *a, const char *b)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = a; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
    for (const char *p = b; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return h;
}

sl__tcache *sl__tcache_new(const sl_host *host)
{
    sl__tcache *c = calloc(1, sizeof *c);
    if (c)
        c->host = host;
    return c;
}

static int retire(sl__tcache *c, vref r)
{
    if (c->nret == c->cret) {
        size_t nc = c->cret ? c->cret * 2 : 16;
        vref *p = realloc(c->retired, nc * sizeof *p);
        if (!p) {
            /* cannot defer: the caller only retires between groups or keeps MAX_VIEWS, so
             * leaking the reference is the safe failure */
            return SL_ENOMEM;
        }
        c->retired = p;
        c->cret = nc;
    }
    c->retired[c->nret++] = r;
    return 0;
}

static void drop_entry(sl__tcache *c, entry *e)
{
    for (int i = 0; i < e->nv; i++)
        retire(c, e->v[i]);
    sl_tmeta_free(e->tm);
    free(e);
    c->nentries--;
}

void sl__tcache_invalidate(sl__tcache *c, const char *schema, const char *table)
{
    if (!c)
        return;
    c->last_src = NULL;
    c->last_view = NULL;
    for (size_t i = 0; i < NBUCKETS; i++) {
        entry **pp = &c->b[i];
        while (*pp) {
            entry *e = *pp;
            int hit = !schema || (strcmp(e->tm->schema, schema) == 0 &&
                                  (!table || strcmp(e->tm->table, table) == 0));
            if (hit) {
                *pp = e->next;
                drop_entry(c, e);
            } else {
                pp = &e->next;
            }
        }
    }
}

void sl__tcache_collect(sl__tcache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nret; i++) {
        free(c->retired[i].view);
        c->host->table_unref(c->retired[i].src);
    }
    c->nret = 0;
}

void sl__tcache_free(sl__tcache *c)
{
    if (!c)
        return;
    sl__tcache_invalidate(c, NULL, NULL);
    sl__tcache_collect(c);
    free(c->retired);
    free(c);
}

uint64_t sl__tcache_loads(const sl__tcache *c) { return c ? c->loads : 0; }

/* ---- loading ------------------------------------------------------------------------------ */

static int query(MYSQL *db, sl_sbuf *q, MYSQL_RES **res, sl_error *err)
{
    if (q->oom)
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    if (mysql_real_query(db, q->p, (unsigned long)q->len) != 0 || !(*res = mysql_store_result(db))) {
        unsigned e = mysql_errno(db);
        return sl_error_set(err, sl_myconn_is_conn_error(e) ? SL_ECONN : SL_EDB,
                            "reading target table metadata: %s (errno %u)", mysql_error(db), e);
    }
    return 0;
}

static void where(sl_sbuf *q, const char *schema, const char *table)
{
    sl_sbuf_adds(q, " WHERE TABLE_SCHEMA = ");
    sl_sbuf_add_quoted(q, schema, strlen(schema));
    sl_sbuf_adds(q, " AND TABLE_NAME = ");
    sl_sbuf_add_quoted(q, table, strlen(table));
}

/*
 * t->fk_cascade: whether the table is linked by foreign keys to one that cascades (tmeta.h). The
 * whole graph is read (every foreign key of the target outside the system schemas), as a
 * component may reach far beyond the table's own keys; one query per table load.
 */
static int load_fk(MYSQL *db, sl_tmeta *t, sl_sbuf *q, sl_error *err)
{
    sl_sbuf_reset(q);
    sl_sbuf_adds(q, "SELECT CONSTRAINT_SCHEMA, TABLE_NAME, UNIQUE_CONSTRAINT_SCHEMA, "
                    "REFERENCED_TABLE_NAME, UPDATE_RULE, DELETE_RULE "
                    "FROM information_schema.REFERENTIAL_CONSTRAINTS "
                    "WHERE CONSTRAINT_SCHEMA NOT IN ('mysql', 'information_schema', "
                    "'performance_schema', 'sys')");
    MYSQL_RES *r = NULL;
    int rc = query(db, q, &r, err);
    if (rc < 0)
        return rc;
    size_t n = (size_t)mysql_num_rows(r);
    sl_tfk *fks = n ? calloc(n, sizeof *fks) : NULL;
    if (n && !fks) {
        mysql_free_result(r);
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    }
    MYSQL_ROW row;
    size_t k = 0;
    while (k < n && (row = mysql_fetch_row(r))) {
        fks[k] = (sl_tfk){ .schema = row[0], .table = row[1], .ref_schema = row[2], .ref_table = row[3],
                           .cascades = sl_tmeta_fk_rule_cascades(row[4]) || sl_tmeta_fk_rule_cascades(row[5]) };
        k++;
    }
    int c = sl_tmeta_fk_cascade(fks, k, t->schema, t->table);   /* rows of r still alive */
    free(fks);
    mysql_free_result(r);
    if (c < 0)
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    t->fk_cascade = c;
    return 0;
}

/* Columns, then unique keys (by index name, parts in order) of schema.table, then whether it
 * takes part in cascading foreign keys. */
static int load(MYSQL *db, const char *schema, const char *table, sl_tmeta **out, sl_error *err)
{
    sl_tmeta *t = sl_tmeta_new(schema, table);
    if (!t)
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    sl_sbuf q;
    sl_sbuf_init(&q);
    MYSQL_RES *r = NULL;
    MYSQL_ROW row;
    int seq = 0;
    sl_sbuf_adds(&q, "SELECT COLUMN_NAME, IS_NULLABLE, EXTRA, IS_GENERATED, GENERATION_EXPRESSION, "
                     "(SELECT TABLE_TYPE FROM information_schema.TABLES tb WHERE tb.TABLE_SCHEMA = "
                     "c.TABLE_SCHEMA AND tb.TABLE_NAME = c.TABLE_NAME) FROM information_schema.COLUMNS c");
    where(&q, schema, table);
    sl_sbuf_adds(&q, " ORDER BY ORDINAL_POSITION");
    int rc = query(db, &q, &r, err);
    while (rc == 0 && (row = mysql_fetch_row(r))) {
        if (sl_tmeta_add_col(t, row[0] ? row[0] : "", sl_tmeta_col_flags2(row[1], row[2], row[3], row[4])) < 0)
            rc = sl_error_set(err, SL_ENOMEM, "out of memory");
        t->versioned = row[5] && strcmp(row[5], "SYSTEM VERSIONED") == 0;
        seq = row[5] && strcmp(row[5], "SEQUENCE") == 0;
    }
    /* A sequence changes by whole-row INSERTs (NEXTVAL, SETVAL as the binlog logs them; the last
     * one wins): a key on the table alone keeps them on one worker, in source order. */
    if (rc == 0 && seq && t->ncols && sl_tmeta_add_key_part(t, "sequence", t->cols[0].name, 1) < 0)
        rc = sl_error_set(err, SL_ENOMEM, "out of memory");
    if (r)
        mysql_free_result(r);
    r = NULL;
    if (rc == 0 && t->ncols == 0)
        rc = sl_error_set(err, SL_ENOENT, "the target table `%s`.`%s` does not exist: create it on "
                          "the target (or replicate its CREATE TABLE) and resume", schema, table);
    if (rc == 0) {
        sl_sbuf_reset(&q);
        sl_sbuf_adds(&q, "SELECT INDEX_NAME, COLUMN_NAME, SUB_PART FROM information_schema.STATISTICS");
        where(&q, schema, table);
        sl_sbuf_adds(&q, " AND NON_UNIQUE = 0 ORDER BY INDEX_NAME, SEQ_IN_INDEX");
        rc = query(db, &q, &r, err);
        while (rc == 0 && (row = mysql_fetch_row(r))) {
            int k = sl_tmeta_add_key_part(t, row[0] ? row[0] : "", row[1] ? row[1] : "", row[2] != NULL);
            if (k == SL_ENOMEM)
                rc = sl_error_set(err, SL_ENOMEM, "out of memory");
            else if (k < 0)      /* a key on an expression or a hidden column: cannot be hashed */
                rc = sl_tmeta_add_key_part(t, row[0] ? row[0] : "", t->cols[0].name, 1);
        }
        if (r)
            mysql_free_result(r);
    }
    if (rc == 0)
        rc = load_fk(db, t, &q, err);
    sl_sbuf_free(&q);
    if (rc < 0) {
        sl_tmeta_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

/* ---- lookups ------------------------------------------------------------------------------ */

int sl__tcache_view(sl__tcache *c, MYSQL *db, const sl_event *ev, sl_table **view, sl_error *err)
{
    const sl_table *src = ev->meta;
    const char *s = ev->target_schema, *t = ev->target_table;
    if (!src || !s || !t)
        return sl_error_set(err, SL_EINVAL, "row event of %s.%s without table metadata or routing",
                            ev->schema ? ev->schema : "?", ev->table ? ev->table : "?");
    if (c->last_view && c->last_src == src && (c->last_s == s || strcmp(c->last_s, s) == 0) &&
        (c->last_t == t || strcmp(c->last_t, t) == 0)) {
        *view = c->last_view;
        return 0;
    }
    uint64_t h = hash2(s, t);
    entry *e = c->b[h % NBUCKETS];
    while (e && !(e->hash == h && strcmp(e->tm->schema, s) == 0 && strcmp(e->tm->table, t) == 0))
        e = e->next;
    if (!e) {
        if (c->nentries >= MAX_ENTRIES)
            sl__tcache_invalidate(c, NULL, NULL);
        sl_tmeta *tm = NULL;
        int rc = load(db, s, t, &tm, err);
        if (rc < 0)
            return rc;
        c->loads++;
        if (!(e = calloc(1, sizeof *e))) {
            sl_tmeta_free(tm);
            return sl_error_set(err, SL_ENOMEM, "out of memory");
        }
        e->hash = h;
        e->tm = tm;
        e->next = c->b[h % NBUCKETS];
        c->b[h % NBUCKETS] = e;
        c->nentries++;
    }
    sl_table *v = NULL;
    for (int i = 0; i < e->nv && !v; i++)
        if (e->v[i].src == src)
            v = e->v[i].view;
    if (!v) {
        int rc = sl_tmeta_view(e->tm, src, &v, err);
        if (rc < 0)
            return rc;
        if (e->nv == MAX_VIEWS) {
            /* the oldest metadata version: retired, not freed (a scheduled event may use it) */
            if (retire(c, e->v[0]) < 0) {
                free(v);
                return sl_error_set(err, SL_ENOMEM, "out of memory");
            }
            memmove(e->v, e->v + 1, (MAX_VIEWS - 1) * sizeof *e->v);
            e->nv--;
        }
        c->host->table_ref((sl_table *)src);
        e->v[e->nv].src = (sl_table *)src;
        e->v[e->nv].view = v;
        e->nv++;
    }
    c->last_src = src;
    c->last_s = e->tm->schema;
    c->last_t = e->tm->table;
    c->last_view = v;
    *view = v;
    return 0;
}
