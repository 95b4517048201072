/*
 * test_reader.c - the binlog-reader against the sandbox source: every column type decoded
 * exactly (limits, NULLs, charsets) - the incremental type matrix: TINYINT, SMALLINT, MEDIUMINT,
 * INT, BIGINT (signed and unsigned), DECIMAL, FLOAT, DOUBLE, BIT(1..64), DATE, TIME(0/3/6),
 * DATETIME(0/2/6), TIMESTAMP(0/4/6), YEAR, CHAR, VARCHAR (latin1, utf8mb4), TEXT, BINARY,
 * VARBINARY, BLOB, LONGBLOB, JSON, ENUM, SET, GEOMETRY (test_types), and MariaDB's extended types
 * INET6, INET4, UUID (test_xtypes) -, updates with both images, deletes, DDL, rotation, table
 * versions, unselected tables skipped, checkpoint resume, heartbeats of an idle source carried
 * downstream with its position, a refused source, a purged binlog, and a source killed in the
 * middle of streaming a large transaction (nothing lost or repeated).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>

#include "harness.h"

#define RULES "\"rules\":[{\"schema\":\"bl_test\",\"table\":\"\",\"target_schema\":\"\"," \
              "\"target_table\":\"\",\"filters\":[]}]"

static char start_file[256];
static int _line;
static unsigned long long start_pos;

static int count_kind(rd *r, int kind)
{
    int n = 0;
    FOR_EVENTS(r, ev)
        n += ev->kind == kind;
    return n;
}

static int commits_at_least(rd *r, void *ud) { return count_kind(r, SL_EV_COMMIT) >= *(int *)ud; }
static int ddls_at_least(rd *r, void *ud) { return count_kind(r, SL_EV_DDL) >= *(int *)ud; }
static int failed_pred(rd *r, void *ud) { return r->failed != 0; }

static char *start_opts(const char *task, const char *file, unsigned long long pos)
{
    char extra[1024];
    snprintf(extra, sizeof extra, ",%s,\"binlog_name\":\"%s\",\"binlog_pos\":%llu", RULES, file,
             pos);
    return rd_options(task, extra);
}

static sl_event *nth_kind(rd *r, int kind, const char *table, int nth)
{
    FOR_EVENTS(r, ev) {
        if (ev->kind == kind && (!table || (ev->table && !strcmp(ev->table, table))) && nth-- == 0)
            return ev;
    }
    return NULL;
}

static const sl_value *colv(const sl_event *ev, const sl_value *img, const char *name)
{
    int i = col_index(ev, name);
    if (i < 0) {
        fprintf(stderr, "no column %s\n", name);
        return NULL;
    }
    return &img[i];
}

#define V(img, name) colv(ev, (img), name)

static void assert_str_(int line, const sl_value *v, int type, const char *s, size_t len)
{
    assert_non_null(v);
    assert_int_equal(v->type, type);
    assert_int_equal(v->len, len);
    assert_memory_equal(v->v.s, s, len);
}

static void assert_time_(int line, const sl_value *v, int type, int neg, int y, int mo, int d, int h, int mi,
                        int s, int us, int dec)
{
    assert_non_null(v);
    fprintf(stderr, "line %d: %d %d-%d-%d %u:%d:%d.%u dec %d\n", line, v->v.t.neg, v->v.t.year,
            v->v.t.month, v->v.t.day, v->v.t.hour, v->v.t.minute, v->v.t.second, v->v.t.usec, v->dec);
    assert_int_equal(v->type, type);
    assert_int_equal(v->v.t.neg, neg);
    assert_int_equal(v->v.t.year, y);
    assert_int_equal(v->v.t.month, mo);
    assert_int_equal(v->v.t.day, d);
    assert_int_equal(v->v.t.hour, h);
    assert_int_equal(v->v.t.minute, mi);
    assert_int_equal(v->v.t.second, s);
    assert_int_equal(v->v.t.usec, us);
    assert_int_equal(v->dec, dec);
}

static void assert_ts_(int line, const sl_value *v, int64_t sec, uint32_t usec, int dec)
{
    assert_non_null(v);
    fprintf(stderr, "line %d: type %d %lld.%u dec %d\n", line, v->type, (long long)v->v.ts.sec,
            v->v.ts.usec, v->dec);
    assert_int_equal(v->type, SL_V_TIMESTAMP);
    assert_int_equal(v->v.ts.sec, sec);
    assert_int_equal(v->v.ts.usec, usec);
    assert_int_equal(v->dec, dec);
}

#define assert_str(...) do { _line = __LINE__; assert_str_(__LINE__, __VA_ARGS__); } while (0)
#define assert_time(...) do { _line = __LINE__; assert_time_(__LINE__, __VA_ARGS__); } while (0)
#define assert_ts(...) do { _line = __LINE__; assert_ts_(__LINE__, __VA_ARGS__); } while (0)

static void setup_db(MYSQL *db)
{
    sqlf(db, "SET time_zone = '+00:00'");
    sqlf(db, "DROP DATABASE IF EXISTS bl_test");
    sqlf(db, "DROP DATABASE IF EXISTS bl_other");
    sqlf(db, "CREATE DATABASE bl_test");
    sqlf(db, "CREATE DATABASE bl_other");
    master_pos(db, start_file, sizeof start_file, &start_pos);
}

static const char *DMIN = "-99999999999999999999999999999999999.999999999999999999999999999999";
static const char *DMAX = "99999999999999999999999999999999999.999999999999999999999999999999";

static void test_types(void **state)
{
    MYSQL *db = src_connect();
    setup_db(db);
    sqlf(db, "CREATE TABLE bl_test.types (id INT PRIMARY KEY, ti TINYINT, y YEAR, b1 BIT(1), "
             "tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED, mi MEDIUMINT, "
             "miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED, "
             "d DECIMAL(65,30), d2 DECIMAL(10,2) UNSIGNED, d3 DECIMAL(20,5), f FLOAT, db DOUBLE, "
             "b64 BIT(64), b10 BIT(10), dt DATE, tm TIME, tm6 TIME(6), tm3 TIME(3), "
             "dtm DATETIME, dtm6 DATETIME(6), dtm2 DATETIME(2), ts TIMESTAMP NULL, "
             "ts6 TIMESTAMP(6) NULL, ts4 TIMESTAMP(4) NULL, c CHAR(10), "
             "vc VARCHAR(300) CHARACTER SET latin1, t TEXT, ct CHAR(200), bn BINARY(4), "
             "vb VARBINARY(10), bl BLOB, lb LONGBLOB, j JSON, e ENUM('a','b','c'), "
             "s SET('x','y','z'), g GEOMETRY)");
    sqlf(db, "CREATE TABLE bl_other.skipme (id INT PRIMARY KEY)");
    sqlf(db, "INSERT INTO bl_other.skipme VALUES (1)");
    sqlf(db, "INSERT INTO bl_test.types VALUES (1, -128, 1901, b'0', 0, -32768, 0, -8388608, 0, "
             "-2147483648, 0, -9223372036854775808, 0, '%s', 0, -12345.678, -1.5, "
             "-1.7976931348623157e308, b'0', b'0', '1000-01-01', '-838:59:59', "
             "'-12:34:56.000001', '-00:00:00.5', '1000-01-01 00:00:00', "
             "'1000-01-01 00:00:00.000000', '2000-02-29 23:59:59.99', '1970-01-01 00:00:01', "
             "'1970-01-01 00:00:01.000001', '2000-01-01 00:00:00.1234', '', 0xE9, '', '', x'01', "
             "x'', x'00ff00', NULL, '{}', 'a', '', ST_GeomFromText('POINT(1 2)'))", DMIN);
    sqlf(db, "INSERT INTO bl_test.types VALUES (2, 127, 2155, b'1', 255, 32767, 65535, 8388607, "
             "16777215, 2147483647, 4294967295, 9223372036854775807, 18446744073709551615, '%s', "
             "99999999.99, 0.00001, 3.5, 1.7976931348623157e308, 0xFFFFFFFFFFFFFFFF, b'1111111111', "
             "'9999-12-31', '838:59:59', '123:45:06.789012', '100:00:00.123', "
             "'9999-12-31 23:59:59', '9999-12-31 23:59:59.999999', '2024-02-29 12:00:00.01', "
             "'2038-01-19 03:14:07', '2038-01-19 03:14:07.999999', '1999-12-31 23:59:59.9999', "
             "'abc', 'z', REPEAT('x', 1000), '日本', x'00010203', x'00ff', x'0000', x'00', "
             "'{\"a\":[1,2,\"x\"]}', 'c', 'x,z', ST_GeomFromText('POINT(1 2)'))", DMAX);
    sqlf(db, "INSERT INTO bl_test.types (id) VALUES (3)");
    sqlf(db, "UPDATE bl_test.types SET i = i - 1, vc = 'changed' WHERE id = 2");
    sqlf(db, "DELETE FROM bl_test.types WHERE id = 3");

    rd r;
    char *o = start_opts("bl-types", start_file, start_pos);
    assert_int_equal(rd_open(&r, o, 1), 0);
    free(o);
    int want = 5;
    int ok = rd_wait(&r, commits_at_least, &want, 30);
    if (!ok) {
        sl_error e;
        rd_error(&r, &e);
        fprintf(stderr, "commits %d failed %d running %d rc %d batches %zu: %s\n",
                count_kind(&r, SL_EV_COMMIT), r.failed, r.running, r.run_rc, r.n, e.msg);
    }
    assert_true(ok);
    assert_int_equal(r.failed, 0);

    /* nothing of bl_other */
    FOR_EVENTS(&r, e2) {
        if (e2->kind <= SL_EV_DELETE)
            assert_string_equal(e2->schema, "bl_test");
        if (e2->kind == SL_EV_DDL)
            assert_non_null(e2->ddl);
    }
    sl_event *ev = nth_kind(&r, SL_EV_INSERT, "types", 0);
    assert_non_null(ev);
    assert_non_null(ev->meta);
    assert_int_equal(ev->ncols, 42);
    assert_int_equal(ev->meta->npk, 1);
    assert_int_equal(ev->meta->pk[0], 0);
    assert_true(ev->meta->cols[0].flags & SL_COL_PK);
    assert_true(ev->meta->cols[col_index(ev, "tiu")].flags & SL_COL_UNSIGNED);
    assert_false(ev->meta->cols[col_index(ev, "ti")].flags & SL_COL_UNSIGNED);
    assert_true(ev->meta->cols[col_index(ev, "ti")].flags & SL_COL_NULLABLE);
    assert_false(ev->meta->cols[0].flags & SL_COL_NULLABLE);
    assert_int_equal(ev->meta->cols[col_index(ev, "vc")].charset, 8);
    assert_int_equal(ev->meta->cols[col_index(ev, "bl")].charset, 63);
    assert_null(ev->before);
    const sl_value *a = ev->after;
    assert_int_equal(V(a, "id")->v.i, 1);
    assert_int_equal(V(a, "ti")->type, SL_V_INT);
    assert_int_equal(V(a, "ti")->v.i, -128);
    assert_int_equal(V(a, "y")->type, SL_V_YEAR);
    assert_int_equal(V(a, "y")->v.i, 1901);
    assert_int_equal(V(a, "b1")->type, SL_V_BIT);
    assert_int_equal(V(a, "b1")->bits, 1);
    assert_int_equal(V(a, "b1")->v.u, 0);
    assert_int_equal(V(a, "tiu")->type, SL_V_UINT);
    assert_int_equal(V(a, "tiu")->v.u, 0);
    assert_int_equal(V(a, "si")->v.i, -32768);
    assert_int_equal(V(a, "siu")->type, SL_V_UINT);
    assert_int_equal(V(a, "mi")->v.i, -8388608);
    assert_int_equal(V(a, "i")->v.i, INT32_MIN);
    assert_int_equal(V(a, "bi")->type, SL_V_INT);
    assert_true(V(a, "bi")->v.i == INT64_MIN);
    assert_int_equal(V(a, "biu")->type, SL_V_UINT);
    assert_str(V(a, "d"), SL_V_DECIMAL, DMIN, strlen(DMIN));
    assert_int_equal(V(a, "d")->dec, 30);
    assert_str(V(a, "d2"), SL_V_DECIMAL, "0.00", 4);
    assert_str(V(a, "d3"), SL_V_DECIMAL, "-12345.67800", 12);
    assert_int_equal(V(a, "f")->type, SL_V_FLOAT);
    assert_true(V(a, "f")->v.f == -1.5f);
    assert_int_equal(V(a, "db")->type, SL_V_DOUBLE);
    assert_true(V(a, "db")->v.d == -1.7976931348623157e308);
    assert_int_equal(V(a, "b64")->bits, 64);
    assert_time(V(a, "dt"), SL_V_DATE, 0, 1000, 1, 1, 0, 0, 0, 0, 0);
    assert_time(V(a, "tm"), SL_V_TIME, 1, 0, 0, 0, 838, 59, 59, 0, 0);
    assert_time(V(a, "tm6"), SL_V_TIME, 1, 0, 0, 0, 12, 34, 56, 1, 6);
    assert_time(V(a, "tm3"), SL_V_TIME, 1, 0, 0, 0, 0, 0, 0, 500000, 3);
    assert_time(V(a, "dtm"), SL_V_DATETIME, 0, 1000, 1, 1, 0, 0, 0, 0, 0);
    assert_time(V(a, "dtm6"), SL_V_DATETIME, 0, 1000, 1, 1, 0, 0, 0, 0, 6);
    assert_time(V(a, "dtm2"), SL_V_DATETIME, 0, 2000, 2, 29, 23, 59, 59, 990000, 2);
    assert_ts(V(a, "ts"), 1, 0, 0);
    assert_ts(V(a, "ts6"), 1, 1, 6);
    assert_ts(V(a, "ts4"), 946684800, 123400, 4);
    assert_str(V(a, "c"), SL_V_STRING, "", 0);
    assert_int_equal(V(a, "c")->charset, 45);
    assert_str(V(a, "vc"), SL_V_STRING, "\xE9", 1);
    assert_int_equal(V(a, "vc")->charset, 8);
    assert_str(V(a, "bn"), SL_V_BINARY, "\x01\0\0\0", 4);
    assert_str(V(a, "vb"), SL_V_BINARY, "", 0);
    assert_str(V(a, "bl"), SL_V_BINARY, "\0\xff\0", 3);
    assert_int_equal(V(a, "lb")->type, SL_V_NULL);
    assert_str(V(a, "j"), SL_V_STRING, "{}", 2);
    assert_int_equal(V(a, "e")->type, SL_V_ENUM);
    assert_int_equal(V(a, "e")->v.e.u, 1);
    assert_int_equal(V(a, "e")->len, 1);
    assert_memory_equal(V(a, "e")->v.e.s, "a", 1);
    assert_int_equal(V(a, "s")->type, SL_V_SET);
    assert_int_equal(V(a, "s")->v.e.u, 0);
    assert_int_equal(V(a, "s")->len, 0);
    assert_int_equal(V(a, "g")->type, SL_V_GEOMETRY);
    assert_int_equal(V(a, "g")->len, 25);
    assert_memory_equal(V(a, "g")->v.s, "\0\0\0\0\x01\x01\0\0\0", 9);

    ev = nth_kind(&r, SL_EV_INSERT, "types", 1);
    assert_non_null(ev);
    a = ev->after;
    assert_int_equal(V(a, "ti")->v.i, 127);
    assert_int_equal(V(a, "y")->v.i, 2155);
    assert_int_equal(V(a, "b1")->v.u, 1);
    assert_int_equal(V(a, "tiu")->v.u, 255);
    assert_int_equal(V(a, "si")->v.i, 32767);
    assert_int_equal(V(a, "siu")->v.u, 65535);
    assert_int_equal(V(a, "mi")->v.i, 8388607);
    assert_int_equal(V(a, "miu")->v.u, 16777215);
    assert_int_equal(V(a, "i")->v.i, 2147483647);
    assert_int_equal(V(a, "iu")->v.u, 4294967295u);
    assert_true(V(a, "bi")->v.i == INT64_MAX);
    assert_true(V(a, "biu")->v.u == UINT64_MAX);
    assert_str(V(a, "d"), SL_V_DECIMAL, DMAX, strlen(DMAX));
    assert_str(V(a, "d2"), SL_V_DECIMAL, "99999999.99", 11);
    assert_str(V(a, "d3"), SL_V_DECIMAL, "0.00001", 7);
    assert_true(V(a, "f")->v.f == 3.5f);
    assert_true(V(a, "db")->v.d == 1.7976931348623157e308);
    assert_true(V(a, "b64")->v.u == UINT64_MAX);
    assert_int_equal(V(a, "b10")->v.u, 1023);
    assert_int_equal(V(a, "b10")->bits, 10);
    assert_time(V(a, "dt"), SL_V_DATE, 0, 9999, 12, 31, 0, 0, 0, 0, 0);
    assert_time(V(a, "tm"), SL_V_TIME, 0, 0, 0, 0, 838, 59, 59, 0, 0);
    assert_time(V(a, "tm6"), SL_V_TIME, 0, 0, 0, 0, 123, 45, 6, 789012, 6);
    assert_time(V(a, "tm3"), SL_V_TIME, 0, 0, 0, 0, 100, 0, 0, 123000, 3);
    assert_time(V(a, "dtm"), SL_V_DATETIME, 0, 9999, 12, 31, 23, 59, 59, 0, 0);
    assert_time(V(a, "dtm6"), SL_V_DATETIME, 0, 9999, 12, 31, 23, 59, 59, 999999, 6);
    assert_time(V(a, "dtm2"), SL_V_DATETIME, 0, 2024, 2, 29, 12, 0, 0, 10000, 2);
    assert_ts(V(a, "ts"), 2147483647, 0, 0);
    assert_ts(V(a, "ts6"), 2147483647, 999999, 6);
    assert_ts(V(a, "ts4"), 946684799, 999900, 4);
    assert_str(V(a, "c"), SL_V_STRING, "abc", 3);
    assert_int_equal(V(a, "t")->len, 1000);
    assert_str(V(a, "ct"), SL_V_STRING, "日本", strlen("日本"));
    assert_int_equal(V(a, "ct")->charset, 45);
    assert_str(V(a, "bn"), SL_V_BINARY, "\0\x01\x02\x03", 4);
    assert_str(V(a, "vb"), SL_V_BINARY, "\0\xff", 2);
    assert_str(V(a, "lb"), SL_V_BINARY, "\0", 1);
    assert_str(V(a, "j"), SL_V_STRING, "{\"a\":[1,2,\"x\"]}", 15);
    assert_int_equal(V(a, "e")->v.e.u, 3);
    assert_memory_equal(V(a, "e")->v.e.s, "c", 1);
    assert_int_equal(V(a, "s")->v.e.u, 5);
    assert_int_equal(V(a, "s")->len, 3);
    assert_memory_equal(V(a, "s")->v.e.s, "x,z", 3);

    ev = nth_kind(&r, SL_EV_INSERT, "types", 2);
    assert_non_null(ev);
    for (uint32_t i = 1; i < ev->ncols; i++)
        assert_int_equal(ev->after[i].type, SL_V_NULL);

    ev = nth_kind(&r, SL_EV_UPDATE, "types", 0);
    assert_non_null(ev);
    assert_int_equal(V(ev->before, "i")->v.i, 2147483647);
    assert_int_equal(V(ev->after, "i")->v.i, 2147483646);
    assert_str(V(ev->before, "vc"), SL_V_STRING, "z", 1);
    assert_str(V(ev->after, "vc"), SL_V_STRING, "changed", 7);
    assert_true(V(ev->after, "biu")->v.u == UINT64_MAX);

    ev = nth_kind(&r, SL_EV_DELETE, "types", 0);
    assert_non_null(ev);
    assert_null(ev->after);
    assert_int_equal(V(ev->before, "id")->v.i, 3);

    /* positions, sequence numbers, transactions */
    uint64_t last_seq = 0;
    int open = 0;
    FOR_EVENTS(&r, e3) {
        assert_true(e3->seq == last_seq + 1 || last_seq == 0);
        last_seq = e3->seq;
        assert_non_null(e3->pos.file);
        assert_non_null(e3->pos.gtid);
        assert_true(e3->pos.offset > 4);
        if (e3->kind == SL_EV_BEGIN) {
            assert_false(open);
            open = 1;
        } else if (e3->kind == SL_EV_COMMIT) {
            assert_true(open);
            open = 0;
        } else if (e3->kind <= SL_EV_DELETE) {
            assert_true(open);
            assert_true(e3->commit_ts > 1600000000);
        }
    }
    sl_batch *lastb = r.v[r.n - 1];
    assert_true(lastb->flags & SL_BATCH_TXN_END);
    assert_non_null(lastb->ckpt.file);
    assert_non_null(lastb->ckpt.gtid);

    char *st = r.d->status(r.self);
    assert_non_null(st);
    assert_non_null(strstr(st, "\"binlog_type\":\"remote\""));
    assert_non_null(strstr(st, "\"read_binlog\":\"(mysql-bin."));
    free(st);
    rd_close(&r);
    mysql_close(db);
}

static void test_ddl_rotate_versions(void **state)
{
    MYSQL *db = src_connect();
    setup_db(db);
    sqlf(db, "CREATE TABLE bl_test.t1 (id INT PRIMARY KEY, v VARCHAR(10))");
    sqlf(db, "INSERT INTO bl_test.t1 VALUES (1, 'a')");
    sqlf(db, "FLUSH BINARY LOGS");
    sqlf(db, "INSERT INTO bl_test.t1 VALUES (2, 'b')");
    sqlf(db, "ALTER TABLE bl_test.t1 ADD COLUMN w INT UNSIGNED");
    sqlf(db, "INSERT INTO bl_test.t1 VALUES (3, 'c', 7)");
    sqlf(db, "USE bl_other");
    sqlf(db, "CREATE TABLE plain (id INT)");

    rd r;
    char *o = start_opts("bl-ddl", start_file, start_pos);
    assert_int_equal(rd_open(&r, o, 1), 0);
    free(o);
    int want = 3;   /* CREATE t1, ALTER, CREATE plain (FLUSH is not logged) */
    assert_true(rd_wait(&r, ddls_at_least, &want, 30));
    want = 3;
    assert_true(rd_wait(&r, commits_at_least, &want, 30));
    sl_event *ev = nth_kind(&r, SL_EV_DDL, NULL, 0);
    assert_non_null(strstr(ev->ddl, "CREATE TABLE bl_test.t1"));
    ev = nth_kind(&r, SL_EV_DDL, NULL, 1);
    assert_non_null(strstr(ev->ddl, "ALTER TABLE"));
    ev = nth_kind(&r, SL_EV_DDL, NULL, 2);
    assert_non_null(strstr(ev->ddl, "CREATE TABLE plain"));
    assert_string_equal(ev->ddl_schema, "bl_other");
    assert_string_equal(ev->schema, "bl_other");

    sl_event *i1 = nth_kind(&r, SL_EV_INSERT, "t1", 0);
    sl_event *i2 = nth_kind(&r, SL_EV_INSERT, "t1", 1);
    sl_event *i3 = nth_kind(&r, SL_EV_INSERT, "t1", 2);
    assert_non_null(i3);
    assert_string_not_equal(i1->pos.file, i2->pos.file);   /* rotated */
    assert_true(i1->meta == i2->meta);
    assert_int_equal(i2->meta->ncols, 2);
    assert_int_equal(i3->meta->ncols, 3);
    assert_true(i3->meta->version > i2->meta->version);
    assert_string_equal(i3->meta->cols[2].name, "w");
    assert_int_equal(i3->after[2].type, SL_V_UINT);
    assert_int_equal(i3->after[2].v.u, 7);
    rd_close(&r);
    mysql_close(db);
}

static void test_checkpoint_resume(void **state)
{
    MYSQL *db = src_connect();
    setup_db(db);
    sqlf(db, "CREATE TABLE bl_test.c (id INT PRIMARY KEY)");
    sqlf(db, "INSERT INTO bl_test.c VALUES (1)");
    char f[256];
    unsigned long long p;
    master_pos(db, f, sizeof f, &p);
    sqlf(db, "INSERT INTO bl_test.c VALUES (2)");

    MYSQL *t = tgt_connect();
    sqlf(t, "CREATE DATABASE IF NOT EXISTS dm_meta");
    sqlf(t, "DROP TABLE IF EXISTS dm_meta.`bl-ckpt_syncer_checkpoint`");
    sqlf(t, "CREATE TABLE dm_meta.`bl-ckpt_syncer_checkpoint` (source_name VARCHAR(128), "
            "worker INT, binlog_name VARCHAR(255), binlog_pos BIGINT UNSIGNED, binlog_gtid TEXT, "
            "seq BIGINT UNSIGNED, is_snapshot TINYINT, updated_at TIMESTAMP DEFAULT "
            "CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP, PRIMARY KEY(source_name, worker))");
    sqlf(t, "INSERT INTO dm_meta.`bl-ckpt_syncer_checkpoint` VALUES ('src1', 0, '%s', %llu, '', "
            "41, 0, NOW())", f, p);
    /* the options point before row 1: the checkpoint must win */
    rd r;
    char *o = start_opts("bl-ckpt", start_file, start_pos);
    assert_int_equal(rd_open(&r, o, 1), 0);
    free(o);
    int want = 1;
    assert_true(rd_wait(&r, commits_at_least, &want, 30));
    sl_event *ev = nth_kind(&r, SL_EV_INSERT, "c", 0);
    assert_non_null(ev);
    assert_int_equal(ev->after[0].v.i, 2);
    assert_null(nth_kind(&r, SL_EV_INSERT, "c", 1));
    assert_int_equal(r.v[0]->events[0].seq, 42);
    rd_close(&r);
    sqlf(t, "DROP TABLE dm_meta.`bl-ckpt_syncer_checkpoint`");
    mysql_close(t);
    mysql_close(db);
}

/* ---- an idle source: its heartbeats carry its position downstream -------------------------- */

typedef struct hb_want { char file[256]; unsigned long long pos; } hb_want;

/* A TXN_END batch holding a heartbeat at the wanted position, with its checkpoint there too. */
static int heartbeat_at(rd *r, void *ud)
{
    const hb_want *w = ud;
    for (size_t i = 0; i < r->n; i++) {
        const sl_batch *b = r->v[i];
        for (uint32_t k = 0; k < b->n; k++) {
            const sl_event *ev = &b->events[k];
            if (ev->kind == SL_EV_HEARTBEAT && ev->pos.file && !strcmp(ev->pos.file, w->file) &&
                ev->pos.offset == w->pos && (b->flags & SL_BATCH_TXN_END) && b->ckpt.file &&
                !strcmp(b->ckpt.file, w->file) && b->ckpt.offset == w->pos)
                return 1;
        }
    }
    return 0;
}

static void test_heartbeat_idle(void **state)
{
    MYSQL *db = src_connect();
    setup_db(db);
    /* only transactions on a table no rule selects: no row reaches a batch */
    sqlf(db, "CREATE TABLE bl_other.u (id INT PRIMARY KEY)");
    sqlf(db, "INSERT INTO bl_other.u VALUES (1), (2)");
    sqlf(db, "INSERT INTO bl_other.u VALUES (3)");
    sqlf(db, "UPDATE bl_other.u SET id = id + 10");
    hb_want w;
    master_pos(db, w.file, sizeof w.file, &w.pos);
    mysql_query(db, "SELECT @@global.gtid_binlog_pos");
    MYSQL_RES *res = mysql_store_result(db);
    char gtid[256];
    snprintf(gtid, sizeof gtid, "%s", mysql_fetch_row(res)[0]);
    mysql_free_result(res);

    rd r;
    char *o = start_opts("bl-hb", start_file, start_pos);
    assert_int_equal(rd_open(&r, o, 1), 0);
    free(o);
    assert_true(rd_wait(&r, heartbeat_at, &w, 30));
    pthread_mutex_lock(&r.mu);
    assert_int_equal(r.nrows, 0);
    const sl_event *hb = NULL;
    FOR_EVENTS(&r, ev)
        if (ev->kind == SL_EV_HEARTBEAT && ev->pos.offset == w.pos)
            hb = ev;
    assert_non_null(hb);
    assert_non_null(hb->pos.gtid);
    assert_string_equal(hb->pos.gtid, gtid);           /* the unselected transactions count */
    assert_true(hb->commit_ts > 1600000000);
    pthread_mutex_unlock(&r.mu);
    rd_close(&r);
    mysql_close(db);
}

/* binlog_row_metadata=MINIMAL is accepted since the schema tracker decodes such rows (issue
 * 15; the decoding itself is tests/integration/strack/test_minimal.sh); a MINIMAL row image
 * still cannot feed replication. */
static void test_refuses_minimal_metadata(void **state)
{
    MYSQL *db = src_connect();
    sqlf(db, "SET GLOBAL binlog_row_metadata = MINIMAL");
    rd r;
    char *o = start_opts("bl-refuse", "x", 4);
    int rc = rd_open(&r, o, 1);
    sqlf(db, "SET GLOBAL binlog_row_metadata = FULL");
    free(o);
    assert_int_equal(rc, 0);
    rd_close(&r);
    sl_error e;

    sqlf(db, "SET GLOBAL binlog_row_image = MINIMAL");
    o = start_opts("bl-refuse", "x", 4);
    rc = rd_open(&r, o, 1);
    sqlf(db, "SET GLOBAL binlog_row_image = FULL");
    free(o);
    assert_true(rc < 0);
    rd_error(&r, &e);
    assert_non_null(strstr(e.msg, "binlog_row_image=FULL"));
    rd_close(&r);
    mysql_close(db);
}

/* An online schema change tool's cut-over with a table-level rule (full row metadata): the
 * tool's shadow table is not selected, so the schema tracker cannot follow the RENAME that
 * brings it in. The reader goes on (the rows carry their own names) and the table is untracked
 * (a NULL version) instead of stopping replication. */
static void test_untracked_rename_full(void **state)
{
    MYSQL *db = src_connect();
    setup_db(db);
    sqlf(db, "CREATE TABLE bl_test.t (id INT PRIMARY KEY, v INT)");
    rd r;
    char extra[1024];
    snprintf(extra, sizeof extra, ",\"rules\":[{\"schema\":\"bl_test\",\"table\":\"t\","
             "\"target_schema\":\"\",\"target_table\":\"\",\"filters\":[]}],"
             "\"binlog_name\":\"%s\",\"binlog_pos\":%llu", start_file, start_pos);
    char *o = rd_options("bl-osc", extra);
    assert_int_equal(rd_open(&r, o, 1), 0);    /* tracked from here: nothing in a seed */
    free(o);
    sqlf(db, "CREATE TABLE bl_test._t_new (id INT PRIMARY KEY, v INT)");
    sqlf(db, "ALTER TABLE bl_test._t_new ADD COLUMN w INT NOT NULL DEFAULT 5");
    sqlf(db, "INSERT INTO bl_test._t_new VALUES (1, 1, 5)");
    sqlf(db, "RENAME TABLE bl_test.t TO bl_test._t_old, bl_test._t_new TO bl_test.t");
    sqlf(db, "DROP TABLE bl_test._t_old");
    sqlf(db, "INSERT INTO bl_test.t VALUES (2, 2, 6)");
    int want = 1;
    int ok = rd_wait(&r, commits_at_least, &want, 30);
    assert_true(ok);
    pthread_mutex_lock(&r.mu);
    sl_event *ins = nth_kind(&r, SL_EV_INSERT, "t", 0);
    pthread_mutex_unlock(&r.mu);
    assert_int_equal(r.failed, 0);
    assert_non_null(ins);
    assert_int_equal(ins->meta->ncols, 3);
    assert_string_equal(ins->meta->cols[2].name, "w");
    assert_int_equal(ins->after[2].v.i, 6);
    rd_close(&r);
    mysql_close(db);
}

static void test_purged_binlog_fails(void **state)
{
    MYSQL *db = src_connect();
    setup_db(db);
    char old[256];
    unsigned long long p;
    master_pos(db, old, sizeof old, &p);
    sqlf(db, "FLUSH BINARY LOGS");
    char cur[256];
    master_pos(db, cur, sizeof cur, &p);
    /* A dump thread of an earlier test that the server has not reaped yet keeps the file:
     * purge until it is gone. */
    for (int tries = 0; tries < 100; tries++) {
        sqlf(db, "PURGE BINARY LOGS TO '%s'", cur);
        mysql_query(db, "SHOW BINARY LOGS");
        MYSQL_RES *res = mysql_store_result(db);
        MYSQL_ROW row = mysql_fetch_row(res);
        int gone = row && strcmp(row[0], old) != 0;
        mysql_free_result(res);
        if (gone)
            break;
        struct timespec ts = { 0, 100000000 };
        nanosleep(&ts, NULL);
    }
    rd r;
    char *o = start_opts("bl-purged", old, 4);
    assert_int_equal(rd_open(&r, o, 1), 0);
    free(o);
    assert_true(rd_wait(&r, failed_pred, NULL, 30));
    sl_error e;
    rd_error(&r, &e);
    assert_non_null(strstr(e.msg, "1236"));
    assert_non_null(strstr(e.msg, old));
    rd_close(&r);
    mysql_close(db);
}

static void test_gtid_start(void **state)
{
    MYSQL *db = src_connect();
    setup_db(db);
    sqlf(db, "CREATE TABLE bl_test.g (id INT PRIMARY KEY)");
    sqlf(db, "INSERT INTO bl_test.g VALUES (1)");
    mysql_query(db, "SELECT @@global.gtid_binlog_pos");
    MYSQL_RES *res = mysql_store_result(db);
    char gtid[256];
    snprintf(gtid, sizeof gtid, "%s", mysql_fetch_row(res)[0]);
    mysql_free_result(res);
    sqlf(db, "INSERT INTO bl_test.g VALUES (2)");
    rd r;
    char extra[1024];
    snprintf(extra, sizeof extra, ",%s,\"enable_gtid\":true,\"binlog_gtid\":\"%s\"", RULES, gtid);
    char *o = rd_options("bl-gtid", extra);
    assert_int_equal(rd_open(&r, o, 1), 0);
    free(o);
    int want = 1;
    assert_true(rd_wait(&r, commits_at_least, &want, 30));
    sl_event *ev = nth_kind(&r, SL_EV_INSERT, "g", 0);
    assert_non_null(ev);
    assert_int_equal(ev->after[0].v.i, 2);
    assert_null(nth_kind(&r, SL_EV_INSERT, "g", 1));
    sl_event *c = nth_kind(&r, SL_EV_COMMIT, NULL, 0);
    /* the GTID set after the transaction is the source's own position now */
    mysql_query(db, "SELECT @@global.gtid_binlog_pos");
    res = mysql_store_result(db);
    assert_string_equal(c->pos.gtid, mysql_fetch_row(res)[0]);
    mysql_free_result(res);
    assert_true(r.v[r.n - 1]->flags & SL_BATCH_TXN_END);
    assert_string_equal(r.v[r.n - 1]->ckpt.gtid, c->pos.gtid);
    assert_non_null(r.v[r.n - 1]->ckpt.file);
    rd_close(&r);
    mysql_close(db);
}

/* ---- the source is killed while a large transaction streams -------------------------------- */

static int rows_at_least(rd *r, void *ud) { return r->nrows >= *(uint64_t *)ud; }

static void sandbox(const char *args)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s %s >/dev/null 2>&1", SLUICE_SANDBOX_SCRIPT, args);
    assert_int_equal(system(cmd), 0);
}

static void test_source_killed_mid_transaction(void **state)
{
    MYSQL *db = src_connect();
    setup_db(db);
    sqlf(db, "CREATE TABLE bl_test.big (id INT PRIMARY KEY, pad CHAR(100))");
    const int N = 300000;
    sqlf(db, "USE bl_test");
    sqlf(db, "INSERT INTO bl_test.big SELECT seq, REPEAT('p', 100) FROM seq_1_to_%d", N);
    sqlf(db, "INSERT INTO bl_test.big VALUES (%d, 'after')", N + 1);
    mysql_close(db);

    rd r;
    char extra[1024];
    snprintf(extra, sizeof extra, ",%s,\"binlog_name\":\"%s\",\"binlog_pos\":%llu,"
             "\"batch_events\":500", RULES, start_file, start_pos);
    char *o = rd_options("bl-kill", extra);
    assert_int_equal(rd_open(&r, o, 1), 0);
    free(o);
    uint64_t some = 2000;
    assert_true(rd_wait(&r, rows_at_least, &some, 30));
    /* hold the sink so the reader stops reading, kill the source, then let it go on */
    pthread_mutex_lock(&r.mu);
    r.hold = 1;
    pthread_mutex_unlock(&r.mu);
    sandbox("kill source");
    sandbox("start source");
    pthread_mutex_lock(&r.mu);
    r.hold = 0;
    pthread_cond_broadcast(&r.cv);
    pthread_mutex_unlock(&r.mu);
    uint64_t all = (uint64_t)N + 1;
    assert_true(rd_wait(&r, rows_at_least, &all, 120));
    int want = 2;
    assert_true(rd_wait(&r, commits_at_least, &want, 30));
    assert_int_equal(r.failed, 0);

    /* every row exactly once, in order; one BEGIN/COMMIT pair per transaction; seq contiguous */
    int64_t next_id = 1;
    uint64_t last_seq = 0;
    int begins = 0, commits = 0;
    FOR_EVENTS(&r, ev) {
        if (last_seq)
            assert_int_equal(ev->seq, last_seq + 1);
        last_seq = ev->seq;
        if (ev->kind == SL_EV_BEGIN)
            begins++;
        else if (ev->kind == SL_EV_COMMIT)
            commits++;
        else if (ev->kind == SL_EV_INSERT && ev->table && !strcmp(ev->table, "big")) {
            assert_int_equal(ev->after[0].v.i, next_id);
            next_id++;
        }
    }
    assert_int_equal(next_id, N + 2);
    assert_int_equal(begins, 2);
    assert_int_equal(commits, 2);
    /* mid-transaction batches carry no TXN_END */
    assert_true(r.txn_end_batches < r.nbatches);
    rd_close(&r);
}

/*
 * The extended MariaDB types (INET6, INET4, UUID) at their edges and NULL. Their row images carry
 * the binary form as a fixed BINARY(16)/BINARY(4) string with the trailing 0x00 bytes stripped,
 * so each value must come out binary and padded back to its full width: an INET6 '1::' is the 16
 * bytes 00 01 00 .. 00, not the two bytes 00 01.
 */
static void test_xtypes(void **state)
{
    MYSQL *db = src_connect();
    setup_db(db);
    sqlf(db, "CREATE TABLE bl_test.xt (id INT PRIMARY KEY, a INET6, b INET4, c UUID)");
    sqlf(db, "INSERT INTO bl_test.xt VALUES (1, '::', '0.0.0.0', '00000000-0000-0000-0000-000000000000'), "
             "(2, 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', '255.255.255.255', "
             "'ffffffff-ffff-ffff-ffff-ffffffffffff'), (3, '1::', '1.0.0.0', "
             "'123e4567-e89b-12d3-a456-426614174000'), (4, NULL, NULL, NULL)");
    sqlf(db, "UPDATE bl_test.xt SET a = '::1', b = '0.0.0.1' WHERE id = 3");
    sqlf(db, "DELETE FROM bl_test.xt WHERE id = 1");

    rd r;
    char *o = start_opts("bl-xtypes", start_file, start_pos);
    assert_int_equal(rd_open(&r, o, 1), 0);
    free(o);
    int want = 3;
    assert_true(rd_wait(&r, commits_at_least, &want, 30));
    assert_int_equal(r.failed, 0);
    sl_event *ev = nth_kind(&r, SL_EV_INSERT, "xt", 0);
    assert_non_null(ev);
    static const char z[16] = {0};
    static const char ff[16] = "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff";
    assert_str(V(ev->after, "a"), SL_V_BINARY, z, 16);
    assert_str(V(ev->after, "b"), SL_V_BINARY, z, 4);
    assert_str(V(ev->after, "c"), SL_V_BINARY, z, 16);
    assert_int_equal(ev->meta->cols[col_index(ev, "a")].charset, 63);
    ev = nth_kind(&r, SL_EV_INSERT, "xt", 1);
    assert_str(V(ev->after, "a"), SL_V_BINARY, ff, 16);
    assert_str(V(ev->after, "b"), SL_V_BINARY, ff, 4);
    assert_str(V(ev->after, "c"), SL_V_BINARY, ff, 16);
    ev = nth_kind(&r, SL_EV_INSERT, "xt", 2);
    assert_str(V(ev->after, "a"), SL_V_BINARY, "\x00\x01\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16);
    assert_str(V(ev->after, "b"), SL_V_BINARY, "\x01\0\0\0", 4);
    assert_str(V(ev->after, "c"), SL_V_BINARY,
               "\x12\x3e\x45\x67\xe8\x9b\x12\xd3\xa4\x56\x42\x66\x14\x17\x40\x00", 16);
    ev = nth_kind(&r, SL_EV_INSERT, "xt", 3);
    for (uint32_t i = 1; i < ev->ncols; i++)
        assert_int_equal(ev->after[i].type, SL_V_NULL);
    ev = nth_kind(&r, SL_EV_UPDATE, "xt", 0);
    assert_non_null(ev);
    assert_str(V(ev->before, "a"), SL_V_BINARY, "\x00\x01\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16);
    assert_str(V(ev->after, "a"), SL_V_BINARY, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
    assert_str(V(ev->after, "b"), SL_V_BINARY, "\0\0\0\x01", 4);
    ev = nth_kind(&r, SL_EV_DELETE, "xt", 0);
    assert_non_null(ev);
    assert_str(V(ev->before, "a"), SL_V_BINARY, z, 16);
    assert_str(V(ev->before, "c"), SL_V_BINARY, z, 16);
    rd_close(&r);
    mysql_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_xtypes),
        cmocka_unit_test(test_ddl_rotate_versions),
        cmocka_unit_test(test_checkpoint_resume),
        cmocka_unit_test(test_gtid_start),
        cmocka_unit_test(test_heartbeat_idle),
        cmocka_unit_test(test_refuses_minimal_metadata),
        cmocka_unit_test(test_untracked_rename_full),
        cmocka_unit_test(test_purged_binlog_fails),
        cmocka_unit_test(test_source_killed_mid_transaction),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
