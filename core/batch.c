/*
 * batch.c - batches and table metadata (event.h) on the host side: a batch owns its events, a
 * growing chunked arena for their payloads, and references to the tables its events point at;
 * it is reference counted so fan-out shares it. Tables are refcounted and own their strings.
 */
#include "host.h"

#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_FIRST   4096u
#define ARENA_MAX     (1u << 20)
#define ARENA_ALIGN   16u

typedef struct chunk {
    struct chunk *next;
    size_t size, used;
    alignas(ARENA_ALIGN) unsigned char data[];
} chunk;

typedef struct arena { chunk *head; size_t next; size_t first; /* 0: ARENA_FIRST */ } arena;

static void *arena_alloc(arena *a, size_t size)
{
    size = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (size == 0)
        size = ARENA_ALIGN;
    chunk *c = a->head;
    if (!c || c->size - c->used < size) {
        if (a->next == 0)
            a->next = a->first ? a->first : ARENA_FIRST;
        size_t sz = a->next;
        if (sz < size)
            sz = size;
        if (a->next < ARENA_MAX)
            a->next *= 2;
        c = malloc(sizeof *c + sz);
        if (!c)
            return NULL;
        c->size = sz;
        c->used = 0;
        /* A big one-off block goes behind the head so the head's free space stays usable. */
        if (a->head && sz == size && a->head->size - a->head->used > 256) {
            c->next = a->head->next;
            a->head->next = c;
        } else {
            c->next = a->head;
            a->head = c;
        }
    }
    void *p = c->data + c->used;
    c->used += size;
    return p;
}

static void arena_free(arena *a)
{
    for (chunk *c = a->head, *n; c; c = n) {
        n = c->next;
        free(c);
    }
    a->head = NULL;
}

/* ---- batches ---- */

typedef struct batch_impl {
    sl_batch    pub;
    atomic_uint refs;
    arena       mem;
    sl_table  **tables;
    uint32_t    ntables, ctables;
} batch_impl;

#define IMPL(b) ((batch_impl *)(b))

sl_batch *sl__batch_new(uint32_t cap_hint)
{
    batch_impl *bi = calloc(1, sizeof *bi);
    if (!bi)
        return NULL;
    uint32_t cap = cap_hint ? cap_hint : 64;
    bi->pub.events = malloc((size_t)cap * sizeof(sl_event));
    if (!bi->pub.events) {
        free(bi);
        return NULL;
    }
    bi->pub.cap = cap;
    bi->pub.priv = bi;
    atomic_init(&bi->refs, 1);
    return &bi->pub;
}

void sl__batch_ref(sl_batch *b)
{
    atomic_fetch_add_explicit(&IMPL(b)->refs, 1, memory_order_relaxed);
}

uint32_t sl__batch_refs(const sl_batch *b)
{
    return atomic_load(&((batch_impl *)b)->refs);
}

void sl__batch_unref(sl_batch *b)
{
    if (!b)
        return;
    batch_impl *bi = IMPL(b);
    /* acq_rel: everything done to the batch by any holder happens before the free. */
    if (atomic_fetch_sub_explicit(&bi->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (uint32_t i = 0; i < bi->ntables; i++)
        sl__table_unref(bi->tables[i]);
    free(bi->tables);
    arena_free(&bi->mem);
    free(bi->pub.events);
    free(bi);
}

sl_event *sl__batch_push(sl_batch *b, sl_event_kind kind)
{
    if (b->n == b->cap) {
        uint32_t cap = b->cap ? b->cap * 2 : 64;
        sl_event *ev = realloc(b->events, (size_t)cap * sizeof *ev);
        if (!ev)
            return NULL;
        b->events = ev;
        b->cap = cap;
    }
    sl_event *ev = &b->events[b->n++];
    memset(ev, 0, sizeof *ev);
    ev->kind = (uint8_t)kind;
    return ev;
}

void *sl__batch_alloc(sl_batch *b, size_t size)
{
    void *p = arena_alloc(&IMPL(b)->mem, size);
    if (p)
        b->bytes += size;
    return p;
}

char *sl__batch_strndup(sl_batch *b, const char *s, size_t len)
{
    char *p = sl__batch_alloc(b, len + 1);
    if (!p)
        return NULL;
    if (len)
        memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

void sl__batch_set_meta(sl_batch *b, sl_event *ev, sl_table *t)
{
    batch_impl *bi = IMPL(b);
    ev->meta = t;
    if (!t)
        return;
    /* Consecutive events of one table share one reference. */
    for (uint32_t i = bi->ntables; i-- > 0 && i + 4 >= bi->ntables;)
        if (bi->tables[i] == t)
            return;
    if (bi->ntables == bi->ctables) {
        uint32_t cap = bi->ctables ? bi->ctables * 2 : 4;
        sl_table **v = realloc(bi->tables, cap * sizeof *v);
        if (!v) {
            /* Cannot keep a reference: do not leave a pointer the batch does not hold. */
            ev->meta = NULL;
            return;
        }
        bi->tables = v;
        bi->ctables = cap;
    }
    sl__table_ref(t);
    bi->tables[bi->ntables++] = t;
}

/* ---- tables ---- */

typedef struct table_impl {
    sl_table pub;
    arena    mem;
} table_impl;

sl_table *sl__table_new(uint32_t ncols)
{
    table_impl *ti = calloc(1, sizeof *ti);
    if (!ti)
        return NULL;
    /* Sized to what a table usually holds (its columns, their names and types, its key): a
     * dump of 2,000 small tables kept 2,000 of these, 4 KiB each at the batch's default. */
    size_t want = (size_t)ncols * (sizeof(sl_column) + 48) + 256;
    ti->mem.first = want < ARENA_FIRST ? want : ARENA_FIRST;
    if (ncols) {
        ti->pub.cols = arena_alloc(&ti->mem, (size_t)ncols * sizeof(sl_column));
        if (!ti->pub.cols) {
            free(ti);
            return NULL;
        }
        memset(ti->pub.cols, 0, (size_t)ncols * sizeof(sl_column));
    }
    ti->pub.ncols = ncols;
    ti->pub.refcnt = 1;
    return &ti->pub;
}

void *sl__table_alloc(sl_table *t, size_t size)
{
    void *p = arena_alloc(&((table_impl *)t)->mem, size);
    if (p)
        memset(p, 0, size);
    return p;
}

char *sl__table_strdup(sl_table *t, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *p = arena_alloc(&((table_impl *)t)->mem, n + 1);
    if (p)
        memcpy(p, s, n + 1);
    return p;
}

void sl__table_ref(sl_table *t)
{
    if (t)
        __atomic_fetch_add(&t->refcnt, 1, __ATOMIC_RELAXED);
}

void sl__table_unref(sl_table *t)
{
    if (!t)
        return;
    if (__atomic_fetch_sub(&t->refcnt, 1, __ATOMIC_ACQ_REL) != 1)
        return;
    table_impl *ti = (table_impl *)t;
    arena_free(&ti->mem);
    free(ti);
}
