/*
 * test_store.c - the SQLite metadata store through its interface: create/update/delete
 * preconditions, all-or-nothing batches, prefix deletes and scans, persistence across reopen.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"

static char dir[64], path[128];

static int setup(void **st)
{
    strcpy(dir, "/tmp/sl-store-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof path, "%s/meta.db", dir);
    return 0;
}

static int teardown(void **st)
{
    char p[160];
    const char *sfx[] = { "", "-wal", "-shm" };
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", path, sfx[i]);
        unlink(p);
    }
    rmdir(dir);
    return 0;
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
    sl_meta_store *s = NULL;
    sl_error err = { 0 };
    char *v = NULL;
    assert_int_equal(sl_meta_sqlite_open(path, &s, &err), 0);
    assert_int_equal(sl_meta_put1(s, SL_META_CREATE, "source", "a", "1", &err), 0);
    assert_int_equal(sl_meta_put1(s, SL_META_CREATE, "source", "a", "2", &err), SL_EEXIST);
    assert_int_equal(sl_meta_get(s, "source", "a", &v, &err), 0);
    assert_string_equal(v, "1");
    free(v);
    assert_int_equal(sl_meta_put1(s, SL_META_UPDATE, "source", "b", "x", &err), SL_ENOENT);
    assert_int_equal(sl_meta_put1(s, SL_META_UPDATE, "source", "a", "3", &err), 0);
    assert_int_equal(sl_meta_get(s, "source", "a", &v, &err), 0);
    assert_string_equal(v, "3");
    free(v);
    /* same name in another kind is another key */
    assert_int_equal(sl_meta_put1(s, SL_META_CREATE, "task", "a", "t", &err), 0);
    assert_int_equal(sl_meta_put1(s, SL_META_DELETE, "source", "a", NULL, &err), 0);
    assert_int_equal(sl_meta_get(s, "source", "a", &v, &err), SL_ENOENT);
    assert_int_equal(sl_meta_get(s, "task", "a", &v, &err), 0);
    free(v);
    sl_meta_close(s);
}

static void test_batch_atomic(void **st)
{
    sl_meta_store *s = NULL;
    sl_error err = { 0 };
    char buf[512] = "";
    assert_int_equal(sl_meta_sqlite_open(path, &s, &err), 0);
    assert_int_equal(sl_meta_put1(s, SL_META_CREATE, "task", "t1", "old", &err), 0);
    sl_meta_op ops[] = {
        { SL_META_PUT, "stage", "t2/s1", "Stopped" },
        { SL_META_CREATE, "task", "t1", "new" },      /* fails: the whole batch must not apply */
    };
    assert_int_equal(sl_meta_apply(s, ops, 2, &err), SL_EEXIST);
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
    sl_meta_close(s);
}

static void test_reopen(void **st)
{
    sl_meta_store *s = NULL;
    sl_error err = { 0 };
    char *v = NULL;
    assert_int_equal(sl_meta_sqlite_open(path, &s, &err), 0);
    assert_int_equal(sl_meta_put1(s, SL_META_PUT, "source", "quote'\"`x", "{\"a\":1}", &err), 0);
    sl_meta_close(s);
    assert_int_equal(sl_meta_sqlite_open(path, &s, &err), 0);
    assert_int_equal(sl_meta_get(s, "source", "quote'\"`x", &v, &err), 0);
    assert_string_equal(v, "{\"a\":1}");
    free(v);
    sl_meta_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_crud, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
