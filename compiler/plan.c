/*
 * plan.c - sl_task_compile: parses the task, runs the checks of task.c, then builds one subtask
 * per source (phases of pipeline stages with their options) and validates every stage's options
 * against its plugin's declared option table. The compiler knows nothing else of a plugin.
 */
#include "task.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Where each option of a stage came from in the task, so a plugin's complaint about an option
 * is reported at the field the user wrote. */
#define PMAP_MAX 48
typedef struct pmap {
    size_t n;
    struct { const char *opt; char path[512]; } v[PMAP_MAX];
} pmap;

typedef struct builder {
    tc                  *c;
    tk_task             *t;
    tk_source           *s;
    const sl_compile_opts *opts;
    const char          *root;         /* "" or "/task" */
    char                 srcpath[256]; /* the source_conf entry */
    const char          *missing[16];  /* plugins already reported missing */
    size_t               nmissing;
    json_t              *merged;       /* merge_targets_json of the task, once per compile */
    json_t              *mschemas;     /* merge_schemas_json of the task, once per compile */
} builder;

/* Record that option name comes from the task field at rel, so that a plugin's complaint about
 * it is reported there (or not at all, when the task checks already did). */
static void map_path(pmap *pm, const char *name, const builder *b, const char *rel)
{
    if (pm->n < PMAP_MAX) {
        char *path = pm->v[pm->n].path;
        size_t cap = sizeof pm->v[pm->n].path;
        int w;
        pm->v[pm->n].opt = name;
        if (rel && rel[0] == '@')   /* relative to the source_conf entry */
            w = snprintf(path, cap, "%s%s", b->srcpath, rel + 1);
        else if (rel)
            w = snprintf(path, cap, "%s%s", b->root, rel);
        else
            w = snprintf(path, cap, "%s", b->srcpath);
        /* a user's very long option name makes a cut path in a message, nothing worse */
        if (w < 0 || (size_t)w >= cap)
            memcpy(path + cap - 4, "...", 4);
        pm->n++;
    }
}

static void set(json_t *o, pmap *pm, const char *name, json_t *v, const builder *b, const char *rel)
{
    if (!v)
        return;
    json_object_set_new(o, name, v);
    map_path(pm, name, b, rel);
}

static json_t *jstr(const char *s) { return json_string(s ? s : ""); }

static void conn_source(json_t *o, pmap *pm, const builder *b)
{
    const sl_source_def *d = b->s->def;
    set(o, pm, "source_host", jstr(d ? d->host : ""), b, NULL);
    set(o, pm, "source_port", json_integer(d && d->port ? d->port : 3306), b, NULL);
    set(o, pm, "source_user", jstr(d ? d->user : ""), b, NULL);
    set(o, pm, "source_password", jstr(d ? d->password : ""), b, NULL);
    set(o, pm, "source_ssl_ca", jstr(d ? d->ssl_ca : ""), b, NULL);
    set(o, pm, "source_ssl_cert", jstr(d ? d->ssl_cert : ""), b, NULL);
    set(o, pm, "source_ssl_key", jstr(d ? d->ssl_key : ""), b, NULL);
    set(o, pm, "source_cert_allowed_cn", jstr(d ? d->cert_allowed_cn : ""), b, NULL);
}

static void conn_target(json_t *o, pmap *pm, const builder *b)
{
    const tk_task *t = b->t;
    /* missing or bad in the task: no option, but the plugin's "is required" maps to the field
     * the task checks reported, so it is not said twice at the stage's path */
    if (t->tgt.host)
        set(o, pm, "target_host", jstr(t->tgt.host), b, "/target_config/host");
    else
        map_path(pm, "target_host", b, "/target_config/host");
    if (t->tgt.port)
        set(o, pm, "target_port", json_integer(t->tgt.port), b, "/target_config/port");
    else
        map_path(pm, "target_port", b, "/target_config/port");
    if (t->tgt.user)
        set(o, pm, "target_user", jstr(t->tgt.user), b, "/target_config/user");
    else
        map_path(pm, "target_user", b, "/target_config/user");
    set(o, pm, "target_password", jstr(t->tgt.password), b, "/target_config/password");
    set(o, pm, "target_ssl_ca", jstr(t->tgt.ssl_ca), b, "/target_config/security/ssl_ca_content");
    set(o, pm, "target_ssl_cert", jstr(t->tgt.ssl_cert), b, "/target_config/security/ssl_cert_content");
    set(o, pm, "target_ssl_key", jstr(t->tgt.ssl_key), b, "/target_config/security/ssl_key_content");
    char *cns = sl_cert_allowed_cn_join(json_object_get(json_object_get(t->obj, "target_config"),
                                                        "security"));
    set(o, pm, "target_cert_allowed_cn", jstr(cns), b, "/target_config/security/cert_allowed_cn");
    free(cns);
}

static void identity(json_t *o, pmap *pm, const builder *b)
{
    if (b->t->name)
        set(o, pm, "task_name", jstr(b->t->name), b, "/name");
    set(o, pm, "source_name", jstr(b->s->name), b, "@/source_name");
    set(o, pm, "meta_schema", jstr(b->t->meta_schema), b, "/meta_schema");
}

/* The `rules` option of one source: its table_migrate_rules in task order, filters resolved. */
static int in_list(const json_t *only, size_t idx)
{
    size_t i;
    json_t *x;
    json_array_foreach(only, i, x)
        if (json_integer_value(x) == (json_int_t)idx)
            return 1;
    return 0;
}

/* only: table_migrate_rule indexes to keep (a custom stage's "rules"), or NULL for all. */
static json_t *rules_json(const builder *b, const json_t *only)
{
    const tk_task *t = b->t;
    json_t *a = json_array();
    for (size_t i = 0; a && i < t->nrules; i++) {
        const tk_rule *r = &t->rules[i];
        if (r->src < 0 || &t->srcs[r->src] != b->s || !r->valid)
            continue;
        if (only && !in_list(only, r->idx))
            continue;
        json_t *fs = json_array();
        size_t j;
        json_t *x;
        if (r->filters)
            json_array_foreach(r->filters, j, x) {
                json_t *f = t->filters ? json_object_get(t->filters, json_string_value(x)) : NULL;
                if (!json_is_object(f))
                    continue;
                json_t *ev = json_object_get(f, "ignore_event"), *sq = json_object_get(f, "ignore_sql");
                json_array_append_new(fs, json_pack("{s:O,s:o,s:o}", "name", x,
                                                    "ignore_event", json_is_array(ev) ? json_deep_copy(ev) : json_array(),
                                                    "ignore_sql", json_is_array(sq) ? json_deep_copy(sq) : json_array()));
            }
        json_array_append_new(a, json_pack("{s:s,s:s,s:s,s:s,s:o}", "schema", r->schema,
                                           "table", r->table ? r->table : "",
                                           "target_schema", r->tschema ? r->tschema : "",
                                           "target_table", r->ttable ? r->ttable : "",
                                           "filters", fs ? fs : json_array()));
    }
    return a;
}

static int streq_ci(const char *a, const char *b) { return a && b && strcasecmp(a, b) == 0; }

/* The schema a rule routes into: its target schema, else its source schema (a pattern when
 * that is one: see schema_known). */
static const char *target_schema(const tk_rule *r)
{
    return r->tschema && *r->tschema ? r->tschema : r->schema;
}

/* 1 if the schema a rule routes into is one name: it names a target schema, or its source
 * schema is exact. */
static int schema_known(const tk_rule *r)
{
    return (r->tschema && *r->tschema) || sl_pattern_is_exact(r->ps);
}

/* The exact target of a rule that names one source table exactly (0), or -1. */
static int exact_target(const tk_rule *r, const char **ts, const char **tt)
{
    if (!r->valid || !r->pt || !sl_pattern_is_exact(r->ps) || !sl_pattern_is_exact(r->pt))
        return -1;
    *ts = target_schema(r);
    *tt = r->ttable && *r->ttable ? r->ttable : r->table;
    return 0;
}

/* 1 if rule r keeps its tables' names (no target table) and the schema it routes into is
 * known (schema_known). */
static int pass_through(const tk_rule *r)
{
    return r->valid && !(r->ttable && *r->ttable) && schema_known(r);
}

static void add_target(json_t *a, const char *ts, const char *tt)
{
    size_t k;
    json_t *e;
    json_array_foreach(a, k, e)
        if (streq_ci(json_string_value(json_object_get(e, "schema")), ts) &&
            streq_ci(json_string_value(json_object_get(e, "table")), tt))
            return;
    json_array_append_new(a, json_pack("{s:s,s:s}", "schema", ts, "table", tt));
}

/*
 * The target tables that two rules naming different source tables exactly route into, across
 * every source of the task: [{"schema", "table"}...]. The route stage of each source counts a
 * DDL on such a table as a shard DDL even where its own rules show one shard (one shard per
 * source, DM's usual layout; or a shard that keeps the target's name). Wildcard rules merge by
 * themselves (sl_rules_shard_merge); two wildcard rules of two sources are not compared here.
 */
static json_t *merge_targets_json(const tk_task *t)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < t->nrules; i++) {
        const char *as, *at, *bs, *bt;
        const tk_rule *x = &t->rules[i];
        if (exact_target(x, &as, &at) < 0)
            continue;
        for (size_t j = i + 1; j < t->nrules; j++) {
            const tk_rule *y = &t->rules[j];
            if (exact_target(y, &bs, &bt) < 0 || !streq_ci(as, bs) || !streq_ci(at, bt))
                continue;
            if (x->src == y->src && streq_ci(x->schema, y->schema) && streq_ci(x->table, y->table))
                continue;   /* one source table named twice */
            add_target(a, as, at);
        }
    }
    /* and a rule's target table that a rule keeping its tables' names routes a table of that
     * name into from another source schema (shop_1.t into shop.t, another source's shop_2.*
     * into shop) */
    for (size_t i = 0; a && i < t->nrules; i++) {
        const tk_rule *x = &t->rules[i];
        if (!x->valid || !x->ttable || !*x->ttable || !schema_known(x))
            continue;
        const char *xs = target_schema(x);
        for (size_t j = 0; j < t->nrules; j++) {
            const tk_rule *y = &t->rules[j];
            if (j == i || !pass_through(y) ||
                (x->src == y->src && streq_ci(x->schema, y->schema)) ||
                !streq_ci(xs, target_schema(y)) ||
                (y->pt && !sl_pattern_match(y->pt, x->ttable)))
                continue;
            add_target(a, xs, x->ttable);
        }
    }
    return a;
}

/*
 * The target schemas that rules keeping their tables' names route two source schemas into,
 * across every source (shop_1.* and, from another source, shop_2.* into schema shop):
 * ["schema"...]. A table a rule renames into such a schema may be a shard of another source's
 * table, so the route stage counts its DDL as a shard DDL; one source schema alone in its
 * target schema is only renamed, and its DDL runs as written. A rule with a wildcard schema
 * counts when it names its target schema (shop_* into shop); one that keeps the schemas' names
 * cannot be compared here. A rule with a target table is merge_targets' business.
 */
static json_t *merge_schemas_json(const tk_task *t)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < t->nrules; i++) {
        const tk_rule *x = &t->rules[i];
        if (!pass_through(x))
            continue;
        const char *xs = target_schema(x);
        for (size_t j = i + 1; j < t->nrules; j++) {
            const tk_rule *y = &t->rules[j];
            if (!pass_through(y))
                continue;
            if (!streq_ci(xs, target_schema(y)) || (x->src == y->src && streq_ci(x->schema, y->schema)))
                continue;   /* another target schema, or one source schema */
            size_t k;
            json_t *e;
            int seen = 0;
            json_array_foreach(a, k, e)
                seen |= streq_ci(json_string_value(e), xs);
            if (!seen)
                json_array_append_new(a, json_string(xs));
        }
    }
    return a;
}

/* 1 if a rule of this source routes into one of the merge targets (above). */
static int in_merge_targets(const builder *b)
{
    json_t *m = b->merged;
    int hit = 0;
    for (size_t i = 0; !hit && i < b->t->nrules; i++) {
        const tk_rule *r = &b->t->rules[i];
        const char *ts, *tt;
        if (r->src < 0 || &b->t->srcs[r->src] != b->s || exact_target(r, &ts, &tt) < 0)
            continue;
        size_t k;
        json_t *e;
        json_array_foreach(m, k, e)
            hit |= streq_ci(json_string_value(json_object_get(e, "schema")), ts) &&
                   streq_ci(json_string_value(json_object_get(e, "table")), tt);
    }
    return hit;
}

/* Same rule as sl_rules_shard_merge (match.c), on the model instead of compiled rules: two
 * exact rules into one target are the merge targets (across sources too); a wildcard rule with
 * a target table or a target schema merges by itself. */
static int shard_merge(const builder *b)
{
    const tk_task *t = b->t;
    if (in_merge_targets(b))
        return 1;
    for (size_t i = 0; i < t->nrules; i++) {
        const tk_rule *a = &t->rules[i];
        if (a->src < 0 || &t->srcs[a->src] != b->s || !a->valid)
            continue;
        int tt = a->ttable && *a->ttable, ts = a->tschema && *a->tschema;
        if (tt && (!sl_pattern_is_exact(a->ps) || !a->pt || !sl_pattern_is_exact(a->pt)))
            return 1;
        if (ts && !sl_pattern_is_exact(a->ps))   /* many schemas into one, table or not */
            return 1;
    }
    return 0;
}

/* The `scripts` option of one source: scripts with a table of this source (or of any source). */
static json_t *scripts_json(const builder *b)
{
    const tk_task *t = b->t;
    json_t *a = json_array();
    for (size_t i = 0; a && i < t->nscripts; i++) {
        const tk_script *s = &t->scripts[i];
        if (!s->tables)
            continue;
        json_t *tabs = json_array();
        size_t j;
        json_t *x;
        json_array_foreach(s->tables, j, x) {
            const char *sn = json_string_value(json_object_get(x, "source_name"));
            const char *sch = json_string_value(json_object_get(x, "schema"));
            const char *tb = json_string_value(json_object_get(x, "table"));
            if (!sch || (sn && strcmp(sn, b->s->name) != 0))
                continue;
            json_array_append_new(tabs, json_pack("{s:s,s:s}", "schema", sch, "table", tb ? tb : ""));
        }
        if (json_array_size(tabs) == 0) {
            json_decref(tabs);
            continue;
        }
        json_array_append_new(a, json_pack("{s:o,s:s,s:s,s:s,s:s}", "tables", tabs,
                                           "file", s->abs_file ? s->abs_file : "",
                                           "source", s->source && !s->file ? s->source : "",
                                           "on_row", s->on_row ? s->on_row : "",
                                           "on_ddl", s->on_ddl ? s->on_ddl : ""));
    }
    return a;
}

/* ---- stages and their plugin checks ------------------------------------------------------ */

typedef struct stage {
    const char *id, *plugin;
    json_t     *opts;
    char        idbuf[32];     /* id of a custom stage ("plugin0", "sink") */
    char        where[64];     /* a custom stage: its entry in the task ("/plugins/0") */
    unsigned    want_kind;     /* a custom stage: the kind its place needs, else 0 */
    const char *big_text[2];   /* rules, scripts: serialized once per source */
    pmap        pm;
} stage;

typedef struct problem_ctx { builder *b; const stage *st; } problem_ctx;

static int reported_at(const sl_diags *d, const char *path)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->v[i].severity == SL_DIAG_ERROR && strcmp(d->v[i].path, path) == 0)
            return 1;
    return 0;
}

static void on_problem(void *ud, const char *option, const char *msg)
{
    problem_ctx *p = ud;
    const char *name = option && option[0] == '/' ? option + 1 : option ? option : "";
    const char *path = p->b->srcpath;
    char own[640];
    if (p->st->where[0]) {   /* a custom stage: an option the user did not write (a required one) */
        snprintf(own, sizeof own, "%s%s/options", p->b->root, p->st->where);
        path = own;
    }
    for (size_t i = 0; i < p->st->pm.n; i++)
        if (strcmp(p->st->pm.v[i].opt, name) == 0)
            path = p->st->pm.v[i].path;
    /* The task checks already said it (with a better message) where they cover the field. */
    if (reported_at(p->b->c->d, path))
        return;
    /* An option the user wrote that the plugin does not declare: say which one was meant, as
     * the task's own unknown fields do. */
    const char *near = NULL;
    const sl_plugin_descriptor *d = p->st->where[0] && strncmp(msg, "unknown option", 14) == 0 &&
                                    p->b->opts && p->b->opts->registry
                                    ? sl_registry_find(p->b->opts->registry, p->st->plugin) : NULL;
    if (d) {
        const char *names[64];
        size_t n = 0;
        for (const sl_option *o = d->options; o && o->name && n < 64; o++)
            names[n++] = o->name;
        near = sl__tc_near(name, names, n);
    }
    if (sl_diags_add(p->b->c->d, SL_DIAG_ERROR, SL_TC_PLUGIN, path, "plugin %s (stage %s of source "
                     "%s): %s%s%s%s", p->st->plugin, p->st->id, p->b->s->name, msg,
                     near ? " (did you mean \"" : "", near ? near : "", near ? "\"?)" : "") < 0)
        p->b->c->oom = 1;
}

/* Options that carry the task's rules or scripts can be large (1,000 rules are ~200 KB) and go
 * to several stages of several sources: they are serialized once per source (big_text) and
 * spliced into each stage's text. For the option check a stand-in of the same JSON type ([])
 * is enough: these options are SL_OPT_JSON, and their content was checked by the task checks. */
static const char *const BIG[] = { "rules", "scripts" };

static char *dump_options(const stage *st, int standin)
{
    json_t *small = json_object();
    const char *key;
    json_t *v;
    size_t extra = 0;
    json_object_foreach(st->opts, key, v) {
        int big = 0;
        for (size_t i = 0; i < 2; i++)
            if (strcmp(key, BIG[i]) == 0 && st->big_text[i]) {
                big = 1;
                extra += strlen(key) + strlen(standin ? "[]" : st->big_text[i]) + 4;
            }
        if (!big)
            json_object_set(small, key, v);
    }
    char *txt = small ? json_dumps(small, JSON_COMPACT) : NULL;
    json_decref(small);
    if (!txt || !extra)
        return txt;
    size_t n = strlen(txt);
    char *out = malloc(n + extra + 1);
    if (!out) {
        free(txt);
        return NULL;
    }
    memcpy(out, txt, n - 1);   /* without the closing brace */
    size_t k = n - 1;
    for (size_t i = 0; i < 2; i++) {
        if (!st->big_text[i] || !json_object_get(st->opts, BIG[i]))
            continue;
        const char *val = standin ? "[]" : st->big_text[i];
        k += (size_t)sprintf(out + k, "%s\"%s\":%s", k > 1 ? "," : "", BIG[i], val);
    }
    out[k++] = '}';
    out[k] = '\0';
    free(txt);
    return out;
}

static void check_stage(builder *b, const stage *st)
{
    const sl_plugin_descriptor *d = b->opts && b->opts->registry ? sl_registry_find(b->opts->registry,
                                                                                    st->plugin) : NULL;
    if (!d) {
        for (size_t i = 0; i < b->nmissing; i++)
            if (strcmp(b->missing[i], st->plugin) == 0)
                return;
        if (b->nmissing < sizeof b->missing / sizeof b->missing[0])
            b->missing[b->nmissing++] = st->plugin;
        const char *dir = b->opts && b->opts->plugin_dir ? b->opts->plugin_dir : "(no plugin directory)";
        char path[640];
        snprintf(path, sizeof path, "%s%s%s", b->root, st->where, st->where[0] ? "/name" : "");
        if (sl_diags_add(b->c->d, SL_DIAG_ERROR, SL_TC_PLUGIN, path, "plugin %s not found in %s",
                         st->plugin, dir) < 0)
            b->c->oom = 1;
        return;
    }
    if (st->want_kind && d->kind != st->want_kind) {
        char path[640];
        snprintf(path, sizeof path, "%s%s/name", b->root, st->where);
        const char *why = st->want_kind == SL_PLUGIN_SINK ? "\"sink\" takes a sink plugin"
                        : d->kind == SL_PLUGIN_SINK ? "a stage in \"plugins\" must be a transform; a "
                          "task has one sink, named by \"sink\""
                        : "a stage in \"plugins\" must be a transform";
        if (sl_diags_add(b->c->d, SL_DIAG_ERROR, SL_TC_PLUGIN, path, "plugin %s is a %s: %s",
                         st->plugin, d->kind == SL_PLUGIN_SOURCE ? "source" : d->kind == SL_PLUGIN_SINK
                         ? "sink" : "transform", why) < 0)
            b->c->oom = 1;
        return;
    }
    char *js = dump_options(st, 1);
    if (!js) {
        b->c->oom = 1;
        return;
    }
    problem_ctx p = { b, st };
    sl_options_check(d, js, on_problem, &p);
    free(js);
}

/* Do the stages of one phase fit (plugin capabilities, ABI 1.2)? What reaches each stage is
 * folded from the source through the transforms before it; the first stage that does not fit
 * is reported. Stages whose plugin is missing were reported already: nothing to fold then. */
static void check_fit(builder *b, const stage *st, size_t n, const char *phase_name)
{
    const sl_registry *reg = b->opts ? b->opts->registry : NULL;
    sl_plugin_caps acc, c;
    for (size_t i = 0; i < n; i++) {
        const sl_plugin_descriptor *d = reg ? sl_registry_find(reg, st[i].plugin) : NULL;
        if (!d)
            return;
        sl_plugin_caps_of(d, &c);
        if (i == 0) {
            acc = c;
            continue;
        }
        char msg[512];
        if (sl_plugin_caps_fit(&acc, st[i - 1].plugin, &c, st[i].plugin, msg, sizeof msg) < 0) {
            if (sl_diags_add(b->c->d, SL_DIAG_ERROR, SL_TC_PLUGIN, b->root, "%s phase of source %s: "
                             "stage %s does not fit: %s", phase_name, b->s->name, st[i].id, msg) < 0)
                b->c->oom = 1;
            return;
        }
        sl_plugin_caps_chain(&acc, &c);
    }
}

/*
 * A custom sink in a full phase takes the loader's place: it gets the dump's SL_EV_CHUNK events
 * (one LOAD DATA file each) and must make them its output, so a sink whose caps do not say it
 * takes chunks is refused at "sink", once for all sources, naming the plugin. A sink without
 * caps (ABI < 1.2) is refused too although its default caps take every kind: those defaults
 * describe a change-stream sink, and loading a dump is a promise a plugin must make itself.
 * 1 when it fits (or the plugin is missing or of the wrong kind: check_stage reports that), 0
 * when refused.
 */
static int full_sink_takes_chunks(builder *b)
{
    const sl_plugin_descriptor *d = b->opts && b->opts->registry
                                  ? sl_registry_find(b->opts->registry, b->t->sink) : NULL;
    if (!d || d->kind != SL_PLUGIN_SINK)
        return 1;
    if (SL_DESCRIPTOR_HAS(d, caps) && d->caps && (d->caps->takes & SL_CAP_EV(SL_EV_CHUNK)))
        return 1;
    char path[640];
    snprintf(path, sizeof path, "%s/sink", b->root);
    if (!reported_at(b->c->d, path) &&
        sl_diags_add(b->c->d, SL_DIAG_ERROR, SL_TC_UNSUPPORTED, path, "sink %s does not take "
                     "dump chunks (its caps do not declare SL_EV_CHUNK), so it cannot load the "
                     "full copy of task_mode \"%s\": use it in task_mode \"incremental\"",
                     b->t->sink, b->t->mode) < 0)
        b->c->oom = 1;
    return 0;
}

/* Does the plugin declare an option of this name? (A custom stage gets the task's identity and
 * rules only if it asks for them.) */
static int declares(const builder *b, const char *plugin, const char *opt)
{
    const sl_plugin_descriptor *d = b->opts && b->opts->registry ? sl_registry_find(b->opts->registry,
                                                                                    plugin) : NULL;
    for (const sl_option *o = d ? d->options : NULL; o && o->name; o++)
        if (strcmp(o->name, opt) == 0)
            return 1;
    return 0;
}

/* One custom stage: the user's options, each mapped to /plugins/N/options/KEY (or
 * /sink/options/KEY) so the plugin's own option check reports at the field the user wrote. */
static void custom_stage(builder *b, stage *st, const char *plugin, json_t *uopts, const char *where,
                         unsigned kind, json_t *rules)
{
    memset(st, 0, sizeof *st);
    st->plugin = plugin;
    st->want_kind = kind;
    st->opts = json_object();
    snprintf(st->where, sizeof st->where, "%s", where);
    const char *slash = strrchr(where, '/');
    snprintf(st->idbuf, sizeof st->idbuf, "%s%s", kind == SL_PLUGIN_SINK ? "sink" : "plugin",
             kind == SL_PLUGIN_SINK ? "" : slash + 1);
    st->id = st->idbuf;
    if (!st->opts) {
        json_decref(rules);
        return;
    }
    /* each one only if declared: an undeclared key is an unknown option to the plugin's table */
    if (declares(b, plugin, "task_name") && b->t->name)
        set(st->opts, &st->pm, "task_name", jstr(b->t->name), b, "/name");
    if (declares(b, plugin, "source_name"))
        set(st->opts, &st->pm, "source_name", jstr(b->s->name), b, "@/source_name");
    if (declares(b, plugin, "meta_schema"))
        set(st->opts, &st->pm, "meta_schema", jstr(b->t->meta_schema), b, "/meta_schema");
    if (declares(b, plugin, "rules"))
        set(st->opts, &st->pm, "rules", rules, b, "/table_migrate_rule");
    else
        json_decref(rules);
    const char *key;
    json_t *v;
    char rel[600];
    json_object_foreach(uopts, key, v) {
        snprintf(rel, sizeof rel, "%s/options/%s", where, key);
        set(st->opts, &st->pm, key, json_incref(v), b, rel);
    }
}

/* The task's custom stages that go at this point of this phase, appended at st[*n]. */
static void customs(builder *b, int full, const char *at, stage *st, size_t *n)
{
    const tk_task *t = b->t;
    for (size_t i = 0; i < t->nplugins; i++) {
        const tk_plugin *p = &t->plugins[i];
        if (strcmp(p->at, at) != 0 || !(full ? p->full : p->incr))
            continue;
        char where[64];
        snprintf(where, sizeof where, "/plugins/%zu", p->idx);
        custom_stage(b, &st[(*n)++], p->name, p->options, where, SL_PLUGIN_TRANSFORM,
                     rules_json(b, p->rules));
    }
}

/* Builds the stages of one phase, checks them, and (if out) makes the pipeline spec. */
static int phase(builder *b, const char *phase_name, json_t *rules, sl_pipeline_spec **out)
{
    const tk_task *t = b->t;
    int full = strcmp(phase_name, "full") == 0;
    int lua = 0;
    json_t *scripts = scripts_json(b);
    lua = scripts && json_array_size(scripts) > 0;
    stage st[6 + SL__TASK_PLUGINS_MAX];
    size_t n = 0;
    memset(st, 0, sizeof st);
    const char *mode = t->mode && (strcmp(t->mode, "dump") == 0 || strcmp(t->mode, "load") == 0) ? t->mode : "full";
    const char *thr = "/source_config/full_migrate_conf/";
    char p1[128], p2[128], p3[128], p4[128];
    if (full) {
        st[n] = (stage){ .id = "dump", .plugin = "mysql-dump", .opts = json_object() };
        conn_source(st[n].opts, &st[n].pm, b);
        identity(st[n].opts, &st[n].pm, b);
        set(st[n].opts, &st[n].pm, "rules", json_incref(rules), b, "/table_migrate_rule");
        conn_target(st[n].opts, &st[n].pm, b);
        snprintf(p1, sizeof p1, "%sexport_threads", thr);
        snprintf(p2, sizeof p2, "%sconsistency", thr);
        snprintf(p3, sizeof p3, "%sdata_dir", thr);
        set(st[n].opts, &st[n].pm, "export_threads", json_integer(t->export_threads), b, p1);
        set(st[n].opts, &st[n].pm, "consistency", jstr(t->consistency), b, p2);
        set(st[n].opts, &st[n].pm, "data_dir", jstr(t->data_dir), b, p3);
        set(st[n].opts, &st[n].pm, "mode", jstr(mode), b, "/task_mode");
        if (t->stream) {
            snprintf(p4, sizeof p4, "%sstream", thr);
            set(st[n].opts, &st[n].pm, "stream", json_true(), b, p4);
        }
        if (!t->eosc)
            set(st[n].opts, &st[n].pm, "online_ddl", json_false(), b,
                "/enhance_online_schema_change");
        /* the incremental phase's schema tracker starts from the snapshot's structures */
        if (t->mode && strcmp(t->mode, "all") == 0)
            set(st[n].opts, &st[n].pm, "seed_tracker", json_true(), b, "/task_mode");
        n++;
        /* A full copy has no event filter: "after-filter" is right after the dump. */
        customs(b, 1, "after-filter", st, &n);
        st[n] = (stage){ .id = "route", .plugin = "route", .opts = json_object() };
        set(st[n].opts, &st[n].pm, "rules", json_incref(rules), b, "/table_migrate_rule");
        n++;
        customs(b, 1, "after-route", st, &n);
    } else {
        const tk_source *s = b->s;
        st[n] = (stage){ .id = "reader", .plugin = "binlog-reader", .opts = json_object() };
        conn_source(st[n].opts, &st[n].pm, b);
        conn_target(st[n].opts, &st[n].pm, b);
        identity(st[n].opts, &st[n].pm, b);
        set(st[n].opts, &st[n].pm, "rules", json_incref(rules), b, "/table_migrate_rule");
        if (s->def && s->def->flavor)
            set(st[n].opts, &st[n].pm, "flavor", jstr(s->def->flavor), b, NULL);
        if (s->def)
            set(st[n].opts, &st[n].pm, "enable_gtid", json_boolean(s->def->enable_gtid), b, NULL);
        if (s->binlog_name)
            set(st[n].opts, &st[n].pm, "binlog_name", jstr(s->binlog_name), b, "@/binlog_name");
        if (s->has_pos)
            set(st[n].opts, &st[n].pm, "binlog_pos", json_integer(s->binlog_pos), b, "@/binlog_pos");
        if (s->binlog_gtid)
            set(st[n].opts, &st[n].pm, "binlog_gtid", jstr(s->binlog_gtid), b, "@/binlog_gtid");
        if (s->def && s->def->relay_dir)
            set(st[n].opts, &st[n].pm, "relay_dir", jstr(s->def->relay_dir), b, NULL);
        /* the reader follows gh-ost/pt-osc by default, as DM does: only "off" is said */
        if (!t->eosc)
            set(st[n].opts, &st[n].pm, "online_ddl", json_false(), b,
                "/enhance_online_schema_change");
        n++;
        st[n] = (stage){ .id = "filter", .plugin = "event-filter", .opts = json_object() };
        set(st[n].opts, &st[n].pm, "rules", json_incref(rules), b, "/table_migrate_rule");
        n++;
        customs(b, 0, "after-filter", st, &n);
        st[n] = (stage){ .id = "route", .plugin = "route", .opts = json_object() };
        set(st[n].opts, &st[n].pm, "rules", json_incref(rules), b, "/table_migrate_rule");
        /* DDL arrives here only: the task-wide merged tables (merge_targets_json) */
        if (json_array_size(b->merged) && declares(b, "route", "merge_targets"))
            set(st[n].opts, &st[n].pm, "merge_targets", json_incref(b->merged), b,
                "/table_migrate_rule");
        if (json_array_size(b->mschemas) && declares(b, "route", "merge_schemas"))
            set(st[n].opts, &st[n].pm, "merge_schemas", json_incref(b->mschemas), b,
                "/table_migrate_rule");
        n++;
        customs(b, 0, "after-route", st, &n);
    }
    if (lua) {
        st[n] = (stage){ .id = "lua", .plugin = "lua-hook", .opts = json_object() };
        set(st[n].opts, &st[n].pm, "scripts", json_incref(scripts), b, "/lua_scripts");
        n++;
    }
    customs(b, full, "before-sink", st, &n);
    int fits = 1;
    if (full && t->sink) {
        /* the dump's chunks go to the custom sink instead of the loader */
        fits = full_sink_takes_chunks(b);
        custom_stage(b, &st[n], t->sink, t->sink_options, "/sink", SL_PLUGIN_SINK, json_incref(rules));
        n++;
    } else if (full) {
        st[n] = (stage){ .id = "load", .plugin = "loader", .opts = json_object() };
        conn_target(st[n].opts, &st[n].pm, b);
        identity(st[n].opts, &st[n].pm, b);
        snprintf(p1, sizeof p1, "%simport_threads", thr);
        snprintf(p3, sizeof p3, "%sdata_dir", thr);
        snprintf(p4, sizeof p4, "%son_duplicate_logical", thr);
        set(st[n].opts, &st[n].pm, "import_threads", json_integer(t->import_threads), b, p1);
        if (!t->sql_log_bin) {     /* only when the user said so: the loader's default is true */
            snprintf(p2, sizeof p2, "%ssql_log_bin", thr);
            set(st[n].opts, &st[n].pm, "sql_log_bin", json_false(), b, p2);
        }
        set(st[n].opts, &st[n].pm, "on_duplicate", jstr(t->on_duplicate), b,
            t->on_duplicate_path_logical ? p4 : "/on_duplicate");
        set(st[n].opts, &st[n].pm, "data_dir", jstr(t->data_dir), b, p3);
        set(st[n].opts, &st[n].pm, "mode", jstr(mode), b, "/task_mode");
        n++;
    } else if (t->sink) {
        custom_stage(b, &st[n], t->sink, t->sink_options, "/sink", SL_PLUGIN_SINK, json_incref(rules));
        n++;
    } else {
        st[n] = (stage){ .id = "sink", .plugin = "mysql-sink", .opts = json_object() };
        conn_target(st[n].opts, &st[n].pm, b);
        identity(st[n].opts, &st[n].pm, b);
        snprintf(p1, sizeof p1, "/source_config/incr_migrate_conf/repl_threads");
        snprintf(p2, sizeof p2, "/source_config/incr_migrate_conf/repl_batch");
        snprintf(p3, sizeof p3, "/source_config/incr_migrate_conf/safe_mode");
        set(st[n].opts, &st[n].pm, "repl_threads", json_integer(t->repl_threads), b, p1);
        set(st[n].opts, &st[n].pm, "repl_batch", json_integer(t->repl_batch), b, p2);
        set(st[n].opts, &st[n].pm, "safe_mode", json_boolean(t->safe_mode), b, p3);
        if (t->shard_mode)
            set(st[n].opts, &st[n].pm, "shard_mode", jstr(t->shard_mode), b, "/shard_mode");
        if (t->strict_optimistic)
            set(st[n].opts, &st[n].pm, "strict_optimistic", json_true(), b,
                "/strict_optimistic_shard_mode");
        n++;
    }
    char *rules_txt = json_dumps(rules, JSON_COMPACT);
    char *scripts_txt = scripts ? json_dumps(scripts, JSON_COMPACT) : NULL;
    json_decref(scripts);
    if (!rules_txt)
        b->c->oom = 1;
    for (size_t i = 0; i < n; i++) {
        if (st[i].want_kind)   /* a custom stage's rules may be a subset: serialized as they are */
            continue;
        st[i].big_text[0] = rules_txt;
        st[i].big_text[1] = scripts_txt;
    }

    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (!st[i].opts)
            b->c->oom = 1;
        else
            check_stage(b, &st[i]);
    }
    if (fits)   /* a refused full sink was reported at "sink" already */
        check_fit(b, st, n, phase_name);
    if (out && !b->c->oom) {
        sl_pipeline_spec *sp = calloc(1, sizeof *sp);
        char name[512];
        snprintf(name, sizeof name, "%s/%s/%s", t->name, b->s->name, phase_name);
        if (sp) {
            sp->name = strdup(name);
            sp->stages = calloc(n, sizeof *sp->stages);
            sp->edges = calloc(n, sizeof *sp->edges);
        }
        if (!sp || !sp->name || !sp->stages || !sp->edges) {
            sl_pipeline_spec_free(sp);
            rc = SL_ENOMEM;
        } else {
            for (size_t i = 0; i < n; i++) {
                sl_stage_spec *ss = &sp->stages[sp->nstages++];
                ss->id = strdup(st[i].id);
                ss->plugin = strdup(st[i].plugin);
                ss->options_json = dump_options(&st[i], 0);
                if (!ss->id || !ss->plugin || !ss->options_json)
                    rc = SL_ENOMEM;
                if (i > 0)
                    sp->edges[sp->nedges++] = (sl_edge_spec){ (uint32_t)(i - 1), (uint32_t)i };
            }
            if (rc < 0)
                sl_pipeline_spec_free(sp);
            else
                *out = sp;
        }
    }
    for (size_t i = 0; i < n; i++)
        json_decref(st[i].opts);
    free(rules_txt);
    free(scripts_txt);
    return rc;
}

/* ---- the plan ----------------------------------------------------------------------------- */

void sl_task_plan_free(sl_task_plan *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nsubtasks; i++) {
        sl_subtask_plan *s = &p->subtasks[i];
        for (size_t j = 0; j < s->nphases; j++) {
            sl_pipeline_spec_free(s->phases[j]);
            free(s->phase_names[j]);
        }
        free(s->phases);
        free(s->phase_names);
        free(s->source_name);
    }
    free(p->subtasks);
    free(p->name);
    free(p->task_mode);
    json_decref(p->task);
    free(p);
}

sl_task_plan *sl_task_plan_bare(json_t *task)
{
    json_t *sc = json_object_get(json_object_get(task, "source_config"), "source_conf");
    const char *name = json_string_value(json_object_get(task, "name"));
    const char *mode = json_string_value(json_object_get(task, "task_mode"));
    size_t n = json_array_size(sc);
    sl_task_plan *p = calloc(1, sizeof *p);
    if (!p || !(p->subtasks = calloc(n + 1, sizeof *p->subtasks))) {
        free(p);
        return NULL;
    }
    p->name = strdup(name ? name : "");
    p->task_mode = strdup(mode ? mode : "");
    p->task = json_incref(task);
    int oom = !p->name || !p->task_mode;
    for (size_t i = 0; i < n && !oom; i++) {
        const char *s = json_string_value(json_object_get(json_array_get(sc, i), "source_name"));
        oom = !(p->subtasks[i].source_name = strdup(s ? s : ""));
        p->nsubtasks += !oom;
    }
    if (oom) {
        sl_task_plan_free(p);
        return NULL;
    }
    return p;
}

/* The task with its defaults written in (what explain shows and the server stores). */
static json_t *normalized(const tk_task *t)
{
    json_t *o = json_deep_copy(t->obj);
    if (!o)
        return NULL;
    json_object_del(o, "status_list");
    if (!json_object_get(o, "meta_schema"))
        json_object_set_new(o, "meta_schema", json_string(t->meta_schema));
    if (!json_object_get(o, "enhance_online_schema_change"))
        json_object_set_new(o, "enhance_online_schema_change", json_boolean(t->eosc));
    if (!json_object_get(o, "on_duplicate"))
        json_object_set_new(o, "on_duplicate", json_string("overwrite"));
    json_t *sc = json_object_get(o, "source_config");
    if (json_is_object(sc)) {
        json_t *f = json_object_get(sc, "full_migrate_conf");
        if (!json_is_object(f)) {
            f = json_object();
            json_object_set_new(sc, "full_migrate_conf", f);
        }
        json_object_set_new(f, "export_threads", json_integer(t->export_threads));
        json_object_set_new(f, "import_threads", json_integer(t->import_threads));
        if (!t->sql_log_bin)
            json_object_set_new(f, "sql_log_bin", json_false());
        if (t->stream)
            json_object_set_new(f, "stream", json_true());
        json_object_set_new(f, "data_dir", json_string(t->data_dir));
        json_object_set_new(f, "consistency", json_string(t->consistency));
        json_t *in = json_object_get(sc, "incr_migrate_conf");
        if (!json_is_object(in)) {
            in = json_object();
            json_object_set_new(sc, "incr_migrate_conf", in);
        }
        json_object_set_new(in, "repl_threads", json_integer(t->repl_threads));
        json_object_set_new(in, "repl_batch", json_integer(t->repl_batch));
        json_object_set_new(in, "safe_mode", json_boolean(t->safe_mode));
    }
    return o;
}

static int build_sources(builder *b, sl_task_plan *plan);

static int build_plans(tc *c, tk_task *t, const sl_compile_opts *opts, const char *root,
                       sl_task_plan *plan)
{
    builder b = { .c = c, .t = t, .opts = opts, .root = root, .merged = merge_targets_json(t),
                  .mschemas = merge_schemas_json(t) };
    if (!b.merged || !b.mschemas) {
        json_decref(b.merged);
        json_decref(b.mschemas);
        return SL_ENOMEM;
    }
    int rc = build_sources(&b, plan);
    json_decref(b.merged);
    json_decref(b.mschemas);
    return rc;
}

/* The subtask plans of every source of the task, with b's task-wide parts. */
static int build_sources(builder *b, sl_task_plan *plan)
{
    tc *c = b->c;
    tk_task *t = b->t;
    const char *root = b->root;
    int want = plan != NULL;
    int full = t->mode && strcmp(t->mode, "incremental") != 0;
    int incr = t->mode && (strcmp(t->mode, "incremental") == 0 || strcmp(t->mode, "all") == 0);
    for (size_t i = 0; i < t->nsrcs; i++) {
        tk_source *s = &t->srcs[i];
        if (!s->name)
            continue;
        b->s = s;
        snprintf(b->srcpath, sizeof b->srcpath, "%s/source_config/source_conf/%zu", root, s->idx);
        json_t *rules = rules_json(b, NULL);
        if (!rules)
            return SL_ENOMEM;
        sl_subtask_plan *sp = want ? &plan->subtasks[plan->nsubtasks++] : NULL;
        if (sp) {
            sp->source_name = strdup(s->name);
            sp->phases = calloc(2, sizeof *sp->phases);
            sp->phase_names = calloc(2, sizeof *sp->phase_names);
            sp->nrules = s->nrules;
            sp->merges = shard_merge(b);
            sp->shard_merge = t->shard_mode != NULL || sp->merges;
            sp->source_known = s->def != NULL;
            if (!sp->source_name || !sp->phases || !sp->phase_names) {
                json_decref(rules);
                return SL_ENOMEM;
            }
        }
        const char *names[2];
        size_t np = 0;
        if (full)
            names[np++] = "full";
        if (incr)
            names[np++] = "incremental";
        for (size_t k = 0; k < np; k++) {
            sl_pipeline_spec *ps = NULL;
            int rc = phase(b, names[k], rules, sp ? &ps : NULL);
            if (rc < 0) {
                json_decref(rules);
                return rc;
            }
            if (sp) {
                sp->phases[sp->nphases] = ps;
                sp->phase_names[sp->nphases] = strdup(names[k]);
                sp->nphases++;
                if (!sp->phase_names[sp->nphases - 1]) {
                    json_decref(rules);
                    return SL_ENOMEM;
                }
            }
        }
        json_decref(rules);
    }
    return c->oom ? SL_ENOMEM : 0;
}

int sl_task_compile(const char *json, size_t len, const sl_compile_opts *opts, sl_task_plan **out,
                    sl_diags *diags)
{
    if (out)
        *out = NULL;
    json_error_t je;
    json_t *root = json_loadb(json ? json : "", json ? len : 0, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        sl_diags local = {0};
        tc c = { .d = diags ? diags : &local };
        sl__tc_json_error(&c, json ? json : "", json ? len : 0, &je);
        sl_diags_free(&local);
        return c.oom ? SL_ENOMEM : SL_EPARSE;
    }
    int rc = sl_task_compile_json(root, opts, out, diags);
    json_decref(root);
    return rc;
}

int sl_task_compile_json(json_t *root, const sl_compile_opts *opts, sl_task_plan **out,
                         sl_diags *diags)
{
    sl_diags local = {0};
    if (!diags)
        diags = &local;
    if (out)
        *out = NULL;
    tc c = { .d = diags };
    size_t before = sl_diags_errors(diags);
    int rc = 0;
    tk_task t = {0};
    const char *rootpath = "";
    if (!json_is_object(root)) {
        sl__tc_err(&c, NULL, SL_TC_TYPE, "a task must be a JSON object, not %s", sl__tc_typename(root));
        goto done;
    }
    t.obj = root;
    if (json_object_get(root, "task") && !json_object_get(root, "name")) {
        static const char *const WRAP[] = { "task", NULL };
        sl__tc_known(&c, root, WRAP);
        t.obj = sl__tc_get(&c, root, "task", TC_OBJ, 1);
        if (!t.obj)
            goto done;
        sl__tc_push(&c, "task");
        rootpath = "/task";
    }
    sl__tk_check(&c, &t, opts);
    if (c.oom)
        goto done;
    /* The pipelines are built even when the task has errors: the plugins' option checks are
     * part of the one pass. The plan itself is handed out only for a task with no error. */
    int ok = sl_diags_errors(diags) == before;
    sl_task_plan *plan = NULL;
    if (ok && out) {
        plan = calloc(1, sizeof *plan);
        if (!plan || !(plan->subtasks = calloc(t.nsrcs + 1, sizeof *plan->subtasks))) {
            free(plan);
            rc = SL_ENOMEM;
            goto done;
        }
    }
    rc = build_plans(&c, &t, opts, rootpath, plan);
    if (rc == 0 && plan && sl_diags_errors(diags) == before) {
        plan->name = strdup(t.name);
        plan->task_mode = strdup(t.mode);
        plan->task = normalized(&t);
        if (!plan->name || !plan->task_mode || !plan->task)
            rc = SL_ENOMEM;
    }
    if (plan && (rc < 0 || sl_diags_errors(diags) != before)) {
        sl_task_plan_free(plan);
        plan = NULL;
    }
    if (plan)
        *out = plan;
done:
    sl__tk_free(&t);
    if (rc == 0 && c.oom)
        rc = SL_ENOMEM;
    if (rc == 0 && sl_diags_errors(diags) != before)
        rc = SL_EINVAL;
    sl_diags_free(&local);
    return rc;
}
