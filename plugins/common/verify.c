/*
 * verify.c - source/target comparison by checksummed key-range chunks (see verify.h).
 *
 * The target table is the reference for the columns and the key, and its key order cuts the
 * chunks (the target holds the union of a shard merge, so a chunk has about chunk_rows rows on
 * both sides). Each server computes, for a chunk, COUNT(*) and two 64-bit BIT_XORs of the MD5
 * of a canonical row text (columns joined by a separator, with a NULL flag per column so NULL
 * and '' differ); XOR and counts of several source tables combine into the checksum of their
 * union. Only a chunk whose checksums differ is read row by row (at most the chunk's rows are
 * held, on each side), sorted by key bytes and merged.
 */
#include "verify.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEF_CHUNK 1000

typedef struct col {
    char *name;
    int   binary;     /* binary/blob/bit/geometry: written as X'..' */
    int   isfloat;    /* FLOAT: read as DOUBLE, whose text is exact (FLOAT's has 6 digits) */
} col;

/* A column as verify reads it: FLOAT through DOUBLE, so that two values that differ past the 6
 * digits MariaDB prints for a FLOAT do not compare equal, and repair SQL writes the value. */
static void add_col(sl_sbuf *b, const col *c)
{
    if (c->isfloat)
        sl_sbuf_adds(b, "CAST(");
    sl_sbuf_add_ident(b, c->name);
    if (c->isfloat)
        sl_sbuf_adds(b, " AS DOUBLE)");
}

typedef struct tdef {
    size_t ncols, nkey;
    col   *cols;
    size_t *key;       /* indexes into cols */
    char   *rowtext;   /* the canonical row text */
    char   *rowexpr;   /* MD5(rowtext): the row's hash when rows are compared one by one */
    int     crc32c;    /* both servers have CRC32C (MariaDB >= 10.8): the fast chunk checksum */
} tdef;

typedef struct row {
    char  *key;        /* length-prefixed key values, compared with memcmp */
    size_t keylen;
    char   hash[33];
    char **vals;       /* ncols values (NULL = SQL NULL) */
    unsigned long *lens;
} row;

typedef struct rowset { size_t n, cap; row *v; } rowset;

static void set_err(sl_verify *v, int rc, const sl_error *e)
{
    pthread_mutex_lock(&v->mu);
    if (!v->rc) {
        v->rc = rc;
        v->err = *e;
    }
    pthread_mutex_unlock(&v->mu);
}

int sl_verify_query(MYSQL *db, const char *sql, size_t len, sl_error *err)
{
    if (mysql_real_query(db, sql, (unsigned long)len) == 0)
        return 0;
    unsigned e = mysql_errno(db);
    return sl_error_set(err, sl_myconn_is_conn_error(e) ? SL_ECONN : SL_EDB,
                        "%s (errno %u) in statement: %.*s%s", mysql_error(db), e,
                        len > 200 ? 200 : (int)len, sql, len > 200 ? "..." : "");
}

static int query(MYSQL *db, const sl_sbuf *q, sl_error *err)
{
    return sl_verify_query(db, q->p, q->len, err);
}

static void tdef_free(tdef *t)
{
    for (size_t i = 0; i < t->ncols; i++)
        free(t->cols[i].name);
    free(t->cols);
    free(t->key);
    free(t->rowtext);
    free(t->rowexpr);
    memset(t, 0, sizeof *t);
}

/* Column names of schema.table on db, in order, into a NUL-separated list. Returns count. */
static int load_cols(MYSQL *db, const char *schema, const char *table, tdef *t, sl_error *err)
{
    sl_sbuf q;
    sl_sbuf_init(&q);
    char s1[2 * 256 + 1], s2[2 * 256 + 1];
    mysql_real_escape_string(db, s1, schema, (unsigned long)strnlen(schema, 256));
    mysql_real_escape_string(db, s2, table, (unsigned long)strnlen(table, 256));
    sl_sbuf_addf(&q, "SELECT COLUMN_NAME, DATA_TYPE, (SELECT COUNT(*) FROM information_schema.STATISTICS s "
                     "WHERE s.TABLE_SCHEMA=c.TABLE_SCHEMA AND s.TABLE_NAME=c.TABLE_NAME AND "
                     "s.INDEX_NAME='PRIMARY' AND s.COLUMN_NAME=c.COLUMN_NAME), "
                     "(SELECT s.SEQ_IN_INDEX FROM information_schema.STATISTICS s "
                     "WHERE s.TABLE_SCHEMA=c.TABLE_SCHEMA AND s.TABLE_NAME=c.TABLE_NAME AND "
                     "s.INDEX_NAME='PRIMARY' AND s.COLUMN_NAME=c.COLUMN_NAME) "
                     "FROM information_schema.COLUMNS c WHERE c.TABLE_SCHEMA='%s' AND c.TABLE_NAME='%s' "
                     "ORDER BY c.ORDINAL_POSITION", s1, s2);
    int rc = query(db, &q, err);
    sl_sbuf_free(&q);
    if (rc < 0)
        return rc;
    MYSQL_RES *res = mysql_store_result(db);
    if (!res)
        return sl_error_set(err, SL_EDB, "%s", mysql_error(db));
    size_t n = mysql_num_rows(res);
    t->cols = calloc(n ? n : 1, sizeof *t->cols);
    t->key = calloc(n ? n : 1, sizeof *t->key);
    size_t *seq = calloc(n ? n : 1, sizeof *seq);
    if (!t->cols || !t->key || !seq) {
        free(seq);
        mysql_free_result(res);
        return SL_ENOMEM;
    }
    MYSQL_ROW r;
    while ((r = mysql_fetch_row(res))) {
        col *c = &t->cols[t->ncols];
        c->name = strdup(r[0]);
        const char *ty = r[1] ? r[1] : "";
        c->binary = strstr(ty, "blob") || strstr(ty, "binary") || strcmp(ty, "bit") == 0 ||
                    strcmp(ty, "geometry") == 0 || strstr(ty, "point") || strstr(ty, "polygon") ||
                    strstr(ty, "linestring") || strstr(ty, "collection");
        c->isfloat = strcmp(ty, "float") == 0;
        if (r[2] && atoi(r[2]) > 0 && r[3]) {
            seq[t->nkey] = (size_t)atoi(r[3]);
            t->key[t->nkey++] = t->ncols;
        }
        t->ncols++;
    }
    mysql_free_result(res);
    /* key columns in the order of the primary key, not of the table */
    for (size_t i = 1; i < t->nkey; i++)
        for (size_t j = i; j > 0 && seq[j - 1] > seq[j]; j--) {
            size_t a = seq[j]; seq[j] = seq[j - 1]; seq[j - 1] = a;
            a = t->key[j]; t->key[j] = t->key[j - 1]; t->key[j - 1] = a;
        }
    free(seq);
    return (int)t->ncols;
}

/* MD5 over the canonical text of the compared columns: NULL-safe (one flag per column), and
 * each column's length, so that a 0x1f byte moving from one column to the next is seen. */
static int build_rowexpr(tdef *t)
{
    sl_sbuf b;
    sl_sbuf_init(&b);
    sl_sbuf_adds(&b, "CONCAT_WS(0x1f");
    for (size_t i = 0; i < t->ncols; i++) {
        sl_sbuf_adds(&b, ",");
        add_col(&b, &t->cols[i]);
    }
    sl_sbuf_adds(&b, ",CONCAT(''");
    for (size_t i = 0; i < t->ncols; i++) {
        sl_sbuf_adds(&b, ",ISNULL(");
        sl_sbuf_add_ident(&b, t->cols[i].name);
        sl_sbuf_adds(&b, ")");
    }
    sl_sbuf_adds(&b, "),CONCAT_WS(','");
    for (size_t i = 0; i < t->ncols; i++) {
        sl_sbuf_adds(&b, ",LENGTH(");
        add_col(&b, &t->cols[i]);
        sl_sbuf_adds(&b, ")");
    }
    sl_sbuf_adds(&b, "))");
    t->rowtext = b.p;
    if (b.oom)
        return SL_ENOMEM;
    sl_sbuf_init(&b);
    sl_sbuf_addf(&b, "MD5(%s)", t->rowtext);
    t->rowexpr = b.p;
    return b.oom ? SL_ENOMEM : 0;
}

static void add_literal(sl_sbuf *b, MYSQL *db, const col *c, const char *val, unsigned long len)
{
    if (!val) {
        sl_sbuf_adds(b, "NULL");
        return;
    }
    if (c->binary || len == 0) {
        if (len == 0) {
            sl_sbuf_adds(b, "''");
            return;
        }
        static const char hx[] = "0123456789ABCDEF";
        sl_sbuf_adds(b, "X'");
        for (unsigned long i = 0; i < len; i++) {
            char h[2] = { hx[(unsigned char)val[i] >> 4], hx[(unsigned char)val[i] & 15] };
            sl_sbuf_add(b, h, 2);
        }
        sl_sbuf_adds(b, "'");
        return;
    }
    if (sl_sbuf_reserve(b, 2 * (size_t)len + 3) < 0)
        return;
    b->p[b->len++] = '\'';
    b->len += mysql_real_escape_string(db, b->p + b->len, val, len);
    b->p[b->len++] = '\'';
    b->p[b->len] = 0;
}

/* Key-range predicate: lo < key <= hi (either side may be absent), expanded into ORs of
 * equalities so the optimizer ranges over the primary key whatever its width. */
static void add_bound(sl_sbuf *b, MYSQL *db, const tdef *t, const row *bound, const char *op_last)
{
    sl_sbuf_adds(b, "(");
    for (size_t i = 0; i < t->nkey; i++) {
        if (i)
            sl_sbuf_adds(b, " OR ");
        sl_sbuf_adds(b, "(");
        for (size_t j = 0; j <= i; j++) {
            const col *c = &t->cols[t->key[j]];
            if (j)
                sl_sbuf_adds(b, " AND ");
            sl_sbuf_add_ident(b, c->name);
            sl_sbuf_adds(b, j < i ? "=" : (i + 1 == t->nkey ? op_last : op_last[0] == '>' ? ">" : "<"));
            add_literal(b, db, c, bound->vals[j], bound->lens[j]);
        }
        sl_sbuf_adds(b, ")");
    }
    sl_sbuf_adds(b, ")");
}

static void add_where(sl_sbuf *b, MYSQL *db, const tdef *t, const row *lo, const row *hi)
{
    sl_sbuf_adds(b, " WHERE 1");
    if (lo) {
        sl_sbuf_adds(b, " AND ");
        add_bound(b, db, t, lo, ">");
    }
    if (hi) {
        sl_sbuf_adds(b, " AND ");
        add_bound(b, db, t, hi, "<=");
    }
}

static void add_keylist(sl_sbuf *b, const tdef *t)
{
    for (size_t i = 0; i < t->nkey; i++) {
        if (i)
            sl_sbuf_adds(b, ",");
        sl_sbuf_add_ident(b, t->cols[t->key[i]].name);
    }
}

static void row_free(row *r, size_t n)
{
    if (!r)
        return;
    for (size_t i = 0; r->vals && i < n; i++)
        free(r->vals[i]);
    free(r->vals);
    free(r->lens);
    free(r->key);
    memset(r, 0, sizeof *r);
}

/* Copy a fetched row (values start at column `off`, n of them) into r; the key is made of the
 * first nkey values. */
static int row_take(row *r, MYSQL_ROW mr, unsigned long *ml, size_t off, size_t n, size_t nkey,
                    const char *hash)
{
    memset(r, 0, sizeof *r);
    r->vals = calloc(n, sizeof *r->vals);
    r->lens = calloc(n, sizeof *r->lens);
    if (!r->vals || !r->lens)
        return SL_ENOMEM;
    size_t kl = 0;
    for (size_t i = 0; i < n; i++) {
        if (mr[off + i]) {
            r->vals[i] = malloc(ml[off + i] + 1);
            if (!r->vals[i])
                return SL_ENOMEM;
            memcpy(r->vals[i], mr[off + i], ml[off + i]);
            r->vals[i][ml[off + i]] = 0;
            r->lens[i] = ml[off + i];
        }
        if (i < nkey)
            kl += 4 + r->lens[i];
    }
    r->key = malloc(kl ? kl : 1);
    if (!r->key)
        return SL_ENOMEM;
    for (size_t i = 0; i < nkey; i++) {
        unsigned long l = r->lens[i];
        unsigned char p[4] = { (unsigned char)(l >> 24), (unsigned char)(l >> 16),
                               (unsigned char)(l >> 8), (unsigned char)l };
        memcpy(r->key + r->keylen, p, 4);
        memcpy(r->key + r->keylen + 4, r->vals[i] ? r->vals[i] : "", l);
        r->keylen += 4 + l;
    }
    if (hash)
        snprintf(r->hash, sizeof r->hash, "%s", hash);
    return 0;
}

static int keycmp(const row *a, const row *b)
{
    size_t n = a->keylen < b->keylen ? a->keylen : b->keylen;
    int c = memcmp(a->key, b->key, n);
    return c ? c : (a->keylen > b->keylen) - (a->keylen < b->keylen);
}

static int rowcmp(const void *a, const void *b) { return keycmp(a, b); }

/* The key of the chunk_rows-th row after lo on db (the chunk's upper bound), 0 when fewer rows
 * are left (the last chunk, open above), 1 with *hi filled. */
static int next_bound(MYSQL *db, const sl_verify_table *vt, const tdef *t, const row *lo,
                      size_t chunk, row *hi, sl_error *err)
{
    sl_sbuf q;
    sl_sbuf_init(&q);
    sl_sbuf_adds(&q, "SELECT ");
    add_keylist(&q, t);
    sl_sbuf_adds(&q, " FROM ");
    sl_sbuf_add_qname(&q, vt->tschema, vt->ttable);
    add_where(&q, db, t, lo, NULL);
    sl_sbuf_adds(&q, " ORDER BY ");
    add_keylist(&q, t);
    sl_sbuf_addf(&q, " LIMIT 1 OFFSET %zu", chunk - 1);
    int rc = !q.oom ? query(db, &q, err) : SL_ENOMEM;
    sl_sbuf_free(&q);
    if (rc < 0)
        return rc;
    MYSQL_RES *res = mysql_store_result(db);
    if (!res)
        return sl_error_set(err, SL_EDB, "%s", mysql_error(db));
    MYSQL_ROW r = mysql_fetch_row(res);
    rc = 0;
    if (r) {
        rc = row_take(hi, r, mysql_fetch_lengths(res), 0, t->nkey, t->nkey, NULL);
        rc = rc < 0 ? rc : 1;
    }
    mysql_free_result(res);
    return rc;
}

typedef struct sum { unsigned long long n, x1, x2; } sum;

/* Send a chunk's checksum query without waiting, so every server of the chunk (the sources and
 * the target) computes at the same time; checksum_read collects the answer. The fast form XORs
 * CRC32 and CRC32C of the row text as one 64-bit value (about 4x cheaper than MD5 on sysbench
 * rows); without CRC32C both 64-bit halves of the MD5 are XORed. */
static int checksum_send(MYSQL *db, const char *schema, const char *table, const tdef *t,
                         const row *lo, const row *hi, sl_error *err)
{
    sl_sbuf q;
    sl_sbuf_init(&q);
    if (t->crc32c)
        sl_sbuf_addf(&q, "SELECT COUNT(*), COALESCE(BIT_XOR(CRC32(h) << 32 | CRC32C(h)),0), 0 FROM "
                         "(SELECT %s AS h FROM ", t->rowtext);
    else
        sl_sbuf_addf(&q, "SELECT COUNT(*), COALESCE(BIT_XOR(CAST(CONV(LEFT(h,16),16,10) AS UNSIGNED)),0), "
                         "COALESCE(BIT_XOR(CAST(CONV(RIGHT(h,16),16,10) AS UNSIGNED)),0) FROM "
                         "(SELECT %s AS h FROM ", t->rowexpr);
    sl_sbuf_add_qname(&q, schema, table);
    add_where(&q, db, t, lo, hi);
    sl_sbuf_adds(&q, ") AS x");
    int rc = q.oom ? SL_ENOMEM : 0;
    if (rc == 0 && mysql_send_query(db, q.p, (unsigned long)q.len) != 0)
        rc = sl_error_set(err, sl_myconn_is_conn_error(mysql_errno(db)) ? SL_ECONN : SL_EDB,
                          "checksum of %s.%s: %s", schema, table, mysql_error(db));
    sl_sbuf_free(&q);
    return rc;
}

static int checksum_read(MYSQL *db, const char *schema, const char *table, sum *s, sl_error *err)
{
    if (mysql_read_query_result(db) != 0)
        return sl_error_set(err, sl_myconn_is_conn_error(mysql_errno(db)) ? SL_ECONN : SL_EDB,
                            "checksum of %s.%s: %s", schema, table, mysql_error(db));
    MYSQL_RES *res = mysql_store_result(db);
    if (!res)
        return sl_error_set(err, SL_EDB, "%s", mysql_error(db));
    MYSQL_ROW r = mysql_fetch_row(res);
    if (r) {
        s->n += strtoull(r[0], NULL, 10);
        s->x1 ^= strtoull(r[1], NULL, 10);
        s->x2 ^= strtoull(r[2], NULL, 10);
    }
    mysql_free_result(res);
    return 0;
}

/* Read a chunk's rows (key, hash, every column) from one table into rs, streamed. */
static int read_rows(MYSQL *db, const char *schema, const char *table, const tdef *t,
                     const row *lo, const row *hi, size_t cap, rowset *rs, sl_error *err)
{
    sl_sbuf q;
    sl_sbuf_init(&q);
    sl_sbuf_addf(&q, "SELECT %s", t->rowexpr);
    for (size_t i = 0; i < t->nkey; i++) {
        sl_sbuf_adds(&q, ",");
        add_col(&q, &t->cols[t->key[i]]);
    }
    for (size_t i = 0; i < t->ncols; i++) {
        sl_sbuf_adds(&q, ",");
        add_col(&q, &t->cols[i]);
    }
    sl_sbuf_adds(&q, " FROM ");
    sl_sbuf_add_qname(&q, schema, table);
    add_where(&q, db, t, lo, hi);
    int rc = !q.oom ? query(db, &q, err) : SL_ENOMEM;
    sl_sbuf_free(&q);
    if (rc < 0)
        return rc;
    MYSQL_RES *res = mysql_use_result(db);
    if (!res)
        return sl_error_set(err, SL_EDB, "%s", mysql_error(db));
    MYSQL_ROW r;
    while ((r = mysql_fetch_row(res))) {
        if (cap && rs->n >= cap) {
            rc = sl_error_set(err, SL_ELIMIT, "more than %zu rows of %s.%s within one chunk's key "
                              "range (the target misses most of it?): raise the row cap or lower "
                              "chunk_rows, or repair the range first", cap, schema, table);
            break;
        }
        if (rs->n == rs->cap) {
            size_t nc = rs->cap ? rs->cap * 2 : 64;
            row *nv = realloc(rs->v, nc * sizeof *nv);
            if (!nv) {
                rc = SL_ENOMEM;
                break;
            }
            rs->v = nv;
            rs->cap = nc;
        }
        /* values: the key columns first, then every column */
        rc = row_take(&rs->v[rs->n], r, mysql_fetch_lengths(res), 1, t->nkey + t->ncols, t->nkey, r[0]);
        rs->n++;
        if (rc < 0)
            break;
    }
    if (rc == 0 && mysql_errno(db))
        rc = sl_error_set(err, SL_EDB, "%s", mysql_error(db));
    mysql_free_result(res);
    return rc;
}

static void rowset_free(rowset *rs, size_t nvals)
{
    for (size_t i = 0; i < rs->n; i++)
        row_free(&rs->v[i], nvals);
    free(rs->v);
    memset(rs, 0, sizeof *rs);
}

static void add_keytext(sl_sbuf *b, MYSQL *db, const tdef *t, const row *r)
{
    for (size_t i = 0; i < t->nkey; i++) {
        if (i)
            sl_sbuf_adds(b, ",");
        sl_sbuf_add_ident(b, t->cols[t->key[i]].name);
        sl_sbuf_adds(b, "=");
        add_literal(b, db, &t->cols[t->key[i]], r->vals[i], r->lens[i]);
    }
}

/* Report one differing row and, if asked, the statement that repairs it. Called with v->mu. */
static void report_row(sl_verify *v, MYSQL *db, const sl_verify_table *vt, const tdef *t,
                       const char *kind, const row *src, const row *tgt)
{
    const row *r = src ? src : tgt;
    sl_sbuf b;
    sl_sbuf_init(&b);
    sl_sbuf_addf(&b, "%s ", kind);
    sl_sbuf_add_qname(&b, vt->tschema, vt->ttable);
    sl_sbuf_adds(&b, " key (");
    size_t key_at = b.len;
    add_keytext(&b, db, t, r);
    size_t key_end = b.len, cols_at = 0;
    sl_sbuf_adds(&b, ")");
    if (src && tgt) {
        sl_sbuf_adds(&b, " columns");
        cols_at = b.len + 1;
        int first = 1;
        for (size_t i = 0; i < t->ncols; i++) {
            size_t k = t->nkey + i;
            int same = (!src->vals[k] && !tgt->vals[k]) ||
                       (src->vals[k] && tgt->vals[k] && src->lens[k] == tgt->lens[k] &&
                        memcmp(src->vals[k], tgt->vals[k], src->lens[k]) == 0);
            if (!same) {
                sl_sbuf_adds(&b, first ? " " : ",");
                sl_sbuf_adds(&b, t->cols[i].name);
                first = 0;
            }
        }
    }
    if (b.p && v->o.report)
        fprintf(v->o.report, "%s\n", b.p);
    if (b.p && v->o.on_diff) {
        char *key = strndup(b.p + key_at, key_end - key_at);
        if (key)
            v->o.on_diff(v->o.diff_arg, vt, kind, key, cols_at ? b.p + cols_at : NULL);
        free(key);
    }
    if (v->o.repair) {
        sl_sbuf_reset(&b);
        if (!src) {
            sl_sbuf_adds(&b, "DELETE FROM ");
            sl_sbuf_add_qname(&b, vt->tschema, vt->ttable);
            sl_sbuf_adds(&b, " WHERE ");
            for (size_t i = 0; i < t->nkey; i++) {
                if (i)
                    sl_sbuf_adds(&b, " AND ");
                sl_sbuf_add_ident(&b, t->cols[t->key[i]].name);
                sl_sbuf_adds(&b, "=");
                add_literal(&b, db, &t->cols[t->key[i]], r->vals[i], r->lens[i]);
            }
        } else {
            /* REPLACE: a missing row is inserted, a different one rewritten whole */
            sl_sbuf_adds(&b, "REPLACE INTO ");
            sl_sbuf_add_qname(&b, vt->tschema, vt->ttable);
            sl_sbuf_adds(&b, " (");
            for (size_t i = 0; i < t->ncols; i++) {
                if (i)
                    sl_sbuf_adds(&b, ",");
                sl_sbuf_add_ident(&b, t->cols[i].name);
            }
            sl_sbuf_adds(&b, ") VALUES (");
            for (size_t i = 0; i < t->ncols; i++) {
                if (i)
                    sl_sbuf_adds(&b, ",");
                add_literal(&b, db, &t->cols[i], src->vals[t->nkey + i], src->lens[t->nkey + i]);
            }
            sl_sbuf_adds(&b, ")");
        }
        if (b.p)
            fprintf(v->o.repair, "%s;\n", b.p);
    }
    sl_sbuf_free(&b);
}

/* The wait before re-check number pass (1, 2, ...): retry_ms, doubled each time with backoff. */
static unsigned retry_delay(const sl_verify *v, unsigned pass)
{
    unsigned long long d = v->o.retry_ms;
    for (unsigned i = 1; v->o.backoff && i < pass && d < 30000; i++)
        d *= 2;
    return (unsigned)(d < 30000 || !v->o.backoff ? d : 30000);
}

/* Wait ms, in slices of at most 100 ms so that a cancelled run (a task deleted, the server
 * stopping) does not sit out a long re-check delay. */
static void sleep_ms(sl_verify *v, unsigned ms)
{
    while (ms && !atomic_load(&v->cancel)) {
        unsigned s = ms < 100 ? ms : 100;
        struct timespec ts = { 0, (long)s * 1000000L };
        nanosleep(&ts, NULL);
        ms -= s;
    }
}

/* Before re-check number pass of a chunk of vt: wait until the task applied what every source
 * table had written by now (wait_applied), else the timed delay. */
static void settle(sl_verify *v, const sl_verify_table *vt, MYSQL **sdb, unsigned pass)
{
    int ok = v->o.wait_applied != NULL;
    for (size_t i = 0; ok && i < vt->nsrc && !atomic_load(&v->cancel); i++)
        ok = v->o.wait_applied(v->o.wait_arg, vt->src[i].conn, sdb[i]) == 0;
    if (!ok)
        sleep_ms(v, retry_delay(v, pass));
}

/* A differing row's kind and key as one byte string, to follow it from one pass to the next. */
typedef struct mark { char *b; size_t len; } mark;
typedef struct markset { size_t n, cap; mark *v; } markset;

static int markcmp(const void *a, const void *b)
{
    const mark *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->b, y->b, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

static int mark_add(markset *m, char kind, const row *r)
{
    if (m->n == m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 16;
        mark *nv = realloc(m->v, nc * sizeof *nv);
        if (!nv)
            return SL_ENOMEM;
        m->v = nv;
        m->cap = nc;
    }
    char *b = malloc(r->keylen + 1);
    if (!b)
        return SL_ENOMEM;
    b[0] = kind;
    memcpy(b + 1, r->key, r->keylen);
    m->v[m->n++] = (mark){ b, r->keylen + 1 };
    return 0;
}

static int mark_has(const markset *m, char kind, const row *r)
{
    char stack[512], *b = r->keylen + 1 <= sizeof stack ? stack : malloc(r->keylen + 1);
    if (!b)
        return 1;   /* out of memory: report rather than hide */
    b[0] = kind;
    memcpy(b + 1, r->key, r->keylen);
    mark k = { b, r->keylen + 1 };
    int hit = m->n && bsearch(&k, m->v, m->n, sizeof *m->v, markcmp) != NULL;
    if (b != stack)
        free(b);
    return hit;
}

static void markset_free(markset *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->v[i].b);
    free(m->v);
    memset(m, 0, sizeof *m);
}

/*
 * Row-by-row comparison of one differing chunk. With retries, the chunk is read again after each
 * delay and a row is reported only if it differed the same way in every pass: a row that was in
 * flight (applied to the target later, replication lag) settles or shows up new, and is dropped.
 */
static int recheck(sl_verify *v, MYSQL **sdb, MYSQL *tdb, const sl_verify_table *vt,
                   const tdef *t, const row *lo, const row *hi, sl_error *err)
{
    size_t nv = t->nkey + t->ncols;
    markset prev = {0};
    int rc = 0;
    for (unsigned pass = 0; rc == 0 && pass <= v->o.retries; pass++) {
        int last = pass == v->o.retries;
        rowset s = {0}, g = {0};
        markset cur = {0};
        if (pass)
            settle(v, vt, sdb, pass);
        for (size_t i = 0; i < vt->nsrc && rc == 0; i++)
            rc = read_rows(sdb[i], vt->src[i].schema, vt->src[i].table, t, lo, hi, v->o.row_cap,
                           &s, err);
        if (rc == 0)
            rc = read_rows(tdb, vt->tschema, vt->ttable, t, lo, hi, v->o.row_cap, &g, err);
        if (rc == 0) {
            if (s.n > 1)   /* (qsort's base must not be NULL, even for no rows) */
                qsort(s.v, s.n, sizeof *s.v, rowcmp);
            if (g.n > 1)
                qsort(g.v, g.n, sizeof *g.v, rowcmp);
            unsigned long long miss = 0, extra = 0, diff = 0;
            if (last)
                pthread_mutex_lock(&v->mu);
            size_t i = 0, j = 0;
            while (rc == 0 && (i < s.n || j < g.n)) {
                int c = i == s.n ? 1 : j == g.n ? -1 : keycmp(&s.v[i], &g.v[j]);
                char kind = c < 0 ? 'm' : c > 0 ? 'e' : strcmp(s.v[i].hash, g.v[j].hash) ? 'd' : 0;
                const row *key = c > 0 ? &g.v[j] : &s.v[i];
                if (kind && (pass == 0 || mark_has(&prev, kind, key))) {
                    if (!last)
                        rc = mark_add(&cur, kind, key);
                    else if (kind == 'm')
                        report_row(v, tdb, vt, t, "missing", &s.v[i], NULL), miss++;
                    else if (kind == 'e')
                        report_row(v, tdb, vt, t, "extra", NULL, &g.v[j]), extra++;
                    else
                        report_row(v, tdb, vt, t, "different", &s.v[i], &g.v[j]), diff++;
                }
                if (c <= 0)
                    i++;
                if (c >= 0)
                    j++;
            }
            if (last) {
                sl_verify_table *vw = (sl_verify_table *)vt;
                v->stats.missing += miss;
                v->stats.extra += extra;
                v->stats.different += diff;
                vw->st.missing += miss;
                vw->st.extra += extra;
                vw->st.different += diff;
                pthread_mutex_unlock(&v->mu);
            }
        }
        rowset_free(&s, nv);
        rowset_free(&g, nv);
        markset_free(&prev);
        prev = cur;
        if (!last) {
            if (prev.n == 0)
                break;   /* everything settled */
            qsort(prev.v, prev.n, sizeof *prev.v, markcmp);
        }
    }
    markset_free(&prev);
    return rc;
}

static void throttle(sl_verify *v)
{
    if (v->o.chunks_per_second <= 0)
        return;
    double s = 1.0 / v->o.chunks_per_second;
    if (s >= 0.1) {
        sleep_ms(v, s * 1000 > 3600000 ? 3600000 : (unsigned)(s * 1000));
        return;
    }
    struct timespec ts = { 0, (long)(s * 1e9) };
    nanosleep(&ts, NULL);
}

/* Checksums of one chunk on every source table (summed into *a) and on the target (*b), all
 * servers computing at once. */
static int chunk_sums(const sl_verify_table *vt, const tdef *t, MYSQL **sdb, MYSQL *tdb,
                      const row *lo, const row *hi, sum *a, sum *b, sl_error *err)
{
    int rc = 0;
    size_t sent = 0;
    memset(a, 0, sizeof *a);
    memset(b, 0, sizeof *b);
    for (; sent < vt->nsrc && rc == 0; sent++)
        rc = checksum_send(sdb[sent], vt->src[sent].schema, vt->src[sent].table, t, lo, hi, err);
    if (rc < 0)
        sent--;   /* the failed send left nothing to read */
    int tsent = rc == 0 && (rc = checksum_send(tdb, vt->tschema, vt->ttable, t, lo, hi, err)) == 0;
    /* read every answer that was asked for, even after an error, so no connection is left
     * mid-result */
    for (size_t i = 0; i < sent; i++) {
        int r = checksum_read(sdb[i], vt->src[i].schema, vt->src[i].table, a, rc ? NULL : err);
        rc = rc ? rc : r;
    }
    if (tsent) {
        int r = checksum_read(tdb, vt->tschema, vt->ttable, b, rc ? NULL : err);
        rc = rc ? rc : r;
    }
    return rc;
}

/* 1 if the server has CRC32C() (MariaDB 10.8 and later; not MySQL). */
static int has_crc32c(MYSQL *db)
{
    const char *q = "SELECT CRC32C('')";
    if (mysql_real_query(db, q, (unsigned long)strlen(q)) != 0)
        return 0;
    MYSQL_RES *r = mysql_store_result(db);
    if (r)
        mysql_free_result(r);
    return 1;
}

/* Compare one table; connections are opened per table and closed at its end. */
static int verify_table(sl_verify *v, sl_verify_table *vt, sl_error *err)
{
    tdef t = {0};
    MYSQL *tdb = NULL, **sdb = calloc(vt->nsrc ? vt->nsrc : 1, sizeof *sdb);
    row lo = {0}, hi = {0};
    int have_lo = 0, rc = 0;
    size_t chunk = v->o.chunk_rows ? v->o.chunk_rows : DEF_CHUNK;
    if (!sdb)
        return SL_ENOMEM;
    if (!(tdb = sl_myconn_open(v->o.target, err))) {
        rc = SL_ECONN;
        goto out;
    }
    for (size_t i = 0; i < vt->nsrc; i++)
        if (!(sdb[i] = sl_myconn_open(vt->src[i].conn, err))) {
            rc = SL_ECONN;
            goto out;
        }
    if ((rc = load_cols(tdb, vt->tschema, vt->ttable, &t, err)) < 0)
        goto out;
    if (t.ncols == 0) {
        rc = sl_error_set(err, SL_ENOENT, "target table %s.%s does not exist", vt->tschema, vt->ttable);
        goto out;
    }
    if (t.nkey == 0) {
        pthread_mutex_lock(&v->mu);
        if (v->o.report)
            fprintf(v->o.report, "excluded `%s`.`%s`: no primary key to chunk and match rows by\n",
                    vt->tschema, vt->ttable);
        if (!vt->excluded)
            vt->excluded = strdup("no primary key to chunk and match rows by");
        vt->state = SL_VERIFY_EXCLUDED;
        v->stats.excluded++;
        pthread_mutex_unlock(&v->mu);
        goto out;
    }
    if ((rc = build_rowexpr(&t)) < 0)
        goto out;
    t.crc32c = has_crc32c(tdb);
    for (size_t i = 0; i < vt->nsrc; i++)
        t.crc32c = t.crc32c && has_crc32c(sdb[i]);
    for (;;) {
        if (atomic_load(&v->cancel)) {
            rc = sl_error_set(err, SL_ESTOPPED, "verification stopped");
            break;
        }
        int more = next_bound(tdb, vt, &t, have_lo ? &lo : NULL, chunk, &hi, err);
        if (more < 0) {
            rc = more;
            break;
        }
        sum a, b;
        int differs = 0;
        for (unsigned attempt = 0; rc == 0 && attempt <= v->o.retries; attempt++) {
            if (attempt)
                settle(v, vt, sdb, attempt);
            rc = chunk_sums(vt, &t, sdb, tdb, have_lo ? &lo : NULL, more ? &hi : NULL, &a, &b, err);
            differs = a.n != b.n || a.x1 != b.x1 || a.x2 != b.x2;
            if (!differs)
                break;
        }
        if (rc < 0)
            break;
        pthread_mutex_lock(&v->mu);
        v->stats.rows += a.n;
        v->stats.chunks++;
        v->stats.chunks_differing += differs;
        vt->st.rows += a.n;
        vt->st.chunks++;
        vt->st.chunks_differing += differs;
        pthread_mutex_unlock(&v->mu);
        if (differs && (rc = recheck(v, sdb, tdb, vt, &t, have_lo ? &lo : NULL, more ? &hi : NULL, err)) < 0)
            break;
        throttle(v);
        if (!more)
            break;
        row_free(&lo, t.nkey);
        lo = hi;
        memset(&hi, 0, sizeof hi);
        have_lo = 1;
    }
out:
    row_free(&lo, t.nkey);
    row_free(&hi, t.nkey);
    tdef_free(&t);
    for (size_t i = 0; i < vt->nsrc; i++)
        if (sdb[i])
            mysql_close(sdb[i]);
    free(sdb);
    if (tdb)
        mysql_close(tdb);
    return rc;
}

int sl_verify_init(sl_verify *v, const sl_verify_opts *o, sl_verify_table *tables, size_t n)
{
    memset(v, 0, sizeof *v);
    v->o = *o;
    v->tables = tables;
    v->ntables = n;
    return pthread_mutex_init(&v->mu, NULL) == 0 ? 0 : SL_ENOMEM;
}

void sl_verify_cancel(sl_verify *v)
{
    atomic_store(&v->cancel, 1);
}

void sl_verify_destroy(sl_verify *v)
{
    pthread_mutex_destroy(&v->mu);
}

int sl_verify_work(sl_verify *v)
{
    mysql_thread_init();
    for (;;) {
        pthread_mutex_lock(&v->mu);
        int stop = v->rc != 0 || v->next >= v->ntables || atomic_load(&v->cancel);
        sl_verify_table *vt = stop ? NULL : &v->tables[v->next++];
        if (vt)
            vt->state = vt->excluded ? SL_VERIFY_EXCLUDED : SL_VERIFY_RUNNING;
        pthread_mutex_unlock(&v->mu);
        if (!vt)
            break;
        if (vt->excluded) {
            pthread_mutex_lock(&v->mu);
            if (v->o.report)
                fprintf(v->o.report, "excluded `%s`.`%s`: %s\n", vt->tschema, vt->ttable, vt->excluded);
            v->stats.excluded++;
            pthread_mutex_unlock(&v->mu);
            continue;
        }
        sl_error err = {0};
        int rc = verify_table(v, vt, &err);
        if (rc < 0) {
            pthread_mutex_lock(&v->mu);
            vt->state = SL_VERIFY_FAILED;
            pthread_mutex_unlock(&v->mu);
            set_err(v, rc, &err);
            break;
        }
        pthread_mutex_lock(&v->mu);
        if (vt->state == SL_VERIFY_RUNNING) {
            vt->state = SL_VERIFY_DONE;
            v->stats.tables++;
        }
        pthread_mutex_unlock(&v->mu);
    }
    mysql_thread_end();
    return v->rc;
}
