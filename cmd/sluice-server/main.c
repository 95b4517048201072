/*
 * main.c - sluice-server: flags and a DM-master style config file (`key = value`), then the API
 * server (api/api.h) until SIGINT or SIGTERM, which stop it gracefully.
 */
#include <ctype.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "sluice/file.h"
#include "sluice/log.h"

/* The string settings: config key, and flag "--<key>". */
enum { K_ADDR, K_DATA_DIR, K_PLUGIN_DIR, K_LOG_LEVEL, K_AUTH_TOKEN_FILE, K_SSL_CA, K_SSL_CERT,
       K_SSL_KEY, K_CERT_ALLOWED_CN, K_ROLE, K_NAME, K_ADVERTISE_ADDR, K_ETCD, K_ETCD_ROOT, K_LEASE_TTL, K_NSTR };
static const char *const KEYS[K_NSTR] = { "addr", "data-dir", "plugin-dir", "log-level",
                                          "auth-token-file", "ssl-ca", "ssl-cert", "ssl-key",
                                          "cert-allowed-cn", "role", "name", "advertise-addr",
                                          "etcd", "etcd-root", "lease-ttl" };

typedef struct config {
    char *s[K_NSTR];
    int   openapi;
    long  http_threads;   /* -1 = not given */
} config;

static void config_free(config *c)
{
    for (int i = 0; i < K_NSTR; i++)
        free(c->s[i]);
}

/* Flag over file. */
static const char *pick(const config *flags, const config *file, int k)
{
    return flags->s[k] ? flags->s[k] : file->s[k];
}

static void usage(FILE *f)
{
    fputs("usage: sluice-server [options]\n"
          "\n"
          "Serves the DM OpenAPI (/api/v1: sources, tasks, cluster) and runs the tasks' pipelines.\n"
          "\n"
          "  --addr HOST:PORT     listen address (default 127.0.0.1:8261)\n"
          "  --data-dir DIR       metadata store and secret key (default ./sluice-data, created)\n"
          "  --plugin-dir DIR     where sluice-*.so plugins are (default: next to the binary)\n"
          "  --config FILE        DM-master style config: `key = value` lines with keys addr,\n"
          "                       data-dir, plugin-dir, openapi (true|false), log-level,\n"
          "                       http-threads, auth-token-file, ssl-ca, ssl-cert, ssl-key,\n"
          "                       cert-allowed-cn, role, name, advertise-addr, etcd;\n"
          "                       flags given on the command line win over the file\n"
          "  --log-level LEVEL    error, warn, info (default), debug, trace\n"
          "  --http-threads N     HTTP worker threads (default: two per CPU, at least 4; some\n"
          "                       requests wait on a source server or a disk commit)\n"
          "  --auth-token-file F  require `Authorization: Bearer <token>` (the file's content)\n"
          "                       on every request; off by default\n"
          "  --ssl-cert FILE      serve HTTPS with this PEM certificate (and --ssl-key)\n"
          "  --ssl-key FILE       the PEM private key of --ssl-cert\n"
          "  --ssl-ca FILE        with HTTPS: require a client certificate signed by this CA\n"
          "  --cert-allowed-cn CN with --ssl-ca: only client certificates with one of these\n"
          "                       common names (comma-separated)\n"
          "\n"
          "Cluster (issue 13; without --etcd the server is one process with its metadata in\n"
          "DATA-DIR/meta.db, as always):\n"
          "  --etcd URL[,URL...]  keep the metadata in this etcd cluster and join it as a member\n"
          "  --role ROLE          master, worker or all (default all with --etcd)\n"
          "  --name NAME          this member's name, unique per role (required with --etcd)\n"
          "  --advertise-addr H:P the address other members reach this one's API at\n"
          "                       (default: --addr)\n"
          "  --etcd-root PATH     this cluster's key prefix in etcd (default /sluice), so\n"
          "                       clusters can share one etcd\n"
          "  --lease-ttl SECONDS  the member's etcd lease (default 10, 2..600): how long a dead\n"
          "                       member stays alive for the cluster\n"
          "  --help               this text\n"
          "\n"
          "A value follows its flag (--data-dir DIR) or is joined to it (--data-dir=DIR); a\n"
          "separate value may not start with \"--\" (use the joined form for such a name).\n"
          "\n"
          "The API documents itself at http://HOST:PORT/api/v1/docs.\n", f);
}

static void set(char **dst, const char *v)
{
    free(*dst);
    *dst = strdup(v);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = 0;
    return s;
}

static int parse_threads(const char *v, long *out)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n < 1 || n > 256)
        return -1;
    *out = n;
    return 0;
}

/* Parse a DM-master style file. Returns 0 or -1 after printing "FILE:LINE: why". */
static int load_config(const char *path, config *c)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    int no = 0;
    if (!f) {
        fprintf(stderr, "sluice-server: cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof line, f)) {
        no++;
        char *s = trim(line);
        if (!*s || *s == '#')
            continue;
        if (*s == '[') {
            fprintf(stderr, "sluice-server: %s:%d: sections are not supported (%s)\n", path, no, s);
            goto bad;
        }
        char *eq = strchr(s, '=');
        if (!eq) {
            fprintf(stderr, "sluice-server: %s:%d: expected `key = value`\n", path, no);
            goto bad;
        }
        *eq = 0;
        char *key = trim(s), *val = trim(eq + 1);
        if (*val == '"' || *val == '\'') {
            char q = *val, *end = strrchr(val + 1, q);
            if (!end) {
                fprintf(stderr, "sluice-server: %s:%d: unterminated string\n", path, no);
                goto bad;
            }
            char *rest = trim(end + 1);
            if (*rest && *rest != '#') {
                fprintf(stderr, "sluice-server: %s:%d: unexpected text after the string\n", path, no);
                goto bad;
            }
            *end = 0;
            val++;
        } else {
            char *hash = strchr(val, '#');
            if (hash) {
                *hash = 0;
                val = trim(val);
            }
        }
        if (!*val && strcmp(key, "openapi") && strcmp(key, "http-threads")) {
            fprintf(stderr, "sluice-server: %s:%d: %s needs a value\n", path, no, key);
            goto bad;
        }
        int k = 0;
        while (k < K_NSTR && strcmp(key, KEYS[k]))
            k++;
        if (!strcmp(key, "master-addr"))
            k = K_ADDR;
        if (k < K_NSTR) {
            set(&c->s[k], val);
        } else if (!strcmp(key, "http-threads")) {
            if (parse_threads(val, &c->http_threads) != 0) {
                fprintf(stderr, "sluice-server: %s:%d: http-threads must be an integer in 1..256\n",
                        path, no);
                goto bad;
            }
        } else if (!strcmp(key, "openapi")) {
            if (!strcmp(val, "true"))
                c->openapi = 1;
            else if (!strcmp(val, "false"))
                c->openapi = 0;
            else {
                fprintf(stderr, "sluice-server: %s:%d: openapi must be true or false\n", path, no);
                goto bad;
            }
        } else {
            fprintf(stderr, "sluice-server: %s:%d: unknown key '%s' (known: addr, data-dir, "
                    "plugin-dir, openapi, log-level, http-threads, auth-token-file, ssl-ca, "
                    "ssl-cert, ssl-key, cert-allowed-cn, role, name, advertise-addr, etcd, "
                    "etcd-root, lease-ttl)\n",
                    path, no, key);
            goto bad;
        }
    }
    fclose(f);
    return 0;
bad:
    fclose(f);
    return -1;
}

/* The API token: the file's first line without surrounding blanks, at least 16 characters. */
static int read_token(const char *path, char **out)
{
    char *b = NULL;
    size_t len;
    sl_error err = { 0 };
    if (sl_file_read(path, 4096, &b, &len, &err) != 0) {
        fprintf(stderr, "sluice-server: auth-token-file %s: %s\n", path, err.msg);
        return -1;
    }
    char *nl = strpbrk(b, "\r\n");
    if (nl)
        *nl = 0;
    char *t = trim(b);
    if (strlen(t) < 16) {
        fprintf(stderr, "sluice-server: auth-token-file %s: the token must be at least 16 "
                "characters on the first line\n", path);
        free(b);
        return -1;
    }
    memmove(b, t, strlen(t) + 1);
    *out = b;
    return 0;
}

/* The signal thread: sigwait for SIGINT/SIGTERM, then raise the cancel flag that startup
 * checks. Main joins it (serving) or cancels it (startup failed). */
typedef struct stopper {
    pthread_t  thread;
    sigset_t  *set;
    atomic_int sig;
} stopper;

static void *stopper_main(void *arg)
{
    stopper *st = arg;
    int sig = 0;
    if (sigwait(st->set, &sig) == 0)
        atomic_store(&st->sig, sig);
    return NULL;
}

/* Startup ended without serving: the thread may still wait in sigwait; wake it by sending it one
 * of its own signals if it has not received one, and join it. */
static void stopper_cancel(stopper *st)
{
    if (!atomic_load(&st->sig))
        pthread_kill(st->thread, SIGTERM);
    pthread_join(st->thread, NULL);
}

/* glibc gives threads that allocate arenas of their own, up to 8 per CPU; with the dump's,
 * loader's and sink's worker threads that is tens of MiB of mostly empty arenas (a full copy of
 * 2,000 tables peaked at 102 MiB RSS, 58 MiB with 2 arenas: bench/full.sh). Memory is to be
 * bounded by configuration, not by thread count: one arena per CPU, at least 2. MALLOC_ARENA_MAX
 * in the environment wins. */
static void bound_arenas(void)
{
    if (getenv("MALLOC_ARENA_MAX"))
        return;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    mallopt(M_ARENA_MAX, n < 2 ? 2 : (int)n);
}

int main(int argc, char **argv)
{
    bound_arenas();
    config file = { .openapi = 1, .http_threads = -1 }, flags = { .openapi = -1, .http_threads = -1 };
    const char *config_path = NULL;
    int rc = 1;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        char name[64];
        const char *eq = strchr(a, '=');
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            rc = 0;
            goto out;
        }
        if (strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "sluice-server: unexpected argument '%s' (see --help)\n", a);
            rc = 2;
            goto out;
        }
        if (eq)
            snprintf(name, sizeof name, "%.*s", (int)(eq - a), a);
        else
            snprintf(name, sizeof name, "%s", a);
        int k = 0;
        while (k < K_NSTR && strcmp(name + 2, KEYS[k]))
            k++;
        if (k == K_NSTR && strcmp(name, "--http-threads") && strcmp(name, "--config")) {
            fprintf(stderr, "sluice-server: unknown option %s (see --help)\n", name);
            rc = 2;
            goto out;
        }
        if (eq) {
            v = eq + 1;
        } else {
            /* `--data-dir --plugin-dir X` (an empty shell variable) must not make a directory
             * named "--plugin-dir": a value after a space never starts with "--"; a value that
             * really does can be given as --data-dir=--odd-name. */
            if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0)
                v = argv[++i];
        }
        if (!v || !*v) {
            fprintf(stderr, "sluice-server: %s needs a value (see --help)\n", name);
            rc = 2;
            goto out;
        }
        if (k < K_NSTR)
            set(&flags.s[k], v);
        else if (!strcmp(name, "--http-threads")) {
            if (parse_threads(v, &flags.http_threads) != 0) {
                fprintf(stderr, "sluice-server: --http-threads must be an integer in 1..256\n");
                rc = 2;
                goto out;
            }
        } else {
            config_path = v;   /* --config */
        }
    }
    if (config_path && load_config(config_path, &file) != 0)
        goto out;
    const char *level = pick(&flags, &file, K_LOG_LEVEL);
    if (level) {
        int l = sl_log_level_parse(level);
        if (l < 0) {
            fprintf(stderr, "sluice-server: bad log level '%s' (error, warn, info, debug, trace)\n", level);
            goto out;
        }
        sl_log_set_level(l);
    }

    /* Cluster settings are checked before anything starts: a wrong one writes nothing. */
    const char *role = pick(&flags, &file, K_ROLE), *etcd = pick(&flags, &file, K_ETCD);
    const char *mname = pick(&flags, &file, K_NAME);
    if (role && strcmp(role, "master") && strcmp(role, "worker") && strcmp(role, "all")) {
        fprintf(stderr, "sluice-server: unknown role '%s' (master, worker or all)\n", role);
        rc = 2;
        goto out;
    }
    if ((role || mname || pick(&flags, &file, K_ADVERTISE_ADDR) || pick(&flags, &file, K_ETCD_ROOT) ||
         pick(&flags, &file, K_LEASE_TTL)) && !etcd) {
        fprintf(stderr, "sluice-server: --role, --name, --advertise-addr, --etcd-root and --lease-ttl make a "
                "cluster member, "
                "which needs --etcd URL[,URL...]\n");
        rc = 2;
        goto out;
    }
    long lease_ttl = 0;
    const char *ttl = pick(&flags, &file, K_LEASE_TTL);
    if (ttl) {
        char *end;
        lease_ttl = strtol(ttl, &end, 10);
        if (*end || lease_ttl < 2 || lease_ttl > 600) {
            fprintf(stderr, "sluice-server: lease-ttl must be an integer number of seconds in "
                    "2..600\n");
            rc = 2;
            goto out;
        }
    }
    if (etcd && !mname) {
        fprintf(stderr, "sluice-server: a cluster member needs --name (unique per role)\n");
        rc = 2;
        goto out;
    }

    /* Block the stop signals in every thread (so no worker thread is interrupted); one signal
     * thread waits for them with sigwait from the start, so a stop during a long startup
     * (restoring many tasks) cancels it instead of waiting for it to finish. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    stopper st = { .set = &set };
    if (pthread_create(&st.thread, NULL, stopper_main, &st) != 0) {
        fprintf(stderr, "sluice-server: cannot start the signal thread\n");
        goto out;
    }

    /* The token is read here, once: the file stays the operator's (mode 0600 is advised). */
    char *token = NULL;
    const char *tfile = pick(&flags, &file, K_AUTH_TOKEN_FILE);
    if (tfile && read_token(tfile, &token) != 0) {
        stopper_cancel(&st);
        goto out;
    }
    sl_api_opts o = {
        .addr = pick(&flags, &file, K_ADDR),
        .data_dir = pick(&flags, &file, K_DATA_DIR),
        .plugin_dir = pick(&flags, &file, K_PLUGIN_DIR),
        .auth_token = token,
        .ssl_ca = pick(&flags, &file, K_SSL_CA),
        .ssl_cert = pick(&flags, &file, K_SSL_CERT),
        .ssl_key = pick(&flags, &file, K_SSL_KEY),
        .cert_allowed_cn = pick(&flags, &file, K_CERT_ALLOWED_CN),
        .openapi = file.openapi,
        .http_threads = (unsigned)(flags.http_threads > 0 ? flags.http_threads :
                                   file.http_threads > 0 ? file.http_threads : 0),
        .cancel = &st.sig,
        .etcd = etcd,
        .role = etcd ? (role ? role : "all") : NULL,
        .name = mname,
        .advertise_addr = pick(&flags, &file, K_ADVERTISE_ADDR),
        .etcd_root = pick(&flags, &file, K_ETCD_ROOT),
        .lease_ttl = lease_ttl,
    };
    sl_api *api = NULL;
    sl_error err = { 0 };
    int arc = sl_api_new(&o, &api, &err);
    if (token) {
        memset(token, 0, strlen(token));
        free(token);
    }
    /* started, failed or cancelled: wait for the signal only if it serves */
    if (arc == 0)
        pthread_join(st.thread, NULL);
    else
        stopper_cancel(&st);
    int sig = atomic_load(&st.sig);
    if (arc != 0 && !(arc == SL_ESTOPPED && sig)) {
        fprintf(stderr, "sluice-server: %s\n", err.msg);
        goto out;
    }
    sl_log(SL_LOG_INFO, "server", "%s received%s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM",
           arc ? " during startup" : "");
    sl_api_free(api);
    sl_log(SL_LOG_INFO, "server", "stopped");
    rc = 0;
out:
    config_free(&file);
    config_free(&flags);
    return rc;
}
