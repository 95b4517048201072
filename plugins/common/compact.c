/*
 * compact.c - the net change per row key of one worker's share of a group (compact.h): tables
 * are told apart by target name, rows by exact key values, in one hash table per call.
 */
#include "compact.h"
#include "tmeta.h"

#include <stdlib.h>
#include <string.h>
#include <mysql.h>
#include <mariadb_ctype.h>
#include <sluice/err.h>

typedef struct tinfo {
    const sl_table *meta;
    const char     *schema, *table;
    int             ok;
} tinfo;

typedef struct rec {
    const sl_event *ev;       /* the last change of the key */
    const sl_value *img;      /* its image holding the key (after if present, else before) */
    uint32_t        tbl;
    uint8_t         fresh;    /* absent at the start of the group */
    uint8_t         present;  /* present at the end */
} rec;

typedef struct kslot { uint64_t h; uint32_t rec; } kslot;   /* rec = index + 1; 0 = empty */

struct sl_compactor {
    tinfo      *t;
    size_t      nt, ct;
    uint32_t   *evt;          /* table of each event */
    size_t      cevt;
    kslot      *map;
    size_t      cmap, mapn;   /* allocated, and in use by this call (a power of two) */
    rec        *r;
    size_t      nr, cr;
    sl_event  **keep;
    size_t      ckeep;
    sl_cmp_op  *ops;
    size_t      cops;
    size_t     *cnt;
    size_t      ccnt;
    unsigned    coll;         /* the last collation judged, and the verdict */
    int         coll_ok;
};

sl_compactor *sl_compactor_new(void) { return calloc(1, sizeof(sl_compactor)); }

void sl_compactor_free(sl_compactor *c)
{
    if (!c)
        return;
    free(c->t);
    free(c->evt);
    free(c->map);
    free(c->r);
    free(c->keep);
    free(c->ops);
    free(c->cnt);
    free(c);
}

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 16;
    while (n < need)
        n *= 2;
    void *q = realloc(*p, n * size);
    if (!q)
        return SL_ENOMEM;
    *p = q;
    *cap = n;
    return 0;
}

int sl_compact_table_ok(const sl_table *m)
{
    if (!m || m->npk == 0 || !m->pk || m->nkeys != 0)
        return 0;
    for (uint32_t k = 0; k < m->npk; k++)
        if (m->pk[k] >= m->ncols || (m->cols[m->pk[k]].flags & SL_COL_GENERATED))
            return 0;
    /* a system-versioned target writes one history version per change it applies: a net change
     * would drop the versions of a row's intermediate changes (tmeta.h) */
    for (uint32_t i = 0; i < m->ncols; i++)
        if (m->cols[i].flags & SL_TVIEW_ROWEND)
            return 0;
    return 1;
}

/* A binary PAD SPACE collation ("utf8mb4_bin", "latin1_bin"; not "..._nopad_bin"): equal
 * strings are equal bytes once trailing spaces are removed. */
static int padspace_bin(sl_compactor *c, unsigned coll)
{
    if (coll == c->coll && coll != 0)
        return c->coll_ok;
    int ok = 0;
    if (coll != 0 && coll != 63 && coll < 2048) {
        const MARIADB_CHARSET_INFO *cs = mariadb_get_charset_by_nr(coll);
        if (cs && cs->name) {
            size_t n = strlen(cs->name);
            ok = n > 4 && strcmp(cs->name + n - 4, "_bin") == 0 && !strstr(cs->name, "nopad");
        }
    }
    c->coll = coll;
    c->coll_ok = ok;
    return ok;
}

static int value_ok(sl_compactor *c, const sl_value *v)
{
    switch ((sl_vtype)v->type) {
    case SL_V_INT: case SL_V_UINT: case SL_V_YEAR:
    case SL_V_DATE: case SL_V_TIME: case SL_V_DATETIME: case SL_V_TIMESTAMP:
        return 1;
    case SL_V_STRING:
        return padspace_bin(c, v->charset);
    default:
        return 0;
    }
}

static uint32_t strip_len(const sl_value *v)
{
    uint32_t n = v->len;
    while (n > 0 && v->v.s[n - 1] == ' ')
        n--;
    return n;
}

#define FNV_PRIME 1099511628211ull

static uint64_t mix(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * FNV_PRIME;
    return h;
}

static uint64_t key_hash(uint32_t tbl, const sl_table *m, const sl_value *row)
{
    uint64_t h = mix(1469598103934665603ull, &tbl, sizeof tbl);
    for (uint32_t k = 0; k < m->npk; k++) {
        const sl_value *v = &row[m->pk[k]];
        switch ((sl_vtype)v->type) {
        case SL_V_DATE: case SL_V_TIME: case SL_V_DATETIME: {
            const sl_temporal *t = &v->v.t;
            uint64_t p[3] = { (uint64_t)(uint32_t)t->year << 32 | (uint64_t)t->month << 24 |
                              (uint64_t)t->day << 16 | t->neg,
                              (uint64_t)t->hour << 16 | (uint64_t)t->minute << 8 | t->second, t->usec };
            h = mix(h, p, sizeof p);
            break;
        }
        case SL_V_TIMESTAMP: {
            uint64_t p[2] = { (uint64_t)v->v.ts.sec, v->v.ts.usec };
            h = mix(h, p, sizeof p);
            break;
        }
        case SL_V_STRING:
            h = mix(h, v->v.s, strip_len(v));
            break;
        default:
            h = mix(h, &v->v.u, sizeof v->v.u);
            break;
        }
        h = mix(h, "|", 1);
    }
    return h ? h : 1;
}

static int value_eq(const sl_value *a, const sl_value *b)
{
    if (a->type != b->type)
        return 0;
    switch ((sl_vtype)a->type) {
    case SL_V_DATE: case SL_V_TIME: case SL_V_DATETIME: {
        const sl_temporal *x = &a->v.t, *y = &b->v.t;
        return x->year == y->year && x->month == y->month && x->day == y->day && x->hour == y->hour &&
               x->minute == y->minute && x->second == y->second && x->usec == y->usec && x->neg == y->neg;
    }
    case SL_V_TIMESTAMP:
        return a->v.ts.sec == b->v.ts.sec && a->v.ts.usec == b->v.ts.usec;
    case SL_V_STRING: {
        uint32_t n = strip_len(a);
        return n == strip_len(b) && memcmp(a->v.s, b->v.s, n) == 0;
    }
    default:
        return a->v.u == b->v.u;
    }
}

static int key_eq(const sl_table *m, const sl_value *a, const sl_value *b)
{
    for (uint32_t k = 0; k < m->npk; k++)
        if (!value_eq(&a[m->pk[k]], &b[m->pk[k]]))
            return 0;
    return 1;
}

static int row_ok(sl_compactor *c, const sl_table *m, const sl_event *ev, const sl_value *row)
{
    if (!row)
        return 0;
    for (uint32_t k = 0; k < m->npk; k++)
        if (m->pk[k] >= ev->ncols || !value_ok(c, &row[m->pk[k]]))
            return 0;
    return 1;
}

static int same_name(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* The table index of ev (a new entry for a table not seen yet), or -1 on OOM. */
static long table_of(sl_compactor *c, const sl_event *ev, size_t *last)
{
    if (*last < c->nt && c->t[*last].meta == ev->meta)
        return (long)*last;
    for (size_t i = 0; i < c->nt; i++)
        if (c->t[i].meta == ev->meta) {
            *last = i;
            return (long)i;
        }
    /* a new view: a table may reach the sink through several views (shards merged into one
     * target table); its rows are then left in source order */
    int ok = sl_compact_table_ok(ev->meta);
    for (size_t i = 0; i < c->nt; i++)
        if (same_name(c->t[i].schema, ev->target_schema) && same_name(c->t[i].table, ev->target_table)) {
            c->t[i].ok = 0;
            ok = 0;
        }
    if (grow((void **)&c->t, &c->ct, c->nt + 1, sizeof *c->t) < 0)
        return -1;
    c->t[c->nt] = (tinfo){ ev->meta, ev->target_schema, ev->target_table, ok };
    *last = c->nt;
    return (long)c->nt++;
}

/* The record of the key that row holds in table tbl (a new one, with fresh set, if none). */
static rec *lookup(sl_compactor *c, uint32_t tbl, const sl_table *m, const sl_value *row, int fresh)
{
    uint64_t h = key_hash(tbl, m, row);
    size_t mask = c->mapn - 1, i = (size_t)(h * 0x9E3779B97F4A7C15ull) & mask;
    while (c->map[i].rec) {
        rec *r = &c->r[c->map[i].rec - 1];
        if (c->map[i].h == h && r->tbl == tbl && key_eq(m, r->img, row))
            return r;
        i = (i + 1) & mask;
    }
    rec *r = &c->r[c->nr++];
    *r = (rec){ .img = row, .tbl = tbl, .fresh = (uint8_t)fresh };
    c->map[i].h = h;
    c->map[i].rec = (uint32_t)c->nr;
    return r;
}

static void set(rec *r, const sl_event *ev, const sl_value *img, int present)
{
    r->ev = ev;
    r->img = img;
    r->present = (uint8_t)present;
}

int sl_compact(sl_compactor *c, sl_event *const *evs, size_t n, sl_event *const **keep,
               size_t *nkeep, const sl_cmp_op **ops, size_t *nops)
{
    *nkeep = 0;
    *nops = 0;
    *keep = c->keep;
    *ops = c->ops;
    c->nt = 0;
    c->nr = 0;
    if (n == 0)
        return 0;
    size_t mapcap = 16;
    while (mapcap < 4 * n)
        mapcap *= 2;
    if (grow((void **)&c->evt, &c->cevt, n, sizeof *c->evt) < 0 ||
        grow((void **)&c->keep, &c->ckeep, n, sizeof *c->keep) < 0 ||
        grow((void **)&c->r, &c->cr, 2 * n, sizeof *c->r) < 0 ||
        grow((void **)&c->ops, &c->cops, 2 * n, sizeof *c->ops) < 0 ||
        grow((void **)&c->map, &c->cmap, mapcap, sizeof *c->map) < 0)
        return SL_ENOMEM;
    *keep = c->keep;
    *ops = c->ops;
    /* pass 1: the table of each event, and whether every key value of it can be compared */
    size_t last = 0;
    for (size_t i = 0; i < n; i++) {
        const sl_event *ev = evs[i];
        long t = ev->meta ? table_of(c, ev, &last) : -1;
        if (ev->meta && t < 0)
            return SL_ENOMEM;
        if (t < 0) {
            c->evt[i] = UINT32_MAX;
            continue;
        }
        c->evt[i] = (uint32_t)t;
        tinfo *ti = &c->t[t];
        if (!ti->ok)
            continue;
        const sl_table *m = ev->meta;
        int ok;
        switch (ev->kind) {
        case SL_EV_INSERT: ok = row_ok(c, m, ev, ev->after); break;
        case SL_EV_DELETE: ok = row_ok(c, m, ev, ev->before); break;
        case SL_EV_UPDATE: ok = row_ok(c, m, ev, ev->before) && row_ok(c, m, ev, ev->after); break;
        default: ok = 0; break;
        }
        if (!ok)
            ti->ok = 0;
    }
    /* pass 2: the last change of each key; the other tables' events as they are */
    c->mapn = mapcap;
    memset(c->map, 0, c->mapn * sizeof *c->map);
    for (size_t i = 0; i < n; i++) {
        const sl_event *ev = evs[i];
        uint32_t t = c->evt[i];
        if (t == UINT32_MAX || !c->t[t].ok) {
            c->keep[(*nkeep)++] = evs[i];
            continue;
        }
        const sl_table *m = ev->meta;
        rec *r;
        switch (ev->kind) {
        case SL_EV_INSERT:
            r = lookup(c, t, m, ev->after, 1);
            set(r, ev, ev->after, 1);
            break;
        case SL_EV_DELETE:
            r = lookup(c, t, m, ev->before, 0);
            set(r, ev, ev->before, 0);
            break;
        default:        /* UPDATE */
            if (key_eq(m, ev->before, ev->after)) {
                r = lookup(c, t, m, ev->before, 0);
                set(r, ev, ev->after, 1);
            } else {
                /* the key changes: the old key is gone, the new one was free before */
                r = lookup(c, t, m, ev->before, 0);
                set(r, ev, ev->before, 0);
                r = lookup(c, t, m, ev->after, 1);
                set(r, ev, ev->after, 1);
            }
            break;
        }
    }
    /* the net changes, grouped by table then kind (a counting sort over (table, kind)) */
    size_t nb = c->nt * 3 + 1;
    if (grow((void **)&c->cnt, &c->ccnt, nb, sizeof *c->cnt) < 0)
        return SL_ENOMEM;
    memset(c->cnt, 0, nb * sizeof *c->cnt);
    for (size_t k = 0; k < c->nr; k++) {
        const rec *r = &c->r[k];
        if (r->fresh && !r->present)
            continue;
        int kind = !r->present ? SL_CMP_DELETE : r->fresh ? SL_CMP_INSERT : SL_CMP_UPSERT;
        c->cnt[r->tbl * 3 + (kind == SL_CMP_DELETE ? 0 : kind == SL_CMP_INSERT ? 1 : 2) + 1]++;
    }
    for (size_t b = 1; b < nb; b++)
        c->cnt[b] += c->cnt[b - 1];
    for (size_t k = 0; k < c->nr; k++) {
        const rec *r = &c->r[k];
        if (r->fresh && !r->present)
            continue;
        int kind = !r->present ? SL_CMP_DELETE : r->fresh ? SL_CMP_INSERT : SL_CMP_UPSERT;
        size_t at = c->cnt[r->tbl * 3 + (kind == SL_CMP_DELETE ? 0 : kind == SL_CMP_INSERT ? 1 : 2)]++;
        c->ops[at] = (sl_cmp_op){ r->ev, r->img, (uint8_t)kind };
        (*nops)++;
    }
    return 0;
}
