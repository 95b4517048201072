/*
 * errclass.c - which errors a subtask may resume from by itself (worker.h sl_error_class). A
 * transient error is one the world fixes without the operator: a server restarting or away for
 * a while, a deadlock or a lock wait, too many connections, a target that is read-only during a
 * switchover. Everything else is fatal and waits for the operator: a purged binlog, access denied,
 * a statement the target rejects for its data or its schema, a shard DDL conflict, a bug. When
 * in doubt, fatal: resuming into the same data error forever helps nobody.
 *
 * The server's error number is read from the "(errno N)" every MySQL error message of the
 * plugins carries (plugins/common/myconn.c); the sluice code decides the rest.
 */
#include "worker.h"

#include <stdlib.h>
#include <string.h>

/* MySQL/MariaDB error numbers that say "try again later" (mysqld_error.h, errmsg.h). */
static const unsigned TRANSIENT[] = {
    1040,   /* ER_CON_COUNT_ERROR: too many connections */
    1053,   /* ER_SERVER_SHUTDOWN */
    1077,   /* ER_NORMAL_SHUTDOWN */
    1078,   /* ER_GOT_SIGNAL */
    1079,   /* ER_SHUTDOWN_COMPLETE */
    1080,   /* ER_FORCING_CLOSE */
    1152,   /* ER_ABORTING_CONNECTION */
    1158, 1159, 1160, 1161,   /* ER_NET_READ_ERROR, _READ_INTERRUPTED, _ERROR_ON_WRITE, _WRITE_INTERRUPTED */
    1205,   /* ER_LOCK_WAIT_TIMEOUT */
    1213,   /* ER_LOCK_DEADLOCK */
    1290,   /* ER_OPTION_PREVENTS_STATEMENT: --read-only / --super-read-only */
    1412,   /* ER_TABLE_DEF_CHANGED: a DDL raced a snapshot; a new one is consistent */
    1836,   /* ER_READ_ONLY_MODE */
    1927,   /* ER_CONNECTION_KILLED (MariaDB) */
    2002,   /* CR_CONNECTION_ERROR: local socket */
    2003,   /* CR_CONN_HOST_ERROR: can't connect */
    2006,   /* CR_SERVER_GONE_ERROR */
    2013,   /* CR_SERVER_LOST */
    2055,   /* CR_SERVER_LOST_EXTENDED */
    4031,   /* ER_CLIENT_INTERACTION_TIMEOUT (MariaDB) */
};

/* Errors a connection failure can carry that no waiting fixes. */
static const unsigned FATAL_CONN[] = {
    1044,   /* ER_DBACCESS_DENIED_ERROR */
    1045,   /* ER_ACCESS_DENIED_ERROR */
    1049,   /* ER_BAD_DB_ERROR */
    1236,   /* ER_MASTER_FATAL_ERROR_READING_BINLOG: purged binlog */
    1251,   /* ER_NOT_SUPPORTED_AUTH_MODE */
    2026,   /* CR_SSL_CONNECTION_ERROR: a TLS setting, not a network blip */
    2059,   /* CR_AUTH_PLUGIN_CANNOT_LOAD */
};

static int in(const unsigned *v, size_t n, unsigned x)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == x)
            return 1;
    return 0;
}

/* The last "(errno N)" of msg, or 0. */
static unsigned errno_of(const char *msg)
{
    unsigned e = 0;
    for (const char *p = msg ? strstr(msg, "(errno ") : NULL; p; p = strstr(p + 1, "(errno "))
        e = (unsigned)strtoul(p + 7, NULL, 10);
    return e;
}

sl_errclass sl_error_class(int code, const char *msg)
{
    unsigned e = errno_of(msg);
    if (e && in(FATAL_CONN, sizeof FATAL_CONN / sizeof *FATAL_CONN, e))
        return SL_ERRCLASS_FATAL;
    if (e && in(TRANSIENT, sizeof TRANSIENT / sizeof *TRANSIENT, e))
        return SL_ERRCLASS_TRANSIENT;
    if (code == SL_ECONN || code == SL_ETIMEOUT)
        return SL_ERRCLASS_TRANSIENT;
    return SL_ERRCLASS_FATAL;
}

const char *sl_errclass_name(sl_errclass c)
{
    return c == SL_ERRCLASS_TRANSIENT ? "transient" : c == SL_ERRCLASS_FATAL ? "fatal" : "";
}
