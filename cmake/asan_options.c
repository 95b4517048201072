/*
 * asan_options.c - defaults the AddressSanitizer runtime reads before ASAN_OPTIONS (which can
 * still override them), linked into every executable of a -DSLUICE_ASAN=ON build.
 *
 * intercept_tls_get_addr=0: up to GCC 13 (and LLVM 16) the runtime's __tls_get_addr interceptor
 * takes a dynamic TLS block whose address is 16 bytes past a page boundary for one with glibc
 * 2.19's header, and reads the two words before it as the block's range. Since glibc 2.25 there
 * is no such header: the blocks of the libraries our dlopen'ed plugins pull in are malloc'd, so
 * whether one lands on that offset depends on the allocations before it. When one does,
 * LeakSanitizer's tracer scans the bogus range at exit and dies ("Tracer caught signal 11"), a
 * test failing with no leak found. Seen in integration_full (3 of 3 runs of one loader change)
 * and in the compiler's corpus tests (10 of 10 runs of one build, 0 of 20 of the next). Without
 * the interceptor glibc's blocks are ordinary heap chunks, reached from the thread's DTV, so
 * leaks are still found: a leak of sluice-full-run is reported either way.
 *
 * Weak, so that a test with defaults of its own (test_pipeline_10m) defines them in full.
 */
const char *__asan_default_options(void);

__attribute__((weak, visibility("default"), used)) const char *__asan_default_options(void)
{
    return "intercept_tls_get_addr=0";
}
