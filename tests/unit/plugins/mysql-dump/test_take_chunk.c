/* The order dump workers take chunks in (sl__dump_take_chunk): the plan's, table by table, but
 * never two chunks at once of a table with an AUTO_INCREMENT column once it is the last table
 * with chunks left. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "dump.h"

/* tables a (AUTO_INCREMENT, 2 chunks), b (plain, 1), c (AUTO_INCREMENT, 3), e (no chunks:
 * schema only) */
static dtable tables[4];
static dchunk chunks[6];

static void plan(dump *d)
{
    static const struct { int serial; size_t n; } shape[] = {{1, 2}, {0, 1}, {1, 3}, {0, 0}};
    memset(d, 0, sizeof *d);
    memset(tables, 0, sizeof tables);
    memset(chunks, 0, sizeof chunks);
    size_t first = 0;
    for (size_t i = 0; i < 4; i++) {
        tables[i].serial = shape[i].serial;
        tables[i].first_chunk = first;
        tables[i].nchunks = shape[i].n;
        for (size_t c = 0; c < shape[i].n; c++)
            chunks[first + c].table = i;
        first += shape[i].n;
    }
    d->tables = tables;
    d->ntables = 4;
    d->chunks = chunks;
    d->nchunks = first;
}

static size_t take(dump *d)
{
    size_t ci = 99;
    assert_int_equal(sl__dump_take_chunk(d, &ci), 1);
    return ci;
}

static void done(dump *d, size_t ci)
{
    d->tables[d->chunks[ci].table].dumping--;
}

/* Four workers: a's chunks go side by side (tables follow it); c's, the last table's, one at a
 * time, and e, without chunks, does not count as a table that follows. */
static void test_serial_table_one_chunk_at_a_time(void **state)
{
    (void)state;
    dump d;
    plan(&d);
    size_t ci;
    assert_int_equal(take(&d), 0);          /* a.0 */
    assert_int_equal(take(&d), 1);          /* a.1 while a.0 is dumped: b and c follow */
    assert_int_equal(take(&d), 2);          /* b.0 */
    assert_int_equal(take(&d), 3);          /* c.0 */
    assert_int_equal(sl__dump_take_chunk(&d, &ci), -1);   /* c.1 waits for c.0 */
    done(&d, 0);
    done(&d, 2);
    assert_int_equal(sl__dump_take_chunk(&d, &ci), -1);   /* others' ends change nothing */
    done(&d, 3);
    assert_int_equal(take(&d), 4);          /* c.1 */
    assert_int_equal(sl__dump_take_chunk(&d, &ci), -1);
    done(&d, 4);
    assert_int_equal(take(&d), 5);          /* c.2 */
    assert_int_equal(sl__dump_take_chunk(&d, &ci), 0);    /* all taken: the workers end */
    assert_int_equal(d.next_job, 6);
}

/* Without AUTO_INCREMENT columns the order is the plan's, whatever is being dumped. */
static void test_plain_tables_in_plan_order(void **state)
{
    (void)state;
    dump d;
    plan(&d);
    for (size_t i = 0; i < 4; i++)
        tables[i].serial = 0;
    for (size_t i = 0; i < d.nchunks; i++)
        assert_int_equal(take(&d), i);
    size_t ci;
    assert_int_equal(sl__dump_take_chunk(&d, &ci), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serial_table_one_chunk_at_a_time),
        cmocka_unit_test(test_plain_tables_in_plan_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
