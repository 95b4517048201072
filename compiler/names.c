/*
 * names.c - the names users give to sources and workers (compiler.h sl_name_check). They become
 * directory names, etcd keys, SQL values and URL path segments, so one documented, portable set:
 * ASCII letters, digits, '-', '_' and '.', starting with a letter or digit, at most
 * SL_NAME_MAX characters. Task names have a stricter rule of their own (task.c check_name).
 */
#include "sluice/compiler.h"

#include <string.h>

static int alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

const char *sl_name_rule(void)
{
    return "must be 1-64 characters: ASCII letters, digits, '-', '_' and '.', starting with a "
           "letter or digit";
}

int sl_name_check(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > SL_NAME_MAX || !alnum(s[0]))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return 0;
    return 1;
}
