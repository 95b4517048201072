/*
 * api.h - the sluice server as a library: the DM OpenAPI over HTTP (libmicrohttpd), the metadata
 * store, and the subtask manager that runs compiled tasks. cmd/sluice-server/main.c is a thin
 * wrapper around sl_api_new / sl_api_free.
 */
#ifndef SLUICE_API_H
#define SLUICE_API_H

#include <stdatomic.h>
#include <stddef.h>
#include "sluice/err.h"

typedef struct sl_api sl_api;

typedef struct sl_api_opts {
    const char *addr;        /* "HOST:PORT" to listen on; NULL = "127.0.0.1:8261" */
    const char *data_dir;    /* created if missing; NULL = "./sluice-data" */
    const char *plugin_dir;  /* NULL = sl_default_plugin_dir() */
    size_t      body_limit;  /* largest request body in bytes (0 = 8 MiB); larger -> 413 */
    unsigned    http_threads;/* HTTP worker threads (0 = two per CPU, at least 4) */
    int         openapi;     /* serve /api/v1 (DM's `openapi = true`); 0 answers 404 everywhere */
    const char *auth_token;  /* if set: every request needs `Authorization: Bearer <token>`
                              * (401 otherwise); copied, never logged */
    const char *ssl_cert;    /* PEM files: with ssl_cert and ssl_key the API is HTTPS only */
    const char *ssl_key;
    const char *ssl_ca;      /* with HTTPS: a client certificate signed by this CA is required */
    const char *cert_allowed_cn; /* with ssl_ca: comma-separated common names a client
                              * certificate must have one of (DM's cert-allowed-cn) */
    const atomic_int *cancel;/* if set (non-zero) while sl_api_new runs, it stops between
                              * steps (and between restored objects) and returns SL_ESTOPPED:
                              * a stop signal during a long startup. NULL = never */
    const char *etcd;        /* cluster mode (issue 13): the metadata store is this etcd
                              * ("URL[,URL...]") instead of DATA_DIR/meta.db, and the process
                              * joins the cluster as role/name. NULL = the embedded default */
    const char *role;        /* with etcd: "master", "worker" or "all" */
    const char *name;        /* with etcd: this member's name */
    const char *advertise_addr; /* with etcd: where other members reach this API (NULL = addr) */
    const char *etcd_root;   /* with etcd: the key prefix of this cluster (NULL = "/sluice"), so
                              * clusters (and tests) can share one etcd */
    long        lease_ttl;   /* with etcd: the member lease's TTL in seconds (0 = 10) */
} sl_api_opts;

/* Open the data dir (metadata store, secret key), load plugins, restore every source and task
 * (restarting the subtasks that were Running) and start serving HTTP. Returns 0 and *out, or a
 * negative code with err filled (e.g. address in use; SL_ESTOPPED when opts->cancel was set
 * during startup, with everything opened so far closed again). Caller frees with sl_api_free. */
int  sl_api_new(const sl_api_opts *opts, sl_api **out, sl_error *err);

/* The port actually listened on (useful with port 0). */
unsigned sl_api_port(const sl_api *a);

/* Stop serving HTTP, stop every running pipeline (their persisted stage stays Running so a
 * restart resumes them), close the store and free. NULL is fine. */
void sl_api_free(sl_api *a);

#endif
