/* Helpers shared by the test programs (cmocka is the harness). */
#ifndef REGAIN_TEST_SUPPORT_H
#define REGAIN_TEST_SUPPORT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "regain/safetensors.h"
#include "regain/status.h"

/* The error record of CHECK: CHECK(call) fails the test, with the call and
 * its message, unless call (which reports into &E) returns RG_OK. */
extern rg_error E;
#define CHECK(call)                                                                                          \
    do {                                                                                                     \
        memset(&E, 0, sizeof E);                                                                             \
        if ((call) != RG_OK) fail_msg("%s failed: %s", #call, E.msg);                                        \
    } while (0)

/* A fresh empty directory under $TMPDIR (or /tmp) for this test; the path is
 * written into buf. Fails the test if it cannot be made. */
void rgt_tmpdir(char *buf, size_t size);
/* Removes a directory tree made by rgt_tmpdir (errors ignored). */
void rgt_rmtree(const char *dir);
/* A cmocka setup and teardown that give each test its own fresh temporary
 * directory: *state is an rgt_dir, removed with its contents afterwards. */
typedef struct {
    char dir[512];
} rgt_dir;
int rgt_dir_setup(void **state);
int rgt_dir_teardown(void **state);
/* Writes bytes to path; fails the test on error. */
void rgt_write_file(const char *path, const void *data, size_t size);
/* Reads a whole file; *size receives its length. Caller frees. */
void *rgt_read_file(const char *path, size_t *size);
/* Runs a shell command, returns its exit status (or -1); stdout+stderr go to
 * out (NUL-terminated, truncated to out_size) when out is not NULL. */
int rgt_run(const char *cmd, char *out, size_t out_size);
/* Path of a directory given by an environment variable set by ctest. */
const char *rgt_env(const char *name);

/* The test program's scratch directory: made by rgt_root_setup, removed by
 * rgt_root_teardown (cmocka group fixtures, or called from the program's
 * own). */
extern char rgt_root[512];
int rgt_root_setup(void **state);
int rgt_root_teardown(void **state);
/* "rgt_root/name", in one of 8 rotating buffers (valid for 7 more calls). */
const char *rgt_in_root(const char *name);
/* Writes a text file rgt_root/name. */
void rgt_write_text(const char *name, const char *text);

/* Runs the regain command named by the environment variable cli_env
 * (REGAIN_CLI, or REGAIN_CLI_SAN for the sanitizer build) with the printf-
 * formatted arguments, in the directory rgt_root; its output goes to out.
 * Returns the exit status. */
int rgt_cli(const char *cli_env, char *out, size_t out_size, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* The same, then fails the test unless the exit status is want_code, the
 * output holds word1 and word2 (each when not NULL) and no sanitizer spoke. */
void rgt_expect_cli(const char *cli_env, char *out, size_t out_size, int want_code, const char *word1,
                    const char *word2, const char *fmt, ...) __attribute__((format(printf, 7, 8)));

/* Fails the test, saying how to install it, unless the Fashion-MNIST
 * package's files are there. */
void rgt_require_fashion_mnist(void);
/* Writes the n tensors t to path with f's metadata, less its checksum
 * (rg_st_write adds one for the new contents): how a test edits a checkpoint
 * into a damaged one that still passes the file-level checks. Fails the test
 * on error. */
void rgt_rewrite_checkpoint(const char *path, const rg_st_file *f, const rg_st_tensor *t, int32_t n);
/* A small network (stem, one inverted residual block, head, dropout, fc) on
 * 28x28x1 that trains in seconds: a model spec text. */
extern const char rgt_tiny_spec[];

#endif
