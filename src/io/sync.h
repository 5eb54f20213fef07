/* Directory fsync, shared by the atomic writer and rg_make_dirs (private to
 * src/io). */
#ifndef REGAIN_IO_SYNC_H
#define REGAIN_IO_SYNC_H

/* fsync of the directory holding path, so that a rename or mkdir in it is
 * durable. Some file systems cannot fsync a directory (EINVAL): nothing
 * more can be done there, so that is not an error. 0 or -1 with errno. */
int rg_sync_parent_dir(const char *path);

#endif
