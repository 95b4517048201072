/*
 * oscname.c - which tables belong to an online schema change tool (see oscname.h).
 */
#include "oscname.h"

#include <stdio.h>
#include <string.h>

static int is_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return n > 0;
}

int sl_osc_kind(const sl_rules *rules, const char *schema, const char *table, char *real,
                size_t rlen)
{
    if (table[0] != '_')
        return SL_OSC_NONE;
    size_t n = strlen(table);
    static const struct { const char *suffix; int kind; } sfx[] = {
        { "_gho", SL_OSC_GHOST }, { "_new", SL_OSC_GHOST }, { "_ghc", SL_OSC_TRASH },
        { "_ghk", SL_OSC_TRASH }, { "_del", SL_OSC_TRASH }, { "_old", SL_OSC_TRASH },
    };
    for (size_t i = 0; i < sizeof sfx / sizeof *sfx; i++) {
        if (n < 6 || strcmp(table + n - 4, sfx[i].suffix))
            continue;
        size_t end = n - 4;
        if (!strcmp(sfx[i].suffix, "_del") && end > 16 && table[end - 15] == '_' &&
            is_digits(table + end - 14, 14)) {
            /* _<t>_<timestamp>_del: the real table is <t> when a rule selects it */
            char tmp[256];
            snprintf(tmp, sizeof tmp, "%.*s", (int)(end - 16), table + 1);
            if (sl_rules_find(rules, schema, tmp) >= 0)
                end -= 15;
        }
        for (size_t lead = 1; lead < end && table[lead - 1] == '_'; lead++) {
            if (end - lead >= rlen)
                break;
            memcpy(real, table + lead, end - lead);
            real[end - lead] = '\0';
            if (sl_rules_find(rules, schema, real) >= 0)
                return sfx[i].kind;
        }
    }
    return SL_OSC_NONE;
}
