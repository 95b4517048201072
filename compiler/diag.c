/*
 * diag.c - the compiler's diagnostics list (compiler.h sl_diags): every problem of a task with
 * its JSON path and code, and their one-line-each text form used by the CLI and the REST API.
 */
#include "sluice/compiler.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sl_diags_free(sl_diags *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++) {
        free(d->v[i].path);
        free(d->v[i].msg);
    }
    free(d->v);
    d->v = NULL;
    d->n = d->cap = 0;
}

static char *vfmt(const char *fmt, va_list ap)
{
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(NULL, 0, fmt, cp);
    va_end(cp);
    if (n < 0)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (s)
        vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

int sl_diags_add(sl_diags *d, int severity, int code, const char *path, const char *fmt, ...)
{
    if (!d)
        return 0;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        sl_diag *v = realloc(d->v, cap * sizeof *v);
        if (!v)
            return SL_ENOMEM;
        d->v = v;
        d->cap = cap;
    }
    va_list ap;
    va_start(ap, fmt);
    char *msg = vfmt(fmt, ap);
    va_end(ap);
    char *p = strdup(path ? path : "");
    if (!msg || !p) {
        free(msg);
        free(p);
        return SL_ENOMEM;
    }
    d->v[d->n++] = (sl_diag){ .path = p, .msg = msg, .code = code, .severity = severity };
    return 0;
}

size_t sl_diags_errors(const sl_diags *d)
{
    size_t n = 0;
    for (size_t i = 0; d && i < d->n; i++)
        n += d->v[i].severity == SL_DIAG_ERROR;
    return n;
}

char *sl_diags_format(const sl_diags *d)
{
    size_t cap = 1;
    for (size_t i = 0; d && i < d->n; i++)
        cap += strlen(d->v[i].path) + strlen(d->v[i].msg) + 48;
    char *s = malloc(cap), *p = s;
    if (!s)
        return NULL;
    *p = '\0';
    for (size_t i = 0; d && i < d->n; i++) {
        const sl_diag *g = &d->v[i];
        p += snprintf(p, cap - (size_t)(p - s), "%s%s: %s (code %d)\n",
                      g->severity == SL_DIAG_WARNING ? "warning: " : "",
                      g->path[0] ? g->path : "/", g->msg, g->code);
    }
    return s;
}
