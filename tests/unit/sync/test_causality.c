/*
 * test_causality.c - unit tests of plugins/common/causality.c (key hashes, the group scheduler)
 * and plugins/common/dmlsql.c (row changes to statements).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "causality.h"
#include "dmlsql.h"

static sl_column cols[3] = {
    { .name = "id", .flags = SL_COL_PK },
    { .name = "email", .flags = SL_COL_UNIQUE, .charset = 45 },
    { .name = "g", .flags = SL_COL_GENERATED },
};
static uint32_t pk[1] = { 0 };
static uint32_t uk0[2] = { 1, UINT32_MAX };
static uint32_t *uks[1] = { uk0 };
static sl_table tbl = { .ncols = 3, .schema = "s", .name = "t", .cols = cols, .npk = 1, .pk = pk,
                        .nkeys = 1, .keys = uks };

static sl_value rows[16][3];

static sl_event mk(int kind, int slot_before, int slot_after)
{
    sl_event e = { .kind = (uint8_t)kind, .ncols = 3, .schema = "s", .table = "t",
                   .target_schema = "ts", .target_table = "tt", .meta = &tbl };
    if (slot_before >= 0) e.before = rows[slot_before];
    if (slot_after >= 0) e.after = rows[slot_after];
    return e;
}

static void setrow(int slot, int64_t id, const char *email)
{
    rows[slot][0] = sl_value_int(id);
    rows[slot][1] = email ? sl_value_str(SL_V_STRING, email, (uint32_t)strlen(email), 45) : sl_value_null();
    rows[slot][2] = sl_value_int(99);
}

static void test_keys(void **st)
{
    setrow(0, 1, "A@x");
    setrow(1, 1, "a@X");
    setrow(2, 2, NULL);
    uint64_t k1[8], k2[8], k3[8];
    sl_event e1 = mk(SL_EV_INSERT, -1, 0), e2 = mk(SL_EV_INSERT, -1, 1), e3 = mk(SL_EV_INSERT, -1, 2);
    assert_int_equal(sl_causality_row_keys(&e1, k1, 8), 2);
    assert_int_equal(sl_causality_row_keys(&e2, k2, 8), 2);
    assert_int_equal(sl_causality_row_keys(&e3, k3, 8), 1);     /* NULL unique key: no key */
    assert_true(k1[0] == k2[0]);
    assert_true(k1[1] == k2[1]);                                 /* _ci collation folds case */
    assert_true(k1[0] != k3[0]);
    sl_event u = mk(SL_EV_UPDATE, 0, 2);
    assert_int_equal(sl_causality_row_keys(&u, k3, 8), 3);      /* before (2) + after (1) */
}

static void test_scheduler(void **st)
{
    sl_causality *c = sl_causality_new(4);
    assert_non_null(c);
    /* four unrelated rows spread over four workers */
    uint64_t keys[] = { 10, 20, 30, 40 };
    uint32_t start[] = { 0, 1, 2, 3, 4 }, w[4];
    assert_int_equal(sl_causality_assign(c, 4, keys, start, w), 0);
    assert_true(w[0] != w[1] && w[1] != w[2] && w[2] != w[3] && w[0] != w[3]);
    /* a row sharing key 20 follows it */
    uint64_t k2[] = { 20, 50 };
    uint32_t s2[] = { 0, 2 }, w2[1];
    assert_int_equal(sl_causality_assign(c, 1, k2, s2, w2), 0);
    assert_int_equal(w2[0], w[1]);
    /* rows of one transaction linked by a key share a worker */
    uint64_t k3[] = { 60, 70, 70, 80 };
    uint32_t s3[] = { 0, 2, 4 }, w3[2];
    assert_int_equal(sl_causality_assign(c, 2, k3, s3, w3), 0);
    assert_int_equal(w3[0], w3[1]);
    /* a row relating keys of two workers conflicts: nothing recorded */
    uint64_t k4[] = { 10, 30 };
    uint32_t s4[] = { 0, 2 }, w4[1];
    uint64_t before = sl_causality_rows(c);
    assert_int_equal(sl_causality_assign(c, 1, k4, s4, w4), 1);
    assert_int_equal(sl_causality_rows(c), before);
    sl_causality_reset(c);
    assert_int_equal(sl_causality_assign(c, 1, k4, s4, w4), 0);
    /* many rows: the map grows and every row stays with its key */
    sl_causality_reset(c);
    enum { N = 5000 };
    static uint64_t kk[N];
    static uint32_t ss[N + 1], ww[N], ww2[N];
    for (uint32_t i = 0; i < N; i++) { kk[i] = 1000 + i; ss[i] = i; }
    ss[N] = N;
    assert_int_equal(sl_causality_assign(c, N, kk, ss, ww), 0);
    assert_int_equal(sl_causality_assign(c, N, kk, ss, ww2), 0);
    assert_memory_equal(ww, ww2, sizeof ww);
    sl_causality_free(c);
}

static void test_fill(void **st)
{
    (void)st;
    sl_causality *c = sl_causality_new(4);
    sl_causality_set_fill(c, 3);
    /* unrelated rows fill worker after worker, 3 rows each */
    uint64_t keys[] = { 1, 2, 3, 4, 5, 6, 7 };
    uint32_t start[] = { 0, 1, 2, 3, 4, 5, 6, 7 }, w[7];
    assert_int_equal(sl_causality_assign(c, 7, keys, start, w), 0);
    assert_int_equal(w[0], w[1]);
    assert_int_equal(w[1], w[2]);
    assert_int_not_equal(w[2], w[3]);
    assert_int_equal(w[3], w[4]);
    assert_int_equal(w[4], w[5]);
    assert_int_not_equal(w[6], w[0]);
    assert_int_not_equal(w[6], w[3]);
    /* a related row still follows its key, past the fill */
    uint64_t k2[] = { 1 };
    uint32_t s2[] = { 0, 1 }, w2[1];
    assert_int_equal(sl_causality_assign(c, 1, k2, s2, w2), 0);
    assert_int_equal(w2[0], w[0]);
    /* once every worker is used, the least loaded takes new rows */
    sl_causality_reset(c);
    uint64_t k3[13];
    uint32_t s3[14], w3[13], per[4] = {0};
    for (uint32_t i = 0; i < 13; i++) { k3[i] = 100 + i; s3[i] = i; }
    s3[13] = 13;
    assert_int_equal(sl_causality_assign(c, 13, k3, s3, w3), 0);
    for (uint32_t i = 0; i < 13; i++) per[w3[i]]++;
    for (uint32_t i = 0; i < 4; i++) assert_true(per[i] == 3 || per[i] == 4);
    sl_causality_free(c);
}

/* the statements of the last build() (their evs point into build's p: read them before the
 * next build) */
static sl_dmlsql_stmt built[64];
static sl_event *built_p[16];

static char *build(sl_event *evs, size_t n, int safe, uint32_t batch, size_t *consumed, size_t *nst)
{
    static char out[8192];
    sl_event **p = built_p;
    for (size_t i = 0; i < n; i++) p[i] = &evs[i];
    sl_dmlsql_opts o = { .batch = batch, .safe_mode = safe };
    sl_error err = {0};
    sl_sbuf b;
    sl_sbuf_init(&b);
    assert_int_equal(sl_dmlsql_build(&b, p, n, &o, consumed, built, 64, nst, &err), 0);
    snprintf(out, sizeof out, "%s", b.p);
    sl_sbuf_free(&b);
    return out;
}

static void test_dmlsql(void **st)
{
    setrow(0, 1, "a");
    setrow(1, 2, "b");
    setrow(2, 3, "c");
    setrow(3, 2, "B2");
    sl_event evs[6] = { mk(SL_EV_INSERT, -1, 0), mk(SL_EV_INSERT, -1, 1), mk(SL_EV_INSERT, -1, 2),
                        mk(SL_EV_UPDATE, 1, 3), mk(SL_EV_DELETE, 0, -1), mk(SL_EV_DELETE, 2, -1) };
    size_t used, nst;
    const char *sql = build(evs, 6, 0, 2, &used, &nst);
    assert_int_equal(used, 6);
    assert_int_equal(nst, 4);
    assert_string_equal(sql,
        "INSERT INTO `ts`.`tt` (`id`,`email`) VALUES (1,_utf8mb4'a'),(2,_utf8mb4'b');\n"
        "INSERT INTO `ts`.`tt` (`id`,`email`) VALUES (3,_utf8mb4'c');\n"
        "UPDATE `ts`.`tt` SET `id`=2,`email`=_utf8mb4'B2' WHERE `id`=2;\n"
        "DELETE FROM `ts`.`tt` WHERE `id` IN (1,3)");
    sql = build(evs + 3, 1, 1, 100, &used, &nst);
    assert_string_equal(sql,
        "DELETE FROM `ts`.`tt` WHERE `id`=2;\n"
        "REPLACE INTO `ts`.`tt` (`id`,`email`) VALUES (2,_utf8mb4'B2')");
    /* no key: every column, null-safe, LIMIT 1 */
    sl_table nokey = tbl;
    nokey.npk = 0;
    nokey.nkeys = 0;
    sl_event d = mk(SL_EV_DELETE, 2, -1);
    d.meta = &nokey;
    rows[2][1] = sl_value_null();
    sql = build(&d, 1, 0, 100, &used, &nst);
    assert_string_equal(sql, "DELETE FROM `ts`.`tt` WHERE `id` <=> 3 AND `email` <=> NULL LIMIT 1");
}

/* What each statement's result says of rows the target did not have (a drifted target): its
 * check and rows, and the count read from affected rows and mysql_info() as MariaDB reports
 * them (an UPDATE that finds its row as it is changes 0 rows but matches 1). */
static void test_dmlsql_not_found(void **st)
{
    (void)st;
    setrow(0, 1, "a");
    setrow(1, 2, "b");
    setrow(2, 3, "c");
    setrow(3, 2, "B2");
    sl_event evs[5] = { mk(SL_EV_INSERT, -1, 0), mk(SL_EV_UPDATE, 1, 3), mk(SL_EV_DELETE, 0, -1),
                        mk(SL_EV_DELETE, 2, -1), mk(SL_EV_DELETE, 1, -1) };
    size_t used, nst;
    build(evs, 5, 0, 100, &used, &nst);
    assert_int_equal(nst, 3);
    assert_int_equal(built[0].check, SL_DMLSQL_CHECK_NONE);
    assert_int_equal(built[1].check, SL_DMLSQL_CHECK_UPDATE);
    assert_int_equal(built[1].rows, 1);
    assert_int_equal(built[2].check, SL_DMLSQL_CHECK_DELETE);
    assert_int_equal(built[2].rows, 3);
    /* UPDATE: "Rows matched", whatever changed */
    assert_int_equal(sl_dmlsql_not_found(&built[1], 0, "Rows matched: 0  Changed: 0  Warnings: 0"), 1);
    assert_int_equal(sl_dmlsql_not_found(&built[1], 0, "Rows matched: 1  Changed: 0  Warnings: 0"), 0);
    assert_int_equal(sl_dmlsql_not_found(&built[1], 1, "Rows matched: 1  Changed: 1  Warnings: 0"), 0);
    assert_int_equal(sl_dmlsql_not_found(&built[1], 0, NULL), 0);     /* no info: unknown */
    /* DELETE of three keys: the rows affected were found */
    assert_int_equal(sl_dmlsql_not_found(&built[2], 3, NULL), 0);
    assert_int_equal(sl_dmlsql_not_found(&built[2], 1, NULL), 2);
    assert_int_equal(sl_dmlsql_not_found(&built[2], 0, NULL), 3);
    assert_int_equal(sl_dmlsql_not_found(&built[0], 0, NULL), 0);
    /* the keys named in the warning: the UPDATE's before image, the DELETE's keys */
    sl_sbuf k;
    sl_sbuf_init(&k);
    const sl_event *kev;
    const sl_value *kimg;
    assert_int_equal(sl_dmlsql_stmt_change(&built[1], 0, &kev, &kimg), 0);
    assert_ptr_equal(kev, &evs[1]);
    assert_int_equal(sl_dmlsql_key(&k, kev, kimg, 100), 0);
    assert_string_equal(k.p, "`id`=2");
    sl_sbuf_reset(&k);
    assert_int_equal(sl_dmlsql_stmt_change(&built[2], 2, &kev, &kimg), 0);
    assert_int_equal(sl_dmlsql_key(&k, kev, kimg, 100), 0);
    assert_string_equal(k.p, "`id`=2");
    assert_int_equal(sl_dmlsql_stmt_change(&built[2], 3, &kev, &kimg), SL_EINVAL);
    sl_sbuf_reset(&k);
    assert_int_equal(sl_dmlsql_stmt_change(&built[2], 0, &kev, &kimg), 0);
    assert_int_equal(sl_dmlsql_key(&k, kev, kimg, 3), 0);
    assert_string_equal(k.p, "`id...");
    /* safe mode writes what may be there already: nothing is checked */
    build(evs + 1, 2, 1, 100, &used, &nst);
    for (size_t i = 0; i < nst; i++)
        assert_int_equal(built[i].check, SL_DMLSQL_CHECK_NONE);
    /* an upsert (compacted changes of rows present at the group's start): the rows inserted */
    sl_cmp_op ops[3] = { { &evs[0], rows[0], SL_CMP_UPSERT }, { &evs[0], rows[1], SL_CMP_UPSERT },
                         { &evs[0], rows[2], SL_CMP_UPSERT } };
    sl_dmlsql_opts o = { .batch = 100 };
    sl_dmlsql_stmt up[4];
    sl_error err = {0};
    sl_sbuf b;
    sl_sbuf_init(&b);
    assert_int_equal(sl_dmlsql_build_ops(&b, ops, 3, &o, &used, up, 4, &nst, &err), 0);
    assert_int_equal(nst, 1);
    assert_int_equal(up[0].check, SL_DMLSQL_CHECK_UPSERT);
    assert_int_equal(up[0].rows, 3);
    /* 1 inserted, 1 changed, 1 as it was: 1 + 2 affected, 1 duplicate */
    assert_int_equal(sl_dmlsql_not_found(&up[0], 3, "Records: 3  Duplicates: 1  Warnings: 0"), 1);
    assert_int_equal(sl_dmlsql_not_found(&up[0], 0, "Records: 3  Duplicates: 0  Warnings: 0"), 0);
    assert_int_equal(sl_dmlsql_not_found(&up[0], 3, "Records: 3  Duplicates: 0  Warnings: 0"), 3);
    assert_int_equal(sl_dmlsql_not_found(&up[0], 3, NULL), 0);          /* no info: unknown */
    sl_sbuf_reset(&k);
    assert_int_equal(sl_dmlsql_stmt_change(&up[0], 1, &kev, &kimg), 0);
    assert_int_equal(sl_dmlsql_key(&k, kev, kimg, 100), 0);
    assert_string_equal(k.p, "`id`=2");
    /* one row: no info; 1 affected row is an insert, 2 a change, 0 a row as it was */
    sl_sbuf_reset(&b);
    assert_int_equal(sl_dmlsql_build_ops(&b, ops, 1, &o, &used, up, 4, &nst, &err), 0);
    assert_int_equal(up[0].rows, 1);
    assert_int_equal(sl_dmlsql_not_found(&up[0], 1, NULL), 1);
    assert_int_equal(sl_dmlsql_not_found(&up[0], 2, NULL), 0);
    assert_int_equal(sl_dmlsql_not_found(&up[0], 0, NULL), 0);
    /* a table without a key: counted, but its row (all of it the "key") is not shown */
    sl_table nokey = tbl;
    nokey.npk = 0;
    nokey.nkeys = 0;
    sl_event d = mk(SL_EV_DELETE, 2, -1);
    d.meta = &nokey;
    build(&d, 1, 0, 100, &used, &nst);
    assert_int_equal(built[0].check, SL_DMLSQL_CHECK_DELETE);
    assert_int_equal(sl_dmlsql_not_found(&built[0], 0, NULL), 1);
    sl_sbuf_reset(&k);
    assert_int_equal(sl_dmlsql_stmt_change(&built[0], 0, &kev, &kimg), 0);
    assert_int_equal(sl_dmlsql_key(&k, kev, kimg, 100), 0);
    assert_int_equal(k.len, 0);
    sl_sbuf_free(&k);
    sl_sbuf_free(&b);
}

/* Statements sized for the target's packet: rows stop joining one at max_bytes, and a row whose
 * statement alone is longer than max_row stops the build (SL_DMLSQL_BIG) and goes as LOAD DATA of
 * a one-line file, whose bytes the row reader gives in pieces of any size. */
static void test_dmlsql_long(void **st)
{
    (void)st;
    char forty[41], big[301];
    memset(forty, 'x', 40), forty[40] = '\0';
    memset(big, 'y', 300), big[300] = '\0';
    setrow(0, 1, forty);
    setrow(1, 2, forty);
    setrow(2, 3, forty);
    setrow(3, 4, big);
    sl_event evs[4] = { mk(SL_EV_INSERT, -1, 0), mk(SL_EV_INSERT, -1, 1), mk(SL_EV_INSERT, -1, 2),
                        mk(SL_EV_INSERT, -1, 3) };
    sl_event *p[4] = { &evs[0], &evs[1], &evs[2], &evs[3] };
    sl_dmlsql_opts o = { .batch = 100, .max_bytes = 120, .max_row = 200 };
    sl_dmlsql_stmt starts[8];
    size_t used, nst;
    sl_error err = {0};
    sl_sbuf b;
    sl_sbuf_init(&b);
    /* 45 bytes of head and 56 a row: the second row passes 120, and the build stops there */
    assert_int_equal(sl_dmlsql_build(&b, p, 3, &o, &used, starts, 8, &nst, &err), 0);
    assert_int_equal(used, 2);
    assert_int_equal(nst, 1);
    char want[512];
    snprintf(want, sizeof want, "INSERT INTO `ts`.`tt` (`id`,`email`) VALUES (1,_utf8mb4'%s'),(2,_utf8mb4'%s')",
             forty, forty);
    assert_string_equal(b.p, want);
    /* the long row leaves the statement it would have joined, then stops the build */
    sl_sbuf_reset(&b);
    assert_int_equal(sl_dmlsql_build(&b, p + 2, 2, &o, &used, starts, 8, &nst, &err), SL_DMLSQL_BIG);
    assert_int_equal(used, 1);
    assert_int_equal(nst, 1);
    snprintf(want, sizeof want, "INSERT INTO `ts`.`tt` (`id`,`email`) VALUES (3,_utf8mb4'%s')", forty);
    assert_string_equal(b.p, want);
    assert_int_equal(sl_dmlsql_build(&b, p + 3, 1, &o, &used, starts, 8, &nst, &err), SL_DMLSQL_BIG);
    assert_int_equal(used, 0);
    assert_int_equal(nst, 0);
    assert_string_equal(b.p, want);           /* nothing of it was left in the text */
    /* what the sink does with it */
    sl_sbuf_reset(&b);
    assert_int_equal(sl_dmlsql_load_row(&b, &evs[3], rows[3], 0, "f'1", &err), 0);
    assert_string_equal(b.p, "LOAD DATA LOCAL INFILE 'f\\'1' IGNORE INTO TABLE `ts`.`tt` CHARACTER SET binary "
                             "FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' (@s1) "
                             "SET `id`=4,`email`=CONVERT(@s1 USING utf8mb4)");
    sl_sbuf_reset(&b);
    assert_int_equal(sl_dmlsql_delete_key(&b, &evs[3], rows[3], &err), 0);
    assert_string_equal(b.p, "DELETE FROM `ts`.`tt` WHERE `id`=4");
    sl_table nokey = tbl;
    nokey.npk = 0;
    sl_event d = evs[3];
    d.meta = &nokey;
    assert_int_equal(sl_dmlsql_delete_key(&b, &d, rows[3], &err), SL_EINVAL);
    /* binary goes into its column as it is; NULL is a literal; every escaped byte, in pieces */
    static const char bytes[] = "a\tb\n\\c\0d";
    rows[4][0] = sl_value_null();
    rows[4][1] = sl_value_str(SL_V_BINARY, bytes, sizeof bytes - 1, 63);
    rows[4][2] = sl_value_int(99);
    sl_event e4 = mk(SL_EV_INSERT, -1, 4);
    sl_sbuf_reset(&b);
    assert_int_equal(sl_dmlsql_load_row(&b, &e4, rows[4], 1, "f", &err), 0);
    assert_non_null(strstr(b.p, "REPLACE INTO TABLE `ts`.`tt` CHARACTER SET binary"));
    assert_non_null(strstr(b.p, "(`email`) SET `id`=NULL"));
    sl_dmlsql_row_reader r;
    sl_dmlsql_row_open(&r, &e4, rows[4]);
    char file[64], piece[3];
    size_t n = 0, k;
    while ((k = sl_dmlsql_row_read(&r, piece, sizeof piece)) > 0) {
        assert_true(n + k < sizeof file);
        memcpy(file + n, piece, k);
        n += k;
    }
    assert_int_equal(n, 13);
    assert_memory_equal(file, "a\\tb\\n\\\\c\\0d\n", 13);
    /* a row of no string or binary value cannot go that way */
    rows[4][1] = sl_value_null();
    sl_sbuf_reset(&b);
    assert_int_equal(sl_dmlsql_load_row(&b, &e4, rows[4], 0, "f", &err), SL_EINVAL);
    sl_sbuf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_scheduler),
        cmocka_unit_test(test_fill),
        cmocka_unit_test(test_dmlsql),
        cmocka_unit_test(test_dmlsql_long),
        cmocka_unit_test(test_dmlsql_not_found),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
