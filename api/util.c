/*
 * util.c - small helpers of the API: the three views of a secret in a JSON object (in clear in
 * memory, sealed in the store, masked as "******" in every answer), and DM's time and duration
 * strings of the start and stop requests.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int secret_key(const char *k)
{
    return !strcmp(k, "password") || !strcmp(k, "ssl_key_content");
}

static int hidden_key(const char *k)
{
    return !strcmp(k, "ssl_ca_content") || !strcmp(k, "ssl_cert_content") ||
           !strcmp(k, "ssl_key_content");
}

/* Walk v in place; fn(key, value) may return a replacement (new reference) or NULL. */
typedef json_t *(*rewrite_fn)(sl_api *a, const char *key, json_t *val, int *failed);

static void rewrite(sl_api *a, json_t *v, rewrite_fn fn, int *failed)
{
    const char *k;
    json_t *x;
    size_t i;
    if (json_is_object(v)) {
        json_object_foreach(v, k, x) {
            json_t *nv = fn(a, k, x, failed);
            if (nv)
                json_object_set_new(v, k, nv);
            else
                rewrite(a, x, fn, failed);
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, x)
            rewrite(a, x, fn, failed);
    }
}

/* A password shows as "******" whatever it is (an empty one too: DM does so); TLS material as
 * "******" when there is some and "" when there is none, so that a GET tells whether TLS is set
 * up and a PUT of "" (clear it) differs from a PUT of what GET showed (keep it). */
static json_t *mask_fn(sl_api *a, const char *k, json_t *v, int *failed)
{
    if (!strcmp(k, "password") && !json_is_null(v))
        return json_string(SL__MASK);
    if (hidden_key(k) && json_is_string(v))
        return json_string(json_string_length(v) ? SL__MASK : "");
    return NULL;
}

json_t *sl__mask_passwords(const json_t *obj)
{
    json_t *c = json_deep_copy(obj);
    int failed = 0;
    if (c)
        rewrite(NULL, c, mask_fn, &failed);
    return c;
}

/* The members of a connection object that GET masks: [0] the object below it holding the member
 * (NULL: the connection object itself), [1] the member. */
static const char *const MASKED[][2] = {
    { NULL, "password" },
    { "security", "ssl_ca_content" },
    { "security", "ssl_cert_content" },
    { "security", "ssl_key_content" },
};

/* The first of host, port and user that conn gives and old does not have, or NULL. */
static const char *moved_member(const json_t *conn, const json_t *old)
{
    static const char *const same[] = { "host", "port", "user" };
    for (size_t i = 0; i < sizeof same / sizeof *same; i++) {
        json_t *now = json_object_get(conn, same[i]);
        if (now && !json_equal(now, json_object_get(old, same[i])))
            return same[i];
    }
    return NULL;
}

int sl__keep_masked_secrets(sl_req *r, json_t *conn, const json_t *old, const char *path)
{
    if (!json_is_object(conn))
        return 0;
    for (size_t i = 0; i < sizeof MASKED / sizeof *MASKED; i++) {
        const char *sub = MASKED[i][0], *key = MASKED[i][1];
        json_t *in = sub ? json_object_get(conn, sub) : conn;
        const json_t *was = sub ? json_object_get(old, sub) : old;
        const char *v = json_string_value(json_object_get(in, key));
        /* a value that is old's own json_t was not sent but kept from old by the caller */
        if (!v || strcmp(v, SL__MASK) || json_object_get(in, key) == json_object_get(was, key))
            continue;
        const char *what = sub ? "TLS material" : "password";
        const char *give = sub ? "give the PEM content" : "give the password";
        const char *moved = old ? moved_member(conn, old) : NULL;
        const char *keep = json_string_value(json_object_get(was, key));
        if (moved) {
            sl__reply_error(r, 400, DM_ERR_OPENAPI, "%s%s%s/%s: \"" SL__MASK "\" stands for the "
                            "stored %s only with the stored host, port and user (%s differs): %s",
                            path, sub ? "/" : "", sub ? sub : "", key, what, moved, give);
            return SL_EINVAL;
        }
        /* GET shows no TLS material as "", so a mask there was not read from this object; an
         * empty password is masked as well and comes back as the mask */
        if (!old || (sub && (!keep || !*keep))) {
            sl__reply_error(r, 400, DM_ERR_OPENAPI, "%s%s%s/%s: \"" SL__MASK "\" is a masked %s "
                            "and nothing is stored here: %s", path, sub ? "/" : "",
                            sub ? sub : "", key, what, give);
            return SL_EINVAL;
        }
        json_object_set_new(in, key, json_string(keep ? keep : ""));
    }
    return 0;
}

static json_t *seal_fn(sl_api *a, const char *k, json_t *v, int *failed)
{
    if (!secret_key(k) || !json_is_string(v) || !json_string_length(v))
        return NULL;
    char *s = sl_secret_seal(&a->key, json_string_value(v));
    if (!s) {
        *failed = 1;
        return json_string("");
    }
    json_t *r = json_string(s);
    free(s);
    return r;
}

json_t *sl__seal_secrets(sl_api *a, const json_t *obj)
{
    json_t *c = json_deep_copy(obj);
    int failed = 0;
    if (c)
        rewrite(a, c, seal_fn, &failed);
    if (failed) {
        json_decref(c);
        return NULL;
    }
    return c;
}

static json_t *open_fn(sl_api *a, const char *k, json_t *v, int *failed)
{
    const char *s = json_string_value(v);
    if (!secret_key(k) || !s || strncmp(s, SL_SECRET_PREFIX, strlen(SL_SECRET_PREFIX)) != 0)
        return NULL;
    char *p = sl_secret_open(&a->key, s, NULL);
    if (!p) {
        *failed = 1;
        return json_string("");
    }
    json_t *r = json_string(p);
    memset(p, 0, strlen(p));
    free(p);
    return r;
}

int sl__open_secrets(sl_api *a, json_t *obj, sl_error *err)
{
    int failed = 0;
    rewrite(a, obj, open_fn, &failed);
    return failed ? sl_error_set(err, SL_EINVAL, "a stored secret cannot be decrypted with "
                                 "secret.key of the data dir (wrong key or altered store)") : 0;
}

char *sl__dump_compact(const json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* DM's start_time: RFC 3339 with an offset ("2006-01-02T15:04:05+08:00", "...Z", "+0800", a space
 * instead of the T, fractions of a second ignored). A value without an offset (DM: in the
 * upstream's zone) returns 1 with *out unset: the caller asks the source what it means. */
int sl__parse_time(const char *s, long long *out, char *why, size_t wl)
{
    struct tm tm = { 0 };
    int n = 0;
    if (sscanf(s, "%4d-%2d-%2d%*1[T ]%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6 || n < 19) {
        snprintf(why, wl, "'%.64s' is not a time like \"2006-01-02T15:04:05+08:00\"", s);
        return -1;
    }
    const char *p = s + n;
    if (*p == '.')
        while (*++p >= '0' && *p <= '9')
            ;
    long off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int hh = 0, mm = 0, k = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &hh, &mm, &k) == 2 && k == 5) {
        } else if (sscanf(p + 1, "%2d%2d%n", &hh, &mm, &k) == 2 && k == 4) {
        } else {
            snprintf(why, wl, "'%.64s': the offset must be +HH:MM or +HHMM", s);
            return -1;
        }
        off = (hh * 3600L + mm * 60L) * (*p == '-' ? -1 : 1);
        p += 1 + k;
    } else if (!*p && tm.tm_mon >= 1 && tm.tm_mon <= 12 && tm.tm_mday >= 1 && tm.tm_mday <= 31 &&
               tm.tm_hour <= 23 && tm.tm_min <= 59 && tm.tm_sec <= 60) {
        return 1;
    }
    if (*p || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
        tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60) {
        snprintf(why, wl, "'%.64s' is not a valid time", s);
        return -1;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    if (t == (time_t)-1 || t - off <= 0) {
        snprintf(why, wl, "'%.64s' is not a valid time", s);
        return -1;
    }
    *out = (long long)(t - off);
    return 0;
}

/* A Go duration ("10s", "1m30s", "1.5h", "500ms"): whole seconds, rounded up. */
int sl__parse_duration(const char *s, long long *out, char *why, size_t wl)
{
    static const struct { const char *u; double secs; } units[] = {
        { "ns", 1e-9 }, { "us", 1e-6 }, { "\xc2\xb5s", 1e-6 }, { "ms", 1e-3 }, { "s", 1 },
        { "m", 60 }, { "h", 3600 },
    };
    double total = 0;
    const char *p = s;
    if (!*p)
        goto bad;
    while (*p) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || v < 0)
            goto bad;
        p = end;
        size_t best = 0, bl = 0;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
            size_t l = strlen(units[i].u);
            if (!strncmp(p, units[i].u, l) && l > bl) {
                best = i;
                bl = l;
            }
        }
        if (!bl)
            goto bad;
        total += v * units[best].secs;
        p += bl;
    }
    if (total > 366.0 * 86400) {
        snprintf(why, wl, "'%.64s' is longer than a year", s);
        return -1;
    }
    *out = (long long)total + (total > (double)(long long)total);
    return 0;
bad:
    snprintf(why, wl, "'%.64s' is not a duration like \"10s\", \"1m30s\" or \"500ms\"", s);
    return -1;
}
