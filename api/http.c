/*
 * http.c - the HTTP side of the server: a libmicrohttpd daemon with an internal epoll thread pool,
 * request bodies gathered up to the configured limit (413 beyond it), routing of /api/v1 paths to
 * the resource files, and the helpers every handler uses to answer (JSON, errors, empty bodies).
 */
#include "internal.h"

#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sluice/log.h"

/* ---- blobs ------------------------------------------------------------------------------- */

sl_blob *sl__blob_new(const char *data, size_t len)
{
    sl_blob *b = malloc(sizeof *b + len + 1);
    if (!b)
        return NULL;
    atomic_init(&b->refs, 1);
    atomic_init(&b->resp, NULL);
    b->len = len;
    memcpy(b->data, data, len);
    b->data[len] = 0;
    return b;
}

void sl__blob_unref(sl_blob *b)
{
    if (b && atomic_fetch_sub(&b->refs, 1) == 1) {
        struct MHD_Response *resp = atomic_load(&b->resp);
        if (resp)
            MHD_destroy_response(resp);
        free(b);
    }
}

/* The response of a blob, built once over its data (MHD_RESPMEM_PERSISTENT: the blob outlives
 * every use, see sl_blob). NULL when out of memory. */
static struct MHD_Response *blob_response(sl_blob *b, const char *ctype)
{
    struct MHD_Response *resp = atomic_load(&b->resp), *none = NULL;
    if (resp)
        return resp;
    resp = MHD_create_response_from_buffer(b->len, b->data, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return NULL;
    if (ctype)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (!atomic_compare_exchange_strong(&b->resp, &none, resp)) {
        MHD_destroy_response(resp);   /* another thread was first */
        resp = none;
    }
    return resp;
}

/* ---- replies ------------------------------------------------------------------------------- */

void sl__req_reset(sl_req *r)
{
    free(r->out);
    r->out = NULL;
    r->out_len = 0;
    sl__blob_unref(r->out_blob);
    r->out_blob = NULL;
}

void sl__reply_raw(sl_req *r, unsigned status, const char *ctype, char *body, size_t len)
{
    sl__req_reset(r);
    r->status = status;
    r->ctype = ctype;
    r->out = body;
    r->out_len = len;
}

void sl__reply_blob(sl_req *r, unsigned status, sl_blob *b)
{
    sl__req_reset(r);
    atomic_fetch_add(&b->refs, 1);
    r->status = status;
    r->ctype = "application/json";
    r->out_blob = b;
}

void sl__reply_json(sl_req *r, unsigned status, json_t *v)
{
    char *s = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(v);
    if (!s) {
        sl__reply_error(r, 500, DM_ERR_INTERNAL, "out of memory while encoding the reply");
        return;
    }
    sl__reply_raw(r, status, "application/json", s, strlen(s));
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if it is not one (overlong forms,
 * surrogates and code points above U+10FFFF are invalid, as jansson sees them). */
static size_t utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    size_t n;
    unsigned cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return n;
}

/* Replace every byte that does not start a valid UTF-8 sequence with '?', in place. */
static void utf8_scrub(char *msg)
{
    unsigned char *p = (unsigned char *)msg;
    while (*p) {
        size_t n = utf8_len(p);
        if (n == 0) {
            *p++ = '?';
        } else {
            p += n;
        }
    }
}

void sl__reply_error(sl_req *r, unsigned status, int code, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* messages quote request text (a path segment may hold any byte after %-decoding, and
     * vsnprintf may cut a character): JSON strings must be UTF-8 */
    utf8_scrub(msg);
    /* In a cluster a failed write of the metadata store is etcd without a quorum, or this
     * process no longer leading: both pass, so it is 503 (retry), not 500 (issue 13). */
    if (status == 500 && r->api && r->api->member && !strncmp(msg, "metadata store", 14)) {
        status = 503;
        code = DM_ERR_ETCD;
    }
    json_t *o = json_pack("{s:s,s:i}", "error_msg", msg, "error_code", code);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!s) {
        static const char oom[] = "{\"error_msg\":\"out of memory\",\"error_code\":50000}";
        s = strdup(oom);
        status = 500;
    }
    sl__reply_raw(r, status, "application/json", s, s ? strlen(s) : 0);
    if (status >= 500 && status != 501)
        sl_log(SL_LOG_WARN, "api", "%s answered %u: %s", r->method, status, msg);
}

void sl__reply_empty(sl_req *r, unsigned status)
{
    sl__reply_raw(r, status, NULL, NULL, 0);
}

void sl__reply_method(sl_req *r, const char *allowed)
{
    sl__reply_error(r, 405, DM_ERR_OPENAPI, "method %s is not allowed here (allowed: %s)",
                    r->method, allowed);
}

/* 1 if the body is empty or only white space. */
static int body_blank(const sl_req *r)
{
    size_t i = 0;
    while (i < r->body_len && (r->body[i] == ' ' || r->body[i] == '\t' || r->body[i] == '\r' ||
                               r->body[i] == '\n'))
        i++;
    return i == r->body_len;
}

json_t *sl__body_json(sl_req *r, int empty_ok)
{
    if (r->json)
        return json_incref(r->json);
    json_error_t e;
    if (body_blank(r)) {
        if (empty_ok)
            return json_object();
        sl__reply_error(r, 400, DM_ERR_OPENAPI, "request body is empty: a JSON object is required");
        return NULL;
    }
    json_t *v = json_loadb(r->body, r->body_len, 0, &e);
    if (!v) {
        sl__reply_error(r, 400, DM_ERR_OPENAPI, "malformed JSON body at line %d, column %d: %s",
                        e.line, e.column > 0 ? e.column : 1, e.text);   /* 0: after a newline */
        return NULL;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        sl__reply_error(r, 400, DM_ERR_OPENAPI, "request body must be a JSON object");
        return NULL;
    }
    return v;
}

int sl__unknown_field(sl_req *r, const json_t *obj, const char *path, const char *const *keys,
                      size_t nkeys)
{
    const char *k;
    json_t *v;
    if (!json_is_object(obj))
        return 0;
    json_object_foreach((json_t *)obj, k, v) {
        size_t i = 0;
        while (i < nkeys && strcmp(k, keys[i]))
            i++;
        if (i < nkeys)
            continue;
        char known[512] = "";
        size_t o = 0;
        for (i = 0; i < nkeys && o < sizeof known; i++)
            o += (size_t)snprintf(known + o, sizeof known - o, "%s%s", i ? ", " : "", keys[i]);
        sl__reply_error(r, 400, DM_ERR_OPENAPI, "%s/%s: unknown field (known: %s)", path, k, known);
        return -1;
    }
    return 0;
}

const char *sl__query(sl_req *r, const char *name)
{
    for (size_t i = 0; i < r->nargs; i++)
        if (r->args[i].key && !strcmp(r->args[i].key, name))
            return r->args[i].value;
    return NULL;
}

int sl__query_bool(sl_req *r, const char *name, int *out)
{
    const char *v = sl__query(r, name);
    *out = 0;
    if (!v)
        return 0;
    if (!*v || !strcasecmp(v, "true") || !strcmp(v, "1")) {
        *out = 1;
        return 0;
    }
    if (!strcasecmp(v, "false") || !strcmp(v, "0"))
        return 0;
    sl__reply_error(r, 400, DM_ERR_OPENAPI, "query parameter %s must be true or false, not '%s'",
                    name, v);
    return -1;
}

json_t *sl__query_list(sl_req *r, const char *name)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < r->nargs; i++) {
        const char *p = r->args[i].value;
        if (!r->args[i].key || !p || strcmp(r->args[i].key, name))
            continue;
        while (*p) {
            const char *c = strchr(p, ',');
            size_t n = c ? (size_t)(c - p) : strlen(p);
            if (n)
                json_array_append_new(arr, json_stringn(p, n));
            p += n + (c ? 1 : 0);
        }
    }
    return arr;
}

/* ---- routing ------------------------------------------------------------------------------- */

/* Every endpoint of the API as the metrics' route label: a segment "{name}" stands for any one
 * segment, another is the API's own word. A request whose path fits none is counted as
 * "unknown", so that the label set stays bounded whatever paths and names clients send. method:
 * the one method the template is for where a name could be mistaken for the word (POST
 * /tasks/check checks a task, GET /tasks/check reads a task named "check"). */
static const struct route_tmpl {
    const char *path, *method;
} ROUTES[] = {
    { "/api/v1/cluster/info", NULL },
    { "/api/v1/cluster/masters", NULL },
    { "/api/v1/cluster/masters/{name}", NULL },
    { "/api/v1/cluster/workers", NULL },
    { "/api/v1/cluster/workers/{name}", NULL },
    { "/api/v1/sources", NULL },
    { "/api/v1/sources/{name}", NULL },
    { "/api/v1/sources/{name}/enable", NULL },
    { "/api/v1/sources/{name}/disable", NULL },
    { "/api/v1/sources/{name}/status", NULL },
    { "/api/v1/sources/{name}/transfer", NULL },
    { "/api/v1/sources/{name}/relay/enable", NULL },
    { "/api/v1/sources/{name}/relay/disable", NULL },
    { "/api/v1/sources/{name}/relay/purge", NULL },
    { "/api/v1/sources/{name}/schemas", NULL },
    { "/api/v1/sources/{name}/schemas/{name}", NULL },
    { "/api/v1/tasks", NULL },
    { "/api/v1/tasks/check", "POST" },
    { "/api/v1/tasks/templates", NULL },
    { "/api/v1/tasks/templates/{name}", NULL },
    { "/api/v1/tasks/converters", NULL },
    { "/api/v1/tasks/{name}", NULL },
    { "/api/v1/tasks/{name}/start", NULL },
    { "/api/v1/tasks/{name}/stop", NULL },
    { "/api/v1/tasks/{name}/verify", NULL },
    { "/api/v1/tasks/{name}/status", NULL },
    { "/api/v1/tasks/{name}/shard_ddl_locks", NULL },
    { "/api/v1/tasks/{name}/shard_ddl_locks/unlock", NULL },
    { "/api/v1/tasks/{name}/sources/{name}/migrate_targets", NULL },
    { "/api/v1/tasks/{name}/sources/{name}/schemas", NULL },
    { "/api/v1/tasks/{name}/sources/{name}/schemas/{name}", NULL },
    { "/api/v1/tasks/{name}/sources/{name}/schemas/{name}/{name}", NULL },
    { "/api/v1/console/lag", NULL },
    { "/api/v1/docs", NULL },
    { "/api/v1/dm.json", NULL },
};

/* Does template t (after "/api/v1") fit the segments? Sets *words to its count of literal
 * segments: where two fit, the one with more words is the endpoint (tasks/{name}/status, not a
 * task "status" under a longer template). */
static int route_fits(const char *t, char *const *segs, int nseg, int *words)
{
    *words = 0;
    for (int i = 0; i < nseg; i++) {
        if (*t != '/')
            return 0;
        t++;
        size_t n = strcspn(t, "/");
        if (n == 6 && !strncmp(t, "{name}", 6))
            ;
        else if (strlen(segs[i]) == n && !strncmp(t, segs[i], n))
            (*words)++;
        else
            return 0;
        t += n;
    }
    return *t == 0;
}

/* The routes outside the templates: the two pages outside /api/v1, refused requests, and every
 * path that fits no template. */
static const char *const OTHER_ROUTES[] = { "/metrics", "/console", "denied", "unknown" };
#define NTEMPLATES (sizeof ROUTES / sizeof ROUTES[0])
#define NOTHER     (sizeof OTHER_ROUTES / sizeof OTHER_ROUTES[0])

size_t sl__route_count(void)
{
    return NTEMPLATES + NOTHER;
}

const char *sl__route_at(size_t i)
{
    return i < NTEMPLATES ? ROUTES[i].path : i < NTEMPLATES + NOTHER ? OTHER_ROUTES[i - NTEMPLATES] : NULL;
}

static void route_label(sl_req *r, const char *prefix)
{
    const char *best = NULL;
    int best_words = -1;
    size_t plen = strlen(prefix);
    for (size_t i = 0; r->nseg > 0 && i < NTEMPLATES; i++) {
        int words;
        if (ROUTES[i].method && strcmp(ROUTES[i].method, r->method))
            continue;
        if (route_fits(ROUTES[i].path + plen, r->segs, r->nseg, &words) && words > best_words) {
            best = ROUTES[i].path;
            best_words = words;
        }
    }
    snprintf(r->route, sizeof r->route, "%s", best ? best : "unknown");
}

/* Split the path after prefix into r->segs (pointing into copy, which the caller frees); nseg 0
 * when there are more than SL_MAX_SEGS. */
static void split_path(sl_req *r, char *copy)
{
    r->nseg = 0;
    for (char *save = NULL, *s = strtok_r(copy, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
        if (r->nseg == SL_MAX_SEGS) {
            r->nseg = 0;
            break;
        }
        r->segs[r->nseg++] = s;
    }
}

/* The route label of a request answered before it was dispatched (a body over the limit). */
static void route_of_url(sl_req *r, const char *url)
{
    static const char prefix[] = "/api/v1";
    snprintf(r->route, sizeof r->route, "unknown");
    if (!strcmp(url, "/metrics") || !strcmp(url, "/console") || !strcmp(url, "/console/")) {
        snprintf(r->route, sizeof r->route, "%s", url[1] == 'm' ? "/metrics" : "/console");
        return;
    }
    if (strncmp(url, prefix, sizeof prefix - 1) != 0)
        return;
    char *copy = strdup(url + sizeof prefix - 1);
    if (!copy)
        return;
    split_path(r, copy);
    route_label(r, prefix);
    r->nseg = 0;
    free(copy);
}

void sl__dispatch(sl_api *a, sl_req *r, const char *method, const char *url,
                  const sl_query_arg *args, size_t nargs, const char *body, size_t body_len)
{
    static const char prefix[] = "/api/v1";
    char *copy;
    memset(r, 0, sizeof *r);
    r->api = a;
    r->method = method ? method : "";
    r->args = args;
    r->nargs = nargs;
    r->body = body ? body : "";
    r->body_len = body ? body_len : 0;
    if (!url)
        url = "";
    snprintf(r->route, sizeof r->route, "unknown");
    if (r->body_len > a->opts.body_limit) {
        sl__reply_error(r, 413, DM_ERR_OPENAPI, "request body is larger than the limit of %zu bytes",
                        a->opts.body_limit);
        return;
    }
    if (!strcmp(url, "/metrics")) {
        snprintf(r->route, sizeof r->route, "/metrics");
        if (!strcmp(r->method, "GET"))
            sl__metrics_reply(r);
        else
            sl__reply_method(r, "GET");
        return;
    }
    /* "/" stays 404 (the seeds test holds the root to that); the console is at /console */
    if (!strcmp(url, "/console") || !strcmp(url, "/console/")) {
        sl__console_page(r);
        return;
    }
    if (!r->api->opts.openapi || strncmp(url, prefix, sizeof prefix - 1) != 0 ||
        (url[sizeof prefix - 1] != '/' && url[sizeof prefix - 1] != 0)) {
        sl__reply_error(r, 404, DM_ERR_OPENAPI, "no such path: %s", url);
        return;
    }
    copy = strdup(url + sizeof prefix - 1);
    if (!copy) {
        sl__reply_error(r, 500, DM_ERR_INTERNAL, "out of memory");
        return;
    }
    split_path(r, copy);
    route_label(r, prefix);
    /* Every request body of the DM OpenAPI is a JSON object. One that is not is refused here,
     * also where the endpoint reads nothing of it: "POST .../verify" with a malformed body must
     * not start a run, nor "POST .../disable" disable a source. Parsed once: the handler's
     * sl__body_json hands out this object. */
    if (strcmp(r->method, "GET") && strcmp(r->method, "HEAD") && !body_blank(r) &&
        !(r->json = sl__body_json(r, 1))) {
        free(copy);
        return;
    }
    /* In a cluster the leader holds the sources and tasks: others forward, except for what every
     * member answers from etcd or from itself (the member lists, the API document). */
    if (a->member && !atomic_load(&a->leading) && r->nseg > 0 && strcmp(r->segs[0], "cluster") &&
        strcmp(r->segs[0], "docs") && strcmp(r->segs[0], "dm.json")) {
        sl__forward(r, url);
        goto done;
    }
    sl_error serr = { 0 };
    if (a->member && r->nseg > 0 && strcmp(r->segs[0], "cluster") && sl__meta_resync(a, &serr) != 0) {
        sl__reply_error(r, 503, DM_ERR_ETCD, "%s", serr.msg);
        goto done;
    }
    if (r->nseg == 0)
        sl__reply_error(r, 404, DM_ERR_OPENAPI, "no such path: %s", url);
    else if (!strcmp(r->segs[0], "cluster"))
        sl__cluster_route(r);
    else if (!strcmp(r->segs[0], "sources"))
        sl__sources_route(r);
    else if (!strcmp(r->segs[0], "tasks") && r->nseg == 2 && !strcmp(r->segs[1], "check") &&
             !strcmp(r->method, "POST"))
        sl__console_task_check(r);
    else if (!strcmp(r->segs[0], "tasks"))
        sl__tasks_route(r);
    else if (!strcmp(r->segs[0], "console"))
        sl__console_route(r);
    else if (!strcmp(r->segs[0], "docs") || !strcmp(r->segs[0], "dm.json"))
        sl__docs_route(r);
    else
        sl__reply_error(r, 404, DM_ERR_OPENAPI, "no such path: %s", url);
    if (r->status == 0)
        sl__reply_error(r, 404, DM_ERR_OPENAPI, "no such path: %s", url);
done:
    json_decref(r->json);
    r->json = NULL;
    free(copy);
}

/* ---- libmicrohttpd glue -------------------------------------------------------------------- */

typedef struct conn_state {
    char    *buf;
    size_t   len, cap;
    int      too_big;
    int      denied;    /* access refused at the first call: the body is read and dropped */
    sl_req   denial;
    struct timespec t0; /* the request's first call (metrics) */
    sl_blob *sending;   /* the blob being sent (one reference) */
} conn_state;

/* Queue the reply. A blob reply reuses the blob's response; the request's reference to the blob
 * moves to the connection state and is dropped when the answer has been sent (on_completed). */
static enum MHD_Result send_reply(struct MHD_Connection *c, sl_req *r, conn_state *cs)
{
    struct MHD_Response *resp;
    unsigned status = r->status ? r->status : 500;
    if (r->out_blob) {
        resp = blob_response(r->out_blob, r->ctype);
        if (!resp)
            return MHD_NO;
        cs->sending = r->out_blob;
        r->out_blob = NULL;
        return MHD_queue_response(c, status, resp);
    }
    resp = MHD_create_response_from_buffer_with_free_callback(r->out_len, r->out, free);
    if (!resp)
        return MHD_NO;
    r->out = NULL;
    if (r->ctype)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->ctype);
    if (r->challenge)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"sluice\"");
    enum MHD_Result ok = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ok;
}

typedef struct args_ctx {
    sl_query_arg *v;
    size_t n, cap;
    int failed;
    sl_query_arg *stack;   /* the caller's array (not freed) */
} args_ctx;

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    args_ctx *ac = cls;
    if (ac->n == ac->cap) {
        size_t cap = ac->cap * 2;
        sl_query_arg *nv = malloc(cap * sizeof *nv);
        if (!nv) {
            ac->failed = 1;
            return MHD_NO;
        }
        memcpy(nv, ac->v, ac->n * sizeof *nv);
        if (ac->v != ac->stack)
            free(ac->v);
        ac->v = nv;
        ac->cap = cap;
    }
    ac->v[ac->n++] = (sl_query_arg){ key, value };
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **con_cls)
{
    sl_api *a = cls;
    conn_state *cs = *con_cls;
    size_t limit = a->opts.body_limit;

    if (!cs) {
        cs = calloc(1, sizeof *cs);
        if (!cs)
            return MHD_NO;
        *con_cls = cs;
        clock_gettime(CLOCK_MONOTONIC, &cs->t0);
        /* Refused before its body is read: an unauthenticated client cannot make the server
         * buffer anything. */
        memset(&cs->denial, 0, sizeof cs->denial);
        cs->denial.api = a;
        cs->denial.method = method;
        snprintf(cs->denial.route, sizeof cs->denial.route, "denied");
        int page = !strcmp(method, "GET") && (!strcmp(url, "/console") || !strcmp(url, "/console/"));
        if ((page ? sl__access_check_cert(a, c, &cs->denial)
                  : sl__access_check(a, c, &cs->denial)) != 0) {
            cs->denied = 1;
            return MHD_YES;
        }
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > limit)
            cs->too_big = 1;
        return MHD_YES;
    }
    if (*upload_size) {
        if (!cs->too_big && cs->len + *upload_size > limit)
            cs->too_big = 1;
        if (!cs->too_big && !cs->denied) {
            if (cs->len + *upload_size + 1 > cs->cap) {
                size_t cap = cs->cap ? cs->cap : 4096;
                while (cap < cs->len + *upload_size + 1)
                    cap *= 2;
                char *nb = realloc(cs->buf, cap);
                if (!nb)
                    return MHD_NO;
                cs->buf = nb;
                cs->cap = cap;
            }
            memcpy(cs->buf + cs->len, upload_data, *upload_size);
            cs->len += *upload_size;
        }
        *upload_size = 0;
        return MHD_YES;
    }

    /* The query parameters as libmicrohttpd decoded them (pointers into its connection pool,
     * valid until the reply is queued). Most requests have none or a few. */
    sl_query_arg stack_args[16];
    args_ctx ac = { stack_args, 0, 16, 0, stack_args };
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_arg, &ac);
    sl_req r;
    if (cs->denied) {
        r = cs->denial;
        memset(&cs->denial, 0, sizeof cs->denial);
    } else if (ac.failed) {
        memset(&r, 0, sizeof r);
        r.api = a;
        r.method = method;
        route_of_url(&r, url);
        sl__reply_error(&r, 500, DM_ERR_INTERNAL, "out of memory");
    } else if (cs->too_big) {
        memset(&r, 0, sizeof r);
        r.api = a;
        r.method = method;
        route_of_url(&r, url);
        sl__reply_error(&r, 413, DM_ERR_OPENAPI, "request body is larger than the limit of %zu bytes",
                        limit);
    } else {
        sl__dispatch(a, &r, method, url, ac.v, ac.n, cs->buf ? cs->buf : "", cs->len);
    }
    if (ac.v != stack_args)
        free(ac.v);
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    sl__metrics_http(a, &r, method, (double)(t1.tv_sec - cs->t0.tv_sec) +
                                    (double)(t1.tv_nsec - cs->t0.tv_nsec) / 1e9);
    enum MHD_Result ok = send_reply(c, &r, cs);
    sl__req_reset(&r);
    return ok;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    conn_state *cs = *con_cls;
    if (cs) {
        sl__req_reset(&cs->denial);
        sl__blob_unref(cs->sending);
        free(cs->buf);
        free(cs);
        *con_cls = NULL;
    }
}

static int hexval(char ch)
{
    return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
         : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
}

/* libmicrohttpd's unescape of the path and the query values, except that "%00" and "%2F" stay
 * as they are: a NUL would cut the name short and a slash would split it, so that either named
 * another resource ("DELETE /sources/a%00b" deleted source "a"; "GET /sources/a%2Fstatus" was
 * source a's status). No name may hold either byte. An escape that is not two hex digits stays
 * too. */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    char *w = s;
    const char *r = s;
    while (*r) {
        int hi, lo;
        if (r[0] == '%' && (hi = hexval(r[1])) >= 0 && (lo = hexval(r[2])) >= 0 && (hi | lo) &&
            hi * 16 + lo != '/') {
            *w++ = (char)(hi * 16 + lo);
            r += 3;
        } else {
            *w++ = *r++;
        }
    }
    *w = 0;
    return (size_t)(w - s);
}

/* Parse "HOST:PORT" ("[v6]:PORT" too), then bind and listen there. */
int sl__http_bind(sl_api *a, sl_error *err)
{
    const char *addr = a->opts.addr;
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || (size_t)(colon - addr) >= sizeof host)
        return sl_error_set(err, SL_EINVAL, "address '%s' is not HOST:PORT", addr);
    const char *h = addr;
    size_t hl = (size_t)(colon - addr);
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    memcpy(host, h, hl);
    host[hl] = 0;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535 || colon[1] == 0)
        return sl_error_set(err, SL_EINVAL, "address '%s': bad port", addr);

    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV }, *ai = NULL;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%ld", port);
    int gai = getaddrinfo(host[0] ? host : NULL, portstr, &hints, &ai);
    if (gai != 0)
        return sl_error_set(err, SL_EINVAL, "address '%s': %s", addr, gai_strerror(gai));
    int one = 1, fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int v6 = ai->ai_family == AF_INET6;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        (v6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return sl_error_set(err, SL_EIO, "cannot listen on %s: %s", addr, strerror(e));
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        a->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
    else
        a->port = (unsigned)port;
    a->listen_fd = fd;
    a->listen_v6 = v6;
    return 0;
}

/* Serve on the socket sl__http_bind made (binding now if it was not called). */
int sl__http_start(sl_api *a, sl_error *err)
{
    int rc;
    if (a->listen_fd < 0 && (rc = sl__http_bind(a, err)) != 0)
        return rc;
    unsigned threads = a->opts.http_threads;
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_TURBO;
    /* The per-connection memory pool holds the request line, the headers and the read buffer
     * (bodies pass through it in pieces into our own buffer). libmicrohttpd clears the pool
     * between the requests of a keep-alive connection: 64 KiB made that memset 7-9% of the
     * server's CPU under bench/api.sh; 32 KiB (the library's default) halves that and still takes
     * 300 query parameters (each costs the pool a header record besides its text). */
    if (a->listen_v6)
        flags |= MHD_USE_IPv6;
    /* HTTPS (GnuTLS): the certificate and key, and the CA that client certificates must chain
     * to (libmicrohttpd then asks the client for one; access.c verifies it on every request).
     * Each option is given only when set: MHD_OPTION_ARRAY ends at the first MHD_OPTION_END. */
    struct MHD_OptionItem tls[4] = { { MHD_OPTION_END, 0, NULL } };
    size_t nt = 0;
    if (a->access.cert) {
        flags |= MHD_USE_TLS;
        tls[nt++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, a->access.key };
        tls[nt++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, a->access.cert };
        if (a->access.ca)
            tls[nt++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_TRUST, 0, a->access.ca };
        tls[nt] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
    }
    a->mhd = MHD_start_daemon(flags, (uint16_t)a->port, NULL, NULL, on_request, a,
                              MHD_OPTION_ARRAY, tls,
                              MHD_OPTION_LISTEN_SOCKET, a->listen_fd,
                              MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
                              MHD_OPTION_THREAD_POOL_SIZE, threads,
                              MHD_OPTION_NOTIFY_COMPLETED, on_completed, a,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
                              MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32 * 1024,
                              MHD_OPTION_END);
    /* the daemon owns the socket now and closes it when it stops; after a failed start the
     * process exits */
    a->listen_fd = -1;
    if (!a->mhd)
        return sl_error_set(err, SL_EIO, "cannot serve on %s%s", a->opts.addr,
                            a->access.cert ? " (ssl-cert/ssl-key not a valid pair?)" : "");
    return 0;
}

void sl__http_stop(sl_api *a)
{
    if (a->mhd) {
        MHD_stop_daemon(a->mhd);
        a->mhd = NULL;
    }
    if (a->listen_fd >= 0) {   /* bound, never served */
        close(a->listen_fd);
        a->listen_fd = -1;
    }
}
