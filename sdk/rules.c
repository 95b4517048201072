/*
 * rules.c - the compiled `rules` option (match.h): table_migrate_rules of one source with their
 * patterns, routes and filters (event types and ignore_sql), shared by the compiler and the
 * plugins that route and filter.
 */
#include "sdk_int.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- compiled rules ---------------------------------------------------------------------- */

typedef struct filt {
    size_t         nev;
    int           *ev;      /* event type indexes (sl__evt_index) in task order (DM's first-match semantics) */
    pcre2_code    *sql;     /* ignore_sql patterns joined, NULL if none */
} filt;

typedef struct rule {
    sl_pattern *schema;
    sl_pattern *table;      /* NULL: schema-level rule */
    char       *tschema;    /* NULL: unchanged */
    char       *ttable;
    size_t      nf;
    filt       *f;
} rule;

struct sl_rules {
    size_t n;
    rule  *v;
};

void sl_rules_free(sl_rules *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++) {
        rule *ru = &r->v[i];
        sl_pattern_free(ru->schema);
        sl_pattern_free(ru->table);
        free(ru->tschema);
        free(ru->ttable);
        for (size_t j = 0; j < ru->nf; j++) {
            free(ru->f[j].ev);
            pcre2_code_free(ru->f[j].sql);
        }
        free(ru->f);
    }
    free(r->v);
    free(r);
}

/* Optional string member: NULL if absent or null; -1 if present with another type. */
static int opt_str(json_t *o, const char *k, const char **out)
{
    json_t *v = json_object_get(o, k);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return -1;
    *out = json_string_value(v);
    return 0;
}

static int compile_filter(json_t *fj, filt *f, size_t ri, size_t fi, sl_error *err)
{
    if (!json_is_object(fj))
        return sl_error_set(err, SL_EINVAL, "rule %zu: filter %zu is not an object", ri, fi);
    json_t *ev = json_object_get(fj, "ignore_event"), *sq = json_object_get(fj, "ignore_sql");
    if (ev && !json_is_null(ev)) {
        if (!json_is_array(ev))
            return sl_error_set(err, SL_EINVAL, "rule %zu: filter %zu: ignore_event is not an array", ri, fi);
        f->ev = calloc(json_array_size(ev) + 1, sizeof *f->ev);
        if (!f->ev)
            return sl_error_set(err, SL_ENOMEM, "out of memory");
        size_t k;
        json_t *x;
        json_array_foreach(ev, k, x) {
            int idx = json_is_string(x) ? sl__evt_index(json_string_value(x)) : -1;
            if (idx < 0)
                return sl_error_set(err, SL_EINVAL, "rule %zu: filter %zu: unknown event type %s%s%s", ri,
                              fi, json_is_string(x) ? "\"" : "",
                              json_is_string(x) ? json_string_value(x) : "(not a string)",
                              json_is_string(x) ? "\"" : "");
            f->ev[f->nev++] = idx;
        }
    }
    if (sq && !json_is_null(sq)) {
        if (!json_is_array(sq))
            return sl_error_set(err, SL_EINVAL, "rule %zu: filter %zu: ignore_sql is not an array", ri, fi);
        /* DM joins the patterns with '|' into one regex; grouping each one keeps a pattern's
         * own alternation from leaking into its neighbours. */
        size_t cap = 1, k;
        json_t *x;
        json_array_foreach(sq, k, x) {
            if (!json_is_string(x))
                return sl_error_set(err, SL_EINVAL, "rule %zu: filter %zu: ignore_sql/%zu is not a string",
                              ri, fi, k);
            sl_error e = {0};
            if (sl_regex_check(json_string_value(x), &e) < 0)
                return sl_error_set(err, e.code, "rule %zu: filter %zu: ignore_sql/%zu: %s", ri, fi, k, e.msg);
            cap += json_string_length(x) + 5;
        }
        if (json_array_size(sq) > 0) {
            char *joined = malloc(cap), *p = joined;
            if (!joined)
                return sl_error_set(err, SL_ENOMEM, "out of memory");
            json_array_foreach(sq, k, x) {
                if (k)
                    *p++ = '|';
                memcpy(p, "(?:", 3);
                p += 3;
                memcpy(p, json_string_value(x), json_string_length(x));
                p += json_string_length(x);
                *p++ = ')';
            }
            sl_error e = {0};
            f->sql = sl__re_compile(joined, (size_t)(p - joined), &e);
            free(joined);
            if (!f->sql)
                return sl_error_set(err, e.code, "rule %zu: filter %zu: ignore_sql: %s", ri, fi, e.msg);
        }
    }
    return 0;
}

int sl_rules_new(const char *rules_json, sl_rules **out, sl_error *err)
{
    *out = NULL;
    json_error_t je;
    json_t *root = json_loads(rules_json ? rules_json : "", JSON_DECODE_ANY, &je);
    if (!root)
        return sl_error_set(err, SL_EPARSE, "rules: %s (line %d, column %d)", je.text, je.line, je.column);
    if (!json_is_array(root)) {
        json_decref(root);
        return sl_error_set(err, SL_EINVAL, "rules must be a JSON array");
    }
    sl_rules *r = calloc(1, sizeof *r);
    if (!r || !(r->v = calloc(json_array_size(root) + 1, sizeof *r->v))) {
        free(r);
        json_decref(root);
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    }
    int rc = 0;
    size_t i;
    json_t *rj;
    json_array_foreach(root, i, rj) {
        rule *ru = &r->v[r->n++];
        const char *schema, *table, *ts, *tt;
        if (!json_is_object(rj)) {
            rc = sl_error_set(err, SL_EINVAL, "rule %zu is not an object", i);
            break;
        }
        if (opt_str(rj, "schema", &schema) < 0 || opt_str(rj, "table", &table) < 0 ||
            opt_str(rj, "target_schema", &ts) < 0 || opt_str(rj, "target_table", &tt) < 0) {
            rc = sl_error_set(err, SL_EINVAL, "rule %zu: schema, table, target_schema and target_table "
                        "must be strings", i);
            break;
        }
        if (!schema || !*schema) {
            rc = sl_error_set(err, SL_EINVAL, "rule %zu: schema pattern is required", i);
            break;
        }
        sl_error e = {0};
        if ((rc = sl_pattern_compile(schema, &ru->schema, &e)) < 0 ||
            (table && *table && (rc = sl_pattern_compile(table, &ru->table, &e)) < 0)) {
            rc = sl_error_set(err, rc, "rule %zu: %s", i, e.msg);
            break;
        }
        if ((ts && *ts && !(ru->tschema = strdup(ts))) || (tt && *tt && !(ru->ttable = strdup(tt)))) {
            rc = sl_error_set(err, SL_ENOMEM, "out of memory");
            break;
        }
        json_t *fs = json_object_get(rj, "filters");
        if (fs && !json_is_null(fs)) {
            if (!json_is_array(fs)) {
                rc = sl_error_set(err, SL_EINVAL, "rule %zu: filters is not an array", i);
                break;
            }
            if (!(ru->f = calloc(json_array_size(fs) + 1, sizeof *ru->f))) {
                rc = sl_error_set(err, SL_ENOMEM, "out of memory");
                break;
            }
            size_t k;
            json_t *fj;
            json_array_foreach(fs, k, fj) {
                ru->nf++;
                if ((rc = compile_filter(fj, &ru->f[k], i, k, err)) < 0)
                    break;
            }
            if (rc < 0)
                break;
        }
    }
    json_decref(root);
    if (rc < 0) {
        sl_rules_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

size_t sl_rules_count(const sl_rules *r) { return r ? r->n : 0; }

int sl_rules_find(const sl_rules *r, const char *schema, const char *table)
{
    if (!r || !schema)
        return -1;
    int schema_level = -1;
    for (size_t i = 0; i < r->n; i++) {
        const rule *ru = &r->v[i];
        if (!sl_pattern_match(ru->schema, schema))
            continue;
        if (ru->table) {
            if (table && *table && sl_pattern_match(ru->table, table))
                return (int)i;   /* the first table-level match wins over any schema-level one */
        } else if (schema_level < 0) {
            schema_level = (int)i;
        }
    }
    return schema_level;
}

void sl_rules_target(const sl_rules *r, int rule_i, const char *schema, const char *table,
                     const char **tschema, const char **ttable)
{
    *tschema = schema;
    *ttable = table;
    if (!r || rule_i < 0 || (size_t)rule_i >= r->n)
        return;
    const rule *ru = &r->v[rule_i];
    if (ru->tschema)
        *tschema = ru->tschema;
    if (ru->ttable)
        *ttable = ru->ttable;
}

int sl_rules_ignores_event(const sl_rules *r, int rule_i, const char *dm_event)
{
    if (!r || rule_i < 0 || (size_t)rule_i >= r->n)
        return 0;
    int ev = sl__evt_index(dm_event);
    if (ev < 0 || sl__evt_is_group(ev))
        return 0;
    const rule *ru = &r->v[rule_i];
    for (size_t j = 0; j < ru->nf; j++) {
        for (size_t k = 0; k < ru->f[j].nev; k++) {
            int c = sl__evt_covers(ru->f[j].ev[k], ev);
            if (c == 1)
                return 1;
            if (c < 0)
                break;
        }
    }
    return 0;
}

int sl_rules_ignores_sql(const sl_rules *r, int rule_i, const char *sql, size_t len)
{
    if (!r || rule_i < 0 || (size_t)rule_i >= r->n || !sql)
        return 0;
    const rule *ru = &r->v[rule_i];
    for (size_t j = 0; j < ru->nf; j++) {
        if (!ru->f[j].sql)
            continue;
        int rc = sl__re_search(ru->f[j].sql, sql, len);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int sl_rules_schema_selected(const sl_rules *r, const char *schema)
{
    if (!r || !schema)
        return 0;
    for (size_t i = 0; i < r->n; i++)
        if (sl_pattern_match(r->v[i].schema, schema))
            return 1;
    return 0;
}

static int streq_ci(const char *a, const char *b) { return a && b && strcasecmp(a, b) == 0; }

int sl_rules_merges(const sl_rules *r, int rule_i)
{
    if (!r || rule_i < 0 || (size_t)rule_i >= r->n)
        return 0;
    const rule *a = &r->v[rule_i];
    if (a->ttable && (!sl_pattern_is_exact(a->schema) || !a->table || !sl_pattern_is_exact(a->table)))
        return 1;
    /* many schemas into one target schema, all their tables or one (shop_*.orders) */
    if (a->tschema && !sl_pattern_is_exact(a->schema))
        return 1;
    /* two rules naming different source tables exactly, routed into one target table */
    if (!a->table || !sl_pattern_is_exact(a->schema) || !sl_pattern_is_exact(a->table))
        return 0;
    const char *as = a->tschema ? a->tschema : sl_pattern_text(a->schema);
    const char *at = a->ttable ? a->ttable : sl_pattern_text(a->table);
    for (size_t j = 0; j < r->n; j++) {
        const rule *b = &r->v[j];
        if (j == (size_t)rule_i || !b->table || !sl_pattern_is_exact(b->schema) ||
            !sl_pattern_is_exact(b->table))
            continue;
        if (streq_ci(sl_pattern_text(a->schema), sl_pattern_text(b->schema)) &&
            streq_ci(sl_pattern_text(a->table), sl_pattern_text(b->table)))
            continue;   /* one source table named twice */
        if (streq_ci(as, b->tschema ? b->tschema : sl_pattern_text(b->schema)) &&
            streq_ci(at, b->ttable ? b->ttable : sl_pattern_text(b->table)))
            return 1;
    }
    return 0;
}

int sl_rules_shard_merge(const sl_rules *r)
{
    for (size_t i = 0; r && i < r->n; i++)
        if (sl_rules_merges(r, (int)i))
            return 1;
    return 0;
}

int sl_rules_has_filters(const sl_rules *r, int rule_i)
{
    if (!r || rule_i < 0 || (size_t)rule_i >= r->n)
        return 0;
    return r->v[rule_i].nf > 0;
}
