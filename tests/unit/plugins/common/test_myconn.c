/*
 * test_myconn.c - what plugins/common/myconn.c does without a server: the SQL text builder
 * (identifiers and qualified names quoted with doubled backticks, string literals escaped as
 * MySQL reads them, hex literals, formatted appends, growth and reset), the connection-error
 * classification that decides reconnect versus fail, and the shared connection option rows.
 * Connecting and running statements need a server: tests/integration/plugins.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <errmsg.h>

#include "myconn.h"

static void test_identifiers(void **state)
{
    sl_sbuf b;
    sl_sbuf_init(&b);
    sl_sbuf_add_ident(&b, "plain");
    sl_sbuf_adds(&b, " ");
    sl_sbuf_add_ident(&b, "we`ird``");
    sl_sbuf_adds(&b, " ");
    sl_sbuf_add_qname(&b, "s`1", "t 2");
    assert_string_equal(b.p, "`plain` `we``ird````` `s``1`.`t 2`");
    assert_int_equal(b.len, strlen(b.p));
    assert_int_equal(b.oom, 0);
    sl_sbuf_free(&b);
    assert_null(b.p);
}

static void test_quoted_and_hex(void **state)
{
    sl_sbuf b;
    sl_sbuf_init(&b);
    static const char raw[] = { 'a', '\0', '\\', '\'', '"', '\n', '\r', 26, 'z' };
    sl_sbuf_add_quoted(&b, raw, sizeof raw);
    assert_int_equal(b.len, strlen("'a\\0\\\\\\'\\\"\\n\\r\\Zz'"));
    assert_memory_equal(b.p, "'a\\0\\\\\\'\\\"\\n\\r\\Zz'", b.len);
    sl_sbuf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.p, "");
    static const unsigned char bin[] = { 0x00, 0xff, 0x10, 0xab };
    sl_sbuf_add_hex(&b, bin, sizeof bin);
    assert_string_equal(b.p, "X'00FF10AB'");
    sl_sbuf_reset(&b);
    sl_sbuf_add_hex(&b, bin, 0);
    assert_string_equal(b.p, "''");   /* no bytes: the empty string */
    sl_sbuf_free(&b);
}

static void test_growth_and_format(void **state)
{
    sl_sbuf b;
    sl_sbuf_init(&b);
    /* far past the first allocation: the text stays whole and terminated */
    for (int i = 0; i < 5000; i++)
        sl_sbuf_addf(&b, "%d,", i % 10);
    assert_int_equal(b.len, 10000);
    assert_int_equal(strlen(b.p), 10000);
    assert_memory_equal(b.p + 9990, "5,6,7,8,9,", 10);
    assert_true(b.cap > b.len);
    size_t cap = b.cap;
    sl_sbuf_reset(&b);
    assert_int_equal(b.cap, cap);   /* reset keeps the memory */
    assert_int_equal(sl_sbuf_reserve(&b, 3 * cap), 0);
    assert_true(b.cap >= 3 * cap + 1);
    sl_sbuf_add(&b, "abcdef", 3);
    assert_string_equal(b.p, "abc");
    /* a failed growth is sticky: later appends are no-ops, reset clears it */
    b.oom = 1;
    sl_sbuf_adds(&b, "more");
    assert_string_equal(b.p, "abc");
    assert_int_equal(sl_sbuf_reserve(&b, 1), SL_ENOMEM);
    sl_sbuf_reset(&b);
    assert_int_equal(b.oom, 0);
    sl_sbuf_free(&b);
}

static void test_conn_errors(void **state)
{
    /* the connection is gone: reconnect */
    assert_true(sl_myconn_is_conn_error(CR_SERVER_GONE_ERROR));
    assert_true(sl_myconn_is_conn_error(CR_SERVER_LOST));
    assert_true(sl_myconn_is_conn_error(CR_CONNECTION_ERROR));
    assert_true(sl_myconn_is_conn_error(CR_CONN_HOST_ERROR));
    assert_true(sl_myconn_is_conn_error(1053));   /* server shutdown */
    assert_true(sl_myconn_is_conn_error(1927));   /* connection killed */
    assert_true(sl_myconn_is_conn_error(4031));   /* disconnected by the server */
    /* a statement's own error: fail, do not retry it on a new connection */
    assert_false(sl_myconn_is_conn_error(0));
    assert_false(sl_myconn_is_conn_error(1064));  /* syntax */
    assert_false(sl_myconn_is_conn_error(1062));  /* duplicate key */
    assert_false(sl_myconn_is_conn_error(1213));  /* deadlock */
}

typedef struct conn_cfg {
    SL_MYCONN_FIELDS(source);
    SL_MYCONN_FIELDS(target);
} conn_cfg;

static const sl_option rows[] = {
    SL_MYCONN_OPTIONS(source, conn_cfg),
    SL_MYCONN_OPTIONS_OPTIONAL(target, conn_cfg),
    { .name = NULL }
};

static const sl_option *row(const char *name)
{
    for (const sl_option *o = rows; o->name; o++)
        if (strcmp(o->name, name) == 0)
            return o;
    fail_msg("no option %s", name);
    return NULL;
}

/* The rows every connecting plugin shares: names, types, fields, defaults and secrecy. */
static void test_option_rows(void **state)
{
    assert_int_equal(sizeof rows / sizeof rows[0], 17);   /* 2 x 8 rows and the end */
    const sl_option *o = row("source_host");
    assert_int_equal(o->type, SL_OPT_STRING);
    assert_int_equal(o->offset, offsetof(conn_cfg, source_host));
    assert_int_equal(o->flags, SL_OPTF_REQUIRED);
    assert_null(o->def);
    o = row("source_port");
    assert_int_equal(o->type, SL_OPT_INT);
    assert_int_equal(o->offset, offsetof(conn_cfg, source_port));
    assert_int_equal(o->min, 1);
    assert_int_equal(o->max, 65535);
    assert_int_equal(o->flags, SL_OPTF_REQUIRED);
    assert_int_equal(row("source_user")->flags, SL_OPTF_REQUIRED);
    assert_int_equal(row("source_password")->flags, SL_OPTF_SECRET);
    assert_string_equal(row("source_password")->def, "\"\"");
    assert_int_equal(row("source_ssl_key")->flags, SL_OPTF_SECRET);
    assert_int_equal(row("source_ssl_ca")->flags, 0);
    assert_int_equal(row("source_ssl_cert")->offset, offsetof(conn_cfg, source_ssl_cert));
    /* the optional server: defaults instead of required */
    assert_int_equal(row("target_host")->flags, 0);
    assert_string_equal(row("target_host")->def, "\"\"");
    assert_string_equal(row("target_port")->def, "3306");
    assert_string_equal(row("target_user")->def, "\"\"");
    assert_int_equal(row("target_ssl_key")->offset, offsetof(conn_cfg, target_ssl_key));
    assert_int_equal(row("target_password")->flags, SL_OPTF_SECRET);
    assert_string_equal(row("target_cert_allowed_cn")->def, "\"\"");
    assert_int_equal(row("source_cert_allowed_cn")->offset, offsetof(conn_cfg, source_cert_allowed_cn));
    for (const sl_option *r = rows; r->name; r++)
        assert_non_null(r->desc);

    conn_cfg c = { .target_host = "h", .target_port = 3307, .target_user = "u",
                   .target_password = "p", .target_ssl_ca = "ca", .target_ssl_cert = "cert",
                   .target_ssl_key = "key", .target_cert_allowed_cn = "db1,db2" };
    sl_myconn_opts m = { SL_MYCONN_FROM(&c, target), .local_infile = 1 };
    assert_string_equal(m.host, "h");
    assert_int_equal(m.port, 3307);
    assert_string_equal(m.user, "u");
    assert_string_equal(m.password, "p");
    assert_string_equal(m.ssl_ca, "ca");
    assert_string_equal(m.ssl_cert, "cert");
    assert_string_equal(m.ssl_key, "key");
    assert_string_equal(m.cert_allowed_cn, "db1,db2");
    assert_null(m.init_sql);
    assert_int_equal(m.local_infile, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identifiers),
        cmocka_unit_test(test_quoted_and_hex),
        cmocka_unit_test(test_growth_and_format),
        cmocka_unit_test(test_conn_errors),
        cmocka_unit_test(test_option_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
