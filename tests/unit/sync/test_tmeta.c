/*
 * test_tmeta.c - unit tests of plugins/common/tmeta.c (target table descriptions and the views
 * of event metadata on them) and of what causality.c and dmlsql.c do with such views: unique
 * keys the binlog does not carry relate rows, generated columns are never written, a table
 * without a primary key is identified by its unique NOT NULL key.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "causality.h"
#include "dmlsql.h"
#include "tmeta.h"

/* target: g (id INT PK, a INT, v AS (a+1) VIRTUAL, s AS (a*2) STORED, inv INT INVISIBLE,
 *            n INT NOT NULL, u VARCHAR NOT NULL, UNIQUE n(n, a), UNIQUE uk(u)) */
static sl_tmeta *target_g(void)
{
    sl_tmeta *t = sl_tmeta_new("ts", "g");
    assert_non_null(t);
    assert_int_equal(sl_tmeta_add_col(t, "id", sl_tmeta_col_flags("NO", "", "NEVER")), 0);
    assert_int_equal(sl_tmeta_add_col(t, "a", sl_tmeta_col_flags("YES", "", "NEVER")), 0);
    assert_int_equal(sl_tmeta_add_col(t, "v", sl_tmeta_col_flags("YES", "VIRTUAL GENERATED", "ALWAYS")), 0);
    assert_int_equal(sl_tmeta_add_col(t, "s", sl_tmeta_col_flags("YES", "STORED GENERATED", "ALWAYS")), 0);
    assert_int_equal(sl_tmeta_add_col(t, "inv", sl_tmeta_col_flags("YES", "INVISIBLE", "NEVER")), 0);
    assert_int_equal(sl_tmeta_add_col(t, "n", sl_tmeta_col_flags("NO", "", "NEVER")), 0);
    assert_int_equal(sl_tmeta_add_col(t, "u", sl_tmeta_col_flags("NO", "", "NEVER")), 0);
    /* as the sink reads STATISTICS: by index name, parts in order */
    assert_int_equal(sl_tmeta_add_key_part(t, "PRIMARY", "id", 0), 0);
    assert_int_equal(sl_tmeta_add_key_part(t, "n", "n", 0), 0);
    assert_int_equal(sl_tmeta_add_key_part(t, "n", "A", 0), 0);          /* names are case-insensitive */
    assert_int_equal(sl_tmeta_add_key_part(t, "uk", "u", 0), 0);
    return t;
}

/* the event side, as the binlog gives it: other column order, PK only, no generated flags */
static sl_column src_cols[7] = {
    { .name = "u", .charset = 45 }, { .name = "id", .flags = SL_COL_PK }, { .name = "a", .flags = SL_COL_NULLABLE },
    { .name = "v", .flags = SL_COL_NULLABLE }, { .name = "s", .flags = SL_COL_NULLABLE },
    { .name = "inv", .flags = SL_COL_NULLABLE }, { .name = "n" },
};
static uint32_t src_pk[1] = { 1 };
static sl_table src_g = { .ncols = 7, .schema = "s", .name = "g", .cols = src_cols, .npk = 1, .pk = src_pk };

static uint32_t klen(const uint32_t *k)
{
    uint32_t n = 0;
    while (k[n] != UINT32_MAX)
        n++;
    return n;
}

static void test_col_flags(void **st)
{
    (void)st;
    assert_int_equal(sl_tmeta_col_flags("YES", "", "NEVER"), SL_TCOL_NULLABLE);
    assert_int_equal(sl_tmeta_col_flags("NO", "VIRTUAL GENERATED", "ALWAYS"), SL_TCOL_GENERATED);
    assert_int_equal(sl_tmeta_col_flags("NO", "STORED GENERATED", NULL), SL_TCOL_GENERATED);   /* MySQL */
    assert_int_equal(sl_tmeta_col_flags("YES", "DEFAULT_GENERATED", NULL), SL_TCOL_NULLABLE);  /* writable */
    assert_int_equal(sl_tmeta_col_flags("NO", "INVISIBLE", "NEVER"), SL_TCOL_INVISIBLE);
    assert_int_equal(sl_tmeta_col_flags(NULL, "auto_increment", NULL), 0);
    sl_tmeta *t = target_g();
    assert_int_equal(t->nkeys, 3);
    assert_string_equal(t->keys[1].name, "n");
    assert_int_equal(t->keys[1].ncols, 2);
    assert_int_equal(t->keys[1].cols[1], 1);
    assert_int_equal(sl_tmeta_add_key_part(t, "x", "nope", 0), SL_ENOENT);
    assert_int_equal(sl_tmeta_find_col(t, "U"), 6);
    sl_tmeta_free(t);
}

static void test_view_maps_by_name(void **st)
{
    (void)st;
    sl_tmeta *t = target_g();
    sl_table *v;
    sl_error err = {0};
    assert_int_equal(sl_tmeta_view(t, &src_g, &v, &err), 0);
    assert_int_equal(v->ncols, 7);
    assert_string_equal(v->cols[0].name, "u");
    /* identity: the target's PRIMARY KEY, as event column indexes */
    assert_int_equal(v->npk, 1);
    assert_int_equal(v->pk[0], 1);
    assert_true(v->cols[1].flags & SL_COL_PK);
    /* causality: n(n, a) and uk(u); the event's PK is the target's: not repeated */
    assert_int_equal(v->nkeys, 2);
    assert_int_equal(klen(v->keys[0]), 2);
    assert_int_equal(v->keys[0][0], 6);
    assert_int_equal(v->keys[0][1], 2);
    assert_int_equal(klen(v->keys[1]), 1);
    assert_int_equal(v->keys[1][0], 0);
    assert_true(v->cols[0].flags & SL_COL_UNIQUE);
    /* generated on the target: never written; invisible: written */
    assert_true(v->cols[3].flags & SL_COL_GENERATED);
    assert_true(v->cols[4].flags & SL_COL_GENERATED);
    assert_false(v->cols[5].flags & SL_COL_GENERATED);
    assert_false(v->cols[2].flags & SL_COL_GENERATED);
    free(v);
    sl_tmeta_free(t);
}

static void test_view_missing_column(void **st)
{
    (void)st;
    sl_tmeta *t = sl_tmeta_new("ts", "narrow");
    sl_tmeta_add_col(t, "id", 0);
    sl_tmeta_add_col(t, "u", 0);
    sl_tmeta_add_col(t, "extra", SL_TCOL_NULLABLE);      /* on the target only: left to its default */
    sl_tmeta_add_key_part(t, "PRIMARY", "id", 0);
    sl_table *v = NULL;
    sl_error err = {0};
    assert_int_equal(sl_tmeta_view(t, &src_g, &v, &err), SL_EINVAL);
    assert_null(v);
    assert_non_null(strstr(err.msg, "column `a`"));
    assert_non_null(strstr(err.msg, "`ts`.`narrow`"));
    /* a column the event itself marks generated may be missing: it is not written */
    sl_column c2[3] = { { .name = "id" }, { .name = "u" }, { .name = "g2", .flags = SL_COL_GENERATED } };
    sl_table s2 = { .ncols = 3, .schema = "s", .name = "n", .cols = c2 };
    assert_int_equal(sl_tmeta_view(t, &s2, &v, &err), 0);
    assert_true(v->cols[2].flags & SL_COL_GENERATED);
    assert_false(v->cols[1].flags & SL_COL_GENERATED);
    assert_int_equal(v->npk, 1);
    assert_int_equal(v->pk[0], 0);
    free(v);
    /* no column names in the binlog: the message says why */
    sl_column c3[1] = { { .name = "@1" } };
    sl_table s3 = { .ncols = 1, .schema = "s", .name = "n", .cols = c3 };
    assert_int_equal(sl_tmeta_view(t, &s3, &v, &err), SL_EINVAL);
    assert_non_null(strstr(err.msg, "binlog_row_metadata=FULL"));
    sl_tmeta_free(t);
}

/* target k (a INT NULL, f FLOAT NOT NULL, u VARCHAR NOT NULL, w VARCHAR NULL, p VARCHAR NOT NULL,
 *           UNIQUE a1(a), UNIQUE b1(f), UNIQUE c1(u), UNIQUE d1(w, extra), UNIQUE e1(p(4))) */
static sl_tmeta *target_k(void)
{
    sl_tmeta *t = sl_tmeta_new("ts", "k");
    sl_tmeta_add_col(t, "a", SL_TCOL_NULLABLE);
    sl_tmeta_add_col(t, "f", 0);
    sl_tmeta_add_col(t, "u", 0);
    sl_tmeta_add_col(t, "w", SL_TCOL_NULLABLE);
    sl_tmeta_add_col(t, "p", 0);
    sl_tmeta_add_col(t, "extra", 0);
    sl_tmeta_add_key_part(t, "a1", "a", 0);
    sl_tmeta_add_key_part(t, "b1", "f", 0);
    sl_tmeta_add_key_part(t, "c1", "u", 0);
    sl_tmeta_add_key_part(t, "d1", "w", 0);
    sl_tmeta_add_key_part(t, "d1", "extra", 0);
    sl_tmeta_add_key_part(t, "e1", "p", 1);
    return t;
}

static sl_column k_cols[5] = { { .name = "a" }, { .name = "f", .mysql_type = 4 /* FLOAT */ },
                               { .name = "u", .charset = 45 }, { .name = "w", .charset = 45 },
                               { .name = "p", .charset = 45 } };
static sl_table src_k = { .ncols = 5, .schema = "s", .name = "k", .cols = k_cols };

static void test_view_key_choice(void **st)
{
    (void)st;
    sl_tmeta *t = target_k();
    sl_table *v;
    sl_error err = {0};
    assert_int_equal(sl_tmeta_view(t, &src_k, &v, &err), 0);
    /* no PK; a1 is nullable, b1 is FLOAT: identity is c1(u) */
    assert_int_equal(v->npk, 1);
    assert_int_equal(v->pk[0], 2);
    /* causality: a1, b1, d1 on the present column w only, e1 (prefix) as the whole table */
    assert_int_equal(v->nkeys, 4);
    assert_int_equal(klen(v->keys[0]), 1);
    assert_int_equal(v->keys[0][0], 0);
    assert_int_equal(v->keys[1][0], 1);
    assert_int_equal(klen(v->keys[2]), 1);
    assert_int_equal(v->keys[2][0], 3);
    assert_int_equal(klen(v->keys[3]), 0);
    free(v);
    /* no usable key at all: no identity, the event's PK still relates rows */
    sl_tmeta *t2 = sl_tmeta_new("ts", "k2");
    sl_tmeta_add_col(t2, "id", 0);
    sl_tmeta_add_col(t2, "u", SL_TCOL_NULLABLE);
    sl_tmeta_add_key_part(t2, "uu", "u", 0);
    assert_int_equal(sl_tmeta_view(t2, &src_g, &v, &err), SL_EINVAL);   /* a, v, s... missing */
    sl_column c[2] = { { .name = "u" }, { .name = "id", .flags = SL_COL_PK } };
    uint32_t pk[1] = { 1 };
    sl_table s = { .ncols = 2, .schema = "s", .name = "k2", .cols = c, .npk = 1, .pk = pk };
    assert_int_equal(sl_tmeta_view(t2, &s, &v, &err), 0);
    assert_int_equal(v->npk, 0);
    assert_int_equal(v->nkeys, 2);
    assert_int_equal(v->keys[0][0], 0);
    assert_int_equal(v->keys[1][0], 1);
    free(v);
    sl_tmeta_free(t2);
    sl_tmeta_free(t);
}

/* ---- what causality and dmlsql do with a view -------------------------------------------- */

static sl_value img[8][7];

static void grow(int slot, int64_t id, const char *u, int64_t a)
{
    img[slot][0] = sl_value_str(SL_V_STRING, u, (uint32_t)strlen(u), 45);
    img[slot][1] = sl_value_int(id);
    img[slot][2] = sl_value_int(a);
    img[slot][3] = sl_value_int(a + 1);
    img[slot][4] = sl_value_int(a * 2);
    img[slot][5] = sl_value_int(7);
    img[slot][6] = sl_value_int(id * 10);
}

static sl_event ev(sl_table *m, int kind, int before, int after)
{
    sl_event e = { .kind = (uint8_t)kind, .ncols = 7, .schema = "s", .table = "g", .target_schema = "ts",
                   .target_table = "g", .meta = m };
    if (before >= 0) e.before = img[before];
    if (after >= 0) e.after = img[after];
    return e;
}

static void test_unique_keys_relate(void **st)
{
    (void)st;
    sl_tmeta *t = target_g();
    sl_table *v;
    sl_error err = {0};
    assert_int_equal(sl_tmeta_view(t, &src_g, &v, &err), 0);
    /* txn A: DELETE id=1 u='a'; txn B: INSERT id=2 u='a ' (PAD SPACE: the same unique value) */
    grow(0, 1, "a", 5);
    grow(1, 2, "a ", 6);
    grow(2, 3, "b", 7);
    sl_event a = ev(v, SL_EV_DELETE, 0, -1), b = ev(v, SL_EV_INSERT, -1, 1), c = ev(v, SL_EV_INSERT, -1, 2);
    uint64_t keys[64];
    uint32_t start[2], w1[1], w2[1], w3[1];
    sl_causality *cz = sl_causality_new(4);
    start[0] = 0;
    start[1] = (uint32_t)sl_causality_row_keys(&a, keys, 64);
    assert_int_equal(start[1], 3);                /* PK, n(n, a), uk(u) */
    assert_int_equal(sl_causality_assign(cz, 1, keys, start, w1), 0);
    start[1] = (uint32_t)sl_causality_row_keys(&c, keys, 64);
    assert_int_equal(sl_causality_assign(cz, 1, keys, start, w3), 0);
    start[1] = (uint32_t)sl_causality_row_keys(&b, keys, 64);
    assert_int_equal(sl_causality_assign(cz, 1, keys, start, w2), 0);
    assert_int_equal(w1[0], w2[0]);              /* related through uk only */
    assert_int_not_equal(w1[0], w3[0]);          /* unrelated: spread */
    /* with the binlog's metadata alone (PK only) the two would not relate */
    uint64_t ka[8], kb[8];
    size_t na = sl_causality_row_keys(&(sl_event){ .kind = SL_EV_DELETE, .ncols = 7, .target_schema = "ts",
                                                   .target_table = "g", .meta = &src_g, .before = img[0] }, ka, 8);
    size_t nb = sl_causality_row_keys(&(sl_event){ .kind = SL_EV_INSERT, .ncols = 7, .target_schema = "ts",
                                                   .target_table = "g", .meta = &src_g, .after = img[1] }, kb, 8);
    assert_int_equal(na, 1);
    assert_int_equal(nb, 1);
    assert_true(ka[0] != kb[0]);
    sl_causality_free(cz);
    free(v);
    sl_tmeta_free(t);
}

static void test_null_keys_use_the_row(void **st)
{
    (void)st;
    /* only a nullable unique key: an update chain of a row whose key is NULL stays related */
    sl_tmeta *t = sl_tmeta_new("ts", "nk");
    sl_tmeta_add_col(t, "u", SL_TCOL_NULLABLE);
    sl_tmeta_add_col(t, "x", SL_TCOL_NULLABLE);
    sl_tmeta_add_key_part(t, "uu", "u", 0);
    sl_column c[2] = { { .name = "u" }, { .name = "x" } };
    sl_table s = { .ncols = 2, .schema = "s", .name = "nk", .cols = c };
    sl_table *v;
    sl_error err = {0};
    assert_int_equal(sl_tmeta_view(t, &s, &v, &err), 0);
    assert_int_equal(v->npk, 0);
    sl_value r1[2] = { sl_value_null(), sl_value_int(1) }, r2[2] = { sl_value_null(), sl_value_int(2) },
             r3[2] = { sl_value_null(), sl_value_int(3) };
    sl_event u1 = { .kind = SL_EV_UPDATE, .ncols = 2, .target_schema = "ts", .target_table = "nk", .meta = v,
                    .before = r1, .after = r2 };
    sl_event u2 = u1;
    u2.before = r2;
    u2.after = r3;
    uint64_t k1[4], k2[4];
    assert_int_equal(sl_causality_row_keys(&u1, k1, 4), 2);
    assert_int_equal(sl_causality_row_keys(&u2, k2, 4), 2);
    assert_true(k1[1] == k2[0]);                 /* after of u1 = before of u2 */
    free(v);
    sl_tmeta_free(t);
}

static void test_statements(void **st)
{
    (void)st;
    sl_tmeta *t = target_g();
    sl_table *v;
    sl_error err = {0};
    assert_int_equal(sl_tmeta_view(t, &src_g, &v, &err), 0);
    grow(0, 1, "a", 5);
    grow(1, 1, "b", 6);
    sl_event e[2] = { ev(v, SL_EV_INSERT, -1, 0), ev(v, SL_EV_UPDATE, 0, 1) };
    sl_event *pe[2] = { &e[0], &e[1] };
    sl_dmlsql_opts o = { .batch = 10 };
    sl_sbuf b;
    sl_sbuf_init(&b);
    size_t used, ns;
    sl_dmlsql_stmt starts[8];
    assert_int_equal(sl_dmlsql_build(&b, pe, 2, &o, &used, starts, 8, &ns, &err), 0);
    assert_int_equal(used, 2);
    assert_string_equal(b.p, "INSERT INTO `ts`.`g` (`u`,`id`,`a`,`inv`,`n`) VALUES (_utf8mb4'a',1,5,7,10);\n"
                             "UPDATE `ts`.`g` SET `u`=_utf8mb4'b',`id`=1,`a`=6,`inv`=7,`n`=10 WHERE `id`=1");
    sl_sbuf_free(&b);
    free(v);
    sl_tmeta_free(t);
    /* no PK, unique NOT NULL key u: UPDATE and DELETE by it, no LIMIT 1 */
    t = target_k();
    assert_int_equal(sl_tmeta_view(t, &src_k, &v, &err), 0);
    sl_value r1[5] = { sl_value_null(), sl_value_double(0), sl_value_str(SL_V_STRING, "k1", 2, 45),
                       sl_value_null(), sl_value_str(SL_V_STRING, "p", 1, 45) };
    sl_value r2[5];
    memcpy(r2, r1, sizeof r2);
    r2[0] = sl_value_int(3);
    r1[1].type = r2[1].type = SL_V_FLOAT;
    sl_event ku = { .kind = SL_EV_UPDATE, .ncols = 5, .schema = "s", .table = "k", .target_schema = "ts",
                    .target_table = "k", .meta = v, .before = r1, .after = r2 };
    sl_event kd = ku;
    kd.kind = SL_EV_DELETE;
    kd.after = NULL;
    sl_event *pk[2] = { &ku, &kd };
    sl_sbuf_init(&b);
    assert_int_equal(sl_dmlsql_build(&b, pk, 2, &o, &used, starts, 8, &ns, &err), 0);
    assert_non_null(strstr(b.p, "WHERE `u`=_utf8mb4'k1';\n"));
    assert_non_null(strstr(b.p, "DELETE FROM `ts`.`k` WHERE `u` IN (_utf8mb4'k1')"));
    assert_null(strstr(b.p, "LIMIT"));
    sl_sbuf_free(&b);
    free(v);
    sl_tmeta_free(t);
}

/* Foreign-key components: which tables the sink applies with foreign_key_checks = 1. */
static void test_fk_cascade(void **st)
{
    (void)st;
    assert_int_equal(sl_tmeta_fk_rule_cascades("CASCADE"), 1);
    assert_int_equal(sl_tmeta_fk_rule_cascades("SET NULL"), 1);
    assert_int_equal(sl_tmeta_fk_rule_cascades("RESTRICT"), 0);
    assert_int_equal(sl_tmeta_fk_rule_cascades("NO ACTION"), 0);
    assert_int_equal(sl_tmeta_fk_rule_cascades(NULL), 0);
    /* d.p <- d.c (RESTRICT) <- d.g (CASCADE); e.p <- e.c (SET NULL); f.p <- f.c (NO ACTION);
     * x.c -> d.p (RESTRICT, another schema) */
    const sl_tfk fks[] = {
        { "d", "c", "d", "p", 0 }, { "d", "g", "d", "c", 1 }, { "e", "c", "e", "p", 1 },
        { "f", "c", "f", "p", 0 }, { "x", "c", "d", "p", 0 },
    };
    size_t n = sizeof fks / sizeof fks[0];
    /* every table of d's component, through a RESTRICT key and across schemas */
    assert_int_equal(sl_tmeta_fk_cascade(fks, n, "d", "p"), 1);
    assert_int_equal(sl_tmeta_fk_cascade(fks, n, "d", "c"), 1);
    assert_int_equal(sl_tmeta_fk_cascade(fks, n, "d", "g"), 1);
    assert_int_equal(sl_tmeta_fk_cascade(fks, n, "x", "c"), 1);
    assert_int_equal(sl_tmeta_fk_cascade(fks, n, "e", "p"), 1);   /* a parent of SET NULL */
    assert_int_equal(sl_tmeta_fk_cascade(fks, n, "e", "c"), 1);
    /* no cascading key in f's component, and tables without a foreign key */
    assert_int_equal(sl_tmeta_fk_cascade(fks, n, "f", "p"), 0);
    assert_int_equal(sl_tmeta_fk_cascade(fks, n, "f", "c"), 0);
    assert_int_equal(sl_tmeta_fk_cascade(fks, n, "d", "other"), 0);
    assert_int_equal(sl_tmeta_fk_cascade(NULL, 0, "d", "p"), 0);
    /* the flag reaches every column of the view, and only there */
    sl_tmeta *t = target_g();
    sl_table *v = NULL;
    sl_error e = {0};
    assert_int_equal(sl_tmeta_view(t, &src_g, &v, &e), 0);
    for (uint32_t i = 0; i < v->ncols; i++)
        assert_false(v->cols[i].flags & SL_TVIEW_FKCASCADE);
    free(v);
    t->fk_cascade = 1;
    assert_int_equal(sl_tmeta_view(t, &src_g, &v, &e), 0);
    for (uint32_t i = 0; i < v->ncols; i++)
        assert_true(v->cols[i].flags & SL_TVIEW_FKCASCADE);
    free(v);
    sl_tmeta_free(t);
}

/* System-versioned tables: only changes of current rows reach the target (tmeta.h). */
static void test_versioned_rows(void **st)
{
    (void)st;
    sl_tmeta *t = sl_tmeta_new("ts", "v");
    assert_non_null(t);
    t->versioned = 1;
    assert_int_equal(sl_tmeta_add_col(t, "id", sl_tmeta_col_flags("NO", "", "NEVER")), 0);
    assert_int_equal(sl_tmeta_add_col(t, "v", sl_tmeta_col_flags("YES", "", "NEVER")), 0);
    assert_int_equal(sl_tmeta_add_key_part(t, "PRIMARY", "id", 0), 0);
    /* implicit row_start/row_end: in the event, not in the target's COLUMNS */
    sl_column cols[4] = { { .name = "id", .flags = SL_COL_PK }, { .name = "v" }, { .name = "row_start" },
                          { .name = "row_end" } };
    uint32_t pk[1] = { 0 };
    sl_table src = { .ncols = 4, .schema = "s", .name = "v", .cols = cols, .npk = 1, .pk = pk };
    sl_table *v = NULL;
    sl_error e = {0};
    assert_int_equal(sl_tmeta_view(t, &src, &v, &e), 0);
    assert_true(v->cols[2].flags & SL_COL_GENERATED);
    assert_true(v->cols[3].flags & SL_COL_GENERATED);
    assert_true(v->cols[3].flags & SL_TVIEW_ROWEND);
    assert_false(v->cols[2].flags & SL_TVIEW_ROWEND);
    sl_value cur[4] = { sl_value_int(1), sl_value_int(2), {0}, {0} };
    sl_value old[4] = { sl_value_int(1), sl_value_int(1), {0}, {0} };
    cur[3].type = SL_V_TIMESTAMP; cur[3].v.ts.sec = 2147483647; cur[3].v.ts.usec = 999999;
    old[3].type = SL_V_TIMESTAMP; old[3].v.ts.sec = 1796397250; old[3].v.ts.usec = 819246;
    assert_int_equal(sl_tmeta_versioned_row(v, SL_EV_INSERT, NULL, cur), SL_TV_APPLY);
    assert_int_equal(sl_tmeta_versioned_row(v, SL_EV_INSERT, NULL, old), SL_TV_SKIP);     /* history row */
    assert_int_equal(sl_tmeta_versioned_row(v, SL_EV_UPDATE, cur, cur), SL_TV_APPLY);
    assert_int_equal(sl_tmeta_versioned_row(v, SL_EV_UPDATE, cur, old), SL_TV_DELETE);    /* DELETE */
    assert_int_equal(sl_tmeta_versioned_row(v, SL_EV_DELETE, old, NULL), SL_TV_SKIP);     /* DELETE HISTORY */
    assert_int_equal(sl_tmeta_versioned_row(v, SL_EV_DELETE, cur, NULL), SL_TV_APPLY);
    /* transaction-id versioning: BIGINT UNSIGNED */
    cur[3] = sl_value_uint(UINT64_MAX);
    old[3] = sl_value_uint(1234);
    assert_int_equal(sl_tmeta_versioned_row(v, SL_EV_INSERT, NULL, cur), SL_TV_APPLY);
    assert_int_equal(sl_tmeta_versioned_row(v, SL_EV_INSERT, NULL, old), SL_TV_SKIP);
    free(v);
    /* not versioned: the same column names are ordinary columns the target must have */
    t->versioned = 0;
    assert_int_equal(sl_tmeta_view(t, &src, &v, &e), SL_EINVAL);
    assert_non_null(strstr(e.msg, "row_start"));
    /* explicit period columns: GENERATION_EXPRESSION names the ROW END one */
    assert_int_equal(sl_tmeta_col_flags2("NO", "STORED GENERATED, INVISIBLE", "ALWAYS", "ROW END"),
                     SL_TCOL_ROWEND | SL_TCOL_GENERATED | SL_TCOL_INVISIBLE);
    assert_int_equal(sl_tmeta_col_flags2("NO", "STORED GENERATED, INVISIBLE", "ALWAYS", "ROW START"),
                     SL_TCOL_GENERATED | SL_TCOL_INVISIBLE);
    sl_tmeta_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_col_flags),
        cmocka_unit_test(test_fk_cascade),
        cmocka_unit_test(test_versioned_rows),
        cmocka_unit_test(test_view_maps_by_name),
        cmocka_unit_test(test_view_missing_column),
        cmocka_unit_test(test_view_key_choice),
        cmocka_unit_test(test_unique_keys_relate),
        cmocka_unit_test(test_null_keys_use_the_row),
        cmocka_unit_test(test_statements),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
