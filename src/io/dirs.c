/* Directories made on the way to a path (regain/fileio.h). */
#include "regain/fileio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

rg_status rg_make_dirs(const char *path, rg_error *err)
{
    size_t n = strlen(path);
    char *buf = rg_malloc(n + 1, err);
    if (!buf) return RG_ERR_NOMEM;
    memcpy(buf, path, n + 1);
    rg_status st = RG_OK;
    for (char *p = buf + 1; !st; p++) {
        if (*p != '/' && *p) continue;
        char c = *p;
        *p = 0;
        struct stat sb;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            st = rg_fail(err, RG_ERR_IO, "%s: cannot create directory: %s", buf, strerror(errno));
        else if (stat(buf, &sb) != 0 || !S_ISDIR(sb.st_mode))
            st = rg_fail(err, RG_ERR_IO, "%s: cannot create directory: a file of that name is in the way", buf);
        *p = c;
        if (!c) break;
    }
    free(buf);
    return st;
}
