/* libFuzzer harness for the .rgm loader (regain/rt.h): any bytes must be
 * either rejected with an error or give a model that prepares and runs
 * without a memory error. Built by the optional CMake target fuzz_rgm
 * (clang with -fsanitize=fuzzer only; not part of ctest):
 *
 *     cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang
 *     cmake --build build-fuzz --target fuzz_rgm
 *     ./build-fuzz/fuzz_rgm -max_total_time=60 tests/fuzz/corpus
 *
 * The checksum stops nearly every mutation at the header; with
 * REGAIN_FUZZ_NO_CRC set (the corpus files are still valid), the harness
 * reseals each input's CRC first, so the mutations reach the fields. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "regain/rt.h"
#include "rt/kernels/qk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int reseal = -1;
    if (reseal < 0) reseal = getenv("REGAIN_FUZZ_NO_CRC") != NULL;
    uint8_t *copy = NULL;
    if (reseal && size >= 20) {
        copy = malloc(size);
        if (!copy) return 0;
        memcpy(copy, data, size);
        uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), copy + 20, (uInt)(size - 20));
        for (int i = 0; i < 4; i++) copy[16 + i] = (uint8_t)(crc >> (8 * i));
        data = copy;
    }
    rg_rgm *m;
    rg_error err = {0};
    if (rg_rgm_parse(data, size, "fuzz.rgm", &m, &err) == RG_OK) {
        /* run it when it is small enough to run quickly */
        int64_t macs = 0;
        for (int32_t i = 0; i < m->n_ops; i++) macs += rg_rgm_op_macs(m, i);
        rg_rt *rt;
        if (macs < 20000000 && rg_rt_prepare(m, &rg_qk_ref, &rt, &err) == RG_OK) {
            size_t n = rg_rt_arena_size(rt);
            if (n <= ((size_t)64 << 20)) {
                void *arena = calloc(1, n);
                const rg_rgm_tensor *ti = &m->tensors[m->input];
                int8_t *in = calloc((size_t)ti->h * ti->w * ti->c, 1), out[65536];
                const rg_rgm_tensor *to = &m->tensors[m->output];
                if (arena && in && (size_t)to->h * to->w * to->c <= sizeof out) rg_rt_invoke(rt, arena, in, out);
                free(in);
                free(arena);
            }
            rg_rt_free(rt);
        }
        rg_rgm_free(m);
    }
    free(copy);
    return 0;
}
