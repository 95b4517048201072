/*
 * regex.c - the PCRE2 plumbing of the matchers: caseless UTF patterns compiled with JIT, searched
 * with a per-thread match data under shared match limits (SL_MATCH_LIMIT, SL_MATCH_DEPTH), and
 * sl_regex_check for ignore_sql patterns.
 */
#include "sdk_int.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* One match data (one ovector pair: we only ask "does it match") per thread, freed at thread
 * exit; the match context with the limits is shared read-only. */
static pthread_once_t re_once = PTHREAD_ONCE_INIT;
static pthread_key_t re_key;
static pcre2_match_context *re_mctx;
static int re_inited;

static void md_free(void *p) { pcre2_match_data_free(p); }

static void re_init(void)
{
    pthread_key_create(&re_key, md_free);
    re_inited = 1;
    re_mctx = pcre2_match_context_create(NULL);
    if (re_mctx) {
        pcre2_set_match_limit(re_mctx, SL_MATCH_LIMIT);
        pcre2_set_depth_limit(re_mctx, SL_MATCH_DEPTH);
        pcre2_set_heap_limit(re_mctx, 64 * 1024);   /* KiB */
    }
}

/* When the library is unloaded (a plugin dlclosed) or the process ends: free the shared context
 * and delete the key, so no thread exiting later calls md_free in code that is gone. A thread
 * still alive then keeps its small match data until it exits. */
__attribute__((destructor)) static void re_fini(void)
{
    if (!re_inited)
        return;
    pcre2_match_context_free(re_mctx);
    re_mctx = NULL;
    pthread_key_delete(re_key);
}

static pcre2_match_data *thread_md(void)
{
    pthread_once(&re_once, re_init);
    pcre2_match_data *md = pthread_getspecific(re_key);
    if (!md) {
        md = pcre2_match_data_create(1, NULL);
        if (md && pthread_setspecific(re_key, md) != 0) {
            pcre2_match_data_free(md);
            md = NULL;
        }
    }
    return md;
}

/* Compiles a caseless UTF regex (JIT when available). Returns NULL with err filled. */
pcre2_code *sl__re_compile(const char *pat, size_t len, sl_error *err)
{
    int ec;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, len,
                                   PCRE2_CASELESS | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF,
                                   &ec, &off, NULL);
    if (!re) {
        PCRE2_UCHAR buf[256];
        if (pcre2_get_error_message(ec, buf, sizeof buf) < 0)
            snprintf((char *)buf, sizeof buf, "error %d", ec);
        sl_error_set(err, ec == PCRE2_ERROR_NOMEMORY ? SL_ENOMEM : SL_EINVAL, "%s at offset %zu",
               (const char *)buf, (size_t)off);
        return NULL;
    }
    /* JIT is an optimisation: a pattern JIT cannot handle still runs in the interpreter. */
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    return re;
}

/* 1 match, 0 no match, SL_ELIMIT when a limit was hit, SL_ENOMEM. */
int sl__re_search(const pcre2_code *re, const char *s, size_t len)
{
    pcre2_match_data *md = thread_md();
    if (!md)
        return SL_ENOMEM;
    int rc = pcre2_match(re, (PCRE2_SPTR)s, len, 0, 0, md, re_mctx);
    if (rc >= 0)
        return 1;
    switch (rc) {
    case PCRE2_ERROR_NOMATCH:
        return 0;
    case PCRE2_ERROR_MATCHLIMIT:
    case PCRE2_ERROR_DEPTHLIMIT:
    case PCRE2_ERROR_HEAPLIMIT:
    case PCRE2_ERROR_JIT_STACKLIMIT:
        return SL_ELIMIT;
    case PCRE2_ERROR_NOMEMORY:
        return SL_ENOMEM;
    default:
        return 0;
    }
}

int sl_regex_check(const char *pattern, sl_error *err)
{
    if (!pattern)
        return sl_error_set(err, SL_EINVAL, "no pattern");
    pcre2_code *re = sl__re_compile(pattern, strlen(pattern), err);
    if (!re)
        return err ? err->code : SL_EINVAL;
    pcre2_code_free(re);
    return 0;
}
