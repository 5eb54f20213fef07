/* Helpers shared by the test programs (cmocka is the harness). */
#ifndef REGAIN_TEST_SUPPORT_H
#define REGAIN_TEST_SUPPORT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* A fresh empty directory under $TMPDIR (or /tmp) for this test; the path is
 * written into buf. Fails the test if it cannot be made. */
void rgt_tmpdir(char *buf, size_t size);
/* Removes a directory tree made by rgt_tmpdir (errors ignored). */
void rgt_rmtree(const char *dir);
/* Writes bytes to path; fails the test on error. */
void rgt_write_file(const char *path, const void *data, size_t size);
/* Reads a whole file; *size receives its length. Caller frees. */
void *rgt_read_file(const char *path, size_t *size);
/* Runs a shell command, returns its exit status (or -1); stdout+stderr go to
 * out (NUL-terminated, truncated to out_size) when out is not NULL. */
int rgt_run(const char *cmd, char *out, size_t out_size);
/* Path of a directory given by an environment variable set by ctest. */
const char *rgt_env(const char *name);

#endif
