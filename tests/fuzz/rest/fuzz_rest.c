/*
 * fuzz_rest.c - libFuzzer target for the REST request path: arbitrary bytes as a script of
 * requests answered in-process by the API's dispatcher (sl__dispatch, the function the
 * libmicrohttpd glue calls), against a real metadata store in a temporary data dir.
 *
 * Input: requests separated by a line "---"; each is "METHOD TARGET\nBODY" where TARGET is a
 * path with an optional query, %-decoded as libmicrohttpd does. The server is offline (sources
 * are accepted without connecting, every other database call fails at once) and knows the
 * compiler's test plugin descriptors (no shared objects). Between inputs every task and source is
 * deleted again, so each input starts from an empty server.
 *
 * Checked on every answer: a status in 200..599 other than 500 (a fault of the server), no body
 * for 204, a JSON body that parses, and for 4xx/5xx the error body {"error_msg", "error_code"}.
 * FUZZ_REST_VERBOSE=1 prints every request and its answer (fuzz_rest FILE reproduces one input).
 */
#include <ftw.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "sluice/log.h"
#include "test_plugins.h"

#define MAX_REQUESTS 16
#define MAX_ARGS     32

static sl_api *api;
static int verbose;   /* FUZZ_REST_VERBOSE=1: print each request and its answer (reproducing) */
static char tmpdir[256];

/* The compiler's test descriptors declare the option tables of PLUGINS.md but no layout (every
 * offset 0): fine for compiling, not for running. Register copies whose options each get their
 * own 8-byte slot, so POST .../start can build and run (do-nothing) pipelines. */
#define MAX_DESCS 16
static sl_plugin_descriptor descs[MAX_DESCS];
static sl_option *desc_opts[MAX_DESCS];

static int register_plugins(sl_registry *into, sl_error *err)
{
    sl_registry *tmp = NULL;
    int rc = sl_registry_new(&tmp);
    if (rc == 0)
        rc = sl_test_plugins_register(tmp, err);
    for (size_t i = 0; rc == 0 && i < sl_registry_count(tmp) && i < MAX_DESCS; i++) {
        const sl_plugin_descriptor *d = sl_registry_at(tmp, i);
        size_t n = 0;
        while (d->options && d->options[n].name)
            n++;
        desc_opts[i] = calloc(n + 1, sizeof *desc_opts[i]);
        if (!desc_opts[i])
            abort();
        for (size_t k = 0; k < n; k++) {
            desc_opts[i][k] = d->options[k];
            desc_opts[i][k].offset = k * 8;
        }
        descs[i] = *d;
        descs[i].options = desc_opts[i];
        descs[i].config_size = (n ? n : 1) * 8;
        rc = sl_registry_add(into, &descs[i], err);
    }
    sl_registry_free(tmp);
    return rc;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void teardown(void)
{
    sl_api_free(api);
    api = NULL;
    for (size_t i = 0; i < MAX_DESCS; i++)
        free(desc_opts[i]);
    if (tmpdir[0])
        nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void setup(void)
{
    char data[300], plugins[300];
    /* tmpfs when there is one: the store fsyncs every commit */
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(tmpdir, sizeof tmpdir, "%s/sluice-fuzz-rest-XXXXXX", base);
    if (!mkdtemp(tmpdir))
        abort();
    snprintf(data, sizeof data, "%s/data", tmpdir);
    snprintf(plugins, sizeof plugins, "%s/plugins", tmpdir);   /* empty: no shared object */
    if (mkdir(plugins, 0700) != 0)
        abort();
    verbose = getenv("FUZZ_REST_VERBOSE") != NULL;
    sl_log_set_level(verbose ? SL_LOG_INFO : SL_LOG_ERROR);
    sl_api_opts o = { .addr = "127.0.0.1:0", .data_dir = data, .plugin_dir = plugins,
                      .body_limit = 16384, .http_threads = 1, .openapi = 1 };
    sl_error err = { 0 };
    if (sl__api_open(&o, SL__API_NO_HTTP | SL__API_NO_MONITOR | SL__API_OFFLINE, &api, &err) != 0 ||
        register_plugins(api->registry, &err) != 0) {
        fprintf(stderr, "fuzz_rest: setup: %s\n", err.msg);
        abort();
    }
    atexit(teardown);
}

/* %XX decoding (in place); plus_space turns '+' into ' ' (query strings). */
static void unescape(char *s, int plus_space)
{
    char *o = s;
    for (; *s; s++) {
        if (*s == '%' && s[1] && s[2] && strchr("0123456789abcdefABCDEF", s[1]) &&
            strchr("0123456789abcdefABCDEF", s[2])) {
            char hex[3] = { s[1], s[2], 0 };
            *o++ = (char)strtol(hex, NULL, 16);
            s += 2;
        } else if (plus_space && *s == '+') {
            *o++ = ' ';
        } else {
            *o++ = *s;
        }
    }
    *o = 0;
}

static void check_reply(const sl_req *r, const char *method, const char *path)
{
    const char *body = r->out_blob ? r->out_blob->data : r->out;
    size_t len = r->out_blob ? r->out_blob->len : r->out_len;
    if (r->status < 200 || r->status > 599 || r->status == 500) {
        fprintf(stderr, "fuzz_rest: %s %s answered %u: %.*s\n", method, path, r->status,
                (int)(len > 2000 ? 2000 : len), body ? body : "");
        abort();
    }
    if (r->status == 204 && len) {
        fprintf(stderr, "fuzz_rest: %s %s: 204 with a body\n", method, path);
        abort();
    }
    if (!r->ctype || strcmp(r->ctype, "application/json") || !len)
        return;
    json_error_t e;
    json_t *v = json_loadb(body, len, JSON_DECODE_ANY, &e);
    if (!v) {
        fprintf(stderr, "fuzz_rest: %s %s: %u with a body that is not JSON (%s): %.*s\n", method,
                path, r->status, e.text, (int)(len > 2000 ? 2000 : len), body);
        abort();
    }
    if (r->status >= 400 && (!json_is_string(json_object_get(v, "error_msg")) ||
                             !json_is_integer(json_object_get(v, "error_code")))) {
        fprintf(stderr, "fuzz_rest: %s %s: %u without the error body: %.*s\n", method, path,
                r->status, (int)(len > 2000 ? 2000 : len), body);
        abort();
    }
    json_decref(v);
}

/* One request "METHOD TARGET\nBODY" (text: a private copy of len bytes plus a NUL). */
static void one_request(char *text, size_t len)
{
    char *nl = memchr(text, '\n', len);
    size_t line_len = nl ? (size_t)(nl - text) : len;
    char *line = strndup(text, line_len);
    if (!line)
        return;
    /* the body in a buffer of its exact size, so that reading past it is caught */
    size_t blen = nl ? len - line_len - 1 : 0;
    char *body = malloc(blen ? blen : 1);
    if (!body) {
        free(line);
        return;
    }
    if (blen)
        memcpy(body, nl + 1, blen);

    char *sp = strchr(line, ' ');
    const char *method = line;
    char *target = line + strlen(line);   /* "" (writable) without a space; a NUL ends the line */
    if (sp) {
        *sp = 0;
        target = sp + 1;
    }
    sl_query_arg args[MAX_ARGS];
    size_t nargs = 0;
    char *q = strchr(target, '?');
    if (q) {
        *q++ = 0;
        for (char *save = NULL, *kv = strtok_r(q, "&", &save); kv && nargs < MAX_ARGS;
             kv = strtok_r(NULL, "&", &save)) {
            char *eq = strchr(kv, '=');
            if (eq)
                *eq++ = 0;
            unescape(kv, 1);
            if (eq)
                unescape(eq, 1);
            args[nargs++] = (sl_query_arg){ kv, eq };
        }
    }
    unescape(target, 0);

    sl_req r;
    sl__dispatch(api, &r, method, target, args, nargs, blen ? body : NULL, blen);
    check_reply(&r, method, target);
    if (verbose)
        fprintf(stderr, "%s %s -> %u %.*s\n", method, target, r.status,
                (int)(r.out_len > 300 ? 300 : r.out_len), r.out ? r.out : "");
    sl__req_reset(&r);
    free(body);
    free(line);
}

/* Delete every task and source through the dispatcher (force), so the next input starts empty. */
static void reset(void)
{
    for (int kind = 0; kind < 2; kind++) {
        char **names = NULL;
        size_t n = 0;
        pthread_rwlock_rdlock(&api->lock);
        n = kind == 0 ? api->ntasks : api->nsources;
        names = calloc(n ? n : 1, sizeof *names);
        for (size_t i = 0; names && i < n; i++)
            names[i] = strdup(kind == 0 ? api->tasks[i]->name : api->sources[i]->name);
        pthread_rwlock_unlock(&api->lock);
        if (!names)
            abort();
        for (size_t i = 0; i < n; i++) {
            char path[512];
            sl_query_arg force = { "force", "true" };
            sl_req r;
            snprintf(path, sizeof path, "/api/v1/%s/%s", kind == 0 ? "tasks" : "sources", names[i]);
            sl__dispatch(api, &r, "DELETE", path, &force, 1, NULL, 0);
            if (r.status != 204) {
                fprintf(stderr, "fuzz_rest: reset: DELETE %s answered %u: %s\n", path, r.status,
                        r.out ? r.out : "");
                abort();
            }
            sl__req_reset(&r);
            free(names[i]);
        }
        free(names);
    }
    if (api->ntasks || api->nsources) {
        fprintf(stderr, "fuzz_rest: reset left %zu tasks and %zu sources\n", api->ntasks,
                api->nsources);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char sep[] = "\n---\n";
    if (!api)
        setup();
    const char *p = (const char *)data, *end = p + size;
    for (int n = 0; n < MAX_REQUESTS && p <= end; n++) {
        const char *s = memmem(p, (size_t)(end - p), sep, sizeof sep - 1);
        size_t len = s ? (size_t)(s - p) : (size_t)(end - p);
        char *text = malloc(len + 1);   /* NUL-terminated copy; the body may hold NULs */
        if (!text)
            break;
        memcpy(text, p, len);
        text[len] = 0;
        one_request(text, len);
        free(text);
        if (!s)
            break;
        p = s + sizeof sep - 1;
    }
    reset();
    return 0;
}
