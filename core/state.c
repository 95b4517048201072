/*
 * state.c - the in-memory key/value store used behind host->state_put/state_get when a pipeline
 * is given no durable store: a mutex-guarded list (small values, few keys).
 */
#include "host.h"

#include <stdlib.h>
#include <string.h>

typedef struct kv { struct kv *next; char *key, *value; } kv;

typedef struct memstate {
    sl_state_store  iface;
    pthread_mutex_t mu;
    kv             *head;
} memstate;

static int mem_put(void *ud, const char *key, const char *value)
{
    memstate *m = ud;
    char *v = strdup(value ? value : "");
    if (!v)
        return SL_ENOMEM;
    pthread_mutex_lock(&m->mu);
    for (kv *e = m->head; e; e = e->next) {
        if (strcmp(e->key, key) == 0) {
            free(e->value);
            e->value = v;
            pthread_mutex_unlock(&m->mu);
            return 0;
        }
    }
    kv *e = malloc(sizeof *e);
    char *k = strdup(key);
    if (!e || !k) {
        pthread_mutex_unlock(&m->mu);
        free(e);
        free(k);
        free(v);
        return SL_ENOMEM;
    }
    e->key = k;
    e->value = v;
    e->next = m->head;
    m->head = e;
    pthread_mutex_unlock(&m->mu);
    return 0;
}

static char *mem_get(void *ud, const char *key)
{
    memstate *m = ud;
    char *v = NULL;
    pthread_mutex_lock(&m->mu);
    for (kv *e = m->head; e; e = e->next) {
        if (strcmp(e->key, key) == 0) {
            v = strdup(e->value);
            break;
        }
    }
    pthread_mutex_unlock(&m->mu);
    return v;
}

sl_state_store *sl__memstate_new(void)
{
    memstate *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    pthread_mutex_init(&m->mu, NULL);
    m->iface.ud = m;
    m->iface.put = mem_put;
    m->iface.get = mem_get;
    return &m->iface;
}

void sl__memstate_free(sl_state_store *st)
{
    if (!st)
        return;
    memstate *m = st->ud;
    for (kv *e = m->head, *n; e; e = n) {
        n = e->next;
        free(e->key);
        free(e->value);
        free(e);
    }
    pthread_mutex_destroy(&m->mu);
    free(m);
}
