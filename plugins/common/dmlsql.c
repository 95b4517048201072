/*
 * dmlsql.c - row changes to INSERT/UPDATE/DELETE text (dmlsql.h), with sqlfmt.c for values.
 */
#include "dmlsql.h"

#include <string.h>
#include "dumpfmt.h"
#include "sqlfmt.h"

/*
 * One row change as the builder sees it, whichever input it came from: the event gives the
 * table (metadata, routed names), img the row image to write (INSERT, UPSERT) or whose key to
 * delete (DELETE); an UPDATE writes ev->after where ev->before was. Row events map one to one
 * (INSERT: after, DELETE: before); the compactor's net changes (compact.h) carry their own.
 */
enum { CH_INSERT = SL_CMP_INSERT, CH_UPSERT = SL_CMP_UPSERT, CH_DELETE = SL_CMP_DELETE, CH_UPDATE };

typedef struct change {
    const sl_event *ev;
    const sl_value *img;
    unsigned        kind;   /* CH_* */
} change;

/*
 * The input of one build: row events (evs) or compacted net changes (ops), read one change at
 * a time so that one loop writes the statements of both.
 */
typedef struct input {
    sl_event *const *evs;
    const sl_cmp_op *ops;
    size_t           n;
} input;

static change change_at(const input *in, size_t i)
{
    if (in->ops)
        return (change){ in->ops[i].ev, in->ops[i].img, in->ops[i].kind };
    const sl_event *ev = in->evs[i];
    switch (ev->kind) {
    case SL_EV_INSERT: return (change){ ev, ev->after, CH_INSERT };
    case SL_EV_DELETE: return (change){ ev, ev->before, CH_DELETE };
    case SL_EV_UPDATE: return (change){ ev, ev->after, CH_UPDATE };
    default:           return (change){ ev, NULL, 0 };
    }
}

static int writable(const sl_table *m, uint32_t c)
{
    return !(m->cols[c].flags & SL_COL_GENERATED);
}

static int same_table(const sl_event *a, const sl_event *b)
{
    if (a->meta != b->meta || a->ncols != b->ncols)
        return 0;
    return strcmp(a->target_schema, b->target_schema) == 0 && strcmp(a->target_table, b->target_table) == 0;
}

/* v's literal, to store (sl_sqlfmt_value) or to find the row by (cmp: sl_sqlfmt_value_cmp). */
static int literal(sl_sbuf *out, const sl_value *v, const sl_event *ev, uint32_t c, int cmp,
                   sl_error *err)
{
    int rc = cmp ? sl_sqlfmt_value_cmp(out, v) : sl_sqlfmt_value(out, v);
    if (rc < 0)
        return sl_error_set(err, rc, "%s.%s column %s: value has no SQL literal (type %u)",
                            ev->schema ? ev->schema : "", ev->table ? ev->table : "",
                            ev->meta->cols[c].name ? ev->meta->cols[c].name : "?", v->type);
    return 0;
}

static int val(sl_sbuf *out, const sl_value *v, const sl_event *ev, uint32_t c, sl_error *err)
{
    return literal(out, v, ev, c, 0, err);
}

static int val_cmp(sl_sbuf *out, const sl_value *v, const sl_event *ev, uint32_t c, sl_error *err)
{
    return literal(out, v, ev, c, 1, err);
}

/* (v1,v2,...) of the writable columns of a row */
static int values_tuple(sl_sbuf *out, const sl_event *ev, const sl_value *row, sl_error *err)
{
    const sl_table *m = ev->meta;
    int first = 1;
    sl_sbuf_adds(out, "(");
    for (uint32_t c = 0; c < ev->ncols; c++) {
        if (!writable(m, c))
            continue;
        if (!first)
            sl_sbuf_adds(out, ",");
        first = 0;
        if (val(out, &row[c], ev, c, err) < 0)
            return err->code;
    }
    sl_sbuf_adds(out, ")");
    return 0;
}

static void insert_head(sl_sbuf *out, const sl_event *ev, int replace)
{
    const sl_table *m = ev->meta;
    sl_sbuf_adds(out, replace ? "REPLACE INTO " : "INSERT INTO ");
    sl_sbuf_add_qname(out, ev->target_schema, ev->target_table);
    sl_sbuf_adds(out, " (");
    int first = 1;
    for (uint32_t c = 0; c < ev->ncols; c++) {
        if (!writable(m, c))
            continue;
        if (!first)
            sl_sbuf_adds(out, ",");
        first = 0;
        sl_sbuf_add_ident(out, m->cols[c].name);
    }
    sl_sbuf_adds(out, ") VALUES ");
}

/*
 * WHERE condition identifying the row image: by primary key, else by every column. Without a
 * key, strings are compared as bytes (CAST(col AS BINARY)): under the column's collation 'a'
 * and 'A', 'e' and 'é', 'b' and 'b ' (PAD SPACE) are equal, so LIMIT 1 could change another row
 * than the source did. A key needs no cast: it holds one row per value of its collation.
 */
static int row_cond(sl_sbuf *out, const sl_event *ev, const sl_value *row, sl_error *err)
{
    const sl_table *m = ev->meta;
    int first = 1;
    if (m->npk > 0) {
        for (uint32_t k = 0; k < m->npk; k++) {
            uint32_t c = m->pk[k];
            if (!first)
                sl_sbuf_adds(out, " AND ");
            first = 0;
            sl_sbuf_add_ident(out, m->cols[c].name);
            sl_sbuf_adds(out, row[c].type == SL_V_NULL ? " <=> " : "=");
            if (val_cmp(out, &row[c], ev, c, err) < 0)
                return err->code;
        }
        return 0;
    }
    for (uint32_t c = 0; c < ev->ncols; c++) {
        if (!writable(m, c))
            continue;
        if (!first)
            sl_sbuf_adds(out, " AND ");
        first = 0;
        int bytes = row[c].type == SL_V_STRING;
        if (bytes)
            sl_sbuf_adds(out, "CAST(");
        sl_sbuf_add_ident(out, m->cols[c].name);
        sl_sbuf_adds(out, bytes ? " AS BINARY) <=> " : " <=> ");
        if (val_cmp(out, &row[c], ev, c, err) < 0)
            return err->code;
    }
    if (first)
        sl_sbuf_adds(out, "1");
    return 0;
}

static int has_key(const sl_event *ev) { return ev->meta->npk > 0; }

static int null_key(const sl_event *ev, const sl_value *img)
{
    const sl_table *m = ev->meta;
    for (uint32_t k = 0; k < m->npk; k++)
        if (img[m->pk[k]].type == SL_V_NULL)
            return 1;
    return 0;
}

static int update_stmt(sl_sbuf *out, const sl_event *ev, sl_error *err)
{
    const sl_table *m = ev->meta;
    sl_sbuf_adds(out, "UPDATE ");
    sl_sbuf_add_qname(out, ev->target_schema, ev->target_table);
    sl_sbuf_adds(out, " SET ");
    int first = 1;
    for (uint32_t c = 0; c < ev->ncols; c++) {
        if (!writable(m, c))
            continue;
        if (!first)
            sl_sbuf_adds(out, ",");
        first = 0;
        sl_sbuf_add_ident(out, m->cols[c].name);
        sl_sbuf_adds(out, "=");
        if (val(out, &ev->after[c], ev, c, err) < 0)
            return err->code;
    }
    sl_sbuf_adds(out, " WHERE ");
    if (row_cond(out, ev, ev->before, err) < 0)
        return err->code;
    if (!has_key(ev))
        sl_sbuf_adds(out, " LIMIT 1");
    return 0;
}

static int delete_one(sl_sbuf *out, const sl_event *ev, sl_error *err)
{
    sl_sbuf_adds(out, "DELETE FROM ");
    sl_sbuf_add_qname(out, ev->target_schema, ev->target_table);
    sl_sbuf_adds(out, " WHERE ");
    if (row_cond(out, ev, ev->before, err) < 0)
        return err->code;
    if (!has_key(ev))
        sl_sbuf_adds(out, " LIMIT 1");
    return 0;
}

/* " ON DUPLICATE KEY UPDATE c=VALUES(c),..." over the written columns outside the key (the key
 * itself when there is no other column: the row is then left as it is). */
static void upsert_tail(sl_sbuf *out, const sl_event *ev)
{
    const sl_table *m = ev->meta;
    sl_sbuf_adds(out, " ON DUPLICATE KEY UPDATE ");
    int first = 1;
    for (uint32_t c = 0; c < ev->ncols; c++) {
        if (!writable(m, c) || (m->cols[c].flags & SL_COL_PK))
            continue;
        if (!first)
            sl_sbuf_adds(out, ",");
        first = 0;
        sl_sbuf_add_ident(out, m->cols[c].name);
        sl_sbuf_adds(out, "=VALUES(");
        sl_sbuf_add_ident(out, m->cols[c].name);
        sl_sbuf_adds(out, ")");
    }
    if (first) {
        const char *k = m->cols[m->pk[0]].name;
        sl_sbuf_add_ident(out, k);
        sl_sbuf_adds(out, "=");
        sl_sbuf_add_ident(out, k);
    }
}

/* DELETE of the keys held by changes i..i+n of in (same table, with a key, no NULL in it), the
 * statement ended once it is max bytes long; *used is the number of keys in it. */
static int delete_keys(sl_sbuf *out, const input *in, size_t i0, size_t n, size_t max, size_t *used,
                       sl_error *err)
{
    size_t start = out->len;
    const sl_event *ev = change_at(in, i0).ev;
    const sl_table *m = ev->meta;
    sl_sbuf_adds(out, "DELETE FROM ");
    sl_sbuf_add_qname(out, ev->target_schema, ev->target_table);
    sl_sbuf_adds(out, " WHERE ");
    if (m->npk == 1) {
        uint32_t c = m->pk[0];
        sl_sbuf_add_ident(out, m->cols[c].name);
        sl_sbuf_adds(out, " IN (");
        size_t i = 0;
        for (; i < n && (i == 0 || out->len - start < max); i++) {
            change ch = change_at(in, i0 + i);
            if (i)
                sl_sbuf_adds(out, ",");
            if (val_cmp(out, &ch.img[c], ch.ev, c, err) < 0)
                return err->code;
        }
        sl_sbuf_adds(out, ")");
        *used = i;
        return 0;
    }
    /* (a,b) IN ((1,2),...) is not always resolved with the index; an OR of key tuples is */
    size_t i = 0;
    for (; i < n && (i == 0 || out->len - start < max); i++) {
        change ch = change_at(in, i0 + i);
        if (i)
            sl_sbuf_adds(out, " OR ");
        sl_sbuf_adds(out, "(");
        if (row_cond(out, ch.ev, ch.img, err) < 0)
            return err->code;
        sl_sbuf_adds(out, ")");
    }
    *used = i;
    return 0;
}

/* How many changes from i on join the statement of change a (>= 1): same kind and table, up
 * to batch rows, and for a DELETE a key with no NULL (a NULL key is deleted on its own, with
 * <=>); an UPDATE is a statement of its own. */
static size_t run_of(const input *in, size_t i, change a, uint32_t batch)
{
    if (a.kind == CH_UPDATE || (a.kind == CH_DELETE && (!has_key(a.ev) || null_key(a.ev, a.img))))
        return 1;
    size_t j = i + 1;
    for (; j < in->n && j - i < batch; j++) {
        change b = change_at(in, j);
        if (b.kind != a.kind || !same_table(a.ev, b.ev) ||
            (b.kind == CH_DELETE && null_key(b.ev, b.img)))
            break;
    }
    return j - i;
}

/* The one statement of up to k changes from i of in, whose first is a (see run_of); *used is
 * how many it took. Rows stop joining a statement once it is max bytes long, and a row that
 * would make it longer than max_row starts the next. A safe-mode UPDATE writes two statements
 * and records the second in stmts[*ns]. */
static int statement(sl_sbuf *out, const input *in, size_t i, size_t k, change a, size_t max,
                     size_t max_row, const sl_dmlsql_opts *o, sl_dmlsql_stmt *stmts, size_t *ns,
                     size_t *used, sl_error *err)
{
    const sl_event *ev = a.ev;
    int rc = 0;
    *used = 1;
    switch (a.kind) {
    case CH_INSERT:
    case CH_UPSERT: {
        size_t start = out->len, r = 0;
        insert_head(out, ev, o->safe_mode);
        for (; r < k && rc == 0 && (r == 0 || out->len - start < max); r++) {
            change c = change_at(in, i + r);
            size_t before = out->len;
            if (r)
                sl_sbuf_adds(out, ",");
            rc = values_tuple(out, c.ev, c.img, err);
            if (rc == 0 && r && out->len - start > max_row) {
                sl_sbuf_truncate(out, before);  /* this row goes in a statement of its own */
                break;
            }
        }
        *used = r;
        if (rc == 0 && a.kind == CH_UPSERT && !o->safe_mode)
            upsert_tail(out, ev);
        return rc;
    }
    case CH_DELETE:
        if (!has_key(ev) || null_key(ev, a.img))
            return delete_one(out, ev, err);
        return delete_keys(out, in, i, k, max, used, err);
    case CH_UPDATE:
        if (!o->safe_mode)
            return update_stmt(out, ev, err);
        /* safe mode: DELETE + REPLACE, two statements; the REPLACE carries the change too (its
         * result tells of values the target changed, not of rows not found) */
        rc = delete_one(out, ev, err);
        if (rc == 0) {
            sl_sbuf_adds(out, ";\n");
            stmts[(*ns)++] = (sl_dmlsql_stmt){ .start = out->len, .rows = 1, .evs = in->evs,
                                               .ops = in->ops, .first = i };
            insert_head(out, ev, 1);
            rc = values_tuple(out, ev, ev->after, err);
        }
        return rc;
    default:
        return 0;   /* not reached: build() rejects other kinds first */
    }
}

/* What st's result will tell of rows not found (sl_dmlsql_not_found), by the kind of its
 * changes. Safe mode writes rows that may be on the target already (a replay): a row it does
 * not find is no sign of drift there. */
static uint8_t check_of(unsigned kind, const sl_dmlsql_opts *o)
{
    if (o->safe_mode)
        return SL_DMLSQL_CHECK_NONE;
    switch (kind) {
    case CH_DELETE: return SL_DMLSQL_CHECK_DELETE;
    case CH_UPDATE: return SL_DMLSQL_CHECK_UPDATE;
    case CH_UPSERT: return SL_DMLSQL_CHECK_UPSERT;
    default:        return SL_DMLSQL_CHECK_NONE;
    }
}

static int build(sl_sbuf *out, const input *in, const sl_dmlsql_opts *o, size_t *consumed,
                 sl_dmlsql_stmt *stmts, size_t max_stmts, size_t *nstmts, sl_error *err)
{
    size_t max_bytes = o->max_bytes ? o->max_bytes : (1u << 20);
    size_t max_row = o->max_row ? o->max_row : SIZE_MAX;
    uint32_t batch = o->batch ? o->batch : 1;
    /* room for one more statement: a safe-mode UPDATE (row events only) takes two */
    size_t need = in->ops ? 1 : 2;
    size_t i = 0, ns = 0;
    while (i < in->n && ns + need <= max_stmts) {
        change a = change_at(in, i);
        const sl_event *ev = a.ev;
        if (in->ops) {
            if (!ev->meta || !ev->target_schema || !ev->target_table || ev->ncols > ev->meta->ncols ||
                ev->meta->npk == 0 || !a.img)
                return sl_error_set(err, SL_EINVAL, "compacted change of %s.%s without a key, metadata or routing",
                                    ev->schema ? ev->schema : "?", ev->table ? ev->table : "?");
            if (a.kind < CH_INSERT || a.kind > CH_DELETE)
                return sl_error_set(err, SL_EINVAL, "unknown compacted change (kind %u)", a.kind);
        } else if (!ev->meta || !ev->target_schema || !ev->target_table || ev->ncols > ev->meta->ncols) {
            return sl_error_set(err, SL_EINVAL, "row event of %s.%s without table metadata or routing",
                                ev->schema ? ev->schema : "?", ev->table ? ev->table : "?");
        } else if (!a.kind) {
            return sl_error_set(err, SL_EINVAL, "not a row event (kind %u)", ev->kind);
        }
        size_t k = run_of(in, i, a, batch), at = out->len, ns0 = ns;
        if (out->len)
            sl_sbuf_adds(out, ";\n");
        stmts[ns++] = (sl_dmlsql_stmt){ .start = out->len, .evs = in->evs, .ops = in->ops, .first = i };
        int rc = statement(out, in, i, k, a, max_bytes, max_row, o, stmts, &ns, &k, err);
        if (rc < 0)
            return rc;
        if (out->oom)
            return sl_error_set(err, SL_ENOMEM, "out of memory building SQL");
        if (out->len - stmts[ns0].start > max_row) {
            sl_sbuf_truncate(out, at);      /* a row too long for the target: the caller's */
            *consumed = i;
            *nstmts = ns0;
            return SL_DMLSQL_BIG;
        }
        stmts[ns0].rows = (uint32_t)k;
        stmts[ns0].check = check_of(a.kind, o);
        i += k;
        if (out->len >= max_bytes)
            break;
    }
    *consumed = i;
    *nstmts = ns;
    return 0;
}

int sl_dmlsql_build(sl_sbuf *out, sl_event *const *evs, size_t n, const sl_dmlsql_opts *o,
                    size_t *consumed, sl_dmlsql_stmt *stmts, size_t max_stmts, size_t *nstmts,
                    sl_error *err)
{
    input in = { .evs = evs, .n = n };
    return build(out, &in, o, consumed, stmts, max_stmts, nstmts, err);
}

int sl_dmlsql_build_ops(sl_sbuf *out, const sl_cmp_op *ops, size_t n, const sl_dmlsql_opts *o,
                        size_t *consumed, sl_dmlsql_stmt *stmts, size_t max_stmts, size_t *nstmts,
                        sl_error *err)
{
    input in = { .ops = ops, .n = n };
    return build(out, &in, o, consumed, stmts, max_stmts, nstmts, err);
}

/* The number after "name: " in a server's info text ("Rows matched: 1  Changed: 0  Warnings: 0",
 * "Records: 3  Duplicates: 1  Warnings: 0"); -1 when it is not there. */
static long long info_num(const char *info, const char *name)
{
    const char *p = info ? strstr(info, name) : NULL;
    if (!p)
        return -1;
    p += strlen(name);
    while (*p == ' ')
        p++;
    if (*p < '0' || *p > '9')
        return -1;
    long long v = 0;
    for (; *p >= '0' && *p <= '9' && v < (1LL << 40); p++)
        v = v * 10 + (*p - '0');
    return v;
}

uint64_t sl_dmlsql_not_found(const sl_dmlsql_stmt *st, uint64_t affected, const char *info)
{
    uint64_t n = st->rows, found;
    switch (st->check) {
    case SL_DMLSQL_CHECK_DELETE:
        found = affected;
        break;
    case SL_DMLSQL_CHECK_UPDATE: {
        long long m = info_num(info, "Rows matched:");
        if (m < 0)
            return 0;
        found = (uint64_t)m;
        break;
    }
    case SL_DMLSQL_CHECK_UPSERT: {
        long long d = info_num(info, "Duplicates:");
        uint64_t inserted;
        if (d >= 0)
            inserted = affected >= 2 * (uint64_t)d ? affected - 2 * (uint64_t)d : 0;
        else if (n == 1)
            inserted = affected == 1;   /* no info for one row: 1 inserted, 2 changed, 0 as it was */
        else
            return 0;
        return inserted < n ? inserted : n;
    }
    default:
        return 0;
    }
    return found < n ? n - found : 0;
}

int sl_dmlsql_stmt_change(const sl_dmlsql_stmt *st, size_t k, const sl_event **ev, const sl_value **img)
{
    if (k >= st->rows || (!st->evs && !st->ops))
        return SL_EINVAL;
    input in = { .evs = st->evs, .ops = st->ops, .n = st->first + st->rows };
    change c = change_at(&in, st->first + k);
    *ev = c.ev;
    *img = c.kind == CH_UPDATE ? c.ev->before : c.img;
    return 0;
}

int sl_dmlsql_key(sl_sbuf *out, const sl_event *ev, const sl_value *img, size_t max)
{
    if (!ev->meta || !has_key(ev) || !img)
        return 0;
    sl_sbuf key;
    sl_sbuf_init(&key);
    sl_error ignore = { 0 };
    int rc = row_cond(&key, ev, img, &ignore);
    if (rc == 0 && key.oom)
        rc = SL_ENOMEM;
    if (rc == 0) {
        sl_sbuf_add(out, key.p, key.len > max ? max : key.len);
        if (key.len > max)
            sl_sbuf_adds(out, "...");
    }
    sl_sbuf_free(&key);
    return rc == SL_ENOMEM ? rc : 0;
}

/* Whether value v of a row too long for a statement goes in the LOAD DATA file (sl_dmlsql_load_row),
 * and the character set it is converted from there (NULL: loaded as it is, binary). */
static int in_file(const sl_value *v)
{
    return v->type == SL_V_STRING || v->type == SL_V_JSON || v->type == SL_V_BINARY ||
           v->type == SL_V_GEOMETRY;
}

static const char *file_charset(const sl_value *v)
{
    if (v->type == SL_V_STRING)
        return sl_sqlfmt_charset_name(v->charset);
    if (v->type == SL_V_JSON)
        return sl_sqlfmt_charset_name(v->charset && v->charset != 63 ? v->charset : 45);
    return NULL;
}

static int file_col(const sl_event *ev, const sl_value *img, uint32_t c)
{
    return writable(ev->meta, c) && in_file(&img[c]);
}

int sl_dmlsql_load_row(sl_sbuf *out, const sl_event *ev, const sl_value *img, int replace,
                       const char *name, sl_error *err)
{
    const sl_table *m = ev->meta;
    sl_sbuf_adds(out, "LOAD DATA LOCAL INFILE ");
    sl_sbuf_add_quoted(out, name, strlen(name));
    sl_sbuf_adds(out, replace ? " REPLACE INTO TABLE " : " IGNORE INTO TABLE ");
    sl_sbuf_add_qname(out, ev->target_schema, ev->target_table);
    sl_sbuf_adds(out, " CHARACTER SET binary FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' "
                      "LINES TERMINATED BY '\\n' (");
    uint32_t nf = 0;
    for (uint32_t c = 0; c < ev->ncols; c++) {
        if (!file_col(ev, img, c))
            continue;
        sl_sbuf_adds(out, nf++ ? "," : "");
        if (file_charset(&img[c]))
            sl_sbuf_addf(out, "@s%u", c);
        else
            sl_sbuf_add_ident(out, m->cols[c].name);
    }
    if (!nf)
        return sl_error_set(err, SL_EINVAL, "%s.%s: the row has no string or binary value to load",
                            ev->schema ? ev->schema : "", ev->table ? ev->table : "");
    sl_sbuf_adds(out, ")");
    int first = 1;
    for (uint32_t c = 0; c < ev->ncols; c++) {
        if (!writable(m, c) || (file_col(ev, img, c) && !file_charset(&img[c])))
            continue;
        sl_sbuf_adds(out, first ? " SET " : ",");
        first = 0;
        sl_sbuf_add_ident(out, m->cols[c].name);
        if (file_col(ev, img, c)) {
            sl_sbuf_addf(out, "=CONVERT(@s%u USING %s)", c, file_charset(&img[c]));
        } else {
            sl_sbuf_adds(out, "=");
            if (val(out, &img[c], ev, c, err) < 0)
                return err->code;
        }
    }
    return out->oom ? sl_error_set(err, SL_ENOMEM, "out of memory building SQL") : 0;
}

int sl_dmlsql_delete_key(sl_sbuf *out, const sl_event *ev, const sl_value *img, sl_error *err)
{
    if (!has_key(ev) || null_key(ev, img))
        return sl_error_set(err, SL_EINVAL, "%s.%s: the row has no key to delete it by",
                            ev->schema ? ev->schema : "", ev->table ? ev->table : "");
    sl_sbuf_adds(out, "DELETE FROM ");
    sl_sbuf_add_qname(out, ev->target_schema, ev->target_table);
    sl_sbuf_adds(out, " WHERE ");
    if (row_cond(out, ev, img, err) < 0)
        return err->code;
    return out->oom ? sl_error_set(err, SL_ENOMEM, "out of memory building SQL") : 0;
}

static uint32_t next_file_col(const sl_dmlsql_row_reader *r, uint32_t c)
{
    while (c < r->ev->ncols && !file_col(r->ev, r->img, c))
        c++;
    return c;
}

void sl_dmlsql_row_open(sl_dmlsql_row_reader *r, const sl_event *ev, const sl_value *img)
{
    memset(r, 0, sizeof *r);
    r->ev = ev;
    r->img = img;
    r->c = next_file_col(r, 0);
    r->done = r->c >= ev->ncols;
}

size_t sl_dmlsql_row_read(sl_dmlsql_row_reader *r, char *buf, size_t cap)
{
    size_t n = 0;
    while (!r->done && cap - n >= 2) {
        const sl_value *v = &r->img[r->c];
        if (r->off < v->len) {
            size_t take = (cap - n) / 2;        /* an escaped byte takes two at most */
            if (take > v->len - r->off)
                take = v->len - r->off;
            n += sl_tsv_escape(buf + n, v->v.s + r->off, take);
            r->off += take;
            continue;
        }
        r->c = next_file_col(r, r->c + 1);
        r->off = 0;
        r->done = r->c >= r->ev->ncols;
        buf[n++] = r->done ? '\n' : '\t';
    }
    return n;
}
