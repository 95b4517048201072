/*
 * compile.c - the API's door to the task compiler: POST/PUT /tasks (and the restore at start)
 * hand the parsed Task to sl_task_compile_json (compiler.h) with the known sources, and keep the
 * plan, whose normalized task is what the store keeps and whose per-source phases the subtasks
 * run.
 */
#include "internal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void problem(json_t *arr, const char *path, const char *msg, int code)
{
    json_array_append_new(arr, json_pack("{s:s,s:s,s:i}", "path", path, "msg", msg, "code", code));
}

/* The diagnostics of one severity as {"path": root + the path in the task, "msg", "code"}
 * appended to arr (created when NULL); "/" for the whole document, as check-task says. */
static json_t *diags_json(json_t *arr, const sl_diags *d, int severity, const char *root)
{
    for (size_t i = 0; i < d->n; i++) {
        char path[512];
        if (d->v[i].severity != severity)
            continue;
        if (!arr && !(arr = json_array()))
            return NULL;
        snprintf(path, sizeof path, "%s%s", root, d->v[i].path ? d->v[i].path : "");
        if (!path[0])
            snprintf(path, sizeof path, "/");
        json_array_append_new(arr, json_pack("{s:s,s:s,s:i}", "path", path, "msg",
                                             d->v[i].msg ? d->v[i].msg : "invalid",
                                             "code", d->v[i].code));
    }
    return arr;
}

int sl__task_compile(sl_api *a, json_t *task, const char *root, sl_task_plan **out,
                     json_t **problems, json_t **warnings, sl_error *err)
{
    return sl__task_compile_with(a, a->sources, a->nsources, task, root, out, problems, warnings,
                                 err);
}

int sl__task_compile_with(sl_api *a, sl_api_source *const *srcs, size_t nsrcs, json_t *task,
                          const char *root, sl_task_plan **out, json_t **problems,
                          json_t **warnings, sl_error *err)
{
    json_t *probs = json_array();
    sl_source_def *defs = NULL;
    sl_diags diags = { 0 };
    *out = NULL;
    *problems = NULL;
    if (warnings)
        *warnings = NULL;
    if (!probs)
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    if (!json_is_object(task)) {
        problem(probs, *root ? root : "/", "must be an object", SL_TC_TYPE);
        goto invalid;
    }
    /* every problem in one pass, as check-task reports them: the compiler checks the name and
     * the sources too (check_sources: an unknown one is DM's 46008) */
    size_t ns = nsrcs;
    if (!(defs = calloc(ns ? ns : 1, sizeof *defs))) {
        json_decref(probs);
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    }
    char **cns = calloc(ns ? ns : 1, sizeof *cns);
    if (!cns) {
        free(defs);
        json_decref(probs);
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < ns; i++) {
        json_t *d = srcs[i]->def, *sec = json_object_get(d, "security");
        defs[i].cert_allowed_cn = cns[i] = sl_cert_allowed_cn_join(sec);
        defs[i].name = srcs[i]->name;
        defs[i].host = json_string_value(json_object_get(d, "host"));
        defs[i].port = (int)json_integer_value(json_object_get(d, "port"));
        defs[i].user = json_string_value(json_object_get(d, "user"));
        defs[i].password = json_string_value(json_object_get(d, "password"));
        defs[i].flavor = json_string_value(json_object_get(d, "flavor"));
        defs[i].enable_gtid = json_is_true(json_object_get(d, "enable_gtid"));
        defs[i].ssl_ca = json_string_value(json_object_get(sec, "ssl_ca_content"));
        defs[i].ssl_cert = json_string_value(json_object_get(sec, "ssl_cert_content"));
        defs[i].ssl_key = json_string_value(json_object_get(sec, "ssl_key_content"));
        defs[i].relay_dir = srcs[i]->relay_path;
    }
    char script_root[PATH_MAX];
    snprintf(script_root, sizeof script_root, "%s/lua", a->data_dir);
    sl_compile_opts co = { .registry = a->registry, .plugin_dir = a->opts.plugin_dir,
                           .sources = defs, .nsources = ns, .check_sources = 1,
                           .script_root = script_root, .ncpu = a->ncpu };
    int rc = sl_task_compile_json(task, &co, out, &diags);
    for (size_t i = 0; i < ns; i++)
        free(cns[i]);
    free(cns);
    free(defs);
    if (rc != 0) {
        diags_json(probs, &diags, SL_DIAG_ERROR, root);
        sl_diags_free(&diags);
        if (rc == SL_ENOMEM && !json_array_size(probs)) {
            json_decref(probs);
            return sl_error_set(err, SL_ENOMEM, "out of memory");
        }
        if (!json_array_size(probs))
            problem(probs, *root ? root : "/", sl_strerror(rc), DM_ERR_TASK_CHECK);
        goto invalid;
    }
    /* the compiler's warnings (a task compiles with them): the caller shows them */
    if (warnings)
        *warnings = diags_json(NULL, &diags, SL_DIAG_WARNING, root);
    sl_diags_free(&diags);
    json_decref(probs);
    return 0;
invalid:
    *problems = probs;
    return sl_error_set(err, SL_EINVAL, "the task does not compile");
}
