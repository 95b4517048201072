/*
 * options.c - applies a plugin's option table (plugin.h sl_option) to a JSON object of options:
 * validation with one report per problem, filling the plugin's config struct, and the resolved
 * view with defaults applied and secrets masked.
 */
#include "sluice/runtime.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SECRET_MASK "******"

static const sl_option *find_option(const sl_plugin_descriptor *d, const char *name)
{
    if (!d->options)
        return NULL;
    for (const sl_option *o = d->options; o->name; o++)
        if (strcmp(o->name, name) == 0)
            return o;
    return NULL;
}

/* The options object: NULL or "" text is an empty object. Returns a new reference or NULL with
 * *msg set when the text is not a JSON object. */
static json_t *parse_object(const char *json, char *msg, size_t msglen)
{
    if (!json || !*json)
        return json_object();
    json_error_t je;
    json_t *o = json_loads(json, JSON_DECODE_ANY, &je);
    if (!o) {
        snprintf(msg, msglen, "options are not valid JSON: %s (line %d, column %d)", je.text,
                 je.line, je.column);
        return NULL;
    }
    if (!json_is_object(o)) {
        json_decref(o);
        snprintf(msg, msglen, "options must be a JSON object");
        return NULL;
    }
    return o;
}

static const char *type_name(sl_opt_type t)
{
    switch (t) {
    case SL_OPT_BOOL:   return "a boolean";
    case SL_OPT_INT:    return "an integer";
    case SL_OPT_STRING: return "a string";
    case SL_OPT_ENUM:   return "a string";
    case SL_OPT_JSON:   return "any JSON value";
    }
    return "?";
}

static int enum_index(const sl_option *o, const char *s)
{
    for (int i = 0; o->choices[i]; i++)
        if (strcasecmp(o->choices[i], s) == 0)
            return i;
    return -1;
}

/* An int option is bounded unless min > max, or both are 0 (left out of a designated
 * initializer: a 0..0 range would refuse even the option's own default). */
static int has_bounds(const sl_option *o)
{
    return o->min <= o->max && !(o->min == 0 && o->max == 0);
}

/* Checks one value against its option; writes a message and returns -1 on a problem. */
static int check_value(const sl_option *o, const json_t *v, char *msg, size_t msglen)
{
    switch (o->type) {
    case SL_OPT_BOOL:
        if (!json_is_boolean(v))
            goto wrong_type;
        return 0;
    case SL_OPT_INT:
        if (!json_is_integer(v))
            goto wrong_type;
        if (has_bounds(o) && (json_integer_value(v) < o->min || json_integer_value(v) > o->max)) {
            snprintf(msg, msglen, "option \"%s\" must be between %lld and %lld, got %lld", o->name,
                     (long long)o->min, (long long)o->max, (long long)json_integer_value(v));
            return -1;
        }
        return 0;
    case SL_OPT_STRING:
        if (!json_is_string(v))
            goto wrong_type;
        return 0;
    case SL_OPT_ENUM: {
        if (!json_is_string(v))
            goto wrong_type;
        if (enum_index(o, json_string_value(v)) < 0) {
            size_t n = (size_t)snprintf(msg, msglen, "option \"%s\" must be one of ", o->name);
            for (int i = 0; o->choices[i] && n < msglen; i++)
                n += (size_t)snprintf(msg + n, msglen - n, "%s\"%s\"", i ? ", " : "", o->choices[i]);
            if (n < msglen)
                snprintf(msg + n, msglen - n, ", got \"%s\"", json_string_value(v));
            return -1;
        }
        return 0;
    }
    case SL_OPT_JSON:
        return 0;
    }
wrong_type:
    snprintf(msg, msglen, "option \"%s\" must be %s", o->name, type_name(o->type));
    return -1;
}

/* Parses an option's default; NULL when it has none. Returns -1 if the default is malformed
 * (a plugin bug, reported like a problem). */
static int default_value(const sl_option *o, json_t **out, char *msg, size_t msglen)
{
    *out = NULL;
    if (!o->def)
        return 0;
    json_error_t je;
    json_t *v = json_loads(o->def, JSON_DECODE_ANY, &je);
    if (!v || check_value(o, v, msg, msglen) < 0) {
        json_decref(v);
        snprintf(msg, msglen, "option \"%s\" has an invalid default %s (plugin bug)", o->name, o->def);
        return -1;
    }
    *out = v;
    return 0;
}

int sl_options_check(const sl_plugin_descriptor *d, const char *json, sl_option_problem_fn report,
                     void *ud)
{
    char msg[512], path[256];
    int problems = 0;
    json_t *obj = parse_object(json, msg, sizeof msg);
    if (!obj) {
        if (report)
            report(ud, "", msg);
        return SL_EINVAL;
    }
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        const sl_option *o = find_option(d, key);
        snprintf(path, sizeof path, "/%s", key);
        if (!o) {
            snprintf(msg, sizeof msg, "unknown option \"%s\" for plugin %s", key, d->name);
            problems++;
            if (report)
                report(ud, path, msg);
        } else if (check_value(o, v, msg, sizeof msg) < 0) {
            problems++;
            if (report)
                report(ud, path, msg);
        }
    }
    if (d->options) {
        for (const sl_option *o = d->options; o->name; o++) {
            snprintf(path, sizeof path, "/%s", o->name);
            json_t *def = NULL;
            if (default_value(o, &def, msg, sizeof msg) < 0) {
                problems++;
                if (report)
                    report(ud, path, msg);
            }
            json_decref(def);
            if ((o->flags & SL_OPTF_REQUIRED) && !json_object_get(obj, o->name)) {
                snprintf(msg, sizeof msg, "option \"%s\" is required", o->name);
                problems++;
                if (report)
                    report(ud, path, msg);
            }
        }
    }
    json_decref(obj);
    return problems ? SL_EINVAL : 0;
}

/* Stores one validated value into the config struct. */
static int store(const sl_option *o, const json_t *v, char *cfg)
{
    char *at = cfg + o->offset;
    switch (o->type) {
    case SL_OPT_BOOL: {
        int b = json_is_true(v);
        memcpy(at, &b, sizeof b);
        return 0;
    }
    case SL_OPT_INT: {
        int64_t i = json_integer_value(v);
        memcpy(at, &i, sizeof i);
        return 0;
    }
    case SL_OPT_ENUM: {
        int i = enum_index(o, json_string_value(v));
        memcpy(at, &i, sizeof i);
        return 0;
    }
    case SL_OPT_STRING: {
        char *s = strdup(json_string_value(v));
        if (!s)
            return SL_ENOMEM;
        memcpy(at, &s, sizeof s);
        return 0;
    }
    case SL_OPT_JSON: {
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!s)
            return SL_ENOMEM;
        memcpy(at, &s, sizeof s);
        return 0;
    }
    }
    return SL_EINVAL;
}

void sl_options_free(const sl_plugin_descriptor *d, void *config)
{
    if (!config)
        return;
    if (d && d->options) {
        for (const sl_option *o = d->options; o->name; o++) {
            if (o->type == SL_OPT_STRING || o->type == SL_OPT_JSON) {
                char *s;
                memcpy(&s, (char *)config + o->offset, sizeof s);
                free(s);
            }
        }
    }
    free(config);
}

struct first_problem { char msg[512]; int n; };

static void keep_first(void *ud, const char *option, const char *msg)
{
    struct first_problem *fp = ud;
    if (fp->n++ == 0)
        snprintf(fp->msg, sizeof fp->msg, "%s", msg);
}

int sl_options_fill(const sl_plugin_descriptor *d, const char *json, void **config, sl_error *err)
{
    struct first_problem fp = { .n = 0 };
    *config = NULL;
    if (sl_options_check(d, json, keep_first, &fp) < 0) {
        if (fp.n > 1)
            return sl_error_set(err, SL_EINVAL, "plugin %s: %s (and %d more problems)", d->name,
                                fp.msg, fp.n - 1);
        return sl_error_set(err, SL_EINVAL, "plugin %s: %s", d->name, fp.msg);
    }
    char msg[512];
    json_t *obj = parse_object(json, msg, sizeof msg);
    if (!obj)
        return sl_error_set(err, SL_EINVAL, "plugin %s: %s", d->name, msg);
    /* At least one byte so a plugin without options still gets a non-NULL config. */
    char *cfg = calloc(1, d->config_size ? d->config_size : 1);
    if (!cfg) {
        json_decref(obj);
        return sl_error_set(err, SL_ENOMEM, "plugin %s: out of memory", d->name);
    }
    int rc = 0;
    for (const sl_option *o = d->options; o && o->name && rc == 0; o++) {
        json_t *v = json_object_get(obj, o->name), *def = NULL;
        if (!v) {
            default_value(o, &def, msg, sizeof msg);   /* validated by sl_options_check */
            v = def;
        }
        if (v) {
            rc = store(o, v, cfg);
        } else if (o->type == SL_OPT_STRING || o->type == SL_OPT_JSON) {
            /* No default: strings are "" and JSON is null, never a NULL pointer. */
            json_t *empty = (o->type == SL_OPT_STRING) ? json_string("") : json_null();
            rc = store(o, empty, cfg);
            json_decref(empty);
        }
        json_decref(def);
    }
    json_decref(obj);
    if (rc < 0) {
        sl_options_free(d, cfg);
        return sl_error_set(err, rc, "plugin %s: out of memory", d->name);
    }
    *config = cfg;
    return 0;
}

char *sl_options_resolved_json(const sl_plugin_descriptor *d, const char *json)
{
    char msg[512];
    json_t *obj = parse_object(json, msg, sizeof msg);
    if (!obj)
        return NULL;
    json_t *out = json_object();
    for (const sl_option *o = d->options; out && o && o->name; o++) {
        json_t *v = json_object_get(obj, o->name), *def = NULL;
        if (!v) {
            if (default_value(o, &def, msg, sizeof msg) < 0)
                continue;
            v = def;
        }
        if (v) {
            if (o->flags & SL_OPTF_SECRET)
                json_object_set_new(out, o->name, json_string(SECRET_MASK));
            else
                json_object_set(out, o->name, v);
        }
        json_decref(def);
    }
    char *s = out ? json_dumps(out, JSON_COMPACT) : NULL;
    json_decref(out);
    json_decref(obj);
    return s;
}

int sl__option_default_ok(const sl_option *o, char *msg, size_t msglen)
{
    json_t *def = NULL;
    int rc = default_value(o, &def, msg, msglen);
    json_decref(def);
    return rc;
}
