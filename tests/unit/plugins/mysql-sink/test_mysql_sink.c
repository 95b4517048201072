/*
 * test_mysql_sink.c - the mysql-sink plugin's checks at create, before it connects (run with the
 * real host, plugtest.h): an sql_mode its statements cannot run under is refused with the mode
 * named, also when a combination mode (ANSI, ORACLE, ...) holds ANSI_QUOTES or when the list
 * has spaces and another case. A mode the sink runs under is tested against the server by
 * sync_e2e and the sql_mode tests.
 */
#include "../plugtest.h"

static const char *opts(const char *mode)
{
    static char b[512];
    snprintf(b, sizeof b, "{\"target_host\":\"127.0.0.1\",\"target_port\":1,\"target_user\":\"u\","
             "\"task_name\":\"t\",\"source_name\":\"s\",\"sql_mode\":\"%s\"}", mode);
    return b;
}

static void refused(const char *mode, const char *word, const char *why)
{
    pt p;
    pt_open(&p, MYSQL_SINK_SO, "mysql-sink", opts(mode));
    if (p.create_rc != SL_EINVAL)
        fail_msg("sql_mode \"%s\": create returned %d (%s), not SL_EINVAL", mode, p.create_rc,
                 pt_error(&p));
    const char *m = pt_error(&p);
    if (!strstr(m, word) || !strstr(m, why))
        fail_msg("sql_mode \"%s\": the error does not say %s %s: %s", mode, word, why, m);
    pt_close(&p);
}

static void test_refused_modes(void **state)
{
    (void)state;
    refused("NO_BACKSLASH_ESCAPES", "NO_BACKSLASH_ESCAPES", "changes how the sink's statements parse");
    refused("STRICT_ALL_TABLES, ansi_quotes", "ANSI_QUOTES", "changes how");
    /* combination modes that set ANSI_QUOTES: the substring test let them through */
    refused("ANSI", "ANSI", "sets ANSI_QUOTES");
    refused("STRICT_TRANS_TABLES,ORACLE", "ORACLE", "sets ANSI_QUOTES");
    refused("postgresql", "POSTGRESQL", "sets ANSI_QUOTES");
    refused("MSSQL", "MSSQL", "sets ANSI_QUOTES");
    refused("DB2", "DB2", "sets ANSI_QUOTES");
    refused("MAXDB", "MAXDB", "sets ANSI_QUOTES");
    refused("EMPTY_STRING_IS_NULL", "EMPTY_STRING_IS_NULL", "empty strings as NULL");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused_modes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
