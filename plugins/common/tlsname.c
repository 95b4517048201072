/*
 * tlsname.c - DM's cert_allowed_cn for the MySQL servers a plugin connects to: before the real
 * connection, a short TLS handshake of its own (the MySQL protocol's SSLRequest, then GnuTLS)
 * reads the server's certificate, verifies it against the CA when one is given, and checks that
 * its common name (the last CN of its subject, as DM reads it) is one of the allowed names. The
 * MariaDB connector of Debian 12 (3.3) gives no access to the peer certificate, hence the second
 * handshake; it costs one round trip more per connection, only for servers whose security names
 * a cert_allowed_cn. sl_cert_common_name (tlsname.h) is also the API's reader of client
 * certificates.
 */
#include "myconn.h"
#include "tlsname.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The capability bits of the SSLRequest (mariadb_com.h has them too, as CLIENT_*). */
enum { CAP_LONG_PASSWORD = 0x1, CAP_PROTOCOL_41 = 0x200, CAP_SSL = 0x800,
       CAP_SECURE_CONNECTION = 0x8000 };

static int read_full(int fd, uint8_t *p, size_t n, int timeout_ms)
{
    while (n) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        if (poll(&pfd, 1, timeout_ms) <= 0)
            return -1;
        ssize_t r = read(fd, p, n);
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int connect_to(const char *host, int port, int timeout_ms, sl_error *err)
{
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
    int g = getaddrinfo(host, ps, &hints, &ai);
    if (g != 0) {
        sl_error_set(err, SL_ECONN, "%s:%d: %s", host, port, gai_strerror(g));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *x = ai; x && fd < 0; x = x->ai_next) {
        fd = socket(x->ai_family, x->ai_socktype | SOCK_CLOEXEC, x->ai_protocol);
        if (fd >= 0 && connect(fd, x->ai_addr, x->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    (void)timeout_ms;
    if (fd < 0)
        sl_error_set(err, SL_ECONN, "%s:%d: %s", host, port, strerror(errno));
    return fd;
}

int sl_cert_common_name(const gnutls_datum_t *der, char *cn, size_t cap)
{
    gnutls_x509_crt_t crt;
    int rc = gnutls_x509_crt_init(&crt);
    if (rc < 0)
        return rc;
    rc = gnutls_x509_crt_import(crt, der, GNUTLS_X509_FMT_DER);
    int found = GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE;
    /* every CN in encoded order, until the index past the last one; the last read wins */
    for (unsigned i = 0; rc >= 0; i++) {
        char buf[1024];
        size_t len = sizeof buf;
        rc = gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, i, 0, buf, &len);
        if (rc < 0)
            break;
        if (strlen(buf) != len || len >= cap) {   /* "allowed\0more" must not read as "allowed" */
            rc = strlen(buf) != len ? GNUTLS_E_ASN1_EMBEDDED_NULL_IN_STRING
                                    : GNUTLS_E_SHORT_MEMORY_BUFFER;
            break;
        }
        memcpy(cn, buf, len + 1);
        found = 0;
    }
    gnutls_x509_crt_deinit(crt);
    return rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE ? found : rc;
}

/* 1 if cn is one of the comma-separated names of list (blanks around names ignored). */
static int cn_allowed(const char *list, const char *cn)
{
    size_t cl = strlen(cn);
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > p && t[-1] == ' ')
            t--;
        if ((size_t)(t - p) == cl && cl && !memcmp(p, cn, cl))
            return 1;
        p = e;
    }
    return 0;
}

int sl_myconn_check_cn(const sl_myconn_opts *o, sl_error *err)
{
    int tmo = (int)(o->connect_timeout ? o->connect_timeout : 10) * 1000;
    int fd = connect_to(o->host, o->port, tmo, err);
    if (fd < 0)
        return SL_ECONN;
    uint8_t hdr[4], pkt[1024];
    int rc = 0;
    size_t len;
    if (read_full(fd, hdr, 4, tmo) != 0 ||
        (len = (size_t)hdr[0] | (size_t)hdr[1] << 8 | (size_t)hdr[2] << 16) < 40 ||
        len > sizeof pkt || read_full(fd, pkt, len, tmo) != 0) {
        close(fd);
        return sl_error_set(err, SL_ECONN, "%s:%d: no MySQL greeting", o->host, o->port);
    }
    if (pkt[0] == 0xFF) {
        close(fd);
        return sl_error_set(err, SL_ECONN, "%s:%d: the server refused the connection: %.*s",
                            o->host, o->port, (int)(len > 9 ? len - 9 : 0), (const char *)pkt + 9);
    }
    /* protocol version, server version (NUL), thread id (4), scramble (8), filler (1), caps */
    const uint8_t *p = memchr(pkt + 1, 0, len - 1);
    if (!p || (size_t)(p - pkt) + 1 + 4 + 8 + 1 + 2 > len) {
        close(fd);
        return sl_error_set(err, SL_ECONN, "%s:%d: malformed MySQL greeting", o->host, o->port);
    }
    p += 1 + 4 + 8 + 1;
    unsigned caps = (unsigned)p[0] | (unsigned)p[1] << 8;
    if (!(caps & CAP_SSL)) {
        close(fd);
        return sl_error_set(err, SL_EINVAL, "%s:%d: the server does not offer TLS, so its "
                            "certificate's common name cannot be checked (cert_allowed_cn)",
                            o->host, o->port);
    }
    uint8_t req[36] = { 32, 0, 0, 1 };
    unsigned mine = CAP_LONG_PASSWORD | CAP_PROTOCOL_41 | CAP_SSL | CAP_SECURE_CONNECTION;
    req[4] = (uint8_t)mine;
    req[5] = (uint8_t)(mine >> 8);
    req[6] = (uint8_t)(mine >> 16);
    req[7] = (uint8_t)(mine >> 24);
    req[10] = 0;   /* max packet 16 MiB: bytes 8..11 little endian */
    req[11] = 1;
    req[12] = 45;  /* utf8mb4_general_ci */
    if (write(fd, req, sizeof req) != (ssize_t)sizeof req) {
        close(fd);
        return sl_error_set(err, SL_ECONN, "%s:%d: %s", o->host, o->port, strerror(errno));
    }
    gnutls_session_t s = NULL;
    gnutls_certificate_credentials_t cred = NULL;
    char why[512] = "";
    if (gnutls_certificate_allocate_credentials(&cred) < 0 ||
        gnutls_init(&s, GNUTLS_CLIENT) < 0 || gnutls_set_default_priority(s) < 0 ||
        gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred) < 0) {
        snprintf(why, sizeof why, "cannot set up TLS");
        rc = SL_ENOMEM;
        goto out;
    }
    if (o->ssl_ca && *o->ssl_ca) {
        gnutls_datum_t ca = { (unsigned char *)o->ssl_ca, (unsigned)strlen(o->ssl_ca) };
        if (gnutls_certificate_set_x509_trust_mem(cred, &ca, GNUTLS_X509_FMT_PEM) <= 0) {
            snprintf(why, sizeof why, "the CA (ssl_ca) is not a PEM certificate");
            rc = SL_EINVAL;
            goto out;
        }
    }
    gnutls_transport_set_int(s, fd);
    gnutls_handshake_set_timeout(s, (unsigned)tmo);
    int hr;
    do
        hr = gnutls_handshake(s);
    while (hr < 0 && !gnutls_error_is_fatal(hr));
    if (hr < 0) {
        snprintf(why, sizeof why, "TLS handshake: %s", gnutls_strerror(hr));
        rc = SL_ECONN;
        goto out;
    }
    unsigned n = 0, status = 0;
    const gnutls_datum_t *certs = gnutls_certificate_get_peers(s, &n);
    if (!certs || !n) {
        snprintf(why, sizeof why, "the server sent no certificate");
        rc = SL_EINVAL;
        goto out;
    }
    if (o->ssl_ca && *o->ssl_ca &&
        (gnutls_certificate_verify_peers2(s, &status) < 0 || status != 0)) {
        snprintf(why, sizeof why, "the server's certificate is not signed by the CA (ssl_ca)");
        rc = SL_EINVAL;
        goto out;
    }
    char cn[256];
    int gr = sl_cert_common_name(&certs[0], cn, sizeof cn);
    if (gr < 0) {
        int none = gr == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE;
        snprintf(why, sizeof why, "the server's certificate has no common name%s%s",
                 none ? "" : " that can be read: ", none ? "" : gnutls_strerror(gr));
        rc = SL_EINVAL;
    } else if (!cn_allowed(o->cert_allowed_cn, cn)) {
        snprintf(why, sizeof why, "the server's certificate common name \"%.200s\" is not in "
                 "cert_allowed_cn", cn);
        rc = SL_EINVAL;
    }
    if (rc == 0)
        gnutls_bye(s, GNUTLS_SHUT_RDWR);
out:
    if (s)
        gnutls_deinit(s);
    if (cred)
        gnutls_certificate_free_credentials(cred);
    close(fd);
    if (rc)
        sl_error_set(err, rc, "%s:%d: %s", o->host, o->port, why);
    return rc;
}
