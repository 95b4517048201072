/*
 * dmlsql.c - row changes to INSERT/UPDATE/DELETE text (dmlsql.h), with sqlfmt.c for values.
 */
#include "dmlsql.h"

#include <string.h>
#include "sqlfmt.h"

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

/* DELETE of evs[0..n) (same table, with a key). */
static int delete_many(sl_sbuf *out, sl_event *const *evs, size_t n, sl_error *err)
{
    const sl_event *ev = evs[0];
    const sl_table *m = ev->meta;
    sl_sbuf_adds(out, "DELETE FROM ");
    sl_sbuf_add_qname(out, ev->target_schema, ev->target_table);
    sl_sbuf_adds(out, " WHERE ");
    int single = m->npk == 1;
    if (single) {
        sl_sbuf_add_ident(out, m->cols[m->pk[0]].name);
        sl_sbuf_adds(out, " IN (");
    }
    for (size_t i = 0; i < n; i++) {
        if (i)
            sl_sbuf_adds(out, single ? "," : " OR ");
        if (single) {
            uint32_t c = m->pk[0];
            if (val(out, &evs[i]->before[c], evs[i], c, err) < 0)
                return err->code;
        } else {
            sl_sbuf_adds(out, "(");
            if (row_cond(out, evs[i], evs[i]->before, err) < 0)
                return err->code;
            sl_sbuf_adds(out, ")");
        }
    }
    if (single)
        sl_sbuf_adds(out, ")");
    return 0;
}

static int null_key(const sl_event *ev)
{
    const sl_table *m = ev->meta;
    for (uint32_t k = 0; k < m->npk; k++)
        if (ev->before[m->pk[k]].type == SL_V_NULL)
            return 1;
    return 0;
}

int sl_dmlsql_build(sl_sbuf *out, sl_event *const *evs, size_t n, const sl_dmlsql_opts *o,
                    size_t *consumed, size_t *starts, size_t max_starts, size_t *nstarts,
                    sl_error *err)
{
    size_t max_bytes = o->max_bytes ? o->max_bytes : (1u << 20);
    uint32_t batch = o->batch ? o->batch : 1;
    size_t i = 0, ns = 0;
    while (i < n && ns + 2 <= max_starts) {
        const sl_event *ev = evs[i];
        if (!ev->meta || !ev->target_schema || !ev->target_table || ev->ncols > ev->meta->ncols)
            return sl_error_set(err, SL_EINVAL, "row event of %s.%s without table metadata or routing",
                                ev->schema ? ev->schema : "?", ev->table ? ev->table : "?");
        if (out->len)
            sl_sbuf_adds(out, ";\n");
        starts[ns++] = out->len;
        size_t j = i + 1;
        int rc = 0;
        switch (ev->kind) {
        case SL_EV_INSERT:
            insert_head(out, ev, o->safe_mode);
            rc = values_tuple(out, ev, ev->after, err);
            while (rc == 0 && j < n && j - i < batch && evs[j]->kind == SL_EV_INSERT &&
                   same_table(ev, evs[j])) {
                sl_sbuf_adds(out, ",");
                rc = values_tuple(out, evs[j], evs[j]->after, err);
                j++;
            }
            break;
        case SL_EV_DELETE:
            if (!has_key(ev) || null_key(ev)) {
                rc = delete_one(out, ev, err);
                break;
            }
            while (j < n && j - i < batch && evs[j]->kind == SL_EV_DELETE && same_table(ev, evs[j]) &&
                   !null_key(evs[j]))
                j++;
            rc = delete_many(out, evs + i, j - i, err);
            break;
        case SL_EV_UPDATE:
            if (o->safe_mode) {
                rc = delete_one(out, ev, err);
                if (rc == 0) {
                    sl_sbuf_adds(out, ";\n");
                    starts[ns++] = out->len;
                    insert_head(out, ev, 1);
                    rc = values_tuple(out, ev, ev->after, err);
                }
            } else {
                rc = update_stmt(out, ev, err);
            }
            break;
        default:
            return sl_error_set(err, SL_EINVAL, "not a row event (kind %u)", ev->kind);
        }
        if (rc < 0)
            return rc;
        if (out->oom)
            return sl_error_set(err, SL_ENOMEM, "out of memory building SQL");
        i = j;
        if (out->len >= max_bytes)
            break;
    }
    *consumed = i;
    *nstarts = ns;
    return 0;
}

/* ---- net changes of the compactor ---------------------------------------------------------- */

static int same_op_table(const sl_cmp_op *a, const sl_cmp_op *b)
{
    return a->kind == b->kind && same_table(a->ev, b->ev);
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

/* DELETE of the keys held by ops[0..n) (same table, with a key, no NULL in it). */
static int delete_keys(sl_sbuf *out, const sl_cmp_op *ops, size_t n, sl_error *err)
{
    const sl_event *ev = ops[0].ev;
    const sl_table *m = ev->meta;
    sl_sbuf_adds(out, "DELETE FROM ");
    sl_sbuf_add_qname(out, ev->target_schema, ev->target_table);
    sl_sbuf_adds(out, " WHERE ");
    if (m->npk == 1) {
        uint32_t c = m->pk[0];
        sl_sbuf_add_ident(out, m->cols[c].name);
        sl_sbuf_adds(out, " IN (");
        for (size_t i = 0; i < n; i++) {
            if (i)
                sl_sbuf_adds(out, ",");
            if (val(out, &ops[i].img[c], ops[i].ev, c, err) < 0)
                return err->code;
        }
        sl_sbuf_adds(out, ")");
        return 0;
    }
    /* (a,b) IN ((1,2),...) is not always resolved with the index; an OR of key tuples is */
    for (size_t i = 0; i < n; i++) {
        if (i)
            sl_sbuf_adds(out, " OR ");
        sl_sbuf_adds(out, "(");
        if (row_cond(out, ops[i].ev, ops[i].img, err) < 0)
            return err->code;
        sl_sbuf_adds(out, ")");
    }
    return 0;
}

int sl_dmlsql_build_ops(sl_sbuf *out, const sl_cmp_op *ops, size_t n, const sl_dmlsql_opts *o,
                        size_t *consumed, size_t *starts, size_t max_starts, size_t *nstarts,
                        sl_error *err)
{
    size_t max_bytes = o->max_bytes ? o->max_bytes : (1u << 20);
    uint32_t batch = o->batch ? o->batch : 1;
    size_t i = 0, ns = 0;
    while (i < n && ns + 1 <= max_starts) {
        const sl_cmp_op *op = &ops[i];
        const sl_event *ev = op->ev;
        if (!ev->meta || !ev->target_schema || !ev->target_table || ev->ncols > ev->meta->ncols ||
            ev->meta->npk == 0 || !op->img)
            return sl_error_set(err, SL_EINVAL, "compacted change of %s.%s without a key, metadata or routing",
                                ev->schema ? ev->schema : "?", ev->table ? ev->table : "?");
        if (out->len)
            sl_sbuf_adds(out, ";\n");
        starts[ns++] = out->len;
        size_t j = i + 1;
        while (j < n && j - i < batch && same_op_table(op, &ops[j]))
            j++;
        int rc = 0;
        if (op->kind == SL_CMP_DELETE) {
            rc = delete_keys(out, ops + i, j - i, err);
        } else if (op->kind == SL_CMP_INSERT || op->kind == SL_CMP_UPSERT) {
            insert_head(out, ev, o->safe_mode);
            for (size_t k = i; k < j && rc == 0; k++) {
                if (k > i)
                    sl_sbuf_adds(out, ",");
                rc = values_tuple(out, ops[k].ev, ops[k].img, err);
            }
            if (rc == 0 && op->kind == SL_CMP_UPSERT && !o->safe_mode)
                upsert_tail(out, ev);
        } else {
            return sl_error_set(err, SL_EINVAL, "unknown compacted change (kind %u)", op->kind);
        }
        if (rc < 0)
            return rc;
        if (out->oom)
            return sl_error_set(err, SL_ENOMEM, "out of memory building SQL");
        i = j;
        if (out->len >= max_bytes)
            break;
    }
    *consumed = i;
    *nstarts = ns;
    return 0;
}
