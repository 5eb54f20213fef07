#include "test_support.h"
#include <sys/stat.h>
#include "regain/data.h"

#include <stdarg.h>
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

int rgt_dir_setup(void **state)
{
    rgt_dir *d = calloc(1, sizeof *d);
    if (!d) return -1;
    rgt_tmpdir(d->dir, sizeof d->dir);
    *state = d;
    return 0;
}

int rgt_dir_teardown(void **state)
{
    rgt_dir *d = *state;
    rgt_rmtree(d->dir);
    free(d);
    return 0;
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

char rgt_root[512];
rg_error E;

int rgt_root_setup(void **state)
{
    (void)state;
    rgt_tmpdir(rgt_root, sizeof rgt_root);
    return 0;
}

int rgt_root_teardown(void **state)
{
    (void)state;
    rgt_rmtree(rgt_root);
    return 0;
}

const char *rgt_in_root(const char *name)
{
    static char buf[8][700];
    static int next;
    char *p = buf[next++ % 8];
    if ((size_t)snprintf(p, sizeof buf[0], "%s/%s", rgt_root, name) >= sizeof buf[0]) fail_msg("path too long");
    return p;
}

void rgt_write_text(const char *name, const char *text) { rgt_write_file(rgt_in_root(name), text, strlen(text)); }

static int run_cli(const char *cli_env, char *out, size_t out_size, char *args, size_t args_size, const char *fmt,
                   va_list ap)
{
    vsnprintf(args, args_size, fmt, ap);
    char cmd[5000];
    if ((size_t)snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s", rgt_root, rgt_env(cli_env), args) >= sizeof cmd)
        fail_msg("command too long");
    return rgt_run(cmd, out, out_size);
}

int rgt_cli(const char *cli_env, char *out, size_t out_size, const char *fmt, ...)
{
    char args[4096];
    va_list ap;
    va_start(ap, fmt);
    int code = run_cli(cli_env, out, out_size, args, sizeof args, fmt, ap);
    va_end(ap);
    return code;
}

void rgt_expect_cli(const char *cli_env, char *out, size_t out_size, int want_code, const char *word1,
                    const char *word2, const char *fmt, ...)
{
    char args[4096];
    va_list ap;
    va_start(ap, fmt);
    int code = run_cli(cli_env, out, out_size, args, sizeof args, fmt, ap);
    va_end(ap);
    if (strstr(out, "Sanitizer") || strstr(out, "runtime error"))
        fail_msg("regain %s: a sanitizer reported a problem:\n%s", args, out);
    if (code != want_code) fail_msg("regain %s: exit code %d, expected %d; output:\n%s", args, code, want_code, out);
    if (word1 && !strstr(out, word1)) fail_msg("regain %s: output lacks \"%s\":\n%s", args, word1, out);
    if (word2 && !strstr(out, word2)) fail_msg("regain %s: output lacks \"%s\":\n%s", args, word2, out);
}

void rgt_require_fashion_mnist(void)
{
    char p[600];
    struct stat sb;
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte.gz", RG_FASHION_MNIST_DIR);
    if (stat(p, &sb) != 0) fail_msg("%s is missing: install the fashion-mnist package (scripts/install-deps)", p);
}

void rgt_rewrite_checkpoint(const char *path, const rg_st_file *f, const rg_st_tensor *t, int32_t n)
{
    rg_st_meta *meta = calloc((size_t)rg_st_meta_count(f) + 1, sizeof *meta);
    assert_non_null(meta);
    int32_t kept = 0;
    for (int32_t i = 0; i < rg_st_meta_count(f); i++)
        if (strcmp(rg_st_meta_at(f, i)->key, "regain.crc32")) meta[kept++] = *rg_st_meta_at(f, i);
    rg_error err = {0};
    if (rg_st_write(path, t, n, meta, kept, &err) != RG_OK) fail_msg("rewriting %s: %s", path, err.msg);
    free(meta);
}

const char rgt_tiny_spec[] = "input h=28 w=28 c=1\n"
                             "conv name=stem c=8 k=3 s=2 bn act=relu6\n"
                             "ir name=b1 t=2 c=8 s=1\n"
                             "conv name=head c=32 k=1 bn act=relu6\n"
                             "gap\n"
                             "dropout p=0.2\n"
                             "fc name=fc n=10\n";
