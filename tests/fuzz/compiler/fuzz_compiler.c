/*
 * fuzz_compiler.c - libFuzzer target: arbitrary bytes as a task document through the whole
 * compiler (parse, checks, plans, option checks against the PLUGINS.md option tables), plus the
 * sources parser and the formatting of diagnostics. Must never crash, leak or trip a sanitizer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/compiler.h"
#include "sluice/runtime.h"
#include "test_plugins.h"

static sl_registry *reg;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!reg) {
        sl_error err = {0};
        if (sl_registry_new(&reg) < 0 || sl_test_plugins_register(reg, &err) < 0)
            abort();
    }
    static const sl_source_def src[] = {
        { .name = "mysql-01", .host = "h", .port = 3306, .user = "u", .flavor = "mysql", .enable_gtid = 1 },
        { .name = "s1", .host = "h", .port = 3307, .user = "u", .flavor = "mariadb" },
    };
    sl_compile_opts o = { .registry = reg, .plugin_dir = "(fuzz)", .sources = src, .nsources = 2,
                          .check_sources = size > 0 && (data[0] & 1), .base_dir = "/nonexistent" };
    sl_diags d = {0};
    sl_task_plan *plan = NULL;
    int rc = sl_task_compile((const char *)data, size, &o, &plan, &d);
    if ((rc == 0) != (plan != NULL) || (rc == 0 && sl_diags_errors(&d) != 0))
        abort();
    free(sl_diags_format(&d));
    sl_task_plan_free(plan);
    sl_diags_free(&d);

    sl_source_def *defs = NULL;
    size_t n = 0;
    if (sl_source_defs_parse((const char *)data, size, &defs, &n, &d) == 0)
        sl_source_defs_free(defs, n);
    sl_diags_free(&d);
    return 0;
}
