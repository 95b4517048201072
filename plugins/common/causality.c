/*
 * causality.c - key hashes and the per-group worker assignment of causality.h: a union-find over
 * the rows of one transaction (rows sharing a key are one component), then each component goes
 * to the worker that already holds one of its keys, or to the least loaded worker.
 */
#include "causality.h"

#include <stdlib.h>
#include <string.h>
#include <sluice/err.h>
#include "sqlfmt.h"

#define FNV_OFF 1469598103934665603ull
#define FNV_PRIME 1099511628211ull

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= FNV_PRIME;
    }
    return h;
}

static uint64_t fnv_lower(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        h ^= c;
        h *= FNV_PRIME;
    }
    return h;
}

static uint64_t hash_value(uint64_t h, const sl_value *v)
{
    uint8_t t = v->type;
    switch ((sl_vtype)t) {
    case SL_V_INT: case SL_V_UINT: case SL_V_YEAR: case SL_V_BIT: {
        /* signed and unsigned images of one non-negative number hash alike */
        uint64_t u = v->v.u;
        t = SL_V_INT;
        h = fnv(h, &t, 1);
        return fnv(h, &u, sizeof u);
    }
    case SL_V_FLOAT: { double d = v->v.f; return fnv(fnv(h, &t, 1), &d, sizeof d); }
    case SL_V_DOUBLE: return fnv(fnv(h, &t, 1), &v->v.d, sizeof v->v.d);
    case SL_V_DATE: case SL_V_TIME: case SL_V_DATETIME: {
        const sl_temporal *x = &v->v.t;
        uint64_t parts[3] = { (uint64_t)(uint32_t)x->year << 32 | (uint64_t)x->month << 24 | (uint64_t)x->day << 16 | x->neg,
                              (uint64_t)x->hour << 16 | (uint64_t)x->minute << 8 | x->second, x->usec };
        return fnv(fnv(h, &t, 1), parts, sizeof parts);
    }
    case SL_V_TIMESTAMP: {
        uint64_t parts[2] = { (uint64_t)v->v.ts.sec, v->v.ts.usec };
        return fnv(fnv(h, &t, 1), parts, sizeof parts);
    }
    case SL_V_ENUM: case SL_V_SET:
        return fnv(fnv(h, &t, 1), &v->v.e.u, sizeof v->v.e.u);
    case SL_V_STRING: {
        /* PAD SPACE collations (nearly all) compare 'a' and 'a ' equal in a unique key: trailing
         * spaces do not count. For NO PAD ones this only merges keys, which is safe. */
        size_t n = v->len;
        while (n > 0 && v->v.s[n - 1] == ' ')
            n--;
        h = fnv(h, &t, 1);
        if (sl_sqlfmt_collation_ci(v->charset))
            return fnv_lower(h, v->v.s, n);
        return fnv(h, v->v.s, n);
    }
    case SL_V_DECIMAL: case SL_V_BINARY: case SL_V_JSON: case SL_V_GEOMETRY:
        return fnv(fnv(h, &t, 1), v->v.s, v->len);
    default:
        return fnv(h, &t, 1);
    }
}

uint64_t sl_causality_key(const char *tschema, const char *ttable, const sl_table *meta,
                          const sl_value *row, const uint32_t *cols, uint32_t ncols)
{
    uint64_t h = FNV_OFF;
    h = fnv_lower(h, tschema ? tschema : "", tschema ? strlen(tschema) : 0);
    h = fnv(h, ".", 1);
    h = fnv_lower(h, ttable ? ttable : "", ttable ? strlen(ttable) : 0);
    for (uint32_t k = 0; k < ncols; k++) {
        uint32_t c = cols[k];
        if (c >= meta->ncols)
            continue;
        if (row[c].type == SL_V_NULL)
            return 0;
        const char *nm = meta->cols[c].name ? meta->cols[c].name : "";
        h = fnv(h, "|", 1);
        h = fnv_lower(h, nm, strlen(nm));
        h = hash_value(h, &row[c]);
    }
    return h ? h : 1;
}

static size_t image_keys(const sl_event *ev, const sl_value *row, uint64_t *out, size_t n, size_t max)
{
    const sl_table *m = ev->meta;
    size_t n0 = n;
    if (m->npk > 0 && n < max) {
        uint64_t k = sl_causality_key(ev->target_schema, ev->target_table, m, row, m->pk, m->npk);
        if (k)
            out[n++] = k;
    }
    for (uint32_t i = 0; i < m->nkeys && n < max; i++) {
        uint32_t cnt = 0;
        while (m->keys[i][cnt] != UINT32_MAX)
            cnt++;
        uint64_t k = sl_causality_key(ev->target_schema, ev->target_table, m, row, m->keys[i], cnt);
        if (k)
            out[n++] = k;
    }
    if (n == n0 && n < max) {
        /* No key, or every key holds a NULL (a nullable unique key): the whole table. The sink
         * finds such a row by scanning (every column, LIMIT 1), and InnoDB locks each row the
         * scan reads, so two workers changing different rows of it in one group wait for each
         * other (a deadlock, or a wait on a prepared XA branch). One worker applies them, in
         * source order. */
        uint64_t h = FNV_OFF;
        h = fnv_lower(h, ev->target_schema ? ev->target_schema : "", ev->target_schema ? strlen(ev->target_schema) : 0);
        h = fnv(h, ".", 1);
        h = fnv_lower(h, ev->target_table ? ev->target_table : "", ev->target_table ? strlen(ev->target_table) : 0);
        h = fnv(h, "|*", 2);
        out[n++] = h ? h : 1;
    }
    return n;
}

size_t sl_causality_row_keys(const sl_event *ev, uint64_t *out, size_t max)
{
    size_t n = 0;
    if (!ev->meta)
        return 0;
    if (ev->before)
        n = image_keys(ev, ev->before, out, n, max);
    if (ev->after)
        n = image_keys(ev, ev->after, out, n, max);
    return n;
}

/* ---- the scheduler ---- */

typedef struct slot { uint64_t key; uint32_t worker; } slot;

struct sl_causality {
    uint32_t  nworkers;
    uint64_t *load;        /* rows per worker in the group */
    uint64_t  rows;
    uint64_t  fill;        /* sl_causality_set_fill */
    slot     *map;         /* open addressing, key 0 = empty */
    size_t    cap, used;
    /* scratch for one transaction */
    uint32_t *parent;
    uint32_t *comp_worker;
    size_t    scap;
    slot     *tmp;         /* key -> first row, for the union-find */
    size_t    tcap;
};

sl_causality *sl_causality_new(uint32_t nworkers)
{
    sl_causality *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->nworkers = nworkers ? nworkers : 1;
    c->load = calloc(c->nworkers, sizeof *c->load);
    c->cap = 1024;
    c->map = calloc(c->cap, sizeof *c->map);
    if (!c->load || !c->map) {
        sl_causality_free(c);
        return NULL;
    }
    return c;
}

void sl_causality_free(sl_causality *c)
{
    if (!c)
        return;
    free(c->load);
    free(c->map);
    free(c->parent);
    free(c->comp_worker);
    free(c->tmp);
    free(c);
}

void sl_causality_reset(sl_causality *c)
{
    /* Keep the table small between groups: a huge group should not make every reset slow. */
    if (c->cap > 65536) {
        slot *m = calloc(1024, sizeof *m);
        if (m) {
            free(c->map);
            c->map = m;
            c->cap = 1024;
        } else {
            memset(c->map, 0, c->cap * sizeof *c->map);
        }
    } else {
        memset(c->map, 0, c->cap * sizeof *c->map);
    }
    c->used = 0;
    c->rows = 0;
    memset(c->load, 0, c->nworkers * sizeof *c->load);
}

uint64_t sl_causality_rows(const sl_causality *c) { return c->rows; }

void sl_causality_set_fill(sl_causality *c, uint64_t rows) { c->fill = rows; }

/* The worker for a component related to no row of the group (sl_causality_set_fill). */
static uint32_t place(const sl_causality *c)
{
    uint32_t best = UINT32_MAX;
    if (c->fill)
        for (uint32_t w = 0; w < c->nworkers; w++)
            if (c->load[w] > 0 && c->load[w] < c->fill && (best == UINT32_MAX || c->load[w] < c->load[best]))
                best = w;
    if (best != UINT32_MAX)
        return best;
    best = 0;
    for (uint32_t w = 1; w < c->nworkers; w++)
        if (c->load[w] < c->load[best])
            best = w;
    return best;
}

static size_t probe(const slot *m, size_t cap, uint64_t key)
{
    size_t i = (size_t)(key * 0x9E3779B97F4A7C15ull) & (cap - 1);
    while (m[i].key && m[i].key != key)
        i = (i + 1) & (cap - 1);
    return i;
}

static int map_grow(sl_causality *c)
{
    size_t nc = c->cap * 2;
    slot *m = calloc(nc, sizeof *m);
    if (!m)
        return SL_ENOMEM;
    for (size_t i = 0; i < c->cap; i++)
        if (c->map[i].key)
            m[probe(m, nc, c->map[i].key)] = c->map[i];
    free(c->map);
    c->map = m;
    c->cap = nc;
    return 0;
}

static uint32_t find(uint32_t *p, uint32_t x)
{
    while (p[x] != x) {
        p[x] = p[p[x]];
        x = p[x];
    }
    return x;
}

int sl_causality_assign(sl_causality *c, size_t nrows, const uint64_t *keys,
                        const uint32_t *start, uint32_t *worker)
{
    if (nrows == 0)
        return 0;
    size_t nkeys = start[nrows];
    if (nrows > c->scap) {
        uint32_t *p = realloc(c->parent, nrows * sizeof *p);
        if (!p) return SL_ENOMEM;
        c->parent = p;
        uint32_t *w = realloc(c->comp_worker, nrows * sizeof *w);
        if (!w) return SL_ENOMEM;
        c->comp_worker = w;
        c->scap = nrows;
    }
    size_t tcap = 64;
    while (tcap < nkeys * 2 + 2)
        tcap *= 2;
    if (tcap > c->tcap) {
        slot *t = malloc(tcap * sizeof *t);
        if (!t) return SL_ENOMEM;
        free(c->tmp);
        c->tmp = t;
        c->tcap = tcap;
    }
    memset(c->tmp, 0, tcap * sizeof *c->tmp);
    uint32_t *par = c->parent;
    for (uint32_t r = 0; r < nrows; r++)
        par[r] = r;
    /* rows sharing a key are one component */
    for (uint32_t r = 0; r < nrows; r++)
        for (uint32_t k = start[r]; k < start[r + 1]; k++) {
            size_t i = probe(c->tmp, tcap, keys[k]);
            if (!c->tmp[i].key) {
                c->tmp[i].key = keys[k];
                c->tmp[i].worker = r;
            } else {
                uint32_t a = find(par, r), b = find(par, c->tmp[i].worker);
                if (a != b)
                    par[a < b ? b : a] = a < b ? a : b;
            }
        }
    /* the worker that already holds each component's keys */
    for (uint32_t r = 0; r < nrows; r++)
        c->comp_worker[r] = UINT32_MAX;
    for (uint32_t r = 0; r < nrows; r++) {
        uint32_t root = find(par, r);
        for (uint32_t k = start[r]; k < start[r + 1]; k++) {
            size_t i = probe(c->map, c->cap, keys[k]);
            if (!c->map[i].key)
                continue;
            uint32_t w = c->map[i].worker;
            if (c->comp_worker[root] == UINT32_MAX)
                c->comp_worker[root] = w;
            else if (c->comp_worker[root] != w)
                return 1;                           /* related to two workers: conflict */
        }
    }
    /* place the new components on the least loaded worker, then record every key */
    for (uint32_t r = 0; r < nrows; r++) {
        uint32_t root = find(par, r);
        if (c->comp_worker[root] == UINT32_MAX)
            c->comp_worker[root] = place(c);
        uint32_t w = c->comp_worker[root];
        worker[r] = w;
        c->load[w]++;
        c->rows++;
        for (uint32_t k = start[r]; k < start[r + 1]; k++) {
            if ((c->used + 1) * 2 > c->cap && map_grow(c) < 0)
                return SL_ENOMEM;
            size_t i = probe(c->map, c->cap, keys[k]);
            if (!c->map[i].key) {
                c->map[i].key = keys[k];
                c->map[i].worker = w;
                c->used++;
            }
        }
    }
    return 0;
}
