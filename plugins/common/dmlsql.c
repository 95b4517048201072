/*
 * dmlsql.c - row changes to INSERT/UPDATE/DELETE text (dmlsql.h), with sqlfmt.c for values.
 */
#include "dmlsql.h"

#include <string.h>
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

static int val(sl_sbuf *out, const sl_value *v, const sl_event *ev, uint32_t c, sl_error *err)
{
    int rc = sl_sqlfmt_value(out, v);
    if (rc < 0)
        return sl_error_set(err, rc, "%s.%s column %s: value has no SQL literal (type %u)",
                            ev->schema ? ev->schema : "", ev->table ? ev->table : "",
                            ev->meta->cols[c].name ? ev->meta->cols[c].name : "?", v->type);
    return 0;
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

/* WHERE condition identifying the row image: by primary key, else every comparable column. */
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
            if (val(out, &row[c], ev, c, err) < 0)
                return err->code;
        }
        return 0;
    }
    for (uint32_t c = 0; c < ev->ncols; c++) {
        if (!writable(m, c) || !sl_sqlfmt_comparable(&row[c]))
            continue;
        if (!first)
            sl_sbuf_adds(out, " AND ");
        first = 0;
        sl_sbuf_add_ident(out, m->cols[c].name);
        sl_sbuf_adds(out, " <=> ");
        if (val(out, &row[c], ev, c, err) < 0)
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

/* DELETE of the keys held by changes i..i+n of in (same table, with a key, no NULL in it). */
static int delete_keys(sl_sbuf *out, const input *in, size_t i0, size_t n, sl_error *err)
{
    const sl_event *ev = change_at(in, i0).ev;
    const sl_table *m = ev->meta;
    sl_sbuf_adds(out, "DELETE FROM ");
    sl_sbuf_add_qname(out, ev->target_schema, ev->target_table);
    sl_sbuf_adds(out, " WHERE ");
    if (m->npk == 1) {
        uint32_t c = m->pk[0];
        sl_sbuf_add_ident(out, m->cols[c].name);
        sl_sbuf_adds(out, " IN (");
        for (size_t i = 0; i < n; i++) {
            change ch = change_at(in, i0 + i);
            if (i)
                sl_sbuf_adds(out, ",");
            if (val(out, &ch.img[c], ch.ev, c, err) < 0)
                return err->code;
        }
        sl_sbuf_adds(out, ")");
        return 0;
    }
    /* (a,b) IN ((1,2),...) is not always resolved with the index; an OR of key tuples is */
    for (size_t i = 0; i < n; i++) {
        change ch = change_at(in, i0 + i);
        if (i)
            sl_sbuf_adds(out, " OR ");
        sl_sbuf_adds(out, "(");
        if (row_cond(out, ch.ev, ch.img, err) < 0)
            return err->code;
        sl_sbuf_adds(out, ")");
    }
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

/* The one statement of changes i..i+k of in, whose first is a (see run_of); a safe-mode UPDATE
 * writes two and records the start of the second in starts[*ns]. */
static int statement(sl_sbuf *out, const input *in, size_t i, size_t k, change a,
                     const sl_dmlsql_opts *o, size_t *starts, size_t *ns, sl_error *err)
{
    const sl_event *ev = a.ev;
    int rc = 0;
    switch (a.kind) {
    case CH_INSERT:
    case CH_UPSERT:
        insert_head(out, ev, o->safe_mode);
        for (size_t r = 0; r < k && rc == 0; r++) {
            change c = change_at(in, i + r);
            if (r)
                sl_sbuf_adds(out, ",");
            rc = values_tuple(out, c.ev, c.img, err);
        }
        if (rc == 0 && a.kind == CH_UPSERT && !o->safe_mode)
            upsert_tail(out, ev);
        return rc;
    case CH_DELETE:
        if (!has_key(ev) || null_key(ev, a.img))
            return delete_one(out, ev, err);
        return delete_keys(out, in, i, k, err);
    case CH_UPDATE:
        if (!o->safe_mode)
            return update_stmt(out, ev, err);
        /* safe mode: DELETE + REPLACE, two statements */
        rc = delete_one(out, ev, err);
        if (rc == 0) {
            sl_sbuf_adds(out, ";\n");
            starts[(*ns)++] = out->len;
            insert_head(out, ev, 1);
            rc = values_tuple(out, ev, ev->after, err);
        }
        return rc;
    default:
        return 0;   /* not reached: build() rejects other kinds first */
    }
}

static int build(sl_sbuf *out, const input *in, const sl_dmlsql_opts *o, size_t *consumed,
                 size_t *starts, size_t max_starts, size_t *nstarts, sl_error *err)
{
    size_t max_bytes = o->max_bytes ? o->max_bytes : (1u << 20);
    uint32_t batch = o->batch ? o->batch : 1;
    /* room for the starts of one more statement: a safe-mode UPDATE (row events only) takes two */
    size_t need = in->ops ? 1 : 2;
    size_t i = 0, ns = 0;
    while (i < in->n && ns + need <= max_starts) {
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
        size_t k = run_of(in, i, a, batch);
        if (out->len)
            sl_sbuf_adds(out, ";\n");
        starts[ns++] = out->len;
        int rc = statement(out, in, i, k, a, o, starts, &ns, err);
        if (rc < 0)
            return rc;
        if (out->oom)
            return sl_error_set(err, SL_ENOMEM, "out of memory building SQL");
        i += k;
        if (out->len >= max_bytes)
            break;
    }
    *consumed = i;
    *nstarts = ns;
    return 0;
}

int sl_dmlsql_build(sl_sbuf *out, sl_event *const *evs, size_t n, const sl_dmlsql_opts *o,
                    size_t *consumed, size_t *starts, size_t max_starts, size_t *nstarts,
                    sl_error *err)
{
    input in = { .evs = evs, .n = n };
    return build(out, &in, o, consumed, starts, max_starts, nstarts, err);
}

int sl_dmlsql_build_ops(sl_sbuf *out, const sl_cmp_op *ops, size_t n, const sl_dmlsql_opts *o,
                        size_t *consumed, size_t *starts, size_t max_starts, size_t *nstarts,
                        sl_error *err)
{
    input in = { .ops = ops, .n = n };
    return build(out, &in, o, consumed, starts, max_starts, nstarts, err);
}
