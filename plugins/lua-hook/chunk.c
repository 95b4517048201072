/*
 * chunk.c - (lua-hook) the full phase: the rows of a chunk file (dumpfmt.h's TSV) are read into
 * typed values, handed to the same on_row scripts as binlog rows (ev.type "insert", ev.snapshot
 * true), and written to a new chunk file. Fields a script did not change keep their exact bytes;
 * dropped rows are left out; rows routed to another table go to one more file and chunk event.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lua_hook.h"
#include "dumpfmt.h"

/* ---- per-row scratch memory --------------------------------------------------------------------- */

typedef struct scratch { void **p; size_t n, cap; } scratch;

static void *scratch_alloc(void *ud, size_t size)
{
    scratch *s = ud;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        void **np = realloc(s->p, cap * sizeof *np);
        if (!np)
            return NULL;
        s->p = np;
        s->cap = cap;
    }
    void *m = malloc(size ? size : 1);
    if (m)
        s->p[s->n++] = m;
    return m;
}

static void scratch_reset(scratch *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->p[i]);
    s->n = 0;
}

/* ---- text <-> values ------------------------------------------------------------------------------ */

static void parse_frac(const char *s, sl_temporal *t)
{
    const char *dot = strchr(s, '.');
    if (!dot)
        return;
    uint32_t us = 0;
    int k = 0;
    for (dot++; k < 6 && *dot >= '0' && *dot <= '9'; dot++, k++)
        us = us * 10 + (uint32_t)(*dot - '0');
    for (; k < 6; k++)
        us *= 10;
    t->usec = us;
}

/* A chunk field (text as SELECT returned it, session time zone UTC) as a typed value. */
static void field_value(const sl_column *c, const char *s, size_t len, sl_value *v)
{
    char buf[64];
    memset(v, 0, sizeof *v);
    if (!s) {
        v->type = SL_V_NULL;
        return;
    }
    size_t n = len < sizeof buf - 1 ? len : sizeof buf - 1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    v->dec = c->scale;
    switch (c->mysql_type) {
    case 1: case 2: case 3: case 8: case 9:
        if (c->flags & SL_COL_UNSIGNED)
            *v = sl_value_uint(strtoull(buf, NULL, 10));
        else
            *v = sl_value_int(strtoll(buf, NULL, 10));
        return;
    case 13:
        *v = sl_value_int(strtoll(buf, NULL, 10));
        v->type = SL_V_YEAR;
        return;
    case 4:
        v->type = SL_V_FLOAT;
        v->v.f = strtof(buf, NULL);
        return;
    case 5:
        *v = sl_value_double(strtod(buf, NULL));
        return;
    case 0: case 246: {
        *v = sl_value_str(SL_V_DECIMAL, s, (uint32_t)len, 0);
        const char *dot = memchr(s, '.', len);
        v->dec = dot ? (uint8_t)(len - (size_t)(dot - s) - 1) : 0;
        return;
    }
    case 10: case 14:
        v->type = SL_V_DATE;
        sscanf(buf, "%d-%hhu-%hhu", &v->v.t.year, &v->v.t.month, &v->v.t.day);
        return;
    case 12: case 18:
        v->type = SL_V_DATETIME;
        v->dec = c->scale;
        sscanf(buf, "%d-%hhu-%hhu %u:%hhu:%hhu", &v->v.t.year, &v->v.t.month, &v->v.t.day,
               &v->v.t.hour, &v->v.t.minute, &v->v.t.second);
        parse_frac(buf, &v->v.t);
        return;
    case 7: case 17: {
        sl_temporal t = {0};
        sscanf(buf, "%d-%hhu-%hhu %u:%hhu:%hhu", &t.year, &t.month, &t.day, &t.hour, &t.minute, &t.second);
        parse_frac(buf, &t);
        v->type = SL_V_TIMESTAMP;
        v->dec = c->scale;
        if (t.year == 0) {
            v->v.ts.sec = 0;
        } else {
            struct tm tm = { .tm_year = t.year - 1900, .tm_mon = t.month - 1, .tm_mday = t.day,
                             .tm_hour = (int)t.hour, .tm_min = t.minute, .tm_sec = t.second };
            v->v.ts.sec = (int64_t)timegm(&tm);
        }
        v->v.ts.usec = t.usec;
        return;
    }
    case 11: case 19: {
        v->type = SL_V_TIME;
        v->dec = c->scale;
        const char *p = buf;
        if (*p == '-') {
            v->v.t.neg = 1;
            p++;
        }
        sscanf(p, "%u:%hhu:%hhu", &v->v.t.hour, &v->v.t.minute, &v->v.t.second);
        parse_frac(p, &v->v.t);
        return;
    }
    case 16: {
        uint64_t u = 0;
        for (size_t i = 0; i < len && i < 8; i++)
            u = (u << 8) | (unsigned char)s[i];
        *v = sl_value_uint(u);
        v->type = SL_V_BIT;
        v->bits = (uint8_t)(c->length ? c->length : len * 8);
        return;
    }
    case 245:
        *v = sl_value_str(SL_V_JSON, s, (uint32_t)len, c->charset ? c->charset : 46);
        return;
    case 247: case 248:
        v->type = c->mysql_type == 247 ? SL_V_ENUM : SL_V_SET;
        v->v.e.s = s;
        v->len = (uint32_t)len;
        v->charset = c->charset;
        return;
    case 255:
        *v = sl_value_str(SL_V_GEOMETRY, s, (uint32_t)len, 63);
        return;
    default:
        if (c->charset == 63 || (c->flags & SL_COL_BINARY))
            *v = sl_value_str(SL_V_BINARY, s, (uint32_t)len, 63);
        else
            *v = sl_value_str(SL_V_STRING, s, (uint32_t)len, c->charset ? c->charset : 45);
        return;
    }
}

static int frac_text(char *p, size_t n, uint32_t usec, int dec)
{
    if (dec <= 0 && usec == 0)
        return 0;
    if (dec <= 0 || dec > 6)
        dec = 6;
    uint32_t div = 1;
    for (int i = dec; i < 6; i++)
        div *= 10;
    return snprintf(p, n, ".%0*u", dec, usec / div);
}

/* A value a script set, as LOAD DATA text (session time zone UTC). */
static void write_value(sl_tsv_writer *tw, const sl_value *v)
{
    char buf[80];
    int k = 0;
    const sl_temporal *t = &v->v.t;
    switch (v->type) {
    case SL_V_NULL: sl_tsv_field(tw, NULL, 0); return;
    case SL_V_INT: case SL_V_YEAR: k = snprintf(buf, sizeof buf, "%" PRId64, v->v.i); break;
    case SL_V_UINT: k = snprintf(buf, sizeof buf, "%" PRIu64, v->v.u); break;
    case SL_V_FLOAT: k = snprintf(buf, sizeof buf, "%.9g", (double)v->v.f); break;
    case SL_V_DOUBLE: k = snprintf(buf, sizeof buf, "%.17g", v->v.d); break;
    case SL_V_DATE: k = snprintf(buf, sizeof buf, "%04d-%02u-%02u", (int)t->year, t->month, t->day); break;
    case SL_V_DATETIME:
        k = snprintf(buf, sizeof buf, "%04d-%02u-%02u %02u:%02u:%02u", (int)t->year, t->month, t->day,
                     t->hour, t->minute, t->second);
        k += frac_text(buf + k, sizeof buf - (size_t)k, t->usec, v->dec);
        break;
    case SL_V_TIME:
        k = snprintf(buf, sizeof buf, "%s%02u:%02u:%02u", t->neg ? "-" : "", t->hour, t->minute, t->second);
        k += frac_text(buf + k, sizeof buf - (size_t)k, t->usec, v->dec);
        break;
    case SL_V_TIMESTAMP: {
        if (v->v.ts.sec == 0 && v->v.ts.usec == 0) {
            k = snprintf(buf, sizeof buf, "0000-00-00 00:00:00");
        } else {
            time_t sec = (time_t)v->v.ts.sec;
            struct tm tm;
            gmtime_r(&sec, &tm);
            k = snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        }
        k += frac_text(buf + k, sizeof buf - (size_t)k, v->v.ts.usec, v->dec);
        break;
    }
    case SL_V_BIT: {
        int nb = (v->bits + 7) / 8;
        if (nb < 1 || nb > 8)
            nb = 8;
        for (int i = 0; i < nb; i++)
            buf[i] = (char)(v->v.u >> (8 * (nb - 1 - i)));
        k = nb;
        break;
    }
    case SL_V_ENUM: case SL_V_SET:
        if (v->v.e.s) {
            sl_tsv_field(tw, v->v.e.s, v->len);
            return;
        }
        k = snprintf(buf, sizeof buf, "%" PRIu64, v->v.e.u);
        break;
    default:
        sl_tsv_field(tw, v->v.s ? v->v.s : "", v->len);
        return;
    }
    sl_tsv_field(tw, buf, (size_t)k);
}

/* ---- outputs ------------------------------------------------------------------------------------- */

typedef struct out {
    const char    *tschema, *ttable;   /* batch memory (or the chunk event's) */
    sl_table      *meta;
    char           tmp[4300], path[4200];
    sl_tsv_writer  w;
    int            open;
} out;

static int same(const char *a, const char *b) { return (!a && !b) || (a && b && strcmp(a, b) == 0); }

/* 1 if two tables name the same columns in the same order (rows of both can share one file). */
static int same_cols(const sl_table *a, const sl_table *b)
{
    if (a == b)
        return 1;
    if (!a || !b || a->ncols != b->ncols)
        return 0;
    for (uint32_t i = 0; i < a->ncols; i++)
        if (!same(a->cols[i].name, b->cols[i].name))
            return 0;
    return 1;
}

/* The id of a part of chunk cid: "<cid>/<schema>.<table>", plus "+<derived columns>" when the
 * part's rows carry columns the chunk does not have (a script that derives columns for some rows
 * only). It depends on nothing but the chunk and where the part goes, so a rerun of the same
 * scripts over the same chunk makes the same ids. */
#define PART_ID_MAX 500   /* loader_checkpoint.chunk_id is VARCHAR(512) */

static void part_id(char *buf, size_t n, const char *cid, const char *ts, const char *tt,
                    const sl_table *meta, uint32_t base)
{
    int k = snprintf(buf, n, "%s/%s.%s", cid ? cid : "", ts ? ts : "", tt ? tt : "");
    if (k < 0 || (size_t)k >= n)
        return;
    size_t head = (size_t)k;
    uint64_t h = 14695981039346656037ull;    /* FNV-1a of the derived names, for long lists */
    for (uint32_t i = base; meta && i < meta->ncols; i++) {
        const char *name = meta->cols[i].name ? meta->cols[i].name : "";
        if ((size_t)k < n)
            k += snprintf(buf + k, n - (size_t)k, "%c%s", i == base ? '+' : ',', name);
        for (const char *p = name; ; p++) {
            h = (h ^ (unsigned char)*p) * 1099511628211ull;
            if (!*p)
                break;
        }
    }
    if ((size_t)k > PART_ID_MAX && head + 20 < n)
        snprintf(buf + head, n - head, "+#%016" PRIx64, h);
}

static int open_out(out *o, const char *base, int k, sl_error *err)
{
    if (k == 0)
        snprintf(o->path, sizeof o->path, "%s.lua", base);
    else
        snprintf(o->path, sizeof o->path, "%s.lua.%d", base, k);
    if (strlen(o->path) + 5 > sizeof o->tmp)
        return sl_error_set(err, SL_ELIMIT, "chunk path too long: %s", base);
    memcpy(o->tmp, o->path, strlen(o->path));
    memcpy(o->tmp + strlen(o->path), ".tmp", 5);
    int rc = sl_tsv_open(&o->w, o->tmp, 1 << 16, err);
    if (rc == 0)
        o->open = 1;
    return rc;
}

int sl__lh_chunk(lh *h, lh_worker *w, sl_batch *b, uint32_t idx, sl_error *err)
{
    const sl_host *host = h->host;
    sl_event *cev = &b->events[idx];
    if (!cev->chunk_path || !cev->meta || !sl__lh_has_row_script(h, w, cev->schema, cev->table))
        return 0;

    sl_table *meta = cev->meta;
    uint32_t ncols = meta->ncols;
    const char *ctschema = cev->target_schema ? cev->target_schema : cev->schema;
    const char *cttable = cev->target_table ? cev->target_table : cev->table;
    FILE *f = fopen(cev->chunk_path, "rb");
    if (!f)
        return sl_error_set(err, SL_EIO, "cannot open chunk %s: %s", cev->chunk_path, strerror(errno));

    enum { MAXOUT = 16 };
    out *outs = calloc(MAXOUT, sizeof *outs);
    const char **fields = calloc(ncols + 1, sizeof *fields);
    size_t *lens = calloc(ncols + 1, sizeof *lens);
    sl_value *vals = calloc(ncols ? ncols : 1, sizeof *vals);
    scratch sc = {0};
    char *line = NULL;
    size_t lcap = 0;
    int nout = 0, rc = 0;
    uint64_t lineno = 0;

    if (!outs || !fields || !lens || !vals) {
        rc = sl_error_set(err, SL_ENOMEM, "out of memory");
        goto done;
    }
    /* output 0: the chunk's own target, always written (it carries the chunk's checkpoint) */
    outs[0].tschema = ctschema;
    outs[0].ttable = cttable;
    outs[0].meta = NULL;       /* claimed by the first row for this target (derived columns) */
    if ((rc = open_out(&outs[0], cev->chunk_path, 0, err)) < 0)
        goto done;
    nout = 1;
    sl__lh_set_scratch(w, scratch_alloc, &sc);

    ssize_t len;
    while ((len = getline(&line, &lcap, f)) >= 0) {
        lineno++;
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        int nf = sl_tsv_split(line, (size_t)len, fields, lens, ncols + 1);
        if (nf < 0 || (uint32_t)nf != ncols) {
            rc = sl_error_set(err, SL_EPARSE, "chunk %s line %" PRIu64 ": %d fields, %u columns expected",
                              cev->chunk_path, lineno, nf, ncols);
            break;
        }
        for (uint32_t i = 0; i < ncols; i++)
            field_value(&meta->cols[i], fields[i], lens[i], &vals[i]);
        sl_event ev = { .kind = SL_EV_INSERT, .flags = SL_EVF_SNAPSHOT, .ncols = ncols,
                        .schema = cev->schema, .table = cev->table,
                        .target_schema = cev->target_schema, .target_table = cev->target_table,
                        .meta = meta, .after = vals, .pos = cev->pos, .commit_ts = cev->commit_ts,
                        .seq = cev->seq };
        rc = sl__lh_apply(h, w, b, &ev, err);
        if (rc == SL_DROP) {
            rc = 0;
            scratch_reset(&sc);
            continue;
        }
        if (rc < 0) {
            sl_error_prefix(err, "chunk %s row %" PRIu64, cev->chunk_id ? cev->chunk_id : "", lineno);
            break;
        }
        const char *ts = ev.target_schema ? ev.target_schema : ev.schema;
        const char *tt = ev.target_table ? ev.target_table : ev.table;
        int k;
        for (k = 0; k < nout; k++)
            if (same(outs[k].tschema, ts) && same(outs[k].ttable, tt) &&
                (same_cols(outs[k].meta, ev.meta) || (k == 0 && !outs[0].meta)))
                break;
        if (k == 0)
            outs[0].meta = ev.meta;
        if (k == nout) {
            if (nout == MAXOUT) {
                rc = sl_error_set(err, SL_ELIMIT, "chunk %s: scripts sent its rows to more than %d tables",
                                  cev->chunk_id ? cev->chunk_id : "", MAXOUT);
                break;
            }
            /* names set by the script live in scratch memory: copy them into the batch */
            outs[k].tschema = ts == ctschema || ts == cev->schema ? ts : host->batch_strndup(b, ts, strlen(ts));
            outs[k].ttable = tt == cttable || tt == cev->table ? tt : host->batch_strndup(b, tt, strlen(tt));
            outs[k].meta = ev.meta;
            if (!outs[k].tschema || !outs[k].ttable) {
                rc = sl_error_set(err, SL_ENOMEM, "out of memory");
                break;
            }
            if ((rc = open_out(&outs[k], cev->chunk_path, k, err)) < 0)
                break;
            nout++;
        }
        sl_tsv_writer *tw = &outs[k].w;
        for (uint32_t i = 0; i < ev.ncols; i++) {
            if (i < ncols && (ev.after == vals || memcmp(&ev.after[i], &vals[i], sizeof vals[i]) == 0))
                sl_tsv_field(tw, fields[i], lens[i]);   /* unchanged: the exact bytes of the dump */
            else
                write_value(tw, &ev.after[i]);
        }
        sl_tsv_end_row(tw);
        scratch_reset(&sc);
        if ((lineno & 1023) == 0 && host->should_stop(h->ctx)) {
            rc = sl_error_set(err, SL_ESTOPPED, "stopped");
            break;
        }
    }
    sl__lh_set_scratch(w, NULL, NULL);
    if (rc == 0 && ferror(f))
        rc = sl_error_set(err, SL_EIO, "reading chunk %s: %s", cev->chunk_path, strerror(errno));
    for (int k = 0; rc == 0 && k < nout; k++) {
        rc = sl_tsv_commit(&outs[k].w, outs[k].tmp, outs[k].path, err);
        outs[k].open = 0;
    }
    if (rc < 0)
        goto done;
    /* the chunk event now names output 0; the others become chunk events of their own */
    uint64_t rows0 = outs[0].w.rows, bytes0 = outs[0].w.bytes;
    for (int k = 1; k < nout; k++) {
        /* The part's id names the chunk and the target table only (not the order in which the
         * script's rows met the tables): a resumed full phase re-creates the parts of a chunk
         * with the same ids, so the loader skips those it recorded and loads the missing ones.
         * Parts are recorded one by one (each in its own transaction with its rows), so this is
         * what makes a crash between two parts of one chunk lose nothing and load nothing twice. */
        char id[2048];
        part_id(id, sizeof id, b->events[idx].chunk_id, outs[k].tschema, outs[k].ttable, outs[k].meta, ncols);
        sl_event copy = b->events[idx];
        sl_event *ne = host->batch_push(b, SL_EV_CHUNK);   /* may move b->events */
        if (!ne) {
            rc = sl_error_set(err, SL_ENOMEM, "out of memory");
            goto done;
        }
        *ne = copy;
        ne->meta = NULL;
        host->batch_set_meta(b, ne, outs[k].meta);
        ne->target_schema = outs[k].tschema;
        ne->target_table = outs[k].ttable;
        ne->chunk_path = host->batch_strndup(b, outs[k].path, strlen(outs[k].path));
        ne->chunk_id = host->batch_strndup(b, id, strlen(id));
        ne->chunk_rows = outs[k].w.rows;
        ne->chunk_bytes = outs[k].w.bytes;
        if (!ne->chunk_path || !ne->chunk_id) {
            rc = sl_error_set(err, SL_ENOMEM, "out of memory");
            goto done;
        }
    }
    cev = &b->events[idx];
    char *p0 = host->batch_strndup(b, outs[0].path, strlen(outs[0].path));
    if (!p0) {
        rc = sl_error_set(err, SL_ENOMEM, "out of memory");
        goto done;
    }
    if (outs[0].meta && outs[0].meta != cev->meta)
        host->batch_set_meta(b, cev, outs[0].meta);
    cev->chunk_path = p0;
    cev->chunk_rows = rows0;
    cev->chunk_bytes = bytes0;
done:
    sl__lh_set_scratch(w, NULL, NULL);
    for (int k = 0; outs && k < nout; k++)
        if (outs[k].open)
            sl_tsv_abort(&outs[k].w, outs[k].tmp);
    scratch_reset(&sc);
    free(sc.p);
    free(line);
    free(outs);
    free(fields);
    free(lens);
    free(vals);
    fclose(f);
    return rc;
}
