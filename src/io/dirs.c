/* Directories made on the way to a path (regain/fileio.h). */
#include "regain/fileio.h"
#include "io/sync.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

rg_status rg_make_dirs(const char *path, rg_error *err)
{
    if (!path || !*path) return rg_fail(err, RG_ERR_ARG, "cannot create a directory with an empty name");
    size_t n = strlen(path);
    char *buf = rg_malloc(n + 1, err);
    if (!buf) return RG_ERR_NOMEM;
    memcpy(buf, path, n + 1);
    rg_status st = RG_OK;
    /* a leading '/' is the root, not a directory to make */
    for (char *p = buf + (buf[0] == '/'); !st; p++) {
        if (*p != '/' && *p) continue;
        char c = *p;
        *p = 0;
        struct stat sb;
        int made = mkdir(buf, 0777) == 0;
        if (!made && errno != EEXIST)
            st = rg_fail(err, RG_ERR_IO, "%s: cannot create directory: %s", buf, strerror(errno));
        else if (stat(buf, &sb) != 0 || !S_ISDIR(sb.st_mode))
            st = rg_fail(err, RG_ERR_IO, "%s: cannot create directory: a file of that name is in the way", buf);
        /* the new entry must survive a crash as the files later committed in it do */
        else if (made && rg_sync_parent_dir(buf) != 0)
            st = rg_fail(err, RG_ERR_IO, "%s: cannot sync the directory holding it: %s", buf, strerror(errno));
        *p = c;
        if (!c) break;
    }
    free(buf);
    return st;
}

rg_status rg_make_parent_dirs(const char *path, rg_error *err)
{
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path) return RG_OK;
    char dir[4096];
    if ((size_t)(slash - path) >= sizeof dir) return rg_fail(err, RG_ERR_ARG, "%s: path is too long", path);
    memcpy(dir, path, (size_t)(slash - path));
    dir[slash - path] = 0;
    return rg_make_dirs(dir, err);
}
