/*
 * lt.h - helpers shared by the Lua unit tests: a writer whose allocations are tracked and freed at
 * teardown, an "extend" callback that builds widened table metadata, and table/event builders.
 */
#ifndef LT_H
#define LT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sluice/lua.h"

typedef struct lt_mem {
    void  **p;
    size_t  n, cap;
    int     extend_calls;
    char    ext_names[8][64];
    uint32_t next;
} lt_mem;

static inline void *lt_track(lt_mem *m, void *p)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 16;
        m->p = realloc(m->p, m->cap * sizeof *m->p);
        assert_non_null(m->p);
    }
    m->p[m->n++] = p;
    return p;
}

static inline void *lt_alloc(void *ud, size_t size) { return lt_track(ud, calloc(1, size ? size : 1)); }

static inline sl_table *lt_extend(void *ud, sl_event *ev, const sl_table *meta, const char *const *names,
                           const sl_value *vals, uint32_t n)
{
    lt_mem *m = ud;
    (void)vals;
    uint32_t base = meta ? meta->ncols : 0;
    sl_table *t = lt_alloc(m, sizeof *t);
    if (meta)
        *t = *meta;
    t->ncols = base + n;
    t->cols = lt_alloc(m, (base + n) * sizeof *t->cols);
    if (meta)
        memcpy(t->cols, meta->cols, base * sizeof *t->cols);
    for (uint32_t i = 0; i < n; i++) {
        t->cols[base + i].name = names[i];
        if (m->next < 8)
            snprintf(m->ext_names[m->next++], 64, "%s", names[i]);
    }
    m->extend_calls++;
    ev->meta = t;
    return t;
}

static inline void lt_free(lt_mem *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->p[i]);
    free(m->p);
    memset(m, 0, sizeof *m);
}

static inline sl_lua_writer lt_writer(lt_mem *m)
{
    sl_lua_writer w = { .ud = m, .alloc = lt_alloc, .extend = lt_extend };
    return w;
}

/* Load src into a new state and resolve entry fn; fails the test on error. */
static inline sl_lua *lt_state(const char *src, const char *fn, int *entry, const sl_lua_opts *o)
{
    sl_lua *s;
    sl_error err = {0};
    assert_int_equal(sl_lua_new(o, &s, &err), 0);
    int id = sl_lua_load(s, src, strlen(src), "t.lua", &err);
    if (id < 0)
        fail_msg("load: %s", err.msg);
    *entry = sl_lua_entry(s, id, fn, &err);
    if (*entry < 0)
        fail_msg("entry: %s", err.msg);
    return s;
}

#endif
