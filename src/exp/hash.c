/* SHA-256 through libcrypto's EVP interface; file checksums cached in the
 * store. */
#include "exp/hash.h"
#include "regain/data.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct rg_sha256 {
    EVP_MD_CTX *ctx;
};

rg_status rg_sha256_begin(rg_sha256 **h, rg_error *err)
{
    *h = rg_calloc(1, sizeof **h, err);
    if (!*h) return RG_ERR_NOMEM;
    (*h)->ctx = EVP_MD_CTX_new();
    if (!(*h)->ctx || EVP_DigestInit_ex((*h)->ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free((*h)->ctx);
        free(*h);
        *h = NULL;
        return rg_fail(err, RG_ERR_NOMEM, "cannot start a SHA-256 digest (libcrypto)");
    }
    return RG_OK;
}

void rg_sha256_update(rg_sha256 *h, const void *data, size_t size) { EVP_DigestUpdate(h->ctx, data, size); }

void rg_sha256_final(rg_sha256 *h, char hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(h->ctx, md, &n);
    for (unsigned int i = 0; i < n && i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
    hex[64] = 0;
    EVP_MD_CTX_free(h->ctx);
    free(h);
}

static rg_status hash_file_contents(const char *path, char hex[65], rg_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return rg_fail(err, errno == ENOENT ? RG_ERR_NOTFOUND : RG_ERR_IO, "%s: %s", path, strerror(errno));
    rg_sha256 *h;
    rg_status st = rg_sha256_begin(&h, err);
    if (st) {
        fclose(f);
        return st;
    }
    unsigned char buf[1 << 16];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) rg_sha256_update(h, buf, got);
    int bad = ferror(f);
    fclose(f);
    rg_sha256_final(h, hex);
    return bad ? rg_fail(err, RG_ERR_IO, "%s: read error", path) : RG_OK;
}

rg_status rg_exp_file_sha256(rg_store *s, const char *path, char hex[65], int64_t *bytes, rg_error *err)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return rg_fail(err, errno == ENOENT ? RG_ERR_NOTFOUND : RG_ERR_IO, "%s: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode)) return rg_fail(err, RG_ERR_IO, "%s: not a regular file", path);
    if (bytes) *bytes = (int64_t)sb.st_size;
    char real[PATH_MAX];
    if (!s || !realpath(path, real)) return hash_file_contents(path, hex, err);
    const rg_file_stamp stamp = {
        .size = (int64_t)sb.st_size,
        .mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec,
        .ctime_ns = (int64_t)sb.st_ctim.tv_sec * 1000000000 + sb.st_ctim.tv_nsec,
        .inode = (int64_t)sb.st_ino,
    };
    int found;
    rg_status st = rg_store_get_file_hash(s, real, &stamp, hex, &found, err);
    if (st || found) return st;
    if ((st = hash_file_contents(path, hex, err))) return st;
    return rg_store_put_file_hash(s, real, &stamp, hex, err);
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

rg_status rg_exp_hash_data(rg_store *s, const char *data, rg_sha256 *h, rg_error *err)
{
    const char *dir = !strcmp(data, "fashion-mnist") ? RG_FASHION_MNIST_DIR : data;
    DIR *d = opendir(dir);
    if (!d)
        return rg_fail(err, errno == ENOENT ? RG_ERR_NOTFOUND : RG_ERR_IO, "data %s: cannot list %s: %s", data, dir,
                       strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    rg_status st = RG_OK;
    struct dirent *e;
    while (!st && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            char **p = realloc(names, cap * sizeof *p);
            if (!p) {
                st = rg_fail(err, RG_ERR_NOMEM, "out of memory");
                break;
            }
            names = p;
        }
        if (!(names[n] = strdup(e->d_name))) st = rg_fail(err, RG_ERR_NOMEM, "out of memory");
        else n++;
    }
    closedir(d);
    if (!st) qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; !st && i < n; i++) {
        char path[4096], hex[65];
        struct stat sb;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, names[i]) >= sizeof path) {
            st = rg_fail(err, RG_ERR_ARG, "%s: path too long", dir);
            break;
        }
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
        if ((st = rg_exp_file_sha256(s, path, hex, NULL, err))) break;
        rg_sha256_update(h, names[i], strlen(names[i]));
        rg_sha256_update(h, " ", 1);
        rg_sha256_update(h, hex, 64);
        rg_sha256_update(h, "\n", 1);
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return st;
}
