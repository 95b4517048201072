/*
 * bench_decode.c - the binlog-reader's decode rate alone: reads binlog files from disk and runs
 * every event through the same decoder the plugin uses (CRC32 verified, table maps cached by
 * shape, every row of every row event decoded into typed values), with no network and no sink.
 * Prints events/s, rows/s and MB/s.
 *
 *   sluice-bench-binlog-decode [-n ROUNDS] FILE...
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "decode.h"

typedef struct arena { char *buf; size_t used, cap; } arena;

static void *aalloc(void *ud, size_t n)
{
    arena *a = ud;
    n = (n + 15) & ~(size_t)15;
    if (a->used + n > a->cap) {
        a->cap = (a->used + n) * 2;
        a->buf = realloc(a->buf, a->cap);   /* only between events: see below */
    }
    void *p = a->buf + a->used;
    a->used += n;
    return p;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    int rounds = 1, first = 1;
    if (argc > 2 && !strcmp(argv[1], "-n")) {
        rounds = atoi(argv[2]);
        first = 3;
    }
    if (first >= argc) {
        fprintf(stderr, "usage: %s [-n ROUNDS] BINLOG_FILE...\n", argv[0]);
        return 2;
    }
    uint64_t events = 0, rows = 0, bytes = 0;
    arena a = { malloc(1 << 20), 0, 1 << 20 };
    double t0 = now();
    for (int round = 0; round < rounds; round++) {
        for (int fi = first; fi < argc; fi++) {
            FILE *fp = fopen(argv[fi], "rb");
            if (!fp) {
                perror(argv[fi]);
                return 1;
            }
            fseek(fp, 0, SEEK_END);
            long size = ftell(fp);
            fseek(fp, 0, SEEK_SET);
            uint8_t *data = malloc((size_t)size);
            if (fread(data, 1, (size_t)size, fp) != (size_t)size) {
                perror(argv[fi]);
                return 1;
            }
            fclose(fp);
            sl_bl_format f;
            sl_bl_format_init(&f);
            sl_bl_table_map *maps[64] = { 0 };   /* by table id % 64, reused when unchanged */
            size_t off = 4;
            uint32_t ncap = 0;
            sl_value *b = NULL, *af = NULL;
            while (off + SL_BL_HEADER_LEN <= (size_t)size) {
                sl_bl_header h;
                sl_error err = { 0 };
                if (sl_bl_header_parse(data + off, (size_t)size - off, &h, &err) < 0) {
                    fprintf(stderr, "%s: %s\n", argv[fi], err.msg);
                    return 1;
                }
                const uint8_t *ev = data + off, *body;
                size_t blen;
                off += h.event_len;
                events++;
                bytes += h.event_len;
                if (h.type == SL_BL_FORMAT_DESCRIPTION) {
                    if (sl_bl_parse_fde(ev, h.event_len, 1, &f, &err) < 0) {
                        fprintf(stderr, "%s\n", err.msg);
                        return 1;
                    }
                    continue;
                }
                if (sl_bl_event_body(&f, ev, h.event_len, 1, &body, &blen, &err) < 0) {
                    fprintf(stderr, "%s\n", err.msg);
                    return 1;
                }
                if (h.type == SL_BL_TABLE_MAP) {
                    sl_bl_table_map *m;
                    if (sl_bl_parse_table_map(&f, body, blen, &m, &err) < 0) {
                        fprintf(stderr, "%s\n", err.msg);
                        return 1;
                    }
                    sl_bl_table_map **slot = &maps[m->table_id % 64];
                    if (*slot && (*slot)->table_id == m->table_id && (*slot)->sig_len == m->sig_len &&
                        !memcmp((*slot)->sig, m->sig, m->sig_len)) {
                        sl_bl_table_map_free(m);
                    } else {
                        sl_bl_table_map_free(*slot);
                        *slot = m;
                    }
                } else if (sl_bl_is_rows_event(h.type)) {
                    uint64_t id;
                    sl_bl_table_id(&f, h.type, body, blen, &id);
                    sl_bl_table_map *m = maps[id % 64];
                    if (!m || m->table_id != id)
                        continue;   /* file starts mid-transaction */
                    if (m->ncols > ncap) {
                        ncap = m->ncols;
                        b = realloc(b, ncap * sizeof *b);
                        af = realloc(af, ncap * sizeof *af);
                    }
                    sl_bl_rows r;
                    if (sl_bl_rows_init(&f, h.type, body, blen, &r, &err) < 0) {
                        fprintf(stderr, "%s\n", err.msg);
                        return 1;
                    }
                    a.used = 0;
                    /* pre-size the arena so no pointer moves while a row event decodes */
                    if (a.cap < blen * 2 + 4096) {
                        a.cap = blen * 2 + 4096;
                        a.buf = realloc(a.buf, a.cap);
                    }
                    int rc;
                    while ((rc = sl_bl_rows_next(&r, m, aalloc, &a, b, af, &err)) == 1)
                        rows++;
                    if (rc < 0) {
                        fprintf(stderr, "%s\n", err.msg);
                        return 1;
                    }
                }
            }
            for (int i = 0; i < 64; i++)
                sl_bl_table_map_free(maps[i]);
            free(b);
            free(af);
            free(data);
        }
    }
    double t = now() - t0;
    printf("decode: %llu events, %llu rows, %.1f MB in %.3f s: %.0f events/s, %.0f rows/s, "
           "%.1f MB/s\n", (unsigned long long)events, (unsigned long long)rows, bytes / 1e6, t,
           events / t, rows / t, bytes / 1e6 / t);
    free(a.buf);
    return 0;
}
