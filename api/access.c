/*
 * access.c - who may call the API: an optional bearer token (auth-token-file) and, with HTTPS,
 * an optional client certificate signed by ssl-ca whose common name is in cert-allowed-cn
 * (DM's names). Both are off by default; the default bind is loopback.
 *
 * The token is never kept in clear: the server keeps HMAC-SHA256(random key, token) and compares
 * the HMAC of what a request presents with a constant-time compare, so neither the compare's
 * time nor a memory dump gives the token away.
 */
#include "internal.h"

#include <gnutls/gnutls.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "sluice/file.h"
#include "sluice/log.h"
#include "tlsname.h"

static char *read_pem(const char *what, const char *path, sl_error *err)
{
    char *b = NULL;
    size_t len;
    sl_error e = { 0 };
    if (sl_file_read(path, 1u << 20, &b, &len, &e) != 0) {
        sl_error_set(err, SL_EINVAL, "%s %s: %s", what, path, e.msg);
        return NULL;
    }
    if (!strstr(b, "-----BEGIN ")) {
        sl_error_set(err, SL_EINVAL, "%s %s: not a PEM file", what, path);
        free(b);
        return NULL;
    }
    return b;
}

/* The host of "HOST:PORT" / "[V6]:PORT" is a loopback name or address. */
static int is_loopback(const char *addr)
{
    const char *colon = strrchr(addr, ':');
    size_t n = colon ? (size_t)(colon - addr) : strlen(addr);
    char host[256];
    snprintf(host, sizeof host, "%.*s", (int)n, addr);
    return !strncmp(host, "127.", 4) || !strcmp(host, "[::1]") || !strcmp(host, "::1") ||
           !strcasecmp(host, "localhost");
}

int sl__access_init(sl_api *a, sl_error *err)
{
    sl_access *x = &a->access;
    const sl_api_opts *o = &a->opts;
    if (o->auth_token && *o->auth_token) {
        if (getrandom(x->token_key, sizeof x->token_key, 0) != (ssize_t)sizeof x->token_key)
            return sl_error_set(err, SL_EIO, "no random bytes for the token key");
        sl_hmac_sha256(x->token_key, sizeof x->token_key, o->auth_token, strlen(o->auth_token),
                       x->token_mac);
        x->token_on = 1;
    }
    a->opts.auth_token = NULL;   /* the caller's memory; only the MAC is kept */
    if (!!o->ssl_cert != !!o->ssl_key)
        return sl_error_set(err, SL_EINVAL, "ssl-cert and ssl-key go together (HTTPS needs both)");
    if (o->ssl_ca && !o->ssl_cert)
        return sl_error_set(err, SL_EINVAL, "ssl-ca needs ssl-cert and ssl-key (client "
                            "certificates are checked over HTTPS only)");
    if (o->cert_allowed_cn && *o->cert_allowed_cn && !o->ssl_ca)
        return sl_error_set(err, SL_EINVAL, "cert-allowed-cn needs ssl-ca (the common name of a "
                            "client certificate signed by that CA is checked)");
    if (o->ssl_cert) {
        if (!(x->cert = read_pem("ssl-cert", o->ssl_cert, err)) ||
            !(x->key = read_pem("ssl-key", o->ssl_key, err)))
            return SL_EINVAL;
        if (o->ssl_ca && !(x->ca = read_pem("ssl-ca", o->ssl_ca, err)))
            return SL_EINVAL;
    }
    if (o->cert_allowed_cn && *o->cert_allowed_cn) {
        char *list = strdup(o->cert_allowed_cn), *save = NULL;
        if (!list)
            return sl_error_set(err, SL_ENOMEM, "out of memory");
        for (char *cn = strtok_r(list, ",", &save); cn; cn = strtok_r(NULL, ",", &save)) {
            while (*cn == ' ')
                cn++;
            size_t l = strlen(cn);
            while (l && cn[l - 1] == ' ')
                cn[--l] = 0;
            if (!l)
                continue;
            char **v = realloc(x->cns, (x->ncns + 1) * sizeof *v);
            if (!v || !(v[x->ncns] = strdup(cn))) {
                if (v)
                    x->cns = v;
                free(list);
                return sl_error_set(err, SL_ENOMEM, "out of memory");
            }
            x->cns = v;
            x->ncns++;
        }
        free(list);
    }
    if (!x->token_on && !x->ca && !is_loopback(o->addr))
        sl_log(SL_LOG_WARN, "server", "listening on %s without auth-token-file or a client CA: "
               "anyone who reaches this address controls the server", o->addr);
    return 0;
}

void sl__access_free(sl_api *a)
{
    sl_access *x = &a->access;
    free(x->cert);
    if (x->key) {
        memset(x->key, 0, strlen(x->key));
        free(x->key);
    }
    free(x->ca);
    for (size_t i = 0; i < x->ncns; i++)
        free(x->cns[i]);
    free(x->cns);
    memset(x, 0, sizeof *x);
}

/* The client certificate of a TLS connection: verified against ssl-ca, and its CN in the
 * allowed list when there is one. 0 = allowed; otherwise the reason in why. */
static int check_client_cert(sl_api *a, struct MHD_Connection *c, char *why, size_t wl)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    gnutls_session_t tls = ci ? (gnutls_session_t)ci->tls_session : NULL;
    unsigned status = 0, n = 0;
    if (!tls) {
        snprintf(why, wl, "no TLS session");
        return -1;
    }
    const gnutls_datum_t *certs = gnutls_certificate_get_peers(tls, &n);
    if (!certs || n == 0) {
        snprintf(why, wl, "a client certificate is required");
        return -1;
    }
    int rc = gnutls_certificate_verify_peers2(tls, &status);
    if (rc < 0 || status != 0) {
        gnutls_datum_t out = { 0 };
        if (rc >= 0 && gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &out,
                                                                    0) == 0) {
            snprintf(why, wl, "the client certificate is not trusted: %s", (char *)out.data);
            gnutls_free(out.data);
        } else {
            snprintf(why, wl, "the client certificate is not trusted: %s",
                     gnutls_strerror(rc < 0 ? rc : GNUTLS_E_CERTIFICATE_ERROR));
        }
        return -1;
    }
    if (a->access.ncns == 0)
        return 0;
    /* the one common name DM reads (the subject's last CN), not any of several */
    char cn[256];
    rc = sl_cert_common_name(&certs[0], cn, sizeof cn);
    if (rc < 0) {
        int none = rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE;
        snprintf(why, wl, "the client certificate has no common name%s%s",
                 none ? "" : " that can be read: ", none ? "" : gnutls_strerror(rc));
        return -1;
    }
    for (size_t i = 0; i < a->access.ncns; i++)
        if (!strcmp(cn, a->access.cns[i]))
            return 0;
    snprintf(why, wl, "the client certificate's common name %.200s is not in cert-allowed-cn", cn);
    return -1;
}

/*
 * What a web page in the operator's browser could do otherwise. A page of another site may send
 * a "simple" cross-site POST (a JSON body as text/plain, no preflight) to the loopback API, and
 * a page whose DNS name was rebound to 127.0.0.1 may read the answers. So a request with an
 * Origin (every browser sends one on a POST, PUT and DELETE) must come from this server's own
 * origin, and a server on loopback answers only to a loopback Host. Clients that are not
 * browsers (the CLI, curl, the cluster's members) send no Origin and a Host they dialled.
 */
static int check_browser(sl_api *a, struct MHD_Connection *c, sl_req *r)
{
    const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    const char *addr = a->opts.addr ? a->opts.addr : "127.0.0.1:8261";
    if (host && is_loopback(addr) && !is_loopback(host)) {
        sl__reply_error(r, 403, DM_ERR_UNAUTHORIZED, "Host '%.200s' refused: this server listens "
                        "on loopback (%s) and answers to a loopback name only (127.0.0.1, "
                        "localhost), which keeps out web pages whose DNS name points here", host,
                        addr);
        return -1;
    }
    if (origin) {
        const char *o = strstr(origin, "://");
        o = o ? o + 3 : origin;
        size_t n = strcspn(o, "/");
        if (!host || strlen(host) != n || strncasecmp(o, host, n) != 0) {
            sl__reply_error(r, 403, DM_ERR_UNAUTHORIZED, "a request from the web page of another "
                            "origin (%.200s) is refused: only this server's own pages (the "
                            "console) may call it from a browser", origin);
            return -1;
        }
    }
    return 0;
}

int sl__access_check_cert(sl_api *a, struct MHD_Connection *c, sl_req *r)
{
    char why[512];
    if (c && check_browser(a, c, r) != 0)
        return -1;
    if (a->access.ca && c && check_client_cert(a, c, why, sizeof why) != 0) {
        sl__reply_error(r, 403, DM_ERR_UNAUTHORIZED, "%s", why);
        return -1;
    }
    return 0;
}

int sl__access_check(sl_api *a, struct MHD_Connection *c, sl_req *r)
{
    sl_access *x = &a->access;
    if (sl__access_check_cert(a, c, r) != 0)
        return -1;
    if (!x->token_on)
        return 0;
    const char *h = c ? MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                    MHD_HTTP_HEADER_AUTHORIZATION) : NULL;
    if (h && !strncasecmp(h, "Bearer ", 7)) {
        const char *t = h + 7;
        while (*t == ' ')
            t++;
        uint8_t mac[SL_SHA256_LEN];
        sl_hmac_sha256(x->token_key, sizeof x->token_key, t, strlen(t), mac);
        if (sl_ct_memcmp(mac, x->token_mac, sizeof mac) == 0)
            return 0;
    }
    sl__reply_error(r, 401, DM_ERR_UNAUTHORIZED, h ? "the bearer token is not valid"
                    : "this server needs `Authorization: Bearer <token>` (auth-token-file)");
    r->challenge = 1;
    return -1;
}
