/*
 * compile.c - the API's door to the task compiler: POST/PUT /tasks hand the task JSON to
 * sl_task_compile (compiler.h) with the known sources, and keep the plan whose per-source
 * phases the subtasks run. Without the compiler library (a partial build), tasks are checked
 * structurally only and have no phases, and starting them says so.
 */
#include "internal.h"

#include <stdlib.h>
#include <limits.h>
#include <string.h>

#ifdef SLUICE_HAVE_COMPILER
#include "sluice/compiler.h"
#endif

typedef struct plan {
    size_t   n;
    char   **sources;
#ifdef SLUICE_HAVE_COMPILER
    sl_task_plan *cp;
#endif
} plan;

void sl__plan_free(void *pv)
{
    plan *p = pv;
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++)
        free(p->sources[i]);
    free(p->sources);
#ifdef SLUICE_HAVE_COMPILER
    sl_task_plan_free(p->cp);
#endif
    free(p);
}

size_t sl__plan_nsubtasks(void *pv) { return ((plan *)pv)->n; }
const char *sl__plan_source(void *pv, size_t i) { return ((plan *)pv)->sources[i]; }

size_t sl__plan_nphases(void *pv, size_t i)
{
#ifdef SLUICE_HAVE_COMPILER
    plan *p = pv;
    return p->cp ? p->cp->subtasks[i].nphases : 0;
#else
    return 0;
#endif
}

const sl_pipeline_spec *sl__plan_phase(void *pv, size_t i, size_t ph)
{
#ifdef SLUICE_HAVE_COMPILER
    plan *p = pv;
    return p->cp ? p->cp->subtasks[i].phases[ph] : NULL;
#else
    return NULL;
#endif
}

const char *sl__plan_phase_name(void *pv, size_t i, size_t ph)
{
#ifdef SLUICE_HAVE_COMPILER
    plan *p = pv;
    return p->cp ? p->cp->subtasks[i].phase_names[ph] : NULL;
#else
    return NULL;
#endif
}

static const char *jstr(const json_t *v)
{
    return json_is_string(v) ? json_string_value(v) : "";
}

static void problem(json_t *arr, const char *path, const char *msg)
{
    json_array_append_new(arr, json_pack("{s:s,s:s}", "path", path, "msg", msg));
}

/* Structural checks the API needs whatever the compiler says: the name and the sources. */
static void check_basics(sl_api *a, json_t *task, json_t *probs)
{
    char path[96], msg[300];
    json_t *name = json_object_get(task, "name");
    if (!json_is_string(name))
        problem(probs, "/task/name", name ? "must be a string" : "is required");
    else if (!sl__valid_name(json_string_value(name)))
        problem(probs, "/task/name", "must be 1-128 characters without '/' or control characters");
    json_t *sc = json_object_get(json_object_get(task, "source_config"), "source_conf");
    if (!json_is_array(sc) || json_array_size(sc) == 0) {
        problem(probs, "/task/source_config/source_conf", "must be a non-empty array of sources");
        return;
    }
    size_t i;
    json_t *x;
    json_array_foreach(sc, i, x) {
        const char *sn = json_string_value(json_object_get(x, "source_name"));
        snprintf(path, sizeof path, "/task/source_config/source_conf/%zu/source_name", i);
        if (!sn) {
            problem(probs, path, "is required (a string)");
            continue;
        }
        if (!sl__source_find(a, sn)) {
            snprintf(msg, sizeof msg, "source %s does not exist (create it with POST /api/v1/sources)", sn);
            problem(probs, path, msg);
        }
        for (size_t j = 0; j < i; j++)
            if (!strcmp(sn, jstr(json_object_get(json_array_get(sc, j), "source_name")))) {
                snprintf(msg, sizeof msg, "source %s is listed twice", sn);
                problem(probs, path, msg);
            }
    }
}

void *sl__plan_bare(const json_t *task)
{
    json_t *sc = json_object_get(json_object_get(task, "source_config"), "source_conf");
    plan *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->n = json_array_size(sc);
    p->sources = calloc(p->n ? p->n : 1, sizeof *p->sources);
    for (size_t i = 0; p->sources && i < p->n; i++)
        if (!(p->sources[i] = strdup(jstr(json_object_get(json_array_get(sc, i), "source_name"))))) {
            p->n = i;
            sl__plan_free(p);
            return NULL;
        }
    if (!p->sources) {
        free(p);
        return NULL;
    }
    return p;
}

int sl__task_compile(sl_api *a, const char *text, size_t len, json_t **normalized, void **out,
                     json_t **problems, json_t **warnings, sl_error *err)
{
    json_error_t je;
    json_t *task = json_loadb(text, len, 0, &je);
    json_t *probs = json_array();
    plan *p = NULL;
    *normalized = NULL;
    *out = NULL;
    *problems = NULL;
    if (warnings)
        *warnings = NULL;
    if (!task || !json_is_object(task)) {
        problem(probs, "/task", "must be an object");
        goto invalid;
    }
    check_basics(a, task, probs);
    if (json_array_size(probs))
        goto invalid;

#ifdef SLUICE_HAVE_COMPILER
    {
        size_t ns = a->nsources;
        sl_source_def *defs = calloc(ns ? ns : 1, sizeof *defs);
        if (!defs) {
            sl_error_set(err, SL_ENOMEM, "out of memory");
            goto fail;
        }
        for (size_t i = 0; i < ns; i++) {
            json_t *d = a->sources[i]->def, *sec = json_object_get(d, "security");
            defs[i].name = a->sources[i]->name;
            defs[i].host = json_string_value(json_object_get(d, "host"));
            defs[i].port = (int)json_integer_value(json_object_get(d, "port"));
            defs[i].user = json_string_value(json_object_get(d, "user"));
            defs[i].password = json_string_value(json_object_get(d, "password"));
            defs[i].flavor = json_string_value(json_object_get(d, "flavor"));
            defs[i].enable_gtid = json_is_true(json_object_get(d, "enable_gtid"));
            defs[i].ssl_ca = json_string_value(json_object_get(sec, "ssl_ca_content"));
            defs[i].ssl_cert = json_string_value(json_object_get(sec, "ssl_cert_content"));
            defs[i].ssl_key = json_string_value(json_object_get(sec, "ssl_key_content"));
        }
        char script_root[PATH_MAX];
        snprintf(script_root, sizeof script_root, "%s/lua", a->data_dir);
        sl_compile_opts co = { .registry = a->registry, .plugin_dir = a->opts.plugin_dir,
                               .sources = defs, .nsources = ns, .check_sources = 1,
                               .script_root = script_root };
        sl_task_plan *cp = NULL;
        sl_diags diags = { 0 };
        int rc = sl_task_compile(text, len, &co, &cp, &diags);
        free(defs);
        if (rc != 0) {
            for (size_t i = 0; i < diags.n; i++) {
                char path[512];
                if (diags.v[i].severity != SL_DIAG_ERROR)
                    continue;
                snprintf(path, sizeof path, "/task%s", diags.v[i].path ? diags.v[i].path : "");
                problem(probs, path, diags.v[i].msg ? diags.v[i].msg : "invalid");
                json_object_set_new(json_array_get(probs, json_array_size(probs) - 1), "code",
                                    json_integer(diags.v[i].code));
            }
            sl_diags_free(&diags);
            sl_task_plan_free(cp);
            if (rc == SL_ENOMEM && !json_array_size(probs)) {
                sl_error_set(err, SL_ENOMEM, "out of memory");
                goto fail;
            }
            if (!json_array_size(probs))
                problem(probs, "/task", sl_strerror(rc));
            goto invalid;
        }
        /* the compiler's warnings (a task compiles with them): the caller shows them */
        for (size_t i = 0; warnings && i < diags.n; i++) {
            char path[512];
            if (diags.v[i].severity != SL_DIAG_WARNING)
                continue;
            if (!*warnings && !(*warnings = json_array()))
                break;
            snprintf(path, sizeof path, "/task%s", diags.v[i].path ? diags.v[i].path : "");
            json_array_append_new(*warnings, json_pack("{s:s,s:s,s:i}", "path", path, "msg",
                                                       diags.v[i].msg ? diags.v[i].msg : "",
                                                       "code", diags.v[i].code));
        }
        sl_diags_free(&diags);
        json_t *norm = cp->task_json ? json_loads(cp->task_json, 0, NULL) : NULL;
        if (norm) {
            json_decref(task);
            task = norm;
        }
        p = calloc(1, sizeof *p);
        if (!p) {
            sl_task_plan_free(cp);
            sl_error_set(err, SL_ENOMEM, "out of memory");
            goto fail;
        }
        p->cp = cp;
        p->n = cp->nsubtasks;
        p->sources = calloc(p->n ? p->n : 1, sizeof *p->sources);
        for (size_t i = 0; p->sources && i < p->n; i++)
            p->sources[i] = strdup(cp->subtasks[i].source_name);
    }
#else
    {
        /* no compiler: normalize the few defaults the API relies on */
        if (!json_is_string(json_object_get(task, "meta_schema")))
            json_object_set_new(task, "meta_schema", json_string("dm_meta"));
        if (!(p = sl__plan_bare(task))) {
            sl_error_set(err, SL_ENOMEM, "out of memory");
            goto fail;
        }
    }
#endif
    if (!p->sources) {
        sl__plan_free(p);
        sl_error_set(err, SL_ENOMEM, "out of memory");
        goto fail;
    }
    json_decref(probs);
    *normalized = task;
    *out = p;
    return 0;
invalid:
    json_decref(task);
    if (warnings) {
        json_decref(*warnings);
        *warnings = NULL;
    }
    *problems = probs;
    return sl_error_set(err, SL_EINVAL, "the task does not compile");
fail:
    json_decref(task);
    json_decref(probs);
    if (warnings) {
        json_decref(*warnings);
        *warnings = NULL;
    }
    return err->code;
}
