/*
 * gtid.c - syntax of GTID sets as a task gives them for its start position: MySQL's
 * (uuid:interval[:interval...][,uuid:...]) and MariaDB's (domain-server-seq[,...]).
 */
#include "sluice/compiler.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

/* Unsigned decimal up to max; advances *p. Returns 0 or -1. */
static int number(const char **p, uint64_t max, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    if (!isdigit((unsigned char)*s))
        return -1;
    while (isdigit((unsigned char)*s)) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (max - d) / 10)
            return -1;
        v = v * 10 + d;
        s++;
    }
    *p = s;
    *out = v;
    return 0;
}

static int is_uuid(const char *p)
{
    static const int groups[] = { 8, 4, 4, 4, 12 };
    for (int g = 0; g < 5; g++) {
        for (int i = 0; i < groups[g]; i++, p++)
            if (!isxdigit((unsigned char)*p))
                return 0;
        if (g < 4 && *p++ != '-')
            return 0;
    }
    return 1;
}

static int check_mysql(const char *s, char *msg, size_t n)
{
    const char *p = skip_ws(s);
    for (int set = 0;; set++) {
        if (!is_uuid(p)) {
            snprintf(msg, n, "GTID set %d must start with a server UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)",
                     set + 1);
            return -1;
        }
        p += 36;
        int intervals = 0;
        while (*p == ':') {
            p++;
            if (isalpha((unsigned char)*p) || *p == '_') {   /* MySQL 8.3 tag */
                int len = 0;
                while (isalnum((unsigned char)*p) || *p == '_') {
                    p++;
                    len++;
                }
                if (len > 32 || *p != ':') {
                    snprintf(msg, n, "invalid GTID tag in set %d", set + 1);
                    return -1;
                }
                continue;
            }
            uint64_t a, b;
            if (number(&p, INT64_MAX, &a) < 0 || a == 0) {
                snprintf(msg, n, "GTID set %d: an interval must start with a number >= 1", set + 1);
                return -1;
            }
            if (*p == '-') {
                p++;
                if (number(&p, INT64_MAX, &b) < 0 || b < a) {
                    snprintf(msg, n, "GTID set %d: interval %llu-? must end with a number >= %llu",
                             set + 1, (unsigned long long)a, (unsigned long long)a);
                    return -1;
                }
            }
            intervals++;
        }
        if (!intervals) {
            snprintf(msg, n, "GTID set %d: expected ':' and an interval after the server UUID", set + 1);
            return -1;
        }
        p = skip_ws(p);
        if (!*p)
            return 0;
        if (*p != ',') {
            snprintf(msg, n, "unexpected '%c' in GTID set %d", *p, set + 1);
            return -1;
        }
        p = skip_ws(p + 1);
    }
}

static int check_mariadb(const char *s, char *msg, size_t n)
{
    const char *p = skip_ws(s);
    uint64_t domains[64];
    size_t nd = 0;
    for (int g = 0;; g++) {
        uint64_t dom, srv, seq;
        if (number(&p, UINT32_MAX, &dom) < 0 || *p++ != '-' || number(&p, UINT32_MAX, &srv) < 0 ||
            *p++ != '-' || number(&p, UINT64_MAX, &seq) < 0) {
            snprintf(msg, n, "GTID %d must be domain-server-sequence (three unsigned numbers, e.g. 0-1-100)",
                     g + 1);
            return -1;
        }
        for (size_t i = 0; i < nd; i++) {
            if (domains[i] == dom) {
                snprintf(msg, n, "domain %llu appears twice in the GTID position", (unsigned long long)dom);
                return -1;
            }
        }
        if (nd < sizeof domains / sizeof domains[0])
            domains[nd++] = dom;
        p = skip_ws(p);
        if (!*p)
            return 0;
        if (*p != ',') {
            snprintf(msg, n, "unexpected '%c' after GTID %d", *p, g + 1);
            return -1;
        }
        p = skip_ws(p + 1);
    }
}

int sl_gtid_set_check(const char *gtid, const char *flavor, char *msg, size_t msglen)
{
    char tmp[256];
    if (!msg) {
        msg = tmp;
        msglen = sizeof tmp;
    }
    msg[0] = '\0';
    if (!gtid || !*skip_ws(gtid))
        return 0;
    if (flavor && strcmp(flavor, "mysql") == 0)
        return check_mysql(gtid, msg, msglen) < 0 ? SL_EINVAL : 0;
    if (flavor && strcmp(flavor, "mariadb") == 0)
        return check_mariadb(gtid, msg, msglen) < 0 ? SL_EINVAL : 0;
    /* Flavor unknown: either syntax will do; explain with the one the text resembles. */
    char m1[256], m2[256];
    if (check_mysql(gtid, m1, sizeof m1) == 0 || check_mariadb(gtid, m2, sizeof m2) == 0)
        return 0;
    snprintf(msg, msglen, "%s (MySQL: uuid:1-5,...; MariaDB: domain-server-seq,...)",
             strchr(gtid, ':') ? m1 : m2);
    return SL_EINVAL;
}
