/*
 * test_etcd.c - the etcd v3 client (runtime/etcd.c) against a real 3-member etcd started by
 * scripts/etcd: reads, revision-checked writes that refuse a lost update, leases that take
 * their keys with them, and a dead member that costs nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "etcd.h"

static const char *endpoints(void)
{
    const char *e = getenv("SLUICE_ETCD_ENDPOINTS");
    if (!e || !*e) fail_msg("SLUICE_ETCD_ENDPOINTS is not set: eval \"$(scripts/etcd env)\"");
    return e;
}

/* Every test writes under its own prefix, so reruns against the same etcd don't see old keys. */
static void key(char *out, size_t n, const char *name)
{
    snprintf(out, n, "/sluice-test/%ld/%s", (long)getpid(), name);
}

static sl_etcd *connect_all(void)
{
    sl_etcd *e = NULL;
    sl_error err = {0};
    int rc = sl_etcd_new(endpoints(), 3000, &e, &err);
    if (rc != 0) fail_msg("sl_etcd_new: %s", err.msg);
    return e;
}

static void test_put_get(void **state)
{
    (void)state;
    sl_etcd *e = connect_all();
    sl_error err = {0};
    sl_etcd_kv kv;
    char k[128];
    key(k, sizeof k, "put_get");

    assert_int_equal(sl_etcd_ping(e, &err), 0);
    assert_int_equal(sl_etcd_get(e, k, &kv, &err), SL_ENOENT);

    /* Values are bytes: a NUL and high bytes go through base64 and come back whole. */
    const char val[] = {'a', '\0', 'b', (char)0xff, 'c'};
    int64_t rev = 0;
    assert_int_equal(sl_etcd_put(e, k, val, sizeof val, 0, &rev, &err), 0);
    assert_true(rev > 0);
    assert_int_equal(sl_etcd_get(e, k, &kv, &err), 0);
    assert_string_equal(kv.key, k);
    assert_int_equal(kv.value_len, sizeof val);
    assert_memory_equal(kv.value, val, sizeof val);
    assert_int_equal(kv.mod_revision, rev);
    assert_int_equal(kv.lease, 0);
    sl_etcd_kv_clear(&kv);

    /* An empty value is a value (the gateway leaves the field out). */
    assert_int_equal(sl_etcd_put(e, k, "", 0, 0, &rev, &err), 0);
    assert_int_equal(sl_etcd_get(e, k, &kv, &err), 0);
    assert_int_equal(kv.value_len, 0);
    assert_string_equal(kv.value, "");
    sl_etcd_kv_clear(&kv);

    int deleted = 0;
    assert_int_equal(sl_etcd_delete(e, k, &deleted, &err), 0);
    assert_true(deleted);
    assert_int_equal(sl_etcd_delete(e, k, &deleted, &err), 0);
    assert_false(deleted);
    assert_int_equal(sl_etcd_get(e, k, &kv, &err), SL_ENOENT);
    sl_etcd_free(e);
}

/* Two writers that read the same revision: the second one must be refused, not win. */
static void test_put_if(void **state)
{
    (void)state;
    sl_etcd *e = connect_all();
    sl_error err = {0};
    sl_etcd_kv kv;
    char k[128];
    key(k, sizeof k, "put_if");
    int64_t r1 = 0, r2 = 0, r3 = 0;

    assert_int_equal(sl_etcd_put_if(e, k, "one", 3, 0, 0, &r1, &err), 0);
    /* Create-only a second time: it exists now. */
    assert_int_equal(sl_etcd_put_if(e, k, "dup", 3, 0, 0, &r2, &err), SL_ESTATE);
    assert_non_null(strstr(err.msg, k));

    /* Writer A and writer B both read revision r1; A writes first. */
    assert_int_equal(sl_etcd_put_if(e, k, "A", 1, r1, 0, &r2, &err), 0);
    assert_true(r2 > r1);
    assert_int_equal(sl_etcd_put_if(e, k, "B", 1, r1, 0, &r3, &err), SL_ESTATE);
    assert_int_equal(sl_etcd_get(e, k, &kv, &err), 0);
    assert_string_equal(kv.value, "A");
    assert_int_equal(kv.mod_revision, r2);
    sl_etcd_kv_clear(&kv);

    /* delete_if follows the same rule. */
    assert_int_equal(sl_etcd_delete_if(e, k, r1, &err), SL_ESTATE);
    assert_int_equal(sl_etcd_get(e, k, &kv, &err), 0);
    sl_etcd_kv_clear(&kv);
    assert_int_equal(sl_etcd_delete_if(e, k, r2, &err), 0);
    assert_int_equal(sl_etcd_get(e, k, &kv, &err), SL_ENOENT);
    assert_int_equal(sl_etcd_delete_if(e, k, r2, &err), SL_ESTATE);
    sl_etcd_free(e);
}

static void test_prefix(void **state)
{
    (void)state;
    sl_etcd *e = connect_all();
    sl_error err = {0};
    char p[128], k[160];
    key(p, sizeof p, "prefix/");
    const char *names[] = {"c", "a", "b"};
    for (int i = 0; i < 3; i++) {
        snprintf(k, sizeof k, "%s%s", p, names[i]);
        assert_int_equal(sl_etcd_put(e, k, names[i], 1, 0, NULL, &err), 0);
    }
    /* A sibling whose name only starts like the prefix without its slash stays out. */
    key(k, sizeof k, "prefix0");
    assert_int_equal(sl_etcd_put(e, k, "x", 1, 0, NULL, &err), 0);

    sl_etcd_kv *kvs = NULL;
    size_t n = 0;
    assert_int_equal(sl_etcd_get_prefix(e, p, 0, &kvs, &n, &err), 0);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        char want[160];
        snprintf(want, sizeof want, "%s%c", p, (char)('a' + i));
        assert_string_equal(kvs[i].key, want);
        assert_int_equal(kvs[i].value[0], 'a' + (int)i);
    }
    sl_etcd_kvs_free(kvs, n);

    assert_int_equal(sl_etcd_get_prefix(e, p, 2, &kvs, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(kvs[1].value, "b");
    sl_etcd_kvs_free(kvs, n);

    key(k, sizeof k, "nothing-here/");
    assert_int_equal(sl_etcd_get_prefix(e, k, 0, &kvs, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_null(kvs);
    assert_int_equal(sl_etcd_get_prefix(e, "", 0, &kvs, &n, &err), SL_EINVAL);
    sl_etcd_free(e);
}

/* A lease guards its keys: revoked or expired, they are gone, and renewing says so. */
static void test_lease(void **state)
{
    (void)state;
    sl_etcd *e = connect_all();
    sl_error err = {0};
    sl_etcd_kv kv;
    char k[128];
    key(k, sizeof k, "lease");
    int64_t lease = 0;
    long ttl = 0;

    assert_int_equal(sl_etcd_lease_grant(e, 30, &lease, &err), 0);
    assert_true(lease != 0);
    assert_int_equal(sl_etcd_put_if(e, k, "me", 2, 0, lease, NULL, &err), 0);
    assert_int_equal(sl_etcd_get(e, k, &kv, &err), 0);
    assert_int_equal(kv.lease, lease);
    sl_etcd_kv_clear(&kv);
    assert_int_equal(sl_etcd_lease_keepalive(e, lease, &ttl, &err), 0);
    assert_true(ttl > 0 && ttl <= 30);
    assert_int_equal(sl_etcd_lease_revoke(e, lease, &err), 0);
    assert_int_equal(sl_etcd_get(e, k, &kv, &err), SL_ENOENT);
    assert_int_equal(sl_etcd_lease_keepalive(e, lease, &ttl, &err), SL_ENOENT);
    /* Revoking what is gone already is what the caller wanted: not an error. */
    assert_int_equal(sl_etcd_lease_revoke(e, lease, &err), 0);

    /* Left alone, a 1 s lease expires by itself (etcd's clock, not ours: we only wait for it). */
    assert_int_equal(sl_etcd_lease_grant(e, 1, &lease, &err), 0);
    assert_int_equal(sl_etcd_put(e, k, "short", 5, lease, NULL, &err), 0);
    int rc = 0;
    for (int i = 0; i < 300; i++) {
        rc = sl_etcd_get(e, k, &kv, &err);
        if (rc == SL_ENOENT) break;
        assert_int_equal(rc, 0);
        sl_etcd_kv_clear(&kv);
        usleep(100 * 1000);
    }
    assert_int_equal(rc, SL_ENOENT);
    assert_int_equal(sl_etcd_lease_keepalive(e, lease, &ttl, &err), SL_ENOENT);
    assert_int_equal(sl_etcd_lease_grant(e, 0, &lease, &err), SL_EINVAL);
    sl_etcd_free(e);
}

static void test_bad_endpoints(void **state)
{
    (void)state;
    sl_etcd *e = NULL;
    sl_error err = {0};
    assert_int_equal(sl_etcd_new("", 1000, &e, &err), SL_EINVAL);
    assert_int_equal(sl_etcd_new("http://127.0.0.1:1,,x", 1000, &e, &err), SL_EINVAL);
    assert_null(e);

    /* Nothing listens on port 1: a clear connection error that names the endpoint. */
    assert_int_equal(sl_etcd_new("127.0.0.1:1", 1000, &e, &err), 0);
    assert_int_equal(sl_etcd_ping(e, &err), SL_ECONN);
    assert_non_null(strstr(err.msg, "http://127.0.0.1:1"));
    sl_etcd_free(e);

    /* A dead endpoint first in the list costs one attempt, not the call. */
    char list[1024];
    snprintf(list, sizeof list, "127.0.0.1:1,%s", endpoints());
    assert_int_equal(sl_etcd_new(list, 1000, &e, &err), 0);
    assert_int_equal(sl_etcd_ping(e, &err), 0);
    sl_etcd_free(e);
}

static int etcd_script(const char *args)
{
    const char *s = getenv("SLUICE_ETCD_SCRIPT");
    if (!s) fail_msg("SLUICE_ETCD_SCRIPT is not set");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "\"%s\" %s >/dev/null", s, args);
    return system(cmd);
}

/* Kill one member of three: a quorum remains and a revision-checked write still goes through,
 * whichever member the client was talking to. */
static void test_member_down(void **state)
{
    (void)state;
    sl_etcd *e = connect_all();
    sl_error err = {0};
    sl_etcd_kv kv;
    char k[128];
    key(k, sizeof k, "member_down");
    int64_t rev = 0;
    assert_int_equal(sl_etcd_put(e, k, "before", 6, 0, &rev, &err), 0);

    assert_int_equal(etcd_script("kill 1"), 0);
    int rc = sl_etcd_put_if(e, k, "after", 5, rev, 0, &rev, &err);
    if (rc != 0) fail_msg("put_if with one member down: %s", err.msg);
    assert_int_equal(sl_etcd_get(e, k, &kv, &err), 0);
    assert_string_equal(kv.value, "after");
    sl_etcd_kv_clear(&kv);

    /* Back in the cluster, member 1 serves the same data. */
    assert_int_equal(etcd_script("start 1"), 0);
    sl_etcd_free(e);
    char first[256];
    snprintf(first, sizeof first, "%.*s", (int)strcspn(endpoints(), ","), endpoints());
    assert_int_equal(sl_etcd_new(first, 3000, &e, &err), 0);
    assert_int_equal(sl_etcd_get(e, k, &kv, &err), 0);
    assert_string_equal(kv.value, "after");
    sl_etcd_kv_clear(&kv);
    sl_etcd_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get),
        cmocka_unit_test(test_put_if),
        cmocka_unit_test(test_prefix),
        cmocka_unit_test(test_lease),
        cmocka_unit_test(test_bad_endpoints),
        cmocka_unit_test(test_member_down),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
