/* Content hashes of runs: SHA-256 (libcrypto) of text, of files, and of a
 * data set's files, with file checksums cached in the store by path, size
 * and modification time. */
#ifndef REGAIN_EXP_HASH_H
#define REGAIN_EXP_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "regain/status.h"
#include "regain/store.h"

/* Incremental SHA-256; rg_sha256_final writes 64 lowercase hex digits and a NUL. */
typedef struct rg_sha256 rg_sha256;
rg_status rg_sha256_begin(rg_sha256 **h, rg_error *err);
void rg_sha256_update(rg_sha256 *h, const void *data, size_t size);
void rg_sha256_final(rg_sha256 *h, char hex[65]);   /* frees h */

/* SHA-256 and size of a file, read whole. With a store (may be NULL) the
 * checksum is looked up and recorded under the file's real path and stamp
 * (size, mtime, ctime, inode). */
rg_status rg_exp_file_sha256(rg_store *s, const char *path, char hex[65], int64_t *bytes, rg_error *err);

/* Adds "name sha256" lines for every regular, non-hidden file of the data set
 * (the directory that `data` names: fashion-mnist or a path), sorted by name. */
rg_status rg_exp_hash_data(rg_store *s, const char *data, rg_sha256 *h, rg_error *err);

#endif
