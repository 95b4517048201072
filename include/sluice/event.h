/*
 * event.h - change events, table metadata and the batches they travel in.
 *
 * A batch owns all memory of its events (an arena) and is reference counted: emitting a batch
 * hands one reference downstream. Events are plain structs; strings and values inside them
 * point into the batch's arena or into refcounted table metadata. All allocation goes through
 * the host function table (plugin.h), so a plugin links against nothing of the server.
 */
#ifndef SLUICE_EVENT_H
#define SLUICE_EVENT_H

#include <stdint.h>
#include <stddef.h>
#include "value.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sl_event_kind {
    SL_EV_INSERT = 1,
    SL_EV_UPDATE,
    SL_EV_DELETE,
    SL_EV_DDL,
    SL_EV_BEGIN,
    SL_EV_COMMIT,
    SL_EV_HEARTBEAT,
    SL_EV_CHUNK        /* full phase: a file of rows written by a dump, ready to load */
} sl_event_kind;

/* sl_column.flags */
#define SL_COL_PK        0x01u  /* part of the primary key (or the chosen unique not-null key) */
#define SL_COL_UNIQUE    0x02u  /* part of some unique key */
#define SL_COL_UNSIGNED  0x04u
#define SL_COL_NULLABLE  0x08u
#define SL_COL_GENERATED 0x10u  /* computed by the server: never written to the target */
#define SL_COL_BINARY    0x20u  /* binary collation / binary string type */

typedef struct sl_column {
    const char *name;
    uint8_t     mysql_type;  /* MySQL enum_field_types as in the binlog (MYSQL_TYPE_*) */
    uint8_t     flags;       /* SL_COL_* */
    uint16_t    charset;     /* collation id; 63 = binary */
    uint32_t    length;      /* declared length / precision */
    uint8_t     scale;       /* DECIMAL scale, temporal fsp */
    uint8_t     _pad[3];
    const char *type_text;   /* full SQL type as in SHOW CREATE (e.g. "decimal(65,30) unsigned"), may be NULL */
} sl_column;

/*
 * Metadata of one table as the producer knows it at the time of the event. Immutable once
 * published; refcounted (host->table_ref/table_unref). keys[] lists unique keys as column index
 * arrays; pk (npk columns) is the primary key or, failing that, the first unique not-null key.
 */
typedef struct sl_table {
    uint32_t        refcnt;          /* managed by the host: do not touch */
    uint32_t        ncols;
    const char     *schema;
    const char     *name;
    sl_column      *cols;
    uint32_t        npk;
    uint32_t       *pk;              /* column indexes */
    uint32_t        nkeys;           /* other unique keys */
    uint32_t      **keys;            /* keys[k] = column indexes, terminated by UINT32_MAX */
    uint64_t        version;         /* bumped by the producer on each DDL that changes the table */
} sl_table;

/* A position in the source's binlog. Strings live in the batch (or are static). */
typedef struct sl_position {
    const char *file;    /* binlog file name, e.g. "mysql-bin.000003"; NULL if unknown */
    uint64_t    offset;  /* offset of the next event after this one */
    const char *gtid;    /* GTID set executed up to and including this event; NULL if unknown */
} sl_position;

/* sl_event.flags */
#define SL_EVF_DROPPED   0x01u  /* a transform dropped it: later stages skip it */
#define SL_EVF_SNAPSHOT  0x02u  /* produced by the full (dump) phase, not the binlog */
#define SL_EVF_SHARD_DDL 0x04u  /* route: a DDL on a table that a shard merge routes elsewhere;
                                   schema/table then name that source table (the shard) */
#define SL_EVF_LAST_CHUNK 0x08u /* SL_EV_CHUNK: the last chunk of its source table the dump
                                   emits (the loader may then build that table's indexes) */

/*
 * sl_event.ddl_mode: the modes of the source session's sql_mode that change how a DDL text
 * reads (the binlog carries the session's sql_mode with each statement). A stage that reads,
 * rewrites or runs the text honours them: quoting (ANSI_QUOTES, NO_BACKSLASH_ESCAPES), and what
 * the server makes of it (a REAL column, a || b in a generated column...). Bit values are
 * sluice's own, not the server's sql_mode bits.
 */
#define SL_DDLM_REAL_AS_FLOAT           0x01u   /* REAL is FLOAT, not DOUBLE */
#define SL_DDLM_PIPES_AS_CONCAT         0x02u   /* || concatenates, not OR */
#define SL_DDLM_ANSI_QUOTES             0x04u   /* "x" is an identifier, not a string */
#define SL_DDLM_IGNORE_SPACE            0x08u   /* spaces allowed between a function and ( */
#define SL_DDLM_NO_UNSIGNED_SUBTRACTION 0x10u   /* unsigned - unsigned is signed */
#define SL_DDLM_NO_BACKSLASH_ESCAPES    0x20u   /* backslash is an ordinary character in strings */
#define SL_DDLM_HIGH_NOT_PRECEDENCE     0x40u   /* NOT a BETWEEN b AND c is (NOT a) BETWEEN ... */
#define SL_DDLM_ORACLE                  0x80u   /* MariaDB's sql_mode=ORACLE parser */

/* Bytes that always hold the text of sl_ddl_mode_text (every word, commas and the NUL). */
#define SL_DDLM_TEXT_MAX 160

/*
 * The sql_mode words of mode's SL_DDLM_* bits, comma-separated in bit order
 * ("PIPES_AS_CONCAT,ANSI_QUOTES"; "" for 0), into buf (NUL-terminated when cap > 0). Returns
 * the length of the whole text (like snprintf); SL_DDLM_TEXT_MAX bytes always suffice. The words
 * are valid in SET sql_mode on MariaDB; on MySQL all but ORACLE (gone in 8.0). Thread-safe.
 */
static inline size_t sl_ddl_mode_text(unsigned mode, char *buf, size_t cap)
{
    static const char *const words[8] = {
        "REAL_AS_FLOAT", "PIPES_AS_CONCAT", "ANSI_QUOTES", "IGNORE_SPACE",
        "NO_UNSIGNED_SUBTRACTION", "NO_BACKSLASH_ESCAPES", "HIGH_NOT_PRECEDENCE", "ORACLE"
    };
    size_t n = 0;
    for (unsigned i = 0; i < 8; i++) {
        if (!(mode & (1u << i)))
            continue;
        for (const char *w = n ? "," : ""; *w; w++, n++)
            if (n + 1 < cap)
                buf[n] = *w;
        for (const char *w = words[i]; *w; w++, n++)
            if (n + 1 < cap)
                buf[n] = *w;
    }
    if (cap)
        buf[n < cap ? n : cap - 1] = '\0';
    return n;
}

typedef struct sl_event {
    uint8_t      kind;            /* sl_event_kind */
    uint8_t      ddl_mode;        /* SL_EV_DDL: the SL_DDLM_* modes of the source session's
                                     sql_mode that change how ddl reads (0 = none, or unknown:
                                     read it the default way); other kinds: 0. Since ABI 1.5;
                                     older hosts leave it 0 */
    uint16_t     flags;           /* SL_EVF_* */
    uint32_t     ncols;           /* entries in before/after (= table->ncols) */
    const char  *schema;          /* as read at the source */
    const char  *table;
    const char  *target_schema;   /* after routing; NULL until the route stage sets it */
    const char  *target_table;
    sl_table    *meta;            /* column metadata (a reference held by the batch) or NULL */
    sl_value    *before;          /* UPDATE, DELETE: old row image; else NULL */
    sl_value    *after;           /* INSERT, UPDATE: new row image; else NULL */
    const char  *ddl;             /* DDL text (SL_EV_DDL) */
    const char  *ddl_schema;      /* default schema in effect for the DDL */
    sl_position  pos;             /* where the event ends */
    uint64_t     commit_ts;       /* commit time, seconds since the epoch */
    uint64_t     seq;             /* monotonic per-source sequence number (source-assigned) */
    /* SL_EV_CHUNK: the file, its id (unique within the task and source), rows and bytes. On a
     * snapshot CREATE TABLE (SL_EV_DDL with SL_EVF_SNAPSHOT) chunk_rows and chunk_bytes are the
     * dump's estimate of the whole table (0: unknown), for the loader to plan its indexes. */
    const char  *chunk_path;
    const char  *chunk_id;
    uint64_t     chunk_rows;
    uint64_t     chunk_bytes;
} sl_event;

/* sl_batch.flags */
#define SL_BATCH_TXN_END 0x01u  /* the batch ends at a transaction boundary: ckpt is valid */
#define SL_BATCH_EOF     0x02u  /* last batch of a finite source (dump/load finished) */

typedef struct sl_batch {
    uint32_t     n;               /* events in use */
    uint32_t     cap;             /* events allocated */
    sl_event    *events;
    uint32_t     flags;           /* SL_BATCH_* */
    uint32_t     _pad;
    sl_position  ckpt;            /* position after the last whole transaction in the batch */
    uint64_t     bytes;           /* approximate payload bytes (for progress and memory bounds) */
    void        *priv;            /* owned by the host: arena and refcount */
} sl_batch;

#ifdef __cplusplus
}
#endif
#endif
