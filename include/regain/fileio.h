/* regain — whole-file reads and atomic file writes.
 *
 * A checkpoint, a report or an experiment record must never be left half
 * written: a run killed mid-write (or a full disk) has to leave either the
 * old file or the new one, never a mixture. Writes therefore go to a
 * temporary file "<path>.tmp.<pid>.<tid>" in the same directory (rename is only
 * atomic within one file system), which is flushed, fsync'ed and renamed over
 * the target; the directory is then fsync'ed so the rename itself survives a
 * power cut.
 *
 *     rg_atomic_file *f;
 *     if (rg_atomic_open("run/ckpt.safetensors", &f, &err) != RG_OK) return err.code;
 *     if (rg_atomic_write(f, header, n, &err) != RG_OK) { rg_atomic_abort(f); return err.code; }
 *     return rg_atomic_commit(f, &err);   // f is freed either way
 *
 * Every error is RG_ERR_IO (or RG_ERR_NOMEM / RG_ERR_ARG) with a message that
 * starts with the target path and ends with strerror(errno).
 */
#ifndef REGAIN_FILEIO_H
#define REGAIN_FILEIO_H

#include <stddef.h>

#include "regain/status.h"

typedef struct rg_atomic_file rg_atomic_file;

/* Creates the temporary file "<path>.tmp.<pid>.<tid>" next to path (a stale one
 * left by an earlier process with the same ids is replaced) and returns a
 * handle in *out. The target itself is not touched until rg_atomic_commit.
 * On error *out is NULL and nothing is left on disk. */
rg_status rg_atomic_open(const char *path, rg_atomic_file **out, rg_error *err);

/* Appends size bytes to the temporary file. On error the handle stays valid
 * but is marked failed: the caller must still call rg_atomic_abort (or
 * rg_atomic_commit, which will then fail and clean up). */
rg_status rg_atomic_write(rg_atomic_file *f, const void *data, size_t size, rg_error *err);

/* Flushes and fsyncs the temporary file, renames it over the target and
 * fsyncs the directory. Always frees f; on error the temporary file is
 * removed and the target is unchanged (unless only the final directory fsync
 * failed, in which case the new content is in place but may not be durable). */
rg_status rg_atomic_commit(rg_atomic_file *f, rg_error *err);

/* Closes and removes the temporary file and frees f. NULL is a no-op. */
void rg_atomic_abort(rg_atomic_file *f);

/* Whether a file name is one of rg_atomic_open's temporary files: a
 * non-empty target name, then ".tmp.<pid>.<tid>" (both decimal). */
int rg_is_temp_name(const char *name);

/* Removes the temporary files of rg_atomic_open ("<name>.tmp.<pid>.<tid>")
 * that dir holds: a process killed mid-write leaves one behind. Only for a
 * directory that no other process writes meanwhile (its caller holds the
 * directory's lock). Returns how many it removed; an unreadable directory
 * removes nothing. */
int rg_remove_stale_temps(const char *dir);

/* Creates path and the directories above it that are missing (mkdir -p),
 * each made durable (its parent fsync'ed); an error names the directory
 * that could not be made. An empty path is RG_ERR_ARG. */
rg_status rg_make_dirs(const char *path, rg_error *err);
/* rg_make_dirs for the directory part of a file path (nothing when it has none). */
rg_status rg_make_parent_dirs(const char *path, rg_error *err);

/* Replaces path with the size bytes at data, atomically (open, write, commit). */
rg_status rg_write_file_atomic(const char *path, const void *data, size_t size, rg_error *err);

/* Reads the whole of path into a new buffer *data (caller frees with free();
 * one extra NUL byte follows the content so text can be used as a C string)
 * and its length into *size. Fails with RG_ERR_IO if the file cannot be read
 * or is not a regular file, and with RG_ERR_FORMAT if it is larger than
 * max_size bytes. On error *data is NULL and *size is 0. */
rg_status rg_read_file(const char *path, size_t max_size, void **data, size_t *size, rg_error *err);

#endif
