/*
 * util.c - small helpers of the API: the three views of a secret in a JSON object:
 * in clear (memory), sealed (the store) and masked as "******" (every answer).
 */
#include "internal.h"

#include <string.h>

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

static json_t *mask_fn(sl_api *a, const char *k, json_t *v, int *failed)
{
    if (!strcmp(k, "password") && !json_is_null(v))
        return json_string("******");
    if (hidden_key(k) && json_is_string(v))
        return json_string("");
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
