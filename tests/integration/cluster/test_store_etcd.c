/*
 * test_store_etcd.c - the metadata store over a real 3-member etcd (runtime/store_etcd.c), through
 * the same interface as the SQLite store: create/update/delete preconditions, all-or-nothing
 * batches, prefix deletes and paged scans, and the revision check that keeps two masters from
 * losing each other's update.
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

#include "store.h"

static char root[96];

static const char *endpoints(void)
{
    const char *e = getenv("SLUICE_ETCD_ENDPOINTS");
    if (!e || !*e) fail_msg("SLUICE_ETCD_ENDPOINTS is not set: eval \"$(scripts/etcd env)\"");
    return e;
}

/* Every test under its own root, so reruns against the same etcd see nothing old. */
static sl_meta_store *open_store(const char *test)
{
    sl_meta_store *s = NULL;
    sl_error err = { 0 };
    snprintf(root, sizeof root, "/sluice-test-store/%ld/%s", (long)getpid(), test);
    if (sl_meta_etcd_open(endpoints(), root, &s, &err) != 0)
        fail_msg("sl_meta_etcd_open: %s", err.msg);
    return s;
}

static int collect(void *ud, const char *name, const char *value)
{
    char *buf = ud;
    strcat(buf, name);
    strcat(buf, "=");
    strcat(buf, value);
    strcat(buf, ";");
    return 0;
}

static void test_crud(void **st)
{
    sl_meta_store *s = open_store("crud");
    sl_error err = { 0 };
    char *v = NULL;
    assert_int_equal(sl_meta_get(s, "source", "a", &v, &err), SL_ENOENT);
    assert_int_equal(sl_meta_put1(s, SL_META_CREATE, "source", "a", "1", &err), 0);
    assert_int_equal(sl_meta_put1(s, SL_META_CREATE, "source", "a", "2", &err), SL_EEXIST);
    assert_non_null(strstr(err.msg, "source a already exists"));
    assert_int_equal(sl_meta_get(s, "source", "a", &v, &err), 0);
    assert_string_equal(v, "1");
    free(v);
    assert_int_equal(sl_meta_put1(s, SL_META_UPDATE, "source", "b", "x", &err), SL_ENOENT);
    assert_int_equal(sl_meta_put1(s, SL_META_UPDATE, "source", "a", "3", &err), 0);
    assert_int_equal(sl_meta_get(s, "source", "a", &v, &err), 0);
    assert_string_equal(v, "3");
    free(v);
    /* the same name in another kind is another key; quotes and slashes are just bytes */
    assert_int_equal(sl_meta_put1(s, SL_META_CREATE, "task", "a", "t", &err), 0);
    assert_int_equal(sl_meta_put1(s, SL_META_PUT, "task", "q'\"`/x", "{\"a\":1}", &err), 0);
    assert_int_equal(sl_meta_put1(s, SL_META_DELETE, "source", "a", NULL, &err), 0);
    assert_int_equal(sl_meta_get(s, "source", "a", &v, &err), SL_ENOENT);
    assert_int_equal(sl_meta_get(s, "task", "a", &v, &err), 0);
    assert_string_equal(v, "t");
    free(v);
    assert_int_equal(sl_meta_get(s, "task", "q'\"`/x", &v, &err), 0);
    assert_string_equal(v, "{\"a\":1}");
    free(v);
    /* an empty value is a value */
    assert_int_equal(sl_meta_put1(s, SL_META_PUT, "state", "e", "", &err), 0);
    assert_int_equal(sl_meta_get(s, "state", "e", &v, &err), 0);
    assert_string_equal(v, "");
    free(v);
    sl_meta_close(s);
}

static void test_batch_atomic(void **st)
{
    sl_meta_store *s = open_store("batch");
    sl_error err = { 0 };
    char buf[512] = "";
    assert_int_equal(sl_meta_put1(s, SL_META_CREATE, "task", "t1", "old", &err), 0);
    sl_meta_op ops[] = {
        { SL_META_PUT, "stage", "t2/s1", "Stopped" },
        { SL_META_CREATE, "task", "t1", "new" },      /* fails: the whole batch must not apply */
    };
    assert_int_equal(sl_meta_apply(s, ops, 2, &err), SL_EEXIST);
    assert_int_equal(sl_meta_scan(s, "stage", "", collect, buf, &err), 0);
    assert_string_equal(buf, "");
    sl_meta_op upd[] = {
        { SL_META_PUT, "stage", "t2/s1", "Stopped" },
        { SL_META_UPDATE, "task", "nope", "new" },
    };
    assert_int_equal(sl_meta_apply(s, upd, 2, &err), SL_ENOENT);
    assert_int_equal(sl_meta_scan(s, "stage", "", collect, buf, &err), 0);
    assert_string_equal(buf, "");
    sl_meta_op ok[] = {
        { SL_META_PUT, "stage", "t1/s1", "Running" },
        { SL_META_PUT, "stage", "t1/s2", "Stopped" },
        { SL_META_PUT, "stage", "t10/s1", "Paused" },
        { SL_META_UPDATE, "task", "t1", "new" },
    };
    assert_int_equal(sl_meta_apply(s, ok, 4, &err), 0);
    assert_int_equal(sl_meta_scan(s, "stage", "t1/", collect, buf, &err), 0);
    assert_string_equal(buf, "t1/s1=Running;t1/s2=Stopped;");
    sl_meta_op del[] = { { SL_META_DELETE_PREFIX, "stage", "t1/", NULL },
                         { SL_META_DELETE, "task", "t1", NULL } };
    assert_int_equal(sl_meta_apply(s, del, 2, &err), 0);
    buf[0] = 0;
    assert_int_equal(sl_meta_scan(s, "stage", "", collect, buf, &err), 0);
    assert_string_equal(buf, "t10/s1=Paused;");
    buf[0] = 0;
    assert_int_equal(sl_meta_scan(s, "task", "", collect, buf, &err), 0);
    assert_string_equal(buf, "");
    sl_meta_close(s);
}

/* "Forget the task's stages, then write the new ones" in one batch, as a task's PUT does: etcd
 * refuses a put inside a range the same transaction deletes, so the store must still mean it. */
static void test_replace_prefix(void **st)
{
    sl_meta_store *s = open_store("replace");
    sl_error err = { 0 };
    char buf[512] = "";
    sl_meta_op first[] = { { SL_META_PUT, "stage", "t/s1", "Running" },
                           { SL_META_PUT, "stage", "t/s2", "Running" },
                           { SL_META_PUT, "stage", "u/s1", "Running" } };
    assert_int_equal(sl_meta_apply(s, first, 3, &err), 0);
    sl_meta_op again[] = { { SL_META_UPDATE, "stage", "u/s1", "Paused" },
                           { SL_META_DELETE_PREFIX, "stage", "t/", NULL },
                           { SL_META_PUT, "stage", "t/s1", "Stopped" },
                           { SL_META_PUT, "stage", "t/s3", "Stopped" },
                           { SL_META_DELETE, "stage", "u/s1", NULL },
                           { SL_META_PUT, "stage", "u/s1", "Finished" } };
    if (sl_meta_apply(s, again, 6, &err) != 0)
        fail_msg("replace batch: %s", err.msg);
    assert_int_equal(sl_meta_scan(s, "stage", "", collect, buf, &err), 0);
    assert_string_equal(buf, "t/s1=Stopped;t/s3=Stopped;u/s1=Finished;");
    sl_meta_close(s);
}

/* Two masters read the same task; the first to write wins, the second is refused and reads
 * again, instead of overwriting the first one's change. */
static void test_lost_update(void **st)
{
    sl_meta_store *m1 = open_store("rev"), *m2 = open_store("rev");
    sl_error err = { 0 };
    char *v1 = NULL, *v2 = NULL;
    long long r1 = 0, r2 = 0;
    assert_int_equal(sl_meta_put1(m1, SL_META_CREATE, "task", "t", "v0", &err), 0);
    assert_int_equal(sl_meta_get_rev(m1, "task", "t", &v1, &r1, &err), 0);
    assert_int_equal(sl_meta_get_rev(m2, "task", "t", &v2, &r2, &err), 0);
    assert_true(r1 > 0);
    assert_int_equal(r1, r2);
    free(v1);
    free(v2);
    sl_meta_op w1 = { SL_META_UPDATE, "task", "t", "from m1" };
    sl_meta_op w2[] = { { SL_META_PUT, "stage", "t/s", "Running" },
                        { SL_META_UPDATE, "task", "t", "from m2" } };
    long long revs2[] = { 0, r2 };
    assert_int_equal(sl_meta_apply_rev(m1, &w1, &r1, 1, &err), 0);
    assert_int_equal(sl_meta_apply_rev(m2, w2, revs2, 2, &err), SL_ESTATE);
    assert_non_null(strstr(err.msg, "another writer"));
    assert_int_equal(sl_meta_get_rev(m2, "task", "t", &v2, &r2, &err), 0);
    assert_string_equal(v2, "from m1");
    assert_true(r2 > r1);
    free(v2);
    /* nothing of the refused batch was written */
    assert_int_equal(sl_meta_get(m2, "stage", "t/s", &v2, &err), SL_ENOENT);
    /* with the fresh revision it goes through */
    revs2[1] = r2;
    assert_int_equal(sl_meta_apply_rev(m2, w2, revs2, 2, &err), 0);
    assert_int_equal(sl_meta_get(m1, "task", "t", &v1, &err), 0);
    assert_string_equal(v1, "from m2");
    free(v1);
    /* a checked delete of a moved key is refused too */
    sl_meta_op d = { SL_META_DELETE, "task", "t", NULL };
    assert_int_equal(sl_meta_apply_rev(m1, &d, &r1, 1, &err), SL_ESTATE);
    assert_int_equal(sl_meta_get(m1, "task", "t", &v1, &err), 0);
    free(v1);
    sl_meta_close(m1);
    sl_meta_close(m2);
}

typedef struct count_ud {
    int n, stop_at;
    char last[64];
    int ordered;
} count_ud;

static int count(void *ud, const char *name, const char *value)
{
    count_ud *c = ud;
    if (c->n && strcmp(c->last, name) >= 0)
        c->ordered = 0;
    snprintf(c->last, sizeof c->last, "%s", name);
    if (strcmp(name, value) != 0)
        c->ordered = 0;
    return ++c->n == c->stop_at;
}

/* More keys than one page: each seen once, in order; a visitor can stop the scan. */
static void test_scan_pages(void **st)
{
    sl_meta_store *s = open_store("pages");
    sl_error err = { 0 };
    enum { N = 300 };
    static char names[N][16];
    sl_meta_op ops[100];
    for (int b = 0; b < N; b += 100) {
        for (int i = 0; i < 100; i++) {
            snprintf(names[b + i], sizeof names[0], "k%04d", b + i);
            ops[i] = (sl_meta_op){ SL_META_PUT, "state", names[b + i], names[b + i] };
        }
        assert_int_equal(sl_meta_apply(s, ops, 100, &err), 0);
    }
    count_ud c = { .ordered = 1 };
    assert_int_equal(sl_meta_scan(s, "state", "", count, &c, &err), 0);
    assert_int_equal(c.n, N);
    assert_true(c.ordered);
    assert_string_equal(c.last, "k0299");
    c = (count_ud){ .ordered = 1, .stop_at = 200 };
    assert_int_equal(sl_meta_scan(s, "state", "", count, &c, &err), 0);
    assert_int_equal(c.n, 200);
    c = (count_ud){ .ordered = 1 };
    assert_int_equal(sl_meta_scan(s, "state", "k01", count, &c, &err), 0);
    assert_int_equal(c.n, 100);
    assert_true(c.ordered);
    /* etcd bounds one transaction: a batch beyond it is refused whole, before anything is sent */
    static sl_meta_op big[200];
    for (int i = 0; i < 200; i++)
        big[i] = (sl_meta_op){ SL_META_DELETE, "state", names[i], NULL };
    assert_int_equal(sl_meta_apply(s, big, 200, &err), SL_ELIMIT);
    c = (count_ud){ .ordered = 1 };
    assert_int_equal(sl_meta_scan(s, "state", "", count, &c, &err), 0);
    assert_int_equal(c.n, N);
    sl_meta_op all = { SL_META_DELETE_PREFIX, "state", "", NULL };
    assert_int_equal(sl_meta_apply(s, &all, 1, &err), 0);
    c = (count_ud){ .ordered = 1 };
    assert_int_equal(sl_meta_scan(s, "state", "", count, &c, &err), 0);
    assert_int_equal(c.n, 0);
    sl_meta_close(s);
}

/* No etcd there: a clear error naming the endpoint, and no store. */
static void test_unreachable(void **st)
{
    sl_meta_store *s = NULL;
    sl_error err = { 0 };
    assert_int_equal(sl_meta_etcd_open("127.0.0.1:1", "/x", &s, &err), SL_ECONN);
    assert_null(s);
    assert_non_null(strstr(err.msg, "http://127.0.0.1:1"));
    assert_int_equal(sl_meta_etcd_open(endpoints(), "no-slash", &s, &err), SL_EINVAL);
    assert_null(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crud),
        cmocka_unit_test(test_batch_atomic),
        cmocka_unit_test(test_replace_prefix),
        cmocka_unit_test(test_lost_update),
        cmocka_unit_test(test_scan_pages),
        cmocka_unit_test(test_unreachable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
