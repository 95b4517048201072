/*
 * registry.c - the plugin loader: dlopens plugin files, checks their descriptor against the host's
 * ABI (major version, size, name, callbacks for the kind, capabilities) and keeps them by
 * unique name.
 */
#include "sluice/runtime.h"
#include "host.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef SLUICE_PLUGIN_INSTALL_DIR
#define SLUICE_PLUGIN_INSTALL_DIR "/usr/local/lib/sluice/plugins"
#endif

typedef struct entry {
    const sl_plugin_descriptor *d;
    void *handle;    /* dlopen handle, NULL for sl_registry_add */
    char *path;      /* file it came from, NULL for sl_registry_add */
} entry;

struct sl_registry {
    entry *v;
    size_t n, cap;
};

int sl_registry_new(sl_registry **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? 0 : SL_ENOMEM;
}

void sl_registry_free(sl_registry *reg)
{
    if (!reg)
        return;
    for (size_t i = reg->n; i-- > 0;) {
        if (reg->v[i].handle)
            dlclose(reg->v[i].handle);
        free(reg->v[i].path);
    }
    free(reg->v);
    free(reg);
}

/* Checks a descriptor; `what` names its origin (the file) for the message. */
static int check_descriptor(const sl_registry *reg, const sl_plugin_descriptor *d,
                            const char *what, sl_error *err)
{
    if (SL_ABI_MAJOR_OF(d->abi_version) != SL_ABI_MAJOR)
        return sl_error_set(err, SL_EABI,
                            "plugin %s refused: ABI major version %u, this host supports %u",
                            what, (unsigned)SL_ABI_MAJOR_OF(d->abi_version), (unsigned)SL_ABI_MAJOR);
    if (d->struct_size < SL_DESCRIPTOR_MIN_SIZE)
        return sl_error_set(err, SL_EABI,
                            "plugin %s refused: descriptor is %u bytes, shorter than the minimum %zu",
                            what, (unsigned)d->struct_size, (size_t)SL_DESCRIPTOR_MIN_SIZE);
    if (!d->name || !*d->name)
        return sl_error_set(err, SL_EABI, "plugin %s refused: descriptor has no name", what);
    if (d->kind != SL_PLUGIN_SOURCE && d->kind != SL_PLUGIN_TRANSFORM && d->kind != SL_PLUGIN_SINK)
        return sl_error_set(err, SL_EABI, "plugin %s refused: unknown kind %d", what, (int)d->kind);
    if (!d->create)
        return sl_error_set(err, SL_EABI, "plugin %s refused: missing callback create", what);
    if (!d->destroy)
        return sl_error_set(err, SL_EABI, "plugin %s refused: missing callback destroy", what);
    if (d->kind == SL_PLUGIN_SOURCE && !d->run)
        return sl_error_set(err, SL_EABI, "plugin %s refused: source without callback run", what);
    if (d->kind != SL_PLUGIN_SOURCE && !d->process)
        return sl_error_set(err, SL_EABI, "plugin %s refused: %s without callback process", what,
                            d->kind == SL_PLUGIN_SINK ? "sink" : "transform");
    if (d->options) {
        for (const sl_option *o = d->options; o->name; o++) {
            if (o->type < SL_OPT_BOOL || o->type > SL_OPT_JSON)
                return sl_error_set(err, SL_EABI, "plugin %s refused: option %s has unknown type %d",
                                    what, o->name, (int)o->type);
            if (o->type == SL_OPT_ENUM && !o->choices)
                return sl_error_set(err, SL_EABI, "plugin %s refused: enum option %s has no choices",
                                    what, o->name);
            size_t width = (o->type == SL_OPT_INT) ? sizeof(int64_t)
                         : (o->type == SL_OPT_STRING || o->type == SL_OPT_JSON) ? sizeof(char *)
                         : sizeof(int);
            if (o->offset + width > d->config_size)
                return sl_error_set(err, SL_EABI,
                                    "plugin %s refused: option %s lies outside config_size %zu",
                                    what, o->name, d->config_size);
            char msg[512];
            if (sl__option_default_ok(o, msg, sizeof msg) < 0)
                return sl_error_set(err, SL_EABI, "plugin %s refused: %s", what, msg);
        }
    }
    char capmsg[256];
    if (sl_plugin_caps_check(d, capmsg, sizeof capmsg) < 0)
        return sl_error_set(err, SL_EABI, "plugin %s refused: %s", what, capmsg);
    if (sl_registry_find(reg, d->name))
        return sl_error_set(err, SL_EEXIST,
                            "plugin %s refused: a plugin named \"%s\" is already registered",
                            what, d->name);
    return 0;
}

static int append(sl_registry *reg, const sl_plugin_descriptor *d, void *handle, const char *path)
{
    if (reg->n == reg->cap) {
        size_t cap = reg->cap ? reg->cap * 2 : 8;
        entry *v = realloc(reg->v, cap * sizeof *v);
        if (!v)
            return SL_ENOMEM;
        reg->v = v;
        reg->cap = cap;
    }
    char *p = NULL;
    if (path && !(p = strdup(path)))
        return SL_ENOMEM;
    reg->v[reg->n++] = (entry){ .d = d, .handle = handle, .path = p };
    return 0;
}

int sl_registry_add(sl_registry *reg, const sl_plugin_descriptor *d, sl_error *err)
{
    char what[256];
    snprintf(what, sizeof what, "\"%s\" (built in)", (d && d->name) ? d->name : "?");
    if (!d)
        return sl_error_set(err, SL_EINVAL, "plugin descriptor is NULL");
    int rc = check_descriptor(reg, d, what, err);
    if (rc < 0)
        return rc;
    if ((rc = append(reg, d, NULL, NULL)) < 0)
        return sl_error_set(err, rc, "plugin %s: out of memory", what);
    return 0;
}

int sl_registry_load(sl_registry *reg, const char *path, sl_error *err)
{
    struct stat st;
    if (!path || stat(path, &st) != 0)
        return sl_error_set(err, SL_ENOENT, "plugin %s refused: %s", path ? path : "(null)",
                            path ? strerror(errno) : "no path");
    if (!S_ISREG(st.st_mode))
        return sl_error_set(err, SL_ENOENT, "plugin %s refused: not a regular file", path);

    /* dlerror() state is per thread; clear it so the message is ours. */
    dlerror();
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        return sl_error_set(err, SL_EABI, "plugin %s refused: cannot load: %s", path, e ? e : "?");
    }
    dlerror();
    const sl_plugin_descriptor *d = dlsym(h, SL_PLUGIN_SYMBOL);
    if (!d) {
        dlclose(h);
        return sl_error_set(err, SL_EABI, "plugin %s refused: missing symbol `%s`", path,
                            SL_PLUGIN_SYMBOL);
    }
    int rc = check_descriptor(reg, d, path, err);
    if (rc == 0 && (rc = append(reg, d, h, path)) < 0)
        sl_error_set(err, rc, "plugin %s: out of memory", path);
    if (rc < 0)
        dlclose(h);
    return rc;
}

static int plugin_file(const struct dirent *e)
{
    return fnmatch("sluice-*.so", e->d_name, 0) == 0;
}

int sl_registry_load_dir(sl_registry *reg, const char *dir, sl_error *err)
{
    struct dirent **names;
    int n = scandir(dir, &names, plugin_file, alphasort);
    if (n < 0)
        return sl_error_set(err, SL_ENOENT, "plugin directory %s: %s", dir, strerror(errno));
    /* A bad file must not take the good ones down with it: load every file, and report all
     * refusals (joined with "; ") with the first failure's code. */
    int rc = 0;
    sl_error all = { 0 };
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        sl_error one = { 0 };
        int r = sl_registry_load(reg, path, &one);
        if (r < 0) {
            if (rc == 0) {
                rc = r;
                sl_error_set(&all, r, "%s", one.msg);
            } else {
                size_t len = strlen(all.msg);
                if (len + 2 < sizeof all.msg) {
                    memcpy(all.msg + len, "; ", 3);
                    len += 2;
                    size_t m = strlen(one.msg), room = sizeof all.msg - 1 - len;
                    memcpy(all.msg + len, one.msg, m < room ? m : room);
                    all.msg[len + (m < room ? m : room)] = '\0';
                }
            }
        }
        free(names[i]);
    }
    free(names);
    if (rc < 0)
        sl_error_set(err, rc, "%s", all.msg);
    return rc;
}

const sl_plugin_descriptor *sl_registry_find(const sl_registry *reg, const char *name)
{
    if (!reg || !name)
        return NULL;
    for (size_t i = 0; i < reg->n; i++)
        if (strcmp(reg->v[i].d->name, name) == 0)
            return reg->v[i].d;
    return NULL;
}

size_t sl_registry_count(const sl_registry *reg)
{
    return reg ? reg->n : 0;
}

const sl_plugin_descriptor *sl_registry_at(const sl_registry *reg, size_t i)
{
    return (reg && i < reg->n) ? reg->v[i].d : NULL;
}

static char default_dir[PATH_MAX];
static pthread_once_t default_dir_once = PTHREAD_ONCE_INIT;

/* Copies src into default_dir, cut to fit. */
static void set_default_dir(const char *src)
{
    size_t n = strlen(src);
    if (n >= sizeof default_dir)
        n = sizeof default_dir - 1;
    memcpy(default_dir, src, n);
    default_dir[n] = '\0';
}

static void compute_default_dir(void)
{
    const char *env = getenv("SLUICE_PLUGIN_DIR");
    if (env && *env) {
        set_default_dir(env);
        return;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            char cand[PATH_MAX + 32];
            struct stat st;
            snprintf(cand, sizeof cand, "%s/../lib/sluice/plugins", exe);
            if (stat(cand, &st) == 0 && S_ISDIR(st.st_mode)) {
                char real[PATH_MAX];
                set_default_dir(realpath(cand, real) ? real : cand);
                return;
            }
        }
    }
    set_default_dir(SLUICE_PLUGIN_INSTALL_DIR);
}

const char *sl_default_plugin_dir(void)
{
    pthread_once(&default_dir_once, compute_default_dir);
    return default_dir;
}
