/*
 * full_run.c - sluice-full-run: runs one full-migration pipeline (mysql-dump -> route -> loader) in
 * process, exactly as the compiler lays it out for task_mode full/dump/load, against the servers
 * named by the SLUICE_SOURCE_* / SLUICE_TARGET_* environment, until it is Finished. Used by the
 * integration tests (which SIGKILL it mid-load) and by bench/full.sh.
 *
 *   sluice-full-run --task T --source S --data-dir D --rules JSON [--mode full|dump|load]
 *       [--export-threads N] [--import-threads N] [--chunk-rows N] [--on-duplicate X]
 *       [--consistency X] [--meta-schema M] [--no-route] [--no-sql-log-bin] [--no-bulk-insert] [--progress]
 *       [--fence-epoch N]
 *
 * Prints the pipeline's final status JSON on stdout; exits 0 when Finished, 2 on error.
 */
#include <dlfcn.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <mysql.h>
#include <sluice/runtime.h>

#ifndef SLUICE_BUILD_PLUGIN_DIR
#define SLUICE_BUILD_PLUGIN_DIR ""
#endif

static const char *env(const char *k, const char *def)
{
    const char *v = getenv(k);
    return v && *v ? v : def;
}

static void conn(json_t *o, const char *prefix, const char *envp)
{
    char k[64], e[64];
    const char *f[] = {"host", "port", "user", "password"};
    for (int i = 0; i < 4; i++) {
        snprintf(k, sizeof k, "%s%s", prefix, f[i]);
        char up[16];
        snprintf(up, sizeof up, "%s", f[i]);
        for (char *p = up; *p; p++)
            *p = (char)(*p - 32);
        snprintf(e, sizeof e, "%s_%s", envp, up);
        const char *v = env(e, i == 0 ? "127.0.0.1" : i == 1 ? "3306" : i == 2 ? "root" : "");
        json_object_set_new(o, k, i == 1 ? json_integer(atoi(v)) : json_string(v));
    }
}

static char *opts_json(json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

int main(int argc, char **argv)
{
    const char *task = "full-test", *source = "src", *data_dir = "./dumped_data", *rules = NULL;
    const char *mode = "full", *dup = "overwrite", *cons = "auto", *meta = "dm_meta";
    long ethreads = 4, ithreads = 4, chunk_rows = 100000, fence = 0;
    int route = 1, progress = 0, log_bin = 1, bulk = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name, var) if (strcmp(a, name) == 0 && v) { var = v; i++; continue; }
#define NARG(name, var) if (strcmp(a, name) == 0 && v) { var = atol(v); i++; continue; }
        ARG("--task", task) ARG("--source", source) ARG("--data-dir", data_dir) ARG("--rules", rules)
        ARG("--mode", mode) ARG("--on-duplicate", dup) ARG("--consistency", cons)
        ARG("--meta-schema", meta)
        NARG("--export-threads", ethreads) NARG("--import-threads", ithreads)
        NARG("--chunk-rows", chunk_rows) NARG("--fence-epoch", fence)
        if (strcmp(a, "--no-route") == 0) { route = 0; continue; }
        if (strcmp(a, "--no-sql-log-bin") == 0) { log_bin = 0; continue; }
        if (strcmp(a, "--no-bulk-insert") == 0) { bulk = 0; continue; }
        if (strcmp(a, "--progress") == 0) { progress = 1; continue; }
        fprintf(stderr, "sluice-full-run: unknown argument %s\n", a);
        return 2;
    }
    if (!rules)
        rules = "[{\"schema\":\"*\",\"table\":\"\",\"target_schema\":\"\",\"target_table\":\"\",\"filters\":[]}]";
    json_error_t je;
    json_t *rj = json_loads(rules, 0, &je);
    if (!rj) {
        fprintf(stderr, "sluice-full-run: --rules: %s\n", je.text);
        return 2;
    }

    json_t *d = json_object();
    conn(d, "source_", "SLUICE_SOURCE");
    conn(d, "target_", "SLUICE_TARGET");
    json_object_set_new(d, "task_name", json_string(task));
    json_object_set_new(d, "source_name", json_string(source));
    json_object_set_new(d, "meta_schema", json_string(meta));
    json_object_set(d, "rules", rj);
    json_object_set_new(d, "export_threads", json_integer(ethreads));
    json_object_set_new(d, "consistency", json_string(cons));
    json_object_set_new(d, "data_dir", json_string(data_dir));
    json_object_set_new(d, "chunk_rows", json_integer(chunk_rows));
    json_object_set_new(d, "mode", json_string(mode));

    json_t *l = json_object();
    conn(l, "target_", "SLUICE_TARGET");
    json_object_set_new(l, "task_name", json_string(task));
    json_object_set_new(l, "source_name", json_string(source));
    json_object_set_new(l, "meta_schema", json_string(meta));
    json_object_set_new(l, "import_threads", json_integer(ithreads));
    json_object_set_new(l, "on_duplicate", json_string(dup));
    json_object_set_new(l, "data_dir", json_string(data_dir));
    json_object_set_new(l, "mode", json_string(mode));
    json_object_set_new(l, "sql_log_bin", json_boolean(log_bin));
    json_object_set_new(l, "bulk_insert", json_boolean(bulk));
    if (fence)
        json_object_set_new(l, "fence_epoch", json_integer(fence));

    json_t *r = json_object();
    json_object_set(r, "rules", rj);
    json_decref(rj);

    size_t n = route ? 3 : 2;
    sl_pipeline_spec *spec = calloc(1, sizeof *spec);
    char name[256];
    snprintf(name, sizeof name, "%s/%s/full", task, source);
    spec->name = strdup(name);
    spec->nstages = n;
    spec->stages = calloc(n, sizeof *spec->stages);
    spec->stages[0] = (sl_stage_spec){strdup("dump"), strdup("mysql-dump"), opts_json(d)};
    if (route)
        spec->stages[1] = (sl_stage_spec){strdup("route"), strdup("route"), opts_json(r)};
    else
        json_decref(r);
    spec->stages[n - 1] = (sl_stage_spec){strdup("load"), strdup("loader"), opts_json(l)};
    spec->nedges = n - 1;
    spec->edges = calloc(n, sizeof *spec->edges);
    for (size_t i = 0; i + 1 < n; i++)
        spec->edges[i] = (sl_edge_spec){(uint32_t)i, (uint32_t)i + 1};

    /* The client library (and OpenSSL under it) is initialised once here and never ended:
     * mysql_library_end() leaves OpenSSL's one-time state unreachable, which LeakSanitizer
     * reports. */
    mysql_library_init(0, NULL, NULL);
    const char *dir = env("SLUICE_PLUGIN_DIR", SLUICE_BUILD_PLUGIN_DIR);
    sl_registry *reg = NULL;
    sl_scheduler *sched = NULL;
    sl_pipeline *p = NULL;
    sl_error err = {0};
    int rc = sl_registry_new(&reg);
    const char *plugins[] = {"mysql-dump", "route", "loader"};
    for (size_t i = 0; rc == 0 && i < 3; i++) {
        if (!route && i == 1)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/sluice-%s.so", dir, plugins[i]);
        /* RTLD_NODELETE: process-wide state a plugin's static libraries set up once (PCRE2
         * match context, ...) stays mapped after the registry's dlclose, so the leak checker
         * sees it as reachable and symbolizes what it reports. */
        if (!dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE)) {
            rc = sl_error_set(&err, SL_ENOENT, "%s", dlerror());
            break;
        }
        rc = sl_registry_load(reg, path, &err);
    }
    if (rc == 0)
        rc = sl_scheduler_new(NULL, &sched);
    if (rc == 0)
        rc = sl_pipeline_new(sched, reg, spec, NULL, &p, &err);
    sl_pipeline_spec_free(spec);
    if (rc == 0)
        rc = sl_pipeline_start(p);
    int status = 2;
    if (rc == 0) {
        sl_stage st;
        while ((st = sl_pipeline_wait(p, progress ? 1000 : -1)) == SL_STAGE_RUNNING) {
            char *s = sl_pipeline_status_json(p);
            fprintf(stderr, "%s\n", s ? s : "");
            free(s);
        }
        char *s = sl_pipeline_status_json(p);
        printf("%s\n", s ? s : "{}");
        free(s);
        if (st == SL_STAGE_FINISHED) {
            status = 0;
        } else {
            sl_pipeline_error(p, &err);
            fprintf(stderr, "sluice-full-run: pipeline %s: %s\n", sl_stage_name(st), err.msg);
        }
    } else {
        fprintf(stderr, "sluice-full-run: %s\n", err.msg[0] ? err.msg : sl_strerror(rc));
    }
    sl_pipeline_free(p);
    sl_scheduler_free(sched);
    sl_registry_free(reg);
    return status;
}
