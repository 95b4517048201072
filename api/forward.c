/*
 * forward.c - how any master answers every endpoint (issue 13): the leader alone holds the
 * cluster's sources and tasks in memory and writes them to etcd, so a member that does not lead
 * passes the request on to the leader's advertised address and relays its answer unchanged. One
 * writer keeps the in-memory state and the store telling the same story; etcd's revision checks
 * catch a deposed leader that has not noticed yet.
 */
#include "internal.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/log.h"

/* Long requests (a task start that checks its sources, a verify) run on the leader in full. */
#define FORWARD_TIMEOUT_S 300

typedef struct fbuf {
    char *p;
    size_t len;
    size_t limit;
} fbuf;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
    fbuf *b = ud;
    size_t n = size * nmemb;
    if (b->len + n > b->limit)
        return 0;
    char *p = realloc(b->p, b->len + n + 1);
    if (!p)
        return 0;
    memcpy(p + b->len, ptr, n);
    b->p = p;
    b->len += n;
    b->p[b->len] = 0;
    return n;
}

/* The content types the API answers with, as static strings (the reply keeps a pointer). */
static const char *ctype_of(const char *t)
{
    if (!t || strstr(t, "json"))
        return "application/json";
    if (strstr(t, "html"))
        return "text/html; charset=utf-8";
    return "text/plain; charset=utf-8";
}

void sl__forward(sl_req *r, const char *url)
{
    sl_api *a = r->api;
    char leader[300];
    sl_error err = { 0 };
    int rc = sl_member_leader_addr(a->member, leader, sizeof leader, &err);
    if (rc != 0) {
        sl__reply_error(r, 503, DM_ERR_ETCD, "%s", err.msg);
        return;
    }
    const char *self = a->opts.advertise_addr ? a->opts.advertise_addr :
                       a->adv_addr ? a->adv_addr : a->opts.addr;
    if (!strcmp(leader, self)) {
        /* etcd says we lead, but this process has not taken over yet (it restores the sources
         * and tasks first): answering from an empty state would be wrong */
        sl__reply_error(r, 503, DM_ERR_ETCD, "this master is taking over as the leader: try "
                        "again in a few seconds");
        return;
    }
    CURL *c = curl_easy_init();
    struct curl_slist *hdrs = NULL;
    fbuf b = { .limit = 256u << 20 };
    char *full = NULL;
    size_t cap = strlen(url) + strlen(leader) + 32, len;
    for (size_t i = 0; i < r->nargs; i++)
        cap += 3 * (strlen(r->args[i].key) + (r->args[i].value ? strlen(r->args[i].value) : 0)) + 2;
    if (!c || !(full = malloc(cap))) {
        sl__reply_error(r, 500, DM_ERR_INTERNAL, "out of memory");
        goto out;
    }
    len = (size_t)snprintf(full, cap, "%s://%s%s", a->access.cert ? "https" : "http", leader, url);
    /* the query as libmicrohttpd decoded it, encoded again */
    for (size_t i = 0; i < r->nargs; i++) {
        char *k = curl_easy_escape(c, r->args[i].key, 0);
        char *v = r->args[i].value ? curl_easy_escape(c, r->args[i].value, 0) : NULL;
        len += (size_t)snprintf(full + len, cap - len, "%c%s%s%s", i ? '&' : '?', k ? k : "",
                                v ? "=" : "", v ? v : "");
        curl_free(k);
        curl_free(v);
    }
    curl_easy_setopt(c, CURLOPT_URL, full);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, r->method);
    if (r->body_len || !strcmp(r->method, "POST") || !strcmp(r->method, "PUT")) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
    }
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    hdrs = curl_slist_append(hdrs, "Expect:");
    if (a->fwd_auth)
        hdrs = curl_slist_append(hdrs, a->fwd_auth);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    if (a->access.cert) {
        /* members of an HTTPS cluster share its CA and present their own certificate */
        if (a->opts.ssl_ca)
            curl_easy_setopt(c, CURLOPT_CAINFO, a->opts.ssl_ca);
        curl_easy_setopt(c, CURLOPT_SSLCERT, a->opts.ssl_cert);
        curl_easy_setopt(c, CURLOPT_SSLKEY, a->opts.ssl_key);
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)FORWARD_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        sl__reply_error(r, 503, DM_ERR_ETCD, "the leader at %s did not answer: %s", leader,
                        curl_easy_strerror(cc));
        goto out;
    }
    long code = 0;
    char *ct = NULL;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
    sl__reply_raw(r, (unsigned)code, ctype_of(ct), b.p ? b.p : strdup(""), b.len);
    b.p = NULL;
out:
    free(b.p);
    free(full);
    curl_slist_free_all(hdrs);
    if (c)
        curl_easy_cleanup(c);
}
