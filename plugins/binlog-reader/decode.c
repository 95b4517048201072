/*
 * decode.c - the pure binlog event decoder (see decode.h): bytes in, headers, positions, table
 * maps and typed row values out. Every read is bounds-checked; nothing here does I/O.
 *
 * Formats follow MariaDB's sql/log_event.cc, log_event_server.cc and the MySQL internals manual
 * ("Binary log" chapter, row event value formats: sql/field.cc pack/unpack).
 */
#include "decode.h"

#include <sluice/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#define BAD(err, ...) sl_error_set((err), SL_EINVAL, __VA_ARGS__)

/* ---- little helpers --------------------------------------------------------------------- */

static inline uint32_t le16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static inline uint32_t le24(const uint8_t *p) { return le16(p) | (uint32_t)p[2] << 16; }
static inline uint32_t le32(const uint8_t *p) { return le24(p) | (uint32_t)p[3] << 24; }
static inline uint64_t le48(const uint8_t *p) { return le32(p) | (uint64_t)le16(p + 4) << 32; }
static inline uint64_t le64(const uint8_t *p) { return le32(p) | (uint64_t)le32(p + 4) << 32; }
/* A little-endian length of n bytes (a BLOB's or a VARCHAR's prefix: 1 to 4). */
static inline size_t le_n(const uint8_t *p, uint32_t n)
{
    size_t v = 0;
    for (uint32_t i = 0; i < n; i++)
        v |= (size_t)p[i] << (8 * i);
    return v;
}
static inline uint64_t be_n(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Length-encoded integer (packed): 0 and the value, or -1 if truncated or the NULL marker. */
static int packed(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
    const uint8_t *p = *pp;
    if (p >= end)
        return -1;
    uint8_t b = *p++;
    size_t n = 0;
    if (b < 251) {
        *out = b;
    } else if (b == 252) {
        n = 2;
    } else if (b == 253) {
        n = 3;
    } else if (b == 254) {
        n = 8;
    } else {
        return -1;
    }
    if (n) {
        if ((size_t)(end - p) < n)
            return -1;
        *out = n == 2 ? le16(p) : n == 3 ? le24(p) : le64(p);
        p += n;
    }
    *pp = p;
    return 0;
}

/* ---- CRC32 (slice-by-8, the IEEE polynomial zlib uses) ------------------------------------ */

static uint32_t crc_tab[8][256];
static int crc_ready;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_tab[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^ crc_tab[0][crc_tab[t - 1][i] & 0xFF];
    __atomic_store_n(&crc_ready, 1, __ATOMIC_RELEASE);
}

uint32_t sl_bl_crc32(uint32_t crc, const void *buf, size_t len)
{
    /* Building the table twice concurrently writes the same values: harmless, but do it once. */
    if (!__atomic_load_n(&crc_ready, __ATOMIC_ACQUIRE))
        crc_init();
    const uint8_t *p = buf;
    crc = ~crc;
    while (len >= 8) {
        uint32_t a = crc ^ le32(p), b = le32(p + 4);
        crc = crc_tab[7][a & 0xFF] ^ crc_tab[6][(a >> 8) & 0xFF] ^ crc_tab[5][(a >> 16) & 0xFF] ^
              crc_tab[4][a >> 24] ^ crc_tab[3][b & 0xFF] ^ crc_tab[2][(b >> 8) & 0xFF] ^
              crc_tab[1][(b >> 16) & 0xFF] ^ crc_tab[0][b >> 24];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = crc_tab[0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

/* ---- headers, format description ------------------------------------------------------------ */

void sl_bl_format_init(sl_bl_format *f)
{
    memset(f, 0, sizeof *f);
    f->binlog_version = 4;
    f->header_len = SL_BL_HEADER_LEN;
    f->checksum_alg = SL_BL_CHECKSUM_UNDEF;
    /* Post-header lengths of a v4 binlog (used only until the real FDE arrives). */
    f->post_header_len[SL_BL_QUERY] = 13;
    f->post_header_len[SL_BL_ROTATE] = 8;
    f->post_header_len[SL_BL_FORMAT_DESCRIPTION] = 84;
    f->post_header_len[SL_BL_TABLE_MAP] = 8;
    for (int t = SL_BL_WRITE_ROWS_V1; t <= SL_BL_DELETE_ROWS_V1; t++)
        f->post_header_len[t] = 8;
    for (int t = SL_BL_WRITE_ROWS; t <= SL_BL_DELETE_ROWS; t++)
        f->post_header_len[t] = 10;
    f->post_header_len[SL_BL_GTID] = 19;
}

int sl_bl_header_parse(const uint8_t *ev, size_t len, sl_bl_header *h, sl_error *err)
{
    if (len < SL_BL_HEADER_LEN)
        return BAD(err, "binlog event shorter than its header (%zu bytes)", len);
    h->timestamp = le32(ev);
    h->type = ev[4];
    h->server_id = le32(ev + 5);
    h->event_len = le32(ev + 9);
    h->next_pos = le32(ev + 13);
    h->flags = (uint16_t)le16(ev + 17);
    if (h->event_len < SL_BL_HEADER_LEN || h->event_len > len)
        return BAD(err, "binlog event type %u: length %u does not match the %zu bytes received",
                   h->type, h->event_len, len);
    return 0;
}

int sl_bl_event_body(const sl_bl_format *f, const uint8_t *ev, size_t len, int verify,
                     const uint8_t **body, size_t *blen, sl_error *err)
{
    size_t hl = f->header_len ? f->header_len : SL_BL_HEADER_LEN;
    size_t tail = f->checksum_alg == SL_BL_CHECKSUM_CRC32 ? SL_BL_CHECKSUM_LEN : 0;
    if (len < hl + tail)
        return BAD(err, "binlog event type %u too short (%zu bytes)", len > 4 ? ev[4] : 0, len);
    if (tail && verify) {
        uint32_t want = le32(ev + len - 4), got = sl_bl_crc32(0, ev, len - 4);
        if (want != got)
            return BAD(err, "binlog event type %u ending at %u: CRC32 checksum mismatch "
                       "(stored %08x, computed %08x)", ev[4], le32(ev + 13), want, got);
    }
    *body = ev + hl;
    *blen = len - hl - tail;
    return 0;
}

int sl_bl_parse_fde(const uint8_t *ev, size_t len, int verify, sl_bl_format *f, sl_error *err)
{
    sl_bl_header h = { 0 };
    int rc = sl_bl_header_parse(ev, len, &h, err);
    if (rc < 0)
        return rc;
    len = h.event_len;
    /* version 2, server version 50, create timestamp 4, header length 1 */
    if (len < SL_BL_HEADER_LEN + 57)
        return BAD(err, "FORMAT_DESCRIPTION event too short (%zu bytes)", len);
    const uint8_t *p = ev + SL_BL_HEADER_LEN;
    sl_bl_format nf;
    memset(&nf, 0, sizeof nf);
    nf.binlog_version = (uint16_t)le16(p);
    memcpy(nf.server_version, p + 2, 50);
    nf.server_version[50] = '\0';
    nf.header_len = p[56];
    if (nf.binlog_version != 4 || nf.header_len < SL_BL_HEADER_LEN)
        return BAD(err, "unsupported binlog format version %u (header length %u)",
                   nf.binlog_version, nf.header_len);
    size_t nph = len - SL_BL_HEADER_LEN - 57;
    /* Checksum-aware servers (MySQL >= 5.6.1, MariaDB >= 5.3) end the FDE with the algorithm
     * byte and 4 checksum bytes, whatever the algorithm. Every server we can replicate from
     * (binlog_row_metadata needs MariaDB 10.5 / MySQL 8.0) is checksum-aware. */
    if (nph < 5)
        return BAD(err, "FORMAT_DESCRIPTION event without a checksum algorithm");
    nph -= 5;
    nf.checksum_alg = ev[len - 5];
    if (nf.checksum_alg != SL_BL_CHECKSUM_OFF && nf.checksum_alg != SL_BL_CHECKSUM_CRC32)
        return BAD(err, "unsupported binlog checksum algorithm %u", nf.checksum_alg);
    if (nph > 255)
        nph = 255;
    for (size_t i = 0; i < nph; i++)
        nf.post_header_len[i + 1] = p[57 + i];
    if (verify && nf.checksum_alg == SL_BL_CHECKSUM_CRC32) {
        uint32_t want = le32(ev + len - 4), got = sl_bl_crc32(0, ev, len - 4);
        if (want != got)
            return BAD(err, "FORMAT_DESCRIPTION event: CRC32 checksum mismatch");
    }
    *f = nf;
    return 0;
}

int sl_bl_parse_rotate(const sl_bl_format *f, const uint8_t *body, size_t blen,
                       uint64_t *pos, const char **name, size_t *name_len, sl_error *err)
{
    if (blen < 8)
        return BAD(err, "ROTATE event too short");
    *pos = le64(body);
    *name = (const char *)body + 8;
    *name_len = blen - 8;
    if (*name_len == 0 || *name_len > 512 || memchr(*name, '\0', *name_len))
        return BAD(err, "ROTATE event with a bad file name");
    return 0;
}

/* Bytes the value of status variable code takes at p (avail bytes left in the block), or 0 when
 * the code is unknown or its value does not fit: the walk ends there, as the server's does. */
static size_t status_var_len(uint8_t code, const uint8_t *p, size_t avail)
{
    size_t n;
    switch (code) {
    case SL_BL_Q_FLAGS2: case SL_BL_Q_AUTO_INCREMENT: case SL_BL_Q_MASTER_DATA_WRITTEN:
        n = 4;
        break;
    case SL_BL_Q_SQL_MODE: case SL_BL_Q_TABLE_MAP_FOR_UPDATE: case SL_BL_Q_XID:
    case SL_BL_Q_DDL_LOGGED_WITH_XID:
        n = 8;
        break;
    case SL_BL_Q_CHARSET:
        n = 6;
        break;
    case SL_BL_Q_LC_TIME_NAMES: case SL_BL_Q_CHARSET_DATABASE:
    case SL_BL_Q_DEFAULT_COLLATION_FOR_UTF8MB4:
        n = 2;
        break;
    case SL_BL_Q_HRNOW: case SL_BL_Q_MICROSECONDS:
        n = 3;
        break;
    case SL_BL_Q_EXPLICIT_DEFAULTS_FOR_TIMESTAMP: case SL_BL_Q_SQL_REQUIRE_PRIMARY_KEY:
    case SL_BL_Q_DEFAULT_TABLE_ENCRYPTION:
        n = 1;
        break;
    case SL_BL_Q_TIME_ZONE: case SL_BL_Q_CATALOG_NZ:       /* length, text */
        n = avail ? 1 + (size_t)p[0] : 1;
        break;
    case SL_BL_Q_CATALOG:                                 /* length, text, NUL (MySQL 5.0.0-3) */
        n = avail ? 2 + (size_t)p[0] : 1;
        break;
    case SL_BL_Q_INVOKER:                                 /* user: length, text; host: same */
        n = avail ? 1 + (size_t)p[0] : 1;
        if (n < avail)
            n += 1 + (size_t)p[n];
        else
            n++;
        break;
    case SL_BL_Q_GTID_FLAGS3:   /* flags; a sequence number for a COMMIT/ROLLBACK of an ALTER
                                   started before (Gtid_log_event FL_COMMIT_ALTER_E1 4,
                                   FL_ROLLBACK_ALTER_E1 8) */
        n = avail && (p[0] & (4 | 8)) ? 9 : 1;
        break;
    case SL_BL_Q_CHARACTER_SET_COLLATIONS:   /* MariaDB 11.2 (MDEV-30164): count, then count
                                                pairs of 2-byte collation ids */
        n = avail ? 1 + 4 * (size_t)p[0] : 1;
        break;
    case SL_BL_Q_UPDATED_DB_NAMES: {         /* MySQL: count, then count NUL-ended names; 254
                                                (OVER_MAX_DBS_IN_EVENT_MTS) has none */
        if (!avail)
            return 0;
        n = 1;
        for (unsigned k = p[0] == 254 ? 0 : p[0]; k > 0; k--) {
            const uint8_t *z = n < avail ? memchr(p + n, 0, avail - n) : NULL;
            if (!z)
                return 0;
            n = (size_t)(z - p) + 1;
        }
        break;
    }
    default:                    /* unknown, Q_DUMMY, and MySQL's unused COMMIT_TS codes */
        return 0;
    }
    return n <= avail ? n : 0;
}

size_t sl_bl_query_status(const uint8_t *p, size_t len, sl_bl_query *q)
{
    q->has_sql_mode = 0;
    q->sql_mode = 0;
    size_t off = 0;
    while (off < len) {
        uint8_t code = p[off];
        size_t n = status_var_len(code, p + off + 1, len - off - 1);
        if (!n)
            break;
        if (code == SL_BL_Q_SQL_MODE) {
            q->sql_mode = le64(p + off + 1);
            q->has_sql_mode = 1;
        }
        off += 1 + n;
    }
    return off;
}

uint8_t sl_bl_ddl_mode(const sl_bl_format *f, uint64_t m)
{
    /* MySQL's ORACLE was a shorthand whose other bits are set with it; only MariaDB's changes
     * the parser (sql_mode=ORACLE, MariaDB 10.3) */
    int mariadb = f && strstr(f->server_version, "MariaDB") != NULL;
    uint8_t d = 0;
    d |= m & SL_BL_MODE_REAL_AS_FLOAT ? SL_DDLM_REAL_AS_FLOAT : 0;
    d |= m & SL_BL_MODE_PIPES_AS_CONCAT ? SL_DDLM_PIPES_AS_CONCAT : 0;
    d |= m & SL_BL_MODE_ANSI_QUOTES ? SL_DDLM_ANSI_QUOTES : 0;
    d |= m & SL_BL_MODE_IGNORE_SPACE ? SL_DDLM_IGNORE_SPACE : 0;
    d |= m & SL_BL_MODE_NO_UNSIGNED_SUBTRACTION ? SL_DDLM_NO_UNSIGNED_SUBTRACTION : 0;
    d |= m & SL_BL_MODE_NO_BACKSLASH_ESCAPES ? SL_DDLM_NO_BACKSLASH_ESCAPES : 0;
    d |= m & SL_BL_MODE_HIGH_NOT_PRECEDENCE ? SL_DDLM_HIGH_NOT_PRECEDENCE : 0;
    d |= (m & SL_BL_MODE_ORACLE) && mariadb ? SL_DDLM_ORACLE : 0;
    return d;
}

static int parse_query(size_t ph, const uint8_t *body, size_t blen, sl_bl_query *q, sl_error *err)
{
    if (ph < 13 || blen < ph)
        return BAD(err, "QUERY event too short");
    q->thread_id = le32(body);
    q->exec_time = le32(body + 4);
    size_t db_len = body[8];
    q->error_code = (uint16_t)le16(body + 9);
    size_t status_len = le16(body + 11);
    size_t off = ph + status_len;
    if (off > blen || blen - off < db_len + 1)
        return BAD(err, "QUERY event: status/db lengths exceed the event");
    sl_bl_query_status(body + ph, status_len, q);
    q->db = (const char *)body + off;
    q->db_len = db_len;
    off += db_len + 1;
    q->sql = (const char *)body + off;
    q->sql_len = blen - off;
    return 0;
}

int sl_bl_parse_query(const sl_bl_format *f, const uint8_t *body, size_t blen,
                      sl_bl_query *q, sl_error *err)
{
    return parse_query(f->post_header_len[SL_BL_QUERY] ? f->post_header_len[SL_BL_QUERY] : 13,
                       body, blen, q, err);
}

int sl_bl_parse_execute_load_query(const sl_bl_format *f, const uint8_t *body, size_t blen,
                                   sl_bl_query *q, sl_error *err)
{
    /* a QUERY's post-header, then file_id, the file name's start and end, dup handling */
    uint8_t ph = f->post_header_len[SL_BL_EXECUTE_LOAD_QUERY];
    return parse_query(ph ? ph : 26, body, blen, q, err);
}

int sl_bl_parse_xid(const uint8_t *body, size_t blen, uint64_t *xid, sl_error *err)
{
    if (blen < 8)
        return BAD(err, "XID event too short");
    *xid = le64(body);
    return 0;
}

int sl_bl_parse_xa_prepare(const uint8_t *body, size_t blen, sl_bl_xa_prepare *x, sl_error *err)
{
    if (blen < 13)
        return BAD(err, "XA_PREPARE event too short");
    x->one_phase = body[0] != 0;
    x->format_id = (int32_t)le32(body + 1);
    x->gtrid_len = le32(body + 5);
    x->bqual_len = le32(body + 9);
    if (x->gtrid_len > 64 || x->bqual_len > 64 || 13 + (size_t)x->gtrid_len + x->bqual_len > blen)
        return BAD(err, "XA_PREPARE event with a bad xid");
    x->gtrid = body + 13;
    x->bqual = body + 13 + x->gtrid_len;
    return 0;
}

int sl_bl_parse_gtid(const uint8_t *body, size_t blen, sl_bl_gtid *g, sl_error *err)
{
    if (blen < 13)
        return BAD(err, "GTID event too short");
    g->seq = le64(body);
    g->domain = le32(body + 8);
    g->flags = body[12];
    g->commit_id = 0;
    if ((g->flags & SL_BL_FL_GROUP_COMMIT_ID) && blen >= 21)
        g->commit_id = le64(body + 13);
    return 0;
}

/* ---- GTID sets ------------------------------------------------------------------------------ */

int sl_bl_gtid_set_update(sl_bl_gtid_set *s, uint32_t domain, uint32_t server, uint64_t seq)
{
    uint32_t i = 0;
    while (i < s->n && s->v[i].domain < domain)
        i++;
    if (i < s->n && s->v[i].domain == domain) {
        s->v[i].server = server;
        s->v[i].seq = seq;
        return 0;
    }
    if (s->n == s->cap) {
        uint32_t cap = s->cap ? s->cap * 2 : 4;
        sl_bl_gtid_pos *v = realloc(s->v, cap * sizeof *v);
        if (!v)
            return SL_ENOMEM;
        s->v = v;
        s->cap = cap;
    }
    memmove(s->v + i + 1, s->v + i, (s->n - i) * sizeof *s->v);
    s->v[i] = (sl_bl_gtid_pos){ domain, server, seq };
    s->n++;
    return 0;
}

int sl_bl_gtid_set_parse(sl_bl_gtid_set *s, const char *text, sl_error *err)
{
    s->n = 0;
    const char *p = text ? text : "";
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == ',')
            p++;
        if (!*p)
            return 0;
        unsigned long long a, b, c;
        char *e;
        if (*p < '0' || *p > '9')
            goto bad;
        a = strtoull(p, &e, 10);
        if (*e != '-' || e[1] < '0' || e[1] > '9')
            goto bad;
        b = strtoull(e + 1, &e, 10);
        if (*e != '-' || e[1] < '0' || e[1] > '9')
            goto bad;
        c = strtoull(e + 1, &e, 10);
        if (a > UINT32_MAX || b > UINT32_MAX)
            goto bad;
        if (sl_bl_gtid_set_update(s, (uint32_t)a, (uint32_t)b, c) < 0)
            return sl_error_set(err, SL_ENOMEM, "out of memory");
        p = e;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p && *p != ',')
            goto bad;
    }
bad:
    return BAD(err, "bad MariaDB GTID position '%s' (expected domain-server-sequence[,...])",
               text);
}

size_t sl_bl_gtid_set_format(const sl_bl_gtid_set *s, char *buf, size_t cap)
{
    size_t n = 0;
    if (cap)
        buf[0] = '\0';
    for (uint32_t i = 0; i < s->n; i++) {
        char tmp[64];
        int k = snprintf(tmp, sizeof tmp, "%s%u-%u-%llu", i ? "," : "", s->v[i].domain,
                         s->v[i].server, (unsigned long long)s->v[i].seq);
        if (n + (size_t)k < cap)
            memcpy(buf + n, tmp, (size_t)k + 1);
        else if (cap)
            buf[n < cap ? n : cap - 1] = '\0';
        n += (size_t)k;
    }
    return n;
}

int sl_bl_gtid_set_copy(sl_bl_gtid_set *dst, const sl_bl_gtid_set *src)
{
    if (dst->cap < src->n) {
        sl_bl_gtid_pos *v = realloc(dst->v, (src->n ? src->n : 1) * sizeof *v);
        if (!v)
            return SL_ENOMEM;
        dst->v = v;
        dst->cap = src->n;
    }
    if (src->n)
        memcpy(dst->v, src->v, src->n * sizeof *src->v);
    dst->n = src->n;
    return 0;
}

void sl_bl_gtid_set_free(sl_bl_gtid_set *s)
{
    free(s->v);
    memset(s, 0, sizeof *s);
}

int sl_bl_parse_gtid_list(const uint8_t *body, size_t blen, sl_bl_gtid_set *s, sl_error *err)
{
    if (blen < 4)
        return BAD(err, "GTID_LIST event too short");
    uint32_t count = le32(body) & 0x0FFFFFFFu;   /* the top 4 bits are flags */
    if ((blen - 4) / 16 < count)
        return BAD(err, "GTID_LIST event: %u entries do not fit", count);
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *e = body + 4 + 16 * (size_t)i;
        if (sl_bl_gtid_set_update(s, le32(e), le32(e + 4), le64(e + 8)) < 0)
            return sl_error_set(err, SL_ENOMEM, "out of memory");
    }
    return 0;
}

/* ---- table maps ----------------------------------------------------------------------------- */

/* Bytes of table-map metadata a column type carries. */
static int meta_len(uint8_t t)
{
    switch (t) {
    case SL_MT_FLOAT: case SL_MT_DOUBLE: case SL_MT_BLOB: case SL_MT_TINY_BLOB:
    case SL_MT_MEDIUM_BLOB: case SL_MT_LONG_BLOB: case SL_MT_GEOMETRY: case SL_MT_JSON:
    case SL_MT_TIMESTAMP2: case SL_MT_DATETIME2: case SL_MT_TIME2: case SL_MT_BLOB_COMPRESSED:
        return 1;
    case SL_MT_VARCHAR: case SL_MT_VAR_STRING: case SL_MT_BIT: case SL_MT_NEWDECIMAL:
    case SL_MT_STRING: case SL_MT_ENUM: case SL_MT_SET: case SL_MT_VARCHAR_COMPRESSED:
        return 2;
    default:
        return 0;
    }
}

/* Columns that the SIGNEDNESS metadata covers (MariaDB: fields with a sign, Field_num; YEAR is a
 * Field_tiny there, so it has a bit too). */
static int is_numeric(uint8_t t)
{
    switch (t) {
    case SL_MT_YEAR:
    case SL_MT_TINY: case SL_MT_SHORT: case SL_MT_INT24: case SL_MT_LONG: case SL_MT_LONGLONG:
    case SL_MT_FLOAT: case SL_MT_DOUBLE: case SL_MT_NEWDECIMAL: case SL_MT_DECIMAL:
        return 1;
    default:
        return 0;
    }
}

/* Columns that the (COLUMN|DEFAULT)_CHARSET metadata covers: character and binary strings and
 * GEOMETRY (the server's is_character_type() counts it, with the binary charset: leaving it out
 * gave every later string column the charset of the one before it), not ENUM/SET (their own
 * charset metadata). MariaDB's JSON is a LONGTEXT, a BLOB here. */
static int is_character(const sl_bl_column *c)
{
    switch (c->real_type) {
    case SL_MT_STRING: case SL_MT_VARCHAR: case SL_MT_VAR_STRING: case SL_MT_BLOB:
    case SL_MT_TINY_BLOB: case SL_MT_MEDIUM_BLOB: case SL_MT_LONG_BLOB:
    case SL_MT_VARCHAR_COMPRESSED: case SL_MT_BLOB_COMPRESSED: case SL_MT_GEOMETRY:
        return 1;
    default:
        return 0;
    }
}

static int is_enum_set(const sl_bl_column *c)
{
    return c->real_type == SL_MT_ENUM || c->real_type == SL_MT_SET;
}

void sl_bl_table_map_free(sl_bl_table_map *m)
{
    if (!m)
        return;
    for (uint32_t i = 0; m->cols && i < m->ncols; i++) {
        free(m->cols[i].name);
        for (uint32_t k = 0; k < m->cols[i].nlabels; k++)
            free(m->cols[i].labels[k]);
        free(m->cols[i].labels);
        free(m->cols[i].label_lens);
    }
    free(m->cols);
    free(m->pk);
    free(m->schema);
    free(m->table);
    free((void *)m->sig);
    free(m);
}

static char *dupn(const void *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* Charset metadata: DEFAULT_CHARSET (default + (index, collation) pairs) or COLUMN_CHARSET (one
 * collation per covered column). covered() says which columns the indexes count. */
static int apply_charsets(sl_bl_table_map *m, int is_default, const uint8_t *p, const uint8_t *end,
                          int (*covered)(const sl_bl_column *))
{
    uint64_t v, idx;
    if (is_default) {
        if (packed(&p, end, &v) < 0)
            return -1;
        for (uint32_t i = 0; i < m->ncols; i++)
            if (covered(&m->cols[i]))
                m->cols[i].charset = (uint16_t)v;
        while (p < end) {
            if (packed(&p, end, &idx) < 0 || packed(&p, end, &v) < 0)
                return -1;
            uint64_t k = 0;
            for (uint32_t i = 0; i < m->ncols; i++) {
                if (!covered(&m->cols[i]))
                    continue;
                if (k++ == idx) {
                    m->cols[i].charset = (uint16_t)v;
                    break;
                }
            }
        }
    } else {
        for (uint32_t i = 0; i < m->ncols && p < end; i++) {
            if (!covered(&m->cols[i]))
                continue;
            if (packed(&p, end, &v) < 0)
                return -1;
            m->cols[i].charset = (uint16_t)v;
        }
    }
    return 0;
}

static int apply_labels(sl_bl_table_map *m, uint8_t want, const uint8_t *p, const uint8_t *end)
{
    for (uint32_t i = 0; i < m->ncols && p < end; i++) {
        sl_bl_column *c = &m->cols[i];
        if (c->real_type != want)
            continue;
        uint64_t n, len;
        if (packed(&p, end, &n) < 0 || n > (uint64_t)(end - p))
            return -1;
        /* a repeated TLV replaces the labels it gave before */
        for (uint32_t k = 0; k < c->nlabels; k++)
            free(c->labels[k]);
        free(c->labels);
        free(c->label_lens);
        c->nlabels = 0;
        c->labels = calloc(n ? n : 1, sizeof *c->labels);
        c->label_lens = calloc(n ? n : 1, sizeof *c->label_lens);
        if (!c->labels || !c->label_lens)
            return -2;
        for (uint64_t k = 0; k < n; k++) {
            if (packed(&p, end, &len) < 0 || len > (uint64_t)(end - p))
                return -1;
            if (!(c->labels[k] = dupn(p, len)))
                return -2;
            c->label_lens[k] = (uint32_t)len;
            c->nlabels = (uint32_t)k + 1;
            p += len;
        }
    }
    return 0;
}

static int parse_optional(sl_bl_table_map *m, const uint8_t *p, const uint8_t *end, sl_error *err)
{
    while (p < end) {
        uint8_t type = *p++;
        uint64_t len;
        if (packed(&p, end, &len) < 0 || len > (uint64_t)(end - p))
            return BAD(err, "table map %s.%s: truncated optional metadata", m->schema, m->table);
        const uint8_t *q = p, *qe = p + len;
        p = qe;
        int rc = 0;
        switch (type) {
        case 1: { /* SIGNEDNESS: one bit per numeric column, most significant bit first */
            uint32_t k = 0;
            for (uint32_t i = 0; i < m->ncols; i++) {
                if (!is_numeric(m->cols[i].type))
                    continue;
                if (k / 8 >= len) {
                    rc = -1;
                    break;
                }
                m->cols[i].is_unsigned = (q[k / 8] >> (7 - k % 8)) & 1;
                k++;
            }
            m->has_signedness = 1;
            break;
        }
        case 2: case 3:
            rc = apply_charsets(m, type == 2, q, qe, is_character);
            m->has_charsets = 1;
            break;
        case 4: /* COLUMN_NAME */
            for (uint32_t i = 0; i < m->ncols && q < qe; i++) {
                uint64_t n;
                if (packed(&q, qe, &n) < 0 || n > (uint64_t)(qe - q)) {
                    rc = -1;
                    break;
                }
                free(m->cols[i].name);   /* a repeated COLUMN_NAME replaces it */
                if (!(m->cols[i].name = dupn(q, n))) {
                    rc = -2;
                    break;
                }
                q += n;
            }
            m->has_names = 1;
            break;
        case 5: rc = apply_labels(m, SL_MT_SET, q, qe); break;
        case 6: rc = apply_labels(m, SL_MT_ENUM, q, qe); break;
        case 7: /* GEOMETRY_TYPE */
            for (uint32_t i = 0; i < m->ncols && q < qe; i++) {
                uint64_t g;
                if (m->cols[i].real_type != SL_MT_GEOMETRY)
                    continue;
                if (packed(&q, qe, &g) < 0) {
                    rc = -1;
                    break;
                }
                m->cols[i].geom_type = (uint8_t)g;
            }
            break;
        case 8: case 9: { /* SIMPLE_PRIMARY_KEY, PRIMARY_KEY_WITH_PREFIX */
            while (q < qe) {
                uint64_t idx, prefix;
                if (packed(&q, qe, &idx) < 0 || idx >= m->ncols ||
                    (type == 9 && packed(&q, qe, &prefix) < 0)) {
                    rc = -1;
                    break;
                }
                uint32_t *pk = realloc(m->pk, (m->npk + 1) * sizeof *pk);
                if (!pk) {
                    rc = -2;
                    break;
                }
                m->pk = pk;
                m->pk[m->npk++] = (uint32_t)idx;
                m->cols[idx].pk = 1;
            }
            break;
        }
        case 10: case 11:
            rc = apply_charsets(m, type == 10, q, qe, is_enum_set);
            break;
        default:
            break;   /* newer metadata (column visibility, ...): not needed */
        }
        if (rc == -2)
            return sl_error_set(err, SL_ENOMEM, "out of memory");
        if (rc < 0)
            return BAD(err, "table map %s.%s: bad optional metadata of type %u", m->schema,
                       m->table, type);
    }
    return 0;
}

int sl_bl_table_id(const sl_bl_format *f, uint8_t type, const uint8_t *body, size_t blen,
                   uint64_t *table_id)
{
    size_t ph = f->post_header_len[type];
    if (ph == 6) {
        if (blen < 4)
            return SL_EINVAL;
        *table_id = le32(body);
        return 0;
    }
    if (blen < 6)
        return SL_EINVAL;
    *table_id = le48(body);
    return 0;
}

int sl_bl_parse_table_map(const sl_bl_format *f, const uint8_t *body, size_t blen,
                          sl_bl_table_map **out, sl_error *err)
{
    *out = NULL;
    const uint8_t *p = body, *end = body + blen;
    size_t ph = f->post_header_len[SL_BL_TABLE_MAP] ? f->post_header_len[SL_BL_TABLE_MAP] : 8;
    if (ph != 6 && ph != 8)
        return BAD(err, "TABLE_MAP post-header length %zu unsupported", ph);
    if (blen < ph + 2)
        return BAD(err, "TABLE_MAP event too short");
    sl_bl_table_map *m = calloc(1, sizeof *m);
    if (!m)
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    int rc = SL_EINVAL;
    if (ph == 6) {
        m->table_id = le32(p);
        m->flags = (uint16_t)le16(p + 4);
    } else {
        m->table_id = le48(p);
        m->flags = (uint16_t)le16(p + 6);
    }
    p += ph;
    size_t n = *p++;
    if ((size_t)(end - p) < n + 2 || p[n] != '\0')
        goto bad;
    if (!(m->schema = dupn(p, n)))
        goto oom;
    p += n + 1;
    n = *p++;
    if ((size_t)(end - p) < n + 1 || p[n] != '\0')
        goto bad;
    if (!(m->table = dupn(p, n)))
        goto oom;
    p += n + 1;
    const uint8_t *sig_start = p;
    uint64_t ncols;
    if (packed(&p, end, &ncols) < 0 || ncols == 0 || ncols > 4096 || ncols > (uint64_t)(end - p))
        goto bad;
    m->ncols = (uint32_t)ncols;
    if (!(m->cols = calloc(m->ncols, sizeof *m->cols)))
        goto oom;
    const uint8_t *types = p;
    p += ncols;
    uint64_t mlen;
    if (packed(&p, end, &mlen) < 0 || mlen > (uint64_t)(end - p))
        goto bad;
    const uint8_t *meta = p, *meta_end = p + mlen;
    p = meta_end;
    size_t nb = (m->ncols + 7) / 8;
    if ((size_t)(end - p) < nb)
        goto bad;
    const uint8_t *nulls = p;
    p += nb;
    for (uint32_t i = 0; i < m->ncols; i++) {
        sl_bl_column *c = &m->cols[i];
        c->type = c->real_type = types[i];
        c->nullable = (nulls[i / 8] >> (i % 8)) & 1;
        int ml = meta_len(c->type);
        if (meta_end - meta < ml)
            goto bad;
        switch (c->type) {
        case SL_MT_VARCHAR: case SL_MT_VAR_STRING: case SL_MT_VARCHAR_COMPRESSED:
            c->meta = (uint16_t)le16(meta);
            c->max_len = c->meta;
            break;
        case SL_MT_STRING: case SL_MT_ENUM: case SL_MT_SET: {
            /* byte 0: real type, byte 1: length; CHAR(n) with n*mbmaxlen > 255 borrows two
             * bits of byte 0 (sql/field.cc Field_string::save_field_metadata). */
            uint8_t b0 = meta[0], b1 = meta[1];
            c->meta = (uint16_t)(b0 << 8 | b1);
            if ((b0 & 0x30) != 0x30) {
                c->real_type = (uint8_t)(b0 | 0x30);
                c->max_len = (uint32_t)(((b0 & 0x30) ^ 0x30) << 4) | b1;
            } else {
                c->real_type = b0;
                c->max_len = b1;
            }
            if (c->type != SL_MT_STRING)
                c->real_type = c->type;
            break;
        }
        case SL_MT_BIT:
            c->meta = (uint16_t)(meta[0] | meta[1] << 8);
            c->max_len = (uint32_t)meta[1] * 8 + meta[0];
            break;
        case SL_MT_NEWDECIMAL:
            c->meta = (uint16_t)(meta[0] << 8 | meta[1]);   /* precision << 8 | scale */
            break;
        default:
            if (ml == 1) {
                c->meta = meta[0];
                c->max_len = meta[0];
            }
            break;
        }
        meta += ml;
    }
    /* The shape signature: column count .. end of the event (types, metadata, nullability and
     * the optional metadata), table id and names excluded. */
    m->sig_len = (size_t)(end - sig_start);
    uint8_t *sig = malloc(m->sig_len ? m->sig_len : 1);
    if (!sig)
        goto oom;
    memcpy(sig, sig_start, m->sig_len);
    m->sig = sig;
    rc = parse_optional(m, p, end, err);
    if (rc < 0) {
        sl_bl_table_map_free(m);
        return rc;
    }
    for (uint32_t i = 0; i < m->ncols; i++)
        if (m->cols[i].charset == 0 && (m->cols[i].real_type == SL_MT_GEOMETRY))
            m->cols[i].charset = 63;
    *out = m;
    return 0;
bad:
    rc = BAD(err, "malformed TABLE_MAP event%s%s%s%s", m->schema ? " for " : "",
             m->schema ? m->schema : "", m->table ? "." : "", m->table ? m->table : "");
    sl_bl_table_map_free(m);
    return rc;
oom:
    sl_bl_table_map_free(m);
    return sl_error_set(err, SL_ENOMEM, "out of memory");
}

/* ---- values --------------------------------------------------------------------------------- */

static const int dig2bytes[10] = { 0, 1, 1, 2, 2, 3, 3, 4, 4, 4 };

size_t sl_bl_decimal_size(int precision, int scale)
{
    int intg = precision - scale;
    return (size_t)((intg / 9) * 4 + dig2bytes[intg % 9] + (scale / 9) * 4 + dig2bytes[scale % 9]);
}

int sl_bl_decimal_text(const uint8_t *src, size_t avail, int precision, int scale, char *buf,
                       size_t *used)
{
    if (precision < 1 || precision > 65 || scale < 0 || scale > 38 || scale > precision)
        return SL_EINVAL;
    int intg = precision - scale;
    int intg0 = intg / 9, intg0x = intg % 9, frac0 = scale / 9, frac0x = scale % 9;
    size_t size = sl_bl_decimal_size(precision, scale);
    if (size > avail || size == 0)
        return SL_EINVAL;
    uint8_t d[40];
    memcpy(d, src, size);
    /* The sign is the top bit (1 = positive); negative numbers have every bit inverted. */
    int neg = !(d[0] & 0x80);
    d[0] ^= 0x80;
    if (neg)
        for (size_t i = 0; i < size; i++)
            d[i] ^= 0xFF;
    char digits[80] = "";
    int nd = 0;
    const uint8_t *p = d;
    if (intg0x) {
        int b = dig2bytes[intg0x];
        nd += sprintf(digits + nd, "%0*u", intg0x, (unsigned)be_n(p, b));
        p += b;
    }
    for (int i = 0; i < intg0; i++, p += 4)
        nd += sprintf(digits + nd, "%09u", (unsigned)be_n(p, 4));
    char fracs[48] = "";
    int nf = 0;
    for (int i = 0; i < frac0; i++, p += 4)
        nf += sprintf(fracs + nf, "%09u", (unsigned)be_n(p, 4));
    if (frac0x) {
        int b = dig2bytes[frac0x];
        nf += sprintf(fracs + nf, "%0*u", frac0x, (unsigned)be_n(p, b));
    }
    /* Digit groups hold at most 9 digits; a stored group above 999999999 (or a partial group
     * above its width) is not a valid decimal. */
    if (nd > intg || nf > scale)
        return SL_EINVAL;
    const char *ip = digits;
    while (*ip == '0' && ip[1])
        ip++;
    if (!*ip)
        ip = "0";
    int zero = !strcmp(ip, "0");
    for (int i = 0; i < nf && zero; i++)
        if (fracs[i] != '0')
            zero = 0;
    int n = 0;
    if (neg && !zero)
        buf[n++] = '-';
    size_t il = strlen(ip);
    memcpy(buf + n, ip, il);
    n += (int)il;
    if (scale) {
        buf[n++] = '.';
        memcpy(buf + n, fracs, (size_t)nf);
        n += nf;
    }
    buf[n] = '\0';
    *used = size;
    return n;
}

static void *dup_payload(sl_bl_alloc_fn alloc, void *ud, const void *s, size_t n)
{
    char *d = alloc(ud, n + 1);
    if (d) {
        if (n)
            memcpy(d, s, n);
        d[n] = '\0';   /* convenient for text consumers; len is authoritative */
    }
    return d;
}

/* Fractional seconds of TIME2/DATETIME2/TIMESTAMP2 (big-endian, (fsp+1)/2 bytes). */
static int frac_bytes(int fsp) { return (fsp + 1) / 2; }

static uint32_t frac_usec(const uint8_t *p, int fsp)
{
    switch (frac_bytes(fsp)) {
    case 1: return (uint32_t)p[0] * 10000u;
    case 2: return (uint32_t)be_n(p, 2) * 100u;
    case 3: return (uint32_t)be_n(p, 3);
    default: return 0;
    }
}

/* The largest value a COMPRESSED column is inflated to: no MariaDB value sent to a client is
 * larger (max_allowed_packet is at most 1 GiB), so a larger claim is a broken image. */
#define INFLATE_MAX ((uint64_t)1 << 30)

/*
 * The bytes of a COMPRESSED column (MariaDB's field_comp.cc), n of them: none for an empty
 * value, else a header byte and the value. Header 0: the value as it is (too short to gain).
 * Header 0x80 | M: method 8 (zlib) in the high nibble, then M & 7 bytes of the original
 * length (big-endian), then the deflated value; M & 8 means a raw deflate stream (no zlib
 * wrapper: column_compression_zlib_wrap off, the default).
 */
static int inflate_value(const sl_bl_column *c, const uint8_t *p, size_t n, sl_value *out,
                         sl_bl_alloc_fn alloc, void *ud, sl_error *err)
{
    const char *name = c->name ? c->name : "?";
    if (n == 0 || p[0] >> 4 == 0) {
        if (!(out->v.s = dup_payload(alloc, ud, p + (n != 0), n ? n - 1 : 0)))
            return sl_error_set(err, SL_ENOMEM, "out of memory");
        out->len = (uint32_t)(n ? n - 1 : 0);
        return 0;
    }
    unsigned h = p[0], lb = h & 7;
    if (h >> 4 != 8)
        return BAD(err, "column %s: compression method %u is not zlib", name, h >> 4);
    if (n - 1 < lb || n - 1 - lb > UINT32_MAX)
        return BAD(err, "column %s: compressed value of %zu bytes is truncated", name, n);
    uint64_t len = 0;
    for (unsigned i = 0; i < lb; i++)
        len = len << 8 | p[1 + i];
    /* deflate gains at most 1032:1, so a longer claim is a broken image, not a large value */
    uint64_t most = c->real_type == SL_MT_VARCHAR_COMPRESSED ? c->max_len : INFLATE_MAX;
    if (len > most || len > (uint64_t)(n - 1 - lb) * 1032 + 64)
        return BAD(err, "column %s: compressed value of %zu bytes claims %llu", name, n,
                   (unsigned long long)len);
    char *dst = alloc(ud, (size_t)len + 1);
    if (!dst)
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    zs.next_in = (Bytef *)(uintptr_t)(p + 1 + lb);
    zs.avail_in = (uInt)(n - 1 - lb);
    zs.next_out = (Bytef *)dst;
    zs.avail_out = (uInt)len;
    if (inflateInit2(&zs, h & 8 ? -MAX_WBITS : MAX_WBITS) != Z_OK)
        return sl_error_set(err, SL_ENOMEM, "column %s: cannot start zlib", name);
    int rc = inflate(&zs, Z_FINISH);
    uLong got = zs.total_out;
    inflateEnd(&zs);
    if (rc != Z_STREAM_END)
        return BAD(err, "column %s: the compressed value does not inflate (zlib %d)", name, rc);
    dst[got] = '\0';
    out->v.s = dst;
    out->len = (uint32_t)got;
    return 0;
}

#define NEED(n) do { if ((size_t)(end - p) < (size_t)(n)) goto short_; } while (0)

int sl_bl_decode_value(const sl_bl_column *c, const uint8_t *p, const uint8_t *end, size_t *used,
                       sl_value *out, sl_bl_alloc_fn alloc, void *ud, sl_error *err)
{
    memset(out, 0, sizeof *out);
    const uint8_t *start = p;
    switch (c->real_type) {
    case SL_MT_TINY:
        NEED(1);
        if (c->is_unsigned) *out = sl_value_uint(p[0]); else *out = sl_value_int((int8_t)p[0]);
        p += 1;
        break;
    case SL_MT_SHORT:
        NEED(2);
        if (c->is_unsigned) *out = sl_value_uint(le16(p));
        else *out = sl_value_int((int16_t)le16(p));
        p += 2;
        break;
    case SL_MT_INT24: {
        NEED(3);
        uint32_t v = le24(p);
        if (c->is_unsigned) *out = sl_value_uint(v);
        else *out = sl_value_int((int32_t)(v << 8) >> 8);
        p += 3;
        break;
    }
    case SL_MT_LONG:
        NEED(4);
        if (c->is_unsigned) *out = sl_value_uint(le32(p));
        else *out = sl_value_int((int32_t)le32(p));
        p += 4;
        break;
    case SL_MT_LONGLONG:
        NEED(8);
        if (c->is_unsigned) *out = sl_value_uint(le64(p));
        else *out = sl_value_int((int64_t)le64(p));
        p += 8;
        break;
    case SL_MT_FLOAT: {
        NEED(4);
        uint32_t v = le32(p);
        out->type = SL_V_FLOAT;
        memcpy(&out->v.f, &v, 4);
        p += 4;
        break;
    }
    case SL_MT_DOUBLE: {
        NEED(8);
        uint64_t v = le64(p);
        out->type = SL_V_DOUBLE;
        memcpy(&out->v.d, &v, 8);
        p += 8;
        break;
    }
    case SL_MT_NEWDECIMAL: {
        int prec = c->meta >> 8, scale = c->meta & 0xFF;
        char buf[96];
        size_t u;
        int n = sl_bl_decimal_text(p, (size_t)(end - p), prec, scale, buf, &u);
        if (n < 0)
            return BAD(err, "column %s: bad DECIMAL(%d,%d) value", c->name ? c->name : "?",
                       prec, scale);
        out->type = SL_V_DECIMAL;
        out->dec = (uint8_t)scale;
        if (!(out->v.s = dup_payload(alloc, ud, buf, (size_t)n)))
            goto oom;
        out->len = (uint32_t)n;
        p += u;
        break;
    }
    case SL_MT_YEAR:
        NEED(1);
        out->type = SL_V_YEAR;
        out->v.i = p[0] ? 1900 + p[0] : 0;
        p += 1;
        break;
    case SL_MT_DATE: case SL_MT_NEWDATE: {
        NEED(3);
        uint32_t v = le24(p);
        out->type = SL_V_DATE;
        out->v.t.day = v & 31;
        out->v.t.month = (v >> 5) & 15;
        out->v.t.year = (int32_t)(v >> 9);
        p += 3;
        break;
    }
    case SL_MT_TIME: {       /* old format: signed HHMMSS in 3 bytes */
        NEED(3);
        int32_t v = (int32_t)(le24(p) << 8) >> 8;
        out->type = SL_V_TIME;
        if (v < 0) {
            out->v.t.neg = 1;
            v = -v;
        }
        out->v.t.hour = (uint32_t)(v / 10000);
        out->v.t.minute = (uint8_t)(v / 100 % 100);
        out->v.t.second = (uint8_t)(v % 100);
        p += 3;
        break;
    }
    case SL_MT_TIME2: {
        int fsp = c->meta;
        if (fsp > 6)
            return BAD(err, "TIME(%d) has a bad precision", fsp);
        NEED(3 + frac_bytes(fsp));
        int64_t intpart = (int64_t)be_n(p, 3) - 0x800000LL, packedv;
        switch (fsp) {
        case 1: case 2: {
            int frac = p[3];   /* unsigned, as in my_time_packed_from_binary() */
            if (intpart < 0 && frac) {
                intpart++;
                frac -= 0x100;
            }
            packedv = intpart * (1LL << 24) + (int64_t)frac * 10000;
            break;
        }
        case 3: case 4: {
            int frac = (int)be_n(p + 3, 2);
            if (intpart < 0 && frac) {
                intpart++;
                frac -= 0x10000;
            }
            packedv = intpart * (1LL << 24) + (int64_t)frac * 100;
            break;
        }
        case 5: case 6:
            packedv = (int64_t)be_n(p, 6) - 0x800000000000LL;
            break;
        default:
            packedv = intpart * (1LL << 24);
        }
        out->type = SL_V_TIME;
        out->dec = (uint8_t)fsp;
        if (packedv < 0) {
            out->v.t.neg = 1;
            packedv = -packedv;
        }
        int64_t hms = packedv >> 24;
        out->v.t.usec = (uint32_t)(packedv % (1LL << 24));
        out->v.t.hour = (uint32_t)((hms >> 12) % (1 << 10));
        out->v.t.minute = (uint8_t)((hms >> 6) % (1 << 6));
        out->v.t.second = (uint8_t)(hms % (1 << 6));
        if (out->v.t.usec > 999999)
            return BAD(err, "TIME value with bad microseconds");
        p += 3 + frac_bytes(fsp);
        break;
    }
    case SL_MT_DATETIME: {    /* old format: YYYYMMDDhhmmss as an integer */
        NEED(8);
        uint64_t v = le64(p);
        uint64_t d = v / 1000000, t = v % 1000000;
        out->type = SL_V_DATETIME;
        out->v.t.year = (int32_t)(d / 10000);
        out->v.t.month = (uint8_t)(d / 100 % 100);
        out->v.t.day = (uint8_t)(d % 100);
        out->v.t.hour = (uint32_t)(t / 10000);
        out->v.t.minute = (uint8_t)(t / 100 % 100);
        out->v.t.second = (uint8_t)(t % 100);
        p += 8;
        break;
    }
    case SL_MT_DATETIME2: {
        int fsp = c->meta;
        if (fsp > 6)
            return BAD(err, "DATETIME(%d) has a bad precision", fsp);
        NEED(5 + frac_bytes(fsp));
        int64_t intpart = (int64_t)be_n(p, 5) - 0x8000000000LL;
        if (intpart < 0)
            return BAD(err, "negative DATETIME value");
        int64_t ymd = intpart >> 17, ym = ymd >> 5, hms = intpart % (1 << 17);
        out->type = SL_V_DATETIME;
        out->dec = (uint8_t)fsp;
        out->v.t.year = (int32_t)(ym / 13);
        out->v.t.month = (uint8_t)(ym % 13);
        out->v.t.day = (uint8_t)(ymd % (1 << 5));
        out->v.t.hour = (uint32_t)(hms >> 12);
        out->v.t.minute = (uint8_t)((hms >> 6) % (1 << 6));
        out->v.t.second = (uint8_t)(hms % (1 << 6));
        out->v.t.usec = frac_usec(p + 5, fsp);
        if (out->v.t.usec > 999999)
            return BAD(err, "DATETIME value with bad microseconds");
        p += 5 + frac_bytes(fsp);
        break;
    }
    case SL_MT_TIMESTAMP:
        NEED(4);
        out->type = SL_V_TIMESTAMP;
        out->v.ts.sec = le32(p);
        p += 4;
        break;
    case SL_MT_TIMESTAMP2: {
        int fsp = c->meta;
        if (fsp > 6)
            return BAD(err, "TIMESTAMP(%d) has a bad precision", fsp);
        NEED(4 + frac_bytes(fsp));
        out->type = SL_V_TIMESTAMP;
        out->dec = (uint8_t)fsp;
        out->v.ts.sec = (int64_t)be_n(p, 4);
        out->v.ts.usec = frac_usec(p + 4, fsp);
        if (out->v.ts.usec > 999999)
            return BAD(err, "TIMESTAMP value with bad microseconds");
        p += 4 + frac_bytes(fsp);
        break;
    }
    case SL_MT_BIT: {
        uint32_t bits = c->max_len, nbytes = (bits + 7) / 8;
        if (bits == 0 || bits > 64)
            return BAD(err, "BIT(%u) is not a valid width", bits);
        NEED(nbytes);
        out->type = SL_V_BIT;
        out->bits = (uint8_t)bits;
        out->v.u = be_n(p, (int)nbytes);
        p += nbytes;
        break;
    }
    case SL_MT_ENUM: {
        uint32_t n = c->max_len;   /* pack length: 1 or 2 */
        if (n != 1 && n != 2)
            return BAD(err, "ENUM with pack length %u", n);
        NEED(n);
        uint64_t idx = n == 1 ? p[0] : le16(p);
        out->type = SL_V_ENUM;
        out->v.e.u = idx;
        if (idx >= 1 && idx <= c->nlabels) {
            const char *l = c->labels[idx - 1];
            uint32_t ll = c->label_lens[idx - 1];
            if (!(out->v.e.s = dup_payload(alloc, ud, l, ll)))
                goto oom;
            out->len = ll;
        } else {
            out->v.e.s = dup_payload(alloc, ud, "", 0);
            if (!out->v.e.s)
                goto oom;
        }
        out->charset = c->charset;
        p += n;
        break;
    }
    case SL_MT_SET: {
        uint32_t n = c->max_len;   /* pack length: 1..8 */
        if (n < 1 || n > 8)
            return BAD(err, "SET with pack length %u", n);
        NEED(n);
        uint64_t mask = 0;
        for (uint32_t i = 0; i < n; i++)
            mask |= (uint64_t)p[i] << (8 * i);
        out->type = SL_V_SET;
        out->v.e.u = mask;
        size_t tl = 0;
        for (uint32_t i = 0; i < c->nlabels && i < 64; i++)
            if (mask >> i & 1)
                tl += c->label_lens[i] + 1;
        char *s = alloc(ud, tl + 1);
        if (!s)
            goto oom;
        size_t o = 0;
        for (uint32_t i = 0; i < c->nlabels && i < 64; i++) {
            if (!(mask >> i & 1))
                continue;
            if (o)
                s[o++] = ',';
            memcpy(s + o, c->labels[i], c->label_lens[i]);
            o += c->label_lens[i];
        }
        s[o] = '\0';
        out->v.e.s = s;
        out->len = (uint32_t)o;
        out->charset = c->charset;
        p += n;
        break;
    }
    case SL_MT_STRING: case SL_MT_VARCHAR: case SL_MT_VAR_STRING: {
        size_t n;
        if (c->max_len > 255) {
            NEED(2);
            n = le16(p);
            p += 2;
        } else {
            NEED(1);
            n = p[0];
            p += 1;
        }
        NEED(n);
        if (c->charset == 63) {
            out->type = SL_V_BINARY;
        } else {
            out->type = SL_V_STRING;
        }
        out->charset = c->charset;
        if (c->real_type == SL_MT_STRING && c->charset == 63 && n < c->max_len) {
            /* BINARY(n) is logged without its trailing 0x00 padding: put it back, so the value
             * is what the column holds. */
            char *s = alloc(ud, c->max_len + 1);
            if (!s)
                goto oom;
            memcpy(s, p, n);
            memset(s + n, 0, c->max_len + 1 - n);
            out->v.s = s;
            out->len = c->max_len;
            p += n;
            break;
        }
        if (!(out->v.s = dup_payload(alloc, ud, p, n)))
            goto oom;
        out->len = (uint32_t)n;
        p += n;
        break;
    }
    case SL_MT_BLOB: case SL_MT_TINY_BLOB: case SL_MT_MEDIUM_BLOB: case SL_MT_LONG_BLOB:
    case SL_MT_GEOMETRY: case SL_MT_JSON: {
        uint32_t lb = c->meta;
        if (lb < 1 || lb > 4)
            return BAD(err, "BLOB with length size %u", lb);
        NEED(lb);
        size_t n = le_n(p, lb);
        p += lb;
        NEED(n);
        if (c->real_type == SL_MT_JSON) {
            /* MySQL's binary JSON: not decoded yet (MariaDB's JSON is a LONGTEXT). */
            return sl_error_set(err, SL_ENOTSUP, "column %s: MySQL binary JSON is not supported",
                                c->name ? c->name : "?");
        }
        if (c->real_type == SL_MT_GEOMETRY)
            out->type = SL_V_GEOMETRY;
        else
            out->type = c->charset == 63 ? SL_V_BINARY : SL_V_STRING;
        out->charset = c->real_type == SL_MT_GEOMETRY ? 63 : c->charset;
        if (!(out->v.s = dup_payload(alloc, ud, p, n)))
            goto oom;
        out->len = (uint32_t)n;
        p += n;
        break;
    }
    case SL_MT_NULL:
        out->type = SL_V_NULL;
        break;
    case SL_MT_VARCHAR_COMPRESSED: case SL_MT_BLOB_COMPRESSED: {
        /* the length prefix of a VARCHAR or of a BLOB, then the compressed bytes */
        uint32_t lb = c->real_type == SL_MT_VARCHAR_COMPRESSED ? (c->max_len > 255 ? 2 : 1) : c->meta;
        if (lb < 1 || lb > 4)
            return BAD(err, "compressed BLOB with length size %u", lb);
        NEED(lb);
        size_t n = le_n(p, lb);
        p += lb;
        NEED(n);
        out->type = c->charset == 63 ? SL_V_BINARY : SL_V_STRING;
        out->charset = c->charset;
        int rc = inflate_value(c, p, n, out, alloc, ud, err);
        if (rc != 0)
            return rc;
        p += n;
        break;
    }
    default:
        return sl_error_set(err, SL_ENOTSUP, "column %s: column type %u is not supported",
                            c->name ? c->name : "?", c->real_type);
    }
    *used = (size_t)(p - start);
    return 0;
short_:
    return BAD(err, "row image truncated in column %s (type %u)", c->name ? c->name : "?",
               c->real_type);
oom:
    return sl_error_set(err, SL_ENOMEM, "out of memory");
}

/* ---- rows ----------------------------------------------------------------------------------- */

int sl_bl_is_rows_event(uint8_t t)
{
    return (t >= SL_BL_WRITE_ROWS_V1 && t <= SL_BL_DELETE_ROWS_V1) ||
           (t >= SL_BL_WRITE_ROWS && t <= SL_BL_DELETE_ROWS) ||
           (t >= SL_BL_WRITE_ROWS_COMPRESSED_V1 && t <= SL_BL_DELETE_ROWS_COMPRESSED);
}

int sl_bl_is_compressed_event(uint8_t t)
{
    return t >= SL_BL_QUERY_COMPRESSED && t <= SL_BL_DELETE_ROWS_COMPRESSED;
}

int sl_bl_rows_init(const sl_bl_format *f, uint8_t type, const uint8_t *body, size_t blen,
                    sl_bl_rows *r, sl_error *err)
{
    memset(r, 0, sizeof *r);
    int v2;
    if (type >= SL_BL_WRITE_ROWS_V1 && type <= SL_BL_DELETE_ROWS_V1) {
        r->kind = type - SL_BL_WRITE_ROWS_V1 + 1;
        v2 = 0;
    } else if (type >= SL_BL_WRITE_ROWS && type <= SL_BL_DELETE_ROWS) {
        r->kind = type - SL_BL_WRITE_ROWS + 1;
        v2 = 1;
    } else if (sl_bl_is_compressed_event(type)) {
        return sl_error_set(err, SL_ENOTSUP, "compressed binlog events are not supported: set "
                            "log_bin_compress=OFF on the source");
    } else {
        return BAD(err, "event type %u is not a row event", type);
    }
    const uint8_t *p = body, *end = body + blen;
    size_t ph = f->post_header_len[type];
    if (ph != 6 && ph != 8 && ph != 10)
        ph = v2 ? 10 : 8;
    if (blen < ph)
        return BAD(err, "row event too short");
    if (ph == 6) {
        r->table_id = le32(p);
        r->flags = (uint16_t)le16(p + 4);
    } else {
        r->table_id = le48(p);
        r->flags = (uint16_t)le16(p + 6);
    }
    p += ph;
    if (v2 && ph == 10) {
        /* the extra-data length (2 bytes, counting itself) was part of the post-header */
        size_t extra = le16(body + 8);
        if (extra < 2 || (size_t)(end - p) < extra - 2)
            return BAD(err, "row event: bad extra data length");
        p += extra - 2;
    }
    uint64_t ncols;
    if (packed(&p, end, &ncols) < 0 || ncols == 0 || ncols > 4096)
        return BAD(err, "row event: bad column count");
    r->ncols = (uint32_t)ncols;
    size_t nb = (r->ncols + 7) / 8;
    if ((size_t)(end - p) < nb)
        return BAD(err, "row event truncated");
    r->present = p;
    p += nb;
    if (r->kind == 2) {
        if ((size_t)(end - p) < nb)
            return BAD(err, "row event truncated");
        r->present_after = p;
        p += nb;
    }
    r->p = p;
    r->end = end;
    return 0;
}

static int all_present(const uint8_t *bits, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (!((bits[i / 8] >> (i % 8)) & 1))
            return 0;
    return 1;
}

static int decode_image(sl_bl_rows *r, const sl_bl_table_map *m, const uint8_t *present,
                        sl_bl_alloc_fn alloc, void *ud, sl_value *vals, sl_error *err)
{
    uint32_t npresent = 0;
    for (uint32_t i = 0; i < r->ncols; i++)
        npresent += (present[i / 8] >> (i % 8)) & 1;
    size_t nb = (npresent + 7) / 8;
    if ((size_t)(r->end - r->p) < nb)
        return BAD(err, "%s.%s: row image truncated (null bitmap)", m->schema, m->table);
    const uint8_t *nulls = r->p;
    const uint8_t *p = r->p + nb;
    uint32_t k = 0;
    for (uint32_t i = 0; i < m->ncols; i++) {
        if (i >= r->ncols || !((present[i / 8] >> (i % 8)) & 1)) {
            vals[i] = sl_value_null();
            continue;
        }
        int is_null = (nulls[k / 8] >> (k % 8)) & 1;
        k++;
        if (is_null) {
            vals[i] = sl_value_null();
            continue;
        }
        size_t used = 0;
        int rc = sl_bl_decode_value(&m->cols[i], p, r->end, &used, &vals[i], alloc, ud, err);
        if (rc < 0) {
            sl_error_prefix(err, "%s.%s", m->schema, m->table);
            return rc;
        }
        p += used;
    }
    r->p = p;
    return 0;
}

int sl_bl_rows_next(sl_bl_rows *r, const sl_bl_table_map *m, sl_bl_alloc_fn alloc, void *ud,
                    sl_value *before, sl_value *after, sl_error *err)
{
    if (r->p >= r->end)
        return 0;
    if (r->ncols != m->ncols)
        return BAD(err, "%s.%s: row event has %u columns, its table map %u", m->schema,
                   m->table, r->ncols, m->ncols);
    /* A partial image (binlog_row_image MINIMAL or NOBLOB, global or in the writing session)
     * leaves columns out: decoded as NULL they would overwrite the target's values. */
    if (!all_present(r->present, r->ncols) || (r->kind == 2 && !all_present(r->present_after, r->ncols)))
        return sl_error_set(err, SL_ENOTSUP, "%s.%s: the source logged a partial row image (its "
                            "binlog_row_image was MINIMAL or NOBLOB when the row was written, "
                            "globally or in the writing session): the columns left out are not "
                            "known, so the row cannot be applied exactly. Set binlog_row_image=FULL "
                            "on the source (globally, and in no session otherwise), then copy this "
                            "table again", m->schema, m->table);
    int rc;
    switch (r->kind) {
    case 1:
        rc = decode_image(r, m, r->present, alloc, ud, after, err);
        break;
    case 2:
        rc = decode_image(r, m, r->present, alloc, ud, before, err);
        if (rc == 0)
            rc = decode_image(r, m, r->present_after, alloc, ud, after, err);
        break;
    default:
        rc = decode_image(r, m, r->present, alloc, ud, before, err);
        break;
    }
    return rc < 0 ? rc : 1;
}

int sl_bl_dump_error(const uint8_t *pkt, size_t len, unsigned *code, const char **msg,
                     size_t *msg_len)
{
    if (len < 3 || pkt[0] != 0xFF)
        return 0;
    *code = (unsigned)pkt[1] | (unsigned)pkt[2] << 8;
    *msg = (const char *)pkt + 3;
    *msg_len = len - 3;
    if (*msg_len >= 6 && (*msg)[0] == '#') {
        *msg += 6;
        *msg_len -= 6;
    }
    return 1;
}
