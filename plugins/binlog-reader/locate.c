/*
 * locate.c - where a binlog stream should start for a point in time (DM's start_time): the first
 * transaction that began at or after it. A binary search over the source's binlog files by the
 * time each was opened (its FORMAT_DESCRIPTION event), then a scan of the one file whose span
 * holds the time, transaction by transaction (GTID events). Every look at a file is a short
 * non-blocking COM_BINLOG_DUMP on a connection of its own; only event headers are read.
 */
#include "reader.h"

#include <mariadb_rpl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "myconn.h"

enum {
    EV_ROTATE = 4,
    EV_FDE = 15,
    EV_MYSQL_GTID = 33,
    EV_MYSQL_ANON_GTID = 34,
    EV_MARIADB_GTID = 162,
};

#define BINLOG_DUMP_NON_BLOCK 1   /* the server ends the dump at the end instead of waiting */

static uint32_t u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

typedef struct dumper {
    MYSQL       *db;
    MARIADB_RPL *rpl;
} dumper;

static void dump_close(dumper *d)
{
    if (d->rpl)
        mariadb_rpl_close(d->rpl);
    if (d->db)
        mysql_close(d->db);
    d->rpl = NULL;
    d->db = NULL;
}

static int dump_open(dumper *d, const sl_myconn_opts *o, uint32_t server_id, const char *file,
                     sl_error *err)
{
    memset(d, 0, sizeof *d);
    if (!(d->db = sl_myconn_open(o, err)))
        return err->code ? err->code : SL_ECONN;
    /* MariaDB turns GTID events into BEGIN queries for replicas that do not declare the GTID
     * capability (4); MySQL ignores the variable */
    const char *ck = "SET @master_binlog_checksum = @@global.binlog_checksum, "
                     "@mariadb_slave_capability = 4";
    int rc = sl_myconn_exec(d->db, ck, strlen(ck), err);
    if (rc < 0) {
        dump_close(d);
        return rc;
    }
    if (!(d->rpl = mariadb_rpl_init(d->db))) {
        dump_close(d);
        return sl_error_set(err, SL_ENOMEM, "mariadb_rpl_init failed");
    }
    mariadb_rpl_optionsv(d->rpl, MARIADB_RPL_SERVER_ID, (unsigned int)server_id);
    mariadb_rpl_optionsv(d->rpl, MARIADB_RPL_FILENAME, file, strlen(file));
    mariadb_rpl_optionsv(d->rpl, MARIADB_RPL_START, (unsigned long)4);
    mariadb_rpl_optionsv(d->rpl, MARIADB_RPL_FLAGS, (unsigned int)BINLOG_DUMP_NON_BLOCK);
    if (mariadb_rpl_open(d->rpl) != 0) {
        unsigned e = mysql_errno(d->db);
        rc = sl_error_set(err, sl_myconn_is_conn_error(e) ? SL_ECONN : SL_EDB,
                          "COM_BINLOG_DUMP of %s: %s (errno %u)", file, mysql_error(d->db), e);
        dump_close(d);
        return rc;
    }
    return 0;
}

/* The next event's header (at least 19 bytes): 1, 0 at the end of the dump, or < 0. */
static int dump_next(dumper *d, const uint8_t **ev, sl_error *err)
{
    unsigned long len = mysql_net_read_packet(d->db);
    if (len == 0 || len >= 0xFFFFFFFFul) {
        unsigned e = mysql_errno(d->db);
        return sl_error_set(err, sl_myconn_is_conn_error(e) ? SL_ECONN : SL_EDB,
                            "reading the binlog: %s (errno %u)", mysql_error(d->db), e);
    }
    const uint8_t *p = d->db->net.read_pos;
    if (p[0] == 0xFE && len < 9)
        return 0;
    if (p[0] == 0xFF)
        return sl_error_set(err, SL_EDB, "reading the binlog: %.*s", (int)(len > 3 ? len - 3 : 0),
                            (const char *)p + 3);
    if (p[0] != 0x00 || len < 20)
        return sl_error_set(err, SL_EDB, "reading the binlog: unexpected packet");
    *ev = p + 1;
    return 1;
}

/* The time the file was opened: its FORMAT_DESCRIPTION event's timestamp. */
static int file_time(const sl_myconn_opts *o, uint32_t sid, const char *file, int64_t *t,
                     sl_error *err)
{
    dumper d;
    int rc = dump_open(&d, o, sid, file, err);
    const uint8_t *ev;
    while (rc == 0 && (rc = dump_next(&d, &ev, err)) == 1) {
        if (ev[4] == EV_FDE) {
            *t = (int64_t)u32(ev);
            rc = 0;
            break;
        }
        rc = 0;
    }
    dump_close(&d);
    if (rc == 1 || (rc == 0 && *t < 0))
        return sl_error_set(err, SL_EDB, "binlog %s has no format description event", file);
    return rc;
}

/* The first transaction of file at or after t: *pos, or 0 when the file has none. */
static int scan_file(const sl_myconn_opts *o, uint32_t sid, const char *file, int64_t t,
                     uint64_t *pos, sl_error *err)
{
    dumper d;
    *pos = 0;
    int rc = dump_open(&d, o, sid, file, err);
    const uint8_t *ev;
    int fde_seen = 0;
    while (rc == 0 && (rc = dump_next(&d, &ev, err)) == 1) {
        rc = 0;
        uint8_t type = ev[4];
        uint32_t ts = u32(ev), size = u32(ev + 9), end = u32(ev + 13);
        if (type == EV_FDE)
            fde_seen = 1;
        else if (type == EV_ROTATE && fde_seen && ts != 0)
            break;      /* the file's own end: the next file is another scan */
        else if ((type == EV_MARIADB_GTID || type == EV_MYSQL_GTID || type == EV_MYSQL_ANON_GTID) &&
                 (int64_t)ts >= t && end >= size) {
            *pos = end - size;
            break;
        }
    }
    dump_close(&d);
    return rc < 0 ? rc : 0;
}

int br_locate_time(const sl_myconn_opts *o, uint32_t server_id, int64_t t, char *file,
                   size_t flen, uint64_t *pos, sl_error *err)
{
    MYSQL *db = sl_myconn_open(o, err);
    if (!db)
        return err->code ? err->code : SL_ECONN;
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    if (mysql_query(db, "SHOW BINARY LOGS") != 0) {
        rc = sl_error_set(err, SL_EDB, "SHOW BINARY LOGS: %s (errno %u)", mysql_error(db),
                          mysql_errno(db));
    } else {
        MYSQL_RES *res = mysql_store_result(db);
        MYSQL_ROW row;
        while (res && (row = mysql_fetch_row(res)) && rc == 0) {
            if (n == cap) {
                char **v = realloc(names, (cap = cap ? cap * 2 : 16) * sizeof *v);
                if (!v) {
                    rc = sl_error_set(err, SL_ENOMEM, "out of memory");
                    break;
                }
                names = v;
            }
            if (!(names[n] = strdup(row[0] ? row[0] : "")))
                rc = sl_error_set(err, SL_ENOMEM, "out of memory");
            else
                n++;
        }
        if (res)
            mysql_free_result(res);
    }
    char end_file[512] = "";
    uint64_t end_pos = 0;
    if (rc == 0 && mysql_query(db, "SHOW MASTER STATUS") == 0) {
        MYSQL_RES *res = mysql_store_result(db);
        MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
        if (row && row[0]) {
            snprintf(end_file, sizeof end_file, "%s", row[0]);
            end_pos = strtoull(row[1] ? row[1] : "4", NULL, 10);
        }
        if (res)
            mysql_free_result(res);
    }
    mysql_close(db);
    if (rc == 0 && n == 0)
        rc = sl_error_set(err, SL_EDB, "the source has no binary logs");
    /* the last file opened at or before t (the first file when t is older than all of them) */
    size_t lo = 0, hi = n;
    while (rc == 0 && hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        int64_t mt = -1;
        if ((rc = file_time(o, server_id, names[mid], &mt, err)) < 0)
            break;
        if (mt <= t)
            lo = mid;
        else
            hi = mid;
    }
    *pos = 0;
    for (size_t i = lo; rc == 0 && i < n && !*pos; i++) {
        if ((rc = scan_file(o, server_id, names[i], t, pos, err)) == 0 && *pos)
            snprintf(file, flen, "%s", names[i]);
    }
    if (rc == 0 && !*pos) {
        /* nothing began at or after t yet: start where the source is now */
        snprintf(file, flen, "%s", end_file[0] ? end_file : names[n - 1]);
        *pos = end_pos ? end_pos : 4;
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}
