/*
 * verify.c - `sluice verify`: the offline comparison of a task's source and target tables. The
 * task is compiled as check-task compiles it, so the tables, their routing (shard merge
 * included), filters and Lua scripts are the compiler's; the comparison itself is
 * plugins/common/verify.c, run on scheduler threads.
 */
#include "cli.h"
#include "verify.h"
#include "sluice/compiler.h"
#include "sluice/match.h"
#include "sluice/runtime.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_THREADS 64

typedef struct vargs {
    const char *file, *sources, *plugin_dir, *repair;
    unsigned    threads, retries, retry_ms;
    size_t      chunk_rows;
    double      cps;
} vargs;

/* One source of the task: its connection and compiled rules (from its first stage's options). */
typedef struct vsrc {
    sl_myconn_opts conn;
    json_t        *opts;      /* owns the strings conn points to */
    sl_rules      *rules;
    json_t        *scripts;   /* lua-hook scripts of this source, or NULL */
} vsrc;

static int parse(int argc, char **argv, vargs *a)
{
    memset(a, 0, sizeof *a);
    a->threads = 2;
    a->retry_ms = 1000;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(o, "--sources") == 0 && val)
            a->sources = argv[++i];
        else if (strcmp(o, "--plugin-dir") == 0 && val)
            a->plugin_dir = argv[++i];
        else if (strcmp(o, "--repair-sql") == 0 && val)
            a->repair = argv[++i];
        else if (strcmp(o, "--threads") == 0 && val) {
            long n = strtol(argv[++i], NULL, 10);
            if (n < 1 || n > MAX_THREADS) {
                fprintf(stderr, "sluice verify: --threads must be 1..%d\n", MAX_THREADS);
                return -1;
            }
            a->threads = (unsigned)n;
        } else if (strcmp(o, "--chunk-rows") == 0 && val) {
            long n = strtol(argv[++i], NULL, 10);
            if (n < 1 || n > 10000000) {
                fprintf(stderr, "sluice verify: --chunk-rows must be 1..10000000\n");
                return -1;
            }
            a->chunk_rows = (size_t)n;
        } else if ((strcmp(o, "--retries") == 0 || strcmp(o, "--retry-delay-ms") == 0) && val) {
            long n = strtol(argv[++i], NULL, 10);
            if (n < 0 || n > 3600000) {
                fprintf(stderr, "sluice verify: %s must be 0..3600000\n", o);
                return -1;
            }
            *(strcmp(o, "--retries") == 0 ? &a->retries : &a->retry_ms) = (unsigned)n;
        } else if (strcmp(o, "--chunks-per-second") == 0 && val) {
            char *end;
            a->cps = strtod(argv[++i], &end);
            if (*end || a->cps < 0) {
                fprintf(stderr, "sluice verify: --chunks-per-second must be a number >= 0\n");
                return -1;
            }
        } else if (o[0] == '-' && o[1]) {
            fprintf(stderr, "sluice verify: unknown option or missing value: %s\n", o);
            return -1;
        } else if (!a->file)
            a->file = o;
        else {
            fprintf(stderr, "sluice verify: one task file only\n");
            return -1;
        }
    }
    if (!a->file || !a->sources) {
        fprintf(stderr, "sluice verify: usage: sluice verify TASK --sources FILE [options]\n");
        return -1;
    }
    return 0;
}

static const char *jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* Connection options of `who` ("source"/"target") out of a stage's options object. */
static sl_myconn_opts conn_of(json_t *o, const char *who)
{
    char k[32];
#define F(f) (snprintf(k, sizeof k, "%s_" #f, who), jstr(o, k))
    sl_myconn_opts c = {
        .host = F(host), .user = F(user), .password = F(password),
        .ssl_ca = F(ssl_ca), .ssl_cert = F(ssl_cert), .ssl_key = F(ssl_key),
        .init_sql = "SET time_zone='+00:00'",
    };
    snprintf(k, sizeof k, "%s_port", who);
    c.port = (int)json_integer_value(json_object_get(o, k));
#undef F
    return c;
}

/* The Lua script that handles schema.table, or NULL. */
static const char *lua_for(json_t *scripts, const char *schema, const char *table)
{
    size_t i, j;
    json_t *s, *t;
    json_array_foreach(scripts, i, s) {
        json_array_foreach(json_object_get(s, "tables"), j, t) {
            sl_pattern *ps = NULL, *pt = NULL;
            sl_error e = {0};
            int hit = sl_pattern_compile(jstr(t, "schema"), &ps, &e) == 0 &&
                      sl_pattern_match(ps, schema) &&
                      (!*jstr(t, "table") ||
                       (sl_pattern_compile(jstr(t, "table"), &pt, &e) == 0 && sl_pattern_match(pt, table)));
            sl_pattern_free(ps);
            sl_pattern_free(pt);
            if (hit)
                return jstr(s, "file");
        }
    }
    return NULL;
}

static sl_verify_table *find_target(sl_verify_table *v, size_t n, const char *s, const char *t)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].tschema, s) == 0 && strcmp(v[i].ttable, t) == 0)
            return &v[i];
    return NULL;
}

/* The routed tables of every source, grouped by target table (a group of several = shard
 * merge). Tables a filter or a Lua script changes are marked excluded with the reason. */
static int collect(vsrc *src, size_t nsrc, sl_verify_table **out, size_t *nout)
{
    sl_verify_table *v = NULL;
    size_t n = 0, cap = 0;
    for (size_t s = 0; s < nsrc; s++) {
        sl_error err = {0};
        MYSQL *db = sl_myconn_open(&src[s].conn, &err);
        if (!db) {
            fprintf(stderr, "sluice verify: source: %s\n", err.msg);
            return -1;
        }
        const char *q = "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE "
                        "TABLE_TYPE='BASE TABLE' AND TABLE_SCHEMA NOT IN "
                        "('mysql','information_schema','performance_schema','sys') "
                        "ORDER BY TABLE_SCHEMA, TABLE_NAME";
        if (sl_verify_query(db, q, strlen(q), &err) < 0) {
            fprintf(stderr, "sluice verify: listing source tables: %s\n", err.msg);
            mysql_close(db);
            return -1;
        }
        MYSQL_RES *res = mysql_store_result(db);
        MYSQL_ROW r;
        while (res && (r = mysql_fetch_row(res))) {
            int rule = sl_rules_find(src[s].rules, r[0], r[1]);
            if (rule < 0)
                continue;
            const char *ts, *tt;
            sl_rules_target(src[s].rules, rule, r[0], r[1], &ts, &tt);
            sl_verify_table *g = find_target(v, n, ts, tt);
            if (!g) {
                if (n == cap) {
                    cap = cap ? cap * 2 : 16;
                    sl_verify_table *nv = realloc(v, cap * sizeof *nv);
                    if (!nv)
                        abort();
                    v = nv;
                }
                g = &v[n++];
                memset(g, 0, sizeof *g);
                g->tschema = strdup(ts);
                g->ttable = strdup(tt);
            }
            sl_verify_src *ns = realloc(g->src, (g->nsrc + 1) * sizeof *ns);
            if (!ns || !g->tschema || !g->ttable)
                abort();
            g->src = ns;
            g->src[g->nsrc++] = (sl_verify_src){ &src[s].conn, strdup(r[0]), strdup(r[1]) };
            char why[512];
            const char *lua = src[s].scripts ? lua_for(src[s].scripts, r[0], r[1]) : NULL;
            why[0] = 0;
            if (sl_rules_has_filters(src[s].rules, rule))
                snprintf(why, sizeof why, "a binlog filter rule of the task ignores some events of "
                         "`%s`.`%s`, so the target may differ from it by design", r[0], r[1]);
            else if (lua)
                snprintf(why, sizeof why, "the Lua script %s rewrites the rows of `%s`.`%s`; the "
                         "columns it changes are not known, so the table is not compared", lua, r[0], r[1]);
            if (why[0] && !g->excluded)
                g->excluded = strdup(why);
        }
        if (res)
            mysql_free_result(res);
        mysql_close(db);
    }
    *out = v;
    *nout = n;
    return 0;
}

static void work(void *arg)
{
    sl_verify_work(arg);
}

int sl_cli_verify(int argc, char **argv)
{
    vargs a;
    if (parse(argc, argv, &a) < 0)
        return 2;
    sl_task_plan *plan = NULL;
    sl_registry *reg = NULL;
    int rc = sl__cli_compile(a.file, a.sources, a.plugin_dir, &plan, &reg);
    if (rc != 0) {
        sl_task_plan_free(plan);
        sl_registry_free(reg);
        return rc;
    }
    vsrc *src = calloc(plan->nsubtasks, sizeof *src);
    sl_myconn_opts target = {0};
    sl_verify_table *tables = NULL;
    size_t ntables = 0;
    FILE *repair = NULL;
    sl_scheduler *sched = NULL;
    rc = 2;
    if (!src)
        goto out;
    for (size_t i = 0; i < plan->nsubtasks; i++) {
        const sl_pipeline_spec *p = plan->subtasks[i].phases[0];
        json_error_t je;
        src[i].opts = json_loads(p->stages[0].options_json, 0, &je);
        sl_error err = {0};
        char *rules = src[i].opts ? json_dumps(json_object_get(src[i].opts, "rules"), JSON_COMPACT) : NULL;
        int bad = !rules || sl_rules_new(rules, &src[i].rules, &err) < 0;
        free(rules);
        if (bad) {
            fprintf(stderr, "sluice verify: source %s: rules: %s\n", plan->subtasks[i].source_name, err.msg);
            goto out;
        }
        src[i].conn = conn_of(src[i].opts, "source");
        target = conn_of(src[i].opts, "target");
        for (size_t k = 0; k < p->nstages; k++)
            if (strcmp(p->stages[k].plugin, "lua-hook") == 0) {
                json_t *o = json_loads(p->stages[k].options_json, 0, &je);
                src[i].scripts = o ? json_incref(json_object_get(o, "scripts")) : NULL;
                json_decref(o);
            }
    }
    if (collect(src, plan->nsubtasks, &tables, &ntables) < 0)
        goto out;
    if (a.repair && !(repair = fopen(a.repair, "w"))) {
        perror(a.repair);
        goto out;
    }
    for (size_t i = 0; i < ntables; i++)
        if (tables[i].nsrc > 1)
            printf("shard merge: `%s`.`%s` is compared with the union of %zu source tables\n",
                   tables[i].tschema, tables[i].ttable, tables[i].nsrc);
    sl_verify v;
    sl_verify_opts vo = { .target = &target, .chunk_rows = a.chunk_rows,
                          .chunks_per_second = a.cps, .retries = a.retries,
                          .retry_ms = a.retry_ms, .report = stdout, .repair = repair };
    if (sl_verify_init(&v, &vo, tables, ntables) < 0 || sl_scheduler_new(NULL, &sched) < 0)
        goto out;
    sl_thread *th[MAX_THREADS];
    unsigned nth = 0;
    for (; nth < a.threads; nth++)
        if (sl_thread_spawn(sched, "verify", work, &v, &th[nth]) < 0)
            break;
    if (nth == 0)
        sl_verify_work(&v);
    for (unsigned i = 0; i < nth; i++)
        sl_thread_join(th[i]);
    const sl_verify_stats *s = &v.stats;
    printf("verified %llu tables (%llu excluded), %llu source rows in %llu chunks (%llu differing): "
           "%llu missing, %llu extra, %llu different\n", s->tables, s->excluded, s->rows, s->chunks,
           s->chunks_differing, s->missing, s->extra, s->different);
    if (v.rc < 0) {
        fprintf(stderr, "sluice verify: %s\n", v.err.msg);
        rc = 2;
    } else
        rc = s->missing + s->extra + s->different ? 1 : 0;
    sl_verify_destroy(&v);
out:
    if (repair && fclose(repair) != 0)
        rc = 2;
    sl_scheduler_free(sched);
    for (size_t i = 0; i < ntables; i++) {
        for (size_t j = 0; j < tables[i].nsrc; j++) {
            free(tables[i].src[j].schema);
            free(tables[i].src[j].table);
        }
        free(tables[i].src);
        free(tables[i].tschema);
        free(tables[i].ttable);
        free(tables[i].excluded);
    }
    free(tables);
    for (size_t i = 0; src && i < plan->nsubtasks; i++) {
        sl_rules_free(src[i].rules);
        json_decref(src[i].scripts);
        json_decref(src[i].opts);
    }
    free(src);
    sl_task_plan_free(plan);
    sl_registry_free(reg);
    return rc;
}
