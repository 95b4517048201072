/*
 * test_compact.c - unit tests of plugins/common/compact.c (the net change per row key of one
 * worker's share of a group) and of the statements dmlsql.c builds from it. A randomized model
 * check applies random valid change sequences both ways and compares the resulting tables.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "compact.h"
#include "dmlsql.h"

/* t (id INT PRIMARY KEY, v INT, g INT generated): compactable */
static sl_column cols[3] = {
    { .name = "id", .flags = SL_COL_PK },
    { .name = "v" },
    { .name = "g", .flags = SL_COL_GENERATED },
};
static uint32_t pk0[1] = { 0 };
static sl_table tbl = { .ncols = 3, .schema = "s", .name = "t", .cols = cols, .npk = 1, .pk = pk0 };
/* the same table through another view (a second shard routed to it) */
static sl_table tbl2 = { .ncols = 3, .schema = "s2", .name = "t", .cols = cols, .npk = 1, .pk = pk0 };
/* u: like t but with another unique key on v: not compactable */
static uint32_t uk_v[2] = { 1, UINT32_MAX };
static uint32_t *uks[1] = { uk_v };
static sl_table tblu = { .ncols = 3, .schema = "s", .name = "u", .cols = cols, .npk = 1, .pk = pk0,
                         .nkeys = 1, .keys = uks };
/* w (id INT PRIMARY KEY, v INT): compactable, another table */
static sl_table tblw = { .ncols = 2, .schema = "s", .name = "w", .cols = cols, .npk = 1, .pk = pk0 };
/* strings as the key */
static sl_column scols[2] = { { .name = "k", .flags = SL_COL_PK }, { .name = "v" } };
static sl_table tbls = { .ncols = 2, .schema = "s", .name = "str", .cols = scols, .npk = 1, .pk = pk0 };

#define MAXR 4096
static sl_value rows[MAXR][3];
static int nrows;

static sl_value *row(int64_t id, int64_t v)
{
    sl_value *r = rows[nrows++ % MAXR];
    r[0] = sl_value_int(id);
    r[1] = sl_value_int(v);
    r[2] = sl_value_int(0);
    return r;
}

static sl_value *srow(const char *k, uint16_t coll, int64_t v)
{
    sl_value *r = rows[nrows++ % MAXR];
    r[0] = sl_value_str(SL_V_STRING, k, (uint32_t)strlen(k), coll);
    r[1] = sl_value_int(v);
    return r;
}

static sl_event ev(sl_table *m, int kind, sl_value *before, sl_value *after)
{
    sl_event e = { .kind = (uint8_t)kind, .ncols = m->ncols, .schema = "s", .table = m->name,
                   .target_schema = "ts", .target_table = m->name, .meta = m,
                   .before = before, .after = after };
    return e;
}

typedef struct result {
    sl_event *const *keep;
    size_t nkeep;
    const sl_cmp_op *ops;
    size_t nops;
} result;

static result compact(sl_compactor *c, sl_event *evs, size_t n)
{
    static sl_event *p[MAXR];
    for (size_t i = 0; i < n; i++)
        p[i] = &evs[i];
    result r;
    assert_int_equal(sl_compact(c, p, n, &r.keep, &r.nkeep, &r.ops, &r.nops), 0);
    return r;
}

static void test_table_ok(void **st)
{
    (void)st;
    assert_true(sl_compact_table_ok(&tbl));
    assert_false(sl_compact_table_ok(&tblu));          /* another unique key */
    sl_table nokey = tbl;
    nokey.npk = 0;
    assert_false(sl_compact_table_ok(&nokey));
    sl_column gcols[3] = { { .name = "id", .flags = SL_COL_PK | SL_COL_GENERATED }, { .name = "v" }, { .name = "g" } };
    sl_table gk = tbl;
    gk.cols = gcols;
    assert_false(sl_compact_table_ok(&gk));            /* a generated key column */
    assert_false(sl_compact_table_ok(NULL));
}

/* sysbench oltp_write_only: UPDATE k, UPDATE c, DELETE + INSERT of one id: three upserts */
static void test_write_only(void **st)
{
    (void)st;
    sl_compactor *c = sl_compactor_new();
    assert_non_null(c);
    sl_event e[4] = { ev(&tbl, SL_EV_UPDATE, row(1, 10), row(1, 11)),
                      ev(&tbl, SL_EV_UPDATE, row(2, 20), row(2, 21)),
                      ev(&tbl, SL_EV_DELETE, row(3, 30), NULL),
                      ev(&tbl, SL_EV_INSERT, NULL, row(3, 31)) };
    result r = compact(c, e, 4);
    assert_int_equal(r.nkeep, 0);
    assert_int_equal(r.nops, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(r.ops[i].kind, SL_CMP_UPSERT);
        assert_int_equal(r.ops[i].img[0].v.i, (int64_t)i + 1);
        assert_int_equal(r.ops[i].img[1].v.i, (int64_t)(i + 1) * 10 + 1);
    }
    sl_compactor_free(c);
}

static void test_sequences(void **st)
{
    (void)st;
    sl_compactor *c = sl_compactor_new();
    /* insert + update + update -> insert of the final image */
    sl_event a[3] = { ev(&tbl, SL_EV_INSERT, NULL, row(1, 1)), ev(&tbl, SL_EV_UPDATE, row(1, 1), row(1, 2)),
                      ev(&tbl, SL_EV_UPDATE, row(1, 2), row(1, 3)) };
    result r = compact(c, a, 3);
    assert_int_equal(r.nops, 1);
    assert_int_equal(r.ops[0].kind, SL_CMP_INSERT);
    assert_int_equal(r.ops[0].img[1].v.i, 3);
    /* insert + delete -> nothing */
    sl_event b[2] = { ev(&tbl, SL_EV_INSERT, NULL, row(1, 1)), ev(&tbl, SL_EV_DELETE, row(1, 1), NULL) };
    r = compact(c, b, 2);
    assert_int_equal(r.nops + r.nkeep, 0);
    /* update + delete -> delete */
    sl_event d[2] = { ev(&tbl, SL_EV_UPDATE, row(1, 1), row(1, 2)), ev(&tbl, SL_EV_DELETE, row(1, 2), NULL) };
    r = compact(c, d, 2);
    assert_int_equal(r.nops, 1);
    assert_int_equal(r.ops[0].kind, SL_CMP_DELETE);
    assert_int_equal(r.ops[0].img[0].v.i, 1);
    /* an update moving a row from key 1 to 2, then back: one upsert of key 1 */
    sl_event m[2] = { ev(&tbl, SL_EV_UPDATE, row(1, 1), row(2, 5)), ev(&tbl, SL_EV_UPDATE, row(2, 5), row(1, 6)) };
    r = compact(c, m, 2);
    assert_int_equal(r.nops, 1);
    assert_int_equal(r.ops[0].kind, SL_CMP_UPSERT);
    assert_int_equal(r.ops[0].img[0].v.i, 1);
    assert_int_equal(r.ops[0].img[1].v.i, 6);
    /* moving 1 -> 2 alone: delete 1, insert 2 (deletes first) */
    r = compact(c, m, 1);
    assert_int_equal(r.nops, 2);
    assert_int_equal(r.ops[0].kind, SL_CMP_DELETE);
    assert_int_equal(r.ops[0].img[0].v.i, 1);
    assert_int_equal(r.ops[1].kind, SL_CMP_INSERT);
    assert_int_equal(r.ops[1].img[0].v.i, 2);
    sl_compactor_free(c);
}

static void test_kept(void **st)
{
    (void)st;
    sl_compactor *c = sl_compactor_new();
    /* a table with a second unique key keeps its changes in order; the others are compacted and
     * grouped per table, deletes before inserts before upserts */
    sl_event e[7] = { ev(&tblu, SL_EV_DELETE, row(1, 7), NULL), ev(&tbl, SL_EV_UPDATE, row(5, 1), row(5, 2)),
                      ev(&tblw, SL_EV_INSERT, NULL, row(9, 9)), ev(&tblu, SL_EV_INSERT, NULL, row(2, 7)),
                      ev(&tbl, SL_EV_INSERT, NULL, row(6, 1)), ev(&tbl, SL_EV_DELETE, row(7, 1), NULL),
                      ev(&tblw, SL_EV_DELETE, row(8, 8), NULL) };
    result r = compact(c, e, 7);
    assert_int_equal(r.nkeep, 2);
    assert_ptr_equal(r.keep[0], &e[0]);
    assert_ptr_equal(r.keep[1], &e[3]);
    assert_int_equal(r.nops, 5);
    assert_ptr_equal(r.ops[0].ev, &e[5]);
    assert_int_equal(r.ops[0].kind, SL_CMP_DELETE);
    assert_ptr_equal(r.ops[1].ev, &e[4]);
    assert_int_equal(r.ops[1].kind, SL_CMP_INSERT);
    assert_ptr_equal(r.ops[2].ev, &e[1]);
    assert_int_equal(r.ops[2].kind, SL_CMP_UPSERT);
    assert_ptr_equal(r.ops[3].ev, &e[6]);
    assert_int_equal(r.ops[3].kind, SL_CMP_DELETE);
    assert_ptr_equal(r.ops[4].ev, &e[2]);
    assert_int_equal(r.ops[4].kind, SL_CMP_INSERT);
    /* one target table reached through two views: left in source order */
    sl_event s[2] = { ev(&tbl, SL_EV_DELETE, row(1, 1), NULL), ev(&tbl2, SL_EV_INSERT, NULL, row(1, 2)) };
    r = compact(c, s, 2);
    assert_int_equal(r.nkeep, 2);
    assert_int_equal(r.nops, 0);
    assert_ptr_equal(r.keep[0], &s[0]);
    sl_compactor_free(c);
}

static void test_string_keys(void **st)
{
    (void)st;
    sl_compactor *c = sl_compactor_new();
    /* utf8mb4_bin (46) is PAD SPACE: 'a' and 'a ' are one key */
    sl_event e[2] = { ev(&tbls, SL_EV_INSERT, NULL, srow("a", 46, 1)), ev(&tbls, SL_EV_DELETE, srow("a ", 46, 1), NULL) };
    result r = compact(c, e, 2);
    assert_int_equal(r.nops + r.nkeep, 0);
    /* 'a' and 'b' are two */
    sl_event f[2] = { ev(&tbls, SL_EV_INSERT, NULL, srow("a", 46, 1)), ev(&tbls, SL_EV_DELETE, srow("b", 46, 1), NULL) };
    r = compact(c, f, 2);
    assert_int_equal(r.nops, 2);
    /* a case-insensitive collation (45, utf8mb4_general_ci): not compacted, order kept */
    sl_event g[2] = { ev(&tbls, SL_EV_INSERT, NULL, srow("A", 45, 1)), ev(&tbls, SL_EV_DELETE, srow("a", 45, 1), NULL) };
    r = compact(c, g, 2);
    assert_int_equal(r.nkeep, 2);
    assert_int_equal(r.nops, 0);
    /* a DOUBLE key value: not compacted */
    sl_event h[1] = { ev(&tbl, SL_EV_INSERT, NULL, row(1, 1)) };
    h[0].after[0] = sl_value_double(1.5);
    r = compact(c, h, 1);
    assert_int_equal(r.nkeep, 1);
    sl_compactor_free(c);
}

static char *build_ops(const sl_cmp_op *ops, size_t n, int safe, uint32_t batch, size_t *nst)
{
    static char out[8192];
    sl_dmlsql_opts o = { .batch = batch, .safe_mode = safe };
    sl_dmlsql_stmt starts[64];
    size_t used;
    sl_error err = {0};
    sl_sbuf b;
    sl_sbuf_init(&b);
    assert_int_equal(sl_dmlsql_build_ops(&b, ops, n, &o, &used, starts, 64, nst, &err), 0);
    assert_int_equal(used, n);
    snprintf(out, sizeof out, "%s", b.p);
    sl_sbuf_free(&b);
    return out;
}

static void test_statements(void **st)
{
    (void)st;
    sl_compactor *c = sl_compactor_new();
    sl_event e[6] = { ev(&tbl, SL_EV_UPDATE, row(1, 10), row(1, 11)), ev(&tbl, SL_EV_UPDATE, row(2, 20), row(2, 21)),
                      ev(&tbl, SL_EV_DELETE, row(3, 30), NULL), ev(&tbl, SL_EV_DELETE, row(4, 40), NULL),
                      ev(&tbl, SL_EV_INSERT, NULL, row(5, 50)), ev(&tbl, SL_EV_UPDATE, row(6, 60), row(6, 61)) };
    result r = compact(c, e, 6);
    assert_int_equal(r.nops, 6);
    size_t nst;
    const char *sql = build_ops(r.ops, r.nops, 0, 2, &nst);
    assert_int_equal(nst, 4);
    assert_string_equal(sql,
        "DELETE FROM `ts`.`t` WHERE `id` IN (3,4);\n"
        "INSERT INTO `ts`.`t` (`id`,`v`) VALUES (5,50);\n"
        "INSERT INTO `ts`.`t` (`id`,`v`) VALUES (1,11),(2,21) ON DUPLICATE KEY UPDATE `v`=VALUES(`v`);\n"
        "INSERT INTO `ts`.`t` (`id`,`v`) VALUES (6,61) ON DUPLICATE KEY UPDATE `v`=VALUES(`v`)");
    sql = build_ops(r.ops + 2, 4, 1, 100, &nst);
    assert_string_equal(sql,
        "REPLACE INTO `ts`.`t` (`id`,`v`) VALUES (5,50);\n"
        "REPLACE INTO `ts`.`t` (`id`,`v`) VALUES (1,11),(2,21),(6,61)");
    /* a two-column key: an OR of key tuples */
    sl_column c2[2] = { { .name = "a", .flags = SL_COL_PK }, { .name = "b", .flags = SL_COL_PK } };
    uint32_t pk2[2] = { 0, 1 };
    sl_table t2 = { .ncols = 2, .schema = "s", .name = "t2", .cols = c2, .npk = 2, .pk = pk2 };
    sl_event d[2] = { ev(&t2, SL_EV_DELETE, row(1, 2), NULL), ev(&t2, SL_EV_DELETE, row(3, 4), NULL) };
    r = compact(c, d, 2);
    sql = build_ops(r.ops, r.nops, 0, 100, &nst);
    assert_string_equal(sql, "DELETE FROM `ts`.`t2` WHERE (`a`=1 AND `b`=2) OR (`a`=3 AND `b`=4)");
    /* only key columns: the upsert leaves the row as it is */
    sl_event u[1] = { ev(&t2, SL_EV_UPDATE, row(1, 2), row(1, 2)) };
    r = compact(c, u, 1);
    sql = build_ops(r.ops, r.nops, 0, 100, &nst);
    assert_string_equal(sql, "INSERT INTO `ts`.`t2` (`a`,`b`) VALUES (1,2) ON DUPLICATE KEY UPDATE `a`=`a`");
    sl_compactor_free(c);
}

/* ---- model check: random valid streams, applied as they are and compacted ---------------------- */

#define KEYS 12
typedef struct tstate { int present[KEYS]; int64_t v[KEYS]; } tstate;

static void apply_event(tstate *t, const sl_event *e)
{
    if (e->before) {
        int k = (int)e->before[0].v.i;
        assert_true(t->present[k]);
        t->present[k] = 0;
    }
    if (e->after) {
        int k = (int)e->after[0].v.i;
        assert_false(t->present[k]);
        t->present[k] = 1;
        t->v[k] = e->after[1].v.i;
    }
}

static void apply_op(tstate *t, const sl_cmp_op *o)
{
    int k = (int)o->img[0].v.i;
    switch (o->kind) {
    case SL_CMP_DELETE: t->present[k] = 0; break;
    case SL_CMP_INSERT: assert_false(t->present[k]);    /* a duplicate key error on the server */
                        /* fall through */
    case SL_CMP_UPSERT: t->present[k] = 1; t->v[k] = o->img[1].v.i; break;
    default: fail();
    }
}

static void test_model(void **st)
{
    (void)st;
    sl_compactor *c = sl_compactor_new();
    static sl_event e[64];
    srand(7);
    for (int round = 0; round < 3000; round++) {
        tstate start = {0}, src, got;
        for (int k = 0; k < KEYS; k++) {
            start.present[k] = rand() % 2;
            start.v[k] = k * 100;
        }
        src = start;
        int n = 1 + rand() % 40;
        for (int i = 0; i < n; i++) {
            int k = rand() % KEYS, k2 = rand() % KEYS;
            int64_t nv = round * 1000 + i;
            if (!src.present[k]) {
                e[i] = ev(&tbl, SL_EV_INSERT, NULL, row(k, nv));
            } else if (rand() % 3 == 0) {
                e[i] = ev(&tbl, SL_EV_DELETE, row(k, src.v[k]), NULL);
            } else if (rand() % 2 == 0 && !src.present[k2]) {
                e[i] = ev(&tbl, SL_EV_UPDATE, row(k, src.v[k]), row(k2, nv));     /* the key moves */
            } else {
                e[i] = ev(&tbl, SL_EV_UPDATE, row(k, src.v[k]), row(k, nv));
            }
            apply_event(&src, &e[i]);
        }
        result r = compact(c, e, (size_t)n);
        assert_int_equal(r.nkeep, 0);
        assert_true(r.nops <= 2 * (size_t)n);     /* a moved key: a delete and an insert */
        got = start;
        for (size_t i = 0; i < r.nops; i++)
            apply_op(&got, &r.ops[i]);
        for (int k = 0; k < KEYS; k++) {
            assert_int_equal(got.present[k], src.present[k]);
            if (src.present[k])
                assert_int_equal(got.v[k], src.v[k]);
        }
    }
    sl_compactor_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_ok),
        cmocka_unit_test(test_write_only),
        cmocka_unit_test(test_sequences),
        cmocka_unit_test(test_kept),
        cmocka_unit_test(test_string_keys),
        cmocka_unit_test(test_statements),
        cmocka_unit_test(test_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
