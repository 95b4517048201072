/*
 * etcd.h - a small etcd v3 client over its JSON gateway (HTTP + libcurl), for the cluster
 * (issue 13): key reads, revision-checked writes, leases. No consensus of our own: etcd has it.
 *
 * One sl_etcd per thread (it owns one curl handle); not thread-safe. Each call tries the
 * endpoints in turn, starting with the last one that answered, so one dead member costs one
 * connection attempt, not a failure. All calls block at most the configured timeout per endpoint.
 */
#ifndef SLUICE_RUNTIME_ETCD_H
#define SLUICE_RUNTIME_ETCD_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/err.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sl_etcd sl_etcd;

/* One key as read: value is NUL-terminated for convenience (len excludes the NUL). */
typedef struct sl_etcd_kv {
    char *key;
    char *value;
    size_t value_len;
    int64_t mod_revision;       /* etcd revision of the last write of this key */
    int64_t lease;              /* 0 when the key has no lease */
} sl_etcd_kv;

/* Connect to "http://h:p[,http://h:p...]" (a bare host:port gets http://). timeout_ms bounds each
 * request to one endpoint. Checks nothing on the network: call sl_etcd_ping() for that.
 * Returns 0 and *out (caller frees with sl_etcd_free), or SL_EINVAL for a bad list, SL_ENOMEM. */
int sl_etcd_new(const char *endpoints, long timeout_ms, sl_etcd **out, sl_error *err);
void sl_etcd_free(sl_etcd *e);

/* Is a quorum reachable? A linearizable read of an empty key. 0, or SL_ECONN with every
 * endpoint's failure in err. */
int sl_etcd_ping(sl_etcd *e, sl_error *err);

/* Read one key. 0 and *kv filled (caller frees with sl_etcd_kv_clear), SL_ENOENT when absent. */
int sl_etcd_get(sl_etcd *e, const char *key, sl_etcd_kv *kv, sl_error *err);
void sl_etcd_kv_clear(sl_etcd_kv *kv);

/* Read every key starting with prefix, in key order; at most limit keys (0 = no limit).
 * 0 and *kvs / *n (caller frees with sl_etcd_kvs_free; *kvs may be NULL when *n is 0). */
int sl_etcd_get_prefix(sl_etcd *e, const char *prefix, long limit, sl_etcd_kv **kvs, size_t *n,
                       sl_error *err);
void sl_etcd_kvs_free(sl_etcd_kv *kvs, size_t n);

/* Unconditional write, under lease (0 = none). *revision (may be NULL) gets the new revision. */
int sl_etcd_put(sl_etcd *e, const char *key, const char *value, size_t len, int64_t lease,
                int64_t *revision, sl_error *err);

/* Write only if the key's mod_revision is still expect (0 = the key must not exist): one etcd
 * transaction, so two writers never lose each other's update. 0 and *revision, or SL_ESTATE
 * when someone else wrote (or created) it first; nothing is written then. */
int sl_etcd_put_if(sl_etcd *e, const char *key, const char *value, size_t len, int64_t expect,
                   int64_t lease, int64_t *revision, sl_error *err);

/* Delete one key. 0 (also when absent); *deleted (may be NULL) says whether it existed. */
int sl_etcd_delete(sl_etcd *e, const char *key, int *deleted, sl_error *err);

/* Delete only if the key's mod_revision is still expect: 0, SL_ESTATE when it changed or is gone. */
int sl_etcd_delete_if(sl_etcd *e, const char *key, int64_t expect, sl_error *err);

/* Read the keys that start with prefix and are >= from (from itself included), in key order, at
 * most limit (0 = no limit): one page of a bounded prefix scan. The next page starts at the last
 * key read (skip it). Same ownership as sl_etcd_get_prefix. */
int sl_etcd_get_range(sl_etcd *e, const char *from, const char *prefix, long limit,
                      sl_etcd_kv **kvs, size_t *n, sl_error *err);

/* A condition of sl_etcd_txn, on one key. */
typedef enum sl_etcd_cmp_kind {
    SL_ETCD_ABSENT = 1,     /* the key does not exist */
    SL_ETCD_PRESENT,        /* the key exists */
    SL_ETCD_MOD_IS,         /* the key's mod_revision is exactly rev */
    SL_ETCD_CREATED_AT      /* the key exists and was created at revision rev (the same
                             * incarnation of it: not deleted and created again since) */
} sl_etcd_cmp_kind;

typedef struct sl_etcd_cmp {
    sl_etcd_cmp_kind kind;
    const char *key;
    int64_t rev;            /* SL_ETCD_MOD_IS, SL_ETCD_CREATED_AT */
} sl_etcd_cmp;

typedef enum sl_etcd_op_kind {
    SL_ETCD_PUT = 1,
    SL_ETCD_DELETE,         /* one key */
    SL_ETCD_DELETE_PREFIX   /* every key starting with key */
} sl_etcd_op_kind;

typedef struct sl_etcd_op {
    sl_etcd_op_kind kind;
    const char *key;
    const char *value;      /* PUT: value bytes, len of them */
    size_t len;
    int64_t lease;          /* PUT: 0 = none */
} sl_etcd_op;

/* One etcd transaction: if every cmp holds, apply every op, atomically. 0 and *revision (may be
 * NULL) when it applied; SL_ESTATE when a condition failed (nothing was written; the caller
 * reads the keys again to say which). etcd bounds the ops of one transaction (--max-txn-ops,
 * 128 by default): more is SL_ELIMIT here, before anything is sent. */
int sl_etcd_txn(sl_etcd *e, const sl_etcd_cmp *cmps, size_t ncmp, const sl_etcd_op *ops,
                size_t nops, int64_t *revision, sl_error *err);

/* Grant a lease of ttl_s seconds: 0 and *lease. */
int sl_etcd_lease_grant(sl_etcd *e, long ttl_s, int64_t *lease, sl_error *err);
/* Renew a lease: 0 and *ttl_left (may be NULL) seconds, SL_ENOENT when it expired already
 * (its keys are gone: the holder lost whatever the lease guarded). */
int sl_etcd_lease_keepalive(sl_etcd *e, int64_t lease, long *ttl_left, sl_error *err);
/* Revoke a lease and delete its keys at once. 0 (also when it expired already). */
int sl_etcd_lease_revoke(sl_etcd *e, int64_t lease, sl_error *err);

/* Watching is polling for now: re-read a prefix with sl_etcd_get_prefix and compare revisions. */

#ifdef __cplusplus
}
#endif
#endif
