/*
 * sources.c - known sources for the compiler (compiler.h sl_source_def) read from DM `Source`
 * JSON: the file given to `sluice check-task --sources`, or what the server stores.
 */
#include "sluice/compiler.h"
#include "tc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

void sl_source_defs_free(sl_source_def *v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++) {
        free((char *)v[i].name);
        free((char *)v[i].host);
        free((char *)v[i].user);
        free((char *)v[i].password);
        free((char *)v[i].flavor);
        free((char *)v[i].ssl_ca);
        free((char *)v[i].ssl_cert);
        free((char *)v[i].ssl_key);
        free((char *)v[i].cert_allowed_cn);
    }
    free(v);
}

static char *dup_str(json_t *v, int *oom)
{
    if (!v || !json_is_string(v))
        return NULL;
    char *s = strdup(json_string_value(v));
    if (!s)
        *oom = 1;
    return s;
}

static const char *const SOURCE_FIELDS[] = {
    "source_name", "host", "port", "user", "password", "enable_gtid", "enable", "flavor",
    "task_name_list", "security", "purge", "status_list", "relay_config", NULL
};
static const char *const SECURITY_FIELDS[] = {
    "ssl_ca_content", "ssl_cert_content", "ssl_key_content", "cert_allowed_cn", NULL
};

static void one_source(tc *c, json_t *o, sl_source_def *s, int *oom)
{
    if (!json_is_object(o)) {
        sl__tc_err(c, NULL, SL_TC_TYPE, "a source must be an object, not %s", sl__tc_typename(o));
        return;
    }
    sl__tc_known(c, o, SOURCE_FIELDS);
    s->name = dup_str(sl__tc_get(c, o, "source_name", TC_STR, 1), oom);
    s->host = dup_str(sl__tc_get(c, o, "host", TC_STR, 1), oom);
    json_t *port = sl__tc_get(c, o, "port", TC_INT, 1);
    if (port) {
        if (json_integer_value(port) < 1 || json_integer_value(port) > 65535)
            sl__tc_err(c, "port", SL_TC_RANGE, "\"port\" must be between 1 and 65535");
        else
            s->port = (int)json_integer_value(port);
    }
    s->user = dup_str(sl__tc_get(c, o, "user", TC_STR, 1), oom);
    s->password = dup_str(sl__tc_get(c, o, "password", TC_STR, 0), oom);
    json_t *fl = sl__tc_get(c, o, "flavor", TC_STR, 0);
    if (fl && json_string_length(fl)) {
        const char *f = json_string_value(fl);
        if (strcasecmp(f, "mysql") == 0)
            s->flavor = strdup("mysql");
        else if (strcasecmp(f, "mariadb") == 0)
            s->flavor = strdup("mariadb");
        else
            sl__tc_err(c, "flavor", SL_TC_ENUM, "\"flavor\" must be \"mysql\" or \"mariadb\", not \"%s\"", f);
        if ((strcasecmp(f, "mysql") == 0 || strcasecmp(f, "mariadb") == 0) && !s->flavor)
            *oom = 1;
    }
    json_t *g = sl__tc_get(c, o, "enable_gtid", TC_BOOL, 0);
    s->enable_gtid = g && json_is_true(g);
    json_t *sec = sl__tc_get(c, o, "security", TC_OBJ, 0);
    if (sec) {
        size_t m = sl__tc_push(c, "security");
        sl__tc_known(c, sec, SECURITY_FIELDS);
        s->ssl_ca = dup_str(sl__tc_get(c, sec, "ssl_ca_content", TC_STR, 0), oom);
        s->ssl_cert = dup_str(sl__tc_get(c, sec, "ssl_cert_content", TC_STR, 0), oom);
        s->ssl_key = dup_str(sl__tc_get(c, sec, "ssl_key_content", TC_STR, 0), oom);
        s->cert_allowed_cn = sl_cert_allowed_cn_join(sec);
        sl__tc_pop(c, m);
    }
}

char *sl_cert_allowed_cn_join(const json_t *security)
{
    const json_t *cns = json_object_get(security, "cert_allowed_cn");
    size_t i, need = 1;
    json_t *x;
    json_array_foreach(cns, i, x)
        need += json_string_length(x) + 1;
    if (need == 1)
        return NULL;
    char *s = malloc(need), *p = s;
    if (!s)
        return NULL;
    json_array_foreach(cns, i, x) {
        if (!json_string_length(x))
            continue;
        if (p != s)
            *p++ = ',';
        memcpy(p, json_string_value(x), json_string_length(x));
        p += json_string_length(x);
    }
    *p = 0;
    if (p == s) {
        free(s);
        return NULL;
    }
    return s;
}

int sl_source_defs_parse(const char *json, size_t len, sl_source_def **out, size_t *n,
                         sl_diags *diags)
{
    tc c = { .d = diags };
    *out = NULL;
    *n = 0;
    json_error_t je;
    json_t *root = json_loadb(json ? json : "", json ? len : 0, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        sl__tc_json_error(&c, json ? json : "", json ? len : 0, &je);
        return SL_EPARSE;
    }
    json_t *list = root;
    size_t mark = 0;
    if (json_is_object(root) && json_is_array(json_object_get(root, "data"))) {
        list = json_object_get(root, "data");
        mark = sl__tc_push(&c, "data");
    } else if (json_is_object(root) && json_is_object(json_object_get(root, "source"))) {
        list = json_object_get(root, "source");
        mark = sl__tc_push(&c, "source");
    }
    size_t count = json_is_array(list) ? json_array_size(list) : 1;
    sl_source_def *v = calloc(count + 1, sizeof *v);
    int oom = !v;
    size_t before = sl_diags_errors(diags);
    for (size_t i = 0; v && i < count; i++) {
        size_t m = json_is_array(list) ? sl__tc_pushi(&c, i) : c.plen;
        one_source(&c, json_is_array(list) ? json_array_get(list, i) : list, &v[i], &oom);
        for (size_t j = 0; j < i && v[i].name; j++)
            if (v[j].name && strcmp(v[j].name, v[i].name) == 0)
                sl__tc_err(&c, "source_name", SL_TC_DUPLICATE, "source \"%s\" is given twice", v[i].name);
        sl__tc_pop(&c, m);
    }
    sl__tc_pop(&c, mark);
    json_decref(root);
    if (oom || c.oom) {
        sl_source_defs_free(v, count);
        return SL_ENOMEM;
    }
    if (sl_diags_errors(diags) > before) {
        sl_source_defs_free(v, count);
        return SL_EINVAL;
    }
    *out = v;
    *n = count;
    return 0;
}
