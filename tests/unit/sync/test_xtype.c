/*
 * test_xtype.c - unit tests of plugins/common/xtype.c: the table of MariaDB's extended column
 * types is found by the name information_schema gives, case-insensitively, and each row is
 * complete (a width, a binary cast of that width, the BINARY(n) type of a row image).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "xtype.h"

static void test_find(void **st)
{
    (void)st;
    const sl_xtype *x = sl_xtype_find("inet6");
    assert_non_null(x);
    assert_int_equal(x->width, 16);
    assert_ptr_equal(sl_xtype_find("INET6"), x);
    assert_int_equal(sl_xtype_find("inet4")->width, 4);
    assert_int_equal(sl_xtype_find("Uuid")->width, 16);
    assert_null(sl_xtype_find("binary"));
    assert_null(sl_xtype_find("inet"));
    assert_null(sl_xtype_find(""));
    assert_null(sl_xtype_find(NULL));
}

static void test_rows_complete(void **st)
{
    (void)st;
    uint32_t n = 0;
    const sl_xtype *all = sl_xtype_all(&n);
    assert_true(n >= 3);
    for (uint32_t i = 0; i < n; i++) {
        char cast[32];
        snprintf(cast, sizeof cast, "BINARY(%u)", all[i].width);
        assert_string_equal(all[i].dump_cast, cast);
        assert_int_equal(all[i].mysql_type, 254);       /* MYSQL_TYPE_STRING */
        assert_ptr_equal(sl_xtype_find(all[i].name), &all[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_rows_complete),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
