/*
 * store.h - the metadata store behind the server: sources, tasks, subtask stages, plugin state.
 *
 * An interface (a table of functions) so that a distributed store (etcd, as DM uses) can replace
 * the default SQLite file. The model is a map (kind, name) -> value text with atomic multi-key
 * batches, which both a SQL file and etcd transactions express directly.
 */
#ifndef SLUICE_RUNTIME_STORE_H
#define SLUICE_RUNTIME_STORE_H

#include <stddef.h>
#include "sluice/err.h"

typedef struct sl_meta_store sl_meta_store;

typedef enum sl_meta_op_type {
    SL_META_PUT = 1,        /* insert or replace */
    SL_META_CREATE,         /* insert; the batch fails with SL_EEXIST if the key exists */
    SL_META_UPDATE,         /* replace; the batch fails with SL_ENOENT if the key is absent */
    SL_META_DELETE,         /* delete if present */
    SL_META_DELETE_PREFIX   /* delete every name of the kind starting with `name` */
} sl_meta_op_type;

typedef struct sl_meta_op {
    sl_meta_op_type type;
    const char *kind;       /* "source", "task", "stage", "state", ... */
    const char *name;
    const char *value;      /* PUT/CREATE/UPDATE only */
} sl_meta_op;

/* Called for each entry of a scan, in name order; a non-zero return stops the scan. */
typedef int (*sl_meta_visit_fn)(void *ud, const char *name, const char *value);

typedef struct sl_meta_store_ops {
    /* Apply ops as one transaction: all or nothing, durable when it returns 0. */
    int  (*apply)(sl_meta_store *s, const sl_meta_op *ops, size_t n, sl_error *err);
    /* *value = malloc'd copy (caller frees) or SL_ENOENT. */
    int  (*get)(sl_meta_store *s, const char *kind, const char *name, char **value, sl_error *err);
    /* Visit every entry of kind whose name starts with prefix ("" = all). */
    int  (*scan)(sl_meta_store *s, const char *kind, const char *prefix, sl_meta_visit_fn fn,
                 void *ud, sl_error *err);
    void (*close)(sl_meta_store *s);
    /* Like get, and *rev = the key's revision. NULL: the store has no revisions (SQLite: one
     * process writes it, under the API's lock). */
    int  (*get_rev)(sl_meta_store *s, const char *kind, const char *name, char **value,
                    long long *rev, sl_error *err);
    /* Like apply, and for each op i with revs[i] > 0 (UPDATE or DELETE) the batch fails with
     * SL_ESTATE unless the key is still at that revision: a read-modify-write that another
     * writer (a second master) cannot silently overwrite. NULL: as apply. */
    int  (*apply_rev)(sl_meta_store *s, const sl_meta_op *ops, const long long *revs, size_t n,
                      sl_error *err);
} sl_meta_store_ops;

/* Every implementation starts with this header. All functions are thread-safe. */
struct sl_meta_store {
    const sl_meta_store_ops *ops;
};

static inline int sl_meta_apply(sl_meta_store *s, const sl_meta_op *ops, size_t n, sl_error *err)
{
    return s->ops->apply(s, ops, n, err);
}
static inline int sl_meta_get(sl_meta_store *s, const char *kind, const char *name, char **value,
                              sl_error *err)
{
    return s->ops->get(s, kind, name, value, err);
}
static inline int sl_meta_scan(sl_meta_store *s, const char *kind, const char *prefix,
                               sl_meta_visit_fn fn, void *ud, sl_error *err)
{
    return s->ops->scan(s, kind, prefix, fn, ud, err);
}
static inline void sl_meta_close(sl_meta_store *s)
{
    if (s)
        s->ops->close(s);
}
/* get, and the key's revision (0 when the store has none). */
static inline int sl_meta_get_rev(sl_meta_store *s, const char *kind, const char *name,
                                  char **value, long long *rev, sl_error *err)
{
    *rev = 0;
    if (s->ops->get_rev)
        return s->ops->get_rev(s, kind, name, value, rev, err);
    return s->ops->get(s, kind, name, value, err);
}
/* apply, checking revs[i] > 0 against op i's key (see apply_rev). */
static inline int sl_meta_apply_rev(sl_meta_store *s, const sl_meta_op *ops, const long long *revs,
                                    size_t n, sl_error *err)
{
    if (s->ops->apply_rev)
        return s->ops->apply_rev(s, ops, revs, n, err);
    return s->ops->apply(s, ops, n, err);
}
/* One-op convenience. */
static inline int sl_meta_put1(sl_meta_store *s, sl_meta_op_type t, const char *kind,
                               const char *name, const char *value, sl_error *err)
{
    sl_meta_op op = { t, kind, name, value };
    return s->ops->apply(s, &op, 1, err);
}

/* Open (creating if needed) the SQLite store at path: WAL journal, synchronous=FULL, one
 * transaction per apply(). Caller closes with sl_meta_close. */
int sl_meta_sqlite_open(const char *path, sl_meta_store **out, sl_error *err);

/* Open the etcd store: every key under root ("/sluice" if NULL) + "/meta/<kind>/<name>", one
 * etcd transaction per apply() (CREATE: the key is absent, UPDATE: present and, with a revision, still
 * at it), scans read in pages of a bounded size. endpoints as sl_etcd_new; checks that a
 * quorum answers (SL_ECONN with each endpoint's failure otherwise) and writes nothing.
 * Thread-safe (one client under a mutex). Caller closes with sl_meta_close. */
int sl_meta_etcd_open(const char *endpoints, const char *root, sl_meta_store **out, sl_error *err);

/* Guard every later write of an etcd store: it applies only while key (a full etcd key, e.g. the
 * leader key) is still the incarnation created at revision created_rev; otherwise the batch
 * fails with SL_ESTATE and writes nothing. A leader that lost its leadership (paused past its
 * lease) cannot overwrite what the new leader wrote. key NULL lifts the guard. Thread-safe. */
int sl_meta_etcd_guard(sl_meta_store *s, const char *key, long long created_rev, sl_error *err);

/* How many writes of an etcd store failed without a known outcome (a timeout or a connection lost
 * while etcd may have applied the transaction). A caller that keeps the store's contents in
 * memory reads the store again when this grew since it last looked. 0 for other stores. */
long long sl_meta_etcd_uncertain(sl_meta_store *s);

#endif
