/*
 * fuzz_binlog.c - libFuzzer target for the binlog decoder: the input is read as a binlog file
 * (optional magic, then events back to back, each sized by its header) and every event goes
 * through the decoder the reader uses: format description, rotate, query (its status variables
 * walked: corpus/statusvars.binlog holds every kind, cut and unknown ones), GTID, GTID list,
 * table maps and every row of every row event. Checksums are not verified (the fuzzer could
 * not get past them); seeds are real binlog files of the sandbox in corpus/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"

typedef struct arena { char buf[1 << 16]; size_t used; } arena;

static void *aalloc(void *ud, size_t n)
{
    arena *a = ud;
    n = (n + 15) & ~(size_t)15;
    if (n > sizeof a->buf - a->used)
        return NULL;   /* exercises the out-of-memory paths too */
    void *p = a->buf + a->used;
    a->used += n;
    return p;
}

static volatile uint8_t touched;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static arena a;
    sl_bl_format f;
    sl_bl_format_init(&f);
    f.checksum_alg = SL_BL_CHECKSUM_OFF;
    sl_bl_table_map *map = NULL;
    sl_bl_gtid_set set = { 0 };
    size_t off = size >= 4 && !memcmp(data, "\xfe" "bin", 4) ? 4 : 0;
    while (off + SL_BL_HEADER_LEN <= size) {
        sl_bl_header h;
        sl_error err = { 0 };
        if (sl_bl_header_parse(data + off, size - off, &h, &err) < 0)
            break;
        const uint8_t *ev = data + off, *body;
        size_t len = h.event_len, blen;
        off += len;
        if (h.type == SL_BL_FORMAT_DESCRIPTION) {
            sl_bl_parse_fde(ev, len, 0, &f, &err);
            continue;
        }
        if (sl_bl_event_body(&f, ev, len, 0, &body, &blen, &err) < 0)
            continue;
        switch (h.type) {
        case SL_BL_ROTATE: {
            uint64_t pos; const char *name; size_t nl;
            sl_bl_parse_rotate(&f, body, blen, &pos, &name, &nl, &err);
            break;
        }
        case SL_BL_QUERY: {
            sl_bl_query q;
            if (sl_bl_parse_query(&f, body, blen, &q, &err) == 0)   /* status variables walked */
                touched ^= sl_bl_ddl_mode(&f, q.sql_mode) ^ (q.sql_len ? (uint8_t)q.sql[0] : 0);
            break;
        }
        case SL_BL_EXECUTE_LOAD_QUERY: {
            sl_bl_query q;
            sl_bl_parse_execute_load_query(&f, body, blen, &q, &err);
            break;
        }
        case SL_BL_XID: {
            uint64_t x;
            sl_bl_parse_xid(body, blen, &x, &err);
            break;
        }
        case SL_BL_XA_PREPARE: {
            sl_bl_xa_prepare x;
            if (sl_bl_parse_xa_prepare(body, blen, &x, &err) == 0 && x.gtrid_len + x.bqual_len > 0)
                touched ^= x.gtrid[x.gtrid_len + x.bqual_len - 1];   /* the xid's last byte */
            break;
        }
        case SL_BL_GTID: {
            sl_bl_gtid g;
            if (sl_bl_parse_gtid(body, blen, &g, &err) == 0)
                sl_bl_gtid_set_update(&set, g.domain, h.server_id, g.seq);
            break;
        }
        case SL_BL_GTID_LIST: {
            sl_bl_parse_gtid_list(body, blen, &set, &err);
            char txt[256];
            sl_bl_gtid_set_format(&set, txt, sizeof txt);
            break;
        }
        case SL_BL_TABLE_MAP: {
            sl_bl_table_map *m;
            if (sl_bl_parse_table_map(&f, body, blen, &m, &err) == 0) {
                sl_bl_table_map_free(map);
                map = m;
            }
            break;
        }
        default:
            if (sl_bl_is_rows_event(h.type) && map) {
                sl_bl_rows r;
                if (sl_bl_rows_init(&f, h.type, body, blen, &r, &err) < 0)
                    break;
                sl_value *b = calloc(map->ncols, sizeof *b), *af = calloc(map->ncols, sizeof *af);
                for (int i = 0; i < 100000; i++) {
                    a.used = 0;
                    if (sl_bl_rows_next(&r, map, aalloc, &a, b, af, &err) <= 0)
                        break;
                }
                free(b);
                free(af);
            }
        }
    }
    sl_bl_table_map_free(map);
    sl_bl_gtid_set_free(&set);
    return 0;
}
