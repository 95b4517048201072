/*
 * test_dumpfmt.c - unit tests of the chunk file format and dump directory helpers shared by
 * mysql-dump and loader (plugins/common/dumpfmt.c): every byte value round-trips, NULL differs
 * from '' and from the text "\N", files appear only complete, snapshot files read back.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "dumpfmt.h"

static char tmpdir[256];

static int setup(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sluice-dumpfmt-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    return 0;
}

static int teardown(void **state)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_escape_all_bytes(void **state)
{
    char in[256], out[512];
    for (int i = 0; i < 256; i++)
        in[i] = (char)i;
    size_t n = sl_tsv_escape(out, in, 256);
    assert_int_equal(n, 256 + 4);            /* NUL, TAB, LF, backslash */
    assert_null(memchr(out, '\t', n));
    assert_null(memchr(out, '\n', n));
    assert_null(memchr(out, '\0', n));
    const char *f[4];
    size_t l[4];
    assert_int_equal(sl_tsv_split(out, n, f, l, 4), 1);
    assert_int_equal(l[0], 256);
    assert_memory_equal(f[0], in, 256);
}

/* LOAD DATA's reading of what the dump never writes: a backslash before a raw TAB makes the TAB
 * data, \N only alone is NULL, other escapes map as the manual says, a backslash that ends the
 * line is an error, and more fields than asked for are one. */
static void test_split_as_load_data(void **state)
{
    (void)state;
    const char *f[4];
    size_t l[4];
    char a[] = "a\\\tb\tc\\N\t\\N\t\\r\\b\\Z\\q";
    assert_int_equal(sl_tsv_split(a, strlen(a), f, l, 4), 4);
    assert_int_equal(l[0], 3);
    assert_memory_equal(f[0], "a\tb", 3);
    assert_int_equal(l[1], 2);
    assert_memory_equal(f[1], "cN", 2);
    assert_null(f[2]);
    assert_int_equal(l[3], 4);
    assert_memory_equal(f[3], "\r\b\032q", 4);
    char b[] = "x\ty\\";
    assert_int_equal(sl_tsv_split(b, strlen(b), f, l, 4), SL_EPARSE);
    char c[] = "1\t2\t3";
    assert_int_equal(sl_tsv_split(c, strlen(c), f, l, 2), SL_EPARSE);
    char d[] = "\t";
    assert_int_equal(sl_tsv_split(d, strlen(d), f, l, 4), 2);
    assert_int_equal(l[0] + l[1], 0);
    assert_non_null(f[0]);
}

/* The word-at-a-time escape against its byte-at-a-time definition: random fields of every length
 * up to 70 bytes at every alignment, some with no special byte, some dense with them. */
static void test_escape_matches_definition(void **state)
{
    (void)state;
    static const char special[4] = {'\0', '\t', '\n', '\\'};
    static const char letter[4] = {'0', 't', 'n', '\\'};
    char buf[80], out[160], want[160];
    unsigned seed = 12345;
    for (int round = 0; round < 20000; round++) {
        seed = seed * 1103515245u + 12345u;
        size_t off = seed >> 28 & 7, len = (seed >> 8) % 71;
        int density = (int)(seed >> 20 & 3);        /* 0: none, else about 1 in 2^(6 - 2d) */
        char *in = buf + off;
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            in[i] = (char)(32 + (seed >> 16) % 90);
            if (density && ((seed >> 8) & ((1u << (6 - 2 * density)) - 1)) == 0)
                in[i] = special[seed >> 29 & 3];
        }
        size_t w = 0;
        for (size_t i = 0; i < len; i++) {
            const char *sp = memchr(special, in[i], 4);
            if (sp) {
                want[w++] = '\\';
                want[w++] = letter[sp - special];
            } else {
                want[w++] = in[i];
            }
        }
        size_t n = sl_tsv_escape(out, in, len);
        assert_int_equal(n, w);
        assert_memory_equal(out, want, w);
    }
}

static void test_write_read_rows(void **state)
{
    char tmp[300], fin[300];
    snprintf(tmp, sizeof tmp, "%s/c.tsv.tmp", tmpdir);
    snprintf(fin, sizeof fin, "%s/c.tsv", tmpdir);
    sl_tsv_writer w;
    sl_error e = {0};
    assert_int_equal(sl_tsv_open(&w, tmp, 4096, &e), 0);
    /* row 1: NULL, '', the text \N, a field larger than the buffer with every byte value */
    size_t big = 10000;
    char *bytes = malloc(big);
    for (size_t i = 0; i < big; i++)
        bytes[i] = (char)(i * 7);
    sl_tsv_field(&w, NULL, 0);
    sl_tsv_field(&w, "", 0);
    sl_tsv_field(&w, "\\N", 2);
    sl_tsv_field(&w, bytes, big);
    sl_tsv_end_row(&w);
    sl_tsv_field(&w, "x", 1);
    sl_tsv_end_row(&w);
    assert_int_equal(access(fin, F_OK), -1);
    assert_int_equal(sl_tsv_commit(&w, tmp, fin, &e), 0);
    assert_int_equal(access(tmp, F_OK), -1);
    assert_int_equal(w.rows, 2);

    char *text;
    size_t len;
    assert_int_equal(sl_read_file(fin, &text, &len, &e), 0);
    assert_int_equal(len, w.bytes);
    char *nl = memchr(text, '\n', len);
    assert_non_null(nl);
    const char *f[8];
    size_t l[8];
    assert_int_equal(sl_tsv_split(text, (size_t)(nl - text), f, l, 8), 4);
    assert_null(f[0]);
    assert_non_null(f[1]);
    assert_int_equal(l[1], 0);
    assert_int_equal(l[2], 2);
    assert_memory_equal(f[2], "\\N", 2);
    assert_int_equal(l[3], big);
    assert_memory_equal(f[3], bytes, big);
    assert_string_equal(nl + 1, "x\n");
    free(text);
    free(bytes);
}

static void test_dump_dir(void **state)
{
    char buf[256];
    assert_int_equal(sl_dump_dir(buf, sizeof buf, "/data/", "task/1", ".src"), 0);
    assert_string_equal(buf, "/data/task_1/_src");
    assert_int_equal(sl_dump_dir(buf, 10, "/data/", "task", "src"), SL_ELIMIT);
}

static void test_snapshot_roundtrip(void **state)
{
    sl_snapshot_info s = {0}, r;
    sl_error e = {0};
    sl_snapshot_new_id(&s);
    assert_true(strlen(s.id) > 8);
    snprintf(s.file, sizeof s.file, "mysql-bin.000003");
    s.pos = 1234567;
    s.gtid = strdup("0-1-42");
    assert_int_equal(sl_snapshot_write(tmpdir, &s, &e), 0);
    assert_int_equal(sl_snapshot_read(tmpdir, &r, &e), 0);
    assert_string_equal(r.id, s.id);
    assert_string_equal(r.file, "mysql-bin.000003");
    assert_int_equal(r.pos, 1234567);
    assert_string_equal(r.gtid, "0-1-42");
    sl_snapshot_clear(&s);
    sl_snapshot_clear(&r);
    char other[300];
    snprintf(other, sizeof other, "%s/none", tmpdir);
    assert_int_equal(sl_snapshot_read(other, &r, &e), SL_ENOENT);
}

static void test_manifest_total(void **state)
{
    char path[512];
    snprintf(path, sizeof path, "%s/manifest.json", tmpdir);
    uint64_t n = 7;
    unlink(path);
    assert_int_equal(sl_dump_manifest_total(tmpdir, &n), SL_ENOENT);
    const char *partial = "{\"complete\":false,\"tables\":[{\"chunks\":[{\"bytes\":10}]}]}";
    assert_int_equal(sl_write_file_atomic(path, partial, strlen(partial), NULL), 0);
    assert_int_equal(sl_dump_manifest_total(tmpdir, &n), SL_ENOENT);
    assert_int_equal(n, 7);
    /* as the dump writes it: told incomplete by its head alone (the rest is not JSON here) */
    const char *head = "{\"version\":1,\"complete\":false,\"snapshot\":{\"id\": not parsed";
    assert_int_equal(sl_write_file_atomic(path, head, strlen(head), NULL), 0);
    assert_int_equal(sl_dump_manifest_total(tmpdir, &n), SL_ENOENT);
    assert_int_equal(n, 7);
    const char *full = "{\"complete\":true,\"tables\":[{\"chunks\":[{\"bytes\":10},{\"bytes\":5000000000}]},"
                       "{\"chunks\":[]},{\"chunks\":[{\"bytes\":3}]}]}";
    assert_int_equal(sl_write_file_atomic(path, full, strlen(full), NULL), 0);
    assert_int_equal(sl_dump_manifest_total(tmpdir, &n), 0);
    assert_int_equal(n, 5000000013ULL);
    assert_int_equal(sl_write_file_atomic(path, "{", 1, NULL), 0);
    assert_int_equal(sl_dump_manifest_total(tmpdir, &n), SL_EPARSE);
    unlink(path);
}

static void test_ckpt_names_quoted(void **state)
{
    sl_sbuf b;
    sl_sbuf_init(&b);
    sl_ckpt_table_name(&b, "dm`meta", "my-task", 0);
    assert_string_equal(b.p, "`dm``meta`.`my-task_loader_checkpoint`");
    sl_sbuf_free(&b);
}

/* ---- streams (full_migrate_conf.stream) ---- */

/* The rows every stream test writes: a big field crosses the buffer and the pipe's size, so the
 * writer waits on a full pipe and writes a frame through. */
static size_t write_rows(sl_tsv_writer *w, size_t nrows)
{
    static char big[3 << 20];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)(i * 13);
    for (size_t r = 0; r < nrows; r++) {
        char num[32];
        int n = snprintf(num, sizeof num, "%zu", r);
        sl_tsv_field(w, num, (size_t)n);
        sl_tsv_field(w, r == 3 ? big : "a\tb", r == 3 ? sizeof big : 4);
        sl_tsv_field(w, NULL, 0);
        sl_tsv_end_row(w);
    }
    return nrows;
}

typedef struct wjob { sl_tsv_writer w; size_t rows; int abort_after; int rc; atomic_int stop; } wjob;

static int wstop(void *arg) { return atomic_load(&((wjob *)arg)->stop); }

static void *writer_thread(void *arg)
{
    wjob *j = arg;
    sl_error e = {0};
    write_rows(&j->w, j->rows);
    if (j->abort_after) {
        sl_tsv_stream_abort(&j->w);
        j->rc = 0;
    } else {
        j->rc = sl_tsv_stream_end(&j->w, &e);
    }
    return NULL;
}

/* What a file writer makes of the same rows: the stream must carry exactly these bytes. */
static char *file_bytes(size_t nrows, size_t *len)
{
    char tmp[300], fin[300];
    snprintf(tmp, sizeof tmp, "%s/s.tsv.tmp", tmpdir);
    snprintf(fin, sizeof fin, "%s/s.tsv", tmpdir);
    sl_tsv_writer w;
    sl_error e = {0};
    assert_int_equal(sl_tsv_open(&w, tmp, 1 << 20, &e), 0);
    write_rows(&w, nrows);
    assert_int_equal(sl_tsv_commit(&w, tmp, fin, &e), 0);
    char *text;
    assert_int_equal(sl_read_file(fin, &text, len, &e), 0);
    return text;
}

static void test_stream_roundtrip(void **state)
{
    (void)state;
    size_t want_len;
    char *want = file_bytes(50, &want_len);
    wjob j = { .rows = 50 };
    char path[4300];
    sl_error e = {0};
    assert_int_equal(sl_tsv_open_stream(&j.w, 1 << 20, tmpdir, "t00000.000001.tsv", path,
                                        sizeof path, wstop, &j, &e), 0);
    assert_true(sl_stream_path(path));
    assert_non_null(strstr(path, "/t00000.000001.tsv" SL_STREAM_TAG));
    pthread_t th;
    pthread_create(&th, NULL, writer_thread, &j);
    sl_stream_reader r;
    assert_int_equal(sl_stream_open(&r, path), 1);
    char *got = malloc(want_len + 1);
    size_t have = 0;
    long n;
    while ((n = sl_stream_read(&r, got + have, 65536 < want_len + 1 - have ? 65536 : want_len + 1 - have)) > 0)
        have += (size_t)n;
    assert_int_equal(n, 0);
    assert_int_equal(r.rows, 50);
    assert_int_equal(have, want_len);
    assert_memory_equal(got, want, want_len);
    assert_int_equal(sl_stream_read(&r, got, 10), 0);    /* stays at its end */
    sl_stream_close(&r);
    pthread_join(th, NULL);
    assert_int_equal(j.rc, 0);
    free(got);
    free(want);
    /* a plain file path is no stream */
    assert_false(sl_stream_path("/tmp/x/t00000.000001.tsv"));
    assert_int_equal(sl_stream_open(&r, "/tmp/x/t00000.000001.tsv"), 0);
}

/* A writer that gives up in the middle of a chunk: the reader gets an error, never a clean end,
 * after every byte that was written (so a short chunk can never load as a whole one). */
static void test_stream_cut(void **state)
{
    (void)state;
    wjob j = { .rows = 10, .abort_after = 1 };
    char path[4300];
    sl_error e = {0};
    assert_int_equal(sl_tsv_open_stream(&j.w, 4096, tmpdir, "c", path, sizeof path, wstop, &j, &e), 0);
    sl_stream_reader r;
    assert_int_equal(sl_stream_open(&r, path), 1);
    pthread_t th;
    pthread_create(&th, NULL, writer_thread, &j);
    char buf[65536];
    long n;
    size_t have = 0;
    while ((n = sl_stream_read(&r, buf, sizeof buf)) > 0)
        have += (size_t)n;
    assert_int_equal(n, -1);
    assert_int_equal(r.err, EPIPE);
    assert_true(have > 0);
    sl_stream_close(&r);
    pthread_join(th, NULL);
}

/* The pipe is gone (its dump worker failed and closed it): opening the path fails, even when the
 * descriptor number now belongs to another file. */
static void test_stream_gone(void **state)
{
    (void)state;
    sl_tsv_writer w;
    char path[4300], f[300];
    sl_error e = {0};
    assert_int_equal(sl_tsv_open_stream(&w, 4096, tmpdir, "c", path, sizeof path, NULL, NULL, &e), 0);
    int rfd = w.rfd;
    sl_tsv_stream_abort(&w);
    snprintf(f, sizeof f, "%s/other", tmpdir);
    int fd = open(f, O_RDWR | O_CREAT, 0600);
    int fd2 = fd == rfd ? -1 : dup2(fd, rfd);     /* the number now names a regular file */
    sl_stream_reader r;
    assert_int_equal(sl_stream_open(&r, path), -1);
    assert_int_equal(r.err, ESTALE);
    close(fd);
    if (fd2 >= 0)
        close(fd2);
    assert_int_equal(sl_stream_open(&r, "/x/c#stream:nonsense"), -1);
}

/* Nobody reads: a writer waiting on the full pipe gives up when asked to stop. */
static void test_stream_stop(void **state)
{
    (void)state;
    wjob j = { .rows = 10 };
    char path[4300];
    sl_error e = {0};
    assert_int_equal(sl_tsv_open_stream(&j.w, 1 << 20, tmpdir, "c", path, sizeof path, wstop, &j, &e), 0);
    pthread_t th;
    pthread_create(&th, NULL, writer_thread, &j);
    usleep(300000);
    atomic_store(&j.stop, 1);
    pthread_join(th, NULL);
    assert_int_equal(j.rc, SL_ESTOPPED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape_all_bytes),
        cmocka_unit_test(test_escape_matches_definition),
        cmocka_unit_test(test_split_as_load_data),
        cmocka_unit_test(test_write_read_rows),
        cmocka_unit_test(test_dump_dir),
        cmocka_unit_test(test_snapshot_roundtrip),
        cmocka_unit_test(test_ckpt_names_quoted),
        cmocka_unit_test(test_manifest_total),
        cmocka_unit_test(test_stream_roundtrip),
        cmocka_unit_test(test_stream_cut),
        cmocka_unit_test(test_stream_gone),
        cmocka_unit_test(test_stream_stop),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
