/*
 * store_etcd.c - the metadata store of a cluster (store.h) in etcd: each (kind, name) is the key
 * ROOT/meta/KIND/NAME, each apply() one etcd transaction whose conditions carry the CREATE and
 * UPDATE preconditions, so two masters writing at once never lose each other's update.
 */
#include "store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd.h"

/* A scan reads this many keys per request: memory stays bounded by it, not by the data. */
#define SCAN_PAGE 128
/* Each request to one member; a dead member costs one of these before the next is tried. */
#define TIMEOUT_MS 5000

typedef struct etcd_store {
    sl_meta_store base;
    sl_etcd *e;
    pthread_mutex_t mu;     /* sl_etcd is one curl handle: one request at a time */
    char *root;             /* ROOT/meta/ */
    char *guard;            /* sl_meta_etcd_guard: every write needs this key... */
    long long guard_rev;    /* ...created at this revision (under mu) */
    _Atomic long long uncertain; /* writes whose outcome is unknown (sl_meta_etcd_uncertain) */
} etcd_store;

/* ROOT/meta/KIND/NAME, malloc'd; NULL on no memory. */
static char *key_of(etcd_store *s, const char *kind, const char *name)
{
    size_t n = strlen(s->root) + strlen(kind) + strlen(name) + 2;
    char *k = malloc(n);
    if (k)
        snprintf(k, n, "%s%s/%s", s->root, kind, name);
    return k;
}

/* The batch failed a condition: say which, the way the SQLite store does (SL_EEXIST for a CREATE
 * of a key that exists, SL_ENOENT for an UPDATE of one that does not, SL_ESTATE for a revision
 * that moved). Reads the keys again; someone may have changed them since, so this is a best
 * account of why, never a reason to retry blindly. */
static int explain(etcd_store *s, const sl_meta_op *ops, char **keys, const long long *revs,
                   size_t n, sl_error *err)
{
    for (size_t i = 0; i < n; i++) {
        const sl_meta_op *o = &ops[i];
        int checked = o->type == SL_META_CREATE || o->type == SL_META_UPDATE ||
                      (revs && revs[i] > 0);
        if (!checked)
            continue;
        sl_etcd_kv kv;
        sl_error tmp = { 0 };
        int rc = sl_etcd_get(s->e, keys[i], &kv, &tmp);
        if (rc != 0 && rc != SL_ENOENT)
            return sl_error_set(err, rc, "metadata store: %s", tmp.msg);
        int exists = rc == 0;
        long long mod = exists ? (long long)kv.mod_revision : 0;
        if (exists)
            sl_etcd_kv_clear(&kv);
        if (o->type == SL_META_CREATE && exists)
            return sl_error_set(err, SL_EEXIST, "%s %s already exists", o->kind, o->name);
        if (o->type == SL_META_UPDATE && !exists)
            return sl_error_set(err, SL_ENOENT, "%s %s does not exist", o->kind, o->name);
        if (revs && revs[i] > 0 && mod != revs[i])
            return sl_error_set(err, SL_ESTATE, "%s %s was changed by another writer (revision "
                                "%lld, expected %lld): read it again", o->kind, o->name, mod, revs[i]);
    }
    return sl_error_set(err, SL_ESTATE, "metadata store: a concurrent write changed the keys of "
                        "this batch; nothing was written");
}

/* Does the guard key still hold the incarnation we were given? Call with mu held. */
static int guard_holds(etcd_store *s)
{
    sl_error tmp = { 0 };
    sl_etcd_cmp c = { .kind = SL_ETCD_CREATED_AT, .key = s->guard, .rev = s->guard_rev };
    return sl_etcd_txn(s->e, &c, 1, NULL, 0, NULL, &tmp) == 0;
}

/* Does another op of the batch touch a key under eo[i]'s prefix? */
static int overlaps(const sl_etcd_op *eo, size_t n, size_t i)
{
    size_t plen = strlen(eo[i].key);
    for (size_t j = 0; j < n; j++)
        if (j != i && (!strncmp(eo[j].key, eo[i].key, plen) ||
                       (eo[j].kind == SL_ETCD_DELETE_PREFIX && !strncmp(eo[i].key, eo[j].key, strlen(eo[j].key)))))
            return 1;
    return 0;
}

/*
 * etcd refuses a transaction that names a key twice, or that puts a key inside a range it
 * deletes ("duplicate key given in txn request"), while a batch of the store may say "delete
 * every stage of the task, then write its new stages". So a prefix delete that overlaps another
 * op of the batch becomes a delete of each key it holds now (one that does not stays one range
 * delete, whatever its size), and of several ops on one key only the last one is sent (the same
 * result, in one transaction). The keys read for it are in *gone (caller frees with
 * sl_etcd_kvs_free), *out points into them and into eo (caller frees the array). Call with mu held.
 * A key created under the prefix by another writer between this read and the transaction
 * survives it; writers are one leader (the store is guarded), so none is.
 */
static int effective_ops(etcd_store *s, const sl_etcd_op *eo, size_t n, sl_etcd_op **out,
                         size_t *nout, sl_etcd_kv **gone, size_t *ngone, sl_error *err)
{
    size_t cap = n, m = 0;
    sl_etcd_op *all = NULL;
    *out = NULL;
    *nout = 0;
    *gone = NULL;
    *ngone = 0;
    for (size_t i = 0; i < n; i++) {
        if (eo[i].kind != SL_ETCD_DELETE_PREFIX || !overlaps(eo, n, i))
            continue;
        sl_etcd_kv *kvs = NULL;
        size_t k = 0;
        int rc = sl_etcd_get_prefix(s->e, eo[i].key, 0, &kvs, &k, err);
        if (rc != 0) {
            sl_etcd_kvs_free(*gone, *ngone);
            *gone = NULL;
            *ngone = 0;
            return rc;
        }
        sl_etcd_kv *g = k ? realloc(*gone, (*ngone + k) * sizeof *g) : *gone;
        if (k && !g) {
            sl_etcd_kvs_free(kvs, k);
            return sl_error_set(err, SL_ENOMEM, "out of memory");
        }
        if (k)
            memcpy(g + *ngone, kvs, k * sizeof *kvs);
        free(kvs);                              /* the keys moved into *gone */
        *gone = g;
        *ngone += k;
        cap += k;
    }
    if (!(all = calloc(cap ? cap : 1, sizeof *all)))
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    /* in batch order, prefix deletes expanded (each one's keys follow in *gone, in order) */
    size_t gi = 0;
    for (size_t i = 0; i < n; i++) {
        if (eo[i].kind != SL_ETCD_DELETE_PREFIX || !overlaps(eo, n, i)) {
            all[m++] = eo[i];
            continue;
        }
        size_t plen = strlen(eo[i].key);
        while (gi < *ngone && !strncmp((*gone)[gi].key, eo[i].key, plen))
            all[m++] = (sl_etcd_op){ .kind = SL_ETCD_DELETE, .key = (*gone)[gi++].key };
    }
    /* the last op of each key wins: keep it, drop the earlier ones (kept in order) */
    size_t keep = 0;
    for (size_t i = 0; i < m; i++) {
        int later = 0;
        for (size_t j = i + 1; j < m && !later; j++)
            later = !strcmp(all[i].key, all[j].key);
        if (!later)
            all[keep++] = all[i];
    }
    *out = all;
    *nout = keep;
    return 0;
}

static int es_apply_rev(sl_meta_store *base, const sl_meta_op *ops, const long long *revs,
                        size_t n, sl_error *err)
{
    etcd_store *s = (etcd_store *)base;
    char **keys = calloc(n ? n : 1, sizeof *keys);
    sl_etcd_op *eo = calloc(n ? n : 1, sizeof *eo);
    sl_etcd_cmp *cmp = calloc(2 * n + 1, sizeof *cmp);
    size_t ncmp = 0;
    int rc = 0;
    if (!keys || !eo || !cmp) {
        rc = sl_error_set(err, SL_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        const sl_meta_op *o = &ops[i];
        if (!(keys[i] = key_of(s, o->kind, o->name))) {
            rc = sl_error_set(err, SL_ENOMEM, "out of memory");
            break;
        }
        switch (o->type) {
        case SL_META_CREATE:
            cmp[ncmp++] = (sl_etcd_cmp){ .kind = SL_ETCD_ABSENT, .key = keys[i] };
            /* fall through */
        case SL_META_PUT:
            eo[i] = (sl_etcd_op){ .kind = SL_ETCD_PUT, .key = keys[i], .value = o->value ? o->value : "",
                                  .len = o->value ? strlen(o->value) : 0 };
            break;
        case SL_META_UPDATE:
            cmp[ncmp++] = (sl_etcd_cmp){ .kind = SL_ETCD_PRESENT, .key = keys[i] };
            eo[i] = (sl_etcd_op){ .kind = SL_ETCD_PUT, .key = keys[i], .value = o->value ? o->value : "",
                                  .len = o->value ? strlen(o->value) : 0 };
            break;
        case SL_META_DELETE:
            eo[i] = (sl_etcd_op){ .kind = SL_ETCD_DELETE, .key = keys[i] };
            break;
        case SL_META_DELETE_PREFIX:
            /* "" deletes the whole kind: ROOT/meta/KIND/ is the prefix then */
            eo[i] = (sl_etcd_op){ .kind = SL_ETCD_DELETE_PREFIX, .key = keys[i] };
            break;
        default:
            rc = sl_error_set(err, SL_EINVAL, "metadata store: bad op %d", o->type);
            continue;
        }
        if (revs && revs[i] > 0)
            cmp[ncmp++] = (sl_etcd_cmp){ .kind = SL_ETCD_MOD_IS, .key = keys[i], .rev = revs[i] };
    }
    if (rc != 0)
        goto out;
    pthread_mutex_lock(&s->mu);
    if (s->guard)
        cmp[ncmp++] = (sl_etcd_cmp){ .kind = SL_ETCD_CREATED_AT, .key = s->guard, .rev = s->guard_rev };
    sl_error tmp = { 0 };
    sl_etcd_op *w = NULL;
    size_t nw = 0;
    sl_etcd_kv *gone = NULL;
    size_t ngone = 0;
    rc = effective_ops(s, eo, n, &w, &nw, &gone, &ngone, &tmp);
    if (rc == 0)
        rc = sl_etcd_txn(s->e, cmp, ncmp, w, nw, NULL, &tmp);
    free(w);
    sl_etcd_kvs_free(gone, ngone);
    if (rc == SL_ESTATE && s->guard && !guard_holds(s))
        rc = sl_error_set(err, SL_ESTATE, "metadata store: this process no longer leads the "
                          "cluster (%s changed): nothing was written", s->guard);
    else if (rc == SL_ESTATE)
        rc = explain(s, ops, keys, revs, n, err);
    else if (rc != 0) {
        /* A timeout or a lost connection says nothing of whether etcd applied the txn: whoever
         * mirrors the store in memory must read it again (sl_meta_etcd_uncertain). */
        if (nw > 0)
            atomic_fetch_add(&s->uncertain, 1);
        rc = sl_error_set(err, rc, "metadata store: %s", tmp.msg);
    }
    pthread_mutex_unlock(&s->mu);
out:
    for (size_t i = 0; keys && i < n; i++)
        free(keys[i]);
    free(keys);
    free(eo);
    free(cmp);
    return rc;
}

static int es_apply(sl_meta_store *base, const sl_meta_op *ops, size_t n, sl_error *err)
{
    return es_apply_rev(base, ops, NULL, n, err);
}

static int es_get_rev(sl_meta_store *base, const char *kind, const char *name, char **value,
                      long long *rev, sl_error *err)
{
    etcd_store *s = (etcd_store *)base;
    char *k = key_of(s, kind, name);
    sl_etcd_kv kv;
    sl_error tmp = { 0 };
    *value = NULL;
    if (!k)
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    pthread_mutex_lock(&s->mu);
    int rc = sl_etcd_get(s->e, k, &kv, &tmp);
    pthread_mutex_unlock(&s->mu);
    free(k);
    if (rc == SL_ENOENT)
        return sl_error_set(err, SL_ENOENT, "%s %s does not exist", kind, name);
    if (rc != 0)
        return sl_error_set(err, rc, "metadata store: %s", tmp.msg);
    *value = kv.value;          /* NUL-terminated by the client */
    if (rev)
        *rev = (long long)kv.mod_revision;
    kv.value = NULL;
    sl_etcd_kv_clear(&kv);
    return 0;
}

static int es_get(sl_meta_store *base, const char *kind, const char *name, char **value,
                  sl_error *err)
{
    return es_get_rev(base, kind, name, value, NULL, err);
}

/* Page by page; each page is visited after the lock is released, so a visitor may call the store
 * again (restoring a task reads its stage records), as with SQLite. A scan is not one snapshot
 * across pages: a key written meanwhile may or may not be seen, which restore and listings
 * accept (they see each key at most once, in name order). */
static int es_scan(sl_meta_store *base, const char *kind, const char *prefix, sl_meta_visit_fn fn,
                   void *ud, sl_error *err)
{
    etcd_store *s = (etcd_store *)base;
    char *pfx = key_of(s, kind, prefix ? prefix : "");
    char *from = pfx ? strdup(pfx) : NULL;
    size_t skip = strlen(s->root) + strlen(kind) + 1;   /* ROOT/meta/KIND/ */
    int rc = 0, stop = 0, first = 1;
    if (!pfx || !from) {
        free(pfx);
        free(from);
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    }
    while (!stop) {
        sl_etcd_kv *kvs = NULL;
        size_t n = 0;
        sl_error tmp = { 0 };
        pthread_mutex_lock(&s->mu);
        rc = sl_etcd_get_range(s->e, from, pfx, SCAN_PAGE, &kvs, &n, &tmp);
        pthread_mutex_unlock(&s->mu);
        if (rc != 0) {
            rc = sl_error_set(err, rc, "metadata store: %s", tmp.msg);
            break;
        }
        /* every page after the first starts at the last key of the one before: skip it */
        size_t i0 = !first && n > 0 && !strcmp(kvs[0].key, from) ? 1 : 0;
        for (size_t i = i0; i < n && !stop; i++)
            if (fn(ud, kvs[i].key + skip, kvs[i].value))
                stop = 1;
        if (n < SCAN_PAGE) {
            stop = 1;
        } else if (!stop) {
            free(from);
            if (!(from = strdup(kvs[n - 1].key)))
                rc = sl_error_set(err, SL_ENOMEM, "out of memory"), stop = 1;
        }
        first = 0;
        sl_etcd_kvs_free(kvs, n);
    }
    free(pfx);
    free(from);
    return rc;
}

static void es_close(sl_meta_store *base)
{
    etcd_store *s = (etcd_store *)base;
    sl_etcd_free(s->e);
    pthread_mutex_destroy(&s->mu);
    free(s->guard);
    free(s->root);
    free(s);
}

static const sl_meta_store_ops etcd_ops = {
    .apply = es_apply, .get = es_get, .scan = es_scan, .close = es_close,
    .get_rev = es_get_rev, .apply_rev = es_apply_rev,
};

int sl_meta_etcd_open(const char *endpoints, const char *root, sl_meta_store **out, sl_error *err)
{
    etcd_store *s = calloc(1, sizeof *s);
    int rc;
    if (!s)
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    if (!root)
        root = "/sluice";
    if (*root != '/' || root[strlen(root) - 1] == '/') {
        free(s);
        return sl_error_set(err, SL_EINVAL, "etcd root '%s' must start with '/' and not end with "
                            "one", root);
    }
    s->base.ops = &etcd_ops;
    pthread_mutex_init(&s->mu, NULL);
    size_t n = strlen(root) + sizeof "/meta/";
    if (!(s->root = malloc(n))) {
        rc = sl_error_set(err, SL_ENOMEM, "out of memory");
        goto fail;
    }
    snprintf(s->root, n, "%s/meta/", root);
    sl_error tmp = { 0 };
    if ((rc = sl_etcd_new(endpoints, TIMEOUT_MS, &s->e, &tmp)) != 0 ||
        (rc = sl_etcd_ping(s->e, &tmp)) != 0) {
        rc = sl_error_set(err, rc, "metadata store in etcd (%s): %s", endpoints, tmp.msg);
        goto fail;
    }
    *out = &s->base;
    return 0;
fail:
    es_close(&s->base);
    return rc;
}

int sl_meta_etcd_guard(sl_meta_store *base, const char *key, long long created_rev, sl_error *err)
{
    if (base->ops != &etcd_ops)
        return sl_error_set(err, SL_EINVAL, "metadata store: only an etcd store takes a guard");
    etcd_store *s = (etcd_store *)base;
    char *k = key ? strdup(key) : NULL;
    if (key && !k)
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    pthread_mutex_lock(&s->mu);
    free(s->guard);
    s->guard = k;
    s->guard_rev = created_rev;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

long long sl_meta_etcd_uncertain(sl_meta_store *base)
{
    if (!base || base->ops != &etcd_ops)
        return 0;
    return atomic_load(&((etcd_store *)base)->uncertain);
}
