/*
 * client.c - the client commands of `sluice`: `sluice source ...` and `sluice task ...` talk to a
 * sluice-server (or DM-master) over its REST API with a tiny HTTP/1.1 client on plain sockets,
 * print the answers, and draw progress bars for `task status --watch`.
 */
#include "cli.h"
#include "sluice/file.h"

#include <errno.h>
#include <jansson.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- a tiny HTTP/1.1 client ---------------------------------------------------------------- */

typedef struct http_resp {
    int    status;
    char  *body;
    size_t len;
} http_resp;

typedef struct server_url {
    char host[300];
    char port[16];
    char prefix[256];   /* path before /api/v1, usually "" */
} server_url;

static int parse_url(const char *url, server_url *u)
{
    const char *p = url;
    memset(u, 0, sizeof *u);
    if (!strncmp(p, "http://", 7))
        p += 7;
    else if (strstr(p, "://")) {
        fprintf(stderr, "sluice: only http:// servers are supported, not %s\n", url);
        return -1;
    }
    const char *slash = strchr(p, '/');
    size_t hl = slash ? (size_t)(slash - p) : strlen(p);
    char hostport[300];
    if (hl == 0 || hl >= sizeof hostport) {
        fprintf(stderr, "sluice: bad server address %s\n", url);
        return -1;
    }
    memcpy(hostport, p, hl);
    hostport[hl] = 0;
    char *colon = strrchr(hostport, ':');
    if (colon && !strchr(colon, ']')) {
        *colon = 0;
        snprintf(u->port, sizeof u->port, "%s", colon + 1);
    } else {
        strcpy(u->port, "80");
    }
    char *h = hostport;
    if (*h == '[') {
        h++;
        h[strcspn(h, "]")] = 0;
    }
    snprintf(u->host, sizeof u->host, "%s", h);
    if (slash) {
        snprintf(u->prefix, sizeof u->prefix, "%s", slash);
        size_t n = strlen(u->prefix);
        while (n && u->prefix[n - 1] == '/')
            u->prefix[--n] = 0;
    }
    return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Decode a chunked body in place; returns the new length or -1. */
static long dechunk(char *b, size_t len)
{
    size_t in = 0, out = 0;
    for (;;) {
        char *end;
        if (in >= len)
            return -1;
        unsigned long n = strtoul(b + in, &end, 16);
        char *crlf = strstr(end, "\r\n");
        if (!crlf)
            return -1;
        in = (size_t)(crlf - b) + 2;
        if (n == 0)
            return (long)out;
        if (in + n > len)
            return -1;
        memmove(b + out, b + in, n);
        out += n;
        in += n + 2;
    }
}

/* One request; Connection: close, the whole answer read into memory. */
static int http_do(const server_url *u, const char *method, const char *path, const char *body,
                   http_resp *r)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai, *x;
    int fd = -1, g = getaddrinfo(u->host, u->port, &hints, &ai);
    memset(r, 0, sizeof *r);
    if (g != 0) {
        fprintf(stderr, "sluice: %s: %s\n", u->host, gai_strerror(g));
        return -1;
    }
    for (x = ai; x; x = x->ai_next) {
        fd = socket(x->ai_family, x->ai_socktype | SOCK_CLOEXEC, x->ai_protocol);
        if (fd >= 0 && connect(fd, x->ai_addr, x->ai_addrlen) == 0)
            break;
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd < 0) {
        fprintf(stderr, "sluice: cannot connect to http://%s:%s: %s (is sluice-server running? "
                "see --server)\n", u->host, u->port, strerror(errno));
        return -1;
    }
    size_t blen = body ? strlen(body) : 0;
    /* SLUICE_TOKEN: the server's auth-token-file content (sent, never printed) */
    const char *token = getenv("SLUICE_TOKEN");
    char head[2048];
    int hn = snprintf(head, sizeof head,
                      "%s %s%s HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: sluice\r\nAccept: application/json\r\n"
                      "Connection: close\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                      "%s%.1024s%s\r\n",
                      method, u->prefix, path, u->host, u->port, blen,
                      token && *token ? "Authorization: Bearer " : "", token && *token ? token : "",
                      token && *token ? "\r\n" : "");
    if (hn < 0 || (size_t)hn >= sizeof head || write_all(fd, head, (size_t)hn) ||
        (blen && write_all(fd, body, blen))) {
        fprintf(stderr, "sluice: cannot send the request: %s\n", strerror(errno));
        close(fd);
        return -1;
    }
    size_t cap = 16384, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf)
            break;
        if (len + 4096 + 1 > cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
        }
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    if (!buf) {
        fprintf(stderr, "sluice: out of memory\n");
        return -1;
    }
    buf[len] = 0;
    char *hend = strstr(buf, "\r\n\r\n");
    if (strncmp(buf, "HTTP/1.", 7) || !hend) {
        fprintf(stderr, "sluice: the server's answer is not HTTP\n");
        free(buf);
        return -1;
    }
    r->status = atoi(buf + 9);
    *hend = 0;
    int chunked = strcasestr(buf, "\r\ntransfer-encoding: chunked") != NULL;
    size_t off = (size_t)(hend + 4 - buf);
    memmove(buf, buf + off, len - off + 1);
    len -= off;
    if (chunked) {
        long n = dechunk(buf, len);
        if (n < 0) {
            fprintf(stderr, "sluice: bad chunked answer\n");
            free(buf);
            return -1;
        }
        len = (size_t)n;
        buf[len] = 0;
    }
    r->body = buf;
    r->len = len;
    return 0;
}

/* ---- commands ------------------------------------------------------------------------------- */

static void print_body(const http_resp *r)
{
    json_t *v = json_loadb(r->body, r->len, 0, NULL);
    if (v) {
        char *s = json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY);
        if (s)
            puts(s);
        free(s);
        json_decref(v);
    } else if (r->len) {
        fwrite(r->body, 1, r->len, stdout);
        if (r->body[r->len - 1] != '\n')
            putchar('\n');
    }
}

/* Exit code for an answer: 0 for 2xx, 1 otherwise (the server's error_msg on stderr). */
static int finish(const char *what, http_resp *r)
{
    int ok = r->status >= 200 && r->status < 300;
    if (ok) {
        if (r->len)
            print_body(r);
        else
            printf("%s: ok\n", what);
    } else {
        json_t *v = json_loadb(r->body, r->len, 0, NULL);
        const char *msg = json_string_value(json_object_get(v, "error_msg"));
        fprintf(stderr, "sluice: %s failed (HTTP %d): %s\n", what, r->status,
                msg ? msg : (r->len ? r->body : "no details"));
        json_decref(v);
    }
    free(r->body);
    return ok ? 0 : 1;
}

/* A task or source file (or stdin for "-"), at most 64 MiB. Caller frees. */
static char *read_file(const char *path)
{
    char *b = NULL;
    size_t len;
    sl_error err = {0};
    if (sl_file_read(path, 64u << 20, &b, &len, &err) != 0)
        fprintf(stderr, "sluice: cannot read %s: %s\n", path, err.msg);
    return b;
}

/* Path segment escaping for names. */
static void esc(char *out, size_t cap, const char *s)
{
    size_t o = 0;
    for (; *s && o + 4 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            strchr("-_.~", c))
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, cap - o, "%%%02X", c);
    }
    out[o] = 0;
}

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig) { (void)sig; interrupted = 1; }

static double progress_of(json_t *st, const char **label)
{
    const char *p = json_string_value(json_object_get(st, "progress"));
    double tb = json_number_value(json_object_get(st, "total_bytes"));
    double fb = json_number_value(json_object_get(st, "finished_bytes"));
    *label = p;
    if (p)
        return atof(p) / 100.0;
    return tb > 0 ? fb / tb : 0;
}

static void bar(double frac, char *out, size_t width)
{
    if (frac < 0)
        frac = 0;
    if (frac > 1)
        frac = 1;
    size_t full = (size_t)(frac * (double)width + 0.5);
    out[0] = '[';
    for (size_t i = 0; i < width; i++)
        out[1 + i] = i < full ? '#' : '.';
    out[width + 1] = ']';
    out[width + 2] = 0;
}

/* Draw one frame of a task status; returns 1 while something still runs. */
static int draw_status(json_t *v, int tty, int lines_before)
{
    json_t *data = json_object_get(v, "data"), *st;
    size_t i;
    int running = 0;
    if (tty && lines_before)
        printf("\033[%dA", lines_before);
    json_array_foreach(data, i, st) {
        const char *src = json_string_value(json_object_get(st, "source_name"));
        const char *stage = json_string_value(json_object_get(st, "stage"));
        const char *unit = json_string_value(json_object_get(st, "unit"));
        const char *err = json_string_value(json_object_get(st, "error_msg"));
        char b[64];
        const char *label = NULL;
        running |= stage && !strcmp(stage, "Running");
        if (unit && !strcmp(unit, "Sync")) {
            json_t *s = json_object_get(st, "sync_status");
            printf("%s%-16s %-8s Sync  events %lld, %lld/s, binlog %s, %llds behind\n",
                   tty ? "\033[2K" : "", src ? src : "?", stage ? stage : "?",
                   (long long)json_integer_value(json_object_get(s, "total_events")),
                   (long long)json_integer_value(json_object_get(s, "recent_tps")),
                   json_string_value(json_object_get(s, "syncer_binlog")) ? json_string_value(json_object_get(s, "syncer_binlog")) : "-",
                   (long long)json_integer_value(json_object_get(s, "seconds_behind_master")));
        } else {
            json_t *s = json_object_get(st, unit && !strcmp(unit, "Dump") ? "dump_status" : "load_status");
            double f = progress_of(s, &label);
            bar(f, b, 40);
            printf("%s%-16s %-8s %-5s %s %s\n", tty ? "\033[2K" : "", src ? src : "?",
                   stage ? stage : "?", unit ? unit : "?", b, label ? label : "");
        }
        if (err && *err)
            printf("%s  error: %s\n", tty ? "\033[2K" : "", err);
    }
    fflush(stdout);
    return running;
}

static int count_lines(json_t *v)
{
    json_t *st;
    size_t i;
    int n = 0;
    json_array_foreach(json_object_get(v, "data"), i, st) {
        const char *err = json_string_value(json_object_get(st, "error_msg"));
        n += 1 + (err && *err);
    }
    return n;
}

static int watch_status(const server_url *u, const char *path)
{
    int tty = isatty(1), lines = 0;
    signal(SIGINT, on_sigint);
    while (!interrupted) {
        http_resp r;
        if (http_do(u, "GET", path, NULL, &r) != 0)
            return 1;
        if (r.status != 200)
            return finish("task status", &r);
        json_t *v = json_loadb(r.body, r.len, 0, NULL);
        free(r.body);
        if (!v) {
            fprintf(stderr, "sluice: the status answer is not JSON\n");
            return 1;
        }
        int running = draw_status(v, tty, lines);
        lines = count_lines(v);
        json_decref(v);
        if (!running)
            return 0;
        struct timespec ts = { 1, 0 };
        nanosleep(&ts, NULL);
    }
    return 0;
}

static void client_usage(FILE *f)
{
    fputs("usage: sluice source create FILE | list | get NAME | delete NAME [--force] |\n"
          "                     enable NAME | disable NAME | status NAME\n"
          "       sluice task create FILE | update FILE | list | get NAME | start NAME |\n"
          "                   stop NAME | delete NAME [--force] | status NAME [--watch] |\n"
          "                   shard-ddl-locks NAME | unlock-ddl-lock NAME LOCK_ID [--no-exec]\n"
          "       sluice cluster masters | workers | offline master|worker NAME |\n"
          "                      transfer SOURCE WORKER\n"
          "options: --server URL (default $SLUICE_SERVER or http://127.0.0.1:8261)\n"
          "environment: SLUICE_TOKEN, the server's API token (auth-token-file), sent as\n"
          "             `Authorization: Bearer`\n", f);
}

/* The subcommands of each client command with the words each takes after it. */
typedef struct subcmd {
    const char *kind, *name;
    int         nargs;
    const char *args;   /* for the message */
} subcmd;

static const subcmd SUBCMDS[] = {
    { "source", "create", 1, "FILE" }, { "source", "list", 0, "" },
    { "source", "get", 1, "NAME" },    { "source", "delete", 1, "NAME" },
    { "source", "enable", 1, "NAME" }, { "source", "disable", 1, "NAME" },
    { "source", "status", 1, "NAME" },
    { "task", "create", 1, "FILE" },   { "task", "update", 1, "FILE" },
    { "task", "list", 0, "" },         { "task", "get", 1, "NAME" },
    { "task", "start", 1, "NAME" },    { "task", "stop", 1, "NAME" },
    { "task", "delete", 1, "NAME" },   { "task", "status", 1, "NAME" },
    { "task", "shard-ddl-locks", 1, "NAME" },
    { "task", "unlock-ddl-lock", 2, "NAME LOCK_ID" },
    { "cluster", "masters", 0, "" },   { "cluster", "workers", 0, "" },
    { "cluster", "offline", 2, "master|worker NAME" },
    { "cluster", "transfer", 2, "SOURCE WORKER" },
};
#define NSUBCMDS (sizeof SUBCMDS / sizeof SUBCMDS[0])

/* Check "KIND CMD ARGS..." (nargs words after KIND, CMD first) against SUBCMDS: an unknown
 * subcommand is named with the known ones, a missing or extra word is refused. 0 if it fits,
 * else 2 (the exit status) with the message on stderr. */
static int check_subcmd(const char *kind, const char *cmd, int nargs, char *const *args)
{
    const subcmd *sc = NULL;
    for (size_t i = 0; i < NSUBCMDS && !sc; i++)
        if (!strcmp(SUBCMDS[i].kind, kind) && !strcmp(SUBCMDS[i].name, cmd))
            sc = &SUBCMDS[i];
    if (!sc) {
        fprintf(stderr, "sluice: unknown subcommand \"%s\" of %s; the known ones:", cmd, kind);
        for (size_t i = 0; i < NSUBCMDS; i++)
            if (!strcmp(SUBCMDS[i].kind, kind))
                fprintf(stderr, " %s", SUBCMDS[i].name);
        fputs(" (sluice --help)\n", stderr);
        return 2;
    }
    int got = nargs - 1;
    if (got < sc->nargs) {
        fprintf(stderr, "sluice: %s %s needs %s%s (sluice %s %s %s)\n", kind, cmd,
                sc->nargs == 1 ? "a " : "", sc->args, kind, cmd, sc->args);
        return 2;
    }
    if (got > sc->nargs) {
        fprintf(stderr, "sluice: %s %s takes %s; unexpected \"%s\"%s (sluice %s %s%s%s)\n", kind,
                cmd, sc->nargs ? sc->args : "no argument", args[1 + sc->nargs],
                got > sc->nargs + 1 ? " and more" : "", kind, cmd, sc->nargs ? " " : "", sc->args);
        return 2;
    }
    return 0;
}

int sl_cli_client_main(int argc, char **argv)
{
    const char *server = getenv("SLUICE_SERVER");
    char *args[8];
    int nargs = 0, nwords = 0, force = 0, watch = 0, noexec = 0;
    server_url u;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--server") && i + 1 < argc)
            server = argv[++i];
        else if (!strncmp(argv[i], "--server=", 9))
            server = argv[i] + 9;
        else if (!strcmp(argv[i], "--force"))
            force = 1;
        else if (!strcmp(argv[i], "--watch") || !strcmp(argv[i], "-w"))
            watch = 1;
        else if (!strcmp(argv[i], "--no-exec"))
            noexec = 1;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            client_usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--server")) {
            fprintf(stderr, "sluice: --server needs a value (http://HOST:PORT)\n");
            return 2;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "sluice: unknown option %s\n", argv[i]);
            client_usage(stderr);
            return 2;
        } else {
            if (nargs < 8)
                args[nargs++] = argv[i];
            nwords++;
        }
    }
    if (argc < 1 || nargs < 1 || parse_url(server ? server : "http://127.0.0.1:8261", &u) != 0) {
        client_usage(stderr);
        return 2;
    }
    const char *kind = argv[0], *cmd = args[0], *arg = nargs > 1 ? args[1] : NULL;
    int bad = check_subcmd(kind, cmd, nwords, args);
    if (bad)
        return bad;
    if (!strcmp(kind, "cluster")) {
        char p[700];
        http_resp cr;
        if (!strcmp(cmd, "offline")) {
            /* DM's offline-member: remove the record of a member that is no longer alive */
            const char *role = arg, *who = nargs > 2 ? args[2] : NULL;
            if (!role || !who || (strcmp(role, "master") && strcmp(role, "worker"))) {
                client_usage(stderr);
                return 2;
            }
            char ename[600];
            esc(ename, sizeof ename, who);
            snprintf(p, sizeof p, "/api/v1/cluster/%ss/%s", role, ename);
            return http_do(&u, "DELETE", p, NULL, &cr) ? 1 : finish("cluster offline", &cr);
        }
        if (!strcmp(cmd, "transfer")) {
            /* DM's transfer-source: bind SOURCE to WORKER */
            const char *who = nargs > 2 ? args[2] : NULL;
            if (!arg || !who) {
                client_usage(stderr);
                return 2;
            }
            char ename[600];
            esc(ename, sizeof ename, arg);
            snprintf(p, sizeof p, "/api/v1/sources/%s/transfer", ename);
            json_t *b = json_pack("{s:s}", "worker_name", who);
            char *text = b ? json_dumps(b, JSON_COMPACT) : NULL;
            json_decref(b);
            if (!text) {
                fputs("sluice: out of memory\n", stderr);
                return 1;
            }
            int hrc = http_do(&u, "POST", p, text, &cr);
            free(text);
            return hrc ? 1 : finish("cluster transfer", &cr);
        }
        if (strcmp(cmd, "masters") && strcmp(cmd, "workers")) {
            client_usage(stderr);
            return 2;
        }
        snprintf(p, sizeof p, "/api/v1/cluster/%s", cmd);
        return http_do(&u, "GET", p, NULL, &cr) ? 1 : finish("cluster", &cr);
    }
    int is_source = !strcmp(kind, "source"), is_task = !strcmp(kind, "task");
    const char *coll = is_source ? "sources" : "tasks";
    char path[1024], name[600], what[128];
    http_resp r;
    if (!is_source && !is_task) {
        client_usage(stderr);
        return 2;
    }
    snprintf(what, sizeof what, "%s %s", kind, cmd);
    if (arg)
        esc(name, sizeof name, arg);
    if (!strcmp(cmd, "create") || !strcmp(cmd, "update")) {
        char *body = read_file(arg);
        if (!body)
            return 1;
        const char *method = "POST";
        snprintf(path, sizeof path, "/api/v1/%s", coll);
        if (!strcmp(cmd, "update")) {
            json_t *v = json_loads(body, 0, NULL), *t = json_object_get(v, is_task ? "task" : "source");
            const char *n = json_string_value(json_object_get(t ? t : v, is_task ? "name" : "source_name"));
            if (!n) {
                fprintf(stderr, "sluice: %s: no %s name in %s\n", what, kind, arg);
                json_decref(v);
                free(body);
                return 1;
            }
            esc(name, sizeof name, n);
            snprintf(path, sizeof path, "/api/v1/%s/%s", coll, name);
            method = "PUT";
            json_decref(v);
        }
        int rc = http_do(&u, method, path, body, &r);
        free(body);
        return rc ? 1 : finish(what, &r);
    }
    if (!strcmp(cmd, "list")) {
        snprintf(path, sizeof path, "/api/v1/%s", coll);
        return http_do(&u, "GET", path, NULL, &r) ? 1 : finish(what, &r);
    }
    if (!strcmp(cmd, "get")) {
        snprintf(path, sizeof path, "/api/v1/%s/%s?with_status=true", coll, name);
        return http_do(&u, "GET", path, NULL, &r) ? 1 : finish(what, &r);
    }
    if (!strcmp(cmd, "delete")) {
        snprintf(path, sizeof path, "/api/v1/%s/%s%s", coll, name, force ? "?force=true" : "");
        return http_do(&u, "DELETE", path, NULL, &r) ? 1 : finish(what, &r);
    }
    if (is_source && (!strcmp(cmd, "enable") || !strcmp(cmd, "disable"))) {
        snprintf(path, sizeof path, "/api/v1/sources/%s/%s", name, cmd);
        return http_do(&u, "POST", path, "{}", &r) ? 1 : finish(what, &r);
    }
    if (is_task && (!strcmp(cmd, "start") || !strcmp(cmd, "stop"))) {
        snprintf(path, sizeof path, "/api/v1/tasks/%s/%s", name, cmd);
        return http_do(&u, "POST", path, "{}", &r) ? 1 : finish(what, &r);
    }
    /* shard DDL locks (sluice's extension beside DM's shard-ddl-lock / unlock-ddl-lock) */
    if (is_task && !strcmp(cmd, "shard-ddl-locks")) {
        snprintf(path, sizeof path, "/api/v1/tasks/%s/shard_ddl_locks", name);
        return http_do(&u, "GET", path, NULL, &r) ? 1 : finish(what, &r);
    }
    if (is_task && !strcmp(cmd, "unlock-ddl-lock")) {
        json_t *b = json_pack("{s:s,s:b}", "lock_id", args[2], "exec", !noexec);
        char *body = b ? json_dumps(b, JSON_COMPACT) : NULL;
        json_decref(b);
        if (!body)
            return 1;
        snprintf(path, sizeof path, "/api/v1/tasks/%s/shard_ddl_locks/unlock", name);
        int rc = http_do(&u, "POST", path, body, &r);
        free(body);
        return rc ? 1 : finish(what, &r);
    }
    if (!strcmp(cmd, "status")) {
        snprintf(path, sizeof path, "/api/v1/%s/%s/status", coll, name);
        if (is_task && watch)
            return watch_status(&u, path);
        return http_do(&u, "GET", path, NULL, &r) ? 1 : finish(what, &r);
    }
    fprintf(stderr, "sluice: unknown command %s\n", what);
    client_usage(stderr);
    return 2;
}
