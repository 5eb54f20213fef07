/* The files `regain export --c` copies verbatim into an exported library
 * (internal): the integer reference kernels and their headers, the
 * self-check program and the board support files, embedded at build time
 * by cmake/embed_files.cmake (the list is in CMakeLists.txt). */
#ifndef REGAIN_DEPLOY_EXPORT_FILES_H
#define REGAIN_DEPLOY_EXPORT_FILES_H

#include <stddef.h>

typedef struct {
    const char *path;           /* relative to the export directory */
    const unsigned char *data;  /* size bytes (and a NUL after them) */
    size_t size;
} rg_export_file;

extern const rg_export_file rg_export_c_files[];
extern const int rg_export_c_n_files;

#endif
