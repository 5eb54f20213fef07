#include "test_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

void rgt_tmpdir(char *buf, size_t size)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    snprintf(buf, size, "%s/regain-test-XXXXXX", base);
    if (!mkdtemp(buf)) fail_msg("cannot create a temporary directory under %s", base);
}

void rgt_rmtree(const char *dir)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    rgt_run(cmd, NULL, 0);
}

void rgt_write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f) fail_msg("cannot write %s", path);
    if (size && fwrite(data, 1, size, f) != size) fail_msg("short write to %s", path);
    fclose(f);
}

void *rgt_read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot read %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *p = malloc((size_t)n + 1);
    if (!p || fread(p, 1, (size_t)n, f) != (size_t)n) fail_msg("cannot read %s", path);
    fclose(f);
    ((char *)p)[n] = 0;
    *size = (size_t)n;
    return p;
}

int rgt_run(const char *cmd, char *out, size_t out_size)
{
    char full[8192];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    if (!p) return -1;
    size_t used = 0;
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, p)) > 0) {
        if (out && used + 1 < out_size) {
            size_t take = got < out_size - 1 - used ? got : out_size - 1 - used;
            memcpy(out + used, chunk, take);
            used += take;
        }
    }
    if (out && out_size) out[used] = 0;
    int st = pclose(p);
    if (st == -1) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

const char *rgt_env(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v) fail_msg("environment variable %s is not set (run the tests through ctest)", name);
    return v;
}
