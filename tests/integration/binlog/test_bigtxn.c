/*
 * test_bigtxn.c - a transaction of 1,000,000 rows streams through the binlog-reader with
 * bounded memory: batches are emitted mid-transaction (without TXN_END), the process's peak RSS
 * grows by far less than the transaction's size, and every row arrives once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#define RULES "\"rules\":[{\"schema\":\"bl_big\",\"table\":\"\",\"target_schema\":\"\"," \
              "\"target_table\":\"\",\"filters\":[]}]"

static long vm_kb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, strlen(key)))
            v = atol(line + strlen(key) + 1);
    if (f)
        fclose(f);
    return v;
}

static int all_rows(rd *r, void *ud) { return r->nrows >= *(uint64_t *)ud && r->txn_end_batches; }

static void test_million_rows_bounded(void **state)
{
    const int N = 1000000;
    MYSQL *db = src_connect();
    sqlf(db, "DROP DATABASE IF EXISTS bl_big");
    sqlf(db, "CREATE DATABASE bl_big");
    sqlf(db, "CREATE TABLE bl_big.t (id INT PRIMARY KEY, a BIGINT, s VARCHAR(64))");
    char file[256];
    unsigned long long pos;
    master_pos(db, file, sizeof file, &pos);
    sqlf(db, "USE bl_big");
    sqlf(db, "INSERT INTO t SELECT seq, seq * 3, CONCAT('row-', seq, '-padding-padding') "
             "FROM seq_1_to_%d", N);
    mysql_close(db);

    long before = vm_kb("VmHWM:");
    rd r;
    char extra[1024];
    snprintf(extra, sizeof extra, ",%s,\"binlog_name\":\"%s\",\"binlog_pos\":%llu", RULES, file,
             pos);
    char *o = rd_options("bl-big", extra);
    assert_int_equal(rd_open(&r, o, 0), 0);
    free(o);
    uint64_t want = (uint64_t)N;
    assert_true(rd_wait(&r, all_rows, &want, 600));
    long after = vm_kb("VmHWM:");
    fprintf(stderr, "rows %llu, batches %llu (TXN_END %llu), max %llu events per batch, "
            "peak RSS %ld -> %ld kB\n", (unsigned long long)r.nrows,
            (unsigned long long)r.nbatches, (unsigned long long)r.txn_end_batches,
            (unsigned long long)r.max_batch_events, before, after);
    assert_int_equal(r.nrows, N);
    assert_true(r.nbatches >= (uint64_t)N / 1024);
    assert_true(r.max_batch_events <= 1024 + 2);
    assert_int_equal(r.txn_end_batches, 1);
    /* the transaction decoded is ~ 1M events * (2 values + strings): hundreds of MB if held */
    assert_true(after - before < 96 * 1024);
    rd_close(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_million_rows_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
