/*
 * test_ckpt.c - the server-free part of plugins/common/ckpt.c: the syncer checkpoint table's
 * quoted name and DDL, and clearing a position. Reading the row needs a server:
 * tests/integration/plugins/test_ckpt_read.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"

static void test_table_name(void **state)
{
    sl_sbuf b;
    sl_sbuf_init(&b);
    sl_ckpt_add_table_name(&b, "dm_meta", "task1");
    assert_string_equal(b.p, "`dm_meta`.`task1_syncer_checkpoint`");
    sl_sbuf_reset(&b);
    /* names are quoted, never trusted */
    sl_ckpt_add_table_name(&b, "m`s", "t`x");
    assert_string_equal(b.p, "`m``s`.`t``x_syncer_checkpoint`");
    sl_sbuf_free(&b);
}

static void test_create_sql(void **state)
{
    sl_sbuf b;
    sl_sbuf_init(&b);
    sl_ckpt_add_create_sql(&b, "dm_meta", "t");
    assert_non_null(strstr(b.p, "CREATE TABLE IF NOT EXISTS `dm_meta`.`t_syncer_checkpoint` ("));
    /* the columns the reader selects and the key it relies on (one row per source and worker) */
    const char *cols[] = { "source_name VARCHAR(128) NOT NULL", "worker INT NOT NULL", "binlog_name ",
                           "binlog_pos BIGINT UNSIGNED", "binlog_gtid TEXT", "seq BIGINT UNSIGNED",
                           "is_snapshot TINYINT", "updated_at TIMESTAMP", "PRIMARY KEY(source_name, worker)" };
    for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++)
        if (!strstr(b.p, cols[i]))
            fail_msg("%s missing in %s", cols[i], b.p);
    sl_sbuf_free(&b);
}

static void test_pos_clear(void **state)
{
    sl_ckpt_pos p = { .binlog_pos = 9, .seq = 3, .is_snapshot = 1 };
    strcpy(p.binlog_name, "mysql-bin.000002");
    p.binlog_gtid = strdup("0-1-5");
    sl_ckpt_pos_clear(&p);   /* frees the GTID text (ASan checks) */
    assert_null(p.binlog_gtid);
    assert_string_equal(p.binlog_name, "");
    assert_int_equal(p.binlog_pos, 0);
    assert_int_equal(p.is_snapshot, 0);
    sl_ckpt_pos_clear(&p);   /* twice is harmless */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_name),
        cmocka_unit_test(test_create_sql),
        cmocka_unit_test(test_pos_clear),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
