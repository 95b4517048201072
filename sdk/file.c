/*
 * file.c - sl_file_read (file.h): a whole file into memory, bounded, one implementation for the
 * CLI, the compiler and the plugins.
 */
#include "sluice/file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sl_file_read(const char *path, size_t max, char **out, size_t *lenp, sl_error *err)
{
    *out = NULL;
    *lenp = 0;
    int is_stdin = strcmp(path, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f)
        return sl_error_set(err, errno == ENOENT ? SL_ENOENT : SL_EIO, "%s", strerror(errno));
    size_t cap = max && max < 4096 ? max : 4096, len = 0;
    char *b = malloc(cap + 1);
    int rc = b ? 0 : sl_error_set(err, SL_ENOMEM, "out of memory");
    while (rc == 0) {
        if (len == cap) {
            if (max && cap >= max) {
                char extra;
                if (fread(&extra, 1, 1, f) != 0)
                    rc = sl_error_set(err, SL_ELIMIT, "larger than %zu bytes", max);
                break;
            }
            size_t ncap = max && cap * 2 > max ? max : cap * 2;
            char *nb = realloc(b, ncap + 1);
            if (!nb) {
                rc = sl_error_set(err, SL_ENOMEM, "out of memory");
                break;
            }
            b = nb;
            cap = ncap;
        }
        size_t r = fread(b + len, 1, cap - len, f);
        len += r;
        if (r == 0)
            break;
    }
    if (rc == 0 && ferror(f))
        rc = sl_error_set(err, SL_EIO, "read error: %s", strerror(errno));
    if (!is_stdin)
        fclose(f);
    if (rc != 0) {
        free(b);
        return rc;
    }
    b[len] = '\0';
    *out = b;
    *lenp = len;
    return 0;
}
