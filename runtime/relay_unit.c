/*
 * relay_unit.c - a source's relay run by the server (relay.h's sl_relay_unit): the relay writer
 * on a thread of the scheduler, started when the source's relay is enabled and stopped when it
 * is disabled or the server stops, and the source status's relay_status built from it.
 */
#include "relay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sl_relay_unit {
    sl_relay   *relay;
    sl_thread  *th;
    char       *dir;
};

/* The relay retries a lost source by itself; what ends it early (the source no longer has the
 * binlog it needs, a gap, the disk) stays in its status's error_msg. */
static void unit_main(void *arg)
{
    sl_relay_unit *u = arg;
    sl_error err = { 0 };
    sl_relay_run(u->relay, &err);
}

int sl_relay_unit_start(sl_scheduler *s, const sl_relay_opts *o, sl_relay_unit **out,
                        sl_error *err)
{
    *out = NULL;
    sl_relay_unit *u = calloc(1, sizeof *u);
    if (!u || !(u->dir = strdup(o->dir))) {
        free(u);
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    }
    int rc = sl_relay_new(o, &u->relay, err);
    if (rc == 0 && (rc = sl_thread_spawn(s, "relay", unit_main, u, &u->th)) != 0)
        sl_error_set(err, rc, "relay: no thread for the relay of %s", o->dir);
    if (rc != 0) {
        sl_relay_free(u->relay);
        free(u->dir);
        free(u);
        return rc;
    }
    *out = u;
    return 0;
}

void sl_relay_unit_free(sl_relay_unit *u)
{
    if (!u)
        return;
    sl_relay_stop(u->relay);
    sl_thread_join(u->th);
    sl_relay_free(u->relay);
    free(u->dir);
    free(u);
}

json_t *sl_relay_unit_status(sl_relay_unit *u, const char *relay_dir_shown)
{
    sl_relay_status st;
    sl_relay_status_get(u->relay, &st);
    char master[320], relay[320];
    snprintf(master, sizeof master, "(%s, %llu)", st.master_file,
             (unsigned long long)st.master_pos);
    snprintf(relay, sizeof relay, "(%s, %llu)", st.relay_file, (unsigned long long)st.relay_pos);
    int caught = st.master_file[0] && !strcmp(st.master_file, st.relay_file) &&
                 st.relay_pos >= st.master_pos;
    const char *msg = st.error_msg[0] ? st.error_msg : "";
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:s, s:I, s:I}",
                          "master_binlog", master, "master_binlog_gtid", st.master_gtid,
                          "relay_dir", relay_dir_shown ? relay_dir_shown : u->dir,
                          "relay_binlog", relay, "relay_binlog_gtid", st.relay_gtid,
                          "relay_catch_up_master", caught,
                          /* a unit exists while the relay is enabled: it runs until it fails */
                          "stage", msg[0] ? "Paused" : "Running",
                          "bytes_written", (json_int_t)st.bytes_written,
                          "truncated_bytes", (json_int_t)st.truncated_bytes);
    if (o && msg[0])
        json_object_set_new(o, "error_msg", json_string(msg));
    return o;
}

int sl_relay_unit_purge(sl_relay_unit *u, const char *before, const char *keep_from,
                        sl_error *err)
{
    return sl_relay_purge(u->relay, before, keep_from, err);
}
