/* regain bench int8 MODEL (the whole int8 runtime), under the sanitizers:
 * the JSON line compare.py reads (tool, work, batch, threads, positive
 * rates), batches on several threads, the per-op profile, and every bad
 * option, model name and model file refused with a clear message. */
#include "test_support.h"

#include <stdio.h>
#include <string.h>

static char out[1 << 16];

#define expect_cli(...) rgt_expect_cli("REGAIN_CLI_SAN", out, sizeof out, __VA_ARGS__)

static void test_json_and_batches(void **state)
{
    (void)state;
    expect_cli(0, "\"tool\": \"regain\"", "\"work\": \"int8\"", "bench int8 mbv2-tiny --steps 3 --warmup 1 --json");
    expect_cli(0, "\"requant\": \"fp32\"", NULL, "bench int8 mbv2-tiny --steps 3 --warmup 1 --requant fp32 --json");
    assert_non_null(strstr(out, "\"batch\": 1, \"threads\": 1"));
    assert_non_null(strstr(out, "\"images_per_s\": "));
    assert_null(strstr(out, "\"images_per_s\": 0.00"));
    /* batches on threads, then the profile: every op of mbv2-tiny, its MACs summed */
    expect_cli(0, "batch 5, 2 threads, micro-batch 2", "b7.project",
               "bench int8 mbv2-tiny --batch 5 --threads 2 --micro-batch 2 --steps 2 --warmup 0 --profile");
    assert_non_null(strstr(out, "8762976"));
    expect_cli(0, "usage: regain bench int8 MODEL", "--micro-batch", "bench int8 mbv2-tiny --help");
}

static void test_bad(void **state)
{
    (void)state;
    expect_cli(2, "--threads", "[1, 256]", "bench int8 mbv2-tiny --threads 0");
    expect_cli(2, "--requant", "'int16' is not fixed or fp32", "bench int8 mbv2-tiny --requant int16");
    expect_cli(2, "--micro-batch", "integer", "bench int8 mbv2-tiny --micro-batch x");
    expect_cli(2, "--batch", "integer", "bench int8 mbv2-tiny --batch -3");
    expect_cli(2, "--isa", "avx512vnni", "bench int8 mbv2-tiny --isa sse9");
    expect_cli(2, "unknown option '--bogus'", NULL, "bench int8 mbv2-tiny --bogus 1");
    expect_cli(2, "unexpected argument", "extra", "bench int8 mbv2-tiny extra");
    expect_cli(2, "--steps needs a value", NULL, "bench int8 mbv2-tiny --steps");
    expect_cli(5, "nosuch-net", NULL, "bench int8 nosuch-net --steps 1");
    expect_cli(3, "missing.rgm", NULL, "bench int8 missing.rgm --steps 1");
    rgt_write_text("broken.rgm", "not a model file at all");
    expect_cli(4, "broken.rgm", NULL, "bench int8 broken.rgm --steps 1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_and_batches),
        cmocka_unit_test(test_bad),
    };
    return cmocka_run_group_tests(tests, rgt_root_setup, rgt_root_teardown);
}
