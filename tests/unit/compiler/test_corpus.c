/*
 * test_corpus.c - checks one task of tests/data/tasks against the compiler with the real plugin
 * descriptors ($SLUICE_PLUGIN_DIR): `test_corpus good FILE` must compile with no error;
 * `test_corpus bad FILE` must fail with every "PATH CODE [text]" line of FILE's .expect among
 * its errors. A FILE.sources.json beside it is passed as the known sources (check_sources on).
 */
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/compiler.h"
#include "sluice/runtime.h"

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) {
        b[n] = '\0';
        *len = (size_t)n;
    }
    return b;
}

static char *sidecar(const char *file, const char *ext)
{
    size_t n = strlen(file);
    char *p = malloc(n + strlen(ext) + 1);
    if (!p)
        return NULL;
    memcpy(p, file, n + 1);
    if (n > 5 && strcmp(p + n - 5, ".json") == 0)
        p[n - 5] = '\0';
    strcat(p, ext);
    return p;
}

/* One .expect line: "PATH CODE [text]"; returns 1 if some error matches it. */
static int expected(const sl_diags *d, char *line)
{
    char *path = strtok(line, " ");
    char *code = strtok(NULL, " ");
    char *text = strtok(NULL, "");
    if (!path || !code)
        return -1;
    if (strcmp(path, "/") == 0)
        path = "";
    for (size_t i = 0; i < d->n; i++) {
        const sl_diag *g = &d->v[i];
        if (g->severity == SL_DIAG_ERROR && strcmp(g->path, path) == 0 && g->code == atoi(code) &&
            (!text || strstr(g->msg, text)))
            return 1;
    }
    fprintf(stderr, "expected error not reported: %s %s%s%s\n", path[0] ? path : "/", code,
            text ? " " : "", text ? text : "");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[1], "good") && strcmp(argv[1], "bad"))) {
        fprintf(stderr, "usage: test_corpus good|bad FILE\n");
        return 2;
    }
    int good = strcmp(argv[1], "good") == 0;
    size_t len = 0, slen = 0, nsrc = 0;
    char *text = slurp(argv[2], &len);
    if (!text) {
        fprintf(stderr, "cannot read %s\n", argv[2]);
        return 1;
    }
    sl_registry *reg = NULL;
    sl_error err = {0};
    const char *dir = sl_default_plugin_dir();
    if (sl_registry_new(&reg) < 0 || sl_registry_load_dir(reg, dir, &err) < 0) {
        fprintf(stderr, "loading plugins from %s: %s\n", dir, err.msg);
        return 1;
    }
    sl_diags d = {0};
    sl_source_def *defs = NULL;
    char *sp = sidecar(argv[2], ".sources.json");
    char *stext = sp ? slurp(sp, &slen) : NULL;
    if (stext && sl_source_defs_parse(stext, slen, &defs, &nsrc, &d) < 0) {
        fprintf(stderr, "bad sources file %s\n", sp);
        return 1;
    }
    char *fcopy = strdup(argv[2]);   /* Lua files are relative to the task file */
    sl_compile_opts o = { .registry = reg, .plugin_dir = dir, .sources = defs, .nsources = nsrc,
                          .check_sources = stext != NULL, .base_dir = fcopy ? dirname(fcopy) : "." };
    sl_task_plan *plan = NULL;
    int rc = sl_task_compile(text, len, &o, &plan, &d);
    char *all = sl_diags_format(&d);
    int fail = 0;
    if (good) {
        if (rc != 0 || !plan || sl_diags_errors(&d) > 0) {
            fprintf(stderr, "%s should compile (rc %d):\n%s", argv[2], rc, all ? all : "");
            fail = 1;
        } else {
            for (size_t i = 0; i < plan->nsubtasks; i++) {
                const sl_subtask_plan *s = &plan->subtasks[i];
                if (s->nphases < 1 || s->nphases > 2 || !s->phases[0] || s->phases[0]->nstages < 3 ||
                    s->phases[0]->nedges + 1 != s->phases[0]->nstages) {
                    fprintf(stderr, "%s: subtask %s has a malformed plan\n", argv[2], s->source_name);
                    fail = 1;
                }
            }
        }
    } else {
        char *ep = sidecar(argv[2], ".expect");
        size_t elen = 0;
        char *exp = ep ? slurp(ep, &elen) : NULL;
        if (!exp) {
            fprintf(stderr, "missing %s\n", ep ? ep : "expect file");
            fail = 1;
        } else if (rc == 0 || plan) {
            fprintf(stderr, "%s should fail but compiled\n", argv[2]);
            fail = 1;
        } else {
            int lines = 0;
            for (char *save = NULL, *l = strtok_r(exp, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
                int m = expected(&d, l);
                lines++;
                if (m != 1)
                    fail = 1;
            }
            if (!lines) {
                fprintf(stderr, "%s: empty expect file\n", ep);
                fail = 1;
            }
            if (fail)
                fprintf(stderr, "reported:\n%s", all ? all : "");
        }
        free(exp);
        free(ep);
    }
    free(all);
    free(fcopy);
    sl_task_plan_free(plan);
    sl_diags_free(&d);
    sl_source_defs_free(defs, nsrc);
    free(stext);
    free(sp);
    free(text);
    sl_registry_free(reg);
    return fail;
}
