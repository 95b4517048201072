/*
 * test_options.c - the options engine: every problem reported with its option, defaults then
 * given values filled into the config struct, resolved JSON with secrets masked.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/runtime.h"

typedef struct cfg {
    char   *host;
    int64_t port;
    char   *password;
    int64_t threads;
    int     consistency;
    int     safe;
    char   *rules;
    char   *note;     /* no default, not required */
} cfg;

static const char *const consistency[] = { "auto", "none", "flush", NULL };

static const sl_option opts[] = {
    { .name = "host", .type = SL_OPT_STRING, .offset = offsetof(cfg, host), .flags = SL_OPTF_REQUIRED },
    { .name = "port", .type = SL_OPT_INT, .offset = offsetof(cfg, port), .min = 1, .max = 65535, .flags = SL_OPTF_REQUIRED },
    { .name = "password", .type = SL_OPT_STRING, .def = "\"\"", .offset = offsetof(cfg, password), .flags = SL_OPTF_SECRET },
    { .name = "threads", .type = SL_OPT_INT, .def = "4", .offset = offsetof(cfg, threads), .min = 1, .max = 1024 },
    { .name = "consistency", .type = SL_OPT_ENUM, .def = "\"auto\"", .offset = offsetof(cfg, consistency), .choices = consistency },
    { .name = "safe", .type = SL_OPT_BOOL, .def = "false", .offset = offsetof(cfg, safe) },
    { .name = "rules", .type = SL_OPT_JSON, .def = "[]", .offset = offsetof(cfg, rules) },
    { .name = "note", .type = SL_OPT_STRING, .offset = offsetof(cfg, note) },
    { .name = NULL },
};

static int dummy_create(const sl_host *h, sl_ctx *c, const void *config, void **self) { return 0; }
static void dummy_destroy(void *self) {}
static int dummy_process(void *self, sl_batch *b) { return 0; }

static const sl_plugin_descriptor desc = {
    .abi_version = SL_ABI_VERSION, .struct_size = sizeof(sl_plugin_descriptor),
    .name = "opt-test", .kind = SL_PLUGIN_SINK, .options = opts, .config_size = sizeof(cfg),
    .create = dummy_create, .process = dummy_process, .destroy = dummy_destroy,
};

typedef struct problems { int n; char text[16][300]; } problems;

static void collect(void *ud, const char *option, const char *msg)
{
    problems *p = ud;
    if (p->n < 16)
        snprintf(p->text[p->n], sizeof p->text[0], "%s|%s", option, msg);
    p->n++;
}

static int has(const problems *p, const char *want)
{
    for (int i = 0; i < p->n && i < 16; i++)
        if (strcmp(p->text[i], want) == 0)
            return 1;
    return 0;
}

static void test_check_ok(void **state)
{
    problems p = { 0 };
    assert_int_equal(sl_options_check(&desc, "{\"host\":\"h\",\"port\":3306}", collect, &p), 0);
    assert_int_equal(p.n, 0);
    assert_int_equal(sl_options_check(&desc,
        "{\"host\":\"h\",\"port\":1,\"consistency\":\"FLUSH\",\"rules\":{\"a\":1},\"safe\":true,\"threads\":1024}",
        collect, &p), 0);
    assert_int_equal(p.n, 0);
}

static void test_check_problems(void **state)
{
    problems p = { 0 };
    assert_int_equal(sl_options_check(&desc,
        "{\"port\":70000,\"threads\":\"4\",\"consistency\":\"snapshot\",\"bogus\":1,\"safe\":1,\"password\":5}",
        collect, &p), SL_EINVAL);
    assert_int_equal(p.n, 7);
    assert_true(has(&p, "/port|option \"port\" must be between 1 and 65535, got 70000"));
    assert_true(has(&p, "/threads|option \"threads\" must be an integer"));
    assert_true(has(&p, "/consistency|option \"consistency\" must be one of \"auto\", \"none\", \"flush\", got \"snapshot\""));
    assert_true(has(&p, "/bogus|unknown option \"bogus\" for plugin opt-test"));
    assert_true(has(&p, "/safe|option \"safe\" must be a boolean"));
    assert_true(has(&p, "/password|option \"password\" must be a string"));
    assert_true(has(&p, "/host|option \"host\" is required"));

    p.n = 0;
    assert_int_equal(sl_options_check(&desc, "[1,2]", collect, &p), SL_EINVAL);
    assert_int_equal(p.n, 1);
    assert_string_equal(p.text[0], "|options must be a JSON object");
    p.n = 0;
    assert_int_equal(sl_options_check(&desc, "{\"host\":", collect, &p), SL_EINVAL);
    assert_int_equal(p.n, 1);
    assert_non_null(strstr(p.text[0], "options are not valid JSON"));
    /* NULL report is allowed */
    assert_int_equal(sl_options_check(&desc, "{}", NULL, NULL), SL_EINVAL);
}

static void test_fill(void **state)
{
    void *v = NULL;
    sl_error e = { 0 };
    assert_int_equal(sl_options_fill(&desc,
        "{\"host\":\"db1\",\"port\":3307,\"password\":\"s3cret\",\"consistency\":\"None\",\"rules\":[{\"schema\":\"a*\"}]}",
        &v, &e), 0);
    cfg *c = v;
    assert_string_equal(c->host, "db1");
    assert_int_equal(c->port, 3307);
    assert_string_equal(c->password, "s3cret");
    assert_int_equal(c->threads, 4);
    assert_int_equal(c->consistency, 1);
    assert_int_equal(c->safe, 0);
    assert_string_equal(c->rules, "[{\"schema\":\"a*\"}]");
    assert_string_equal(c->note, "");   /* no default: empty, never NULL */
    sl_options_free(&desc, v);

    assert_int_equal(sl_options_fill(&desc, "{\"port\":0}", &v, &e), SL_EINVAL);
    assert_null(v);
    assert_string_equal(e.msg, "plugin opt-test: option \"port\" must be between 1 and 65535, got 0 (and 1 more problems)");
}

static void test_resolved(void **state)
{
    char *s = sl_options_resolved_json(&desc, "{\"host\":\"db1\",\"port\":3307,\"password\":\"s3cret\",\"safe\":true}");
    assert_non_null(s);
    assert_null(strstr(s, "s3cret"));
    assert_string_equal(s, "{\"host\":\"db1\",\"port\":3307,\"password\":\"******\",\"threads\":4,"
                           "\"consistency\":\"auto\",\"safe\":true,\"rules\":[]}");
    free(s);
    assert_null(sl_options_resolved_json(&desc, "nope"));
}

static const sl_option bad_default[] = {
    { .name = "n", .type = SL_OPT_INT, .def = "\"four\"", .offset = 0, .min = 0, .max = 10 },
    { .name = NULL },
};

static void test_bad_default(void **state)
{
    sl_plugin_descriptor d = desc;
    d.options = bad_default;
    d.config_size = sizeof(int64_t);
    problems p = { 0 };
    assert_int_equal(sl_options_check(&d, "{}", collect, &p), SL_EINVAL);
    assert_int_equal(p.n, 1);
    assert_string_equal(p.text[0], "/n|option \"n\" has an invalid default \"four\" (plugin bug)");
}

/* An int option declared without .min/.max is unbounded (not 0..0). */
static const sl_option unbounded[] = {
    { .name = "n", .type = SL_OPT_INT, .def = "7", .offset = 0 },
    { .name = NULL },
};

static void test_unbounded_int(void **state)
{
    sl_plugin_descriptor d = desc;
    d.options = unbounded;
    d.config_size = sizeof(int64_t);
    problems p = { 0 };
    assert_int_equal(sl_options_check(&d, "{}", collect, &p), 0);
    assert_int_equal(sl_options_check(&d, "{\"n\": -5}", collect, &p), 0);
    assert_int_equal(sl_options_check(&d, "{\"n\": 9000000000}", collect, &p), 0);
    assert_int_equal(p.n, 0);
    void *c = NULL;
    sl_error e = { 0 };
    assert_int_equal(sl_options_fill(&d, "{\"n\": 9000000000}", &c, &e), 0);
    assert_true(*(int64_t *)c == 9000000000LL);
    sl_options_free(&d, c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_ok),
        cmocka_unit_test(test_check_problems),
        cmocka_unit_test(test_fill),
        cmocka_unit_test(test_resolved),
        cmocka_unit_test(test_bad_default),
        cmocka_unit_test(test_unbounded_int),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
