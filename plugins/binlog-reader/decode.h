/*
 * decode.h - a pure decoder of MySQL/MariaDB binlog events (v4 format): event headers, CRC32
 * checksums, format description, rotate, query, XID, GTID and GTID list events, table maps with
 * the optional metadata of binlog_row_metadata=FULL, and row events into typed sl_values.
 *
 * No I/O and no server: every function works on bytes given by the caller, checks every length
 * against the input (the fuzz target feeds it garbage) and allocates only through the caller's
 * allocator (row values) or malloc (table maps, GTID sets). Thread-safe: no global state.
 */
#ifndef SLUICE_BINLOG_DECODE_H
#define SLUICE_BINLOG_DECODE_H

#include <stddef.h>
#include <stdint.h>
#include <sluice/err.h>
#include <sluice/value.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Event types (MariaDB sql/log_event.h, same numbers as MySQL below 160). */
enum {
    SL_BL_QUERY = 2, SL_BL_STOP = 3, SL_BL_ROTATE = 4, SL_BL_INTVAR = 5, SL_BL_RAND = 13,
    SL_BL_USER_VAR = 14, SL_BL_FORMAT_DESCRIPTION = 15, SL_BL_XID = 16,
    SL_BL_EXECUTE_LOAD_QUERY = 18, SL_BL_TABLE_MAP = 19,
    SL_BL_WRITE_ROWS_V1 = 23, SL_BL_UPDATE_ROWS_V1 = 24, SL_BL_DELETE_ROWS_V1 = 25,
    SL_BL_INCIDENT = 26, SL_BL_HEARTBEAT = 27, SL_BL_IGNORABLE = 28, SL_BL_ROWS_QUERY = 29,
    SL_BL_WRITE_ROWS = 30, SL_BL_UPDATE_ROWS = 31, SL_BL_DELETE_ROWS = 32,
    SL_BL_MYSQL_GTID = 33, SL_BL_MYSQL_ANON_GTID = 34, SL_BL_PREVIOUS_GTIDS = 35,
    SL_BL_XA_PREPARE = 38, SL_BL_PARTIAL_UPDATE_ROWS = 39, SL_BL_HEARTBEAT_V2 = 41,
    SL_BL_ANNOTATE_ROWS = 160, SL_BL_BINLOG_CHECKPOINT = 161, SL_BL_GTID = 162,
    SL_BL_GTID_LIST = 163, SL_BL_START_ENCRYPTION = 164, SL_BL_QUERY_COMPRESSED = 165,
    SL_BL_WRITE_ROWS_COMPRESSED_V1 = 166, SL_BL_UPDATE_ROWS_COMPRESSED_V1 = 167,
    SL_BL_DELETE_ROWS_COMPRESSED_V1 = 168, SL_BL_WRITE_ROWS_COMPRESSED = 169,
    SL_BL_UPDATE_ROWS_COMPRESSED = 170, SL_BL_DELETE_ROWS_COMPRESSED = 171
};

/* Column types as written in table maps (MySQL enum_field_types). */
enum {
    SL_MT_DECIMAL = 0, SL_MT_TINY = 1, SL_MT_SHORT = 2, SL_MT_LONG = 3, SL_MT_FLOAT = 4,
    SL_MT_DOUBLE = 5, SL_MT_NULL = 6, SL_MT_TIMESTAMP = 7, SL_MT_LONGLONG = 8, SL_MT_INT24 = 9,
    SL_MT_DATE = 10, SL_MT_TIME = 11, SL_MT_DATETIME = 12, SL_MT_YEAR = 13, SL_MT_NEWDATE = 14,
    SL_MT_VARCHAR = 15, SL_MT_BIT = 16, SL_MT_TIMESTAMP2 = 17, SL_MT_DATETIME2 = 18,
    SL_MT_TIME2 = 19, SL_MT_BLOB_COMPRESSED = 140, SL_MT_VARCHAR_COMPRESSED = 141,
    SL_MT_JSON = 245, SL_MT_NEWDECIMAL = 246, SL_MT_ENUM = 247, SL_MT_SET = 248,
    SL_MT_TINY_BLOB = 249, SL_MT_MEDIUM_BLOB = 250, SL_MT_LONG_BLOB = 251, SL_MT_BLOB = 252,
    SL_MT_VAR_STRING = 253, SL_MT_STRING = 254, SL_MT_GEOMETRY = 255
};

#define SL_BL_HEADER_LEN       19
#define SL_BL_CHECKSUM_LEN     4
#define SL_BL_CHECKSUM_OFF     0
#define SL_BL_CHECKSUM_CRC32   1
#define SL_BL_CHECKSUM_UNDEF   255
#define SL_BL_LOG_EVENT_ARTIFICIAL_F 0x20u
#define SL_BL_STMT_END_F       0x01u

/* GTID event flags (MariaDB). */
#define SL_BL_FL_STANDALONE      0x01u
#define SL_BL_FL_GROUP_COMMIT_ID 0x02u
#define SL_BL_FL_PREPARED_XA     0x40u
#define SL_BL_FL_COMPLETED_XA    0x80u

/* The common header of every event. */
typedef struct sl_bl_header {
    uint32_t timestamp;
    uint8_t  type;
    uint32_t server_id;
    uint32_t event_len;   /* whole event, header and checksum included */
    uint32_t next_pos;    /* end_log_pos: offset of the next event; 0 for artificial events */
    uint16_t flags;
} sl_bl_header;

/* What the FORMAT_DESCRIPTION event says about the events after it. */
typedef struct sl_bl_format {
    uint16_t binlog_version;
    char     server_version[51];
    uint8_t  header_len;               /* 19 */
    uint8_t  checksum_alg;             /* SL_BL_CHECKSUM_* */
    uint8_t  post_header_len[256];     /* by event type; 0 = unknown */
} sl_bl_format;

/* Defaults for a v4 binlog before its FORMAT_DESCRIPTION is seen (checksums unknown). */
void sl_bl_format_init(sl_bl_format *f);

/* Standard CRC-32 (zlib's polynomial) as binlog checksums use: start with crc = 0. */
uint32_t sl_bl_crc32(uint32_t crc, const void *buf, size_t len);

/* Parse the 19-byte common header. SL_EINVAL if len < 19 or event_len is impossible
 * (smaller than the header or larger than len). */
int sl_bl_header_parse(const uint8_t *ev, size_t len, sl_bl_header *h, sl_error *err);

/*
 * The body of an event (after the common header, before the checksum). With checksums on
 * (f->checksum_alg == CRC32) and verify set, the CRC32 of the event is checked: SL_EINVAL with
 * err naming the event type and position on a mismatch. ev/len is the whole event.
 */
int sl_bl_event_body(const sl_bl_format *f, const uint8_t *ev, size_t len, int verify,
                     const uint8_t **body, size_t *blen, sl_error *err);

/* FORMAT_DESCRIPTION: fill f (checksum algorithm included). ev/len is the whole event; its own
 * checksum is verified when verify is set and the algorithm is CRC32. */
int sl_bl_parse_fde(const uint8_t *ev, size_t len, int verify, sl_bl_format *f, sl_error *err);

/* ROTATE: the next file and position; name points into body (not NUL-terminated). */
int sl_bl_parse_rotate(const sl_bl_format *f, const uint8_t *body, size_t blen,
                       uint64_t *pos, const char **name, size_t *name_len, sl_error *err);

/* Status variable codes of a QUERY event (MariaDB sql/log_event.h; MySQL's own above 11). */
enum {
    SL_BL_Q_FLAGS2 = 0, SL_BL_Q_SQL_MODE = 1, SL_BL_Q_CATALOG = 2, SL_BL_Q_AUTO_INCREMENT = 3,
    SL_BL_Q_CHARSET = 4, SL_BL_Q_TIME_ZONE = 5, SL_BL_Q_CATALOG_NZ = 6,
    SL_BL_Q_LC_TIME_NAMES = 7, SL_BL_Q_CHARSET_DATABASE = 8, SL_BL_Q_TABLE_MAP_FOR_UPDATE = 9,
    SL_BL_Q_MASTER_DATA_WRITTEN = 10, SL_BL_Q_INVOKER = 11,
    SL_BL_Q_UPDATED_DB_NAMES = 12, SL_BL_Q_MICROSECONDS = 13,           /* MySQL */
    SL_BL_Q_EXPLICIT_DEFAULTS_FOR_TIMESTAMP = 16, SL_BL_Q_DDL_LOGGED_WITH_XID = 17,
    SL_BL_Q_DEFAULT_COLLATION_FOR_UTF8MB4 = 18, SL_BL_Q_SQL_REQUIRE_PRIMARY_KEY = 19,
    SL_BL_Q_DEFAULT_TABLE_ENCRYPTION = 20,
    SL_BL_Q_HRNOW = 128, SL_BL_Q_XID = 129, SL_BL_Q_GTID_FLAGS3 = 130,  /* MariaDB */
    SL_BL_Q_CHARACTER_SET_COLLATIONS = 131, SL_BL_Q_DUMMY = 255
};

/* sql_mode bits as the servers write them in Q_SQL_MODE (MariaDB sql/sql_class.h MODE_*; the
 * low 32 are common to MySQL, which never had an ORACLE parser: its bit 9 was a mere alias). */
#define SL_BL_MODE_REAL_AS_FLOAT           (1ull << 0)
#define SL_BL_MODE_PIPES_AS_CONCAT         (1ull << 1)
#define SL_BL_MODE_ANSI_QUOTES             (1ull << 2)
#define SL_BL_MODE_IGNORE_SPACE            (1ull << 3)
#define SL_BL_MODE_NO_UNSIGNED_SUBTRACTION (1ull << 6)
#define SL_BL_MODE_ORACLE                  (1ull << 9)
#define SL_BL_MODE_NO_BACKSLASH_ESCAPES    (1ull << 20)
#define SL_BL_MODE_HIGH_NOT_PRECEDENCE     (1ull << 29)
#define SL_BL_MODE_EMPTY_STRING_IS_NULL    (1ull << 32)   /* MariaDB */
#define SL_BL_MODE_TIME_ROUND_FRACTIONAL   (1ull << 34)   /* MariaDB */

typedef struct sl_bl_query {
    uint32_t    thread_id, exec_time;
    uint16_t    error_code;
    uint8_t     has_sql_mode;            /* the status variables hold Q_SQL_MODE */
    uint64_t    sql_mode;                /* the session's sql_mode (SL_BL_MODE_* bits), else 0 */
    const char *db;   size_t db_len;     /* point into the body */
    const char *sql;  size_t sql_len;
} sl_bl_query;
/*
 * A QUERY event's body. The status variables are walked within their declared length, as the
 * server reads them (Query_log_event's constructor): every known code by its own length; an
 * unknown code, Q_DUMMY, or a variable cut short by the block's end ends the walk (what was
 * read before it stands), and the statement is still returned. SL_EINVAL when the lengths of
 * the post-header, status block and database exceed the body.
 */
int sl_bl_parse_query(const sl_bl_format *f, const uint8_t *body, size_t blen,
                      sl_bl_query *q, sl_error *err);
/* The status variables alone (bytes of the status block): fills has_sql_mode and sql_mode of
 * q and returns the number of bytes walked (< len when the walk stopped early). */
size_t sl_bl_query_status(const uint8_t *p, size_t len, sl_bl_query *q);
/* The SL_DDLM_* modes (sluice/event.h) of a session sql_mode, for a binlog of f's server (the
 * ORACLE bit counts on MariaDB only). */
uint8_t sl_bl_ddl_mode(const sl_bl_format *f, uint64_t sql_mode);
/* EXECUTE_LOAD_QUERY: a LOAD DATA logged as a statement (binlog_format STATEMENT or MIXED) */
int sl_bl_parse_execute_load_query(const sl_bl_format *f, const uint8_t *body, size_t blen,
                                   sl_bl_query *q, sl_error *err);

int sl_bl_parse_xid(const uint8_t *body, size_t blen, uint64_t *xid, sl_error *err);

/* XA_PREPARE: the xid of the branch (gtrid and bqual point into the body), and whether it is a
 * one-phase commit (nothing ends it later). */
typedef struct sl_bl_xa_prepare {
    int            one_phase;
    int32_t        format_id;
    const uint8_t *gtrid, *bqual;
    uint32_t       gtrid_len, bqual_len;
} sl_bl_xa_prepare;
int sl_bl_parse_xa_prepare(const uint8_t *body, size_t blen, sl_bl_xa_prepare *x, sl_error *err);

/* MariaDB GTID_EVENT (server_id comes from the common header). */
typedef struct sl_bl_gtid {
    uint64_t seq;
    uint32_t domain;
    uint8_t  flags;       /* SL_BL_FL_* */
    uint64_t commit_id;
} sl_bl_gtid;
int sl_bl_parse_gtid(const uint8_t *body, size_t blen, sl_bl_gtid *g, sl_error *err);

/* ---- MariaDB GTID positions (one domain-server-seq per domain) ------------------------------- */

typedef struct sl_bl_gtid_pos { uint32_t domain, server; uint64_t seq; } sl_bl_gtid_pos;
typedef struct sl_bl_gtid_set {
    uint32_t        n, cap;
    sl_bl_gtid_pos *v;       /* sorted by domain; malloc'd */
} sl_bl_gtid_set;

/* Set domain's position (adds the domain if new). SL_ENOMEM on failure. */
int  sl_bl_gtid_set_update(sl_bl_gtid_set *s, uint32_t domain, uint32_t server, uint64_t seq);
/* Parse "0-1-100,1-2-5" (spaces allowed, "" = empty) into s (cleared first). SL_EINVAL if bad. */
int  sl_bl_gtid_set_parse(sl_bl_gtid_set *s, const char *text, sl_error *err);
/* Format as "0-1-100,1-2-5" into buf (always NUL-terminated if cap > 0); returns the length
 * the full text needs (like snprintf). */
size_t sl_bl_gtid_set_format(const sl_bl_gtid_set *s, char *buf, size_t cap);
int  sl_bl_gtid_set_copy(sl_bl_gtid_set *dst, const sl_bl_gtid_set *src);
void sl_bl_gtid_set_free(sl_bl_gtid_set *s);
/* GTID_LIST event: the positions it lists are merged into s. */
int  sl_bl_parse_gtid_list(const uint8_t *body, size_t blen, sl_bl_gtid_set *s, sl_error *err);

/* ---- table maps ----------------------------------------------------------------------------- */

typedef struct sl_bl_column {
    uint8_t   type;         /* as in the table map (SL_MT_*) */
    uint8_t   real_type;    /* ENUM/SET/STRING for SL_MT_STRING; else = type */
    uint16_t  meta;         /* type metadata (decoded: see the .c) */
    uint32_t  max_len;      /* STRING/VARCHAR: max bytes; BLOB/GEOMETRY: length bytes; BIT: bits */
    uint8_t   nullable;
    uint8_t   is_unsigned;
    uint8_t   pk;
    uint8_t   geom_type;
    uint16_t  charset;      /* collation id, 0 if unknown; 63 = binary */
    char     *name;         /* NUL-terminated, NULL without COLUMN_NAME metadata */
    uint32_t  nlabels;      /* ENUM/SET labels */
    char    **labels;
    uint32_t *label_lens;
} sl_bl_column;

typedef struct sl_bl_table_map {
    uint64_t      table_id;
    uint16_t      flags;
    char         *schema, *table;     /* NUL-terminated */
    uint32_t      ncols;
    sl_bl_column *cols;
    uint32_t      npk;
    uint32_t     *pk;                 /* primary key columns in key order */
    uint8_t       has_names, has_signedness, has_charsets;
    /* The bytes that define the table's shape (types, metadata, nullability, optional
     * metadata): equal signatures mean the same table version. Points into the map's memory. */
    const uint8_t *sig;
    size_t        sig_len;
} sl_bl_table_map;

/* Parse a TABLE_MAP body. Returns 0 and *out (caller frees with sl_bl_table_map_free), or
 * SL_EINVAL (malformed) / SL_ENOMEM. */
int  sl_bl_parse_table_map(const sl_bl_format *f, const uint8_t *body, size_t blen,
                           sl_bl_table_map **out, sl_error *err);
void sl_bl_table_map_free(sl_bl_table_map *m);

/* Only the table id of a TABLE_MAP or rows event body (cheap: used to skip unselected tables). */
int  sl_bl_table_id(const sl_bl_format *f, uint8_t type, const uint8_t *body, size_t blen,
                    uint64_t *table_id);

/* ---- row events ---------------------------------------------------------------------------- */

/* Allocator for value payloads (strings, decimal text): normally the batch arena. */
typedef void *(*sl_bl_alloc_fn)(void *ud, size_t size);

typedef struct sl_bl_rows {
    int            kind;          /* 1 insert, 2 update, 3 delete (= SL_EV_*) */
    uint64_t       table_id;
    uint16_t       flags;         /* SL_BL_STMT_END_F ... */
    uint32_t       ncols;
    const uint8_t *present;       /* columns present in the (before) image: bitmap */
    const uint8_t *present_after; /* UPDATE: after image */
    const uint8_t *p, *end;       /* rows still to decode */
} sl_bl_rows;

/* 1 if type is a row event of any version (compressed ones included). */
int  sl_bl_is_rows_event(uint8_t type);
/* 1 for MariaDB's compressed row/query events (log_bin_compress=ON). */
int  sl_bl_is_compressed_event(uint8_t type);

/* Parse a rows event's post-header and bitmaps. Compressed events give SL_ENOTSUP. */
int  sl_bl_rows_init(const sl_bl_format *f, uint8_t type, const uint8_t *body, size_t blen,
                     sl_bl_rows *r, sl_error *err);

/*
 * Decode the next row: fills before (UPDATE, DELETE) and/or after (INSERT, UPDATE), each an
 * array of m->ncols values (columns absent from the image are SL_V_NULL). Payloads are
 * allocated with alloc(ud, n). Returns 1 when a row was decoded, 0 at the end, SL_EINVAL when
 * the bytes do not match the table map, SL_ENOMEM, SL_ENOTSUP for a column type it cannot read
 * (MySQL binary JSON, MariaDB compressed columns).
 */
int  sl_bl_rows_next(sl_bl_rows *r, const sl_bl_table_map *m, sl_bl_alloc_fn alloc, void *ud,
                     sl_value *before, sl_value *after, sl_error *err);

/* Decode one column value at p (at most end - p bytes); *used = bytes consumed. */
int  sl_bl_decode_value(const sl_bl_column *c, const uint8_t *p, const uint8_t *end, size_t *used,
                        sl_value *out, sl_bl_alloc_fn alloc, void *ud, sl_error *err);

/* Binary DECIMAL(precision, scale) to exact text (e.g. "-12.3400"). buf needs 68 bytes;
 * returns the text length or SL_EINVAL. *used = bytes consumed. */
int  sl_bl_decimal_text(const uint8_t *p, size_t avail, int precision, int scale, char *buf,
                        size_t *used);
/* Bytes a binary DECIMAL(precision, scale) takes. */
size_t sl_bl_decimal_size(int precision, int scale);

/*
 * A packet of a binlog dump that is an error (0xFF, errno, '#' and SQLSTATE, message): 1 with
 * *code and the message (not NUL-terminated: *msg, *msg_len), 0 for any other packet. The
 * connector leaves these to the caller of a COM_BINLOG_DUMP.
 */
int sl_bl_dump_error(const uint8_t *pkt, size_t len, unsigned *code, const char **msg,
                     size_t *msg_len);

#ifdef __cplusplus
}
#endif
#endif
