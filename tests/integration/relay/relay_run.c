/*
 * relay_run.c - runs the relay writer (runtime/relay.h) of the sandbox source into a directory
 * until SIGTERM or SIGINT, for the relay crash test (test_relay_crash.sh), which kills it with
 * SIGKILL at random moments and starts it again.
 *
 *   sluice-relay-run DIR [START_FILE]
 *
 * The source comes from SLUICE_SOURCE_HOST/PORT/USER/PASSWORD (scripts/sandbox env). Exits 0
 * after a stop, 1 with the relay's error on stderr.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay.h"

static sl_relay *g_relay;

static void on_signal(int sig)
{
    (void)sig;
    if (g_relay)
        sl_relay_stop(g_relay);
}

static const char *env(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && v[0] ? v : def;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s DIR [START_FILE]\n", argv[0]);
        return 2;
    }
    sl_relay_opts o = {
        .dir = argv[1],
        .start_file = argc > 2 ? argv[2] : "",
        .source = {
            .host = env("SLUICE_SOURCE_HOST", "127.0.0.1"),
            .port = atoi(env("SLUICE_SOURCE_PORT", "3306")),
            .user = env("SLUICE_SOURCE_USER", "root"),
            .password = env("SLUICE_SOURCE_PASSWORD", ""),
        },
        .server_id = 4100000001u,
        .sync_ms = 200,
        .heartbeat_ms = 200,
        /* small, so that big transactions reach the file in pieces and a kill tears them */
        .buf_bytes = 64 * 1024,
    };
    sl_error err = { 0 };
    sl_relay *r;
    if (sl_relay_new(&o, &r, &err) < 0) {
        fprintf(stderr, "relay: %s\n", err.msg);
        return 1;
    }
    sl_relay_status st;
    sl_relay_status_get(r, &st);
    fprintf(stderr, "relay: opened at (%s, %llu), %llu bytes of torn tail cut\n", st.relay_file,
            (unsigned long long)st.relay_pos, (unsigned long long)st.truncated_bytes);
    g_relay = r;
    struct sigaction sa = { .sa_handler = on_signal };
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    int rc = sl_relay_run(r, &err);
    g_relay = NULL;
    if (rc != SL_ESTOPPED)
        fprintf(stderr, "relay: %s\n", err.msg);
    sl_relay_free(r);
    return rc == SL_ESTOPPED ? 0 : 1;
}
