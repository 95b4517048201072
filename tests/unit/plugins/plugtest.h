/*
 * plugtest.h - runs one built plugin (.so) in process with the real host table (core/host.c),
 * so a transform's unit test feeds it batches and reads what it did: the plugin's own code, its
 * option table and the host it meets in a pipeline, with no pipeline and no server around it.
 */
#ifndef SLUICE_TEST_PLUGTEST_H
#define SLUICE_TEST_PLUGTEST_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"

typedef struct pt {
    sl_registry                *reg;
    const sl_plugin_descriptor *d;
    sl_ctx                     *ctx;
    void                       *config;
    void                       *self;
    int                         create_rc;
} pt;

/* Load the plugin at path (named name) and create an instance with the JSON options; the
 * create() result is in p->create_rc (its message in pt_error). */
static inline void pt_open(pt *p, const char *path, const char *name, const char *options)
{
    sl_error err = { 0 };
    memset(p, 0, sizeof *p);
    assert_int_equal(sl_registry_new(&p->reg), 0);
    if (sl_registry_load(p->reg, path, &err) < 0)
        fail_msg("load %s: %s", path, err.msg);
    p->d = sl_registry_find(p->reg, name);
    assert_non_null(p->d);
    if (sl_options_fill(p->d, options, &p->config, &err) < 0)
        fail_msg("options of %s: %s", name, err.msg);
    p->ctx = sl__ctx_new(name, NULL, NULL, NULL, NULL);
    assert_non_null(p->ctx);
    p->create_rc = p->d->create(sl__host(), p->ctx, p->config, &p->self);
    if (p->create_rc == 0 && p->d->start)
        assert_int_equal(p->d->start(p->self), 0);
}

static inline const char *pt_error(pt *p)
{
    static _Thread_local sl_error e;
    sl__ctx_error(p->ctx, &e);
    return e.msg;
}

static inline void pt_close(pt *p)
{
    if (p->create_rc == 0)
        p->d->destroy(p->self);
    sl_options_free(p->d, p->config);
    sl__ctx_free(p->ctx);
    sl_registry_free(p->reg);
}

/* Push one event into b: kind, schema, table, and DDL text (NULL for rows). */
static inline sl_event *pt_push(sl_batch *b, sl_event_kind kind, const char *schema,
                                const char *table, const char *ddl)
{
    const sl_host *h = sl__host();
    sl_event *ev = h->batch_push(b, kind);
    assert_non_null(ev);
    ev->schema = schema ? h->batch_strndup(b, schema, strlen(schema)) : NULL;
    ev->table = table ? h->batch_strndup(b, table, strlen(table)) : NULL;
    if (ddl) {
        ev->ddl = h->batch_strndup(b, ddl, strlen(ddl));
        ev->ddl_schema = ev->schema;
    }
    return ev;
}

/* A metric of the instance, 0 when never set. */
static inline long long pt_metric(pt *p, const char *name)
{
    char *js = sl__ctx_metrics_json(p->ctx);
    assert_non_null(js);
    char key[128];
    snprintf(key, sizeof key, "\"%s\":", name);
    const char *at = strstr(js, key);
    long long v = at ? strtoll(at + strlen(key), NULL, 10) : 0;
    free(js);
    return v;
}

#endif
