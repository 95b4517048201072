/*
 * docs.c - the server documents itself: GET /api/v1/dm.json is the OpenAPI document of this
 * server (docs/openapi.json, embedded at build time) and GET /api/v1/docs an HTML page rendered
 * from it by the server (no CDN, no JavaScript), listing every operation with its parameters.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

extern const char sl__openapi_json[];
extern const size_t sl__openapi_json_len;

static void html_esc(char **buf, size_t *len, size_t *cap, const char *s)
{
    for (; s && *s; s++) {
        char tmp[8];
        const char *p = tmp;
        switch (*s) {
        case '<': p = "&lt;"; break;
        case '>': p = "&gt;"; break;
        case '&': p = "&amp;"; break;
        case '"': p = "&quot;"; break;
        default: tmp[0] = *s; tmp[1] = 0;
        }
        size_t n = strlen(p);
        if (*len + n + 1 > *cap) {
            size_t c = *cap * 2 + n + 1;
            char *nb = realloc(*buf, c);
            if (!nb)
                return;
            *buf = nb;
            *cap = c;
        }
        memcpy(*buf + *len, p, n + 1);
        *len += n;
    }
}

static void add(char **buf, size_t *len, size_t *cap, const char *s)
{
    size_t n = strlen(s);
    if (*len + n + 1 > *cap) {
        size_t c = *cap * 2 + n + 1;
        char *nb = realloc(*buf, c);
        if (!nb)
            return;
        *buf = nb;
        *cap = c;
    }
    memcpy(*buf + *len, s, n + 1);
    *len += n;
}

static char *render_html(void)
{
    json_t *doc = json_loadb(sl__openapi_json, sl__openapi_json_len, 0, NULL);
    size_t cap = 65536, len = 0;
    char *b = malloc(cap);
    if (!b || !doc) {
        free(b);
        json_decref(doc);
        return NULL;
    }
    b[0] = 0;
    json_t *info = json_object_get(doc, "info");
    add(&b, &len, &cap, "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>");
    html_esc(&b, &len, &cap, json_string_value(json_object_get(info, "title")));
    add(&b, &len, &cap, "</title><style>body{font-family:sans-serif;max-width:60em;margin:2em auto;"
        "line-height:1.4}code,pre{background:#f4f4f4;padding:0 .2em}.op{border-left:4px solid #888;"
        "padding:.2em .8em;margin:1em 0}.GET{border-color:#2a7}.POST{border-color:#27a}"
        ".PUT{border-color:#a72}.DELETE{border-color:#a22}.m{font-weight:bold}</style></head><body><h1>");
    html_esc(&b, &len, &cap, json_string_value(json_object_get(info, "title")));
    add(&b, &len, &cap, "</h1><p>");
    html_esc(&b, &len, &cap, json_string_value(json_object_get(info, "description")));
    add(&b, &len, &cap, "</p><p>Machine-readable: <a href=\"/api/v1/dm.json\">/api/v1/dm.json</a> "
        "(OpenAPI 3). Errors are <code>{\"error_msg\": \"...\", \"error_code\": N}</code>.</p>");
    const char *path;
    json_t *item;
    json_object_foreach(json_object_get(doc, "paths"), path, item) {
        const char *method;
        json_t *op;
        json_object_foreach(item, method, op) {
            char up[16];
            size_t i;
            for (i = 0; method[i] && i < sizeof up - 1; i++)
                up[i] = (char)(method[i] >= 'a' && method[i] <= 'z' ? method[i] - 32 : method[i]);
            up[i] = 0;
            add(&b, &len, &cap, "<div class=\"op ");
            add(&b, &len, &cap, up);
            add(&b, &len, &cap, "\"><p><span class=\"m\">");
            add(&b, &len, &cap, up);
            add(&b, &len, &cap, "</span> <code>");
            html_esc(&b, &len, &cap, path);
            add(&b, &len, &cap, "</code> — ");
            html_esc(&b, &len, &cap, json_string_value(json_object_get(op, "summary")));
            add(&b, &len, &cap, "</p>");
            const char *desc = json_string_value(json_object_get(op, "description"));
            if (desc) {
                add(&b, &len, &cap, "<p>");
                html_esc(&b, &len, &cap, desc);
                add(&b, &len, &cap, "</p>");
            }
            json_t *params = json_object_get(op, "parameters"), *p;
            if (json_array_size(params)) {
                add(&b, &len, &cap, "<p>Parameters: ");
                json_array_foreach(params, i, p) {
                    add(&b, &len, &cap, i ? ", <code>" : "<code>");
                    html_esc(&b, &len, &cap, json_string_value(json_object_get(p, "name")));
                    add(&b, &len, &cap, "</code> (");
                    html_esc(&b, &len, &cap, json_string_value(json_object_get(p, "in")));
                    add(&b, &len, &cap, ")");
                }
                add(&b, &len, &cap, "</p>");
            }
            const char *code;
            json_t *resp;
            add(&b, &len, &cap, "<p>Responses: ");
            int first = 1;
            json_object_foreach(json_object_get(op, "responses"), code, resp) {
                add(&b, &len, &cap, first ? "<code>" : ", <code>");
                first = 0;
                html_esc(&b, &len, &cap, code);
                add(&b, &len, &cap, "</code> ");
                html_esc(&b, &len, &cap, json_string_value(json_object_get(resp, "description")));
            }
            add(&b, &len, &cap, "</p></div>");
        }
    }
    add(&b, &len, &cap, "</body></html>\n");
    json_decref(doc);
    return b;
}

void sl__docs_route(sl_req *r)
{
    if (r->nseg != 1)
        return;
    if (strcmp(r->method, "GET")) {
        sl__reply_method(r, "GET");
        return;
    }
    if (!strcmp(r->segs[0], "dm.json")) {
        char *copy = malloc(sl__openapi_json_len + 1);
        if (!copy) {
            sl__reply_error(r, 500, DM_ERR_INTERNAL, "out of memory");
            return;
        }
        memcpy(copy, sl__openapi_json, sl__openapi_json_len);
        sl__reply_raw(r, 200, "application/json", copy, sl__openapi_json_len);
        return;
    }
    char *html = render_html();
    if (!html)
        sl__reply_error(r, 500, DM_ERR_INTERNAL, "cannot render the API documentation");
    else
        sl__reply_raw(r, 200, "text/html; charset=utf-8", html, strlen(html));
}
