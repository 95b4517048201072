/*
 * server.c - assembling the server: data dir, secret key, metadata store, plugin registry,
 * scheduler, the runtime's worker, restored sources and tasks, and the HTTP daemon; and taking it
 * apart again in the reverse order.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sluice/log.h"

static int mkdir_p(const char *dir, sl_error *err)
{
    if (!*dir)   /* the walk below starts after the first byte */
        return sl_error_set(err, SL_EINVAL, "the data directory is an empty path");
    char *p = strdup(dir);
    if (!p)
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    for (char *s = p + 1; ; s++) {
        if (*s == '/' || *s == 0) {
            char c = *s;
            *s = 0;
            if (mkdir(p, 0700) != 0 && errno != EEXIST) {
                int rc = sl_error_set(err, SL_EIO, "cannot create directory %s: %s", p, strerror(errno));
                free(p);
                return rc;
            }
            *s = c;
            if (!c)
                break;
        }
    }
    free(p);
    return 0;
}

unsigned sl_api_port(const sl_api *a)
{
    return a->port;
}

/* Startup stops between steps when the caller's cancel flag is up (a stop signal). */
static int cancelled(const sl_api *a, sl_error *err)
{
    if (a->opts.cancel && atomic_load(a->opts.cancel))
        return sl_error_set(err, SL_ESTOPPED, "startup interrupted by a stop request");
    return 0;
}

int sl__api_cancelled(const sl_api *a)
{
    return a->opts.cancel && atomic_load(a->opts.cancel);
}

/* Every member of a cluster opens the passwords any master sealed, so all hold the same
 * DATA_DIR/secret.key. The first member to join records a MAC of a fixed text under its key;
 * a member with another key is refused at start, rather than failing on the first password. */
static int cluster_key_check(sl_api *a, sl_error *err)
{
    static const char probe[] = "sluice cluster secret key check v1";
    uint8_t mac[SL_SHA256_LEN];
    char hex[2 * SL_SHA256_LEN + 1], *have = NULL;
    sl_hmac_sha256(a->key.mac, sizeof a->key.mac, probe, sizeof probe - 1, mac);
    for (size_t i = 0; i < sizeof mac; i++)
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
    sl_error tmp = { 0 };
    int rc = sl_meta_put1(a->store, SL_META_CREATE, "cluster", "secret-key-check", hex, &tmp);
    if (rc == 0)
        return 0;
    if (rc != SL_EEXIST)
        return sl_error_set(err, rc, "%s", tmp.msg);
    if ((rc = sl_meta_get(a->store, "cluster", "secret-key-check", &have, err)) != 0)
        return rc;
    rc = strcmp(have, hex) ? sl_error_set(err, SL_EINVAL, "%s/secret.key is not the key of this "
                                          "cluster: every member needs the same secret.key (copy "
                                          "it from a member's data dir, mode 0600)", a->data_dir)
                           : 0;
    free(have);
    return rc;
}

/* A leader's writes to etcd hold only while it leads: guard them with its leader key's
 * incarnation (its epoch), so a deposed leader that has not noticed yet writes nothing. */
static void guard_store(sl_api *a)
{
    char k[512];
    sl_error err = { 0 };
    snprintf(k, sizeof k, "%s/leader", a->opts.etcd_root ? a->opts.etcd_root : "/sluice");
    if (sl_meta_etcd_guard(a->store, k, sl_member_epoch(a->member), &err) != 0)
        sl_log(SL_LOG_ERROR, "cluster", "%s", err.msg);
}

/* Stop every subtask (their stored stages stay: whoever holds them next resumes them) and
 * forget the sources and tasks. Call with the write lock held. The pipelines stop apart; with
 * wait, this waits for them (a new leader's tasks must not write beside them). */
static void drop_all(sl_api *a, int wait)
{
    for (size_t i = 0; i < a->ntasks; i++)
        for (size_t j = 0; j < a->tasks[i]->nsubs; j++)
            sl_subtask_stop_request(a->tasks[i]->subs[j], 0);
    sl__tasks_free_all(a);
    sl__sources_free_all(a);
    if (wait)
        sl_worker_wait_stopped(a->worker, NULL, -1, NULL);
}

/* The member's keepalive thread says leadership changed: a new leader restores the sources and
 * tasks from etcd (the Running subtasks resume from their checkpoints in the target); a deposed
 * one (its lease expired: paused, cut off) stops its subtasks and forwards from now on. */
static void leader_changed(void *ud)
{
    sl_api *a = ud;
    pthread_rwlock_wrlock(&a->lock);
    int now = sl_member_is_leader(a->member);
    if (a->cluster_ready && now != atomic_load(&a->leading)) {
        if (now) {
            sl_error err = { 0 };
            guard_store(a);
            atomic_store(&a->meta_seen, sl_meta_etcd_uncertain(a->store));
            if (sl__sources_restore(a, &err) != 0 || sl__tasks_restore(a, &err) != 0)
                sl_log(SL_LOG_ERROR, "cluster", "taking over as the leader: %s", err.msg);
            sl_log(SL_LOG_INFO, "cluster", "leading: restored %zu sources and %zu tasks from etcd",
                   a->nsources, a->ntasks);
        } else {
            drop_all(a, 1);
            sl_log(SL_LOG_WARN, "cluster", "no longer the leader: stopped this process's subtasks; "
                   "requests are forwarded to the leader");
        }
        atomic_store(&a->leading, now);
    }
    pthread_rwlock_unlock(&a->lock);
}

int sl__meta_resync(sl_api *a, sl_error *err)
{
    long long n = sl_meta_etcd_uncertain(a->store);
    if (n == atomic_load(&a->meta_seen))
        return 0;
    pthread_rwlock_wrlock(&a->lock);
    int rc = 0;
    if (n != atomic_load(&a->meta_seen) && atomic_load(&a->leading)) {
        drop_all(a, 1);
        if ((rc = sl__sources_restore(a, err)) == 0 && (rc = sl__tasks_restore(a, err)) == 0) {
            atomic_store(&a->meta_seen, n);
            sl_log(SL_LOG_INFO, "cluster", "an etcd write timed out: read %zu sources and %zu "
                   "tasks from etcd again", a->nsources, a->ntasks);
        }
    }
    pthread_rwlock_unlock(&a->lock);
    return rc;
}

/* The status the worker running task/source publishes in etcd (runner.c), or NULL. */
static json_t *live_status(void *ud, const char *task, const char *source)
{
    sl_api *a = ud;
    json_t *o = NULL;
    if (a->member)
        sl_member_live_get(a->member, task, source, &o);
    return o;
}

int sl_api_new(const sl_api_opts *o, sl_api **out, sl_error *err)
{
    return sl__api_open(o, 0, out, err);
}

/* One server per data dir: its metadata store, dump files and binlog positions are not shared.
 * The lock is an flock on <data_dir>/server.lock (released by the kernel when the process dies,
 * so a kill -9 leaves nothing to clean up); the file holds the owner's pid for the message. */
static int lock_data_dir(sl_api *a, sl_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/server.lock", a->data_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return sl_error_set(err, SL_EIO, "%s: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char pid[24] = "";
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = 0;
        pid[strcspn(pid, "\n")] = 0;
        close(fd);
        if (e != EWOULDBLOCK)
            return sl_error_set(err, SL_EIO, "%s: %s", path, strerror(e));
        return sl_error_set(err, SL_ESTATE, "data dir %s is in use by another sluice-server%s%s "
                            "(one server per data dir; give this one its own --data-dir)",
                            a->data_dir, *pid ? " with pid " : "", pid);
    }
    char pid[24];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len)
        sl_log(SL_LOG_WARN, "server", "%s: cannot write the pid: %s", path, strerror(errno));
    a->dir_lock = fd;
    return 0;
}

int sl__api_open(const sl_api_opts *o, unsigned flags, sl_api **out, sl_error *err)
{
    sl_api *a = calloc(1, sizeof *a);
    int rc;
    char path[4096];
    if (!a)
        return sl_error_set(err, SL_ENOMEM, "out of memory");
    a->listen_fd = a->dir_lock = -1;
    if (o)
        a->opts = *o;
    if (!a->opts.addr)
        a->opts.addr = "127.0.0.1:8261";
    if (!a->opts.body_limit)
        a->opts.body_limit = 8u << 20;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    a->ncpu = ncpu > 0 ? (unsigned)ncpu : 0;
    if (!a->opts.http_threads) {
        /* two per CPU: some handlers block (a source's connection check, an fsync'd commit) */
        a->opts.http_threads = ncpu < 2 ? 4 : (unsigned)(2 * ncpu);
    }
    a->opts.addr = a->addr_host = strdup(a->opts.addr);
    a->data_dir = strdup(a->opts.data_dir ? a->opts.data_dir : "./sluice-data");
    a->opts.data_dir = a->data_dir;
    a->offline = (flags & SL__API_OFFLINE) != 0;
    pthread_rwlock_init(&a->lock, NULL);
    pthread_mutex_init(&a->cache_mu, NULL);
    if (!a->addr_host || !a->data_dir || sl__metrics_new(a) != 0) {
        rc = sl_error_set(err, SL_ENOMEM, "out of memory");
        goto fail;
    }
    /* TLS files and the token first: a bad setting changes nothing on disk */
    if ((rc = sl__access_init(a, err)) != 0) {
        goto fail;
    }
    /* Cluster mode: the metadata store is etcd, reached before anything is written: an etcd that
     * does not answer leaves no trace of this attempt, here or there. */
    if (a->opts.etcd) {
        if (!sl_member_role_ok(a->opts.role)) {
            rc = sl_error_set(err, SL_EINVAL, "unknown role '%s' (master, worker or all)",
                              a->opts.role ? a->opts.role : "");
            goto fail;
        }
        if ((rc = cancelled(a, err)) != 0 ||
            (rc = sl_meta_etcd_open(a->opts.etcd, a->opts.etcd_root, &a->store, err)) != 0)
            goto fail;
        if (a->opts.auth_token) {
            size_t n = strlen(a->opts.auth_token) + sizeof "Authorization: Bearer ";
            if (!(a->fwd_auth = malloc(n))) {
                rc = sl_error_set(err, SL_ENOMEM, "out of memory");
                goto fail;
            }
            snprintf(a->fwd_auth, n, "Authorization: Bearer %s", a->opts.auth_token);
        }
    }
    if ((rc = mkdir_p(a->data_dir, err)) != 0 || (rc = lock_data_dir(a, err)) != 0 ||
        (rc = sl_secret_key_load(a->data_dir, &a->key, err)) != 0)
        goto fail;
    /* the address too before anything is restored: a second server started by mistake must
     * not start tasks that the first one runs */
    if (!(flags & SL__API_NO_HTTP) && (rc = sl__http_bind(a, err)) != 0)
        goto fail;
    if (a->opts.etcd && (rc = cluster_key_check(a, err)) != 0)
        goto fail;
    /* Lua script files named by tasks are read only from here (see sl_compile_opts.script_root). */
    snprintf(path, sizeof path, "%s/lua", a->data_dir);
    if ((rc = mkdir_p(path, err)) != 0)
        goto fail;
    if (a->opts.etcd)
        snprintf(path, sizeof path, "etcd %s", a->opts.etcd);
    else
        snprintf(path, sizeof path, "%s/meta.db", a->data_dir);
    if (!a->store &&
        ((rc = cancelled(a, err)) != 0 || (rc = sl_meta_sqlite_open(path, &a->store, err)) != 0))
        goto fail;
    if ((rc = sl_registry_new(&a->registry)) != 0) {
        sl_error_set(err, rc, "cannot create the plugin registry");
        goto fail;
    }
    if ((rc = cancelled(a, err)) != 0)
        goto fail;
    const char *pdir = a->opts.plugin_dir ? a->opts.plugin_dir : sl_default_plugin_dir();
    sl_error perr = { 0 };
    if (pdir && sl_registry_load_dir(a->registry, pdir, &perr) != 0)
        sl_log(SL_LOG_WARN, "server", "plugins from %s: %s (tasks that need them will not compile)",
               pdir, perr.msg);
    else
        sl_log(SL_LOG_INFO, "server", "%zu plugins loaded from %s", sl_registry_count(a->registry),
               pdir ? pdir : "?");
    if ((rc = sl_scheduler_new(NULL, &a->sched)) != 0) {
        sl_error_set(err, rc, "cannot create the scheduler");
        goto fail;
    }
    if (a->opts.etcd) {
        /* Join before restoring: a name a live member holds is refused, and nothing runs. */
        sl_member_opts mo = { .endpoints = a->opts.etcd, .root = a->opts.etcd_root,
                              .role = a->opts.role, .name = a->opts.name,
                              .addr = a->opts.advertise_addr ? a->opts.advertise_addr : a->opts.addr,
                              .ttl_s = a->opts.lease_ttl, .sched = a->sched,
                              .on_leader_change = leader_changed, .ud = a };
        if ((rc = cancelled(a, err)) != 0 || (rc = sl_member_join(&mo, &a->member, err)) != 0)
            goto fail;
    }
    /* In a cluster this worker holds the leader's views of the subtasks (the bound workers run
     * them: runner.c); embedded, it runs them. */
    sl_worker_opts wo = { .name = a->member ? a->opts.name : SL_API_WORKER_NAME, .store = a->store, .sched = a->sched,
                          .registry = a->registry, .no_events = (flags & SL__API_NO_MONITOR) != 0,
                          .remote = a->member != NULL, .live_status = live_status, .live_ud = a };
    if ((rc = sl_worker_new(&wo, &a->worker, err)) != 0)
        goto fail;
    /* the restore visitors stop early when cancelled; cancelled() then says so. In a cluster
     * only the leader holds the sources and tasks (the others forward to it): one writer. */
    pthread_rwlock_wrlock(&a->lock);
    int hold = !a->member || sl_member_is_leader(a->member);
    if (a->member && hold)
        guard_store(a);
    rc = 0;
    if (hold && (rc = cancelled(a, err)) == 0 && (rc = sl__sources_restore(a, err)) == 0 &&
        (rc = cancelled(a, err)) == 0)
        rc = sl__tasks_restore(a, err);
    atomic_store(&a->leading, hold);
    a->cluster_ready = 1;
    pthread_rwlock_unlock(&a->lock);
    if (rc != 0 || (rc = cancelled(a, err)) != 0)
        goto fail;
    sl_log(SL_LOG_INFO, "server", "restored %zu sources and %zu tasks from %s", a->nsources,
           a->ntasks, path);
    if (a->member && strcmp(a->opts.role, "master") && (rc = sl__runner_start(a, err)) != 0)
        goto fail;
    if (!(flags & SL__API_NO_MONITOR) && (rc = sl__console_start(a)) != 0) {
        sl_error_set(err, rc, "cannot start the console's lag sampler");
        goto fail;
    }
    if (!(flags & SL__API_NO_HTTP)) {
        if ((rc = sl__http_start(a, err)) != 0)
            goto fail;
        if (a->member && !a->opts.advertise_addr) {
            /* listening on port 0: advertise the port we got, on the host we listen on */
            char adv[300];
            const char *colon = strrchr(a->opts.addr, ':');
            snprintf(adv, sizeof adv, "%.*s:%u", colon ? (int)(colon - a->opts.addr) : 0,
                     a->opts.addr, a->port);
            if ((rc = sl_member_set_addr(a->member, adv, err)) != 0 ||
                !(a->adv_addr = strdup(adv))) {
                rc = rc ? rc : sl_error_set(err, SL_ENOMEM, "out of memory");
                goto fail;
            }
        }
        sl_log(SL_LOG_INFO, "server", "serving the DM OpenAPI on %s://%s/api/v1 (port %u)%s",
               a->access.cert ? "https" : "http", a->opts.addr, a->port,
               a->access.token_on ? " with a bearer token" : "");
    }
    *out = a;
    return 0;
fail:
    sl_api_free(a);
    return rc;
}

void sl_api_free(sl_api *a)
{
    if (!a)
        return;
    sl__http_stop(a);
    sl__console_stop(a);
    /* no phase change nor restored start from here on */
    sl_worker_stop_events(a->worker);
    /* stop pipelines without touching their stored stage: a restart resumes them */
    /* the member thread first: no leadership change acts on what is freed below. The lease goes
     * after the subtasks stopped: it guarded them */
    sl_member *m = a->member;
    if (m)
        sl_member_stop_thread(m);
    sl__runner_stop(a);   /* the bound sources' subtasks stop; their stages stay */
    pthread_rwlock_wrlock(&a->lock);
    drop_all(a, 0);
    pthread_rwlock_unlock(&a->lock);
    /* A stage that does not return (a Lua pattern, a frozen target) must not keep the server
     * from stopping: after a while it is left to the process's exit, and what its threads use
     * (the worker, the scheduler, the plugins' code) is not freed under them. */
    sl_error werr = { 0 };
    if (a->worker && sl_worker_wait_stopped(a->worker, NULL, 10000, &werr) != 0) {
        sl_log(SL_LOG_ERROR, "server", "%s: exiting without it", werr.msg);
        sl_member_leave(m);
        a->member = NULL;
        /* a, the worker, the scheduler, the plugins and the store stay until the exit; held
         * here so that the leak checker does not report what is left on purpose */
        static sl_api *_Atomic left_to_exit;
        atomic_store(&left_to_exit, a);
        return;
    }
    sl_worker_free(a->worker);
    sl_member_leave(m);
    a->member = NULL;
    if (a->sched)
        sl_scheduler_free(a->sched);
    sl_registry_free(a->registry);
    sl_meta_close(a->store);
    pthread_mutex_lock(&a->cache_mu);
    sl__blob_unref(a->tasks_cache);
    a->tasks_cache = NULL;
    pthread_mutex_unlock(&a->cache_mu);
    pthread_mutex_destroy(&a->cache_mu);
    pthread_rwlock_destroy(&a->lock);
    memset(&a->key, 0, sizeof a->key);
    sl__access_free(a);
    sl__metrics_free(a);
    free(a->addr_host);
    if (a->dir_lock >= 0)
        close(a->dir_lock);   /* last: everything in the data dir is closed */
    free(a->data_dir);
    free(a->adv_addr);
    if (a->fwd_auth) {
        memset(a->fwd_auth, 0, strlen(a->fwd_auth));
        free(a->fwd_auth);
    }
    free(a);
}
