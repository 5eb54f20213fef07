/* Bad model specs and zoo names: every malformed spec fails with the right
 * status and a message "origin:LINE: ..." that names the problem; file-level
 * problems (missing, too large, binary) name the file; unknown zoo models and
 * bad multipliers name the model. Nothing crashes, leaks or hits undefined
 * behaviour (this program is built with ASan and UBSan). Ends with a small
 * deterministic mutation fuzz of a valid spec. */
#include "test_support.h"

#include "regain/graph.h"
#include "regain/rng.h"
#include "regain/spec.h"
#include "regain/zoo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A huge but well-formed network must fail with RG_ERR_NOMEM like it does
 * with the system allocator, not abort inside the sanitizer's allocator. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

#define ORIGIN "bad.spec"

/* ---- malformed spec text ------------------------------------------------- */

typedef struct {
    const char *what;
    const char *text;
    rg_status code;
    int line;          /* expected "bad.spec:LINE:" */
    const char *needle; /* the message names the problem */
} bad_case;

#define IN8 "input h=8 w=8 c=4\n"

static const bad_case cases[] = {
    /* structure */
    {"missing input line", "conv c=8\n", RG_ERR_SPEC, 1, "first layer must be 'input"},
    {"input after a layer", "# comment\n\nrelu\ninput h=1 w=1 c=1\n", RG_ERR_SPEC, 3, "first layer must be 'input"},
    {"second input line", IN8 "relu\ninput h=4 w=4 c=1\n", RG_ERR_SPEC, 3, "only one input line"},
    {"empty spec", "", RG_ERR_SPEC, 1, "no layers"},
    {"only comments", "# nothing\n\n   # here\n", RG_ERR_SPEC, 1, "no layers"},
    {"only an input line", "# net\n" IN8 "# nothing else\n", RG_ERR_SPEC, 2, "no layers after input"},
    {"unknown kind", IN8 "conv c=4\nfrobnicate c=3\n", RG_ERR_SPEC, 3, "unknown layer kind"},
    /* keys */
    {"unknown key", IN8 "conv c=4 kk=3\n", RG_ERR_SPEC, 2, "unknown key 'kk'"},
    {"unknown key of a block", IN8 "ir t=2 c=8 tt=3\n", RG_ERR_SPEC, 2, "unknown key 'tt'"},
    {"unknown key of input", "input h=8 w=8 c=1 d=3\n", RG_ERR_SPEC, 1, "unknown key 'd'"},
    {"duplicate key", IN8 "relu\nconv c=4 c=8\n", RG_ERR_SPEC, 3, "key 'c' is given twice"},
    {"duplicate flag", IN8 "conv c=4 bn bn\n", RG_ERR_SPEC, 2, "key 'bn' is given twice"},
    {"key without a name", IN8 "conv =4 c=4\n", RG_ERR_SPEC, 2, "has no key"},
    {"too many keys", IN8 "conv c=4 a=1 b=1 d=1 e=1 f=1 g2=1 h=1 i=1 j=1 k2=1 l=1 m=1 n=1 o=1 q=1 r=1\n", RG_ERR_SPEC, 2,
     "too many keys"},
    {"non-integer value", IN8 "conv c=4x\n", RG_ERR_SPEC, 2, "'c=4x' is not an integer"},
    {"decimal for an integer", IN8 "conv c=4.0\n", RG_ERR_SPEC, 2, "'c=4.0' is not an integer"},
    {"empty value", IN8 "conv c=\n", RG_ERR_SPEC, 2, "'c=' is not an integer"},
    {"flag for a valued key", IN8 "conv c\n", RG_ERR_SPEC, 2, "key 'c' needs a value"},
    {"integer overflow", IN8 "conv c=99999999999999999999999\n", RG_ERR_SPEC, 2, "is not an integer"},
    {"non-number value", IN8 "dropout p=half\n", RG_ERR_SPEC, 2, "'p=half' is not a number"},
    {"out-of-range value", IN8 "conv c=4 s=0\n", RG_ERR_SPEC, 2, "'s=0' is out of range [1, 8]"},
    {"negative value", IN8 "conv c=-4\n", RG_ERR_SPEC, 2, "'c=-4' is out of range"},
    {"out-of-range input", "input h=0 w=8 c=1\n", RG_ERR_SPEC, 1, "'h=0' is out of range"},
    {"input too large", "input h=8 w=5000 c=1\n", RG_ERR_SPEC, 1, "'w=5000' is out of range"},
    {"out-of-range float", IN8 "se r=2\n", RG_ERR_SPEC, 2, "'r=2' is out of range"},
    {"dropout p=1", IN8 "dropout p=1\n", RG_ERR_SPEC, 2, "'p=1' is out of range"},
    {"NaN", IN8 "ir t=2 c=8 se=nan\n", RG_ERR_SPEC, 2, "'se=nan' is out of range"},
    {"missing required key", IN8 "conv k=3\n", RG_ERR_SPEC, 2, "missing required key 'c'"},
    {"missing input key", "input h=8 w=8\n", RG_ERR_SPEC, 1, "missing required key 'c'"},
    {"missing fc size", IN8 "gap\nfc\n", RG_ERR_SPEC, 3, "missing required key 'n'"},
    {"missing slice count", IN8 "slice offset=1\n", RG_ERR_SPEC, 2, "missing required key 'count'"},
    {"unknown activation", IN8 "conv c=4 act=gelu\n", RG_ERR_SPEC, 2, "unknown activation 'gelu'"},
    /* names and references */
    {"in= an unknown name", IN8 "conv name=a c=4\nadd in=a,zz\n", RG_ERR_SPEC, 3, "no earlier layer is named 'zz'"},
    {"in= a later name", IN8 "conv name=a c=4 in=b\nconv name=b c=4\n", RG_ERR_SPEC, 2,
     "no earlier layer is named 'b'"},
    {"add with one input", IN8 "conv name=a c=4\nadd in=a\n", RG_ERR_SPEC, 3, "needs 2 inputs, got 1"},
    {"add without in=", IN8 "conv name=a c=4\nadd\n", RG_ERR_SPEC, 3, "needs in=A,B"},
    {"add with three inputs", IN8 "conv name=a c=4\nadd in=a,a,a\n", RG_ERR_SPEC, 3, "takes at most 2 inputs"},
    {"concat of five", IN8 "relu name=a\nconcat in=a,a,a,a,a\n", RG_ERR_SPEC, 3, "takes at most 4 inputs"},
    {"duplicate name", IN8 "conv name=a c=4\nrelu\nconv name=a c=4\n", RG_ERR_SPEC, 4, "name 'a' is already used"},
    {"the name input", IN8 "relu name=input\n", RG_ERR_SPEC, 2, "name 'input' is already used"},
    {"name of a block's layer", IN8 "ir name=b t=1 c=4\nconv name=b.dw c=4\n", RG_ERR_SPEC, 3,
     "duplicate layer name 'b.dw'"},
    {"bad name characters", IN8 "relu name=a/b\n", RG_ERR_SPEC, 2, "may only hold"},
    {"empty name", IN8 "relu name=\n", RG_ERR_SPEC, 2, "name= is empty"},
    {"long name", IN8 "relu name=abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvw\n", RG_ERR_SPEC, 2,
     "longer than 48"},
    /* impossible shapes */
    {"kernel larger than input", "input h=3 w=3 c=1\nconv name=big c=4 k=5 p=0\n", RG_ERR_SHAPE, 2,
     "big: kernel 5 does not fit the input height 3"},
    {"padding as large as kernel", IN8 "conv c=4 k=3 p=3\n", RG_ERR_SHAPE, 2, "padding 3 must be smaller"},
    {"pool larger than input", IN8 "maxpool name=mp k=9\n", RG_ERR_SHAPE, 2, "mp: kernel 9 does not fit"},
    {"groups do not divide input", IN8 "conv name=gc c=6 g=3\n", RG_ERR_SHAPE, 2,
     "gc: 3 groups do not divide input channels 4"},
    {"groups do not divide output", IN8 "conv c=6 g=4\n", RG_ERR_SHAPE, 2, "groups do not divide"},
    {"add of mismatched shapes", IN8 "conv name=a c=8\nconv name=b c=6 in=input\nadd name=s in=a,b\n",
     RG_ERR_SHAPE, 4, "s: cannot add shapes 8x8x8 and 8x8x6"},
    {"add across strides", IN8 "conv name=a c=4 s=2\nadd in=a,input\n", RG_ERR_SHAPE, 3, "cannot add shapes"},
    {"mul by a gate of other width", IN8 "gap name=g\npw name=p c=3\nmul in=input,p\n", RG_ERR_SHAPE, 4,
     "cannot multiply"},
    {"concat of other sizes", IN8 "conv name=a c=4 s=2\nconcat in=a,input\n", RG_ERR_SHAPE, 3,
     "cannot concatenate"},
    {"slice outside", IN8 "slice offset=3 count=4\n", RG_ERR_SHAPE, 2, "outside the input's 4 channels"},
    {"shuffle groups", IN8 "shuffle g=3\n", RG_ERR_SHAPE, 2, "3 groups do not divide 4 channels"},
    {"shuffle unit of odd width", IN8 "shuffle_unit c=5\n", RG_ERR_SPEC, 2, "must be even"},
    {"ir with t and e", IN8 "ir t=2 e=8 c=4\n", RG_ERR_SPEC, 2, "not both"},
    {"ir without expansion", IN8 "ir c=4\n", RG_ERR_SPEC, 2, "missing the expansion"},
    {"ir without activation", IN8 "ir t=2 c=4 act=none\n", RG_ERR_SPEC, 2, "act=none is not allowed"},
    {"too many input features", "input h=4096 w=4096 c=4096\nfc name=fc n=10\n", RG_ERR_SHAPE, 2,
     "fc: 68719476736 input features"},
};

static int contains(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

static void check_failure(const char *what, rg_status got, rg_status want, const rg_error *err, const char *prefix,
                          const char *needle)
{
    if (got != want)
        fail_msg("%s: status %d (%s), expected %d (%s); message: %s", what, got, rg_status_name(got), want,
                 rg_status_name(want), err->msg);
    if (err->code != want) fail_msg("%s: err.code %d, expected %d", what, err->code, want);
    if (!contains(err->msg, prefix)) fail_msg("%s: message \"%s\" lacks \"%s\"", what, err->msg, prefix);
    if (!contains(err->msg, needle)) fail_msg("%s: message \"%s\" lacks \"%s\"", what, err->msg, needle);
}

static void test_bad_text(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const bad_case *c = &cases[i];
        rg_error err = {0};
        rg_graph *g = (rg_graph *)&err; /* must be reset to NULL */
        rg_status st = rg_spec_build(c->text, ORIGIN, &g, &err);
        char prefix[64];
        snprintf(prefix, sizeof prefix, ORIGIN ":%d: ", c->line);
        check_failure(c->what, st, c->code, &err, prefix, c->needle);
        if (g != NULL) fail_msg("%s: *out is not NULL after an error", c->what);
    }
}

/* Errors reported with line numbers count every line, blank and comment
 * lines and CRLF endings included; CRLF and tabs are otherwise fine. */
static void test_line_numbers(void **state)
{
    (void)state;
    rg_error err = {0};
    rg_graph *g = NULL;
    const char *crlf = "# a comment\r\n\r\ninput\th=8 w=8\tc=4\r\nconv c=4 k=3\r\n\r\nconv c=4 kk=1\r\n";
    check_failure("crlf", rg_spec_build(crlf, ORIGIN, &g, &err), RG_ERR_SPEC, &err, ORIGIN ":6: ", "'kk'");
    const char *good = "# a comment\r\n\r\ninput\th=8 w=8\tc=4\r\nconv c=4 k=3  # trailing\r\n\r\n\tgap\r\n";
    memset(&err, 0, sizeof err);
    if (rg_spec_build(good, ORIGIN, &g, &err) != RG_OK) fail_msg("CRLF spec: %s", err.msg);
    rg_graph_free(g);
}

/* An in= list longer than the parser's buffer is an error. It used to be cut
 * silently: here the cut turns the unknown name "bb" into the layer "b", and
 * the spec built. */
static void test_long_in_list(void **state)
{
    (void)state;
    char list[513];
    list[0] = 'a';
    memset(list + 1, ',', 509);
    memcpy(list + 510, "bb", 3); /* strlen 512; "b" at 510, the second 'b' at 511 */
    char text[1024];
    snprintf(text, sizeof text, IN8 "relu name=a\nrelu name=b\nconcat in=%s\n", list);
    rg_error err = {0};
    rg_graph *g = NULL;
    check_failure("long in=", rg_spec_build(text, ORIGIN, &g, &err), RG_ERR_SPEC, &err, ORIGIN ":4: ",
                  "in= list is too long");
    assert_null(g);
}

static void test_too_many_layers(void **state)
{
    (void)state;
    size_t cap = 5000 * 6 + 64, n = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    n += (size_t)snprintf(text, cap, "input h=1 w=1 c=1\n");
    for (int i = 0; i < 4097; i++) n += (size_t)snprintf(text + n, cap - n, "relu\n");
    rg_error err = {0};
    rg_graph *g = NULL;
    rg_status st = rg_spec_build(text, ORIGIN, &g, &err);
    free(text);
    check_failure("4097 layers", st, RG_ERR_SPEC, &err, ORIGIN ":4098: ", "too many layers");
    assert_null(g);
}

/* A network whose parameters cannot be allocated: out of memory, no crash,
 * and the message names the spec. */
static void test_huge_network(void **state)
{
    (void)state;
    rg_error err = {0};
    rg_graph *g = NULL;
    /* 2^30 features x 2^20 outputs: 2^50 weights */
    rg_status st = rg_spec_build("input h=4096 w=4096 c=64\nfc n=1048576\n", ORIGIN, &g, &err);
    check_failure("huge fc", st, RG_ERR_NOMEM, &err, ORIGIN ": ", "out of memory");
    assert_null(g);
}

/* ---- spec files -------------------------------------------------------------- */

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

static void test_bad_files(void **state)
{
    (void)state;
    char path[600], prefix[700];
    rg_error err = {0};
    rg_graph *g = NULL;

    /* a NUL byte on line 2 */
    snprintf(path, sizeof path, "%s/nul.spec", dir);
    const char nul[] = "input h=8 w=8 c=1\nconv c=4\0 k=3\ngap\n";
    rgt_write_file(path, nul, sizeof nul - 1);
    snprintf(prefix, sizeof prefix, "%s:2: ", path);
    check_failure("NUL byte", rg_spec_build_file(path, &g, &err), RG_ERR_SPEC, &err, prefix, "NUL byte");
    assert_null(g);

    /* no such file */
    snprintf(path, sizeof path, "%s/missing.spec", dir);
    memset(&err, 0, sizeof err);
    check_failure("missing file", rg_spec_build_file(path, &g, &err), RG_ERR_IO, &err, path, "cannot open");

    /* a directory */
    memset(&err, 0, sizeof err);
    check_failure("directory", rg_spec_build_file(dir, &g, &err), RG_ERR_IO, &err, dir, "not a regular file");

    /* 2 MB: over the 1 MiB limit for spec files (valid text, one comment) */
    snprintf(path, sizeof path, "%s/big.spec", dir);
    size_t big = 2u << 20;
    char *text = malloc(big);
    assert_non_null(text);
    memset(text, ' ', big);
    memcpy(text, "input h=8 w=8 c=1\nrelu\n#", 24);
    text[big - 1] = '\n';
    rgt_write_file(path, text, big);
    free(text);
    memset(&err, 0, sizeof err);
    check_failure("2 MB file", rg_spec_build_file(path, &g, &err), RG_ERR_FORMAT, &err, path, "too large");

    /* an error inside a file names the file and the line */
    snprintf(path, sizeof path, "%s/typo.spec", dir);
    const char typo[] = "input h=8 w=8 c=1\nconv c=4\nir t=2 c=4 tt=1\n";
    rgt_write_file(path, typo, sizeof typo - 1);
    snprintf(prefix, sizeof prefix, "%s:3: ", path);
    memset(&err, 0, sizeof err);
    check_failure("file typo", rg_spec_build_file(path, &g, &err), RG_ERR_SPEC, &err, prefix, "unknown key 'tt'");

    /* and a good file builds */
    snprintf(path, sizeof path, "%s/good.spec", dir);
    const char good[] = "input h=8 w=8 c=1\nconv c=4 bn act=relu\ngap\nfc n=3";
    rgt_write_file(path, good, sizeof good - 1);
    memset(&err, 0, sizeof err);
    if (rg_spec_build_file(path, &g, &err) != RG_OK) fail_msg("good file: %s", err.msg);
    assert_string_equal(g->spec, good);
    rg_graph_free(g);
}

/* ---- zoo names ------------------------------------------------------------------ */

static void zoo_fails(const char *name, rg_status want, const char *needle)
{
    rg_error err = {0};
    char *spec = NULL;
    rg_status st = rg_zoo_spec(name, 10, &spec, &err);
    check_failure(name ? name : "(null)", st, want, &err, needle, needle);
    if (spec) fail_msg("%s: spec returned with an error", name);
    rg_graph *g = NULL;
    memset(&err, 0, sizeof err);
    st = rg_zoo_build(name, 28, 28, 1, 10, &g, &err);
    check_failure(name ? name : "(null)", st, want, &err, needle, needle);
    assert_null(g);
}

static void test_bad_zoo(void **state)
{
    (void)state;
    zoo_fails("resnet21", RG_ERR_NOTFOUND, "unknown model 'resnet21'");
    zoo_fails("mobilenet", RG_ERR_NOTFOUND, "'mobilenet'");
    zoo_fails("MBV2-TINY", RG_ERR_NOTFOUND, "'MBV2-TINY'");
    zoo_fails("mobilenetv2-wabc", RG_ERR_NOTFOUND, "'mobilenetv2-wabc'");
    zoo_fails("mobilenetv2-w", RG_ERR_NOTFOUND, "'mobilenetv2-w'");
    zoo_fails("mobilenetv2-w-1", RG_ERR_NOTFOUND, "'mobilenetv2-w-1'");
    zoo_fails("-w0.5", RG_ERR_NOTFOUND, "'-w0.5'");
    zoo_fails("mobilenetv2-w0", RG_ERR_ARG, "model 'mobilenetv2-w0'");
    zoo_fails("mobilenetv2-w0.05", RG_ERR_ARG, "model 'mobilenetv2-w0.05'");
    zoo_fails("mobilenetv2-w9", RG_ERR_ARG, "model 'mobilenetv2-w9'");
    zoo_fails("resnet20-d0", RG_ERR_ARG, "model 'resnet20-d0'");
    zoo_fails("resnet20-w1-d100", RG_ERR_ARG, "model 'resnet20-w1-d100'");
    zoo_fails("mobilenetv2-wnan", RG_ERR_ARG, "model 'mobilenetv2-wnan'");
    zoo_fails("mobilenetv2-winf", RG_ERR_ARG, "model 'mobilenetv2-winf'");
    zoo_fails("mobilenetv2-w1e30", RG_ERR_ARG, "model 'mobilenetv2-w1e30'");
    zoo_fails("", RG_ERR_ARG, "empty model name");
    zoo_fails(NULL, RG_ERR_ARG, "empty model name");

    char longname[300];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    zoo_fails(longname, RG_ERR_NOTFOUND, "unknown model 'xxxx");

    rg_error err = {0};
    char *spec = NULL;
    assert_int_equal(rg_zoo_spec("resnet20", 0, &spec, &err), RG_ERR_ARG);
    assert_null(spec);
    assert_true(contains(err.msg, "classes"));
}

/* ---- fuzz ------------------------------------------------------------------------- */

static const char *const SEED_SPEC = "input h=12 w=10 c=3\n"
                                     "conv name=stem c=8 k=3 s=1 bn act=relu6\n"
                                     "ir name=b1 t=2 c=8 s=1 se=0.25\n"
                                     "basic name=r c=12 s=2\n"
                                     "shuffle_unit name=u c=12\n"
                                     "dwsep name=d c=16 s=2\n"
                                     "conv name=side c=16 k=1 in=d\n"
                                     "add in=d,side\n"
                                     "concat name=cat in=d,side\n"
                                     "maxpool k=2\n"
                                     "gap\n"
                                     "dropout p=0.1\n"
                                     "fc name=fc n=10\n";

/* Random edits of a valid spec (replace, insert, delete characters from an
 * alphabet that matters to the parser; duplicate or drop lines): every result
 * either builds or fails with a spec/shape error that starts "fuzz.spec:". */
static void test_fuzz(void **state)
{
    (void)state;
    static const char alphabet[] = "0123456789=,# \n\tabcdegiknprstwx.-_";
    size_t base = strlen(SEED_SPEC);
    char *buf = malloc(base * 3 + 64);
    assert_non_null(buf);
    int built = 0, failed = 0;
    for (uint64_t iter = 0; iter < 3000; iter++) {
        rg_rng r = rg_rng_keyed(0xf022, iter, 0);
        memcpy(buf, SEED_SPEC, base + 1);
        size_t len = base;
        int edits = 1 + (int)rg_rng_below(&r, 4);
        for (int e = 0; e < edits && len > 1; e++) {
            size_t at = rg_rng_below(&r, (uint32_t)len);
            char ch = alphabet[rg_rng_below(&r, sizeof alphabet - 1)];
            switch (rg_rng_below(&r, 5)) {
            case 0: buf[at] = ch; break;
            case 1: /* insert */
                memmove(buf + at + 1, buf + at, len - at + 1);
                buf[at] = ch;
                len++;
                break;
            case 2: /* delete */
                memmove(buf + at, buf + at + 1, len - at);
                len--;
                break;
            case 3: { /* duplicate the line at `at` */
                size_t s = at, t = at;
                while (s > 0 && buf[s - 1] != '\n') s--;
                while (t < len && buf[t] != '\n') t++;
                size_t l = t - s + (t < len);
                if (len + l >= base * 3 + 32) break;
                memmove(buf + s + l, buf + s, len - s + 1);
                len += l;
                break;
            }
            default: { /* drop the line at `at` */
                size_t s = at, t = at;
                while (s > 0 && buf[s - 1] != '\n') s--;
                while (t < len && buf[t] != '\n') t++;
                if (t < len) t++;
                memmove(buf + s, buf + t, len - t + 1);
                len -= t - s;
                break;
            }
            }
        }
        rg_error err = {0};
        rg_graph *g = NULL;
        rg_status st = rg_spec_build(buf, "fuzz.spec", &g, &err);
        if (st == RG_OK) {
            assert_non_null(g);
            rg_graph_stats stats;
            if (rg_graph_stats_compute(g, &stats, &err) != RG_OK) fail_msg("stats: %s", err.msg);
            rg_graph_free(g);
            built++;
            continue;
        }
        failed++;
        if (g) fail_msg("iteration %llu: *out set after an error", (unsigned long long)iter);
        if (st != RG_ERR_SPEC && st != RG_ERR_SHAPE)
            fail_msg("iteration %llu: status %d: %s\n--- spec ---\n%s", (unsigned long long)iter, st, err.msg, buf);
        if (strncmp(err.msg, "fuzz.spec:", 10) != 0)
            fail_msg("iteration %llu: message \"%s\" does not start with the origin\n--- spec ---\n%s",
                     (unsigned long long)iter, err.msg, buf);
    }
    free(buf);
    /* both outcomes are common: the fuzz explores past the first error */
    assert_true(built > 100);
    assert_true(failed > 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_text),
        cmocka_unit_test(test_line_numbers),
        cmocka_unit_test(test_long_in_list),
        cmocka_unit_test(test_too_many_layers),
        cmocka_unit_test(test_huge_network),
        cmocka_unit_test_setup_teardown(test_bad_files, setup, teardown),
        cmocka_unit_test(test_bad_zoo),
        cmocka_unit_test(test_fuzz),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
