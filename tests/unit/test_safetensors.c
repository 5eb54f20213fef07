/* safetensors checkpoints and atomic file writes: round trips, layout, error
 * messages of the happy-path API, and interoperability: we read a file a
 * foreign writer made from PyTorch tensors (committed golden), and, when
 * /usr/bin/python3 has torch, Python parses our files by hand. */
#include "test_support.h"

#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "regain/fileio.h"
#include "regain/safetensors.h"

#define NOTE "say \"hi\"\nline 2\t\u00fc\u65e5\U0001F600 \\ end"

static char dir[512];

static int setup(void **state)
{
    (void)state;
    rgt_tmpdir(dir, sizeof dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rgt_rmtree(dir);
    return 0;
}

static void path_in(char *buf, size_t size, const char *name) { snprintf(buf, size, "%s/%s", dir, name); }

/* Number of directory entries other than . and .. (temp files would show). */
static int count_entries(const char *d)
{
    DIR *dp = opendir(d);
    assert_non_null(dp);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dp)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(dp);
    return n;
}

static uint64_t le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int k = 7; k >= 0; k--) v = (v << 8) | p[k];
    return v;
}

/* The tensors used by the round-trip and Python tests: values k/8 - 2 are
 * exact in float, so Python can recompute them bit for bit. */
static float a_vals[6], w_vals[36], s_val = 3.25f;
static float special[6];

static void fill_values(void)
{
    for (int k = 0; k < 6; k++) a_vals[k] = (float)k / 8 - 2;
    for (int k = 0; k < 36; k++) w_vals[k] = (float)k / 8 - 2;
    special[0] = NAN;
    special[1] = -0.0f;
    special[2] = INFINITY;
    special[3] = -INFINITY;
    special[4] = 1e-45f; /* denormal */
    special[5] = 3.4028235e38f;
}

static int write_standard(const char *path)
{
    fill_values();
    const rg_st_tensor t[] = {
        {.name = "layer.0/w", .ndim = 2, .shape = {2, 3}, .data = a_vals},
        {.name = "s", .ndim = 0, .data = &s_val},
        {.name = "empty", .ndim = 2, .shape = {0, 4}, .data = NULL},
        {.name = "w", .ndim = 4, .shape = {4, 1, 3, 3}, .data = w_vals},
        {.name = "special", .ndim = 1, .shape = {6}, .data = special},
    };
    const rg_st_meta m[] = {{"note", NOTE}, {"empty", ""}, {"regain.model", "cnn-s"}};
    rg_error err = {0};
    rg_status st = rg_st_write(path, t, 5, m, 3, &err);
    if (st != RG_OK) fail_msg("rg_st_write: %s", err.msg);
    return 5;
}

/* ---- round trip --------------------------------------------------------- */

static void test_round_trip(void **state)
{
    (void)state;
    char path[600];
    path_in(path, sizeof path, "rt.safetensors");
    write_standard(path);

    rg_error err = {0};
    rg_st_file *f = NULL;
    rg_status st = rg_st_read(path, &f, &err);
    if (st != RG_OK) fail_msg("rg_st_read: %s", err.msg);
    assert_int_equal(rg_st_count(f), 5);

    const char *names[] = {"layer.0/w", "s", "empty", "w", "special"};
    const int32_t ndims[] = {2, 0, 2, 4, 1};
    const size_t sizes[] = {24, 4, 0, 144, 24};
    const float *vals[] = {a_vals, &s_val, NULL, w_vals, special};
    for (int i = 0; i < 5; i++) {
        const rg_st_tensor *t = rg_st_at(f, i);
        assert_non_null(t);
        assert_string_equal(t->name, names[i]);
        assert_int_equal(t->dtype, RG_ST_F32);
        assert_int_equal(t->ndim, ndims[i]);
        assert_int_equal(t->nbytes, sizes[i]);
        assert_non_null(t->data);
        assert_true((uintptr_t)t->data % 64 == 0);
        assert_ptr_equal(t->raw, t->data);
        if (sizes[i]) assert_memory_equal(t->data, vals[i], sizes[i]); /* bitwise: NaN, -0 too */
        assert_ptr_equal(rg_st_find(f, names[i]), t);
    }
    assert_int_equal(rg_st_at(f, 3)->shape[0], 4);
    assert_int_equal(rg_st_at(f, 3)->shape[3], 3);
    assert_int_equal(rg_st_at(f, 2)->shape[0], 0);
    assert_int_equal(rg_st_at(f, 2)->shape[1], 4);
    assert_null(rg_st_at(f, 5));
    assert_null(rg_st_at(f, -1));
    assert_null(rg_st_find(f, "nope"));
    assert_null(rg_st_find(f, ""));

    assert_int_equal(rg_st_meta_count(f), 4);
    assert_string_equal(rg_st_meta_get(f, "note"), NOTE);
    assert_string_equal(rg_st_meta_get(f, "empty"), "");
    assert_string_equal(rg_st_meta_get(f, "regain.model"), "cnn-s");
    assert_string_equal(rg_st_meta_at(f, 0)->key, "note");
    const char *crc = rg_st_meta_get(f, "regain.crc32");
    assert_non_null(crc);
    assert_int_equal(strlen(crc), 8);
    assert_int_equal(strspn(crc, "0123456789abcdef"), 8);
    assert_null(rg_st_meta_get(f, "missing"));
    assert_null(rg_st_meta_at(f, 4));

    float w[36] = {0};
    st = rg_st_copy(f, "w", 4, (const int64_t[]){4, 1, 3, 3}, w, &err);
    assert_int_equal(st, RG_OK);
    assert_memory_equal(w, w_vals, sizeof w);
    float sv = 0;
    assert_int_equal(rg_st_copy(f, "s", 0, NULL, &sv, &err), RG_OK);
    assert_true(sv == 3.25f);
    assert_int_equal(rg_st_copy(f, "empty", 2, (const int64_t[]){0, 4}, NULL, &err), RG_OK);
    rg_st_free(f);
}

static void test_no_tensors(void **state)
{
    (void)state;
    char path[600];
    path_in(path, sizeof path, "none.safetensors");
    rg_error err = {0};
    assert_int_equal(rg_st_write(path, NULL, 0, NULL, 0, &err), RG_OK);
    rg_st_file *f = NULL;
    if (rg_st_read(path, &f, &err) != RG_OK) fail_msg("%s", err.msg);
    assert_int_equal(rg_st_count(f), 0);
    assert_string_equal(rg_st_meta_get(f, "regain.crc32"), "00000000");
    rg_st_free(f);
}

/* ---- layout ------------------------------------------------------------- */

/* Header length a multiple of 8, padded with spaces, tensors contiguous in
 * the order given, right after the header: whatever the name lengths. */
static void test_header_alignment(void **state)
{
    (void)state;
    const float v[3] = {1.0f, -2.5f, 0.125f};
    for (int len = 1; len <= 17; len++) {
        char name[32], path[600];
        memset(name, 'n', (size_t)len);
        name[len] = 0;
        path_in(path, sizeof path, "align.safetensors");
        const rg_st_tensor t[] = {{.name = name, .ndim = 1, .shape = {3}, .data = v},
                                  {.name = "b", .ndim = 1, .shape = {1}, .data = v + 2}};
        rg_error err = {0};
        assert_int_equal(rg_st_write(path, t, 2, NULL, 0, &err), RG_OK);
        size_t size;
        unsigned char *bytes = rgt_read_file(path, &size);
        uint64_t n = le64(bytes);
        assert_int_equal(n % 8, 0);
        assert_int_equal(size, 8 + n + 16);
        assert_int_equal(bytes[8], '{');
        size_t last = 8 + (size_t)n - 1;
        while (bytes[last] == ' ') last--;
        assert_int_equal(bytes[last], '}');
        assert_true(8 + n - 1 - last < 8); /* padding only, never a whole word */
        assert_memory_equal(bytes + 8 + n, v, 12);
        assert_memory_equal(bytes + 8 + n + 12, v + 2, 4);
        free(bytes);
    }
}

/* ---- rg_st_copy errors -------------------------------------------------- */

static void test_copy_errors(void **state)
{
    (void)state;
    char path[600];
    path_in(path, sizeof path, "copy.safetensors");
    write_standard(path);
    rg_error err = {0};
    rg_st_file *f = NULL;
    assert_int_equal(rg_st_read(path, &f, &err), RG_OK);

    float dst[36];
    rg_status st = rg_st_copy(f, "layer.0/w", 2, (const int64_t[]){3, 2}, dst, &err);
    assert_int_equal(st, RG_ERR_SHAPE);
    assert_int_equal(strncmp(err.msg, path, strlen(path)), 0);
    assert_non_null(strstr(err.msg, "layer.0/w"));
    assert_non_null(strstr(err.msg, "[2, 3]"));
    assert_non_null(strstr(err.msg, "[3, 2]"));

    st = rg_st_copy(f, "w", 3, (const int64_t[]){4, 3, 3}, dst, &err);
    assert_int_equal(st, RG_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "[4, 1, 3, 3]"));
    assert_non_null(strstr(err.msg, "[4, 3, 3]"));

    st = rg_st_copy(f, "s", 1, (const int64_t[]){1}, dst, &err);
    assert_int_equal(st, RG_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "[]"));

    st = rg_st_copy(f, "conv9.w", 1, (const int64_t[]){1}, dst, &err);
    assert_int_equal(st, RG_ERR_NOTFOUND);
    assert_int_equal(strncmp(err.msg, path, strlen(path)), 0);
    assert_non_null(strstr(err.msg, "conv9.w"));
    rg_st_free(f);
}

/* ---- writer argument checks --------------------------------------------- */

static void expect_write_error(const char *path, const rg_st_tensor *t, int32_t n, const rg_st_meta *m,
                               int32_t n_meta, rg_status code, const char *word)
{
    rg_error err = {0};
    rg_status st = rg_st_write(path, t, n, m, n_meta, &err);
    if (st != code || !strstr(err.msg, word) || strncmp(err.msg, path, strlen(path)) != 0)
        fail_msg("expected %s with '%s', got %s: %s", rg_status_name(code), word, rg_status_name(st), err.msg);
    assert_int_equal(count_entries(dir), 0); /* nothing written, no temp file */
}

static void test_write_rejects(void **state)
{
    (void)state;
    char path[600];
    path_in(path, sizeof path, "w.safetensors");
    const float v[4] = {0};
    rg_st_tensor t[2] = {{.name = "a", .ndim = 1, .shape = {2}, .data = v},
                         {.name = "a", .ndim = 1, .shape = {2}, .data = v}};
    expect_write_error(path, t, 2, NULL, 0, RG_ERR_ARG, "duplicate tensor name 'a'");
    t[1].name = "";
    expect_write_error(path, t, 2, NULL, 0, RG_ERR_ARG, "empty name");
    t[1].name = NULL;
    expect_write_error(path, t, 2, NULL, 0, RG_ERR_ARG, "empty name");
    t[1].name = "__metadata__";
    expect_write_error(path, t, 2, NULL, 0, RG_ERR_ARG, "reserved");
    t[1].name = "bad\xff";
    expect_write_error(path, t, 2, NULL, 0, RG_ERR_ARG, "UTF-8");
    t[1].name = "b";
    t[1].shape[0] = -2;
    expect_write_error(path, t, 2, NULL, 0, RG_ERR_ARG, "negative");
    t[1].ndim = 2; /* empty, but a dimension the reader could not take back */
    t[1].shape[0] = (int64_t)1 << 60;
    t[1].shape[1] = 0;
    expect_write_error(path, t, 2, NULL, 0, RG_ERR_ARG, "too large");
    t[1].shape[0] = 2;
    t[1].ndim = 9;
    expect_write_error(path, t, 2, NULL, 0, RG_ERR_ARG, "ndim");
    t[1].ndim = 1;
    t[1].data = NULL;
    expect_write_error(path, t, 2, NULL, 0, RG_ERR_ARG, "NULL");
    t[1].data = v;
    t[1].dtype = RG_ST_I32;
    expect_write_error(path, t, 2, NULL, 0, RG_ERR_UNSUPPORTED, "F32");
    t[1].dtype = RG_ST_F32;

    const rg_st_meta dup[] = {{"k", "1"}, {"k", "2"}};
    expect_write_error(path, t, 2, dup, 2, RG_ERR_ARG, "duplicate metadata key 'k'");
    const rg_st_meta crc[] = {{"regain.crc32", "00000000"}};
    expect_write_error(path, t, 2, crc, 1, RG_ERR_ARG, "reserved");
    const rg_st_meta nul[] = {{"k", NULL}};
    expect_write_error(path, t, 2, nul, 1, RG_ERR_ARG, "NULL");
}

/* ---- atomic writes ------------------------------------------------------ */

static void test_atomic_replaces_and_leaves_no_temp(void **state)
{
    (void)state;
    char path[600], tmp[700];
    path_in(path, sizeof path, "ckpt.safetensors");
    rgt_write_file(path, "old content", 11);
    /* A stale temp file with our pid and thread id (left by a killed
     * earlier process). */
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%ld", path, (long)getpid(), (long)syscall(SYS_gettid));
    rgt_write_file(tmp, "stale", 5);

    write_standard(path);
    assert_int_equal(count_entries(dir), 1);
    assert_int_equal(access(tmp, F_OK), -1);
    rg_error err = {0};
    rg_st_file *f = NULL;
    assert_int_equal(rg_st_read(path, &f, &err), RG_OK);
    assert_int_equal(rg_st_count(f), 5);
    rg_st_free(f);

    /* Plain bytes, then read back with rg_read_file. */
    assert_int_equal(rg_write_file_atomic(path, "hello", 5, &err), RG_OK);
    assert_int_equal(count_entries(dir), 1);
    void *data = NULL;
    size_t size = 0;
    assert_int_equal(rg_read_file(path, 100, &data, &size, &err), RG_OK);
    assert_int_equal(size, 5);
    assert_string_equal(data, "hello"); /* NUL-terminated */
    free(data);
    assert_int_equal(rg_read_file(path, 4, &data, &size, &err), RG_ERR_FORMAT);
    assert_null(data);
    assert_int_equal(strncmp(err.msg, path, strlen(path)), 0);
    assert_non_null(strstr(err.msg, "too large"));

    /* Abort leaves the target as it was and no temp file. */
    rg_atomic_file *af = NULL;
    assert_int_equal(rg_atomic_open(path, &af, &err), RG_OK);
    assert_int_equal(rg_atomic_write(af, "xyz", 3, &err), RG_OK);
    assert_int_equal(count_entries(dir), 2);
    rg_atomic_abort(af);
    assert_int_equal(count_entries(dir), 1);
    char *back = rgt_read_file(path, &size);
    assert_string_equal(back, "hello");
    free(back);

    /* Empty file. */
    assert_int_equal(rg_write_file_atomic(path, NULL, 0, &err), RG_OK);
    assert_int_equal(rg_read_file(path, 0, &data, &size, &err), RG_OK);
    assert_int_equal(size, 0);
    free(data);
}

/* Only rg_atomic_open's own temporary names are removed, and only files. */
static void test_remove_stale_temps(void **state)
{
    (void)state;
    static const char *const stale[] = {"a.safetensors.tmp.12.34", "x.tmp.1.tmp.5.6"};
    static const char *const kept[] = {"a.safetensors", "notes.tmp.txt", ".tmp.1.2", "a.tmp.1.2.bak",
                                       "a.tmp.1", "a.tmp.1.", "a.tmp..2", "a.tmp.1.2x"};
    char path[700];
    for (size_t k = 0; k < sizeof stale / sizeof stale[0]; k++) {
        path_in(path, sizeof path, stale[k]);
        rgt_write_file(path, "x", 1);
    }
    for (size_t k = 0; k < sizeof kept / sizeof kept[0]; k++) {
        path_in(path, sizeof path, kept[k]);
        rgt_write_file(path, "x", 1);
    }
    path_in(path, sizeof path, "d.tmp.7.8"); /* a directory of that name stays */
    assert_int_equal(mkdir(path, 0777), 0);
    assert_int_equal(rg_remove_stale_temps(dir), 2);
    for (size_t k = 0; k < sizeof stale / sizeof stale[0]; k++) {
        path_in(path, sizeof path, stale[k]);
        assert_int_equal(access(path, F_OK), -1);
    }
    for (size_t k = 0; k < sizeof kept / sizeof kept[0]; k++) {
        path_in(path, sizeof path, kept[k]);
        assert_int_equal(access(path, F_OK), 0);
    }
    path_in(path, sizeof path, "no-such-dir");
    assert_int_equal(rg_remove_stale_temps(path), 0);
}

static void test_atomic_missing_dir(void **state)
{
    (void)state;
    char path[600];
    path_in(path, sizeof path, "no/such/dir/x.bin");
    rg_error err = {0};
    assert_int_equal(rg_write_file_atomic(path, "x", 1, &err), RG_ERR_IO);
    assert_int_equal(strncmp(err.msg, path, strlen(path)), 0);
    assert_non_null(strstr(err.msg, "No such file"));
    assert_int_equal(rg_st_write(path, NULL, 0, NULL, 0, &err), RG_ERR_IO);
    assert_int_equal(strncmp(err.msg, path, strlen(path)), 0);
}

/* mkdir -p: nested directories made, existing ones kept, a file in the
 * way and an empty name refused with the name in the message. */
static void test_make_dirs(void **state)
{
    (void)state;
    char path[600], file[600];
    rg_error err = {0};
    path_in(path, sizeof path, "a/b/c");
    assert_int_equal(rg_make_dirs(path, &err), RG_OK);
    assert_int_equal(rg_make_dirs(path, &err), RG_OK);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
    path_in(file, sizeof file, "a/f");
    rgt_write_file(file, "x", 1);
    path_in(path, sizeof path, "a/f/g");
    assert_int_equal(rg_make_dirs(path, &err), RG_ERR_IO);
    assert_int_equal(strncmp(err.msg, file, strlen(file)), 0);
    assert_non_null(strstr(err.msg, "in the way"));
    assert_int_equal(rg_make_dirs("", &err), RG_ERR_ARG);
    assert_non_null(strstr(err.msg, "empty name"));
}

/* ---- interoperability with PyTorch -------------------------------------- */

static int have_torch(void)
{
    return rgt_run("/usr/bin/python3 -c 'import torch, numpy'", NULL, 0) == 0;
}

static void run_python(const char *script_name, const char *source, const char *arg)
{
    char script[600], cmd[1400], out[8192];
    path_in(script, sizeof script, script_name);
    rgt_write_file(script, source, strlen(source));
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s'", script, arg);
    int rc = rgt_run(cmd, out, sizeof out);
    if (rc != 0 || !strstr(out, "python ok")) fail_msg("%s failed (exit %d):\n%s", script_name, rc, out);
}

/* Parses our file with nothing but struct, json and zlib, and checks every
 * layout rule a foreign reader relies on, then the values with torch. */
static const char py_read_ours[] =
    "import json, struct, sys, zlib, torch\n"
    "raw = open(sys.argv[1], 'rb').read()\n"
    "n, = struct.unpack('<Q', raw[:8])\n"
    "assert n % 8 == 0, n\n"
    "text = raw[8:8 + n].decode('utf-8')\n"
    "assert text.startswith('{') and text.rstrip(' ').endswith('}'), text\n"
    "header = json.loads(text)\n"
    "data = raw[8 + n:]\n"
    "meta = header.pop('__metadata__')\n"
    "assert meta['regain.crc32'] == '%08x' % zlib.crc32(data), (meta, zlib.crc32(data))\n"
    "assert meta['note'] == 'say \"hi\"\\nline 2\\t\\u00fc\\u65e5\\U0001F600 \\\\ end', repr(meta['note'])\n"
    "assert meta['empty'] == '' and meta['regain.model'] == 'cnn-s'\n"
    "assert list(header) == ['layer.0/w', 's', 'empty', 'w', 'special'], list(header)\n"
    "pos = 0\n"
    "for name, e in header.items():\n"
    "    assert e['dtype'] == 'F32', e\n"
    "    b, end = e['data_offsets']\n"
    "    assert b == pos, (name, b, pos)\n"
    "    pos = end\n"
    "assert pos == len(data), (pos, len(data))\n"
    "def get(name):\n"
    "    e = header[name]\n"
    "    b, end = e['data_offsets']\n"
    "    if b == end:\n"
    "        return torch.empty(e['shape'], dtype=torch.float32)\n"
    "    return torch.frombuffer(bytearray(data[b:end]), dtype=torch.float32).reshape(e['shape'])\n"
    "a = get('layer.0/w')\n"
    "assert a.shape == (2, 3) and torch.equal(a, (torch.arange(6, dtype=torch.float32) / 8 - 2).reshape(2, 3)), a\n"
    "s = get('s')\n"
    "assert s.shape == () and s.item() == 3.25, s\n"
    "assert get('empty').shape == (0, 4)\n"
    "w = get('w')\n"
    "assert torch.equal(w, (torch.arange(36, dtype=torch.float32) / 8 - 2).reshape(4, 1, 3, 3)), w\n"
    "sp = get('special')\n"
    "assert torch.isnan(sp[0]) and sp[1] == 0 and torch.signbit(sp[1]) and sp[2] == float('inf'), sp\n"
    "print('python ok')\n";

static void test_python_reads_ours(void **state)
{
    (void)state;
    if (!have_torch()) skip();
    char path[600];
    path_in(path, sizeof path, "for-python.safetensors");
    write_standard(path);
    run_python("read_ours.py", py_read_ours, path);
}

/* A file PyTorch's tensors were written into by a foreign writer
 * (tools/golden/gen_safetensors_golden.py, committed): keys not in data
 * order, metadata in the middle, a non-ASCII name as a \u escape, mixed
 * dtypes so that an F32 tensor starts at an odd offset, no header padding. */
static void test_foreign_file_we_read(void **state)
{
    (void)state;
    const char *golden = getenv("REGAIN_GOLDEN_DIR");
    assert_non_null(golden);
    char path[600];
    snprintf(path, sizeof path, "%s/safetensors/foreign-writer.safetensors", golden);

    rg_error err = {0};
    rg_st_file *f = NULL;
    if (rg_st_read(path, &f, &err) != RG_OK) fail_msg("rg_st_read: %s", err.msg);
    assert_int_equal(rg_st_count(f), 5);
    const char *order[] = {"x", "idx", "u", "i", "bl\u00f6ck.y"};
    for (int i = 0; i < 5; i++) {
        const rg_st_tensor *t = rg_st_at(f, i);
        assert_string_equal(t->name, order[i]);
        assert_true((uintptr_t)t->raw % 64 == 0);
    }
    assert_string_equal(rg_st_meta_get(f, "format"), "pt");
    assert_null(rg_st_meta_get(f, "regain.crc32"));

    float x[6];
    assert_int_equal(rg_st_copy(f, "x", 2, (const int64_t[]){3, 2}, x, &err), RG_OK);
    for (int k = 0; k < 6; k++) assert_true(x[k] == 0.25f * (float)k);
    const rg_st_tensor *y = rg_st_find(f, "bl\u00f6ck.y");
    assert_non_null(y);
    assert_true(y->data[0] == 1.5f && y->data[1] == -2.0f);

    const rg_st_tensor *idx = rg_st_find(f, "idx");
    assert_int_equal(idx->dtype, RG_ST_I64);
    assert_null(idx->data);
    const int64_t *iv = idx->raw;
    assert_true(iv[0] == 1 && iv[1] == -2 && iv[2] == 3);
    const rg_st_tensor *u = rg_st_find(f, "u");
    assert_int_equal(u->dtype, RG_ST_U8);
    assert_memory_equal(u->raw, "\x07\x08\x09", 3);
    const rg_st_tensor *i32 = rg_st_find(f, "i");
    assert_int_equal(i32->dtype, RG_ST_I32);
    assert_true(((const int32_t *)i32->raw)[0] == -7 && ((const int32_t *)i32->raw)[1] == 40000);

    assert_int_equal(rg_st_copy(f, "idx", 1, (const int64_t[]){3}, x, &err), RG_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "I64"));
    rg_st_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_tensors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_alignment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copy_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_rejects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_atomic_replaces_and_leaves_no_temp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_stale_temps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_atomic_missing_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_make_dirs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_python_reads_ours, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_file_we_read, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
