/*
 * tlsname.h - the common name of an X.509 certificate as DM reads it for cert-allowed-cn: shared
 * by the plugins' check of a MySQL server's certificate (tlsname.c) and the API's check of a
 * client certificate (api/access.c), so both judge a certificate alike.
 */
#ifndef SLUICE_TLSNAME_H
#define SLUICE_TLSNAME_H

#include <stddef.h>
#include <gnutls/gnutls.h>

/* The common name of the DER certificate der as DM checks it: Go's crypto/x509 keeps the last CN
 * attribute of the subject in its encoded order (pkix.Name.FillFromRDNSequence overwrites
 * CommonName at each one), the most specific name (written first as "CN=b,CN=a"). A subject with
 * several CNs is judged by that one alone: accepting any of them would let in a certificate
 * whose own name is not allowed. Copied into cn (cap bytes, NUL-terminated). 0, or a negative
 * GnuTLS code: GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE when the subject has no CN, another when a
 * CN cannot be read whole (too long for cap, a NUL inside). Thread-safe. */
int sl_cert_common_name(const gnutls_datum_t *der, char *cn, size_t cap);

#endif
