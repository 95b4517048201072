/*
 * etcd.c - the etcd v3 client of the cluster (etcd.h): JSON requests to the gateway's /v3/...
 * paths over libcurl, keys and values base64 as the gateway wants, int64s as JSON strings.
 */
#include "etcd.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ENDPOINTS 16

struct sl_etcd {
    CURL *curl;
    char *urls[MAX_ENDPOINTS];
    int n;
    int cur;                    /* the endpoint that answered last: tried first */
    long timeout_ms;
};

/* ---- base64 (the gateway's bytes fields) ---- */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *b64_encode(const char *data, size_t len)
{
    char *out = malloc(4 * ((len + 2) / 3) + 1), *o = out;
    if (!out) return NULL;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)(unsigned char)data[i] << 16;
        if (i + 1 < len) v |= (uint32_t)(unsigned char)data[i + 1] << 8;
        if (i + 2 < len) v |= (unsigned char)data[i + 2];
        *o++ = B64[(v >> 18) & 63];
        *o++ = B64[(v >> 12) & 63];
        *o++ = i + 1 < len ? B64[(v >> 6) & 63] : '=';
        *o++ = i + 2 < len ? B64[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

static int b64_val(char c)
{
    const char *p = c ? strchr(B64, c) : NULL;
    return p ? (int)(p - B64) : -1;
}

/* NULL for malformed text (an etcd that sends it is not one we can trust) or no memory. */
static char *b64_decode(const char *text, size_t *outlen)
{
    size_t len = strlen(text);
    if (len % 4) return NULL;
    char *out = malloc(len / 4 * 3 + 1);
    size_t n = 0;
    if (!out) return NULL;
    for (size_t i = 0; i < len; i += 4) {
        int a = b64_val(text[i]), b = b64_val(text[i + 1]);
        int c = text[i + 2] == '=' ? 0 : b64_val(text[i + 2]);
        int d = text[i + 3] == '=' ? 0 : b64_val(text[i + 3]);
        if (a < 0 || b < 0 || c < 0 || d < 0) { free(out); return NULL; }
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
        out[n++] = (char)(v >> 16);
        if (text[i + 2] != '=') out[n++] = (char)(v >> 8);
        if (text[i + 3] != '=') out[n++] = (char)v;
    }
    out[n] = '\0';
    *outlen = n;
    return out;
}

/* The gateway writes int64 as a JSON string ("7") and leaves out fields that are zero. */
static int64_t j_int64(json_t *obj, const char *name)
{
    json_t *v = json_object_get(obj, name);
    if (json_is_string(v)) return strtoll(json_string_value(v), NULL, 10);
    if (json_is_integer(v)) return (int64_t)json_integer_value(v);
    return 0;
}

/* ---- transport ---- */

typedef struct buf {
    char *p;
    size_t len;
} buf;

/* Responses are small (keys of the metadata store); a bound keeps a wrong endpoint from
 * making us buffer without end. */
#define MAX_RESPONSE (64u << 20)

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
    buf *b = ud;
    size_t n = size * nmemb;
    if (b->len + n > MAX_RESPONSE) return 0;
    char *p = realloc(b->p, b->len + n + 1);
    if (!p) return 0;
    memcpy(p + b->len, ptr, n);
    b->p = p;
    b->len += n;
    b->p[b->len] = '\0';
    return n;
}

/* POST body to path on one endpoint after another until one answers; *resp gets the JSON answer
 * (caller decrefs). An HTTP error from etcd (a gRPC status through the gateway) is an answer
 * too: it comes back as SL_EIO with etcd's message, and we do not retry it elsewhere. */
static int call(sl_etcd *e, const char *path, json_t *body, json_t **resp, sl_error *err)
{
    char *text = json_dumps(body, JSON_COMPACT);
    char fails[SL_ERRMSG_MAX] = "";
    size_t fl = 0;
    if (!text) return sl_error_set(err, SL_ENOMEM, "etcd: out of memory");
    for (int k = 0; k < e->n; k++) {
        int i = (e->cur + k) % e->n;
        char url[512];
        buf b = {0};
        long code = 0;
        snprintf(url, sizeof url, "%s%s", e->urls[i], path);
        curl_easy_setopt(e->curl, CURLOPT_URL, url);
        curl_easy_setopt(e->curl, CURLOPT_POSTFIELDS, text);
        curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(e->curl, CURLOPT_WRITEDATA, &b);
        CURLcode cc = curl_easy_perform(e->curl);
        if (cc != CURLE_OK) {
            free(b.p);
            if (fl < sizeof fails)
                fl += (size_t)snprintf(fails + fl, sizeof fails - fl, "%s%s: %s", fl ? "; " : "",
                                       e->urls[i], curl_easy_strerror(cc));
            continue;
        }
        curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, &code);
        json_error_t je;
        json_t *j = b.p ? json_loads(b.p, 0, &je) : NULL;
        free(b.p);
        free(text);
        e->cur = i;
        if (!json_is_object(j)) {
            json_decref(j);
            return sl_error_set(err, SL_EPARSE, "etcd %s%s: HTTP %ld with no JSON object", e->urls[i],
                                path, code);
        }
        if (code != 200) {
            const char *m = json_string_value(json_object_get(j, "message"));
            if (!m) m = json_string_value(json_object_get(j, "error"));
            int rc = sl_error_set(err, SL_EIO, "etcd %s%s: HTTP %ld: %s", e->urls[i], path, code,
                                  m ? m : "no message");
            json_decref(j);
            return rc;
        }
        *resp = j;
        return 0;
    }
    free(text);
    return sl_error_set(err, SL_ECONN, "etcd: no endpoint answered (%s)", fails);
}

int sl_etcd_new(const char *endpoints, long timeout_ms, sl_etcd **out, sl_error *err)
{
    if (!endpoints || !*endpoints || timeout_ms <= 0)
        return sl_error_set(err, SL_EINVAL, "etcd: need endpoints and a positive timeout");
    sl_etcd *e = calloc(1, sizeof *e);
    if (!e) return sl_error_set(err, SL_ENOMEM, "etcd: out of memory");
    e->timeout_ms = timeout_ms;
    const char *p = endpoints;
    while (*p) {
        size_t len = strcspn(p, ",");
        if (len == 0 || len > 400 || e->n == MAX_ENDPOINTS) {
            sl_etcd_free(e);
            return sl_error_set(err, SL_EINVAL, "etcd: bad endpoint list '%s' (empty, too long or "
                                "more than %d endpoints)", endpoints, MAX_ENDPOINTS);
        }
        int has_scheme = (len > 7 && !strncmp(p, "http://", 7)) || (len > 8 && !strncmp(p, "https://", 8));
        char *u = malloc(len + 8);
        if (!u) { sl_etcd_free(e); return sl_error_set(err, SL_ENOMEM, "etcd: out of memory"); }
        snprintf(u, len + 8, "%s%.*s", has_scheme ? "" : "http://", (int)len, p);
        while (strlen(u) > 0 && u[strlen(u) - 1] == '/') u[strlen(u) - 1] = '\0';
        e->urls[e->n++] = u;
        p += len;
        if (*p == ',') p++;
    }
    e->curl = curl_easy_init();
    if (!e->curl) { sl_etcd_free(e); return sl_error_set(err, SL_ENOMEM, "etcd: curl_easy_init failed"); }
    curl_easy_setopt(e->curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e->curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e->curl, CURLOPT_NOSIGNAL, 1L);   /* threads: no SIGALRM for DNS timeouts */
    *out = e;
    return 0;
}

void sl_etcd_free(sl_etcd *e)
{
    if (!e) return;
    for (int i = 0; i < e->n; i++) free(e->urls[i]);
    if (e->curl) curl_easy_cleanup(e->curl);
    free(e);
}

/* ---- KV ---- */

/* json string of base64(s[0..len)) for a request field; NULL on no memory. */
static json_t *j_b64(const char *s, size_t len)
{
    char *t = b64_encode(s, len);
    json_t *j = t ? json_string(t) : NULL;
    free(t);
    return j;
}

static int kv_from_json(json_t *o, sl_etcd_kv *kv, sl_error *err)
{
    size_t klen = 0;
    const char *k = json_string_value(json_object_get(o, "key"));
    const char *v = json_string_value(json_object_get(o, "value"));
    memset(kv, 0, sizeof *kv);
    kv->key = k ? b64_decode(k, &klen) : NULL;
    kv->value = v ? b64_decode(v, &kv->value_len) : calloc(1, 1);   /* empty values are omitted */
    if (!kv->key || !kv->value) {
        sl_etcd_kv_clear(kv);
        return sl_error_set(err, SL_EPARSE, "etcd: malformed key or value in a range answer");
    }
    kv->mod_revision = j_int64(o, "mod_revision");
    kv->lease = j_int64(o, "lease");
    return 0;
}

void sl_etcd_kv_clear(sl_etcd_kv *kv)
{
    if (!kv) return;
    free(kv->key);
    free(kv->value);
    memset(kv, 0, sizeof *kv);
}

void sl_etcd_kvs_free(sl_etcd_kv *kvs, size_t n)
{
    for (size_t i = 0; i < n; i++) sl_etcd_kv_clear(&kvs[i]);
    free(kvs);
}

int sl_etcd_ping(sl_etcd *e, sl_error *err)
{
    json_t *resp = NULL, *req = json_pack("{s:s}", "key", "AA==");
    int rc = req ? call(e, "/v3/kv/range", req, &resp, err) : sl_error_set(err, SL_ENOMEM, "etcd: out of memory");
    json_decref(req);
    json_decref(resp);
    return rc;
}

int sl_etcd_get(sl_etcd *e, const char *key, sl_etcd_kv *kv, sl_error *err)
{
    json_t *resp = NULL, *req = json_pack("{s:o}", "key", j_b64(key, strlen(key)));
    if (!req) return sl_error_set(err, SL_ENOMEM, "etcd: out of memory");
    int rc = call(e, "/v3/kv/range", req, &resp, err);
    json_decref(req);
    if (rc < 0) return rc;
    json_t *kvs = json_object_get(resp, "kvs");
    if (json_array_size(kvs) == 0)
        rc = sl_error_set(err, SL_ENOENT, "etcd: no key '%s'", key);
    else
        rc = kv_from_json(json_array_get(kvs, 0), kv, err);
    json_decref(resp);
    return rc;
}

int sl_etcd_get_prefix(sl_etcd *e, const char *prefix, long limit, sl_etcd_kv **out, size_t *n,
                       sl_error *err)
{
    return sl_etcd_get_range(e, prefix, prefix, limit, out, n, err);
}

/* range_end of every key that starts with prefix: the prefix with its last byte + 1. A last byte
 * of 0xff would carry; our keys are text, so refuse rather than read the wrong range.
 * Caller frees. */
static char *prefix_end(const char *prefix, sl_error *err)
{
    size_t plen = strlen(prefix);
    if (plen == 0) { sl_error_set(err, SL_EINVAL, "etcd: empty prefix"); return NULL; }
    if ((unsigned char)prefix[plen - 1] == 0xff) {
        sl_error_set(err, SL_EINVAL, "etcd: prefix ends in 0xff");
        return NULL;
    }
    char *end = strdup(prefix);
    if (!end) { sl_error_set(err, SL_ENOMEM, "etcd: out of memory"); return NULL; }
    end[plen - 1]++;
    return end;
}

int sl_etcd_get_range(sl_etcd *e, const char *from, const char *prefix, long limit,
                      sl_etcd_kv **out, size_t *n, sl_error *err)
{
    *out = NULL;
    *n = 0;
    if (strncmp(from, prefix, strlen(prefix)) != 0)
        return sl_error_set(err, SL_EINVAL, "etcd: range start '%s' is outside prefix '%s'", from, prefix);
    sl_error tmp = {0};
    char *end = prefix_end(prefix, &tmp);
    if (!end) return sl_error_set(err, tmp.code, "%s", tmp.msg);
    json_t *resp = NULL;
    json_t *req = json_pack("{s:o,s:o,s:I}", "key", j_b64(from, strlen(from)),
                            "range_end", j_b64(end, strlen(end)),
                            "limit", (json_int_t)(limit > 0 ? limit : 0));
    free(end);
    if (!req) return sl_error_set(err, SL_ENOMEM, "etcd: out of memory");
    int rc = call(e, "/v3/kv/range", req, &resp, err);
    json_decref(req);
    if (rc < 0) return rc;
    json_t *kvs = json_object_get(resp, "kvs");
    size_t cnt = json_array_size(kvs);
    sl_etcd_kv *arr = cnt ? calloc(cnt, sizeof *arr) : NULL;
    if (cnt && !arr) { json_decref(resp); return sl_error_set(err, SL_ENOMEM, "etcd: out of memory"); }
    for (size_t i = 0; i < cnt; i++) {
        rc = kv_from_json(json_array_get(kvs, i), &arr[i], err);
        if (rc < 0) { sl_etcd_kvs_free(arr, i); json_decref(resp); return rc; }
    }
    json_decref(resp);
    *out = arr;
    *n = cnt;
    return 0;
}

static json_t *put_request(const char *key, const char *value, size_t len, int64_t lease)
{
    json_t *r = json_pack("{s:o,s:o}", "key", j_b64(key, strlen(key)), "value", j_b64(value, len));
    if (r && lease) json_object_set_new(r, "lease", json_integer((json_int_t)lease));
    return r;
}

int sl_etcd_put(sl_etcd *e, const char *key, const char *value, size_t len, int64_t lease,
                int64_t *revision, sl_error *err)
{
    json_t *resp = NULL, *req = put_request(key, value, len, lease);
    if (!req) return sl_error_set(err, SL_ENOMEM, "etcd: out of memory");
    int rc = call(e, "/v3/kv/put", req, &resp, err);
    json_decref(req);
    if (rc == 0 && revision) *revision = j_int64(json_object_get(resp, "header"), "revision");
    json_decref(resp);
    return rc;
}

/* One transaction: if key's MOD revision is expect (or, expect 0, its CREATE revision is 0, i.e.
 * it does not exist) then op. 0 when it ran, SL_ESTATE when the compare failed. */
static int txn_if(sl_etcd *e, const char *key, int64_t expect, json_t *op, int64_t *revision,
                  sl_error *err)
{
    json_t *cmp = json_pack("{s:o,s:s,s:s,s:I}", "key", j_b64(key, strlen(key)), "result", "EQUAL",
                            "target", expect ? "MOD" : "CREATE",
                            expect ? "mod_revision" : "create_revision", (json_int_t)expect);
    json_t *req = cmp && op ? json_pack("{s:[o],s:[o]}", "compare", cmp, "success", op) : NULL;
    if (!req) {
        if (!cmp || !op) { json_decref(cmp); json_decref(op); }
        return sl_error_set(err, SL_ENOMEM, "etcd: out of memory");
    }
    json_t *resp = NULL;
    int rc = call(e, "/v3/kv/txn", req, &resp, err);
    json_decref(req);
    if (rc < 0) return rc;
    /* The gateway leaves out a false "succeeded". */
    if (!json_is_true(json_object_get(resp, "succeeded")))
        rc = sl_error_set(err, SL_ESTATE, "etcd: '%s' changed since revision %lld", key, (long long)expect);
    else if (revision)
        *revision = j_int64(json_object_get(resp, "header"), "revision");
    json_decref(resp);
    return rc;
}

int sl_etcd_put_if(sl_etcd *e, const char *key, const char *value, size_t len, int64_t expect,
                   int64_t lease, int64_t *revision, sl_error *err)
{
    json_t *put = put_request(key, value, len, lease);
    return txn_if(e, key, expect, put ? json_pack("{s:o}", "request_put", put) : NULL, revision, err);
}

int sl_etcd_delete(sl_etcd *e, const char *key, int *deleted, sl_error *err)
{
    json_t *resp = NULL, *req = json_pack("{s:o}", "key", j_b64(key, strlen(key)));
    if (!req) return sl_error_set(err, SL_ENOMEM, "etcd: out of memory");
    int rc = call(e, "/v3/kv/deleterange", req, &resp, err);
    json_decref(req);
    if (rc == 0 && deleted) *deleted = j_int64(resp, "deleted") > 0;
    json_decref(resp);
    return rc;
}

int sl_etcd_delete_if(sl_etcd *e, const char *key, int64_t expect, sl_error *err)
{
    if (expect <= 0) return sl_error_set(err, SL_EINVAL, "etcd: delete_if needs a revision");
    json_t *del = json_pack("{s:o}", "key", j_b64(key, strlen(key)));
    return txn_if(e, key, expect, del ? json_pack("{s:o}", "request_delete_range", del) : NULL, NULL, err);
}

/* ---- leases ---- */

int sl_etcd_lease_grant(sl_etcd *e, long ttl_s, int64_t *lease, sl_error *err)
{
    if (ttl_s <= 0) return sl_error_set(err, SL_EINVAL, "etcd: lease TTL must be positive");
    json_t *resp = NULL, *req = json_pack("{s:I}", "TTL", (json_int_t)ttl_s);
    if (!req) return sl_error_set(err, SL_ENOMEM, "etcd: out of memory");
    int rc = call(e, "/v3/lease/grant", req, &resp, err);
    json_decref(req);
    if (rc == 0) {
        *lease = j_int64(resp, "ID");
        if (*lease == 0) rc = sl_error_set(err, SL_EPARSE, "etcd: lease grant answered no ID");
    }
    json_decref(resp);
    return rc;
}

int sl_etcd_lease_keepalive(sl_etcd *e, int64_t lease, long *ttl_left, sl_error *err)
{
    json_t *resp = NULL, *req = json_pack("{s:I}", "ID", (json_int_t)lease);
    if (!req) return sl_error_set(err, SL_ENOMEM, "etcd: out of memory");
    int rc = call(e, "/v3/lease/keepalive", req, &resp, err);
    json_decref(req);
    if (rc < 0) return rc;
    /* A stream through the gateway: {"result":{...,"TTL":"n"}}. An expired lease renews to TTL 0
     * (left out): its keys are gone already. */
    int64_t ttl = j_int64(json_object_get(resp, "result"), "TTL");
    json_decref(resp);
    if (ttl <= 0) return sl_error_set(err, SL_ENOENT, "etcd: lease %lld expired", (long long)lease);
    if (ttl_left) *ttl_left = (long)ttl;
    return 0;
}

int sl_etcd_lease_revoke(sl_etcd *e, int64_t lease, sl_error *err)
{
    json_t *resp = NULL, *req = json_pack("{s:I}", "ID", (json_int_t)lease);
    if (!req) return sl_error_set(err, SL_ENOMEM, "etcd: out of memory");
    sl_error tmp = {0};
    int rc = call(e, "/v3/lease/revoke", req, &resp, &tmp);
    json_decref(req);
    json_decref(resp);
    /* "requested lease not found": it expired, which is what revoking wanted. */
    if (rc == SL_EIO && strstr(tmp.msg, "not found")) return 0;
    if (rc < 0) return sl_error_set(err, rc, "%s", tmp.msg);
    return 0;
}

/* ---- transactions of many keys ---- */

/* etcd's default --max-txn-ops. */
#define MAX_TXN_OPS 128

static json_t *cmp_json(const sl_etcd_cmp *c)
{
    json_t *k = j_b64(c->key, strlen(c->key));
    switch (c->kind) {
    case SL_ETCD_ABSENT:
        return json_pack("{s:o,s:s,s:s,s:I}", "key", k, "result", "EQUAL", "target", "CREATE",
                         "create_revision", (json_int_t)0);
    case SL_ETCD_PRESENT:
        return json_pack("{s:o,s:s,s:s,s:I}", "key", k, "result", "GREATER", "target", "VERSION",
                         "version", (json_int_t)0);
    case SL_ETCD_MOD_IS:
        return json_pack("{s:o,s:s,s:s,s:I}", "key", k, "result", "EQUAL", "target", "MOD",
                         "mod_revision", (json_int_t)c->rev);
    case SL_ETCD_CREATED_AT:
        return json_pack("{s:o,s:s,s:s,s:I}", "key", k, "result", "EQUAL", "target", "CREATE",
                         "create_revision", (json_int_t)c->rev);
    }
    json_decref(k);
    return NULL;
}

static json_t *op_json(const sl_etcd_op *o, sl_error *err)
{
    switch (o->kind) {
    case SL_ETCD_PUT: {
        json_t *p = put_request(o->key, o->value ? o->value : "", o->value ? o->len : 0, o->lease);
        return p ? json_pack("{s:o}", "request_put", p) : NULL;
    }
    case SL_ETCD_DELETE:
        return json_pack("{s:{s:o}}", "request_delete_range", "key", j_b64(o->key, strlen(o->key)));
    case SL_ETCD_DELETE_PREFIX: {
        char *end = prefix_end(o->key, err);
        if (!end) return NULL;
        json_t *j = json_pack("{s:{s:o,s:o}}", "request_delete_range", "key",
                              j_b64(o->key, strlen(o->key)), "range_end", j_b64(end, strlen(end)));
        free(end);
        return j;
    }
    }
    sl_error_set(err, SL_EINVAL, "etcd: bad transaction op %d", (int)o->kind);
    return NULL;
}

int sl_etcd_txn(sl_etcd *e, const sl_etcd_cmp *cmps, size_t ncmp, const sl_etcd_op *ops,
                size_t nops, int64_t *revision, sl_error *err)
{
    if (ncmp > MAX_TXN_OPS || nops > MAX_TXN_OPS)
        return sl_error_set(err, SL_ELIMIT, "etcd: a transaction of %zu conditions and %zu writes "
                            "is more than etcd's %d per transaction", ncmp, nops, MAX_TXN_OPS);
    json_t *jc = json_array(), *jo = json_array();
    sl_error tmp = {0};
    int rc = 0;
    for (size_t i = 0; jc && i < ncmp && rc == 0; i++)
        if (json_array_append_new(jc, cmp_json(&cmps[i])) != 0)
            rc = sl_error_set(err, SL_ENOMEM, "etcd: out of memory");
    for (size_t i = 0; jo && i < nops && rc == 0; i++) {
        json_t *j = op_json(&ops[i], &tmp);
        if (!j)
            rc = sl_error_set(err, tmp.code ? tmp.code : SL_ENOMEM, "%s",
                              tmp.code ? tmp.msg : "etcd: out of memory");
        else if (json_array_append_new(jo, j) != 0)
            rc = sl_error_set(err, SL_ENOMEM, "etcd: out of memory");
    }
    json_t *req = NULL, *resp = NULL;
    if (rc == 0 && (!jc || !jo || !(req = json_pack("{s:O,s:O}", "compare", jc, "success", jo))))
        rc = sl_error_set(err, SL_ENOMEM, "etcd: out of memory");
    json_decref(jc);
    json_decref(jo);
    if (rc == 0)
        rc = call(e, "/v3/kv/txn", req, &resp, err);
    json_decref(req);
    if (rc < 0) return rc;
    if (!json_is_true(json_object_get(resp, "succeeded")))
        rc = sl_error_set(err, SL_ESTATE, "etcd: a condition of the transaction no longer holds");
    else if (revision)
        *revision = j_int64(json_object_get(resp, "header"), "revision");
    json_decref(resp);
    return rc;
}
