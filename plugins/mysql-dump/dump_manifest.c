/*
 * dump_manifest.c - <dump dir>/manifest.json: the snapshot, the schemas and tables (CREATE
 * statements, dumped columns, key) and every chunk file with its rows and bytes. Written when the
 * plan is made (complete=false) and when every chunk is on disk (complete=true); a complete
 * manifest lets a restarted task, or task_mode "load", re-emit the dump without reading the source.
 */
#include "dump.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Write one JSON value compactly; 0 or -1 (no memory). */
static int put_json(sl_tsv_writer *w, json_t *v)
{
    char *text = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(v);
    if (!text)
        return -1;
    sl_tsv_raw(w, text, strlen(text));
    free(text);
    return 0;
}

/* The manifest is written table by table through a buffered file writer, never built whole in
 * memory: as one JSON tree it was the dump's largest allocation (12 MiB of objects for 2,000
 * tables, at the moment the dump finishes). */
int sl__dump_manifest_write(dump *d, int complete)
{
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/manifest.json", d->dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    sl_tsv_writer w;
    sl_error e = {0};
    int rc = sl_tsv_open(&w, tmp, 64 << 10, &e);
    if (rc)
        return d->host->fail(d->ctx, rc, "%s", e.msg);
    int bad = 0;
    const char *head = complete ? "{\"version\":1,\"complete\":true,\"snapshot\":"
                                : "{\"version\":1,\"complete\":false,\"snapshot\":";
    sl_tsv_raw(&w, head, strlen(head));
    bad |= put_json(&w, json_pack("{s:s, s:s, s:I, s:s}", "id", d->snap.id, "file", d->snap.file,
                                  "pos", (json_int_t)d->snap.pos, "gtid",
                                  d->snap.gtid ? d->snap.gtid : ""));
    sl_tsv_raw(&w, ",\"schemas\":[", strlen(",\"schemas\":["));
    for (size_t i = 0; i < d->nschemas; i++) {
        if (i)
            sl_tsv_raw(&w, ",", 1);
        bad |= put_json(&w, json_pack("{s:s, s:s}", "name", d->schemas[i], "create", d->schema_sql[i]));
    }
    sl_tsv_raw(&w, "],\"tables\":[", strlen("],\"tables\":["));
    for (size_t i = 0; i < d->ntables && !bad; i++) {
        dtable *t = &d->tables[i];
        json_t *cols = json_array(), *pk = json_array(), *chunks = json_array();
        for (size_t c = 0; c < t->ncols; c++)
            json_array_append_new(cols, json_pack("{s:s, s:s, s:s, s:i, s:i, s:i}", "name", t->cols[c].name,
                                                  "data_type", t->cols[c].data_type, "type_text",
                                                  t->cols[c].type_text, "mysql_type",
                                                  (int)t->cols[c].mysql_type, "flags", (int)t->cols[c].flags,
                                                  "collation", (int)t->cols[c].collation));
        for (size_t k = 0; k < t->npk; k++)
            json_array_append_new(pk, json_integer(t->pk[k]));
        for (size_t c = t->first_chunk; c < t->first_chunk + t->nchunks; c++)
            json_array_append_new(chunks, json_pack("{s:s, s:s, s:I, s:I}", "id", d->chunks[c].id,
                                                    "file", d->chunks[c].file,
                                                    "rows", (json_int_t)d->chunks[c].rows,
                                                    "bytes", (json_int_t)d->chunks[c].bytes));
        if (i)
            sl_tsv_raw(&w, ",", 1);
        bad |= put_json(&w, json_pack("{s:s, s:s, s:s, s:b, s:I, s:o, s:o, s:o}",
                                      "schema", t->schema, "table", t->name, "create",
                                      t->create_sql, "nodata", t->nodata, "est_rows",
                                      (json_int_t)t->est_rows, "cols", cols, "pk", pk,
                                      "chunks", chunks));
    }
    sl_tsv_raw(&w, "]}", 2);
    if (bad) {
        sl_tsv_abort(&w, tmp);
        return d->host->fail(d->ctx, SL_ENOMEM, "no memory for the manifest");
    }
    rc = sl_tsv_commit(&w, tmp, path, &e);
    if (rc)
        return d->host->fail(d->ctx, rc, "%s", e.msg);
    return 0;
}

static char *jdup(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return strdup(s ? s : "");
}

int sl__dump_manifest_read(dump *d)
{
    char path[4200], *text;
    snprintf(path, sizeof path, "%s/manifest.json", d->dir);
    sl_error e = {0};
    int rc = sl_read_file(path, &text, NULL, &e);
    if (rc == SL_ENOENT)
        return SL_ENOENT;
    if (rc)
        return d->host->fail(d->ctx, rc, "%s", e.msg);
    json_error_t je;
    json_t *root = json_loads(text, 0, &je);
    free(text);
    if (!root)
        return d->host->fail(d->ctx, SL_EPARSE, "%s: %s (line %d)", path, je.text, je.line);
    if (!json_is_true(json_object_get(root, "complete"))) {
        json_decref(root);
        return SL_ENOENT;
    }
    json_t *snap = json_object_get(root, "snapshot");
    snprintf(d->snap.id, sizeof d->snap.id, "%s", json_string_value(json_object_get(snap, "id")) ?: "");
    snprintf(d->snap.file, sizeof d->snap.file, "%s",
             json_string_value(json_object_get(snap, "file")) ?: "");
    d->snap.pos = (uint64_t)json_integer_value(json_object_get(snap, "pos"));
    free(d->snap.gtid);
    d->snap.gtid = jdup(snap, "gtid");
    d->have_snap = 1;

    json_t *schemas = json_object_get(root, "schemas"), *tables = json_object_get(root, "tables");
    size_t ns = json_array_size(schemas), nt = json_array_size(tables), nc = 0;
    for (size_t i = 0; i < nt; i++)
        nc += json_array_size(json_object_get(json_array_get(tables, i), "chunks"));
    d->schemas = calloc(ns + 1, sizeof *d->schemas);
    d->schema_sql = calloc(ns + 1, sizeof *d->schema_sql);
    d->tables = calloc(nt + 1, sizeof *d->tables);
    d->chunks = calloc(nc + 1, sizeof *d->chunks);
    if (!d->schemas || !d->schema_sql || !d->tables || !d->chunks) {
        json_decref(root);
        return d->host->fail(d->ctx, SL_ENOMEM, "no memory");
    }
    for (size_t i = 0; i < ns; i++) {
        json_t *s = json_array_get(schemas, i);
        d->schemas[i] = jdup(s, "name");
        d->schema_sql[i] = jdup(s, "create");
        d->nschemas++;
    }
    for (size_t i = 0; i < nt; i++) {
        json_t *o = json_array_get(tables, i);
        dtable *t = &d->tables[d->ntables++];
        t->schema = jdup(o, "schema");
        t->name = jdup(o, "table");
        t->create_sql = jdup(o, "create");
        t->nodata = json_is_true(json_object_get(o, "nodata"));
        t->est_rows = (uint64_t)json_integer_value(json_object_get(o, "est_rows"));
        t->chunk_col = -1;
        json_t *cols = json_object_get(o, "cols"), *pk = json_object_get(o, "pk");
        t->cols = calloc(json_array_size(cols) + 1, sizeof *t->cols);
        if (!t->cols) {
            json_decref(root);
            return d->host->fail(d->ctx, SL_ENOMEM, "no memory");
        }
        for (size_t c = 0; c < json_array_size(cols); c++) {
            json_t *co = json_array_get(cols, c);
            dcol *col = &t->cols[t->ncols++];
            col->name = jdup(co, "name");
            col->data_type = jdup(co, "data_type");
            col->type_text = jdup(co, "type_text");
            col->mysql_type = (uint8_t)json_integer_value(json_object_get(co, "mysql_type"));
            col->flags = (uint8_t)json_integer_value(json_object_get(co, "flags"));
            json_t *coll = json_object_get(co, "collation");
            if (json_is_integer(coll)) {
                col->collation = (uint16_t)json_integer_value(coll);
            } else if (sl__dump_binary_type(col->data_type)) {
                /* a manifest written before collations were recorded: binary types are known
                 * by name, a character column's collation is not (0, as it was then) */
                col->collation = 63;
                col->flags |= SL_COL_BINARY;
            }
        }
        for (size_t k = 0; k < json_array_size(pk) && k < 16; k++)
            t->pk[t->npk++] = (uint32_t)json_integer_value(json_array_get(pk, k));
        json_t *chunks = json_object_get(o, "chunks");
        t->first_chunk = d->nchunks;
        for (size_t c = 0; c < json_array_size(chunks); c++) {
            json_t *co = json_array_get(chunks, c);
            dchunk *ch = &d->chunks[d->nchunks++];
            ch->table = i;
            ch->n = c;
            snprintf(ch->id, sizeof ch->id, "%s", json_string_value(json_object_get(co, "id")) ?: "");
            snprintf(ch->file, sizeof ch->file, "%s",
                     json_string_value(json_object_get(co, "file")) ?: "");
            ch->rows = (uint64_t)json_integer_value(json_object_get(co, "rows"));
            ch->bytes = (uint64_t)json_integer_value(json_object_get(co, "bytes"));
        }
        t->nchunks = d->nchunks - t->first_chunk;
        t->chunks_done = t->nchunks;
        d->est_total_rows += t->est_rows;
    }
    d->total_tables = d->ntables;
    json_decref(root);
    return 0;
}
