/*
 * test_tverify.c - the check a server-side verification makes before re-checking a chunk:
 * whether the task's applied GTID list holds the source's position (runtime/tverify.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "tverify.h"

static void test_gtid_covers(void **state)
{
    (void)state;
    /* same domain: the applied sequence number must reach the position's */
    assert_int_equal(sl__tverify_gtid_covers("0-1-100", "0-1-100"), 1);
    assert_int_equal(sl__tverify_gtid_covers("0-1-101", "0-1-100"), 1);
    assert_int_equal(sl__tverify_gtid_covers("0-1-99", "0-1-100"), 0);
    /* another server id in the same domain after a failover: the sequence still decides */
    assert_int_equal(sl__tverify_gtid_covers("0-2-150", "0-1-140"), 1);
    /* several domains: every domain of the position must be covered */
    assert_int_equal(sl__tverify_gtid_covers("0-1-10,1-1-20", "0-1-10,1-1-20"), 1);
    assert_int_equal(sl__tverify_gtid_covers("0-1-10,1-1-19", "0-1-10,1-1-20"), 0);
    assert_int_equal(sl__tverify_gtid_covers("1-1-20, 0-1-10", "0-1-9,1-1-2"), 1);
    assert_int_equal(sl__tverify_gtid_covers("0-1-10", "0-1-5,3-1-1"), 0);
    /* nothing applied yet */
    assert_int_equal(sl__tverify_gtid_covers("", "0-1-1"), 0);
    /* an empty position is held by anything */
    assert_int_equal(sl__tverify_gtid_covers("", ""), 1);
    /* MySQL's uuid:interval sets are not compared */
    assert_int_equal(sl__tverify_gtid_covers("3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5", "0-1-1"), -1);
    assert_int_equal(sl__tverify_gtid_covers("0-1-1", "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gtid_covers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
