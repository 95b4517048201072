/*
 * file.h - reading a whole small file (a task, a script, a manifest) into memory, bounded. Part
 * of the plugin SDK (sdk/file.c): the CLI, the compiler and plugins share it.
 */
#ifndef SLUICE_FILE_H
#define SLUICE_FILE_H

#include <stddef.h>
#include "err.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Read the file at path ("-" = standard input) into a malloc'd buffer with a NUL after the last
 * byte (the content may hold NULs itself: use *len). max bounds the size in bytes (0 = no
 * bound). Returns 0 with *out (caller frees with free()) and *len; otherwise *out = NULL and
 * err->msg holds only the reason, for the caller to put after the path: SL_ENOENT (no such file),
 * SL_EIO (strerror of open or read), SL_ELIMIT ("larger than N bytes"), SL_ENOMEM.
 * Thread-safe.
 */
int sl_file_read(const char *path, size_t max, char **out, size_t *len, sl_error *err);

#ifdef __cplusplus
}
#endif
#endif
