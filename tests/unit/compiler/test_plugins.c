/*
 * test_plugins.c - descriptors with the option tables of PLUGINS.md and do-nothing callbacks,
 * for the compiler's unit tests and fuzz target (the real plugins are tested by the corpus).
 */
#include "test_plugins.h"

#include <stddef.h>

static int t_create(const sl_host *h, sl_ctx *c, const void *cfg, void **self) { *self = NULL; return 0; }
static int t_run(void *self) { return SL_DONE; }
static int t_process(void *self, sl_batch *b) { return 0; }
static void t_destroy(void *self) {}

#define S(n, d) { .name = n, .type = SL_OPT_STRING, .def = d }
#define SR(n) { .name = n, .type = SL_OPT_STRING, .flags = SL_OPTF_REQUIRED }
#define SS(n) { .name = n, .type = SL_OPT_STRING, .def = "\"\"", .flags = SL_OPTF_SECRET }
#define I(n, d, lo, hi) { .name = n, .type = SL_OPT_INT, .def = d, .min = lo, .max = hi }
#define IR(n, lo, hi) { .name = n, .type = SL_OPT_INT, .min = lo, .max = hi, .flags = SL_OPTF_REQUIRED }
#define B(n, d) { .name = n, .type = SL_OPT_BOOL, .def = d }
#define E(n, d, ch) { .name = n, .type = SL_OPT_ENUM, .def = d, .choices = ch }
#define J(n) { .name = n, .type = SL_OPT_JSON, .flags = SL_OPTF_REQUIRED }
#define JD(n, d) { .name = n, .type = SL_OPT_JSON, .def = d }
#define CONN(p) SR(p "host"), IR(p "port", 1, 65535), SR(p "user"), SS(p "password"), \
    S(p "ssl_ca", "\"\""), S(p "ssl_cert", "\"\""), SS(p "ssl_key"), S(p "cert_allowed_cn", "\"\"")
#define IDENT SR("task_name"), SR("source_name"), S("meta_schema", "\"dm_meta\"")
#define END { .name = NULL }

static const char *const CONSIST[] = { "auto", "none", "flush", "snapshot", "lock", NULL };
static const char *const MODES[] = { "full", "dump", "load", NULL };
static const char *const DUP[] = { "overwrite", "replace", "error", "ignore", NULL };
static const char *const FLAVOR[] = { "mariadb", "mysql", NULL };

static const sl_option DUMP_OPTS[] = {
    CONN("source_"), CONN("target_"), IDENT, J("rules"),
    I("export_threads", "4", 1, 1024), E("consistency", "\"auto\"", CONSIST),
    S("data_dir", "\"./dumped_data\""), I("chunk_rows", "100000", 1, 100000000),
    E("mode", "\"full\"", MODES), B("seed_tracker", "false"), B("stream", "false"), END
};
static const sl_option LOADER_OPTS[] = {
    CONN("target_"), IDENT, I("import_threads", "16", 1, 1024), E("on_duplicate", "\"overwrite\"", DUP),
    S("data_dir", "\"./dumped_data\""), E("mode", "\"full\"", MODES), B("sql_log_bin", "true"), END
};
static const sl_option READER_OPTS[] = {
    CONN("source_"), CONN("target_"), IDENT, J("rules"), E("flavor", "\"mariadb\"", FLAVOR),
    B("enable_gtid", "false"), S("binlog_name", "\"\""), I("binlog_pos", "4", 4, INT64_MAX),
    S("binlog_gtid", "\"\""), I("server_id", "0", 0, 4294967295LL), I("heartbeat_ms", "1000", 1, 3600000), END
};
static const sl_option RULES_OPTS[] = { J("rules"), END };
static const sl_option ROUTE_OPTS[] = {
    J("rules"), JD("merge_targets", "[]"), JD("merge_schemas", "[]"), END
};
static const sl_option SINK_OPTS[] = {
    CONN("target_"), IDENT, I("repl_threads", "16", 1, 1024), I("repl_batch", "100", 1, 100000),
    B("safe_mode", "false"), END
};
static const sl_option LUA_OPTS[] = {
    J("scripts"), I("instruction_budget", "1000000", 1000, 1000000000), I("memory_limit_mb", "64", 1, 4096), END
};
/* Custom stages a task may name ("plugins", "sink"): a transform and a sink of no built-in. */
static const sl_option TAG_OPTS[] = { J("rules"), IDENT, SR("tag"), I("every", "1", 1, 1000000), END };
static const sl_option JSONL_OPTS[] = { IDENT, SR("path"), I("flush_rows", "1000", 1, 1000000), END };

static const sl_plugin_caps CHUNK_CAPS = {
    .struct_size = sizeof(sl_plugin_caps), .takes = SL_CAP_EV_ALL, .order = SL_CAP_ORDER_NEEDS,
    .delivery = SL_CAP_EXACTLY_ONCE,
};

#define DESC(nm, k, opts) { .abi_version = SL_ABI_VERSION, .struct_size = sizeof(sl_plugin_descriptor), \
    .name = nm, .kind = k, .description = "test descriptor", .options = opts, .config_size = 8, \
    .create = t_create, .run = t_run, .process = t_process, .destroy = t_destroy }

static const sl_plugin_descriptor DESCS[] = {
    DESC("mysql-dump", SL_PLUGIN_SOURCE, DUMP_OPTS),
    DESC("loader", SL_PLUGIN_SINK, LOADER_OPTS),
    DESC("binlog-reader", SL_PLUGIN_SOURCE, READER_OPTS),
    DESC("event-filter", SL_PLUGIN_TRANSFORM, RULES_OPTS),
    DESC("route", SL_PLUGIN_TRANSFORM, ROUTE_OPTS),
    DESC("mysql-sink", SL_PLUGIN_SINK, SINK_OPTS),
    DESC("lua-hook", SL_PLUGIN_TRANSFORM, LUA_OPTS),
    DESC("tag-rows", SL_PLUGIN_TRANSFORM, TAG_OPTS),
    DESC("jsonl-sink", SL_PLUGIN_SINK, JSONL_OPTS),
    /* a sink that says it takes dump chunks: it may take the loader's place in a full phase */
    { .abi_version = SL_ABI_VERSION, .struct_size = sizeof(sl_plugin_descriptor),
      .name = "chunk-sink", .kind = SL_PLUGIN_SINK, .description = "test descriptor",
      .options = JSONL_OPTS, .config_size = 8, .create = t_create, .process = t_process,
      .destroy = t_destroy, .caps = &CHUNK_CAPS },
};

int sl_test_plugins_register(sl_registry *reg, sl_error *err)
{
    for (size_t i = 0; i < sizeof DESCS / sizeof DESCS[0]; i++) {
        int rc = sl_registry_add(reg, &DESCS[i], err);
        if (rc < 0)
            return rc;
    }
    return 0;
}
